"""GRAFT and P-GRAFT: fine-tuning by generalized rejection sampling, at the clean end or at an
intermediate noise level.

Anil, Haque, Kannen, Nagaraj, Shakkottai, Shanmugam, "Fine-Tuning Diffusion Models via
Intermediate Distribution Shaping" (arXiv 2510.02692, ICLR 2026). No official
code: written from the paper.

Each round: sample ``M`` trajectories from the current (stitched) policy, score their clean ends
with the reward (no gradient needed), accept some of them by a Generalized Rejection Sampling
rule, and fine-tune on the accepted ones.

Rules (``keep`` is the rule's parameter):

* ``top_k``: the ``keep`` best of the ``M`` (an int: a count; a float in (0, 1]: a fraction of M);
* ``best_of_n``: split the M samples into ``M // keep`` groups of ``N = keep`` and keep each group's
  best. The accepted samples follow ``N F(r(x))^(N-1) p(x)`` (F: the reward's CDF under the model),
  i.e. ``p exp(r_hat / alpha)`` with ``r_hat = alpha (N - 1) log F(r)``;
* ``threshold``: every sample with ``r(x) >= keep``: the model truncated to that region;
* ``rejection``: accept x with probability ``exp((r(x) - r_max) / keep)``, ``r_max`` the batch's
  best: classic rejection sampling toward ``p exp(r / alpha)``, ``alpha = keep`` (with the batch
  maximum standing in for the unknown bound, so it is exact only when the bound is attained).

``dedupe=True`` drops repeated samples (decoded objects when the prior has a codec, else identical
tensors) before the rule is applied. The KL anchor of GRAFT is implicit: the accepted samples are
a reweighting of the current model's, so each round moves the model by the reshaped tilt only.

GRAFT (``t_split = 0``) fine-tunes with the ordinary DDPM loss on the accepted clean samples.

P-GRAFT (``0 < t_split < 1``). ``t_I = round(t_split * num_train_timesteps)`` snapped to the
nearest timestep of the sampling grid (never to the clean end: a tiny ``t_split`` gives the grid's
last timestep, e.g. 19 with 50 steps of 1000; a split at the grid's first timestep is refused). The accepted trajectories' states ``x_{t_I}`` (scored by their
final sample's reward) are the targets, and only the segment ``T -> t_I`` is trained; sampling
stitches the fine-tuned policy (steps from timesteps ``> t_I``) and the frozen prior (from ``t_I``
to 0), through :class:`StitchedDenoiser`.

The segment loss. The forward process ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` passes
through ``x_{t_I}``: for ``t > t_I``

    x_t = sqrt(a_t) x_{t_I} + sqrt(1 - a_t) e,   a_t = abar_t / abar_{t_I},   e ~ N(0, I),

the kernel ``q(x_t | x_{t_I}) = N(sqrt(a_t) x_{t_I}, (1 - a_t) I)``. Let ``q_t`` be the law of
``x_t`` when ``x_{t_I}`` follows the accepted states. The x_{t_I}-process's own DDPM loss
``E |e_hat(x_t, t) - e|^2`` is minimised by ``e_hat = E[e | x_t] = -sqrt(1 - a_t) grad log q_t(x_t)``
(Tweedie for this Gaussian kernel). The denoiser must stay an epsilon-prediction of the ORIGINAL
process, whose optimum for the same marginal is ``eps = -sqrt(1 - abar_t) grad log q_t(x_t)``. Both
are multiples of the same score, so

    eps(x_t, t) = c_t * e_hat(x_t, t),    c_t = sqrt((1 - abar_t) / (1 - a_t))  (>= 1),

and the loss trains the policy's eps through ``e_hat = eps_theta / c_t``:

    L = E_{x_{t_I}, t ~ U{t_I + 1, ..., N - 1}, e} | eps_theta(x_t, t) / c_t - e |^2
      = E[ (1 / c_t^2) | eps_theta(x_t, t) - c_t e |^2 ],

i.e. the epsilon regression onto the target ``c_t e`` with the weight ``(1 - a_t) / (1 - abar_t)``
in (0, 1] (the target's variance ``c_t^2`` grows without bound as ``t -> t_I``; the weight makes
it the unit-variance e-regression). Its optimum ``eps_theta = c_t E[e | x_t] =
-sqrt(1 - abar_t) grad log q_t`` is the original-process epsilon of ``q_t``, so the usual DDIM
steps with it, from ``T`` down to ``t_I``, sample the accepted marginal at ``t_I`` (up to the
step discretisation). Equivalently, the implied clean target ``x0_tgt = (x_t - sqrt(1 - abar_t)
c_t e) / sqrt(abar_t)`` has ``E[x0_tgt | x_t] = (x_t + (1 - abar_t) grad log q_t) / sqrt(abar_t)``,
Tweedie's estimate of the original process. At the clean end (``abar_{t_I} = 1``) ``a_t = abar_t``,
``c_t = 1`` and L is the ordinary DDPM loss (GRAFT). ``tests/finetune/test_graft.py`` checks the
optimum in closed form for a Gaussian prior.

Iterating rounds. GRAFT trains on its own samples, so whatever the sampler and the fit lose each
round compounds: with the eta = 1 sampler's slight contraction and a smooth network, accepting
everything still shrinks a Gaussian's std by ~2% a round (400 steps; more with fewer steps), and
under a hard threshold the model's leak across the wall is cut off and refitted each round, which
erodes the density next to the wall (measured in ``tests/finetune/test_graft.py``: after 3 rounds
the inside std is 0.45 against the truncated prior's 0.52, while a single fit to exact truncated
samples keeps 0.51). The cosine learning-rate decay within each round (``lr_schedule``) keeps the
final iterate's SGD noise out of the next round's samples.

Trainable parameters: :func:`bbo.finetune.common.default_policy` (a full copy of a network
denoiser, or a zero-initialised residual correction on a parameter-free one).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from bbo.diffusion.denoisers import StitchedDenoiser
from bbo.diffusion.prior import DiffusionPrior
from bbo.domains import get_domain
from bbo.finetune.common import default_policy, frozen, on_device
from bbo.finetune.common import grad_norm as total_grad_norm

Reward = Callable[[torch.Tensor], torch.Tensor]
RULES = ("top_k", "best_of_n", "threshold", "rejection")
DEFAULT_KEEP = {"top_k": 0.25, "best_of_n": 4, "rejection": 1.0}


def accept(rewards: torch.Tensor, rule: str, keep: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices of the accepted samples among ``rewards`` (``M``) under a Generalized Rejection
    Sampling rule (see the module docstring)."""
    r = rewards.detach().reshape(-1).float()
    m = len(r)
    if m == 0:
        return torch.zeros(0, dtype=torch.long, device=r.device)
    if rule == "top_k":
        k = _top_k_count(keep, m)
        return torch.topk(r, k).indices.sort().values
    if rule == "best_of_n":
        n = int(keep)
        groups = m // n
        if groups == 0:
            return torch.zeros(0, dtype=torch.long, device=r.device)
        best = r[: groups * n].reshape(groups, n).argmax(1)
        return torch.arange(groups, device=r.device) * n + best
    if rule == "threshold":
        return torch.nonzero(r >= float(keep)).reshape(-1)
    if rule == "rejection":
        p = torch.exp((r - r.max()) / float(keep))
        u = torch.rand(m, generator=generator, device=r.device)
        return torch.nonzero(u < p).reshape(-1)
    raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")


