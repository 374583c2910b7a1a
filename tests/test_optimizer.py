"""The ask/tell contract of design.md, rule by rule, on the random optimizer."""

import math
import sqlite3
import warnings

import numpy as np
import pytest

from bbo import FailedTrialWarning, RandomOptimizer, TrialState, load_optimizer


@pytest.fixture
def opt(tmp_path):
    return RandomOptimizer(batch_size=4, seed=0, storage=tmp_path / "s.db")


def _states(opt):
    return [t.state for t in opt.trials]


def test_ask_records_running_and_asking_twice_is_fine(opt):
    a = opt.ask()
    b = opt.ask(3)
    assert len(a) == 4 and len(b) == 3 and all(isinstance(x, str) for x in a + b)
    assert _states(opt) == [TrialState.RUNNING] * 7
    assert opt.n_asked == 7 and opt.n_told == 0


@pytest.mark.parametrize("n", [0, -1, 2.5, "3", True])
def test_ask_rejects_bad_n(opt, n):
    with pytest.raises(ValueError, match="positive integer"):
        opt.ask(n)


def test_tell_matches_pending_and_single_object_form(opt):
    xs = opt.ask()
    opt.tell(xs[:2], [1.0, 2.0])
    opt.tell(xs[2], 3)
    opt.tell(xs[3], np.float32(4.5))
    trials = opt.trials
    assert [t.source.value for t in trials] == ["asked"] * 4
    assert [t.value for t in trials] == [1.0, 2.0, 3.0, 4.5]
    assert opt.n_told == 4


def test_tell_matches_by_canonical_form(tmp_path):
    opt = RandomOptimizer(batch_size=1, seed=0, storage=tmp_path / "s.db")
    opt.strategy.propose = lambda n, rng, study: ["OCC"] * n  # a proposer that always gives ethanol
    opt.ask()
    opt.tell("CCO", 1.0)  # same molecule, other spelling
    assert [t.source.value for t in opt.trials] == ["asked"]


def test_duplicates_in_a_batch_match_in_order(tmp_path):
    opt = RandomOptimizer(batch_size=3, seed=0, storage=tmp_path / "s.db")
    opt.strategy.propose = lambda n, rng, study: ["CCO", "CCN", "CCO"][:n]
    opt.ask()
    opt.tell(["CCO"], [1.0])
    assert [t.state for t in opt.trials] == [TrialState.COMPLETE, TrialState.RUNNING, TrialState.RUNNING]
    opt.tell(["CCO", "CCN"], [2.0, 3.0])
    assert [t.value for t in opt.trials] == [1.0, 3.0, 2.0]
    opt.tell("CCO", 4.0)  # no CCO pending any more: an external observation
    assert opt.trials[-1].source.value == "external" and opt.trials[-1].number == 3


def test_tell_not_asked_is_external_complete(opt):
    opt.tell(["c1ccccc1", "CCO"], [0.5, 0.7])
    assert [(t.source.value, t.state) for t in opt.trials] == [("external", TrialState.COMPLETE)] * 2
    assert opt.best(1) == [("CCO", 0.7)]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None])
def test_non_finite_value_marks_fail_with_warning_and_never_reaches_model(opt, bad):
    xs = opt.ask(2)
    with pytest.warns(FailedTrialWarning, match="recorded as FAIL"):
        opt.tell(xs, [bad, 1.0])
    assert _states(opt) == [TrialState.FAIL, TrialState.COMPLETE]
    assert [t.object for t in opt.completed_trials()] == [xs[1]]
    assert opt.n_told == 2
    assert opt.best(5) == [(xs[1], 1.0)]


@pytest.mark.parametrize(
    "xs, ys, match",
    [
        (["CCO", "CCN"], [1.0], "2 objects but 1 values"),
        (["CCO"], 1.0, "single value"),
        ("CCO", [1.0, 2.0], "one object but 2 values"),
        (["CCO", "not_a_smiles(("], [1.0, 2.0], "object 1 is invalid for the molecule domain: RDKit cannot parse"),
        (["CCO", 5], [1.0, 2.0], "object 1 .*expected a SMILES string, got int"),
        (["CCO", "CCN"], [1.0, "2"], "value 1 is '2'"),
        (["CCO"], [True], "value 0 is True"),
        (42, 1.0, "expected a molecule object or a sequence"),
    ],
)
def test_bad_input_raises_and_writes_nothing(opt, xs, ys, match):
    asked = opt.ask(2)
    before = opt.history()
    with pytest.raises(ValueError, match=match):
        opt.tell(xs, ys)
    after = opt.history()
    assert before.equals(after)
    assert opt.n_told == 0
    opt.tell(asked, [1.0, 2.0])  # the optimizer still works, pending trials intact
    assert _states(opt) == [TrialState.COMPLETE] * 2


