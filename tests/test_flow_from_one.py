"""Flow matching from sigma = 1: the flow methods work in flow variables, exactly (no detour through eps)."""

from __future__ import annotations

import warnings

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
    with pytest.raises(ValueError, match=r"euler with prediction='eps' cannot run this grid from t=1, where alpha = 0 "
                                         r"\(pure noise\): an 'eps' output carries no information on x0 there; tell "
                                         r"the run what the model predicts \(prediction='flow' or 'x0'\)"):
        pndmkit.get_method("euler").build(FM).solve(lambda x, t: x, np.ones(2), GRID, prediction="eps")


# -- pndmkit.sample from pure noise ------------------------------------------------------------------------
M, C = np.array([0.5, -1.0, 2.0]), 0.3  # Gaussian data N(M, C^2 I): the exact flow is known in closed form


def _spread(t):
    return np.sqrt((1 - t) ** 2 * C * C + t * t)


def gaussian_velocity(x, t):
    """The exact velocity of rectified flow for N(M, C^2 I) data: x_t = (1 - t) M + spread(t) z along each path."""
    d_spread = (t - (1 - t) * C * C) / _spread(t)
    return -M + d_spread * (x - (1 - t) * M) / _spread(t)


def gaussian_path(z, t):
    return (1 - t) * M + _spread(t) * z


Z = np.random.default_rng(7).standard_normal((5, 3))


