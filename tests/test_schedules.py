"""Schedules: closed forms, exact agreement with DDPM tables, inverse maps, smoothness of the extension."""

import math
import re

import numpy as np
import pytest
from scipy.interpolate import CubicSpline
from hypothesis import example, given
from hypothesis import strategies as st

import pndmkit
from pndmkit.schedules import EDM, VE, CosineVP, CustomSchedule, DiscreteVP, FlowMatching, LinearVP, get_schedule
from pndmkit.schedules import SCHEDULES as CATALOGUE
from pndmkit.testing.strategies import schedules

SCHEDULES = [LinearVP(), CosineVP(), DiscreteVP.linear(), DiscreteVP.quad(), DiscreteVP.cosine()]
FAMILIES = [EDM(), EDM(sigma_min=0.01, sigma_max=20.0), VE(), FlowMatching(), FlowMatching(shift=3.0),
            CustomSchedule(np.cos, np.sin, 0.0, 1.5)]


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


@given(sched=schedules(), u=st.floats(0.001, 0.999))
def test_inverse_maps_round_trip(sched, u):
    t = sched.t_min + u * (sched.t_max - sched.t_min)
    scale = max(1.0, abs(sched.t_max))
    assert sched.t_from_s(sched.s(t)) == pytest.approx(t, abs=1e-9 * scale)
    assert sched.t_from_lambda(sched.lam(t)) == pytest.approx(t, abs=1e-9 * scale)
    assert sched.lam(t) == pytest.approx(-math.log(sched.sigma(t) / sched.alpha(t)), rel=1e-12, abs=1e-12)
    if sched.family == "vp":
        assert sched.t_from_abar(sched.abar(t)) == pytest.approx(t, abs=1e-9 * scale)


@example(s0=0.01062)
@example(s0=0.015)
@given(s0=st.floats(0.0, 0.02))
def test_cosine_vp_starts_exactly_at_abar_one(s0):
    """log abar(0) is a difference of two logarithms of the same number, computed by numpy and by math: it is
    clipped at 0, so that s(0) = 0 and not NaN (s0 = 0.01062 gave log abar(0) = 5e-20)."""
    sched = CosineVP(s0=s0)
    assert sched.abar(0.0) == 1.0 and sched.s(0.0) == 0.0 and sched.lam(0.0) == math.inf


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


@pytest.mark.parametrize("T", [10, 50, 100])
def test_short_fast_growing_tables_get_a_monotone_extension(T):
    # the C2 spline through linear(T <= 100) overshoots above log abar = 0 near t = -1 (abar > 1, sigma NaN)
    d = DiscreteVP.linear(T)
    spline = CubicSpline(np.arange(-1.0, T), np.log(np.r_[1.0, d.alphas_cumprod]))
    t = np.linspace(-1.0, T - 1.0, 200 * T + 1)
    assert spline(t).max() > 0
    assert d.extension == "pchip"
    log_abar = d.log_abar(t)
    assert log_abar.max() == 0.0 and np.all(np.diff(log_abar) <= 0)
    assert np.all(np.isfinite(d.sigma(t))) and np.all(d.dlog_abar(t) <= 0)
    np.testing.assert_array_equal(d.abar(np.arange(-1.0, T)), np.r_[1.0, d.alphas_cumprod])
    for u in (-0.5, 0.37, T / 2 + 0.25):
        assert d.t_from_log_abar(d.log_abar(u)) == pytest.approx(u, abs=1e-10)


def test_tables_whose_spline_decreases_keep_the_c2_spline():
    assert [DiscreteVP.linear(T).extension for T in (200, 1000)] == ["cubic", "cubic"]
    assert {getattr(DiscreteVP, k)(50).extension for k in ("quad", "cosine")} == {"cubic"}


