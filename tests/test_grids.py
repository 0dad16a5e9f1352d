"""Timestep grids, the index conventions of the peers, and the rules every grid obeys."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pndmkit.grids import GRID_KINDS, GRIDS, check_grid, make_grid
from pndmkit.sampling import sample
from pndmkit.schedules import CosineVP, DiscreteVP, LinearVP

LIN = DiscreteVP.linear()


def test_leading_spacing_of_50_steps_starts_at_980():
    g = make_grid(LIN, 50, "leading")
    assert g[0] == 980 and g[-2] == 0 and g[-1] == -1 and len(g) == 51


def test_diffusers_pndm_convention_grid():
    """steps_offset=1, set_alpha_to_one=False: 981, 961, ..., 1, then abar_0."""
    g = make_grid(LIN, 50, "leading", offset=1, final_alpha="first")
    assert g[0] == 981 and g[-2] == 1 and g[-1] == 0


@pytest.mark.parametrize(("kind", "reached"), [("leading", 0), ("linspace", 0)])
def test_a_zero_length_final_step_is_refused(kind, reached):
    """900..0 then t = 0 again would be a no-op step costing an evaluation: refused, not silently dropped."""
    with pytest.raises(ValueError, match=rf"grid '{kind}' with steps=10 already reaches t={reached}, so its "
                                         r"last step to t=0 \(final_alpha='first'\) would have length zero"):
        make_grid(LIN, 10, kind, final_alpha="first")
    assert len(make_grid(LIN, 10, kind, final_alpha="one")) == 11


def test_trailing_and_linspace_spacings():
    np.testing.assert_array_equal(make_grid(LIN, 4, "trailing"), [999, 749, 499, 249, -1])
    np.testing.assert_array_equal(make_grid(LIN, 4, "linspace"), [999, 666, 333, 0, -1])
    np.testing.assert_array_equal(make_grid(LIN, 4, "trailing", final_alpha="first"), [999, 749, 499, 249, 0])


def test_trailing_matches_the_arange_formula_of_diffusers():
    for steps in (1, 3, 7, 30, 333, 999, 1000):
        ref = np.round(np.arange(1000, 0, -1000 / steps)).astype(np.int64) - 1
        np.testing.assert_array_equal(make_grid(LIN, steps, "trailing")[:-1], ref)


def test_continuous_grids_are_uniform_in_their_variable():
    s = LinearVP()
    np.testing.assert_allclose(np.diff(make_grid(s, 8, "uniform")), -(1 - 1e-3) / 8)
    np.testing.assert_allclose(np.diff(s.lam(make_grid(s, 8, "logsnr"))), (s.lam(1e-3) - s.lam(1.0)) / 8, rtol=1e-9)
    np.testing.assert_allclose(np.diff(s.s(make_grid(s, 8, "s-uniform"))), (s.s(1e-3) - s.s(1.0)) / 8, rtol=1e-9)
    k = s.s(make_grid(s, 8, "karras")) ** (1 / 7)
    np.testing.assert_allclose(np.diff(k), np.diff(k)[0], rtol=1e-9)
    k3 = s.s(make_grid(s, 8, "karras", rho=3.0)) ** (1 / 3)
    np.testing.assert_allclose(np.diff(k3), np.diff(k3)[0], rtol=1e-9)
    q = make_grid(s, 4, "quadratic")
    np.testing.assert_allclose(q, 1e-3 + (1 - 1e-3) * np.array([1, 0.5625, 0.25, 0.0625, 0]))


@pytest.mark.parametrize("kind", [k for k in GRIDS if not GRID_KINDS[k].discrete_only])  # these on any schedule
@pytest.mark.parametrize("sched", [LinearVP(), CosineVP(), LIN], ids=repr)
def test_every_grid_is_decreasing_with_exact_ends(kind, sched):
    g = make_grid(sched, 7, kind, t_start=sched.t_start)
    assert len(g) == 8 and np.all(np.diff(g) < 0)
    assert g[0] == sched.t_start and g[-1] == sched.t_end


@pytest.mark.parametrize("kind", ["logsnr", "karras"])
@pytest.mark.parametrize("steps", [1, 2, 20, 50, 200])
def test_logsnr_and_karras_reach_abar_one_through_the_lowest_level(kind, steps):
    """No wasted steps piled up at s = 0: the last step goes from the first table index to t = -1."""
    g = make_grid(LIN, steps, kind, t_start=999.0)
    assert len(g) == steps + 1 and np.all(np.diff(g) < 0) and g[-1] == -1
    if steps > 1:
        assert g[-2] == 0.0
        assert np.all(np.diff(g[:-1]) < -1e-3)
    lin = make_grid(LinearVP(), 10, kind, t_start=1.0, t_end=0.0)
    assert lin[-1] == 0.0 and LinearVP().s(lin[-2]) == pytest.approx(0.002)


# -- leading spacing: where its stride truncates, it would start far below the top -------------------------
def test_600_leading_steps_of_1000_are_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"grid 'leading' with steps=600 of T=1000 takes stride T // steps = 1 "
                                         r"and would start at t=599, skipping 40% of the trajectory"):
        make_grid(LIN, 600)
    np.testing.assert_array_equal(make_grid(LIN, 600, "trailing")[:2], [999, 997])


@pytest.mark.parametrize("steps", [d for d in range(1, 1001) if 1000 % d == 0])
def test_leading_grids_of_divisors_start_one_stride_below_the_top(steps):
    g = make_grid(LIN, steps)
    assert g[0] == 1000 - 1000 // steps and len(g) == steps + 1 and np.all(np.diff(g[:-1]) == -(1000 // steps))


def test_the_leading_rule_refuses_exactly_the_grids_that_start_too_low():
    """Accepted iff the first time, one ideal step higher, reaches 90% of the table: every steps <= 100 that
    divides 1000 or has a small remainder, never a stride-1 or stride-2 grid that stops in the middle."""
    accepted = []
    for steps in range(1, 1001):
        try:
            make_grid(LIN, steps)
            accepted.append(steps)
        except ValueError as exc:
            assert "would start at" in str(exc)
    assert set(range(1, 112)) <= set(accepted)  # every common step count of diffusers' leading spacing
    assert {250, 500, 1000} <= set(accepted) and not {334, 400, 600} & set(accepted) and 999 in accepted
    for steps in accepted:
        assert (steps - 1) * (1000 // steps) + 1000 / steps >= 0.9 * 1000 - 1


# -- the multistep schedulers' leading spacing ----------------------------------------------------------------
def test_leading_multistep_divides_the_table_into_steps_plus_one_parts():
    """5 of 1000 steps: 830, ..., 166 (stride 1000 // 6), then abar = 1; DDIM's leading is 800, ..., 0."""
    np.testing.assert_array_equal(make_grid(LIN, 5, "leading-multistep"), [830, 664, 498, 332, 166, -1])
    np.testing.assert_array_equal(make_grid(LIN, 5, "leading-multistep", offset=1, final_alpha="first"),
                                  [831, 665, 499, 333, 167, 0])
    np.testing.assert_array_equal(make_grid(LIN, 1, "leading-multistep"), [500, -1])
    for steps in (1, 2, 7, 49, 50, 99, 499):
        g = make_grid(LIN, steps, "leading-multistep")
        stride = 1000 // (steps + 1)
        assert len(g) == steps + 1 and g[0] == steps * stride and g[-2] == stride
        assert np.all(np.diff(g[:-1]) == -stride)


def test_leading_multistep_is_refused_where_its_stride_starts_too_low():
    with pytest.raises(ValueError, match=r"grid 'leading-multistep' with steps=500 of T=1000 takes stride "
                                         r"T // \(steps \+ 1\) = 1 and would start at t=500, skipping 50% of the "
                                         r"trajectory; choose steps \+ 1 that divides 1000"):
        make_grid(LIN, 500, "leading-multistep")
    with pytest.raises(ValueError, match=r"grid 'leading-multistep' with steps=5 starts at t=830, so it cannot "
                                         r"start at t_start=999"):
        make_grid(LIN, 5, "leading-multistep", t_start=999)
    with pytest.raises(ValueError, match=r"offset=170 moves the first time 1000 past the last training index 999"):
        make_grid(LIN, 5, "leading-multistep", offset=170)


MULTISTEP = [("DPMSolverMultistepScheduler", {"solver_order": 3, "lower_order_final": False}, -1.0),
             ("UniPCMultistepScheduler", {}, -1.0),
             ("UniPCMultistepScheduler", {"final_sigmas_type": "sigma_min"}, 0.0),
             ("DEISMultistepScheduler", {}, 0.0)]


@pytest.mark.peers
@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("cls, config, end", MULTISTEP, ids=[f"{c}-{e:g}" for c, _, e in MULTISTEP])
def test_leading_multistep_is_the_multistep_schedulers_leading_spacing(cls, config, end, offset):
    """diffusers' own ``set_timesteps`` (``timestep_spacing="leading"``) gives the grid's step starts, and its
    last level (``sigmas[-1]``: 0 or ``sigma_min``) its end: ``t = -1`` (``abar = 1``) or ``t = 0`` (``abar_0``).
    The scheduler that ran is the diffusers class named (its module is diffusers'), laid out for ``N`` steps, and
    pndmkit's ``leading`` kind is another grid at each ``N``, so the comparison tells the two kinds apart."""
    pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    import warnings

    for steps in (1, 2, 3, 5, 6, 8, 10, 20, 49, 50, 100):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scheduler = getattr(diffusers, cls)(timestep_spacing="leading", steps_offset=offset, **config)
            scheduler.set_timesteps(steps)
        assert type(scheduler).__module__.startswith("diffusers.schedulers.") and type(scheduler).__name__ == cls
        theirs = scheduler.timesteps.numpy().astype(np.float64)
        assert len(theirs) == scheduler.num_inference_steps == steps
        assert (float(scheduler.sigmas[-1]) == 0.0) == (end == -1.0)  # the end the scheduler itself integrates to
        final_alpha = "one" if end == -1.0 else "first"
        g = make_grid(LIN, steps, "leading-multistep", offset=offset, final_alpha=final_alpha)
        np.testing.assert_array_equal(g, np.append(theirs, end))
        assert not np.array_equal(make_grid(LIN, steps, "leading", offset=offset, final_alpha="one")[:-1], theirs)


# -- starting mid-trajectory ----------------------------------------------------------------------------------
def test_mid_trajectory_default_grid_is_linspace_over_the_indices_below_t_start():
    g = make_grid(LIN, 10, t_start=300)
    np.testing.assert_array_equal(g, [300, 267, 233, 200, 167, 133, 100, 67, 33, 0, -1])
    np.testing.assert_array_equal(make_grid(LIN, 3, "trailing", t_start=299.0), [299, 199, 99, -1])


@pytest.mark.parametrize("kind", ["linspace", "trailing"])
@pytest.mark.parametrize("steps", [1, 2, 4, 50, 1000])
def test_t_start_at_the_top_gives_the_full_table_grid(kind, steps):
    np.testing.assert_array_equal(make_grid(LIN, steps, kind, t_start=999), make_grid(LIN, steps, kind))


def test_one_linspace_step_starts_at_the_top():
    """diffusers' round(linspace(0, top, 1)) is [0], a step from the data end; pndmkit's one linspace step starts
    at the top (T - 1, or t_start), as trailing does and as every other step count does."""
    np.testing.assert_array_equal(make_grid(LIN, 1, "linspace"), [999, -1])
    np.testing.assert_array_equal(make_grid(LIN, 1, "linspace", final_alpha="first"), [999, 0])
    np.testing.assert_array_equal(make_grid(LIN, 1, t_start=300), [300, -1])  # the default with t_start
    for kind in ("linspace", "trailing"):
        np.testing.assert_array_equal(make_grid(LIN, 1, kind, t_start=300), [300, -1])
        np.testing.assert_array_equal(make_grid(DiscreteVP.cosine(T=20), 1, kind), [19, -1])
    np.testing.assert_array_equal(make_grid(LIN, 2, "linspace"), [999, 0, -1])  # unchanged from two steps on
    # leading keeps diffusers' rule (its stride T puts one step at t = offset): documented, not changed
    np.testing.assert_array_equal(make_grid(LIN, 1, "leading"), [0, -1])


def test_one_linspace_step_samples_the_trajectory():
    """On the Gaussian data the single linspace step is the DDIM step from t = 999: it moves the noise to the
    data end (the grid [0, -1] returned the noise scaled by 1 / sqrt(abar_0), nearly unchanged)."""
    sched = DiscreteVP.linear()
    x_T = np.random.default_rng(3).standard_normal(64)

    def eps(x, t):  # data N(0.5, 0.01): the exact eps at (x, t)
        a = float(sched.abar(t))
        return math.sqrt(1 - a) * (x - math.sqrt(a) * 0.5) / (a * 0.01 + 1 - a)

    out = sample(eps, x_T, schedule=sched, method="ddim", steps=1, grid="linspace")
    assert out.times.tolist() == [999.0, -1.0] and out.nfe == 1
    a = float(sched.abar(999))
    expected = (x_T - math.sqrt(1 - a) * eps(x_T, 999.0)) / math.sqrt(a)  # the DDIM step to abar = 1: x0
    np.testing.assert_allclose(out.x, expected, rtol=1e-12)
    assert abs(float(np.mean(out.x)) - 0.5) < 0.05 and float(np.std(out.x)) < 0.2  # near the data, not noise


def test_leading_accepts_only_its_own_first_time():
    np.testing.assert_array_equal(make_grid(LIN, 50, "leading", t_start=980), make_grid(LIN, 50))
    with pytest.raises(ValueError, match=r"grid 'leading' with steps=10 starts at t=900, so it cannot start at "
                                         r"t_start=300; use grid='trailing' or 'linspace' \(or leave grid unset\)"):
        make_grid(LIN, 10, "leading", t_start=300)


def test_discrete_spacings_need_integer_ends():
    with pytest.raises(ValueError, match=r"t_start=300.5 must be a training index \(an integer\) for grid 'trailing'"):
        make_grid(LIN, 10, "trailing", t_start=300.5)
    with pytest.raises(ValueError, match=r"grid 'leading' ends at t=-1 .* not at t_end=5.0"):
        make_grid(LIN, 10, "leading", t_end=5.0)
    with pytest.raises(ValueError, match=r"steps=302 exceeds the 301 training indices 0..300"):
        make_grid(LIN, 302, t_start=300)
    g = make_grid(LIN, 4, "uniform", t_start=300.5, t_end=5.0)  # a continuous kind takes any times
    np.testing.assert_allclose(g, np.linspace(300.5, 5.0, 5))


@pytest.mark.parametrize("kind", [None, "linspace"])
def test_a_non_integer_t_start_is_refused_by_the_default_mid_trajectory_grid(kind):
    """A regression: t_start=300.5 used to give linspace(300.5, -1) (not integer indices) without a word."""
    with pytest.raises(ValueError, match=r"^t_start=300.5 must be a training index \(an integer\) for grid "
                                         r"'linspace'; use grid='uniform' for other times$"):
        make_grid(LIN, 10, kind, t_start=300.5)
    with pytest.raises(ValueError, match=r"t_start=300.5 must be a training index"):
        make_grid(LIN, 10, kind, t_start=300.5, final_alpha="first")
    np.testing.assert_array_equal(make_grid(LIN, 10, kind, t_start=300.0)[[0, 1, -2, -1]], [300, 267, 0, -1])


def test_sample_refuses_a_non_integer_t_start_on_a_discrete_schedule():
    from pndmkit import sample

    with pytest.raises(ValueError, match=r"t_start=300.5 must be a training index"):
        sample(lambda x, t: np.zeros_like(x), np.ones(2), schedule=DiscreteVP.linear(), steps=10, t_start=300.5)



@pytest.mark.parametrize("kind", [None, "linspace", "trailing"])
def test_a_t_start_at_or_below_the_grid_s_end_is_blamed_on_t_start(kind):
    """t_start=-1 (abar = 1, where the grid ends) was reported as "steps=3 exceeds the 0 training indices 0..-1"."""
    from pndmkit import sample

    with pytest.raises(ValueError, match=r"^t_start=-1 does not lie above the grid's end t=-1 \(abar = 1, the data\), "
                                         r"so no step starts there; t_start of grid '\w+' on DiscreteVP.linear\(T=1000\) "
                                         r"must be a training index in 0..999$"):
        sample(lambda x, t: np.zeros_like(x), np.ones(2), schedule=LIN, method="ddim", steps=3, t_start=-1, grid=kind)
    with pytest.raises(ValueError, match=r"^t_start=0 does not lie above the grid's end t=0 \(abar_0, "
                                         r"final_alpha='first'\).* must be a training index in 1..999$"):
        make_grid(LIN, 1, kind, t_start=0, final_alpha="first")
    np.testing.assert_array_equal(make_grid(LIN, 1, kind, t_start=0), [0, -1])  # the lowest start that has a step
    with pytest.raises(ValueError, match=r"^steps=3 exceeds the 1 training indices 0..0 of DiscreteVP.linear\(T=1000\) "
                                         r"up to t_start=0 \(give fewer steps or a later t_start\)$"):
        make_grid(LIN, 3, kind, t_start=0)

def test_final_alpha_is_the_end_of_every_grid_on_a_discrete_schedule():
    assert make_grid(LIN, 4, "uniform", final_alpha="first")[-1] == 0.0
    assert make_grid(LIN, 4, "karras", final_alpha="one")[-1] == -1.0
    np.testing.assert_array_equal(make_grid(LIN, 4, "uniform", final_alpha="first"), make_grid(LIN, 4, "uniform",
                                                                                                  t_end=0.0))


# -- bad input ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"steps": 0}, ValueError, r"steps must be an integer >= 1, got 0"),
    ({"steps": 10.5}, TypeError, r"steps must be an integer, got float 10.5"),
    ({"steps": True}, TypeError, r"steps must be an integer, got bool True"),
    ({"kind": "bogus"}, ValueError, r"grid kind must be one of 'uniform', .*; got 'bogus'"),
    ({"kind": "karas"}, ValueError, r"got 'karas' \(did you mean 'karras'\?\)"),
    ({"kind": "leading"}, ValueError, r"grid 'leading' is a spacing of training indices and needs a DiscreteVP"),
    ({"t_start": 0.1, "t_end": 0.5}, ValueError, r"t_start=0.1 must be larger than t_end=0.5"),
    ({"t_start": float("nan")}, ValueError, r"t_start must be a finite number, got nan"),
    ({"t_end": float("inf")}, ValueError, r"t_end must be a finite number, got inf"),
    ({"t_start": "1"}, TypeError, r"t_start must be a real number, got str '1'"),
    ({"t_start": 1.5}, ValueError, r"t_start=1.5 lies outside the domain \[0.0, 1.0\]"),
    ({"rho": 3.0}, ValueError, r"rho applies to grid 'karras' only, not to grid 'uniform'"),
    ({"kind": "karras", "rho": -1.0}, ValueError, r"rho must be > 0, got -1.0"),
    ({"kind": "karras", "rho": float("nan")}, ValueError, r"rho must be a finite number, got nan"),
    ({"final_alpha": "one"}, ValueError, r"final_alpha applies to DiscreteVP schedules only"),
    ({"offset": 1}, ValueError, r"offset applies to grid 'leading' or 'leading-multistep' of a DiscreteVP only"),
])
def test_grid_errors_name_the_parameter(kwargs, error, message):
    kwargs = {"steps": 3, **kwargs}
    with pytest.raises(error, match=message):
        make_grid(LinearVP(), kwargs.pop("steps"), kwargs.pop("kind", None), **kwargs)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"kind": "trailing", "offset": 1}, ValueError, r"offset applies to grid 'leading'"),
    ({"offset": -1}, ValueError, r"offset must be an integer >= 0, got -1"),
    ({"offset": 0.5}, TypeError, r"offset must be an integer, got float 0.5"),
    ({"final_alpha": "zero"}, ValueError, r"final_alpha must be one of 'one', 'first'; got 'zero'"),
    ({"final_alpha": "first", "t_end": -1.0}, ValueError, r"t_end=-1.0 contradicts final_alpha='first'"),
    ({"offset": 30}, ValueError, r"offset=30 moves the first time 1010 past the last training index 999"),
])
def test_discrete_grid_errors_name_the_parameter(kwargs, error, message):
    with pytest.raises(error, match=message):
        make_grid(LIN, 50, kwargs.pop("kind", None), **kwargs)


