"""The public ``pndmkit.sample`` API: backends, prediction types, conventions and bad input."""

import math

import numpy as np
import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

import pndmkit
from pndmkit import METHODS, sample
from pndmkit.grids import GRIDS
from pndmkit.models import as_eps, shift_time
from pndmkit.sampling import CONVENTIONS
from pndmkit.schedules import DiscreteVP, LinearVP

SCHED = LinearVP()


def eps_model(x, t):
    a = SCHED.abar(t)
    return np.sqrt(1 - a) * (x + 0.3 * np.tanh(2 * x)) / (0.25 * a + 1 - a)


def converted(kind):
    """The same network expressed as an x0, v or score predictor."""
    def model(x, t):
        a, sig = np.sqrt(SCHED.abar(t)), np.sqrt(1 - SCHED.abar(t))
        e = eps_model(x, t)
        x0 = (x - sig * e) / a
        return {"x0": x0, "v": a * e - sig * x0, "score": -e / sig}[kind]
    return model


@pytest.mark.parametrize("name", [m for m in METHODS if m != "pf"])
@pytest.mark.parametrize("kind", ["x0", "v", "score"])
def test_prediction_types_give_the_eps_samples(name, kind):
    x = np.random.default_rng(3).standard_normal((2, 3))
    ref = sample(eps_model, x, schedule=SCHED, method=name, steps=7).x
    got = sample(converted(kind), x, schedule=SCHED, method=name, steps=7, prediction=kind).x
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_numpy_and_torch_give_the_same_samples(name):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).standard_normal((2, 3))

    def torch_model(xt, t):
        assert isinstance(xt, torch.Tensor)
        a = SCHED.abar(t)
        return np.sqrt(1 - a) * (xt + 0.3 * torch.tanh(2 * xt)) / (0.25 * a + 1 - a)

    ref = sample(eps_model, x, schedule=SCHED, method=name, steps=6)
    got = sample(torch_model, torch.from_numpy(x), schedule=SCHED, method=name, steps=6)
    assert isinstance(got.x, torch.Tensor) and got.x.dtype == torch.float64
    np.testing.assert_allclose(got.x.numpy(), ref.x, rtol=1e-12, atol=1e-12)
    assert got.nfe == ref.nfe


def test_low_precision_model_output_is_cast_to_the_state_dtype():
    torch = pytest.importorskip("torch")
    x = torch.ones(2, 3, dtype=torch.float32)
    sol = sample(lambda xt, t: (0.5 * xt).to(torch.bfloat16), x, schedule=SCHED, method="f-pndm", steps=5)
    assert sol.x.dtype == torch.float32


def test_official_pndm_convention_calls_the_network_one_index_earlier():
    d = DiscreteVP.linear()
    seen = []

    def model(x, t):
        seen.append(t)
        return 0.1 * x

    sol = sample(model, np.ones(2), schedule=d, method="ddim", steps=5, convention="official-pndm")
    np.testing.assert_array_equal(sol.times, [801, 601, 401, 201, 1, 0])
    assert seen == [800, 600, 400, 200, 0]
    seen.clear()
    sample(model, np.ones(2), schedule=d, method="ddim", steps=5, convention="diffusers-pndm")
    assert seen == [801, 601, 401, 201, 1]


def test_x0_model_cannot_be_evaluated_at_abar_one():
    d = DiscreteVP.linear()
    with pytest.raises(ValueError, match="x0-prediction model cannot give eps"):
        as_eps(lambda x, t: x, d, "x0")(np.ones(2), -1.0)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown method 'pndm'; known methods: ddim, pie"):
        sample(eps_model, np.ones(2), schedule=SCHED, method="pndm")


@pytest.mark.parametrize(("steps", "error", "message"), [
    (0, ValueError, r"steps must be an integer >= 1, got 0"),
    (-3, ValueError, r"steps must be an integer >= 1, got -3"),
    (2.5, TypeError, r"steps must be an integer, got float 2.5"),
    (10.0, TypeError, r"steps must be an integer, got float 10.0"),
    (True, TypeError, r"steps must be an integer, got bool True"),
    ("10", TypeError, r"steps must be an integer, got str '10'"),
])
def test_bad_steps(steps, error, message):
    with pytest.raises(error, match=message):
        sample(eps_model, np.ones(2), schedule=SCHED, steps=steps)


