"""CMA-ES in a prior's noise space: the first generation is the prior's, generations replay from
the journal (a failed call ranks last, a running trial stops the replay), it climbs a linear
black box, resumes asking the same (in process and after SIGKILL), and gives valid images."""

import numpy as np
import pytest

from bbo import FailedTrialWarning, NoiseCMAOptimizer
from bbo.optimizers.noise_space import decode_noise
from tests.optimizers.conftest import asks_as_uninterrupted, linear, run_rounds

FAST = dict(batch_size=8, sample_steps=20)


def test_improves_on_the_prior_and_resumes_asking_the_same(tmp_path, prior_dir):
    opt = NoiseCMAOptimizer(prior=prior_dir, seed=0, storage=tmp_path / "j.db", **FAST)
    means = run_rounds(opt, linear, 8)
    assert np.mean(means[-2:]) > np.mean(means[:2]) + 1.0, means
    nxt = opt.ask()
    assert opt.strategy.state()["generations"] == 8
    opt.close()
    asks_as_uninterrupted(tmp_path / "j.db", nxt, NoiseCMAOptimizer(prior=prior_dir, seed=0, **FAST), linear, 8)


def test_generations_are_consecutive_asks_told_in_full(prior_dir):
    opt = NoiseCMAOptimizer(prior=prior_dir, seed=1, batch_size=3, popsize=4, sample_steps=10)
    xs = opt.ask() + opt.ask()  # six asks: one generation of four and two of the next
    opt.tell(xs[:3], linear(xs[:3]))
    assert opt.strategy.replay(opt).countiter == 0  # the fourth is still running
    opt.tell(xs[3:], linear(xs[3:]))
    assert opt.strategy.replay(opt).countiter == 1  # the second generation has two of its four


def test_a_failed_call_ranks_last(prior_dir):
    def replayed_mean(fifth):
        opt = NoiseCMAOptimizer(prior=prior_dir, seed=2, batch_size=8, sample_steps=10)
        xs = opt.ask()
        ys = linear(xs)
        ys[4] = fifth
        if fifth is None:  # a FAIL
            with pytest.warns(FailedTrialWarning):
                opt.tell(xs, ys)
        else:
            opt.tell(xs, ys)
        return opt.strategy.replay(opt).mean

    failed = replayed_mean(None)
    lowest = replayed_mean(-1e6)
    np.testing.assert_allclose(failed, lowest)


def test_the_first_generation_is_the_priors_noise(tmp_path):
    opt = NoiseCMAOptimizer(prior="digits", seed=0, batch_size=32, sample_steps=10)
    opt.ask()
    z = np.stack([decode_noise(t.metadata["noise"], (64,)) for t in opt.get_trials()])
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1.0) < 0.05  # N(0, I): mean 0, step size 1


def test_settings_are_checked(prior_dir):
    with pytest.raises(ValueError, match="popsize"):
        NoiseCMAOptimizer(prior=prior_dir, popsize=2)
    with pytest.raises(ValueError, match="sigma0"):
        NoiseCMAOptimizer(prior=prior_dir, sigma0=0.0)


def test_sigkill_mid_run_then_resume_completes_with_the_journal_intact(tmp_path, prior_dir):
    from tests.test_cli import kill_mid_run, resume_completes

    optimizer = f"{{kind: noise_cma, prior: '{prior_dir}', batch_size: 16, sample_steps: 20}}"
    run = kill_mid_run(tmp_path, "{name: 'tests.fake_oracles:linear_vector', label: lin, delay: 0.02}", optimizer,
                       budget=96, complete=50)
    resume_completes(*run, budget=96)


def test_digits_prior_gives_valid_images():
    opt = NoiseCMAOptimizer(prior="digits", seed=0, batch_size=8, sample_steps=10)
    assert opt.domain.name == "image"
    from oracles import get_oracle

    oracle = get_oracle("image/symmetry")
    for _ in range(2):
        xs = opt.ask()
        assert all(opt.domain.validate(x) is None for x in xs)
        opt.tell(xs, oracle(xs))
    assert opt.strategy.state()["generations"] == 1
