"""The ``Domain`` interface: what an object is, how it is identified, and how it is stored.

Optimizers see objects only through their domain, so a new kind of object (molecules, images,
layouts, vectors) is one new module plus a registry entry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import Any


class Domain(ABC):
    """Objects of one kind. Subclasses define validity, identity and JSON storage."""

    name: str = "domain"

    @abstractmethod
    def validate(self, obj: Any) -> str | None:
        """Why ``obj`` is not a valid object of this domain, or None when it is."""

    @abstractmethod
    def key(self, obj: Any) -> Hashable:
        """Canonical identity of a valid object (two spellings of one object share a key)."""

    @abstractmethod
    def is_single(self, x: Any) -> bool:
        """True if ``x`` is one object rather than a sequence of objects (for ``tell``)."""

    def to_json(self, obj: Any) -> Any:
        """A JSON-serializable form of a valid object, for the journal."""
        return obj

    def from_json(self, data: Any) -> Any:
        return data

    def config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this domain with :func:`bbo.domains.get_domain`."""
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"
