"""The shipped molecular priors: each loads by name, samples valid distinct molecules, round-trips
MOSES molecules through its autoencoder, and carries the consistency model SQDF uses."""

import numpy as np
import pytest
import torch
from rdkit import DataStructs

from bbo.domains.molecule.moses import moses_smiles
from bbo.diffusion import load_prior
from bbo.diffusion.checkpoint import load_prior_consistency, shipped_priors
from oracles.chem import canonical_smiles, mol_from_smiles, morgan_fingerprint

# The shipped decoders are tuned to read the off-data latents a diffusion samples (pretrain's
# --decoder-noise), not only to reproduce their input. Measured on the first 200 MOSES test
# molecules: moses-selfies (2 CPU cores, 400,000 molecules) decodes 30% back exactly with a mean
# Morgan Tanimoto similarity of 0.51 to the input, moses-selfies-full (a GPU, all of MOSES) 64% and
# 0.75 (0.16 for a shuffled pairing). The bounds leave room for platform-level float differences.
ROUND_TRIP = {"moses-selfies": (0.2, 0.4), "moses-selfies-full": (0.55, 0.65)}
PRIORS = pytest.mark.parametrize("name", sorted(ROUND_TRIP))


@PRIORS
def test_the_molecular_prior_ships_and_samples_valid_molecules(name):
    assert name in shipped_priors()
    prior = load_prior(name)
    mols = prior.sample(64, seed=0)
    assert all(m and canonical_smiles(m) == m for m in mols)  # valid, canonical
    assert len(set(mols)) >= 60
    assert mols == prior.sample(64, seed=0)
    info = prior.info
    assert info["hardware"] and info["command"].startswith("bbo pretrain molecule")


@PRIORS
def test_autoencoder_round_trip_on_moses_test_molecules(name):
    prior = load_prior(name)
    exact_bound, similarity_bound = ROUND_TRIP[name]
    test = moses_smiles("test")[:200]
    ok = prior.codec.vocab.encode(test)[1]
    kept = [s for s, k in zip(test, ok) if k]
    assert len(kept) >= 195  # the vocabulary covers MOSES
    back = prior.codec.decode(prior.codec.encode(kept))
    exact = sum(a == b for a, b in zip(kept, back)) / len(kept)
    assert exact >= exact_bound, exact
    similar = np.mean([tanimoto(a, b) for a, b in zip(kept, back)])
    shuffled = np.mean([tanimoto(a, b) for a, b in zip(kept, back[1:] + back[:1])])
    assert similar >= similarity_bound and similar > shuffled + 0.2, (similar, shuffled)
    assert prior.codec.reconstruct(kept[:50]) == back[:50]
    # a posterior draw: seeded, a neighbour of the molecule rather than the molecule itself
    draws = prior.codec.reconstruct(kept[:50], sample=True, generator=torch.Generator().manual_seed(0))
    assert draws == prior.codec.reconstruct(kept[:50], sample=True, generator=torch.Generator().manual_seed(0))
    same = sum(a == b for a, b in zip(draws, back[:50]))
    assert same < 50, same
    assert np.mean([tanimoto(a, b) for a, b in zip(draws, kept[:50])]) > shuffled + 0.1


@PRIORS
def test_ships_a_consistency_model_on_the_same_schedule(name):
    prior = load_prior(name)
    cm = load_prior_consistency(prior)
    assert cm is not None and cm.schedule_config == prior.schedule_config
    x = prior.sample_tensors(8, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(cm(x, torch.full((8,), 500))).all()


def tanimoto(a: str, b: str) -> float:
    return DataStructs.TanimotoSimilarity(morgan_fingerprint(mol_from_smiles(a)), morgan_fingerprint(mol_from_smiles(b)))
