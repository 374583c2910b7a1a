"""BO in a prior's noise space: deterministic decoding, a replayed trust region, resume from the
journal alone (in process and after SIGKILL), and valid images from the shipped digits prior."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bbo import NoiseBOOptimizer, load_optimizer
from bbo.optimizers.noise_bo import decode_noise
from tests.optimizers.conftest import linear

ROOT = Path(__file__).resolve().parents[2]
FAST = dict(batch_size=16, n_initial=32, n_candidates=256, sample_steps=20)


def test_objects_are_the_ode_of_their_stored_noise(tmp_path, prior_dir):
    opt = NoiseBOOptimizer(prior=prior_dir, seed=0, storage=tmp_path / "j.db", **FAST)
    xs = opt.ask()
    trials = opt.get_trials()
    z = np.stack([decode_noise(t.metadata["noise"], (2,)) for t in trials])
    again = opt.strategy.decode(z)
    assert all(np.array_equal(a, b) for a, b in zip(xs, again))  # eta = 0: the noise fixes the object


def test_improves_on_the_prior_and_resumes_asking_the_same(tmp_path, prior_dir):
    opt = NoiseBOOptimizer(prior=prior_dir, seed=0, storage=tmp_path / "j.db", **FAST)
    means = []
    for _ in range(6):
        xs = opt.ask()
        ys = linear(xs)
        opt.tell(xs, ys)
        means.append(np.mean(ys))
    assert np.mean(means[-2:]) > np.mean(means[:2]) + 1.0, means  # the GP batches beat the prior's draws
    assert opt.strategy.state["length"] > 0
    nxt = opt.ask()
    opt.close()
    resumed = load_optimizer(tmp_path / "j.db")  # the pending batch is asked again, then new ones
    assert all(np.array_equal(a, b) for a, b in zip(resumed.ask(), nxt))
    twin = NoiseBOOptimizer(prior=prior_dir, seed=0, **FAST)  # an uninterrupted study
    for _ in range(6):
        xs = twin.ask()
        twin.tell(xs, linear(xs))
    assert all(np.array_equal(a, b) for a, b in zip(twin.ask(), nxt))


def test_trust_region_replay_by_hand(prior_dir):
    opt = NoiseBOOptimizer(prior=prior_dir, n_initial=4, batch_size=2, success_tolerance=2, failure_tolerance=2,
                           length_init=0.8, length_min=0.3)
    y = np.array([0, 1, 0, 0,   2, 0,   3, 0,   0, 0,   0, 0,   0, 0,   0, 0], dtype=float)
    # improve, improve -> doubled to 1.6; fail, fail -> 0.8; fail, fail -> 0.4
    assert opt.strategy.trust_region(y, 2)["length"] == pytest.approx(0.4)
    y2 = np.concatenate([y, [0, 0, 0, 0]])  # two more failures: 0.2 < length_min, restart at 0.8
    state = opt.strategy.trust_region(y2, 2)
    assert state["length"] == pytest.approx(0.8) and state["restarts"] == 1


def test_settings_are_checked(prior_dir):
    with pytest.raises(ValueError, match="length_min <= length_init"):
        NoiseBOOptimizer(prior=prior_dir, length_init=2.0, length_max=1.6)
    with pytest.raises(ValueError, match="n_initial"):
        NoiseBOOptimizer(prior=prior_dir, n_initial=1)


def test_sigkill_mid_run_then_resume_completes_with_the_journal_intact(tmp_path, prior_dir):
    from tests.test_cli import _journal_rows, _run_then_kill, _write

    cfg = _write(tmp_path / "c.yaml", f"name: t\nplugins: [tests.fake_oracles]\n"
                                      f"tasks: [{{name: 'tests.fake_oracles:linear_vector', label: lin, delay: 0.02}}]\n"
                                      f"budget: 96\noptimizers: [{{kind: noise_bo, prior: '{prior_dir}', batch_size: 16, "
                                      f"n_initial: 32, n_candidates: 256, sample_steps: 20}}]\n"
                                      f"executor: {{kind: local, tell_every: 1}}\n")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "bbo.cli", "run", str(cfg), "--out", str(out)]
    journal = out / "lin" / "noise_bo" / "seed0" / "journal.db"
    before = _run_then_kill(cmd, env, journal, complete=50, timeout=240)  # past the initial design
    assert 50 <= len(before) < 96
    resumed = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    after = _journal_rows(journal)
    by_number = {r[0]: r for r in after}
    assert all(by_number[r[0]] == r for r in before)
    assert sum(r[2] == "COMPLETE" for r in after) == 96


def test_digits_prior_gives_valid_images(tmp_path):
    opt = NoiseBOOptimizer(prior="digits", seed=0, batch_size=8, n_initial=8, n_candidates=128, sample_steps=10)
    assert opt.domain.name == "image"
    from oracles import get_oracle

    oracle = get_oracle("image/symmetry")
    for _ in range(2):
        xs = opt.ask()
        assert all(opt.domain.validate(x) is None for x in xs)
        opt.tell(xs, oracle(xs))
    with pytest.raises(ValueError, match="generates"):
        NoiseBOOptimizer(prior="digits", domain={"name": "image", "channels": 1, "height": 16, "width": 16})
