"""SQDF: diffusion fine-tuning by the reparameterized policy gradient of a soft-Q estimate.

Kang, Lee, Shin, Om, Park, "Diffusion Fine-Tuning via Reparameterized Policy Gradient of the Soft
Q-Function" (arXiv 2512.04559, ICLR 2026). Written from the paper; the authors' code
(github.com/Shin-woocheol/SQDF) was read for details only.

Per training sample (a stored trajectory and a step ``k`` of it, time ``t -> t_prev``, ``tau`` =
``K - 1 - k`` steps remaining after it):

1. one differentiable, reparameterized step ``x_{t_prev} = mu_theta(x_t, t) + sigma_t * eps``;
2. ``Q = r(x0_hat(x_{t_prev}))`` with ``x0_hat`` a frozen consistency model (default) or Tweedie's
   estimate of the frozen prior; at the last step ``x0_hat = x_{t_prev}``;
3. loss ``-(gamma^tau * Q - alpha * KL_t)``, ``KL_t = |mu_theta - mu_ref|^2 / (2 sigma_t^2)`` summed
   over dimensions: the exact KL between the two Gaussian steps (the reference code averages over
   dimensions and drops the 1/2; here alpha is the temperature of ``p* ∝ p exp(r / alpha)``).

The last step. With the sampler's ``alpha_bar = 1`` at the clean end, the final step is
deterministic (sigma = 0): the reference step is a point mass and the exact KL of any other step
is infinite, so the KL-regularized optimum there is the reference step itself. To keep the loss
finite and the policy pinned close to the reference, the final step's KL uses the previous step's
sigma as its scale: its optimum is then a shift of ``sigma_prev^2 * grad r / alpha``, of the size
of the neighbouring stochastic step's (negligible: ~2e-4 * grad r / alpha with 150 steps).

What the soft-Q estimate converges to (measured and derived in ``tests/finetune/test_sqdf.py``).
The per-step optimum of the loss shifts the reference mean by ``sigma_t^2 grad Q / alpha``; the
optimum ``p*`` needs ``sigma_t^2 grad V / alpha`` with ``V = alpha log E[exp(r(x_0)/alpha) | x]``
the soft value. For a linear reward, ``grad V`` is ``c`` times the posterior covariance (times the
noise-scale factor), which is Tweedie's Jacobian to first order in ``c / alpha``: with
``x0_hat = Tweedie`` SQDF approaches ``p*``. The consistency model's Jacobian is the probability-flow
ODE's, larger at noisy steps: for a Gaussian prior ``N(mu, s^2)`` SQDF's fixed point is
``N(mu + 2 s^2 c / alpha, s^2)`` in the small-step limit (twice p*'s shift), i.e. it over-tilts as
if alpha were halved.

Trained parameters: for a prior whose denoiser has parameters, a deep copy of the whole denoiser
(full fine-tune); for a parameter-free denoiser (the Gaussian mixture), a
:class:`ResidualDenoiser` with a small zero-initialised :class:`MLPDenoiser` correction, so the
policy starts exactly at the prior.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from bbo.diffusion.consistency import ConsistencyModel, distill_consistency
from bbo.diffusion.denoisers import NoiseGatedCorrection  # noqa: F401  (re-exported)
from bbo.diffusion.prior import DiffusionPrior, Trajectory
from bbo.finetune.common import default_lr, default_policy, frozen, on_device
from bbo.finetune.common import grad_norm as total_grad_norm
from bbo.finetune.replay import ReplayBatch, ReplayBuffer, batch_from_trajectory

Reward = Callable[[torch.Tensor], torch.Tensor]


class SQDF:
    """Fine-tune a diffusion prior toward ``p* ∝ p exp(reward / alpha)`` with SQDF.

    Args:
        prior: the pretrained :class:`DiffusionPrior` (frozen; never modified).
        reward: differentiable ``Tensor[batch x *shape] -> Tensor[batch]`` (e.g. a surrogate).
        alpha: KL weight (the temperature of the tilted optimum).
        gamma: discount of the Q term, ``gamma^tau`` with tau the steps remaining; also the step
            discount of prioritized replay.
        steps: gradient updates; batch_size: ``(trajectory, step)`` pairs per update; lr: AdamW's
            (None: 1e-4 for a full copy of a trained denoiser, 1e-3 for a new residual correction;
            :func:`~bbo.finetune.common.default_lr`).
        x0_estimator: ``"consistency"`` (default) or ``"tweedie"`` (of the frozen prior).
        consistency: a :class:`ConsistencyModel` of the prior; None with the consistency estimator
            distils one first (``consistency_kwargs`` go to :func:`distill_consistency`).
        buffer: ``"prioritized"``, ``"uniform"`` or ``"none"`` (train on the fresh batch only).
        buffer_capacity: trajectories kept (FIFO); a given :class:`ReplayBuffer` may be passed as
            ``replay`` instead (e.g. to keep it across rounds).
        trajectories_per_update: fresh on-policy trajectories sampled (without grad) per rollout.
        rollout_every: updates between rollouts (1 = fresh trajectories before every update).
        sample_steps: DDIM steps of a trajectory (default: the prior's ``sample_steps``).
        kl_reference: ``"prior"`` or a :class:`DiffusionPrior` (e.g. SEIKO's previous round).
        policy: the initial trainable denoiser (default: see the module docstring).
        correction_hidden, correction_depth: size of the default residual correction.
        grad_clip: max gradient norm; weight_decay: AdamW's.
        seed: seeds trajectories, replay sampling, reparameterization noise and initialisation.
        device: None = CUDA when present.
        round: the round recorded with stored trajectories.
    After :meth:`run`, ``history`` holds one dict per update: ``loss``, ``reward`` (mean reward
    of the fresh trajectories' endpoints, NaN on updates without a rollout), ``q`` (mean Q),
    ``kl`` (mean KL per step, nats) and ``grad_norm``.
    """

    def __init__(
        self,
        prior: DiffusionPrior,
        reward: Reward,
        alpha: float = 1.0,
        gamma: float = 0.9,
        steps: int = 200,
        batch_size: int = 256,
        lr: float | None = None,
        x0_estimator: str = "consistency",
        consistency: ConsistencyModel | None = None,
        buffer: str = "prioritized",
        buffer_capacity: int = 1024,
        trajectories_per_update: int = 32,
        sample_steps: int | None = None,
        kl_reference: str | DiffusionPrior = "prior",
        policy: nn.Module | None = None,
        grad_clip: float | None = 1.0,
        seed: int = 0,
        device: str | torch.device | None = None,
        progress: bool = True,
        *,
        rollout_every: int = 1,
        weight_decay: float = 0.0,
        correction_hidden: int = 64,
        correction_depth: int = 2,
        consistency_kwargs: dict[str, Any] | None = None,
        replay: ReplayBuffer | None = None,
        round: int = 0,
    ) -> None:
        if alpha <= 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        if x0_estimator not in ("consistency", "tweedie"):
            raise ValueError(f"x0_estimator must be 'consistency' or 'tweedie', got {x0_estimator!r}")
        if buffer not in ("prioritized", "uniform", "none"):
            raise ValueError(f"buffer must be 'prioritized', 'uniform' or 'none', got {buffer!r}")
        if not (isinstance(kl_reference, DiffusionPrior) or kl_reference == "prior"):
            raise ValueError("kl_reference must be 'prior' or a DiffusionPrior")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.prior = on_device(prior, self.device)
        self.reward = reward
        self.alpha, self.gamma = float(alpha), float(gamma)
        self.steps, self.batch_size = int(steps), int(batch_size)
        self.lr = float(default_lr(prior) if lr is None else lr)
        self.x0_estimator, self.buffer_mode = x0_estimator, buffer
        self.trajectories_per_update, self.rollout_every = int(trajectories_per_update), max(int(rollout_every), 1)
        self.sample_steps = int(sample_steps or prior.sample_steps)
        self.reference = self.prior if kl_reference == "prior" else on_device(kl_reference, self.device)
        if self.reference.schedule_config != self.prior.schedule_config:
            raise ValueError("kl_reference must share the prior's noise schedule")
        self.grad_clip, self.weight_decay = grad_clip, float(weight_decay)
        self.seed, self.progress, self.round = int(seed), bool(progress), int(round)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)

        if x0_estimator == "consistency" and consistency is None:
            kwargs = {"seed": self.seed, "progress": progress, "device": self.device, **(consistency_kwargs or {})}
            consistency = distill_consistency(self.prior, **kwargs)
        if consistency is not None and consistency.schedule_config != self.prior.schedule_config:
            raise ValueError(f"the consistency model's schedule {consistency.schedule_config} is not the prior's "
                             f"{self.prior.schedule_config}")
        self.consistency = None if consistency is None else consistency.to(self.device).eval()

        if policy is None:
            policy = default_policy(self.prior, correction_hidden, correction_depth, self.seed)
        self.policy = policy.to(self.device)
        self.trainable = [p for p in self.policy.parameters() if p.requires_grad]
        if not self.trainable:
            raise ValueError("the policy has no trainable parameters")
        self.policy_prior = self.prior.with_denoiser(self.policy)
        # the policy's Gaussian steps are trained for this step schedule: sample it by default
        self.policy_prior.sample_steps = self.sample_steps

        if buffer == "none":
            self.replay = None
        else:
            self.replay = replay or ReplayBuffer(buffer_capacity, mode=buffer, gamma=self.gamma,
                                                 seed=self.seed + 1)
        self.optimizer = torch.optim.AdamW(self.trainable, lr=self.lr, weight_decay=self.weight_decay)
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------------------ setup
    default_policy = staticmethod(default_policy)

    # ------------------------------------------------------------------------- estimates
    def x0_hat(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The frozen clean-sample estimate at per-sample timesteps ``t`` (``-1``: ``x`` itself),
        differentiable in ``x``."""
        final = (t < 0).reshape(-1, *([1] * (x.ndim - 1)))
        t_safe = t.clamp(min=0)
        if self.x0_estimator == "consistency":
            est = self.consistency(x, t_safe)
        else:
            est = self.prior.tweedie_x0(x, t_safe)
        return torch.where(final, x, est)

    def _rollout(self) -> tuple[Trajectory, torch.Tensor]:
        self.policy.eval()
        with torch.no_grad():
            traj = self.policy_prior.sample_tensors(self.trajectories_per_update, steps=self.sample_steps,
                                                    generator=self.generator, return_trajectory=True)
            rewards = self.reward(traj.x0).detach().float().reshape(-1)
        self.policy.train()
        return traj, rewards

    def _draw(self, fresh: Trajectory | None, fresh_rewards: torch.Tensor | None) -> ReplayBatch:
        if self.replay is not None:
            idx, k = self.replay.sample(self.batch_size)
            return self.replay.gather(idx, k)
        assert fresh is not None
        idx = torch.randint(0, fresh.states.shape[1], (self.batch_size,), generator=self.generator,
                            device=self.device)
        k = torch.randint(0, fresh.num_steps, (self.batch_size,), generator=self.generator, device=self.device)
        return batch_from_trajectory(fresh, idx, k, fresh_rewards)

    def loss(self, batch: ReplayBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """SQDF's loss on gathered pairs, and its parts for the log."""
        x, t, t_prev = batch.x_t.to(self.device), batch.t.to(self.device), batch.t_prev.to(self.device)
        sigma = batch.sigma.to(self.device, x.dtype)
        # the deterministic final step has sigma = 0: its KL uses the previous step's sigma
        sigma_kl = torch.where(sigma > 0, sigma, batch.sigma_prev.to(self.device, x.dtype))
        mu = self.prior.step_mean(x, t, t_prev, eps=self.policy(x, t))
        with torch.no_grad():
            mu_ref = self.reference.step_mean(x, t, t_prev)
        shape = (-1, *([1] * (x.ndim - 1)))
        noise = torch.randn(x.shape, generator=self.generator, device=self.device, dtype=x.dtype)
        x_prev = mu + sigma.reshape(shape) * noise
        q = self.reward(self.x0_hat(x_prev, t_prev)).reshape(-1)
        kl = ((mu - mu_ref) ** 2).flatten(1).sum(1) / (2 * sigma_kl**2)
        discount = self.gamma ** batch.tau.to(self.device, x.dtype)
        loss = -(discount * q - self.alpha * kl).mean()
        return loss, {"q": float(q.detach().mean()), "kl": float(kl.detach().mean())}

    # -------------------------------------------------------------------------- training
    def run(self) -> DiffusionPrior:
        """Train for ``steps`` updates (calling it again continues training); returns the fine-tuned
        policy as a :class:`DiffusionPrior` whose default ``sample_steps`` is ``self.sample_steps``."""
        from tqdm.auto import tqdm

        fresh, fresh_rewards = None, None
        with frozen(self.prior, self.reference, self.consistency,
                     self.reward if isinstance(self.reward, nn.Module) else None):
            bar = tqdm(range(self.steps), desc="SQDF", disable=not self.progress, leave=False)
            for step in bar:
                mean_reward = float("nan")
                if step % self.rollout_every == 0:
                    fresh, fresh_rewards = self._rollout()
                    mean_reward = float(fresh_rewards.mean())
                    if self.replay is not None:
                        self.replay.add(fresh, fresh_rewards, round=self.round)
                batch = self._draw(fresh, fresh_rewards)
                loss, parts = self.loss(batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = total_grad_norm(self.trainable)
                if self.grad_clip:
                    nn.utils.clip_grad_norm_(self.trainable, self.grad_clip)
                self.optimizer.step()
                self.history.append({"loss": float(loss.detach()), "reward": mean_reward, **parts,
                                     "grad_norm": grad_norm})
                if self.progress and step % 10 == 0:
                    bar.set_postfix(loss=f"{float(loss):.4f}", kl=f"{parts['kl']:.4f}")
        self.policy.eval()
        return self.policy_prior
