"""The layout domain: validation, identity regardless of element order, exact storage, the
procedural generator's statistics, the published scores on hand-made pages, the slot codec and the
permutation symmetry of the set denoiser and the set surrogate."""

import json
import math

import numpy as np
import pytest
import torch

from bbo.domains import get_domain
from bbo.domains.layout import LABELS, LayoutDomain, pages
from bbo.domains.layout.codec import SlotCodec
from bbo.domains.layout.scores import alignment, max_iou, overlap


def el(label, x, y, w, h):
    return {"label": label, "box": [x, y, w, h]}


PAGE = [el("title", 0.1, 0.05, 0.5, 0.04), el("text", 0.1, 0.12, 0.8, 0.3), el("figure", 0.3, 0.5, 0.4, 0.3)]


@pytest.fixture(scope="module")
def domain():
    return get_domain("layout")


@pytest.mark.parametrize("page, reason", [
    ([], "at least one element"),
    ([el("text", 0.5, 0.5, 0.6, 0.1)], "outside the page"),
    ([el("text", -0.1, 0.5, 0.2, 0.1)], "outside the page"),
    ([el("text", 0.1, 0.5, 0.0, 0.1)], "width and height must be > 0"),
    ([el("text", 0.1, 0.5, 0.2, -0.1)], "width and height must be > 0"),
    ([el("caption", 0.1, 0.5, 0.2, 0.1)], "unknown label 'caption'"),
    ([el("text", math.nan, 0.5, 0.2, 0.1)], "NaN"),
    ([{"label": "text", "box": [0.1, 0.1, 0.2]}], "4 numbers"),
    ([{"label": "text", "box": [0.1, 0.1, 0.2, 0.2], "z": 1}], "unknown key"),
    ([{"box": [0.1, 0.1, 0.2, 0.2]}], "missing"),
    ([el("text", 0.0, 0.0, 0.01, 0.01)] * 21, "more than max_elements = 20"),
    ("text", "list of elements"),
])
def test_validate_names_the_problem(domain, page, reason):
    why = domain.validate(page)
    assert why is not None and reason in why, why


def test_the_element_is_named_in_the_reason(domain):
    assert domain.validate([PAGE[0], el("text", 0.5, 0.5, 0.6, 0.1)]).startswith("element 1:")


def test_key_ignores_order_and_sees_every_bit(domain):
    assert domain.validate(PAGE) is None
    assert domain.key(PAGE) == domain.key(PAGE[::-1]) == domain.key([PAGE[1], PAGE[0], PAGE[2]])
    nudged = [PAGE[0], PAGE[1], el("figure", 0.3, 0.5, 0.4, np.nextafter(0.3, 1))]
    assert domain.key(nudged) != domain.key(PAGE)
    relabel = [PAGE[0], PAGE[1], el("table", 0.3, 0.5, 0.4, 0.3)]
    assert domain.key(relabel) != domain.key(PAGE)


def test_json_round_trip_is_exact(domain):
    page = pages("held_out", 3)[2]
    back = domain.from_json(json.loads(json.dumps(domain.to_json(page))))
    assert domain.key(back) == domain.key(page)
    assert sorted(map(str, back)) == sorted(map(str, page))


def test_single_or_batch(domain):
    assert domain.is_single(PAGE)
    assert not domain.is_single([PAGE, PAGE])
    assert not domain.is_single([])


def test_generator_is_seeded_valid_and_looks_like_documents(domain):
    train = pages("train", 2000)
    assert train == pages("train", 2000)  # the same pages on every call
    assert pages("held_out", 50) != train[:50]
    assert all(domain.validate(p) is None for p in train)
    counts = np.array([len(p) for p in train])
    assert 8 < counts.mean() < 14 and counts.min() >= 1 and counts.max() <= 20
    labels = [e["label"] for p in train for e in p]
    share = {label: labels.count(label) / len(labels) for label in LABELS}
    assert share["text"] > 0.4 and all(share[k] > 0.03 for k in LABELS)
    titles = [e["box"] for p in train for e in p if e["label"] == "title"]
    texts = [e["box"] for p in train for e in p if e["label"] == "text"]
    assert np.median([h for *_, h in titles]) < 0.5 * np.median([h for *_, h in texts])  # titles are short
    assert np.mean([alignment(p) for p in train[:300]]) < 0.05  # boxes share edges, up to the jitter
    assert np.mean([overlap(p) for p in train[:300]]) < 0.01


def test_reference_draws_and_offspring_are_valid(domain):
    rng = np.random.default_rng(0)
    parents = domain.sample_reference(16, rng)
    assert all(domain.validate(p) is None for p in parents)
    kids = domain.offspring(parents, 24, rng, mutation_rate=1.0, scores=list(range(16)))
    assert len(kids) == 24 and all(domain.validate(k) is None for k in kids)
    assert not {domain.key(k) for k in kids} & {domain.key(p) for p in parents}


