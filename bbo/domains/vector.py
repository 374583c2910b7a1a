"""Plain vectors in R^d: for continuous problems and for tests with known answers."""

from __future__ import annotations

from typing import Any

import numpy as np

from bbo.domains import register_domain
from bbo.domains.base import Domain, array_key


@register_domain
class VectorDomain(Domain):
    """Vectors of ``dim`` reals; identity is the exact float64 value (a digest of its bytes), so
    vectors that differ anywhere, by however little, are different objects."""

    name = "vector"

    def __init__(self, dim: int) -> None:
        if int(dim) < 1:
            raise ValueError(f"vector domain: dim must be >= 1, got {dim}")
        self.dim = int(dim)

    def validate(self, obj: Any) -> str | None:
        try:
            arr = self._array(obj)
        except (TypeError, ValueError):
            return f"expected a vector of {self.dim} numbers, got {type(obj).__name__}"
        if arr.shape != (self.dim,):
            return f"expected shape ({self.dim},), got {arr.shape}"
        if not np.all(np.isfinite(arr)):
            return "vector has non-finite entries"
        return None

    def _array(self, obj: Any) -> np.ndarray:
        arr = np.asarray(obj, dtype=np.float64)
        return arr.reshape(1) if self.dim == 1 and arr.ndim == 0 else arr  # a number is a 1-d vector

    def key(self, obj: Any) -> str:
        return array_key(self._array(obj))

    def sample_reference(self, n: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Standard normal draws: the reference of a space with no data of its own."""
        return list(rng.standard_normal((n, self.dim)))

    def is_single(self, x: Any) -> bool:
        """One vector: an array of shape ``(dim,)``, a list of ``dim`` numbers, or for ``dim == 1`` a
        bare number. For ``dim == 1`` a plain list of numbers is a batch."""
        if np.isscalar(x) or getattr(x, "ndim", None) == 0:
            return self.dim == 1
        if getattr(x, "shape", None) == (self.dim,):  # an array (what ask returns) is unambiguous
            return True
        arr = np.asarray(x, dtype=object)
        return arr.ndim == 1 and len(arr) == self.dim and all(np.isscalar(v) for v in arr) and self.dim > 1

    def to_json(self, obj: Any) -> list[float]:
        return [float(v) for v in self._array(obj)]

    def from_json(self, data: Any) -> np.ndarray:
        return np.asarray(data, dtype=float)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim}
