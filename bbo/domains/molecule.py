"""Molecules as SMILES strings, identified by RDKit's canonical SMILES."""

from __future__ import annotations

from typing import Any

from bbo.domains.base import Domain
from oracles.chem import canonical_smiles, mol_from_smiles


class MoleculeDomain(Domain):
    name = "molecule"

    def validate(self, obj: Any) -> str | None:
        if not isinstance(obj, str):
            return f"expected a SMILES string, got {type(obj).__name__}"
        if mol_from_smiles(obj) is None:
            return f"RDKit cannot parse SMILES {obj!r}"
        return None

    def key(self, obj: str) -> str:
        return canonical_smiles(obj) or obj

    def is_single(self, x: Any) -> bool:
        return isinstance(x, str)
