"""PGRAFTOptimizer end to end on a vector problem with a known prior: it learns, checkpoints each
round (the stitched policy, safetensors + JSON), and resumes with the last round's policy."""

import json

import numpy as np
import pytest
import torch

from bbo import load_optimizer
from bbo.finetune.graft import StitchedDenoiser
from bbo.optimizers.pgraft_optimizer import PGRAFTOptimizer
from tests.optimizers.conftest import linear

FAST = dict(batch_size=64, sample_steps=50, rule="top_k", keep=0.25, t_split=0.25, pgraft_rounds=2,
            samples_per_round=1024, train_steps=150, pgraft_batch_size=256, lr=2e-3, surrogate_steps=300,
            surrogate_hidden=64)


def test_learns_checkpoints_and_resumes(tmp_path, prior_dir):
    opt = PGRAFTOptimizer(prior=prior_dir, seed=0, storage=tmp_path / "j.db", **FAST)
    assert opt.domain.name == "vector" and opt.domain.dim == 2
    rewards = []
    for _ in range(4):
        xs = opt.ask()
        ys = linear(xs)
        opt.tell(xs, ys)
        rewards.append(np.mean(ys))
    assert opt.round == 3  # three updates happened, at the asks after each full round
    # the prior puts 30% on the good component (mean reward 0.7 * -2 + 0.3 * 2 = -0.8); the policy
    # asks from it far more often
    print("\n[pgraft optimizer] mean reward of asks per round", [round(float(r), 3) for r in rewards])
    assert rewards[-1] > rewards[0] + 1.0, rewards
    assert isinstance(opt.strategy.policy.denoiser, StitchedDenoiser) and opt.strategy.policy.denoiser.t_switch > 0
    (ckpt,) = [d / "policy" for d in (tmp_path / "j.db.ckpt").glob("round-*")]
    assert (ckpt / "denoiser.safetensors").exists()
    assert json.loads((ckpt / "denoiser.json").read_text())["name"] == "stitched"
    log = opt.strategy.round_log[-1]
    assert log["surrogate_n"] == 192 and 0 < log["pgraft_accept_rate"] <= 0.25 + 1e-9
    assert log["pgraft_reward_accepted"] > log["pgraft_reward_mean"]

    resumed = load_optimizer(tmp_path / "j.db")
    assert isinstance(resumed, PGRAFTOptimizer) and resumed.round == 3 and resumed.n_told == 256
    a_state, b_state = opt.strategy.policy.denoiser.state_dict(), resumed.strategy.policy.denoiser.state_dict()
    assert a_state.keys() == b_state.keys()
    for k in a_state:
        assert torch.equal(a_state[k], b_state[k]), k
    assert np.allclose(np.stack(resumed.ask(8)), np.stack(opt.ask(8)))  # same policy, same seed state


def test_settings_are_checked_and_stored(prior_dir):
    with pytest.raises(ValueError, match="rule"):
        PGRAFTOptimizer(prior=prior_dir, rule="best")
    with pytest.raises(ValueError, match="threshold"):
        PGRAFTOptimizer(prior=prior_dir, rule="threshold")
    with pytest.raises(ValueError, match="t_split"):
        PGRAFTOptimizer(prior=prior_dir, t_split=1.0)
    with pytest.raises(ValueError, match="generates in the 'vector' domain, not 'molecule'"):
        PGRAFTOptimizer(prior=prior_dir, domain="molecule")
    opt = PGRAFTOptimizer(prior=prior_dir, rule="best_of_n", keep=8, t_split=0.0)
    settings = opt.config()["settings"]
    assert settings["rule"] == "best_of_n" and settings["keep"] == 8 and settings["t_split"] == 0.0
    assert json.loads(json.dumps(opt.config())) == opt.config()
