"""Where oracle calls run: worker processes on this machine, a Dask cluster, or any
``concurrent.futures.Executor``.

The runner submits one call per object and tells each result as it comes back (see
:mod:`bbo.bench.runner`). A call is :func:`call_oracle` on an :class:`OracleSpec`, the oracle's
registry name, arguments and trusted plugin modules, never a pickled oracle: each worker builds the
oracle once, the first time it is asked, and keeps it for the calls that follow (a classifier's
weights or a property library's tables load once per worker, not once per call).

Faults are classified here, handled in the runner:

- a call that outlives ``timeout`` is abandoned and its trial told FAIL. The ``local`` executor
  kills the worker running it and starts a fresh one (pebble's process pool); on Dask the call
  runs in a thread of the worker that gives up waiting at the deadline, so the worker takes its
  next call at once, while the abandoned thread, which Python cannot stop, finishes in the
  background (for an oracle that can hang burning CPU, prefer ``local``);
- a worker that dies mid-call (killed, out of memory) raises :class:`WorkerLost` for that call
  only; the runner resubmits it ``retries`` times, then tells it FAIL;
- an oracle that raises fails its own call with the exception's message; the run goes on.

Dask is the cluster engine because it is pure Python, runs the same from a laptop to SSH,
Kubernetes and HPC queues (``dask-jobqueue``), and sends nothing anywhere.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import logging
import multiprocessing as mp
import os
import socket
import threading
import time
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class ExecutorError(RuntimeError):
    """The executor cannot start as configured (the ``distributed`` package missing, a scheduler
    that does not answer); found before any file is written."""


class WorkerLost(RuntimeError):
    """The process running a call died before it returned (killed, out of memory)."""


class CallTimeout(RuntimeError):
    """A call outlived the executor's ``timeout`` and was abandoned."""


@dataclass(frozen=True)
class OracleSpec:
    """What a worker needs to build the task's oracle itself: a registry name (or a trusted
    ``module:factory``), its arguments as canonical JSON, the allowed plugin modules, and the
    threads a worker process may use (None: leave the process's threads alone, as in the driver)."""

    name: str
    kwargs_json: str
    plugins: tuple[str, ...]
    threads: int | None = None

    @classmethod
    def of(cls, name: str, kwargs: dict[str, Any], plugins: list[str] | tuple[str, ...],
           threads: int | None = None) -> OracleSpec:
        return cls(name, json.dumps(kwargs, sort_keys=True), tuple(plugins), None if threads is None else int(threads))

    def in_this_process(self) -> OracleSpec:
        """The spec for calls made in the driver's own process, whose thread budget is its own."""
        return dataclasses.replace(self, threads=None)


_ORACLES: dict[OracleSpec, Any] = {}  # in a worker: the oracles it has built, by spec


def call_oracle(spec: OracleSpec, obj: Any, timeout: float | None = None) -> tuple[float, float, str]:
    """Score one object in this worker: ``(value, seconds the call took, worker id)``. An
    exception of the oracle propagates (the runner tells the trial FAIL with its message). With
    ``timeout`` the call runs in a thread of its own and :class:`CallTimeout` is raised when it
    outlives it (the thread, which Python cannot stop, is left to finish in the background)."""
    oracle = _ORACLES.get(spec) or _build(spec)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    start = time.perf_counter()
    if timeout is None:
        return float(oracle.score(obj)), time.perf_counter() - start, worker
    outcome: list[Any] = []
    thread = threading.Thread(target=_score_into, args=(oracle, obj, outcome), daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise CallTimeout(f"timed out after {timeout:g} s (left running in the background on {worker})")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0], time.perf_counter() - start, worker


def _build(spec: OracleSpec) -> Any:
    """Build the spec's oracle in this worker (once), on the worker's thread budget."""
    from bbo.bench.threads import apply_threads
    from oracles import get_oracle

    if spec.threads is not None:
        apply_threads(spec.threads)
    oracle = _ORACLES[spec] = get_oracle(spec.name, allowed_modules=spec.plugins, **json.loads(spec.kwargs_json))
    return oracle


def _score_into(oracle: Any, obj: Any, outcome: list[Any]) -> None:
    try:
        outcome.append(float(oracle.score(obj)))
    except BaseException as err:  # handed to the calling thread
        outcome.append(err)


