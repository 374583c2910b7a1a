"""How well each reward model ranks molecules: the generative optimizers' latent bootstrap
ensemble against the Tanimoto GP of the BO baseline, on the same prior samples.

    python benchmarks/surrogate_quality.py [--tasks pmo/osimertinib_mpo ...] [--sizes 100 300 1000]
        [--test 500] [--seed 0] [--prior moses-selfies]

Molecules are samples of the shipped prior (what SQDF's first round sees), scored by the oracle;
each model is fitted on the first ``n`` and scored on ``--test`` held-out samples: Spearman rank
correlation and RMSE of its mean. The ensemble is fitted as ``GenerativeStrategy.update`` fits it
(encoder posterior means, 4 heads of width 256, 2,000 steps); the GP as ``BoTorchStrategy`` does
(Tanimoto kernel on Morgan r=2, 2,048-bit fingerprints, marginal-likelihood fit).

    python benchmarks/surrogate_quality.py --runs runs/pmo-compare --optimizer sqdf [--rounds 2 5 9]

scores the models where an optimizer asks instead: from each seed-0 journal under ``--runs``,
both are fitted on the molecules told before round ``r`` and scored on the ones asked in round
``r`` (the trials' own round numbers), the points the next fine-tuning and selection are about.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from bbo.diffusion import load_prior
from bbo.surrogates.ensemble import BootstrapEnsemble
from bbo.surrogates.tanimoto_gp import (
    featurizer_for,
    fingerprints,
    fit_gp,
    joint_posterior,
)
from oracles import get_oracle

TASKS = ["pmo/osimertinib_mpo", "pmo/celecoxib_rediscovery", "pmo/zaleplon_mpo"]


def prior_molecules(prior_name: str, n: int, seed: int) -> list[str]:
    """``n`` distinct, encodable molecules sampled from the prior."""
    prior = load_prior(prior_name)
    out: dict[str, None] = {}
    round_ = 0
    while len(out) < n:
        batch = prior.sample(2 * (n - len(out)) + 16, seed=seed * 1000 + round_)
        round_ += 1
        for smiles, ok in zip(batch, prior.encodable(batch)):
            if ok and smiles not in out:
                out[smiles] = None
    return list(out)[:n]


def evaluate(task: str, molecules: list[str], sizes: list[int], n_test: int, seed: int, prior_name: str) -> list[dict]:
    prior = load_prior(prior_name)
    y = np.asarray(get_oracle(task)(molecules), dtype=np.float64)
    keep = np.isfinite(y)
    molecules, y = [m for m, k in zip(molecules, keep) if k], y[keep]
    test, y_test = molecules[-n_test:], y[-n_test:]
    x_all = prior.encode(molecules).float()
    x_test = x_all[-n_test:]
    fp_test = fingerprints(test, featurizer_for("tanimoto"))
    rows = []
    for n in sizes:
        train, y_train = molecules[:n], y[:n]
        t0 = time.perf_counter()
        ens = BootstrapEnsemble(x_all.shape[1], heads=4, hidden=256, seed=seed).fit(
            x_all[:n], torch.as_tensor(y_train, dtype=torch.float32), steps=2000)
        pred = ens.mean(x_test).double().numpy()
        rows.append(_row(task, "latent ensemble", n, pred, y_test, time.perf_counter() - t0))
        t0 = time.perf_counter()
        gp = fit_gp(fingerprints(train, featurizer_for("tanimoto")), torch.as_tensor(y_train), "tanimoto")
        mean, _ = joint_posterior(gp, fp_test)
        rows.append(_row(task, "Tanimoto GP", n, mean.numpy(), y_test, time.perf_counter() - t0))
    return rows


def evaluate_rounds(run_dir: Path, task: str, rounds: list[int], seed: int, prior_name: str) -> list[dict]:
    """Both models fitted on the molecules told before round ``r`` and scored on round ``r``'s
    asks, from one run's journal."""
    from bbo.bench.report import load_run
    from bbo.study import TrialSource, TrialState

    prior = load_prior(prior_name)
    run = load_run(run_dir)
    sign = -1.0 if run.info.get("direction") == "minimize" else 1.0
    told = [t for t in run.trials if t.state is TrialState.COMPLETE]
    rows = []
    for r in rounds:
        train = [t for t in told if t.round < r]
        test = [t for t in told if t.round == r and t.source is TrialSource.ASKED]
        train = [t for t, ok in zip(train, prior.encodable([t.key for t in train])) if ok]
        test = [t for t, ok in zip(test, prior.encodable([t.key for t in test])) if ok]
        if len(train) < 2 or len(test) < 2:
            continue
        y_train = np.array([sign * t.value for t in train])
        y_test = np.array([sign * t.value for t in test])
        x = prior.encode([t.key for t in train + test]).float()
        t0 = time.perf_counter()
        ens = BootstrapEnsemble(x.shape[1], heads=4, hidden=256, seed=seed).fit(
            x[: len(train)], torch.as_tensor(y_train, dtype=torch.float32), steps=2000)
        pred = ens.mean(x[len(train):]).double().numpy()
        rows.append(_row(task, "latent ensemble", len(train), pred, y_test, time.perf_counter() - t0))
        t0 = time.perf_counter()
        gp = fit_gp(fingerprints([t.key for t in train], featurizer_for("tanimoto")), torch.as_tensor(y_train), "tanimoto")
        mean, _ = joint_posterior(gp, fingerprints([t.key for t in test], featurizer_for("tanimoto")))
        rows.append(_row(task, "Tanimoto GP", len(train), mean.numpy(), y_test, time.perf_counter() - t0))
    return rows


def _row(task: str, model: str, n: int, pred: np.ndarray, y: np.ndarray, seconds: float) -> dict:
    return {"task": task, "model": model, "n_train": n, "spearman": float(spearmanr(pred, y).statistic),
            "rmse": float(math.sqrt(np.mean((pred - y) ** 2))), "y_sd": float(np.std(y)), "fit_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 300, 1000])
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prior", default="moses-selfies")
    parser.add_argument("--runs", type=Path, help="a `bbo compare` directory: score on each round's asks instead")
    parser.add_argument("--optimizer", default="sqdf", help="whose journals --runs reads")
    parser.add_argument("--rounds", nargs="+", type=int, default=[1, 2, 5, 9])
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    if args.runs is not None:
        print("| task | model | told before the round | Spearman on the round's asks | RMSE (sd) | fit s |\n"
              "|---|---|---|---|---|---|")
        for path in sorted(args.runs.glob(f"*/{args.optimizer}/seed0/journal.db")):
            task = path.parent.parent.parent.name.removeprefix("pmo_")
            for r in evaluate_rounds(path.parent, task, args.rounds, args.seed, args.prior):
                print(f"| {r['task']} | {r['model']} | {r['n_train']} | {r['spearman']:.2f} | "
                      f"{r['rmse']:.3f} ({r['y_sd']:.3f}) | {r['fit_s']:.1f} |", flush=True)
        return
    molecules = prior_molecules(args.prior, max(args.sizes) + args.test, args.seed)
    print("| task | model | told molecules | Spearman | RMSE (oracle sd) | fit s |\n|---|---|---|---|---|---|")
    for task in args.tasks:
        for r in evaluate(task, molecules, args.sizes, args.test, args.seed, args.prior):
            print(f"| {r['task'].removeprefix('pmo/')} | {r['model']} | {r['n_train']} | {r['spearman']:.2f} | "
                  f"{r['rmse']:.3f} ({r['y_sd']:.3f}) | {r['fit_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
