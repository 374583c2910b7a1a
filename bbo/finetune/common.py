"""What the fine-tuners share: the default trainable policy, frozen modules, device moves."""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator

import torch
from torch import nn

from bbo.diffusion.denoisers import MLPDenoiser, NoiseGatedCorrection, ResidualDenoiser
from bbo.diffusion.prior import DiffusionPrior


def default_policy(prior: DiffusionPrior, hidden: int = 64, depth: int = 2, seed: int = 0) -> nn.Module:
    """A full trainable copy of the prior's denoiser if it has parameters, else the prior's
    denoiser plus a zero-initialised residual MLP correction."""
    if has_weights(prior):
        policy = copy.deepcopy(prior.denoiser)
        for p in policy.parameters():
            p.requires_grad_(True)
        return policy
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        inner = MLPDenoiser(math.prod(prior.shape), hidden=hidden, depth=depth, time_dim=32)
    correction = NoiseGatedCorrection(inner, **prior.schedule_config)
    return ResidualDenoiser(copy.deepcopy(prior.denoiser), correction)


#: AdamW's step for a full copy of a trained denoiser. Adam moves every weight by about ``lr`` per
#: step whatever the gradient's size, so at 1e-3 the noise of the reward's gradient alone pushes a
#: trained network off its prior: with the reward all but switched off (alpha = 1,000) SQDF's policy
#: ended 1.4 nats per step from the doc-layouts prior after 40 updates (its pages' constraint score
#: 0.31 -> 0.18) and 0.2-0.3 nats from the molecular one (osimertinib MPO 0.16 -> 0.12); at 1e-4 it
#: stays within 0.01-0.04 nats (``tests/finetune/test_sqdf.py``).
FULL_FINETUNE_LR = 1e-4
#: AdamW's step for the zero-initialised residual correction of a parameter-free prior: new,
#: untrained weights, for which the usual 1e-3 is right.
CORRECTION_LR = 1e-3


def has_weights(prior: DiffusionPrior) -> bool:
    """Whether ``prior``'s denoiser has trained parameters (else it is analytic, as the mixture's)."""
    return any(True for _ in prior.denoiser.parameters())


def default_lr(prior: DiffusionPrior) -> float:
    """The fine-tuning step size for ``prior``'s default policy (see :func:`default_policy`)."""
    return FULL_FINETUNE_LR if has_weights(prior) else CORRECTION_LR


@contextlib.contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Parameters of ``modules`` do not require grad inside the block (restored afterwards)."""
    saved = [(p, p.requires_grad) for m in modules if m is not None for p in m.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def grad_norm(params: list[torch.Tensor]) -> float:
    grads = [p.grad.detach().flatten() for p in params if p.grad is not None]
    return float(torch.cat(grads).norm()) if grads else 0.0


def on_device(prior: DiffusionPrior, device: torch.device) -> DiffusionPrior:
    """``prior`` on ``device``: itself when already there, else a copy (the caller's is left as is)."""
    if prior.alphas_cumprod.device == device or (device.type == prior.alphas_cumprod.device.type == "cpu"):
        return prior
    return copy.deepcopy(prior).to(device)
