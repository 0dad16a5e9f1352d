r"""Named built-in problems for convergence studies and sample-quality comparisons.

The data are scaled like images (means in about [-1, 1]) and, in the synthetic problems, no principal
standard deviation is below 0.12: eps varies in ``s`` on the scale of the smallest standard deviation, so very thin
components make the ODE stiff near the data end and push every method's asymptotic regime beyond a
few hundred steps. With these choices every registered method shows its asymptotic order within
the default step counts of ``pndmkit order``.

======================  ===  ==  ==============================================================
name                    d    K   structure
======================  ===  ==  ==============================================================
``gmm1d``               1    3   unequal weights and widths, modes at -0.6, 0.1, 0.7
``gmm2d``               2    5   rotated elliptic components on a ring plus one at the centre
``gmm32d``              32   6   anisotropic full covariances (std 0.12-0.4), random rotations
``single-gaussian``     2    1   one correlated Gaussian: eps is linear, trajectories closed-form
``digits-gmm``          256  10  full-covariance fit to the digits images (surrogate of the digits UNet)
======================  ===  ==  ==============================================================

``digits-gmm`` is :meth:`GaussianMixture.fit` (scikit-learn, so the torch extra) on the 1797 images of
``sklearn.datasets.load_digits`` at the shipped ``digits`` network's resolution and scaling (16x16, [-1, 1]),
flattened; ``reg_covar = 1e-3`` (standard deviation >= 0.03, four grey levels) keeps the always-black corners
from being singular. It is fitted once per process (about 2 s).

Examples
--------
>>> sorted(PROBLEMS)
['digits-gmm', 'gmm1d', 'gmm2d', 'gmm32d', 'single-gaussian']
>>> get_problem("gmm32d").dim
32
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

from pndmkit.problems.gaussian_mixture import GaussianMixture

__all__ = ["PROBLEMS", "get_problem"]


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def gmm1d() -> GaussianMixture:
    """Three components in 1-D with unequal weights and widths."""
    return GaussianMixture([0.3, 0.45, 0.25], [[-0.6], [0.1], [0.7]], [0.2**2, 0.15**2, 0.18**2])


def gmm2d() -> GaussianMixture:
    """Four rotated ellipses on a ring of radius 0.6 and one round component at the centre."""
    angles = np.arange(4) * (np.pi / 2) + np.pi / 4
    means = np.concatenate([0.6 * np.stack([np.cos(angles), np.sin(angles)], axis=1), [[0.0, 0.0]]])
    covs = [_rotation(a) @ np.diag([0.25**2, 0.12**2]) @ _rotation(a).T for a in angles] + [np.eye(2) * 0.15**2]
    return GaussianMixture([0.2, 0.2, 0.2, 0.2, 0.2], means, np.stack(covs))


def gmm32d(dim: int = 32, n_components: int = 6, seed: int = 20220218) -> GaussianMixture:
    """Anisotropic full-covariance mixture in ``dim`` dimensions, drawn once from a fixed seed.

    Means are uniform in [-0.6, 0.6]^d; each covariance is ``Q diag(std^2) Q^T`` with a random
    rotation ``Q`` and standard deviations log-uniform in [0.12, 0.4].
    """
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 1.5, n_components)
    means = rng.uniform(-0.6, 0.6, (n_components, dim))
    covs = []
    for _ in range(n_components):
        q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
        q *= np.sign(np.diag(r))
        std = np.exp(rng.uniform(np.log(0.12), np.log(0.4), dim))
        covs.append((q * std**2) @ q.T)
    return GaussianMixture(weights / weights.sum(), means, np.stack(covs))


def single_gaussian() -> GaussianMixture:
    """One correlated 2-D Gaussian (std 0.3 and 0.4, correlation 0.4)."""
    return GaussianMixture([1.0], [[0.3, -0.2]], [[[0.09, 0.048], [0.048, 0.16]]])


def digits_images(size: int = 16) -> np.ndarray:
    """The 1797 digits of scikit-learn as float64 ``(1797, size, size)`` in [-1, 1], upsampled bilinearly.

    The same images as :func:`pndmkit.nn.load_digits_images` (bilinear, half-pixel centres), without torch.
    """
    from sklearn.datasets import load_digits

    x = np.asarray(load_digits().images, dtype=np.float64) / 16.0
    n = x.shape[-1]
    src = np.clip((np.arange(size) + 0.5) * (n / size) - 0.5, 0.0, None)
    i0 = np.floor(src).astype(int)
    i1, w = np.minimum(i0 + 1, n - 1), src - i0
    x = x[:, i0, :] * (1 - w)[:, None] + x[:, i1, :] * w[:, None]
    x = x[:, :, i0] * (1 - w) + x[:, :, i1] * w
    return np.clip(x, 0.0, 1.0) * 2.0 - 1.0


@lru_cache(maxsize=4)
def _digits_fit(n_components: int, reg_covar: float, seed: int) -> GaussianMixture:
    return GaussianMixture.fit(digits_images(16), n_components, "full", reg_covar=reg_covar, seed=seed)


def digits_gmm(n_components: int = 10, reg_covar: float = 1e-3, seed: int = 0) -> GaussianMixture:
    """Gaussian-mixture surrogate of the digits images (16x16 flattened, [-1, 1]); see the module docstring."""
    gm = _digits_fit(n_components, reg_covar, seed)
    return GaussianMixture(gm.weights, gm.means, gm.covs)


#: name -> factory returning a fresh :class:`GaussianMixture`
PROBLEMS: dict[str, Callable[[], GaussianMixture]] = {
    "gmm1d": gmm1d,
    "gmm2d": gmm2d,
    "gmm32d": gmm32d,
    "single-gaussian": single_gaussian,
    "digits-gmm": digits_gmm,
}


def get_problem(name: str) -> GaussianMixture:
    """Build the built-in problem ``name`` (a key of :data:`PROBLEMS`)."""
    try:
        factory = PROBLEMS[name]
    except KeyError:
        raise ValueError(f"unknown problem {name!r}; choose one of {sorted(PROBLEMS)}") from None
    return factory()
