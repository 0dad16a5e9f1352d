r"""Butcher order conditions: rooted trees, elementary weights and the order of a Runge-Kutta tableau.

A tableau ``(a, b, c)`` has order ``p`` when ``Phi(t) = 1 / gamma(t)`` for every rooted tree ``t`` with at
most ``p`` nodes (Butcher), where ``Phi`` is the elementary weight and ``gamma`` the tree's density.

* :func:`rooted_trees`, :func:`tree_order`, :func:`tree_density`, :func:`format_tree` -- the trees.
* :func:`elementary_weight`, :func:`order_conditions`, :func:`tableau_order` -- the conditions.

Examples
--------
>>> [format_tree(t) for t in rooted_trees(4)]
['[[t,t]]', '[[[t]]]', '[t,[t]]', '[t,t,t]']
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Any, Callable, NamedTuple, Sequence

import mpmath
import numpy as np
import sympy as sp

from pndmkit._rationals import to_fraction
from pndmkit.theory._exact import check_positive_int

__all__ = [
    "rooted_trees",
    "tree_order",
    "tree_density",
    "format_tree",
    "elementary_weight",
    "order_conditions",
    "tableau_order",
]

_DIGITS = 50  # working precision of tableau_order's tolerance mode


@lru_cache(maxsize=None)
def _forests(total: int) -> tuple[tuple, ...]:
    """All multisets (sorted tuples) of rooted trees with ``total`` nodes in all."""
    if total == 0:
        return ((),)
    out = set()
    for first in range(1, total + 1):
        for tree in rooted_trees(first):
            for rest in _forests(total - first):
                out.add(tuple(sorted((tree,) + rest)))
    return tuple(sorted(out, key=lambda f: (len(f), f)))


@lru_cache(maxsize=None)
def rooted_trees(order: int) -> tuple[tuple, ...]:
    r"""All rooted trees with ``order`` nodes, as canonical nested tuples (a tree is the sorted tuple of its subtrees).

    Examples
    --------
    >>> [len(rooted_trees(n)) for n in range(1, 8)]
    [1, 1, 2, 4, 9, 20, 48]
    >>> [format_tree(t) for t in rooted_trees(3)]
    ['[[t]]', '[t,t]']
    """
    check_positive_int(order, "order")
    return tuple(sorted(_forests(order - 1), key=lambda f: (len(f), f)))


def tree_order(tree: tuple) -> int:
    """Number of nodes of ``tree``."""
    return 1 + sum(tree_order(child) for child in tree)


def tree_density(tree: tuple) -> int:
    r"""The density :math:`\gamma(t) = |t| \prod \gamma(t_i)`; the order condition is ``Phi(t) = 1/gamma(t)``."""
    return tree_order(tree) * math.prod(tree_density(child) for child in tree)


def format_tree(tree: tuple) -> str:
    """Bracket notation: ``t`` is the single node, ``[u,v]`` the root with subtrees ``u`` and ``v``."""
    return "t" if not tree else "[" + ",".join(format_tree(child) for child in tree) + "]"


class _Tableau(NamedTuple):
    """A tableau's entries as exact sympy numbers, and whether any was typed as a float."""

    a: tuple[tuple[sp.Expr, ...], ...]
    b: tuple[sp.Expr, ...]
    name: str
    had_floats: bool


def _parts(tableau: Any) -> tuple[Any, Any, Any, str]:
    """``(a, b, c, name)`` of a ButcherTableau, any object with ``a``/``b``/``c`` (or nodepy's ``A``), or ``(a, b, c)``."""
    if all(hasattr(tableau, k) for k in ("a", "b", "c")):
        return tableau.a, tableau.b, tableau.c, str(getattr(tableau, "name", "tableau"))
    if all(hasattr(tableau, k) for k in ("A", "b", "c")):
        return tableau.A, tableau.b, tableau.c, str(getattr(tableau, "name", "tableau"))
    if isinstance(tableau, Sequence) and not isinstance(tableau, str) and len(tableau) == 3:
        a, b, c = tableau
        return a, b, c, "tableau"
    raise TypeError("tableau must be a ButcherTableau, an object with attributes a, b and c, or a sequence "
                    f"(a, b, c); got {type(tableau).__name__} {tableau!r}")


def _is_float(value: Any) -> bool:
    return isinstance(value, (float, np.floating, sp.Float))


