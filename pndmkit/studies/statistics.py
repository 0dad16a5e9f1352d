"""Statistics of the studies: paired bootstrap intervals of an error cut or ratio, and rank correlation of two tables.

* :func:`reduction_interval`: how sure a cut ``1 - RMS(errors) / RMS(baseline)`` measured on a few samples is
  (per-sample errors on a network are heavy-tailed, so a cut on a few noises can be far from the next few's).
* :func:`ratio_interval`: the same for a ratio ``RMS(errors) / RMS(baseline)``, or its geometric mean over
  several cases (each case's samples resampled on their own): the head-to-head's ratios.
* :func:`rank_correlation`: whether two problems rank the methods alike (Spearman's rho of their errors at equal
  NFE), e.g. a network against a Gaussian-mixture surrogate of its data.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit._checks import check_real
from pndmkit.errors import UsageError, blame

__all__ = ["reduction_interval", "ratio_interval", "rank_correlation",
           "INTERVAL_LEVEL", "INTERVAL_RESAMPLES", "INTERVAL_MIN_SAMPLES"]


#: confidence level and resamples of the held-out reduction's paired bootstrap interval
INTERVAL_LEVEL = 0.95
INTERVAL_RESAMPLES = 2000

#: fewest held-out samples a bootstrap interval is given for (below, a percentile interval is noise)
INTERVAL_MIN_SAMPLES = 8


def _per_sample(name: str, value: Any) -> NDArray[np.float64]:
    """``value`` as a 1-D float64 array of per-sample squared errors, or a UsageError naming ``name``."""
    what = f"{name} must be a 1-D array of per-sample squared errors (real numbers >= 0)"
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nesting
        raise UsageError(name, f"{what}, got {value!r} ({exc})") from None
    if arr.dtype.kind not in "iuf":  # bools, complex, strings, objects
        raise UsageError(name, f"{what}, got {arr.dtype} values {value!r}")
    if arr.ndim != 1:
        raise UsageError(name, f"{what}, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        raise UsageError(name, f"{what}, got {float(arr[bad[0]])!r} at index {int(bad[0])}")
    return arr


def _level(level: Any) -> float:
    """``level`` checked: a real number in ``(0, 1)``, else a UsageError naming ``level``."""
    with blame("level"):
        level = check_real(level, "level")
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
    return level


def _paired(errors: Any, baseline: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``errors`` and ``baseline`` as per-sample arrays of one length, else a UsageError naming them."""
    a, b = _per_sample("errors", errors), _per_sample("baseline", baseline)
    if a.size != b.size:
        raise UsageError(("errors", "baseline"), f"errors and baseline must have one value per sample of the same "
                                                 f"samples, got {a.size} and {b.size} values")
    return a, b


def _percentile_interval(samples: tuple, statistic: Any, level: float, **options: Any) -> tuple[float, float]:
    """:func:`scipy.stats.bootstrap`'s percentile interval (:data:`INTERVAL_RESAMPLES`, seed 0); ``(nan, nan)``
    where an end is not finite."""
    from scipy.stats import bootstrap

    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = bootstrap(samples, statistic, vectorized=True, n_resamples=INTERVAL_RESAMPLES, confidence_level=level,
                        method="percentile", random_state=np.random.default_rng(0), **options)
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return (math.nan, math.nan)
    return (low, high)


def reduction_interval(errors: NDArray[np.float64], baseline: NDArray[np.float64],
                       level: float = INTERVAL_LEVEL) -> tuple[float, float]:
    """Paired bootstrap interval of ``1 - RMS(errors) / RMS(baseline)`` over samples.

    Parameters
    ----------
    errors, baseline : ndarray, shape (n,)
        Mean squared end-point error of each sample on the grid judged and on the baseline grid, from the same
        noises (so they are resampled together: a paired bootstrap).
    level : float
        Confidence level, in ``(0, 1)``.

    Returns
    -------
    (low, high) : tuple of float
        Percentile interval of :func:`scipy.stats.bootstrap` (fixed seed: the same numbers every run).
        ``(nan, nan)`` (no interval) with fewer than :data:`INTERVAL_MIN_SAMPLES` samples, or where some
        resamples have a zero baseline error (the cut is then unbounded).

    Raises
    ------
    UsageError
        Naming ``errors`` or ``baseline`` (not a 1-D array of finite real values >= 0, or of different
        lengths) or ``level`` (not a real number in ``(0, 1)``).
    """
    level = _level(level)
    a, b = _paired(errors, baseline)
    if a.size < INTERVAL_MIN_SAMPLES:
        return (math.nan, math.nan)

    def cut(x: NDArray[np.float64], y: NDArray[np.float64], axis: int = -1) -> NDArray[np.float64]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0 - np.sqrt(np.mean(x, axis=axis) / np.mean(y, axis=axis))

    return _percentile_interval((a, b), cut, level, paired=True)


