"""Fitted solvers: the per-step weight table (TabulatedMultistep) and optimize_solver."""

import math
import warnings

import numpy as np
import pytest

from pndmkit import Integrator, TabulatedMultistep, sample
from pndmkit.adams import adams_bashforth_table
from pndmkit.errors import UsageError
from pndmkit.schedules import DiscreteVP, LinearVP
from pndmkit.studies import grid_opt, solver_opt
from pndmkit.studies.solver_opt import SolverFallbackWarning, fitted_integrator, optimize_solver
from pndmkit.studies.targets import StudyTarget
from pndmkit.testing import check_ask_tell
from pndmkit.transfers import DDIMTransfer

SCHED = DiscreteVP.linear()
GRIDS = [np.linspace(999, -1, 7), np.array([999.0, 700, 400, 200, 80, 20, -1])]


def model(x, t):
    return 0.3 * np.tanh(x) + 1e-3 * t * x


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("base", solver_opt.BASE_METHODS)
def test_adams_table_is_its_base_bit_for_bit(grid, base):
    """The Adams-Bashforth table through the base's transfer is the registered base method, bit for bit: iPNDM
    (eps form) and ipndm-x0 (the data-prediction transfer)."""
    x = np.random.default_rng(0).standard_normal((16, 4))
    ref = sample(model, x, schedule=SCHED, method=base, grid=grid).x
    sol = sample(model, x, schedule=SCHED, method=fitted_integrator(adams_bashforth_table(6), SCHED, base=base),
                 grid=grid)
    assert np.array_equal(ref, sol.x) and sol.method == base + "-fitted"


@pytest.mark.parametrize("grid", GRIDS)
def test_the_two_bases_are_two_samplers(grid):
    """The same table weighs eps predictions on one base and x0 predictions on the other: other end points."""
    x = np.random.default_rng(0).standard_normal((16, 4))
    eps, x0 = (sample(model, x, schedule=SCHED, method=fitted_integrator(adams_bashforth_table(6), SCHED, base=b),
                      grid=grid).x for b in solver_opt.BASE_METHODS)
    assert not np.allclose(eps, x0)


@pytest.mark.parametrize("base", solver_opt.BASE_METHODS)
def test_adams_table_is_its_base_in_torch(base):
    torch = pytest.importorskip("torch")
    x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def f(x, t):
        return 0.3 * torch.tanh(x) + 1e-3 * t * x

    ref = sample(f, x, schedule=SCHED, method=base, grid=GRIDS[1]).x
    got = sample(f, x, schedule=SCHED, method=fitted_integrator(adams_bashforth_table(6), SCHED, base=base),
                 grid=GRIDS[1]).x
    assert torch.equal(ref, got)


def test_x0_table_step_by_hand():
    """Two steps of a table of our own on the x0 base against the data-prediction step written out:
    x' = (sigma'/sigma) x + alpha' (1 - s'/s) d, d the weighted x0 predictions."""
    grid = np.array([999.0, 500.0, -1.0])
    rows = ((0.9,), (1.7, -0.4))
    x0 = np.array([[0.3, -1.2]])
    got = sample(model, x0, schedule=SCHED, method=fitted_integrator(rows, SCHED, base="ipndm-x0"), grid=grid).x

    def data(x, t):
        a = SCHED.abar(t)
        return (x - math.sqrt(1 - a) * model(x, t)) / math.sqrt(a)

    def step(x, d, t, u):
        a, b = SCHED.abar(t), SCHED.abar(u)
        return math.sqrt((1 - b) / (1 - a)) * x + (math.sqrt(b) - math.sqrt(a) * math.sqrt((1 - b) / (1 - a))) * d

    d0 = data(x0, 999.0)
    x1 = step(x0, 0.9 * d0, 999.0, 500.0)
    x2 = step(x1, 1.7 * data(x1, 500.0) - 0.4 * d0, 500.0, -1.0)
    np.testing.assert_allclose(got, x2, rtol=1e-12, atol=1e-14)


