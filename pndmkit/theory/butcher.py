r"""Butcher order conditions: rooted trees, elementary weights and the order of a Runge-Kutta tableau.

A tableau ``(a, b, c)`` has order ``p`` when ``Phi(t) = 1 / gamma(t)`` for every rooted tree ``t`` with at
most ``p`` nodes (Butcher), where ``Phi`` is the elementary weight and ``gamma`` the tree's density.

* :func:`rooted_trees`, :func:`tree_order`, :func:`tree_density`, :func:`format_tree` -- the trees.
* :func:`elementary_weight`, :func:`order_conditions`, :func:`tableau_order` -- the conditions.
* :class:`UndecidableConditionError` -- raised instead of guessing when a residual cannot be decided.

Exact coefficients are decided exactly: rationals in rational arithmetic, algebraic numbers (radicals,
``cos(pi/7)``, ``CRootOf``) in the number field they generate, where zero means a minimal polynomial ``x``;
other exact numbers by proofs of zero (simplification, minimal polynomial) or of non-zero (interval
enclosures), see :func:`order_conditions`. Rounded published coefficients take ``tol=``.

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
from pndmkit.theory._exact import DividesByZero, ExactArithmetic, check_positive_int, exact_arithmetic

__all__ = [
    "rooted_trees",
    "tree_order",
    "tree_density",
    "format_tree",
    "elementary_weight",
    "order_conditions",
    "tableau_order",
    "UndecidableConditionError",
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


class UndecidableConditionError(ValueError):
    """An exact condition on a tableau whose residual could be proved neither zero nor non-zero.

    Raised by :func:`tableau_order` and :func:`order_conditions` (never a guess at the order) when a
    tableau's entries are exact numbers that are not all algebraic (pi, e, ``log(2)``, ``LambertW(1)``, ...)
    and a residual is neither simplified to 0 nor enclosed away from 0. Algebraic entries (radicals,
    ``cos(k*pi/n)``, ``CRootOf``) are always decided.

    Attributes
    ----------
    tableau : str
        The tableau's name.
    condition : str
        Which condition: ``"the order-4 condition of tree [t,[t]]"`` or ``"c[2] = row sum of a[2]"``.
    residual : sympy.Expr
        The residual that could not be decided (``Phi(t) - 1/gamma(t)``, or row sum minus ``c[i]``).
    """

    def __init__(self, tableau: str, condition: str, residual: sp.Expr) -> None:
        self.tableau, self.condition, self.residual = tableau, condition, residual
        try:
            value = sp.N(residual, 30, chop=sp.Float("1e-30"))
            approx = "0 to 30 digits" if value == 0 else f"{float(value):.3g}"
        except (TypeError, ValueError):
            approx = "not evaluable"
        super().__init__(
            f"tableau {tableau!r}: could not decide whether {condition} holds: its residual {residual} "
            f"(numerically {approx}) was proved neither zero nor non-zero; give the entries as algebraic numbers "
            "(radicals, cos(k*pi/n), CRootOf) to decide exactly, or pass tol= to compare numerically")

    def __reduce__(self):  # picklable despite the three-argument constructor
        return (type(self), (self.tableau, self.condition, self.residual))


class _Tableau(NamedTuple):
    """A tableau's entries as exact sympy numbers, and whether any was typed as a float."""

    a: tuple[tuple[sp.Expr, ...], ...]
    b: tuple[sp.Expr, ...]
    c: tuple[sp.Expr, ...]
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
    return isinstance(value, (float, np.floating, sp.Float)) or (
        isinstance(value, sp.Basic) and bool(value.atoms(sp.Float)))


def _entry(value: Any, what: str) -> sp.Expr:
    """One coefficient, exactly: sympy numbers (surds, ``cos(pi/7)``, ``CRootOf``, pi) stay symbolic, the
    floats inside them and everything else follow :func:`pndmkit._rationals.to_fraction`."""
    if isinstance(value, sp.Basic) and not isinstance(value, (sp.Rational, sp.Float)):
        if not (isinstance(value, sp.Expr) and value.is_number):
            raise ValueError(f"{what} must be a real number, got {value!r}")
        value = value.xreplace({f: sp.Rational(to_fraction(f, what)) for f in value.atoms(sp.Float)})
        if value.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or value.is_extended_real is False:
            raise ValueError(f"{what} must be a finite real number, got {value!r}")
        if value.is_extended_real is None and not sp.N(value, 30).is_real:
            raise ValueError(f"{what} must be a real number; sympy could not show that {value!r} is real")
        return value
    return sp.Rational(to_fraction(value, what))


