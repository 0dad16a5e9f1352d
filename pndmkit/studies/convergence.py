r"""Convergence studies: error against the exact probability-flow trajectory versus steps and NFE.

A study fixes an analytic problem (:mod:`pndmkit.problems`), a schedule, a grid kind, a time interval and
a small batch of start points ``x_T``; the reference end points come from the tight DOP853 solver.
For each method and step count ``N`` it records

* the **error** ``sqrt(mean((x_N - x_ref)^2))``: the RMS over the batch and the dimensions of the end point
  error (RMS rather than max, so that one sample whose leading error coefficient happens to cross zero
  does not make the curve jump);
* the **NFE** of the run (what users pay);
* a **fitted order**: the least-squares slope of ``-log error`` against ``log N`` on an asymptotic range
  that :func:`fit_order` chooses and reports (points below the round-off floor are dropped first; then
  the longest run of largest step counts whose successive local orders agree). A fitted order below 0.5 with
  errors far above the reference's comes with a note that tells an error plateau (the method converges to
  another limit) from a range not yet asymptotic (errors still falling: try larger step counts), from the
  errors at the three largest step counts (:func:`_slow_order_note`).

Adaptive methods (``pf``) have no step count: they are swept over solver tolerances and reported by
error per NFE only (``measured_order`` is ``None``; ``nfe_slope`` is the slope of ``-log error`` against
``log NFE``, available for every method).

Why the default interval stops at ``s = 0.1``
---------------------------------------------
Every VP schedule has ``1 - abar ~ c t`` near the data, so ``s(t) ~ sqrt(c t)`` has a branch point at
the time where ``abar = 1``. On a ``t``-uniform grid the methods whose stages or weights are uniform in
``t`` (PRK, PLMS, F-PNDM, iPNDM, FON's RK4/AB4 in ``t``) reach their asymptotic order only once the
step ``h`` is small against the distance from the last time to that branch point: for the linear VP
schedule ending at ``t = 1e-3`` that needs ``N >> 1000``, and on a discrete schedule ending at
``abar = 1`` (``t = -1``) the distance is zero and the paper's pseudo methods drop to first order. The
default study therefore ends where ``s = 0.1`` (``abar ~ 0.99``; ``t ~ 0.027`` for linear VP), where every
method is asymptotic within a few hundred steps; pass ``t_end`` to study the other regimes.

Measured on ``gmm2d`` (``pndmkit order --t-end ...``): with linear VP ending at ``t = 1e-3``, PRK fits
1.81 and F-PNDM 2.06 only on N = 400-1600; on the discrete DDPM schedule ending at ``t = -1``
(``abar = 1``) PRK, PLMS, F-PNDM and iPNDM fit 0.93-0.94 (first order: their ``t``-midpoint stage or
``t``-uniform weights meet ``s ~ sqrt(t + 1)`` in the last step), while PIE (2.00), PRK-s and F-PNDM-s
(3.5-3.6, rising) keep their order because they only use ``s`` at the grid nodes or ``s``-consistent
weights.

A low-order start is invisible from pure noise: near ``abar = 0`` eps is nearly linear in ``s`` along
the flow, so iPNDM-v's AB1/AB2/AB3 ramp (formal order 2) measures 3.9 on the default study; started at
``t = 0.9`` on cosine VP it measures 2.0-2.1 (the registry test uses that study). Likewise F-PNDM's
PRK warm-up (9 extra NFE) changes the end point error of PLMS / iPNDM by about 1e-4 relative.

Examples
--------
>>> study = make_study("gmm1d", "linear-vp", batch=4)
>>> result = sweep(study, "ddim", [50, 100, 200, 400])
>>> round(result.measured_order, 1), result.nfe
(1.0, [50, 100, 200, 400])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit.grids import make_grid
from pndmkit.methods import MethodSpec, get_method
from pndmkit.problems import GaussianMixture, get_problem
from pndmkit.sampling import sample
from pndmkit.schedules import SCHEDULES, NoiseSchedule, get_schedule

__all__ = ["SCHEDULES", "DEFAULT_STEPS", "DEFAULT_TOLERANCES", "Study", "MethodResult", "make_study", "sweep",
           "fit_order", "run_study", "pure_noise"]

#: step counts of the default study
DEFAULT_STEPS = (25, 50, 100, 200, 400, 800)
#: solver tolerances of the adaptive sweep
DEFAULT_TOLERANCES = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7)
#: noise-to-signal ratio where the default study ends (see the module docstring)
DEFAULT_S_END = 0.1

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Study:
    """Everything a convergence run is measured against.

    Attributes
    ----------
    problem : GaussianMixture
    problem_name, schedule_name : str
    schedule : NoiseSchedule
    grid : str
        Grid kind for :func:`pndmkit.grids.make_grid` (``"uniform"``: equal steps in ``t``).
    t_start, t_end : float
    x_T : ndarray (batch, d)
        Start points, float64 (converted per run when ``array="torch"``).
    reference : ndarray (batch, d)
        Exact end points (DOP853 at ``rtol = atol = 1e-13``).
    reference_error : float
        Max change of the reference between tolerance ``1e-12`` and ``1e-13``: an upper estimate of its error.
    """

    problem: GaussianMixture
    problem_name: str
    schedule: NoiseSchedule
    schedule_name: str
    grid: str
    t_start: float
    t_end: float
    x_T: NDArray[np.float64]
    reference: NDArray[np.float64]
    reference_error: float

    @property
    def floor(self) -> float:
        """Errors below this are dominated by the reference's own error and round-off; fits stop above it."""
        return max(30.0 * self.reference_error, 1e-13)

    def error(self, x: Any) -> float:
        """RMS over batch and dimensions of ``x - reference``."""
        arr = x.detach().cpu().double().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float64)
        return float(np.sqrt(np.mean((arr - self.reference) ** 2)))


