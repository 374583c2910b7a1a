"""Cheap, deterministic oracles for tests: no chemistry beyond parsing, optional logging of calls."""

from __future__ import annotations

import os
import time

from oracles.base import Oracle
from oracles.chem import canonical_smiles, mol_from_smiles


class HeavyAtoms(Oracle):
    """Number of heavy atoms; logs each finished call (canonical SMILES) to ``log`` if given."""

    name = "heavy_atoms"
    domain = "molecule"

    def __init__(self, log: str | None = None, delay: float = 0.0, n_jobs: int = 1) -> None:
        super().__init__(n_jobs)
        self.log, self.delay = log, delay

    def key(self, obj):
        return canonical_smiles(obj)

    def score(self, smiles: str) -> float:
        mol = mol_from_smiles(smiles)
        if self.delay:
            time.sleep(self.delay)
        if self.log:
            with open(self.log, "a") as f:
                f.write(canonical_smiles(smiles) + "\n")
                f.flush()
                os.fsync(f.fileno())
        return float(mol.GetNumHeavyAtoms())


def heavy_atoms(log: str | None = None, delay: float = 0.0, n_jobs: int = 1) -> HeavyAtoms:
    return HeavyAtoms(log=log, delay=delay, n_jobs=n_jobs)


class LinearVector(Oracle):
    """``x[0] + 0.5 x[1]`` on 2-D vectors, optionally slowed down (to be killed mid-run)."""

    name = "linear_vector"
    domain = "vector"

    def __init__(self, delay: float = 0.0, n_jobs: int = 1) -> None:
        super().__init__(n_jobs)
        self.delay = delay

    def score(self, x) -> float:
        if self.delay:
            time.sleep(self.delay)
        return float(x[0] + 0.5 * x[1])


def linear_vector(delay: float = 0.0, n_jobs: int = 1) -> LinearVector:
    return LinearVector(delay=delay, n_jobs=n_jobs)
