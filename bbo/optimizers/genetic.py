"""Graph GA: Jensen's (2019) graph-based genetic algorithm, as run in the PMO benchmark.

The first ``initial_pool`` results (default ``population_size``) come from the domain's reference
distribution (uniform draws of the MOSES training set). From then on every ask breeds children of the current population: the top
``population_size`` distinct told molecules by score. A mating pool of ``population_size`` is drawn
from it with probability proportional to score; children are crossovers of two pool members,
mutated with probability ``mutation_rate`` (the domain's ``offspring``: :mod:`bbo.domains.molecule.edits`). A fresh mating
pool is drawn for every ``offspring_size`` children (PMO's generation: 70 children from a pool
of 120), so with ``batch_size == offspring_size`` one ask is one PMO generation.

Everything is derived from the journal (the population is the best told so far), so the optimizer
has no state beyond it and resumes without a checkpoint. Molecules already told or pending are
not asked again while the population can breed new ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from bbo.optimizer import Optimizer, register_optimizer
from bbo.strategy import Settings, Strategy
from bbo.study import Trial, TrialState

#: rounds of breeding per ask before the missing children are filled with reference draws
_BREEDING_ROUNDS = 5


class GeneticSettings(Settings):
    """population_size: the population, the top this many distinct told objects.
    offspring_size: children bred per mating pool (one PMO generation).
    mutation_rate: probability that a crossover child is also mutated.
    initial_pool: COMPLETE results drawn from the domain's reference before breeding starts; None
    means ``population_size`` (PMO: the initial population is that many random molecules)."""

    population_size: int = Field(120, ge=1)
    offspring_size: int = Field(70, ge=1)
    mutation_rate: float = Field(0.067, ge=0.0, le=1.0)
    initial_pool: int | None = Field(None, ge=1)


class GeneticStrategy(Strategy):
    """Graph GA over molecules (PMO defaults: population 120, 70 children per generation,
    mutation rate 0.067); any domain with variation operators (``Domain.offspring``) and a
    reference distribution works."""

    name = "genetic"
    Settings = GeneticSettings
    default_domain = "molecule"

    def __init__(self, settings: GeneticSettings, study: Optimizer) -> None:
        super().__init__(settings, study)
        self.population_size = settings.population_size
        self.offspring_size = settings.offspring_size
        self.mutation_rate = settings.mutation_rate
        self.initial_pool = settings.population_size if settings.initial_pool is None else settings.initial_pool

    def check_domain(self, domain: Any) -> None:
        for method in ("offspring", "sample_reference"):
            if not domain.supports(method):
                raise ValueError(f"genetic: the {domain.name!r} domain has no {method} (variation operators "
                                 f"and a reference distribution are needed)")

    # ------------------------------------------------------------------------------ proposals
    def population(self) -> tuple[list[str], list[float]]:
        """The current population: the top ``population_size`` distinct told objects (their keys:
        canonical SMILES) and their scores (maximize orientation), best first."""
        return self._population(self.study, self.study.completed_trials())

    def _population(self, study: Optimizer, complete: list[Trial]) -> tuple[list[str], list[float]]:
        best: dict[str, tuple[float, int]] = {}
        for t in complete:
            s = study.score(t.value)
            if t.key not in best or s > best[t.key][0]:
                best[t.key] = (s, t.number)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1]))[: self.population_size]
        return [k for k, _ in ranked], [v[0] for _, v in ranked]

    def propose(self, n: int, rng: np.random.Generator, study: Optimizer) -> list[Any]:
        domain = study.domain
        trials = study.trials
        taken = {t.key for t in trials} | set(study.pending_keys())
        complete = [t for t in trials if t.state is TrialState.COMPLETE]
        out: list[Any] = []
        if len(complete) >= self.initial_pool:
            parents, scores = self._population(study, complete)
            for _ in range(_BREEDING_ROUNDS):
                while len(out) < n:
                    k = min(n - len(out), self.offspring_size)
                    children = domain.offspring(parents, k, rng, mutation_rate=self.mutation_rate, scores=scores)
                    fresh = [c for c in children if domain.key(c) not in taken]
                    taken.update(domain.key(c) for c in fresh)
                    out.extend(fresh[:k])
                    if len(children) < k or not fresh:
                        break  # the population breeds too few new objects: try again, then fill
                if len(out) >= n:
                    break
        out.extend(draw_new_reference(domain, n - len(out), rng, taken))
        return out


def draw_new_reference(domain: Any, n: int, rng: np.random.Generator, taken: set[str],
                       max_misses: int = 100) -> list[Any]:
    """``n`` draws from the domain's reference distribution, skipping objects whose key is in
    ``taken`` (which is updated); after ``max_misses`` skips in one call, repeats are let through."""
    out: list[Any] = []
    misses = 0
    while len(out) < n:
        (obj,) = domain.sample_reference(1, rng)
        key = domain.key(obj)
        if key in taken and misses < max_misses:
            misses += 1
            continue
        taken.add(key)
        out.append(obj)
    return out


@register_optimizer
class GeneticOptimizer(Optimizer):
    """Graph GA (settings: :class:`GeneticSettings`)."""

    name = "genetic"
    strategy_class = GeneticStrategy
