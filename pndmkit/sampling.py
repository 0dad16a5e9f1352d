r"""``pndmkit.sample``: run any method on any model, schedule and grid, on numpy arrays or torch tensors.

Timestep conventions differ between codebases; :data:`CONVENTIONS` names the ones pndmkit reproduces for
discrete DDPM schedules (grid spacing, ``steps_offset``, final ``abar`` and the time given to the network):

========================  =========  ======  ============  ==================
convention                spacing    offset  final abar    network time
========================  =========  ======  ============  ==================
``ddim`` (default)        leading    0       1 (t = -1)    t
``diffusers-pndm``        leading    1       abar_0        t
``official-pndm``         leading    1       abar_0        t - 1
========================  =========  ======  ============  ==================

Examples
--------
>>> import numpy as np
>>> import pndmkit
>>> from pndmkit.schedules import LinearVP
>>> sol = pndmkit.sample(lambda x, t: 0.5 * x, np.ones((2, 3)), schedule=LinearVP(), method="f-pndm", steps=20)
>>> sol.nfe, sol.x.shape, len(sol.times)
(29, (2, 3), 21)
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import numpy as np
from numpy.typing import NDArray

from pndmkit._backend import check_array
from pndmkit.adaptive import AdaptiveIntegrator
from pndmkit.grids import check_grid, make_grid
from pndmkit.integrator import Callback, Integrator, Solution
from pndmkit.methods import MethodSpec, get_method
from pndmkit.models import as_eps, shift_time
from pndmkit.schedules import NoiseSchedule

__all__ = ["sample", "CONVENTIONS", "resolve_grid"]

#: timestep conventions for discrete schedules: grid options and the network's time offset
CONVENTIONS: dict[str, dict[str, Any]] = {
    "ddim": {"kind": "leading", "offset": 0, "final_alpha": "one", "model_time_offset": 0},
    "diffusers-pndm": {"kind": "leading", "offset": 1, "final_alpha": "first", "model_time_offset": 0},
    "official-pndm": {"kind": "leading", "offset": 1, "final_alpha": "first", "model_time_offset": 1},
}

Method = Union[str, MethodSpec, Integrator, AdaptiveIntegrator]


def resolve_grid(schedule: NoiseSchedule, steps: int, grid: str | Sequence[float] | NDArray[np.float64] | None,
                 **options: Any) -> NDArray[np.float64]:
    """Turn ``grid`` (``None``, a kind name of :func:`~pndmkit.grids.make_grid`, or explicit times) into times."""
    if grid is None or isinstance(grid, str):
        return make_grid(schedule, steps, grid, **options)
    if options.get("t_start") is not None or options.get("t_end") is not None:
        raise ValueError("t_start / t_end cannot be combined with an explicit grid (its first and last times)")
    return check_grid(schedule, grid)


def sample(model: Callable[[Any, float], Any], x_T: Any, *, schedule: NoiseSchedule, method: Method = "f-pndm",
           steps: int = 50, grid: str | Sequence[float] | NDArray[np.float64] | None = None,
           prediction: str = "eps", t_start: float | None = None, t_end: float | None = None,
           convention: str | None = None, model_time_offset: float | None = None,
           callback: Callback | None = None, check_finite: bool = False, **grid_options: Any) -> Solution:
    """Integrate the probability-flow ODE from ``x_T`` with a pseudo (or classical) numerical method.

    Parameters
    ----------
    model : callable
        ``model(x, t)`` returning a prediction of the kind ``prediction``, same shape as ``x``; ``t`` is a
        Python float in the schedule's units (training index for :class:`~pndmkit.schedules.DiscreteVP`).
    x_T : numpy.ndarray or torch.Tensor
        Initial sample at the first time of the grid (noise ``N(0, I)`` at the default start). Floating
        dtype; the state keeps this dtype (model outputs are cast to it).
    schedule : NoiseSchedule
        The noise schedule the model was trained with.
    method : str, MethodSpec or Integrator
        A name in :data:`pndmkit.METHODS` or a hand-built integrator.
    steps : int
        Number of steps ``N`` (ignored when ``grid`` is explicit).
    grid : str or sequence of float, optional
        A grid kind (:data:`pndmkit.grids.GRIDS`) or explicit decreasing times (first = start).
    prediction : {"eps", "x0", "v", "score"}
        What the model predicts; converted to ``eps`` before any combination.
    t_start, t_end : float, optional
        Start and end times of a generated grid (start mid-trajectory by passing ``t_start`` and ``x_t``).
    convention : {"ddim", "diffusers-pndm", "official-pndm"}, optional
        Timestep convention for discrete schedules (:data:`CONVENTIONS`).
    model_time_offset : float, optional
        The network is called at ``t - model_time_offset`` (1 for the official PNDM code).
    callback : callable, optional
        ``callback(t, x, e)`` after every step.
    check_finite : bool
        Raise ``FloatingPointError`` on a non-finite model output (synchronises GPU devices each call).
    **grid_options
        ``rho``, ``final_alpha``, ``offset`` passed to :func:`~pndmkit.grids.make_grid`.

    Returns
    -------
    Solution
        ``.x`` the final sample, ``.nfe`` model evaluations, ``.times`` the grid.
    """
    check_array(x_T, "x_T")
    if not callable(model):
        raise TypeError(f"model must be callable as model(x, t), got {type(model).__name__}")
    options = dict(grid_options)
    offset = 0.0
    if convention is not None:
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown convention {convention!r}; known: {sorted(CONVENTIONS)}")
        conv = dict(CONVENTIONS[convention])
        offset = conv.pop("model_time_offset")
        grid = conv.pop("kind") if grid is None else grid
        options = {**conv, **options}
    if model_time_offset is not None:
        offset = model_time_offset
    times = resolve_grid(schedule, steps, grid, t_start=t_start, t_end=t_end, **options)
    if isinstance(method, (Integrator, AdaptiveIntegrator)):
        integrator = method
    else:
        spec = method if isinstance(method, MethodSpec) else get_method(method)
        integrator = spec.build(schedule)
    eps_model = shift_time(as_eps(model, schedule, prediction), offset)
    return integrator.solve(eps_model, x_T, times, callback=callback, check_finite=check_finite)
