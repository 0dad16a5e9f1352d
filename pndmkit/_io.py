"""Harness file I/O: atomic writes, JSON, progress bars, output-folder locks (torch-free; tqdm and filelock are
imported only when a bar is made or a lock taken).

An atomic write writes a temporary file in the target's folder, then ``os.replace``-s it.

A temporary file is named ``.<target name>.<random>.tmp<suffix>``; a write killed before ``os.replace``
(SIGKILL, power loss) leaves one behind, which :func:`remove_stale_temporaries` deletes on the next run.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
import time
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["atomic_path", "write_json", "json_text", "strict_json", "read_json", "read_json_object", "MAX_JSON_BYTES",
           "not_regular_file", "write_text", "progress_bar", "remove_stale_temporaries", "check_writable_folder",
           "check_out_file", "path_kind", "locked_folder"]

_TEMP_PATTERN = ".*.tmp*"


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    Raises
    ------
    pndmkit.errors.WriteError
        An ``OSError`` naming ``path`` (not the temporary file) and the reason: its folder cannot be made, the
        temporary file cannot be made or written (in the block), or not renamed to ``path`` (a full disk, a
        read-only filesystem). No temporary file is left behind, and ``path`` is as it was.
    """
    from pndmkit.errors import WriteError

    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(path, exc) from exc
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


