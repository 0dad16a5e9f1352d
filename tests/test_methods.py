"""Every method against an independent hand-written oracle, NFE counts, state handling, the public API."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pndmkit
from pndmkit import METHODS, sample
from pndmkit.adams import LinearMultistep
from pndmkit.estimators import Single
from pndmkit.runge_kutta import RungeKutta
from pndmkit.grids import make_grid
from pndmkit.integrator import Integrator
from pndmkit.schedules import CosineVP, DiscreteVP, LinearVP
from pndmkit.tableaus import RK4
from pndmkit.testing import check_point_mass
from pndmkit.testing.strategies import grids, methods, schedules
from pndmkit.transfers import DDIMTransfer, LinearTransfer

SIGMA = 0.5


def gaussian_eps(sched):
    """Exact eps of data N(0, SIGMA^2 I): eps = sqrt(1 - abar) x / (abar SIGMA^2 + 1 - abar)."""
    def model(x, t):
        a = sched.abar(t)
        return np.sqrt(1 - a) * x / (a * SIGMA**2 + 1 - a)
    return model


def nonlinear_eps(sched):
    """A smooth nonlinear model, so that oracles are checked beyond linear dynamics."""
    def model(x, t):
        a = sched.abar(t)
        return np.sqrt(1 - a) * (x + 0.3 * np.tanh(2 * x)) / (a * SIGMA**2 + 1 - a)
    return model


def phi(sched, x, e, t, tn):
    """Textbook DDIM (eta = 0) with x0_hat, written independently of pndmkit.transfers."""
    a, an = sched.abar(t), sched.abar(tn)
    x0 = (x - np.sqrt(1 - a) * e) / np.sqrt(a)
    return np.sqrt(an) * x0 + np.sqrt(1 - an) * e


def oracle(name, sched, model, x, grid):
    """The definitions of docs/theory.md ("Pseudo numerical methods: gradient part + transfer"), typed out.

    Returns (x_end, nfe).
    """
    calls = [0]

    def eps(x, t):
        calls[0] += 1
        return model(x, t)

    hist = []  # e at the start of each past step, newest first
    ab = {1: [1], 2: [3 / 2, -1 / 2], 3: [23 / 12, -16 / 12, 5 / 12], 4: [55 / 24, -59 / 24, 37 / 24, -9 / 24]}

    def pie(x, t, tn):
        e1 = eps(x, t)
        e2 = eps(phi(sched, x, e1, t, tn), tn)
        return (e1 + e2) / 2, e1

    def prk(x, t, tn):
        mid = (t + tn) / 2
        e1 = eps(x, t)
        e2 = eps(phi(sched, x, e1, t, mid), mid)
        e3 = eps(phi(sched, x, e2, t, mid), mid)
        e4 = eps(phi(sched, x, e3, t, tn), tn)
        return (e1 + 2 * e2 + 2 * e3 + e4) / 6, e1

    for n, (t, tn) in enumerate(zip(grid[:-1], grid[1:])):
        if name == "ddim":
            e = e1 = eps(x, t)
        elif name == "pie":
            e, e1 = pie(x, t, tn)
        elif name == "prk":
            e, e1 = prk(x, t, tn)
        elif name in ("plms", "s-pndm", "ipndm"):
            if n == 0 and name != "ipndm":
                e, e1 = pie(x, t, tn)
            else:
                e1 = eps(x, t)
                k = min(len(hist) + 1, 2 if name == "s-pndm" else 4)
                e = sum(w * ek for w, ek in zip(ab[k], [e1] + hist))
        elif name == "f-pndm":
            if n < 3:
                e, e1 = prk(x, t, tn)
            else:
                e1 = eps(x, t)
                e = sum(w * ek for w, ek in zip(ab[4], [e1] + hist))
        hist = [e1] + hist[:2]
        x = phi(sched, x, e, t, tn)
    return x, calls[0]


@pytest.mark.parametrize("name", ["ddim", "pie", "prk", "plms", "s-pndm", "f-pndm", "ipndm"])
@pytest.mark.parametrize("steps", [1, 2, 3, 5, 12])
@pytest.mark.parametrize("sched", [LinearVP(), DiscreteVP.linear()], ids=repr)
def test_pseudo_methods_match_their_definitions(name, steps, sched):
    model = nonlinear_eps(sched)
    x = np.random.default_rng(1).standard_normal((3, 2))
    grid = make_grid(sched, steps)
    expect, calls = oracle(name, sched, model, x, grid)
    sol = sample(model, x, schedule=sched, method=name, grid=grid)
    np.testing.assert_allclose(sol.x, expect, rtol=1e-11, atol=1e-11)
    assert sol.nfe == calls


def test_linear_transfer_with_rk4_tableau_is_classical_rk4():
    sched = LinearVP()
    model = nonlinear_eps(sched)

    def f(x, t):  # probability-flow ODE dx/dt, docs/theory.md
        a, da = sched.abar(t), sched.dabar(t)
        return da * (x / (2 * a) - model(x, t) / (2 * a * np.sqrt(1 - a)))

    x = np.array([0.4, -1.3])
    grid = np.linspace(1.0, 0.01, 7)
    y = x.copy()
    for t, tn in zip(grid[:-1], grid[1:]):
        h = tn - t
        k1 = f(y, t)
        k2 = f(y + h / 2 * k1, t + h / 2)
        k3 = f(y + h / 2 * k2, t + h / 2)
        k4 = f(y + h * k3, tn)
        y = y + h * (k1 + 2 * k2 + 2 * k3 + k4) / 6
    sol = sample(model, x, schedule=sched, method="rk4", grid=grid)
    np.testing.assert_allclose(sol.x, y, rtol=1e-12)


def test_prk_s_places_stages_at_the_s_midpoint():
    sched = LinearVP()
    est = RungeKutta(RK4, variable="native")
    times = est.stage_times(0.8, 0.6, DDIMTransfer(sched))
    assert times[0] == 0.8 and times[3] == 0.6
    assert sched.s(times[1]) == pytest.approx((sched.s(0.8) + sched.s(0.6)) / 2, rel=1e-12)
    assert RungeKutta(RK4).stage_times(0.8, 0.6, DDIMTransfer(sched))[1] == pytest.approx(0.7)


def test_variable_weights_on_uniform_s_nodes_are_the_fixed_weights():
    """On a grid uniform in s, AB4 exact on the s nodes equals the classical AB4 weights."""
    sched = LinearVP()
    grid = make_grid(sched, 20, "s-uniform")
    x = np.random.default_rng(2).standard_normal(4)
    model = nonlinear_eps(sched)
    fixed = Integrator(LinearMultistep(4, warmup=RungeKutta(RK4, "native"), warmup_steps=3, ramp=False),
                       DDIMTransfer(sched))
    a = fixed.solve(model, x, grid).x
    b = sample(model, x, schedule=sched, method="f-pndm-s", grid=grid).x
    np.testing.assert_allclose(a, b, rtol=1e-9)


NFE = {  # registry NFE formulas; N >= 1, fewer steps than a warm-up run the warm-up throughout
    "ddim": lambda n: n, "pie": lambda n: 2 * n, "prk": lambda n: 4 * n, "plms": lambda n: n + 1,
    "s-pndm": lambda n: n + 1, "f-pndm": lambda n: n + 3 * min(n, 3), "fon": lambda n: n + 3 * min(n, 3),
    "ipndm": lambda n: n, "ipndm-v": lambda n: n, "ipndm-lof1": lambda n: n, "ipndm-lof2": lambda n: n,
    "euler": lambda n: n, "rk4": lambda n: 4 * n,
    "prk-s": lambda n: 4 * n, "f-pndm-s": lambda n: n + 3 * min(n, 3),
    "fon-official": lambda n: n + 3 * min(n, 3), "pece-s": lambda n: 4 * n if n <= 2 else 2 * n + 4, "pec-s": lambda n: 4 * n if n <= 2 else n + 7,
    "pec-s-ramp": lambda n: n + 1,  # the first step evaluates its start and its predicted point, then PEC reuses
    # one evaluation per step (UniPC's corrector reuses the next one); x0 forms keep their warm-ups
    **{name: (lambda n: n) for name in ("dpm-solver++-2m", "dpm-solver++-3m", "dpm-solver-2m", "unipc-2", "unipc-3",
                                         "deis-3", "ipndm-x0")},
    "f-pndm-x0": lambda n: n + 3 * min(n, 3), "pece-x0": lambda n: 4 * n if n <= 2 else 2 * n + 4,
}


def test_every_builtin_fixed_step_method_has_an_nfe_oracle():
    """An independent check of the protocol's derived NFE for what pndmkit ships (user methods need none)."""
    assert set(NFE) | {"pf"} == set(pndmkit.methods.BUILTIN)


