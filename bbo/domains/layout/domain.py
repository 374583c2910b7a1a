"""The ``layout`` domain: an object is a document page, a list of labelled boxes."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np

from bbo.domains import register_domain
from bbo.domains.base import Domain
from bbo.domains.layout.generator import LABELS, MAX_ELEMENTS

#: slack for ``x + w <= 1`` in floating point (a decoded box clipped to the page may overshoot by an ulp)
PAGE_SLACK = 1e-9
COLOURS = {"text": "#4C72B0", "title": "#DD8452", "list": "#55A868", "table": "#C44E52", "figure": "#8172B3"}


@register_domain
class LayoutDomain(Domain):
    """Pages of 1 to ``max_elements`` elements ``{"label": ..., "box": [x, y, w, h]}``.

    Labels are PubLayNet's five classes (:data:`~bbo.domains.layout.generator.LABELS`); a box is
    its top-left corner, width and height in page units (the page is the unit square, y grows
    downward) and must lie on the page with ``w, h > 0``. A page is a set: its identity (the key)
    and its stored form ignore the order of its elements, and two pages are the same object only
    if every label and every coordinate agree exactly (the float64 values). Stored pages list their
    elements in reading order (top to bottom, then left to right).

    The natural data are the procedural pages of :mod:`bbo.domains.layout.generator`.
    """

    name = "layout"
    pretrain_command = "bbo.domains.layout.cli:pretrain"

    def __init__(self, max_elements: int = MAX_ELEMENTS) -> None:
        if (
            isinstance(max_elements, bool)
            or not isinstance(max_elements, (int, np.integer))
            or not 1 <= max_elements <= 1000
        ):
            raise ValueError(f"layout domain: max_elements must be an integer in [1, 1000], got {max_elements!r}")
        self.max_elements = int(max_elements)

    # ---------------------------------------------------------------------------- identity
    def validate(self, obj: Any) -> str | None:
        if isinstance(obj, (str, bytes, dict)) or not isinstance(obj, Sequence):
            return f"a layout is a list of elements {{'label', 'box'}}, got {type(obj).__name__}"
        if not obj:
            return "a layout needs at least one element"
        if len(obj) > self.max_elements:
            return f"{len(obj)} elements, more than max_elements = {self.max_elements}"
        for i, el in enumerate(obj):
            why = self._element_problem(el)
            if why is not None:
                return f"element {i}: {why}"
        return None

    @staticmethod
    def _element_problem(el: Any) -> str | None:
        if not isinstance(el, dict):
            return f"expected a dict {{'label', 'box'}}, got {type(el).__name__}"
        if set(el) != {"label", "box"}:
            extra, missing = sorted(set(el) - {"label", "box"}), sorted({"label", "box"} - set(el))
            return "; ".join(
                ([f"unknown key(s) {extra}"] if extra else []) + ([f"missing {missing}"] if missing else [])
            )
        if el["label"] not in LABELS:
            return f"unknown label {el['label']!r} (labels: {', '.join(LABELS)})"
        box = el["box"]
        if isinstance(box, (str, bytes)) or not isinstance(box, Sequence | np.ndarray) or len(box) != 4:
            return f"box must be 4 numbers [x, y, w, h], got {box!r}"
        if any(isinstance(v, bool) or not isinstance(v, Real) for v in box):
            return f"box must be 4 numbers [x, y, w, h], got {box!r}"
        x, y, w, h = (float(v) for v in box)
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            return f"box {[x, y, w, h]} has a NaN or infinite coordinate"
        if w <= 0 or h <= 0:
            return f"box {[x, y, w, h]}: width and height must be > 0"
        if x < 0 or y < 0 or x + w > 1 + PAGE_SLACK or y + h > 1 + PAGE_SLACK:
            return f"box {[x, y, w, h]} lies outside the page [0, 1] x [0, 1]"
        return None

    def canonical(self, obj: Any) -> list[dict[str, Any]]:
        """The stored form: plain floats, elements in reading order (y, then x, then size, label)."""
        elements = [{"label": str(el["label"]), "box": [float(v) for v in el["box"]]} for el in obj]
        return sorted(elements, key=lambda e: (e["box"][1], e["box"][0], e["box"][2], e["box"][3], e["label"]))

    def key(self, obj: Any) -> str:
        text = ";".join(e["label"] + ":" + ",".join(v.hex() for v in e["box"]) for e in self.canonical(obj))
        return "layout:" + hashlib.sha256(text.encode()).hexdigest()

    def is_single(self, x: Any) -> bool:
        """One page: a non-empty list whose items are elements (dicts); a batch is a list of pages."""
        return isinstance(x, Sequence) and not isinstance(x, (str, bytes)) and len(x) > 0 and isinstance(x[0], dict)

    # ------------------------------------------------------------------------------ storage
    def to_json(self, obj: Any) -> list[dict[str, Any]]:
        return self.canonical(obj)  # JSON floats round-trip float64 exactly

    def from_json(self, data: Any) -> list[dict[str, Any]]:
        if not isinstance(data, list):
            raise ValueError(f"not a stored layout (expected a list of elements): {data!r:.80}")
        return [{"label": el["label"], "box": list(el["box"])} for el in data]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "max_elements": self.max_elements}

    # ----------------------------------------------------------------------------- optional
    def sample_reference(self, n: int, rng: np.random.Generator) -> list[list[dict[str, Any]]]:
        """Uniform draws (with replacement) from the generator's training pages."""
        from bbo.domains.layout.generator import SPLIT_SIZE, page

        return [self._fit(page("train", i)) for i in rng.integers(SPLIT_SIZE["train"], size=int(n))]

    def _fit(self, page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return page[: self.max_elements]

    def naturalness(self, objects: Sequence[Any], *, full: bool = False) -> dict[str, float]:
        """Validity, alignment, overlap, feature distance, diversity and novelty against the
        generator's pages (:func:`bbo.domains.layout.metrics.layout_metrics`)."""
        from bbo.domains.layout.metrics import layout_metrics

        return layout_metrics(list(objects), self)

    def offspring(
        self,
        parents: Sequence[Any],
        n: int,
        rng: np.random.Generator,
        *,
        mutation_rate: float,
        scores: Sequence[float] | None = None,
    ) -> list[Any]:
        """Crossover (the top of one parent above a cut, the bottom of another) and mutation (move,
        resize, add, remove, relabel): :mod:`bbo.domains.layout.edits`."""
        from bbo.domains.layout.edits import breed

        return breed(list(parents), n, rng, mutation_rate=mutation_rate, scores=scores, domain=self)

    def render(self, objects: Sequence[Any], path: str | Path, legends: Sequence[str] | None = None) -> Path:
        """Draw pages side by side as coloured, labelled boxes (PNG)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle

        path = Path(path)
        objects = list(objects)
        cols = max(1, min(8, len(objects)))
        rows = max(1, -(-len(objects) // cols))
        fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 2.2 * rows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for i, page in enumerate(objects):
            ax = axes.ravel()[i]
            ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, lw=0.8, ec="black"))
            for el in page:
                x, y, w, h = el["box"]
                c = COLOURS.get(el["label"], "grey")
                ax.add_patch(Rectangle((x, y), w, h, fc=c, ec=c, alpha=0.45, lw=0.6))
                if h > 0.02:
                    ax.text(x + 0.01, y + min(h, 0.04) * 0.8, el["label"], fontsize=4, color="black", va="bottom")
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(1.02, -0.02)
            ax.set_aspect(1.3)
            if legends is not None and i < len(legends):
                ax.set_title(str(legends[i]), fontsize=7)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path
