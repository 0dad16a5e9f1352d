r"""Noise schedules: the forward process :math:`x_t = \alpha(t)\,x_0 + \sigma(t)\,\epsilon` of every model family.

A schedule is the pair :math:`(\alpha(t), \sigma(t))`. Everything a sampler needs follows from it
(``docs/theory.md``, "One ODE for every model family"):

* ``s(t) = sigma / alpha``, the noise-to-signal ratio, in which the probability-flow ODE becomes
  ``dy/ds = eps`` with ``y = x / alpha`` *for every family*;
* ``lam(t) = log(1 / s)``, the half log-SNR;
* the inverse maps ``t_from_s``, ``t_from_lambda``.

Three families (:attr:`NoiseSchedule.family`):

* ``"vp"`` variance preserving, ``alpha^2 + sigma^2 = 1``, described by ``abar(t) = alpha^2``
  (:class:`LinearVP`, :class:`CosineVP`, the discrete DDPM tables :class:`DiscreteVP`);
* ``"ve"`` variance exploding, ``alpha = 1``: :class:`EDM` (``t`` is ``sigma`` itself) and the score-SDE
  :class:`VE` (geometric ``sigma(t)``, ``t`` in ``[0, 1]``);
* ``"flow"`` rectified flow / flow matching, ``alpha = 1 - t``, ``sigma = t`` (:class:`FlowMatching`), with
  the resolution-dependent time shift of recent flow models as a grid option.

Time runs towards noise: ``s`` increases in ``t``. Continuous VP schedules use ``t`` in ``[0, 1]``; discrete
DDPM schedules use the training index ``i`` in ``[0, T - 1]`` as time, extended to ``t = -1`` where
``abar = 1`` (the padded table of DDIM) and to non-integer ``t`` by a C2 cubic spline of ``log abar`` that
equals the table exactly at every integer.

Examples
--------
>>> from pndmkit.schedules import LinearVP, DiscreteVP, EDM, FlowMatching
>>> sched = LinearVP()
>>> round(float(sched.abar(1.0)), 8)
4.319e-05
>>> float(sched.t_from_s(sched.s(0.3)))  # doctest: +ELLIPSIS
0.3000000...
>>> d = DiscreteVP.linear()
>>> bool(d.abar(0) == 1 - 1e-4), float(d.abar(-1))
(True, 1.0)
>>> fm = FlowMatching()
>>> float(fm.alpha(0.25)), float(fm.sigma(0.25)), float(fm.s(0.25))
(0.75, 0.25, 0.3333333333333333)
>>> float(EDM().s(3.5))
3.5
"""

from __future__ import annotations

import bisect
import hashlib
import inspect
import math
import threading
import uuid
import weakref
from abc import ABC, abstractmethod
from functools import lru_cache
from typing import Callable, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import CubicSpline, PchipInterpolator
from scipy.optimize import brentq

from pndmkit._checks import check_choice, check_int, check_real

__all__ = ["NoiseSchedule", "VPSchedule", "LinearVP", "CosineVP", "DiscreteVP", "EDM", "VE", "FlowMatching",
           "CustomSchedule", "FAMILIES", "levels_from_s", "SCHEDULES", "SCHEDULE_ALIASES", "get_schedule", "schedule_to_dict",
           "schedule_from_dict", "schedule_key", "lam_from_log_abar", "s_from_log_abar", "grid_log_abar",
           "same_schedule"]

FloatOrArray = Union[float, NDArray[np.float64]]

#: model families and the prediction types each defines (``pndmkit.models``): ``v`` is the VP velocity
#: ``alpha eps - sigma x0`` of a rotation ``alpha^2 + sigma^2 = 1``; ``flow`` is ``u = dx_t/dt`` at fixed
#: ``(x0, eps)``, defined wherever ``alpha`` and ``sigma`` are differentiable
FAMILIES = {
    "vp": ("eps", "x0", "v", "score", "flow"),
    "ve": ("eps", "x0", "score", "flow"),
    "flow": ("eps", "x0", "score", "flow"),
    "custom": ("eps", "x0", "score", "flow"),
}


def _out(value: NDArray[np.float64]) -> FloatOrArray:
    return float(value) if np.ndim(value) == 0 else value


