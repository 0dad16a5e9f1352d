"""The stepping protocol: ask/tell runs, estimator state, Warmup, predictor-correctors, the data transfer,
variables and the infinite-coordinate rule, validation."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import quad

import pndmkit
from pndmkit import (METHODS, AdamsPC, DataTransfer, DDIMTransfer, Integrator, LinearMultistep, RungeKutta, Single,
                     Step, Warmup)
from pndmkit.grids import make_grid
from pndmkit.schedules import CosineVP, DiscreteVP, LinearVP
from pndmkit.tableaus import HEUN, RK4
from pndmkit.testing import gaussian_eps
from pndmkit.variables import exact_weights


def point_mass_x(sched, t, mu=0.7, z=-1.3):
    a = float(sched.abar(t))
    return np.array([math.sqrt(a) * mu + math.sqrt(1 - a) * z])


# --- the data-prediction transfer --------------------------------------------------------------------------
@pytest.mark.parametrize("sched", [LinearVP(), DiscreteVP.linear(), CosineVP()], ids=repr)
def test_single_evaluation_with_the_data_transfer_is_ddim(sched):
    model = gaussian_eps(sched)
    grid = make_grid(sched, 20)  # DiscreteVP's default grid ends at abar = 1 (s = 0, 1/s = inf)
    x = np.array([0.4, -1.2, 2.5])
    ddim = pndmkit.sample(model, x, schedule=sched, method="ddim", grid=grid).x
    data = Integrator(Single(), DataTransfer(sched)).solve(model, x, grid).x
    np.testing.assert_allclose(data, ddim, rtol=1e-12, atol=1e-12)


@given(t=st.floats(0.05, 1.0), frac=st.floats(0.0, 1.0), d=st.floats(-3, 3), x=st.floats(-3, 3))
def test_data_transfer_is_the_ddim_map_in_x0_form(t, frac, d, x):
    """x' = sqrt(abar') d + sqrt(1 - abar') eps_hat with eps_hat = (x - sqrt(abar) d) / sqrt(1 - abar)."""
    sched = LinearVP()
    t_next = frac * t + (1 - frac) * 1e-3
    a, an = float(sched.abar(t)), float(sched.abar(t_next))
    eps_hat = (x - math.sqrt(a) * d) / math.sqrt(1 - a)
    expected = math.sqrt(an) * d + math.sqrt(1 - an) * eps_hat
    got = DataTransfer(sched)(np.array([x]), np.array([d]), t, t_next)[0]
    assert got == pytest.approx(expected, rel=1e-11, abs=1e-11)


def test_data_transfer_lands_on_x0_estimate_at_abar_one():
    sched = DiscreteVP.linear()
    d = np.array([0.3])
    assert DataTransfer(sched)(np.array([1.7]), d, 20.0, -1.0)[0] == pytest.approx(0.3, rel=1e-15)
    assert DataTransfer(sched).coordinate(-1.0) == math.inf


# --- variables: exact weights and stage placement ---------------------------------------------------------
@pytest.mark.parametrize("variable", ["lambda", "t", (lambda t: t**2, math.sqrt)])
@pytest.mark.parametrize("transfer", [DDIMTransfer, DataTransfer])
def test_exact_weights_integrate_polynomials_in_the_variable_against_the_transfers_coordinate(variable, transfer):
    sched = LinearVP()
    phi = transfer(sched)
    nodes = [0.42, 0.5, 0.61, 0.7]
    t, t_next = 0.42, 0.3
    v = {"lambda": lambda tt: float(sched.lam(tt)), "t": lambda tt: tt}.get(variable, None) if isinstance(
        variable, str) else variable[0]
    poly = np.polynomial.Polynomial([0.3, -1.1, 0.7, 0.25])  # degree 3: 4 nodes integrate it exactly
    w = exact_weights(variable, phi, nodes, t, t_next)
    got = sum(wk * poly(v(n)) for wk, n in zip(w, nodes))
    u, u_next = phi.coordinate(t), phi.coordinate(t_next)

    def integrand(tt):  # p(v(t)) du/dt, du/dt by a central difference of the exact coordinate
        h = 1e-6
        return poly(v(tt)) * (phi.coordinate(tt + h) - phi.coordinate(tt - h)) / (2 * h)

    exact = quad(integrand, t, t_next, epsabs=1e-13, epsrel=1e-12, limit=200)[0] / (u_next - u)
    assert got == pytest.approx(exact, rel=1e-8)
    assert sum(w) == pytest.approx(1.0, rel=1e-12)


def test_native_exact_weights_are_the_lagrange_weights():
    from pndmkit.theory.multistep import lagrange_weights_float

    phi = DDIMTransfer(LinearVP())
    nodes = [0.5, 0.6, 0.7]
    w = exact_weights("native", phi, nodes, 0.5, 0.4)
    ref = lagrange_weights_float([phi.coordinate(n) for n in nodes], phi.coordinate(0.5), phi.coordinate(0.4))
    np.testing.assert_array_equal(w, ref)


def test_stages_placed_in_lambda_sit_at_lambda_fractions():
    sched = LinearVP()
    times = RungeKutta(RK4, variable="lambda").stage_times(0.8, 0.4, DDIMTransfer(sched))
    lam = [float(sched.lam(t)) for t in times]
    assert lam[1] == pytest.approx((lam[0] + lam[3]) / 2, rel=1e-12) and times[3] == 0.4


def test_a_user_function_variable_without_inverse_is_inverted_numerically():
    sched = LinearVP()
    est = RungeKutta(RK4, variable=lambda t: math.log(t))
    times = est.stage_times(0.8, 0.2, DDIMTransfer(sched))
    assert times[1] == pytest.approx(math.sqrt(0.8 * 0.2), rel=1e-12)


@pytest.mark.parametrize("estimator, extra", [
    (LinearMultistep(3, weights="exact", variable="lambda"), 0),
    (RungeKutta(HEUN, variable="lambda"), -1),       # the last step takes one evaluation instead of two
    (AdamsPC(3, "PECE", variable="lambda"), -1),
])
def test_a_step_ending_at_an_infinite_coordinate_is_first_order(estimator, extra):
    """Rule: at abar = 1 (lambda = inf) the step is the transfer's Euler step from the step's start gradient,
    as DPM-Solver++ / UniPC with final_sigmas_type="zero" and lower_order_final do."""
    sched = DiscreteVP.linear()
    grid = make_grid(sched, 6)
    assert grid[-1] == -1.0
    model = gaussian_eps(sched)
    integrator = Integrator(estimator, DDIMTransfer(sched))
    run = integrator.start(np.array([0.5, -0.3]), grid)
    while run.index < len(grid) - 2:
        run = run.tell(model(*run.ask()))
    x_last, t_last = run.x, run.t
    end = integrator.solve(model, run=run)
    ddim_step = DDIMTransfer(sched)(x_last, model(x_last, t_last), t_last, -1.0)
    np.testing.assert_allclose(end.x, ddim_step, rtol=1e-13)
    base = Integrator(estimator, DDIMTransfer(sched)).nfe(make_grid(LinearVP(), 6))
    assert integrator.nfe(grid) == base + extra


# --- estimators -------------------------------------------------------------------------------------------
def test_warmup_composition_equals_the_sugar_form():
    sched = CosineVP()
    grid = make_grid(sched, 9)
    model = gaussian_eps(sched)
    x = np.array([0.1, 1.4])
    sugar = Integrator(LinearMultistep(4, warmup=RungeKutta(RK4), warmup_steps=3, ramp=False), DDIMTransfer(sched))
    composed = Integrator(Warmup(RungeKutta(RK4), 3, LinearMultistep(4, ramp=False)), DDIMTransfer(sched))
    a, b = sugar.solve(model, x, grid), composed.solve(model, x, grid)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.nfe == b.nfe == 9 + 9


@pytest.mark.parametrize("steps", [8, 128])
def test_pece_of_order_two_is_pie_and_pec_saves_the_second_evaluation(steps):
    from external_methods import PECTrapezoid

    sched = LinearVP()
    model = gaussian_eps(sched)
    grid = make_grid(sched, steps)
    x = np.array([0.6, -0.2])
    pie = pndmkit.sample(model, x, schedule=sched, method="pie", grid=grid)
    pece = Integrator(AdamsPC(2, "PECE"), DDIMTransfer(sched)).solve(model, x, grid)
    pec = Integrator(AdamsPC(2, "PEC"), DDIMTransfer(sched)).solve(model, x, grid)
    np.testing.assert_allclose(pece.x, pie.x, rtol=1e-14)
    assert pece.nfe == pie.nfe == 2 * steps and pec.nfe == steps + 1
    # PEC takes each start gradient at the last predicted point: the same second-order limit, another path
    np.testing.assert_allclose(pec.x, Integrator(PECTrapezoid(), DDIMTransfer(sched)).solve(model, x, grid).x,
                               rtol=1e-14, atol=1e-15)
    assert 0 < np.abs(pec.x - pie.x).max() < (1.0 if steps == 8 else 1e-4)


def test_ramp_false_without_history_is_refused_with_the_fix():
    sched = LinearVP()
    with pytest.raises(ValueError, match=r"Warmup\(first, 3"):
        Integrator(LinearMultistep(4, ramp=False), DDIMTransfer(sched)).solve(gaussian_eps(sched), np.ones(2),
                                                                              [1.0, 0.5, 0.1])


def test_a_step_returns_exactly_one_of_gradient_and_sample():
    with pytest.raises(ValueError, match="exactly one of e"):
        Step(state=None)
    with pytest.raises(ValueError, match="exactly one of e"):
        Step(state=None, e=np.ones(1), x=np.ones(1))


def test_a_corrector_may_return_the_next_sample():
    class HalfWay(pndmkit.GradientEstimator):  # x_next = the mean of the DDIM step and x (not a sampler)
        def step(self, x, t, t_next, phi, state):
            e = yield x, t
            return Step(state, x=0.5 * (x + phi(x, e, t, t_next)))

        def order(self, phi):
            return 1

    sched = LinearVP()
    sol = Integrator(HalfWay(), DDIMTransfer(sched)).solve(lambda x, t: 0 * x, np.ones(1), [1.0, 0.5])
    expected = 0.5 * (1 + DDIMTransfer(sched)(np.ones(1), np.zeros(1), 1.0, 0.5))
    np.testing.assert_allclose(sol.x, expected, rtol=1e-15)
    assert sol.run.last_gradient is None


# --- runs -------------------------------------------------------------------------------------------------
def test_ask_tell_reports_every_evaluation_point_and_converts_predictions():
    sched = LinearVP()
    model = gaussian_eps(sched)
    integrator = METHODS["prk"].build(sched)
    grid = [1.0, 0.6, 0.2]
    run = integrator.start(np.array([0.3]), grid, prediction="x0")
    points = []
    while not run.done:
        x, t = run.ask()
        points.append(t)
        a = float(sched.abar(t))
        run = run.tell((x - math.sqrt(1 - a) * model(x, t)) / math.sqrt(a))  # an x0 prediction
    assert points == [1.0, 0.8, 0.8, 0.6, 0.6, 0.4, 0.4, 0.2]
    np.testing.assert_allclose(run.solution().x, integrator.solve(model, np.array([0.3]), grid).x, rtol=1e-12)
    with pytest.raises(RuntimeError, match="done"):
        run.ask()
    with pytest.raises(RuntimeError, match="not done"):
        integrator.start(np.array([0.3]), grid).solution()


def test_tell_checks_what_it_is_given():
    run = METHODS["ddim"].build(LinearVP()).start(np.ones((2, 3)), [1.0, 0.5])
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        run.tell(np.ones(3))
    with pytest.raises(TypeError, match="floating dtype"):
        run.tell(np.ones((2, 3), dtype=int))
    checked = METHODS["ddim"].build(LinearVP()).start(np.ones(2), [1.0, 0.5], check_finite=True)
    with pytest.raises(FloatingPointError, match="evaluation 1"):
        checked.tell(np.array([np.nan, 0.0]))


def test_a_non_finite_result_is_never_returned_silently():
    sched = LinearVP()
    nan_late = lambda x, t: x * (np.nan if t < 0.5 else 0.1)  # noqa: E731
    with pytest.raises(FloatingPointError, match="check_finite=True") as info:
        pndmkit.sample(nan_late, np.ones(2), schedule=sched, method="plms", steps=6)
    assert info.value.run.done and info.value.run.nfe == 7  # nothing lost: the run is attached
    with pytest.raises(FloatingPointError, match="evaluation 6"):
        pndmkit.sample(nan_late, np.ones(2), schedule=sched, method="plms", steps=6, check_finite=True)


def test_solve_validates_its_grid_like_sample():
    integrator = METHODS["ddim"].build(LinearVP())
    with pytest.raises(ValueError, match="grid"):
        integrator.solve(gaussian_eps(LinearVP()), np.ones(2), [1.5, 0.5])
    with pytest.raises(ValueError, match="decreasing"):
        integrator.solve(gaussian_eps(LinearVP()), np.ones(2), [0.5, 0.7])


def test_low_precision_initial_samples_keep_a_float32_state():
    torch = pytest.importorskip("torch")
    sched = DiscreteVP.linear()
    model = lambda x, t: gaussian_eps(sched)(x.double(), t).to(x.dtype)  # noqa: E731
    x64 = torch.randn(64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = pndmkit.sample(model, x64, schedule=sched, method="ddim", steps=1000).x
    for dtype in (torch.float16, torch.bfloat16):
        default = pndmkit.sample(model, x64.to(dtype), schedule=sched, method="ddim", steps=1000)
        assert default.x.dtype == dtype and default.run.x.dtype == torch.float32
        low = METHODS["ddim"].build(sched).solve(model, x64.to(dtype), make_grid(sched, 1000), state_dtype=str(
            dtype).replace("torch.", ""))
        err = lambda y: float((y.double() - ref).norm() / ref.norm())  # noqa: E731
        assert err(default.x) < 1e-2 < err(low.x), (err(default.x), err(low.x))


@pytest.mark.parametrize("bad, error, match", [
    (lambda: Integrator(None, None), TypeError, "estimator must be a GradientEstimator"),
    (lambda: Integrator(Single(), "ddim"), TypeError, "transfer must be a Transfer"),
    (lambda: DDIMTransfer("linear"), TypeError, "schedule must be a NoiseSchedule"),
    (lambda: RungeKutta("rk4"), TypeError, "tableau must be a ButcherTableau"),
    (lambda: RungeKutta(RK4, variable="sigma"), ValueError, "variable must be one of"),
    (lambda: LinearMultistep(4, weights="uniform"), ValueError, "weights must be 'fixed'"),
    (lambda: AdamsPC(1), ValueError, "order must be an integer in 2..8"),
    (lambda: AdamsPC(3, mode="PEEC"), ValueError, "mode must be 'PECE' or 'PEC'"),
    (lambda: Warmup(Single(), -1, Single()), ValueError, "steps must be an integer >= 0"),
    (lambda: Warmup("prk", 3, Single()), TypeError, "first must be a GradientEstimator"),
    (lambda: METHODS["ddim"].build(LinearVP()).start(np.ones(2, dtype=int), [1.0, 0.5]), TypeError, "x must have a floating"),
    (lambda: METHODS["ddim"].build(LinearVP()).start(np.ones(2), [1.0, 0.5], prediction="noise"), ValueError,
     "prediction must be one of"),
    (lambda: METHODS["ddim"].build(LinearVP()).start(np.ones(2), [1.0, 0.5], state_dtype="half"), ValueError,
     "state_dtype must be"),
])
def test_core_objects_validate_their_arguments(bad, error, match):
    with pytest.raises(error, match=match):
        bad()


def test_flags_are_not_truthiness_and_a_warmup_needs_its_steps():
    with pytest.raises(TypeError, match="ramp must be True or False, got 'no'"):
        LinearMultistep(4, ramp="no")
    with pytest.raises(TypeError, match="ramp must be True or False"):
        AdamsPC(3, ramp=1)
    with pytest.raises(ValueError, match="needs warmup_steps >= 1"):
        LinearMultistep(4, warmup=RungeKutta(HEUN))


class _Yields(pndmkit.GradientEstimator):
    """An estimator whose step yields what it is given (to test the run's checks of a request)."""

    def __init__(self, make):
        self.make = make

    def step(self, x, t, t_next, phi, state):
        e = yield self.make(x, t, t_next)
        return Step(state, e=e)

    def order(self, phi):
        return 1


@pytest.mark.parametrize("make, error, match", [
    (lambda x, t, tn: x, TypeError, r"must yield \(x, t\) pairs"),
    (lambda x, t, tn: (x, t + 5000.0), ValueError, "outside the domain"),
    (lambda x, t, tn: (x, float("nan")), ValueError, "outside the domain"),
    (lambda x, t, tn: (x[:1], t), ValueError, "the state has shape"),
])
def test_a_run_checks_every_requested_evaluation(make, error, match):
    integrator = Integrator(_Yields(make), DDIMTransfer(DiscreteVP.linear()))
    with pytest.raises(error, match=match):
        integrator.start(np.ones(2), [999.0, 500.0])


def test_pf_integrates_the_whole_trajectory_whatever_steps_says():
    """An adaptive method chooses its own steps: without a grid it starts at the top of the schedule, not where
    the leading spacing of a step count would (980 for 50 steps, 0 for 1 step)."""
    sched = DiscreteVP.linear()
    model = gaussian_eps(sched)
    runs = [pndmkit.sample(model, np.ones(2), schedule=sched, method="pf", **kw) for kw in ({}, {"steps": 1},
                                                                                          {"steps": 50})]
    for sol in runs:
        assert sol.times[0] == 999.0 and sol.times[-1] == -1.0
        np.testing.assert_array_equal(sol.x, runs[0].x)
    assert pndmkit.sample(model, np.ones(2), schedule=sched, method="pf", t_start=500).times[0] == 500.0


def test_base_point_stage_derivatives_are_first_order_unless_the_drift_cancels_it():
    """derivative='base' (the official FON warm-up) errs by -c_i h [(c_x' + c_x^2) x + (c_e' + c_x c_e) eps]:
    first order on VP, second order on flow matching, where both brackets vanish; the DDIM transfer is unaffected."""
    from pndmkit import FlowMatching, LinearTransfer

    base = RungeKutta(RK4, derivative="base")
    assert base.order(LinearTransfer(LinearVP())) == 1
    assert base.order(LinearTransfer(DiscreteVP.linear())) == 1
    assert base.order(LinearTransfer(FlowMatching())) == 2
    assert base.order(DataTransfer(FlowMatching())) == 1  # x0 = (x - t eps)/(1 - t): c_x' + c_x^2 = 2/(1-t)^2
    assert base.order(DDIMTransfer(LinearVP())) == RungeKutta(RK4).order(DDIMTransfer(LinearVP())) == 2
    assert METHODS["fon-official"].build(FlowMatching()).order() == 3 and METHODS["fon-official"].order == 2


def _estimators_of(estimator, seen=None):
    """The estimator and every estimator it composes (warm-ups, multistep parts), each once."""
    seen = {} if seen is None else seen
    seen[id(estimator)] = estimator
    for value in vars(estimator).values():
        if isinstance(value, pndmkit.GradientEstimator) and id(value) not in seen:
            _estimators_of(value, seen)
    return list(seen.values())


@pytest.mark.parametrize("name", [n for n in pndmkit.METHODS if not pndmkit.METHODS[n].adaptive])
def test_every_registered_estimator_is_immutable(name):
    integrator = pndmkit.METHODS[name].build(LinearVP())
    for est in _estimators_of(integrator.estimator):
        attribute = next(iter(k for k in vars(est) if not k.startswith("_")), "anything")
        with pytest.raises(AttributeError, match="immutable"):
            setattr(est, attribute, None)
        with pytest.raises(AttributeError, match="immutable"):
            est.new_attribute = 1
        assert hash(est) == object.__hash__(est)  # hashable, by identity


def test_a_user_estimator_is_frozen_after_its_outermost_init():
    class Base(pndmkit.Single):
        def __init__(self, scale):
            self.scale = scale

    class Derived(Base):
        def __init__(self, scale, offset):
            super().__init__(scale)  # the inner __init__ must not freeze the object half-built
            self.offset = offset

    est = Derived(2.0, 1.0)
    assert (est.scale, est.offset) == (2.0, 1.0)
    with pytest.raises(AttributeError, match="Derived is immutable: cannot set 'scale'"):
        est.scale = 3.0
    with pytest.raises(AttributeError, match="immutable"):
        del est.offset
