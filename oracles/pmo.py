"""The RDKit-only tasks of the Practical Molecular Optimization benchmark (PMO, Gao et al. 2022),
registered as ``pmo/<name>``.

PMO scores its molecules with TDC's oracles, which are the GuacaMol goal-directed objectives
(Brown et al. 2019, "GuacaMol: Benchmarking Models for de Novo Molecular Design"). Each task is
built here from a few composable pieces:

* modifiers, mapping a raw value to a desirability in [0, 1]: :class:`Gaussian`,
  :class:`MinGaussian` / :class:`MaxGaussian` (half Gaussians), :class:`Clipped` (clipped linear
  ramp), :class:`ThresholdedLinear`;
* scorers, ``mol -> float``, each a raw value passed through an optional modifier:
  :class:`Descriptor` (an RDKit descriptor), :class:`Similarity` (fingerprint Tanimoto to a
  target), :class:`Isomer` (closeness to a molecular formula), :class:`Smarts` (presence or
  absence of a substructure);
* combinations: :class:`ArithmeticMean` (optionally weighted) and :class:`GeometricMean`.

Fingerprints (:data:`FINGERPRINTS`) are GuacaMol's: ECFP4/ECFP6/FCFP4/FCFP6 are unfolded Morgan
count fingerprints of radius 2/3 (FCFP with feature invariants), AP is the atom-pair count
fingerprint with path lengths up to 10, PHCO is the Gobbi-Poppinger 2D pharmacophore
fingerprint; Tanimoto on count vectors is RDKit's sum-of-minima over sum-of-maxima form.

Where TDC (and so PMO) departs from the GuacaMol package the task follows TDC; the task's
docstring says so. A SMILES RDKit cannot parse scores NaN here (TDC answers 0, GuacaMol -1).

Every piece is a small module-level class whose compiled state (target fingerprints, SMARTS
queries) is rebuilt lazily after unpickling, so the oracles work with ``n_jobs > 1``.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from rdkit import Chem, DataStructs
from rdkit.Chem import Descriptors, rdFingerprintGenerator, rdMolDescriptors

from oracles.base import register
from oracles.molecules import MoleculeOracle

__all__ = [
    "FINGERPRINTS",
    "PMO_TASKS",
    "ArithmeticMean",
    "AtomCount",
    "Clipped",
    "Descriptor",
    "Gaussian",
    "GeometricMean",
    "Isomer",
    "MaxGaussian",
    "MinGaussian",
    "PMOOracle",
    "Scorer",
    "Similarity",
    "Smarts",
    "ThresholdedLinear",
    "fingerprint",
    "parse_formula",
]

# --------------------------------------------------------------------------------------- modifiers


class Modifier:
    """Maps a raw value to a score; subclasses implement ``__call__(x) -> float``."""

    def __call__(self, x: float) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Gaussian(Modifier):
    """``exp(-((x - mu) / sigma)^2 / 2)``: 1 at ``mu``, falling off on both sides."""

    def __init__(self, mu: float, sigma: float) -> None:
        self.mu = float(mu)
        self.sigma = float(sigma)

    def __call__(self, x: float) -> float:
        return math.exp(-0.5 * ((x - self.mu) / self.sigma) ** 2)


class MinGaussian(Gaussian):
    """Half Gaussian for "at most ``mu``": 1 for ``x <= mu``, Gaussian decay above."""

    def __call__(self, x: float) -> float:
        return super().__call__(max(x, self.mu))


class MaxGaussian(Gaussian):
    """Half Gaussian for "at least ``mu``": 1 for ``x >= mu``, Gaussian decay below."""

    def __call__(self, x: float) -> float:
        return super().__call__(min(x, self.mu))


class Clipped(Modifier):
    """Linear ramp from ``(lower_x, low_score)`` to ``(upper_x, high_score)``, clipped to
    ``[low_score, high_score]`` (GuacaMol's ClippedScoreModifier). With ``upper_x < lower_x``
    the ramp goes down."""

    def __init__(
        self, upper_x: float, lower_x: float = 0.0, high_score: float = 1.0, low_score: float = 0.0
    ) -> None:
        if not low_score < high_score:
            raise ValueError("Clipped: low_score must be below high_score")
        self.upper_x = float(upper_x)
        self.lower_x = float(lower_x)
        self.high_score = float(high_score)
        self.low_score = float(low_score)

    def __call__(self, x: float) -> float:
        slope = (self.high_score - self.low_score) / (self.upper_x - self.lower_x)
        y = slope * x + (self.high_score - slope * self.upper_x)
        return min(max(y, self.low_score), self.high_score)


class ThresholdedLinear(Modifier):
    """``min(x, threshold) / threshold``."""

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)

    def __call__(self, x: float) -> float:
        return min(x, self.threshold) / self.threshold


# ------------------------------------------------------------------------------------ fingerprints


@functools.cache
def _generator(kind: str):
    G = rdFingerprintGenerator
    if kind in ("ECFP4", "ECFP6"):
        return G.GetMorganGenerator(radius=2 if kind == "ECFP4" else 3)
    if kind in ("FCFP4", "FCFP6"):
        return G.GetMorganGenerator(
            radius=2 if kind == "FCFP4" else 3,
            atomInvariantsGenerator=G.GetMorganFeatureAtomInvGen(),
        )
    if kind == "AP":
        return G.GetAtomPairGenerator(maxDistance=10)
    raise KeyError(kind)


def _count_fp(kind: str) -> Callable[[Chem.Mol], Any]:
    return functools.partial(_sparse_count, kind)


def _sparse_count(kind: str, mol: Chem.Mol):
    return _generator(kind).GetSparseCountFingerprint(mol)


def _phco(mol: Chem.Mol):
    from rdkit.Chem.Pharm2D import Generate, Gobbi_Pharm2D

    return Generate.Gen2DFingerprint(mol, Gobbi_Pharm2D.factory)


#: fingerprint name -> function of a molecule (GuacaMol's definitions)
FINGERPRINTS: dict[str, Callable[[Chem.Mol], Any]] = {
    "ECFP4": _count_fp("ECFP4"),
    "ECFP6": _count_fp("ECFP6"),
    "FCFP4": _count_fp("FCFP4"),
    "FCFP6": _count_fp("FCFP6"),
    "AP": _count_fp("AP"),
    "PHCO": _phco,
}


def fingerprint(mol: Chem.Mol, kind: str):
    """The ``kind`` fingerprint of ``mol`` (a key of :data:`FINGERPRINTS`)."""
    try:
        fn = FINGERPRINTS[kind]
    except KeyError:
        raise ValueError(
            f"unknown fingerprint {kind!r}; known: {', '.join(FINGERPRINTS)}"
        ) from None
    return fn(mol)


# ----------------------------------------------------------------------------------------- scorers


class Scorer:
    """A score of one molecule: :meth:`raw` passed through an optional :class:`Modifier`.

    Attributes whose names start with ``_cached`` hold compiled state (fingerprints, queries);
    they are dropped when pickling and rebuilt on first use in the worker.
    """

    modifier: Modifier | None = None

    def raw(self, mol: Chem.Mol) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, mol: Chem.Mol) -> float:
        x = self.raw(mol)
        return float(x if self.modifier is None else self.modifier(x))

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cached")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.__getstate__().items())
        return f"{type(self).__name__}({args})"


class Descriptor(Scorer):
    """A descriptor function of the molecule (module-level, so that it pickles)."""

    def __init__(self, fn: Callable[[Chem.Mol], float], modifier: Modifier | None = None) -> None:
        self.fn = fn
        self.modifier = modifier

    def raw(self, mol: Chem.Mol) -> float:
        return float(self.fn(mol))


class Similarity(Scorer):
    """Tanimoto similarity of ``fp`` fingerprints to a target molecule."""

    def __init__(self, target: str, fp: str = "ECFP4", modifier: Modifier | None = None) -> None:
        if fp not in FINGERPRINTS:
            raise ValueError(f"unknown fingerprint {fp!r}; known: {', '.join(FINGERPRINTS)}")
        if Chem.MolFromSmiles(target) is None:
            raise ValueError(f"similarity target {target!r} is not a valid molecule")
        self.target = target
        self.fp = fp
        self.modifier = modifier

    def target_fingerprint(self):
        ref = self.__dict__.get("_cached_ref")
        if ref is None:
            ref = self._cached_ref = fingerprint(Chem.MolFromSmiles(self.target), self.fp)
        return ref

    def raw(self, mol: Chem.Mol) -> float:
        return DataStructs.TanimotoSimilarity(fingerprint(mol, self.fp), self.target_fingerprint())


class Smarts(Scorer):
    """1 if the molecule contains the SMARTS pattern, else 0 (the reverse with ``inverse``)."""

    def __init__(self, smarts: str, inverse: bool = False) -> None:
        if Chem.MolFromSmarts(smarts) is None:
            raise ValueError(f"invalid SMARTS {smarts!r}")
        self.smarts = smarts
        self.inverse = bool(inverse)

    def raw(self, mol: Chem.Mol) -> float:
        query = self.__dict__.get("_cached_query")
        if query is None:
            query = self._cached_query = Chem.MolFromSmarts(self.smarts)
        return float(mol.HasSubstructMatch(query) != self.inverse)


def parse_formula(formula: str) -> list[tuple[str, int]]:
    """``"C9H10N2O2PF2Cl"`` -> ``[("C", 9), ("H", 10), ("N", 2), ("O", 2), ("P", 1), ...]``."""
    parts = [(el, int(n) if n else 1) for el, n in re.findall(r"([A-Z][a-z]*)(\d*)", formula)]
    if not parts:
        raise ValueError(f"cannot parse molecular formula {formula!r}")
    return parts


class Isomer(Scorer):
    """Closeness to a molecular formula (GuacaMol's isomer scoring).

    The mean (geometric by default) of one Gaussian per element of the formula,
    ``Gaussian(mu=count, sigma=1)`` of the molecule's count of that element (hydrogens
    included), and ``Gaussian(mu=total, sigma=2)`` of its total number of atoms. As in TDC, the
    total counts the atoms of the molecular formula with hydrogens, so dummy atoms (``*``) are
    not counted; the GuacaMol package would count them.
    """

    def __init__(self, formula: str, mean: str = "geometric") -> None:
        if mean not in ("geometric", "arithmetic"):
            raise ValueError(f"mean must be 'geometric' or 'arithmetic', not {mean!r}")
        self.formula = formula
        self.mean = mean
        self.elements = parse_formula(formula)
        self.total = sum(n for _, n in self.elements)

    def raw(self, mol: Chem.Mol) -> float:
        counts = Counter(atom.GetSymbol() for atom in Chem.AddHs(mol).GetAtoms())
        total = sum(n for symbol, n in counts.items() if symbol != "*")
        scores = [Gaussian(n, 1.0)(counts.get(el, 0)) for el, n in self.elements]
        scores.append(Gaussian(self.total, 2.0)(total))
        return _geometric_mean(scores) if self.mean == "geometric" else sum(scores) / len(scores)


class ArithmeticMean(Scorer):
    """Weighted arithmetic mean of scorers (equal weights by default)."""

    def __init__(self, parts: Sequence[Scorer], weights: Sequence[float] | None = None) -> None:
        self.parts = list(parts)
        self.weights = [1.0] * len(self.parts) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.parts):
            raise ValueError("ArithmeticMean: one weight per part")

    def raw(self, mol: Chem.Mol) -> float:
        total = sum(w * part(mol) for part, w in zip(self.parts, self.weights))
        return total / sum(self.weights)


class GeometricMean(Scorer):
    """Geometric mean of scorers: any zero part makes the whole zero."""

    def __init__(self, parts: Sequence[Scorer]) -> None:
        self.parts = list(parts)

    def raw(self, mol: Chem.Mol) -> float:
        return _geometric_mean([part(mol) for part in self.parts])


def _geometric_mean(values: Sequence[float]) -> float:
    return math.prod(values) ** (1.0 / len(values))


# -------------------------------------------------------------------------------- descriptors


def logp(mol: Chem.Mol) -> float:
    return Descriptors.MolLogP(mol)


def tpsa(mol: Chem.Mol) -> float:
    return Descriptors.TPSA(mol)


def bertz(mol: Chem.Mol) -> float:
    return Descriptors.BertzCT(mol)


def qed(mol: Chem.Mol) -> float:
    return Descriptors.qed(mol)


def num_rings(mol: Chem.Mol) -> int:
    return rdMolDescriptors.CalcNumRings(mol)


def num_aromatic_rings(mol: Chem.Mol) -> int:
    return rdMolDescriptors.CalcNumAromaticRings(mol)


class AtomCount:
    """Number of atoms of one element (hydrogens included when counting ``"H"``)."""

    def __init__(self, element: str) -> None:
        self.element = element

    def __call__(self, mol: Chem.Mol) -> int:
        if self.element == "H":
            mol = Chem.AddHs(mol)
        return sum(1 for atom in mol.GetAtoms() if atom.GetSymbol() == self.element)

    def __repr__(self) -> str:
        return f"AtomCount({self.element!r})"


# ------------------------------------------------------------------------------------- the oracle


class PMOOracle(MoleculeOracle):
    """A molecule oracle whose score is a :class:`Scorer` of the parsed molecule."""

    def __init__(self, name: str, scorer: Scorer, n_jobs: int = 1) -> None:
        super().__init__(n_jobs=n_jobs)
        self.name = name
        self.scorer = scorer

    def score_mol(self, mol: Chem.Mol) -> float:
        return self.scorer(mol)


#: task name (without the ``pmo/`` prefix) -> function building its scorer
PMO_TASKS: dict[str, Callable[[], Scorer]] = {}


def _task(name: str) -> Callable[[Callable[[], Scorer]], Callable[[], Scorer]]:
    """Register ``pmo/<name>``; the decorated function builds the task's scorer."""

    def wrap(build: Callable[[], Scorer]) -> Callable[[], Scorer]:
        PMO_TASKS[name] = build

        def factory(n_jobs: int = 1) -> PMOOracle:
            return PMOOracle(f"pmo/{name}", build(), n_jobs=n_jobs)

        factory.__doc__ = build.__doc__
        factory.__name__ = factory.__qualname__ = f"pmo_{name}"
        first_line = (build.__doc__ or "").strip().splitlines()[0]
        register(f"pmo/{name}", domain="molecule", description=first_line)(factory)
        return build

    return wrap


# ------------------------------------------------------------------------------- target molecules

ALBUTEROL = "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1"
AMLODIPINE = r"Clc1ccccc1C2C(=C(/N/C(=C2/C(=O)OCC)COCCN)C)\C(=O)OC"
CAMPHOR = "CC1(C)C2CCC1(C)C(=O)C2"
CELECOXIB = "CC1=CC=C(C=C1)C1=CC(=NN1C1=CC=C(C=C1)S(N)(=O)=O)C(F)(F)F"
FEXOFENADINE = "CC(C)(C(=O)O)c1ccc(cc1)C(O)CCCN2CCC(CC2)C(O)(c3ccccc3)c4ccccc4"
HOP_START = "CCCOc1cc2ncnc(Nc3ccc4ncsc4c3)c2cc1S(=O)(=O)C(C)(C)C"
MENTHOL = "CC(C)C1CCC(C)CC1O"
MESTRANOL = "COc1ccc2[C@H]3CC[C@@]4(C)[C@@H](CC[C@@]4(O)C#C)[C@@H]3CCc2c1"
OSIMERTINIB = "COc1cc(N(C)CCN(C)C)c(NC(=O)C=C)cc1Nc2nccc(n2)c3cn(C)c4ccccc34"
PERINDOPRIL = "O=C(OCC)C(NC(C(=O)N1C(C(=O)O)CC2CCCCC12)C)CCC"
RANOLAZINE = "COc1ccccc1OCC(O)CN2CCN(CC(=O)Nc3c(C)cccc3C)CC2"
SILDENAFIL = "CCCC1=NN(C2=C1N=C(NC2=O)C3=C(C=CC(=C3)S(=O)(=O)N4CCN(CC4)C)OCC)C"
SITAGLIPTIN = "Fc1cc(c(F)cc1F)CC(N)CC(=O)N3Cc2nnc(n2CC3)C(F)(F)F"
TADALAFIL = "O=C1N(CC(N2C1CC3=C(C2C4=CC5=C(OCO5)C=C4)NC6=C3C=CC=C6)=O)C"
THIOTHIXENE = "CN(C)S(=O)(=O)c1ccc2Sc3ccccc3C(=CCCN4CCN(C)CC4)c2c1"
TROGLITAZONE = "Cc1c(C)c2OC(C)(COc3ccc(CC4SC(=O)NC4=O)cc3)CCc2c(C)c1O"
ZALEPLON = "O=C(C)N(CC)C1=CC=CC(C2=CC=NC3=C(C=NN23)C#N)=C1"

# the hop tasks' SMARTS
QUINAZOLINE_SCAFFOLD = "[#7]-c1n[c;h1]nc2[c;h1]c(-[#8])[c;h0][c;h1]c12"
HOP_DECORATION = "[#6]-[#6]-[#6]-[#8]-[#6]~[#6]~[#6]~[#6]~[#6]-[#7]-c1ccc2ncsc2c1"


def _descriptors_of(smiles: str, *fns: Callable[[Chem.Mol], float]) -> list[float]:
    mol = Chem.MolFromSmiles(smiles)
    return [fn(mol) for fn in fns]


# -------------------------------------------------------------------------------------- the tasks


@_task("qed")
def _qed() -> Scorer:
    """QED drug-likeness (RDKit), 0 to 1."""
    return Descriptor(qed)


# rediscovery: plain ECFP4 Tanimoto (GuacaMol clips at threshold 1.0, the identity on [0, 1])


@_task("celecoxib_rediscovery")
def _celecoxib_rediscovery() -> Scorer:
    """Rediscover celecoxib: ECFP4 (Morgan r=2 counts) Tanimoto to celecoxib."""
    return Similarity(CELECOXIB, "ECFP4")


@_task("troglitazone_rediscovery")
def _troglitazone_rediscovery() -> Scorer:
    """Rediscover troglitazone: ECFP4 Tanimoto to troglitazone."""
    return Similarity(TROGLITAZONE, "ECFP4")


@_task("thiothixene_rediscovery")
def _thiothixene_rediscovery() -> Scorer:
    """Rediscover thiothixene: ECFP4 Tanimoto to thiothixene."""
    return Similarity(THIOTHIXENE, "ECFP4")


# similarity: Tanimoto through a ramp that saturates at 0.75


@_task("albuterol_similarity")
def _albuterol_similarity() -> Scorer:
    """Similar to albuterol: FCFP4 Tanimoto, clipped ramp saturating at 0.75."""
    return Similarity(ALBUTEROL, "FCFP4", Clipped(upper_x=0.75))


@_task("mestranol_similarity")
def _mestranol_similarity() -> Scorer:
    """Similar to mestranol: atom-pair Tanimoto, clipped ramp saturating at 0.75."""
    return Similarity(MESTRANOL, "AP", Clipped(upper_x=0.75))


# isomers


@_task("isomers_c7h8n2o2")
def _isomers_c7h8n2o2() -> Scorer:
    """Isomers of C7H8N2O2: geometric mean of per-element and total-atom Gaussians.

    GuacaMol has this task (in its "trivial" suite) with the same geometric mean as TDC.
    """
    return Isomer("C7H8N2O2")


@_task("isomers_c9h10n2o2pf2cl")
def _isomers_c9h10n2o2pf2cl() -> Scorer:
    """Isomers of C9H10N2O2PF2Cl: geometric mean of per-element and total-atom Gaussians."""
    return Isomer("C9H10N2O2PF2Cl")


# median molecules


@_task("median1")
def _median1() -> Scorer:
    """Median of camphor and menthol: geometric mean of the two ECFP4 Tanimotos."""
    return GeometricMean([Similarity(CAMPHOR, "ECFP4"), Similarity(MENTHOL, "ECFP4")])


@_task("median2")
def _median2() -> Scorer:
    """Median of tadalafil and sildenafil: geometric mean of the two ECFP6 Tanimotos."""
    return GeometricMean([Similarity(TADALAFIL, "ECFP6"), Similarity(SILDENAFIL, "ECFP6")])


# multi-property objectives


@_task("osimertinib_mpo")
def _osimertinib_mpo() -> Scorer:
    """Osimertinib MPO: geometric mean of FCFP4 similarity (ramp to 0.8), ECFP6 similarity at
    most 0.85 (half Gaussian, sigma 0.1), TPSA at least 100 (sigma 10), logP at most 1 (sigma 1)."""
    return GeometricMean(
        [
            Similarity(OSIMERTINIB, "FCFP4", Clipped(upper_x=0.8)),
            Similarity(OSIMERTINIB, "ECFP6", MinGaussian(0.85, 0.1)),
            Descriptor(tpsa, MaxGaussian(100, 10)),
            Descriptor(logp, MinGaussian(1, 1)),
        ]
    )


@_task("fexofenadine_mpo")
def _fexofenadine_mpo() -> Scorer:
    """Fexofenadine MPO: geometric mean of atom-pair similarity (ramp to 0.8), TPSA at least 90
    (sigma 10), logP at most 4 (sigma 1)."""
    return GeometricMean(
        [
            Similarity(FEXOFENADINE, "AP", Clipped(upper_x=0.8)),
            Descriptor(tpsa, MaxGaussian(90, 10)),
            Descriptor(logp, MinGaussian(4, 1)),
        ]
    )


@_task("ranolazine_mpo")
def _ranolazine_mpo() -> Scorer:
    """Ranolazine MPO: geometric mean of atom-pair similarity (ramp to 0.7), logP at least 7
    (sigma 1), TPSA at least 95 (sigma 20), one fluorine (Gaussian, sigma 1).

    This is GuacaMol's ``ranolazine_mpo`` (the v2 suite task, also TDC's), not its older
    arithmetic-mean ``start_pop_ranolazine`` variant with an aromatic-ring term.
    """
    return GeometricMean(
        [
            Similarity(RANOLAZINE, "AP", Clipped(upper_x=0.7)),
            Descriptor(logp, MaxGaussian(7, 1)),
            Descriptor(AtomCount("F"), Gaussian(1, 1.0)),
            Descriptor(tpsa, MaxGaussian(95, 20)),
        ]
    )


@_task("perindopril_mpo")
def _perindopril_mpo() -> Scorer:
    """Perindopril MPO: geometric mean of ECFP4 similarity to perindopril and two aromatic rings
    (Gaussian, sigma 0.5)."""
    return GeometricMean(
        [Similarity(PERINDOPRIL, "ECFP4"), Descriptor(num_aromatic_rings, Gaussian(2, 0.5))]
    )


@_task("amlodipine_mpo")
def _amlodipine_mpo() -> Scorer:
    """Amlodipine MPO: geometric mean of ECFP4 similarity to amlodipine and three rings
    (Gaussian, sigma 0.5)."""
    return GeometricMean([Similarity(AMLODIPINE, "ECFP4"), Descriptor(num_rings, Gaussian(3, 0.5))])


@_task("sitagliptin_mpo")
def _sitagliptin_mpo() -> Scorer:
    """Sitagliptin MPO: geometric mean of ECFP4 dissimilarity to sitagliptin (Gaussian at 0,
    sigma 0.1), sitagliptin's logP (sigma 0.2) and TPSA (sigma 5), and isomer score C16H15F6N5O.

    TDC's current ``sitagliptin_mpo``, which equals GuacaMol's; not TDC's ``sitagliptin_mpo_prev``
    (an isomer score that counted atoms in the SMILES string).
    """
    target_logp, target_tpsa = _descriptors_of(SITAGLIPTIN, logp, tpsa)
    return GeometricMean(
        [
            Similarity(SITAGLIPTIN, "ECFP4", Gaussian(0, 0.1)),
            Descriptor(logp, Gaussian(target_logp, 0.2)),
            Descriptor(tpsa, Gaussian(target_tpsa, 5)),
            Isomer("C16H15F6N5O"),
        ]
    )


@_task("zaleplon_mpo")
def _zaleplon_mpo() -> Scorer:
    """Zaleplon MPO: geometric mean of ECFP4 similarity to zaleplon and isomer score C19H17N3O2.

    TDC's current ``zaleplon_mpo`` (equal to GuacaMol's), not ``zaleplon_mpo_prev``.
    """
    return GeometricMean([Similarity(ZALEPLON, "ECFP4"), Isomer("C19H17N3O2")])


@_task("valsartan_smarts")
def _valsartan_smarts() -> Scorer:
    """Valsartan SMARTS: geometric mean of the valsartan substructure (SMARTS, 0/1) and
    sitagliptin's logP (sigma 0.2), TPSA (sigma 5) and Bertz complexity (sigma 30)."""
    sitagliptin = "NC(CC(=O)N1CCn2c(nnc2C(F)(F)F)C1)Cc1cc(F)c(F)cc1F"
    target_logp, target_tpsa, target_bertz = _descriptors_of(sitagliptin, logp, tpsa, bertz)
    return GeometricMean(
        [
            Smarts("CN(C=O)Cc1ccc(c2ccccc2)cc1"),
            Descriptor(logp, Gaussian(target_logp, 0.2)),
            Descriptor(tpsa, Gaussian(target_tpsa, 5)),
            Descriptor(bertz, Gaussian(target_bertz, 30)),
        ]
    )


@_task("deco_hop")
def _deco_hop() -> Scorer:
    """Decoration hop: arithmetic mean of PHCO pharmacophore similarity (ramp to 0.85), keeping
    the quinazoline scaffold (SMARTS) and losing two decorations (sulfone, aminobenzothiazole)."""
    return ArithmeticMean(
        [
            Similarity(HOP_START, "PHCO", Clipped(upper_x=0.85)),
            Smarts("CS([#6])(=O)=O", inverse=True),
            Smarts("[#7]-c1ccc2ncsc2c1", inverse=True),
            Smarts(QUINAZOLINE_SCAFFOLD),
        ]
    )


@_task("scaffold_hop")
def _scaffold_hop() -> Scorer:
    """Scaffold hop: arithmetic mean of PHCO pharmacophore similarity (ramp to 0.75), keeping the
    decoration (SMARTS) and losing the quinazoline scaffold (SMARTS)."""
    return ArithmeticMean(
        [
            Similarity(HOP_START, "PHCO", Clipped(upper_x=0.75)),
            Smarts(HOP_DECORATION),
            Smarts(QUINAZOLINE_SCAFFOLD, inverse=True),
        ]
    )
