"""BoTorch GP-BO: settings, the random start, a short seeded run that improves, exclusion of
told/pending molecules, PMO's best/random training split, and resume from the journal alone."""

import warnings

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import Crippen

from bbo import FailedTrialWarning, TrialState, load_optimizer
from bbo.optimizers import OPTIMIZERS, BoTorchOptimizer
from oracles.chem import canonical_smiles
from tests.optimizers.conftest import crash_copy, max_pair_similarity

SMALL = dict(batch_size=8, n_initial=16, pool_size=120, n_parents=16)  # fast settings for tests


def logp(xs):
    """Crippen logP (RDKit): cheap, with headroom above random MOSES molecules."""
    return [Crippen.MolLogP(Chem.MolFromSmiles(x)) for x in xs]


def test_registered_and_settings_validated():
    assert OPTIMIZERS["botorch"] is BoTorchOptimizer
    with pytest.raises(ValueError, match="molecule domain only"):
        BoTorchOptimizer(domain={"name": "vector", "dim": 2})
    with pytest.raises(ValueError, match="acquisition"):
        BoTorchOptimizer(acquisition="EI")
    with pytest.raises(ValueError, match="kernel"):
        BoTorchOptimizer(kernel="rbf")
    with pytest.raises(ValueError, match="n_train_best"):
        BoTorchOptimizer(max_train=100, n_train_best=200)
    with pytest.raises(ValueError, match="beta"):
        BoTorchOptimizer(acquisition="qUCB", beta=-1.0)


def test_initial_asks_are_distinct_moses_molecules():
    opt = BoTorchOptimizer(seed=0, **SMALL)
    a = opt.ask()
    b = opt.ask()  # still nothing told: random again, and nothing pending repeated
    assert len(set(a + b)) == 16 and all(canonical_smiles(x) == x for x in a + b)
    assert opt.strategy.last_round_info == {}  # no GP yet


@pytest.fixture(scope="module")
def run():
    """A short seeded qLogNEI run on logP: 16 random molecules, then 3 GP rounds of 8."""
    opt = BoTorchOptimizer(seed=0, **SMALL)
    batches = []
    for _ in range(4):
        xs = opt.ask(16 if not batches else None)
        ys = logp(xs)
        opt.tell(xs, ys)
        batches.append((xs, ys))
    return opt, batches


def test_short_run_improves_over_initial_batch(run):
    opt, batches = run
    (_, y0), bo = batches[0], batches[1:]
    assert opt.strategy.last_round_info["n_told"] == 32 and opt.strategy.last_round_info["pool"] == 120
    assert np.mean(bo[-1][1]) > np.mean(y0) + 0.5
    assert max(max(ys) for _, ys in bo) > max(y0)
    told = [x for xs, _ in batches for x in xs]
    assert len(set(told)) == len(told)  # never asks a told molecule again


def test_each_asked_molecule_records_where_it_came_from(run):
    opt, batches = run
    trials = sorted(opt.trials, key=lambda t: t.number)[:40]  # the fixture's four batches
    sources = [t.metadata.get("source") for t in trials]
    assert sources[:16] == ["reference"] * 16  # the random start
    assert set(sources[16:]) <= {"offspring", "reference"} and "offspring" in sources[16:]
    last = [t for t in trials if t.key in set(batches[-1][0])]
    assert [t.metadata["source"] for t in last] == [opt.strategy.pool_sources[t.key] for t in last]


def test_pending_molecules_are_not_asked_again(run):
    opt, _ = run
    a = opt.ask()
    b = opt.ask()  # a is pending: excluded from the pool, conditioned on as X_pending
    assert opt.strategy.last_round_info["pending"] == len(a)
    told = {t.key for t in opt.trials if t.state is not TrialState.RUNNING}
    assert not set(a) & set(b) and not (set(a) | set(b)) & told
    opt.tell(a + b, logp(a + b))


def test_failed_trials_never_reach_the_model(tmp_path):
    opt = BoTorchOptimizer(seed=1, **SMALL)
    xs = opt.ask(16)
    ys = logp(xs)
    ys[0] = float("nan")
    with pytest.warns(FailedTrialWarning):
        opt.tell(xs, ys)
    keys, values = opt.strategy._told_data()
    assert xs[0] not in keys and len(keys) == 15 and np.isfinite(values).all()
    opt.tell(opt.ask(8), [1.0] * 8)
    batch = opt.ask()
    assert opt.strategy.last_round_info["n_train"] == 23 and xs[0] not in batch  # a failed molecule is not re-asked


def test_training_subset_is_pmo_best_plus_random():
    opt = BoTorchOptimizer(seed=0, max_train=10, n_train_best=6)
    values = np.arange(30, dtype=float)[::-1].copy()  # index i has value 29 - i
    idx = opt.strategy._training_subset(values, np.random.default_rng(0))
    assert len(idx) == 10 and set(range(6)) <= set(idx) and len(set(idx)) == 10
    assert list(opt.strategy._training_subset(values[:8], np.random.default_rng(0))) == list(range(8))


