"""What a long network study says while it runs: its cost before it starts, a line per finished block, a budget.

A network study (``pndmkit order --model``, ``pndmkit grid optimize --model``) spends minutes to hours in
reference solves and sampling runs. :class:`StudyMonitor` times one network evaluation before anything else
(:meth:`StudyMonitor.time_evaluation`), so the command can print how many reference solves and network
evaluations the study needs and about how long they take; it prints one line per finished block (a reference
block, a method's sweep, a share of a grid search) on stderr whether or not stderr is a terminal; and it holds
an optional time budget (:meth:`StudyMonitor.check` raises :class:`TimeBudgetExceeded`, a ``KeyboardInterrupt``,
so a budget stops a study exactly where Ctrl-C would: finished blocks stay in the cache and what is finished
is reported).
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Sequence

from pndmkit._checks import check_int

__all__ = ["StudyMonitor", "TimeBudgetExceeded", "duration", "interrupts_held"]


class TimeBudgetExceeded(KeyboardInterrupt):
    """The study's time budget is spent (raised where an interrupt would be, so the same cleanup runs)."""


@contextmanager
def interrupts_held(active: bool = True) -> Iterator[list]:
    """Hold Ctrl-C (SIGINT) while the block runs: an interrupt is recorded, not raised, and the block finishes.

    A search that Ctrl-C ends hands back its best result so far, which is then judged on held-out noises; an
    interrupt that lands in that judging would otherwise lose the whole search (``pndmkit grid fit --model``). Inside
    the block an interrupt appends ``"interrupted"`` to the list it yields; the caller then treats the search as
    stopped. Only in the main thread (where Python delivers signals) and where ``active``; elsewhere the block runs
    as it is and the list stays empty.

    Parameters
    ----------
    active : bool
        Hold interrupts (``True``: a caller with ``stop_early``); ``False``: change nothing.

    Yields
    ------
    list of str
        Empty, or ``["interrupted", ...]``, one entry per interrupt held.
    """
    held: list = []
    if not active or threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda signum, frame: held.append("interrupted"))
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def duration(seconds: float) -> str:
    """A duration for people: ``'0.8 s'``, ``'42 s'``, ``'3.5 min'``, ``'2.1 h'``.

    >>> duration(0.84), duration(42.4), duration(210), duration(7560)
    ('0.8 s', '42 s', '3.5 min', '2.1 h')
    """
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class StudyMonitor:
    """Cost estimate, progress lines and time budget of a network study.

    Parameters
    ----------
    log : callable, optional
        Receives each line (default: print it on stderr and flush).
    max_minutes : float, optional
        Time budget from the monitor's creation; ``None``: none.
    clock : callable
        Seconds (default :func:`time.monotonic`).
    """

    def __init__(self, log: Optional[Callable[[str], None]] = None, max_minutes: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_minutes is not None and not (isinstance(max_minutes, (int, float)) and max_minutes > 0):
            from pndmkit.errors import UsageError

            raise UsageError("max_minutes", f"max_minutes must be a number > 0, got {max_minutes!r}")
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.clock = clock
        self.began = clock()
        self.max_seconds = None if max_minutes is None else 60.0 * float(max_minutes)
        #: seconds of one network evaluation of :attr:`batch` samples (:meth:`time_evaluation`)
        self.seconds_per_evaluation = math.nan
        self.batch = 0

    def elapsed(self) -> float:
        """Seconds since the monitor was created."""
        return self.clock() - self.began

    def out_of_time(self) -> bool:
        """Whether the budget is spent."""
        return self.max_seconds is not None and self.elapsed() >= self.max_seconds

    def check(self) -> None:
        """Raise :class:`TimeBudgetExceeded` when the budget is spent."""
        if self.out_of_time():
            raise TimeBudgetExceeded(f"the time budget of {duration(self.max_seconds or 0.0)} is spent")

    def time_evaluation(self, model: Callable[[Any, float], Any], x: Any, t: float, repeats: int = 1) -> float:
        """Seconds of one call ``model(x, t)``: the fastest of ``repeats`` timed calls (a busy machine's pauses are
        not the network's cost), after a first call that warms the network up.

        Sets :attr:`seconds_per_evaluation` and :attr:`batch` (``len(x)``), which :meth:`cost` scales from.

        Parameters
        ----------
        model : callable
            ``model(x, t)``, the network; an output with a ``cpu()`` method (a torch tensor) is moved to the
            CPU inside the timing, so a device's queued work is counted.
        x : array or torch.Tensor, shape (batch, ...)
            One batch of inputs, in the model's own dtype and device.
        t : float
            The time passed to the model, in the model's schedule's time ``t``.
        repeats : int
            Number of timed calls, an integer >= 1 (default 1); the warm-up call is not counted.

        Returns
        -------
        float
            Wall-clock seconds (:func:`time.perf_counter`) of the fastest timed call.

        Raises
        ------
        TypeError
            ``repeats`` is not an integer.
        ValueError
            ``repeats`` is below 1.
        """
        repeats = check_int(repeats, "repeats", minimum=1)
        model(x, t)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = model(x, t)
            if hasattr(out, "cpu"):
                out.cpu()  # wait for the device
            seconds.append(time.perf_counter() - start)
        self.seconds_per_evaluation = min(seconds)
        self.batch = int(len(x))
        return self.seconds_per_evaluation

    def cost(self, evaluations: int, batch: Optional[int] = None) -> float:
        """Estimated seconds of ``evaluations`` network evaluations of ``batch`` samples (default: the timed
        batch; time taken as proportional to the batch)."""
        scale = 1.0 if batch is None or not self.batch else batch / self.batch
        return evaluations * self.seconds_per_evaluation * scale

    def line(self, text: str) -> None:
        """Print one progress line (with the time since the start)."""
        self.log(f"[{duration(self.elapsed())}] {text}")

    def remaining(self, done: Sequence[float], left: int) -> str:
        """``'about 3.5 min left'`` from the seconds of the finished blocks ``done`` and ``left`` more like them."""
        if not done or left <= 0:
            return "nothing left" if left <= 0 else "time left unknown"
        return f"about {duration(left * sum(done) / len(done))} left"
