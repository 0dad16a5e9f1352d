r"""Model adapters: everything a sampler combines is a noise prediction ``eps``.

A model is any callable ``model(x, t)`` with ``t`` a Python float in the schedule's time units. Networks
trained to predict ``x0``, ``v`` or the score are converted to ``eps`` *at each evaluation*, before any
combination across stages or steps, with the identities of ``x = sqrt(abar) x0 + sqrt(1 - abar) eps``:

* ``x0``: ``eps = (x - sqrt(abar) x0) / sqrt(1 - abar)``;
* ``v = sqrt(abar) eps - sqrt(1 - abar) x0``: ``eps = sqrt(1 - abar) x + sqrt(abar) v``;
* ``score``: ``eps = -sqrt(1 - abar) score``.

Combining ``v`` predictions with multistep weights and converting afterwards (as diffusers' PNDM does)
is a different, inconsistent method: the conversion coefficients vary with ``t``.

Examples
--------
>>> import numpy as np
>>> from pndmkit.schedules import LinearVP
>>> sched = LinearVP()
>>> eps_true = lambda x, t: 0.3 * x
>>> def v_model(x, t):
...     a, s = sched.abar(t) ** 0.5, (1 - sched.abar(t)) ** 0.5
...     eps = eps_true(x, t); x0 = (x - s * eps) / a
...     return a * eps - s * x0
>>> x = np.array([1.0, -2.0])
>>> bool(np.allclose(as_eps(v_model, sched, "v")(x, 0.4), eps_true(x, 0.4)))
True
"""

from __future__ import annotations

import math
from typing import Any, Callable

from pndmkit._backend import lincomb
from pndmkit.schedules import NoiseSchedule

__all__ = ["PREDICTIONS", "check_prediction", "to_eps", "as_eps", "shift_time"]

PREDICTIONS = ("eps", "x0", "v", "score")


def check_prediction(prediction: Any) -> str:
    """Return ``prediction`` if it is one of :data:`PREDICTIONS`, else raise ``ValueError`` naming it."""
    if not isinstance(prediction, str) or prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    return prediction


def to_eps(output: Any, x: Any, t: float, schedule: NoiseSchedule, prediction: str) -> Any:
    """Convert one model output at ``(x, t)`` to the noise prediction ``eps`` (formulas in the module doc).

    Parameters
    ----------
    output : array
        The model's prediction of kind ``prediction`` at ``(x, t)``, shape and array type of ``x``.
    x : array
        The point of evaluation.
    t : float
        Its time, in the schedule's units.
    schedule : NoiseSchedule
        Gives ``abar(t)``.
    prediction : {"eps", "x0", "v", "score"}

    Raises
    ------
    ValueError
        An unknown prediction, or an ``x0`` prediction where ``abar = 1`` (``eps`` is undefined there).
    """
    check_prediction(prediction)
    if prediction == "eps":
        return output
    la = float(schedule.log_abar(t))
    a, sigma = math.exp(0.5 * la), math.sqrt(-math.expm1(la))
    if prediction == "v":
        return lincomb((sigma, a), (x, output))
    if prediction == "score":
        return output * (-sigma)
    if sigma == 0.0:
        raise ValueError(f"an x0-prediction model cannot give eps at t={t}, where abar = 1; end the grid earlier")
    return lincomb((1.0 / sigma, -a / sigma), (x, output))


def as_eps(model: Callable[[Any, float], Any], schedule: NoiseSchedule, prediction: str = "eps"
           ) -> Callable[[Any, float], Any]:
    """Return a model that predicts ``eps`` from one that predicts ``prediction`` (:func:`to_eps` per call).

    Parameters
    ----------
    model : callable
        ``model(x, t)``.
    schedule : NoiseSchedule
        Gives ``abar(t)`` for the conversion.
    prediction : {"eps", "x0", "v", "score"}
        What ``model`` predicts.
    """
    if not callable(model):
        raise TypeError(f"model must be callable as model(x, t), got {type(model).__name__}")
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    check_prediction(prediction)
    if prediction == "eps":
        return model

    def eps_model(x: Any, t: float) -> Any:
        return to_eps(model(x, t), x, t, schedule, prediction)

    eps_model.__wrapped__ = model  # type: ignore[attr-defined]
    return eps_model


def shift_time(model: Callable[[Any, float], Any], offset: float) -> Callable[[Any, float], Any]:
    """Call ``model`` at ``t - offset``: the official PNDM code gives the network index ``t`` while it
    reads ``abar`` at ``t + 1`` (``offset = 1``)."""
    if offset == 0:
        return model
    return lambda x, t: model(x, t - offset)
