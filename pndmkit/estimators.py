r"""Gradient estimators: the gradient part of a pseudo numerical step (PNDM, Liu et al. 2022, sec. 3.3).

The stepping protocol
---------------------
An estimator is immutable configuration. Everything that changes during a run is its **state**, an opaque
immutable value created by :meth:`GradientEstimator.init` and returned by every step (the pattern of
diffrax's solvers). A step ``t -> t_next`` is a *generator*:

.. code-block:: python

    def step(self, x, t, t_next, phi, state):
        e = yield x, t                      # ask for one model evaluation; receive the transfer's gradient
        ...                                 # any number of further evaluations, anywhere
        return Step(state=new_state, e=e)   # a gradient for the transfer: x_next = phi(x, e, t, t_next)
        # or   Step(state=new_state, x=x_next)   (a corrector that returns the next state directly)

Each ``yield (x_i, t_i)`` is one model evaluation; what comes back is already converted to the gradient the
transfer consumes (``eps`` for :class:`~pndmkit.transfers.DDIMTransfer`, ``x0`` for
:class:`~pndmkit.transfers.DataTransfer`, ``dx/dt`` for :class:`~pndmkit.transfers.LinearTransfer`), so
an estimator never sees a model, a schedule or an array library: only ``phi`` (the transfer, with its
coordinate) and arrays it combines linearly. A gradient may be returned as a lazy
:class:`~pndmkit._backend.LinComb`, which the transfer fuses with its own ``a x + b e`` into one pass.

The integrator (:class:`pndmkit.integrator.Integrator`) turns this into an ask/tell run; the number of
evaluations (NFE) is whatever the generator asks for, never declared. ``docs/protocol.md`` has a worked
example of a new corrector.

Estimators here
---------------
* :class:`Single` ``e' = g(x, t)``: DDIM with the DDIM transfer, Euler with the linear one.
* :class:`RungeKutta` explicit (pseudo) Runge-Kutta from a Butcher tableau; stage ``i`` is reached through
  the transfer, ``x_i = phi(x, sum_j (a_ij / c_i) g_j, t, t_i)`` (PNDM eq. 12 for RK4).
* :class:`LinearMultistep` Adams-Bashforth on the gradients at the start of past steps (PNDM eq. 13).
* :class:`AdamsPC` Adams-Bashforth predictor + Adams-Moulton corrector through the transfer, PECE or PEC.
* :class:`Warmup` ``first`` for a number of steps, then ``then``, which inherits what ``first`` evaluated.

Where stages sit and in which variable multistep weights are exact is one option, ``variable``
(:mod:`pndmkit.variables`): ``"t"``, ``"native"`` (the transfer's coordinate), ``"lambda"`` or a function.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generator, Optional, Tuple

import numpy as np

from pndmkit._backend import LinComb
from pndmkit._checks import check_bool, check_int
from pndmkit.tableaus import ButcherTableau
from pndmkit.variables import Variable, check_variable, exact_weights, is_finite_step, is_native, time_at
from pndmkit.variables import coordinate as _coordinate

__all__ = ["Step", "StepGenerator", "GradientEstimator", "Single", "RungeKutta", "LinearMultistep", "AdamsPC",
           "Warmup", "History"]

#: past gradients ``((t_k, e_k), ...)``, newest first (the state of the multistep estimators)
History = Tuple[Tuple[float, Any], ...]


@dataclass(frozen=True)
class Step:
    """What a step returns: the estimator's new state and either a gradient ``e`` or the next sample ``x``.

    Attributes
    ----------
    state : object
        The estimator's state after the step (immutable).
    e : array or LinComb, optional
        Gradient for the transfer: the integrator computes ``x_next = phi(x, e, t, t_next)``.
    x : array, optional
        The next sample itself (correctors); exactly one of ``e`` and ``x`` is given.
    """

    state: Any
    e: Any = None
    x: Any = None

    def __post_init__(self) -> None:
        if (self.e is None) == (self.x is None):
            raise ValueError("a Step returns exactly one of e (a gradient for the transfer) and x (the next "
                             f"sample); got e={'set' if self.e is not None else None}, "
                             f"x={'set' if self.x is not None else None}")


#: a step: yields evaluation points ``(x, t)``, receives gradients, returns a :class:`Step`
StepGenerator = Generator[Tuple[Any, float], Any, Step]


class GradientEstimator(ABC):
    """Base class of gradient estimators (see the module docstring for the protocol).

    Implementers provide :meth:`step` (a generator) and :meth:`order`; estimators with state override
    :meth:`init` and :meth:`observe`. Estimators must be immutable and hashable by identity.
    """

    def init(self, x: Any, t: float, phi: Any, times: Any) -> Any:
        """The state at the start of a run at ``(x, t)`` on the grid ``times`` (float64, decreasing,
        ``times[0] == t``; a method whose last steps differ, e.g. ``lower_order_final``, counts the steps left
        from it). Default: ``None`` (stateless)."""
        return None

    def observe(self, state: Any, t: float, e: Any) -> Any:
        """Record the gradient ``e`` evaluated at the start ``(x_n, t)`` of a step another estimator took
        (a :class:`Warmup` feeds its ``then`` this way). Default: the state unchanged."""
        return state

    @abstractmethod
    def step(self, x: Any, t: float, t_next: float, phi: Any, state: Any) -> StepGenerator:
        """The generator of one step ``t -> t_next`` from ``x`` (module docstring)."""

    @abstractmethod
    def order(self, phi: Any) -> int:
        """Global order of convergence with the transfer ``phi`` on a ``t``-uniform grid.

        Pseudo stages or weights that are not exact in the transfer's coordinate leave a local error
        ``O(h^3)`` (``docs/theory.md``, "Why t-uniform pseudo methods are second order"), so they cap the
        order at 2.
        """


def _capped(order: int, variable: Variable, phi: Any, *, consistent: bool) -> int:
    """``order``, or ``min(order, 2)`` when the gradient part is not consistent with ``phi``'s coordinate."""
    return order if consistent or is_native(variable, phi) else min(order, 2)


