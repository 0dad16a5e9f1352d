"""Input rules shared by the theory modules: exact rationals and positive integers."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Union

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
