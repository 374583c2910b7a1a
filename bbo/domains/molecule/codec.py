"""The molecule codec: a SELFIES VAE between SMILES and the latent space a prior diffuses in.

That space is the latent space of a SELFIES variational autoencoder, as Stable
Diffusion diffuses in an image autoencoder's latents: Gaussian diffusion straight on one-hot
tokens gave valid but unnatural molecules, while an autoregressive decoder turns any nearby
latent into a plausible SELFIES string. Latents are standardized (per-dimension mean and std
over the training set) so that the diffusion sees unit-scale data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from bbo.diffusion.codec import register_codec
from bbo.domains.molecule.vocab import BOS, EOS, PAD, SelfiesVocabulary


@register_codec
class MoleculeVAE(nn.Module):
    """SELFIES VAE: a bidirectional GRU encoder to a Gaussian latent, a GRU decoder that reads the
    latent at every step. ``encode``/``decode`` map SMILES to standardized latents and back.

    Shapes: token ids ``batch x seq_len``; latents ``batch x latent_dim``.
    """

    name = "molecule_vae"
    domain = "molecule"

    def __init__(self, vocab: dict[str, Any], latent_dim: int = 64, embed_dim: int = 64, enc_hidden: int = 256,
                 dec_hidden: int = 512) -> None:
        super().__init__()
        self.vocab = SelfiesVocabulary(**vocab)
        self.latent_dim, self.embed_dim = int(latent_dim), int(embed_dim)
        self.enc_hidden, self.dec_hidden = int(enc_hidden), int(dec_hidden)
        v = self.vocab.size
        self.embed = nn.Embedding(v, self.embed_dim, padding_idx=self.vocab.index[PAD])
        self.encoder = nn.GRU(self.embed_dim, self.enc_hidden, batch_first=True, bidirectional=True)
        self.to_stats = nn.Linear(2 * self.enc_hidden, 2 * self.latent_dim)
        self.z_to_h = nn.Linear(self.latent_dim, self.dec_hidden)
        self.decoder = nn.GRU(self.embed_dim + self.latent_dim, self.dec_hidden, batch_first=True)
        self.head = nn.Linear(self.dec_hidden, v)
        self.register_buffer("latent_mean", torch.zeros(self.latent_dim))
        self.register_buffer("latent_std", torch.ones(self.latent_dim))

    # ----------------------------------------------------------------------------- network
    def posterior(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | molecule), each ``batch x latent_dim``."""
        lengths = (ids != self.vocab.index[PAD]).sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.encoder(packed)  # 2 x batch x hidden
        mu, logvar = self.to_stats(torch.cat([h[0], h[1]], dim=-1)).chunk(2, dim=-1)
        return mu, logvar.clamp(-10, 5)

    def logits(self, z: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced next-token logits, ``batch x seq_len x vocab``."""
        bos = torch.full_like(ids[:, :1], self.vocab.index[BOS])
        inputs = self.embed(torch.cat([bos, ids[:, :-1]], dim=1))
        inputs = torch.cat([inputs, z[:, None, :].expand(-1, ids.shape[1], -1)], dim=-1)
        out, _ = self.decoder(inputs, torch.tanh(self.z_to_h(z))[None])
        return self.head(out)

    def loss(self, ids: torch.Tensor, beta: float, generator: torch.Generator | None = None,
             free_bits: float = 0.0) -> dict[str, torch.Tensor]:
        """Reconstruction cross-entropy per molecule, KL per molecule, and the beta-weighted sum.

        ``free_bits`` (nats per latent dimension, Kingma et al., "Improved Variational Inference
        with Inverse Autoregressive Flow", 2016): a dimension's batch-mean KL below it costs
        nothing, so the encoder is not pushed to switch dimensions off (collapse) and a higher
        ``beta`` can widen the posteriors without emptying the latent."""
        mu, logvar = self.posterior(ids)
        # drawn where the generator lives (a CPU generator drives GPU training too), then moved
        where = generator.device if generator is not None else mu.device
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=generator, device=where).to(mu.device)
        recon = self.reconstruction(z, ids)
        kl_terms = 0.5 * (mu**2 + logvar.exp() - 1 - logvar)
        kl = kl_terms.sum(1).mean()
        penalized = kl_terms.mean(0).clamp(min=free_bits).sum() if free_bits > 0 else kl
        return {"loss": recon + beta * penalized, "recon": recon, "kl": kl}

    def reconstruction(self, z: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced cross-entropy of ``ids`` given raw latents ``z``, summed over tokens,
        averaged over molecules."""
        ce = nn.functional.cross_entropy(self.logits(z, ids).transpose(1, 2), ids, reduction="none")
        return (ce * (ids != self.vocab.index[PAD])).sum(1).mean()

    @torch.no_grad()
    def generate(self, z: torch.Tensor, temperature: float = 0.0, generator: torch.Generator | None = None) -> np.ndarray:
        """Token ids decoded from raw latents: greedy when ``temperature == 0``."""
        n = z.shape[0]
        h = torch.tanh(self.z_to_h(z))[None]
        tok = torch.full((n,), self.vocab.index[BOS], dtype=torch.long, device=z.device)
        out = torch.zeros((n, self.vocab.seq_len), dtype=torch.long, device=z.device)
        done = torch.zeros(n, dtype=torch.bool, device=z.device)
        eos, pad = self.vocab.index[EOS], self.vocab.index[PAD]
        for i in range(self.vocab.seq_len):
            step, h = self.decoder(torch.cat([self.embed(tok), z], dim=-1)[:, None], h)
            logits = self.head(step[:, 0])
            logits[:, pad] = -torch.inf
            logits[:, self.vocab.index[BOS]] = -torch.inf
            if temperature > 0:
                tok = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)[:, 0]
            else:
                tok = logits.argmax(-1)
            tok = torch.where(done, torch.full_like(tok, pad), tok)
            out[:, i] = tok
            done |= tok == eos
            if bool(done.all()):
                break
        return out.cpu().numpy()

    # ------------------------------------------------------------------------------- codec
    @property
    def shape(self) -> tuple[int, ...]:
        return (self.latent_dim,)

    def encodable(self, smiles: Sequence[str]) -> list[bool]:
        """Which molecules the vocabulary can tokenize within its length."""
        return self.vocab.encode(list(smiles))[1].tolist() if len(smiles) else []

    @torch.no_grad()
    def encode(self, smiles: Sequence[str]) -> torch.Tensor:
        """Standardized posterior means of molecules, ``batch x latent_dim``."""
        mu, _ = self._posterior_of(smiles)
        return (mu - self.latent_mean) / self.latent_std

    def _posterior_of(self, smiles: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw posterior mean and log-variance of molecules; a clear error for one the vocabulary
        cannot encode."""
        ids, ok = self.vocab.encode(list(smiles))
        if not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            raise ValueError(f"molecule {bad} ({smiles[bad]!r}) cannot be encoded: not SELFIES-encodable, "
                             f"longer than {self.vocab.max_len} tokens or an unknown token")
        return self.posterior(torch.as_tensor(ids, device=self.latent_mean.device))

    @torch.no_grad()
    def decode(self, x: torch.Tensor) -> list[str]:
        """Canonical SMILES of standardized latents (greedy decoding)."""
        z = x.to(self.latent_mean.device) * self.latent_std + self.latent_mean
        return self.vocab.decode(self.generate(z))

    @torch.no_grad()
    def reconstruct(self, smiles: Sequence[str], sample: bool = False,
                    generator: torch.Generator | None = None) -> list[str]:
        """Molecules decoded from the posteriors of ``smiles``: their means, or one draw each
        (``sample=True``). The naturalness of these is the ceiling of any prior over this
        latent space, so they tell the autoencoder's limits from the diffusion's."""
        mu, logvar = self._posterior_of(smiles)
        x = (mu - self.latent_mean) / self.latent_std
        if sample:
            sigma = (0.5 * logvar).exp() / self.latent_std
            x = x + sigma * torch.randn(x.shape, generator=generator, device=generator.device if generator else x.device)
        return self.decode(x)

    def config(self) -> dict[str, Any]:
        return {"vocab": self.vocab.config(), "latent_dim": self.latent_dim, "embed_dim": self.embed_dim,
                "enc_hidden": self.enc_hidden, "dec_hidden": self.dec_hidden}