def _arr(t: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(t, dtype=np.float64)


class NoiseSchedule(ABC):
    r"""A noise schedule :math:`x_t = \alpha(t) x_0 + \sigma(t) \epsilon` with ``s = sigma / alpha`` increasing in ``t``.

    Subclasses implement :meth:`alpha`, :meth:`sigma`, their derivatives :meth:`dalpha`, :meth:`dsigma` and
    the inverse :meth:`t_from_s`; ``s``, ``lam``, ``t_from_lambda`` and the probability-flow coefficients are
    derived here so that every schedule answers the same questions the same way. Variance-preserving
    schedules derive from :class:`VPSchedule`, which keeps the ``abar(t)`` description.

    Attributes
    ----------
    family : {"vp", "ve", "flow"}
        The model family (:data:`FAMILIES`): which prediction types a network of it may output.
    t_min, t_max : float
        The domain of ``t``. ``s(t_min)`` is the lowest noise level (often 0), ``s(t_max)`` finite.
    t_start, t_end : float
        Default start (noise) and end (data) times of a sampler.
    continuous : bool
        Whether the model was trained on continuous ``t`` (False: the model expects training indices).
    default_grid : str or None
        The grid kind :func:`pndmkit.make_grid` uses when none is given (None: ``"uniform"``, or
        ``"leading"`` for a discrete schedule).
    s_floor : float or None
        The lowest positive noise-to-signal ratio of the ``karras`` and ``logsnr`` grids that end at ``s = 0``
        (None: :data:`pndmkit.grids.S_FLOOR`).
    """

    family: str = "vp"
    t_min: float
    t_max: float
    t_start: float
    t_end: float
    continuous: bool = True
    default_grid: str | None = None
    s_floor: float | None = None

    @property
    def predictions(self) -> tuple[str, ...]:
        """The prediction types a network of this family may output (:data:`FAMILIES`)."""
        return FAMILIES[self.family]

    @abstractmethod
    def alpha(self, t: ArrayLike) -> FloatOrArray:
        r"""Signal scale :math:`\alpha(t)`."""

    @abstractmethod
    def sigma(self, t: ArrayLike) -> FloatOrArray:
        r"""Noise scale :math:`\sigma(t)`."""

    @abstractmethod
    def dalpha(self, t: ArrayLike) -> FloatOrArray:
        r"""Derivative :math:`\alpha'(t)`."""

    @abstractmethod
    def dsigma(self, t: ArrayLike) -> FloatOrArray:
        r"""Derivative :math:`\sigma'(t)`."""

    @abstractmethod
    def t_from_s(self, s: ArrayLike) -> FloatOrArray:
        """Inverse of :meth:`s`."""

    # -- derived quantities -------------------------------------------------------------------
    def s(self, t: ArrayLike) -> FloatOrArray:
        r"""Noise-to-signal ratio :math:`s = \sigma/\alpha`."""
        return _out(_arr(self.sigma(t)) / _arr(self.alpha(t)))

    def lam(self, t: ArrayLike) -> FloatOrArray:
        r"""Half log-SNR :math:`\lambda = \log(1/s)` (``+inf`` where ``s = 0``)."""
        with np.errstate(divide="ignore"):
            return _out(-np.log(_arr(self.s(t))))

    def t_from_lambda(self, lam: ArrayLike) -> FloatOrArray:
        """Inverse of :meth:`lam`."""
        return self.t_from_s(np.exp(-_arr(lam)))

    def scale(self, t: ArrayLike) -> FloatOrArray:
        r""":math:`\sqrt{\alpha^2 + \sigma^2}`: ``x / scale`` is the state of the VP schedule with the same ``s``
        (exactly 1 for VP schedules). Pure noise of this family at ``t`` is ``scale(t)`` times ``N(0, I)`` as
        ``s`` grows."""
        return _out(np.hypot(_arr(self.alpha(t)), _arr(self.sigma(t))))

    def prior_scale(self, t: float | None = None, data_std: float = 1.0) -> float:
        r"""The scale of a start from noise at ``t``: the standard deviation of ``x_t`` per entry,
        :math:`\sqrt{\alpha(t)^2 d^2 + \sigma(t)^2}`, for data of standard deviation ``d = data_std`` about 0.

        A sampler that starts from noise at ``t`` (default :attr:`t_start`) draws ``x_T = prior_scale(t) * z``
        with ``z ~ N(0, I)``: the Gaussian with the variance of the true marginal of ``x_t``, exact when the data
        are Gaussian too. It is diffusers' ``init_noise_sigma`` (EDM schedulers' ``sqrt(sigma_max^2 + 1)``) in
        the schedule's own variable ``x_t = alpha x0 + sigma eps``:

        * variance preserving (:class:`LinearVP`, :class:`CosineVP`, :class:`DiscreteVP`): exactly 1 at every
          ``t`` for ``data_std = 1`` (``alpha^2 + sigma^2 = 1``), so ``x_T`` is ``N(0, I)``;
        * :class:`EDM` / :class:`VE` (``alpha = 1``): ``sqrt(sigma^2 + data_std^2)``, 80.00625 at EDM's
          ``sigma_max = 80``; k-diffusion draws ``sigma_max * z``, a relative ``1 / (2 sigma_max^2)`` less;
        * :class:`FlowMatching`: ``sqrt((1 - t)^2 + t^2)``, 1 at ``t = 1`` (0.9990005 at the default ``t_max``
          0.999).

        The sum of squares is ``alpha^2 E[x0^2] + sigma^2`` for any data independent of the noise, so ``x_t``
        is never smaller than ``sigma(t)`` in root mean square (the bound :func:`pndmkit.sample` checks a start
        against, besides this scale).

        Parameters
        ----------
        t : float, optional
            Time in the schedule's units, inside ``[t_min, t_max]`` (default :attr:`t_start`).
        data_std : float
            Standard deviation of the data per entry, > 0 (1: data scaled to unit variance; EDM's
            ``sigma_data`` is 0.5).

        Returns
        -------
        float

        Raises
        ------
        TypeError, ValueError
            ``t`` or ``data_std`` not a finite real number, ``t`` outside the domain, ``data_std <= 0``.

        Examples
        --------
        >>> EDM().prior_scale(), LinearVP().prior_scale(0.3), round(FlowMatching().prior_scale(), 7)
        (80.00624975587844, 1.0, 0.9990005)
        """
        t = self.t_start if t is None else check_real(t, "t")
        self.check_time(t, "t")
        if check_real(data_std, "data_std") <= 0:
            raise ValueError(f"data_std must be > 0, got {data_std!r}")
        return self._prior_scale(t, float(data_std))

    def _prior_scale(self, t: float, data_std: float) -> float:
        return math.hypot(float(self.alpha(t)) * data_std, float(self.sigma(t)))

    def ode_coefficients(self, t: float) -> tuple[float, float]:
        r"""``(c_x, c_e)`` with the probability-flow ODE ``dx/dt = c_x x + c_e eps`` (Python floats).

        From ``x = alpha y`` and ``dy/ds = eps``: ``c_x = alpha'/alpha`` and ``c_e = alpha s' = sigma' - alpha' s``.

        Raises
        ------
        ValueError
            Where the right-hand side in ``t`` is singular (``abar = 1`` of a VP schedule).
        """
        a, da = float(self.alpha(t)), float(self.dalpha(t))
        sig, dsig = float(self.sigma(t)), float(self.dsigma(t))
        if a == 0.0:
            raise ValueError(f"the ODE right-hand side in t, as a function of eps, is singular at t={t} where "
                             f"alpha = 0; a flow model (prediction='flow') gives dx/dt there directly")
        return da / a, dsig - da * sig / a

    def check_time(self, t: ArrayLike, name: str = "t") -> None:
        """Raise ``ValueError`` naming ``name`` (and the first bad entry of an array) if a time is not
        finite or lies outside ``[t_min, t_max]``.

        The domain rule: every time that enters sampling (grids, ``t_start``/``t_end``, the times a run asks
        the model at, scheduler timesteps) is checked here first, and every schedule function of ``t``
        (``alpha``, ``sigma``, their derivatives, ``s``, ``lam``, ``scale``, and ``abar``, ``log_abar``,
        ``dlog_abar`` of a VP schedule) refuses a NaN ``t`` or one outside ``[t_min, t_max]`` beyond the rounding
        tolerance below by this check, rather than extrapolate its formula or table (``LinearVP().alpha(2.0)``,
        ``FlowMatching().alpha(1.5) = -0.5``). A time inside the domain costs one comparison per Python-float call
        and a min and a max per array call; this check runs only for a time that fails them. Maps with no meaning
        outside their interval refuse such input themselves (:meth:`FlowMatching.shift_time`, ``t_from_s`` of a
        negative ``s``).

        Parameters
        ----------
        t : float or array_like
            Time(s) in the schedule's own units.
        name : str
            The name the message gives ``t`` (``"t"``, ``"grid"``, ``"t_start"``, ...).

        Raises
        ------
        ValueError
            One line: ``name`` (with the index of the first bad entry of an array), its value, and the domain
            ``[t_min, t_max]`` with the schedule; a time within ``1e-9 * max(1, |t_max|)`` of the domain passes
            (rounding of grid arithmetic)."""
        arr = np.asarray(t, dtype=np.float64)
        tol = 1e-9 * max(1.0, abs(self.t_max))
        bad = ~np.isfinite(arr) | (arr < self.t_min - tol) | (arr > self.t_max + tol)
        if np.any(bad):
            where = f"{name}[{int(np.flatnonzero(bad)[0])}]" if arr.ndim else name
            value = float(arr.ravel()[np.flatnonzero(bad.ravel())[0]])
            what = "must be finite" if not math.isfinite(value) else (
                f"lies outside the domain [{self.t_min}, {self.t_max}] of {self!r}")
            raise ValueError(f"{where}={value!r} {what}")

    def _domain(self, t: ArrayLike) -> NDArray[np.float64]:
        """``t`` as a float64 array, refused by :meth:`check_time` where NaN or outside ``[t_min, t_max]``
        (beyond its rounding tolerance): one comparison for a Python float, a min and a max for an array."""
        if isinstance(t, (float, int)):  # the sampler's hot path: one Python float per call
            if not self.t_min <= t <= self.t_max:  # NaN fails it too
                self.check_time(t)
            return np.asarray(t, dtype=np.float64)
        arr = np.asarray(t, dtype=np.float64)
        if arr.size and not (arr.min() >= self.t_min and arr.max() <= self.t_max):
            self.check_time(arr)
        return arr

    # -- the VP description, defined for VP schedules only ------------------------------------
    def _not_vp(self, what: str) -> ValueError:
        return ValueError(f"{what} is the signal level alpha^2 of variance-preserving schedules; {self!r} is a "
                          f"{self.family!r} schedule: use alpha(t), sigma(t) and s(t)")

    def log_abar(self, t: ArrayLike) -> FloatOrArray:
        """Natural logarithm of ``abar(t)`` (VP schedules only)."""
        raise self._not_vp("abar")

    def dlog_abar(self, t: ArrayLike) -> FloatOrArray:
        """Derivative ``d log abar / dt`` (VP schedules only)."""
        raise self._not_vp("abar")

    def abar(self, t: ArrayLike) -> FloatOrArray:
        r"""Signal level :math:`\bar\alpha(t)` (VP schedules only)."""
        raise self._not_vp("abar")


def _check_t_end(t_end: float, t_min: float, t_max: float) -> float:
    t_end = check_real(t_end, "t_end")
    if not t_min <= t_end < t_max:
        raise ValueError(f"t_end must lie in [{t_min}, {t_max}), got {t_end!r}")
    return t_end


class VPSchedule(NoiseSchedule):
    r"""A variance-preserving schedule :math:`\bar\alpha(t)`, decreasing in ``t``: ``alpha = sqrt(abar)``,
    ``sigma = sqrt(1 - abar)``.

    Subclasses implement :meth:`log_abar`, :meth:`dlog_abar` and :meth:`t_from_log_abar`; everything else is
    derived from them without cancellation (``s = sqrt(expm1(-log abar))``).
    """

    family = "vp"

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

    def alpha(self, t: ArrayLike) -> FloatOrArray:
        r""":math:`\alpha = \sqrt{\bar\alpha}`."""
        return _out(np.exp(0.5 * _arr(self.log_abar(t))))

    def sigma(self, t: ArrayLike) -> FloatOrArray:
        r""":math:`\sigma = \sqrt{1 - \bar\alpha}`, computed without cancellation."""
        return _out(np.sqrt(-np.expm1(_arr(self.log_abar(t)))))

    def dalpha(self, t: ArrayLike) -> FloatOrArray:
        r""":math:`\alpha' = \alpha\,(\log\bar\alpha)'/2`."""
        return _out(_arr(self.alpha(t)) * 0.5 * _arr(self.dlog_abar(t)))

    def dsigma(self, t: ArrayLike) -> FloatOrArray:
        r""":math:`\sigma' = -\bar\alpha'/(2\sigma)` (infinite where ``abar = 1``)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return _out(-_arr(self.dabar(t)) / (2.0 * _arr(self.sigma(t))))

    def scale(self, t: ArrayLike) -> FloatOrArray:
        """Exactly 1: ``alpha^2 + sigma^2 = 1``."""
        return _out(np.ones_like(self._domain(t)))

    def _prior_scale(self, t: float, data_std: float) -> float:
        # sqrt(abar d^2 + 1 - abar) written so that unit data give exactly 1 (no rounding of abar + (1 - abar))
        return math.sqrt(1.0 + float(self.abar(t)) * (data_std * data_std - 1.0))

    def s(self, t: ArrayLike) -> FloatOrArray:
        r"""Noise-to-signal ratio :math:`s = \sqrt{(1-\bar\alpha)/\bar\alpha}`, computed without cancellation."""
        return s_from_log_abar(self.log_abar(t))

    def lam(self, t: ArrayLike) -> FloatOrArray:
        r"""Half log-SNR :math:`\lambda = \log(1/s)` (``+inf`` where ``abar = 1``)."""
        return lam_from_log_abar(self.log_abar(t))

    def ode_coefficients(self, t: float) -> tuple[float, float]:
        r"""``(c_x, c_e)`` of ``dx/dt = c_x x + c_e eps`` in the paper's form (PNDM eq. 6),
        :math:`\bar\alpha' (x / (2\bar\alpha) - \epsilon / (2\bar\alpha\sqrt{1-\bar\alpha}))`.

        Raises
        ------
        ValueError
            At ``abar = 1``, where the right-hand side in ``t`` is singular.
        """
        la, dla = float(self.log_abar(t)), float(self.dlog_abar(t))
        one_minus = -math.expm1(la)
        if one_minus <= 0:
            raise ValueError(f"the ODE right-hand side in t is singular at t={t} where abar = 1; end the grid earlier "
                             f"or use rhs='unit-difference'")
        return 0.5 * dla, -0.5 * dla / math.sqrt(one_minus)

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


class LinearVP(VPSchedule):
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
        t = self._domain(t)
        return _out(-(self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t * t))

    def dlog_abar(self, t: ArrayLike) -> FloatOrArray:
        t = self._domain(t)
        return _out(-(self.beta_min + (self.beta_max - self.beta_min) * t))

    def t_from_log_abar(self, log_abar: ArrayLike) -> FloatOrArray:
        la = np.asarray(log_abar, dtype=np.float64)
        d = self.beta_max - self.beta_min
        # root of d/2 t^2 + b0 t + la = 0 in the cancellation-free form
        return _out(-2.0 * la / (self.beta_min + np.sqrt(self.beta_min**2 - 2.0 * d * la)))


class CosineVP(VPSchedule):
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
        t = self._domain(t)
        # at most 0: np.log and math.log (of _log_f0) may round apart by 1e-19 at t = 0, where abar = 1 exactly
        return _out(np.minimum(2.0 * np.log(np.cos(self._angle(t))) - self._log_f0, 0.0))

    def dlog_abar(self, t: ArrayLike) -> FloatOrArray:
        t = self._domain(t)
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


class DiscreteVP(VPSchedule):
    r"""Discrete DDPM schedule from ``betas``, with a smooth extension to continuous time.

    ``abar_i = prod_{j <= i} (1 - beta_j)`` for ``i = 0..T-1``; time ``t = i`` is the training index
    (``alphas_cumprod[i]`` of diffusers). The extension is a C2 cubic spline of ``log abar`` through the
    knots ``i = -1..T-1`` with ``log abar(-1) = 0`` (``abar = 1``, the padded table of DDIM); it equals the
    table exactly at every integer index and defines the ODE, reference solutions and non-integer stage
    times.

    The C2 spline can overshoot on short tables whose betas grow fast relative to the index (``linear``
    with ``T <= 100``: ``log abar > 0``, so ``abar > 1`` and ``sigma`` undefined, between ``t = -1`` and
    ``0``). Where its ``log abar`` is not strictly decreasing on every piece, the extension is the
    monotone piecewise-cubic Hermite interpolant (PCHIP, Fritsch and Carlson 1980) through the same
    knots instead: still exact at every index, C1 rather than C2, with ``abar`` decreasing from 1.
    :attr:`extension` says which (``"cubic"`` or ``"pchip"``). On a C1 extension the second derivative of
    ``log abar`` jumps at the integer knots, which a convergence-order study with steps shorter than one
    index can see.

    The domain is ``[t_min, t_max] = [-1, T - 1]``, the knots: ``abar``, ``log_abar``, ``dlog_abar`` and the
    functions made from them (``alpha``, ``sigma``, ``s``, ...) raise ``ValueError`` naming ``t`` for a NaN
    ``t`` or one outside it beyond :meth:`check_time`'s rounding tolerance (the spline's extrapolation means
    nothing there); the check is one comparison per Python-float call.

    Parameters
    ----------
    betas : array_like
        Noise levels, each in (0, 1).

    Attributes
    ----------
    extension : {"cubic", "pchip"}
        The continuous extension of ``log abar`` between the integer indices: the C2 cubic spline, or the
        monotone PCHIP interpolant where the spline would not decrease.
    digest : str
        SHA-256 (64 hex digits) of ``betas`` as little-endian float64 bytes. A table the factories
        (:meth:`linear`, :meth:`quad`, :meth:`cosine`) did not make prints as
        ``DiscreteVP(betas=<sha256:first 16 digits>, T=...)``; a factory's table prints as the call that rebuilds
        it, with the arguments that differ from the defaults (:func:`schedule_key`).

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
        self._neg_table_log = -self._table_log  # increasing: what _invert searches
        self._knots = np.arange(-1.0, b.size)
        spline = CubicSpline(self._knots, self._table_log)
        self.extension = "cubic"
        if not _strictly_decreasing(spline):
            spline, self.extension = PchipInterpolator(self._knots, self._table_log), "pchip"
        self._spline = spline
        self._dspline = self._spline.derivative()
        # the knots as Python floats, and each piece's coefficients as Python floats once a root search reads that
        # piece (a list of all 1000 would cost more to make and to free than the schedule's arrays together)
        self._pieces = (self._knots.tolist(), self._spline.c.T, {})
        T = b.size
        self.num_train_timesteps = T
        self.t_min, self.t_max, self.t_start, self.t_end = -1.0, float(T - 1), float(T - 1), -1.0
        #: SHA-256 (hex) of the betas as little-endian float64 bytes: the table's identity in :meth:`__repr__`
        self.digest = hashlib.sha256(np.ascontiguousarray(b, dtype="<f8").tobytes()).hexdigest()
        #: the arguments of the factory (``linear``, ``quad``, ``cosine``) that made the table, or None
        self._factory: tuple[str, dict] | None = None

    def _made_by(self, factory: str, **args: float) -> "DiscreteVP":
        """Record that ``factory(**args)`` made this table (what :meth:`__repr__` and
        :func:`schedule_to_dict` say)."""
        self._factory = (factory, args)
        return self

    def __repr__(self) -> str:
        """Exact and distinct for distinct tables: ``DiscreteVP.linear(T=1000)`` for a factory's table, with every
        argument that differs from the factory's default (``DiscreteVP.linear(T=1000, beta_start=0.00085,
        beta_end=0.012)``, which rebuilds the same betas); any other table by the first 16 hex digits of
        :attr:`digest`, ``DiscreteVP(betas=<sha256:0123456789abcdef>, T=1000)``."""
        T = self.num_train_timesteps
        if self._factory is None:
            return f"DiscreteVP(betas=<sha256:{self.digest[:16]}>, T={T})"
        factory, args = self._factory
        defaults = inspect.signature(getattr(DiscreteVP, factory)).parameters
        shown = "".join(f", {k}={v!r}" for k, v in args.items() if v != defaults[k].default)
        return f"DiscreteVP.{factory}(T={T}{shown})"

    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "DiscreteVP":
        """DDPM linear schedule: ``betas = linspace(beta_start, beta_end, T)``."""
        T, beta_start, beta_end = _table_args(T, beta_start, beta_end)
        return cls(np.linspace(beta_start, beta_end, T), name="linear")._made_by(
            "linear", beta_start=beta_start, beta_end=beta_end)

    @classmethod
    def quad(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "DiscreteVP":
        """Quadratic ("scaled linear") schedule: ``betas = linspace(sqrt(beta_start), sqrt(beta_end), T) ** 2``."""
        T, beta_start, beta_end = _table_args(T, beta_start, beta_end)
        return cls(np.linspace(beta_start**0.5, beta_end**0.5, T) ** 2, name="quad")._made_by(
            "quad", beta_start=beta_start, beta_end=beta_end)

    @classmethod
    def cosine(cls, T: int = 1000, s0: float = 0.008, max_beta: float = 0.999) -> "DiscreteVP":
        """Improved-DDPM cosine schedule, ``beta_i = min(1 - abar((i+1)/T) / abar(i/T), max_beta)``."""
        T, s0, max_beta = check_int(T, "T", 2), check_real(s0, "s0"), check_real(max_beta, "max_beta")
        f = np.cos((np.arange(T + 1) / T + s0) / (1 + s0) * np.pi / 2) ** 2
        return cls(np.minimum(1 - f[1:] / f[:-1], max_beta), name="cosine")._made_by("cosine", s0=s0, max_beta=max_beta)

    def _lookup(self, t: ArrayLike, table: NDArray[np.float64], between: Callable) -> FloatOrArray:
        """The table at integer ``t``, ``between`` (the extension) elsewhere; a ``t`` outside ``[-1, T - 1]``
        (beyond :meth:`check_time`'s rounding tolerance) or NaN is refused, since the spline's extrapolation
        has no meaning there (one comparison on the scalar path, a min and max on the array one)."""
        if isinstance(t, (float, int)):  # the sampler's hot path: one Python float per call
            if float(t).is_integer() and -1 <= t <= self.t_max:
                return float(table[int(t) + 1])
            if not -1.0 <= t <= self.t_max:  # NaN fails it too
                self.check_time(t)
            return float(between(float(t)))
        t = np.asarray(t, dtype=np.float64)
        ti = np.rint(t)
        exact = (t == ti) & (ti >= -1) & (ti <= self.t_max)
        if np.ndim(t) == 0:
            if exact:
                return float(table[int(ti) + 1])
            self.check_time(t)
            return float(between(t))
        if exact.all():  # a grid of training timesteps: the table alone, no spline call
            return table[ti.astype(np.int64) + 1]
        if t.size and not (t.min() >= -1.0 and t.max() <= self.t_max):  # NaN fails it too
            self.check_time(t)
        out = np.asarray(between(t), dtype=np.float64)
        out[exact] = table[ti[exact].astype(np.int64) + 1]
        return out

    def log_abar(self, t: ArrayLike) -> FloatOrArray:
        return self._lookup(t, self._table_log, self._spline)

    def abar(self, t: ArrayLike) -> FloatOrArray:
        """``alphas_cumprod[t]`` exactly at integer ``t`` (1 at ``t = -1``), the spline in between."""
        return self._lookup(t, self._table, lambda u: np.exp(self._spline(u)))

    def dlog_abar(self, t: ArrayLike) -> FloatOrArray:
        if isinstance(t, (float, int)):
            if not -1.0 <= t <= self.t_max:  # as _lookup: no extrapolated derivative
                self.check_time(t)
            return float(self._dspline(float(t)))
        t = np.asarray(t, dtype=np.float64)
        if t.size and not (t.min() >= -1.0 and t.max() <= self.t_max):
            self.check_time(t)
        return _out(np.asarray(self._dspline(t)))

    def t_from_log_abar(self, log_abar: ArrayLike) -> FloatOrArray:
        la = np.asarray(log_abar, dtype=np.float64)
        lo, hi = self._table_log[-1], 0.0
        if la.ndim == 0:  # one value (a stage time of a plan): no array round trip
            value = float(la)
            if value > hi or value < lo:
                raise ValueError(f"log abar={log_abar!r} is outside the schedule's range [{lo}, {hi}]")
            return self._invert(value)
        if np.any(la > hi) or np.any(la < lo):
            raise ValueError(f"log abar={log_abar!r} is outside the schedule's range [{lo}, {hi}]")
        flat = [self._invert(float(v)) for v in la.ravel()]
        return _out(np.asarray(flat, dtype=np.float64).reshape(la.shape))

    def _invert(self, la: float) -> float:
        k = int(np.searchsorted(self._neg_table_log, -la))  # knots are decreasing in value
        if k < len(self._knots) and self._table_log[k] == la:
            return float(self._knots[k])
        lo, hi = self._knots[max(k - 1, 0)], self._knots[min(k, len(self._knots) - 1)]
        return float(brentq(self._log_abar_minus, lo, hi, args=(la,), xtol=1e-13, rtol=1e-15))

    def _log_abar_minus(self, x: float, la: float) -> float:
        """``spline(x) - la`` for one float, in plain Python: the same sum, term by term, as the spline's own
        evaluation (so the same floats), without the overhead of an array call at every root-finding step."""
        knots, coeffs, read = self._pieces
        i = min(max(bisect.bisect_right(knots, x) - 1, 0), len(coeffs) - 1)
        c = read.get(i)
        if c is None:
            c = read[i] = coeffs[i].tolist()
        s = x - knots[i]
        return _power_sum(c, s) - la


def _strictly_decreasing(poly: CubicSpline) -> bool:
    """Whether a piecewise cubic (scipy's local power basis on unit pieces) has a negative derivative on
    every closed piece: the largest derivative of each piece, at its two ends or at an interior vertex of the
    quadratic, is below 0."""
    c = poly.c  # (4, pieces): c[0] s^3 + c[1] s^2 + c[2] s + c[3], s = t - knot in [0, width]
    width = np.diff(poly.x)
    a, b, d0 = 3.0 * c[0], 2.0 * c[1], c[2]
    d1 = a * width**2 + b * width + d0
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(a < 0, -b / (2.0 * a), -1.0)
    inside = (vertex > 0) & (vertex < width)
    dv = np.where(inside, a * vertex**2 + b * vertex + d0, -np.inf)
    return bool(np.all(np.maximum(np.maximum(d0, d1), dv) < 0))


def _power_sum(c: list, s: float) -> float:
    """``sum_k c[3 - k] s^k`` accumulated as scipy's piecewise-polynomial evaluation does."""
    res, z = 0.0, 1.0
    for kp in range(4):
        res = res + c[3 - kp] * z
        z *= s
    return res


def _function_name(f: Callable) -> str:
    return getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or type(f).__name__


#: id of a function object -> (a weak reference to it, or the object where it takes none; its random token)
_FUNCTION_TOKENS: dict[int, tuple] = {}
_FUNCTION_TOKENS_LOCK = threading.Lock()


def _function_token(f: Callable) -> str:
    """A random token naming the function *object* ``f`` while it lives: the same object always gets the same
    token, another object (an equal formula written again, or a new object at a reused address) another one,
    in this process or any other. Functions cannot be compared, so their identity is the object, as in
    :func:`same_schedule`."""
    key = id(f)
    with _FUNCTION_TOKENS_LOCK:
        held = _FUNCTION_TOKENS.get(key)
        if held is not None:
            ref, token = held
            if (ref() if isinstance(ref, weakref.ref) else ref) is f:
                return token
        token = uuid.uuid4().hex[:16]
        try:  # forget the token when f dies, before its address can be reused
            ref = weakref.ref(f, lambda _, k=key: _FUNCTION_TOKENS.pop(k, None))
        except TypeError:  # no weak references (numpy ufuncs, builtins): keep the object, which lives on anyway
            ref = f
        _FUNCTION_TOKENS[key] = (ref, token)
        return token


def _unit_interval(t: ArrayLike, name: str) -> NDArray[np.float64]:
    """``t`` as a float64 array, or ``ValueError`` naming ``name`` if an entry is outside ``[0, 1]``."""
    arr = _arr(t)
    bad = ~((arr >= 0.0) & (arr <= 1.0))
    if np.any(bad):
        value = float(arr.ravel()[np.flatnonzero(bad.ravel())[0]])
        raise ValueError(f"{name}={value!r} lies outside [0, 1], the domain of the flow-matching time shift")
    return arr


def _positive(value: float, name: str) -> float:
    value = check_real(value, name)
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def _nonnegative_s(s: ArrayLike) -> NDArray[np.float64]:
    s = _arr(s)
    if np.any(~(s >= 0)):
        raise ValueError(f"s must be >= 0, got {s!r}")
    return s


class EDM(NoiseSchedule):
    r"""Variance-exploding schedule of EDM (Karras et al. 2022, arXiv 2206.00364): ``alpha = 1``, ``sigma = t``.

    Time *is* the noise level, so ``s = sigma = t`` and ``y = x``. The domain is ``[0, sigma_max]``; the
    default grid is ``karras`` (``rho = 7``) from ``sigma_max`` to ``sigma_min`` followed by one step to
    ``sigma = 0``, EDM's own sampling grid.

    Parameters
    ----------
    sigma_min : float
        Lowest positive noise level of the grids that end at ``sigma = 0`` (``karras``, ``logsnr``), > 0.
    sigma_max : float
        Noise level of the start, > ``sigma_min``.

    Examples
    --------
    >>> sched = EDM()
    >>> float(sched.alpha(12.0)), float(sched.sigma(12.0)), float(sched.t_from_s(0.5))
    (1.0, 12.0, 0.5)
    """

    family = "ve"
    default_grid = "karras"

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0) -> None:
        sigma_min = _positive(sigma_min, "sigma_min")
        sigma_max = check_real(sigma_max, "sigma_max")
        if not sigma_max > sigma_min:
            raise ValueError(f"sigma_max must be > sigma_min={sigma_min}, got sigma_max={sigma_max!r}")
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self.s_floor = sigma_min
        self.t_min, self.t_max, self.t_start, self.t_end = 0.0, sigma_max, sigma_max, 0.0

    def __repr__(self) -> str:
        return f"EDM(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"

    def alpha(self, t: ArrayLike) -> FloatOrArray:
        return _out(np.ones_like(self._domain(t)))

    def sigma(self, t: ArrayLike) -> FloatOrArray:
        return _out(self._domain(t) + 0.0)

    def dalpha(self, t: ArrayLike) -> FloatOrArray:
        return _out(np.zeros_like(self._domain(t)))

    def dsigma(self, t: ArrayLike) -> FloatOrArray:
        return _out(np.ones_like(self._domain(t)))

    def s(self, t: ArrayLike) -> FloatOrArray:
        """``s = sigma = t``."""
        return _out(self._domain(t) + 0.0)

    def t_from_s(self, s: ArrayLike) -> FloatOrArray:
        return _out(_nonnegative_s(s) + 0.0)


