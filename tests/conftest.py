"""Shared test configuration: offline hub, deterministic hypothesis profile, small helpers."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("pndmkit", deadline=None, max_examples=60, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("pndmkit")

# Two methods defined outside the package (tests/external_methods.py), registered as a user would: every
# registry-driven test then covers them with no other edit (see register_method).
import pndmkit  # noqa: E402
from external_methods import EXTERNAL  # noqa: E402

for _spec in EXTERNAL:
    if _spec.name not in pndmkit.METHODS:
        pndmkit.register_method(_spec)


import pytest  # noqa: E402


@pytest.fixture
def run_cli(capsys):
    """``run_cli(argv)`` runs the command line (``pndmkit.cli.main(argv)``) in this process and returns
    ``(exit status, stdout, stderr)``; an exit by ``SystemExit`` (argparse's usage errors) gives its code."""
    from pndmkit.cli import main

    def run(argv):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def usage_error(capsys):
    """``usage_error(argv)`` runs the command line in this process, asserts that it stopped as bad input does
    (``SystemExit(2)``, one line on stderr, no traceback) and returns that stderr."""
    from pndmkit.cli import main

    def run(argv):
        with pytest.raises(SystemExit) as info:
            main(argv)
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        return err

    return run


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread while the module runs (a shared 2-core machine: more threads only contend)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def inference(one_thread):
    """:func:`one_thread` and no autograd while the module runs (networks evaluated, never trained)."""
    import torch

    with torch.no_grad():
        yield


@pytest.fixture
def in_use():
    """``in_use(prog, folder, lock_name, what)``: the one line (with its newline) a command prints on stderr when
    another process holds the lock ``folder/lock_name`` of its ``--out`` (:func:`pndmkit._io.locked_folder`)."""
    def line(prog, folder, lock_name, what):
        lock = folder / lock_name
        return (f"{prog}: error: --out: {folder} is in use by another {what}: a process holds its lock {lock} "
                f"(`fuser {lock}` names it); wait for that run to end or use another out folder. The operating "
                "system releases the lock when the process holding it ends, even by a crash or a kill, so it is never "
                "stale: the file needs no deleting\n")

    return line


@pytest.fixture
def hold_lock():
    """``hold_lock(folder, name)`` starts a separate process that makes ``folder`` and holds the
    :class:`filelock.FileLock` ``folder/name`` (as a run in another shell does) until its stdin closes
    (``holder.communicate("")``), and returns it once it holds the lock; a holder still running at the end of the
    test is killed."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from filelock import FileLock; "
            "Path(sys.argv[1]).mkdir(parents=True, exist_ok=True); "
            "lock = FileLock(Path(sys.argv[1]) / sys.argv[2]); lock.acquire(timeout=0); "
            "print('held', flush=True); sys.stdin.read()")
    holders = []

    def hold(folder, name):
        holder = subprocess.Popen([sys.executable, "-c", code, str(folder), name], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        holders.append(holder)
        assert holder.stdout.readline() == "held\n"
        return holder

    yield hold
    for holder in holders:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
