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


def test_recorded_runs_merge_beneath_the_journals_and_round_trip(tmp_path):
    import pandas as pd

    from bbo.bench.report import markdown_table, record_summaries, with_recorded

    def row(opt, seed, auc, calls=100):
        return {"task": "t", "optimizer": opt, "seed": seed, "budget": 100, "calls": calls, "top1_auc": auc,
                "top10_auc": auc, "top10_mean": auc, "wall_time_s": 1.0, "diversity_top100": 0.5,
                "diversity_last100": 0.5}

    journals = pd.DataFrame([row("a", 0, 0.9)])
    recorded = tmp_path / "results" / "runs.csv"
    record_summaries(pd.DataFrame([row("a", 0, 0.1), row("a", 1, 0.7), row("b", 0, 0.5, calls=50)]), recorded)
    merged = with_recorded(journals, [recorded])
    assert sorted(zip(merged.optimizer, merged.seed, merged.top10_auc)) == [("a", 0, 0.9), ("a", 1, 0.7)]
    assert "| t | a | 2 | 0.800 ± 0.141 |" in markdown_table(merged, ["a"], ["diversity"])
    record_summaries(merged, recorded)  # written back: the journal's row replaced the recorded one
    assert sorted(pd.read_csv(recorded).top10_auc) == [0.7, 0.9]
    (tmp_path / "bad.csv").write_text("task,optimizer\nt,a\n")
    with pytest.raises(ValueError, match="calls"):
        with_recorded(journals, [tmp_path / "bad.csv"])
