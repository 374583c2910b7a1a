"""Molecule oracles over SMILES strings: the :class:`MoleculeOracle` base and the simple RDKit
property oracles (``qed``, ``logp``, ``sa``, ``penalized_logp``, ``similarity``).

Every oracle here scores one SMILES string; a string RDKit cannot parse scores NaN (the reason is
logged at warning level) and its cache key is None, so a :class:`~oracles.base.BudgetedOracle`
never charges for it.
"""

from __future__ import annotations

import logging
import math
from abc import abstractmethod
from collections.abc import Hashable
from typing import Any

from rdkit import Chem, DataStructs
from rdkit.Chem import QED, Crippen

from oracles.base import Oracle, register
from oracles.chem import (
    MAX_ORACLE_HEAVY_ATOMS,
    canonical_smiles,
    mol_from_smiles,
    morgan_fingerprint,
    sa_score,
    smiles_size_problem,
)

log = logging.getLogger(__name__)

__all__ = [
    "LogPOracle",
    "MoleculeOracle",
    "PenalizedLogPOracle",
    "QEDOracle",
    "SAOracle",
    "SimilarityOracle",
    "penalized_logp",
]


class MoleculeOracle(Oracle):
    """An oracle over molecules given as SMILES strings.

    Subclasses implement :meth:`score_mol` for a parsed RDKit molecule; :meth:`score` parses the
    string and answers NaN (logging why) for anything RDKit cannot read.
    """

    domain = "molecule"

    def key(self, obj: Any) -> Hashable | None:
        """Canonical (isomeric) SMILES; None for anything that is not a valid molecule."""
        if not isinstance(obj, str):
            return None
        return canonical_smiles(obj)

    #: molecules above this many heavy atoms score NaN (see :data:`oracles.chem.MAX_ORACLE_HEAVY_ATOMS`)
    max_heavy_atoms: int = MAX_ORACLE_HEAVY_ATOMS

    def score(self, smiles: Any) -> float:
        mol = mol_from_smiles(smiles) if isinstance(smiles, str) else None
        if mol is None:
            if not isinstance(smiles, str):
                reason = "not a string"
            else:
                reason = smiles_size_problem(smiles) or "RDKit cannot parse it"
            log.warning("%s: cannot score %.80r: %s", self.name, smiles, reason)
            return math.nan
        if mol.GetNumHeavyAtoms() > self.max_heavy_atoms:
            log.warning("%s: not scoring %.80r: %d heavy atoms is more than this oracle's limit of %d", self.name,
                        smiles, mol.GetNumHeavyAtoms(), self.max_heavy_atoms)
            return math.nan
        return float(self.score_mol(mol))

    @abstractmethod
    def score_mol(self, mol: Chem.Mol) -> float:
        """Score one parsed, sanitized RDKit molecule."""


# ------------------------------------------------------------------------------ simple properties


@register("qed", domain="molecule", description="RDKit's quantitative estimate of drug-likeness (QED), 0 to 1")
class QEDOracle(MoleculeOracle):
    """Bickerton et al.'s QED with RDKit's default weights (``rdkit.Chem.QED.qed``)."""

    name = "qed"

    def score_mol(self, mol: Chem.Mol) -> float:
        return QED.qed(mol)


@register("logp", domain="molecule", description="Crippen logP (RDKit MolLogP)")
class LogPOracle(MoleculeOracle):
    """Wildman-Crippen octanol/water logP (``rdkit.Chem.Crippen.MolLogP``)."""

    name = "logp"

    def score_mol(self, mol: Chem.Mol) -> float:
        return Crippen.MolLogP(mol)


@register(
    "sa",
    domain="molecule",
    direction="minimize",
    description="Synthetic accessibility score (Ertl & Schuffenhauer), 1 easy to 10 hard; minimize",
)
class SAOracle(MoleculeOracle):
    """Ertl and Schuffenhauer's synthetic accessibility score (RDKit Contrib ``sascorer``)."""

    name = "sa"
    direction = "minimize"

    def score_mol(self, mol: Chem.Mol) -> float:
        return sa_score(mol)


def largest_ring_size(mol: Chem.Mol) -> int:
    """Size of the largest ring in RDKit's smallest set of smallest rings (0 if acyclic)."""
    return max((len(ring) for ring in mol.GetRingInfo().AtomRings()), default=0)


def penalized_logp(mol: Chem.Mol) -> float:
    """Unnormalized penalized logP: ``MolLogP - SA - max(0, largest ring size - 6)``."""
    cycle_penalty = max(0, largest_ring_size(mol) - 6)
    return Crippen.MolLogP(mol) - sa_score(mol) - cycle_penalty


@register(
    "penalized_logp",
    domain="molecule",
    description="Penalized logP, unnormalized: logP - SA - max(0, largest ring - 6)",
)
class PenalizedLogPOracle(MoleculeOracle):
    """Penalized logP in the unnormalized form of the JT-VAE / GCPN line of work::

        penalized_logp = MolLogP(mol) - SA(mol) - max(0, largest_ring_size(mol) - 6)

    with Crippen logP, Ertl-Schuffenhauer SA score (1..10) and the ring size taken from RDKit's
    smallest set of smallest rings. No term is standardized (TDC's ``logp`` oracle instead
    standardizes each term by ZINC250k statistics). The original JT-VAE/GCPN scripts took the
    largest cycle of ``networkx.cycle_basis``, which equals the SSSR's largest ring except for
    some bridged polycycles (adamantane: 8 there, 6 here).
    """

    name = "penalized_logp"

    def score_mol(self, mol: Chem.Mol) -> float:
        return penalized_logp(mol)


@register(
    "similarity",
    domain="molecule",
    description="ECFP4 (Morgan r=2, 2048 bits) Tanimoto similarity to a target SMILES (kwarg target)",
)
class SimilarityOracle(MoleculeOracle):
    """Tanimoto similarity of Morgan radius-2, 2048-bit fingerprints (ECFP4-like) to ``target``."""

    name = "similarity"

    def __init__(
        self, target: str | None = None, n_jobs: int = 1, radius: int = 2, n_bits: int = 2048
    ) -> None:
        super().__init__(n_jobs=n_jobs)
        if target is None:
            raise ValueError("similarity oracle needs a target molecule: target='<SMILES>'")
        target_mol = mol_from_smiles(target) if isinstance(target, str) else None
        if target_mol is None:
            raise ValueError(f"similarity oracle: target {target!r} is not a valid molecule")
        self.target = Chem.MolToSmiles(target_mol)
        self.radius = int(radius)
        self.n_bits = int(n_bits)
        self._target_fp = morgan_fingerprint(target_mol, self.radius, self.n_bits)

    def __getstate__(self) -> dict:
        # the fingerprint is rebuilt from the SMILES in the worker, so pickling stays trivial
        state = self.__dict__.copy()
        state.pop("_target_fp", None)
        return state

    def score_mol(self, mol: Chem.Mol) -> float:
        target_fp = self.__dict__.get("_target_fp")
        if target_fp is None:
            target_fp = morgan_fingerprint(
                Chem.MolFromSmiles(self.target), self.radius, self.n_bits
            )
            self._target_fp = target_fp
        return DataStructs.TanimotoSimilarity(
            target_fp, morgan_fingerprint(mol, self.radius, self.n_bits)
        )

    def __repr__(self) -> str:
        return f"SimilarityOracle(target={self.target!r})"
