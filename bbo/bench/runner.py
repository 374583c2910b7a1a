"""Drive optimizers against oracles on a budget, one journal per (task, optimizer, seed).

The loop is the ask/tell contract plus the PMO budget rule: a repeated object is answered from
the oracle cache and not charged. Oracle calls go to an executor (:mod:`bbo.bench.executors`)
and every result is told (and so committed to the journal) as soon as it returns, so a run
killed at any moment resumes with ``--resume``: the cache is rebuilt from the journal, trials left
RUNNING are asked again first, and no oracle call that was told is ever made twice. Worker processes of a killed benchmark stop at their next batch, and
a journal has one writing process at a time (see :mod:`bbo.study`), so a resume never interleaves
with a run still going.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import multiprocessing as mp
import os
import platform
import re
import time
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oracles import get_oracle

from bbo.bench.config import BenchmarkConfig, ExecutorSpec, OptimizerSpec, TaskSpec
from bbo.bench.executors import CallExecutor, ExecutorError, FuturesExecutor, OracleSpec, WorkerLost, make_executor
from bbo.bench.report import write_report, write_run_outputs
from bbo.bench.threads import apply_threads, available_cores, driver_threads, thread_budget
from bbo.optimizer import OPTIMIZERS, FailedTrialWarning, Optimizer, _key_text
from bbo.study import Journal, TrialState

log = logging.getLogger(__name__)

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
    threads: int | None = None,
    executor: CallExecutor | cf.Executor | None = None,
    on_progress: Callable[[RunProgress], None] | None = None,
    report_names: tuple[str, str] = ("summary", "best_so_far"),
) -> Any:
    """Run every (task, optimizer, seed) of ``config`` into ``out`` and write the report.

    With ``workers > 1`` independent runs go to that many worker processes (progress is then
    reported once per finished run). Oracle calls go to ``executor`` when given (any
    ``concurrent.futures.Executor``, single-process runs only), else to the config's. Each run's
    driver uses ``threads`` torch threads (default: an even share of the cores, see
    :mod:`bbo.bench.threads`). Returns the summary table (mean and std over seeds).
    """
    out = Path(out)
    seeds = [config.seed] if seeds is None else seeds
    plan = [(t, o, s, run_dir_for(out, t, o, s)) for t in config.tasks for o in config.optimizers for s in seeds]
    if not resume:
        existing = [d for *_, d in plan if (d / "journal.db").exists()]
        if existing:
            raise RunExistsError(f"{existing[0]} already holds a run; pass --resume to continue it or choose another --out")
    if executor is not None and workers > 1:
        raise RunConfigError("an executor object serves runs in this process only; use workers=1 with it")
    preflight(config, plan)
    try:
        n_threads = driver_threads(workers, threads)
    except ValueError as err:
        raise RunConfigError(str(err)) from None
    try:
        calls = _executor_for(config, executor, shared=workers > 1)
    except ExecutorError as err:
        raise RunConfigError(str(err)) from None
    try:
        if workers <= 1:
            with thread_budget(n_threads):  # this process's own threads are restored afterwards
                for task, opt, seed, run_dir in plan:
                    run_one(config, task, opt, seed, run_dir, on_progress=on_progress, executor=calls)
        else:
            if calls is not None:  # runs in other processes reach the cluster started here by its address
                config = config.model_copy(update={"executor": config.executor.model_copy(
                    update={"address": calls.address})})
            ctx = mp.get_context("spawn")  # a clean interpreter per worker: no inherited torch threads
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(n_threads, os.getpid())) as pool:
                futures = {pool.submit(run_one, config, t, o, s, d): (t, o, s) for t, o, s, d in plan}
                for future in as_completed(futures):
                    summary = future.result()
                    if on_progress is not None:
                        task, opt, seed = futures[future]
                        on_progress(RunProgress(f"{task.slug} · {opt.name} · seed {seed}", summary["calls"],
                                                config.budget, summary["top1_mean"]))
    finally:
        if calls is not None and executor is None:
            calls.close()
    return write_report(out, *report_names)


def _executor_for(config: BenchmarkConfig, given: CallExecutor | cf.Executor | None, shared: bool) -> CallExecutor | None:
    """The executor this process hands its runs: the caller's, else the config's, started here
    (and so checked before anything is written). Runs in worker processes start their own local
    pools; a Dask cluster is started (or reached) once, here, and shared by address."""
    if given is not None:
        return given if isinstance(given, CallExecutor) else FuturesExecutor(given, config.executor.max_in_flight)
    if shared and config.executor.kind != "dask":
        return None
    return make_executor(config.executor)


def preflight(config: BenchmarkConfig, plan: list[tuple[TaskSpec, OptimizerSpec, int, Path]]) -> None:
    """Check, before anything is written, that every (task, optimizer) can run: its oracle builds,
    the optimizer is built in memory for the oracle's domain and direction (settings, prior, domain
    fit), and a journal to resume belongs to the same oracle with the same arguments."""
    for task in config.tasks:
        try:
            oracle = _make_oracle(task, config.plugins)
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

    apply_threads(threads)
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
    executor: CallExecutor | None = None,
) -> dict[str, Any]:
    """One optimizer on one task for one seed, resuming the journal in ``run_dir`` if present.

    Oracle calls go to ``executor`` (default: one started from ``config.executor`` for this run)."""
    if executor is None:
        with make_executor(config.executor) as own:
            return run_one(config, task, spec, seed, run_dir, on_progress=on_progress, executor=own)
    run_dir.mkdir(parents=True, exist_ok=True)
    storage = run_dir / "journal.db"
    oracle = _make_oracle(task, config.plugins)
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
    _set_meta(storage, "environment", environment())  # versions and hardware, for the report
    label = f"{task.slug} · {spec.name} · seed {seed}"
    journal_time = _journal_wall_time(storage)
    start = time.perf_counter()
    try:
        calls = OracleCalls(optimizer, executor, OracleSpec.of(task.name, task.kwargs, config.plugins,
                                                               config.executor.threads_per_worker),
                            budget, config.executor)
        calls.run(label, on_progress)
    finally:
        _set_wall_time(storage, journal_time + time.perf_counter() - start)
        optimizer.close()
    return write_run_outputs(run_dir)


@dataclass
class _Call:
    """One oracle call: queued, in flight, or being retried after its worker died."""

    key: str
    obj: Any
    attempts: int = 0
    deadline: float | None = None
    repeats: list[Any] = field(default_factory=list)  # the same object asked again meanwhile


class OracleCalls:
    """The asynchronous ask/tell loop of one run, and its ledger of oracle calls.

    Up to ``max_in_flight`` calls run at once (default: the executor's slots); each result is told
    (with the call's wall time and worker in the trial) as soon as it returns, in one journal
    transaction per group that returns together. A call is charged once per distinct valid object
    (the PMO rule): a repeat is answered from the cache, or waits for the same call in flight; an
    invalid object is told FAIL without a call. Failed calls (timeout, a worker lost ``retries``
    times, an oracle exception) are charged, cached as NaN and told FAIL with the reason.

    When the optimizer is asked: by default only once every call of its last batch is told, so
    the asks, and with a deterministic oracle the told trials, are the same on every executor and
    at every worker count (a slow call idles the other workers only at the end of a batch). With
    ``asynchronous: true`` free slots are refilled at once by asking for that many objects (the
    proposals of a generative optimizer then come from the last finished round's model, and which
    objects are asked depends on the order calls return)."""

    def __init__(self, optimizer: Optimizer, executor: CallExecutor, spec: OracleSpec, budget: int,
                 settings: ExecutorSpec) -> None:
        self.optimizer, self.executor, self.spec, self.budget = optimizer, executor, spec, budget
        self.timeout, self.retries, self.asynchronous = settings.timeout, settings.retries, settings.asynchronous
        self.max_in_flight = settings.max_in_flight or executor.slots
        self.domain = optimizer.domain
        self.cache: dict[str, float] = {}
        for t in optimizer.trials:  # what a resumed run already paid for is charged, never paid again
            if t.state is not TrialState.RUNNING and t.key not in self.cache:
                self.cache[t.key] = math.nan if t.value is None else t.value
        self.best = max((optimizer.score(v) for v in self.cache.values() if not math.isnan(v)), default=math.nan)
        self.queue: deque[_Call] = deque()
        self.open: dict[str, _Call] = {}  # queued or in flight, by key
        self.in_flight: dict[cf.Future, _Call] = {}
        self.answers: list[tuple[Any, float, dict[str, Any]]] = []

    @property
    def charged(self) -> int:
        return len(self.cache) + len(self.open)

    def run(self, label: str, on_progress: Callable[[RunProgress], None] | None = None) -> None:
        idle = 0
        while True:
            _stop_if_orphaned(label)
            self._tell(label, on_progress)
            room = self.budget - self.charged
            free = self.max_in_flight - len(self.in_flight)
            if not self.queue and room > 0 and idle < MAX_IDLE_ASKS and (
                    not self.in_flight or (self.asynchronous and free > 0)):
                n = min(self.optimizer.batch_size if not self.in_flight else free, room)
                before = self.charged
                for obj in self.optimizer.ask(int(n)):
                    self._route(obj)
                idle = idle + 1 if self.charged == before else 0
                self._tell(label, on_progress)
            slots = min(len(self.queue), self.max_in_flight - len(self.in_flight))
            if slots > 0:
                self._submit([self.queue.popleft() for _ in range(slots)])
            if not self.in_flight:
                if self.answers or (self.budget - self.charged > 0 and idle < MAX_IDLE_ASKS):
                    continue
                self._tell(label, on_progress)
                return
            self._wait()

    def _route(self, obj: Any) -> None:
        key = _key_text(self.domain.key(obj))  # asked objects are valid: ask checks each
        if key in self.cache:
            self.answers.append((obj, self.cache[key], {"cached": True}))
        elif key in self.open:
            self.open[key].repeats.append(obj)
        else:
            self.open[key] = call = _Call(key, obj)
            self.queue.append(call)

    def _submit(self, calls: list[_Call]) -> None:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        for call in calls:
            call.attempts += 1
            call.deadline = deadline
        futures = self.executor.submit_many(self.spec, [c.obj for c in calls], self.timeout)
        self.in_flight.update(zip(futures, calls))

    def _wait(self) -> None:
        deadlines = [c.deadline for c in self.in_flight.values() if c.deadline is not None]
        # an executor that kills timed-out calls itself is given a grace period to report it
        grace = self.executor.timeout_grace if self.executor.enforces_timeout else 0.0
        wait_for = max(0.0, min(deadlines) + grace - time.monotonic()) if deadlines else None
        done, _ = cf.wait(list(self.in_flight), timeout=wait_for, return_when=cf.FIRST_COMPLETED)
        for future in done:
            call = self.in_flight.pop(future)
            try:
                value, seconds, worker = future.result()
            except WorkerLost as err:
                if call.attempts <= self.retries:
                    log.warning("%s; resubmitting its call (attempt %d)", err, call.attempts + 1)
                    self._submit([call])
                else:
                    self._finish(call, math.nan, {"error": f"WorkerLost: {err}", "attempts": call.attempts})
            except Exception as err:  # CallTimeout, the oracle's own exception, a broken pool's
                if isinstance(err, cf.BrokenExecutor):
                    raise
                self._finish(call, math.nan, {"error": f"{type(err).__name__}: {err}", "attempts": call.attempts})
            else:
                self._finish(call, value, {"call_s": round(seconds, 6), "worker": worker, "attempts": call.attempts})
        now = time.monotonic()
        for future, call in list(self.in_flight.items()):
            if call.deadline is not None and now >= call.deadline + grace:
                self.executor.abandon(future)
                del self.in_flight[future]
                self._finish(call, math.nan, {"error": f"CallTimeout: timed out after {self.timeout:g} s",
                                              "attempts": call.attempts})

    def _finish(self, call: _Call, value: float, meta: dict[str, Any]) -> None:
        del self.open[call.key]
        self.cache[call.key] = value
        self.answers.append((call.obj, value, meta))
        self.answers.extend((obj, value, {"cached": True}) for obj in call.repeats)
        if not math.isnan(value):
            score = self.optimizer.score(value)
            self.best = score if math.isnan(self.best) else max(self.best, score)

    def _tell(self, label: str, on_progress: Callable[[RunProgress], None] | None) -> None:
        if not self.answers:
            return
        answers, self.answers = self.answers, []
        with warnings.catch_warnings():  # a failed call's reason is in its trial; no warning per call
            warnings.simplefilter("ignore", FailedTrialWarning)
            self.optimizer.tell([a[0] for a in answers], [a[1] for a in answers], metadata=[a[2] for a in answers])
        if on_progress is not None:
            best = self.optimizer.score(self.best) if not math.isnan(self.best) else math.nan
            on_progress(RunProgress(label, len(self.cache), self.budget, best))


def _make_oracle(task: TaskSpec, plugins: list[str]):
    """The task's oracle in the driver (its domain and direction); a factory is only imported
    from the config's ``plugins``. Calls are made by the executor's workers, each of which builds
    its own."""
    return get_oracle(task.name, allowed_modules=plugins, **task.kwargs)


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
    _set_meta(storage, "wall_time_s", seconds)


def _set_meta(storage: Path, name: str, value: Any) -> None:
    journal = Journal(storage)
    try:
        journal.set_meta(name, value)
    finally:
        journal.close()


def environment() -> dict[str, Any]:
    """Versions and hardware of this process, recorded with each run (``report.html`` shows them)."""
    from importlib.metadata import PackageNotFoundError, requires, version

    import torch

    versions = {"python": platform.python_version()}
    try:  # bbo and every direct requirement of it (the chemistry, diffusion and BO libraries)
        names = ["bbo"] + [re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0] for r in requires("bbo") or []
                           if "extra ==" not in r]
    except PackageNotFoundError:  # run from a source tree that is not installed
        names = ["torch"]
    for name in dict.fromkeys(names):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    hardware = f"{_cpu_name()}, {available_cores()} cores"
    if torch.cuda.is_available():
        hardware += f", {torch.cuda.get_device_name(0)}"
    return {"versions": versions, "hardware": hardware, "threads": torch.get_num_threads()}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
