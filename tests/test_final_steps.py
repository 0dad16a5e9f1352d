"""Lower-order final steps (``Final``: ``ipndm-lof1``, ``ipndm-lof2``) and the ramped s-exact PEC (``pec-s-ramp``).

The head-to-head numbers behind these methods are in ``analysis/results/levers.md`` (``python -m analysis.levers``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pndmkit import METHODS, AdamsPC, DDIMTransfer, Final, Integrator, LinearMultistep, Single
from pndmkit.grids import make_grid
from pndmkit.methods import steps_for_nfe
from pndmkit.problems import get_problem
from pndmkit.schedules import DiscreteVP, LinearVP
from pndmkit.stability import StabilityWarning, amplification

GMM = get_problem("gmm2d")


def _model(sched):
    return lambda x, t: GMM.eps(x, t, sched)


def _x(n=64):
    return np.random.default_rng(3).standard_normal((n, 2))


@pytest.mark.parametrize("kind", ["quadratic", "logsnr", "uniform"])
@pytest.mark.parametrize("finals, few_steps", [((), None), ((Single(),), 7), ((Single(), LinearMultistep(2)), 2)])
def test_without_lowered_final_steps_final_is_its_body_bit_for_bit(kind, finals, few_steps):
    """No finals, or a grid of at least ``few_steps`` steps: every step is iPNDM's, to the last bit."""
    sched = LinearVP()
    grid = make_grid(sched, 7, kind, t_end=0.0)
    ipndm = METHODS["ipndm"].build(sched).solve(_model(sched), _x(), grid)
    final = Integrator(Final(LinearMultistep(4, ramp=True), finals, few_steps=few_steps), DDIMTransfer(sched))
    sol = final.solve(_model(sched), _x(), grid)
    np.testing.assert_array_equal(sol.x, ipndm.x)
    assert sol.nfe == ipndm.nfe == 7


def _history_to_last_step(sched, grid):
    """iPNDM's run up to its last step: the sample there and the gradients at the last two step starts."""
    model = _model(sched)
    run = METHODS["ipndm"].build(sched).start(_x(), grid)
    starts = []
    while run.t != grid[-2]:
        starts.append(model(*run.ask()))
        run = run.tell(starts[-1])
    return run.x, model(run.x, grid[-2]), starts[-1]


@pytest.mark.parametrize("sched", [LinearVP(), DiscreteVP.linear()], ids=["linear-vp", "discrete-linear"])
def test_the_lowered_last_step_is_ddim_or_ab2_on_ipndms_history(sched):
    """ipndm-lof1's last step is DDIM from iPNDM's sample, ipndm-lof2's AB2 (3 e_0 - e_1) / 2: exact coefficients."""
    grid = make_grid(sched, 6, "quadratic", **({} if isinstance(sched, DiscreteVP) else {"t_end": 0.0}))
    x, e0, e1 = _history_to_last_step(sched, grid)
    phi = DDIMTransfer(sched)
    for name, e in (("ipndm-lof1", e0), ("ipndm-lof2", 1.5 * e0 - 0.5 * e1)):
        sol = METHODS[name].build(sched).solve(_model(sched), _x(), grid)
        np.testing.assert_allclose(sol.x, phi(x, e, grid[-2], grid[-1]), rtol=1e-13, atol=1e-13)
        assert sol.nfe == 6
    ipndm = METHODS["ipndm"].build(sched).solve(_model(sched), _x(), grid)
    assert np.abs(ipndm.x - phi(x, e0, grid[-2], grid[-1])).max() > 1e-3  # the last step differs from iPNDM's


