r"""Few-step stability: a check, made once per run from the grid and the method, that warns before a blow-up.

Why some methods blow up on few steps
-------------------------------------
The eps form of the DDIM transfer is ``x' = (alpha'/alpha) x + alpha' (s' - s) e``. Evaluated at the step's
own start point, ``e`` is the model's noise estimate there and DDIM is exact for constant ``eps``. A method
that also evaluates the model at points it *predicted* (Runge-Kutta stages, a predictor-corrector's
predicted point, the pseudo improved Euler warm-up of PLMS / S-PNDM) feeds each prediction's error back
through ``eps``, and the transfer multiplies it by ``alpha' (s - s') ~ alpha'/alpha = sqrt(abar'/abar)``
(the model's ``d eps / d x`` is about 1 at high noise). A step that starts near pure noise spans a huge
ratio: ``abar = 2.4e-9 -> 9.7e-4`` on the first of 50 trailing steps of ``DiscreteVP.cosine()`` is a factor
630, and PRK's stages turn that into end-point errors of 1e2 (``docs/theory.md``, "The data-prediction transfer").
The data form ``x' = (sigma'/sigma) x + alpha' (1 - s'/s) d`` multiplies errors in the data estimate
``d`` by at most ``alpha' <= 1``: the same estimators with :class:`~pndmkit.transfers.DataTransfer`
(``f-pndm-x0``, ``ipndm-x0``, DPM-Solver++, UniPC) are stable, and so are methods that only combine
evaluations at points of the numerical trajectory itself (DDIM, iPNDM and the other multistep methods).

A classical method whose Runge-Kutta stages take the model's eps at the step's *base* time
(``RungeKutta(derivative="base")``, the official code's FON) multiplies a stage's error by
``c_e(t) / c_e(t_i)``, the ratio of the right-hand side's eps coefficients at the base and stage times
(:meth:`~pndmkit.transfers.Transfer.rebase`), which diverges where ``s`` does (the cosine schedules' top).

The check
---------
:func:`check_stability` derives, without model calls, the largest such factor of a run: per step the
bound ``sqrt(abar'/abar)`` (eps-form pseudo transfers) or ``c_e`` ratio of the step's ends (other
transfers); where a bound exceeds :data:`THRESHOLD` a dry run of the protocol on a scalar state up to that
step tells which steps evaluate at predicted points (and, for rebasing estimators, the exact factor).
:data:`THRESHOLD` is calibrated on the stability sweep of ``tests/test_stability.py`` (every registered
method, schedule, grid kind and ``N`` in 1..50 on the 2-D mixture): every run more than 10x worse than DDIM
on the same grid has a factor above it.

Examples
--------
>>> from pndmkit.methods import METHODS  # the registry passes each method's data form down
>>> from pndmkit.grids import make_grid
>>> from pndmkit.schedules import DiscreteVP
>>> sched = DiscreteVP.cosine()
>>> grid = make_grid(sched, 50, "trailing")
>>> print(check_stability(METHODS["f-pndm"].build(sched), grid))  # doctest: +NORMALIZE_WHITESPACE
f-pndm: step 1 (t = 999 -> 979) spans abar 2.4e-09 -> 0.00097; stage errors are amplified up to 6.3e+02x by
the eps-form transfer (sqrt(abar'/abar)); use f-pndm-x0 (the same estimator on the data-prediction transfer)
>>> check_stability(METHODS["f-pndm-x0"].build(sched), grid) is None
True
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import warnings
from typing import Any, Optional

import numpy as np

from pndmkit.run import start_run

__all__ = ["StabilityWarning", "THRESHOLD", "check_stability", "amplification", "warn_if_unstable"]

#: a step whose stage errors can be amplified more than this many times draws a :class:`StabilityWarning`
THRESHOLD = 10.0


class StabilityWarning(UserWarning):
    """A run whose grid lets a step amplify its stage errors by more than :data:`THRESHOLD` (see module)."""


def _step_bounds(integrator: Any, times: np.ndarray) -> Optional[np.ndarray]:
    """Per step, an upper bound of the factor (no dry run); ``None`` where the transfer cannot amplify."""
    phi = integrator.transfer
    sched = phi.schedule
    if phi.gradient_is_eps:
        alpha = np.asarray(sched.alpha(times), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):  # alpha = 0 at t = 1: the transfer refuses it
            return alpha[1:] / alpha[:-1]
    if phi.kind != "classical":
        return None  # data form: errors in d enter with alpha' <= 1 (module docstring)
    if np.any(np.asarray(sched.alpha(times), dtype=np.float64) == 0.0):
        return None  # alpha = 0 (flow matching at t = 1): only a flow model, whose u is dx/dt itself, can run
    c_e = np.abs([phi.gradient_coefficients(float(t))[1] for t in times])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.maximum(c_e[1:], c_e[:-1]) / np.minimum(c_e[1:], c_e[:-1])
    return np.where(np.isfinite(ratio), ratio, np.inf)


def _recording(phi: Any, rebased: list) -> Any:
    """A copy of ``phi`` whose :meth:`rebase` also records the eps-coefficient ratio it applies."""
    rec = copy.copy(phi)

    def rebase(g: Any, x: Any, t: float, x_base: Any, t_base: float) -> Any:
        ratio = abs(phi.gradient_coefficients(t_base)[1] / phi.gradient_coefficients(t)[1])
        rebased.append(ratio)
        return phi.rebase(g, x, t, x_base, t_base)

    rec.rebase = rebase
    return rec


def amplification(integrator: Any, times: Any, floor: float = THRESHOLD) -> Optional[tuple[float, int, str]]:
    """The largest factor by which a step of this run can amplify errors of the points it predicted.

    Parameters
    ----------
    integrator : Integrator
        The method (its transfer and estimator).
    times : array of float
        The validated grid (decreasing).
    floor : float
        Steps whose bound is at most ``floor`` are not examined (the dry run stops after the last one above).

    Returns
    -------
    (factor, step, cause) or None
        ``factor`` above ``floor``, the 0-based step index, and ``cause``: ``"stages"`` (eps-form transfer,
        evaluations at predicted points) or ``"rebase"`` (stage eps taken at the base time's coefficient).
        ``None`` when no step exceeds ``floor``.
    """
    times = np.asarray(times, dtype=np.float64)
    bounds = _step_bounds(integrator, times)
    if bounds is None or not np.any(bounds > floor):
        return None
    last = int(np.nonzero(bounds > floor)[0][-1])
    rebased: list[float] = []
    probe = dataclasses.replace(integrator, transfer=_recording(integrator.transfer, rebased))
    zero = np.zeros(1)
    with np.errstate(all="ignore"):
        run = start_run(probe, zero, times, prediction="eps", check_finite=False, out_dtype="float64")
        worst: Optional[tuple[float, int, str]] = None
        while run.request is not None and run.index <= last:
            index, (_, t_eval) = run.index, run.request
            rebased.clear()
            predicted = t_eval != float(times[index])
            run = run.tell(zero)
            if integrator.transfer.gradient_is_eps:
                factor, cause = (float(bounds[index]), "stages") if predicted else (0.0, "")
            else:
                factor, cause = max(rebased, default=0.0), "rebase"
            if factor > floor and (worst is None or factor > worst[0]):
                worst = (factor, index, cause)
    return worst


def _alternative(integrator: Any, data_form: str) -> str:
    if integrator.kind == "pseudo" and data_form:
        return f"use {data_form} (the same estimator on the data-prediction transfer)"
    if integrator.kind == "pseudo":
        return ("use the same estimator on the data-prediction transfer (Integrator(estimator, "
                "DataTransfer(schedule)), e.g. f-pndm-x0), or ipndm")
    return "use rk4 (stage derivatives at their own points) or a pseudo method such as ipndm-x0"


def check_stability(integrator: Any, times: Any, data_form: str = "") -> Optional[str]:
    """A warning message naming the cause and the stable alternative, or ``None`` if the run is safe.

    Parameters
    ----------
    integrator : Integrator
        The method.
    times : array of float
        The grid of the run (validated, decreasing).
    data_form : str
        Name of a method with the same estimator on the data-prediction transfer, suggested as the remedy
        (the registry passes it down as :attr:`pndmkit.integrator.Integrator.data_form`); default: that
        attribute of ``integrator``, or a generic remedy.

    Returns
    -------
    str or None
        E.g. ``"f-pndm: step 1 (t = 999 -> 979) spans abar 2.4e-09 -> 0.00097; stage errors are amplified up
        to 6.3e+02x by the eps-form transfer (sqrt(abar'/abar)); use f-pndm-x0 (...)"``.
    """
    worst = amplification(integrator, times)
    if worst is None:
        return None
    data_form = data_form or getattr(integrator, "data_form", "")
    factor, i, cause = worst
    sched = integrator.transfer.schedule
    t, t_next = float(times[i]), float(times[i + 1])
    name = integrator.name or f"Integrator({type(integrator.estimator).__name__}, {type(integrator.transfer).__name__})"
    where = f"step {i + 1} (t = {t:.4g} -> {t_next:.4g})"
    if cause == "stages":
        ab, ab_next = (float(sched.alpha(u)) ** 2 for u in (t, t_next))
        return (f"{name}: {where} spans abar {ab:.2g} -> {ab_next:.2g}; stage errors are amplified up to "
                f"{factor:.2g}x by the eps-form transfer (sqrt(abar'/abar)); {_alternative(integrator, data_form)}")
    return (f"{name}: {where} takes its stages' eps at the base time's coefficient, which amplifies stage "
            f"errors up to {factor:.2g}x; {_alternative(integrator, data_form)}")


def _outside_frames() -> int:
    """``stacklevel`` of the first caller outside pndmkit (so the warning points at the user's line); the frames
    of ``torch._dynamo`` are skipped too (``outside_graph`` runs ``Integrator.start`` through its wrapper)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("pndmkit", "torch._dynamo")):
        frame, level = frame.f_back, level + 1
    return level


def warn_if_unstable(integrator: Any, times: Any, data_form: str = "") -> None:
    """Issue a :class:`StabilityWarning` with :func:`check_stability`'s message if it has one."""
    message = check_stability(integrator, times, data_form)
    if message is not None:
        warnings.warn(message, StabilityWarning, stacklevel=_outside_frames())