def _ramped(full: int, first: int, ramp: bool, order: int) -> int:
    """Global order of a ramp whose first multistep step has order ``first``: that one step leaves a local
    error ``O(h^(first + 1))``, which the global error keeps."""
    return min(full, first + 1) if ramp and first < order else full


class Single(GradientEstimator):
    """One evaluation at the start of the step: ``e' = g(x, t)`` (order 1)."""

    def step(self, x, t, t_next, phi, state):
        e = yield x, t
        return Step(state, e=e)

    def order(self, phi):
        return 1

    def __repr__(self) -> str:
        return "Single()"


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
        self._a, self._b, self._c = a, b, c
        self._stage_a = [tuple(aij / c[i] for aij in a[i][:i]) if c[i] else () for i in range(len(b))]

    def __repr__(self) -> str:
        extra = "" if self.derivative == "stage" else f", derivative={self.derivative!r}"
        return f"RungeKutta({self.tableau.name}, variable={self.variable!r}{extra})"

    def stage_times(self, t: float, t_next: float, phi: Any) -> list[float]:
        """Times of the stages of the step ``t -> t_next``."""
        if self.variable == "t":  # c = 1 is t_next itself: t + (t_next - t) can round past it (out of the domain)
            return [t_next if c == 1 else t + c * (t_next - t) for c in self._c]
        v, v_next = _coordinate(self.variable, phi, t), _coordinate(self.variable, phi, t_next)
        return [t if c == 0 else t_next if c == 1 else time_at(self.variable, phi, v + c * (v_next - v), (t, t_next))
                for c in self._c]

    def step(self, x, t, t_next, phi, state):
        if self.variable != "t" and not is_finite_step(self.variable, phi, (t, t_next)):
            e = yield x, t  # the documented rule at an infinite coordinate: one Euler step of the transfer
            return Step(state, e=e)
        times = self.stage_times(t, t_next, phi)
        gs = [(yield x, t)]
        for i in range(1, len(self._b)):
            x_i = x if not self._c[i] else phi(x, LinComb(self._stage_a[i], gs), t, times[i])
            g = yield x_i, times[i]
            gs.append(g if self.derivative == "stage" or phi.gradient_is_eps else phi.rebase(g, x_i, times[i], x, t))
        return Step(state, e=LinComb(self._b, gs))

    def order(self, phi):
        order = _capped(_tableau_order(self.tableau), self.variable, phi, consistent=False)
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


@lru_cache(maxsize=None)
def _fixed(kind: str, k: int) -> tuple[float, ...]:
    from pndmkit.theory.multistep import adams_bashforth, adams_moulton

    return tuple(float(w) for w in (adams_bashforth(k) if kind == "ab" else adams_moulton(k)))


def _check_order(order: Any) -> int:
    order = check_int(order, "order")
    if not 1 <= order <= 8:
        raise ValueError(f"order must be an integer in 1..8, got {order!r}")
    return order


def _check_weights(weights: Any) -> str:
    if weights not in ("fixed", "exact", "variable"):
        raise ValueError(f"weights must be 'fixed' (uniform-step Adams weights) or 'exact' (exact on the actual "
                         f"nodes in `variable`), got {weights!r}")
    return "exact" if weights == "variable" else weights