def test_fitted_integrator_refuses_an_unknown_base():
    for base in ("ddim", "ipndm-v", None):
        with pytest.raises(UsageError) as info:
            fitted_integrator(adams_bashforth_table(3), SCHED, base=base)
        assert info.value.params == ("base",)
        assert str(info.value) == (f"base must be one of 'ipndm', 'ipndm-x0' (the methods a fitted solver is built "
                                   f"on), got {base!r}")
    assert solver_opt.BASE_METHODS == ("ipndm", "ipndm-x0") and solver_opt.BASE_METHOD == "ipndm"
    assert [solver_opt.fitted_name(b) for b in solver_opt.BASE_METHODS] == ["ipndm-fitted", "ipndm-x0-fitted"]
    assert solver_opt.FITTED_NAME == "ipndm-fitted"


def test_adams_table_rows():
    assert adams_bashforth_table(5) == ((1.0,), (1.5, -0.5), (23 / 12, -16 / 12, 5 / 12),
                                        (55 / 24, -59 / 24, 37 / 24, -9 / 24), (55 / 24, -59 / 24, 37 / 24, -9 / 24))
    assert adams_bashforth_table(2, order=1) == ((1.0,), (1.0,))


def test_table_step_by_hand():
    """Two steps with weights of our own against DDIM's map written out."""
    grid = np.array([999.0, 500.0, -1.0])
    rows = ((0.9,), (1.7, -0.4))
    x0 = np.array([[0.3, -1.2]])
    got = sample(model, x0, schedule=SCHED, method=fitted_integrator(rows, SCHED), grid=grid).x

    def ddim(x, e, t, u):
        a, b = SCHED.abar(t), SCHED.abar(u)
        return math.sqrt(b / a) * x + (math.sqrt(1 - b) - math.sqrt(b / a) * math.sqrt(1 - a)) * e

    e0 = model(x0, 999.0)
    x1 = ddim(x0, 0.9 * e0, 999.0, 500.0)
    e1 = model(x1, 500.0)
    x2 = ddim(x1, 1.7 * e1 - 0.4 * e0, 500.0, -1.0)
    np.testing.assert_allclose(got, x2, rtol=1e-13, atol=1e-15)


def test_table_ask_tell_branch_and_pickle():
    rows = ((0.95,), (1.4, -0.35), (2.0, -1.3, 0.4), (2.1, -2.0, 1.0, -0.2))
    check_ask_tell(fitted_integrator(rows, SCHED), grid=np.array([999.0, 800, 500, 200, -1]), schedule=SCHED)


@pytest.mark.parametrize("weights, match", [
    ((), "non-empty"), ("ab", "non-empty"), (((1.0, 2.0),), r"weights\[0\] must hold 1 to 1"),
    (((1.0,), ()), r"weights\[1\] must hold 1 to 2"), (((float("nan"),),), r"weights\[0\]\[0\]"),
    (((1.0,), (1e39, 0.0)), r"weights\[1\]\[0\]=1e\+39 exceeds 1e\+06 in magnitude"),
    (((1.0,), (0.5, -1.000001e6)), r"weights\[1\]\[1\]=-1000001.0 exceeds 1e\+06 in magnitude"),
])
def test_table_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        TabulatedMultistep(weights)


def test_table_weight_bound_is_inclusive_and_below_float32_overflow():
    """A weight of magnitude MAX_TABLE_WEIGHT is taken and runs in float32; 1e39 (finite in float64) would
    overflow a float32 run and is refused when the table is made."""
    from pndmkit.adams import MAX_TABLE_WEIGHT

    assert MAX_TABLE_WEIGHT == 1e6 and MAX_TABLE_WEIGHT < np.finfo(np.float32).max < 1e39
    assert TabulatedMultistep(((1.0,), (-MAX_TABLE_WEIGHT, MAX_TABLE_WEIGHT))).weights[1] == (-1e6, 1e6)


def test_table_wrong_step_count_is_named():
    with pytest.raises(ValueError, match="grid has 6 steps, but this TabulatedMultistep holds weights for 3 steps"):
        sample(model, np.ones((2, 2)), schedule=SCHED, method=fitted_integrator(adams_bashforth_table(3), SCHED),
               grid=GRIDS[0])


def test_table_is_immutable_with_no_order():
    est = TabulatedMultistep(((1.0,),))
    with pytest.raises(AttributeError):
        est.weights = ((2.0,),)
    assert Integrator(est, DDIMTransfer(SCHED)).order() == 0