def test_final_counts_the_steps_left_from_the_grid():
    """The order capped at the steps left (DDIM, AB2, AB3 last) differs from "DDIM, AB2 last" only where the
    body would take an AB4 step third from the end: from 6 steps on (AB1, AB2, AB3 ramp first)."""
    sched = LinearVP()
    model = _model(sched)
    capped = Integrator(Final(LinearMultistep(4), (Single(), LinearMultistep(2), LinearMultistep(3))),
                        DDIMTransfer(sched))
    two = Integrator(Final(LinearMultistep(4), (Single(), LinearMultistep(2))), DDIMTransfer(sched))
    for steps in (1, 2, 3, 5, 6, 9):
        grid = make_grid(sched, steps, "quadratic", t_end=0.0)
        a, b = capped.solve(model, _x(), grid), two.solve(model, _x(), grid)
        assert np.array_equal(a.x, b.x) == (steps < 6), steps
        assert a.nfe == b.nfe == steps


def test_final_refuses_bad_arguments_by_name():
    with pytest.raises(TypeError, match="body must be a GradientEstimator"):
        Final("ipndm", ())
    with pytest.raises(TypeError, match="finals must be a tuple of GradientEstimator"):
        Final(Single(), [Single()])
    with pytest.raises(ValueError, match="few_steps"):
        Final(Single(), (Single(),), few_steps=0)


@pytest.mark.filterwarnings("ignore::pndmkit.StabilityWarning")
@pytest.mark.parametrize("steps", [2, 9])
def test_pec_s_ramp_on_an_s_uniform_grid_is_euler_trapezoid_then_the_classical_adams_pairs(steps):
    """On nodes uniform in s the exact weights are the classical ones: Euler + trapezoid, AB2 (3, -1)/2 + AM3
    (5, 8, -1)/12, then AB3 (23, -16, 5)/12 + AM4 (9, 19, -5, 1)/24, each corrected gradient through phi; PEC
    takes the next start gradient at the predicted point. N + 1 evaluations."""
    sched = LinearVP()
    model, phi = _model(sched), DDIMTransfer(sched)
    grid = make_grid(sched, steps, "s-uniform", t_end=0.0)
    ab = [(1.0,), (1.5, -0.5), (23 / 12, -16 / 12, 5 / 12)]
    am = [(0.5, 0.5), (5 / 12, 8 / 12, -1 / 12), (9 / 24, 19 / 24, -5 / 24, 1 / 24)]
    x, calls = _x(), 0
    e = model(x, grid[0])
    calls += 1
    past: list = []  # start gradients of past steps, newest first
    for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
        k = min(i, 2)
        es = [e] + past[:k]
        x_p = phi(x, sum(w * g for w, g in zip(ab[k], es)), t, t_next)
        e_new = model(x_p, t_next)
        calls += 1
        x = phi(x, sum(w * g for w, g in zip(am[k], [e_new] + es)), t, t_next)
        past = [e] + past
        e = e_new
    sol = METHODS["pec-s-ramp"].build(sched).solve(model, _x(), grid)
    np.testing.assert_allclose(sol.x, x, rtol=1e-10, atol=1e-12)
    assert sol.nfe == calls == steps + 1


def test_pec_s_ramp_stays_bounded_at_nfe_8_where_the_rk_warm_up_blows_up():
    """gmm2d, DDPM linear, quadratic grid, NFE 8 (the case of tests/test_few_step_stability.py): pec-s spends
    its budget on two PRK-s steps (error 1.17, off-trajectory points amplified 110x by the eps-form transfer);
    the ramped pair takes 7 steps, and its predicted points are amplified 10x."""
    sched = DiscreteVP.linear()
    x = np.random.default_rng(0).standard_normal((256, 2))
    ref = GMM.reference(x, sched, sched.t_start, sched.t_end, rtol=1e-12, atol=1e-12)
    errors = {}
    for name in ("pec-s", "pec-s-ramp"):
        integrator = METHODS[name].build(sched)
        grid = make_grid(sched, steps_for_nfe(name, 8), "quadratic")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StabilityWarning)
            sol = integrator.solve(_model(sched), x, grid)
        errors[name] = (len(grid) - 1, float(np.sqrt(np.mean((sol.x - ref) ** 2))), amplification(integrator, grid)[0])
    assert errors["pec-s"][:2] == (2, pytest.approx(1.17, rel=0.02)) and errors["pec-s"][2] > 100
    steps, err, factor = errors["pec-s-ramp"]
    assert steps == 7 and err < 0.04 and factor < 11


