"""The handwritten digits that ship with scikit-learn (``sklearn.datasets.load_digits``): the
natural data of the ``image`` domain, split once into a training and a held-out part.

1,797 grey-scale images of 8 x 8 pixels with 17 intensity levels (0..16), scaled to [0, 1]. The
split is stratified by class with a fixed seed, so every user, test and benchmark sees the same
1,437 training and 360 held-out images: the prior and the classifier are trained on the first,
naturalness is measured against the second (a prior that memorized its training images would
look perfect against them and is caught by the novelty figure).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SHAPE = (1, 8, 8)
HELD_OUT_FRACTION = 0.2
SPLIT_SEED = 0


@lru_cache(maxsize=1)
def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[:, None]  # n x 1 x 8 x 8 in [0, 1]
    x_tr, x_te, y_tr, y_te = train_test_split(images, data.target, test_size=HELD_OUT_FRACTION,
                                              random_state=SPLIT_SEED, stratify=data.target)
    for arr in (x_tr, x_te, y_tr, y_te):
        arr.setflags(write=False)
    return x_tr, y_tr, x_te, y_te


def digits(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of the ``"train"`` or ``"held_out"`` split: float32 ``n x 1 x 8 x 8``
    in [0, 1] and int labels 0..9 (read-only arrays)."""
    x_tr, y_tr, x_te, y_te = _split()
    if split == "train":
        return x_tr, y_tr
    if split == "held_out":
        return x_te, y_te
    raise ValueError(f"unknown digits split {split!r}; use 'train' or 'held_out'")