def test_numpy_integer_steps_are_integers():
    ref = sample(eps_model, np.ones(2), schedule=SCHED, method="ddim", steps=10)
    got = sample(eps_model, np.ones(2), schedule=SCHED, method="ddim", steps=np.int64(10))
    assert got.nfe == 10 and np.array_equal(got.x, ref.x)


def test_bad_grids():
    with pytest.raises(ValueError, match=r"strictly decreasing \(from noise to data\); grid\[1\]=0.6 >= grid\[0\]"):
        sample(eps_model, np.ones(2), schedule=SCHED, grid=[0.5, 0.6, 0.1])
    with pytest.raises(ValueError, match=r"grid\[0\]=1.5 lies outside the domain \[0.0, 1.0\]"):
        sample(eps_model, np.ones(2), schedule=SCHED, grid=[1.5, 0.1])
    with pytest.raises(ValueError, match="at least 2 times"):
        sample(eps_model, np.ones(2), schedule=SCHED, grid=[0.5])
    with pytest.raises(ValueError, match=r"grid\[1\]=nan must be finite"):
        sample(eps_model, np.ones(2), schedule=SCHED, grid=[0.9, np.nan, 0.1])


def test_bad_x_T():
    with pytest.raises(TypeError, match="x_T must be a numpy.ndarray or a torch.Tensor, got list"):
        sample(eps_model, [1.0, 2.0], schedule=SCHED)
    with pytest.raises(TypeError, match="x_T must have a floating dtype, got int64"):
        sample(eps_model, np.ones(2, dtype=np.int64), schedule=SCHED)
    with pytest.raises(ValueError, match=r"x_T must be finite; 1 of 3 entries are NaN or infinite "
                                         r"\(the first at index \(1,\), nan\)"):
        sample(eps_model, np.array([0.0, np.nan, 1.0]), schedule=SCHED)
    with pytest.raises(ValueError, match=r"x_T must be finite; 2 of 4 .* index \(0, 1\), inf"):
        sample(eps_model, np.array([[0.0, np.inf], [-np.inf, 1.0]]), schedule=SCHED)


def test_non_finite_torch_x_T_is_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"x_T must be finite; 1 of 6 .* index \(1, 0\), inf"):
        sample(eps_model, torch.tensor([[0.0, 1, 2], [float("inf"), 0, 0]]), schedule=SCHED)


# -- conventions, grids, options: one grid of exactly `steps` steps, or one error naming the parameters ------
def test_mid_trajectory_on_the_default_discrete_grid():
    """A regression: this call raised "grid 'leading' needs a DiscreteVP schedule ... got DiscreteVP"."""
    d = DiscreteVP.linear()
    sol = sample(lambda x, t: 0.1 * x, np.ones(2), schedule=d, method="ddim", steps=10, t_start=300.0)
    np.testing.assert_array_equal(sol.times, [300, 267, 233, 200, 167, 133, 100, 67, 33, 0, -1])
    assert sol.nfe == 10
    with pytest.raises(ValueError, match=r"convention='ddim' \(grid 'leading', offset=0, final_alpha='one'\): "
                                         r"grid 'leading' with steps=10 starts at t=900, so it cannot start at "
                                         r"t_start=300"):
        sample(lambda x, t: 0.1 * x, np.ones(2), schedule=d, steps=10, t_start=300.0, convention="ddim")


