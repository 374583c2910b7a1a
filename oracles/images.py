"""Image oracles: scores of ``C x H x W`` float arrays in [0, 1] (the ``image`` domain).

Each factory takes the image size (``channels``, ``height``, ``width``; default the 1 x 8 x 8 of
the shipped ``digits`` prior) and declares it as its domain, so a prior of another size is
refused before a call is made. Every score is a pure function of the image; NaN where an image
cannot be scored (the reason is logged).
"""

from __future__ import annotations

import io
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from oracles.base import Oracle, register

log = logging.getLogger(__name__)


class ImageOracle(Oracle):
    """Base: checks each image against the declared size and range, then :meth:`score_image`."""

    direction = "maximize"

    def __init__(self, channels: int = 1, height: int = 8, width: int = 8, n_jobs: int = 1) -> None:
        super().__init__(n_jobs=n_jobs)
        for k, v in {"channels": channels, "height": height, "width": width}.items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{self.name}: {k} must be a positive integer, got {v!r}")
        self.shape = (channels, height, width)
        self.domain = {"name": "image", "channels": channels, "height": height, "width": width}

    def image(self, obj: Any) -> np.ndarray:
        arr = np.asarray(obj)
        if arr.shape != self.shape or not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"expected a float image of shape {self.shape}, got {arr.dtype} {arr.shape}")
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
            raise ValueError("pixel values must be finite and in [0, 1]")
        return arr

    def score(self, obj: Any) -> float:
        return float(self.score_image(self.image(obj)))

    def scorable(self, objects: list[Any]) -> tuple[np.ndarray, list[int], np.ndarray | None]:
        """For oracles that score a whole batch in one model call: an all-NaN result, the indices
        of the valid images and those images stacked (float32; None if there are none); an
        invalid image is logged and stays NaN, as :meth:`Oracle.__call__` treats it."""
        out = np.full(len(objects), math.nan)
        where, images = [], []
        for i, obj in enumerate(objects):
            try:
                images.append(self.image(obj).astype(np.float32))
                where.append(i)
            except ValueError as err:
                log.warning("%s could not score object %d: %s", self.name, i, err)
        return out, where, (np.stack(images) if images else None)

    def score_image(self, img: np.ndarray) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


# ------------------------------------------------------------------------------ JPEG size
def jpeg_kilobytes(img: np.ndarray, quality: int = 95) -> float:
    """Size in kB (1,000 bytes) of ``img`` saved by PIL as a JPEG at ``quality``, after rounding
    to 8 bits (``round(255 x)``): DDPO's compressibility measure (Black et al. 2023)."""
    from PIL import Image

    pixels = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    pil = Image.fromarray(pixels[0], mode="L") if pixels.shape[0] == 1 else Image.fromarray(pixels.transpose(1, 2, 0))
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=int(quality))
    return buffer.tell() / 1000


@register("image/jpeg_compressibility", domain="image",
          description="minus the JPEG size in kB at quality 95 (DDPO's compressibility reward)")
class JpegCompressibility(ImageOracle):
    """``-kB`` of the image as a quality-95 JPEG (:func:`jpeg_kilobytes`): DDPO's "compressibility"
    reward (Black et al., "Training Diffusion Models with Reinforcement Learning", 2023). On 8 x 8
    digits most of a JPEG is its fixed header: the held-out digits range over -0.404 to -0.372 kB,
    differences of a few bytes of entropy-coded detail (a blank image: -0.333)."""

    name = "image/jpeg_compressibility"

    def score_image(self, img: np.ndarray) -> float:
        return -jpeg_kilobytes(img)


@register("image/jpeg_incompressibility", domain="image",
          description="the JPEG size in kB at quality 95 (DDPO's incompressibility reward)")
class JpegIncompressibility(ImageOracle):
    """``+kB`` of the image as a quality-95 JPEG: DDPO's "incompressibility" reward (Black et al. 2023)."""

    name = "image/jpeg_incompressibility"

    def score_image(self, img: np.ndarray) -> float:
        return jpeg_kilobytes(img)


# ----------------------------------------------------------------------------- classifier
@register("image/digit", domain="image",
          description="log-probability of a target digit under the shipped CNN classifier (target: 0..9)")