class _Adams(GradientEstimator):
    """Shared parts of the Adams estimators: the history state and the weight rule."""

    order_: int
    weights: str
    variable: Variable
    ramp: bool

    def init(self, x, t, phi, times):
        return ()

    def _memory(self) -> int:
        """Number of past start gradients kept."""
        return self.order_ - 1

    def observe(self, state, t, e):
        return (((t, e),) + state)[: self._memory()]

    def _weights(self, kind: str, nodes: list[float], t: float, t_next: float, phi: Any) -> tuple[float, ...]:
        if self.weights == "fixed":
            return _fixed(kind, len(nodes))
        return exact_weights(self.variable, phi, nodes, t, t_next)


class LinearMultistep(_Adams):
    """Adams-Bashforth gradient ``e' = sum_k w_k e_k`` over the current and past start gradients.

    The state is the history ``((t_k, e_k), ...)`` of gradients at the start of past steps, newest first,
    at most ``order - 1`` long.

    Parameters
    ----------
    order : int
        Number of gradients combined at full order (``4`` for PLMS / F-PNDM).
    weights : {"fixed", "exact"}
        ``"fixed"``: the uniform-step weights (55, -59, 37, -9)/24 for order 4 from
        :func:`pndmkit.theory.multistep.adams_bashforth`, whatever the grid; ``"exact"`` (alias
        ``"variable"``): the interpolant in ``variable`` through the actual nodes integrated exactly against the
        transfer's coordinate (:func:`pndmkit.variables.exact_weights`).
    variable : {"native", "t", "lambda"} or callable
        The variable of exact weights (ignored for fixed weights).
    warmup : GradientEstimator, optional
        Sugar for ``Warmup(warmup, warmup_steps, LinearMultistep(...))``: PRK for F-PNDM, PIE for PLMS.
    warmup_steps : int
        Number of initial steps taken by ``warmup``.
    ramp : bool
        Use order ``min(len(history) + 1, order)`` while the history is short (PLMS: AB2, AB3, AB4; iPNDM:
        AB1 to AB4). Without a ramp the warm-up must fill the history: ``warmup_steps == order - 1``.

    Raises
    ------
    ValueError
        Inconsistent options (each message names the parameter).
    """

    def __init__(self, order: int, weights: str = "fixed", warmup: Optional[GradientEstimator] = None,
                 warmup_steps: int = 0, ramp: bool = True, variable: Variable = "native") -> None:
        self.order_ = _check_order(order)
        self.weights = _check_weights(weights)
        self.variable = check_variable(variable)
        if warmup is not None and not isinstance(warmup, GradientEstimator):
            raise TypeError(f"warmup must be a GradientEstimator, got {type(warmup).__name__}")
        if warmup is not None and not warmup_steps:
            raise ValueError(f"warmup={warmup!r} needs warmup_steps >= 1 (the number of steps it takes), got "
                             f"{warmup_steps!r}")
        if warmup_steps and warmup is None:
            raise ValueError(f"warmup_steps={warmup_steps} needs a warmup estimator")
        warmup_steps = check_int(warmup_steps, "warmup_steps")
        if not 0 <= warmup_steps <= self.order_ - 1:
            raise ValueError(f"warmup_steps must be an integer in 0..order-1={order - 1}, got {warmup_steps!r}")
        if warmup is not None and not ramp and warmup_steps != self.order_ - 1:
            raise ValueError(f"without a ramp the warm-up must fill the history: warmup_steps must be "
                             f"{order - 1}, got {warmup_steps}")
        self.warmup, self.warmup_steps, self.ramp = warmup, warmup_steps, check_bool(ramp, "ramp")
        self._warm = Warmup(warmup, warmup_steps, _Bare(self)) if warmup is not None and warmup_steps else None

    def __repr__(self) -> str:
        return (f"LinearMultistep(order={self.order_}, weights={self.weights!r}, variable={self.variable!r}, "
                f"warmup={self.warmup!r}, warmup_steps={self.warmup_steps}, ramp={self.ramp})")

    def init(self, x, t, phi, times):
        return self._warm.init(x, t, phi, times) if self._warm else ()

    def observe(self, state, t, e):
        return self._warm.observe(state, t, e) if self._warm else _Adams.observe(self, state, t, e)

    def step(self, x, t, t_next, phi, state):
        if self._warm is not None:
            return (yield from self._warm.step(x, t, t_next, phi, state))
        return (yield from self._ab_step(x, t, t_next, phi, state))

    def _ab_step(self, x, t, t_next, phi, history):
        if not self.ramp and len(history) < self.order_ - 1:
            raise ValueError(f"LinearMultistep(order={self.order_}, ramp=False) needs {self.order_ - 1} past gradients "
                             f"and has {len(history)}: compose it as Warmup(first, {self.order_ - 1}, ...) or use ramp=True")
        e = yield x, t
        new_history = (((t, e),) + history)[: self._memory()]
        k = min(len(history) + 1, self.order_)
        past = history[: k - 1]
        nodes = [t] + [tk for tk, _ in past]
        if self.weights == "exact" and not is_finite_step(self.variable, phi, nodes + [t_next]):
            return Step(new_history, e=e)  # infinite coordinate: order 1 (module pndmkit.variables)
        w = self._weights("ab", nodes, t, t_next, phi)
        return Step(new_history, e=LinComb(w, [e] + [ek for _, ek in past]))

    def order(self, phi):
        if self._warm is not None:
            return self._warm.order(phi)
        return self._bare_order(phi)

    def _bare_order(self, phi: Any) -> int:
        variable = self.variable if self.weights == "exact" else "t"  # fixed weights are uniform-step in t
        full = _capped(self.order_, variable, phi, consistent=self.weights == "exact")
        return _ramped(full, self.warmup_steps + 1, self.ramp, self.order_)


