"""Naturalness of images, measured against the held-out digits in the shipped classifier's
feature space (as FID uses Inception's and FCD ChemNet's).

* ``validity``: share of the objects that are valid images of the domain.
* ``classifier_fd``: Fréchet distance between Gaussians fitted to the classifier's penultimate
  features of the valid images and of the 360 held-out digits (lower is more natural). Like FID
  it is biased upwards at small sample sizes: compare figures at equal counts (the held-out
  digits against themselves are 0; the training digits, all 1,437, score
  :data:`TRAIN_REFERENCE_FD` as measured by the tests).
* ``confidence``: the classifier's mean top-class probability (a scribble scores low).
* ``diversity``: mean pairwise feature distance relative to the held-out digits' own (1 = as
  diverse as real digits; a collapsed batch tends to 0).
* ``novelty``: median distance (pixels, L2) from each image to its nearest training digit,
  relative to the held-out digits' median distance to theirs (1 = as far from the training set
  as fresh data; a prior that memorized its training images scores near 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from bbo.bench.metrics import frechet_distance


def _gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(0), np.cov(features, rowvar=False)


def _mean_pairwise(features: np.ndarray) -> float:
    from scipy.spatial.distance import pdist

    return float(pdist(features).mean()) if len(features) > 1 else float("nan")


def _nearest_train_distance(images: np.ndarray) -> np.ndarray:
    from bbo.domains.image.digits import digits

    train = np.asarray(digits("train")[0], dtype=np.float64).reshape(-1, 64)
    x = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    d2 = (x**2).sum(1)[:, None] + (train**2).sum(1)[None] - 2 * x @ train.T
    return np.sqrt(np.clip(d2, 0, None).min(1))


@lru_cache(maxsize=4)
def _held_out_reference(classifier_key: int) -> dict[str, Any]:
    from bbo.domains.image.classifier import predict
    from bbo.domains.image.digits import digits

    images = np.array(digits("held_out")[0])
    _, feats = predict(images, _CLASSIFIERS[classifier_key])
    mu, cov = _gaussian(feats)
    return {"mu": mu, "cov": cov, "pairwise": _mean_pairwise(feats),
            "nn": float(np.median(_nearest_train_distance(images)))}


_CLASSIFIERS: dict[int, Any] = {}


def image_metrics(images: Sequence[Any], domain: Any = None, classifier: Any = None) -> dict[str, float]:
    """The naturalness figures above for ``images`` (any sequence; invalid ones count against
    validity only). ``classifier`` defaults to the shipped one."""
    from bbo.domains.image.classifier import load_classifier, predict
    from bbo.domains.image.domain import ImageDomain

    domain = domain or ImageDomain()
    classifier = classifier or load_classifier()
    _CLASSIFIERS[id(classifier)] = classifier
    valid = [domain.canonical(o) for o in images if domain.validate(o) is None]
    out = {"validity": len(valid) / len(images) if len(images) else float("nan")}
    if not valid:
        return {**out, "classifier_fd": float("nan"), "confidence": float("nan"), "diversity": float("nan"),
                "novelty": float("nan")}
    ref = _held_out_reference(id(classifier))
    logp, feats = predict(valid, classifier)
    fd = frechet_distance(*_gaussian(feats), ref["mu"], ref["cov"]) if len(valid) > 1 else float("nan")
    out.update(classifier_fd=fd, confidence=float(np.exp(logp.max(1)).mean()),
               diversity=_mean_pairwise(feats) / ref["pairwise"],
               novelty=float(np.median(_nearest_train_distance(np.stack(valid)))) / ref["nn"])
    return out
