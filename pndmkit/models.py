r"""Model adapters: everything a sampler combines is a noise prediction ``eps``.

A model is any callable ``model(x, t)`` with ``t`` a Python float in the schedule's time units. Networks
trained to predict ``x0``, ``v``, the score or a flow velocity are converted to ``eps`` *at each evaluation*,
before any combination across stages or steps, with the identities of ``x = alpha x0 + sigma eps``
(VP: ``alpha = sqrt(abar)``, ``sigma = sqrt(1 - abar)``):

* ``x0``: ``eps = (x - alpha x0) / sigma``;
* ``v = alpha eps - sigma x0`` (VP schedules only): ``eps = sigma x + alpha v``;
* ``score``: ``eps = -sigma score``;
* ``flow``, the velocity ``u = dx_t/dt = alpha' x0 + sigma' eps`` (on flow matching ``u = eps - x0``):
  ``eps = (alpha u - alpha' x) / (alpha sigma' - sigma alpha')`` (on flow matching ``eps = x + (1 - t) u``).

A prediction type the schedule's family does not define (``v`` off VP schedules) is refused
(:data:`pndmkit.schedules.FAMILIES`).

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
from functools import partial
from typing import Any, Callable

from pndmkit._checks import with_article
from pndmkit._backend import all_finite, dtype_name, is_torch, lincomb, match_dtype
from pndmkit.schedules import NoiseSchedule, VPSchedule, same_schedule

__all__ = ["Model", "PREDICTIONS", "check_prediction", "check_output", "check_conversion_schedule", "CountedModel", "eps_coefficients", "undefined_eps_times", "to_eps",
           "as_eps", "shift_time", "can_shift_time", "converted_from"]

#: the model contract: a callable ``model(x, t)`` returning a prediction shaped like ``x`` (``eps`` unless told
#: otherwise), ``t`` a Python float in the schedule's time units. The model must not write into ``x`` (a numpy ``x``
#: is read-only; a tensor written in place is refused). It may return the same array every call (a preallocated
#: output buffer, a CUDA graph's static output): the run copies an output it keeps (multistep history,
#: Runge-Kutta stages) whenever the caller can still reach its memory, and keeps a new array the model hands
#: over (held by nothing else) as it is, without a copy (:meth:`pndmkit.run.Run.tell`)
Model = Callable[[Any, float], Any]

PREDICTIONS = ("eps", "x0", "v", "score", "flow")


def check_output(e: Any, like: Any, t: float, evaluation: int, check_finite: bool) -> Any:
    """Validate one model output against the state ``like``; return it in the state's dtype.

    Parameters
    ----------
    e : array
        The model's output at ``(x, t)``.
    like : array
        The sampler state it must match (shape and array type; another floating dtype is cast to ``like``'s).
    t : float
        Evaluation time (for the messages).
    evaluation : int
        1-based number of this evaluation in the run (for the messages).
    check_finite : bool
        Also refuse NaN/inf entries (synchronises a GPU device).

    Raises
    ------
    ValueError
        Wrong shape (or not an array), or a tensor on another device than ``like``.
    TypeError
        A different array type (numpy vs torch) or a non-floating dtype.
    FloatingPointError
        ``check_finite`` and a non-finite entry.
    """
    shape = tuple(like.shape)
    if tuple(getattr(e, "shape", ())) != shape or not hasattr(e, "dtype"):
        got = (f"{type(e).__name__} of shape {tuple(e.shape)}" if hasattr(e, "shape") and hasattr(e, "dtype")
               else f"{with_article(type(e).__name__)}, not an array")
        raise ValueError(f"model output must be an array of shape {shape} like x; got {got} at t={t}")
    if type(e) is not type(like):
        raise TypeError(f"model output must be {with_article(type(like).__name__)} like x, got {type(e).__name__} "
                        f"at t={t}")
    if is_torch(e) and e.device != like.device:  # e.g. torch's 'meta' device, which holds no values
        raise ValueError(f"model output is on device {e.device}, x on {like.device}, at t={t}: return the output on "
                         f"x's device")
    if e.dtype != like.dtype:
        if "float" not in dtype_name(e):
            raise TypeError(f"model output must have a floating dtype, got {dtype_name(e)} at t={t}")
        e = match_dtype(e, like)
    if check_finite and not all_finite(e):
        raise FloatingPointError(f"model output is not finite at t={t} (evaluation {evaluation})")
    return e


class CountedModel:
    """A model wrapped to count its evaluations and validate each output (:func:`check_output`).

    Drivers that call a model themselves (the adaptive solver) use it so that NFE is counted where the model
    is called, never declared.

    Parameters
    ----------
    model : callable
        ``model(x, t)``.
    like : array
        The state every output must match.
    check_finite : bool
        Refuse NaN/inf outputs.

    Attributes
    ----------
    nfe : int
        Evaluations so far.

    Examples
    --------
    >>> import numpy as np
    >>> counted = CountedModel(lambda x, t: 0.5 * x, np.zeros(2), check_finite=True)
    >>> counted(np.ones(2), 0.3).tolist(), counted.nfe
    ([0.5, 0.5], 1)
    """

    __slots__ = ("model", "like", "check_finite", "nfe")

    def __init__(self, model: Model, like: Any, check_finite: bool) -> None:
        self.model, self.like, self.check_finite, self.nfe = model, like, bool(check_finite), 0

    def __call__(self, x: Any, t: float) -> Any:
        self.nfe += 1
        return check_output(self.model(x, t), self.like, t, self.nfe, self.check_finite)


def check_prediction(prediction: Any, schedule: NoiseSchedule | None = None) -> str:
    """Return ``prediction`` if it is one of :data:`PREDICTIONS` (and, given ``schedule``, one its family
    defines), else raise ``ValueError`` naming it."""
    if not isinstance(prediction, str) or prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    if schedule is not None and prediction not in schedule.predictions:
        hint = ""
        if prediction == "v":  # 'flow' is dx/dt of this schedule; eps - x0 only where alpha = 1 - t, sigma = t
            own = ("prediction='flow' is the schedule's own velocity u = dx/dt = alpha'(t) x0 + sigma'(t) eps "
                   "in its time t")
            if schedule.family == "flow":
                own += ", which is eps - x0 here (alpha = 1 - t, sigma = t)"
            else:
                own += (" (sigma'(t) eps here, where alpha = 1)" if schedule.family == "ve" else "") + \
                    ", not a flow-matching network's eps - x0, which is dx/dt only where alpha = 1 - t and sigma = t " \
                    "(FlowMatching)"
            hint = f" (v = alpha eps - sigma x0 is the velocity of variance-preserving schedules; {own})"
        raise ValueError(f"prediction={prediction!r} is not defined for {schedule!r}, a {schedule.family!r} schedule; "
                         f"it defines {schedule.predictions}{hint}")
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
        Gives ``alpha(t)``, ``sigma(t)`` (and their derivatives for ``"flow"``).
    prediction : {"eps", "x0", "v", "score", "flow"}

    Raises
    ------
    ValueError
        An unknown prediction or one the schedule's family does not define, an ``x0`` prediction where
        ``sigma = 0`` or a ``flow`` prediction where ``dx/dt`` is singular (``eps`` is undefined there).
    """
    check_prediction(prediction, schedule)
    if prediction == "eps":
        return output
    return lincomb(eps_coefficients(schedule, t, prediction), (x, output))


def eps_coefficients(schedule: NoiseSchedule, t: float, prediction: str, min_sigma: float = 0.0
                     ) -> tuple[float, float]:
    """``(c_x, c_out)`` with ``eps = c_x x + c_out output`` for a model predicting ``prediction`` at ``t``.

    The one place the conversions of the module docstring are written (:func:`to_eps` and the network adapters
    of :mod:`pndmkit.nn` use it). ``min_sigma`` clamps ``sigma`` from below for ``x0`` predictions (a network
    evaluated where ``abar = 1`` still gives a finite, if meaningless, eps); 0 refuses that point instead.

    Raises
    ------
    ValueError
        An unknown prediction, an ``x0`` prediction where ``sigma = 0`` (``min_sigma = 0``), or a ``flow``
        prediction where ``dx/dt`` is singular.
    """
    if prediction == "eps":
        return 0.0, 1.0
    if isinstance(schedule, VPSchedule) and prediction != "flow":  # VP: from log abar, without cancellation
        la = float(schedule.log_abar(t))
        one_minus = -math.expm1(la)
        if prediction == "x0" and min_sigma > 0.0 and one_minus < min_sigma * min_sigma:
            one_minus = min_sigma * min_sigma
            alpha, sigma = math.sqrt(1.0 - one_minus), min_sigma
        else:
            alpha, sigma = math.exp(0.5 * la), math.sqrt(one_minus)
        if prediction == "v":
            return sigma, alpha
    else:
        alpha, sigma = float(schedule.alpha(t)), float(schedule.sigma(t))
        if prediction == "x0" and min_sigma > 0.0:
            sigma = max(sigma, min_sigma)
    if prediction == "score":
        return 0.0, -sigma
    if prediction == "x0":
        if sigma == 0.0:
            raise ValueError(f"an x0-prediction model cannot give eps at t={t}, where sigma = 0; end the grid earlier")
        return 1.0 / sigma, -alpha / sigma
    if prediction != "flow":
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    dalpha, dsigma = float(schedule.dalpha(t)), float(schedule.dsigma(t))
    det = alpha * dsigma - sigma * dalpha  # alpha^2 ds/dt > 0
    if not (math.isfinite(det) and det > 0):
        raise ValueError(f"a flow-prediction model cannot give eps at t={t}, where dx/dt is singular "
                         f"(alpha sigma' - sigma alpha' = {det!r}); end the grid earlier")
    return -dalpha / det, alpha / det


def undefined_eps_times(schedule: NoiseSchedule, times: Any, prediction: str) -> list[float]:
    """The times among ``times`` where a ``prediction`` model gives no ``eps`` (:func:`eps_coefficients` raises).

    An ``x0`` prediction has none where ``sigma = 0`` (``abar = 1``, ``t = -1`` of a default
    :class:`~pndmkit.schedules.DiscreteVP` grid), a ``flow`` prediction none where ``dx/dt`` is singular.
    Given the evaluation times of a run (:meth:`pndmkit.Integrator.evaluation_times`) it says before any model
    call whether the run would fail at one of them. ``eps``, ``v`` and ``score`` predictions are defined
    everywhere (an empty list).

    >>> from pndmkit.schedules import DiscreteVP
    >>> undefined_eps_times(DiscreteVP.linear(), [999.0, 500.0, 0.0, -1.0], "x0")
    [-1.0]
    """
    check_prediction(prediction, schedule)
    if prediction not in ("x0", "flow"):
        return []
    bad = []
    for t in dict.fromkeys(float(v) for v in times):
        try:
            eps_coefficients(schedule, t, prediction)
        except ValueError:
            bad.append(t)
    return bad


def converted_from(model: Any) -> str | None:
    """The prediction that a pndmkit wrapper converts to ``eps`` (``None`` for any other model).

    A model built by :func:`as_eps`, :func:`guided` or :class:`pndmkit.nn.NetworkModel` already returns
    ``eps``: it carries the attribute ``converted_from``, the kind its network predicts (``"eps"`` included).
    ``functools.partial`` objects are looked through (``pndmkit.sample`` binds ``model_kwargs`` that way).
    Converting such a model's output again (``sample(guided(...), prediction="flow")``) would apply the
    conversion twice; :func:`as_eps` refuses it.

    >>> import numpy as np
    >>> g = guided(lambda x, t, c: x * c, 2.0, {"c": np.zeros(1)})
    >>> converted_from(g), converted_from(lambda x, t: x)
    ('eps', None)
    """
    while isinstance(model, partial):
        model = model.func
    found = getattr(model, "converted_from", None)
    return found if isinstance(found, str) else None


def check_conversion_schedule(model: Any, schedule: NoiseSchedule) -> None:
    """Refuse a wrapper that converts its network's output with another schedule than the one sampled.

    :func:`guided`, :func:`as_eps` and :class:`pndmkit.nn.NetworkModel` convert a network's ``x0``, ``v`` or
    ``flow`` output to ``eps`` with the schedule they were given; sampled on another schedule, the conversion
    reads ``alpha`` and ``sigma`` of the wrong process (a flow wrapper on a DDPM table evaluates flow matching at
    ``t = 999``). A wrapper whose network predicts ``eps`` converts nothing and is not checked.

    Raises
    ------
    ValueError
        The wrapper's schedule is not ``schedule`` (:func:`pndmkit.schedules.same_schedule`: the same process,
        equal schedules built separately included).
    """
    source = converted_from(model)
    inner = model
    while isinstance(inner, partial):
        inner = inner.func
    theirs = getattr(inner, "schedule", None)
    if source in (None, "eps") or not isinstance(theirs, NoiseSchedule):
        return
    if not same_schedule(theirs, schedule):
        raise ValueError(f"the model, {_wrapper_label(model)}, converts its network's {source!r} prediction to eps "
                         f"with {theirs!r}, but it is sampled on schedule={schedule!r}: build the wrapper with the "
                         f"schedule you sample on")


def _wrapper_label(model: Any) -> str:
    while isinstance(model, partial):
        model = model.func
    name = getattr(model, "__name__", type(model).__name__)
    return {"guided_model": "guided(...)", "eps_model": "as_eps(...)"}.get(name, with_article(type(model).__name__))


def as_eps(model: Callable[[Any, float], Any], schedule: NoiseSchedule, prediction: str = "eps"
           ) -> Callable[[Any, float], Any]:
    """Return a model that predicts ``eps`` from one that predicts ``prediction`` (:func:`to_eps` per call).

    Parameters
    ----------
    model : callable
        ``model(x, t)``.
    schedule : NoiseSchedule
        Gives ``abar(t)`` for the conversion.
    prediction : {"eps", "x0", "v", "score", "flow"}
        What ``model`` predicts (one the schedule's family defines).

    Raises
    ------
    ValueError
        ``prediction`` other than ``"eps"`` for a model that already returns ``eps`` (:func:`converted_from`:
        a :func:`guided` or :func:`as_eps` model, a ``NetworkModel``): its output would be converted twice.
    """
    if not callable(model):
        raise TypeError(f"model must be callable as model(x, t), got {type(model).__name__}")
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    check_prediction(prediction, schedule)
    check_conversion_schedule(model, schedule)
    if prediction == "eps":
        return model
    source = converted_from(model)
    if source is not None:
        raise ValueError(
            f"prediction={prediction!r} would convert the model's output a second time: the model, "
            f"{_wrapper_label(model)}, already returns eps (it converts its network's {source!r} prediction "
            f"itself); leave prediction='eps' (the default) and give the network's prediction to the wrapper only")

    def eps_model(x: Any, t: float) -> Any:
        return to_eps(model(x, t), x, t, schedule, prediction)

    eps_model.__wrapped__ = model  # type: ignore[attr-defined]
    eps_model.converted_from = prediction  # type: ignore[attr-defined]
    eps_model.schedule = schedule  # type: ignore[attr-defined]  (the schedule its conversion uses)
    # the network told t - offset, its output converted at the sample's level t (shift_time)
    eps_model.with_time_offset = lambda offset: as_eps(shift_time(model, offset), schedule, prediction)  # type: ignore[attr-defined]
    eps_model.unconverted = lambda: model  # type: ignore[attr-defined]  (pndmkit.sample from alpha = 0)
    return eps_model


def _converts(model: Any) -> bool:
    """Whether ``model`` is a wrapper converting an ``x0``, ``v``, ``score`` or ``flow`` output to ``eps`` itself."""
    return converted_from(model) not in (None, "eps")


def can_shift_time(model: Any) -> bool:
    """Whether :func:`shift_time` can tell ``model``'s network ``t - offset`` while keeping the sample's level ``t``.

    Parameters
    ----------
    model : callable
        A model ``model(x, t, **kwargs)``.

    Returns
    -------
    bool
        True for a model that converts nothing itself (:func:`converted_from` is ``None`` or ``"eps"``: it is
        simply called at ``t - offset``, whatever it is, ``functools.partial`` objects included) and for a
        converting wrapper that offers ``with_time_offset(offset)`` (:func:`as_eps`, :func:`guided`,
        :class:`pndmkit.nn.NetworkModel`), also inside a ``functools.partial`` that binds keyword arguments
        only; False otherwise (a foreign converting wrapper, or a converting wrapper inside a partial that binds
        positional arguments).
    """
    if not _converts(model):
        return True
    while isinstance(model, partial):
        if model.args:
            return False
        model = model.func
    return callable(getattr(model, "with_time_offset", None))


def shift_time(model: Callable[..., Any], offset: float) -> Callable[..., Any]:
    """A model whose network is told ``t - offset`` while its output stays that of the sample at level ``t``.

    The official PNDM code gives the network index ``t - 1`` for a sample at the noise level of index ``t``
    (``offset = 1``, ``model_time_offset`` of :func:`pndmkit.sample`). A model that returns its network's output
    unconverted is called at ``t - offset`` (any callable: a ``functools.partial`` with bound positional
    arguments too). A wrapper that converts an ``x0``, ``v`` or ``flow`` output to ``eps`` itself must convert
    with the sample's ``abar(t)``, not at the time its network is told, so it is rebuilt by its
    ``with_time_offset(offset)`` (:func:`as_eps`, :func:`guided`, :class:`pndmkit.nn.NetworkModel` offer it);
    a ``functools.partial`` of one keeps its bound keyword arguments (conditioning).

    Parameters
    ----------
    model : callable
        ``model(x, t, **kwargs)``.
    offset : float
        Subtracted from the time the network is told.

    Returns
    -------
    callable
        ``model`` itself for ``offset == 0``, else the shifted model.

    Raises
    ------
    ValueError
        A converting wrapper that cannot be rebuilt (:func:`can_shift_time` is False): shifting it from outside
        would convert at ``t - offset``.
    """
    if offset == 0:
        return model
    if _converts(model):
        if isinstance(model, partial) and not model.args:
            return partial(shift_time(model.func, offset), **model.keywords)
        hook = getattr(model, "with_time_offset", None)
        if not callable(hook):
            raise ValueError(f"{_wrapper_label(model)} converts its network's {converted_from(model)!r} prediction "
                             f"to eps itself and offers no with_time_offset(offset) (or binds positional "
                             f"arguments in a functools.partial): called at t - {offset:g} it would convert at "
                             f"that time, not at the sample's level t")
        return hook(offset)

    def shifted(x: Any, t: float, **kwargs: Any) -> Any:
        return model(x, t - offset, **kwargs)

    return shifted


# -- classifier-free guidance ------------------------------------------------------------------------------
__all__ += ["guided"]


def _batch(a: Any, b: Any) -> Any:
    """``[a, b]`` stacked along the batch axis (numpy or torch)."""
    if hasattr(a, "new_empty"):  # torch
        import torch

        return torch.cat([a, b])
    import numpy as np

    return np.concatenate([a, b])


def guided(model: Callable[..., Any], scale: float, uncond: dict[str, Any], *, schedule: NoiseSchedule | None = None,
           prediction: str = "eps") -> Callable[..., Any]:
    r"""Classifier-free guidance of a conditional model: ``eps_u + scale (eps_c - eps_u)`` at every evaluation.

    The returned model ``guided_model(x, t, **cond)`` makes one batched network call
    ``model([x, x], t, **{k: [uncond[k], cond[k]]})`` (unconditional half first, as diffusers' pipelines
    batch it), converts both halves to ``eps`` at ``(x, t)`` and combines them there, before a sampler
    combines anything across stages or steps. With ``scale = 1`` it is exactly the conditional model, one
    unbatched call. Pass the conditioning through ``pndmkit.sample(..., model_kwargs=cond)``.

    Parameters
    ----------
    model : callable
        ``model(x, t, **kwargs)`` returning a prediction of kind ``prediction`` with the batch of ``x``.
    scale : float
        Guidance scale ``w`` (1: conditional, 0: unconditional).
    uncond : dict
        The keyword arguments of the unconditional call that replace the conditional ones (e.g. the empty
        prompt's embeddings), each batched like ``x``; other keyword arguments are passed to both halves.
    schedule : NoiseSchedule, optional
        Needed to convert a prediction other than ``eps``.
    prediction : {"eps", "x0", "v", "score", "flow"}
        What ``model`` predicts; the guided model returns ``eps`` and says so (``converted_from``): pass it to
        ``pndmkit.sample`` with the default ``prediction="eps"``, which refuses any other prediction for it.

    Raises
    ------
    TypeError, ValueError
        A model that is not callable, a non-finite scale, an ``uncond`` that is not a dict, or a prediction
        other than ``eps`` without a schedule; at call time a conditioning argument missing for a key of
        ``uncond``.

    Examples
    --------
    >>> import numpy as np
    >>> model = lambda x, t, c: x * c                 # a "network" conditioned on c
    >>> g = guided(model, 3.0, uncond={"c": np.array([[0.0]])})
    >>> g(np.array([[2.0]]), 0.5, c=np.array([[1.0]])).tolist()   # 0 + 3 (2 - 0)
    [[6.0]]
    """
    if not callable(model):
        raise TypeError(f"model must be callable as model(x, t, **kwargs), got {type(model).__name__}")
    if isinstance(scale, bool) or not hasattr(scale, "__float__"):
        raise TypeError(f"scale must be a finite number, got {scale!r}")
    if not math.isfinite(float(scale)):
        raise ValueError(f"scale must be a finite number, got {scale!r}")
    scale = float(scale)
    if not isinstance(uncond, dict):
        raise TypeError(f"uncond must be a dict of the unconditional call's keyword arguments, got "
                        f"{type(uncond).__name__}")
    check_prediction(prediction)
    if prediction != "eps" and not isinstance(schedule, NoiseSchedule):
        raise ValueError(f"prediction={prediction!r} needs schedule= (a NoiseSchedule) to convert to eps")

    def eps(output: Any, x: Any, t: float) -> Any:
        return output if prediction == "eps" else to_eps(output, x, t, schedule, prediction)  # type: ignore[arg-type]

    def guided_model(x: Any, t: float, **cond: Any) -> Any:
        missing = [key for key in uncond if key not in cond]
        if missing:
            raise TypeError(f"the guided model needs the conditional {', '.join(missing)} (keys of uncond); pass "
                            f"them as keyword arguments, e.g. pndmkit.sample(..., model_kwargs=...)")
        if scale == 1.0:
            return eps(model(x, t, **cond), x, t)
        batched = {key: _batch(uncond[key], value) if key in uncond else value for key, value in cond.items()}
        out = model(_batch(x, x), t, **batched)
        n = x.shape[0]
        e_u, e_c = eps(out[:n], x, t), eps(out[n:], x, t)
        return e_u + scale * (e_c - e_u)

    guided_model.__wrapped__ = model  # type: ignore[attr-defined]
    guided_model.converted_from = prediction  # type: ignore[attr-defined]  (it returns eps: converted_from)
    guided_model.schedule = schedule  # type: ignore[attr-defined]  (the schedule its conversion uses)
    # the network told t - offset, both halves converted at the sample's level t (shift_time)
    guided_model.with_time_offset = lambda offset: guided(  # type: ignore[attr-defined]
        shift_time(model, offset), scale, uncond, schedule=schedule, prediction=prediction)
    # the same guidance on the network's own outputs (pndmkit.sample from alpha = 0): the conversion to eps is
    # affine in the output and the guidance weights (1 - scale, scale) sum to 1, so the two commute exactly
    guided_model.unconverted = lambda: guided(model, scale, uncond)  # type: ignore[attr-defined]
    return guided_model
