r"""Timestep grids: the decreasing sequence of times ``t_0 > t_1 > ... > t_N`` a sampler visits.

A grid of ``N`` steps has ``N + 1`` times; the first is the start (noise end), the last the end (data end).
Continuous grids (any schedule):

* ``uniform``: equal steps in ``t`` (the grid of the paper's convergence statements);
* ``quadratic``: ``t_i = t_end + (t_start - t_end) (1 - i/N)^2``, dense near the data (DDIM's quadratic);
* ``logsnr``: equal steps in the half log-SNR ``lambda`` (DPM-Solver);
* ``karras``: equal steps in ``s^(1/rho)`` with ``s`` the noise-to-signal ratio, ``rho = 7`` (EDM);
  where the grid ends at ``abar = 1`` these two stop at the lowest positive level (the first table index
  of a discrete schedule, ``s = 0.002`` otherwise) and take one last step to the end;
* ``s-uniform``: equal steps in ``s`` (the coordinate in which the DDIM transfer is exact Euler);
* ``shifted``: equal steps in the unshifted time ``u``, each mapped to ``t = shift u / (1 + (shift - 1) u)`` with
  the schedule's ``shift`` (:class:`~pndmkit.schedules.FlowMatching`; diffusers' flow-matching ``shift``); the
  same as ``uniform`` on schedules without a time shift.

A schedule may name its own default kind (``default_grid``): ``karras`` for
:class:`~pndmkit.schedules.EDM` (with its ``sigma_min`` as the lowest positive level, EDM's grid),
``shifted`` for :class:`~pndmkit.schedules.FlowMatching`.

Discrete DDPM grids (diffusers' ``timestep_spacing``; integer training indices) for :class:`DiscreteVP`:

* ``leading``: ``t = k * (T // N) + offset`` for ``k = N-1..0`` (50 of 1000 steps start at 980);
* ``linspace``: ``round(linspace(0, T - 1, N))`` reversed (starts at 999); one step is ``[T - 1]`` (diffusers'
  rule gives ``[0]``, a step from the data end that returns the noise nearly unchanged);
* ``trailing``: ``round(arange(T, 0, -T/N)) - 1`` (starts at 999, ends near the data);
* ``leading-multistep``: ``t = k * (T // (N + 1)) + offset`` for ``k = N..1``: the ``leading`` spacing of
  diffusers' multistep schedulers (``DPMSolverMultistepScheduler``, ``UniPCMultistepScheduler``,
  ``DEISMultistepScheduler``), which divide the table into ``N + 1`` parts and drop the last start, ``t = 0``
  (830, 664, 498, 332, 166 for 5 of 1000 steps; 980, ..., 20 for 49), so the last step runs from one stride
  above the data end;

each followed by the final time: ``final_alpha="one"`` ends at ``t = -1`` where ``abar = 1`` (DDIM's padded
table, pndmkit's default), ``final_alpha="first"`` ends at ``t = 0`` where ``abar = abar_0 = 1 - beta_0``
(diffusers ``set_alpha_to_one=False`` and the official PNDM code). The multistep schedulers end at ``t = -1``
with ``final_sigmas_type="zero"`` (DPM-Solver's and UniPC's default) and at ``t = 0`` with ``"sigma_min"``
(DEIS always). ``offset`` is diffusers' ``steps_offset`` (the two ``leading`` spacings only, as in diffusers).

Every grid has exactly the ``steps`` steps asked for; where a rule cannot give them, :func:`make_grid` says
why instead of returning something else:

* a last step of length zero (``leading`` with ``offset=0`` or ``linspace``, then ``final_alpha="first"``:
  the grid already reaches ``t = 0``) is refused, not dropped;
* ``leading`` spacing starts one step below the top when ``steps`` divides ``T`` (980 for 50 of 1000); where
  ``T // steps`` truncates it starts lower, and it is refused once that costs more than a tenth of the table
  beyond its own first step (600 of 1000 steps: stride 1, start at ``t = 599``; ``leading-multistep`` the
  same with ``T // (steps + 1)``: 500 steps start at ``t = 500``); a single ``leading`` step
  starts at ``t = offset`` (diffusers' rule, kept for parity with it: use ``trailing`` or ``linspace`` for one
  step); ``trailing`` and ``linspace`` start at ``T - 1`` for every ``steps``, one included;
* starting mid-trajectory at an integer ``t_start``, the discrete spacings spread their steps over the indices
  ``0..t_start`` (``t_start = T - 1`` gives the full-table grid); the ``leading`` spacings cannot start at a
  chosen time, so the default grid of a :class:`DiscreteVP` with ``t_start`` is ``linspace``;
* options a kind would ignore (``rho`` off ``karras``, ``offset`` off ``leading``, ``final_alpha`` on a
  continuous schedule) raise.

Examples
--------
>>> from pndmkit.schedules import DiscreteVP, LinearVP
>>> make_grid(DiscreteVP.linear(), 50, "leading")[:3].tolist()
[980.0, 960.0, 940.0]
>>> make_grid(DiscreteVP.linear(), 5, "leading", final_alpha="first", offset=1).tolist()
[801.0, 601.0, 401.0, 201.0, 1.0, 0.0]
>>> make_grid(DiscreteVP.linear(), 5, "leading-multistep").tolist()
[830.0, 664.0, 498.0, 332.0, 166.0, -1.0]
>>> make_grid(LinearVP(), 4).round(6).tolist()
[1.0, 0.75025, 0.5005, 0.25075, 0.001]
>>> make_grid(DiscreteVP.linear(), 4, t_start=300).tolist()   # mid-trajectory: linspace over 0..300
[300.0, 200.0, 100.0, 0.0, -1.0]
"""

