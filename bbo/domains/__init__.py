"""Object <-> storage codecs per domain, and the domain registry."""

from __future__ import annotations

from typing import Any

from bbo.domains.base import Domain
from bbo.domains.molecule import MoleculeDomain
from bbo.domains.vector import VectorDomain

DOMAINS: dict[str, type[Domain]] = {"molecule": MoleculeDomain, "vector": VectorDomain}


def get_domain(spec: str | dict[str, Any] | Domain, **kwargs: Any) -> Domain:
    """A domain from its name (``"molecule"``), a config dict (``{"name": "vector", "dim": 2}``)
    or an instance (returned as is)."""
    if isinstance(spec, Domain):
        return spec
    if isinstance(spec, dict):
        kwargs = {**{k: v for k, v in spec.items() if k != "name"}, **kwargs}
        spec = spec.get("name", "")
    if spec not in DOMAINS:
        raise ValueError(f"unknown domain {spec!r}; known: {', '.join(DOMAINS)}")
    return DOMAINS[spec](**kwargs)


__all__ = ["DOMAINS", "Domain", "MoleculeDomain", "VectorDomain", "get_domain"]
