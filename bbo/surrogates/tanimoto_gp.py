"""Exact Gaussian processes on molecular fingerprints (GAUCHE style), built on BoTorch/GPyTorch.

* :func:`fingerprints`: SMILES -> Morgan fingerprint tensor (bits or hashed counts, radius 2,
  2048 bits by default), float64.
* :class:`TanimotoKernel` (bit vectors, ``<x,y> / (|x|^2 + |y|^2 - <x,y>)``) and
  :class:`MinMaxKernel` (count vectors, ``sum(min(x,y)) / sum(max(x,y))``). Both are
  parameter-free similarities, wrapped in a ``ScaleKernel`` by :func:`build_gp`.
* :func:`build_gp` / :func:`fit_gp`: a ``SingleTaskGP`` with that covariance, a constant
  mean, outcome ``Standardize``, a bounded Gaussian noise, in double precision, fitted with
  BoTorch's ``fit_gpytorch_mll`` (L-BFGS-B on the exact marginal likelihood).
* :func:`joint_posterior` and :class:`FiniteSetModel`: the exact joint posterior of a fitted GP
  over a finite set of molecules, as a BoTorch model whose inputs are indices into that set.
  BoTorch's batch acquisition functions and ``optimize_acqf_discrete`` run on it unchanged, but
  the kernel against the training set is computed once per set instead of once per candidate
  and greedy step (the expensive part with fingerprints of 2048 dimensions).
* :class:`GreedyQLogNoisyExpectedImprovement` and :class:`GreedyQUpperConfidenceBound`:
  BoTorch's qLogNEI and qUCB with the one-candidate-per-batch-element evaluation of sequential
  greedy selection vectorized (same values, tested against the parents).

Speed, all exact: the kernel has no hyperparameters, so the marginal likelihood is optimized on
one eigendecomposition of the Gram matrix (:func:`spectral_mll_closure`, O(n) per L-BFGS step)
and the kernels cache their last Gram matrices (keyed on the identity and version of the input
tensors); fingerprint inner products are integers and are computed in float32 without rounding.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Literal

import gpytorch
import numpy as np
import torch
from botorch.acquisition import qLogNoisyExpectedImprovement, qUpperConfidenceBound
from botorch.acquisition.objective import IdentityMCObjective
from botorch.exceptions.errors import ModelFittingError
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.gpytorch import GPyTorchModel
from botorch.models.transforms.outcome import Standardize
from botorch.optim.closures import ForwardBackwardClosure
from botorch.posteriors.gpytorch import GPyTorchPosterior
from gpytorch.constraints import Interval
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import Kernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import LogNormalPrior
from linear_operator.operators import DenseLinearOperator, LinearOperator
from linear_operator.utils.cholesky import psd_safe_cholesky
from rdkit import DataStructs

from oracles.chem import mol_from_smiles, morgan_count_fingerprint, morgan_fingerprint

KernelName = Literal["tanimoto", "minmax"]
KERNELS: tuple[str, ...] = ("tanimoto", "minmax")

# Exact Cholesky solves up to this many training points (GPyTorch switches to CG/Lanczos above
# 800 by default, which is approximate and slower here).
MAX_CHOLESKY_SIZE = 20_000
# Bounds of the Gaussian noise variance in standardized units (the outcomes have variance 1).
NOISE_BOUNDS = (1e-4, 1.0)


# ------------------------------------------------------------------------------- featurizer
@functools.lru_cache(maxsize=16_384)  # at most 32 MiB of uint8 rows
def _fingerprint_row(smiles: str, counts: bool, radius: int, n_bits: int) -> np.ndarray:
    mol = mol_from_smiles(smiles)
    if mol is None:
        raise ValueError(f"cannot featurize {smiles!r}: RDKit cannot parse it")
    fp = morgan_count_fingerprint(mol, radius, n_bits) if counts else morgan_fingerprint(mol, radius, n_bits)
    row = np.zeros(n_bits, dtype=np.float64)
    DataStructs.ConvertToNumpyArray(fp, row)
    row = np.minimum(row, 255).astype(np.uint8)  # compact cache; counts above 255 do not occur
    row.setflags(write=False)
    return row


def fingerprints(
    smiles: Sequence[str], kind: Literal["bits", "counts"] = "bits", radius: int = 2, n_bits: int = 2048
) -> torch.Tensor:
    """Morgan fingerprints of ``smiles`` as a ``len(smiles) x n_bits`` float64 tensor.

    ``kind="bits"`` gives 0/1 bit vectors (for :class:`TanimotoKernel`), ``"counts"`` hashed
    count vectors (for :class:`MinMaxKernel`). Rows are cached per molecule.
    """
    if kind not in ("bits", "counts"):
        raise ValueError(f"fingerprint kind must be 'bits' or 'counts', got {kind!r}")
    if not len(smiles):
        return torch.zeros(0, n_bits, dtype=torch.float64)
    rows = [_fingerprint_row(s, kind == "counts", int(radius), int(n_bits)) for s in smiles]
    return torch.from_numpy(np.stack(rows).astype(np.float64))


def featurizer_for(kernel: KernelName) -> Literal["bits", "counts"]:
    """The fingerprint kind a kernel expects."""
    _check_kernel(kernel)
    return "bits" if kernel == "tanimoto" else "counts"


# ------------------------------------------------------------------------------ similarities
def _exact_f32(x: torch.Tensor, bound: float) -> bool:
    """True when ``x`` holds non-negative integers small enough for exact float32 products."""
    if x.requires_grad or x.numel() == 0:
        return False
    m = float(x.max())
    return float(x.min()) >= 0 and m <= bound and torch.equal(x, x.trunc())


def _inner(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """``x1 @ x2^T`` over the last dimension; exact in float32 for small non-negative integers."""
    d = x1.shape[-1]
    bound = math.sqrt((2**24 - 1) / max(d, 1))  # every partial sum stays an exact float32 integer
    if x1.dtype == torch.float64 and _exact_f32(x1, bound) and _exact_f32(x2, bound):
        return (x1.float() @ x2.float().mT).to(x1.dtype)
    return x1 @ x2.mT


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    # den == 0 only for two all-zero vectors: identical, similarity 1 (keeps the Gram PSD)
    return torch.where(den > 0, num / den.clamp_min(1e-30), torch.ones_like(num))


def tanimoto_similarity(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """Pairwise Tanimoto ``<x,y> / (|x|^2 + |y|^2 - <x,y>)``, shape ``... x n x m``."""
    dot = _inner(x1, x2)
    n1 = (x1 * x1).sum(-1, keepdim=True)
    n2 = (x2 * x2).sum(-1, keepdim=True).mT
    return _ratio(dot, n1 + n2 - dot)


def minmax_similarity(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """Pairwise MinMax (count Tanimoto) ``sum(min(x,y)) / sum(max(x,y))`` for non-negative x, y.

    ``sum(min(x,y)) = sum_t <[x >= t], [y >= t]>`` for integer counts, computed as one exact
    0/1 matmul per count level (columns empty at that level dropped); non-integer inputs fall
    back to broadcasting.
    """
    if (x1 < 0).any() or (x2 < 0).any():
        raise ValueError("MinMax similarity needs non-negative vectors")
    s1 = x1.sum(-1, keepdim=True)
    s2 = x2.sum(-1, keepdim=True).mT
    if torch.equal(x1, x1.trunc()) and torch.equal(x2, x2.trunc()) and not (x1.requires_grad or x2.requires_grad):
        top = int(max(float(x1.max()) if x1.numel() else 0.0, float(x2.max()) if x2.numel() else 0.0))
        levels1, levels2 = [], []
        for t in range(1, top + 1):
            a, b = x1 >= t, x2 >= t
            if t > 1:  # few bits reach a count of 2 or more: keep the columns that do
                cols = a.reshape(-1, a.shape[-1]).any(0) | b.reshape(-1, b.shape[-1]).any(0)
                a, b = a[..., cols], b[..., cols]
            levels1.append(a)
            levels2.append(b)
        if not levels1:  # all zero
            levels1, levels2 = [x1 > 0], [x2 > 0]
        # one 0/1 matmul over all levels; exact in float32 (sums of counts stay below 2^24)
        a, b = torch.cat(levels1, dim=-1).float(), torch.cat(levels2, dim=-1).float()
        smin = (a @ b.mT).to(x1.dtype)
    else:
        smin = torch.minimum(x1.unsqueeze(-2), x2.unsqueeze(-3)).sum(-1)
    return _ratio(smin, s1 + s2 - smin)


class _SimilarityKernel(Kernel):
    """A parameter-free similarity kernel whose last Gram matrices are cached."""

    has_lengthscale = False
    _cache_size = 2

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._gram_cache: list[tuple[torch.Tensor, torch.Tensor, int, int, torch.Tensor]] = []

    def similarity(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x1, x2, diag: bool = False, last_dim_is_batch: bool = False, **params):
        if last_dim_is_batch:
            raise NotImplementedError(f"{type(self).__name__} does not support last_dim_is_batch")
        if diag:
            return self._diag(x1, x2)
        for a, b, va, vb, res in self._gram_cache:
            if a is x1 and b is x2 and va == x1._version and vb == x2._version:
                return res.clone()
        res = self.similarity(x1, x2)
        if not (x1.requires_grad or x2.requires_grad):
            self._gram_cache = [(x1, x2, x1._version, x2._version, res), *self._gram_cache][: self._cache_size]
            res = res.clone()
        return res

    def _diag(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def clear_cache(self) -> None:
        self._gram_cache = []


class TanimotoKernel(_SimilarityKernel):
    r"""Tanimoto (Jaccard) kernel on bit vectors: :math:`k(x,y) = \frac{\langle x,y\rangle}
    {\|x\|^2 + \|y\|^2 - \langle x,y\rangle}` (positive semi-definite; Gower 1971, GAUCHE)."""

    def similarity(self, x1, x2):
        return tanimoto_similarity(x1, x2)

    def _diag(self, x1, x2):
        dot = (x1 * x2).sum(-1)
        return _ratio(dot, (x1 * x1).sum(-1) + (x2 * x2).sum(-1) - dot)


class MinMaxKernel(_SimilarityKernel):
    r"""MinMax kernel on count vectors: :math:`k(x,y) = \frac{\sum_i \min(x_i,y_i)}
    {\sum_i \max(x_i,y_i)}` (positive semi-definite; Ralaivola et al. 2005)."""

    def similarity(self, x1, x2):
        return minmax_similarity(x1, x2)

    def _diag(self, x1, x2):
        return _ratio(torch.minimum(x1, x2).sum(-1), torch.maximum(x1, x2).sum(-1))


def _check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")


# --------------------------------------------------------------------------------------- GP
def build_gp(train_X: torch.Tensor, train_y: torch.Tensor, kernel: KernelName = "tanimoto") -> SingleTaskGP:
    """An unfitted ``SingleTaskGP`` on fingerprints with a scaled Tanimoto (or MinMax) covariance.

    Constant mean; outcome ``Standardize``; Gaussian noise with BoTorch's LogNormal(-4, 1) prior,
    bounded to ``NOISE_BOUNDS`` in standardized units (a floor for conditioning of near-duplicate
    fingerprints, a ceiling so that the noise cannot explain more than all of the variance).
    Everything in float64.
    """
    _check_kernel(kernel)
    X = train_X.to(torch.float64)
    Y = train_y.to(torch.float64).reshape(-1, 1)
    base = TanimotoKernel() if kernel == "tanimoto" else MinMaxKernel()
    noise_prior = LogNormalPrior(loc=-4.0, scale=1.0)
    likelihood = GaussianLikelihood(
        noise_prior=noise_prior,
        noise_constraint=Interval(*NOISE_BOUNDS, transform=None, initial_value=noise_prior.mode),
    )
    return SingleTaskGP(X, Y, likelihood=likelihood, covar_module=ScaleKernel(base),
                        outcome_transform=Standardize(m=1))


def fit_gp(
    train_X: torch.Tensor, train_y: torch.Tensor, kernel: KernelName = "tanimoto", *, spectral: bool = True,
    **fit_kwargs,
) -> SingleTaskGP:
    """:func:`build_gp` fitted by maximizing the marginal likelihood with BoTorch's
    ``fit_gpytorch_mll`` (L-BFGS-B); returned in eval mode.

    With ``spectral=True`` (default) the optimizer is given :func:`spectral_mll_closure`, which
    evaluates the same objective as ``ExactMarginalLogLikelihood`` (priors included) from one
    eigendecomposition of the fixed Gram matrix: O(n) per step instead of a Cholesky and its
    backward pass (O(n^3)) per step. ``spectral=False`` uses BoTorch's default closure with exact
    Cholesky solves. The torch global RNG is used only if a fit attempt fails and BoTorch
    retries from prior samples: seed it for reproducibility.
    """
    model = build_gp(train_X, train_y, kernel)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    if spectral and "closure" not in fit_kwargs:
        fit_kwargs["closure"] = spectral_mll_closure(mll)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        with gpytorch.settings.max_cholesky_size(MAX_CHOLESKY_SIZE):
            fit_gpytorch_mll(mll, **fit_kwargs)
    except ModelFittingError as err:
        # keep going with the initial hyperparameters (outputscale 0.69, noise at its prior mode)
        # rather than stopping a long optimization run
        warnings.warn(f"GP fit failed ({err}); using the initial hyperparameters", RuntimeWarning, stacklevel=2)
        model.load_state_dict(initial)
    model.eval()
    return model


def _parts(model: SingleTaskGP) -> tuple[_SimilarityKernel, torch.Tensor, torch.Tensor, torch.Tensor]:
    covar = model.covar_module
    if not (isinstance(covar, ScaleKernel) and isinstance(covar.base_kernel, _SimilarityKernel)):
        raise TypeError("expected a model from build_gp: ScaleKernel over a Tanimoto/MinMax kernel")
    return covar.base_kernel, covar.outputscale, model.likelihood.noise.squeeze(-1), model.mean_module.constant


def spectral_mll_closure(mll: ExactMarginalLogLikelihood) -> ForwardBackwardClosure:
    """A loss closure for ``fit_gpytorch_mll`` equal to BoTorch's default one for a
    :func:`build_gp` model, ``-ExactMarginalLogLikelihood / n``, computed from the
    eigendecomposition ``G = Q diag(lam) Q^T`` of the parameter-free Gram matrix: with
    ``K = s G + noise I`` and ``r = Q^T (y - c)``, ``log p(y) = -1/2 sum(r^2 / d) - 1/2 sum(log d)
    - n/2 log(2 pi)`` where ``d = s lam + noise``, plus the log prior densities."""
    model = mll.model
    base, *_ = _parts(model)
    X, y = model.train_inputs[0], model.train_targets
    with torch.no_grad():
        lam, Q = torch.linalg.eigh(base.forward(X, X))  # cached for joint_posterior
        lam = lam.clamp_min(0.0)
        zy, z1 = Q.mT @ y, Q.mT @ torch.ones_like(y)
    n = y.shape[-1]
    parameters = {name: p for name, p in mll.named_parameters() if p.requires_grad}

    def forward() -> torch.Tensor:
        _, s, noise, c = _parts(model)
        d = s * lam + noise
        r = zy - c * z1
        ll = -0.5 * (r * r / d).sum() - 0.5 * d.log().sum() - 0.5 * n * math.log(2 * math.pi)
        for _name, module, prior, closure, _ in model.named_priors():
            ll = ll + prior.log_prob(closure(module)).sum()
        return -ll / n

    return ForwardBackwardClosure(forward=forward, parameters=parameters)


def joint_posterior(model: SingleTaskGP, X: torch.Tensor, jitter: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact joint posterior of the latent function of a :func:`build_gp` model at the rows of
    ``X``, in the told units (``Standardize`` undone); the same as ``model.posterior(X)`` with
    ``fast_pred_var`` off, computed with one Cholesky factorization.

    Returns ``(mean, covariance)`` of shapes ``m`` and ``m x m`` (no observation noise; a small
    relative ``jitter`` on the diagonal keeps it numerically positive definite).
    """
    base, s, noise, c = (t.detach() if isinstance(t, torch.Tensor) else t for t in _parts(model))
    Xt, yt = model.train_inputs[0], model.train_targets
    X = X.to(torch.float64)
    with torch.no_grad():
        K = s * base.forward(Xt, Xt)  # the Gram cached by the fit
        K.diagonal().add_(noise)
        L = psd_safe_cholesky(K)
        Kx = s * base.similarity(Xt, X)  # n x m
        V = torch.linalg.solve_triangular(L, Kx, upper=False)
        w = torch.linalg.solve_triangular(L, (yt - c).unsqueeze(-1), upper=False)
        mean = c + (V.mT @ w).squeeze(-1)
        cov = s * base.similarity(X, X) - V.mT @ V
        cov = (cov + cov.mT) / 2
        if jitter:
            cov.diagonal().add_(jitter * float(cov.diagonal().mean().clamp_min(1e-12)))
        tf = model.outcome_transform
        if tf is not None:
            mu, sd = tf.means.squeeze(), tf.stdvs.squeeze()
            mean, cov = mean * sd + mu, cov * sd**2
    return mean, cov