# -- optimize_solver -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverFallbackWarning)
        return optimize_solver("gmm2d", 5, calibration=64, heldout=64, maxfev=300, grid_maxfev=60)


def test_fit_never_worse_than_its_start_on_calibration(fitted):
    """The weight search starts from iPNDM on the grid search's grid, evaluated first: it can only go down."""
    target = StudyTarget.resolve("gmm2d", seed=0)
    cal = target.study(0, 64)
    start = grid_opt.rms_error(cal, "ipndm", np.asarray(fitted.grid_result.grid))
    assert fitted.calibration_error <= start
    assert fitted.evaluations <= 300


def test_fit_numbers_reproduce(fitted):
    target = StudyTarget.resolve("gmm2d", seed=0)
    held = target.study(64, 64)
    searched = grid_opt.sample_errors(held, fitted_integrator(fitted.searched_weights, SCHED), fitted.searched_grid)
    assert float(np.sqrt(np.mean(searched))) == fitted.heldout_error
    # the handed-back solver through OptimizedSolver.sample, from the noises drawn at t_start
    sol = fitted.sample(lambda x, t: held.problem.eps(x, t, SCHED), held.x_T)
    d = sol.x - held.reference
    assert not fitted.fell_back and fitted.weights == fitted.searched_weights  # the fitted table is handed back
    assert float(np.sqrt(np.mean(d * d))) == pytest.approx(fitted.heldout_error, rel=1e-12)


def test_fit_cuts_gmm2d_error(fitted):
    """Measured: at NFE 5 on gmm2d the fitted weights cut the optimised grid's held-out error (64 noises)."""
    assert not fitted.fell_back
    assert fitted.heldout_interval[0] > 0
    assert fitted.reduction > 0.2, fitted.report()
    assert "below ipndm on its optimised grid" in fitted.report()


@pytest.fixture(scope="module")
def fitted_x0():
    return optimize_solver("gmm2d", 5, calibration=32, heldout=32, maxfev=100, grid_maxfev=30, fallback=False,
                           base="ipndm-x0")


def test_an_x0_fit_searches_ipndm_x0s_grid_and_measures_against_it(fitted_x0):
    """base="ipndm-x0": the grid search is ipndm-x0's, the weight search starts from ipndm-x0 on that grid (so it
    only goes down from its calibration error), and the held-out numbers are the x0 sampler's and ipndm-x0's."""
    res = fitted_x0
    assert res.base == res.fitted.base == "ipndm-x0" and res.grid_result.method == "ipndm-x0"
    assert res.name == res.fitted.name == "ipndm-x0-fitted" and res.to_dict()["base"] == "ipndm-x0"
    target = StudyTarget.resolve("gmm2d", seed=0)
    cal, held = target.study(0, 32), target.study(32, 32)
    grid = np.asarray(res.grid_result.grid)
    assert res.calibration_error <= grid_opt.rms_error(cal, "ipndm-x0", grid)
    assert res.baseline_error == grid_opt.rms_error(held, "ipndm-x0", grid)  # the x0 form, not ipndm
    assert res.baseline_error != grid_opt.rms_error(held, "ipndm", grid)
    searched = grid_opt.sample_errors(held, fitted_integrator(res.searched_weights, SCHED, base="ipndm-x0"),
                                      res.searched_grid)
    assert float(np.sqrt(np.mean(searched))) == res.heldout_error
    eps_form = grid_opt.sample_errors(held, fitted_integrator(res.searched_weights, SCHED), res.searched_grid)
    assert not np.array_equal(searched, eps_form)  # the same table on the eps form is another sampler
    assert res.integrator().transfer.__class__.__name__ == "DataTransfer"
    assert "below ipndm-x0 on its optimised grid" in res.report()
    assert res.report().startswith("fitted solver (ipndm-x0-fitted, built on ipndm-x0) at NFE 5")


def test_an_x0_fit_falls_back_to_ipndm_x0():
    with pytest.warns(SolverFallbackWarning, match="handing back ipndm-x0 on its optimised grid"):
        res = optimize_solver("gmm1d", 3, calibration=16, heldout=2, maxfev=30, grid_maxfev=20, base="ipndm-x0")
    assert res.fell_back and res.weights == adams_bashforth_table(3) and res.fitted.base == "ipndm-x0"
    assert "fell back to ipndm-x0 on its optimised grid" in res.report()
    target = StudyTarget.resolve("gmm1d", seed=0)
    held = target.study(16, 2)
    sol = res.sample(lambda x, t: held.problem.eps(x, t, SCHED), held.x_T)
    ref = sample(lambda x, t: held.problem.eps(x, t, SCHED), held.x_T, schedule=SCHED, method="ipndm-x0",
                 grid=res.grid)
    assert np.array_equal(sol.x, ref.x) and sol.method == "ipndm-x0-fitted"


