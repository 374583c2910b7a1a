"""Naturalness of molecules: validity, uniqueness, novelty, internal diversity, SA, QED, filter
alerts and the Frechet ChemNet distance (MOSES's metrics, Polykovskiy et al. 2020)."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence

import numpy as np

from oracles.chem import canonical_smiles, mol_from_smiles, morgan_fingerprint, sa_score, tanimoto_matrix



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
