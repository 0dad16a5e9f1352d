"""Analytic ground truth (pndmkit.problems): exact eps, densities, samples, reference trajectories."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import sqrtm
from scipy.stats import multivariate_normal

from pndmkit.problems import (
    PROBLEMS,
    GaussianMixture,
    get_problem,
    manifold_diagnostics,
    nll,
    reference_accuracy,
    sliced_wasserstein,
)
from pndmkit.schedules import CosineVP, DiscreteVP, LinearVP
from pndmkit.testing.strategies import mixtures

SCHEDULES = [LinearVP(), CosineVP(), DiscreteVP.linear()]
SCHED_IDS = ["linear-vp", "cosine-vp", "ddpm-linear"]


def fd_grad(f, x, h=1e-5):
    """Central finite-difference gradient of a batched scalar function f: (n, d) -> (n,)."""
    g = np.empty_like(x)
    for j in range(x.shape[1]):
        step = np.zeros(x.shape[1])
        step[j] = h
        g[:, j] = (f(x + step) - f(x - step)) / (2 * h)
    return g


def times_of(schedule):
    lo, hi = schedule.t_end, schedule.t_start
    return [lo, lo + 0.1 * (hi - lo), 0.5 * (lo + hi), hi]


def exact_single_gaussian_flow(gm, x_T, schedule, t_start, t):
    """PF-ODE of N(mu, Sigma): x_t = sqrt(abar) mu + C_t^{1/2} z, z = C_T^{-1/2}(x_T - sqrt(abar_T) mu) fixed.

    In (y, s): y = mu + (Sigma + s^2 I)^{1/2} z solves dy/ds = s (Sigma + s^2 I)^{-1/2} z = eps(x, s), since
    eps = sqrt(1-abar) C^{-1}(x - sqrt(abar) mu) with C = abar (Sigma + s^2 I). The whitened z never moves.
    """

    def C(t):
        a = schedule.abar(t)
        return a * gm.covs[0] + (1 - a) * np.eye(gm.dim)

    z = (x_T - math.sqrt(schedule.abar(t_start)) * gm.means[0]) @ np.linalg.inv(np.real(sqrtm(C(t_start))))
    return math.sqrt(schedule.abar(t)) * gm.means[0] + z @ np.real(sqrtm(C(t)))


# -- exact eps -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHED_IDS)
@pytest.mark.parametrize("name", ["gmm1d", "gmm2d", "gmm32d"])
def test_eps_is_scaled_gradient_of_log_prob(name, schedule):
    gm = get_problem(name)
    x = gm.sample(6, schedule.t_start, schedule, rng=1) * 0.5 + gm.sample(6, rng=2) * 0.5
    for t in times_of(schedule)[1:]:
        abar = schedule.abar(t)
        grad = fd_grad(lambda z: gm.log_prob(z, t, schedule), x)
        eps = gm.eps(x, t, schedule)
        assert eps.shape == x.shape
        np.testing.assert_allclose(eps, -math.sqrt(1 - abar) * grad, rtol=1e-6, atol=1e-6)


def test_eps_single_gaussian_closed_form():
    gm = get_problem("single-gaussian")
    sched = LinearVP()
    x = np.random.default_rng(0).standard_normal((5, 2))
    for t in [1e-3, 0.2, 0.7, 1.0]:
        abar = sched.abar(t)
        C = abar * gm.covs[0] + (1 - abar) * np.eye(2)
        expected = math.sqrt(1 - abar) * np.linalg.solve(C, (x - math.sqrt(abar) * gm.means[0]).T).T
        np.testing.assert_allclose(gm.eps(x, t, sched), expected, rtol=1e-13, atol=1e-14)


def test_eps_limits():
    gm = get_problem("gmm2d")
    x = np.random.default_rng(3).standard_normal((4, 2))
    d = DiscreteVP.linear()
    assert np.all(gm.eps(x, -1.0, d) == 0.0)  # abar = 1: no noise
    # at the noise end p_t is nearly N(0, I), so eps is nearly x
    np.testing.assert_allclose(gm.eps(x, 1.0, LinearVP()), x, atol=0.02)


def test_covariance_forms_agree():
    w, mu = [0.4, 0.6], [[0.2, -0.3, 0.1], [-0.5, 0.4, 0.0]]
    var = np.array([[0.04, 0.09, 0.02], [0.05, 0.05, 0.05]])
    full = GaussianMixture(w, mu, np.stack([np.diag(v) for v in var]))
    diag = GaussianMixture(w, mu, var)
    iso = GaussianMixture(w, mu, np.array([0.03, 0.05]))
    iso_full = GaussianMixture(w, mu, np.stack([0.03 * np.eye(3), 0.05 * np.eye(3)]))
    assert diag.diagonal and full.diagonal and iso.diagonal
    x = np.random.default_rng(0).standard_normal((7, 3))
    sched = CosineVP()
    np.testing.assert_allclose(full.eps(x, 0.3, sched), diag.eps(x, 0.3, sched), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(iso.eps(x, 0.3, sched), iso_full.eps(x, 0.3, sched), rtol=1e-14, atol=1e-15)
    # a rotated copy of a diagonal mixture (full covariances) has rotated eps
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))
    rot = GaussianMixture(w, np.asarray(mu) @ q.T, np.stack([q @ np.diag(v) @ q.T for v in var]))
    assert not rot.diagonal
    np.testing.assert_allclose(rot.eps(x @ q.T, 0.3, sched), diag.eps(x, 0.3, sched) @ q.T, atol=1e-12)


def test_log_prob_matches_scipy_and_is_stable():
    gm = get_problem("gmm2d")
    sched = LinearVP()
    x = np.random.default_rng(0).standard_normal((9, 2))
    t = 0.4
    abar = sched.abar(t)
    dens = sum(
        w * multivariate_normal(math.sqrt(abar) * m, abar * c + (1 - abar) * np.eye(2)).pdf(x)
        for w, m, c in zip(gm.weights, gm.means, gm.covs)
    )
    np.testing.assert_allclose(gm.log_prob(x, t, sched), np.log(dens), rtol=1e-12)
    far = np.array([[60.0, -60.0]])  # density underflows to 0; the log does not
    assert np.isfinite(gm.log_prob(far, None)).all()
    assert np.isfinite(gm.eps(far, 1e-3, sched)).all()


def test_validation_names_the_parameter():
    with pytest.raises(ValueError, match="weights must sum to 1"):
        GaussianMixture([0.5, 0.6], [[0.0], [1.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture([1.5, -0.5], [[0.0], [1.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match="means"):
        GaussianMixture([0.5, 0.5], [[0.0, 1.0, 2.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"covs\[1\] is not positive definite"):
        GaussianMixture([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match=r"covs\[0\] is not symmetric"):
        GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]])
    with pytest.raises(ValueError, match="covs must have shape"):
        GaussianMixture([1.0], [[0.0, 0.0]], np.ones((1, 3)))
    with pytest.raises(ValueError, match="last dimension"):
        get_problem("gmm2d").eps(np.zeros((3, 4)), 0.5, LinearVP())
    with pytest.raises(ValueError, match="t="):
        get_problem("gmm1d").eps(np.zeros((3, 1)), 2.0, LinearVP())
    with pytest.raises(ValueError, match="unknown problem"):
        get_problem("nope")


# -- random mixtures ------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(gm=mixtures(), u=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_random_mixture_eps_is_scaled_score(gm, u, seed):
    sched = LinearVP()
    t = sched.t_end + u * (sched.t_start - sched.t_end)
    x = np.random.default_rng(seed).standard_normal((5, gm.dim))
    eps, score = gm.eps(x, t, sched), gm.score(x, t, sched)
    assert eps.shape == x.shape == score.shape
    np.testing.assert_allclose(eps, -math.sqrt(-math.expm1(sched.log_abar(t))) * score, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(score, fd_grad(lambda z: gm.log_prob(z, t, sched), x), rtol=1e-5, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(gm=mixtures(), u=st.floats(0.0, 1.0))
def test_random_mixture_sample_moments(gm, u):
    sched = CosineVP()
    t = sched.t_end + u * (sched.t_start - sched.t_end)
    n = 40_000
    x = gm.sample(n, t, sched, rng=123)
    mean, cov = gm.mean(t, sched), gm.cov(t, sched)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(x.mean(axis=0) - mean) < 6 * sd / math.sqrt(n))
    assert np.all(np.abs(np.cov(x.T).reshape(cov.shape) - cov) < 12 * np.outer(sd, sd) / math.sqrt(n))
    rms = math.sqrt(np.mean(np.sum(x**2, axis=1)) / gm.dim)
    assert abs(rms - gm.expected_norm(t, sched)) < 0.03 * gm.expected_norm(t, sched)


def test_sample_at_data_end_is_p0_and_seeded():
    gm = get_problem("gmm2d")
    d = DiscreteVP.linear()
    np.testing.assert_array_equal(gm.sample(100, -1.0, d, rng=5), gm.sample(100, rng=5))
    np.testing.assert_array_equal(gm.sample(10, rng=np.random.default_rng(7)), gm.sample(10, rng=7))
    with pytest.raises(ValueError, match="schedule is required"):
        gm.sample(3, 0.5)


# -- reference trajectories ------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHED_IDS)
@pytest.mark.parametrize("name", ["gmm1d", "gmm32d"])
def test_reference_accuracy(name, schedule):
    gm = get_problem(name)
    x_T = np.random.default_rng(0).standard_normal((8, gm.dim))
    # tolerance / 10 moves the end point by far less than any method error we report (>= 1e-8)
    assert reference_accuracy(gm, x_T, schedule) < 1e-10


@pytest.mark.parametrize("schedule", SCHEDULES, ids=SCHED_IDS)
def test_reference_single_gaussian_closed_form(schedule):
    gm = get_problem("single-gaussian")
    x_T = np.random.default_rng(1).standard_normal((6, 2))
    t0, t1 = schedule.t_start, schedule.t_end
    end = gm.reference(x_T, schedule, t0, t1)
    np.testing.assert_allclose(end, exact_single_gaussian_flow(gm, x_T, schedule, t0, t1), rtol=0, atol=1e-11)
    times = times_of(schedule)[::-1]
    dense = gm.reference(x_T, schedule, t0, t1, times=times)
    assert dense.shape == (4, 6, 2)
    for t, x in zip(times, dense):
        np.testing.assert_allclose(x, exact_single_gaussian_flow(gm, x_T, schedule, t0, t), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dense[-1], end, rtol=0, atol=1e-11)


def test_reference_is_reversible_and_defaults():
    gm = get_problem("gmm2d")
    sched = LinearVP()
    x_T = np.random.default_rng(2).standard_normal((4, 2))
    x_0 = gm.reference(x_T, sched)  # schedule defaults t_start=1, t_end=1e-3
    np.testing.assert_array_equal(x_0, gm.reference(x_T, sched, sched.t_start, sched.t_end))
    back = gm.reference(x_0, sched, sched.t_end, sched.t_start)
    np.testing.assert_allclose(back, x_T, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(gm.reference(x_T, sched, 0.5, 0.5), x_T)
    with pytest.raises(ValueError, match="times must lie"):
        gm.reference(x_T, sched, 1.0, 0.5, times=[0.2])


def test_reference_to_abar_one():
    """DiscreteVP's t = -1 has abar = 1 and s = 0 exactly: the data end is a regular point."""
    gm = get_problem("single-gaussian")
    d = DiscreteVP.linear()
    x_T = np.random.default_rng(4).standard_normal((5, 2))
    end = gm.reference(x_T, d, 999.0, -1.0)
    np.testing.assert_allclose(end, exact_single_gaussian_flow(gm, x_T, d, 999.0, -1.0), rtol=0, atol=1e-11)