class CallExecutor:
    """What the runner needs of an executor: ``slots`` calls at once, ``submit`` one call,
    ``abandon`` one that timed out, ``close``. Futures are ``concurrent.futures.Future`` whose
    exception is :class:`WorkerLost` or :class:`CallTimeout` for those faults."""

    #: calls it runs at once (the runner's default ``max_in_flight``)
    slots: int = 1
    #: whether a call's future raises :class:`CallTimeout` by itself at its deadline
    enforces_timeout: bool = False
    #: seconds past a call's deadline before the runner gives it up itself, when the executor
    #: enforces timeouts: a backstop for a report that never comes, generous because the runner
    #: counts from submission, and a call may wait for a replacement worker to start
    timeout_grace: float = 60.0

    def submit(self, spec: OracleSpec, obj: Any, timeout: float | None) -> cf.Future:
        raise NotImplementedError

    def submit_many(self, spec: OracleSpec, objs: list[Any], timeout: float | None) -> list[cf.Future]:
        """One future per object; an executor that can score them together does."""
        return [self.submit(spec, obj, timeout) for obj in objs]

    def abandon(self, future: cf.Future) -> None:
        """Give up a call past its deadline; free its worker where the executor can (cancelling
        the pool's own future: pebble then stops the worker running it)."""
        getattr(future, "_bbo_inner", future).cancel()

    def close(self) -> None:
        pass

    def __enter__(self) -> CallExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InlineExecutor(CallExecutor):
    """Calls run in the driver, one at a time, when submitted: no hand-off at all, for oracles
    that take microseconds (``n_workers: 0``). No timeouts, no isolation from a crash. A whole
    batch is scored, then told in one transaction (a transaction per call would cost more than
    the calls); an oracle with a vectorized batch call (an image classifier's one forward pass)
    scores the batch in that one call."""

    slots = 100_000

    def submit(self, spec: OracleSpec, obj: Any, timeout: float | None) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(call_oracle(spec.in_this_process(), obj))
        except Exception as err:
            future.set_exception(err)
        return future

    def submit_many(self, spec: OracleSpec, objs: list[Any], timeout: float | None) -> list[cf.Future]:
        from oracles.base import Oracle

        spec = spec.in_this_process()
        oracle = _ORACLES.get(spec) or _build(spec)
        if len(objs) < 2 or type(oracle).__call__ is Oracle.__call__:
            # one score() per object, so that an exception fails its own trial with its message
            return [self.submit(spec, obj, timeout) for obj in objs]
        start = time.perf_counter()
        values = oracle(objs)
        each = (time.perf_counter() - start) / len(objs)
        worker = f"{socket.gethostname()}:{os.getpid()}"
        futures = []
        for value in values:
            future: cf.Future = cf.Future()
            future.set_result((float(value), each, worker))
            futures.append(future)
        return futures


class ProcessExecutor(CallExecutor):
    """A pool of ``n_workers`` processes on this machine (pebble's ``ProcessPool``): a timed-out
    call's worker is killed and replaced, a dead worker fails only its own call. Workers start
    from a forkserver, so the driver's torch threads are never forked, and build the task's
    oracle before they take a call, so that building it never counts against a call's timeout
    (the pool is started again, lazily, when the runner moves on to another task)."""

    enforces_timeout = True

    def __init__(self, n_workers: int) -> None:
        self.slots = int(n_workers)
        self._pool, self._spec = None, None

    def _pool_for(self, spec: OracleSpec):
        from pebble import ProcessPool

        if spec != self._spec:
            self.close()
            self._pool = ProcessPool(max_workers=self.slots, context=_worker_context(),
                                     initializer=_init_worker, initargs=(os.getpid(), spec))
            self._spec = spec
        return self._pool

    def submit(self, spec: OracleSpec, obj: Any, timeout: float | None) -> cf.Future:
        from pebble import ProcessExpired

        def fault(err: BaseException) -> BaseException:
            if isinstance(err, ProcessExpired):
                return WorkerLost(f"worker process {err.pid} died (exit code {err.exitcode})")
            if isinstance(err, TimeoutError) and err.args[:1] == ("Task timeout",):
                return CallTimeout(f"timed out after {timeout:g} s; its worker was killed")
            return err

        return _relay(self._pool_for(spec).schedule(call_oracle, (spec, obj), timeout=timeout), fault)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()
            self._pool.join()
            self._pool, self._spec = None, None


def _worker_context() -> mp.context.BaseContext:
    """The forkserver context, with this module and the built-in oracles imported in the server
    (when it is not running yet), so that a worker replacing a killed one starts in a fraction of
    a second instead of importing torch again. Nothing has run torch in the server, so forking it
    is safe."""
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__, "oracles"])
    return context


