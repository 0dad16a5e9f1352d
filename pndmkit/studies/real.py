r"""Convergence on real networks: error against a converged solution of the same ODE from the same noise.

A network has no closed-form trajectory, so the reference is the probability-flow ODE ``dy/ds = eps``
solved from the same initial noises by DOP853 (:func:`pndmkit.problems.reference.solve_pf_ode`, in the
``asinh(s/c)`` variable) with the network run in float64. Its accuracy is measured, not assumed: the solve is
repeated at half the tolerance and the largest change of any end-point entry is reported as
``reference_error``; a study is only trusted where that is below 1% of the smallest error it reports
(:func:`check_reference`).

The study object is a :class:`pndmkit.studies.convergence.Study` (its ``problem`` wraps the network), so
:func:`pndmkit.studies.convergence.sweep`, :func:`~pndmkit.studies.convergence.fit_order` and the report
writers of :mod:`pndmkit.studies.reports` work unchanged and results have the same
:class:`~pndmkit.studies.convergence.MethodResult` shape as on the Gaussian mixtures. Errors are the RMS of
``x_N - x_ref`` over the batch and all pixels in the network's own units (images scaled to [-1, 1]);
``pixel_scale`` (127.5) converts them to 8-bit grey levels.

The reference costs minutes on a CPU, so :func:`model_study` and :func:`run_model_study` take a ``cache``
folder: the reference end points and each method's sweep are stored under a key that hashes the network's
weights, the schedule (its exact :func:`~pndmkit.schedules.schedule_key`: another beta table is another entry),
the interval, the grid kind, the noises and the tolerance, and a rerun (or an
interrupted run) reuses what is there. What is read back is checked first: a cached reference that cannot be
read, is a folder, has another shape than the study's noises, holds non-finite values or records a negative
or non-finite reference error, and a ``sweeps.json`` that is not valid JSON, holds no object, or holds an
entry whose errors do not give the order it records, is refused with one line naming the file
(:class:`pndmkit.errors.BadFileError`, as a :class:`~pndmkit.errors.UsageError` about ``cache``); with
``rebuild_cache=True`` (``--rebuild-cache``) it is removed with a :class:`DamagedCacheWarning` and computed
again. A number reported is never taken from a damaged entry.

Examples
--------
>>> study = model_study("digits", batch=2, cache="analysis/results/real")   # doctest: +SKIP
>>> sweep(study, "ddim", [10, 20, 40]).measured_order                         # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit._io import atomic_path, progress_bar, write_text
from pndmkit.errors import BadFileError, UsageError, blame
from pndmkit.methods import METHODS, MethodSpec, get_method
from pndmkit.methods import steps_for_nfe as methods_steps_for_nfe
from pndmkit.noise import per_sample_noise
from pndmkit.schedules import CustomSchedule, NoiseSchedule, schedule_key
from pndmkit.studies import convergence
from pndmkit.studies.convergence import MethodResult, Study
from pndmkit.studies.statistics import rank_correlation

__all__ = ["ModelStudy", "NetworkProblem", "LoadedModel", "load_model", "model_study", "cached_model_study",
           "cache_key", "reference_solution", "converged_flow", "schedule_flow", "sweep", "check_reference_start",
           "run_model_study", "steps_for_nfe", "check_cache", "errors_at_nfe", "check_reference", "mixture_study",
           "rank_correlation", "DamagedCacheWarning", "DEFAULT_MODEL_STEPS", "PIXEL_SCALE"]

#: step counts of the default network study (cheap enough for a CPU: see the README)
DEFAULT_MODEL_STEPS = (5, 10, 20, 40, 80)
#: 8-bit grey levels per unit of an image scaled to [-1, 1]
PIXEL_SCALE = 127.5
_FORMAT = 1


class DamagedCacheWarning(UserWarning):
    """A damaged cache entry was removed to be computed again (``rebuild_cache=True``); the message names it."""


class NetworkProblem:
    """A network seen as a study problem: ``eps(x, t, schedule)`` calls ``model(x, t)``.

    Parameters
    ----------
    model : callable
        ``model(x, t) -> eps`` on float64 torch tensors (or numpy arrays, for a numpy model).
    shape : tuple of int
        Shape of one sample.
    name : str
        What reports call it.
    """

    def __init__(self, model: Callable[[Any, float], Any], shape: Sequence[int], name: str) -> None:
        self.model, self.shape, self.name = model, tuple(int(v) for v in shape), name
        self.dim = int(np.prod(self.shape))
        #: the array type ``model`` is called with: ``"torch"`` (float64 tensors) where torch is installed, until a
        #: model that is not a torch module fails on a tensor and works on a numpy array (a numpy model):
        #: ``"numpy"`` from then on, for the reference and the sweeps alike
        self.array = "torch" if _has_torch() else "numpy"

    def __repr__(self) -> str:
        return f"NetworkProblem({self.name}, shape={self.shape})"

    def eps(self, x: Any, t: float, schedule: NoiseSchedule) -> Any:
        """The network's eps at ``(x, t)`` (``schedule`` is the study's, already the model's)."""
        return self.model(x, t)

    def eps_numpy(self, x: NDArray[np.float64], t: float) -> NDArray[np.float64]:
        """eps on a float64 numpy array (the reference solver's calling convention).

        The model is called with a float64 torch tensor where torch is installed; a model that is not a
        ``torch.nn.Module`` and fails on it with an ``AttributeError`` or ``TypeError`` (``x.astype``: a numpy
        model) is called with the numpy array instead, and with numpy arrays from then on (:attr:`array`); if
        that fails too, the tensor's error is raised.
        """
        if self.array == "numpy":
            return np.asarray(self.model(x, t), dtype=np.float64)
        import torch

        try:
            out = self.model(torch.from_numpy(np.ascontiguousarray(x)), t)
        except (AttributeError, TypeError) as exc:
            if isinstance(self.model, torch.nn.Module):
                raise
            try:
                out = np.asarray(self.model(np.array(x, dtype=np.float64), t), dtype=np.float64)
            except Exception:
                raise exc from None
            self.array = "numpy"
            return out
        return out.detach().cpu().double().numpy() if hasattr(out, "detach") else np.asarray(out, np.float64)