def test_fallback_without_interval():
    with pytest.warns(SolverFallbackWarning, match="no interval"):
        res = optimize_solver("gmm1d", 3, calibration=16, heldout=2, maxfev=30, grid_maxfev=20)
    assert res.fell_back and res.weights == adams_bashforth_table(3)
    assert np.array_equal(res.grid, res.grid_result.grid)
    res2 = optimize_solver("gmm1d", 3, calibration=16, heldout=2, maxfev=30, grid_maxfev=20, fallback=False)
    assert not res2.fell_back and res2.weights == res2.searched_weights


def test_grouped_residuals_same_objective(monkeypatch):
    """Residuals grouped into sums of squares (a Jacobian too big to hold) keep the start's objective value."""
    kw = dict(calibration=16, heldout=16, maxfev=1, grid_maxfev=10, fallback=False)
    full = optimize_solver("gmm2d", 4, **kw)
    monkeypatch.setattr(solver_opt, "RESIDUAL_LIMIT", 1)
    grouped = optimize_solver("gmm2d", 4, **kw)
    assert grouped.evaluations == full.evaluations == 1
    assert grouped.calibration_error == pytest.approx(full.calibration_error, rel=1e-12)


@pytest.mark.parametrize("kwargs, param", [
    (dict(nfe=0), "nfe"), (dict(maxfev=0), "maxfev"), (dict(grid_maxfev=-1), "grid_maxfev"),
    (dict(first_time="late"), "first_time"), (dict(fallback="yes"), "fallback"), (dict(stop_early=3), "stop_early"),
    (dict(base="ipndm-v"), "base"), (dict(base="x0"), "base"),
])
def test_bad_arguments_named(kwargs, param):
    args = dict(nfe=3, calibration=4, heldout=4)
    args.update(kwargs)
    with pytest.raises((UsageError, ValueError, TypeError)) as err:
        optimize_solver("gmm1d", args.pop("nfe"), **args)
    assert param in str(err.value)


def test_integrator_refuses_another_schedule(fitted):
    with pytest.raises(UsageError, match="schedule"):
        fitted.integrator(LinearVP())
    assert fitted.integrator().estimator.weights == fitted.weights


def test_stop_early_judges_best_so_far():
    calls = [0]

    def stop():
        calls[0] += 1
        if calls[0] > 25:
            raise KeyboardInterrupt("budget")

    res = optimize_solver("gmm1d", 3, calibration=16, heldout=16, maxfev=100, grid_maxfev=20, stop_early=stop,
                          fallback=False)
    assert res.stopped.startswith("budget after ") and res.stopped.endswith("of at most 100 runs")
    assert not res.grid_result.stopped and res.grid_result.evaluations == 20
    assert 1 <= res.evaluations <= 7


def test_stop_early_in_the_grid_search_still_runs_the_start():
    def stop():
        raise KeyboardInterrupt("now")

    res = optimize_solver("gmm1d", 3, calibration=16, heldout=16, maxfev=100, grid_maxfev=20, stop_early=stop,
                          fallback=False)
    assert res.grid_result.stopped.startswith("now") and res.evaluations == 1
    assert res.stopped == f"the grid search was stopped ({res.grid_result.stopped}), so the weights were not searched"
    assert math.isfinite(res.calibration_error) and res.searched_weights == adams_bashforth_table(3)


def test_one_interrupt_in_the_grid_search_ends_the_whole_fit():
    """Ctrl-C raises once, where the program is: one that ends the grid search must not leave the weight search
    to run its whole budget afterwards (pndmkit grid fit --model ran on for minutes, silently)."""
    calls = [0]

    def stop():
        calls[0] += 1
        if calls[0] == 5:  # once, inside the grid search, as a real interrupt
            raise KeyboardInterrupt("interrupted")

    res = optimize_solver("gmm1d", 3, calibration=16, heldout=16, maxfev=100, grid_maxfev=20, stop_early=stop,
                          fallback=False)
    assert res.grid_result.stopped.startswith("interrupted") and res.grid_result.evaluations < 20
    assert res.evaluations == 1 and res.searched_weights == adams_bashforth_table(3)
    assert res.stopped.startswith("the grid search was stopped (interrupted")


