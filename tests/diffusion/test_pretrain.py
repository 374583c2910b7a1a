"""The molecular prior's pipeline on a tiny budget: VAE, latents, diffusion, checkpoint, resume."""

import pytest
import torch

from bbo.domains.molecule.moses import moses_smiles
from bbo.diffusion import load_prior
from bbo.diffusion.checkpoint import load_prior_consistency
from bbo.domains.molecule.pretrain import pretrain_molecule

TINY = dict(vae_steps=6, diffusion_steps=6, batch_size=16, latent_dim=8, dec_hidden=32, denoiser_hidden=16,
            denoiser_depth=1, sample_steps=5, checkpoint_every=3, consistency_steps=5, progress=False)


def test_pretrain_writes_a_loadable_prior_and_resumes(tmp_path):
    smiles = moses_smiles("train")[:300]
    prior = pretrain_molecule(tmp_path, smiles=smiles, **TINY)
    assert (tmp_path / "prior" / "config.json").exists() and (tmp_path / "log.csv").exists()
    again = load_prior(tmp_path / "prior")
    a, b = prior.sample(5, seed=0), again.sample(5, seed=0)
    assert a == b and all(isinstance(s, str) for s in a)
    z = again.encode(smiles[:4])
    assert z.shape == (4, 8) and torch.isfinite(z).all()
    assert again.info["vae_steps"] == 6 and again.info["hardware"]
    assert again.schedule_config["beta_schedule"] == "linear"
    cm = load_prior_consistency(again)  # shipped inside the prior's directory, for SQDF
    assert cm is not None and cm.schedule_config == again.schedule_config
    assert torch.isfinite(cm(again.sample_tensors(3, generator=torch.Generator().manual_seed(0)), torch.tensor([500] * 3))).all()

    # a longer run in the same directory resumes from the saved step instead of starting over
    more = pretrain_molecule(tmp_path, smiles=smiles, **{**TINY, "vae_steps": 9})
    state = torch.load(tmp_path / "vae.pt", weights_only=True)
    assert state["step"] == 9
    assert more.info["train_seconds"]["vae"] >= prior.info["train_seconds"]["vae"]


def test_posterior_samples_are_standardized_per_dimension():
    from bbo.domains.molecule.pretrain import _Posteriors

    gen = torch.Generator().manual_seed(0)
    # one informative dimension (means spread 2, sigma 0.1) and one nearly unused (means 0, sigma 1)
    mu = torch.stack([2 * torch.randn(20_000, generator=gen), torch.zeros(20_000)], 1)
    logvar = torch.log(torch.tensor([0.1, 1.0]) ** 2).expand(20_000, 2)
    noisy, means = _Posteriors(mu, logvar, noise=1.0), _Posteriors(mu, logvar, noise=0.0)
    assert torch.allclose(noisy.std, torch.tensor([(4 + 0.01) ** 0.5, 1.0]), rtol=0.03)
    x = noisy.batch(20_000, gen, "cpu")
    assert torch.allclose(x.mean(0), torch.zeros(2), atol=0.03) and torch.allclose(x.std(0), torch.ones(2), atol=0.03)
    assert means.batch(5, gen, "cpu")[:, 1].abs().max() == 0  # the means alone carry no noise



def test_diffusion_target_is_recorded_and_invalidates_the_stage(tmp_path):
    smiles = moses_smiles("train")[:300]
    pretrain_molecule(tmp_path, smiles=smiles, **TINY)
    first = torch.load(tmp_path / "diffusion.pt", weights_only=True)
    noisy = pretrain_molecule(tmp_path, smiles=smiles, **{**TINY, "latent_noise": 1.0})
    again = torch.load(tmp_path / "diffusion.pt", weights_only=True)
    assert "latent_noise" not in first["tag"] and again["tag"]["latent_noise"] == 1.0
    assert noisy.info["latent_noise"] == 1.0 and again["step"] == TINY["diffusion_steps"]
    assert not torch.equal(first["model"]["inp.weight"], again["model"]["inp.weight"])  # retrained, not resumed


def test_kl_warmup_length_is_fixed_when_given(tmp_path, monkeypatch):
    from bbo.domains.molecule.codec import MoleculeVAE

    seen = []
    original = MoleculeVAE.loss

    def recording(self, ids, beta, generator=None, free_bits=0.0):
        seen.append(beta)
        return original(self, ids, beta, generator, free_bits)

    monkeypatch.setattr(MoleculeVAE, "loss", recording)
    smiles = moses_smiles("train")[:300]
    pretrain_molecule(tmp_path / "default", smiles=smiles, beta=0.1, **{**TINY, "vae_steps": 10})
    assert seen[:4] == pytest.approx([0.0, 0.1 / 3, 0.2 / 3, 0.1]) and seen[9] == 0.1  # 20% of 10 steps
    seen.clear()
    pretrain_molecule(tmp_path / "fixed", smiles=smiles, beta=0.1, kl_warmup=4, **{**TINY, "vae_steps": 10})
    assert seen[:5] == pytest.approx([0.0, 0.02, 0.04, 0.06, 0.08]) and seen[5:10] == [0.1] * 5


