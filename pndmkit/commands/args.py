"""argparse value types shared by the sub-commands: each parses one option's text or raises
``argparse.ArgumentTypeError`` saying what is allowed (the command line prints it after the option's name).

:data:`MAX_STEPS` bounds every step count and NFE budget: 100 times the 1000 of a DDPM table, far past where
any error stops falling, and still minutes rather than hours on the built-in problems.
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Callable

from pndmkit._checks import MAX_STEPS

__all__ = ["positive_int", "nonnegative_int", "int_in_range", "step_count", "finite_float", "positive_float", "nonnegative_float",
           "fraction", "writable_folder", "grid_or_times", "MAX_STEPS"]


def _number(text: str, kind: type, test: Callable[[Any], bool], allowed: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}") from None
    if not test(value):
        raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(text, int, lambda v: v >= 1, "an integer >= 1")


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def int_in_range(low: int, high: int) -> Callable[[str], int]:
    """argparse type factory: an integer in ``[low, high]``.

    >>> int_in_range(8, 100)("8")
    8
    """
    def parse(text: str) -> int:
        return _number(text, int, lambda v: low <= v <= high, f"an integer in [{low}, {high}]")

    parse.__name__ = f"integer in [{low}, {high}]"
    return parse


def step_count(text: str) -> int:
    """argparse type: a number of steps or model calls, an integer in ``[1, MAX_STEPS]``."""
    return _number(text, int, lambda v: 1 <= v <= MAX_STEPS, f"an integer in [1, {MAX_STEPS}]")


def finite_float(text: str) -> float:
    """argparse type: a finite number."""
    return _number(text, float, math.isfinite, "a finite number")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    return _number(text, float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def grid_or_times(text: str) -> str | list[float]:
    """argparse type: a grid kind (the text as is, checked by the command) or explicit times ``T0,T1,...``.

    Text with a comma is a list of numbers (what they must satisfy -- finite, decreasing, their count, the
    schedule's domain -- the command checks, where it knows the schedule and the step count); a comma-separated
    text with anything else is refused.

    >>> grid_or_times("quadratic"), grid_or_times("999,500,-1")
    ('quadratic', [999.0, 500.0, -1.0])
    """
    if "," not in text:
        return text
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a grid kind or comma-separated numbers, got {text!r}") from None


def writable_folder(text: str) -> str:
    """argparse type: an output folder that exists and is writable, or can be created; checked before any work.

    Nothing is created (:func:`pndmkit._io.check_writable_folder`); a file in the way or a folder without write
    rights is refused with what was found.
    """
    from pndmkit._io import check_writable_folder
    from pndmkit.errors import UsageError

    try:
        check_writable_folder(text, "out")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace(f"out={text!r}", repr(text))) from None
    return text
