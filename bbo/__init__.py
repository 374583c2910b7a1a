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

from bbo.domains import Domain, get_domain, register_domain
from bbo.optimizer import FailedTrialWarning, Optimizer, load_optimizer, register_optimizer
from bbo.optimizers import (
    OPTIMIZERS,
    BoTorchOptimizer,
    GeneticOptimizer,
    NoiseBOOptimizer,
    NoiseCMAOptimizer,
    PGRAFTOptimizer,
    RandomOptimizer,
    SQDFOptimizer,
)
from bbo.strategy import Settings, Strategy
from bbo.study import JournalError, JournalInUseError, Trial, TrialSource, TrialState

load = load_optimizer  # the short name used in the design notes: bbo.load("runs/osim.db")

__version__ = "0.1.0"

__all__ = [
    "OPTIMIZERS",
    "BoTorchOptimizer",
    "Domain",
    "FailedTrialWarning",
    "GeneticOptimizer",
    "JournalError",
    "JournalInUseError",
    "NoiseBOOptimizer",
    "NoiseCMAOptimizer",
    "Optimizer",
    "PGRAFTOptimizer",
    "RandomOptimizer",
    "SQDFOptimizer",
    "Settings",
    "Strategy",
    "Trial",
    "TrialSource",
    "TrialState",
    "get_domain",
    "load",
    "load_optimizer",
    "register_domain",
    "register_optimizer",
]
