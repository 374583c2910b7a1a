"""The strategy side of an optimizer: what to ask next and how to learn from what was told.

An :class:`~bbo.optimizer.Optimizer` is a study (journal, ask/tell contract, resume, round
checkpoints) driving one :class:`Strategy`, the way Optuna's ``Study`` drives a ``Sampler``. A
strategy sees the study only through its public, read-only view (``trials``,
``completed_trials()``, ``score``, ``pending_keys()``, ``domain``, ``seed``, ``round``) and never
writes the journal, so a new optimizer is a strategy plus its :class:`Settings`:

.. code-block:: python

    class MySettings(Settings):
        temperature: float = Field(1.0, gt=0)

    class MyStrategy(Strategy):
        name = "mine"
        Settings = MySettings

        def propose(self, n, rng, study):
            ...

    @register_optimizer
    class MyOptimizer(Optimizer):
        name = "mine"
        strategy_class = MyStrategy

Settings are pydantic models, so every setting is validated (with its name in the error) before
any file is touched, and shared settings are inherited instead of repeated in each signature.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:
    from bbo.optimizer import Optimizer
    from bbo.study import Trial


class Settings(BaseModel):
    """A strategy's settings: strict about unknown keys and types (a YAML ``true`` or ``2.7`` is
    not an integer), stored in the journal as JSON."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True, protected_namespaces=())


def validation_message(err: ValidationError, allowed: Callable[[tuple], list[str]],
                       unknown: str = "unknown key") -> str:
    """A pydantic error as one readable line per problem, each naming the field: what configs and
    optimizer constructors report. ``allowed(parent_loc)`` lists the keys valid where an unknown
    key was found."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"{unknown}; allowed: {', '.join(allowed(e['loc'][:-1]))}"
        if e["type"] == "missing":
            msg = "required field is missing"
        got = f" (got {e['input']!r})" if e["type"] not in ("missing", "value_error", "extra_forbidden") else ""
        parts.append(f"{loc}: {msg}{got}" if loc else f"{msg}{got}")
    return "; ".join(parts)


def _known_prior(prior: str | Path) -> str | Path:
    from bbo.diffusion.checkpoint import check_prior

    return check_prior(prior)


#: a setting naming a diffusion prior (shipped, registered, or a directory), checked on validation
PriorSetting = Annotated[str | Path, AfterValidator(_known_prior)]


def stored_prior(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as stored: a prior given as a directory becomes an absolute path, so that the
    study resumes from any working directory."""
    prior = settings.get("prior")
    if prior is not None and Path(prior).exists():
        settings["prior"] = str(Path(prior).resolve())
    return settings


class Strategy(ABC):
    """Proposes objects and learns from told results; its state beyond the journal is saved
    in the round checkpoint (``save``/``load``) when ``checkpointed`` is True.

    Attributes a subclass declares:
        name: its registry name (the optimizer's ``kind``).
        Settings: its :class:`Settings` model.
        runtime_settings: settings that say where to run, not what is studied (``device``): not
            stored in the journal, not compared on resume.
        legacy_settings: the values a journal written before a setting existed is resumed with.
        default_batch_size: the optimizer's ``batch_size`` when none is given.
        default_domain: the domain spec when neither the caller nor :meth:`natural_domain` gives one.
    """

    name: ClassVar[str] = "strategy"
    Settings: ClassVar[type[Settings]] = Settings
    runtime_settings: ClassVar[tuple[str, ...]] = ()
    #: settings added after journals were written: a stored record without one is read with this
    #: value (the behaviour before it existed), so older studies resume as they ran; a missing
    #: setting not listed here is read with its current default
    legacy_settings: ClassVar[dict[str, Any]] = {}
    checkpointed: ClassVar[bool] = False
    default_batch_size: ClassVar[int] = 64
    default_domain: ClassVar[str | dict[str, Any] | None] = None

    def __init__(self, settings: Settings, study: Optimizer) -> None:
        self.settings = settings
        self.study = study

    def natural_domain(self) -> str | dict[str, Any] | None:
        """The domain this strategy generates in (a prior's), or None when any is fine."""
        return None

    def check_domain(self, domain: Any) -> None:
        """Raise ValueError if this strategy cannot work in ``domain`` (called once, before the
        journal is opened)."""

    @abstractmethod
    def propose(self, n: int, rng: np.random.Generator, study: Optimizer) -> list[Any]:
        """``n`` new valid objects of the study's domain, drawn from ``rng`` only."""

    def proposal_metadata(self, objects: list[Any]) -> list[dict[str, Any]] | None:
        """JSON metadata stored with each object of the last :meth:`propose` in its trial (what
        produced it, e.g. a diffusion sample's initial noise), in the same transaction as the ask,
        so a resumed study reads it back from the journal. Default: none."""
        return None

    def update(self, study: Optimizer, trials: list[Trial]) -> None:
        """The round-end update on the COMPLETE ``trials`` told when the round ended (scores in
        ``study.score``). Default: nothing to learn."""

    def save(self, directory: Path) -> None:
        """Write the state after an update (safetensors, JSON) into ``directory``."""

    def load(self, directory: Path) -> None:
        """Restore what :meth:`save` wrote."""

    def config(self) -> dict[str, Any]:
        """The stored settings (JSON; runtime settings left out)."""
        data = self.settings.model_dump(mode="json")
        return {k: v for k, v in data.items() if k not in self.runtime_settings}