def test_repeated_molecules_are_averaged():
    opt = BoTorchOptimizer(seed=0)
    opt.tell(["CCO", "OCC", "c1ccccc1"], [1.0, 3.0, 5.0])
    keys, values = opt.strategy._told_data()
    assert keys == ["CCO", "c1ccccc1"] and values.tolist() == [2.0, 5.0]


def test_ucb_with_minmax_kernel_and_minimize():
    opt = BoTorchOptimizer(seed=2, acquisition="qUCB", beta=0.5, kernel="minmax", direction="minimize", **SMALL)
    xs = opt.ask(16)
    opt.tell(xs, logp(xs))
    batch = opt.ask()
    assert len(set(batch)) == 8 and not set(batch) & set(xs)
    assert opt.strategy.last_round_info["beta"] == 0.5


def test_resume_from_journal_asks_what_an_uninterrupted_run_would(tmp_path):
    path = tmp_path / "bo.db"
    opt = BoTorchOptimizer(seed=3, storage=path, **SMALL)
    for n in (16, 8):
        xs = opt.ask(n)
        opt.tell(xs, logp(xs))
    pending = opt.ask(4)  # left RUNNING, as by a crash
    crash_copy(path, tmp_path / "copy.db")
    expected = opt.ask()
    opt.close()

    resumed = load_optimizer(tmp_path / "copy.db")
    assert isinstance(resumed, BoTorchOptimizer) and resumed.config() == opt.config()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FailedTrialWarning)
        got = resumed.ask(12)  # the 4 orphans first, then the same GP batch
    assert got[:4] == pending and got[4:] == expected
    resumed.tell(got, logp(got))
    assert resumed.n_told == 36 and len(resumed.ask()) == 8


# ------------------------------------------------------------------ the batch-diversity limit
@pytest.fixture(scope="module")
def finite_acq():
    """qLogNEI on a Tanimoto GP's exact posterior over 30 told MOSES molecules and a pool of 90."""
    from botorch.sampling import SobolQMCNormalSampler

    from bbo.domains.molecule import MoleculeDomain
    from bbo.surrogates.tanimoto_gp import (
        FiniteSetModel, GreedyQLogNoisyExpectedImprovement, fingerprints, fit_gp, joint_posterior,
        tanimoto_similarity)

    smiles = [canonical_smiles(s) for s in MoleculeDomain().sample_reference(120, np.random.default_rng(3))]
    X = fingerprints(smiles)
    model = fit_gp(X[:30], torch.as_tensor(logp(smiles[:30]), dtype=torch.float64))
    mean, cov = joint_posterior(model, X)

    def acq():
        return GreedyQLogNoisyExpectedImprovement(
            FiniteSetModel(mean, cov), X_baseline=torch.arange(30, dtype=torch.float64).unsqueeze(-1),
            sampler=SobolQMCNormalSampler(torch.Size([64]), seed=0), prune_baseline=False, cache_root=True)

    choices = torch.arange(30, 120, dtype=torch.float64).unsqueeze(-1)
    return acq, choices, tanimoto_similarity(X[30:], X[30:])


def test_greedy_spread_without_a_limit_is_botorchs_greedy(finite_acq):
    from botorch.optim import optimize_acqf_discrete

    from bbo.optimizers.botorch_bo import greedy_spread

    acq, choices, sim = finite_acq
    picked, _ = optimize_acqf_discrete(acq(), q=12, choices=choices, unique=True)
    assert [30 + i for i in greedy_spread(acq(), choices, 12, sim, 1.0)] == picked[:, 0].long().tolist()


def test_greedy_spread_keeps_picks_apart_and_fills_the_batch(finite_acq):
    from bbo.optimizers.botorch_bo import greedy_spread

    acq, choices, sim = finite_acq
    a = acq()
    picks = greedy_spread(a, choices, 12, sim, 0.3)
    assert len(set(picks)) == 12 and a.X_pending is None  # X_pending restored afterwards
    pair = sim[picks][:, picks] - 2 * torch.eye(12)
    assert float(pair.max()) <= 0.3
    # the unconstrained greedy batch does have a closer pair: the limit changed the batch
    free = greedy_spread(acq(), choices, 12, sim, 1.0)
    assert float((sim[free][:, free] - 2 * torch.eye(12)).max()) > 0.3
    # a limit no two molecules meet still fills the batch, from the best remaining choices
    tight = greedy_spread(acq(), choices, 12, sim, 1e-6)
    assert len(set(tight)) == 12 and tight[0] == free[0]
    with pytest.raises(ValueError, match="similarity must be 90 x 90"):
        greedy_spread(acq(), choices, 12, sim[:5], 0.5)


def test_batch_limit_in_a_run_and_off_by_default():
    assert BoTorchOptimizer().strategy.max_batch_similarity is None  # PMO's GP BO
    with pytest.raises(ValueError, match="max_batch_similarity"):
        BoTorchOptimizer(max_batch_similarity=1.5)
    opt = BoTorchOptimizer(seed=0, max_batch_similarity=0.35, **SMALL)
    xs = opt.ask(16)
    opt.tell(xs, logp(xs))
    assert max_pair_similarity(opt.ask()) <= 0.35
