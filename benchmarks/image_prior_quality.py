"""Naturalness of an image prior against the held-out digits, beside the reference figures of
real digits at the same sample size (Fréchet distances are biased upwards at small sizes).

    python benchmarks/image_prior_quality.py [--prior digits] [--n 360] [--steps 50]

Prints one row per source: the prior (stochastic DDIM, eta = 1, and the deterministic sampler
noise-BO decodes through, eta = 0), training digits (a memorizer's figures: novelty 0), the
held-out digits themselves, and uniform noise.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", default="digits")
    parser.add_argument("--n", type=int, default=360)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from bbo.diffusion import load_prior
    from bbo.domains.image.classifier import predict
    from bbo.domains.image.digits import digits
    from bbo.domains.image.metrics import image_metrics

    prior = load_prior(args.prior)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    z = torch.randn((args.n, *prior.shape), generator=gen)
    rows = {
        "prior (eta 1)": prior.sample(args.n, seed=args.seed, steps=args.steps),
        "prior (eta 0, ODE)": prior.decode(prior.sample_tensors(args.n, x_T=z, eta=0.0, steps=args.steps)),
        "train digits": list(digits("train")[0][rng.choice(1437, args.n, replace=False)]),
        "held-out digits": list(digits("held_out")[0][: args.n]),
        "uniform noise": list(rng.uniform(size=(args.n, 1, 8, 8)).astype(np.float32)),
    }
    cols = ["validity", "classifier_fd", "confidence", "diversity", "novelty"]
    print(f"{'source':<20}" + "".join(f"{c:>15}" for c in cols) + f"{'classes':>10}")
    for name, images in rows.items():
        m = image_metrics(images)
        classes = np.bincount(predict(images)[0].argmax(1), minlength=10)
        print(f"{name:<20}" + "".join(f"{m[c]:>15.3f}" for c in cols) + f"{int((classes >= 0.02 * len(images)).sum()):>10}")


if __name__ == "__main__":
    main()
