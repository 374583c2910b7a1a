"""The GP selection of the generative optimizers on molecules: the policy fills the pool, the GP
picks new distinct molecules, each pick's source is in its trial, the run resumes exactly, and the
selection is refused (or off by default) where the domain has no GP kernel."""

import warnings

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import Crippen

from bbo import FailedTrialWarning, load_optimizer
from bbo.optimizers.pgraft_optimizer import PGRAFTOptimizer
from bbo.optimizers.selection import PolicyPoolSelector, resolve_selection
from bbo.optimizers.sqdf_optimizer import SQDFOptimizer
from tests.optimizers.conftest import crash_copy, max_pair_similarity

# a small molecular run: 16 prior samples, then GP-chosen batches of 8 from a pool of 120
SMALL = dict(prior="moses-selfies", batch_size=8, selection_start=16, pool_size=120, sqdf_steps=4,
             sqdf_batch_size=16, trajectories_per_update=8, surrogate_steps=50, surrogate_hidden=32, sample_steps=10)


def logp(xs):
    return [Crippen.MolLogP(Chem.MolFromSmiles(x)) for x in xs]


def sources(opt):
    return [t.metadata.get("source") for t in opt.trials]


@pytest.fixture(scope="module")
def run():
    opt = SQDFOptimizer(seed=0, **SMALL)
    batches = []
    for n in (16, 8, 8, 8):
        xs = opt.ask(n)
        ys = logp(xs)
        opt.tell(xs, ys)
        batches.append((xs, ys))
    return opt, batches


def test_gp_selection_is_the_default_on_molecules_and_off_elsewhere(prior_dir):
    assert resolve_selection("auto", "molecule") == "gp" and resolve_selection("auto", "vector") == "policy"
    assert isinstance(SQDFOptimizer(prior="moses-selfies").strategy.selector, PolicyPoolSelector)
    assert SQDFOptimizer(prior="moses-selfies", selection="policy").strategy.selector is None
    assert SQDFOptimizer(prior=prior_dir).strategy.selector is None  # a vector prior: no GP kernel
    with pytest.raises(ValueError, match="selection='gp' needs a domain with a GP kernel"):
        SQDFOptimizer(prior=prior_dir, selection="gp")
    with pytest.raises(ValueError, match="offspring_fraction"):
        SQDFOptimizer(prior="moses-selfies", offspring_fraction=1.5)


def test_policy_fills_the_pool_and_the_gp_picks_new_molecules(run):
    opt, batches = run
    src = sources(opt)
    assert src[:16] == ["policy"] * 16  # before selection_start: the policy's own samples
    assert set(src[16:]) <= {"policy", "offspring", "reference"} and "offspring" in src[16:]
    keys = [t.key for t in opt.trials]
    assert len(set(keys[16:])) == 24 and not set(keys[16:]) & set(keys[:16])  # nothing asked twice
    assert opt.round == 4 and opt.strategy.policy is not opt.strategy.prior  # SQDF still fine-tunes (round = 8 told)
    # the GP's picks beat the prior's samples on a smooth property (seeded)
    assert np.mean(batches[-1][1]) > np.mean(batches[0][1]) + 0.5, [np.mean(b[1]) for b in batches]


def test_without_offspring_the_pool_is_the_policy():
    opt = SQDFOptimizer(seed=1, offspring_fraction=0.0, **SMALL)
    xs = opt.ask(16)
    opt.tell(xs, logp(xs))
    picked = opt.ask(8)
    assert len(picked) == 8 and set(sources(opt)[16:]) <= {"policy", "reference"}
    assert sources(opt)[16:].count("policy") >= 6  # reference draws only fill what the policy repeated


def test_pgraft_takes_the_same_selection():
    opt = PGRAFTOptimizer(seed=0, train_steps=4, samples_per_round=64, pgraft_rounds=1,
                          **{k: v for k, v in SMALL.items() if not k.startswith(("sqdf", "traj"))})
    xs = opt.ask(16)
    opt.tell(xs, logp(xs))
    assert len(opt.ask(8)) == 8 and "offspring" in sources(opt)[16:]


def test_resume_asks_what_an_uninterrupted_run_would(tmp_path):
    path = tmp_path / "s.db"
    opt = SQDFOptimizer(seed=2, storage=path, **SMALL)
    for n in (16, 8):
        xs = opt.ask(n)
        opt.tell(xs, logp(xs))
    pending = opt.ask(4)  # left RUNNING, as by a crash
    crash_copy(path, tmp_path / "copy.db")
    expected = opt.ask()
    expected_sources = sources(opt)[-8:]
    opt.close()

    resumed = load_optimizer(tmp_path / "copy.db")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FailedTrialWarning)
        got = resumed.ask(12)
    assert got[:4] == pending and got[4:] == expected
    assert [t.metadata.get("source") for t in resumed.trials][-8:] == expected_sources


