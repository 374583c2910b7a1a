"""Variation operators of the layout genetic algorithm: crossover of two pages and mutations.

- **Crossover**: a horizontal cut at a height drawn uniformly in (0.1, 0.9); the child takes the
  elements of one parent that start above the cut and those of the other that start below it
  (the top of one page over the bottom of another, as a designer would splice two drafts).
- **Mutation** (one, chosen uniformly): *move* an element by ``N(0, 0.03)`` per axis, *resize* it by
  a factor ``exp(N(0, 0.2))`` per side, *add* an element copied from a random training page,
  *remove* one (pages keep at least one), or *relabel* one.

Every child is clipped to the page and validated; invalid or duplicate children are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bbo.domains.base import selection_weights
from bbo.domains.layout.generator import LABELS, SPLIT_SIZE, page as generator_page

MUTATIONS = ("move", "resize", "add", "remove", "relabel")


def _clip(label: str, x: float, y: float, w: float, h: float) -> dict[str, Any]:
    w, h = float(np.clip(w, 0.005, 1.0)), float(np.clip(h, 0.005, 1.0))
    return {"label": label, "box": [float(np.clip(x, 0.0, 1.0 - w)), float(np.clip(y, 0.0, 1.0 - h)), w, h]}


def crossover(a: list[dict], b: list[dict], rng: np.random.Generator, max_elements: int) -> list[dict]:
    cut = rng.uniform(0.1, 0.9)
    child = [el for el in a if el["box"][1] < cut] + [el for el in b if el["box"][1] >= cut]
    if not child:
        child = list(a)
    return [dict(el) for el in child[:max_elements]]


def mutate(page: list[dict], rng: np.random.Generator, max_elements: int) -> list[dict]:
    page = [{"label": el["label"], "box": list(el["box"])} for el in page]
    kind = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
    i = int(rng.integers(len(page)))
    label, (x, y, w, h) = page[i]["label"], page[i]["box"]
    if kind == "move":
        page[i] = _clip(label, x + rng.normal(0, 0.03), y + rng.normal(0, 0.03), w, h)
    elif kind == "resize":
        page[i] = _clip(label, x, y, w * np.exp(rng.normal(0, 0.2)), h * np.exp(rng.normal(0, 0.2)))
    elif kind == "add" and len(page) < max_elements:
        donor = generator_page("train", int(rng.integers(SPLIT_SIZE["train"])))
        page.append(dict(donor[int(rng.integers(len(donor)))]))
    elif kind == "remove" and len(page) > 1:
        page.pop(i)
    elif kind == "relabel":
        page[i] = {"label": LABELS[int(rng.integers(len(LABELS)))], "box": page[i]["box"]}
    return page


def breed(
    parents: Sequence[list[dict]],
    n: int,
    rng: np.random.Generator,
    *,
    mutation_rate: float,
    scores: Sequence[float] | None,
    domain: Any,
) -> list[list[dict]]:
    """Up to ``n`` new valid pages, none a parent: a mating pool drawn with probability proportional
    to ``scores``, crossover of two pool members, then mutation with probability ``mutation_rate``
    (the molecule GA's scheme, :func:`bbo.domains.molecule.edits.offspring`)."""
    parents = [domain.canonical(p) for p in parents if domain.validate(p) is None]
    if n <= 0 or not parents:
        return []
    p = None if scores is None else selection_weights(scores, len(parents))
    pool = rng.choice(len(parents), size=len(parents), replace=True, p=p)
    seen = {domain.key(q) for q in parents}
    out: list[list[dict]] = []
    for _ in range(10 * n + 20):
        if len(out) >= n:
            break
        i, j = pool[rng.integers(len(pool), size=2)]
        child = crossover(parents[int(i)], parents[int(j)], rng, domain.max_elements)
        if rng.random() < mutation_rate:
            child = mutate(child, rng, domain.max_elements)
        if domain.validate(child) is not None:
            continue
        key = domain.key(child)
        if key not in seen:
            seen.add(key)
            out.append(domain.canonical(child))
    return out
