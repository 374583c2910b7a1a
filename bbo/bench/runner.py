"""Drive optimizers against oracles on a budget, one journal per (task, optimizer, seed).

The loop is the ask/tell contract plus the PMO budget rule: a repeated object is answered from
the oracle cache and not charged. Every result is told (and so committed to the journal) as soon
as its chunk of calls returns, so a run killed at any moment resumes with ``--resume``: the cache
is rebuilt from the journal, trials left RUNNING are asked again first, and no oracle call that
was told is ever made twice. Worker processes of a killed benchmark stop at their next batch, and
a journal has one writing process at a time (see :mod:`bbo.study`), so a resume never interleaves
with a run still going.
"""

from __future__ import annotations

import inspect
import math
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oracles import BudgetedOracle, get_oracle
from oracles.base import oracle_factory

from bbo.bench.config import BenchmarkConfig, OptimizerSpec, TaskSpec
from bbo.bench.report import write_report, write_run_outputs
from bbo.optimizer import OPTIMIZERS, Optimizer
from bbo.study import Journal, TrialState

#: stop a run when this many asks in a row bring no new oracle call (an optimizer stuck on repeats)
MAX_IDLE_ASKS = 50


class RunExistsError(RuntimeError):
    """The run directory already holds a journal and ``resume`` was not asked for."""


class RunMismatchError(RunExistsError):
    """A journal to resume was started with settings (optimizer, oracle or its arguments) other
    than the config's."""


class RunConfigError(ValueError):
    """The config cannot run as written (an optimizer that does not fit its task's domain, a bad
    setting): found before any file is written."""


@dataclass
class RunProgress:
    """What a progress display is told after each chunk of oracle calls."""

    label: str
    calls: int
    budget: int
    best: float


def run_dir_for(out: Path, task: TaskSpec, optimizer: OptimizerSpec, seed: int) -> Path:
    return Path(out) / task.slug / optimizer.name / f"seed{seed}"


def run_benchmark(
    config: BenchmarkConfig,
    out: str | Path,
    *,
    seeds: list[int] | None = None,
    resume: bool = False,
    workers: int = 1,
    on_progress: Callable[[RunProgress], None] | None = None,
    report_names: tuple[str, str] = ("summary", "best_so_far"),
) -> Any:
    """Run every (task, optimizer, seed) of ``config`` into ``out`` and write the report.

    With ``workers > 1`` independent runs go to that many worker processes (progress is then
    reported once per finished run). Returns the summary table (mean and std over seeds).
    """
    out = Path(out)
    seeds = [config.seed] if seeds is None else seeds
    plan = [(t, o, s, run_dir_for(out, t, o, s)) for t in config.tasks for o in config.optimizers for s in seeds]
    if not resume:
        existing = [d for *_, d in plan if (d / "journal.db").exists()]
        if existing:
            raise RunExistsError(f"{existing[0]} already holds a run; pass --resume to continue it or choose another --out")
    preflight(config, plan)
    if workers <= 1:
        for task, opt, seed, run_dir in plan:
            run_one(config, task, opt, seed, run_dir, on_progress=on_progress)
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        ctx = mp.get_context("spawn")  # a clean interpreter per worker: no inherited torch threads
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(threads, os.getpid())) as pool:
            futures = {pool.submit(run_one, config, t, o, s, d): (t, o, s) for t, o, s, d in plan}
            for future in as_completed(futures):
                summary = future.result()
                if on_progress is not None:
                    task, opt, seed = futures[future]
                    on_progress(RunProgress(f"{task.slug} · {opt.name} · seed {seed}", summary["calls"],
                                            config.budget, summary["top1_mean"]))
    return write_report(out, *report_names)


def preflight(config: BenchmarkConfig, plan: list[tuple[TaskSpec, OptimizerSpec, int, Path]]) -> None:
    """Check, before anything is written, that every (task, optimizer) can run: its oracle builds,
    the optimizer is built in memory for the oracle's domain and direction (settings, prior, domain
    fit), and a journal to resume belongs to the same oracle with the same arguments."""
    for task in config.tasks:
        try:
            oracle = _make_oracle(task, 1, config.plugins)
        except (ValueError, TypeError) as err:
            raise RunConfigError(f"task {task.slug}: {err}") from None
        for spec in config.optimizers:
            try:
                OPTIMIZERS[spec.kind](**{"domain": oracle.domain, **spec.settings}, seed=config.seed,
                                      direction=oracle.direction).close()
            except (ValueError, TypeError, FileNotFoundError) as err:
                raise RunConfigError(f"task {task.slug}, optimizer {spec.name}: {err}") from None
    for task, spec, seed, run_dir in plan:
        storage = run_dir / "journal.db"
        if storage.exists():
            journal = Journal(storage)
            try:
                info = journal.get_meta("run") or {}
            finally:
                journal.close()
            stored = (info.get("oracle"), info.get("oracle_kwargs"))
            if info and stored != (task.name, task.kwargs):
                raise RunMismatchError(
                    f"{run_dir} holds a run of oracle {stored[0]!r} with arguments {stored[1]!r}, but the config "
                    f"now asks for {task.name!r} with {task.kwargs!r}: resuming would mix two objectives in one "
                    f"journal; restore the task or choose another --out or label")


_PARENT_PID: int | None = None  # in a worker process: the benchmark process that started it