def _init_worker(parent: int, spec: OracleSpec) -> None:
    """Build the oracle before the first call; a worker whose driver is gone (SIGKILL) exits
    instead of idling on."""
    try:
        _build(spec)
    except Exception as err:  # the call builds it again and fails with the reason
        log.warning("could not build oracle %s in a worker: %s", spec.name, err)
    def watch() -> None:
        while True:
            time.sleep(0.5)
            if not _parent_alive(parent):
                os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def _parent_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DaskExecutor(CallExecutor):
    """Calls as tasks on a Dask cluster: an existing scheduler at ``address``, or a
    ``LocalCluster`` of ``n_workers`` single-threaded worker processes on 127.0.0.1 that bbo starts
    and stops. A lost worker fails its call with :class:`WorkerLost` at once (on a cluster bbo
    starts, the scheduler's own rescheduling is off, so ``retries`` is the one count)."""

    enforces_timeout = True  # in the worker, by call_oracle's thread

    def __init__(self, address: str | None = None, n_workers: int = 1, threads_per_worker: int = 1,
                 connect_timeout: float = 10.0) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorError("executor kind 'dask' needs the distributed package: pip install 'bbo[dask]'") from None
        self._cluster = None
        try:
            if address is None:
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                    self._cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                                 processes=True, host="127.0.0.1", dashboard_address=None,
                                                 silence_logs=logging.CRITICAL)
                self._client = Client(self._cluster, timeout=connect_timeout)
            else:
                self._client = Client(address, timeout=connect_timeout)
        except (OSError, TimeoutError) as err:
            if self._cluster is not None:
                self._cluster.close()
            where = address or "a local cluster"
            raise ExecutorError(f"executor: cannot reach the Dask scheduler at {where} within "
                                f"{connect_timeout:g} s ({type(err).__name__}: {err})") from None
        threads = self._client.nthreads()
        self.slots = max(1, sum(threads.values()))

    @property
    def address(self) -> str:
        return self._client.scheduler.address

    def submit(self, spec: OracleSpec, obj: Any, timeout: float | None) -> cf.Future:
        from distributed.scheduler import KilledWorker

        def fault(err: BaseException) -> BaseException:
            if isinstance(err, KilledWorker):
                return WorkerLost(f"the Dask worker running it died ({err})")
            if isinstance(err, cf.CancelledError):
                return WorkerLost("the Dask task was cancelled (its worker or the scheduler went away)")
            return err

        return _relay(self._client.submit(call_oracle, spec, obj, timeout, pure=False), fault)

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def _relay(inner: Any, fault: Callable[[BaseException], BaseException]) -> cf.Future:
    """A ``concurrent.futures.Future`` that follows a pool's own future (pebble's, Dask's), with
    the pool's errors translated by ``fault`` into the runner's (:class:`WorkerLost`,
    :class:`CallTimeout`); :meth:`CallExecutor.abandon` cancels ``inner`` through it. Once the
    runner has abandoned the call, what ``inner`` reports is ignored."""
    out: cf.Future = cf.Future()
    out.set_running_or_notify_cancel()

    def follow(done: Any) -> None:
        if out.done():
            return
        try:
            out.set_result(done.result())
        except BaseException as err:  # the call's own fault, handed to the runner
            out.set_exception(fault(err))

    inner.add_done_callback(follow)
    out._bbo_inner = inner  # type: ignore[attr-defined]
    return out


class FuturesExecutor(CallExecutor):
    """Any ``concurrent.futures.Executor`` a user passes from the API (a thread pool, a
    ``ProcessPoolExecutor``, an MPI or cloud pool). Timeouts abandon the call without stopping
    it; a broken pool (a worker killed under ``ProcessPoolExecutor``) ends the run."""

    def __init__(self, executor: cf.Executor, slots: int | None = None) -> None:
        self._executor = executor
        self.slots = int(slots or getattr(executor, "_max_workers", None) or 1)

    def submit(self, spec: OracleSpec, obj: Any, timeout: float | None) -> cf.Future:
        # the pool may be threads of this process: its thread budget is left alone
        return self._executor.submit(call_oracle, spec.in_this_process(), obj)


def make_executor(spec: Any) -> CallExecutor:
    """The executor an :class:`~bbo.bench.config.ExecutorSpec` names, started."""
    if spec.kind == "dask":
        return DaskExecutor(spec.address, spec.n_workers, spec.threads_per_worker, spec.connect_timeout)
    if spec.n_workers == 0:
        return InlineExecutor()
    return ProcessExecutor(spec.n_workers)
