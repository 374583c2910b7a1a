"""PMO metrics against values worked out by hand."""

import math

import numpy as np
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import AllChem

from bbo.bench import metrics
from bbo.domains.molecule import metrics as chem


def test_topk_auc_hand_computed():
    values = [1, 3, 2, 5, 4]
    # top-1 curve 1,3,3,5,5; grid at calls 2 and 4; trapezoids from 0:
    # 2*(0+3)/2 + 2*(3+5)/2 + 1*(5+5)/2 = 3 + 8 + 5 = 16
    assert metrics.topk_auc(values, k=1, freq=2) == pytest.approx(16 / 5)
    # extended at the last value to a budget of 10: + 5*5
    assert metrics.topk_auc(values, k=1, freq=2, budget=10) == pytest.approx(41 / 10)
    # top-2 curve 1,2,2.5,4,4.5: 2*(0+2)/2 + 2*(2+4)/2 + 1*(4+4.5)/2 = 2 + 6 + 4.25
    assert metrics.topk_auc(values, k=2, freq=2) == pytest.approx(12.25 / 5)


def test_topk_auc_constant_run_matches_pmo_grid():
    # 1,000 calls all 0.5 on PMO's 100-call grid: the first trapezoid starts at 0, so
    # (100*0.25 + 8*100*0.5 + 100*0.5) / 1000 = 0.475
    assert metrics.topk_auc([0.5] * 1000, k=10) == pytest.approx(0.475)
    # a run stopped after 500 of 1,000 calls: 25 + 3*50 + 50 + 500*0.5 = 475
    assert metrics.topk_auc([0.5] * 500, k=10, budget=1000) == pytest.approx(0.475)


def test_topk_auc_failed_calls_count_but_never_score():
    # curve: nan->0, 2 ; grid at 1: 1*(0+0)/2; last: 1*(2+0)/2 = 1
    assert metrics.topk_auc([math.nan, 2.0], k=1, freq=1) == pytest.approx(0.5)
    assert metrics.topk_auc([], k=1, budget=10) == 0.0


def test_topk_mean_and_curve():
    assert metrics.topk_mean([3, 1, 2], 2) == 2.5
    assert metrics.topk_mean([3, 1], 10) == 2.0
    assert math.isnan(metrics.topk_mean([math.nan], 1))
    np.testing.assert_allclose(metrics.topk_curve([1, math.nan, 3, 2, 5], 2), [1, 1, 2, 2.5, 4])


def test_unique_calls_keep_first_occurrence():
    assert metrics.unique_calls(["a", "b", "a", "c"], [1, 2, 3, 4]) == (["a", "b", "c"], [1, 2, 4])


def test_internal_diversity_against_rdkit():
    smiles = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "CCN(CC)CC"]
    fps = [AllChem.GetMorganFingerprintAsBitVect(Chem.MolFromSmiles(s), 2, nBits=2048) for s in smiles]
    pairs = [(i, j) for i in range(4) for j in range(4) if i < j]
    expected = 1 - np.mean([DataStructs.TanimotoSimilarity(fps[i], fps[j]) for i, j in pairs])
    assert chem.internal_diversity(smiles) == pytest.approx(expected)
    assert chem.internal_diversity(["CCO", "OCC"]) == pytest.approx(0.0)
    assert math.isnan(chem.internal_diversity(["CCO"]))


def test_naturalness_shares():
    smiles = ["CCO", "OCC", "c1ccccc1", "not a molecule"]
    assert chem.validity(smiles) == 0.75
    assert chem.uniqueness(smiles) == pytest.approx(2 / 3)
    assert chem.novelty(smiles, ["CCO"]) == 0.5
    # benzene's SA score from RDKit's contrib scorer is about 1 (very easy)
    assert 1.0 <= chem.mean_sa(["c1ccccc1"]) < 2.0


def test_qed_filters_and_fcd():
    from rdkit.Chem import QED

    assert chem.mean_qed(["CCO", "bad"]) == pytest.approx(QED.qed(Chem.MolFromSmiles("CCO")))
    # catechol is a PAINS/Brenk alert; ethanol passes every filter
    assert chem.filter_pass_rate(["CCO", "Oc1ccccc1O"]) == 0.5
    same = ["CCO", "CCN", "c1ccccc1", "CC(=O)O", "CCCl", "OCCO"]
    assert chem.frechet_chemnet_distance(same, same) == pytest.approx(0.0, abs=1e-3)
    assert chem.frechet_chemnet_distance(same, ["c1ccc2ccccc2c1", "CCCCCCCCCC", "O=C=O", "N#N", "CS", "FC(F)F"]) > 1


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fcd_matches_the_fcd_package():
    from fcd import get_fcd

    from bbo.domains.molecule.moses import moses_smiles

    a, b = list(moses_smiles("train")[:300]), list(moses_smiles("test")[:300])
    assert chem.frechet_chemnet_distance(a, b) == pytest.approx(get_fcd(a, b), rel=1e-6)


def test_auc_can_start_from_the_first_value():
    # for an objective without PMO's floor of 0 (a negated minimized value), start at the first call
    assert metrics.topk_auc([-3.0] * 1000, k=1, start=None) == pytest.approx(-3.0)
    assert metrics.topk_auc([-3.0, -1.0], k=1, freq=1, start=None) == pytest.approx((-3.0 + (-3.0 - 1.0) / 2) / 2)
