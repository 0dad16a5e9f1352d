r"""Transfer maps: the part of a sampler step that moves ``x`` from ``t`` to ``t_next`` given a gradient.

A transfer is affine in the state and the gradient, ``x_next = a(t, t_next) * x + b(t, t_next) * e``, so a
step costs one fused multiply-add whatever the array library. Each transfer also fixes

* what the gradient ``e`` *is* (:meth:`Transfer.gradient`): the noise estimate ``eps`` for the DDIM
  transfer, the ODE right-hand side ``dx/dt`` for the classical linear transfer;
* the coordinate ``u`` in which the transfer is an exact Euler step (:meth:`Transfer.coordinate`):
  ``s = sigma / alpha`` for DDIM (in ``y = x / alpha`` it reads ``y' = y + (s' - s) e``),
  ``t`` itself for the linear transfer. Gradient estimators use it to place stages and derive weights.

Every transfer works on every model family of :mod:`pndmkit.schedules` (``x_t = alpha x0 + sigma eps``); VP
schedules keep their cancellation-free ``abar`` forms, the other families use the ``alpha``/``sigma`` forms.

Examples
--------
>>> import numpy as np
>>> from pndmkit.schedules import LinearVP
>>> phi = DDIMTransfer(LinearVP())
>>> x, e = np.array([0.3, -1.2]), np.array([0.5, 0.1])
>>> bool(np.allclose(phi(phi(x, e, 0.9, 0.5), e, 0.5, 0.1), phi(x, e, 0.9, 0.1)))
True
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from pndmkit._backend import LinComb, lincomb
from pndmkit.schedules import NoiseSchedule, VPSchedule, grid_log_abar

__all__ = ["Transfer", "DDIMTransfer", "DataTransfer", "LinearTransfer", "planned_coefficients",
           "planned_coefficients_many", "planned_gradients_many", "apply_planned"]


class Transfer(ABC):
    """An affine map ``x_next = a * x + b * e`` from ``t`` to ``t_next`` (the transfer part of PNDM).

    Subclasses implement :meth:`coefficients`, :meth:`gradient`, :meth:`coordinate` and :meth:`time_at`.
    """

    #: name of the coordinate in which the transfer is an Euler step ("s", "1/s" or "t")
    variable: str
    #: "pseudo" (keeps samples on the noise-level manifold, PNDM sec. 3.2) or "classical"
    kind: str = "pseudo"
    #: whether the gradient is the model's eps itself, whatever the point (then :meth:`rebase` is the identity)
    gradient_is_eps: bool = False

    def __init__(self, schedule: NoiseSchedule) -> None:
        if not isinstance(schedule, NoiseSchedule):
            raise TypeError(f"schedule must be a NoiseSchedule (LinearVP, DiscreteVP, EDM, FlowMatching, ...), got "
                            f"{type(schedule).__name__} {schedule!r}")
        self.schedule = schedule

    @abstractmethod
    def coefficients(self, t: float, t_next: float) -> tuple[float, float]:
        """Return ``(a, b)`` such that the transfer is ``a * x + b * e`` (Python floats, float64)."""

    @abstractmethod
    def gradient(self, x: Any, eps: Any, t: float) -> Any:
        """Turn a model's noise estimate at ``(x, t)`` into the gradient this transfer consumes."""

    @abstractmethod
    def gradient_coefficients(self, t: float) -> tuple[float, float]:
        """``(c_x, c_e)`` with ``gradient(x, eps, t) = c_x * x + c_e * eps`` (Python floats)."""

    def gradient_of(self, output: Any, x: Any, t: float, prediction: str = "eps") -> Any:
        """The gradient this transfer consumes from one model output of kind ``prediction`` at ``(x, t)``.

        By default the output is converted to ``eps`` (:func:`pndmkit.models.to_eps`) and then to the gradient
        (:meth:`gradient`). Transfers whose gradient a ``flow`` velocity ``u = dx/dt`` gives directly override
        this for ``prediction="flow"``, without the detour through ``eps``: it is exact where ``eps`` and ``x0``
        are not finite functions of ``(x, u)`` in floating point (flow matching near ``t = 1``, where
        ``1 / alpha`` is large, and at ``t = 1``, where ``alpha = 0``).
        """
        if prediction != "eps":
            from pndmkit.models import to_eps

            output = to_eps(output, x, t, self.schedule, prediction)
        return self.gradient(x, output, t)

    def rebase(self, g: Any, x: Any, t: float, x_base: Any, t_base: float) -> LinComb:
        """The gradient the same ``eps`` gives at ``(x_base, t_base)``, from the gradient ``g`` taken at ``(x, t)``.

        ``eps = (g - c_x(t) x) / c_e(t)``, then ``c_x(t_base) x_base + c_e(t_base) eps``. Used by Runge-Kutta
        estimators with ``derivative="base"`` (the official PNDM code's FON warm-up takes every stage's
        derivative at the step's base point and time).
        """
        c_x, c_e = self.gradient_coefficients(t)
        b_x, b_e = self.gradient_coefficients(t_base)
        ratio = b_e / c_e
        return LinComb((b_x, ratio, -ratio * c_x), (x_base, g, x))

    @abstractmethod
    def coordinate(self, t: float) -> float:
        """The coordinate ``u(t)`` in which ``x_next = x + (u(t_next) - u(t)) e`` up to scaling."""

    @abstractmethod
    def time_at(self, u: float) -> float:
        """Inverse of :meth:`coordinate`."""

    def __call__(self, x: Any, e: Any, t: float, t_next: float) -> Any:
        """``a x + b e``; a :class:`~pndmkit._backend.LinComb` gradient is fused into the same pass."""
        a, b = self.coefficients(t, t_next)
        return lincomb((a, b), (x, e))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.schedule!r})"