@dataclass(frozen=True)
class ModelStudy(Study):
    """A :class:`~pndmkit.studies.convergence.Study` whose problem is a network (:class:`NetworkProblem`).

    Extra attributes
    ----------------
    reference_rtol : float
        Tolerance of the reference (``rtol = atol`` of DOP853); ``reference_error`` is the change at half of it.
    reference_nfe : int
        Network evaluations of the two reference solves (0 when read from the cache).
    pixel_scale : float
        Multiply an error by it for 8-bit grey levels.
    key : str
        Hash of everything the reference depends on (the cache folder's name).
    cache : str or None
        Folder of cached results, or ``None``.
    rebuild_cache : bool
        Whether :func:`sweep` recomputes a damaged cached sweep (with a :class:`DamagedCacheWarning`) instead of
        refusing it.
    """

    reference_rtol: float = 1e-9
    reference_nfe: int = 0
    pixel_scale: float = PIXEL_SCALE
    key: str = ""
    cache: Optional[str] = None
    rebuild_cache: bool = False


def _module_hash(net: Any) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().double().numpy().tobytes())
    return h.hexdigest()[:16]


class LoadedModel(NamedTuple):
    """A network ready for a study (:func:`load_model`): immutable; it unpacks as the 5 fields in order."""

    #: the eps model ``model(x, t) -> eps``, the network in float64
    model: Callable[[Any, float], Any]
    #: its noise schedule
    schedule: NoiseSchedule
    #: shape of one sample, or ``None`` when neither the caller nor the checkpoint gives it
    shape: Optional[tuple[int, ...]]
    #: a name for reports
    name: str
    #: fingerprint of the weights and conventions for the cache (``None`` for a bare callable: not cached)
    fingerprint: Optional[str]


def load_model(model: Any, schedule: Optional[NoiseSchedule] = None, *, shape: Optional[Sequence[int]] = None
               ) -> LoadedModel:
    """Turn ``model`` into a :class:`LoadedModel` (eps model, schedule, shape, name, fingerprint), in float64.

    Parameters
    ----------
    model : str, path, Checkpoint, NetworkModel or callable
        A shipped checkpoint name (``"digits"``), a checkpoint path, a diffusers pipeline or ``UNet2DModel``
        folder or a hub id in the local Hugging Face cache (all read by
        :func:`pndmkit.integrations.diffusers.pretrained.open_network`), a loaded :class:`pndmkit.nn.Checkpoint`
        (``open_network(..., class_label=..., prompt_embeds=..., device=...)`` for conditioning or a GPU), a
        :class:`pndmkit.nn.NetworkModel` (e.g. from
        :func:`pndmkit.nn.from_diffusers`), or any callable ``model(x, t) -> eps`` (then ``schedule`` is
        required and the caller chooses its precision).
    schedule : NoiseSchedule, optional
        Overrides the checkpoint's or adapter's schedule.
    shape : sequence of int, optional
        Shape of one sample (default: from a checkpoint's network configuration).

    Returns
    -------
    LoadedModel
        The float64 eps model, its schedule, the sample shape (or ``None``), a name, and a fingerprint of the
        weights for the cache (``None`` for a bare callable: such studies are not cached).

    Raises
    ------
    UsageError
        Naming ``model`` (not found, not a model) or ``schedule`` (a bare callable without one).
    """
    name = None
    if isinstance(model, (str, os.PathLike)):
        from pndmkit.integrations.diffusers.pretrained import open_network

        model = open_network(model)  # a pndmkit checkpoint, a diffusers folder or a cached hub id
    from pndmkit.nn.adapters import NetworkModel
    from pndmkit.nn.checkpoint import Checkpoint

    if isinstance(model, Checkpoint):
        if shape is None:
            shape = model.shape
        name = model.meta.get("name") or (model.path.name if model.path is not None else type(model.net).__name__)
        model = model.model()
    if isinstance(model, NetworkModel):
        import torch

        net = model.net.double() if hasattr(model.net, "double") else model.net
        adapted = NetworkModel(net, schedule or model.schedule, prediction=model.prediction,
                               time_offset=model.time_offset, time_scale=model.time_scale, dtype=torch.float64,
                               min_sigma=model.min_sigma)
        fingerprint = _module_hash(net) if hasattr(net, "state_dict") else None
        label = name or type(net).__name__
        extra = f"{model.prediction}/{model.time_offset}/{model.time_scale}"
        return LoadedModel(adapted, adapted.schedule, None if shape is None else tuple(shape), label,
                           None if fingerprint is None else f"{fingerprint}/{extra}")
    if callable(model):
        if schedule is None:
            raise UsageError("schedule", f"a bare callable model needs schedule=, got model={model!r} alone")
        return LoadedModel(model, schedule, None if shape is None else tuple(shape),
                           getattr(model, "__name__", "model"), None)
    raise UsageError("model", f"model must be a checkpoint name or path, a Checkpoint, a NetworkModel or a "
                              f"callable model(x, t), got {type(model).__name__}")


