"""The vector problem shared by the generative optimizers' tests: a two-mode Gaussian-mixture prior
with 30% of its mass on the better mode, and a linear black box."""

import pytest

from bbo.diffusion import GaussianMixturePrior, save_prior


def linear(xs):
    return [float(x[0] + 0.5 * x[1]) for x in xs]


@pytest.fixture(scope="module")
def prior_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("prior")
    save_prior(GaussianMixturePrior([[-2.0, 0.0], [2.0, 0.0]], [0.5, 0.5], [0.7, 0.3], num_steps=50), path)
    return str(path)


def run_rounds(opt, oracle, rounds):
    """Ask, check every proposal is valid, score and tell, ``rounds`` times; the mean value per round."""
    import numpy as np

    means = []
    for _ in range(rounds):
        xs = opt.ask()
        assert all(opt.domain.validate(x) is None for x in xs)
        ys = oracle(xs)
        opt.tell(xs, ys)
        means.append(float(np.mean(ys)))
    return means
