"""Benchmark metrics: PMO's top-k AUC, top-k means, diversity and naturalness of molecules.

The AUC follows Gao et al. 2022 (PMO): walk the oracle calls in order; every ``freq`` calls
take the mean of the k best values so far; integrate with the trapezoid rule from a starting
value of 0; extend the last value to the budget if the run stopped early; divide by the budget.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Iterable, Sequence

import numpy as np

from oracles.chem import canonical_smiles, mol_from_smiles, morgan_fingerprint, sa_score, tanimoto_matrix


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


# ----------------------------------------------------------------------------------- molecules


def internal_diversity(smiles: Sequence[str]) -> float:
    """Mean pairwise Tanimoto distance (Morgan r=2, 2048 bits) over distinct pairs; NaN below 2."""
    fps = [morgan_fingerprint(m) for m in (mol_from_smiles(s) for s in smiles) if m is not None]
    if len(fps) < 2:
        return math.nan
    sim = tanimoto_matrix(fps, fps)
    n = len(fps)
    return float(1.0 - (sim.sum() - np.trace(sim)) / (n * (n - 1)))


def validity(smiles: Sequence[str]) -> float:
    """Share of strings RDKit parses into a molecule."""
    if not smiles:
        return math.nan
    return sum(mol_from_smiles(s) is not None for s in smiles) / len(smiles)


def uniqueness(smiles: Sequence[str]) -> float:
    """Share of distinct canonical SMILES among the valid ones."""
    canon = [c for c in (canonical_smiles(s) for s in smiles) if c is not None]
    return len(set(canon)) / len(canon) if canon else math.nan


def novelty(smiles: Sequence[str], reference: Iterable[str]) -> float:
    """Share of distinct valid molecules not in ``reference`` (canonical SMILES compared)."""
    canon = {c for c in (canonical_smiles(s) for s in smiles) if c is not None}
    if not canon:
        return math.nan
    ref = reference if isinstance(reference, (set, frozenset)) else set(reference)
    return sum(c not in ref for c in canon) / len(canon)


def mean_sa(smiles: Sequence[str]) -> float:
    """Mean synthetic-accessibility score of the valid molecules (1 easy .. 10 hard)."""
    scores = [sa_score(m) for m in (mol_from_smiles(s) for s in smiles) if m is not None]
    return float(np.mean(scores)) if scores else math.nan


def mean_qed(smiles: Sequence[str]) -> float:
    """Mean QED of the valid molecules."""
    from rdkit.Chem import QED

    scores = [QED.qed(m) for m in (mol_from_smiles(s) for s in smiles) if m is not None]
    return float(np.mean(scores)) if scores else math.nan


def filter_pass_rate(smiles: Sequence[str], catalogs: Sequence[str] = ("PAINS", "BRENK")) -> float:
    """Share of valid molecules that match no alert of RDKit's filter catalogs (PAINS, Brenk)."""
    from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

    params = FilterCatalogParams()
    for name in catalogs:
        params.AddCatalog(getattr(FilterCatalogParams.FilterCatalogs, name))
    catalog = FilterCatalog(params)
    mols = [m for m in (mol_from_smiles(s) for s in smiles) if m is not None]
    return sum(not catalog.HasMatch(m) for m in mols) / len(mols) if mols else math.nan


def frechet_chemnet_distance(smiles: Sequence[str], reference: Sequence[str], device: str | None = None) -> float:
    """FCD (Preuer et al. 2018) between two sets of molecules with the ChemNet that ships in the
    ``fcd`` package (no download). It is biased upwards for small sets: compare like sizes
    (MOSES uses 10,000 generated molecules against its test split)."""
    from scipy import linalg

    valid = [s for s in smiles if mol_from_smiles(s) is not None]
    if len(valid) < 2 or len(reference) < 2:
        raise ValueError("FCD needs at least two valid molecules on each side")
    a, b = _chemnet_activations(valid, device), _chemnet_activations(list(reference), device)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # near-singular product: regularize, as the reference code does
        eps = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _chemnet_activations(smiles: list[str], device: str | None) -> np.ndarray:
    """ChemNet's penultimate activations (``n x 512``), from the ``fcd`` package's model and
    SMILES featurization."""
    import torch
    from fcd.utils import SmilesDataset
    from torch.utils.data import DataLoader

    model = _chemnet()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    parts = []
    with torch.no_grad():
        for start in range(0, len(smiles), 4096):
            loader = DataLoader(SmilesDataset(smiles[start : start + 4096]), batch_size=256)
            # clone: ChemNet's output is a view into its whole LSTM output, which would stay alive
            parts += [model(batch.transpose(1, 2).float().to(device)).cpu().clone().numpy() for batch in loader]
    return np.vstack(parts).astype(np.float64)


@functools.lru_cache(maxsize=1)
def _chemnet():
    from fcd import load_ref_model

    return load_ref_model().eval()
