r"""Sampling at scale: per-sample noise, shards written atomically, resume, several processes.

Sample ``i`` starts from noise ``i`` of :func:`pndmkit.noise.per_sample_noise` (torch's CPU generator
seeded with :func:`~pndmkit.noise.sample_seed` ``(seed, i)``, computed in numpy), so it is the same whatever
the batch size, the device or the number of processes. The index range ``[0, num_samples)`` is cut into shards of ``shard_size`` samples; shard ``k`` belongs to rank
``k % world_size``. A finished shard is written as ``shard-KKKKK.png`` (a grid) and then
``shard-KKKKK.npz`` (``indices``, ``x`` float32 NCHW, ``images`` uint8 NHWC), each through a temporary
file and ``os.replace``, so a shard file is either complete or absent. ``resume=True`` skips shards whose
NPZ holds what a run writes: its indices, ``x`` and ``images`` of the run's shape and dtype, every sample finite;
a shard that does not (cut short, garbage, another shard's, a non-finite sample) is named in one line and
regenerated. A missing or cut-short PNG beside a good shard is rewritten from the shard's ``images`` (nothing is
sampled; the bytes are those the run wrote) once they are checked to be those of its ``x`` (else the shard is
regenerated); with the PNG in place the ``images`` are not read, as nothing else in pndmkit reads them. Files named like shards that are no shard of
the run (``shard-00007.npz`` beside a run of 3 shards) are named in one warning and left as they are. After a crash
nothing is lost and nothing is done twice; with no run in ``out`` it logs one line saying so and starts a fresh one (so a script may always pass it), unless
``out`` holds sample output (shards, ``summary.json``) that no ``run.json`` describes: that is refused, with or
without ``resume``, since nothing says which settings made it (it is never adopted, mixed or overwritten). The
default shard size is the batch size, so an interrupt loses at most one batch.

Everything is checked before anything is written (method, grid, convention and steps by a dry run of
:func:`pndmkit.sample` with a zero model; checkpoint, its weights' finiteness, device; a memory
estimate warns when the batch may not fit): a bad option leaves no folder or ``run.json`` behind. A non-finite
sample stops the run without writing its shard; a fresh run stopped so, or by any other error or an interrupt,
before its first shard leaves no ``run.json`` either (nor a shard's image, the lock file or the folder it made).
``run.json`` records what determines the samples: the settings, the grid's times and the SHA-256 of the
checkpoint's two files (with a fitted solver, :attr:`SampleConfig.solver`, the solver's fields too). An adaptive method (``pf``) chooses its own steps, so a ``steps`` given with it is
dropped with a :class:`~pndmkit.sampling.IgnoredStepsWarning` and a ``grid`` kind with a
:class:`~pndmkit.sampling.IgnoredGridWarning`, as :func:`pndmkit.sample` does (``run.json`` records
``steps: null`` and ``grid: null``, what was used); its ``times`` are the two end times it integrates between
(:func:`pndmkit.sampling.adaptive_end_times`), with ``steps_chosen_per_sample: true``, since each sample's
steps are its own (``summary.json``'s ``nfe_per_sample`` is their mean). It runs with one step-size control per sample
(:class:`pndmkit.adaptive.AdaptiveIntegrator` with ``per_sample=True``), so its samples, too, do not depend
on the batch size, and ``run.json`` records its options (tolerances, solver, per-sample control) as
``method_options``. Resuming with any of them different is refused with a message naming what
changed, so shards from different weights or settings are never mixed. Temporary files of a killed
write are deleted on the next run. Resuming a run whose shards are all done generates nothing, logs "nothing
to do" ("nothing to sample" where it rewrote an image) and leaves its ``summary.json`` as it is (a missing or unreadable one is written anew). A batch with a non-finite sample raises ``FloatingPointError``
naming the first such sample; its shard is not written.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process initialises ``torch.distributed`` (NCCL on CUDA,
gloo on CPU), takes its shards, and all meet at a barrier before rank 0 writes ``summary.json``.

``summary.json`` describes the whole run, over every sitting that made it (a first run and its resumes, those
that were interrupted included): the settings (those of ``run.json`` but the grid's times), ``shards``,
``nfe_per_sample`` (network evaluations per sample; with per-sample step-size control, their mean over every
sample of the run) and ``sampling_seconds`` (the seconds spent sampling every shard, summed over sittings and
ranks: compute time, not wall time; ``null`` where a shard written by an older pndmkit does not record its own,
as is the mean NFE of per-sample control then).
Each shard records the seconds and evaluations per sample it took (``seconds``, ``nfe_per_sample`` in its NPZ), so
a sitting killed before its end still counts. What the last sitting alone did is under ``this_sitting``:
``resumed``, ``world_size``, ``generated_by_rank0`` (the samples rank 0 generated; the other ranks' are theirs)
and ``seconds_rank0`` (rank 0's wall time sampling).

One run at a time writes to a folder: from its first look at the shards to its last write, a run (rank 0 of a
``torchrun`` run, for all its ranks) holds the lock ``out/.pndmkit-sample.lock`` (:data:`LOCK_FILE`, a
:class:`filelock.FileLock`), and a second run started into the same folder is refused at once with a
:class:`~pndmkit.errors.UsageError` naming the folder and the lock file, before it changes anything there. The
lock is the operating system's (``flock``): it is released when the process holding it ends, even by a crash or
SIGKILL, so it never goes stale. The (empty) lock file stays in the folder; it is no shard, image or sample output
to ``resume``'s scan, its warning about undescribed files or :func:`read_samples`.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from pndmkit._checks import with_article
from pndmkit.errors import UsageError, blame
from pndmkit.methods import DEFAULT_METHOD
from pndmkit.nn._checks import available_bytes, check_device, file_sha256, gib, memory_estimate
from pndmkit._io import (atomic_path, check_writable_folder, locked_folder, progress_bar, remove_stale_temporaries,
                         write_json)
from pndmkit.nn.data import to_uint8
from pndmkit.noise import per_sample_noise, sample_seed  # noqa: F401  (sample_seed: public here too)

__all__ = ["SampleConfig", "sample_to_dir", "sample_seed", "initial_noise", "read_samples", "image_grid"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: version of the ``run.json`` layout (2: checkpoint hashes and grid times recorded)
RUN_FORMAT = 2
#: steps of a fixed-step method when none are given
DEFAULT_STEPS = 50


def initial_noise(indices: Sequence[int], shape: Sequence[int], seed: int) -> torch.Tensor:
    """Float32 CPU tensor ``(len(indices), *shape)`` of N(0, I) noise: :func:`pndmkit.noise.per_sample_noise`."""
    return torch.from_numpy(per_sample_noise(indices, shape, seed))


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile uint8 images ``(N, H, W, C)`` into one ``(rows*(H+pad)+pad, cols*(W+pad)+pad, C)`` image."""
    n, h, w, c = images.shape
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    nrows = max(1, math.ceil(n / ncols))
    grid = np.zeros((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), dtype=np.uint8)
    for k in range(n):
        r, q = divmod(k, ncols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = images[k]
    return grid


def save_png(path: Path, images: np.ndarray, scale: int = 1) -> None:
    """Write a grid of uint8 images as a PNG (matplotlib), atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    grid = image_grid(images)
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    with atomic_path(path) as tmp:
        if grid.shape[2] == 1:
            plt.imsave(tmp, grid[:, :, 0], cmap="gray", vmin=0, vmax=255, format="png")
        else:
            plt.imsave(tmp, grid, format="png")


@dataclass
class SampleConfig:
    """What :func:`sample_to_dir` does; the fields in :attr:`IDENTITY` determine the samples.

    ``shard_size=None`` means the batch size (an interrupt then loses at most one batch), or on resume
    the shard size the run was started with. ``steps=None`` means :data:`DEFAULT_STEPS` for a fixed-step
    method; an adaptive method (``pf``) chooses its own steps: a ``steps`` given with it is dropped (set to
    ``None``) with a :class:`~pndmkit.sampling.IgnoredStepsWarning`, and a ``grid`` kind with an
    :class:`~pndmkit.sampling.IgnoredGridWarning`, as :func:`pndmkit.sample` does. Invalid values
    raise :class:`~pndmkit.errors.UsageError` naming the field.

    ``t_start=None`` starts every sample at the schedule's own start (``t = 1``, pure noise, on a flow-matching
    folder). A number starts the grid there instead, in the schedule's units (checked by :func:`pndmkit.sample`:
    inside the schedule's domain and above the end time), from unit noise times
    :meth:`~pndmkit.schedules.NoiseSchedule.prior_scale` at that time (the variance of ``x_t`` for data of unit
    variance; 1 at the default start of every schedule a checkpoint has).

    ``grid`` is a grid kind (:data:`pndmkit.grids.GRIDS`) or explicit times in the schedule's units (first =
    start; a first time below the schedule's start draws the noise there, as ``t_start`` does, so a grid of
    :func:`pndmkit.studies.grid_opt.optimize` with a late first time starts from its pure noise on every
    schedule): at least two, finite and strictly decreasing (kept as a list of floats, which ``run.json`` records),
    inside the schedule's domain (checked by :func:`pndmkit.sample`); they define the step count, and a ``steps``
    given with them must equal it (else a :class:`~pndmkit.errors.UsageError` naming ``steps`` and ``grid``). An
    adaptive method uses only their end times.

    ``method=None`` means :data:`pndmkit.methods.DEFAULT_METHOD`, or the solver's name with a ``solver``.

    ``solver`` is a fitted solver (:class:`pndmkit.studies.solver_opt.FittedSolver`, as
    :func:`~pndmkit.studies.solver_opt.load_solver` reads it from a file): its grid and weights make the run, each
    batch sampled by its ``sample(model, x_T, schedule=...)`` from the noise drawn at its ``t_start`` (unit noise
    times :meth:`~pndmkit.schedules.NoiseSchedule.prior_scale` there, unit noise at the schedule's own start). It
    sets ``method`` (its name), ``steps`` and ``grid`` (its times), so those may be left out or given as it sets
    them; ``convention`` and ``t_start`` must be left out (else a :class:`~pndmkit.errors.UsageError` naming
    ``solver`` and the field). Its schedule must be the checkpoint's (checked when the checkpoint is opened);
    ``run.json`` records it whole (``solver``, its ``to_dict()``), so a resume with another solver is refused.
    """

    checkpoint: str = "digits"
    out: str = "samples"
    method: str | None = None
    steps: int | None = None
    num_samples: int = 64
    batch_size: int = 64
    shard_size: int | None = None
    seed: int = 0
    grid: str | Sequence[float] | None = None
    convention: str | None = None
    t_start: float | None = None
    device: str = "cpu"
    dtype: str = "float32"
    compile: bool = False
    resume: bool = False
    progress: bool = True
    png_max: int = 256
    solver: Any = None

    IDENTITY = ("method", "steps", "num_samples", "shard_size", "seed", "grid", "convention", "dtype", "t_start")

    def __post_init__(self) -> None:
        for name in ("steps", "num_samples", "batch_size", "shard_size", "png_max", "seed"):
            value = getattr(self, name)
            if value is None and name in ("shard_size", "steps"):
                continue
            low = 0 if name in ("png_max", "seed") else 1
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise UsageError(name, f"{name} must be an integer >= {low}, got {value!r}")
        if self.t_start is not None:
            from pndmkit._checks import check_real

            with blame("t_start"):
                self.t_start = check_real(self.t_start, "t_start")
        if self.dtype not in DTYPES:
            raise UsageError("dtype", f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.solver is not None:
            self._take_solver()
            return
        if self.method is None:
            self.method = DEFAULT_METHOD
        from pndmkit.grids import GRIDS
        from pndmkit.methods import get_method
        from pndmkit.sampling import CONVENTIONS

        with blame("method"):
            spec = get_method(self.method)
        if isinstance(self.grid, str) and self.grid not in GRIDS:
            raise UsageError("grid", f"unknown grid kind {self.grid!r}; known: {', '.join(GRIDS)}; or explicit "
                                     "times 'T0,T1,...' or 'T0 T1 ...' (decreasing)")
        if self.grid is not None and not isinstance(self.grid, str):
            self.grid = _explicit_times(self.grid)
            if spec.adaptive:
                pass  # its end times only, as pndmkit.sample uses them
            elif self.steps is None:
                self.steps = len(self.grid) - 1  # the times define the step count
            elif self.steps != len(self.grid) - 1:
                raise UsageError(("steps", "grid"), f"steps={self.steps} but grid has {len(self.grid)} times "
                                                    f"({len(self.grid) - 1} steps): give as many steps as the "
                                                    "times make, or leave steps out")
        if spec.adaptive and self.steps is not None:
            from pndmkit.sampling import ignored_steps_message, IgnoredStepsWarning

            warnings.warn(ignored_steps_message(self.steps, self.method), IgnoredStepsWarning, stacklevel=3)
            self.steps = None  # what the run uses, and what run.json records
        if spec.adaptive and isinstance(self.grid, str):
            from pndmkit.sampling import ignored_grid_message, IgnoredGridWarning

            warnings.warn(ignored_grid_message({"grid": self.grid}, self.method), IgnoredGridWarning, stacklevel=3)
            self.grid = None  # likewise: it uses the end times only
        if not spec.adaptive and self.steps is None:
            self.steps = DEFAULT_STEPS
        if self.convention is not None and self.convention not in CONVENTIONS:
            raise UsageError("convention", f"unknown convention {self.convention!r}; known: {', '.join(CONVENTIONS)}")

    def _take_solver(self) -> None:
        """``method``, ``steps`` and ``grid`` from :attr:`solver`, refusing what it cannot run with."""
        solver = self.solver
        if not all(hasattr(solver, name) for name in ("grid", "weights", "t_start", "name", "sample", "to_dict")):
            raise UsageError("solver", f"solver must be a fitted solver (pndmkit.studies.solver_opt.FittedSolver, "
                                       f"as load_solver reads it), got {solver!r}")
        sets = {"method": solver.name, "steps": len(solver.weights), "grid": [float(t) for t in solver.grid]}
        for name, value in (*sets.items(), ("convention", None), ("t_start", None)):
            given = getattr(self, name)
            if given is not None and given != value:
                what = ("its grid and weights make the run" if name in sets else
                        "it starts from the noise at its own t_start on its own grid")
                raise UsageError(("solver", name), f"{name}={given!r} cannot be given with a fitted solver: {what}"
                                                   + (f" ({name}={value!r})" if name in sets else ""))
        for name, value in sets.items():
            setattr(self, name, value)


def _explicit_times(grid: Any) -> list[float]:
    """``grid`` given as times: a list of at least two finite, strictly decreasing floats (what ``run.json``
    records; the rules of :func:`pndmkit.grids.check_grid` without a schedule), else a
    :class:`~pndmkit.errors.UsageError` naming ``grid``, the value and what is allowed. Whether they lie in the
    schedule's domain is checked by :func:`pndmkit.sample`, which knows the schedule."""
    from pndmkit.grids import check_grid

    allowed = ("a grid kind or at least two finite, strictly decreasing times in the schedule's units (first = "
               "start)")
    try:
        times = [float(t) for t in grid]
    except (TypeError, ValueError):
        raise UsageError("grid", f"grid must be {allowed}, got {grid!r}") from None
    try:
        if any(isinstance(t, (bool, str, bytes)) for t in grid):  # numbers, not what float() makes of True, '1'
            raise TypeError("grid entries must be numbers")
        return check_grid(None, times).tolist()
    except (TypeError, ValueError):
        raise UsageError("grid", f"grid must be {allowed}, got {', '.join(f'{t:g}' for t in times)}") from None


def _dist_info() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("PNDMKIT_BACKEND") != "gloo" else "gloo"
        # the only collectives are barriers around the whole run: allow ranks to finish hours apart
        dist.init_process_group(backend, timeout=datetime.timedelta(hours=12))
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _device_for(dev: torch.device) -> torch.device:
    """``cuda`` without an index: this process's GPU (``LOCAL_RANK`` under torchrun)."""
    if dev.type == "cuda" and dev.index is None:
        local = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
        dev = torch.device("cuda", local % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(dev)
    return dev


def _shard_path(out: Path, k: int, suffix: str) -> Path:
    return out / f"shard-{k:05d}{suffix}"


def _shard_indices(k: int, shard_size: int, num_samples: int) -> np.ndarray:
    """The sample indices of shard ``k``."""
    return np.arange(k * shard_size, min((k + 1) * shard_size, num_samples), dtype=np.int64)


def _read_summary(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``None`` when it is missing or not one (then it is written anew)."""
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def _shard_problem(path: Path, expected: np.ndarray, shape: Sequence[int]) -> str | None:
    """Why the shard file at ``path`` must be (re)written: ``None`` when it holds the samples ``expected`` as a run
    writes them, ``""`` when there is none, else what is wrong with it: damaged (e.g. cut short, an array missing or
    of another shape or dtype), other sample indices, or a non-finite sample (which a run never writes). Whether its
    ``images`` are those of its ``x`` is checked where a PNG is rewritten from them (:func:`_images_of`). ``shape`` is one sample's ``(C, H, W)``."""
    if not path.is_file():
        return ""
    try:
        with np.load(path) as z:
            if not np.array_equal(z["indices"], expected):
                return "holds other sample indices than this shard's"
            missing = [key for key in ("x", "images") if key not in z.files]
            if missing:
                return f"is damaged (no {missing[0]} array)"
            x, images = z["x"], z["images"]
    except Exception as exc:  # a damaged file (e.g. cut short, or from a different tool) is redone
        return f"is damaged ({type(exc).__name__}: {exc})" if str(exc) else f"is damaged ({type(exc).__name__})"
    n, (c, h, w) = len(expected), shape
    if x.shape != (n, c, h, w) or x.dtype != np.float32:
        return (f"is damaged (x has shape {x.shape} and dtype {x.dtype}; {(n, c, h, w)} float32 expected)")
    if images.shape != (n, h, w, c) or images.dtype != np.uint8:
        return (f"is damaged (images has shape {images.shape} and dtype {images.dtype}; {(n, h, w, c)} uint8 "
                "expected)")
    finite = np.isfinite(x.reshape(n, -1)).all(axis=1)
    if not finite.all():
        return (f"holds non-finite samples ({int((~finite).sum())} of its {n}, first: sample "
                f"{int(expected[int(np.argmin(finite))])}), which a run never writes")
    return None


#: why a shard whose PNG must be rewritten is regenerated instead
IMAGES_NOT_OF_X = "is damaged (its images are not those of its samples x)"


def _images_of(path: Path) -> np.ndarray | None:
    """The ``images`` of the checked shard at ``path`` when they are those of its samples ``x`` (what its PNG is
    rewritten from), else ``None``. Checked only where a PNG is rewritten: quantising every shard of a large run
    on each resume would cost about as much as reading it twice."""
    with np.load(path) as z:
        x, images = z["x"], z["images"]
    return images if np.array_equal(images, to_uint8(torch.from_numpy(x))) else None


#: the first and last bytes of every complete PNG file: its signature and its IEND chunk
PNG_SIGNATURE, PNG_END = b"\x89PNG\r\n\x1a\n", b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _image_problem(path: Path) -> str | None:
    """Why the PNG beside a finished shard must be rewritten (``None``: it is whole). Only its first and last bytes
    are read: a missing, cut-short or non-PNG file is found; a whole PNG of other pixels is not."""
    if not path.is_file():
        return "is missing"
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(len(PNG_SIGNATURE))
        fh.seek(max(size - len(PNG_END), 0))
        tail = fh.read()
    if head != PNG_SIGNATURE:
        return "is not a PNG file"
    if tail != PNG_END:
        return "is cut short (no PNG end)"
    return None


def _save_shard_png(out: Path, k: int, images: np.ndarray, cfg: SampleConfig, shape: Sequence[int]) -> None:
    """Write shard ``k``'s image grid (its first ``cfg.png_max`` images; doubled when they are 32 pixels or less)."""
    save_png(_shard_path(out, k, ".png"), images[:cfg.png_max], scale=2 if shape[1] <= 32 else 1)


@dataclass
class _Plan:
    """A checked run: the model on its device and what ``run.json`` records."""

    ckpt: Any
    model: Any
    method: Any
    device: torch.device
    shape: tuple[int, int, int]
    shard_size: int
    identity: dict[str, Any]


def _prepare(cfg: SampleConfig, shard_size: int, log: Any, opener: Any = None) -> _Plan:
    """Check every option and load the model; raise :class:`UsageError` naming the option. Writes nothing."""
    import pndmkit
    from pndmkit.nn.checkpoint import load_checkpoint, resolve_checkpoint

    device = check_device(cfg.device)
    if device.type == "cuda" and device.index is None:
        device = _device_for(device)
    with blame("checkpoint"):
        if opener is not None:  # e.g. a diffusers folder (pndmkit.integrations.diffusers.pretrained.open_network)
            ckpt = opener(cfg.checkpoint)
            stem = ckpt.path
        else:
            stem = resolve_checkpoint(cfg.checkpoint)
            ckpt = load_checkpoint(stem)
    if ckpt.schedule is None or ckpt.shape is None:
        raise UsageError("checkpoint", f"checkpoint {str(stem)!r} is not a diffusion model ("
                                       f"{with_article(type(ckpt.net).__name__)} without a noise schedule)")
    if cfg.solver is not None:
        method, method_options = _solver_method(cfg.solver, ckpt.schedule, stem), None
    else:
        method, method_options = _batch_independent(cfg.method, ckpt.schedule)
    # the combination, by a dry run on one number (the types are right here: a TypeError would be a bug), with
    # a zero model that converts as the network's model does: from alpha = 0 (flow matching from pure noise)
    # pndmkit.sample tells the run the network's own prediction, and the dry run must walk it so too
    from pndmkit.sampling import GridStartWarning, PriorScaleWarning, StartAtRestError

    try:
        with blame("t_start", "steps", "grid", "convention", "method", errors=(ValueError,)), \
                warnings.catch_warnings():
            # its one zero entry is no start to measure, and the first batch warns about the grid once
            warnings.simplefilter("ignore", PriorScaleWarning)
            warnings.simplefilter("ignore", GridStartWarning)
            if cfg.solver is not None:
                with blame("solver", errors=(ValueError,)):
                    dry = cfg.solver.sample(_zero_model(ckpt.prediction), np.zeros(1), schedule=ckpt.schedule)
            else:
                dry = pndmkit.sample(_zero_model(ckpt.prediction), np.zeros(1), schedule=ckpt.schedule,
                                     method=method, steps=cfg.steps, grid=cfg.grid, convention=cfg.convention,
                                     t_start=cfg.t_start)
    except UsageError as exc:
        if isinstance(exc.__cause__, StartAtRestError):  # suggest the start as this caller passes it
            raise UsageError(("method", "t_start"), exc.__cause__.advising("SampleConfig(t_start={})")) \
                from exc.__cause__
        raise
    c = ckpt.net.config
    shape = ckpt.shape
    batch = min(cfg.batch_size, shard_size, cfg.num_samples)
    # the estimate knows pndmkit's UNet only (another network is not estimated)
    need = memory_estimate(c, batch, training=False, itemsize=DTYPES[cfg.dtype].itemsize) \
        if hasattr(c, "image_size") else None
    have = available_bytes(device)
    if need is not None and have is not None and need > have:
        log(f"warning: batch_size={batch} may need up to {gib(need)} on {device} (an upper bound), "
            f"{gib(have)} is free; lower --batch-size if the run fails for memory")
    with blame("dtype", "device"):
        # cast only when needed: diffusers' ModelMixin.to logs a float32-modules warning on any dtype argument
        same = all(param.dtype == DTYPES[cfg.dtype] for param in ckpt.net.parameters())
        net = (ckpt.net.to(device=device) if same else ckpt.net.to(device=device, dtype=DTYPES[cfg.dtype])).eval()
    model = ckpt.model(dtype=DTYPES[cfg.dtype])
    model.net = torch.compile(net) if cfg.compile else net
    if method_options is None:
        times = dry.times
    else:  # the dry run's steps are those of a zero model, no sample's: record the end times only
        from pndmkit.sampling import CONVENTIONS, adaptive_end_times

        final_alpha = None if cfg.convention is None else CONVENTIONS[cfg.convention]["final_alpha"]
        times = adaptive_end_times(ckpt.schedule, t_start=cfg.t_start, final_alpha=final_alpha)
    identity = {"format": RUN_FORMAT, "checkpoint": str(stem.resolve()),
                "checkpoint_sha256": {s: file_sha256(f) for s, f in ckpt.content_files().items()},
                **{k: getattr(cfg, k) for k in cfg.IDENTITY}, "shard_size": shard_size,
                "times": [float(t) for t in times]}
    if method_options is not None:
        identity["method_options"] = method_options
        identity["steps_chosen_per_sample"] = True
    if cfg.solver is not None:
        identity["solver"] = cfg.solver.to_dict()
    return _Plan(ckpt, model, method, device, shape, shard_size, identity)


def _solver_method(solver: Any, schedule: Any, stem: Any) -> Any:
    """The integrator of a fitted solver on the checkpoint's schedule; a solver fitted on another schedule is a
    :class:`UsageError` naming ``solver`` and ``checkpoint``."""
    try:
        return solver.integrator(schedule)
    except UsageError as exc:
        if "schedule" not in exc.params:
            raise
        from pndmkit.schedules import schedule_key

        raise UsageError(("solver", "checkpoint"), f"the solver was fitted on {solver.schedule}, but checkpoint "
                                                   f"{str(stem)!r} has the schedule {schedule_key(schedule)}: its "
                                                   "weights and grid hold for the schedule they were fitted on only; "
                                                   "fit one for this network (pndmkit grid fit --model ...)") from None


def _zero_model(prediction: str) -> Any:
    """A model returning zeros that presents itself as :class:`~pndmkit.nn.NetworkModel` does: an ``eps`` model
    converted from ``prediction`` (:func:`pndmkit.models.converted_from`) that hands back an unconverted one and
    can be told another time (``with_time_offset``, for the ``official-pndm`` convention)."""

    def zero(x: Any, t: float) -> Any:
        return x * 0.0

    def converted(x: Any, t: float) -> Any:
        return x * 0.0

    converted.converted_from = prediction  # type: ignore[attr-defined]
    converted.unconverted = lambda: zero  # type: ignore[attr-defined]
    converted.with_time_offset = lambda offset: converted  # type: ignore[attr-defined]  (zeros at any time)
    return converted


def _batch_independent(name: str, schedule: Any) -> tuple[Any, dict[str, Any] | None]:
    """The method to run and, for an adaptive one, the options ``run.json`` records.

    A fixed-step method is passed by name (each sample's run does not depend on its batch). An adaptive
    method that offers it gets one step-size control per sample (``per_sample=True``), so that its samples do
    not depend on the batch either; one that does not is refused, since the command line promises that.
    """
    import dataclasses

    from pndmkit.methods import get_method

    spec = get_method(name)
    if not spec.adaptive:
        return name, None
    built = spec.build(schedule)
    if not (dataclasses.is_dataclass(built) and hasattr(built, "per_sample")):
        raise UsageError("method", f"method {name!r} is adaptive and has no per-sample step control, so its samples "
                                   f"would depend on the batch size; use a fixed-step method")
    built = dataclasses.replace(built, per_sample=True)
    options = {f.name: getattr(built, f.name) for f in dataclasses.fields(built)
               if f.name != "schedule" and isinstance(getattr(built, f.name), (bool, int, float, str))}
    return built, options


def _read_run(run_file: Path, resume: bool) -> dict[str, Any] | None:
    """The run recorded in ``run_file`` (``None`` when there is none), its fields checked; a damaged record is a
    :class:`UsageError` naming the file, worded for the call made (``resume`` or a fresh run)."""
    # what a record that cannot be checked means for this call: a resume cannot go on; a fresh run must not
    # overwrite the folder's record (its shards would lose the only account of what made them)
    then = ("it cannot be checked, so the run cannot be resumed" if resume else
            f"{run_file.parent} holds a run this pndmkit cannot check, and a fresh run does not overwrite it")
    if not run_file.exists() and not run_file.is_symlink():
        return None
    if not run_file.is_file():
        raise UsageError("out", f"{run_file} is not a file (a folder?), so this folder holds no readable run; "
                                "remove it or use another out folder")
    try:
        old = json.loads(run_file.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError("out", f"{run_file} is unreadable ({exc}); use another out folder") from None
    if not isinstance(old, dict):
        raise UsageError("out", f"{run_file} is not a pndmkit run record (a JSON object expected, got "
                                f"{type(old).__name__}); restore the file or use another out folder")
    if old.get("format") != RUN_FORMAT:
        raise UsageError("resume" if resume else "out",
                         f"{run_file} is not a run record of this pndmkit (format={old.get('format')!r}, "
                         f"{RUN_FORMAT} expected; an older pndmkit's has no checkpoint hashes); {then}: use another "
                         "out folder")
    shard, hashes = old.get("shard_size"), old.get("checkpoint_sha256")
    problem = None
    if isinstance(shard, bool) or not isinstance(shard, int) or shard < 1:
        problem = f"shard_size={shard!r} (an integer >= 1 expected)"
    elif not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
        problem = f"checkpoint_sha256={hashes!r} (the SHA-256 of the checkpoint's json and safetensors files expected)"
    elif not isinstance(old.get("times"), list):
        problem = f"times={old.get('times')!r} (the grid's times expected)"
    if problem is not None:
        raise UsageError("out", f"{run_file} is damaged: {problem}; {then}: restore the file or use another out "
                                "folder")
    return old


#: the files a sampling run writes besides ``run.json``: a folder holding any of them without a ``run.json``
#: holds output nothing describes (:func:`_refuse_unrecorded_output`)
OUTPUT_PATTERNS = ("shard-*.npz", "shard-*.png", "summary.json")


def _refuse_unrecorded_output(out: Path, resume: bool) -> None:
    """Refuse an ``out`` with sample output but no ``run.json``: nothing says which settings made it, so a fresh
    run would mix its shards with them (or overwrite them and keep the rest), and a resume cannot check them."""
    found = sorted({p.name for pattern in OUTPUT_PATTERNS for p in out.glob(pattern)}) if out.is_dir() else []
    if found:
        names = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise UsageError("out", f"{out} holds sample output that no run.json describes ({names}), so "
                                + ("--resume (resume=True) cannot check it against this run and " if resume else "")
                                + "a fresh run would mix it with its own or overwrite it: move those files away or "
                                  "use another out folder")


def _warn_undescribed(out: Path, n_shards: int, log: Any) -> None:
    """Name, in one warning, the shard-like files in ``out`` that are no shard of its run (a stray copy, another
    run's): they are left as they are (never deleted: they may be the only copy of someone's samples)."""
    ours = {_shard_path(out, k, suffix).name for k in range(n_shards) for suffix in (".npz", ".png")}
    stray = sorted({p.name for pattern in OUTPUT_PATTERNS if pattern.startswith("shard-") for p in out.glob(pattern)}
                   - ours)
    if stray:
        names = (", ".join(stray[:-1]) + " and " + stray[-1]) if len(stray) > 1 else stray[0]
        them, are = ("them", "they are") if len(stray) > 1 else ("it", "it is")
        log(f"warning: {out} holds {names}, which the run in run.json does not describe (its shards are "
            f"{_shard_path(out, 0, '').name} to {_shard_path(out, n_shards - 1, '').name}): left as {are}"
            + (f"; read_samples reads every shard-*.npz in a folder, so move {them} away before reading the samples"
               if any(name.endswith(".npz") for name in stray) else ""))


def _check_resume(old: dict[str, Any], new: dict[str, Any], run_file: Path) -> None:
    """Refuse to continue a run whose samples would differ: name every setting that changed."""
    changed, fields = [], []
    settings_changed = any(old.get(k) != new[k] for k in SampleConfig.IDENTITY)
    for key, value in new.items():
        if key == "checkpoint" or old.get(key) == value or (key == "times" and settings_changed):
            continue
        if key == "checkpoint_sha256":
            files = [s for s in value if old[key].get(s) != value[s]]
            changed += [f"the checkpoint's {s} file changed (sha256 {old[key].get(s, '?')[:12]}... in run.json, "
                        f"{value[s][:12]}... now)" for s in files]
            fields.append("checkpoint")
        elif key == "times":
            changed.append("the same settings give other grid times now (another pndmkit version?)")
            fields.append("grid")
        elif key == "solver":
            before = old.get(key) if isinstance(old.get(key), dict) else {}
            differ = [k for k in value if before.get(k) != value[k]]
            changed.append(f"the fitted solver is not run.json's (its {', '.join(differ)} differ)" if before
                           else "run.json's run has no fitted solver")
            fields.append("solver")
        else:
            changed.append(f"{key}={old.get(key)!r} in run.json, {value!r} now")
            fields.append(key)
    if changed:
        raise UsageError(("resume", *fields), f"cannot resume {run_file.parent}: {'; '.join(changed)}; "
                                              "shards of different runs are never mixed: use the same settings "
                                              "or another out folder")


def _what(cfg: SampleConfig) -> str:
    """``ddim with 50 steps``, or ``pf (adaptive steps)``."""
    return f"{cfg.method} (adaptive steps)" if cfg.steps is None else f"{cfg.method} with {cfg.steps} steps"


def _check_finite(x: torch.Tensor, batch: np.ndarray, cfg: SampleConfig, shard: int) -> None:
    finite = x.flatten(1).isfinite().all(1)
    if not bool(finite.all()):
        first = int(batch[int((~finite).nonzero()[0, 0])])
        raise FloatingPointError(
            f"sample {first} is not finite (NaN or inf) after {_what(cfg)} "
            f"({int((~finite).sum())} of the {len(batch)} in its batch); shard {shard} was not written "
            f"(the shards already in {cfg.out} are finite); check the checkpoint and --dtype")


#: the lock file of a sampling run in its ``out`` folder (see :func:`_locked_output`)
LOCK_FILE = ".pndmkit-sample.lock"


@contextmanager
def _locked_output(out: Path, rank: int, old: dict[str, Any] | None, resume: bool) -> Iterator[None]:
    """Make ``out`` and hold its lock while the run reads and writes it (rank 0 only).

    The lock is :func:`pndmkit._io.locked_folder` on ``out/.pndmkit-sample.lock`` (a :class:`filelock.FileLock`,
    released by the operating system when its holder ends, so never stale). A second run is refused at once rather
    than made to wait: its settings may differ, and it would only find the folder changed. Only rank 0 of a
    ``torchrun`` run takes it: the other ranks write nothing before the barrier that rank 0 passes holding the
    lock, and rank 0 keeps it until every rank has passed the last barrier; refused, rank 0 stops before that
    barrier, and torchrun stops the other ranks. ``run.json`` is read again under the lock, since another run may
    have written it while this one was checking its options. A run that leaves nothing but the lock file in
    ``out`` (a fresh run stopped before its first shard) removes the lock file, and ``out`` where it made it.

    Raises
    ------
    UsageError
        Naming ``out``: another process holds the lock, or wrote ``run.json`` (or sample output) after this run
        read the folder.
    """
    if rank != 0:
        yield
        return
    with locked_folder(out, LOCK_FILE, what="sampling run"):
        run_file = out / "run.json"
        if _read_run(run_file, resume) != old:
            raise UsageError("out", f"another run wrote {run_file} while this one was checking its options; run "
                                    "the command again" + (" (with --resume to continue that run)" if old is None
                                                           else ""))
        if old is None:
            _refuse_unrecorded_output(out, resume)
        yield


def sample_to_dir(cfg: SampleConfig, *, log=None, opener=None) -> dict[str, Any]:
    """Generate ``cfg.num_samples`` samples into ``cfg.out`` (see the module docstring); return a summary.

    ``opener(cfg.checkpoint)`` loads the network as a :class:`~pndmkit.nn.Checkpoint` (default: a pndmkit
    checkpoint; ``pndmkit sample`` passes :func:`pndmkit.integrations.diffusers.pretrained.open_network`, which
    also reads diffusers folders and cached hub ids, and records the files it read in ``run.json``).

    Raises
    ------
    UsageError
        For a bad option, an existing run without ``resume``, sample output in ``out`` that no ``run.json``
        describes, or a resume whose settings, grid or checkpoint files differ from the run's (nothing is
        written then), or an ``out`` that another sampling run is using (it holds the folder's lock,
        :data:`LOCK_FILE`; nothing in ``out`` is changed then).
    FloatingPointError
        When a sample is not finite (its shard is not written). Where a fresh run stops so, or by any other
        exception (``KeyboardInterrupt`` included), before any of its shards is written, its ``run.json`` (and any
        shard image) is removed too, so the folder holds no run to resume.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    rank, world = _dist_info()
    out = Path(cfg.out)
    check_writable_folder(out, "out")  # before the work, not when its first shard is written
    run_file = out / "run.json"
    old = _read_run(run_file, cfg.resume)
    if old is not None and not cfg.resume:
        if rank == 0:  # a run still writing there: say so, since --resume cannot go on before it ends either
            with locked_folder(out, LOCK_FILE, what="sampling run"):
                pass
        raise UsageError(("out", "resume"), f"{out} already holds a sampling run ({run_file}); "
                                            "pass --resume (resume=True) to continue it, or another out folder")
    if old is None:
        _refuse_unrecorded_output(out, cfg.resume)
    shard_size = cfg.shard_size or (old["shard_size"] if old is not None else min(cfg.batch_size, cfg.num_samples))
    plan = _prepare(cfg, shard_size, log, opener)
    ident = plan.identity
    if old is not None:
        recorded = old
        if isinstance(old.get("solver"), dict) and hasattr(cfg.solver, "complete_record"):
            # recorded by a pndmkit whose solvers lacked a field (the base): the value every solver had then
            recorded = {**old, "solver": cfg.solver.complete_record(old["solver"])}
        _check_resume(recorded, ident, run_file)
    for k in range(rank, math.ceil(cfg.num_samples / shard_size), world):  # where this process will write
        for suffix in (".npz", ".png"):
            path = _shard_path(out, k, suffix)
            if path.exists() and not path.is_file():
                raise UsageError("out", f"{path} is not a file (a folder?), so shard {k} cannot be written there; "
                                        "remove it and run again")

    with _locked_output(out, rank, old, cfg.resume):
        return _sample_locked(cfg, plan, old, rank, world, log)


def _sample_locked(cfg: SampleConfig, plan: _Plan, old: dict[str, Any] | None, rank: int, world: int,
                   log: Any) -> dict[str, Any]:
    """The part of :func:`sample_to_dir` that reads shards and writes, run while rank 0 holds the folder's lock."""
    out, shard_size, ident = Path(cfg.out), plan.shard_size, plan.identity
    run_file = out / "run.json"
    n_shards = math.ceil(cfg.num_samples / shard_size)
    # a resume of a finished run: keep its summary (the NFE, counts and times of the sittings that made it);
    # checked before any rank writes, so a shard written in this sitting cannot count as done before it
    problems: dict[int, str | None] = {}
    checked: dict[int, np.ndarray | None] = {}  # images rank 0's scan read for a PNG to rewrite, reused below
    if rank == 0 and old is not None:
        problems = {k: _shard_problem(_shard_path(out, k, ".npz"), _shard_indices(k, shard_size, cfg.num_samples),
                                      plan.shape) for k in range(n_shards)}
        for k, problem in problems.items():  # a PNG rewritten from images that are not its x's: the shard is redone
            if problem is None and _image_problem(_shard_path(out, k, ".png")) is not None:
                checked[k] = _images_of(_shard_path(out, k, ".npz"))
                if checked[k] is None:
                    problems[k] = IMAGES_NOT_OF_X
    kept = _read_summary(out / "summary.json") if problems and all(
        problem is None for problem in problems.values()) else None

    if rank == 0:  # from here on files are written (out was made by _locked_output)
        if cfg.resume and old is None:  # a script may always pass --resume: it starts the run, but says so
            log(f"no previous run to resume in {out} (no run.json): starting a fresh one")
        for p in remove_stale_temporaries(out):
            log(f"removed {p.name}, left by an interrupted write")
        if old is not None:
            _warn_undescribed(out, n_shards, log)
    if world > 1:  # every rank has checked run.json before rank 0 writes it
        import torch.distributed as dist

        dist.barrier()
    try:
        if rank == 0 and old is None:
            write_json(run_file, ident)
        return _sample_shards(cfg, plan, old, rank, world, log, problems, checked, kept)
    except BaseException:
        if rank == 0 and old is None and not any(out.glob("shard-*.npz")):
            # a fresh run stopped before its first shard, by anything (a non-finite sample, an error, Ctrl-C):
            # no run.json to resume, and no image of a shard that was never written (a fresh run starts in a
            # folder with no shard files, so any there are this run's); the lock then removes its file, and out
            # if it made it, as nothing else is there
            run_file.unlink(missing_ok=True)
            for k in range(n_shards):
                _shard_path(out, k, ".png").unlink(missing_ok=True)
        raise


def _sample_shards(cfg: SampleConfig, plan: _Plan, old: dict[str, Any] | None, rank: int, world: int, log: Any,
                   problems: dict[int, str | None], checked: dict[int, np.ndarray | None],
                   kept: dict[str, Any] | None) -> dict[str, Any]:
    """The shards of :func:`_sample_locked`'s run (after ``run.json`` is written), then the summary."""
    import pndmkit

    out, shard_size, ident = Path(cfg.out), plan.shard_size, plan.identity
    n_shards = math.ceil(cfg.num_samples / shard_size)
    mine, rewritten = [], 0
    for k in range(rank, n_shards, world):
        idx = _shard_indices(k, shard_size, cfg.num_samples)
        path = _shard_path(out, k, ".npz")
        problem = problems[k] if k in problems else _shard_problem(path, idx, plan.shape)
        if problem:
            log(f"{path} {problem}: regenerating shard {k}")
        if problem is not None:
            mine.append((k, idx))
            continue
        png = _shard_path(out, k, ".png")
        why = _image_problem(png)
        if why is not None:  # derived from the checked shard: rewritten from it, nothing is sampled again
            images = checked[k] if k in checked else _images_of(path)
            if images is None:  # found by rank 0's scan too, so no rank keeps the summary
                log(f"{path} {IMAGES_NOT_OF_X}: regenerating shard {k}")
                mine.append((k, idx))
                continue
            _save_shard_png(out, k, images, cfg, plan.shape)
            log(f"{png} {why}: rewrote it from {path.name}")
            rewritten += 1

    if kept is not None and rewritten:
        log(f"nothing to sample: all {n_shards} shards of the run in {out} are done ({rewritten} image"
            f"{'s' if rewritten > 1 else ''} rewritten from {'their shards' if rewritten > 1 else 'its shard'}); "
            "summary.json left as it is")
    elif kept is not None:
        log(f"nothing to do: {'the only shard' if n_shards == 1 else f'all {n_shards} shards'} of the run in {out} "
            f"{'is' if n_shards == 1 else 'are'} done; summary.json left as it is")
    elif cfg.resume:
        log(f"rank {rank}/{world}: {len(mine)} shards to do, {len(range(rank, n_shards, world)) - len(mine)} done")
    todo = sum(len(idx) for _, idx in mine)
    bar = None
    if cfg.progress and rank == 0 and todo:
        bar = progress_bar(todo, desc=f"sample {cfg.method}" + ("" if cfg.steps is None else f" x{cfg.steps}"),
                           unit="img")
    nfe, t0, done, evaluations = None, time.perf_counter(), 0, 0
    # where the noise is drawn: --t-start, else the first of explicit times that start below the schedule's start
    # (an optimised grid with a late first time: off VP its pure noise is smaller, 0.82 of unit noise at a flow
    # model's t = 0.8), else the schedule's start (unit noise)
    # (a fitted solver: its own t_start, where that is not the schedule's start; it takes its grid's first time
    # itself)
    noise_time = cfg.t_start
    if cfg.solver is not None:
        noise_time = cfg.solver.t_start if cfg.solver.t_start != float(plan.ckpt.schedule.t_start) else None
    elif noise_time is None and isinstance(cfg.grid, list) and cfg.grid[0] < float(plan.ckpt.schedule.t_start):
        noise_time = cfg.grid[0]
    try:
        for k, idx in mine:
            chunks, t_shard, shard_evaluations = [], time.perf_counter(), 0
            for b in range(0, len(idx), cfg.batch_size):
                batch = idx[b:b + cfg.batch_size]
                x_T = initial_noise(batch, plan.shape, cfg.seed)
                if noise_time is not None:  # the Gaussian of x_t's variance there (exactly 1 at a default start)
                    x_T = x_T * plan.ckpt.schedule.prior_scale(noise_time)
                x_T = x_T.to(plan.device, non_blocking=True)
                try:
                    if cfg.solver is not None:
                        sol = cfg.solver.sample(plan.model, x_T, schedule=plan.ckpt.schedule)
                    else:
                        sol = pndmkit.sample(plan.model, x_T, schedule=plan.ckpt.schedule, method=plan.method,
                                             steps=cfg.steps, grid=cfg.grid, convention=cfg.convention,
                                             t_start=cfg.t_start)
                    x_b, nfe = sol.x, sol.nfe
                    evaluations += sol.nfe
                    # per sample: a fixed-step method's nfe is each sample's; per-sample control's, their total
                    shard_evaluations += sol.nfe if "method_options" in ident else sol.nfe * len(batch)
                except FloatingPointError as exc:  # the core's end-of-run check: name the sample below
                    if getattr(exc, "run", None) is None:
                        raise
                    x_b = exc.run.x
                chunks.append(x_b.to("cpu", torch.float32))  # one device sync per batch
                _check_finite(chunks[-1], batch, cfg, k)
                if bar is not None:
                    bar.update(len(batch))
            x = torch.cat(chunks)
            images = to_uint8(x)
            _save_shard_png(out, k, images, cfg, plan.shape)
            with atomic_path(_shard_path(out, k, ".npz")) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, indices=idx, x=x.numpy(), images=images,
                             seconds=np.float64(time.perf_counter() - t_shard),
                             nfe_per_sample=np.float64(shard_evaluations / len(idx)))
            done += len(idx)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    if "method_options" in ident and done:  # per-sample control: the NFE differs by sample; report the mean
        nfe = round(evaluations / done, 1)
    summary = {**{k: v for k, v in ident.items() if k != "times"}, "shards": n_shards, "nfe_per_sample": nfe,
               "sampling_seconds": None,
               "this_sitting": {"resumed": old is not None, "world_size": world,
                                "generated_by_rank0": done if rank == 0 else None, "seconds_rank0": round(seconds, 3)}}
    if kept is not None:
        summary = kept
    elif rank == 0:  # every rank's shards are written (the barrier above): the whole run, over all its sittings
        summary.update(_run_totals(out, n_shards, fixed_nfe=nfe if "method_options" not in ident else None))
        write_json(out / "summary.json", summary)
    return {**summary, "generated": done, "rank": rank, "seconds": round(seconds, 3)}


def _run_totals(out: Path, n_shards: int, fixed_nfe: int | None) -> dict[str, Any]:
    """``nfe_per_sample`` and ``sampling_seconds`` of the whole run in ``out``, from what each shard records of the
    sitting that made it (``nfe_per_sample``, ``seconds``): the mean over all samples, and the total. A shard
    written without them (by an older pndmkit) makes the total ``None``; a fixed-step method's NFE, the same for
    every sample, is ``fixed_nfe`` when it is known (``None``: this sitting sampled nothing)."""
    weights, nfes, seconds = [], [], 0.0
    for k in range(n_shards):
        with np.load(_shard_path(out, k, ".npz")) as z:
            if "seconds" not in z.files or "nfe_per_sample" not in z.files:
                seconds = None
                continue
            weights.append(len(z["indices"]))
            nfes.append(float(z["nfe_per_sample"]))
            if seconds is not None:
                seconds += float(z["seconds"])
    if fixed_nfe is None and nfes and len(weights) == n_shards:
        mean = float(np.average(nfes, weights=weights))
        fixed_nfe = int(mean) if all(v == nfes[0] for v in nfes) and mean.is_integer() else round(mean, 1)
    return {"nfe_per_sample": fixed_nfe, "sampling_seconds": None if seconds is None else round(seconds, 3)}


def read_samples(out: str | os.PathLike[str], *, expect: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load all shards of a run: ``(indices, x)`` sorted by index; checks for duplicates and gaps."""
    files = sorted(Path(out).glob("shard-*.npz"))
    if not files:
        raise FileNotFoundError(f"no shard-*.npz files in {out}")
    idx, xs = [], []
    for f in files:
        with np.load(f) as z:
            idx.append(z["indices"])
            xs.append(z["x"])
    indices = np.concatenate(idx)
    order = np.argsort(indices, kind="stable")
    indices = indices[order]
    if np.any(np.diff(indices) == 0):
        raise ValueError(f"duplicate sample indices in {out}")
    n = expect if expect is not None else int(indices[-1]) + 1
    if not np.array_equal(indices, np.arange(n)):
        raise ValueError(f"samples in {out} are not exactly indices 0..{n - 1} (have {len(indices)})")
    return indices, np.concatenate(xs)[order]
