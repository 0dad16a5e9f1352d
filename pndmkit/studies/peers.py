r"""Run diffusers schedulers on a pndmkit model, in pndmkit's coordinates (the peers of the head-to-head).

diffusers is imported lazily, only by the functions here: core pndmkit never needs it (``pip install
pndmkit[peers]`` adds it).

Every scheduler, whatever its internal coordinates, integrates the same probability-flow ODE
``dy/ds = eps`` in ``y = x / sqrt(abar)``, ``s = sqrt((1 - abar) / abar)`` (docs/theory.md, "The
probability-flow ODE"). :func:`run_scheduler` drives one configured scheduler from a VP sample ``x`` at its first noise level to its last one and hides
the coordinates:

* VP schedulers (DDIM, PNDM, IPNDM, DPM-Solver, UniPC, DEIS) keep ``x``;
* sigma schedulers (Euler, Heun, LMS) keep ``y`` and want ``scale_model_input`` (``x = y / sqrt(1 + s^2)``);
  the driver enters and leaves their coordinates exactly, instead of ``init_noise_sigma * z``.

The model sees the VP sample and is told, for every call, the timestep the scheduler passes *and* the
noise level the scheduler assumes for that call (its own float32 ``alphas_cumprod`` or ``sigmas`` entry,
read as float64). :func:`peer_sample` turns that into a pndmkit model call ``model(x, t)`` in the
schedule's time units; the head-to-head (:mod:`pndmkit.studies.compare`) evaluates the exact eps at the
scheduler's own level, so a peer is never penalised for interpolating its timesteps.

Conventions found in diffusers 0.42 (each one pinned by ``tests/test_peers.py``):

* ``PNDMScheduler`` (``skip_prk_steps=False``) raises for fewer than 4 steps (a broadcast error in
  ``set_timesteps``); its PRK "midpoint" is the integer ``t - (T // N) // 2``, not ``(t + t') / 2``, so it
  differs from the paper's PRK whenever ``T // N`` is odd.
* ``PNDMScheduler(skip_prk_steps=True)`` with one step makes a single DDIM step (1 call, not PIE's 2).
* ``DDIMScheduler`` and ``PNDMScheduler`` step to ``t - T // N`` whatever the spacing, so with
  ``linspace`` (and ``trailing`` when ``T / N`` is not an integer) the model is called at a timestep that
  is not the level the previous step moved the sample to.
* ``IPNDMScheduler`` has its own schedule: ``sigma_k = sin(pi u_k / 2)^2`` (VP ``sqrt(1 - abar)``),
  ``alpha_k = sqrt(1 - sigma_k^2)``, ``u`` uniform from 1 to 0, and treats the model output as a
  v-prediction (``eps = sigma x + alpha v``). Its first level is ``abar = 0`` exactly, where
  ``x0 = (x - sigma eps) / max(alpha, 1e-8) = 0``: the first step ignores the model. With
  ``trained_betas`` (the sigma sequence of any grid, ``N + 1`` values ending at 0) it runs that grid.
* ``DEISMultistepScheduler`` always ends at ``abar_0`` (``s`` about 0.01), not at ``abar = 1``.
* Tables (``betas``, ``alphas_cumprod``, ``sigmas``) are float32 even for float64 samples.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from pndmkit.schedules import DiscreteVP, NoiseSchedule

__all__ = ["PEERS", "PeerSpec", "PeerRun", "import_diffusers", "diffusers_available", "peer_table",
           "make_scheduler", "call_levels", "run_scheduler", "time_of_level", "peer_sample", "peer_nfe"]

#: level-aware model used by the driver: ``(x_vp, timestep, s) -> eps`` (``s`` the scheduler's level)
LevelModel = Callable[[Any, float, float], Any]


def import_diffusers() -> Any:
    """Import diffusers (offline: no hub lookups), or raise ImportError saying how to install it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import diffusers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the peers need diffusers and torch: pip install 'pndmkit[peers,torch]'") from exc
    return diffusers


