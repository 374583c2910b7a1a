"""The ``Optimizer`` base class: the ask/tell contract, bookkeeping, persistence and resume.

Subclasses implement two things: :meth:`Optimizer._propose` (draw new objects) and, for the
learning optimizers, :meth:`Optimizer._update` (the round-end model update) with its checkpoint.
Everything else, the journal, pending-trial matching, validation, failure handling, rounds,
seeding and resume, lives here once.
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
import os
import shutil
import threading
import warnings
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch

from bbo.domains import Domain, get_domain
from bbo.study import Journal, Trial, TrialSource, TrialState, TrialUpdate, trials_dataframe

Direction = Literal["maximize", "minimize"]

OPTIMIZERS: dict[str, type[Optimizer]] = {}


class FailedTrialWarning(UserWarning):
    """A told value was NaN, infinite or None: the trial is recorded as FAIL."""


def register_optimizer(cls: type[Optimizer]) -> type[Optimizer]:
    """Class decorator: make an optimizer available by its ``name`` (configs, ``load_optimizer``)."""
    if cls.name in OPTIMIZERS and OPTIMIZERS[cls.name] is not cls:
        raise ValueError(f"optimizer {cls.name!r} is already registered")
    OPTIMIZERS[cls.name] = cls
    return cls


class Optimizer(ABC):
    """Ask/tell optimizer over a domain, with every trial kept in a journal.

    Args:
        domain: the object domain (``"molecule"``, ``{"name": "vector", "dim": 2}``, or a Domain).
        batch_size: objects returned by ``ask()`` when ``n`` is not given.
        round_size: told results per model update (default ``batch_size``).
        seed: seeds everything the optimizer draws; same seed and journal, same asks.
        storage: path of the SQLite journal; None keeps it in memory. An existing journal is
            resumed (its optimizer settings must match).
        direction: ``"maximize"`` or ``"minimize"`` the told values.
    """

    name: ClassVar[str] = "base"
    #: constructor arguments that say where to run, not what the study is: not stored, not compared
    runtime_settings: ClassVar[tuple[str, ...]] = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Optimizer:
        # Capture the constructor arguments so that ``load_optimizer`` can rebuild the optimizer.
        self = super().__new__(cls)
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
        bound.apply_defaults()
        self._init_args = {k: v for k, v in bound.arguments.items() if k not in ("self", "storage")}
        return self

    def __init__(
        self,
        *,
        domain: str | dict[str, Any] | Domain = "molecule",
        batch_size: int = 64,
        round_size: int | None = None,
        seed: int = 0,
        storage: str | Path | None = None,
        direction: Direction = "maximize",
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if round_size is not None and int(round_size) < 1:
            raise ValueError(f"round_size must be >= 1, got {round_size}")
        if direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
        self.domain = get_domain(domain)
        self.batch_size = int(batch_size)
        self.round_size = int(round_size or batch_size)
        self.seed = int(seed)
        self.direction: Direction = direction
        self.storage = None if storage is None else Path(storage)
        self._lock = threading.RLock()  # guards the journal and the pending-trial view
        self._update_lock = threading.Lock()  # serializes round updates without blocking tell
        self._journal = Journal(self.storage, exclusive=True)
        self._round = 0
        self._n_told = 0
        self._n_asked = 0
        self._pending: dict[Any, deque[int]] = defaultdict(deque)  # key -> RUNNING trial numbers, ask order
        self._orphans: dict[int, Trial] = {}  # RUNNING trials from an earlier process: asked again first

    # ---------------------------------------------------------------------------- subclass API
    @abstractmethod
    def _propose(self, n: int, rng: np.random.Generator) -> list[Any]:
        """Draw ``n`` new valid objects of the domain."""

    def _update(self, trials: list[Trial]) -> None:
        """Round-end model update on all COMPLETE trials (scores in :meth:`score`). Default: none."""

    def _save_checkpoint(self, directory: Path) -> None:
        """Write the model state after a round update (safetensors, JSON). Default: nothing."""

    def _load_checkpoint(self, directory: Path) -> None:
        """Restore what :meth:`_save_checkpoint` wrote."""

    # ------------------------------------------------------------------------------ lifecycle
    def _open(self) -> None:
        """Bind to the journal: record the settings on a new one, or resume an existing one.

        Subclasses call this at the end of their ``__init__``, once their own state exists.
        """
        settings = self.config()
        stored = self._journal.get_meta("optimizer")
        if stored is None:
            self._journal.set_meta("optimizer", settings)
            self._journal.set_meta("round", 0)
            return
        if stored != settings:
            diff = sorted(
                k for k in set(stored["settings"]) | set(settings["settings"])
                if stored["settings"].get(k) != settings["settings"].get(k)
            )
            what = "optimizer" if stored["name"] != settings["name"] else f"settings {', '.join(diff)}"
            raise ValueError(
                f"{self.storage}: the journal belongs to {stored['name']} with other {what}; "
                f"resume it with bbo.load_optimizer({str(self.storage)!r}) or use a new storage path"
            )
        self._resume()

    def _resume(self) -> None:
        trials = self._journal.trials()
        self._n_asked = sum(t.source is TrialSource.ASKED for t in trials)
        self._n_told = sum(t.state is not TrialState.RUNNING for t in trials)
        for t in trials:
            if t.state is TrialState.RUNNING:
                self._pending[t.key].append(t.number)
                self._orphans[t.number] = t
        self._round = int(self._journal.get_meta("round", 0))
        if self._round > 0 and self._has_checkpoints():
            directory = self._round_dir(self._round)
            if not directory.is_dir():
                raise FileNotFoundError(f"{directory}: the checkpoint of round {self._round} is missing")
            self._load_checkpoint(directory)

    def config(self) -> dict[str, Any]:
        """The optimizer's name and JSON settings, as stored in the journal; a prior given as a
        directory is stored as an absolute path, so that the study resumes from anywhere."""
        settings = {k: (self.domain.config() if k == "domain" else v) for k, v in self._init_args.items()
                    if k not in self.runtime_settings}
        prior = settings.get("prior")
        if prior is not None and Path(prior).exists():
            settings["prior"] = str(Path(prior).resolve())
        return json.loads(json.dumps({"name": self.name, "settings": settings}, default=_json_default))

    @property
    def checkpoint_dir(self) -> Path | None:
        """Where round checkpoints go: ``<storage>.ckpt/`` beside the journal."""
        return None if self.storage is None else self.storage.with_name(self.storage.name + ".ckpt")

    # ---------------------------------------------------------------------------------- ask
    def ask(self, n: int | None = None) -> list[Any]:
        """Propose ``n`` objects (default ``batch_size``), recorded as RUNNING trials.

        Trials left RUNNING by an earlier process are asked again first. Asking again before
        telling is allowed.
        """
        n = self.batch_size if n is None else n
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"ask: n must be a positive integer, got {n!r}")
        with self._update_lock:  # one round update at a time; tells are recorded meanwhile
            self._maybe_update()
            return self._ask_locked(n)

    def _ask_locked(self, n: int) -> list[Any]:
        with self._lock:
            out: list[Any] = []
            while self._orphans and len(out) < n:
                trial = self._orphans.pop(next(iter(self._orphans)))
                out.append(self.domain.from_json(trial.object))
            k = n - len(out)
            if k:
                objects = self._propose(k, self._rng())
                if len(objects) != k:
                    raise RuntimeError(f"{self.name} proposed {len(objects)} objects, {k} were asked for")
                for i, obj in enumerate(objects):
                    reason = self.domain.validate(obj)
                    if reason is not None:
                        raise RuntimeError(f"{self.name} proposed an invalid object at {i}: {reason}")
                keys = [self.domain.key(o) for o in objects]
                trial_numbers = self._journal.add_running(
                    [self.domain.to_json(o) for o in objects], [_key_text(k) for k in keys], self._round, self.name
                )
                for key, number in zip(keys, trial_numbers):
                    self._pending[_key_text(key)].append(number)
                self._n_asked += k
                out.extend(objects)
            return out

    # --------------------------------------------------------------------------------- tell
    def tell(self, xs: Any, ys: Any) -> None:
        """Record results: one object and value, or aligned sequences.

        A told object is matched to a pending trial of the same object (in ask order); one never
        asked is recorded as an external observation. NaN, inf or None marks the trial FAIL with
        a warning. Bad input raises ValueError naming the index and writes nothing. All of the
        call is committed to the journal before this returns.
        """
        xs, ys = self._as_batch(xs, ys)
        values: list[float | None] = []
        for i, (x, y) in enumerate(zip(xs, ys)):
            reason = self.domain.validate(x)
            if reason is not None:
                raise ValueError(f"tell: object {i} is invalid for the {self.domain.name} domain: {reason}")
            values.append(_as_value(i, y))
        with self._lock:
            taken: dict[str, int] = defaultdict(int)
            updates: list[TrialUpdate] = []
            for x, v in zip(xs, values):
                key = _key_text(self.domain.key(x))
                queue = self._pending.get(key, ())
                number = queue[taken[key]] if taken[key] < len(queue) else None
                if number is not None:
                    taken[key] += 1
                failed = v is None or not math.isfinite(v)
                updates.append(
                    TrialUpdate(
                        number=number, object_json=self.domain.to_json(x), key=key,
                        value=None if failed else float(v),
                        state=TrialState.FAIL if failed else TrialState.COMPLETE, round=self._round,
                        metadata={"told_value": repr(v)} if failed else {},
                    )
                )
            written = self._journal.finish(updates, self.name)
            # the journal holds it all now; update the in-memory view
            for key, count in taken.items():
                for _ in range(count):
                    self._orphans.pop(self._pending[key].popleft(), None)
                if not self._pending[key]:
                    del self._pending[key]
            self._n_told += len(updates)
        for number, u, x in zip(written, updates, xs):
            if u.state is TrialState.FAIL:
                warnings.warn(
                    f"tell: value {u.metadata['told_value']} for {x!r} is not a finite number; "
                    f"trial {number} recorded as FAIL",
                    FailedTrialWarning,
                    stacklevel=2,
                )

    def _as_batch(self, xs: Any, ys: Any) -> tuple[list[Any], list[Any]]:
        if self.domain.is_single(xs):
            if _is_sequence(ys):
                raise ValueError(f"tell: one object but {len(ys)} values")
            return [xs], [ys]
        if not _is_sequence(xs):
            raise ValueError(
                f"tell: expected a {self.domain.name} object or a sequence of them, got {type(xs).__name__}"
            )
        xs = list(xs)
        if not _is_sequence(ys):
            raise ValueError(f"tell: {len(xs)} objects but a single value {ys!r}; pass one value per object")
        ys = _as_list(ys)
        if len(xs) != len(ys):
            raise ValueError(f"tell: {len(xs)} objects but {len(ys)} values")
        return xs, ys

    # -------------------------------------------------------------------------------- rounds
    def _maybe_update(self) -> None:
        """Run the round-end update once a full round of results has been told since the last.

        Runs without holding the tell lock, so results keep being recorded during a long
        fine-tune. The new round's checkpoint is written to a fresh directory before the journal
        records the round, so a crash at any point resumes from a complete checkpoint.
        """
        with self._lock:
            n_told = self._n_told
            if n_told - self._round * self.round_size < self.round_size:
                return
            trials = self.completed_trials()
        # catch up on all complete rounds at once (e.g. after many external tells), one update
        self._update(trials)
        new_round = n_told // self.round_size
        self._write_checkpoint(new_round)
        with self._lock:
            self._round = new_round
            self._journal.set_meta("round", new_round)
        self._prune_checkpoints(new_round)

    def _has_checkpoints(self) -> bool:
        return self.checkpoint_dir is not None and type(self)._save_checkpoint is not Optimizer._save_checkpoint

    def _round_dir(self, round: int) -> Path:
        return self.checkpoint_dir / f"round-{round:05d}"

    def _write_checkpoint(self, round: int) -> None:
        if not self._has_checkpoints():
            return
        final, tmp = self._round_dir(round), self._round_dir(round).with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self._save_checkpoint(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)

    def _prune_checkpoints(self, keep: int) -> None:
        if self._has_checkpoints():
            for old in self.checkpoint_dir.glob("round-*"):
                if old.name != self._round_dir(keep).name:
                    shutil.rmtree(old, ignore_errors=True)

    # ------------------------------------------------------------------------------- queries
    def score(self, value: float) -> float:
        """The told value in the maximize orientation: the one place where direction is applied."""
        return value if self.direction == "maximize" else -value

    def completed_trials(self) -> list[Trial]:
        """COMPLETE trials only: FAIL trials never reach a model."""
        return self._journal.trials([TrialState.COMPLETE])

    def best(self, k: int = 1) -> list[tuple[Any, float]]:
        """The ``k`` best distinct objects told so far, with their values, best first."""
        seen: dict[str, Trial] = {}
        for t in self.completed_trials():
            if t.key not in seen or self.score(t.value) > self.score(seen[t.key].value):
                seen[t.key] = t
        ranked = sorted(seen.values(), key=lambda t: self.score(t.value), reverse=True)[:k]
        return [(self.domain.from_json(t.object), t.value) for t in ranked]

    def history(self) -> pd.DataFrame:
        """One row per trial (number, object, value, state, source, round, times, metadata)."""
        return trials_dataframe(self._journal.trials(), self.domain.from_json)

    @property
    def trials(self) -> list[Trial]:
        return self._journal.trials()

    @property
    def n_told(self) -> int:
        """Trials told so far (COMPLETE and FAIL)."""
        return self._n_told

    @property
    def n_asked(self) -> int:
        return self._n_asked

    @property
    def round(self) -> int:
        """Model updates done so far."""
        return self._round

    def save(self, storage: str | Path | None = None) -> Path:
        """Write the round checkpoint; with ``storage``, also copy an in-memory study to that file
        and keep writing there. Returns the journal path."""
        with self._lock:
            if storage is not None and (self.storage is None or Path(storage) != self.storage):
                target = Journal(storage, exclusive=True)
                self._journal._db.backup(target._db)
                self._journal.close()
                self._journal, self.storage = target, Path(storage)
            if self.storage is None:
                raise ValueError("save: this optimizer keeps its journal in memory; pass a storage path")
            if self._round > 0:
                self._write_checkpoint(self._round)
            return self.storage

    def close(self) -> None:
        self._journal.close()

    # --------------------------------------------------------------------------------- seeds
    def _rng(self) -> np.random.Generator:
        """A generator for the next proposal, derived from the seed and how many objects were asked,
        so that a resumed study draws exactly what an uninterrupted one would."""
        return np.random.default_rng([self.seed, self._n_asked])

    def _torch_generator(self, device: str | torch.device = "cpu") -> torch.Generator:
        return torch.Generator(device=device).manual_seed(int(self._rng().integers(2**62)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(domain={self.domain!r}, n_told={self.n_told}, round={self.round})"


def load_optimizer(storage: str | Path) -> Optimizer:
    """Rebuild an optimizer from its journal (and last round checkpoint): nothing told is lost."""
    path = Path(storage)
    if not path.exists():
        raise FileNotFoundError(f"no journal at {path}")
    journal = Journal(path)
    stored = journal.get_meta("optimizer")
    journal.close()
    if stored is None:
        raise ValueError(f"{path} is a journal without an optimizer record")
    _import_builtin_optimizers()
    if stored["name"] not in OPTIMIZERS:
        raise ValueError(f"{path}: unknown optimizer {stored['name']!r}; known: {', '.join(sorted(OPTIMIZERS))}")
    return OPTIMIZERS[stored["name"]](**stored["settings"], storage=path)


def _import_builtin_optimizers() -> None:
    import bbo.optimizers  # noqa: F401  (registers the built-in optimizers)


def _key_text(key: Any) -> str:
    return key.hex() if isinstance(key, bytes) else str(key)


def _is_sequence(x: Any) -> bool:
    if isinstance(x, (str, bytes)):
        return False
    if getattr(x, "ndim", None) == 0:  # 0-d numpy arrays and torch tensors are scalars
        return False
    return isinstance(x, Sequence) or (hasattr(x, "__len__") and hasattr(x, "__getitem__"))


def _as_list(x: Any) -> list[Any]:
    """A sequence of values as a plain list (numpy arrays, torch tensors, pandas Series too)."""
    return list(x.tolist()) if hasattr(x, "tolist") else list(x)


def _as_value(i: int, y: Any) -> float | None:
    if y is None:
        return None
    if getattr(y, "ndim", None) == 0 and hasattr(y, "item"):  # 0-d numpy arrays and torch tensors
        y = y.item()
    if isinstance(y, (bool, np.bool_)) or not isinstance(y, numbers.Real):
        raise ValueError(f"tell: value {i} is {y!r} ({type(y).__name__}); expected a real number or None")
    try:
        return float(y)
    except OverflowError:
        raise ValueError(f"tell: value {i} is too large for a float") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"optimizer setting of type {type(value).__name__} cannot be stored in the journal")
