"""The YAML benchmark schema, validated by pydantic with errors that name the field.

```yaml
name: molecule                      # run name; default output directory runs/<name>
tasks: [pmo/osimertinib_mpo]        # oracle names, or {name: similarity, target: "CCO"}
budget: 300                         # oracle calls per (task, optimizer, seed)
seed: 0
optimizers:                         # each: kind + that optimizer's own settings
  - {kind: random, batch_size: 100}
executor: {kind: local, n_jobs: 2}  # how the oracle is evaluated
```
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bbo.optimizer import OPTIMIZERS, _import_builtin_optimizers


class ConfigError(ValueError):
    """A config problem, phrased as one readable line naming the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskSpec(_Strict):
    """One oracle: a registry name (or ``package.module:factory``) and its keyword arguments."""

    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from oracles import oracle_names

        names = oracle_names()
        if name not in names and ":" not in name:
            raise ValueError(f"unknown oracle {name!r}; allowed: {', '.join(names)} or 'package.module:factory'")
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
    """How oracle calls run: in this process, the oracle scoring in ``n_jobs`` worker processes."""

    kind: Literal["local"] = "local"
    n_jobs: int = Field(1, ge=1)
    tell_every: int | None = Field(None, ge=1, description="tell results in chunks of this many calls")


class BenchmarkConfig(_Strict):
    name: str = "benchmark"
    tasks: list[TaskSpec] = Field(min_length=1)
    budget: int = Field(gt=0)
    seed: int = 0
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

    @model_validator(mode="after")
    def _distinct_labels(self) -> BenchmarkConfig:
        names = [o.name for o in self.optimizers]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"optimizers: names {sorted(dup)} repeat; give each a distinct 'label'")
        return self


def load_config(path: str | Path, **overrides: Any) -> BenchmarkConfig:
    """Read and validate a YAML config; ``overrides`` (budget, seed) replace top-level fields."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return parse_config(data, source=str(path))


def parse_config(data: dict[str, Any], source: str = "config") -> BenchmarkConfig:
    try:
        return BenchmarkConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_one_line(err)}") from None


def _allowed_keys(parent: tuple) -> list[str]:
    model: type[BaseModel] = BenchmarkConfig
    if parent and parent[0] == "tasks":
        model = TaskSpec
    elif parent and parent[0] == "executor":
        model = ExecutorSpec
    return sorted(model.model_fields)


def _one_line(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown key; allowed: {', '.join(_allowed_keys(e['loc'][:-1]))}"
        if e["type"] == "missing":
            msg = "required field is missing"
        got = f" (got {e['input']!r})" if e["type"] not in ("missing", "value_error", "extra_forbidden") else ""
        parts.append(f"{loc}: {msg}{got}" if loc else f"{msg}{got}")
    return "; ".join(parts)
