"""The synthetic sphere: known values, bad vectors named, call times that repeat per vector."""

import numpy as np
import pytest

from oracles import get_oracle


def test_sphere_values_bad_input_and_seeded_call_times():
    sphere = get_oracle("synthetic/sphere", dim=3, delay=0.5, jitter=True)
    assert sphere.domain == {"name": "vector", "dim": 3}
    assert get_oracle("synthetic/sphere", dim=3).score([1.0, -2.0, 0.5]) == -5.25
    with pytest.raises(ValueError, match="finite vector of 3 numbers"):
        sphere.score([1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="delay >= 0"):
        get_oracle("synthetic/sphere", delay=-1)
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(2000, 3))
    times = np.array([sphere.call_time(x) for x in xs])
    assert np.array_equal(times, [sphere.call_time(x.copy()) for x in xs])  # a function of the vector
    assert times.mean() == pytest.approx(0.5, rel=0.08) and np.median(times) == pytest.approx(0.5 * np.log(2), rel=0.1)
    assert get_oracle("synthetic/sphere", delay=0.5).call_time(xs[0]) == 0.5
