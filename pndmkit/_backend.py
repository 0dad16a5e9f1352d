"""The few array operations the core needs beyond ``a*x + b*e``, for numpy arrays and torch tensors.

The core never imports torch: a tensor is recognised by its module name, so pndmkit works without torch
installed and with any torch version a user has.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

__all__ = ["is_torch", "check_array", "match_dtype", "cast", "read_only", "version_counter", "copy_array",
           "owns_memory", "aliases", "concatenate",
           "to_host_float64", "from_host", "all_finite", "dtype_name", "lincomb", "LinComb", "outside_graph"]

#: tensor dtypes numpy shares; others (bfloat16) travel to and from the host as float32
_HOST_SHARED = ("float64", "float32", "float16")


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch)."""
    kind = type(x)
    if kind in _TENSOR_TYPES:  # asked at every evaluation: the answer is remembered per type
        return True
    if kind is np.ndarray:
        return False
    answer = kind.__module__.startswith("torch") and hasattr(x, "dtype") and hasattr(x, "device")
    if answer:
        _TENSOR_TYPES.add(kind)
    return answer


#: the tensor types :func:`is_torch` has recognised
_TENSOR_TYPES: set = set()


def dtype_name(x: Any) -> str:
    """The dtype of an array as a short string (``float64``, ``bfloat16``)."""
    return str(x.dtype).replace("torch.", "")


def _is_floating(x: Any) -> bool:
    if is_torch(x):
        return bool(x.is_floating_point())
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)


def check_array(x: Any, name: str, *, finite: bool = False) -> None:
    """Raise ``TypeError`` unless ``x`` is a floating numpy array or torch tensor (a sampler's start).

    A 0-d numpy array is refused (``ValueError``): numpy arithmetic turns it into a numpy scalar (``0.1 * x``
    is a ``numpy.float64``, not an array), so neither the sampler state nor a model written as array
    arithmetic would stay an array. A 0-d torch tensor stays one through arithmetic and is accepted.

    With ``finite=True`` also raise ``ValueError`` if an entry is NaN or infinite, naming ``name``, the count
    and the first such index (one device synchronisation for a torch tensor on a GPU: check once, up front;
    a tensor on the ``meta`` device has no values and passes).

    >>> check_array(np.array([0.0, np.inf]), "x_T", finite=True)
    Traceback (most recent call last):
        ...
    ValueError: x_T must be finite; 1 of 2 entries are NaN or infinite (the first at index (1,), inf)
    """
    if not (isinstance(x, np.ndarray) or is_torch(x)):
        raise TypeError(f"{name} must be a numpy.ndarray or a torch.Tensor, got {type(x).__name__}")
    if not _is_floating(x):
        raise TypeError(f"{name} must have a floating dtype, got {dtype_name(x)}")
    if isinstance(x, np.ndarray) and x.ndim == 0:
        raise ValueError(f"{name} must have at least one axis as a numpy array, got a 0-d array ({float(x)!r}): "
                         f"numpy arithmetic turns it into a numpy scalar, not an array; pass {name}.reshape(1) "
                         f"(or a 0-d torch tensor)")
    if finite and not (is_torch(x) and x.device.type == "meta") and not all_finite(x):
        bad = ~(x.isfinite() if is_torch(x) else np.isfinite(x))
        where = tuple(int(i) for i in (bad.nonzero()[0] if is_torch(x) else np.argwhere(bad)[0]))
        raise ValueError(f"{name} must be finite; {int(bad.sum())} of {bad.numel() if is_torch(x) else bad.size} "
                         f"entries are NaN or infinite (the first at index {where}, {float(x[where])})")


def match_dtype(e: Any, like: Any) -> Any:
    """Cast ``e`` to the dtype of ``like`` (the sampler state) if it differs, e.g. an fp16 model output."""
    if e.dtype == like.dtype:
        return e
    return e.to(like.dtype) if is_torch(e) else e.astype(like.dtype)


def cast(x: Any, dtype: str) -> Any:
    """``x`` in the floating dtype named ``dtype`` (``"float32"``, ``"bfloat16"``, ...), on its own device.

    The one place the core changes an array's dtype by name (numpy ``astype``, torch ``to``); ``x`` itself
    when it already has that dtype.

    >>> cast(np.ones(2, dtype=np.float32), "float64").dtype
    dtype('float64')
    """
    if dtype_name(x) == dtype:
        return x
    if is_torch(x):
        import torch

        return x.to(getattr(torch, dtype))
    return x.astype(dtype)


def to_host_float64(x: Any, *, copy: bool = False) -> np.ndarray:
    """``x`` as a float64 numpy array on the host (numpy arrays, tensors on any device, lists).

    A tensor goes to the host in its own dtype (float32 for bfloat16, which numpy lacks) and is widened by
    numpy, so no float64 tensor is ever created on the device (Apple MPS has none); the result is new memory.
    A float64 numpy array is returned as it is (the same memory, no copy) unless ``copy=True``, which always
    gives new memory (one copy, also when the dtype changes): for a caller that keeps the result while ``x``
    may change (a model's reused output buffer). Paired with :func:`from_host`; these are the host round trips
    of reference-style code (the adaptive solver, the analytic problems), never of the sampling hot path.
    """
    if is_torch(x):
        x = x.detach()
        return (x if dtype_name(x) in _HOST_SHARED else x.float()).cpu().numpy().astype(np.float64)
    return np.array(x, dtype=np.float64) if copy else np.asarray(x, dtype=np.float64)


