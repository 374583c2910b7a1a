"""``bbo pretrain molecule``: the command line of :func:`bbo.domains.molecule.pretrain.pretrain_molecule`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def pretrain(
    out: Annotated[Path, typer.Option(help="training directory; an existing one is resumed")] = Path("runs/pretrain-molecule"),
    vae_steps: Annotated[int, typer.Option(min=0, help="autoencoder training steps")] = 20_000,
    diffusion_steps: Annotated[int, typer.Option(min=0, help="latent diffusion training steps")] = 20_000,
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
    n_train: Annotated[Optional[int], typer.Option(help="train on a random subset of this many molecules")] = None,
    latent_dim: Annotated[int, typer.Option(min=2, help="autoencoder latent size (the diffusion space)")] = 64,
    enc_hidden: Annotated[int, typer.Option(min=8, help="GRU encoder width (each direction)")] = 256,
    dec_hidden: Annotated[int, typer.Option(min=8, help="GRU decoder width")] = 512,
    beta: Annotated[float, typer.Option(min=0.0, help="KL weight of the autoencoder")] = 0.05,
    kl_warmup: Annotated[Optional[int], typer.Option(min=0, help="steps over which the KL weight ramps up (default: 20% of --vae-steps; fix it when extending a run)")] = None,
    beta_schedule: Annotated[str, typer.Option(help="diffusers noise schedule of the latent diffusion")] = "linear",
    latent_noise: Annotated[float, typer.Option(min=0.0, help="diffuse over mu + latent_noise * sigma * eps of the autoencoder's posteriors (0: the means)")] = 0.0,
    denoiser_hidden: Annotated[int, typer.Option(min=8, help="width of the latent denoiser MLP")] = 512,
    denoiser_depth: Annotated[int, typer.Option(min=1, help="residual blocks of the latent denoiser")] = 4,
    decoder_noise: Annotated[float, typer.Option(min=0.0, help="fine-tune the decoder on latents + U(0, this) x std noise (0: keep it as trained)")] = 0.0,
    decoder_steps: Annotated[int, typer.Option(min=0, help="steps of that decoder fine-tuning")] = 0,
    consistency_steps: Annotated[int, typer.Option(min=0, help="consistency distillation steps (0: none shipped)")] = 4000,
    free_bits: Annotated[float, typer.Option(min=0.0, help="nats per latent dimension that the KL term does not charge (0: plain beta-VAE)")] = 0.0,
    minutes: Annotated[Optional[float], typer.Option(help="budget the training by wall time (55% autoencoder, 25% diffusion, 10% decoder); step counts become caps")] = None,
    bf16: Annotated[bool, typer.Option(help="bfloat16 autocast of the forward passes on CUDA (PyTorch runs cuDNN GRUs in float16 under autocast, without a loss scaler: untested on a GPU)")] = False,
    device: Annotated[Optional[str], typer.Option(help="cuda or cpu (default: cuda when present)")] = None,
    seed: int = 0,
) -> None:
    """Pretrain a latent diffusion prior on MOSES (SELFIES VAE, then the diffusion, then the
    decoder on off-data latents, then consistency distillation), resumably."""
    from bbo.domains.molecule.pretrain import pretrain_molecule

    if sys.argv[1:2] == ["pretrain"]:
        command = " ".join(["bbo", "pretrain", *sys.argv[2:]])
    elif __name__ == "__main__":  # python -m bbo.domains.molecule.cli: the same, without loading RDKit
        command = " ".join(["python -m bbo.domains.molecule.cli", *sys.argv[1:]])
    else:
        command = None
    try:
        pretrain_molecule(out, vae_steps=vae_steps, diffusion_steps=diffusion_steps, batch_size=batch_size,
                          n_train=n_train, latent_dim=latent_dim, enc_hidden=enc_hidden,
                          dec_hidden=dec_hidden, beta=beta, kl_warmup=kl_warmup, beta_schedule=beta_schedule,
                          latent_noise=latent_noise, denoiser_hidden=denoiser_hidden,
                          denoiser_depth=denoiser_depth, decoder_noise=decoder_noise, decoder_steps=decoder_steps,
                          consistency_steps=consistency_steps, free_bits=free_bits, minutes=minutes, bf16=bf16,
                          device=device,
                          seed=seed, command=command)
    except ValueError as err:  # settings that contradict each other or the run directory
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(f"prior written to [bold]{out / 'prior'}[/]; load it with bbo.diffusion.load_prior({str(out / 'prior')!r})")


if __name__ == "__main__":
    typer.run(pretrain)
