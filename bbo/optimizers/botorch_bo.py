"""GP Bayesian optimization of molecules with BoTorch: PMO's "GP BO" baseline, GAUCHE style.

Each ask, once ``n_initial`` distinct molecules have been told:

1. **Data**: the COMPLETE trials, deduplicated by molecule (the mean of repeated values), in the
   maximize orientation. Past ``max_train`` molecules the GP is fitted on PMO's best/random
   split: the ``n_train_best`` best plus a uniform draw of ``max_train - n_train_best`` of the
   rest (PMO's tuned GP BO: 2,200 best + 1,350 random, so ``max_train = 3550``).
2. **Model**: an exact ``SingleTaskGP`` on Morgan fingerprints with a scaled Tanimoto (or
   MinMax, on counts) covariance, outcome ``Standardize``, float64, fitted with
   ``fit_gpytorch_mll`` (:mod:`bbo.surrogates.tanimoto_gp`).
3. **Candidate pool** (``pool_size``): offspring (Graph GA crossover + mutation,
   :func:`bbo.domains.molecule.edits.offspring`) of the ``n_parents`` best told molecules,
   ``offspring_fraction`` of the pool, plus samples of a prior (:meth:`BoTorchStrategy._prior_candidates`,
   a hook: none here, a fine-tuned diffusion policy's in :mod:`bbo.optimizers.selection`), filled
   up with uniform MOSES training molecules. Molecules already in the journal (told, failed or
   pending) are left out; ``pool_sources`` says which part each candidate of the last pool came from.
4. **Batch**: the batch acquisition (``qLogNoisyExpectedImprovement`` by default, or
   ``qUpperConfidenceBound``) is maximized over the pool by ``optimize_acqf_discrete``
   (sequential greedy, each pick conditioning the next); with ``max_batch_similarity`` set, by
   the same greedy loop in which each pick also takes its close analogues out of the pool
   (:func:`greedy_spread`). qLogNEI's incumbents are the
   ``BASELINE_SIZE`` best told molecules (pruned by BoTorch) plus the pending ones, as
   BoTorch's incremental qLogNEI treats its greedy picks; qUCB gets pending molecules as
   ``X_pending``. The acquisition runs on the exact joint GP posterior over the finite set
   {incumbents, pending, pool} (:class:`~bbo.surrogates.tanimoto_gp.FiniteSetModel`), so the
   2048-dimensional kernel is evaluated once per set rather than per candidate and greedy step.

Before that, asks draw uniformly from the MOSES training set. Everything comes from the journal
and the seed (numpy and torch generators derived from the number of objects asked so far): there
is no model state, so a resumed study needs no checkpoint and asks what an uninterrupted one
would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from bbo.optimizer import Optimizer, register_optimizer
from bbo.strategy import Settings, Strategy
from bbo.study import TrialState

ACQUISITIONS = ("qlogNEI", "qUCB")
#: domains with a GP kernel here (the Tanimoto kernel on fingerprints)
GP_DOMAINS = ("molecule",)
#: incumbents considered by qLogNEI: the best told molecules (then pruned by BoTorch to those
#: with a non-negligible posterior probability of being the best)
BASELINE_SIZE = 128
#: pending molecules passed to the acquisition as X_pending (the most recently asked)
MAX_PENDING = 512
#: PMO's UCB schedule when ``beta`` is None: sqrt(beta) ~ 10 ** Uniform(-0.5, 1.5) per ask
PMO_SQRT_BETA_LOG10 = (-0.5, 1.5)


#: torch threads during a GP ask (restored afterwards). One: the greedy loop's many small tensor
#: ops only lose to thread synchronization, and with other processes on the cores (parallel
#: benchmark workers) multi-threaded LAPACK calls slow down by 10-80x (eigh of a 1,000 x 1,000
#: matrix: 0.15 s on one thread, 7-13 s on two threads sharing two busy cores).
TORCH_THREADS = 1


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(min(n, previous))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class BoTorchSettings(Settings):
    acquisition: Literal["qlogNEI", "qUCB"] = "qlogNEI"
    beta: float | None = Field(None, gt=0, allow_inf_nan=False)
    n_initial: int = Field(100, ge=0)
    pool_size: int = Field(2000, ge=1)
    offspring_fraction: float = Field(0.75, ge=0.0, le=1.0)
    n_parents: int = Field(250, ge=2)
    mutation_rate: float = Field(0.067, ge=0.0, le=1.0)
    max_train: int = Field(3550, ge=2)
    n_train_best: int = Field(2200, ge=0)
    kernel: Literal["tanimoto", "minmax"] = "tanimoto"
    fp_radius: int = Field(2, ge=0)
    fp_bits: int = Field(2048, ge=1)
    mc_samples: int = Field(256, ge=1)
    max_batch_similarity: float | None = Field(None, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _best_within_train(self) -> BoTorchSettings:
        if self.n_train_best > self.max_train:
            raise ValueError(f"n_train_best ({self.n_train_best}) must be at most max_train ({self.max_train})")
        return self


class BoTorchStrategy(Strategy):
    """Batch GP-BO over molecules: exact Tanimoto GP, qLogNEI (or qUCB) over a candidate pool.

    Settings:
        acquisition: ``"qlogNEI"`` (``qLogNoisyExpectedImprovement``) or ``"qUCB"``
            (``qUpperConfidenceBound``).
        beta: qUCB's BoTorch beta (mean + sqrt(beta) * std); None draws PMO's schedule,
            sqrt(beta) log-uniform in [10^-0.5, 10^1.5], at every ask.
        n_initial: distinct molecules told before the GP takes over; until then asks draw
            uniformly from MOSES train.
        pool_size: candidates scored per ask.
        offspring_fraction: share of the pool bred from the best told molecules.
        n_parents: how many of the best told molecules breed (PMO's GA pool: 250).
        mutation_rate: probability that a child is mutated after crossover.
        max_train: most molecules the GP is fitted on; past it, the best/random split.
        n_train_best: how many of those are the best ones (the rest drawn at random).
        kernel: ``"tanimoto"`` (bit fingerprints) or ``"minmax"`` (count fingerprints).
        fp_radius, fp_bits: Morgan fingerprint radius and length.
        mc_samples: quasi-MC samples of the acquisition functions.
        max_batch_similarity: no two molecules of one batch more similar than this (the
            kernel's similarity on its fingerprints), so that a batch spreads over more analogue
            series (:func:`greedy_spread`); None (PMO's GP BO) = no limit.
    """

    name = "botorch"
    Settings = BoTorchSettings
    default_batch_size = 100
    default_domain = "molecule"

    def __init__(self, settings: BoTorchSettings, study: Optimizer) -> None:
        super().__init__(settings, study)
        for k, v in settings.model_dump().items():
            setattr(self, k, v)
        self.last_round_info: dict[str, Any] = {}  # diagnostics of the last GP ask (not persisted)
        self.pool_sources: dict[str, str] = {}  # key -> "offspring", "prior" or "reference" (the last pool)
        self._last_sources: list[str] = []  # the source of each molecule of the last proposal

    def check_domain(self, domain: Any) -> None:
        if domain.name not in GP_DOMAINS:
            raise ValueError(f"botorch: the Tanimoto GP works on the molecule domain only, got {domain.name!r}")

    # ----------------------------------------------------------------------------- proposals
    def propose(self, n: int, rng: np.random.Generator, study: Optimizer) -> list[str]:
        keys, values = self._told_data()
        exclude = {t.key for t in study.trials}  # told, failed and pending molecules
        if not self.ready(len(keys)):
            out = self._random_molecules(n, rng, exclude)
            self._last_sources = ["reference"] * len(out)
            return out
        with torch.random.fork_rng(), _torch_threads(TORCH_THREADS):
            # BoTorch draws (prior resampling on a failed fit, samplers without a seed) come from
            # the global torch RNG: seed it from this ask's generator
            torch.manual_seed(int(rng.integers(2**62)))
            out = self._bo_batch(n, rng, keys, values, exclude)
        self._last_sources = [self.pool_sources[k] for k in out]
        return out

    def proposal_metadata(self, objects: list[Any]) -> list[dict[str, Any]]:
        """Where each asked molecule came from, ``offspring`` of the best told ones or a
        ``reference`` draw (uniform MOSES train; the whole first batch), stored with its trial: the
        baseline's counterpart of the generative optimizers' ``source``, so a report can say how often
        the GP prefers a molecule from outside the incumbents' offspring."""
        if len(objects) != len(self._last_sources):
            raise RuntimeError(f"{len(objects)} objects for a proposal of {len(self._last_sources)}")
        return [{"source": s} for s in self._last_sources]

    def ready(self, n_distinct: int | None = None) -> bool:
        """Whether enough distinct molecules (``n_initial``, at least 2) are told for the GP to
        choose the next batch."""
        if n_distinct is None:
            n_distinct = len({t.key for t in self.study.completed_trials()})
        return n_distinct >= max(self.n_initial, 2)

    def _told_data(self) -> tuple[list[str], np.ndarray]:
        """Distinct told molecules (canonical SMILES, first-told order) and their mean scores."""
        sums: dict[str, list[float]] = {}
        for t in self.study.completed_trials():
            entry = sums.setdefault(t.key, [0.0, 0])
            entry[0] += self.study.score(t.value)
            entry[1] += 1
        keys = list(sums)
        return keys, np.array([s / c for s, c in sums.values()], dtype=np.float64)

    def _training_subset(self, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Indices the GP is fitted on: all, or PMO's best ``n_train_best`` + random rest."""
        if len(values) <= self.max_train:
            return np.arange(len(values))
        order = np.argsort(-values, kind="stable")
        best, rest = order[: self.n_train_best], order[self.n_train_best :]
        rand = rng.choice(rest, size=self.max_train - self.n_train_best, replace=False)
        return np.sort(np.concatenate([best, rand]))

    def _pending_keys(self) -> list[str]:
        running = [t.key for t in self.study.get_trials([TrialState.RUNNING])]
        return list(dict.fromkeys(running))[-MAX_PENDING:]

    def _bo_batch(
        self, n: int, rng: np.random.Generator, keys: list[str], values: np.ndarray, exclude: set[str]
    ) -> list[str]:
        from botorch.optim import optimize_acqf_discrete
        from botorch.sampling import SobolQMCNormalSampler

        from bbo.surrogates.tanimoto_gp import (
            FiniteSetModel,
            GreedyQLogNoisyExpectedImprovement,
            GreedyQUpperConfidenceBound,
            featurizer_for,
            fingerprints,
            fit_gp,
            joint_posterior,
        )

        times: dict[str, float] = {}
        t0 = time.perf_counter()
        featurize = lambda smiles: fingerprints(  # noqa: E731
            smiles, featurizer_for(self.kernel), self.fp_radius, self.fp_bits
        )
        train = self._training_subset(values, rng)
        train_keys = [keys[i] for i in train]
        train_y = torch.as_tensor(values[train])
        model = fit_gp(featurize(train_keys), train_y, self.kernel)
        times["fit"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        pool = self._candidate_pool(max(self.pool_size, n), rng, keys, values, exclude)
        times["pool"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        ranked = np.argsort(-values[train], kind="stable")[:BASELINE_SIZE]
        baseline = [train_keys[i] for i in ranked]
        in_baseline = set(baseline)
        pending = [k for k in self._pending_keys() if k not in in_baseline]
        finite_set = baseline + pending + pool
        features = featurize(finite_set)
        mean, cov = joint_posterior(model, features)
        fs_model = FiniteSetModel(mean, cov)
        idx = lambda a, b: torch.arange(a, b, dtype=torch.float64).unsqueeze(-1)  # noqa: E731
        nb, npend = len(baseline), len(pending)
        X_pending = idx(nb, nb + npend) if npend else None
        sampler = SobolQMCNormalSampler(torch.Size([self.mc_samples]), seed=int(rng.integers(2**31)))
        if self.acquisition == "qlogNEI":
            # pending molecules join the incumbents: BoTorch's incremental qLogNEI does the same
            # with the greedy picks, and a pending X_pending passed here would be dropped by
            # optimize_acqf_discrete's first set_X_pending
            acq = GreedyQLogNoisyExpectedImprovement(
                fs_model, X_baseline=idx(0, nb + npend), sampler=sampler, prune_baseline=True, cache_root=True
            )
            beta = None
        else:
            beta = self.beta if self.beta is not None else float(10 ** (2 * rng.uniform(*PMO_SQRT_BETA_LOG10)))
            acq = GreedyQUpperConfidenceBound(fs_model, beta=beta, sampler=sampler, X_pending=X_pending)
        choices = idx(nb + npend, len(finite_set))
        if self.max_batch_similarity is None:
            picked, _ = optimize_acqf_discrete(acq, q=n, choices=choices, max_batch_size=512, unique=True)
            rows = picked[:, 0].round().long().tolist()
        else:
            pool_features = features[nb + npend :]
            similarity = model.covar_module.base_kernel.similarity(pool_features, pool_features)
            rows = [nb + npend + i for i in greedy_spread(acq, choices, n, similarity, self.max_batch_similarity)]
        out = [finite_set[int(i)] for i in rows]
        times["acquisition"] = time.perf_counter() - t2
        self.last_round_info = {
            "n_told": len(keys), "n_train": len(train), "pool": len(pool), "pending": npend, "beta": beta,
            "outputscale": model.covar_module.outputscale.item(), "noise": model.likelihood.noise.item(),
            "times": times,
        }
        return out

    # ------------------------------------------------------------------------ candidate pool
    def _candidate_pool(
        self, size: int, rng: np.random.Generator, keys: list[str], values: np.ndarray, exclude: set[str]
    ) -> list[str]:
        """``size`` distinct canonical SMILES not in ``exclude``: offspring of the best told
        molecules, prior samples (hook), then uniform MOSES molecules."""
        domain = self.study.domain
        pool: dict[str, str] = {}  # key -> the part it came from, in insertion order

        def add(smiles: Sequence[str], source: str) -> None:
            for s in smiles:
                if len(pool) >= size:
                    return
                key = domain.key(s) if domain.validate(s) is None else None
                if key is not None and key not in exclude and key not in pool:
                    pool[key] = source

        n_offspring = round(size * self.offspring_fraction)
        if n_offspring:
            order = np.argsort(-values, kind="stable")[: self.n_parents]
            children = domain.offspring([keys[i] for i in order], n_offspring, rng, mutation_rate=self.mutation_rate,
                                        scores=values[order].tolist())
            add(children, "offspring")
        add(self._prior_candidates(size - len(pool), rng, exclude), "prior")
        add(self._random_molecules(size - len(pool), rng, exclude | set(pool)), "reference")
        self.pool_sources = pool
        return list(pool)

    def _prior_candidates(self, n: int, rng: np.random.Generator, exclude: set[str]) -> list[str]:
        """Hook: up to ``n`` SMILES sampled from a generative prior, for the candidate pool
        (``exclude``: the keys already in the journal, which the pool leaves out).

        None by default; a subclass (or a later setting) returns samples of e.g. a diffusion
        model here. They must be drawn from ``rng`` (or a torch generator seeded from it) so that
        asks stay reproducible. Invalid, repeated or already-told molecules are dropped.
        """
        return []

    def _random_molecules(self, n: int, rng: np.random.Generator, exclude: set[str]) -> list[str]:
        """``n`` distinct keys (canonical SMILES) of reference draws (MOSES train), none in ``exclude``."""
        domain = self.study.domain
        return [domain.key(obj) for obj in reference_draws(domain, n, rng, exclude)]


def reference_draws(domain: Any, n: int, rng: np.random.Generator, exclude: set[str],
                    max_fruitless: int = 100) -> list[Any]:
    """``n`` draws from ``domain``'s reference distribution with distinct keys, none in ``exclude``:
    the first batch of GP-BO (and of a generative optimizer with ``initial_design="reference"``,
    which thus starts from the same molecules for the same seed). A finite reference set (the
    digits, the layout pages) can run out of new objects: after ``max_fruitless`` passes that add
    none, that is an error rather than an endless loop."""
    out: dict[str, Any] = {}
    fruitless = 0
    while len(out) < n:
        before = len(out)
        for obj in domain.sample_reference(2 * (n - len(out)) + 8, rng):
            key = domain.key(obj)
            if key not in exclude and key not in out:
                out[key] = obj
                if len(out) == n:
                    break
        fruitless = fruitless + 1 if len(out) == before else 0
        if fruitless >= max_fruitless:
            raise ValueError(f"the {domain.name!r} domain's reference data gave {len(out)} new distinct objects of "
                             f"the {n} asked ({len(exclude)} already in the study); ask fewer at once")
    return list(out.values())


def greedy_spread(
    acq: Any, choices: torch.Tensor, q: int, similarity: torch.Tensor, max_similarity: float,
    max_batch_size: int = 512,
) -> list[int]:
    """Sequential greedy maximization of a batch acquisition over a finite set of ``choices``
    (``m x d``), as BoTorch's ``optimize_acqf_discrete(unique=True)`` does it, except that each
    pick also removes the choices more similar to it than ``max_similarity`` (``similarity``:
    ``m x m``). Returns the picked rows of ``choices`` in pick order.

    Why: greedy qLogNEI on a Tanimoto GP fills a batch with near-copies of the incumbents'
    offspring (the GP's correlation between two close analogues is below one, so the second
    still improves the batch), and the best molecules of a run end up one series (top-100
    internal diversity 0.67-0.69 on PMO). Once every remaining choice is within the limit of some
    pick, the batch is completed without it, so a batch is never short.
    """
    m = len(choices)
    if similarity.shape != (m, m):
        raise ValueError(f"similarity must be {m} x {m} for {m} choices, got {tuple(similarity.shape)}")
    base_pending = acq.X_pending
    free = torch.ones(m, dtype=torch.bool)  # not picked yet
    apart = torch.ones(m, dtype=torch.bool)  # not too close to any pick
    picks: list[int] = []
    try:
        for _ in range(min(q, m)):
            allowed = free & apart
            rows = (allowed if allowed.any() else free).nonzero()[:, 0]
            with torch.no_grad():
                values = torch.cat([acq(x) for x in choices[rows].unsqueeze(-2).split(max_batch_size)])
            best = int(rows[int(torch.argmax(values))])
            picks.append(best)
            free[best] = False
            apart &= similarity[best] <= max_similarity
            picked = choices[picks]
            acq.set_X_pending(picked if base_pending is None else torch.cat([base_pending, picked], dim=-2))
    finally:
        acq.set_X_pending(base_pending)
    return picks


@register_optimizer
class BoTorchOptimizer(Optimizer):
    """Batch GP-BO over molecules (settings: :class:`BoTorchSettings`)."""

    name = "botorch"
    strategy_class = BoTorchStrategy
