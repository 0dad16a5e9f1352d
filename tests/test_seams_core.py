"""Where pndmkit meets other conventions in its core: models that already return eps, and the start scale."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import pndmkit
from pndmkit.models import as_eps, converted_from, guided
from pndmkit.schedules import EDM, VE, CosineVP, DiscreteVP, FlowMatching, LinearVP

# -- a model that already returns eps is not converted a second time -----------------------------------------
FM = FlowMatching(shift=3.0)
MEANS = np.array([[2.0, -1.0], [-1.5, 0.5]])  # class k ~ N(MEANS[k], 0.2 I)


def flow_class(x, t, label):
    """Exact flow velocity u = eps - x0 of class ``label`` on flow matching (label -1: the 50/50 mixture)."""
    a, s = 1.0 - t, t
    var = a * a * 0.2 + s * s
    diff = x[:, None, :] - a * MEANS[None]
    logp = -0.5 * (diff**2).sum(-1) / var
    w = np.exp(logp - logp.max(1, keepdims=True))
    w = np.where(label[:, None] < 0, w, np.eye(2)[np.maximum(label, 0)])
    w = w / w.sum(1, keepdims=True)
    eps = s * (w[..., None] * diff).sum(1) / var
    return eps - (x - s * eps) / a


X = np.random.default_rng(0).standard_normal((6, 2))
COND, UNCOND = {"label": np.array([0, 1, 0, 1, 0, 1])}, {"label": np.full(6, -1)}


def test_a_guided_flow_model_is_refused_a_second_conversion():
    g = guided(flow_class, 3.0, UNCOND, schedule=FM, prediction="flow")
    assert converted_from(g) == "flow"
    kw = dict(schedule=FM, method="ddim", steps=12, model_kwargs=COND)
    with pytest.raises(ValueError) as info:
        pndmkit.sample(g, X, prediction="flow", **kw)
    assert str(info.value) == (
        "prediction='flow' would convert the model's output a second time: the model, guided(...), already "
        "returns eps (it converts its network's 'flow' prediction itself); leave prediction='eps' (the default) "
        "and give the network's prediction to the wrapper only")
    right = pndmkit.sample(g, X, **kw).x  # prediction='eps': the guided model's own output
    # the same guidance written by hand in eps form: both halves converted at (x, t), then combined
    def by_hand(x, t, label):
        c_x, c_u = 1.0, 1.0 - t  # flow matching: eps = x + (1 - t) u
        e_u, e_c = c_x * x + c_u * flow_class(x, t, UNCOND["label"]), c_x * x + c_u * flow_class(x, t, label)
        return e_u + 3.0 * (e_c - e_u)
    np.testing.assert_allclose(right, pndmkit.sample(by_hand, X, **kw).x, rtol=1e-13, atol=1e-13)
    # what the refusal prevents: converting eps as if it were a velocity changes the result by tens of percent
    hidden = lambda x, t: g(x, t, **COND)  # noqa: E731  (a plain lambda hides the mark)
    twice = pndmkit.sample(hidden, X, schedule=FM, method="ddim", steps=12, prediction="flow").x
    assert np.linalg.norm(twice - right) / np.linalg.norm(right) > 0.3


@pytest.mark.parametrize("prediction", ["x0", "score", "flow"])
def test_every_pndmkit_wrapper_that_returns_eps_is_marked(prediction):
    sched = LinearVP()
    plain = lambda x, t: 0.5 * x  # noqa: E731
    wrapped = as_eps(plain, sched, prediction)
    assert converted_from(wrapped) == prediction and converted_from(plain) is None
    assert converted_from(guided(plain, 1.0, {}, schedule=sched, prediction=prediction)) == prediction
    assert converted_from(guided(plain, 2.0, {})) == "eps"  # returns eps too: a prediction would convert twice
    with pytest.raises(ValueError, match=rf"prediction='v' would convert the model's output a second time: the "
                                         rf"model, as_eps\(\.\.\.\), already returns eps \(it converts its "
                                         rf"network's '{prediction}' prediction itself\)"):
        pndmkit.sample(wrapped, X, schedule=sched, steps=4, prediction="v")
    with pytest.raises(ValueError, match=r"prediction='x0' .* guided\(\.\.\.\), already returns eps \(it converts "
                                         r"its network's 'eps' prediction itself\)"):
        pndmkit.sample(guided(plain, 2.0, {}), X, schedule=sched, steps=4, prediction="x0")
    # the wrapper with the default prediction: exactly the plain model with its own prediction
    np.testing.assert_array_equal(pndmkit.sample(wrapped, X, schedule=sched, steps=4).x,
                                  pndmkit.sample(plain, X, schedule=sched, steps=4, prediction=prediction).x)


def test_a_network_model_is_marked_and_refused_a_second_conversion():
    torch = pytest.importorskip("torch")
    from pndmkit.nn import NetworkModel

    sched = DiscreteVP.linear(T=20)
    net = lambda x, t: 0.1 * x  # noqa: E731
    model = NetworkModel(net, sched, prediction="v")
    assert converted_from(model) == "v"
    x = torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"prediction='v' would convert .* the model, a NetworkModel, already "
                                         r"returns eps \(it converts its network's 'v' prediction itself\)"):
        pndmkit.sample(model, x, schedule=sched, steps=4, prediction="v")
    expected = pndmkit.sample(lambda x, t: net(x, None), x, schedule=sched, steps=4, prediction="v").x
    torch.testing.assert_close(pndmkit.sample(model, x, schedule=sched, steps=4).x, expected, rtol=1e-6, atol=1e-6)
