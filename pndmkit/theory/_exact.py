"""Shared by the theory modules: input rules (exact rationals, positive integers) and exact zero tests."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Sequence, Union

import numpy as np
import sympy as sp

#: what the exact routines accept as a number
Number = Union[int, float, Fraction, sp.Rational, str]


def as_rational(value: Any, name: str) -> sp.Rational:
    """Convert ``value`` (int, Fraction, sympy Rational, str such as "7/10", or float) to an exact Rational.

    Floats are taken at their exact binary value: a grid time ``0.1`` is the double nearest to 1/10,
    and weights computed for it must match what a float computation on that double sees.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got the bool {value!r}")
    if isinstance(value, str):
        try:
            return sp.Rational(value.strip())
        except (TypeError, ValueError, ZeroDivisionError) as exc:
            raise ValueError(f"{name}={value!r} is not a rational number such as 3/2 or 0.7") from exc
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return sp.Rational(float(value))  # the exact binary value
    out = sp.sympify(value)
    if not out.is_Rational:
        raise ValueError(f"{name}={value!r} is not rational; the exact path needs rationals")
    return out


def check_positive_int(k: Any, name: str = "k") -> int:
    """Return ``k`` as an int, or raise ``ValueError`` naming ``name`` if it is not a positive integer."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


# -- deciding whether an exact real number is zero ------------------------------------------------------
#
# Three arithmetics, picked from the numbers involved (see :func:`exact_arithmetic`):
#
# * ``rational``: every number is a sympy Rational; zero means zero.
# * ``field``: every number is algebraic; they are lifted into one number field Q(theta) (sympy's
#   ``AlgebraicField``, theta a primitive element of the field the numbers generate) and computed there
#   exactly, as polynomials in theta reduced by theta's minimal polynomial. An element is zero iff all its
#   coordinates are, i.e. iff its minimal polynomial is ``x``: no rounding and no simplification heuristics.
# * ``symbolic``: some number is not known to be algebraic (pi, e, log 2, cos 1, ...). Each number is a
#   sympy expression and :func:`decide_zero` proves it zero (it simplifies to the literal 0, or its
#   minimal polynomial is ``x``) or non-zero (an interval enclosure at increasing precision excludes 0,
#   or its minimal polynomial is not ``x``), and otherwise answers ``None``: undecided. Functions without
#   a certified interval version in mpmath (LambertW, gamma, ...) are enclosed by a ball around their
#   strict sympy/mpmath value, twice as wide in digits as that value's accuracy (:func:`_ball`).

#: binary precisions of the interval enclosures tried in turn (bits; 1024 bits ~ 308 digits)
_PRECISIONS = (128, 256, 512, 1024)
#: functions with a certified interval version in mpmath.iv
_INTERVAL_FUNCTIONS = {sp.exp: "exp", sp.log: "log", sp.sin: "sin", sp.cos: "cos", sp.tan: "tan"}


class DividesByZero(ValueError):
    """A number that divides by a quantity that is exactly zero; ``value`` is the number."""

    def __init__(self, value: sp.Expr) -> None:
        super().__init__(f"{value} is not a finite number: it divides by a quantity that is exactly 0")
        self.value = value


class NotEnclosable(Exception):
    """The expression holds a function that has no certified interval evaluation here."""


def _interval(expr: sp.Expr, iv: Any, prec: int) -> Any:
    """An ``mpmath.iv`` interval that certainly contains the real number ``expr`` (outward rounding)."""
    if expr.is_Rational:
        return iv.mpf(int(expr.p)) / int(expr.q)
    if expr is sp.pi:
        return iv.pi
    if expr is sp.E:
        return iv.e
    if expr.is_Add:
        return sum((_interval(arg, iv, prec) for arg in expr.args[1:]), _interval(expr.args[0], iv, prec))
    if expr.is_Mul:
        out = _interval(expr.args[0], iv, prec)
        for arg in expr.args[1:]:
            out = out * _interval(arg, iv, prec)
        return out
    if expr.is_Pow:
        base = _interval(expr.base, iv, prec)
        if expr.exp.is_Integer:
            if expr.exp < 0 and base.a <= 0 <= base.b:
                raise NotEnclosable(f"division by an interval around 0 in {expr}")
            return base ** int(expr.exp)
        if base.a > 0 and expr.exp.is_real:
            return iv.exp(iv.log(base) * _interval(expr.exp, iv, prec))
        raise NotEnclosable(f"power of a base not known to be positive: {expr}")
    if isinstance(expr, sp.CRootOf) and expr.is_real:
        dx = sp.Rational(1, 2 ** (prec + 8))
        q = expr.eval_rational(dx=dx, dy=dx, n=max(15, prec // 3))  # within dx of the root (isolating intervals)
        lo, hi = _interval(q - dx, iv, prec), _interval(q + dx, iv, prec)
        return iv.mpf([lo.a, hi.b])
    if isinstance(expr, sp.AlgebraicNumber):
        return _interval(expr.as_expr(), iv, prec)
    name = _INTERVAL_FUNCTIONS.get(expr.func)
    if name is not None and len(expr.args) == 1:
        arg = _interval(expr.args[0], iv, prec)
        if name == "log" and arg.a <= 0:
            raise NotEnclosable(f"log of an interval reaching 0 or below: {expr}")
        return getattr(iv, name)(arg)
    return _ball(expr, iv, prec)


def _ball(expr: sp.Expr, iv: Any, prec: int) -> Any:
    """A number without an interval version here (``LambertW(1)``, ``EulerGamma``, ``gamma(1/3)``): sympy's
    evalf to ``prec`` bits (``strict``: it must reach that accuracy), widened to a ball of relative radius
    ``2**(-prec/2)``, half the digits mpmath computes it to."""
    import mpmath
    from sympy.core.evalf import PrecisionExhausted

    digits = int(prec * 0.30103) + 1
    try:
        value = sp.N(expr, digits, strict=True)
    except (PrecisionExhausted, ValueError, TypeError) as exc:
        raise NotEnclosable(f"{expr} could not be evaluated to {digits} digits") from exc
    if not value.is_Float:
        raise NotEnclosable(f"{expr} did not evaluate to a real number (got {value})")
    with mpmath.workprec(prec + 16):
        mid = mpmath.mpf(value)
        radius = (1 + abs(mid)) * mpmath.ldexp(1, -(prec // 2))
        return iv.mpf([mid - radius, mid + radius])


def proved_nonzero(expr: sp.Expr) -> bool:
    """True when an interval enclosure of the real number ``expr`` excludes 0 (``mpmath.iv``, outward
    rounding, at 128 to 1024 bits); False when it does not or cannot be enclosed (which proves nothing).

    Rationals, pi, e, sums, products, powers, exp, log, sin, cos, tan and real ``CRootOf`` roots (through
    their isolating intervals) are enclosed with certified bounds; any other function value by a ball of
    relative radius ``2**(-bits/2)`` around sympy's strict evaluation (:func:`_ball`)."""
    import mpmath

    iv = mpmath.iv
    old = iv.prec
    try:
        for prec in _PRECISIONS:
            iv.prec = prec
            try:
                box = _interval(expr, iv, prec)
            except (NotEnclosable, ZeroDivisionError, ValueError, ArithmeticError):
                return False
            if box.a > 0 or box.b < 0:
                return True
    finally:
        iv.prec = old
    return False


