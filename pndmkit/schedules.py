r"""Noise schedules of variance-preserving diffusions.

A schedule is the map :math:`t \mapsto \bar\alpha(t)` of the forward process
:math:`x_t = \sqrt{\bar\alpha}\,x_0 + \sqrt{1-\bar\alpha}\,\epsilon` (PNDM, Liu et al. 2022, eq. 2).
Everything a sampler needs follows from it:

* ``s(t) = sqrt((1 - abar) / abar)``, the noise-to-signal ratio, in which the probability-flow ODE
  becomes ``dy/ds = eps`` with ``y = x / sqrt(abar)``;
* ``lam(t) = log(1 / s)``, the half log-SNR;
* the inverse maps ``t_from_s``, ``t_from_lambda``, ``t_from_abar``.

Time runs towards noise: ``abar`` decreases in ``t``. Continuous schedules (:class:`LinearVP`,
:class:`CosineVP`) use ``t`` in ``[0, 1]``; discrete DDPM schedules (:class:`DiscreteVP`) use the
training index ``i`` in ``[0, T - 1]`` as time, extended to ``t = -1`` where ``abar = 1`` (the padded
table of DDIM) and to non-integer ``t`` by a C2 cubic spline of ``log abar`` that equals the table exactly
at every integer.

Examples
--------
>>> from pndmkit.schedules import LinearVP, DiscreteVP
>>> sched = LinearVP()
>>> round(float(sched.abar(1.0)), 8)
4.319e-05
>>> float(sched.t_from_s(sched.s(0.3)))  # doctest: +ELLIPSIS
0.3000000...
>>> d = DiscreteVP.linear()
>>> bool(d.abar(0) == 1 - 1e-4), float(d.abar(-1))
(True, 1.0)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Callable, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import CubicSpline
from scipy.optimize import brentq

from pndmkit._checks import check_int, check_real

__all__ = ["NoiseSchedule", "LinearVP", "CosineVP", "DiscreteVP"]

FloatOrArray = Union[float, NDArray[np.float64]]


def _out(value: NDArray[np.float64]) -> FloatOrArray:
    return float(value) if np.ndim(value) == 0 else value


class NoiseSchedule(ABC):
    r"""A variance-preserving noise schedule :math:`\bar\alpha(t)`, decreasing in ``t``.

    Subclasses implement :meth:`log_abar`, :meth:`dlog_abar` and :meth:`t_from_log_abar`; everything
    else is derived here so that every schedule answers the same questions the same way.

    Attributes
    ----------
    t_min, t_max : float
        The domain of ``t``. ``abar(t_min)`` is the value closest to 1, ``abar(t_max) > 0``.
    t_start, t_end : float
        Default start (noise) and end (data) times of a sampler.
    continuous : bool
        Whether the model was trained on continuous ``t`` (False: the model expects training indices).
    """

    t_min: float
    t_max: float
    t_start: float
    t_end: float
    continuous: bool = True

    @abstractmethod
    def log_abar(self, t: ArrayLike) -> FloatOrArray:
        """Natural logarithm of ``abar(t)``."""

    @abstractmethod
    def dlog_abar(self, t: ArrayLike) -> FloatOrArray:
        """Derivative ``d log abar / dt``."""

    @abstractmethod
    def t_from_log_abar(self, log_abar: ArrayLike) -> FloatOrArray:
        """Inverse of :meth:`log_abar`."""

    # -- derived quantities -------------------------------------------------------------------
    def abar(self, t: ArrayLike) -> FloatOrArray:
        r"""Signal level :math:`\bar\alpha(t)` (``alphas_cumprod`` of DDPM)."""
        return _out(np.exp(np.asarray(self.log_abar(t), dtype=np.float64)))

    def dabar(self, t: ArrayLike) -> FloatOrArray:
        r"""Derivative :math:`\bar\alpha'(t)`."""
        la = np.asarray(self.log_abar(t), dtype=np.float64)
        return _out(np.exp(la) * np.asarray(self.dlog_abar(t), dtype=np.float64))

    def s(self, t: ArrayLike) -> FloatOrArray:
        r"""Noise-to-signal ratio :math:`s = \sqrt{(1-\bar\alpha)/\bar\alpha}`, computed without cancellation."""
        la = np.asarray(self.log_abar(t), dtype=np.float64)
        return _out(np.sqrt(np.expm1(-la)))

    def lam(self, t: ArrayLike) -> FloatOrArray:
        r"""Half log-SNR :math:`\lambda = \log(1/s)` (``+inf`` where ``abar = 1``)."""
        la = np.asarray(self.log_abar(t), dtype=np.float64)
        with np.errstate(divide="ignore"):
            return _out(-0.5 * np.log(np.expm1(-la)))

    def t_from_abar(self, abar: ArrayLike) -> FloatOrArray:
        """Inverse of :meth:`abar`."""
        a = np.asarray(abar, dtype=np.float64)
        if np.any((a <= 0) | (a > 1)):
            raise ValueError(f"abar must lie in (0, 1], got {abar!r}")
        return self.t_from_log_abar(np.log(a))

    def t_from_s(self, s: ArrayLike) -> FloatOrArray:
        """Inverse of :meth:`s`."""
        s = np.asarray(s, dtype=np.float64)
        if np.any(s < 0):
            raise ValueError(f"s must be >= 0, got {s!r}")
        return self.t_from_log_abar(-np.log1p(s * s))

    def t_from_lambda(self, lam: ArrayLike) -> FloatOrArray:
        """Inverse of :meth:`lam`."""
        lam = np.asarray(lam, dtype=np.float64)
        return self.t_from_log_abar(-np.log1p(np.exp(-2.0 * lam)))

    def check_time(self, t: ArrayLike, name: str = "t") -> None:
        """Raise ``ValueError`` naming ``name`` (and the first bad entry of an array) if a time is not
        finite or lies outside ``[t_min, t_max]``."""
        arr = np.asarray(t, dtype=np.float64)
        tol = 1e-9 * max(1.0, abs(self.t_max))
        bad = ~np.isfinite(arr) | (arr < self.t_min - tol) | (arr > self.t_max + tol)
        if np.any(bad):
            where = f"{name}[{int(np.flatnonzero(bad)[0])}]" if arr.ndim else name
            value = float(arr.ravel()[np.flatnonzero(bad.ravel())[0]])
            what = "must be finite" if not math.isfinite(value) else (
                f"lies outside the domain [{self.t_min}, {self.t_max}] of {self!r}")
            raise ValueError(f"{where}={value!r} {what}")


def _check_t_end(t_end: float, t_min: float, t_max: float) -> float:
    t_end = check_real(t_end, "t_end")
    if not t_min <= t_end < t_max:
        raise ValueError(f"t_end must lie in [{t_min}, {t_max}), got {t_end!r}")
    return t_end


class LinearVP(NoiseSchedule):
    r"""Continuous linear VP schedule of score-SDE: :math:`\log\bar\alpha(t) = -(\beta_0 t + (\beta_1-\beta_0)t^2/2)`.

    Parameters
    ----------
    beta_min, beta_max : float
        :math:`\beta_0 = 0.1` and :math:`\beta_1 = 20` by default (Song et al. 2021).
    t_end : float
        Default end time of sampling (``1e-3``: at ``t = 0`` the ODE right-hand side in ``t`` is singular).
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, t_end: float = 1e-3) -> None:
        beta_min, beta_max = check_real(beta_min, "beta_min"), check_real(beta_max, "beta_max")
        if not (0 <= beta_min < beta_max):
            raise ValueError(f"need 0 <= beta_min < beta_max, got beta_min={beta_min}, beta_max={beta_max}")
        self.beta_min = beta_min
        self.beta_max = beta_max
        self.t_min, self.t_max, self.t_start, self.t_end = 0.0, 1.0, 1.0, _check_t_end(t_end, 0.0, 1.0)

    def __repr__(self) -> str:
        return f"LinearVP(beta_min={self.beta_min}, beta_max={self.beta_max})"

    def log_abar(self, t: ArrayLike) -> FloatOrArray:
        t = np.asarray(t, dtype=np.float64)
        return _out(-(self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t * t))

    def dlog_abar(self, t: ArrayLike) -> FloatOrArray:
        t = np.asarray(t, dtype=np.float64)
        return _out(-(self.beta_min + (self.beta_max - self.beta_min) * t))

    def t_from_log_abar(self, log_abar: ArrayLike) -> FloatOrArray:
        la = np.asarray(log_abar, dtype=np.float64)
        d = self.beta_max - self.beta_min
        # root of d/2 t^2 + b0 t + la = 0 in the cancellation-free form
        return _out(-2.0 * la / (self.beta_min + np.sqrt(self.beta_min**2 - 2.0 * d * la)))