@pytest.mark.parametrize("grid", ["leading", "trailing", "linspace", "uniform", "karras"])
def test_convention_with_a_grid_kind(grid):
    """A regression: any grid with a convention raised TypeError: make_grid() got multiple values for 'kind'."""
    d = DiscreteVP.linear()
    if grid == "leading":
        sol = sample(lambda x, t: 0.1 * x, np.ones(2), schedule=d, method="ddim", steps=5, grid=grid,
                     convention="diffusers-pndm")
        np.testing.assert_array_equal(sol.times, [801, 601, 401, 201, 1, 0])
        return
    with pytest.raises(ValueError, match=rf"convention='diffusers-pndm' sets grid='leading', which contradicts "
                                         rf"grid='{grid}'; pass either the convention or grid"):
        sample(lambda x, t: 0.1 * x, np.ones(2), schedule=d, steps=5, grid=grid, convention="diffusers-pndm")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"offset": 0}, r"convention='official-pndm' sets offset=1, which contradicts offset=0"),
    ({"final_alpha": "one"}, r"sets final_alpha='first', which contradicts final_alpha='one'"),
    ({"model_time_offset": 0.0}, r"sets model_time_offset=1, which contradicts model_time_offset=0.0"),
    ({"grid": [999.0, 500.0, 0.0]}, r"convention='official-pndm' generates its own grid and cannot be combined "
                                    r"with explicit grid times; .* pass model_time_offset=1 instead"),
    ({"t_end": -1.0}, r"convention='official-pndm' .*: t_end=-1.0 contradicts final_alpha='first'"),
    ({"rho": 7.0}, r"convention='official-pndm' .*: rho applies to grid 'karras' only"),
    ({"convention": "ddpm"}, r"convention must be one of 'ddim', 'diffusers-pndm', 'official-pndm'; got 'ddpm'"),
])
def test_convention_conflicts_name_both_parameters(kwargs, message):
    kwargs = {"convention": "official-pndm", **kwargs}
    with pytest.raises(ValueError, match=message):
        sample(lambda x, t: 0.1 * x, np.ones(2), schedule=DiscreteVP.linear(), steps=5, **kwargs)


def test_convention_on_a_continuous_schedule_is_refused():
    with pytest.raises(ValueError, match=r"convention='ddim' fixes training-index conventions of DiscreteVP "
                                         r"schedules; it does not apply to schedule=LinearVP"):
        sample(eps_model, np.ones(2), schedule=SCHED, convention="ddim")


def test_explicit_grid_with_agreeing_and_contradicting_arguments():
    grid = [1.0, 0.5, 0.1]
    sol = sample(eps_model, np.ones(2), schedule=SCHED, method="ddim", grid=grid, steps=2, t_start=1.0, t_end=0.1)
    assert sol.nfe == 2
    with pytest.raises(ValueError, match=r"steps=10 contradicts the explicit grid of 3 times \(2 steps\)"):
        sample(eps_model, np.ones(2), schedule=SCHED, grid=grid, steps=10)
    with pytest.raises(ValueError, match=r"t_start=0.9 contradicts the explicit grid, which runs from 1.0 to 0.1"):
        sample(eps_model, np.ones(2), schedule=SCHED, grid=grid, t_start=0.9)
    with pytest.raises(ValueError, match=r"rho, offset shape generated grids and cannot be combined with explicit"):
        sample(eps_model, np.ones(2), schedule=SCHED, grid=grid, rho=7.0, offset=1)


def test_grid_options_the_kind_would_ignore_are_refused():
    with pytest.raises(ValueError, match=r"rho applies to grid 'karras' only, not to grid 'uniform'"):
        sample(eps_model, np.ones(2), schedule=SCHED, steps=5, grid="uniform", rho=3.0)
    with pytest.raises(ValueError, match=r"offset applies to grid 'leading' or 'leading-multistep' of a DiscreteVP only"):
        sample(eps_model, np.ones(2), schedule=DiscreteVP.linear(), steps=5, grid="trailing", offset=1)