class _Bare(GradientEstimator):
    """A LinearMultistep without its warm-up sugar (what its :class:`Warmup` runs after the warm-up)."""

    def __init__(self, lm: LinearMultistep) -> None:
        self.lm = lm

    def init(self, x, t, phi, times):
        return ()

    def observe(self, state, t, e):
        return _Adams.observe(self.lm, state, t, e)

    def step(self, x, t, t_next, phi, state):
        return (yield from self.lm._ab_step(x, t, t_next, phi, state))

    def order(self, phi):
        return self.lm._bare_order(phi)

    def __repr__(self) -> str:
        return repr(self.lm)


class AdamsPC(_Adams):
    r"""Adams predictor-corrector through the transfer: PECE (2 NFE per step) or PEC (1 NFE per step).

    For a pair of order ``p``, with ``e_0 = g(x, t)`` and the history ``e_1, ..., e_{p-2}``:

    * P: ``e_p = sum_k w_k e_k`` (Adams-Bashforth on ``p - 1`` nodes, order ``p - 1``),
      ``x_p = phi(x, e_p, t, t_next)``;
    * E: ``e_new = g(x_p, t_next)``;
    * C: ``e_c = w'_0 e_new + sum_k w'_{k+1} e_k`` (Adams-Moulton on ``p`` nodes including ``t_next``,
      order ``p``), ``x_next = phi(x, e_c, t, t_next)``;
    * PECE evaluates ``g`` at ``(x_next, t_next)`` as the next step's ``e_0``; PEC reuses ``e_new``, evaluated
      at the predicted point, so after the first step a step costs one evaluation.

    A predictor one order below the corrector suffices in both modes: the predicted gradient enters the
    result multiplied by the step, so the pair has order ``min(p_C, p_P + 1) = p`` (Hairer, Norsett, Wanner,
    *Solving Ordinary Differential Equations I*, sec. III.1). With exact weights (any variable) that is the
    global order; fixed weights on a pseudo transfer cap it at 2. The state is ``(history, pending)``, where
    ``pending`` is PEC's ``(t_next, e_new)`` for the next step, or ``None``.

    Parameters
    ----------
    order : int
        Order ``p >= 2`` of the pair. ``p = 2``: Euler predictor, trapezoidal corrector (PECE = PIE).
    mode : {"PECE", "PEC"}
        Whether the corrected point is evaluated again.
    weights : {"exact", "fixed"}
        As for :class:`LinearMultistep`.
    variable : {"native", "t", "lambda"} or callable
        The variable of exact weights.
    ramp : bool
        While the history is short use the orders it allows (the first step is order 2, so a ramped run is
        at most third order; warm it up with :class:`Warmup` for more).
    """

    def __init__(self, order: int, mode: str = "PECE", weights: str = "exact", variable: Variable = "native",
                 ramp: bool = True) -> None:
        if _check_order(order) < 2:
            raise ValueError(f"order must be an integer in 2..8 for a predictor-corrector pair, got {order!r}")
        self.order_ = int(order)
        if mode not in ("PECE", "PEC"):
            raise ValueError(f"mode must be 'PECE' or 'PEC', got {mode!r}")
        self.mode = mode
        self.weights = _check_weights(weights)
        self.variable = check_variable(variable)
        self.ramp = check_bool(ramp, "ramp")

    def __repr__(self) -> str:
        return (f"AdamsPC(order={self.order_}, mode={self.mode!r}, weights={self.weights!r}, "
                f"variable={self.variable!r}, ramp={self.ramp})")

    def _memory(self) -> int:
        return self.order_ - 2

    def init(self, x, t, phi, times):
        return ((), None)

    def observe(self, state, t, e):
        history, _ = state
        return (_Adams.observe(self, history, t, e), None)

    def step(self, x, t, t_next, phi, state):
        history, pending = state
        if not self.ramp and len(history) < self._memory():
            raise ValueError(f"AdamsPC(order={self.order_}, ramp=False) needs {self._memory()} past gradients and has "
                             f"{len(history)}: compose it as Warmup(first, {self._memory()}, ...) or use ramp=True")
        if pending is not None and pending[0] == t:
            e = pending[1]
        else:
            e = yield x, t
        k = min(len(history) + 1, self.order_ - 1) if self.ramp else self.order_ - 1  # predictor nodes
        nodes = [t] + [tk for tk, _ in history[: k - 1]]
        es = [e] + [ek for _, ek in history[: k - 1]]
        new_history = (((t, e),) + history)[: self._memory()]
        if self.weights == "exact" and not is_finite_step(self.variable, phi, nodes + [t_next]):
            return Step((new_history, None), e=e)  # infinite coordinate: order 1 (module pndmkit.variables)
        x_p = phi(x, LinComb(self._weights("ab", nodes, t, t_next, phi), es), t, t_next)
        e_new = yield x_p, t_next
        w = self._weights("am", [t_next] + nodes, t, t_next, phi)
        pending = (t_next, e_new) if self.mode == "PEC" else None
        return Step((new_history, pending), e=LinComb(w, [e_new] + es))

    def order(self, phi):
        variable = self.variable if self.weights == "exact" else "t"
        full = _capped(self.order_, variable, phi, consistent=self.weights == "exact")
        return _ramped(full, 2, self.ramp, self.order_)