def test_every_tell_is_on_disk_before_it_returns(opt, tmp_path):
    xs = opt.ask(3)
    opt.tell(xs, [1.0, 2.0, 3.0])
    # a separate connection, as another process would open it, sees the committed trials
    rows = sqlite3.connect(tmp_path / "s.db").execute("SELECT state, value FROM trials ORDER BY number").fetchall()
    assert rows == [("COMPLETE", 1.0), ("COMPLETE", 2.0), ("COMPLETE", 3.0)]


def test_same_seed_same_asks_and_different_seed_differs(tmp_path):
    a = RandomOptimizer(batch_size=5, seed=3, storage=tmp_path / "a.db")
    b = RandomOptimizer(batch_size=5, seed=3)
    c = RandomOptimizer(batch_size=5, seed=4)
    assert a.ask() == b.ask() != c.ask()
    a.tell(a.trials[0].object, 1.0)
    b.tell(b.trials[0].object, 1.0)
    assert a.ask() == b.ask()


def test_load_resumes_journal_and_reasks_running_first(tmp_path):
    path = tmp_path / "s.db"
    opt = RandomOptimizer(batch_size=4, seed=1, storage=path)
    xs = opt.ask()
    opt.tell(xs[:2], [1.0, 2.0])
    uninterrupted = RandomOptimizer(batch_size=4, seed=1)
    uninterrupted.ask()
    del opt  # "crash": two trials left RUNNING

    resumed = load_optimizer(path)
    assert resumed.n_told == 2
    assert resumed.history()["value"].tolist()[:2] == [1.0, 2.0]
    again = resumed.ask()
    assert again[:2] == xs[2:]  # the RUNNING ones come back first, as the same trials
    assert again[2:] == uninterrupted.ask(2)  # and new draws continue the seeded sequence
    resumed.tell(again, [3.0, 4.0, 5.0, 6.0])
    assert [t.number for t in resumed.trials] == [0, 1, 2, 3, 4, 5]
    assert all(t.state is TrialState.COMPLETE for t in resumed.trials)


def test_reopening_with_other_settings_is_refused(tmp_path):
    RandomOptimizer(batch_size=4, seed=1, storage=tmp_path / "s.db")
    with pytest.raises(ValueError, match="settings batch_size"):
        RandomOptimizer(batch_size=8, seed=1, storage=tmp_path / "s.db")
    assert RandomOptimizer(batch_size=4, seed=1, storage=tmp_path / "s.db").n_told == 0


def test_minimize_flips_best(tmp_path):
    opt = RandomOptimizer(batch_size=2, seed=0, direction="minimize")
    opt.tell(["CCO", "CCN", "CCC"], [3.0, 1.0, 2.0])
    assert [v for _, v in opt.best(2)] == [1.0, 2.0]


def test_history_and_best_are_distinct_objects(opt):
    opt.tell(["CCO", "OCC", "CCN"], [1.0, 2.0, 0.5])  # CCO and OCC are one molecule
    assert opt.best(3) == [("OCC", 2.0), ("CCN", 0.5)]
    df = opt.history()
    assert len(df) == 3 and set(df.columns) >= {"number", "object", "value", "state", "source", "round"}


def test_save_copies_in_memory_study_to_disk(tmp_path):
    opt = RandomOptimizer(batch_size=2, seed=0)
    xs = opt.ask()
    opt.tell(xs, [1.0, 2.0])
    path = opt.save(tmp_path / "saved.db")
    assert load_optimizer(path).n_told == 2


def test_vector_domain(tmp_path):
    opt = RandomOptimizer(domain={"name": "vector", "dim": 3}, batch_size=2, seed=0, storage=tmp_path / "v.db")
    xs = opt.ask()
    assert all(x.shape == (3,) for x in xs)
    opt.tell(xs[0], 1.0)  # one vector is one object
    opt.tell([xs[1]], [2.0])
    with pytest.raises(ValueError, match=r"object 0 .*expected shape \(3,\)"):
        opt.tell([np.zeros(2)], [1.0])
    resumed = load_optimizer(tmp_path / "v.db")
    assert np.allclose(resumed.best(1)[0][0], xs[1])