def _read(tableau: Any) -> _Tableau:
    """Convert a tableau's entries: ``a`` is ``s x s`` (rows may be shortened), ``b`` and ``c`` of length ``s``."""
    a, b, c, name = _parts(tableau)
    s = len(b)
    if s < 1 or len(c) != s or len(a) != s or any(len(row) > s for row in a):
        raise ValueError(f"tableau {name!r}: a must be {s} x {s} (rows may be shortened) and c of length {s} to match "
                         f"b; got a with rows {[len(row) for row in a]} and c of length {len(c)}")
    had_floats = any(_is_float(v) for v in [*b, *c, *(v for row in a for v in row)])
    A = tuple(tuple(_entry(row[j], f"a[{i}][{j}]") if j < len(row) else sp.Integer(0) for j in range(s))
              for i, row in enumerate(a))
    B = tuple(_entry(v, f"b[{i}]") for i, v in enumerate(b))
    C = tuple(_entry(v, f"c[{i}]") for i, v in enumerate(c))
    return _Tableau(A, B, C, name, had_floats)


def _row_sum_error(tab: _Tableau, i: int, gap: float, exact: bool) -> ValueError:
    hint = "; the coefficients look rounded: pass tol=" if tab.had_floats and exact else ""
    return ValueError(f"tableau {tab.name!r}: c must equal the row sums of a, got c[{i}] = {tab.c[i]} and row sum "
                      f"{sum(tab.a[i], sp.Integer(0))} (difference {gap:.3g}){hint}")


class _Exact(NamedTuple):
    """A tableau lifted into its exact arithmetic, with the sparsity of ``a`` decided exactly."""

    tab: _Tableau
    arith: ExactArithmetic
    rows: tuple[tuple[tuple[int, Any], ...], ...]  # row i of a as (j, a_ij) for the a_ij not proved zero
    b: tuple[Any, ...]
    explicit: bool


def _exact(tab: _Tableau) -> _Exact:
    """Lift ``tab`` into :func:`~pndmkit.theory._exact.exact_arithmetic` and check ``c_i = sum_j a_ij`` exactly."""
    named = {**{f"a[{i}][{j}]": v for i, row in enumerate(tab.a) for j, v in enumerate(row)},
             **{f"b[{i}]": v for i, v in enumerate(tab.b)}, **{f"c[{i}]": v for i, v in enumerate(tab.c)}}
    try:
        arith = exact_arithmetic(list(named.values()))
    except DividesByZero as exc:
        what = next(k for k, v in named.items() if v == exc.value)
        raise ValueError(f"tableau {tab.name!r}: {what} = {exc.value} divides by a quantity that is exactly 0, "
                         "so it is not a finite number") from exc
    a = [[arith.lift(v) for v in row] for row in tab.a]
    s = len(tab.b)
    # an entry not proved zero (undecided) is kept: a zero term changes no sum, it only costs time
    nonzero = [[arith.decide(v) is not True for v in row] for row in a]
    for i in range(s):
        gap = arith.tidy(sum((v for v, nz in zip(a[i], nonzero[i]) if nz), arith.zero) - arith.lift(tab.c[i]))
        zero = arith.decide(gap)
        if zero is None:
            raise UndecidableConditionError(tab.name, f"c[{i}] = row sum of a[{i}]", arith.expr(gap))
        if not zero:
            raise _row_sum_error(tab, i, float(sp.N(arith.expr(gap), 20)), exact=True)
    rows = tuple(tuple((j, v) for j, (v, nz) in enumerate(zip(row, nz_row)) if nz) for row, nz_row in zip(a, nonzero))
    explicit = all(j < i for i, row in enumerate(rows) for j, _ in row)
    return _Exact(tab, arith, rows, tuple(arith.lift(v) for v in tab.b), explicit)


def _stage_weights(rows: Sequence[Sequence[tuple[int, Any]]], tree: tuple, cache: dict,
                   tidy: Callable[[Any], Any], one: Any, zero: Any) -> list:
    """The stage vector ``g(t) = prod_children (A g(child))`` (elementwise), ``g(single node) = 1``;
    ``rows[i]`` lists row ``i`` of ``A`` as ``(j, a_ij)`` pairs, zeros left out."""
    if tree not in cache:
        g = [one] * len(rows)
        for child in tree:
            inner = _stage_weights(rows, child, cache, tidy, one, zero)
            g = [tidy(gi * sum((aij * inner[j] for j, aij in row), zero)) for gi, row in zip(g, rows)]
        cache[tree] = g
    return cache[tree]


