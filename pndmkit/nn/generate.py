r"""Sampling at scale: per-sample noise, shards written atomically, resume, several processes.

Sample ``i`` starts from noise drawn by a CPU generator seeded with :func:`sample_seed` ``(seed, i)``, so
it is the same whatever the batch size, the device or the number of processes. The index range
``[0, num_samples)`` is cut into shards of ``shard_size`` samples; shard ``k`` belongs to rank
``k % world_size``. A finished shard is written as ``shard-KKKKK.png`` (a grid) and then
``shard-KKKKK.npz`` (``indices``, ``x`` float32 NCHW, ``images`` uint8 NHWC), each through a temporary
file and ``os.replace``, so a shard file is either complete or absent. ``resume=True`` skips shards whose
NPZ exists (and checks their indices): after a crash nothing is lost and nothing is done twice.
``run.json`` records what determines the samples; resuming with different settings is refused.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process initialises ``torch.distributed`` (NCCL on CUDA,
gloo on CPU), takes its shards, and all meet at a barrier before rank 0 writes ``summary.json``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from pndmkit.nn._io import atomic_path, progress_bar, write_json
from pndmkit.nn.data import to_uint8

__all__ = ["SampleConfig", "sample_to_dir", "sample_seed", "initial_noise", "read_samples", "image_grid"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def sample_seed(seed: int, index: int) -> int:
    """A 63-bit generator seed for sample ``index`` of a run with ``seed`` (stable across Python runs)."""
    digest = hashlib.sha256(f"pndmkit-sample:{int(seed)}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def initial_noise(indices: Sequence[int], shape: Sequence[int], seed: int) -> torch.Tensor:
    """Float32 CPU tensor ``(len(indices), *shape)`` of N(0, I) noise, one CPU generator per sample."""
    gen = torch.Generator(device="cpu")
    out = torch.empty((len(indices), *shape), dtype=torch.float32)
    for row, i in enumerate(indices):
        gen.manual_seed(sample_seed(seed, i))
        out[row] = torch.randn(tuple(shape), generator=gen)
    return out


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
    """What :func:`sample_to_dir` does; the fields in :attr:`IDENTITY` determine the samples."""

    checkpoint: str = "digits"
    out: str = "samples"
    method: str = "f-pndm"
    steps: int = 50
    num_samples: int = 64
    batch_size: int = 64
    shard_size: int = 1000
    seed: int = 0
    grid: str | None = None
    convention: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    compile: bool = False
    resume: bool = False
    progress: bool = True
    png_max: int = 256

    IDENTITY = ("checkpoint", "method", "steps", "num_samples", "shard_size", "seed", "grid", "convention", "dtype")

    def __post_init__(self) -> None:
        for name in ("steps", "num_samples", "batch_size", "shard_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")

    def identity(self) -> dict[str, Any]:
        """The settings that determine the samples (recorded in ``run.json``, checked on resume)."""
        d = {k: getattr(self, k) for k in self.IDENTITY}
        ckpt = Path(str(self.checkpoint))
        if ckpt.suffix in (".json", ".safetensors") or ckpt.with_suffix(".json").is_file():
            d["checkpoint"] = str(ckpt.with_suffix("").resolve())
        return d


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


def _device_for(cfg: SampleConfig, rank: int) -> torch.device:
    dev = torch.device(cfg.device)
    if dev.type == "cuda" and dev.index is None:
        local = int(os.environ.get("LOCAL_RANK", rank))
        dev = torch.device("cuda", local % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(dev)
    return dev


def _shard_path(out: Path, k: int, suffix: str) -> Path:
    return out / f"shard-{k:05d}{suffix}"


def _shard_done(path: Path, expected: np.ndarray) -> bool:
    if not path.is_file():
        return False
    try:
        with np.load(path) as z:
            return bool(np.array_equal(z["indices"], expected))
    except Exception:  # a damaged file (e.g. from a different tool) is redone
        return False


def sample_to_dir(cfg: SampleConfig, *, log=None) -> dict[str, Any]:
    """Generate ``cfg.num_samples`` samples into ``cfg.out`` (see the module docstring); return a summary."""
    import pndmkit
    from pndmkit.nn.checkpoint import load_checkpoint

    log = log or (lambda msg: print(msg, file=sys.stderr))
    rank, world = _dist_info()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ident = cfg.identity()
    run_file = out / "run.json"
    if run_file.is_file():
        old = json.loads(run_file.read_text())
        if not cfg.resume:
            raise FileExistsError(f"{out} already holds a sampling run ({run_file}); pass --resume or another --out")
        diff = {k: (old.get(k), v) for k, v in ident.items() if old.get(k) != v}
        if diff:
            raise ValueError(f"--resume with settings that differ from {run_file}: {diff} (old, new)")
    if world > 1:  # every rank has checked run.json before rank 0 writes it
        import torch.distributed as dist

        dist.barrier()
    if rank == 0 and not run_file.is_file():
        write_json(run_file, ident)

    n_shards = math.ceil(cfg.num_samples / cfg.shard_size)
    mine = []
    for k in range(rank, n_shards, world):
        idx = np.arange(k * cfg.shard_size, min((k + 1) * cfg.shard_size, cfg.num_samples), dtype=np.int64)
        if not _shard_done(_shard_path(out, k, ".npz"), idx):
            mine.append((k, idx))

    if cfg.resume:
        log(f"rank {rank}/{world}: {len(mine)} shards to do, {len(range(rank, n_shards, world)) - len(mine)} done")
    device = _device_for(cfg, rank)
    ckpt = load_checkpoint(cfg.checkpoint)
    net = ckpt.net.to(device=device, dtype=DTYPES[cfg.dtype]).eval()
    if cfg.compile:
        net = torch.compile(net)
    model = ckpt.model(dtype=DTYPES[cfg.dtype])
    model.net = net
    c = ckpt.net.config
    shape = (c.in_channels, c.image_size, c.image_size)

    todo = sum(len(idx) for _, idx in mine)
    bar = None
    if cfg.progress and rank == 0 and todo:
        bar = progress_bar(todo, desc=f"sample {cfg.method} x{cfg.steps}", unit="img")
    nfe, t0, done = None, time.perf_counter(), 0
    for k, idx in mine:
        chunks = []
        for b in range(0, len(idx), cfg.batch_size):
            batch = idx[b:b + cfg.batch_size]
            x_T = initial_noise(batch, shape, cfg.seed).to(device, non_blocking=True)
            sol = pndmkit.sample(model, x_T, schedule=ckpt.schedule, method=cfg.method, steps=cfg.steps,
                                 grid=cfg.grid, convention=cfg.convention)
            nfe = sol.nfe
            chunks.append(sol.x.to("cpu", torch.float32))  # one device sync per batch
            if bar is not None:
                bar.update(len(batch))
        x = torch.cat(chunks)
        images = to_uint8(x)
        save_png(_shard_path(out, k, ".png"), images[:cfg.png_max], scale=2 if shape[1] <= 32 else 1)
        with atomic_path(_shard_path(out, k, ".npz")) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, indices=idx, x=x.numpy(), images=images)
        done += len(idx)
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    if world > 1:
        dist.barrier()
    summary = {**ident, "world_size": world, "shards": n_shards, "nfe_per_sample": nfe,
               "generated_by_rank0": done if rank == 0 else None, "seconds_rank0": round(seconds, 3)}
    if rank == 0:
        write_json(out / "summary.json", summary)
    return {**summary, "generated": done, "rank": rank, "seconds": round(seconds, 3)}


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
