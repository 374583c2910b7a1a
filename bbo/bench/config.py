"""The YAML benchmark schema, validated by pydantic with errors that name the field.

A config that names a factory (``"package.module:factory"``) is code, like a Python script: the
module is imported and the factory called. So such a module must be listed under ``plugins:`` (or
passed with ``bbo run --allow-module``); nothing else is imported, and a factory must be defined in
its module (``os:system`` is refused even with ``plugins: [os]``).

```yaml
name: molecule                      # run name; default output directory runs/<name>
plugins: []                         # modules whose factories the config may call (trusted code)
tasks: [pmo/osimertinib_mpo]        # oracle names, or {name: similarity, target: "CCO"}
budget: 300                         # oracle calls per (task, optimizer, seed)
seed: 0
optimizers:                         # each: kind + that optimizer's own settings
  - {kind: random, batch_size: 100}
executor: {kind: local, n_workers: 2, timeout: 600}  # where oracle calls run (see ExecutorSpec)
```
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator, model_validator

from bbo.optimizer import OPTIMIZERS, _import_builtin_optimizers
from bbo.strategy import validation_message


class ConfigError(ValueError):
    """A config problem, phrased as one readable line naming the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: a label is one path component of the run directory: no separators, no "." or ".."
SAFE_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=+-]{0,99}")
#: YAML documents larger than this many nodes, aliases expanded, are refused (alias bombs)
MAX_YAML_NODES = 100_000
MAX_YAML_BYTES = 1_000_000


def _safe_label(label: str | None) -> str | None:
    if label is not None and (not SAFE_LABEL.fullmatch(label) or set(label) == {"."}):
        raise ValueError(f"label {label!r} must be one path component: letters, digits and _ . = + -, "
                         f"starting with a letter or digit, at most 100 characters")
    return label


class TaskSpec(_Strict):
    """One oracle: a registry name (or ``package.module:factory``) and its keyword arguments."""

    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None

    @field_validator("label")
    @classmethod
    def _label_is_a_path_component(cls, label: str | None) -> str | None:
        return _safe_label(label)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from oracles.base import is_registered, oracle_names

        if ":" not in name and not is_registered(name):
            raise ValueError(f"unknown oracle {name!r}; allowed: {', '.join(oracle_names())} or 'package.module:factory'")
        return name

    @property
    def slug(self) -> str:
        """The task's name in paths and tables: ``label``, or the name with its arguments
        (a short hash of them when they are long)."""
        if self.label:
            return self.label
        extra = "-".join(f"{k}={v}" for k, v in sorted(self.kwargs.items()))
        if len(extra) > 40:
            extra = hashlib.sha1(json.dumps(self.kwargs, sort_keys=True).encode()).hexdigest()[:10]
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", self.name + (f"-{extra}" if extra else ""))


class OptimizerSpec(BaseModel):
    """``kind`` picks a registered optimizer; every other key is one of its constructor settings."""

    model_config = ConfigDict(extra="allow")
    kind: str
    label: str | None = None

    @field_validator("label")
    @classmethod
    def _label_is_a_path_component(cls, label: str | None) -> str | None:
        return _safe_label(label)

    @model_validator(mode="after")
    def _settings_match_constructor(self) -> OptimizerSpec:
        _import_builtin_optimizers()
        if self.kind not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.kind!r}; allowed: {', '.join(sorted(OPTIMIZERS))}")
        model = _settings_model(self.kind)
        allowed = set(model.model_fields)
        for key in self.model_extra or {}:
            if key not in allowed:
                raise ValueError(
                    f"unknown setting {key!r} for optimizer {self.kind!r}; allowed: {', '.join(sorted(allowed))}"
                )
        model.model_validate(self.model_extra or {})
        return self

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def name(self) -> str:
        return self.label or self.kind


def _settings_model(kind: str) -> type[BaseModel]:
    """The optimizer's own strict pydantic model of its settings (:meth:`Optimizer.settings_model`)."""
    return OPTIMIZERS[kind].settings_model()


class ExecutorSpec(_Strict):
    """Where and how oracle calls run (:mod:`bbo.bench.executors`).

    ``local``: a pool of ``n_workers`` processes on this machine (``0``: in the driver itself, for
    oracles that take microseconds). ``dask``: the scheduler at ``address``, or a ``LocalCluster``
    of ``n_workers`` that bbo starts and stops. ``max_in_flight`` calls run at once (default: the
    executor's workers); a call past ``timeout`` seconds is abandoned and told FAIL; a call whose
    worker died is resubmitted ``retries`` times, then told FAIL. ``asynchronous`` asks for new
    objects as soon as a slot frees instead of when the whole batch is told."""

    kind: Literal["local", "dask"] = "local"
    n_workers: StrictInt = Field(1, ge=0, le=1024, validation_alias=AliasChoices("n_workers", "n_jobs"))
    address: str | None = Field(None, min_length=1)
    max_in_flight: StrictInt | None = Field(None, ge=1, le=100_000)
    timeout: float | None = Field(None, gt=0, le=7 * 24 * 3600, description="seconds per call")
    retries: StrictInt = Field(1, ge=0, le=10)
    threads_per_worker: StrictInt = Field(1, ge=1, le=256)
    asynchronous: bool = False
    connect_timeout: float = Field(10.0, gt=0, le=600)

    @model_validator(mode="after")
    def _consistent(self) -> ExecutorSpec:
        if self.address is not None and self.kind != "dask":
            raise ValueError(f"address is a Dask scheduler's; it needs kind: dask, not {self.kind!r}")
        if self.kind == "dask" and self.address is None and self.n_workers < 1:
            raise ValueError("n_workers: a local Dask cluster needs at least 1 worker")
        if self.kind == "local" and self.n_workers == 0 and self.timeout is not None:
            raise ValueError("timeout: calls in the driver (n_workers: 0) cannot be timed out; "
                             "give n_workers >= 1")
        return self