def test_reference_maps_p_T_to_p_0_in_distribution():
    gm = get_problem("gmm2d")
    sched = LinearVP()
    x_T = gm.sample(400, sched.t_start, sched, rng=0)
    x_0 = gm.reference(x_T, sched, sched.t_start, 0.0)
    assert sliced_wasserstein(gm, x_0) < 0.04
    assert sliced_wasserstein(gm, x_T) > 0.5


# -- numpy / torch -------------------------------------------------------------------------------------
def test_dtype_is_preserved_for_numpy():
    gm = get_problem("gmm2d")
    x = np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)
    out = gm.eps(x, 0.5, LinearVP())
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, gm.eps(x.astype(np.float64), 0.5, LinearVP()), rtol=1e-6, atol=1e-7)


def test_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    gm = get_problem("gmm32d")
    sched = DiscreteVP.linear()
    x = np.random.default_rng(0).standard_normal((4, 32))
    for dtype in (torch.float64, torch.float32):
        xt = torch.tensor(x, dtype=dtype)
        for f in (gm.eps, gm.score, gm.log_prob):
            out = f(xt, 500.0, sched)
            assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.device == xt.device
            tol = 1e-12 if dtype == torch.float64 else 1e-5
            np.testing.assert_allclose(out.double().numpy(), f(xt.double().numpy(), 500.0, sched), rtol=tol)
    ref = gm.reference(torch.tensor(x[:2]), sched, 999.0, 900.0)
    assert isinstance(ref, torch.Tensor)
    np.testing.assert_allclose(ref.numpy(), gm.reference(x[:2], sched, 999.0, 900.0), rtol=0, atol=1e-14)


