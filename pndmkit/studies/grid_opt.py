r"""Optimised timestep grids: the ``N + 1`` times that minimise a method's end-point error, training-free.

For a method and an NFE budget the step count ``N`` is the largest whose run fits the budget
(:func:`pndmkit.methods.steps_for_nfe`). The grid keeps its last time; its first time is searched at or below
``t_start`` by default (``first_time="free"``, :class:`FreeFirstTime`: the noise is taken as the state there,
:func:`noise_at`, and the error still measured against the flow from ``t_start``). Its ``N`` step lengths in ``t``
start from a start grid (by default the best built-in grid on the calibration noises) and move by a smooth
family: ``log h_i`` changes by a Legendre polynomial of degree ``degree`` (default 3) in the step index, and
the lengths are rescaled to the fixed interval, so every parameter vector is a valid decreasing grid and
``theta = 0`` is the start grid. ``degree=None`` frees every step (``N - 1`` parameters). The search minimises
``log`` of the RMS end-point error against the reference solution on the calibration noises (Nelder-Mead: the
objective is one sampling run, no gradients). The result is judged on *held-out* noises only, against every
built-in continuous grid kind on the same held-out noises, with a 95% paired bootstrap interval of the cut over
the held-out samples (:func:`reduction_interval`): per-sample errors on a network are heavy-tailed, so a cut
measured on a few noises can be far from the one on the next few, and the interval says how far.

Why a smooth family: on ``gmm2d`` (iPNDM, 8 calibration noises) degree 3 reaches the held-out gains of the
free grid (70/81/60/76% against 69/82/60/78% at NFE 5/6/8/10 in an eighth to two thirds of the runs, first time
fixed; 75/85/61/77% against 76/82/60/78% in two fifths to four fifths of them with it free), which matters
when one run is a network's; on 256-dimensional data (``digits-gmm``) a free grid fitted to 8 noises does
worse on held-out noises than where it started, so calibrate on tens of noises there.

The reference is exact for a Gaussian mixture (DOP853 at ``1e-12``) and the converged float64 solution of
:mod:`pndmkit.studies.real` for a network, solved and cached (when ``cache`` is given) per block of
:data:`REFERENCE_BLOCK` noises aligned on the noise index: calibration and held-out sets of any size reuse the
blocks already solved, and an interrupted reference keeps the blocks it finished.

Examples
--------
>>> res = optimize("ipndm", "gmm1d", 6, calibration=4, heldout=4, maxfev=60)
>>> res.grid.size, res.steps, bool(res.heldout_error <= res.baseline_error)
(7, 6, True)
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit._checks import MAX_STEPS, check_bool, check_choice, check_int, check_real
from pndmkit._io import progress_bar
from pndmkit.errors import UsageError, blame
from pndmkit.grids import GRID_KINDS, make_grid
from pndmkit.methods import METHODS, MethodSpec, get_method, steps_for_nfe
from pndmkit.sampling import sample
from pndmkit.schedules import CustomSchedule, NoiseSchedule, schedule_key
from pndmkit.stability import StabilityWarning
from pndmkit.studies.convergence import Study
from pndmkit.studies.monitor import interrupts_held
from pndmkit.studies.statistics import (INTERVAL_LEVEL, INTERVAL_MIN_SAMPLES, INTERVAL_RESAMPLES,
                                       reduction_interval)
from pndmkit.studies.targets import REFERENCE_BLOCK, REFERENCE_RTOL, StudyTarget, is_problem

__all__ = ["OptimizedGrid", "GridFallbackWarning", "optimize", "evaluate", "check_start", "check_degree", "AUTO_DEGREE",
           "DEFAULT_DEGREE", "default_noises", "problem_name", "PROBLEM_NOISE_RANGE", "PROBLEM_NOISE_BUDGET",
           "FIRST_TIMES", "FreeFirstTime", "noise_at", "NETWORK_NOISES", "reduction_interval",
           "sample_errors", "end_points", "rms_error", "fallback_reason", "default_grid_maxfev", "builtin_grids", "GridFamily", "search_objective", "BUILTIN_KINDS", "REFERENCE_BLOCK", "REFERENCE_RTOL",
           "INTERVAL_LEVEL", "INTERVAL_MIN_SAMPLES", "INTERVAL_RESAMPLES"]

#: largest number of calibration / held-out noises or objective evaluations accepted (NFE: ``MAX_STEPS``)
MAX_NOISES = 1_000_000

#: default degree of the grid family (:func:`optimize`), lowered to ``steps - 1`` on grids of fewer steps
DEFAULT_DEGREE = 3

#: the ``degree`` that stands for :data:`DEFAULT_DEGREE` lowered to what the grid can use (:func:`check_degree`);
#: a degree given as a number is never lowered
AUTO_DEGREE = "auto"

#: fewest and most calibration (and as many held-out) noises :func:`default_noises` gives a Gaussian-mixture
#: problem: the exact reference makes a run cost milliseconds, so thousands of noises cost seconds on a
#: low-dimensional mixture; the count falls with the dimension to keep a run's cost about level
PROBLEM_NOISE_RANGE = (256, 2048)

#: noise count times dimension that :func:`default_noises` keeps about level on a problem (2048 noises of an
#: 8-dimensional mixture)
PROBLEM_NOISE_BUDGET = 2048 * 8

#: values of :func:`optimize`'s ``first_time``: searched at or below ``t_start`` (the noise taken as the state
#: there), or kept at ``t_start``
FIRST_TIMES = ("free", "fixed")

#: default calibration and held-out noises on a network with no cached references beyond this many: one
#: reference block each (the reference of one block costs 17-28 CPU-minutes on the digits UNet)
NETWORK_NOISES = (REFERENCE_BLOCK, REFERENCE_BLOCK)

#: most reference blocks :func:`default_noises` looks for in a network's cache
MAX_CACHED_BLOCKS = 64

#: built-in grid kinds an optimised grid is compared with (continuous kinds, each counted once)
BUILTIN_KINDS = tuple(k for k, g in GRID_KINDS.items() if not g.discrete_only and g.same_as is None)


class GridFallbackWarning(UserWarning):
    """:func:`optimize` handed back a built-in grid: the searched grid's held-out gain is not shown."""