def test_numpy_integer_steps_are_integers():
    np.testing.assert_array_equal(make_grid(LIN, np.int64(10)), make_grid(LIN, 10))
    np.testing.assert_array_equal(make_grid(LIN, np.int32(5), offset=np.int64(1)), make_grid(LIN, 5, offset=1))


@pytest.mark.parametrize(("grid", "error", "message"), [
    ([0.5, 0.7], ValueError, r"grid must be strictly decreasing \(from noise to data\); "
                             r"grid\[1\]=0.7 >= grid\[0\]=0.5"),
    ([0.5, 0.5], ValueError, r"grid\[1\]=0.5 >= grid\[0\]=0.5"),
    ([0.5], ValueError, r"grid must be a 1-D sequence of at least 2 times, got shape \(1,\)"),
    ([[0.5, 0.1]], ValueError, r"got shape \(1, 2\)"),
    ([0.9, float("nan"), 0.1], ValueError, r"grid\[1\]=nan must be finite"),
    ([0.9, 0.5, -0.1], ValueError, r"grid\[2\]=-0.1 lies outside the domain \[0.0, 1.0\] of LinearVP"),
    ([1.5, 0.1], ValueError, r"grid\[0\]=1.5 lies outside the domain"),
    ("uniform", TypeError, r"grid must be a sequence of times"),
    ([0.9, "a"], TypeError, r"grid must be a 1-D sequence of numbers, got list"),
])
def test_check_grid_states_the_rule_and_the_entry(grid, error, message):
    with pytest.raises(error, match=message):
        check_grid(LinearVP(), grid)


