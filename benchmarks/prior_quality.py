"""Naturalness of a molecular prior's samples against the MOSES test split, as a table.

    python benchmarks/prior_quality.py PRIOR [--n 10000] [--steps 50] [--ref 20000] [--ceiling] [--device cuda]

PRIOR is a shipped prior's name or a directory written by ``save_prior`` (``bbo pretrain molecule``
writes ``<out>/prior``). The reference row is a same-size sample of MOSES train scored the same
way, so the figures read against what real molecules score. ``--ceiling`` adds that sample passed
through the autoencoder (decoded from posterior means, and from one posterior draw each): what any
prior over its latent space can reach at best. When the prior ships a consistency
model, its clean-sample error is printed next to Tweedie's at early, middle and late steps.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bbo.domains.molecule import metrics
from bbo.domains.molecule.moses import moses_smiles
from bbo.diffusion import load_prior
from bbo.diffusion.checkpoint import load_prior_consistency


def figures(smiles: list[str], train: frozenset[str], test: list[str], device: str | None) -> dict[str, float]:
    valid = [s for s in smiles if s]
    return {
        "validity": len(valid) / len(smiles),
        "uniqueness": metrics.uniqueness(valid),
        "novelty": metrics.novelty(valid, train),
        "int_div": metrics.internal_diversity(valid[:2000]),
        "fcd_test": metrics.frechet_chemnet_distance(valid, test, device=device),
        "sa": metrics.mean_sa(valid),
        "qed": metrics.mean_qed(valid),
        "filters": metrics.filter_pass_rate(valid),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prior")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--ceiling", action="store_true",
                        help="also score train molecules decoded from their posterior means and draws")
    parser.add_argument("--ref", type=int, default=None,
                        help="FCD against a random subset of this many test molecules (default: all 176,074)")
    args = parser.parse_args()

    prior = load_prior(args.prior, device=args.device)
    start = time.perf_counter()
    generated: list[str] = []
    for i in range(0, args.n, 1000):
        generated += prior.sample(min(1000, args.n - i), seed=i, steps=args.steps)
    seconds = time.perf_counter() - start

    train_all = moses_smiles("train")
    train = frozenset(train_all)
    test = list(moses_smiles("test"))
    rng = np.random.default_rng(0)
    if args.ref is not None and args.ref < len(test):
        test = [test[i] for i in rng.choice(len(test), args.ref, replace=False)]
    reference = [train_all[i] for i in rng.choice(len(train_all), args.n, replace=False)]
    rows = {"prior": figures(generated, train, test, args.device),
            "MOSES train sample": figures(reference, frozenset(), test, args.device)}
    rows["MOSES train sample"]["novelty"] = float("nan")  # drawn from train by construction
    if args.ceiling and prior.codec is not None:
        # train molecules through the autoencoder: the best any prior over its latents can do
        reference = [s for s, ok in zip(reference, prior.codec.vocab.encode(reference)[1]) if ok]
        gen = torch.Generator(device=prior.alphas_cumprod.device).manual_seed(0)
        for name, sample in (("decoded train means", False), ("decoded train draws", True)):
            decoded = [m for i in range(0, len(reference), 1000)
                       for m in prior.codec.reconstruct(reference[i : i + 1000], sample=sample, generator=gen)]
            rows[name] = figures(decoded, train, test, args.device)

    keys = list(rows["prior"])
    print(f"{'':20s}" + "".join(f"{k:>11s}" for k in keys))
    for name, row in rows.items():
        print(f"{name:20s}" + "".join(f"{row[k]:11.3f}" for k in keys))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    consistency = load_prior_consistency(prior, device=args.device)
    if consistency is not None:  # the estimator SQDF uses, against Tweedie's
        from bbo.diffusion.consistency import estimator_errors, format_table

        print("\nclean-sample estimators on 1,000 prior trajectories (RMSE; ode = the probability-flow ODE's end)")
        print(format_table(estimator_errors(prior, consistency, n=1000, fractions=(0.1, 0.3, 0.5, 0.7, 0.9))))
    print(f"\nsampling and decoding: {args.n / seconds:.0f} molecules/s on {device} "
          f"({torch.get_num_threads()} threads), {args.steps or prior.sample_steps} DDIM steps")


if __name__ == "__main__":
    main()
