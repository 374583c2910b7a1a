"""The random baseline: draw objects without learning from the told values.

For molecules it draws uniformly from the MOSES training set (with replacement; a repeat is
answered from the oracle cache for free). For vectors it draws from N(0, I).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bbo.domains import Domain
from bbo.optimizer import Direction, Optimizer, register_optimizer


@register_optimizer
class RandomOptimizer(Optimizer):
    """Non-adaptive baseline: every ask is an independent draw from a fixed distribution."""

    name = "random"

    def __init__(
        self,
        *,
        domain: str | dict[str, Any] | Domain = "molecule",
        batch_size: int = 64,
        round_size: int | None = None,
        seed: int = 0,
        storage: str | Path | None = None,
        direction: Direction = "maximize",
    ) -> None:
        super().__init__(
            domain=domain, batch_size=batch_size, round_size=round_size, seed=seed, storage=storage,
            direction=direction,
        )
        if self.domain.name not in ("molecule", "vector"):
            raise ValueError(f"RandomOptimizer has no distribution for the {self.domain.name!r} domain")
        self._open()

    def _propose(self, n: int, rng: np.random.Generator) -> list[Any]:
        if self.domain.name == "molecule":
            from bbo.data import moses_smiles

            pool = moses_smiles("train")
            return [pool[i] for i in rng.integers(len(pool), size=n)]
        return list(rng.standard_normal((n, self.domain.dim)))
