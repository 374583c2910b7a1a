"""A new domain is one module and registry entries: bit strings run through ``bbo run``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from bbo.cli import app
from bbo.domains import get_domain
from bbo.finetune.graft import PGRAFT
from oracles import BudgetedOracle
from tests import plugin_bits

CONFIG = """
name: bits
plugins: [tests.plugin_bits]
tasks: ["tests.plugin_bits:ones"]
budget: 60
seed: 0
optimizers:
  - {kind: random, batch_size: 20}
  - {kind: sqdf, prior: test-bits, batch_size: 20, x0_estimator: tweedie, sqdf_steps: 20,
     trajectories_per_update: 16, sqdf_batch_size: 32, surrogate_steps: 50, surrogate_hidden: 16}
  - {kind: pgraft, prior: test-bits, batch_size: 20, pgraft_rounds: 1, samples_per_round: 64,
     train_steps: 10, pgraft_batch_size: 16, surrogate_steps: 50, surrogate_hidden: 16, dedupe: true}
"""


def test_a_domain_defined_outside_bbo_runs_random_sqdf_and_pgraft(tmp_path):
    config = tmp_path / "bits.yaml"
    config.write_text(CONFIG)
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    runs = (tmp_path / "out" / "runs.csv").read_text()
    for name in ("random", "sqdf", "pgraft"):
        summary = json.loads((tmp_path / "out" / "tests.plugin_bits_ones" / name / "seed0" / "summary.json").read_text())
        assert summary["calls"] == 60 and summary["failed"] == 0, (name, summary)
        assert 0 < summary["diversity_top100"] <= 1  # the domain's own naturalness reaches the report
        assert 8 <= summary["top1_mean"] <= 16
    assert "pgraft" in runs and "sqdf" in runs


def test_the_plugin_prior_declares_its_domain_and_round_trips_objects():
    prior = plugin_bits.bits_prior()
    assert get_domain(prior.domain_spec()).config() == {"name": "bits", "length": 16}
    objects = prior.sample(5, seed=0)
    assert all(get_domain("bits").validate(o) is None for o in objects)
    assert prior.decode(prior.encode(objects)) == objects


# --------------------------------------------------------------------- identity of arrays
class _Calls(plugin_bits.Oracle):
    """Counts the objects it is asked to score; scores an array by its sum."""

    name = "sum"
    domain = "vector"

    def __init__(self) -> None:
        super().__init__(1)
        self.scored = 0

    def score(self, x) -> float:
        self.scored += 1
        return float(np.sum(x))


def test_arrays_that_differ_by_1e_9_are_two_oracle_calls_and_equal_ones_one():
    big = np.zeros(5000)  # numpy's repr abbreviates arrays over 1,000 elements with "..."
    near = big.copy()
    near[2500] = 1e-9
    for key in (None, get_domain({"name": "vector", "dim": 5000}).key):  # the oracle's own and the domain's
        oracle = _Calls()
        counted = BudgetedOracle(oracle, budget=10, key=key)
        counted([big, near])
        assert counted.calls == 2 and oracle.scored == 2
        counted([big.copy(), near.copy(), big])
        assert counted.calls == 2 and oracle.scored == 2  # equal arrays: answered from the cache


def test_graft_dedupe_tells_arrays_apart_at_1e_9():
    from bbo.diffusion import GaussianMixturePrior

    prior = GaussianMixturePrior([[-1.0], [1.0]], [0.5, 0.5], [0.5, 0.5], num_steps=10)
    run = PGRAFT(prior, lambda x: x[:, 0], rule="top_k", keep=2, rounds=1, samples_per_round=8, train_steps=1,
                 batch_size=4, dedupe=True, progress=False)
    x = torch.tensor([[0.0], [1e-9], [0.0], [1e-9], [2.0]])
    assert run.distinct(x).tolist() == [0, 1, 4]


def test_a_domain_with_a_missing_or_misspelt_setting_is_refused_naming_the_domain_and_its_settings():
    with pytest.raises(ValueError, match=r"domain 'vector': missing .*'dim'.*settings are \(dim\)"):
        get_domain("vector")
    with pytest.raises(ValueError, match=r"domain 'vector': .*'size'.*settings are \(dim\)"):
        get_domain({"name": "vector", "dim": 2, "size": 3})
    assert get_domain({"name": "vector", "dim": 2}).dim == 2