from __future__ import annotations

import math

from typing import Callable, NamedTuple, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit._checks import check_choice, check_int, check_real
from pndmkit.schedules import DiscreteVP, NoiseSchedule

__all__ = ["make_grid", "check_grid", "GRIDS", "GRID_KINDS", "GridKind", "DISCRETE_SPACINGS",
           "S_FLOOR"]

DISCRETE_SPACINGS = ("leading", "linspace", "trailing", "leading-multistep")


def check_grid(schedule: NoiseSchedule | None, grid: Sequence[float] | NDArray[np.float64]) -> NDArray[np.float64]:
    """Validate a grid and return it as a float64 array: the one place the grid rules live.

    A grid is a 1-D sequence of at least 2 finite times, strictly decreasing (from noise to data), inside
    the schedule's domain ``[t_min, t_max]``. :func:`make_grid`, :func:`pndmkit.sample` and
    :meth:`pndmkit.Integrator.solve` all check grids here, so they refuse a bad grid with the same words.

    Parameters
    ----------
    schedule : NoiseSchedule or None
        The schedule whose domain the times must lie in (times within ``1e-9 * max(1, |t_max|)`` of it are
        clipped onto it); ``None`` checks every rule but the domain, for times whose schedule is not known yet
        (``pndmkit sample --grid T0,T1,...`` before the checkpoint is opened; :func:`pndmkit.sample` checks them
        against the schedule later).
    grid : sequence of float
        The times, in the schedule's own units.

    Raises
    ------
    TypeError
        ``grid`` is not a sequence of numbers.
    ValueError
        A rule above is broken; the message names the first offending entry.

    >>> from pndmkit.schedules import LinearVP
    >>> check_grid(LinearVP(), [0.5, 0.7])
    Traceback (most recent call last):
        ...
    ValueError: grid must be strictly decreasing (from noise to data); grid[1]=0.7 >= grid[0]=0.5
    >>> check_grid(None, [999, 500, -1])  # no schedule: no domain
    array([999., 500.,  -1.])
    """
    if isinstance(grid, (str, bytes)):
        raise TypeError(f"grid must be a sequence of times, got {type(grid).__name__} {grid!r} (a kind name such "
                        f"as 'uniform' goes to make_grid or sample(grid=...))")
    try:
        g = np.array(grid, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"grid must be a 1-D sequence of numbers, got {type(grid).__name__}") from None
    if g.ndim != 1 or g.size < 2:
        raise ValueError(f"grid must be a 1-D sequence of at least 2 times, got shape {g.shape}")
    if schedule is None:
        bad = np.nonzero(~np.isfinite(g))[0]
        if bad.size:
            raise ValueError(f"grid[{int(bad[0])}]={g[bad[0]]} must be finite")
    else:
        schedule.check_time(g, name="grid")  # finite, inside the domain up to rounding (1e-9 relative) ...
        g = np.clip(g, schedule.t_min, schedule.t_max)  # ... which is removed: t = -1e-45 would give abar > 1
    bad = np.nonzero(np.diff(g) >= 0)[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"grid must be strictly decreasing (from noise to data); grid[{i + 1}]={g[i + 1]} >= grid[{i}]={g[i]}")
    return g


