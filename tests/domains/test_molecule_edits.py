"""The graph GA operators: validity, what a crossover child is made of, filters, reproducibility."""

import itertools
import random

import numpy as np
import pytest
from rdkit import Chem

from bbo.domains.molecule.moses import moses_smiles
from bbo.domains.molecule import edits as me
from bbo.domains.molecule.edits import crossover, mutate, offspring

A = "Cc1ccc(C(=O)NC2CCCCC2)cc1"
B = "O=C(O)c1ccncc1N1CCOCC1"


@pytest.fixture(scope="module")
def sample():
    """60 MOSES training molecules (a fixed, seeded draw)."""
    pool = moses_smiles("train")
    return [pool[i] for i in np.random.default_rng(123).integers(len(pool), size=60)]


def _parse(smiles):
    mol = Chem.MolFromSmiles(smiles)
    assert mol is not None and mol.GetNumAtoms() > 0, smiles
    return mol


def _valid(mol):
    """A molecule whose SMILES RDKit reads back."""
    return mol is not None and Chem.MolFromSmiles(Chem.MolToSmiles(mol)) is not None


# ------------------------------------------------------------------------ what a child is made of
def _pieces(smiles, ring):
    """Every piece a crossover cut can leave of a molecule, as atom-index sets of its kekulized
    graph: the two sides of each acyclic single bond, or (``ring``) the two pieces left by
    removing any two ring bonds that split the molecule in two."""
    mol = Chem.MolFromSmiles(smiles)
    Chem.Kekulize(mol, clearAromaticFlags=True)
    if ring:
        bonds = [b for b in mol.GetBonds() if b.IsInRing()]
        cuts = list(itertools.combinations(bonds, 2))
    else:
        cuts = [(b,) for b in mol.GetBonds() if not b.IsInRing() and b.GetBondType() == Chem.BondType.SINGLE]
    out = set()
    for cut in cuts:
        rw = Chem.RWMol(mol)
        for b in cut:
            rw.RemoveBond(b.GetBeginAtomIdx(), b.GetEndAtomIdx())
        frags = Chem.GetMolFrags(rw.GetMol(), asMols=False, sanitizeFrags=False)
        if len(frags) == 2:
            out.update(frozenset(f) for f in frags)
    return mol, out


def _query(mol, atoms):
    """The piece as a query on elements and connectivity only (a cut-and-joined bond may change
    order or aromaticity)."""
    atoms = sorted(atoms)
    inside = [b.GetIdx() for b in mol.GetBonds() if b.GetBeginAtomIdx() in atoms and b.GetEndAtomIdx() in atoms]
    smarts = Chem.MolFragmentToSmiles(
        mol, atomsToUse=atoms, bondsToUse=inside or None, canonical=False, allBondsExplicit=True,
        atomSymbols=[f"[#{a.GetAtomicNum()}]" for a in mol.GetAtoms()], bondSymbols=["~"] * mol.GetNumBonds(),
    )
    return Chem.MolFromSmarts(smarts)


def made_of_pieces(child, parent_a, parent_b, ring):
    """True when ``child`` is exactly one cut piece of ``parent_a`` plus one of ``parent_b``: its
    heavy atoms split into two disjoint sets matching the two pieces (elements and bonds)."""
    child = Chem.MolFromSmiles(child) if isinstance(child, str) else child
    n = child.GetNumAtoms()
    mol_a, pieces_a = _pieces(parent_a, ring)
    mol_b, pieces_b = _pieces(parent_b, ring)
    for pa in pieces_a:
        fitting = [pb for pb in pieces_b if len(pa) + len(pb) == n]
        if not fitting:
            continue
        matches_a = child.GetSubstructMatches(_query(mol_a, pa), maxMatches=2000)
        for pb in fitting:
            for mb in child.GetSubstructMatches(_query(mol_b, pb), maxMatches=2000):
                if any(not set(ma) & set(mb) for ma in matches_a):
                    return True
    return False