@pytest.mark.parametrize("few_steps, order", [(None, 2), (15, 4)])
def test_one_lowered_final_step_caps_a_fourth_order_method_at_second_order(few_steps, order):
    """PRK-s (order 4) with its last step by DDIM: the one first-order step's O(h^2) local error is the global
    error's order; with a few_steps threshold the fine grids of the sweep are never lowered. Reported and
    measured (gmm2d, cosine VP, the registry's convergence study)."""
    from pndmkit import MethodSpec, RungeKutta, register_method, unregister_method
    from pndmkit.studies.convergence import make_study, sweep
    from pndmkit.tableaus import RK4

    est = Final(RungeKutta(RK4, variable="native"), (Single(),), few_steps=few_steps)
    name = "test-prk-s-final"
    spec = MethodSpec(name, lambda sched: Integrator(est, DDIMTransfer(sched), name), order)
    register_method(spec)  # refuses a declared order that differs from the reported one
    try:
        result = sweep(make_study("gmm2d", "cosine-vp", t_start=0.9, batch=4), name, [25, 50, 100, 200])
    finally:
        unregister_method(name)
    assert abs(result.measured_order - order) <= 0.3, result.errors


def test_a_final_that_keeps_no_history_costs_no_extra_evaluation_under_a_pec_body():
    # PEC never evaluates at a step's start; a DDIM final keeps nothing of the gradients it is told, so
    # nothing is evaluated there for it: N + 1 evaluations as the body alone, and the body's steps unchanged
    from pndmkit import AdamsPC, DDIMTransfer, Final, Integrator, LinearMultistep, Single
    from pndmkit.estimators import observes
    from pndmkit.schedules import DiscreteVP

    schedule = DiscreteVP.linear()
    body = AdamsPC(4, "PEC", ramp=True)
    alone = Integrator(body, DDIMTransfer(schedule))
    lowered = Integrator(Final(body, (Single(),)), DDIMTransfer(schedule))
    same = Integrator(Final(body, (AdamsPC(4, "PEC", ramp=True),)), DDIMTransfer(schedule))
    assert not observes(Single()) and observes(body) and observes(LinearMultistep(2))
    for n in (2, 6, 10, 20):
        assert lowered.nfe(n) == alone.nfe(n) == n + 1
        assert same.nfe(n) == 2 * n  # the PEC final keeps a history: one start evaluation per step but its own
    x_T = np.random.default_rng(0).standard_normal((3, 2))
    grid = np.linspace(999, -1, 11)
    calls = {}
    for key, integrator in (("alone", alone), ("lowered", lowered)):
        seen = calls[key] = []
        seen_model = lambda x, t, seen=seen: seen.append((np.array(x), t)) or 0.3 * x + 1e-5 * t
        assert integrator.solve(seen_model, x_T, grid).nfe == 11
    # the first ten evaluations (every step but the last) are the body's own, bit for bit
    for (xa, ta), (xb, tb) in zip(calls["alone"][:10], calls["lowered"][:10]):
        assert ta == tb and np.array_equal(xa, xb)
    assert calls["lowered"][10][1] == grid[-2] != calls["alone"][10][1]  # DDIM evaluates at the last start


def test_an_estimator_given_as_a_method_is_told_to_take_a_transfer():
    from pndmkit import sample

    with pytest.raises(TypeError, match=r"got Final .*needs a transfer map: method=Integrator\(Final\(.*"
                                        r"DDIMTransfer\(schedule\)\)"):
        sample(lambda x, t: 0.1 * x, np.ones(2), schedule=DiscreteVP.linear(),
               method=Final(LinearMultistep(4), (Single(),)))
