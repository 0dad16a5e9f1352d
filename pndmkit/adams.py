r"""Adams gradient estimators: linear multistep (Adams-Bashforth) and predictor-corrector (PNDM eq. 13).

Only the gradient at the start of each step enters the history, newest first, as the state
``((t_1, e_1), (t_2, e_2), ...)``. Weights are either the uniform-step Adams weights (``"fixed"``, what
PLMS/F-PNDM/iPNDM use) or exact on the actual nodes in a chosen variable (``"exact"``, from
:func:`pndmkit.variables.exact_weights`), which restores the formula's order on any grid.

``formula_order`` is the order of the formula in its own variable (AB4: 4); the method's global order is
:meth:`~pndmkit.estimators.GradientEstimator.order`, which depends on the transfer it is used with.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

from pndmkit._backend import LinComb, lincomb
from pndmkit._checks import check_bool, check_int, check_real
from pndmkit.estimators import GradientEstimator, Step, Warmup, capped_order, ramped_order
from pndmkit.transfers import apply_planned, planned_coefficients, planned_coefficients_many
from pndmkit.variables import (Variable, check_variable, exact_weights, grid_coordinates, grid_weights_many,
                               infinite_times, is_finite_step)

__all__ = ["LinearMultistep", "AdamsPC", "TabulatedMultistep", "adams_bashforth_table", "MAX_TABLE_WEIGHT"]

#: the largest magnitude of a weight :class:`TabulatedMultistep` takes. Fitted weights are of order 1 to 10
#: (they start from iPNDM's, at most 59/24 in magnitude); a weight of a million already multiplies a gradient far
#: beyond any sampler's use, and one near float32's range (about 3.4e38) overflows a float32 run outright, so
#: such a weight is a damaged file or a diverged fit, refused before any run.
MAX_TABLE_WEIGHT = 1e6


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


def _predicted(coefficients: Optional[tuple[float, float]], weights: tuple[float, ...]) -> Optional[tuple]:
    """The predicted point ``phi(x, sum_k w_k e_k, t, t_next) = a x + sum_k (b w_k) e_k`` as weights on
    ``(x, e_0, e_1, ...)``, the terms the transfer's combination expands to (the same floats); ``None`` for a
    transfer without planned ``(a, b)`` (:func:`pndmkit.transfers.planned_coefficients`)."""
    if coefficients is None:
        return None
    a, b = coefficients
    return (a, *[b * w for w in weights])


class _Adams(GradientEstimator):
    """Shared parts of the Adams estimators: the history state and the weight rule."""

    formula_order: int
    weights: str
    variable: Variable
    ramp: bool

    def init(self, x, t, phi, times):
        return ()

    def _memory(self) -> int:
        """Number of past start gradients kept."""
        return self.formula_order - 1

    def observe(self, state, t, e):
        return (((t, e),) + state)[: self._memory()]

    def _weights(self, kind: str, nodes: list[float], t: float, t_next: float, phi: Any) -> tuple[float, ...]:
        if self.weights == "fixed":
            return _fixed(kind, len(nodes))
        return exact_weights(self.variable, phi, nodes, t, t_next)

    def _nodes(self, t: float, t_next: float, past: tuple, finite: Any) -> Optional[list[float]]:
        """The nodes ``[t, *past]`` of the step's formula, or ``None`` where a coordinate is infinite (then the
        step is order 1, module :mod:`pndmkit.variables`; ``finite``: ``is_finite_step`` on nodes)."""
        nodes = [t, *past]
        if self.weights == "exact" and not finite(nodes + [t_next]):
            return None
        return nodes

    def _grid(self, phi: Any, times: Any) -> tuple[list[float], Any, Any]:
        """What a plan needs of the grid ``times``: its times as floats, ``is_finite_step`` on its nodes and
        ``many(requests)``, the ``_weights`` of every ``(kind, nodes, t, t_next)`` of ``requests`` computed
        together (the same floats), from the coordinates of the grid computed once."""
        grid = [float(t) for t in times]
        if self.weights != "exact":
            return grid, lambda nodes: True, lambda requests: [_fixed(kind, len(nodes)) for kind, nodes, _, _ in
                                                               requests]
        values = grid_coordinates(self.variable, phi, grid)
        weights = grid_weights_many(self.variable, phi, grid, values)
        return (grid, infinite_times(self.variable, phi, grid, values).isdisjoint,
                lambda requests: weights([(nodes, t, t_next) for _, nodes, t, t_next in requests]))

    def _fresh_steps(self, grid: list[float], finite: Any) -> tuple[list, list]:
        """The steps of a fresh run on ``grid``: the plan's ``entries``, ``(past times, None)`` each (weights to
        fill in; ``None`` stays: order 1) or ``None`` for a step that cannot be taken (without a ramp the history
        must be full, or the step raises), and ``(i, nodes, t, t_next)`` of every step whose weights are planned.

        The history grows by one node a step up to ``_memory()``, and a step's formula uses all of it (its nodes
        are the step's start and the whole history, with or without a ramp), so the key is the history itself.
        """
        memory, entries, planned, past = self._memory(), [], [], ()
        for i in range(len(grid) - 1):
            t, t_next = grid[i], grid[i + 1]
            if not self.ramp and len(past) < memory:
                entries.append(None)
            else:
                entries.append((past, None))
                nodes = self._nodes(t, t_next, past, finite)
                if nodes is not None:
                    planned.append((i, nodes, t, t_next))
            past = ((t,) + past)[:memory]
        return entries, planned


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
        self.formula_order = _check_order(order)
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
        if not 0 <= warmup_steps <= self.formula_order - 1:
            raise ValueError(f"warmup_steps must be an integer in 0..order-1={order - 1}, got {warmup_steps!r}")
        if warmup is not None and not ramp and warmup_steps != self.formula_order - 1:
            raise ValueError(f"without a ramp the warm-up must fill the history: warmup_steps must be "
                             f"{order - 1}, got {warmup_steps}")
        self.warmup, self.warmup_steps, self.ramp = warmup, warmup_steps, check_bool(ramp, "ramp")
        self._warm = Warmup(warmup, warmup_steps, _AfterWarmup(self)) if warmup is not None and warmup_steps else None

    def __repr__(self) -> str:
        return (f"LinearMultistep(order={self.formula_order}, weights={self.weights!r}, variable={self.variable!r}, "
                f"warmup={self.warmup!r}, warmup_steps={self.warmup_steps}, ramp={self.ramp})")

    def init(self, x, t, phi, times):
        return self._warm.init(x, t, phi, times) if self._warm else ()

    def observe(self, state, t, e):
        return self._warm.observe(state, t, e) if self._warm else _Adams.observe(self, state, t, e)

    def step(self, x, t, t_next, phi, state, plan=None):
        if self._warm is not None:
            return (yield from self._warm.step(x, t, t_next, phi, state, plan))
        return (yield from self._ab_step(x, t, t_next, phi, state, plan))

    def plan(self, times, phi):
        if self._warm is not None:
            return self._warm.plan(times, phi)
        return self._ab_plan(times, phi)

    def _ab_plan(self, times: Any, phi: Any) -> tuple:
        """Per step ``(past times, weights or None)`` of a fresh run (its history grows by one node a step), or
        ``None`` for a step it cannot take (:meth:`_fresh_steps`)."""
        grid, finite, many = self._grid(phi, times)
        entries, planned = self._fresh_steps(grid, finite)
        for (i, _, _, _), w in zip(planned, many([("ab", nodes, t, t_next) for _, nodes, t, t_next in planned])):
            entries[i] = (entries[i][0], w)
        return tuple(entries)

    def _ab_weights(self, t: float, t_next: float, past: tuple, phi: Any, finite: Any) -> Optional[tuple]:
        """Weights on the gradients at ``t`` and ``past`` (``None``: an infinite coordinate, order 1)."""
        nodes = self._nodes(t, t_next, past, finite)
        return None if nodes is None else self._weights("ab", nodes, t, t_next, phi)

    def _ab_step(self, x, t, t_next, phi, history, plan=None):
        if not self.ramp and len(history) < self.formula_order - 1:
            raise ValueError(f"LinearMultistep(order={self.formula_order}, ramp=False) needs {self.formula_order - 1} past gradients "
                             f"and has {len(history)}: compose it as Warmup(first, {self.formula_order - 1}, ...) or use ramp=True")
        e = yield x, t
        new_history = (((t, e),) + history)[: self._memory()]
        k = min(len(history) + 1, self.formula_order)
        past = history[: k - 1]
        key = tuple(tk for tk, _ in past)
        if plan is not None and plan[0] == key:
            w = plan[1]
        else:
            w = self._ab_weights(t, t_next, key, phi, lambda nodes: is_finite_step(self.variable, phi, nodes))
        if w is None:
            return Step(new_history, e=e)
        return Step(new_history, e=LinComb(w, [e] + [ek for _, ek in past]))

    def order(self, phi):
        if self._warm is not None:
            return self._warm.order(phi)
        return self._bare_order(phi)

    def _bare_order(self, phi: Any) -> int:
        variable = self.variable if self.weights == "exact" else "t"  # fixed weights are uniform-step in t
        full = capped_order(self.formula_order, variable, phi, consistent=self.weights == "exact")
        return ramped_order(full, self.warmup_steps + 1, self.ramp, self.formula_order)


class _AfterWarmup(GradientEstimator):
    """The Adams-Bashforth part of a :class:`LinearMultistep` built with ``warmup=``: what its
    :class:`~pndmkit.estimators.Warmup` runs once the warm-up steps are done (same weights and order rule)."""

    def __init__(self, lm: LinearMultistep) -> None:
        self.lm = lm

    def init(self, x, t, phi, times):
        return ()

    def observe(self, state, t, e):
        return _Adams.observe(self.lm, state, t, e)

    def plan(self, times, phi):
        return self.lm._ab_plan(times, phi)

    def step(self, x, t, t_next, phi, state, plan=None):
        return (yield from self.lm._ab_step(x, t, t_next, phi, state, plan))

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
        self.formula_order = int(order)
        if mode not in ("PECE", "PEC"):
            raise ValueError(f"mode must be 'PECE' or 'PEC', got {mode!r}")
        self.mode = mode
        self.weights = _check_weights(weights)
        self.variable = check_variable(variable)
        self.ramp = check_bool(ramp, "ramp")

    def __repr__(self) -> str:
        return (f"AdamsPC(order={self.formula_order}, mode={self.mode!r}, weights={self.weights!r}, "
                f"variable={self.variable!r}, ramp={self.ramp})")

    def _memory(self) -> int:
        return self.formula_order - 2

    def init(self, x, t, phi, times):
        return ((), None)

    def observe(self, state, t, e):
        history, _ = state
        return (_Adams.observe(self, history, t, e), None)

    def _k(self, history_length: int) -> int:
        """Number of predictor nodes with a history of that length."""
        return min(history_length + 1, self.formula_order - 1) if self.ramp else self.formula_order - 1

    def plan(self, times, phi):
        # per step (past times, (predictor weights, corrector weights, the transfer's coefficients, the predicted
        # point's weights) or None: order 1), or None for a step that cannot be taken (_fresh_steps); every weight
        # set of the grid computed together and the coefficients from one schedule evaluation
        grid, finite, many = self._grid(phi, times)
        entries, planned = self._fresh_steps(grid, finite)
        weights = many([request for _, nodes, t, t_next in planned
                        for request in (("ab", nodes, t, t_next), ("am", [t_next, *nodes], t, t_next))])
        steps = planned_coefficients_many(phi, grid[:-1], grid[1:])  # every step's: the run's plan has them
        for n, (i, _, _, _) in enumerate(planned):
            entries[i] = (entries[i][0], (weights[2 * n], weights[2 * n + 1], steps[i],
                                          _predicted(steps[i], weights[2 * n])))
        return tuple(entries)

    def _pc_weights(self, t: float, t_next: float, past: tuple, phi: Any, finite: Any) -> Optional[tuple]:
        """``(predictor weights, corrector weights, the transfer's coefficients of the step, the predicted point's
        weights on x and the gradients)`` (:func:`_predicted`); ``None`` at an infinite coordinate (order 1)."""
        nodes = self._nodes(t, t_next, past, finite)
        if nodes is None:
            return None
        ab, coefficients = self._weights("ab", nodes, t, t_next, phi), planned_coefficients(phi, t, t_next)
        return (ab, self._weights("am", [t_next] + nodes, t, t_next, phi), coefficients,
                _predicted(coefficients, ab))

    def step(self, x, t, t_next, phi, state, plan=None):
        history, pending = state
        if not self.ramp and len(history) < self._memory():
            raise ValueError(f"AdamsPC(order={self.formula_order}, ramp=False) needs {self._memory()} past gradients and has "
                             f"{len(history)}: compose it as Warmup(first, {self._memory()}, ...) or use ramp=True")
        if pending is not None and pending[0] == t:
            e = pending[1]
        else:
            e = yield x, t
        k = self._k(len(history))  # predictor nodes
        past = history[: k - 1]
        key = tuple(tk for tk, _ in past)
        es = [e] + [ek for _, ek in past]
        new_history = (((t, e),) + history)[: self._memory()]
        if plan is not None and plan[0] == key:
            w = plan[1]
        else:
            w = self._pc_weights(t, t_next, key, phi, lambda nodes: is_finite_step(self.variable, phi, nodes))
        if w is None:
            return Step((new_history, None), e=e)
        x_p = lincomb(w[3], [x] + es) if w[3] is not None else apply_planned(phi, None, x, LinComb(w[0], es), t,
                                                                               t_next)
        e_new = yield x_p, t_next
        pending = (t_next, e_new) if self.mode == "PEC" else None
        return Step((new_history, pending), e=LinComb(w[1], [e_new] + es))

    def order(self, phi):
        variable = self.variable if self.weights == "exact" else "t"
        full = capped_order(self.formula_order, variable, phi, consistent=self.weights == "exact")
        return ramped_order(full, 2, self.ramp, self.formula_order)




def adams_bashforth_table(steps: int, order: int = 4) -> tuple[tuple[float, ...], ...]:
    """The step weights of a fresh ramped fixed-weight Adams-Bashforth run (iPNDM at ``order=4``), one row a step.

    Row ``i`` holds the weights on ``(e_i, e_{i-1}, ...)``: the uniform-step AB weights of order
    ``min(i + 1, order)`` (``(1,)``, ``(3/2, -1/2)``, ``(23, -16, 5)/12``, ``(55, -59, 37, -9)/24``, ...), which is
    what ``LinearMultistep(order, ramp=True)`` combines on any grid. :class:`TabulatedMultistep` of this table is
    that method (the start of :func:`pndmkit.studies.solver_opt.optimize_solver`).

    >>> adams_bashforth_table(3, order=2)
    ((1.0,), (1.5, -0.5), (1.5, -0.5))
    """
    steps = check_int(steps, "steps", minimum=1)
    order = _check_order(order)
    return tuple(_fixed("ab", min(i + 1, order)) for i in range(steps))


class TabulatedMultistep(GradientEstimator):
    r"""Linear multistep gradient with its own weights at every step of one run: ``e'_i = sum_k W[i][k] e_{i-k}``.

    A table of weights fitted to one grid and step count (by :func:`pndmkit.studies.solver_opt.optimize_solver`,
    as S4S fits a solver's coefficients and times: Frankel et al., "S4S: Solving for a Fast Diffusion Model
    Solver", ICML 2025) rather than derived from an interpolant: the rows need not sum to
    one, so the method is not consistent in general and has no order of convergence; it is a sampler for the
    grid it was fitted on, and runs only on grids of ``len(weights)`` steps. With the rows of
    :func:`adams_bashforth_table` it is iPNDM (``LinearMultistep(4, ramp=True)``) exactly, on any grid.

    The state is ``(i, (e_i-1, e_i-2, ...))``: the step index and the past start gradients, newest first, as
    many as the longest row needs.

    Parameters
    ----------
    weights : sequence of sequences of float
        Row ``i`` (one per step, at least one step) holds the weights on the gradients at the start of steps
        ``i, i - 1, ...``: between 1 and ``i + 1`` finite numbers of magnitude at most :data:`MAX_TABLE_WEIGHT`
        (``1e6``). This class takes rows as long as ``i + 1`` (every earlier gradient); the tables
        :func:`~pndmkit.studies.solver_opt.optimize_solver` fits hold at most 4 weights a row, as iPNDM's do.

    Raises
    ------
    ValueError
        An empty table, a row of the wrong length (the message names ``weights[i]``), a non-finite weight or one
        beyond :data:`MAX_TABLE_WEIGHT` in magnitude (naming ``weights[i][k]``); a grid of another step count when
        a run starts.
    TypeError
        A weight that is not a real number.
    """

    def __init__(self, weights: Any) -> None:
        if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__") or len(weights) == 0:
            raise ValueError(f"weights must be a non-empty sequence of rows (one per step), got {weights!r}")
        rows = []
        for i, row in enumerate(weights):
            if isinstance(row, (str, bytes)) or not hasattr(row, "__len__") or not 1 <= len(row) <= i + 1:
                raise ValueError(f"weights[{i}] must hold 1 to {i + 1} weights (on the gradients of steps {i}, "
                                 f"{i - 1}, ...), got {row!r}")
            rows.append(tuple(check_real(w, f"weights[{i}][{k}]") for k, w in enumerate(row)))
            for k, w in enumerate(rows[-1]):
                if abs(w) > MAX_TABLE_WEIGHT:
                    raise ValueError(f"weights[{i}][{k}]={w!r} exceeds {MAX_TABLE_WEIGHT:g} in magnitude: fitted "
                                     "weights are of order 1 to 10, so this is a damaged table (or a diverged fit)")
        self.weights = tuple(rows)
        self.memory = max(len(r) for r in rows) - 1

    def __repr__(self) -> str:
        return f"TabulatedMultistep(steps={len(self.weights)}, memory={self.memory})"

    def init(self, x, t, phi, times):
        steps = len(times) - 1
        if steps != len(self.weights):
            raise ValueError(f"grid has {steps} steps, but this TabulatedMultistep holds weights for "
                             f"{len(self.weights)} steps (its weights are fitted to one step count)")
        return (0, ())

    def observe(self, state, t, e):
        i, past = state
        return (i + 1, ((e,) + past)[: self.memory])

    def step(self, x, t, t_next, phi, state):
        i, past = state
        e = yield x, t
        w = self.weights[i]
        return Step((i + 1, ((e,) + past)[: self.memory]), e=LinComb(w, (e, *past[: len(w) - 1])))

    def order(self, phi):
        """0: fitted weights have no order of convergence (the table holds one step count)."""
        return 0
