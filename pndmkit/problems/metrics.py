r"""Sample quality against the true data distribution, and "manifold" diagnostics along a trajectory.

* :func:`nll` -- average negative log-likelihood under :math:`p_0` (exact).
* :func:`sliced_wasserstein` -- sliced Wasserstein distance between samples and :math:`p_0`, using exact
  samples of :math:`p_0` drawn with a fixed seed and many random projections; :class:`SlicedWasserstein`
  sets it up once for many sample sets of one size.
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

__all__ = ["nll", "sliced_wasserstein", "SlicedWasserstein", "manifold_diagnostics", "ManifoldDiagnostics"]


def nll(problem: GaussianMixture, x: Any) -> float:
    r"""Average negative log-likelihood :math:`-\frac1n\sum_i \log p_0(x_i)` (nats) of samples ``x`` (n, d)."""
    arr, _ = to_float64(x)
    return float(-np.mean(problem.log_prob(arr, None)))


class SlicedWasserstein:
    r"""Sliced :math:`W_p` distance to :math:`p_0` for samples of a fixed size ``n``, set up once.

    :math:`SW_p = (\frac1P \sum_{j} W_p^p(\theta_j^\top x, \theta_j^\top x_{\rm ref}))^{1/p}` over ``P``
    directions uniform on the sphere; ``x_ref`` are ``n_reference`` (default ``max(n, 20000)``) exact samples
    of :math:`p_0`. Directions and reference samples come from ``seed``, so every sample set is compared
    against the same reference; the projected reference quantiles at the empirical levels
    ``(i + 1/2) / n`` (linear between order statistics) are computed here, once, so that a study scoring
    many runs of the same size pays for them once. The estimate carries a positive bias of order
    :math:`n^{-1/2}` from finite samples: compare methods at equal ``n``.

    Examples
    --------
    >>> from pndmkit.problems import GaussianMixture
    >>> gm = GaussianMixture([0.5, 0.5], [[-0.5, 0.0], [0.5, 0.0]], [0.04, 0.04])
    >>> sw = SlicedWasserstein(gm, 2000)
    >>> sw(gm.sample(2000, rng=1)) == sliced_wasserstein(gm, gm.sample(2000, rng=1))
    True
    """

    def __init__(self, problem: GaussianMixture, n: int, *, n_projections: int = 256,
                 n_reference: Optional[int] = None, p: float = 2.0, seed: int = 0) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n (samples per call) must be a positive integer, got {n!r}")
        n = int(n)
        m = max(n, 20000) if n_reference is None else int(n_reference)
        rng = np.random.default_rng(seed)
        theta = rng.standard_normal((problem.dim, n_projections))
        self.theta = theta / np.linalg.norm(theta, axis=0, keepdims=True)
        ref = np.sort(problem.sample(m, rng=rng) @ self.theta, axis=0)
        if m != n:  # reference quantiles at the empirical levels (i + 1/2) / n, linear between order statistics
            pos = np.clip((np.arange(n) + 0.5) * (m / n) - 0.5, 0.0, m - 1.0)
            lo = np.minimum(pos.astype(np.int64), m - 2) if m > 1 else np.zeros(n, dtype=np.int64)
            frac = (pos - lo)[:, None]
            ref = ref[lo] * (1.0 - frac) + ref[np.minimum(lo + 1, m - 1)] * frac
        self.quantiles, self.n, self.p, self.dim = ref, n, float(p), problem.dim

    def __call__(self, x: Any) -> float:
        """The distance of the samples ``x`` (shape ``(n, d)``) to :math:`p_0`."""
        arr, _ = to_float64(x)
        if arr.ndim != 2 or arr.shape != (self.n, self.dim):
            raise ValueError(f"x must have shape ({self.n}, {self.dim}) (the n this was set up for), got {arr.shape}")
        projected = np.sort(arr @ self.theta, axis=0)
        return float(np.mean(np.abs(projected - self.quantiles) ** self.p) ** (1.0 / self.p))


def sliced_wasserstein(problem: GaussianMixture, x: Any, *, n_projections: int = 256,
                       n_reference: Optional[int] = None, p: float = 2.0, seed: int = 0) -> float:
    r"""Sliced :math:`W_p` distance between the empirical law of ``x`` and :math:`p_0` (see :class:`SlicedWasserstein`)."""
    arr, _ = to_float64(x)
    if arr.ndim != 2 or arr.shape[1] != problem.dim or arr.shape[0] < 1:
        raise ValueError(f"x must have shape (n, {problem.dim}) with n >= 1, got {arr.shape}")
    return SlicedWasserstein(problem, arr.shape[0], n_projections=n_projections, n_reference=n_reference, p=p,
                             seed=seed)(arr)


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
