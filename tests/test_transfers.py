"""The transfer map phi (PNDM eq. 9) and the classical linear transfer."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pndmkit.schedules import DiscreteVP, LinearVP
from pndmkit.testing.strategies import noises, schedules
from pndmkit.transfers import DDIMTransfer, LinearTransfer

VP = schedules(families="vp")  # linear and cosine VP, the DDPM tables, with drawn parameters
unit = st.floats(0.0, 1.0)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)


def _time(sched, u):
    return sched.t_min + u * (sched.t_max - sched.t_min)


def _sigma(sched, t):
    """sqrt(1 - abar) without cancellation (the oracle must be at least as accurate as the code)."""
    return np.sqrt(-np.expm1(sched.log_abar(t)))


def _arrays(draw, shape):
    arrays = noises(shape, elements=st.floats(-5, 5))
    return draw(arrays), draw(arrays)


@given(sched=VP, data=st.data(), u=unit, v=unit, w=unit, shape=shapes)
def test_phi_identities(sched, data, u, v, w, shape):
    phi = DDIMTransfer(sched)
    x, e = _arrays(data.draw, shape)
    t, tm, tn = _time(sched, u), _time(sched, v), _time(sched, w)
    np.testing.assert_array_equal(phi(x, e, t, t), x)
    np.testing.assert_allclose(phi(phi(x, e, t, tm), e, tm, tn), phi(x, e, t, tn), rtol=1e-9, atol=1e-9 * (1 + abs(
        phi.coefficients(t, tn)[1])))


@given(sched=VP, data=st.data(), u=unit, v=unit, shape=shapes)
def test_phi_is_exact_on_the_noise_manifold(sched, data, u, v, shape):
    """x = sqrt(abar) x0 + sqrt(1 - abar) e with the true e lands on sqrt(abar') x0 + sqrt(1 - abar') e."""
    phi = DDIMTransfer(sched)
    x0, e = _arrays(data.draw, shape)
    t, tn = _time(sched, u), _time(sched, v)
    a, an = sched.abar(t), sched.abar(tn)
    x = np.sqrt(a) * x0 + _sigma(sched, t) * e
    np.testing.assert_allclose(phi(x, e, t, tn), np.sqrt(an) * x0 + _sigma(sched, tn) * e, rtol=1e-9,
                               atol=1e-9 * (1 + 1 / np.sqrt(a)))


@given(sched=VP, data=st.data(), u=unit, v=unit)
def test_phi_equals_textbook_ddim_and_euler_in_y_s(sched, data, u, v):
    phi = DDIMTransfer(sched)
    x, e = _arrays(data.draw, (3,))
    t, tn = _time(sched, u), _time(sched, v)
    a, an = sched.abar(t), sched.abar(tn)
    x0_hat = (x - _sigma(sched, t) * e) / np.sqrt(a)
    ddim = np.sqrt(an) * x0_hat + _sigma(sched, tn) * e
    np.testing.assert_allclose(phi(x, e, t, tn), ddim, rtol=1e-9, atol=1e-9 / np.sqrt(a))
    # y' = y + (s' - s) e with y = x / sqrt(abar)
    y_next = x / np.sqrt(a) + (sched.s(tn) - sched.s(t)) * e
    np.testing.assert_allclose(phi(x, e, t, tn) / np.sqrt(an), y_next, rtol=1e-9, atol=1e-9 / np.sqrt(a * an))


def test_phi_keeps_digits_for_tiny_steps():
    """The written form of eq. 9 avoids the cancellation of the textbook form for tiny steps."""
    sched = LinearVP()
    phi = DDIMTransfer(sched)
    t, h = 0.5, 1e-12
    _, b = phi.coefficients(t, t - h)
    # y-form b = sqrt(abar') (s' - s), differentiated: -h sqrt(abar) ds/dt
    exact_b = -0.5 * h * np.sqrt(sched.abar(t)) * sched.s(t) * (-sched.dlog_abar(t)) * (1 + sched.s(t) ** -2)
    assert b == pytest.approx(exact_b, rel=1e-6)


def test_linear_transfer_rhs_is_the_probability_flow_ode():
    sched = LinearVP()
    lin = LinearTransfer(sched)
    x, eps, t = np.array([0.7, -0.2]), np.array([0.1, 0.4]), 0.37
    a, da = sched.abar(t), sched.dabar(t)
    f = da * (x / (2 * a) - eps / (2 * a * np.sqrt(1 - a)))  # docs/theory.md, "The probability-flow ODE", paper's form
    np.testing.assert_allclose(lin.gradient(x, eps, t), f, rtol=1e-13)
    np.testing.assert_allclose(lin(x, f, t, t - 0.1), x - 0.1 * f)


def test_unit_difference_rhs_is_one_ddim_step():
    sched = DiscreteVP.linear()
    lin, phi = LinearTransfer(sched), DDIMTransfer(sched)
    assert lin.rhs == "unit-difference"
    x, eps = np.array([0.7, -0.2]), np.array([0.1, 0.4])
    np.testing.assert_allclose(lin(x, lin.gradient(x, eps, 500.0), 500.0, 499.0), phi(x, eps, 500.0, 499.0),
                               rtol=1e-14)
    # at the data end the difference is taken forward and stays finite
    assert np.all(np.isfinite(lin.gradient(x, eps, -1.0)))


def test_ode_rhs_refuses_abar_one():
    with pytest.raises(ValueError, match="singular"):
        LinearTransfer(DiscreteVP.linear(), rhs="ode").gradient(np.ones(2), np.ones(2), -1.0)
