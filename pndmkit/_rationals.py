"""How a coefficient typed as a number becomes an exact fraction: one rule for tableaus, wherever they come from.

Ints, :class:`fractions.Fraction` (and any other exact rational, e.g. sympy's) and strings such as ``"7/10"``
or ``"0.35"`` are exact. A float is read as the *simplest* fraction whose nearest double it is: ``1/3``
typed as ``0.3333333333333333`` gives ``1/3``, ``0.1`` gives ``1/10``, and a short binary fraction such as
``1.5`` or ``0.375`` is itself. So a tableau written with floats of simple rationals keeps its exact order
conditions, whichever container it arrives in. Coefficients that are not simple rationals (Tsit5's, the
rational approximations of Prince and Dormand's 8(7)) need a tolerance instead:
:func:`pndmkit.theory.butcher.tableau_order` takes ``tol=``.

Examples
--------
>>> to_fraction(1 / 3, "a[1][0]"), to_fraction(0.1, "c"), to_fraction(1.5, "b[1]"), to_fraction("-7/2", "b")
(Fraction(1, 3), Fraction(1, 10), Fraction(3, 2), Fraction(-7, 2))
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import Any, Optional

__all__ = ["simplest_fraction", "to_fraction"]


def _simplest_between(lo: Fraction, hi: Optional[Fraction]) -> Fraction:
    """The fraction with the smallest denominator in the open interval ``(lo, hi)``, ``0 <= lo``, ``hi=None`` is infinity."""
    whole = math.floor(lo)
    if hi is None or whole + 1 < hi:
        return Fraction(whole + 1)
    # no integer inside: x = whole + 1/r with r in (1/(hi - whole), 1/(lo - whole)), continued-fraction step
    inner = _simplest_between(1 / (hi - whole), None if lo == whole else 1 / (lo - whole))
    return whole + 1 / inner


def simplest_fraction(x: float) -> Fraction:
    """The fraction with the smallest denominator that rounds to the double ``x``.

    Parameters
    ----------
    x : float
        A finite double.

    Returns
    -------
    fractions.Fraction
        ``q`` with ``float(q) == x``; ``x`` itself when ``x`` is an integer.

    Examples
    --------
    >>> simplest_fraction(0.3333333333333333), simplest_fraction(-0.375), simplest_fraction(35 / 384)
    (Fraction(1, 3), Fraction(-3, 8), Fraction(35, 384))
    """
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"x must be finite, got {x!r}")
    if x < 0:
        return -simplest_fraction(-x)
    if x.is_integer():
        return Fraction(int(x))
    exact = Fraction(x)
    lo = (exact + Fraction(math.nextafter(x, 0.0))) / 2
    hi = (exact + Fraction(math.nextafter(x, math.inf))) / 2
    out = _simplest_between(lo, hi)
    return out if float(out) == x else exact  # the open interval rounds to x; kept as a guard


def to_fraction(value: Any, what: str) -> Fraction:
    """Convert one coefficient to an exact fraction by the module's rule; errors name ``what``.

    Parameters
    ----------
    value : int, Fraction, numbers.Rational, str or float
        The coefficient. Floats (including numpy floats) are read with :func:`simplest_fraction`.
    what : str
        The coefficient's name for messages, e.g. ``"a[2][1]"``.

    Returns
    -------
    fractions.Fraction
    """
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a number, got the bool {value!r}")
    if isinstance(value, numbers.Rational):  # int, numpy integer, Fraction, sympy Rational
        return Fraction(int(value.numerator), int(value.denominator))
    if isinstance(value, str):
        try:
            return Fraction(value.strip())
        except (ValueError, ZeroDivisionError) as exc:
            raise ValueError(f"{what} must be a rational number such as 3/2 or 0.75, got {value!r}") from exc
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Rational):
        if not math.isfinite(float(value)):
            raise ValueError(f"{what} must be finite, got {value!r}")
        return simplest_fraction(float(value))
    raise TypeError(f"{what} must be an int, Fraction, str or float, got {type(value).__name__} {value!r}")
