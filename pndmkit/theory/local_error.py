r"""Local error of pseudo linear multistep methods (gradient part + DDIM transfer), as exact series in ``h``.

The DDIM transfer is exact Euler in ``s`` on ``y = x / sqrt(abar)``; a gradient part whose weights are
uniform in ``t`` leaves a local error ``-(1/12) s'' eps' h^3`` whatever its number of steps, so the global
order is 2 (docs/theory.md, "Why t-uniform pseudo methods are second order").

* :func:`pseudo_local_error_expansion` -- every coefficient up to a chosen power of ``h``.
* :func:`pseudo_local_error` -- the leading term.

Examples
--------
>>> pseudo_local_error("t-uniform", 4)
-e1*h**3*s2/12
"""

from __future__ import annotations

import math
from typing import Any, Sequence, Union

import sympy as sp

from pndmkit.theory._exact import Number, as_rational, check_positive_int
from pndmkit.theory.multistep import adams_bashforth

__all__ = ["pseudo_local_error", "pseudo_local_error_expansion"]


# Power series in h are lists of coefficients [c_0, ..., c_n], each a polynomial of a sympy ``ring``
# (fast exact arithmetic). The computation sets s'(t_n) = 1: scaling s by c leaves the weights alone
# and scales the error by c, so the general result is s1 * E(s_i -> s_i / s1), restored at the end.
_H = sp.Symbol("h")


def _series_mul(a: list, b: list, n: int) -> list:
    return [sum((a[i] * b[m - i] for i in range(m + 1)), a[0] * 0) for m in range(n + 1)]


def _series_inv(a: list, n: int) -> list:
    """Inverse of a series whose constant term is a non-zero rational."""
    head = a[0].LC if a[0] != 0 else 0
    if a[0] == 0 or not a[0].is_ground:
        raise ValueError("can only invert a series with a non-zero constant leading term")
    out = [a[0] * 0 + 1 / head]
    for m in range(1, n + 1):
        out.append(-sum((a[i] * out[m - i] for i in range(1, m + 1)), a[0] * 0) / head)
    return out


def _weight_series(weight_rule: Union[str, Sequence[Number]], k: int, n: int, s_der: Sequence[Any]) -> list[list]:
    """The weights of a pseudo multistep step as power series in ``h``; ``s_der[i]`` is ``s^{(i+1)}(t_n)``."""
    zero = s_der[0] * 0
    if isinstance(weight_rule, str) and weight_rule not in ("t-uniform", "s-exact"):
        raise ValueError(f"weight_rule must be 't-uniform', 's-exact' or a sequence of weights, got {weight_rule!r}")
    if weight_rule != "s-exact":
        weights = adams_bashforth(k) if weight_rule == "t-uniform" else [
            as_rational(w, "weight_rule") for w in weight_rule]
        if len(weights) != k:
            raise ValueError(f"weight_rule has {len(weights)} weights but k={k}")
        return [[zero + w] + [zero] * n for w in weights]
    # tau_j = (s(t_n - j h) - s(t_n)) / (s(t_n + h) - s(t_n)); both differences are h * series
    inv_step = _series_inv([s_der[i] / math.factorial(i + 1) for i in range(n + 1)], n)
    taus = [_series_mul([s_der[i] * (-j) ** (i + 1) / math.factorial(i + 1) for i in range(n + 1)], inv_step, n)
            for j in range(k)]
    weights = []
    for j in range(k):
        poly = [[zero + 1] + [zero] * n]  # series coefficients of ascending powers of tau
        denominator = [zero + 1] + [zero] * n
        for i in range(k):
            if i == j:
                continue
            shifted = [[zero] * (n + 1)] + poly  # tau * poly - tau_i * poly
            scaled = [_series_mul(c, taus[i], n) for c in poly] + [[zero] * (n + 1)]
            poly = [[x - y for x, y in zip(p_, q_)] for p_, q_ in zip(shifted, scaled)]
            denominator = _series_mul(denominator, [x - y for x, y in zip(taus[j], taus[i])], n)
        integral = [sum((c[m] / (d + 1) for d, c in enumerate(poly)), zero) for m in range(n + 1)]
        weights.append(_series_mul(integral, _series_inv(denominator, n), n))
    return weights


