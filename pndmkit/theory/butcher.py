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
from functools import lru_cache
from typing import Any

import sympy as sp

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


def _tableau_arrays(tableau: Any) -> tuple[sp.Matrix, sp.Matrix]:
    try:
        a, b, c = tableau.a, tableau.b, tableau.c
    except AttributeError as exc:
        raise TypeError(f"tableau must have attributes a, b and c, got {tableau!r}") from exc
    s = len(b)
    if len(c) != s or len(a) != s or any(len(row) > s for row in a):
        raise ValueError(f"tableau {tableau!r}: a must be {s} x {s} (rows may be shortened), c of length {s}")
    A = sp.zeros(s, s)
    for i, row in enumerate(a):
        for j, v in enumerate(row):
            A[i, j] = sp.nsimplify(v) if isinstance(v, float) else sp.sympify(v)
    B = sp.Matrix([sp.nsimplify(v) if isinstance(v, float) else sp.sympify(v) for v in b])
    C = sp.Matrix([sp.nsimplify(v) if isinstance(v, float) else sp.sympify(v) for v in c])
    row_sums = A * sp.ones(s, 1)
    if any(sp.simplify(row_sums[i] - C[i]) != 0 for i in range(s)):
        raise ValueError(f"tableau {getattr(tableau, 'name', tableau)!r}: c must equal the row sums of a, "
                         f"got c={list(C)}, row sums={list(row_sums)}")
    return A, B


def _stage_weights(A: sp.Matrix, tree: tuple, cache: dict) -> sp.Matrix:
    """The stage vector ``g(t) = prod_children (A g(child))`` (elementwise), ``g(single node) = 1``."""
    if tree not in cache:
        g = sp.ones(A.rows, 1)
        for child in tree:
            g = g.multiply_elementwise(A * _stage_weights(A, child, cache))
        cache[tree] = g.applyfunc(sp.expand)
    return cache[tree]


def elementary_weight(tableau: Any, tree: tuple) -> sp.Expr:
    r"""The elementary weight :math:`\Phi(t) = b^T g(t)` of ``tree`` for ``tableau``.

    Examples
    --------
    >>> from collections import namedtuple
    >>> T = namedtuple("T", "a b c")
    >>> heun = T(((0, 0), (1, 0)), (sp.Rational(1, 2), sp.Rational(1, 2)), (0, 1))
    >>> elementary_weight(heun, ((),))  # b . c
    1/2
    """
    A, B = _tableau_arrays(tableau)
    return sp.simplify((B.T * _stage_weights(A, tree, {}))[0, 0])


def order_conditions(tableau: Any, p: int) -> dict[tuple, sp.Expr]:
    r"""Residuals ``Phi(t) - 1/gamma(t)`` of every rooted tree with at most ``p`` nodes, exactly.

    ``tableau`` is anything with ``.a`` (rows of the stage matrix), ``.b`` and ``.c``; entries may be
    ints, Fractions, sympy numbers (including surds); floats are converted with ``nsimplify``.
    The tableau has order ``>= p`` iff every residual is zero.

    Examples
    --------
    >>> from collections import namedtuple
    >>> T = namedtuple("T", "a b c")
    >>> euler = T(((0,),), (1,), (0,))
    >>> {format_tree(t): r for t, r in order_conditions(euler, 2).items()}
    {'t': 0, '[t]': -1/2}
    """
    check_positive_int(p, "p")
    A, B = _tableau_arrays(tableau)
    cache: dict = {}
    out = {}
    for n in range(1, p + 1):
        for tree in rooted_trees(n):
            phi = (B.T * _stage_weights(A, tree, cache))[0, 0]
            out[tree] = sp.simplify(phi - sp.Rational(1, tree_density(tree)))
    return out


def tableau_order(tableau: Any, max_order: int | None = None) -> int:
    r"""The order of a Runge-Kutta tableau: the largest ``p`` with all order conditions up to ``p`` satisfied.

    The search stops at ``max_order`` (default: the number of stages for an explicit tableau, twice
    that otherwise, the largest orders possible).

    Examples
    --------
    >>> from collections import namedtuple
    >>> T = namedtuple("T", "a b c")
    >>> h = sp.Rational(1, 2)
    >>> rk4 = T(((0, 0, 0, 0), (h, 0, 0, 0), (0, h, 0, 0), (0, 0, 1, 0)),
    ...         (sp.Rational(1, 6), sp.Rational(1, 3), sp.Rational(1, 3), sp.Rational(1, 6)), (0, h, h, 1))
    >>> tableau_order(rk4)
    4
    """
    A, _ = _tableau_arrays(tableau)
    s = A.rows
    explicit = all(A[i, j] == 0 for i in range(s) for j in range(i, s))
    limit = max_order if max_order is not None else (s if explicit else 2 * s)
    p = 0
    while p < limit:
        residuals = order_conditions(tableau, p + 1)
        if any(r != 0 for t, r in residuals.items() if tree_order(t) == p + 1):
            break
        p += 1
    return p

