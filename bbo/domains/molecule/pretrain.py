"""Pretraining the molecular prior: a SELFIES VAE, then latent diffusion over its standardized
posteriors. Both stages checkpoint every ``checkpoint_every`` steps into ``out/`` and resume from
there, so a long run survives interruptions.

What limits naturalness is the autoencoder's latent geometry, not the sampler: for the shipped
prior's autoencoder as trained (before the decoder stage below), decoded posterior means of
training molecules score FCD 1.4 and decoded posterior samples 3.1, but isotropic noise of 0.3
(standardized units) added to the means already gives 11, a full-covariance Gaussian 20 and the
diffusion 16.6 (2,000 molecules each). The informative
dimensions are pinned down to ~0.1 of their spread while a third are nearly unused, so the
natural region is thin. ``latent_noise`` chooses the diffusion's target: the posterior means (0,
the default) or ``mu + latent_noise * sigma * eps`` (1: the aggregate posterior, what the decoder
was trained to read). With this autoencoder the means win (FCD 17.5 against 19.2 at equal
budget). What closes much of the gap is the decoder: fine-tuned alone (``decoder_noise``,
``decoder_steps``) on latents pushed off the data by noise of up to ``decoder_noise`` standard
deviations, it reads the diffusion's samples as natural molecules (2,000 samples of the shipped
diffusion: FCD 16.65 -> 8.74 with noise up to 1.5 after 3,000 steps, 10.5 with 0.6, 11.7 after
1,000 steps with 2.5 and falling uniqueness), trading exact reconstruction for it.

Files in ``out/``: ``ids.npy`` (tokenized training set), ``vae.pt``/``diffusion.pt`` (training
state: weights, optimizer, step; loaded with ``weights_only=True``), ``decoder.pt`` (the
fine-tuned autoencoder, when asked for), ``latents.npy`` and
``logvars.npy`` (posterior means and log-variances), ``log.csv`` and finally ``prior/`` (the
shippable safetensors + JSON checkpoint).
"""

from __future__ import annotations

import csv
import math
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bbo.diffusion.checkpoint import save_prior
from bbo.domains.molecule.codec import MoleculeVAE
from bbo.diffusion.denoisers import MLPDenoiser
from bbo.diffusion.prior import DiffusionPrior
from bbo.domains.molecule.vocab import PAD, SelfiesVocabulary


