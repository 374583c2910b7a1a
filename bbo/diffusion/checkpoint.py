"""One checkpoint format for every model: ``<stem>.safetensors`` (its ``state_dict``) beside
``<stem>.json`` (``{"format": "bbo-model/1", "name": ..., "config": {...}}``).

Weights and JSON only, never a pickle, so a checkpoint from anywhere is safe to open: a model is
rebuilt from a registered class name (denoisers, codecs, consistency models) and its JSON config,
then its weights are checked key by key and shape by shape. A prior is a directory of such models
(``denoiser``, optional ``codec``, optional ``consistency/consistency``) plus ``config.json`` with
the noise schedule, the domain and free-form figures. A fine-tuned policy is the same ``denoiser``
model in the round checkpoint.

Why not diffusers' ``ModelMixin.save_pretrained``: its ``from_pretrained`` is built around the
model hub (downloads, variants, ``.bin`` pickles as a fallback) and one class per directory,
while a prior here is a small composite of a denoiser, a codec and a consistency model that are
not all diffusers models; a registry lookup by name keeps loading restricted to known classes.

Priors are found by name among the shipped ones (``bbo/diffusion/zoo``) and those a user
registers with :func:`register_prior` (a directory, or a factory that builds the prior).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from safetensors.torch import load_file, save_file
from torch import nn

from bbo.diffusion.denoisers import build_denoiser
from bbo.diffusion.prior import DiffusionPrior

CONFIG = "config.json"
MODEL_FORMAT = "bbo-model/1"
PRIOR_FORMAT = "bbo-prior/2"
SHIPPED_DIR = Path(__file__).parent / "zoo"
_PRIORS: dict[str, str | Path | Callable[[], DiffusionPrior]] = {}


class _PriorSection(BaseModel):
    """The ``prior`` section of a prior's ``config.json``, checked on load."""

    model_config = ConfigDict(extra="forbid", strict=True)
    shape: list[Annotated[StrictInt, Field(ge=1)]] = Field(min_length=1)
    sample_steps: StrictInt = Field(ge=1, le=100_000)
    num_train_timesteps: StrictInt = Field(ge=2, le=1_000_000)
    beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"]


def _prior_section(path: Path, config: dict[str, Any]) -> _PriorSection:
    try:
        return _PriorSection.model_validate(config.get("prior"))
    except ValidationError as err:
        problems = "; ".join(f"prior.{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e['input']!r})"
                             if e["type"] != "missing" else f"prior.{'.'.join(map(str, e['loc']))}: missing"
                             for e in err.errors())
        raise ValueError(f"{path / CONFIG}: {problems}") from None


