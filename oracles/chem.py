"""RDKit helpers shared by the molecule oracles and by bbo's metrics: parsing, canonical SMILES,
Morgan fingerprints, Tanimoto similarity and the synthetic-accessibility score."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import rdFingerprintGenerator

RDLogger.DisableLog("rdApp.*")  # parse failures are reported by the caller, not on stderr


#: SMILES longer than this are not parsed: RDKit's writer overflows the C stack (a segfault, not an
#: exception) near 18,000 chain atoms, and nothing drug-like comes near this length
MAX_SMILES_LENGTH = 2000
#: oracles score at most this many heavy atoms: some PMO scorers grow as n^3 (deco_hop and
#: scaffold_hop take several seconds at 100 chain atoms); every PMO reference molecule is far below
MAX_ORACLE_HEAVY_ATOMS = 100


def smiles_size_problem(smiles: str) -> str | None:
    """Why ``smiles`` is too long to parse safely, or None."""
    if isinstance(smiles, str) and len(smiles) > MAX_SMILES_LENGTH:
        return f"SMILES of {len(smiles):,} characters is longer than the limit of {MAX_SMILES_LENGTH:,}"
    return None


def mol_from_smiles(smiles: str) -> Chem.Mol | None:
    """Parse a SMILES string; None for anything RDKit cannot parse (or an empty molecule) and for
    strings longer than :data:`MAX_SMILES_LENGTH`."""
    if not isinstance(smiles, str) or not smiles.strip() or len(smiles) > MAX_SMILES_LENGTH:
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return mol


def canonical_smiles(smiles: str) -> str | None:
    """RDKit canonical SMILES (isomeric), or None when the string is not a molecule."""
    mol = mol_from_smiles(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


@functools.lru_cache(maxsize=8)
def _morgan_generator(radius: int, n_bits: int):
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)


def morgan_fingerprint(mol: Chem.Mol, radius: int = 2, n_bits: int = 2048):
    """Morgan (ECFP-like) bit vector, RDKit's ExplicitBitVect."""
    return _morgan_generator(radius, n_bits).GetFingerprint(mol)


def morgan_count_fingerprint(mol: Chem.Mol, radius: int = 2, n_bits: int = 2048):
    """Morgan count vector (hashed), RDKit's UIntSparseIntVect-like count fingerprint."""
    return _morgan_generator(radius, n_bits).GetCountFingerprint(mol)


def tanimoto_matrix(fps_a: Sequence, fps_b: Sequence) -> np.ndarray:
    """Pairwise Tanimoto similarities, ``len(a) x len(b)``."""
    return np.array([DataStructs.BulkTanimotoSimilarity(fp, list(fps_b)) for fp in fps_a]).reshape(
        len(fps_a), len(fps_b)
    )


@functools.lru_cache(maxsize=1)
def _sascorer():
    from rdkit.Contrib.SA_Score import sascorer  # shipped with RDKit's wheels

    return sascorer


def sa_score(mol: Chem.Mol) -> float:
    """Ertl and Schuffenhauer's synthetic accessibility score, 1 (easy) to 10 (hard)."""
    return float(_sascorer().calculateScore(mol))
