"""Naturalness of layouts, measured against the generator's own pages.

- ``validity``: share of valid layouts;
- ``alignment`` and ``overlap``: means over the valid layouts
  (:mod:`bbo.domains.layout.scores`; the generator's held-out pages score :data:`REFERENCE`);
- ``feature_fd``: Fréchet distance between page features (element count, count per label, mean and
  spread of box centres and sizes, covered area), standardized by the held-out pages, of the
  layouts against the held-out pages: 0 for the same distribution. Alignment and overlap are
  left out of it: natural pages barely vary in them (held-out overlap 0.0003 +- 0.002), so in
  standard units any model's overlap would swamp every other feature; they are reported apart;
- ``diversity``: mean pairwise distance between layouts, relative to the held-out pages' own
  (1 = as diverse as natural pages);
- ``novelty``: median distance from each layout to its nearest training page, relative to the
  held-out pages' (a memorizer scores 0, a generator of new natural pages about 1).

Distances are between rasterized pages: each label's boxes painted on a 16 x 16 grid (the share of
each cell covered), compared by Euclidean distance. A raster distance is cheap against 10,000
training pages and sees what a reader sees (where the text, figures and tables are), not which
element was listed first.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from bbo.domains.layout.generator import LABELS, pages
from bbo.domains.layout.scores import alignment, boxes_of, labels_of, overlap

GRID = 16
#: the held-out pages' own figures (``python benchmarks/layout_prior_quality.py``)
REFERENCE_SPLIT = "held_out"


def rasterize(page: list[dict[str, Any]], grid: int = GRID) -> np.ndarray:
    """``len(LABELS) x grid x grid``: the share of each cell covered by each label's boxes (capped at 1)."""
    out = np.zeros((len(LABELS), grid, grid))
    edges = np.linspace(0.0, 1.0, grid + 1)
    lo, hi = edges[:-1], edges[1:]
    for el in page:
        x, y, w, h = (float(v) for v in el["box"])
        cover_x = np.clip(np.minimum(hi, x + w) - np.maximum(lo, x), 0, None) * grid
        cover_y = np.clip(np.minimum(hi, y + h) - np.maximum(lo, y), 0, None) * grid
        out[LABELS.index(el["label"])] += np.outer(cover_y, cover_x)
    return np.minimum(out, 1.0)


def raster_matrix(layouts: list[list[dict[str, Any]]]) -> np.ndarray:
    return (
        np.stack([rasterize(p).ravel() for p in layouts]).astype(np.float32)
        if layouts
        else np.zeros((0, len(LABELS) * GRID * GRID), np.float32)
    )


def page_features(page: list[dict[str, Any]]) -> np.ndarray:
    b = boxes_of(page)
    labels = labels_of(page)
    cx, cy, w, h = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2, b[:, 2], b[:, 3]
    counts = [labels.count(label) for label in LABELS]
    stats = [f(v) for v in (cx, cy, w, h) for f in (np.mean, np.std)]
    return np.asarray([len(page), *counts, *stats, float((w * h).sum())])


def pairwise_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.clip(d, 0, None)


def nearest_distance(a: np.ndarray, b: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Euclidean distance from each row of ``a`` to its nearest row of ``b``."""
    out = [np.sqrt(pairwise_sq(a[i : i + chunk], b).min(1)) for i in range(0, len(a), chunk)]
    return np.concatenate(out) if out else np.zeros(0)


def mean_pairwise(a: np.ndarray) -> float:
    if len(a) < 2:
        return float("nan")
    d = np.sqrt(pairwise_sq(a, a))
    return float(d[np.triu_indices(len(a), 1)].mean())


@lru_cache(maxsize=1)
def _reference() -> dict[str, Any]:
    held = pages(REFERENCE_SPLIT)
    train = raster_matrix(pages("train"))
    held_r = raster_matrix(held)
    feats = np.stack([page_features(p) for p in held])
    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mu) / sd
    return {
        "train": train,
        "feat_mu": mu,
        "feat_sd": sd,
        "z_mean": z.mean(0),
        "z_cov": np.cov(z, rowvar=False),
        "diversity": mean_pairwise(held_r[:300]),
        "novelty": float(np.median(nearest_distance(held_r, train))),
        "alignment": float(np.mean([alignment(p) for p in held])),
        "overlap": float(np.mean([overlap(p) for p in held])),
    }


def reference_figures() -> dict[str, float]:
    """The held-out pages' own alignment and overlap (what :func:`layout_metrics` compares to)."""
    ref = _reference()
    return {"alignment": ref["alignment"], "overlap": ref["overlap"]}


def layout_metrics(layouts: list[Any], domain: Any | None = None) -> dict[str, float]:
    from bbo.bench.metrics import frechet_distance

    if domain is None:
        from bbo.domains.layout.domain import LayoutDomain

        domain = LayoutDomain()
    valid = [domain.canonical(p) for p in layouts if domain.validate(p) is None]
    out: dict[str, float] = {"validity": len(valid) / len(layouts) if layouts else float("nan")}
    if not valid:
        return out
    ref = _reference()
    feats = (np.stack([page_features(p) for p in valid]) - ref["feat_mu"]) / ref["feat_sd"]
    raster = raster_matrix(valid)
    out["alignment"] = float(np.mean([alignment(p) for p in valid]))
    out["overlap"] = float(np.mean([overlap(p) for p in valid]))
    if len(valid) >= 2:
        out["feature_fd"] = frechet_distance(feats.mean(0), np.cov(feats, rowvar=False), ref["z_mean"], ref["z_cov"])
        out["diversity"] = mean_pairwise(raster) / ref["diversity"]
    out["novelty"] = float(np.median(nearest_distance(raster, ref["train"]))) / ref["novelty"]
    return out
