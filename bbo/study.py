"""Trials and the append-only trial journal.

Every asked object becomes a RUNNING trial; ``tell`` turns it COMPLETE or FAIL. The journal is
an SQLite database in WAL mode with ``synchronous=FULL``: a transaction that has returned is on
disk, so a process killed at any point loses nothing that was told. An optimizer holds its journal
exclusively (an advisory lock on ``<journal>.lock``, released by the OS even on SIGKILL): a second
writer, such as a resume started while the first process still runs, gets a clear error instead
of interleaving its trials with the first's. Readers (reports) never take the lock.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SCHEMA_VERSION = 1


class JournalInUseError(RuntimeError):
    """Another live process is writing the journal."""


class JournalError(ValueError):
    """A file that should be a journal is not a usable one (empty, truncated, garbage, or copied
    without its ``-wal`` file); the message names the file and what is wrong."""


class TrialState(str, Enum):
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"


class TrialSource(str, Enum):
    ASKED = "asked"  # proposed by the optimizer
    EXTERNAL = "external"  # told without being asked (warm start)


@dataclass
class Trial:
    number: int
    object: Any
    key: str
    state: TrialState
    source: TrialSource
    round: int
    optimizer: str
    created: float
    value: float | None = None
    completed: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrialUpdate:
    """What ``tell`` writes for one trial: an existing RUNNING one (``number``) or a new external one."""

    number: int | None
    object_json: Any
    key: str
    value: float | None
    state: TrialState
    round: int
    metadata: dict[str, Any] = field(default_factory=dict)


_CREATE = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    number    INTEGER PRIMARY KEY,
    object    TEXT NOT NULL,
    key       TEXT NOT NULL,
    state     TEXT NOT NULL,
    source    TEXT NOT NULL,
    round     INTEGER NOT NULL,
    optimizer TEXT NOT NULL,
    created   REAL NOT NULL,
    value     REAL,
    completed REAL,
    metadata  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS trials_state ON trials(state);
"""


