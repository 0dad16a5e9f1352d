"""The small CNN classifier of 16x16 digits whose features the digits Frechet distance compares.

:class:`DigitsClassifier` is a network class a checkpoint can hold (``pndmkit.nn.checkpoint`` builds it by
name); :func:`train_classifier` trains the one shipped as ``digits_classifier``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DigitsClassifier", "train_classifier"]


class DigitsClassifier(nn.Module):
    """Small CNN for 16x16 digits; :meth:`features` (the penultimate layer) feeds the Frechet distance."""

    def __init__(self, width: int = 16, feature_dim: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        self.config = {"width": width, "feature_dim": feature_dim, "num_classes": num_classes}
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),      # 8x8
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(),  # 4x4
            nn.Flatten(), nn.Linear(16 * 4 * w, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``(B, feature_dim)`` (after ReLU)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)``."""
        return self.head(self.body(x))


def _shift(x: torch.Tensor, gen: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Random translation by up to ``max_shift`` pixels (background -1), one shift per image."""
    pad = F.pad(x, (max_shift,) * 4, value=-1.0)
    n, _, h, w = x.shape
    dx, dy = (torch.randint(0, 2 * max_shift + 1, (n,), generator=gen) for _ in range(2))
    return torch.stack([pad[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def train_classifier(*, epochs: int = 30, seed: int = 0, holdout: int = 297, batch_size: int = 64,
                     lr: float = 2e-3) -> tuple[DigitsClassifier, dict[str, Any]]:
    """Train :class:`DigitsClassifier` on digits; report held-out accuracy, then fit all images.

    Two passes with the same recipe: the first holds out ``holdout`` images to measure accuracy,
    the second (the returned network) trains on all 1797.
    """
    from pndmkit.nn.data import load_digits_images

    x, y = load_digits_images()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    info: dict[str, Any] = {}
    for split in (holdout, 0):
        train_idx, test_idx = perm[split:], perm[:split]
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        net = DigitsClassifier()
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * -(-len(train_idx) // batch_size))
        net.train()
        for _ in range(epochs):
            order = train_idx[torch.randperm(len(train_idx), generator=gen)]
            for k in range(0, len(order), batch_size):
                b = order[k:k + batch_size]
                loss = F.cross_entropy(net(_shift(x[b], gen)), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        net.eval()
        if split:
            with torch.no_grad():
                info["holdout_accuracy"] = float((net(x[test_idx]).argmax(1) == y[test_idx]).float().mean())
            info["holdout"] = split
    with torch.no_grad():
        info["train_accuracy"] = float((net(x).argmax(1) == y).float().mean())
    info.update(epochs=epochs, seed=seed, batch_size=batch_size, lr=lr)
    return net, info