class Warmup(GradientEstimator):
    """``first`` for the first ``steps`` steps, then ``then``.

    While ``first`` runs, ``then`` is told (:meth:`GradientEstimator.observe`) the gradient at the start of
    each step, so a multistep ``then`` starts with a full history: F-PNDM is
    ``Warmup(RungeKutta(RK4), 3, LinearMultistep(4, ramp=False))``. If ``first`` does not evaluate at the
    step's start, one extra evaluation is asked for there. A grid with fewer steps than ``steps`` is run
    entirely by ``first``. The state is ``(steps_taken, first_state, then_state)``.

    Parameters
    ----------
    first, then : GradientEstimator
    steps : int
        Number of steps taken by ``first`` (>= 0).

    Raises
    ------
    TypeError, ValueError
        Arguments of the wrong type or a negative ``steps``.
    """

    def __init__(self, first: GradientEstimator, steps: int, then: GradientEstimator) -> None:
        for name, est in (("first", first), ("then", then)):
            if not isinstance(est, GradientEstimator):
                raise TypeError(f"{name} must be a GradientEstimator, got {type(est).__name__}")
        steps = check_int(steps, "steps", minimum=0)
        self.first, self.steps, self.then = first, steps, then

    def __repr__(self) -> str:
        return f"Warmup({self.first!r}, {self.steps}, {self.then!r})"

    def init(self, x, t, phi, times):
        return (0, self.first.init(x, t, phi, times), self.then.init(x, t, phi, times))

    def observe(self, state, t, e):
        i, s_first, s_then = state
        return (i, self.first.observe(s_first, t, e), self.then.observe(s_then, t, e))

    def step(self, x, t, t_next, phi, state):
        i, s_first, s_then = state
        if i >= self.steps:
            result = yield from self.then.step(x, t, t_next, phi, s_then)
            return Step((i + 1, s_first, result.state), e=result.e, x=result.x)
        sub = self.first.step(x, t, t_next, phi, s_first)
        start = None
        try:
            request = next(sub)
            while True:
                g = yield request
                if start is None and request[0] is x and request[1] == t:
                    start = g
                request = sub.send(g)
        except StopIteration as stop:
            result = stop.value
        if start is None:
            start = yield x, t
        return Step((i + 1, result.state, self.then.observe(s_then, t, start)), e=result.e, x=result.x)

    def order(self, phi):
        if self.steps == 0:
            return self.then.order(phi)
        return min(self.then.order(phi), self.first.order(phi) + 1)
