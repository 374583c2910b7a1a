"""Layout scores with the published definitions, as LayoutGAN++ and LayoutDM compute them.

Boxes are converted to left, top, right, bottom (``ltrb``) and centres. Following the reference
code (Kikuchi et al., "Constrained Graphic Layout Generation via Latent Optimization", 2021;
Inoue et al., "LayoutDM", 2023; both after Li et al., "Attribute-conditioned Layout GAN", 2020):

- **alignment** = ``sum_i -log(1 - d_i)`` with ``d_i`` the smallest, over the six alignment
  coordinates (left, centre-x, right, top, centre-y, bottom), of the distance to the nearest other
  element's same coordinate ("alignment-ACLayoutGAN"; ``per_element=True`` divides by the number
  of elements, "alignment-LayoutGAN++"). A lone element scores 0.
- **overlap** = ``sum over ordered pairs i != j of area(i ∩ j) / area(i)`` ("overlap-ACLayoutGAN";
  ``per_element=True`` divides by the number of elements, "overlap-LayoutGAN++").
- **max_iou** between two layouts: for each label, the IoUs of its boxes in one and in the other
  are matched one to one (Hungarian, maximizing the total), and the matched IoUs summed over labels
  are divided by the larger element count. The reference code only compares layouts with the same
  labels; dividing by the larger count extends it so that a missing or extra element costs its share.

Lower alignment and overlap are better; both are 0 for a perfectly aligned, non-overlapping page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def boxes_of(page: Sequence[dict[str, Any]]) -> np.ndarray:
    """``n x 4`` float64 ``[x, y, w, h]`` (top-left corner) of a page's elements."""
    return np.asarray([el["box"] for el in page], dtype=np.float64).reshape(-1, 4)


def labels_of(page: Sequence[dict[str, Any]]) -> list[str]:
    return [el["label"] for el in page]


def ltrb(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y, w, h = boxes.T
    return x, y, x + w, y + h


def alignment(page: Sequence[dict[str, Any]], per_element: bool = False) -> float:
    b = boxes_of(page)
    n = len(b)
    if n < 2:
        return 0.0
    left, top, right, bottom = ltrb(b)
    coords = np.stack([left, (left + right) / 2, right, top, (top + bottom) / 2, bottom])  # 6 x n
    diff = np.abs(coords[:, :, None] - coords[:, None, :])  # 6 x n x n
    diff[:, np.arange(n), np.arange(n)] = np.inf
    d = np.minimum(diff.min(axis=2).min(axis=0), 1.0)
    d[d >= 1.0] = 0.0  # as the reference code: "no other element" (distance 1) counts 0
    score = float(-np.log1p(-d).sum())
    return score / n if per_element else score


def intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``len(a) x len(b)`` areas of intersection of two sets of ``[x, y, w, h]`` boxes."""
    l1, t1, r1, b1 = (v[:, None] for v in ltrb(a))
    l2, t2, r2, b2 = (v[None, :] for v in ltrb(b))
    return np.clip(np.minimum(r1, r2) - np.maximum(l1, l2), 0, None) * np.clip(
        np.minimum(b1, b2) - np.maximum(t1, t2), 0, None
    )


def overlap(page: Sequence[dict[str, Any]], per_element: bool = False) -> float:
    b = boxes_of(page)
    n = len(b)
    if n < 2:
        return 0.0
    inter = intersections(b, b)
    np.fill_diagonal(inter, 0.0)
    area = b[:, 2] * b[:, 3]
    score = float((inter / area[:, None]).sum())
    return score / n if per_element else score


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = intersections(a, b)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return inter / union


def max_iou(page: Sequence[dict[str, Any]], target: Sequence[dict[str, Any]]) -> float:
    """Label-wise Hungarian matching of IoUs, summed and divided by the larger element count (1 = the same boxes)."""
    from scipy.optimize import linear_sum_assignment

    if not page or not target:
        return 0.0
    ba, bb = boxes_of(page), boxes_of(target)
    la, lb = np.asarray(labels_of(page)), np.asarray(labels_of(target))
    total = 0.0
    for label in set(la.tolist()) & set(lb.tolist()):
        iou = iou_matrix(ba[la == label], bb[lb == label])
        rows, cols = linear_sum_assignment(iou, maximize=True)
        total += float(iou[rows, cols].sum())
    return total / max(len(ba), len(bb))
