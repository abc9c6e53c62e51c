"""Megatron-Energon task encoder: litdata's compiled folder -> the types of Megatron-LM's examples/multimodal."""

from adapters.energon.image_transform import ImageTransform
from adapters.energon.sequence import LitdataSequence, SampleError, cook_litdata
from adapters.energon.task_encoder import LitdataTaskEncoder
from adapters.energon.types import (
    IGNORE_INDEX,
    ImageTaskBatchPacked,
    ImageTaskSample,
    ImageTaskSamplePacked,
    LitImageTaskBatchPacked,
    LitImageTaskSamplePacked,
)

__all__ = [
    "IGNORE_INDEX",
    "ImageTaskBatchPacked",
    "ImageTaskSample",
    "ImageTaskSamplePacked",
    "ImageTransform",
    "LitImageTaskBatchPacked",
    "LitImageTaskSamplePacked",
    "LitdataSequence",
    "LitdataTaskEncoder",
    "SampleError",
    "cook_litdata",
]
