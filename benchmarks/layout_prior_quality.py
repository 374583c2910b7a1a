"""Naturalness of a layout prior against the generator's held-out pages, beside the figures of
the generator's own pages at the same sample size (Fréchet distances are biased upwards at small
sizes).

    python benchmarks/layout_prior_quality.py [--prior doc-layouts] [--n 500] [--steps 50]

One row per source: the prior (stochastic DDIM, eta = 1, and the deterministic sampler noise-BO
decodes through, eta = 0), training pages (a memorizer's figures: novelty 0), held-out pages, and
random boxes (uniform label, count, position and size). Validity is the share of samples that are
valid pages (a sample without any present element is not).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def random_boxes(n: int, rng: np.random.Generator) -> list[list[dict]]:
    from bbo.domains.layout import LABELS

    out = []
    for _ in range(n):
        page = []
        for _ in range(int(rng.integers(1, 21))):
            w, h = rng.uniform(0.02, 0.8, 2)
            page.append({"label": LABELS[int(rng.integers(5))],
                         "box": [float(rng.uniform(0, 1 - w)), float(rng.uniform(0, 1 - h)), float(w), float(h)]})
        out.append(page)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", default="doc-layouts")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--steps", type=int, nargs="+", default=[None])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from bbo.diffusion import load_prior
    from bbo.domains.layout import LayoutDomain, pages
    from bbo.domains.layout.metrics import layout_metrics

    prior = load_prior(args.prior)
    domain = LayoutDomain()
    rng = np.random.default_rng(args.seed)
    rows: dict[str, tuple[list, float]] = {}
    for steps in args.steps:
        label = f"{steps or prior.sample_steps} steps"
        start = time.perf_counter()
        rows[f"prior eta 1, {label}"] = (prior.sample(args.n, seed=args.seed, steps=steps), time.perf_counter() - start)
        z = torch.randn((args.n, *prior.shape), generator=torch.Generator().manual_seed(args.seed))
        start = time.perf_counter()
        rows[f"prior eta 0, {label}"] = (prior.decode(prior.sample_tensors(args.n, x_T=z, eta=0.0, steps=steps)),
                                         time.perf_counter() - start)
    train = pages("train")
    rows["train pages"] = ([train[i] for i in rng.choice(len(train), args.n, replace=False)], float("nan"))
    rows["held-out pages"] = (pages("held_out", args.n), float("nan"))
    rows["random boxes"] = (random_boxes(args.n, rng), float("nan"))
    cols = ["validity", "alignment", "overlap", "feature_fd", "diversity", "novelty"]
    print(f"{'source':<26}" + "".join(f"{c:>12}" for c in cols) + f"{'elements':>10}{'seconds':>9}")
    for name, (layouts, seconds) in rows.items():
        m = layout_metrics(layouts, domain)
        count = np.mean([len(p) for p in layouts if domain.validate(p) is None])
        print(f"{name:<26}" + "".join(f"{m.get(c, float('nan')):>12.4f}" for c in cols) + f"{count:>10.1f}{seconds:>9.1f}")


if __name__ == "__main__":
    main()
