"""Benchmark metrics of any domain: PMO's top-k AUC and top-k means over oracle calls, and the
Fréchet distance that the domains' naturalness figures share.

Naturalness metrics belong to each domain (``Domain.naturalness``; molecules:
:mod:`bbo.domains.molecule.metrics`).

The AUC follows Gao et al. 2022 (PMO): walk the oracle calls in order; every ``freq`` calls
take the mean of the k best values so far; integrate with the trapezoid rule from a starting
value of 0; extend the last value to the budget if the run stopped early; divide by the budget.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence

import numpy as np



def topk_mean(values: Iterable[float], k: int) -> float:
    """Mean of the ``k`` largest values (of all of them when there are fewer); NaN if none."""
    top = heapq.nlargest(k, (v for v in values if not math.isnan(v)))
    return float(np.mean(top)) if top else math.nan


def topk_curve(values: Sequence[float], k: int) -> np.ndarray:
    """Top-k mean after each call: ``curve[i]`` is the mean of the k best of ``values[:i+1]``."""
    heap: list[float] = []
    total = 0.0
    out = np.full(len(values), math.nan)
    for i, v in enumerate(values):
        if not math.isnan(v):
            if len(heap) < k:
                heapq.heappush(heap, v)
                total += v
            elif v > heap[0]:
                total += v - heapq.heapreplace(heap, v)
        if heap:
            out[i] = total / len(heap)
    return out


def topk_auc(values: Sequence[float], k: int, budget: int | None = None, freq: int = 100,
             start: float | None = 0.0) -> float:
    """PMO top-k AUC of the values of unique oracle calls, in call order (maximize).

    Failed calls (NaN) count as calls but never enter the top k. ``budget`` defaults to the
    number of calls; a shorter run is extended at its last top-k mean. The first trapezoid
    starts from ``start``: PMO's 0, the worst score of its [0, 1] tasks; None starts from the
    first call's value, the neutral choice for objectives without a natural floor.
    """
    n = len(values)
    budget = n if budget is None else int(budget)
    if budget <= 0:
        raise ValueError(f"topk_auc: budget must be positive, got {budget}")
    values = list(values)[:budget]
    n = len(values)
    if n == 0:
        return 0.0
    raw = topk_curve(values, k)
    if start is None:
        first = raw[~np.isnan(raw)]
        start = float(first[0]) if len(first) else 0.0
    curve = np.where(np.isnan(raw), start, raw)
    area, prev, called = 0.0, float(start), 0
    for idx in range(freq, n, freq):  # grid points strictly before the last call
        now = curve[idx - 1]
        area += freq * (now + prev) / 2
        prev, called = now, idx
    last = curve[n - 1]
    area += (n - called) * (last + prev) / 2
    area += (budget - n) * last
    return float(area / budget)


def unique_calls(keys: Sequence[str], values: Sequence[float]) -> tuple[list[str], list[float]]:
    """The oracle calls of a history: the first occurrence of each key, in order."""
    seen: set[str] = set()
    out_k, out_v = [], []
    for key, v in zip(keys, values):
        if key not in seen:
            seen.add(key)
            out_k.append(key)
            out_v.append(v)
    return out_k, out_v


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2))``, the squared 2-Wasserstein distance
    between two Gaussians (Dowson and Landau 1982)."""
    import warnings

    from scipy import linalg

    with warnings.catch_warnings():  # a singular product is expected (e.g. a collapsed sample) and handled
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov1 @ cov2)
        if not np.all(np.isfinite(covmean)):  # near-singular product: regularize, as FID implementations do
            eps = 1e-6 * np.eye(len(mu1))
            covmean = linalg.sqrtm((cov1 + eps) @ (cov2 + eps))
    covmean = np.real(covmean)
    fd = float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))
    return max(fd, 0.0)  # rounding can leave -1e-12 for identical sets