class VE(NoiseSchedule):
    r"""Variance-exploding schedule of score-SDE (Song et al. 2021): ``alpha = 1``,
    :math:`\sigma(t) = \sigma_{min} (\sigma_{max}/\sigma_{min})^t`, ``t`` in ``[0, 1]``.

    ``sigma`` never reaches 0: the data end ``t = 0`` has ``s = sigma_min``.

    Parameters
    ----------
    sigma_min, sigma_max : float
        ``0 < sigma_min < sigma_max`` (0.01 and 50 for CIFAR-10 in score-SDE).
    """

    family = "ve"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0) -> None:
        sigma_min = _positive(sigma_min, "sigma_min")
        sigma_max = check_real(sigma_max, "sigma_max")
        if not sigma_max > sigma_min:
            raise ValueError(f"sigma_max must be > sigma_min={sigma_min}, got sigma_max={sigma_max!r}")
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self._log_ratio = math.log(sigma_max / sigma_min)
        self.t_min, self.t_max, self.t_start, self.t_end = 0.0, 1.0, 1.0, 0.0

    def __repr__(self) -> str:
        return f"VE(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"

    def alpha(self, t: ArrayLike) -> FloatOrArray:
        return _out(np.ones_like(self._domain(t)))

    def sigma(self, t: ArrayLike) -> FloatOrArray:
        return _out(self.sigma_min * np.exp(self._log_ratio * self._domain(t)))

    def dalpha(self, t: ArrayLike) -> FloatOrArray:
        return _out(np.zeros_like(self._domain(t)))

    def dsigma(self, t: ArrayLike) -> FloatOrArray:
        return _out(self._log_ratio * _arr(self.sigma(t)))

    def s(self, t: ArrayLike) -> FloatOrArray:
        """``s = sigma``."""
        return self.sigma(t)

    def lam(self, t: ArrayLike) -> FloatOrArray:
        """``lambda = -log sigma(t)`` in closed form (a ``t`` outside ``[0, 1]`` is refused, as
        :meth:`NoiseSchedule.check_time` describes)."""
        return _out(-(math.log(self.sigma_min) + self._log_ratio * self._domain(t)))

    def t_from_s(self, s: ArrayLike) -> FloatOrArray:
        s = _arr(s)
        if np.any(~(s > 0)):
            raise ValueError(f"s must be > 0 for {self!r} (sigma never reaches 0), got {s!r}")
        return _out(np.log(s / self.sigma_min) / self._log_ratio)

    def t_from_lambda(self, lam: ArrayLike) -> FloatOrArray:
        return _out((-_arr(lam) - math.log(self.sigma_min)) / self._log_ratio)


