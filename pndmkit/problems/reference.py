r"""Reference solutions of the probability-flow ODE, to near machine precision.

In the coordinates :math:`y = x/\sqrt{\bar\alpha}` and
:math:`s = \sqrt{(1-\bar\alpha)/\bar\alpha}` (docs/theory.md, "Coordinates: y, s and lambda"), the
probability-flow ODE of every VP schedule is :math:`dy/ds = \epsilon(x, t(s))`. For an analytic
problem eps depends on ``t`` only through :math:`\bar\alpha = 1/(1+s^2)`, so the reference solution
is independent of the schedule: the schedule only maps ``t_start``, ``t_end`` (and requested times) to ``s``.
The same holds for every model family (``x_t = alpha x0 + sigma eps``, ``y = x / alpha``, ``dy/ds = eps``):
:func:`reference_trajectory` solves in the VP state with the same ``s`` and ``y``, ``x / scale(t)`` with
``scale = sqrt(alpha^2 + sigma^2)`` (:meth:`~pndmkit.schedules.NoiseSchedule.scale`, exactly 1 for VP).

Integration variable
--------------------
``s`` spans several decades (about 150 at the noise end of the linear VP schedule, 0.01 at
``t = 1e-3``, exactly 0 at ``t = -1`` of a discrete schedule). Three choices were considered:

* ``s`` itself: smooth near 0 but the solution grows like ``y ~ s z`` at the noise end and the step
  size must shrink to the data scale only near 0, so the controller spends its error budget badly;
* ``log s`` (or the half log-SNR ``lambda``): uniform across decades but ``-inf`` at ``s = 0``;
* :math:`w = \operatorname{asinh}(s/c)` with ``c`` the smallest component standard deviation
  (used here): :math:`w \approx s/c` near the data end, so ``s = 0`` is the regular point ``w = 0``,
  and :math:`w \approx \log(2s/c)` at the noise end.

The state is the whitened variable :math:`z = y/\sqrt{c^2+s^2}`, for which

.. math::
    \frac{dz}{dw} = \epsilon\big(x, s\big) - \tanh(w)\,z, \qquad
    x = z\,\sqrt{(c^2+s^2)/(1+s^2)},\quad s = c\sinh w .

For a single Gaussian :math:`\mathcal N(\mu, \Sigma)` the exact solution is
:math:`y = \mu + (\Sigma + s^2 I)^{1/2}\zeta` for a fixed :math:`\zeta`; along an eigenvector with
variance :math:`\sigma^2 \ge c^2` the factor :math:`\sqrt{\sigma^2 + c^2\sinh^2 w}` is analytic in the
strip :math:`|\mathrm{Im}\,w| < \pi/2` (and entire, :math:`c\cosh w`, when :math:`\sigma = c`), whereas in
``s`` its singularities sit at distance :math:`\sigma` from the real axis and in ``log s`` the point
``s = 0`` is lost. So an explicit high-order method takes uniform steps in ``w`` from noise to data,
and the state stays O(1) throughout, so the absolute tolerance means the same thing everywhere.
DOP853 (order 8 with 7th-order dense output) at ``rtol = atol = 1e-12`` then reaches end-point
errors around 1e-13 (checked by :func:`reference_accuracy` and, for a single Gaussian, against the
closed form in the tests).

The batch is integrated as one ODE system (the controller uses the RMS norm over all components);
:func:`reference_accuracy` measures the result's actual accuracy.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.integrate import solve_ivp

from pndmkit.problems._arrays import to_float64
from pndmkit.schedules import levels_from_s
from pndmkit.schedules import NoiseSchedule, VPSchedule

__all__ = ["solve_pf_ode", "reference_trajectory", "reference_accuracy"]

EpsOfS = Callable[[NDArray[np.float64], float], NDArray[np.float64]]


def solve_pf_ode(eps_of_s: EpsOfS, x_start: NDArray[np.float64], s_start: float, s_end: float, *,
                 scale: float = 1.0, s_eval: Optional[Sequence[float]] = None, rtol: float = 1e-12,
                 atol: float = 1e-12) -> NDArray[np.float64]:
    r"""Solve :math:`dy/ds = \epsilon(x, s)` from ``s_start`` to ``s_end`` in the ``(w, z)`` variables above.

    Parameters
    ----------
    eps_of_s : callable ``(x, s) -> eps``
        Exact eps for a float64 array ``x`` at noise-to-signal ratio ``s`` (any shape ``x.shape``).
    x_start : ndarray
        ``x`` (not ``y``) at ``s_start``.
    s_start, s_end : float
        Non-negative noise-to-signal ratios; either order (backwards in ``s`` is sampling).
    scale : float
        ``c``, the length scale of the data (smallest component standard deviation).
    s_eval : sequence of float, optional
        Return ``x`` at these ``s`` (between ``s_start`` and ``s_end``), stacked on a new first axis,
        from DOP853's dense output; by default only the end point, shaped like ``x_start``.
    rtol, atol : float
        Tolerances of the DOP853 controller on ``z``.

    Examples
    --------
    The exact flow of a standard normal: :math:`y = \sqrt{1+s^2}\,\zeta`, i.e. ``x`` never moves.

    >>> x = np.array([[0.3, -1.2]])
    >>> out = solve_pf_ode(lambda x, s: s * x / math.sqrt(1 + s * s), x, 80.0, 0.0)
    >>> bool(np.allclose(out, x, rtol=0, atol=1e-13))
    True
    """
    if not (s_start >= 0 and s_end >= 0 and math.isfinite(s_start) and math.isfinite(s_end)):
        raise ValueError(f"s_start and s_end must be finite and >= 0, got {s_start!r}, {s_end!r}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    x0 = np.array(x_start, dtype=np.float64)
    shape, c2 = x0.shape, scale * scale

    def x_of(z: NDArray[np.float64], s: float) -> NDArray[np.float64]:
        return z * math.sqrt((c2 + s * s) / (1.0 + s * s))

    def rhs(w: float, z: NDArray[np.float64]) -> NDArray[np.float64]:
        s = scale * math.sinh(w)
        e = eps_of_s(x_of(z, s).reshape(shape), s).reshape(-1)
        return e - math.tanh(w) * z

    w0, w1 = math.asinh(s_start / scale), math.asinh(s_end / scale)
    z0 = (x0 / math.sqrt((c2 + s_start**2) / (1.0 + s_start**2))).reshape(-1)
    if s_eval is None:
        if w0 == w1:
            return x0
        sol = solve_ivp(rhs, (w0, w1), z0, method="DOP853", rtol=rtol, atol=atol)
        _check(sol)
        return x_of(sol.y[:, -1], s_end).reshape(shape)
    s_eval = np.asarray(s_eval, dtype=np.float64).reshape(-1)
    lo, hi = min(s_start, s_end), max(s_start, s_end)
    if np.any(s_eval < lo * (1 - 1e-12)) or np.any(s_eval > hi * (1 + 1e-12)):
        raise ValueError(f"s_eval must lie between s_start={s_start} and s_end={s_end}")
    w_eval = np.clip(np.arcsinh(s_eval / scale), min(w0, w1), max(w0, w1))
    if w0 == w1:
        return np.broadcast_to(x0, (s_eval.size,) + shape).copy()
    sol = solve_ivp(rhs, (w0, w1), z0, method="DOP853", rtol=rtol, atol=atol, dense_output=True)
    _check(sol)
    z = sol.sol(w_eval)  # (n, len)
    return np.stack([x_of(z[:, i], float(s)).reshape(shape) for i, s in enumerate(s_eval)])


def _check(sol: Any) -> None:
    if not sol.success:
        raise RuntimeError(f"reference ODE solve failed: {sol.message}")


def reference_trajectory(problem: Any, x_T: Any, schedule: NoiseSchedule, t_start: Optional[float] = None,
                         t_end: Optional[float] = None, *, rtol: float = 1e-12, atol: float = 1e-12,
                         times: Optional[Sequence[float]] = None) -> Any:
    """Exact probability-flow trajectory of an analytic ``problem`` (e.g. a :class:`GaussianMixture`).

    Parameters
    ----------
    problem
        Any object with ``eps_at_levels(x, abar, 1 - abar)`` and ``min_std``.
    x_T : ndarray or torch.Tensor, shape (batch, d)
        State at ``t_start``.
    schedule : NoiseSchedule
        Any family.
    t_start, t_end : float, optional
        Start and end times (default: ``schedule.t_start`` and ``schedule.t_end``).
    rtol, atol : float
        DOP853 tolerances.
    times : sequence of float, optional
        Return the states at these times, shape ``(len(times), batch, d)``, instead of the end point.

    Returns
    -------
    Same kind, dtype and device as ``x_T``.
    """
    t_start = schedule.t_start if t_start is None else float(t_start)
    t_end = schedule.t_end if t_end is None else float(t_end)
    schedule.check_time(t_start, "t_start")
    schedule.check_time(t_end, "t_end")
    x0, back = to_float64(x_T, "x_T")
    vp = isinstance(schedule, VPSchedule)  # the VP state is x itself: no scaling, bit for bit
    if not vp:
        x0 = x0 / float(schedule.scale(t_start))
    s_eval = None
    if times is not None:
        times_arr = np.asarray(times, dtype=np.float64).reshape(-1)
        lo, hi = min(t_start, t_end), max(t_start, t_end)
        if np.any(times_arr < lo - 1e-12 * max(1.0, abs(lo))) or np.any(times_arr > hi + 1e-12 * max(1.0, abs(hi))):
            raise ValueError(f"times must lie between t_start={t_start} and t_end={t_end}, got {times_arr.tolist()}")
        times_arr = np.clip(times_arr, lo, hi)
        s_eval = np.atleast_1d(schedule.s(times_arr))

    def eps_of_s(x: NDArray[np.float64], s: float) -> NDArray[np.float64]:
        return problem.eps_at_levels(x, *levels_from_s(s))

    out = solve_pf_ode(eps_of_s, x0, float(schedule.s(t_start)), float(schedule.s(t_end)),
                       scale=float(problem.min_std), s_eval=s_eval, rtol=rtol, atol=atol)
    if not vp:
        scales = schedule.scale(t_end) if times is None else np.asarray(schedule.scale(times_arr)).reshape(
            (-1,) + (1,) * x0.ndim)
        out = out * scales
    return back(out)


def reference_accuracy(problem: Any, x_T: Any, schedule: NoiseSchedule, t_start: Optional[float] = None,
                       t_end: Optional[float] = None, *, rtol: float = 1e-12, atol: float = 1e-12,
                       factor: float = 10.0) -> float:
    """Max absolute change of the reference end point when both tolerances are divided by ``factor``.

    A cheap a-posteriori error estimate of :func:`reference_trajectory` at ``(rtol, atol)``: it
    should be far below the smallest method error one reports (1e-8 in the convergence study).
    """
    x0, _ = to_float64(x_T, "x_T")
    a = reference_trajectory(problem, x0, schedule, t_start, t_end, rtol=rtol, atol=atol)
    b = reference_trajectory(problem, x0, schedule, t_start, t_end, rtol=rtol / factor, atol=atol / factor)
    return float(np.max(np.abs(a - b)))
