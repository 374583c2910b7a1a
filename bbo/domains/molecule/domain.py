"""Molecules as SMILES strings, identified by RDKit's canonical SMILES."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bbo.domains import register_domain
from bbo.domains.base import Domain
from oracles.chem import MAX_SMILES_LENGTH, canonical_smiles, mol_from_smiles, smiles_size_problem

#: the largest molecule the domain accepts, in heavy atoms (the oracles score at most 100)
MAX_ATOMS = 500


@register_domain
class MoleculeDomain(Domain):
    """SMILES strings; two spellings of one molecule (``"OCC"``, ``"CCO"``) are one object.

    Reference distribution: the MOSES training set (Polykovskiy et al. 2020), shipped in the
    package. Naturalness: internal diversity, SA, novelty against MOSES train (and, with
    ``full=True``, validity, uniqueness, QED, PAINS/Brenk pass rate and FCD to MOSES test)."""

    name = "molecule"
    pretrain_command = "bbo.domains.molecule.cli:pretrain"

    def validate(self, obj: Any) -> str | None:
        """Size first (at most ``MAX_SMILES_LENGTH`` = 2,000 characters and ``MAX_ATOMS`` = 500 heavy
        atoms: RDKit crashes the process on far larger ones), then RDKit's parse."""
        if not isinstance(obj, str):
            return f"expected a SMILES string, got {type(obj).__name__}"
        if len(obj) > MAX_SMILES_LENGTH:
            return smiles_size_problem(obj)
        mol = mol_from_smiles(obj)
        if mol is None:
            return f"RDKit cannot parse SMILES {obj!r}"
        if mol.GetNumHeavyAtoms() > MAX_ATOMS:
            return f"{mol.GetNumHeavyAtoms()} heavy atoms is more than the limit of {MAX_ATOMS}"
        return None

    def key(self, obj: str) -> str:
        if isinstance(obj, str) and len(obj) > MAX_SMILES_LENGTH:
            raise ValueError(smiles_size_problem(obj))
        return canonical_smiles(obj) or obj

    def is_single(self, x: Any) -> bool:
        return isinstance(x, str)

    def sample_reference(self, n: int, rng: np.random.Generator) -> list[str]:
        """Uniform draws from MOSES train, with replacement."""
        from bbo.domains.molecule.moses import moses_smiles

        pool = moses_smiles("train")
        return [pool[i] for i in rng.integers(len(pool), size=n)]

    def naturalness(self, objects: Sequence[str], *, full: bool = False) -> dict[str, float]:
        from bbo.domains.molecule import metrics
        from bbo.domains.molecule.moses import moses_train_set

        objects = list(objects)
        out = {"diversity": metrics.internal_diversity(objects), "sa": metrics.mean_sa(objects),
               "novelty": metrics.novelty(objects, moses_train_set())}
        if full:
            from bbo.domains.molecule.moses import moses_smiles

            test = list(moses_smiles("test")[:10_000])
            out.update(validity=metrics.validity(objects), uniqueness=metrics.uniqueness(objects),
                       qed=metrics.mean_qed(objects), filters=metrics.filter_pass_rate(objects))
            valid = [s for s in objects if mol_from_smiles(s) is not None]
            out["fcd"] = metrics.frechet_chemnet_distance(valid, test) if len(valid) >= 2 else float("nan")
        return out

    def render(self, objects: Sequence[str], path: str | Path, legends: Sequence[str] | None = None) -> Path:
        """RDKit 2-D drawings on a grid, four to a row."""
        from rdkit.Chem import Draw

        mols = [mol_from_smiles(s) for s in objects]
        keep = [i for i, m in enumerate(mols) if m is not None]
        image = Draw.MolsToGridImage([mols[i] for i in keep], molsPerRow=4, subImgSize=(250, 200),
                                     legends=None if legends is None else [str(legends[i]) for i in keep])
        path = Path(path)
        image.save(path)
        return path

    def offspring(self, parents: Sequence[str], n: int, rng: np.random.Generator, *, mutation_rate: float,
                  scores: Sequence[float] | None = None) -> list[str]:
        """Graph crossover and mutation after Jensen (2019): :func:`bbo.domains.molecule.edits.offspring`."""
        from bbo.domains.molecule.edits import offspring

        return offspring(list(parents), n, rng, mutation_rate=mutation_rate, scores=scores)