class FlowMatching(NoiseSchedule):
    r"""Rectified flow / flow matching: ``x_t = (1 - t) x0 + t eps``, so ``alpha = 1 - t``, ``sigma = t``.

    ``t`` is the network's own time (``sigma``; diffusers' ``FlowMatchEulerDiscreteScheduler`` gives the network
    ``1000 t``), so a velocity network's output ``u = eps - x0`` is ``dx_t/dt`` (``prediction="flow"``). The
    resolution-dependent *time shift* of recent flow models, ``t -> shift t / (1 + (shift - 1) t)``, moves the
    sampling times and leaves the process unchanged: it is applied by the default grid kind ``"shifted"``
    (equal steps in the unshifted time, each mapped by :meth:`shift_time`), as diffusers' ``shift`` does.

    Parameters
    ----------
    shift : float
        Time shift, > 0 (1: none; 3 for Stable Diffusion 3).
    t_max : float
        Largest time, in (0, 1]. At ``t = 1`` (where flow-matching pipelines start, ``sigma = 1``) the signal
        ``alpha`` vanishes and ``s = t / (1 - t)`` is infinite: a sampler can start there only in variables
        that stay finite, a ``prediction="flow"`` model with a method whose transfer consumes ``dx/dt``
        (``euler``) or ``x0 = x - t u`` (``ddim`` and the data-prediction methods; see
        :meth:`pndmkit.transfers.Transfer.gradient_of`).
    t_end : float
        Default end time (0: the data, ``s = 0``).

    Examples
    --------
    >>> fm = FlowMatching(shift=3.0)
    >>> float(fm.shift_time(0.5)), float(fm.unshift_time(0.75))
    (0.75, 0.5)
    >>> float(fm.sigma(0.75))        # the shift is not part of the process
    0.75
    """

    family = "flow"
    default_grid = "shifted"

    def __init__(self, shift: float = 1.0, t_max: float = 0.999, t_end: float = 0.0) -> None:
        self.shift = _positive(shift, "shift")
        t_max = check_real(t_max, "t_max")
        if not 0 < t_max <= 1:
            raise ValueError(f"t_max must lie in (0, 1] (alpha = 1 - t must not be negative), got {t_max!r}")
        self.t_min, self.t_max, self.t_start, self.t_end = 0.0, t_max, t_max, _check_t_end(t_end, 0.0, t_max)

    def __repr__(self) -> str:
        return f"FlowMatching(shift={self.shift}, t_max={self.t_max})"

    def shift_time(self, t: ArrayLike) -> FloatOrArray:
        """The shifted time ``shift t / (1 + (shift - 1) t)`` (the identity for ``shift = 1``), a map of
        ``[0, 1]`` onto itself.

        Raises
        ------
        ValueError
            A time outside ``[0, 1]`` (or not finite), where the map is not a time shift.
        """
        t = _unit_interval(t, "t")
        return _out(self.shift * t / (1.0 + (self.shift - 1.0) * t))

    def unshift_time(self, t: ArrayLike) -> FloatOrArray:
        """Inverse of :meth:`shift_time`: ``t / (shift - (shift - 1) t)``, on ``[0, 1]`` (``ValueError`` outside)."""
        t = _unit_interval(t, "t")
        return _out(t / (self.shift - (self.shift - 1.0) * t))

    def alpha(self, t: ArrayLike) -> FloatOrArray:
        return _out(1.0 - self._domain(t))

    def sigma(self, t: ArrayLike) -> FloatOrArray:
        return _out(self._domain(t) + 0.0)

    def dalpha(self, t: ArrayLike) -> FloatOrArray:
        return _out(-np.ones_like(self._domain(t)))

    def dsigma(self, t: ArrayLike) -> FloatOrArray:
        return _out(np.ones_like(self._domain(t)))

    def s(self, t: ArrayLike) -> FloatOrArray:
        """``s = t / (1 - t)`` (``+inf`` at ``t = 1``)."""
        t = self._domain(t)
        with np.errstate(divide="ignore"):
            return _out(t / (1.0 - t))

    def t_from_s(self, s: ArrayLike) -> FloatOrArray:
        """``t = s / (1 + s)`` (``t = 1`` for ``s = inf``)."""
        s = _nonnegative_s(s)
        with np.errstate(invalid="ignore"):
            return _out(np.where(np.isinf(s), 1.0, s / (1.0 + s)))


