"""Energon cooker for litdata shards: a crude sample (member bytes) -> a checked `LitdataSequence`.

The output folder of `litdata compile` is a prepared `CrudeWebdataset` whose subflavors carry `litdata_format`
(litdata/shards/energon.py), so a cooker registered on that subflavor receives every sample's members as bytes
(the task encoder sets `decoder = None`). Decoding and checking go through `litdata.shards.reader`, the one
sample reader that `litdata verify` and the Megatron loader use too: nothing is unpickled, and a bad member
raises `SampleError` naming the shard, the sample and the member.

`SampleError` is an Energon `FatalSampleError`: Energon's error handler would otherwise log the sample and
skip it (the example installs a handler that prints and skips), and its documents would be lost to training
without being counted anywhere. A corrupt shard stops the run instead; `litdata verify DIR` lists every problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from megatron.energon import Sample, basic_sample_keys, edataclass, stateless
from megatron.energon.errors import FatalSampleError

from litdata.shards import reader as shard_reader
from litdata.shards.reader import FormatProblem
from litdata.shards.schema import IMAGE_TILES, IMAGE_TOKENS

__all__ = ["IMAGE_TILES", "IMAGE_TOKENS", "LitdataSequence", "SampleError", "cook_litdata"]


class SampleError(FatalSampleError):
    """A litdata sample that cannot be used: names the shard, the sample key and the member."""

    def __init__(self, shard: str, key: str, member: str, reason: str) -> None:
        super().__init__(f"litdata shard {shard}: sample {key}: member {member}: {reason}")
        self.shard, self.key, self.member, self.reason = shard, key, member, reason


@edataclass
class LitdataSequence(Sample):
    """One packed sequence as stored: arrays decoded and checked, images still encoded."""

    shard: str
    tokens: np.ndarray  # int32 [n]
    weights: np.ndarray  # float32 [n]
    classes: np.ndarray  # uint8 [n]
    cu_seqlens: np.ndarray  # int32 [d + 1], document starts in token space, last entry n
    documents: list  # KEY.json's per-document objects
    per_image: dict  # the optional per-image arrays present, by suffix (IMAGE_TOKENS, IMAGE_TILES)
    image_members: tuple  # image member suffixes (imgNNN.EXT), in placeholder order
    image_bytes: tuple


def shard_name(crude: Mapping[str, Any]) -> str:
    sources = crude.get("__sources__") or ()
    return str(sources[0].shard_name) if sources else "<unknown shard>"


@stateless
def cook_litdata(crude: dict) -> LitdataSequence:
    """The cooker: decode and check one sample's members through `litdata.shards.reader`."""
    shard, key = shard_name(crude), str(crude.get("__key__"))
    try:
        sample = shard_reader.load_sample(crude, documents=True)
    except FormatProblem as exn:
        raise SampleError(shard, key, exn.member, exn.reason) from None
    return LitdataSequence(
        **basic_sample_keys(crude),
        shard=shard,
        tokens=sample.tokens,
        weights=sample.weights,
        classes=sample.classes,
        cu_seqlens=sample.cu_seqlens,
        documents=sample.meta,
        per_image=sample.per_image,
        image_members=sample.images,
        image_bytes=tuple(crude[s] for s in sample.images),
    )
