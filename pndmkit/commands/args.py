"""argparse pieces shared by the command lines (``pndmkit`` and ``python -m paper_figures``): value types, each of
which parses one option's text or raises ``argparse.ArgumentTypeError`` saying what is allowed (the command line
prints it after the option's name), the parser class (:class:`CommandParser`: no abbreviated options, defaults in
``--help``, an option that takes one value refused when given twice (:class:`StoreOnce`), errors raised as
:class:`ArgumentLineError`) and :func:`usage_exit`, which prints the one line ``PROG: error: ...`` of bad input and
gives the ``SystemExit(2)`` to raise.

:data:`MAX_STEPS` bounds every step count and NFE budget: 100 times the 1000 of a DDPM table, far past where
any error stops falling, and still minutes rather than hours on the built-in problems.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
import sys
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator, Sequence

from pndmkit._checks import MAX_STEPS

__all__ = ["positive_int", "nonnegative_int", "int_in_range", "step_count", "finite_float", "positive_float", "nonnegative_float",
           "fraction", "writable_folder", "writable_folder_for", "grid_or_times", "comma_entries", "name_list", "MAX_STEPS", "EXIT_USAGE",
           "CommandParser", "StoreOnce", "ArgumentLineError", "DefaultsHelpFormatter", "usage_exit",
           "parse_command_line", "unrecognized_message",
           "locked_out_folder"]

#: exit status of bad input (argparse's)
EXIT_USAGE = 2


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

    Text with a comma or inner whitespace is a list of numbers, separated by commas, whitespace or both (so the
    ``grid:`` line of ``pndmkit grid optimize``, ``555.087 412.3532 ... -1``, pastes as one quoted argument);
    what they must satisfy -- finite, decreasing, their count, the schedule's domain -- the command checks,
    where it knows the schedule and the step count. Such a text with anything but numbers is refused.

    >>> grid_or_times("quadratic"), grid_or_times("999,500,-1"), grid_or_times(" 999 500.5, -1 ")
    ('quadratic', [999.0, 500.0, -1.0], [999.0, 500.5, -1.0])
    """
    entries = re.split(r"\s*,\s*|\s+", text.strip())
    if len(entries) == 1:
        return text.strip()
    try:
        return [float(v) for v in entries]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a grid kind or numbers separated by commas or spaces, got "
                                         f"{text!r}") from None


def writable_folder_for(option: str) -> Callable[[str], str]:
    """argparse type factory: an output folder, given as ``option``, that exists and is writable, or can be
    created; checked before any work.

    Nothing is created (:func:`pndmkit._io.check_writable_folder`); a file in the way or a folder without write
    rights is refused with what was found, its advice naming ``option`` (``choose a writable folder for
    --results``), not a Python parameter.

    >>> writable_folder_for("--results")(".")
    '.'
    """
    def parse(text: str) -> str:
        from pndmkit._io import check_writable_folder
        from pndmkit.errors import UsageError

        try:
            check_writable_folder(text, "out")
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc).replace(f"out={text!r}", repr(text)).replace(
                "choose a writable out folder", f"choose a writable folder for {option}")) from None
        return text

    parse.__name__ = f"folder for {option}"
    return parse


#: argparse type: a writable output folder given as ``--out`` (:func:`writable_folder_for`)
writable_folder = writable_folder_for("--out")


def comma_entries(text: str, what: str) -> list[str]:
    """The comma-separated entries of ``text``, stripped (none where every entry is blank); an empty one among
    others (``a,,b``, a trailing comma) is refused, naming its position, rather than dropped.

    >>> comma_entries(" a, b", "names")
    ['a', 'b']
    """
    entries = [v.strip() for v in text.split(",")]
    if not any(entries):  # nothing at all: the caller says what an empty list means
        return []
    if "" in entries:
        raise argparse.ArgumentTypeError(f"entry {entries.index('') + 1} of {text!r} is empty; give comma-separated "
                                         f"{what} without empty entries")
    return entries


def name_list(known: Sequence[str], what: str) -> Callable[[str], list[str]]:
    """argparse type factory: comma-separated names, each among ``known``, each once, at least one.

    An empty list, an empty entry, an unknown name (with the known names it begins, or else the nearest known one
    where one is close: "did you mean") and a name given twice are refused, each saying what is allowed.

    >>> name_list(["fig1", "fig2"], "figure names")("fig2,fig1")
    ['fig2', 'fig1']
    """
    def parse(text: str) -> list[str]:
        names = comma_entries(text, what)
        if not names:
            raise argparse.ArgumentTypeError(f"the list of {what} is empty (got {text!r}); give one or more, "
                                             f"comma-separated, among: {', '.join(known)}")
        unknown = [n for n in names if n not in known]
        if unknown:
            close = [c for n in unknown
                     for c in ([k for k in known if k.startswith(n)][:3] or difflib.get_close_matches(n, known, n=1))]
            raise argparse.ArgumentTypeError(
                f"unknown {what.rstrip('s')}{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
                + (f" (did you mean {', '.join(map(repr, dict.fromkeys(close)))}?)" if close else "")
                + f"; known: {', '.join(known)}")
        twice = [n for n in dict.fromkeys(names) if names.count(n) > 1]
        if twice:
            raise argparse.ArgumentTypeError(f"{', '.join(map(repr, twice))} named more than once in {text!r}; "
                                             "name each once")
        return names

    parse.__name__ = what
    return parse