class CustomSchedule(NoiseSchedule):
    r"""A schedule given by two functions ``alpha(t)`` and ``sigma(t)`` on ``[t_min, t_max]``.

    Checked on construction at ``probes`` equally spaced times: ``alpha > 0`` everywhere, ``sigma > 0``
    except possibly at ``t_min`` (the data end may have ``s = 0``), and ``s = sigma / alpha`` strictly
    increasing, as every sampler assumes. ``t_from_s`` is found by root bracketing; the derivatives are
    central differences unless given.

    Parameters
    ----------
    alpha, sigma : callable
        Vectorised functions of ``t`` (numpy arrays in, arrays out).
    t_min, t_max : float
        Domain, ``t_min < t_max``; the defaults of sampling are ``t_start = t_max``, ``t_end = t_min``.
    dalpha, dsigma : callable, optional
        Exact derivatives (for the classical ODE right-hand side and ``prediction="flow"``).
    probes : int
        Number of check points (1001).

    Raises
    ------
    ValueError
        ``alpha`` or ``sigma`` not positive where it must be, ``s`` not strictly increasing, a function that does
        not return a real array shaped like ``t`` (a scalar is read as a constant), or ``dalpha``/``dsigma`` that
        disagree with central differences of ``alpha``/``sigma`` (the message names the function and the first
        time that breaks the rule).

    Examples
    --------
    >>> import numpy as np
    >>> sched = CustomSchedule(lambda t: np.cos(t), lambda t: np.sin(t), 0.0, 1.5)
    >>> round(float(sched.s(0.5)), 12) == round(float(np.tan(0.5)), 12)
    True
    >>> CustomSchedule(lambda t: 1 - t, lambda t: t, 0.0, 1.0)
    Traceback (most recent call last):
        ...
    ValueError: alpha must be > 0 on [t_min, t_max] = [0.0, 1.0]; alpha(1.0) = 0.0
    """

    family = "custom"

    def __init__(self, alpha: Callable[[ArrayLike], ArrayLike], sigma: Callable[[ArrayLike], ArrayLike],
                 t_min: float, t_max: float, *, dalpha: Callable[[ArrayLike], ArrayLike] | None = None,
                 dsigma: Callable[[ArrayLike], ArrayLike] | None = None, probes: int = 1001) -> None:
        for name, f in (("alpha", alpha), ("sigma", sigma), ("dalpha", dalpha), ("dsigma", dsigma)):
            if f is not None and not callable(f):
                raise TypeError(f"{name} must be a function of t, got {type(f).__name__}")
        t_min, t_max = check_real(t_min, "t_min"), check_real(t_max, "t_max")
        if not t_min < t_max:
            raise ValueError(f"need t_min < t_max, got t_min={t_min}, t_max={t_max}")
        self._alpha, self._sigma, self._dalpha, self._dsigma = alpha, sigma, dalpha, dsigma
        self.t_min, self.t_max, self.t_start, self.t_end = t_min, t_max, t_max, t_min
        self._check(np.linspace(t_min, t_max, check_int(probes, "probes", 3)))

    def __repr__(self) -> str:
        """The functions by name and the domain, ``CustomSchedule(alpha=cos, sigma=sin, t_min=0.0, t_max=1.5)``:
        for people. Functions cannot be compared, so this is no identity (two lambdas print alike);
        :func:`schedule_key` is one."""
        named = "".join(f"{k}={_function_name(f)}, " for k, f in (("alpha", self._alpha), ("sigma", self._sigma),
                                                                   ("dalpha", self._dalpha), ("dsigma", self._dsigma))
                        if f is not None)
        return f"CustomSchedule({named}t_min={self.t_min}, t_max={self.t_max})"

    def _check(self, t: NDArray[np.float64]) -> None:
        a, sig = self.alpha(t), self.sigma(t)
        domain = f"[t_min, t_max] = [{self.t_min}, {self.t_max}]"
        for name, values, bad in (("alpha", a, ~(a > 0)), ("sigma", sig, ~(sig >= 0)),
                                  ("sigma", sig, ~(sig > 0) & (t > self.t_min))):
            if np.any(bad):
                i = int(np.flatnonzero(bad)[0])
                where = "" if name == "alpha" else " (0 allowed at t_min only)"
                raise ValueError(f"{name} must be > 0 on {domain}{where}; {name}({float(t[i])!r}) = {float(values[i])!r}")
        s = sig / a
        down = np.flatnonzero(~(np.diff(s) > 0))
        if down.size:
            i = int(down[0])
            raise ValueError(f"s = sigma / alpha must increase strictly in t on {domain}; s({float(t[i])!r}) = "
                             f"{float(s[i])!r} >= s({float(t[i + 1])!r}) = {float(s[i + 1])!r}")
        # given derivatives must be the derivatives: compare with central differences inside the domain
        for name, exact, f in (("dalpha", self._dalpha, self.alpha), ("dsigma", self._dsigma, self.sigma)):
            if exact is None:
                continue
            inner = t[1:-1]
            given = self._evaluate(exact, inner, name)
            numeric = self._derivative(f, inner)
            scale = np.maximum(np.abs(numeric), np.max(np.abs(numeric)) + 1e-12)
            off = np.abs(given - numeric) > 1e-4 * scale + 1e-8
            if np.any(off):
                i = int(np.flatnonzero(off)[0])
                raise ValueError(f"{name} is not the derivative of {name[1:]}: {name}({float(inner[i])!r}) = "
                                 f"{float(given[i])!r}, but a central difference gives {float(numeric[i])!r}")

    def _evaluate(self, f: Callable[[ArrayLike], ArrayLike], t: ArrayLike, name: str) -> NDArray[np.float64]:
        """``f(t)`` as a real float64 array of ``t``'s shape (a scalar result is a constant function)."""
        t = _arr(t)
        value = np.asarray(f(t))
        if np.iscomplexobj(value):
            raise ValueError(f"{name} must return real values; {name}(t) returned {value.dtype}")
        if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)
                or value.dtype == bool):
            raise ValueError(f"{name} must return numbers, got an array of dtype {value.dtype}")
        if value.shape != t.shape:
            if value.ndim != 0:
                raise ValueError(f"{name} must return an array shaped like its argument t (shape {t.shape}), got "
                                 f"shape {value.shape}: write it with numpy operations on t")
            value = np.full(t.shape, value)
        return value.astype(np.float64)

    def alpha(self, t: ArrayLike) -> FloatOrArray:
        return _out(self._evaluate(self._alpha, self._domain(t), "alpha"))

    def sigma(self, t: ArrayLike) -> FloatOrArray:
        return _out(self._evaluate(self._sigma, self._domain(t), "sigma"))

    def _derivative(self, f: Callable[[ArrayLike], FloatOrArray], t: ArrayLike) -> FloatOrArray:
        t = _arr(t)
        h = 1e-6 * (self.t_max - self.t_min)
        lo, hi = np.maximum(t - h, self.t_min), np.minimum(t + h, self.t_max)
        return _out((_arr(f(hi)) - _arr(f(lo))) / (hi - lo))

    def dalpha(self, t: ArrayLike) -> FloatOrArray:
        t = self._domain(t)
        return _out(self._evaluate(self._dalpha, t, "dalpha")) if self._dalpha else self._derivative(self.alpha, t)

    def dsigma(self, t: ArrayLike) -> FloatOrArray:
        t = self._domain(t)
        return _out(self._evaluate(self._dsigma, t, "dsigma")) if self._dsigma else self._derivative(self.sigma, t)

    def t_from_s(self, s: ArrayLike) -> FloatOrArray:
        s = _nonnegative_s(s)
        lo, hi = float(self.s(self.t_min)), float(self.s(self.t_max))
        if np.any((s < lo) | (s > hi)):
            raise ValueError(f"s={s!r} is outside the schedule's range [{lo}, {hi}]")

        def invert(v: float) -> float:
            if v == lo:
                return self.t_min
            if v == hi:
                return self.t_max
            return float(brentq(lambda t: float(self.s(t)) - v, self.t_min, self.t_max, xtol=1e-14, rtol=1e-15))

        return _out(np.asarray([invert(float(v)) for v in s.ravel()], dtype=np.float64).reshape(s.shape))


