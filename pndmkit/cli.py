"""The ``pndmkit`` command line (also ``python -m pndmkit``).

Each sub-command lives in its own module under :mod:`pndmkit.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the parsed
arguments and returning an exit code). A sub-command may also set ``resume_hint(args, argv) -> str``:
the command that continues an interrupted run.

Errors. Bad input ends in one line on stderr, ``pndmkit CMD: error: --option: what is wrong and what is
allowed``, and exit status 2 (like argparse, :func:`main` raises ``SystemExit(2)`` after printing it). An
exception is taken for bad input when

* it is a :class:`pndmkit.errors.UsageError` (the library's own "this input is wrong"; its ``params``
  name the options), or an argparse error (an option that takes a value given twice among them:
  :class:`pndmkit.commands.args.StoreOnce`; a flag may repeat), or a sub-command's ``SystemExit("message")``; or
* it is a ``ValueError``, ``TypeError`` or ``FileNotFoundError``/``FileExistsError`` (and the like)
  whose message names an option the user gave on the command line: its destination (``steps``,
  ``t_start``), its flag (``--steps``), or its value as the library quotes it (``'f-pndmm'``) or as the
  file name of an ``OSError``; or
* it is a :class:`pndmkit.errors.WriteError` (a file that could not be written: a full disk, a read-only
  filesystem) whose file is an option's value or lies inside it (``--out DIR``'s ``DIR/run.json``).

Advice in such a message that names a Python parameter this command has as an option names the option
(``leave t_start unset`` is printed ``leave --t-start out``; ``pass grid='trailing'``, ``pass --grid trailing``);
what the message reports (``t_start=2.0 lies outside ...``) keeps the library's words.

Anything else is a bug and shows its traceback (``PNDMKIT_TRACEBACK=1`` shows it for every error).
A ``FloatingPointError`` (non-finite samples) prints one line and exits 1. An interrupt (Ctrl-C, or
SIGTERM while a sub-command runs) prints one line, with the command that resumes the run where the
sub-command can resume, and exits 130 (143 for SIGTERM). Output piped into a reader that stops early
(``pndmkit methods --json | head``) ends quietly, with exit status 1, as Python's documentation on
``SIGPIPE`` recommends.

Every message starts with the full sub-command (``pndmkit grid optimize: error: ...``), whichever part of
the command line found the error. Step counts and NFE budgets are at most :data:`MAX_STEPS`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import sys
import threading
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from pndmkit.commands.args import (EXIT_USAGE, MAX_STEPS, ArgumentLineError, CommandParser, finite_float, fraction,
                                   nonnegative_float, nonnegative_int, positive_float, positive_int, step_count,
                                   unrecognized_message, usage_exit)
from pndmkit.errors import UsageError, WriteError

# the argparse value types live in pndmkit.commands.args (the sub-commands use them); these names stay here too
__all__ = ["main", "build_parser", "positive_int", "nonnegative_int", "step_count", "finite_float",
           "positive_float", "nonnegative_float", "fraction", "MAX_STEPS"]

#: sub-command modules, in the order ``pndmkit --help`` lists them
COMMANDS = ("methods", "order", "coefficients", "compare", "sample", "train", "grid", "audit")

#: exit status for a run that produced non-finite values (bad input: EXIT_USAGE, argparse's 2)
EXIT_FAILED = 1

_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                PermissionError, WriteError)


# -- parser -------------------------------------------------------------------------------------------
#: where ``pndmkit --help`` sends a newcomer for what no sub-command's options cover
EPILOG = ("Your own method: register it (pndmkit.register_method) in a module named in PNDMKIT_PLUGINS "
          "(comma-separated modules) or an entry point of the group pndmkit.methods; every command then knows it "
          "(docs/protocol.md; README.md, \"Ten lines\" and \"Command line\"). Your own network: pndmkit order "
          "--model, pndmkit grid optimize --model and pndmkit compare --model take a pndmkit checkpoint, a "
          "diffusers folder (a saved DDPM pipeline, or a UNet2DModel folder with its scheduler config) or a hub id "
          "in the local Hugging Face cache; any other callable goes through pndmkit.studies.real.model_study in "
          "Python (README.md, \"Accuracy on real networks\"). A "
          "pndmkit method in a diffusers pipeline: README.md, \"Use a pndmkit method in a diffusers pipeline\". "
          "Figures: python -m paper_figures --help.")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every available sub-command registered."""
    parser = CommandParser(
        prog="pndmkit",
        description="Pseudo numerical methods for diffusion models: samplers, exact coefficients, ground truth.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"pndmkit.commands.{name}")
        except ModuleNotFoundError as exc:  # a sub-command whose optional dependency is missing
            if exc.name and exc.name.startswith("pndmkit.commands"):
                continue
            raise
        module.register(sub)
    for p in _parsers(parser):  # an option without help still shows its default
        for action in p._actions:
            if action.help is None and action.option_strings and action.nargs != 0 and not action.required:
                action.help = "(default: %(default)s)"
    return parser


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every sub-command parser below it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _parsers(child)


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace | None
                    ) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction | None]:
    """The deepest sub-command parser ``args`` chose (``pndmkit grid optimize``), and the sub-command
    action below it that was left unchosen, if any (``pndmkit coefficients`` without a KIND)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None) if action.dest != argparse.SUPPRESS else None
            if chosen in action.choices:
                return _command_parser(action.choices[chosen], args)
            return parser, action
    return parser, None


def _options(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Destination -> its longest option string (or the destination of a positional), over sub-parsers too."""
    found: dict[str, str] = {}
    for p in _parsers(parser):
        for action in p._actions:
            if action.dest not in (argparse.SUPPRESS, "help") and not isinstance(action, argparse._SubParsersAction):
                found.setdefault(action.dest, max(action.option_strings, key=len) if action.option_strings
                                 else action.dest)
    return found


