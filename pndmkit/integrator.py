r"""The integrator: a gradient estimator composed with a transfer map (PNDM, Liu et al. 2022, sec. 3.3).

One step ``t -> t_next`` is the estimator's generator (its model evaluations and its gradient ``e'``)
followed by ``x_next = phi(x, e', t, t_next)``, or a next sample the estimator returns itself (a corrector).
:meth:`Integrator.start` gives an immutable ask/tell :class:`~pndmkit.run.Run`; :meth:`Integrator.solve`
drives one with a model, so there is one code path. Model evaluations are counted where they are told,
and :meth:`Integrator.nfe` is derived by a dry run of the same protocol, never declared.

Examples
--------
Prototype a method in one line: the paper's F-PNDM (Algorithm 2) is a PRK warm-up, then fourth-order
Adams-Bashforth, both through the DDIM transfer.

>>> import numpy as np
>>> from pndmkit.schedules import LinearVP
>>> from pndmkit.tableaus import RK4
>>> from pndmkit.transfers import DDIMTransfer
>>> from pndmkit.adams import LinearMultistep
>>> from pndmkit.estimators import Warmup
>>> from pndmkit.runge_kutta import RungeKutta
>>> sched = LinearVP()
>>> f_pndm = Integrator(Warmup(RungeKutta(RK4), 3, LinearMultistep(4, ramp=False)), DDIMTransfer(sched))
>>> model = lambda x, t: 0.5 * x            # any callable eps(x, t)
>>> sol = f_pndm.solve(model, np.ones(3), np.linspace(1.0, 1e-3, 11))
>>> sol.nfe, f_pndm.nfe(10)                 # 3 PRK steps (4 each) + 7 AB4 steps
(19, 19)
>>> f_pndm.order(), f_pndm.kind             # t-midpoint stages and t-uniform weights: second order
(2, 'pseudo')
"""

from __future__ import annotations

import functools
import math
import types
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit._backend import cast, check_array, dtype_name, outside_graph
from pndmkit._checks import check_bool
from pndmkit.estimators import GradientEstimator
from pndmkit.grids import check_grid, make_grid
from pndmkit.models import Model, check_prediction, undefined_eps_times
from pndmkit.run import Callback, Run, Solution, call_back, call_model, gradient_array, start_run
from pndmkit.stability import warn_if_unstable
from pndmkit.transfers import Transfer

__all__ = ["Integrator", "DryRun", "Solution", "Model", "Callback", "same_method"]

_LOW_PRECISION = ("float16", "bfloat16")
_STATE_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _state_dtype(x: Any, state_dtype: Optional[str]) -> str:
    name = dtype_name(x)
    if state_dtype is None:
        return "float32" if name in _LOW_PRECISION else name
    if state_dtype not in _STATE_DTYPES:
        raise ValueError(f"state_dtype must be None (at least float32) or one of {_STATE_DTYPES}, got {state_dtype!r}")
    return state_dtype