def _uniform_in(to_u: Callable, from_u: Callable, t_start: float, t_end: float, steps: int) -> NDArray[np.float64]:
    u = np.linspace(to_u(t_start), to_u(t_end), steps + 1)
    # exact end points; only the interior goes through the inverse map (the round trip of an end point can
    # land a rounding error outside the schedule's range, e.g. Karras rho=5 at t_max of a DiscreteVP)
    inner = np.asarray(from_u(u[1:-1]), dtype=np.float64).reshape(-1)
    return np.concatenate([[t_start], inner, [t_end]])


#: lowest noise-to-signal ratio of logsnr / karras grids on continuous schedules ending at abar = 1 (EDM)
S_FLOOR = 0.002

#: a leading grid may start at most this fraction of the table lower than one step below the top
LEADING_SLACK = 0.1


def _positive_floor(schedule: NoiseSchedule, t_start: float, t_end: float) -> float | None:
    """Last time with ``abar < 1`` of a grid that ends at ``abar = 1`` (``None`` if ``abar(t_end) < 1``):
    the first table index for a discrete schedule, ``s = S_FLOOR`` otherwise."""
    if float(schedule.s(t_end)) > 0:
        return None
    s_floor = S_FLOOR if schedule.s_floor is None else schedule.s_floor
    floor = t_end + 1.0 if isinstance(schedule, DiscreteVP) else float(schedule.t_from_s(s_floor))
    if not floor < t_start:
        raise ValueError(f"t_start={t_start} must lie above the lowest positive noise level t={floor}")
    return floor


def _check_options(schedule: NoiseSchedule, kind: str, rho: float | None, final_alpha: str | None,
                   offset: int | None, defaulted: bool = False) -> None:
    """Refuse options that the grid kind would ignore (a misplaced option is a mistake, not a no-op);
    ``defaulted``: no kind was given and ``kind`` is the schedule's default (the messages say so)."""
    which = f"grid {kind!r} (the default grid of {schedule!r}; no grid was given)" if defaulted else f"grid {kind!r}"
    if rho is not None:
        if not GRID_KINDS[kind].takes_rho:
            raise ValueError(f"rho applies to grid 'karras' only, not to {which}: pass grid='karras' with rho")
        if check_real(rho, "rho") <= 0:
            raise ValueError(f"rho must be > 0, got {rho}")
    if final_alpha is not None:
        check_choice(final_alpha, "final_alpha", ("one", "first"))
        if not isinstance(schedule, DiscreteVP):
            raise ValueError(f"final_alpha applies to DiscreteVP schedules only (their end t = -1 or t = 0); "
                             f"pass t_end for {schedule!r}")
    if offset is not None:
        check_int(offset, "offset", minimum=0)
        if not GRID_KINDS[kind].takes_offset or not isinstance(schedule, DiscreteVP):
            raise ValueError(f"offset applies to grid 'leading' or 'leading-multistep' of a DiscreteVP only "
                             f"(diffusers' steps_offset), not to {which} on {schedule!r}")


def _end_time(schedule: NoiseSchedule, t_end: float | None, final_alpha: str | None) -> float:
    """Last time of the grid: ``t_end``, else ``final_alpha`` of a DiscreteVP (-1 or 0), else the default."""
    if final_alpha is None:
        return schedule.t_end if t_end is None else t_end
    implied = -1.0 if final_alpha == "one" else 0.0
    if t_end is not None and t_end != implied:
        raise ValueError(f"t_end={t_end} contradicts final_alpha={final_alpha!r} (which ends at t={implied:g}); "
                         f"pass only one of them")
    return implied