class Journal:
    """The SQLite trial journal. ``path=None`` keeps it in memory (nothing persists)."""

    def __init__(self, path: str | Path | None = None, *, exclusive: bool = False) -> None:
        self.path = None if path is None else Path(path)
        existed = self.path is not None and self.path.exists()
        if existed and self.path.is_dir():
            raise JournalError(f"{self.path}: is a directory, not a journal")
        if existed and self.path.stat().st_size == 0:
            raise JournalError(f"{self.path}: the file is empty (0 bytes), not a journal; remove it or use another path")
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer_lock = _hold_writer_lock(self.path) if exclusive and self.path is not None else None
        self._lock = threading.RLock()
        self._db = None
        try:
            self._db = sqlite3.connect(
                ":memory:" if self.path is None else str(self.path), check_same_thread=False, isolation_level=None
            )
            if existed and not self._db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
                raise JournalError(f"{self.path}: holds no journal (an SQLite file without its tables: truncated, or "
                                   f"copied without its -wal file); it is not reused")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_CREATE)
            version = self.get_meta("schema_version")
            if version is None:
                if existed:
                    raise JournalError(f"{self.path}: holds no journal record (truncated, or copied without its "
                                       f"-wal file); it is not reused")
                self.set_meta("schema_version", SCHEMA_VERSION)
            elif version != SCHEMA_VERSION:
                raise JournalError(f"{self.path}: journal schema {version} is not supported (expected {SCHEMA_VERSION})")
        except sqlite3.DatabaseError as err:
            self.close()
            raise JournalError(f"{self.path}: not a readable journal ({err})") from None
        except BaseException:
            self.close()  # an unusable file keeps no lock
            raise

    # ---------------------------------------------------------------------------------- meta
    def get_meta(self, name: str, default: Any = None) -> Any:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
            return default if row is None else json.loads(row[0])
        except (sqlite3.DatabaseError, json.JSONDecodeError, TypeError) as err:
            raise JournalError(f"{self.path}: its {name!r} record is unreadable ({err})") from None

    def set_meta(self, name: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, json.dumps(value)),
            )

    # -------------------------------------------------------------------------------- trials
    def add_running(
        self, objects_json: Sequence[Any], keys: Sequence[str], round: int, optimizer: str,
        metadata: Sequence[dict[str, Any]] | None = None,
    ) -> list[int]:
        """Record asked objects as RUNNING trials in one transaction; returns their numbers."""
        now = time.time()
        metadata = metadata or [{}] * len(objects_json)
        with self._lock, self._transaction() as db:
            start = db.execute("SELECT COALESCE(MAX(number), -1) + 1 FROM trials").fetchone()[0]
            rows = [
                (start + i, json.dumps(o), k, TrialState.RUNNING.value, TrialSource.ASKED.value, round, optimizer,
                 now, json.dumps(m))
                for i, (o, k, m) in enumerate(zip(objects_json, keys, metadata))
            ]
            db.executemany(
                "INSERT INTO trials(number, object, key, state, source, round, optimizer, created, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return [r[0] for r in rows]

    def finish(self, updates: Sequence[TrialUpdate], optimizer: str) -> list[int]:
        """Write a whole ``tell`` in one transaction: all of it is on disk on return, or none of it."""
        now = time.time()
        numbers: list[int] = []
        with self._lock, self._transaction() as db:
            next_number = db.execute("SELECT COALESCE(MAX(number), -1) + 1 FROM trials").fetchone()[0]
            for u in updates:
                if u.number is None:
                    db.execute(
                        "INSERT INTO trials(number, object, key, state, source, round, optimizer, created, value, "
                        "completed, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (next_number, json.dumps(u.object_json), u.key, u.state.value, TrialSource.EXTERNAL.value,
                         u.round, optimizer, now, u.value, now, json.dumps(u.metadata)),
                    )
                    numbers.append(next_number)
                    next_number += 1
                else:
                    merged = {**self._metadata(u.number), **u.metadata}
                    cur = db.execute(
                        "UPDATE trials SET state = ?, value = ?, completed = ?, metadata = ? "
                        "WHERE number = ? AND state = ?",
                        (u.state.value, u.value, now, json.dumps(merged), u.number, TrialState.RUNNING.value),
                    )
                    if cur.rowcount != 1:
                        raise RuntimeError(f"trial {u.number} is not RUNNING; the journal was changed concurrently")
                    numbers.append(u.number)
        return numbers

    _COLUMNS = "number, object, key, state, source, round, optimizer, created, value, completed, metadata"

    def trials(self, states: Iterable[TrialState] | None = None) -> list[Trial]:
        query = f"SELECT {self._COLUMNS} FROM trials"
        args: tuple = ()
        if states is not None:
            states = [TrialState(s).value for s in states]
            query += f" WHERE state IN ({','.join('?' * len(states))})"
            args = tuple(states)
        return self._read(query + " ORDER BY number", args)

    def trials_numbered(self, numbers: Sequence[int]) -> list[Trial]:
        """The trials with these numbers, in that order (a few out of many, without reading all)."""
        if not numbers:
            return []
        found = {t.number: t for t in self._read(
            f"SELECT {self._COLUMNS} FROM trials WHERE number IN ({','.join('?' * len(numbers))})", tuple(numbers))}
        return [found[n] for n in numbers]

    def completed_values(self) -> list[tuple[int, str, float]]:
        """``(number, key, value)`` of every COMPLETE trial: what ranking needs, without parsing objects."""
        with self._lock:
            return self._db.execute("SELECT number, key, value FROM trials WHERE state = ? ORDER BY number",
                                    (TrialState.COMPLETE.value,)).fetchall()

    def _read(self, query: str, args: tuple) -> list[Trial]:
        try:
            with self._lock:
                rows = self._db.execute(query, args).fetchall()
            return [
                Trial(number=r[0], object=json.loads(r[1]), key=r[2], state=TrialState(r[3]), source=TrialSource(r[4]),
                      round=r[5], optimizer=r[6], created=r[7], value=r[8], completed=r[9], metadata=json.loads(r[10]))
                for r in rows
            ]
        except (sqlite3.DatabaseError, json.JSONDecodeError, ValueError, TypeError) as err:
            raise JournalError(f"{self.path}: its trials are unreadable ({err})") from None

    def count(self, *states: TrialState) -> int:
        query = "SELECT COUNT(*) FROM trials"
        if states:
            query += f" WHERE state IN ({','.join('?' * len(states))})"
        with self._lock:
            return self._db.execute(query, tuple(s.value for s in states)).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
            if self._writer_lock is not None:
                self._writer_lock.close()
                self._writer_lock = None

    def _metadata(self, number: int) -> dict[str, Any]:
        row = self._db.execute("SELECT metadata FROM trials WHERE number = ?", (number,)).fetchone()
        return {} if row is None else json.loads(row[0])

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, exc, tb) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _transaction(self) -> _Tx:
        return Journal._Tx(self._db)


