"""The codec protocol: how a prior's continuous space maps to a domain's objects and back.

A prior diffuses in tensors of shape ``codec.shape``; its codec decodes samples into domain
objects (``decode``) and encodes told objects back (``encode``, for the surrogate), and says which
objects it can encode at all (``encodable``: a molecule longer than the vocabulary allows cannot).
Codecs with weights are ``nn.Module``s saved beside the prior's denoiser; each registers its name
here so that a prior's config can name it. A prior without a codec diffuses in its objects
themselves (vectors).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

CODECS: dict[str, type] = {}


@runtime_checkable
class Codec(Protocol):
    """Objects <-> diffusion-space tensors (``batch x *shape``)."""

    name: str
    #: the domain its objects belong to, as a domain spec (``"molecule"``, ``{"name": ..., ...}``)
    domain: str | dict[str, Any]

    @property
    def shape(self) -> tuple[int, ...]: ...

    def encode(self, objects: Sequence[Any]) -> torch.Tensor: ...

    def decode(self, x: torch.Tensor) -> list[Any]: ...

    def encodable(self, objects: Sequence[Any]) -> list[bool]: ...

    def config(self) -> dict[str, Any]: ...


def register_codec(cls: type) -> type:
    """Class decorator: make a codec loadable by its ``name`` from a prior's config."""
    if cls.name in CODECS and CODECS[cls.name] is not cls:
        raise ValueError(f"codec {cls.name!r} is already registered")
    CODECS[cls.name] = cls
    return cls


def build_codec(spec: dict[str, Any]) -> Any:
    """A codec from ``{"name": ..., "config": {...}}``. A domain package registers its codecs when
    it is imported, so an unknown name first imports the domain the spec names (older priors name
    none: then every built-in domain)."""
    name = spec.get("name")
    if name not in CODECS:
        from bbo.domains import domain_class, domain_names

        wanted = spec.get("domain")
        for domain in [wanted] if wanted else domain_names():
            domain_class(domain if isinstance(domain, str) else domain["name"])
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r}; known: {', '.join(sorted(CODECS))}")
    return CODECS[name](**spec["config"])
