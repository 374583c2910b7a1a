"""The online loop shared by the generative optimizers (SQDF, P-GRAFT), after SEIKO.

Each round: ``ask`` samples the current policy; once ``round_size`` results are told, the round
update fits a bootstrap ensemble to every COMPLETE trial (encoded into the prior's space through
its codec, standardized targets), and fine-tunes the policy against its optimistic reward. The
policy is checkpointed (the one model format of :mod:`bbo.diffusion.checkpoint`) at every round
end, so ``load_optimizer`` resumes mid-study with the policy of the last finished round.
"""

from __future__ import annotations

import copy
import json
import warnings
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from bbo.diffusion import DiffusionPrior, build_denoiser, load_prior
from bbo.diffusion.checkpoint import load_model, load_weights, read_json, save_model
from bbo.diffusion.denoisers import StitchedDenoiser
from bbo.optimizer import Optimizer
from bbo.optimizers.botorch_bo import BoTorchSettings, reference_draws
from bbo.optimizers.selection import PolicyPoolSelector, resolve_selection
from bbo.strategy import PriorSetting, Settings, Strategy, stored_prior
from bbo.study import Trial
from bbo.surrogates.ensemble import BootstrapEnsemble, capped_standardized

Reward = Callable[[torch.Tensor], torch.Tensor]
POLICY_DIR = "policy"
#: draws of a batch's invalid remainder before the policy is taken to be unable to fill it
MAX_DRAWS = 10


class PolicyCollapseWarning(UserWarning):
    """The fine-tuned policy decoded too few valid objects for a batch; the pretrained prior's
    samples filled it (their trials carry ``source: prior``)."""


def sample_valid(policy: DiffusionPrior, domain: Any, n: int, rng: np.random.Generator,
                 steps: int | None = None, *, strict: bool = True) -> list[Any]:
    """``n`` valid objects sampled from ``policy``, seeded from ``rng``. A decoded sample can be
    invalid for its domain (an empty molecule): such draws are replaced by new ones, ``MAX_DRAWS``
    draws at most; then fewer than ``n`` is an error, or (``strict=False``) what there is."""
    device = policy.alphas_cumprod.device
    gen = torch.Generator(device=device).manual_seed(int(rng.integers(2**62)))
    out: list[Any] = []
    for _ in range(MAX_DRAWS):
        with torch.no_grad():
            x0 = policy.sample_tensors(n - len(out), steps=steps, generator=gen)
        out.extend(o for o in policy.decode(x0) if domain.validate(o) is None)
        if len(out) >= n:
            return out[:n]
    if not strict:
        return out
    raise RuntimeError(f"the policy produced fewer than {n} valid objects in {MAX_DRAWS} draws")


def fit_surrogate(prior: DiffusionPrior, x: torch.Tensor, y: torch.Tensor, *, heads: int = 4, hidden: int = 256,
                  steps: int = 2000, seed: int = 0) -> BootstrapEnsemble:
    """The bootstrap ensemble fitted to encoded objects ``x`` and values ``y``; a Deep Sets ensemble
    when the prior's codec declares its tensors sets of slots (``set_axis = 0``: layouts)."""
    set_size = x.shape[1] if getattr(prior.codec, "set_axis", None) == 0 else None
    return BootstrapEnsemble(x.shape[1:].numel(), heads=heads, hidden=hidden, seed=seed,
                             set_size=set_size).fit(x, y, steps=steps)