# ------------------------------------------------------------------------------- one model
def save_model(module: nn.Module, directory: str | Path, stem: str) -> Path:
    """Write ``module`` (a registered class with ``name`` and ``config()``) as ``<stem>.safetensors``
    and ``<stem>.json`` in ``directory``; returns the JSON's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(directory / f"{stem}.safetensors"))
    spec = {"format": MODEL_FORMAT, "name": module.name, "config": module.config()}
    path = directory / f"{stem}.json"
    path.write_text(json.dumps(spec, indent=2) + "\n")
    return path


def load_model(directory: str | Path, stem: str, build: Callable[[dict[str, Any]], nn.Module]) -> nn.Module:
    """Rebuild the model :func:`save_model` wrote: ``build({"name", "config"})``, then its weights."""
    directory = Path(directory)
    path = directory / f"{stem}.json"
    if not path.exists():
        raise FileNotFoundError(f"{directory}: missing {path.name}; is this a directory written by bbo?")
    spec = read_json(path)
    if spec.get("format") != MODEL_FORMAT or "name" not in spec or "config" not in spec:
        raise ValueError(f"{path}: not a {MODEL_FORMAT} model file (format {spec.get('format')!r})")
    module = build({"name": spec["name"], "config": spec["config"]})
    load_weights(module, directory / f"{stem}.safetensors", stem)
    return module


def load_weights(module: nn.Module, file: Path, what: str, rename: Callable[[str], str] | None = None) -> None:
    """Load a safetensors file into ``module``, refusing any missing, unexpected or misshapen key."""
    if not file.exists():
        raise FileNotFoundError(f"{file.parent}: missing {file.name}")
    state = load_file(str(file))
    if rename is not None:
        state = {rename(k): v for k, v in state.items()}
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


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


# ----------------------------------------------------------------------------------- priors
def save_prior(prior: DiffusionPrior, directory: str | Path) -> Path:
    """Write ``prior`` to ``directory`` (created if needed); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_model(prior.denoiser, directory, "denoiser")
    if prior.codec is not None:
        save_model(prior.codec, directory, "codec")
    config = {"format": PRIOR_FORMAT, "prior": prior.config(), "domain": prior.domain, "info": prior.info}
    (directory / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return directory


def register_prior(name: str, source: str | Path | Callable[[], DiffusionPrior]) -> None:
    """Make a prior loadable by ``name`` (``load_prior(name)``, an optimizer's ``prior:`` setting):
    a directory written by :func:`save_prior`, or a factory that returns a :class:`DiffusionPrior`
    (called on every load, so it must be deterministic for a study to resume)."""
    if name in _PRIORS and _PRIORS[name] is not source:
        raise ValueError(f"prior {name!r} is already registered")
    if (SHIPPED_DIR / name / CONFIG).exists():
        raise ValueError(f"prior {name!r} is the name of a shipped prior")
    _PRIORS[name] = source


def _prior_dir(name_or_path: str | Path) -> Path:
    """The directory of a shipped prior, a prior registered as a directory, or a path; a
    FileNotFoundError saying what was looked for."""
    registered = _PRIORS.get(str(name_or_path))
    path = Path(registered if registered is not None else name_or_path)
    if registered is None and not path.exists() and (SHIPPED_DIR / str(name_or_path)).exists():
        path = SHIPPED_DIR / str(name_or_path)
    if not path.is_dir():
        known = shipped_priors() + sorted(_PRIORS)
        raise FileNotFoundError(f"no prior at {str(name_or_path)!r}: not a directory, a shipped or a registered "
                                f"prior ({', '.join(known) or 'none known'})")
    if not (path / CONFIG).exists():
        raise FileNotFoundError(f"{path}: missing {CONFIG}; is this a directory written by save_prior?")
    return path


def check_prior(name_or_path: str | Path) -> str | Path:
    """``name_or_path`` if it names a registered prior factory or a prior directory whose config
    is valid, else a ValueError saying what is wrong (a setting's validator: no weights are read)."""
    if callable(_PRIORS.get(str(name_or_path))):
        return name_or_path
    try:
        path = _prior_dir(name_or_path)
    except FileNotFoundError as err:
        raise ValueError(str(err)) from None
    _prior_section(path, read_json(path / CONFIG))
    return name_or_path


def load_prior(name_or_path: str | Path, device: str | None = None) -> DiffusionPrior:
    """A shipped prior by name (see ``bbo priors``), a registered one, or a directory written by
    :func:`save_prior`."""
    registered = _PRIORS.get(str(name_or_path))
    if callable(registered):
        prior = registered()
        if not isinstance(prior, DiffusionPrior):
            raise TypeError(f"the factory of prior {name_or_path!r} returned {type(prior).__name__}, not a DiffusionPrior")
        prior.eval()
        return prior.to(device) if device else prior
    path = _prior_dir(name_or_path)
    config = read_json(path / CONFIG)
    p = _prior_section(path, config)  # before any weights are read
    from bbo.diffusion.codec import build_codec

    if config.get("format") == "bbo-prior/1":  # denoiser and codec specs inline, weights beside
        denoiser = build_denoiser(config["denoiser"])
        load_weights(denoiser, path / "denoiser.safetensors", "denoiser")
        codec = None
        if config.get("codec"):
            codec = build_codec(config["codec"])
            if hasattr(codec, "load_state_dict"):
                load_weights(codec, path / "codec.safetensors", "codec")
    elif config.get("format") == PRIOR_FORMAT:
        denoiser = load_model(path, "denoiser", build_denoiser)
        domain = config.get("domain")
        codec = (load_model(path, "codec", lambda spec: build_codec({**spec, "domain": domain}))
                 if (path / "codec.json").exists() else None)
    else:
        raise ValueError(f"{path / CONFIG}: unknown prior format {config.get('format')!r}")
    prior = DiffusionPrior(denoiser, tuple(p.shape), codec, num_train_timesteps=p.num_train_timesteps,
                           beta_schedule=p.beta_schedule, sample_steps=p.sample_steps, info=config.get("info"),
                           domain=config.get("domain"))
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


def shipped_priors() -> list[str]:
    return sorted(p.name for p in SHIPPED_DIR.glob("*") if (p / CONFIG).exists())


def registered_priors() -> list[str]:
    return sorted(_PRIORS)