def test_made_of_pieces_is_a_real_check():
    # a hand-made child: the p-tolyl of A on the morpholine of B
    assert made_of_pieces("Cc1ccc(N2CCOCC2)cc1", A, B, ring=False)
    assert not made_of_pieces("FC(F)(F)c1ccc(Br)cc1", A, B, ring=False)  # no F or Br in either parent
    assert not made_of_pieces(A, A, B, ring=False)  # a parent is not one of its pieces plus one of B's
    assert not made_of_pieces("Cc1ccc(C(=O)NC2CCCCC2)cc1C", A, B, ring=False)  # one atom too many


@pytest.mark.parametrize("ring", [False, True])
def test_crossover_children_are_one_piece_of_each_parent(sample, ring):
    op = me._ring_crossover if ring else me._non_ring_crossover
    rng = np.random.default_rng(7)
    made = 0
    for k in range(25):
        a, b = sample[2 * k], sample[2 * k + 1]
        child = op(me._working_copy(_parse(a)), me._working_copy(_parse(b)), rng)
        if child is None:
            continue
        made += 1
        assert _valid(child)
        assert made_of_pieces(child, a, b, ring), (a, b, Chem.MolToSmiles(child))
    assert made >= 15


def test_public_crossover_child_is_one_piece_of_each_parent_and_new(sample):
    rng = np.random.default_rng(11)
    made = 0
    for k in range(30):
        a, b = sample[k], sample[-1 - k]
        child = crossover(_parse(a), _parse(b), rng)
        if child is None:
            continue
        made += 1
        smiles = Chem.MolToSmiles(child)
        assert smiles not in {Chem.CanonSmiles(a), Chem.CanonSmiles(b)}
        assert made_of_pieces(child, a, b, ring=False) or made_of_pieces(child, a, b, ring=True), (a, b, smiles)
    assert made >= 25


def test_crossover_leaves_the_parents_alone():
    a, b = _parse("C[C@H](N)c1ccccc1"), _parse(B)
    before = [Chem.MolToSmiles(a), Chem.MolToSmiles(b)]
    for seed in range(5):
        crossover(a, b, np.random.default_rng(seed))
        mutate(a, np.random.default_rng(seed))
    assert [Chem.MolToSmiles(a), Chem.MolToSmiles(b)] == before
    assert a.GetAtomWithIdx(5).GetIsAromatic()


# ------------------------------------------------------------------------------- validity/filters
def test_many_crossovers_and_mutations_are_valid_and_pass_the_filters(sample):
    rng = np.random.default_rng(0)
    mols = [_parse(s) for s in sample]
    children, mutants = [], []
    for _ in range(150):
        i, j = rng.integers(len(mols), size=2)
        children.append(crossover(mols[i], mols[j], rng))
        mutants.append(mutate(mols[i], rng))
    assert sum(c is not None for c in children) >= 140
    assert sum(m is not None for m in mutants) >= 140
    for mol in children + mutants:
        if mol is None:
            continue
        assert _valid(mol)
        assert mol.GetNumAtoms() > me.MIN_ATOMS
        # the size filter draws N(39.15, 3.5) per check: nothing anywhere near 60 atoms passes
        assert mol.GetNumAtoms() < me.AVERAGE_SIZE + 6 * me.SIZE_STDEV
    for mol in mutants:  # MOSES has no macrocycles, so every mutant passes the ring check
        if mol is not None:
            assert me.ring_ok(mol)
            assert max((len(r) for r in mol.GetRingInfo().AtomRings()), default=0) <= 6


