"""Procedural document pages: the natural data of the ``layout`` domain (its "MOSES").

No layout data set ships in a package (PubLayNet, RICO and Magazine are downloads), so bbo makes
its own pages, seeded and without data files. A page is drawn top-down by recursive splits:

1. **Margins**: left and right ``U(0.06, 0.12)`` each (the same on both sides), top and bottom
   ``U(0.05, 0.10)``.
2. **Bands**: the content area is split vertically into bands. With probability 0.5 the page opens
   with a title band (one ``title``, height ``U(0.025, 0.05)``, width ``U(0.4, 1.0)`` of the content
   width, left-aligned or centred). Then column bands follow until the page is full; with
   probability 0.25 per page (multi-column pages only) a spanning ``figure`` or ``table`` (width
   ``U(0.7, 1.0)`` of the content, centred) sits between two column bands.
3. **Columns**: a page has 1, 2 or 3 columns (probabilities 0.35 / 0.5 / 0.15) with a gutter of
   ``U(0.02, 0.04)``; every column band uses the page's grid.
4. **Blocks**: each column is filled top to bottom with blocks separated by gaps of
   ``U(0.008, 0.02)`` (one per page). A block is ``text`` (0.5; full column width, height
   ``U(0.04, 0.22)``), a section ``title`` followed by a ``text`` (0.15; title height
   ``U(0.012, 0.025)``, width ``U(0.3, 0.9)`` of the column, left-aligned), ``list`` (0.12; indented
   by ``U(0.03, 0.1)`` of the column, height ``U(0.04, 0.14)``), ``table`` (0.1; full width, height
   ``U(0.08, 0.25)``) or ``figure`` (0.13; width ``U(0.6, 1.0)`` of the column, centred, aspect
   ratio w / h ``U(0.8, 1.8)``). A block that does not fit is cut to the space left (a figure
   shrinks, keeping its aspect ratio) if at least 0.03 (text) or 0.05 (table, figure) remains;
   otherwise, as for a list, the column ends.
5. **Jitter**: every coordinate moves by ``N(0, 0.002)``, then the box is clipped to the page.

Pages keep at most ``max_elements`` (20) elements, in reading order. Train and held-out pages
come from disjoint seed streams (:func:`pages`), so a prior that memorized its training pages is
seen as such by the novelty metric.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

LABELS = ("text", "title", "list", "table", "figure")
MAX_ELEMENTS = 20
_SPLIT_SEED = {"train": 0, "held_out": 1}
SPLIT_SIZE = {"train": 10_000, "held_out": 1_000}


def generate_page(rng: np.random.Generator, max_elements: int = MAX_ELEMENTS) -> list[dict]:
    """One page: a list of ``{"label", "box": [x, y, w, h]}`` (top-left corner, page units)."""
    mx, mt, mb = rng.uniform(0.06, 0.12), rng.uniform(0.05, 0.10), rng.uniform(0.05, 0.10)
    left, right, top, bottom = mx, 1 - mx, mt, 1 - mb
    content = right - left
    n_cols = int(rng.choice([1, 2, 3], p=[0.35, 0.5, 0.15]))
    gutter = rng.uniform(0.02, 0.04)
    col_w = (content - (n_cols - 1) * gutter) / n_cols
    gap = rng.uniform(0.008, 0.02)
    out: list[tuple[str, float, float, float, float]] = []
    y = top
    if rng.random() < 0.5:  # page title
        h, w = rng.uniform(0.025, 0.05), rng.uniform(0.4, 1.0) * content
        x = left if rng.random() < 0.5 else left + (content - w) / 2
        out.append(("title", x, y, w, h))
        y += h + 2 * gap
    spanning = n_cols > 1 and rng.random() < 0.25
    bands_left = 2 if spanning else 1
    while bands_left > 0 and y < bottom - 0.05 and len(out) < max_elements:
        bands_left -= 1
        band_bottom = bottom if bands_left == 0 else y + rng.uniform(0.25, 0.45) * (bottom - y)
        ends = [
            _fill_column(rng, out, left + c * (col_w + gutter), col_w, y, band_bottom, gap, max_elements)
            for c in range(n_cols)
        ]
        y = max(ends) + gap
        if bands_left > 0 and len(out) < max_elements:  # the spanning figure or table between bands
            label = "figure" if rng.random() < 0.6 else "table"
            w = rng.uniform(0.7, 1.0) * content
            h = min(w / rng.uniform(1.5, 3.0), 0.4 * (bottom - y))
            if h > 0.03:
                out.append((label, left + (content - w) / 2, y, w, h))
                y += h + gap
    return [_jittered(rng, label, x, y0, w, h) for label, x, y0, w, h in out[:max_elements]]


def _fill_column(rng, out, x0, col_w, y, bottom, gap, max_elements) -> float:
    """Stack blocks in one column from ``y`` down to ``bottom``; returns where the column ended."""
    while len(out) < max_elements:
        kind = rng.choice(5, p=[0.5, 0.15, 0.12, 0.1, 0.13])
        if kind == 1:  # a section title, then its text
            h, w = rng.uniform(0.012, 0.025), rng.uniform(0.3, 0.9) * col_w
            if y + h + gap + 0.03 > bottom or len(out) + 2 > max_elements:
                break
            out.append(("title", x0, y, w, h))
            y += h + gap
            kind = 0
        if kind == 0:
            h = min(rng.uniform(0.04, 0.22), bottom - y)
            if h < 0.03:
                break
            out.append(("text", x0, y, col_w, h))
        elif kind == 2:
            indent = rng.uniform(0.03, 0.1) * col_w
            h = rng.uniform(0.04, 0.14)
            if y + h > bottom:
                break
            out.append(("list", x0 + indent, y, col_w - indent, h))
        elif kind == 3:
            h = rng.uniform(0.08, 0.25)
            if y + h > bottom:
                h = bottom - y  # a table that does not fit is cut to the space left, as text is
                if h < 0.05:
                    break
            out.append(("table", x0, y, col_w, h))
        else:
            w = rng.uniform(0.6, 1.0) * col_w
            h = w / rng.uniform(0.8, 1.8)
            if y + h > bottom:  # a figure that does not fit shrinks, keeping its aspect ratio
                w, h = w * (bottom - y) / h, bottom - y
                if h < 0.05:
                    break
            out.append(("figure", x0 + (col_w - w) / 2, y, w, h))
        y += h + gap
    return y


def _jittered(rng, label, x, y, w, h) -> dict:
    x, y, w, h = np.array([x, y, w, h]) + rng.normal(0, 0.002, 4)
    x, y = float(np.clip(x, 0.0, 0.99)), float(np.clip(y, 0.0, 0.99))
    w, h = float(np.clip(w, 0.005, 1.0 - x)), float(np.clip(h, 0.005, 1.0 - y))
    return {"label": label, "box": [x, y, w, h]}


@lru_cache(maxsize=4)
def _split(split: str, n: int) -> tuple:
    rng = np.random.default_rng([_SPLIT_SEED[split], 20_26])
    return tuple(tuple((e["label"], tuple(e["box"])) for e in generate_page(rng)) for _ in range(n))


def pages(split: str = "train", n: int | None = None) -> list[list[dict]]:
    """The first ``n`` pages of a split (``"train"``: 10,000, ``"held_out"``: 1,000; fixed seed
    streams, the same on every machine). Fresh lists each call: callers may modify them."""
    if split not in _SPLIT_SEED:
        raise ValueError(f"split must be 'train' or 'held_out', got {split!r}")
    n = SPLIT_SIZE[split] if n is None else int(n)
    if not 0 <= n <= SPLIT_SIZE[split]:
        raise ValueError(f"the {split} split has {SPLIT_SIZE[split]} pages, asked for {n}")
    return [
        [{"label": label, "box": list(box)} for label, box in page] for page in _split(split, SPLIT_SIZE[split])[:n]
    ]


def page(split: str, index: int) -> list[dict]:
    """Page ``index`` of a split, as a fresh list (without copying the whole split as :func:`pages` does)."""
    if split not in _SPLIT_SEED:
        raise ValueError(f"split must be 'train' or 'held_out', got {split!r}")
    return [{"label": label, "box": list(box)} for label, box in _split(split, SPLIT_SIZE[split])[int(index)]]
