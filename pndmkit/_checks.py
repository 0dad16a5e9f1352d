"""Argument checks shared by the public API: integers, finite reals, keyword names.

Every message names the parameter, the value (with its type where that is the problem) and what is
allowed, so that a wrong call is fixed from the message alone.

>>> check_int(np.int64(10), "steps", minimum=1)
10
>>> check_int(10.5, "steps")
Traceback (most recent call last):
    ...
TypeError: steps must be an integer, got float 10.5
>>> check_real(float("nan"), "t_start")
Traceback (most recent call last):
    ...
ValueError: t_start must be a finite number, got nan
"""

from __future__ import annotations

import difflib
import math
import numbers
from typing import Any, Iterable

import numpy as np

__all__ = ["check_bool", "check_int", "check_real", "check_choice", "reject_unknown", "with_article"]


#: the most steps or model calls a run may be asked for (the API and the command line share it)
MAX_STEPS = 100_000


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` if it is ``True`` or ``False`` (numpy bools too); ``TypeError`` otherwise (no truthiness:
    ``"no"`` is not ``False``)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_int(value: Any, name: str, minimum: int | None = None) -> int:
    """Return ``value`` as an ``int``; Python and numpy integers pass, bools, floats and strings do not.

    ``TypeError`` for a value that is not an integer, ``ValueError`` for one below ``minimum``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(value: Any, name: str) -> float:
    """Return ``value`` as a finite ``float``: ``TypeError`` unless a real number (bools excluded),
    ``ValueError`` for NaN or infinity."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {out!r}")
    return out


def check_choice(value: Any, name: str, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``; else ``ValueError`` listing them (closest first)."""
    options = list(allowed)
    if isinstance(value, str) and value in options:
        return value
    close = difflib.get_close_matches(value, options, n=1) if isinstance(value, str) else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}{hint}")


def reject_unknown(function: str, unknown: dict[str, Any], known: Iterable[str]) -> None:
    """Raise ``TypeError`` naming the first unexpected keyword of ``function`` and the closest known one."""
    if not unknown:
        return
    name = sorted(unknown)[0]
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    others = f" (and {len(unknown) - 1} more: {sorted(unknown)[1:]})" if len(unknown) > 1 else ""
    raise TypeError(f"{function}() got an unexpected keyword argument {name!r}{hint}{others}")


#: letters whose name starts with a vowel sound, read out in an initialism ("an EDM...", "an LMS...", "an SDE")
_VOWEL_SOUND_LETTERS = frozenset("AEFHILMNORSX")
#: word starts written with a vowel but said with a consonant ("a UniPC...", "a user", "a one-step")
_CONSONANT_SOUND_STARTS = ("uni", "unet", "use", "usu", "uti", "one", "once")


def with_article(noun: str) -> str:
    """``noun`` after the indefinite article it is read with: ``"a DDIMScheduler"``, ``"an EDMEulerScheduler"``,
    ``"an Integrator"``, ``"a UniPCMultistepScheduler"``, ``"an ndarray"``.

    For messages that name a class or type chosen at run time (``f"{with_article(type(x).__name__)} config"``).
    A name that opens with two capitals is an initialism, read letter by letter (``EDM``, ``LMS``, ``DPM``); a
    word opening with a vowel letter takes "an" unless it is said with a consonant (``Uni``, ``use``);
    ``nd...`` (numpy's ``ndarray``) is read "en-dee".

    >>> [with_article(n) for n in ("EDMEulerScheduler", "DDIMScheduler", "Integrator", "UniPCMultistepScheduler")]
    ['an EDMEulerScheduler', 'a DDIMScheduler', 'an Integrator', 'a UniPCMultistepScheduler']
    """
    word = str(noun)
    if len(word) >= 2 and word[0].isupper() and word[1].isupper():
        vowel = word[0] in _VOWEL_SOUND_LETTERS
    elif word.lower().startswith(_CONSONANT_SOUND_STARTS):
        vowel = False
    else:
        vowel = word[:1].lower() in ("a", "e", "i", "o", "u") or word.startswith("nd")
    return f"{'an' if vowel else 'a'} {word}"