def test_unknown_keywords_are_errors():
    """A regression: a misspelt keyword next to an explicit grid was silently swallowed."""
    with pytest.raises(TypeError, match=r"sample\(\) got an unexpected keyword argument 'stpes'; "
                                        r"did you mean 'steps'\?"):
        sample(eps_model, np.ones(2), schedule=SCHED, grid=[1.0, 0.5, 0.1], stpes=10)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'final_alhpa'; did you mean 'final_alpha'"):
        sample(eps_model, np.ones(2), schedule=DiscreteVP.linear(), final_alhpa="one")
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'zzz'$"):
        sample(eps_model, np.ones(2), schedule=SCHED, zzz=1)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"model_time_offset": float("nan")}, ValueError, r"model_time_offset must be a finite number, got nan"),
    ({"model_time_offset": "1"}, TypeError, r"model_time_offset must be a real number, got str '1'"),
    ({"t_start": float("nan")}, ValueError, r"t_start must be a finite number, got nan"),
    ({"t_end": float("-inf")}, ValueError, r"t_end must be a finite number, got -inf"),
    ({"schedule": "linear"}, TypeError, r"schedule must be a NoiseSchedule .* got str"),
    ({"callback": 3}, TypeError, r"callback must be callable as callback\(t, x, e\), got int"),
    ({"check_finite": "yes"}, TypeError, r"check_finite must be True or False, got 'yes'"),
])
def test_bad_scalar_arguments(kwargs, error, message):
    kwargs = {"schedule": SCHED, **kwargs}
    with pytest.raises(error, match=message):
        sample(eps_model, np.ones(2), **kwargs)


def test_bad_model_output():
    with pytest.raises(ValueError, match=r"model output must be an array of shape \(2,\)"):
        sample(lambda x, t: np.ones(3), np.ones(2), schedule=SCHED)
    with pytest.raises(TypeError, match="model output must have a floating dtype, got int64"):
        sample(lambda x, t: np.ones(2, dtype=np.int64), np.ones(2), schedule=SCHED)
    with pytest.raises(FloatingPointError, match="not finite"):
        sample(lambda x, t: np.full(2, np.nan), np.ones(2), schedule=SCHED, check_finite=True)
    with pytest.raises(ValueError, match="prediction must be one of"):
        sample(eps_model, np.ones(2), schedule=SCHED, prediction="noise")


def test_one_step_of_every_method_ends_at_the_data_end():
    """One default (leading) step runs [0, -1] and says that it leaves x_T's noise (pf integrates the whole
    trajectory and does not)."""
    d = DiscreteVP.linear()
    for name in METHODS:
        if name == "pf":
            with pytest.warns(pndmkit.sampling.IgnoredStepsWarning):
                sol = sample(lambda x, t: 0.1 * x, np.ones(3), schedule=d, method=name, steps=1)
        else:
            with pytest.warns(pndmkit.GridStartWarning, match=r"^the generated grid with steps=1 is \[0.0, -1.0\]"):
                sol = sample(lambda x, t: 0.1 * x, np.ones(3), schedule=d, method=name, steps=1)
            assert sol.times.tolist() == [0.0, -1.0]
        assert np.all(np.isfinite(sol.x)), name


# -- every combination: exactly `steps` steps or one ValueError naming a parameter that was passed -----------
SCHEDULES = {"linear-vp": SCHED, "discrete-1000": DiscreteVP.linear(), "discrete-20": DiscreteVP.cosine(T=20)}


def sometimes(values):
    """Mostly None (the argument is not passed), so that valid combinations are drawn often too."""
    return st.one_of(st.none(), st.none(), st.none(), values)


@st.composite
def grid_arguments(draw):
    name = draw(st.sampled_from(sorted(SCHEDULES)))
    sched = SCHEDULES[name]
    time = st.one_of(st.integers(int(sched.t_min), int(sched.t_max)).map(float),
                     st.floats(sched.t_min - 0.5, sched.t_max + 0.5))
    kwargs = {
        "convention": draw(sometimes(st.sampled_from(tuple(CONVENTIONS)))),
        "steps": draw(st.one_of(st.none(), st.integers(1, 40))),
        "t_start": draw(st.one_of(st.none(), time)),
        "t_end": draw(sometimes(st.one_of(st.sampled_from([-1.0, 0.0]), time))),
        "final_alpha": draw(sometimes(st.sampled_from(["one", "first"]))),
        "offset": draw(sometimes(st.sampled_from([0, 1, 2]))),
        "rho": draw(sometimes(st.just(5.0))),
        "model_time_offset": draw(sometimes(st.sampled_from([0, 1]))),
    }
    grid = draw(st.sampled_from((None, "explicit") + tuple(GRIDS)))
    if grid == "explicit":
        size = draw(st.integers(2, 12))
        grid = np.linspace(sched.t_start, sched.t_end, size)
    kwargs["grid"] = grid
    return sched, {k: v for k, v in kwargs.items() if v is not None}


