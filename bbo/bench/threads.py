"""The thread budget: how many intra-op threads each process of a run may use.

A benchmark starts several kinds of processes: the driver of each run (``--workers`` of them run
side by side), and the oracle's worker processes (``executor.n_workers``, or Dask workers). Left
alone, every one of them starts torch (and OpenMP/BLAS) with one thread per core, so on a 2-core
machine two runs and two oracle workers run 8 compute threads that preempt each other. Measured
with ``benchmarks/thread_budget.py`` (two SQDF runs, 2 cores), that took 3.5x as long as the
same runs on the budget below. bbo therefore splits
the cores it may use (CPU affinity and a cgroup quota both count) among the processes it starts:

- each run's driver gets ``cores // runs_in_parallel`` threads (at least 1), overridable with
  ``bbo run --threads N`` or the ``BBO_THREADS`` environment variable;
- each oracle worker gets ``executor.threads_per_worker`` threads (default 1: an oracle call is
  usually single-threaded; raise it for an oracle that runs a network).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: overrides the driver's thread count (an integer >= 1)
ENV_THREADS = "BBO_THREADS"
_LIBRARY_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota (a
    container given 2 CPUs on a 64-core host has 2)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota(Path("/sys/fs/cgroup/cpu.max"))
    return max(1, min(cores, quota) if quota else cores)


def _cgroup_quota(path: Path) -> int | None:
    try:
        limit, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    return max(1, math.floor(int(limit) / int(period)))


def driver_threads(runs_in_parallel: int = 1, override: int | None = None) -> int:
    """Threads for one run's driver: ``override``, else ``BBO_THREADS``, else an even share of
    the cores among the runs going on at once."""
    if override is None and os.environ.get(ENV_THREADS):
        text = os.environ[ENV_THREADS]
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"{ENV_THREADS}={text!r} must be a positive integer")
        override = int(text)
    if override is not None:
        if override < 1:
            raise ValueError(f"threads must be at least 1, got {override}")
        return override
    return max(1, available_cores() // max(1, runs_in_parallel))


def apply_threads(n: int) -> None:
    """Use ``n`` threads in this process: torch's intra-op pool now, and OpenMP/BLAS pools of
    libraries imported later."""
    for var in _LIBRARY_VARS:
        os.environ[var] = str(n)
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


@contextmanager
def thread_budget(n: int) -> Iterator[None]:
    """``n`` threads in this process for the block, then what it had before (a notebook that runs
    a benchmark keeps its own setting)."""
    import torch

    saved_env = {var: os.environ.get(var) for var in _LIBRARY_VARS}
    saved = torch.get_num_threads()
    apply_threads(n)
    try:
        yield
    finally:
        for var, value in saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        if torch.get_num_threads() != saved:
            torch.set_num_threads(saved)
