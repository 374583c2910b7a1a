"""The simple molecule oracles (qed, logp, sa, penalized_logp, similarity), checked against RDKit
called directly here, plus the MoleculeOracle contract: canonical keys, NaN for invalid SMILES,
clear errors from get_oracle."""

from __future__ import annotations

import logging
import math
import pickle

import numpy as np
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import QED, Crippen, rdFingerprintGenerator
from rdkit.Contrib.SA_Score import sascorer

from oracles import BudgetedOracle, get_oracle, list_oracles
from oracles.molecules import MoleculeOracle

MOLECULES = [
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",  # caffeine
    "CC1=CC=C(C=C1)C1=CC(=NN1C1=CC=C(C=C1)S(N)(=O)=O)C(F)(F)F",  # celecoxib
    "COc1cc(N(C)CCN(C)C)c(NC(=O)C=C)cc1Nc2nccc(n2)c3cn(C)c4ccccc34",  # osimertinib
    "CC1CCCN(C(=O)c2ccc(F)cc2)C1",
    "O=C(Nc1ccc2c(c1)OCO2)c1cc(-c2ccccc2)on1",
    "C1CCCCCCCCCCC1",  # a 12-ring: cycle penalty 6
    "O=C1CCCCCCC(=O)N1",  # an 9-ring lactam: cycle penalty 3
    "C",
]
INVALID = ["C1CC", "not_a_smiles", "C(C)(C)(C)(C)C", "", None]


def _mols():
    return [Chem.MolFromSmiles(s) for s in MOLECULES]


def _largest_ring(mol):
    return max((len(r) for r in mol.GetRingInfo().AtomRings()), default=0)


EXPECTED = {
    "qed": lambda m: QED.qed(m),
    "logp": lambda m: Crippen.MolLogP(m),
    "sa": lambda m: sascorer.calculateScore(m),
    "penalized_logp": lambda m: (
        Crippen.MolLogP(m) - sascorer.calculateScore(m) - max(0, _largest_ring(m) - 6)
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_property_oracles_match_rdkit(name):
    oracle = get_oracle(name)
    values = oracle(MOLECULES + INVALID)
    assert isinstance(values, np.ndarray) and values.dtype == float
    assert values.shape == (len(MOLECULES) + len(INVALID),)
    expected = [EXPECTED[name](m) for m in _mols()]
    np.testing.assert_allclose(values[: len(MOLECULES)], expected, rtol=0, atol=1e-6)
    assert np.isnan(values[len(MOLECULES) :]).all()


def test_penalized_logp_cycle_penalty():
    oracle = get_oracle("penalized_logp")
    for smiles, penalty in [("C1CCCCCCCCCCC1", 6), ("O=C1CCCCCCC(=O)N1", 3), ("c1ccccc1", 0)]:
        mol = Chem.MolFromSmiles(smiles)
        base = Crippen.MolLogP(mol) - sascorer.calculateScore(mol)
        assert oracle([smiles])[0] == pytest.approx(base - penalty, abs=1e-9)


def test_directions():
    infos = {info.name: info for info in list_oracles()}
    assert infos["sa"].direction == "minimize" and get_oracle("sa").direction == "minimize"
    for name in ("qed", "logp", "penalized_logp", "similarity"):
        assert infos[name].direction == "maximize"
        assert infos[name].domain == "molecule"


def test_similarity_matches_rdkit_ecfp4():
    target = "CC1=CC=C(C=C1)C1=CC(=NN1C1=CC=C(C=C1)S(N)(=O)=O)C(F)(F)F"
    oracle = get_oracle("similarity", target=target)
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    ref = gen.GetFingerprint(Chem.MolFromSmiles(target))
    expected = [DataStructs.TanimotoSimilarity(ref, gen.GetFingerprint(m)) for m in _mols()]
    values = oracle(MOLECULES + INVALID)
    np.testing.assert_allclose(values[: len(MOLECULES)], expected, rtol=0, atol=1e-6)
    assert np.isnan(values[len(MOLECULES) :]).all()
    assert oracle([target])[0] == 1.0
    # survives pickling (the worker processes of n_jobs > 1)
    clone = pickle.loads(pickle.dumps(oracle))
    np.testing.assert_array_equal(clone(MOLECULES), values[: len(MOLECULES)])


@pytest.mark.parametrize("target", ["not a molecule", "C1CC", "", None])
def test_similarity_bad_target(target):
    with pytest.raises(ValueError, match="target"):
        get_oracle("similarity", target=target)


def test_similarity_needs_target():
    with pytest.raises(ValueError, match="target"):
        get_oracle("similarity")


def test_unknown_oracle():
    with pytest.raises(ValueError, match="unknown oracle"):
        get_oracle("no_such_oracle")
    with pytest.raises(ValueError, match="unknown oracle"):
        get_oracle("pmo/no_such_task")


def test_key_is_canonical_smiles():
    oracle = get_oracle("qed")
    assert isinstance(oracle, MoleculeOracle)
    assert oracle.key("OCC") == oracle.key("C(O)C") == Chem.MolToSmiles(Chem.MolFromSmiles("CCO"))
    for bad in INVALID:
        assert oracle.key(bad) is None


def test_invalid_is_logged_and_nan(caplog):
    oracle = get_oracle("logp")
    with caplog.at_level(logging.WARNING, logger="oracles"):
        assert math.isnan(oracle.score("C1CC"))
    assert any("C1CC" in record.getMessage() for record in caplog.records)


def test_budgeted_oracle_charges_unique_valid_molecules():
    budgeted = BudgetedOracle(get_oracle("qed"), budget=10)
    values = budgeted(["CCO", "OCC", "C1CC", "c1ccccc1"])
    assert budgeted.calls == 2
    assert values[0] == values[1] and math.isnan(values[2])
