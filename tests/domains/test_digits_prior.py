"""The shipped digits prior: valid, natural and not a copy of its training set."""

import numpy as np
import pytest
import torch

from bbo.diffusion import load_prior
from bbo.diffusion.checkpoint import load_prior_consistency
from bbo.domains import get_domain


@pytest.fixture(scope="module")
def prior():
    return load_prior("digits")


def test_samples_are_valid_natural_and_novel(prior):
    domain = get_domain(prior.domain_spec())
    assert domain.config() == {"name": "image", "channels": 1, "height": 8, "width": 8}
    samples = prior.sample(200, seed=0)
    assert all(domain.validate(s) is None for s in samples)
    m = domain.naturalness(samples)
    assert m["confidence"] > 0.9 and 0.8 < m["diversity"] < 1.2
    assert m["novelty"] > 0.6  # nearest training digits about as far as for fresh digits: no memorizing
    assert m["classifier_fd"] < 40  # uniform noise scores ~300 at this size, training digits ~10
    from bbo.domains.image.classifier import predict

    assert len(set(predict(samples)[0].argmax(1))) == 10  # every class is generated


def test_ships_its_consistency_model_and_figures(prior):
    cm = load_prior_consistency(prior)
    assert cm is not None and cm.shape == (1, 8, 8)
    assert prior.info["classifier"]["held_out_accuracy"] > 0.97
    x = prior.sample_tensors(8, eta=0.0, x_T=torch.zeros(8, 1, 8, 8))
    assert np.allclose(x[0].numpy(), x[1].numpy())  # the deterministic sampler is a function of the noise
