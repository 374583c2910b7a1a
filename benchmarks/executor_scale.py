"""Executors at scale: throughput with a slow oracle, and the study's overhead up to 100k trials.

    python benchmarks/executor_scale.py                 # both tables (about 5 minutes on 2 cores)
    python benchmarks/executor_scale.py --only overhead --sizes 1000 10000 100000

Throughput: the random optimizer against ``synthetic/sphere`` with 0.5 s a call (sleeping, so
more workers than cores is fair), through the ``local`` process pool and a Dask ``LocalCluster``
at 1, 2, 4 and 8 workers, against the ideal ``workers / 0.5`` calls per second; then calls whose
time varies (exponential, mean 0.5 s) told by batch (the default) or asynchronously. The time is
the run's own loop (the journal's ``wall_time_s``), without starting the executor (shown apart).

Overhead: ask + tell per trial (batches of 100, the journal on disk) for the trials from n/2 to n
at each size n, the journal's size, and ``history()`` / ``best()`` at the largest size; the same
through the runner with calls in the driver (``n_workers: 0``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bbo import RandomOptimizer
from bbo.bench.config import parse_config
from bbo.bench.executors import make_executor
from bbo.bench.runner import run_one
from bbo.bench.threads import available_cores
from bbo.study import Journal


def _config(budget: int, executor: dict, delay: float, jitter: bool = False, batch: int = 100):
    return parse_config({"name": "scale", "tasks": [{"name": "synthetic/sphere", "delay": delay, "jitter": jitter}],
                         "budget": budget, "optimizers": [{"kind": "random", "batch_size": batch}],
                         "executor": executor})


def _timed_run(cfg, out: Path) -> tuple[float, float]:
    """(seconds to start the executor, seconds of the run's loop)."""
    start = time.perf_counter()
    with make_executor(cfg.executor) as executor:
        started = time.perf_counter() - start
        run_dir = out / "run"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_one(cfg, cfg.tasks[0], cfg.optimizers[0], 0, run_dir, executor=executor)
    journal = Journal(run_dir / "journal.db")
    try:
        return started, float(journal.get_meta("wall_time_s"))
    finally:
        journal.close()


def throughput(out: Path, workers: list[int], delay: float = 0.5, calls_per_worker: int = 16) -> None:
    print(f"\n## Throughput: {delay} s a call, {calls_per_worker} calls per worker\n")
    print("| executor | workers | calls | start (s) | run (s) | calls/s | ideal calls/s | efficiency |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind in ("local", "dask"):
        for n in workers:
            budget = n * calls_per_worker
            cfg = _config(budget, {"kind": kind, "n_workers": n}, delay, batch=budget)
            started, seconds = _timed_run(cfg, out)
            rate, ideal = budget / seconds, n / delay
            print(f"| {kind} | {n} | {budget} | {started:.1f} | {seconds:.1f} | {rate:.2f} | {ideal:.2f} | "
                  f"{rate / ideal:.0%} |", flush=True)
    n = 4
    print(f"\n## Calls of varying time (exponential, mean {delay} s), {n} workers, batches of 16\n")
    print("| executor | telling | calls | run (s) | calls/s | ideal calls/s | efficiency |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for kind in ("local", "dask"):
        for asynchronous in (False, True):
            budget = n * calls_per_worker
            cfg = _config(budget, {"kind": kind, "n_workers": n, "asynchronous": asynchronous}, delay, True, batch=16)
            _, seconds = _timed_run(cfg, out)
            rate = budget / seconds
            # the ideal of a varying load: the total call time spread evenly over the workers
            print(f"| {kind} | {'asynchronous' if asynchronous else 'by batch'} | {budget} | {seconds:.1f} | "
                  f"{rate:.2f} | {n / delay:.2f} | {rate / (n / delay):.0%} |", flush=True)


def overhead(out: Path, sizes: list[int]) -> None:
    print("\n## Ask + tell overhead (random optimizer, 2-d vectors, batches of 100, journal on disk)\n")
    print("| trials | µs per trial (API, last half) | µs per trial (runner, last half) | journal MB |")
    print("|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for n in sizes:
        path = out / f"api{n}.db"
        for p in out.glob(f"api{n}.db*"):
            p.unlink()
        opt = RandomOptimizer(domain={"name": "vector", "dim": 2}, batch_size=100, storage=path)
        half = None
        start = time.perf_counter()
        while opt.n_told < n:
            if half is None and opt.n_told >= n // 2:
                half = time.perf_counter()
            xs = opt.ask()
            opt.tell(xs, rng.normal(size=len(xs)))
        api_us = (time.perf_counter() - (half or start)) / (n - n // 2) * 1e6
        if n == sizes[-1]:
            t = time.perf_counter()
            history = opt.history()
            history_s = time.perf_counter() - t
            t = time.perf_counter()
            opt.best(10)
            best_s = time.perf_counter() - t
            assert len(history) == n
        opt.close()
        size_mb = sum(p.stat().st_size for p in out.glob(f"api{n}.db*")) / 1e6
        run_us = _runner_overhead(out, n)
        print(f"| {n:,} | {api_us:.0f} | {run_us:.0f} | {size_mb:.1f} |", flush=True)
    print(f"\nAt {sizes[-1]:,} trials: history() {history_s:.2f} s, best(10) {best_s:.2f} s")


def _runner_overhead(out: Path, n: int) -> float:
    """µs per trial of the runner (calls in the driver) between n/2 and n trials."""
    times = []
    for budget in (n // 2, n):
        cfg = _config(budget, {"kind": "local", "n_workers": 0}, 0.0)
        times.append(_timed_run(cfg, out / f"runner{n}")[1])
    return (times[1] - times[0]) / (n - n // 2) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["throughput", "overhead"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    print(f"{platform.machine()}, {available_cores()} cores available, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    out = Path(tempfile.mkdtemp(prefix="bbo-scale-"))
    try:
        if args.only in (None, "throughput"):
            throughput(out, args.workers)
        if args.only in (None, "overhead"):
            overhead(out, args.sizes)
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
