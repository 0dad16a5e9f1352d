"""Exceptions that say "the input was wrong", as distinct from a bug.

:class:`UsageError` is a ``ValueError`` that also records which parameters were wrong, so the command line
can name the option (``--method``) while a Python caller sees the parameter (``method``). :func:`blame`
turns the library's own ``ValueError`` / ``TypeError`` / ``FileNotFoundError`` raised while one input is
checked into a ``UsageError`` about that input.

>>> try:
...     with blame("steps"):
...         raise ValueError("steps must be >= 1, got 0")
... except UsageError as exc:
...     exc.params, str(exc)
(('steps',), 'steps must be >= 1, got 0')
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

__all__ = ["UsageError", "BadFileError", "WriteError", "blame"]


class UsageError(ValueError):
    """Bad input: the message says what was wrong and what is allowed.

    Parameters
    ----------
    params : str or tuple of str
        The parameters (dataclass fields, keyword arguments; the command line's option destinations)
        the error is about, most relevant first.
    message : str
        One line naming the value and what is allowed.
    """

    def __init__(self, params: str | tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.params: tuple[str, ...] = (params,) if isinstance(params, str) else tuple(params)
        self.message = message

    def __reduce__(self):  # picklable across processes despite the two-argument constructor
        return (type(self), (self.params, self.message))


class BadFileError(ValueError):
    """A file pndmkit reads back (a checkpoint, a cached reference, a run's record, a training state) is damaged
    or does not hold what it should.

    The message is one line that names the file, says what is wrong with it and what to do. Being a
    ``ValueError``, it becomes a :class:`UsageError` about the option that named the file inside :func:`blame`.

    Parameters
    ----------
    path : str or os.PathLike
        The file (or folder) at fault, kept as :attr:`path`.
    message : str
        The whole message (it names ``path`` itself).
    """

    def __init__(self, path: object, message: str) -> None:
        super().__init__(message)
        self.path = str(path)

    def __reduce__(self):  # picklable across processes despite the two-argument constructor
        return (type(self), (self.path, self.args[0]))


class WriteError(OSError):
    """A file pndmkit writes (a solver file, a run's record, a result) could not be written: the disk is full, the
    filesystem is read-only, ... Raised by :func:`pndmkit._io.atomic_path` (so by every atomic writer), which leaves
    no temporary file behind and the target as it was.

    An ``OSError`` with the failure's ``errno`` and ``strerror``; its ``filename`` is the target (not the temporary
    file the write went to), and its message the one line ``cannot write PATH: REASON``.

    Parameters
    ----------
    path : str or os.PathLike
        The file that could not be written.
    cause : OSError
        The failure (its ``errno`` and ``strerror`` are kept).

    Examples
    --------
    >>> import errno, os
    >>> str(WriteError("out/a.json", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    'cannot write out/a.json: No space left on device'
    """

    def __init__(self, path: object, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause), str(path))

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"

    def __reduce__(self):  # picklable across processes despite the two-argument constructor
        return (type(self), (self.filename, OSError(self.errno, self.strerror)))


_INPUT_ERRORS = (ValueError, TypeError, FileNotFoundError)


@contextmanager
def blame(*params: str, errors: tuple[type[BaseException], ...] = _INPUT_ERRORS) -> Iterator[None]:
    """Re-raise ``errors`` (default: ``ValueError``, ``TypeError``, ``FileNotFoundError``) from the block as a
    :class:`UsageError` about ``params`` (the original stays attached as ``__cause__``); a ``UsageError``
    passes unchanged. Narrow ``errors`` where the block's arguments are known to have the right types, so
    that a ``TypeError`` there stays a bug."""
    try:
        yield
    except UsageError:
        raise
    except errors as exc:
        raise UsageError(params, str(exc)) from exc