#: what a path that is not a regular file is, by its mode (:func:`path_kind`)
_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def path_kind(path: str | os.PathLike[str]) -> str | None:
    """What exists at ``path``, where it is not a regular file: ``"a folder"``, ``"a character device"``, ``"a block
    device"``, ``"a FIFO"`` (a named pipe), ``"a socket"``, ``"a broken symbolic link"``; ``None`` where nothing is
    there or a regular file (a symbolic link is followed).

    >>> path_kind("/dev/null"), path_kind("/no/such/file")
    ('a character device', None)
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if os.path.islink(path) else None
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def check_out_file(path: str | os.PathLike[str], param: str, *, overwrite: bool, what: str = "file",
                   example: str = "out.json", option: str | None = None) -> Path:
    """Refuse an output file before any work: a folder (also a name that ends in ``/``, which means one), anything
    else that is not a regular file (a device, a FIFO, a socket: never replaced, ``overwrite`` or not), an
    existing file without ``overwrite``, or a folder to write it in that cannot be made or written.

    Parameters
    ----------
    path : path
        The output file (it need not exist; nothing is created).
    param : str
        The parameter (or option destination) the errors name.
    overwrite : bool
        An existing regular file may be replaced.
    what : str
        What the file is, for the advice to a folder (``"solver file"``: give the solver file's name).
    example : str
        A file name for the advice to a folder (``solver.json``).
    option : str, optional
        The command-line option (``--out``): the messages then quote the path as given and advise the option (the
        command line prints them after ``--out:``); else they name ``param=PATH`` for a Python caller.

    Returns
    -------
    Path

    Raises
    ------
    pndmkit.errors.UsageError
        Naming ``param``, the path and what is wrong.

    Examples
    --------
    >>> check_out_file("/dev/null", "path", overwrite=True)
    Traceback (most recent call last):
    pndmkit.errors.UsageError: path='/dev/null' is a character device, not a regular file; give a file name
    """
    from pndmkit.errors import UsageError

    text = os.fspath(path)
    named = repr(text) if option else f"{param}={text!r}"
    p = Path(text)
    if text.endswith(("/", os.sep)):
        raise UsageError(param, f"{named} names a folder (it ends in '/'); give the {what}'s name, e.g. "
                                f"{str(p / example)!r}")
    kind = path_kind(p)
    if kind == "a folder":
        raise UsageError(param, f"{named} is a folder; give the {what}'s name, e.g. {str(p / example)!r}")
    if kind is not None:
        raise UsageError(param, f"{named} is {kind}, not a regular file; give a file name")
    if (p.exists() or p.is_symlink()) and not overwrite:
        raise UsageError(param, f"{named} already exists; pass {'--overwrite' if option else 'overwrite=True'} to "
                                f"replace it, or another {option or param}")
    check_writable_folder(p.parent, param, option=option)
    return p


def check_writable_folder(path: str | os.PathLike[str], param: str, *, option: str | None = None) -> Path:
    """Refuse an output folder that cannot be created or written, before any work, without creating it.

    The folder, or the nearest of its parents that exists, is tried by making (and at once removing) a
    temporary folder in it, so read-only mounts, immutable folders and missing rights are all found, also
    for root.

    Parameters
    ----------
    path : path
        The output folder (it need not exist).
    param : str
        The parameter (or option destination) the errors name.
    option : str, optional
        The command-line option (``--out``): the messages then quote the path as given (``'solver.json' exists and
        is not a folder``), as a command line's ``--out: ...`` error reads, not ``out='solver.json'``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    pndmkit.errors.UsageError
        Naming ``param``: ``path`` or one of its parents is a file, or the nearest existing folder is not
        writable.
    """
    from pndmkit.errors import UsageError

    p = Path(path)
    named = repr(str(p)) if option else f"{param}={str(p)!r}"
    if p.exists() and not p.is_dir():
        kind = path_kind(p)
        raise UsageError(param, f"{named} exists and is not a folder" + (f" ({kind})" if kind else ""))
    base = p
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise UsageError(param, f"cannot create {named}: {base} is {path_kind(base) or 'a file'}, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".pndmkit-write-test.", dir=base))
    except OSError as exc:
        where = "" if base == p else f" (to create {p} in it)"
        raise UsageError(param, f"cannot write into {base}{where}: {exc.strerror or exc}; choose a writable "
                                f"{option or param} folder") from None
    return p


@contextmanager
def locked_folder(folder: str | os.PathLike[str], lock_name: str, *, what: str, param: str = "out"
                  ) -> Iterator[tuple[bool, bool]]:
    """Make ``folder`` and hold the lock ``folder/lock_name`` while a command reads and writes there; refuse at once
    if another process holds it. Yield whether this call made ``folder`` and whether it made the lock file.

    One command at a time writes results into an output folder: the lock is a :class:`filelock.FileLock`,
    ``flock(2)`` on Linux and macOS (a file lock of the system on Windows), so the operating system releases it
    when the process holding it ends, however it ends (a crash, SIGKILL): it cannot go stale, and the (empty) file
    it leaves needs no deleting. (On a filesystem without ``flock`` filelock falls back, with a warning, to a
    marker file.) A second taker is refused rather than made to wait: its settings may differ, and it would only
    find the folder changed. Whatever a command checks about the folder's contents (results already there, a run
    to resume) it checks again inside this block, where no other command can change them.

    On leaving, where this call made the lock file and nothing else is in ``folder`` (the command stopped, or was
    refused, before writing anything), the lock file is removed, and ``folder`` too where this call made it.

    Parameters
    ----------
    folder : path
        The output folder (made, with its parents, when missing).
    lock_name : str
        File name of the lock inside ``folder`` (``.pndmkit-sample.lock``, ...).
    what : str
        What holds such a lock, for the refusal (``"sampling run"``: "... is in use by another sampling run").
    param : str
        The parameter (option destination) the refusal names.

    Raises
    ------
    pndmkit.errors.UsageError
        Naming ``param``, ``folder`` and the lock file: another process holds the lock.
    """
    from filelock import FileLock, Timeout

    from pndmkit.errors import UsageError

    folder = Path(folder)
    made_folder = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock_file = folder / lock_name
    made_lock = not lock_file.exists()
    lock = FileLock(lock_file)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError(param, f"{folder} is in use by another {what}: a process holds its lock {lock_file} "
                                f"(`fuser {lock_file}` names it); wait for that run to end or use another {param} "
                                "folder. The operating system releases the lock when the process holding it ends, "
                                "even by a crash or a kill, so it is never stale: the file needs no deleting"
                         ) from None
    try:
        yield made_folder, made_lock
    finally:
        if made_lock and [p.name for p in folder.iterdir()] == [lock_name]:
            # unlinked while still held: filelock finds an unlinked file it locked and tries again (on a local
            # filesystem; NFS keeps an open unlinked file under another name, a race of three runs at once)
            lock_file.unlink(missing_ok=True)
            if made_folder:
                try:
                    folder.rmdir()
                except OSError:  # something else came in meanwhile
                    pass
        lock.release()


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files :func:`atomic_path` left in ``folder`` (call it when no write is running
    there); return the deleted paths."""
    folder = Path(folder)
    stale = [p for p in folder.glob(_TEMP_PATTERN) if p.is_file() and ".tmp" in p.name[1:]] if folder.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def strict_json(obj: Any) -> Any:
    """``obj`` made ready for strict JSON (RFC 8259 has no NaN and no Infinity): every non-finite float, numpy's
    included, becomes ``None`` (JSON ``null``).

    Dictionaries, lists and tuples are copied (a tuple as a list); numpy arrays and scalars go through their
    ``tolist()``; anything else is kept as it is (:func:`json_text` then refuses what JSON cannot hold).

    Parameters
    ----------
    obj : object
        JSON-ready data, possibly holding ``nan`` or ``inf`` (the error of a run that broke down).

    Returns
    -------
    object
        The same data with each non-finite number replaced by ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> strict_json({"error": float("inf"), "errors": np.array([1.0, np.nan]), "n": (3, -float("inf"))})
    {'error': None, 'errors': [1.0, None], 'n': [3, None]}
    """
    if isinstance(obj, float):  # numpy's float64 too
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if not isinstance(obj, (str, bytes)) and hasattr(obj, "tolist"):
        return strict_json(obj.tolist())
    return obj


