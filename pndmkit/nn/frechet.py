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

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from pndmkit._checks import with_article
from pndmkit.nn.checkpoint import load_checkpoint
from pndmkit.nn.classifier import DigitsClassifier, train_classifier

# DigitsClassifier and train_classifier live in pndmkit.nn.classifier; these names stay here too
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


@lru_cache(maxsize=2)
def load_feature_network(name: str = "digits_classifier") -> DigitsClassifier:
    """The shipped digits classifier (eval mode, CPU, float32)."""
    net = load_checkpoint(name).net
    if not isinstance(net, DigitsClassifier):
        raise TypeError(f"checkpoint {name!r} holds {with_article(type(net).__name__)}, not a DigitsClassifier")
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
