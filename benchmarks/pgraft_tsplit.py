"""P-GRAFT's bias-variance trade-off over t_split on one task with the surrogate fixed, any domain.

    python benchmarks/pgraft_tsplit.py [--prior moses-selfies] [--task pmo/osimertinib_mpo]
        [--splits 0 0.25 0.5 0.75 0.9] [--seeds 2] [--rounds 4] [--samples 1024] [--device cuda]
    python benchmarks/pgraft_tsplit.py --prior doc-layouts --task layout/constraints --splits 0 0.25 0.5 0.75

A bootstrap-ensemble surrogate (:func:`bbo.optimizers.generative.fit_surrogate`, as the optimizers
fit it) is fitted once to the oracle's values of ``--fit`` objects sampled from the prior, and
stays fixed. For each t_split, P-GRAFT (top 10% of each round
accepted) fine-tunes the prior against the surrogate with the same sampling budget (``rounds x
samples`` trajectories), and the stitched policy's fresh samples are scored by the surrogate and
by the oracle itself. The variance column is the paper's other side of the trade-off, measured on
the prior: the share of the final reward's variance that is left once ``x_{t_split}`` is known
(``E[Var(r | x_t)] / Var(r)``, with ``--continuations`` prior continuations from each of 256
states). t_split = 0 is GRAFT (no variance left, but the whole chain is trained); large t_split
trains a short, easy segment on a noisy label.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bbo.diffusion import DiffusionPrior, load_prior
from bbo.domains import get_domain
from bbo.finetune.graft import PGRAFT, snap_split
from bbo.optimizers.generative import fit_surrogate
from bbo.surrogates.ensemble import capped_standardized
from oracles import get_oracle


@torch.no_grad()
def continue_from(prior: DiffusionPrior, x: torch.Tensor, t_from: int, steps: int, gen: torch.Generator) -> torch.Tensor:
    """Prior samples of x_0 given x at timestep ``t_from`` (a timestep of the ``steps`` grid)."""
    grid = prior.timesteps(steps).tolist()
    for i, t in enumerate(grid):
        if t > t_from:
            continue
        t_prev = grid[i + 1] if i + 1 < len(grid) else -1
        x = prior.step_mean(x, t, t_prev) + prior.step_sigma(t, t_prev) * torch.randn(x.shape, generator=gen)
    return x


@torch.no_grad()
def unexplained_variance(prior: DiffusionPrior, reward, t_I: int, steps: int, states: int, continuations: int,
                         seed: int) -> float:
    """``E[Var(r(x_0) | x_{t_I})] / Var(r(x_0))`` under the prior."""
    if t_I < 0:
        return 0.0
    gen = torch.Generator().manual_seed(seed)
    traj = prior.sample_tensors(states, steps=steps, generator=gen, return_trajectory=True)
    k = int((traj.timesteps == t_I).nonzero()[0, 0]) + 1  # states[k] is x at t_I
    x = traj.states[k].repeat_interleave(continuations, 0)
    r = reward(continue_from(prior, x, t_I, steps, gen)).reshape(states, continuations)
    return float(r.var(1).mean() / r.flatten().var())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prior", default="moses-selfies")
    parser.add_argument("--task", default="pmo/osimertinib_mpo")
    parser.add_argument("--splits", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 0.9])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--fit", type=int, default=1000, help="oracle-scored prior samples the surrogate is fitted to")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--samples", type=int, default=1024, help="trajectories per P-GRAFT round")
    parser.add_argument("--keep", type=float, default=0.1, help="top-k fraction accepted")
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--eval", type=int, default=1000, help="policy samples scored at the end")
    parser.add_argument("--continuations", type=int, default=8)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    prior = load_prior(args.prior, device=args.device)
    oracle = get_oracle(args.task)
    steps = prior.sample_steps

    domain = get_domain(prior.domain_spec())
    sign = -1.0 if oracle.direction == "minimize" else 1.0  # P-GRAFT maximizes: a minimized score is negated
    fit = [o for o in prior.sample(args.fit, seed=12345) if domain.validate(o) is None]
    fit = [o for o, ok in zip(fit, prior.encodable(fit)) if ok]
    x = prior.encode(fit)
    y = sign * torch.tensor(oracle(fit), dtype=torch.float32)
    surrogate = fit_surrogate(prior, x, y, seed=0)
    mu = float(y.mean())
    reward = capped_standardized(surrogate.reward("mean", 0.0), y)  # as the optimizers see it

    prior_eval = [o for o in prior.sample(args.eval, seed=999) if domain.validate(o) is None]
    print(f"{args.task}: surrogate fitted to {len(fit)} prior samples (oracle mean {sign * mu:.3f}, "
          f"held-out RMSE {surrogate.fit_log.get('val_rmse', float('nan')):.3f}); prior samples: oracle mean "
          f"{np.mean(oracle(prior_eval)):.3f}; naturalness {_fmt(domain.naturalness(prior_eval))}")
    header = ["t_split", "t_I", "seed", "surrogate_std", "oracle_mean", "oracle_top10", "var_left", "seconds"]
    print("".join(f"{h:>14s}" for h in header))
    rows = []
    for split in args.splits:
        t_I = snap_split(prior, split, steps)
        var_left = unexplained_variance(prior, reward, t_I, steps, 256, args.continuations, seed=7)
        for seed in range(args.seeds):
            start = time.perf_counter()
            policy = PGRAFT(prior, reward, rule="top_k", keep=args.keep, t_split=split, rounds=args.rounds,
                            samples_per_round=args.samples, train_steps=args.train_steps, seed=seed,
                            device=args.device, progress=False).run()
            seconds = time.perf_counter() - start
            gen = torch.Generator().manual_seed(10_000 + seed)
            z = policy.sample_tensors(args.eval, steps=steps, generator=gen)
            objects = [o for o in policy.decode(z) if domain.validate(o) is None]
            values = oracle(objects)
            best = sorted(sign * values)[-10:]
            row = [split, t_I, seed, float(reward(z).mean()), float(np.mean(values)), sign * float(np.mean(best)),
                   var_left, seconds]
            rows.append(row)
            print("".join(f"{v:>14.3f}" if isinstance(v, float) else f"{v:>14d}" for v in row)
                  + "  " + _fmt(domain.naturalness(objects)), flush=True)
    data = np.array([r[3:5] for r in rows])
    print("\nmean over seeds (surrogate reward in standard deviations, oracle mean):")
    for split in args.splits:
        sel = [i for i, r in enumerate(rows) if r[0] == split]
        print(f"  t_split {split:4.2f}: {data[sel, 0].mean():.3f}  {data[sel, 1].mean():.4f}")


def _fmt(figures: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.3g}" for k, v in figures.items())


if __name__ == "__main__":
    main()
