"""The MOSES training and test SMILES, read offline from the files shipped in the package."""

from __future__ import annotations

import functools
import lzma
from pathlib import Path
from typing import Literal

MOSES_DIR = Path(__file__).parent / "data"


@functools.lru_cache(maxsize=2)
def _read(split: str) -> tuple[str, ...]:
    path = MOSES_DIR / f"{split}.smi.xz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; rebuild it with `python -m bbo.domains.molecule.moses_regenerate`")
    with lzma.open(path, "rt") as f:
        return tuple(line for line in f.read().splitlines() if line)


def moses_smiles(split: Literal["train", "test"] = "train") -> tuple[str, ...]:
    """All SMILES of a MOSES split (train: 1,584,663; test: 176,074), cached after the first read."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown MOSES split {split!r}; choose 'train' or 'test'")
    return _read(split)


@functools.lru_cache(maxsize=1)
def moses_train_set() -> frozenset[str]:
    """MOSES train as a set (its SMILES are canonical), for novelty."""
    return frozenset(moses_smiles("train"))
