"""BoTorch GP-BO: settings, the random start, a short seeded run that improves, exclusion of
told/pending molecules, PMO's best/random training split, and resume from the journal alone."""

import warnings

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Crippen

from bbo import FailedTrialWarning, TrialState, load_optimizer
from bbo.optimizers import OPTIMIZERS, BoTorchOptimizer
from oracles.chem import canonical_smiles
from tests.optimizers.conftest import crash_copy

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
