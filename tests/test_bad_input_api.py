"""Bad input to the Python API: every case raises the right error type with a message naming the parameter.

One row per case: the call, the error type, and a pattern that must appear in the message; the pattern
always contains the parameter's name, so a message that does not say what was wrong fails.
"""

import re

import numpy as np
import pytest

from pndmkit import DDIMTransfer, Integrator, LinearTransfer, as_eps, get_method, make_grid, sample
from pndmkit.adams import LinearMultistep
from pndmkit.estimators import Single
from pndmkit.runge_kutta import RungeKutta
from pndmkit.grids import check_grid
from pndmkit.sampling import resolve_grid
from pndmkit.problems import GaussianMixture
from pndmkit.schedules import CosineVP, CustomSchedule, DiscreteVP, FlowMatching, LinearVP
from pndmkit.tableaus import ButcherTableau

VP = LinearVP()
D = DiscreteVP.linear()
D2 = np.random.default_rng(0).standard_normal((50, 2))  # data for GaussianMixture.fit
X = np.ones(2)
NAN, INF = float("nan"), float("inf")


def model(x, t):
    return 0.1 * x


def ddim():
    return get_method("ddim").build(VP)


def _with(data, index, value):
    out = data.copy()
    out[index] = value
    return out


def _ddim_on(schedule):
    return Integrator(Single(), DDIMTransfer(schedule), "ddim")


def _started(integrator=None, grid=(1.0, 0.5, 0.1)):
    """A run one evaluation in."""
    integrator = ddim() if integrator is None else integrator
    run = integrator.start(X, list(grid))
    return run.tell(model(*run.ask()))