def from_host(v: np.ndarray, like: Any) -> Any:
    """``v`` (a host float64 array) as an array of the type, dtype and device of ``like``.

    Tensors are narrowed on the host first (to ``like``'s dtype, or float32 for bfloat16), then moved.
    """
    if is_torch(like):
        import torch

        host_dtype = dtype_name(like) if dtype_name(like) in _HOST_SHARED else "float32"
        host = torch.from_numpy(np.ascontiguousarray(v, dtype=host_dtype)).reshape(v.shape)  # 0-d stays 0-d
        return host.to(like.dtype).to(like.device)
    return np.asarray(v).astype(like.dtype, copy=False)


def read_only(x: Any) -> Any:
    """A read-only view of a numpy array (the same data, no copy); a tensor unchanged (torch has no
    read-only tensors: see :func:`version_counter`)."""
    if isinstance(x, np.ndarray) and x.flags.writeable:
        x = x.view()
        x.setflags(write=False)  # a third of the cost of assigning x.flags.writeable
    return x


def version_counter(x: Any) -> Any:
    """torch's in-place version counter of a tensor (it grows with every in-place write; reading it does not
    synchronise a device), ``None`` for a numpy array and for tensors made under ``torch.inference_mode``, which
    keep no counter (there the in-place check is off)."""
    if type(x) is np.ndarray or not is_torch(x):
        return None
    try:
        return x._version
    except RuntimeError:  # an inference tensor: "Inference tensors do not track version counter"
        return None


def copy_array(x: Any) -> Any:
    """A new array with the values of ``x`` (same type, dtype, device, shape); writing to either leaves the other."""
    return x.clone() if is_torch(x) else x.copy()


#: ``(use_count, sole)``: torch's storage use count (``None`` where this torch lacks it) and its value for a storage no
#: other tensor shares, as :func:`owns_memory` reads it (the tensor's reference and the temporary storage object's);
#: found once, on a fresh tensor
_STORAGE_USES: list = []


def owns_memory(x: Any) -> bool:
    """Whether no other array (view, ``detach()``, ``torch.from_numpy``/DLPack import) can reach the memory of ``x``.

    numpy: ``x`` owns its data (views of it hold ``x`` itself as their base, which the caller's reference count
    shows). torch: the storage is used by this tensor alone (no view, no detached alias) and was allocated by torch
    (resizable; memory imported with ``from_blob``/DLPack is not). Reads host-side bookkeeping only, never the values
    (no device synchronisation). ``False`` where it cannot tell (a torch without the storage use count).
    """
    if type(x) is np.ndarray:
        return bool(x.flags.owndata)
    if not is_torch(x):
        return False
    if not _STORAGE_USES:
        torch = sys.modules["torch"]
        use_count = getattr(torch._C, "_storage_Use_Count", None)
        tensor = torch.empty(1)
        probe = tensor.untyped_storage()  # both held while counted (a temporary's pointer would dangle)
        _STORAGE_USES.extend((use_count, None if use_count is None else use_count(probe._cdata)))
    use_count, sole = _STORAGE_USES
    if use_count is None:
        return False
    try:
        storage = x.untyped_storage()
        return use_count(storage._cdata) <= sole and storage.resizable()
    except (RuntimeError, AttributeError, TypeError):  # a tensor subclass or a storage without these
        return False


def aliases(value: Any, array: Any) -> bool:
    """Whether ``value`` (an array or a :class:`LinComb`) is ``array``, a view of it or a combination holding it.

    Identity and view bases only (host-side attributes, no values read): what a transfer's gradient can be when it
    passes a model output through unchanged.
    """
    if value is array:
        return True
    if isinstance(value, LinComb):
        return any(aliases(a, array) for a in value.arrays)
    base = getattr(value, "_base" if is_torch(value) else "base", None)
    if base is None:
        return False
    return base is array or base is getattr(array, "_base" if is_torch(array) else "base", None)


def concatenate(arrays: Sequence[Any]) -> Any:
    """Join arrays of one kind (numpy or torch) along the first axis."""
    if is_torch(arrays[0]):
        import torch

        return torch.cat(list(arrays))
    return np.concatenate(list(arrays))


def all_finite(x: Any) -> bool:
    """Whether every entry is finite (synchronises with the device for torch, once: use only on request).

    A tensor is reduced to its minimum and maximum (one pass, nothing allocated at its size; both are NaN if
    an entry is, and an infinite entry is one of them): ``0 * min + 0 * max`` is finite exactly when every
    entry is. ``isfinite().all()`` would first write a boolean tensor of the sample's size (on a 12 MB CPU
    sample, 40 times slower).
    """
    if is_torch(x):
        if x.numel() == 0:
            return True
        low, high = x.aminmax()
        return bool((low * 0 + high * 0).isfinite().item())
    return bool(np.isfinite(x).all())


