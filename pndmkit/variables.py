r"""The variable in which an estimator places its stages and makes its multistep weights exact.

A transfer is an exact Euler step in its own coordinate ``u`` (``s`` for :class:`~pndmkit.transfers.DDIMTransfer`,
``1/s = e^lambda`` for :class:`~pndmkit.transfers.DataTransfer`, ``t`` for the classical
:class:`~pndmkit.transfers.LinearTransfer`): ``x_next`` depends on the gradient only through
``(u(t_next) - u(t)) e'``. A consistent gradient part therefore estimates the *mean* of the gradient over the
step in ``u``,

.. math::  e' \approx \frac{1}{u' - u} \int_u^{u'} e \, du.

An estimator assumes the gradient is a polynomial in some variable ``v(t)`` (this module's "variable") and
integrates that polynomial *exactly* against ``du``; with ``v = u`` this is the classical variable-step Adams
formula, with ``v = lambda`` (half log-SNR) and the data transfer it is the exponential-integrator family
(DPM-Solver++, DEIS, UniPC). Any smooth ``v`` gives a consistent method of the interpolant's order
(``docs/protocol.md``, "Variables").

Variables
---------
``"native"``  the transfer's own coordinate ``u`` (weights from the exact polynomial formula);
``"t"``       the schedule's time;
``"lambda"``  ``lambda = -log s``, infinite where ``abar = 1``;
callable      a user function ``v(t)``, monotone on the grid, or a pair ``(v, v_inverse)`` (without the
              inverse, stage times are found by root bracketing, :func:`scipy.optimize.brentq`).

Infinite coordinates
--------------------
A grid that ends where ``abar = 1`` (every default ``DiscreteVP`` grid) has ``lambda = inf`` and
``1/s = inf`` on its last node. No polynomial in such a variable can be integrated there, so that step is
taken at **order 1** (one evaluation at the step's start, the transfer's Euler step): the rule of the peers'
``lower_order_final`` / ``final_sigmas_type="zero"`` (DPM-Solver++ and UniPC in diffusers take a first-order
last step to ``sigma = 0``). :func:`is_finite_step` tells an estimator when it applies.
"""

from __future__ import annotations

import bisect
import math
from functools import lru_cache
from typing import Any, Callable, Sequence, Tuple, Union

import numpy as np

from pndmkit.schedules import VPSchedule, grid_log_abar, lam_from_log_abar, s_from_log_abar
from pndmkit.transfers import DataTransfer, DDIMTransfer, LinearTransfer

__all__ = ["Variable", "VARIABLES", "check_variable", "coordinate", "time_at", "is_finite_step",
           "exact_weights", "lambda_weights", "lambda_weights_many", "grid_coordinates", "grid_weights",
           "grid_weights_many", "infinite_times", "variable_name"]

#: the named variables
VARIABLES = ("native", "t", "lambda")

Variable = Union[str, Callable[[float], float], Tuple[Callable[[float], float], Callable[[float], float]]]

# Gauss-Legendre nodes and weights on [0, 1] for the integrals of non-native variables
_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)
_GL_X, _GL_W = 0.5 * (_GL_X + 1.0), 0.5 * _GL_W


def check_variable(variable: Any, name: str = "variable") -> Variable:
    """Validate a variable (see the module docstring); return it unchanged.

    Raises
    ------
    ValueError
        An unknown name, or a tuple that is not two callables.
    """
    if isinstance(variable, str):
        if variable not in VARIABLES:
            raise ValueError(f"{name} must be one of {VARIABLES} or a function v(t), got {variable!r}")
        return variable
    if isinstance(variable, tuple):
        if len(variable) == 2 and all(callable(f) for f in variable):
            return variable
        raise ValueError(f"{name} as a tuple must be (v, v_inverse), two callables; got {variable!r}")
    if callable(variable):
        return variable
    raise ValueError(f"{name} must be one of {VARIABLES} or a function v(t), got {variable!r}")


def variable_name(variable: Variable) -> str:
    """A short printable name (``"lambda"``, or the function's name)."""
    if isinstance(variable, str):
        return variable
    f = variable[0] if isinstance(variable, tuple) else variable
    return getattr(f, "__name__", repr(f))


