"""Save and load priors as ``denoiser.safetensors`` plus ``config.json``: weights and JSON only,
never a pickle, so a checkpoint from anywhere is safe to open."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from bbo.diffusion.denoisers import build_denoiser
from bbo.diffusion.prior import DiffusionPrior

CONFIG = "config.json"
WEIGHTS = "denoiser.safetensors"
SHIPPED_DIR = Path(__file__).parent / "zoo"


def save_prior(prior: DiffusionPrior, directory: str | Path) -> Path:
    """Write ``prior`` to ``directory`` (created if needed); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    codec = None if prior.codec is None else {"name": prior.codec.name, "config": prior.codec.config()}
    config = {
        "format": "bbo-prior/1",
        "prior": prior.config(),
        "denoiser": {"name": prior.denoiser.name, "config": prior.denoiser.config()},
        "codec": codec,
        "info": prior.info,
    }
    state = {k: v.detach().cpu().contiguous() for k, v in prior.denoiser.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    if prior.codec is not None and hasattr(prior.codec, "state_dict"):
        save_file({k: v.detach().cpu().contiguous() for k, v in prior.codec.state_dict().items()},
                  str(directory / "codec.safetensors"))
    (directory / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return directory


def load_prior(name_or_path: str | Path, device: str | None = None) -> DiffusionPrior:
    """A shipped prior by name (see ``bbo priors``) or a prior saved with :func:`save_prior`."""
    path = Path(name_or_path)
    if not path.exists() and (SHIPPED_DIR / str(name_or_path)).exists():
        path = SHIPPED_DIR / str(name_or_path)
    if not path.is_dir():
        raise FileNotFoundError(f"no prior at {name_or_path!r}: not a directory and not a shipped prior "
                                f"({', '.join(shipped_priors()) or 'none shipped'})")
    for name in (CONFIG, WEIGHTS):
        if not (path / name).exists():
            raise FileNotFoundError(f"{path}: missing {name}; is this a directory written by save_prior?")
    config = json.loads((path / CONFIG).read_text())
    denoiser = build_denoiser(config["denoiser"])
    _load_weights(denoiser, path / WEIGHTS, "denoiser")
    codec = None
    if config.get("codec"):
        from bbo.diffusion.codecs import build_codec

        codec = build_codec(config["codec"])
        if hasattr(codec, "load_state_dict"):
            _load_weights(codec, path / "codec.safetensors", "codec")
    p = config["prior"]
    prior = DiffusionPrior(denoiser, tuple(p["shape"]), codec, num_train_timesteps=p["num_train_timesteps"],
                           beta_schedule=p["beta_schedule"], sample_steps=p["sample_steps"], info=config.get("info"))
    prior.eval()
    prior.source = path  # where a consistency model shipped with the prior is found
    return prior.to(device) if device else prior


def load_prior_consistency(prior: DiffusionPrior, device: str | torch.device | None = None):
    """The consistency model distilled from ``prior`` and saved beside it (``<prior dir>/consistency``,
    as ``bbo pretrain`` ships it), or None when there is none."""
    source = prior.source
    if source is None or not (Path(source) / "consistency").is_dir():
        return None
    from bbo.diffusion.consistency import load_consistency

    return load_consistency(Path(source) / "consistency", device=device)


def _load_weights(module: Any, file: Path, what: str) -> None:
    if not file.exists():
        raise FileNotFoundError(f"{file.parent}: missing {file.name}")
    state = load_file(str(file))
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{file}: {what} weights do not match its config: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise ValueError(f"{file}: {what} weight {k!r} has shape {tuple(v.shape)}, "
                             f"the config expects {tuple(own[k].shape)}")
    module.load_state_dict(state)


def shipped_priors() -> list[str]:
    return sorted(p.name for p in SHIPPED_DIR.glob("*") if (p / CONFIG).exists())