@pytest.mark.parametrize(("grid", "error", "message"), [
    ([0.5, 0.7], ValueError, r"^grid must be strictly decreasing \(from noise to data\); grid\[1\]=0.7 >= grid\[0\]=0.5$"),
    ([0.5], ValueError, r"^grid must be a 1-D sequence of at least 2 times, got shape \(1,\)$"),
    ([0.9, float("nan"), 0.1], ValueError, r"^grid\[1\]=nan must be finite$"),
    ([0.9, float("inf")], ValueError, r"^grid\[1\]=inf must be finite$"),
    ("uniform", TypeError, r"grid must be a sequence of times"),
])
def test_check_grid_without_a_schedule_keeps_every_rule_but_the_domain(grid, error, message):
    """check_grid(None, ...) checks times whose schedule is not known yet (pndmkit sample --grid before the
    checkpoint is opened) by the same rules and words, and no domain: times of any schedule pass."""
    with pytest.raises(error, match=message):
        check_grid(None, grid)
    out = check_grid(None, [5000, 500.5, -7])
    assert out.dtype == np.float64 and out.tolist() == [5000.0, 500.5, -7.0]
    with pytest.raises(ValueError, match=r"grid\[0\]=5000.0 lies outside the domain"):  # the schedule's mode: as before
        check_grid(DiscreteVP.linear(), [5000, 500.5, -1])


