"""Replay buffer of whole reverse trajectories for SQDF.

Each entry is one sampled trajectory ``x_T .. x_0`` (its states, training-scale timesteps and the
per-step sigma), the reward of its endpoint at insertion time and the round it was collected in.
Training draws ``(trajectory, step)`` pairs:

* ``mode="uniform"``: uniform over all stored ``(trajectory, k)`` pairs;
* ``mode="prioritized"``: ``P(i, k) ∝ priority(r_i) * gamma^(K - 1 - k)``, ``K - 1 - k`` being the
  number of denoising steps remaining after step ``k`` (the later the step, the likelier).

Priority transform. SQDF's reference code uses the reward clamped at zero, which gives zero (or
negative) probabilities as soon as rewards are negative, as standardized surrogate values are half
the time. Here the default is rank-based (Schaul et al. 2016): ``priority_i = rank_i^(-0.7)``
with rank 1 the highest reward in the buffer (ties share their mean rank). It is always positive
and finite, depends only on the order of the rewards, so it is invariant to the shift and scale of
the surrogate (which changes every round) and cannot be dominated by one outlier. ``priority="shifted"``
is offered too: ``r_i - min(r) + delta`` with ``delta = shift_delta * (std(r) + 1e-8)``, which keeps
the rewards' proportions but depends on their scale and lets the worst trajectory all but vanish.

No importance correction is applied (as in the paper): SQDF's per-step optimum is pointwise in
``x_t`` (the best Gaussian step from each state), so which states are replayed more often changes
where the network spends its capacity, not the fixed point.

Capacity is in trajectories, with FIFO eviction (the oldest insertion goes first).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bbo.diffusion.prior import Trajectory


@dataclass
class ReplayBatch:
    """Gathered training pairs: ``x_t`` (``batch x *shape``), ``t`` and ``t_prev`` (training-scale
    timesteps, ``t_prev = -1`` at the last step), ``sigma`` of the step, ``sigma_prev`` (sigma of the
    step before, for the deterministic last step), ``tau`` (steps remaining after ``k``), ``k``,
    the trajectory indices ``index`` and their stored ``reward``."""

    x_t: torch.Tensor
    t: torch.Tensor
    t_prev: torch.Tensor
    sigma: torch.Tensor
    sigma_prev: torch.Tensor
    tau: torch.Tensor
    k: torch.Tensor
    index: torch.Tensor
    reward: torch.Tensor


class ReplayBuffer:
    """Trajectory replay buffer with prioritized or uniform ``(trajectory, step)`` sampling.

    Args:
        capacity: maximum number of trajectories (one per sample of a batch); FIFO eviction.
        mode: ``"prioritized"`` or ``"uniform"``.
        gamma: the step discount of prioritized sampling (``gamma^(steps remaining)``).
        priority: ``"rank"`` (default) or ``"shifted"``, see the module docstring.
        priority_exponent: exponent of the rank-based priority (0.7 as in Schaul et al.; 1 = ``1 / rank``).
        shift_delta: the shifted priority's offset in units of the rewards' standard deviation.
        seed: seeds the buffer's own ``torch.Generator`` (or pass ``generator``).
    """

    def __init__(self, capacity: int = 1024, mode: str = "prioritized", gamma: float = 0.9, *,
                 priority: str = "rank", priority_exponent: float = 0.7, shift_delta: float = 0.1,
                 seed: int = 0, generator: torch.Generator | None = None) -> None:
        if mode not in ("prioritized", "uniform"):
            raise ValueError(f"mode must be 'prioritized' or 'uniform', got {mode!r}")
        if priority not in ("rank", "shifted"):
            raise ValueError(f"priority must be 'rank' or 'shifted', got {priority!r}")
        if capacity < 1:
            raise ValueError(f"capacity must be positive, got {capacity}")
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        self.capacity, self.mode, self.gamma = int(capacity), mode, float(gamma)
        self.priority_kind = priority
        self.priority_exponent, self.shift_delta = float(priority_exponent), float(shift_delta)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(int(seed))
        self.reset()

    # ---------------------------------------------------------------------------- storage
    def reset(self) -> None:
        """Empty the buffer (SEIKO/SQDF reset it at each round)."""
        self._states: torch.Tensor | None = None  # capacity x (K+1) x *shape
        self._timesteps: torch.Tensor | None = None  # capacity x (K+1): K timesteps then -1
        self._sigmas: torch.Tensor | None = None  # capacity x K
        self._rewards = torch.empty(0)
        self._rounds = torch.empty(0, dtype=torch.long)
        self._order = torch.empty(0, dtype=torch.long)  # insertion counter per slot
        self._size = 0
        self._next = 0  # the slot the next insertion overwrites once full
        self._count = 0

    def __len__(self) -> int:
        return self._size

    @property
    def num_steps(self) -> int | None:
        return None if self._sigmas is None else self._sigmas.shape[1]

    @property
    def rewards(self) -> torch.Tensor:
        return self._rewards[: self._size]

    @property
    def rounds(self) -> torch.Tensor:
        return self._rounds[: self._size]

    def add(self, trajectory: Trajectory, rewards: torch.Tensor, round: int = 0) -> None:
        """Store the ``batch`` trajectories of ``trajectory`` with their endpoint rewards."""
        states = trajectory.states.detach()
        k = trajectory.num_steps
        batch = states.shape[1]
        rewards = torch.as_tensor(rewards, dtype=torch.float32).detach().reshape(-1).cpu()
        if rewards.shape[0] != batch:
            raise ValueError(f"{rewards.shape[0]} rewards for {batch} trajectories")
        if not torch.isfinite(rewards).all():
            raise ValueError("rewards must be finite")
        if self._states is None:
            self._states = torch.empty((self.capacity, k + 1, *states.shape[2:]), dtype=states.dtype,
                                       device=states.device)
            self._timesteps = torch.empty((self.capacity, k + 1), dtype=torch.long, device=states.device)
            self._sigmas = torch.empty((self.capacity, k), dtype=torch.float32, device=states.device)
            self._rewards = torch.empty(self.capacity)
            self._rounds = torch.empty(self.capacity, dtype=torch.long)
            self._order = torch.empty(self.capacity, dtype=torch.long)
        elif self._states.shape[1] != k + 1 or self._states.shape[2:] != states.shape[2:]:
            raise ValueError(f"trajectory of {k} steps and shape {tuple(states.shape[2:])} does not match the "
                             f"buffer's {self._states.shape[1] - 1} steps and shape {tuple(self._states.shape[2:])}")
        timesteps = torch.cat([trajectory.timesteps.long().cpu(), torch.tensor([-1])]).to(self._timesteps.device)
        sigmas = torch.as_tensor(trajectory.sigmas, dtype=torch.float32).to(self._sigmas.device)
        if batch > self.capacity:  # only the newest `capacity` survive
            states, rewards = states[:, -self.capacity:], rewards[-self.capacity:]
            batch = self.capacity
        slots = (self._next + torch.arange(batch)) % self.capacity
        self._states[slots] = states.transpose(0, 1).to(self._states.device)
        self._timesteps[slots] = timesteps
        self._sigmas[slots] = sigmas
        self._rewards[slots] = rewards
        self._rounds[slots] = int(round)
        self._order[slots] = self._count + torch.arange(batch)
        self._count += batch
        self._next = int((self._next + batch) % self.capacity)
        self._size = min(self._size + batch, self.capacity)

    # --------------------------------------------------------------------------- sampling
    def priorities(self) -> torch.Tensor:
        """Per-trajectory priority (``len(self)``), always positive; all ones in uniform mode."""
        r = self.rewards
        if self.mode == "uniform" or len(r) == 0:
            return torch.ones(len(r))
        if self.priority_kind == "rank":
            return _mean_ranks_descending(r).pow(-self.priority_exponent)
        spread = float(r.std()) if len(r) > 1 else 0.0
        return r - r.min() + self.shift_delta * (spread + 1e-8)

    def step_weights(self) -> torch.Tensor:
        """Unnormalised weights over steps ``k = 0..K-1``: ``gamma^(K-1-k)`` (ones if uniform)."""
        k = self.num_steps or 0
        if self.mode == "uniform":
            return torch.ones(k, dtype=torch.float64)
        return torch.tensor(self.gamma, dtype=torch.float64) ** torch.arange(k - 1, -1, -1, dtype=torch.float64)

    def probabilities(self) -> torch.Tensor:
        """The sampling distribution ``P(i, k)``, ``len(self) x K`` (sums to one)."""
        p = self.priorities().double()[:, None] * self.step_weights()[None]
        return p / p.sum()

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` ``(trajectory index, step k)`` pairs, drawn with replacement."""
        if self._size == 0:
            raise RuntimeError("the replay buffer is empty")
        # P(i, k) factorises into priority(i) * weight(k): draw each independently
        idx = torch.multinomial(self.priorities().double(), n, replacement=True, generator=self.generator)
        ks = torch.multinomial(self.step_weights(), n, replacement=True, generator=self.generator)
        return idx, ks

    def gather(self, index: torch.Tensor, k: torch.Tensor) -> ReplayBatch:
        """The training pairs at ``(index, k)``."""
        if self._states is None:
            raise RuntimeError("the replay buffer is empty")
        dev = self._states.device
        index, k = index.to(dev), k.to(dev)
        sig = self._sigmas[index, k]
        sig_prev = self._sigmas[index, (k - 1).clamp(min=0)]
        return ReplayBatch(
            x_t=self._states[index, k], t=self._timesteps[index, k], t_prev=self._timesteps[index, k + 1],
            sigma=sig, sigma_prev=sig_prev, tau=self.num_steps - 1 - k, k=k, index=index,
            reward=self._rewards[index.cpu()],
        )

    def sample_batch(self, n: int) -> ReplayBatch:
        """``gather(*sample(n))``."""
        return self.gather(*self.sample(n))


