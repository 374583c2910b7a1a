"""A bootstrap deep ensemble: the differentiable surrogate that SQDF and P-GRAFT fine-tune against.

K MLP heads, each fitted on its own bootstrap resample of the told data, all trained at once as
one batched network (weights ``heads x in x out``). Targets are standardized; a held-out split
stops training early. The optimistic reward is ``mean + beta * std`` over heads (``ucb``) or the
max over heads (``max``), as in SEIKO's bootstrap variant; both are differentiable in the input.

Shapes: inputs ``batch x *input_shape``; head outputs ``heads x batch``.

Sets (``set_size``): when the input is a set of slots (a layout's elements), each head is a
Deep Sets network (Zaheer et al. 2017): the same MLP on every slot, a mean over slots, then an MLP
on the pooled vector; inputs are standardized per feature across slots. Its prediction cannot
depend on slot order, which a policy's samples do not share with the encoded told objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn


class _BatchedLinear(nn.Module):
    def __init__(self, heads: int, n_in: int, n_out: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(heads, n_in, n_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(heads, 1, n_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # heads x batch x n_in
        return torch.baddbmm(self.bias, x, self.weight)


class BootstrapEnsemble(nn.Module):
    """Ensemble of ``heads`` MLPs on flattened inputs.

    Args:
        input_dim: number of input features (the flattened domain tensor).
        heads: ensemble size (SEIKO/SQDF use 4).
        hidden, depth: width and number of hidden layers of each head.
        seed: seeds initialisation, bootstrap resamples, splits and minibatches.
    """

    def __init__(self, input_dim: int, heads: int = 4, hidden: int = 256, depth: int = 2, seed: int = 0,
                 set_size: int | None = None) -> None:
        super().__init__()
        self.input_dim, self.heads = int(input_dim), int(heads)
        self.set_size = None if set_size is None else int(set_size)
        if self.set_size is not None and (self.set_size < 1 or self.input_dim % self.set_size):
            raise ValueError(f"set_size {set_size} does not divide the input dimension {input_dim}")
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        if self.set_size is None:
            dims = [self.input_dim] + [int(hidden)] * int(depth) + [1]
        else:  # per slot: depth layers; after the mean over slots: one hidden layer and the output
            dims = [self.input_dim // self.set_size] + [int(hidden)] * (int(depth) + 1) + [1]
        self.pool_at = None if self.set_size is None else int(depth)
        self.layers = nn.ModuleList(_BatchedLinear(self.heads, a, b) for a, b in zip(dims[:-1], dims[1:]))
        torch.random.set_rng_state(gen_state)
        self.seed = int(seed)
        self.register_buffer("x_mean", torch.zeros(self.input_dim))
        self.register_buffer("x_std", torch.ones(self.input_dim))
        self.register_buffer("y_mean", torch.zeros(()))
        self.register_buffer("y_std", torch.ones(()))
        self.fit_log: dict[str, float] = {}

    def heads_output(self, x: torch.Tensor) -> torch.Tensor:
        """Each head's prediction in the targets' units, ``heads x batch``."""
        h = ((x.flatten(1) - self.x_mean) / self.x_std).unsqueeze(0).expand(self.heads, -1, -1)
        return self._network(h) * self.y_std + self.y_mean

    def _network(self, h: torch.Tensor) -> torch.Tensor:
        """Standardized inputs ``heads x batch x input_dim`` -> standardized outputs ``heads x batch``."""
        heads, batch = h.shape[:2]
        if self.set_size is not None:
            h = h.reshape(heads, batch * self.set_size, -1)
        for i, layer in enumerate(self.layers):
            if i == self.pool_at:
                h = h.reshape(heads, batch, self.set_size, -1).mean(2)
            h = layer(h)
            if i < len(self.layers) - 1:
                h = nn.functional.silu(h)
        return h[..., 0]

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads_output(x).mean(0)

    def std(self, x: torch.Tensor) -> torch.Tensor:
        out = self.heads_output(x)
        return out.std(0) if self.heads > 1 else torch.zeros_like(out[0])

    def optimistic(self, x: torch.Tensor, kind: Literal["ucb", "max", "mean"] = "ucb", beta: float = 1.0) -> torch.Tensor:
        """Optimistic reward, ``batch``: ``mean + beta * std`` (ucb), max over heads, or the mean."""
        out = self.heads_output(x)
        if kind == "max":
            return out.max(0).values
        if kind == "mean":
            return out.mean(0)
        if kind == "ucb":
            return out.mean(0) + beta * (out.std(0) if self.heads > 1 else 0.0)
        raise ValueError(f"unknown optimistic reward {kind!r}; choose 'ucb', 'max' or 'mean'")

    def reward(self, kind: Literal["ucb", "max", "mean"] = "ucb", beta: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
        """The optimistic reward as a function of domain tensors (differentiable; weights frozen)."""
        for p in self.parameters():
            p.requires_grad_(False)
        return lambda x: self.optimistic(x, kind, beta)

    def fit(
        self, x: torch.Tensor, y: torch.Tensor, *, steps: int = 2000, batch_size: int = 128, lr: float = 1e-3,
        weight_decay: float = 1e-4, val_fraction: float = 0.1, patience: int = 200, eval_every: int = 25,
    ) -> BootstrapEnsemble:
        """Fit every head on its own bootstrap resample of ``x`` (``n x *shape``), ``y`` (``n``);
        stop when the held-out error has not improved for ``patience`` steps and keep the best."""
        x = x.detach().flatten(1).float()
        y = y.detach().float().reshape(-1)
        if x.shape[0] != y.shape[0] or x.shape[0] < 2:
            raise ValueError(f"fit needs at least 2 aligned examples, got {x.shape[0]} inputs and {y.shape[0]} targets")
        gen = torch.Generator().manual_seed(self.seed)
        n = x.shape[0]
        perm = torch.randperm(n, generator=gen)
        n_val = int(round(val_fraction * n)) if n >= 20 else 0
        val, train = perm[:n_val], perm[n_val:]
        if self.set_size is None:
            self.x_mean.copy_(x[train].mean(0))
            self.x_std.copy_(x[train].std(0).clamp(min=1e-6) if len(train) > 1 else torch.ones(x.shape[1]))
        else:  # per feature, pooled over slots: the standardization must not depend on slot order
            slots = x[train].reshape(-1, self.input_dim // self.set_size)
            self.x_mean.copy_(slots.mean(0).repeat(self.set_size))
            self.x_std.copy_(slots.std(0).clamp(min=1e-6).repeat(self.set_size))
        self.y_mean.copy_(y[train].mean())
        self.y_std.copy_(y[train].std().clamp(min=1e-6) if len(train) > 1 else torch.ones(()))
        boot = train[torch.randint(len(train), (self.heads, len(train)), generator=gen)]  # heads x n_train
        for p in self.parameters():
            p.requires_grad_(True)
        opt = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=weight_decay)
        best, best_state, since = math.inf, None, 0
        bs = min(batch_size, len(train))
        for step in range(1, steps + 1):
            idx = boot.gather(1, torch.randint(boot.shape[1], (self.heads, bs), generator=gen))
            xb = ((x[idx] - self.x_mean) / self.x_std)  # heads x bs x d
            loss = ((self._network(xb) - (y[idx] - self.y_mean) / self.y_std) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if n_val and (step % eval_every == 0 or step == steps):
                with torch.no_grad():
                    err = ((self.mean(x[val]) - y[val]) ** 2).mean().item()
                if err < best:
                    best, since = err, 0
                    best_state = {k: v.clone() for k, v in self.state_dict().items()}
                else:
                    since += eval_every
                    if since >= patience:
                        break
        if best_state is not None:
            self.load_state_dict(best_state)
        for p in self.parameters():
            p.requires_grad_(False)
        train_rmse = float(((self.mean(x[train]) - y[train]) ** 2).mean().sqrt())
        self.fit_log = {"steps": step, "val_rmse": math.sqrt(best) if n_val else math.nan, "train_rmse": train_rmse,
                        "n": n}
        return self


def capped_standardized(reward: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor,
                        margin: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """``reward`` in standard deviations of the told values ``y`` (so that a KL weight alpha is
    scale-free), softly capped ``margin`` standard deviations above the best told value.

    Why the cap: an MLP surrogate extrapolates linearly away from its data, and a fine-tuned
    policy climbs that extrapolation off the prior's support. On the molecular prior, uncapped SQDF
    reached a standardized surrogate reward of ~9,000 in one round and its next batch decoded to
    molecules scoring ~0 on osimertinib MPO. ``cap - softplus(cap - r)`` is ``r`` well below the
    cap and saturates smoothly at it, so gradients vanish instead of pointing outward.
    """
    mu, sd = float(y.mean()), float(y.std().clamp(min=1e-6))
    cap = (float(y.max()) - mu) / sd + float(margin)

    def capped(z: torch.Tensor) -> torch.Tensor:
        return cap - torch.nn.functional.softplus(cap - (reward(z) - mu) / sd)

    return capped
