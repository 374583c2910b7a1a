"""Graph GA: Jensen's (2019) graph-based genetic algorithm, as run in the PMO benchmark.

The first ``initial_pool`` results (default ``population_size``) come from uniform draws of the
MOSES training set. From then on every ask breeds children of the current population: the top
``population_size`` distinct told molecules by score. A mating pool of ``population_size`` is drawn
from it with probability proportional to score; children are crossovers of two pool members,
mutated with probability ``mutation_rate`` (:mod:`bbo.domains.molecule_edits`). A fresh mating
pool is drawn for every ``offspring_size`` children (PMO's generation: 70 children from a pool
of 120), so with ``batch_size == offspring_size`` one ask is one PMO generation.

Everything is derived from the journal (the population is the best told so far), so the optimizer
has no state beyond it and resumes without a checkpoint. Molecules already told or pending are
not asked again while the population can breed new ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bbo.domains import Domain
from bbo.domains.molecule_edits import offspring
from bbo.optimizer import Direction, Optimizer, register_optimizer
from bbo.study import Trial, TrialState

#: rounds of breeding per ask before the missing children are filled with MOSES draws
_BREEDING_ROUNDS = 5


@register_optimizer
class GeneticOptimizer(Optimizer):
    """Graph GA over molecules (PMO defaults: population 120, 70 children per generation,
    mutation rate 0.067).

    Args:
        population_size: the population: the top this many distinct told molecules.
        offspring_size: children bred per mating pool (one PMO generation).
        mutation_rate: probability that a crossover child is also mutated.
        initial_pool: COMPLETE results drawn from MOSES before breeding starts; None means
            ``population_size`` (PMO: the initial population is that many random molecules).
    """

    name = "genetic"

    def __init__(
        self,
        *,
        domain: str | dict[str, Any] | Domain = "molecule",
        batch_size: int = 64,
        round_size: int | None = None,
        seed: int = 0,
        storage: str | Path | None = None,
        direction: Direction = "maximize",
        population_size: int = 120,
        offspring_size: int = 70,
        mutation_rate: float = 0.067,
        initial_pool: int | None = None,
    ) -> None:
        super().__init__(
            domain=domain, batch_size=batch_size, round_size=round_size, seed=seed, storage=storage,
            direction=direction,
        )
        if self.domain.name != "molecule":
            raise ValueError(
                f"GeneticOptimizer edits molecular graphs; it has no operators for the {self.domain.name!r} domain"
            )
        if int(population_size) < 1:
            raise ValueError(f"population_size must be >= 1, got {population_size}")
        if int(offspring_size) < 1:
            raise ValueError(f"offspring_size must be >= 1, got {offspring_size}")
        if not 0.0 <= float(mutation_rate) <= 1.0:
            raise ValueError(f"mutation_rate must be in [0, 1], got {mutation_rate}")
        if initial_pool is not None and int(initial_pool) < 1:
            raise ValueError(f"initial_pool must be >= 1 or None, got {initial_pool}")
        self.population_size = int(population_size)
        self.offspring_size = int(offspring_size)
        self.mutation_rate = float(mutation_rate)
        self.initial_pool = self.population_size if initial_pool is None else int(initial_pool)
        self._open()

    # ------------------------------------------------------------------------------ proposals
    def population(self) -> tuple[list[str], list[float]]:
        """The current population: the top ``population_size`` distinct told molecules (canonical
        SMILES) and their scores (maximize orientation), best first."""
        return self._population(self.completed_trials())

    def _population(self, complete: list[Trial]) -> tuple[list[str], list[float]]:
        best: dict[str, tuple[float, int]] = {}
        for t in complete:
            s = self.score(t.value)
            if t.key not in best or s > best[t.key][0]:
                best[t.key] = (s, t.number)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1]))[: self.population_size]
        return [k for k, _ in ranked], [v[0] for _, v in ranked]

    def _propose(self, n: int, rng: np.random.Generator) -> list[Any]:
        trials = self._journal.trials()
        taken = {t.key for t in trials} | set(self._pending)
        complete = [t for t in trials if t.state is TrialState.COMPLETE]
        out: list[str] = []
        if len(complete) >= self.initial_pool:
            parents, scores = self._population(complete)
            for _ in range(_BREEDING_ROUNDS):
                while len(out) < n:
                    k = min(n - len(out), self.offspring_size)
                    children = offspring(parents, k, rng, mutation_rate=self.mutation_rate, scores=scores)
                    fresh = [c for c in children if self.domain.key(c) not in taken]
                    taken.update(self.domain.key(c) for c in fresh)
                    out.extend(fresh[:k])
                    if len(children) < k or not fresh:
                        break  # the population breeds too few new molecules: try again, then fill
                if len(out) >= n:
                    break
        out.extend(self._draw_moses(n - len(out), rng, taken))
        return out

    def _draw_moses(self, n: int, rng: np.random.Generator, taken: set[str]) -> list[str]:
        """``n`` uniform draws from the MOSES training set, skipping told and pending molecules
        (after 100 such skips in one call, repeats are let through)."""
        if n <= 0:
            return []
        from bbo.data import moses_smiles

        pool = moses_smiles("train")
        out: list[str] = []
        misses = 0
        while len(out) < n:
            smiles = pool[int(rng.integers(len(pool)))]
            key = self.domain.key(smiles)
            if key in taken and misses < 100:
                misses += 1
                continue
            taken.add(key)
            out.append(smiles)
        return out
