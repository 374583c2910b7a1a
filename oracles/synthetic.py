"""Synthetic oracles on vectors: known optima and a chosen cost per call, for checking an
installation, an executor or a cluster before spending a real budget on it."""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

import numpy as np

from oracles.base import Oracle, register


class Sphere(Oracle):
    """``-sum(x**2)`` over ``dim``-vectors (maximum 0 at the origin), each call taking ``delay``
    seconds of wall time (sleeping, no CPU): with ``jitter`` the delay is ``delay`` times an
    exponential draw seeded by the vector itself, so the slow calls are the same on every run."""

    name = "synthetic/sphere"

    def __init__(self, dim: int = 2, delay: float = 0.0, jitter: bool = False, n_jobs: int = 1) -> None:
        super().__init__(n_jobs)
        if int(dim) < 1 or not math.isfinite(delay) or delay < 0:
            raise ValueError(f"synthetic/sphere: dim must be >= 1 and delay >= 0 seconds, got {dim}, {delay}")
        self.dim, self.delay, self.jitter = int(dim), float(delay), bool(jitter)
        self.domain = {"name": "vector", "dim": self.dim}

    def score(self, obj: Any) -> float:
        x = np.asarray(obj, dtype=np.float64)
        if x.shape != (self.dim,) or not np.all(np.isfinite(x)):
            raise ValueError(f"expected a finite vector of {self.dim} numbers, got shape {x.shape}")
        if self.delay:
            time.sleep(self.call_time(x))
        return float(-np.sum(x**2))

    def call_time(self, x: Any) -> float:
        """The seconds a call on ``x`` sleeps: the same for the same vector on every run."""
        if not self.jitter:
            return self.delay
        seed = int.from_bytes(hashlib.sha256(np.asarray(x, dtype=np.float64).tobytes()).digest()[:8], "little")
        return self.delay * float(np.random.default_rng(seed).exponential())


@register("synthetic/sphere", domain="vector", description="-|x|^2 on vectors, with a chosen wall time per call")
def sphere(dim: int = 2, delay: float = 0.0, jitter: bool = False, n_jobs: int = 1) -> Sphere:
    return Sphere(dim=dim, delay=delay, jitter=jitter, n_jobs=n_jobs)
