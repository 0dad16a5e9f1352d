r"""Conformance checks every registered method must pass: use them on your own methods.

Each function takes a registry name (built-in or added by :func:`pndmkit.register_method`) and raises
``AssertionError`` with the measured numbers if the method breaks a property pndmkit guarantees. pndmkit's
own registry-driven tests are these functions parametrized over :data:`pndmkit.METHODS`, so a method
registered before the tests are collected is checked like a built-in one.

* :func:`check_nfe` the evaluations a run asks for equal the model calls and ``spec.nfe(N)``;
* :func:`check_ask_tell` driving a run by hand gives ``solve``'s result bit for bit, also after a pickle;
* :func:`check_point_mass` pseudo methods are exact for data concentrated at a point (``eps`` is constant
  along the flow and the transfer is exact for the true ``eps``); classical ones are not required to be;
* :func:`check_predictions` eps, x0, v and score versions of one model give the same samples;
* :func:`check_torch` numpy float64 and torch float64 give the same samples;
* :func:`check_order` the measured order is within ``tol`` of the declared one (a study of
  :mod:`pndmkit.studies.convergence`; seconds per method).

Examples
--------
>>> from pndmkit.testing import check_nfe, check_point_mass
>>> check_nfe("f-pndm"); check_point_mass("pec-s", mu=0.7, z=-1.3)
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, Optional, Sequence

import numpy as np

from pndmkit.methods import get_method
from pndmkit.schedules import LinearVP, NoiseSchedule

__all__ = ["check_nfe", "check_ask_tell", "check_point_mass", "check_predictions", "check_torch", "check_order",
           "gaussian_eps"]

SIGMA = 0.5


def gaussian_eps(schedule: NoiseSchedule, sigma: float = SIGMA, bend: float = 0.3) -> Callable[[Any, float], Any]:
    """A smooth nonlinear eps model (exact for data ``N(0, sigma^2 I)`` when ``bend = 0``); works on numpy and torch."""

    def model(x: Any, t: float) -> Any:
        a = float(schedule.abar(t))
        tanh = np.tanh if isinstance(x, np.ndarray) else type(x).tanh
        return (1 - a) ** 0.5 * (x + bend * tanh(2 * x)) / (a * sigma**2 + 1 - a)

    return model


def _fixed(name: str) -> Any:
    spec = get_method(name)
    if spec.adaptive:
        raise ValueError(f"{name!r} is adaptive: this check needs a fixed-step method")
    return spec


def check_nfe(name: str, steps: Sequence[int] = (1, 2, 3, 5, 12)) -> None:
    """Model calls == ``Solution.nfe`` == ``spec.nfe(N)`` for each ``N`` in ``steps``."""
    from pndmkit.sampling import sample

    spec = _fixed(name)
    schedule = LinearVP()
    model = gaussian_eps(schedule)
    for n in steps:
        calls = [0]

        def counted(x: Any, t: float) -> Any:
            calls[0] += 1
            return model(x, t)

        sol = sample(counted, np.ones((2, 3)), schedule=schedule, method=name, steps=n)
        assert sol.nfe == calls[0] == spec.nfe(n), (name, n, sol.nfe, calls[0], spec.nfe(n))
        assert len(sol.times) == n + 1 and np.all(np.isfinite(sol.x)), (name, n)


def check_ask_tell(name: str, steps: int = 7) -> None:
    """A hand-driven run, pickled half-way, ends bit-identical to ``solve`` with the same evaluations."""
    from pndmkit.grids import make_grid

    spec = _fixed(name)
    schedule = LinearVP()
    model = gaussian_eps(schedule)
    integrator = spec.build(schedule)
    grid = make_grid(schedule, steps)
    x = np.array([0.4, -1.1, 2.0])
    reference = integrator.solve(model, x, grid)
    run, asked = integrator.start(x, grid), 0
    while not run.done:
        if asked == reference.nfe // 2:
            run = pickle.loads(pickle.dumps(run))
        run = run.tell(model(*run.ask()))
        asked += 1
    out = run.solution()
    assert asked == out.nfe == reference.nfe, (name, asked, out.nfe, reference.nfe)
    np.testing.assert_array_equal(out.x, reference.x, err_msg=name)


def check_point_mass(name: str, mu: float = 0.7, z: float = -1.3, grid: Optional[Sequence[float]] = None,
                     rtol: float = 1e-9) -> None:
    """For data at ``mu``, ``eps = (x - sqrt(abar) mu)/sqrt(1 - abar)`` is constant along the flow, so a
    pseudo method lands exactly on ``sqrt(abar) mu + sqrt(1 - abar) z`` on any grid (classical: skipped)."""
    from pndmkit.sampling import sample

    spec = _fixed(name)
    if spec.kind != "pseudo":
        return
    schedule = LinearVP()
    times = np.asarray(grid if grid is not None else [1.0, 0.8, 0.45, 0.3, 0.12, 0.05, 0.011, 1e-3], dtype=float)

    def eps(x: Any, t: float) -> Any:
        a = float(schedule.abar(t))
        return (x - a**0.5 * mu) / (1 - a) ** 0.5

    a0, a1 = float(schedule.abar(times[0])), float(schedule.abar(times[-1]))
    sol = sample(eps, np.array([a0**0.5 * mu + (1 - a0) ** 0.5 * z]), schedule=schedule, method=name, grid=times)
    np.testing.assert_allclose(sol.x, a1**0.5 * mu + (1 - a1) ** 0.5 * z, rtol=rtol, atol=rtol, err_msg=name)


def check_predictions(name: str, steps: int = 6, rtol: float = 1e-10) -> None:
    """Models predicting eps, x0, v and score (the same network in other units) give the same samples."""
    from pndmkit.sampling import sample

    _fixed(name)
    schedule = LinearVP()
    model = gaussian_eps(schedule)

    def converted(kind: str) -> Callable[[Any, float], Any]:
        def out(x: Any, t: float) -> Any:
            a = float(schedule.abar(t))
            e = model(x, t)
            x0 = (x - (1 - a) ** 0.5 * e) / a**0.5
            return {"x0": x0, "v": a**0.5 * e - (1 - a) ** 0.5 * x0, "score": -e / (1 - a) ** 0.5}[kind]
        return out

    x = np.array([0.3, -0.9, 1.7])
    ref = sample(model, x, schedule=schedule, method=name, steps=steps).x
    for kind in ("x0", "v", "score"):
        got = sample(converted(kind), x, schedule=schedule, method=name, steps=steps, prediction=kind).x
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol, err_msg=f"{name}, prediction={kind}")


def check_torch(name: str, steps: int = 6) -> None:
    """numpy float64 and torch float64 runs agree to 1e-12 (skipped without torch)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    from pndmkit.sampling import sample

    _fixed(name)
    schedule = LinearVP()
    model = gaussian_eps(schedule)
    x = np.array([0.3, -0.9, 1.7])
    a = sample(model, x, schedule=schedule, method=name, steps=steps).x
    b = sample(model, torch.tensor(x), schedule=schedule, method=name, steps=steps).x
    assert isinstance(b, torch.Tensor) and b.dtype == torch.float64, (name, type(b))
    np.testing.assert_allclose(b.numpy(), a, rtol=1e-12, atol=1e-12, err_msg=name)


def check_order(name: str, study: Any = None, steps: Sequence[int] = (100, 200, 400, 800), tol: float = 0.3) -> float:
    """Measured global order within ``tol`` of the declared one; returns the measured order.

    Default study: gmm2d, cosine VP, ``t``-uniform grid from ``t = 0.9`` to ``s = 0.1`` (mid-trajectory,
    so that low-order ramps and warm-ups show their formal order).
    """
    from pndmkit.studies.convergence import make_study, sweep

    spec = _fixed(name)
    study = study if study is not None else make_study("gmm2d", "cosine-vp", t_start=0.9, batch=4)
    result = sweep(study, name, list(steps))
    assert result.measured_order is not None and abs(result.measured_order - spec.order) <= tol, (
        name, spec.order, result.measured_order, result.errors)
    return float(result.measured_order)
