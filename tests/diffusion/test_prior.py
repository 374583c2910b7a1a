"""The diffusion prior against closed forms: the Gaussian mixture's exact score, diffusers' DDIM
step, the tilted optimum, and checkpoint round trips."""

import json
import math

import pytest
import torch
from diffusers import DDIMScheduler

from bbo.diffusion import GaussianMixturePrior, MLPDenoiser, DiffusionPrior, load_prior, save_prior

MEANS, STDS, WEIGHTS = [[-2.0, 0.0], [2.0, 0.0]], [0.5, 0.5], [0.7, 0.3]


@pytest.fixture(scope="module")
def gmm():
    return GaussianMixturePrior(MEANS, STDS, WEIGHTS, num_steps=200)


def test_samples_match_the_mixture(gmm):
    n = 20_000
    x = gmm.sample_tensors(n, generator=torch.Generator().manual_seed(0))
    k = gmm.assign(x)
    w = (k == 1).float().mean().item()
    assert abs(w - 0.3) < 5 * math.sqrt(0.3 * 0.7 / n)  # 5 standard errors
    for comp, mean in enumerate(MEANS):
        xs = x[k == comp]
        se = 0.5 / math.sqrt(len(xs))
        assert torch.allclose(xs.mean(0), torch.tensor(mean), atol=5 * se + 0.01)
        # 200 DDIM steps shrink the spread slightly (measured 0.49-0.50); 50 steps give 0.47
        assert torch.allclose(xs.std(0), torch.tensor(0.5), atol=0.02)


def noised_log_density(x, abar):
    """log q_t(x) of the mixture noised to ``abar``, written out in float64: a mixture with means
    ``sqrt(abar) mu_k`` and variance ``abar s^2 + 1 - abar`` per dimension."""
    means = math.sqrt(abar) * torch.tensor(MEANS, dtype=torch.float64)
    var = abar * STDS[0] ** 2 + 1 - abar
    sq = ((x[:, None, :] - means[None]) ** 2).sum(-1)
    log_comp = -0.5 * sq / var - 0.5 * x.shape[1] * math.log(2 * math.pi * var)
    return torch.logsumexp(log_comp + torch.tensor(WEIGHTS, dtype=torch.float64).log(), dim=1)


def test_score_is_the_gradient_of_the_noised_log_density(gmm):
    x = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    for t in (10, 300, 700, 990):
        abar = float(gmm.alphas_cumprod[t])
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(noised_log_density(xg, abar).sum(), xg)  # exact, float64
        score = gmm.denoiser.score(x.float(), torch.full((len(x),), abar))
        assert torch.allclose(score.double(), grad, atol=1e-4, rtol=1e-4), t
        eps = gmm.eps(x.float(), t)
        assert torch.allclose(eps, -math.sqrt(1 - abar) * score, atol=1e-6)
    # the mixture's own log density agrees with the one written out here (float32)
    lp = gmm.log_prob(x.float()).double()
    assert torch.allclose(lp, noised_log_density(x, 1.0), atol=1e-4, rtol=1e-5)


def test_step_matches_diffusers_ddim_with_eta_one(gmm):
    steps = 20
    sched: DDIMScheduler = gmm.sampling_scheduler(steps)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(1))
    timesteps = gmm.timesteps(steps)
    for i, t in enumerate(timesteps.tolist()[:-1]):
        t_prev = int(timesteps[i + 1])
        assert gmm.previous_timestep(t, steps) == t_prev
        z = torch.randn(8, 2, generator=torch.Generator().manual_seed(i))
        eps = gmm.eps(x, t)
        ours = gmm.step_mean(x, t, t_prev, eps) + gmm.step_sigma(t, t_prev) * z
        theirs = sched.step(eps, t, x, eta=1.0, variance_noise=z).prev_sample
        # diffusers forms x0 first, which loses float32 digits where abar ~ 1e-9 (t = 999)
        assert torch.allclose(ours, theirs, atol=1e-5 if t < 999 else 1e-3), t
        x = ours


def test_trajectory_shapes_and_tweedie(gmm):
    traj = gmm.sample_tensors(5, steps=10, generator=torch.Generator().manual_seed(0), return_trajectory=True)
    assert traj.states.shape == (11, 5, 2) and traj.means.shape == (10, 5, 2) and traj.sigmas.shape == (10,)
    assert traj.sigmas[-1] == 0 and torch.equal(traj.x0, traj.states[-1])
    assert torch.allclose(traj.states[-1], traj.means[-1])  # the last step is deterministic
    # Tweedie at a nearly clean step returns nearly the input
    x = torch.randn(4, 2)
    assert torch.allclose(gmm.tweedie_x0(x, 0), x, atol=1e-2)