class CosineVP(NoiseSchedule):
    r"""Continuous cosine schedule (improved DDPM): :math:`\bar\alpha(t) = f(t)/f(0)`, :math:`f(t) = \cos^2(\frac{t+s_0}{1+s_0}\frac{\pi}{2})`.

    Parameters
    ----------
    s0 : float
        Offset (0.008).
    t_max : float
        Largest time; ``abar(1) = 0`` so the default stops at 0.9946 as DPM-Solver does (abar about 7e-5).
    t_end : float
        Default end time of sampling.
    """

    def __init__(self, s0: float = 0.008, t_max: float = 0.9946, t_end: float = 1e-3) -> None:
        s0, t_max = check_real(s0, "s0"), check_real(t_max, "t_max")
        if s0 < 0:
            raise ValueError(f"s0 must be >= 0, got {s0}")
        if not (0 < t_max < 1):
            raise ValueError(f"t_max must lie in (0, 1), got {t_max}")
        self.s0 = s0
        self._log_f0 = 2.0 * math.log(math.cos(self.s0 / (1 + self.s0) * math.pi / 2))
        self.t_min, self.t_max, self.t_start, self.t_end = 0.0, t_max, t_max, _check_t_end(t_end, 0.0, t_max)

    def __repr__(self) -> str:
        return f"CosineVP(s0={self.s0}, t_max={self.t_max})"

    def _angle(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        return (t + self.s0) / (1 + self.s0) * (np.pi / 2)

    def log_abar(self, t: ArrayLike) -> FloatOrArray:
        t = np.asarray(t, dtype=np.float64)
        return _out(2.0 * np.log(np.cos(self._angle(t))) - self._log_f0)

    def dlog_abar(self, t: ArrayLike) -> FloatOrArray:
        t = np.asarray(t, dtype=np.float64)
        return _out(-np.pi / (1 + self.s0) * np.tan(self._angle(t)))

    def t_from_log_abar(self, log_abar: ArrayLike) -> FloatOrArray:
        la = np.asarray(log_abar, dtype=np.float64)
        c = np.exp(0.5 * (la + self._log_f0))
        return _out(np.arccos(c) * (2 / np.pi) * (1 + self.s0) - self.s0)


def _table_args(T: int, beta_start: float, beta_end: float) -> tuple[int, float, float]:
    T = check_int(T, "T", 2)
    beta_start, beta_end = check_real(beta_start, "beta_start"), check_real(beta_end, "beta_end")
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1, got beta_start={beta_start}, beta_end={beta_end}")
    return T, beta_start, beta_end


class DiscreteVP(NoiseSchedule):
    r"""Discrete DDPM schedule from ``betas``, with a smooth extension to continuous time.

    ``abar_i = prod_{j <= i} (1 - beta_j)`` for ``i = 0..T-1``; time ``t = i`` is the training index
    (``alphas_cumprod[i]`` of diffusers). The extension is a C2 cubic spline of ``log abar`` through the
    knots ``i = -1..T-1`` with ``log abar(-1) = 0`` (``abar = 1``, the padded table of DDIM); it equals the
    table exactly at every integer index and defines the ODE, reference solutions and non-integer stage
    times.

    Parameters
    ----------
    betas : array_like
        Noise levels, each in (0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> d = DiscreteVP.linear()
    >>> abar = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    >>> bool(np.all(d.abar(np.arange(1000)) == abar))
    True
    """

    continuous = False

    def __init__(self, betas: ArrayLike, *, name: str = "custom") -> None:
        try:
            b = np.asarray(betas, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a 1-D array of numbers, got {type(betas).__name__}") from None
        if b.ndim != 1 or b.size < 2:
            raise ValueError(f"betas must be a 1-D array of at least 2 values, got shape {b.shape}")
        if np.any(~((b > 0) & (b < 1))):  # NaN fails both comparisons
            i = int(np.flatnonzero(~((b > 0) & (b < 1)))[0])
            raise ValueError(f"betas must be finite and lie in the open interval (0, 1); "
                             f"got betas[{i}]={float(b[i])!r}")
        self.betas = b
        self.name = name
        self.alphas_cumprod = np.cumprod(1.0 - b)
        self._table = np.concatenate([[1.0], self.alphas_cumprod])  # knots -1..T-1
        self._table_log = np.log(self._table)
        self._knots = np.arange(-1.0, b.size)
        self._spline = CubicSpline(self._knots, self._table_log)
        self._dspline = self._spline.derivative()
        T = b.size
        self.num_train_timesteps = T
        self.t_min, self.t_max, self.t_start, self.t_end = -1.0, float(T - 1), float(T - 1), -1.0

    def __repr__(self) -> str:
        return f"DiscreteVP.{self.name}(T={self.num_train_timesteps})" if self.name != "custom" else (
            f"DiscreteVP(T={self.num_train_timesteps})")

    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "DiscreteVP":
        """DDPM linear schedule: ``betas = linspace(beta_start, beta_end, T)``."""
        T, beta_start, beta_end = _table_args(T, beta_start, beta_end)
        return cls(np.linspace(beta_start, beta_end, T), name="linear")

    @classmethod
    def quad(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "DiscreteVP":
        """Quadratic ("scaled linear") schedule: ``betas = linspace(sqrt(beta_start), sqrt(beta_end), T) ** 2``."""
        T, beta_start, beta_end = _table_args(T, beta_start, beta_end)
        return cls(np.linspace(beta_start**0.5, beta_end**0.5, T) ** 2, name="quad")

    @classmethod
    def cosine(cls, T: int = 1000, s0: float = 0.008, max_beta: float = 0.999) -> "DiscreteVP":
        """Improved-DDPM cosine schedule, ``beta_i = min(1 - abar((i+1)/T) / abar(i/T), max_beta)``."""
        T, s0, max_beta = check_int(T, "T", 2), check_real(s0, "s0"), check_real(max_beta, "max_beta")
        f = np.cos((np.arange(T + 1) / T + s0) / (1 + s0) * np.pi / 2) ** 2
        return cls(np.minimum(1 - f[1:] / f[:-1], max_beta), name="cosine")

    def _lookup(self, t: ArrayLike, table: NDArray[np.float64], between: Callable) -> FloatOrArray:
        if isinstance(t, (float, int)):  # the sampler's hot path: one Python float per call
            if float(t).is_integer() and -1 <= t <= self.t_max:
                return float(table[int(t) + 1])
            return float(between(float(t)))
        t = np.asarray(t, dtype=np.float64)
        ti = np.rint(t)
        exact = (t == ti) & (ti >= -1) & (ti <= self.t_max)
        if np.ndim(t) == 0:
            return float(table[int(ti) + 1]) if exact else float(between(t))
        out = np.asarray(between(t), dtype=np.float64)
        out[exact] = table[ti[exact].astype(np.int64) + 1]
        return out

    def log_abar(self, t: ArrayLike) -> FloatOrArray:
        return self._lookup(t, self._table_log, self._spline)

    def abar(self, t: ArrayLike) -> FloatOrArray:
        """``alphas_cumprod[t]`` exactly at integer ``t`` (1 at ``t = -1``), the spline in between."""
        return self._lookup(t, self._table, lambda u: np.exp(self._spline(u)))

    def dlog_abar(self, t: ArrayLike) -> FloatOrArray:
        return _out(np.asarray(self._dspline(np.asarray(t, dtype=np.float64))))

    def t_from_log_abar(self, log_abar: ArrayLike) -> FloatOrArray:
        la = np.asarray(log_abar, dtype=np.float64)
        lo, hi = self._table_log[-1], 0.0
        if np.any(la > hi) or np.any(la < lo):
            raise ValueError(f"log abar={log_abar!r} is outside the schedule's range [{lo}, {hi}]")
        flat = [self._invert(float(v)) for v in la.ravel()]
        return _out(np.asarray(flat, dtype=np.float64).reshape(la.shape))

    def _invert(self, la: float) -> float:
        k = int(np.searchsorted(-self._table_log, -la))  # knots are decreasing in value
        if k < len(self._knots) and self._table_log[k] == la:
            return float(self._knots[k])
        lo, hi = self._knots[max(k - 1, 0)], self._knots[min(k, len(self._knots) - 1)]
        return float(brentq(lambda x: float(self._spline(x)) - la, lo, hi, xtol=1e-13, rtol=1e-15))