def decide_zero(expr: sp.Expr, thorough: bool = True) -> bool | None:
    """Whether the real number ``expr`` is zero: True, False, or None when it could be proved neither.

    Zero is proved by sympy rewriting ``expr`` to the literal 0 (``expand``, then ``simplify`` when
    ``thorough``) or by its minimal polynomial being ``x``; non-zero by an interval enclosure that excludes
    0 (:func:`proved_nonzero`) or by a minimal polynomial other than ``x``. Without ``thorough`` only the
    cheap tests run (expansion and the enclosure), and None means "not decided yet".
    """
    expr = sp.expand(sp.sympify(expr))
    if expr.is_Rational:
        return bool(expr == 0)
    if proved_nonzero(expr):
        return False
    if not thorough:
        return None
    from sympy.polys.polyerrors import NotAlgebraic, PolynomialError

    x = sp.Dummy("x")
    try:
        poly = sp.minimal_polynomial(expr, x, polys=True)
    except (NotAlgebraic, NotImplementedError, PolynomialError, ValueError, TypeError):
        poly = None
    if poly is not None:
        return bool(poly == sp.Poly(x, x))
    if sp.simplify(expr) == 0:
        return True
    return None


class ExactArithmetic:
    """Exact arithmetic on one set of real numbers: ``lift`` a sympy number in, add and multiply the
    results with ``+``/``*``, ``decide`` whether one is zero, and turn it back into a sympy ``expr``.

    Build it with :func:`exact_arithmetic`. ``kind`` is ``"rational"``, ``"field"`` or ``"symbolic"``.
    """

    def __init__(self, kind: str, field: Any = None, lifted: dict | None = None) -> None:
        self.kind = kind
        self.field = field
        self._lifted = lifted or {}
        self.zero = field.zero if field is not None else sp.Integer(0)
        self.one = field.one if field is not None else sp.Integer(1)

    def lift(self, value: sp.Expr) -> Any:
        """The number ``value`` (one of those the arithmetic was built on, or a Rational) in this arithmetic."""
        if self.field is None:
            return sp.Rational(value) if value.is_Rational else value
        if value.is_Rational:
            return self.field.convert(value)
        return self._lifted[value]

    def tidy(self, value: Any) -> Any:
        """Keep a symbolic value expanded, so that cancellation shows; the other kinds are canonical."""
        return sp.expand(value) if self.kind == "symbolic" else value

    def decide(self, value: Any, thorough: bool = True) -> bool | None:
        """Whether ``value`` is zero (exact for rational and field numbers; see :func:`decide_zero`)."""
        if self.kind == "rational":
            return bool(value == 0)
        if self.kind == "field":
            return not value
        return decide_zero(value, thorough)

    def expr(self, value: Any) -> sp.Expr:
        """``value`` as a sympy number (a polynomial in the field's generators for the field kind)."""
        if self.kind == "field":
            return self.field.to_sympy(value)
        return value


