"""The domain registry: each kind of object is one :class:`Domain` registered under its name.

Built-in domains are imported when first asked for, so that naming ``"vector"`` never loads
RDKit. A user's own domain registers itself with :func:`register_domain` when its module is
imported (for instance by the oracle factory a config names), or from an installed package
through the ``bbo.domains`` entry-point group (``name = "package.module:DomainClass"``).
"""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import entry_points
from typing import Any

from bbo.domains.base import Domain, array_key

_BUILTIN = {"image": "bbo.domains.image:ImageDomain", "layout": "bbo.domains.layout:LayoutDomain",
            "molecule": "bbo.domains.molecule:MoleculeDomain",
            "vector": "bbo.domains.vector:VectorDomain"}
DOMAINS: dict[str, type[Domain]] = {}


def register_domain(cls: type[Domain]) -> type[Domain]:
    """Class decorator: make a domain available by its ``name`` (configs, priors, journals)."""
    if not (isinstance(cls, type) and issubclass(cls, Domain)):
        raise TypeError(f"register_domain expects a Domain subclass, got {cls!r}")
    if cls.name in DOMAINS and DOMAINS[cls.name] is not cls:
        raise ValueError(f"domain {cls.name!r} is already registered by {DOMAINS[cls.name].__module__}")
    DOMAINS[cls.name] = cls
    return cls


def domain_class(name: str) -> type[Domain]:
    """The class registered under ``name``, importing a built-in or entry-point domain on demand."""
    if name not in DOMAINS:
        target = _BUILTIN.get(name) or _entry_points().get(name)
        if target is not None:
            module, _, attr = target.partition(":")
            cls = getattr(importlib.import_module(module), attr)
            DOMAINS.setdefault(name, cls)
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; known: {', '.join(domain_names())}")
    return DOMAINS[name]


def domain_names() -> list[str]:
    return sorted(set(_BUILTIN) | set(DOMAINS) | set(_entry_points()))


def get_domain(spec: str | dict[str, Any] | Domain, **kwargs: Any) -> Domain:
    """A domain from its name (``"molecule"``), a config dict (``{"name": "vector", "dim": 2}``)
    or an instance (returned as is)."""
    if isinstance(spec, Domain):
        return spec
    if isinstance(spec, dict):
        kwargs = {**{k: v for k, v in spec.items() if k != "name"}, **kwargs}
        spec = spec.get("name", "")
    if not isinstance(spec, str):
        raise ValueError(f"a domain is a name or a {{name: ..., ...}} mapping, got {spec!r}")
    cls = domain_class(spec)
    signature = inspect.signature(cls)
    try:
        signature.bind(**kwargs)
    except TypeError as err:  # a missing or misspelt setting: name the domain and what it takes
        raise ValueError(f"domain {spec!r}: {err}; its settings are ({', '.join(signature.parameters) or 'none'})") from None
    return cls(**kwargs)


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="bbo.domains")}


__all__ = ["DOMAINS", "Domain", "array_key", "domain_class", "domain_names", "get_domain", "register_domain"]
