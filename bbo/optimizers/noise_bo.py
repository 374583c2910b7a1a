"""Bayesian optimization in a diffusion prior's noise space: the baseline that searches the
prior's initial noise instead of fine-tuning it (objects are the deterministic sampler's decodings
of their noise ``z``: :mod:`bbo.optimizers.noise_space`).

The GP works on ``u = Phi(z)`` in the unit cube (``Phi`` the standard normal CDF), where the prior
is uniform; TuRBO-1's trust region (Eriksson et al., "Scalable Global Optimization via Local
Bayesian Optimization", NeurIPS 2019) keeps the search local around the best ``u``, as BoTorch's
TuRBO tutorial builds it:

1. the first ``n_initial`` asks draw ``z`` from the prior;
2. then a ``SingleTaskGP`` (BoTorch's default kernel and priors, standardized outcome) is fitted
   on the told ``(u, y)``; the trust region is a box around the best ``u``, its side ``length``
   scaled per dimension by the GP's lengthscales;
3. ``n_candidates`` Sobol points in the box (each perturbing a random subset of about 20
   coordinates of the centre) are scored by Thompson sampling, the batch is its ``n`` maxima;
4. ``length`` doubles after ``success_tolerance`` improving batches in a row and halves after
   ``failure_tolerance`` failing ones; below ``length_min`` it restarts at ``length_init`` (the
   data are kept).

The trust region is replayed from the journal at every ask, so the optimizer has no state beyond
its journal.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from pydantic import Field, model_validator

from bbo.optimizer import Optimizer, register_optimizer
from bbo.optimizers.noise_space import NoiseSpaceSettings, NoiseSpaceStrategy
from bbo.study import TrialState

#: u is kept this far inside the unit cube, so Phi^-1(u) stays finite (|z| < 5.3)
U_EPS = 1e-7


class NoiseBOSettings(NoiseSpaceSettings):
    """TuRBO-1's settings (see the module docstring) beside the prior's
    (:class:`~bbo.optimizers.noise_space.NoiseSpaceSettings`); ``failure_tolerance`` None is
    TuRBO's ``ceil(max(4, dim) / batch_size)``. The GP runs on the CPU in float64."""

    n_initial: int = Field(100, ge=2)
    n_candidates: int = Field(2000, ge=1, le=100_000)
    length_init: float = Field(0.8, gt=0, le=2)
    length_min: float = Field(0.5**7, gt=0)
    length_max: float = Field(1.6, gt=0, le=2)
    success_tolerance: int = Field(3, ge=1)
    failure_tolerance: int | None = Field(None, ge=1)
    max_train: int = Field(2000, ge=2)

    @model_validator(mode="after")
    def _ordered_lengths(self) -> NoiseBOSettings:
        if not self.length_min <= self.length_init <= self.length_max:
            raise ValueError(f"need length_min <= length_init <= length_max, got {self.length_min}, "
                             f"{self.length_init}, {self.length_max}")
        return self