def _init_worker(threads: int, parent: int) -> None:
    global _PARENT_PID
    import threading

    import torch

    torch.set_num_threads(threads)
    _PARENT_PID = parent
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def _exit_when_orphaned(parent: int, every: float = 0.5) -> None:
    """A worker whose benchmark process is gone (SIGKILL) exits instead of idling on (~550 MB each):
    what it told is committed, its journal lock goes with the process."""
    while True:
        time.sleep(every)
        if os.getppid() != parent:
            os._exit(3)


class OrphanedRunError(RuntimeError):
    """The benchmark process that started this worker is gone (killed)."""


def _stop_if_orphaned(label: str) -> None:
    """A worker whose benchmark process was killed stops at its next batch, releasing the journal
    for a resume, instead of running on unseen."""
    if _PARENT_PID is not None and os.getppid() != _PARENT_PID:
        raise OrphanedRunError(f"{label}: the benchmark process {_PARENT_PID} that started this run is gone; "
                               f"stopping (resume it with --resume)")


def run_one(
    config: BenchmarkConfig,
    task: TaskSpec,
    spec: OptimizerSpec,
    seed: int,
    run_dir: Path,
    *,
    on_progress: Callable[[RunProgress], None] | None = None,
) -> dict[str, Any]:
    """One optimizer on one task for one seed, resuming the journal in ``run_dir`` if present."""
    run_dir.mkdir(parents=True, exist_ok=True)
    storage = run_dir / "journal.db"
    oracle = _make_oracle(task, config.executor.n_jobs, config.plugins)
    budget = config.budget
    settings = {"domain": oracle.domain, **spec.settings}
    try:  # an existing journal is resumed, and only if it was started with these same settings
        optimizer = OPTIMIZERS[spec.kind](**settings, seed=seed, storage=storage, direction=oracle.direction)
    except ValueError as err:
        if not storage.exists() or "journal belongs to" not in str(err):
            raise
        raise RunMismatchError(f"{run_dir} was started with other settings than the config has now ({err}); "
                               f"restore them or choose another --out") from None
    _record_run(optimizer, task, spec, seed, budget, oracle)  # the budget may have grown on --resume
    domain = optimizer.domain  # the one identity: the journal's matching and the oracle cache agree
    counted = BudgetedOracle(oracle, budget, key=lambda obj: domain.key(obj) if domain.validate(obj) is None else None)
    told = [t for t in optimizer.trials if t.state is not TrialState.RUNNING]
    # the journal stores each object's JSON form (an image's base64 bytes): the cache is keyed by
    # the object itself, so a resumed run is charged for what it already paid and never pays twice
    counted.remember([domain.from_json(t.object) for t in told], [math.nan if t.value is None else t.value for t in told])

    label = f"{task.slug} · {spec.name} · seed {seed}"
    journal_time = _journal_wall_time(storage)
    start = time.perf_counter()
    idle = 0
    try:
        while counted.remaining > 0 and idle < MAX_IDLE_ASKS:
            _stop_if_orphaned(label)
            before = counted.calls
            xs = optimizer.ask(int(min(optimizer.batch_size, counted.remaining)))
            chunk = config.executor.tell_every or len(xs)
            for i in range(0, len(xs), chunk):
                part = xs[i : i + chunk]
                optimizer.tell(part, counted(part))
                if on_progress is not None:
                    on_progress(RunProgress(label, counted.calls, budget, _best(counted, optimizer)))
            idle = idle + 1 if counted.calls == before else 0
    finally:
        _set_wall_time(storage, journal_time + time.perf_counter() - start)
        optimizer.close()
    return write_run_outputs(run_dir)


def _make_oracle(task: TaskSpec, n_jobs: int, plugins: list[str]):
    """The task's oracle, scoring in ``n_jobs`` processes when its factory takes ``n_jobs``; a
    factory is only imported from the config's ``plugins``."""
    kwargs = dict(task.kwargs)
    params = inspect.signature(oracle_factory(task.name, plugins)).parameters.values()
    if any(p.name == "n_jobs" or p.kind is p.VAR_KEYWORD for p in params):
        kwargs.setdefault("n_jobs", n_jobs)
    return get_oracle(task.name, allowed_modules=plugins, **kwargs)


def _record_run(optimizer: Optimizer, task: TaskSpec, spec: OptimizerSpec, seed: int, budget: int, oracle) -> None:
    optimizer.record_run({
        "task": task.slug, "oracle": task.name, "oracle_kwargs": task.kwargs, "optimizer": spec.name,
        "kind": spec.kind, "seed": seed, "budget": budget, "direction": oracle.direction,
        "domain": optimizer.domain.name, "domain_config": optimizer.domain.config(),
    })


def _journal_wall_time(storage: Path) -> float:
    journal = Journal(storage)
    try:
        return float(journal.get_meta("wall_time_s", 0.0))
    finally:
        journal.close()


def _set_wall_time(storage: Path, seconds: float) -> None:
    journal = Journal(storage)
    try:
        journal.set_meta("wall_time_s", seconds)
    finally:
        journal.close()


def _best(counted: BudgetedOracle, optimizer: Optimizer) -> float:
    scores = [optimizer.score(v) for v in counted.cache.values() if not math.isnan(v)]
    return optimizer.score(max(scores)) if scores else math.nan  # the orientation is its own inverse
