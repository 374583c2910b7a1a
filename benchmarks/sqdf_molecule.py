"""SQDF and P-GRAFT against the random prior on PMO molecule tasks, with SQDF's alpha sweep and
ablations, as tables.

    python benchmarks/sqdf_molecule.py [--part main|sweep|all] [--seeds 3] [--budget 1000]
        [--workers 2] [--prior moses-selfies] [--out runs/sqdf-molecule]

``main``: random prior, SQDF and P-GRAFT (their defaults) on ``pmo/osimertinib_mpo``,
``pmo/qed`` and ``pmo/celecoxib_rediscovery``: top-10 AUC (PMO), and the internal diversity, SA
and novelty of each run's top 100. ``sweep``: the random prior, then SQDF on osimertinib MPO over
alpha (reward against naturalness) and the ablations (Tweedie instead of the consistency model,
gamma = 0.9, no replay buffer, KL to the previous round's policy as SEIKO); the naturalness columns are of the molecules
the policy proposed in its last two rounds (FCD against 5,000 MOSES test molecules, SA, internal
diversity): what fine-tuning did to the generator. Every run is a resumable ``bbo`` journal under ``--out``; rerunning continues them.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from bbo.domains.molecule import metrics
from bbo.bench.config import parse_config
from bbo.bench.report import find_runs, load_run
from bbo.bench.runner import run_benchmark

# the fine-tuners themselves: every batch is the policy's own samples (on molecules the optimizers'
# default, selection "auto", would let a GP choose the batches from offspring of the best told ones)
POLICY = {"selection": "policy"}
TASKS = ["pmo/osimertinib_mpo", "pmo/qed", "pmo/celecoxib_rediscovery"]
SWEEP_TASK = "pmo/osimertinib_mpo"
ALPHAS = [0.1, 0.3, 1.0]
# the ablations change one setting of SQDF at alpha = 1 (where they were first measured)
ABLATIONS = {"sqdf-tweedie": {"x0_estimator": "tweedie"}, "sqdf-gamma0.9": {"gamma": 0.9},
             "sqdf-no-buffer": {"buffer": "none"}, "sqdf-kl-previous": {"kl_to": "previous"}}
ABLATIONS = {label: {"alpha": 1.0, **settings} for label, settings in ABLATIONS.items()}


def main_config(prior: str, budget: int, batch: int) -> dict:
    return {
        "name": "sqdf_molecule", "tasks": TASKS, "budget": budget, "seed": 0,
        "optimizers": [
            {"kind": "random", "label": "random-prior", "prior": prior, "batch_size": batch},
            {"kind": "sqdf", "prior": prior, "batch_size": batch, **POLICY},
            {"kind": "pgraft", "prior": prior, "batch_size": batch, **POLICY},
        ],
        "executor": {"kind": "local", "n_workers": 0},
    }


def sweep_config(prior: str, budget: int, batch: int) -> dict:
    # the unadapted prior's own proposals are the naturalness every setting starts from
    optimizers = [{"kind": "random", "label": "random-prior", "prior": prior, "batch_size": batch}]
    optimizers += [{"kind": "sqdf", "label": f"sqdf-alpha{a:g}", "prior": prior, "batch_size": batch, "alpha": a, **POLICY}
                   for a in ALPHAS]
    optimizers += [{"kind": "sqdf", "label": label, "prior": prior, "batch_size": batch, **POLICY, **settings}
                   for label, settings in ABLATIONS.items()]
    return {"name": "sqdf_sweep", "tasks": [SWEEP_TASK], "budget": budget, "seed": 0, "optimizers": optimizers,
            "executor": {"kind": "local", "n_workers": 0}}


def last_rounds(run_dir: Path, n: int) -> list[str]:
    """The last ``n`` molecules the optimizer asked for (its final policy's proposals)."""
    trials = [t for t in load_run(run_dir).trials if t.source.value == "asked"]
    return [t.object for t in sorted(trials, key=lambda t: t.number)[-n:]]


def table(out: Path, naturalness_of_last: int | None, test: list[str] | None) -> pd.DataFrame:
    rows = []
    for run_dir in find_runs(out):
        summary = json.loads((run_dir / "summary.json").read_text())
        run = load_run(run_dir)
        rounds = max(1, math.ceil(summary["calls"] / 100) - 1)  # updates happen between rounds
        row = {k: summary[k] for k in ("task", "optimizer", "seed", "top10_auc", "top10_mean", "diversity_top100",
                                       "sa_top100", "novelty_top100")}
        row["s_per_round"] = summary["wall_time_s"] / rounds
        if naturalness_of_last:
            last = last_rounds(run_dir, naturalness_of_last)
            row.update(last_fcd=metrics.frechet_chemnet_distance(last, test), last_sa=metrics.mean_sa(last),
                       last_int_div=metrics.internal_diversity(last), last_mean_value=float(np.nanmean(
                           [v for o, v in zip(run.objects, run.values) if o in set(last)])))
        rows.append(row)
    per_run = pd.DataFrame(rows)
    numeric = [c for c in per_run.columns if c not in ("task", "optimizer", "seed")]
    grouped = per_run.groupby(["task", "optimizer"], sort=False)
    mean, std = grouped[numeric].mean(), grouped[numeric].std(ddof=1)
    out_table = mean.copy()
    out_table.insert(0, "seeds", grouped.size())
    for c in ("top10_auc",):
        out_table[f"{c}_std"] = std[c]
    return out_table.reset_index()


def show(df: pd.DataFrame, title: str) -> None:
    print(f"\n{title}")
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 3):
        print(df.to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["main", "sweep", "all"], default="all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sweep-seeds", type=int, default=2)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--prior", default="moses-selfies")
    parser.add_argument("--out", type=Path, default=Path("runs/sqdf-molecule"))
    args = parser.parse_args()

    if args.part in ("main", "all"):
        cfg = parse_config(main_config(args.prior, args.budget, args.batch))
        run_benchmark(cfg, args.out / "main", seeds=list(range(args.seeds)), resume=True, workers=args.workers)
        df = table(args.out / "main", None, None)
        df.to_csv(args.out / "main.csv", index=False)
        show(df, f"top-10 AUC at {args.budget} calls (batch {args.batch}), {args.seeds} seeds; naturalness of each run's top 100")
    if args.part in ("sweep", "all"):
        cfg = parse_config(sweep_config(args.prior, args.budget, args.batch))
        run_benchmark(cfg, args.out / "sweep", seeds=list(range(args.sweep_seeds)), resume=True, workers=args.workers)
        from bbo.domains.molecule.moses import moses_smiles

        test = list(moses_smiles("test"))
        test = [test[i] for i in np.random.default_rng(0).choice(len(test), 5000, replace=False)]
        df = table(args.out / "sweep", 2 * args.batch, test)
        df.to_csv(args.out / "sweep.csv", index=False)
        show(df, f"SQDF on {SWEEP_TASK}: alpha sweep and ablations, {args.sweep_seeds} seeds; "
                 f"last_* = the last {2 * args.batch} proposals")


if __name__ == "__main__":
    main()