@dataclass(frozen=True)
class Integrator:
    """A pseudo (or classical) numerical method: gradient estimator + transfer map.

    Parameters
    ----------
    estimator : GradientEstimator
        The gradient part.
    transfer : Transfer
        The transfer part (:class:`~pndmkit.transfers.DDIMTransfer` or
        :class:`~pndmkit.transfers.DataTransfer` for pseudo methods, :class:`~pndmkit.transfers.LinearTransfer`
        for classical ones).
    name : str
        Name reported in :class:`~pndmkit.run.Solution`.
    data_form : str
        Registry name of the same estimator on the data-prediction transfer, which a
        :class:`~pndmkit.stability.StabilityWarning` suggests when this method's eps-form transfer would
        amplify its stage errors (set by :mod:`pndmkit.methods`; empty: the warning gives the generic remedy).

    Raises
    ------
    TypeError
        An argument of the wrong type.
    """

    estimator: GradientEstimator
    transfer: Transfer
    name: str = ""
    data_form: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.estimator, GradientEstimator):
            raise TypeError(f"estimator must be a GradientEstimator (Single, RungeKutta, LinearMultistep, AdamsPC, "
                            f"Warmup, Final, or a subclass), got {type(self.estimator).__name__}")
        if not isinstance(self.transfer, Transfer):
            raise TypeError(f"transfer must be a Transfer (DDIMTransfer, DataTransfer, LinearTransfer), got "
                            f"{type(self.transfer).__name__}")
        for field_name in ("name", "data_form"):
            if not isinstance(getattr(self, field_name), str):
                raise TypeError(f"{field_name} must be a str, got {type(getattr(self, field_name)).__name__}")

    # -- metadata -------------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``"pseudo"`` or ``"classical"``: the kind of the transfer."""
        return self.transfer.kind

    def order(self) -> int:
        """Global order on a ``t``-uniform grid, as the estimator reports it for this transfer."""
        return self.estimator.order(self.transfer)

    # -- the protocol ---------------------------------------------------------------------------------
    @outside_graph  # host-side set-up in float64 numpy: eager under torch.compile
    def start(self, x: Any, grid: Sequence[float] | NDArray[np.float64], *, prediction: str = "eps",
              check_finite: bool = False, state_dtype: Optional[str] = None, estimator_state: Any = None,
              check_x: bool = True) -> Run:
        """An ask/tell :class:`~pndmkit.run.Run` from ``x`` at ``grid[0]`` along ``grid``.

        Parameters
        ----------
        x : numpy.ndarray or torch.Tensor
            Sample at ``grid[0]`` (floating dtype, any shape and device).
        grid : sequence of float
            Decreasing times in the schedule's units, inside its domain (validated by
            :func:`pndmkit.grids.check_grid`).
        prediction : {"eps", "x0", "v", "score"}
            What the told outputs predict; converted to ``eps`` at each evaluation point, before any combination.
        check_finite : bool
            Check each told output for NaN/inf (synchronises GPU devices); otherwise only the final sample
            is checked, by :meth:`Run.solution`.
        state_dtype : str, optional
            dtype of the sampler state. Default: that of ``x``, but at least float32 (a float16/bfloat16
            state loses 15-25% accuracy over 1000 steps); the final sample is returned in ``x``'s dtype.
        estimator_state : object, optional
            The estimator's state to start from instead of ``estimator.init(...)`` (e.g. a known multistep
            history ``((t_1, e_1), ...)`` when continuing another sampler's run).
        check_x : bool
            Check ``x`` for NaN/inf entries (default): one pass over ``x`` and, for a tensor on a GPU, one device
            synchronisation per run (the steps never synchronise). ``False`` for a caller that has checked ``x``
            itself (:func:`pndmkit.sample` checks ``x_T`` up front, by that name) or that must not synchronise
            (the diffusers scheduler inside a pipeline's loop); the type of ``x`` is checked either way.

        Raises
        ------
        TypeError
            ``x`` is not a floating numpy array or torch tensor.
        ValueError
            ``x`` has a NaN or infinite entry (with ``check_x``; a told output is checked only with
            ``check_finite``), or is a 0-d numpy array; a bad grid, prediction or state_dtype; a grid from
            ``alpha = 0`` that the method cannot run with ``prediction``.
        """
        check_bool(check_x, "check_x")
        check_array(x, "x", finite=check_x)
        check_bool(check_finite, "check_finite")
        times = check_grid(self.transfer.schedule, grid)
        times.setflags(write=False)
        check_prediction(prediction, self.transfer.schedule)
        self._check_start_at_rest(times, prediction)
        warn_if_unstable(self, times, self.data_form)  # a StabilityWarning naming the cause and a remedy
        out_dtype = dtype_name(x)
        x_state = cast(x, _state_dtype(x, state_dtype))
        if estimator_state is not None:  # a foreign state fails somewhere in the first step: try it on zeros
            zero = 0.0 * x_state
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    probe = start_run(self, zero, times[:2], prediction="eps", check_finite=False,
                                      out_dtype=dtype_name(zero), estimator_state=estimator_state)
                    while probe.request is not None:
                        probe = probe.tell(zero)
            except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
                raise ValueError(f"estimator_state is not a state of {self.estimator!r}: its first step failed with "
                                 f"{type(exc).__name__}: {exc} (pass the state of a run of this estimator, e.g. "
                                 f"run.state)") from exc
        return start_run(self, x_state, times, prediction=prediction, check_finite=bool(check_finite),
                         out_dtype=out_dtype, estimator_state=estimator_state)

    def walk_failure(self, grid: Sequence[float] | NDArray[np.float64], prediction: str = "eps"
                     ) -> Optional[Exception]:
        """Why a run on ``grid`` told ``prediction`` outputs would fail before its end, found by its dry run
        (:meth:`dry_run`) without a model call; ``None`` where it runs.

        Parameters
        ----------
        grid : sequence of float
            Checked, decreasing grid times in the schedule's units.
        prediction : str
            What the told outputs predict (:data:`pndmkit.models.PREDICTIONS`).

        Returns
        -------
        Exception or None
            The ``ValueError`` of a prediction the schedule does not define, or the ``ValueError`` /
            ``ArithmeticError`` of the first step that cannot take the outputs (e.g. an ``eps`` output at
            ``alpha = 0``, an ``x0`` output where ``sigma = 0``); ``None`` where every step runs.
        """
        try:
            check_prediction(prediction, self.transfer.schedule)
            self.dry_run(grid, prediction)
        except (ValueError, ArithmeticError) as exc:
            return exc
        return None

    def _check_start_at_rest(self, times: NDArray[np.float64], prediction: str) -> None:
        """Refuse a run from ``alpha = 0`` (pure noise, e.g. flow matching at ``t = 1``) that cannot take
        ``prediction`` outputs there, in one line naming the time, before any model call (its dry run, instead of
        a division by zero in its first step; :func:`pndmkit.sample` refuses the same runs naming the methods
        that do run)."""
        t0 = float(times[0])
        if float(self.transfer.schedule.alpha(t0)) != 0.0:
            return
        failure = self.walk_failure(times, prediction)
        if failure is None:
            return
        if prediction in ("eps", "score"):
            runs = [p for p in ("flow", "x0") if self.walk_failure(times, p) is None]
            tell = (f"tell the run what the model predicts (prediction={' or '.join(map(repr, runs))}), or "
                    if runs else "no prediction starts this method there: ")
            why = f"an {prediction!r} output carries no information on x0 there; {tell}start the grid below t={t0:g}"
        else:
            why = str(failure).splitlines()[0]
        raise ValueError(f"{self.name or 'this method'} with prediction={prediction!r} cannot run this grid from "
                         f"t={t0:g}, where alpha = 0 (pure noise): {why}")

    def solve(self, model: Model, x: Any = None, grid: Sequence[float] | NDArray[np.float64] | None = None, *,
              callback: Callback | None = None, check_finite: Optional[bool] = None, prediction: Optional[str] = None,
              state_dtype: Optional[str] = None, run: Optional[Run] = None, check_x: bool = True) -> Solution:
        """Integrate along ``grid`` (decreasing times, ``grid[0]`` the start) from ``x``, calling ``model``.

        ``run`` resumes a saved (e.g. unpickled) :class:`~pndmkit.run.Run` instead of starting from ``x``;
        the result is bit-identical to an uninterrupted run. The run carries its sample, grid, prediction type,
        finiteness check and state dtype: with ``run=`` those parameters are refused unless they repeat the
        run's own. Other parameters as :meth:`start` (defaults ``prediction="eps"``, ``check_finite=False``,
        ``check_x=True``); ``callback(t_next, x_next, e')`` is called after every step with the run's own arrays
        (numpy: read-only views; a tensor written in place is refused after the callback returns, naming it): a
        callback that wants to change them copies them first. ``model`` must not write into its input
        (a numpy input is read-only; a tensor written in place is refused by :meth:`~pndmkit.run.Run.tell`); it
        may return one preallocated output buffer every call (copied where the run keeps it; a new array per call
        is kept without a copy).

        Raises
        ------
        TypeError
            ``model`` or ``callback`` not callable, ``run`` not a Run, or neither ``x`` and ``grid`` nor ``run``.
        ValueError
            ``run`` started by another method, or options that contradict the run; ``model`` or ``callback``
            raised numpy's read-only error (a write into the read-only arrays it was given, or into a read-only
            array of its own: numpy does not say which), chained to the original (:func:`pndmkit.run.call_model`).
        RuntimeError
            ``model`` or ``callback`` modified a tensor it was given in place (naming which).
        """
        if not callable(model):
            raise TypeError(f"model must be callable as model(x, t), got {type(model).__name__}")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable as callback(t, x, e), got {type(callback).__name__}")
        if run is None:
            if x is None or grid is None:
                raise TypeError("solve needs x and grid (or run= to resume a saved run)")
            run = self.start(x, grid, prediction="eps" if prediction is None else prediction,
                             check_finite=False if check_finite is None else check_finite, state_dtype=state_dtype,
                             check_x=check_x)
        else:
            self._check_resume(run, x, grid, prediction, check_finite, state_dtype)
        while run.request is not None:
            index = run.index
            # the output goes to tell as a temporary, held by no variable here: a model that returns a new array
            # hands it over and the run keeps it as it is; one that returns an array it keeps (a preallocated
            # buffer, a CUDA graph's static output) gets it copied where the run keeps it (Run.tell)
            run = run.tell(call_model(model, *run.request))
            if callback is not None and run.index != index:
                call_back(callback, run.t, run.x, gradient_array(run.last_gradient))
        return run.solution()

    def _check_resume(self, run: Any, x: Any, grid: Any, prediction: Optional[str], check_finite: Optional[bool],
                      state_dtype: Optional[str]) -> None:
        """Refuse a ``run=`` that is not this method's, or options that say something other than the run."""
        if not isinstance(run, Run):
            raise TypeError(f"run must be a Run (from Integrator.start, or unpickled), got {type(run).__name__}")
        if not same_method(run.integrator, self):
            raise ValueError(f"run was started by a different integrator: {run.integrator!r}, not {self!r}")
        given = [name for name, value in (("x", x), ("grid", grid)) if value is not None]
        if given:
            raise TypeError(f"solve(run=...) resumes the run from its own sample and grid; do not pass "
                            f"{' and '.join(given)} as well")
        for name, value, own in (("prediction", prediction, run.prediction), ("check_finite", check_finite,
                                 run.check_finite), ("state_dtype", state_dtype, dtype_name(run.x))):
            if value is not None and value != own:
                raise ValueError(f"{name}={value!r} contradicts the run, which was started with {name}={own!r}")


    def nfe(self, steps: int | Sequence[float]) -> int:
        """Model evaluations of a run of ``steps`` steps (on the schedule's default grid) or on a grid.

        Derived by a dry run of the protocol on a scalar state, so it counts exactly what :meth:`solve` asks.
        A fixed-step method's count depends on the step count alone, so where the schedule's default grid
        refuses ``steps`` (a ``leading`` grid of a DDPM table that would skip the start of the trajectory,
        e.g. 600 steps of 1000) it is counted on the ``uniform`` grid of as many steps: the count stays an
        increasing function of ``steps``, which :func:`pndmkit.methods.steps_for_nfe` bisects.

        Raises
        ------
        TypeError
            ``steps`` is neither an integer nor a sequence of times (``2.5``, ``True``, a string), naming ``steps``.
        ValueError
            An integer below 1 (naming ``steps``), or a bad grid (as :func:`pndmkit.grids.check_grid`).
        """
        if isinstance(steps, (str, bytes, bool, np.bool_)) or (np.ndim(steps) == 0 and
                                                                not isinstance(steps, (int, np.integer))):
            raise TypeError(f"steps must be an integer >= 1 (a step count of the schedule's default grid) or a grid "
                            f"(a 1-D sequence of at least 2 times), got {type(steps).__name__} {steps!r}")
        if isinstance(steps, (int, np.integer)):
            try:
                grid = make_grid(self.transfer.schedule, int(steps))
            except ValueError as refused:
                try:
                    grid = make_grid(self.transfer.schedule, int(steps), "uniform")
                except ValueError:
                    raise refused from None
        else:
            grid = steps
        return len(self.evaluation_times(grid))

    def evaluation_times(self, grid: Sequence[float] | NDArray[np.float64]) -> list[float]:
        """The time of every model evaluation of a run on ``grid``, in order (their number is :meth:`nfe`).

        Derived by a dry run of the protocol on a scalar state (zero ``eps`` outputs), without a model: a
        fixed-step method's evaluation times depend on the grid alone, so a caller can refuse a run that would
        evaluate where the model's prediction gives no ``eps`` before calling the model once
        (:func:`pndmkit.sample` does). Times are in the schedule's units. ``dry_run(grid).times`` as a list
        (:meth:`dry_run`).

        Parameters
        ----------
        grid : sequence of float or ndarray, shape (steps + 1,)
            The step boundaries in the schedule's time ``t``: at least 2 finite times, strictly decreasing
            (from noise to data), inside ``[schedule.t_min, schedule.t_max]``.

        Returns
        -------
        list of float
            The time, in the schedule's time ``t``, of each model evaluation in the order the run asks for them
            (Python floats; a time repeats where the method evaluates there twice); its length is the run's NFE.

        Raises
        ------
        TypeError
            ``grid`` is not a sequence of numbers (:func:`pndmkit.grids.check_grid`).
        ValueError
            A bad grid (:func:`pndmkit.grids.check_grid`), or one on which an ``eps`` output cannot be converted
            to the method's gradient (a grid that starts where ``alpha = 0``: see :meth:`dry_run`).
        """
        return list(self.dry_run(grid).times)

    def dry_run(self, grid: Sequence[float] | NDArray[np.float64], prediction: str = "eps") -> "DryRun":
        """Every model evaluation of a run on ``grid`` told ``prediction`` outputs, without a model.

        The run is walked through the ask/tell protocol on a scalar state with zero outputs. A fixed-step
        method's evaluations depend on the grid alone, not on the outputs nor on their prediction type, so one
        walk serves every prediction: it is told ``eps`` outputs wherever the grid starts at a finite
        noise-to-signal ratio (an ``x0`` walk would divide by ``sigma = 0`` at ``abar = 1``), and outputs of
        kind ``prediction`` on a grid that starts where ``alpha = 0`` (a flow grid from ``t = 1``, where an
        ``eps`` output carries no information on ``x0``). An ``x0`` or ``flow`` prediction is then refused
        where the run would evaluate it at a time where it gives no ``eps``
        (:func:`pndmkit.models.undefined_eps_times`). The walk is done once per integrator, grid and walk
        prediction (the 64 most recent are kept; an unhashable integrator is walked every time): a scheduler
        lays out the same grid before every batch.

        Parameters
        ----------
        grid : sequence of float or ndarray, shape (steps + 1,)
            The step boundaries in the schedule's time ``t``: at least 2 finite times, strictly decreasing
            (from noise to data), inside ``[schedule.t_min, schedule.t_max]``.
        prediction : {"eps", "x0", "v", "score", "flow"}
            What the run would be told (:data:`pndmkit.models.PREDICTIONS`, one the schedule defines).

        Returns
        -------
        DryRun
            ``times``: the time of each evaluation in the schedule's time ``t``, in the order the run asks for
            them (its length is the run's NFE); ``starts``: ``(k, j)`` for each evaluation ``k`` that is the first
            of grid step ``j`` and lies at ``grid[j]``.

        Raises
        ------
        TypeError
            ``grid`` is not a sequence of numbers (:func:`pndmkit.grids.check_grid`).
        ValueError
            A bad grid (:func:`pndmkit.grids.check_grid`) or ``prediction``
            (:func:`pndmkit.models.check_prediction`); an ``x0`` or ``flow`` prediction with an evaluation where
            it gives no ``eps`` (the message names the times); a walk that cannot convert its outputs at an
            evaluation (an ``eps`` walk on a grid from ``alpha = 0``), naming the time.

        Examples
        --------
        >>> from pndmkit.methods import METHODS
        >>> from pndmkit.schedules import DiscreteVP
        >>> pie = METHODS["pie"].build(DiscreteVP.linear())
        >>> walk = pie.dry_run([999.0, 499.0, 0.0], prediction="x0")
        >>> walk.times, walk.starts                  # Heun: at both ends of each step
        ((999.0, 499.0, 499.0, 0.0), ((0, 0), (2, 1)))
        """
        schedule = self.transfer.schedule
        times = check_grid(schedule, grid)
        check_prediction(prediction, schedule)
        walk_with = prediction if prediction == "eps" or not math.isfinite(float(schedule.s(float(times[0])))) \
            else "eps"
        try:
            hash(self)
        except TypeError:  # an unhashable integrator (a hand-built part with a list, ...): no cache
            walk = _walk(self, times, walk_with)
        else:
            walk = _cached_walk(self, times.tobytes(), walk_with)
        if walk_with != prediction:
            bad = undefined_eps_times(schedule, walk.times, prediction)
            if bad:
                raise ValueError(f"prediction={prediction!r}: {self.name or 'the method'!r} evaluates at t="
                                 f"{', '.join(f'{t:g}' for t in bad)}, where a model predicting {prediction!r} gives no "
                                 f"eps; "
                                 f"end the grid earlier or use a method that does not evaluate there")
        return walk


