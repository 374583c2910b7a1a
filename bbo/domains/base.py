"""The ``Domain`` interface: the one owner of everything object-specific.

Optimizers, the fine-tuners, the runner and the reports see objects only through their domain:
validity, the identity key (used by the journal's matching, the oracle cache and every dedupe),
JSON storage, the reference distribution the ``random`` baseline draws from, naturalness metrics
and rendering for reports. A new kind of object is one package with a :class:`Domain` subclass
and a :func:`bbo.domains.register_domain` entry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from oracles.base import exact_key


class Domain(ABC):
    """Objects of one kind. Subclasses define validity, identity and JSON storage; the rest is
    optional and a generic caller asks :meth:`supports` before using it."""

    name: ClassVar[str] = "domain"
    #: ``"module:function"`` of a typer command that pretrains a prior (``bbo pretrain <name>``)
    pretrain_command: ClassVar[str | None] = None

    # ------------------------------------------------------------------------------ required
    @abstractmethod
    def validate(self, obj: Any) -> str | None:
        """Why ``obj`` is not a valid object of this domain, or None when it is."""

    @abstractmethod
    def key(self, obj: Any) -> str:
        """The identity of a valid object, as text: two spellings of one object share it, two
        different objects never do (canonical SMILES; a digest of an array's exact bytes)."""

    @abstractmethod
    def is_single(self, x: Any) -> bool:
        """True if ``x`` is one object rather than a sequence of objects (for ``tell``)."""

    # ------------------------------------------------------------------------------ storage
    def to_json(self, obj: Any) -> Any:
        """A JSON-serializable, lossless form of a valid object, for the journal."""
        return obj

    def from_json(self, data: Any) -> Any:
        return data

    def config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this domain with :func:`bbo.domains.get_domain`."""
        return {"name": self.name}

    # ----------------------------------------------------------------------------- optional
    def sample_reference(self, n: int, rng: np.random.Generator) -> list[Any]:
        """``n`` independent draws from the domain's reference distribution (its natural data:
        MOSES for molecules), seeded by ``rng``: what the ``random`` baseline asks."""
        raise NotImplementedError(f"the {self.name!r} domain has no reference distribution")

    def naturalness(self, objects: Sequence[Any], *, full: bool = False) -> dict[str, float]:
        """How natural and diverse ``objects`` are, as named figures (higher or lower is the
        metric's own convention). ``full`` adds the expensive ones (e.g. FCD for molecules)."""
        return {}

    def render(self, objects: Sequence[Any], path: str | Path, legends: Sequence[str] | None = None) -> Path:
        """Draw ``objects`` into one PNG at ``path`` (for reports); returns the path."""
        raise NotImplementedError(f"the {self.name!r} domain cannot render objects")

    def offspring(self, parents: Sequence[Any], n: int, rng: np.random.Generator, *, mutation_rate: float,
                  scores: Sequence[float] | None = None) -> list[Any]:
        """Up to ``n`` children of ``parents`` by the domain's variation operators (crossover and
        mutation), parents chosen in proportion to ``scores``: what the genetic algorithm breeds."""
        raise NotImplementedError(f"the {self.name!r} domain has no variation operators")

    def supports(self, method: str) -> bool:
        """Whether this domain implements an optional method (``"sample_reference"``, ``"render"``,
        ``"offspring"``, ``"naturalness"``)."""
        return getattr(type(self), method) is not getattr(Domain, method)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Domain) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.config().items())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def array_key(arr: np.ndarray) -> str:
    """A digest of an array's exact dtype, shape and bytes: the identity of numeric objects (the
    same as an oracle's default key, :func:`oracles.base.exact_key`)."""
    return exact_key(np.asarray(arr))


def selection_weights(scores: Sequence[float], n: int) -> np.ndarray:
    """Parent-selection probabilities of a genetic algorithm, proportional to the scores, shifted to be non-negative when some are
    negative (PMO's Graph GA uses its [0, 1] scores as they are, plus 1e-10)."""
    s = np.asarray(scores, dtype=float)
    if s.shape != (n,):
        raise ValueError(f"offspring: {s.size} scores for {n} parents")
    if not np.all(np.isfinite(s)):
        raise ValueError("offspring: scores must be finite")
    if s.min() < 0:
        s = s - s.min()
    s = s + 1e-10
    return s / s.sum()
