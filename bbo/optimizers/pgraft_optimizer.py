"""``PGRAFTOptimizer``: the online loop of :mod:`bbo.optimizers.generative` with GRAFT / P-GRAFT as
the fine-tuner (generalized rejection sampling of the current policy's samples against the
surrogate, then denoising-loss training on the accepted ones)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bbo.diffusion import DiffusionPrior
from bbo.optimizer import Optimizer, register_optimizer
from bbo.optimizers.generative import GenerativeSettings, GenerativeStrategy, Reward


class PGRAFTSettings(GenerativeSettings):
    """The online loop's settings plus P-GRAFT's (see :class:`PGRAFTStrategy`)."""

    rule: Literal["top_k", "best_of_n", "threshold", "rejection"] = "top_k"
    keep: float | None = None
    t_split: float = Field(0.25, ge=0, lt=1)
    pgraft_rounds: int = Field(2, ge=1)
    samples_per_round: int = Field(1024, ge=1)
    train_steps: int = Field(200, ge=0)
    pgraft_batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0)
    dedupe: bool = False

    @model_validator(mode="after")
    def _threshold_needs_keep(self) -> PGRAFTSettings:
        if self.rule == "threshold" and self.keep is None:
            raise ValueError("rule 'threshold' needs keep = a threshold on the standardized reward")
        return self


class PGRAFTStrategy(GenerativeStrategy):
    """Fine-tunes the diffusion prior with P-GRAFT at each round end.

    P-GRAFT settings (see :class:`bbo.finetune.graft.PGRAFT`): ``rule`` (``"top_k"``,
    ``"best_of_n"``, ``"threshold"``, ``"rejection"``) and its ``keep`` (top-k count or fraction,
    N, a threshold on the standardized optimistic reward, or the rejection temperature; None: the
    rule's default), ``t_split`` (0: GRAFT on clean samples; else the fraction of the noise
    schedule where the trained segment ends, sampling stitched with the frozen prior below it;
    default 0.25, i.e. the first 75% of the denoising steps are fine-tuned), ``pgraft_rounds``
    sample-accept-train rounds per optimizer round with ``samples_per_round`` samples each,
    ``train_steps`` updates of ``pgraft_batch_size`` accepted states, ``lr``, ``dedupe``.

    The reward is the surrogate's standardized optimistic reward; it is only evaluated, never
    differentiated. The policy carries over from round to round (each round continues training the
    current policy on its own accepted samples).

    There is no explicit KL term: GRAFT's anchor is implicit. The accepted samples are a
    reweighting ``p_model(x) exp(r_hat(x) / alpha)`` of the CURRENT policy's samples, so each round
    is the KL-regularized step toward the reshaped reward with the current policy as reference (as
    SEIKO's ``kl_to="previous"``); there is no ``kl_to`` setting and the base class's ``reference``
    is the current policy. Repeated rounds compound the tilt.
    """

    name = "pgraft"
    Settings = PGRAFTSettings

    def _finetune(self, reward: Reward, study: Optimizer) -> DiffusionPrior:
        from bbo.finetune.graft import PGRAFT

        s = self.settings
        run = PGRAFT(
            self.prior, reward, rule=s.rule, keep=s.keep, t_split=s.t_split, rounds=s.pgraft_rounds,
            samples_per_round=s.samples_per_round, train_steps=s.train_steps, batch_size=s.pgraft_batch_size,
            lr=s.lr, dedupe=s.dedupe, sample_steps=self.sample_steps, policy=self._trainable_policy(),
            seed=study.seed + 1000 * (study.round + 1), device=self.device, progress=False,
        )
        new_policy = run.run()
        self.finetune_log = {f"pgraft_{k}": v for k, v in (run.history[-1] if run.history else {}).items()}
        return new_policy


@register_optimizer
class PGRAFTOptimizer(Optimizer):
    """Ask/tell optimizer that fine-tunes its diffusion prior with P-GRAFT at each round end
    (settings: :class:`PGRAFTSettings`; the method: :class:`PGRAFTStrategy`)."""

    name = "pgraft"
    strategy_class = PGRAFTStrategy