def lam_from_log_abar(log_abar: ArrayLike) -> FloatOrArray:
    r"""Half log-SNR :math:`\lambda = -\log(\mathrm{expm1}(-\log\bar\alpha))/2` of a VP schedule from
    :math:`\log\bar\alpha`: what :meth:`VPSchedule.lam` computes, for a caller that has ``log abar`` already
    (:func:`grid_log_abar`).

    Parameters
    ----------
    log_abar : float or array_like
        :math:`\log\bar\alpha \le 0` (float64).

    Returns
    -------
    float or numpy.ndarray
        ``lambda`` (float64, the input's shape; a float for a scalar), ``+inf`` where ``abar = 1``.
    """
    la = np.asarray(log_abar, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return _out(-0.5 * np.log(np.expm1(-la)))


def s_from_log_abar(log_abar: ArrayLike) -> FloatOrArray:
    r"""Noise-to-signal ratio :math:`s = \sigma/\alpha = \sqrt{(1 - \bar\alpha)/\bar\alpha}
    = \sqrt{\mathrm{expm1}(-\log\bar\alpha)}` of a VP schedule from :math:`\log\bar\alpha`, as
    :meth:`VPSchedule.s` computes it: :func:`lam_from_log_abar`'s counterpart (``s = exp(-lambda)``), for a caller
    that has ``log abar`` already (:func:`grid_log_abar`).

    Parameters
    ----------
    log_abar : float or array_like
        :math:`\log\bar\alpha \le 0` (float64).

    Returns
    -------
    float or numpy.ndarray
        ``s`` (float64, the input's shape; a float for a scalar), 0 where ``abar = 1``. Nothing is checked: a
        positive ``log_abar`` (``abar > 1``, no VP level) gives NaN, with numpy's invalid-value warning.
    """
    return _out(np.sqrt(np.expm1(-np.asarray(log_abar, dtype=np.float64))))


def grid_log_abar(schedule: VPSchedule, times: Sequence[float]) -> tuple[float, ...]:
    """``schedule.log_abar`` at every time of ``times``, from one call on the whole array.

    The most recent grids of each schedule object are remembered (64 in all): a plan reads ``log abar`` on its
    grid for the transfer's coefficients, for the data prediction's coefficients and for ``lambda``, and
    evaluates it once. An unhashable schedule is evaluated at each call.

    Parameters
    ----------
    schedule : VPSchedule
        The schedule (a new object is a new evaluation).
    times : sequence of float
        Times in the schedule's own units.

    Returns
    -------
    tuple of float
        ``log abar`` at each time, in order (the floats of ``schedule.log_abar`` on the array of ``times``).
    """
    times = tuple(float(t) for t in times)
    try:
        return _grid_log_abar(schedule, times)
    except TypeError:  # an unhashable schedule
        return _grid_log_abar.__wrapped__(schedule, times)


@lru_cache(maxsize=64)
def _grid_log_abar(schedule: VPSchedule, times: tuple) -> tuple[float, ...]:
    return tuple(np.reshape(schedule.log_abar(np.asarray(times, dtype=np.float64)), -1).tolist())


def levels_from_s(s: float) -> tuple[float, float]:
    """The VP levels ``(abar, 1 - abar)`` of the noise-to-signal ratio ``s``: ``abar = 1 / (1 + s^2)``.

    Both are computed without cancellation (``1 - abar`` is ``s^2 / (1 + s^2)``, not a difference).

    >>> levels_from_s(1.0)
    (0.5, 0.5)
    """
    q = 1.0 + s * s
    return 1.0 / q, (s * s) / q


# --------------------------------------------------------------------------------------------------------------
# The catalogue: schedules by name, and their JSON form. A new schedule is one class above and one entry here.
# --------------------------------------------------------------------------------------------------------------

#: every named schedule, by the name the command line, the studies and saved files use
SCHEDULES: dict[str, Callable[[], NoiseSchedule]] = {
    "linear-vp": LinearVP,
    "cosine-vp": CosineVP,
    "ddpm-linear": DiscreteVP.linear,
    "ddpm-quad": DiscreteVP.quad,
    "ddpm-cosine": DiscreteVP.cosine,
    "edm": EDM,
    "ve": VE,
    "flow": FlowMatching,
}

#: older spellings still read (saved compare results name the DDPM table ``discrete-linear``)
SCHEDULE_ALIASES = {"discrete-linear": "ddpm-linear"}


def same_schedule(a: NoiseSchedule, b: NoiseSchedule) -> bool:
    """Whether two schedules describe the same noising process ``x_t = alpha(t) x0 + sigma(t) eps`` in the same
    time variable, so that a method built on one runs correctly on the grids of the other.

    The one comparison of every entry point that takes a built method together with a schedule
    (:func:`pndmkit.sample`, the diffusers scheduler, :mod:`pndmkit.testing`, the audit). Equal schedules built
    separately are the same (two ``DiscreteVP.linear()``); settings that move default grids only are ignored
    (``t_end``, and the time shift of :class:`FlowMatching`, which leaves the process unchanged). A
    :class:`DiscreteVP` is compared by its betas, a :class:`CustomSchedule` by its functions (the same objects:
    two equal formulas written separately are different schedules, as functions cannot be compared) and domain,
    any other schedule by :func:`schedule_key` (its type and exact ``repr``).

    Examples
    --------
    >>> same_schedule(DiscreteVP.linear(), DiscreteVP.linear()), same_schedule(DiscreteVP.linear(), DiscreteVP.cosine())
    (True, False)
    >>> same_schedule(FlowMatching(shift=3.0), FlowMatching()), same_schedule(EDM(), EDM(sigma_max=10.0))
    (True, False)
    """
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, DiscreteVP):
        return bool(np.array_equal(a.betas, b.betas))
    if isinstance(a, FlowMatching):
        return a.t_max == b.t_max
    if isinstance(a, CustomSchedule):
        own = (a._alpha, a._sigma, a._dalpha, a._dsigma)
        other = (b._alpha, b._sigma, b._dalpha, b._dsigma)  # type: ignore[attr-defined]
        return all(f is g for f, g in zip(own, other)) and (a.t_min, a.t_max) == (b.t_min, b.t_max)
    return schedule_key(a) == schedule_key(b)