def json_text(obj: Any, *, indent: int | None = None, sort_keys: bool = False, compact: bool = False) -> str:
    """``obj`` as strict JSON text (no final newline): :func:`strict_json` first, so a non-finite number is
    ``null``, never the ``NaN`` / ``Infinity`` that :func:`json.dumps` writes by default and strict parsers (jq,
    ``json.loads(..., parse_constant=...)`` that refuses them, most other languages') reject.

    Parameters
    ----------
    obj : object
        JSON-ready data; numpy arrays and scalars are written through their ``tolist()``.
    indent : int, optional
        As :func:`json.dumps` takes it (ignored when ``compact``).
    sort_keys : bool
        Sort the keys of every dictionary.
    compact : bool
        No whitespace at all (for tables of many numbers).

    Returns
    -------
    str

    Raises
    ------
    TypeError
        An object that is neither JSON-ready nor has ``tolist()``.

    Examples
    --------
    >>> json_text({"error": float("nan"), "ratio": 0.5})
    '{"error": null, "ratio": 0.5}'
    """
    data = strict_json(obj)
    if compact:
        return json.dumps(data, separators=(",", ":"), sort_keys=sort_keys, default=_jsonable, allow_nan=False)
    return json.dumps(data, indent=indent, sort_keys=sort_keys, default=_jsonable, allow_nan=False)


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2, sort_keys: bool = True,
               compact: bool = False) -> Path:
    """Write ``obj`` as strict JSON (:func:`json_text`: a non-finite number is ``null``), atomically, with a final
    newline; return the path.

    Parameters
    ----------
    path : path
        Target file (its folder is created).
    obj : object
        JSON-ready data; numpy arrays and scalars are written through their ``tolist()``.
    indent : int
        Indentation (ignored when ``compact``).
    sort_keys : bool
        Sort the keys of every dictionary.
    compact : bool
        No whitespace at all (for tables of many numbers).

    Raises
    ------
    TypeError
        An object that is neither JSON-ready nor has ``tolist()``.
    """
    return write_text(path, json_text(obj, indent=indent, sort_keys=sort_keys, compact=compact) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON document in ``path``."""
    return json.loads(Path(path).read_text())


#: the largest JSON file :func:`read_json_object` reads, in bytes (16 MiB): the files it reads (a solver file, a
#: checkpoint's description) hold a few KB, so a larger one is refused before it is read
MAX_JSON_BYTES = 16 * 2**20

#: the most digits of an integer :func:`read_json_object` reads: Python's own limit of integer string conversion
#: (:func:`sys.get_int_max_str_digits`), under which :func:`json.loads` raises a ``ValueError`` like bad JSON's
_MAX_INT_DIGITS = 4300



def not_regular_file(path: str | os.PathLike[str]) -> str | None:
    """What is wrong with reading ``path`` as a file, as a phrase to follow its name, or ``None`` for a regular
    file (or a link to one) and for a path that does not exist (the caller says "not found").

    Parameters
    ----------
    path : path
        The file to read.

    Returns
    -------
    str or None
        ``"is not a file (a folder?)"`` for a folder; ``"is not a regular file (a FIFO)"`` (a character device,
        a block device, a socket) for anything else that is not a regular file, which reading would block on
        (a FIFO) or never finish (``/dev/zero``).

    Examples
    --------
    >>> not_regular_file("/dev/null")
    'is not a regular file (a character device)'
    """
    kind = path_kind(path)
    if kind is None or kind == "a broken symbolic link":  # the caller says "not found"
        return None
    return "is not a file (a folder?)" if kind == "a folder" else f"is not a regular file ({kind})"


class _Refused(Exception):
    """A JSON text :func:`read_json_object` refuses though :func:`json.loads` would read it; its message follows
    the file's name."""


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"holds {name}, which is not JSON (RFC 8259 has no NaN or Infinity; pndmkit writes null)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _Refused(f"holds the key {key!r} twice in one object (which one holds is not defined)")
        seen.add(key)
    return dict(pairs)


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > _MAX_INT_DIGITS:
        raise _Refused(f"holds an integer of {digits} digits, out of range (at most {_MAX_INT_DIGITS} digits are "
                       "read; no field holds more than a few)")
    return int(text)


def _bounded_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused(f"holds the number {text[:20]}{'...' if len(text) > 20 else ''}, out of range (beyond a "
                       "float's largest, about 1.8e308)")
    return value


def read_json_object(path: str | os.PathLike[str], what: str, fix: str, *, max_bytes: int = MAX_JSON_BYTES
                     ) -> dict[str, Any]:
    """The JSON object in the file ``path``, for a loader that names its files and refuses a damaged one.

    Strict JSON only (RFC 8259): ``NaN`` / ``Infinity`` and a key twice in one object, which :func:`json.loads`
    reads, are refused, and so are values it cannot hold or would raise on in another way (an integer of more
    than 4300 digits, a number beyond a float's range, nesting deeper than Python's recursion limit).

    Parameters
    ----------
    path : path
        The file.
    what : str
        What such a file is, for the messages (``"checkpoint file"``, ``"solver file"``).
    fix : str
        What to do about a damaged one (``"restore the file or save the checkpoint again"``).
    max_bytes : int
        The largest file read (default :data:`MAX_JSON_BYTES`, 16 MiB); a larger one is refused before it is read.

    Returns
    -------
    dict
        The object, as :func:`json.loads` reads it.

    Raises
    ------
    pndmkit.errors.BadFileError
        One line, ``"{what} {path} <what is wrong>; {fix}"``: the file is not a regular file
        (:func:`not_regular_file`: a folder, a FIFO, a device), is larger than ``max_bytes`` (its size and the
        limit), cannot be read, is empty, is not valid JSON (with the line and column of the first error, e.g.
        where the file is cut short), holds ``NaN`` or ``Infinity``, a key twice in one object (naming it), an
        integer too long or a number out of range, is nested too deep, or holds another JSON value than an
        object.
    """
    from pndmkit.errors import BadFileError

    path = Path(path)
    problem = not_regular_file(path)
    text = ""
    if problem is None:
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                raw = f.read(max_bytes + 1) if size <= max_bytes else b""
            if max(size, len(raw)) > max_bytes:  # also a file that grew past the limit since it was opened
                problem = (f"is {max(size, len(raw))} bytes, above the {max_bytes}-byte limit "
                           f"({max_bytes / 2**20:g} MiB; a {what} holds a few KB)")
            else:
                text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problem = f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
        else:
            problem = problem or ("is empty" if not text.strip() else None)
    if problem is None:
        try:
            data = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys,
                              parse_int=_bounded_int, parse_float=_bounded_float)
        except _Refused as exc:
            problem = str(exc)
        except RecursionError:
            problem = f"nests its values too deep for Python's JSON reader: not a {what}"
        except ValueError as exc:
            where = f" (line {exc.lineno}, column {exc.colno}: {exc.msg})" if isinstance(exc, json.JSONDecodeError) \
                else ""
            problem = f"is not valid JSON{where}, e.g. truncated"
        else:
            problem = None if isinstance(data, dict) else f"holds a JSON {type(data).__name__}, not an object"
    if problem is not None:
        raise BadFileError(path, f"{what} {path} {problem}; {fix}")
    return data