def _residual(ex: _Exact, tree: tuple, cache: dict) -> Any:
    """``Phi(t) - 1/gamma(t)`` in the tableau's exact arithmetic."""
    ar = ex.arith
    g = _stage_weights(ex.rows, tree, cache, ar.tidy, ar.one, ar.zero)
    return ar.tidy(sum((bi * gi for bi, gi in zip(ex.b, g)), ar.zero) - ar.lift(sp.Rational(1, tree_density(tree))))


def _condition(tree: tuple) -> str:
    return f"the order-{tree_order(tree)} condition of tree {format_tree(tree)}"


def _decide_all(ex: _Exact, residuals: dict, every: bool) -> dict:
    """Each residual proved zero (True) or non-zero (False); None where it could not be decided.

    The cheap tests run on every residual before the expensive ones run on any; unless ``every`` residual
    must be settled, one non-zero residual found cheaply settles an order without simplifying the others."""
    decided = {tree: ex.arith.decide(r, thorough=False) for tree, r in residuals.items()}
    if ex.arith.kind == "symbolic" and (every or False not in decided.values()):
        decided = {tree: d if d is not None else ex.arith.decide(residuals[tree]) for tree, d in decided.items()}
    return decided


def elementary_weight(tableau: Any, tree: tuple) -> sp.Expr:
    r"""The elementary weight :math:`\Phi(t) = b^T g(t)` of ``tree`` for ``tableau``, exactly.

    Entries are read as in :func:`order_conditions`; an algebraic tableau's weight comes back as a
    polynomial in the generators of the number field its entries span.

    Examples
    --------
    >>> from collections import namedtuple
    >>> T = namedtuple("T", "a b c")
    >>> heun = T(((0, 0), (1, 0)), (sp.Rational(1, 2), sp.Rational(1, 2)), (0, 1))
    >>> elementary_weight(heun, ((),))  # b . c
    1/2
    """
    ex = _exact(_read(tableau))
    ar = ex.arith
    g = _stage_weights(ex.rows, tree, {}, ar.tidy, ar.one, ar.zero)
    return ar.expr(ar.tidy(sum((bi * gi for bi, gi in zip(ex.b, g)), ar.zero)))


def order_conditions(tableau: Any, p: int) -> dict[tuple, sp.Expr]:
    r"""Residuals ``Phi(t) - 1/gamma(t)`` of every rooted tree with at most ``p`` nodes, exactly.

    ``tableau`` is a :class:`~pndmkit.tableaus.ButcherTableau`, anything with ``.a`` (rows of the stage
    matrix, which may be shortened), ``.b`` and ``.c`` (nodepy's methods spell it ``.A``), or a sequence
    ``(a, b, c)``. Entries may be ints, Fractions, strings such as ``"7/10"`` and exact sympy real numbers:
    radicals, nested radicals, trigonometric values such as ``cos(pi/7)``, ``CRootOf`` roots of
    polynomials, and also transcendental numbers such as ``pi``. A float (also one inside a sympy
    expression) is read as the simplest fraction that rounds to it (:func:`pndmkit._rationals.to_fraction`),
    the same rule :class:`~pndmkit.tableaus.ButcherTableau` applies. The tableau has order ``>= p`` iff
    every residual is zero.

    Parameters
    ----------
    tableau : ButcherTableau, object with ``a`` (or ``A``), ``b``, ``c``, or sequence ``(a, b, c)``
        The tableau, explicit or implicit.
    p : int
        The largest tree order, ``>= 1``.

    Returns
    -------
    dict
        Tree (canonical nested tuple, see :func:`rooted_trees`) to its residual, a sympy number; a
        residual proved zero is the integer ``0``.

    Raises
    ------
    UndecidableConditionError
        A residual (or a difference ``c_i - sum_j a_ij``) could be proved neither zero nor non-zero; the
        message names the condition and the residual.
    ValueError
        An entry is not a finite real number, ``c`` is not the row sums of ``a``, or the shapes disagree.
    TypeError
        ``tableau`` is none of the containers above, or an entry is not a number.

    Notes
    -----
    How zero is decided:

    * Rational entries: exact rational arithmetic.
    * Algebraic entries: the residuals are computed in the number field ``Q(theta)`` that the entries
      generate (sympy's ``AlgebraicField`` with a primitive element ``theta``), where a number is zero iff
      its coordinates are, i.e. iff its minimal polynomial is ``x``. Exact: a non-zero residual of
      ``1e-30`` is non-zero, and a zero one is zero however it is written. Non-zero residuals come back
      as polynomials in the field's generators.
    * Entries that are not algebraic (pi, e, ...): a residual is zero when sympy simplifies it to ``0``
      or its minimal polynomial is ``x``, non-zero when an ``mpmath.iv`` interval enclosure (outward
      rounding, up to 1024 bits) excludes 0. Values of functions that have no interval version there
      (``LambertW``, ``gamma``, ...) enter the enclosure as balls around their strict sympy evaluation,
      twice as wide in digits as its accuracy.

    Examples
    --------
    >>> from collections import namedtuple
    >>> T = namedtuple("T", "a b c")
    >>> euler = T(((0,),), (1,), (0,))
    >>> {format_tree(t): r for t, r in order_conditions(euler, 2).items()}
    {'t': 0, '[t]': -1/2}
    """
    check_positive_int(p, "p")
    ex = _exact(_read(tableau))
    cache: dict = {}
    out = {}
    for n in range(1, p + 1):
        residuals = {tree: _residual(ex, tree, cache) for tree in rooted_trees(n)}
        for tree, zero in _decide_all(ex, residuals, every=True).items():
            if zero is None:
                raise UndecidableConditionError(ex.tab.name, _condition(tree), ex.arith.expr(residuals[tree]))
            out[tree] = sp.Integer(0) if zero else ex.arith.expr(residuals[tree])
    return out


