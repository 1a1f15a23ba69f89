"""Modality adapters, one per model family (see :mod:`mmsft.models.adapters.base` for the contract)."""

from mmsft.models.adapters.base import Encoded, ModalityAdapter, ModelBatch, OverlongSample
from mmsft.models.adapters.qwen_vl import QwenVLAdapter
from mmsft.models.adapters.text import TextAdapter
from mmsft.models.adapters.vla import VLAAdapter

ADAPTERS: dict[str, type[ModalityAdapter]] = {
    "text": TextAdapter,
    "qwen2-vl": QwenVLAdapter,
    "qwen2.5-vl": QwenVLAdapter,
    "vla": VLAAdapter,
}

__all__ = ["ADAPTERS", "Encoded", "ModalityAdapter", "ModelBatch", "OverlongSample", "QwenVLAdapter", "TextAdapter",
           "VLAAdapter"]