@settings(max_examples=600)
@given(args=grid_arguments())
def test_every_combination_gives_exactly_steps_steps_or_one_clear_error(args):
    sched, kwargs = args
    try:
        sol = sample(lambda x, t: 0.1 * x, np.ones(2), schedule=sched, method="ddim", **kwargs)
    except ValueError as exc:
        named = set(kwargs) | {"steps"}  # the default steps=50 can be what a short table cannot give
        assert any(n in str(exc) for n in named), str(exc)
        return
    grid = kwargs.get("grid")
    explicit = grid is not None and not isinstance(grid, str)
    steps = len(grid) - 1 if explicit else kwargs.get("steps", 50)
    assert len(sol.times) == steps + 1 and sol.nfe == steps and np.all(np.diff(sol.times) < 0)
    tol = 1e-9 * max(1.0, sched.t_max)  # times within rounding of the domain are moved onto its edge
    assert sol.times[0] == pytest.approx(kwargs.get("t_start", sol.times[0]), abs=tol)
    end = {"one": -1.0, "first": 0.0}.get(kwargs.get("final_alpha"), kwargs.get("t_end", sol.times[-1]))
    assert sol.times[-1] == pytest.approx(end, abs=tol)
    if explicit:
        np.testing.assert_array_equal(sol.times, grid)
    if "convention" in kwargs:
        assert sol.times[-1] == (-1.0 if kwargs["convention"] == "ddim" else 0.0)


def test_pf_creates_no_float64_tensor_for_a_float32_state():
    """Devices without float64 (Apple MPS) fail on any float64 tensor: PF's host round trip must not make one."""
    torch = pytest.importorskip("torch")
    from torch.utils._python_dispatch import TorchDispatchMode

    class Dtypes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for a in torch.utils._pytree.tree_leaves((args, kwargs, out)):
                if isinstance(a, torch.Tensor):
                    self.seen.add((str(func), a.dtype))
            return out

    for dtype in (torch.float32, torch.bfloat16):
        mode = Dtypes()
        with mode:
            out = sample(lambda x, t: 0.1 * x, torch.ones(2, 3, dtype=dtype), schedule=DiscreteVP.linear(),
                         method="pf")
        assert out.x.dtype == dtype
        assert mode.seen and not {f for f, d in mode.seen if d == torch.float64}, mode.seen


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("convention", ["ddim", "diffusers-pndm", "official-pndm"])
def test_x0_and_v_models_convert_at_the_samples_own_level_under_every_convention(convention, prediction):
    """A point mass at c: the exact eps, x0 or v of the sample's own level makes DDIM exact. official-pndm tells
    the network t - 1 while the sample is at abar(t); converting x0 or v at the network's time was off by 1e-2."""
    sched = DiscreteVP.linear()
    rng = np.random.default_rng(1)
    c, z = rng.standard_normal(16), rng.standard_normal(16)
    offset = pndmkit.CONVENTIONS[convention]["model_time_offset"] or 0.0
    told = []

    def model(x, t):
        told.append(t)
        a = float(sched.abar(t + offset))  # the level of the sample the network is asked about
        return {"eps": z, "x0": c, "v": math.sqrt(a) * z - math.sqrt(1 - a) * c}[prediction]

    grid = pndmkit.sample(lambda x, t: 0 * x, np.ones(16), schedule=sched, method="ddim", steps=5,
                          convention=convention).times
    a0, a1 = float(sched.abar(grid[0])), float(sched.abar(grid[-1]))
    out = pndmkit.sample(model, math.sqrt(a0) * c + math.sqrt(1 - a0) * z, schedule=sched, method="ddim", steps=5,
                         convention=convention, prediction=prediction)
    np.testing.assert_allclose(out.x, math.sqrt(a1) * c + math.sqrt(1 - a1) * z, rtol=0, atol=1e-13)
    assert told == [float(t) - offset for t in grid[:-1]]


