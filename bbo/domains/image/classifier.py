"""A small CNN digit classifier, trained by the project on the training digits and shipped.

It serves twice: its log-probabilities are the ``image/digit`` oracle, and its penultimate
features are the feature space of the image naturalness metrics (the role Inception plays for
FID and ChemNet for FCD). Trained by ``bbo pretrain image`` (:func:`train_classifier`); the
held-out accuracy is stored beside its weights.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

SHIPPED = Path(__file__).parent / "data"
STEM = "classifier"


class DigitClassifier(nn.Module):
    """``1 x 8 x 8`` images in [0, 1] -> 10 logits; :meth:`features` is the 64-d layer before them."""

    name = "digit_cnn"

    def __init__(self, width: int = 32, feature_dim: int = 64, info: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.width, self.feature_dim = int(width), int(feature_dim)
        self.info = dict(info or {})
        w = self.width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),  # 4 x 4
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),  # 2 x 2
            nn.Flatten(), nn.Linear(8 * w, self.feature_dim), nn.SiLU(),
        )
        self.head = nn.Linear(self.feature_dim, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def config(self) -> dict[str, Any]:
        return {"width": self.width, "feature_dim": self.feature_dim, "info": self.info}


def _build(spec: dict[str, Any]) -> DigitClassifier:
    if spec.get("name") != DigitClassifier.name:
        raise ValueError(f"expected a {DigitClassifier.name} classifier, got {spec.get('name')!r}")
    return DigitClassifier(**spec["config"])


def save_classifier(model: DigitClassifier, directory: str | Path) -> Path:
    from bbo.diffusion.checkpoint import save_model

    return save_model(model, directory, STEM)


@lru_cache(maxsize=4)
def load_classifier(directory: str | None = None) -> DigitClassifier:
    """The classifier in ``directory`` (default: the shipped one), frozen, in eval mode, on the CPU."""
    from bbo.diffusion.checkpoint import load_model

    model = load_model(Path(directory) if directory else SHIPPED, STEM, _build)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def as_batch(images: Any) -> torch.Tensor:
    """A float32 tensor ``n x 1 x 8 x 8`` from a list or array of images."""
    return torch.as_tensor(np.stack([np.asarray(i, dtype=np.float32) for i in images]))


@torch.no_grad()
def predict(images: Any, model: DigitClassifier | None = None, batch: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """``(log_probs n x 10, features n x feature_dim)`` of the images under ``model`` (default shipped)."""
    model = model or load_classifier()
    x = as_batch(images)
    logp, feats = [], []
    for i in range(0, len(x), batch):
        f = model.features(x[i:i + batch])
        feats.append(f)
        logp.append(torch.log_softmax(model.head(f), dim=-1))
    return torch.cat(logp).double().numpy(), torch.cat(feats).double().numpy()


def train_classifier(epochs: int = 60, batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
                     width: int = 32) -> DigitClassifier:
    """Train on the training digits with random one-pixel shifts; held-out accuracy in ``info``."""
    from bbo.domains.image.digits import digits

    x_tr, y_tr = (torch.tensor(np.array(a)) for a in digits("train"))
    x_te, y_te = (torch.tensor(np.array(a)) for a in digits("held_out"))
    gen = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = DigitClassifier(width=width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * (len(x_tr) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(x_tr), (batch_size,), generator=gen)
        xb = x_tr[idx]
        dy, dx = (int(v) for v in torch.randint(-1, 2, (2,), generator=gen))
        xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))  # digits are centred; a shift keeps the class
        loss = nn.functional.cross_entropy(model(xb), torch.as_tensor(y_tr[idx]).long())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(x_te).argmax(-1) == y_te).float().mean())
        train_acc = float((model(x_tr).argmax(-1) == y_tr).float().mean())
    model.info = {"held_out_accuracy": round(acc, 4), "train_accuracy": round(train_acc, 4), "epochs": epochs,
                  "seed": int(seed), "n_train": len(x_tr), "n_held_out": len(x_te)}
    return model
