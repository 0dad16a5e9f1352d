r"""The exponential-integrator family as gradient estimators: DPM-Solver(++) multistep, DEIS, UniPC.

Every method here is a gradient part for one of the two exact transfers of ``pndmkit.transfers``:

* :class:`~pndmkit.transfers.DataTransfer` (gradient ``d``, the ``x0`` estimate; coordinate ``u = 1/s = e^lambda``):
  DPM-Solver++ (Lu et al. 2022, arXiv 2211.01095) and UniPC with data prediction (Zhao et al. 2023,
  arXiv 2302.04867);
* :class:`~pndmkit.transfers.DDIMTransfer` (gradient ``eps``; coordinate ``u = s = e^-lambda``):
  DPM-Solver (Lu et al. 2022, arXiv 2206.00927) and DEIS (Zhang and Chen 2023, arXiv 2204.13902).

Both transfers are an exact Euler step in ``u``, so a step needs the ``du``-mean of the gradient over the
step (``pndmkit.variables``). Writing the gradient as a function of ``lambda`` (half log-SNR) and ``H`` for
the step in ``log u`` (``H = lambda' - lambda`` for the data transfer, ``lambda - lambda'`` for DDIM), the
mean of a polynomial is a combination of the values at the nodes; the peers differ only in that
combination:

* **exact**: the Lagrange interpolant in ``lambda`` integrated exactly against ``du``
  (:func:`pndmkit.variables.exact_weights` with ``variable="lambda"``). DEIS's "logrho" multistep is this with
  the DDIM transfer; DPM-Solver++(2M) with ``solver_type="heun"`` is it with the data transfer.
* **dpm-solver**: the coefficients of ``DPMSolverMultistepScheduler``. With ``D1 = (m_0 - m_1) / r``,
  ``r = h_1 / h`` (ratio of the previous to the current step in ``lambda``), 2M is
  ``e' = m_0 + D1 / 2`` (the paper's 2M, "midpoint"), exact only to first order in ``h``. 3M writes the
  quadratic interpolant as ``m_0 + tau D1 + tau^2 D2`` (``tau`` the fraction of the step) and weights
  ``D1`` exactly but ``D2`` with ``c2(H) = (1/2 - (e^-H - 1 + H) / H^2) / (1 - e^-H) = H/6 + O(H^2)``
  where the exact mean of ``tau^2`` is ``1/3 + O(H)``: its local error is ``O(h^3)`` (second order, as
  2M), which ``tests/test_exponential.py`` pins.
* **UniPC**: predictor UniP-``p`` and corrector UniC-``p``. Where UniPC solves its ``R rho = b`` system the
  result does not depend on ``B(h)`` and is the exact weight set above (UniP-``p`` on ``p`` nodes, UniC-``p``
  on ``p + 1`` nodes including the new evaluation); the variant ``B(h)`` (``bh1``, ``bh2``, :class:`UniPC`)
  matters only where UniPC fixes ``rho = 1/2`` instead: UniP-2 (with ``bh2`` exactly DPM-Solver++(2M)) and UniC-1.

Warm-up and final steps follow the references: a multistep method ramps its order up from 1 (one
evaluation per step, no extra warm-up evaluations), and with ``lower_order_final`` the last steps are taken
at lower order. For that an estimator must know how many steps remain, which the stepping protocol's
``init(x, t, phi, times)`` gives it (the whole grid). Every global
order reported here counts the ramp: one first-order step leaves a local error ``O(h^2)`` that the global
error keeps, so the ramped multistep methods of the peers are second order, whatever their full order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional, Sequence

import numpy as np

from pndmkit._backend import LinComb, lincomb
from pndmkit._checks import check_bool
from pndmkit.estimators import GradientEstimator, Step
from pndmkit.transfers import DataTransfer, DDIMTransfer, apply_planned, planned_coefficients_many
from pndmkit.variables import (exact_weights, grid_coordinates, grid_weights_many, infinite_times, is_finite_step,
                               lambda_weights, lambda_weights_many)

__all__ = ["ExponentialMultistep", "UniPC", "dpm_solver_multistep", "deis_multistep",
           "WEIGHTS", "VARIANTS", "counted_steps"]

#: weight rules of :class:`ExponentialMultistep`
WEIGHTS = ("dpm-solver", "exact")
#: B(h) variants of :class:`UniPC`
VARIANTS = ("bh1", "bh2")


# -- shared pieces ------------------------------------------------------------------------------------
def _log_sign(phi: Any) -> float:
    """``+1`` if the transfer's coordinate is ``e^lambda`` (data), ``-1`` if ``e^-lambda`` (DDIM)."""
    variable = getattr(phi, "variable", None)
    if variable == "1/s":
        return 1.0
    if variable == "s":
        return -1.0
    raise ValueError(f"the exponential-integrator estimators need a transfer whose coordinate is exponential in "
                     f"lambda (DataTransfer: 1/s, DDIMTransfer: s); got {type(phi).__name__} with coordinate "
                     f"{variable!r}")


