"""Layout oracles: scores of document pages (the ``layout`` domain).

Pages are lists of ``{"label", "box": [x, y, w, h]}`` in page units (:mod:`bbo.domains.layout`).
The geometric scores follow the published definitions (:mod:`bbo.domains.layout.scores`);
``layout/constraints`` and ``layout/quality`` are bbo's own, defined in their docstrings. A page
that is not a valid layout is logged and scores NaN. Every score ignores the order of elements.
"""

from __future__ import annotations

import math
from typing import Any

from oracles.base import Oracle, register

LABELS = ("text", "title", "list", "table", "figure")


class LayoutOracle(Oracle):
    """Base: validates each page against the layout domain, then :meth:`score_page`."""

    direction = "maximize"

    def __init__(self, max_elements: int = 20, n_jobs: int = 1) -> None:
        super().__init__(n_jobs=n_jobs)
        from bbo.domains.layout.domain import LayoutDomain

        self._domain = LayoutDomain(max_elements)
        self.domain = self._domain.config()

    def key(self, obj: Any):
        return self._domain.key(obj) if self._domain.validate(obj) is None else None

    def page(self, obj: Any) -> list[dict[str, Any]]:
        why = self._domain.validate(obj)
        if why is not None:
            raise ValueError(why)
        return self._domain.canonical(obj)

    def score(self, obj: Any) -> float:
        return float(self.score_page(self.page(obj)))

    def score_page(self, page: list[dict[str, Any]]) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


class _PageScore(LayoutOracle):
    """A minimized score of :mod:`bbo.domains.layout.scores` (``score(page, per_element)``)."""

    direction = "minimize"
    score_name = ""

    def __init__(self, per_element: bool = False, max_elements: int = 20, n_jobs: int = 1) -> None:
        super().__init__(max_elements, n_jobs)
        self.per_element = bool(per_element)

    def score_page(self, page):
        from bbo.domains.layout import scores

        return getattr(scores, self.score_name)(page, self.per_element)


@register(
    "layout/alignment",
    domain="layout",
    direction="minimize",
    description="LayoutGAN++/LayoutDM alignment: sum over elements of -log(1 - nearest alignment gap) (minimize)",
)
class Alignment(_PageScore):
    """Alignment as in LayoutDM's "alignment-ACLayoutGAN" (:func:`bbo.domains.layout.scores.alignment`):
    the sum over elements of ``-log(1 - d)``, ``d`` the smallest gap between one of its six alignment
    lines and the same line of another element; ``per_element: true`` divides by the element count
    (LayoutGAN++'s normalization). 0 is perfect; minimize."""

    name = "layout/alignment"
    score_name = "alignment"


@register(
    "layout/overlap",
    domain="layout",
    direction="minimize",
    description="sum over ordered pairs of intersection / area of the first (minimize)",
)
class Overlap(_PageScore):
    """Overlap as in LayoutDM's "overlap-ACLayoutGAN" (:func:`bbo.domains.layout.scores.overlap`): the
    sum over ordered pairs ``i != j`` of ``area(i ∩ j) / area(i)``; ``per_element: true`` divides by
    the element count. 0 for a page without overlaps; minimize."""

    name = "layout/overlap"
    score_name = "overlap"


