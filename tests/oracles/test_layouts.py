"""Layout oracles against hand-computed pages; invalid pages and bad settings."""

import math

import numpy as np
import pytest

from bbo.domains.layout import pages
from oracles import get_oracle
from oracles.layouts import DEFAULT_SPEC, constraint_terms


def el(label, x, y, w, h):
    return {"label": label, "box": [x, y, w, h]}


TWO = [el("text", 0.1, 0.1, 0.3, 0.2), el("text", 0.15, 0.5, 0.5, 0.22)]


def test_alignment_and_overlap_are_minimized_and_match_the_scores():
    a, o = get_oracle("layout/alignment"), get_oracle("layout/overlap", per_element=True)
    assert a.direction == o.direction == "minimize"
    assert a([TWO])[0] == pytest.approx(-2 * math.log(0.95))
    over = [el("text", 0.0, 0.0, 0.4, 0.4), el("figure", 0.2, 0.2, 0.4, 0.2)]
    assert o([over])[0] == pytest.approx(0.375)


def test_target_iou_defaults_to_a_held_out_page_and_takes_a_target():
    oracle = get_oracle("layout/target_iou", target_index=3)
    target = pages("held_out", 4)[3]
    assert oracle([target[::-1]])[0] == pytest.approx(1.0)
    own = get_oracle("layout/target_iou", target=TWO)
    assert own([TWO, TWO[:1]]).tolist() == pytest.approx([1.0, 0.5])
    with pytest.raises(ValueError, match="target_index"):
        get_oracle("layout/target_iou", target_index=5000)
    with pytest.raises(ValueError, match="not a valid layout.*outside"):
        get_oracle("layout/target_iou", target=[el("text", 0.9, 0.9, 0.5, 0.5)])


def test_constraints_by_hand():
    spec = {"counts": {"title": 1, "text": [1, 2]}, "min_size": {"text": [0.5, 0.1]}, "margins": 0.05,
            "title_above_text": True, "reading_order": True, "no_overlap": True}
    good = [el("title", 0.1, 0.1, 0.4, 0.03), el("text", 0.1, 0.14, 0.8, 0.3)]
    oracle = get_oracle("layout/constraints", spec=spec)
    assert oracle([good])[0] == 1.0
    # the text is 0.1 too narrow: 6 of 7 constraints hold, violation 0.1 -> 6/7 - 0.5 * 0.1 / 7
    narrow = [good[0], el("text", 0.1, 0.14, 0.4, 0.3)]
    assert oracle([narrow])[0] == pytest.approx(6 / 7 - 0.5 * 0.1 / 7)
    # continuous: narrower is worse before any other constraint flips
    narrower = [good[0], el("text", 0.1, 0.14, 0.3, 0.3)]
    assert oracle([narrower])[0] < oracle([narrow])[0]
    assert dict(constraint_terms(good, spec)) == {"count title": 0, "count text": 0, "min size text": 0,
                                                   "title 0 above text": 0, "reading order": 0, "margins": 0,
                                                   "no overlap": 0}
    no_title = [good[1]]
    terms = dict(constraint_terms(no_title, spec))
    assert terms["count title"] == 1.0 and terms["reading order"] == 1.0


def test_default_constraints_are_not_solved_by_natural_pages():
    values = get_oracle("layout/constraints")(pages("held_out", 300))
    assert values.max() < 1.0 and 0.2 < values.mean() < 0.8
    assert DEFAULT_SPEC["counts"]["figure"] == [2, 2]


def test_quality_combines_constraints_alignment_and_overlap():
    spec = {"counts": {"text": [1, 5]}}
    q = get_oracle("layout/quality", spec=spec, w_alignment=10.0, w_overlap=2.0)
    over = [el("text", 0.0, 0.0, 0.4, 0.4), el("text", 0.2, 0.21, 0.4, 0.2)]
    from bbo.domains.layout.scores import alignment, overlap

    want = 1.0 - 10 * alignment(over, per_element=True) - 2 * overlap(over, per_element=True)
    assert q([over])[0] == pytest.approx(want)


def test_invalid_pages_score_nan_and_are_never_charged(caplog):
    oracle = get_oracle("layout/alignment")
    bad = [el("text", 0.5, 0.5, 0.9, 0.1)]
    values = oracle([bad, TWO])
    assert math.isnan(values[0]) and not math.isnan(values[1])
    assert "outside the page" in caplog.text
    assert oracle.key(bad) is None and oracle.key(TWO) == oracle.key(TWO[::-1])


@pytest.mark.parametrize("spec, match", [
    ({"colour": 1}, "unknown key"),
    ({"counts": {"caption": 1}}, "unknown label 'caption'"),
    ({"counts": {"text": [3, 1]}}, "min <= max"),
    ({"margins": 0.6}, "margins"),
])
def test_bad_constraint_specs_are_refused(spec, match):
    with pytest.raises(ValueError, match=match):
        get_oracle("layout/constraints", spec=spec)


def test_layout_oracles_are_listed():
    from oracles.base import list_oracles

    listed = {info.name: info for info in list_oracles() if info.domain == "layout"}
    assert set(listed) == {"layout/alignment", "layout/overlap", "layout/target_iou", "layout/constraints",
                           "layout/quality"}
    assert all(info.direction == get_oracle(name).direction for name, info in listed.items())  # `bbo oracles`
    assert np.isfinite(get_oracle("layout/quality")(pages("held_out", 5))).all()
