"""How local a molecular prior's latent space is: what every optimizer that moves in it relies on.

    python benchmarks/prior_locality.py [PRIOR ...] [--n 400] [--device cuda]

For each prior (shipped names or ``save_prior`` directories; default ``moses-selfies``), from
``n`` of its own samples ``z`` (diffusion space, where samples have unit spread per dimension):

- re-encoding gap: median ``|z - enc(dec(z))|`` against the median distance between two
  independent samples, and how many re-encodings decode to another molecule (an optimizer that
  fits its model on ``enc`` of told molecules but moves ``z`` sees that gap as noise);
- latent locality: mean Tanimoto similarity (Morgan r=2, 2048 bits) of ``dec(z)`` to
  ``dec(z + sigma * eps)`` at small ``sigma``, and the fraction decoding to the same molecule;
- SDEdit locality: ``z`` noised to the timestep that leaves a fraction ``t`` of the schedule and
  denoised again by the prior's stochastic sampler: how similar a "nearby" proposal is.

A latent where neighbours decode to similar molecules (similarity well above that of two random
samples, the last row) is one where local search and gradients mean something.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from rdkit import DataStructs

from bbo.diffusion import load_prior
from oracles.chem import mol_from_smiles, morgan_fingerprint


def _fingerprint(smiles: str):
    mol = mol_from_smiles(smiles)  # None for an empty or unparsable one
    return morgan_fingerprint(mol) if mol is not None else None


def similarity(a: list[str], b: list[str]) -> tuple[float, float]:
    """Mean Tanimoto of pairs ``(a[i], b[i])`` (an invalid one counts 0) and the fraction identical."""
    sims, same = [], []
    for x, y in zip(a, b):
        fx, fy = _fingerprint(x), _fingerprint(y)
        sims.append(DataStructs.TanimotoSimilarity(fx, fy) if fx is not None and fy is not None else 0.0)
        same.append(bool(x) and x == y)
    return float(np.mean(sims)), float(np.mean(same))


@torch.no_grad()
def sdedit(prior, z: torch.Tensor, t_fraction: float, gen: torch.Generator) -> torch.Tensor:
    """``z`` noised to the first sampling timestep at or below ``t_fraction`` of the schedule, then
    the prior's own stochastic (eta 1) steps from there to the clean end."""
    timesteps = prior.timesteps().tolist()
    n_train = int(prior.schedule_config["num_train_timesteps"])
    start = next(i for i, t in enumerate(timesteps) if t <= t_fraction * n_train)
    t0 = timesteps[start]
    ab = prior.alpha_bar(t0)
    x = ab.sqrt() * z + (1 - ab).sqrt() * torch.randn(z.shape, generator=gen, device=z.device)
    for i in range(start, len(timesteps)):
        t, t_prev = timesteps[i], (timesteps[i + 1] if i + 1 < len(timesteps) else -1)
        sigma = float(prior.step_coefficients(t, t_prev, 1.0)[2])
        x = prior.step_mean(x, t, t_prev, eta=1.0) + sigma * torch.randn(x.shape, generator=gen, device=x.device)
    return x


def locality(name: str, n: int, device: str | None, seed: int = 0) -> list[dict[str, object]]:
    prior = load_prior(name, device=device)
    gen = torch.Generator(device=prior.alphas_cumprod.device).manual_seed(seed)
    start = time.perf_counter()
    z = prior.sample_tensors(n, generator=gen)
    mols = prior.decode(z)
    rows: list[dict[str, object]] = []

    ok = [i for i, (s, e) in enumerate(zip(mols, prior.encodable(mols))) if s and e]
    z_re = prior.encode([mols[i] for i in ok]).to(z.device)
    gap = float((z[ok] - z_re).norm(dim=1).median())
    between = float((z[: n // 2] - z[n // 2 : 2 * (n // 2)]).norm(dim=1).median())
    redecoded = prior.decode(z_re)
    sim, same = similarity([mols[i] for i in ok], redecoded)
    rows.append({"prior": name, "probe": "re-encode", "distance": gap, "between samples": between,
                 "tanimoto": sim, "same molecule": same, "encodable": len(ok) / n})
    for sigma in (0.1, 0.3, 0.5):
        near = prior.decode(z + sigma * torch.randn(z.shape, generator=gen, device=z.device))
        sim, same = similarity(mols, near)
        rows.append({"prior": name, "probe": f"z + {sigma} eps", "distance": sigma * float(np.sqrt(z.shape[1])),
                     "tanimoto": sim, "same molecule": same})
    for t in (0.1, 0.3):
        near = prior.decode(sdedit(prior, z, t, gen))
        sim, same = similarity(mols, near)
        rows.append({"prior": name, "probe": f"SDEdit t={t}", "tanimoto": sim, "same molecule": same})
    sim, same = similarity(mols[: n // 2], mols[n // 2 : 2 * (n // 2)])
    rows.append({"prior": name, "probe": "two independent samples", "distance": between, "tanimoto": sim,
                 "same molecule": same, "seconds": round(time.perf_counter() - start, 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("priors", nargs="*", default=["moses-selfies"])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    rows = [row for name in args.priors for row in locality(name, args.n, args.device)]
    columns = ["prior", "probe", "distance", "between samples", "tanimoto", "same molecule", "encodable", "seconds"]
    cell = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    print("| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    for row in rows:
        print("| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |")


if __name__ == "__main__":
    main()
