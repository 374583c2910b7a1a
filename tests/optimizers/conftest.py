"""The vector problem shared by the generative optimizers' tests: a two-mode Gaussian-mixture prior
with 30% of its mass on the better mode, and a linear black box."""

import pytest

from bbo.diffusion import GaussianMixturePrior, save_prior


def linear(xs):
    return [float(x[0] + 0.5 * x[1]) for x in xs]


@pytest.fixture(scope="module")
def prior_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("prior")
    save_prior(GaussianMixturePrior([[-2.0, 0.0], [2.0, 0.0]], [0.5, 0.5], [0.7, 0.3], num_steps=50), path)
    return str(path)


def max_pair_similarity(smiles):
    """The largest Tanimoto similarity (Morgan bits) between two different molecules of a batch."""
    import torch

    from bbo.surrogates.tanimoto_gp import fingerprints, tanimoto_similarity

    X = torch.as_tensor(fingerprints(smiles), dtype=torch.float64)
    return float((tanimoto_similarity(X, X) - 2 * torch.eye(len(smiles))).max())


def run_rounds(opt, oracle, rounds):
    """Ask, check every proposal is valid, score and tell, ``rounds`` times; the mean value per round."""
    import numpy as np

    means = []
    for _ in range(rounds):
        xs = opt.ask()
        assert all(opt.domain.validate(x) is None for x in xs)
        ys = oracle(xs)
        opt.tell(xs, ys)
        means.append(float(np.mean(ys)))
    return means


def asks_as_uninterrupted(journal, pending, twin, oracle, rounds):
    """The study in ``journal`` (closed with the batch ``pending`` asked and untold) resumes by
    asking that batch again, and ``twin``, a fresh study on the same seed run ``rounds`` rounds
    without interruption, asks the same batch next."""
    import numpy as np

    from bbo import load_optimizer

    resumed = load_optimizer(journal)
    assert all(np.array_equal(a, b) for a, b in zip(resumed.ask(), pending))
    run_rounds(twin, oracle, rounds)
    assert all(np.array_equal(a, b) for a, b in zip(twin.ask(), pending))


def crash_copy(journal, copy):
    """A copy of the journal as it is now, WAL included, and of its round checkpoints if any: the
    study as a crash at this moment would leave it, resumed from ``copy``."""
    import shutil
    import sqlite3
    from contextlib import closing
    from pathlib import Path

    journal, copy = Path(journal), Path(copy)
    with closing(sqlite3.connect(journal)) as src, closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)
    ckpt = journal.with_name(journal.name + ".ckpt")
    if ckpt.exists():
        shutil.copytree(ckpt, copy.with_name(copy.name + ".ckpt"))
