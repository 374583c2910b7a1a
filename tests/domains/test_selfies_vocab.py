"""SELFIES vocabulary: round trips on MOSES molecules, lengths, unknown tokens."""

import numpy as np

from bbo.domains.molecule.moses import moses_smiles
from bbo.domains.molecule.vocab import SelfiesVocabulary
from oracles.chem import canonical_smiles


def test_round_trip_on_moses_molecules():
    train = moses_smiles("train")[:20_000]
    vocab = SelfiesVocabulary.build(train)
    assert vocab.max_len >= 40  # covers 99.5% of MOSES (median 33 tokens)
    test = list(moses_smiles("test")[:1000])
    ids, ok = vocab.encode(test)
    assert ok.mean() >= 0.99
    decoded = vocab.decode(ids[ok])
    expected = [canonical_smiles(s) for s, good in zip(test, ok) if good]
    assert decoded == expected
    assert ids.shape == (1000, vocab.seq_len) and ids.dtype == np.int64


def test_unencodable_molecules_are_masked_out():
    vocab = SelfiesVocabulary(["[C]", "[O]"], max_len=3)
    ids, ok = vocab.encode(["CO", "CCCCC", "CN"])  # too long; unknown token [N]
    assert ok.tolist() == [True, False, False]
    assert vocab.decode(ids[:1]) == ["CO"]
    assert vocab.decode(np.zeros((1, 4), dtype=np.int64)) == [""]  # an empty sequence
