r"""Explicit (pseudo) Runge-Kutta gradient estimators (PNDM, Liu et al. 2022, eq. 12).

A Butcher tableau ``(a, b, c)`` becomes a gradient estimator by reaching each stage through the transfer:
``x_i = phi(x, sum_j (a_ij / c_i) g_j, t, t_i)``. With the DDIM transfer this is PNDM's pseudo Runge-Kutta
(PRK for RK4, PIE for Heun's tableau); with the linear transfer ``x + h f`` it is the classical method.
Stages placed at fractions of the step in ``t`` (``variable="t"``) cap a pseudo method at order 2; placed in
the transfer's own coordinate (``variable="native"``) they restore the tableau's classical order
(``docs/theory.md``).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from pndmkit._backend import LinComb
from pndmkit.estimators import GradientEstimator, Step, capped_order
from pndmkit.tableaus import ButcherTableau
from pndmkit.transfers import apply_planned, planned_coefficients_many
from pndmkit.variables import (Variable, check_variable, coordinate, grid_coordinates, is_finite_step, is_native,
                               time_at)

__all__ = ["RungeKutta"]


class RungeKutta(GradientEstimator):
    """Explicit (pseudo) Runge-Kutta gradient from a Butcher tableau.

    Parameters
    ----------
    tableau : ButcherTableau
        Stage matrix ``a``, weights ``b`` and fractions ``c``.
    variable : {"t", "native", "lambda"} or callable
        Stage ``i`` sits at the fraction ``c_i`` of the step in this variable: ``"t"`` is PNDM's PRK,
        ``"native"`` (``s`` for the DDIM transfer) makes the gradient consistent with ``phi`` and restores
        the tableau's classical order. A step ending where ``variable`` is infinite is taken at order 1.
    derivative : {"stage", "base"}
        Where a stage's model output is turned into a gradient: at the stage point (``"stage"``, textbook
        Runge-Kutta) or at the step's base point and time (``"base"``, :meth:`Transfer.rebase`; the official
        PNDM code's FON warm-up, ``gen_fon`` in ``runner/method.py`` of github.com/luping-liu/PNDM). With the
        DDIM transfer the two agree (its gradient is ``eps`` itself); with the linear transfer ``"base"``
        is first order on VP schedules and second order on flow matching (:func:`_base_derivative_consistent`).

    Raises
    ------
    TypeError
        ``tableau`` is not a :class:`~pndmkit.tableaus.ButcherTableau`.
    ValueError
        A stage with ``c = 0`` but non-zero ``a`` (its pseudo stage would be undefined), or a bad variable.
    """

    def __init__(self, tableau: ButcherTableau, variable: Variable = "t", derivative: str = "stage") -> None:
        if not isinstance(tableau, ButcherTableau):
            raise TypeError(f"tableau must be a ButcherTableau, got {type(tableau).__name__}")
        self.variable = check_variable(variable)
        if derivative not in ("stage", "base"):
            raise ValueError(f"derivative must be 'stage' or 'base', got {derivative!r}")
        self.derivative = derivative
        a, b, c = tableau.as_floats()
        for i in range(1, tableau.stages):
            if c[i] == 0 and any(a[i]):
                raise ValueError(f"tableau {tableau.name!r}: stage {i} has c = 0 but non-zero a; a pseudo stage "
                                 f"x_i = phi(x, sum_j a_ij / c_i g_j, t, t) is undefined")
        self.tableau = tableau
        self._b, self._c = tuple(b), tuple(c)
        self._stage_a = tuple(tuple(aij / c[i] for aij in a[i][:i]) if c[i] else () for i in range(len(b)))

    def __repr__(self) -> str:
        extra = "" if self.derivative == "stage" else f", derivative={self.derivative!r}"
        return f"RungeKutta({self.tableau.name}, variable={self.variable!r}{extra})"

    def stage_times(self, t: float, t_next: float, phi: Any) -> list[float]:
        """Times of the stages of the step ``t -> t_next``."""
        if self.variable == "t":  # c = 1 is t_next itself: t + (t_next - t) can round past it (out of the domain)
            return [t_next if c == 1 else t + c * (t_next - t) for c in self._c]
        return self._stage_times(t, t_next, phi, coordinate(self.variable, phi, t), coordinate(self.variable, phi, t_next))

    def _stage_times(self, t: float, t_next: float, phi: Any, v: float, v_next: float) -> list[float]:
        """Stage times from the variable at both ends of the step (``v``, ``v_next``)."""
        inner = {}  # stages at the same fraction share their time (RK4's two midpoint stages)
        for c in self._c:
            if c not in (0, 1) and c not in inner:
                inner[c] = time_at(self.variable, phi, v + c * (v_next - v), (t, t_next))
        return [t if c == 0 else t_next if c == 1 else inner[c] for c in self._c]

    def plan(self, times, phi):
        # per step: the stage times and the transfer's coefficients to each stage, or () where the step is
        # taken at order 1 (an infinite coordinate)
        grid = [float(t) for t in times]
        if self.variable == "t":
            stages = [self.stage_times(t, t_next, phi) for t, t_next in zip(grid[:-1], grid[1:])]
        else:
            v = grid_coordinates(self.variable, phi, grid)
            u = v if is_native(self.variable, phi) else grid_coordinates("native", phi, grid)
            finite = [math.isfinite(a) and math.isfinite(b) for a, b in zip(v, u)]
            stages = [self._stage_times(grid[i], grid[i + 1], phi, v[i], v[i + 1]) if finite[i] and finite[i + 1]
                      else None for i in range(len(grid) - 1)]
        # the transfer's coefficients to every stage with c != 0, from one evaluation of the schedule
        pairs = [(t, t_i) for t, times_i in zip(grid, stages) if times_i is not None
                 for c, t_i in zip(self._c, times_i) if c]
        coefficients = iter(planned_coefficients_many(phi, [t for t, _ in pairs], [t_i for _, t_i in pairs]))
        return tuple(() if times_i is None else
                     (tuple(times_i), tuple(next(coefficients) if c else None for c in self._c))
                     for times_i in stages)

    def step(self, x, t, t_next, phi, state, plan=None):
        if plan is None and self.variable != "t" and not is_finite_step(self.variable, phi, (t, t_next)):
            plan = ()
        if plan == ():  # the documented rule at an infinite coordinate: one Euler step of the transfer
            e = yield x, t
            return Step(state, e=e)
        times, coefficients = (self.stage_times(t, t_next, phi), (None,) * len(self._c)) if plan is None else plan
        gs = [(yield x, t)]
        for i in range(1, len(self._b)):
            x_i = x if not self._c[i] else apply_planned(phi, coefficients[i], x, LinComb(self._stage_a[i], gs), t,
                                                          times[i])
            g = yield x_i, times[i]
            gs.append(g if self.derivative == "stage" or phi.gradient_is_eps else phi.rebase(g, x_i, times[i], x, t))
        return Step(state, e=LinComb(self._b, gs))

    def order(self, phi):
        order = capped_order(_tableau_order(self.tableau), self.variable, phi, consistent=False)
        if self.derivative == "base" and not phi.gradient_is_eps:
            return min(order, 2) if _base_derivative_consistent(phi) else 1
        return order


def _base_derivative_consistent(phi: Any, points: int = 7, rtol: float = 1e-5) -> bool:
    r"""Whether a stage derivative taken at the step's base point is right to first order for this transfer.

    With the gradient :math:`g = c_x x + c_e \epsilon` and a stage at :math:`t_i = t + c_i h`,
    :math:`x_i = x + c_i h g + O(h^2)`, the base-point derivative differs from the stage's by
    :math:`-c_i h [(c_x' + c_x^2) x + (c_e' + c_x c_e) \epsilon] + O(h^2)`. Both brackets vanish on flow matching
    (:math:`c_x = -c_e = -1/(1 - t)`), so there such a Runge-Kutta step is second order; on VP schedules they do
    not, and it is first order. Checked numerically (central differences) at interior points of the schedule.
    """
    sched = phi.schedule
    lo, hi = float(sched.t_min), float(sched.t_max)
    delta = 1e-5 * (hi - lo)
    for t in np.linspace(lo, hi, points + 2)[1:-1]:
        (cx, ce), (cx_hi, ce_hi), (cx_lo, ce_lo) = (phi.gradient_coefficients(float(u))
                                                    for u in (t, t + delta, t - delta))
        dcx, dce = (cx_hi - cx_lo) / (2 * delta), (ce_hi - ce_lo) / (2 * delta)
        if abs(dcx + cx * cx) > rtol * (abs(dcx) + cx * cx) or abs(dce + cx * ce) > rtol * (abs(dce) + abs(cx * ce)):
            return False
    return True


@lru_cache(maxsize=None)
def _tableau_order(tableau: ButcherTableau) -> int:
    from pndmkit.theory.butcher import tableau_order

    return int(tableau_order(tableau))


