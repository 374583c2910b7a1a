"""Pretraining a diffusion prior's denoiser on a data tensor: the loop every domain's
``bbo pretrain`` shares.

AdamW with a linear warm-up and a cosine decay to a tenth of the peak rate, gradient clipping at
1, an exponential moving average of the weights (what is shipped), and a resumable checkpoint
``train.pt`` (weights, EMA, optimizer, random state and step) loaded with ``weights_only=True``,
so resuming never unpickles code. ``log.csv`` gets the mean loss every ``checkpoint_every`` steps.
"""

from __future__ import annotations

import copy
import csv
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bbo.diffusion.prior import DiffusionPrior


def warmup_cosine(i: int, steps: int, lr: float) -> float:
    """The learning rate at step ``i``: linear warm-up over ``min(500, steps / 10 + 1)`` steps, then
    cosine decay from ``lr`` to ``lr / 10``."""
    warm = min(500, steps // 10 + 1)
    if i < warm:
        return lr * (i + 1) / warm
    frac = (i - warm) / max(steps - warm, 1)
    return lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * frac)))


def train_denoiser(
    prior: DiffusionPrior,
    x_train: torch.Tensor,
    out: str | Path,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    ema_decay: float,
    checkpoint_every: int = 500,
    seed: int = 0,
    progress: bool = True,
    desc: str = "diffusion",
) -> nn.Module:
    """Train ``prior.denoiser`` on ``x_train`` (diffusion-space tensors, on the prior's device) by
    the denoising loss, resuming from ``out/train.pt``; returns the EMA denoiser (eval mode)."""
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = x_train.device
    ema = copy.deepcopy(prior.denoiser).requires_grad_(False)
    opt = torch.optim.AdamW(prior.denoiser.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    step = 0
    started = time.time()
    state_file = out / "train.pt"
    if state_file.exists():
        state = torch.load(state_file, map_location=dev, weights_only=True)
        prior.denoiser.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"].cpu() if dev.type == "cpu" else state["gen"])
        step = int(state["step"])

    log_path = out / "log.csv"
    bar = tqdm(range(step, steps), desc=desc, disable=not progress, initial=step, total=steps)
    running: list[float] = []
    prior.train()
    for i in bar:
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(i, steps, lr)
        idx = torch.randint(len(x_train), (batch_size,), generator=gen, device=dev)
        loss = prior.denoising_loss(x_train[idx], generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(prior.denoiser.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), prior.denoiser.parameters()):
                pe.lerp_(pm, 1 - ema_decay)
        running.append(loss.item())
        step = i + 1
        if step % checkpoint_every == 0 or step == steps:
            torch.save({"model": prior.denoiser.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                        "gen": gen.get_state(), "step": step}, state_file)
            new = not log_path.exists()
            with log_path.open("a", newline="") as fh:
                writer = csv.writer(fh)
                if new:
                    writer.writerow(["step", "loss", "lr", "seconds"])
                writer.writerow([step, f"{np.mean(running):.5f}", f"{warmup_cosine(i, steps, lr):.2e}",
                                 f"{time.time() - started:.1f}"])
            if progress:
                bar.set_postfix(loss=f"{np.mean(running):.4f}")
            running = []
    prior.eval()
    return ema.eval()


def last_loss(log_path: str | Path) -> float | None:
    """The last mean loss in a ``log.csv`` that :func:`train_denoiser` wrote."""
    log_path = Path(log_path)
    if not log_path.exists():
        return None
    rows = list(csv.DictReader(log_path.open()))
    return float(rows[-1]["loss"]) if rows else None
