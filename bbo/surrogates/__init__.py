"""Surrogate models for the model-based optimizers: the bootstrap deep ensemble (differentiable,
for the generative optimizers) and the Tanimoto GP (for BoTorch GP-BO).

The Tanimoto GP (:mod:`bbo.surrogates.tanimoto_gp`) is imported on first use, so that importing
this package does not load BoTorch/GPyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

_TANIMOTO_GP = (
    "FiniteSetModel",
    "MinMaxKernel",
    "TanimotoKernel",
    "build_gp",
    "fingerprints",
    "fit_gp",
    "joint_posterior",
)


from bbo.surrogates.ensemble import BootstrapEnsemble


def __getattr__(name: str) -> Any:
    if name in _TANIMOTO_GP:
        return getattr(importlib.import_module("bbo.surrogates.tanimoto_gp"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BootstrapEnsemble", *_TANIMOTO_GP]
