"""The trajectory replay buffer: priorities, sampling distribution, capacity, reset, seeding."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chi2

from bbo.diffusion.prior import Trajectory
from bbo.finetune.replay import ReplayBuffer, batch_from_trajectory


def make_trajectory(batch: int, steps: int = 4, dim: int = 2, offset: float = 0.0) -> Trajectory:
    """Trajectory whose states encode (trajectory, step): ``states[k, i] = offset + 100 i + k``."""
    k = torch.arange(steps + 1, dtype=torch.float32)[:, None, None]
    i = torch.arange(batch, dtype=torch.float32)[None, :, None]
    states = (offset + 100 * i + k).expand(steps + 1, batch, dim).clone()
    timesteps = torch.linspace(999, 0, steps).round().long()
    sigmas = torch.cat([torch.linspace(0.9, 0.1, steps - 1), torch.zeros(1)])
    return Trajectory(states, timesteps, states[:-1].clone(), sigmas)


def test_priorities_positive_and_ordered_with_negative_rewards():
    for kind in ("rank", "shifted"):
        buf = ReplayBuffer(16, mode="prioritized", priority=kind)
        rewards = torch.tensor([-3.0, -1.0, 0.5, -10.0, 2.0, -1.0])
        buf.add(make_trajectory(6), rewards)
        p = buf.priorities()
        assert torch.isfinite(p).all() and (p > 0).all(), kind
        order = torch.argsort(rewards)
        assert torch.all(p[order][1:] >= p[order][:-1]), kind  # monotone in the reward
        assert p[1] == p[5], kind  # ties share their priority
        probs = buf.probabilities()
        assert (probs > 0).all() and abs(float(probs.sum()) - 1) < 1e-9


def test_rank_priority_is_invariant_to_shift_and_scale():
    r = torch.tensor([-3.0, -1.0, 0.5, -10.0, 2.0])
    a, b = ReplayBuffer(8), ReplayBuffer(8)
    a.add(make_trajectory(5), r)
    b.add(make_trajectory(5), 7.0 * r - 100.0)
    assert torch.allclose(a.priorities(), b.priorities())
    # rank 1 (the best) has priority 1, rank n has n^-0.7
    assert float(a.priorities().max()) == 1.0
    assert abs(float(a.priorities().min()) - 5 ** -0.7) < 1e-6


@pytest.mark.parametrize("mode", ["prioritized", "uniform"])
def test_sampling_frequencies_match_the_stated_distribution(mode):
    steps, gamma = 4, 0.5
    buf = ReplayBuffer(8, mode=mode, gamma=gamma, seed=3)
    rewards = torch.tensor([-3.0, -1.0, 0.5, 2.0, -10.0])
    buf.add(make_trajectory(5, steps), rewards)
    if mode == "prioritized":
        ranks = torch.tensor([3.0, 2.0, 1.0, 0.0, 4.0]) + 1  # rank 1 = highest reward
        prio = ranks ** -0.7
        step_w = gamma ** torch.arange(steps - 1, -1, -1, dtype=torch.float64)
        expected = prio.double()[:, None] * step_w[None]
    else:
        expected = torch.ones(5, steps, dtype=torch.float64)
    expected = expected / expected.sum()
    assert torch.allclose(buf.probabilities(), expected)
    n = 200_000
    idx, k = buf.sample(n)
    counts = torch.zeros(5, steps, dtype=torch.float64)
    counts.index_put_((idx, k), torch.ones(n, dtype=torch.float64), accumulate=True)
    stat = float(((counts - n * expected) ** 2 / (n * expected)).sum())
    dof = expected.numel() - 1
    assert stat < chi2.ppf(0.999, dof), f"chi-square {stat:.1f} with {dof} dof"


def test_gather_returns_the_stored_pairs():
    steps = 4
    traj = make_trajectory(3, steps)
    buf = ReplayBuffer(8, gamma=0.9)
    buf.add(traj, torch.tensor([1.0, 2.0, 3.0]), round=7)
    b = buf.gather(torch.tensor([0, 2, 1, 2]), torch.tensor([0, 3, 2, 1]))
    assert torch.equal(b.x_t[:, 0], torch.tensor([0.0, 203.0, 102.0, 201.0]))
    assert torch.equal(b.t, traj.timesteps[[0, 3, 2, 1]])
    assert b.t_prev.tolist() == [int(traj.timesteps[1]), -1, int(traj.timesteps[3]), int(traj.timesteps[2])]
    assert torch.allclose(b.sigma, traj.sigmas[[0, 3, 2, 1]])
    assert torch.allclose(b.sigma_prev[1], traj.sigmas[2])  # the deterministic last step's neighbour
    assert b.tau.tolist() == [3, 0, 1, 2]
    assert b.reward.tolist() == [1.0, 3.0, 2.0, 3.0]
    assert buf.rounds.tolist() == [7, 7, 7]
    fresh = batch_from_trajectory(traj, torch.tensor([0, 2, 1, 2]), torch.tensor([0, 3, 2, 1]))
    assert torch.equal(fresh.x_t, b.x_t) and torch.equal(fresh.t_prev, b.t_prev) and torch.equal(fresh.tau, b.tau)


def test_capacity_evicts_oldest_first_and_reset_empties():
    buf = ReplayBuffer(5, mode="uniform")
    buf.add(make_trajectory(3, offset=0.0), torch.tensor([0.0, 1.0, 2.0]), round=0)
    buf.add(make_trajectory(4, offset=1000.0), torch.tensor([10.0, 11.0, 12.0, 13.0]), round=1)
    assert len(buf) == 5
    assert sorted(buf.rewards.tolist()) == [2.0, 10.0, 11.0, 12.0, 13.0]  # 0 and 1 evicted
    # every slot's stored states belong to its stored reward
    for slot in range(5):
        r = float(buf.rewards[slot])
        first = float(buf.gather(torch.tensor([slot]), torch.tensor([0])).x_t[0, 0])
        assert first == (200.0 if r == 2.0 else 1000.0 + 100 * (r - 10))
    assert sorted(buf.rounds.tolist()) == [0, 1, 1, 1, 1]
    buf.add(make_trajectory(7, offset=5000.0), torch.arange(7.0) + 20)  # larger than the capacity
    assert len(buf) == 5 and sorted(buf.rewards.tolist()) == [22.0, 23.0, 24.0, 25.0, 26.0]
    buf.reset()
    assert len(buf) == 0 and buf.num_steps is None
    with pytest.raises(RuntimeError):
        buf.sample(3)
    buf.add(make_trajectory(2, steps=6), torch.zeros(2))  # a new step count is fine after reset
    assert buf.num_steps == 6


def test_seeded_sampling_and_input_checks():
    a, b = ReplayBuffer(8, seed=11), ReplayBuffer(8, seed=11)
    for buf in (a, b):
        buf.add(make_trajectory(5), torch.tensor([-1.0, 0.0, 1.0, 2.0, 3.0]))
    ia, ka = a.sample(50)
    ib, kb = b.sample(50)
    assert torch.equal(ia, ib) and torch.equal(ka, kb)
    with pytest.raises(ValueError):
        a.add(make_trajectory(2, steps=6), torch.zeros(2))  # step count differs from the stored ones
    with pytest.raises(ValueError):
        a.add(make_trajectory(2), torch.zeros(3))
    with pytest.raises(ValueError):
        a.add(make_trajectory(2), torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError):
        ReplayBuffer(8, mode="greedy")
    with pytest.raises(ValueError):
        ReplayBuffer(8, priority="clamped")