@pytest.mark.parametrize("name", [name for _, name, _ in me.MUTATIONS])
def test_each_mutation_gives_valid_changed_molecules(name):
    build = {n: f for _, n, f in me.MUTATIONS}[name]
    rng = np.random.default_rng(3)
    parent = "CCCCC(=O)NCc1ccc(C)cc1OC"  # has chains, a ring, H-bearing atoms: every operator applies
    work = me._working_copy(_parse(parent))
    made = set()
    for _ in range(20):
        smarts = build(work, rng)
        child = me._apply(work, smarts, rng) if smarts else None
        if child is not None:
            assert _valid(child) and me.ring_ok(child)
            made.add(Chem.MolToSmiles(child))
    made.discard(Chem.CanonSmiles(parent))
    assert len(made) >= 2, name


def test_ring_check():
    assert me.ring_ok(_parse("c1ccccc1CC"))
    assert not me.ring_ok(_parse("C1CCCCCCC1"))  # 8-membered
    assert not me.ring_ok(_parse("C1=CC1"))  # double bond in a 3-ring
    assert not me.ring_ok(_parse("CC1=CCC1"))  # and in a 4-ring
    assert me.ring_ok(_parse("C1=CCCC1"))


def test_mutate_rate():
    mol = _parse(A)
    rng = np.random.default_rng(0)
    assert all(mutate(mol, rng, rate=0.0) is mol for _ in range(20))
    changed = [mutate(mol, rng, rate=1.0) for _ in range(20)]
    assert sum(m is not None and Chem.MolToSmiles(m) != Chem.MolToSmiles(mol) for m in changed) >= 18


# ------------------------------------------------------------------------------------- offspring
def test_offspring_are_distinct_new_canonical_and_valid(sample):
    kids = offspring(sample, 40, np.random.default_rng(1))
    assert len(kids) == 40 and len(set(kids)) == 40
    parents = {Chem.CanonSmiles(s) for s in sample}
    for s in kids:
        assert Chem.CanonSmiles(s) == s and s not in parents


def test_same_seed_same_offspring_whatever_the_global_random_state(sample):
    random.seed(1)
    np.random.seed(1)
    first = offspring(sample, 20, np.random.default_rng(42), mutation_rate=0.5)
    random.seed(2)
    np.random.seed(2)
    assert offspring(sample, 20, np.random.default_rng(42), mutation_rate=0.5) == first
    assert offspring(sample, 20, np.random.default_rng(43), mutation_rate=0.5) != first
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert Chem.MolToSmiles(crossover(_parse(A), _parse(B), rng_a)) == Chem.MolToSmiles(
        crossover(_parse(A), _parse(B), rng_b)
    )
    assert Chem.MolToSmiles(mutate(_parse(A), rng_a)) == Chem.MolToSmiles(mutate(_parse(A), rng_b))


def test_mating_pool_follows_scores(sample):
    # all the weight on one parent: every child is that parent crossed with itself (no mutation)
    scores = [0.0] * len(sample)
    scores[3] = 1.0
    kids = offspring(sample, 15, np.random.default_rng(0), mutation_rate=0.0, scores=scores)
    assert len(kids) >= 10
    p = sample[3]
    for kid in kids:
        assert made_of_pieces(kid, p, p, ring=False) or made_of_pieces(kid, p, p, ring=True), kid


def test_scores_are_shifted_when_negative_and_checked():
    w = me.selection_weights([-3.0, -1.0, 1.0], 3)
    assert np.all(w >= 0) and w[0] < 1e-9 and w[2] == pytest.approx(2 * w[1])
    assert offspring([A, B], 3, np.random.default_rng(0), scores=[-5.0, -1.0])
    with pytest.raises(ValueError, match="2 scores for 3 parents"):
        offspring([A, B, A], 3, np.random.default_rng(0), scores=[1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        offspring([A, B], 3, np.random.default_rng(0), scores=[1.0, float("nan")])


def test_offspring_gives_up_gracefully():
    rng = np.random.default_rng(0)
    assert offspring(["C", "CC", "CCO"], 10, rng) == []  # all children below the size limit
    assert offspring(["not a smiles", ""], 5, rng) == []
    assert offspring([A], 0, rng) == []
    assert len(offspring([A, B], 500, rng, max_tries=30)) <= 30
