"""The `bbo` command line end to end: run, report, errors, and resume after SIGKILL."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from bbo.cli import app

ROOT = Path(__file__).parent.parent  # makes tests.fake_oracles importable in child processes


@pytest.fixture
def fake_oracle_path(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))


def _write(path, text):
    path.write_text(text)
    return path


def _config(tmp_path, budget=60, batch=20, extra_task="", executor="{kind: local}", optimizers=None):
    optimizers = optimizers or f"[{{kind: random, batch_size: {batch}}}]"
    return _write(
        tmp_path / "c.yaml",
        f"name: t\nplugins: [tests.fake_oracles]\ntasks: [{{name: 'tests.fake_oracles:heavy_atoms'{extra_task}}}]\nbudget: {budget}\n"
        f"optimizers: {optimizers}\nexecutor: {executor}\n",
    )


def test_run_writes_journal_history_summary_and_plot(tmp_path, fake_oracle_path):
    cfg = _config(tmp_path, optimizers="[{kind: random, batch_size: 20}, {kind: random, batch_size: 7, label: r7}]")
    result = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "out"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "out" / "tests.fake_oracles_heavy_atoms" / "random" / "seed3"
    for name in ("journal.db", "history.csv", "summary.json", "best_so_far.png"):
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["calls"] == 60 and summary["seed"] == 3
    assert 0 < summary["top10_auc"] <= summary["top1_auc"] <= summary["top1_mean"]
    history = pd.read_csv(run / "history.csv")
    assert (history["state"] == "COMPLETE").all() and history["key"].nunique() == 60
    table = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert sorted(table["optimizer"]) == ["r7", "random"]
    assert (tmp_path / "out" / "best_so_far.png").stat().st_size > 10_000

    again = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "out"), "--seed", "3"])
    assert again.exit_code == 2 and "--resume" in again.output

    report = CliRunner().invoke(app, ["report", str(tmp_path / "out")])
    assert report.exit_code == 0 and "r7" in report.output


def test_config_errors_are_one_line_with_exit_code_2(tmp_path):
    cfg = _write(tmp_path / "bad.yaml", "tasks: [pmo/qed]\nbudget: 10\noptimizers: [{kind: randmo}]\n")
    proc = subprocess.run([sys.executable, "-m", "bbo.cli", "run", str(cfg)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    message = " ".join(proc.stderr.split())
    assert "optimizers.0: unknown optimizer 'randmo'; allowed: " in message and "random" in message


def test_oracles_lists_the_pmo_suite():
    result = CliRunner().invoke(app, ["oracles"])
    assert result.exit_code == 0
    assert "pmo/osimertinib_mpo" in result.output and "penalized_logp" in result.output


def _journal_rows(path):
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT number, key, state, value FROM trials ORDER BY number").fetchall()
    except sqlite3.OperationalError:  # the run is still creating the journal
        return []
    finally:
        db.close()


def _run_then_kill(cmd, env, journal, complete, timeout):
    """Start ``cmd`` and SIGKILL it once ``journal`` holds ``complete`` COMPLETE trials; returns the
    trials told before the kill (journal rows)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if journal.exists() and sum(r[2] == "COMPLETE" for r in _journal_rows(journal)) >= complete:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return [r for r in _journal_rows(journal) if r[2] != "RUNNING"]


def test_sigkill_mid_run_then_resume_loses_nothing_and_repeats_no_call(tmp_path):
    log = tmp_path / "calls.log"
    cfg = _config(tmp_path, budget=150, batch=20, extra_task=f", label: slow, log: '{log}', delay: 0.02",
                  executor="{kind: local, n_workers: 1}")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "bbo.cli", "run", str(cfg), "--out", str(out)]
    journal = out / "slow" / "random" / "seed0" / "journal.db"
    before = _run_then_kill(cmd, env, journal, complete=50, timeout=120)
    assert 50 <= len(before) < 150

    resumed = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    after = _journal_rows(journal)
    by_number = {r[0]: r for r in after}
    for row in before:  # every trial told before the kill is there, unchanged
        assert by_number[row[0]] == row
    assert all(r[2] == "COMPLETE" for r in after)
    assert len({r[1] for r in after}) == 150  # the whole budget of distinct molecules

    calls = Counter(log.read_text().split())
    told_before = {r[1] for r in before}
    assert all(calls[k] == 1 for k in told_before)  # no told molecule was scored again
    # at most the single call in flight at the kill (scored, not yet told) can repeat
    assert sum(c - 1 for c in calls.values()) <= 1


def test_compare_runs_seeds_in_parallel_workers_and_resumes(tmp_path, fake_oracle_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cfg = _config(tmp_path, budget=40, optimizers="[{kind: random, batch_size: 10}, {kind: random, batch_size: 40, label: big}]")
    out = tmp_path / "cmp"
    args = ["compare", str(cfg), "--seeds", "2", "--out", str(out), "--workers", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "comparison.csv")
    assert sorted(table["optimizer"]) == ["big", "random"]
    assert (table["seeds"] == 2).all() and (table["calls"] == 40).all()
    assert {"top1_auc", "top1_auc_std", "top10_auc", "top10_auc_std", "top100_auc", "top10_mean",
            "diversity_top100", "sa_top100", "wall_time_s"} <= set(table.columns)
    assert (out / "comparison.png").exists()
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["seed"]) == [0, 0, 1, 1]
    # seeds differ, the same seed is reproducible across optimizers with the same draws
    assert runs[runs.optimizer == "random"].top10_auc.nunique() == 2
    again = CliRunner().invoke(app, args)  # everything is there: resumes and only reports
    assert again.exit_code == 0
    assert pd.read_csv(out / "comparison.csv")["top10_auc"].tolist() == table["top10_auc"].tolist()


