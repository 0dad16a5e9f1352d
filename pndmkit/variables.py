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

import math
from functools import lru_cache
from typing import Any, Callable, Sequence, Tuple, Union

import numpy as np

__all__ = ["Variable", "VARIABLES", "check_variable", "coordinate", "time_at", "is_finite_step",
           "exact_weights", "variable_name"]

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
    u0, u1 = phi.coordinate(t), phi.coordinate(t_next)
    # everything in the step's own scaled variable sigma = (v - v0) / (v1 - v0), where the step is [0, 1] and
    # the basis polynomials have O(1) coefficients; integrating by parts against the normalised coordinate
    # r(sigma) = (u - u0) / (u1 - u0), which runs from 0 to 1, keeps every term O(1) (no cancellation of u):
    #   w_k = l_k(1) - int_0^1 l_k'(sigma) r(sigma) d sigma
    sig_nodes = [(coordinate(variable, phi, n) - v0) / (v1 - v0) for n in nodes]
    bracket = (t, t_next)
    r_q = np.array([(phi.coordinate(time_at(variable, phi, v0 + (v1 - v0) * x, bracket)) - u0) / (u1 - u0)
                    for x in _GL_X])
    k = len(nodes)
    out = []
    for j in range(k):
        others = [sig_nodes[m] for m in range(k) if m != j]
        basis = np.polynomial.Polynomial.fromroots(others) / np.prod([sig_nodes[j] - o for o in others])
        out.append(basis(1.0) - float(np.dot(_GL_W, basis.deriv()(_GL_X) * r_q)))
    return tuple(float(w) for w in out)