def _entry(value: Any, what: str) -> sp.Expr:
    """One coefficient, exactly: surds stay symbolic, everything else follows :func:`pndmkit._rationals.to_fraction`."""
    if isinstance(value, sp.Basic) and not isinstance(value, (sp.Rational, sp.Float)):
        if value.is_number and value.is_real:
            return value
        raise ValueError(f"{what} must be a real number, got {value!r}")
    return sp.Rational(to_fraction(value, what))


def _read(tableau: Any, tol: float | None) -> _Tableau:
    """Convert and check a tableau: ``a`` is ``s x s`` (rows may be shortened), ``c`` equals its row sums."""
    a, b, c, name = _parts(tableau)
    s = len(b)
    if s < 1 or len(c) != s or len(a) != s or any(len(row) > s for row in a):
        raise ValueError(f"tableau {name!r}: a must be {s} x {s} (rows may be shortened) and c of length {s} to match "
                         f"b; got a with rows {[len(row) for row in a]} and c of length {len(c)}")
    had_floats = any(_is_float(v) for v in [*b, *c, *(v for row in a for v in row)])
    A = tuple(tuple(_entry(row[j], f"a[{i}][{j}]") if j < len(row) else sp.Integer(0) for j in range(s))
              for i, row in enumerate(a))
    B = tuple(_entry(v, f"b[{i}]") for i, v in enumerate(b))
    for i, v in enumerate(c):
        ci = _entry(v, f"c[{i}]")
        gap = sp.nsimplify(sum(A[i], sp.Integer(0)) - ci) if not (ci.is_Rational and all(x.is_Rational for x in A[i])) \
            else sum(A[i], sp.Integer(0)) - ci
        if (gap != 0 and tol is None) or (tol is not None and abs(float(gap)) > tol):
            hint = "; the coefficients look rounded: pass tol=" if had_floats and tol is None else ""
            raise ValueError(f"tableau {name!r}: c must equal the row sums of a, got c[{i}] = {ci} and row sum "
                             f"{sum(A[i], sp.Integer(0))} (difference {float(gap):.3g}){hint}")
    return _Tableau(A, B, name, had_floats)


def _stage_weights(A: Sequence[Sequence[Any]], tree: tuple, cache: dict, tidy: Callable[[Any], Any]) -> list:
    """The stage vector ``g(t) = prod_children (A g(child))`` (elementwise), ``g(single node) = 1``."""
    if tree not in cache:
        one = A[0][0] * 0 + 1
        g = [one] * len(A)
        for child in tree:
            inner = _stage_weights(A, child, cache, tidy)
            g = [tidy(gi * sum((aij * xj for aij, xj in zip(row, inner) if aij != 0), one * 0))
                 for gi, row in zip(g, A)]
        cache[tree] = g
    return cache[tree]


def _exact_residuals(tab: _Tableau, n: int, cache: dict) -> dict[tuple, sp.Expr]:
    """``Phi(t) - 1/gamma(t)`` exactly, for the trees with ``n`` nodes."""
    surds = not all(v.is_Rational for v in (*tab.b, *(x for row in tab.a for x in row)))
    tidy = sp.expand if surds else (lambda v: v)
    out = {}
    for tree in rooted_trees(n):
        g = _stage_weights(tab.a, tree, cache, tidy)
        residual = sum((bi * gi for bi, gi in zip(tab.b, g)), sp.Integer(0)) - sp.Rational(1, tree_density(tree))
        out[tree] = sp.simplify(residual) if surds else residual
    return out


def elementary_weight(tableau: Any, tree: tuple) -> sp.Expr:
    r"""The elementary weight :math:`\Phi(t) = b^T g(t)` of ``tree`` for ``tableau``, exactly.

    Examples
    --------
    >>> from collections import namedtuple
    >>> T = namedtuple("T", "a b c")
    >>> heun = T(((0, 0), (1, 0)), (sp.Rational(1, 2), sp.Rational(1, 2)), (0, 1))
    >>> elementary_weight(heun, ((),))  # b . c
    1/2
    """
    tab = _read(tableau, None)
    return _exact_residuals(tab, tree_order(tree), {})[tree] + sp.Rational(1, tree_density(tree))


