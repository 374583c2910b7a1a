"""Consistency distillation: boundary condition, the ODE reference, persistence, and the estimate
against Tweedie's on the exact Gaussian mixture."""

from __future__ import annotations

import pytest
import torch

from bbo.diffusion.checkpoint import save_prior
from bbo.diffusion.consistency import (
    ConsistencyModel,
    ddim_ode_step,
    distill_consistency,
    estimator_errors,
    format_table,
    load_consistency,
    ode_endpoint,
    save_consistency,
)
from bbo.diffusion.denoisers import MLPDenoiser
from bbo.diffusion.gmm import GaussianMixturePrior

STEPS = 150  # sampling steps of the trajectories the errors are measured on


def mixture() -> GaussianMixturePrior:
    return GaussianMixturePrior([[-2.0, 0.0], [2.0, 0.0]], [0.5, 0.5], [0.5, 0.5], num_steps=STEPS)


@pytest.fixture(scope="module")
def distilled():
    prior = mixture()
    return prior, distill_consistency(prior, steps=2000, batch_size=256, lr=1e-3, seed=0, progress=False)


def test_boundary_condition_is_exact():
    torch.manual_seed(0)
    model = ConsistencyModel(MLPDenoiser(2, hidden=16, depth=1), (2,), sigma_data=1.7)
    x = torch.randn(8, 2)
    assert torch.equal(model(x, -1), x)
    c_skip, c_out, _ = model.coefficients(torch.tensor([-1, 999]))
    assert float(c_skip[0]) == 1.0 and float(c_out[0]) == 0.0
    assert float(c_skip[1]) < 1e-3 and abs(float(c_out[1]) - 1.7) < 1e-3  # pure noise: F carries it all


def test_ddim_ode_step_matches_diffusers():
    prior = mixture()
    sched = prior.sampling_scheduler(20)
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    for i in (0, 7, 19):
        t = int(sched.timesteps[i])
        t_prev = int(sched.timesteps[i + 1]) if i + 1 < 20 else -1
        expected = sched.step(prior.eps(x, t), t, x, eta=0.0).prev_sample
        got = ddim_ode_step(prior, x, torch.full((16,), t), torch.full((16,), t_prev))
        # ours folds the coefficients in float64, diffusers steps in float32: equal to ~1e-4
        assert torch.allclose(got, expected, atol=3e-4), t


def test_ode_endpoint_of_a_gaussian_is_its_closed_form():
    # one component N(mu, s^2): the probability-flow ODE is linear,
    # x_0 = mu + s / sqrt(a s^2 + 1 - a) * (x_t - sqrt(a) mu)
    mu, s = torch.tensor([1.0, -0.5]), 0.5
    prior = GaussianMixturePrior(mu[None], [s], [1.0])
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    for t in (900, 500, 100):
        a = float(prior.alpha_bar(torch.tensor(t)))
        exact = mu + s / (a * s * s + 1 - a) ** 0.5 * (x - a**0.5 * mu)
        assert torch.allclose(ode_endpoint(prior, x, t, steps=500), exact, atol=0.02), t


def test_save_and_load_next_to_the_prior(tmp_path):
    prior = mixture()
    model = distill_consistency(prior, steps=5, batch_size=16, data_size=64, hidden=16, depth=1, progress=False)
    save_prior(prior, tmp_path)
    save_consistency(model, tmp_path)
    assert {"config.json", "denoiser.safetensors", "consistency.json", "consistency.safetensors"} <= {
        p.name for p in tmp_path.iterdir()}
    loaded = load_consistency(tmp_path)
    x = torch.randn(10, 2)
    t = torch.randint(-1, 1000, (10,))
    assert torch.allclose(loaded(x, t), model(x, t))
    assert loaded.config() == model.config()
    assert not any(p.requires_grad for p in loaded.parameters())
    with pytest.raises(FileNotFoundError):
        load_consistency(tmp_path / "nowhere")


def test_distillation_is_seeded():
    prior = mixture()
    kw = dict(steps=10, batch_size=16, data_size=64, hidden=16, depth=1, progress=False)
    a = distill_consistency(prior, seed=4, **kw)
    b = distill_consistency(prior, seed=4, **kw)
    c = distill_consistency(prior, seed=5, **kw)
    x = torch.randn(10, 2)
    assert torch.equal(a(x, 500), b(x, 500))
    assert not torch.equal(a(x, 500), c(x, 500))


def test_consistency_beats_tweedie_at_noisy_steps(distilled):
    prior, model = distilled
    rows = estimator_errors(prior, model, n=2000, steps=STEPS, fractions=(0.1, 0.3, 0.5, 0.9), seed=1)
    print("\n" + format_table(rows))
    noisy, late = rows[:3], rows[-1]
    for r in noisy:
        # what it is for: the end of the ODE through x_t (Tweedie returns the posterior mean instead)
        assert r["cm_vs_ode"] < 0.5 * r["tweedie_vs_ode"], r
        # and the estimates are distributed like clean samples, Tweedie's collapse toward the mean is not
        assert r["edist_cm"] < 0.5 * r["edist_tweedie"], r
        # honest counterpart: against the trajectory's own stochastic endpoint, the posterior mean
        # (Tweedie) is the MSE-optimal predictor, so it has the smaller error
        assert r["tweedie_vs_end"] < r["cm_vs_end"], r
    assert late["cm_vs_ode"] < 0.15 and late["tweedie_vs_ode"] < 0.15  # both are near x_0 when little noise is left
