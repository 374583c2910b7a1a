"""Denoisers: ``forward(x_t, t) -> eps``. Each has a ``name`` and a JSON ``config()`` so that a
checkpoint is safetensors weights plus JSON, never a pickle.

* :class:`GaussianMixtureDenoiser`: the exact noise prediction of a Gaussian mixture (no weights
  to learn), the ground truth of the analytic tests.
* :class:`MLPDenoiser`: a residual MLP with a sinusoidal time embedding, for vectors and latents.
* :class:`UNet2DDenoiser`: diffusers' ``UNet2DModel``, for images in pixel space.
* :class:`SetTransformerDenoiser`: a transformer over the slots of a set (``batch x slots x
  features``) without positional encodings, so it is permutation-equivariant, for layouts.
* :class:`ResidualDenoiser`: a frozen base plus a trainable correction whose last layer starts
  at zero, so a policy starts exactly at its prior.
* :class:`NoiseGatedCorrection`: such a correction scaled by ``sqrt(alpha_bar_t)``, which keeps the
  first sampling step well conditioned for fine-tuning.
* :class:`StitchedDenoiser`: one denoiser above a timestep and another below it (P-GRAFT's
  sampler), so a stitched policy saves and loads like any prior.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from diffusers import DDPMScheduler
from torch import nn

DENOISERS: dict[str, type[nn.Module]] = {}


def register_denoiser(cls: type[nn.Module]) -> type[nn.Module]:
    DENOISERS[cls.name] = cls
    return cls


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps, ``batch x dim``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return torch.nn.functional.pad(emb, (0, dim % 2))


@register_denoiser
class GaussianMixtureDenoiser(nn.Module):
    """Exact epsilon of a Gaussian mixture prior ``sum_k w_k N(mu_k, s_k^2 I)`` under the forward
    process ``x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps``: the noised marginal is the mixture
    ``sum_k w_k N(sqrt(abar) mu_k, (abar s_k^2 + 1 - abar) I)`` and ``eps = -sqrt(1 - abar) score``.
    """

    name = "gaussian_mixture"

    def __init__(self, means: Any, stds: Any, weights: Any, alphas_cumprod: Any) -> None:
        super().__init__()
        means = torch.as_tensor(means, dtype=torch.float32)
        self.register_buffer("means", means.reshape(means.shape[0], -1))
        self.register_buffer("stds", torch.as_tensor(stds, dtype=torch.float32).reshape(-1))
        w = torch.as_tensor(weights, dtype=torch.float32).reshape(-1)
        self.register_buffer("weights", w / w.sum())
        self.register_buffer("alphas_cumprod", torch.as_tensor(alphas_cumprod, dtype=torch.float32))
        if not (len(self.stds) == len(self.weights) == self.means.shape[0]):
            raise ValueError("means, stds and weights must have one entry per component")

    def score(self, x: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
        """Score ``grad log p_t(x)`` at noise level ``abar`` (``batch``), x: ``batch x d``."""
        abar = abar.reshape(-1, 1, 1)
        mu = abar.sqrt() * self.means[None]  # batch x K x d
        var = abar * self.stds[None, :, None] ** 2 + (1 - abar)  # batch x K x 1
        diff = x[:, None, :] - mu
        d = x.shape[-1]
        logp = (-0.5 * (diff**2).sum(-1) / var[..., 0] - 0.5 * d * torch.log(2 * math.pi * var[..., 0])
                + torch.log(self.weights)[None])
        resp = torch.softmax(logp, dim=1)  # batch x K
        return -(resp[..., None] * diff / var).sum(1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = self.alphas_cumprod[t.long()]
        return -(1 - abar).sqrt()[:, None] * self.score(x, abar)

    def config(self) -> dict[str, Any]:
        return {"means": self.means.tolist(), "stds": self.stds.tolist(), "weights": self.weights.tolist(),
                "alphas_cumprod": self.alphas_cumprod.tolist()}


@register_denoiser
class MLPDenoiser(nn.Module):
    """Residual MLP epsilon-predictor on flat vectors ``batch x dim`` with a time embedding."""

    name = "mlp"

    def __init__(self, dim: int, hidden: int = 256, depth: int = 3, time_dim: int = 64) -> None:
        super().__init__()
        self.dim, self.hidden, self.depth, self.time_dim = int(dim), int(hidden), int(depth), int(time_dim)
        self.inp = nn.Linear(self.dim, self.hidden)
        self.time = nn.Sequential(nn.Linear(self.time_dim, self.hidden), nn.SiLU(), nn.Linear(self.hidden, self.hidden))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(self.hidden), nn.Linear(self.hidden, self.hidden), nn.SiLU(),
                          nn.Linear(self.hidden, self.hidden))
            for _ in range(self.depth)
        )
        self.out = nn.Sequential(nn.LayerNorm(self.hidden), nn.Linear(self.hidden, self.dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.inp(x.flatten(1)) + self.time(timestep_embedding(t, self.time_dim))
        for block in self.blocks:
            h = h + block(h)
        return self.out(h).reshape(x.shape)

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim, "hidden": self.hidden, "depth": self.depth, "time_dim": self.time_dim}


@register_denoiser
class UNet2DDenoiser(nn.Module):
    """diffusers' ``UNet2DModel`` as an epsilon predictor on ``batch x C x H x W``; ``config`` holds
    the keyword arguments the UNet was built with (plain JSON), so it rebuilds without diffusers'
    own config files."""

    name = "unet2d"

    def __init__(self, **unet_kwargs: Any) -> None:
        super().__init__()
        from diffusers import UNet2DModel

        self.unet_kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in unet_kwargs.items()}
        self.unet = UNet2DModel(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.unet_kwargs.items()})

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t).sample

    def config(self) -> dict[str, Any]:
        return dict(self.unet_kwargs)


@register_denoiser
class SetTransformerDenoiser(nn.Module):
    """Permutation-equivariant epsilon predictor on sets, ``batch x slots x features``.

    Each slot (one element of a layout, padding included) is embedded, the time embedding is
    added to every slot, and pre-norm transformer layers let the slots attend to each other.
    There is no positional encoding, so permuting the slots of ``x`` permutes the output the same
    way: the model cannot depend on the order in which a page lists its elements. Padding needs
    no attention mask here: an absent element is a slot whose presence channel says so, and the
    model denoises it like any other coordinate.
    """

    name = "set_transformer"

    def __init__(self, features: int, width: int = 128, depth: int = 4, heads: int = 4, time_dim: int = 64) -> None:
        super().__init__()
        self.features, self.width, self.depth, self.heads, self.time_dim = (
            int(features), int(width), int(depth), int(heads), int(time_dim))
        self.inp = nn.Linear(self.features, self.width)
        self.time = nn.Sequential(nn.Linear(self.time_dim, self.width), nn.SiLU(), nn.Linear(self.width, self.width))
        layer = nn.TransformerEncoderLayer(self.width, self.heads, dim_feedforward=2 * self.width, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, self.depth, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(self.width), nn.Linear(self.width, self.features))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        h = self.inp(x) + self.time(timestep_embedding(t, self.time_dim)).unsqueeze(1)
        return self.out(self.blocks(h))

    def config(self) -> dict[str, Any]:
        return {"features": self.features, "width": self.width, "depth": self.depth, "heads": self.heads,
                "time_dim": self.time_dim}


@register_denoiser
class ResidualDenoiser(nn.Module):
    """``eps = base(x, t) + correction(x, t)`` with a frozen base and a zero-initialised last layer:
    a trainable policy that starts exactly at its prior (used for priors with no weights of their
    own, such as the Gaussian mixture)."""

    name = "residual"

    def __init__(self, base: nn.Module, correction: nn.Module) -> None:
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.correction = correction
        last = [m for m in correction.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.base(x, t) + self.correction(x, t)

    def config(self) -> dict[str, Any]:
        return {
            "base": {"name": self.base.name, "config": self.base.config()},
            "correction": {"name": self.correction.name, "config": self.correction.config()},
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ResidualDenoiser:
        return cls(build_denoiser(config["base"]), build_denoiser(config["correction"]))


@register_denoiser
class NoiseGatedCorrection(nn.Module):
    """``sqrt(alpha_bar_t) * inner(x, t)``: a residual correction that fades out at pure noise.

    The KL-optimal change of the noise prediction under a reward tilt is
    ``-sqrt(1 - a) grad log h_t = -sqrt(a / (1 - a)) (E_tilted[x_0 | x_t] - E[x_0 | x_t])``, which
    vanishes like ``sqrt(a)`` at pure noise. Gating the correction by ``sqrt(a)`` builds that in and
    keeps the first sampling step well conditioned: with the cosine schedule, ``alpha_bar(999)`` is
    about 2e-9 and the DDIM mean of the step 999 -> 992 multiplies an ungated eps change by ~220,
    which makes the exact KL of that step ~5e4 times stiffer than the others' and stalls training.
    """

    name = "noise_gated"

    def __init__(self, inner: nn.Module, num_train_timesteps: int = 1000,
                 beta_schedule: str = "squaredcos_cap_v2") -> None:
        super().__init__()
        self.inner = inner
        self.schedule_config = {"num_train_timesteps": int(num_train_timesteps), "beta_schedule": beta_schedule}
        abar = DDPMScheduler(**self.schedule_config).alphas_cumprod.clone().float()
        self.register_buffer("gate", abar.sqrt(), persistent=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        g = self.gate[t.long().clamp(min=0)].to(x.dtype)
        return g.reshape(-1, *([1] * (x.ndim - 1))) * self.inner(x, t)

    def config(self) -> dict[str, Any]:
        return {"inner": {"name": self.inner.name, "config": self.inner.config()}, **self.schedule_config}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> NoiseGatedCorrection:
        return cls(build_denoiser(config["inner"]), config["num_train_timesteps"], config["beta_schedule"])


@register_denoiser
class StitchedDenoiser(nn.Module):
    """``policy(x, t)`` for timesteps ``t > t_switch`` and ``base(x, t)`` for ``t <= t_switch``: the
    P-GRAFT sampler (fine-tuned from T to t_I, the frozen prior from t_I to 0) as one denoiser, so a
    stitched policy is an ordinary :class:`DiffusionPrior` that saves and loads."""

    name = "stitched"

    def __init__(self, policy: nn.Module, base: nn.Module, t_switch: int) -> None:
        super().__init__()
        self.policy = policy
        self.base = base
        self.t_switch = int(t_switch)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        upper = t > self.t_switch
        if bool(upper.all()):
            return self.policy(x, t)
        if not bool(upper.any()):
            return self.base(x, t)
        mask = upper.reshape(-1, *([1] * (x.ndim - 1)))
        return torch.where(mask, self.policy(x, t), self.base(x, t))

    def config(self) -> dict[str, Any]:
        return {
            "policy": {"name": self.policy.name, "config": self.policy.config()},
            "base": {"name": self.base.name, "config": self.base.config()},
            "t_switch": self.t_switch,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> StitchedDenoiser:
        return cls(build_denoiser(config["policy"]), build_denoiser(config["base"]), config["t_switch"])


def build_denoiser(spec: dict[str, Any]) -> nn.Module:
    """A denoiser from ``{"name": ..., "config": {...}}`` (weights loaded separately)."""
    name = spec.get("name")
    if name not in DENOISERS:
        raise ValueError(f"unknown denoiser {name!r}; known: {', '.join(sorted(DENOISERS))}")
    cls = DENOISERS[name]
    if hasattr(cls, "from_config"):
        return cls.from_config(spec["config"])
    return cls(**spec["config"])