def _top_k_count(keep: float, m: int) -> int:
    if isinstance(keep, bool):
        raise ValueError("top_k: keep must be a count or a fraction")
    if isinstance(keep, int) or (isinstance(keep, float) and keep > 1 and float(keep).is_integer()):
        return max(1, min(int(keep), m))
    return max(1, min(m, round(float(keep) * m)))


def snap_split(prior: DiffusionPrior, t_split: float, steps: int) -> int:
    """``t_I``: ``round(t_split * num_train_timesteps)`` snapped to the nearest timestep of the
    ``steps``-step sampling grid (``-1``, the clean end, for ``t_split = 0``)."""
    if t_split == 0:
        return -1
    grid = prior.timesteps(steps)
    target = round(float(t_split) * prior.schedule_config["num_train_timesteps"])
    return int(grid[(grid - target).abs().argmin()])


def segment_pairs(prior: DiffusionPrior, x_split: torch.Tensor, t_split: int, t: torch.Tensor,
                  noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training pairs of the segment loss: ``x_t`` noised from ``x_{t_I}`` by ``q(x_t | x_{t_I})``,
    the original-process epsilon target ``c_t e`` and the weight ``1 / c_t^2`` (per sample).

    ``t_split = -1`` (the clean end) gives the ordinary DDPM pairs (``c_t = 1``)."""
    abar_t = prior.alpha_bar(t).double()
    abar_i = prior.alpha_bar(torch.full_like(t, int(t_split))).double()
    a = abar_t / abar_i
    c2 = (1 - abar_t) / (1 - a)
    shape = (-1, *([1] * (x_split.ndim - 1)))
    x_t = a.sqrt().to(x_split.dtype).reshape(shape) * x_split + (1 - a).sqrt().to(x_split.dtype).reshape(shape) * noise
    target = c2.sqrt().to(x_split.dtype).reshape(shape) * noise
    return x_t, target, (1 / c2).to(x_split.dtype)


class PGRAFT:
    """GRAFT (``t_split = 0``) and P-GRAFT (``0 < t_split < 1``) fine-tuning of a diffusion prior.

    Args:
        prior: the pretrained :class:`DiffusionPrior` (frozen; never modified).
        reward: ``Tensor[batch x *shape] -> Tensor[batch]``, called without gradients (a black box
            is fine).
        rule: ``"top_k"``, ``"best_of_n"``, ``"threshold"`` or ``"rejection"``.
        keep: the rule's parameter: top-k count or fraction (default 0.25), N (default 4), the
            reward threshold (required), the rejection temperature alpha (default 1).
        t_split: 0 for GRAFT; else the fraction of the training timesteps where the trained
            segment ends (snapped to the sampling grid, see :func:`snap_split`).
        rounds: sample-accept-train rounds per :meth:`run`; samples_per_round: M.
        train_steps: gradient updates per round, ``batch_size`` accepted samples each (drawn with
            replacement from the round's accepted set); lr: AdamW; grad_clip: max gradient norm.
        dedupe: drop repeated samples before accepting.
        sample_steps: DDIM steps of a trajectory (default: the prior's).
        policy: the initial trainable denoiser (default :func:`~bbo.finetune.common.default_policy`); a
            :class:`StitchedDenoiser` is unwrapped to its policy part (to continue training).
        seed: seeds sampling, acceptance, minibatches and initialisation.
        device: None = CUDA when present.
        sample_batch: trajectories sampled at once (memory bound).
    After :meth:`run`, ``history`` holds one dict per round: ``accept_rate``, ``reward_mean`` (all M
    samples), ``reward_accepted``, ``n_accepted``, ``loss`` (mean over the round's updates; NaN if
    nothing was accepted) and ``grad_norm`` (last update's); ``accepted`` the last round's accepted
    states (``x_{t_I}``; clean samples for GRAFT) and ``t_I`` the split timestep (-1 for GRAFT).
    """

    def __init__(
        self,
        prior: DiffusionPrior,
        reward: Reward,
        rule: str = "top_k",
        keep: float | None = None,
        t_split: float = 0.0,
        rounds: int = 4,
        samples_per_round: int = 1024,
        train_steps: int = 200,
        batch_size: int = 256,
        lr: float = 1e-3,
        dedupe: bool = False,
        sample_steps: int | None = None,
        policy: nn.Module | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
        progress: bool = True,
        *,
        grad_clip: float | None = 1.0,
        weight_decay: float = 0.0,
        correction_hidden: int = 64,
        correction_depth: int = 2,
        sample_batch: int = 4096,
        lr_schedule: str = "cosine",
    ) -> None:
        if rule not in RULES:
            raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
        if keep is None:
            if rule == "threshold":
                raise ValueError("rule 'threshold' needs keep = the reward threshold")
            keep = DEFAULT_KEEP[rule]
        if rule == "top_k" and not (float(keep) > 0):
            raise ValueError(f"top_k: keep must be a positive count or fraction, got {keep}")
        if rule == "top_k" and isinstance(keep, float) and keep > 1 and not keep.is_integer():
            raise ValueError(f"top_k: keep must be a count or a fraction in (0, 1], got {keep}")
        if rule == "best_of_n" and (int(keep) != keep or int(keep) < 1):
            raise ValueError(f"best_of_n: keep must be an integer N >= 1, got {keep}")
        if rule == "rejection" and not float(keep) > 0:
            raise ValueError(f"rejection: keep (the temperature alpha) must be positive, got {keep}")
        if lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}")
        if not 0 <= float(t_split) < 1:
            raise ValueError(f"t_split must be in [0, 1), got {t_split}")
        if int(rounds) < 1 or int(samples_per_round) < 1 or int(train_steps) < 0 or int(batch_size) < 1:
            raise ValueError("rounds, samples_per_round and batch_size must be positive, train_steps >= 0")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.prior = on_device(prior, self.device)
        self.reward = reward
        self.rule, self.keep = rule, keep
        self.rounds, self.samples_per_round = int(rounds), int(samples_per_round)
        self.train_steps, self.batch_size, self.lr = int(train_steps), int(batch_size), float(lr)
        self.dedupe, self.grad_clip, self.weight_decay = bool(dedupe), grad_clip, float(weight_decay)
        self.sample_steps = int(sample_steps or prior.sample_steps)
        self.sample_batch, self.lr_schedule = int(sample_batch), lr_schedule
        self.seed, self.progress = int(seed), bool(progress)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)

        self.t_split = float(t_split)
        self.t_I = snap_split(self.prior, self.t_split, self.sample_steps)
        if self.t_I >= int(self.prior.timesteps(self.sample_steps)[0]):
            raise ValueError(f"t_split={t_split} snaps to the first sampling timestep {self.t_I}: nothing to train")

        if isinstance(policy, StitchedDenoiser):
            policy = policy.policy
        if policy is None:
            policy = default_policy(self.prior, correction_hidden, correction_depth, self.seed)
        self.policy = policy.to(self.device)
        self.trainable = [p for p in self.policy.parameters() if p.requires_grad]
        if not self.trainable:
            raise ValueError("the policy has no trainable parameters")
        # the denoiser trained by the plain DDPM loss (GRAFT), and the one that is sampled
        self.train_prior = self.prior.with_denoiser(self.policy)
        sampled = self.policy if self.t_I < 0 else StitchedDenoiser(self.policy, self.prior.denoiser, self.t_I)
        self.policy_prior = self.prior.with_denoiser(sampled)
        self.policy_prior.sample_steps = self.sample_steps
        self.optimizer = torch.optim.AdamW(self.trainable, lr=self.lr, weight_decay=self.weight_decay)
        self.history: list[dict[str, float]] = []
        self.accepted: torch.Tensor | None = None  # the last round's accepted states x_{t_I}

    # --------------------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample_round(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``M`` trajectories of the current stitched policy: their states at ``t_I`` (the clean
        samples for GRAFT), their clean samples and the rewards of these."""
        self.policy.eval()
        prior = self.policy_prior
        timesteps = prior.timesteps(self.sample_steps).tolist()
        # states[k] of a trajectory is at timesteps[k]; the last state is the clean end (-1)
        split_index = len(timesteps) if self.t_I < 0 else timesteps.index(self.t_I)
        splits, finals, rewards = [], [], []
        done = 0
        while done < self.samples_per_round:
            n = min(self.sample_batch, self.samples_per_round - done)
            traj = prior.sample_tensors(n, steps=self.sample_steps, generator=self.generator, return_trajectory=True)
            splits.append(traj.states[split_index])
            finals.append(traj.x0)
            rewards.append(torch.as_tensor(self.reward(traj.x0)).detach().float().reshape(-1).to(self.device))
            done += n
        self.policy.train()
        return torch.cat(splits), torch.cat(finals), torch.cat(rewards)

    def distinct(self, x0: torch.Tensor) -> torch.Tensor:
        """Indices of the first occurrence of each distinct decoded sample, by the prior's domain
        key (the one identity the journal and the oracle cache use); an object invalid for the
        domain is distinct from every other."""
        domain = get_domain(self.prior.domain_spec())
        keys: list[Any] = []
        for i, o in enumerate(self.prior.decode(x0)):
            keys.append(domain.key(o) if domain.validate(o) is None else ("invalid", i))
        seen: dict[Any, int] = {}
        for i, key in enumerate(keys):
            seen.setdefault(key, i)
        return torch.tensor(sorted(seen.values()), dtype=torch.long, device=x0.device)

    # --------------------------------------------------------------------------- training
    def loss(self, x_split: torch.Tensor) -> torch.Tensor:
        """The training loss on a batch of accepted states: the DDPM loss on clean samples (GRAFT),
        else the segment loss of the module docstring on ``x_{t_I}``."""
        if self.t_I < 0:
            return self.train_prior.denoising_loss(x_split, self.generator)
        n_train = self.prior.schedule_config["num_train_timesteps"]
        t = torch.randint(self.t_I + 1, n_train, (x_split.shape[0],), generator=self.generator, device=self.device)
        noise = torch.randn(x_split.shape, generator=self.generator, device=self.device)
        x_t, target, weight = segment_pairs(self.prior, x_split, self.t_I, t, noise)
        err = ((self.policy(x_t, t) - target) ** 2).flatten(1).mean(1)
        return (weight * err).mean()

    def fit(self, targets: torch.Tensor) -> tuple[float, float]:
        """``train_steps`` updates on accepted states ``targets`` (``x_{t_I}``; clean samples for GRAFT),
        minibatches drawn with replacement, the learning rate on a cosine from ``lr`` to 0 (or constant).
        Returns the mean loss and the last gradient norm."""
        losses, grad_norm = [], float("nan")
        targets = targets.to(self.device)
        self.policy.train()
        for step in range(self.train_steps):
            if self.lr_schedule == "cosine":
                for group in self.optimizer.param_groups:
                    group["lr"] = self.lr * 0.5 * (1 + math.cos(math.pi * step / self.train_steps))
            pick = torch.randint(0, len(targets), (self.batch_size,), generator=self.generator, device=self.device)
            loss = self.loss(targets[pick])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = total_grad_norm(self.trainable)
            if self.grad_clip:
                nn.utils.clip_grad_norm_(self.trainable, self.grad_clip)
            self.optimizer.step()
            losses.append(float(loss.detach()))
        self.policy.eval()
        return (sum(losses) / len(losses) if losses else float("nan")), grad_norm

    def run(self) -> DiffusionPrior:
        """``rounds`` rounds (calling it again continues); returns the fine-tuned policy as a
        :class:`DiffusionPrior` (stitched with the prior below ``t_I`` for P-GRAFT) whose default
        ``sample_steps`` is ``self.sample_steps``."""
        from tqdm.auto import tqdm

        reward_module = self.reward if isinstance(self.reward, nn.Module) else None
        with frozen(self.prior, reward_module):
            bar = tqdm(range(self.rounds), desc="P-GRAFT" if self.t_I >= 0 else "GRAFT", disable=not self.progress,
                       leave=False)
            for _ in bar:
                x_split, x0, rewards = self.sample_round()
                idx = torch.arange(len(rewards), device=self.device)
                if self.dedupe:
                    idx = self.distinct(x0)
                chosen = idx[accept(rewards[idx], self.rule, self.keep, self.generator)]
                targets = x_split[chosen]
                self.accepted = targets
                loss, grad_norm = self.fit(targets) if len(chosen) else (float("nan"), float("nan"))
                row = {
                    "accept_rate": len(chosen) / len(rewards),
                    "n_accepted": float(len(chosen)),
                    "reward_mean": float(rewards.mean()),
                    "reward_accepted": float(rewards[chosen].mean()) if len(chosen) else float("nan"),
                    "loss": loss,
                    "grad_norm": grad_norm,
                }
                self.history.append(row)
                if self.progress:
                    bar.set_postfix(acc=f"{row['accept_rate']:.2f}", r=f"{row['reward_mean']:.3f}")
        self.policy.eval()
        return self.policy_prior


__all__ = ["PGRAFT", "RULES", "StitchedDenoiser", "accept", "segment_pairs", "snap_split"]
