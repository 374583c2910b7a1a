"""CMA-ES in a diffusion prior's noise space: the second noise-space baseline beside GP-BO, the
search an evolution strategy makes over the prior's initial noise (objects are the deterministic
sampler's decodings of their noise ``z``: :mod:`bbo.optimizers.noise_space`).

The prior's noise distribution ``N(0, I)`` is CMA-ES's own search distribution at mean 0 and step
size 1, so the first generation is a batch of prior samples and the evolution strategy (Hansen,
"The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772; the ``cma`` package) moves the mean,
step size and covariance from there. A generation is ``popsize`` consecutive asks (default the
batch size); the strategy is told a generation once all its trials are told (a failed call ranks
last), in ask order. Its state is replayed from the journal at every ask (the stored ``z`` and
scores), so, as for noise-space GP-BO, the optimizer has no state beyond its journal and resumes
asking what an uninterrupted run would. Asks past an untold generation sample the latest
distribution. No restarts: at the budgets here (tens of generations) the step size does not
collapse.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from bbo.optimizer import Optimizer, register_optimizer
from bbo.optimizers.noise_space import NoiseSpaceSettings, NoiseSpaceStrategy
from bbo.study import TrialState

#: the seed of the throwaway normal draws of a replayed ``ask`` (its samples are replaced by the stored ones)
REPLAY_SEED = 0


class NoiseCMASettings(NoiseSpaceSettings):
    """sigma0: the initial step size (1 = the prior's own noise scale). popsize: asks per
    generation (None = the batch size; at least 4). diagonal: adapt only a diagonal covariance
    (sep-CMA-ES: cheaper per generation in very large noise spaces, slower to learn
    correlations). The prior's settings: :class:`~bbo.optimizers.noise_space.NoiseSpaceSettings`."""

    sigma0: float = Field(1.0, gt=0, le=10)
    popsize: int | None = Field(None, ge=4, le=10_000)
    diagonal: bool = False


class NoiseCMAStrategy(NoiseSpaceStrategy):
    """CMA-ES over a diffusion prior's initial noise, decoded by its deterministic sampler."""

    name = "noise_cma"
    Settings = NoiseCMASettings

    def __init__(self, settings: NoiseCMASettings, study: Optimizer) -> None:
        super().__init__(settings, study)
        self.es = None  # the evolution strategy after the last replay (for inspection)
        self._draws: dict[str, np.random.Generator] = {}

    def popsize(self, study: Optimizer) -> int:
        return max(4, int(self.settings.popsize or study.batch_size))

    def replay(self, study: Optimizer):
        """A fresh ``cma.CMAEvolutionStrategy`` told every complete generation of the journal in
        ask order; stops at the first generation with a trial still running."""
        import cma

        s = self.settings
        draws = {"rng": np.random.default_rng(REPLAY_SEED)}
        self._draws = draws
        lam = self.popsize(study)
        opts = {"popsize": lam, "randn": lambda *shape: draws["rng"].standard_normal(shape),
                "CMA_diagonal": s.diagonal,
                "verbose": -9, "verb_disp": 0, "verb_log": 0}
        es = cma.CMAEvolutionStrategy(np.zeros(self.dim), s.sigma0, opts)
        trials = self.asked_with_noise(study)
        for start in range(0, len(trials) - lam + 1, lam):
            generation = trials[start:start + lam]
            if any(t.state is TrialState.RUNNING for t in generation):
                break
            scores = np.array([study.score(t.value) if t.state is TrialState.COMPLETE else np.nan
                               for t in generation])
            worst = np.nanmin(scores) if np.isfinite(scores).any() else 0.0
            es.ask()  # the library's iteration protocol; its samples are replaced by the stored ones
            es.tell(list(self.noise_of(generation)), list(-np.where(np.isfinite(scores), scores, worst - 1.0)))
        return es

    def noises(self, n: int, rng: np.random.Generator, study: Optimizer) -> np.ndarray:
        self.es = self.replay(study)
        self._draws["rng"] = rng
        return np.asarray(self.es.ask(n), dtype=np.float64)

    def replacement_noise(self, rng: np.random.Generator) -> np.ndarray:
        self._draws["rng"] = rng
        return np.asarray(self.es.ask(1), dtype=np.float64)

    def state(self) -> dict[str, Any]:
        """Where the last replay left the search: generations told, mean, step size."""
        es = self.es
        return {} if es is None else {"generations": int(es.countiter), "sigma": float(es.sigma),
                                      "mean": np.asarray(es.mean, dtype=np.float64)}


@register_optimizer
class NoiseCMAOptimizer(Optimizer):
    """CMA-ES over a diffusion prior's initial noise (settings: :class:`NoiseCMASettings`)."""

    name = "noise_cma"
    strategy_class = NoiseCMAStrategy
