r"""Fitted solvers: the grid *and* the step weights of a multistep sampler fitted at one NFE, training-free.

:func:`pndmkit.studies.grid_opt.optimize` moves only the times; at NFE 5-10 on 256-dimensional data that cuts
iPNDM's error by about a quarter, and the error left is the formula's: a step's weights come from an interpolant
whose assumptions (a smooth ``eps`` over the step) fail on steps this long. :func:`optimize_solver` frees the
weights too, as S4S does (Frankel et al., "S4S: Solving for a Fast Diffusion Model Solver", ICML 2025): step
``i`` combines the gradients of steps ``i, i - 1, ...`` with weights of its own
(:class:`pndmkit.adams.TabulatedMultistep`, through the method's DDIM transfer), fitted with the grid on
calibration noises against the reference flow. It starts from iPNDM's weights (:func:`adams_bashforth_table`)
on iPNDM's optimised grid, so the search starts where :func:`~pndmkit.studies.grid_opt.optimize` ended.

The objective is the same as the grid search's (RMS end-point error on the calibration noises), minimised by
scipy's trust-region least squares (:func:`scipy.optimize.least_squares`, Jacobian by forward differences:
``P + 1`` runs per iteration for ``P`` parameters), which needs far fewer runs than Nelder-Mead in the 20-80
parameters of a table. Its residuals are the whole end-point error: all ``n * d`` coordinates of the ``n``
calibration end points minus their references (scaled by ``1 / sqrt(n d)``, so their sum of squares is the
squared RMS error); only where the Jacobian would pass :data:`RESIDUAL_LIMIT` floats is each sample's error cut
into groups of coordinates, each replaced by its root sum of squares (the same objective, fewer residuals). The result is judged on held-out noises only, against the
grid search's result (iPNDM on its handed-back grid) with the same 95% paired bootstrap interval
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

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit._checks import check_bool, check_choice, check_int, check_real
from pndmkit._io import atomic_path, read_json_object
from pndmkit.adams import TabulatedMultistep, adams_bashforth_table
from pndmkit.errors import BadFileError, UsageError, blame
from pndmkit.grids import check_grid
from pndmkit.integrator import Integrator
from pndmkit.methods import get_method
from pndmkit.sampling import sample
from pndmkit.schedules import NoiseSchedule, schedule_from_dict, schedule_key, schedule_to_dict
from pndmkit.studies.grid_opt import (BUILTIN_KINDS, FIRST_TIMES, MAX_NOISES, FreeFirstTime, GridFallbackWarning,
                                      GridFamily, OptimizedGrid, check_degree, end_points, noise_at, optimize,
                                      sample_errors)
from pndmkit.studies.statistics import INTERVAL_LEVEL, reduction_interval
from pndmkit.studies.targets import StudyTarget

__all__ = ["OptimizedSolver", "SolverFallbackWarning", "optimize_solver", "BASE_METHOD", "fitted_integrator",
           "FittedSolver", "save_solver", "load_solver", "default_maxfev", "SOLVER_FORMAT", "SOLVER_VERSION",
           "SOLVER_FIELDS", "FITTED_NAME"]

#: most floats of the residuals' Jacobian (residuals times parameters plus one) before a sample's residuals are
#: grouped into sums of squares (:func:`optimize_solver`)
RESIDUAL_LIMIT = 2 ** 24

#: the method whose weights a fitted solver starts from and whose optimised grid it starts on
BASE_METHOD = "ipndm"

#: the name a fitted solver's runs report (:attr:`pndmkit.run.Solution.method`, ``run.json`` of ``pndmkit sample``)
FITTED_NAME = BASE_METHOD + "-fitted"

#: the ``format`` field of a solver file (:func:`save_solver`) and the version of its layout
SOLVER_FORMAT, SOLVER_VERSION = "pndmkit-fitted-solver", 1

#: every field of a solver file of :data:`SOLVER_VERSION` (``steps`` may be missing; any other field is refused)
SOLVER_FIELDS = ("format", "version", "nfe", "steps", "grid", "weights", "t_start", "schedule", "schedule_spec",
                 "calibration_error", "heldout_error", "fell_back", "problem", "calibration", "heldout", "seed")


class SolverFallbackWarning(GridFallbackWarning):
    """:func:`optimize_solver` handed back the grid search's solver: the fitted weights' held-out gain is not shown."""


def fitted_integrator(weights: Sequence[Sequence[float]], schedule: NoiseSchedule,
                      name: str = FITTED_NAME) -> Integrator:
    """The sampler of a weight table on ``schedule``: :class:`~pndmkit.adams.TabulatedMultistep` through the
    transfer iPNDM uses there (DDIM's; its data form on flow matching).

    Parameters
    ----------
    weights : sequence of sequences of float
        One row per step (:class:`~pndmkit.adams.TabulatedMultistep`).
    schedule : NoiseSchedule
    name : str
        The name a :class:`~pndmkit.run.Solution` reports.

    Returns
    -------
    Integrator
        Runs only on grids of ``len(weights)`` steps (``ValueError`` otherwise, when a run starts).
    """
    transfer = get_method(BASE_METHOD).build(schedule).transfer
    return Integrator(TabulatedMultistep(weights), transfer, name)


def _check_domain(schedule: NoiseSchedule, grid: NDArray[np.float64], t_start: float) -> None:
    """Refuse a solver whose ``t_start`` or ``grid`` leaves ``schedule``'s domain, naming that field (a solver made
    with its schedule is checked when made; one made with the key alone, when it is given the schedule)."""
    for name, value in (("t_start", t_start), ("grid", grid)):
        try:
            schedule.check_time(value, name)
        except ValueError as exc:
            raise UsageError(name, f"{exc}: a fitted solver's {name} lies in the domain of the schedule it was "
                                   "fitted on") from None


@dataclass(frozen=True, eq=False)
class FittedSolver:
    """A fitted sampler to run or save: a grid, a weight table made for it, the noise's time and the schedule.

    What :func:`optimize_solver` hands back (:attr:`OptimizedSolver.fitted`), :func:`save_solver` writes and
    :func:`load_solver` reads: :class:`~pndmkit.adams.TabulatedMultistep` of :attr:`weights` through iPNDM's transfer
    (:func:`fitted_integrator`), run on :attr:`grid` from noise drawn at :attr:`t_start`. The weights hold for that
    grid and schedule only; nothing else about the run is free. Two solvers are equal when their fields (all but
    :attr:`noise_schedule`, which :attr:`schedule` names) are.

    Parameters
    ----------
    grid : sequence of float
        ``len(weights) + 1`` finite, strictly decreasing times in the schedule's units, the first at or below
        ``t_start``, all inside the schedule's domain (:meth:`~pndmkit.schedules.NoiseSchedule.check_time`:
        checked here where ``noise_schedule`` is given, else when a schedule is, by :meth:`integrator` or
        :meth:`sample`); kept as a read-only float64 array.
    weights : sequence of sequences of float
        One row per step: row ``i`` holds 1 to ``i + 1`` finite weights on the gradients of steps ``i, i - 1, ...``,
        each at most :data:`~pndmkit.adams.MAX_TABLE_WEIGHT` (``1e6``) in magnitude
        (:class:`~pndmkit.adams.TabulatedMultistep`; kept as a tuple of tuples of float). :func:`optimize_solver`
        fits at most 4 weights a row (``min(i + 1, 4)``, as iPNDM's rows); a table written otherwise may use up
        to ``i + 1``.
    t_start : float
        The time the noise ``x_T`` is drawn at, in the schedule's units, inside its domain (checked as ``grid``
        is). Where :attr:`grid` starts below it, the noise
        is taken as the state at the grid's first time (:func:`~pndmkit.studies.grid_opt.noise_at`).
    schedule : str
        :func:`~pndmkit.schedules.schedule_key` of the schedule the solver was fitted on.
    nfe : int, optional
        Model evaluations of a run: one a step, so ``len(weights)`` (the default; any other value is refused).
    calibration_error, heldout_error : float
        RMS end-point error of this solver (the grid and weights it holds) on the calibration and held-out noises of
        its fit, against the reference flow from ``t_start``; ``nan`` (the default): not measured.
    fell_back : bool
        Whether the fit handed back iPNDM's own weights on the grid search's grid, the fitted table's held-out gain
        not being shown (:class:`SolverFallbackWarning`).
    problem : str
        What it was fitted on: a problem name, a checkpoint name or path, a model's repr (``""``: not recorded).
    calibration, heldout, seed : int
        The noises of the fit: calibration ``0 .. calibration - 1`` and the next ``heldout`` of ``seed`` (0: not
        recorded).
    noise_schedule : NoiseSchedule, optional
        The schedule object :attr:`schedule` names: what :meth:`integrator` and :meth:`sample` run on when given
        none (:func:`load_solver` rebuilds it from the file). Its key must be :attr:`schedule`.

    Raises
    ------
    UsageError
        A field that breaks a rule above, naming it (``weights[2]``, ``grid``, ``t_start``, ...), its value and
        what is allowed.
    """

    grid: NDArray[np.float64]
    weights: tuple
    t_start: float
    schedule: str
    nfe: Optional[int] = None
    calibration_error: float = math.nan
    heldout_error: float = math.nan
    fell_back: bool = False
    problem: str = ""
    calibration: int = 0
    heldout: int = 0
    seed: int = 0
    noise_schedule: Optional[NoiseSchedule] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        with blame("grid"):
            grid = np.array(check_grid(None, self.grid), dtype=np.float64)
        grid.setflags(write=False)
        with blame("weights"):
            rows = TabulatedMultistep(self.weights).weights
        if grid.size != len(rows) + 1:
            raise UsageError(("grid", "weights"), f"grid has {grid.size} times ({grid.size - 1} steps) but weights "
                                                  f"has {len(rows)} rows: a table holds one row per step, so the grid "
                                                  f"needs {len(rows) + 1} times")
        with blame("t_start"):
            t_start = check_real(self.t_start, "t_start")
        if grid[0] > t_start:
            raise UsageError(("t_start", "grid"), f"grid[0]={float(grid[0])!r} lies above t_start={t_start!r}: the "
                                                  "grid starts at or below the time the noise is drawn at")
        if not isinstance(self.schedule, str) or not self.schedule:
            raise UsageError("schedule", f"schedule must be a schedule's key (pndmkit.schedules.schedule_key), got "
                                         f"{self.schedule!r}")
        nfe = len(rows) if self.nfe is None else self.nfe
        with blame("nfe"):
            nfe = check_int(nfe, "nfe", minimum=1)
        if nfe != len(rows):
            raise UsageError(("nfe", "weights"), f"nfe={nfe} but weights has {len(rows)} rows: a fitted solver "
                                                 f"evaluates the model once a step, so nfe must be {len(rows)}")
        errors = {}
        for name in ("calibration_error", "heldout_error"):
            value = getattr(self, name)
            value = math.nan if value is None else value
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.floating, np.integer)) \
                    or not (math.isnan(value) or 0 <= value < math.inf):
                raise UsageError(name, f"{name} must be a finite number >= 0, or nan (not measured), got {value!r}")
            errors[name] = float(value)
        with blame("fell_back"):
            check_bool(self.fell_back, "fell_back")
        if not isinstance(self.problem, str):
            raise UsageError("problem", f"problem must be a string (what the solver was fitted on), got "
                                        f"{self.problem!r}")
        counts = {}
        for name in ("calibration", "heldout", "seed"):
            with blame(name):
                counts[name] = check_int(getattr(self, name), name, minimum=0)
        if self.noise_schedule is not None:
            if not isinstance(self.noise_schedule, NoiseSchedule):
                raise UsageError("noise_schedule", f"noise_schedule must be a NoiseSchedule or None, got "
                                                   f"{self.noise_schedule!r}")
            if schedule_key(self.noise_schedule) != self.schedule:
                raise UsageError(("noise_schedule", "schedule"),
                                 f"noise_schedule is {schedule_key(self.noise_schedule)}, but schedule names "
                                 f"{self.schedule}: give the schedule object the key names")
            _check_domain(self.noise_schedule, grid, t_start)
        for name, value in (("grid", grid), ("weights", rows), ("t_start", t_start), ("nfe", nfe),
                            ("fell_back", bool(self.fell_back)), *errors.items(), *counts.items()):
            object.__setattr__(self, name, value)

    @property
    def steps(self) -> int:
        """Steps of a run: ``len(weights)`` (:attr:`grid` has one time more)."""
        return len(self.weights)

    @property
    def name(self) -> str:
        """The name its runs report (:data:`FITTED_NAME`)."""
        return FITTED_NAME

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FittedSolver):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def _schedule_for(self, schedule: Optional[NoiseSchedule]) -> NoiseSchedule:
        """``schedule``, else :attr:`noise_schedule`; refused unless its key is :attr:`schedule`."""
        if schedule is None:
            schedule = self.noise_schedule
            if schedule is None:
                raise UsageError("schedule", f"this solver holds the key of its schedule ({self.schedule}) but not the "
                                             "schedule: pass schedule=")
        if not isinstance(schedule, NoiseSchedule):
            raise UsageError("schedule", f"schedule must be a NoiseSchedule, got {schedule!r}")
        if schedule_key(schedule) != self.schedule:
            raise UsageError("schedule", f"this solver was fitted on {self.schedule}, not {schedule_key(schedule)}: "
                                         f"its weights hold for that schedule's grid only")
        if schedule is not self.noise_schedule:
            _check_domain(schedule, self.grid, self.t_start)
        return schedule

    def integrator(self, schedule: Optional[NoiseSchedule] = None) -> Integrator:
        """The sampler (:func:`fitted_integrator` of :attr:`weights`) on ``schedule`` (default
        :attr:`noise_schedule`), for runs on :attr:`grid`.

        Raises
        ------
        UsageError
            Naming ``schedule``: it is not the one the solver was fitted on (by
            :func:`~pndmkit.schedules.schedule_key`), or none is given and the solver holds none; naming ``grid``
            or ``t_start``: the solver's field leaves the schedule's domain (a solver made without its schedule).
        """
        return fitted_integrator(self.weights, self._schedule_for(schedule))

    def sample(self, model: Any, x_T: Any, **kwargs: Any) -> Any:
        """Sample with the solver from noises ``x_T`` drawn at :attr:`t_start`.

        Parameters
        ----------
        model : callable
            ``model(x, t) -> eps`` as :func:`pndmkit.sample` takes it (a network's model too).
        x_T : array or tensor
            Noises at :attr:`t_start`, shape ``(batch, ...)``; taken as the state at the grid's first time
            (:func:`~pndmkit.studies.grid_opt.noise_at`: ``x_T`` itself on a variance-preserving schedule).
        **kwargs
            Go to :func:`pndmkit.sample` (``schedule`` defaults to :attr:`noise_schedule`); the solver sets
            ``method`` and ``grid``, so those, and what would choose another grid (``steps``, ``t_start``,
            ``t_end``, ``convention``, ``rho``, ``offset``), are refused.

        Returns
        -------
        Solution
            :func:`pndmkit.sample`'s (:class:`~pndmkit.run.Solution`), named :data:`FITTED_NAME`.

        Raises
        ------
        UsageError
            A schedule other than the fitted one (naming ``schedule``), a keyword the solver sets (naming it), or
            (a solver made without its schedule) a ``grid`` or ``t_start`` of the solver outside the schedule's
            domain (naming that field).
        """
        taken = sorted(set(kwargs) & set(_SET_BY_SOLVER))
        if taken:
            raise UsageError(tuple(taken), f"{', '.join(taken)} cannot be given with a fitted solver: its grid and "
                                           "weights make the run (fitted for that grid only)")
        schedule = self._schedule_for(kwargs.pop("schedule", None))
        x = noise_at(schedule, x_T, self.t_start, float(self.grid[0])) if self.grid[0] < self.t_start else x_T
        return sample(model, x, schedule=schedule, method=self.integrator(schedule), grid=self.grid, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``nan`` errors as ``None``); :func:`save_solver` writes them with the schedule's
        description."""
        return {"nfe": self.nfe, "steps": self.steps, "grid": [float(t) for t in self.grid],
                "weights": [list(r) for r in self.weights], "t_start": self.t_start, "schedule": self.schedule,
                "calibration_error": None if math.isnan(self.calibration_error) else self.calibration_error,
                "heldout_error": None if math.isnan(self.heldout_error) else self.heldout_error,
                "fell_back": self.fell_back, "problem": self.problem, "calibration": self.calibration,
                "heldout": self.heldout, "seed": self.seed}


#: keywords of :func:`pndmkit.sample` that :meth:`FittedSolver.sample` refuses: the solver's grid and weights set them
_SET_BY_SOLVER = ("method", "grid", "steps", "t_start", "t_end", "convention", "rho", "offset")


def save_solver(solver: Any, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Write a fitted solver to a JSON file, atomically (:func:`pndmkit._io.atomic_path`); return the path.

    The file holds ``format`` (:data:`SOLVER_FORMAT`), ``version``, every field of :meth:`FittedSolver.to_dict`
    (floats written exactly: read back, they are the same numbers bit for bit) and ``schedule_spec``, the schedule's
    description (:func:`~pndmkit.schedules.schedule_to_dict`), from which :func:`load_solver` rebuilds it.

    Parameters
    ----------
    solver : FittedSolver or OptimizedSolver
        What to save (an :class:`OptimizedSolver` saves its :attr:`~OptimizedSolver.fitted` solver).
    path : str or os.PathLike
        The file (its folder is made where missing).
    overwrite : bool
        Replace an existing file (the default); ``False`` refuses one, also one made by another process while
        this call wrote (the file appears whole, by a hard link, or not at all).

    Returns
    -------
    Path

    Raises
    ------
    UsageError
        Naming ``solver``: not a solver, or it holds no schedule object, or one with no file form (a
        :class:`~pndmkit.schedules.CustomSchedule`); naming ``path``: it is a folder, or with ``overwrite=False``
        a file already there.
    """
    if isinstance(solver, OptimizedSolver):
        solver = solver.fitted
    if not isinstance(solver, FittedSolver):
        raise UsageError("solver", f"solver must be a FittedSolver or an OptimizedSolver, got {solver!r}")
    if solver.noise_schedule is None:
        raise UsageError("solver", f"this solver holds the key of its schedule ({solver.schedule}) but not the "
                                   "schedule, which the file must describe: give it noise_schedule=")
    try:
        spec = schedule_to_dict(solver.noise_schedule)
    except TypeError as exc:
        raise UsageError("solver", f"the solver's schedule cannot be written to a file ({exc})") from None
    with blame("overwrite"):
        check_bool(overwrite, "overwrite")
    path = Path(path)
    if path.is_dir():
        raise UsageError("path", f"path={str(path)!r} is a folder; give a file name (e.g. {str(path / 'solver.json')!r})")
    text = json.dumps({"format": SOLVER_FORMAT, "version": SOLVER_VERSION, **solver.to_dict(), "schedule_spec": spec},
                      indent=2, sort_keys=True) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
        if not overwrite:
            try:  # atomic and never over a file, one made since the caller looked included; the temporary goes
                os.link(tmp, path)
            except FileExistsError:
                raise UsageError("path", f"{path} already exists; pass overwrite=True to replace it, or another "
                                         "path") from None
    return path


def load_solver(path: str | os.PathLike[str]) -> FittedSolver:
    """Read a fitted solver that :func:`save_solver` wrote, checking every field first.

    Parameters
    ----------
    path : str or os.PathLike
        The solver file (JSON).

    Returns
    -------
    FittedSolver
        With :attr:`~FittedSolver.noise_schedule` rebuilt from the file's ``schedule_spec``.

    Raises
    ------
    UsageError
        Naming ``path``: it is not a path (``None``, a number, an empty string).
    FileNotFoundError
        No such file.
    pndmkit.errors.BadFileError
        One line naming the file and the field at fault: not a file, not JSON (e.g. cut short), not a solver file
        (``format``, a missing or other ``version``), a missing field, a field a solver file does not hold
        (:data:`SOLVER_FIELDS`: an unknown field is refused, not ignored), or a field that breaks a rule of :class:`FittedSolver` (a row
        of the wrong length, a non-finite weight or one beyond :data:`~pndmkit.adams.MAX_TABLE_WEIGHT`, a grid
        that does not decrease or has not ``rows + 1`` times, a ``grid`` or ``t_start`` outside the domain of the
        schedule ``schedule_spec`` describes, a ``schedule_spec`` that does not rebuild the schedule ``schedule``
        names, ...).
    """
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not str(path):
        raise UsageError("path", f"path must be the solver file's path (a non-empty str or os.PathLike), got "
                                 f"{path!r}")
    path = Path(path)
    fix = "restore the file or fit the solver again (pndmkit grid fit --out FILE)"
    if not path.exists():
        raise FileNotFoundError(f"solver file {path} not found")
    if not path.is_file():
        raise BadFileError(path, f"solver file {path} is not a file (a folder?)")
    data = read_json_object(path, "solver file", fix)
    if data.get("format") != SOLVER_FORMAT:
        raise BadFileError(path, f"solver file {path} is not a pndmkit solver file (field 'format' is "
                                 f"{data.get('format')!r}, {SOLVER_FORMAT!r} expected); pass a file that save_solver "
                                 "or pndmkit grid fit wrote")
    if "version" not in data:
        raise BadFileError(path, f"solver file {path} has no field 'version' (this pndmkit reads version "
                                 f"{SOLVER_VERSION}); {fix}")
    if data["version"] != SOLVER_VERSION:
        raise BadFileError(path, f"solver file {path} has field 'version' {data['version']!r}; this pndmkit reads "
                                 f"version {SOLVER_VERSION}")
    names = ("grid", "weights", "t_start", "schedule", "nfe", "calibration_error", "heldout_error", "fell_back",
             "problem", "calibration", "heldout", "seed")
    missing = [name for name in (*names, "schedule_spec") if name not in data]
    if missing:
        raise BadFileError(path, f"solver file {path} has no field {missing[0]!r}; {fix}")
    unknown = sorted(set(data) - set(SOLVER_FIELDS))
    if unknown:  # a misspelt or foreign field would otherwise be dropped without a word
        raise BadFileError(path, f"solver file {path} has unknown field {unknown[0]!r} (a version {SOLVER_VERSION} "
                                 f"solver file holds only {', '.join(SOLVER_FIELDS)}); remove it, or {fix}")
    try:
        noise_schedule = schedule_from_dict(data["schedule_spec"])
    except (TypeError, ValueError) as exc:
        raise BadFileError(path, f"solver file {path} has a bad field 'schedule_spec': {exc}; {fix}") from None
    def bad_field(exc: UsageError) -> BadFileError:
        return BadFileError(path, f"solver file {path} has a bad field {exc.params[0]!r}: {exc.message}; {fix}")

    try:
        solver = FittedSolver(**{name: data[name] for name in names})
    except UsageError as exc:
        raise bad_field(exc) from None
    if schedule_key(noise_schedule) != solver.schedule:
        raise BadFileError(path, f"solver file {path} has a bad field 'schedule_spec': it describes "
                                 f"{schedule_key(noise_schedule)}, but field 'schedule' names {solver.schedule}; {fix}")
    steps = data.get("steps", solver.steps)
    if steps != solver.steps:
        raise BadFileError(path, f"solver file {path} has a bad field 'steps': {steps!r}, but weights has "
                                 f"{solver.steps} rows; {fix}")
    try:  # the times against the schedule's domain
        return FittedSolver(**{name: getattr(solver, name) for name in names}, noise_schedule=noise_schedule)
    except UsageError as exc:
        raise bad_field(exc) from None


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
        The weight table handed back: the fitted one, or iPNDM's (:func:`~pndmkit.adams.adams_bashforth_table`)
        where it fell back.
    calibration_error, heldout_error : float
        RMS end-point error of the searched fit (:attr:`searched_grid`, :attr:`searched_weights`) on the calibration
        and held-out noises, whether or not it is handed back (the handed-back solver's are :attr:`fitted`'s).
    baseline_error : float
        Held-out RMS error of the grid search's solver (iPNDM on :attr:`grid_result`'s grid), the baseline of
        :attr:`heldout_interval`.
    builtin_error, builtin_kind : float, str
        Held-out RMS error of iPNDM on its best built-in grid, and that grid's kind.
    heldout_interval : (float, float)
        95% paired bootstrap interval of the searched fit's held-out cut against the baseline (``nan``: too few
        held-out noises for one).
    builtin_interval : (float, float)
        The same against iPNDM on its best built-in grid.
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

    @property
    def reduction(self) -> float:
        """Held-out cut of the fitted solver against the grid search's: ``1 - heldout_error / baseline_error``."""
        return 1.0 - self.heldout_error / self.baseline_error

    @property
    def builtin_reduction(self) -> float:
        """Held-out cut of the fitted solver against iPNDM on its best built-in grid."""
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
                            calibration=self.calibration, heldout=self.heldout, seed=self.seed,
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
        lines = [f"fitted solver at NFE {self.nfe} ({steps}, {self.evaluations} calibration runs on "
                 f"{self.calibration} noises; held out on {self.heldout})",
                 f"  held-out RMS error {self.heldout_error:.4g}: {100 * self.reduction:.1f}% "
                 f"[{100 * lo:.1f}, {100 * hi:.1f}] below {BASE_METHOD} on its optimised grid "
                 f"({self.baseline_error:.4g}), {100 * self.builtin_reduction:.1f}% [{100 * blo:.1f}, "
                 f"{100 * bhi:.1f}] below {BASE_METHOD} on its best built-in grid, {self.builtin_kind} "
                 f"({self.builtin_error:.4g})"]
        if self.fell_back:
            lines.append(f"  fell back to {BASE_METHOD} on its optimised grid: {self.fallback_reason}")
        if self.stopped:
            lines.append(f"  search stopped early: {self.stopped}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (strict JSON: a ``nan`` or infinite number, such as the interval of a cut on too few
        held-out noises, is ``None``).

        Which numbers belong to which solver:

        - ``grid``, ``weights``: the solver handed back (:attr:`fitted`: the searched fit, or where ``fell_back``
          iPNDM's weights on the grid search's grid); ``handed_back_calibration_error`` and
          ``handed_back_heldout_error`` are its RMS errors (those a saved solver file records);
        - ``searched_grid``, ``searched_weights``: the fit the weight search found, handed back or not;
          ``calibration_error``, ``heldout_error`` and the intervals ``heldout_interval``, ``builtin_interval`` are
          that fit's, whether or not it was handed back;
        - ``baseline_error``, ``baseline_calibration_error``: iPNDM on the grid search's grid (what a fallback hands
          back); ``builtin_error``: iPNDM on its best built-in grid, ``builtin_kind``.
        """
        def number(value: float) -> Optional[float]:
            return float(value) if math.isfinite(value) else None

        back = self.fell_back  # the handed-back solver's errors, as :attr:`fitted` records them
        return {"nfe": self.nfe, "steps": self.steps, "grid": [float(t) for t in self.grid],
                "weights": [list(r) for r in self.weights],
                "searched_grid": [float(t) for t in self.searched_grid],
                "searched_weights": [list(r) for r in self.searched_weights],
                "calibration_error": number(self.calibration_error), "heldout_error": number(self.heldout_error),
                "handed_back_calibration_error": number(self.baseline_calibration_error if back
                                                        else self.calibration_error),
                "handed_back_heldout_error": number(self.baseline_error if back else self.heldout_error),
                "baseline_error": number(self.baseline_error), "builtin_error": number(self.builtin_error),
                "builtin_kind": self.builtin_kind, "heldout_interval": [number(v) for v in self.heldout_interval],
                "builtin_interval": [number(v) for v in self.builtin_interval],
                "evaluations": self.evaluations, "grid_evaluations": self.grid_result.evaluations,
                "fell_back": self.fell_back, "fallback_reason": self.fallback_reason,
                "first_time": self.first_time, "t_start": self.t_start, "schedule": self.schedule,
                "calibration": self.calibration, "heldout": self.heldout, "seed": self.seed, "stopped": self.stopped,
                "baseline_calibration_error": number(self.baseline_calibration_error)}


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


def optimize_solver(problem_or_model: Any, nfe: int, *, schedule: Optional[NoiseSchedule] = None,
                    t_start: Optional[float] = None, t_end: Optional[float] = None,
                    calibration: Optional[int] = None, heldout: Optional[int] = None, seed: int = 0,
                    maxfev: Optional[int] = None, grid_maxfev: Optional[int] = None,
                    shape: Optional[Sequence[int]] = None, cache: Any = None, progress: bool = False,
                    first_time: str = "free", fallback: bool = True, rebuild_cache: bool = False,
                    start: Any = None, start_weights: Any = None,
                    stop_early: Optional[Any] = None) -> OptimizedSolver:
    """Fit the grid and step weights of a multistep sampler at an NFE budget; judge them on held-out noises.

    First :func:`pndmkit.studies.grid_opt.optimize` optimises iPNDM's grid (same noises and options; its budget
    ``grid_maxfev``); then the grid (the same smooth family, its first time too with ``first_time="free"``) and
    a weight table with one row per step (row ``i`` weighs the gradients of steps ``i .. max(i - 3, 0)``:
    ``min(i + 1, 4)`` weights, as iPNDM's order-4 formula does, starting from iPNDM's weights; a table of one's
    own, for :class:`~pndmkit.adams.TabulatedMultistep` or a solver file, may use up to ``i + 1``) are fitted
    together by least squares on the calibration noises' end-point errors (every coordinate a residual, see
    the module's description).

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
        parameters, at least 200: 760 at NFE 5 with the first time free, 720 with it fixed).
    grid_maxfev : int, optional
        ``maxfev`` of the grid search (its default otherwise).
    start : str or sequence of float, optional
        ``start`` of the grid search (:func:`~pndmkit.studies.grid_opt.optimize`): a grid kind, or an explicit grid
        (e.g. one searched for another method on the same network; with ``first_time="free"`` it may begin below
        ``t_start``). With a small ``grid_maxfev`` the fit starts there almost at once, which saves most of the
        runs where one costs a network's evaluation of every calibration noise.
    start_weights : sequence of sequences of float, optional
        The table the weight search starts from (default iPNDM's, :func:`~pndmkit.adams.adams_bashforth_table`),
        with its row lengths (``min(i + 1, 4)``): e.g. the weights of an earlier fit, continued with ``start=`` its
        grid and a small ``grid_maxfev``. The fallback and the baselines stay iPNDM's.
    fallback : bool
        Hand back iPNDM on the grid search's grid, saying so (:class:`SolverFallbackWarning`), where the 95%
        paired bootstrap interval of the fitted solver's held-out cut against it does not lie above 0. Passed to
        the grid search too: ``False`` starts the fit on the searched grid whatever the held-out noises show (a
        caller that judges the result on noises of its own, with as few as one held-out noise here, where the
        grid search would otherwise always fall back to the built-in grid, having no interval).
    stop_early : callable, optional
        Called before each run of both searches; it may raise ``KeyboardInterrupt`` to end them: the grid search
        then hands back its best grid so far (:attr:`OptimizedGrid.stopped <pndmkit.studies.grid_opt.OptimizedGrid>`),
        the weight search judges its best fit so far (:attr:`OptimizedSolver.stopped` says why); the weight search
        runs its start once whatever ``stop_early`` says.

    Returns
    -------
    OptimizedSolver

    Raises
    ------
    UsageError
        A bad argument, naming it (the grid search's checks, and ``maxfev`` / ``grid_maxfev``).
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
    if stop_early is not None and not callable(stop_early):
        raise UsageError("stop_early", f"stop_early must be callable or None, got {stop_early!r}")
    common = dict(schedule=schedule, t_start=t_start, t_end=t_end, calibration=calibration, heldout=heldout,
                  seed=seed, shape=shape, cache=cache, progress=progress, rebuild_cache=rebuild_cache,
                  first_time=first_time)
    with warnings.catch_warnings():  # the grid search's fallback is reported through grid_result
        warnings.simplefilter("ignore", GridFallbackWarning)
        og = optimize(BASE_METHOD, problem_or_model, nfe, maxfev=grid_maxfev, fallback=fallback, start=start,
                      stop_early=stop_early, **common)
    target = StudyTarget.resolve(problem_or_model, schedule, shape=shape, seed=seed, t_start=t_start, t_end=t_end,
                                 cache=cache, rebuild_cache=rebuild_cache)
    cal, held = target.study(0, og.calibration), target.study(og.calibration, og.heldout)
    sched = cal.schedule
    steps = og.steps
    start_grid = np.asarray(og.grid, dtype=np.float64)
    lifted = start_grid.copy()
    lifted[0] = cal.t_start
    interior = GridFamily(lifted, check_degree("auto", steps))
    free = first_time == "free"
    family: Any = FreeFirstTime(interior, cal.t_start) if free else interior
    base = adams_bashforth_table(steps)
    shape_w = [len(r) for r in base]
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
        delta = np.concatenate([np.subtract(g, b) for g, b in zip(given, base)])
    p0 = np.concatenate([theta0, delta])
    budget = maxfev or default_maxfev(steps, first_time)

    def unpack(p: NDArray[np.float64]) -> tuple[NDArray[np.float64], tuple]:
        g = family.grid(p[:family.size])
        rows, k = [], family.size
        for w0 in base:
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
            return sample_errors(study, fitted_integrator(rows, sched), g)

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
                    d = end_points(cal, fitted_integrator(rows, sched), g) - reference
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
    grid_s, rows_s = unpack(best["p"])
    if not math.isfinite(best["err"]):  # stopped before its first run finished: the start, measured here
        best["err"] = float(np.sqrt(np.mean(per_sample(cal, grid_s, rows_s))))
    fitted = per_sample(held, grid_s, rows_s)
    baseline = per_sample(held, start_grid, base)
    baseline_cal = per_sample(cal, start_grid, base)  # what a fallback hands back, on the calibration noises
    kind = og.baseline_kind
    from pndmkit.studies.grid_opt import builtin_grids

    builtin = per_sample(held, builtin_grids(held, steps, [kind])[kind], base)
    interval = reduction_interval(fitted, baseline)
    reason = ""
    if fallback:
        lo, hi = interval
        if math.isnan(lo):
            reason = f"no interval of the cut on {og.heldout} held-out samples, so no gain is shown"
        elif lo <= 0:
            reason = (f"the {100 * INTERVAL_LEVEL:.0f}% interval of the fitted solver's cut, {100 * lo:+.1f}% to "
                      f"{100 * hi:+.1f}%, does not lie above 0: no gain is shown")
    if reason:
        warnings.warn(f"optimize_solver(nfe={nfe}): handing back {BASE_METHOD} on its optimised grid, not the fitted "
                      f"weights: {reason}", SolverFallbackWarning, stacklevel=2)
    return OptimizedSolver(nfe=nfe, steps=steps, grid=start_grid if reason else grid_s,
                           weights=base if reason else rows_s, calibration_error=best["err"],
                           heldout_error=float(np.sqrt(np.mean(fitted))),
                           baseline_error=float(np.sqrt(np.mean(baseline))),
                           builtin_error=float(np.sqrt(np.mean(builtin))), builtin_kind=kind,
                           heldout_interval=interval, builtin_interval=reduction_interval(fitted, builtin),
                           evaluations=count[0], grid_result=og, searched_grid=grid_s, searched_weights=rows_s,
                           fell_back=bool(reason), fallback_reason=reason, first_time=first_time,
                           t_start=cal.t_start, schedule=schedule_key(sched), calibration=og.calibration,
                           heldout=og.heldout, seed=int(seed), stopped=stopped, _schedule=sched,
                           baseline_calibration_error=float(np.sqrt(np.mean(baseline_cal))))
