"""``bbo pretrain image``: the command line of :func:`bbo.domains.image.pretrain.pretrain_image`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console(width=None if sys.stdout.isatty() else 160)


def pretrain(
    out: Annotated[Path, typer.Option(help="training directory; an existing one is resumed")] = Path("runs/pretrain-image"),
    steps: Annotated[int, typer.Option(min=0, help="diffusion training steps")] = 8000,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    lr: Annotated[float, typer.Option(min=0.0, help="peak AdamW learning rate (warm-up, cosine decay)")] = 1e-3,
    ema_decay: Annotated[float, typer.Option(min=0.0, max=1.0, help="EMA of the weights that is shipped")] = 0.999,
    classifier_epochs: Annotated[int, typer.Option(min=1, help="epochs of the digit classifier")] = 60,
    consistency_steps: Annotated[int, typer.Option(min=0, help="consistency distillation steps (0: none shipped)")] = 3000,
    device: Annotated[Optional[str], typer.Option(help="cuda or cpu (default: cuda when present)")] = None,
    seed: int = 0,
) -> None:
    """Pretrain the pixel-space digits prior (UNet2DModel DDPM on scikit-learn's digits), the digit
    classifier, and the prior's consistency model, resumably."""
    from bbo.domains.image.pretrain import pretrain_image

    command = " ".join(["bbo", "pretrain", *sys.argv[2:]]) if sys.argv[1:2] == ["pretrain"] else None
    pretrain_image(out, steps=steps, batch_size=batch_size, lr=lr, ema_decay=ema_decay,
                   classifier_epochs=classifier_epochs, consistency_steps=consistency_steps, device=device,
                   seed=seed, command=command)
    console.print(f"prior written to [bold]{out / 'prior'}[/], classifier to [bold]{out / 'classifier'}[/]")