def pure_noise(schedule: NoiseSchedule, z: NDArray[np.float64], t: float) -> NDArray[np.float64]:
    """Pure noise of ``schedule`` at time ``t`` from unit noise ``z`` (any shape): ``z`` itself (the same array) on a
    VP schedule, ``scale(t) z`` on EDM, VE or flow matching (:meth:`~pndmkit.schedules.NoiseSchedule.scale`; the
    same ``y = x / alpha`` as a VP schedule's at the same ``s``). How every study draws its start points."""
    return z if schedule.family == "vp" else z * float(schedule.scale(t))


def make_study(problem: str | GaussianMixture = "gmm2d", schedule: str | NoiseSchedule = "linear-vp", *,
               grid: str = "uniform", t_start: Optional[float] = None, t_end: Optional[float] = None,
               batch: int = 8, seed: int = 0) -> Study:
    """Set up a study: problem, schedule, interval, ``batch`` start points ``x_T ~ N(0, I)`` and their reference.

    ``t_start`` defaults to the schedule's; ``t_end`` to the time where ``s = 0.1`` (module docstring). On a
    schedule of another family (EDM, VE, flow matching) the start points are ``scale(t_start) z`` with the same
    ``z``, ``scale = sqrt(alpha^2 + sigma^2)``: the same ``y = x / alpha`` as on a VP schedule at the same ``s``.
    """
    gm = get_problem(problem) if isinstance(problem, str) else problem
    if isinstance(schedule, str):
        sched_name, sched = schedule, get_schedule(schedule)  # ValueError naming the catalogue's names
    else:
        sched_name, sched = repr(schedule), schedule
    if grid in ("leading", "trailing"):
        raise ValueError(f"grid {grid!r} starts at a time that depends on the number of steps, so its runs share no "
                         f"reference end point; use a continuous grid kind such as 'uniform'")
    t0 = sched.t_start if t_start is None else float(t_start)
    t1 = float(sched.t_from_s(DEFAULT_S_END)) if t_end is None else float(t_end)
    make_grid(sched, 2, grid, t_start=t0, t_end=t1)  # validates grid kind and interval early
    if not (isinstance(batch, int) and batch >= 1):
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    x_T = pure_noise(sched, np.random.default_rng(seed).standard_normal((batch, gm.dim)), t0)
    loose = gm.reference(x_T, sched, t0, t1, rtol=1e-12, atol=1e-12)
    tight = gm.reference(x_T, sched, t0, t1, rtol=1e-13, atol=1e-13)
    return Study(problem=gm, problem_name=problem if isinstance(problem, str) else repr(problem),
                 schedule=sched, schedule_name=sched_name, grid=grid, t_start=t0, t_end=t1, x_T=x_T,
                 reference=tight, reference_error=float(np.max(np.abs(loose - tight))))