def is_native(variable: Variable, phi: Any) -> bool:
    """Whether ``variable`` is the transfer's own coordinate."""
    return variable == "native" or (isinstance(variable, str) and variable == phi.variable)


def coordinate(variable: Variable, phi: Any, t: float) -> float:
    """``v(t)`` for the transfer ``phi`` (float64; may be ``inf`` where ``abar = 1``)."""
    if variable == "native":
        return phi.coordinate(t)
    if variable == "t":
        return float(t)
    if variable == "lambda":
        return float(phi.schedule.lam(t))
    f = variable[0] if isinstance(variable, tuple) else variable
    return float(f(t))


def time_at(variable: Variable, phi: Any, v: float, bracket: tuple[float, float]) -> float:
    """Inverse of :func:`coordinate`: the time ``t`` in ``bracket`` with ``v(t) = v``."""
    if variable == "native":
        return phi.time_at(v)
    if variable == "t":
        return float(v)
    if variable == "lambda":
        return float(phi.schedule.t_from_lambda(v))
    if isinstance(variable, tuple):
        return float(variable[1](v))
    from scipy.optimize import brentq

    lo, hi = min(bracket), max(bracket)
    return float(brentq(lambda t: float(variable(t)) - v, lo, hi, xtol=1e-14 * max(1.0, abs(hi)), rtol=1e-15))


def grid_coordinates(variable: Variable, phi: Any, times: Sequence[float]) -> list[float]:
    """:func:`coordinate` at every time of ``times`` (Python floats; one schedule call for the named variables
    and the built-in transfers). What an estimator's plan reads instead of one call per node and step."""
    times = np.asarray(times, dtype=np.float64)
    if variable == "t":
        values = times
    elif variable == "lambda" and _vp_forms(phi.schedule):  # from log abar, as the plan's other parts read it
        values = np.asarray(lam_from_log_abar(grid_log_abar(phi.schedule, times.tolist())), dtype=np.float64)
    elif variable == "lambda":
        with np.errstate(divide="ignore"):
            values = np.asarray(phi.schedule.lam(times), dtype=np.float64)
    elif (variable == "native" or is_native(variable, phi)) and type(phi) in (DDIMTransfer, DataTransfer) and \
            _vp_forms(phi.schedule):  # s or 1/s from log abar, as the plan's other parts read it
        values = np.asarray(s_from_log_abar(grid_log_abar(phi.schedule, times.tolist())), dtype=np.float64)
        if type(phi) is DataTransfer:
            with np.errstate(divide="ignore"):
                values = 1.0 / values
    elif variable == "native" or is_native(variable, phi):
        values = _coordinates(phi, times)
    else:
        return [coordinate(variable, phi, float(t)) for t in times]
    return np.reshape(np.asarray(values, dtype=np.float64), -1).tolist()


def grid_weights(variable: Variable, phi: Any, times: Sequence[float]) -> Callable[[Sequence[float], float, float],
                                                                                  tuple[float, ...]]:
    """:func:`exact_weights` for nodes on the grid ``times`` and its steps, from coordinates computed once.

    The returned function ``weights(nodes, t, t_next)`` (every node, ``t`` and ``t_next`` times of the grid,
    ``(t, t_next)`` one of its steps, every coordinate finite) gives the weights of :func:`exact_weights` by
    the same formulas; the coordinates of the whole grid (and, for ``variable="t"``, the transfer's
    coordinate at the quadrature nodes of every step) come from one schedule call each. What an
    estimator's plan uses.
    """
    grid = [float(t) for t in times]
    if is_native(variable, phi):
        u = dict(zip(grid, grid_coordinates("native", phi, grid)))

        def native(nodes: Sequence[float], t: float, t_next: float) -> tuple[float, ...]:
            from pndmkit.theory.multistep import lagrange_weights_float

            if len(nodes) == 1:
                return (1.0,)
            return tuple(lagrange_weights_float([u[n] for n in nodes], u[t], u[t_next]).tolist())

        return native
    v = dict(zip(grid, grid_coordinates(variable, phi, grid)))
    if variable == "lambda" and type(phi) in (DDIMTransfer, DataTransfer):
        sign = 1.0 if type(phi) is DataTransfer else -1.0
        return lambda nodes, t, t_next: lambda_weights([v[n] for n in nodes], v[t], v[t_next], sign)
    if variable != "t" or len(grid) < 2:
        return lambda nodes, t, t_next: exact_weights(variable, phi, nodes, t, t_next)
    # r = (u - u0) / (u1 - u0) at the Gauss-Legendre nodes of every step, from one schedule call
    g = np.asarray(grid)
    at_nodes = g[:-1, None] + (g[1:] - g[:-1])[:, None] * _GL_X[None, :]
    u = dict(zip(grid, grid_coordinates("native", phi, grid)))
    u_q = _coordinates(phi, at_nodes.ravel()).reshape(at_nodes.shape)
    with np.errstate(all="ignore"):  # steps with an infinite coordinate are never asked for
        r = {(grid[i], grid[i + 1]): (u_q[i] - u[grid[i]]) / (u[grid[i + 1]] - u[grid[i]])
             for i in range(len(grid) - 1)}

    def in_t(nodes: Sequence[float], t: float, t_next: float) -> tuple[float, ...]:
        if len(nodes) == 1:
            return (1.0,)
        return _quadrature_weights(list(nodes), t, t_next, r[(t, t_next)])

    return in_t