# -- sample quality and manifold diagnostics --------------------------------------------------------------
def test_sample_quality_distances():
    gm = get_problem("gmm2d")
    exact = gm.sample(3000, rng=11)
    base = sliced_wasserstein(gm, exact)
    assert base < 0.02
    for worse in (exact * 1.3, exact + 0.1, gm.sample(3000, 0.3, LinearVP(), rng=11)):
        assert sliced_wasserstein(gm, worse) > 2 * base
        assert nll(gm, worse) > nll(gm, exact)
    # the same samples score the same (fixed reference seed)
    assert sliced_wasserstein(gm, exact.copy()) == base


def test_manifold_diagnostics():
    gm = get_problem("gmm32d")
    sched = LinearVP()
    for t in [1e-3, 0.3, 1.0]:
        x = gm.sample(4000, t, sched, rng=3)
        diag = manifold_diagnostics(gm, x, t, sched)
        assert diag.norm.shape == diag.log_prob.shape == (4000,)
        assert abs(math.sqrt(np.mean(diag.norm**2)) - diag.expected_norm) < 0.01 * diag.expected_norm
    # a sample scaled off the noise-level shell shows it in both diagnostics
    x = gm.sample(500, 0.5, sched, rng=4)
    on, off = manifold_diagnostics(gm, x, 0.5, sched), manifold_diagnostics(gm, 1.5 * x, 0.5, sched)
    assert np.mean(off.norm) > 1.4 * on.expected_norm and np.mean(off.log_prob) < np.mean(on.log_prob) - 5


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_builtin_problems_are_image_scaled(name):
    gm = get_problem(name)
    assert gm.min_std >= (0.031 if name == "digits-gmm" else 0.12)  # digits-gmm: real data, reg_covar = 1e-3
    x = gm.sample(2000, rng=0)
    assert np.quantile(np.abs(x), 0.99) < 1.6