def test_render_writes_a_png(domain, tmp_path):
    path = domain.render([PAGE, pages("held_out", 1)[0]], tmp_path / "p.png", legends=["a", "b"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------ scores
def test_alignment_by_hand():
    aligned = [el("text", 0.1, 0.1, 0.3, 0.2), el("text", 0.1, 0.5, 0.5, 0.2)]  # same left edge
    assert alignment(aligned) == 0.0
    # nothing shared: the smallest gap of each element's six lines is 0.05 (left edges 0.1 / 0.15)
    apart = [el("text", 0.1, 0.1, 0.3, 0.2), el("text", 0.15, 0.5, 0.5, 0.22)]
    assert alignment(apart) == pytest.approx(-2 * math.log(1 - 0.05))
    assert alignment(apart, per_element=True) == pytest.approx(-math.log(1 - 0.05))
    assert alignment(apart[:1]) == 0.0


def test_overlap_by_hand():
    a, b = el("text", 0.0, 0.0, 0.4, 0.4), el("figure", 0.2, 0.2, 0.4, 0.2)
    # intersection 0.2 x 0.2 = 0.04: 0.04 / 0.16 + 0.04 / 0.08
    assert overlap([a, b]) == pytest.approx(0.25 + 0.5)
    assert overlap([b, a], per_element=True) == pytest.approx(0.375)
    assert overlap([a, el("text", 0.5, 0.5, 0.1, 0.1)]) == 0.0


def test_max_iou_by_hand():
    target = [el("text", 0.0, 0.0, 0.4, 0.4), el("figure", 0.5, 0.5, 0.2, 0.2)]
    assert max_iou(target[::-1], target) == pytest.approx(1.0)
    shifted = [el("text", 0.2, 0.0, 0.4, 0.4), el("figure", 0.5, 0.5, 0.2, 0.2)]  # text IoU 0.08/0.24
    assert max_iou(shifted, target) == pytest.approx((1 / 3 + 1) / 2)
    assert max_iou(target[:1], target) == pytest.approx(0.5)  # a missing element costs its share
    assert max_iou([el("table", 0.0, 0.0, 0.4, 0.4)], target[:1]) == 0.0  # labels must match


def test_scores_ignore_element_order():
    page = pages("held_out", 5)[4]
    perm = [page[i] for i in np.random.default_rng(0).permutation(len(page))]
    assert alignment(perm) == pytest.approx(alignment(page))
    assert overlap(perm) == pytest.approx(overlap(page))


def test_naturalness_of_the_generators_own_pages():
    domain = LayoutDomain()
    held = domain.naturalness(pages("held_out", 300)[100:])
    assert held["validity"] == 1.0 and 0.8 < held["diversity"] < 1.2 and 0.8 < held["novelty"] < 1.2
    train = domain.naturalness(pages("train", 200))
    assert train["novelty"] == 0.0  # a memorizer is seen as one
    one = [PAGE] * 200
    assert domain.naturalness(one)["diversity"] < 0.01  # (float32 rounding of the raster distances)
    assert domain.naturalness(one)["feature_fd"] > 10 * held["feature_fd"]


# ------------------------------------------------------------------------------- codec
def test_codec_round_trip_and_empty_samples():
    codec = SlotCodec()
    page = pages("held_out", 1)[0]
    x = codec.encode([page])
    assert x.shape == (1, 20, 10) and x.abs().max() <= 1
    back = codec.decode(x)[0]
    got = sorted((e["label"], *e["box"]) for e in back)
    want = sorted((e["label"], *e["box"]) for e in page)
    assert [g[0] for g in got] == [w[0] for w in want]
    assert np.allclose([g[1:] for g in got], [w[1:] for w in want], atol=1e-6)
    assert codec.decode(-torch.ones(1, 20, 10)) == [[]]  # no present slot: an empty, invalid page
    wild = codec.decode(3 * torch.randn(64, 20, 10, generator=torch.Generator().manual_seed(0)))
    assert all(LayoutDomain().validate(p) is None for p in wild if p)  # clipped onto the page


def test_set_denoiser_is_permutation_equivariant():
    from bbo.diffusion.denoisers import SetTransformerDenoiser

    torch.manual_seed(0)
    net = SetTransformerDenoiser(10, width=32, depth=2).eval()
    x, t, perm = torch.randn(4, 20, 10), torch.tensor([0, 10, 500, 999]), torch.randperm(20)
    with torch.no_grad():
        assert torch.allclose(net(x[:, perm], t), net(x, t)[:, perm], atol=1e-5)


def test_set_surrogate_ignores_slot_order():
    from bbo.surrogates.ensemble import BootstrapEnsemble

    codec = SlotCodec()
    train = pages("train", 200)
    x = codec.encode(train)
    y = torch.tensor([float(len(p)) for p in train])
    model = BootstrapEnsemble(200, heads=2, hidden=32, seed=0, set_size=20).fit(x, y, steps=300)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(model.mean(x[:, perm]), model.mean(x), atol=1e-4)
    assert np.corrcoef(model.mean(x).numpy(), y.numpy())[0, 1] > 0.9  # it counts elements
    with pytest.raises(ValueError, match="does not divide"):
        BootstrapEnsemble(200, set_size=7)