KINDS = st.sampled_from((None,) + tuple(GRIDS))
OPTIONAL_TIME = st.one_of(st.none(), st.integers(-1, 999).map(float), st.floats(-1.0, 999.0))


@given(kind=KINDS, steps=st.integers(1, 60), t_start=OPTIONAL_TIME, t_end=OPTIONAL_TIME,
       final_alpha=st.sampled_from([None, "one", "first"]), offset=st.sampled_from([None, 0, 1, 3]),
       rho=st.sampled_from([None, 3.0]))
def test_a_discrete_grid_has_exactly_steps_steps_or_a_reason(kind, steps, t_start, t_end, final_alpha, offset, rho):
    given_names = {n for n, v in (("t_start", t_start), ("t_end", t_end), ("final_alpha", final_alpha),
                                  ("offset", offset), ("rho", rho)) if v is not None} | {"steps", "grid"}
    try:
        g = make_grid(LIN, steps, kind, t_start=t_start, t_end=t_end, final_alpha=final_alpha, offset=offset, rho=rho)
    except ValueError as exc:
        assert any(name in str(exc) for name in given_names), str(exc)
        return
    assert len(g) == steps + 1 and np.all(np.diff(g) < 0)
    assert t_start is None or g[0] == t_start
    assert g[-1] == ({"one": -1.0, "first": 0.0}[final_alpha] if final_alpha else -1.0 if t_end is None else t_end)


@pytest.mark.parametrize("kind, variable", [("logsnr", "lambda = -log s"), ("karras", r"s\*\*\(1/rho\)"),
                                            ("s-uniform", "s")])
def test_level_spaced_kinds_refuse_a_start_at_alpha_0_by_name(kind, variable):
    """On flow matching from t = 1 (alpha = 0) the level s is infinite: the kinds equally spaced in a function of
    s were a ValueError about NaN levels; now one line naming the kind, the start and the kinds that work."""
    from pndmkit.schedules import FlowMatching

    fm = FlowMatching(shift=3.0, t_max=1.0)
    with pytest.raises(ValueError, match=rf"^grid '{kind}' is equally spaced in {variable}, which is infinite at "
                                         rf"t_start=1 on FlowMatching\(.*\) \(alpha = 0, pure noise\): start the grid "
                                         rf"below t=1 \(t_start=\) or use a kind spaced in t \(uniform, shifted\)$"):
        make_grid(fm, 5, kind)
    assert make_grid(fm, 5, kind, t_start=0.999)[0] == 0.999 and make_grid(fm, 5, "uniform")[0] == 1.0
