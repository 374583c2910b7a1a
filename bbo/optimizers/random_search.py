"""The random baseline: draw objects without learning from the told values.

For molecules it draws uniformly from the MOSES training set (with replacement; a repeat is
answered from the oracle cache for free). For vectors it draws from N(0, I). Given a ``prior``
it samples that diffusion prior instead: the non-adaptive baseline of the generative optimizers,
which start from the same prior and differ only by learning from the told values.
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
    runtime_settings = ("device",)

    def __init__(
        self,
        *,
        domain: str | dict[str, Any] | Domain = "molecule",
        batch_size: int = 64,
        round_size: int | None = None,
        seed: int = 0,
        storage: str | Path | None = None,
        direction: Direction = "maximize",
        prior: str | Path | None = None,
        sample_steps: int | None = None,
        device: str | None = None,
    ) -> None:
        self.prior = None
        if prior is not None:
            import torch

            from bbo.diffusion import load_prior

            self.prior = load_prior(prior, device=device or ("cuda" if torch.cuda.is_available() else "cpu"))
            domain = self.prior.domain_spec()
        self.sample_steps = sample_steps
        super().__init__(
            domain=domain, batch_size=batch_size, round_size=round_size, seed=seed, storage=storage,
            direction=direction,
        )
        if self.domain.name not in ("molecule", "vector"):
            raise ValueError(f"RandomOptimizer has no distribution for the {self.domain.name!r} domain")
        self._open()

    def _propose(self, n: int, rng: np.random.Generator) -> list[Any]:
        if self.prior is not None:
            from bbo.optimizers.generative import sample_valid

            return sample_valid(self.prior, self.domain, n, rng, self.sample_steps)
        if self.domain.name == "molecule":
            from bbo.data import moses_smiles

            pool = moses_smiles("train")
            return [pool[i] for i in rng.integers(len(pool), size=n)]
        return list(rng.standard_normal((n, self.domain.dim)))
