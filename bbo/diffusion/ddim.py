"""The one DDIM step (Song et al. 2021) every sampler, fine-tuner and distiller uses.

From ``x_t`` with noise prediction ``eps``, DDIM's step to ``t_prev`` is the Gaussian
``N(c_x x_t + c_eps eps, sigma^2 I)`` with, for ``a = alpha_bar(t)``, ``a' = alpha_bar(t_prev)``,

    sigma^2 = eta^2 (1 - a') / (1 - a) (1 - a / a'),
    c_x     = sqrt(a' / a),
    c_eps   = sqrt(1 - a' - sigma^2) - c_x sqrt(1 - a),

the clean-sample estimate ``(x_t - sqrt(1 - a) eps) / sqrt(a)`` folded into the mean. ``eta = 1``
is the stochastic sampler the fine-tuners read as a policy (its sigma is the DDPM posterior's);
``eta = 0`` the probability-flow ODE step of consistency distillation. ``t_prev = -1`` is the clean
end (``a' = 1``, sigma 0). Coefficients are computed in double precision (no cancellation at the
noisiest steps) and broadcast over per-sample timesteps; ``tests/diffusion/test_prior.py`` checks
them against ``diffusers.DDIMScheduler.step``.
"""

from __future__ import annotations

import math

import torch


def ddim_coefficients(abar_t: torch.Tensor, abar_prev: torch.Tensor, eta: float = 1.0
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(c_x, c_eps, sigma)`` of the step, each shaped like the (broadcast) inputs, float64."""
    a_t, a_prev = torch.as_tensor(abar_t).double(), torch.as_tensor(abar_prev).double()
    var = eta**2 * (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
    c_x = (a_prev / a_t).sqrt()
    c_eps = (1 - a_prev - var).clamp(min=0).sqrt() - c_x * (1 - a_t).sqrt()
    return c_x, c_eps, var.clamp(min=0).sqrt()


def per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A scalar or ``batch`` vector of coefficients, shaped to multiply ``batch x *shape`` tensors."""
    v = v.to(like.device, like.dtype)
    return v.reshape(-1, *([1] * (like.ndim - 1))) if v.ndim else v


def ddim_mean(x: torch.Tensor, eps: torch.Tensor, abar_t: torch.Tensor, abar_prev: torch.Tensor,
              eta: float = 1.0) -> torch.Tensor:
    """The step's mean ``c_x x + c_eps eps``, differentiable in ``eps`` (and ``x``)."""
    c_x, c_eps, _ = ddim_coefficients(abar_t, abar_prev, eta)
    return per_sample(c_x, x) * x + per_sample(c_eps, x) * eps


def gaussian_log_prob(x_prev: torch.Tensor, mean: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``log N(x_prev; mean, sigma^2 I)`` per sample (``batch``); sigma scalar or per sample."""
    sigma = per_sample(torch.as_tensor(sigma, dtype=torch.float64), mean)
    d = mean[0].numel()
    sq = (((x_prev - mean) / sigma) ** 2).flatten(1).sum(1)
    log_sigma = torch.log(sigma).flatten() if sigma.ndim else torch.log(sigma).expand(mean.shape[0])
    return -0.5 * sq - d * log_sigma.reshape(-1) - 0.5 * d * math.log(2 * math.pi)