def check_journal(path: str | Path, *, charged_once: bool = False) -> list[str]:
    """What is wrong with the journal at ``path`` (an empty list when nothing is): SQLite's own
    integrity check, trial numbers without gaps, states and values that agree (COMPLETE has a
    finite value, FAIL and RUNNING none), metadata that parses. With ``charged_once`` (a journal
    written by ``bbo run``), also that no object was paid for twice: apart from answers from the
    cache (``cached`` in their metadata), no key is told twice."""
    problems: list[str] = []
    journal = Journal(path)
    try:
        status = journal._db.execute("PRAGMA integrity_check").fetchone()[0]
        if status != "ok":
            problems.append(f"SQLite integrity check: {status}")
        rows = journal._db.execute("SELECT number, key, state, source, value, completed, metadata FROM trials "
                                   "ORDER BY number").fetchall()
    finally:
        journal.close()
    paid: dict[str, int] = {}
    for i, (number, key, state, source, value, completed, metadata) in enumerate(rows):
        if number != i:
            problems.append(f"trial numbers jump from {i - 1} to {number}")
            break
        if state not in TrialState._value2member_map_ or source not in TrialSource._value2member_map_:
            problems.append(f"trial {number}: unknown state {state!r} or source {source!r}")
            continue
        if state == "COMPLETE" and (value is None or not math.isfinite(value)):
            problems.append(f"trial {number}: COMPLETE without a finite value ({value!r})")
        if state in ("FAIL", "RUNNING") and value is not None:
            problems.append(f"trial {number}: {state} with a value ({value!r})")
        if state == "RUNNING" and completed is not None:
            problems.append(f"trial {number}: RUNNING with a completion time")
        try:
            meta = json.loads(metadata)
        except json.JSONDecodeError:
            problems.append(f"trial {number}: unreadable metadata")
            continue
        if charged_once and state != "RUNNING" and not meta.get("cached"):
            if key in paid:
                problems.append(f"trial {number}: object {key} was paid for again (first in trial {paid[key]})")
            paid.setdefault(key, number)
    return problems


def trials_dataframe(trials: Sequence[Trial], domain_from_json=None) -> pd.DataFrame:
    """One row per trial, as Optuna's ``trials_dataframe``; metadata keys become ``meta_<key>``
    columns. Built column by column (100k trials in about a second, not row by row)."""
    columns = ["number", "object", "key", "value", "state", "source", "round", "optimizer", "created", "completed"]
    if not trials:
        return pd.DataFrame(columns=columns)
    objects = np.empty(len(trials), dtype=object)  # an object per cell, even an array
    objects[:] = [domain_from_json(t.object) if domain_from_json else t.object for t in trials]
    frame = pd.DataFrame({
        "number": [t.number for t in trials],
        "object": objects,
        "key": [t.key for t in trials],
        "value": [math.nan if t.value is None else t.value for t in trials],
        "state": [t.state.value for t in trials],
        "source": [t.source.value for t in trials],
        "round": [t.round for t in trials],
        "optimizer": [t.optimizer for t in trials],
        "created": pd.to_datetime([t.created for t in trials], unit="s"),
        "completed": pd.to_datetime([math.nan if t.completed is None else t.completed for t in trials], unit="s"),
    })
    meta = pd.DataFrame.from_records([t.metadata for t in trials])
    if meta.shape[1]:
        frame = pd.concat([frame, meta.add_prefix("meta_")], axis=1)
    return frame


class _WriterLock:
    """A process's hold on a journal's writer lock, shared by its journals on that file."""

    def __init__(self, key: str) -> None:
        self.key = key

    def close(self) -> None:
        with _HELD_LOCK:
            handle, count = _HELD[self.key]
            if count > 1:
                _HELD[self.key] = (handle, count - 1)
            else:
                del _HELD[self.key]
                handle.close()  # closing the file releases the lock


_HELD: dict[str, tuple[Any, int]] = {}  # lock file -> (open handle, journals of this process using it)
_HELD_LOCK = threading.Lock()


def _hold_writer_lock(path: Path) -> _WriterLock | None:
    """Take the journal's writer lock (``<journal>.lock``, holding the writer's pid) or raise
    :class:`JournalInUseError` naming the holder. The lock keeps other processes out; journals of
    one process share it (re-running a notebook cell, ``save`` then ``load_optimizer``). Where
    ``fcntl`` is missing (Windows) nothing is locked."""
    try:
        import fcntl
    except ImportError:
        return None
    lock_path = path.with_name(path.name + ".lock")
    key = str(lock_path.resolve())
    with _HELD_LOCK:
        if key in _HELD:
            handle, count = _HELD[key]
            _HELD[key] = (handle, count + 1)
            return _WriterLock(key)
        handle = open(lock_path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise JournalInUseError(
                f"{path} is being written by another process (pid {holder}): stop it or let it finish "
                f"before resuming") from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        _HELD[key] = (handle, 1)
        return _WriterLock(key)
