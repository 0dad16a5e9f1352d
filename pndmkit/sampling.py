r"""``pndmkit.sample``: run any method on any model, schedule and grid, on numpy arrays or torch tensors.

Timestep conventions differ between codebases; :data:`CONVENTIONS` names the ones pndmkit reproduces for
discrete DDPM schedules (grid spacing, ``steps_offset``, final ``abar`` and the time given to the network):

========================  =========  ======  ============  ==================
convention                spacing    offset  final abar    network time
========================  =========  ======  ============  ==================
``ddim`` (default)        leading    0       1 (t = -1)    t
``diffusers-pndm``        leading    1       abar_0        t
``official-pndm``         leading    1       abar_0        t - 1
========================  =========  ======  ============  ==================

A convention fixes those four settings (``grid``, ``offset``, ``final_alpha``, ``model_time_offset``): passing
one of them with a different value, explicit grid times, or a continuous schedule raises a ``ValueError``
naming both, rather than mixing conventions silently. Every call gives exactly ``steps`` steps or raises.
An adaptive method (``pf``) chooses its own steps between the grid's first and last time: ``steps`` and the
grid options (a grid kind, ``rho``, ``offset``, a convention's spacing) do not shape its run, so given with it
they are checked and then ignored with a warning (:class:`IgnoredStepsWarning`, :class:`IgnoredGridWarning`);
:func:`adaptive_end_times` gives the two times it integrates between.

Examples
--------
>>> import numpy as np
>>> import pndmkit
>>> from pndmkit.schedules import LinearVP
>>> sol = pndmkit.sample(lambda x, t: 0.5 * x, np.ones((2, 3)), schedule=LinearVP(), method="f-pndm", steps=20)
>>> sol.nfe, sol.x.shape, len(sol.times)
(29, (2, 3), 21)
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from functools import lru_cache, partial
from typing import Any, Callable, Sequence, Union

import numpy as np
from numpy.typing import NDArray

from pndmkit._backend import check_array, is_torch, lincomb, outside_graph
from pndmkit._checks import check_bool, check_choice, check_int, check_real, reject_unknown, with_article
from pndmkit.adaptive import AdaptiveIntegrator
from pndmkit.grids import LEADING_SLACK, check_grid, make_grid
from pndmkit.integrator import Integrator
from pndmkit.run import Callback, Solution
from pndmkit.methods import DEFAULT_METHOD, METHODS, MethodSpec, check_method_type, get_method
from pndmkit.models import as_eps, can_shift_time, check_output, converted_from, shift_time, undefined_eps_times
from pndmkit.schedules import DiscreteVP, NoiseSchedule, VPSchedule, same_schedule

__all__ = ["sample", "IgnoredStepsWarning", "ignored_steps_message", "IgnoredGridWarning", "ignored_grid_message",
           "GridStartWarning", "LOW_START_FRACTION",
           "adaptive_end_times", "CONVENTIONS", "resolve_grid", "DEFAULT_STEPS", "PriorScaleWarning",
           "check_start_scale", "check_start",
           "START_SCALE_FACTOR", "START_SCALE_MIN_SIZE", "start_scale_low_factor", "final_denoise",
           "planned_undefined_eps_times", "StartAtRestError"]

#: timestep conventions for discrete schedules: grid options and the network's time offset
CONVENTIONS: dict[str, dict[str, Any]] = {
    "ddim": {"grid": "leading", "offset": 0, "final_alpha": "one", "model_time_offset": 0},
    "diffusers-pndm": {"grid": "leading", "offset": 1, "final_alpha": "first", "model_time_offset": 0},
    "official-pndm": {"grid": "leading", "offset": 1, "final_alpha": "first", "model_time_offset": 1},
}

#: steps of a generated grid when ``steps`` is not given
DEFAULT_STEPS = 50

#: a start warns when its root mean square lies below ``sigma(t) / F`` or above ``F * prior_scale(t)``
START_SCALE_FACTOR = 4.0
#: from this many entries up a start warns below ``sigma(t) / START_SCALE_FACTOR``; unit noise of 8 entries falls
#: below 1/4 in root mean square with probability 1.3e-4, and smaller starts warn only further below
#: (:func:`start_scale_low_factor`), so that unit noise of any size warns as rarely
START_SCALE_MIN_SIZE = 8


@lru_cache(maxsize=None)
def start_scale_low_factor(size: int) -> float:
    """The factor ``F`` below which a start of ``size`` entries warns, ``rms < sigma(t) / F``
    (:func:`check_start_scale`).

    :data:`START_SCALE_FACTOR` (4) from :data:`START_SCALE_MIN_SIZE` (8) entries up. Fewer entries measure a scale
    less surely: the root mean square of ``n`` unit normals falls below ``1 / F`` with the chi-square probability
    ``P(chi2_n < n / F^2)``, 1.3e-4 for 8 entries and ``F = 4`` but 0.2 for one entry. A smaller start gets the
    factor at which that probability is the same 1.3e-4: 4.63 for 7 entries, 5.62 for 6, 11.0 for 4, 21.8 for 3,
    86.6 for 2 and 5983 for 1, so unit noise given to ``EDM()`` (80 times too small) warns from 3 entries up, at 2
    entries only when their root mean square falls below 80 / 86.6 (probability 1 - exp(-0.85), about 0.57), and at
    1 entry never. The upper bound stays ``4 prior_scale(t)`` for every size:
    unit noise exceeds it with probability below 6.4e-5 even for one entry.

    Raises
    ------
    ValueError
        ``size`` below 1.
    """
    size = check_int(size, "size", minimum=1)
    if size >= START_SCALE_MIN_SIZE:
        return START_SCALE_FACTOR
    from scipy.special import gammainc, gammaincinv

    n0 = START_SCALE_MIN_SIZE
    chance = gammainc(n0 / 2, n0 / (2 * START_SCALE_FACTOR**2))  # P(chi2_8 < 8 / 16)
    return math.sqrt(size / (2 * float(gammaincinv(size / 2, chance))))


class IgnoredStepsWarning(UserWarning):
    """``steps`` given to an adaptive method, which chooses its own steps (:func:`sample` and ``pndmkit sample
    --steps`` ignore it, saying so, and run as without it)."""


def ignored_steps_message(steps: Any, method: str) -> str:
    """The :class:`IgnoredStepsWarning` text for ``steps`` given to the adaptive ``method`` (one policy for the
    API and the command line: the run goes ahead without it, and records ``steps`` as unset)."""
    return (f"steps={steps!r} is ignored by the adaptive method {method!r}: it chooses its own steps (its NFE "
            f"follows its tolerances); leave steps (--steps) unset")


class PriorScaleWarning(UserWarning):
    """The start ``x_T`` of a sampler has a scale that ``x_t`` cannot have at its time (unit noise given to an
    EDM or VE schedule, whose start is ``sigma_max`` times larger): see :func:`check_start_scale`."""


#: a torch start that is not float64 is summed in float32 by blocks of this many entries, then across the blocks
#: (:func:`_blocked_norm`)
_START_NORM_BLOCK = 1024
#: a root mean square below this, summed in float32, may have lost entries whose squares underflow (below about
#: 1e-19): the start is measured again scaled by its largest entry
_FLOAT32_RMS_FLOOR = 1e-18


def _blocked_norm(v: Any) -> Any:
    """The 2-norm of the torch tensor ``v``, a 0-d float32 tensor on ``v``'s device, summed in float32 by blocks:
    the norms of blocks of :data:`_START_NORM_BLOCK` entries (the last one shorter), then the norm of those norms,
    in blocks again while there are more than a block of them. A single float32 reduction of ``n`` entries is not
    pairwise on the CPU and drifts with ``n`` (for unit normals -1e-5 at 2**20 entries, -5e-3 at 2**26, -1.4e-2
    at 2**27; float16 and bfloat16 entries, whose squares round alike, drift by 1e-6 to 3e-6 over 65536); by
    blocks of 1024 it stays within 3e-7 of the float64 norm at those sizes and dtypes, as fast, and no float64
    tensor is made (Apple's MPS has none)."""
    import torch

    flat = v.reshape(-1)
    size = int(flat.numel())
    if size <= _START_NORM_BLOCK:
        return torch.linalg.vector_norm(flat, dtype=torch.float32)
    whole = size - size % _START_NORM_BLOCK
    norms = torch.linalg.vector_norm(flat[:whole].view(-1, _START_NORM_BLOCK), dim=1, dtype=torch.float32)
    if whole < size:
        norms = torch.cat([norms, torch.linalg.vector_norm(flat[whole:], dtype=torch.float32).reshape(1)])
    return _blocked_norm(norms)


def _start_rms(x: Any) -> float | None:
    """The root mean square of a start ``x`` as :func:`check_start_scale` measures it, ``None`` for an empty start
    and for a torch tensor on the ``meta`` device (no device synchronisation then; one otherwise).

    A numpy start and a float64 torch start are summed in float64. A torch start of another dtype (float32,
    float16, bfloat16) is summed in float32 by blocks (:func:`_blocked_norm`), within about 1e-6 of the float64
    measure at any size, and makes no float64 tensor on its device (Apple's MPS has none; float64 is slow on
    GPUs).

    NaN or infinite exactly when an entry is: where the sum of squares overflows (float64 entries above about
    1e154; float32 or bfloat16 entries above about 1e19, squared in float32) the measure is taken again as
    ``max|x| * rms(x / max|x|)``, a second synchronisation on that path only. A float32 sum whose root mean
    square is below 1e-18, where squares of entries below about 1e-19 underflow, is measured again the same way
    (0 when every entry is)."""
    size = int(x.numel()) if is_torch(x) else int(np.size(x))
    if size == 0 or (is_torch(x) and x.device.type == "meta"):
        return None
    floor = 0.0  # below this root mean square the sum may have lost underflowing squares
    if is_torch(x):
        import torch

        x = x.detach()
        wide = x.dtype == torch.float64

        def rms_of(v: Any) -> float:
            norm = torch.linalg.vector_norm(v, dtype=torch.float64) if wide else _blocked_norm(v)
            return float(norm) / math.sqrt(size)

        def largest() -> float:  # NaN if an entry is (amax propagates NaN), inf if one is
            return float(x.abs().amax())

        def scaled(top: float) -> Any:  # x / top in the dtype it is summed in
            return x / top if wide or x.dtype == torch.float32 else x.to(torch.float32).div_(top)

        if not wide:
            floor = _FLOAT32_RMS_FLOOR
    else:
        def rms_of(v: Any) -> float:
            with np.errstate(over="ignore"):  # an overflowing square is measured again below
                return math.sqrt(float(np.mean(np.square(v, dtype=np.float64))))

        def largest() -> float:  # NaN if an entry is (max propagates NaN), inf if one is
            return float(np.max(np.abs(x)))

        def scaled(top: float) -> Any:  # only float64 entries (or wider) overflow, so x / top keeps their dtype
            return x / top
    rms = rms_of(x)
    if math.isfinite(rms) and rms >= floor:
        return rms
    top = largest()
    if not math.isfinite(top):
        return rms
    return top * rms_of(scaled(top)) if top > 0 else 0.0


def check_start(x: Any, name: str = "x_T") -> float | None:
    """Check a sampler's start as ``check_array(x, name, finite=True)`` does, and measure its root mean square for
    :func:`check_start_scale`, with one device synchronisation for a torch tensor on a GPU instead of two.

    The measure is finite exactly when every entry is (a NaN or infinite entry makes it NaN or infinite; a sum of
    squares that overflows is measured again, scaled by the largest entry, which is finite only when
    every entry is), so a finite measure proves the finiteness; otherwise the full check runs (a second
    synchronisation, only on the way to its error) and raises its own message.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        The start (floating dtype).
    name : str
        How error messages name ``x``.

    Returns
    -------
    float or None
        The root mean square (summed in float64, or for a torch start that is not float64 in float32 by blocks,
        as :func:`check_start_scale` measures it), to pass to it as ``rms``;
        ``None`` when not measured (an empty start, a ``meta`` tensor).

    Raises
    ------
    TypeError
        ``x`` is not a floating numpy array or torch tensor.
    ValueError
        ``x`` is a 0-d numpy array, or has a NaN or infinite entry (the message names ``name``, the count and the
        first such index).
    """
    check_array(x, name)
    rms = _start_rms(x)
    if rms is None or not math.isfinite(rms):
        check_array(x, name, finite=True)
    return rms


def check_start_scale(x: Any, schedule: NoiseSchedule, t: float, *, name: str = "x_T", fix: str | None = None,
                      stacklevel: int = 1, rms: float | None = None) -> float | None:
    """Warn (:class:`PriorScaleWarning`) when the start ``x`` at time ``t`` is off scale by a large factor.

    ``x_t = alpha x0 + sigma eps`` has a root mean square of at least ``sigma(t)`` whatever the data
    (:meth:`~pndmkit.schedules.NoiseSchedule.prior_scale`); a start below ``sigma(t) / F`` or above
    ``F * prior_scale(t)`` (data of root mean square up to ``F``), ``F =`` :data:`START_SCALE_FACTOR`, is not
    a sample of ``x_t``: typically ``N(0, I)`` noise given to a schedule whose start is larger (EDM, VE), where
    the sampler would silently shrink every sample by ``prior_scale(t)``. A start of fewer than 8 entries
    measures its scale less surely and warns only below ``sigma(t) / F_n`` (:func:`start_scale_low_factor`: 5.62
    for 6 entries, 86.6 for 2), where unit noise of its size falls as rarely as 8 entries fall below
    ``sigma(t) / 4``. Empty starts and torch tensors on the ``meta`` device are not measured.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        The start, in the schedule's own variable (floating dtype).
    schedule : NoiseSchedule
    t : float
        The start's time, in the schedule's units.
    name : str
        How the message names ``x``.
    fix : str, optional
        The message's advice (default: multiply unit noise by ``schedule.prior_scale(t)``).
    stacklevel : int
        Whose line the warning shows: 1 the caller of this function, 2 its caller, ...
    rms : float, optional
        ``x``'s root mean square measured already (what :func:`check_start` returns), so that it is not measured
        again; ``None`` measures it here.

    Returns
    -------
    float or None
        The root mean square (measuring it is one device synchronisation for a torch tensor), ``None`` if not
        measured.
    """
    if rms is None:
        rms = _start_rms(x)
        if rms is None:
            return None
    t = float(t)
    size = int(x.numel()) if is_torch(x) else int(np.size(x))
    sigma, scale, factor = float(schedule.sigma(t)), schedule.prior_scale(t), START_SCALE_FACTOR
    low = start_scale_low_factor(size) if size else factor
    if sigma / low <= rms <= factor * scale:
        return rms
    advice = fix or (f"pass x_T in the schedule's own variable x_t = alpha x0 + sigma eps: unit noise times "
                     f"schedule.prior_scale(t) = {scale:.6g} (pndmkit never rescales it)")
    where = f"{name} has root mean square {rms:.4g} at t={t:g} of {schedule!r}, "
    if rms < sigma / low:
        times = f"{sigma / rms:.3g} times" if rms > 0 else "infinitely far"
        what = (f"{times} below sigma(t) = {sigma:.6g}, the least root mean square x_t has there "
                f"(a start from noise has {scale:.6g})")
    else:
        what = f"{rms / scale:.3g} times above the root mean square {scale:.6g} of x_t there for unit-variance data"
    warnings.warn(where + what + "; " + advice, PriorScaleWarning, stacklevel=stacklevel + 1)
    return rms


Method = Union[str, MethodSpec, Integrator, AdaptiveIntegrator]
Grid = Union[str, Sequence[float], NDArray[np.float64], None]


class StartAtRestError(ValueError):
    """:func:`sample` refuses a run from ``alpha = 0`` (pure noise, ``t = 1`` of flow matching) that its method and
    prediction cannot take, before any model call (a ``ValueError``).

    The message is one line that ends by suggesting a later start, ``t_start=... of pndmkit.sample``; a caller
    that offers the start under another name (the ``--t-start`` option of ``pndmkit sample``) words the same
    refusal with :meth:`advising`.

    Attributes
    ----------
    reason : str
        The message up to the suggestion (what cannot start where, why, which methods run there).
    t_start : float
        The suggested start: the time where ``sigma / alpha = 1000`` (the schedule's own units).
    """

    def __init__(self, reason: str, t_start: float) -> None:
        self.reason, self.t_start = reason, float(t_start)
        super().__init__(self.advising("t_start={} of pndmkit.sample"))

    def advising(self, option: str) -> str:
        """The message with the start suggested as ``option`` (a format string: ``"--t-start {}"``), filled with
        :attr:`t_start` to 4 significant digits."""
        return f"{self.reason} ({option.format(f'{self.t_start:.4g}')}, where sigma/alpha = 1000)"

    def __reduce__(self):  # picklable despite the two-argument constructor
        return (type(self), (self.reason, self.t_start))


class GridStartWarning(UserWarning):
    """A grid that :func:`sample` generated (no explicit times, no ``t_start``) starts so close to the data end
    that the run leaves nearly all of ``x_T``'s noise: one ``leading`` step of a :class:`~pndmkit.schedules.DiscreteVP`
    starts at ``t = offset`` (diffusers' rule, kept for parity: ``[0, -1]`` by default), where ``abar`` is almost
    1, so the sampler treats unit noise as nearly clean data and returns it almost unchanged. The message gives the
    grid and the fix, ``grid='trailing'`` (one step from ``T - 1``). Explicit grid times never warn."""


#: a generated DiscreteVP grid warns (:class:`GridStartWarning`) when it starts in this lowest fraction of the table
#: (the slack the ``leading`` spacing is allowed below its top, :data:`pndmkit.grids.LEADING_SLACK`)
LOW_START_FRACTION = LEADING_SLACK


def _warn_low_start(schedule: NoiseSchedule, times: NDArray[np.float64], grid: str | None,
                    convention: str | None) -> None:
    """:class:`GridStartWarning` for a generated ``DiscreteVP`` grid that starts in the lowest
    :data:`LOW_START_FRACTION` of the table (one ``leading`` step: ``[offset, end]``)."""
    if not isinstance(schedule, DiscreteVP):
        return  # continuous schedules start their generated grids at t_start, the top
    T, t0 = schedule.num_train_timesteps, float(times[0])
    if t0 >= LOW_START_FRACTION * T:
        return
    steps = times.size - 1
    if convention is not None:
        source = f"convention={convention!r} lays out diffusers' 'leading' grid, which"
    elif grid is not None:
        source = f"grid {grid!r} is diffusers' spacing, which"
    else:
        source = "the default grid of a DiscreteVP is diffusers' 'leading' spacing, which"
    fix = "leave convention unset and pass grid='trailing'" if convention is not None else "pass grid='trailing'"
    warnings.warn(f"the generated grid with steps={steps} is {times.tolist()}: it starts at t={t0:g}, where abar = "
                  f"{float(schedule.abar(t0)):.4g}, so the run takes x_T for nearly noise-free data and returns it "
                  f"almost unchanged ({source} puts a single step at t = offset, diffusers' steps_offset); {fix} "
                  f"(--grid trailing) or 'linspace', which start at t={T - 1}, or use more steps",
                  GridStartWarning, stacklevel=3)


class IgnoredGridWarning(UserWarning):
    """A grid kind, ``rho``, ``offset`` or explicit interior times given to an adaptive method, which integrates
    between the grid's end times only (:func:`adaptive_end_times`) with steps it chooses itself (:func:`sample` and ``pndmkit sample
    --grid`` ignore them, saying so, and run as without them)."""


def ignored_grid_message(options: dict[str, Any], method: str) -> str:
    """The :class:`IgnoredGridWarning` text for the grid ``options`` (name to value) given to the adaptive
    ``method`` (one policy for the API and the command line: the run goes ahead without them, and records the
    grid as unset)."""
    given = ", ".join(f"{name}={value!r}" for name, value in options.items())
    return (f"{given} {'is' if len(options) == 1 else 'are'} ignored by the adaptive method {method!r}: it "
            f"integrates from the grid's first to its last time (t_start, t_end) with steps it chooses itself, so "
            f"a grid kind and its options do not change its run; leave them (--grid) unset")


def _check_grid_options(grid: str | None, rho: Any, offset: Any) -> dict[str, Any]:
    """Check the grid options an adaptive method ignores (a bad value is an error whatever the method) and
    return those given."""
    from pndmkit.grids import GRIDS

    given = {}
    if grid is not None:
        given["grid"] = check_choice(grid, "grid kind", GRIDS)
    if rho is not None:
        if check_real(rho, "rho") <= 0:
            raise ValueError(f"rho must be > 0, got {rho}")
        given["rho"] = rho
    if offset is not None:
        given["offset"] = check_int(offset, "offset", minimum=0)
    return given


@outside_graph  # host-side numpy: eager under torch.compile
def adaptive_end_times(schedule: NoiseSchedule, *, t_start: float | None = None, t_end: float | None = None,
                       final_alpha: str | None = None) -> NDArray[np.float64]:
    """The first and last time, ``[t0, t1]``, that an adaptive method integrates between when :func:`sample` is
    given no explicit grid times.

    ``t0`` is ``t_start``, else the start of the whole trajectory (the schedule's ``t_start``; ``T - 1`` on a
    :class:`~pndmkit.schedules.DiscreteVP`); ``t1`` is ``t_end``, else the one ``final_alpha`` implies
    (DiscreteVP: ``-1`` for ``"one"``, ``0`` for ``"first"``), else the schedule's ``t_end``. Times are in the
    schedule's units (training index for a DiscreteVP). Raises ``TypeError``/``ValueError`` as
    :func:`~pndmkit.grids.make_grid` does for these arguments.
    """
    kind = None if schedule.continuous else "trailing"
    times = make_grid(schedule, 1, kind, t_start=t_start, t_end=t_end, final_alpha=final_alpha)
    return times[[0, -1]]


@outside_graph  # host-side numpy: eager under torch.compile
def resolve_grid(schedule: NoiseSchedule, steps: int | None, grid: Grid, *, t_start: float | None = None,
                 t_end: float | None = None, rho: float | None = None, final_alpha: str | None = None,
                 offset: int | None = None) -> NDArray[np.float64]:
    """Turn ``grid`` (``None``, a kind name of :func:`~pndmkit.grids.make_grid`, or explicit times) into times.

    A generated grid has exactly ``steps`` steps (:data:`DEFAULT_STEPS` if ``None``). Explicit times are
    checked by :func:`~pndmkit.grids.check_grid`; ``steps``, ``t_start`` and ``t_end`` may accompany them
    only where they agree with them, and the options of generated grids (``rho``, ``final_alpha``,
    ``offset``) may not.

    Raises
    ------
    TypeError
        ``steps`` is not an integer (a grid kind given as ``steps``: the arguments are ``(schedule, steps,
        grid)``), or ``grid`` is neither a kind name nor a sequence of times; each message names the parameter.
    ValueError
        As :func:`~pndmkit.grids.make_grid` and :func:`~pndmkit.grids.check_grid`, and for options that contradict
        explicit times.
    """
    if steps is not None and not isinstance(steps, bool) and not isinstance(steps, (int, np.integer)):
        from pndmkit.grids import GRIDS

        hint = (f"; {steps!r} is a grid kind, which goes to grid= (the arguments are schedule, steps, grid)"
                if isinstance(steps, str) and steps in GRIDS else "")
        raise TypeError(f"steps must be an integer >= 1 (the number of steps), got {type(steps).__name__} "
                        f"{steps!r}{hint}")
    if grid is not None and not isinstance(grid, str) and np.ndim(grid) == 0:
        from pndmkit.grids import GRIDS

        shown = repr(grid) if len(repr(grid)) <= 80 else repr(grid)[:76] + " ..."
        hint = (f"; for an optimisation result pass its times, grid={type(grid).__name__.lower()}.grid"
                if hasattr(grid, "grid") else "")
        raise TypeError(f"grid must be a grid kind ({', '.join(GRIDS)}) or a 1-D sequence of decreasing times, got "
                        f"{type(grid).__name__} {shown}{hint}")
    if grid is None or isinstance(grid, str):
        return make_grid(schedule, DEFAULT_STEPS if steps is None else steps, grid, t_start=t_start, t_end=t_end,
                         rho=rho, final_alpha=final_alpha, offset=offset)
    times = check_grid(schedule, grid)
    given = [n for n, v in (("rho", rho), ("final_alpha", final_alpha), ("offset", offset)) if v is not None]
    if given:
        raise ValueError(f"{', '.join(given)} shape generated grids and cannot be combined with explicit grid times")
    for name, value, have in (("t_start", t_start, times[0]), ("t_end", t_end, times[-1])):
        if value is not None and check_real(value, name) != have:
            raise ValueError(f"{name}={value} contradicts the explicit grid, which runs from {times[0]} to "
                             f"{times[-1]}; leave {name} unset")
    if steps is not None and check_int(steps, "steps", minimum=1) != times.size - 1:
        raise ValueError(f"steps={steps} contradicts the explicit grid of {times.size} times ({times.size - 1} "
                         f"steps); leave steps unset")
    return times


def _apply_convention(convention: str, schedule: NoiseSchedule, given: dict[str, Any]) -> dict[str, Any]:
    """The convention's settings, after checking that no explicit argument contradicts them."""
    check_choice(convention, "convention", CONVENTIONS)
    preset = CONVENTIONS[convention]
    if not isinstance(schedule, DiscreteVP):
        raise ValueError(f"convention={convention!r} fixes training-index conventions of DiscreteVP schedules; "
                         f"it does not apply to schedule={schedule!r}")
    grid = given["grid"]
    if grid is not None and not isinstance(grid, str):
        raise ValueError(f"convention={convention!r} generates its own grid and cannot be combined with explicit "
                         f"grid times; for its network time shift pass model_time_offset="
                         f"{preset['model_time_offset']} instead")
    for name, value in preset.items():
        if given[name] is not None and given[name] != value:
            raise ValueError(f"convention={convention!r} sets {name}={value!r}, which contradicts {name}="
                             f"{given[name]!r}; pass either the convention or {name}")
    return dict(preset)


def sample(model: Callable[[Any, float], Any], x_T: Any, *, schedule: NoiseSchedule,
           method: Method = DEFAULT_METHOD, steps: int | None = None, grid: Grid = None, prediction: str = "eps", t_start: float | None = None,
           t_end: float | None = None, convention: str | None = None, model_time_offset: float | None = None,
           rho: float | None = None, final_alpha: str | None = None, offset: int | None = None,
           callback: Callback | None = None, check_finite: bool = False, model_kwargs: dict[str, Any] | None = None,
           denoise: bool = False, **unknown: Any) -> Solution:
    """Integrate the probability-flow ODE from ``x_T`` with a pseudo (or classical) numerical method.

    Every argument is checked before the model is called: a wrong type, a non-finite value, options that
    contradict each other or an unknown keyword raise at once, naming the parameters.

    Parameters
    ----------
    model : callable
        ``model(x, t)`` returning a prediction of the kind ``prediction``, same shape as ``x``; ``t`` is a
        Python float in the schedule's units (training index for :class:`~pndmkit.schedules.DiscreteVP`).
    x_T : numpy.ndarray or torch.Tensor
        Initial sample at the first time ``t`` of the grid, in the schedule's own variable
        ``x_t = alpha x0 + sigma eps``; floating dtype, finite entries. ``sample`` never rescales it: a start
        from noise is ``schedule.prior_scale(t) * z`` with ``z ~ N(0, I)``
        (:meth:`~pndmkit.schedules.NoiseSchedule.prior_scale`, diffusers' ``init_noise_sigma``), which is
        ``N(0, I)`` itself on variance-preserving schedules but ``sqrt(1 + sigma_max^2) z`` on
        :class:`~pndmkit.schedules.EDM` and :class:`~pndmkit.schedules.VE`. A start whose root mean square is
        far off (below ``sigma(t) / 4`` or above ``4 prior_scale(t)``; a start of fewer than 8 entries only
        further below, :func:`start_scale_low_factor`) warns with a :class:`PriorScaleWarning`
        (:func:`check_start_scale`).
    schedule : NoiseSchedule
        The noise schedule the model was trained with. Always required: the grid is laid out on it.
    method : str, MethodSpec or Integrator
        A name in :data:`pndmkit.METHODS` or a hand-built integrator; default
        :data:`pndmkit.methods.DEFAULT_METHOD` (``"ipndm"``: the README's "Default method" says why). A built
        method (``Integrator``, ``AdaptiveIntegrator``) must be built on ``schedule``
        (:func:`pndmkit.schedules.same_schedule`: an equal schedule built separately will do), or ``ValueError``
        naming both; anything else raises ``TypeError``.
    steps : int, optional
        Number of steps ``N`` of a generated grid (default :data:`DEFAULT_STEPS`). The result has exactly
        ``N`` steps, or the call raises. With explicit grid times leave it unset (or equal to their steps).
        An adaptive method (``pf``) chooses its own steps: ``steps`` with it is checked (an integer >= 1,
        or ``TypeError``/``ValueError`` naming it) and then ignored with an :class:`IgnoredStepsWarning`; it
        uses only the first and last time of the grid, and without explicit times integrates the whole
        trajectory (a ``DiscreteVP`` from ``T - 1``, or from ``t_start``: :func:`adaptive_end_times`).
    grid : str or sequence of float, optional
        A grid kind (:data:`pndmkit.grids.GRIDS`) or explicit decreasing times (first = start). An adaptive
        method uses only the end times: a grid kind (and ``rho``, ``offset``) given with it is checked as for
        any method (the same errors) and then ignored with an :class:`IgnoredGridWarning`.
    prediction : {"eps", "x0", "v", "score", "flow"}
        What the model predicts; converted to ``eps`` before any combination. A model that already returns
        ``eps`` (:func:`pndmkit.models.guided`, :func:`pndmkit.as_eps`, :class:`pndmkit.nn.NetworkModel`:
        :func:`pndmkit.models.converted_from`) takes the default ``"eps"``; another value raises ``ValueError``
        naming ``prediction`` (it would convert twice). A grid that starts where ``alpha = 0`` (flow matching
        from pure noise, ``FlowMatching(t_max=1)`` at ``t = 1``) is the exception: ``eps = x`` carries no
        information on ``x0`` there, so the run is told the outputs themselves and each step converts them to
        its own gradient (:meth:`pndmkit.transfers.Transfer.gradient_of`: a velocity ``u`` gives
        ``x0 = x - t u`` and ``dx/dt = u``; an ``x0`` output gives both too), as the diffusers scheduler's run
        is; a wrapper that converts its network's output to ``eps`` itself (:func:`pndmkit.as_eps`,
        :func:`pndmkit.models.guided`, :class:`pndmkit.nn.NetworkModel`) is asked for it unconverted
        (``unconverted()``).
    t_start, t_end : float, optional
        Start and end times of a generated grid: start mid-trajectory by passing ``t_start`` and ``x_t``
        (on a DiscreteVP the default grid is then ``linspace`` over the indices ``0..t_start``).
    convention : {"ddim", "diffusers-pndm", "official-pndm"}, optional
        Timestep convention of a DiscreteVP (:data:`CONVENTIONS`): it sets ``grid``, ``offset``,
        ``final_alpha`` and ``model_time_offset``, so those may be passed with it only if they agree. With an
        adaptive method only its end (``final_alpha``) and ``model_time_offset`` apply.
    model_time_offset : float, optional
        The network is called at ``t - model_time_offset`` (1 for the official PNDM code); an ``x0``, ``v`` or
        ``flow`` output still converts to ``eps`` at the sample's own level ``t``, also inside pndmkit's wrappers
        (:func:`pndmkit.models.shift_time`).
    rho, final_alpha, offset : optional
        Grid options of :func:`~pndmkit.grids.make_grid` (``karras`` exponent; DiscreteVP end ``"one"`` or
        ``"first"``; ``leading`` steps offset). An option the grid kind would ignore raises, for an adaptive
        method too, which then ignores ``rho`` and ``offset`` with an :class:`IgnoredGridWarning`.
    callback : callable, optional
        ``callback(t, x, e)`` after every step (``e`` the gradient the step used, ``None`` after a corrector
        step); an adaptive method calls it once, at the end, with ``e = None``.
    check_finite : bool
        Raise ``FloatingPointError`` on a non-finite model output (synchronises GPU devices each call).
    model_kwargs : dict, optional
        Keyword arguments of every model call, ``model(x, t, **model_kwargs)`` (conditioning; see
        :func:`pndmkit.models.guided`).
    denoise : bool
        After the last step, replace ``x`` by the model's data estimate there, ``x0 = (x - sigma eps) / alpha``
        at the grid's last time (one more evaluation; the final denoising step of score-SDE). Grids that end
        where ``sigma > 0`` leave that much noise in the sample: the default grids of ``LinearVP``/``CosineVP``
        end at ``t = 1e-3`` (``sigma`` about 0.01-0.05) and ``VE`` never reaches ``sigma = 0``. Where the grid
        already ends at ``sigma = 0`` (every default ``DiscreteVP`` grid, ``EDM``, flow matching) the sample is
        the data estimate already and ``denoise`` adds nothing (no evaluation).
    **unknown
        Not accepted: any other keyword raises ``TypeError`` naming it and the closest parameter.

    Returns
    -------
    Solution
        ``.x`` the final sample, ``.nfe`` model evaluations, ``.times`` the grid.

    Raises
    ------
    ValueError
        Besides bad arguments: a built method whose own schedule is not ``schedule`` (its steps would use
        another ``alpha`` and ``sigma`` than the grid); a fixed-step method that would evaluate an ``x0`` model
        where ``sigma = 0`` (the
        stages of a last step to ``t = -1`` of a default DiscreteVP grid: ``pie``, ``prk``, ``rk4``, ``pec-s``,
        ``pece-s``, ``f-pndm`` below 4 steps, ...) or a ``flow`` model where ``dx/dt`` is singular. The
        evaluation times are known before the run (:meth:`pndmkit.Integrator.evaluation_times`), so this is
        refused before the first model call, naming the method, the prediction, the grid's end and the methods
        that run on that grid. An adaptive method (``pf``) chooses its times as it goes and is not checked.
        From ``alpha = 0`` a method that cannot take the prediction there is refused likewise, in one line naming
        the method, the prediction, why and the methods that run: an ``eps`` (or ``score``) model always (it says
        nothing about ``x0`` there), the eps-form methods (``plms``, ``pie``, ``ipndm``, ``deis-3``, ...) and
        ``fon-official`` with any prediction, and the adaptive ``pf``. ``ddim``, ``euler``, ``rk4``, ``fon``,
        the DPM-Solver++ and UniPC methods and the ``-x0`` methods run on a ``flow`` model.

    Warns
    -----
    PriorScaleWarning
        ``x_T`` off scale for its time by more than a factor 4 (above).
    IgnoredStepsWarning, IgnoredGridWarning
        ``steps``, or a grid kind, ``rho`` or ``offset``, given to an adaptive method (above).

    Notes
    -----
    On a DiscreteVP grid that ends at ``t = -1`` (the default ``ddim`` convention), a method with a stage at the
    end of a step (``pie``, ``prk``, ``rk4``, ``pec-s``, ``pece-s``, ...; not the default) calls the model at
    ``t = -1`` (and ``-0.5``), below the training indices ``0 .. T - 1``. ``sample`` does not warn about it, unlike
    the diffusers scheduler's ``TrainingRangeWarning`` (which always drives a trained network): its model may be
    closed-form (:mod:`pndmkit.problems`), exact there. :meth:`pndmkit.Integrator.evaluation_times` lists the
    times before a run; ``convention="diffusers-pndm"`` ends the grid at ``t = 0``.

    ``sample`` follows torch's grad mode: a model with parameters called under the default mode records the
    graph of every step (to differentiate through the sampler). Sample under ``torch.no_grad()`` or
    ``torch.inference_mode()`` otherwise; :class:`pndmkit.nn.NetworkModel` calls its network under
    ``no_grad`` itself.
    """
    reject_unknown("sample", unknown, _PARAMETERS)
    if not callable(model):
        raise TypeError(f"model must be callable as model(x, t), got {type(model).__name__}")
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule (LinearVP, CosineVP, DiscreteVP, EDM, VE, FlowMatching, "
                        f"CustomSchedule), got "
                        f"{type(schedule).__name__}")
    measured_rms = check_start(x_T, "x_T")  # finite entries and the scale measured with one device sync
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(t, x, e), got {type(callback).__name__}")
    check_bool(check_finite, "check_finite")
    settings = {"grid": grid, "offset": offset, "final_alpha": final_alpha, "model_time_offset": model_time_offset}
    if convention is not None:
        settings = _apply_convention(convention, schedule, settings)
    shift = 0.0 if settings["model_time_offset"] is None else check_real(settings["model_time_offset"],
                                                                         "model_time_offset")
    check_method_type(method)
    if isinstance(method, (Integrator, AdaptiveIntegrator)):
        _check_own_schedule(method, schedule)
        integrator = method
    else:
        spec = method if isinstance(method, MethodSpec) else get_method(method)
        integrator = built(spec, schedule)
    if steps is not None:  # a bad value is an error whatever the method, ignored or not
        check_int(steps, "steps", minimum=1)
    grid_request = settings["grid"]
    adaptive_range = integrator.kind == "adaptive" and (grid_request is None or isinstance(grid_request, str))
    if adaptive_range:
        name = integrator.name or "given"
        if steps is not None:
            warnings.warn(ignored_steps_message(steps, name), IgnoredStepsWarning, stacklevel=2)
        ignored = _check_grid_options(grid, rho, offset)  # the caller's own, not a convention's
        if ignored:
            # checked together as for every other method (rho on a quadratic grid is an error), then ignored
            resolve_grid(schedule, DEFAULT_STEPS if steps is None else steps, grid, t_start=t_start, t_end=t_end,
                         rho=rho, final_alpha=settings["final_alpha"], offset=offset)
            warnings.warn(ignored_grid_message(ignored, name), IgnoredGridWarning, stacklevel=2)
    elif integrator.kind == "adaptive":  # explicit times: the run goes from the first to the last of them
        name = integrator.name or "given"
        if steps is not None:
            warnings.warn(ignored_steps_message(steps, name), IgnoredStepsWarning, stacklevel=2)
        interior = int(np.size(grid_request)) - 2
        if interior > 0:
            warnings.warn(f"the {interior} interior time{'s' if interior > 1 else ''} of grid "
                          f"{'are' if interior > 1 else 'is'} ignored by the adaptive method {name!r}: it integrates "
                          f"from grid[0] to grid[-1] with steps it chooses itself; give the two end times only",
                          IgnoredGridWarning, stacklevel=2)
    try:
        if adaptive_range:
            # only the end times matter: the whole trajectory (from T - 1 on a DiscreteVP, whatever a spacing of
            # some step count would start at) or from t_start, to t_end or final_alpha's end
            times = adaptive_end_times(schedule, t_start=t_start, t_end=t_end, final_alpha=settings["final_alpha"])
        else:
            times = resolve_grid(schedule, steps, grid_request, t_start=t_start, t_end=t_end, rho=rho,
                                 final_alpha=settings["final_alpha"], offset=settings["offset"])
    except ValueError as exc:
        if convention is None:
            raise
        raise ValueError(f"convention={convention!r} (grid 'leading', offset={settings['offset']}, final_alpha="
                         f"{settings['final_alpha']!r}): {exc}") from exc
    if not adaptive_range and (grid_request is None or isinstance(grid_request, str)) and t_start is None:
        _warn_low_start(schedule, times, grid, convention)  # explicit grid times are the caller's own choice
    # unit noise on EDM / VE, say (measured above)
    check_start_scale(x_T, schedule, float(times[0]), stacklevel=2, rms=measured_rms)
    if model_kwargs is not None:  # conditioning, e.g. for pndmkit.models.guided
        if not isinstance(model_kwargs, dict):
            raise TypeError(f"model_kwargs must be a dict of keyword arguments for model, got "
                            f"{type(model_kwargs).__name__}")
        model = partial(model, **model_kwargs)
    check_bool(denoise, "denoise")
    eps_model = as_eps(model, schedule, prediction)  # checks the model against the prediction and the schedule
    if shift:
        # the network is told t - shift, but the sample is at the level of t: an x0, v or flow output converts
        # to eps there; pndmkit's wrappers rebuild themselves so (with_time_offset), a foreign one cannot
        if not can_shift_time(model):
            inner = converted_from(model)
            raise ValueError(f"model_time_offset={shift:g} tells the network t - {shift:g}, but the model converts "
                             f"its network's {inner!r} prediction to eps itself, at the time it is told, not at the "
                             f"sample's level t, and offers no with_time_offset(offset): give the network "
                             f"unwrapped with prediction={inner!r}, or use a convention without a network time "
                             f"offset")
        eps_model = as_eps(shift_time(model, shift), schedule, prediction)
    if not math.isfinite(float(schedule.s(float(times[0])))):
        # pure noise (alpha = 0): eps carries no information on x0 there, so the run is told the model's own
        # prediction (a flow velocity gives x0 = x - t u and dx/dt = u), as the diffusers scheduler's run is
        own, told = _told_at_rest(model, prediction)
        _check_start_at_rest(integrator, schedule, times, told, converted_from(own))
        if shift:
            own = shift_time(own, shift)
        if isinstance(integrator, Integrator):  # x_T's entries were checked above: start without a second sync
            solution = integrator.solve(own, x_T, times, callback=callback, check_finite=check_finite,
                                        prediction=told, check_x=False)
        else:
            solution = integrator.solve(own, x_T, times, callback=callback, check_finite=check_finite, prediction=told)
        return final_denoise(eps_model, solution, schedule, check_finite) if denoise else solution
    if isinstance(integrator, Integrator):
        _check_evaluation_times(integrator, schedule, times, prediction)
    else:
        _check_adaptive_ends(integrator, schedule, times, prediction)
    if isinstance(integrator, Integrator):  # x_T's entries were checked above: start without a second sync
        solution = integrator.solve(eps_model, x_T, times, callback=callback, check_finite=check_finite,
                                    check_x=False)
    else:
        solution = integrator.solve(eps_model, x_T, times, callback=callback, check_finite=check_finite)
    return final_denoise(eps_model, solution, schedule, check_finite) if denoise else solution


def _check_own_schedule(integrator: Integrator | AdaptiveIntegrator, schedule: NoiseSchedule) -> None:
    """Refuse a built method whose own schedule is not ``schedule``: the grid is laid out on ``schedule``, but
    the steps combine the integrator's own ``alpha`` and ``sigma``, a silently wrong sample. The comparison is
    :func:`pndmkit.schedules.same_schedule` (equal schedules built separately pass)."""
    theirs = integrator.transfer.schedule if isinstance(integrator, Integrator) else integrator.schedule
    if same_schedule(theirs, schedule):
        return
    kind = type(integrator).__name__
    raise ValueError(f"method is {with_article(kind)} built on {theirs!r}, but schedule={schedule!r}: the grid "
                     f"would be laid out on schedule= and the steps taken with the {kind}'s own schedule; pass the schedule it was "
                     f"built on, or build it on this one (METHODS[name].build(schedule), or DDIMTransfer(schedule) "
                     f"for a hand-built one), or pass the method's name")


def _told_at_rest(model: Any, prediction: str) -> tuple[Any, str]:
    """The model whose outputs a run from ``alpha = 0`` is told, and their prediction: ``model`` itself, or for a
    pndmkit wrapper that converts its network's output to ``eps`` (:func:`pndmkit.models.converted_from`) and can
    hand it back unconverted (``unconverted()``: :func:`pndmkit.as_eps`, :func:`pndmkit.models.guided`,
    :class:`pndmkit.nn.NetworkModel`), that unconverted model with the network's prediction."""
    inner = model
    while isinstance(inner, partial):
        inner = inner.func
    source = converted_from(inner)
    hook = getattr(inner, "unconverted", None)
    if prediction != "eps" or source in (None, "eps") or not callable(hook):
        return model, prediction
    layers = []
    while isinstance(model, partial):  # model_kwargs bound by sample, or by the caller: bound again, in order
        layers.append(model)
        model = model.func
    own = hook()
    for layer in reversed(layers):
        own = partial(own, *layer.args, **layer.keywords)
    return own, source


#: the gradient each built-in transfer combines, as a refusal from alpha = 0 names it
_GRADIENT_NAMES = {"DDIMTransfer": "eps", "DataTransfer": "x0", "LinearTransfer": "dx/dt"}


def _check_start_at_rest(integrator: Any, schedule: NoiseSchedule, times: NDArray[np.float64],
                         prediction: str, converts: str | None = None) -> None:
    """Refuse, before any model call and in one line, a run from ``alpha = 0`` (``t = times[0]``, pure noise) that
    cannot take ``prediction`` outputs, naming why and the methods that run there. ``converts``: what the model
    converts to eps itself (:func:`pndmkit.models.converted_from`), when it cannot hand its output back."""
    failure = _walk_failure(integrator, times, prediction)
    if failure is None:
        return
    t0 = float(times[0])
    name = getattr(integrator, "name", "") or repr(integrator)
    at_start = len(times) == 2 or _walk_failure(integrator, times[:2], prediction) is not None
    if not at_start:  # the start is fine; a later evaluation is not (an x0 model at sigma = 0, say)
        why = str(failure).splitlines()[0].rstrip(".")
    elif prediction in ("eps", "score") and converts in ("x0", "flow"):
        why = (f"the model converts its network's {converts!r} prediction to eps itself and cannot hand it back "
               f"(no unconverted()), and eps carries no information on x0 where x_t = sigma eps; give the network "
               f"unwrapped with prediction={converts!r}")
    elif prediction in ("eps", "score"):
        why = (f"an {prediction!r} output carries no information on x0 where x_t = sigma eps; a model that predicts "
               f"the flow velocity (prediction='flow') or x0 starts there")
    elif not isinstance(integrator, Integrator):
        why = "its adaptive solver integrates the eps form of the ODE, which is singular there"
    else:
        gradient = _GRADIENT_NAMES.get(type(integrator.transfer).__name__, "gradient")
        if gradient == "eps":
            why = "its steps combine eps, which carries no information on x0 at alpha = 0"
        elif prediction == "flow" and gradient in ("x0", "dx/dt"):  # the output gives it: the estimator does not
            why = (f"it re-expresses {gradient} through eps between its stages (base-point derivatives), which is "
                   f"singular at alpha = 0")
        else:
            why = f"its steps combine {gradient}, which a {prediction!r} output does not give there"
    others = []
    for other in dict.fromkeys([DEFAULT_METHOD, *METHODS]):
        if len(others) == 5:
            break
        if other == getattr(integrator, "name", None):
            continue
        try:
            if _walk_failure(built(METHODS[other], schedule), times, prediction) is None:
                others.append(other)
        except (TypeError, ValueError, ArithmeticError):  # a method that cannot be built here is no suggestion
            continue
    instead = (f"Methods that run this grid with prediction={prediction!r}: {', '.join(others)}, ...; or"
               if others else f"No method runs this grid with prediction={prediction!r}:")
    later = float(schedule.t_from_s(1e3))
    where = f"cannot start at t={t0:g}, where alpha = 0 (pure noise)" if at_start else \
        f"cannot run this grid from t={t0:g} (alpha = 0)"
    raise StartAtRestError(f"method={name!r} with prediction={prediction!r} {where}: {why}; no evaluation was made. "
                           f"{instead} start below t={t0:g}", later)


def _walk_failure(integrator: Any, times: NDArray[np.float64], prediction: str) -> Exception | None:
    """Why a run of ``integrator`` on ``times`` (from ``alpha = 0``) told ``prediction`` outputs fails (its dry
    run's error), or ``None`` where it runs."""
    if not isinstance(integrator, Integrator):
        return ValueError("an adaptive method integrates the eps form of the ODE")
    if prediction in ("eps", "score"):
        return ValueError("eps carries no information on x0 at alpha = 0")
    return integrator.walk_failure(times, prediction)


def planned_undefined_eps_times(integrator: Integrator, grid: NDArray[np.float64], prediction: str) -> list[float]:
    """The times at which a run of ``integrator`` on ``grid`` would evaluate a ``prediction`` model where it gives
    no ``eps`` (:func:`pndmkit.models.undefined_eps_times`), found before any model call.

    Parameters
    ----------
    integrator : Integrator
        A fixed-step integrator (its evaluation times depend on the grid alone,
        :meth:`pndmkit.Integrator.evaluation_times`).
    grid : ndarray of float64, shape (N + 1,)
        Checked grid times in the schedule's units.
    prediction : str
        What the model predicts (:data:`pndmkit.models.PREDICTIONS`). Its output converts to ``eps`` at the
        sample's own time, whatever time the model is told (``model_time_offset``).

    Returns
    -------
    list of float
        The evaluation times with no ``eps``, each once, in order of first evaluation; empty for
        ``eps``, ``v`` and ``score`` predictions, and for a grid that starts where ``alpha = 0`` (a flow grid
        from pure noise: a dry run on zero ``eps`` outputs cannot take a step from there, so the run itself
        checks those).
    """
    if prediction not in ("x0", "flow"):
        return []
    schedule = integrator.transfer.schedule
    if not math.isfinite(float(schedule.s(float(grid[0])))):
        return []
    return undefined_eps_times(schedule, integrator.evaluation_times(grid), prediction)


def _no_eps_where(schedule: NoiseSchedule, prediction: str) -> str:
    """Why a ``prediction`` output gives no ``eps`` at its undefined times, in the schedule's own terms."""
    if prediction == "x0":
        return "sigma = 0, abar = 1" if isinstance(schedule, VPSchedule) else "sigma = 0"
    return "dx/dt is singular"


def _check_adaptive_ends(integrator: Any, schedule: NoiseSchedule, times: NDArray[np.float64],
                         prediction: str) -> None:
    """Refuse, before any model call, an adaptive run whose interval starts or ends where ``prediction`` gives no
    ``eps``: its steps are chosen as it goes, but it evaluates the model at both ends of its interval."""
    if not math.isfinite(float(schedule.s(float(times[0])))):
        return  # a flow run from pure noise: the run itself checks its start
    bad = undefined_eps_times(schedule, [float(times[0]), float(times[-1])], prediction)
    if bad:
        name = getattr(integrator, "name", None) or repr(integrator)
        end = " (final_alpha='first' ends a DiscreteVP run at t = 0)" if isinstance(schedule, DiscreteVP) else ""
        raise ValueError(f"method={name!r} with prediction={prediction!r} integrates from t={float(times[0]):g} to "
                         f"t={float(times[-1]):g} and evaluates the model at both ends, but a model predicting "
                         f"{prediction!r} gives no eps at t={', '.join(f'{t:g}' for t in bad)} "
                         f"({_no_eps_where(schedule, prediction)}); no evaluation was made. Pass t_end above "
                         f"that time{end}")


def _check_evaluation_times(integrator: Integrator, schedule: NoiseSchedule, times: NDArray[np.float64],
                            prediction: str) -> None:
    """Refuse, before any model call, a fixed-step run that would evaluate where ``prediction`` gives no ``eps``
    (an ``x0`` model at ``sigma = 0``, a ``flow`` model where ``dx/dt`` is singular)."""
    bad = planned_undefined_eps_times(integrator, times, prediction)
    if not bad:
        return
    evaluated = integrator.evaluation_times(times)
    name = integrator.name or repr(integrator)
    where = _no_eps_where(schedule, prediction)
    others = []
    for other in dict.fromkeys([DEFAULT_METHOD, *METHODS]):  # the default first
        if len(others) == 4:
            break
        if other == integrator.name:
            continue
        try:
            candidate = built(METHODS[other], schedule)
            if isinstance(candidate, Integrator) and not planned_undefined_eps_times(candidate, times, prediction):
                others.append(other)
        except (TypeError, ValueError, ArithmeticError):  # a method that cannot run this grid is no suggestion
            continue
    end = (" (on a DiscreteVP: convention='diffusers-pndm', i.e. final_alpha='first' with offset=1, ends it at "
           "t = 0, as do explicit grid times that end there)" if isinstance(schedule, DiscreteVP) else "")
    instead = f", or a method that does not evaluate there ({', '.join(others)}, ...)" if others else ""
    raise ValueError(f"method={name!r} with prediction={prediction!r} would evaluate the model at t="
                     f"{', '.join(f'{t:g}' for t in bad)}, where a model predicting {prediction!r} gives no eps "
                     f"({where}); "
                     f"the grid ends at t={float(times[-1]):g} and {len(evaluated)} evaluations were planned, none "
                     f"made. End the grid earlier{end}{instead}")


def final_denoise(eps_model: Callable[[Any, float], Any], solution: Solution, schedule: NoiseSchedule,
                  check_finite: bool = False) -> Solution:
    """The data estimate at the end of a run: ``x0 = (x - sigma eps(x, t)) / alpha`` at ``t = solution.times[-1]``.

    One model evaluation (added to ``nfe``); the identity where ``sigma(t) = 0``, with no evaluation. This is
    the final denoising step of the score-SDE samplers (Song et al. 2021): it removes the noise a grid that
    stops short of ``sigma = 0`` leaves in the sample.
    """
    t = float(solution.times[-1])
    alpha, sigma = float(schedule.alpha(t)), float(schedule.sigma(t))
    if sigma == 0.0:
        return solution
    x = solution.x
    e = check_output(eps_model(x, t), x, t, solution.nfe + 1, check_finite)
    return dataclasses.replace(solution, x=lincomb((1.0 / alpha, -sigma / alpha), (x, e)), nfe=solution.nfe + 1)


def built(spec: MethodSpec, schedule: NoiseSchedule) -> Any:
    """``spec.build(schedule)``, built once per method and schedule object (the 64 most recent are kept).

    Integrators are immutable, so the calls of :func:`sample` with one method and schedule share one, and
    with it the plan of each grid (:func:`pndmkit.run.make_plan`): repeated sampling computes step weights
    once. An unhashable schedule or spec is built afresh.
    """
    try:
        return _built(spec, schedule)
    except TypeError:
        return spec.build(schedule)


@lru_cache(maxsize=64)
def _built(spec: MethodSpec, schedule: NoiseSchedule) -> Any:
    return spec.build(schedule)


_PARAMETERS = ("model", "x_T", "schedule", "method", "steps", "grid", "prediction", "t_start", "t_end", "convention",
               "model_time_offset", "rho", "final_alpha", "offset", "callback", "check_finite", "model_kwargs",
               "denoise")