# ------------------------------------------------------------- posterior over a finite set
class _Submatrix(LinearOperator):
    """``full[rows[..., :, None], cols[..., None, :]]``, gathered only when needed.

    BoTorch's cached-Cholesky acquisition functions read only the last rows of the joint
    covariance over (baseline, candidate); this keeps that read proportional to what is read.
    """

    def __init__(self, full: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> None:
        batch = torch.broadcast_shapes(rows.shape[:-1], cols.shape[:-1])
        rows = rows.expand(*batch, rows.shape[-1])
        cols = cols.expand(*batch, cols.shape[-1])
        super().__init__(full, rows, cols)
        self.full, self.rows, self.cols = full, rows, cols

    def _size(self) -> torch.Size:
        return torch.Size((*self.rows.shape, self.cols.shape[-1]))

    def to_dense(self) -> torch.Tensor:
        return self.full[self.rows.unsqueeze(-1), self.cols.unsqueeze(-2)]

    def _matmul(self, rhs):
        return self.to_dense() @ rhs

    def _transpose_nonbatch(self):
        return _Submatrix(self.full.mT, self.cols, self.rows)

    def _expand_batch(self, batch_shape):
        return _Submatrix(self.full, self.rows.expand(*batch_shape, self.rows.shape[-1]),
                          self.cols.expand(*batch_shape, self.cols.shape[-1]))

    def _unsqueeze_batch(self, dim: int):
        return _Submatrix(self.full, self.rows.unsqueeze(dim), self.cols.unsqueeze(dim))

    def _permute_batch(self, *dims: int):
        return _Submatrix(self.full, self.rows.permute(*dims, -1), self.cols.permute(*dims, -1))

    def _getitem(self, row_index, col_index, *batch_indices):
        if all(isinstance(i, (int, slice)) for i in (row_index, col_index, *batch_indices)):
            return _Submatrix(self.full, self.rows[(*batch_indices, row_index)], self.cols[(*batch_indices, col_index)])
        return DenseLinearOperator(self.to_dense())._getitem(row_index, col_index, *batch_indices)

    def _get_indices(self, row_index, col_index, *batch_indices):
        return self.full[self.rows[(*batch_indices, row_index)], self.cols[(*batch_indices, col_index)]]


def _jittered(var: torch.Tensor, jitter: float = 1e-8) -> torch.Tensor | None:
    """Conditional variances of new points, as ``psd_safe_cholesky`` would treat a 1 x 1 block:
    a non-positive one (a candidate that duplicates a conditioned point) gets ``jitter`` added;
    None if that is not enough (the caller then takes BoTorch's generic path)."""
    var = torch.where(var > 0, var, var + jitter)
    return var if bool((var > 0).all()) else None


class FiniteSetPosterior(GPyTorchPosterior):
    """The posterior of :class:`FiniteSetModel` at a batch of index sets ``idx`` (``*b x t``).

    Sampling is BoTorch's (Cholesky root times base samples), with one shortcut for the shape a
    sequential greedy acquisition asks for: every batch element is the same ``t - 1`` points
    (pending or incumbent ones) plus one candidate of its own, and the base samples are shared
    across the batch. With the shared points ordered first, the Cholesky factor of such a joint
    covariance is their factor ``L`` bordered by the row ``[L^-1 c_i, sqrt(v_i - |L^-1 c_i|^2)]``,
    so one factorization and one triangular solve serve the whole batch instead of one
    factorization per element. The samples are BoTorch's exactly when the candidate comes last
    (qNEI); when it comes first (qUCB puts X_pending after X) they are an exact draw from the
    same joint posterior with the same base samples, factored in the other order.
    """

    def __init__(self, distribution, set_mean: torch.Tensor, set_covariance: torch.Tensor, idx: torch.Tensor):
        super().__init__(distribution)
        self._set_mean, self._set_cov, self._idx = set_mean, set_covariance, idx
        #: after sampling: the candidate's position when the shortcut was taken (the other
        #: positions then hold the same samples in every batch element), else None
        self.shared_sample_position: int | None = None
        #: set by a caller that only wants the pieces of a shortcut sample: it then finds
        #: ``(position, shared samples S x (t-1), candidate samples S x *batch)`` in
        #: ``shared_samples`` and gets an empty tensor instead of the concatenation
        self.want_shared_samples = False
        self.shared_samples: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def rsample_from_base_samples(self, sample_shape: torch.Size, base_samples: torch.Tensor) -> torch.Tensor:
        fast = self._shared_prefix_samples(sample_shape, base_samples)
        return fast if fast is not None else super().rsample_from_base_samples(sample_shape, base_samples)

    def _shared_prefix_samples(self, sample_shape: torch.Size, base_samples: torch.Tensor) -> torch.Tensor | None:
        idx = self._idx
        batch, t = idx.shape[:-1], idx.shape[-1]
        ns = len(sample_shape)
        # single-output base samples: sample_shape x batch x t (expanded over the batch)
        if len(batch) == 0 or batch.numel() < 2 or t < 2:
            return None
        if base_samples.shape != torch.Size((*sample_shape, *batch, t)):
            return None
        if any(base_samples.stride(ns + d) != 0 for d in range(len(batch)) if batch[d] > 1):
            return None  # base samples differ across the batch
        flat = idx.reshape(-1, t)
        varying = (~(flat == flat[0]).all(0)).nonzero().flatten()
        if len(varying) != 1:
            return None
        j = int(varying)  # the candidate's position (last in qNEI, first in qUCB with X_pending)
        shared = torch.cat([torch.arange(j), torch.arange(j + 1, t)])
        prefix, last = flat[0, shared], flat[:, j]
        k, cov, mean = t - 1, self._set_cov, self._set_mean
        try:
            L = psd_safe_cholesky(cov[prefix.unsqueeze(-1), prefix])
        except Exception:  # noqa: BLE001 - let the generic path handle (and report) it
            return None
        V = torch.linalg.solve_triangular(L, cov[prefix.unsqueeze(-1), last], upper=False)  # k x B
        var = _jittered(cov[last, last] - (V * V).sum(0))
        if var is None:
            return None
        z = base_samples[(Ellipsis, *([0] * len(batch)), slice(None))].reshape(-1, t)  # S x t
        zp, zx = z[:, shared], z[:, j : j + 1]
        fp = mean[prefix] + zp @ L.mT  # S x k
        fx = mean[last] + zp @ V + var.sqrt() * zx  # S x B
        S, B = z.shape[0], last.shape[0]
        self.shared_sample_position = j
        if self.want_shared_samples:
            self.shared_samples = (j, fp.reshape(*sample_shape, k), fx.reshape(*sample_shape, *batch))
            return fp.new_empty(0)
        parts = [fp[:, :j].unsqueeze(1).expand(S, B, j), fx.unsqueeze(-1), fp[:, j:].unsqueeze(1).expand(S, B, k - j)]
        return torch.cat(parts, dim=-1).reshape(*sample_shape, *batch, t, 1)


class FiniteSetModel(GPyTorchModel):
    """A single-output BoTorch model over a finite set of ``m`` points with a known joint
    Gaussian posterior ``N(mean, covariance)``; an input ``X`` (``... x q x 1``) holds indices
    into the set. Acquisition functions see exactly the GP's posterior at those points."""

    _num_outputs = 1

    def __init__(self, mean: torch.Tensor, covariance: torch.Tensor) -> None:
        super().__init__()
        if mean.ndim != 1 or covariance.shape != (len(mean), len(mean)):
            raise ValueError("FiniteSetModel needs a mean of shape m and a covariance of shape m x m")
        self.register_buffer("set_mean", mean)
        self.register_buffer("set_covariance", covariance)
        self.likelihood = GaussianLikelihood()  # unused: the set holds latent values only

    @property
    def num_outputs(self) -> int:
        return 1

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size()

    def indices(self, X: torch.Tensor) -> torch.Tensor:
        if X.shape[-1] != 1:
            raise ValueError(f"FiniteSetModel inputs are indices of shape ... x q x 1, got {tuple(X.shape)}")
        idx = X[..., 0].round().long()
        if idx.numel() and (idx.min() < 0 or idx.max() >= len(self.set_mean)):
            raise IndexError(f"index out of range for a set of {len(self.set_mean)} points")
        return idx

    def posterior(self, X, output_indices=None, observation_noise=False, posterior_transform=None, **kwargs):
        if observation_noise is not False:
            raise NotImplementedError("FiniteSetModel holds latent values only")
        idx = self.indices(X)
        mvn = MultivariateNormal(self.set_mean[idx], _Submatrix(self.set_covariance, idx, idx))
        posterior = FiniteSetPosterior(mvn, self.set_mean, self.set_covariance, idx)
        return posterior if posterior_transform is None else posterior_transform(posterior)

    def forward(self, X):  # pragma: no cover - posterior() is the interface
        return self.posterior(X).distribution


class GreedyQLogNoisyExpectedImprovement(qLogNoisyExpectedImprovement):
    """BoTorch's ``qLogNoisyExpectedImprovement`` (cached root over the incumbents), with the
    q = 1 evaluation that sequential greedy selection makes done as one triangular solve for the
    whole batch of candidates.

    BoTorch's ``sample_cached_cholesky`` solves ``L x = c_i`` with ``L`` broadcast to every batch
    element (a copy of ``L`` per candidate) and expands the base samples per candidate; here the
    right-hand sides are stacked into one matrix. Same samples, same values; other shapes (q > 1,
    batched models) go through BoTorch's code unchanged.
    """

    def _get_f_X_samples(self, posterior: GPyTorchPosterior, q_in: int) -> torch.Tensor:
        fast = self._single_point_samples(posterior, q_in) if self._cache_root else None
        return fast if fast is not None else super()._get_f_X_samples(posterior, q_in)

    def _single_point_samples(self, posterior: GPyTorchPosterior, q_in: int) -> torch.Tensor | None:
        L = getattr(self, "_baseline_L", None)
        if q_in != 1 or L is None or L.ndim != 2 or posterior._is_mt:
            return None
        mvn = posterior.distribution
        n = L.shape[-1]
        sample_shape = self.sampler.sample_shape
        base = self.sampler.base_samples
        if base is None or base.numel() != sample_shape.numel() * (n + 1):
            return None
        rows = mvn.lazy_covariance_matrix[..., -1:, :].to_dense()[..., 0, :]  # *b x (n + 1)
        batch = rows.shape[:-1]
        if rows.shape[-1] != n + 1:
            return None
        flat = rows.reshape(-1, n + 1)
        V = torch.linalg.solve_triangular(L, flat[:, :-1].mT, upper=False)  # n x B
        var = _jittered(flat[:, -1] - (V * V).sum(0))
        if var is None:
            return None
        z = base.reshape(sample_shape.numel(), n + 1)  # the same base samples BoTorch would use
        mean = mvn.mean.reshape(-1, mvn.mean.shape[-1])[:, -1]
        f = mean + z[:, :n] @ V + var.sqrt() * z[:, n:]  # S x B
        return f.reshape(*sample_shape, *batch, 1, 1)


class GreedyQUpperConfidenceBound(qUpperConfidenceBound):
    """BoTorch's ``qUpperConfidenceBound`` with the sequential greedy evaluation (one candidate
    plus the same pending points in every batch element) reduced early.

    qUCB is ``mean_s max_j u_j(s)`` with ``u_j = m_j + beta' |f_j - m_j|`` per point; the pending
    points' ``u_j`` are the same for every candidate when :class:`FiniteSetPosterior` shares
    their samples, so their max over ``j`` is taken once instead of per candidate. Same values as
    the parent on the same samples; any other case goes through BoTorch's code unchanged.
    """

    def _non_reduced_forward(self, X: torch.Tensor) -> torch.Tensor:
        if self._constraints is not None or not isinstance(self.objective, IdentityMCObjective) or (
            self.posterior_transform is not None
        ):
            return super()._non_reduced_forward(X)
        posterior = self.model.posterior(X)
        if not isinstance(posterior, FiniteSetPosterior):
            return super()._non_reduced_forward(X)
        posterior.want_shared_samples = True
        samples = self.get_posterior_samples(posterior)
        if posterior.shared_samples is None:  # no shortcut: BoTorch's computation on the samples
            return self._sample_forward(self.objective(samples, X=X))
        _, shared, cand = posterior.shared_samples  # sample_shape x (t - 1), sample_shape x batch
        ns = len(self.sample_shape)
        u_cand = cand.mean(dim=0) + self.beta_prime * (cand - cand.mean(dim=0)).abs()
        u_shared = shared.mean(dim=0) + self.beta_prime * (shared - shared.mean(dim=0)).abs()
        best_shared = u_shared.amax(dim=-1)  # sample_shape
        best_shared = best_shared.reshape(*best_shared.shape, *([1] * (u_cand.ndim - ns))).expand_as(u_cand)
        return torch.stack([best_shared, u_cand], dim=-1)  # max over the last dim: the same qUCB
