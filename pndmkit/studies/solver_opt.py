r"""Fitted solvers: the grid *and* the step weights of a multistep sampler fitted at one NFE, training-free.

:func:`pndmkit.studies.grid_opt.optimize` moves only the times; at NFE 5-10 on 256-dimensional data that cuts
iPNDM's error by about a quarter, and the error left is the formula's: a step's weights come from an interpolant
whose assumptions (a smooth ``eps`` over the step) fail on steps this long. :func:`optimize_solver` frees the
weights too, as S4S does (Frankel et al., "S4S: Solving for a Fast Diffusion Model Solver", ICML 2025): step
``i`` combines the gradients of steps ``i, i - 1, ...`` with weights of its own
(:class:`pndmkit.adams.TabulatedMultistep`, through the method's DDIM transfer), fitted with the grid on
calibration noises against the reference flow. It starts from iPNDM's weights (:func:`adams_bashforth_table`)
on iPNDM's optimised grid, so the search starts where :func:`~pndmkit.studies.grid_opt.optimize` ended.

``base="ipndm-x0"`` builds the same fit on iPNDM's data-prediction form (:data:`BASE_METHODS`): the table then
weighs past ``x0`` predictions and runs through the data-prediction transfer
(:class:`~pndmkit.transfers.DataTransfer`, DPM-Solver++'s exact first-order step in ``e^lambda``), starting from
``ipndm-x0``'s weights on ``ipndm-x0``'s optimised grid; the baselines and the fallback are then ``ipndm-x0``'s.
On the shipped digits UNet at NFE 5 that fit's calibration error was 0.030 against the ``eps`` form's 0.039, and
it beat the ``eps`` form on 76% of 160 held-out noises (median per-noise ratio 0.85), though not in RMS, which two
outlier noises decided: an option to try, not the default.

The objective is the same as the grid search's (RMS end-point error on the calibration noises), minimised by
scipy's trust-region least squares (:func:`scipy.optimize.least_squares`, Jacobian by forward differences:
``P + 1`` runs per iteration for ``P`` parameters), which needs far fewer runs than Nelder-Mead in the 20-80
parameters of a table. Its residuals are the whole end-point error: all ``n * d`` coordinates of the ``n``
calibration end points minus their references (scaled by ``1 / sqrt(n d)``, so their sum of squares is the
squared RMS error); only where the Jacobian would pass :data:`RESIDUAL_LIMIT` floats is each sample's error cut
into groups of coordinates, each replaced by its root sum of squares (the same objective, fewer residuals). The result is judged on held-out noises only, against the
grid search's result (the base method on its handed-back grid) with the same 95% paired bootstrap interval
(:func:`~pndmkit.studies.statistics.reduction_interval`); where the interval does not lie above 0 it falls back
to that solver, saying so.

A fitted table is a sampler for one step count and its grid, not a method with an order: its rows need not sum
to one, and it is reported apart from the built-in methods (``pndmkit compare --optimized-solvers``).

What a fit hands back to sample with is a :class:`FittedSolver` (:attr:`OptimizedSolver.fitted`): the grid, the
table, the noise's time and the schedule, with where they came from. :func:`save_solver` writes it to a JSON file
and :func:`load_solver` reads it back, checked field by field, so that a fit made once (``pndmkit grid fit --out
FILE``) samples anywhere later (``pndmkit sample --solver FILE``) with the same result bit for bit.

Examples
--------
>>> res = optimize_solver("gmm1d", 5, calibration=64, heldout=64, maxfev=200, grid_maxfev=40)
>>> res.grid.size, len(res.weights), bool(res.heldout_error <= res.baseline_error)
(6, 5, True)
>>> import os, tempfile
>>> path = save_solver(res.fitted, os.path.join(tempfile.mkdtemp(), "solver.json"))
>>> load_solver(path) == res.fitted, load_solver(path).nfe
(True, 5)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit._checks import check_bool, check_choice, check_int
from pndmkit.adams import TabulatedMultistep, adams_bashforth_table
from pndmkit.errors import UsageError, blame
from pndmkit.integrator import Integrator
from pndmkit.schedules import NoiseSchedule, schedule_key
from pndmkit.studies.grid_opt import (FIRST_TIMES, MAX_NOISES, FreeFirstTime, GridFallbackWarning, GridFamily,
                                      OptimizedGrid, builtin_grids, check_degree, default_noises, end_points,
                                      fallback_reason, optimize, problem_name, sample_errors)
from pndmkit.studies.solver_file import (BASE_METHOD, BASE_METHODS, FITTED_NAME, SOLVER_FIELDS, SOLVER_FORMAT,
                                         SOLVER_VERSION, SOLVER_VERSIONS, FittedSolver, check_base, fitted_integrator,
                                         fitted_name, load_solver, save_solver, solver_file_text)
from pndmkit.studies.monitor import interrupts_held
from pndmkit.studies.statistics import reduction_interval
from pndmkit.studies.targets import StudyTarget

__all__ = ["OptimizedSolver", "SolverFallbackWarning", "optimize_solver", "BASE_METHOD", "BASE_METHODS",
           "check_base", "fitted_name", "fitted_integrator", "FittedSolver", "save_solver", "load_solver",
           "solver_file_text", "default_maxfev", "SOLVER_FORMAT", "SOLVER_VERSION", "SOLVER_VERSIONS", "SOLVER_FIELDS", "FITTED_NAME"]

#: most floats of the residuals' Jacobian (residuals times parameters plus one) before a sample's residuals are
#: grouped into sums of squares (:func:`optimize_solver`)
RESIDUAL_LIMIT = 2 ** 24

class SolverFallbackWarning(GridFallbackWarning):
    """:func:`optimize_solver` handed back the grid search's solver: the fitted weights' held-out gain is not shown."""


@dataclass(frozen=True, eq=False)
class OptimizedSolver:
    """A fitted grid and weight table and how they do on held-out noises (:func:`optimize_solver`).

    Attributes
    ----------
    nfe, steps : int
        The budget and the step count (``grid`` has ``steps + 1`` times, ``weights`` ``steps`` rows).
    grid : ndarray
        The grid handed back (decreasing times in the schedule's units; the first at or below ``t_start``, the noise
        then taken as the state there, :func:`~pndmkit.studies.grid_opt.noise_at`).
    weights : tuple of tuples of float
        The weight table handed back: the fitted one, or the base method's
        (:func:`~pndmkit.adams.adams_bashforth_table`, the same table for both bases) where it fell back.
    calibration_error, heldout_error : float
        RMS end-point error of the searched fit (:attr:`searched_grid`, :attr:`searched_weights`) on the calibration
        and held-out noises, whether or not it is handed back (the handed-back solver's are :attr:`fitted`'s).
    baseline_error : float
        Held-out RMS error of the grid search's solver (the base method on :attr:`grid_result`'s grid), the baseline
        of :attr:`heldout_interval`.
    builtin_error, builtin_kind : float, str
        Held-out RMS error of the base method on its best built-in grid, and that grid's kind.
    heldout_interval : (float, float)
        95% paired bootstrap interval of the searched fit's held-out cut against the baseline (``nan``: too few
        held-out noises for one).
    builtin_interval : (float, float)
        The same against the base method on its best built-in grid.
    evaluations : int
        Sampling runs on the calibration noises of the weight search (the grid search's are in
        :attr:`grid_result`).
    grid_result : OptimizedGrid
        The grid search the fit started from.
    searched_grid, searched_weights : ndarray, tuple
        The fitted grid and table, kept whether or not handed back.
    fell_back : bool
    fallback_reason : str
    first_time : {"free", "fixed"}
    t_start : float
        The time the noise is drawn at (the schedule's top by default).
    schedule : str
        :func:`~pndmkit.schedules.schedule_key` of the schedule the solver was fitted on.
    calibration, heldout, seed : int
    stopped : str
        Why the search ended early (``""``: it did not).
    baseline_calibration_error : float
        Calibration RMS error of the grid search's solver (what a fallback hands back; ``nan``: not recorded).
    base : str
        The method the solver is built on (:data:`BASE_METHODS`; default :data:`BASE_METHOD`): its grid search,
        start table, transfer, baselines and fallback.
    """

    nfe: int
    steps: int
    grid: NDArray[np.float64]
    weights: tuple
    calibration_error: float
    heldout_error: float
    baseline_error: float
    builtin_error: float
    builtin_kind: str
    heldout_interval: tuple[float, float]
    builtin_interval: tuple[float, float]
    evaluations: int
    grid_result: OptimizedGrid
    searched_grid: NDArray[np.float64]
    searched_weights: tuple
    fell_back: bool
    fallback_reason: str
    first_time: str
    t_start: float
    schedule: str
    calibration: int
    heldout: int
    seed: int
    stopped: str = ""
    _schedule: Any = field(default=None, repr=False)
    baseline_calibration_error: float = math.nan
    base: str = BASE_METHOD

    @property
    def reduction(self) -> float:
        """Held-out cut of the fitted solver against the grid search's: ``1 - heldout_error / baseline_error``."""
        return 1.0 - self.heldout_error / self.baseline_error

    @property
    def name(self) -> str:
        """The name its runs report: :func:`fitted_name` of :attr:`base` (``ipndm-fitted``, ``ipndm-x0-fitted``)."""
        return fitted_name(self.base)

    @property
    def builtin_reduction(self) -> float:
        """Held-out cut of the fitted solver against the base method on its best built-in grid."""
        return 1.0 - self.heldout_error / self.builtin_error

    @property
    def fitted(self) -> FittedSolver:
        """The handed-back solver (:attr:`grid`, :attr:`weights`) to run or save (:func:`save_solver`), with the
        errors of what it holds: the fitted solver's, or where it fell back the grid search's solver's
        (:attr:`baseline_calibration_error`, :attr:`baseline_error`)."""
        back = self.fell_back
        return FittedSolver(grid=self.grid, weights=self.weights, t_start=self.t_start, schedule=self.schedule,
                            nfe=self.nfe, calibration_error=self.baseline_calibration_error if back
                            else self.calibration_error, heldout_error=self.baseline_error if back
                            else self.heldout_error, fell_back=back, problem=self.grid_result.problem,
                            calibration=self.calibration, heldout=self.heldout, seed=self.seed, base=self.base,
                            noise_schedule=self._schedule)

    def integrator(self, schedule: Optional[NoiseSchedule] = None) -> Integrator:
        """The handed-back sampler on the schedule it was fitted on: :meth:`FittedSolver.integrator` of
        :attr:`fitted`.

        Raises
        ------
        UsageError
            ``schedule`` is not the one the solver was fitted on (by :func:`~pndmkit.schedules.schedule_key`).
        """
        return self.fitted.integrator(schedule)

    def sample(self, model: Any, x_T: Any, **kwargs: Any) -> Any:
        """Sample with the handed-back solver from noises ``x_T`` drawn at :attr:`t_start`:
        :meth:`FittedSolver.sample` of :attr:`fitted` (``schedule`` defaults to the one fitted on). Returns
        :func:`pndmkit.sample`'s :class:`~pndmkit.run.Solution`."""
        return self.fitted.sample(model, x_T, **kwargs)

    def report(self) -> str:
        """A few lines: the cut against the grid search and the built-in grid, with intervals and the fallback."""
        lo, hi = self.heldout_interval
        blo, bhi = self.builtin_interval
        steps = f"{self.steps} step" + ("s" if self.steps != 1 else "")
        base = self.base
        on = "" if base == BASE_METHOD else f" ({self.name}, built on {base})"
        lines = [f"fitted solver{on} at NFE {self.nfe} ({steps}, {self.evaluations} calibration runs on "
                 f"{self.calibration} noises; held out on {self.heldout})",
                 f"  held-out RMS error {self.heldout_error:.4g}: {100 * self.reduction:.1f}% "
                 f"[{100 * lo:.1f}, {100 * hi:.1f}] below {base} on its optimised grid "
                 f"({self.baseline_error:.4g}), {100 * self.builtin_reduction:.1f}% [{100 * blo:.1f}, "
                 f"{100 * bhi:.1f}] below {base} on its best built-in grid, {self.builtin_kind} "
                 f"({self.builtin_error:.4g})"]
        if self.fell_back:
            lines.append(f"  fell back to {base} on its optimised grid: {self.fallback_reason}")
        if self.stopped:
            lines.append(f"  search stopped early: {self.stopped}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (strict JSON: a ``nan`` or infinite number, such as the interval of a cut on too few
        held-out noises, is ``None``).

        Which numbers belong to which solver:

        - ``base``: the method the solver is built on (:data:`BASE_METHODS`);
        - ``grid``, ``weights``: the solver handed back (:attr:`fitted`: the searched fit, or where ``fell_back``
          the base method's weights on the grid search's grid); ``handed_back_calibration_error`` and
          ``handed_back_heldout_error`` are its RMS errors (those a saved solver file records);
        - ``searched_grid``, ``searched_weights``: the fit the weight search found, handed back or not;
          ``calibration_error``, ``heldout_error`` and the intervals ``heldout_interval``, ``builtin_interval`` are
          that fit's, whether or not it was handed back;
        - ``baseline_error``, ``baseline_calibration_error``: the base method on the grid search's grid (what a
          fallback hands back); ``builtin_error``: the base method on its best built-in grid, ``builtin_kind``.
        """
        def number(value: float) -> Optional[float]:
            return float(value) if math.isfinite(value) else None

        fitted = self.fitted  # the handed-back solver, with its own errors
        return {"nfe": self.nfe, "steps": self.steps, "grid": [float(t) for t in self.grid],
                "weights": [list(r) for r in self.weights],
                "searched_grid": [float(t) for t in self.searched_grid],
                "searched_weights": [list(r) for r in self.searched_weights],
                "calibration_error": number(self.calibration_error), "heldout_error": number(self.heldout_error),
                "handed_back_calibration_error": number(fitted.calibration_error),
                "handed_back_heldout_error": number(fitted.heldout_error),
                "baseline_error": number(self.baseline_error), "builtin_error": number(self.builtin_error),
                "builtin_kind": self.builtin_kind, "heldout_interval": [number(v) for v in self.heldout_interval],
                "builtin_interval": [number(v) for v in self.builtin_interval],
                "evaluations": self.evaluations, "grid_evaluations": self.grid_result.evaluations,
                "fell_back": self.fell_back, "fallback_reason": self.fallback_reason,
                "first_time": self.first_time, "t_start": self.t_start, "schedule": self.schedule,
                "calibration": self.calibration, "heldout": self.heldout, "seed": self.seed, "stopped": self.stopped,
                "baseline_calibration_error": number(self.baseline_calibration_error), "base": self.base}


def default_maxfev(nfe: int, first_time: str = "free") -> int:
    """The weight search's default budget of :func:`optimize_solver`: ``40 * (P + 1)`` runs, at least 200.

    ``P`` counts the parameters: the grid family's (:func:`~pndmkit.studies.grid_opt.check_degree` ``"auto"``:
    ``min(3, steps - 1)``), the first time with ``first_time="free"``, and the weight table's (iPNDM's rows:
    ``min(i + 1, 4)`` weights in row ``i``). At NFE 5: ``P = 3 + 14 = 17``, 720 runs with the first time fixed,
    760 with it free; at NFE 50: 7920 and 7960.

    Parameters
    ----------
    nfe : int
        The budget (``>= 1``): that many steps.
    first_time : {"free", "fixed"}

    Returns
    -------
    int
        Sampling runs on the calibration noises (720 at NFE 5 with the first time fixed, 760 free).

    Raises
    ------
    UsageError
        Naming ``nfe`` or ``first_time``.

    Examples
    --------
    >>> default_maxfev(5), default_maxfev(5, "fixed"), default_maxfev(3, "fixed")
    (760, 720, 360)
    """
    with blame("nfe"):
        nfe = check_int(nfe, "nfe", minimum=1)
    with blame("first_time"):
        check_choice(first_time, "first_time", FIRST_TIMES)
    parameters = check_degree("auto", nfe) + (first_time == "free") + sum(len(r) for r in adams_bashforth_table(nfe))
    return max(200, 40 * (parameters + 1))


class _Budget(Exception):
    """The search used its runs."""


def _check_grid_result(og: OptimizedGrid, target: StudyTarget, problem_or_model: Any, *, nfe: int,
                       calibration: Optional[int], heldout: Optional[int], seed: int, first_time: str,
                       fallback: bool, base: str) -> None:
    """Refuse a ``grid_result`` of :func:`optimize_solver` that is not the grid search the call would run: naming
    ``grid_result`` and the parameter it differs in, with both values."""
    if og.method != base:
        raise UsageError(("grid_result", "base"), f"grid_result is a search of {og.method}'s grid; a fit with "
                                                  f"base={base!r} starts from {base}'s (optimize({base!r}, ...))")
    if calibration is None or heldout is None:
        default_cal, default_held = default_noises(target)
        calibration = default_cal if calibration is None else calibration
        heldout = default_held if heldout is None else heldout
    atol = 1e-9 * abs(target.t_start - target.t_end)
    # (parameter, what it sets, the search's value, this call's)
    checks = [("problem_or_model", "problem", og.problem, problem_name(problem_or_model)),
              ("nfe", "nfe", og.nfe, nfe), ("first_time", "first_time", og.first_time, first_time),
              ("seed", "seed", og.seed, seed), ("calibration", "calibration noises", og.calibration, calibration),
              ("heldout", "held-out noises", og.heldout, heldout),
              ("schedule", "schedule", og.schedule, schedule_key(target.schedule))]
    differs = [(param, what, theirs, ours) for param, what, theirs, ours in checks if theirs != ours]
    differs += [(param, what, theirs, ours) for param, what, theirs, ours in (
        ("t_start", "noise time", og.t_start, target.t_start),
        ("t_end", "last time", float(og.grid[-1]), target.t_end)) if not abs(theirs - ours) <= atol]
    if differs:
        param, what, theirs, ours = differs[0]
        raise UsageError(("grid_result", param), f"grid_result was searched with {what} {theirs!r} and this fit "
                                                 f"has {ours!r}, so it is not this fit's grid search; pass the search "
                                                 f"run with this call's {param}, or none")
    if og.fell_back and not fallback:
        raise UsageError(("grid_result", "fallback"), "grid_result fell back to a built-in grid, which a search "
                                                      "with fallback=False never does; pass the search run with "
                                                      "fallback=False, or none")


def optimize_solver(problem_or_model: Any, nfe: int, *, schedule: Optional[NoiseSchedule] = None,
                    t_start: Optional[float] = None, t_end: Optional[float] = None,
                    calibration: Optional[int] = None, heldout: Optional[int] = None, seed: int = 0,
                    maxfev: Optional[int] = None, grid_maxfev: Optional[int] = None,
                    shape: Optional[Sequence[int]] = None, cache: Any = None, progress: bool = False,
                    first_time: str = "free", fallback: bool = True, rebuild_cache: bool = False,
                    start: Any = None, start_weights: Any = None,
                    stop_early: Optional[Any] = None, grid_result: Optional[OptimizedGrid] = None,
                    base: str = BASE_METHOD) -> OptimizedSolver:
    """Fit the grid and step weights of a multistep sampler at an NFE budget; judge them on held-out noises.

    First :func:`pndmkit.studies.grid_opt.optimize` optimises the base method's grid (iPNDM's by default; same
    noises and options; its budget ``grid_maxfev``), unless ``grid_result`` hands over that search already run;
    then the grid (the same smooth family, its first time too with ``first_time="free"``) and a weight table with
    one row per step (row ``i`` weighs the gradients of steps ``i .. max(i - 3, 0)``: ``min(i + 1, 4)`` weights, as
    iPNDM's order-4 formula does, starting from iPNDM's weights; a table of one's own, for
    :class:`~pndmkit.adams.TabulatedMultistep` or a solver file, may use up to ``i + 1``) are fitted together by
    least squares on the calibration noises' end-point errors (every coordinate a residual, see the module's
    description). The table runs through the base method's transfer (:func:`fitted_integrator`): with
    ``base="ipndm-x0"`` it weighs past ``x0`` predictions, not ``eps`` ones.

    Parameters
    ----------
    problem_or_model : str, GaussianMixture, checkpoint name/path, NetworkModel or callable
        As :func:`~pndmkit.studies.grid_opt.optimize` takes it.
    nfe : int
        Budget: one evaluation a step, so ``nfe`` steps.
    schedule, t_start, t_end, calibration, heldout, seed, shape, cache, progress, rebuild_cache, first_time
        As for :func:`~pndmkit.studies.grid_opt.optimize` (the defaults: as many noises as the target's cost
        allows, :func:`~pndmkit.studies.grid_opt.default_noises`).
    maxfev : int, optional
        Sampling runs of the weight search on the calibration noises, the Jacobian's included, at most
        :data:`~pndmkit.studies.grid_opt.MAX_NOISES` (default :func:`default_maxfev`: ``40 * (P + 1)`` for ``P``
        parameters, at least 200: 760 at NFE 5 with the first time free, 720 with it fixed). Below ``P + 2`` (the
        start and one Jacobian) the weights are not searched: the start is judged, and :attr:`OptimizedSolver.stopped`
        says why (``maxfev=1`` judges a given ``start`` / ``start_weights`` as they are).
    grid_maxfev : int, optional
        ``maxfev`` of the grid search (its default otherwise).
    start : str or sequence of float, optional
        ``start`` of the grid search (:func:`~pndmkit.studies.grid_opt.optimize`): a grid kind, or an explicit grid
        (e.g. one searched for another method on the same network; with ``first_time="free"`` it may begin below
        ``t_start``). With a small ``grid_maxfev`` the fit starts there almost at once, which saves most of the
        runs where one costs a network's evaluation of every calibration noise.
    start_weights : sequence of sequences of float, optional
        The table the weight search starts from (default iPNDM's, :func:`~pndmkit.adams.adams_bashforth_table`,
        which through the base's transfer is the base method), with its row lengths (``min(i + 1, 4)``): e.g. the
        weights of an earlier fit on the same base, continued with ``start=`` its grid and a small
        ``grid_maxfev``. The fallback and the baselines stay the base method's.
    fallback : bool
        Hand back the base method on the grid search's grid, saying so (:class:`SolverFallbackWarning`), where the 95%
        paired bootstrap interval of the fitted solver's held-out cut against it does not lie above 0. Passed to
        the grid search too: ``False`` starts the fit on the searched grid whatever the held-out noises show (a
        caller that judges the result on noises of its own, with as few as one held-out noise here, where the
        grid search would otherwise always fall back to the built-in grid, having no interval).
    stop_early : callable, optional
        Called before each run of both searches; it may raise ``KeyboardInterrupt`` to end them: the grid search
        then hands back its best grid so far (:attr:`OptimizedGrid.stopped <pndmkit.studies.grid_opt.OptimizedGrid>`),
        the weight search judges its best fit so far (:attr:`OptimizedSolver.stopped` says why); the weight search
        runs its start once whatever ``stop_early`` says. A ``KeyboardInterrupt`` (Ctrl-C) that ends the grid search
        ends the fit: the weight search then runs only its start (``stopped`` says so), as a time budget that
        ``stop_early`` keeps raising does.

    grid_result : OptimizedGrid, optional
        The grid search already run (:func:`~pndmkit.studies.grid_opt.optimize` of ``base`` on the same
        target, ``nfe``, noises and options, as ``pndmkit compare`` runs it for its optimised iPNDM grids): the
        fit starts from it instead of running the search again, and the result is the same bit for bit. It is
        checked against this call before any reference is solved or run: its method, ``nfe``, ``first_time``,
        ``seed``, problem (:func:`~pndmkit.studies.grid_opt.problem_name`), numbers of calibration and held-out
        noises (``calibration`` and ``heldout``, or their defaults), noise time, last time and schedule must be
        this call's, and it must not have fallen back where ``fallback`` is off; ``start`` and ``grid_maxfev``,
        which tune the search it replaces, are refused beside it. (Options this call cannot see, such as the
        search's ``degree``, ``kinds`` or ``fallback`` when it did not fall back, are the caller's to keep the
        same.)
    base : str
        The method the solver is built on, one of :data:`BASE_METHODS` (default :data:`BASE_METHOD`, ``"ipndm"``):
        its grid is searched, its weights start the table (the same Adams-Bashforth table for both), its transfer
        runs the table, and it gives the baselines and the fallback. ``"ipndm-x0"`` weighs past ``x0`` predictions
        through the data-prediction transfer (:class:`~pndmkit.transfers.DataTransfer`), which in ``eps`` terms
        also weighs the past states; an option to try, not the default.

    Returns
    -------
    OptimizedSolver

    Raises
    ------
    UsageError
        A bad argument, naming it (the grid search's checks, ``maxfev`` / ``grid_maxfev``, ``base``); a
        ``grid_result`` that is not this call's search, naming ``grid_result`` and the parameter it differs in.
    """
    from scipy.optimize import least_squares

    with blame("nfe"):
        nfe = check_int(nfe, "nfe", minimum=1)
    for name, value in (("maxfev", maxfev), ("grid_maxfev", grid_maxfev)):
        if value is not None:
            with blame(name):
                value = check_int(value, name, minimum=1)
                if value > MAX_NOISES:
                    raise ValueError(f"{name} must be at most {MAX_NOISES}, got {value}")
    with blame("fallback"):
        check_bool(fallback, "fallback")
    with blame("first_time"):
        check_choice(first_time, "first_time", FIRST_TIMES)
    check_base(base)
    if stop_early is not None and not callable(stop_early):
        raise UsageError("stop_early", f"stop_early must be callable or None, got {stop_early!r}")
    if grid_result is not None:
        if not isinstance(grid_result, OptimizedGrid):
            raise UsageError("grid_result", f"grid_result must be an OptimizedGrid (the result of "
                                            f"pndmkit.studies.grid_opt.optimize) or None, got {grid_result!r}")
        for name, value in (("start", start), ("grid_maxfev", grid_maxfev)):
            if value is not None:
                raise UsageError(("grid_result", name), f"{name} tunes the grid search, which grid_result replaces "
                                                        f"(it has run already); give one of them, not both")
        og = grid_result
    else:
        common = dict(schedule=schedule, t_start=t_start, t_end=t_end, calibration=calibration, heldout=heldout,
                      seed=seed, shape=shape, cache=cache, progress=progress, rebuild_cache=rebuild_cache,
                      first_time=first_time)
        with warnings.catch_warnings():  # the grid search's fallback is reported through grid_result
            warnings.simplefilter("ignore", GridFallbackWarning)
            og = optimize(base, problem_or_model, nfe, maxfev=grid_maxfev, fallback=fallback, start=start,
                          stop_early=stop_early, **common)
    target = StudyTarget.resolve(problem_or_model, schedule, shape=shape, seed=seed, t_start=t_start, t_end=t_end,
                                 cache=cache, rebuild_cache=rebuild_cache)
    if grid_result is not None:
        _check_grid_result(og, target, problem_or_model, nfe=nfe, calibration=calibration, heldout=heldout,
                           seed=seed, first_time=first_time, fallback=fallback, base=base)
    cal, held = target.study(0, og.calibration), target.study(og.calibration, og.heldout)
    sched = cal.schedule
    steps = og.steps
    start_grid = np.asarray(og.grid, dtype=np.float64)
    lifted = start_grid.copy()
    lifted[0] = cal.t_start
    interior = GridFamily(lifted, check_degree("auto", steps))
    free = first_time == "free"
    family: Any = FreeFirstTime(interior, cal.t_start) if free else interior
    table = adams_bashforth_table(steps)  # through the base's transfer: the base method itself
    shape_w = [len(r) for r in table]
    theta0 = np.zeros(family.size)
    if free:
        theta0[-1] = family.fraction(start_grid)
    delta = np.zeros(sum(shape_w))
    if start_weights is not None:
        with blame("start_weights"):
            given = TabulatedMultistep(start_weights).weights
        if [len(r) for r in given] != shape_w:
            raise UsageError("start_weights", f"start_weights must have rows of lengths {shape_w} (iPNDM's table at "
                                              f"{steps} steps), got {[len(r) for r in given]}")
        delta = np.concatenate([np.subtract(g, b) for g, b in zip(given, table)])
    p0 = np.concatenate([theta0, delta])
    budget = maxfev or default_maxfev(steps, first_time)

    def unpack(p: NDArray[np.float64]) -> tuple[NDArray[np.float64], tuple]:
        g = family.grid(p[:family.size])
        rows, k = [], family.size
        for w0 in table:
            rows.append(tuple(float(v) for v in np.asarray(w0) + p[k:k + len(w0)]))
            k += len(w0)
        return g, tuple(rows)

    count = [0]
    best: dict[str, Any] = {"err": math.inf, "p": p0}
    bar = None
    if progress:
        from pndmkit._io import progress_bar

        bar = progress_bar(budget, desc=f"fitting the weights at NFE {nfe}", leave=False)
    big = None

    def per_sample(study: Any, g: NDArray[np.float64], rows: tuple) -> NDArray[np.float64]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return sample_errors(study, fitted_integrator(rows, sched, base=base), g)

    n = cal.reference.shape[0]
    dim = int(np.prod(cal.reference.shape[1:]))
    # residuals: each sample's error in `groups` sums of squares (the whole vector where the Jacobian fits in
    # RESIDUAL_LIMIT floats, which Gauss-Newton uses best; the objective is the same sum of squares either way)
    groups = int(min(dim, max(1, RESIDUAL_LIMIT // (n * (p0.size + 1)))))
    reference = cal.reference.reshape(n, -1)

    def split(d: NDArray[np.float64]) -> NDArray[np.float64]:
        if groups == dim:
            return d.ravel()
        cuts = np.array_split(np.arange(dim), groups)
        return np.sqrt(np.stack([np.sum(d[:, c] ** 2, axis=1) for c in cuts], axis=1)).ravel()

    def residuals(p: NDArray[np.float64]) -> NDArray[np.float64]:
        nonlocal big
        if count[0] >= budget:
            raise _Budget
        if stop_early is not None and count[0]:  # the start is always run: a result needs one
            stop_early()
        count[0] += 1
        if bar is not None:
            bar.update(1)
        g, rows = unpack(p)
        r = None
        if np.all(np.diff(g) < 0):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    d = end_points(cal, fitted_integrator(rows, sched, base=base), g) - reference
                if np.all(np.isfinite(d)):
                    r = split(d) / math.sqrt(d.size)
            except (ValueError, FloatingPointError):
                r = None
        if r is None:  # a failed run scores as 100 times the start's error on every sample
            return big if big is not None else np.full(n * groups, 1e3)
        err = float(np.sqrt(np.sum(r * r)))
        if big is None:
            big = np.full(r.size, 100.0 * max(err, 1e-12) / math.sqrt(r.size))
        if err < best["err"]:
            best.update(err=err, p=np.array(p, dtype=np.float64))
        return r

    stopped = ""
    try:
        residuals(p0)
        if og.stopped and stop_early is not None:
            # the grid search was ended early (Ctrl-C, a time budget): one interrupt ends the whole fit, so the
            # weight search keeps its start (run once above: a result needs one) and the fit is judged from there
            stopped = f"the grid search was stopped ({og.stopped}), so the weights were not searched"
        else:
            least_squares(residuals, p0, method="trf", diff_step=1e-4, x_scale=1.0, max_nfev=budget)
    except _Budget:
        pass
    except KeyboardInterrupt as exc:
        if stop_early is None:
            raise
        stopped = f"{str(exc) or 'interrupted'} after {count[0]} of at most {budget} runs"
    finally:
        if bar is not None:
            bar.close()
    if not stopped and budget < p0.size + 2:  # least squares needs the start and a Jacobian before its first step
        stopped = (f"maxfev={budget} is below one Gauss-Newton iteration (the start and a Jacobian: {p0.size + 2} "
                   f"runs at {p0.size} parameters), so the weights were not searched")
    grid_s, rows_s = unpack(best["p"])
    kind = og.baseline_kind
    with interrupts_held(stop_early is not None) as late:  # an interrupt here would lose the whole fit
        fitted = per_sample(held, grid_s, rows_s)
        baseline = per_sample(held, start_grid, table)
        baseline_cal = per_sample(cal, start_grid, table)  # what a fallback hands back, on the calibration noises
        builtin = per_sample(held, builtin_grids(held, steps, [kind])[kind], table)
    if late and not stopped:
        stopped = f"interrupted while judging, after {count[0]} of at most {budget} runs (the search had ended)"
    interval = reduction_interval(fitted, baseline)
    reason = fallback_reason(interval, og.heldout, "fitted solver") if fallback else ""
    if reason:
        warnings.warn(f"optimize_solver(nfe={nfe}): handing back {base} on its optimised grid, not the fitted "
                      f"weights: {reason}", SolverFallbackWarning, stacklevel=2)
    return OptimizedSolver(nfe=nfe, steps=steps, grid=start_grid if reason else grid_s,
                           weights=table if reason else rows_s, calibration_error=best["err"],
                           heldout_error=float(np.sqrt(np.mean(fitted))),
                           baseline_error=float(np.sqrt(np.mean(baseline))),
                           builtin_error=float(np.sqrt(np.mean(builtin))), builtin_kind=kind,
                           heldout_interval=interval, builtin_interval=reduction_interval(fitted, builtin),
                           evaluations=count[0], grid_result=og, searched_grid=grid_s, searched_weights=rows_s,
                           fell_back=bool(reason), fallback_reason=reason, first_time=first_time,
                           t_start=cal.t_start, schedule=schedule_key(sched), calibration=og.calibration,
                           heldout=og.heldout, seed=int(seed), stopped=stopped, _schedule=sched,
                           baseline_calibration_error=float(np.sqrt(np.mean(baseline_cal))), base=base)