#: the schedule classes whose ``repr`` shows every parameter of the process exactly (floats by ``repr``)
_EXACT_REPR = (LinearVP, CosineVP, DiscreteVP, EDM, VE, FlowMatching)


def schedule_key(schedule: NoiseSchedule) -> str:
    """The exact identity of a schedule, as a string: equal keys mean the same process in the same time variable.

    What tells schedules apart wherever a string must: the key of a network's cached reference
    (:func:`pndmkit.studies.real.model_study`) and :attr:`pndmkit.studies.grid_opt.OptimizedGrid.schedule`, which
    :func:`pndmkit.studies.grid_opt.evaluate` checks. Every argument that sets the process is in it:

    * a built-in schedule: its ``repr``, which shows each parameter, floats exactly (``EDM(sigma_min=0.002,
      sigma_max=80.0)``); a :class:`DiscreteVP` made by a factory shows the arguments that differ from the
      factory's defaults (``DiscreteVP.linear(T=1000)``, ``DiscreteVP.linear(T=1000, beta_start=0.00085,
      beta_end=0.012)``), any other table the SHA-256 of its betas (``DiscreteVP(betas=<sha256:...>, T=1000)``,
      a 64-bit prefix);
    * a :class:`CustomSchedule`: the domain and a random token per function *object*, the notion of
      :func:`same_schedule` (the same function objects match; an equal formula written again does not, and no
      key is shared with another process, so such a key is never kept on disk);
    * a schedule class of your own: its module, qualified name and ``repr`` (make the ``repr`` show every
      parameter).

    The default schedules keep the key they had when the key was the ``repr`` (``DiscreteVP.linear(T=1000)``),
    so caches written then are still found; non-default tables, whose ``repr`` once left their betas out, now
    have keys of their own.

    Parameters
    ----------
    schedule : NoiseSchedule
        Any schedule.

    Returns
    -------
    str
        The key (settings that move default grids only, ``t_end``, are not in it; a :class:`FlowMatching`
        shift is).

    Raises
    ------
    TypeError
        ``schedule`` is not a :class:`NoiseSchedule`.

    Examples
    --------
    >>> schedule_key(DiscreteVP.linear())
    'DiscreteVP.linear(T=1000)'
    >>> schedule_key(DiscreteVP.linear(beta_start=0.00085, beta_end=0.012))
    'DiscreteVP.linear(T=1000, beta_start=0.00085, beta_end=0.012)'
    """
    if type(schedule) in _EXACT_REPR:
        return repr(schedule)
    if isinstance(schedule, CustomSchedule):
        functions = "".join(f"{k}={_function_name(f)}@{_function_token(f)}, " for k, f in (
            ("alpha", schedule._alpha), ("sigma", schedule._sigma), ("dalpha", schedule._dalpha),
            ("dsigma", schedule._dsigma)) if f is not None)
        return f"CustomSchedule({functions}t_min={schedule.t_min!r}, t_max={schedule.t_max!r})"
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__} {schedule!r}")
    kind = type(schedule)
    return f"{kind.__module__}.{kind.__qualname__}:{schedule!r}"


