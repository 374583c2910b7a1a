"""``DiffusionPrior``: a time-conditioned denoiser, a diffusers noise schedule and a codec.

The reverse process is read as a policy: one DDIM step with eta = 1 from ``x_t`` is the Gaussian
``N(mean(x_t, t), sigma_t^2 I)``, and a sample is a trajectory of such steps. Fine-tuning methods
(SQDF, P-GRAFT) only need what is here: the step's mean and sigma, Tweedie's clean-sample
estimate, and sampling that can return the whole trajectory. The step is computed in closed form
from the scheduler's ``alphas_cumprod`` (checked against ``DDIMScheduler.step`` in the tests) so
that it stays differentiable in the denoiser's parameters.

Tensor shapes: ``batch x *shape`` where ``shape`` is the per-object shape of the diffusion space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

from bbo.diffusion.codec import Codec
from bbo.diffusion.ddim import ddim_coefficients, gaussian_log_prob, per_sample


@dataclass
class Trajectory:
    """A sampled reverse trajectory of ``K`` steps for ``batch`` samples.

    Attributes:
        states: ``(K + 1) x batch x *shape``; ``states[0]`` is the initial noise x_T and
            ``states[K]`` the clean sample x_0.
        timesteps: ``K`` training-scale timesteps; step ``k`` goes from ``states[k]`` (at
            ``timesteps[k]``) to ``states[k + 1]``.
        means: ``K x batch x *shape``, the Gaussian policy's mean at each step.
        sigmas: ``K`` standard deviations (0 at the final step).
    """

    states: torch.Tensor
    timesteps: torch.Tensor
    means: torch.Tensor
    sigmas: torch.Tensor

    @property
    def num_steps(self) -> int:
        return len(self.timesteps)

    @property
    def x0(self) -> torch.Tensor:
        return self.states[-1]


class DiffusionPrior(nn.Module):
    """A pretrained diffusion model over a domain, usable as a sampler and as a policy.

    Args:
        denoiser: ``nn.Module`` with ``forward(x_t, t) -> eps`` (epsilon prediction),
            ``t`` a ``batch`` tensor of integer timesteps on the training scale.
        shape: per-sample shape of the diffusion space.
        codec: turns objects into diffusion-space tensors and back (:class:`~bbo.diffusion.codec.Codec`;
            None: the tensors are the objects, vectors of the flattened shape).
        domain: the domain its objects belong to (a domain spec); default the codec's, else vectors.
        num_train_timesteps, beta_schedule: the DDPM training schedule (diffusers names). The
            default is ``"linear"`` for learned denoisers: under ``"squaredcos_cap_v2"``
            alpha_bar at t = 999 is 2.4e-9, so the first trailing DDIM step multiplies any error of
            a learned eps by sqrt(alpha_bar_prev / alpha_bar_T) (~600 at 50 steps) and samples
            diverge; the linear schedule's factor is ~1.2. Exact-score priors (the Gaussian
            mixture) can use the cosine schedule safely.
        sample_steps: default number of DDIM steps for sampling.
    """

    def __init__(
        self,
        denoiser: nn.Module,
        shape: tuple[int, ...],
        codec: Codec | None = None,
        *,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "linear",
        sample_steps: int = 50,
        info: dict[str, Any] | None = None,
        domain: str | dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.shape = tuple(int(s) for s in shape)
        self.codec = codec
        if domain is None:
            domain = getattr(codec, "domain", None) if codec is not None else None
        if domain is None:
            if codec is not None:
                raise ValueError(f"the codec {getattr(codec, 'name', codec)!r} declares no domain; pass domain=")
            domain = {"name": "vector", "dim": int(torch.Size(self.shape).numel())}
        self.domain = domain
        self.sample_steps = int(sample_steps)
        self.info = dict(info or {})
        self.source = None  # the checkpoint directory it was loaded from (see load_prior)
        self.schedule_config = {"num_train_timesteps": int(num_train_timesteps), "beta_schedule": beta_schedule}
        self.train_scheduler = DDPMScheduler(**self.schedule_config, clip_sample=False, prediction_type="epsilon")
        self.register_buffer("alphas_cumprod", self.train_scheduler.alphas_cumprod.clone().float(), persistent=False)

    # ------------------------------------------------------------------------- schedules
    def sampling_scheduler(self, steps: int | None = None) -> DDIMScheduler:
        """The DDIM scheduler (eta = 1 when stepping) with ``steps`` timesteps, trailing spacing so
        that sampling starts from pure noise."""
        sched = DDIMScheduler(
            **self.schedule_config, clip_sample=False, set_alpha_to_one=True, prediction_type="epsilon",
            timestep_spacing="trailing",
        )
        sched.set_timesteps(int(steps or self.sample_steps))
        return sched

    def timesteps(self, steps: int | None = None) -> torch.Tensor:
        return self.sampling_scheduler(steps).timesteps.clone()

    def alpha_bar(self, t: torch.Tensor | int) -> torch.Tensor:
        """``alpha_bar`` at integer timesteps (a scalar or per-sample tensor); ``-1``, the clean end,
        gives 1.0."""
        t = torch.as_tensor(t, device=self.alphas_cumprod.device).long()
        out = self.alphas_cumprod[t.clamp(min=0)]
        return torch.where(t < 0, torch.ones_like(out), out)

    def previous_timestep(self, t: int, steps: int | None = None) -> int:
        n = int(self.schedule_config["num_train_timesteps"])
        return int(t) - n // int(steps or self.sample_steps)

    # --------------------------------------------------------------------- the policy
    def eps(self, x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """The denoiser's noise prediction at ``x`` (``batch x *shape``) and timestep ``t``."""
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        return self.denoiser(x, t)

    def tweedie_x0(self, x: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor | None = None) -> torch.Tensor:
        """Tweedie's one-step clean-sample estimate ``(x - sqrt(1 - abar) eps) / sqrt(abar)``."""
        eps = self.eps(x, t) if eps is None else eps
        abar = per_sample(self.alpha_bar(t), x)
        return (x - (1 - abar).sqrt() * eps) / abar.sqrt()

    def step_coefficients(self, t: torch.Tensor | int, t_prev: torch.Tensor | int, eta: float = 1.0
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(c_x, c_eps, sigma)`` of the DDIM step ``t -> t_prev``: ``mean = c_x x_t + c_eps eps``
        (:func:`bbo.diffusion.ddim.ddim_coefficients`; float64, scalar or per sample)."""
        return ddim_coefficients(self.alpha_bar(t), self.alpha_bar(t_prev), eta)

    def step_sigma(self, t: int, t_prev: int) -> float:
        """DDIM eta = 1 standard deviation of the step ``t -> t_prev`` (the DDPM posterior's)."""
        return float(self.step_coefficients(t, t_prev)[2])

    def step_mean(self, x: torch.Tensor, t: torch.Tensor | int, t_prev: torch.Tensor | int,
                  eps: torch.Tensor | None = None, eta: float = 1.0) -> torch.Tensor:
        """Mean of the Gaussian step ``x_t -> x_{t_prev}`` (DDIM, eta = 1 by default), for one
        timestep or per-sample timesteps, differentiable in the denoiser's parameters."""
        eps = self.eps(x, t) if eps is None else eps
        c_x, c_eps, _ = self.step_coefficients(t, t_prev, eta)
        return per_sample(c_x, x) * x + per_sample(c_eps, x) * eps

    def step_log_prob(self, x_prev: torch.Tensor, x: torch.Tensor, t: torch.Tensor | int,
                      t_prev: torch.Tensor | int) -> torch.Tensor:
        """``log pi(x_prev | x_t)`` of the stochastic (eta = 1) step, per sample; the final,
        deterministic step has no density (sigma 0) and is refused."""
        sigma = self.step_coefficients(t, t_prev)[2]
        if bool((sigma <= 0).any()):
            raise ValueError("the step to the clean end is deterministic: it has no log-probability")
        return gaussian_log_prob(x_prev, self.step_mean(x, t, t_prev), sigma)

    # ------------------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample_tensors(
        self,
        n: int,
        *,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        return_trajectory: bool = False,
        x_T: torch.Tensor | None = None,
        stop_at: int | None = None,
        then: DiffusionPrior | None = None,
        eta: float = 1.0,
    ) -> torch.Tensor | Trajectory:
        """Sample ``n`` diffusion-space tensors (``n x *shape``), or the whole trajectory.

        ``stop_at``/``then`` stitch two models (P-GRAFT): this model runs the steps whose timestep
        is ``>= stop_at`` and ``then`` the rest. ``eta = 0`` is the deterministic DDIM sampler (the
        probability-flow ODE): the sample is then a function of ``x_T`` alone, the map that
        BO in noise space searches through.
        """
        device = self.alphas_cumprod.device
        timesteps = self.timesteps(steps)
        k = len(timesteps)
        x = x_T.to(device) if x_T is not None else torch.randn((n, *self.shape), generator=generator, device=device)
        states, means, sigmas = [x], [], []
        for i, t in enumerate(timesteps.tolist()):
            t_prev = int(timesteps[i + 1]) if i + 1 < k else -1
            model = self if (stop_at is None or then is None or t >= stop_at) else then
            mean = model.step_mean(x, t, t_prev, eta=eta)
            sigma = float(self.step_coefficients(t, t_prev, eta)[2])
            noise = torch.randn(x.shape, generator=generator, device=device)  # drawn even at sigma 0: one stream
            x = mean + sigma * noise
            states.append(x)
            means.append(mean)
            sigmas.append(sigma)
        if not return_trajectory:
            return x
        return Trajectory(torch.stack(states), timesteps, torch.stack(means), torch.tensor(sigmas))

    def sample(
        self,
        n: int,
        *,
        seed: int | None = None,
        steps: int | None = None,
        return_trajectory: bool = False,
        generator: torch.Generator | None = None,
    ) -> list[Any] | tuple[list[Any], Trajectory]:
        """Sample ``n`` domain objects (decoded by the codec); with ``return_trajectory`` also the
        trajectory of tensors."""
        if generator is None:
            generator = torch.Generator(device=self.alphas_cumprod.device)
            generator.manual_seed(0 if seed is None else int(seed))
        out = self.sample_tensors(n, steps=steps, generator=generator, return_trajectory=return_trajectory)
        x0 = out.x0 if return_trajectory else out
        objects = self.decode(x0)
        return (objects, out) if return_trajectory else objects

    def domain_spec(self) -> str | dict[str, Any]:
        """The domain this prior generates in, as an optimizer's ``domain`` setting (declared in
        its config; for a prior without a codec, vectors of its flattened shape)."""
        return self.domain

    def encodable(self, objects: list[Any]) -> list[bool]:
        """Which objects the codec can encode (all, without a codec)."""
        if self.codec is None:
            return [True] * len(objects)
        return list(self.codec.encodable(objects))

    def decode(self, x0: torch.Tensor) -> list[Any]:
        if self.codec is None:  # plain vectors: numpy arrays, as every optimizer returns them
            return list(x0.detach().cpu().numpy())
        return self.codec.decode(x0)

    def encode(self, objects: list[Any]) -> torch.Tensor:
        if self.codec is None:
            return torch.stack([torch.as_tensor(o, dtype=torch.float32) for o in objects])
        return self.codec.encode(objects)

    # ------------------------------------------------------------------------- training
    def denoising_loss(self, x0: torch.Tensor, generator: torch.Generator | None = None,
                       t_range: tuple[int, int] | None = None) -> torch.Tensor:
        """The DDPM epsilon-prediction loss on clean samples ``x0`` (timesteps uniform in
        ``t_range``, default all)."""
        lo, hi = t_range or (0, self.schedule_config["num_train_timesteps"])
        where = generator.device if generator is not None else x0.device  # a CPU generator may drive GPU training
        t = torch.randint(lo, hi, (x0.shape[0],), generator=generator, device=where).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator, device=where).to(x0.device)
        x_t = self.train_scheduler.add_noise(x0, noise, t)
        return ((self.eps(x_t, t) - noise) ** 2).flatten(1).mean(1).mean()

    def with_denoiser(self, denoiser: nn.Module) -> DiffusionPrior:
        """The same schedule and codec with another denoiser: how a fine-tuned policy is made."""
        out = DiffusionPrior(denoiser, self.shape, self.codec, sample_steps=self.sample_steps, info=self.info,
                             domain=self.domain, **self.schedule_config).to(self.alphas_cumprod.device)
        out.source = self.source
        return out

    def config(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "sample_steps": self.sample_steps, **self.schedule_config}
