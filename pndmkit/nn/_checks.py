"""Checks that run before a job writes anything: device, memory estimate, content hashes.

The memory estimate counts the outputs of every leaf module of the network for one sample, from a pass
on the ``meta`` device (no memory, no arithmetic), and scales it by the batch size. In training those
outputs are kept for the backward pass, so the count is close to the real activation memory; without
gradients most are freed as soon as they are used, so for sampling it is an upper bound.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from pndmkit.errors import UsageError

__all__ = ["check_device", "available_bytes", "activation_bytes", "memory_estimate", "file_sha256", "gib"]

_GIB = 2.0 ** 30


def gib(n: float) -> str:
    """``n`` bytes in GiB, for messages (``'1.50 GiB'``)."""
    return f"{n / _GIB:.2f} GiB"


def check_device(name: str, param: str = "device") -> torch.device:
    """``torch.device(name)`` after checking that it parses and exists here; else :class:`UsageError`."""
    hint = "e.g. cpu, cuda, cuda:1, mps"
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(param, f"unknown device {name!r}; {hint}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(param, f"device {name!r}: CUDA is not available here "
                                    "(torch.cuda.is_available() is False); use cpu")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise UsageError(param, f"device {name!r}: there are {n} CUDA device(s), cuda:0..cuda:{n - 1}")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError(param, f"device {name!r}: MPS is not available here; use cpu")
    elif dev.type == "meta":
        raise UsageError(param, f"device {name!r} holds no data; {hint}")
    elif dev.type != "cpu":
        try:
            torch.empty(1, device=dev)
        except (RuntimeError, AssertionError) as exc:
            raise UsageError(param, f"device {name!r} is not usable here ({str(exc).splitlines()[0]}); {hint}") from None
    return dev


def available_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` in bytes (CUDA: free device memory; CPU: ``MemAvailable``), None if unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def activation_bytes(config: Any) -> tuple[int, int]:
    """``(parameters, activation elements per sample)`` of a :class:`~pndmkit.nn.unet.UNet` with ``config``.

    Activations: the number of elements of every leaf module's output for a batch of one, counted on the
    ``meta`` device (no memory is allocated).
    """
    from pndmkit.nn.unet import UNet

    total = 0

    def count(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    with torch.device("meta"):
        net = UNet(config)
        leaves = [m for m in net.modules() if next(m.children(), None) is None]
        handles = [m.register_forward_hook(count) for m in leaves]
        try:
            net(torch.empty(1, config.in_channels, config.image_size, config.image_size), torch.empty(1))
        finally:
            for h in handles:
                h.remove()
    return sum(p.numel() for p in net.parameters()), total


def memory_estimate(config: Any, batch_size: int, *, training: bool, itemsize: int = 4) -> int:
    """Bytes a UNet with ``config`` needs for one batch (see the module docstring).

    Training (float32): weights, gradients, two AdamW moments and the EMA copy (5 x parameters) plus the
    activations kept for backward. Sampling: the weights in ``itemsize`` bytes plus every activation
    (an upper bound).
    """
    params, acts = activation_bytes(config)
    if training:
        return 4 * (5 * params + batch_size * acts)
    return itemsize * (params + batch_size * acts)


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