class GenerativeSettings(Settings):
    """Settings of the online loop shared by SQDF and P-GRAFT.

    prior: a shipped or registered prior's name, or a directory written by ``save_prior``.
    sample_steps: DDIM steps per sample (default: the prior's).
    surrogate_heads, surrogate_hidden, surrogate_steps: the bootstrap ensemble.
    optimism: ``"ucb"`` (mean + beta * std over heads), ``"max"`` over heads, or ``"mean"``.
    beta: the UCB weight.
    reward_margin: the fine-tuning reward (standardized surrogate) is softly capped this many
        standard deviations above the best told value (see
        :func:`~bbo.surrogates.ensemble.capped_standardized`).
    device: None = CUDA when present.
    selection: how each batch is chosen: ``"policy"`` (the policy's samples), ``"gp"`` (a
        GP's acquisition over a pool of policy samples and the domain's offspring of the best
        told objects, :mod:`bbo.optimizers.selection`) or ``"auto"`` (``"gp"`` where the domain
        has a GP kernel: molecules).
    selection_start: distinct told objects before the GP chooses (until then: policy samples).
    pool_size, offspring_fraction: the ``"gp"`` selection's pool per ask and the share of it
        bred from the best told objects (the rest: policy samples, topped up with reference
        draws where the policy repeats itself).
    max_batch_similarity: the ``"gp"`` selection's limit on the similarity of two molecules of
        one batch (:func:`~bbo.optimizers.botorch_bo.greedy_spread`); None = no limit.
    initial_design: where the batches of the first round (before any update) come from:
        ``"prior"``, the pretrained prior's samples, or ``"reference"``, draws from the domain's
        reference data (``Domain.sample_reference``), for the same seed the very batch GP-BO
        starts from. Why: a prior's samples can be a weaker start than its data (on PMO 1,000
        prior samples sum 6.67 against 6.91 for the molecule domain's reference draws), and with
        the GP selection every later batch breeds from the best of the first.
    """

    prior: PriorSetting
    sample_steps: int | None = Field(None, ge=1)
    surrogate_heads: int = Field(4, ge=1)
    surrogate_hidden: int = Field(256, ge=1)
    surrogate_steps: int = Field(2000, ge=1)
    optimism: Literal["ucb", "max", "mean"] = "ucb"
    beta: float = 1.0
    reward_margin: float = Field(1.0, gt=0)
    device: str | None = None
    selection: Literal["auto", "policy", "gp"] = "auto"
    selection_start: int = Field(100, ge=2)
    pool_size: int = Field(2000, ge=1)
    offspring_fraction: float = Field(0.75, ge=0.0, le=1.0)
    max_batch_similarity: float | None = Field(None, gt=0.0, le=1.0)
    initial_design: Literal["prior", "reference"] = "prior"


