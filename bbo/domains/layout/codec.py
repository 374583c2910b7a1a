"""The slot codec: a page <-> a ``max_elements x 10`` tensor in [-1, 1], no weights.

Each element is one slot: ``[presence, cx, cy, w, h, one-hot label x 5]``, every channel mapped
from [0, 1] to [-1, 1] (``2 v - 1``; presence +1 for an element, -1 for padding; box as centre and
size, which the denoiser sees symmetrically). Unused slots are padding: presence -1, every other
channel 0. The slots of a set have no order; :meth:`encode` lists the elements in reading order
and the prior's denoiser is permutation-equivariant, so that order carries no information.

Decoding keeps the slots whose presence is positive, takes the label of the largest one-hot
channel, and clips each box to the page with width and height at least :data:`MIN_SIZE`; a
sample without any present slot decodes to an empty (invalid) page, which samplers redraw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from bbo.diffusion.codec import register_codec
from bbo.domains.layout.generator import LABELS, MAX_ELEMENTS

FEATURES = 5 + len(LABELS)
MIN_SIZE = 0.002


@register_codec
class SlotCodec(nn.Module):
    """Pages of up to ``max_elements`` elements as ``max_elements x 10`` slot tensors."""

    name = "layout-slots"
    #: the axis of the diffusion tensor (after the batch) whose entries form a set
    set_axis = 0

    def __init__(self, max_elements: int = MAX_ELEMENTS) -> None:
        super().__init__()
        self.max_elements = int(max_elements)
        self.domain = {"name": "layout", "max_elements": self.max_elements}

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.max_elements, FEATURES)

    def encode(self, objects: Sequence[Any]) -> torch.Tensor:
        out = np.zeros((len(objects), self.max_elements, FEATURES), dtype=np.float32)
        out[:, :, 0] = -1.0
        for i, page in enumerate(objects):
            if len(page) > self.max_elements:
                raise ValueError(f"layout {i} has {len(page)} elements; this codec holds {self.max_elements}")
            elements = sorted(page, key=lambda e: (float(e["box"][1]), float(e["box"][0])))
            for j, el in enumerate(elements):
                x, y, w, h = (float(v) for v in el["box"])
                onehot = np.full(len(LABELS), -1.0)
                onehot[LABELS.index(el["label"])] = 1.0
                out[i, j] = [1.0, 2 * (x + w / 2) - 1, 2 * (y + h / 2) - 1, 2 * w - 1, 2 * h - 1, *onehot]
        return torch.from_numpy(out)

    def decode(self, x: torch.Tensor) -> list[list[dict[str, Any]]]:
        arr = x.detach().float().cpu().numpy().astype(np.float64)
        pages = []
        for slots in arr:
            page = []
            for s in slots[slots[:, 0] > 0]:
                cx, cy, w, h = np.clip((s[1:5] + 1) / 2, 0.0, 1.0)
                w, h = max(w, MIN_SIZE), max(h, MIN_SIZE)
                x0 = float(np.clip(cx - w / 2, 0.0, 1.0 - w))
                y0 = float(np.clip(cy - h / 2, 0.0, 1.0 - h))
                page.append({"label": LABELS[int(np.argmax(s[5:]))], "box": [x0, y0, float(w), float(h)]})
            pages.append(page)
        return pages

    def encodable(self, objects: Sequence[Any]) -> list[bool]:
        from bbo.domains.layout.domain import LayoutDomain

        domain = LayoutDomain(self.max_elements)
        return [domain.validate(o) is None for o in objects]

    def config(self) -> dict[str, Any]:
        return {"max_elements": self.max_elements}
