"""BO in a prior's noise space: deterministic decoding, a replayed trust region, resume from the
journal alone (in process and after SIGKILL), and valid images from the shipped digits prior."""

import numpy as np
import pytest

from bbo import NoiseBOOptimizer
from bbo.optimizers.noise_space import decode_noise
from tests.optimizers.conftest import asks_as_uninterrupted, linear, run_rounds

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
    means = run_rounds(opt, linear, 6)
    assert np.mean(means[-2:]) > np.mean(means[:2]) + 1.0, means  # the GP batches beat the prior's draws
    assert opt.strategy.state["length"] > 0
    nxt = opt.ask()
    opt.close()
    asks_as_uninterrupted(tmp_path / "j.db", nxt, NoiseBOOptimizer(prior=prior_dir, seed=0, **FAST), linear, 6)


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
    from tests.test_cli import kill_mid_run, resume_completes

    optimizer = (f"{{kind: noise_bo, prior: '{prior_dir}', batch_size: 16, n_initial: 32, n_candidates: 256, "
                 f"sample_steps: 20}}")
    run = kill_mid_run(tmp_path, "{name: 'tests.fake_oracles:linear_vector', label: lin, delay: 0.02}", optimizer,
                       budget=96, complete=50)  # past the initial design
    resume_completes(*run, budget=96)


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
