"""Flow matching from sigma = 1: the flow methods work in flow variables, exactly (no detour through eps)."""

from __future__ import annotations

import numpy as np
import pytest

import pndmkit
from pndmkit.schedules import FlowMatching
from pndmkit.transfers import DataTransfer, DDIMTransfer, LinearTransfer

FM = FlowMatching(shift=3.0, t_max=1.0)
GRID = np.array([1.0, 0.999999, 0.9, 0.5, 0.2, 0.0])


def velocity(x, t):
    """A velocity field that depends on x and t (float64 or float32, like x)."""
    return (np.tanh(x) * (1.0 + t) - 0.3).astype(x.dtype)


def euler_by_hand(x, grid):
    for t, t_next in zip(grid[:-1], grid[1:]):
        x = x + (t_next - t) * velocity(x, t)
    return x


def test_flow_matching_reaches_t_1():
    assert FM.t_max == FM.t_start == 1.0 and FM.s(1.0) == np.inf and FM.t_from_s(np.inf) == 1.0
    assert FM.alpha(1.0) == 0.0 and FM.sigma(1.0) == 1.0
    with pytest.raises(ValueError, match=r"t_max must lie in \(0, 1\]"):
        FlowMatching(t_max=1.0 + 1e-9)


def test_transfers_take_the_velocity_itself():
    x, u = np.array([0.7, -1.1]), np.array([0.2, 0.5])
    assert LinearTransfer(FM).gradient_of(u, x, 1.0, "flow") is u  # dx/dt = u, for any schedule
    np.testing.assert_array_equal(DataTransfer(FM).gradient_of(u, x, 1.0, "flow"), x - u)  # x0 = x - t u
    np.testing.assert_array_equal(DataTransfer(FM).gradient_of(u, x, 0.25, "flow"), x - 0.25 * u)
    assert DataTransfer(FM).coefficients(1.0, 0.9) == (0.9, 0.09999999999999998)  # (t'/t, (1 - t') - 0 t'/t)
    with pytest.raises(ValueError, match="cannot start at t=1.0, where alpha = 0"):
        DDIMTransfer(FM).coefficients(1.0, 0.9)


@pytest.mark.parametrize("method", ["euler", "ddim"])
def test_euler_and_ddim_from_t_1_are_the_euler_step_of_the_velocity(method):
    x_T = np.random.default_rng(0).standard_normal((3, 4))
    sol = pndmkit.get_method(method).build(FM).solve(velocity, x_T, GRID, prediction="flow")
    np.testing.assert_allclose(sol.x, euler_by_hand(x_T, GRID), rtol=1e-14, atol=1e-14)
    assert sol.nfe == 5


@pytest.mark.parametrize("method", ["euler", "ddim", "dpm-solver++-2m", "unipc-2"])
def test_float32_keeps_its_digits_near_t_1(method):
    """At sigma 0.999999, 1/alpha = 1e6: the old flow -> eps -> x0 route lost 1.3e-3 in float32."""
    x_T = np.random.default_rng(1).standard_normal((8, 16))
    integrator = pndmkit.get_method(method).build(FM)
    x64 = integrator.solve(velocity, x_T, GRID, prediction="flow").x
    x32 = integrator.solve(velocity, x_T.astype(np.float32), GRID, prediction="flow").x
    assert x32.dtype == np.float32
    assert np.linalg.norm(x32 - x64) / np.linalg.norm(x64) < 1e-6


def test_eps_methods_refuse_t_1_by_name():
    with pytest.raises(ValueError, match="DDIM transfer .* cannot start at t=1.0"):
        pndmkit.get_method("plms").build(FM).solve(velocity, np.ones(2), GRID, prediction="flow")
    with pytest.raises(ValueError, match="singular at t=1.0 where alpha = 0"):
        pndmkit.get_method("euler").build(FM).solve(lambda x, t: x, np.ones(2), GRID, prediction="eps")
