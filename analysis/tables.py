"""Small shared helpers of the study scripts in ``analysis/``: CSV/JSON tables and a common command line.

Every study module has ``run(path, quick=False, log=print) -> path`` writing one table, and a ``main()``
built by :func:`study_main` so that ``python -m analysis.<study> [--quick] [--out FILE]`` runs it alone.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

__all__ = ["RESULTS", "Log", "stderr_log", "write_csv", "read_csv", "write_json", "write_json_if_changed",
           "same_numbers", "read_json", "study_main",
           "set_threads", "ints", "add_search_options", "add_cache_and_out", "REAL_CACHE"]

RESULTS = Path(__file__).resolve().parent / "results"
#: the digits network's reference cache the network studies share (shipped; references they solve are added)
REAL_CACHE = RESULTS / "real_cache"
Log = Callable[[str], None]


def stderr_log(msg: str) -> None:
    """Print ``msg`` on stderr at once (the default log of the study scripts)."""
    print(msg, file=sys.stderr, flush=True)


# -- tables ------------------------------------------------------------------------------------------
def write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Path:
    """Write rows (dicts) as CSV; floats with 6 significant digits, missing values empty."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, columns, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: _fmt(row.get(k)) for k in columns})
    os.replace(tmp, path)
    return path


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return "" if v is None else v


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Read a CSV written by :func:`write_csv`; numbers become int/float, empty cells NaN."""
    with Path(path).open(newline="") as fh:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _parse(v: str) -> Any:
    if v == "":
        return math.nan
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def write_json(path: Path, obj: Any, *, compact: bool = False) -> Path:
    """Write JSON atomically (``compact``: no indentation, for tables of many numbers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    text = json.dumps(obj, separators=(",", ":"), default=_jsonable) if compact else \
        json.dumps(obj, indent=1, default=_jsonable)
    tmp.write_text(text + "\n")
    os.replace(tmp, path)
    return path


def same_numbers(a: Any, b: Any, rtol: float) -> bool:
    """Whether two JSON documents are equal, numbers within relative tolerance ``rtol`` (NaN equal to NaN;
    keys, lengths, strings and booleans exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_numbers(a[k], b[k], rtol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_numbers(x, y, rtol) for x, y in zip(a, b))
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)
    return type(a) is type(b) and a == b


def write_json_if_changed(path: Path, obj: Any, *, rtol: float) -> bool:
    """Write ``obj`` as :func:`write_json` does unless ``path`` already holds the same document, numbers within
    ``rtol`` (:func:`same_numbers`); return whether it wrote. Re-running a study whose floats move in their last
    digits (another BLAS, thread count or CPU) then leaves a shipped results file, and the checkout, untouched."""
    path = Path(path)
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = None
    new = json.loads(json.dumps(obj, default=_jsonable))  # as it would read back (tuples as lists, ...)
    if old is not None and same_numbers(old, new, rtol):
        return False
    write_json(path, obj)
    return True


def _jsonable(v: Any) -> Any:
    if hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def read_json(path: Path) -> Any:
    """The JSON document in ``path``."""
    return json.loads(Path(path).read_text())


def study_main(run: Callable[..., Path], default_name: str, doc: str | None) -> Callable[[Sequence[str] | None], int]:
    """A ``main(argv)`` for a study: ``--quick`` (small sizes), ``--out FILE`` (default analysis/results/NAME)."""

    def main(argv: Sequence[str] | None = None) -> int:
        from pndmkit.commands.args import positive_int

        p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
        p.add_argument("--quick", action="store_true", help="small sizes (seconds), for tests")
        p.add_argument("--out", type=Path, default=None, help=f"output file (default: analysis/results/{default_name})")
        p.add_argument("--threads", type=positive_int, default=None, help="torch threads (digits studies)")
        args = p.parse_args(argv)
        if args.threads:
            set_threads(args.threads)
        out = args.out or RESULTS / default_name
        run(out, quick=args.quick, log=stderr_log)
        print(out)
        return 0

    return main


def set_threads(n: int) -> None:
    """Limit torch's intra-op threads (when torch is importable)."""
    try:
        import torch
    except ModuleNotFoundError:
        return
    torch.set_num_threads(int(n))


# -- command lines of the grid searches ----------------------------------------------------------------
def ints(text: str) -> list[int]:
    """``"5,6"`` -> ``[5, 6]`` (an argparse type: comma-separated integers, empty entries skipped).

    Parameters
    ----------
    text : str
        Comma-separated integers; spaces around an entry are allowed, an empty or blank entry is skipped.

    Returns
    -------
    list of int
        The integers in the order given (empty for ``""``); no range or duplicate check.

    Raises
    ------
    ValueError
        An entry that is not an integer (argparse reports it as an invalid value of the option).
    """
    return [int(v) for v in text.split(",") if v.strip()]


def add_cache_and_out(p: argparse.ArgumentParser, out: Path, *, metavar: str, writes: str, cache: bool = True) -> None:
    """``--out`` of a study script and, unless ``cache=False``, its ``--cache``: the definitions every script in
    ``analysis/`` shares.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser the options are added to (in place).
    out : Path
        Default of ``--out`` (a path under :data:`RESULTS`, shown relative to the repository in ``--help``).
    metavar : str
        How ``--help`` shows the value: ``"FILE.json"``, ``"DIR"``, or ``"PATH"`` for a stem of ``.json`` and ``.md``.
    writes : str
        What the script writes there, for ``--help`` (``"JSON file path the results are written to"``).
    cache : bool
        Add ``--cache DIR`` too: the reference cache, default :data:`REAL_CACHE`; references the study solves are
        added to it.

    Returns
    -------
    None
        Each option takes its text as is (a path, not checked here); the default is said once in ``--help``, by
        ``p``'s formatter where it is :class:`argparse.ArgumentDefaultsHelpFormatter`.

    Raises
    ------
    argparse.ArgumentError
        Where ``p`` already has one of these options.
    """
    said = issubclass(p.formatter_class, argparse.ArgumentDefaultsHelpFormatter)  # it adds "(default: ...)" itself

    def default(text: str) -> str:
        return "" if said else f" (default: {text})"

    if cache:
        p.add_argument("--cache", default=str(REAL_CACHE), metavar="DIR",
                       help="reference cache; references solved here are added to it"
                            + default("the shipped analysis/results/real_cache"))
    p.add_argument("--out", default=str(out), metavar=metavar,
                   help=writes + default(str(out.relative_to(RESULTS.parent.parent))))


def add_search_options(p: argparse.ArgumentParser, *, popsize: int, generations: int, bound: float,
                       polish: int) -> None:
    """``--popsize``, ``--generations``, ``--bound``, ``--polish`` and ``--seed`` of a differential-evolution
    search polished by Nelder-Mead, with these defaults (``--seed`` 0).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser the options are added to (in place).
    popsize : int
        Default of ``--popsize``: differential-evolution members per parameter (the option takes an int >= 1).
    generations : int
        Default of ``--generations``: differential-evolution generations (an int >= 1).
    bound : float
        Default of ``--bound``: each parameter is searched in ``[-bound, bound]`` (a float > 0).
    polish : int
        Default of ``--polish``: Nelder-Mead evaluations per parameter (an int >= 1).

    Returns
    -------
    None

    Raises
    ------
    argparse.ArgumentError
        Where ``p`` already has one of these options.
    """
    from pndmkit.commands.args import nonnegative_int, positive_float, positive_int

    p.add_argument("--popsize", type=positive_int, default=popsize,
                   help="differential evolution: members per parameter")
    p.add_argument("--generations", type=positive_int, default=generations, help="differential evolution generations")
    p.add_argument("--bound", type=positive_float, default=bound, help="each parameter in [-bound, bound]")
    p.add_argument("--polish", type=positive_int, default=polish, help="Nelder-Mead evaluations per parameter")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the search (not of the noises)")
