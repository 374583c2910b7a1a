"""Tanimoto/MinMax kernels against RDKit, PSD Gram matrices, and the exactness of the fast paths
(spectral MLL, joint posterior, finite-set acquisition) against BoTorch/GPyTorch's own code."""

import gpytorch
import numpy as np
import pytest
import torch
from botorch.acquisition import qLogNoisyExpectedImprovement, qUpperConfidenceBound
from botorch.exceptions.errors import ModelFittingError
from botorch.optim.closures import get_loss_closure_with_grads
from botorch.sampling import SobolQMCNormalSampler
from gpytorch.kernels import ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from rdkit import Chem, DataStructs
from rdkit.Chem import Crippen

import bbo.surrogates.tanimoto_gp as tg
from bbo.domains.molecule.moses import moses_smiles
from bbo.surrogates.tanimoto_gp import (
    FiniteSetModel,
    FiniteSetPosterior,
    GreedyQLogNoisyExpectedImprovement,
    GreedyQUpperConfidenceBound,
    MinMaxKernel,
    TanimotoKernel,
    build_gp,
    fingerprints,
    fit_gp,
    joint_posterior,
    minmax_similarity,
    spectral_mll_closure,
    tanimoto_similarity,
)
from oracles.chem import morgan_count_fingerprint, morgan_fingerprint


@pytest.fixture(scope="module")
def smiles():
    return list(moses_smiles("train")[:60])


def _rdkit_matrix(fps):
    return np.array([DataStructs.BulkTanimotoSimilarity(fp, fps) for fp in fps])


def test_tanimoto_equals_rdkit_on_bits(smiles):
    X = fingerprints(smiles[:50], "bits")
    assert X.dtype == torch.float64 and X.shape == (50, 2048) and set(X.unique().tolist()) <= {0.0, 1.0}
    fps = [morgan_fingerprint(Chem.MolFromSmiles(s)) for s in smiles[:50]]
    ref = np.array([[DataStructs.TanimotoSimilarity(a, b) for b in fps] for a in fps])
    np.testing.assert_allclose(tanimoto_similarity(X, X).numpy(), ref, rtol=0, atol=1e-12)
    # through GPyTorch's kernel interface, full and diagonal
    k = TanimotoKernel()
    np.testing.assert_allclose(k(X[:10], X[20:35]).to_dense().detach().numpy(), ref[:10, 20:35], atol=1e-12)
    np.testing.assert_allclose(k(X, X, diag=True).detach().numpy(), np.ones(50), atol=1e-12)


def test_minmax_equals_formula_and_rdkit_on_counts(smiles):
    X = fingerprints(smiles[:50], "counts")
    assert X.max() > 1  # real counts
    x = X.numpy()
    formula = np.minimum(x[:, None], x[None]).sum(-1) / np.maximum(x[:, None], x[None]).sum(-1)
    S = minmax_similarity(X, X).numpy()
    np.testing.assert_allclose(S, formula, atol=1e-12)
    fps = [morgan_count_fingerprint(Chem.MolFromSmiles(s)) for s in smiles[:50]]
    np.testing.assert_allclose(S, _rdkit_matrix(fps), atol=1e-12)  # RDKit's count Tanimoto is MinMax
    np.testing.assert_allclose(MinMaxKernel()(X[:7], X[7:9]).to_dense().detach().numpy(), formula[:7, 7:9], atol=1e-12)
    # non-integer inputs take the broadcasting path, same formula
    Y = X[:5] * 0.5
    y = Y.numpy()
    ref = np.minimum(y[:, None], y[None]).sum(-1) / np.maximum(y[:, None], y[None]).sum(-1)
    np.testing.assert_allclose(minmax_similarity(Y, Y).numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("kind, sim", [("bits", tanimoto_similarity), ("counts", minmax_similarity)])
def test_gram_is_positive_semidefinite(smiles, kind, sim):
    X = fingerprints(smiles[:50], kind)
    G = sim(X, X)
    assert torch.allclose(G, G.mT)
    assert torch.linalg.eigvalsh(G).min().item() >= -1e-8


def test_zero_vectors_are_handled():
    X = torch.zeros(3, 8, dtype=torch.float64)
    X[2, :3] = 1
    G = tanimoto_similarity(X, X)
    assert G[0, 1] == 1 and G[0, 2] == 0 and G[2, 2] == 1 and not G.isnan().any()


def test_gram_cache_is_exact_and_sees_in_place_changes(smiles):
    X = fingerprints(smiles[:20], "bits")
    k = TanimotoKernel()
    first = k.forward(X, X)
    first.mul_(0)  # a caller mutating its copy must not touch the cache
    assert torch.equal(k.forward(X, X), tanimoto_similarity(X, X))
    X[0] = X[1]  # in place: the tensor's version changes
    assert torch.equal(k.forward(X, X), tanimoto_similarity(X, X))


def test_fingerprints_reject_invalid_smiles():
    with pytest.raises(ValueError, match="cannot featurize"):
        fingerprints(["CCO", "not a molecule"])
    with pytest.raises(ValueError, match="kind"):
        fingerprints(["CCO"], "morgan")


@pytest.fixture(scope="module")
def data(smiles):
    y = torch.tensor([Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in smiles], dtype=torch.float64)
    return smiles, y


@pytest.mark.parametrize("kernel", ["tanimoto", "minmax"])
def test_model_is_double_standardized_and_bounded(data, kernel):
    smiles, y = data
    kind = "bits" if kernel == "tanimoto" else "counts"
    model = fit_gp(fingerprints(smiles[:40], kind), y[:40], kernel)
    assert isinstance(model.covar_module, ScaleKernel)
    assert model.train_inputs[0].dtype == torch.float64
    assert abs(model.train_targets.mean().item()) < 1e-9  # Standardize
    assert 1e-4 <= model.likelihood.noise.item() <= 1.0


def test_spectral_closure_equals_botorch_closure(data):
    smiles, y = data
    model = build_gp(fingerprints(smiles[:40]), y[:40])
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    mll.train()
    with torch.no_grad():
        model.covar_module.outputscale = 0.7
        model.likelihood.noise = 0.03
        model.mean_module.constant.fill_(0.2)
    params = {n: p for n, p in mll.named_parameters() if p.requires_grad}
    with gpytorch.settings.max_cholesky_size(10_000):
        loss_ref, grads_ref = get_loss_closure_with_grads(mll, params)()
    loss, grads = spectral_mll_closure(mll)()
    assert torch.allclose(loss, loss_ref, atol=1e-10)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert torch.allclose(g, g_ref, atol=1e-9)
    # and so the fitted hyperparameters agree
    a = fit_gp(fingerprints(smiles[:40]), y[:40])
    b = fit_gp(fingerprints(smiles[:40]), y[:40], spectral=False)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, rtol=1e-4, atol=1e-5)


