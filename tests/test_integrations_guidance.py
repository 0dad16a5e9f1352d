"""Classifier-free guidance (pndmkit.models.guided) with pndmkit.sample(model_kwargs=...), numpy only."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pndmkit
from pndmkit.models import guided
from pndmkit.schedules import LinearVP

SCHED = LinearVP()
MEANS = np.array([[2.0, -1.0], [-1.5, 0.5]])  # class-conditional data: class k ~ N(MEANS[k], 0.2 I)


def eps_class(x, t, label):
    """Exact eps of class ``label`` (one label per batch row); label -1 is the unconditional 50/50 mixture."""
    a2 = float(SCHED.abar(t))
    a, var = math.sqrt(a2), a2 * 0.2 + 1 - a2
    diff = x[:, None, :] - a * MEANS[None]                          # (batch, class, dim)
    logp = -0.5 * (diff**2).sum(-1) / var
    w = np.exp(logp - logp.max(1, keepdims=True))
    w = np.where(label[:, None] < 0, w, np.eye(2)[np.maximum(label, 0)])
    w = w / w.sum(1, keepdims=True)
    return math.sqrt(1 - a2) * (w[..., None] * diff).sum(1) / var


def v_class(x, t, label):
    a2 = float(SCHED.abar(t))
    eps = eps_class(x, t, label)
    x0 = (x - math.sqrt(1 - a2) * eps) / math.sqrt(a2)
    return math.sqrt(a2) * eps - math.sqrt(1 - a2) * x0


X = np.random.default_rng(0).standard_normal((6, 2))
COND, UNCOND = {"label": np.array([0, 1, 0, 1, 0, 1])}, {"label": np.full(6, -1)}


def run(model, **kw):
    return pndmkit.sample(model, X, schedule=SCHED, method="f-pndm-s", steps=20, model_kwargs=COND, **kw).x


def counted(model, calls):
    def wrapped(x, t, **kw):
        calls.append(x.shape[0])
        return model(x, t, **kw)
    return wrapped


def test_scale_one_is_the_conditional_model_in_single_calls():
    calls = []
    out = run(guided(counted(eps_class, calls), 1.0, UNCOND))
    np.testing.assert_array_equal(out, run(eps_class))
    assert set(calls) == {6}


def test_guidance_is_one_batched_call_combined_in_eps_form():
    calls = []
    out = run(guided(counted(eps_class, calls), 3.0, UNCOND))
    assert set(calls) == {12} and len(calls) == pndmkit.METHODS["f-pndm-s"].nfe(20)

    def by_hand(x, t, label):
        e_u = eps_class(x, t, np.full(6, -1))
        return e_u + 3.0 * (eps_class(x, t, label) - e_u)

    np.testing.assert_allclose(out, run(by_hand), rtol=1e-12, atol=1e-12)
    assert np.abs(out - run(eps_class)).max() > 0.1  # and it is not the conditional model


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_v_network_gives_the_eps_networks_samples(scale):
    eps_out = run(guided(eps_class, scale, UNCOND))
    v_out = run(guided(v_class, scale, UNCOND, schedule=SCHED, prediction="v"))
    np.testing.assert_allclose(v_out, eps_out, rtol=1e-10, atol=1e-10)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="schedule"):
        guided(v_class, 2.0, UNCOND, prediction="v")
    with pytest.raises(ValueError, match="scale"):
        guided(eps_class, float("nan"), UNCOND)
    with pytest.raises(TypeError, match="uncond"):
        guided(eps_class, 2.0, [1])
    with pytest.raises(TypeError, match="label"):
        guided(eps_class, 2.0, UNCOND)(X, 0.5)
    with pytest.raises(TypeError, match="model_kwargs"):
        pndmkit.sample(eps_class, X, schedule=SCHED, model_kwargs=[("label", 1)])