# -- the parser ---------------------------------------------------------------------------------------
class ArgumentLineError(Exception):
    """An argparse error, raised instead of printing usage and exiting (see :meth:`CommandParser.error`).

    Attributes
    ----------
    prog : str
        The (sub-)command whose parser found it, e.g. ``"pndmkit grid optimize"``.
    message : str
        What is wrong, starting with the option (``"--only: ..."``).
    """

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog, self.message = prog, message


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: ...)`` to every option that takes a value, unless its help mentions the default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (not action.option_strings or action.nargs == 0 or action.required
                or action.default is argparse.SUPPRESS or "default" in text.lower()):
            return action.help
        return f"{text} (default: %(default)s)".strip()


def _shown(value: Any) -> str:
    """A parsed option value as the user would type it: a list comma-separated (``--steps 5,10``)."""
    if isinstance(value, (list, tuple)):
        return ",".join(_shown(v) for v in value)
    return str(value)


class StoreOnce(argparse.Action):
    """argparse's ``store`` action (the default of ``add_argument``), refusing an option given a second time.

    argparse keeps the last of ``--steps 10 --steps 20`` in silence; a command line built by appending options
    to a stored one then runs with a value nobody chose to keep. :class:`CommandParser` makes this the default
    action, so every option that takes a value (a single value or a comma-separated list, which is one value
    too) is refused when repeated: ``--steps: given twice ('10', then '20'); give it once``. Flags
    (``store_true``) given twice mean the same as once and are accepted; ``action="append"`` options stay
    repeatable. Raises ``argparse.ArgumentError`` (one line, naming the option, through
    :meth:`CommandParser.error`).
    """

    def __init__(self, option_strings: Sequence[str], dest: str, nargs: Any = None, **kwargs: Any) -> None:
        if nargs == 0:
            raise ValueError("nargs=0 stores nothing: use action='store_true' or 'store_const' for a flag")
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        given = parser.__dict__.setdefault("_given_once", {})
        if self.option_strings and self.dest in given:
            first, then = given[self.dest]
            flag = f" ({option_string}, then {then})" if then != option_string else ""
            raise argparse.ArgumentError(self, f"given twice{flag} ({_shown(first)!r}, then {_shown(values)!r}); "
                                               "give it once")
        given[self.dest] = (values, option_string)
        setattr(namespace, self.dest, values)


class CommandParser(argparse.ArgumentParser):
    """ArgumentParser with ``allow_abbrev=False`` (``--thread`` is no ``--threads``), defaults in ``--help``
    (:class:`DefaultsHelpFormatter`), every option that takes a value refused when given twice
    (:class:`StoreOnce`, the default action; flags may repeat) and errors raised as :class:`ArgumentLineError`,
    not printed; the command line prints them with :func:`usage_exit`. Sub-command parsers
    (``add_subparsers().add_parser``) are of the same class, so they inherit all of this."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
        self.register("action", None, StoreOnce)
        self.register("action", "store", StoreOnce)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        """argparse's, with the record of the options given (:class:`StoreOnce`) started afresh."""
        self.__dict__["_given_once"] = {}
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ArgumentLineError(self.prog, re.sub(r"^argument ", "", message))

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        """argparse's, with the nearest option named where an unknown one is given (``--thread``: did you mean
        ``--threads``?)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(unrecognized_message([o for a in self._actions for o in a.option_strings], extras))
        return parsed


def parse_command_line(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args(argv)`` for a command line that is not a ``pndmkit`` sub-command (``python -m
    paper_figures``, ``python -m paper_figures.fig4_orders``): bad input (a :class:`CommandParser`'s
    :class:`ArgumentLineError`) is the one line ``PROG: error: ...`` on stderr and ``SystemExit(2)``
    (:func:`usage_exit`), as with ``pndmkit``."""
    try:
        return parser.parse_args(argv)
    except ArgumentLineError as exc:
        raise usage_exit(exc.prog, exc.message) from None


def unrecognized_message(flags: Sequence[str], extras: Sequence[str]) -> str:
    """The error for arguments no parser took, with the nearest of ``flags`` to the first unknown option.

    >>> unrecognized_message(["--threads"], ["--thread", "2"])
    'unrecognized arguments: --thread 2 (did you mean --threads?)'
    """
    text = f"unrecognized arguments: {' '.join(extras)}"
    unknown = [e.split("=", 1)[0] for e in extras if e.startswith("-")]
    close = difflib.get_close_matches(unknown[0], flags, n=1) if unknown else []
    return text + (f" (did you mean {close[0]}?)" if close else "")


def usage_exit(prog: str, detail: str, code: int = EXIT_USAGE) -> SystemExit:
    """Print ``PROG: error: DETAIL`` (whitespace folded into one line) on stderr; return the ``SystemExit(code)``
    to raise, whose ``str`` is that line (for tests matching on it)."""
    line = f"{prog}: error: {' '.join(detail.split())}"
    print(line, file=sys.stderr, flush=True)
    exc = SystemExit(code)
    exc.args = (line,)
    return exc


@contextmanager
def locked_out_folder(prog: str, folder: Any, lock_name: str, *, what: str, option: str = "--out") -> Iterator[None]:
    """Hold the lock of a command's output folder (:func:`pndmkit._io.locked_folder`) for a command line that is
    not a ``pndmkit`` sub-command (``python -m paper_figures``): a folder another process is writing into is the
    one line ``PROG: error: --out: ... is in use by another WHAT ...`` and ``SystemExit(2)``, nothing written."""
    from pndmkit._io import locked_folder
    from pndmkit.errors import UsageError

    with ExitStack() as held:
        try:
            held.enter_context(locked_folder(folder, lock_name, what=what, param=option.lstrip("-")))
        except UsageError as exc:
            raise usage_exit(prog, f"{option}: {exc.message}") from None
        yield
