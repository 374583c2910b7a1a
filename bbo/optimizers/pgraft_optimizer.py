"""``PGRAFTOptimizer``: the online loop of :mod:`bbo.optimizers.generative` with GRAFT / P-GRAFT as
the fine-tuner (generalized rejection sampling of the current policy's samples against the
surrogate, then denoising-loss training on the accepted ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from bbo.diffusion import DiffusionPrior
from bbo.finetune.graft import RULES
from bbo.optimizer import Direction, register_optimizer
from bbo.optimizers.generative import GenerativeOptimizer, Reward


@register_optimizer
class PGRAFTOptimizer(GenerativeOptimizer):
    """Ask/tell optimizer that fine-tunes its diffusion prior with P-GRAFT at each round end.

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
    argument is unused. Repeated rounds compound the tilt.
    """

    name = "pgraft"

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
        reward_margin: float = 1.0,
        device: str | None = None,
        rule: Literal["top_k", "best_of_n", "threshold", "rejection"] = "top_k",
        keep: float | None = None,
        t_split: float = 0.25,
        pgraft_rounds: int = 2,
        samples_per_round: int = 1024,
        train_steps: int = 200,
        pgraft_batch_size: int = 256,
        lr: float = 1e-3,
        dedupe: bool = False,
    ) -> None:
        if rule not in RULES:
            raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
        if rule == "threshold" and keep is None:
            raise ValueError("rule 'threshold' needs keep = a threshold on the standardized reward")
        if not 0 <= float(t_split) < 1:
            raise ValueError(f"t_split must be in [0, 1), got {t_split}")
        super().__init__(
            prior=prior, batch_size=batch_size, round_size=round_size, seed=seed, storage=storage,
            direction=direction, domain=domain, sample_steps=sample_steps, surrogate_heads=surrogate_heads,
            surrogate_hidden=surrogate_hidden, surrogate_steps=surrogate_steps, optimism=optimism, beta=beta,
            reward_margin=reward_margin, device=device,
        )
        self.pgraft_settings = dict(
            rule=rule, keep=keep, t_split=float(t_split), rounds=int(pgraft_rounds),
            samples_per_round=int(samples_per_round), train_steps=int(train_steps),
            batch_size=int(pgraft_batch_size), lr=float(lr), dedupe=bool(dedupe),
        )
        self._open()

    def _finetune(self, reward: Reward, reference: DiffusionPrior) -> DiffusionPrior:
        from bbo.finetune.graft import PGRAFT

        run = PGRAFT(
            self.prior, reward, **self.pgraft_settings, sample_steps=self.sample_steps, policy=self._trainable_policy(),
            seed=self.seed + 1000 * (self._round + 1), device=self.device, progress=False,
        )
        new_policy = run.run()
        self.finetune_log = {f"pgraft_{k}": v for k, v in (run.history[-1] if run.history else {}).items()}
        return new_policy
