"""litdata: compile multimodal instruction-tuning data into packed, loss-weighted WebDataset shards for LIT."""

__version__ = "0.1.0"
