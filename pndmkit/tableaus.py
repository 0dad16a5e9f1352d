r"""Butcher tableaus of explicit Runge-Kutta methods, stored as exact rationals.

A tableau ``(a, b, c)`` defines stages ``g_i = g(x_i, t + c_i h)`` with
``x_i = x + h * sum_j a_ij g_j`` and the update ``x + h * sum_i b_i g_i``. In pndmkit the same tableau
also drives a *pseudo* Runge-Kutta step (PNDM eq. 12): the stage is reached through the transfer,
``x_i = phi(x, sum_j (a_ij / c_i) g_j, t, t + c_i h)``, and ``sum_i b_i g_i`` is the gradient part.

Tableaus are validated on construction: ``a`` strictly lower triangular (explicit), ``sum(b) = 1``
(consistency) and ``c_i = sum_j a_ij`` (row-sum condition, needed so that a stage at fraction ``c_i`` sees
an average of gradients, ``sum_j a_ij / c_i = 1``).

Examples
--------
>>> RK4.c
(Fraction(0, 1), Fraction(1, 2), Fraction(1, 2), Fraction(1, 1))
>>> [str(b) for b in RK4.b]
['1/6', '1/3', '1/3', '1/6']
>>> ButcherTableau(a=((0, 0), (1, 0)), b=(1, 1), c=(0, 1), name="broken")
Traceback (most recent call last):
    ...
ValueError: tableau 'broken': the weights b must sum to 1 (consistency), got sum(b) = 2
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence, Union

from pndmkit._rationals import to_fraction

__all__ = ["ButcherTableau", "EULER", "HEUN", "MIDPOINT", "RALSTON", "RK3", "RK4", "RK38", "TABLEAUS"]

Number = Union[int, Fraction, str]


def _frac(v: object, what: str) -> Fraction:
    return to_fraction(v, what)  # the one rule every tableau route shares (pndmkit/_rationals.py)


@dataclass(frozen=True)
class ButcherTableau:
    """An explicit Runge-Kutta method as exact rationals.

    Parameters
    ----------
    a : sequence of sequences
        Stage matrix, square, strictly lower triangular. Entries are ints, ``Fraction`` or strings
        like ``"1/2"`` (exact); a float is read as the simplest fraction that rounds to it
        (``1/3`` typed as ``0.3333333333333333`` is 1/3), see :func:`pndmkit._rationals.to_fraction`.
    b : sequence
        Weights of the final combination; must sum to 1.
    c : sequence
        Stage fractions of the step; must equal the row sums of ``a``.
    name : str
        Name used in messages.
    """

    a: tuple[tuple[Fraction, ...], ...]
    b: tuple[Fraction, ...]
    c: tuple[Fraction, ...]
    name: str = field(default="tableau")

    def __init__(self, a: Sequence[Sequence[Number]], b: Sequence[Number], c: Sequence[Number],
                 name: str = "tableau") -> None:
        n = len(b)
        if n < 1:
            raise ValueError(f"tableau {name!r}: b must have at least one weight")
        if len(c) != n or len(a) != n or any(len(row) != n for row in a):
            raise ValueError(
                f"tableau {name!r}: a must be {n}x{n} and c of length {n} to match b; "
                f"got a with rows {[len(r) for r in a]} and c of length {len(c)}")
        A = tuple(tuple(_frac(v, f"a[{i}][{j}]") for j, v in enumerate(row)) for i, row in enumerate(a))
        B = tuple(_frac(v, f"b[{i}]") for i, v in enumerate(b))
        C = tuple(_frac(v, f"c[{i}]") for i, v in enumerate(c))
        for i in range(n):
            for j in range(i, n):
                if A[i][j] != 0:
                    raise ValueError(f"tableau {name!r} is not explicit: a[{i}][{j}] = {A[i][j]} must be 0")
            if sum(A[i]) != C[i]:
                raise ValueError(
                    f"tableau {name!r}: c[{i}] = {C[i]} must equal the row sum of a, {sum(A[i])}")
        if sum(B) != 1:
            raise ValueError(f"tableau {name!r}: the weights b must sum to 1 (consistency), got sum(b) = {sum(B)}")
        object.__setattr__(self, "a", A)
        object.__setattr__(self, "b", B)
        object.__setattr__(self, "c", C)
        object.__setattr__(self, "name", name)

    @property
    def stages(self) -> int:
        """Number of stages (model evaluations per step)."""
        return len(self.b)

    def as_floats(self) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...], tuple[float, ...]]:
        """``(a, b, c)`` as Python floats for use inside a step."""
        return (tuple(tuple(float(v) for v in row) for row in self.a),
                tuple(float(v) for v in self.b), tuple(float(v) for v in self.c))


EULER = ButcherTableau(a=[[0]], b=[1], c=[0], name="euler")
HEUN = ButcherTableau(a=[[0, 0], [1, 0]], b=["1/2", "1/2"], c=[0, 1], name="heun")
MIDPOINT = ButcherTableau(a=[[0, 0], ["1/2", 0]], b=[0, 1], c=[0, "1/2"], name="midpoint")
RALSTON = ButcherTableau(a=[[0, 0], ["2/3", 0]], b=["1/4", "3/4"], c=[0, "2/3"], name="ralston")
RK3 = ButcherTableau(a=[[0, 0, 0], ["1/2", 0, 0], [-1, 2, 0]], b=["1/6", "2/3", "1/6"], c=[0, "1/2", 1],
                     name="rk3")
RK4 = ButcherTableau(a=[[0, 0, 0, 0], ["1/2", 0, 0, 0], [0, "1/2", 0, 0], [0, 0, 1, 0]],
                     b=["1/6", "1/3", "1/3", "1/6"], c=[0, "1/2", "1/2", 1], name="rk4")
RK38 = ButcherTableau(a=[[0, 0, 0, 0], ["1/3", 0, 0, 0], ["-1/3", 1, 0, 0], [1, -1, 1, 0]],
                      b=["1/8", "3/8", "3/8", "1/8"], c=[0, "1/3", "2/3", 1], name="rk38")

#: every tableau shipped, by name
TABLEAUS = {t.name: t for t in (EULER, HEUN, MIDPOINT, RALSTON, RK3, RK4, RK38)}
