r"""Conformance checks every registered method must pass: use them on your own methods.

Each function takes a method (a registry name, built-in or added by :func:`pndmkit.register_method`, a
:class:`~pndmkit.methods.MethodSpec` not registered yet, or, where one schedule suffices, a built
:class:`~pndmkit.integrator.Integrator`) and raises ``AssertionError`` with the measured numbers if the method
breaks a property pndmkit guarantees. pndmkit's own registry-driven tests are these functions parametrized over
:data:`pndmkit.METHODS`, so a method registered before the tests are collected is checked like a built-in one.
With the hypothesis strategies of :mod:`pndmkit.testing.strategies` (``pip install pndmkit[test]``) the same
functions check a property over random schedules, grids and noises inside a ``@given`` test.

* :func:`check_nfe` the evaluations a run asks for equal the model calls and ``Integrator.nfe``;
* :func:`check_ask_tell` driving a run by hand gives ``solve``'s result bit for bit, also after a pickle;
* :func:`check_point_mass` pseudo methods are exact for data concentrated at a point (``eps`` is constant
  along the flow and the transfer is exact for the true ``eps``); classical ones are not required to be;
* :func:`check_schedule_invariance` two schedules describing the same ODE in ``(y, s)`` give the same ``y`` at
  equal ``s`` (``docs/theory.md``, "One ODE for every model family"), for methods that see the grid only
  through ``s``;
* :func:`check_predictions` eps, x0, v and score versions of one model give the same samples;
* :func:`check_torch` numpy float64 and torch float64 give the same samples;
* :func:`check_order` the measured order is within ``tol`` of the declared one (a study of
  :mod:`pndmkit.studies.convergence`; seconds per method).

Examples
--------
>>> from pndmkit.testing import check_nfe, check_point_mass
>>> check_nfe("f-pndm"); check_point_mass("pec-s", mu=0.7, z=-1.3)
>>> from pndmkit.schedules import EDM, FlowMatching
>>> check_point_mass("ipndm", schedule=EDM(), grid=[80.0, 3.0, 0.5, 0.0])
>>> gap = check_schedule_invariance("ipndm", [EDM(), FlowMatching()], [40.0, 5.0, 1.0, 0.2, 0.0])
>>> gap < 1e-12
True
"""

from __future__ import annotations

import math
import pickle
import warnings
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike

from pndmkit.adaptive import AdaptiveIntegrator
from pndmkit.integrator import Integrator
from pndmkit.methods import MethodSpec, get_method
from pndmkit.schedules import LinearVP, NoiseSchedule, same_schedule

__all__ = ["check_nfe", "check_ask_tell", "check_point_mass", "check_schedule_invariance", "check_predictions",
           "check_torch", "check_order", "gaussian_eps"]

#: what the checks accept as a method
Method = Union[str, MethodSpec, Integrator]

SIGMA = 0.5
#: the grid of :func:`check_point_mass` on the default schedule (``LinearVP`` times, uneven steps)
POINT_MASS_GRID = (1.0, 0.8, 0.45, 0.3, 0.12, 0.05, 0.011, 1e-3)


def gaussian_eps(schedule: NoiseSchedule, sigma: float = SIGMA, bend: float = 0.3) -> Callable[[Any, float], Any]:
    """A smooth nonlinear eps model on any schedule; works on numpy arrays and torch tensors.

    ``eps(x, t) = sigma_t (x + bend c tanh(2 x / c)) / (alpha_t^2 sigma^2 + sigma_t^2)`` with
    ``c = sqrt(alpha_t^2 + sigma_t^2)`` (1 on VP schedules, where the formula reads
    ``sqrt(1 - abar) (x + bend tanh(2x)) / (abar sigma^2 + 1 - abar)``): the exact eps of data
    ``N(0, sigma^2 I)`` when ``bend = 0``, and a nonlinear one otherwise.

    Parameters
    ----------
    schedule : NoiseSchedule
        The schedule whose time ``t`` the model takes.
    sigma : float
        Standard deviation of the data.
    bend : float
        Strength of the nonlinear term.

    Returns
    -------
    callable
        ``model(x, t)`` with the shape, array type and dtype of ``x``; finite wherever the schedule is
        (0 where ``sigma_t = 0``).
    """

    if schedule.family == "vp":
        def model(x: Any, t: float) -> Any:
            a = float(schedule.abar(t))
            tanh = np.tanh if isinstance(x, np.ndarray) else type(x).tanh
            return (1 - a) ** 0.5 * (x + bend * tanh(2 * x)) / (a * sigma**2 + 1 - a)

        return model

    def general(x: Any, t: float) -> Any:
        al, sg = float(schedule.alpha(t)), float(schedule.sigma(t))
        c = math.hypot(al, sg)
        tanh = np.tanh if isinstance(x, np.ndarray) else type(x).tanh
        return sg * (x + bend * c * tanh(2 * x / c)) / (al * al * sigma**2 + sg * sg)

    return general