def planned_coefficients(phi: Transfer, t: float, t_next: float) -> tuple[float, float] | None:
    """``phi.coefficients(t, t_next)`` for a plan, or ``None`` if ``phi`` overrides ``__call__`` (then a step
    must call it). Paired with :func:`apply_planned`."""
    return phi.coefficients(t, t_next) if type(phi).__call__ is Transfer.__call__ else None


def planned_coefficients_many(phi: Transfer, starts: Sequence[float],
                              ends: Sequence[float]) -> list[tuple[float, float] | None]:
    """:func:`planned_coefficients` of every pair ``(starts[i], ends[i])``, the same floats.

    For the built-in exact transfers on a VP schedule the schedule is evaluated once, on every distinct time
    (``log abar`` as an array), and each pair runs the scalar formula of :meth:`Transfer.coefficients` on those
    values; any other transfer is asked pair by pair. What a plan uses for the steps and stages of a whole grid.
    """
    if type(phi).__call__ is not Transfer.__call__:
        return [None] * len(starts)
    starts, ends = tuple(float(t) for t in starts), tuple(float(t) for t in ends)
    try:  # a run's plan and its estimator's ask for the same steps: computed once
        return list(_coefficients_many(phi, starts, ends))
    except TypeError:  # an unhashable transfer
        return list(_coefficients_many.__wrapped__(phi, starts, ends))


@lru_cache(maxsize=64)
def _coefficients_many(phi: Transfer, starts: tuple, ends: tuple) -> tuple:
    formula = _VP_FORMULAS.get(type(phi))
    if formula is None or not isinstance(phi.schedule, VPSchedule) or not starts:
        return tuple(phi.coefficients(t, t_next) for t, t_next in zip(starts, ends))
    # a grid's steps (each ending where the next starts) read log abar on the grid, as its other plan parts do
    times = starts + ends[-1:] if starts[1:] == ends[:-1] else sorted(set(starts) | set(ends))
    la = dict(zip(times, grid_log_abar(phi.schedule, times)))
    return tuple(formula(t, t_next, la[t], la[t_next]) for t, t_next in zip(starts, ends))