@dataclass
class MethodResult:
    """Errors of one method on a study.

    ``steps``, ``nfe``, ``errors`` (and ``tolerances`` for adaptive methods) have equal lengths;
    ``steps`` entries are ``None`` for adaptive methods. ``fit_range`` is the ``(first, last)`` step
    count of the range the order was fitted on.
    """

    name: str
    declared_order: Optional[int]
    adaptive: bool
    steps: list[Optional[int]]
    nfe: list[int]
    errors: list[float]
    tolerances: Optional[list[float]] = None
    measured_order: Optional[float] = None
    fit_range: Optional[tuple[int, int]] = None
    nfe_slope: Optional[float] = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        out = {k: v for k, v in self.__dict__.items() if k != "name"}
        out["fit_range"] = list(self.fit_range) if self.fit_range else None
        return out


def fit_order(steps: Sequence[float], errors: Sequence[float], floor: float = 0.0, *, min_points: int = 3,
              spread: float = 0.3) -> tuple[Optional[float], Optional[tuple[int, int]], str]:
    """Least-squares order ``p`` in ``error ~ C N^-p`` on an automatically chosen asymptotic range.

    Points at and after the first error below ``floor`` (or non-finite) are dropped: beyond it the
    reference error and round-off dominate. The range is then the longest tail of the remaining points
    (at least ``min_points``, fewer if fewer remain) whose successive local orders
    ``log(e_i / e_{i+1}) / log(N_{i+1} / N_i)`` all lie within ``spread`` of each other.

    Returns ``(order, (i, j), note)``: the slope, the indices of the first and last point used, and a
    note that is non-empty when no such range exists (then the last ``min_points`` points are used).

    >>> fit_order([10, 20, 40, 80, 160], [1e-1, 2e-2, 4e-3, 1e-3, 2.5e-4])
    (2.0, (2, 4), '')
    """
    n = np.asarray(steps, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    ok = np.isfinite(e) & (e > floor)
    last = int(np.argmin(ok)) if not ok.all() else len(e)
    if last < 2:
        return None, None, "fewer than two errors above the round-off floor"
    ln, le = np.log(n[:last]), np.log(e[:last])
    local = -np.diff(le) / np.diff(ln)
    m = min(min_points, last)
    first, note = None, ""
    for i in range(last - m + 1):  # longest admissible tail first
        window = local[i:]
        if window.max() - window.min() <= spread:
            first = i
            break
    if first is None:
        first = last - m
        note = "no asymptotic range: local orders still vary by more than %.2g" % spread
    slope = -np.polyfit(ln[first:], le[first:], 1)[0]
    return round(float(slope), 2), (first, last - 1), note


def _slow_order_note(steps: Sequence[float], errors: Sequence[float], order: float) -> str:
    """Why a fitted order is below 0.5 while the errors are far above the reference's: what the errors at the
    three largest step counts show.

    With the slopes ``s_i = (e_i - e_{i+1}) / log(N_{i+1} / N_i)`` of the last two intervals and their ratio
    ``r = s_2 / s_1``:

    * ``|r| < 1`` (the change per step count dies out) and the Aitken limit ``e_3 - (e_2 - e_3) r / (1 - r)``
      above half the last error: an **error plateau**, the method converges to another limit than the exact
      PF-ODE (e.g. a unit-difference right-hand side);
    * the error falling, and not so: **not yet asymptotic** (its fall speeds up, or dies out towards a limit
      well below the last error), so the fitted order is no convergence order: try larger step counts;
    * the error growing, and not settling: it grows with ``N`` on this range.

    ``steps`` and ``errors`` are the points up to the end of the fitted range (at least two); with two, the
    plateau and a range not yet asymptotic cannot be told apart, and the note says so. ``order`` is the fitted
    order the note qualifies.
    """
    n, e = np.asarray(steps, dtype=np.float64), np.asarray(errors, dtype=np.float64)
    local = -np.diff(np.log(e)) / np.diff(np.log(n))
    span = [f"N={int(a)}-{int(b)}" for a, b in zip(n[:-1], n[1:])]
    if len(e) < 3:
        return (f"the error barely falls (order {local[-1]:.2f} at {span[-1]}): a plateau (another limit than the "
                "exact PF-ODE) or a range not yet asymptotic; add larger step counts to tell them apart")
    (e1, e2, e3), (n1, n2, n3) = e[-3:], n[-3:]
    s1, s2 = (e1 - e2) / np.log(n2 / n1), (e2 - e3) / np.log(n3 / n2)
    ratio = s2 / s1 if s1 != 0 else (0.0 if s2 == 0 else math.inf)
    if abs(ratio) < 1:
        limit = e3 - (e2 - e3) * ratio / (1 - ratio)
        if limit > e3 / 2:
            return (f"error plateau: the error stops falling ({e2:.3g} at N={int(n2)}, {e3:.3g} at N={int(n3)}; "
                    f"extrapolated limit {limit:.3g}): the method converges to another limit than the exact PF-ODE "
                    "(e.g. a unit-difference right-hand side)")
    if e3 < e2:
        how = "faster at each larger step count" if abs(ratio) >= 1 else "towards a limit well below it"
        return (f"not yet asymptotic: the error still falls, {how} (local order {local[-2]:.2f} at {span[-2]}, "
                f"{local[-1]:.2f} at {span[-1]}), so {order:.2f} is no convergence order; try larger step counts")
    return (f"the error grows with N ({e2:.3g} at N={int(n2)}, {e3:.3g} at N={int(n3)}): the method does not "
            "converge on this range")


def _below_order_note(order: float, declared: int, study: Study) -> str:
    """What a fitted order far below the declared one (more than 1 below, or below half) may come from, and how
    to tell the causes apart."""
    return (f"{order:.2f} is far below the declared order {declared}: the step counts may not be in the asymptotic "
            f"range yet, the errors may near a floor (the reference's error {study.reference_error:.1e}, or float "
            f"precision), the grid may end where the ODE is not smooth (abar = 1, e.g. t = 0 on EDM, where the "
            f"last steps cost the order), or the method may be wrong; larger step counts raise the fitted order "
            f"only in the first case, errors close to the reference's error point to the second (a tighter "
            f"reference lowers it), and an end short of abar = 1 (a larger --t-end) restores the order in the "
            f"third")


def _run(study: Study, method: Any, x_T: Any, steps: Optional[int]) -> tuple[Any, int]:
    """Sample ``study`` with ``method``; ``steps=None`` for an adaptive method, which gets no grid either (it
    chooses its own steps, and would warn that a given ``steps`` or ``grid`` is ignored)."""
    grid = None if steps is None else study.grid
    sol = sample(lambda x, t: study.problem.eps(x, t, study.schedule), x_T, schedule=study.schedule,
                 method=method, steps=steps, grid=grid, t_start=study.t_start, t_end=study.t_end)
    return sol.x, sol.nfe


def _slope(x: Sequence[float], e: Sequence[float]) -> Optional[float]:
    good = [(a, b) for a, b in zip(x, e) if a and b > 0 and math.isfinite(b)]
    if len(good) < 2:
        return None
    lx, le = np.log([g[0] for g in good]), np.log([g[1] for g in good])
    return round(float(-np.polyfit(lx, le, 1)[0]), 2)


def sweep(study: Study, method: str | MethodSpec, steps: Sequence[int] = DEFAULT_STEPS, *,
          array: str = "numpy", tolerances: Sequence[float] = DEFAULT_TOLERANCES,
          progress: Optional[Progress] = None) -> MethodResult:
    """Errors of ``method`` at each step count (tolerance, for adaptive methods) on ``study``.

    ``array="torch"`` runs the sampler on float64 torch tensors instead of numpy arrays.
    """
    spec = method if isinstance(method, MethodSpec) else get_method(method)
    x_T: Any = study.x_T
    if array == "torch":
        import torch

        x_T = torch.from_numpy(study.x_T.copy())
    elif array != "numpy":
        raise ValueError(f"array must be 'numpy' or 'torch', got {array!r}")
    say = progress or (lambda _: None)
    if spec.adaptive:
        base = spec.build(study.schedule)
        tols = list(tolerances) if hasattr(base, "rtol") else [None]
        nfe, errors = [], []
        for tol in tols:
            say(f"{spec.name} tol={tol}")
            integrator = replace(base, rtol=tol, atol=tol) if tol is not None else base
            x, k = _run(study, integrator, x_T, None)
            nfe.append(k)
            errors.append(study.error(x))
        return MethodResult(spec.name, spec.order, True, [None] * len(tols), nfe, errors,
                            tolerances=[t for t in tols if t is not None] or None, nfe_slope=_slope(nfe, errors))
    nfe, errors = [], []
    for n in steps:
        say(f"{spec.name} N={n}")
        x, k = _run(study, spec, x_T, int(n))
        nfe.append(k)
        errors.append(study.error(x))
    order, idx, note = fit_order(steps, errors, study.floor)
    slow = order is not None and order < 0.5 and bool(idx) and errors[idx[1]] > 1e3 * study.floor
    if slow:
        note = (note + "; " if note else "") + _slow_order_note(steps[:idx[1] + 1], errors[:idx[1] + 1], order)
    if order is not None and idx and idx[1] == idx[0] + 1:
        note = (note + "; " if note else "") + (
            f"fitted on two step counts only (N={int(steps[idx[0]])}, {int(steps[idx[1]])}): nothing shows that they "
            "are in the asymptotic range; give three or more")
    if order is not None and spec.order is not None and order > spec.order + 1:
        note = (note + "; " if note else "") + (
            f"{order:.2f} is more than 1 above the declared order {spec.order}: on these step counts the errors "
            "fall faster than that order (a range not yet asymptotic, or the part that limits the order, such as "
            "a lower-order warm-up or first step, costs little error here); the declared order shows at larger N "
            "or from a start mid-trajectory")
    # far below the declared order (more than 1 below, or below half); a slow order already has its own note
    if (order is not None and spec.order is not None and not slow
            and (order < spec.order - 1 or order < spec.order / 2)):
        note = (note + "; " if note else "") + _below_order_note(order, spec.order, study)
    return MethodResult(spec.name, spec.order, False, [int(n) for n in steps], nfe, errors,
                        measured_order=order, fit_range=(int(steps[idx[0]]), int(steps[idx[1]])) if idx else None,
                        nfe_slope=_slope(nfe, errors), note=note)


def run_study(study: Study, methods: Optional[Sequence[str]] = None, steps: Sequence[int] = DEFAULT_STEPS, *,
              array: str = "numpy", progress: Optional[Progress] = None) -> dict[str, MethodResult]:
    """:func:`sweep` every method in ``methods`` (default: every registered method), keyed by name."""
    from pndmkit.methods import METHODS

    names = list(METHODS) if methods is None else list(methods)
    results = {}
    for i, name in enumerate(names):
        tag = f"[{i + 1}/{len(names)}] "
        results[name] = sweep(study, name, steps, array=array,
                              progress=(lambda msg: progress(tag + msg)) if progress else None)
    return results
