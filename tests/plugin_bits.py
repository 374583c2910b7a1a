"""A domain from outside ``bbo/``: fixed-length bit strings, a prior for them and an oracle.

Importing this module (as a config naming ``"tests.plugin_bits:ones"`` does) registers all three
without editing a file of ``bbo/`` or ``oracles/``: the domain with ``register_domain``, its codec
with ``register_codec`` and the prior with ``register_prior``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bbo.diffusion import GaussianMixturePrior
from bbo.diffusion.checkpoint import register_prior
from bbo.diffusion.codec import register_codec
from bbo.domains import Domain, register_domain
from oracles import Oracle

LENGTH = 16


@register_domain
class BitStringDomain(Domain):
    """Strings of ``length`` characters, each ``"0"`` or ``"1"``; a string is its own key."""

    name = "bits"

    def __init__(self, length: int = LENGTH) -> None:
        self.length = int(length)

    def validate(self, obj: Any) -> str | None:
        if not isinstance(obj, str):
            return f"expected a bit string, got {type(obj).__name__}"
        if len(obj) != self.length or set(obj) - {"0", "1"}:
            return f"expected {self.length} characters of 0 and 1, got {obj!r}"
        return None

    def key(self, obj: str) -> str:
        return obj

    def is_single(self, x: Any) -> bool:
        return isinstance(x, str)

    def sample_reference(self, n: int, rng: np.random.Generator) -> list[str]:
        return ["".join(map(str, row)) for row in rng.integers(0, 2, size=(n, self.length))]

    def naturalness(self, objects: Sequence[str], *, full: bool = False) -> dict[str, float]:
        """Mean Hamming distance between distinct pairs, as a share of the length."""
        bits = np.array([[c == "1" for c in o] for o in objects], dtype=float)
        if len(bits) < 2:
            return {"diversity": float("nan")}
        d = np.abs(bits[:, None, :] - bits[None]).mean(-1)
        return {"diversity": float(d.sum() / (len(bits) * (len(bits) - 1)))}

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "length": self.length}


@register_codec
class BitsCodec:
    """Bits <-> +-1 vectors: a sample decodes to the signs of its coordinates."""

    name = "bits_sign"

    def __init__(self, length: int = LENGTH) -> None:
        self.length = int(length)
        self.domain = {"name": "bits", "length": self.length}

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.length,)

    def encode(self, objects: Sequence[str]) -> torch.Tensor:
        return torch.tensor([[1.0 if c == "1" else -1.0 for c in o] for o in objects])

    def decode(self, x: torch.Tensor) -> list[str]:
        return ["".join("1" if v > 0 else "0" for v in row) for row in x.detach().cpu().tolist()]

    def encodable(self, objects: Sequence[str]) -> list[bool]:
        return [isinstance(o, str) and len(o) == self.length for o in objects]

    def config(self) -> dict[str, Any]:
        return {"length": self.length}


def bits_prior() -> GaussianMixturePrior:
    """Two modes, mostly zeros (70%) and mostly ones (30%), in the codec's +-1 space."""
    means = [[-0.7] * LENGTH, [0.7] * LENGTH]
    return GaussianMixturePrior(means, [0.6, 0.6], [0.7, 0.3], num_steps=20, codec=BitsCodec(LENGTH))


register_prior("test-bits", bits_prior)


class Ones(Oracle):
    """The number of ones (the "OneMax" problem)."""

    name = "ones"
    domain = "bits"

    def score(self, obj: str) -> float:
        return float(obj.count("1"))


def ones(n_jobs: int = 1) -> Ones:
    return Ones(n_jobs)
