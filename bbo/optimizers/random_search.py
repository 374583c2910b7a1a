"""The random baseline: draw objects without learning from the told values.

Without a prior it draws from the domain's reference distribution (``Domain.sample_reference``:
uniform MOSES training molecules, N(0, I) vectors; a repeat is answered from the oracle cache for
free). Given a ``prior`` it samples that diffusion prior instead: the non-adaptive baseline of the
generative optimizers, which start from the same prior and differ only by learning from the told
values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from bbo.optimizer import Optimizer, register_optimizer
from bbo.strategy import PriorSetting, Settings, Strategy, stored_prior


class RandomSettings(Settings):
    """prior: a diffusion prior to sample (name or directory); None draws the domain's reference.
    sample_steps: DDIM steps per prior sample (default the prior's). device: None = CUDA when present."""

    prior: PriorSetting | None = None
    sample_steps: int | None = Field(None, ge=1)
    device: str | None = None


class RandomStrategy(Strategy):
    """Every ask is an independent draw from a fixed distribution."""

    name = "random"
    Settings = RandomSettings
    runtime_settings = ("device",)
    default_domain = "molecule"

    def __init__(self, settings: RandomSettings, study: Optimizer) -> None:
        super().__init__(settings, study)
        self.prior = None
        if settings.prior is not None:
            import torch

            from bbo.diffusion import load_prior

            device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
            self.prior = load_prior(settings.prior, device=device)

    def natural_domain(self) -> str | dict[str, Any] | None:
        return None if self.prior is None else self.prior.domain_spec()

    def check_domain(self, domain: Any) -> None:
        if self.prior is None and not domain.supports("sample_reference"):
            raise ValueError(f"random: the {domain.name!r} domain has no reference distribution to draw from; "
                             f"give a prior")

    def propose(self, n: int, rng: np.random.Generator, study: Optimizer) -> list[Any]:
        if self.prior is not None:
            from bbo.optimizers.generative import sample_valid

            return sample_valid(self.prior, study.domain, n, rng, self.settings.sample_steps)
        return study.domain.sample_reference(n, rng)

    def config(self) -> dict[str, Any]:
        return stored_prior(super().config())


@register_optimizer
class RandomOptimizer(Optimizer):
    """Non-adaptive baseline (settings: :class:`RandomSettings`)."""

    name = "random"
    strategy_class = RandomStrategy