def _lam(phi: Any, t: float) -> float:
    return float(phi.schedule.lam(t))


def _check_order(value: Any) -> int:
    """``value`` as an ``int`` if it is the integer 1, 2 or 3 (numpy integers too; not bools or floats)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3 (an integer), got {value!r}")
    return int(value)


def _check_few_steps(value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"few_steps must be None (always) or an integer >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class _Progress:
    """Where a run stands: steps left including the current one (``None``: unknown) and whether the final
    steps are lowered on this grid."""

    remaining: Optional[int] = None
    lowered: bool = False

    def next(self) -> "_Progress":
        return _progress_at(None if self.remaining is None else self.remaining - 1, self.lowered)

    def cap(self, k: int) -> int:
        """``k`` lowered to the steps left when the final steps are lowered."""
        return min(k, self.remaining) if self.lowered and self.remaining is not None else k


@lru_cache(maxsize=1024)
def _progress_at(remaining: Optional[int], lowered: bool) -> _Progress:
    """``_Progress(remaining, lowered)``, one immutable instance per value (every step of a run asks for one)."""
    return _Progress(remaining, lowered)


def _caps(progress: _Progress, steps: int) -> list[int]:
    """For each of ``steps`` steps from ``progress`` on, the order ``progress.cap`` allows at most (what a plan
    reads instead of stepping a :class:`_Progress` along the grid): ``min(k, caps[i])`` is ``cap(k)`` there."""
    if not progress.lowered or progress.remaining is None:
        return [_NO_CAP] * steps
    return [progress.remaining - i for i in range(steps)]


#: larger than any order
_NO_CAP = 1 << 30


def counted_steps(steps: int, zero_length_final: bool) -> int:
    """The steps of a grid as its source counts them: the ``steps`` taken, and with ``zero_length_final`` one more
    after them, the source's last step of length zero (``sigma_min`` twice at the end of the sigma grids of
    diffusers' DPM-Solver, UniPC and DEIS), which pndmkit's grid leaves out but the source's order caps and its
    ``few_steps`` threshold count. Every count of that step (the estimators' ``zero_length_final``, the diffusers
    scheduler's layout and its image-to-image runs) is this one.

    Parameters
    ----------
    steps : int
        Steps of the grid taken (``len(times) - 1``).
    zero_length_final : bool
        Whether the source's grid ends with a step of length zero after them.

    Returns
    -------
    int
        ``steps + 1`` with ``zero_length_final``, else ``steps``.
    """
    return int(steps) + int(bool(zero_length_final))


def _progress(steps: int, lower_order_final: bool, few_steps: Optional[int], zero_length_final: bool = False
              ) -> _Progress:
    """Where a run on ``steps`` steps starts; ``zero_length_final`` counts one more step after them (a source's
    last step of length zero, not taken: :func:`counted_steps`), for the order caps and the ``few_steps``
    threshold alike."""
    steps = counted_steps(steps, zero_length_final)
    lowered = lower_order_final and (few_steps is None or steps < few_steps)
    return _Progress(steps, lowered)


def _one_minus_exp(H: float) -> float:
    """``1 - e^-H``."""
    return -math.expm1(-H)


def _mean_linear(H: float) -> float:
    r"""The ``du``-mean of ``tau`` over the step, ``u = e^{H tau}``: ``(1 - (1 - e^-H)/H) / (1 - e^-H)``."""
    if abs(H) < 1e-4:
        return 0.5 + H / 12.0
    return (1.0 - _one_minus_exp(H) / H) / _one_minus_exp(H)


def _dpm_c2(H: float) -> float:
    """DPMSolverMultistepScheduler's weight of ``D2`` relative to the first-order term (module docstring)."""
    if abs(H) < 1e-4:
        return H / 6.0 - H * H / 24.0
    return (0.5 - (math.expm1(-H) + H) / (H * H)) / _one_minus_exp(H)


def _dpm_weights(order: int, lams: Sequence[float], lam_next: float, sign: float) -> tuple[float, ...]:
    """Weights on ``m_0, m_1[, m_2]`` (newest first) of the DPM-Solver multistep formulas."""
    h = lam_next - lams[0]
    H = sign * h
    r0 = (lams[0] - lams[1]) / h
    if order == 2:
        c = 0.5 / r0
        return (1.0 + c, -c)
    r1 = (lams[1] - lams[2]) / h
    q = 1.0 / (r0 + r1)
    c1, c2 = _mean_linear(H), _dpm_c2(H)
    d1 = ((1.0 + r0 * q) / r0, -(1.0 + r0 * q) / r0 - r0 * q / r1, r0 * q / r1)  # D1 = h p'(lambda_0)
    d2 = (q / r0, -q / r0 - q / r1, q / r1)  # D2 = h^2 p''/2
    return (1.0 + c1 * d1[0] + c2 * d2[0], c1 * d1[1] + c2 * d2[1], c1 * d1[2] + c2 * d2[2])


def _exact(phi: Any, nodes: Sequence[float], t: float, t_next: float, sign: float, lams: Sequence[float],
           lam_next: float) -> tuple[float, ...]:
    """The exact weights in ``lambda`` (:func:`pndmkit.variables.exact_weights`), from ``lambda`` at the nodes
    where the transfer is one of the two built-in exponential ones."""
    if type(phi) in (DataTransfer, DDIMTransfer):
        return lambda_weights(lams, lams[0], lam_next, sign)
    return exact_weights("lambda", phi, nodes, t, t_next)


def _unplanned(phi: Any) -> tuple[Any, Any]:
    """``(finite, lam)`` of a step without a plan entry: finiteness of ``lambda`` and the transfer's coordinate
    at nodes, and ``lambda`` at a time, from the schedule."""

    def finite(nodes: Sequence[float]) -> bool:
        return is_finite_step("lambda", phi, nodes)

    def lam(u: float) -> float:
        return _lam(phi, u)

    return finite, lam


def _corrector_nodes(t_prev: float, t: float, older: tuple, finite: Any) -> Optional[list[float]]:
    """UniC's nodes ``t_{n-1}`` (the base), ``t_n`` (the new evaluation) and the ``older`` ones; ``None`` where
    a coordinate is infinite there (no correction). ``finite``: ``is_finite_step`` on nodes."""
    nodes = [t_prev, t, *older]
    return nodes if finite(nodes) else None


def _predictor_nodes(t: float, t_next: float, past: tuple, finite: Any) -> list[float]:
    """UniP's nodes ``t`` and ``past``, or ``t`` alone (order 1) where a coordinate of the step is infinite."""
    nodes = [t, *past]
    return nodes if finite(nodes + [t_next]) else [t]


def _fused_plan(w_c: Optional[tuple], p: int, w_prev: Optional[tuple], ab_c: Optional[tuple], w_p: tuple,
                ab: tuple) -> tuple[Optional[tuple], tuple]:
    r"""A UniPC step as one combination of the step's input ``x_n`` (the sample the previous step predicted), the
    new gradient ``m_n`` and the past ones ``m_{n-1}, m_{n-2}, ...``: ``(x_c, x_next)``, the weights of the
    corrected sample (``None``: not corrected, ``x_n^c = x_n``) and of the step's result, on those arrays in
    that order.

    The previous step predicted ``x_n = a' x_{n-1}^c + b' sum_j w'_j m_{n-1-j}`` (``w_prev``, its ``p``
    weights; ``ab_c = (a', b')``) and the corrector replaces that gradient by UniC's, ``w_c`` on
    ``m_{n-1}, m_n, m_{n-2}, ..., m_{n-p}``, so ``x_n^c = x_n + b' (sum w_c m - sum w' m)``, with no need of
    ``x_{n-1}^c``. The predictor ``x_{n+1} = a x_n^c + b sum_j w_p[j] m_{n-j}`` (``ab = (a, b)``) is then one
    combination: ``a x_n + sum_j (a D_j + b w_p[j]) m_{n-j}`` with ``D`` the corrector's weights above.
    """
    a, b = ab
    if w_c is None:
        return None, (a, *[b * w for w in w_p])
    b_c = ab_c[1]
    x_c = [1.0, b_c * w_c[1], b_c * (w_c[0] - w_prev[0])]
    for j in range(2, p + 1):
        x_c.append(b_c * (w_c[j] - w_prev[j - 1]))
    # the predictor's k nodes are at most p + 1 except after steps lowered to order 1 (infinite coordinates)
    k = len(w_p)
    x_next = [a]
    for j in range(1, max(p + 1, k) + 1):
        x_next.append(a * (x_c[j] if j <= p + 1 else 0.0) + b * (w_p[j - 1] if j <= k else 0.0))
    return tuple(x_c), tuple(x_next)


def _solve(exact: dict, solved: list, width: int, sign: float) -> None:
    """Fill ``solved`` with the exact weight sets in ``lambda`` of ``exact`` (number of nodes -> the sets of that
    size: ``lambda`` at their nodes, the first at the step's start, padded with nan to ``width - 1`` entries, then
    at the step's end, one row of ``width`` each; their indices in ``solved``), all of them in one batch of
    :func:`pndmkit.variables.lambda_weights_many`: the same floats as :func:`pndmkit.variables.lambda_weights`."""
    sizes = sorted(exact)
    rows, index, counts = [], [], []
    for size in sizes:
        size_rows, size_index = exact[size]
        rows += size_rows
        index += size_index
        counts += [size] * len(size_index)
    table = np.array(rows, dtype=np.float64).reshape(len(index), width)
    weights = lambda_weights_many(table[:, : sizes[-1]], table[:, 0], table[:, -1], sign, counts)
    for i, count, row in zip(index, counts, weights.tolist()):
        solved[i] = tuple(row[:count])


# -- DPM-Solver / DPM-Solver++ / DEIS multistep -----------------------------------------------------------
class ExponentialMultistep(GradientEstimator):
    r"""Multistep gradient on past start gradients, with weights from the exponential-integrator family.

    The state is ``(progress, history)``: how many steps are left (from the grid given to ``init``) and the
    gradients ``((t_k, e_k), ...)`` at the start of past steps, newest first. The order ramps up from 1 over
    the first steps (``min(order, steps taken + 1)``), as DPM-Solver and DEIS do.

    Parameters
    ----------
    order : {1, 2, 3}
        Number of gradients combined at full order.
    weights : {"dpm-solver", "exact"}
        ``"dpm-solver"``: DPMSolverMultistepScheduler's 2M ("midpoint") and 3M coefficients; ``"exact"``:
        the Lagrange interpolant in ``lambda`` integrated exactly against the transfer's coordinate (DEIS,
        DPM-Solver++ 2M "heun"). The module docstring derives both.
    lower_order_final : bool
        On a grid of fewer than ``few_steps`` steps, take the last step at order 1 and the one before at
        order at most 2 (the reference's "stability for few steps" rule). A step to ``abar = 1`` is always
        first order (``pndmkit.variables``).
    few_steps : int or None
        Grids with fewer steps than this get the lowered final steps; ``None``: every grid. Default 15,
        the references' threshold.
    zero_length_final : bool
        The grid stands for a source's grid with one more step of length zero after its end (diffusers' sigma
        grids that end at ``sigma_min`` twice), which is not taken: the lowering counts that step as the
        source does, so the grid's last step is lowered as the one before the last (order at most 2) and
        ``few_steps`` compares one step more. The zero-length step itself changes nothing: its first-order step
        is the identity.

    Raises
    ------
    ValueError
        A bad option (each message names the parameter); at run time, a transfer whose coordinate is not
        exponential in ``lambda`` (the classical linear transfer).
    """

    def __init__(self, order: int, weights: str = "dpm-solver", lower_order_final: bool = True,
                 few_steps: Optional[int] = 15, zero_length_final: bool = False) -> None:
        order = _check_order(order)
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
        self.formula_order, self.weights = order, weights
        self.lower_order_final = check_bool(lower_order_final, "lower_order_final")
        self.few_steps = _check_few_steps(few_steps)
        self.zero_length_final = check_bool(zero_length_final, "zero_length_final")

    def __repr__(self) -> str:
        extra = ", zero_length_final=True" if self.zero_length_final else ""
        return (f"ExponentialMultistep(order={self.formula_order}, weights={self.weights!r}, "
                f"lower_order_final={self.lower_order_final}, few_steps={self.few_steps}{extra})")

    def init(self, x, t, phi, times):
        return (_progress(len(times) - 1, self.lower_order_final, self.few_steps, self.zero_length_final), ())

    def observe(self, state, t, e):
        progress, history = state
        return (progress.next(), (((t, e),) + history)[: self.formula_order - 1])

    def plan(self, times, phi):
        sign = _log_sign(phi)
        grid = [float(t) for t in times]
        values = grid_coordinates("lambda", phi, grid)
        lam, infinite = dict(zip(grid, values)), infinite_times("lambda", phi, grid, values)
        caps = _caps(self.init(None, grid[0], phi, times)[0], len(grid) - 1)
        past, keys, planned = (), [], []
        for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
            key = past[: min(self.formula_order, len(past) + 1, caps[i]) - 1]
            nodes = [t, *key]
            keys.append(key)
            if len(nodes) > 1 and t_next not in infinite and infinite.isdisjoint(nodes):
                planned.append((len(keys) - 1, nodes, t, t_next))
            past = ((t,) + past)[: self.formula_order - 1]
        entries = [(key, None) for key in keys]
        if self.weights == "exact":  # every step's weights together, the same floats as one by one
            weights = grid_weights_many("lambda", phi, grid, values)([request[1:] for request in planned])
        else:
            weights = [self._weights(phi, nodes, t, t_next, sign, [lam[n] for n in nodes], lam[t_next])
                       for _, nodes, t, t_next in planned]
        for (i, _, _, _), w in zip(planned, weights):
            entries[i] = (keys[i], w)
        return tuple(entries)

    def _weights(self, phi: Any, nodes: list[float], t: float, t_next: float, sign: float,
                 lams: Sequence[float], lam_next: float) -> tuple[float, ...]:
        if self.weights == "exact":
            return _exact(phi, nodes, t, t_next, sign, lams, lam_next)
        return _dpm_weights(len(nodes), lams, lam_next, sign)

    def step(self, x, t, t_next, phi, state, plan=None):
        progress, history = state
        sign = _log_sign(phi)
        e = yield x, t
        new_state = (progress.next(), (((t, e),) + history)[: self.formula_order - 1])
        k = progress.cap(min(self.formula_order, len(history) + 1))
        past = history[: k - 1]
        key = tuple(tk for tk, _ in past)
        if plan is not None and plan[0] == key:
            w = plan[1]
        else:
            nodes = [t, *key]
            if k == 1 or not is_finite_step("lambda", phi, nodes + [t_next]):
                w = None
            else:
                w = self._weights(phi, nodes, t, t_next, sign, [_lam(phi, n) for n in nodes], _lam(phi, t_next))
        if w is None:
            return Step(new_state, e=e)
        return Step(new_state, e=LinComb(w, [e] + [ek for _, ek in past]))

    def full_order(self, phi: Any) -> int:
        """Order of the formula once the history is full (local error ``O(h^(p + 1))``)."""
        _log_sign(phi)
        if self.weights == "dpm-solver" and self.formula_order == 3:
            return 2  # D2 weighted by half its exact mean (module docstring)
        return self.formula_order

    def order(self, phi):
        return min(self.full_order(phi), 2)  # the ramp's first step is first order


def dpm_solver_multistep(order: int, lower_order_final: bool = True) -> ExponentialMultistep:
    """DPM-Solver(++) multistep as ``DPMSolverMultistepScheduler`` computes it (``solver_type="midpoint"``):
    with :class:`~pndmkit.transfers.DataTransfer` DPM-Solver++, with :class:`~pndmkit.transfers.DDIMTransfer`
    DPM-Solver (noise prediction)."""
    return ExponentialMultistep(order, "dpm-solver", lower_order_final)


def deis_multistep(order: int, lower_order_final: bool = True) -> ExponentialMultistep:
    """DEIS multistep in ``DEISMultistepScheduler``'s form ("logrho": Lagrange in ``log s`` integrated exactly
    in ``s``) with :class:`~pndmkit.transfers.DDIMTransfer`; with the data transfer its ``x0`` counterpart."""
    return ExponentialMultistep(order, "exact", lower_order_final)


# -- UniPC -------------------------------------------------------------------------------------------------
class UniPC(GradientEstimator):
    r"""UniPC: the UniP-``p`` predictor and the UniC-``p`` corrector (Zhao et al. 2023, arXiv 2302.04867).

    A step ``t_n -> t_{n+1}`` evaluates the model once, at the predicted sample ``x_n`` the previous step
    returned. That evaluation first *corrects* the previous step, ``x_n^c = phi(x_{n-1}^c, e_c, t_{n-1}, t_n)``
    with UniC (weights on the new gradient and the history), and then predicts
    ``x_{n+1} = phi(x_n^c, e_p, t_n, t_{n+1})`` with UniP from the history, the new gradient included. The
    step returns that sample itself (``Step(x=...)``); the last step is not corrected (no evaluation
    follows), so NFE = N. The corrector has the order of the predictor it corrects.

    In the transfer's terms ``e = m_0 + kappa sum_k rho_k D_k`` with ``D_k = (m_k - m_0) / r_k``,
    ``r_k = (lambda_k - lambda_0) / h``, ``kappa = B(h) / (e^-H - 1)`` and ``H`` the step in ``log u``
    (module docstring): ``bh1`` has ``B(h) = -H`` (``kappa = H / (1 - e^-H)``), ``bh2`` ``B(h) = e^-H - 1``
    (``kappa = 1``). Where UniPC solves for ``rho`` the weights equal the exact ones in ``lambda`` for any
    ``B``; where it fixes ``rho = 1/2`` (UniP-2, UniC-1) they depend on the variant.

    The state is ``(progress, history, previous)``: steps left, the start gradients ``((t_k, m_k), ...)``
    newest first, and ``(t_{n-1}, x_{n-1}^c, p)`` of the step to correct (or ``None``). A planned step is one
    combination of ``x_n`` and the gradients (the corrector folded in, :func:`_fused_plan`); its ``x_n^c`` is
    then kept as a lazy :class:`~pndmkit._backend.LinComb`, evaluated only by a step the plan did not foresee.

    Parameters
    ----------
    order : {1, 2, 3}
        The predictor's full order ``p`` (the corrector raises it to ``p + 1``).
    variant : {"bh1", "bh2"}
        ``B(h)``.
    lower_order_final : bool
        The predictor's order is at most the number of steps left (the last step first order, uncorrected),
        on every grid, as ``UniPCMultistepScheduler`` does.
    corrector : bool
        Apply UniC (``False``: UniP alone).
    zero_length_final : bool
        The grid stands for a source's grid with one more step of length zero after its end (diffusers' sigma
        grids that end at ``sigma_min`` twice). That step evaluates the model at the end of the last step, where
        UniC corrects the last step as it corrects every other one (with the corrector), and its own predictor
        is the identity: so the last step is corrected here too, at one more evaluation (NFE = N + 1), and the
        order caps count the zero-length step (the last step's predictor is of order at most 2).

    Raises
    ------
    ValueError
        A bad option (each message names the parameter) or a transfer that is not DataTransfer/DDIMTransfer.
    """

    def __init__(self, order: int, variant: str = "bh2", lower_order_final: bool = True,
                 corrector: bool = True, zero_length_final: bool = False) -> None:
        order = _check_order(order)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.formula_order, self.variant = order, variant
        self.lower_order_final = check_bool(lower_order_final, "lower_order_final")
        self.corrector = check_bool(corrector, "corrector")
        self.zero_length_final = check_bool(zero_length_final, "zero_length_final")

    def __repr__(self) -> str:
        extra = ", zero_length_final=True" if self.zero_length_final else ""
        return (f"UniPC(order={self.formula_order}, variant={self.variant!r}, lower_order_final={self.lower_order_final}, "
                f"corrector={self.corrector}{extra})")

    def init(self, x, t, phi, times):
        return (_progress(len(times) - 1, self.lower_order_final, None, self.zero_length_final), (), None)

    def observe(self, state, t, e):
        progress, history, _ = state
        return (progress.next(), (((t, e),) + history)[: self.formula_order], None)

    def _kappa(self, H: float) -> float:
        return 1.0 if self.variant == "bh2" else (H / _one_minus_exp(H) if H != 0 else 1.0)

    def _weights(self, k: int, nodes: list[float], t: float, t_next: float, phi: Any, sign: float,
                 fixed_half: bool, lams: Sequence[float], lam_next: float) -> tuple[float, ...]:
        """Weights on ``nodes`` (``nodes[0] == t`` the base ``m_0``; ``k`` nodes) for the step ``t -> t_next``,
        from ``lambda`` at the nodes (``lams``) and at ``t_next``."""
        if k == 1:
            return (1.0,)
        if not fixed_half:
            return _exact(phi, nodes, t, t_next, sign, lams, lam_next)
        lam0 = lams[0]
        h = lam_next - lam0
        r = (lams[1] - lam0) / h
        c = 0.5 * self._kappa(sign * h) / r  # e = m_0 + kappa rho (m_1 - m_0) / r, rho = 1/2
        return (1.0 - c, c)

    def _corrector(self, t_prev: float, t: float, p: int, older: tuple, phi: Any, sign: float, finite: Any,
                   lam: Any) -> Optional[tuple[float, ...]]:
        """UniC's weights on ``m_{n-1}, m_n`` and the ``older`` nodes (``None``: an infinite coordinate)."""
        nodes = _corrector_nodes(t_prev, t, older, finite)
        if nodes is None:
            return None
        return self._weights(p + 1, nodes, t_prev, t, phi, sign, p == 1, [lam(n) for n in nodes], lam(t))

    def _predictor(self, t: float, t_next: float, past: tuple, phi: Any, sign: float, finite: Any,
                   lam: Any) -> tuple[int, tuple[float, ...]]:
        """UniP's order and weights on ``m_n`` and the ``past`` nodes (order 1 at an infinite coordinate)."""
        nodes = _predictor_nodes(t, t_next, past, finite)
        k = len(nodes)
        return k, self._weights(k, nodes, t, t_next, phi, sign, k == 2, [lam(n) for n in nodes], lam(t_next))

    def plan(self, times, phi):
        # per step, for a fresh run: corrector key and weights, predictor key, order and weights, the transfer's
        # coefficients of the corrector (previous step) and of the step, and the step as one combination
        # (_fused_plan); the exact weight sets (UniPC's solved rho) of every step are computed together, in one
        # batch of every size (a step's past nodes are the grid times just before it, newest first)
        sign = _log_sign(phi)
        grid = [float(t) for t in times]
        values = grid_coordinates("lambda", phi, grid)
        infinite = infinite_times("lambda", phi, grid, values)
        # a step's nodes are consecutive times of the grid, indices lo..hi, all finite exactly where the last
        # index <= hi with an infinite coordinate (-1: none) is below lo
        last_infinite, last = [], -1
        for i, t in enumerate(grid):
            if t in infinite:
                last = i
            last_infinite.append(last)
        steps = planned_coefficients_many(phi, grid[:-1], grid[1:])  # the transfer's (a, b) of every step
        caps = _caps(self.init(None, grid[0], phi, times)[0], len(grid) - 1)
        batch = type(phi) in (DataTransfer, DDIMTransfer)  # else each exact set by exact_weights, one by one
        kappa = self._kappa

        def half(lam0: float, lam1: float, lam_next: float) -> tuple[float, float]:
            # _weights with rho = 1/2 on the nodes (lam0, lam1), the same floats
            h = lam_next - lam0
            r = (lam1 - lam0) / h
            c = 0.5 * kappa(sign * h) / r
            return (1.0 - c, c)

        # per step [key_c, corrector weights, key_p, k, predictor weights], the weights where they are one formula
        # (k = 1, or rho = 1/2 on two nodes), else the index of an exact set; the exact sets by number of nodes:
        # lambda at their nodes (the first the step's start; padded with nan to ``order + 1``) and at the step's
        # end, one row each, and their indices. The past nodes of step i are the times grid[i - 1], grid[i - 2],
        # ... (at most ``order``), and UniC corrects step i - 1 with the p nodes of its predictor (p = 0: none)
        rows, exact, solved, order, corrector = [], {}, [], self.formula_order, self.corrector
        pad = [math.nan] * order
        p = 0
        for i in range(len(grid) - 1):
            key_c = w_c = None
            if p and corrector:
                older = tuple(grid[i - p: i - 1][::-1])
                key_c = (grid[i - 1], p, older)
                if last_infinite[i] >= i - p:  # an infinite coordinate at a node: no correction
                    pass
                elif p == 1:
                    w_c = half(values[i - 1], values[i], values[i])
                elif batch:
                    w_c = len(solved)
                    solved.append(None)
                    table, index = exact.get(p + 1) or exact.setdefault(p + 1, ([], []))
                    table += [values[i - 1], values[i], *values[i - p: i - 1][::-1], *pad[p:], values[i]]
                    index.append(w_c)
                else:
                    w_c = _exact(phi, [grid[i - 1], grid[i], *older], grid[i - 1], grid[i], sign,
                                 [values[i - 1], values[i], *values[i - p: i - 1][::-1]], values[i])
            k = min(order, i + 1, caps[i])
            key_p = tuple(grid[i + 1 - k: i][::-1])
            if last_infinite[i + 1] >= i + 1 - k:  # order 1 where a coordinate of the step is infinite
                k = 1
            if k == 1:
                w_p = (1.0,)
            elif k == 2:
                w_p = half(values[i], values[i - 1], values[i + 1])
            elif batch:
                w_p = len(solved)
                solved.append(None)
                table, index = exact.get(k) or exact.setdefault(k, ([], []))
                table += [*values[i + 1 - k: i + 1][::-1], *pad[k - 1:], values[i + 1]]
                index.append(w_p)
            else:
                w_p = _exact(phi, [grid[i], *key_p], grid[i], grid[i + 1], sign, values[i + 1 - k: i + 1][::-1],
                             values[i + 1])
            rows.append((key_c, w_c, key_p, k, w_p))
            p = k
        if exact:
            _solve(exact, solved, order + 2, sign)
        entries, previous = [], (0, None)  # the previous step's predictor: its number of nodes and weights
        for i, (key_c, w_c, key_p, k, w_p) in enumerate(rows):
            if type(w_c) is int:
                w_c = solved[w_c]
            if type(w_p) is int:
                w_p = solved[w_p]
            ab, ab_c = steps[i], (None if key_c is None else steps[i - 1])
            fused = None if ab is None or (key_c is not None and ab_c is None) else \
                _fused_plan(w_c, *previous, ab_c, w_p, ab)
            entries.append((key_c, w_c, key_p, k, w_p, ab_c, ab, fused))
            previous = (k, w_p)
        return tuple(entries)

    def step(self, x, t, t_next, phi, state, plan=None):
        progress, history, previous = state
        if plan is None:
            _log_sign(phi)  # a transfer that is not exponential fails before any evaluation (as the plan checks)
        m = yield x, t
        corrected = previous is not None and self.corrector
        times = tuple([tk for tk, _ in history])
        past = times[: progress.cap(min(self.formula_order, len(history) + 1)) - 1]
        new_history = (((t, m),) + history)[: self.formula_order]
        if plan is not None and plan[2] == past and plan[0] == (
                (previous[0], previous[2], times[1:previous[2]]) if corrected else None):
            k, fused = plan[3], plan[7]
            if fused is not None:  # the corrector and the predictor in one combination (_fused_plan)
                x_c, weights = fused
                arrays = (x, m) + tuple([ek for _, ek in history[: len(weights) - 2]])
                if x_c is not None:  # the corrected state, for a step that is not planned (never evaluated here)
                    x_c = LinComb(x_c, arrays[: len(x_c)])
                else:
                    x_c = x
                x_next, new_state = lincomb(weights, arrays), (progress.next(), new_history, (t, x_c, k))
                if self._corrects_last(progress):
                    return (yield from self._correct_last(new_state, x_next, t_next, m, history, phi))
                return Step(new_state, x=x_next)
            w_c, ab, w_p = plan[1], plan[5], plan[4]
        else:
            w_c = ab = None
            sign = _log_sign(phi)
            if corrected:
                p = previous[2]
                w_c = self._corrector(previous[0], t, p, times[1:p], phi, sign, *_unplanned(phi))
            k, w_p = self._predictor(t, t_next, past, phi, sign, *_unplanned(phi))
        x_c = x
        if corrected and w_c is not None:
            t_prev, x_prev, p = previous
            arrays = [history[0][1], m] + [ek for _, ek in history[1:p]]
            x_c = apply_planned(phi, ab, x_prev, LinComb(w_c, arrays), t_prev, t)
        e = LinComb(w_p, [m] + [ek for _, ek in history[: k - 1]])
        x_next = apply_planned(phi, None if plan is None else plan[6], x_c, e, t, t_next)
        new_state = (progress.next(), new_history, (t, x_c, k))
        if self._corrects_last(progress):
            return (yield from self._correct_last(new_state, x_next, t_next, m, history, phi))
        return Step(new_state, x=x_next)

    def _corrects_last(self, progress: _Progress) -> bool:
        """Whether this step is the grid's last and a zero-length step's evaluation corrects it."""
        return self.zero_length_final and self.corrector and progress.remaining == 2

    def _correct_last(self, state: tuple, x_next: Any, t_next: float, m: Any, history: tuple, phi: Any):
        """The last step (``state`` after it, whose ``(t, x_c, k)`` it corrects) corrected by UniC-``k`` from an
        evaluation at its end, the zero-length step after it; uncorrected where a coordinate is infinite there."""
        t, x_c, k = state[2]
        sign = _log_sign(phi)
        finite, lam = _unplanned(phi)
        older = tuple(tk for tk, _ in history[: k - 1])
        w_c = self._corrector(t, t_next, k, older, phi, sign, finite, lam)
        if w_c is None:
            return Step(state, x=x_next)
        m_end = yield x_next, t_next
        arrays = [m, m_end] + [ek for _, ek in history[: k - 1]]
        return Step(state, x=apply_planned(phi, None, x_c, LinComb(w_c, arrays), t, t_next))

    def order(self, phi):
        _log_sign(phi)
        full = self.formula_order + 1 if self.corrector else self.formula_order
        start = 3 if self.corrector else 2  # first step: Euler, corrected by UniC-1 (rho = 1/2)
        if self.zero_length_final:  # the last predictor of order min(p, 2), corrected when the corrector is on
            last = min(self.formula_order, 2) if self.lower_order_final else self.formula_order
            final = last + 2 if self.corrector else last + 1
        else:
            final = 2 if self.lower_order_final else self.formula_order + 1  # the last step is never corrected
        return min(full, start, final)
