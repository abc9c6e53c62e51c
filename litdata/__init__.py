"""litdata: compile multimodal instruction-tuning data into packed, loss-weighted WebDataset shards for LIT."""

__version__ = "0.1.0"
FORMAT_NAME = "litdata-packed"
FORMAT_VERSION = 2  # 2: KEY.image_tokens.npy per sample with images, config.image_token_rule
