"""RandomOptimizer(prior=...): the non-adaptive baseline samples the generative optimizers' prior."""

import numpy as np

from bbo import load_optimizer
from bbo.optimizers import RandomOptimizer
from tests.optimizers.conftest import linear


def test_samples_the_prior_and_resumes(tmp_path, prior_dir):
    opt = RandomOptimizer(prior=prior_dir, batch_size=400, seed=3, storage=tmp_path / "r.db")
    assert opt.domain.name == "vector" and opt.domain.dim == 2
    xs = opt.ask()
    x = np.stack(xs)
    better = (x[:, 0] > 0).mean()  # the prior puts 30% on the mode at +2
    assert abs(better - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 400)
    assert abs(x[x[:, 0] > 0, 0].mean() - 2.0) < 0.15
    opt.tell(xs, linear(xs))
    again = load_optimizer(tmp_path / "r.db")
    assert again.n_told == 400 and again.config() == opt.config()
    assert again.config()["settings"]["prior"] == str(__import__("pathlib").Path(prior_dir).resolve())
    # the draws are a function of (seed, asks so far): the reloaded study continues identically
    assert [a.tolist() for a in again.ask(5)] == [a.tolist() for a in opt.ask(5)]