def test_each_candidate_is_labelled_by_the_part_of_the_pool_that_brought_it(monkeypatch):
    from oracles.chem import canonical_smiles

    opt = SQDFOptimizer(seed=0, **SMALL)
    xs = opt.ask(16)
    opt.tell(xs, logp(xs))
    bred = [canonical_smiles(s) for s in ["CCOc1ccccc1", "CCN(CC)CC", "O=C(O)c1ccccc1O", "CC(C)Cc1ccc(C)cc1"]]
    sampled = bred[:2] + [canonical_smiles(s) for s in ["c1ccc2ccccc2c1", "CCCCCCO"]]  # two repeat offspring
    monkeypatch.setattr(opt.domain, "offspring", lambda *a, **k: list(bred))
    selector = opt.strategy.selector
    monkeypatch.setattr(selector, "_sample", lambda n, rng: list(sampled))
    keys, values = selector._told_data()
    pool = selector._candidate_pool(12, np.random.default_rng(0), keys, values, {t.key for t in opt.trials})
    assert pool[:6] == bred + sampled[2:] and len(pool) == 12
    assert [selector.source(k) for k in pool] == ["offspring"] * 4 + ["policy"] * 2 + ["reference"] * 6


def test_gp_batches_asked_before_any_tell_never_repeat_a_pending_molecule(run):
    opt, _ = run
    a, b = opt.ask(8), opt.ask(8)
    assert len(set(a) | set(b)) == 16 and not (set(a) | set(b)) & {t.key for t in opt.completed_trials()}


def test_minimize_follows_the_study_direction():
    opt = SQDFOptimizer(seed=0, direction="minimize", **SMALL)
    xs = opt.ask(16)
    first = logp(xs)
    opt.tell(xs, first)
    picked = opt.ask(8)
    assert np.mean(logp(picked)) < np.mean(first) - 0.5


def test_a_study_from_before_the_selection_resumes_with_the_policy_samples(tmp_path, prior_dir):
    from bbo.study import Journal

    path = tmp_path / "old.db"
    opt = SQDFOptimizer(prior=prior_dir, seed=0, storage=path, batch_size=8, sample_steps=10)
    opt.tell(xs := opt.ask(), [float(x[0]) for x in xs])
    opt.close()
    journal = Journal(path)
    stored = journal.get_meta("optimizer")
    for k in ("selection", "selection_start", "pool_size", "offspring_fraction"):
        del stored["settings"][k]  # as a journal written before these settings existed
    journal.set_meta("optimizer", stored)
    journal.close()
    with pytest.raises(ValueError, match="other settings selection"):
        SQDFOptimizer(prior=prior_dir, seed=0, storage=path, batch_size=8, sample_steps=10)  # auto is not what it ran
    resumed = load_optimizer(path)
    assert resumed.strategy.settings.selection == "policy" and resumed.n_told == 8
    assert resumed.config()["settings"]["selection"] == "policy"


def test_the_batch_limit_reaches_the_gp_selection():
    opt = SQDFOptimizer(seed=0, max_batch_similarity=0.35, **SMALL)
    assert opt.strategy.selector.max_batch_similarity == 0.35
    xs = opt.ask(16)
    opt.tell(xs, logp(xs))
    batch = opt.ask()
    assert set(sources(opt)[16:]) <= {"policy", "offspring", "reference"}
    assert max_pair_similarity(batch) <= 0.35


def test_reference_initial_design_starts_where_gp_bo_starts():
    from bbo.optimizers.botorch_bo import BoTorchOptimizer

    opt = SQDFOptimizer(seed=3, initial_design="reference", **SMALL)
    first = opt.ask(16)
    gp_bo = BoTorchOptimizer(seed=3, batch_size=8, n_initial=16)
    assert [opt.domain.key(x) for x in first] == gp_bo.ask(16)  # the same MOSES draws for the same seed
    assert sources(opt) == ["reference"] * 16
    opt.tell(first, logp(first))
    opt.ask(8)  # after the first round: the GP's picks from the policy's pool and offspring
    assert set(sources(opt)[16:]) <= {"policy", "offspring", "reference"} and "offspring" in sources(opt)[16:]
    assert opt.round == 2 and opt.strategy.policy is not opt.strategy.prior  # fine-tuned on the MOSES start


def test_reference_initial_design_needs_reference_data(prior_dir, monkeypatch):
    from bbo.domains.base import Domain
    from bbo.domains.vector import VectorDomain

    opt = SQDFOptimizer(prior=prior_dir, initial_design="reference", seed=0, batch_size=4)
    assert len(opt.ask()) == 4 and {t.metadata.get("source") for t in opt.trials} == {"reference"}
    # a reference set that has run out of new objects is an error, not an endless loop
    monkeypatch.setattr(VectorDomain, "sample_reference", lambda self, n, rng: [np.zeros(self.dim)] * n)
    with pytest.raises(ValueError, match="gave 1 new distinct objects of the 4 asked"):
        SQDFOptimizer(prior=prior_dir, initial_design="reference", seed=0, batch_size=4).ask()
    monkeypatch.setattr(VectorDomain, "sample_reference", Domain.sample_reference)  # a domain without data
    with pytest.raises(ValueError, match="initial_design='reference'.*no reference data"):
        SQDFOptimizer(prior=prior_dir, initial_design="reference")
