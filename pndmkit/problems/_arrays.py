"""numpy/torch interchange for the analytic problems (torch is imported only when a tensor arrives).

Ground-truth computations run in float64 numpy; a torch tensor is copied to host float64 and the
result copied back with the caller's dtype and device, through the one pair of round trips of
:mod:`pndmkit._backend` (``to_host_float64`` / ``from_host``). These problems are references, not hot paths
on an accelerator, so the host round trip is an accepted cost.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from pndmkit._backend import from_host, is_torch, to_host_float64

__all__ = ["to_float64"]


def to_float64(x: Any, name: str = "x") -> tuple[NDArray[np.float64], Callable[[NDArray[np.float64]], Any]]:
    """Return ``x`` as a float64 numpy array and a function that converts a result back to ``x``'s kind.

    The converter gives a tensor with ``x``'s dtype and device for torch input, an array of ``x``'s
    floating dtype for numpy input, and float64 for anything else (lists, integer arrays).
    """
    if is_torch(x):
        arr = to_host_float64(x)
        like = x if x.is_floating_point() else x.double()

        def back(out: NDArray[np.float64]) -> Any:
            return from_host(out, like)

        return arr, back
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a real numpy array or torch tensor, got dtype {arr.dtype}")
    like_np = arr if np.issubdtype(arr.dtype, np.floating) else np.empty(0)

    def back_np(out: NDArray[np.float64]) -> Any:
        return from_host(out, like_np)

    return to_host_float64(arr), back_np
