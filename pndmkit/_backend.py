"""The few array operations the core needs beyond ``a*x + b*e``, for numpy arrays and torch tensors.

The core never imports torch: a tensor is recognised by its module name, so pndmkit works without torch
installed and with any torch version a user has.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["is_torch", "check_array", "match_dtype", "all_finite", "dtype_name", "lincomb"]


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "dtype") and hasattr(x, "device")


def dtype_name(x: Any) -> str:
    """The dtype of an array as a short string (``float64``, ``bfloat16``)."""
    return str(x.dtype).replace("torch.", "")


def _is_floating(x: Any) -> bool:
    if is_torch(x):
        return bool(x.is_floating_point())
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)


def check_array(x: Any, name: str) -> None:
    """Raise ``TypeError`` unless ``x`` is a floating numpy array or torch tensor."""
    if not (isinstance(x, np.ndarray) or is_torch(x)):
        raise TypeError(f"{name} must be a numpy.ndarray or a torch.Tensor, got {type(x).__name__}")
    if not _is_floating(x):
        raise TypeError(f"{name} must have a floating dtype, got {dtype_name(x)}")


def match_dtype(e: Any, like: Any) -> Any:
    """Cast ``e`` to the dtype of ``like`` (the sampler state) if it differs, e.g. an fp16 model output."""
    if e.dtype == like.dtype:
        return e
    return e.to(like.dtype) if is_torch(e) else e.astype(like.dtype)


def all_finite(x: Any) -> bool:
    """Whether every entry is finite (synchronises with the device for torch: use only on request)."""
    if is_torch(x):
        return bool(x.isfinite().all().item())
    return bool(np.isfinite(x).all())


def lincomb(weights: Sequence[float], arrays: Sequence[Any]) -> Any:
    """``sum_k weights[k] * arrays[k]`` with Python-float weights, skipping zero weights.

    One fresh result array is accumulated in place (``add_(a, alpha=w)`` for torch: one kernel per term),
    so a step allocates one array per combination whatever the number of terms. Inputs are never modified.

    >>> lincomb([0.5, 0.0, 2.0], [np.ones(2), np.full(2, np.nan), np.arange(2.0)]).tolist()
    [0.5, 2.5]
    """
    terms = [(w, a) for w, a in zip(weights, arrays) if w != 0.0]
    if not terms:
        return 0.0 * arrays[0]
    w0, a0 = terms[0]
    out = a0 * w0
    if is_torch(out):
        for w, a in terms[1:]:
            out.add_(a, alpha=w)
    else:
        for w, a in terms[1:]:
            out += w * a
    return out