CASES = [
    # sample(): scalars and arrays
    ("sample steps float", lambda: sample(model, X, schedule=VP, steps=10.5), TypeError,
     r"steps must be an integer, got float 10.5"),
    ("sample steps bool", lambda: sample(model, X, schedule=VP, steps=True), TypeError, r"steps must be an integer"),
    ("sample steps zero", lambda: sample(model, X, schedule=VP, steps=0), ValueError, r"steps must be an integer >= 1"),
    ("sample x_T list", lambda: sample(model, [1.0], schedule=VP), TypeError, r"x_T must be a numpy.ndarray"),
    ("sample x_T int", lambda: sample(model, np.ones(2, dtype=np.int64), schedule=VP), TypeError,
     r"x_T must have a floating dtype, got int64"),
    ("sample x_T nan", lambda: sample(model, np.array([NAN, 0.0]), schedule=VP), ValueError, r"x_T must be finite"),
    ("sample x_T inf", lambda: sample(model, np.array([0.0, INF]), schedule=VP), ValueError, r"x_T must be finite"),
    ("sample x_T 0-d numpy", lambda: sample(model, np.array(1.0), schedule=VP), ValueError,
     r"x_T must have at least one axis as a numpy array, got a 0-d array \(1.0\).*x_T.reshape\(1\)"),
    ("start x nan", lambda: ddim().start(np.full((2, 3), NAN), [1.0, 0.5, 0.1]), ValueError,
     r"x must be finite; 6 of 6 entries are NaN or infinite"),
    ("start x inf", lambda: ddim().start(np.array([0.0, -INF]), [1.0, 0.5, 0.1]), ValueError,
     r"x must be finite; 1 of 2 entries .*index \(1,\), -inf"),
    ("start x 0-d numpy", lambda: ddim().start(np.array(1.0), [1.0, 0.5, 0.1]), ValueError,
     r"x must have at least one axis as a numpy array"),
    ("sample model", lambda: sample(None, X, schedule=VP), TypeError, r"model must be callable"),
    ("sample schedule", lambda: sample(model, X, schedule="linear"), TypeError, r"schedule must be a NoiseSchedule"),
    ("sample method", lambda: sample(model, X, schedule=VP, method="pndm"), ValueError, r"unknown method 'pndm'"),
    ("sample method None", lambda: sample(model, X, schedule=VP, method=None), TypeError,
     r"^method must be a method name \(pndmkit.METHODS\), a MethodSpec or an Integrator, got NoneType None$"),
    ("Integrator nfe float steps", lambda: ddim().nfe(2.5), TypeError,
     r"^steps must be an integer >= 1 \(a step count of the schedule's default grid\) or a grid .*, got float 2.5$"),
    ("Integrator nfe string steps", lambda: ddim().nfe("5"), TypeError,
     r"^steps must be an integer >= 1 .* got str '5'$"),
    ("resolve_grid steps and grid swapped", lambda: resolve_grid(D, "leading-multistep", 5), TypeError,
     r"^steps must be an integer >= 1 \(the number of steps\), got str 'leading-multistep'; 'leading-multistep' is "
     r"a grid kind, which goes to grid="),
    ("resolve_grid grid number", lambda: resolve_grid(D, 5, 7), TypeError,
     r"^grid must be a grid kind \(uniform, .*\) or a 1-D sequence of decreasing times, got int 7$"),
    ("sample Integrator on another schedule", lambda: sample(model, X, schedule=CosineVP(), method=ddim()),
     ValueError, r"^method is an Integrator built on LinearVP\(.*\), but schedule=CosineVP\(.*\): "),
    ("sample prediction", lambda: sample(model, X, schedule=VP, prediction="noise"), ValueError,
     r"prediction must be one of"),
    ("sample model_time_offset nan", lambda: sample(model, X, schedule=D, model_time_offset=NAN), ValueError,
     r"model_time_offset must be a finite number, got nan"),
    ("sample t_start nan", lambda: sample(model, X, schedule=VP, t_start=NAN), ValueError,
     r"t_start must be a finite number"),
    ("sample t_end inf", lambda: sample(model, X, schedule=VP, t_end=INF), ValueError, r"t_end must be a finite number"),
    ("sample t_start outside", lambda: sample(model, X, schedule=VP, t_start=2.0), ValueError,
     r"t_start=2.0 lies outside the domain"),
    ("sample callback", lambda: sample(model, X, schedule=VP, callback="print"), TypeError, r"callback must be callable"),
    ("sample check_finite", lambda: sample(model, X, schedule=VP, check_finite=1), TypeError,
     r"check_finite must be True or False"),
    ("sample misspelt steps", lambda: sample(model, X, schedule=VP, grid=[1.0, 0.5, 0.1], stpes=10), TypeError,
     r"unexpected keyword argument 'stpes'; did you mean 'steps'"),
    ("sample misspelt grid", lambda: sample(model, X, schedule=VP, gird="uniform"), TypeError,
     r"unexpected keyword argument 'gird'; did you mean 'grid'"),
    ("sample convention unknown", lambda: sample(model, X, schedule=D, convention="ddpm"), ValueError,
     r"convention must be one of"),
    ("sample convention + grid", lambda: sample(model, X, schedule=D, convention="ddim", grid="trailing"), ValueError,
     r"convention='ddim' sets grid='leading', which contradicts grid='trailing'"),
    ("sample convention continuous", lambda: sample(model, X, schedule=VP, convention="ddim"), ValueError,
     r"convention='ddim' .* does not apply to schedule=LinearVP"),
    ("sample steps vs explicit grid", lambda: sample(model, X, schedule=VP, grid=[1.0, 0.5], steps=4), ValueError,
     r"steps=4 contradicts the explicit grid"),
    ("sample rho on uniform", lambda: sample(model, X, schedule=VP, grid="uniform", rho=3.0), ValueError,
     r"rho applies to grid 'karras' only"),
    ("sample rho on the default grid", lambda: sample(model, X, schedule=D, rho=3.0), ValueError,
     r"not to grid 'leading' \(the default grid of DiscreteVP.linear\(T=1000\); no grid was given\): pass "
     r"grid='karras' with rho"),
    ("sample model returns a list", lambda: sample(lambda x, t: [1.0] * X.size, X, schedule=D, steps=2), ValueError,
     r"model output must be an array of shape .* like x; got a list, not an array at t="),
    ("sample leading mid-trajectory", lambda: sample(model, X, schedule=D, grid="leading", steps=10, t_start=300),
     ValueError, r"grid 'leading' with steps=10 starts at t=900, so it cannot start at t_start=300"),
    # make_grid / check_grid
    ("make_grid kind", lambda: make_grid(VP, 10, "karas"), ValueError, r"grid kind must be one of .*'karras'"),
    ("make_grid steps np.float64", lambda: make_grid(VP, np.float64(10)), TypeError,
     r"steps must be an integer, got float64"),
    ("make_grid offset off leading", lambda: make_grid(D, 10, "trailing", offset=1), ValueError,
     r"offset applies to grid 'leading'"),
    ("make_grid offset float", lambda: make_grid(D, 10, offset=1.5), TypeError, r"offset must be an integer"),
    ("make_grid final_alpha value", lambda: make_grid(D, 10, final_alpha="zero"), ValueError,
     r"final_alpha must be one of 'one', 'first'"),
    ("make_grid final_alpha continuous", lambda: make_grid(VP, 10, final_alpha="one"), ValueError,
     r"final_alpha applies to DiscreteVP schedules only"),
    ("make_grid 600 leading", lambda: make_grid(D, 600), ValueError, r"grid 'leading' with steps=600 .* start at t=599"),
    ("make_grid zero-length step", lambda: make_grid(D, 10, final_alpha="first"), ValueError,
     r"final_alpha='first'\) would have length zero"),
    ("make_grid t_start non-integer", lambda: make_grid(D, 10, "trailing", t_start=10.5), ValueError,
     r"t_start=10.5 must be a training index"),
    ("make_grid schedule", lambda: make_grid("linear", 10), TypeError, r"schedule must be a NoiseSchedule"),
    ("check_grid nan", lambda: check_grid(VP, [0.9, NAN, 0.1]), ValueError, r"grid\[1\]=nan must be finite"),
    ("check_grid increasing", lambda: check_grid(VP, [0.1, 0.9]), ValueError, r"grid must be strictly decreasing"),
    ("check_grid outside", lambda: check_grid(VP, [1.0, -0.5]), ValueError, r"grid\[1\]=-0.5 lies outside the domain"),
    ("check_grid short", lambda: check_grid(VP, [0.5]), ValueError, r"grid must be a 1-D sequence of at least 2"),
    ("check_grid strings", lambda: check_grid(VP, ["a", "b"]), TypeError, r"grid must be a 1-D sequence of numbers"),
    # schedules
    ("LinearVP beta_max inf", lambda: LinearVP(beta_max=INF), ValueError, r"beta_max must be a finite number"),
    ("LinearVP beta_min nan", lambda: LinearVP(beta_min=NAN), ValueError, r"beta_min must be a finite number"),
    ("LinearVP order", lambda: LinearVP(beta_min=5.0, beta_max=1.0), ValueError, r"beta_min < beta_max"),
    ("CosineVP s0 nan", lambda: CosineVP(s0=NAN), ValueError, r"s0 must be a finite number"),
    ("CosineVP t_max", lambda: CosineVP(t_max=1.0), ValueError, r"t_max must lie in \(0, 1\)"),
    ("DiscreteVP nan betas", lambda: DiscreteVP([0.1, NAN]), ValueError, r"betas must be finite .* betas\[1\]=nan"),
    ("DiscreteVP beta one", lambda: DiscreteVP([0.1, 1.0]), ValueError, r"betas\[1\]=1.0"),
    ("DiscreteVP.linear T float", lambda: DiscreteVP.linear(T=100.5), TypeError, r"T must be an integer"),
    ("DiscreteVP.cosine T small", lambda: DiscreteVP.cosine(T=1), ValueError, r"T must be an integer >= 2"),
    # models, methods, tableaus
    ("as_eps prediction", lambda: as_eps(model, VP, "noise"), ValueError, r"prediction must be one of"),
    ("get_method unknown", lambda: get_method("pndm"), ValueError, r"unknown method 'pndm'; known methods"),
    ("get_method type", lambda: get_method(3), ValueError, r"unknown method 3"),
    ("ButcherTableau shape", lambda: ButcherTableau([[0, 0], [1, 0]], [0.5], [0, 1]), ValueError, r"\bb\b"),
    ("ButcherTableau implicit", lambda: ButcherTableau([[0, 1], [1, 0]], [0.5, 0.5], [0, 1]), ValueError, r"a\[0\]\[1\]"),
    ("ButcherTableau nan", lambda: ButcherTableau([[0, 0], [NAN, 0]], [0.5, 0.5], [0, 1]), ValueError,
     r"a\[1\]\[0\] must be finite"),
    ("ButcherTableau c", lambda: ButcherTableau([[0, 0], [1, 0]], [0.5, 0.5], [0, 0.5]), ValueError, r"c\[1\]"),
    # low-level objects: validated where built or first called
    ("DDIMTransfer schedule", lambda: DDIMTransfer("linear"), TypeError, r"schedule must be a NoiseSchedule"),
    ("LinearTransfer schedule", lambda: LinearTransfer(None), TypeError, r"schedule must be a NoiseSchedule"),
    ("Integrator estimator", lambda: Integrator(None, None), TypeError, r"estimator must be a GradientEstimator"),
    ("Integrator transfer", lambda: Integrator(Single(), "phi"), TypeError, r"transfer must be a Transfer"),
    ("RungeKutta tableau", lambda: RungeKutta("rk4"), TypeError, r"tableau must be a ButcherTableau"),
    ("LinearMultistep order", lambda: LinearMultistep(0), ValueError, r"order must be an integer in 1..8"),
    ("solve x int", lambda: ddim().solve(model, np.ones(2, dtype=np.int64), [1.0, 0.5]), TypeError,
     r"x must have a floating dtype, got int64"),
    ("solve x list", lambda: ddim().solve(model, [1.0, 2.0], [1.0, 0.5]), TypeError, r"x must be a numpy.ndarray"),
    ("solve grid outside", lambda: ddim().solve(model, X, [1.5, 0.5]), ValueError, r"grid\[0\]=1.5 lies outside"),
    ("solve grid increasing", lambda: ddim().solve(model, X, [0.5, 0.7]), ValueError, r"grid must be strictly decreasing"),
    ("solve grid kind name", lambda: ddim().solve(model, X, "uniform"), TypeError, r"grid must be a sequence of times"),
    ("solve model", lambda: ddim().solve(3, X, [1.0, 0.5]), TypeError, r"model must be callable"),
    pytest.param("as_eps model None", lambda: as_eps(None, VP, "v"), TypeError, r"model must be callable"),
    pytest.param("as_eps schedule None", lambda: as_eps(model, None, "v"), TypeError,
                 r"schedule must be a NoiseSchedule"),
    pytest.param("solve check_finite", lambda: ddim().solve(model, X, [1.0, 0.5], check_finite="yes"), TypeError,
                 r"check_finite must be True or False"),
    pytest.param("LinearMultistep order bool", lambda: LinearMultistep(True), TypeError,
                 r"order must be an integer, got bool"),
    # resuming a run: the run carries its sample, grid and options
    ("solve run with x and grid", lambda: ddim().solve(model, X, [1.0, 0.5], run=_started()), TypeError,
     r"solve\(run=...\) resumes the run from its own sample and grid; do not pass x and grid as well"),
    ("solve run prediction", lambda: ddim().solve(model, run=_started(), prediction="x0"), ValueError,
     r"prediction='x0' contradicts the run, which was started with prediction='eps'"),
    ("solve run check_finite", lambda: ddim().solve(model, run=_started(), check_finite=True), ValueError,
     r"check_finite=True contradicts the run"),
    ("solve run not a run", lambda: ddim().solve(model, run="not a run"), TypeError, r"run must be a Run"),
    ("solve run of another table", lambda: _ddim_on(DiscreteVP(np.linspace(1e-4, 0.04, 1000))).solve(
        model, run=_started(_ddim_on(DiscreteVP(np.linspace(1e-4, 0.02, 1000))), [999.0, 500.0, -1.0])),
     ValueError, r"run was started by a different integrator"),
    ("solve in-place model", lambda: ddim().solve(lambda x, t: x.__imul__(0.1), X.copy(), [1.0, 0.5]), ValueError,
     r"model raised a read-only error at t=1.0 .*if the model wrote into x, return a new array"),
    ("start estimator_state str", lambda: get_method("ipndm").build(VP).start(X, [1.0, 0.5, 0.1],
                                                                              estimator_state="abc"),
     ValueError, r"estimator_state is not a state of LinearMultistep"),
    ("start estimator_state of another method", lambda: get_method("f-pndm").build(VP).start(
        X, [1.0, 0.5, 0.1], estimator_state=()), ValueError, r"estimator_state is not a state of Warmup"),
    ("dry_run prediction", lambda: get_method("pie").build(D).dry_run([999.0, 0.0], prediction="sample"),
     ValueError, r"prediction must be one of \('eps', 'x0', 'v', 'score', 'flow'\), got 'sample'"),
    ("dry_run prediction of another family", lambda: get_method("pie").build(FlowMatching()).dry_run([0.9, 0.0],
                                                                                                   "v"),
     ValueError, r"prediction='v' is not defined for FlowMatching"),
    ("dry_run x0 at abar 1", lambda: get_method("pie").build(D).dry_run([999.0, 0.0, -1.0], "x0"), ValueError,
     r"prediction='x0': 'pie' evaluates at t=-1, where a model predicting 'x0' gives no eps"),
    ("dry_run eps from alpha 0", lambda: get_method("ddim").build(FlowMatching(t_max=1.0)).dry_run(
        [1.0, 0.5, 0.0]), ValueError, r"a dry run of 'ddim' with prediction='eps' cannot convert its output at t=1 "),
    ("dry_run eps-gradient method from alpha 0", lambda: get_method("ipndm").build(FlowMatching(t_max=1.0)).dry_run(
        [1.0, 0.5, 0.0], "flow"), ValueError, r"the DDIM transfer \(an eps gradient\) cannot start at t=1.0"),
    ("dry_run grid", lambda: get_method("pie").build(D).dry_run([0.0, 999.0]), ValueError,
     r"grid must be strictly decreasing"),
    # schedules given as functions, and maps outside their domain
    ("CustomSchedule scalar functions", lambda: CustomSchedule(lambda t: 1.0, lambda t: 0.5, 0.0, 1.0), ValueError,
     r"s = sigma / alpha must increase strictly"),
    ("CustomSchedule fixed-shape alpha", lambda: CustomSchedule(lambda t: np.ones(3), lambda t: np.linspace(
        0.1, 1, 3), 0.0, 1.0), ValueError, r"alpha must return an array shaped like its argument t"),
    ("CustomSchedule wrong dalpha", lambda: CustomSchedule(lambda t: 1 - 0.5 * t, lambda t: t, 0.0, 1.0,
                                                           dalpha=lambda t: 0.5 + 0 * t), ValueError,
     r"dalpha is not the derivative of alpha: dalpha\(0.001\) = 0.5"),
    ("CustomSchedule complex alpha", lambda: CustomSchedule(lambda t: np.cos(t) + 0j, np.sin, 0.0, 1.5), ValueError,
     r"alpha must return real values"),
    ("FlowMatching shift_time above 1", lambda: FlowMatching(shift=3.0).shift_time(1.5), ValueError,
     r"t=1.5 lies outside \[0, 1\], the domain of the flow-matching time shift"),
    ("FlowMatching unshift_time below 0", lambda: FlowMatching(shift=3.0).unshift_time(-0.5), ValueError,
     r"t=-0.5 lies outside \[0, 1\]"),
    # GaussianMixture.fit: the data and every option named
    ("fit data nan", lambda: GaussianMixture.fit(_with(D2, (3, 1), NAN), 2), ValueError,
     r"data must be finite; 1 entries are NaN or infinite, the first at index \(3, 1\)"),
    ("fit data inf", lambda: GaussianMixture.fit(_with(D2, (3, 1), INF), 2), ValueError, r"data must be finite"),
    ("fit data strings", lambda: GaussianMixture.fit([["a", "b"], ["c", "d"]], 1), ValueError,
     r"data must be an array of real numbers"),
    ("fit data complex", lambda: GaussianMixture.fit(np.ones((5, 2)) + 1j, 1), ValueError, r"data must be real"),
    ("fit data huge", lambda: GaussianMixture.fit(D2 * 1e200, 2), ValueError, r"data has entries up to .*rescale"),
    ("fit data one point", lambda: GaussianMixture.fit(np.ones((50, 2)), 2), ValueError,
     r"data has 1 distinct point\(s\), fewer than n_components=2"),
    ("fit n_components bool", lambda: GaussianMixture.fit(D2, True), TypeError, r"n_components must be an integer"),
    ("fit reg_covar bool", lambda: GaussianMixture.fit(D2, 2, reg_covar=True), TypeError,
     r"reg_covar must be a real number"),
    ("fit seed negative", lambda: GaussianMixture.fit(D2, 2, seed=-1), ValueError, r"seed must be an integer >= 0"),
    ("fit seed string", lambda: GaussianMixture.fit(D2, 2, seed="a"), TypeError, r"seed must be an integer"),
    ("fit max_iter zero", lambda: GaussianMixture.fit(D2, 2, max_iter=0), ValueError,
     r"max_iter must be an integer >= 1"),
]


