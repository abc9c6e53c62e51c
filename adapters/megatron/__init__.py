"""Megatron-Core adapter: compiled litdata shards -> Megatron batches -> weighted LIT loss.

Data side: `data.PackedShardDataset` and `loader.build_loader` (shards.py reads, batch.py collates,
reweigh.py re-weighs by class, images.py preprocesses images). Submodules are imported on use, so that
importing this package stays cheap (no torch, no megatron).
"""