def test_start_weights_continue_a_fit():
    kw = dict(calibration=16, heldout=16, grid_maxfev=10, fallback=False)
    first = optimize_solver("gmm1d", 3, maxfev=40, **kw)
    again = optimize_solver("gmm1d", 3, maxfev=1, start=first.searched_grid, start_weights=first.searched_weights,
                            **{**kw, "grid_maxfev": 1})
    assert again.evaluations == 1 and again.searched_weights == first.searched_weights
    assert again.stopped == ("maxfev=1 is below one Gauss-Newton iteration (the start and a Jacobian: 11 runs at 9 "
                             "parameters), so the weights were not searched")
    assert first.stopped == ""
    assert again.calibration_error <= first.calibration_error * (1 + 1e-12)
    with pytest.raises(UsageError, match=r"start_weights must have rows of lengths \[1, 2, 3\]"):
        optimize_solver("gmm1d", 3, maxfev=1, start_weights=((1.0,), (1.0,), (1.0,)), **kw)


def test_a_grid_search_already_run_is_reused_bit_for_bit(monkeypatch):
    """grid_result= hands over iPNDM's grid search: the fit runs no search of its own and hands back what it
    hands back when it runs that search itself, bit for bit."""
    kw = dict(calibration=16, heldout=16, maxfev=30, fallback=False, first_time="fixed")
    own = optimize_solver("gmm1d", 3, grid_maxfev=20, **kw)
    searched = grid_opt.optimize("ipndm", "gmm1d", 3, calibration=16, heldout=16, maxfev=20, fallback=False,
                                 first_time="fixed")

    def no_search(*args, **kwargs):
        raise AssertionError("the grid search ran again")

    monkeypatch.setattr(solver_opt, "optimize", no_search)
    reused = optimize_solver("gmm1d", 3, grid_result=searched, **kw)
    assert reused.grid_result is searched and searched == own.grid_result
    assert reused.to_dict() == own.to_dict()  # grids, weights, errors and intervals: every float equal
    assert reused.evaluations == own.evaluations and reused.grid_result.evaluations == 20


def test_a_grid_search_of_another_fit_is_refused_before_any_work(monkeypatch):
    """A grid_result that is not the search this call would run is refused, naming grid_result and the
    parameter it differs in with both values, before any noise's reference is solved or run."""
    base = dict(calibration=16, heldout=16, maxfev=5, fallback=False, first_time="fixed")
    searched = grid_opt.optimize("ipndm", "gmm1d", 3, calibration=16, heldout=16, maxfev=5, fallback=False,
                                 first_time="fixed")
    other_method = grid_opt.optimize("ddim", "gmm1d", 3, calibration=16, heldout=16, maxfev=5, fallback=False,
                                     first_time="fixed")
    with pytest.warns(grid_opt.GridFallbackWarning):  # 2 held-out noises: no interval, so it falls back
        fell_back = grid_opt.optimize("ipndm", "gmm1d", 3, calibration=16, heldout=2, maxfev=5, first_time="fixed")

    def no_study(*args, **kwargs):
        raise AssertionError("a reference was solved")

    monkeypatch.setattr(StudyTarget, "study", no_study)
    for problem, nfe, given, changes, params, message in [
        ("gmm1d", 3, "grid", {}, ("grid_result",), "grid_result must be an OptimizedGrid"),
        ("gmm1d", 3, searched, {"start": "uniform"}, ("grid_result", "start"),
         "start tunes the grid search, which grid_result replaces"),
        ("gmm1d", 3, searched, {"grid_maxfev": 5}, ("grid_result", "grid_maxfev"),
         "grid_maxfev tunes the grid search, which grid_result replaces"),
        ("gmm1d", 3, other_method, {}, ("grid_result", "base"), "grid_result is a search of ddim's grid; a fit with "
         "base='ipndm' starts from ipndm's"),
        ("gmm1d", 3, searched, {"base": "ipndm-x0"}, ("grid_result", "base"),
         "grid_result is a search of ipndm's grid; a fit with base='ipndm-x0' starts from ipndm-x0's"),
        ("gmm2d", 3, searched, {}, ("grid_result", "problem_or_model"),
         "grid_result was searched with problem 'gmm1d' and this fit has 'gmm2d'"),
        ("gmm1d", 4, searched, {}, ("grid_result", "nfe"), "grid_result was searched with nfe 3 and this fit has 4"),
        ("gmm1d", 3, searched, {"first_time": "free"}, ("grid_result", "first_time"),
         "with first_time 'fixed' and this fit has 'free'"),
        ("gmm1d", 3, searched, {"seed": 1}, ("grid_result", "seed"), "with seed 0 and this fit has 1"),
        ("gmm1d", 3, searched, {"calibration": 8}, ("grid_result", "calibration"),
         "with calibration noises 16 and this fit has 8"),
        ("gmm1d", 3, searched, {"heldout": None}, ("grid_result", "heldout"),
         "with held-out noises 16 and this fit has 2048"),  # the default
        ("gmm1d", 3, searched, {"schedule": LinearVP(), "t_end": 0.0}, ("grid_result", "schedule"),
         "with schedule"),
        ("gmm1d", 3, searched, {"t_end": 0.0}, ("grid_result", "t_end"), "with last time -1.0 and this fit has 0.0"),
        ("gmm1d", 3, fell_back, {"heldout": 2}, ("grid_result", "fallback"), "grid_result fell back"),
    ]:
        with pytest.raises(UsageError, match=message) as info:
            optimize_solver(problem, nfe, grid_result=given, **{**base, **changes})
        assert info.value.params == params, message


