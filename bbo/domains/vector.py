"""Plain vectors in R^d: for continuous problems and for tests with known answers."""

from __future__ import annotations

from typing import Any

import numpy as np

from bbo.domains.base import Domain


class VectorDomain(Domain):
    name = "vector"

    def __init__(self, dim: int) -> None:
        if int(dim) < 1:
            raise ValueError(f"vector domain: dim must be >= 1, got {dim}")
        self.dim = int(dim)

    def validate(self, obj: Any) -> str | None:
        try:
            arr = np.asarray(obj, dtype=float)
        except (TypeError, ValueError):
            return f"expected a vector of {self.dim} numbers, got {type(obj).__name__}"
        if arr.shape != (self.dim,):
            return f"expected shape ({self.dim},), got {arr.shape}"
        if not np.all(np.isfinite(arr)):
            return "vector has non-finite entries"
        return None

    def key(self, obj: Any) -> bytes:
        return np.asarray(obj, dtype=np.float64).tobytes()

    def is_single(self, x: Any) -> bool:
        arr = np.asarray(x, dtype=object)
        return arr.ndim == 1 and arr.size > 0 and all(np.isscalar(v) for v in arr)

    def to_json(self, obj: Any) -> list[float]:
        return [float(v) for v in np.asarray(obj, dtype=float)]

    def from_json(self, data: Any) -> np.ndarray:
        return np.asarray(data, dtype=float)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim}
