"""The ``Optimizer``: the study side of every optimizer (Optuna's ``Study`` to its ``Sampler``).

It owns the journal, the ask/tell contract, pending-trial matching, validation, failure
handling, rounds, seeding, round checkpoints and resume, once for all optimizers. What differs
between optimizers is a :class:`~bbo.strategy.Strategy` (``propose``, ``update``, ``save``/``load``)
with its pydantic :class:`~bbo.strategy.Settings`; a concrete optimizer is a registered subclass
naming its ``strategy_class``. The strategy reads the study through its public view only.
"""

from __future__ import annotations

import heapq
import json
import math
import numbers
import os
import shutil
import threading
import warnings
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, create_model

from bbo.domains import Domain, get_domain
from bbo.strategy import Strategy, validation_message
from bbo.study import Journal, JournalError, Trial, TrialSource, TrialState, TrialUpdate, trials_dataframe

Direction = Literal["maximize", "minimize"]

OPTIMIZERS: dict[str, type[Optimizer]] = {}
#: the most objects one ``ask`` proposes (each is a journal row and a proposal to compute)
MAX_ASK = 100_000


class FailedTrialWarning(UserWarning):
    """A told value was NaN, infinite or None: the trial is recorded as FAIL."""


def register_optimizer(cls: type[Optimizer]) -> type[Optimizer]:
    """Class decorator: make an optimizer available by its ``name`` (configs, ``load_optimizer``)."""
    if cls.name in OPTIMIZERS and OPTIMIZERS[cls.name] is not cls:
        raise ValueError(f"optimizer {cls.name!r} is already registered")
    OPTIMIZERS[cls.name] = cls
    return cls


def oriented(value: float, direction: Direction) -> float:
    """A told value in the maximize orientation: the one place where direction is applied
    (optimizers, the runner and the reports all call it)."""
    return value if direction == "maximize" else -value


