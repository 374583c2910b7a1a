"""Diffusion priors: denoisers, diffusers schedules, sampling with trajectories, checkpoints."""

from bbo.diffusion.checkpoint import load_prior, save_prior, shipped_priors
from bbo.diffusion.denoisers import (
    GaussianMixtureDenoiser,
    MLPDenoiser,
    NoiseGatedCorrection,
    ResidualDenoiser,
    build_denoiser,
)
from bbo.diffusion.gmm import GaussianMixturePrior
from bbo.diffusion.prior import DiffusionPrior, Trajectory

__all__ = [
    "DiffusionPrior",
    "GaussianMixtureDenoiser",
    "GaussianMixturePrior",
    "MLPDenoiser",
    "NoiseGatedCorrection",
    "ResidualDenoiser",
    "Trajectory",
    "build_denoiser",
    "load_prior",
    "save_prior",
    "shipped_priors",
]