class NoiseBOStrategy(NoiseSpaceStrategy):
    """TuRBO-1 over a diffusion prior's initial noise, decoded by its deterministic sampler."""

    name = "noise_bo"
    Settings = NoiseBOSettings

    def __init__(self, settings: NoiseBOSettings, study: Optimizer) -> None:
        super().__init__(settings, study)
        self.state: dict[str, Any] = {}  # the trust region after the last replay (for inspection)

    def noises(self, n: int, rng: np.random.Generator, study: Optimizer) -> np.ndarray:
        u_data, y_data = self._told(study)
        if len(y_data) < self.settings.n_initial:
            return rng.standard_normal((n, self.dim))
        return _probit(self._turbo(n, u_data, y_data, rng, study))

    def _told(self, study: Optimizer) -> tuple[np.ndarray, np.ndarray]:
        """``u`` and scores of the COMPLETE asked trials, in ask order."""
        trials = [t for t in self.asked_with_noise(study) if t.state is TrialState.COMPLETE]
        y = np.array([study.score(t.value) for t in trials], dtype=np.float64)
        return _phi(self.noise_of(trials)), y

    def trust_region(self, y: np.ndarray, batch_size: int) -> dict[str, Any]:
        """TuRBO-1's state replayed over the told scores in ask order, batch by batch after the
        initial design: ``length``, the success and failure counters, restarts so far."""
        s = self.settings
        fail_tol = s.failure_tolerance or math.ceil(max(4.0, float(self.dim)) / batch_size)
        state = {"length": s.length_init, "success": 0, "failure": 0, "restarts": 0,
                 "failure_tolerance": fail_tol}
        best = float(np.max(y[: s.n_initial]))
        for start in range(s.n_initial, len(y), batch_size):
            batch = y[start:start + batch_size]
            if batch.max() > best + 1e-3 * abs(best):
                state["success"], state["failure"] = state["success"] + 1, 0
            else:
                state["success"], state["failure"] = 0, state["failure"] + 1
            if state["success"] == s.success_tolerance:
                state["length"], state["success"] = min(2.0 * state["length"], s.length_max), 0
            elif state["failure"] == fail_tol:
                state["length"], state["failure"] = state["length"] / 2.0, 0
            best = max(best, float(batch.max()))
            if state["length"] < s.length_min:
                state.update(length=s.length_init, success=0, failure=0, restarts=state["restarts"] + 1)
        return state

    def _turbo(self, n: int, u: np.ndarray, y: np.ndarray, rng: np.random.Generator, study: Optimizer) -> np.ndarray:
        from botorch.fit import fit_gpytorch_mll
        from botorch.generation import MaxPosteriorSampling
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from gpytorch.mlls import ExactMarginalLogLikelihood
        from linear_operator.utils.warnings import NumericalWarning

        from bbo.optimizers.botorch_bo import TORCH_THREADS, _torch_threads

        s = self.settings
        self.state = state = self.trust_region(y, study.batch_size)
        if len(y) > s.max_train:  # the best ones: the trust region lives around them
            keep = np.argsort(-y, kind="stable")[: s.max_train]
            u, y = u[keep], y[keep]
        seed = int(rng.integers(2**31))
        with _torch_threads(TORCH_THREADS), torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore", NumericalWarning)  # jitter added to a near-singular Gram matrix
            torch.manual_seed(seed)
            X = torch.as_tensor(u, dtype=torch.float64)
            Y = torch.as_tensor(y, dtype=torch.float64)[:, None]
            model = SingleTaskGP(X, Y, outcome_transform=Standardize(m=1))
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            centre = X[Y[:, 0].argmax()]
            lengthscale = model.covar_module.lengthscale.detach().reshape(-1)
            if lengthscale.numel() == 1:
                lengthscale = lengthscale.expand(self.dim)
            weights = lengthscale / lengthscale.mean()
            weights = weights / weights.log().mean().exp()  # product 1: the box keeps TuRBO's volume
            lo = (centre - weights * state["length"] / 2).clamp(0.0, 1.0)
            hi = (centre + weights * state["length"] / 2).clamp(0.0, 1.0)
            sobol = torch.quasirandom.SobolEngine(self.dim, scramble=True, seed=seed)
            pert = lo + (hi - lo) * sobol.draw(s.n_candidates).to(torch.float64)
            prob = min(20.0 / self.dim, 1.0)
            mask = torch.rand(s.n_candidates, self.dim, dtype=torch.float64) <= prob
            none = mask.sum(1) == 0
            mask[none, torch.randint(0, self.dim, (int(none.sum()),))] = True
            candidates = torch.where(mask, pert, centre.expand_as(pert))
            with torch.no_grad():
                chosen = MaxPosteriorSampling(model=model, replacement=False)(candidates, num_samples=n)
        return chosen.numpy()


def _phi(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(z)


def _probit(u: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return ndtri(np.clip(u, U_EPS, 1 - U_EPS))


@register_optimizer
class NoiseBOOptimizer(Optimizer):
    """TuRBO-style GP-BO over a diffusion prior's initial noise (settings: :class:`NoiseBOSettings`)."""

    name = "noise_bo"
    strategy_class = NoiseBOStrategy