def test_an_x0_model_under_official_pndm_runs_methods_that_evaluate_at_the_grids_end():
    """official-pndm ends the grid at t = 0 (abar_0 > 0): an x0 output converts there, so pie is not refused."""
    seen = []

    def model(x, t):
        seen.append(t)
        return 0.5 * x

    out = pndmkit.sample(model, np.ones(4), schedule=DiscreteVP.linear(), method="pie", steps=5,
                         convention="official-pndm", prediction="x0")
    assert np.all(np.isfinite(out.x)) and len(seen) == out.nfe == 10 and min(seen) == -1.0


@pytest.mark.parametrize("schedule", [DiscreteVP.linear(10), DiscreteVP.linear(), LinearVP(t_end=0.0)])
def test_an_adaptive_run_to_abar_one_with_an_x0_model_is_refused_before_any_call(schedule):
    """pf evaluates at both ends of its interval: an x0 model at sigma = 0 failed after 67-175 calls."""
    calls = []

    def model(x, t):
        calls.append(t)
        return 0.5 * x

    with pytest.raises(ValueError, match=r"method='pf' with prediction='x0' integrates from t=.* evaluates the "
                                         r"model at both ends, but a model predicting 'x0' gives no eps at t="):
        sample(model, np.ones(3), schedule=schedule, method="pf", prediction="x0", t_end=schedule.t_end)
    assert calls == []
    if isinstance(schedule, DiscreteVP):  # ending at t = 0 (abar_0 < 1) runs
        out = sample(model, np.ones(3), schedule=schedule, method="pf", prediction="x0", final_alpha="first")
        assert np.all(np.isfinite(out.x)) and out.nfe == len(calls) > 0


def test_a_foreign_wrapper_converting_x0_itself_is_refused_under_a_network_time_offset():
    """A wrapper that converts inside and cannot be rebuilt would convert at the network's time t - 1, not at
    the sample's level: refused before any call."""
    calls = []

    class Converting:
        converted_from = "x0"

        def __call__(self, x, t):
            calls.append(t)
            return 0.5 * x

    sched = DiscreteVP.linear()
    with pytest.raises(ValueError, match=r"model_time_offset=1 tells the network t - 1, but the model converts its "
                                         r"network's 'x0' prediction to eps itself, .* offers no "
                                         r"with_time_offset\(offset\)"):
        sample(Converting(), np.ones(3), schedule=sched, steps=5, convention="official-pndm")
    assert calls == []
    with pytest.raises(ValueError, match=r"converts its network's 'x0' prediction to eps itself and offers no "
                                         r"with_time_offset"):
        shift_time(Converting(), 1.0)