@pytest.mark.parametrize(("name", "call", "error", "message"), CASES, ids=[
    c.values[0] if hasattr(c, "values") else c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(name, call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert "\n" not in str(info.value) and len(str(info.value)) < 400, str(info.value)  # one readable line


def test_the_table_covers_the_api_broadly():
    """At least 40 cases, and every public entry point of the API has some."""
    names = [c.values[0] if hasattr(c, "values") else c[0] for c in CASES]
    assert len(names) >= 40 and len(set(names)) == len(names)
    for prefix in ("sample", "make_grid", "check_grid", "LinearVP", "CosineVP", "DiscreteVP", "as_eps",
                   "get_method", "ButcherTableau", "Integrator", "solve", "DDIMTransfer"):
        assert any(n.startswith(prefix) for n in names), prefix


@pytest.mark.parametrize("call", [
    lambda: sample(model, X, schedule=VP, method="ddim", steps=np.int64(4)),
    lambda: make_grid(D, np.int32(4), offset=np.int64(1)),
    lambda: DiscreteVP.linear(T=np.int64(50)),
    lambda: LinearMultistep(np.int64(2)),
])
def test_numpy_integers_are_integers(call):
    call()


def test_ask_hands_out_a_read_only_view_and_the_run_stays_immutable():
    run = get_method("ipndm").build(VP).start(X.copy(), [1.0, 0.5, 0.1])
    x, t = run.ask()
    with pytest.raises(ValueError, match="read-only"):
        x += 1.0
    assert np.array_equal(run.x, X) and np.shares_memory(x, run.x)  # a view: no copy was made


def test_a_tensor_written_in_place_or_an_output_on_another_device_is_refused():
    torch = pytest.importorskip("torch")
    integrator = get_method("ipndm").build(VP)
    x_T = torch.ones(4, 3)
    run = integrator.start(x_T, [1.0, 0.5, 0.1])
    with pytest.raises(ValueError, match="model output is on device meta, x on cpu, at t=1.0"):
        run.tell(torch.zeros(4, 3, device="meta"))
    x, t = run.ask()
    x.mul_(0.1)  # a model that scales its input in place
    with pytest.raises(RuntimeError, match="the x that ask\\(\\) handed out for t=1.0 was modified in place"):
        run.tell(torch.zeros(4, 3))


def test_a_copied_run_keeps_the_in_place_check_without_false_alarms():
    """A deep copy or a pickle of a run holds fresh tensors whose version counters restart (diffusers' panorama
    pipeline deep-copies the scheduler, run included, per view): the copy is told normally, and an in-place write
    into what the copy hands out is still refused."""
    import copy
    import pickle

    torch = pytest.importorskip("torch")
    integrator = get_method("ipndm").build(VP)
    run = integrator.start(torch.ones(4, 3), [1.0, 0.5, 0.2, 0.1])
    for _ in range(2):  # the requested x now comes from the method's own arithmetic (version counter > 0)
        run = run.tell(0.1 * run.ask()[0])
    reference = run.tell(0.1 * run.ask()[0]).x
    for clone in (copy.deepcopy(run), pickle.loads(pickle.dumps(run))):
        assert torch.equal(clone.tell(0.1 * clone.ask()[0]).x, reference)
        clone.ask()[0].mul_(0.1)
        with pytest.raises(RuntimeError, match="was modified in place"):
            clone.tell(torch.zeros(4, 3))


def test_an_em_fit_that_has_not_converged_warns_with_max_iter():
    pytest.importorskip("sklearn")
    from pndmkit.problems.gaussian_mixture import FitWarning

    with pytest.warns(FitWarning, match=r"EM did not converge in max_iter=1 iterations .*raise max_iter"):
        GaussianMixture.fit(D2, 2, max_iter=1)


def test_runs_work_under_inference_mode_where_tensors_keep_no_version_counter():
    torch = pytest.importorskip("torch")
    with torch.inference_mode():
        sol = sample(lambda x, t: 0.1 * x, torch.ones(4, 3), schedule=VP, method="ipndm", steps=4)
    ref = sample(lambda x, t: 0.1 * x, torch.ones(4, 3), schedule=VP, method="ipndm", steps=4)
    assert torch.equal(sol.x, ref.x)


@pytest.mark.parametrize("method, steps", [("pec-s", 20), ("pie", 20), ("prk", 20), ("rk4", 20), ("pec-s-ramp", 20),
                                           ("pece-s", 20), ("f-pndm", 3)])
def test_an_x0_model_is_refused_before_any_call_where_the_method_evaluates_at_sigma_zero(method, steps):
    calls = []

    def model(x, t):
        calls.append(t)
        return 0.5 * x

    with pytest.raises(ValueError) as err:
        sample(model, np.ones(3), schedule=DiscreteVP.linear(), method=method, steps=steps, prediction="x0")
    assert calls == []  # refused from the planned evaluation times, not at the last one
    text = str(err.value)
    for part in (f"method={method!r}", "prediction='x0'", "t=-1", "grid ends at t=-1", "diffusers-pndm", "ipndm"):
        assert part in text, (part, text)
    # the advice works: ending the grid at t = 0 runs the same method on every evaluation
    sol = sample(model, np.ones(3), schedule=DiscreteVP.linear(), method=method, steps=steps, prediction="x0",
                 convention="diffusers-pndm")
    assert sol.nfe == len(calls) == get_method(method).build(DiscreteVP.linear()).nfe(sol.times)


@pytest.mark.parametrize("method", ["ipndm", "plms", "ddim"])
def test_methods_that_do_not_evaluate_at_the_end_run_an_x0_model_to_t_minus_one(method):
    sol = sample(lambda x, t: 0.5 * x, np.ones(3), schedule=DiscreteVP.linear(), method=method, steps=20,
                 prediction="x0")
    assert sol.times[-1] == -1.0 and np.all(np.isfinite(sol.x))


def test_evaluation_times_are_the_times_a_run_asks_for():
    sched = DiscreteVP.linear()
    integrator = get_method("pie").build(sched)
    grid = make_grid(sched, 5)
    asked = []
    integrator.solve(lambda x, t: asked.append(t) or 0.1 * x, np.ones(2), grid)
    assert integrator.evaluation_times(grid) == asked and integrator.nfe(5) == len(asked)


@pytest.mark.filterwarnings("ignore::pndmkit.stability.StabilityWarning")
@pytest.mark.parametrize("schedule, method, grid, prediction", [
    (D, "pie", [999.0, 600.0, 250.0, 0.0], "x0"),  # an x0 walk would divide by sigma = 0 only at abar = 1
    (D, "f-pndm", [999.0, 800.0, 600.0, 400.0, 200.0, 0.0, -1.0], "eps"),  # 3 Runge-Kutta steps, then AB4
    (D, "prk", [999.0, 500.0, -1.0], "v"),
    (FlowMatching(t_max=1.0), "dpm-solver++-2m", [1.0, 0.75, 0.5, 0.25, 0.0], "flow"),  # from alpha = 0
])
def test_dry_run_lists_the_evaluations_and_step_starts_a_run_asks_for(schedule, method, grid, prediction):
    """The dry run's times and step starts are those of a real run told outputs of that prediction."""
    integrator = get_method(method).build(schedule)
    run = integrator.start(np.ones(2), grid, prediction=prediction)
    times, starts = [], []
    while not run.done:
        t = run.ask()[1]
        if not run.told and t == run.t:
            starts.append((len(times), run.index))
        times.append(t)
        run = run.tell(0.1 * run.ask()[0])
    walk = integrator.dry_run(grid, prediction)
    assert walk.times == tuple(times) and walk.starts == tuple(starts) and len(times) == run.nfe
    if prediction != "flow":
        assert integrator.evaluation_times(grid) == list(walk.times)
    else:  # an eps walk cannot leave alpha = 0: the flow walk is the one that runs
        with pytest.raises(ValueError, match=r"with prediction='eps' cannot convert its output at t=1 "):
            integrator.evaluation_times(grid)
    assert [j for _, j in walk.starts][:2] == [0, 1]  # every method here evaluates at the start of each step


def test_dry_run_walks_each_grid_once_for_every_prediction(monkeypatch):
    """An x0 or v dry run reuses the eps walk of the same grid (their evaluations are the same): one walk."""
    import pndmkit.integrator as integrator_module

    walks = []
    real = integrator_module._walk
    monkeypatch.setattr(integrator_module, "_walk", lambda *a: walks.append(a[2]) or real(*a))
    integrator_module._cached_walk.cache_clear()
    pie = get_method("pie").build(D)
    grid = [999.0, 700.0, 300.0, 0.0]
    assert pie.dry_run(grid, "x0") == pie.dry_run(grid, "v") == pie.dry_run(grid) == pie.dry_run(grid, "eps")
    assert walks == ["eps"]



@pytest.mark.parametrize("method", ["ddim", "ipndm", "pf"])
def test_a_0d_tensor_start_runs_as_a_one_entry_start(method):
    """torch keeps a 0-d tensor 0-d through arithmetic, so a 0-d start is a sampler state like any other (a
    0-d numpy start is refused above: numpy turns it into a scalar); the adaptive solver kept a 0-d tensor 1-d."""
    torch = pytest.importorskip("torch")
    zero_d = sample(model, torch.tensor(1.0, dtype=torch.float64), schedule=VP, method=method, steps=10)
    one = sample(model, torch.tensor([1.0], dtype=torch.float64), schedule=VP, method=method, steps=10)
    assert zero_d.x.shape == () and float(zero_d.x) == float(one.x[0]) and zero_d.nfe == one.nfe


def test_a_built_method_runs_only_on_its_own_schedule():
    """sample lays the grid out on schedule= and steps with the integrator's own schedule: on two schedules it
    took cosine grid times with linear alphas (84.5 off the named method, without a word). It now refuses
    that, naming both, as the diffusers scheduler does, and runs an equal schedule built separately exactly as
    the named method."""
    from pndmkit.schedules import same_schedule

    lin, cos = DiscreteVP.linear(), DiscreteVP.cosine()
    x = np.random.default_rng(0).standard_normal((4, 4))
    with pytest.raises(ValueError, match=r"^method is an Integrator built on DiscreteVP.linear\(T=1000\), but "
                                         r"schedule=DiscreteVP.cosine\(T=1000\): the grid would be laid out on "
                                         r"schedule= and the steps taken with the Integrator's own schedule"):
        sample(model, x, schedule=cos, method=_ddim_on(lin), steps=10)
    with pytest.raises(ValueError, match=r"^method is an AdaptiveIntegrator built on DiscreteVP.linear"):
        sample(model, x, schedule=cos, method=get_method("pf").build(lin))
    ours = sample(model, x, schedule=DiscreteVP.linear(), method=_ddim_on(lin), steps=10)
    named = sample(model, x, schedule=lin, method="ddim", steps=10)
    assert np.array_equal(ours.x, named.x) and ours.times.tolist() == named.times.tolist()
    # what counts as the same: the process, not the object or the grid settings
    assert same_schedule(DiscreteVP.linear(), DiscreteVP.linear())
    assert same_schedule(FlowMatching(shift=3.0), FlowMatching()) and same_schedule(LinearVP(t_end=1e-5), VP)
    assert not same_schedule(DiscreteVP(D.betas * 1.01), DiscreteVP(D.betas))  # other tables
    assert repr(DiscreteVP(D.betas * 1.01)) != repr(DiscreteVP(D.betas))  # and they print apart (their betas' hash)
    cos_sin = (np.cos, np.sin)
    assert same_schedule(CustomSchedule(*cos_sin, 0.0, 1.5), CustomSchedule(*cos_sin, 0.0, 1.5))
    assert not same_schedule(CustomSchedule(np.cos, np.sin, 0.0, 1.5),
                             CustomSchedule(np.cos, lambda t: 2 * np.sin(t), 0.0, 1.5))
    assert not same_schedule(VP, CosineVP()) and not same_schedule(D, LinearVP())


def test_the_checks_of_pndmkit_testing_take_an_equal_schedule_built_separately():
    """pndmkit.testing compared schedules by identity: an integrator on DiscreteVP.linear() was refused on another
    DiscreteVP.linear(). It compares as sample does now, and still refuses another schedule."""
    from pndmkit.testing import check_nfe

    check_nfe(_ddim_on(DiscreteVP.linear()), steps=(2, 3), schedule=DiscreteVP.linear())
    with pytest.raises(ValueError, match=r"was built for DiscreteVP.linear\(T=1000\), not for "
                                         r"schedule=DiscreteVP.cosine\(T=1000\)"):
        check_nfe(_ddim_on(DiscreteVP.linear()), steps=(2,), schedule=DiscreteVP.cosine())


def test_a_converting_wrapper_on_another_table_of_the_same_length_is_refused():
    """A wrapper's schedule was compared by type and repr, which every custom DDPM table of one length shared (the
    message named 'DiscreteVP(T=1000)' twice); now the tables differ and so do their reprs (their betas' hash)."""
    mine, other = DiscreteVP(D.betas * 1.01), DiscreteVP(D.betas)
    assert repr(mine) != repr(other) and repr(mine).startswith("DiscreteVP(betas=<sha256:")
    wrapped = as_eps(lambda x, t: 0 * x, mine, "x0")
    with pytest.raises(ValueError, match=re.escape(f"converts its network's 'x0' prediction to eps with {mine!r}, "
                                                   f"but it is sampled on schedule={other!r}")):
        sample(wrapped, X, schedule=other, method="ddim", steps=5)
    sample(wrapped, X, schedule=DiscreteVP(D.betas * 1.01), method="ddim", steps=5)  # equal, built separately
