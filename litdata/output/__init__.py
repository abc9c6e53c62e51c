"""The output folder: what a compile owns and its atomic writes (folder.py), and remote `--out` URLs (remote.py)."""
