"""The pixel codec: images in [0, 1] <-> the diffusion space [-1, 1] (``2 x - 1``), no weights.

A pixel-space prior diffuses in the images themselves; decoding clips the sample to the valid
range, so every decoded sample is a valid image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from bbo.diffusion.codec import register_codec


@register_codec
class PixelCodec(nn.Module):
    """``encode(images) = 2 images - 1``; ``decode(x) = clip((x + 1) / 2, 0, 1)`` as float32 arrays."""

    name = "pixels"

    def __init__(self, channels: int = 1, height: int = 8, width: int = 8) -> None:
        super().__init__()
        self._shape = (int(channels), int(height), int(width))
        c, h, w = self._shape
        self.domain = {"name": "image", "channels": c, "height": h, "width": w}

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    def encode(self, objects: Sequence[Any]) -> torch.Tensor:
        arr = np.stack([np.asarray(o, dtype=np.float32).reshape(self._shape) for o in objects])
        return torch.from_numpy(arr) * 2 - 1

    def decode(self, x: torch.Tensor) -> list[np.ndarray]:
        images = ((x.detach().float().cpu() + 1) / 2).clamp(0, 1).numpy().astype(np.float32)
        return [img.reshape(self._shape) for img in images]

    def encodable(self, objects: Sequence[Any]) -> list[bool]:
        return [np.shape(o) == self._shape for o in objects]

    def config(self) -> dict[str, Any]:
        c, h, w = self._shape
        return {"channels": c, "height": h, "width": w}
