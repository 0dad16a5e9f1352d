r"""The integrator: a gradient estimator composed with a transfer map (PNDM sec. 3.3).

One step ``t -> t_next`` is ``e' = estimator(...)`` followed by ``x_next = phi(x, e', t, t_next)``.
State is explicit and immutable (:class:`State`); :meth:`Integrator.step` returns a new state, so two runs
never share anything and a run can start from any ``(x_t, t)`` (img2img) or be resumed from a saved state.
Model evaluations are counted in exactly one place, :meth:`Integrator.step`.

Examples
--------
Prototype a method in one line: the paper's F-PNDM is PRK warm-up then fourth-order Adams-Bashforth,
both through the DDIM transfer.

>>> import numpy as np
>>> from pndmkit.schedules import LinearVP
>>> from pndmkit.tableaus import RK4
>>> from pndmkit.transfers import DDIMTransfer
>>> from pndmkit.estimators import LinearMultistep, RungeKutta
>>> sched = LinearVP()
>>> f_pndm = Integrator(LinearMultistep(4, warmup=RungeKutta(RK4), warmup_steps=3, ramp=False),
...                     DDIMTransfer(sched))
>>> model = lambda x, t: 0.5 * x            # any callable eps(x, t)
>>> sol = f_pndm.solve(model, np.ones(3), np.linspace(1.0, 1e-3, 11))
>>> sol.nfe                                  # 3 PRK steps (4 each) + 7 AB4 steps
19
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit._backend import all_finite, dtype_name, match_dtype
from pndmkit.estimators import GradientEstimator, History
from pndmkit.transfers import Transfer

__all__ = ["State", "Solution", "Integrator", "Model", "Callback"]

#: a noise-prediction model ``eps(x, t)``
Model = Callable[[Any, float], Any]
#: called after every step with ``(t_next, x_next, e')``
Callback = Callable[[float, Any, Any], None]


@dataclass(frozen=True)
class State:
    """Sampler state between steps.

    Attributes
    ----------
    x : array
        Current sample at time ``t``.
    t : float
        Current time.
    history : tuple
        Past gradients ``((t_k, e_k), ...)``, newest first, at most ``estimator.history_length`` of them.
    nfe : int
        Model evaluations so far.
    steps : int
        Steps taken so far.
    """

    x: Any
    t: float
    history: History = ()
    nfe: int = 0
    steps: int = 0


@dataclass(frozen=True)
class Solution:
    """Result of a sampler run.

    Attributes
    ----------
    x : array
        Final sample (same array type, dtype and device as the initial one).
    nfe : int
        Number of model evaluations.
    times : numpy.ndarray
        The grid that was integrated (decreasing); for adaptive methods the accepted times.
    method : str
        Name of the method.
    """

    x: Any
    nfe: int
    times: NDArray[np.float64]
    method: str = ""
    state: State | None = field(default=None, repr=False)


def _checked(model: Model, like: Any, count: list[int], check_finite: bool) -> Callable[[Any, float], Any]:
    """Wrap ``model``: count evaluations, check shape, cast to the state dtype, optionally check finiteness."""
    shape = tuple(like.shape)

    def evaluate(x: Any, t: float) -> Any:
        count[0] += 1
        e = model(x, t)
        if tuple(getattr(e, "shape", ())) != shape or not hasattr(e, "dtype"):
            raise ValueError(f"model output must be an array of shape {shape} like x; got "
                             f"{type(e).__name__} of shape {tuple(getattr(e, 'shape', ()))} at t={t}")
        if type(e) is not type(like):
            raise TypeError(f"model output must be a {type(like).__name__} like x, got {type(e).__name__} at t={t}")
        if e.dtype != like.dtype:
            if "float" not in dtype_name(e):
                raise TypeError(f"model output must have a floating dtype, got {dtype_name(e)} at t={t}")
            e = match_dtype(e, like)
        if check_finite and not all_finite(e):
            raise FloatingPointError(f"model output is not finite at t={t} (evaluation {count[0]})")
        return e

    return evaluate


@dataclass(frozen=True)
class Integrator:
    """A pseudo (or classical) numerical method: gradient estimator + transfer map.

    Parameters
    ----------
    estimator : GradientEstimator
        The gradient part.
    transfer : Transfer
        The transfer part (:class:`~pndmkit.transfers.DDIMTransfer` for pseudo methods,
        :class:`~pndmkit.transfers.LinearTransfer` for classical ones).
    name : str
        Name reported in :class:`Solution`.
    """

    estimator: GradientEstimator
    transfer: Transfer
    name: str = ""

    def init(self, x: Any, t: float) -> State:
        """Initial state at time ``t`` (any time: start mid-trajectory with a given ``x_t``)."""
        return State(x=x, t=float(t))

    def step(self, model: Model, state: State, t_next: float, *, check_finite: bool = False) -> tuple[State, Any]:
        """Advance ``state`` to ``t_next``; return the new state and the gradient ``e'`` used."""
        count = [0]
        g_model = _checked(model, state.x, count, check_finite)
        phi = self.transfer

        def g(x: Any, t: float) -> Any:
            return phi.gradient(x, g_model(x, t), t)

        t, t_next = state.t, float(t_next)
        e, e_start = self.estimator.estimate(state.x, t, t_next, g, phi, state.history)
        keep = self.estimator.history_length
        history = (((t, e_start),) + state.history)[:keep] if keep else ()
        x_next = phi(state.x, e, t, t_next)
        return State(x_next, t_next, history, state.nfe + count[0], state.steps + 1), e

    def solve(self, model: Model, x: Any, grid: Sequence[float] | NDArray[np.float64], *,
              callback: Callback | None = None, check_finite: bool = False, state: State | None = None) -> Solution:
        """Integrate along ``grid`` (decreasing times, ``grid[0]`` the start) from ``x``.

        ``state`` resumes a previous run instead of starting from ``x`` (its time must equal ``grid[0]``).
        """
        times = np.asarray(grid, dtype=np.float64)
        st = self.init(x, times[0]) if state is None else replace(state)
        if st.t != times[0]:
            raise ValueError(f"state.t={st.t} must equal grid[0]={times[0]}")
        for t_next in times[1:]:
            st, e = self.step(model, st, float(t_next), check_finite=check_finite)
            if callback is not None:
                callback(st.t, st.x, e)
        return Solution(x=st.x, nfe=st.nfe, times=times, method=self.name, state=st)

    def nfe(self, steps: int) -> int:
        """Model evaluations of a run of ``steps`` steps from an empty history."""
        return sum(self.estimator.evaluations_at(i) for i in range(steps))