def diffusers_available() -> bool:
    """Whether diffusers (and torch) can be imported."""
    try:
        import_diffusers()
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class PeerSpec:
    """A diffusers scheduler with a fixed configuration.

    Attributes
    ----------
    name : str
        Registry key.
    cls : str
        diffusers class name.
    config : dict
        Keyword arguments of the constructor (besides the betas).
    coordinates : {"vp", "ve"}
        Whether the scheduler's sample is ``x`` (VP) or ``y = x / sqrt(abar)`` (sigma schedulers).
    prediction : {"eps", "v"}
        What the scheduler expects the model to return.
    options : tuple of dict
        Grid options the head-to-head tries (``timestep_spacing``, ``use_karras_sigmas``, ...).
    builtin : bool
        Whether those options are the scheduler's own (False: a grid of pndmkit handed in through
        ``trained_betas``, reported apart).
    reproduces : str or None
        The pndmkit method this peer is, step for step, when its option ``grid=KIND`` hands it pndmkit's grid
        ``KIND`` (``ipndm-pndmkit-grid`` is ``ipndm``): a summary that pairs the two on the same grid is a parity
        check, not a comparison (:func:`pndmkit.studies.compare.by_nfe` marks it ``parity``). None: no such method.
    """

    name: str
    cls: str
    config: dict = field(default_factory=dict)
    coordinates: str = "vp"
    prediction: str = "eps"
    options: tuple = ({},)
    builtin: bool = True
    reproduces: str | None = None


_SPACINGS = tuple({"timestep_spacing": s} for s in ("leading", "linspace", "trailing"))
_KARRAS = _SPACINGS + ({"use_karras_sigmas": True},)
_DPM_GRIDS = _KARRAS + ({"use_lu_lambdas": True},)


def _dpm(order: int, lower_order_final: bool) -> dict:
    return {"solver_order": order, "lower_order_final": lower_order_final, "algorithm_type": "dpmsolver++"}


_PEER_LIST = [
    PeerSpec("ddim", "DDIMScheduler", {"clip_sample": False, "set_alpha_to_one": True}, options=_SPACINGS),
    PeerSpec("pndm", "PNDMScheduler", {"set_alpha_to_one": True}, options=_SPACINGS),
    PeerSpec("pndm-plms", "PNDMScheduler", {"set_alpha_to_one": True, "skip_prk_steps": True}, options=_SPACINGS),
    PeerSpec("ipndm", "IPNDMScheduler", prediction="v",
             options=tuple({"grid": g} for g in ("leading", "linspace", "trailing"))),
    PeerSpec("ipndm-pndmkit-grid", "IPNDMScheduler", prediction="v", builtin=False, reproduces="ipndm",
             options=tuple({"grid": g} for g in ("quadratic", "s-uniform"))),
    PeerSpec("dpm-2m", "DPMSolverMultistepScheduler", _dpm(2, True), options=_DPM_GRIDS),
    PeerSpec("dpm-2m-nolof", "DPMSolverMultistepScheduler", _dpm(2, False), options=_DPM_GRIDS),
    PeerSpec("dpm-3m", "DPMSolverMultistepScheduler", _dpm(3, True), options=_DPM_GRIDS),
    PeerSpec("dpm-3m-nolof", "DPMSolverMultistepScheduler", _dpm(3, False), options=_DPM_GRIDS),
    PeerSpec("dpm-2m-pndmkit-grid", "DPMSolverMultistepScheduler", _dpm(2, True), builtin=False,
             options=({"timesteps_grid": "quadratic"},)),
    PeerSpec("dpm-3m-pndmkit-grid", "DPMSolverMultistepScheduler", _dpm(3, True), builtin=False,
             options=({"timesteps_grid": "quadratic"},)),
    PeerSpec("unipc", "UniPCMultistepScheduler", {"solver_order": 2}, options=_KARRAS),
    PeerSpec("unipc-3", "UniPCMultistepScheduler", {"solver_order": 3}, options=_KARRAS),
    PeerSpec("deis", "DEISMultistepScheduler", {"solver_order": 3}, options=_KARRAS),
    PeerSpec("heun", "HeunDiscreteScheduler", coordinates="ve", options=_KARRAS),
    PeerSpec("lms", "LMSDiscreteScheduler", coordinates="ve", options=_KARRAS),
    PeerSpec("euler", "EulerDiscreteScheduler", coordinates="ve", options=_KARRAS),
]

#: the peers of the head-to-head by name
PEERS: dict[str, PeerSpec] = {p.name: p for p in _PEER_LIST}