def test_compare_one_optimizer_at_a_time_adds_up_to_one_table(tmp_path, fake_oracle_path):
    cfg = _config(tmp_path, budget=20, optimizers="[{kind: random, batch_size: 10}, {kind: random, batch_size: 20, label: big}]")
    out = tmp_path / "cmp"
    base = ["compare", str(cfg), "--seeds", "1", "--out", str(out)]
    wrong = CliRunner().invoke(app, [*base, "--optimizer", "bigger"])
    assert wrong.exit_code == 2 and "--optimizer bigger: not in the config; its optimizers: random, big" in wrong.output
    assert not out.exists()
    assert CliRunner().invoke(app, [*base, "--optimizer", "big"]).exit_code == 0
    assert pd.read_csv(out / "comparison.csv")["optimizer"].tolist() == ["big"]
    assert CliRunner().invoke(app, [*base, "--optimizer", "random", "--task", "tests.fake_oracles_heavy_atoms"]).exit_code == 0
    assert sorted(pd.read_csv(out / "comparison.csv")["optimizer"]) == ["big", "random"]


def test_resume_with_a_larger_budget_and_refuses_changed_settings(tmp_path, fake_oracle_path):
    out = tmp_path / "out"
    cfg = _config(tmp_path, budget=40, batch=20)
    assert CliRunner().invoke(app, ["run", str(cfg), "--out", str(out)]).exit_code == 0
    more = CliRunner().invoke(app, ["run", str(cfg), "--out", str(out), "--resume", "--budget", "60"])
    assert more.exit_code == 0, more.output
    summary = json.loads((out / "tests.fake_oracles_heavy_atoms" / "random" / "seed0" / "summary.json").read_text())
    assert summary["budget"] == 60 and summary["calls"] == 60

    changed = _config(tmp_path, budget=60, batch=10)
    result = CliRunner().invoke(app, ["run", str(changed), "--out", str(out), "--resume"])
    assert result.exit_code == 2
    assert "started with other settings" in result.output and "batch_size" in result.output


def kill_mid_run(tmp_path, task, optimizer, budget, complete, plugins="[tests.fake_oracles]", timeout=240):
    """`bbo run` one ``optimizer`` (a YAML mapping) on ``task`` (a YAML mapping with a ``label``), told
    one result at a time, SIGKILLed once ``complete`` trials are told. Returns the command, its
    environment, the run's journal and the trials told before the kill."""
    cfg = _write(tmp_path / "c.yaml", f"name: t\nplugins: {plugins}\ntasks: [{task}]\nbudget: {budget}\n"
                                      f"optimizers: [{optimizer}]\nexecutor: {{kind: local, n_workers: 1}}\n")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "bbo.cli", "run", str(cfg), "--out", str(out)]
    runs = out / yaml.safe_load(task)["label"] / yaml.safe_load(optimizer)["kind"] / "seed0"
    journal = runs / "journal.db"
    before = _run_then_kill(cmd, env, journal, complete=complete, timeout=timeout)
    assert complete <= len(before) < budget
    return cmd, env, journal, before


def resume_completes(cmd, env, journal, before, budget):
    """`--resume` finishes the killed run: every trial told before the kill is there unchanged and
    the whole budget is told."""
    resumed = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    after = _journal_rows(journal)
    by_number = {r[0]: r for r in after}
    assert all(by_number[r[0]] == r for r in before)
    assert sum(r[2] == "COMPLETE" for r in after) == budget


def test_sqdf_study_killed_mid_run_resumes_from_its_last_round_checkpoint(tmp_path):
    """SIGKILL during an SQDF benchmark run: the journal keeps every told trial, the reloaded
    optimizer has exactly those and the policy of the last finished round, and `--resume` finishes."""
    import torch
    from safetensors.torch import load_file

    from bbo import load_optimizer
    from bbo.diffusion import GaussianMixturePrior, save_prior

    prior = save_prior(GaussianMixturePrior([[-2.0, 0.0], [2.0, 0.0]], [0.5, 0.5], [0.7, 0.3], num_steps=20),
                       tmp_path / "prior")
    sqdf = (f"{{kind: sqdf, prior: '{prior}', batch_size: 20, x0_estimator: tweedie, sqdf_steps: 20, "
            f"surrogate_steps: 100, trajectories_per_update: 16}}")
    # past the second round end (60 told): a fine-tuned policy is on disk
    cmd, env, journal, before = kill_mid_run(tmp_path, "{name: 'tests.fake_oracles:linear_vector', label: lin, delay: 0.03}",
                                             sqdf, budget=200, complete=70)
    opt = load_optimizer(journal)
    try:
        assert opt.n_told == len(before)
        assert opt.round >= 2 and opt.strategy.policy is not opt.strategy.prior
        saved = load_file(str(journal.with_name("journal.db.ckpt") / f"round-{opt.round:05d}" / "policy" /
                              "denoiser.safetensors"))
        state = opt.strategy.policy.denoiser.state_dict()
        assert all(torch.equal(state[k].cpu(), v) for k, v in saved.items())
    finally:
        opt.close()

    resume_completes(cmd, env, journal, before, budget=200)


def test_pretrain_with_contradictory_settings_fails_clearly_and_writes_nothing(tmp_path):
    out = tmp_path / "pretrain"
    result = CliRunner().invoke(app, ["pretrain", "molecule", "--out", str(out), "--decoder-steps", "5"])
    assert result.exit_code == 2
    assert "decoder_noise" in result.output and not out.exists()