def test_tilted_optimum_matches_importance_weights(gmm):
    c, alpha = torch.tensor([1.0, 0.5]), 0.8
    star = gmm.tilted(c, alpha)
    x = gmm.sample_exact(400_000, torch.Generator().manual_seed(0))
    w = torch.softmax(x @ c / alpha, 0)
    k = gmm.assign(x)  # components barely overlap at this separation
    assert abs(float(w[k == 1].sum()) - float(star.weights[1])) < 0.01
    for comp in (0, 1):
        m = (w[k == comp, None] * x[k == comp]).sum(0) / w[k == comp].sum()
        assert torch.allclose(m, star.means[comp], atol=0.02)


def test_save_and_load_give_identical_samples(tmp_path, gmm):
    for prior in (gmm, DiffusionPrior(MLPDenoiser(3, hidden=16, depth=1), (3,), sample_steps=7)):
        save_prior(prior, tmp_path / prior.denoiser.name)
        again = load_prior(tmp_path / prior.denoiser.name)
        a = prior.sample_tensors(6, generator=torch.Generator().manual_seed(3))
        b = again.sample_tensors(6, generator=torch.Generator().manual_seed(3))
        assert torch.equal(a, b)
        assert [o.tolist() for o in again.sample(2, seed=1)] == [o.tolist() for o in prior.sample(2, seed=1)]


def test_bad_checkpoints_give_clear_errors(tmp_path):
    prior = DiffusionPrior(MLPDenoiser(3, hidden=16, depth=1), (3,))
    d = save_prior(prior, tmp_path / "p")
    cfg = json.loads((d / "denoiser.json").read_text())
    cfg["config"]["hidden"] = 32
    (d / "denoiser.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"denoiser weight .* has shape \(16,?.*\), the config expects \(32"):
        load_prior(d)
    (d / "denoiser.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="missing denoiser.safetensors"):
        load_prior(d)
    with pytest.raises(FileNotFoundError, match="not a directory, a shipped or a registered prior"):
        load_prior(tmp_path / "nothing-here")
    (d / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json: not valid JSON"):
        load_prior(d)


class _EpsOfStandardNormal(torch.nn.Module):
    """The exact eps of x0 ~ N(0, I), plus ``error``: a well trained network is off by about this."""

    name = "eps_of_standard_normal"

    def __init__(self, alphas_cumprod: torch.Tensor, error: float) -> None:
        super().__init__()
        self.register_buffer("abar", alphas_cumprod)
        self.error = error

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (1 - self.abar[t])[:, None].sqrt() * x + self.error


@pytest.mark.parametrize("schedule, stable", [("linear", True), ("squaredcos_cap_v2", False)])
def test_learned_eps_errors_do_not_blow_up_under_the_default_schedule(schedule, stable):
    """A 0.01 eps error must move samples by ~0.01, not by far more at the first (near pure-noise)
    step: why learned priors default to the linear schedule."""
    samples = []
    for error in (0.0, 0.01):
        prior = DiffusionPrior(torch.nn.Identity(), (4,), beta_schedule=schedule, sample_steps=50)
        prior.denoiser = _EpsOfStandardNormal(prior.alphas_cumprod, error)
        samples.append(prior.sample_tensors(1000, generator=torch.Generator().manual_seed(0)))
    shift = float((samples[1] - samples[0]).abs().max())
    assert (shift < 0.05) == stable, f"{schedule}: a 0.01 eps error moved samples by {shift:.3g}"
    if stable:
        assert DiffusionPrior(MLPDenoiser(4), (4,)).schedule_config["beta_schedule"] == schedule


def test_one_ddim_step_takes_per_sample_timesteps_and_gives_the_gaussian_log_probability(gmm):
    ts = gmm.timesteps(20).tolist()
    pairs = [(ts[0], ts[1]), (ts[9], ts[10]), (ts[18], ts[19])]
    x = torch.randn(len(pairs), 2, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([a for a, _ in pairs])
    t_prev = torch.tensor([b for _, b in pairs])
    mixed = gmm.step_mean(x, t, t_prev)
    for i, (a, b) in enumerate(pairs):
        assert torch.allclose(mixed[i], gmm.step_mean(x[i : i + 1], a, b)[0], atol=1e-6)
    x_prev = mixed + 0.1
    logp = gmm.step_log_prob(x_prev, x, t, t_prev)
    for i, (a, b) in enumerate(pairs):
        normal = torch.distributions.Normal(mixed[i].double(), gmm.step_sigma(a, b))
        assert float(logp[i]) == pytest.approx(float(normal.log_prob(x_prev[i].double()).sum()), rel=1e-5)
    with pytest.raises(ValueError, match="deterministic"):
        gmm.step_log_prob(x_prev[:1], x[:1], ts[19], -1)