def check_reference_start(schedule: NoiseSchedule, t_start: float, param: str = "t_start",
                          fix: Optional[str] = None) -> None:
    """Refuse a study whose interval starts where ``alpha = 0`` (flow matching from pure noise, ``t = 1``).

    A study's reference is the probability-flow ODE ``dy/ds = eps`` solved in ``s = sigma / alpha``
    (:func:`converged_flow`, :func:`pndmkit.problems.reference.solve_pf_ode`), infinite there, and its methods
    are driven by ``eps``, which says nothing about ``x0`` where ``x_t = sigma eps``: nothing whose error is
    measured starts there. A start just below (``sigma / alpha = 1000``, ``t = 0.999`` on flow matching) is a
    finite level from which both the reference and the methods run, on the same noises.

    Parameters
    ----------
    schedule : NoiseSchedule
        The study's schedule.
    t_start : float
        The interval's first time, in the schedule's time ``t``.
    param : str
        The parameter the error names (``"t_start"``, ``"grid"``, ...).
    fix : str, optional
        What to do instead (default: pass ``param`` below ``t_start``); ``{later}`` in it becomes the time where
        ``sigma / alpha = 1000`` (computed only for the refusal).

    Raises
    ------
    UsageError
        Naming ``param``: ``alpha(t_start) = 0`` (``s(t_start)`` infinite).
    """
    t0 = float(t_start)
    if math.isfinite(float(schedule.s(t0))):
        return
    later = f"{float(schedule.t_from_s(1e3)):.4g}"
    fix = (fix or f"pass {param} below it, e.g. {param}={{later}} (where sigma/alpha = 1000)").format(later=later)
    raise UsageError(param, f"the study would start at t={t0:g}, where alpha = 0 on {schedule!r} (pure noise): "
                            f"its converged reference solves dy/ds = eps in s = sigma/alpha, infinite there, and "
                            f"eps holds no information on x0 there, so no study with a measured reference error "
                            f"starts at t={t0:g}; {fix}")


def reference_solution(problem: NetworkProblem, schedule: NoiseSchedule, x_T: NDArray[np.float64], t_start: float,
                       t_end: float, *, rtol: float = 1e-9, scale: float = 0.1, progress: bool = False,
                       stop_early: Optional[Callable[[], None]] = None) -> tuple[NDArray[np.float64], float, int]:
    """Converged end points of ``dy/ds = eps`` from ``x_T`` at ``t_start`` to ``t_end``: DOP853 at ``rtol`` and
    at ``rtol / 2`` (:func:`converged_flow`).

    ``x_T`` and the end points are states of ``schedule`` (what its samplers carry and its network is called
    with), scaled to and from the VP state off VP (:func:`schedule_flow`).

    Returns ``(x_ref, reference_error, nfe)``: the end points of the tighter solve, the largest absolute
    change between the two solves (the reference's error estimate) and the network evaluations spent.
    ``scale`` is the length ``c`` of the ``asinh(s/c)`` variable (about the data's smallest spread);
    ``stop_early`` is called before each network evaluation (see :func:`converged_flow`).
    """
    s0, s1 = float(schedule.s(t_start)), float(schedule.s(t_end))

    def time_of(s: float) -> float:
        # the interval's ends map to their own times exactly (t_from_s(s(t)) can round out of the schedule)
        return t_start if s >= s0 else t_end if s <= s1 else float(schedule.t_from_s(s))

    return schedule_flow(problem, schedule, x_T, s0, s1, time_of, rtol=rtol, scale=scale, progress=progress,
                         stop_early=stop_early)


def schedule_flow(problem: Any, schedule: NoiseSchedule, x: NDArray[np.float64], s_from: float, s_to: float,
                  time_of: Callable[[float], float], *, rtol: float = 1e-9, scale: float = 0.1,
                  progress: bool = False, stop_early: Optional[Callable[[], None]] = None
                  ) -> tuple[NDArray[np.float64], float, int]:
    """:func:`converged_flow` for states of ``schedule``: ``x`` at level ``s_from`` carried to ``s_to``.

    Off VP (EDM, VE, flow matching) a state is ``scale(t)`` times the VP state with the same ``s``
    (:meth:`~pndmkit.schedules.NoiseSchedule.scale`, ``t = time_of(s)``): the solve carries ``x / scale``, calls
    the network at ``scale(t)`` times the VP state, and returns the end points and the error estimate times
    ``scale`` at ``s_to``. On a VP schedule (scale 1) it is :func:`converged_flow` itself.

    Parameters and returns are :func:`converged_flow`'s, ``x`` and the end points in ``schedule``'s state.
    """
    if schedule.family == "vp":
        return converged_flow(problem, x, s_from, s_to, time_of, rtol=rtol, scale=scale, progress=progress,
                              stop_early=stop_early)
    c_from, c_to = (float(schedule.scale(time_of(v))) for v in (s_from, s_to))
    x_vp, err, nfe = converged_flow(_ScaledNetwork(problem, schedule), np.asarray(x, dtype=np.float64) / c_from,
                                    s_from, s_to, time_of, rtol=rtol, scale=scale, progress=progress,
                                    stop_early=stop_early)
    return x_vp * c_to, err * c_to, nfe