def pseudo_local_error_expansion(
    weight_rule: Union[str, Sequence[Number]], k: int, order: int | None = None
) -> list[sp.Expr]:
    r"""Coefficients ``[c_0, c_1, ..., c_order]`` of the local error ``sum_m c_m h^m`` of one pseudo multistep step.

    The step is ``y_{n+1} = y_n + (s(t_n + h) - s(t_n)) * sum_j w_j eps(t_n - j h)``: the DDIM transfer
    (exact in ``y = x / sqrt(abar)``, ``s`` = noise-to-signal ratio) fed with a linear-multistep gradient
    estimate. It is compared with the exact step ``int_{t_n}^{t_n + h} eps(t) s'(t) dt`` of
    ``dy/ds = eps`` along the trajectory; the error is numerical minus exact, with exact history.
    The symbols are ``h``, ``s1, s2, ...`` (``s^{(i)}(t_n)``) and ``e0, e1, ...`` (``d^i eps / dt^i``
    along the trajectory at ``t_n``). ``h`` may be negative (time running towards the data).

    Parameters
    ----------
    weight_rule : {"t-uniform", "s-exact"} or sequence of k weights
        ``"t-uniform"``: the fixed Adams-Bashforth weights (PLMS, uniform in ``t``); ``"s-exact"``: the
        weights of the interpolant on the actual nodes ``s(t_n - j h)`` over ``[s(t_n), s(t_n + h)]``
        (:func:`variable_step_weights` with ``variable="s"``); a sequence: those fixed weights.
    k : int
        Number of history nodes.
    order : int, optional
        Highest power of ``h`` kept (default ``k + 2``).

    Examples
    --------
    >>> pseudo_local_error_expansion("t-uniform", 1, order=2)  # DDIM: Euler in s
    [0, 0, -e1*s1/2]
    """
    k = check_positive_int(k)
    n = check_positive_int(order, "order") if order is not None else k + 2
    s_sym, e_sym = sp.symbols(f"s1:{n + 2}"), sp.symbols(f"e0:{n + 1}")
    ring, *gens = sp.ring(list(s_sym[1:]) + list(e_sym), sp.QQ)
    s_der = [ring(1)] + gens[: n]  # s1 = 1, then s2 .. s_{n+1}
    e_der = gens[n:]
    weights = _weight_series(weight_rule, k, n, s_der)
    history = [[e_der[i] * (-j) ** i / math.factorial(i) for i in range(n + 1)] for j in range(k)]
    products = [_series_mul(w, e, n) for w, e in zip(weights, history)]
    gradient = [sum((c[m] for c in products), ring(0)) for m in range(n + 1)]
    step = [ring(0)] + [s_der[i - 1] / math.factorial(i) for i in range(1, n + 1)]  # s(t_n + h) - s(t_n)
    numerical = _series_mul(step, gradient, n)
    # exact: int_0^h eps(tau) s'(tau) dtau; the coefficient of h^(m+1) is sum_{i+j=m} e_i s_{j+1} / (i! j! (m+1))
    exact = [ring(0)] + [
        sum((e_der[i] * s_der[m - i] / (math.factorial(i) * math.factorial(m - i) * (m + 1)) for i in range(m + 1)),
            ring(0))
        for m in range(n)
    ]
    s1 = s_sym[0]
    restore = {s: s / s1 for s in s_sym[1:]}
    out = []
    for a, b in zip(numerical, exact):
        coefficient = (a - b).as_expr()
        out.append(sp.factor(s1 * coefficient.subs(restore, simultaneous=True)) if coefficient != 0 else sp.Integer(0))
    return out


def pseudo_local_error(weight_rule: Union[str, Sequence[Number]], k: int, order: int | None = None) -> sp.Expr:
    r"""Leading term in ``h`` of the local error of a pseudo multistep step (see :func:`pseudo_local_error_expansion`).

    With weights uniform in ``t`` (PLMS) the DDIM transfer integrates in ``s`` while the gradient
    estimate assumes a uniform grid; for ``k >= 3`` the leading local error is
    ``-(1/12) s''(t) eps'(t) h^3``, whatever ``k``, so the global order is 2. (For ``k = 2`` the
    classical AB2 term ``-(5/12) s' eps'' h^3`` adds to it.) Equivalently, the gradient estimate is off
    by ``-(1/12) (s''/s') eps' h^2`` and the error of the ``y`` step is ``s' h`` times it (derivation:
    docs/theory.md, "Why t-uniform pseudo methods are second order"). Weights exact on the ``s`` nodes
    leave ``O(h^(k+1))``: ``-C_{k+1} (s' h)^{k+1} d^k eps / ds^k + ...``, the classical Adams-Bashforth
    error in ``s`` with the error constant ``C_{k+1}`` of :attr:`LinearMultistepMethod.error_constant`.

    Returns
    -------
    sympy.Expr
        ``c * h**p`` with the lowest ``p`` whose coefficient is non-zero (0 if none up to ``order``).

    Examples
    --------
    >>> pseudo_local_error("t-uniform", 4)
    -e1*h**3*s2/12
    >>> pseudo_local_error("t-uniform", 2)
    -h**3*(e1*s2 + 5*e2*s1)/12
    >>> pseudo_local_error("s-exact", 2)  # -5/12 s1^3 (d^2 eps / ds^2) h^3, classical AB2 in s
    -5*h**3*(-e1*s2 + e2*s1)/12
    >>> sp.degree(pseudo_local_error("s-exact", 3), sp.Symbol("h"))
    4
    """
    for power, coefficient in enumerate(pseudo_local_error_expansion(weight_rule, k, order)):
        if coefficient != 0:
            return coefficient * _H**power
    return sp.Integer(0)