def _to_mpf(value: sp.Expr, what: str) -> mpmath.mpf:
    if value.is_Rational:
        return mpmath.mpf(int(value.p)) / int(value.q)
    approx = sp.N(value, _DIGITS + 10)
    if not approx.is_Float:
        raise ValueError(f"{what} = {value} could not be evaluated numerically (got {approx})")
    return mpmath.mpf(str(approx))


def _order_with_tol(tab: _Tableau, tol: float, max_order: int | None) -> int:
    """Order with the conditions and ``c_i = sum_j a_ij`` met to ``tol``, in ``_DIGITS``-digit arithmetic."""
    s = len(tab.b)
    with mpmath.workdps(_DIGITS):
        a = [[_to_mpf(v, f"a[{i}][{j}]") for j, v in enumerate(row)] for i, row in enumerate(tab.a)]
        b = [_to_mpf(v, f"b[{i}]") for i, v in enumerate(tab.b)]
        for i, ci in enumerate(tab.c):
            gap = mpmath.fsum(a[i]) - _to_mpf(ci, f"c[{i}]")
            if abs(gap) > tol:
                raise _row_sum_error(tab, i, float(gap), exact=False)
        rows = tuple(tuple((j, v) for j, v in enumerate(row) if v != 0) for row in a)
        explicit = all(j < i for i, row in enumerate(rows) for j, _ in row)
        limit = max_order if max_order is not None else (s if explicit else 2 * s)
        cache: dict = {}
        for p in range(1, limit + 1):
            for tree in rooted_trees(p):
                g = _stage_weights(rows, tree, cache, lambda v: v, mpmath.mpf(1), mpmath.mpf(0))
                phi = mpmath.fsum(bi * gi for bi, gi in zip(b, g))
                if abs(phi - mpmath.mpf(1) / tree_density(tree)) > tol:
                    return p - 1
    return limit


