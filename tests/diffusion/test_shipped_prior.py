"""The shipped molecular prior: loads by name, samples valid distinct molecules, round-trips MOSES
molecules through its autoencoder, and carries the consistency model SQDF uses."""

import torch

from bbo.data import moses_smiles
from bbo.diffusion import load_prior
from bbo.diffusion.checkpoint import load_prior_consistency, shipped_priors
from oracles.chem import canonical_smiles

EXACT_RECONSTRUCTION = 0.7  # measured 0.78 on 500 MOSES test molecules (greedy decoding of posterior means)


def test_the_molecular_prior_ships_and_samples_valid_molecules():
    assert "moses-selfies" in shipped_priors()
    prior = load_prior("moses-selfies")
    mols = prior.sample(64, seed=0)
    assert all(m and canonical_smiles(m) == m for m in mols)  # valid, canonical
    assert len(set(mols)) >= 60
    assert mols == prior.sample(64, seed=0)
    info = prior.info
    assert info["hardware"] and info["command"].startswith("bbo pretrain molecule")


def test_autoencoder_round_trip_on_moses_test_molecules():
    prior = load_prior("moses-selfies")
    test = moses_smiles("test")[:200]
    ok = prior.codec.vocab.encode(test)[1]
    kept = [s for s, k in zip(test, ok) if k]
    assert len(kept) >= 195  # the vocabulary covers MOSES
    back = prior.codec.decode(prior.codec.encode(kept))
    exact = sum(a == b for a, b in zip(kept, back)) / len(kept)
    assert exact >= EXACT_RECONSTRUCTION, exact
    assert prior.codec.reconstruct(kept[:50]) == back[:50]
    # a posterior draw: seeded, still mostly the same molecule, not always
    draws = prior.codec.reconstruct(kept[:50], sample=True, generator=torch.Generator().manual_seed(0))
    assert draws == prior.codec.reconstruct(kept[:50], sample=True, generator=torch.Generator().manual_seed(0))
    same = sum(a == b for a, b in zip(draws, back[:50]))
    assert 10 <= same < 50, same


def test_ships_a_consistency_model_on_the_same_schedule():
    prior = load_prior("moses-selfies")
    cm = load_prior_consistency(prior)
    assert cm is not None and cm.schedule_config == prior.schedule_config
    x = prior.sample_tensors(8, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(cm(x, torch.full((8,), 500))).all()
