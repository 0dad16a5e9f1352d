r"""Hypothesis strategies for property tests of samplers: schedules, grids, mixtures, methods and noises.

Every drawn object is valid (constructing it never raises) and meaningful to sample with: schedules have
parameters from the ranges their papers use, grids are made by :func:`pndmkit.grids.make_grid` (or are explicit
strictly decreasing times checked by :func:`pndmkit.grids.check_grid`) and stay inside the schedule's domain,
mixtures are well conditioned and have exact eps. Each strategy shrinks towards the simplest case (default
schedule parameters, the uniform grid, one component, seed 0), so a failing example is small.

Needs hypothesis (``pip install pndmkit[test]``); :mod:`pndmkit.testing`'s checks do not.

* :func:`schedules`: every family (discrete VP tables, continuous linear and cosine VP, EDM, VE, flow matching
  with a time shift, a :class:`~pndmkit.schedules.CustomSchedule`), filtered by ``families`` or ``kinds``;
* :func:`grids` / :func:`grid_specs`: every grid kind of :data:`pndmkit.grids.GRID_KINDS` valid for a schedule,
  and explicit grids, with ends at the data (``s = 0``, ``abar = 1``) where the schedule has them;
* :func:`mixtures`: :class:`~pndmkit.problems.GaussianMixture` ground truth;
* :func:`methods`: registry names of :data:`pndmkit.METHODS`, read at draw time (registered plugins appear);
* :func:`noises`: start samples ``x_T``.

Examples
--------
A property test of a method on random schedules and grids, with the checks of :mod:`pndmkit.testing`:

>>> from hypothesis import given, settings
>>> from hypothesis import strategies as st
>>> from pndmkit.testing import check_point_mass
>>> from pndmkit.testing.strategies import grids, methods, schedules
>>> @settings(max_examples=10, deadline=None)
... @given(data=st.data(), method=methods(kind="pseudo"), schedule=schedules())
... def test_point_mass(data, method, schedule):
...     check_point_mass(method, schedule=schedule, grid=data.draw(grids(schedule)))
>>> test_point_mass()
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional, Sequence, Union

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test without hypothesis
    raise ImportError(f"pndmkit.testing.strategies needs hypothesis: pip install pndmkit[test] (or pip install "
                      f"hypothesis); {exc}") from exc

import numpy as np
from numpy.typing import NDArray

from pndmkit.grids import GRID_KINDS, S_FLOOR, check_grid, make_grid
from pndmkit.methods import KINDS, METHODS
from pndmkit.problems import GaussianMixture
from pndmkit.schedules import (EDM, VE, CosineVP, CustomSchedule, DiscreteVP, FlowMatching, LinearVP,
                               NoiseSchedule)

__all__ = ["schedules", "grids", "grid_specs", "GridSpec", "mixtures", "methods", "noises", "SCHEDULE_KINDS",
           "EXPLICIT"]

#: the kinds :func:`schedules` draws (the ``kind`` of :func:`pndmkit.schedules.schedule_to_dict`, and ``custom``),
#: each with its family (:attr:`pndmkit.schedules.NoiseSchedule.family`)
SCHEDULE_KINDS = {"discrete": "vp", "linear-vp": "vp", "cosine-vp": "vp", "edm": "ve", "ve": "ve",
                  "flow-matching": "flow", "custom": "custom"}

#: the grid "kind" of explicit times in :func:`grids` (not a :func:`pndmkit.grids.make_grid` kind)
EXPLICIT = "explicit"


def _names(value: Any, name: str, allowed: Sequence[str]) -> tuple[str, ...]:
    """``value`` (a name or a sequence of names) as a tuple, each one of ``allowed``."""
    names = (value,) if isinstance(value, str) else tuple(value)
    bad = [v for v in names if v not in allowed]
    if bad or not names:
        raise ValueError(f"{name} must be one of {tuple(allowed)} or a non-empty sequence of them, got {value!r}")
    return names


# -- schedules -------------------------------------------------------------------------------------------------
class _Angle:
    """``alpha = cos(theta)``, ``sigma = sin(theta)``, ``theta = theta_max t^power``: a VP-like pair in a new time."""

    def __init__(self, theta_max: float, power: float) -> None:
        self.theta_max, self.power = theta_max, power

    def __repr__(self) -> str:
        return f"cos/sin(theta_max={self.theta_max!r} * t**{self.power!r})"

    def _theta(self, t: Any) -> Any:
        return self.theta_max * np.asarray(t, dtype=np.float64) ** self.power

    def _dtheta(self, t: Any) -> Any:
        return self.theta_max * self.power * np.asarray(t, dtype=np.float64) ** (self.power - 1.0)

    def alpha(self, t: Any) -> Any:
        return np.cos(self._theta(t))

    def sigma(self, t: Any) -> Any:
        return np.sin(self._theta(t))

    def dalpha(self, t: Any) -> Any:
        return -np.sin(self._theta(t)) * self._dtheta(t)

    def dsigma(self, t: Any) -> Any:
        return np.cos(self._theta(t)) * self._dtheta(t)


class _ExpPower:
    """``alpha = exp(-decay t)``, ``sigma = sigma_max t^power``: neither variance preserving nor exploding."""

    def __init__(self, decay: float, sigma_max: float, power: float) -> None:
        self.decay, self.sigma_max, self.power = decay, sigma_max, power

    def __repr__(self) -> str:
        return f"exp(-{self.decay!r} t), {self.sigma_max!r} * t**{self.power!r}"

    def alpha(self, t: Any) -> Any:
        return np.exp(-self.decay * np.asarray(t, dtype=np.float64))

    def sigma(self, t: Any) -> Any:
        return self.sigma_max * np.asarray(t, dtype=np.float64) ** self.power

    def dalpha(self, t: Any) -> Any:
        return -self.decay * self.alpha(t)

    def dsigma(self, t: Any) -> Any:
        return self.sigma_max * self.power * np.asarray(t, dtype=np.float64) ** (self.power - 1.0)


class _DrawnCustom(CustomSchedule):
    """A :class:`CustomSchedule` whose ``repr`` names its pair, so that a failing example can be rebuilt."""

    def __init__(self, pair: Any) -> None:
        super().__init__(pair.alpha, pair.sigma, 0.0, 1.0, dalpha=pair.dalpha, dsigma=pair.dsigma)
        self.pair = pair

    def __repr__(self) -> str:
        return f"CustomSchedule({self.pair!r}, t in [0, 1])"


def _discrete() -> st.SearchStrategy[DiscreteVP]:
    T = st.one_of(st.just(1000), st.integers(100, 1000))

    @st.composite
    def table(draw: Any) -> DiscreteVP:
        name = draw(st.sampled_from(["linear", "quad", "cosine"]))
        n = draw(T)
        if name == "cosine":
            return DiscreteVP.cosine(n, s0=draw(st.floats(0.0, 0.02)), max_beta=draw(st.floats(0.9, 0.999)))
        # -log abar at the last index ~ sum(betas), between 5 and 12 as in DDPM (10.05 for 1e-4..0.02, T = 1000);
        # beta_start at least 2 total / T^2, so that the betas do not grow fast against the first one
        total = draw(st.floats(5.0, 12.0))
        low = max(1e-4, 2.0 * total / n**2)
        beta_start = draw(st.floats(low, max(3.0 * low, 1e-3)))
        beta_end = min(max((2.0 if name == "linear" else 3.0) * total / n - beta_start, beta_start), 0.5)
        return getattr(DiscreteVP, name)(n, beta_start, beta_end)

    return st.one_of(st.sampled_from(["linear", "quad", "cosine"]).map(lambda n: getattr(DiscreteVP, n)()),
                     table().filter(_extension_is_c2))


def _extension_is_c2(schedule: DiscreteVP) -> bool:
    """Whether the table's continuous extension is the C2 cubic spline (``schedule.extension == "cubic"``).

    Short tables whose betas grow fast (``linear`` with ``T <= 100``) get the C1 monotone PCHIP extension
    instead (:class:`~pndmkit.schedules.DiscreteVP`), whose second derivative jumps at the integer knots;
    :func:`schedules` does not draw those, so that the smoothness that order properties assume holds for
    every draw.
    """
    return schedule.extension == "cubic"


def _custom() -> st.SearchStrategy[CustomSchedule]:
    angle = st.builds(_Angle, theta_max=st.floats(1.3, 1.55), power=st.floats(1.0, 2.0))
    exp_power = st.builds(_ExpPower, decay=st.floats(0.0, 2.0), sigma_max=st.floats(1.0, 80.0),
                          power=st.floats(1.0, 2.0))
    return st.one_of(angle, exp_power).map(_DrawnCustom)


def _by_kind() -> dict[str, st.SearchStrategy[NoiseSchedule]]:
    t_end = st.floats(1e-4, 1e-2)
    return {
        "discrete": _discrete(),
        "linear-vp": st.one_of(st.builds(LinearVP), st.builds(LinearVP, beta_min=st.floats(0.0, 1.0),
                                                              beta_max=st.floats(5.0, 30.0), t_end=t_end)),
        "cosine-vp": st.one_of(st.builds(CosineVP), st.builds(CosineVP, s0=st.floats(0.0, 0.02),
                                                              t_max=st.floats(0.95, 0.999), t_end=t_end)),
        "edm": st.one_of(st.builds(EDM), st.builds(EDM, sigma_min=st.floats(1e-3, 0.05),
                                                   sigma_max=st.floats(10.0, 160.0))),
        "ve": st.one_of(st.builds(VE), st.builds(VE, sigma_min=st.floats(1e-3, 0.05),
                                                 sigma_max=st.floats(10.0, 100.0))),
        "flow-matching": st.one_of(st.builds(FlowMatching), st.builds(
            FlowMatching, shift=st.one_of(st.just(3.0), st.floats(0.25, 8.0)), t_max=st.floats(0.95, 0.999))),
        "custom": _custom(),
    }


def schedules(*, families: Union[str, Sequence[str], None] = None,
              kinds: Union[str, Sequence[str], None] = None) -> st.SearchStrategy[NoiseSchedule]:
    """Noise schedules of every family with parameters from valid, meaningful ranges.

    ==================  ===================================================================================
    kind                parameters drawn (the class defaults are drawn too, and are what examples shrink to)
    ==================  ===================================================================================
    ``discrete``        ``DiscreteVP.linear`` / ``quad`` (``T`` in [16, 1000], ``beta_start`` in [1e-5, 1e-3],
                        ``beta_end`` so that ``sum(betas)``, about ``-log abar_{T-1}``, is in [5, 12]) and
                        ``DiscreteVP.cosine`` (``T``, ``s0`` in [0, 0.02], ``max_beta`` in [0.9, 0.999])
    ``linear-vp``       ``beta_min`` in [0, 1], ``beta_max`` in [5, 30], ``t_end`` in [1e-4, 1e-2]
    ``cosine-vp``       ``s0`` in [0, 0.02], ``t_max`` in [0.95, 0.999], ``t_end`` in [1e-4, 1e-2]
    ``edm``             ``sigma_min`` in [1e-3, 0.05], ``sigma_max`` in [10, 160]
    ``ve``              ``sigma_min`` in [1e-3, 0.05], ``sigma_max`` in [10, 100]
    ``flow-matching``   ``shift`` in [0.25, 8] (and 3, Stable Diffusion 3's), ``t_max`` in [0.95, 0.999]
    ``custom``          a :class:`~pndmkit.schedules.CustomSchedule` on ``t`` in [0, 1] with exact derivatives:
                        ``(cos theta, sin theta)`` with ``theta = theta_max t^p``, ``theta_max`` in [1.3, 1.55],
                        or ``(exp(-a t), c t^p)`` with ``a`` in [0, 2], ``c`` in [1, 80]; ``p`` in [1, 2]
    ==================  ===================================================================================

    Every drawn schedule except ``VE`` reaches ``s = 0`` at ``t_min``. Drawn schedules pickle (ask/tell runs that
    hold them can be saved).

    Parameters
    ----------
    families : str or sequence of str, optional
        Keep only these families (``"vp"``, ``"ve"``, ``"flow"``, ``"custom"``: :data:`SCHEDULE_KINDS`).
    kinds : str or sequence of str, optional
        Keep only these kinds (keys of :data:`SCHEDULE_KINDS`).

    Returns
    -------
    SearchStrategy of NoiseSchedule

    Raises
    ------
    ValueError
        An unknown family or kind, or filters that leave nothing.

    Examples
    --------
    >>> from pndmkit.testing.strategies import schedules
    >>> from hypothesis import find
    >>> find(schedules(families="flow"), lambda s: s.shift != 1.0).shift
    3.0
    """
    keep = list(SCHEDULE_KINDS)
    if families is not None:
        fams = _names(families, "families", sorted(set(SCHEDULE_KINDS.values())))
        keep = [k for k in keep if SCHEDULE_KINDS[k] in fams]
    if kinds is not None:
        wanted = _names(kinds, "kinds", list(SCHEDULE_KINDS))
        keep = [k for k in keep if k in wanted]
    if not keep:
        raise ValueError(f"no schedule kind is both in families={families!r} and kinds={kinds!r}")
    table = _by_kind()
    return st.one_of([table[k] for k in keep])


# -- grids -----------------------------------------------------------------------------------------------------
class GridSpec(NamedTuple):
    """A drawn grid and how it was made.

    Attributes
    ----------
    kind : str
        A :data:`pndmkit.grids.GRID_KINDS` key, or :data:`EXPLICIT`.
    steps : int
        Number of steps (``len(times) - 1``).
    options : dict
        The keyword arguments of :func:`pndmkit.grids.make_grid` that give ``times`` (``{}`` for explicit grids).
    times : ndarray of float64
        The grid: strictly decreasing times of the schedule, first the start.
    """

    kind: str
    steps: int
    options: dict
    times: NDArray[np.float64]


def _has_zero(schedule: NoiseSchedule) -> bool:
    return float(schedule.s(schedule.t_min)) == 0.0


def _valid_kinds(schedule: NoiseSchedule) -> tuple[str, ...]:
    discrete = isinstance(schedule, DiscreteVP)
    return tuple(k for k, info in GRID_KINDS.items() if discrete or not info.discrete_only) + (EXPLICIT,)


#: the kinds with a stride and ``offset``: they start where the stride puts them (no ``t_start``)
_LEADING = tuple(k for k, info in GRID_KINDS.items() if info.takes_offset)


def _leading_cap(T: int, kind: str = "leading") -> int:
    """Most steps drawn for ``leading``: it starts low where ``T // steps`` truncates, never up to ``T // 10 + 1``
    (``leading-multistep``, stride ``T // (steps + 1)``: up to ``T // 10``)."""
    return T // 10 + (0 if kind == "leading-multistep" else 1)


@st.composite
def _grid_spec(draw: Any, schedule: NoiseSchedule, kinds: tuple[str, ...], min_steps: int, max_steps: int,
               end_at_data: Optional[bool]) -> GridSpec:
    discrete = isinstance(schedule, DiscreteVP)
    T = schedule.num_train_timesteps if discrete else 0
    options = [k for k in kinds if k not in _LEADING or _leading_cap(T, k) >= min_steps]
    kind = draw(st.sampled_from(options))
    to_zero = _has_zero(schedule) and (draw(st.booleans()) if end_at_data is None else end_at_data)
    steps = draw(st.integers(min_steps, max_steps))
    if discrete and (kind in (*_LEADING, "trailing") or (kind == "linspace" and to_zero)):
        return _discrete_spec(draw, schedule, kind, steps, to_zero)
    # the end: the data (s = 0) or a low positive noise level
    s_lo = float(schedule.s(schedule.t_min))
    if to_zero:
        t1 = schedule.t_min
    elif float(schedule.s(schedule.t_end)) > 0 and draw(st.booleans()):
        t1 = schedule.t_end
    else:
        s_end = draw(st.floats(1e-3, 0.1))
        t1 = schedule.t_min if s_end <= s_lo else float(schedule.t_from_s(s_end))
        if discrete and kind == "linspace" and t1 in (-1.0, 0.0):  # ends there are diffusers' integer spacing
            t1 = float(schedule.t_from_s(0.5 * (float(schedule.s(-1.0)) + float(schedule.s(0.0)))))
    # the start: the schedule's, or mid-trajectory (img2img)
    frac = draw(st.one_of(st.just(1.0), st.floats(0.3, 1.0)))
    t0 = schedule.t_start if frac == 1.0 else t1 + frac * (schedule.t_start - t1)
    if to_zero and kind in ("logsnr", "karras"):  # these stop at the lowest positive level, which t0 must exceed
        s_floor = S_FLOOR if schedule.s_floor is None else schedule.s_floor
        floor = t1 + 1.0 if discrete else float(schedule.t_from_s(s_floor))
        t0 = t0 if t0 > floor else schedule.t_start
    if kind == EXPLICIT:
        times = _explicit(draw, schedule, t0, t1, steps, to_zero)
        return GridSpec(EXPLICIT, steps, {}, check_grid(schedule, times))
    kwargs: dict[str, Any] = {"t_start": t0, "t_end": t1}
    if kind == "karras":
        rho = draw(st.one_of(st.none(), st.floats(2.0, 10.0)))
        if rho is not None:
            kwargs["rho"] = rho
    return GridSpec(kind, steps, kwargs, make_grid(schedule, steps, kind, **kwargs))


def _discrete_spec(draw: Any, schedule: DiscreteVP, kind: str, steps: int, to_zero: bool) -> GridSpec:
    """diffusers' integer spacings: ``leading`` and ``leading-multistep`` (with ``offset``), ``trailing`` and
    ``linspace``, ending at ``t = -1`` (``final_alpha="one"``, ``abar = 1``) or ``t = 0`` (``"first"``)."""
    T = schedule.num_train_timesteps
    kwargs: dict[str, Any] = {"final_alpha": "one" if to_zero else "first"}
    if kind in _LEADING:
        steps = min(steps, _leading_cap(T, kind))
        multistep = kind == "leading-multistep"
        stride = T // (steps + 1 if multistep else steps)
        # ending at t = 0 needs a last index above 0 (leading-multistep's is stride + offset)
        low = 0 if to_zero or multistep else 1
        offset = draw(st.integers(low, max(low, min(2, stride - 1))))
        if offset:
            kwargs["offset"] = offset
    else:
        # n indices 0..top; trailing ending at t = 0 needs n / steps >= 2 (its last index round(n / steps) - 1 > 0)
        per = 2 if (kind == "trailing" and not to_zero) else 1
        steps = max(1, min(steps, T // per))
        # one linspace step sits at t = 0 and starts nowhere else (no t_start)
        top = None if kind == "linspace" and steps == 1 else draw(st.one_of(st.none(), st.integers(per * steps - 1,
                                                                                                   T - 1)))
        if top is not None:
            kwargs["t_start"] = float(top)
    return GridSpec(kind, steps, kwargs, make_grid(schedule, steps, kind, **kwargs))


def _explicit(draw: Any, schedule: NoiseSchedule, t0: float, t1: float, steps: int,
              to_zero: bool) -> NDArray[np.float64]:
    """``steps + 1`` strictly decreasing times from ``t0`` to ``t1``: step lengths in the ratio of numbers in
    [1, 10], equal in ``t`` or in ``log s`` (where ``s > 0``)."""
    weights = np.asarray(draw(st.lists(st.floats(1.0, 10.0), min_size=steps, max_size=steps)), dtype=np.float64)
    if steps == 1:
        return np.array([t0, t1])
    fractions = np.concatenate([[0.0], np.cumsum(weights)[:-1] / weights.sum()])  # steps values, from 0
    if draw(st.sampled_from(["t", "log-s"])) == "t":
        return np.append(t0 - (t0 - t1) * fractions, t1)
    s0 = float(schedule.s(t0))
    if to_zero:  # steps - 1 steps in log s down to a drawn low level s1, then the last step to s = 0
        s1, w = draw(st.floats(1e-3, 0.05)) * min(1.0, s0), weights[:-1]
    else:
        s1, w = float(schedule.s(t1)), weights
    nodes = np.exp(math.log(s0) + (math.log(s1) - math.log(s0)) * np.cumsum(w)[:-1] / w.sum())
    if to_zero:
        nodes = np.append(nodes, s1)
    times = np.concatenate([[t0], np.asarray(schedule.t_from_s(nodes), dtype=np.float64).reshape(-1), [t1]])
    return np.clip(times, schedule.t_min, schedule.t_max)


def grid_specs(schedule: NoiseSchedule, *, kinds: Union[str, Sequence[str], None] = None, min_steps: int = 1,
               max_steps: int = 25, end_at_data: Optional[bool] = None) -> st.SearchStrategy[GridSpec]:
    """Grids of ``schedule`` with how they were made (:class:`GridSpec`); :func:`grids` draws the times alone.

    Every kind of :data:`pndmkit.grids.GRID_KINDS` valid for the schedule is drawn through
    :func:`pndmkit.grids.make_grid`: the continuous kinds over the whole trajectory or from a later start
    (mid-trajectory, a fraction 0.3-1 of the way up in ``t``), ``karras`` with or without ``rho``; on a
    :class:`~pndmkit.schedules.DiscreteVP` also diffusers' integer spacings ``leading`` and
    ``leading-multistep`` (with ``offset``), ``trailing`` and ``linspace`` (from the top or an integer
    ``t_start``). :data:`EXPLICIT` grids are strictly
    decreasing times whose step lengths stand in ratios of at most 10, equal in ``t`` or in ``log s``. Grids end
    at the data (``s = 0``, ``abar = 1``: ``t_min``) where the schedule reaches it, or at a positive level
    (``s`` in [1e-3, 0.1], the schedule's ``t_end``, or ``t = 0`` for a discrete ``final_alpha="first"``).

    Parameters
    ----------
    schedule : NoiseSchedule
        The schedule whose times the grids are in.
    kinds : str or sequence of str, optional
        Grid kinds to draw (default: every kind valid for ``schedule`` and :data:`EXPLICIT`).
    min_steps, max_steps : int
        Range of the number of steps (``leading`` draws at most ``T // 10 + 1``, ``leading-multistep`` at most
        ``T // 10``, where their rule never starts low; ``trailing`` ending at ``t = 0`` at most ``T // 2``).
    end_at_data : bool, optional
        True: every grid ends where ``s = 0``; False: never; None: either (where the schedule has ``s = 0``).
        Classical methods need ``False`` on VP schedules, whose ODE in ``t`` is singular at ``abar = 1``.

    Returns
    -------
    SearchStrategy of GridSpec

    Raises
    ------
    ValueError
        A kind unknown or not valid for ``schedule`` (``leading``/``trailing`` need a DiscreteVP), bad step
        bounds, or ``end_at_data=True`` on a schedule that never reaches ``s = 0`` (VE).
    """
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    valid = _valid_kinds(schedule)
    if kinds is None:
        chosen = valid
    else:
        chosen = _names(kinds, "kinds", tuple(GRID_KINDS) + (EXPLICIT,))
        wrong = [k for k in chosen if k not in valid]
        if wrong:
            raise ValueError(f"grid kinds {wrong} need a DiscreteVP schedule, not {schedule!r}; valid: {valid}")
    if not (isinstance(min_steps, int) and isinstance(max_steps, int) and 1 <= min_steps <= max_steps):
        raise ValueError(f"need integers 1 <= min_steps <= max_steps, got min_steps={min_steps!r}, "
                         f"max_steps={max_steps!r}")
    if end_at_data not in (None, True, False):
        raise ValueError(f"end_at_data must be True, False or None, got {end_at_data!r}")
    if end_at_data and not _has_zero(schedule):
        raise ValueError(f"end_at_data=True: {schedule!r} never reaches s = 0 (its lowest s is "
                         f"{float(schedule.s(schedule.t_min))!r})")
    if len(chosen) == 1 and chosen[0] in _LEADING:
        cap = _leading_cap(schedule.num_train_timesteps, chosen[0])
        if cap < min_steps:
            raise ValueError(f"grid {chosen[0]!r} of {schedule!r} is drawn with at most {cap} steps, fewer than "
                             f"min_steps={min_steps}")
    return _grid_spec(schedule, tuple(chosen), min_steps, max_steps, end_at_data)


def grids(schedule: NoiseSchedule, *, kinds: Union[str, Sequence[str], None] = None, min_steps: int = 1,
          max_steps: int = 25, end_at_data: Optional[bool] = None) -> st.SearchStrategy[NDArray[np.float64]]:
    """Grids of ``schedule`` (float64 arrays of strictly decreasing times, first the start): :func:`grid_specs`'s
    ``times``. Parameters, errors and the kinds drawn as there.

    Examples
    --------
    >>> from hypothesis import find
    >>> from pndmkit.schedules import DiscreteVP
    >>> find(grids(DiscreteVP.linear(), kinds="leading", end_at_data=True), lambda g: len(g) > 3).tolist()
    [666.0, 333.0, 0.0, -1.0]
    """
    return grid_specs(schedule, kinds=kinds, min_steps=min_steps, max_steps=max_steps,
                      end_at_data=end_at_data).map(lambda spec: spec.times)


# -- mixtures, methods, noises ---------------------------------------------------------------------------------
COVARIANCES = ("full", "diagonal", "isotropic")


@st.composite
def _mixture(draw: Any, dim: Optional[int], max_components: int, covariances: tuple[str, ...]) -> GaussianMixture:
    K = draw(st.integers(1, max_components))
    d = draw(st.integers(1, 4)) if dim is None else dim
    unit = st.floats(-1.0, 1.0)
    raw = np.array(draw(st.lists(st.floats(0.1, 1.0), min_size=K, max_size=K)))
    means = np.array(draw(st.lists(st.lists(unit, min_size=d, max_size=d), min_size=K, max_size=K)))
    kind = draw(st.sampled_from(covariances))
    std = st.floats(0.1, 1.0)
    if kind == "full":
        covs = []
        for _ in range(K):
            a = np.array(draw(st.lists(st.lists(unit, min_size=d, max_size=d), min_size=d, max_size=d)))
            covs.append(0.3 * a @ a.T + draw(std) ** 2 * np.eye(d))
        cov_arr = np.stack(covs)
    elif kind == "diagonal":
        cov_arr = np.array(draw(st.lists(st.lists(std, min_size=d, max_size=d), min_size=K, max_size=K))) ** 2
    else:
        cov_arr = np.array(draw(st.lists(std, min_size=K, max_size=K))) ** 2
    return GaussianMixture(raw / raw.sum(), means, cov_arr)


def mixtures(dim: Optional[int] = None, *, max_components: int = 4,
             covariances: Union[str, Sequence[str]] = COVARIANCES) -> st.SearchStrategy[GaussianMixture]:
    """Gaussian mixtures with exact eps, score, density and samples (:class:`pndmkit.problems.GaussianMixture`).

    Well conditioned: weights in proportion to numbers in [0.1, 1], means in [-1, 1]^d, component standard
    deviations in [0.1, 1] (``full``: ``0.3 A A^T + std^2 I`` with ``A`` in [-1, 1]^{d x d}, so every eigenvalue
    lies in [0.01, 1 + 0.3 d]).

    Parameters
    ----------
    dim : int, optional
        Data dimension ``d`` (default: drawn in 1..4).
    max_components : int
        Components ``K`` are drawn in ``1..max_components``.
    covariances : str or sequence of str
        Covariance forms to draw: ``"full"``, ``"diagonal"``, ``"isotropic"``.

    Returns
    -------
    SearchStrategy of GaussianMixture

    Raises
    ------
    ValueError
        ``dim`` or ``max_components`` not a positive integer, or an unknown covariance form.
    """
    if dim is not None and not (isinstance(dim, int) and dim >= 1):
        raise ValueError(f"dim must be a positive integer or None, got {dim!r}")
    if not (isinstance(max_components, int) and max_components >= 1):
        raise ValueError(f"max_components must be a positive integer, got {max_components!r}")
    return _mixture(dim, max_components, _names(covariances, "covariances", COVARIANCES))


def methods(kind: Union[str, Sequence[str], None] = None, *,
            exclude: Sequence[str] = ()) -> st.SearchStrategy[str]:
    """Names of registered methods (:data:`pndmkit.METHODS`), read when a name is drawn: methods registered
    after the strategy was made (plugins, a test's own) are drawn too.

    Parameters
    ----------
    kind : str or sequence of str, optional
        Keep only these kinds: ``"pseudo"``, ``"classical"``, ``"adaptive"`` (:data:`pndmkit.methods.KINDS`);
        ``("pseudo", "classical")`` gives every fixed-step method.
    exclude : sequence of str
        Names never drawn.

    Returns
    -------
    SearchStrategy of str

    Raises
    ------
    ValueError
        An unknown kind (at once), or no registered method left to draw (when drawing).

    Examples
    --------
    >>> from hypothesis import find
    >>> find(methods(kind="classical"), lambda name: True)
    'fon'
    """
    kinds = KINDS if kind is None else _names(kind, "kind", KINDS)
    excluded = frozenset(exclude)

    @st.composite
    def draw_name(draw: Any) -> str:
        names = [name for name, spec in METHODS.items() if spec.kind in kinds and name not in excluded]
        if not names:
            raise ValueError(f"no registered method of kind {kind!r} is left to draw (excluded: {sorted(excluded)})")
        return draw(st.sampled_from(names))

    return draw_name()


def noises(shape: Union[Sequence[int], st.SearchStrategy, None] = (4, 2), *, scale: float = 1.0,
           dtype: str = "float64", array: str = "numpy",
           elements: Optional[st.SearchStrategy[float]] = None) -> st.SearchStrategy[Any]:
    """Start samples ``x_T``: standard normal noise from a drawn seed, times ``scale``.

    Parameters
    ----------
    shape : tuple of int, strategy of tuples, or None
        The array shape; None draws one (1 to 3 axes of 1 to 4 entries).
    scale : float
        Multiplies the noise (``schedule.scale(t_start)`` for the noise of a VE or flow schedule; 1 on VP).
    dtype : str
        A floating dtype name (``"float64"``, ``"float32"``, ...).
    array : {"numpy", "torch"}
        The array type (``"torch"`` needs torch, imported when drawing).
    elements : strategy of float, optional
        Draw each entry from this strategy instead (e.g. ``st.floats(-5, 5)``: edge values and zeros, shrinking
        entry by entry); default: Gaussian entries from a seeded ``numpy.random.Generator`` (shrinking to seed 0).

    Returns
    -------
    SearchStrategy of numpy.ndarray or torch.Tensor

    Raises
    ------
    ValueError
        A bad shape, dtype or array type.
    """
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise ValueError(f"dtype must be a floating dtype name, got {dtype!r}")
    if array not in ("numpy", "torch"):
        raise ValueError(f"array must be 'numpy' or 'torch', got {array!r}")
    if shape is None:
        shapes: st.SearchStrategy = hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)
    elif isinstance(shape, st.SearchStrategy):
        shapes = shape
    else:
        fixed = tuple(shape)
        if not all(isinstance(n, (int, np.integer)) and n >= 1 for n in fixed) or not fixed:
            raise ValueError(f"shape must be a non-empty tuple of positive integers, got {shape!r}")
        shapes = st.just(fixed)
    scale = float(scale)

    @st.composite
    def draw_noise(draw: Any) -> Any:
        shp = draw(shapes)
        if elements is None:
            z = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(shp)
        else:
            z = draw(hnp.arrays(np.float64, shp, elements=elements))
        out = (scale * z).astype(dtype)
        if array == "torch":
            import torch

            return torch.from_numpy(out)
        return out

    return draw_noise()
