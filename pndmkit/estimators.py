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

Implementing an estimator (the contract, as scipy's ``OdeSolver`` states its own)
----------------------------------------------------------------------------------
1. Subclass :class:`GradientEstimator`; take every option in ``__init__`` and validate it there, naming the
   parameter in the error. After ``__init__`` the object is frozen: setting an attribute raises
   ``AttributeError`` (two runs can share the object because nothing about a run lives on it).
2. Implement :meth:`~GradientEstimator.step` as a generator: ``yield (x_i, t_i)`` once per model evaluation
   (``x_i`` shaped like ``x``, ``t_i`` inside the schedule's domain), receive the transfer's gradient there,
   and ``return Step(state, e=...)`` or ``Step(state, x=...)``. Combine arrays only linearly (``a * x + b * e``
   or :class:`~pndmkit._backend.LinComb`), so one implementation serves numpy and torch.
3. Keep everything that changes during a run in the state: :meth:`~GradientEstimator.init` creates it, each
   step receives and returns it. It must be immutable (tuples, not lists), so that a run can be copied,
   pickled and resumed bit-identically.
4. Implement :meth:`~GradientEstimator.order` (the global order with a given transfer on a ``t``-uniform
   grid); the registry checks it against the declared order, and ``pndmkit order`` measures it.
5. If another estimator may run first (:class:`Warmup`), implement :meth:`~GradientEstimator.observe` to
   record the gradient at the start of each step it did not take.
6. Never count evaluations or declare an NFE: the integrator counts what the generator asks for.
7. Optionally, compute once what every step needs that depends only on the grid (step weights, stage
   times) in :meth:`~GradientEstimator.plan`: one immutable entry per step, computed in float64 from the
   same formulas when the run starts, and given to ``step`` as the keyword ``plan``. An entry records what
   it assumed (e.g. the past nodes of a multistep formula), and a step whose state does not match it
   (a run started from another sampler's history) computes its weights as without a plan, so a plan
   never changes a result. Estimators without a plan (the default ``None``) are called without it.

Estimators and where they live
------------------------------
* :class:`Single` ``e' = g(x, t)``: DDIM with the DDIM transfer, Euler with the linear one.
* :class:`Warmup` ``first`` for a number of steps, then ``then``, which inherits what ``first`` evaluated.
* :class:`Final` ``body``, except the last steps of the grid, which lower-order estimators take.
* :class:`pndmkit.runge_kutta.RungeKutta`: explicit (pseudo) Runge-Kutta from a Butcher tableau; stage ``i``
  is reached through the transfer, ``x_i = phi(x, sum_j (a_ij / c_i) g_j, t, t_i)`` (PNDM eq. 12 for RK4).
* :class:`pndmkit.adams.LinearMultistep`: Adams-Bashforth on the gradients at the start of past steps
  (PNDM eq. 13); :class:`pndmkit.adams.AdamsPC`: Adams-Bashforth predictor + Adams-Moulton corrector
  through the transfer, PECE or PEC.
* :mod:`pndmkit.exponential`: multistep methods in ``lambda`` (DPM-Solver(++), DEIS, UniPC).

Where stages sit and in which variable multistep weights are exact is one option, ``variable``
(:mod:`pndmkit.variables`): ``"t"``, ``"native"`` (the transfer's coordinate), ``"lambda"`` or a function.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Generator, Optional, Tuple

from pndmkit._checks import check_int
from pndmkit.variables import Variable, is_native

__all__ = ["Step", "StepGenerator", "GradientEstimator", "Single", "Warmup", "Final", "observes", "History",
           "capped_order", "ramped_order", "planned_step"]

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
    """Base class of gradient estimators: the implementer's contract is in the module docstring.

    Implementers provide :meth:`step` (a generator) and :meth:`order`; estimators with state override
    :meth:`init` and :meth:`observe`. Instances are immutable once ``__init__`` returns (setting an
    attribute raises ``AttributeError``) and hash by identity.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:  # freeze when the outermost __init__ of the instance returns
            init = cls.__dict__["__init__"]

            @functools.wraps(init)
            def frozen_init(self: Any, *args: Any, **kw: Any) -> None:
                depth = self.__dict__.get("_init_depth", 0)
                object.__setattr__(self, "_init_depth", depth + 1)
                try:
                    init(self, *args, **kw)
                finally:
                    object.__setattr__(self, "_init_depth", depth)
                if depth == 0:
                    object.__setattr__(self, "_frozen", True)

            cls.__init__ = frozen_init  # type: ignore[misc]

    def __init__(self) -> None:  # an estimator without options (Single) is frozen at once
        if not self.__dict__.get("_init_depth", 0):
            object.__setattr__(self, "_frozen", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen", False):
            raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r} (build a new estimator; "
                                 f"what changes during a run belongs in its state)")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    __hash__ = object.__hash__

    def init(self, x: Any, t: float, phi: Any, times: Any) -> Any:
        """The state at the start of a run at ``(x, t)`` on the grid ``times`` (float64, decreasing,
        ``times[0] == t``; a method whose last steps differ, e.g. ``lower_order_final``, counts the steps left
        from it). Default: ``None`` (stateless)."""
        return None

    def observe(self, state: Any, t: float, e: Any) -> Any:
        """Record the gradient ``e`` evaluated at the start ``(x_n, t)`` of a step another estimator took
        (a :class:`Warmup` feeds its ``then`` this way). Default: the state unchanged."""
        return state

    def plan(self, times: Any, phi: Any) -> Optional[tuple]:
        """What each step of a run on ``times`` needs that depends only on the grid, computed once at the start.

        Parameters
        ----------
        times : numpy.ndarray
            The run's grid (float64, decreasing, schedule units).
        phi : Transfer
            The run's transfer.

        Returns
        -------
        tuple or None
            ``None`` (the default: no plan; :meth:`step` is called without one), or one immutable entry per
            step, ``len(times) - 1`` of them; entry ``i`` is passed to :meth:`step` as ``plan=`` for the step
            ``times[i] -> times[i + 1]`` (contract item 7 in the module docstring).
        """
        return None

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


def capped_order(order: int, variable: Variable, phi: Any, *, consistent: bool) -> int:
    """``order``, or ``min(order, 2)`` when the gradient part is not consistent with ``phi``'s coordinate.

    Stages or weights uniform in a variable other than the transfer's own leave a local error ``O(h^3)``
    (``docs/theory.md``, "Why t-uniform pseudo methods are second order"); ``consistent=True`` says the
    weights are exact in the transfer's coordinate whatever ``variable`` is.
    """
    return order if consistent or is_native(variable, phi) else min(order, 2)


def ramped_order(full: int, first: int, ramp: bool, formula_order: int) -> int:
    """Global order of a multistep ramp whose first step has order ``first`` (``full`` without the ramp).

    That one low-order step leaves a local error ``O(h^(first + 1))``, which the global error keeps.
    """
    return min(full, first + 1) if ramp and first < formula_order else full


class Single(GradientEstimator):
    """One evaluation at the start of the step: ``e' = g(x, t)`` (order 1; DDIM, Euler)."""

    def step(self, x, t, t_next, phi, state):
        e = yield x, t
        return Step(state, e=e)

    def order(self, phi):
        return 1

    def __repr__(self) -> str:
        return "Single()"


def observes(estimator: GradientEstimator) -> bool:
    """Whether ``estimator`` keeps anything of the gradients it is told (:meth:`GradientEstimator.observe` is
    overridden): a one-step estimator such as :class:`Single` does not, so a composite need not evaluate the
    model at a step's start only to tell it."""
    return type(estimator).observe is not GradientEstimator.observe


def _forward(sub: Generator, x: Any, t: float) -> Generator:
    """Forward a sub-estimator's step requests and answers; return its :class:`Step` and the gradient it was
    given at the step's start ``(x, t)`` (``None`` if it never asked there), for the estimators that must let
    the others observe that gradient (:class:`Warmup`, :class:`Final`)."""
    start = None
    try:
        request = next(sub)
        while True:
            g = yield request
            if start is None and request[0] is x and request[1] == t:
                start = g
            request = sub.send(g)
    except StopIteration as stop:
        return stop.value, start


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

    def plan(self, times, phi):
        # ``first`` only takes the first ``steps`` steps of a fresh run: plan those (a run started from another
        # state, whose counter differs from the step index, finds no entry and computes as without a plan)
        n = len(times) - 1
        first = self.first.plan(times[: min(self.steps, n) + 1], phi) if self.steps else None
        then = self.then.plan(times, phi)
        if first is None and then is None:
            return None
        return tuple((first[i] if first is not None and i < len(first) else None,
                      then[i] if then is not None else None) for i in range(n))

    def step(self, x, t, t_next, phi, state, plan=None):
        i, s_first, s_then = state
        if i >= self.steps:
            result = yield from planned_step(self.then, x, t, t_next, phi, s_then, plan and plan[1])
            return Step((i + 1, s_first, result.state), e=result.e, x=result.x)
        sub = planned_step(self.first, x, t, t_next, phi, s_first, plan and plan[0])
        result, start = yield from _forward(sub, x, t)
        if start is None:
            start = yield x, t
        return Step((i + 1, result.state, self.then.observe(s_then, t, start)), e=result.e, x=result.x)

    def order(self, phi):
        if self.steps == 0:
            return self.then.order(phi)
        return min(self.then.order(phi), self.first.order(phi) + 1)


class Final(GradientEstimator):
    """``body`` for every step but the last ``len(finals)`` of the grid, which ``finals`` take.

    ``finals[0]`` takes the last step, ``finals[1]`` the one before, and so on: the mirror of :class:`Warmup`,
    for a multistep method whose last steps are taken at lower order (``lower_order_final`` of DPM-Solver,
    Lu et al. 2022, arXiv 2211.01095; :class:`pndmkit.exponential.ExponentialMultistep` has the same rule
    built in). iPNDM with its last step by DDIM and the one before by AB2 is
    ``Final(LinearMultistep(4), (Single(), LinearMultistep(2)))``. The grid given to :meth:`init` says how
    many steps are left. Every estimator observes (:meth:`GradientEstimator.observe`) the gradient at the
    start of each step it does not take, so a multistep final has its full history; if the estimator that
    takes a step does not evaluate at its start and another one keeps a history (:func:`observes`: a
    multistep estimator does, :class:`Single` and Runge-Kutta do not), one extra evaluation is asked for
    there. So ``Final(AdamsPC(4, "PEC", ramp=True), (Single(),))`` costs what its body costs (``N + 1``), while a
    PEC body with a multistep final pays an evaluation at every step's start for that final. The state is
    ``(steps left, lowered, body_state, final_states)``. The global order is ``min(body, final + 1)`` over the
    finals (a fixed number of steps of order ``p`` leaves a local error ``O(h^(p + 1))``), or the body's with a
    ``few_steps`` threshold, which a fine grid never lowers.

    Parameters
    ----------
    body : GradientEstimator
        Takes every step but the final ones.
    finals : tuple of GradientEstimator
        The final steps' estimators, the last step's first; ``()`` leaves ``body`` alone (bit for bit).
    few_steps : int or None
        Only grids with fewer steps than this get the final estimators (DPM-Solver's threshold is 15);
        ``None``: every grid.

    Raises
    ------
    TypeError, ValueError
        An argument of the wrong type, or ``few_steps`` below 1.
    """

    def __init__(self, body: GradientEstimator, finals: Tuple[GradientEstimator, ...] = (),
                 few_steps: Optional[int] = None) -> None:
        if not isinstance(body, GradientEstimator):
            raise TypeError(f"body must be a GradientEstimator, got {type(body).__name__}")
        if not isinstance(finals, tuple) or not all(isinstance(f, GradientEstimator) for f in finals):
            raise TypeError(f"finals must be a tuple of GradientEstimator (the last step's first), got {finals!r}")
        self.body, self.finals = body, finals
        self.few_steps = None if few_steps is None else check_int(few_steps, "few_steps", minimum=1)

    def __repr__(self) -> str:
        return f"Final({self.body!r}, {self.finals!r}, few_steps={self.few_steps})"

    def _lowered(self, steps: int) -> bool:
        return bool(self.finals) and (self.few_steps is None or steps < self.few_steps)

    def init(self, x, t, phi, times):
        steps = len(times) - 1
        return (steps, self._lowered(steps), self.body.init(x, t, phi, times),
                tuple(f.init(x, t, phi, times) for f in self.finals))

    def observe(self, state, t, e):
        left, lowered, s_body, s_finals = state
        return (left - 1, lowered, self.body.observe(s_body, t, e),
                tuple(f.observe(s, t, e) for f, s in zip(self.finals, s_finals)))

    def plan(self, times, phi):
        # each final observes every step before its own, so its plan for a fresh run on the whole grid holds
        n = len(times) - 1
        body = self.body.plan(times, phi)
        finals = [f.plan(times, phi) if self._lowered(n) and j < n else None for j, f in enumerate(self.finals)]
        if body is None and all(f is None for f in finals):
            return None
        return tuple((body[i] if body is not None else None,
                      next((f[i] for j, f in enumerate(finals) if f is not None and i == n - 1 - j), None))
                     for i in range(n))

    def step(self, x, t, t_next, phi, state, plan=None):
        left, lowered, s_body, s_finals = state
        j = left - 1  # steps left after this one
        if not lowered or not 0 <= j < len(self.finals):
            if not lowered:  # nobody else ever takes a step: the body alone, as without Final
                result = yield from planned_step(self.body, x, t, t_next, phi, s_body, plan and plan[0])
                return Step((left - 1, lowered, result.state, s_finals), e=result.e, x=result.x)
            taker, entry = self.body, plan and plan[0]
        else:
            taker, entry = self.finals[j], plan and plan[1]
        sub = planned_step(taker, x, t, t_next, phi, s_body if taker is self.body else s_finals[j], entry)
        result, start = yield from _forward(sub, x, t)
        if start is None:
            others = [e for e in (self.body, *self.finals) if e is not taker]
            if not any(observes(e) for e in others):  # nobody keeps a history: no evaluation to give them
                body = result.state if taker is self.body else s_body
                finals = tuple(result.state if i == j and f is taker else s for i, (f, s) in
                               enumerate(zip(self.finals, s_finals)))
                return Step((left - 1, lowered, body, finals), e=result.e, x=result.x)
            start = yield x, t
        body = result.state if taker is self.body else self.body.observe(s_body, t, start)
        finals = tuple(result.state if f is taker and i == j else f.observe(s, t, start)
                       for i, (f, s) in enumerate(zip(self.finals, s_finals)))
        return Step((left - 1, lowered, body, finals), e=result.e, x=result.x)

    def order(self, phi):
        # a fixed number of final steps of order p leaves a local error O(h^(p + 1)) the global error keeps;
        # with a few_steps threshold a fine grid never lowers its final steps
        if not self.finals or self.few_steps is not None:
            return self.body.order(phi)
        return min(self.body.order(phi), *(f.order(phi) + 1 for f in self.finals))


def planned_step(estimator: GradientEstimator, x: Any, t: float, t_next: float, phi: Any, state: Any,
                  entry: Any) -> StepGenerator:
    """``estimator.step`` with its plan entry, or without a plan when there is none."""
    if entry is None:
        return estimator.step(x, t, t_next, phi, state)
    return estimator.step(x, t, t_next, phi, state, plan=entry)