def pretrain_molecule(
    out: str | Path,
    *,
    smiles: Sequence[str] | None = None,
    n_train: int | None = None,
    vae_steps: int = 20_000,
    diffusion_steps: int = 20_000,
    batch_size: int = 256,
    lr: float = 1e-3,
    latent_dim: int = 64,
    enc_hidden: int = 256,
    dec_hidden: int = 512,
    beta: float = 0.05,
    kl_warmup: int | None = None,
    denoiser_hidden: int = 512,
    denoiser_depth: int = 4,
    sample_steps: int = 50,
    beta_schedule: str = "linear",
    latent_noise: float = 0.0,
    decoder_noise: float = 0.0,
    decoder_steps: int = 0,
    consistency_steps: int = 4000,
    free_bits: float = 0.0,
    minutes: float | None = None,
    bf16: bool = False,
    checkpoint_every: int = 500,
    device: str | None = None,
    seed: int = 0,
    progress: bool = True,
    command: str | None = None,
) -> DiffusionPrior:
    """Train (or resume) the molecular latent-diffusion prior; returns it and writes ``out/prior``.

    ``minutes`` budgets the training by wall time instead of steps (the step counts become caps):
    the autoencoder gets 55% of it, the diffusion 25%, the decoder stage 10% when asked for, each
    with its cosine decay over its own share (see :func:`_train`); the rest is left for encoding
    the training set and the consistency distillation. ``out/prior`` is written as soon as the
    diffusion is trained and again at the end, so a run cut off in its last stages still leaves a
    usable prior."""
    if (decoder_steps > 0) != (decoder_noise > 0):
        raise ValueError(f"the decoder stage needs both decoder_steps and decoder_noise above 0 (or both 0 to skip "
                         f"it); got decoder_steps={decoder_steps}, decoder_noise={decoder_noise}")
    if minutes is not None and minutes <= 0:
        raise ValueError(f"minutes must be above 0, got {minutes}")
    share = {"vae": 0.55, "diffusion": 0.25, "decoder": 0.10}
    budget = {k: None if minutes is None else 60.0 * minutes * v for k, v in share.items()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    given = smiles is not None
    if smiles is None:
        from bbo.domains.molecule.moses import moses_smiles

        smiles = moses_smiles("train")
    rng = np.random.default_rng(seed)
    if n_train is not None and n_train < len(smiles):
        smiles = [smiles[i] for i in rng.choice(len(smiles), n_train, replace=False)]
    _check_inputs(out, {"n_train": n_train, "seed": seed, "given_smiles": given, "n_smiles": len(smiles)})
    vocab = _vocabulary(out, smiles)
    ids = _tokenized(out, vocab, smiles)
    log = _Log(out / "log.csv")

    vae = MoleculeVAE(vocab.config(), latent_dim=latent_dim, enc_hidden=enc_hidden, dec_hidden=dec_hidden).to(device)
    buckets = _LengthBuckets(ids, batch_size, pad=vocab.index[PAD])
    # the KL weight ramps up over the first steps; a fixed length keeps it put when a run is extended
    warmup = 0.2 * vae_steps if kl_warmup is None else kl_warmup
    vae_seconds, vae_done = _train(
        "vae", vae, out / "vae.pt", vae_steps, lr, checkpoint_every, log, progress, seed,
        lambda step, gen: vae.loss(buckets.batch(gen, device), beta * min(1.0, step / (warmup + 1)), gen,
                                   free_bits=free_bits),
        tag={"free_bits": free_bits} if free_bits else None, seconds=budget["vae"], bf16=bf16,
    )
    vae.eval()
    latents = _Posteriors(*_latents(out, vae, ids, device), noise=latent_noise)
    vae.latent_mean.copy_(latents.mean)
    vae.latent_std.copy_(latents.std)

    denoiser = MLPDenoiser(latent_dim, hidden=denoiser_hidden, depth=denoiser_depth).to(device)
    prior = DiffusionPrior(denoiser, (latent_dim,), vae, sample_steps=sample_steps,
                           beta_schedule=beta_schedule).to(device)
    diffusion_seconds, diffusion_done = _train(
        "diffusion", denoiser, out / "diffusion.pt", diffusion_steps, lr, checkpoint_every, log, progress, seed + 1,
        lambda step, gen: {"loss": prior.denoising_loss(latents.batch(batch_size, gen, device), gen)},
        # a retrained autoencoder or another training target invalidates the diffusion stage
        tag={"vae": _stamp(out / "vae.pt"), "beta_schedule": beta_schedule,
             **({"latent_noise": latent_noise} if latent_noise else {})},  # means only: as before the option
        seconds=budget["diffusion"], bf16=bf16,
    )
    prior.eval()
    seconds = {"vae": round(vae_seconds, 1), "diffusion": round(diffusion_seconds, 1)}
    info = {
        "trained_on": f"MOSES train, {len(ids)} molecules",
        "vae_steps": vae_done, "diffusion_steps": diffusion_done,
        "batch_size": batch_size, "beta": beta, **({"free_bits": free_bits} if free_bits else {}),
        "latent_noise": latent_noise, "decoder_noise": decoder_noise, "decoder_steps": 0,
        **({"minutes": minutes} if minutes is not None else {}),
        "hardware": _hardware(device), "command": command or "bbo pretrain molecule",
    }
    if decoder_steps:  # a usable prior before the last stages, in case the run is cut off
        prior.info = {**info, "train_seconds": seconds, "decoder_noise": 0.0}
        save_prior(prior, out / "prior")
        decoder_seconds, info["decoder_steps"] = _train_robust_decoder(
            out, vae, latents, buckets, decoder_noise, decoder_steps, checkpoint_every, log, progress, seed + 3,
            device, budget["decoder"], bf16)
        seconds["decoder"] = round(decoder_seconds, 1)
    prior.info = {**info, "train_seconds": seconds}
    save_prior(prior, out / "prior")
    if consistency_steps:
        _distil(out, prior, consistency_steps, batch_size, device, seed + 2, progress)
    return prior


def _train_robust_decoder(out: Path, vae: MoleculeVAE, latents: _Posteriors,
                          buckets: _LengthBuckets, noise: float, steps: int, every: int, log: _Log,
                          progress: bool, seed: int, device: str, seconds: float | None = None,
                          bf16: bool = False) -> tuple[float, int]:
    """Fine-tune the decoder alone on latents pushed off the data: ``mu + sigma * eps + c * std * xi``
    with ``c ~ U(0, noise)`` per molecule (``std``: the diffusion's standardization). The encoder and
    embedding stay frozen, so the latents, the diffusion and the consistency model stay valid; the
    decoder learns to read the slightly-off latents a diffusion actually samples as natural
    molecules, at the price of exact reconstruction."""
    frozen = [vae.embed, vae.encoder, vae.to_stats]
    for module in frozen:
        module.requires_grad_(False)
    mu, sigma, std = latents.mu.to(device), latents.sigma.to(device), latents.std.to(device)

    def step_fn(step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        pick, batch = buckets.batch_with_index(gen, device)
        n, d = len(pick), mu.shape[1]
        c = noise * torch.rand(n, 1, generator=gen).to(device)
        z = (mu[pick] + sigma[pick] * torch.randn((n, d), generator=gen).to(device)
             + c * std * torch.randn((n, d), generator=gen).to(device))
        return {"loss": vae.reconstruction(z, batch)}

    try:
        return _train("decoder", vae, out / "decoder.pt", steps, 3e-4, every, log, progress, seed, step_fn,
                      tag={"vae": _stamp(out / "vae.pt"), "decoder_noise": noise}, seconds=seconds, bf16=bf16)
    finally:
        for module in frozen:
            module.requires_grad_(True)


def _distil(out: Path, prior: DiffusionPrior, steps: int, batch_size: int, device: str, seed: int,
            progress: bool) -> None:
    """Distil the consistency model SQDF uses and ship it inside the prior's directory; done once
    per trained diffusion stage."""
    from bbo.diffusion.consistency import distill_consistency, save_consistency

    stamp = f"{_stamp(out / 'diffusion.pt')}:{steps}"
    done = out / "consistency.done"
    if done.exists() and done.read_text() == stamp and (out / "consistency").is_dir():
        save_dir = out / "consistency"
    else:
        t0 = time.time()
        model = distill_consistency(prior, steps=steps, batch_size=batch_size, seed=seed, hidden=256, depth=3,
                                    device=device, progress=progress)
        model.info = {**getattr(model, "info", {}), "distill_steps": steps, "train_seconds": round(time.time() - t0, 1),
                      "hardware": _hardware(device)}
        save_dir = save_consistency(model, out / "consistency")
        done.write_text(stamp)
    import shutil

    shutil.copytree(save_dir, out / "prior" / "consistency", dirs_exist_ok=True)


# ------------------------------------------------------------------------------------ stages


def _check_inputs(out: Path, inputs: dict[str, Any]) -> None:
    """Refuse to resume a directory prepared from other data (its tokenized set is cached)."""
    import json

    path = out / "inputs.json"
    if path.exists():
        before = json.loads(path.read_text())
        if before != inputs:
            diff = ", ".join(f"{k}: {before.get(k)} -> {v}" for k, v in inputs.items() if before.get(k) != v)
            raise ValueError(f"{out} was prepared from other data ({diff}); use a new --out")
    else:
        path.write_text(json.dumps(inputs))


def _vocabulary(out: Path, smiles: Sequence[str]) -> SelfiesVocabulary:
    import json

    path = out / "vocab.json"
    if path.exists():
        return SelfiesVocabulary(**json.loads(path.read_text()))
    vocab = SelfiesVocabulary.build(smiles[:200_000])  # the alphabet and 99.5% length are stable by then
    path.write_text(json.dumps(vocab.config()))
    return vocab


def _tokenized(out: Path, vocab: SelfiesVocabulary, smiles: Sequence[str]) -> torch.Tensor:
    """The encodable training molecules as token ids, cached. SELFIES encoding is pure Python
    (about 4 minutes for MOSES on one core), so a large set is split over up to 16 processes:
    the same ids in the same order."""
    path = out / "ids.npy"
    if not path.exists():
        smiles = list(smiles)
        from bbo.bench.threads import available_cores

        workers = min(16, available_cores(), len(smiles) // 50_000)
        if workers > 1:
            from concurrent.futures import ProcessPoolExecutor
            from multiprocessing import get_context

            chunks = [smiles[i : i + 20_000] for i in range(0, len(smiles), 20_000)]
            with ProcessPoolExecutor(workers, mp_context=get_context("forkserver")) as pool:
                parts = list(pool.map(_encode_chunk, [vocab.config()] * len(chunks), chunks))
            ids, ok = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        else:
            ids, ok = vocab.encode(smiles)
        np.save(path, ids[ok])
    return torch.from_numpy(np.load(path))


def _encode_chunk(config: dict[str, Any], smiles: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return SelfiesVocabulary(**config).encode(smiles)


@torch.no_grad()
def _latents(out: Path, vae: MoleculeVAE, ids: torch.Tensor, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and log-variances of the training set, cached per autoencoder."""
    means, logvars, done = out / "latents.npy", out / "logvars.npy", out / "latents.done"
    if means.exists() and logvars.exists() and done.exists() and done.read_text() == _stamp(out / "vae.pt"):
        return torch.from_numpy(np.load(means)), torch.from_numpy(np.load(logvars))
    parts = [vae.posterior(ids[i : i + 4096].to(device)) for i in range(0, len(ids), 4096)]
    mu, logvar = torch.cat([p[0].cpu() for p in parts]), torch.cat([p[1].cpu() for p in parts])
    np.save(means, mu.numpy())
    np.save(logvars, logvar.numpy())
    done.write_text(_stamp(out / "vae.pt"))
    return mu, logvar


class _Posteriors:
    """The diffusion's training data: ``mu + noise * sigma * eps`` for a random molecule's posterior,
    standardized by the mixture's per-dimension mean and std (``var(mu) + noise^2 E[sigma^2]``).
    ``noise=0`` is the posterior means, ``noise=1`` the autoencoder's aggregate posterior."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor, noise: float) -> None:
        self.mu, self.sigma, self.noise = mu.float(), (0.5 * logvar.float()).exp(), float(noise)
        self.mean = self.mu.mean(0)
        self.std = (self.mu.var(0) + self.noise**2 * self.sigma.pow(2).mean(0)).sqrt().clamp(min=1e-3)

    def batch(self, n: int, gen: torch.Generator, device: str) -> torch.Tensor:
        i = torch.randint(len(self.mu), (n,), generator=gen)
        z = self.mu[i]
        if self.noise:
            z = z + self.noise * self.sigma[i] * torch.randn(z.shape, generator=gen)
        return ((z - self.mean) / self.std).to(device)


def _stamp(path: Path) -> str:
    return str(path.stat().st_mtime_ns) if path.exists() else "none"


class _LengthBuckets:
    """Batches of molecules of similar length, trimmed to their longest: the GRUs then run over
    far fewer padding steps (about 1.5x faster on MOSES). Each batch is a random window of the
    length-sorted set; windows cover every molecule and batches still mix lengths across steps."""

    def __init__(self, ids: torch.Tensor, batch_size: int, pad: int) -> None:
        self.ids, self.batch_size = ids, int(batch_size)
        lengths = (ids != pad).sum(1)
        # a random tie-break so equal-length molecules are not always batched together
        jitter = torch.rand(len(ids), generator=torch.Generator().manual_seed(0))
        self.order = torch.from_numpy(np.lexsort((jitter.numpy(), lengths.numpy())))
        self.lengths = lengths[self.order]

    def batch(self, gen: torch.Generator, device: str) -> torch.Tensor:
        return self.batch_with_index(gen, device)[1]

    def batch_with_index(self, gen: torch.Generator, device: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows of the training set drawn, and their token ids."""
        n = len(self.order)
        window = min(n, 8 * self.batch_size)
        start = int(torch.randint(n - window + 1, (1,), generator=gen))
        pick = start + torch.randperm(window, generator=gen)[: self.batch_size]
        width = max(int(self.lengths[pick].max()), 1)
        rows = self.order[pick]
        return rows, self.ids[rows, :width].to(device)


def _train(stage: str, model: torch.nn.Module, state_path: Path, steps: int, lr: float, every: int, log: _Log,
           progress: bool, seed: int, step_fn, tag: dict[str, Any] | None = None, seconds: float | None = None,
           checkpoint_seconds: float = 60.0, bf16: bool = False) -> tuple[float, int]:
    """A resumable AdamW loop with gradient clipping, cosine decay, a progress bar and a loss log;
    returns the stage's total training seconds over all sessions and the steps it has trained
    (what a time budget allowed).

    With ``seconds`` the stage is budgeted by time instead of steps: the cosine decays over the
    training seconds spent (summed over sessions, so a resumed stage continues its schedule) and
    the stage ends when they reach ``seconds`` or at ``steps``, whichever is first; that fits a
    stage into a fixed wall time on hardware whose step rate is not known in advance. The state is
    saved every ``every`` steps and at least every ``checkpoint_seconds``. ``bf16`` runs the
    forward pass under CUDA's bfloat16 autocast (the weights and optimizer stay float32)."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    step, before = 0, 0.0
    device = next(model.parameters()).device
    state = torch.load(state_path, weights_only=True, map_location=device) if state_path.exists() else None
    if state is not None and state.get("tag") != tag:
        state = None  # trained on inputs that have changed since: start this stage over
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"].cpu())
        step, before = int(state["step"]), float(state.get("seconds", 0.0))

    def cosine(step: int, spent: float) -> float:
        if seconds:  # whichever of the time budget and the step cap binds first ends the schedule
            angle = math.pi * min(max(spent / seconds, step / max(steps, 1)), 1.0)
        else:
            angle = math.pi * min(step, steps) / max(steps, 1)
        return 0.5 * (1 + math.cos(angle))

    def finished(step: int, spent: float) -> bool:
        return step >= steps or (seconds is not None and spent >= seconds)

    if finished(step, before):
        model.eval()
        return before, step
    model.train()
    bar = _bar(stage, steps, step) if progress and seconds is None else None
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda")
    t0 = last_save = time.time()
    while True:
        for group in opt.param_groups:
            group["lr"] = lr * cosine(step, before + time.time() - t0)
        with autocast:
            out = step_fn(step, gen)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        spent = before + time.time() - t0
        done = finished(step, spent)
        for group in opt.param_groups:  # the rate the next step would take (0 once the schedule has run)
            group["lr"] = lr * cosine(step, spent)
        if step % 50 == 0 or done:
            log.write(stage, step, {k: float(v.detach()) for k, v in out.items()}, time.time() - t0)
        if bar is not None:
            bar[0].update(bar[1], completed=step, loss=f"{float(out['loss'].detach()):.4g}")
        if step % every == 0 or done or time.time() - last_save >= checkpoint_seconds:
            tmp = state_path.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "generator": gen.get_state(), "step": step, "seconds": spent, "tag": tag}, tmp)
            os.replace(tmp, state_path)
            last_save = time.time()
        if done:
            break
    if bar is not None:
        bar[0].stop()
    model.eval()
    return before + time.time() - t0, step


def _bar(stage: str, total: int, done: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn(f"pretrain {stage}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                        TimeRemainingColumn())
    progress.start()
    return progress, progress.add_task(stage, total=total, completed=done, loss="")


class _Log:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, stage: str, step: int, values: dict[str, Any], seconds: float) -> None:
        new = not self.path.exists()
        with self.path.open("a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["stage", "step", "metric", "value", "seconds"])
            for k, v in values.items():
                w.writerow([stage, step, k, f"{v:.6g}", f"{seconds:.1f}"])


def _hardware(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads"
