"""Hugging Face adapter: compiled litdata shards -> Trainer / TRL SFTTrainer, padding-free, LIT-weighted.

- `reader`: one packed sequence per shard sample, decoded through `litdata.shards.reader` and checked against the
  manifest (no torch).
- `dataset.LitShardDataset`: a deterministic, resumable `IterableDataset`, split over ranks and loader workers.
- `collator.PackedCollator`: padding-free batches as `DataCollatorWithFlattening` emits them, plus `loss_weights`,
  image placeholders expanded and `pixel_values` from a Hugging Face image processor.
- `loss`: `sum(w * ce) / sum(w)` over the whole optimizer step; `LitTrainer` and `WeightedLossMixin` (for TRL).
- `attention`: refuses attention implementations that cannot keep packed documents apart.
- `export`: text-only Parquet (`python -m adapters.hf.export DIR OUT.parquet`).
Submodules are imported on use, so that importing this package stays cheap.
"""