class LinComb:
    """A lazy linear combination ``sum_k weights[k] * arrays[k]`` (Python-float weights).

    Estimators return their gradient in this form so that the transfer can fuse it with its own
    ``a * x + b * e`` into one :func:`lincomb`: one fresh array and one pass per term for the whole step,
    instead of one array for ``e`` and another for ``x_next``. :meth:`evaluate` gives the array.
    """

    __slots__ = ("weights", "arrays")

    def __init__(self, weights: Sequence[float], arrays: Sequence[Any]) -> None:
        if len(weights) != len(arrays):
            raise ValueError(f"LinComb needs one weight per array, got {len(weights)} weights and {len(arrays)} arrays")
        self.weights = tuple(map(float, weights))
        self.arrays = tuple(arrays)

    def evaluate(self) -> Any:
        """The combination as an array (a fresh one; the inputs are never modified)."""
        return lincomb(self.weights, self.arrays)

    def scaled_terms(self, scale: float) -> list[tuple[float, Any]]:
        """The terms ``(scale * w_k, a_k)``, nested combinations flattened."""
        out: list[tuple[float, Any]] = []
        for w, a in zip(self.weights, self.arrays):
            if isinstance(a, LinComb):
                out.extend(a.scaled_terms(scale * w))
            else:
                out.append((scale * w, a))
        return out


def lincomb(weights: Sequence[float], arrays: Sequence[Any]) -> Any:
    """``sum_k weights[k] * arrays[k]`` with Python-float weights, skipping zero weights.

    Entries of ``arrays`` may themselves be :class:`LinComb`; they are expanded into the same sum. One
    fresh result array is accumulated in place (``add_(a, alpha=w)`` for torch, one kernel and one pass per
    term; ``numpy.multiply``/``add`` into one scratch array for numpy), so a step allocates one array per
    combination whatever the number of terms. Inputs are never modified. At least one array is needed
    (its type, dtype and device give the result's).

    >>> lincomb([0.5, 0.0, 2.0], [np.ones(2), np.full(2, np.nan), np.arange(2.0)]).tolist()
    [0.5, 2.5]
    >>> lincomb([1.0, 2.0], [np.ones(2), LinComb([0.5, 0.5], [np.ones(2), np.zeros(2)])]).tolist()
    [2.0, 2.0]
    """
    if len(arrays) == 2 and not isinstance(arrays[0], LinComb) and not isinstance(arrays[1], LinComb):
        # two arrays (a transfer's a x + b e, a data prediction's c_x x + c_e eps: asked at every step): the sum
        # below without its lists
        w0, w1 = float(weights[0]), float(weights[1])
        if w0 != 0.0 and w1 != 0.0:
            return _accumulate(arrays[0] * w0, ((w1, arrays[1]),))
    terms: list[tuple[float, Any]] = []
    for w, a in zip(weights, arrays):
        if isinstance(a, LinComb):
            terms.extend(a.scaled_terms(float(w)))
        else:
            terms.append((float(w), a))
    nonzero = [term for term in terms if term[0] != 0.0]
    if not nonzero:
        return 0.0 * terms[0][1]
    w0, a0 = nonzero[0]
    return _accumulate(a0 * w0, nonzero[1:])


def _accumulate(out: Any, terms: Sequence[tuple[float, Any]]) -> Any:
    """``out`` (a fresh array) plus ``w * a`` for each ``(w, a)`` of ``terms``, accumulated in place."""
    if is_torch(out):
        for w, a in terms:
            out.add_(a, alpha=w)
    elif terms:
        scratch = np.empty_like(out)
        for w, a in terms:
            np.multiply(a, w, out=scratch)
            out += scratch
    return out


_F = TypeVar("_F", bound=Callable[..., Any])


def outside_graph(fn: _F) -> _F:
    """Decorator: ``fn`` runs eagerly, outside the graph, when a ``torch.compile`` trace reaches it.

    For the host-side set-up of a run (grid checks, the stability check, the plan: numpy in float64),
    which a trace would otherwise turn into tensor operations (``torch._dynamo`` traces numpy). The trace
    breaks around the call and resumes after it; called outside a trace, ``fn`` runs as it is (directly until
    ``torch._dynamo`` has been imported). torch is looked up only among the imported modules, never imported
    here.
    """

    disabled: list = []  # fn under torch.compiler.disable, made on the first call once torch._dynamo is imported

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not disabled:
            # torch.compile imports torch._dynamo before it traces anything: until then nothing can be traced,
            # and importing it here would cost every torch user a second and 40 MB
            if sys.modules.get("torch._dynamo") is None:
                return fn(*args, **kwargs)
            disabled.append(sys.modules["torch"].compiler.disable(fn))
        return disabled[0](*args, **kwargs)

    return wrapper  # type: ignore[return-value]
