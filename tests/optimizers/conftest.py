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