def ratio_interval(pairs: Sequence[tuple[NDArray[np.float64], NDArray[np.float64]]],
                   level: float = INTERVAL_LEVEL) -> tuple[float, float]:
    """Paired bootstrap interval of the geometric mean over cases of ``RMS(errors) / RMS(baseline)``.

    With one case this is the ratio of RMS errors of two solvers on the same samples; its interval is
    ``1 -`` :func:`reduction_interval`'s, end for end (the same resamples). With several cases (each its own
    samples) each case's samples are resampled on their own (a stratified bootstrap), errors and baseline
    jointly, and the statistic is the geometric mean over the cases of the per-case ratios: the ratio
    :func:`pndmkit.studies.compare.by_nfe` reports.

    Parameters
    ----------
    pairs : sequence of (errors, baseline)
        Per case, the mean squared end-point error of each sample (over its dimensions) of the solver judged and
        of the baseline, two 1-D arrays of real values >= 0 from the same samples in the same order.
    level : float
        Confidence level, in ``(0, 1)``.

    Returns
    -------
    (low, high) : tuple of float
        Percentile interval of :func:`scipy.stats.bootstrap` (:data:`INTERVAL_RESAMPLES` resamples, fixed seed:
        the same numbers every run). ``(nan, nan)`` (no interval) where a case has fewer than
        :data:`INTERVAL_MIN_SAMPLES` samples or some resample's ratio is not finite (a zero baseline error).

    Raises
    ------
    UsageError
        Naming ``pairs`` (empty, or not pairs), ``errors`` or ``baseline`` (not 1-D arrays of finite real
        values >= 0 of one length) or ``level`` (not a real number in ``(0, 1)``).

    Examples
    --------
    >>> e = np.array([1.0, 4.0, 9.0, 0.5, 2.0, 3.0, 7.0, 1.5])
    >>> ratio_interval([(4 * e, e)])  # every error doubled: the ratio is 2 on every resample
    (2.0, 2.0)
    """
    level = _level(level)
    try:
        cases = [tuple(p) for p in pairs]
    except TypeError:
        raise UsageError("pairs", f"pairs must be a sequence of (errors, baseline) pairs, got {pairs!r}") from None
    if not cases or any(len(p) != 2 for p in cases):
        raise UsageError("pairs", f"pairs must be a non-empty sequence of (errors, baseline) pairs, one per case, "
                                  f"got {len(cases)} entries of lengths {sorted({len(p) for p in cases})}")
    stacked = []
    for errors, baseline in cases:
        a, b = _paired(errors, baseline)
        if a.size < INTERVAL_MIN_SAMPLES:
            return (math.nan, math.nan)
        stacked.append(np.stack([a, b]))

    def ratio(*samples: NDArray[np.float64], axis: int = -1) -> NDArray[np.float64]:
        # each sample is (2, ..., n): errors and baseline resampled together along the last axis
        per_case = [np.sqrt(np.mean(x[0], axis=axis) / np.mean(x[1], axis=axis)) for x in samples]
        return np.prod(per_case, axis=0) ** (1.0 / len(per_case))  # exact for one case

    return _percentile_interval(tuple(stacked), ratio, level, paired=False, axis=-1)


def rank_correlation(a: dict[str, dict[int, Optional[dict]]], b: dict[str, dict[int, Optional[dict]]]
                     ) -> dict[str, Any]:
    """Spearman rank correlation of two :func:`pndmkit.studies.real.errors_at_nfe` tables, per NFE budget and pooled.

    Only (method, NFE) cells present in both tables with the same step count enter. Returns
    ``{"by_nfe": {nfe: {"rho", "p", "n"}}, "pooled": {"rho", "p", "n"}}`` (pooled over every cell: it also
    measures whether the error scale across budgets carries over).
    """
    from scipy.stats import spearmanr

    cells: dict[int, list[tuple[float, float]]] = {}
    for name in a.keys() & b.keys():
        for k, u in a[name].items():
            v = b[name].get(k)
            if u is not None and v is not None and u["steps"] == v["steps"]:
                cells.setdefault(int(k), []).append((u["error"], v["error"]))

    def rho(pairs: list[tuple[float, float]]) -> dict[str, Any]:
        if len(pairs) < 3:
            return {"rho": None, "p": None, "n": len(pairs)}
        r = spearmanr([p[0] for p in pairs], [p[1] for p in pairs])
        return {"rho": round(float(r.statistic), 3), "p": float(r.pvalue), "n": len(pairs)}

    return {"by_nfe": {k: rho(v) for k, v in sorted(cells.items())},
            "pooled": rho([p for v in cells.values() for p in v])}
