"""The optimizers, registered by name for configs and `load_optimizer`: random and graph GA
baselines (BoTorch GP-BO, SQDF and P-GRAFT register here too)."""

from bbo.optimizer import OPTIMIZERS, register_optimizer
from bbo.optimizers.botorch_bo import BoTorchOptimizer
from bbo.optimizers.genetic import GeneticOptimizer
from bbo.optimizers.pgraft_optimizer import PGRAFTOptimizer
from bbo.optimizers.random_search import RandomOptimizer
from bbo.optimizers.sqdf_optimizer import SQDFOptimizer

__all__ = [
    "OPTIMIZERS",
    "BoTorchOptimizer",
    "GeneticOptimizer",
    "PGRAFTOptimizer",
    "RandomOptimizer",
    "SQDFOptimizer",
    "register_optimizer",
]