# -- resolving the method argument ------------------------------------------------------------------------
def _label(method: Method) -> str:
    if isinstance(method, str):
        return repr(method)
    if isinstance(method, MethodSpec):
        return repr(method.name)
    return repr(getattr(method, "name", "") or method)


def _spec(method: Method) -> MethodSpec:
    if isinstance(method, MethodSpec):
        return method
    if isinstance(method, str):
        return get_method(method)
    raise TypeError(f"method must be a method name or a MethodSpec here (the check builds it for its own schedule), "
                    f"got {type(method).__name__}; wrap a hand-built integrator as MethodSpec(name, build, order)")


def _build(method: Method, schedule: Optional[NoiseSchedule]) -> tuple[Integrator, NoiseSchedule]:
    """The fixed-step integrator of ``method`` for ``schedule`` (default: ``LinearVP()``, or the integrator's own)."""
    if isinstance(method, AdaptiveIntegrator):
        raise ValueError(f"{_label(method)} is adaptive: this check needs a fixed-step method")
    if isinstance(method, Integrator):
        own = method.transfer.schedule
        if schedule is not None and not same_schedule(own, schedule):
            raise ValueError(f"the integrator {_label(method)} was built for {own!r}, not for schedule={schedule!r}; "
                             f"pass its registry name or MethodSpec to check it on another schedule")
        return method, own
    if not isinstance(method, (str, MethodSpec)):
        raise TypeError(f"method must be a method name, a MethodSpec or an Integrator, got {type(method).__name__}")
    spec = _spec(method)
    if spec.adaptive:
        raise ValueError(f"{spec.name!r} is adaptive: this check needs a fixed-step method")
    schedule = LinearVP() if schedule is None else schedule
    return spec.build(schedule), schedule


def _default_x(schedule: NoiseSchedule, t: float, x: Optional[Any], base: Any) -> Any:
    """``x``, or ``base`` scaled to the noise level of the start time (unchanged on VP schedules)."""
    return np.asarray(base, dtype=np.float64) * float(schedule.scale(t)) if x is None else x


def _times(schedule: NoiseSchedule, grid: Optional[ArrayLike], steps: int) -> np.ndarray:
    from pndmkit.grids import check_grid, make_grid

    return make_grid(schedule, steps) if grid is None else check_grid(schedule, grid)