def _dense_eps_and_log_prob(gm, x, abar, om):
    """eps and log p_t of a mixture from its covariance matrices alone: a Cholesky factor of each C_k, no eigenvectors."""
    from scipy.linalg import solve_triangular

    K, d = gm.n_components, gm.dim
    log_comp, solved = np.empty((len(x), K)), np.empty((len(x), K, d))
    for k in range(K):
        L = np.linalg.cholesky(abar * gm.covs[k] + om * np.eye(d))
        resid = x - math.sqrt(abar) * gm.means[k]
        z = solve_triangular(L, resid.T, lower=True)  # L^{-1} resid
        solved[:, k] = solve_triangular(L.T, z, lower=False).T  # C_k^{-1} resid
        log_comp[:, k] = (math.log(gm.weights[k]) - 0.5 * (d * math.log(2 * math.pi) + 2 * np.log(np.diag(L)).sum())
                          - 0.5 * np.sum(z * z, axis=0))
    top = log_comp.max(axis=1, keepdims=True)
    resp = np.exp(log_comp - top)
    total = resp.sum(axis=1, keepdims=True)
    return math.sqrt(om) * np.einsum("bk,bkd->bd", resp / total, solved), (top + np.log(total))[:, 0]


@pytest.mark.parametrize("name", ["digits-gmm", "gmm32d"])
def test_eps_and_log_prob_equal_a_dense_cholesky_formula(name):
    """The eigenvector form (low-rank plus floor on digits-gmm: 54 of 256 eigenvectors per component; every
    eigenvector on gmm32d) equals the textbook formula with a Cholesky factor of each C_k, from data end to noise."""
    gm = get_problem(name)
    assert gm.rank == (54 if name == "digits-gmm" else gm.dim)
    z = np.random.default_rng(0).standard_normal((32, gm.dim))
    x0 = gm.sample(32, rng=1)
    for abar in (1 - 1e-6, 1 - 1e-3, 0.9, 0.5, 1e-2, 1e-4):
        om = 1.0 - abar
        for x in (math.sqrt(abar) * x0 + math.sqrt(om) * z, z):  # near the data and far from every mode
            eps, log_p = _dense_eps_and_log_prob(gm, x, abar, om)
            scale = np.max(np.abs(eps))
            assert np.max(np.abs(gm.eps_at_levels(x, abar, om) - eps)) <= 1e-12 * scale, (abar, name)
            np.testing.assert_allclose(gm._parts(x, abar, om)[2], log_p, rtol=1e-12, atol=0)