@pytest.mark.parametrize("method", ["euler", "ddim"])
def test_sample_from_t_1_is_flow_match_euler_step_for_step(method):
    """pndmkit.sample with a velocity model from sigma = 1 against diffusers' own FlowMatchEulerDiscreteScheduler
    (shift 3, its shifted sigmas from 1) driven by the same velocity: every step, not only the end."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    n = 8
    theirs = diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0)
    theirs.set_timesteps(sigmas=list(1 - np.arange(n) / n))  # shifted by the scheduler, then 0 appended
    grid = theirs.sigmas.double().numpy()
    assert grid[0] == 1.0 and grid[-1] == 0.0 and FM.alpha(grid[0]) == 0.0
    steps = []
    sol = pndmkit.sample(gaussian_velocity, Z, schedule=FM, method=method, grid=grid, prediction="flow",
                         callback=lambda t, x, e: steps.append(np.array(x)))
    assert sol.method == method and sol.nfe == n and len(steps) == n
    x = torch.tensor(Z, dtype=torch.float32)
    for k, t in enumerate(theirs.timesteps):
        u = gaussian_velocity(x.double().numpy(), float(t) / 1000.0)
        x = theirs.step(torch.tensor(u, dtype=torch.float32), t, x).prev_sample
        np.testing.assert_allclose(steps[k], x.double().numpy(), rtol=2e-6, atol=2e-6)  # float32 theirs


def test_sample_from_t_1_follows_the_exact_flow_of_gaussian_data():
    """The exact oracle: from t = 1 every method that runs converges to the closed-form end point, at its order
    where the method is a classical one in t (Euler 1, RK4 4), and is exact for a point mass (straight paths,
    x0 constant) at every grid time."""
    exact = gaussian_path(Z, 0.0)

    def error(method, steps):
        x = pndmkit.sample(gaussian_velocity, Z, schedule=FM, method=method, steps=steps, grid="uniform",
                           prediction="flow").x
        return float(np.sqrt(np.mean((x - exact) ** 2)))

    for method, order in (("euler", 1), ("ddim", 1), ("rk4", 4)):
        e16, e32 = error(method, 16), error(method, 32)
        assert abs(np.log2(e16 / e32) - order) < 0.5, (method, e16, e32)
    assert error("rk4", 32) < 1e-7
    for method in ("fon", "dpm-solver++-2m", "dpm-solver++-3m", "unipc-2", "unipc-3", "ipndm-x0", "f-pndm-x0",
                   "pece-x0"):
        assert error(method, 64) < 3e-3, method
    # a point mass at M: x0 = M exactly from the first step on, so data-prediction methods stay on the path
    point = lambda x, t: (x - (1 - t) * M) / t - M  # noqa: E731  (u = z - M, finite at t = 1)
    for method in ("ddim", "dpm-solver++-2m", "dpm-solver++-3m", "unipc-3", "ipndm-x0"):
        seen = []
        sol = pndmkit.sample(point, Z, schedule=FM, method=method, steps=6, prediction="flow",
                             callback=lambda t, x, e: seen.append((t, np.array(x))))
        for t, x in seen:
            np.testing.assert_allclose(x, (1 - t) * M + t * Z, rtol=0, atol=1e-13)
        np.testing.assert_allclose(sol.x, np.broadcast_to(M, Z.shape), rtol=0, atol=1e-13)


def test_an_x0_model_from_t_1_samples_as_its_velocity():
    def x0_model(x, t):  # x0 = x - t u on rectified flow
        return x - t * gaussian_velocity(x, t)

    for method in ("ddim", "euler", "dpm-solver++-2m"):
        a = pndmkit.sample(gaussian_velocity, Z, schedule=FM, method=method, steps=10, prediction="flow").x
        b = pndmkit.sample(x0_model, Z, schedule=FM, method=method, steps=10, prediction="x0").x
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_a_converting_wrapper_from_t_1_is_told_its_network_output():
    """as_eps(flow model) returns eps = x at t = 1, which holds no x0: sample asks the wrapper for the velocity."""
    wrapped = pndmkit.as_eps(gaussian_velocity, FM, "flow")
    ours = pndmkit.sample(wrapped, Z, schedule=FM, method="unipc-3", steps=10).x
    np.testing.assert_array_equal(ours, pndmkit.sample(gaussian_velocity, Z, schedule=FM, method="unipc-3",
                                                       steps=10, prediction="flow").x)


def test_a_guided_flow_model_from_t_1_guides_the_velocities():
    """guided(flow network) returns eps; from t = 1 sample asks it for the guided velocity u_u + w (u_c - u_u)."""
    from pndmkit.models import guided

    def net(x, t, c):  # a conditional velocity: the Gaussian flow shifted by the condition
        return gaussian_velocity(x, t) + c

    c = np.full((5, 3), 0.25)
    g = guided(net, 3.0, {"c": np.zeros((5, 3))}, schedule=FM, prediction="flow")
    ours = pndmkit.sample(g, Z, schedule=FM, method="dpm-solver++-2m", steps=8, model_kwargs={"c": c}).x
    by_hand = lambda x, t: net(x, t, 0 * c) + 3.0 * (net(x, t, c) - net(x, t, 0 * c))  # noqa: E731
    want = pndmkit.sample(by_hand, Z, schedule=FM, method="dpm-solver++-2m", steps=8, prediction="flow").x
    np.testing.assert_allclose(ours, want, rtol=1e-14, atol=1e-14)


def _never(x, t):
    raise AssertionError(f"the model was called at t={t}")


@pytest.mark.parametrize("method, prediction, why", [
    ("plms", "flow", "its steps combine eps, which carries no information on x0 at alpha = 0"),
    ("fon-official", "flow", "it re-expresses dx/dt through eps between its stages"),
    ("pf", "flow", "its adaptive solver integrates the eps form of the ODE"),
    ("ddim", "eps", "an 'eps' output carries no information on x0 where x_t = sigma eps"),
    ("euler", "eps", "an 'eps' output carries no information on x0"),
])
def test_methods_that_cannot_start_at_alpha_0_are_refused_before_any_call(method, prediction, why):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pf's IgnoredStepsWarning
        with pytest.raises(ValueError) as info:
            pndmkit.sample(_never, Z, schedule=FM, method=method, steps=4, prediction=prediction)
    text = str(info.value)
    assert isinstance(info.value, pndmkit.sampling.StartAtRestError)
    assert info.value.t_start == pytest.approx(1000 / 1001, rel=1e-15)  # where s = 1000
    assert info.value.advising("--t-start {}") == f"{info.value.reason} (--t-start 0.999, where sigma/alpha = 1000)"
    assert "\n" not in text and text.startswith(f"method={method!r} with prediction={prediction!r} cannot start at "
                                                f"t=1, where alpha = 0 (pure noise): {why}")
    assert "no evaluation was made" in text
    assert text.endswith("start below t=1 (t_start=0.999 of pndmkit.sample, where sigma/alpha = 1000)")
    if prediction == "flow":  # the methods named instead do run from there with that prediction
        named = text.split("with prediction='flow': ")[1].split(", ...")[0].split(", ")
        assert named[:3] == ["ddim", "fon", "euler"]
        for other in named:
            pndmkit.sample(gaussian_velocity, Z, schedule=FM, method=other, steps=4, prediction="flow")
    else:
        assert "No method runs this grid with prediction='eps'" in text
    assert "prediction='flow') gives dx/dt there directly" not in text


def test_an_x0_model_evaluated_at_sigma_0_is_refused_naming_the_end():
    with pytest.raises(ValueError, match=r"^method='rk4' with prediction='x0' cannot run this grid from t=1 \(alpha "
                                         r"= 0\): an x0-prediction model cannot give eps at t=0.0, where sigma = 0"):
        pndmkit.sample(_never, Z, schedule=FM, method="rk4", steps=4, prediction="x0")


@pytest.mark.parametrize("method, prediction, shown", [
    ("ddim", "eps", r"^ddim with prediction='eps' cannot run this grid from t=1, where alpha = 0 \(pure noise\): an "
                    r"'eps' output carries no information on x0 there; tell the run what the model predicts"),
    ("plms", "flow", r"plms with prediction='flow' cannot run this grid from t=1, where alpha = 0"),
    ("plms", "eps", r"^plms with prediction='eps' cannot run this grid from t=1, where alpha = 0 \(pure noise\): an "
                    r"'eps' output carries no information on x0 there; no prediction starts this method there: "
                    r"start the grid below t=1$"),  # no advice to tell it 'flow' or 'x0', which it refuses too
])
def test_integrator_solve_from_t_1_refuses_in_one_line_before_any_call(method, prediction, shown):
    """Integrator.solve / start directly (not through pndmkit.sample) from alpha = 0: a ZeroDivisionError in the
    first step before; now a ValueError naming the time, and the model is never called."""
    calls = []

    def model(x, t):
        calls.append(t)
        return x

    integrator = pndmkit.get_method(method).build(FlowMatching(shift=3.0, t_max=1.0))
    grid = np.array([1.0, 0.75, 0.5, 0.25, 0.0])
    with pytest.raises(ValueError, match=shown):
        integrator.solve(model, np.ones((2, 3)), grid, prediction=prediction)
    assert calls == []
    out = pndmkit.get_method("ddim").build(FlowMatching(shift=3.0, t_max=1.0)).solve(
        lambda x, t: -x, np.ones((2, 3)), grid, prediction="flow")  # a flow model runs from there
    assert np.all(np.isfinite(out.x)) and out.nfe == 4


def test_a_foreign_converting_wrapper_from_t_1_is_told_to_give_the_network_unwrapped():
    """A wrapper that converts its flow output to eps itself and cannot hand it back: the refusal does not advise
    prediction='flow' (as_eps would refuse that wrapper: it would convert twice) but the bare network."""
    class Converting:
        converted_from = "flow"

        def __call__(self, x, t):
            return x

    with pytest.raises(ValueError, match=r"converts its network's 'flow' prediction to eps itself and cannot hand "
                                         r"it back .* give the network unwrapped with prediction='flow'"):
        pndmkit.sample(Converting(), np.ones((2, 3)), schedule=FlowMatching(shift=3.0, t_max=1.0), method="ddim",
                       steps=3)
    Converting.converted_from = "score"  # a score network cannot start there either: no advice to unwrap it
    with pytest.raises(ValueError) as info:
        pndmkit.sample(Converting(), np.ones((2, 3)), schedule=FlowMatching(shift=3.0, t_max=1.0), method="ddim",
                       steps=3)
    assert "unwrapped" not in str(info.value) and "prediction='flow'" in str(info.value)