# -- the checks --------------------------------------------------------------------------------------------
def check_nfe(method: Method, steps: Optional[Sequence[int]] = None, *, schedule: Optional[NoiseSchedule] = None,
              grid: Optional[ArrayLike] = None, model: Optional[Callable[[Any, float], Any]] = None,
              x: Optional[Any] = None) -> None:
    """Model calls == ``Solution.nfe`` == ``Integrator.nfe`` for runs through :func:`pndmkit.sample`.

    Parameters
    ----------
    method : str, MethodSpec or Integrator
        A fixed-step method.
    steps : sequence of int, optional
        Step counts of default grids to run (``(1, 2, 3, 5, 12)``); not with ``grid``.
    schedule : NoiseSchedule, optional
        Default ``LinearVP()`` (an integrator's own schedule).
    grid : array_like, optional
        One explicit grid (decreasing times of ``schedule``) to run instead of ``steps``.
    model : callable, optional
        ``eps(x, t)``; default :func:`gaussian_eps` of ``schedule``.
    x : array, optional
        Start sample; default ones of shape (2, 3) scaled to the start time's noise level.

    Raises
    ------
    AssertionError
        The model was called a different number of times than the run reports or ``Integrator.nfe`` predicts
        (and, on the default schedule, ``MethodSpec.nfe``), the solution has the wrong number of times, or its
        end point is not finite.
    """
    from pndmkit.sampling import GridStartWarning, sample

    registry = None if isinstance(method, Integrator) or schedule is not None else _spec(method)
    integrator, schedule = _build(method, schedule)
    if grid is not None and steps is not None:
        raise ValueError("pass steps or grid, not both")
    model = gaussian_eps(schedule) if model is None else model
    runs = [(None, _times(schedule, grid, 1))] if grid is not None else [
        (int(n), None) for n in (steps if steps is not None else (1, 2, 3, 5, 12))]
    for n, times in runs:
        calls = [0]

        def counted(x_: Any, t: float) -> Any:
            calls[0] += 1
            return model(x_, t)

        start = float(schedule.t_start if times is None else times[0])
        x0 = _default_x(schedule, start, x, np.ones((2, 3)))
        if times is None:
            with warnings.catch_warnings():  # one leading step of a DDPM table is counted, not used to sample
                warnings.simplefilter("ignore", GridStartWarning)
                sol = sample(counted, x0, schedule=schedule, method=integrator, steps=n)
            expected, where = integrator.nfe(n), f"{n} steps of the default grid"
        else:
            sol = sample(counted, x0, schedule=schedule, method=integrator, grid=times)
            expected, where = integrator.nfe(times), f"the grid {times.tolist()}"
        n_steps = n if times is None else len(times) - 1
        assert sol.nfe == calls[0] == expected, (
            f"{_label(method)} on {schedule!r}, {where}: the run reports nfe={sol.nfe}, the model was called "
            f"{calls[0]} times, Integrator.nfe predicts {expected}")
        assert len(sol.times) == n_steps + 1, (
            f"{_label(method)}: {len(sol.times) - 1} steps in the solution for {n_steps} asked ({where})")
        assert np.all(np.isfinite(np.asarray(sol.x))), f"{_label(method)}: non-finite end point on {where}"
        if registry is not None and times is None:  # the registry's NFE (README table, steps_for_nfe) agrees
            assert registry.nfe(n) == expected, (
                f"{_label(method)}: MethodSpec.nfe({n}) = {registry.nfe(n)}, but its run on {schedule!r} asks "
                f"{expected}")


def check_ask_tell(method: Method, steps: int = 7, *, schedule: Optional[NoiseSchedule] = None,
                   grid: Optional[ArrayLike] = None, model: Optional[Callable[[Any, float], Any]] = None,
                   x: Optional[Any] = None, pickle_run: bool = True, branch: bool = True) -> None:
    """A hand-driven run (``ask``/``tell``), pickled half-way, ends bit-identical to ``solve`` with the same
    number of evaluations, also after another branch was told from the same run half-way.

    Parameters
    ----------
    method : str, MethodSpec or Integrator
        A fixed-step method.
    steps : int
        Steps of the default grid of ``schedule`` (when ``grid`` is not given).
    schedule, grid, model, x
        As in :func:`check_nfe`.
    pickle_run : bool
        Pickle and restore the run half-way (needs a picklable schedule and method).
    branch : bool
        Half-way, first tell the run a different output (1.1 times the model's) and drive that branch to its end,
        then go on from the same run: a run is immutable, so the branch must leave it unchanged. An estimator
        whose state is changed in place (a list it appends to) passes every other check and gives a wrong
        sample here.

    Raises
    ------
    AssertionError
        The evaluations or the end point differ (the message says when only the branch made them differ).
    """
    integrator, schedule = _build(method, schedule)
    model = gaussian_eps(schedule) if model is None else model
    times = _times(schedule, grid, steps)
    x0 = _default_x(schedule, float(times[0]), x, [0.4, -1.1, 2.0])
    reference = integrator.solve(model, x0, times)

    def drive(branched: bool) -> tuple[Any, int]:
        run, asked = integrator.start(x0, times), 0
        while not run.done:
            if asked == reference.nfe // 2:
                if pickle_run:
                    run = pickle.loads(pickle.dumps(run))
                if branched:  # another branch from the same run, driven to its end first
                    x_eval, t_eval = run.ask()
                    side = run.tell(1.1 * model(x_eval, t_eval))
                    while not side.done:
                        side = side.tell(model(*side.ask()))
            run = run.tell(model(*run.ask()))
            asked += 1
        return run.solution(), asked

    out, asked = drive(branch)
    assert asked == out.nfe == reference.nfe, (
        f"{_label(method)} on {schedule!r}: ask/tell asked {asked} evaluations and reports nfe={out.nfe}, solve used "
        f"{reference.nfe}")
    if branch and not np.array_equal(np.asarray(out.x), np.asarray(reference.x)) and \
            np.array_equal(np.asarray(drive(False)[0].x), np.asarray(reference.x)):
        raise AssertionError(
            f"{_label(method)}: a branch told from the run half-way changed the run itself (end point off by "
            f"{float(np.max(np.abs(np.asarray(out.x) - np.asarray(reference.x)))):.3g} from solve's on {schedule!r}): "
            f"the estimator changes its state in place (a list or array it appends to or writes into); return new "
            f"state from init/observe/step instead (a tuple, a new array)")
    np.testing.assert_array_equal(out.x, reference.x, err_msg=f"{_label(method)}: ask/tell end point differs from "
                                                              f"solve's on {schedule!r}, grid {times.tolist()}")


