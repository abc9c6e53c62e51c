"""The shard contract in one place (DESIGN.md, 'Shards' and 'manifest.json'): the format's name and version,
the member names and dtypes of a sample, the name patterns, and the bounds a reader holds members to.

The writer (`shards/writer.py`) writes what this module names and every reader (`shards/reader.py`, verify,
inspect, the adapters) checks against it, so that a change to the format is made here once.
"""

from __future__ import annotations

import re

import numpy as np

FORMAT_NAME = "litdata-packed"
FORMAT_VERSION = 2  # 2: KEY.image_tokens.npy per sample with images, config.image_token_rule
MANIFEST = "manifest.json"

# The array members of every sample, 1-D each, in the order callers unpack them.
ARRAYS = {"tokens.npy": np.int32, "weights.npy": np.float32, "classes.npy": np.uint8, "cu_seqlens.npy": np.int32}
TOKENS, WEIGHTS, CLASSES, CU_SEQLENS = ARRAYS
JSON = "json"  # KEY.json: {"documents": [per-document metadata, in packing order]}
# Per-image members of samples with images (format 2): each image's expanded count, and tiles for tiling rules.
IMAGE_ARRAYS = {"image_tokens.npy": np.int32, "image_tiles.npy": np.int32}
IMAGE_TOKENS, IMAGE_TILES = IMAGE_ARRAYS

KEY = re.compile(r"^[0-9A-Za-z_-]+$")  # dot-free, so a member name splits into key and suffix at its first dot
IMAGE = re.compile(r"^img(\d{3,})\.[a-z0-9]+$")  # KEY.imgNNN.EXT, numbered in placeholder order
IMAGE_MEMBER = "img{:03d}.{}"  # what IMAGE matches, as the writer names it
SHARD_PATTERN = "shard-{:06d}.tar"  # the writer's shard names
SHARD_NAME = re.compile(r"^shard-[0-9]{6,}\.tar$")  # what a manifest may name (SHARD_PATTERN, past 10^6 too)

# Bounds on what a member may make a reader allocate. Sizes in tar and .npy headers are claims, not facts: a GNU
# sparse member of a 10 KB shard expands to gigabytes, an .npy header can declare 10^12 items. Every member is
# checked against these before its bytes are read, every array header before its array is allocated.
DEFAULT_MAX_TOKENS = 1 << 24  # when no manifest gives seq_len (a shard read on its own)
NPY_HEADER_MAX = 1 << 16  # the .npy v1 header length field is 16 bits; np.save pads to 64-byte multiples
MAX_JSON_BYTES = 64 << 20  # per-document metadata of one sequence; the compiler's whole-record bound
MAX_IMAGE_BYTES = 256 << 20  # the default max_shard_bytes: no compiled image can be larger than its shard
MAX_OTHER_BYTES = 64 << 20  # members this reader does not know (a newer format version, another producer)
MAX_MANIFEST_BYTES = 256 << 20  # a manifest lists shards and inputs; far below this for any real compile


def max_items(seq_len: int | None) -> int:
    """The most items an array member of a sample compiled for `seq_len` (None: unknown) may hold: cu_seqlens
    holds n + 1 <= seq_len + 1."""
    return (seq_len or DEFAULT_MAX_TOKENS) + 1