def _jsonable(v: Any) -> Any:
    if hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


class _PlainProgress:
    """Fallback progress report on stderr (one line every ``interval`` seconds) when tqdm is missing."""

    def __init__(self, total: int, initial: int, desc: str, interval: float) -> None:
        self.total, self.n, self.desc, self.interval = total, initial, desc, interval
        self.last = time.monotonic()

    def update(self, k: int = 1) -> None:
        self.n += k
        if time.monotonic() - self.last > self.interval or self.n >= self.total:
            self.last = time.monotonic()
            print(f"{self.desc}: {self.n}/{self.total}", file=sys.stderr, flush=True)

    def set_postfix(self, **kwargs: Any) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, *, initial: int = 0, desc: str = "", unit: str = "it", leave: bool = True) -> Any:
    """A tqdm bar on stderr (refreshing every 30 s when stderr is not a terminal), or a plain fallback.

    ``leave=False`` clears the bar when it is closed (tqdm only). The fallback, when tqdm is missing, prints
    ``desc: n/total`` on stderr at most every 30 s (1 s on a terminal).
    """
    interval = 1.0 if sys.stderr.isatty() else 30.0
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _PlainProgress(total, initial, desc, interval)
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, mininterval=interval,
                dynamic_ncols=True, leave=leave)