def _integer_index(t: float, name: str, kind: str) -> int:
    if not float(t).is_integer():
        raise ValueError(f"{name}={t} must be a training index (an integer) for grid {kind!r}; "
                         f"use grid='uniform' for other times")
    return int(t)


def _leading(T: int, steps: int, offset: int, multistep: bool = False) -> NDArray[np.float64]:
    """``leading``: ``steps`` of the ``steps`` parts of the table from ``t = 0`` up; ``multistep``
    (``leading-multistep``): ``steps`` of ``steps + 1`` parts from one stride up (``t = 0`` dropped)."""
    parts = steps + 1 if multistep else steps
    stride = T // parts
    ts = np.arange(parts - 1, parts - 1 - steps, -1) * stride + offset
    if ts[0] > T - 1:
        raise ValueError(f"offset={offset} moves the first time {ts[0]} past the last training index {T - 1}")
    # the rule starts one step below the top (980 of 1000 for 50 steps); where T // steps truncates a lot it
    # starts far lower (600 steps: stride 1, t = 599), leaving a large part of the trajectory unsampled
    if ts[0] + T / parts < (1.0 - LEADING_SLACK) * T - 1:
        kind, divisor = ("leading-multistep", "(steps + 1)") if multistep else ("leading", "steps")
        raise ValueError(
            f"grid {kind!r} with steps={steps} of T={T} takes stride T // {divisor} = {stride} and would start at "
            f"t={ts[0]}, skipping {100 * (T - 1 - ts[0]) / T:.0f}% of the trajectory; choose steps "
            f"{'+ 1 ' if multistep else ''}that divide{'s' if multistep else ''} {T} or grid='trailing' / "
            f"'linspace' (which start at t={T - 1} for every steps)")
    return ts.astype(np.float64)


def _discrete(schedule: DiscreteVP, steps: int, spacing: str, t_start: float | None, end: float,
              offset: int) -> NDArray[np.float64]:
    """Integer grids of diffusers' ``timestep_spacing`` over the indices ``0..t_start``, then ``end``."""
    T = schedule.num_train_timesteps
    if end not in (-1.0, 0.0):
        raise ValueError(f"grid {spacing!r} ends at t=-1 (final_alpha='one') or t=0 ('first'), not at t_end={end}; "
                         f"use a continuous kind such as grid='uniform' for other ends")
    top = T - 1 if t_start is None else _integer_index(t_start, "t_start", spacing)
    if top <= end:  # t = -1 is abar = 1 (the data), t = 0 its first level: no step starts there
        where = "abar = 1, the data" if end < 0 else "abar_0, final_alpha='first'"
        raise ValueError(f"t_start={t_start:g} does not lie above the grid's end t={end:g} ({where}), so no step "
                         f"starts there; t_start of grid {spacing!r} on {schedule!r} must be a training index in "
                         f"{int(end) + 1}..{T - 1}")
    n = top + 1  # indices 0..top: the whole table unless starting mid-trajectory
    if steps > n:
        below = "" if t_start is None else f" up to t_start={t_start:g} (give fewer steps or a later t_start)"
        raise ValueError(f"steps={steps} exceeds the {n} training indices 0..{top} of {schedule!r}{below}")
    if spacing in ("leading", "leading-multistep"):
        ts = _leading(T, steps, offset, multistep=spacing == "leading-multistep")
    elif spacing == "linspace":
        # diffusers' round(linspace(0, top, N)) reversed; one point of it would be [0], a "step" from the data
        # end that returns the noise nearly unchanged: one step starts at the top like every other step count
        ts = np.linspace(0, top, steps).round()[::-1] if steps > 1 else np.array([float(top)])
    else:  # trailing: round(arange(n, 0, -n / steps)) - 1, written without arange's float length
        ts = np.round(n - np.arange(steps) * (n / steps)) - 1
    if t_start is not None and ts[0] != top:  # the leading spacings start where their stride puts them
        raise ValueError(
            f"grid {spacing!r} with steps={steps} starts at t={ts[0]:g}, so it cannot start at t_start={t_start:g}; "
            f"use grid='trailing' or 'linspace' (or leave grid unset), which start at t_start")
    if ts[-1] <= end:
        raise ValueError(
            f"grid {spacing!r} with steps={steps} already reaches t={ts[-1]:g}, so its last step to "
            f"t={end:g} (final_alpha={'one' if end < 0 else 'first'!r}) would have length zero; use "
            + ("offset=1 or " if spacing == "leading" else "") + "final_alpha='one'")
    return np.append(ts, end)