class DryRun(NamedTuple):
    """The model evaluations of a fixed-step run, found by :meth:`Integrator.dry_run` before any model call.

    Attributes
    ----------
    times : tuple of float
        The time of each evaluation in the schedule's time ``t``, in the order the run asks for them (a time
        repeats where the method evaluates there twice); ``len(times)`` is the run's NFE.
    starts : tuple of (int, int)
        ``(k, j)`` for each evaluation ``k`` (an index into ``times``) that is the first of grid step ``j`` and
        lies at the step's start ``grid[j]``, in increasing ``k``: where a run can be started afresh and ask for
        ``times[k:]`` if the method has no warm-up. A step with no such evaluation (none at all, or a first one
        elsewhere) has no entry.
    """

    times: tuple[float, ...]
    starts: tuple[tuple[int, int], ...]


@lru_cache(maxsize=64)
def _cached_walk(integrator: Integrator, grid: bytes, prediction: str) -> DryRun:
    return _walk(integrator, np.frombuffer(grid, dtype=np.float64), prediction)


def _walk(integrator: Integrator, grid: NDArray[np.float64], prediction: str) -> DryRun:
    """The dry run of ``integrator`` on a checked ``grid`` told zero ``prediction`` outputs."""
    # no plan: counting needs no weights, and the plans of real grids stay cached
    run = start_run(integrator, np.zeros(1), grid, prediction=prediction, check_finite=False, out_dtype="float64",
                    planned=False)
    zero = np.zeros(1)
    times: list[float] = []
    starts: list[tuple[int, int]] = []
    while run.request is not None:
        t = float(run.request[1])
        if not run.told and t == run.t:
            starts.append((len(times), run.index))
        times.append(t)
        try:
            run = run.tell(zero)
        except ZeroDivisionError as exc:
            raise ValueError(f"a dry run of {integrator.name or 'the method'!r} with prediction={prediction!r} "
                             f"cannot convert its output at t={t:g} into the method's gradient ({exc}): a grid "
                             f"that starts where alpha = 0 needs the prediction the model makes, e.g. 'flow'") \
                from exc
    return DryRun(tuple(times), tuple(starts))


