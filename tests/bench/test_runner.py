"""The benchmark runner's worker processes."""

import pytest

from bbo.bench import runner
from bbo.bench.config import parse_config
from bbo.study import Journal


def test_a_worker_whose_benchmark_process_is_gone_stops_and_frees_its_journal(tmp_path, monkeypatch):
    """After the benchmark process is killed, its workers must not run on and write the journals a
    resume is about to open: each stops before its next batch and releases the journal."""
    cfg = parse_config({"name": "t", "plugins": ["tests.fake_oracles"], "tasks": ["tests.fake_oracles:heavy_atoms"], "budget": 40,
                        "optimizers": [{"kind": "random", "batch_size": 10}]})
    task, spec = cfg.tasks[0], cfg.optimizers[0]
    run_dir = tmp_path / "run"
    runner.run_one(cfg, task, spec, 0, run_dir)  # a live parent: the run completes
    assert Journal(run_dir / "journal.db").count() == 40

    cfg = parse_config({**cfg.model_dump(mode="json"), "budget": 80})
    monkeypatch.setattr(runner, "_PARENT_PID", -1)  # not this process's parent: orphaned
    with pytest.raises(runner.OrphanedRunError, match="is gone; stopping"):
        runner.run_one(cfg, task, spec, 0, run_dir)
    journal = Journal(run_dir / "journal.db", exclusive=True)  # released for the resume
    assert journal.count() == 40  # nothing asked after the parent was gone
    journal.close()