class _ScaledNetwork:
    """``problem`` seen from the VP state off VP: ``eps_numpy(x_vp, t)`` calls the network at the schedule's state
    ``scale(t) x_vp`` (its eps is the same: it is the noise of the one point both states describe)."""

    def __init__(self, problem: Any, schedule: NoiseSchedule) -> None:
        self.problem, self.schedule = problem, schedule

    def eps_numpy(self, x: NDArray[np.float64], t: float) -> NDArray[np.float64]:
        return self.problem.eps_numpy(x * float(self.schedule.scale(t)), t)


def converged_flow(problem: Any, x: NDArray[np.float64], s_from: float, s_to: float, time_of: Callable[[float], float],
                   *, rtol: float = 1e-9, scale: float = 0.1, progress: bool = False,
                   stop_early: Optional[Callable[[], None]] = None) -> tuple[NDArray[np.float64], float, int]:
    """``x`` at noise level ``s_from`` carried along ``dy/ds = eps`` to ``s_to``: DOP853 at ``rtol`` and at
    ``rtol / 2`` (:func:`pndmkit.problems.reference.solve_pf_ode`, ``atol = rtol``).

    ``problem.eps_numpy(x, t)`` is the network; ``time_of(s)`` the time it is told at level ``s``. Returns the
    end points of the tighter solve, the largest absolute change between the two solves and the network
    evaluations spent. ``scale`` is the length ``c`` of the ``asinh(s/c)`` variable; ``progress`` shows a bar.

    Parameters
    ----------
    problem : NetworkProblem
        Anything with ``eps_numpy(x, t)``: the predicted noise, a float64 array shaped like ``x``.
    x : ndarray, shape (batch, ...), float64
        The VP state ``x`` (not ``y = x sqrt(1 + s^2)``) at level ``s_from``, e.g. ``(batch, C, H, W)``
        images; read, not changed (converted to float64 if it is not).
    s_from, s_to : float
        Start and end noise-to-signal ratios ``s = sigma / alpha``, finite and ``>= 0`` (either order;
        ``s_from > s_to`` is sampling).
    time_of : callable
        ``time_of(s) -> float``: the network's time (its schedule's ``t``) at level ``s``.
    rtol : float
        Tolerance of the looser solve (``rtol = atol``); the tighter one runs at half of it.
    scale : float
        The length ``c > 0`` of the ``asinh(s / c)`` variable (about the data's smallest spread).
    progress : bool
        Show a progress bar of both solves.
    stop_early : callable, optional
        Called with no argument before each network evaluation; whatever it raises (e.g.
        :class:`pndmkit.studies.monitor.TimeBudgetExceeded`, a ``KeyboardInterrupt``) ends the solve and
        propagates, as Ctrl-C would, with nothing returned: a solve is all or nothing.

    Returns
    -------
    (ndarray, float, int)
        The end points ``x`` at ``s_to``, float64 shaped like ``x``; the largest absolute change between the
        two solves (the reference's error estimate, in ``x``); the number of network evaluations of both
        solves together.

    Raises
    ------
    ValueError
        From :func:`~pndmkit.problems.reference.solve_pf_ode`: ``s_from`` or ``s_to`` negative or not finite,
        or ``scale`` not positive.
    """
    from pndmkit.problems.reference import solve_pf_ode

    w0, w1 = math.asinh(s_from / scale), math.asinh(s_to / scale)
    count = [0]
    bar = progress_bar(200, desc=f"reference (DOP853, rtol {rtol:.0e} and {rtol / 2:.0e})", leave=False) \
        if progress else None
    passes = [0]

    def eps_of_s(x: NDArray[np.float64], s: float) -> NDArray[np.float64]:
        if stop_early is not None:
            stop_early()
        count[0] += 1
        if bar is not None:
            done = 100 * passes[0] + int(100 * (w0 - math.asinh(s / scale)) / (w0 - w1 or 1.0))
            bar.update(max(0, done - bar.n))
            bar.set_postfix(nfe=count[0], refresh=False)
        return problem.eps_numpy(x, time_of(s))

    try:
        loose = solve_pf_ode(eps_of_s, x, s_from, s_to, scale=scale, rtol=rtol, atol=rtol)
        passes[0] = 1
        tight = solve_pf_ode(eps_of_s, x, s_from, s_to, scale=scale, rtol=rtol / 2, atol=rtol / 2)
    finally:
        if bar is not None:
            bar.close()
    return tight, float(np.max(np.abs(tight - loose))), count[0]