def apply_planned(phi: Transfer, coefficients: tuple[float, float] | None, x: Any, e: Any, t: float,
                  t_next: float) -> Any:
    """``phi(x, e, t, t_next)`` with coefficients from :func:`planned_coefficients` (``None``: call ``phi``)."""
    return phi(x, e, t, t_next) if coefficients is None else lincomb(coefficients, (x, e))


class DDIMTransfer(Transfer):
    r"""The pseudo transfer :math:`\phi` of PNDM (eq. 9), equal to the deterministic DDIM update.

    .. math::
        \phi(x, e, t, t') = \sqrt{\bar\alpha'/\bar\alpha}\, x
        - \frac{\bar\alpha' - \bar\alpha}{\sqrt{\bar\alpha}\left(\sqrt{(1-\bar\alpha')\bar\alpha}
        + \sqrt{(1-\bar\alpha)\bar\alpha'}\right)}\, e

    The written form avoids the cancellation of ``sqrt(abar') x0_hat + sqrt(1 - abar') e``. With
    ``y = x / sqrt(abar)`` it is exactly ``y' = y + (s' - s) e``; if ``e`` is the true noise of ``x`` the
    result lies exactly at noise level ``t'`` for any step size. For every family,

    .. math::  x' = \frac{\alpha'}{\alpha} x + \alpha' (s' - s)\, e

    (VP schedules use the form above, which is the same map); on flow matching it is the Euler step
    ``x + (t' - t) u`` of the velocity ``u = eps - x0`` (``docs/theory.md``, "One ODE for every model family").
    """

    variable = "s"
    gradient_is_eps = True

    def coefficients(self, t: float, t_next: float) -> tuple[float, float]:
        sched = self.schedule
        if not isinstance(sched, VPSchedule):
            a, a_next = float(sched.alpha(t)), float(sched.alpha(t_next))
            if a <= 0.0:
                raise ValueError(f"the DDIM transfer (an eps gradient) cannot start at t={t}, where alpha = 0: eps "
                                 f"carries no information on x0 there; start later, or use a method whose gradient "
                                 f"is x0 or dx/dt (ddim, euler, dpm-solver++-2m, unipc-2, ...) with a flow model")
            return a_next / a, a_next * (float(sched.s(t_next)) - float(sched.s(t)))
        return _ddim_vp(t, t_next, float(sched.log_abar(t)), float(sched.log_abar(t_next)))

    def gradient(self, x: Any, eps: Any, t: float) -> Any:
        return eps

    def gradient_coefficients(self, t: float) -> tuple[float, float]:
        return 0.0, 1.0

    def coordinate(self, t: float) -> float:
        return float(self.schedule.s(t))

    def time_at(self, u: float) -> float:
        return float(self.schedule.t_from_s(u))


