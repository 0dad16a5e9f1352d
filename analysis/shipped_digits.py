"""The shipped digits diffusion model and digits-FID, for the studies that need a real network.

:func:`load` raises :class:`Unavailable` (with the reason) when torch, :mod:`pndmkit.nn` or the shipped
checkpoint ``digits`` is missing, so the studies and figures can skip with a clear message.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

IMAGE_SHAPE = (1, 16, 16)
#: environment variable naming another checkpoint than the shipped ``digits``
CHECKPOINT_ENV = "PNDMKIT_DIGITS_CHECKPOINT"
#: environment variable naming the torch device the network runs on (default ``cpu``; e.g. ``cuda``)
DEVICE_ENV = "PNDMKIT_DIGITS_DEVICE"


class Unavailable(RuntimeError):
    """The digits model or the digits-FID feature network cannot be loaded here."""


@dataclass
class Digits:
    """The shipped model as a pndmkit model, its training schedule and a description."""

    model: Callable[[Any, float], Any]
    schedule: Any
    description: str


def load() -> Digits:
    """Load the shipped ``digits`` checkpoint (raises :class:`Unavailable` when it cannot).

    The environment variable ``PNDMKIT_DIGITS_CHECKPOINT`` (a path or shipped name) selects another one, and
    ``PNDMKIT_DIGITS_DEVICE`` the torch device of the network (:func:`run_sampler` moves the noises there and
    the samples back to the CPU).
    """
    try:
        import torch  # noqa: F401

        from pndmkit.nn.checkpoint import load_checkpoint
    except ImportError as exc:
        raise Unavailable(f"pndmkit.nn is not importable ({exc}); install the torch extra") from None
    try:
        ckpt = load_checkpoint(os.environ.get(CHECKPOINT_ENV, "digits"))
    except FileNotFoundError as exc:
        raise Unavailable(f"the shipped digits checkpoint is not there yet ({exc})") from None
    meta = ckpt.meta or {}
    desc = (f"digits UNet ({meta.get('parameters', '?')} parameters, {meta.get('trained_steps', '?')} training "
            f"steps), trained on {ckpt.schedule!r}")
    ckpt.net.to(os.environ.get(DEVICE_ENV) or "cpu")
    return Digits(model=ckpt.model(), schedule=ckpt.schedule, description=desc)


def fid_function() -> Callable[[Any], float]:
    """``digits_fid(images)`` of :mod:`pndmkit.nn.frechet` (raises :class:`Unavailable` without its feature net)."""
    try:
        from pndmkit.nn.frechet import digits_fid, load_feature_network
    except ImportError as exc:
        raise Unavailable(f"pndmkit.nn.frechet is not importable ({exc})") from None
    try:
        load_feature_network()
    except FileNotFoundError as exc:
        raise Unavailable(f"the digits-FID feature network is not shipped yet ({exc})") from None
    return digits_fid


def noise(n: int, seed: int = 0) -> Any:
    """``n`` initial noise images ``(n, 1, 16, 16)``, float32, the same for every method.

    One draw of torch's CPU generator seeded with ``seed`` for the whole batch
    (:func:`pndmkit.noise.torch_randn`), as the shipped digits results were made; the first ``m`` images are
    those of ``noise(m, seed)``.
    """
    import torch

    from pndmkit.noise import torch_randn

    return torch.from_numpy(torch_randn((n, *IMAGE_SHAPE), seed))


def run_sampler(digits: Digits, x_T: Any, method: Any, steps: int, *, grid: Any = None,
                callback: Any = None, batch: int = 256) -> tuple[Any, int, float]:
    """Sample from ``x_T`` in batches; return ``(images, NFE per sample (mean over batches), seconds)``."""
    import torch

    import pndmkit

    t0, parts, nfe = time.perf_counter(), [], 0
    device = next(digits.model.net.parameters()).device if hasattr(digits.model, "net") else "cpu"
    with torch.inference_mode():
        for k in range(0, len(x_T), batch):
            sol = pndmkit.sample(digits.model, x_T[k:k + batch].to(device), schedule=digits.schedule, method=method,
                                 steps=steps, grid=grid, convention=None if grid is not None else "ddim",
                                 callback=callback)
            parts.append(sol.x.cpu())
            nfe += sol.nfe * len(sol.x)
    return torch.cat(parts), round(nfe / len(x_T)), time.perf_counter() - t0


def finite_images(x: Any) -> bool:
    import torch

    return bool(torch.isfinite(x).all())


def data_fid_floor(fid: Callable[[Any], float], n: int, repeats: int = 5) -> tuple[float, float]:
    """Mean and std of digits-FID of ``n`` random real digits against the whole set (finite-sample floor)."""
    from pndmkit.nn.data import load_digits_images

    x, _ = load_digits_images()
    rng = np.random.default_rng(0)
    vals = [fid(x[rng.choice(len(x), size=min(n, len(x)), replace=False)]) for _ in range(repeats)]
    return float(np.mean(vals)), float(np.std(vals))


def safe_fid(fid: Callable[[Any], float], x: Any) -> float:
    return fid(x) if finite_images(x) else math.nan
