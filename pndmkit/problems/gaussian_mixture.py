r"""Gaussian-mixture data: the diffusion whose every quantity is known in closed form.

For data :math:`p_0 = \sum_k w_k\,\mathcal N(\mu_k, \Sigma_k)` the forward process
:math:`x_t = \sqrt{\bar\alpha}\,x_0 + \sqrt{1-\bar\alpha}\,\epsilon` (PNDM eq. 2) has the marginal

.. math::
    p_t = \sum_k w_k\,\mathcal N\big(\sqrt{\bar\alpha}\,\mu_k,\ C_k\big),\qquad
    C_k = \bar\alpha\,\Sigma_k + (1-\bar\alpha)\,I ,

so the score :math:`\nabla\log p_t`, the noise prediction
:math:`\epsilon(x, t) = -\sqrt{1-\bar\alpha}\,\nabla\log p_t(x)` (the optimal eps-model), the density
and exact samples of :math:`p_t` are all available. With the eigendecomposition
:math:`\Sigma_k = U_k\,\mathrm{diag}(\lambda_k)\,U_k^\top`, done once, every :math:`C_k` shares the
eigenvectors :math:`U_k` and has eigenvalues :math:`D_k = \bar\alpha\lambda_k + 1 - \bar\alpha`, so each
call costs two matrix products of the batch with the stacked :math:`U_k` (none for diagonal
covariances) and no factorisation.

A fitted mixture is often a low-rank covariance plus a floor: ``reg_covar`` added to the covariance of data
that span fewer dimensions than ``d`` (``digits-gmm``: 16x16 images upsampled from 8x8, at most 64 of 256
dimensions vary, so about 205 eigenvalues of each component are ``reg_covar``). Where every component's
eigenvalues beyond its largest ``r <= d / 2`` are one value :math:`\nu_k` (to within :data:`EIGEN_TIE`
times the largest, eigh's own accuracy), :math:`C_k^{-1} = \bar U_k\,\mathrm{diag}(1/\bar D_k)\,\bar U_k^\top
+ (I - \bar U_k \bar U_k^\top)/(\bar\alpha\nu_k + 1 - \bar\alpha)` with only the top ``r`` eigenvectors
:math:`\bar U_k`, and the two products shrink from ``K d`` to ``K r`` columns (:attr:`GaussianMixture.rank`).

Examples
--------
>>> import numpy as np
>>> from pndmkit.schedules import LinearVP
>>> gm = GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [0.04, 0.04])
>>> x = np.array([[0.0], [0.3]])
>>> gm.eps(x, 0.5, LinearVP()).shape
(2, 1)

Every model family works the same way (``docs/theory.md``, "One ODE for every model family"): with
:math:`x_t = \alpha x_0 + \sigma\epsilon` the marginal is :math:`\sum_k w_k \mathcal N(\alpha\mu_k,
\alpha^2\Sigma_k + \sigma^2 I)`, so every formula above holds with :math:`\bar\alpha \to \alpha^2`,
:math:`1 - \bar\alpha \to \sigma^2` (:func:`noise_levels`):

>>> from pndmkit.schedules import EDM, FlowMatching
>>> fm, edm = FlowMatching(), EDM()
>>> s = float(fm.s(0.4))                                   # the same noise-to-signal ratio on EDM
>>> y = x / float(fm.alpha(0.4))                           # and the same y = x / alpha
>>> bool(np.allclose(gm.eps(x, 0.4, fm), gm.eps(y, s, edm), rtol=1e-13, atol=0))
True

A single Gaussian has a linear eps (docs/theory.md, "Gaussian-mixture ground truth"),
:math:`\epsilon = \sqrt{1-\bar\alpha}\,C^{-1}(x - \sqrt{\bar\alpha}\mu)`:

>>> g = GaussianMixture([1.0], [[0.5]], [0.25])
>>> sched = LinearVP(); abar = sched.abar(0.3)
>>> c = abar * 0.25 + 1 - abar
>>> bool(np.isclose(g.eps(x, 0.3, sched)[1, 0], np.sqrt(1 - abar) * (0.3 - np.sqrt(abar) * 0.5) / c))
True
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pndmkit._checks import check_int, check_real
from pndmkit.problems._arrays import to_float64
from pndmkit.schedules import NoiseSchedule, VPSchedule

__all__ = ["GaussianMixture", "FitWarning"]

Seed = Union[None, int, np.random.Generator]
_LOG_2PI = math.log(2.0 * math.pi)


def noise_levels(t: Optional[float], schedule: Optional[NoiseSchedule]) -> tuple[float, float]:
    """Return ``(alpha^2, sigma^2)`` at ``t``; ``t=None`` means data (1, 0).

    For a VP schedule these are ``(abar, 1 - abar)``, the second computed without cancellation.
    """
    if t is None:
        return 1.0, 0.0
    if schedule is None:
        raise ValueError(f"schedule is required when t is given (t={t!r}); pass t=None for the data distribution")
    t = float(t)
    slack = 1e-9 * max(1.0, abs(schedule.t_max))
    if not (schedule.t_min - slack <= t <= schedule.t_max + slack):  # cheap scalar test on the hot path
        schedule.check_time(t)  # raises with the schedule's message (also for NaN)
    if not isinstance(schedule, VPSchedule):
        return float(schedule.alpha(t)) ** 2, float(schedule.sigma(t)) ** 2
    log_abar = float(schedule.log_abar(t))
    return math.exp(log_abar), -math.expm1(log_abar)


class FitWarning(UserWarning):
    """:meth:`GaussianMixture.fit` returned a mixture whose EM had not converged."""


def _fit_data(data: ArrayLike) -> NDArray[np.float64]:
    """``data`` as float64 samples ``(n, d)`` for :meth:`GaussianMixture.fit`, or ``ValueError`` naming ``data``."""
    try:
        raw = np.asarray(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"data must be an array of real numbers, one sample per row: {exc}") from None
    if np.iscomplexobj(raw):
        raise ValueError(f"data must be real, got complex values of dtype {raw.dtype}")
    if not (np.issubdtype(raw.dtype, np.number) or raw.dtype == bool):
        raise ValueError(f"data must be an array of real numbers, got dtype {raw.dtype}")
    x = raw.astype(np.float64)
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"data must be samples of shape (n, ...) with n >= 2, got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"data must be finite; {int(bad.sum())} entries are NaN or infinite, the first at "
                         f"index {where} ({x[where]})")
    x = x.reshape(x.shape[0], -1)
    big = float(np.abs(x).max())
    if big > 1e150:  # EM squares the data: beyond this the covariances overflow
        raise ValueError(f"data has entries up to {big:.3g} in magnitude; EM squares them and overflows beyond "
                         f"1e150: rescale the data (e.g. to unit standard deviation)")
    return x


class GaussianMixture:
    r"""A Gaussian mixture :math:`p_0 = \sum_k w_k \mathcal N(\mu_k, \Sigma_k)` in dimension ``d``, diffused.

    Parameters
    ----------
    weights : array_like, shape (K,)
        Positive mixture weights summing to 1 (to within 1e-8; they are renormalised exactly).
    means : array_like, shape (K, d)
        Component means. A 1-D array of length K is read as K means in dimension 1.
    covs : array_like
        Component covariances, symmetric positive definite, given as full matrices ``(K, d, d)``,
        diagonals ``(K, d)``, one isotropic variance per component ``(K,)``, or one scalar variance for all.

    Attributes
    ----------
    weights : ndarray (K,)
    means : ndarray (K, d)
    covs : ndarray (K, d, d)
        Always the full matrices.
    eigvals : ndarray (K, d)
        Eigenvalues :math:`\lambda_k` of each :math:`\Sigma_k`.
    diagonal : bool
        Whether every covariance is diagonal (then the eigenvectors are the identity and eps costs O(K d)).
    rank : int
        Eigenvectors per component that eps uses: ``d``, or fewer where every component's other eigenvalues
        are one floor value (the low-rank form of the module docstring; ``digits-gmm``: 54 of 256).
    dim, n_components : int

    Notes
    -----
    Methods accept ``x`` of shape ``(..., d)`` (normally ``(batch, d)``) as a numpy array or a torch
    tensor and return the same kind, dtype and device; internally everything is float64 numpy.
    """

    def __init__(self, weights: ArrayLike, means: ArrayLike, covs: ArrayLike) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"weights must be a non-empty 1-D array, got shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(f"weights must be finite and > 0, got {w.tolist()}")
        if abs(w.sum() - 1.0) > 1e-8:
            raise ValueError(f"weights must sum to 1, got sum {w.sum()!r} for weights {w.tolist()}")
        K = w.size
        mu = np.asarray(means, dtype=np.float64)
        if mu.ndim == 1 and mu.size == K:
            mu = mu[:, None]
        if mu.ndim != 2 or mu.shape[0] != K:
            raise ValueError(f"means must have shape (K, d) = ({K}, d), got shape {mu.shape}")
        if not np.all(np.isfinite(mu)):
            raise ValueError("means must be finite")
        d = mu.shape[1]
        lam, U = _decompose(np.asarray(covs, dtype=np.float64), K, d)
        self.weights = w / w.sum()
        self.means = mu
        self.eigvals = lam
        self._U = U  # None for diagonal covariances
        self.diagonal = U is None
        self.dim, self.n_components = d, K
        self.covs = np.stack([np.diag(l) for l in lam]) if U is None else np.einsum("kij,kj,klj->kil", U, lam, U)
        self._log_w = np.log(self.weights)
        self.rank = d if U is None else _floor_rank(lam)
        if U is not None and self.rank < d:  # top-r eigenpairs and one floor value per component (module doc)
            r = self.rank
            U = U[:, :, d - r:]  # eigh sorts ascending: the top r eigenvectors
            self._floor = lam[:, :d - r].mean(axis=1)  # (K,)
            self._lam_top = lam[:, d - r:]  # (K, r)
        self._U_cat = None if U is None else np.concatenate(list(U), axis=1)  # (d, K r): x @ U_cat = [U_k^T x]_k
        self._mu_rot = mu if U is None else np.einsum("kij,ki->kj", U, mu)  # U_k^T mu_k

    def __repr__(self) -> str:
        kind = "diagonal" if self.diagonal else "full"
        return f"GaussianMixture(K={self.n_components}, d={self.dim}, {kind} covariances)"

    @classmethod
    def fit(cls, data: ArrayLike, n_components: int, covariance: str = "full", *, reg_covar: float = 1e-3,
            seed: int = 0, max_iter: int = 200) -> "GaussianMixture":
        """Fit a mixture to samples with scikit-learn's EM; the result has exact eps, score and trajectories.

        A surrogate of real data: the fitted mixture's diffusion is known in closed form, so methods can be
        measured on it exactly and compared with a network trained on the same data.

        Parameters
        ----------
        data : array_like, shape (n, ...)
            Samples, one per row; trailing axes (images) are flattened to ``d``.
        n_components : int
            Number of components ``K``.
        covariance : {"full", "diag", "spherical", "tied"}
            scikit-learn's ``covariance_type`` (``tied`` gives every component the same matrix).
        reg_covar : float
            Added to every covariance's diagonal: the smallest variance of the fit (pixels that never vary
            otherwise give singular covariances, and a tiny variance makes the ODE stiff near the data).
        seed : int
            ``random_state`` of the k-means initialisation, in ``[0, 2**32 - 1]``.
        max_iter : int
            EM iterations, >= 1; a fit that has not converged by then warns (:class:`FitWarning`).

        Raises
        ------
        ValueError
            Data that are not finite real numbers (the message gives the first bad entry), of magnitude whose
            squares overflow, with fewer than 2 samples or fewer distinct points than ``n_components``; a bad
            ``covariance``, ``n_components``, ``reg_covar``, ``seed`` or ``max_iter``, each named.
        TypeError
            An option of the wrong type (``n_components=True``, ``reg_covar=True``, ``seed="a"``).

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> data = np.concatenate([rng.normal(-1, 0.1, (500, 1)), rng.normal(1, 0.2, (500, 1))])
        >>> gm = GaussianMixture.fit(data, 2, reg_covar=1e-6)
        >>> np.round(np.sort(gm.means[:, 0]), 1).tolist(), gm.n_components
        ([-1.0, 1.0], 2)
        """
        kinds = ("full", "diag", "spherical", "tied")
        if covariance not in kinds:
            raise ValueError(f"covariance must be one of {kinds}, got {covariance!r}")
        x = _fit_data(data)
        n_components = check_int(n_components, "n_components", minimum=1)
        if n_components > x.shape[0]:
            raise ValueError(f"n_components must be an integer in [1, {x.shape[0]}] (the number of samples), "
                             f"got {n_components!r}")
        reg_covar = check_real(reg_covar, "reg_covar")
        if not reg_covar > 0:
            raise ValueError(f"reg_covar must be a finite number > 0, got {reg_covar!r}")
        seed = check_int(seed, "seed", minimum=0)
        if seed > 2**32 - 1:
            raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {seed}")
        max_iter = check_int(max_iter, "max_iter", minimum=1)
        distinct = len(np.unique(x, axis=0))
        if distinct < n_components:
            raise ValueError(f"data has {distinct} distinct point(s), fewer than n_components={n_components}: EM "
                             f"cannot place that many components (use n_components <= {distinct})")
        try:
            from sklearn.exceptions import ConvergenceWarning
            from sklearn.mixture import GaussianMixture as EM
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(f"GaussianMixture.fit needs scikit-learn (pip install 'pndmkit[torch]'): "
                                      f"{exc}") from exc
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            em = EM(n_components, covariance_type=covariance, reg_covar=reg_covar, random_state=seed,
                    max_iter=max_iter).fit(x)
        if not em.converged_:
            warnings.warn(f"GaussianMixture.fit: EM did not converge in max_iter={max_iter} iterations (lower bound "
                          f"{em.lower_bound_:.6g}); the mixture is the last iterate: raise max_iter",
                          FitWarning, stacklevel=2)
        for w in caught:
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        covs = em.covariances_
        if covariance == "tied":
            covs = np.broadcast_to(covs, (int(n_components),) + covs.shape)
        weights = em.weights_ / em.weights_.sum()
        return cls(weights, em.means_, covs)

    @property
    def min_std(self) -> float:
        """Smallest standard deviation along any principal axis of any component."""
        return float(np.sqrt(self.eigvals.min()))

    # -- core evaluation at given noise levels ----------------------------------------------------
    def _parts(self, x: NDArray[np.float64], abar: float, om: float):
        """Pieces of ``C_k^{-1}`` applied to the residuals, responsibilities and log p_t at (abar, 1-abar).

        The pieces are ``(q, None, None)`` with ``q = D^{-1} U_k^T (x - sqrt(abar) mu_k)`` (every eigenvector),
        or, on the low-rank form (module docstring), ``(q, B, D_floor)`` with ``q`` the top eigenvectors' part of
        ``C_k^{-1} - I / D_floor``, ``B`` the batch and ``D_floor`` (K,) the floor eigenvalue of each ``C_k``:
        ``C_k^{-1} resid_k = U_k q_k + resid_k / D_floor_k``.
        """
        if x.shape[-1] != self.dim:
            raise ValueError(f"x must have last dimension d={self.dim}, got shape {x.shape}")
        B = x.reshape(-1, self.dim)
        K, d = self.n_components, self.dim
        low = self.rank < d
        rot = (B @ self._U_cat).reshape(-1, K, self.rank) if self._U_cat is not None else B[:, None, :]
        resid = rot - math.sqrt(abar) * self._mu_rot  # U_k^T (x - sqrt(abar) mu_k), (batch, K, r)
        if low:
            D = abar * self._lam_top + om  # (K, r) top eigenvalues of C_k
            D_floor = abar * self._floor + om  # (K,) the floor eigenvalue of C_k
            q = resid * ((D_floor[:, None] - D) / (D * D_floor[:, None]))  # (1/D - 1/D_floor) U_k^T resid_k
            full = B[:, None, :] - math.sqrt(abar) * self.means  # (batch, K, d): x - sqrt(abar) mu_k
            quad = np.einsum("bkd,bkd->bk", full, full) / D_floor + np.einsum("bkr,bkr->bk", q, resid)
            log_det = np.log(D).sum(axis=1) + (d - self.rank) * np.log(D_floor)
        else:
            D = abar * self.eigvals + om  # (K, d) eigenvalues of C_k
            q = resid / D
            quad = np.einsum("bkd,bkd->bk", q, resid)
            log_det = np.log(D).sum(axis=1)
        log_norm = self._log_w - 0.5 * (d * _LOG_2PI + log_det)  # (K,)
        log_comp = log_norm - 0.5 * quad
        top = log_comp.max(axis=1, keepdims=True)  # log-sum-exp over components
        r = np.exp(log_comp - top)
        total = r.sum(axis=1, keepdims=True)
        resp = r / total
        if low:
            return (q, B, D_floor), resp, (top + np.log(total))[:, 0]
        return (q, None, None), resp, (top + np.log(total))[:, 0]

    def _precision_residual(self, x: NDArray[np.float64], abar: float, om: float) -> NDArray[np.float64]:
        """``sum_k r_k C_k^{-1} (x - sqrt(abar) mu_k)``, i.e. ``-score``, with the shape of ``x``."""
        (q, B, D_floor), resp, _ = self._parts(x, abar, om)
        v = q * resp[:, :, None]
        if self._U_cat is None:
            out = v.sum(axis=1)
        else:
            out = v.reshape(v.shape[0], -1) @ self._U_cat.T
        if B is not None:  # the floor's part: sum_k r_k (x - sqrt(abar) mu_k) / D_floor_k
            w = resp / D_floor
            out += B * w.sum(axis=1, keepdims=True) - math.sqrt(abar) * (w @ self.means)
        return out.reshape(x.shape)

    def eps_at_levels(self, x: NDArray[np.float64], abar: float, one_minus_abar: float) -> NDArray[np.float64]:
        """Exact eps for float64 numpy ``x`` at signal level ``abar`` (with ``1 - abar`` passed separately).

        For any family pass ``alpha^2`` and ``sigma^2`` (:func:`noise_levels`).
        """
        return math.sqrt(one_minus_abar) * self._precision_residual(x, abar, one_minus_abar)

    # -- public API in schedule time ----------------------------------------------------------------
    def eps(self, x: Any, t: float, schedule: NoiseSchedule) -> Any:
        r"""Exact noise prediction :math:`\epsilon(x, t) = -\sigma(t)\,\nabla_x\log p_t(x)` (VP: :math:`\sigma = \sqrt{1-\bar\alpha}`).

        Parameters
        ----------
        x : ndarray or torch.Tensor, shape (batch, d)
        t : float
            Time in ``schedule``'s units.
        schedule : NoiseSchedule

        Returns
        -------
        Same type, dtype and device as ``x``, same shape.
        """
        arr, back = to_float64(x)
        return back(self.eps_at_levels(arr, *noise_levels(t, schedule)))

    def score(self, x: Any, t: Optional[float], schedule: Optional[NoiseSchedule] = None) -> Any:
        r"""Score :math:`\nabla_x \log p_t(x)`; ``t=None`` gives the score of the data distribution ``p_0``."""
        arr, back = to_float64(x)
        return back(-self._precision_residual(arr, *noise_levels(t, schedule)))

    def log_prob(self, x: Any, t: Optional[float], schedule: Optional[NoiseSchedule] = None) -> Any:
        r"""Log-density :math:`\log p_t(x)` (log-sum-exp over components), shape ``x.shape[:-1]``.

        ``t=None`` gives :math:`\log p_0`.
        """
        arr, back = to_float64(x)
        _, _, log_p = self._parts(arr, *noise_levels(t, schedule))
        return back(log_p.reshape(arr.shape[:-1]))

    def sample(self, n: int, t: Optional[float] = None, schedule: Optional[NoiseSchedule] = None,
               rng: Seed = None) -> NDArray[np.float64]:
        r"""Exact samples of :math:`p_t` (of :math:`p_0` when ``t`` is None), float64 array ``(n, d)``.

        Parameters
        ----------
        n : int
        t : float or None
        schedule : NoiseSchedule, optional (required when ``t`` is given)
        rng : numpy Generator, int seed or None

        Examples
        --------
        >>> gm = GaussianMixture([1.0], [[0.0, 1.0]], [0.01])
        >>> x = gm.sample(20000, rng=0)
        >>> np.round(x.mean(axis=0), 2) + 0.0, np.round(x.std(axis=0), 2)
        (array([0., 1.]), array([0.1, 0.1]))
        """
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        n = int(n)
        abar, om = noise_levels(t, schedule)
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        comp = gen.choice(self.n_components, size=n, p=self.weights)
        z = gen.standard_normal((n, self.dim)) * np.sqrt(abar * self.eigvals + om)[comp]
        if self._U is not None:
            for k in range(self.n_components):
                sel = comp == k
                z[sel] = z[sel] @ self._U[k].T
        return z + math.sqrt(abar) * self.means[comp]

    # -- exact moments ------------------------------------------------------------------------------
    def mean(self, t: Optional[float] = None, schedule: Optional[NoiseSchedule] = None) -> NDArray[np.float64]:
        r"""Exact mean of :math:`p_t`: :math:`\sqrt{\bar\alpha}\sum_k w_k\mu_k`."""
        abar, _ = noise_levels(t, schedule)
        return math.sqrt(abar) * (self.weights @ self.means)

    def cov(self, t: Optional[float] = None, schedule: Optional[NoiseSchedule] = None) -> NDArray[np.float64]:
        r"""Exact covariance of :math:`p_t`: :math:`\sum_k w_k (C_k + m_k m_k^\top) - m m^\top`."""
        abar, om = noise_levels(t, schedule)
        m_k = math.sqrt(abar) * self.means
        m = self.weights @ m_k
        C = abar * np.einsum("k,kij->ij", self.weights, self.covs) + om * np.eye(self.dim)
        return C + np.einsum("k,ki,kj->ij", self.weights, m_k, m_k) - np.outer(m, m)

    def expected_norm(self, t: Optional[float] = None, schedule: Optional[NoiseSchedule] = None) -> float:
        r"""Root mean square of :math:`\|x_t\|/\sqrt d` under :math:`p_t`.

        :math:`E\|x_t\|^2 = \sum_k w_k(\bar\alpha\|\mu_k\|^2 + \mathrm{tr}(\bar\alpha\Sigma_k + (1-\bar\alpha)I))`.
        """
        abar, om = noise_levels(t, schedule)
        second = self.weights @ (abar * (self.means**2).sum(axis=1) + abar * self.eigvals.sum(axis=1) + om * self.dim)
        return math.sqrt(second / self.dim)

    # -- reference probability-flow trajectory ------------------------------------------------------
    def reference(self, x_T: Any, schedule: NoiseSchedule, t_start: Optional[float] = None,
                  t_end: Optional[float] = None, rtol: float = 1e-12, atol: float = 1e-12,
                  times: Optional[Sequence[float]] = None) -> Any:
        """Exact probability-flow ODE solution from ``x_T`` at ``t_start`` to ``t_end``.

        See :func:`pndmkit.problems.reference.reference_trajectory` for the method; ``t_start`` and
        ``t_end`` default to the schedule's. With ``times`` the values at those times are returned,
        stacked along a new first axis; otherwise the end point, shaped like ``x_T``.
        """
        from pndmkit.problems.reference import reference_trajectory

        return reference_trajectory(self, x_T, schedule, t_start, t_end, rtol=rtol, atol=atol, times=times)


#: eigenvalues of one component within this many times its largest (a few ulps of eigh's accuracy) of its
#: smallest count as one floor value (:attr:`GaussianMixture.rank`)
EIGEN_TIE = 16 * np.finfo(np.float64).eps


def _floor_rank(lam: NDArray[np.float64]) -> int:
    """Smallest ``r`` such that every component's eigenvalues (ascending) below its top ``r`` are one value to within
    :data:`EIGEN_TIE` times its largest, and at least 1 (an isotropic covariance keeps one eigenpair above its
    floor value); ``d`` where that ``r`` is over ``d / 2`` (the low-rank form would not pay)."""
    K, d = lam.shape
    tied = lam - lam[:, :1] <= EIGEN_TIE * lam[:, -1:]  # (K, d), a prefix of True per row (ascending)
    r = max(1, int(d - tied.sum(axis=1).min()))
    return r if 2 * r <= d else d


def _decompose(covs: NDArray[np.float64], K: int, d: int) -> tuple[NDArray[np.float64], Optional[NDArray[np.float64]]]:
    """Eigenvalues ``(K, d)`` and eigenvectors ``(K, d, d)`` (None when every covariance is diagonal)."""
    if not np.all(np.isfinite(covs)):
        raise ValueError("covs must be finite")
    if covs.ndim == 0 or (covs.ndim == 1 and covs.shape == (K,)):
        lam = np.broadcast_to(covs.reshape(-1, 1), (K, d)).astype(np.float64)
    elif covs.ndim == 2 and covs.shape == (K, d):
        lam = covs.copy()
    elif covs.ndim == 3 and covs.shape == (K, d, d):
        asym = np.abs(covs - covs.transpose(0, 2, 1)).max(axis=(1, 2))
        scale = np.abs(covs).max(axis=(1, 2))
        bad = np.nonzero(asym > 1e-10 * scale)[0]
        if bad.size:
            raise ValueError(f"covs[{bad[0]}] is not symmetric (max |C - C^T| = {asym[bad[0]]:.3g})")
        sym = 0.5 * (covs + covs.transpose(0, 2, 1))
        off = sym - np.einsum("kii->ki", sym)[:, :, None] * np.eye(d)
        if not np.any(off):
            lam, U = np.einsum("kii->ki", sym).copy(), None
        else:
            lam, U = np.linalg.eigh(sym)
        _check_positive(lam)
        return lam, U
    else:
        raise ValueError(
            f"covs must have shape (K, d, d) = ({K}, {d}, {d}) (full), ({K}, {d}) (diagonal), "
            f"({K},) or () (isotropic), got shape {covs.shape}"
        )
    _check_positive(lam)
    return lam, None


def _check_positive(lam: NDArray[np.float64]) -> None:
    bad = np.nonzero(lam.min(axis=1) <= 1e-14 * max(1.0, float(lam.max())))[0]
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"covs[{k}] is not positive definite (smallest eigenvalue {lam[k].min():.3g})")
