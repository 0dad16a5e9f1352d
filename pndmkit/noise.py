r"""Per-sample seeded N(0, I) noise: noise ``i`` depends only on ``(seed, i)``, never on the batch.

Every study and ``pndmkit sample`` draws its initial noises here. Noise ``i`` of a run with ``seed`` is the
output of ``torch.randn(shape, generator=torch.Generator().manual_seed(sample_seed(seed, i)))`` (float32),
computed in numpy: torch is not needed, and the numbers are the same with or without it. This generator is the
one behind every shipped result (the cached network references of noises 0-287 in ``analysis/results``, the
optimised grids of Gaussian mixtures and of the digits network): problems (Gaussian mixtures) and networks use
the same noises.

How torch's CPU generator makes them (PyTorch ``aten/src/ATen/native/cpu/DistributionTemplates.h`` and
``avx_mathfun.h``; reproduced bit for bit, a test checks it against torch when it is installed):

1. ``manual_seed(s)`` seeds an MT19937 with the low 32 bits of ``s`` (the standard ``init_genrand``).
2. Fewer than 16 numbers: pairs of 53-bit uniforms ``u1, u2`` (each from two 32-bit draws, the first one
   high) give ``r = sqrt(-2 log1p(-u2))``, ``theta = 2 pi u1`` and the two numbers ``r cos(theta)``,
   ``r sin(theta)`` in float64 (the second one cached for the next call), rounded to float32.
3. 16 or more: one 24-bit float32 uniform per number, then Box-Muller on blocks of 16 (``u1 = 1 - u[j]``,
   ``u2 = u[j + 8]``) with the float32 polynomial ``log`` and ``sincos`` of ``avx_mathfun.h`` (as torch's
   AVX2 kernel, which x86-64 builds use on AVX2 and AVX-512 CPUs, compiles them: every product that feeds
   a sum is a fused multiply-add);
   when the count is not a multiple of 16, the last 16 numbers are redrawn from 16 fresh uniforms.

Torch itself gives other numbers for 16 or more elements on a CPU without AVX2 (its generic kernel); the
numbers here are those of the AVX2 kernel on every machine. Libm's float64 ``log1p``, ``sin`` and ``cos``
(path 2) are rounded to float32, so a platform whose libm differs in the last bit of a double could differ in
a float32 only where a value falls within that bit of a float32 rounding boundary.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["sample_seed", "per_sample_noise", "torch_randn"]

F = np.float32


def sample_seed(seed: int, index: int) -> int:
    """A 63-bit generator seed for sample ``index`` of a run with ``seed`` (stable across Python runs).

    Parameters
    ----------
    seed, index : int
        Run seed and sample index.

    Returns
    -------
    int
        The first 8 bytes (little-endian) of ``sha256("pndmkit-sample:{seed}:{index}")``, top bit cleared.
    """
    digest = hashlib.sha256(f"pndmkit-sample:{int(seed)}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def per_sample_noise(indices: Sequence[int], shape: Sequence[int], seed: int) -> NDArray[np.float32]:
    """Float32 N(0, I) noises ``(len(indices), *shape)``: row ``k`` is noise ``indices[k]`` of ``seed``.

    Row ``k`` is ``torch_randn(shape, sample_seed(seed, indices[k]))``; it depends only on ``seed`` and the
    index, so any batch, shard or range of indices gives the same numbers for the same index.

    Parameters
    ----------
    indices : sequence of int
        Sample indices (>= 0).
    shape : sequence of int
        Shape of one noise.
    seed : int
        Run seed.

    Returns
    -------
    numpy.ndarray
        ``float32`` array ``(len(indices), *shape)``.

    Examples
    --------
    >>> a = per_sample_noise(range(4), (2,), seed=0)
    >>> b = per_sample_noise([2, 3], (2,), seed=0)
    >>> bool(np.array_equal(a[2:], b))
    True
    """
    shape = tuple(int(d) for d in shape)
    indices = [int(i) for i in indices]
    out = np.empty((len(indices), *shape), dtype=np.float32)
    if not indices:
        return out
    keys = _mt_keys(np.array([sample_seed(seed, i) & 0xFFFFFFFF for i in indices], dtype=np.uint64))
    for row, key in enumerate(keys):
        out[row] = _randn_from_key(key, shape)
    return out


def torch_randn(shape: Sequence[int], generator_seed: int) -> NDArray[np.float32]:
    """``torch.randn(shape, generator=torch.Generator().manual_seed(generator_seed))`` as a float32 array.

    Parameters
    ----------
    shape : sequence of int
        Shape of the result.
    generator_seed : int
        Seed of torch's CPU generator (only its low 32 bits matter, as in torch).

    Returns
    -------
    numpy.ndarray
        ``float32`` array of ``shape``.
    """
    key = _mt_keys(np.array([int(generator_seed) & 0xFFFFFFFF], dtype=np.uint64))[0]
    return _randn_from_key(key, tuple(int(d) for d in shape))


def _mt_keys(seeds: NDArray[np.uint64]) -> NDArray[np.uint32]:
    """MT19937 states ``(len(seeds), 624)`` of ``init_genrand(seed)``, for many 32-bit seeds at once."""
    key = np.empty((len(seeds), 624), dtype=np.uint64)
    key[:, 0] = seeds & np.uint64(0xFFFFFFFF)
    mult, mask, shift = np.uint64(1812433253), np.uint64(0xFFFFFFFF), np.uint64(30)
    for j in range(1, 624):
        prev = key[:, j - 1]
        key[:, j] = (mult * (prev ^ (prev >> shift)) + np.uint64(j)) & mask
    return key.astype(np.uint32)


def _raw(key: NDArray[np.uint32], n: int) -> NDArray[np.uint64]:
    """The first ``n`` 32-bit outputs of the MT19937 in state ``key``."""
    bits = np.random.MT19937()
    bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": 624}}
    return bits.random_raw(n)


def _randn_from_key(key: NDArray[np.uint32], shape: tuple[int, ...]) -> NDArray[np.float32]:
    n = math.prod(shape)
    if n == 0:
        return np.empty(shape, dtype=np.float32)
    if n < 16:
        raw = _raw(key, 4 * ((n + 1) // 2))
        u = (((raw[0::2] << np.uint64(32)) | raw[1::2]) & np.uint64((1 << 53) - 1)).astype(np.float64) * 2.0**-53
        values: list[float] = []
        for u1, u2 in zip(u[0::2], u[1::2]):
            r = math.sqrt(-2.0 * math.log1p(-float(u2)))
            theta = 2.0 * math.pi * float(u1)
            values += [r * math.cos(theta), r * math.sin(theta)]
        return np.array(values[:n], dtype=np.float32).reshape(shape)
    extra = 16 if n % 16 else 0
    raw = _raw(key, n + extra)
    u = (raw & np.uint64((1 << 24) - 1)).astype(np.float32) * F(2.0**-24)
    data = u[:n].copy()
    whole = (n // 16) * 16
    if whole:
        data[:whole] = _box_muller_16(data[:whole].reshape(-1, 16)).ravel()
    if extra:
        data[n - 16:] = _box_muller_16(u[n:].reshape(1, 16)).ravel()
    return data.reshape(shape)


def _fma(a: NDArray[np.float32], b: NDArray[np.float32] | np.float32,
         c: NDArray[np.float32] | np.float32) -> NDArray[np.float32]:
    """Float32 ``a * b + c`` rounded once (as a fused multiply-add): exact float64 sum, then one rounding."""
    a64, b64, c64 = (np.asarray(v, dtype=np.float64) for v in (a, b, c))
    p = a64 * b64  # exact: 24 + 24 significant bits
    s = p + c64
    err = (p - (s - (s - p))) + (c64 - (s - p))  # two-sum: s + err == p + c exactly
    bits = s.view(np.uint64) if s.ndim else np.asarray(s).reshape(1).view(np.uint64)
    tie = (bits & np.uint64((1 << 29) - 1)) == np.uint64(1 << 28)  # s halfway between two float32 values
    tie = tie.reshape(s.shape) & (err != 0)
    s = np.where(tie, np.nextafter(s, s + err), s)  # the exact value is off the tie: round towards it
    return s.astype(np.float32)


def _log_ps(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """``log256_ps`` of ``avx_mathfun.h`` (cephes ``logf``) for ``x`` in (0, 1]."""
    bits = np.maximum(x, np.array([0x00800000], np.uint32).view(np.float32)[0]).view(np.uint32)
    e = ((bits >> np.uint32(23)).astype(np.int32) - 0x7F).astype(np.float32) + F(1)
    x = ((bits & np.uint32(0x807FFFFF)) | F(0.5).view(np.uint32)).view(np.float32)
    below = x < F(0.707106781186547524)
    tmp = np.where(below, x, F(0))
    x = x - F(1)
    e = e - np.where(below, F(1), F(0))
    x = x + tmp
    z = x * x
    y = np.full_like(x, F(7.0376836292e-2))
    for p in (-1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
              2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1):
        y = _fma(y, x, F(p))
    y = _fma(y * x, z, e * F(-2.12194440e-4))
    y = y - z * F(0.5)
    return _fma(e, F(0.693359375), x + y)


def _sincos_ps(x: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """``sincos256_ps`` of ``avx_mathfun.h`` (cephes ``sinf``/``cosf``) for ``x`` >= 0."""
    sign_sin = x.view(np.uint32) & np.uint32(0x80000000)
    x = np.abs(x)
    j = ((x * F(1.27323954473516)).astype(np.int32) + 1) & ~1
    y = j.astype(np.float32)
    sign_sin = sign_sin ^ ((j & 4) << 29).astype(np.uint32)
    sign_cos = ((~(j - 2) & 4) << 29).astype(np.uint32)
    sine_poly = (j & 2) == 0
    for dp in (-0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8):  # extended-precision pi / 4
        x = _fma(y, F(dp), x)
    z = x * x
    yc = np.full_like(x, F(2.443315711809948e-5))
    yc = _fma(yc, z, F(-1.388731625493765e-3))
    yc = _fma(yc, z, F(4.166664568298827e-2))
    yc = _fma(yc * z, z, -(z * F(0.5))) + F(1)
    ys = np.full_like(x, F(-1.9515295891e-4))
    ys = _fma(ys, z, F(8.3321608736e-3))
    ys = _fma(ys, z, F(-1.6666654611e-1))
    ys = _fma(ys * z, x, x)
    s = np.where(sine_poly, ys, yc).view(np.uint32) ^ sign_sin
    c = np.where(sine_poly, yc, ys).view(np.uint32) ^ sign_cos
    return s.view(np.float32), c.view(np.float32)


def _box_muller_16(u: NDArray[np.float32]) -> NDArray[np.float32]:
    """Torch's ``normal_fill_16_AVX2`` on rows of 16 uniforms: cosines in columns 0-7, sines in 8-15."""
    radius = np.sqrt(F(-2) * _log_ps(F(1) - u[:, :8]))
    sin, cos = _sincos_ps(F(2 * math.pi) * u[:, 8:])
    return np.concatenate([radius * cos, radius * sin], axis=1).astype(np.float32)