def get_schedule(name: str) -> NoiseSchedule:
    """The default schedule of a catalogue name (:data:`SCHEDULES`, or an alias in :data:`SCHEDULE_ALIASES`).

    Raises
    ------
    ValueError
        ``name`` is not in the catalogue (the message lists the names and suggests the closest).

    Examples
    --------
    >>> get_schedule("ddpm-linear").num_train_timesteps, type(get_schedule("discrete-linear")).__name__
    (1000, 'DiscreteVP')
    """
    key = SCHEDULE_ALIASES.get(name, name) if isinstance(name, str) else name
    return SCHEDULES[check_choice(key, "schedule", SCHEDULES)]()


def schedule_to_dict(schedule: NoiseSchedule) -> dict:
    """JSON description of a schedule; :func:`schedule_from_dict` inverts it exactly.

    Tables made by ``DiscreteVP.linear``/``quad`` are stored by their arguments, every other table by its betas.
    :class:`CustomSchedule` holds functions and has no JSON form.

    Raises
    ------
    TypeError
        ``schedule`` is not a schedule, or is a :class:`CustomSchedule`.

    Examples
    --------
    >>> schedule_to_dict(FlowMatching(shift=3.0))
    {'kind': 'flow-matching', 'shift': 3.0, 't_max': 0.999, 't_end': 0.0}
    >>> schedule_from_dict(schedule_to_dict(EDM(sigma_max=10.0)))
    EDM(sigma_min=0.002, sigma_max=10.0)
    """
    if isinstance(schedule, DiscreteVP):
        made = schedule._factory
        if made is None or made[0] not in ("linear", "quad"):  # cosine and other tables: store the betas
            return {"kind": "discrete", "betas": schedule.betas.tolist()}
        # the factory's own arguments: quad's betas[0] is sqrt(beta_start)**2, which may be beta_start's neighbour
        return {"kind": "discrete", "name": made[0], "T": schedule.num_train_timesteps,
                "beta_start": float(made[1]["beta_start"]), "beta_end": float(made[1]["beta_end"])}
    if isinstance(schedule, LinearVP):
        return {"kind": "linear-vp", "beta_min": schedule.beta_min, "beta_max": schedule.beta_max}
    if isinstance(schedule, CosineVP):
        return {"kind": "cosine-vp", "s0": schedule.s0, "t_max": schedule.t_max}
    if isinstance(schedule, FlowMatching):
        return {"kind": "flow-matching", "shift": schedule.shift, "t_max": schedule.t_max, "t_end": schedule.t_end}
    if isinstance(schedule, EDM):
        return {"kind": "edm", "sigma_min": schedule.sigma_min, "sigma_max": schedule.sigma_max}
    if isinstance(schedule, VE):
        return {"kind": "ve", "sigma_min": schedule.sigma_min, "sigma_max": schedule.sigma_max}
    raise TypeError(f"schedule {schedule!r} has no JSON form; allowed: DiscreteVP, LinearVP, CosineVP, "
                    f"FlowMatching, EDM, VE")


_FROM_DICT: dict[str, Callable[..., NoiseSchedule]] = {
    "linear-vp": LinearVP, "cosine-vp": CosineVP, "flow-matching": FlowMatching, "edm": EDM, "ve": VE}


def schedule_from_dict(d: dict) -> NoiseSchedule:
    """Rebuild a schedule from :func:`schedule_to_dict`'s output.

    Raises
    ------
    ValueError
        Not a mapping, an unknown ``kind`` or discrete ``name``, or parameters the schedule refuses (the
        message names the key).
    """
    if not isinstance(d, dict):
        raise ValueError(f"a schedule description must be a JSON object with a 'kind', got {type(d).__name__}")
    d = dict(d)
    kind = d.pop("kind", None)
    try:
        if kind == "discrete":
            if "betas" in d:
                return DiscreteVP(d["betas"])
            name = d.pop("name", None)
            if name not in ("linear", "quad"):
                raise ValueError(f"unknown discrete schedule name {name!r}; allowed: linear, quad")
            return getattr(DiscreteVP, name)(**d)
        if kind in _FROM_DICT:
            return _FROM_DICT[kind](**d)
    except TypeError as exc:  # an unexpected key
        raise ValueError(f"schedule description of kind {kind!r} has unexpected keys {sorted(d)}: {exc}") from None
    raise ValueError(f"unknown schedule kind {kind!r}; allowed: discrete, {', '.join(_FROM_DICT)}")