def counting(model):
    """``model`` with a call counter ``calls[0]`` kept outside pndmkit."""
    calls = [0]

    def counted(x, t):
        calls[0] += 1
        return model(x, t)

    return counted, calls


@pytest.mark.parametrize("name", sorted(NFE))
@pytest.mark.parametrize("steps", [1, 2, 3, 5, 50])
def test_nfe_counts_every_model_call(name, steps):
    sched = LinearVP()
    model, calls = counting(gaussian_eps(sched))
    sol = sample(model, np.ones((2, 3)), schedule=sched, method=name, steps=steps)
    assert sol.nfe == calls[0] == NFE[name](steps) == METHODS[name].nfe(steps) == sol.run.nfe
    assert np.all(np.isfinite(sol.x))
    assert len(sol.times) == steps + 1


def test_pf_counts_its_evaluations_and_reaches_the_exact_solution():
    sched = LinearVP()
    model, calls = counting(gaussian_eps(sched))
    z = np.array([0.3, -1.1])
    x_T = np.sqrt(sched.abar(1.0) * SIGMA**2 + 1 - sched.abar(1.0)) * z
    sol = sample(model, x_T, schedule=sched, method="pf")
    exact = np.sqrt(sched.abar(1e-3) * SIGMA**2 + 1 - sched.abar(1e-3)) * z  # the PF-ODE keeps z fixed
    assert sol.nfe == calls[0] > 10
    np.testing.assert_allclose(sol.x, exact, atol=1e-3)
    # the discrete grid ends at abar = 1, where PF switches to dy/ds = eps
    d = DiscreteVP.linear()
    x_T = np.sqrt(d.abar(980) * SIGMA**2 + 1 - d.abar(980)) * z
    np.testing.assert_allclose(sample(gaussian_eps(d), x_T, schedule=d, method="pf").x, SIGMA * z, atol=1e-3)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_one_method_object_shares_no_state_between_runs(name):
    sched = CosineVP()
    integrator = METHODS[name].build(sched)
    model = nonlinear_eps(sched)
    grid = make_grid(sched, 8)
    x1, x2 = np.full(3, 0.5), np.full(3, -1.5)
    first = integrator.solve(model, x1, grid).x
    integrator.solve(model, x2, grid)
    np.testing.assert_array_equal(integrator.solve(model, x1, grid).x, first)


