"""Schedules: closed forms, exact agreement with DDPM tables, inverse maps, smoothness of the extension."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pndmkit.schedules import CosineVP, DiscreteVP, LinearVP

SCHEDULES = [LinearVP(), CosineVP(), DiscreteVP.linear(), DiscreteVP.quad(), DiscreteVP.cosine()]


def test_discrete_tables_match_ddpm_definitions_exactly():
    T = 1000
    lin = np.cumprod(1 - np.linspace(1e-4, 0.02, T))
    quad = np.cumprod(1 - np.linspace(1e-4**0.5, 0.02**0.5, T) ** 2)
    idx = np.arange(T)
    np.testing.assert_array_equal(DiscreteVP.linear().abar(idx), lin)
    np.testing.assert_array_equal(DiscreteVP.quad().abar(idx), quad)
    assert DiscreteVP.linear().abar(-1) == 1.0
    assert DiscreteVP.linear().abar(0) == 1 - 1e-4  # abar_0 = 1 - beta_1 of the official code


def test_discrete_cosine_telescopes_to_continuous_cosine():
    # abar_i = prod_{j<=i} f((j+1)/T) / f(j/T) = f((i+1)/T) / f(0) wherever beta is not clipped
    d, c = DiscreteVP.cosine(), CosineVP(t_max=0.999)
    i = np.arange(0, 900)
    np.testing.assert_allclose(d.abar(i), c.abar((i + 1) / 1000), rtol=1e-12)


def test_linear_vp_closed_form():
    s = LinearVP()
    t = np.linspace(0, 1, 11)
    np.testing.assert_allclose(s.abar(t), np.exp(-(0.1 * t + 9.95 * t**2)), rtol=1e-15)
    np.testing.assert_allclose(s.dlog_abar(t), -(0.1 + 19.9 * t), rtol=1e-15)


@pytest.mark.parametrize("sched", SCHEDULES, ids=repr)
def test_derived_quantities_are_consistent(sched):
    t = np.linspace(sched.t_min + 1e-3 * (sched.t_max - sched.t_min), sched.t_max, 37)
    abar = sched.abar(t)
    assert np.all(np.diff(abar) < 0), "abar must decrease towards noise"
    np.testing.assert_allclose(sched.s(t), np.sqrt((1 - abar) / abar), rtol=1e-10)
    np.testing.assert_allclose(sched.lam(t), -np.log(sched.s(t)), rtol=1e-12)
    # derivative against central differences
    h = 1e-5 * (sched.t_max - sched.t_min)
    inner = t[(t - h > sched.t_min) & (t + h < sched.t_max)]
    fd = (sched.log_abar(inner + h) - sched.log_abar(inner - h)) / (2 * h)
    np.testing.assert_allclose(sched.dlog_abar(inner), fd, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("sched", SCHEDULES, ids=repr)
@given(u=st.floats(0.001, 0.999))
def test_inverse_maps_round_trip(sched, u):
    t = sched.t_min + u * (sched.t_max - sched.t_min)
    scale = max(1.0, abs(sched.t_max))
    assert sched.t_from_s(sched.s(t)) == pytest.approx(t, abs=1e-9 * scale)
    assert sched.t_from_lambda(sched.lam(t)) == pytest.approx(t, abs=1e-9 * scale)
    assert sched.t_from_abar(sched.abar(t)) == pytest.approx(t, abs=1e-9 * scale)


def test_discrete_extension_is_c2_and_exact_at_integers():
    d = DiscreteVP.linear()
    knots = np.arange(0.0, 999.0)
    eps = 1e-7
    # first and second derivatives are continuous across the integer knots
    for k in (1, 2):
        left = d._spline.derivative(k)(knots - eps)
        right = d._spline.derivative(k)(knots + eps)
        np.testing.assert_allclose(left, right, rtol=1e-5, atol=1e-12)
    # exact table values at integers, even through the array path
    np.testing.assert_array_equal(d.abar(knots), d.alphas_cumprod[:-1])
    # the inverse of a tabulated value is the integer itself
    assert d.t_from_abar(d.alphas_cumprod[500]) == 500.0


@pytest.mark.parametrize(("build", "error", "message"), [
    (lambda: DiscreteVP([0.1, 1.0, 0.2]), ValueError, r"betas must be finite and lie in the open interval \(0, 1\); "
                                                       r"got betas\[1\]=1.0"),
    (lambda: DiscreteVP([0.0, 0.1]), ValueError, r"got betas\[0\]=0.0"),
    (lambda: DiscreteVP([0.1, float("nan"), 0.2]), ValueError, r"got betas\[1\]=nan"),
    (lambda: DiscreteVP([[0.1, 0.2]]), ValueError, r"betas must be a 1-D array of at least 2 values"),
    (lambda: DiscreteVP(["a", "b"]), TypeError, r"betas must be a 1-D array of numbers, got list"),
    (lambda: DiscreteVP.linear(T=10.5), TypeError, r"T must be an integer, got float 10.5"),
    (lambda: DiscreteVP.linear(T=1), ValueError, r"T must be an integer >= 2, got 1"),
    (lambda: DiscreteVP.linear(beta_end=float("inf")), ValueError, r"beta_end must be a finite number, got inf"),
    (lambda: DiscreteVP.quad(beta_start=0.03), ValueError, r"need 0 < beta_start <= beta_end < 1"),
    (lambda: DiscreteVP.cosine(s0=float("nan")), ValueError, r"s0 must be a finite number, got nan"),
    (lambda: LinearVP(beta_max=float("inf")), ValueError, r"beta_max must be a finite number, got inf"),
    (lambda: LinearVP(beta_min=float("nan")), ValueError, r"beta_min must be a finite number, got nan"),
    (lambda: LinearVP(beta_min=1.0, beta_max=0.5), ValueError, r"need 0 <= beta_min < beta_max"),
    (lambda: LinearVP(beta_max="20"), TypeError, r"beta_max must be a real number, got str '20'"),
    (lambda: LinearVP(t_end=1.0), ValueError, r"t_end must lie in \[0.0, 1.0\), got 1.0"),
    (lambda: CosineVP(s0=float("nan")), ValueError, r"s0 must be a finite number, got nan"),
    (lambda: CosineVP(s0=-0.1), ValueError, r"s0 must be >= 0, got -0.1"),
    (lambda: CosineVP(t_max=float("inf")), ValueError, r"t_max must be a finite number, got inf"),
    (lambda: CosineVP(t_end=float("nan")), ValueError, r"t_end must be a finite number, got nan"),
])
def test_bad_schedule_parameters_are_refused_by_name(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_numpy_scalars_are_accepted_as_schedule_parameters():
    assert DiscreteVP.linear(T=np.int64(10)).num_train_timesteps == 10
    assert LinearVP(beta_max=np.float32(10.0)).beta_max == 10.0


def test_time_outside_the_domain_is_rejected():
    with pytest.raises(ValueError, match=r"t=1.5 lies outside the domain \[0.0, 1.0\] of LinearVP"):
        LinearVP().check_time(1.5)
    with pytest.raises(ValueError, match=r"grid\[1\]=nan must be finite"):
        LinearVP().check_time([0.5, float("nan")], name="grid")
    with pytest.raises(ValueError, match="outside the schedule's range"):
        DiscreteVP.linear().t_from_log_abar(-100.0)


def test_s_is_accurate_near_abar_one():
    # s = sqrt(expm1(-log abar)) keeps relative accuracy where 1 - abar cancels
    s = LinearVP()
    t = 1e-9
    exact = math.sqrt(math.expm1(0.1 * t + 9.95 * t * t))
    assert s.s(t) == pytest.approx(exact, rel=1e-14)
