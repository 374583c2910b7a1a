"""Consistency distillation (Song et al. 2023, "CD") of any :class:`DiffusionPrior`.

A consistency model maps a noisy ``x_t`` straight to the end of the prior's probability-flow ODE
(deterministic DDIM, eta = 0) through ``x_t``: one network call instead of a whole ODE solve. SQDF
uses it as its clean-sample estimate ``x0_hat(x_{t-1})``.

Parametrisation (boundary condition built in). With ``a = alpha_bar(t)`` and ``s = sigma_data``
(the scalar standard deviation of the prior's samples),

    f(x, t) = c_skip(t) x + c_out(t) F(c_in(t) x, t),
    c_skip = s^2 sqrt(a) / (a s^2 + 1 - a),   c_out = s sqrt(1 - a) / sqrt(a s^2 + 1 - a),
    c_in   = 1 / sqrt(a s^2 + 1 - a).

``c_skip x`` is the posterior mean and ``c_out`` the posterior standard deviation of ``x_0`` had
the data been ``N(0, s^2 I)`` (EDM's preconditioning written for the variance-preserving process),
so ``F`` only learns an O(1) correction; at the clean end (``t = -1``, ``a = 1``) ``c_skip = 1`` and
``c_out = 0``, so ``f(x, -1) = x`` exactly: the consistency boundary condition.

Distillation: clean samples come from the prior itself (``prior.sample_tensors``), so no data set
is needed. For a timestep ``t`` drawn uniformly from the training scale and ``t' = t - Delta``
(``Delta = num_train_timesteps / ode_steps``; ``t' = -1`` when it falls below 0), noise
``x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) z``, take one DDIM eta = 0 step of the frozen prior to
``x_{t'}``, and minimise ``|f_theta(x_t, t) - f_ema(x_{t'}, t')|^2`` with ``f_ema`` an exponential
moving average of ``f_theta`` (no gradient through it). Drawing ``t`` from every integer timestep
(instead of a fixed grid) lets the model be queried at any sampling schedule's timesteps.

A consistency model is saved next to its prior as ``consistency.safetensors`` plus
``consistency.json``, the one model format of :mod:`bbo.diffusion.checkpoint`.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch
from diffusers import DDPMScheduler
from torch import nn

from bbo.diffusion.denoisers import MLPDenoiser, build_denoiser
from bbo.diffusion.prior import DiffusionPrior



class ConsistencyModel(nn.Module):
    """``forward(x_t, t) -> x0_hat``: the end of the probability-flow ODE through ``x_t``.

    Args:
        network: ``F``, any module ``forward(x, t) -> tensor shaped like x`` with a registry
            ``name`` and ``config()`` (e.g. :class:`MLPDenoiser`) so that the model can be saved.
        shape: per-sample shape of the diffusion space.
        sigma_data: scalar standard deviation of clean samples (preconditioning).
        num_train_timesteps, beta_schedule: the prior's DDPM schedule (diffusers names).
        info: free-form JSON metadata (distillation settings, final loss).
    """

    name = "consistency"

    def __init__(self, network: nn.Module, shape: tuple[int, ...], sigma_data: float, *,
                 num_train_timesteps: int = 1000, beta_schedule: str = "squaredcos_cap_v2",
                 info: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.network = network
        self.shape = tuple(int(s) for s in shape)
        self.sigma_data = float(sigma_data)
        self.schedule_config = {"num_train_timesteps": int(num_train_timesteps), "beta_schedule": beta_schedule}
        self.info = dict(info or {})
        abar = DDPMScheduler(**self.schedule_config).alphas_cumprod.clone().float()
        self.register_buffer("alphas_cumprod", abar, persistent=False)

    def _abar(self, t: torch.Tensor) -> torch.Tensor:
        out = self.alphas_cumprod[t.clamp(min=0)]
        return torch.where(t < 0, torch.ones_like(out), out)

    def coefficients(self, t: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(c_skip, c_out, c_in)`` at integer timesteps ``t`` (``-1`` = the clean end)."""
        t = torch.as_tensor(t, device=self.alphas_cumprod.device).long()
        a = self._abar(t).double()
        s2 = self.sigma_data**2
        denom = a * s2 + 1 - a
        c_skip = s2 * a.sqrt() / denom
        c_out = self.sigma_data * (1 - a).clamp(min=0).sqrt() / denom.sqrt()
        return c_skip.float(), c_out.float(), denom.rsqrt().float()

    def forward(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device).long()
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        c_skip, c_out, c_in = (_expand(c, x) for c in self.coefficients(t))
        return c_skip * x + c_out * self.network(c_in * x, t.clamp(min=0))

    def config(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "sigma_data": self.sigma_data,
            **self.schedule_config,
            "network": {"name": self.network.name, "config": self.network.config()},
            "info": self.info,
        }


