"""Executors and faults: the same told trials on every executor, timeouts, oracle exceptions, a
worker killed mid-run, and configs that cannot start (CPU, small, seeded)."""

import os
import signal
import sys
import threading
import time
from collections import Counter

import pytest
from typer.testing import CliRunner

from bbo.bench.config import parse_config
from bbo.bench.runner import run_benchmark
from bbo.cli import app
from bbo.study import Journal, JournalError, check_journal

distributed = pytest.importorskip("distributed")

VECTOR = {"name": "vector", "dim": 2}


@pytest.fixture(scope="module")
def cluster():
    """A Dask cluster of two single-threaded worker processes on 127.0.0.1, reached by address
    (as a remote scheduler would be)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as c:
        yield c


def _config(executor, task=None, budget=30, optimizers=None):
    task = task or {"name": "tests.fake_oracles:linear_vector", "label": "v"}
    optimizers = optimizers or [{"kind": "random", "batch_size": 10, "domain": VECTOR}]
    return parse_config({"name": "t", "plugins": ["tests.fake_oracles"], "tasks": [task], "budget": budget,
                         "optimizers": optimizers, "executor": executor})


def _rows(run_dir):
    journal = Journal(run_dir / "journal.db")
    try:
        return [(t.number, t.key, t.state.value, t.value) for t in journal.trials()], journal.trials()
    finally:
        journal.close()


def test_a_dask_cluster_tells_the_same_trials_as_the_local_pool_and_the_driver(tmp_path, cluster):
    optimizers = [{"kind": "random", "batch_size": 7}, {"kind": "genetic", "batch_size": 10}]
    task = {"name": "tests.fake_oracles:heavy_atoms", "label": "h"}
    told = {}
    for name, executor in {"driver": {"n_workers": 0}, "local": {"n_workers": 2},
                           "dask": {"kind": "dask", "address": cluster.scheduler_address}}.items():
        run_benchmark(_config(executor, task, budget=40, optimizers=optimizers), tmp_path / name)
        told[name] = {o: _rows(tmp_path / name / "h" / o / "seed0")[0] for o in ("random", "genetic")}
    for optimizer in ("random", "genetic"):
        assert len({r[1] for r in told["driver"][optimizer]}) == 40
        assert told["local"][optimizer] == told["driver"][optimizer] == told["dask"][optimizer]
    _, trials = _rows(tmp_path / "dask" / "h" / "random" / "seed0")
    workers = {t.metadata["worker"] for t in trials}
    assert len(workers) == 2 and all(t.metadata["call_s"] >= 0 for t in trials)  # both Dask workers served


def _fail_reasons(trials):
    return Counter(t.metadata["error"].split(":")[0] for t in trials if t.state.value == "FAIL")


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_a_timeout_and_a_raising_oracle_fail_their_trials_with_the_reason_and_the_run_goes_on(tmp_path, kind, cluster):
    task = {"name": "tests.fake_oracles:troublesome", "label": "tr", "hang_above": 1.2, "hang": 60.0,
            "raise_below": -1.2}
    executor = {"n_workers": 2} if kind == "local" else {"kind": "dask", "address": cluster.scheduler_address}
    start = time.monotonic()
    run_benchmark(_config({**executor, "timeout": 0.5}, task, budget=40), tmp_path)
    rows, trials = _rows(tmp_path / "tr" / "random" / "seed0")
    assert len(rows) == 40 and all(r[2] in ("COMPLETE", "FAIL") for r in rows)
    reasons = _fail_reasons(trials)
    assert reasons["ValueError"] >= 1 and reasons["CallTimeout"] >= 1, reasons
    for t in trials:
        x0 = t.object[0]
        if x0 > 1.2:
            assert t.state.value == "FAIL" and "timed out after 0.5 s" in t.metadata["error"], t.metadata
        elif x0 < -1.2:
            assert t.state.value == "FAIL" and f"cannot score x[0] = {x0:.3f}" in t.metadata["error"]
        else:
            assert t.state.value == "COMPLETE" and t.value == pytest.approx(x0 + 0.5 * t.object[1]), t.metadata
    assert time.monotonic() - start < 60.0  # no hung call was waited for (one would take 60 s)
    assert check_journal(tmp_path / "tr" / "random" / "seed0" / "journal.db", charged_once=True) == []


def test_a_worker_that_dies_is_retried_once_then_its_trial_fails(tmp_path):
    """An object that kills its worker every time fails after the one retry; an object that kills
    it once is scored on the retry. Neither stops the run."""
    always = {"name": "tests.fake_oracles:troublesome", "label": "always", "kill_between": [1.0, 1.4]}
    once = {"name": "tests.fake_oracles:troublesome", "label": "once", "kill_between": [1.0, 1.4],
            "kill_once": str(tmp_path / "killed")}
    for task in (always, once):
        run_benchmark(_config({"n_workers": 2}, task, budget=40), tmp_path / task["label"])
    _, trials = _rows(tmp_path / "always" / "always" / "random" / "seed0")
    doomed = [t for t in trials if 1.0 < t.object[0] < 1.4]
    assert doomed and all(t.state.value == "FAIL" and t.metadata["attempts"] == 2
                          and t.metadata["error"].startswith("WorkerLost: worker process") for t in doomed)
    assert sum(t.state.value == "COMPLETE" for t in trials) == 40 - len(doomed)
    _, trials = _rows(tmp_path / "once" / "once" / "random" / "seed0")
    assert all(t.state.value == "COMPLETE" for t in trials)
    assert sorted(t.metadata["attempts"] for t in trials)[-1] == 2 and os.path.exists(tmp_path / "killed")


@pytest.mark.parametrize("executor", [{"n_workers": 2}, {"kind": "dask", "n_workers": 2}], ids=["local", "dask"])
def test_a_worker_killed_from_outside_mid_run_loses_no_trial_and_charges_nothing_twice(tmp_path, executor):
    """The test SIGKILLs a busy worker process of the executor bbo started (its pid is in the told
    trials): the call it was running is resubmitted, the run completes, the journal is sound."""
    task = {"name": "tests.fake_oracles:linear_vector", "label": "k", "delay": 0.25}
    cfg = _config(executor, task, budget=24, optimizers=[{"kind": "random", "batch_size": 8, "domain": VECTOR}])
    journal = tmp_path / "k" / "random" / "seed0" / "journal.db"
    run = threading.Thread(target=run_benchmark, args=(cfg, tmp_path))
    run.start()
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and run.is_alive():
        time.sleep(0.1)
        if journal.exists():
            try:
                _, trials = _rows(journal.parent)
            except JournalError:  # the run is still creating it
                continue
            done = [t for t in trials if t.state.value == "COMPLETE"]
            if len(done) >= 4:
                victim = int(done[-1].metadata["worker"].rsplit(":", 1)[1])
    assert victim is not None, "no trial was told in time"
    time.sleep(0.1)  # inside its next call
    os.kill(victim, signal.SIGKILL)
    run.join(180)
    assert not run.is_alive()
    rows, trials = _rows(journal.parent)
    assert len(rows) == 24 and all(r[2] == "COMPLETE" for r in rows)
    assert any(t.metadata["attempts"] == 2 for t in trials)  # the killed call, run again elsewhere
    assert check_journal(journal, charged_once=True) == []


def _cli(tmp_path, executor):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: t\nplugins: [tests.fake_oracles]\ntasks: [{name: 'tests.fake_oracles:linear_vector'}]\n"
                   "budget: 10\noptimizers: [{kind: random, domain: {name: vector, dim: 2}}]\n"
                   f"executor: {executor}\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(cfg), "--out", str(out)])
    return result, out


def test_dask_without_distributed_is_one_clear_error_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails
    result, out = _cli(tmp_path, "{kind: dask, n_workers: 2}")
    assert result.exit_code == 2 and "needs the distributed package" in result.output
    assert "pip install 'bbo[dask]'" in " ".join(result.output.split()) and not out.exists()


def test_an_unreachable_scheduler_is_one_clear_error_and_writes_nothing(tmp_path):
    result, out = _cli(tmp_path, "{kind: dask, address: 'tcp://127.0.0.1:9', connect_timeout: 1}")
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in message
    assert not out.exists()


@pytest.mark.parametrize("executor, message", [
    ("{kind: local, timeout: -1}", "executor.timeout"),
    ("{kind: local, n_workers: 0, timeout: 5}", "cannot be timed out"),
    ("{kind: local, address: 'tcp://h:8786'}", "needs kind: dask"),
    ("{kind: ray}", "executor.kind"),
])
def test_bad_executor_settings_are_one_clear_error_and_write_nothing(tmp_path, executor, message):
    result, out = _cli(tmp_path, executor)
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert not out.exists()


def test_the_thread_budget_splits_the_cores_among_runs_and_honours_overrides(tmp_path, monkeypatch):
    from bbo.bench import threads

    quota = tmp_path / "cpu.max"
    quota.write_text("200000 100000\n")
    assert threads._cgroup_quota(quota) == 2  # a container given 2 CPUs
    quota.write_text("max 100000\n")
    assert threads._cgroup_quota(quota) is None
    monkeypatch.delenv(threads.ENV_THREADS, raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    assert [threads.driver_threads(w) for w in (1, 3, 16)] == [8, 2, 1]
    monkeypatch.setenv(threads.ENV_THREADS, "3")
    assert threads.driver_threads(4) == 3 and threads.driver_threads(4, override=2) == 2
    monkeypatch.setenv(threads.ENV_THREADS, "many")
    with pytest.raises(ValueError, match="BBO_THREADS='many' must be a positive integer"):
        threads.driver_threads(1)


def test_oracle_workers_get_their_threads_and_the_driver_gets_its_own_back(tmp_path):
    import torch

    original = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        task = {"name": "tests.fake_oracles:threads_seen", "label": "th"}
        seen = {}
        for name, executor in {"pool": {"n_workers": 1, "threads_per_worker": 2},
                               "driver": {"n_workers": 0}}.items():
            run_benchmark(_config(executor, task, budget=10), tmp_path / name, threads=1)
            seen[name] = {r[3] for r in _rows(tmp_path / name / "th" / "random" / "seed0")[0]}
        assert seen == {"pool": {2.0}, "driver": {1.0}}  # calls in the driver run on the driver's budget
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(original)
