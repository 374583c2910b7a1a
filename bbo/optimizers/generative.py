"""The online loop shared by the generative optimizers (SQDF, P-GRAFT), after SEIKO.

Each round: ``ask`` samples the current policy; once ``round_size`` results are told, the round
update fits a bootstrap ensemble to every COMPLETE trial (encoded into the prior's space,
standardized targets), and fine-tunes the policy against its optimistic reward, KL-anchored to
the pretrained prior (or, with ``kl_to="previous"``, to the previous round's policy, as SEIKO).
The policy is checkpointed (safetensors + JSON) at every round end, so ``load_optimizer``
resumes mid-study with the policy of the last finished round.
"""

from __future__ import annotations

import copy
import json
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from bbo.diffusion import DiffusionPrior, build_denoiser, load_prior
from bbo.diffusion.checkpoint import _load_weights
from bbo.diffusion.denoisers import StitchedDenoiser
from bbo.optimizer import Direction, Optimizer
from bbo.study import Trial
from bbo.surrogates.ensemble import BootstrapEnsemble, capped_standardized

Reward = Callable[[torch.Tensor], torch.Tensor]
POLICY_DIR = "policy"


def sample_valid(policy: DiffusionPrior, domain: Any, n: int, rng: np.random.Generator,
                 steps: int | None = None) -> list[Any]:
    """``n`` valid objects sampled from ``policy``, seeded from ``rng``. A decoded molecule can be
    empty (every SELFIES token a no-op): such draws are replaced by new ones."""
    device = policy.alphas_cumprod.device
    gen = torch.Generator(device=device).manual_seed(int(rng.integers(2**62)))
    out: list[Any] = []
    for _ in range(10):
        with torch.no_grad():
            x0 = policy.sample_tensors(n - len(out), steps=steps, generator=gen)
        out.extend(o for o in policy.decode(x0) if domain.validate(o) is None)
        if len(out) >= n:
            return out[:n]
    raise RuntimeError(f"the policy produced fewer than {n} valid objects in 10 draws")