@dataclass(frozen=True)
class OptimizedGrid:
    """An optimised grid and how it does on held-out noises.

    Attributes
    ----------
    method : str
    nfe, steps : int
        The budget and the step count that fits it (``grid`` has ``steps + 1`` times).
    grid : ndarray
        The grid handed back: decreasing times, last ``t_end``, first ``t_start`` or (``first_time="free"``)
        at or below it, the noise then taken as the state there (:func:`noise_at`). The searched grid
        (:attr:`searched_grid`) where its held-out interval shows a gain, else the best built-in kind's grid
        (:attr:`fell_back`).
    calibration_error, heldout_error : float
        RMS end-point error of the searched grid on the calibration and held-out noises.
    baseline_kind : str
        The built-in grid kind with the smallest held-out error.
    baseline_error : float
        Its held-out error.
    builtin_errors : dict
        Held-out error of every built-in kind.
    heldout_interval : (float, float)
        95% paired bootstrap interval of :attr:`reduction` over the held-out samples
        (:func:`reduction_interval`): how far the cut can be trusted at this many held-out noises; ``(nan, nan)``
        with fewer than :data:`INTERVAL_MIN_SAMPLES` of them (``None`` in :meth:`to_dict`).
    evaluations : int
        Objective evaluations (sampling runs on the calibration noises), both phases of a free first time's
        search together, at most the search's budget (``maxfev``); the start grids' runs are not counted.
    fixed_calibration_error : float
        Calibration error of the best grid with the first time at :attr:`t_start` (the fixed phase of the search;
        :attr:`calibration_error` itself with ``first_time="fixed"``): :attr:`calibration_error` is never above
        it. ``nan``: not recorded (results built by hand); ``inf``: the fixed phase ran no grid.
    fixed_evaluations : int
        Of :attr:`evaluations`, the runs of the fixed phase (all of them with ``first_time="fixed"``); the rest
        searched the first time too, starting from the fixed phase's best grid.
    reference_error : float
        Error estimate of the held-out reference.
    degree : int
        Parameters of the grid family that moved the interior times (``steps - 1``: every step free); a free
        first time (:attr:`first_time`) is one more.
    start_grid : ndarray or None
        The grid the search started from (``theta = 0``).
    problem : str
        What the grid was fitted on (a problem name, a checkpoint name or path, or the model's repr).
    calibration, heldout, seed : int
        The noises: calibration ``0 .. calibration - 1``, held-out the next ``heldout``, of this seed.
    searched_grid : ndarray or None
        The search's best grid (``None``: the same as :attr:`grid`, e.g. in results built by hand).
    fell_back : bool
        Whether :attr:`grid` is the best built-in kind's grid because the searched grid's held-out interval does
        not show a gain (its lower end is not above 0, or there is no interval).
    fallback_reason : str
        Why, in words (``""`` when the searched grid is handed back).
    first_time : str
        ``"free"`` (searched at or below :attr:`t_start`) or ``"fixed"`` (at :attr:`t_start`).
    t_start : float
        Time of the noise and start of the reference flow (``nan``: not recorded, e.g. in results built by hand).
    schedule : str
        :func:`~pndmkit.schedules.schedule_key` of the schedule the times are in, its exact identity (the ``repr``
        of a built-in schedule, e.g. ``DiscreteVP.linear(T=1000, beta_start=0.00085, beta_end=0.012)``; ``""``:
        not recorded). :func:`evaluate` refuses to judge the result on a schedule with another key.
    start_scale : float
        What the noise at :attr:`t_start` is multiplied by to be the state at :attr:`grid`'s first time (the grid
        handed back; :func:`noise_at`): 1 on a VP schedule and where the first time is :attr:`t_start`.
    """

    method: str
    nfe: int
    steps: int
    grid: NDArray[np.float64]
    calibration_error: float
    heldout_error: float
    baseline_kind: str
    baseline_error: float
    builtin_errors: dict[str, float] = field(default_factory=dict)
    heldout_interval: tuple[float, float] = (math.nan, math.nan)
    evaluations: int = 0
    fixed_calibration_error: float = math.nan
    fixed_evaluations: int = 0
    reference_error: float = 0.0
    degree: int = 0
    start_grid: Optional[NDArray[np.float64]] = None
    problem: str = ""
    calibration: int = 0
    heldout: int = 0
    seed: int = 0
    #: why the search stopped before its budget of evaluations ("" when it did not)
    stopped: str = ""
    searched_grid: Optional[NDArray[np.float64]] = None
    fell_back: bool = False
    fallback_reason: str = ""
    first_time: str = "fixed"
    t_start: float = math.nan
    schedule: str = ""
    start_scale: float = 1.0

    def __post_init__(self) -> None:
        # frozen means frozen: the times are read-only copies, so a result cannot drift from its report
        if self.searched_grid is None:
            object.__setattr__(self, "searched_grid", self.grid)
        for name in ("grid", "start_grid", "searched_grid"):
            value = getattr(self, name)
            if value is not None:
                arr = np.array(value, dtype=np.float64)
                arr.setflags(write=False)
                object.__setattr__(self, name, arr)
        object.__setattr__(self, "builtin_errors", dict(self.builtin_errors))
        low, high = (math.nan if v is None else float(v) for v in self.heldout_interval)
        object.__setattr__(self, "heldout_interval", (low, high))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OptimizedGrid):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @property
    def reduction(self) -> float:
        """Relative cut of the searched grid's held-out error against the best built-in grid (0.3 = 30% smaller)."""
        return 1.0 - self.heldout_error / self.baseline_error

    @property
    def gain(self) -> float:
        """Relative cut of the handed-back :attr:`grid`'s held-out error: :attr:`reduction`, or 0 where it fell back."""
        return 0.0 if self.fell_back else self.reduction

    @property
    def first_time_won(self) -> str:
        """Which first time the search kept: ``"free"`` where :attr:`searched_grid` starts below :attr:`t_start` (a
        late first time beat, on the calibration noises, the best grid with it at :attr:`t_start`, whose error
        is :attr:`fixed_calibration_error`), else ``"fixed"`` (always with ``first_time="fixed"``)."""
        return "free" if self.searched_grid[0] < self.t_start else "fixed"

    def report(self) -> str:
        """A few lines for people: the grid, the held-out errors and the reduction.

        Where the steps use fewer evaluations than the budget ``nfe`` (four-evaluation steps of ``f-pndm``
        in a budget of 6) the first line says how many they use; a one-step run says that its grid, the two
        end times, leaves nothing to optimise instead of giving an interval.
        """
        kinds = ", ".join(f"{k} {e:.2e}" for k, e in sorted(self.builtin_errors.items(), key=lambda kv: kv[1]))
        used = _evaluations(self.method, self.steps)
        used_text = f", {used} evaluations used" if used is not None and used != self.nfe else ""
        interval = (
            f"no interval of the cut: one step leaves no interior time to optimise (every grid is the two end "
            f"times{'' if used is None else f'; a second step needs NFE {_evaluations(self.method, 2)}'})"
            if self.steps == 1 and self.first_time != "free" else
            f"no interval of the cut: {_count(self.heldout, 'held-out sample')} (an interval needs at least "
            f"{INTERVAL_MIN_SAMPLES} and a non-zero baseline error)" if math.isnan(self.heldout_interval[0]) else
            f"{100 * INTERVAL_LEVEL:.0f}% interval of the cut over the {_count(self.heldout, 'held-out sample')} "
            f"(paired bootstrap): {100 * self.heldout_interval[0]:+.1f}% to {100 * self.heldout_interval[1]:+.1f}%"
            f" (+ = smaller)")
        return "\n".join([
            f"{self.method} at NFE {self.nfe} ({_count(self.steps, 'step')}{used_text}), "
            f"{_count(self.degree, 'grid parameter')}"
            f"{' (every step free)' if self.degree == self.steps - 1 and self.degree > 0 else ''}"
            f"{' and the first time' if self.first_time == 'free' else ''}, "
            f"{_count(self.evaluations, 'calibration run')}",
            f"{'searched grid' if self.fell_back else 'grid'}: " + " ".join(_time(t) for t in self.searched_grid),
        ] + ([self.first_time_line()] if self.first_time == "free" and not math.isnan(self.fixed_calibration_error)
             else []) + ([f"schedule {self.schedule}: times from {_time(self.t_start)} (the noise) to {_time(self.grid[-1])}"]
             if self.schedule else []) + ([self.late_start()] if self.grid[0] < self.t_start else []) + [
            f"held-out error {self.heldout_error:.3e} vs best built-in {self.baseline_kind} {self.baseline_error:.3e}: "
            f"{abs(100 * self.reduction):.1f}% {'smaller' if self.reduction >= 0 else 'larger'} "
            f"(calibration error {self.calibration_error:.3e})",
            interval,
            f"built-in grids (held-out): {kinds}",
            f"reference error {self.reference_error:.1e}",
        ] + ([f"the search stopped early ({self.stopped}): the grid is the best of its "
              f"{_count(self.evaluations, 'run')}"] if self.stopped else [])
          + ([f"FELL BACK to the best built-in grid ({self.baseline_kind}): {self.fallback_reason}; "
              f"the grid handed back is: " + " ".join(_time(t) for t in self.grid)] if self.fell_back else []))

    def first_time_line(self) -> str:
        """Which first time the free search kept and what each phase cost (a report line)."""
        runs = (f"{self.fixed_evaluations} of the {_count(self.evaluations, 'run')} with it at {_time(self.t_start)}, "
                f"the rest with it searched from there")
        if self.first_time_won == "free":
            return (f"first time searched: {_time(self.searched_grid[0])} kept, calibration error "
                    f"{self.calibration_error:.3e} against {self.fixed_calibration_error:.3e} with the best grid from "
                    f"{_time(self.t_start)} ({runs})")
        return (f"first time searched: {_time(self.t_start)} kept, no later first time did better on the calibration "
                f"noises ({runs})")

    def late_start(self) -> str:
        """How to start from the handed-back :attr:`grid`'s first time where it lies below :attr:`t_start` (a
        report line)."""
        first = _time(self.grid[0])
        if self.start_scale == 1.0:
            how = "the noise itself is the state there (scale 1 on this schedule)"
        else:
            how = (f"the state there is the noise times {self.start_scale:.6g} = scale({first}) / "
                   f"scale({_time(self.t_start)}), pure noise of that time: "
                   f"pndmkit.studies.grid_opt.noise_at(schedule, x_T, {_time(self.t_start)}, {first})")
        return (f"first time {first}, below the noise's time {_time(self.t_start)}: {how}; the error is measured "
                f"against the flow from {_time(self.t_start)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (``grid`` as a list, ``reduction`` included)."""
        out = {k: v for k, v in self.__dict__.items()}
        out["grid"] = [float(t) for t in self.grid]
        out["start_grid"] = None if self.start_grid is None else [float(t) for t in self.start_grid]
        out["searched_grid"] = [float(t) for t in self.searched_grid]
        out["gain"] = self.gain
        out["reduction"] = self.reduction
        out["heldout_interval"] = [None if math.isnan(v) else v for v in self.heldout_interval]  # JSON has no NaN
        out["interval_level"] = INTERVAL_LEVEL
        out["t_start"] = None if math.isnan(self.t_start) else self.t_start
        out["first_time_won"] = self.first_time_won
        err = self.fixed_calibration_error
        out["fixed_calibration_error"] = err if math.isfinite(err) else None  # JSON has no NaN nor inf
        return out


def _time(t: float) -> str:
    """A time for a report line, with digits enough to tell it from times 1e-6 away."""
    return f"{float(t):.7g}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _evaluations(method: str, steps: int) -> Optional[int]:
    """Model evaluations of ``steps`` steps of the registered ``method`` (``None`` if it is not registered)."""
    spec = METHODS.get(method)
    return None if spec is None else spec.nfe(steps)


def noise_at(schedule: NoiseSchedule, x_T: NDArray[np.float64], t_start: float, first: float) -> NDArray[np.float64]:
    """The start state of a grid whose first time ``first`` is at or below ``t_start``, the time of the noise ``x_T``.

    The noise is taken as the state at ``first``, at that time's scale: ``x_T * scale(first) / scale(t_start)``
    (:meth:`~pndmkit.schedules.NoiseSchedule.scale`), which is ``x_T`` itself on a variance-preserving schedule
    (where diffusers' ``leading`` grids start below the last training step from the same noise) and pure noise
    of ``first`` on EDM, VE and flow schedules, as a sampler started there draws it. The reference stays the flow
    from ``x_T`` at ``t_start``, so the error a late start leaves is counted.

    Parameters
    ----------
    schedule : NoiseSchedule
    x_T : ndarray
        Noises at ``t_start``, any shape.
    t_start, first : float
        Times in the schedule's variable, ``first <= t_start``.

    Returns
    -------
    ndarray
        ``x_T`` (the same object) where the scales are equal, else a scaled copy.

    Raises
    ------
    ValueError
        ``first`` above ``t_start``, or a time outside the schedule's domain (naming ``first``).
    """
    if not first <= t_start:
        raise ValueError(f"first={first!r} must be at or below t_start={t_start!r}, the time the noise is drawn at")
    with blame("first"):
        ratio = float(schedule.scale(first)) / float(schedule.scale(t_start))
    return x_T if ratio == 1.0 else x_T * ratio


class FreeFirstTime:
    """Grids of a :class:`GridFamily` with the first time searched too, at or below ``t_top``.

    ``family`` spans ``[t_top, t_end]``; the last parameter ``f`` moves the first time down to
    ``t_top - f (t_top - t_1)``, ``t_1`` the family grid's second time: ``f = 0`` keeps ``t_top``, ``f`` in
    ``[0, 1)`` spans every first time in ``(t_1, t_top]``. A value outside ``[0, 1]`` (a Nelder-Mead step) is
    clipped to it; ``f = 1`` repeats ``t_1``, a grid that is not decreasing (the objective scores it ``inf``).
    So every decreasing grid ending at ``t_end`` whose first time is at or below ``t_top`` is reached where the
    family reaches its interior times. The sampler takes the noise as its state at the first time
    (:func:`noise_at`).

    Parameters
    ----------
    family : GridFamily
        Built on a grid whose first time is ``t_top``.
    t_top : float
        The highest first time: the time of the noise (the study's ``t_start``).
    """

    def __init__(self, family: GridFamily, t_top: float) -> None:
        if not math.isclose(family.t0, t_top, rel_tol=0.0, abs_tol=1e-9 * max(1.0, abs(t_top))):
            raise ValueError(f"the family must start at t_top={t_top:g}, got {family.t0:g}")
        self.family, self.t_top = family, float(t_top)

    @property
    def size(self) -> int:
        """Number of parameters: the family's and the first time's."""
        return self.family.size + 1

    def grid(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        """The grid of parameters ``theta`` (:attr:`size` values; the last is ``f``)."""
        theta = np.asarray(theta, dtype=np.float64)
        g = self.family.grid(theta[:-1])
        g[0] = self.t_top - float(np.clip(theta[-1], 0.0, 1.0)) * (self.t_top - g[1])
        return g

    def fraction(self, grid: NDArray[np.float64]) -> float:
        """The ``f`` of ``grid``'s first time, its second time taken as ``t_1``."""
        return float((self.t_top - grid[0]) / (self.t_top - grid[1]))


def end_points(study: Study, spec: Any, grid: NDArray[np.float64]) -> NDArray[np.float64]:
    """The run's end points from the study's noises on ``grid`` as float64 ``(n, dim)`` (samples flattened).

    ``spec`` is what :func:`pndmkit.sample` takes as ``method`` (a name, a spec or an integrator built on the
    study's schedule). A grid whose first time is below the study's ``t_start`` starts from the noise taken as the
    state there (:func:`noise_at`).
    """
    x_T: Any = study.x_T
    if grid[0] > study.t_start * (1 + 1e-12) + 1e-12:
        raise ValueError(f"the grid's first time {grid[0]:g} is above the noise's time t_start={study.t_start:g}")
    if grid[0] < study.t_start:
        x_T = noise_at(study.schedule, x_T, study.t_start, float(grid[0]))
    if not is_problem(study.problem):
        import torch

        x_T = torch.from_numpy(np.array(x_T, dtype=np.float64))  # a copy: the network may write into its input
    sol = sample(lambda x, t: study.problem.eps(x, t, study.schedule), x_T, schedule=study.schedule, method=spec,
                 grid=grid)
    x = sol.x.detach().cpu().double().numpy() if hasattr(sol.x, "detach") else np.asarray(sol.x, dtype=np.float64)
    return x.reshape(len(study.reference), -1)


def sample_errors(study: Study, spec: MethodSpec, grid: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mean squared end-point error of each sample (over its dimensions): shape ``(n,)``, float64.

    A grid whose first time is below the study's ``t_start`` starts from the noise taken as the state there
    (:func:`noise_at`); the reference is the study's, the flow from ``t_start``.
    """
    d = end_points(study, spec, grid) - study.reference.reshape(len(study.reference), -1)
    return np.mean(d * d, axis=1)


def rms_error(study: Study, spec: MethodSpec, grid: NDArray[np.float64]) -> float:
    """RMS end-point error over samples and dimensions (:meth:`Study.error`)."""
    return float(np.sqrt(np.mean(sample_errors(study, spec, grid))))


def builtin_grids(study: Study, steps: int, kinds: Sequence[str]) -> dict[str, NDArray[np.float64]]:
    """The grid of each built-in kind of ``kinds`` with ``steps`` steps on ``study``'s interval, by kind.

    A kind that cannot make that grid (a floored kind with too few steps) is left out.
    """
    grids = {}
    for kind in kinds:
        try:
            grids[kind] = make_grid(study.schedule, steps, kind, t_start=study.t_start, t_end=study.t_end)
        except ValueError:  # e.g. a floored kind with too few steps
            continue
    return grids


class GridFamily:
    """Grids near a start grid ``g0``: log step lengths moved by a Legendre polynomial of the step index.

    ``h_i(theta) = (t_start - t_end) w_i / sum(w)``, ``w_i = h0_i exp(sum_k theta_k P_k(x_i))`` with ``x_i`` the
    midpoint of step ``i`` mapped to ``[-1, 1]`` and ``k = 1 .. degree``. ``theta = 0`` is ``g0``; every ``theta``
    is a decreasing grid with the same end times; ``degree = steps - 1`` reaches every such grid (the Legendre
    Vandermonde matrix at ``steps`` distinct points is invertible and the constant is taken by the normalisation).
    """

    def __init__(self, start: NDArray[np.float64], degree: int) -> None:
        self.t0, self.t1 = float(start[0]), float(start[-1])
        h0 = np.maximum(-np.diff(start), 1e-12 * (self.t0 - self.t1))
        self.log_h0 = np.log(h0)
        n = h0.size
        x = -1.0 + (2.0 * np.arange(n) + 1.0) / n
        self.basis = np.polynomial.legendre.legvander(x, degree)[:, 1:]

    @property
    def size(self) -> int:
        """Number of parameters."""
        return self.basis.shape[1]

    def grid(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        """The grid of parameters ``theta`` (``size`` values): decreasing, with the start grid's end times."""
        z = self.log_h0 + self.basis @ np.asarray(theta, dtype=np.float64)
        w = np.exp(z - z.max())
        g = self.t0 - np.concatenate([[0.0], np.cumsum((self.t0 - self.t1) * w / w.sum())])
        g[-1] = self.t1
        return g

    def theta(self, grid: NDArray[np.float64]) -> NDArray[np.float64]:
        """Least-squares parameters of ``grid`` (exact when ``grid`` is in the family)."""
        h = np.maximum(-np.diff(grid), 1e-12 * (grid[0] - grid[-1]))
        z = np.log(h) - self.log_h0
        full = np.column_stack([np.ones(z.size), self.basis])
        return np.linalg.lstsq(full, z, rcond=None)[0][1:]


def _times(name: str, value: Any, what: str) -> NDArray[np.float64]:
    """``value`` as a float64 array of times; strings, bools and mappings (which numpy would take) are refused."""
    if isinstance(value, (str, bytes, dict, set)) or any(isinstance(v, (str, bytes, bool, np.bool_))
                                                          for v in np.ravel(np.asarray(value, dtype=object))):
        raise UsageError(name, f"{name} must be {what}, got {value!r}")
    with blame(name):
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be {what}, got {value!r}") from exc


def search_objective(study: Study, spec: MethodSpec, family: GridFamily, best: dict[str, Any], count: list[int],
                     bar: Any = None) -> Any:
    """The search's objective: ``log`` of the RMS end-point error on ``study`` of the grid ``family.grid(theta)``.

    Counts each call in ``count[0]`` (and ``bar``); keeps the best run so far in ``best`` (``err``, ``grid``,
    ``theta``); a grid that is not decreasing, or a run that fails or is not finite, scores ``inf``.
    """

    def objective(theta: NDArray[np.float64]) -> float:
        count[0] += 1
        if bar is not None:
            bar.update(1)
        g = family.grid(theta)
        if np.any(np.diff(g) >= 0):
            return math.inf
        try:
            with warnings.catch_warnings():  # stability warnings of trial grids: the result is judged once
                warnings.simplefilter("ignore")
                err = rms_error(study, spec, g)
        except (ValueError, FloatingPointError):
            return math.inf
        if not math.isfinite(err):
            return math.inf
        if err < best["err"]:
            best.update(err=err, grid=g, theta=np.array(theta, dtype=np.float64))
        return math.log(max(err, 1e-300))  # an exact run (error 0) is the best possible value

    return objective


def problem_name(problem_or_model: Any) -> str:
    """What :attr:`OptimizedGrid.problem` records of :func:`optimize`'s ``problem_or_model``: a name or path as
    given, a network's ``meta["name"]``, else the object's type name.

    Parameters
    ----------
    problem_or_model : object
        As :func:`optimize` takes it.

    Returns
    -------
    str

    Examples
    --------
    >>> from pndmkit.problems import get_problem
    >>> problem_name("gmm2d"), problem_name(get_problem("gmm2d"))
    ('gmm2d', 'GaussianMixture')
    """
    if isinstance(problem_or_model, str):
        return problem_or_model
    if isinstance(problem_or_model, os.PathLike):
        return str(problem_or_model)
    return getattr(problem_or_model, "meta", {}).get("name") or type(problem_or_model).__name__


def default_noises(target: StudyTarget) -> tuple[int, int]:
    """Default ``(calibration, heldout)`` noises of :func:`optimize` on ``target``: as many as its cost allows.

    * A Gaussian-mixture problem of dimension ``d``: ``n`` and ``n``, ``n`` the power of two at or below
      :data:`PROBLEM_NOISE_BUDGET` ``/ d``, within :data:`PROBLEM_NOISE_RANGE` (its reference is exact and a run
      costs milliseconds): 2048 for ``d <= 8``, 512 for ``gmm32d``'s 32 dimensions, 256 from 64 dimensions up
      (``digits-gmm``'s 256, whose reference of 2048 noises would cost minutes). On 256 held-out noises the 95%
      interval of a cut is about 30 points wide; on 2048 about 5.
    * A network whose cache holds the references of noises ``0 .. n - 1`` (whole blocks of
      :data:`REFERENCE_BLOCK`, this seed and interval) with ``n >= 2 * REFERENCE_BLOCK``: the first
      ``n // 2`` rounded down to whole blocks for calibration and the rest held out, so nothing is solved.
    * Any other network: :data:`NETWORK_NOISES` (one block each, the references solved and, with a cache, kept).
    """
    if target.is_problem:
        low, high = PROBLEM_NOISE_RANGE
        dim = int(np.prod(target.shape))
        n = 1 << max(0, (PROBLEM_NOISE_BUDGET // max(dim, 1)).bit_length() - 1)
        n = min(max(n, low), high)
        return n, n
    cached = 0
    if target.cache is not None:
        from pndmkit.studies.real import cached_model_study

        while cached < MAX_CACHED_BLOCKS * REFERENCE_BLOCK and cached_model_study(
                target.source, target.schedule, target.noises(cached, REFERENCE_BLOCK), t_start=target.t_start,
                t_end=target.t_end, cache=target.cache, rtol=REFERENCE_RTOL) is not None:
            cached += REFERENCE_BLOCK
    if cached < 2 * REFERENCE_BLOCK:
        return NETWORK_NOISES
    cal = (cached // 2) // REFERENCE_BLOCK * REFERENCE_BLOCK
    return cal, cached - cal


def fallback_reason(interval: tuple[float, float], heldout: int, what: str = "searched grid") -> str:
    """Why a search result with this held-out ``interval`` of its cut is not handed back (``""``: it is).

    Parameters
    ----------
    interval : (float, float)
        :func:`reduction_interval` of the result's held-out cut against its baseline (``nan``: none).
    heldout : int
        Held-out noises it was judged on.
    what : str
        What the result is, for the message (``"searched grid"``; ``"fitted solver"`` in
        :func:`pndmkit.studies.solver_opt.optimize_solver`).

    >>> fallback_reason((0.1, 0.3), 64), fallback_reason((-0.1, 0.3), 64)
    ('', "the 95% interval of the searched grid's cut, -10.0% to +30.0%, does not lie above 0: no gain is shown")
    """
    low, high = interval
    if math.isnan(low):
        return (f"no interval of the cut on {_count(heldout, 'held-out sample')} (an interval needs at least "
                f"{INTERVAL_MIN_SAMPLES} and a non-zero baseline error), so no gain is shown")
    if low <= 0.0:
        return (f"the {100 * INTERVAL_LEVEL:.0f}% interval of the {what}'s cut, {100 * low:+.1f}% to "
                f"{100 * high:+.1f}%, does not lie above 0: no gain is shown")
    return ""


def default_grid_maxfev(steps: int, degree: int | None | str = AUTO_DEGREE, first_time: str = "free") -> int:
    """:func:`optimize`'s default budget: 100 runs per parameter (the grid family's, :func:`check_degree`, and
    the first time with ``first_time="free"``), at least 100 (a grid of one step has no family parameter).

    >>> default_grid_maxfev(6), default_grid_maxfev(6, first_time="fixed"), default_grid_maxfev(1)
    (400, 300, 100)
    """
    return max(100, 100 * ((check_degree(degree, steps) if steps > 1 else 0) + (first_time == "free")))


def _check_start_early(start: Any, kinds: Sequence[str], steps: int) -> None:
    """The checks of ``start`` that need no reference: a kind of ``kinds``, or ``steps + 1`` decreasing times."""
    if start is None:
        return
    if isinstance(start, str):
        if start not in kinds:
            raise UsageError("start", f"start must be one of the grid kinds {sorted(kinds)} or a sequence of times, "
                                      f"got {start!r}")
        return
    g0 = _times("start", start, "a grid kind or a sequence of times")
    if g0.shape != (steps + 1,) or not np.all(np.isfinite(g0)) or not np.all(np.diff(g0) < 0):
        raise UsageError("start", f"start must be a decreasing grid of {steps + 1} finite times (the method takes "
                                  f"{steps} steps at this NFE), got {np.array2string(g0, precision=4)}")


def check_start(start: Any, steps: int, kinds: Sequence[str] = BUILTIN_KINDS) -> None:
    """Refuse a ``start`` that :func:`optimize` would refuse without a reference: neither a kind of ``kinds`` nor
    ``steps + 1`` decreasing finite times (a :class:`~pndmkit.errors.UsageError` naming ``start``)."""
    _check_start_early(start, kinds, steps)


def check_degree(degree: Any, steps: int) -> int:
    """The number of parameters of the grid family :func:`optimize` searches for ``degree`` on a grid of ``steps``
    steps; a degree it would refuse is a :class:`~pndmkit.errors.UsageError` naming ``degree``.

    A grid of ``steps`` steps has ``steps - 1`` interior times: a degree from 1 to ``steps - 1`` moves them by a
    polynomial of that degree, and ``steps - 1`` (as ``None``) reaches every grid with the same end times
    (:class:`GridFamily`). A higher degree would add nothing, so a degree given as a number is refused above
    ``steps - 1``; only :data:`AUTO_DEGREE`, the default, stands for :data:`DEFAULT_DEGREE` lowered to
    ``steps - 1`` on grids of fewer steps. A grid of one step has no interior time: ``AUTO_DEGREE`` and ``None``
    give no parameters there (:func:`optimize` searches the first time alone with ``first_time="free"`` and hands
    the run back, marked, with ``"fixed"``), and any number is refused.

    Parameters
    ----------
    degree : int, None or ``"auto"``
        Degree of the Legendre polynomial in the step index, None (every step free) or :data:`AUTO_DEGREE`.
    steps : int
        Steps of the grid (``>= 1``).

    Returns
    -------
    int
        ``degree``; ``steps - 1`` for None; ``min(DEFAULT_DEGREE, steps - 1)`` for ``"auto"``.

    Raises
    ------
    UsageError
        ``degree`` not None, ``"auto"`` nor an integer >= 1, or an integer above ``steps - 1``.
    """
    if degree is None:
        return steps - 1
    if isinstance(degree, str) and degree == AUTO_DEGREE:
        return min(DEFAULT_DEGREE, steps - 1)
    if not (isinstance(degree, (int, np.integer)) and not isinstance(degree, bool) and degree >= 1):
        raise UsageError("degree", f"degree must be an integer >= 1, None (every step free) or {AUTO_DEGREE!r} "
                                   f"({DEFAULT_DEGREE}, lowered on shorter grids), got {degree!r}")
    if steps == 1:
        raise UsageError("degree", f"degree={degree} has nothing to move: a grid of 1 step is its two end times, "
                                   f"with no interior time to optimise (leave degree at {AUTO_DEGREE!r}: optimize "
                                   f"then searches the first time alone with first_time='free' and hands the run "
                                   f"back marked with 'fixed'; or give a budget of 2 steps or more)")
    if degree > steps - 1:
        times = "time takes a polynomial of degree 1" if steps == 2 else \
            f"times take a polynomial of degree 1 to {steps - 1}"
        raise UsageError("degree", f"degree={degree} is more than a grid of {steps} steps can use: its {steps - 1} "
                                   f"interior {times} (degree {steps - 1}, or None, 'free' at the command line, "
                                   f"moves every step)")
    return int(degree)


def _check_args(method: Any, target: Any, *, schedule: Any, calibration: Any, heldout: Any, seed: Any, shape: Any,
                kinds: Any, cache: Any, t_start: Any = None, t_end: Any = None, maxfev: Any = None,
                progress: Any = False, calibration_minimum: int = 1) -> MethodSpec:
    """Check the arguments :func:`optimize` and :func:`evaluate` share; return the method's spec."""
    if isinstance(method, MethodSpec):
        spec = method
    elif isinstance(method, str):
        with blame("method"):
            spec = get_method(method)
    else:
        raise UsageError("method", f"method must be a method name or a MethodSpec, got {type(method).__name__} "
                                   f"{method!r}")
    if spec.adaptive:
        raise UsageError("method", f"method {spec.name!r} is adaptive and has no grid to optimise")
    for name, value, low in (("calibration", calibration, calibration_minimum), ("heldout", heldout, 1),
                             ("seed", seed, 0), ("maxfev", maxfev, 1)):
        if name in ("maxfev", "calibration", "heldout") and value is None:  # defaults resolved by the caller
            continue
        with blame(name):
            value = check_int(value, name, minimum=low)
            if name != "seed" and value > MAX_NOISES:
                raise ValueError(f"{name} must be at most {MAX_NOISES}, got {value}")
    for name, value in (("t_start", t_start), ("t_end", t_end)):
        if value is not None:
            with blame(name):
                check_real(value, name)
    if t_start is not None and t_end is not None and float(t_end) >= float(t_start):
        raise UsageError(("t_start", "t_end"), f"t_end must be below t_start (the grid runs from noise to data), got "
                                               f"t_start={t_start!r}, t_end={t_end!r}")
    with blame("progress"):
        check_bool(progress, "progress")
    if schedule is not None and not isinstance(schedule, NoiseSchedule):
        raise UsageError("schedule", f"schedule must be a NoiseSchedule or None, got {type(schedule).__name__} "
                                     f"{schedule!r}")
    if isinstance(kinds, str) or not isinstance(kinds, Sequence) or not kinds:
        raise UsageError("kinds", f"kinds must be a non-empty sequence of grid kinds, got {kinds!r}")
    for kind in kinds:
        with blame("kinds"):
            check_choice(kind, "kinds", BUILTIN_KINDS)
    twice = sorted({k for k in kinds if list(kinds).count(k) > 1})
    if twice:
        raise UsageError("kinds", f"kinds names {twice} more than once in {list(kinds)!r}; name each grid kind once")
    if is_problem(target):
        for name, value in (("cache", cache), ("shape", shape)):
            if value is not None:
                raise UsageError(name, f"{name}= applies to a network; {target!r} is a Gaussian-mixture problem "
                                       f"(exact reference, fixed dimension), got {name}={value!r}")
    return spec


def evaluate(method: str | MethodSpec, problem_or_model: Any, grid: "Sequence[float] | OptimizedGrid", *,
             schedule: Optional[NoiseSchedule] = None, heldout: Optional[int] = None,
             calibration: Optional[int] = None, seed: Optional[int] = None,
             shape: Optional[Sequence[int]] = None, kinds: Sequence[str] = BUILTIN_KINDS,
             cache: Any = None, rebuild_cache: bool = False, t_start: Optional[float] = None) -> dict[str, Any]:
    """Held-out error of ``grid`` (e.g. optimised on a surrogate) and of every built-in kind with its step count.

    The held-out noises are the same as :func:`optimize`'s for equal ``calibration``, ``heldout`` and ``seed``;
    ``cache`` and ``rebuild_cache`` are :func:`optimize`'s; ``calibration`` and ``heldout``, when left out, both
    default as in :func:`optimize` (:func:`default_noises`). ``t_start`` is the time of the noise, where the
    reference flow and the built-in grids start (default ``grid[0]``); a grid that starts below it (one of
    :func:`optimize`'s with ``first_time="free"``, pass its :attr:`OptimizedGrid.t_start`) takes the noise as its
    state at ``grid[0]`` (:func:`noise_at`), as :func:`optimize` judged it. ``grid`` may be the
    :class:`OptimizedGrid` itself: its :attr:`~OptimizedGrid.grid` is judged, and ``t_start``, ``calibration``,
    ``heldout`` and ``seed`` left out are its own, so the numbers are the optimisation's held-out ones.

    Returns
    -------
    dict
        ``error``, ``baseline_kind`` / ``baseline_error`` (the best built-in kind), ``builtin_errors``,
        ``reduction`` (``1 - error / baseline_error``), ``reduction_interval`` (its 95% paired bootstrap
        interval over the held-out samples, :func:`reduction_interval`) and ``reference_error``.

    Raises
    ------
    UsageError
        Naming the parameter: a bad ``grid`` (not a decreasing 1-D sequence of finite times), ``t_start`` below
        ``grid[0]``, or any argument :func:`optimize` also rejects; ``kinds`` when none of them gives the grid's
        step count.
    """
    optimised_on = ""  # the schedule an OptimizedGrid records, checked against the target's once it is resolved
    if isinstance(grid, OptimizedGrid):
        if isinstance(method, (str, MethodSpec)) and (method if isinstance(method, str) else method.name) != grid.method:
            raise UsageError(("method", "grid"), f"grid was optimised for {grid.method!r}, not {method!r}: judge it "
                                                 f"with the method it was optimised for")
        optimised_on = grid.schedule
        t_start = grid.t_start if t_start is None and not math.isnan(grid.t_start) else t_start
        calibration = grid.calibration if calibration is None else calibration
        heldout = grid.heldout if heldout is None else heldout
        seed = grid.seed if seed is None else seed
        grid = grid.grid
    seed = 0 if seed is None else seed
    spec = _check_args(method, problem_or_model, schedule=schedule, calibration=calibration, heldout=heldout,
                       seed=seed, shape=shape, kinds=kinds, cache=cache, calibration_minimum=0)
    what = "a decreasing 1-D sequence of at least 2 finite times"
    times = _times("grid", grid, what)
    if times.ndim != 1 or times.size < 2 or not np.all(np.isfinite(times)) or np.any(np.diff(times) >= 0):
        raise UsageError("grid", f"grid must be {what}, got {grid!r}")
    if t_start is not None:
        with blame("t_start"):
            t_start = check_real(t_start, "t_start")
        if t_start < times[0]:
            raise UsageError("t_start", f"t_start={t_start:g} is below the grid's first time {times[0]:g}: the noise "
                                        f"is drawn at t_start and the grid starts at or below it")
    def check_schedule(used: NoiseSchedule) -> None:
        key = schedule_key(used)
        if optimised_on and key != optimised_on:
            how = ("pass schedule= the schedule it was optimised on" if not isinstance(used, CustomSchedule) else
                   "a CustomSchedule is known by its function objects, so pass schedule= the one it was optimised "
                   "on, or judge the times as such: evaluate(method, problem, res.grid, t_start=res.t_start, "
                   "schedule=...)")
            raise UsageError("schedule", f"grid was optimised on {optimised_on}, and this evaluation runs on "
                                         f"{key}: {how}")

    if schedule is not None:
        check_schedule(schedule)  # before the times are checked against its domain
    target = StudyTarget.resolve(problem_or_model, schedule, shape=shape, seed=seed,
                                 t_start=times[0] if t_start is None else t_start, t_end=times[-1],
                                 cache=cache, rebuild_cache=rebuild_cache,
                                 ends=("grid[0]" if t_start is None else "t_start", "grid[-1]"))
    check_schedule(target.schedule)
    if calibration is None or heldout is None:
        default_cal, default_held = default_noises(target)
        calibration = default_cal if calibration is None else calibration
        heldout = default_held if heldout is None else heldout
    study = target.study(calibration, heldout)
    judged = _judge(study, spec, times, kinds)
    if not judged["builtin_errors"]:
        raise UsageError("kinds", f"none of the grid kinds {list(kinds)} gives {times.size - 1} steps on this "
                                  f"interval")
    return {"error": judged["error"], "baseline_kind": judged["baseline_kind"],
            "baseline_error": judged["baseline_error"], "builtin_errors": judged["builtin_errors"],
            "reduction": 1.0 - judged["error"] / judged["baseline_error"], "reduction_interval": judged["interval"],
            "reference_error": study.reference_error}


def _judge(study: Study, spec: MethodSpec, grid: NDArray[np.float64], kinds: Sequence[str]) -> dict[str, Any]:
    """Error of ``grid`` and of every built-in kind with its step count on ``study``'s (held-out) noises.

    ``interval``: :func:`reduction_interval` of ``grid`` against the best built-in kind, on the same samples.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StabilityWarning)  # built-in grids are measured, not recommended
        per = {k: sample_errors(study, spec, g) for k, g in builtin_grids(study, grid.size - 1, kinds).items()}
    builtin = {k: float(np.sqrt(np.mean(e))) for k, e in per.items()}
    mine = sample_errors(study, spec, grid)
    out: dict[str, Any] = {"error": float(np.sqrt(np.mean(mine))), "builtin_errors": builtin}
    if builtin:
        base = min(builtin, key=builtin.get)
        out.update(baseline_kind=base, baseline_error=builtin[base], interval=reduction_interval(mine, per[base]))
    return out


def optimize(method: str | MethodSpec, problem_or_model: Any, nfe: int, *, schedule: Optional[NoiseSchedule] = None,
             t_start: Optional[float] = None, t_end: Optional[float] = None, calibration: Optional[int] = None,
             heldout: Optional[int] = None, seed: int = 0, maxfev: Optional[int] = None,
             shape: Optional[Sequence[int]] = None, kinds: Sequence[str] = BUILTIN_KINDS, cache: Any = None,
             progress: bool = False, degree: int | None | str = AUTO_DEGREE, start: Any = None,
             rebuild_cache: bool = False, stop_early: Optional[Any] = None, fallback: bool = True,
             first_time: str = "free") -> OptimizedGrid:
    """Optimise the grid of ``method`` at an NFE budget on calibration noises; judge it on held-out noises.

    Parameters
    ----------
    method : str or MethodSpec
        Any registered fixed-step method.
    problem_or_model : str, GaussianMixture, checkpoint name/path, NetworkModel or callable
        A built-in problem name (``"gmm2d"``, ``"digits-gmm"``), a :class:`~pndmkit.problems.GaussianMixture`,
        or a network as :func:`pndmkit.studies.real.load_model` accepts it.
    nfe : int
        Budget: the step count is the largest whose run costs at most ``nfe`` evaluations.
    schedule : NoiseSchedule, optional
        Default: the network's; ``DiscreteVP.linear()`` for a problem.
    t_start, t_end : float, optional
        The interval (default: the schedule's, i.e. from the last training step down to ``abar = 1`` on a
        DiscreteVP): the noise is drawn at ``t_start`` and the reference is its flow from there to ``t_end``, the
        grid's last time. The grid's first time is ``t_start`` or, with ``first_time="free"``, searched below it.
    calibration, heldout : int, optional
        Numbers of noises the grid is fitted on and judged on (disjoint per-sample seeds). Default: as many as
        the target's cost allows (:func:`default_noises`): 2048 and 2048 on a problem of up to 8 dimensions, fewer
        in higher dimension (at least 256); on a network, the noises
        whose references ``cache`` holds, split in two halves of whole blocks, else 32 and 32. Few noises fit
        the grid to them and judge it loosely: with 8 calibration noises, iPNDM's grid at NFE 6 on an 8-d
        mixture is 49% worse on held-out noises than the best built-in grid.
    seed : int
    maxfev : int, optional
        The whole search's budget of objective evaluations (sampling runs on the calibration noises; default
        ``100`` per parameter, the free first time's included, at least 100). With ``first_time="free"`` the
        search runs in two phases within it: the first time at ``t_start`` on ``maxfev * d // (d + 1)`` runs
        (``d`` the grid parameters: 300 of the default 400 at degree 3, the budget of the fixed search by
        default, so that phase is that search run for run), then the first time searched too from its best grid
        on the runs left (:attr:`OptimizedGrid.fixed_evaluations` counts the first phase's).
    shape : sequence of int, optional
        Sample shape of a bare callable model.
    kinds : sequence of str
        Built-in grid kinds to start from and compare with.
    cache : path, optional
        For a network: folder of cached references (:func:`pndmkit.studies.real.model_study`), one sub-folder
        per block of :data:`REFERENCE_BLOCK` noises. ``analysis/results/real_cache`` in the source tree holds the
        digits model's noises 0-287 (seed 0, whole interval): with ``calibration + heldout <= 288`` nothing is
        solved (a part of a cached block is read from it).
    progress : bool
        tqdm bars over the objective evaluations and, for a network, over each block's reference solve.
    degree : int, None or ``"auto"``
        Parameters of the grid family: the log step lengths of the start grid move by a Legendre polynomial of
        this degree in the step index (``degree`` parameters). ``None`` frees every step (``steps - 1``
        parameters), which fits few calibration noises too closely on high-dimensional data (see the module
        docstring). The default, ``"auto"`` (:data:`AUTO_DEGREE`), is 3, which keeps the grid smooth, lowered to
        ``steps - 1`` on shorter grids. A degree given as a number above ``steps - 1`` adds nothing and is
        refused (:func:`check_degree`); so is any number on a grid of one step, which has no interior time.
    start : str or sequence of float, optional
        Start grid: a kind of ``kinds`` or an explicit grid with ``steps + 1`` times and the same end times (e.g.
        one optimised on a surrogate, refined here). Default: the built-in kind with the smallest calibration
        error.
    rebuild_cache : bool
        A damaged cached reference in ``cache`` (unreadable, a folder, of another shape, non-finite, or with a
        negative or non-finite error) is removed with a :class:`~pndmkit.studies.real.DamagedCacheWarning` and
        solved again; by default it is refused (a :class:`~pndmkit.errors.UsageError` about ``cache`` naming the
        file). A reported number never comes from a damaged entry.
    stop_early : callable, optional
        Called before each objective evaluation; it may raise ``KeyboardInterrupt`` (e.g.
        :class:`pndmkit.studies.monitor.TimeBudgetExceeded`) to end the search. When it is given, an interrupt
        during the search (Ctrl-C) ends the search too, and the best grid so far is judged and returned with
        :attr:`OptimizedGrid.stopped` saying why; without it an interrupt propagates.
    fallback : bool
        Hand back the best built-in kind's grid (held-out), saying so (:attr:`OptimizedGrid.fell_back`,
        :attr:`OptimizedGrid.fallback_reason`, the report), where the 95% paired bootstrap interval of the
        searched grid's held-out cut (:func:`reduction_interval`) does not lie above 0, or there is none (fewer
        than :data:`INTERVAL_MIN_SAMPLES` held-out noises). ``False`` hands back the searched grid always (for
        callers that judge it on noises of their own).
    first_time : {"free", "fixed"}
        ``"free"`` (default): the first time is searched too, in ``(t_1, t_start]`` (:class:`FreeFirstTime`, one
        more parameter; ``t_1`` the grid's second time), after the search with it at ``t_start`` and from that
        search's best grid (see ``maxfev``), so the calibration error is never above that search's
        (:attr:`OptimizedGrid.fixed_calibration_error`; :attr:`OptimizedGrid.first_time_won` says which first
        time was kept). Searched from the start grid at once, the free search could stall above the fixed one
        with a first step of almost zero length (EDM, ``unipc-2`` at NFE 6 on ``gmm2d``, 128 / 128 noises: 2.0e-2
        held out against 9.6e-3; 4.6e-3 now). The noise is taken as the state at the first time (:func:`noise_at`:
        ``x_T`` itself on a VP schedule, as diffusers' ``leading`` grids start below the last training step) and
        the error still measured against the flow from ``t_start``; the built-in grids it starts from and is
        judged against start at ``t_start``. A late start trades the error it leaves (the noise is not the
        flow's state there) for shorter steps: iPNDM at NFE 6 on ``gmm32d(dim=8, n_components=4)`` cuts 31% of
        the best built-in grid's held-out error with a first time near 780, 27% with it kept at 999
        (``analysis/results/grid_opt_ceiling.json``). ``"fixed"`` keeps ``t_start``, as the built-in grids do.
        A grid of one step has its first time as the only parameter.

    Returns
    -------
    OptimizedGrid
        ``grid`` is never one whose held-out gain the interval does not show (with ``fallback=True``); the
        searched grid and its held-out numbers are kept either way.
    """
    from scipy.optimize import minimize

    spec = _check_args(method, problem_or_model, schedule=schedule, t_start=t_start, t_end=t_end,
                       calibration=calibration, heldout=heldout, seed=seed, maxfev=maxfev, shape=shape, kinds=kinds,
                       cache=cache, progress=progress)
    with blame("fallback"):
        check_bool(fallback, "fallback")
    with blame("first_time"):
        check_choice(first_time, "first_time", FIRST_TIMES)
    free = first_time == "free"
    with blame("nfe"):
        nfe = check_int(nfe, "nfe", minimum=1)
        if nfe > MAX_STEPS:
            raise ValueError(f"nfe must be at most {MAX_STEPS}, got {nfe}")
    steps = steps_for_nfe(spec, nfe)
    if steps is None:
        raise UsageError("nfe", f"nfe={nfe} is less than one step of {spec.name!r} costs ({spec.nfe(1)})")
    parameters = check_degree(degree, steps)
    _check_start_early(start, kinds, steps)  # before the references: on a network they cost minutes
    target = StudyTarget.resolve(problem_or_model, schedule, shape=shape, seed=seed, t_start=t_start, t_end=t_end,
                                 cache=cache, rebuild_cache=rebuild_cache)
    if calibration is None or heldout is None:
        default_cal, default_held = default_noises(target)
        calibration = default_cal if calibration is None else calibration
        heldout = default_held if heldout is None else heldout
    cal = target.study(0, calibration, progress=progress)
    held = target.study(calibration, heldout, progress=progress)
    starts = builtin_grids(cal, steps, kinds)
    if not starts:
        raise UsageError("kinds", f"none of the grid kinds {list(kinds)} gives {steps} steps on this interval")
    if start is None or isinstance(start, str):
        if start is not None and start not in starts:
            raise UsageError("start", f"start={start!r} is not a kind that gives {steps} steps here; "
                                      f"choose from {sorted(starts)} or pass a grid")
        with warnings.catch_warnings():  # built-in grids are measured, not recommended: no stability warnings
            warnings.simplefilter("ignore", StabilityWarning)
            start_err = {k: rms_error(cal, spec, g) for k, g in starts.items()} if start is None else {
                start: rms_error(cal, spec, starts[start])}
        first = min(start_err, key=start_err.get)
        best = {"err": start_err[first], "grid": starts[first]}
    else:
        g0 = np.asarray(start, dtype=np.float64)  # length, order and finiteness: _check_start_early
        atol = 1e-9 * (cal.t_start - cal.t_end)
        late = free and g0[0] < cal.t_start - atol and g0[0] > g0[1]
        if not (np.isclose(g0[-1], cal.t_end, rtol=0, atol=atol) and (late or np.isclose(g0[0], cal.t_start, rtol=0,
                                                                                        atol=atol))):
            first = (f"a first time at or below {cal.t_start:g} (first_time='free')" if free else
                     f"{cal.t_start:g} (first_time='fixed')")
            raise UsageError("start", f"start must be a decreasing grid of {steps + 1} times from {first} to "
                                      f"{cal.t_end:g} ({spec.name} at NFE {nfe} takes {steps} steps), got "
                                      f"{np.array2string(g0, precision=4)}")
        g0 = g0.copy()
        g0[-1] = cal.t_end
        if not late:
            g0[0] = cal.t_start
        best = {"err": rms_error(cal, spec, g0), "grid": g0}
    start_grid = best["grid"]
    lifted = start_grid.copy()
    lifted[0] = cal.t_start  # the family spans the whole interval; a late first time is the last parameter's
    interior = GridFamily(lifted, parameters)
    late_start = bool(start_grid[0] < cal.t_start)
    # the search with the first time at t_start: the whole search with first_time="fixed", the first phase of it
    # with "free" (from the lifted start grid where a given start starts late, the late grid kept aside)
    fixed = {"err": math.inf, "grid": lifted} if late_start else dict(best)
    fixed["theta"] = np.zeros(interior.size)
    budget = maxfev or default_grid_maxfev(steps, degree, first_time)
    # "free" spends the share of the budget a fixed search of these parameters would take by default on the fixed
    # phase (all of it at the default budget, 100 runs a parameter), and the rest on the free phase
    fixed_budget = budget * interior.size // (interior.size + 1) if free else budget
    count = [0]
    bar = progress_bar(budget, desc=f"optimising the {spec.name} grid at NFE {nfe}", leave=False) if progress else None
    objective = search_objective(cal, spec, interior, fixed, count, bar)

    def run(objective: Any, theta0: NDArray[np.float64], step: NDArray[np.float64], most: int) -> None:
        if stop_early is not None:
            plain = objective

            def objective(theta: NDArray[np.float64]) -> float:
                stop_early()
                return plain(theta)

        minimize(objective, theta0, method="Nelder-Mead", options={
            "maxfev": most, "xatol": 1e-4, "fatol": 1e-5, "initial_simplex": np.vstack([theta0, theta0 + step])})

    stopped = ""

    def interrupted(exc: KeyboardInterrupt) -> str:
        if stop_early is None:
            raise exc
        return f"{str(exc) or 'interrupted'} after {count[0]} of at most {budget} runs"

    try:
        try:
            # initial simplex: each Legendre mode moves the log step lengths by up to +-0.3 (steps x/÷ 1.35)
            if interior.size >= 1 and fixed_budget >= 1:
                run(objective, fixed["theta"], 0.3 * np.eye(interior.size), fixed_budget)
        except KeyboardInterrupt as exc:
            stopped = interrupted(exc)
        fixed_runs = count[0]
        best = best if late_start and best["err"] <= fixed["err"] else fixed
        if free and not stopped and budget > count[0]:
            # the free phase starts from the best grid so far (the fixed phase's, or a late start grid that is
            # better): the free family holds every grid of the fixed one (a first-time fraction of 0), so the
            # result is never worse on calibration than the fixed search. Searched from the start grid, the free
            # search could stall with a degenerate first step, worse than the fixed search (EDM, unipc-2 at NFE 6
            # on gmm2d: 1.8e-2 against 9.5e-3 on 128 calibration noises)
            family = FreeFirstTime(interior, cal.t_start)
            theta = best["theta"] if best is fixed else np.zeros(interior.size)
            best = dict(best, theta=np.append(theta, family.fraction(best["grid"])))
            # the first time moves 0.3 of the way to the second (or back up where it starts below 0.5), the
            # interior as in the fixed phase
            step = 0.3 * np.eye(family.size)
            if best["theta"][-1] >= 0.5:
                step[-1, -1] = -0.3
            try:
                run(search_objective(cal, spec, family, best, count, bar), best["theta"], step, budget - count[0])
            except KeyboardInterrupt as exc:
                stopped = interrupted(exc)
    finally:
        if bar is not None:
            bar.close()
    searched = best["grid"]
    with interrupts_held(stop_early is not None) as late:  # an interrupt here would lose the whole search
        judged = _judge(held, spec, searched, kinds)
    if late and not stopped:
        stopped = f"interrupted while judging, after {count[0]} of at most {budget} runs"
    reason = fallback_reason(judged["interval"], int(heldout)) if fallback else ""
    if reason and interior.size == 0 and not free:  # not a failed search: there was nothing to search
        reason = "one step leaves no interior time to optimise: every grid is the two end times"
    grid = builtin_grids(held, steps, [judged["baseline_kind"]])[judged["baseline_kind"]] if reason else searched
    if reason:
        warnings.warn(f"optimize({spec.name!r}, nfe={nfe}): handing back the {judged['baseline_kind']} grid, not the "
                      f"searched one: {reason}", GridFallbackWarning, stacklevel=2)
    return OptimizedGrid(method=spec.name, nfe=int(nfe), steps=steps, grid=grid, calibration_error=best["err"],
                         heldout_error=judged["error"], baseline_kind=judged["baseline_kind"],
                         baseline_error=judged["baseline_error"], builtin_errors=judged["builtin_errors"],
                         heldout_interval=judged["interval"], evaluations=count[0],
                         fixed_calibration_error=fixed["err"], fixed_evaluations=fixed_runs,
                         reference_error=held.reference_error, degree=parameters, start_grid=start_grid,
                         problem=problem_name(problem_or_model),
                         calibration=int(calibration), heldout=int(heldout), seed=int(seed), stopped=stopped,
                         searched_grid=searched, fell_back=bool(reason), fallback_reason=reason,
                         first_time=first_time, t_start=cal.t_start, schedule=schedule_key(cal.schedule),
                         start_scale=float(cal.schedule.scale(grid[0])) / float(cal.schedule.scale(cal.t_start)))