def _expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.to(like.device, like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


# ----------------------------------------------------------------------------------- training
def ddim_ode_step(prior: DiffusionPrior, x: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor) -> torch.Tensor:
    """One deterministic DDIM (eta = 0) step of ``prior`` from per-sample timesteps ``t`` to
    ``t_prev`` (``-1`` = the clean end): the probability-flow ODE solver of the distillation."""
    return prior.step_mean(x, t, t_prev, eta=0.0)


@torch.no_grad()
def ode_endpoint(prior: DiffusionPrior, x: torch.Tensor, t: int, steps: int = 200) -> torch.Tensor:
    """The end of the prior's probability-flow ODE from ``x`` at timestep ``t`` (DDIM eta = 0 with
    about ``steps`` equal steps down to the clean end); the reference a consistency model learns."""
    grid = torch.linspace(float(t), 0.0, max(int(steps), 1) + 1).round().long().unique_consecutive().tolist()
    grid = grid + [-1]
    for a, b in zip(grid[:-1], grid[1:]):
        n = x.shape[0]
        x = ddim_ode_step(prior, x, torch.full((n,), a, device=x.device), torch.full((n,), b, device=x.device))
    return x


@torch.no_grad()
def _prior_samples(prior: DiffusionPrior, n: int, steps: int | None, generator: torch.Generator,
                   chunk: int = 4096) -> torch.Tensor:
    out = []
    for i in range(0, n, chunk):
        out.append(prior.sample_tensors(min(chunk, n - i), steps=steps, generator=generator))
    return torch.cat(out)


def distill_consistency(
    prior: DiffusionPrior,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    network: nn.Module | str | None = None,
    *,
    ode_steps: int = 50,
    ema_decay: float = 0.95,
    data_size: int = 8192,
    data_steps: int | None = None,
    hidden: int = 128,
    depth: int = 3,
    grad_clip: float = 1.0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> ConsistencyModel:
    """Distil a consistency model from ``prior`` along its probability-flow ODE.

    Args:
        prior: the (frozen) diffusion prior; its denoiser is the ODE solver's velocity.
        steps: optimisation steps; batch_size: pairs per step; lr: AdamW learning rate.
        seed: seeds the prior samples, the noise, the timesteps and the network's initialisation.
        network: ``F``; None builds an :class:`MLPDenoiser` (``hidden``, ``depth``) over the
            flattened shape; ``"copy"`` deep-copies the prior's denoiser (only its architecture
            and weights as a starting point: it is re-purposed as ``F``, not as an eps predictor).
        ode_steps: N of CD: the distance between the two timesteps of a pair is
            ``num_train_timesteps / ode_steps`` (one DDIM step of the prior).
        ema_decay: rate of the target network's EMA (Song et al. used 0.95 for CD on CIFAR-10).
        data_size: clean samples drawn from the prior (``data_steps`` DDIM eta = 1 steps, default
            the prior's own) and reused as the distillation data.
        device: None = CUDA when present.
    Returns:
        the EMA (target) consistency model, in eval mode with its parameters frozen.
    """
    from tqdm.auto import tqdm

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if prior.alphas_cumprod.device != device:
        prior = copy.deepcopy(prior).to(device)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    dim = math.prod(prior.shape)
    if network is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))  # the network's initialisation, without touching global RNG
            network = MLPDenoiser(dim, hidden=hidden, depth=depth)
    elif isinstance(network, str):
        if network != "copy":
            raise ValueError(f"network must be a module, None or 'copy', got {network!r}")
        network = copy.deepcopy(prior.denoiser)
        if not any(True for _ in network.parameters()):
            raise ValueError("network='copy' needs a prior whose denoiser has parameters")
        for p in network.parameters():
            p.requires_grad_(True)
    n_train = int(prior.schedule_config["num_train_timesteps"])
    delta = max(n_train // int(ode_steps), 1)

    was_training = prior.training
    prior.eval()
    frozen = [(p, p.requires_grad) for p in prior.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    try:
        data = _prior_samples(prior, int(data_size), data_steps, gen).to(device)
        sigma_data = float(data.std().clamp(min=1e-3))
        model = ConsistencyModel(network, prior.shape, sigma_data, **prior.schedule_config,
                                 info={"ode_steps": int(ode_steps), "ema_decay": float(ema_decay),
                                       "steps": int(steps), "batch_size": int(batch_size), "lr": float(lr),
                                       "seed": int(seed), "data_size": int(data_size)}).to(device)
        target = copy.deepcopy(model)
        for p in target.parameters():
            p.requires_grad_(False)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
        history: list[float] = []
        bar = tqdm(range(int(steps)), desc="consistency distillation", disable=not progress, leave=False)
        for _ in bar:
            idx = torch.randint(0, data.shape[0], (batch_size,), generator=gen, device=device)
            x0 = data[idx]
            t = torch.randint(0, n_train, (batch_size,), generator=gen, device=device)
            t_prev = t - delta
            t_prev = torch.where(t_prev < 0, torch.full_like(t_prev, -1), t_prev)
            z = torch.randn(x0.shape, generator=gen, device=device)
            a = _expand(prior.alpha_bar(t), x0)
            x_t = a.sqrt() * x0 + (1 - a).sqrt() * z
            with torch.no_grad():
                x_prev = ddim_ode_step(prior, x_t, t, t_prev)
                y = target(x_prev, t_prev)
            loss = ((model(x_t, t) - y) ** 2).flatten(1).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            with torch.no_grad():
                for pt, pm in zip(target.parameters(), model.parameters()):
                    pt.lerp_(pm, 1 - ema_decay)
            history.append(loss.item())
            if progress and len(history) % 50 == 0:
                bar.set_postfix(loss=f"{sum(history[-50:]) / 50:.4f}")
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
        prior.train(was_training)
    target.info["final_loss"] = sum(history[-100:]) / max(len(history[-100:]), 1)
    target.history = history
    return target.eval()


# ------------------------------------------------------------------------------ persistence
def save_consistency(model: ConsistencyModel, directory: str | Path) -> Path:
    """Write ``model`` as ``consistency.safetensors`` + ``consistency.json`` into ``directory``
    (typically ``<prior dir>/consistency``), in :mod:`bbo.diffusion.checkpoint`'s one format."""
    from bbo.diffusion.checkpoint import save_model

    save_model(model, directory, "consistency")
    return Path(directory)


def build_consistency(spec: dict[str, Any]) -> ConsistencyModel:
    """A consistency model from its ``{"name": "consistency", "config": ...}`` (weights not loaded)."""
    if spec.get("name") != ConsistencyModel.name:
        raise ValueError(f"expected a consistency model, got {spec.get('name')!r}")
    config = spec["config"]
    return ConsistencyModel(build_denoiser(config["network"]), tuple(config["shape"]), config["sigma_data"],
                            num_train_timesteps=config["num_train_timesteps"], beta_schedule=config["beta_schedule"],
                            info=config.get("info"))


def load_consistency(directory: str | Path, device: str | torch.device | None = None) -> ConsistencyModel:
    """Load a consistency model written by :func:`save_consistency` (no pickle)."""
    from bbo.diffusion.checkpoint import load_model, load_weights, read_json

    directory = Path(directory)
    if not (directory / "consistency.json").exists():
        raise FileNotFoundError(f"{directory}: missing consistency.json; is this a directory written by save_consistency?")
    spec = read_json(directory / "consistency.json")
    if spec.get("format") == "bbo-consistency/1":  # the earlier layout: the network's weights alone
        model = build_consistency({"name": ConsistencyModel.name, "config": spec})
        load_weights(model, directory / "consistency.safetensors", "consistency", rename=lambda k: f"network.{k}")
    else:
        model = load_model(directory, "consistency", build_consistency)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    return model.to(device) if device else model


# ------------------------------------------------------------------------------- measurement
@torch.no_grad()
def estimator_errors(prior: DiffusionPrior, consistency: ConsistencyModel, n: int = 1000,
                     steps: int | None = None, *, fractions: tuple[float, ...] = (0.1, 0.5, 0.9),
                     ode_steps: int | None = 200, seed: int = 0) -> list[dict[str, float]]:
    """Error of the consistency estimate and of Tweedie's estimate of the clean sample, at early,
    middle and late steps of ``n`` stochastic (DDIM eta = 1) trajectories sampled from ``prior``
    with ``steps`` steps.

    Rows (one per fraction of the trajectory, 0 = pure noise): ``step``, ``t``, then root mean
    squared errors (L2 over the sample's dimensions)

    * ``cm_vs_end`` / ``tweedie_vs_end``: to the trajectory's own, stochastic endpoint. Tweedie,
      the posterior mean, is the MSE-optimal predictor of that endpoint when the trajectory follows
      the prior, so it is expected to win here; the consistency estimate is a sample-like point.
    * ``cm_vs_ode`` / ``tweedie_vs_ode``: to the end of the probability-flow ODE through the same
      state (``ode_steps`` fine DDIM eta = 0 steps of the prior; skipped when None): what the
      consistency model is meant to predict.
    * ``edist_cm`` / ``edist_tweedie``: energy distance between the set of estimates and the set
      of endpoints (is each estimate distributed like a clean sample? Tweedie's collapse toward
      the posterior mean shows here; the ODE maps the noisy marginal onto the data distribution).
    """
    device = prior.alphas_cumprod.device
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    traj = prior.sample_tensors(n, steps=steps, generator=gen, return_trajectory=True)
    consistency = consistency.to(device)
    rows = []
    k_total = traj.num_steps
    for frac in fractions:
        k = min(int(round(frac * k_total)), k_total - 1)
        t = int(traj.timesteps[k])
        x_t = traj.states[k]
        cm = consistency(x_t, t)
        tw = prior.tweedie_x0(x_t, t)
        end = traj.x0
        row: dict[str, float] = {"step": k, "t": t,
                                 "cm_vs_end": _rmse(cm, end), "tweedie_vs_end": _rmse(tw, end)}
        if ode_steps:
            ode = ode_endpoint(prior, x_t, t, ode_steps)
            row.update(cm_vs_ode=_rmse(cm, ode), tweedie_vs_ode=_rmse(tw, ode))
        row.update(edist_cm=energy_distance(cm, end), edist_tweedie=energy_distance(tw, end))
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, float]]) -> str:
    """A plain-text table of :func:`estimator_errors`' rows."""
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["  ".join(f"{k:>14}" for k in keys)]
    for r in rows:
        lines.append("  ".join(f"{r[k]:>14.4f}" if isinstance(r[k], float) else f"{r[k]:>14}" for k in keys))
    return "\n".join(lines)


def energy_distance(a: torch.Tensor, b: torch.Tensor, max_n: int = 2000) -> float:
    """Energy distance ``2 E|A-B| - E|A-A'| - E|B-B'|`` between two sample sets (flattened;
    at most ``max_n`` of each are used)."""
    a, b = a.flatten(1)[:max_n].double(), b.flatten(1)[:max_n].double()
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


def _rmse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b) ** 2).flatten(1).sum(1).mean().sqrt())
