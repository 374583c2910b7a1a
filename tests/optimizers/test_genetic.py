"""GeneticOptimizer (Graph GA): the MOSES start, breeding, no repeats, optimization, resume."""

import numpy as np
import pytest

from bbo import RandomOptimizer, load_optimizer
from bbo.domains.molecule.moses import moses_smiles
from bbo.optimizers import GeneticOptimizer
from oracles import get_oracle

# a PMO task with headroom: random MOSES molecules score ~0, C7H8N2O2 isomers score 1.
# (QED is no test of optimization on MOSES: random draws already reach top-10 ~0.94 of 0.948.)
TASK = "pmo/isomers_c7h8n2o2"


@pytest.fixture(scope="module")
def oracle():
    return get_oracle(TASK)


def _run(opt, oracle, budget, after=None):
    """Ask/tell to ``budget`` results; returns the top-10 mean seen when ``after`` were told."""
    at = None
    while opt.n_told < budget:
        xs = opt.ask(min(opt.batch_size, budget - opt.n_told))
        opt.tell(xs, oracle(xs))
        if after is not None and at is None and opt.n_told >= after:
            at = _top10(opt)
    return at


def _top10(opt):
    return float(np.mean([v for _, v in opt.best(10)]))


def test_first_population_is_drawn_from_moses_then_children_are_bred(oracle):
    opt = GeneticOptimizer(population_size=30, offspring_size=10, batch_size=10, seed=0)
    train = moses_smiles("train")
    first = opt.ask(10)
    opt.ask(20)  # asked but not told: still the random start
    assert all(s in train for s in first)
    opt.tell([t.object for t in opt.trials], oracle([t.object for t in opt.trials]))
    bred = opt.ask()
    assert not any(s in train for s in bred)  # children of the population, not MOSES draws
    parents, scores = opt.strategy.population()
    assert len(parents) == 30 and scores == sorted(scores, reverse=True)


def test_optimizes_and_beats_random_with_the_same_budget(oracle):
    budget = 400
    ga = GeneticOptimizer(seed=0, batch_size=70)  # PMO's Graph GA: population 120, 70 per generation
    initial = _run(ga, oracle, budget, after=120)
    rnd = RandomOptimizer(seed=0, batch_size=70)
    _run(rnd, oracle, budget)
    final, random_final = _top10(ga), _top10(rnd)
    assert final > initial + 0.4, (initial, final)
    assert final > random_final + 0.4, (random_final, final)
    # no molecule was asked twice: every ask was a new oracle call
    keys = [t.key for t in ga.trials]
    assert len(keys) == len(set(keys)) == budget


def test_same_seed_same_asks_and_resume_continues(tmp_path, oracle):
    kw = dict(population_size=20, offspring_size=8, batch_size=8, seed=3)
    path = tmp_path / "ga.db"
    opt = GeneticOptimizer(**kw, storage=path)
    twin = GeneticOptimizer(**kw)
    _run(opt, oracle, 40)
    _run(twin, oracle, 40)
    assert [t.object for t in opt.trials] == [t.object for t in twin.trials]
    pending = opt.ask()  # left RUNNING by the "crash"
    assert twin.ask() == pending
    opt.close()
    del opt

    resumed = load_optimizer(path)
    assert isinstance(resumed, GeneticOptimizer) and resumed.n_told == 40
    assert (resumed.strategy.population_size, resumed.strategy.offspring_size) == (20, 8)
    assert resumed.ask() == pending  # the RUNNING trials come back first
    resumed.tell(pending, oracle(pending))
    twin.tell(pending, oracle(pending))
    assert resumed.ask() == twin.ask()  # and breeding goes on as if never interrupted
    assert resumed.strategy.population() == twin.strategy.population()


def test_population_is_the_best_distinct_told_molecules():
    opt = GeneticOptimizer(population_size=2, seed=0, direction="minimize")
    opt.tell(["CCO", "OCC", "CCN", "c1ccccc1"], [3.0, 1.0, 2.0, 5.0])
    assert opt.strategy.population() == (["CCO", "CCN"], [-1.0, -2.0])  # CCO and OCC are one molecule


def test_told_and_pending_molecules_are_not_asked_again():
    parents = ["Cc1ccc(C(=O)NC2CCCCC2)cc1", "O=C(O)c1ccncc1N1CCOCC1", "CCOc1ccccc1C(=O)N1CCCC1"]
    opt = GeneticOptimizer(population_size=3, offspring_size=5, batch_size=5, seed=0, initial_pool=3)
    opt.tell(parents, [1.0, 0.5, 0.2])
    seen = set(parents)
    for _ in range(6):
        xs = opt.ask()
        keys = {opt.domain.key(x) for x in xs}
        assert len(keys) == 5 and not keys & seen
        seen |= keys


def test_settings_are_checked():
    with pytest.raises(ValueError, match="the 'vector' domain has no offspring"):
        GeneticOptimizer(domain={"name": "vector", "dim": 2})
    with pytest.raises(ValueError, match="population_size"):
        GeneticOptimizer(population_size=0)
    with pytest.raises(ValueError, match="mutation_rate"):
        GeneticOptimizer(mutation_rate=1.5)
    with pytest.raises(ValueError, match="initial_pool"):
        GeneticOptimizer(initial_pool=0)
    assert GeneticOptimizer().config()["settings"]["population_size"] == 120