def _atoms(expr: sp.Expr, out: list) -> None:
    """The irrational building blocks of ``expr``: what is left after rationals, sums, products, integer powers."""
    if expr.is_Rational:
        return
    if expr.is_Add or expr.is_Mul:
        for arg in expr.args:
            _atoms(arg, out)
    elif expr.is_Pow and expr.exp.is_Integer:
        _atoms(expr.base, out)
    elif expr not in out:
        out.append(expr)


def _in_field(expr: sp.Expr, field: Any, atoms: dict) -> Any:
    """``expr`` as an element of the number field ``field``, built from its atoms (lifted once each, kept in
    ``atoms``) by field arithmetic."""
    if expr.is_Rational:
        return field.convert(expr)
    if expr.is_Add:
        return sum((_in_field(arg, field, atoms) for arg in expr.args), field.zero)
    if expr.is_Mul:
        out = field.one
        for arg in expr.args:
            out = out * _in_field(arg, field, atoms)
        return out
    if expr.is_Pow and expr.exp.is_Integer:
        base = _in_field(expr.base, field, atoms)
        if expr.exp < 0 and not base:
            raise ZeroDivisionError(f"{expr} divides by zero")
        return base ** int(expr.exp)
    if expr not in atoms:
        atoms[expr] = field.from_sympy(expr)
    return atoms[expr]


def _agrees(a: sp.Expr, b: sp.Expr) -> bool:
    """A guard on the lift of an atom into the field: the same real number, not one of its conjugates."""
    import mpmath

    with mpmath.workdps(60):
        x, y = mpmath.mpmathify(sp.N(a, 60)), mpmath.mpmathify(sp.N(b, 60))
        return bool(abs(x - y) <= mpmath.mpf(10) ** -40 * (1 + abs(x)))


def exact_arithmetic(values: Sequence[sp.Expr]) -> ExactArithmetic:
    """The arithmetic in which to compute with the real numbers ``values`` exactly.

    Rationals only: ``rational``. Otherwise the irrational atoms of the values (radicals, nested radicals,
    ``cos(k*pi/n)`` and other trigonometric values at rational multiples of pi, ``CRootOf``,
    ``AlgebraicNumber``) generate a number field ``Q(theta)`` (:func:`sympy.primitive_element` gives theta,
    its minimal polynomial and each atom as a polynomial in theta) and every value is lifted into it by
    field operations: ``field``. When an atom is not
    algebraic (pi, e, ``log(2)``, ``cos(1)``) or sympy cannot build the field: ``symbolic``.

    Raises :class:`DividesByZero` (a ``ValueError``) when a value divides by an expression that is exactly
    zero (``1/(cos(pi/7) - cos(2*pi/7) + cos(3*pi/7) - 1/2)``), which sympy itself may not notice.
    """
    values = [sp.sympify(v) for v in values]
    atoms: list = []
    for v in values:
        _atoms(v, atoms)
    if not atoms:
        return ExactArithmetic("rational")
    from sympy.polys.polyerrors import CoercionFailed, IsomorphismFailed, NotAlgebraic, PolynomialError

    try:
        # theta = sum_i k_i atom_i with minimal polynomial `minpoly`, and atom_i = reps[i](theta), exactly
        minpoly, coeffs, reps = sp.primitive_element(atoms, sp.Dummy("x"), ex=True, polys=True)
        field = sp.QQ.algebraic_field((minpoly, sp.Add(*[k * atom for k, atom in zip(coeffs, atoms)])))
        lifted_atoms = {atom: field(rep) for atom, rep in zip(atoms, reps)}
    except (NotAlgebraic, NotImplementedError, CoercionFailed, IsomorphismFailed, PolynomialError, ValueError,
            TypeError):
        return ExactArithmetic("symbolic")
    lifted = {}
    for v in values:
        if v.is_Rational or v in lifted:
            continue
        try:
            lifted[v] = _in_field(v, field, lifted_atoms)
        except ZeroDivisionError as exc:
            raise DividesByZero(v) from exc
        except (NotAlgebraic, NotImplementedError, CoercionFailed, IsomorphismFailed, PolynomialError, ValueError,
                TypeError):
            return ExactArithmetic("symbolic")
    # every value is built from the atoms by field operations, so checking the atoms checks them all
    if not all(_agrees(field.to_sympy(x), atom) for atom, x in lifted_atoms.items()):
        return ExactArithmetic("symbolic")
    return ExactArithmetic("field", field, lifted)