def make_grid(schedule: NoiseSchedule, steps: int, kind: str | None = None, *, t_start: float | None = None,
              t_end: float | None = None, rho: float | None = None, final_alpha: str | None = None,
              offset: int | None = None) -> NDArray[np.float64]:
    """Return a grid of exactly ``steps`` steps (``steps + 1`` decreasing times) of the given kind.

    Every combination of arguments either gives such a grid or raises one ``ValueError`` that names the
    parameters which cannot be honoured together; options a kind would ignore (``rho`` on a uniform grid,
    ``offset`` on a trailing one) are refused, not dropped.

    Parameters
    ----------
    schedule : NoiseSchedule
        The schedule whose time units the grid uses.
    steps : int
        Number of steps, ``>= 1`` (numpy integers accepted).
    kind : str, optional
        One of :data:`GRIDS`. Default: the schedule's ``default_grid``, else ``"uniform"``; for
        :class:`DiscreteVP` ``"leading"``, or ``"linspace"`` when ``t_start`` is given (leading spacing starts
        where its stride puts it).
    t_start, t_end : float, optional
        First and last time (default: the schedule's ``t_start`` and ``t_end``); ``t_start`` below it starts
        mid-trajectory (img2img). Discrete spacings (``leading``, ``trailing`` and, ending at ``-1`` or ``0``,
        ``linspace``, the default with ``t_start``) need an integer ``t_start`` above the grid's end (a training
        index ``0..T-1``, ``1..T-1`` with ``final_alpha="first"``) and spread their steps over the indices
        ``0..t_start``; ``leading`` and ``leading-multistep`` accept only their own first time.
    rho : float, optional
        Exponent of the ``karras`` grid (7).
    final_alpha : {"one", "first"}, optional
        :class:`DiscreteVP` only: end at ``abar = 1`` (``t = -1``, the default) or ``abar_0`` (``t = 0``);
        the same as ``t_end = -1`` or ``0``.
    offset : int, optional
        diffusers' ``steps_offset``, ``leading`` and ``leading-multistep`` spacings of a :class:`DiscreteVP`
        only (0).

    Raises
    ------
    TypeError
        ``steps`` or ``offset`` not an integer, a time or ``rho`` not a real number.
    ValueError
        Unknown kind, a non-finite or out-of-domain time, options the kind cannot honour.
    """
    steps = check_int(steps, "steps", minimum=1)
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule (LinearVP, CosineVP, DiscreteVP, EDM, VE, FlowMatching, "
                        f"CustomSchedule), "
                        f"got {type(schedule).__name__}")
    t_start = None if t_start is None else check_real(t_start, "t_start")
    t_end = None if t_end is None else check_real(t_end, "t_end")
    discrete = isinstance(schedule, DiscreteVP)
    defaulted = kind is None
    if kind is None:
        kind = ("leading" if t_start is None else "linspace") if discrete else (schedule.default_grid or "uniform")
    kind = check_choice(kind, "grid kind", GRIDS)
    _check_options(schedule, kind, rho, final_alpha, offset, defaulted)
    for name, t in (("t_start", t_start), ("t_end", t_end)):
        if t is not None:
            schedule.check_time(t, name=name)
    clip = lambda t: None if t is None else min(max(t, schedule.t_min), schedule.t_max)  # noqa: E731
    t_start, t_end = clip(t_start), clip(t_end)
    t1 = _end_time(schedule, t_end, final_alpha)
    # linspace ending at -1 or 0 is diffusers' integer spacing: a non-integer t_start is refused there
    # (naming t_start), never silently turned into a continuous grid
    if discrete and kind in DISCRETE_SPACINGS and (GRID_KINDS[kind].discrete_only or t1 in (-1.0, 0.0)):
        return check_grid(schedule, _discrete(schedule, steps, kind, t_start, t1, offset or 0))
    if GRID_KINDS[kind].discrete_only:
        raise ValueError(f"grid {kind!r} is a spacing of training indices and needs a DiscreteVP schedule, "
                         f"got {schedule!r}; use 'uniform'")
    t0 = schedule.t_start if t_start is None else t_start
    if not t0 > t1:
        raise ValueError(f"t_start={t0} must be larger than t_end={t1} (time runs from noise to data)")
    spec = GRID_KINDS[kind]
    if kind in _LEVEL_KINDS and not math.isfinite(float(schedule.s(t0))):
        raise ValueError(f"grid {kind!r} is equally spaced in {_LEVEL_KINDS[kind]}, which is infinite at t_start={t0:g} "
                         f"on {schedule!r} (alpha = 0, pure noise): start the grid below t={t0:g} (t_start=) or use "
                         f"a kind spaced in t ({', '.join(k for k in ('uniform', 'shifted') if k in GRID_KINDS)})")
    r = 7.0 if rho is None else float(rho)
    # a floored kind ending at abar = 1 (s = 0, lambda = inf) stops at the lowest positive level and takes
    # one last step to t_end, as EDM does with sigma_min
    floor = _positive_floor(schedule, t0, t1) if spec.floored else None
    if floor is None:
        g = spec.build(schedule, steps, t0, t1, r)
    elif steps == 1:
        g = np.array([t0, t1])
    else:
        g = np.append(spec.build(schedule, steps - 1, t0, floor, r), t1)
    if np.any(np.diff(g) >= 0):  # e.g. 10**6 steps of a 1e-3 interval: neighbouring floats coincide
        raise ValueError(f"steps={steps} of grid {kind!r} between t={t0} and t={t1} do not give distinct times")
    return check_grid(schedule, g)


