"""Search in a diffusion prior's noise space: what the noise-space baselines (GP-BO with a trust
region, CMA-ES) share.

An object is ``decode(ODE(z))``: the prior's deterministic DDIM sampler (eta = 0, the
probability-flow ODE) run from the initial noise ``z ~ N(0, I)``, so each object is a function of
its ``z``, and ``z``'s distribution is the prior's. A strategy here only chooses noises; this base
decodes them, replaces a decoded sample the domain refuses by a prior draw, and stores each ask's
``z`` in its trial's metadata in the same transaction as the ask, so a strategy that replays its
state from the journal resumes (even after SIGKILL) asking what an uninterrupted run would.
Objects told without an ask (warm starts) have no ``z`` and are not seen by these strategies.
"""

from __future__ import annotations

import base64
import math
from abc import abstractmethod
from typing import Any

import numpy as np
import torch
from pydantic import Field

from bbo.strategy import PriorSetting, Settings, Strategy, stored_prior
from bbo.study import Trial


class NoiseSpaceSettings(Settings):
    """prior: the diffusion prior (shipped name or directory). sample_steps: its deterministic DDIM
    steps (default the prior's). device: where the prior samples (None = CUDA when present)."""

    prior: PriorSetting
    sample_steps: int | None = Field(None, ge=1)
    device: str | None = None


def encode_noise(z: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(z, dtype="<f4").tobytes()).decode("ascii")


def decode_noise(text: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(shape).astype(np.float32)


class NoiseSpaceStrategy(Strategy):
    """Chooses initial noises (:meth:`noises`); objects are their deterministic decodings."""

    Settings = NoiseSpaceSettings
    runtime_settings = ("device",)
    default_batch_size = 100

    def __init__(self, settings: NoiseSpaceSettings, study) -> None:
        super().__init__(settings, study)
        from bbo.diffusion import load_prior

        self.device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.prior = load_prior(settings.prior, device=str(self.device))
        self.dim = math.prod(self.prior.shape)
        self._noise: dict[str, np.ndarray] = {}  # key -> z of the last proposal, for its metadata

    def natural_domain(self) -> str | dict[str, Any]:
        return self.prior.domain_spec()

    def config(self) -> dict[str, Any]:
        return stored_prior(super().config())

    @abstractmethod
    def noises(self, n: int, rng: np.random.Generator, study) -> np.ndarray:
        """``n x dim`` initial noises to decode (the first proposal of a batch)."""

    def replacement_noise(self, rng: np.random.Generator) -> np.ndarray:
        """A noise for a decoded sample the domain refused (default: a prior draw)."""
        return rng.standard_normal((1, self.dim))

    @torch.no_grad()
    def decode(self, z: np.ndarray) -> list[Any]:
        """Objects ``decode(ODE(z))`` for a batch of initial noises ``z`` (``n x dim``)."""
        x_T = torch.as_tensor(z, dtype=torch.float32, device=self.device).reshape(len(z), *self.prior.shape)
        x0 = self.prior.sample_tensors(len(z), x_T=x_T, eta=0.0, steps=self.settings.sample_steps)
        return self.prior.decode(x0)

    def propose(self, n: int, rng: np.random.Generator, study) -> list[Any]:
        z = self.noises(n, rng, study)
        out, noise = [], {}
        while True:
            for obj, zi in zip(self.decode(z), z):
                if study.domain.validate(obj) is None and len(out) < n:
                    out.append(obj)
                    noise[study.domain.key(obj)] = zi
            if len(out) == n:
                self._noise = noise
                return out
            z = self.replacement_noise(rng)

    def proposal_metadata(self, objects: list[Any]) -> list[dict[str, Any]]:
        return [{"noise": encode_noise(self._noise[self.study.domain.key(o)])} for o in objects]

    def asked_with_noise(self, study) -> list[Trial]:
        """Every trial this strategy asked (any state), in ask order."""
        trials = [t for t in study.trials if "noise" in (t.metadata or {})]
        return sorted(trials, key=lambda t: t.number)

    def noise_of(self, trials: list[Trial]) -> np.ndarray:
        """The stored ``z`` of ``trials`` (``len x dim``, float64)."""
        if not trials:
            return np.zeros((0, self.dim))
        return np.stack([decode_noise(t.metadata["noise"], (self.dim,)) for t in trials]).astype(np.float64)
