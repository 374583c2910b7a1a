"""Graph edits of molecules: the crossover and mutation operators of Jensen's graph-based GA.

Jensen (2019), "A graph-based genetic algorithm and generative model/Monte Carlo tree search for
the exploration of chemical space", Chem. Sci. 10, 3567 (GB-GA), the "Graph GA" of the PMO
benchmark (Gao et al. 2022). Written from the paper's description of the operators.

Crossover (on kekulized copies of the parents, each way with probability 1/2):

* non-ring: cut each parent at a random acyclic single bond (SMARTS ``[*]-;!@[*]``) and join
  one piece of each by a single bond;
* ring: cut each parent across a ring, either at two ring bonds one bond apart
  (``[R]@[R]@[R]@[R]``, cut the first and last bond) or at the two ring bonds of a branched ring
  atom (``[R]@[R;!D2]@[R]``), keeping only cuts that leave exactly two pieces; then close a new
  ring from one piece of each by two new bonds, each single or double.

A child must differ from both parents. Up to ten attempts are made at each level, as in GB-GA.

Mutation (one of seven, with GB-GA's probabilities; up to ten attempts): insert atom (0.15),
change bond order (0.14), delete cyclic bond (0.14), add ring (0.14), delete atom (0.14), change
atom (0.14), append atom (0.15). The element and bond-order choices inside each are GB-GA's
(:data:`INSERT_ATOM`, :data:`APPEND_ATOM`, ...). Mutations are reaction SMARTS applied with
RDKit; the product is drawn uniformly among the valid ones.

Sanity filters (GB-GA's): a molecule must sanitize, have more than 5 heavy atoms and fewer than
a size drawn from N(39.15, 3.5) for every check; mutants (and ring-crossover children) must also
pass the ring check: no ring larger than 6, no allene in a ring, no double bond between atoms of
3- or 4-membered rings. Stereochemistry is dropped (GB-GA does not handle it).

Every random choice comes from the ``numpy.random.Generator`` passed in, so the same generator
state gives the same children.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdChemReactions

from oracles.chem import canonical_smiles, mol_from_smiles  # also silences RDKit's parse/sanitize logging
from bbo.domains.base import selection_weights

__all__ = [
    "AVERAGE_SIZE",
    "MUTATIONS",
    "SIZE_STDEV",
    "crossover",
    "mutate",
    "offspring",
    "ring_ok",
]

#: GB-GA's molecule size filter: fewer heavy atoms than a draw of N(AVERAGE_SIZE, SIZE_STDEV)
AVERAGE_SIZE = 39.15
SIZE_STDEV = 3.50
#: and more than this many heavy atoms
MIN_ATOMS = 5
MAX_RING_SIZE = 6
#: attempts at each level (crossover, ring cut, mutation), as in GB-GA
ATTEMPTS = 10

_SINGLE, _DOUBLE = Chem.BondType.SINGLE, Chem.BondType.DOUBLE


@functools.lru_cache(maxsize=None)
def _pattern(smarts: str) -> Chem.Mol:
    query = Chem.MolFromSmarts(smarts)
    if query is None:  # pragma: no cover - the patterns are fixed
        raise ValueError(f"bad SMARTS {smarts!r}")
    return query


@functools.lru_cache(maxsize=None)
def _reaction(smarts: str) -> rdChemReactions.ChemicalReaction:
    rxn = rdChemReactions.ReactionFromSmarts(smarts)
    rxn.Initialize()
    return rxn


# ------------------------------------------------------------------------------------ filters
def _sanitized(mol: Chem.Mol) -> Chem.Mol | None:
    try:
        Chem.SanitizeMol(mol)
    except Exception:  # RDKit's sanitization errors (valence, kekulization, ...)
        return None
    return mol


def _size_ok(mol: Chem.Mol, rng: np.random.Generator) -> bool:
    n = mol.GetNumAtoms()
    return MIN_ATOMS < n < rng.normal(AVERAGE_SIZE, SIZE_STDEV)


def ring_ok(mol: Chem.Mol) -> bool:
    """GB-GA's ring check: rings of at most 6 atoms, no allene in a ring, no double bond between
    atoms of 3- or 4-membered rings. A sanitized molecule is expected."""
    rings = mol.GetRingInfo().AtomRings()
    if not rings:
        return True
    if max(len(r) for r in rings) > MAX_RING_SIZE:
        return False
    return not (mol.HasSubstructMatch(_pattern("[R]=[R]=[R]")) or mol.HasSubstructMatch(_pattern("[r3,r4]=[r3,r4]")))


def _accept(mol: Chem.Mol, rng: np.random.Generator, *, rings: bool) -> Chem.Mol | None:
    """The molecule, re-read from its SMILES, if it passes the filters; else None."""
    mol = _sanitized(mol)
    if mol is None or not _size_ok(mol, rng) or (rings and not ring_ok(mol)):
        return None
    # the child goes out as SMILES: make sure it reads back (and hand out the clean read)
    return mol_from_smiles(Chem.MolToSmiles(mol))


def _first_accepted(candidates: Sequence, build, rng: np.random.Generator, *, rings: bool) -> Chem.Mol | None:
    """A uniform draw among the candidates that build to an accepted molecule: try them in a
    random order and keep the first (lazily, so that not every candidate is sanitized)."""
    for i in rng.permutation(len(candidates)):
        mol = build(candidates[int(i)])
        if mol is not None:
            mol = _accept(mol, rng, rings=rings)
            if mol is not None:
                return mol
    return None


def _working_copy(mol: Chem.Mol) -> Chem.Mol:
    """A kekulized copy without stereochemistry: edits then never break an aromatic flag."""
    mol = Chem.Mol(mol)
    Chem.RemoveStereochemistry(mol)
    try:
        Chem.Kekulize(mol, clearAromaticFlags=True)
    except Exception:  # leave it aromatic; a broken child fails sanitization later
        pass
    return mol


def _smiles(mol: Chem.Mol) -> str:
    mol = Chem.Mol(mol)
    Chem.RemoveStereochemistry(mol)
    return Chem.MolToSmiles(mol)


# ---------------------------------------------------------------------------------- crossover
class _Piece:
    """Atoms of a parent on one side of a cut, and the atoms where the cut bonds left it (in the
    order of the cut bonds; the same atom twice when both cut bonds leave from it)."""

    __slots__ = ("atoms", "ends")

    def __init__(self, atoms: frozenset[int], ends: tuple[int, ...]) -> None:
        self.atoms, self.ends = atoms, ends


def _cut(mol: Chem.Mol, bonds: Sequence[tuple[int, int]]) -> list[_Piece] | None:
    """The two pieces left by removing ``bonds``, or None when they do not split the molecule in two."""
    rw = Chem.RWMol(mol)
    for u, v in bonds:
        rw.RemoveBond(u, v)
    frags = Chem.GetMolFrags(rw.GetMol(), asMols=False, sanitizeFrags=False)
    if len(frags) != 2:
        return None
    pieces = []
    for frag in frags:
        atoms = frozenset(frag)
        ends = tuple(u if u in atoms else v for u, v in bonds)
        if any(u in atoms and v in atoms for u, v in bonds):  # a cut bond inside one piece
            return None
        pieces.append(_Piece(atoms, ends))
    return pieces


def _cut_acyclic(mol: Chem.Mol, rng: np.random.Generator) -> list[_Piece] | None:
    matches = mol.GetSubstructMatches(_pattern("[*]-;!@[*]"))
    if not matches:
        return None
    u, v = matches[int(rng.integers(len(matches)))]
    return _cut(mol, [(u, v)])


def _cut_ring(mol: Chem.Mol, rng: np.random.Generator) -> list[_Piece] | None:
    for _ in range(ATTEMPTS):
        if rng.random() < 0.5:  # two ring bonds one bond apart
            matches = mol.GetSubstructMatches(_pattern("[R]@[R]@[R]@[R]"))
            if not matches:
                return None
            a, b, c, d = matches[int(rng.integers(len(matches)))]
            bonds = [(a, b), (c, d)]
        else:  # both ring bonds of a ring atom that carries a branch
            matches = mol.GetSubstructMatches(_pattern("[R]@[R;!D2]@[R]"))
            if not matches:
                return None
            a, b, c = matches[int(rng.integers(len(matches)))]
            bonds = [(a, b), (b, c)]
        pieces = _cut(mol, bonds)
        if pieces is not None:
            return pieces
    return None


def _assemble(
    mol_a: Chem.Mol, piece_a: _Piece, mol_b: Chem.Mol, piece_b: _Piece, links: Sequence[tuple[int, int, Chem.BondType]]
) -> Chem.Mol | None:
    """A new (unsanitized) molecule: the atoms of both pieces, their bonds, and the ``links``
    (an end index of ``piece_a``, an end index of ``piece_b``, a bond type)."""
    rw = Chem.RWMol()
    index: list[dict[int, int]] = []
    for mol, piece in ((mol_a, piece_a), (mol_b, piece_b)):
        new = {i: rw.AddAtom(mol.GetAtomWithIdx(i)) for i in sorted(piece.atoms)}
        for bond in mol.GetBonds():
            u, v = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            if u in new and v in new:
                rw.AddBond(new[u], new[v], bond.GetBondType())
        index.append(new)
    for ea, eb, order in links:
        u, v = index[0][piece_a.ends[ea]], index[1][piece_b.ends[eb]]
        if rw.GetBondBetweenAtoms(u, v) is not None:
            return None
        rw.AddBond(u, v, order)
    return rw.GetMol()


def _non_ring_crossover(a: Chem.Mol, b: Chem.Mol, rng: np.random.Generator) -> Chem.Mol | None:
    """Cut both parents at an acyclic single bond; join a piece of each by a single bond."""
    for _ in range(ATTEMPTS):
        pieces_a, pieces_b = _cut_acyclic(a, rng), _cut_acyclic(b, rng)
        if pieces_a is None or pieces_b is None:
            return None
        pairs = [(pa, pb) for pa in pieces_a for pb in pieces_b]
        child = _first_accepted(pairs, lambda p: _assemble(a, p[0], b, p[1], [(0, 0, _SINGLE)]), rng, rings=False)
        if child is not None:
            return child
    return None


def _ring_crossover(a: Chem.Mol, b: Chem.Mol, rng: np.random.Generator) -> Chem.Mol | None:
    """Cut both parents across a ring; close a new ring from a piece of each (two new bonds,
    each single or double, in either pairing of the cut ends)."""
    ring = _pattern("[R]")
    if not (a.HasSubstructMatch(ring) and b.HasSubstructMatch(ring)):
        return None
    orders = [(o1, o2) for o1 in (_SINGLE, _DOUBLE) for o2 in (_SINGLE, _DOUBLE)]
    for _ in range(ATTEMPTS):
        pieces_a, pieces_b = _cut_ring(a, rng), _cut_ring(b, rng)
        if pieces_a is None or pieces_b is None:
            return None
        options = [
            (pa, pb, [(0, swap, o1), (1, 1 - swap, o2)])
            for pa in pieces_a
            for pb in pieces_b
            for swap in (0, 1)
            for o1, o2 in orders
        ]
        child = _first_accepted(options, lambda o: _assemble(a, o[0], b, o[1], o[2]), rng, rings=True)
        if child is not None:
            return child
    return None


def crossover(parent_a: Chem.Mol, parent_b: Chem.Mol, rng: np.random.Generator) -> Chem.Mol | None:
    """A child of two molecules by GB-GA's ring or non-ring crossover (each with probability 1/2),
    different from both parents; None when ten attempts give none."""
    if any(atom.GetAtomicNum() == 0 for m in (parent_a, parent_b) for atom in m.GetAtoms()):
        return None  # dummy atoms: not a molecule to cut
    parents = {_smiles(parent_a), _smiles(parent_b)}
    a, b = _working_copy(parent_a), _working_copy(parent_b)
    for _ in range(ATTEMPTS):
        op = _non_ring_crossover if rng.random() < 0.5 else _ring_crossover
        child = op(a, b, rng)
        if child is not None and Chem.MolToSmiles(child) not in parents:
            return child
    return None


# ---------------------------------------------------------------------------------- mutations
#: insert atom X into a bond: (probability, element choices, template); X replaces ``{x}``
INSERT_ATOM = [
    (0.60, ("C", "N", "O", "S"), "[*:1]~[*:2]>>[*:1]-{x}-[*:2]"),
    (0.35, ("C", "N"), "[*;!H0:1]~[*:2]>>[*:1]={x}-[*:2]"),
    (0.05, ("C",), "[*;!R;!H0;!H1:1]~[*:2]>>[*:1]#{x}-[*:2]"),
]
#: append atom X to an atom with enough hydrogens
APPEND_ATOM = [
    (0.60, ("C", "N", "O", "F", "S", "Cl", "Br"), "[*;!H0:1]>>[*:1]-{x}"),
    (0.35, ("C", "N", "O"), "[*;!H0;!H1:1]>>[*:1]={x}"),
    (0.05, ("C", "N"), "[*;H3:1]>>[*:1]#{x}"),
]
#: change a bond's order
CHANGE_BOND_ORDER = [
    (0.45, "[*:1]!-[*:2]>>[*:1]-[*:2]"),
    (0.45, "[*;!H0:1]-[*;!H0:2]>>[*:1]=[*:2]"),
    (0.05, "[*:1]#[*:2]>>[*:1]=[*:2]"),
    (0.05, "[*;!R;!H0;!H1:1]~[*:2]>>[*:1]#[*:2]"),
]
#: delete an atom of degree 1 to 4, joining its neighbours by single bonds (a chain through
#: hydrogen-bearing neighbours; the last drops the fourth neighbour's branch)
DELETE_ATOM = [
    (0.25, "[*:1]~[D1:2]>>[*:1]"),
    (0.25, "[*:1]~[D2:2]~[*:3]>>[*:1]-[*:3]"),
    (0.25, "[*:1]~[D3:2](~[*;!H0:3])~[*:4]>>[*:1]-[*:3]-[*:4]"),
    (0.1875, "[*:1]~[D4:2](~[*;!H0:3])(~[*;!H0:4])~[*:5]>>[*:1]-[*:3]-[*:4]-[*:5]"),
    (0.0625, "[*:1]~[D4:2](~[*;!H0;!H1:3])~[*:4]>>[*:1]-[*:3]-[*:4]"),
]
#: add a ring: (probability, ring size, inner path positions that must be acyclic); the ends of
#: the path (acyclic, with a hydrogen) are bonded
ADD_RING = [(0.05, 3, (1,)), (0.05, 4, (1, 2)), (0.45, 5, (1,)), (0.45, 6, (1, 4))]
#: change atom: elements and their weights (the element changed must occur in the molecule)
CHANGE_ATOM = [(0.15, 6), (0.15, 7), (0.14, 8), (0.14, 9), (0.14, 16), (0.14, 17), (0.14, 35)]
DELETE_CYCLIC_BOND = "[*:1]@[*:2]>>([*:1].[*:2])"


def _pick(rng: np.random.Generator, table: Sequence[tuple]) -> tuple:
    p = np.array([row[0] for row in table], dtype=float)
    return table[int(rng.choice(len(table), p=p / p.sum()))]


def _with_element(rng: np.random.Generator, table: Sequence[tuple]) -> str:
    _, elements, template = _pick(rng, table)
    return template.format(x=elements[int(rng.integers(len(elements)))])


def _insert_atom(mol: Chem.Mol, rng: np.random.Generator) -> str:
    return _with_element(rng, INSERT_ATOM)


def _append_atom(mol: Chem.Mol, rng: np.random.Generator) -> str:
    return _with_element(rng, APPEND_ATOM)


def _change_bond_order(mol: Chem.Mol, rng: np.random.Generator) -> str:
    return _pick(rng, CHANGE_BOND_ORDER)[1]


def _delete_atom(mol: Chem.Mol, rng: np.random.Generator) -> str:
    return _pick(rng, DELETE_ATOM)[1]


def _delete_cyclic_bond(mol: Chem.Mol, rng: np.random.Generator) -> str:
    return DELETE_CYCLIC_BOND


def _add_ring(mol: Chem.Mol, rng: np.random.Generator) -> str:
    _, size, acyclic = _pick(rng, ADD_RING)
    atoms = []
    for i in range(size):
        end = i in (0, size - 1)
        atoms.append("[*" + (";!r;!H0" if end else ";!r" if i in acyclic else "") + f":{i + 1}]")
    path = "~".join(atoms)
    ring = "~".join(f"[*:{i + 1}]" + ("1" if i == 0 else "") for i in range(size)) + "-1"
    return f"{path}>>{ring}"


def _change_atom(mol: Chem.Mol, rng: np.random.Generator) -> str | None:
    present = {a.GetAtomicNum() for a in mol.GetAtoms()}
    sources = [row for row in CHANGE_ATOM if row[1] in present]
    if not sources:
        return None
    x = _pick(rng, sources)[1]
    y = _pick(rng, [row for row in CHANGE_ATOM if row[1] != x])[1]
    return f"[#{x}:1]>>[#{y}:1]"


#: the seven mutations and their probabilities: (probability, name, template builder)
MUTATIONS = [
    (0.15, "insert_atom", _insert_atom),
    (0.14, "change_bond_order", _change_bond_order),
    (0.14, "delete_cyclic_bond", _delete_cyclic_bond),
    (0.14, "add_ring", _add_ring),
    (0.14, "delete_atom", _delete_atom),
    (0.14, "change_atom", _change_atom),
    (0.15, "append_atom", _append_atom),
]


def _apply(mol: Chem.Mol, smarts: str, rng: np.random.Generator) -> Chem.Mol | None:
    products = _reaction(smarts).RunReactants((mol,))
    return _first_accepted(products, lambda p: p[0], rng, rings=True)


def mutate(mol: Chem.Mol, rng: np.random.Generator, rate: float = 1.0) -> Chem.Mol | None:
    """With probability ``rate`` one random GB-GA mutation of ``mol`` (None when ten attempts
    give no valid molecule); otherwise ``mol`` itself."""
    if rng.random() >= rate:
        return mol
    if any(atom.GetAtomicNum() == 0 for atom in mol.GetAtoms()):
        return None
    work = _working_copy(mol)
    for _ in range(ATTEMPTS):
        _, _, build = _pick(rng, MUTATIONS)
        smarts = build(work, rng)
        if smarts is None:
            continue
        child = _apply(work, smarts, rng)
        if child is not None:
            return child
    return None


# ---------------------------------------------------------------------------------- offspring
def offspring(
    parents: Sequence[str],
    n: int,
    rng: np.random.Generator,
    mutation_rate: float = 0.067,
    scores: Sequence[float] | None = None,
    max_tries: int | None = None,
) -> list[str]:
    """Up to ``n`` distinct canonical SMILES bred from ``parents``, none of them a parent.

    As in PMO's Graph GA: a mating pool of ``len(parents)`` is drawn with replacement, with
    probability proportional to ``scores`` (uniform without scores); each child is the crossover
    of two parents drawn uniformly from the pool, then mutated with probability
    ``mutation_rate``. Gives up after ``max_tries`` reproductions (default ``10 * n + 20``) and
    returns what it has: fewer than ``n`` when the parents breed too few new molecules.
    Unparsable parents are skipped.
    """
    if n <= 0:
        return []
    if scores is not None:
        p = selection_weights(scores, len(parents))
    mols, weights, seen = [], [], set()
    for i, smiles in enumerate(parents):
        mol = mol_from_smiles(smiles)
        if mol is None:
            continue
        mols.append(mol)
        weights.append(1.0 if scores is None else p[i])
        seen.add(_smiles(mol))
    if not mols:
        return []
    w = np.asarray(weights)
    if w.sum() <= 0:
        w = np.ones_like(w)
    pool = rng.choice(len(mols), size=len(mols), replace=True, p=w / w.sum())
    max_tries = 10 * n + 20 if max_tries is None else int(max_tries)
    out: list[str] = []
    for _ in range(max_tries):
        if len(out) >= n:
            break
        i, j = pool[rng.integers(len(pool), size=2)]
        child = crossover(mols[int(i)], mols[int(j)], rng)
        if child is None:
            continue
        child = mutate(child, rng, mutation_rate)
        if child is None:
            continue
        smiles = canonical_smiles(Chem.MolToSmiles(child))
        if smiles is None or smiles in seen:
            continue
        seen.add(smiles)
        out.append(smiles)
    return out
