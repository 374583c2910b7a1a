"""``SQDFOptimizer``: the online loop of :mod:`bbo.optimizers.generative` with SQDF as the
fine-tuner (soft-Q reparameterized policy gradient, KL-regularized, discounted, replay)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Literal

from bbo.diffusion import DiffusionPrior
from bbo.optimizer import Direction, register_optimizer
from bbo.optimizers.generative import GenerativeOptimizer, Reward


@register_optimizer
class SQDFOptimizer(GenerativeOptimizer):
    """Ask/tell optimizer that fine-tunes its diffusion prior with SQDF at each round end.

    SQDF settings (see :class:`bbo.finetune.SQDF`): ``alpha`` (KL weight: reward against
    naturalness), ``gamma`` (discount over denoising steps), ``sqdf_steps`` gradient updates per
    round with ``sqdf_batch_size`` (trajectory, step) pairs, ``lr``, ``x0_estimator``
    (``"consistency"`` or ``"tweedie"``), ``buffer`` (``"prioritized"``, ``"uniform"``, ``"none"``,
    reset each round) and ``buffer_capacity``, ``trajectories_per_update`` fresh trajectories every
    ``rollout_every`` updates (default 4: on the molecular prior the rollouts took two thirds of a
    round at 1, and the replay buffer keeps the updates fed in between). The policy carries over
    from round to round; the KL anchor is the pretrained prior unless ``kl_to="previous"``.

    Default ``alpha = 0.1`` (the reward is the surrogate in standard deviations of the told
    values): on PMO osimertinib MPO with the shipped prior the mean of each proposed batch rose from
    0.25 to ~0.55 in five rounds at alpha 0.1, to ~0.45 at 0.3 and to only ~0.33 at 1
    (``benchmarks/sqdf_molecule.py --part sweep``).

    Default ``gamma = 1`` (the paper uses 0.9 for text-to-image): which mode a sample lands in is
    decided at the early, noisy steps, and ``gamma^tau`` all but removes their reward signal. On a
    two-component mixture with 50 sampling steps (30% on the better mode, p* puts 97% there),
    200 SQDF updates moved that share to 0.94 with gamma = 1, 0.82 with 0.99, 0.72 with 0.98 and
    not at all (0.32) with 0.9. Black-box optimization needs that mode selection.
    """

    name = "sqdf"

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
        alpha: float = 0.1,
        gamma: float = 1.0,
        sqdf_steps: int = 200,
        sqdf_batch_size: int = 128,
        lr: float = 1e-3,
        x0_estimator: Literal["consistency", "tweedie"] = "consistency",
        buffer: Literal["prioritized", "uniform", "none"] = "prioritized",
        buffer_capacity: int = 1024,
        trajectories_per_update: int = 32,
        rollout_every: int = 4,
    ) -> None:
        super().__init__(
            prior=prior, batch_size=batch_size, round_size=round_size, seed=seed, storage=storage,
            direction=direction, domain=domain, sample_steps=sample_steps, surrogate_heads=surrogate_heads,
            surrogate_hidden=surrogate_hidden, surrogate_steps=surrogate_steps, optimism=optimism, beta=beta,
            kl_to=kl_to, reward_margin=reward_margin, device=device,
        )
        self.sqdf_settings = dict(
            alpha=alpha, gamma=gamma, steps=sqdf_steps, batch_size=sqdf_batch_size, lr=lr, x0_estimator=x0_estimator,
            buffer=buffer, buffer_capacity=buffer_capacity, trajectories_per_update=trajectories_per_update,
            rollout_every=rollout_every,
        )
        self._consistency = None
        self._open()

    def _finetune(self, reward: Reward, reference: DiffusionPrior) -> DiffusionPrior:
        from bbo.finetune.sqdf import SQDF

        run = SQDF(
            self.prior, reward, **self.sqdf_settings, sample_steps=self.sample_steps, consistency=self._consistency_model(),
            kl_reference="prior" if reference is self.prior else reference, policy=self._trainable_policy(),
            seed=self.seed + 1000 * (self._round + 1), device=self.device, progress=False, round=self._round,
        )
        new_policy = run.run()
        self.finetune_log = {f"sqdf_{k}": v for k, v in (run.history[-1] if run.history else {}).items()}
        return new_policy

    def _consistency_model(self):
        """The one shipped with the prior, else distilled once per study and kept beside the
        journal (it depends only on the prior)."""
        if self.sqdf_settings["x0_estimator"] != "consistency":
            return None
        if self._consistency is None:
            from bbo.diffusion.consistency import distill_consistency, load_consistency, save_consistency

            from bbo.diffusion.checkpoint import load_prior_consistency

            path = None if self.checkpoint_dir is None else self.checkpoint_dir / "consistency"
            shipped = load_prior_consistency(self.prior, device=self.device)
            if shipped is not None:
                self._consistency = shipped
            elif path is not None and path.exists():
                self._consistency = load_consistency(path, device=self.device)
            else:
                self._consistency = distill_consistency(self.prior, seed=self.seed, device=self.device, progress=False)
                if path is not None:  # written whole, then renamed: a crash never leaves half of it
                    tmp = path.with_suffix(".tmp")
                    shutil.rmtree(tmp, ignore_errors=True)
                    save_consistency(self._consistency, tmp)
                    os.replace(tmp, path)
        return self._consistency
