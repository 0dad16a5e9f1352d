r"""Fitted solver files: a weight table and its grid for one schedule, saved, checked and run again.

A fitted solver (:func:`pndmkit.studies.solver_opt.optimize_solver`) is a grid and a
:class:`~pndmkit.adams.TabulatedMultistep` table fitted for one NFE on one schedule. :class:`FittedSolver` holds what
running it again needs (the grid, the weights, the time the noise is drawn at, the schedule, the base method
whose transfer the table runs through: :data:`BASE_METHODS`) and where it came from; :func:`save_solver` /
:func:`load_solver` keep it in a JSON file whose every field is checked on reading (a damaged or hand-edited file
is refused naming the file and the field); :func:`fitted_integrator` builds the sampler of a table on a schedule.
``docs/fitted_solvers.md`` describes the file and the commands that use it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit._checks import check_bool, check_int, check_real
from pndmkit._io import atomic_path, check_out_file, json_text, read_json_object
from pndmkit.adams import TabulatedMultistep
from pndmkit.errors import BadFileError, UsageError, blame
from pndmkit.grids import check_grid
from pndmkit.integrator import Integrator
from pndmkit.methods import get_method
from pndmkit.sampling import sample
from pndmkit.schedules import NoiseSchedule, schedule_from_dict, schedule_key, schedule_to_dict
from pndmkit.studies.grid_opt import noise_at

__all__ = ["BASE_METHOD", "BASE_METHODS", "FITTED_NAME", "SOLVER_FORMAT", "SOLVER_VERSION", "SOLVER_VERSIONS",
           "SOLVER_FIELDS", "check_base", "fitted_name", "fitted_integrator", "FittedSolver", "save_solver",
           "solver_file_text", "load_solver"]

#: the registered methods a fitted solver may be built on (``base``): the weight table starts from its weights
#: (:func:`~pndmkit.adams.adams_bashforth_table`, which through the base's transfer is the method bit for bit), runs
#: through its transfer and starts on its optimised grid. ``ipndm`` weighs past ``eps`` predictions through DDIM's
#: transfer; ``ipndm-x0`` weighs past ``x0`` predictions through the data-prediction transfer
#: (:class:`~pndmkit.transfers.DataTransfer`, DPM-Solver++'s exact first-order step in ``e^lambda``)
BASE_METHODS = ("ipndm", "ipndm-x0")

#: the base a fitted solver is built on by default, and the one of every solver file of version 1
BASE_METHOD = BASE_METHODS[0]


def fitted_name(base: str = BASE_METHOD) -> str:
    """The name the runs of a fitted solver built on ``base`` report: ``base + "-fitted"``.

    Parameters
    ----------
    base : str
        One of :data:`BASE_METHODS`.

    Returns
    -------
    str
        ``"ipndm-fitted"``, ``"ipndm-x0-fitted"``.

    Raises
    ------
    UsageError
        Naming ``base``: not one of :data:`BASE_METHODS` (:func:`check_base`).

    Examples
    --------
    >>> fitted_name(), fitted_name("ipndm-x0")
    ('ipndm-fitted', 'ipndm-x0-fitted')
    """
    return check_base(base) + "-fitted"


def check_base(base: Any, name: str = "base") -> str:
    """``base`` if it is one of :data:`BASE_METHODS`, else a :class:`~pndmkit.errors.UsageError` naming ``name``,
    the value and the allowed bases.

    Parameters
    ----------
    base : str
        The base method to check.
    name : str
        The parameter to name in the error (``"base"``).

    Returns
    -------
    str
        ``base``.

    Raises
    ------
    UsageError
        ``base`` is not one of :data:`BASE_METHODS` (params ``(name,)``).
    """
    if isinstance(base, str) and base in BASE_METHODS:
        return base
    raise UsageError(name, f"{name} must be one of {', '.join(map(repr, BASE_METHODS))} (the methods a fitted "
                           f"solver is built on), got {base!r}")


#: the name a fitted solver on the default base reports (:attr:`pndmkit.run.Solution.method`, ``run.json`` of
#: ``pndmkit sample``); one on another base reports :func:`fitted_name` of it
FITTED_NAME = fitted_name(BASE_METHOD)

#: the ``format`` field of a solver file (:func:`save_solver`) and the version of the layout it writes: version 2
#: holds a field ``base``; version 1 (pndmkit before the x0 base) has none, and :func:`load_solver` reads it as
#: built on :data:`BASE_METHOD`
SOLVER_FORMAT, SOLVER_VERSION = "pndmkit-fitted-solver", 2

#: the versions :func:`load_solver` reads
SOLVER_VERSIONS = (1, 2)

#: every field of a solver file of :data:`SOLVER_VERSION` (``steps`` may be missing; any other field is refused); a
#: file of version 1 holds the same fields but ``base``
SOLVER_FIELDS = ("format", "version", "nfe", "steps", "grid", "weights", "t_start", "schedule", "schedule_spec",
                 "calibration_error", "heldout_error", "fell_back", "problem", "calibration", "heldout", "seed",
                 "base")


def fitted_integrator(weights: Sequence[Sequence[float]], schedule: NoiseSchedule, name: Optional[str] = None,
                      base: str = BASE_METHOD) -> Integrator:
    """The sampler of a weight table on ``schedule``: :class:`~pndmkit.adams.TabulatedMultistep` through the
    transfer the base method uses there.

    With ``base="ipndm"`` the table weighs past ``eps`` predictions through DDIM's transfer; with
    ``base="ipndm-x0"`` it weighs past ``x0`` predictions through the data-prediction transfer
    (:class:`~pndmkit.transfers.DataTransfer`). Either way the table
    :func:`~pndmkit.adams.adams_bashforth_table` of the step count is the base method itself, bit for bit.

    Parameters
    ----------
    weights : sequence of sequences of float
        One row per step (:class:`~pndmkit.adams.TabulatedMultistep`).
    schedule : NoiseSchedule
    name : str, optional
        The name a :class:`~pndmkit.run.Solution` reports (default :func:`fitted_name` of ``base``).
    base : str
        One of :data:`BASE_METHODS` (default :data:`BASE_METHOD`): whose transfer the table runs through.

    Returns
    -------
    Integrator
        Runs only on grids of ``len(weights)`` steps (``ValueError`` otherwise, when a run starts).

    Raises
    ------
    UsageError
        Naming ``base``: not one of :data:`BASE_METHODS`.
    """
    check_base(base)
    transfer = get_method(base).build(schedule).transfer
    return Integrator(TabulatedMultistep(weights), transfer, fitted_name(base) if name is None else name)


def _is_json_int(value: Any) -> bool:
    """Whether ``value`` is an integer as JSON writes one: an ``int``, not a bool and not a float (``2.0``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _refuse_text_and_bools(values: Any, name: str) -> None:
    """``TypeError`` naming the first entry of ``values`` that is a string or a bool (which numpy would read as a
    number: ``"108"`` as 108.0, ``False`` as 0.0); anything else is left to the caller's checks."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple, np.ndarray)):
        return
    for i, value in enumerate(values):
        if isinstance(value, (str, bytes, bool, np.bool_)):
            raise TypeError(f"{name}[{i}] must be a number (a time), got {type(value).__name__} {value!r}")


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

    What :func:`~pndmkit.studies.solver_opt.optimize_solver` hands back (``OptimizedSolver.fitted``),
    :func:`save_solver` writes and
    :func:`load_solver` reads: :class:`~pndmkit.adams.TabulatedMultistep` of :attr:`weights` through the transfer of
    its :attr:`base` method (:func:`fitted_integrator`: DDIM's for ``ipndm``, the data-prediction transfer for
    ``ipndm-x0``), run on :attr:`grid` from noise drawn at :attr:`t_start`. The weights hold for that
    grid and schedule only; nothing else about the run is free. Two solvers are equal when their fields (all but
    :attr:`noise_schedule`, which :attr:`schedule` names) are.

    Parameters
    ----------
    grid : sequence of float
        ``len(weights) + 1`` finite, strictly decreasing times (numbers: a string or a bool is refused, not read as
        one) in the schedule's units, the first at or below
        ``t_start``, all inside the schedule's domain (:meth:`~pndmkit.schedules.NoiseSchedule.check_time`:
        checked here where ``noise_schedule`` is given, else when a schedule is, by :meth:`integrator` or
        :meth:`sample`); kept as a read-only float64 array.
    weights : sequence of sequences of float
        One row per step: row ``i`` holds 1 to ``i + 1`` finite weights on the gradients of steps ``i, i - 1, ...``,
        each at most :data:`~pndmkit.adams.MAX_TABLE_WEIGHT` (``1e6``) in magnitude
        (:class:`~pndmkit.adams.TabulatedMultistep`; kept as a tuple of tuples of float).
        :func:`~pndmkit.studies.solver_opt.optimize_solver`
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
        Whether the fit handed back the base method's own weights on the grid search's grid, the fitted table's
        held-out gain not being shown (:class:`~pndmkit.studies.solver_opt.SolverFallbackWarning`).
    problem : str
        What it was fitted on: a problem name, a checkpoint name or path, a model's repr (``""``: not recorded).
    calibration, heldout, seed : int
        The noises of the fit: calibration ``0 .. calibration - 1`` and the next ``heldout`` of ``seed`` (0: not
        recorded).
    base : str
        The method the solver is built on, one of :data:`BASE_METHODS` (default :data:`BASE_METHOD`,
        ``"ipndm"``): the table weighs past ``eps`` predictions through DDIM's transfer (``ipndm``) or past ``x0``
        predictions through the data-prediction transfer (``ipndm-x0``). The same weights on another base are
        another sampler.
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
    base: str = BASE_METHOD
    noise_schedule: Optional[NoiseSchedule] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        with blame("grid"):
            _refuse_text_and_bools(self.grid, "grid")
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
        check_base(self.base)
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
        """The name its runs report: :func:`fitted_name` of :attr:`base` (``ipndm-fitted``, :data:`FITTED_NAME`;
        ``ipndm-x0-fitted``)."""
        return fitted_name(self.base)

    @staticmethod
    def complete_record(record: dict[str, Any]) -> dict[str, Any]:
        """``record`` (a :meth:`to_dict` written by an earlier pndmkit, as ``run.json`` of ``pndmkit sample`` holds
        it) with the fields it predates added at the value every solver had then: ``base`` :data:`BASE_METHOD`.

        Parameters
        ----------
        record : dict
            A solver's fields as recorded.

        Returns
        -------
        dict
            A new dict: ``record``'s fields, and ``base: "ipndm"`` where it has none.
        """
        return {"base": BASE_METHOD, **record}

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
        return fitted_integrator(self.weights, self._schedule_for(schedule), base=self.base)

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
            :func:`pndmkit.sample`'s (:class:`~pndmkit.run.Solution`), named :attr:`name`.

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
        schedule = self._schedule_for(kwargs.pop("schedule", None))  # checked once: the integrator is built here
        x = noise_at(schedule, x_T, self.t_start, float(self.grid[0])) if self.grid[0] < self.t_start else x_T
        return sample(model, x, schedule=schedule, method=fitted_integrator(self.weights, schedule, base=self.base),
                      grid=self.grid, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``nan`` errors as ``None``); :func:`save_solver` writes them with the schedule's
        description."""
        return {"nfe": self.nfe, "steps": self.steps, "grid": [float(t) for t in self.grid],
                "weights": [list(r) for r in self.weights], "t_start": self.t_start, "schedule": self.schedule,
                "calibration_error": None if math.isnan(self.calibration_error) else self.calibration_error,
                "heldout_error": None if math.isnan(self.heldout_error) else self.heldout_error,
                "fell_back": self.fell_back, "problem": self.problem, "calibration": self.calibration,
                "heldout": self.heldout, "seed": self.seed, "base": self.base}


#: keywords of :func:`pndmkit.sample` that :meth:`FittedSolver.sample` refuses: the solver's grid and weights set them
_SET_BY_SOLVER = ("method", "grid", "steps", "t_start", "t_end", "convention", "rho", "offset")


def save_solver(solver: Any, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Write a fitted solver to a JSON file, atomically (:func:`pndmkit._io.atomic_path`); return the path.

    The file holds ``format`` (:data:`SOLVER_FORMAT`), ``version`` (:data:`SOLVER_VERSION`, 2), every field of
    :meth:`FittedSolver.to_dict` (floats written exactly: read back, they are the same numbers bit for bit; ``base``
    among them) and ``schedule_spec``, the schedule's description (:func:`~pndmkit.schedules.schedule_to_dict`), from
    which :func:`load_solver` rebuilds it. A pndmkit that reads version 1 only refuses the file by its version
    instead of running its weights on another base's transfer.

    Parameters
    ----------
    solver : FittedSolver or OptimizedSolver
        What to save (an :class:`~pndmkit.studies.solver_opt.OptimizedSolver` saves its ``fitted`` solver).
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
        :class:`~pndmkit.schedules.CustomSchedule`); naming ``path``: it is not a path (``None``, a number, an empty
        string), a folder (also a name ending in ``/``), anything else but a regular file (a device, a FIFO: never
        replaced), or with ``overwrite=False`` a file already there.
    pndmkit.errors.WriteError
        An ``OSError`` naming ``path`` and the reason: the file could not be written (a full disk, a read-only
        filesystem); no temporary file is left behind, and an earlier file at ``path`` is as it was.
    """
    with blame("overwrite"):
        check_bool(overwrite, "overwrite")
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise UsageError("path", f"path must be the solver file's path (a non-empty str or os.PathLike), got "
                                 f"{path!r}")
    text = solver_file_text(solver)
    path = check_out_file(path, "path", overwrite=True, what="solver file", example="solver.json")
    with atomic_path(path) as tmp:
        tmp.write_text(text)
        if not overwrite:
            try:  # atomic and never over a file, one made since the caller looked included; the temporary goes
                os.link(tmp, path)
            except FileExistsError:
                raise UsageError("path", f"{path} already exists; pass overwrite=True to replace it, or another "
                                         "path") from None
    return path


def solver_file_text(solver: Any) -> str:
    """The text :func:`save_solver` writes for ``solver`` (JSON, with a final newline), without writing it: what
    ``pndmkit grid fit`` prints when its ``--out`` cannot be written, to be saved elsewhere by hand.

    Parameters
    ----------
    solver : FittedSolver or OptimizedSolver
        As :func:`save_solver` takes it.

    Returns
    -------
    str
        The solver file's text; :func:`load_solver` reads it back from a file.

    Raises
    ------
    UsageError
        Naming ``solver``, as :func:`save_solver` refuses it.
    """
    if not isinstance(solver, FittedSolver) and isinstance(getattr(solver, "fitted", None), FittedSolver):
        solver = solver.fitted  # an OptimizedSolver of pndmkit.studies.solver_opt: what it hands back
    if not isinstance(solver, FittedSolver):
        raise UsageError("solver", f"solver must be a FittedSolver or an OptimizedSolver, got {solver!r}")
    if solver.noise_schedule is None:
        raise UsageError("solver", f"this solver holds the key of its schedule ({solver.schedule}) but not the "
                                   "schedule, which the file must describe: give it noise_schedule=")
    try:
        spec = schedule_to_dict(solver.noise_schedule)
    except TypeError as exc:
        raise UsageError("solver", f"the solver's schedule cannot be written to a file ({exc})") from None
    return json_text({"format": SOLVER_FORMAT, "version": SOLVER_VERSION, **solver.to_dict(), "schedule_spec": spec},
                     indent=2, sort_keys=True) + "\n"


def load_solver(path: str | os.PathLike[str]) -> FittedSolver:
    """Read a fitted solver that :func:`save_solver` wrote, checking every field first.

    Parameters
    ----------
    path : str or os.PathLike
        The solver file (JSON).

    Returns
    -------
    FittedSolver
        With :attr:`~FittedSolver.noise_schedule` rebuilt from the file's ``schedule_spec``. A file of version 1
        (written before solvers had a base; it holds no field ``base``) is read as built on :data:`BASE_METHOD`
        (``ipndm``), as it was; one of version 2 names its base.

    Raises
    ------
    UsageError
        Naming ``path``: it is not a path (``None``, a number, an empty string).
    FileNotFoundError
        No such file.
    pndmkit.errors.BadFileError
        One line naming the file and the field at fault: not a regular file (a folder, a FIFO, a device), above
        16 MiB, not strict JSON (:func:`pndmkit._io.read_json_object`: cut short, ``NaN`` / ``Infinity``, a key
        twice in one object, a number out of range, nested too deep), a string or bool where a number belongs or a
        float where an integer does (``version``, ``steps``, ``nfe``, ...), not a solver file
        (``format``, a missing ``version`` or one not in :data:`SOLVER_VERSIONS`), a missing field (``base`` in a
        file of version 2), a field a solver file of its version does not hold (:data:`SOLVER_FIELDS`; ``base`` in a
        file of version 1: an unknown field is refused, not ignored), a ``base`` not in :data:`BASE_METHODS`, or a
        field that breaks a rule of :class:`FittedSolver` (a row
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
    data = read_json_object(path, "solver file", fix)  # a folder, FIFO or device, and strict JSON, refused there
    if data.get("format") != SOLVER_FORMAT:
        raise BadFileError(path, f"solver file {path} is not a pndmkit solver file (field 'format' is "
                                 f"{data.get('format')!r}, {SOLVER_FORMAT!r} expected); pass a file that save_solver "
                                 "or pndmkit grid fit wrote")
    versions = " and ".join(map(str, SOLVER_VERSIONS))
    if "version" not in data:
        raise BadFileError(path, f"solver file {path} has no field 'version' (this pndmkit reads versions "
                                 f"{versions}); {fix}")
    version = data["version"]
    if not _is_json_int(version) or version not in SOLVER_VERSIONS:  # 2.0 is not a version: integers are integers
        raise BadFileError(path, f"solver file {path} has field 'version' {version!r}; this pndmkit reads versions "
                                 f"{versions} (JSON integers)")
    # version 1 has no base: its solvers are all built on BASE_METHOD
    held = SOLVER_FIELDS if version == SOLVER_VERSION else tuple(f for f in SOLVER_FIELDS if f != "base")
    names = tuple(f.name for f in fields(FittedSolver) if f.name != "noise_schedule" and f.name in held)
    missing = [name for name in (*names, "schedule_spec") if name not in data]
    if missing:
        raise BadFileError(path, f"solver file {path} has no field {missing[0]!r}; {fix}")
    unknown = sorted(set(data) - set(held))
    if unknown:  # a misspelt or foreign field would otherwise be dropped without a word
        raise BadFileError(path, f"solver file {path} has unknown field {unknown[0]!r} (a version {version} "
                                 f"solver file holds only {', '.join(held)}); remove it, or {fix}")
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
    if not _is_json_int(steps) or steps != solver.steps:
        raise BadFileError(path, f"solver file {path} has a bad field 'steps': {steps!r}, but weights has "
                                 f"{solver.steps} rows, so steps must be the integer {solver.steps}; {fix}")
    try:  # the times against the schedule's domain
        return replace(solver, noise_schedule=noise_schedule)
    except UsageError as exc:
        raise bad_field(exc) from None