def test_warning_is_the_only_side_effect_of_fail(opt):
    xs = opt.ask(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opt.tell(xs, [float("nan")])
    assert len(caught) == 1 and issubclass(caught[0].category, FailedTrialWarning)


def test_values_as_arrays_tensors_and_series(opt):
    import pandas as pd
    import torch

    xs = opt.ask(4)
    opt.tell(xs[0], np.array(0.5))
    opt.tell(xs[1], torch.tensor(1.5))
    opt.tell(xs[2:], pd.Series([2.0, 3.0]))
    assert [t.value for t in opt.trials] == [0.5, 1.5, 2.0, 3.0]
    ys = opt.ask(2)
    opt.tell(ys, torch.tensor([4.0, 5.0]))
    with pytest.raises(ValueError, match="value 0 is too large"):
        opt.tell("CCO", 10**400)


def test_one_dimensional_vectors(tmp_path):
    opt = RandomOptimizer(domain={"name": "vector", "dim": 1}, batch_size=3, seed=0)
    xs = opt.ask()
    opt.tell(xs[0], 1.0)  # an asked array is one object
    opt.tell([0.1, 0.2], [2.0, 3.0])  # a plain list of numbers is a batch of 1-d vectors
    opt.tell(0.7, 4.0)  # and a bare number is one
    assert [t.value for t in opt.trials] == [1.0, None, None, 2.0, 3.0, 4.0]
    assert [t.source.value for t in opt.trials][-3:] == ["external"] * 3


def test_update_does_not_block_tells(tmp_path):
    import threading

    from bbo.optimizers.random_search import RandomStrategy

    class SlowStrategy(RandomStrategy):
        def update(self, study, trials):
            started.set()
            release.wait(30)  # an update that lasts until the test has told

    class Slow(RandomOptimizer):
        name = "slow-test"
        strategy_class = SlowStrategy

    started, release = threading.Event(), threading.Event()
    opt = Slow(batch_size=2, seed=0)
    xs = opt.ask()
    extra = opt.ask(1)
    opt.tell(xs, [1.0, 2.0])
    worker = threading.Thread(target=opt.ask)  # runs the round update
    worker.start()
    assert started.wait(5)
    opt.tell(extra, [3.0])  # recorded while the update is still running
    assert worker.is_alive()  # a tell that waited for the update would return only after it
    release.set()
    worker.join()
    assert opt.n_told == 3


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_best_and_history_agree_with_a_plain_ranking_of_every_trial(direction):
    """best() ranks from the journal's values alone and history() builds columns at once; both
    match a brute-force pass over the trials (repeats, ties, FAIL, array objects)."""
    rng = np.random.default_rng(3)
    opt = RandomOptimizer(domain={"name": "vector", "dim": 2}, batch_size=50, seed=0, direction=direction)
    xs = [np.round(rng.normal(size=2), 1) for _ in range(300)]  # rounded: many repeats
    ys = [float(np.round(x.sum(), 1)) if i % 17 else math.nan for i, x in enumerate(xs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FailedTrialWarning)
        opt.tell(xs, ys, metadata=[{"i": i} for i in range(len(xs))])
    sign = 1 if direction == "maximize" else -1
    first: dict[bytes, tuple[float, int]] = {}
    for i, (x, y) in enumerate(zip(xs, ys)):
        if not math.isnan(y) and (x.tobytes() not in first or sign * y > sign * first[x.tobytes()][0]):
            first[x.tobytes()] = (y, i)
    expected = sorted(first.values(), key=lambda v: -sign * v[0])[:10]  # stable: ties in first-seen order
    best = opt.best(10)
    assert [v for _, v in best] == [v for v, _ in expected]
    assert all(np.array_equal(x, xs[i]) for (x, _), (_, i) in zip(best, expected))
    df = opt.history()
    assert len(df) == 300 and df["meta_i"].tolist() == list(range(300))
    assert all(isinstance(o, np.ndarray) and np.array_equal(o, x) for o, x in zip(df["object"], xs))
    assert df["value"].isna().sum() == sum(math.isnan(y) for y in ys) and df["completed"].notna().all()