class GenerativeOptimizer(Optimizer):
    """Base of the optimizers that fine-tune a diffusion prior online.

    Args:
        prior: a shipped prior's name or a directory written by ``save_prior``.
        sample_steps: DDIM steps per sample (default: the prior's).
        surrogate_heads, surrogate_hidden, surrogate_steps: the bootstrap ensemble.
        optimism: ``"ucb"`` (mean + beta * std over heads), ``"max"`` over heads, or ``"mean"``.
        beta: the UCB weight.
        reward_margin: the fine-tuning reward (standardized surrogate) is softly capped this many
            standard deviations above the best told value (see
            :func:`~bbo.surrogates.ensemble.capped_standardized`).
        kl_to: ``"prior"`` (the pretrained prior) or ``"previous"`` (last round's policy).
        device: None = CUDA when present.
        Other arguments as :class:`~bbo.optimizer.Optimizer`; the domain follows the prior.
    """

    runtime_settings = ("device",)

    def __init__(
        self,
        *,
        prior: str | Path,
        batch_size: int = 64,
        round_size: int | None = None,
        seed: int = 0,
        storage: str | Path | None = None,
        direction: Direction = "maximize",
        domain: str | dict[str, Any] | None = None,
        sample_steps: int | None = None,
        surrogate_heads: int = 4,
        surrogate_hidden: int = 256,
        surrogate_steps: int = 2000,
        optimism: Literal["ucb", "max", "mean"] = "ucb",
        beta: float = 1.0,
        kl_to: Literal["prior", "previous"] = "prior",
        reward_margin: float = 1.0,
        device: str | None = None,
    ) -> None:
        self.reward_margin = float(reward_margin)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.prior: DiffusionPrior = load_prior(prior, device=str(self.device))
        for p in self.prior.parameters():
            p.requires_grad_(False)
        natural = self.prior.domain_spec()
        name = natural if isinstance(natural, str) else natural["name"]
        asked = domain if isinstance(domain, (str, type(None))) else domain.get("name")
        if asked is not None and asked != name:
            raise ValueError(f"the prior {prior!r} generates in the {name!r} domain, not {asked!r}")
        super().__init__(domain=natural, batch_size=batch_size, round_size=round_size, seed=seed, storage=storage,
                         direction=direction)
        if optimism not in ("ucb", "max", "mean"):
            raise ValueError(f"optimism must be 'ucb', 'max' or 'mean', got {optimism!r}")
        if kl_to not in ("prior", "previous"):
            raise ValueError(f"kl_to must be 'prior' or 'previous', got {kl_to!r}")
        self.sample_steps = int(sample_steps or self.prior.sample_steps)
        self.surrogate_heads, self.surrogate_hidden = int(surrogate_heads), int(surrogate_hidden)
        self.surrogate_steps, self.optimism, self.beta, self.kl_to = int(surrogate_steps), optimism, float(beta), kl_to
        self.policy: DiffusionPrior = self.prior
        self.surrogate: BootstrapEnsemble | None = None
        self.round_log: list[dict[str, Any]] = []
        self.finetune_log: dict[str, Any] = {}  # the last fine-tune's figures, set by _finetune

    # --------------------------------------------------------------------------- proposals
    def _propose(self, n: int, rng: np.random.Generator) -> list[Any]:
        return sample_valid(self.policy, self.domain, n, rng, self.sample_steps)

    # ------------------------------------------------------------------------------ rounds
    def _update(self, trials: list[Trial]) -> None:
        objects = [self.domain.from_json(t.object) for t in trials]
        keep = self._encodable(objects)
        if sum(keep) < 2:
            return  # nothing to learn from yet (e.g. a round whose every result failed)
        x = self._encode([o for o, k in zip(objects, keep) if k])
        y = torch.tensor([self.score(t.value) for t, k in zip(trials, keep) if k], dtype=torch.float32)
        surrogate = BootstrapEnsemble(x.shape[1:].numel(), heads=self.surrogate_heads, hidden=self.surrogate_hidden,
                                      seed=self.seed + self._round).fit(x.cpu(), y, steps=self.surrogate_steps)
        self.surrogate = surrogate.to(self.device)
        reward = capped_standardized(self.surrogate.reward(self.optimism, self.beta), y, self.reward_margin)
        reference = self.policy if self.kl_to == "previous" else self.prior
        self.policy = self._finetune(reward, reference)
        self.round_log.append({"round": self._round + 1, "n_train": len(y),
                               **{f"surrogate_{k}": v for k, v in surrogate.fit_log.items()}, **self.finetune_log})

    def _trainable_policy(self) -> nn.Module | None:
        """A trainable copy of the current policy's denoiser to continue fine-tuning from, or None
        in the first round (the fine-tuner then builds its default policy from the prior)."""
        if self.policy is self.prior:
            return None
        den = self.policy.denoiser
        policy = copy.deepcopy(den.policy if isinstance(den, StitchedDenoiser) else den)
        for p in policy.parameters():
            p.requires_grad_(True)
        base = getattr(policy, "base", None)  # a residual policy keeps its frozen base frozen
        if base is not None:
            for p in base.parameters():
                p.requires_grad_(False)
        return policy

    @abstractmethod
    def _finetune(self, reward: Reward, reference: DiffusionPrior) -> DiffusionPrior:
        """Fine-tune ``self.policy`` against ``reward`` with a KL to ``reference``; return the new policy."""

    def _encodable(self, objects: list[Any]) -> list[bool]:
        """Which objects the prior's codec can encode (a molecule too long for the vocabulary is
        left out of the surrogate's data)."""
        if self.prior.codec is None or not objects:
            return [True] * len(objects)
        return self.prior.codec.vocab.encode(objects)[1].tolist()

    def _encode(self, objects: list[Any]) -> torch.Tensor:
        """Encodable objects in the prior's space, ``n x *shape``."""
        return self.prior.encode(objects).to(self.device)

    # ------------------------------------------------------------------------- checkpoints
    def _save_checkpoint(self, directory: Path) -> None:
        from safetensors.torch import save_file

        target = directory / POLICY_DIR
        target.mkdir(parents=True, exist_ok=True)
        if self.policy is self.prior:  # no update has changed it yet: nothing to store but that
            (target / "config.json").write_text(json.dumps({"denoiser": "prior", "rounds": self.round_log}) + "\n")
            return
        den = self.policy.denoiser
        save_file({k: v.detach().cpu().contiguous() for k, v in den.state_dict().items()}, str(target / "denoiser.safetensors"))
        (target / "config.json").write_text(json.dumps({"denoiser": {"name": den.name, "config": den.config()},
                                                        "round": self._round, "rounds": self.round_log}) + "\n")

    def _load_checkpoint(self, directory: Path) -> None:
        target = directory / POLICY_DIR
        if not (target / "config.json").exists():
            raise FileNotFoundError(f"{target}: no policy checkpoint to resume round {self._round} from")
        config = json.loads((target / "config.json").read_text())
        self.round_log = list(config.get("rounds", []))
        if config["denoiser"] == "prior":
            self.policy = self.prior
            return
        denoiser = build_denoiser(config["denoiser"])
        _load_weights(denoiser, target / "denoiser.safetensors", "policy")
        self.policy = self.prior.with_denoiser(denoiser.to(self.device))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(domain={self.domain!r}, n_told={self.n_told}, round={self.round})"
