"""The ``image`` domain: an object is a float32 array ``C x H x W`` with values in [0, 1]."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bbo.domains import register_domain
from bbo.domains.base import Domain, array_key


@register_domain
class ImageDomain(Domain):
    """Grey-scale or colour images of one size.

    Identity is the exact float32 bytes (:func:`~bbo.domains.base.array_key`): images that differ
    in any pixel, however little, are different objects. Arrays of another floating dtype are
    taken as their float32 values; integer arrays are refused (a uint8 image in 0..255 is a
    common slip, and guessing its scale would silently change what was told). The journal stores
    the raw float32 bytes (base64), so a stored image reads back bit for bit.

    The natural data of 1 x 8 x 8 images are scikit-learn's handwritten digits
    (:mod:`bbo.domains.image.digits`): they are the reference the ``random`` baseline draws from
    and what :meth:`naturalness` compares against. Other sizes have neither.
    """

    name = "image"
    pretrain_command = "bbo.domains.image.cli:pretrain"

    def __init__(self, channels: int = 1, height: int = 8, width: int = 8) -> None:
        dims = {"channels": channels, "height": height, "width": width}
        for k, v in dims.items():
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= int(v) <= 4096:
                raise ValueError(f"image domain: {k} must be an integer in [1, 4096], got {v!r}")
        if int(channels) not in (1, 3):
            raise ValueError(f"image domain: channels must be 1 (grey) or 3 (RGB), got {channels}")
        self.shape = (int(channels), int(height), int(width))

    # ---------------------------------------------------------------------------- identity
    def validate(self, obj: Any) -> str | None:
        if not isinstance(obj, np.ndarray):
            if hasattr(obj, "detach") and hasattr(obj, "cpu"):
                obj = obj.detach().cpu().numpy()
            else:
                return f"expected a numpy array of shape {self.shape}, got {type(obj).__name__}"
        if not np.issubdtype(obj.dtype, np.floating):
            return (f"dtype {obj.dtype}: images are floating-point arrays with values in [0, 1] "
                    f"(divide a uint8 image by 255)")
        if obj.shape != self.shape:
            return f"shape {obj.shape}, expected {self.shape} (channels x height x width)"
        arr = obj.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            return f"{int((~np.isfinite(arr)).sum())} pixel(s) are NaN or infinite"
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            return f"pixel values range over [{lo:.4g}, {hi:.4g}], outside [0, 1]"
        return None

    def canonical(self, obj: Any) -> np.ndarray:
        """The float32 array an image is stored and keyed as."""
        if hasattr(obj, "detach") and hasattr(obj, "cpu"):
            obj = obj.detach().cpu().numpy()
        return np.ascontiguousarray(obj, dtype=np.float32)

    def key(self, obj: Any) -> str:
        return array_key(self.canonical(obj))

    def is_single(self, x: Any) -> bool:
        """One image: an array (or tensor) of ``C x H x W``; a batch is a list or a 4-d array."""
        return getattr(x, "ndim", None) == len(self.shape)

    # ------------------------------------------------------------------------------ storage
    def to_json(self, obj: Any) -> dict[str, Any]:
        arr = self.canonical(obj)
        return {"shape": list(arr.shape), "float32": base64.b64encode(arr.astype("<f4").tobytes()).decode("ascii")}

    def from_json(self, data: Any) -> np.ndarray:
        try:
            raw = base64.b64decode(data["float32"], validate=True)
            arr = np.frombuffer(raw, dtype="<f4").reshape(data["shape"]).astype(np.float32)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"not a stored image (expected {{'shape', 'float32'}}): {err}") from None
        return arr

    def config(self) -> dict[str, Any]:
        c, h, w = self.shape
        return {"name": self.name, "channels": c, "height": h, "width": w}

    # ----------------------------------------------------------------------------- optional
    def _digits(self) -> None:
        from bbo.domains.image.digits import SHAPE

        if self.shape != SHAPE:
            raise NotImplementedError(f"the image domain has natural data (the digits) only at {SHAPE}, "
                                      f"not {self.shape}")

    def sample_reference(self, n: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Uniform draws (with replacement) from the training digits."""
        from bbo.domains.image.digits import digits

        self._digits()
        images, _ = digits("train")
        return [images[i].copy() for i in rng.integers(len(images), size=int(n))]

    def naturalness(self, objects: Sequence[Any], *, full: bool = False) -> dict[str, float]:
        """Validity, classifier Fréchet distance, confidence, diversity and novelty against the
        held-out digits (:func:`bbo.domains.image.metrics.image_metrics`)."""
        from bbo.domains.image.metrics import image_metrics

        self._digits()
        return image_metrics(list(objects), self)

    def render(self, objects: Sequence[Any], path: str | Path, legends: Sequence[str] | None = None) -> Path:
        """Tile the images into one PNG (nearest-neighbour pixels, grey or RGB), a legend under each."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path)
        objects = [self.canonical(o) for o in objects] or [np.zeros(self.shape, np.float32)]
        cols = min(10, len(objects))
        rows = -(-len(objects) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.5 * rows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for i, img in enumerate(objects):
            ax = axes.ravel()[i]
            if img.shape[0] == 1:
                ax.imshow(img[0], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(np.clip(img.transpose(1, 2, 0), 0, 1), interpolation="nearest")
            if legends is not None and i < len(legends):
                ax.set_title(str(legends[i]), fontsize=7)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path