#: the kinds equally spaced in a function of the level s (infinite where alpha = 0), and that function
_LEVEL_KINDS = {"logsnr": "lambda = -log s", "karras": "s**(1/rho)", "s-uniform": "s"}


def _t_uniform(sch: NoiseSchedule, steps: int, t0: float, t1: float, rho: float) -> NDArray[np.float64]:
    return np.linspace(t0, t1, steps + 1)


def _quadratic(sch: NoiseSchedule, steps: int, t0: float, t1: float, rho: float) -> NDArray[np.float64]:
    return t1 + (t0 - t1) * (1.0 - np.arange(steps + 1) / steps) ** 2


def _logsnr(sch: NoiseSchedule, steps: int, t0: float, t1: float, rho: float) -> NDArray[np.float64]:
    return _uniform_in(sch.lam, sch.t_from_lambda, t0, t1, steps)


def _karras(sch: NoiseSchedule, steps: int, t0: float, t1: float, rho: float) -> NDArray[np.float64]:
    return _uniform_in(lambda t: np.asarray(sch.s(t)) ** (1 / rho), lambda u: sch.t_from_s(u**rho), t0, t1, steps)


def _s_uniform(sch: NoiseSchedule, steps: int, t0: float, t1: float, rho: float) -> NDArray[np.float64]:
    return _uniform_in(sch.s, sch.t_from_s, t0, t1, steps)


def _shifted(sch: NoiseSchedule, steps: int, t0: float, t1: float, rho: float) -> NDArray[np.float64]:
    shift = float(getattr(sch, "shift", 1.0))
    return _uniform_in(lambda t: t / (shift - (shift - 1.0) * t), lambda u: shift * u / (1.0 + (shift - 1.0) * u),
                       t0, t1, steps)


def _training_indices(sch: NoiseSchedule, steps: int, t0: float, t1: float, rho: float) -> NDArray[np.float64]:
    raise AssertionError("discrete spacings are built by make_grid's integer rule")  # pragma: no cover


