"""The on-disk format, both directions: the sample reader, the shard writer and Energon's metadata."""
