"""Report helpers on a journal built by hand."""

import math

import numpy as np
import pytest

from bbo import FailedTrialWarning, RandomOptimizer
from bbo.bench.report import RunRecord, round_means


def test_round_means_are_per_round_means_of_the_asked_and_scored():
    opt = RandomOptimizer(domain={"name": "vector", "dim": 2}, batch_size=2, seed=0)
    for values in ([1.0, 3.0], [5.0, None], [2.0, 2.0]):
        xs = opt.ask()
        if None in values:
            with pytest.warns(FailedTrialWarning):
                opt.tell(xs, values)
        else:
            opt.tell(xs, values)
    opt.tell([np.array([9.0, 9.0])], [100.0])  # an external tell: not a proposal
    run = RunRecord(None, {"budget": 6, "direction": "minimize"}, opt.get_trials(), [], [], [])
    means = round_means(run)
    assert list(means) == [0, 1, 2]
    assert means[0] == -2.0 and means[1] == -5.0 and means[2] == -2.0  # the FAIL left out; minimized
    assert not any(math.isnan(v) for v in means.values())
