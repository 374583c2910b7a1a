"""The image domain: exact identity and storage, clear refusals, rendering, and the metrics."""

import numpy as np
import pytest

from bbo.domains import get_domain
from bbo.domains.image.digits import digits


@pytest.fixture(scope="module")
def domain():
    return get_domain("image")


def test_key_is_exact_bytes(domain):
    img = np.full((1, 8, 8), 0.5, dtype=np.float32)
    nudged = img.copy()
    nudged[0, 3, 4] = np.nextafter(np.float32(0.5), np.float32(1))
    assert domain.key(img) == domain.key(img.copy()) == domain.key(img.astype(np.float64))
    assert domain.key(nudged) != domain.key(img)


def test_json_round_trip_is_bit_exact(domain):
    rng = np.random.default_rng(0)
    img = rng.uniform(size=(1, 8, 8)).astype(np.float32)
    img[0, 0, 0] = np.float32(1 / 3)
    back = domain.from_json(domain.to_json(img))
    assert back.dtype == np.float32 and back.tobytes() == img.tobytes()
    assert domain.key(back) == domain.key(img)
    with pytest.raises(ValueError, match="not a stored image"):
        domain.from_json({"shape": [1, 8, 8]})


@pytest.mark.parametrize("obj, match", [
    (np.zeros((8, 8), np.float32), "shape"),
    (np.zeros((1, 8, 8), np.uint8), "dtype uint8"),
    (np.full((1, 8, 8), np.nan, np.float32), "NaN"),
    (np.full((1, 8, 8), 1.5, np.float32), "outside"),
    ("not an image", "numpy array"),
])
def test_validate_names_the_problem(domain, obj, match):
    assert match in domain.validate(obj)


def test_is_single_and_config(domain):
    assert domain.is_single(np.zeros((1, 8, 8), np.float32))
    assert not domain.is_single([np.zeros((1, 8, 8), np.float32)])
    assert not domain.is_single(np.zeros((2, 1, 8, 8), np.float32))
    assert get_domain(domain.config()) == domain
    assert get_domain({"name": "image", "channels": 3, "height": 16, "width": 16}) != domain
    with pytest.raises(ValueError, match="channels"):
        get_domain({"name": "image", "channels": 2})


def test_reference_draws_are_training_digits(domain):
    train = digits("train")[0]
    draws = domain.sample_reference(5, np.random.default_rng(0))
    assert all(domain.validate(d) is None for d in draws)
    assert all(any(np.array_equal(d, t) for t in train) for d in draws)
    with pytest.raises(NotImplementedError, match="digits"):
        get_domain({"name": "image", "height": 16, "width": 16}).sample_reference(1, np.random.default_rng(0))


def test_render_writes_a_png(domain, tmp_path):
    path = domain.render(list(digits("held_out")[0][:12]), tmp_path / "grid.png", legends=[str(i) for i in range(12)])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_split_is_fixed_stratified_and_disjoint():
    x_tr = digits("train")[0]
    x_te, y_te = digits("held_out")
    assert (len(x_tr), len(x_te)) == (1437, 360)
    assert x_tr.shape[1:] == (1, 8, 8) and 0 <= x_tr.min() and x_tr.max() <= 1
    assert np.bincount(y_te).min() >= 35  # every class held out
    train_rows = {r.tobytes() for r in x_tr}
    assert sum(r.tobytes() in train_rows for r in x_te) <= 2  # load_digits has a few exact duplicates


def test_metrics_separate_real_digits_from_noise_and_copies(domain):
    from bbo.domains.image.metrics import frechet_distance, image_metrics

    held = list(digits("held_out")[0])
    real = image_metrics(held, domain)
    assert real["validity"] == 1.0 and real["classifier_fd"] == pytest.approx(0.0, abs=1e-6)
    assert real["diversity"] == pytest.approx(1.0) and real["novelty"] == pytest.approx(1.0)
    copies = image_metrics(list(digits("train")[0][:360]), domain)
    assert copies["novelty"] == 0.0 and copies["classifier_fd"] < 10
    noise = image_metrics(list(np.random.default_rng(0).uniform(size=(360, 1, 8, 8)).astype(np.float32)), domain)
    assert noise["classifier_fd"] > 20 * max(copies["classifier_fd"], 1) and noise["confidence"] < real["confidence"]
    bad = image_metrics([np.zeros((1, 8, 8), np.float32), np.zeros((2, 2), np.float32)], domain)
    assert bad["validity"] == 0.5
    # Fréchet distance of two Gaussians with commuting covariances: |dmu|^2 + sum (sqrt a - sqrt b)^2
    a, b = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    assert frechet_distance(np.zeros(2), a, np.array([3.0, 4.0]), b) == pytest.approx(25 + 4 + 1)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((1, 4, 4), np.float32), r"object 1 .*shape \(1, 4, 4\)"),
    (np.zeros((1, 8, 8), np.uint8), "object 1 .*dtype uint8"),
    (np.full((1, 8, 8), 2.0, np.float32), "object 1 .*outside"),
])
def test_a_bad_image_in_tell_names_it_and_writes_nothing(tmp_path, bad, match):
    from bbo import RandomOptimizer

    opt = RandomOptimizer(domain="image", batch_size=2, seed=0, storage=tmp_path / "j.db")
    xs = opt.ask()
    with pytest.raises(ValueError, match=match):
        opt.tell([xs[0], bad], [0.1, 0.2])
    assert opt.n_told == 0 and all(t.state.value == "RUNNING" for t in opt.get_trials())
    opt.tell(xs, [0.1, 0.2])
    assert opt.n_told == 2


def test_a_prior_whose_image_size_is_not_the_oracles_is_refused_before_running(tmp_path):
    from typer.testing import CliRunner

    from bbo.cli import app

    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: t\ntasks: [{name: image/symmetry, height: 16, width: 16}]\nbudget: 20\n"
                   "optimizers: [{kind: noise_bo, prior: digits, batch_size: 10}]\n")
    result = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "generates ImageDomain(channels=1, height=8, width=8)" in result.output and "16" in result.output
    assert not (tmp_path / "out").exists()


def test_a_finished_image_run_resumed_pays_nothing_more(tmp_path):
    """The oracle cache of a resumed run is rebuilt from the journal's stored images (their JSON
    form differs from the arrays): a finished run asks nothing more and its budget holds."""
    from typer.testing import CliRunner

    from bbo.bench.report import load_run
    from bbo.cli import app

    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: t\ntasks: [{name: image/symmetry, label: sym}]\nbudget: 30\n"
                   "optimizers: [{kind: random, batch_size: 10}]\n")
    out = tmp_path / "out"
    for extra in ([], ["--resume"], ["--resume", "--budget", "40"]):
        result = CliRunner().invoke(app, ["run", str(cfg), "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
    run = load_run(out / "sym" / "random" / "seed0")
    assert len(run.values) == 40 and len([t for t in run.trials if t.source.value == "asked"]) <= 50