class BenchmarkConfig(_Strict):
    name: str = "benchmark"
    plugins: list[str] = Field(default_factory=list)
    tasks: list[TaskSpec] = Field(min_length=1)
    budget: StrictInt = Field(gt=0, le=10_000_000)
    seed: StrictInt = Field(0, ge=0)
    optimizers: list[OptimizerSpec] = Field(min_length=1)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)

    @field_validator("tasks", mode="before")
    @classmethod
    def _task_shorthand(cls, tasks: Any) -> Any:
        if isinstance(tasks, (str, dict)):
            tasks = [tasks]
        if isinstance(tasks, list):
            out = []
            for t in tasks:
                if isinstance(t, str):
                    out.append({"name": t})
                elif isinstance(t, dict) and "kwargs" not in t:
                    fields = {k: t[k] for k in ("name", "label") if k in t}
                    out.append({**fields, "kwargs": {k: v for k, v in t.items() if k not in fields}})
                else:
                    out.append(t)
            return out
        return tasks

    @field_validator("name")
    @classmethod
    def _name_is_a_path_component(cls, name: str) -> str:
        return _safe_label(name)

    @model_validator(mode="after")
    def _factories_are_trusted(self) -> BenchmarkConfig:
        for i, task in enumerate(self.tasks):
            if ":" in task.name and not module_allowed(task.name.partition(":")[0], self.plugins):
                module = task.name.partition(":")[0]
                raise ValueError(
                    f"tasks.{i}.name: {task.name!r} is not a registered oracle and its module {module!r} is not "
                    f"under plugins:; a config naming a factory runs that code, so list the module there "
                    f"(or pass --allow-module {module}) only if you trust it")
        return self

    @model_validator(mode="after")
    def _distinct_labels(self) -> BenchmarkConfig:
        names = [o.name for o in self.optimizers]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"optimizers: names {sorted(dup)} repeat; give each a distinct 'label'")
        return self


def module_allowed(module: str, plugins: list[str]) -> bool:
    """Whether ``module`` is one of ``plugins`` or inside one of their packages."""
    return any(module == p or module.startswith(p + ".") for p in plugins)


def load_config(path: str | Path, allow_modules: tuple[str, ...] = (), **overrides: Any) -> BenchmarkConfig:
    """Read and validate a YAML config (safe YAML, bounded in size); ``overrides`` (budget, seed)
    replace top-level fields; ``allow_modules`` join its ``plugins``."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a YAML config file")
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read: {err}") from None
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: {len(text):,} bytes is larger than a config may be ({MAX_YAML_BYTES:,})")
    try:
        data = _bounded_yaml(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}".replace("\n", " ")) from None
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    data.update({k: v for k, v in overrides.items() if v is not None})
    if allow_modules:
        plugins = data.get("plugins") or []
        data["plugins"] = (list(plugins) if isinstance(plugins, list) else plugins) + list(allow_modules)
    return parse_config(data, source=str(path))


def _bounded_yaml(text: str) -> Any:
    """Safe YAML whose node tree, aliases expanded, has at most ``MAX_YAML_NODES`` nodes: a
    "billion laughs" document is refused before it is built."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}

        def size(n: yaml.Node) -> int:
            if id(n) in sizes:
                return sizes[id(n)]
            sizes[id(n)] = 1  # a recursive alias counts once while it is being sized
            if isinstance(n, yaml.SequenceNode):
                total = 1 + sum(size(c) for c in n.value)
            elif isinstance(n, yaml.MappingNode):
                total = 1 + sum(size(k) + size(v) for k, v in n.value)
            else:
                total = 1
            sizes[id(n)] = min(total, MAX_YAML_NODES + 1)
            return sizes[id(n)]

        if size(node) > MAX_YAML_NODES:
            raise ValueError(f"the document expands to more than {MAX_YAML_NODES:,} YAML nodes (aliases included)")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def parse_config(data: dict[str, Any], source: str = "config") -> BenchmarkConfig:
    """Validate a config mapping. Its ``plugins`` are imported first (they may register oracles,
    domains and priors that the rest of the config names)."""
    plugins = data.get("plugins") or []
    if isinstance(plugins, list):
        for module in plugins:
            if not isinstance(module, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", module):
                raise ConfigError(f"{source}: plugins: {module!r} is not a module name")
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise ConfigError(f"{source}: plugins: cannot import {module!r}: {err}") from None
    try:
        return BenchmarkConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {validation_message(err, _allowed_keys)}") from None


def _allowed_keys(parent: tuple) -> list[str]:
    model: type[BaseModel] = BenchmarkConfig
    if parent and parent[0] == "tasks":
        model = TaskSpec
    elif parent and parent[0] == "executor":
        model = ExecutorSpec
    return sorted(model.model_fields)
