"""SQDF's step size and alpha across domains: the oracle's mean per round of the policy's own
batches (round 1 is the prior's samples), for settings given as JSON.

    python benchmarks/sqdf_step_size.py --prior doc-layouts --task layout/constraints --rounds 4 \
        --batch 64 --seeds 0 1 2 --base '{"sqdf_steps": 40, "sqdf_batch_size": 64, \
        "trajectories_per_update": 16, "surrogate_steps": 300, "surrogate_hidden": 64}' \
        --setting old='{"lr": 1e-3, "alpha": 0.1}' --setting new='{}' --setting off='{"alpha": 1000}'
    python benchmarks/sqdf_step_size.py --prior digits --task image/symmetry --rounds 5 --batch 100 ...
    python benchmarks/sqdf_step_size.py --prior moses-selfies --task pmo/osimertinib_mpo --rounds 5 --batch 100 ...

Prints one row per (setting, seed): each round's batch mean, the mean of rounds 2.. minus round
1's, the top-10 of everything told, and SQDF's KL per denoising step (nats) after each update. Every
batch is the policy's own samples (``selection: policy``), so the numbers are the fine-tuner's.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from bbo import SQDFOptimizer
from oracles import get_oracle


def run(prior: str, task: str, rounds: int, batch: int, seed: int, settings: dict) -> dict:
    oracle = get_oracle(task)
    opt = SQDFOptimizer(prior=prior, seed=seed, batch_size=batch, selection="policy", **settings)
    means, told = [], []
    start = time.time()
    for _ in range(rounds):
        xs = opt.ask()
        ys = oracle(xs)
        opt.tell(xs, ys)
        means.append(float(np.nanmean(ys)))
        told.extend(y for y in ys if y == y)
    kl = [row.get("sqdf_kl", float("nan")) for row in opt.strategy.round_log]
    return {"means": means, "lift": float(np.mean(means[1:]) - means[0]) if rounds > 1 else float("nan"),
            "top10": float(np.mean(sorted(told)[-10:])), "kl": kl, "seconds": time.time() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--base", default="{}", help="settings every run shares (JSON)")
    parser.add_argument("--setting", action="append", default=[], metavar="LABEL=JSON",
                        help="a setting to compare (repeatable); '{}' is the defaults")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = json.loads(args.base)
    settings = [(s.split("=", 1)[0], json.loads(s.split("=", 1)[1])) for s in args.setting] or [("defaults", {})]
    print("| setting | seed | batch means by round | rounds 2.. minus 1 | top 10 | KL per step | s |")
    print("|---|---|---|---|---|---|---|")
    for label, extra in settings:
        for seed in args.seeds:
            r = run(args.prior, args.task, args.rounds, args.batch, seed, {**base, **extra})
            print(f"| {label} | {seed} | {' '.join(f'{m:.3f}' for m in r['means'])} | {r['lift']:+.3f} | "
                  f"{r['top10']:.3f} | {' '.join(f'{k:.2f}' for k in r['kl'])} | {r['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