class DataTransfer(Transfer):
    r"""The DDIM transfer written for a data (``x0``) gradient: exact Euler in ``1/s = e^lambda`` on ``x / sigma``.

    With ``x = alpha x0 + sigma eps`` (VP: ``alpha = sqrt(abar)``, ``sigma = sqrt(1 - abar)``) and ``s = sigma / alpha``,

    .. math::
        \frac{x'}{\sigma'} = \frac{x}{\sigma} + \left(\frac{1}{s'} - \frac{1}{s}\right) d,
        \qquad x' = \frac{\sigma'}{\sigma} x + \alpha' \left(1 - \frac{s'}{s}\right) d,

    with ``d`` the estimate of ``x0``. Given ``d = (x - sigma eps) / alpha`` it is the same map as
    :class:`DDIMTransfer` (``docs/theory.md``, "The data-prediction transfer"), so a single evaluation per step
    is DDIM; multistep and Runge-Kutta gradient parts on ``d`` in ``e^lambda`` give the exponential-integrator
    family (DPM-Solver++, Lu et al. 2022, arXiv 2211.01095, eq. 9 at first order). Its coefficient on ``x`` is
    ``sigma'/sigma <= 1``, so errors in ``d`` are not amplified. The coordinate ``1/s`` is infinite where
    ``abar = 1`` (``sigma = 0``); the coefficients stay finite there (``x' = alpha' d``).
    """

    variable = "1/s"

    def coefficients(self, t: float, t_next: float) -> tuple[float, float]:
        sched = self.schedule
        if not isinstance(sched, VPSchedule):
            return self._coefficients(t, t_next)
        return _data_vp(t, t_next, float(sched.log_abar(t)), float(sched.log_abar(t_next)))

    def _coefficients(self, t: float, t_next: float) -> tuple[float, float]:
        """``(sigma'/sigma, alpha' (1 - s'/s))`` of any family."""
        sched = self.schedule
        sig, sig_next = float(sched.sigma(t)), float(sched.sigma(t_next))
        if sig <= 0.0:
            if t_next == t:
                return 1.0, 0.0
            raise ValueError(f"the data-prediction transfer cannot start at t={t}, where sigma = 0 (s = 0)")
        a, a_next = float(sched.alpha(t)), float(sched.alpha(t_next))
        # alpha' (1 - s'/s) written as alpha' - alpha sigma'/sigma: finite where alpha = 0 (flow matching at t = 1)
        return sig_next / sig, a_next - a * (sig_next / sig)

    def gradient_of(self, output: Any, x: Any, t: float, prediction: str = "eps") -> Any:
        """As :meth:`Transfer.gradient_of`; a ``flow`` velocity ``u = alpha' x0 + sigma' eps`` gives the data
        estimate directly, ``x0 = (sigma' x - sigma u) / (alpha sigma' - sigma alpha')`` (``x - t u`` on flow
        matching, finite at ``t = 1``). Where ``alpha = 0`` an ``x0`` output is the gradient itself (its detour
        through ``eps`` would divide by ``alpha``)."""
        sched = self.schedule
        if prediction == "x0" and float(sched.alpha(t)) == 0.0:
            return output
        if prediction != "flow":
            return super().gradient_of(output, x, t, prediction)
        alpha, sigma = float(sched.alpha(t)), float(sched.sigma(t))
        dalpha, dsigma = float(sched.dalpha(t)), float(sched.dsigma(t))
        det = alpha * dsigma - sigma * dalpha
        if not (math.isfinite(det) and det > 0):
            raise ValueError(f"a flow-prediction model cannot give x0 at t={t}, where dx/dt is singular "
                             f"(alpha sigma' - sigma alpha' = {det!r}); end the grid earlier")
        return lincomb((dsigma / det, -sigma / det), (x, output))

    def gradient(self, x: Any, eps: Any, t: float) -> Any:
        return lincomb(self.gradient_coefficients(t), (x, eps))

    def gradient_coefficients(self, t: float) -> tuple[float, float]:
        try:
            return _x0_coefficients(self.schedule, float(t))
        except TypeError:  # an unhashable schedule
            return _x0_coefficients.__wrapped__(self.schedule, float(t))

    def coordinate(self, t: float) -> float:
        s = float(self.schedule.s(t))
        return math.inf if s == 0.0 else 1.0 / s

    def time_at(self, u: float) -> float:
        return float(self.schedule.t_from_s(0.0 if math.isinf(u) else 1.0 / u))


def _ddim_vp(t: float, t_next: float, la: float, la_next: float) -> tuple[float, float]:
    """:meth:`DDIMTransfer.coefficients` on a VP schedule from ``log abar`` at both ends."""
    ab, ab_next = math.exp(la), math.exp(la_next)
    a = math.exp(0.5 * (la_next - la))
    # abar' - abar written as abar * expm1(la' - la) to keep digits when the step is tiny
    num = ab * math.expm1(la_next - la)
    den = math.sqrt(ab) * (math.sqrt(-math.expm1(la_next) * ab) + math.sqrt(-math.expm1(la) * ab_next))
    return a, (-num / den if den > 0 else 0.0)