def check_cache(cache: Any) -> None:
    """Refuse a cache that is not a usable folder before any reference is solved (a solve costs minutes).

    Creates the folder if needed. Raises :class:`~pndmkit.errors.UsageError` naming ``cache`` for a non-path,
    an empty path, a file, a folder that cannot be created or one that is not writable.
    """
    if not isinstance(cache, (str, os.PathLike)) or not os.fspath(cache):
        raise UsageError("cache", f"cache must be a folder path (str or os.PathLike), got {cache!r}")
    path = os.fspath(cache)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError("cache", f"cache must be a folder, but {path!r} is a file")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise UsageError("cache", f"cannot create the cache folder {path!r}: {exc.strerror or exc}") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError("cache", f"the cache folder {path!r} is not writable")


def cache_key(*parts: Any) -> str:
    """Content hash (20 hex digits) naming a cached reference: the bytes of each array, the ``repr`` of
    anything else, in order."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.tobytes() if isinstance(p, np.ndarray) else repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def model_study(model: Any, schedule: Optional[NoiseSchedule] = None, x_T: Any = None, *, batch: int = 8,
                seed: int = 0, shape: Optional[Sequence[int]] = None, grid: str = "uniform",
                t_start: Optional[float] = None, t_end: Optional[float] = None, rtol: float = 1e-9,
                scale: float = 0.1, pixel_scale: float = PIXEL_SCALE, cache: Optional[str | os.PathLike] = None,
                progress: bool = False, rebuild_cache: bool = False,
                stop_early: Optional[Callable[[], None]] = None) -> ModelStudy:
    """Set up a convergence study of a network: noises ``x_T`` and the converged reference from them.

    Parameters
    ----------
    model, schedule, shape
        See :func:`load_model`.
    x_T : array, optional
        Initial noises ``(batch, *shape)``, states of the schedule at ``t_start``; default
        ``pndmkit.noise.per_sample_noise(range(batch), shape, seed)`` (per-sample seeds, as ``pndmkit sample`` draws
        them), times ``schedule.scale(t_start)`` off VP (pure noise of EDM, VE or flow matching there).
    batch, seed : int
        Number and seed of the default noises.
    grid : str
        Grid kind of the sweeps (a continuous kind: the runs must share the reference's end point).
    t_start, t_end : float, optional
        Interval; defaults as :func:`pndmkit.studies.convergence.make_study` (the schedule's start; the
        time where ``s = 0.1``).
    rtol : float
        DOP853 tolerance of the reference (the error estimate comes from a second solve at ``rtol / 2``).
    scale : float
        ``c`` of the reference's ``asinh(s/c)`` variable.
    pixel_scale : float
        Grey levels per unit of the network's output (127.5 for images in [-1, 1]).
    cache : path, optional
        Folder for cached references and sweeps (created on demand); ``None`` caches nothing. An entry is keyed
        by the network's weights, the schedule's exact :func:`~pndmkit.schedules.schedule_key` (so the same
        network on another beta table has its own entry), the interval, ``rtol``, ``scale`` and the noises. A
        network without weights to hash (a plain function) and a :class:`~pndmkit.schedules.CustomSchedule`
        (known only by its function objects, which no later run shares) are not cached.
    progress : bool
        Show a tqdm bar while the reference is computed.
    rebuild_cache : bool
        A damaged cache entry (see the module docstring) is removed with a :class:`DamagedCacheWarning` and
        computed again, instead of refused.
    stop_early : callable, optional
        Called before each network evaluation of an uncached reference solve; what it raises (e.g.
        :class:`pndmkit.studies.monitor.TimeBudgetExceeded`) propagates and nothing is cached (a reference is
        written only once both solves are done). ``pndmkit order --model --max-minutes`` passes the budget's
        :meth:`~pndmkit.studies.monitor.StudyMonitor.check`.

    Raises
    ------
    UsageError
        Naming the parameter at fault; ``cache`` for a damaged cache entry (its path and what is wrong) unless
        ``rebuild_cache``.
    """
    study = _build_model_study(model, schedule, x_T, batch=batch, seed=seed, shape=shape, grid=grid,
                               t_start=t_start, t_end=t_end, rtol=rtol, scale=scale, pixel_scale=pixel_scale,
                               cache=cache, progress=progress, rebuild_cache=rebuild_cache,
                               stop_early=stop_early)
    assert study is not None  # solve=True always returns a study
    return study


def cached_model_study(model: Any, schedule: Optional[NoiseSchedule] = None, x_T: Any = None, *,
                       shape: Optional[Sequence[int]] = None, grid: str = "uniform", t_start: Optional[float] = None,
                       t_end: Optional[float] = None, rtol: float = 1e-9, scale: float = 0.1,
                       pixel_scale: float = PIXEL_SCALE, cache: Optional[str | os.PathLike] = None,
                       rebuild_cache: bool = False) -> Optional[ModelStudy]:
    """:func:`model_study` if its reference is cached in ``cache``, else ``None`` (nothing is solved; a damaged
    entry is refused, or with ``rebuild_cache`` removed and ``None`` returned)."""
    return _build_model_study(model, schedule, x_T, shape=shape, grid=grid, t_start=t_start, t_end=t_end, rtol=rtol,
                              scale=scale, pixel_scale=pixel_scale, cache=cache, solve=False,
                              rebuild_cache=rebuild_cache)


def _build_model_study(model: Any, schedule: Optional[NoiseSchedule] = None, x_T: Any = None, *, batch: int = 8,
                       seed: int = 0, shape: Optional[Sequence[int]] = None, grid: str = "uniform",
                       t_start: Optional[float] = None, t_end: Optional[float] = None, rtol: float = 1e-9,
                       scale: float = 0.1, pixel_scale: float = PIXEL_SCALE,
                       cache: Optional[str | os.PathLike] = None, progress: bool = False, solve: bool = True,
                       rebuild_cache: bool = False, stop_early: Optional[Callable[[], None]] = None
                       ) -> Optional[ModelStudy]:
    """:func:`model_study`; with ``solve=False`` it returns ``None`` instead of solving an uncached reference."""
    from pndmkit.grids import make_grid

    if cache is not None:
        check_cache(cache)
    if not isinstance(rebuild_cache, bool):
        raise UsageError("rebuild_cache", f"rebuild_cache must be True or False, got {rebuild_cache!r}")
    eps_model, sched, shp, name, fingerprint = load_model(model, schedule, shape=shape)
    if x_T is None:
        if shp is None:
            raise UsageError("shape", f"cannot draw noises for {name}: pass shape= (one sample) or x_T=")
        if not (isinstance(batch, int) and batch >= 1):
            raise UsageError("batch", f"batch must be an integer >= 1, got {batch!r}")
        x0 = convergence.pure_noise(sched, per_sample_noise(range(batch), shp, seed).astype(np.float64),
                                    sched.t_start if t_start is None else float(t_start))
    else:
        x0 = np.array(x_T.detach().cpu().numpy() if hasattr(x_T, "detach") else x_T, dtype=np.float64)
        if x0.ndim < 2 or not np.all(np.isfinite(x0)):
            raise UsageError("x_T", f"x_T must be a finite array (batch, ...), got shape {x0.shape}")
    for label, value in (("rtol", rtol), ("scale", scale), ("pixel_scale", pixel_scale)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise UsageError(label, f"{label} must be a finite number > 0, got {value!r}")
    if grid in ("leading", "trailing"):
        raise UsageError("grid", f"grid {grid!r} starts at a time that depends on the number of steps, so its runs "
                                 f"share no reference end point; use a continuous grid kind such as 'uniform'")
    t0 = sched.t_start if t_start is None else float(t_start)
    t1 = float(sched.t_from_s(convergence.DEFAULT_S_END)) if t_end is None else float(t_end)
    check_reference_start(sched, t0)
    try:
        make_grid(sched, 2, grid, t_start=t0, t_end=t1)
    except (TypeError, ValueError) as exc:
        raise UsageError(("grid", "t_start", "t_end"), str(exc)) from exc
    problem = NetworkProblem(eps_model, x0.shape[1:], name)
    # off VP the key says the reference is solved in the schedule's own state (schedule_flow): a reference cached
    # before that was solved from the state as if it were VP's, and is not read back
    state = () if sched.family == "vp" else ("schedule-state",)
    # the schedule by its exact key (the default tables' keys are the reprs the shipped cache was written with); a
    # CustomSchedule's key names its function objects, which no later process shares, so it is not cached
    skey = schedule_key(sched)
    lasting = fingerprint and not isinstance(sched, CustomSchedule)
    key = cache_key(_FORMAT, fingerprint, skey, t0, t1, rtol, scale, x0, *state) if lasting else ""
    folder = Path(cache) / key if cache is not None and key else None
    with blame("cache", errors=(BadFileError,)):
        stored = _read_reference(folder, x0.shape, rebuild_cache) if folder is not None else None
    if stored is None and not solve:
        return None
    if stored is None:
        ref, err, nfe = reference_solution(problem, sched, x0, t0, t1, rtol=rtol, scale=scale, progress=progress,
                                           stop_early=stop_early)
        if folder is not None:
            _write_reference(folder, ref, err, nfe, {"model": name, "schedule": skey, "t_start": t0,
                                                     "t_end": t1, "rtol": rtol, "scale": scale, "batch": len(x0)})
    else:
        ref, err, nfe = stored[0], stored[1], 0
    return ModelStudy(problem=problem, problem_name=name, schedule=sched, schedule_name=repr(sched), grid=grid,
                      t_start=t0, t_end=t1, x_T=x0, reference=ref, reference_error=err, reference_rtol=rtol,
                      reference_nfe=nfe, pixel_scale=float(pixel_scale), key=key,
                      cache=None if folder is None else str(folder), rebuild_cache=rebuild_cache)


def _damaged_entry(path: Path, what: str, rebuild: bool) -> None:
    """Refuse the damaged cache entry ``path``, or with ``rebuild`` remove it, saying so."""
    if not rebuild:
        raise BadFileError(path, f"cache entry {path} {what}; it was not used: pass --rebuild-cache "
                                 f"(rebuild_cache=True) to compute it again, or delete it")
    warnings.warn(f"cache entry {path} {what}: removed, it is computed again", DamagedCacheWarning, stacklevel=4)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _write_reference(folder: Path, ref: NDArray[np.float64], err: float, nfe: int, info: dict) -> None:
    with atomic_path(folder / "reference.npz") as tmp, tmp.open("wb") as fh:
        np.savez(fh, reference=ref, error=err, nfe=nfe, info=json.dumps(info))


def _read_reference(folder: Path, shape: tuple, rebuild: bool = False
                    ) -> Optional[tuple[NDArray[np.float64], float]]:
    """The cached ``(reference, error)`` in ``folder``, ``None`` when there is none (or a damaged one was
    removed, with ``rebuild``); a damaged one raises :class:`BadFileError` naming it."""
    path = folder / "reference.npz"
    if not path.exists() and not path.is_symlink():
        return None
    if not path.is_file():
        _damaged_entry(path, "is not a file (a folder?)", rebuild)
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            ref, err = np.array(data["reference"]), np.array(data["error"])
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        what = "is empty" if path.stat().st_size == 0 else \
            f"cannot be read as a cached reference ({type(exc).__name__}: {exc}), e.g. truncated"
        _damaged_entry(path, what, rebuild)
        return None
    problem = None
    if ref.shape != tuple(shape) or ref.dtype.kind != "f":
        problem = f"holds a reference of shape {ref.shape} ({ref.dtype}); the study's noises have shape {tuple(shape)}"
    elif not np.all(np.isfinite(ref)):
        problem = f"holds {int(np.size(ref) - np.isfinite(ref).sum())} non-finite reference values"
    elif err.shape != () or err.dtype.kind not in "fi" or not (math.isfinite(float(err)) and float(err) >= 0):
        problem = f"records the reference error {err.tolist()!r}; it must be a finite number >= 0"
    if problem is not None:
        _damaged_entry(path, problem, rebuild)
        return None
    return ref, float(err)


def _read_sweeps(path: Path, rebuild: bool) -> dict:
    """The cached sweeps (tag -> result dict) of ``path``; ``{}`` when there is none or it was removed."""
    if not path.exists() and not path.is_symlink():
        return {}
    problem = None
    if not path.is_file():
        problem = "is not a file (a folder?)"
    else:
        try:
            table = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            problem = f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
        except ValueError as exc:
            where = f" (line {exc.lineno}, column {exc.colno}: {exc.msg})" if isinstance(exc, json.JSONDecodeError) \
                else ""
            problem = "is empty" if not path.read_text().strip() else f"is not valid JSON{where}, e.g. truncated"
        else:
            if not isinstance(table, dict):
                problem = f"holds a JSON {type(table).__name__}, not an object of sweeps"
    if problem is not None:
        _damaged_entry(path, problem, rebuild)
        return {}
    return table


def _check_sweep(entry: Any, name: str, study: "ModelStudy", path: Path, tag: str) -> Optional[MethodResult]:
    """The cached sweep ``entry`` as a result, or ``None`` (after a warning, the entry dropped) when it is damaged
    and ``study.rebuild_cache``; a damaged entry raises otherwise.

    Damaged: not a result's fields, lists of different lengths, a negative error, or (fixed-step methods) errors
    that do not give the order and fit range the entry records (:func:`~pndmkit.studies.convergence.fit_order`
    on the study's floor).
    """
    problem = None
    try:
        result = _result_from_dict(name, entry)
        errors = [float(e) for e in result.errors]
        if len(errors) != len(result.nfe) or len(errors) != len(result.steps) or not errors:
            problem = "has lists of steps, NFE and errors of different lengths"
        elif any(e < 0 for e in errors):
            problem = "records a negative error"
        elif not result.adaptive:
            order, idx, _ = convergence.fit_order(result.steps, errors, study.floor)
            fit_range = (int(result.steps[idx[0]]), int(result.steps[idx[1]])) if idx else None
            if order != result.measured_order or fit_range != result.fit_range:
                problem = (f"records order {result.measured_order} on {result.fit_range}, but its errors give "
                           f"{order} on {fit_range} (edited, or from another study)")
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        problem, result = f"is not a sweep result ({type(exc).__name__}: {exc})", None
    if problem is None:
        return result
    if not study.rebuild_cache:
        raise UsageError("cache", f"cache entry {path} [{tag!r}] {problem}; it was not used: pass --rebuild-cache "
                                  f"(rebuild_cache=True) to compute it again, or delete the file")
    warnings.warn(f"cache entry {path} [{tag!r}] {problem}: it is computed again", DamagedCacheWarning, stacklevel=3)
    return None


def _result_from_dict(name: str, d: dict) -> MethodResult:
    d = dict(d)
    d["fit_range"] = tuple(d["fit_range"]) if d.get("fit_range") else None
    return MethodResult(name=name, **d)


def sweep(study: ModelStudy, method: str | MethodSpec, steps: Sequence[int] = DEFAULT_MODEL_STEPS, *,
          tolerances: Sequence[float] = (1e-2, 1e-3, 1e-4), progress: Optional[Callable[[str], None]] = None
          ) -> MethodResult:
    """:func:`pndmkit.studies.convergence.sweep` on a network study, cached in ``study.cache``.

    The network runs on float64 torch tensors (numpy arrays for a numpy model: :attr:`NetworkProblem.array`); a
    cached sweep of the same method, steps and tolerances is returned without running anything.
    """
    spec = method if isinstance(method, MethodSpec) else get_method(method)
    steps = [int(n) for n in steps]
    tag = f"{spec.name}|{steps if not spec.adaptive else list(tolerances)}"
    path = Path(study.cache) / "sweeps.json" if study.cache else None
    rebuild = getattr(study, "rebuild_cache", False)
    with blame("cache", errors=(BadFileError,)):
        table = _read_sweeps(path, rebuild) if path is not None else {}
    if tag in table:
        cached = _check_sweep(table[tag], spec.name, study, path, tag)
        if cached is not None:
            return cached
    array = getattr(study.problem, "array", "torch" if _has_torch() else "numpy")  # a numpy model's: numpy
    result = convergence.sweep(study, spec, steps, array=array, tolerances=tolerances, progress=progress)
    if path is not None:  # re-read: another process may have added entries meanwhile
        with blame("cache", errors=(BadFileError,)):
            table = _read_sweeps(path, rebuild)
        table[tag] = result.to_dict()
        # Python's JSON, not strict JSON (pndmkit._io.json_text): a cache only pndmkit reads, whose inf or nan errors
        # of a run that blew up must read back as they were (a null error makes _check_sweep refuse the entry)
        write_text(path, json.dumps(table, indent=1))
    return result


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def run_model_study(study: ModelStudy, methods: Optional[Sequence[str]] = None,
                    steps: Sequence[int] = DEFAULT_MODEL_STEPS, *, progress: bool = False) -> dict[str, MethodResult]:
    """:func:`sweep` each method (default: every registered fixed-step method), with a tqdm bar if asked."""
    names = [n for n, s in METHODS.items() if not s.adaptive] if methods is None else list(methods)
    bar = progress_bar(len(names), desc="methods", leave=False) if progress else None
    results = {}
    try:
        for name in names:
            if bar is not None:
                bar.set_postfix_str(name)
            results[name] = sweep(study, name, steps)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return results


def steps_for_nfe(method: str | MethodSpec, nfe: int) -> Optional[int]:
    """:func:`pndmkit.methods.steps_for_nfe` of a registered method, for a study of errors at NFE budgets.

    Raises
    ------
    UsageError
        Naming ``method``: an adaptive method (its NFE is not chosen by a step count) or an unknown name.

    >>> steps_for_nfe("ddim", 10), steps_for_nfe("prk", 10), steps_for_nfe("f-pndm", 20), steps_for_nfe("f-pndm", 3)
    (10, 2, 11, None)
    """
    spec = method if isinstance(method, MethodSpec) else get_method(method)
    if spec.adaptive:
        raise UsageError("method", f"method {spec.name!r} is adaptive: its NFE is not chosen by a step count")
    return methods_steps_for_nfe(spec, nfe)


def errors_at_nfe(study: Study, methods: Sequence[str], nfes: Sequence[int]) -> dict[str, dict[int, Optional[dict]]]:
    """Each method's error at the largest step count that fits each NFE budget (``None`` where none fits).

    Works on any study (a mixture's :func:`~pndmkit.studies.convergence.make_study` or :func:`model_study`);
    entries are ``{"steps", "nfe", "error"}``.
    """
    out: dict[str, dict[int, Optional[dict]]] = {}
    for name in methods:
        pairs = {k: steps_for_nfe(name, k) for k in nfes}
        steps = sorted({n for n in pairs.values() if n is not None})
        if not steps:
            out[name] = {k: None for k in nfes}
            continue
        run = sweep if isinstance(study, ModelStudy) else convergence.sweep
        res = run(study, name, steps)
        by_steps = {n: (k, e) for n, k, e in zip(res.steps, res.nfe, res.errors)}
        out[name] = {k: None if n is None else {"steps": n, "nfe": by_steps[n][0], "error": by_steps[n][1]}
                     for k, n in pairs.items()}
    return out


def check_reference(study: Study, results: dict[str, MethodResult], margin: float = 0.01) -> tuple[bool, float]:
    """Whether ``study.reference_error`` is below ``margin`` times the smallest reported error; and that error."""
    smallest = min((e for r in results.values() for e in r.errors if e > 0 and math.isfinite(e)), default=math.inf)
    return study.reference_error < margin * smallest, smallest


def mixture_study(problem: Any, like: Study, *, name: Optional[str] = None) -> Study:
    """A Gaussian-mixture study on ``like``'s schedule, interval, grid and noises (flattened to ``(batch, d)``).

    With ``like`` a network study and ``problem`` a surrogate of its data (``"digits-gmm"``), both see the same
    ODE start points, so their errors at equal NFE can be compared method by method (:func:`rank_correlation`).
    """
    from pndmkit.problems import get_problem

    gm = get_problem(problem) if isinstance(problem, str) else problem
    x_T = like.x_T.reshape(len(like.x_T), -1)
    if x_T.shape[1] != gm.dim:
        raise UsageError("problem", f"problem has dimension {gm.dim} but the study's samples have {x_T.shape[1]}")
    ends = (like.schedule, like.t_start, like.t_end)
    loose = gm.reference(x_T, *ends, rtol=1e-12, atol=1e-12)
    tight = gm.reference(x_T, *ends, rtol=1e-13, atol=1e-13)
    return Study(problem=gm, problem_name=name or (problem if isinstance(problem, str) else repr(gm)),
                 schedule=like.schedule, schedule_name=like.schedule_name, grid=like.grid, t_start=like.t_start,
                 t_end=like.t_end, x_T=x_T, reference=tight, reference_error=float(np.max(np.abs(loose - tight))))
