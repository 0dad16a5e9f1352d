r"""Ask/tell runs: any integrator driven from outside, one model evaluation at a time.

:meth:`pndmkit.integrator.Integrator.start` returns a :class:`Run`, an immutable snapshot of a sampler
between two model evaluations. :meth:`Run.ask` says where the model must be evaluated next,
:meth:`Run.tell` takes the model's output there and returns the next run; the old run is unchanged, so a
run can be kept, copied, pickled and resumed (or told two different outputs) and the results are
bit-identical to an uninterrupted run. :meth:`~pndmkit.integrator.Integrator.solve` is one driver of this
protocol; a diffusers scheduler, a guidance loop or a distributed job are others.

Examples
--------
>>> import numpy as np
>>> import pndmkit
>>> from pndmkit.schedules import LinearVP
>>> sched = LinearVP()
>>> run = pndmkit.METHODS["pie"].build(sched).start(np.ones(2), [1.0, 0.5, 0.1])
>>> while not run.done:
...     x, t = run.ask()                 # the model must be evaluated at (x, t); t in the schedule's units
...     run = run.tell(0.5 * x)          # its output (an eps prediction here)
>>> sol = run.solution()
>>> sol.nfe, sol.x.shape
(4, (2,))
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Generator, Optional

import numpy as np
from numpy.typing import NDArray

from pndmkit._backend import (LinComb, aliases, all_finite, cast, copy_array, lincomb, owns_memory, read_only,
                              version_counter)
from pndmkit.estimators import Step, planned_step
from pndmkit.models import check_output
from pndmkit.transfers import planned_coefficients_many, planned_gradients_many

__all__ = ["Run", "Solution", "Callback", "Plan", "make_plan", "start_run", "gradient_array", "call_model",
           "call_back"]

#: called after every step with ``(t_next, x_next, e')`` (``e'`` is ``None`` after a corrector step)
Callback = Callable[[float, Any, Any], None]


@dataclass(frozen=True)
class Solution:
    """Result of a sampler run.

    Attributes
    ----------
    x : array
        Final sample (same array type, dtype and device as the initial one).
    nfe : int
        Number of model evaluations.
    times : numpy.ndarray
        The grid that was integrated (decreasing); for adaptive methods the accepted times.
    method : str
        Name of the method.
    run : Run or None
        The finished ask/tell run (``None`` for adaptive methods).
    """

    x: Any
    nfe: int
    times: NDArray[np.float64]
    method: str = ""
    run: Optional["Run"] = field(default=None, repr=False)


class _Cursor:
    """The live generator of the current step, shared by the runs of that step (a cache, not state).

    ``position`` counts the gradients sent to it. A run whose ``told`` is longer or shorter than that (it
    was told twice, or unpickled) replays the step from its own ``told`` instead, which is exact.
    """

    __slots__ = ("gen", "position")

    def __init__(self, gen: Generator, position: int) -> None:
        self.gen, self.position = gen, position


@dataclass(frozen=True, eq=False)
class Run:
    """An integrator run between two model evaluations (immutable; create with ``Integrator.start``).

    Attributes
    ----------
    integrator : Integrator
        The method (:class:`pndmkit.integrator.Integrator`: anything with ``estimator``, ``transfer`` and
        ``name``).
    times : numpy.ndarray
        The grid (float64, decreasing, schedule units).
    index : int
        Steps completed; the current sample ``x`` is at ``times[index]``.
    x : array
        Sample at the start of the current step, in the state dtype.
    state : object
        The estimator's state at the start of the current step.
    nfe : int
        Model evaluations told so far.
    told : tuple
        Gradients told during the current step (its replay log).
    request : tuple or None
        ``(x, t)`` of the next evaluation, ``None`` once done.
    prediction : str
        What the told outputs are (``"eps"``, ``"x0"``, ``"v"``, ``"score"``): converted to ``eps`` at their
        own evaluation point (:func:`pndmkit.models.to_eps`) before the estimator combines anything.
    check_finite : bool
        Check every told output for NaN/inf (synchronises GPU devices).
    out_dtype : str
        dtype of the final sample (that of the initial one).
    last_gradient : array, LinComb or None
        Gradient the last completed step gave the transfer (``None`` for a corrector step).
    plan : Plan or None
        What was computed once when the run started: the transfer's coefficients of every step and the
        estimator's plan (:meth:`~pndmkit.estimators.GradientEstimator.plan`).
    """

    integrator: Any
    times: NDArray[np.float64]
    index: int
    x: Any
    state: Any
    nfe: int = 0
    told: tuple = ()
    request: Optional[tuple] = None
    prediction: str = "eps"
    check_finite: bool = False
    out_dtype: str = ""
    last_gradient: Any = field(default=None, repr=False)
    plan: Optional["Plan"] = field(default=None, repr=False)
    _cursor: Optional[_Cursor] = field(default=None, repr=False, compare=False)
    _request_version: Optional[int] = field(default=None, repr=False, compare=False)

    # -- the protocol -----------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """Whether the run has reached the end of its grid."""
        return self.request is None

    @property
    def t(self) -> float:
        """Time of the current sample ``x``."""
        return self._time(self.index)

    def _time(self, index: int) -> float:
        return self.plan.grid[index] if self.plan is not None else float(self.times[index])

    def ask(self) -> tuple[Any, float]:
        """``(x, t)``: where the model must be evaluated next (``t`` a Python float in the schedule's units).

        ``x`` belongs to the run, which is immutable: a numpy ``x`` is a read-only view (writing to it raises
        numpy's "read-only" error); a tensor cannot be made read-only, so :meth:`tell` refuses an output if
        ``x`` was modified in place in between (torch's version counter, no device synchronisation).

        Raises
        ------
        RuntimeError
            The run is done (use :meth:`solution`).
        """
        if self.request is None:
            raise RuntimeError("the run is done: call .solution() instead of .ask()")
        return self.request

    def tell(self, output: Any) -> "Run":
        """Give the model's output at :meth:`ask`'s point; return the run at the next evaluation (or done).

        ``output`` is a prediction of kind :attr:`prediction`, same shape and array type as ``x``; another
        floating dtype is cast to the state's.

        The caller may write into ``output`` after the call (tell the same buffer every evaluation: a
        preallocated output, a CUDA graph's static output): where the run keeps the output as it is (an ``eps``
        output of a multistep or Runge-Kutta method, kept for later steps or for replay), it keeps a copy
        unless nothing but this call holds ``output`` (``run.tell(net(x, t))`` with a network that returns a
        new array: no variable, attribute, view or ``detach()`` alias; torch's storage use count and numpy's
        ``owndata``, host-side bookkeeping, no device synchronisation). So the common case costs no copy, and a
        reused buffer gives the same result bit for bit; outputs converted into a new array (``x0``, ``v``
        predictions, data-prediction methods) are never copied.

        Raises
        ------
        RuntimeError
            The run is done.
        ValueError, TypeError, FloatingPointError
            As :func:`check_output`.
        """
        references = sys.getrefcount(output)  # first: before this method holds it anywhere else
        if self.request is None:
            raise RuntimeError("the run is done: there is nothing to tell")
        x_eval, t_eval = self.request
        if self._request_version is not None and x_eval._version != self._request_version:
            raise RuntimeError(f"the x that ask() handed out for t={t_eval} was modified in place; the run is "
                               f"immutable: the model (or a callback of the driver) must leave it unchanged and "
                               f"return a new tensor")
        out = check_output(output, x_eval, t_eval, self.nfe + 1, self.check_finite)
        plan = self.plan
        g = None
        if plan is not None and plan.gradients is not None and self.prediction == "eps":
            g = _planned_gradient(plan, self.index, out, x_eval, t_eval)
        if g is None:
            g = self.integrator.transfer.gradient_of(out, x_eval, t_eval, self.prediction)
        if out is output and aliases(g, output) and not (references <= _TEMPORARY_REFERENCES and owns_memory(output)):
            # the run would keep the caller's array (multistep history, Runge-Kutta stages, the replay log): keep a
            # copy unless the caller cannot write into it again (see _TEMPORARY_REFERENCES)
            g = copy_array(g) if g is output else self.integrator.transfer.gradient_of(
                copy_array(out), x_eval, t_eval, self.prediction)
        cursor = self._cursor
        if cursor is None or cursor.position != len(self.told):
            cursor = _Cursor(self._replay(), len(self.told))
        try:
            request = _checked_request(cursor.gen.send(g), self)
        except StopIteration as stop:
            cursor.position = -1  # exhausted: telling this run again replays the step
            return self._finish_step(stop.value, self.nfe + 1)
        cursor.position += 1
        return _replace(self, nfe=self.nfe + 1, told=self.told + (g,), request=request, _cursor=cursor,
                        _request_version=version_counter(request[0]))

    def solution(self) -> Solution:
        """The :class:`Solution` of a finished run.

        The final sample is checked once for NaN/inf (one cheap reduction); rerun with ``check_finite=True``
        to find the first non-finite evaluation.

        Raises
        ------
        RuntimeError
            The run is not done.
        FloatingPointError
            The final sample is not finite (the exception's ``run`` attribute holds this run: nothing is lost).
        """
        if self.request is not None:
            raise RuntimeError(f"the run is not done: step {self.index} of {len(self.times) - 1}, "
                               f"next evaluation at t={self.request[1]}")
        if not all_finite(self.x):
            err = FloatingPointError(
                f"the final sample of {self.integrator.name or 'the run'} is not finite (NaN or inf); rerun with "
                "check_finite=True to find the first non-finite model output")
            err.run = self  # type: ignore[attr-defined]
            raise err
        x = cast(self.x, self.out_dtype)
        return Solution(x=x, nfe=self.nfe, times=self.times, method=self.integrator.name, run=self)

    # -- internals -----------------------------------------------------------------------------------
    def _generator(self) -> Generator:
        t, t_next = self.t, self._time(self.index + 1)
        entry = None if self.plan is None or self.plan.estimator is None else self.plan.estimator[self.index]
        return planned_step(self.integrator.estimator, self.x, t, t_next, self.integrator.transfer, self.state, entry)

    def _replay(self) -> Generator:
        """A fresh generator of the current step, advanced past its first request and every told gradient."""
        gen = self._generator()
        next(gen)
        for g in self.told:
            gen.send(g)
        return gen

    def _finish_step(self, step: Any, nfe: int) -> "Run":
        if not isinstance(step, Step):
            raise TypeError(f"{self.integrator.estimator!r}.step must return a Step, got {type(step).__name__}")
        x_next = step.x if step.x is not None else _transfer(self, self.index, self.x, step.e)
        return _begin(self, self.index + 1, x_next, step.state, nfe, step.e)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cursor"] = None  # generators do not pickle; a resumed run replays its step exactly
        return state

    def __setstate__(self, state: dict) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)
        if state.get("_request_version") is not None and state.get("request") is not None:
            # a copy (pickle, copy.deepcopy) holds a fresh tensor whose version counter starts again: the in-place
            # check compares against the copy's own counter, not the original's
            object.__setattr__(self, "_request_version", version_counter(state["request"][0]))


class _Probe:
    def tell(self, output: Any) -> int:
        return sys.getrefcount(output)  # what Run.tell reads first


def _held_by_local() -> int:
    output = object()
    return _Probe().tell(output)


def _temporary_references() -> int:
    """``sys.getrefcount`` of an output as :meth:`Run.tell` reads it when nothing but the call holds it
    (``run.tell(model(x, t))``), or 0 where this interpreter counts a caller's local variable no higher.

    Below it the caller keeps no reference: no variable, attribute, container, view or closure can write
    into the output later, so the run may keep it without a copy. A caller that does hold one
    (``buf[...] = net(x, t); run.tell(buf)``, a model returning a preallocated buffer or a CUDA graph's
    static output, a pipeline's local) gets its output copied where the run keeps it. Found once, here, on
    this interpreter (an interpreter that borrows references for calls turns the fast path off: every kept
    output is copied).
    """
    fresh = _Probe().tell(object())
    return fresh if fresh < _held_by_local() else 0


_TEMPORARY_REFERENCES = _temporary_references()


def _checked_request(request: Any, run: Run) -> tuple[Any, float]:
    """An estimator's ``yield``: a pair ``(x, t)`` with ``x`` shaped like the state and ``t`` inside the schedule."""
    if not isinstance(request, tuple) or len(request) != 2:
        raise TypeError(f"{run.integrator.estimator!r}.step must yield (x, t) pairs, one per model evaluation; "
                        f"got {type(request).__name__}")
    x, t = request
    if getattr(x, "shape", None) != getattr(run.x, "shape", None):
        raise ValueError(f"{run.integrator.estimator!r}.step yielded x of shape {getattr(x, 'shape', None)}; the "
                         f"state has shape {tuple(run.x.shape)}")
    schedule = run.integrator.transfer.schedule
    tol = 1e-9 * max(1.0, abs(schedule.t_max))
    if not (schedule.t_min - tol <= t <= schedule.t_max + tol):  # also refuses NaN
        raise ValueError(f"{run.integrator.estimator!r}.step asked for an evaluation at t={t}, outside the domain "
                         f"[{schedule.t_min}, {schedule.t_max}] of {schedule!r}")
    return read_only(x), float(t)


def _planned_gradient(plan: "Plan", index: int, out: Any, x: Any, t: float) -> Any:
    """The transfer's gradient of an ``eps`` output ``out`` at ``(x, t)`` from the plan's coefficients where ``t``
    is the start or the end of step ``index`` (the same floats as ``gradient_of``); ``None`` elsewhere."""
    coefficients = plan.gradients[index] if plan.grid[index] == t else \
        plan.gradients[index + 1] if plan.grid[index + 1] == t else None
    return None if coefficients is None else lincomb(coefficients, (x, out))


def _replace(run: Run, **changes: Any) -> Run:
    """A copy of ``run`` with ``changes`` (the fields were validated when the first run was built)."""
    new = object.__new__(Run)
    new.__dict__.update(run.__dict__)
    new.__dict__.update(changes)
    return new


def _begin(run: Run, index: int, x: Any, state: Any, nfe: int, last_gradient: Any) -> Run:
    """The run at the start of step ``index`` (or done), advanced to its first model evaluation."""
    while True:
        base = _replace(run, index=index, x=x, state=state, nfe=nfe, told=(), request=None,
                        last_gradient=last_gradient, _cursor=None)
        if index >= len(run.times) - 1:
            return base
        gen = base._generator()
        try:
            request = _checked_request(next(gen), base)
        except StopIteration as stop:  # a step that needs no evaluation (e.g. pure extrapolation)
            step = stop.value
            if not isinstance(step, Step):
                raise TypeError(f"{run.integrator.estimator!r}.step must return a Step, got {type(step).__name__}")
            x = step.x if step.x is not None else _transfer(run, index, x, step.e)
            state, last_gradient, index = step.state, step.e, index + 1
            continue
        return _replace(base, request=request, _cursor=_Cursor(gen, 0), _request_version=version_counter(request[0]))


def _transfer(run: Run, index: int, x: Any, e: Any) -> Any:
    """``x_next`` of step ``index`` from ``x`` and the gradient ``e``, with the planned coefficients."""
    plan = run.plan
    if plan is not None and plan.coefficients is not None:  # not apply_planned: no times looked up per step
        return lincomb(plan.coefficients[index], (x, e))
    return run.integrator.transfer(x, e, run._time(index), run._time(index + 1))


@dataclass(frozen=True)
class Plan:
    """What a run computes once, when it starts, from its grid (float64, the formulas of a step).

    Attributes
    ----------
    grid : tuple of float
        The run's times as Python floats (what each step reads).
    coefficients : tuple of (float, float) or None
        The transfer's ``(a, b)`` of every step (``x_next = a x + b e'``); ``None`` for a transfer that
        overrides ``__call__`` (then each step calls it).
    estimator : tuple or None
        The estimator's plan (:meth:`~pndmkit.estimators.GradientEstimator.plan`), one entry per step.
    gradients : tuple of ((float, float) or None) or None
        The transfer's ``gradient_coefficients`` at every time of the grid, where its gradient of an ``eps``
        output is that combination of ``(x, eps)`` (:func:`~pndmkit.transfers.planned_gradients_many`); ``None``
        (the whole or at a time): an evaluation there calls ``gradient_of``.
    """

    grid: tuple
    coefficients: Optional[tuple]
    estimator: Optional[tuple]
    gradients: Optional[tuple] = None


def make_plan(integrator: Any, times: NDArray[np.float64]) -> Plan:
    """The :class:`Plan` of ``integrator`` on ``times``, computed once per integrator and grid.

    A plan is immutable and depends only on the integrator and the grid, so runs on the same grid (the
    batches of one sampling job, a scheduler's dry run and its loop) share one; the 32 most recent are kept.

    Raises
    ------
    TypeError
        The estimator's plan is neither ``None`` nor a tuple of one entry per step.
    """
    times = np.asarray(times, dtype=np.float64)
    try:
        hash(integrator)
    except TypeError:  # an unhashable integrator: no cache
        return _plan(integrator, times)
    return _cached_plan(integrator, times.tobytes())


@lru_cache(maxsize=32)
def _cached_plan(integrator: Any, times: bytes) -> Plan:
    return _plan(integrator, np.frombuffer(times, dtype=np.float64))


def _plan(integrator: Any, times: NDArray[np.float64]) -> Plan:
    phi, estimator = integrator.transfer, integrator.estimator
    steps = len(times) - 1
    grid = tuple(float(t) for t in times)
    coefficients = tuple(planned_coefficients_many(phi, grid[:-1], grid[1:]))
    if None in coefficients:  # a transfer with its own __call__: each step calls it
        coefficients = None
    entries = estimator.plan(times, phi)
    if entries is not None and (not isinstance(entries, tuple) or len(entries) != steps):
        raise TypeError(f"{estimator!r}.plan must return None or a tuple of one entry per step ({steps}), got "
                        f"{type(entries).__name__}" + (f" of length {len(entries)}" if isinstance(entries, tuple) else ""))
    return Plan(grid, coefficients, entries, planned_gradients_many(phi, grid))


def start_run(integrator: Any, x: Any, times: NDArray[np.float64], *, prediction: str,
              check_finite: bool, out_dtype: str, estimator_state: Any = None, planned: bool = True) -> Run:
    """The run of ``integrator`` from ``x`` at ``times[0]`` (used by ``Integrator.start``); ``planned=False``
    computes no plan (a dry run that only counts evaluations), each step then computing its own weights."""
    t0 = float(times[0])
    state = (integrator.estimator.init(x, t0, integrator.transfer, times) if estimator_state is None
             else estimator_state)
    run = Run(integrator=integrator, times=times, index=0, x=x, state=state, prediction=prediction,
              check_finite=check_finite, out_dtype=out_dtype, plan=make_plan(integrator, times) if planned else None)
    return _begin(run, 0, x, state, 0, None)


def gradient_array(e: Any) -> Any:
    """A step's gradient as an array (evaluates a :class:`~pndmkit._backend.LinComb`)."""
    return e.evaluate() if isinstance(e, LinComb) else e


def call_model(model: Callable[[Any, float], Any], x: Any, t: float) -> Any:
    """``model(x, t)`` for a driver that hands the model a read-only ``x`` (the sampler's state).

    numpy's "read-only" error does not say which array was written, so a ``ValueError`` mentioning "read-only"
    is re-raised (chained) saying what is known: the model raised it, and ``x`` was read-only; the model may
    equally have written into a read-only array of its own.

    Raises
    ------
    ValueError
        ``model`` raised a read-only error (the original is its ``__cause__``); other errors pass unchanged.
    """
    try:
        return model(x, t)
    except ValueError as exc:
        _explain_read_only(exc, f"model raised a read-only error at t={t} ({exc}); the x it is given is the "
                                f"sampler's state and read-only: if the model wrote into x, return a new array "
                                f"instead of modifying x in place")
        raise


def call_back(callback: Callable[[float, Any, Any], Any], t: float, x: Any, e: Any) -> None:
    """``callback(t, x, e)`` on arrays a run keeps (its state ``x``, a gradient ``e`` or ``None``), refusing a write.

    numpy arrays are passed as read-only views (no copy), so a write raises inside the callback; a tensor cannot be
    made read-only, so its version counter (host-side, no device synchronisation) is compared after the call.
    numpy's "read-only" error does not say which array was written: it is re-raised (chained) saying the callback
    raised it and that ``x`` and ``e`` were read-only.

    Raises
    ------
    ValueError
        ``callback`` raised a read-only error (the original is its ``__cause__``); other errors pass unchanged.
    RuntimeError
        ``callback`` modified the tensor ``x`` or ``e`` in place (naming which).
    """
    versions = version_counter(x), version_counter(e)
    try:
        callback(t, read_only(x), read_only(e))
    except ValueError as exc:
        _explain_read_only(exc, f"callback {_name(callback)} raised a read-only error at t={t} ({exc}); the x and "
                                f"e' it is given are the run's own arrays and read-only: if it wrote into them, "
                                f"copy them before modifying")
        raise
    for name, array, version in (("x", x, versions[0]), ("e'", e, versions[1])):
        if version is not None and array._version != version:
            raise RuntimeError(f"callback {_name(callback)} modified the {name} it was given at t={t} in place; "
                               f"the run keeps that tensor: copy it (.clone()) before modifying")


def _explain_read_only(exc: ValueError, message: str) -> None:
    """Raise ``ValueError(message)``, chained to ``exc``, where ``exc`` is numpy's read-only error (which does not
    say which array was written); return otherwise, for the caller to re-raise ``exc`` as it is."""
    if "read-only" in str(exc):
        raise ValueError(message) from exc


def _name(fn: Any) -> str:
    return repr(getattr(fn, "__qualname__", None) or type(fn).__name__)