def _data_vp(t: float, t_next: float, la: float, la_next: float) -> tuple[float, float]:
    """:meth:`DataTransfer.coefficients` on a VP schedule from ``log abar`` at both ends."""
    one_minus, one_minus_next = -math.expm1(la), -math.expm1(la_next)
    if one_minus <= 0.0:
        if t_next == t:
            return 1.0, 0.0
        raise ValueError(f"the data-prediction transfer cannot start at t={t}, where abar = 1 (sigma = 0)")
    if one_minus_next <= 0.0:
        return 0.0, math.exp(0.5 * la_next)
    log_sigma_ratio = 0.5 * (math.log(one_minus_next) - math.log(one_minus))
    log_s_ratio = log_sigma_ratio - 0.5 * (la_next - la)
    return math.exp(log_sigma_ratio), -math.exp(0.5 * la_next) * math.expm1(log_s_ratio)


@lru_cache(maxsize=4096)  # every evaluation of a data-prediction method asks, mostly at the same grid times
def _x0_coefficients(schedule: NoiseSchedule, t: float) -> tuple[float, float]:
    """``(1/alpha, -s)`` at ``t``: ``x0 = x / alpha - s eps``."""
    if not isinstance(schedule, VPSchedule):  # x0 = (x - sigma eps) / alpha
        return 1.0 / float(schedule.alpha(t)), -float(schedule.s(t))
    return _x0_vp(float(schedule.log_abar(t)))


def _x0_vp(la: float) -> tuple[float, float]:
    """:func:`_x0_coefficients` on a VP schedule from ``log abar``."""
    inv_alpha = math.exp(-0.5 * la)
    return inv_alpha, -math.sqrt(-math.expm1(la)) * inv_alpha


def planned_gradients_many(phi: Transfer, times: Sequence[float]) -> tuple[tuple[float, float], ...] | None:
    """``phi.gradient_coefficients(t)`` at every time of ``times`` for a plan (the same floats), or ``None`` where
    a told ``eps`` must go through ``phi.gradient_of``.

    Only a :class:`DataTransfer` (the type itself) gets coefficients: its gradient of an ``eps`` output is
    ``lincomb(gradient_coefficients(t), (x, eps))``, which a run can form from the plan. The DDIM transfer's
    gradient is ``eps`` itself (nothing to combine); other transfers are asked at each evaluation. On a VP
    schedule ``log abar`` is evaluated once, on the whole array. A time where the coefficients cannot be formed
    (``alpha = 0``, or ``1/alpha`` overflowing) gets ``None``, and an evaluation there calls ``gradient_of``
    (which says why).

    Parameters
    ----------
    phi : Transfer
        The run's transfer.
    times : sequence of float
        The times of the planned evaluations, in ``phi.schedule``'s time ``t`` (any order; converted to float).

    Returns
    -------
    tuple or None
        ``None`` when ``phi`` is not exactly a :class:`DataTransfer`; otherwise one entry per time of ``times``,
        in order: the Python floats ``(c_x, c_e)`` with ``gradient = c_x * x + c_e * eps`` (for a
        :class:`DataTransfer` ``c_x = 1 / alpha``, ``c_e = -s``, so the gradient is the data prediction
        ``x0``), equal to ``phi.gradient_coefficients(t)``, or ``None`` at a time where they cannot be formed.
        An empty ``times`` gives ``()``. Raises nothing where the coefficients fail (see above).
    """
    if type(phi) is not DataTransfer:
        return None
    times = [float(t) for t in times]
    if not isinstance(phi.schedule, VPSchedule) or not times:
        return tuple(_or_none(phi.gradient_coefficients, t) for t in times)
    log_abar = grid_log_abar(phi.schedule, times)
    try:
        return tuple(_x0_vp(la) for la in log_abar)
    except (ArithmeticError, ValueError):  # 1/alpha overflows at some time: None there (as elsewhere)
        return tuple(_or_none(_x0_vp, la) for la in log_abar)


def _or_none(f: Any, t: float) -> Any:
    """``f(t)``, or ``None`` where it fails (then the caller asks again where it is needed, and raises there)."""
    try:
        return f(t)
    except (ArithmeticError, ValueError):
        return None