@pytest.mark.parametrize("t, message", [
    (2000.0, r"t=2000.0 lies outside the domain \[-1.0, 999.0\] of DiscreteVP.linear\(T=1000\)"),
    (999.5, r"t=999.5 lies outside the domain"), (-1.5, r"t=-1.5 lies outside the domain"),
    (-2, r"t=-2.0 lies outside the domain"), (float("nan"), r"t=nan must be finite"),
    (np.array(float("nan")), r"t=nan must be finite"),
    (np.array([500.5, 1e4]), r"t\[1\]=10000.0 lies outside the domain"),
    (np.array([3.0, float("nan")]), r"t\[1\]=nan must be finite"),
])
@pytest.mark.parametrize("fn", ["alpha", "sigma", "abar", "log_abar", "dlog_abar", "s"])
def test_a_discrete_schedule_refuses_times_outside_its_table(fn, t, message):
    """alpha(2000) once extrapolated the spline silently and alpha(nan) returned nan."""
    with pytest.raises(ValueError, match=message):
        getattr(DiscreteVP.linear(), fn)(t)


def test_a_discrete_schedule_keeps_its_ends_and_check_time_s_rounding():
    d = DiscreteVP.linear()
    assert d.alpha(-1) == 1.0 and d.abar(999) == d.alphas_cumprod[-1] and d.alpha(-1.0 - 1e-8) == pytest.approx(1.0)
    np.testing.assert_array_equal(d.abar(np.array([-1.0, 0.0, 999.0])), [1.0, *d.alphas_cumprod[[0, -1]]])
    assert d.dlog_abar(999.0 + 1e-7) == pytest.approx(d.dlog_abar(999.0))
    assert d.dlog_abar(500.5) == float(d.dlog_abar(np.array([500.5]))[0])


def _catalogue_and_custom():
    named = [(name, get_schedule(name)) for name in CATALOGUE]
    return named + [("custom", CustomSchedule(np.cos, np.sin, 0.0, 1.5))]


def _functions_of_t(sched):
    names = ["alpha", "sigma", "dalpha", "dsigma", "s", "lam", "scale"]
    return names + (["abar", "log_abar", "dlog_abar", "dabar"] if sched.family == "vp" else [])