def check_point_mass(method: Method, mu: ArrayLike = 0.7, z: ArrayLike = -1.3, grid: Optional[ArrayLike] = None,
                     rtol: float = 1e-9, *, schedule: Optional[NoiseSchedule] = None) -> None:
    """For data at the point ``mu`` a pseudo method lands exactly on the trajectory, on any grid.

    Along the flow from ``x = alpha mu + sigma z`` the noise ``eps = (x - alpha mu) / sigma = z`` is constant, so
    every consistent gradient part returns it and the pseudo transfer, exact for the true ``eps``, lands on
    ``alpha' mu + sigma' z`` (``z`` itself is used where ``sigma = 0``). Classical methods are not required to be
    exact: for them the check returns without running.

    Parameters
    ----------
    method : str, MethodSpec or Integrator
        A fixed-step method.
    mu, z : float or array_like
        The data point and the noise (broadcast together; the state has their broadcast shape, at least 1-D).
    grid : array_like, optional
        Decreasing times of ``schedule``; default :data:`POINT_MASS_GRID` on the default schedule, else a
        7-step default grid of ``schedule``.
    rtol : float
        Relative tolerance, to which the rounding error the grid amplifies is added (see Notes); the comparison is
        relative to the largest of 1, ``|alpha' mu|``, ``|sigma' z|``.
    schedule : NoiseSchedule, optional
        Default ``LinearVP()`` (an integrator's own schedule).

    Raises
    ------
    AssertionError
        The end point is off the trajectory.

    Notes
    -----
    Exact arithmetic would land on the trajectory; float64 rounding does not, and a grid can amplify it. At the
    start ``y = x / alpha = mu + s_0 z`` carries an error of about ``u s_0`` (``u`` the float64 epsilon); the point
    mass's eps, ``(y - mu) / s``, divides errors in ``y`` by ``s`` at every evaluation, and the next transfer
    multiplies them by the step in ``s``. The allowance ``100 u kappa s_0 max(kappa, s_0)`` (``u = 2.2e-16``), with
    ``s_0 = max(1, s(grid[0]))`` and ``kappa`` the largest ratio ``s_i / s_{i+1}`` of consecutive grid points
    with ``s_{i+1} > 0``, bounds what every registered pseudo method shows on the grids of
    :func:`pndmkit.testing.strategies.grids` (4e-9 on a 50-step uniform grid of ``LinearVP``, 3% on the
    9-step grid from ``abar = 2.4e-9`` of ``DiscreteVP.cosine()``, where F-PNDM's stages lose 1e-4). A method
    that is not exact misses by the truncation error of its steps, far above it.
    """
    from pndmkit.sampling import sample

    integrator, schedule = _build(method, schedule)
    if integrator.kind != "pseudo":
        return
    if grid is None:
        grid = POINT_MASS_GRID if isinstance(schedule, LinearVP) else None
    times = _times(schedule, grid, 7)
    mu_arr, z_arr = np.broadcast_arrays(np.atleast_1d(np.asarray(mu, dtype=np.float64)),
                                        np.asarray(z, dtype=np.float64))

    def eps(x: Any, t: float) -> Any:
        sg = float(schedule.sigma(t))
        if sg == 0.0:
            return np.array(np.broadcast_to(z_arr, np.shape(x)), dtype=np.float64)
        return (x - float(schedule.alpha(t)) * mu_arr) / sg

    a0, s0 = float(schedule.alpha(times[0])), float(schedule.sigma(times[0]))
    a1, s1 = float(schedule.alpha(times[-1])), float(schedule.sigma(times[-1]))
    x_T = a0 * mu_arr + s0 * z_arr
    sol = sample(eps, x_T, schedule=schedule, method=integrator, grid=times)
    expected = a1 * mu_arr + s1 * z_arr
    scale = max(1.0, float(np.max(np.abs(a1 * mu_arr))), float(np.max(np.abs(s1 * z_arr))))
    tol = (rtol + _point_mass_roundoff(schedule, times)) * scale
    error = float(np.max(np.abs(np.asarray(sol.x) - expected)))
    assert error <= tol, (
        f"{_label(method)} is not exact for data at one point on {schedule!r}, grid {times.tolist()}: end point "
        f"{np.asarray(sol.x).ravel()[:4].tolist()}, trajectory {expected.ravel()[:4].tolist()}, error {error:.3g} > "
        f"allowed {tol:.3g}")