class GridKind(NamedTuple):
    """A grid kind: how :func:`make_grid` builds it and what studies need to know about it (:data:`GRID_KINDS`).

    Attributes
    ----------
    uniform_in : str
        The quantity whose steps are equal.
    build : callable
        ``build(schedule, steps, t_start, t_end, rho) -> times`` (``steps + 1`` decreasing float64 times from
        ``t_start`` to ``t_end``) on continuous schedules; :func:`make_grid` validates the options, the ends
        and the result around it.
    discrete_only : bool
        A spacing of integer training indices, for :class:`DiscreteVP` schedules only.
    same_as : str or None
        The kind this one equals on continuous schedules (``linspace`` is ``uniform`` there; on a
        :class:`DiscreteVP` it is ``uniform`` rounded to training indices; ``shifted`` is ``uniform`` on
        every schedule without a time shift).
    in_diffusers : bool
        diffusers offers it (``timestep_spacing``, ``use_karras_sigmas``, ``use_lu_lambdas``) for some of its
        schedulers: ``linspace`` is the ``timestep_spacing="linspace"`` of DDIM, DDPM and PNDM only (999, 749, 500,
        250, 0 at 5 steps of 1000); DPM-Solver multistep, UniPC and DEIS lay out ``N + 1`` points and drop the
        last (999, 799, 599, 400, 200), Euler does not round (999, 749.25, ...), and neither layout is a grid kind
        (:class:`~pndmkit.integrations.diffusers.PNDMKitScheduler` reproduces both from the source's own
        ``set_timesteps``).
    floored : bool
        Ending at ``abar = 1`` it stops at the lowest positive level (the first table index of a
        discrete schedule, ``s = S_FLOOR`` otherwise) and takes one last step to the end.
    default_for : str or None
        ``"discrete"`` / ``"continuous"``: :func:`make_grid`'s kind for those schedules when none is given.
    takes_rho : bool
        Whether the kind has the exponent ``rho`` (``karras``).
    takes_offset : bool
        Whether the kind has diffusers' ``steps_offset`` (the ``leading`` spacings).
    """

    uniform_in: str
    build: Callable[..., NDArray[np.float64]]
    discrete_only: bool = False
    same_as: str | None = None
    in_diffusers: bool = False
    floored: bool = False
    default_for: str | None = None
    takes_rho: bool = False
    takes_offset: bool = False


#: every grid kind: a new kind is one entry here (its ``build`` function above)
GRID_KINDS = {
    "uniform": GridKind("t", _t_uniform, in_diffusers=True, default_for="continuous"),
    # diffusers' timestep_spacing="linspace" of DDIMScheduler, DDPMScheduler and PNDMScheduler only (999, 749, 500,
    # 250, 0 at 5 steps of 1000). DPMSolverMultistepScheduler, UniPCMultistepScheduler and DEISMultistepScheduler lay
    # out N + 1 points and drop the last (999, 799, 599, 400, 200), and EulerDiscreteScheduler does not round
    # (999, 749.25, ...): neither is a make_grid kind (PNDMKitScheduler reproduces both, from the source's own
    # set_timesteps)
    "linspace": GridKind("t (training indices on a DiscreteVP)", _t_uniform, same_as="uniform", in_diffusers=True),
    "quadratic": GridKind("sqrt(t - t_end)", _quadratic),
    "logsnr": GridKind("lambda = -log s", _logsnr, in_diffusers=True, floored=True),
    "karras": GridKind("s^(1/rho)", _karras, in_diffusers=True, floored=True, takes_rho=True),
    "s-uniform": GridKind("s", _s_uniform),
    "shifted": GridKind("u with t = shift u / (1 + (shift - 1) u)", _shifted, same_as="uniform"),
    "leading": GridKind("training index, stride T // N", _training_indices, discrete_only=True, in_diffusers=True,
                        default_for="discrete", takes_offset=True),
    "trailing": GridKind("training index, from the top", _training_indices, discrete_only=True, in_diffusers=True),
    # diffusers' timestep_spacing="leading" of DPMSolverMultistepScheduler, UniPCMultistepScheduler and
    # DEISMultistepScheduler (not DDIM's, PNDM's or DDPM's, which are "leading" above)
    "leading-multistep": GridKind("training index, stride T // (N + 1), from one stride up", _training_indices,
                                  discrete_only=True, in_diffusers=True, takes_offset=True),
}

#: grid kinds accepted by :func:`make_grid` (the keys of :data:`GRID_KINDS`)
GRIDS = tuple(GRID_KINDS)