def grid_weights_many(variable: Variable, phi: Any, times: Sequence[float],
                      values: Sequence[float] | None = None) -> Callable[
        [Sequence[tuple[Sequence[float], float, float]]], list[tuple[float, ...]]]:
    """:func:`grid_weights` for many steps at once: ``many(requests)`` with ``requests`` a sequence of
    ``(nodes, t, t_next)`` returns the weights of each, the same floats as :func:`grid_weights` gives one by one.

    Requests with the same number of nodes are computed together, as arrays, where the formula allows it
    (the transfer's own coordinate, ``lambda`` with the built-in exponential transfers, ``t``); other variables
    are computed one by one. What an estimator's plan uses: a grid's weights cost a few array operations
    instead of a Python loop per step. ``values``: :func:`grid_coordinates` of ``variable`` on ``times``, where
    the caller has it (for ``"native"`` and ``"lambda"``; otherwise ignored).
    """
    grid = [float(t) for t in times]
    native = is_native(variable, phi)
    sign = 0.0
    if native:
        coordinates = dict(zip(grid, grid_coordinates("native", phi, grid) if values is None else values))
    elif variable == "lambda" and type(phi) in (DDIMTransfer, DataTransfer):
        coordinates = dict(zip(grid, grid_coordinates(variable, phi, grid) if values is None else values))
        sign = 1.0 if type(phi) is DataTransfer else -1.0
    elif variable == "t" and len(grid) >= 2:
        coordinates = {t: t for t in grid}
        g = np.asarray(grid)
        at_nodes = g[:-1, None] + (g[1:] - g[:-1])[:, None] * _GL_X[None, :]
        u = np.asarray(grid_coordinates("native", phi, grid))
        u_q = _coordinates(phi, at_nodes.ravel()).reshape(at_nodes.shape)
        with np.errstate(all="ignore"):  # steps with an infinite coordinate are never asked for
            r_steps = (u_q - u[:-1, None]) / (u[1:] - u[:-1])[:, None]  # the rows grid_weights uses, per step
        step_row = {(grid[i], grid[i + 1]): i for i in range(len(grid) - 1)}
    else:
        one = grid_weights(variable, phi, grid)
        return lambda requests: [one(nodes, t, t_next) for nodes, t, t_next in requests]

    def many(requests: Sequence[tuple[Sequence[float], float, float]]) -> list[tuple[float, ...]]:
        out: list = [None] * len(requests)
        groups: dict[int, list[int]] = {}
        for i, (nodes, _, _) in enumerate(requests):
            if len(nodes) == 1:
                out[i] = (1.0,)
            else:
                groups.setdefault(len(nodes), []).append(i)
        for k, rows in groups.items():
            picked = [requests[i] for i in rows]
            if len(rows) <= _FEW and (native or sign):  # the scalar formula is cheaper than arrays here
                for i, (nodes, t, t_next) in zip(rows, picked):
                    nodes_v = [coordinates[n] for n in nodes]
                    if native:
                        from pndmkit.theory.multistep import lagrange_weights_float

                        out[i] = tuple(lagrange_weights_float(nodes_v, coordinates[t], coordinates[t_next]).tolist())
                    else:
                        out[i] = lambda_weights(nodes_v, coordinates[t], coordinates[t_next], sign)
                continue
            v = np.array([coordinates[n] for nodes, _, _ in picked for n in nodes]).reshape(len(rows), k)
            v0 = np.array([coordinates[t] for _, t, _ in picked])
            v1 = np.array([coordinates[t_next] for _, _, t_next in picked])
            if native:
                from pndmkit.theory.multistep import lagrange_weights_float_many

                w = lagrange_weights_float_many(v, v0, v1)
            elif sign:
                w = lambda_weights_many(v, v0, v1, sign)
            else:
                w = _quadrature_weights_many(v, v0, v1, r_steps[[step_row[(t, t_next)] for _, t, t_next in picked]])
            for i, row in zip(rows, w.tolist()):
                out[i] = tuple(row)
        return out

    return many