def _point_mass_roundoff(schedule: NoiseSchedule, times: np.ndarray) -> float:
    """The rounding allowance of :func:`check_point_mass` (its Notes): ``100 u kappa s_0 max(kappa, s_0)``."""
    s = np.asarray(schedule.s(times), dtype=np.float64)
    ratios = s[:-1][s[1:] > 0] / s[1:][s[1:] > 0]
    kappa = max(1.0, float(ratios.max())) if ratios.size else 1.0
    s0 = max(1.0, float(s[0]))
    return 100.0 * float(np.finfo(np.float64).eps) * kappa * s0 * max(kappa, s0)


def check_schedule_invariance(method: Union[str, MethodSpec], schedules: Sequence[NoiseSchedule],
                              s_grid: ArrayLike, *, model: Optional[Callable[[Any, float], Any]] = None,
                              z: Optional[ArrayLike] = None, rtol: float = 1e-10) -> float:
    r"""The same ``y = x / alpha`` at equal ``s`` on schedules that describe the same ODE ``dy/ds = eps(y, s)``.

    Every schedule maps the probability-flow ODE to ``dy/ds = eps`` with ``s = sigma / alpha``
    (``docs/theory.md``, "One ODE for every model family"); only which ``t`` belongs to which ``s`` differs. A
    method whose stages and weights depend on the grid only through ``s`` (or ``lambda = -log s``) therefore
    gives the same ``y`` after every step when run on each schedule along the times of one ``s`` grid. Methods
    with stages at the ``t``-midpoint or steps in ``t`` see the schedule and fail this check.

    Parameters
    ----------
    method : str or MethodSpec
        A fixed-step method (built for each schedule).
    schedules : sequence of NoiseSchedule
        At least two schedules; each must reach every ``s`` of the grid.
    s_grid : array_like
        Strictly decreasing noise-to-signal ratios ``s >= 0`` (the first the start).
    model : callable, optional
        ``eps(y, s)`` in the schedule-free variables (``y = x / alpha``; numpy float64 ``y``). Default: the
        exact eps of the built-in ``gmm2d`` mixture, ``gm.eps_at_levels(y / sqrt(1 + s^2), *levels_from_s(s))``.
    z : array_like, optional
        The noise; the start is ``y = z sqrt(1 + s_0^2)`` on every schedule (``x_T = scale(t_0) z``). Default:
        four standard-normal draws (seed 0) of the model's dimension (2).
    rtol : float
        Largest allowed ``max |y - y_ref| / max |y_ref|`` over all steps, ``y_ref`` from the first schedule.

    Returns
    -------
    float
        The largest relative gap measured.

    Raises
    ------
    AssertionError
        A schedule gives a different ``y`` trajectory (the message names the schedules, the step and the gap).
    ValueError
        Fewer than two schedules, or an ``s`` that a schedule cannot reach.
    """
    from pndmkit.schedules import levels_from_s

    spec = _spec(method)
    if spec.adaptive:
        raise ValueError(f"{spec.name!r} is adaptive: this check needs a fixed-step method")
    schedules = list(schedules)
    if len(schedules) < 2 or not all(isinstance(s, NoiseSchedule) for s in schedules):
        raise ValueError(f"schedules must be at least two NoiseSchedules, got {schedules!r}")
    s_grid = np.asarray(s_grid, dtype=np.float64)
    if s_grid.ndim != 1 or s_grid.size < 2 or not np.all(np.isfinite(s_grid)) or np.any(np.diff(s_grid) >= 0) \
            or s_grid[-1] < 0:
        raise ValueError(f"s_grid must be at least two strictly decreasing finite values >= 0, got {s_grid.tolist()}")
    if model is None:
        from pndmkit.problems import get_problem

        gm = get_problem("gmm2d")

        def model(y: Any, s: float) -> Any:
            return gm.eps_at_levels(y / math.sqrt(1.0 + s * s), *levels_from_s(s))

        dim = gm.dim
    else:
        dim = 2
    z_arr = np.random.default_rng(0).standard_normal((4, dim)) if z is None else np.asarray(z, dtype=np.float64)
    y_start = z_arr * math.sqrt(1.0 + float(s_grid[0]) ** 2)
    paths = []
    for schedule in schedules:
        lo, hi = float(schedule.s(schedule.t_min)), float(schedule.s(schedule.t_max))
        if s_grid[-1] < lo * (1 - 1e-12) or s_grid[0] > hi * (1 + 1e-12):
            raise ValueError(f"{schedule!r} reaches s in [{lo}, {hi}] only; s_grid runs from {s_grid[0]} to "
                             f"{s_grid[-1]}")
        times = np.asarray(schedule.t_from_s(np.clip(s_grid, lo, hi)), dtype=np.float64)
        times = np.clip(times, schedule.t_min, schedule.t_max)

        def eps_t(x: Any, t: float, schedule: NoiseSchedule = schedule) -> Any:
            a = float(schedule.alpha(t))
            return model(x / a, float(schedule.s(t)))

        path: list[np.ndarray] = []

        def record(t: float, x: Any, e: Any, schedule: NoiseSchedule = schedule) -> None:
            path.append(np.asarray(x) / float(schedule.alpha(t)))

        spec.build(schedule).solve(eps_t, float(schedule.alpha(times[0])) * y_start, times, callback=record)
        paths.append(np.array(path))
    ref = paths[0]
    size = max(float(np.max(np.abs(ref))), np.finfo(np.float64).tiny)
    worst = 0.0
    for schedule, path in zip(schedules[1:], paths[1:]):
        gaps = np.max(np.abs(path - ref).reshape(len(path), -1), axis=1) / size
        step = int(np.argmax(gaps))
        assert gaps[step] <= rtol, (
            f"{spec.name!r} is not schedule-invariant: on {schedules[0]!r} and {schedule!r} along the s grid "
            f"{s_grid.tolist()}, y after step {step + 1} (s = {s_grid[step + 1]!r}) differs by {gaps[step]:.3g} "
            f"relative to max |y| (allowed {rtol:g})")
        worst = max(worst, float(gaps[step]))
    return worst