def test_the_file_names_are_the_solver_file_modules():
    """The solver file lives in pndmkit.studies.solver_file; solver_opt re-exports its public names unchanged."""
    from pndmkit.studies import solver_file

    for name in solver_file.__all__:
        assert getattr(solver_opt, name) is getattr(solver_file, name) and name in solver_opt.__all__


def test_an_interrupt_while_the_grid_search_judges_keeps_the_fit(monkeypatch):
    """A real Ctrl-C (SIGINT) that lands while the grid search judges its grid on the held-out noises was raised out
    of optimize_solver, losing the search (pndmkit grid fit --model, exit 130, nothing written): it is held until the
    judging ends, and the fit then ends as an interrupt of the grid search does."""
    import signal

    from pndmkit.studies import grid_opt

    judge = grid_opt._judge

    def judge_interrupted(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)  # delivered here, in the main thread, as Ctrl-C is
        return judge(*args, **kwargs)

    monkeypatch.setattr(grid_opt, "_judge", judge_interrupted)
    res = optimize_solver("gmm1d", 3, calibration=16, heldout=16, maxfev=100, grid_maxfev=10,
                          stop_early=lambda: None, fallback=False)
    assert res.grid_result.stopped == "interrupted while judging, after 10 of at most 10 runs"
    assert res.stopped.startswith("the grid search was stopped (interrupted while judging")
    assert res.evaluations == 1 and math.isfinite(res.heldout_error)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    with pytest.raises(KeyboardInterrupt):  # without stop_early nothing is held: the interrupt is raised
        optimize_solver("gmm1d", 3, calibration=16, heldout=16, maxfev=100, grid_maxfev=10, fallback=False)


def test_an_interrupt_while_the_fit_is_judged_keeps_the_fit(monkeypatch):
    """The same for the final judging of the fitted weights: the result is handed back, stopped says so."""
    import signal

    from pndmkit.studies import solver_opt

    calls = [0]
    plain = solver_opt.sample_errors

    def sample_errors(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 1:
            signal.raise_signal(signal.SIGINT)
        return plain(*args, **kwargs)

    monkeypatch.setattr(solver_opt, "sample_errors", sample_errors)
    res = optimize_solver("gmm1d", 3, calibration=16, heldout=16, maxfev=30, grid_maxfev=10,
                          stop_early=lambda: None, fallback=False)
    assert res.stopped == "interrupted while judging, after 30 of at most 30 runs (the search had ended)"
    assert res.evaluations == 30 and math.isfinite(res.heldout_error) and not res.grid_result.stopped