def test_failed_fit_warns_and_keeps_initial_hyperparameters(data, monkeypatch):
    def fail(mll, **kwargs):
        mll.model.likelihood.noise = 0.5  # a failed attempt may leave junk behind
        raise ModelFittingError("all attempts failed")

    smiles, y = data
    monkeypatch.setattr(tg, "fit_gpytorch_mll", fail)
    with pytest.warns(RuntimeWarning, match="GP fit failed"):
        model = fit_gp(fingerprints(smiles[:20]), y[:20])
    initial = build_gp(fingerprints(smiles[:20]), y[:20])
    assert model.likelihood.noise.item() == pytest.approx(initial.likelihood.noise.item())
    mean, cov = joint_posterior(model, fingerprints(smiles[20:25]))
    assert mean.isfinite().all() and cov.isfinite().all()


def test_joint_posterior_equals_gpytorch(data):
    smiles, y = data
    model = fit_gp(fingerprints(smiles[:40]), y[:40])
    Xs = fingerprints(smiles[40:])
    mean, cov = joint_posterior(model, Xs, jitter=0)
    with torch.no_grad(), gpytorch.settings.fast_pred_var(False), gpytorch.settings.max_cholesky_size(10_000):
        post = model.posterior(Xs)
    assert torch.allclose(mean, post.mean.squeeze(-1), atol=1e-9)
    assert torch.allclose(cov, post.distribution.covariance_matrix, atol=1e-9)
    # the model predicts held-out logP better than the mean does
    assert ((mean - y[40:]) ** 2).mean() < ((y[:40].mean() - y[40:]) ** 2).mean()


@pytest.fixture(scope="module")
def finite_set(data):
    smiles, y = data
    model = fit_gp(fingerprints(smiles[:30]), y[:30])
    mean, cov = joint_posterior(model, fingerprints(smiles))  # 30 told, then 30 candidates
    return FiniteSetModel(mean, cov)


def _idx(a, b):
    return torch.arange(a, b, dtype=torch.float64).unsqueeze(-1)


def test_finite_set_model_posterior(finite_set):
    post = finite_set.posterior(torch.tensor([[[3.0], [40.0]], [[5.0], [7.0]]]))
    assert post.mean.shape == (2, 2, 1)
    assert torch.allclose(post.distribution.covariance_matrix[1], finite_set.set_covariance[[5, 7]][:, [5, 7]])
    with pytest.raises(IndexError):
        finite_set.posterior(torch.tensor([[60.0]]))


def test_shared_prefix_sampling_equals_generic(finite_set):
    # every batch element: the same 5 points, then its own candidate (the qNEI layout)
    X = torch.cat([_idx(0, 5).expand(25, 5, 1), _idx(35, 60).unsqueeze(-2)], dim=-2)
    base = torch.randn(64, 1, 6, dtype=torch.float64).expand(64, 25, 6)
    post = finite_set.posterior(X)
    fast = post.rsample_from_base_samples(torch.Size([64]), base)
    assert post.shared_sample_position == 5
    slow = super(FiniteSetPosterior, post).rsample_from_base_samples(torch.Size([64]), base)
    assert torch.allclose(fast, slow, atol=1e-10)


def test_greedy_acquisitions_equal_botorch(finite_set):
    X = _idx(35, 60).unsqueeze(-2)
    pending = _idx(30, 35)

    def nei(cls):
        return cls(finite_set, _idx(0, 30), sampler=SobolQMCNormalSampler(torch.Size([128]), seed=0),
                   prune_baseline=False, cache_root=True)

    a, b = nei(qLogNoisyExpectedImprovement), nei(GreedyQLogNoisyExpectedImprovement)
    with torch.no_grad():
        assert torch.allclose(a(X), b(X), atol=1e-9)
        a.set_X_pending(pending)
        b.set_X_pending(pending)
        assert torch.allclose(a(X), b(X), atol=1e-9)

    def ucb(cls):
        return cls(finite_set, beta=2.0, sampler=SobolQMCNormalSampler(torch.Size([128]), seed=0), X_pending=pending)

    with torch.no_grad():
        assert torch.allclose(ucb(qUpperConfidenceBound)(X), ucb(GreedyQUpperConfidenceBound)(X), atol=1e-12)