#: groups of at most this many weight sets are computed one by one (the same floats, without the array set-up)
_FEW = 2


def infinite_times(variable: Variable, phi: Any, times: Sequence[float],
                   values: Sequence[float] | None = None) -> frozenset:
    """The times of ``times`` where ``v`` or the transfer's coordinate is infinite (Python floats), from one
    evaluation of each on the whole grid: :func:`is_finite_step` of nodes on that grid is
    ``infinite_times(...).isdisjoint(nodes)``. ``values``: ``v`` on the grid, where the caller has it
    (:func:`grid_coordinates`). What an estimator's plan uses."""
    grid = [float(t) for t in times]
    values = grid_coordinates(variable, phi, grid) if values is None else values
    if is_native(variable, phi) or (variable == "lambda" and type(phi) in (DDIMTransfer, DataTransfer)
                                    and _vp_forms(phi.schedule)):
        # on a VP schedule e = expm1(-log abar) gives lambda = -log(e)/2 and s = sqrt(e): both are finite exactly
        # where e is positive and finite, and so is 1/s (s >= sqrt of the smallest subnormal): one test suffices
        return frozenset(t for t, v in zip(grid, values) if not math.isfinite(v))
    native = grid_coordinates("native", phi, grid)
    return frozenset(t for t, v, u in zip(grid, values, native) if not (math.isfinite(v) and math.isfinite(u)))


def _vp_forms(schedule: Any) -> bool:
    """Whether ``schedule`` computes ``s`` and ``lambda`` by the VP forms from ``log abar``."""
    kind = type(schedule)
    return isinstance(schedule, VPSchedule) and kind.s is VPSchedule.s and kind.lam is VPSchedule.lam


def is_finite_step(variable: Variable, phi: Any, times: Sequence[float]) -> bool:
    """Whether ``v`` and the transfer's coordinate are finite at every time in ``times`` (see module doc)."""
    return all(math.isfinite(coordinate(variable, phi, t)) and math.isfinite(phi.coordinate(t)) for t in times)


def exact_weights(variable: Variable, phi: Any, nodes: Sequence[float], t: float, t_next: float) -> tuple[float, ...]:
    r"""Weights ``w_k`` with ``sum_k w_k e(t_k) = (1/(u' - u)) \int_u^{u'} p(v) du`` for the polynomial ``p``
    in ``v`` through the values at ``nodes`` (any order, distinct; may include ``t_next``).

    In the transfer's own coordinate this is the exact Lagrange formula
    (:func:`pndmkit.theory.multistep.lagrange_weights_float`); otherwise
    :math:`\int_u^{u'} \ell_k(v)\,du = \ell_k(v')(u' - u) - \int_v^{v'} \ell_k'(v)\, (u(v) - u)\, dv`, in the
    step's scaled variable and integrated by 24-point Gauss-Legendre (``u(v)`` is smooth wherever both are
    finite, so this is exact to round-off, with no cancellation as steps shrink).
    Results are cached per transfer, variable and nodes.
    """
    return _weights(variable, phi, tuple(float(n) for n in nodes), float(t), float(t_next))