class DigitLogProb(ImageOracle):
    """``log p(target | image)`` under the digit classifier that ships with bbo
    (:mod:`bbo.domains.image.classifier`, a small CNN trained on the training split of
    scikit-learn's digits; its held-out accuracy is in its ``info``). 0 is the maximum, and the
    classifier is confident: a clear digit of the target class is within 1e-3 of it, so the task
    is solved by the prior's own samples of that class (in an early version of ``benchmarks/image_full.yaml``
    every method's top 10 was at 0.000 from the first batch). It is a constraint or a term of a
    composite score more than a benchmark."""

    name = "image/digit"

    def __init__(self, target: int = 0, classifier_path: str | None = None, n_jobs: int = 1) -> None:
        super().__init__(1, 8, 8, n_jobs=n_jobs)
        if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target <= 9:
            raise ValueError(f"{self.name}: target must be a digit 0..9, got {target!r}")
        self.target = target
        self.classifier_path = classifier_path
        self._model = None

    def __getstate__(self) -> dict[str, Any]:  # worker processes load their own copy
        return {**self.__dict__, "_model": None}

    def _classifier(self):
        if self._model is None:
            from bbo.domains.image.classifier import load_classifier

            self._model = load_classifier(self.classifier_path)
        return self._model

    def __call__(self, objects):  # one batched forward pass instead of one per image
        from bbo.domains.image.classifier import predict

        out, where, images = self.scorable(list(objects))
        if images is not None:
            logp, _ = predict(images, self._classifier())
            out[where] = logp[:, self.target]
        return out

    def score_image(self, img: np.ndarray) -> float:
        return float(self(np.asarray([img], dtype=np.float32))[0])


# -------------------------------------------------------------------------------- symmetry
@register("image/symmetry", domain="image",
          description="mirror agreement: 1 - mean |image - its mirror image| (axis: horizontal or vertical)")
class MirrorSymmetry(ImageOracle):
    """``1 - mean |x - flip(x)|`` over all pixels: 1 for an image equal to its mirror image, 0 at
    the most asymmetric (every pixel 0 where its mirror is 1). ``axis="horizontal"`` mirrors left
    to right, ``"vertical"`` top to bottom. A blank page is perfectly symmetric, which is why the
    naturalness columns sit beside it in every report."""

    name = "image/symmetry"

    def __init__(self, axis: str = "horizontal", channels: int = 1, height: int = 8, width: int = 8,
                 n_jobs: int = 1) -> None:
        super().__init__(channels, height, width, n_jobs=n_jobs)
        if axis not in ("horizontal", "vertical"):
            raise ValueError(f"{self.name}: axis must be 'horizontal' or 'vertical', got {axis!r}")
        self.axis = axis

    def score_image(self, img: np.ndarray) -> float:
        mirrored = img[:, :, ::-1] if self.axis == "horizontal" else img[:, ::-1, :]
        return 1.0 - float(np.abs(img - mirrored).mean())


