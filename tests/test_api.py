"""The public ``pndmkit.sample`` API: backends, prediction types, conventions and bad input."""

import numpy as np
import pytest

from pndmkit import METHODS, sample
from pndmkit.models import as_eps
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


@pytest.mark.parametrize("steps", [0, -3, 2.5, True])
def test_bad_steps(steps):
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        sample(eps_model, np.ones(2), schedule=SCHED, steps=steps)


def test_bad_grids():
    with pytest.raises(ValueError, match="strictly decreasing"):
        sample(eps_model, np.ones(2), schedule=SCHED, grid=[0.5, 0.6, 0.1])
    with pytest.raises(ValueError, match="outside the domain"):
        sample(eps_model, np.ones(2), schedule=SCHED, grid=[1.5, 0.1])
    with pytest.raises(ValueError, match="at least 2 times"):
        sample(eps_model, np.ones(2), schedule=SCHED, grid=[0.5])


def test_bad_x_T():
    with pytest.raises(TypeError, match="x_T must be a numpy.ndarray or a torch.Tensor, got list"):
        sample(eps_model, [1.0, 2.0], schedule=SCHED)
    with pytest.raises(TypeError, match="x_T must have a floating dtype, got int64"):
        sample(eps_model, np.ones(2, dtype=np.int64), schedule=SCHED)


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
    d = DiscreteVP.linear()
    for name in METHODS:
        sol = sample(lambda x, t: 0.1 * x, np.ones(3), schedule=d, method=name, steps=1)
        assert np.all(np.isfinite(sol.x)), name
        assert sol.times.tolist() == [0.0, -1.0] or name == "pf"