@lru_cache(maxsize=4096)
def _weights(variable: Variable, phi: Any, nodes: tuple[float, ...], t: float, t_next: float) -> tuple[float, ...]:
    from pndmkit.theory.multistep import lagrange_weights_float

    if len(nodes) == 1:
        return (1.0,)
    if is_native(variable, phi):
        u = [phi.coordinate(n) for n in nodes]
        return tuple(lagrange_weights_float(u, phi.coordinate(t), phi.coordinate(t_next)).tolist())
    v0, v1 = coordinate(variable, phi, t), coordinate(variable, phi, t_next)
    v_nodes = [coordinate(variable, phi, n) for n in nodes]
    if variable == "lambda" and type(phi) in (DDIMTransfer, DataTransfer):
        return lambda_weights(v_nodes, v0, v1, 1.0 if type(phi) is DataTransfer else -1.0)
    return _quadrature_weights(v_nodes, v0, v1, _scaled_coordinate(variable, phi, t, t_next, v0, v1))


def lambda_weights(lams: Sequence[float], lam: float, lam_next: float, sign: float) -> tuple[float, ...]:
    r"""Exact weights in ``lambda`` for a transfer whose coordinate is ``u = e^(sign lambda)``, from ``lambda`` alone.

    What :func:`exact_weights` gives with ``variable="lambda"`` for
    :class:`~pndmkit.transfers.DataTransfer` (``sign = 1``, ``u = 1/s``) and
    :class:`~pndmkit.transfers.DDIMTransfer` (``sign = -1``, ``u = s``): there ``(u - u_0) / (u_1 - u_0)``
    is ``expm1(sign (lambda - lambda_0)) / expm1(sign (lambda_1 - lambda_0))`` on every schedule, so no
    time is needed. Estimators that know ``lambda`` on the whole grid call it directly.

    Parameters
    ----------
    lams : sequence of float
        ``lambda`` at the nodes (finite, distinct).
    lam, lam_next : float
        ``lambda`` at the start and end of the step (finite, distinct).
    sign : float
        ``1.0`` or ``-1.0``.

    Returns
    -------
    tuple of float
        One weight per node, summing to 1 (the same floats as :func:`exact_weights` from the same ``lambda``).
    """
    if len(lams) == 1:
        return (1.0,)
    h = sign * (lam_next - lam)  # the step in log u
    r_q = np.expm1(h * _GL_X) / math.expm1(h)
    return _quadrature_weights(lams, lam, lam_next, r_q)


def _quadrature_weights(v_nodes: Sequence[float], v0: float, v1: float, r_q: np.ndarray) -> tuple[float, ...]:
    """The weights from the nodes in the variable and ``r`` at the Gauss-Legendre nodes of the step."""
    # everything in the step's own scaled variable sigma = (v - v0) / (v1 - v0), where the step is [0, 1] and
    # the basis polynomials have O(1) coefficients; integrating by parts against the normalised coordinate
    # r(sigma) = (u - u0) / (u1 - u0), which runs from 0 to 1, keeps every term O(1) (no cancellation of u):
    #   w_k = l_k(1) - int_0^1 l_k'(sigma) r(sigma) d sigma = l_k(1) - sum_m c_km m int_0^1 sigma^(m-1) r d sigma
    # with c_km the coefficients of l_k in powers of sigma; the moments of r are one Gauss-Legendre sum each.
    sig_nodes = [(v - v0) / (v1 - v0) for v in v_nodes]
    k = len(sig_nodes)
    moments = ((_GL_POWERS[: k - 1] @ (_GL_W * r_q)) * np.arange(1.0, k)).tolist()  # m int sigma^(m-1) r, m = 1..k-1
    out = []
    for j in range(k):
        coeffs = [1.0]  # ascending powers of sigma of prod_{i != j} (sigma - sigma_i)
        denominator = at_one = 1.0
        for i, si in enumerate(sig_nodes):
            if i == j:
                continue
            coeffs.append(0.0)
            for m in range(len(coeffs) - 1, 0, -1):
                coeffs[m] = coeffs[m - 1] - si * coeffs[m]
            coeffs[0] *= -si
            denominator *= sig_nodes[j] - si
            at_one *= 1.0 - si
        out.append((at_one - sum(coeffs[m] * moments[m - 1] for m in range(1, k))) / denominator)
    return tuple(out)