@pytest.mark.parametrize("prediction", ["x0", "v"])
@pytest.mark.parametrize("wrapper", ["as_eps", "guided", "guided-batched", "NetworkModel"])
def test_pndmkits_converting_wrappers_convert_at_the_samples_level_under_official_pndm(wrapper, prediction):
    """official-pndm tells the network t - 1; as_eps, guided and NetworkModel convert inside and are rebuilt by
    with_time_offset so that they still convert at abar(t): DDIM on a point mass is then exact, as for an
    unwrapped network (they were refused before)."""
    torch = pytest.importorskip("torch")
    from pndmkit.models import guided
    from pndmkit.nn import NetworkModel

    sched = DiscreteVP.linear()
    rng = np.random.default_rng(2)
    c, z = rng.standard_normal((1, 16)), rng.standard_normal((1, 16))
    told = []

    def network(x, t, gain=None):  # a point mass at c from noise z, told t - 1 for a sample at abar(t)
        told.append(float(t))
        a = float(sched.abar(float(t) + 1.0))
        out = {"x0": c, "v": math.sqrt(a) * z - math.sqrt(1 - a) * c}[prediction]
        return out if gain is None else out * gain  # gain: conditioning, 1 in both halves of a guided call

    kwargs = {}
    if wrapper == "as_eps":
        model = as_eps(network, sched, prediction)
    elif wrapper == "guided":
        model = guided(network, 1.0, {}, schedule=sched, prediction=prediction)
    elif wrapper == "guided-batched":  # both halves in one call, conditioning bound by model_kwargs (a partial)
        model = guided(network, 3.0, {"gain": np.ones((1, 1))}, schedule=sched, prediction=prediction)
        kwargs = {"model_kwargs": {"gain": np.ones((1, 1))}}
    else:
        c, z = torch.from_numpy(c), torch.from_numpy(z)

        def net(x, t_batch):  # NetworkModel hands a float32 batch of times
            assert t_batch.dtype == torch.float32 and t_batch.shape == (x.shape[0],)
            return network(x, t_batch[0].item())

        model = NetworkModel(net, sched, prediction=prediction)
    grid = sample(lambda x, t: 0 * x, np.ones(16), schedule=sched, method="ddim", steps=5,
                  convention="official-pndm").times
    a0, a1 = float(sched.abar(grid[0])), float(sched.abar(grid[-1]))
    out = sample(model, math.sqrt(a0) * c + math.sqrt(1 - a0) * z, schedule=sched, method="ddim", steps=5,
                 convention="official-pndm", **kwargs)
    np.testing.assert_allclose(np.asarray(out.x), np.asarray(math.sqrt(a1) * c + math.sqrt(1 - a1) * z), rtol=0,
                               atol=1e-13)
    assert told == [float(t) - 1.0 for t in grid[:-1]]  # one network call per step (guided: one batched call)
    if wrapper == "NetworkModel":
        assert model.nfe == 0 and model.time_offset == 0.0  # the caller's model is left as it was


def test_model_time_offset_shifts_a_partial_with_bound_positional_arguments():
    """A plain model given as functools.partial(net, params) is called at t - 1 under official-pndm (a shifted
    wrapper that passed the partial's positional arguments on again broke it); a converting wrapper inside a
    partial that binds positional arguments cannot be rebuilt and is refused by name."""
    from functools import partial

    from pndmkit.models import can_shift_time

    told = []

    def net(params, x, t):
        told.append(t)
        return params * x

    sched = DiscreteVP.linear()
    out = sample(partial(net, 0.0), np.ones(2), schedule=sched, steps=5, convention="official-pndm")
    assert told == [float(t) - 1.0 for t in out.times[:-1]]
    # a guided x0 model bound by the caller to its conditioning (a partial with keywords): rebuilt, told t - 1,
    # converting at the sample's level, equal to passing the conditioning through model_kwargs
    from pndmkit.models import guided

    seen = []

    def x0_net(x, t, c):
        seen.append(t)
        return 0.5 * x + c

    g = guided(x0_net, 2.0, {"c": np.zeros((1, 2))}, schedule=sched, prediction="x0")
    bound = partial(g, c=np.ones((1, 2)))
    shifted = shift_time(bound, 1.0)
    assert can_shift_time(bound) and isinstance(shifted, partial) and set(shifted.keywords) == {"c"}
    a = sample(bound, np.ones((1, 2)), schedule=sched, steps=5, convention="official-pndm")
    told, seen[:] = list(seen), []
    b = sample(g, np.ones((1, 2)), schedule=sched, steps=5, convention="official-pndm",
               model_kwargs={"c": np.ones((1, 2))})
    np.testing.assert_array_equal(a.x, b.x)
    assert told == seen == [float(t) - 1.0 for t in a.times[:-1]]

    class Converting:
        converted_from = "x0"

        def with_time_offset(self, offset):
            return self

        def __call__(self, a, x, t):
            return x

    assert not can_shift_time(partial(Converting(), 1.0))
    with pytest.raises(ValueError, match=r"binds positional arguments in a functools.partial"):
        shift_time(partial(Converting(), 1.0), 1.0)
