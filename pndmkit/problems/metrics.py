r"""Sample quality against the true data distribution, and "manifold" diagnostics along a trajectory.

* :func:`nll` -- average negative log-likelihood under :math:`p_0` (exact).
* :func:`sliced_wasserstein` -- sliced Wasserstein distance between samples and :math:`p_0`, using exact
  samples of :math:`p_0` drawn with a fixed seed and many random projections.
* :func:`manifold_diagnostics` -- :math:`\|x_t\|/\sqrt d` per sample against its exact root-mean-square value
  under :math:`p_t`, and :math:`\log p_t(x_t)`. PNDM's argument (Liu et al. 2022, sec. 3) is that classical
  steps leave the region where :math:`p_t` concentrates; these numbers show it.

Examples
--------
>>> from pndmkit.problems import GaussianMixture
>>> gm = GaussianMixture([0.5, 0.5], [[-0.5, 0.0], [0.5, 0.0]], [0.04, 0.04])
>>> good, bad = gm.sample(2000, rng=1), gm.sample(2000, rng=2) * 1.5
>>> sliced_wasserstein(gm, good) < 0.05 < sliced_wasserstein(gm, bad)
True
>>> nll(gm, good) < nll(gm, bad)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from pndmkit.problems._arrays import to_float64
from pndmkit.problems.gaussian_mixture import GaussianMixture
from pndmkit.schedules import NoiseSchedule

__all__ = ["nll", "sliced_wasserstein", "manifold_diagnostics", "ManifoldDiagnostics"]


def nll(problem: GaussianMixture, x: Any) -> float:
    r"""Average negative log-likelihood :math:`-\frac1n\sum_i \log p_0(x_i)` (nats) of samples ``x`` (n, d)."""
    arr, _ = to_float64(x)
    return float(-np.mean(problem.log_prob(arr, None)))


def sliced_wasserstein(problem: GaussianMixture, x: Any, *, n_projections: int = 256,
                       n_reference: Optional[int] = None, p: float = 2.0, seed: int = 0) -> float:
    r"""Sliced :math:`W_p` distance between the empirical law of ``x`` and :math:`p_0`.

    :math:`SW_p = (\frac1P \sum_{j} W_p^p(\theta_j^\top x, \theta_j^\top x_{\rm ref}))^{1/p}` over ``P``
    directions uniform on the sphere; ``x_ref`` are ``n_reference`` (default ``max(len(x), 20000)``) exact samples
    of :math:`p_0`. Directions and reference samples come from ``seed``, so two sample sets are
    compared against the same reference. The 1-D distances pair order statistics (quantiles of the
    reference when the sizes differ). The estimate carries a positive bias of order
    :math:`n^{-1/2}` from finite samples: compare methods at equal ``n``.
    """
    arr, _ = to_float64(x)
    if arr.ndim != 2 or arr.shape[1] != problem.dim or arr.shape[0] < 1:
        raise ValueError(f"x must have shape (n, {problem.dim}) with n >= 1, got {arr.shape}")
    n = arr.shape[0]
    m = max(n, 20000) if n_reference is None else int(n_reference)
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((problem.dim, n_projections))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    ref = problem.sample(m, rng=rng)
    px = np.sort(arr @ theta, axis=0)
    pr = np.sort(ref @ theta, axis=0)
    if m != n:  # reference quantiles at the empirical levels (i + 1/2) / n, linear between order statistics
        pos = np.clip((np.arange(n) + 0.5) * (m / n) - 0.5, 0.0, m - 1.0)
        lo = np.minimum(pos.astype(np.int64), m - 2) if m > 1 else np.zeros(n, dtype=np.int64)
        frac = (pos - lo)[:, None]
        pr = pr[lo] * (1.0 - frac) + pr[np.minimum(lo + 1, m - 1)] * frac
    return float(np.mean(np.abs(px - pr) ** p) ** (1.0 / p))


@dataclass(frozen=True)
class ManifoldDiagnostics:
    """Where a batch ``x_t`` sits relative to the exact marginal ``p_t``.

    Attributes
    ----------
    norm : ndarray (n,)
        ``||x_i|| / sqrt(d)``.
    expected_norm : float
        Root of ``E ||x_t||^2 / d`` under ``p_t``.
    log_prob : ndarray (n,)
        ``log p_t(x_i)``.
    """

    norm: NDArray[np.float64]
    expected_norm: float
    log_prob: NDArray[np.float64]


def manifold_diagnostics(problem: GaussianMixture, x: Any, t: Optional[float],
                         schedule: Optional[NoiseSchedule] = None) -> ManifoldDiagnostics:
    """Norms and log-densities of ``x`` (n, d) at time ``t`` against the exact marginal ``p_t``."""
    arr, _ = to_float64(x)
    return ManifoldDiagnostics(
        norm=np.linalg.norm(arr, axis=-1) / np.sqrt(problem.dim),
        expected_norm=problem.expected_norm(t, schedule),
        log_prob=problem.log_prob(arr, t, schedule),
    )