@pytest.mark.parametrize("name", ["f-pndm", "pec-s", "prk-s"])
def test_a_pickled_run_resumes_exactly(name):
    """Interrupt a run mid-step (between two stage evaluations), pickle it, resume: bit-identical."""
    import pickle

    sched = LinearVP()
    model = nonlinear_eps(sched)
    integrator = METHODS[name].build(sched)
    grid = make_grid(sched, 12)
    x = np.array([0.2, 0.9])
    full = integrator.solve(model, x, grid)
    run = integrator.start(x, grid)
    for _ in range(full.nfe // 2 + 1):  # stop at an odd evaluation: inside a step for the RK methods
        run = run.tell(model(*run.ask()))
    resumed = integrator.solve(model, run=pickle.loads(pickle.dumps(run)))
    np.testing.assert_array_equal(resumed.x, full.x)
    assert resumed.nfe == full.nfe


def test_a_run_told_twice_branches_without_interference():
    """Runs are immutable: telling one run two outputs gives two independent continuations."""
    sched = LinearVP()
    model = nonlinear_eps(sched)
    integrator = METHODS["prk"].build(sched)
    grid = make_grid(sched, 4)
    run = integrator.start(np.array([0.3]), grid).tell(model(np.array([0.3]), grid[0]))
    x1, t1 = run.ask()
    a = run.tell(model(x1, t1))
    b = run.tell(2 * model(x1, t1))
    a_again = run.tell(model(x1, t1))
    assert a.ask()[1] == b.ask()[1] == t1
    assert not np.array_equal(a.ask()[0], b.ask()[0])
    np.testing.assert_array_equal(a.ask()[0], a_again.ask()[0])
    end = integrator.solve(model, run=a)
    np.testing.assert_array_equal(end.x, integrator.solve(model, run=a_again).x)


def test_start_mid_trajectory_from_an_exact_x_t():
    """img2img: starting at t=0.5 from the exact x_t ends where the full trajectory ends (to method error)."""
    sched = LinearVP()
    model = gaussian_eps(sched)
    z = np.array([0.3, -0.8])
    x_half = np.sqrt(sched.abar(0.5) * SIGMA**2 + 1 - sched.abar(0.5)) * z
    exact = np.sqrt(sched.abar(1e-3) * SIGMA**2 + 1 - sched.abar(1e-3)) * z
    errors = []
    for steps in (20, 40):
        sol = sample(model, x_half, schedule=sched, method="f-pndm-s", steps=steps, t_start=0.5)
        assert sol.times[0] == 0.5 and sol.times[-1] == 1e-3
        errors.append(np.abs(sol.x - exact).max())
    assert errors[1] < 2e-5 and errors[0] / errors[1] > 8  # converges to the exact end point, order >= 3


def test_callback_sees_every_step():
    sched = LinearVP()
    seen = []
    sample(gaussian_eps(sched), np.ones(2), schedule=sched, method="plms", steps=6,
           callback=lambda t, x, e: seen.append((t, x.copy(), e.copy())))
    assert [t for t, _, _ in seen] == make_grid(sched, 6)[1:].tolist()


def test_hand_built_integrator_is_accepted_by_sample():
    sched = LinearVP()
    euler = Integrator(Single(), LinearTransfer(sched), "my-euler")
    sol = sample(gaussian_eps(sched), np.ones(2), schedule=sched, method=euler, steps=4)
    assert sol.method == "my-euler" and sol.nfe == 4


def test_methods_cli_lists_every_method(capsys):
    import json

    from pndmkit.cli import main

    assert main(["methods", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["methods"]}
    assert set(rows) == set(METHODS)
    assert rows["f-pndm"]["nfe"] == "N + 9" and rows["plms"]["nfe"] == "N + 1" and rows["prk"]["nfe"] == "4N"
    assert rows["f-pndm-s"]["order"] == 4 and rows["ddim"]["order"] == 1 and rows["pf"]["nfe"] == "adaptive"
    assert main(["methods"]) == 0
    assert "f-pndm-s" in capsys.readouterr().out


def test_public_names_are_exported():
    for name in ("sample", "METHODS", "Integrator", "DDIMTransfer", "LinearVP", "DiscreteVP"):
        assert hasattr(pndmkit, name)


@given(data=st.data(), name=methods(kind="pseudo"), sched=schedules(), mu=st.floats(-2, 2), z=st.floats(-3, 3))
def test_every_pseudo_method_is_exact_for_a_point_mass(data, name, sched, mu, z):
    """For data concentrated at mu, eps is constant along the flow (x_t = alpha mu + sigma z), so every
    consistent gradient part returns that constant and phi lands exactly on the trajectory, on any schedule,
    any grid and with any number of steps (up to the rounding the grid amplifies: pndmkit.testing's
    check_point_mass). Classical methods do not have this property."""
    check_point_mass(name, mu, z, data.draw(grids(sched, max_steps=8), label="grid"), schedule=sched)


def test_classical_methods_leave_the_point_mass_trajectory():
    sched = LinearVP()
    eps = lambda x, t: (x - np.sqrt(sched.abar(t))) / np.sqrt(1 - sched.abar(t))  # noqa: E731
    x_T = np.array([np.sqrt(sched.abar(1.0)) + np.sqrt(1 - sched.abar(1.0))])
    exact = np.sqrt(sched.abar(1e-3)) + np.sqrt(1 - sched.abar(1e-3))
    for name in ("euler", "rk4", "fon"):
        assert abs(sample(eps, x_T, schedule=sched, method=name, steps=10).x[0] - exact) > 1e-4


def test_float32_state_never_meets_float64():
    """Devices without float64 (Apple MPS): the model only ever sees the state's dtype."""
    torch = pytest.importorskip("torch")
    sched = DiscreteVP.linear()

    def model(x, t):
        assert x.dtype == torch.float32, x.dtype
        return 0.1 * x

    for name in METHODS:
        out = sample(model, torch.ones(2, 3, dtype=torch.float32), schedule=sched, method=name, steps=5)
        assert out.x.dtype == torch.float32


def official_fon(model, x, grid, phi):
    """FON as the official PNDM code's gen_fon computes it (runner/method.py of github.com/luping-liu/PNDM),
    typed from its structure in pndmkit's names: every stage derivative is the unit DDIM difference taken at
    the step's base point and time, delta_i = phi(x, eps_i, t, t - 1) - x, with eps_i from the stage point."""
    ets = []
    for t, tn in zip(grid[:-1], grid[1:]):
        h = t - tn
        delta = lambda e: phi(x, e, t, t - 1) - x  # noqa: E731
        d1 = delta(model(x, t))
        ets.append(d1)
        if len(ets) > 3:
            d = (55 * ets[-1] - 59 * ets[-2] + 37 * ets[-3] - 9 * ets[-4]) / 24
        else:
            mid = (t + tn) / 2
            d2 = delta(model(x + d1 * h / 2, mid))
            d3 = delta(model(x + d2 * h / 2, mid))
            d4 = delta(model(x + d3 * h, tn))
            d = (d1 + 2 * d2 + 2 * d3 + d4) / 6
        x = x + d * h
    return x


@pytest.mark.parametrize("steps", [2, 5, 20])
def test_fon_official_is_the_official_codes_gen_fon_and_fon_is_textbook_rk4(steps):
    sched = DiscreteVP.linear()
    model = nonlinear_eps(sched)
    grid = make_grid(sched, steps)
    x = np.array([0.7, -1.3, 0.2])
    oracle_x = official_fon(model, x, grid, DDIMTransfer(sched))
    np.testing.assert_allclose(sample(model, x, schedule=sched, method="fon-official", grid=grid).x, oracle_x,
                               rtol=1e-12, atol=1e-12)
    textbook = sample(model, x, schedule=sched, method="fon", grid=grid).x
    assert np.abs(textbook - oracle_x).max() > 1e-4  # pndmkit's fon takes stage derivatives at the stage points
