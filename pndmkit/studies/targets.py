"""What a grid study runs on: a problem or a network, its interval and noises, and its cached references.

A :class:`StudyTarget` is built once (:meth:`StudyTarget.resolve` checks everything and loads the network) and
gives the :class:`~pndmkit.studies.convergence.Study` of any range of its noises: noise ``i`` is noise ``i`` of
:func:`pndmkit.noise.per_sample_noise` with the target's seed, for a problem and for a network alike.

* A Gaussian mixture (a built-in problem name or a :class:`~pndmkit.problems.GaussianMixture`) has an exact
  reference: DOP853 at ``1e-13`` (its error estimated against ``1e-12``). It is solved once per process for
  the same mixture, noises and interval and kept in memory (:func:`problem_reference`): every optimisation of a
  grid on the same calibration noises -- each method, each NFE -- reads it back instead of solving it again,
  which on ``digits-gmm`` (256 dimensions) is most of one optimisation's cost.
* A network (what :func:`pndmkit.studies.real.load_model` accepts) has the converged float64 reference of
  :func:`pndmkit.studies.real.model_study` at :data:`REFERENCE_RTOL`, solved and cached (when ``cache`` is
  given) per block of :data:`REFERENCE_BLOCK` noises aligned on the noise index: ranges of any size reuse the
  blocks already solved, an interrupted run keeps the blocks it finished, and a part of a cached block is read
  from it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit.errors import BadFileError, UsageError, blame
from pndmkit.noise import per_sample_noise
from pndmkit.schedules import DiscreteVP, NoiseSchedule
from pndmkit.studies.convergence import Study, pure_noise

__all__ = ["StudyTarget", "is_problem", "reference_blocks", "problem_reference", "clear_problem_references",
           "REFERENCE_BLOCK", "REFERENCE_RTOL", "PROBLEM_REFERENCE_BYTES"]

#: a network's reference is solved and cached per block of this many noises (aligned on the noise index)
REFERENCE_BLOCK = 32

#: DOP853 tolerance of a network's reference (its error is estimated by a second solve at half of it)
REFERENCE_RTOL = 1e-8


#: most bytes of reference end points :func:`problem_reference` keeps in memory (least recently used dropped first)
PROBLEM_REFERENCE_BYTES = 256 * 2**20

_PROBLEM_REFERENCES: "OrderedDict[tuple, tuple[NDArray[np.float64], float]]" = OrderedDict()
_PROBLEM_REFERENCES_LOCK = threading.Lock()


def _fingerprint(*arrays: NDArray[Any]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def problem_reference(gm: Any, x_T: NDArray[np.float64], schedule: NoiseSchedule, t_start: float,
                      t_end: float) -> tuple[NDArray[np.float64], float]:
    """Exact end points of a Gaussian mixture's probability-flow ODE from ``x_T``, solved once per process.

    DOP853 at ``rtol = atol = 1e-13`` (:meth:`~pndmkit.problems.GaussianMixture.reference`) and the max change
    against ``1e-12``, the error estimate. The solve runs in the level ``s`` (the log signal-to-noise ratio
    of :meth:`~pndmkit.schedules.NoiseSchedule.s`) and reads the schedule only through ``s`` at both ends and,
    off VP, the scales at both ends (the state is divided by the start scale and multiplied by the end one).
    The result is kept in memory keyed by exactly those inputs: the mixture (a digest of its weights, means
    and covariances), the start points (a digest of ``x_T`` as float64), the end levels
    ``(s(t_start), s(t_end))``, whether the schedule is VP and, off VP, the scales at both ends. On a VP
    schedule the key holds no other trace of the schedule: two VP schedules (e.g. linear and cosine) with the
    same end levels share one entry, as their solves are the same computation. A second call with equal
    inputs -- from any :class:`StudyTarget`, e.g. each :func:`pndmkit.studies.grid_opt.optimize` of a
    comparison -- solves nothing and returns a copy of the kept end points, equal bit for bit to what the
    first call returned. At most :data:`PROBLEM_REFERENCE_BYTES` of end points are kept (least recently used
    dropped first); a single result larger than that is returned without being kept.
    :func:`clear_problem_references` empties the memory. Safe to call from several threads (the memory is
    guarded by a lock; two threads missing the same key at once may both solve it, with equal results).

    Parameters
    ----------
    gm : GaussianMixture
        The problem (:class:`~pndmkit.problems.GaussianMixture`).
    x_T : array_like, shape (n, dim)
        Start points at ``t_start`` (converted to float64).
    schedule : NoiseSchedule
        Any family; read only through ``s`` and, off VP, ``scale`` at ``t_start`` and ``t_end``.
    t_start, t_end : float
        The interval, in the schedule's time ``t``.

    Returns
    -------
    (ndarray, float)
        The end points at ``t_end``, shape ``(n, dim)`` float64 (a fresh copy the caller may write into), and
        the reference error estimate (max absolute difference of the ``1e-12`` and ``1e-13`` solves).

    Raises
    ------
    ValueError
        From :meth:`~pndmkit.problems.GaussianMixture.reference`: ``t_start`` or ``t_end`` not finite or
        outside the schedule's domain.
    """
    from pndmkit.schedules import VPSchedule

    vp = isinstance(schedule, VPSchedule)
    ends = tuple(float(schedule.s(t)) for t in (t_start, t_end))
    scales = () if vp else tuple(float(schedule.scale(t)) for t in (t_start, t_end))
    x = np.asarray(x_T, dtype=np.float64)
    key = (_fingerprint(gm.weights, gm.means, gm.covs), _fingerprint(x), ends, vp, scales)
    with _PROBLEM_REFERENCES_LOCK:
        hit = _PROBLEM_REFERENCES.get(key)
        if hit is not None:
            _PROBLEM_REFERENCES.move_to_end(key)
    if hit is None:
        loose = gm.reference(x, schedule, t_start, t_end, rtol=1e-12, atol=1e-12)
        tight = gm.reference(x, schedule, t_start, t_end, rtol=1e-13, atol=1e-13)
        hit = (np.array(tight, dtype=np.float64), float(np.max(np.abs(loose - tight))))
        if hit[0].nbytes <= PROBLEM_REFERENCE_BYTES:
            with _PROBLEM_REFERENCES_LOCK:
                _PROBLEM_REFERENCES[key] = hit
                _PROBLEM_REFERENCES.move_to_end(key)
                while sum(r.nbytes for r, _ in _PROBLEM_REFERENCES.values()) > PROBLEM_REFERENCE_BYTES:
                    _PROBLEM_REFERENCES.popitem(last=False)
    return hit[0].copy(), hit[1]


def clear_problem_references() -> None:
    """Forget every reference :func:`problem_reference` keeps (the next call of each solves it again)."""
    with _PROBLEM_REFERENCES_LOCK:
        _PROBLEM_REFERENCES.clear()


def is_problem(obj: Any) -> bool:
    """Whether ``obj`` is a Gaussian-mixture problem (a :class:`~pndmkit.problems.GaussianMixture` or the
    name of a built-in problem) rather than a network."""
    from pndmkit.problems import PROBLEMS, GaussianMixture

    return isinstance(obj, GaussianMixture) or (isinstance(obj, str) and obj in PROBLEMS)


def reference_blocks(first: int, n: int, size: Optional[int] = None) -> list[tuple[int, int]]:
    """``(first, count)`` pieces of the noises ``first .. first + n - 1`` cut at multiples of ``size``.

    ``size`` defaults to :data:`REFERENCE_BLOCK`.

    >>> reference_blocks(30, 5)
    [(30, 2), (32, 3)]
    """
    size = REFERENCE_BLOCK if size is None else size
    out, i, end = [], first, first + n
    while i < end:
        j = min(end, (i // size + 1) * size)
        out.append((i, j - i))
        i = j
    return out


def _check_ends(sched: NoiseSchedule, t0: float, t1: float, ends: tuple[str, str]) -> None:
    """Both end times in the schedule's domain and ``t1 < t0``; errors name ``ends`` (e.g. ``grid[0]``)."""
    for label, t in zip(ends, (t0, t1)):
        with blame(label.split("[")[0]):
            sched.check_time(t, label)
    if t1 >= t0:
        raise UsageError(tuple(dict.fromkeys(e.split("[")[0] for e in ends)),
                         f"{ends[1]} must be below {ends[0]} (the grid runs from noise to data), got {ends[0]}={t0:g}, "
                         f"{ends[1]}={t1:g}")