def test_the_low_rank_form_is_used_only_where_the_floor_is_tied():
    """A floor broken by more than eigh's accuracy keeps every eigenvector; either way eps and log p_t equal the
    dense Cholesky formula."""
    rng = np.random.default_rng(0)
    d, K = 12, 3
    covs = np.stack([W @ W.T + 1e-2 * np.eye(d) for W in rng.standard_normal((K, d, 3))])
    tied = GaussianMixture(np.full(K, 1 / K), rng.standard_normal((K, d)), covs)
    broken = GaussianMixture(tied.weights, tied.means, covs + np.diag(np.linspace(0, 1e-9, d)))
    assert (tied.rank, broken.rank) == (3, d)
    x = rng.standard_normal((16, d))
    for gm in (tied, broken):
        for abar in (1 - 1e-6, 0.5, 1e-3):
            eps, log_p = _dense_eps_and_log_prob(gm, x, abar, 1 - abar)
            assert np.max(np.abs(gm.eps_at_levels(x, abar, 1 - abar) - eps)) <= 1e-12 * np.max(np.abs(eps))
            np.testing.assert_allclose(gm._parts(x, abar, 1 - abar)[2], log_p, rtol=1e-12, atol=0)


def test_isotropic_full_covariances_keep_one_eigenpair_and_match_the_dense_formula():
    """Every eigenvalue tied (Q 2I Q^T): the low-rank form keeps one eigenpair above the floor, instead of none
    (which failed to reshape the batch), and still equals the dense Cholesky formula."""
    rng = np.random.default_rng(1)
    d, K = 6, 2
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    covs = np.stack([Q @ (2.0 * np.eye(d)) @ Q.T] * K)
    gm = GaussianMixture(np.full(K, 1 / K), rng.standard_normal((K, d)), covs)
    assert not gm.diagonal and gm.rank == 1
    x = rng.standard_normal((8, d))
    for abar in (1 - 1e-6, 0.5, 1e-3):
        eps, log_p = _dense_eps_and_log_prob(gm, x, abar, 1 - abar)
        assert np.max(np.abs(gm.eps_at_levels(x, abar, 1 - abar) - eps)) <= 1e-12 * np.max(np.abs(eps))
        np.testing.assert_allclose(gm._parts(x, abar, 1 - abar)[2], log_p, rtol=1e-12, atol=0)
