"""What a hostile or careless user can throw at bbo: each case never crashes, escapes or mixes.

Each test reproduced its problem before the fix: a config calling any importable callable, a
segfault on a long SMILES, unbounded oracles, labels writing outside ``--out``, ``--resume``
appending another objective, journals opened before validation, corrupt journals, orphaned
workers, and the smaller type and size checks."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bbo import JournalError, RandomOptimizer, load_optimizer
from bbo.bench.config import ConfigError, load_config
from bbo.cli import app

ROOT = Path(__file__).parent.parent
ORACLE = "plugins: [tests.fake_oracles]\ntasks: [{name: 'tests.fake_oracles:heavy_atoms', label: heavy}]\n"


def _run(tmp_path, text, *extra):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    return CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "out"), *extra])


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


# ------------------------------------------------------------------------------ 1. factories
def test_a_config_cannot_call_a_factory_from_a_module_it_does_not_list(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run(tmp_path, "tasks: [{name: 'os:system', command: 'touch pwned'}]\nbudget: 5\n"
                            "optimizers: [{kind: random}]\n")
    assert result.exit_code == 2 and "not under plugins" in " ".join(result.output.split())
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()


def test_listing_a_module_still_refuses_what_is_not_its_own_factory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "victim.txt"
    target.write_text("keep me")
    for text in ("plugins: [os]\ntasks: [{name: 'os:system', command: 'touch pwned'}]\n",
                 f"plugins: [builtins]\ntasks: [{{name: 'builtins:open', file: '{target}', mode: w}}]\n"):
        result = _run(tmp_path, text + "budget: 5\noptimizers: [{kind: random}]\n")
        assert result.exit_code == 2, result.output
        assert "not an Oracle subclass or a function defined in" in " ".join(result.output.split())
    assert not (tmp_path / "pwned").exists() and target.read_text() == "keep me"


def test_allow_module_on_the_command_line_trusts_a_plugin(tmp_path):
    text = ("tasks: [{name: 'tests.fake_oracles:heavy_atoms', label: heavy}]\nbudget: 20\n"
            "optimizers: [{kind: random, batch_size: 10}]\n")
    assert _run(tmp_path, text).exit_code == 2
    assert _run(tmp_path, text, "--allow-module", "tests.fake_oracles").exit_code == 0


# ------------------------------------------------------------------------- 2, 3. molecule size
def test_a_huge_smiles_is_a_value_error_not_a_segfault():
    code = ("from bbo import RandomOptimizer\nfrom oracles import BudgetedOracle, get_oracle\n"
            "opt = RandomOptimizer()\n"
            "try:\n    opt.tell('C' * 20000, 0.5)\nexcept ValueError as err:\n    print('refused:', err)\n"
            "print(BudgetedOracle(get_oracle('qed'))(['C' * 20000]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])  # was 139 (SIGSEGV)
    assert "refused: tell: object 0 is invalid" in proc.stdout and "limit of 2,000" in proc.stdout
    assert "[nan]" in proc.stdout


def test_oracles_score_nan_above_their_stated_size_and_say_why(caplog):
    from oracles import get_oracle
    from oracles.chem import MAX_ORACLE_HEAVY_ATOMS

    t0 = time.perf_counter()
    values = get_oracle("pmo/deco_hop")(["C" * 250, "CCO"])  # took 62 s before the limit
    assert math.isnan(values[0]) and not math.isnan(values[1])
    assert time.perf_counter() - t0 < 30
    assert f"limit of {MAX_ORACLE_HEAVY_ATOMS}" in caplog.text


# ------------------------------------------------------------------------------------ 4. labels
@pytest.mark.parametrize("where", ["optimizer", "task"])
def test_labels_cannot_escape_the_run_directory(tmp_path, where):
    bad = "../../../elsewhere" if where == "optimizer" else str(tmp_path / "abs")
    task = "{name: pmo/qed" + (f", label: '{bad}'" if where == "task" else "") + "}"
    opt = "{kind: random" + (f", label: '{bad}'" if where == "optimizer" else "") + "}"
    result = _run(tmp_path, f"tasks: [{task}]\nbudget: 5\noptimizers: [{opt}]\n")
    assert result.exit_code == 2 and "must be one path component" in " ".join(result.output.split())
    assert _files(tmp_path) == [tmp_path / "c.yaml"]


# ------------------------------------------------------------------------- 5. resume, objectives
def test_resume_refuses_another_objective_under_the_same_label(tmp_path):
    base = "budget: 20\noptimizers: [{kind: random, batch_size: 10}]\n"
    assert _run(tmp_path, ORACLE + base).exit_code == 0
    journal = tmp_path / "out" / "heavy" / "random" / "seed0" / "journal.db"
    before = journal.read_bytes()
    other = "tasks: [{name: pmo/qed, label: heavy}]\n"
    result = _run(tmp_path, other + base.replace("20", "40", 1), "--resume")
    assert result.exit_code == 2 and "would mix two objectives" in " ".join(result.output.split())
    changed = ORACLE.replace("label: heavy", "label: heavy, delay: 0.001")
    result = _run(tmp_path, changed + base.replace("20", "40", 1), "--resume")
    assert result.exit_code == 2 and "with arguments" in " ".join(result.output.split())
    assert journal.read_bytes() == before  # nothing appended, the recorded oracle untouched


# ---------------------------------------------------------------- 6. validate before any file
@pytest.mark.parametrize("setting, field", [
    ("seed: -1\noptimizers: [{kind: random}]", "seed"),
    ("optimizers: [{kind: genetic, population_size: -3}]", "population_size"),
    ("optimizers: [{kind: random, batch_size: 0}]", "batch_size"),
    ("optimizers: [{kind: sqdf, prior: /no/such/prior}]", "prior"),
    ("optimizers: [{kind: random, batch_size: true}]", "batch_size"),
    ("budget: 2.7\noptimizers: [{kind: random}]", "budget"),
])
def test_bad_settings_exit_2_naming_the_field_and_write_nothing(tmp_path, setting, field):
    text = ORACLE + ("budget: 20\n" if "budget" not in setting else "") + setting + "\n"
    result = _run(tmp_path, text)
    assert result.exit_code == 2, result.output
    assert field in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
    fixed = ORACLE + "budget: 20\noptimizers: [{kind: random, batch_size: 10}]\n"
    assert _run(tmp_path, fixed).exit_code == 0  # no lock or half-made journal left behind


def test_an_optimizer_that_does_not_fit_the_task_is_refused_before_anything_is_written(tmp_path):
    text = ORACLE + "budget: 20\noptimizers: [{kind: random}, {kind: botorch, domain: vector}]\n"
    result = _run(tmp_path, text)
    assert result.exit_code == 2 and not (tmp_path / "out").exists()


def test_constructor_errors_hold_no_journal(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        RandomOptimizer(seed=-1, storage=tmp_path / "j.db")
    assert not (tmp_path / "j.db").exists()
    RandomOptimizer(seed=1, storage=tmp_path / "j.db").close()


# ----------------------------------------------------------------------------- 7. journals
def _finished_run(tmp_path) -> Path:
    assert _run(tmp_path, ORACLE + "budget: 20\noptimizers: [{kind: random, batch_size: 10}, "
                                   "{kind: genetic, batch_size: 10}]\n").exit_code == 0
    return tmp_path / "out" / "heavy"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "bad-meta"])
def test_a_damaged_journal_is_named_and_the_report_skips_it(tmp_path, damage):
    journal = _finished_run(tmp_path) / "random" / "seed0" / "journal.db"
    for suffix in ("-wal", "-shm"):
        Path(str(journal) + suffix).unlink(missing_ok=True)
    if damage == "truncate":
        journal.write_bytes(journal.read_bytes()[:1000])
    elif damage == "garbage":
        journal.write_bytes(os.urandom(5000))
    else:
        db = sqlite3.connect(journal)
        db.execute("UPDATE meta SET value = '{not json' WHERE name = 'optimizer'")
        db.execute("UPDATE meta SET value = '[1, 2]' WHERE name = 'run'")
        db.commit()
        db.close()
    with pytest.raises(JournalError, match=str(journal).replace(".", r"\.")):
        load_optimizer(journal)
    result = CliRunner().invoke(app, ["report", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "journal.db" in result.output
    assert "genetic" in result.output  # the readable run is still reported


def test_an_empty_file_is_never_made_a_journal(tmp_path):
    path = tmp_path / "j.db"
    path.write_bytes(b"")
    with pytest.raises(JournalError, match="empty"):
        RandomOptimizer(storage=path)
    assert path.stat().st_size == 0


def test_a_journal_copied_without_its_wal_is_not_resumed_as_new(tmp_path):
    path = tmp_path / "j.db"
    db = sqlite3.connect(path)  # what a copy of a never-checkpointed WAL database looks like: no tables
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="without its -wal"):
        RandomOptimizer(storage=path)


# -------------------------------------------------------------------------- 8. orphaned workers
def test_a_worker_whose_benchmark_process_dies_exits():
    child = ("import sys, threading, time\nfrom bbo.bench.runner import _exit_when_orphaned\n"
             "threading.Thread(target=_exit_when_orphaned, args=(int(sys.argv[1]), 0.1), daemon=True).start()\n"
             "time.sleep(60)\n")
    parent = (f"import os, subprocess, sys\np = subprocess.Popen([sys.executable, '-c', {child!r}, str(os.getpid())], "
              "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
              "print(p.pid, flush=True)\n")  # the parent exits at once, as a killed benchmark would
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=60, cwd=ROOT)
    pid = int(out.stdout.split()[0])
    deadline = time.time() + 30
    while time.time() < deadline and _alive(pid):
        time.sleep(0.2)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in state


# ---------------------------------------------------------------------------------- 9. smaller
def test_tell_refuses_mappings_and_ask_has_a_bound():
    opt = RandomOptimizer(batch_size=2)
    xs = opt.ask()
    with pytest.raises(ValueError, match="values given as a dict"):
        opt.tell(xs, {0.9: 0.1, 0.8: 0.2})
    assert opt.n_told == 0
    with pytest.raises(ValueError, match="more than one call asks"):
        opt.ask(10**7)


def test_config_files_that_are_directories_or_alias_bombs_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\ntasks: [pmo/qed]\n")
    with pytest.raises(ConfigError, match="more than 100,000 YAML nodes"):
        load_config(bomb)


def test_a_prior_config_is_validated_on_load_naming_the_file(tmp_path):
    from bbo.diffusion import DiffusionPrior, MLPDenoiser, load_prior, save_prior

    d = save_prior(DiffusionPrior(MLPDenoiser(3, hidden=8, depth=1), (3,)), tmp_path / "p")
    good = json.loads((d / "config.json").read_text())
    for change, message in [({"shape": "64"}, "prior.shape"), ({"sample_steps": 0}, "prior.sample_steps"),
                            ({"sample_steps": -5}, "prior.sample_steps")]:
        (d / "config.json").write_text(json.dumps({**good, "prior": {**good["prior"], **change}}))
        with pytest.raises(ValueError, match=f"config.json: {message}"):
            load_prior(d)
    del good["prior"]["beta_schedule"]
    (d / "config.json").write_text(json.dumps(good))
    with pytest.raises(ValueError, match="prior.beta_schedule: missing"):
        load_prior(d)