@dataclass(frozen=True)
class StudyTarget:
    """A problem or a network on an interval, with its noises' shape and seed and its reference cache.

    Build it with :meth:`resolve`; :meth:`study` gives the study of noises ``first .. first + n - 1``.

    Attributes
    ----------
    source : str, GaussianMixture, path, Checkpoint, NetworkModel or callable
        The problem or model as the caller gave it.
    schedule : NoiseSchedule
        The schedule (a problem's default ``DiscreteVP.linear()``; a network's own unless overridden).
    t_start, t_end : float
        The interval, in the schedule's time ``t``, ``t_end < t_start``.
    shape : tuple of int
        Shape of one noise (a problem's ``(dim,)``).
    seed : int
        Seed of :func:`pndmkit.noise.per_sample_noise`.
    cache : str or None
        Folder of a network's cached references (``None``: nothing cached; always ``None`` for a problem).
    rebuild_cache : bool
        A damaged cached reference is removed (with a :class:`~pndmkit.studies.real.DamagedCacheWarning`) and
        solved again instead of refused.
    """

    source: Any
    schedule: NoiseSchedule
    t_start: float
    t_end: float
    shape: tuple[int, ...]
    seed: int = 0
    cache: Optional[str] = None
    rebuild_cache: bool = False

    @property
    def is_problem(self) -> bool:
        """Whether the target is a Gaussian-mixture problem (exact reference) rather than a network."""
        return is_problem(self.source)

    @classmethod
    def resolve(cls, problem_or_model: Any, schedule: Optional[NoiseSchedule] = None, *,
                shape: Optional[Sequence[int]] = None, seed: int = 0, t_start: Optional[float] = None,
                t_end: Optional[float] = None, cache: Any = None, rebuild_cache: bool = False,
                ends: tuple[str, str] = ("t_start", "t_end")) -> "StudyTarget":
        """The target of ``problem_or_model``, its interval defaulting to the schedule's.

        Parameters
        ----------
        problem_or_model : str, GaussianMixture, checkpoint name/path, Checkpoint, NetworkModel or callable
            A built-in problem name (``"gmm2d"``), a mixture, or a network as
            :func:`pndmkit.studies.real.load_model` accepts it.
        schedule : NoiseSchedule, optional
            Default: ``DiscreteVP.linear()`` for a problem, the network's own for a network.
        shape : sequence of int, optional
            Shape of one noise (default: the problem's ``(dim,)`` or the checkpoint's image shape).
        seed : int
            Noise seed.
        t_start, t_end : float, optional
            Interval (default: the schedule's ends).
        cache : path, optional
            Folder of a network's cached references.
        rebuild_cache : bool
            Solve a damaged cached reference again (saying so) instead of refusing it.
        ends : (str, str)
            Names the errors about the end times use (``("grid[0]", "grid[-1]")`` when they come from a grid).

        Raises
        ------
        UsageError
            Naming ``problem_or_model`` (neither a problem nor a loadable network), ``shape`` (a network without
            one), ``cache`` (not a writable folder path), or the end times (outside the schedule's domain, or not ``t_end < t_start``).
        """
        from pndmkit.studies.real import check_cache, check_reference_start, load_model

        if is_problem(problem_or_model):
            from pndmkit.problems import get_problem

            gm = get_problem(problem_or_model) if isinstance(problem_or_model, str) else problem_or_model
            shp = tuple(int(v) for v in shape) if shape is not None else (gm.dim,)
            sched = schedule or DiscreteVP.linear()
            folder = None
        else:
            from pndmkit.problems import PROBLEMS

            try:
                loaded = load_model(problem_or_model, schedule)
            except UsageError as exc:
                if "model" in exc.params:  # the loader's parameter is this target's problem_or_model
                    hint = "" if isinstance(exc.__cause__, BadFileError) else \
                        f"; or one of the built-in problems {', '.join(sorted(PROBLEMS))}"
                    raise UsageError("problem_or_model", f"{exc}{hint}") from exc
                raise
            shp = tuple(int(v) for v in shape) if shape is not None else loaded.shape
            if shp is None:
                raise UsageError("shape", "cannot draw noises for this model: pass shape= (one sample)")
            sched = loaded.schedule
            if cache is not None:
                check_cache(cache)  # a UsageError naming cache when it is no folder path
            folder = None if cache is None else os.fspath(cache)
        t0 = sched.t_start if t_start is None else float(t_start)
        t1 = sched.t_end if t_end is None else float(t_end)
        _check_ends(sched, float(t0), float(t1), ends)
        check_reference_start(sched, t0, ends[0].split("[")[0])
        if not isinstance(rebuild_cache, bool):
            raise UsageError("rebuild_cache", f"rebuild_cache must be True or False, got {rebuild_cache!r}")
        return cls(source=problem_or_model, schedule=sched, t_start=float(t0), t_end=float(t1), shape=shp,
                   seed=int(seed), cache=folder, rebuild_cache=rebuild_cache)

    def noises(self, first: int, n: int) -> NDArray[np.float64]:
        """Start noises ``first .. first + n - 1``, float64 ``(n, *shape)``: :func:`pndmkit.noise.per_sample_noise`,
        times ``schedule.scale(t_start)`` off VP (pure noise of EDM or VE at its start is that many times
        ``N(0, I)``, as :func:`pndmkit.studies.convergence.make_study` draws it; unit noise there would start
        every run 80 times too small)."""
        return pure_noise(self.schedule, per_sample_noise(range(first, first + n), self.shape, self.seed).astype(
            np.float64), self.t_start)

    def study(self, first: int, n: int, *, progress: bool = False,
              stop_early: Optional[Callable[[], None]] = None) -> Study:
        """The study of noises ``first .. first + n - 1`` on the target's interval, with its reference.

        A problem's study holds the noises flattened to ``(n, dim)`` and the exact reference of
        :func:`problem_reference` (solved once per process for equal noises and interval); a network's is a
        :class:`~pndmkit.studies.real.ModelStudy` whose reference comes from the cache where it is there.
        ``progress`` shows a bar over each block's reference solve; ``stop_early`` is called before each network
        evaluation of a block's solve (:func:`pndmkit.studies.real.model_study`): what it raises (e.g.
        :class:`pndmkit.studies.monitor.TimeBudgetExceeded`) propagates, the blocks finished before it stay
        cached and the unfinished one is not written.
        """
        if self.is_problem:
            from pndmkit.problems import get_problem

            gm = get_problem(self.source) if isinstance(self.source, str) else self.source
            x = self.noises(first, n).reshape(n, -1)
            tight, error = problem_reference(gm, x, self.schedule, self.t_start, self.t_end)
            return Study(problem=gm, problem_name=str(self.source), schedule=self.schedule,
                         schedule_name=repr(self.schedule), grid="custom", t_start=self.t_start, t_end=self.t_end,
                         x_T=x, reference=tight, reference_error=error)
        parts = [self._block(i, k, progress, stop_early) for i, k in reference_blocks(first, n)]
        if len(parts) == 1:
            return parts[0]
        from pndmkit.studies.real import cache_key

        return replace(parts[0], x_T=np.concatenate([p.x_T for p in parts]),
                       reference=np.concatenate([p.reference for p in parts]),
                       reference_error=max(p.reference_error for p in parts),
                       reference_nfe=sum(p.reference_nfe for p in parts), key=cache_key(*(p.key for p in parts)),
                       cache=None)

    def is_cached(self, first: int, n: int) -> bool:
        """Whether :meth:`study` of noises ``first .. first + n - 1`` reads every reference block from the cache
        (nothing to solve). Always ``True`` for a problem, whose reference is cheap; ``False`` for a network with
        no cache. Solves nothing (a damaged entry is refused, or with ``rebuild_cache`` removed, as :meth:`study`
        would)."""
        if self.is_problem:
            return True
        if self.cache is None:
            return False
        from pndmkit.studies.real import cached_model_study

        block = REFERENCE_BLOCK
        common = {"t_start": self.t_start, "t_end": self.t_end, "cache": self.cache, "rtol": REFERENCE_RTOL,
                  "rebuild_cache": self.rebuild_cache}
        for i, k in reference_blocks(first, n):
            if k < block and cached_model_study(self.source, self.schedule, self.noises(i - i % block, block),
                                                **common) is not None:
                continue
            if cached_model_study(self.source, self.schedule, self.noises(i, k), **common) is None:
                return False
        return True

    def _block(self, i: int, k: int, progress: bool, stop_early: Optional[Callable[[], None]] = None) -> Study:
        """The network study of noises ``i .. i + k - 1``, all in one block of :data:`REFERENCE_BLOCK`."""
        from pndmkit.studies.real import cache_key, cached_model_study, model_study

        block = REFERENCE_BLOCK
        common = {"t_start": self.t_start, "t_end": self.t_end, "cache": self.cache, "rtol": REFERENCE_RTOL,
                  "rebuild_cache": self.rebuild_cache}
        if k < block and self.cache is not None:  # part of a block: read its rows from the whole block if cached
            b = i - i % block
            whole = cached_model_study(self.source, self.schedule, self.noises(b, block), **common)
            if whole is not None:
                return replace(whole, x_T=whole.x_T[i - b:i - b + k], reference=whole.reference[i - b:i - b + k],
                               reference_nfe=0, key=cache_key(whole.key, i, k), cache=None)
        return model_study(self.source, self.schedule, self.noises(i, k), progress=progress, stop_early=stop_early,
                           **common)