class Optimizer:
    """Ask/tell optimizer over a domain, with every trial kept in a journal.

    Args:
        domain: the object domain (``"molecule"``, ``{"name": "vector", "dim": 2}``, or a Domain);
            default the strategy's (a prior's domain) or its ``default_domain``.
        batch_size: objects returned by ``ask()`` when ``n`` is not given (default: the strategy's).
        round_size: told results per model update (default ``batch_size``).
        seed: seeds everything the optimizer draws; same seed and journal, same asks.
        storage: path of the SQLite journal; None keeps it in memory. An existing journal is
            resumed (its optimizer settings must match).
        direction: ``"maximize"`` or ``"minimize"`` the told values.
        **settings: the strategy's settings (``strategy_class.Settings``), validated before any
            file is touched.
    """

    name: ClassVar[str] = "base"
    strategy_class: ClassVar[type[Strategy]]

    def __init__(
        self,
        *,
        domain: str | dict[str, Any] | Domain | None = None,
        batch_size: int | None = None,
        round_size: int | None = None,
        seed: int = 0,
        storage: str | Path | None = None,
        direction: Direction = "maximize",
        **settings: Any,
    ) -> None:
        study = _validated(self._study_model(), {"batch_size": batch_size, "round_size": round_size, "seed": seed,
                                                 "direction": direction}, type(self).name)
        strategy_settings = _validated(self.strategy_class.Settings, settings, type(self).name)
        self.batch_size = int(study.batch_size or self.strategy_class.default_batch_size)
        self._round_size_setting = study.round_size
        self.round_size = int(study.round_size or self.batch_size)
        self.seed = int(study.seed)
        self.direction: Direction = study.direction
        self.storage = None if storage is None else Path(storage)
        self._round = 0
        self._n_told = 0
        self._n_asked = 0
        self.strategy: Strategy = self.strategy_class(strategy_settings, self)
        self.domain = self._resolve_domain(domain)
        self.strategy.check_domain(self.domain)
        self._lock = threading.RLock()  # guards the journal and the pending-trial view
        self._update_lock = threading.Lock()  # serializes round updates without blocking tell
        self._pending: dict[Any, deque[int]] = defaultdict(deque)  # key -> RUNNING trial numbers, ask order
        self._orphans: dict[int, Trial] = {}  # RUNNING trials from an earlier process: asked again first
        self._journal = Journal(self.storage, exclusive=True)
        try:
            self._open()
        except BaseException:
            self._journal.close()
            raise

    @classmethod
    def _study_model(cls) -> type[BaseModel]:
        return create_model(
            f"{cls.name}_study", __config__=ConfigDict(extra="forbid"),
            batch_size=(StrictInt | None, Field(None, ge=1, le=MAX_ASK)), round_size=(StrictInt | None, Field(None, ge=1)),
            seed=(StrictInt, Field(0, ge=0)), direction=(Direction, "maximize"),
        )

    @classmethod
    def settings_model(cls) -> type[BaseModel]:
        """Every setting a config may give this optimizer: the strategy's and the study's
        ``domain``, ``batch_size`` and ``round_size`` (seed, storage and direction come from the run)."""
        return create_model(
            f"{cls.name}_settings", __base__=cls.strategy_class.Settings,
            domain=(str | dict[str, Any] | None, None), batch_size=(StrictInt | None, Field(None, ge=1, le=MAX_ASK)),
            round_size=(StrictInt | None, Field(None, ge=1)),
        )

    def _resolve_domain(self, asked: str | dict[str, Any] | Domain | None) -> Domain:
        natural = self.strategy.natural_domain()
        if natural is not None:
            domain = get_domain(natural)
            name = asked.name if isinstance(asked, Domain) else asked.get("name") if isinstance(asked, dict) else asked
            if name is not None and name != domain.name:
                raise ValueError(f"{self.name}: its prior generates in the {domain.name!r} domain, not {name!r}")
            detailed = isinstance(asked, Domain) or (isinstance(asked, dict) and set(asked) - {"name"})
            if detailed and get_domain(asked) != domain:  # e.g. a prior's image size is not the oracle's
                raise ValueError(f"{self.name}: its prior generates {domain!r}, but the objects asked for are "
                                 f"{get_domain(asked)!r}")
            return domain
        spec = asked if asked is not None else self.strategy_class.default_domain
        if spec is None:
            raise ValueError(f"{self.name}: give the domain to optimize in (domain=...)")
        return get_domain(spec)

    # ------------------------------------------------------------------------------ lifecycle
    def _open(self) -> None:
        """Bind to the journal: record the settings on a new one, or resume an existing one."""
        settings = self.config()
        stored = self._journal.get_meta("optimizer")
        if stored is not None and not (isinstance(stored, dict) and isinstance(stored.get("name"), str)
                                       and isinstance(stored.get("settings"), dict)):
            raise JournalError(f"{self.storage}: its optimizer record is malformed: {str(stored)[:200]}")
        if stored is None and self._journal.count() > 0:
            raise JournalError(f"{self.storage}: holds trials but no optimizer record; it is not reused")
        if stored is None:
            self._journal.set_meta("optimizer", settings)
            self._journal.set_meta("round", 0)
            return
        stored = self._upgraded(stored, settings)
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

    def _upgraded(self, stored: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        """A stored record from before some settings existed, completed with what it ran with
        (:attr:`Strategy.legacy_settings`, else the current value) and written back, so that it
        compares with the current settings; a record of another optimizer is left as it is."""
        missing = set(current["settings"]) - set(stored["settings"])
        if stored["name"] != current["name"] or not missing:
            return stored
        legacy = self.strategy_class.legacy_settings
        filled = {k: legacy.get(k, current["settings"][k]) for k in missing}
        upgraded = {"name": stored["name"], "settings": {**stored["settings"], **filled}}
        if upgraded == current:
            self._journal.set_meta("optimizer", upgraded)
        return upgraded

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
            self.strategy.load(directory)

    def config(self) -> dict[str, Any]:
        """The optimizer's name and JSON settings (study and strategy), as stored in the journal."""
        settings = {"domain": self.domain.config(), "batch_size": self.batch_size,
                    "round_size": self._round_size_setting, "seed": self.seed, "direction": self.direction,
                    **self.strategy.config()}
        return json.loads(json.dumps({"name": self.name, "settings": settings}, default=_json_default))

    @property
    def checkpoint_dir(self) -> Path | None:
        """Where round checkpoints go: ``<storage>.ckpt/`` beside the journal."""
        return None if self.storage is None else self.storage.with_name(self.storage.name + ".ckpt")

    # ---------------------------------------------------------------------------------- ask
    def ask(self, n: int | None = None) -> list[Any]:
        """Propose ``n`` objects (default ``batch_size``), recorded as RUNNING trials.

        Trials left RUNNING by an earlier process are asked again first. Asking again before
        telling is allowed. One call asks at most :data:`MAX_ASK` objects (ask again for more).
        """
        n = self.batch_size if n is None else n
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"ask: n must be a positive integer, got {n!r}")
        if n > MAX_ASK:
            raise ValueError(f"ask: n = {n} is more than one call asks ({MAX_ASK}); ask in several calls")
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
                objects = self.strategy.propose(k, self._rng(), self)
                if len(objects) != k:
                    raise RuntimeError(f"{self.name} proposed {len(objects)} objects, {k} were asked for")
                for i, obj in enumerate(objects):
                    reason = self.domain.validate(obj)
                    if reason is not None:
                        raise RuntimeError(f"{self.name} proposed an invalid object at {i}: {reason}")
                keys = [self.domain.key(o) for o in objects]
                metadata = self.strategy.proposal_metadata(objects)
                trial_numbers = self._journal.add_running(
                    [self.domain.to_json(o) for o in objects], [_key_text(k) for k in keys], self._round, self.name,
                    metadata,
                )
                for key, number in zip(keys, trial_numbers):
                    self._pending[_key_text(key)].append(number)
                self._n_asked += k
                out.extend(objects)
            return out

    # --------------------------------------------------------------------------------- tell
    def tell(self, xs: Any, ys: Any, *, metadata: Any = None) -> None:
        """Record results: one object and value, or aligned sequences.

        A told object is matched to a pending trial of the same object (in ask order); one never
        asked is recorded as an external observation. NaN, inf or None marks the trial FAIL with
        a warning. ``metadata`` (a JSON mapping per object, or one for a single object) is merged
        into each trial's (how long the call took, why it failed). Bad input raises ValueError
        naming the index and writes nothing. All of the call is committed to the journal before
        this returns.
        """
        single = self.domain.is_single(xs)
        xs, ys = self._as_batch(xs, ys)
        extra = _as_metadata([metadata] if single and metadata is not None else metadata, len(xs))
        values: list[float | None] = []
        for i, (x, y) in enumerate(zip(xs, ys)):
            reason = self.domain.validate(x)
            if reason is not None:
                raise ValueError(f"tell: object {i} is invalid for the {self.domain.name} domain: {reason}")
            values.append(_as_value(i, y))
        with self._lock:
            taken: dict[str, int] = defaultdict(int)
            updates: list[TrialUpdate] = []
            for x, v, meta in zip(xs, values, extra):
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
                        metadata={**meta, "told_value": repr(v)} if failed else meta,
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
        for what, v in (("objects", xs), ("values", ys)):
            if isinstance(v, (Mapping, set, frozenset)):
                raise ValueError(f"tell: {what} given as a {type(v).__name__}; pass a sequence in ask order")
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
            # a strategy with nothing to learn is not handed the whole journal every round
            learns = type(self.strategy).update is not Strategy.update
            trials = self.completed_trials() if learns else []
        # catch up on all complete rounds at once (e.g. after many external tells), one update
        if learns:
            self.strategy.update(self, trials)
        new_round = n_told // self.round_size
        self._write_checkpoint(new_round)
        with self._lock:
            self._round = new_round
            self._journal.set_meta("round", new_round)
        self._prune_checkpoints(new_round)

    def _has_checkpoints(self) -> bool:
        return self.checkpoint_dir is not None and self.strategy.checkpointed

    def _round_dir(self, round: int) -> Path:
        return self.checkpoint_dir / f"round-{round:05d}"

    def _write_checkpoint(self, round: int) -> None:
        if not self._has_checkpoints():
            return
        final, tmp = self._round_dir(round), self._round_dir(round).with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.strategy.save(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)

    def _prune_checkpoints(self, keep: int) -> None:
        if self._has_checkpoints():
            for old in self.checkpoint_dir.glob("round-*"):
                if old.name != self._round_dir(keep).name:
                    shutil.rmtree(old, ignore_errors=True)

    # ------------------------------------------------------------------------------- queries
    def score(self, value: float) -> float:
        """The told value in the maximize orientation (:func:`oriented`)."""
        return oriented(value, self.direction)

    def completed_trials(self) -> list[Trial]:
        """COMPLETE trials only: FAIL trials never reach a model."""
        return self._journal.trials([TrialState.COMPLETE])

    def get_trials(self, states: Sequence[TrialState] | None = None) -> list[Trial]:
        """Trials in number order, optionally only those in ``states``."""
        return self._journal.trials(None if states is None else list(states))

    def pending_keys(self) -> list[str]:
        """Keys of the trials asked and not yet told (this process's and those left by a crash)."""
        with self._lock:
            return [k for k, q in self._pending.items() for _ in q]

    def record_run(self, info: dict[str, Any]) -> None:
        """Store what a runner knows of this study (task, oracle, budget) beside its trials; the
        reports read it back."""
        with self._lock:
            self._journal.set_meta("run", info)

    def best(self, k: int = 1) -> list[tuple[Any, float]]:
        """The ``k`` best distinct objects told so far, with their values, best first."""
        top: dict[str, tuple[float, int]] = {}  # key -> (score, number), ranked without parsing objects
        for number, key, value in self._journal.completed_values():
            score = self.score(value)
            if key not in top or score > top[key][0]:
                top[key] = (score, number)
        ranked = heapq.nlargest(k, top.values(), key=lambda sn: sn[0])
        return [(self.domain.from_json(t.object), t.value) for t in self._journal.trials_numbered([n for _, n in ranked])]

    def best_frame(self, k: int = 12, render: bool = True) -> pd.DataFrame:
        """The ``k`` best distinct objects as a DataFrame (``rank``, ``value``, ``key``, ``object``
        and, where the domain draws, ``picture``: each object drawn by the domain), for a
        notebook: Jupyter shows the pictures in the table (``to_html(escape=False)``)."""
        from bbo.bench.html_report import picture_html

        rows = [{"rank": i + 1, "value": value, "key": self.domain.key(obj), "object": obj}
                for i, (obj, value) in enumerate(self.best(k))]
        frame = PictureFrame(rows, columns=["rank", "value", "key", "object"])
        if render and rows and self.domain.supports("render"):
            frame["picture"] = [picture_html(self.domain, [r["object"]], [f"{r['value']:.4g}"], f"rank {r['rank']}")
                                for r in rows]
        return frame

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
    try:
        stored = journal.get_meta("optimizer")
    finally:
        journal.close()
    if not (isinstance(stored, dict) and isinstance(stored.get("name"), str) and isinstance(stored.get("settings"), dict)):
        raise JournalError(f"{path}: a journal without a readable optimizer record")
    _import_builtin_optimizers()
    if stored["name"] not in OPTIMIZERS:
        raise ValueError(f"{path}: unknown optimizer {stored['name']!r}; known: {', '.join(sorted(OPTIMIZERS))}")
    cls = OPTIMIZERS[stored["name"]]
    legacy = {k: v for k, v in cls.strategy_class.legacy_settings.items() if k not in stored["settings"]}
    return cls(**legacy, **stored["settings"], storage=path)


