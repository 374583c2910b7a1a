"""The oracle protocol, the registry, and the budget/cache wrapper.

An oracle is the expensive black box: a callable from a list of objects to an array of floats,
NaN where it cannot score an object (the reason is logged, the run goes on). This package knows
nothing of bbo's optimizers, so a user can call an oracle on its own.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import inspect
import json
import logging
import math
import multiprocessing as mp
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

log = logging.getLogger(__name__)

Direction = Literal["maximize", "minimize"]


class Oracle(ABC):
    """A black-box objective over one domain.

    Subclasses implement :meth:`score` for one object; ``__call__`` scores a batch, in worker
    processes when ``n_jobs > 1`` and the batch is large enough to pay for the hand-off.
    """

    name: str = "oracle"
    #: the domain of the objects it scores (``"molecule"``, ``"vector"``, ...): every oracle declares it
    domain: str | None = None
    direction: Direction = "maximize"
    #: batches smaller than this are scored in-process even when ``n_jobs > 1``
    parallel_threshold: int = 64

    def __init__(self, n_jobs: int = 1) -> None:
        self.n_jobs = int(n_jobs)

    @abstractmethod
    def score(self, obj: Any) -> float:
        """Score one object; return NaN (and log why) when it cannot be scored."""

    def key(self, obj: Any) -> Hashable | None:
        """Identity of an object for caching; None means invalid (never charged).

        The default is the object's exact identity (:func:`exact_key`); a molecule oracle
        overrides it with canonical SMILES so that two spellings are one call."""
        return exact_key(obj)

    def __call__(self, objects: Sequence[Any]) -> np.ndarray:
        objects = list(objects)
        if self.n_jobs > 1 and len(objects) >= self.parallel_threshold:
            chunks = _chunks(objects, self.n_jobs * 4)
            try:
                parts = list(_pool(self.n_jobs).map(_score_chunk, [self] * len(chunks), chunks))
            except BrokenProcessPool:  # a worker died (e.g. killed): drop the pool, score here
                log.warning("%s: worker pool broke; scoring this batch in-process", self.name)
                _POOLS.pop(self.n_jobs, None)
                parts = [_score_chunk(self, chunk) for chunk in chunks]
            values = [v for part in parts for v in part]
        else:
            values = _score_chunk(self, objects)
        return np.asarray(values, dtype=float)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, domain={self.domain!r}, direction={self.direction!r})"


def exact_key(obj: Any) -> str:
    """An exact identity of a plain object, as text: two objects share it only if they are equal
    value for value (arrays: same dtype, shape and bytes; floats: the same double).

    Never ``repr``: numpy abbreviates large arrays and rounds floats in their repr, so two
    different images or vectors would share a key and one would be answered from the other's
    cached score.
    """
    return "x:" + hashlib.sha256(json.dumps(_exact(obj), separators=(",", ":")).encode()).hexdigest()


def _exact(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return ["int", str(obj)]
    if isinstance(obj, float):
        return ["float", obj.hex()]
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # a torch tensor
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.generic):
        obj = np.asarray(obj)
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        if arr.dtype == object:
            return ["objects", list(arr.shape), [_exact(v) for v in arr.ravel().tolist()]]
        digest = hashlib.sha256(arr.tobytes()).hexdigest()
        return ["ndarray", arr.dtype.str, list(arr.shape), digest]
    if isinstance(obj, (list, tuple)):
        return [type(obj).__name__, [_exact(v) for v in obj]]
    if isinstance(obj, dict):
        return ["dict", sorted([str(k), _exact(v)] for k, v in obj.items())]
    raise TypeError(f"no exact key for a {type(obj).__name__}; give the oracle a key() method")


def _score_chunk(oracle: Oracle, objects: list) -> list[float]:
    out = []
    for obj in objects:
        try:
            value = float(oracle.score(obj))
        except Exception as err:  # an oracle failure on one object must not end a run
            log.warning("%s could not score %r: %s", oracle.name, obj, err)
            value = math.nan
        out.append(value)
    return out


def _chunks(items: list, n: int) -> list[list]:
    size = max(1, math.ceil(len(items) / n))
    return [items[i : i + size] for i in range(0, len(items), size)]


_POOLS: dict[int, ProcessPoolExecutor] = {}


def _pool(n_jobs: int) -> ProcessPoolExecutor:
    """A persistent worker pool per size; forkserver so that torch's threads are never forked.

    As with any spawned workers, a script that scores with ``n_jobs > 1`` needs the usual
    ``if __name__ == "__main__":`` guard."""
    if n_jobs not in _POOLS:
        _POOLS[n_jobs] = ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("forkserver"))
    return _POOLS[n_jobs]


@atexit.register
def _shutdown_pools() -> None:
    for pool in _POOLS.values():
        pool.shutdown(cancel_futures=True)
    _POOLS.clear()


# --------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class OracleInfo:
    name: str
    domain: str
    direction: Direction
    description: str


_REGISTRY: dict[str, tuple[Callable[..., Oracle], OracleInfo]] = {}


def register(
    name: str, *, domain: str, direction: Direction = "maximize", description: str = ""
) -> Callable[[Callable[..., Oracle]], Callable[..., Oracle]]:
    """Decorator: register an oracle factory under ``name``."""

    def wrap(factory: Callable[..., Oracle]) -> Callable[..., Oracle]:
        if name in _REGISTRY:
            raise ValueError(f"oracle {name!r} is already registered")
        doc = description or ((factory.__doc__ or "").strip().splitlines() or [""])[0]
        _REGISTRY[name] = (factory, OracleInfo(name, domain, direction, doc))
        return factory

    return wrap


def list_oracles() -> list[OracleInfo]:
    """Every registered oracle, sorted by name."""
    _load_builtin()
    return [info for _, (_, info) in sorted(_REGISTRY.items())]


def oracle_names() -> list[str]:
    return [info.name for info in list_oracles()]


def is_registered(name: str) -> bool:
    """Whether ``name`` is a built-in or registered oracle, importing only its family's module
    where the name says which (``layout/...``), so that checking an image or layout task never
    needs RDKit."""
    _load_builtin(name)
    if name not in _REGISTRY:
        _load_builtin()
    return name in _REGISTRY


class UntrustedFactoryError(ValueError):
    """A ``"module:factory"`` outside the modules the caller allowed, or not a factory of its module."""


def oracle_factory(name: str, allowed_modules: Sequence[str] | None = None) -> Callable[..., Oracle]:
    """The factory behind ``name``: a registered oracle or a user's ``"package.module:factory"``.

    A factory is code: with ``allowed_modules`` (what a config's ``plugins:`` lists) a module
    outside them is refused before it is imported. The factory must be an :class:`Oracle`
    subclass or a function defined in that module (so ``os:system`` or ``builtins:open`` never
    pass, whatever is allowed)."""
    if ":" not in name and is_registered(name):
        return _REGISTRY[name][0]
    if ":" in name:
        module, _, attr = name.partition(":")
        if allowed_modules is not None and not any(module == m or module.startswith(m + ".") for m in allowed_modules):
            raise UntrustedFactoryError(f"oracle {name!r}: module {module!r} is not among the allowed plugins "
                                        f"({', '.join(allowed_modules) or 'none'})")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"cannot import oracle {name!r}: {err}") from err
        is_class = isinstance(factory, type)
        defined_here = (getattr(factory, "__module__", None) or "").startswith(module)
        if (is_class and not issubclass(factory, Oracle)) or not callable(factory) or (
                not is_class and not (inspect.isfunction(factory) and defined_here)):
            raise UntrustedFactoryError(f"oracle {name!r} is not an Oracle subclass or a function defined in "
                                        f"{module!r}; refusing to call it")
        return factory
    raise ValueError(f"unknown oracle {name!r}; known: {', '.join(sorted(_REGISTRY))}")


def get_oracle(name: str, allowed_modules: Sequence[str] | None = None, **kwargs: Any) -> Oracle:
    """Build a registered oracle, or a user's own from ``"package.module:factory"`` (see
    :func:`oracle_factory` for ``allowed_modules``); the result must be an :class:`Oracle`-like
    object declaring its name, domain and direction."""
    oracle = oracle_factory(name, allowed_modules)(**kwargs)
    for attr in ("name", "domain", "direction"):
        if getattr(oracle, attr, None) is None:
            raise TypeError(f"oracle {name!r} does not declare its {attr!r}")
    return oracle


# the module that registers each family of built-in names (the part before "/"); the molecule
# oracles (qed, logp, ...) have no family, so a name outside these loads every module
_FAMILIES = {"pmo": "oracles.pmo", "image": "oracles.images", "layout": "oracles.layouts",
             "synthetic": "oracles.synthetic"}
_BUILTIN = ("oracles.molecules", "oracles.pmo", "oracles.images", "oracles.layouts", "oracles.synthetic")


def _load_builtin(name: str | None = None) -> None:
    """Import the built-in oracle modules (their @register decorators fill the registry): only the
    family's module for a name like ``layout/overlap``, else all. RDKit is imported by the molecule
    modules alone, so image and layout runs work where it is not installed."""
    family = _FAMILIES.get(name.partition("/")[0]) if name and "/" in name else None
    for module in (family,) if family else _BUILTIN:
        importlib.import_module(module)


# ------------------------------------------------------------------------------- budget and cache


class BudgetExceeded(RuntimeError):
    """Raised when a call would charge more oracle calls than the budget has left."""


class BudgetedOracle:
    """Counts oracle calls against a budget and answers repeated objects from a cache.

    Following the PMO protocol, a call is charged once per unique valid object; a repeat is
    answered from the cache for free and an invalid object is answered NaN without being charged.
    Identity is ``key`` when given (``bbo run`` passes the domain's, the one identity the journal
    uses too), else the oracle's own :meth:`Oracle.key`; either returns None for an invalid object.
    """

    def __init__(self, oracle: Oracle, budget: int | None = None,
                 key: Callable[[Any], Hashable | None] | None = None) -> None:
        self.oracle = oracle
        self.budget = budget
        self.key = key or oracle.key
        self.cache: dict[Hashable, float] = {}
        self.calls = 0

    @property
    def name(self) -> str:
        return self.oracle.name

    @property
    def domain(self) -> str:
        return self.oracle.domain

    @property
    def direction(self) -> Direction:
        return self.oracle.direction

    @property
    def remaining(self) -> float:
        return math.inf if self.budget is None else self.budget - self.calls

    def remember(self, objects: Iterable[Any], values: Iterable[float]) -> None:
        """Seed the cache with answers already paid for (resume): each new key is charged."""
        for obj, value in zip(objects, values):
            k = self.key(obj)
            if k is not None and k not in self.cache:
                self.cache[k] = float(value)
                self.calls += 1

    def __call__(self, objects: Sequence[Any]) -> np.ndarray:
        objects = list(objects)
        keys = [self.key(o) for o in objects]
        new: dict[Hashable, Any] = {}
        for obj, k in zip(objects, keys):
            if k is not None and k not in self.cache and k not in new:
                new[k] = obj
        if len(new) > self.remaining:
            raise BudgetExceeded(
                f"{self.name}: this call needs {len(new)} new oracle calls but only "
                f"{int(self.remaining)} of the budget of {self.budget} are left"
            )
        if new:
            values = self.oracle(list(new.values()))
            for k, v in zip(new, values):
                self.cache[k] = float(v)
            self.calls += len(new)
        return np.array([math.nan if k is None else self.cache[k] for k in keys], dtype=float)