def order_conditions(tableau: Any, p: int) -> dict[tuple, sp.Expr]:
    r"""Residuals ``Phi(t) - 1/gamma(t)`` of every rooted tree with at most ``p`` nodes, exactly.

    ``tableau`` is a :class:`~pndmkit.tableaus.ButcherTableau`, anything with ``.a`` (rows of the stage
    matrix, which may be shortened), ``.b`` and ``.c``, or a sequence ``(a, b, c)``. Entries may be ints,
    Fractions, strings such as ``"7/10"`` and sympy numbers (including surds); a float is read as the
    simplest fraction that rounds to it (:func:`pndmkit._rationals.to_fraction`), the same rule
    :class:`~pndmkit.tableaus.ButcherTableau` applies. The tableau has order ``>= p`` iff every residual is zero.

    Examples
    --------
    >>> from collections import namedtuple
    >>> T = namedtuple("T", "a b c")
    >>> euler = T(((0,),), (1,), (0,))
    >>> {format_tree(t): r for t, r in order_conditions(euler, 2).items()}
    {'t': 0, '[t]': -1/2}
    """
    check_positive_int(p, "p")
    tab = _read(tableau, None)
    cache: dict = {}
    return {tree: r for n in range(1, p + 1) for tree, r in _exact_residuals(tab, n, cache).items()}


def _to_mpf(value: sp.Expr) -> mpmath.mpf:
    if value.is_Rational:
        return mpmath.mpf(int(value.p)) / int(value.q)
    return mpmath.mpf(str(sp.N(value, _DIGITS + 10)))


def tableau_order(tableau: Any, max_order: int | None = None, *, tol: float | None = None) -> int:
    r"""The order of a Runge-Kutta tableau: the largest ``p`` with all order conditions up to ``p`` satisfied.

    Parameters
    ----------
    tableau : ButcherTableau, object with ``a``, ``b``, ``c``, or sequence ``(a, b, c)``
        Entries as in :func:`order_conditions`; every route reads them by the same rule.
    max_order : int, optional
        Where the search stops (default: the number of stages for an explicit tableau, twice that
        otherwise, the largest orders possible).
    tol : float, optional
        ``None`` (default): the conditions must hold exactly. A number: a condition holds when
        ``|Phi(t) - 1/gamma(t)| <= tol``, and ``c`` must match the row sums of ``a`` to ``tol``; the
        residuals are evaluated in 50-digit arithmetic, so ``tol`` measures only the coefficients'
        own rounding. Use it for published coefficients that are not simple rationals (Tsit5,
        Prince-Dormand 8(7)); ``1e-12`` suits coefficients given to double precision.

    Returns
    -------
    int

    Warns
    -----
    UserWarning
        In exact mode, when float coefficients fail a condition by less than ``1e-10``: they are
        probably rounded, and ``tol=`` would count that order.

    Examples
    --------
    >>> from collections import namedtuple
    >>> T = namedtuple("T", "a b c")
    >>> h = sp.Rational(1, 2)
    >>> rk4 = T(((0, 0, 0, 0), (h, 0, 0, 0), (0, h, 0, 0), (0, 0, 1, 0)),
    ...         (sp.Rational(1, 6), sp.Rational(1, 3), sp.Rational(1, 3), sp.Rational(1, 6)), (0, h, h, 1))
    >>> tableau_order(rk4)
    4
    >>> tableau_order(([[0, 0], [1 / 3, 0]], [-0.5, 1.5], [0, 1 / 3]))  # floats of 1/3, -1/2, 3/2
    2
    """
    if tol is not None:
        if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)) or not 0 <= tol < math.inf:
            raise ValueError(f"tol must be a finite number >= 0 or None, got {tol!r}")
        tol = float(tol)
    if max_order is not None:
        max_order = check_positive_int(max_order, "max_order")
    tab = _read(tableau, tol)
    s = len(tab.b)
    explicit = all(tab.a[i][j] == 0 for i in range(s) for j in range(i, s))
    limit = max_order if max_order is not None else (s if explicit else 2 * s)
    cache: dict = {}
    if tol is not None:
        with mpmath.workdps(_DIGITS):
            a = [[_to_mpf(v) for v in row] for row in tab.a]
            b = [_to_mpf(v) for v in tab.b]
            for p in range(1, limit + 1):
                for tree in rooted_trees(p):
                    phi = mpmath.fsum(bi * gi for bi, gi in zip(b, _stage_weights(a, tree, cache, lambda v: v)))
                    if abs(phi - mpmath.mpf(1) / tree_density(tree)) > tol:
                        return p - 1
        return limit
    for p in range(1, limit + 1):
        residuals = _exact_residuals(tab, p, cache)
        if any(r != 0 for r in residuals.values()):
            worst = max(abs(float(r)) for r in residuals.values())
            if tab.had_floats and worst < 1e-10:
                warnings.warn(f"tableau {tab.name!r}: the order-{p} conditions fail exactly but hold to {worst:.1e}; "
                              f"its float coefficients look rounded: tableau_order(..., tol=1e-12) counts them",
                              stacklevel=2)
            return p - 1
    return limit