# ------------------------------------------------------------------------------ similarity
def ssim(a: np.ndarray, b: np.ndarray, win_size: int = 3, data_range: float = 1.0,
         k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean structural similarity (Wang et al. 2004) of two ``C x H x W`` images: local means,
    variances and covariance over ``win_size`` x ``win_size`` uniform windows (sample covariance,
    as scikit-image's default), averaged over the windows that lie inside the image and over
    channels. ``win_size`` 3 because scikit-image's 7 leaves four windows on an 8 x 8 image."""
    from scipy.ndimage import uniform_filter

    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ, {a.shape} and {b.shape}")
    if win_size % 2 != 1 or win_size > min(a.shape[1:]):
        raise ValueError(f"ssim: win_size must be odd and at most the image side, got {win_size}")
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    n = win_size**2
    cov_norm = n / (n - 1)
    pad = (win_size - 1) // 2
    values = []
    for x, y in zip(a.astype(np.float64), b.astype(np.float64)):
        def f(z: np.ndarray) -> np.ndarray:
            return uniform_filter(z, size=win_size)

        ux, uy = f(x), f(y)
        vx = cov_norm * (f(x * x) - ux * ux)
        vy = cov_norm * (f(y * y) - uy * uy)
        vxy = cov_norm * (f(x * y) - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
        values.append(s[pad:s.shape[0] - pad, pad:s.shape[1] - pad].mean())
    return float(np.mean(values))


@register("image/similarity", domain="image",
          description="SSIM to a target image (a held-out digit by index, or a file): image rediscovery")
class TargetSimilarity(ImageOracle):
    """Structural similarity (:func:`ssim`) to a target image, 1 when equal: the "rediscovery"
    task of images. The target is a held-out digit (``target_index`` into
    :func:`bbo.domains.image.digits.digits` ``("held_out")``, never seen by the prior) or an
    image of the oracle's size in a ``.npy`` file (``target_path``, loaded without pickle)."""

    name = "image/similarity"

    def __init__(self, target_index: int = 0, target_path: str | None = None, win_size: int = 3,
                 channels: int = 1, height: int = 8, width: int = 8, n_jobs: int = 1) -> None:
        super().__init__(channels, height, width, n_jobs=n_jobs)
        if target_path is not None:
            target = np.load(Path(target_path), allow_pickle=False)
        else:
            from bbo.domains.image.digits import digits

            held_out = digits("held_out")[0]
            if isinstance(target_index, bool) or not isinstance(target_index, int) or not 0 <= target_index < len(held_out):
                raise ValueError(f"{self.name}: target_index must be in [0, {len(held_out)}), got {target_index!r}")
            target = held_out[target_index]
        try:
            self.target = self.image(target)
        except ValueError as err:
            raise ValueError(f"{self.name}: target image: {err}") from None
        self.target_index, self.target_path, self.win_size = target_index, target_path, int(win_size)
        ssim(self.target, self.target, self.win_size)  # a bad window size fails here, not per call

    def score_image(self, img: np.ndarray) -> float:
        return ssim(img, self.target, self.win_size)


# ------------------------------------------------------------------------------- aesthetic
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@register("image/aesthetic", domain="image",
          description="LAION-style aesthetic score: an MLP head over CLIP image embeddings (local files)")
class AestheticScore(ImageOracle):
    """The LAION aesthetic predictor's recipe (Schuhmann et al., used as DDPO's aesthetic reward):
    the image is resized (bicubic) to the CLIP model's input size, grey repeated to RGB,
    normalized with CLIP's mean and std, embedded by CLIP's image tower with projection, the
    embedding L2-normalized, then scored by a head of linear layers.

    Nothing is downloaded: ``clip_path`` is a directory that ``transformers`` can load with
    ``CLIPVisionModelWithProjection.from_pretrained`` (``config.json`` and ``model.safetensors``;
    safetensors only, never a pickle) and ``head_path`` a safetensors file of the head's linear
    layers ``layers.<i>.weight`` / ``layers.<i>.bias`` applied in order of ``i`` with no activation
    between them (the LAION head's shape once its dropouts are dropped; convert a ``.pth`` head
    once with ``safetensors.torch.save_file``). Needs the ``transformers`` package
    (``pip install 'bbo[clip]'``).
    """

    name = "image/aesthetic"

    def __init__(self, clip_path: str | None = None, head_path: str | None = None, channels: int = 1,
                 height: int = 8, width: int = 8, n_jobs: int = 1) -> None:
        super().__init__(channels, height, width, n_jobs=n_jobs)
        problems = []
        if not clip_path:
            problems.append("clip_path (a directory holding a CLIP model's config.json and model.safetensors)")
        elif not (Path(clip_path) / "config.json").is_file():
            problems.append(f"clip_path {clip_path!r} has no config.json")
        elif not any(Path(clip_path).glob("*.safetensors")):
            problems.append(f"clip_path {clip_path!r} has no .safetensors weights (pickled weights are not loaded)")
        if not head_path:
            problems.append("head_path (a .safetensors file of the aesthetic head)")
        elif not Path(head_path).is_file():
            problems.append(f"head_path {head_path!r} does not exist")
        if problems:
            raise ValueError(f"{self.name}: missing " + "; ".join(problems) + " (nothing is downloaded)")
        try:
            import transformers  # noqa: F401
        except ImportError:
            raise ValueError(f"{self.name}: needs the transformers package: pip install 'bbo[clip]'") from None
        self.clip_path, self.head_path = str(clip_path), str(head_path)
        self._models = None
        self._load()  # fail now, with the file named, rather than at the first call

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_models": None}

    def _load(self):
        if self._models is None:
            import torch
            from safetensors.torch import load_file
            from transformers import CLIPVisionModelWithProjection

            clip = CLIPVisionModelWithProjection.from_pretrained(self.clip_path, use_safetensors=True).eval()
            state = load_file(self.head_path)
            idx = sorted({int(k.split(".")[1]) for k in state if k.startswith("layers.") and k.endswith(".weight")})
            if not idx:
                raise ValueError(f"{self.name}: {self.head_path} holds no layers.<i>.weight tensors")
            layers = []
            for i in idx:
                w, b = state[f"layers.{i}.weight"], state.get(f"layers.{i}.bias")
                lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
                lin.weight.data.copy_(w)
                if b is not None:
                    lin.bias.data.copy_(b)
                layers.append(lin)
            head = torch.nn.Sequential(*layers).eval()
            dim = clip.config.projection_dim
            if layers[0].in_features != dim or layers[-1].out_features != 1:
                raise ValueError(f"{self.name}: the head maps {layers[0].in_features} -> {layers[-1].out_features}, "
                                 f"expected CLIP's projection size {dim} -> 1")
            self._models = (clip, head, int(clip.config.image_size))
        return self._models

    def __call__(self, objects):
        import torch

        clip, head, size = self._load()
        out, where, images = self.scorable(list(objects))
        if images is not None:
            x = torch.as_tensor(images)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
            mean = torch.tensor(CLIP_MEAN).reshape(1, 3, 1, 1)
            std = torch.tensor(CLIP_STD).reshape(1, 3, 1, 1)
            with torch.no_grad():
                emb = clip(pixel_values=(x - mean) / std).image_embeds
                emb = emb / emb.norm(dim=-1, keepdim=True)
                out[where] = head(emb)[:, 0].double().numpy()
        return out

    def score_image(self, img: np.ndarray) -> float:
        return float(self([img])[0])
