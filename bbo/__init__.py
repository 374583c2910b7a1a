"""bbo: online black-box optimization with diffusion generators.

>>> from bbo import RandomOptimizer
>>> from oracles import get_oracle
>>> oracle = get_oracle("pmo/qed")
>>> opt = RandomOptimizer(batch_size=8, seed=0, storage="runs/demo.db")
>>> while opt.n_told < 32:
...     xs = opt.ask()
...     opt.tell(xs, oracle(xs))
>>> opt.best(3)
"""

from bbo.optimizer import FailedTrialWarning, Optimizer, load_optimizer
from bbo.optimizers import (
    OPTIMIZERS,
    BoTorchOptimizer,
    GeneticOptimizer,
    PGRAFTOptimizer,
    RandomOptimizer,
    SQDFOptimizer,
)
from bbo.study import JournalInUseError, Trial, TrialSource, TrialState

load = load_optimizer  # the short name used in the design notes: bbo.load("runs/osim.db")

__version__ = "0.1.0"

__all__ = [
    "OPTIMIZERS",
    "BoTorchOptimizer",
    "FailedTrialWarning",
    "GeneticOptimizer",
    "JournalInUseError",
    "Optimizer",
    "PGRAFTOptimizer",
    "RandomOptimizer",
    "SQDFOptimizer",
    "Trial",
    "TrialSource",
    "TrialState",
    "load",
    "load_optimizer",
]