def check_predictions(name: Union[str, MethodSpec], steps: int = 6, rtol: float = 1e-10) -> None:
    """Models predicting eps, x0, v and score (the same network in other units) give the same samples.

    Parameters
    ----------
    name : str or MethodSpec
        A fixed-step method, run on ``LinearVP()``.
    steps : int
        Steps of the default grid.
    rtol : float
        Relative and absolute tolerance.

    Raises
    ------
    AssertionError
        A prediction type gives a different sample.
    """
    from pndmkit.sampling import sample

    integrator, schedule = _build(name, None)
    model = gaussian_eps(schedule)

    def converted(kind: str) -> Callable[[Any, float], Any]:
        def out(x: Any, t: float) -> Any:
            a = float(schedule.abar(t))
            e = model(x, t)
            x0 = (x - (1 - a) ** 0.5 * e) / a**0.5
            return {"x0": x0, "v": a**0.5 * e - (1 - a) ** 0.5 * x0, "score": -e / (1 - a) ** 0.5}[kind]
        return out

    x = np.array([0.3, -0.9, 1.7])
    ref = sample(model, x, schedule=schedule, method=integrator, steps=steps).x
    for kind in ("x0", "v", "score"):
        got = sample(converted(kind), x, schedule=schedule, method=integrator, steps=steps, prediction=kind).x
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol, err_msg=f"{_label(name)}, prediction={kind}")


