"""``bbo pretrain layout``: the command line of :func:`bbo.domains.layout.pretrain.pretrain_layout`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console(width=None if sys.stdout.isatty() else 160)


def pretrain(
    out: Annotated[Path, typer.Option(help="training directory; an existing one is resumed")] = Path(
        "runs/pretrain-layout"
    ),
    steps: Annotated[int, typer.Option(min=0, help="diffusion training steps")] = 12000,
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
    lr: Annotated[float, typer.Option(min=0.0, help="peak AdamW learning rate (warm-up, cosine decay)")] = 1e-3,
    ema_decay: Annotated[float, typer.Option(min=0.0, max=1.0, help="EMA of the weights that is shipped")] = 0.999,
    consistency_steps: Annotated[
        int, typer.Option(min=0, help="consistency distillation steps (0: none shipped)")
    ] = 3000,
    sample_steps: Annotated[int, typer.Option(min=1, help="DDIM steps the shipped prior samples with")] = 50,
    device: Annotated[Optional[str], typer.Option(help="cuda or cpu (default: cuda when present)")] = None,
    seed: int = 0,
) -> None:
    """Pretrain the doc-layouts prior (set-transformer diffusion over the generator's pages) and its
    consistency model, resumably."""
    from bbo.domains.layout.pretrain import pretrain_layout

    command = " ".join(["bbo", "pretrain", *sys.argv[2:]]) if sys.argv[1:2] == ["pretrain"] else None
    pretrain_layout(
        out,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        ema_decay=ema_decay,
        consistency_steps=consistency_steps,
        sample_steps=sample_steps,
        device=device,
        seed=seed,
        command=command,
    )
    console.print(f"prior written to [bold]{out / 'prior'}[/]")