class LinearTransfer(Transfer):
    r"""The classical transfer ``x_next = x + (t_next - t) e`` of a numerical method on the ODE in ``t``.

    The gradient is the right-hand side ``f(x, t) = dx/dt``. Two choices:

    * ``rhs="ode"``: the probability-flow ODE (PNDM eq. 6 in the paper's form),
      :math:`f = \bar\alpha'(t) \left(\frac{x}{2\bar\alpha} - \frac{\epsilon}{2\bar\alpha\sqrt{1-\bar\alpha}}\right)`,
      for every family :math:`f = (\alpha'/\alpha)\, x + \alpha s'\, \epsilon`
      (:meth:`~pndmkit.schedules.NoiseSchedule.ode_coefficients`; on flow matching ``f = eps - x0``);
    * ``rhs="unit-difference"``: the paper's discrete right-hand side for DDPM schedules (used by FON),
      ``f = x - phi(x, eps, t, t - 1)``, the change of a unit DDIM step. Near the data end, where ``t - 1``
      leaves the schedule, the difference is taken over ``[t, t + 1]`` instead.

    ``rhs=None`` picks ``"ode"`` for continuous schedules and ``"unit-difference"`` for discrete ones
    (whose ODE right-hand side is singular at ``abar = 1``).
    """

    variable = "t"
    kind = "classical"

    def __init__(self, schedule: NoiseSchedule, rhs: str | None = None) -> None:
        super().__init__(schedule)
        rhs = rhs or ("ode" if schedule.continuous else "unit-difference")
        if rhs not in ("ode", "unit-difference"):
            raise ValueError(f"rhs must be 'ode' or 'unit-difference', got {rhs!r}")
        self.rhs = rhs
        self._phi = DDIMTransfer(schedule)

    def __repr__(self) -> str:
        return f"LinearTransfer({self.schedule!r}, rhs={self.rhs!r})"

    def coefficients(self, t: float, t_next: float) -> tuple[float, float]:
        return 1.0, t_next - t

    def rhs_coefficients(self, t: float) -> tuple[float, float]:
        """Return ``(c_x, c_e)`` with ``f(x, t) = c_x * x + c_e * eps``."""
        sched = self.schedule
        if self.rhs == "ode":
            return sched.ode_coefficients(t)
        t_other = t - 1.0 if t - 1.0 >= sched.t_min else t + 1.0
        a, b = self._phi.coefficients(t, t_other)
        return (a - 1.0) / (t_other - t), b / (t_other - t)

    def gradient(self, x: Any, eps: Any, t: float) -> Any:
        return lincomb(self.rhs_coefficients(t), (x, eps))

    def gradient_of(self, output: Any, x: Any, t: float, prediction: str = "eps") -> Any:
        """As :meth:`Transfer.gradient_of`; with ``rhs="ode"`` a ``flow`` velocity is the right-hand side
        itself (``(alpha'/alpha) x + alpha s' eps = u`` identically), so it is used as it is; where ``alpha = 0``
        an ``x0`` output gives it as ``(sigma'/sigma) x + alpha' x0`` (``x = sigma eps`` there)."""
        if prediction == "flow" and self.rhs == "ode":
            return output
        if prediction == "x0" and self.rhs == "ode" and float(self.schedule.alpha(t)) == 0.0:
            sched = self.schedule  # u = alpha' x0 + sigma' eps: finite where the eps form divides by alpha
            return lincomb((float(sched.dsigma(t)) / float(sched.sigma(t)), float(sched.dalpha(t))), (x, output))
        return super().gradient_of(output, x, t, prediction)

    def gradient_coefficients(self, t: float) -> tuple[float, float]:
        return self.rhs_coefficients(t)

    def coordinate(self, t: float) -> float:
        return float(t)

    def time_at(self, u: float) -> float:
        return float(u)


#: the VP formulas of the built-in transfers' coefficients, from ``log abar`` (:func:`planned_coefficients_many`)
_VP_FORMULAS = {DDIMTransfer: _ddim_vp, DataTransfer: _data_vp}