class GenerativeStrategy(Strategy):
    """Base of the strategies that fine-tune a diffusion prior online; the domain follows the prior.

    After each round: ``policy`` (the fine-tuned prior), ``surrogate`` and ``round_log`` (one dict
    per round: training size, surrogate fit, the fine-tuner's last figures).
    """

    runtime_settings = ("device",)
    legacy_settings = {"selection": "policy"}  # studies from before the GP selection asked the policy's samples
    checkpointed = True

    def __init__(self, settings: GenerativeSettings, study: Optimizer) -> None:
        super().__init__(settings, study)
        self.device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.prior: DiffusionPrior = load_prior(settings.prior, device=str(self.device))
        for p in self.prior.parameters():
            p.requires_grad_(False)
        self.sample_steps = int(settings.sample_steps or self.prior.sample_steps)
        self.policy: DiffusionPrior = self.prior
        self.surrogate: BootstrapEnsemble | None = None
        self.round_log: list[dict[str, Any]] = []
        self.finetune_log: dict[str, Any] = {}  # the last fine-tune's figures, set by _finetune
        self.selector: PolicyPoolSelector | None = None  # set by check_domain for selection="gp"
        self._sources: list[str] | None = None  # where each object of the last proposal came from

    def natural_domain(self) -> str | dict[str, Any]:
        return self.prior.domain_spec()

    def check_domain(self, domain: Any) -> None:
        s = self.settings
        if s.initial_design == "reference" and not domain.supports("sample_reference"):
            raise ValueError(f"initial_design='reference': the {domain.name!r} domain has no reference data to "
                             "draw the first round from; use initial_design='prior'")
        if resolve_selection(s.selection, domain.name) == "gp":
            settings = BoTorchSettings(n_initial=s.selection_start, pool_size=s.pool_size,
                                       offspring_fraction=s.offspring_fraction,
                                       max_batch_similarity=s.max_batch_similarity)
            self.selector = PolicyPoolSelector(
                settings, self.study, lambda n, rng: self._sample_policy(n, rng, strict=False))

    def config(self) -> dict[str, Any]:
        return stored_prior(super().config())

    # --------------------------------------------------------------------------- proposals
    def propose(self, n: int, rng: np.random.Generator, study: Optimizer) -> list[Any]:
        if self.selector is not None and self.selector.ready():
            keys = self.selector.propose(n, rng, study)
            self._sources = [self.selector.source(k) for k in keys]
            return keys
        if self.settings.initial_design == "reference" and study.round == 0:
            objects = reference_draws(study.domain, n, rng, {t.key for t in study.trials})
            self._sources = ["reference"] * len(objects)
            return objects
        objects = self._sample_policy(n, rng, strict=False)
        self._sources = ["policy"] * len(objects)
        if len(objects) < n:
            # a policy fine-tuned towards what the domain cannot express (a layout policy that
            # learned to empty its pages) must not end the study: the prior fills the batch
            missing = n - len(objects)
            warnings.warn(f"{study.name}: the fine-tuned policy decoded {len(objects)} valid objects of {n} in "
                          f"{MAX_DRAWS} draws; {missing} samples of the pretrained prior fill the batch",
                          PolicyCollapseWarning, stacklevel=2)
            objects += sample_valid(self.prior, study.domain, missing, rng, self.sample_steps)
            self._sources += ["prior"] * missing
        return objects

    def _sample_policy(self, n: int, rng: np.random.Generator, strict: bool = True) -> list[Any]:
        return sample_valid(self.policy, self.study.domain, n, rng, self.sample_steps, strict=strict)

    def proposal_metadata(self, objects: list[Any]) -> list[dict[str, Any]] | None:
        """Where each object came from (``policy``, ``offspring`` or ``reference`` with a GP
        selection or ``initial_design="reference"``; ``prior`` where the pretrained prior filled a
        batch the policy could not), so that reports can say what the fine-tuned policy contributed."""
        if self._sources is None or (self.selector is None and set(self._sources) == {"policy"}):
            return None
        return [{"source": src} for src in self._sources]

    # ------------------------------------------------------------------------------ rounds
    def update(self, study: Optimizer, trials: list[Trial]) -> None:
        s = self.settings
        objects = [study.domain.from_json(t.object) for t in trials]
        keep = self.prior.encodable(objects)
        if sum(keep) < 2:
            return  # nothing to learn from yet (e.g. a round whose every result failed)
        x = self.prior.encode([o for o, k in zip(objects, keep) if k]).to(self.device)
        y = torch.tensor([study.score(t.value) for t, k in zip(trials, keep) if k], dtype=torch.float32)
        surrogate = fit_surrogate(self.prior, x.cpu(), y, heads=s.surrogate_heads, hidden=s.surrogate_hidden,
                                  steps=s.surrogate_steps, seed=study.seed + study.round)
        self.surrogate = surrogate.to(self.device)
        reward = capped_standardized(self.surrogate.reward(s.optimism, s.beta), y, s.reward_margin)
        self.policy = self._finetune(reward, study)
        self.round_log.append({"round": study.round + 1, "n_train": len(y),
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
    def _finetune(self, reward: Reward, study: Optimizer) -> DiffusionPrior:
        """Fine-tune ``self.policy`` against ``reward``; return the new policy."""

    # ------------------------------------------------------------------------- checkpoints
    def save(self, directory: Path) -> None:
        target = directory / POLICY_DIR
        target.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {"policy": "prior" if self.policy is self.prior else "denoiser",
                                 "rounds": self.round_log}
        if self.policy is not self.prior:
            save_model(self.policy.denoiser, target, "denoiser")
        (target / "state.json").write_text(json.dumps(state) + "\n")

    def load(self, directory: Path) -> None:
        target = directory / POLICY_DIR
        if (target / "state.json").exists():
            state = read_json(target / "state.json")
            fine_tuned = state["policy"] != "prior"
            denoiser = load_model(target, "denoiser", build_denoiser) if fine_tuned else None
        elif (target / "config.json").exists():  # the layout before the one model format: spec inline
            state = read_json(target / "config.json")
            fine_tuned = state["denoiser"] != "prior"
            denoiser = build_denoiser(state["denoiser"]) if fine_tuned else None
            if fine_tuned:
                load_weights(denoiser, target / "denoiser.safetensors", "policy")
        else:
            raise FileNotFoundError(f"{target}: no policy checkpoint to resume round {self.study.round} from")
        self.round_log = list(state.get("rounds", []))
        self.policy = self.prior.with_denoiser(denoiser.to(self.device)) if fine_tuned else self.prior