def lambda_weights_many(lams: np.ndarray, lam: np.ndarray, lam_next: np.ndarray, sign: float,
                        counts: Sequence[int] | None = None) -> np.ndarray:
    """:func:`lambda_weights` of many steps: row ``i`` is ``lambda_weights(lams[i], lam[i], lam_next[i], sign)``
    (its first ``counts[i]`` nodes and entries, with ``counts``), the same floats (the same operations, on
    arrays).

    Parameters
    ----------
    lams : numpy.ndarray
        float64, shape ``(S, k)`` with ``k >= 2``: ``lambda`` at the nodes of each step (finite, distinct);
        with ``counts``, row ``i``'s nodes are its first ``counts[i]`` entries and the rest is ``nan``.
    lam, lam_next : numpy.ndarray
        float64, shape ``(S,)``: ``lambda`` at the start and end of each step.
    sign : float
        ``1.0`` or ``-1.0``, as for :func:`lambda_weights`.
    counts : sequence of int, optional
        The number of nodes of each row, ascending, each from 2 to ``k`` (steps of different orders in one
        batch); ``None``: every row has ``k``.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(S, k)``; with ``counts``, the entries past a row's count are not weights (``nan``).
    """
    lam, lam_next = np.asarray(lam, dtype=np.float64), np.asarray(lam_next, dtype=np.float64)
    h = sign * (lam_next - lam)
    r_q = np.expm1(h[:, None] * _GL_X) / np.array([math.expm1(x) for x in h.tolist()])[:, None]
    return _quadrature_weights_many(np.asarray(lams, dtype=np.float64), lam, lam_next, r_q, counts)


def _quadrature_weights_many(v_nodes: np.ndarray, v0: np.ndarray, v1: np.ndarray, r_q: np.ndarray,
                             counts: Sequence[int] | None = None) -> np.ndarray:
    """:func:`_quadrature_weights` of many steps (rows of ``v_nodes``, ``k >= 2`` finite nodes each): the scalar
    version's operations on arrays, in its order, so the same floats.

    ``counts``: the number of nodes of each row, ascending, where rows have different numbers (``None``: every
    row has ``v_nodes.shape[1]``). A row's nodes come first and the rest of it is padding (``nan``); its weights
    are the first ``counts[i]`` entries of its output row, the same floats as a batch of rows of that size
    (the factors of the padding are skipped row by row, so every product and sum is the scalar one, and the
    moments of the rows of each size are that size's matrix-vector product).
    """
    k = v_nodes.shape[1]
    sig_nodes = (v_nodes - v0[:, None]) / (v1 - v0)[:, None]
    # one matrix-vector product per step, as the scalar version (one matrix-matrix product would sum in another
    # order)
    weighted = (_GL_W * r_q)[:, :, None]
    moments = np.matmul(_GL_POWERS[: k - 1], weighted)[:, :, 0]
    first = 0
    while counts is not None and first < len(counts) and counts[first] < k:  # the smaller sizes: their own
        # products (a matrix-vector product's sums may depend on its number of rows), over the largest's
        end = bisect.bisect_right(counts, counts[first], first)
        moments[first:end, : counts[first] - 1] = np.matmul(_GL_POWERS[: counts[first] - 1],
                                                            weighted[first:end])[:, :, 0]
        first = end
    moments = moments * _M_FACTORS[: k - 1]
    # entry (j, step) of each array below is the scalar version's value for basis polynomial j of that step (one
    # contiguous block per factor n: ``rest[n]`` holds the n-th node other than j, in the scalar loop's order)
    rest = sig_nodes.T[_others(k).T]
    # the factors of every step at once: -s_i, s_j - s_i and 1 - s_i (the scalar version's values, one array each)
    negative, differences, at_ones = -rest, sig_nodes.T - rest, 1.0 - rest
    # the first factor: coefficients (-s_i, 1), denominator s_j - s_i, at_one 1 - s_i (the products with the
    # scalar version's initial 1.0 are exact)
    coeffs: list = [negative[0], 1.0]
    denominator, at_one = differences[0], at_ones[0]
    for n in range(1, k - 1):
        si = rest[n]
        first = 0 if counts is None else bisect.bisect_left(counts, n + 2)  # the rows with an (n + 1)-th factor
        if first:  # the rows from ``first`` on, in place (every array here is the last factor's result, or a
            # row of a factor array no later factor reads); the rows before keep their values, and their
            # coefficient of sigma^(n + 1) is 0.0
            take = slice(first, None)
            top = np.zeros(len(counts))
            top[take] = 1.0
            leading = coeffs[n - 1] - si
            leading[:, :first] = coeffs[n] if np.ndim(coeffs[n]) == 0 else coeffs[n][:first]
            for m in range(n - 1, 0, -1):
                np.subtract(coeffs[m - 1][:, take], si[:, take] * coeffs[m][:, take], out=coeffs[m][:, take])
            coeffs[n] = leading
            coeffs.append(top)
            if n < k - 2:  # the constant coefficient enters the next factor's products, not the weights
                np.multiply(coeffs[0][:, take], negative[n][:, take], out=coeffs[0][:, take])
            np.multiply(denominator[:, take], differences[n][:, take], out=denominator[:, take])
            np.multiply(at_one[:, take], at_ones[n][:, take], out=at_one[:, take])
            continue
        coeffs.append(1.0)  # the leading coefficient stays 1.0 (1.0 - s_i * 0.0 for finite s_i)
        coeffs[n] = coeffs[n - 1] - si  # the scalar version's c - s_i * 1.0
        for m in range(n - 1, 0, -1):
            coeffs[m] = coeffs[m - 1] - si * coeffs[m]
        if n < k - 2:
            coeffs[0] = coeffs[0] * negative[n]
        denominator = denominator * differences[n]
        at_one = at_one * at_ones[n]
    moments = moments.T  # row m - 1: the moment of every step
    total = coeffs[1] * moments[0]  # the scalar sum's 0 + x is x (a zero's sign aside, which no weight shows)
    for m in range(2, k):  # a row's coefficients beyond its degree are 0.0: adding 0.0 leaves its sum as it is
        total = total + coeffs[m] * moments[m - 1]
    return np.ascontiguousarray(((at_one - total) / denominator).T)