@register(
    "layout/target_iou",
    domain="layout",
    description="max-IoU (label-wise Hungarian matching) to a target layout: 1 = the target itself",
)
class TargetIoU(LayoutOracle):
    """Max-IoU to a target page (:func:`bbo.domains.layout.scores.max_iou`): per label, boxes matched
    one to one by the Hungarian algorithm maximizing the summed IoU, divided by the larger element
    count. The layout "rediscovery" task. The target is ``target`` (a page) or the held-out
    generator page ``target_index`` (default 0)."""

    name = "layout/target_iou"

    def __init__(
        self, target: list[dict[str, Any]] | None = None, target_index: int = 0, max_elements: int = 20, n_jobs: int = 1
    ) -> None:
        super().__init__(max_elements, n_jobs)
        if target is None:
            from bbo.domains.layout.generator import SPLIT_SIZE, pages

            if (
                isinstance(target_index, bool)
                or not isinstance(target_index, int)
                or not 0 <= target_index < SPLIT_SIZE["held_out"]
            ):
                raise ValueError(
                    f"{self.name}: target_index must be in 0..{SPLIT_SIZE['held_out'] - 1}, got {target_index!r}"
                )
            target = pages("held_out", target_index + 1)[target_index]
        why = self._domain.validate(target)
        if why is not None:
            raise ValueError(f"{self.name}: the target is not a valid layout: {why}")
        self.target = self._domain.canonical(target)

    def score_page(self, page):
        from bbo.domains.layout.scores import max_iou

        return max_iou(page, self.target)


# ------------------------------------------------------------------------------ constraints
#: a two-figure article page with one table; 0 of 1,000 held-out generator pages satisfy all of it
#: (mean score 0.49, best 0.92), so the prior's own samples do not solve it
DEFAULT_SPEC: dict[str, Any] = {
    "counts": {"title": [2, 4], "text": [4, 10], "figure": [2, 2], "table": [1, 1]},
    "min_size": {"figure": [0.3, 0.15], "table": [0.3, 0.1]},
    "title_above_text": True,
    "reading_order": True,
    "margins": 0.08,
    "no_overlap": True,
}


def _check_spec(spec: dict[str, Any]) -> dict[str, Any]:
    known = {"counts", "min_size", "title_above_text", "reading_order", "margins", "no_overlap"}
    if not isinstance(spec, dict) or set(spec) - known:
        raise ValueError(
            f"layout constraints: unknown key(s) {sorted(set(spec) - known) if isinstance(spec, dict) else spec!r}; "
            f"known: {sorted(known)}"
        )
    for part in ("counts", "min_size"):
        for label, value in spec.get(part, {}).items():
            if label not in LABELS:
                raise ValueError(
                    f"layout constraints: {part} names unknown label {label!r} (labels: {', '.join(LABELS)})"
                )
            if part == "counts":
                lo, hi = (value, value) if isinstance(value, int) else tuple(value)
                if not 0 <= lo <= hi:
                    raise ValueError(
                        f"layout constraints: counts.{label} must be n or [min, max] with 0 <= min <= max, got {value!r}"
                    )
            elif len(value) != 2 or min(value) < 0:
                raise ValueError(f"layout constraints: min_size.{label} must be [min_w, min_h] >= 0, got {value!r}")
    if "margins" in spec and not 0 <= float(spec["margins"]) < 0.5:
        raise ValueError(f"layout constraints: margins must be in [0, 0.5), got {spec['margins']!r}")
    return spec


def constraint_terms(page: list[dict[str, Any]], spec: dict[str, Any]) -> list[tuple[str, float]]:
    """``(name, violation)`` for each atomic constraint of ``spec``; a violation of 0 is satisfied,
    and it grows continuously with how far the page is from satisfying it (page units or counts)."""
    from bbo.domains.layout.scores import overlap

    terms: list[tuple[str, float]] = []
    labels = [el["label"] for el in page]
    for label, value in spec.get("counts", {}).items():
        lo, hi = (value, value) if isinstance(value, int) else tuple(value)
        n = labels.count(label)
        terms.append((f"count {label}", max(lo - n, n - hi, 0) / max(hi, 1)))
    for label, (min_w, min_h) in spec.get("min_size", {}).items():
        short = sum(max(min_w - el["box"][2], 0) + max(min_h - el["box"][3], 0) for el in page if el["label"] == label)
        terms.append((f"min size {label}", short))
    if spec.get("title_above_text"):  # each title has a text starting just below it, across its width
        for i, el in enumerate(page):
            if el["label"] != "title":
                continue
            x, y, w, h = el["box"]
            gaps = [
                abs(t["box"][1] - (y + h)) + max(x - t["box"][0], 0)
                for t in page
                if t["label"] == "text"
                and t["box"][1] >= y + h - 0.005
                and t["box"][0] < x + w
                and t["box"][0] + t["box"][2] > x
            ]
            gap = min(gaps) if gaps else 1.0
            terms.append((f"title {i} above text", max(gap - 0.05, 0.0)))
    if spec.get("reading_order"):  # the page opens with a title: no element starts above the top title
        tops = [el["box"][1] for el in page if el["label"] == "title"]
        terms.append(("reading order", max(min(tops) - min(el["box"][1] for el in page), 0.0) if tops else 1.0))
    if "margins" in spec:
        m = float(spec["margins"])
        out = sum(
            max(m - x, 0) + max(m - y, 0) + max(x + w - (1 - m), 0) + max(y + h - (1 - m), 0)
            for x, y, w, h in (el["box"] for el in page)
        )
        terms.append(("margins", out))
    if spec.get("no_overlap"):
        terms.append(("no overlap", overlap(page, per_element=True)))
    return terms


