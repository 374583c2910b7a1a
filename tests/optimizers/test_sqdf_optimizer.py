"""SQDFOptimizer end to end on a vector problem with a known prior: it learns, checkpoints each
round, and resumes with the last round's policy."""

import numpy as np
import pytest
import torch

from bbo import load_optimizer
from bbo.optimizers.sqdf_optimizer import SQDFOptimizer
from tests.optimizers.conftest import linear

FAST = dict(batch_size=64, sample_steps=50, alpha=0.5, gamma=1.0, sqdf_steps=100, sqdf_batch_size=128,
            trajectories_per_update=32, x0_estimator="tweedie", surrogate_steps=300, surrogate_hidden=64)


def test_learns_checkpoints_and_resumes(tmp_path, prior_dir):
    opt = SQDFOptimizer(prior=prior_dir, seed=0, storage=tmp_path / "j.db", **FAST)
    assert opt.domain.name == "vector" and opt.domain.dim == 2
    rewards = []
    for _ in range(4):
        xs = opt.ask()
        ys = linear(xs)
        opt.tell(xs, ys)
        rewards.append(np.mean(ys))
    assert opt.round == 3  # three updates happened, at the asks after each full round
    # the prior puts 30% on the good component; the fine-tuned policy asks from it far more often
    assert rewards[-1] > rewards[0] + 1.0, rewards
    rounds = sorted(p.name for p in (tmp_path / "j.db.ckpt").glob("round-*"))
    assert rounds == ["round-00003"]  # written whole for each round; older rounds pruned
    assert (tmp_path / "j.db.ckpt" / "round-00003" / "policy" / "denoiser.safetensors").exists()
    assert opt.strategy.round_log[-1]["surrogate_n"] == 192

    resumed = load_optimizer(tmp_path / "j.db")
    assert isinstance(resumed, SQDFOptimizer) and resumed.round == 3 and resumed.n_told == 256
    for a, b in zip(opt.strategy.policy.denoiser.state_dict().values(), resumed.strategy.policy.denoiser.state_dict().values()):
        assert torch.equal(a, b)
    assert np.allclose(np.stack(resumed.ask(8)), np.stack(opt.ask(8)))  # same policy, same seed state


def test_failed_rounds_never_break_the_study_and_resume(tmp_path, prior_dir):
    from pathlib import Path

    opt = SQDFOptimizer(prior=Path(prior_dir), seed=0, storage=tmp_path / "j.db", device="cpu", **FAST)
    xs = opt.ask()
    with pytest.warns(UserWarning):
        opt.tell(xs, [float("nan")] * 63 + [1.0])  # a round in which all but one call failed
    xs = opt.ask()  # the update has nothing to learn from: it is skipped, the policy stays the prior
    assert opt.round == 1 and opt.strategy.policy is opt.strategy.prior
    resumed = load_optimizer(tmp_path / "j.db")
    assert resumed.strategy.policy is resumed.strategy.prior  # and so it resumes, from any device setting
    resumed.tell(xs, linear(xs))
    assert len(resumed.ask()) == 64 and resumed.round == 2
    assert resumed.config()["settings"]["prior"] == str(Path(prior_dir).resolve())
    assert "device" not in resumed.config()["settings"]


def test_wrong_domain_and_settings_are_refused(prior_dir):
    with pytest.raises(ValueError, match="generates in the 'vector' domain, not 'molecule'"):
        SQDFOptimizer(prior=prior_dir, domain="molecule")
    with pytest.raises(ValueError, match="optimism"):
        SQDFOptimizer(prior=prior_dir, optimism="greedy")


def test_a_policy_that_decodes_too_few_valid_objects_is_topped_up_by_the_prior(tmp_path, prior_dir, monkeypatch):
    """A policy fine-tuned towards what its domain cannot express (on layouts: empty pages) does
    not end the study: the pretrained prior fills the batch, each such trial says so."""
    from bbo.optimizers.generative import PolicyCollapseWarning

    opt = SQDFOptimizer(prior=prior_dir, seed=0, storage=tmp_path / "j.db", **FAST)
    opt.tell(xs := opt.ask(), linear(xs))
    assert all("source" not in t.metadata for t in opt.trials)  # nothing to say while the policy suffices
    sample = opt.strategy._sample_policy
    monkeypatch.setattr(opt.strategy, "_sample_policy", lambda n, rng, strict=True: sample(n, rng, False)[: n // 4])
    with pytest.warns(PolicyCollapseWarning, match="decoded 16 valid objects of 64"):
        xs = opt.ask()
    assert len(xs) == 64 and opt.round == 1
    sources = [t.metadata.get("source") for t in opt.trials[64:]]
    assert sources == ["policy"] * 16 + ["prior"] * 48
    opt.tell(xs, linear(xs))
    assert opt.n_told == 128