def tableau_order(tableau: Any, max_order: int | None = None, *, tol: float | None = None) -> int:
    r"""The order of a Runge-Kutta tableau: the largest ``p`` with all order conditions up to ``p`` satisfied.

    Parameters
    ----------
    tableau : ButcherTableau, object with ``a`` (or nodepy's ``A``), ``b``, ``c``, or sequence ``(a, b, c)``
        Entries as in :func:`order_conditions`: ints, Fractions, strings, floats (read as the simplest
        fraction that rounds to them) and exact sympy real numbers (radicals, ``cos(pi/7)``, ``CRootOf``,
        pi, ...). Explicit and implicit tableaus alike.
    max_order : int, optional
        Where the search stops (default: the number of stages for an explicit tableau, twice that
        otherwise, the largest orders possible).
    tol : float, optional
        ``None`` (default): the conditions must hold exactly, and each is decided exactly (below). A
        number: a condition holds when ``|Phi(t) - 1/gamma(t)| <= tol``, and ``c`` must match the row sums
        of ``a`` to ``tol``; the residuals are evaluated in 50-digit arithmetic, so ``tol`` measures only
        the coefficients' own rounding. Use it for published coefficients that are not simple rationals
        (Tsit5, Prince-Dormand 8(7), the optimised SSP methods): ``1e-12`` suits coefficients given to
        double precision, ``1e-9`` those published to about ten digits.

    Returns
    -------
    int
        The order ``p``: every residual ``Phi(t) - 1/gamma(t)`` with ``|t| <= p`` is zero (or within
        ``tol``), and one with ``|t| = p + 1`` is proved non-zero (or beyond ``tol``); or ``max_order`` / the
        default limit when reached.

    Raises
    ------
    UndecidableConditionError
        Exact mode only: no condition of order ``p + 1`` is proved to fail, and one of them (or one
        ``c_i = sum_j a_ij``) could be proved neither to hold nor to fail. It names the condition and
        the residual. This needs entries that are not algebraic; the order is never guessed.
    ValueError
        ``tol`` is not a finite number ``>= 0``, ``max_order`` is not a positive integer, an entry is not
        a finite real number, ``c`` differs from the row sums of ``a`` (exactly, or by more than ``tol``;
        with floats the message suggests ``tol=``), or the shapes disagree.
    TypeError
        ``tableau`` is none of the containers above, or an entry is not a number.

    Warns
    -----
    UserWarning
        In exact mode, when float coefficients fail a condition by less than ``1e-10``: they are
        probably rounded, and ``tol=`` would count that order.

    Notes
    -----
    The exact decision is made in the arithmetic the entries call for (see :func:`order_conditions`):
    rational arithmetic; for algebraic entries the number field they generate, where a residual is zero
    iff its minimal polynomial is ``x``, so the answer needs no simplification and no rounding; for other
    exact numbers, sympy's simplification to ``0`` or the minimal polynomial prove zero and an interval
    enclosure excluding 0 proves non-zero. A residual proved neither way raises instead of being guessed.
    Butcher's order conditions: J. C. Butcher, *Numerical Methods for Ordinary Differential Equations*,
    3rd ed., Wiley 2016, sect. 31-32; E. Hairer, S. P. Norsett, G. Wanner, *Solving Ordinary
    Differential Equations I*, 2nd ed., Springer 1993, sect. II.2.

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

    Three-stage SDIRK of order 4 (Norsett 1974), whose entries hold ``cos(pi/18)``:

    >>> g = sp.Rational(1, 2) + sp.cos(sp.pi / 18) / sp.sqrt(3)
    >>> d = 1 / (6 * (2 * g - 1) ** 2)
    >>> sdirk = T(((g, 0, 0), (sp.Rational(1, 2) - g, g, 0), (2 * g, 1 - 4 * g, g)),
    ...           (d, 1 - 2 * d, d), (g, sp.Rational(1, 2), 1 - g))
    >>> tableau_order(sdirk)
    4
    """
    if tol is not None:
        if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)) or not 0 <= tol < math.inf:
            raise ValueError(f"tol must be a finite number >= 0 or None, got {tol!r}")
        tol = float(tol)
    if max_order is not None:
        max_order = check_positive_int(max_order, "max_order")
    tab = _read(tableau)
    if tol is not None:
        return _order_with_tol(tab, tol, max_order)
    ex = _exact(tab)
    s = len(tab.b)
    limit = max_order if max_order is not None else (s if ex.explicit else 2 * s)
    cache: dict = {}
    for p in range(1, limit + 1):
        residuals = {tree: _residual(ex, tree, cache) for tree in rooted_trees(p)}
        decided = _decide_all(ex, residuals, every=False)
        failed = [tree for tree, zero in decided.items() if zero is False]
        if failed:
            if tab.had_floats:
                worst = max(abs(float(sp.N(ex.arith.expr(residuals[t]), 20))) for t in failed)
                if worst < 1e-10:
                    warnings.warn(f"tableau {tab.name!r}: the order-{p} conditions fail exactly but hold to "
                                  f"{worst:.1e}; its float coefficients look rounded: tableau_order(..., tol=1e-12) "
                                  "counts them", stacklevel=2)
            return p - 1
        for tree, zero in decided.items():
            if zero is None:
                raise UndecidableConditionError(tab.name, _condition(tree), ex.arith.expr(residuals[tree]))
    return limit
