"""Wall time of one BoTorch GP-BO round (fit + candidate pool + acquisition, batch 100) against
the number of told molecules.

The told data are distinct random MOSES training molecules scored by RDKit's QED (cheap and
deterministic). Each size gets a fresh in-memory ``BoTorchOptimizer`` told that data, then one
timed ``ask(100)``.

    python benchmarks/bo_round_time.py                      # 100, 1,000 and 3,000 told
    python benchmarks/bo_round_time.py --sizes 3000 --acquisition qUCB --kernel minmax
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import QED

from bbo.domains.molecule.moses import moses_smiles
from bbo.optimizers import BoTorchOptimizer


def told_data(n: int, seed: int) -> tuple[list[str], list[float]]:
    data = moses_smiles("train")
    rng = np.random.default_rng(seed)
    smiles = [data[i] for i in rng.choice(len(data), size=n, replace=False)]
    return smiles, [QED.qed(Chem.MolFromSmiles(s)) for s in smiles]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--acquisition", default="qlogNEI", choices=["qlogNEI", "qUCB"])
    parser.add_argument("--kernel", default="tanimoto", choices=["tanimoto", "minmax"])
    parser.add_argument("--pool-size", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    moses_smiles("train")  # load once, outside the timings
    print(
        f"BoTorch GP-BO round: batch {args.batch}, pool {args.pool_size}, {args.acquisition}, {args.kernel} kernel; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}"
    )
    header = (
        f"{'told':>6} {'train':>6} {'fit s':>7} {'pool s':>7} {'acq s':>7} {'round s':>8} "
        f"{'batch mean':>10} {'told max':>9}"
    )
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        smiles, values = told_data(n, args.seed)
        opt = BoTorchOptimizer(
            batch_size=args.batch, seed=args.seed, n_initial=min(100, n), pool_size=args.pool_size,
            acquisition=args.acquisition, kernel=args.kernel,
        )
        opt.tell(smiles, values)
        start = time.perf_counter()
        batch = opt.ask()
        total = time.perf_counter() - start
        info = opt.last_round_info
        t = info["times"]
        batch_mean = float(np.mean([QED.qed(Chem.MolFromSmiles(s)) for s in batch]))
        print(
            f"{n:>6} {info['n_train']:>6} {t['fit']:>7.2f} {t['pool']:>7.2f} {t['acquisition']:>7.2f} "
            f"{total:>8.2f} {batch_mean:>10.3f} {max(values):>9.3f}"
        )
        opt.close()


if __name__ == "__main__":
    main()
