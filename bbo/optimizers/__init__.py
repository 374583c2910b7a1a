"""The optimizers, registered by name for configs and `load_optimizer`: random and graph GA
baselines, BoTorch GP-BO over molecules and over a prior's noise, CMA-ES over a prior's noise,
SQDF and P-GRAFT."""

from bbo.optimizer import OPTIMIZERS, register_optimizer
from bbo.optimizers.botorch_bo import BoTorchOptimizer
from bbo.optimizers.genetic import GeneticOptimizer
from bbo.optimizers.noise_bo import NoiseBOOptimizer
from bbo.optimizers.noise_cma import NoiseCMAOptimizer
from bbo.optimizers.pgraft_optimizer import PGRAFTOptimizer
from bbo.optimizers.random_search import RandomOptimizer
from bbo.optimizers.sqdf_optimizer import SQDFOptimizer

__all__ = [
    "OPTIMIZERS",
    "BoTorchOptimizer",
    "GeneticOptimizer",
    "NoiseBOOptimizer",
    "NoiseCMAOptimizer",
    "PGRAFTOptimizer",
    "RandomOptimizer",
    "SQDFOptimizer",
    "register_optimizer",
]
