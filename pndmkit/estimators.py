r"""Gradient estimators: the gradient part of a pseudo numerical step (PNDM sec. 3.3).

An estimator turns evaluations of ``g(x, t)`` (one model evaluation each, converted by the transfer
into the gradient it consumes) into one gradient ``e'`` for the step ``t -> t_next``; the integrator then
applies the transfer, ``x_next = phi(x, e', t, t_next)``. Estimators see only ``g``, the transfer (as
``phi`` and its coordinate) and the multistep history; never a model, a schedule or an array library.

Estimators are immutable. The multistep history -- ``((t_k, e_k), ...)``, newest first, holding only the
gradient at the *start* of each past step -- is passed in and the new entry returned, never stored.

* :class:`Single`: ``e' = g(x, t)`` (DDIM with the DDIM transfer, Euler with the linear one).
* :class:`RungeKutta`: explicit Runge-Kutta from a :class:`~pndmkit.tableaus.ButcherTableau`. Stage ``i`` is
  reached through the transfer, ``x_i = phi(x, sum_j (a_ij / c_i) g_j, t, t_i)`` (eq. 12 for RK4); with the
  linear transfer this is classical RK. Stage times are at fractions ``c_i`` of the step in ``t``
  (``stage_variable="t"``, the paper's PRK) or in the transfer's own coordinate (``"native"``: ``s`` for
  DDIM, the s-consistent ``prk-s``).
* :class:`LinearMultistep`: Adams-Bashforth ``e' = sum_k w_k e_k`` (eq. 13 for order 4) with weights that
  are fixed (uniform-step AB-k, as PLMS) or exact on the actual nodes in the transfer's coordinate
  (variable-step AB), a warm-up estimator for the first steps, and an optional ramp of orders.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import lru_cache
from typing import Any, Callable, Sequence

from pndmkit._backend import lincomb
from pndmkit.tableaus import ButcherTableau
from pndmkit.transfers import Transfer

__all__ = ["History", "Evaluate", "GradientEstimator", "Single", "RungeKutta", "LinearMultistep"]

#: past gradients ``((t_k, e_k), ...)``, newest first
History = tuple
#: one model evaluation returning the transfer's gradient at ``(x, t)``
Evaluate = Callable[[Any, float], Any]


class GradientEstimator(ABC):
    """Base class: estimate the gradient of one step from model evaluations and the history."""

    #: number of model evaluations of a step once the estimator runs at full order
    evaluations: int = 1
    #: number of past gradients the estimator reads (the integrator keeps no more)
    history_length: int = 0

    @abstractmethod
    def estimate(self, x: Any, t: float, t_next: float, g: Evaluate, phi: Transfer,
                 history: History) -> tuple[Any, Any]:
        """Return ``(e', e_start)``: the step's gradient and the gradient at ``(x, t)`` for the history."""

    def evaluations_at(self, index: int) -> int:
        """Model evaluations of step number ``index`` (0-based), starting from an empty history."""
        return self.evaluations


class Single(GradientEstimator):
    """One evaluation at the start of the step: ``e' = g(x, t)``."""

    def estimate(self, x, t, t_next, g, phi, history):
        e = g(x, t)
        return e, e

    def __repr__(self) -> str:
        return "Single()"


class RungeKutta(GradientEstimator):
    """Explicit (pseudo) Runge-Kutta gradient from a Butcher tableau.

    Parameters
    ----------
    tableau : ButcherTableau
        Stage matrix, weights and fractions.
    stage_variable : {"t", "native"}
        Place stage ``i`` at ``t + c_i (t_next - t)`` (``"t"``, PNDM's PRK) or at the fraction ``c_i`` of
        the step in the transfer's coordinate (``"native"``; ``s`` for the DDIM transfer, which makes the
        gradient consistent with ``phi`` and restores the tableau's classical order).
    """

    def __init__(self, tableau: ButcherTableau, stage_variable: str = "t") -> None:
        if stage_variable not in ("t", "native"):
            raise ValueError(f"stage_variable must be 't' or 'native', got {stage_variable!r}")
        a, b, c = tableau.as_floats()
        for i in range(1, tableau.stages):
            if c[i] == 0 and any(a[i]):
                raise ValueError(f"tableau {tableau.name!r}: stage {i} has c = 0 but non-zero a; a pseudo stage "
                                 f"x_i = phi(x, sum_j a_ij / c_i g_j, t, t) is undefined")
        self.tableau = tableau
        self.stage_variable = stage_variable
        self.evaluations = tableau.stages
        self._a, self._b, self._c = a, b, c

    def __repr__(self) -> str:
        return f"RungeKutta({self.tableau.name}, stage_variable={self.stage_variable!r})"

    def stage_times(self, t: float, t_next: float, phi: Transfer) -> list[float]:
        """Times of the stages of the step ``t -> t_next``."""
        if self.stage_variable == "t":
            return [t + c * (t_next - t) for c in self._c]
        u, u_next = phi.coordinate(t), phi.coordinate(t_next)
        return [t if c == 0 else t_next if c == 1 else phi.time_at(u + c * (u_next - u)) for c in self._c]

    def estimate(self, x, t, t_next, g, phi, history):
        times = self.stage_times(t, t_next, phi)
        gs = [g(x, t)]
        for i in range(1, len(self._b)):
            c = self._c[i]
            x_i = x if c == 0 else phi(x, lincomb([a / c for a in self._a[i][:i]], gs), t, times[i])
            gs.append(g(x_i, times[i]))
        return lincomb(self._b, gs), gs[0]


@lru_cache(maxsize=None)
def _fixed_weights(k: int) -> tuple[float, ...]:
    from pndmkit.theory.multistep import adams_bashforth

    return tuple(float(w) for w in adams_bashforth(k))


class LinearMultistep(GradientEstimator):
    """Adams-Bashforth gradient ``e' = sum_k w_k e_k`` over the current and past gradients.

    Parameters
    ----------
    order : int
        Number of gradients combined at full order (``4`` for PLMS / F-PNDM).
    weights : {"fixed", "variable"}
        ``"fixed"``: the uniform-step AB weights (55, -59, 37, -9)/24 for order 4, derived by
        :func:`pndmkit.coefficients.adams_bashforth`, whatever the grid; ``"variable"``: weights that
        integrate the Lagrange interpolant of the gradients exactly on the actual nodes in the transfer's
        coordinate (``s`` for DDIM), from :func:`pndmkit.coefficients.lagrange_weights_float`.
    warmup : GradientEstimator, optional
        Estimator used while fewer than ``warmup_steps`` past gradients exist (PRK for F-PNDM, PIE for
        PLMS / S-PNDM). ``None``: the multistep formula itself, at the order the history allows.
    warmup_steps : int
        Number of initial steps taken by ``warmup``.
    ramp : bool
        After the warm-up, use order ``min(len(history) + 1, order)`` (PLMS: AB2, AB3 then AB4; iPNDM:
        AB1 to AB4). Without a ramp the warm-up must fill the history: ``warmup_steps == order - 1``.
        Grids with fewer steps than the warm-up are run entirely by the warm-up estimator.
    """

    def __init__(self, order: int, weights: str = "fixed", warmup: GradientEstimator | None = None,
                 warmup_steps: int = 0, ramp: bool = True) -> None:
        if not isinstance(order, int) or not 1 <= order <= 8:
            raise ValueError(f"order must be an integer in 1..8, got {order!r}")
        if weights not in ("fixed", "variable"):
            raise ValueError(f"weights must be 'fixed' or 'variable', got {weights!r}")
        if warmup_steps and warmup is None:
            raise ValueError(f"warmup_steps={warmup_steps} needs a warmup estimator")
        if not 0 <= warmup_steps <= order - 1:
            raise ValueError(f"warmup_steps must lie in 0..order-1={order - 1}, got {warmup_steps}")
        if not ramp and warmup_steps != order - 1:
            raise ValueError(f"without a ramp the warm-up must fill the history: warmup_steps must be "
                             f"{order - 1}, got {warmup_steps}")
        self.order, self.weights, self.warmup = order, weights, warmup
        self.warmup_steps, self.ramp = warmup_steps, ramp
        self.history_length = order - 1

    def __repr__(self) -> str:
        return (f"LinearMultistep(order={self.order}, weights={self.weights!r}, warmup={self.warmup!r}, "
                f"warmup_steps={self.warmup_steps}, ramp={self.ramp})")

    def evaluations_at(self, index: int) -> int:
        if self.warmup is not None and index < self.warmup_steps:
            return self.warmup.evaluations_at(index)
        return 1

    def coefficients(self, times: Sequence[float], t: float, t_next: float, phi: Transfer) -> tuple[float, ...]:
        """Weights for gradients at ``times`` (newest first, ``times[0] == t``) on the step ``t -> t_next``."""
        if self.weights == "fixed":
            return _fixed_weights(len(times))
        from pndmkit.theory.multistep import lagrange_weights_float

        nodes = [phi.coordinate(tk) for tk in times]
        return tuple(lagrange_weights_float(nodes, nodes[0], phi.coordinate(t_next)).tolist())

    def estimate(self, x, t, t_next, g, phi, history):
        if self.warmup is not None and len(history) < self.warmup_steps:
            return self.warmup.estimate(x, t, t_next, g, phi, history)
        k = min(len(history) + 1, self.order)
        e = g(x, t)
        past = history[: k - 1]
        w = self.coefficients([t] + [tk for tk, _ in past], t, t_next, phi)
        return lincomb(w, [e] + [ek for _, ek in past]), e