def batch_from_trajectory(trajectory: Trajectory, index: torch.Tensor, k: torch.Tensor,
                          rewards: torch.Tensor | None = None) -> ReplayBatch:
    """Training pairs from a fresh trajectory batch without a buffer (``buffer="none"``)."""
    dev = trajectory.states.device
    index, k = index.to(dev), k.to(dev)
    steps = trajectory.num_steps
    timesteps = torch.cat([trajectory.timesteps.long().to(dev), torch.tensor([-1], device=dev)])
    sigmas = torch.as_tensor(trajectory.sigmas, dtype=torch.float32).to(dev)
    reward = rewards[index.cpu()] if rewards is not None else torch.zeros(len(index))
    return ReplayBatch(
        x_t=trajectory.states[k, index], t=timesteps[k], t_prev=timesteps[k + 1], sigma=sigmas[k],
        sigma_prev=sigmas[(k - 1).clamp(min=0)], tau=steps - 1 - k, k=k, index=index, reward=reward,
    )


def _mean_ranks_descending(r: torch.Tensor) -> torch.Tensor:
    """Rank 1 = the largest value; tied values share the mean of their ranks."""
    order = torch.argsort(r, descending=True, stable=True)
    ranks = torch.empty(len(r), dtype=torch.float64)
    ranks[order] = torch.arange(1, len(r) + 1, dtype=torch.float64)
    uniq, inverse = torch.unique(r, return_inverse=True)
    if len(uniq) < len(r):
        sums = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inverse, ranks)
        counts = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(ranks))
        ranks = (sums / counts)[inverse]
    return ranks
