"""The optimizers: random baseline now; SQDF, P-GRAFT, BoTorch and GA register here as they land."""

from bbo.optimizer import OPTIMIZERS, register_optimizer
from bbo.optimizers.random_search import RandomOptimizer

__all__ = ["OPTIMIZERS", "RandomOptimizer", "register_optimizer"]
