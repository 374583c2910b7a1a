"""``GaussianMixturePrior``: a diffusion prior whose score is exact, for checks with known answers.

Its density, exact samples and the KL-regularized optimum under a linear reward are all in
closed form. For ``p(x) = sum_k w_k N(mu_k, s_k^2 I)`` and ``r(x) = c . x``, the optimum
``p*(x) ∝ p(x) exp(r(x) / alpha)`` is the mixture with

    mu_k* = mu_k + s_k^2 c / alpha,
    w_k*  ∝ w_k exp(c . mu_k / alpha + s_k^2 |c|^2 / (2 alpha^2)),

(complete the square in each component: ``N(x; mu, s^2 I) exp(c.x/alpha) =
exp(c.mu/alpha + s^2|c|^2/(2 alpha^2)) N(x; mu + s^2 c/alpha, s^2 I)``), same s_k.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from bbo.diffusion.denoisers import GaussianMixtureDenoiser
from bbo.diffusion.prior import DiffusionPrior


class GaussianMixturePrior(DiffusionPrior):
    """Isotropic Gaussian mixture in R^d as a diffusion prior (exact epsilon, no network).

    Args:
        means: ``K x d`` component means.
        stds: ``K`` component standard deviations.
        weights: ``K`` mixture weights (normalised here).
        num_steps: default number of sampling steps.
        codec, domain: as :class:`DiffusionPrior` (a mixture over a codec's space, e.g. in tests).
    """

    def __init__(self, means: Any, stds: Any, weights: Any, num_steps: int = 100, *,
                 num_train_timesteps: int = 1000, beta_schedule: str = "squaredcos_cap_v2",
                 codec: Any = None, domain: str | dict[str, Any] | None = None) -> None:
        means_t = torch.as_tensor(means, dtype=torch.float32)
        if means_t.ndim != 2:
            raise ValueError(f"means must be K x d, got shape {tuple(means_t.shape)}")
        placeholder = torch.ones(num_train_timesteps)
        super().__init__(
            GaussianMixtureDenoiser(means_t, stds, weights, placeholder), (means_t.shape[1],),
            num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule, sample_steps=num_steps,
            codec=codec, domain=domain,
        )
        self.denoiser.alphas_cumprod.copy_(self.alphas_cumprod)

    @property
    def means(self) -> torch.Tensor:
        return self.denoiser.means

    @property
    def stds(self) -> torch.Tensor:
        return self.denoiser.stds

    @property
    def weights(self) -> torch.Tensor:
        return self.denoiser.weights

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)`` of the clean mixture, ``batch``."""
        d = self.means.shape[1]
        diff = x[:, None, :] - self.means[None]
        var = self.stds[None] ** 2
        comp = -0.5 * (diff**2).sum(-1) / var - 0.5 * d * torch.log(2 * math.pi * var)
        return torch.logsumexp(comp + torch.log(self.weights)[None], dim=1)

    def sample_exact(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Direct samples of the mixture (no diffusion), ``n x d``."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn((n, self.means.shape[1]), generator=generator)
        return self.means[k] + self.stds[k, None] * noise

    def tilted(self, direction: Any, alpha: float) -> GaussianMixturePrior:
        """The KL-regularized optimum ``p* ∝ p exp(c . x / alpha)`` for the linear reward ``c . x``."""
        c = torch.as_tensor(direction, dtype=torch.float32).reshape(-1)
        s2 = self.stds**2
        means = self.means + s2[:, None] * c[None] / alpha
        logw = torch.log(self.weights) + self.means @ c / alpha + s2 * (c @ c) / (2 * alpha**2)
        return GaussianMixturePrior(means, self.stds, torch.softmax(logw, 0), self.sample_steps,
                                    **self.schedule_config)

    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """Most likely component of each sample, ``batch`` (for mixture-weight estimates)."""
        d2 = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)
        return (-0.5 * d2 / self.stds[None] ** 2 - self.means.shape[1] * torch.log(self.stds)[None]
                + torch.log(self.weights)[None]).argmax(1)