def _same_value(a: Any, b: Any, seen: set) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_value(u, v, seen) for u, v in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k], seen) for k in a)
    if isinstance(a, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)):
        return False  # functions: the same object or not the same (``a is b`` was checked)
    if hasattr(a, "__dict__"):
        key = (id(a), id(b))
        if key in seen:  # composed estimators refer to each other: a pair on the way is compared already
            return True
        seen.add(key)
        va = {k: v for k, v in vars(a).items() if k not in ("_init_depth", "_frozen")}
        vb = {k: v for k, v in vars(b).items() if k not in ("_init_depth", "_frozen")}
        return va.keys() == vb.keys() and all(_same_value(va[k], vb[k], seen) for k in va)
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def same_method(a: Any, b: Any) -> bool:
    """Whether two method objects (integrators, estimators, transfers, schedules) describe the same sampler:
    the same types and the same parameters, arrays compared by value (two schedules on other tables are
    different), functions by identity. A pickled copy of an integrator is the same.

    >>> from pndmkit.methods import METHODS
    >>> from pndmkit.schedules import DiscreteVP, LinearVP
    >>> same_method(METHODS["ipndm"].build(LinearVP()), METHODS["ipndm"].build(LinearVP()))
    True
    >>> same_method(METHODS["ipndm"].build(DiscreteVP.linear()), METHODS["ipndm"].build(DiscreteVP.quad()))
    False
    """
    return _same_value(a, b, set())
