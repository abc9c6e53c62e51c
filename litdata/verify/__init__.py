"""`litdata verify`: the shards (folder.py), the per-image members (images.py) and the side files (files.py)."""
