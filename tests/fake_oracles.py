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


class Troublesome(LinearVector):
    """``linear_vector``, except that it hangs (``hang`` seconds) when ``x[0] > hang_above``, raises
    when ``x[0] < raise_below``, and SIGKILLs its own process when ``x[0]`` lies in ``kill_between``
    (always, or only the first time such an object is scored when ``kill_once`` names a marker file)."""

    name = "troublesome"

    def __init__(self, delay: float = 0.0, hang_above: float = float("inf"), hang: float = 60.0,
                 raise_below: float = -float("inf"), kill_between: tuple[float, float] | None = None,
                 kill_once: str | None = None) -> None:
        super().__init__(delay=delay)
        self.hang_above, self.hang, self.raise_below = hang_above, hang, raise_below
        self.kill_between, self.kill_once = kill_between, kill_once

    def score(self, x) -> float:
        if self.kill_between is not None and self.kill_between[0] < x[0] < self.kill_between[1]:
            if self.kill_once is None or not os.path.exists(self.kill_once):
                if self.kill_once is not None:
                    open(self.kill_once, "w").close()
                os.kill(os.getpid(), 9)
        if x[0] > self.hang_above:
            time.sleep(self.hang)
        if x[0] < self.raise_below:
            raise ValueError(f"cannot score x[0] = {x[0]:.3f}")
        return super().score(x)


def troublesome(**kwargs) -> Troublesome:
    return Troublesome(**kwargs)


class ThreadsSeen(Oracle):
    """The torch threads of the process that scores (any 2-D vector): where the thread budget
    reached."""

    name = "threads_seen"
    domain = "vector"

    def score(self, x) -> float:
        import torch

        return float(torch.get_num_threads())


def threads_seen() -> ThreadsSeen:
    return ThreadsSeen()
