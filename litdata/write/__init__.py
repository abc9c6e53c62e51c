"""Writing the output folder: shards, manifest, rejects, and Energon's .nv-meta."""
