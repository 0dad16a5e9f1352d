r"""The integrator: a gradient estimator composed with a transfer map (PNDM, Liu et al. 2022, sec. 3.3).

One step ``t -> t_next`` is the estimator's generator (its model evaluations and its gradient ``e'``)
followed by ``x_next = phi(x, e', t, t_next)``, or a next sample the estimator returns itself (a corrector).
:meth:`Integrator.start` gives an immutable ask/tell :class:`~pndmkit.run.Run`; :meth:`Integrator.solve`
drives one with a model, so there is one code path. Model evaluations are counted where they are told,
and :meth:`Integrator.nfe` is derived by a dry run of the same protocol, never declared.

Examples
--------
Prototype a method in one line: the paper's F-PNDM (Algorithm 2) is a PRK warm-up, then fourth-order
Adams-Bashforth, both through the DDIM transfer.

>>> import numpy as np
>>> from pndmkit.schedules import LinearVP
>>> from pndmkit.tableaus import RK4
>>> from pndmkit.transfers import DDIMTransfer
>>> from pndmkit.adams import LinearMultistep
>>> from pndmkit.estimators import Warmup
>>> from pndmkit.runge_kutta import RungeKutta
>>> sched = LinearVP()
>>> f_pndm = Integrator(Warmup(RungeKutta(RK4), 3, LinearMultistep(4, ramp=False)), DDIMTransfer(sched))
>>> model = lambda x, t: 0.5 * x            # any callable eps(x, t)
>>> sol = f_pndm.solve(model, np.ones(3), np.linspace(1.0, 1e-3, 11))
>>> sol.nfe, f_pndm.nfe(10)                 # 3 PRK steps (4 each) + 7 AB4 steps
(19, 19)
>>> f_pndm.order(), f_pndm.kind             # t-midpoint stages and t-uniform weights: second order
(2, 'pseudo')
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit._backend import cast, check_array, dtype_name, outside_graph
from pndmkit._checks import check_bool
from pndmkit.estimators import GradientEstimator
from pndmkit.grids import check_grid, make_grid
from pndmkit.models import Model, check_prediction
from pndmkit.run import Callback, Run, Solution, gradient_array, start_run
from pndmkit.stability import StabilityWarning, warn_if_unstable
from pndmkit.transfers import Transfer

__all__ = ["Integrator", "Solution", "Model", "Callback"]

_LOW_PRECISION = ("float16", "bfloat16")
_STATE_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _state_dtype(x: Any, state_dtype: Optional[str]) -> str:
    name = dtype_name(x)
    if state_dtype is None:
        return "float32" if name in _LOW_PRECISION else name
    if state_dtype not in _STATE_DTYPES:
        raise ValueError(f"state_dtype must be None (at least float32) or one of {_STATE_DTYPES}, got {state_dtype!r}")
    return state_dtype


@dataclass(frozen=True)
class Integrator:
    """A pseudo (or classical) numerical method: gradient estimator + transfer map.

    Parameters
    ----------
    estimator : GradientEstimator
        The gradient part.
    transfer : Transfer
        The transfer part (:class:`~pndmkit.transfers.DDIMTransfer` or
        :class:`~pndmkit.transfers.DataTransfer` for pseudo methods, :class:`~pndmkit.transfers.LinearTransfer`
        for classical ones).
    name : str
        Name reported in :class:`~pndmkit.run.Solution`.
    data_form : str
        Registry name of the same estimator on the data-prediction transfer, which a
        :class:`~pndmkit.stability.StabilityWarning` suggests when this method's eps-form transfer would
        amplify its stage errors (set by :mod:`pndmkit.methods`; empty: the warning gives the generic remedy).

    Raises
    ------
    TypeError
        An argument of the wrong type.
    """

    estimator: GradientEstimator
    transfer: Transfer
    name: str = ""
    data_form: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.estimator, GradientEstimator):
            raise TypeError(f"estimator must be a GradientEstimator (Single, RungeKutta, LinearMultistep, AdamsPC, "
                            f"Warmup, or a subclass), got {type(self.estimator).__name__}")
        if not isinstance(self.transfer, Transfer):
            raise TypeError(f"transfer must be a Transfer (DDIMTransfer, DataTransfer, LinearTransfer), got "
                            f"{type(self.transfer).__name__}")
        for field_name in ("name", "data_form"):
            if not isinstance(getattr(self, field_name), str):
                raise TypeError(f"{field_name} must be a str, got {type(getattr(self, field_name)).__name__}")

    # -- metadata -------------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``"pseudo"`` or ``"classical"``: the kind of the transfer."""
        return self.transfer.kind

    def order(self) -> int:
        """Global order on a ``t``-uniform grid, as the estimator reports it for this transfer."""
        return self.estimator.order(self.transfer)

    # -- the protocol ---------------------------------------------------------------------------------
    @outside_graph  # host-side set-up in float64 numpy: eager under torch.compile
    def start(self, x: Any, grid: Sequence[float] | NDArray[np.float64], *, prediction: str = "eps",
              check_finite: bool = False, state_dtype: Optional[str] = None, estimator_state: Any = None) -> Run:
        """An ask/tell :class:`~pndmkit.run.Run` from ``x`` at ``grid[0]`` along ``grid``.

        Parameters
        ----------
        x : numpy.ndarray or torch.Tensor
            Sample at ``grid[0]`` (floating dtype, any shape and device).
        grid : sequence of float
            Decreasing times in the schedule's units, inside its domain (validated by
            :func:`pndmkit.grids.check_grid`).
        prediction : {"eps", "x0", "v", "score"}
            What the told outputs predict; converted to ``eps`` at each evaluation point, before any combination.
        check_finite : bool
            Check each told output for NaN/inf (synchronises GPU devices); otherwise only the final sample
            is checked, by :meth:`Run.solution`.
        state_dtype : str, optional
            dtype of the sampler state. Default: that of ``x``, but at least float32 (a float16/bfloat16
            state loses 15-25% accuracy over 1000 steps); the final sample is returned in ``x``'s dtype.
        estimator_state : object, optional
            The estimator's state to start from instead of ``estimator.init(...)`` (e.g. a known multistep
            history ``((t_1, e_1), ...)`` when continuing another sampler's run).

        Raises
        ------
        TypeError
            ``x`` is not a floating numpy array or torch tensor.
        ValueError
            A bad grid, prediction or state_dtype.
        """
        check_array(x, "x")
        check_bool(check_finite, "check_finite")
        times = check_grid(self.transfer.schedule, grid)
        times.setflags(write=False)
        check_prediction(prediction, self.transfer.schedule)
        warn_if_unstable(self, times, self.data_form)  # a StabilityWarning naming the cause and a remedy
        out_dtype = dtype_name(x)
        x_state = cast(x, _state_dtype(x, state_dtype))
        return start_run(self, x_state, times, prediction=prediction, check_finite=bool(check_finite),
                         out_dtype=out_dtype, estimator_state=estimator_state)

    def solve(self, model: Model, x: Any = None, grid: Sequence[float] | NDArray[np.float64] | None = None, *,
              callback: Callback | None = None, check_finite: bool = False, prediction: str = "eps",
              state_dtype: Optional[str] = None, run: Optional[Run] = None) -> Solution:
        """Integrate along ``grid`` (decreasing times, ``grid[0]`` the start) from ``x``, calling ``model``.

        ``run`` resumes a saved (e.g. unpickled) :class:`~pndmkit.run.Run` instead of starting from ``x``;
        the result is bit-identical to an uninterrupted run. Other parameters as :meth:`start`;
        ``callback(t_next, x_next, e')`` is called after every step.
        """
        if not callable(model):
            raise TypeError(f"model must be callable as model(x, t), got {type(model).__name__}")
        if run is None:
            if x is None or grid is None:
                raise TypeError("solve needs x and grid (or run= to resume a saved run)")
            run = self.start(x, grid, prediction=prediction, check_finite=check_finite, state_dtype=state_dtype)
        elif run.integrator is not self and repr(run.integrator) != repr(self):
            raise ValueError(f"run was started by a different integrator: {run.integrator!r}, not {self!r}")
        while run.request is not None:
            x_eval, t_eval = run.request
            index = run.index
            run = run.tell(model(x_eval, t_eval))
            if callback is not None and run.index != index:
                callback(run.t, run.x, gradient_array(run.last_gradient))
        return run.solution()

    def nfe(self, steps: int | Sequence[float]) -> int:
        """Model evaluations of a run of ``steps`` steps (on the schedule's default grid) or on a grid.

        Derived by a dry run of the protocol on a scalar state, so it counts exactly what :meth:`solve` asks.
        """
        if isinstance(steps, (int, np.integer)) and not isinstance(steps, bool):
            grid = make_grid(self.transfer.schedule, int(steps))
        else:
            grid = steps
        with warnings.catch_warnings():  # a dry run: no StabilityWarning for counting
            warnings.simplefilter("ignore", StabilityWarning)
            run = self.start(np.zeros(1), grid)
        zero = np.zeros(1)
        while run.request is not None:
            run = run.tell(zero)
        return run.nfe