@pytest.mark.parametrize("key, sched", _catalogue_and_custom(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_schedule_function_refuses_a_time_outside_the_domain(key, sched):
    """FlowMatching().alpha(1.5) gave -0.5 and LinearVP().alpha(2.0) an abar past the schedule's end: the closed
    forms extrapolated silently, where DiscreteVP's table refused. Each function now names t, its value and the
    domain, for a float, a 0-d array, an array (the first bad entry) and NaN."""
    lo, hi = sched.t_min, sched.t_max
    span = hi - lo
    domain = re.escape(f"[{lo}, {hi}] of {sched!r}")
    above, below = hi + 0.5 * span, lo - 0.25 * span
    cases = [(above, rf"^t={re.escape(repr(above))} lies outside the domain {domain}$"),
             (below, rf"^t={re.escape(repr(below))} lies outside the domain {domain}$"),
             (np.array(above), rf"^t={re.escape(repr(above))} lies outside the domain"),
             (np.array([lo, 0.5 * (lo + hi), above]), rf"^t\[2\]={re.escape(repr(above))} lies outside the domain"),
             (float("nan"), r"^t=nan must be finite$"),
             (np.array([hi, float("nan")]), r"^t\[1\]=nan must be finite$")]
    for fn in _functions_of_t(sched):
        for t, message in cases:
            with pytest.raises(ValueError, match=message):
                getattr(sched, fn)(t)


@pytest.mark.parametrize("key, sched", _catalogue_and_custom(), ids=lambda v: v if isinstance(v, str) else "")
def test_schedule_functions_keep_the_domain_ends_and_check_time_s_rounding(key, sched):
    """A time past an end by less than check_time's tolerance (grid arithmetic) is evaluated, not refused:
    the refusal is for extrapolation, not rounding; inside the domain an array gives the floats' values."""
    lo, hi = sched.t_min, sched.t_max
    tol = 0.5e-9 * max(1.0, abs(hi))
    with np.errstate(divide="ignore", invalid="ignore"):
        for fn in _functions_of_t(sched):
            f = getattr(sched, fn)
            f(lo - tol), f(hi + tol), f(np.array([lo - tol, hi + tol]))  # no refusal
            inside = np.linspace(lo, hi, 7)
            np.testing.assert_array_equal(f(inside), [float(f(float(t))) for t in inside])
        for end, nudged in ((lo, lo - tol), (hi, hi + tol)):
            assert sched.alpha(nudged) == pytest.approx(sched.alpha(end), rel=1e-6, abs=1e-9)


def test_flow_matching_refuses_t_beyond_its_t_max_and_keeps_t_one_where_t_max_is_one():
    with pytest.raises(ValueError, match=r"^t=1.0 lies outside the domain \[0.0, 0.999\] of FlowMatching"):
        FlowMatching().alpha(1.0)
    one = FlowMatching(t_max=1.0)
    assert one.alpha(1.0) == 0.0 and one.sigma(1.0) == 1.0 and one.s(1.0) == math.inf


@pytest.mark.parametrize("method", ["rk4", "prk"])
def test_runge_kutta_stages_strictly_between_minus_one_and_zero_are_evaluated_finite_on_a_short_table(method):
    # rk4 and prk put a half-step stage at t = -0.5 on the last step of a short DiscreteVP table (which ends at
    # t_min = -1); with the C2 spline that raised "math domain error". The multistep methods (pec-s, pece-s,
    # ipndm) evaluate no time strictly inside (-1, 0) on this grid, so they cannot exercise it.
    d = DiscreteVP.linear(50)
    times = []

    def model(x, t):
        times.append(float(t))
        return 0.1 * x

    out = pndmkit.sample(model, np.ones((2, 3)), schedule=d, method=method, steps=10)
    inside = [t for t in times if -1.0 < t < 0.0]
    assert inside, f"{method} evaluated no time strictly inside (-1, 0): {sorted(set(times))}"
    assert np.all(np.isfinite(out.x)) and min(times) >= -1.0
    assert np.all(np.isfinite(d.s(np.array(inside)))) and np.all(np.isfinite(d.alpha(np.array(inside))))


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


# -- every family as (alpha, sigma) ------------------------------------------------------------------------

def test_vp_alpha_sigma_are_the_abar_description():
    for sched in SCHEDULES:
        t = np.linspace(sched.t_min, sched.t_max, 41)
        np.testing.assert_allclose(sched.alpha(t) ** 2, sched.abar(t), rtol=3e-15)
        np.testing.assert_allclose(sched.sigma(t) ** 2, 1 - sched.abar(t), rtol=1e-12, atol=1e-16)
        np.testing.assert_array_equal(sched.scale(t), 1.0)


def test_closed_forms_of_edm_ve_and_flow_matching():
    t = np.linspace(0.0, 0.99, 12)
    fm = FlowMatching(t_max=0.99)
    np.testing.assert_array_equal(fm.alpha(t), 1 - t)
    np.testing.assert_array_equal(fm.sigma(t), t)
    np.testing.assert_allclose(fm.s(t), t / (1 - t), rtol=1e-15)
    edm = EDM()
    np.testing.assert_array_equal(edm.s(80 * t), 80 * t)
    np.testing.assert_array_equal(edm.alpha(80 * t), 1.0)
    ve = VE()
    np.testing.assert_allclose(ve.sigma(t), 0.01 * 5000.0**t, rtol=1e-13)
    assert FlowMatching(shift=3.0).shift_time(0.5) == 0.75 and FlowMatching(shift=3.0).sigma(0.5) == 0.5


@pytest.mark.parametrize("sched", FAMILIES, ids=repr)
def test_derivatives_against_central_differences(sched):
    h = 1e-6 * (sched.t_max - sched.t_min)
    t = np.linspace(sched.t_min + 2 * h, sched.t_max - 2 * h, 17)
    for f, df in ((sched.alpha, sched.dalpha), (sched.sigma, sched.dsigma)):
        np.testing.assert_allclose(df(t), (f(t + h) - f(t - h)) / (2 * h), rtol=1e-6, atol=1e-8)
    assert np.all(np.diff(sched.s(t)) > 0)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: FlowMatching(shift=0.0), r"shift must be > 0, got 0.0"),
    (lambda: FlowMatching(shift=-2), r"shift must be > 0, got -2"),
    (lambda: FlowMatching(t_max=1.5), r"t_max must lie in \(0, 1\] \(alpha = 1 - t must not be negative\), got 1.5"),
    (lambda: EDM(sigma_min=0.0), r"sigma_min must be > 0, got 0.0"),
    (lambda: EDM(sigma_max=0.001), r"sigma_max must be > sigma_min=0.002, got sigma_max=0.001"),
    (lambda: VE(sigma_min=-1.0), r"sigma_min must be > 0"),
    (lambda: CustomSchedule(lambda t: 1 - t, lambda t: t, 0.0, 1.0), r"alpha must be > 0 on .*; alpha\(1.0\) = 0.0"),
    (lambda: CustomSchedule(lambda t: 1 + 0 * t, lambda t: t - 0.5, 0.0, 1.0), r"sigma must be > 0 on .*sigma\(0.0\)"),
    (lambda: CustomSchedule(lambda t: 1 + 0 * t, lambda t: 1.5 + np.sin(6 * t), 0.0, 1.0),
     r"s = sigma / alpha must increase strictly in t on \[t_min, t_max\] = \[0.0, 1.0\]; s\(0.26"),
    (lambda: CustomSchedule("cos", np.sin, 0.0, 1.0), r"alpha must be a function of t"),
])
def test_bad_schedules_are_refused_naming_the_parameter(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()


def test_abar_is_refused_off_vp_schedules():
    with pytest.raises(ValueError, match=r"abar is the signal level alpha\^2 of variance-preserving schedules; "
                                         r"EDM\(.*\) is a 've' schedule"):
        EDM().abar(1.0)
    with pytest.raises(ValueError, match=r"s must be >= 0"):
        FlowMatching().t_from_s(-1.0)


def test_default_schedules_print_as_before():
    """The default schedules' repr (and key) is unchanged: caches written under it (the shipped digits references,
    keyed by 'DiscreteVP.linear(T=1000)') are still found."""
    from pndmkit.schedules import schedule_key

    expected = {"linear-vp": "LinearVP(beta_min=0.1, beta_max=20.0)", "cosine-vp": "CosineVP(s0=0.008, t_max=0.9946)",
                "ddpm-linear": "DiscreteVP.linear(T=1000)", "ddpm-quad": "DiscreteVP.quad(T=1000)",
                "ddpm-cosine": "DiscreteVP.cosine(T=1000)", "edm": "EDM(sigma_min=0.002, sigma_max=80.0)",
                "ve": "VE(sigma_min=0.01, sigma_max=50.0)", "flow": "FlowMatching(shift=1.0, t_max=0.999)"}
    assert set(expected) == set(CATALOGUE)
    for name, text in expected.items():
        assert repr(get_schedule(name)) == schedule_key(get_schedule(name)) == text
    assert repr(DiscreteVP.linear(T=500)) == "DiscreteVP.linear(T=500)"
    assert repr(DiscreteVP.linear(beta_start=1e-4, beta_end=0.02)) == "DiscreteVP.linear(T=1000)"  # the defaults


TABLES = [DiscreteVP.linear(), DiscreteVP.linear(beta_start=0.00085, beta_end=0.012), DiscreteVP.linear(beta_end=0.03),
          DiscreteVP.linear(T=500), DiscreteVP.quad(), DiscreteVP.quad(beta_start=0.00085, beta_end=0.012),
          DiscreteVP.quad(beta_start=0.00015, beta_end=0.0195), DiscreteVP.cosine(), DiscreteVP.cosine(s0=0.02),
          DiscreteVP.cosine(max_beta=0.5)]


def test_every_discrete_table_prints_apart_and_its_repr_rebuilds_it():
    """repr once left beta_start/beta_end (and cosine's s0) out, so Stable Diffusion's linear table printed as
    DDPM's, and every custom table of a length printed alike; repr is the table's identity (schedule_key)."""
    from pndmkit.schedules import schedule_from_dict, schedule_key, schedule_to_dict

    assert repr(TABLES[1]) == "DiscreteVP.linear(T=1000, beta_start=0.00085, beta_end=0.012)"
    assert repr(TABLES[6]) == "DiscreteVP.quad(T=1000, beta_start=0.00015, beta_end=0.0195)"
    assert repr(TABLES[8]) == "DiscreteVP.cosine(T=1000, s0=0.02)"
    assert len({repr(t) for t in TABLES}) == len(TABLES) == len({schedule_key(t) for t in TABLES})
    for table in TABLES:
        rebuilt = eval(repr(table), {"DiscreteVP": DiscreteVP})  # the factory call, every argument that matters
        np.testing.assert_array_equal(rebuilt.betas, table.betas)
        back = schedule_from_dict(schedule_to_dict(table))  # the JSON form keeps the identity too
        np.testing.assert_array_equal(back.betas, table.betas)
        if table.name != "cosine":  # a cosine table is stored by its betas
            assert repr(back) == repr(table)


def test_a_table_given_by_its_betas_is_known_by_their_hash():
    import hashlib

    from pndmkit.schedules import same_schedule, schedule_key

    betas = DiscreteVP.linear().betas
    a, b, c = DiscreteVP(betas), DiscreteVP(betas.copy()), DiscreteVP(betas * 1.01)
    digest = hashlib.sha256(betas.astype("<f8").tobytes()).hexdigest()
    assert a.digest == digest and repr(a) == f"DiscreteVP(betas=<sha256:{digest[:16]}>, T=1000)"
    assert schedule_key(a) == schedule_key(b) != schedule_key(c)
    assert same_schedule(a, b) and not same_schedule(a, c)
    # one value changed in its last bit is another table, another key
    d = betas.copy()
    d[500] = np.nextafter(d[500], 1.0)
    assert schedule_key(DiscreteVP(d)) != schedule_key(a)
    # a table called "linear" by hand is not taken for the factory's: its betas say what it is
    assert schedule_key(DiscreteVP(betas * 1.01, name="linear")) == schedule_key(c)

    class Mine(DiscreteVP):  # a class of one's own may compute other things from the same betas: its type is keyed
        pass

    assert schedule_key(Mine(betas)) == f"{Mine.__module__}.{Mine.__qualname__}:{a!r}" != schedule_key(a)


def test_a_custom_schedule_is_known_by_its_function_objects():
    """Functions cannot be compared: the key names each function object by a random token, as same_schedule
    compares them; an equal formula written again is another schedule, and a token is not reused by a new object."""
    import gc

    from pndmkit.schedules import same_schedule, schedule_key

    a, b = CustomSchedule(np.cos, np.sin, 0.0, 1.5), CustomSchedule(np.cos, np.sin, 0.0, 1.5)
    assert schedule_key(a) == schedule_key(b) and same_schedule(a, b)
    assert re.fullmatch(r"CustomSchedule\(alpha=cos@[0-9a-f]{16}, sigma=sin@[0-9a-f]{16}, t_min=0\.0, t_max=1\.5\)",
                        schedule_key(a))
    assert repr(a) == "CustomSchedule(alpha=cos, sigma=sin, t_min=0.0, t_max=1.5)"
    assert schedule_key(CustomSchedule(np.cos, np.sin, 0.0, 1.4)) != schedule_key(a)
    keys = set()
    for _ in range(50):  # new lambdas, often at the address of the last ones, freed: never the same key
        c = CustomSchedule(lambda t: np.cos(t), lambda t: np.sin(t), 0.0, 1.5)
        keys.add(schedule_key(c))
        del c
        gc.collect()
    assert len(keys) == 50 and schedule_key(a) not in keys
    with pytest.raises(TypeError, match="schedule must be a NoiseSchedule, got str"):
        from pndmkit.schedules import schedule_key as key

        key("ddpm-linear")
