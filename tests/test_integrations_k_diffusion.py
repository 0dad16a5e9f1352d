"""k-diffusion-style samplers: k-diffusion's conventions, and the same numbers as pndmkit.sample."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pndmkit
from pndmkit.integrations import k_diffusion as kd
from pndmkit.methods import METHODS

FIXED = [name for name, spec in METHODS.items() if not spec.adaptive]
MU, VAR = np.array([0.7, -1.5, 0.2]), np.array([0.3, 1.0, 0.05])  # data ~ N(MU, diag(VAR))


def eps_vp(x, t):
    """Exact eps of the Gaussian data on SigmaVP (time = sigma): x = a x0 + b noise, a^2 = 1 / (1 + t^2)."""
    a, b = 1 / math.sqrt(1 + t * t), t / math.sqrt(1 + t * t)
    return b * (x - a * MU) / (a * a * VAR + b * b)


def denoiser(x, sigma, shift=0.0):
    """The same data in k-diffusion's variables: D(y, sigma) = y - sigma eps (one sigma per batch row)."""
    s = float(sigma[0])
    assert np.all(sigma == s) and sigma.shape == (x.shape[0],)
    return x - s * eps_vp(x / math.sqrt(1 + s * s), s) + shift


def karras(n, sigma_min=0.05, sigma_max=10.0, rho=7.0):
    ramp = np.linspace(0, 1, n)
    s = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return np.append(s, 0.0)


def euler_from_its_definition(model, x, sigmas):
    """k-diffusion's sample_euler without churn: d = (x - D(x, sigma)) / sigma; x += d (sigma' - sigma)."""
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * np.ones(x.shape[0]))
        d = (x - denoised) / sigmas[i]
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


@pytest.fixture
def y_start():
    return np.random.default_rng(0).standard_normal((4, 3)) * 10.0 + MU


def test_ddim_is_k_diffusion_euler(y_start):
    sigmas = karras(12)
    seen = []
    out = kd.sample(denoiser, y_start, sigmas, method="ddim", disable=True, callback=seen.append)
    np.testing.assert_allclose(out, euler_from_its_definition(denoiser, y_start, sigmas), rtol=1e-12, atol=1e-12)
    assert [c["i"] for c in seen] == list(range(12))
    assert set(seen[0]) == {"x", "i", "sigma", "sigma_hat", "denoised"}
    np.testing.assert_allclose(seen[0]["x"], y_start, rtol=1e-15)
    np.testing.assert_allclose(seen[3]["denoised"], denoiser(seen[3]["x"], np.full(4, sigmas[3])), rtol=1e-15)
    assert seen[3]["sigma"] == seen[3]["sigma_hat"] == sigmas[3]


@pytest.mark.parametrize("name", FIXED)
def test_every_method_equals_sample_on_the_vp_problem(name, y_start):
    sigmas = np.geomspace(10.0, 0.05, 9)
    out = kd.sample(denoiser, y_start, sigmas, method=name, disable=True)
    schedule = kd.SigmaVP(sigmas[0])
    sol = pndmkit.sample(eps_vp, y_start / math.sqrt(1 + sigmas[0] ** 2), schedule=schedule, method=name,
                         grid=sigmas)
    np.testing.assert_allclose(out, sol.x * math.sqrt(1 + sigmas[-1] ** 2), rtol=1e-12, atol=1e-12)
    named = getattr(kd, "sample_" + name.replace("-", "_"))
    assert named.__name__ == "sample_" + name.replace("-", "_")
    np.testing.assert_array_equal(named(denoiser, y_start, sigmas, disable=True), out)


def test_sigma_vp_is_the_noise_to_signal_ratio():
    sched = kd.SigmaVP(80.0)
    t = np.array([0.0, 0.01, 1.0, 14.6, 80.0])
    np.testing.assert_allclose(sched.s(t), t, rtol=1e-15, atol=0)
    np.testing.assert_allclose(sched.abar(t), 1 / (1 + t**2), rtol=1e-15)
    np.testing.assert_allclose(sched.t_from_log_abar(sched.log_abar(t)), t, rtol=1e-14, atol=1e-15)


def test_extra_args_and_refusals(y_start):
    sigmas = karras(6)
    shifted = kd.sample(denoiser, y_start, sigmas, method="ipndm", extra_args={"shift": 0.25}, disable=True)
    plain = kd.sample(lambda x, s: denoiser(x, s, 0.25), y_start, sigmas, method="ipndm", disable=True)
    np.testing.assert_array_equal(shifted, plain)
    with pytest.raises(ValueError, match="sigma = 0"):
        kd.sample(denoiser, y_start, sigmas, method="prk", disable=True)
    with pytest.raises(ValueError, match=r"sigmas\[1\]=2.0"):
        kd.sample(denoiser, y_start, [1.0, 2.0, 0.0], disable=True)
    with pytest.raises(ValueError, match="adaptive"):
        kd.sample(denoiser, y_start, sigmas, method="pf", disable=True)
    with pytest.raises(AttributeError, match="sample_pf"):
        kd.sample_pf  # noqa: B018
    assert "sample_f_pndm_s" in dir(kd)


# -- orders through k-diffusion's signature -------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("ddim", 1), ("ipndm-v", 2), ("prk-s", 4), ("f-pndm-s", 4), ("pec-s", 4),
    ("prk", 4),  # stages at the t-midpoint: in k-diffusion's variables t *is* sigma = s, so PRK is s-consistent
])
def test_a_mixture_denoiser_gives_the_registry_orders(name, expected):
    """The registry study (gmm2d, t-uniform cosine-VP grid from t = 0.9 to s = 0.1) in k-diffusion's variables:
    an exact denoiser D(y, sigma) = y - sigma eps, the same noise levels as sigmas, the error against the exact
    trajectory (in y). Declared orders hold for methods whose stages and weights live in s; t-placed ones gain
    order because SigmaVP's time is sigma itself."""
    from pndmkit.problems import get_problem, reference_trajectory
    from pndmkit.schedules import EDM, CosineVP
    from pndmkit.studies.convergence import fit_order

    from pndmkit.integrations import k_diffusion as K

    gm = get_problem("gmm2d")
    cosine = CosineVP()
    t0, t1 = 0.9, float(cosine.t_from_s(0.1))

    def denoiser(y, sigma):  # sigma comes batched, one per sample, as in k-diffusion
        s = float(np.asarray(sigma).reshape(-1)[0])
        return y - s * gm.eps_at_levels(y, 1.0, s * s)

    y_T = float(cosine.s(t0)) * np.random.default_rng(0).standard_normal((4, 2))
    exact = reference_trajectory(gm, y_T, EDM(), t_start=float(cosine.s(t0)), t_end=0.1)
    steps, errors = [100, 200, 400, 800], []  # the registry study's step counts
    for n in steps:
        sigmas = np.asarray(cosine.s(np.linspace(t0, t1, n + 1)), dtype=np.float64)
        y = K.sample(denoiser, y_T, sigmas, method=name, disable=True)
        errors.append(float(np.sqrt(np.mean((y - exact) ** 2))))
    order = fit_order(steps, errors, floor=1e-11)[0]
    assert order is not None and abs(order - expected) <= 0.3, (name, order, errors)
