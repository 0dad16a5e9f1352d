r"""Frechet distance between Gaussians fitted to features, and "digits-FID" with a shipped classifier.

For feature means :math:`m_1, m_2` and covariances :math:`C_1, C_2`,

.. math:: d^2 = \lVert m_1 - m_2 \rVert^2 + \operatorname{tr} C_1 + \operatorname{tr} C_2
          - 2 \operatorname{tr} \big( C_1^{1/2} C_2 C_1^{1/2} \big)^{1/2}.

The cross term uses the symmetric positive semi-definite matrix :math:`C_1^{1/2} C_2 C_1^{1/2}` (it has
the eigenvalues of :math:`C_1 C_2`), so both square roots are eigen-decompositions of symmetric matrices
with negative round-off eigenvalues clipped to 0; ``scipy.linalg.sqrtm(C1 @ C2)`` of the non-symmetric
product can return complex values or lose accuracy for singular covariances.

>>> import numpy as np
>>> frechet_distance(np.zeros(2), np.diag([4.0, 1.0]), np.ones(2), np.diag([1.0, 1.0]))  # 2 + (2-1)^2
3.0
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike, NDArray
from torch import nn

__all__ = ["frechet_distance", "feature_statistics", "sqrtm_psd", "DigitsClassifier", "load_feature_network",
           "digits_features", "digits_fid", "train_classifier"]


def sqrtm_psd(a: ArrayLike) -> NDArray[np.float64]:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigenvalues < 0 clipped)."""
    a = np.asarray(a, dtype=np.float64)
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def feature_statistics(features: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and (unbiased) covariance of ``features`` of shape ``(N, D)``, N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must have shape (N, D) with N >= 2, got {f.shape}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1: ArrayLike, cov1: ArrayLike, mu2: ArrayLike, cov2: ArrayLike) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    c1, c2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    if not (mu1.shape == mu2.shape and c1.shape == c2.shape == (mu1.size, mu1.size)):
        raise ValueError(f"shape mismatch: mu1 {mu1.shape}, cov1 {c1.shape}, mu2 {mu2.shape}, cov2 {c2.shape}")
    s1 = sqrtm_psd(c1)
    cross = s1 @ c2 @ s1
    w = np.linalg.eigvalsh((cross + cross.T) / 2)
    tr_sqrt = float(np.sum(np.sqrt(np.clip(w, 0.0, None))))
    d2 = float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2.0 * tr_sqrt)
    return max(d2, 0.0)


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


@lru_cache(maxsize=2)
def load_feature_network(name: str = "digits_classifier") -> DigitsClassifier:
    """The shipped digits classifier (eval mode, CPU, float32)."""
    from pndmkit.nn.checkpoint import load_checkpoint

    net = load_checkpoint(name).net
    if not isinstance(net, DigitsClassifier):
        raise TypeError(f"checkpoint {name!r} holds a {type(net).__name__}, not a DigitsClassifier")
    return net


@torch.no_grad()
def digits_features(images: ArrayLike | torch.Tensor, net: DigitsClassifier | None = None,
                    batch_size: int = 1000) -> NDArray[np.float64]:
    """Classifier features of images ``(N, 1, 16, 16)`` in ``[-1, 1]`` (clipped), float64 ``(N, D)``."""
    net = net or load_feature_network()
    x = torch.as_tensor(np.asarray(images, dtype=np.float32) if not isinstance(images, torch.Tensor) else images)
    x = x.detach().to("cpu", torch.float32).clamp(-1, 1)
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 16, 16):
        raise ValueError(f"images must have shape (N, 1, 16, 16), got {tuple(x.shape)}")
    return torch.cat([net.features(x[k:k + batch_size]) for k in range(0, len(x), batch_size)]).double().numpy()


@lru_cache(maxsize=1)
def _reference_statistics() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    from pndmkit.nn.data import load_digits_images

    return feature_statistics(digits_features(load_digits_images()[0]))


def digits_fid(samples: ArrayLike | torch.Tensor) -> float:
    """Frechet distance between classifier features of ``samples`` and of the whole digits data set.

    ``samples``: ``(N, 1, 16, 16)`` in ``[-1, 1]``. Like FID, it is biased upwards for small ``N``; compare
    methods at equal ``N`` (and best with the same initial noise).
    """
    mu, cov = feature_statistics(digits_features(samples))
    mu_ref, cov_ref = _reference_statistics()
    return frechet_distance(mu, cov, mu_ref, cov_ref)
