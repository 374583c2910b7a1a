"""The thread budget's effect: two SQDF runs side by side (``--workers 2``), each with a pool of
two oracle worker processes, on the budget bbo sets against every process taking all the cores.

    nice python benchmarks/thread_budget.py              # about 5 minutes on 2 cores
    nice python benchmarks/thread_budget.py --budget 200

Rows: one run alone on all the cores (the reference); the pair on bbo's budget (each driver
``cores // 2`` torch threads, each oracle worker 1); the pair oversubscribed (each driver and
each oracle worker as many threads as there are cores, what torch does left alone). The
columns are the wall time of the whole command and each run's own loop (its journal's
``wall_time_s``); a fair share of the cores makes the pair take about twice the run alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from bbo.bench.config import parse_config
from bbo.bench.runner import run_benchmark
from bbo.bench.threads import available_cores
from bbo.study import Journal


def _config(budget: int, oracle_threads: int):
    return parse_config({
        "name": "threads", "tasks": ["pmo/osimertinib_mpo"], "budget": budget, "seed": 0,
        "optimizers": [{"kind": "sqdf", "prior": "moses-selfies", "batch_size": 100}],
        "executor": {"kind": "local", "n_workers": 2, "threads_per_worker": oracle_threads},
    })


def _run(out: Path, budget: int, seeds: list[int], workers: int, threads: int, oracle_threads: int):
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    run_benchmark(_config(budget, oracle_threads), out, seeds=seeds, workers=workers, threads=threads)
    elapsed = time.perf_counter() - start
    runs = []
    for journal_path in sorted(out.glob("*/*/seed*/journal.db")):
        journal = Journal(journal_path)
        try:
            runs.append(float(journal.get_meta("wall_time_s")))
        finally:
            journal.close()
    return elapsed, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=300)
    args = parser.parse_args()
    cores = available_cores()
    print(f"{platform.machine()}, {cores} cores available, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"SQDF on pmo/osimertinib_mpo, {args.budget} calls per run, oracle pool of 2 workers per run\n")
    print("| setting | runs at once | driver threads | oracle worker threads | wall (s) | each run's loop (s) |")
    print("|---|---:|---:|---:|---:|---|")
    rows = [("one run alone", [0], 1, cores, 1),
            ("pair, bbo's budget", [0, 1], 2, max(1, cores // 2), 1),
            ("pair, oversubscribed", [0, 1], 2, cores, cores)]
    root = Path(tempfile.mkdtemp(prefix="bbo-threads-"))
    try:
        for name, seeds, workers, threads, oracle_threads in rows:
            elapsed, runs = _run(root / "run", args.budget, seeds, workers, threads, oracle_threads)
            print(f"| {name} | {workers} | {threads} | {oracle_threads} | {elapsed:.0f} | "
                  f"{', '.join(f'{r:.0f}' for r in runs)} |", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