#: m = 1, 2, ...: the factors of the moments ``m int sigma^(m-1) r``
_M_FACTORS = np.arange(1.0, 9.0)


@lru_cache(maxsize=None)
def _others(k: int) -> np.ndarray:
    """Row ``j``: the indices ``0..k-1`` other than ``j``, in order (read-only, as every caller shares
    the cached array and only indexes with it)."""
    out = np.array([[i for i in range(k) if i != j] for j in range(k)], dtype=np.int64).reshape(k, k - 1)
    out.setflags(write=False)
    return out

_GL_POWERS = _GL_X[None, :] ** np.arange(8.0)[:, None]  # sigma^n at the Gauss-Legendre nodes, n = 0..7


@lru_cache(maxsize=256)  # a predictor and its corrector share the step
def _scaled_coordinate(variable: Variable, phi: Any, t: float, t_next: float, v0: float, v1: float) -> np.ndarray:
    """``r = (u - u0) / (u1 - u0)`` at the Gauss-Legendre nodes of the step in ``variable`` (``u`` the transfer's
    coordinate), through the times of those nodes."""
    if variable == "t":
        times = t + (t_next - t) * _GL_X
    else:
        bracket = (t, t_next)
        times = np.array([time_at(variable, phi, v0 + (v1 - v0) * x, bracket) for x in _GL_X])
    u0, u1 = phi.coordinate(t), phi.coordinate(t_next)
    return (_coordinates(phi, times) - u0) / (u1 - u0)


def _coordinates(phi: Any, times: np.ndarray) -> np.ndarray:
    """The transfer's coordinate at an array of times, in one schedule call for the built-in transfers."""
    kind = type(phi)
    if kind is DDIMTransfer:
        return np.asarray(phi.schedule.s(times), dtype=np.float64)
    if kind is DataTransfer:
        with np.errstate(divide="ignore"):
            return 1.0 / np.asarray(phi.schedule.s(times), dtype=np.float64)
    if kind is LinearTransfer:
        return np.asarray(times, dtype=np.float64)
    return np.array([phi.coordinate(float(u)) for u in times])
