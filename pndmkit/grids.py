r"""Timestep grids: the decreasing sequence of times ``t_0 > t_1 > ... > t_N`` a sampler visits.

A grid of ``N`` steps has ``N + 1`` times; the first is the start (noise end), the last the end (data end).
Continuous grids (any schedule):

* ``uniform``: equal steps in ``t`` (the grid of the paper's convergence statements);
* ``quadratic``: ``t_i = t_end + (t_start - t_end) (1 - i/N)^2``, dense near the data (DDIM's quadratic);
* ``logsnr``: equal steps in the half log-SNR ``lambda`` (DPM-Solver);
* ``karras``: equal steps in ``s^(1/rho)`` with ``s`` the noise-to-signal ratio, ``rho = 7`` (EDM);
  where the grid ends at ``abar = 1`` these two stop at the lowest positive level (the first table index
  of a discrete schedule, ``s = 0.002`` otherwise) and take one last step to the end;
* ``s-uniform``: equal steps in ``s`` (the coordinate in which the DDIM transfer is exact Euler).

Discrete DDPM grids (diffusers' ``timestep_spacing``; integer training indices) for :class:`DiscreteVP`:

* ``leading``: ``t = k * (T // N) + offset`` for ``k = N-1..0`` (50 of 1000 steps start at 980);
* ``linspace``: ``round(linspace(0, T - 1, N))`` reversed (starts at 999);
* ``trailing``: ``round(arange(T, 0, -T/N)) - 1`` (starts at 999, ends near the data);

each followed by the final time: ``final_alpha="one"`` ends at ``t = -1`` where ``abar = 1`` (DDIM's padded
table, pndmkit's default), ``final_alpha="first"`` ends at ``t = 0`` where ``abar = abar_0 = 1 - beta_0``
(diffusers ``set_alpha_to_one=False`` and the official PNDM code). ``offset`` is diffusers' ``steps_offset``
(``leading`` spacing only, as in diffusers).

Examples
--------
>>> from pndmkit.schedules import DiscreteVP, LinearVP
>>> make_grid(DiscreteVP.linear(), 50, "leading")[:3].tolist()
[980.0, 960.0, 940.0]
>>> make_grid(DiscreteVP.linear(), 5, "leading", final_alpha="first", offset=1).tolist()
[801.0, 601.0, 401.0, 201.0, 1.0, 0.0]
>>> make_grid(LinearVP(), 4).round(6).tolist()
[1.0, 0.75025, 0.5005, 0.25075, 0.001]
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit.schedules import DiscreteVP, NoiseSchedule

__all__ = ["make_grid", "check_grid", "GRIDS", "GRID_KINDS", "GridKind", "DISCRETE_SPACINGS", "S_FLOOR"]

DISCRETE_SPACINGS = ("leading", "linspace", "trailing")


def _check_steps(steps: object) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    return int(steps)


def check_grid(schedule: NoiseSchedule, grid: Sequence[float] | NDArray[np.float64]) -> NDArray[np.float64]:
    """Validate a grid: at least two finite times, strictly decreasing, inside the schedule's domain.

    Returns the grid as a float64 array.

    >>> from pndmkit.schedules import LinearVP
    >>> check_grid(LinearVP(), [0.5, 0.7])
    Traceback (most recent call last):
        ...
    ValueError: grid must be strictly decreasing (from noise to data); grid[1]=0.7 >= grid[0]=0.5
    """
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 1 or g.size < 2:
        raise ValueError(f"grid must be a 1-D sequence of at least 2 times, got shape {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError(f"grid must contain finite times only, got {g.tolist()}")
    bad = np.nonzero(np.diff(g) >= 0)[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"grid must be strictly decreasing (from noise to data); grid[{i + 1}]={g[i + 1]} >= grid[{i}]={g[i]}")
    schedule.check_time(g, name="grid")
    return g


def _uniform_in(to_u: Callable, from_u: Callable, t_start: float, t_end: float, steps: int) -> NDArray[np.float64]:
    u = np.linspace(to_u(t_start), to_u(t_end), steps + 1)
    g = np.asarray(from_u(u), dtype=np.float64)
    g[0], g[-1] = t_start, t_end  # exact end points, whatever the round trip did
    return g


#: lowest noise-to-signal ratio of logsnr / karras grids on continuous schedules ending at abar = 1 (EDM)
S_FLOOR = 0.002


def _positive_floor(schedule: NoiseSchedule, t_start: float, t_end: float) -> float | None:
    """Last time with ``abar < 1`` of a grid that ends at ``abar = 1`` (``None`` if ``abar(t_end) < 1``):
    the first table index for a discrete schedule, ``s = S_FLOOR`` otherwise."""
    if float(schedule.s(t_end)) > 0:
        return None
    floor = t_end + 1.0 if isinstance(schedule, DiscreteVP) else float(schedule.t_from_s(S_FLOOR))
    if not floor < t_start:
        raise ValueError(f"t_start={t_start} must lie above the lowest positive noise level t={floor}")
    return floor


def _discrete(schedule: NoiseSchedule, steps: int, spacing: str, final_alpha: str, offset: int) -> NDArray[np.float64]:
    if not isinstance(schedule, DiscreteVP):
        raise ValueError(f"grid {spacing!r} needs a DiscreteVP schedule, got {schedule!r}")
    T = schedule.num_train_timesteps
    if steps > T:
        raise ValueError(f"steps={steps} exceeds the {T} training steps of {schedule!r}")
    if spacing == "leading":
        ts = (np.arange(steps) * (T // steps) + offset)[::-1]
    elif offset:
        raise ValueError(f"offset={offset} applies to 'leading' spacing only (as diffusers' steps_offset), "
                         f"not to {spacing!r}")
    elif spacing == "linspace":
        ts = np.linspace(0, T - 1, steps).round()[::-1]
    else:
        ts = np.round(np.arange(T, 0, -T / steps)).astype(np.int64) - 1
    if final_alpha not in ("one", "first"):
        raise ValueError(f"final_alpha must be 'one' (abar = 1) or 'first' (abar_0), got {final_alpha!r}")
    end = -1.0 if final_alpha == "one" else 0.0
    ts = np.asarray(ts, dtype=np.float64)
    if ts[0] > schedule.t_max:
        raise ValueError(f"offset={offset} moves the first time {ts[0]} past the last training index {schedule.t_max}")
    # a last step of length zero (e.g. leading spacing, offset 0, final_alpha='first') is dropped
    return ts if ts[-1] <= end else np.concatenate([ts, [end]])


def make_grid(schedule: NoiseSchedule, steps: int, kind: str | None = None, *, t_start: float | None = None,
              t_end: float | None = None, rho: float = 7.0, final_alpha: str = "one",
              offset: int = 0) -> NDArray[np.float64]:
    """Return a grid of ``steps`` steps (``steps + 1`` times, decreasing) of the given kind.

    Parameters
    ----------
    schedule : NoiseSchedule
        The schedule whose time units the grid uses.
    steps : int
        Number of steps, ``>= 1``.
    kind : str, optional
        One of :data:`GRIDS`. Default: ``"leading"`` for :class:`DiscreteVP`, ``"uniform"`` otherwise.
    t_start, t_end : float, optional
        First and last time of continuous grids (default: the schedule's ``t_start`` and ``t_end``);
        ``t_start`` below ``t_max`` starts mid-trajectory (img2img).
    rho : float
        Exponent of the Karras grid.
    final_alpha : {"one", "first"}
        Final time of discrete grids: ``abar = 1`` (``t = -1``) or ``abar_0`` (``t = 0``).
    offset : int
        diffusers' ``steps_offset`` for discrete grids.
    """
    steps = _check_steps(steps)
    discrete = isinstance(schedule, DiscreteVP)
    kind = kind or ("leading" if discrete else "uniform")
    if kind in DISCRETE_SPACINGS and discrete and t_start is None and t_end is None:
        return check_grid(schedule, _discrete(schedule, steps, kind, final_alpha, offset))
    if kind not in GRIDS:
        raise ValueError(f"unknown grid kind {kind!r}; known: {sorted(GRIDS)}")
    t0 = schedule.t_start if t_start is None else float(t_start)
    t1 = schedule.t_end if t_end is None else float(t_end)
    schedule.check_time([t0, t1], name="(t_start, t_end)")
    if not t0 > t1:
        raise ValueError(f"t_start={t0} must be larger than t_end={t1} (time runs from noise to data)")
    sch = schedule
    if kind in ("uniform", "linspace"):
        g = np.linspace(t0, t1, steps + 1)
    elif kind == "quadratic":
        g = t1 + (t0 - t1) * (1.0 - np.arange(steps + 1) / steps) ** 2
    elif kind in ("logsnr", "karras"):
        if rho <= 0:
            raise ValueError(f"rho must be > 0, got {rho}")
        # where the grid ends at abar = 1 (s = 0, lambda = inf) both grids stop at the lowest positive
        # level and take one last step to t_end, as EDM does with sigma_min
        floor = _positive_floor(sch, t0, t1)
        if floor is not None and steps == 1:
            g = np.array([t0, t1])
        else:
            end = t1 if floor is None else floor
            n = steps if floor is None else steps - 1
            if kind == "logsnr":
                g = _uniform_in(sch.lam, sch.t_from_lambda, t0, end, n)
            else:
                g = _uniform_in(lambda t: np.asarray(sch.s(t)) ** (1 / rho), lambda u: sch.t_from_s(u**rho),
                                t0, end, n)
            g = g if floor is None else np.append(g, t1)
    elif kind == "s-uniform":
        g = _uniform_in(sch.s, sch.t_from_s, t0, t1, steps)
    else:
        raise ValueError(f"grid {kind!r} needs a DiscreteVP schedule and no t_start/t_end; got {schedule!r}")
    return check_grid(schedule, g)


#: grid kinds accepted by :func:`make_grid`
GRIDS = ("uniform", "linspace", "quadratic", "logsnr", "karras", "s-uniform", "leading", "trailing")

class GridKind(NamedTuple):
    """What a grid kind is, for the code that chooses among kinds (studies, CLI): see :data:`GRID_KINDS`.

    Attributes
    ----------
    uniform_in : str
        The quantity whose steps are equal.
    discrete_only : bool
        A spacing of integer training indices, for :class:`DiscreteVP` schedules only.
    same_as : str or None
        The kind this one equals on continuous schedules (``linspace`` is ``uniform`` there; on a
        :class:`DiscreteVP` it is ``uniform`` rounded to training indices).
    in_diffusers : bool
        diffusers offers it (``timestep_spacing``, ``use_karras_sigmas``, ``use_lu_lambdas``).
    floored : bool
        Ending at ``abar = 1`` it stops at the lowest positive level (the first table index of a
        discrete schedule, ``s = S_FLOOR`` otherwise) and takes one last step to the end.
    default_for : str or None
        ``"discrete"`` / ``"continuous"``: :func:`make_grid`'s kind for those schedules when none is given.
    """

    uniform_in: str
    discrete_only: bool = False
    same_as: str | None = None
    in_diffusers: bool = False
    floored: bool = False
    default_for: str | None = None


#: every grid kind with what studies need to know about it; the keys are :data:`GRIDS`
GRID_KINDS = {
    "uniform": GridKind("t", in_diffusers=True, default_for="continuous"),
    "linspace": GridKind("t (training indices on a DiscreteVP)", same_as="uniform", in_diffusers=True),
    "quadratic": GridKind("sqrt(t - t_end)"),
    "logsnr": GridKind("lambda = -log s", in_diffusers=True, floored=True),
    "karras": GridKind("s^(1/rho)", in_diffusers=True, floored=True),
    "s-uniform": GridKind("s"),
    "leading": GridKind("training index, stride T // N", discrete_only=True, in_diffusers=True,
                        default_for="discrete"),
    "trailing": GridKind("training index, from the top", discrete_only=True, in_diffusers=True),
}