# -- error classification ---------------------------------------------------------------------------
def _names(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def _blamed_options(exc: BaseException, parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str] | None:
    """The options a user error is about, or None when ``exc`` is not a user error (see the module docstring)."""
    options = _options(parser)
    if isinstance(exc, UsageError):
        mentioned = [p for p in exc.params if _names(exc.message, p) or _names(exc.message, options.get(p, p))]
        return [options.get(p, p) for p in (mentioned or exc.params)]
    if not isinstance(exc, _USER_ERRORS):
        return None
    message, given = str(exc), {a.split("=", 1)[0] for a in argv if a.startswith("-")}
    named = [opt for dest, opt in options.items()
             if opt in given and ((len(dest) >= 3 and _names(message, dest)) or _names(message, opt))]
    filename = getattr(exc, "filename", None)
    for k, token in enumerate(argv):
        value = token.split("=", 1)[1] if token.startswith("--") and "=" in token else token
        flag = token.split("=", 1)[0] if "=" in token else (argv[k - 1] if k else "")
        quoted = f"'{value}'" in message or f'"{value}"' in message
        if value and (quoted or (filename is not None and _names_file(exc, str(filename), value))) \
                and flag.startswith("-"):
            named.append(flag)
    return list(dict.fromkeys(named)) or None


def _names_file(exc: BaseException, filename: str, value: str) -> bool:
    """An ``OSError``'s file is the option's value; a :class:`~pndmkit.errors.WriteError`'s may also lie inside it
    (``--out DIR`` and ``DIR/run.json``)."""
    if filename == value:
        return True
    from pathlib import Path

    return isinstance(exc, WriteError) and Path(value) in Path(filename).parents


def _as_options(message: str, parser: argparse.ArgumentParser) -> str:
    """A library message as advice to a command-line user: where it advises a Python parameter that is an option
    of this command, the option is named instead (``leave t_start unset`` -> ``leave --t-start out``, ``pass
    grid='trailing'`` -> ``pass --grid trailing``). What the message reports (``t_start=2.0 lies outside ...``)
    keeps the parameter's name, as the library says it; a parameter the command has no option for stays as it is.

    >>> p = CommandParser(prog="p"); _ = p.add_argument("--t-start"); _ = p.add_argument("--grid")
    >>> _as_options("t_start=0.5 contradicts the grid; leave t_start unset, or pass grid='trailing'", p)
    't_start=0.5 contradicts the grid; leave --t-start out, or pass --grid trailing'
    """
    flags = {dest: flag for dest, flag in _options(parser).items() if flag.startswith("-")}
    if not flags:
        return message
    names = "|".join(re.escape(d) for d in sorted(flags, key=len, reverse=True))
    message = re.sub(rf"\bleave ({names}) (?:unset|out)\b", lambda m: f"leave {flags[m[1]]} out", message)
    return re.sub(rf"\b(pass|give|use) ({names})=('[^']*'|\S+?)(?=[\s,;)]|$)",
                  lambda m: f"{m[1]} {flags[m[2]]} {m[3].strip(chr(39))}", message)


#: the interpreter's own warning printer (replaced only while a command runs and nobody else replaced it)
_PLAIN_SHOWWARNING = warnings.showwarning


@contextmanager
def _one_line_warnings(prog: str) -> Iterator[None]:
    """Print warnings as ``prog: warning: Category: message`` (no source file and line: that is the
    library's, not the user's). Left alone where something else (a test runner, a host program) already
    replaced :func:`warnings.showwarning`."""
    with warnings.catch_warnings():
        if warnings.showwarning is _PLAIN_SHOWWARNING:
            def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ARG001
                print(f"{prog}: warning: {category.__name__}: {message}", file=file or sys.stderr, flush=True)

            warnings.showwarning = show
        yield


def _fail(prog: str, detail: str, code: int = EXIT_USAGE) -> SystemExit:
    return usage_exit(prog, detail, code)


def _unrecognized(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    return unrecognized_message([o for p in _parsers(parser) for a in p._actions for o in a.option_strings], extras)


# -- interrupts -------------------------------------------------------------------------------------
class _Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interrupt so that the same cleanup runs."""


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- entry point ------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (bad input: one line on stderr, then ``SystemExit(2)``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from pndmkit.commands.plugins import load_plugins_or_exit

    # user methods registered by modules named in PNDMKIT_PLUGINS or by installed entry points
    load_plugins_or_exit("pndmkit")
    parser = build_parser()
    prog, args = parser.prog, None
    try:
        try:
            args, extras = parser.parse_known_args(argv)
            command_parser, unchosen = _command_parser(parser, args)
            prog = command_parser.prog
            if extras:
                raise ArgumentLineError(prog, _unrecognized(command_parser, extras))
        except ArgumentLineError as exc:
            raise _fail(exc.prog, exc.message) from None
        if unchosen is not None:
            what = unchosen.metavar or "COMMAND"
            raise _fail(prog, f"{'an' if what[0] in 'AEIOU' else 'a'} {what} is required: "
                              f"{', '.join(unchosen.choices)} (see {prog} --help)")
        with _sigterm_interrupts(), _one_line_warnings(prog):
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
            return code
    except BrokenPipeError:
        # the reader stopped early (`pndmkit methods --json | head`): end quietly; point stdout at devnull
        # so that the interpreter's final flush does not report the pipe again
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout without a descriptor
            pass
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        hint = getattr(args, "resume_hint", None)
        what = "terminated" if isinstance(exc, _Terminated) else "interrupted"
        print(f"{prog}: {what}" + (f"; resume with: {hint(args, argv)}" if hint else ""), file=sys.stderr, flush=True)
        return 143 if isinstance(exc, _Terminated) else 130
    except SystemExit as exc:
        if not isinstance(exc.code, str):
            raise
        # a sub-command's SystemExit("pndmkit CMD: message"): bad input
        named = re.match(r"(pndmkit(?: [\w-]+)*): (?:error: )?(.*)", exc.code, re.S)
        raise (_fail(*named.groups()) if named else _fail(prog, exc.code)) from None
    except FloatingPointError as exc:
        if os.environ.get("PNDMKIT_TRACEBACK"):
            raise
        raise _fail(prog, str(exc), EXIT_FAILED) from None
    except Exception as exc:
        blamed = _blamed_options(exc, _command_parser(parser, args)[0], argv)
        if blamed is None or os.environ.get("PNDMKIT_TRACEBACK"):
            raise
        raise _fail(prog, f"{'/'.join(blamed)}: {_as_options(str(exc), _command_parser(parser, args)[0])}") from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
