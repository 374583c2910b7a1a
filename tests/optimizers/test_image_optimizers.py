"""SQDF and P-GRAFT on the shipped digits prior, unchanged algorithms: a small budget raises an
image oracle's value above the prior's."""

import pytest

from oracles import get_oracle
from tests.optimizers.conftest import run_rounds

SMALL = dict(batch_size=64, sample_steps=20, surrogate_steps=300, surrogate_hidden=64)


@pytest.fixture(scope="module")
def oracle():
    return get_oracle("image/digit", target=0)


def test_sqdf_raises_the_digit_log_probability(oracle):
    from bbo import SQDFOptimizer

    opt = SQDFOptimizer(prior="digits", seed=0, sqdf_steps=40, sqdf_batch_size=64, trajectories_per_update=16,
                        **SMALL)
    assert opt.domain.config() == {"name": "image", "channels": 1, "height": 8, "width": 8}
    means = run_rounds(opt, oracle, 3)
    assert means[-1] > means[0] + 1.0, means  # log-probability of a 0, in nats


def test_pgraft_raises_the_digit_log_probability(oracle):
    from bbo import PGRAFTOptimizer

    opt = PGRAFTOptimizer(prior="digits", seed=0, samples_per_round=256, train_steps=60, pgraft_rounds=1,
                          **SMALL)
    means = run_rounds(opt, oracle, 3)
    assert means[-1] > means[0] + 1.0, means


def test_a_prior_of_another_image_size_is_refused_before_anything_runs(tmp_path):
    from bbo import SQDFOptimizer

    with pytest.raises(ValueError, match="generates ImageDomain.*16"):
        SQDFOptimizer(prior="digits", domain={"name": "image", "channels": 1, "height": 16, "width": 16},
                      storage=tmp_path / "j.db")
    assert not (tmp_path / "j.db").exists()
