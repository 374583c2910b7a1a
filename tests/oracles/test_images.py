"""Image oracles against values computed by hand or by an independent path."""

import math

import numpy as np
import pytest

from bbo.domains.image.digits import digits
from oracles import get_oracle


def _img(values):
    return np.asarray(values, dtype=np.float32).reshape(1, 8, 8)


def test_jpeg_sizes_match_pil_on_disk_and_flip_sign(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    flat, noisy = _img(np.full(64, 0.5)), _img(rng.uniform(size=64))
    comp, incomp = get_oracle("image/jpeg_compressibility"), get_oracle("image/jpeg_incompressibility")
    for img in (flat, noisy):
        path = tmp_path / "x.jpg"
        Image.fromarray(np.round(img[0] * 255).astype(np.uint8), mode="L").save(path, quality=95)
        size_kb = path.stat().st_size / 1000
        assert incomp([img])[0] == pytest.approx(size_kb) and comp([img])[0] == pytest.approx(-size_kb)
    assert comp([flat])[0] > comp([noisy])[0]  # flat compresses better


def test_symmetry_by_hand():
    sym = get_oracle("image/symmetry")
    left = _img(np.tile(np.r_[np.ones(4), np.zeros(4)], 8))
    assert sym([left])[0] == pytest.approx(0.0)
    assert sym([left[:, :, ::-1] * 0 + 0.3])[0] == pytest.approx(1.0)
    img = np.zeros((1, 8, 8), np.float32)
    img[0, 0, 0] = 0.8  # mirrored pixel (0, 7) is 0: two pixels differ by 0.8
    assert sym([img])[0] == pytest.approx(1 - 2 * 0.8 / 64)
    assert get_oracle("image/symmetry", axis="vertical")([left])[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="axis"):
        get_oracle("image/symmetry", axis="diagonal")


def _global_ssim(x, y, c1=1e-4, c2=9e-4):
    n = x.size
    mx, my = x.mean(), y.mean()
    vx, vy = x.var() * n / (n - 1), y.var() * n / (n - 1)
    cxy = ((x - mx) * (y - my)).sum() / (n - 1)
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


def test_ssim_on_one_window_is_the_global_formula():
    from oracles.images import ssim

    rng = np.random.default_rng(1)
    a, b = rng.uniform(size=(1, 3, 3)), rng.uniform(size=(1, 3, 3))
    assert ssim(a, b, win_size=3) == pytest.approx(_global_ssim(a[0], b[0]), rel=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) == pytest.approx(ssim(b, a))


def test_similarity_rediscovers_its_held_out_target():
    oracle = get_oracle("image/similarity", target_index=7)
    held = digits("held_out")[0]
    values = oracle(list(held[:20]))
    assert values[7] == pytest.approx(1.0) and np.all(np.delete(values, 7) < 1.0)
    with pytest.raises(ValueError, match="target_index"):
        get_oracle("image/similarity", target_index=10_000)


def test_digit_log_probabilities_are_normalized_and_classify_held_out():
    held, labels = digits("held_out")
    logp = np.stack([get_oracle("image/digit", target=k)(list(held[:50])) for k in range(10)], axis=1)
    assert np.allclose(np.log(np.exp(logp).sum(1)), 0.0, atol=1e-5)
    assert (logp.argmax(1) == labels[:50]).mean() >= 0.95
    from bbo.domains.image.classifier import load_classifier

    assert load_classifier().info["held_out_accuracy"] >= 0.97
    with pytest.raises(ValueError, match="target"):
        get_oracle("image/digit", target=10)


def test_bad_images_score_nan_not_crash():
    for name in ("image/digit", "image/symmetry", "image/jpeg_compressibility"):
        values = get_oracle(name)([np.zeros((1, 4, 4), np.float32), np.full((1, 8, 8), 2.0, np.float32),
                                   np.zeros((1, 8, 8), np.float32)])
        assert math.isnan(values[0]) and math.isnan(values[1]) and not math.isnan(values[2])


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    import torch
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("clip")
    config = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                           num_attention_heads=4, image_size=30, patch_size=10, projection_dim=16)
    torch.manual_seed(0)
    model = transformers.CLIPVisionModelWithProjection(config).eval()
    model.save_pretrained(root / "clip", safe_serialization=True)
    head = {"layers.0.weight": torch.randn(8, 16), "layers.0.bias": torch.randn(8),
            "layers.1.weight": torch.randn(1, 8), "layers.1.bias": torch.randn(1)}
    save_file(head, str(root / "head.safetensors"))
    return root, model, head


def test_aesthetic_matches_a_hand_run_of_clip_and_its_head(tiny_clip):
    import torch

    root, model, head = tiny_clip
    oracle = get_oracle("image/aesthetic", clip_path=str(root / "clip"), head_path=str(root / "head.safetensors"))
    imgs = list(digits("held_out")[0][:3])
    x = torch.as_tensor(np.stack(imgs)).repeat(1, 3, 1, 1)
    x = torch.nn.functional.interpolate(x, size=(30, 30), mode="bicubic", align_corners=False).clamp(0, 1)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).reshape(1, 3, 1, 1)
    with torch.no_grad():
        e = model(pixel_values=(x - mean) / std).image_embeds
        e = e / e.norm(dim=-1, keepdim=True)
        expected = (e @ head["layers.0.weight"].T + head["layers.0.bias"]) @ head["layers.1.weight"].T + head["layers.1.bias"]
    assert np.allclose(oracle(imgs), expected[:, 0].numpy(), atol=1e-5)


def test_aesthetic_says_what_is_missing(tmp_path, tiny_clip):
    root, _, _ = tiny_clip
    with pytest.raises(ValueError, match="clip_path.*head_path.*nothing is downloaded"):
        get_oracle("image/aesthetic")
    with pytest.raises(ValueError, match="no config.json"):
        get_oracle("image/aesthetic", clip_path=str(tmp_path), head_path=str(root / "head.safetensors"))
    with pytest.raises(ValueError, match="does not exist"):
        get_oracle("image/aesthetic", clip_path=str(root / "clip"), head_path=str(tmp_path / "none.safetensors"))
