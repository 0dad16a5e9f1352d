"""Bootstrap intervals of digits-FID and of paired FID differences, from per-sample features.

Digits-FID is a Frechet distance between Gaussians fitted to classifier features (:mod:`pndmkit.nn.frechet`);
it is a smooth function of the samples' feature mean and covariance, so resampling the samples (the
bootstrap) gives its sampling distribution at this sample size. Two samplers run from the *same* initial
noises are compared by resampling the noise indices jointly (a paired bootstrap): the interval of
``FID(a) - FID(b)`` then holds the spread of the difference, which is far smaller than that of either value.

Every sample set is resampled with the *same* index resamples (:func:`resamples_of`), so the bootstrap draws
of any two sets drawn from the same noises are paired and any difference of them is available without
resampling again; each distance is computed for a batch of resamples at once by
:meth:`FrechetReference.distance`. Intervals are normal bootstrap intervals centred on the observed value
(:func:`normal_interval`).

>>> import numpy as np
>>> ref = FrechetReference.from_features(np.eye(3)[[0, 1, 2, 0, 1, 2]])
>>> round(float(ref.distance(np.eye(3)[[0, 1, 2, 0, 1, 2]])), 12)  # the reference's own features: distance 0
0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

#: confidence level of every interval
LEVEL = 0.95
#: bootstrap resamples of every interval
RESAMPLES = 1000
#: resamples evaluated at once (memory: BATCH x n x feature dimension floats)
BATCH = 50


@dataclass(frozen=True)
class FrechetReference:
    """Feature statistics of the reference set, with the square root of its covariance computed once.

    Attributes
    ----------
    mean : ndarray (D,)
    root : ndarray (D, D)
        Symmetric square root of the reference covariance.
    trace : float
        Trace of the reference covariance.
    """

    mean: NDArray[np.float64]
    root: NDArray[np.float64]
    trace: float

    @classmethod
    def from_features(cls, features: Any) -> "FrechetReference":
        """Statistics of reference features ``(N, D)`` (unbiased covariance, as :mod:`pndmkit.nn.frechet`)."""
        from pndmkit.nn.frechet import feature_statistics, sqrtm_psd

        mean, cov = feature_statistics(features)
        return cls(mean=mean, root=sqrtm_psd(cov), trace=float(np.trace(cov)))

    @classmethod
    def digits(cls) -> "FrechetReference":
        """Statistics of all 1797 digits: the reference of :func:`pndmkit.nn.frechet.digits_fid`."""
        from pndmkit.nn.data import load_digits_images
        from pndmkit.nn.frechet import digits_features

        return cls.from_features(digits_features(load_digits_images()[0]))

    def distance(self, features: Any, idx: Any = None) -> NDArray[np.float64]:
        """Frechet distance of ``features[idx]`` (batched over ``idx``'s leading axes) to the reference.

        Parameters
        ----------
        features : array (n, D)
            Per-sample features.
        idx : int array (..., m), optional
            Rows to use, one set per leading index (default: all rows, one distance).

        Returns
        -------
        ndarray (...)
            The distance of each set; NaN where a feature is not finite.
        """
        f = np.asarray(features, dtype=np.float64)
        sets = f if idx is None else f[np.asarray(idx, dtype=np.intp)]
        m = sets.shape[-2]
        mean = sets.mean(axis=-2)
        centred = sets - mean[..., None, :]
        cov = np.swapaxes(centred, -1, -2) @ centred / (m - 1)
        cross = self.root @ cov @ self.root
        finite = np.isfinite(cross).all(axis=(-2, -1))
        cross = np.where(finite[..., None, None], cross, 0.0)
        w = np.linalg.eigvalsh((cross + np.swapaxes(cross, -1, -2)) / 2)
        d2 = (np.sum((mean - self.mean) ** 2, axis=-1) + np.trace(cov, axis1=-2, axis2=-1) + self.trace
              - 2.0 * np.sum(np.sqrt(np.clip(w, 0.0, None)), axis=-1))
        return np.where(finite, np.maximum(d2, 0.0), np.nan)


def resamples_of(n: int, resamples: int = RESAMPLES, seed: int = 0) -> NDArray[np.intp]:
    """Bootstrap resamples of the indices ``0 .. n-1``: an int array ``(resamples, n)``, the same for every call
    with the same arguments (so statistics of two sample sets drawn from the same noises are paired)."""
    if not (isinstance(n, (int, np.integer)) and n >= 2):
        raise ValueError(f"n must be an integer >= 2 (samples to resample), got {n!r}")
    if not (isinstance(resamples, (int, np.integer)) and resamples >= 2):
        raise ValueError(f"resamples must be an integer >= 2, got {resamples!r}")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap(statistic: Callable[[NDArray[np.intp]], NDArray[np.float64]], idx: NDArray[np.intp],
              batch: int = BATCH) -> NDArray[np.float64]:
    """``statistic`` on every resample (row) of ``idx``, ``batch`` rows at a time: the bootstrap draws."""
    return np.concatenate([np.asarray(statistic(idx[k:k + batch]), dtype=np.float64).reshape(-1)
                           for k in range(0, len(idx), batch)])


def normal_interval(value: float, draws: Any, level: float = LEVEL) -> dict[str, float]:
    """``{"value", "low", "high", "sd"}``: ``value -+ z sd`` with ``sd`` the standard deviation of the bootstrap draws.

    ``z`` is the standard normal quantile of ``(1 + level) / 2`` (1.96 at 95 %). The interval is centred on the
    observed value: a resample repeats samples, which inflates a Frechet distance, so the draws' own centre is
    biased upwards while their spread is that of the value at this sample size. NaN when a draw is not finite.
    """
    from scipy.stats import norm

    d = np.asarray(draws, dtype=np.float64)
    sd = float(d.std(ddof=1)) if np.isfinite(d).all() and math.isfinite(value) else math.nan
    half = float(norm.ppf(0.5 + level / 2)) * sd
    return {"value": float(value), "low": float(value) - half, "high": float(value) + half, "sd": sd}


def fid_draws(ref: FrechetReference, features: dict[Any, Any], idx: NDArray[np.intp]) -> dict[Any, NDArray[np.float64]]:
    """Bootstrap draws of each sample set's distance on the same resamples ``idx`` (rows of features paired)."""
    return {key: bootstrap(lambda i, f=f: ref.distance(f, i), idx) for key, f in features.items()}


def fid_interval(ref: FrechetReference, features: Any, draws: Any, level: float = LEVEL) -> dict[str, float]:
    """Digits-FID of ``features`` with the :func:`normal_interval` of its bootstrap ``draws``."""
    return normal_interval(float(ref.distance(features)), draws, level)


def difference_interval(ref: FrechetReference, features_a: Any, features_b: Any, draws_a: Any, draws_b: Any,
                        level: float = LEVEL) -> dict[str, float]:
    """``FID(a) - FID(b)`` with the :func:`normal_interval` of the paired draws' differences.

    Row ``i`` of both feature arrays must come from the same initial noise and both draws from the same
    resamples (:func:`fid_draws`); the result also has ``fraction_a_le_b``, the share of resamples with
    ``FID(a) <= FID(b)``.
    """
    if len(features_a) != len(features_b):
        raise ValueError(f"paired features need the same number of samples, got {len(features_a)} and "
                         f"{len(features_b)}")
    diff = np.asarray(draws_a) - np.asarray(draws_b)
    out = normal_interval(float(ref.distance(features_a) - ref.distance(features_b)), diff, level)
    out["fraction_a_le_b"] = float(np.mean(diff <= 0)) if np.isfinite(diff).all() else math.nan
    return out