def check_torch(name: Union[str, MethodSpec], steps: int = 6) -> None:
    """numpy float64 and torch float64 runs agree to 1e-12 (skipped without torch).

    Parameters
    ----------
    name : str or MethodSpec
        A fixed-step method, run on ``LinearVP()``.
    steps : int
        Steps of the default grid.

    Raises
    ------
    AssertionError
        The torch run returns another type or dtype, or a different sample.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    from pndmkit.sampling import sample

    integrator, schedule = _build(name, None)
    model = gaussian_eps(schedule)
    x = np.array([0.3, -0.9, 1.7])
    a = sample(model, x, schedule=schedule, method=integrator, steps=steps).x
    b = sample(model, torch.tensor(x), schedule=schedule, method=integrator, steps=steps).x
    assert isinstance(b, torch.Tensor) and b.dtype == torch.float64, (
        f"{_label(name)}: a float64 torch run returned {type(b).__name__} {getattr(b, 'dtype', '')}")
    np.testing.assert_allclose(b.numpy(), a, rtol=1e-12, atol=1e-12, err_msg=_label(name))


def check_order(name: Union[str, MethodSpec], study: Any = None, steps: Sequence[int] = (100, 200, 400, 800),
                tol: float = 0.3, *, order: Optional[int] = None) -> float:
    """Measured global order within ``tol`` of the declared one; returns the measured order.

    The order is fitted by :func:`pndmkit.studies.convergence.sweep` (least squares on the asymptotic range of
    the errors against the exact probability-flow solution).

    Parameters
    ----------
    name : str or MethodSpec
        A fixed-step method; a MethodSpec need not be registered.
    study : pndmkit.studies.convergence.Study, optional
        Default: gmm2d, cosine VP, ``t``-uniform grid from ``t = 0.9`` to ``s = 0.1`` (mid-trajectory, so
        that low-order ramps and warm-ups show their formal order), 4 start points.
    steps : sequence of int
        Step counts of the sweep.
    tol : float
        Allowed ``|measured - declared|``.
    order : int, optional
        The order to expect instead of the declared ``spec.order``.

    Returns
    -------
    float
        The measured order.

    Raises
    ------
    ValueError
        An adaptive method, or ``tol`` not a finite number >= 0.
    AssertionError
        No order could be fitted, or it is more than ``tol`` from the expected one (the message lists the
        errors per step count).
    """
    from pndmkit.studies.convergence import make_study, sweep

    spec = _spec(name)
    if spec.adaptive:
        raise ValueError(f"{spec.name!r} is adaptive: this check needs a fixed-step method")
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, (int, float, np.integer, np.floating)) or \
            not (math.isfinite(float(tol)) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0 (the allowed |measured - declared| order), got {tol!r}")
    expected = spec.order if order is None else order
    study = study if study is not None else make_study("gmm2d", "cosine-vp", t_start=0.9, batch=4)
    result = sweep(study, spec, list(steps))
    above = result.measured_order is not None and result.measured_order > expected + tol
    assert result.measured_order is not None and abs(result.measured_order - expected) <= tol, (
        f"{spec.name!r}: measured order {result.measured_order} (fit on N = {result.fit_range}), expected "
        f"{expected} +- {tol}; errors per step count {dict(zip(result.steps, result.errors))}"
        + (f" ({result.note})" if result.note else "")
        + ("; measured above the declared order: either the method is of higher order than declared, or these "
           "step counts are not yet asymptotic (a lower-order error term, such as a low-order start whose share "
           "shrinks faster, still dominates): pass larger steps= to tell" if above else ""))
    return float(result.measured_order)