@register(
    "layout/constraints",
    domain="layout",
    description="fraction of a user's layout constraints satisfied, minus a continuous violation term",
)
class Constraints(LayoutOracle):
    """A user's specification, scored as ``satisfied / n - 0.5 * mean(min(violation, 1))`` over its
    ``n`` atomic constraints (:func:`constraint_terms`): 1 when all hold; the violation term (page
    units or counts, each capped at 1) makes the score move before a constraint flips, so an
    optimizer sees which way to go.

    ``spec`` keys (default :data:`DEFAULT_SPEC`, an article page with two figures and a table):
    ``counts`` (label -> n or [min, max]), ``min_size`` (label -> [min_w, min_h] for every element of it),
    ``title_above_text`` (each title has a text starting below it within 0.05, across its width),
    ``reading_order`` (no element starts above the topmost title), ``margins`` (every box at least
    this far from each page edge), ``no_overlap`` (zero overlap)."""

    name = "layout/constraints"

    def __init__(self, spec: dict[str, Any] | None = None, max_elements: int = 20, n_jobs: int = 1) -> None:
        super().__init__(max_elements, n_jobs)
        self.spec = _check_spec(dict(DEFAULT_SPEC if spec is None else spec))

    def score_page(self, page):
        terms = constraint_terms(page, self.spec)
        if not terms:
            return 1.0
        satisfied = sum(v <= 1e-9 for _, v in terms)
        return satisfied / len(terms) - 0.5 * sum(min(v, 1.0) for _, v in terms) / len(terms)


@register(
    "layout/quality",
    domain="layout",
    description="constraints - 10 x per-element alignment - per-element overlap (a cheap stand-in for a human score)",
)
class Quality(LayoutOracle):
    """``constraints(spec) - w_alignment * alignment / n - w_overlap * overlap / n`` (LayoutGAN++'s
    per-element alignment and overlap; weights default 10 and 1, so that a natural page's
    alignment, ~0.001 per element, costs ~0.01 and an overlapping one loses up to ~1): the kind of
    composite a user puts in front of an expensive human or renderer-based score."""

    name = "layout/quality"

    def __init__(
        self,
        spec: dict[str, Any] | None = None,
        w_alignment: float = 10.0,
        w_overlap: float = 1.0,
        max_elements: int = 20,
        n_jobs: int = 1,
    ) -> None:
        super().__init__(max_elements, n_jobs)
        self.constraints = Constraints(spec, max_elements)
        self.w_alignment, self.w_overlap = float(w_alignment), float(w_overlap)
        if not (math.isfinite(self.w_alignment) and math.isfinite(self.w_overlap)):
            raise ValueError(f"{self.name}: weights must be finite")

    def score_page(self, page):
        from bbo.domains.layout.scores import alignment, overlap

        return (
            self.constraints.score_page(page)
            - self.w_alignment * alignment(page, per_element=True)
            - self.w_overlap * overlap(page, per_element=True)
        )
