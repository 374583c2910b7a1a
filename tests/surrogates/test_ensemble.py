"""Bootstrap ensemble: fits a known function, is uncertain away from data, differentiable, seeded."""

import torch

from bbo.surrogates.ensemble import BootstrapEnsemble


def _data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g) * 2 - 1
    return x, torch.sin(3 * x[:, 0]) + x[:, 1] ** 2


def test_fits_a_known_function_and_holds_out():
    x, y = _data(600)
    model = BootstrapEnsemble(2, heads=4, hidden=64, seed=0).fit(x, y, steps=1500)
    xt, yt = _data(300, seed=1)
    rmse = ((model.mean(xt) - yt).pow(2).mean().sqrt()).item()
    assert rmse < 0.15 * yt.std().item()
    assert model.fit_log["val_rmse"] < 0.2 and model.fit_log["n"] == 600


def test_more_uncertain_far_from_data_and_optimism_orders():
    x, y = _data(300)
    model = BootstrapEnsemble(2, heads=5, hidden=64, seed=0).fit(x, y, steps=800)
    near, far = torch.zeros(50, 2), torch.full((50, 2), 4.0)
    assert model.std(far).mean() > 3 * model.std(near).mean()
    assert torch.all(model.optimistic(near, "ucb", beta=2.0) >= model.mean(near))
    assert torch.all(model.optimistic(near, "max") >= model.mean(near) - 1e-6)


def test_reward_is_differentiable_in_its_input_and_seeded():
    x, y = _data(200)
    a = BootstrapEnsemble(2, heads=3, hidden=32, seed=7).fit(x, y, steps=200)
    b = BootstrapEnsemble(2, heads=3, hidden=32, seed=7).fit(x, y, steps=200)
    probe = torch.randn(8, 2)
    assert torch.equal(a.heads_output(probe), b.heads_output(probe))
    z = probe.clone().requires_grad_(True)
    a.reward("ucb", 1.0)(z).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in a.parameters())


def test_capped_standardized_reward_is_standardized_below_the_cap_and_saturates_above():
    from bbo.surrogates.ensemble import capped_standardized

    y = torch.tensor([1.0, 2.0, 3.0, 4.0])
    mu, sd = float(y.mean()), float(y.std())
    r = capped_standardized(lambda z: z[:, 0], y, margin=1.0)
    cap = (4.0 - mu) / sd + 1.0
    low = torch.tensor([[mu - 3 * sd]])
    assert torch.allclose(r(low), torch.tensor([-3.0]), atol=1e-2)  # ~standardized well below the cap
    far = torch.tensor([[1e4]], requires_grad=True)
    out = r(far)
    out.sum().backward()
    assert abs(float(out) - cap) < 1e-6 and float(far.grad) < 1e-6  # saturated: no pull outward
    z = torch.linspace(-10, 100, 200)[:, None]
    assert bool((r(z).diff() >= 0).all()) and float(r(z).max()) <= cap  # monotone, bounded