def test_robust_decoder_stage_changes_the_decoder_only_and_is_retrained_when_its_noise_changes(tmp_path):
    smiles = moses_smiles("train")[:300]
    sharp = pretrain_molecule(tmp_path, smiles=smiles, **TINY)
    robust = pretrain_molecule(tmp_path, smiles=smiles, decoder_noise=1.0, decoder_steps=4, **TINY)
    a, b = sharp.codec.state_dict(), robust.codec.state_dict()
    for name in a:  # encoder, embedding and standardization kept: latents and diffusion stay valid
        same = torch.equal(a[name], b[name])
        assert same == (not name.startswith(("decoder.", "z_to_h.", "head."))), name
    assert torch.equal(sharp.encode(smiles[:4]), robust.encode(smiles[:4]))
    saved = load_prior(tmp_path / "prior")
    assert saved.info["decoder_noise"] == 1.0 and saved.info["decoder_steps"] == 4
    assert torch.equal(saved.codec.head.weight, robust.codec.head.weight)
    first = torch.load(tmp_path / "decoder.pt", weights_only=True)
    pretrain_molecule(tmp_path, smiles=smiles, decoder_noise=0.5, decoder_steps=4, **TINY)
    again = torch.load(tmp_path / "decoder.pt", weights_only=True)
    assert first["tag"]["decoder_noise"] == 1.0 and again["tag"]["decoder_noise"] == 0.5
    assert not torch.equal(first["model"]["head.weight"], again["model"]["head.weight"])  # retrained, not resumed


@pytest.mark.parametrize("noise, steps", [(0.0, 4), (1.0, 0)])
def test_a_half_asked_decoder_stage_is_a_clear_error(tmp_path, noise, steps):
    with pytest.raises(ValueError, match="decoder_steps and decoder_noise"):
        pretrain_molecule(tmp_path, smiles=moses_smiles("train")[:50], decoder_noise=noise, decoder_steps=steps, **TINY)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_a_time_budget_stops_each_stage_and_decays_its_rate_to_zero(tmp_path):
    """``minutes`` replaces step counts by wall time: huge step caps are not reached, the learning
    rate has decayed over the stage's seconds, and a rerun finds the stages done."""
    smiles = moses_smiles("train")[:300]
    settings = {**TINY, "vae_steps": 10**9, "diffusion_steps": 10**9, "minutes": 0.03, "checkpoint_every": 10**9}
    prior = pretrain_molecule(tmp_path, smiles=smiles, **settings)
    for stage, share in (("vae", 0.55), ("diffusion", 0.25)):
        state = torch.load(tmp_path / f"{stage}.pt", weights_only=True)
        assert 0 < state["step"] < 10**9 and state["seconds"] >= 0.03 * 60 * share
        assert state["optimizer"]["param_groups"][0]["lr"] < 0.05 * 1e-3  # the cosine ran its course by time
        assert prior.info[f"{stage}_steps"] == state["step"]
    assert prior.info["minutes"] == 0.03
    before = torch.load(tmp_path / "vae.pt", weights_only=True)["step"]
    pretrain_molecule(tmp_path, smiles=smiles, **settings)
    assert torch.load(tmp_path / "vae.pt", weights_only=True)["step"] == before
    with pytest.raises(ValueError, match="minutes"):
        pretrain_molecule(tmp_path / "bad", smiles=smiles, **{**settings, "minutes": 0})


def test_free_bits_leave_the_kl_below_them_uncharged():
    from bbo.domains.molecule.codec import MoleculeVAE
    from bbo.domains.molecule.vocab import SelfiesVocabulary

    smiles = moses_smiles("train")[:40]
    vocab = SelfiesVocabulary.build(smiles)
    ids, ok = vocab.encode(smiles)
    vae = MoleculeVAE(vocab.config(), latent_dim=6, enc_hidden=16, dec_hidden=16)
    batch = torch.as_tensor(ids[ok][:8])
    plain = vae.loss(batch, 0.5, torch.Generator().manual_seed(0))
    free = vae.loss(batch, 0.5, torch.Generator().manual_seed(0), free_bits=100.0)  # far above any dimension's KL
    assert torch.equal(plain["kl"], free["kl"]) and torch.equal(plain["recon"], free["recon"])
    assert torch.allclose(free["loss"], free["recon"] + 0.5 * 6 * 100.0)
    free["loss"].backward()  # the KL term is constant: the encoder's variance head gets no KL gradient
    assert plain["loss"] > plain["recon"]