def _validated(model: type[BaseModel], values: dict[str, Any], who: str) -> BaseModel:
    """``values`` checked against ``model``; a ValueError naming each bad setting otherwise."""
    try:
        return model.model_validate(values)
    except ValidationError as err:
        message = validation_message(err, lambda _: sorted(model.model_fields), unknown="unknown setting")
        raise ValueError(f"{who}: {message}") from None


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


def _as_metadata(metadata: Any, n: int) -> list[dict[str, Any]]:
    """``tell``'s metadata as one JSON mapping per object, or a ValueError naming the bad one."""
    if metadata is None:
        return [{} for _ in range(n)]
    if isinstance(metadata, Mapping) or not _is_sequence(metadata):
        raise ValueError(f"tell: metadata must be a sequence of mappings, one per object, got {type(metadata).__name__}")
    metadata = list(metadata)
    if len(metadata) != n:
        raise ValueError(f"tell: {n} objects but {len(metadata)} metadata mappings")
    for i, meta in enumerate(metadata):
        if not isinstance(meta, Mapping) or not all(isinstance(k, str) for k in meta):
            raise ValueError(f"tell: metadata {i} is not a mapping with string keys")
        try:
            json.dumps(meta, allow_nan=True)
        except (TypeError, ValueError) as err:
            raise ValueError(f"tell: metadata {i} cannot be stored as JSON: {err}") from None
    return [dict(m) for m in metadata]


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


class PictureFrame(pd.DataFrame):
    """A DataFrame whose notebook display keeps the HTML of its ``picture`` column (inline PNG
    ``<img>`` tags) instead of escaping it; everything else is a plain DataFrame."""

    @property
    def _constructor(self):
        return PictureFrame

    def _repr_html_(self) -> str:
        import html

        shown = pd.DataFrame(self).copy()
        for column in shown.columns:
            if column != "picture":
                shown[column] = [html.escape(str(v)) for v in shown[column]]
        return shown.to_html(escape=False, index=False)
