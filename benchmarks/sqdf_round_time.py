"""Where an SQDF round goes on this machine: the round-end update (surrogate fit, SQDF fine-tuning)
and the next ask (policy samples for the pool, offspring, GP fit, acquisition), per round, with the
share of the GP's picks that the policy proposed and the batch's mean and best oracle value.

    python benchmarks/sqdf_round_time.py [--task pmo/osimertinib_mpo] [--rounds 10] [--batch 100]
        [--selection auto|policy|gp] [--seed 0]

Phases are timed by wrapping the strategy's own methods (nothing in the library is changed);
"ask s" is the whole ask less the update, "offspring" the pool less its policy part (breeding,
deduplication and any reference top-up).
"""

from __future__ import annotations

import argparse
import collections
import functools
import time

import numpy as np

from bbo.optimizers.sqdf_optimizer import SQDFOptimizer
from oracles import get_oracle


def timed(obj: object, name: str, bucket: dict[str, float], label: str) -> None:
    fn = getattr(obj, name)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket[label] += time.perf_counter() - t

    setattr(obj, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="pmo/osimertinib_mpo")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--selection", default="auto", choices=["auto", "policy", "gp"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from bbo.optimizers import generative

    oracle = get_oracle(args.task)
    opt = SQDFOptimizer(prior="moses-selfies", seed=args.seed, batch_size=args.batch, selection=args.selection)
    strategy = opt.strategy
    bucket: dict[str, float] = collections.defaultdict(float)
    timed(generative, "fit_surrogate", bucket, "surrogate fit")
    timed(strategy, "_finetune", bucket, "SQDF fine-tune")
    timed(strategy, "_sample_policy", bucket, "policy samples")  # the plain asks (the selector holds its own reference)
    if strategy.selector is not None:
        timed(strategy.selector, "_prior_candidates", bucket, "pool (policy part)")
        timed(strategy.selector, "_candidate_pool", bucket, "pool (all)")
        timed(strategy.selector, "propose", bucket, "GP ask")
    cols = ["round", "told", "update s", "surrogate fit", "SQDF fine-tune", "ask s", "policy samples",
            "offspring", "GP fit", "acquisition", "policy share", "batch mean", "batch max"]
    print("| " + " | ".join(cols) + " |\n" + "|---" * len(cols) + "|")
    for r in range(args.rounds):
        bucket.clear()
        t0 = time.perf_counter()
        xs = opt.ask()
        ask_total = time.perf_counter() - t0
        ys = oracle(xs)
        opt.tell(xs, ys)
        update = bucket["surrogate fit"] + bucket["SQDF fine-tune"]
        info = strategy.selector.last_round_info.get("times", {}) if strategy.selector is not None else {}
        sources = strategy._sources or []
        gp_round = bucket["GP ask"] > 0
        policy = bucket["pool (policy part)"] if gp_round else bucket["policy samples"]
        offspring = bucket["pool (all)"] - bucket["pool (policy part)"] if gp_round else 0.0
        share = sources.count("policy") / len(sources) if gp_round else float("nan")
        row = [r + 1, opt.n_told, f"{update:.1f}", f"{bucket['surrogate fit']:.1f}", f"{bucket['SQDF fine-tune']:.1f}",
               f"{ask_total - update:.1f}", f"{policy:.1f}", f"{offspring:.1f}",
               f"{info.get('fit', 0.0) if gp_round else 0.0:.1f}", f"{info.get('acquisition', 0.0) if gp_round else 0.0:.1f}",
               f"{share:.2f}", f"{np.nanmean(ys):.3f}", f"{np.nanmax(ys):.3f}"]
        print("| " + " | ".join(str(c) for c in row) + " |", flush=True)


if __name__ == "__main__":
    main()