def peer_table(schedule: NoiseSchedule, T: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(betas, times)``: the discrete table a diffusers scheduler needs for ``schedule``
    (:func:`pndmkit.integrations.diffusers.table_from_schedule`, the one translation of a schedule into a
    diffusers table)."""
    from pndmkit.integrations.diffusers.config import table_from_schedule

    return table_from_schedule(schedule, T)


def _grid_sigmas(schedule: NoiseSchedule, steps: int, grid: str) -> list[float]:
    """VP sigmas ``sqrt(1 - abar)`` of a pndmkit grid on the peer table (IPNDM's ``trained_betas``)."""
    from pndmkit.grids import make_grid

    betas, _ = peer_table(schedule)
    table = DiscreteVP(betas)
    times = make_grid(table, steps, grid, final_alpha="one")
    return [math.sqrt(max(0.0, -math.expm1(float(table.log_abar(t))))) for t in times]


def _grid_timesteps(schedule: NoiseSchedule, steps: int, grid: str) -> list[int]:
    """Integer timesteps of a pndmkit grid on the peer table, without its end point (``set_timesteps(timesteps=)``
    of DPM-Solver; the scheduler appends its own final level). Rounding may merge times: fewer steps."""
    from pndmkit.grids import make_grid

    times = make_grid(DiscreteVP(peer_table(schedule)[0]), steps, grid, final_alpha="one")[:-1]
    return sorted({max(0, int(round(t))) for t in times}, reverse=True)


def make_scheduler(peer: PeerSpec | str, schedule: NoiseSchedule, steps: int, **options: Any) -> Any:
    """Build the diffusers scheduler of ``peer`` on ``schedule``'s table and call ``set_timesteps(steps)``.

    ``options`` override the peer's configuration (``timestep_spacing``, ``use_karras_sigmas``, ...); for
    IPNDM ``grid`` names a pndmkit grid kind whose sigmas become ``trained_betas`` (``grid="native"`` or no
    grid: IPNDM's own sine schedule); ``timesteps_grid`` names a pndmkit grid whose rounded times are passed
    as ``set_timesteps(timesteps=...)`` (DPM-Solver).
    """
    spec = PEERS[peer] if isinstance(peer, str) else peer
    diffusers = import_diffusers()
    cls = getattr(diffusers, spec.cls)
    config = {**spec.config, **options}
    timesteps_grid = config.pop("timesteps_grid", None)
    if spec.cls == "IPNDMScheduler":
        grid = config.pop("grid", "native")
        if grid != "native":
            config["trained_betas"] = _grid_sigmas(schedule, steps, grid)
    else:
        config["trained_betas"] = peer_table(schedule)[0].tolist()
        config["num_train_timesteps"] = len(config["trained_betas"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = cls(**config)
        if timesteps_grid is None:
            scheduler.set_timesteps(steps)
        else:
            scheduler.set_timesteps(timesteps=_grid_timesteps(schedule, steps, timesteps_grid))
    return scheduler


def _f(v: Any) -> float:
    return float(v.item() if hasattr(v, "item") else v)


def call_levels(scheduler: Any) -> tuple[list[float], float]:
    """The noise levels ``s = sigma / alpha`` at which a diffusers scheduler calls the model, and its last one.

    Parameters
    ----------
    scheduler : diffusers scheduler
        One whose ``set_timesteps`` has run (DDIM, PNDM, IPNDM, or a sigma-based scheduler).

    Returns
    -------
    (levels, final) : tuple of (list of float, float)
        ``s`` at each entry of ``scheduler.timesteps`` and the level the run ends at, as the one translation
        module reads them (:func:`pndmkit.integrations.diffusers.config.scheduler_levels`).
    """
    from pndmkit.integrations.diffusers.config import scheduler_levels

    return scheduler_levels(scheduler)


@dataclass(frozen=True)
class PeerRun:
    """Result of a peer run.

    Attributes
    ----------
    x : array
        Final VP sample at noise level ``s_end`` (same type and dtype as the start).
    nfe : int
        Model calls.
    s_start, s_end : float
        Noise-to-signal ratio at the start and at the end (the scheduler's own float32 values as floats).
    timesteps : list of float
        Timesteps passed to the model, in order.
    levels : list of float
        Noise level ``s`` the scheduler assumed at each call.
    """

    x: Any
    nfe: int
    s_start: float
    s_end: float
    timesteps: list
    levels: list


def run_scheduler(scheduler: Any, model: LevelModel, x: Any, *, prediction: str = "eps") -> PeerRun:
    """Drive a configured scheduler (``set_timesteps`` done) from the VP sample ``x`` at its first level.

    ``model(x_vp, timestep, s)`` returns eps for the VP sample at the call's timestep, ``s`` being the level
    the scheduler assumes. ``prediction="v"`` (IPNDM) converts it to the v the scheduler expects, with the
    scheduler's own ``alpha = 1 / sqrt(1 + s^2)``.
    """
    import torch

    levels, s_end = call_levels(scheduler)
    ts = list(scheduler.timesteps)
    numpy_in = isinstance(x, np.ndarray)
    sample = torch.from_numpy(np.array(x)) if numpy_in else x
    ve = _is_ve(scheduler)
    s0 = levels[0]
    if ve:
        sample = sample * math.sqrt(1.0 + s0 * s0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t, s in zip(ts, levels):
            x_in = scheduler.scale_model_input(sample, t) if ve else sample
            x_model = x_in.numpy() if numpy_in else x_in
            e = model(x_model, _f(t), s)
            e = torch.from_numpy(np.asarray(e)) if isinstance(e, np.ndarray) else e
            if prediction == "v":  # v = (eps - sigma x) / alpha with the scheduler's own alpha, sigma
                alpha, sigma = (1.0 / math.sqrt(1.0 + s * s), s / math.sqrt(1.0 + s * s)) if math.isfinite(s) else (
                    0.0, 1.0)
                e = (e - sigma * x_in) / alpha if alpha > 0 else torch.zeros_like(e)
            sample = scheduler.step(e, t, sample).prev_sample
    if ve:
        sample = sample / math.sqrt(1.0 + s_end * s_end)
    out = sample.numpy() if numpy_in else sample
    return PeerRun(out, len(ts), s0, s_end, [_f(t) for t in ts], levels)


def _is_ve(scheduler: Any) -> bool:
    return type(scheduler).__name__ in ("EulerDiscreteScheduler", "HeunDiscreteScheduler", "LMSDiscreteScheduler",
                                        "EulerAncestralDiscreteScheduler", "KDPM2DiscreteScheduler")


def time_of_level(schedule: NoiseSchedule, s: float) -> float:
    """The time whose noise-to-signal ratio is ``s`` (``schedule.t_from_s``), ``s`` clipped to the schedule's
    levels ``[s(t_min), s(t_max)]``.

    A scheduler's levels are its float32 tables read as float64, so its top level may lie just above
    ``s(t_max)`` (IPNDM's ``sigma`` rounded up to 1 even gives ``s = inf``) and its bottom one just below
    ``s(t_min)``; ``t_from_s`` would refuse those (:class:`~pndmkit.schedules.DiscreteVP`) or return a time
    outside ``[t_min, t_max]`` that the model refuses. A level at or beyond an end is that end's time, exactly.

    Parameters
    ----------
    schedule : NoiseSchedule
        The schedule whose time units the result is in.
    s : float
        Noise-to-signal ratio ``sigma / alpha`` (``inf`` allowed).

    Returns
    -------
    float
        A time in ``[schedule.t_min, schedule.t_max]``.

    Raises
    ------
    ValueError
        ``s`` is NaN (no level: it would pass both clips and reach ``t_from_s``).
    """
    s = float(s)
    if math.isnan(s):
        raise ValueError(f"s must be a noise-to-signal ratio (a number; inf allowed), got s={s}")
    s_hi, s_lo = float(schedule.s(schedule.t_max)), float(schedule.s(schedule.t_min))
    if s >= s_hi:
        return float(schedule.t_max)
    if s <= s_lo:
        return float(schedule.t_min)
    return float(schedule.t_from_s(s))


def peer_sample(model: Callable[[Any, float], Any], x_T: Any, *, schedule: NoiseSchedule, peer: PeerSpec | str,
                steps: int, scheduler: Optional[Any] = None, **options: Any) -> PeerRun:
    """Sample with a diffusers scheduler and a pndmkit model ``model(x, t) -> eps`` (``t`` in the schedule's units).

    The scheduler runs on ``schedule``'s table (:func:`peer_table`). A call at an integer timestep of a
    :class:`~pndmkit.schedules.DiscreteVP` gives the model that timestep; any other call (interpolated sigmas,
    a continuous schedule) gives it the time whose level equals the scheduler's (:func:`time_of_level`).
    ``x_T`` is the VP sample at the scheduler's first level; the result is at its last level.
    """
    spec = PEERS[peer] if isinstance(peer, str) else peer
    sched = scheduler if scheduler is not None else make_scheduler(spec, schedule, steps, **options)
    table_times = peer_table(schedule)[1]
    own_units = spec.cls == "IPNDMScheduler"  # IPNDM's timesteps are its own, not indices of the table

    def level_model(x: Any, timestep: float, s: float) -> Any:
        if not own_units and timestep == int(timestep):
            return model(x, float(table_times[int(timestep)]))
        return model(x, time_of_level(schedule, s))

    return run_scheduler(sched, level_model, x_T, prediction=spec.prediction)


def peer_nfe(peer: PeerSpec | str, schedule: NoiseSchedule, steps: int, **options: Any) -> int:
    """Model calls of ``peer`` for ``steps`` steps (the length of its timestep list)."""
    return len(make_scheduler(peer, schedule, steps, **options).timesteps)
