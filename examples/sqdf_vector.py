"""SQDF on a continuous problem with a prior whose answer is known.

The prior is a two-component Gaussian mixture (70% of its mass on the worse mode); the black box
is linear. SQDFOptimizer fits a surrogate to what it is told each round and fine-tunes the prior
toward p ∝ prior · exp(reward / alpha), so its asks move to the better mode while staying samples
of the prior's shape. About a minute on 2 CPU cores.

Run: python examples/sqdf_vector.py
"""

import numpy as np

from bbo import SQDFOptimizer
from bbo.diffusion import GaussianMixturePrior, save_prior

save_prior(GaussianMixturePrior([[-2.0, 0.0], [2.0, 0.0]], [0.5, 0.5], [0.7, 0.3], num_steps=50), "runs/example/gmm")


def black_box(xs):
    return [float(x[0] + 0.5 * x[1]) for x in xs]


opt = SQDFOptimizer(prior="runs/example/gmm", batch_size=64, seed=0, alpha=0.5, sqdf_steps=100,
                    x0_estimator="tweedie", surrogate_steps=300, surrogate_hidden=64)
for round_ in range(5):
    xs = opt.ask()
    ys = black_box(xs)
    opt.tell(xs, ys)
    share = np.mean([x[0] > 0 for x in xs])
    print(f"round {round_}: mean value {np.mean(ys):+.2f}, asks on the better mode {share:.0%}")
print("best:", opt.best(1))
