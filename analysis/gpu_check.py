"""One prepared check for a machine with a GPU: host synchronisation, networks in reduced precision, overhead.

``python -m analysis.gpu_check --out DIR`` (``make gpu-check``) runs three parts on ``--device`` (default
``cuda``), in this order; once ``--budget`` seconds (default 480) have passed it starts nothing new and notes what
it skipped, so that the whole check ends within 10 minutes:

1. **Host synchronisation**: every fixed-step method of :data:`pndmkit.methods.METHODS`, through
   ``pndmkit.sample`` and through a ``PNDMKitScheduler`` loop driven as a diffusers pipeline drives it
   (``set_timesteps`` with the timesteps on the device, then ``scale_model_input`` and ``step`` per timestep),
   with a model that costs nothing, at 4 and at 9 steps. On CUDA, ``torch.cuda.set_sync_debug_mode("warn")``
   reports every operation that waits for the device, and each is recorded with the line of Python that called
   it. ``"error"`` would stop a run at its first synchronisation, and a run has a few by design, at its ends:
   ``pndmkit.sample`` checks that ``x_T`` is finite and of the schedule's scale (one reduction, read once) and
   that the result is finite; the scheduler reads the first timestep it is given and checks the final sample. A
   method **passes** when no location is reached more often at 9 steps than at 4: there is no synchronisation
   inside a step. Every location and its count per run is recorded. On the CPU the sync-debug mode does not
   exist (on a CPU-only build of torch, ``torch.cuda.set_sync_debug_mode`` raises ``AssertionError``), so a
   dispatch mode records instead the operations that would wait for a GPU (``.item()`` and ``bool()`` of a
   tensor, ``equal``, ``nonzero``), with the same rule. That is a lower bound of what CUDA reports: a copy to
   the host is a synchronisation on CUDA only. The CPU scheduler loop passes the timesteps as Python numbers (a
   CPU timestep tensor is read at every step, at no device cost).
2. **Networks**: :func:`analysis.bench_nn.bench_case` on the shipped digits UNet and on the ``ddpm-cifar10`` preset
   (random weights), f-pndm at 50 steps, at batch 256 in float32, float16 and bfloat16 (the network's dtype; the
   sampler's state stays float32), plus the CUDA cases of ``make bench`` (:data:`analysis.bench_nn.DEVICE_CASES`):
   images per second, the share of the time outside the network (goal < 2%) and whether the samples are finite.
3. **Solver overhead per evaluation** on the device: :func:`analysis.bench.run`, its three tables with the tensors
   on the device, one call per table.

``--quick`` runs the same code at tiny sizes: the same synchronisation check, each network and dtype once at
batch 2 with 1 DDIM step (the preset at width 8 on 16 x 16 images), the overhead tables at one small shape with two
methods and one repeat. ``--device cpu --quick`` takes 15-30 s on two shared cores; ``tests/test_gpu_check.py``
runs it with three of the six network cases (each network and each dtype once), most of the time being the
networks' CPU forward passes. ``--device cuda`` without CUDA exits 2 with one line.

Writes ``gpu_check.json`` and ``gpu_check.md`` into ``--out`` after each part (a run stopped early keeps what it
measured; an existing result is kept unless ``--overwrite``) and prints a summary. A case that fails (out of
memory, say) is recorded with its error and the check goes on. Exit status 1 when a method synchronises inside a
step, a sample is not finite or a case failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import sys
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from analysis.bench import markdown as bench_markdown
from analysis.bench import run as bench_run
from analysis.bench_nn import DEVICE_CASES, bench_case
from analysis.tables import RESULTS

ROOT = Path(__file__).resolve().parent.parent
#: numbers of steps of the synchronisation check: a synchronisation inside a step is reached more often at the second
SYNC_STEPS = (4, 9)
DRIVERS = ("sample", "scheduler")
#: network cases (network, dtype, batch): batch 256 in each dtype, then the CUDA cases of ``make bench``
NETWORK_CASES = tuple(dict.fromkeys([("digits", d, 256) for d in ("float32", "float16", "bfloat16")]
                                    + [("ddpm-cifar10", d, 256) for d in ("float32", "float16", "bfloat16")]
                                    + [("ddpm-cifar10", d, b) for d, b in DEVICE_CASES]))
#: goal for the share of a sampling run's time spent outside the network
SHARE_GOAL = 0.02
#: the overhead tables, one call each
TABLES = ("shared", "methods", "bound")
FILES = ("gpu_check.json", "gpu_check.md")
QUICK = " --quick: tiny sizes and one repeat, so the numbers test the code paths, not the speed."


def one_line(exc: BaseException) -> str:
    """``Type: message``, its first line."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


# --- 1. host synchronisation -----------------------------------------------------------------------------------
def _location() -> str:
    """The innermost frame of the caller's stack outside torch, warnings and this recorder, as ``path:line (function):
    source``: the line that waited for the device."""
    import torch

    torch_dir, stdlib = os.path.dirname(torch.__file__) + os.sep, {warnings.__file__, contextlib.__file__}
    for frame in reversed(traceback.extract_stack()[:-1]):
        if frame.filename.startswith(torch_dir) or frame.filename in stdlib or \
                (frame.filename == __file__ and frame.name in ("hook", "__torch_dispatch__")):
            continue
        path = Path(frame.filename)
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        return f"{shown}:{frame.lineno} ({frame.name}): {(frame.line or '').strip()}"
    return "?"


@contextlib.contextmanager
def sync_warnings(found: list[str]) -> Iterator[None]:
    """Append to ``found`` the location of each of torch's sync-debug warnings ("called a synchronizing CUDA
    operation") raised inside the block; other warnings are dropped."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")

        def hook(message: Any, *args: Any, **kwargs: Any) -> None:
            if "synchroniz" in str(message):
                found.append(_location())

        warnings.showwarning = hook
        yield


@contextlib.contextmanager
def host_syncs(torch: Any, device: str) -> Iterator[list[str]]:
    """Record, in a list, the location of every operation inside the block that waits for ``device``.

    CUDA: ``torch.cuda.set_sync_debug_mode("warn")`` and its warnings (restored after); CPU: a dispatch mode
    recording ``aten._local_scalar_dense`` (``.item()``, ``bool()``, ``float()`` of a tensor), ``aten.equal`` and
    ``aten.nonzero``, the operations that would wait for a GPU.
    """
    found: list[str] = []
    if torch.device(device).type == "cuda":
        previous = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with sync_warnings(found):
                yield found
        finally:
            torch.cuda.set_sync_debug_mode(previous)
        return
    from torch.utils._python_dispatch import TorchDispatchMode

    reads = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.equal.default}

    class HostReads(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            if func in reads or func.overloadpacket is torch.ops.aten.nonzero:
                found.append(_location())
            return func(*args, **(kwargs or {}))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a method's own warnings (training range, stability) are not the subject
        with HostReads():
            yield found


def sample_run(torch: Any, method: str, steps: int, x: Any, device: str) -> Callable[[], Any]:
    """A whole ``pndmkit.sample`` run of ``method`` from ``x`` with a model that costs nothing."""
    import pndmkit

    schedule = pndmkit.DiscreteVP.linear()
    return lambda: pndmkit.sample(lambda x, t: 0.1 * x, x, schedule=schedule, method=method, steps=steps).x


def scheduler_run(torch: Any, method: str, steps: int, x: Any, device: str) -> Callable[[], Any]:
    """A pipeline's loop over a ``PNDMKitScheduler`` with ``method`` (set up on a DDIM config, timesteps on
    ``device``; Python numbers on the CPU, where a timestep tensor is read at every step at no device cost)."""
    from diffusers import DDIMScheduler

    from pndmkit.integrations.diffusers import PNDMKitScheduler

    scheduler = PNDMKitScheduler.from_config(DDIMScheduler(clip_sample=False).config, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler.set_timesteps(steps, device=device)
    timesteps = scheduler.timesteps if torch.device(device).type == "cuda" else scheduler.timesteps.tolist()

    def loop() -> Any:
        sample = x
        for t in timesteps:
            sample = scheduler.step(0.1 * scheduler.scale_model_input(sample, t), t, sample).prev_sample
        return sample

    return loop


def verdict(method: str, driver: str, found: dict[int, list[str]]) -> dict[str, Any]:
    """A method's row: synchronisations per run, where, and whether any is inside a step."""
    few, many = Counter(found[SYNC_STEPS[0]]), Counter(found[SYNC_STEPS[-1]])
    grown = [where for where in many if many[where] > few[where]]  # in order of first occurrence
    return {"method": method, "driver": driver, "syncs": {str(s): len(found[s]) for s in SYNC_STEPS},
            "locations": dict(many), "passed": not grown, "first_offending": grown[0] if grown else None}


def sync_check(torch: Any, device: str, methods: Sequence[str], drivers: Sequence[str], deadline: float,
               skipped: list[str], shape: Sequence[int] = (2, 3, 8, 8)) -> list[dict[str, Any]]:
    """:func:`verdict` of every method with every driver; an error is recorded in its row and the check goes on."""
    runs = {"sample": sample_run, "scheduler": scheduler_run}
    rows = []
    x = torch.randn(tuple(shape), device=device)
    for method in methods:
        if time.monotonic() > deadline:
            skipped.append(f"synchronisation check of {method} and the methods after it: out of time")
            break
        for driver in drivers:
            found = {}
            try:
                for steps in SYNC_STEPS:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        loop = runs[driver](torch, method, steps, x, device)
                    with host_syncs(torch, device) as found[steps]:
                        out = loop()
            except Exception as exc:  # recorded in the row; the other methods still run
                rows.append({"method": method, "driver": driver, "passed": False, "error": one_line(exc)})
                continue
            row = verdict(method, driver, found)
            row["finite"] = bool(torch.isfinite(out).all())
            rows.append(row)
    return rows


# --- 2. networks ------------------------------------------------------------------------------------------------
def network_rows(torch: Any, device: str, quick: bool, deadline: float, skipped: list[str],
                 log: Callable[[str], None]) -> list[dict[str, Any]]:
    """:func:`analysis.bench_nn.bench_case` for each of :data:`NETWORK_CASES` (each on a fresh copy of the network,
    so that no case runs on weights rounded by another's dtype)."""
    from pndmkit.nn.checkpoint import load_checkpoint
    from pndmkit.nn.unet import UNet
    from pndmkit.schedules import DiscreteVP

    digits = load_checkpoint("digits")
    torch.manual_seed(0)
    cifar = UNet.preset("ddpm-cifar10", **({"ch": 8, "num_groups": 4, "image_size": 16} if quick else {}))
    nets = {"digits": (digits.net, digits.schedule), "ddpm-cifar10": (cifar, DiscreteVP.linear())}
    rows = []
    for name, dtype, batch in NETWORK_CASES:
        if quick and batch != 256:  # quick: each network and dtype once (at batch 2)
            continue
        if time.monotonic() > deadline:
            skipped.append(f"network case {name} {dtype} batch {batch}: out of time")
            continue
        net, schedule = nets[name]
        try:
            row = bench_case(copy.deepcopy(net), schedule, name=name, method="ddim" if quick else "f-pndm",
                             steps=1 if quick else 50, batch=2 if quick else batch, device=device, dtype=dtype,
                             repeats=1 if quick else 2)
        except Exception as exc:  # recorded in the row (out of memory, say); the other cases still run
            rows.append({"case": name, "dtype": dtype, "batch": batch, "error": one_line(exc)})
            log(f"{name:>13} {dtype:>8} batch {batch:>3}: {rows[-1]['error']}")
            if torch.device(device).type == "cuda":
                torch.cuda.empty_cache()
            continue
        row["parameters"] = sum(p.numel() for p in net.parameters())
        row["meets_share_goal"] = row["share_outside_network"] < SHARE_GOAL
        rows.append(row)
        log(f"{name:>13} {dtype:>8} batch {row['batch']:>3}: {row['images_per_second']:9.2f} img/s, "
            f"{100 * row['share_outside_network']:.2f}% outside the network, finite {row['finite']}")
    return rows


# --- 3. solver overhead -----------------------------------------------------------------------------------------
def overhead(device: str, quick: bool, tables: Sequence[str], deadline: float, skipped: list[str],
             errors: list[str], log: Callable[[str], None]) -> dict[str, Any] | None:
    """:func:`analysis.bench.run` on ``device``, one call per table, merged into one result; a table that fails is
    named in ``errors``."""
    options = {"repeats": 1, "shapes": ((1, 4, 8, 8),), "methods": ("ddim", "unipc-3")} if quick else {}
    result = None
    for table in tables:
        if time.monotonic() > deadline:
            skipped.append(f"overhead table {table!r}: out of time")
            continue
        try:
            part = bench_run(tables=(table,), device=device, log=log, profile=False, **options)
        except Exception as exc:  # the other tables still run
            errors.append(f"overhead table {table!r}: {one_line(exc)}")
            continue
        if result is None:
            result = part
        else:
            result[table] = part[table]
            result["tables"].append(table)
    return result


# --- the check --------------------------------------------------------------------------------------------------
def _version(name: str) -> str | None:
    try:
        return __import__(name).__version__
    except ImportError:
        return None


def markdown(result: dict[str, Any]) -> str:
    """The results as Markdown: the card, the synchronisation verdicts, the network table, the overhead tables."""
    m = result["machine"]
    lines = [f"# GPU check on {m['card'] or 'the CPU'}", "",
             f"`{' '.join(result['argv'])}`: {m['device']}, torch {m['torch']} (CUDA {m['cuda']}), diffusers "
             f"{m['diffusers']}, {result['elapsed_s']:.0f} s." + (QUICK if result["quick"] else ""), ""]
    sync = result["sync"]
    bad = [r for r in sync["rows"] if not r["passed"]]
    lines += ["## Host synchronisation", "", sync["how"], "",
              f"{len(sync['rows']) - len(bad)} of {len(sync['rows'])} method and driver pairs pass (no synchronisation "
              f"reached more often at {SYNC_STEPS[-1]} steps than at {SYNC_STEPS[0]}). Where a run of "
              f"{SYNC_STEPS[-1]} steps synchronised, and how many of the runs did so there:", "",
              "| driver | location | synchronisations per run: runs |", "|---|---|---|"]
    for driver in DRIVERS:
        seen: dict[str, Counter] = {}
        for r in sync["rows"]:
            for where, count in r.get("locations", {}).items() if r["driver"] == driver else ():
                seen.setdefault(where, Counter())[count] += 1
        lines += [f"| {driver} | `{where}` | {', '.join(f'{k}: {n}' for k, n in sorted(c.items()))} |"
                  for where, c in seen.items()]
    lines.append("")
    if bad:
        lines += ["| method | driver | syncs | first offending |", "|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['driver']} | {r.get('syncs', '')} | "
                  f"{r.get('error') or r['first_offending']} |" for r in bad] + [""]
    lines += ["## Networks", "", f"pndmkit.sample, {'ddim' if result['quick'] else 'f-pndm'}; goal: under {SHARE_GOAL:.0%} of the time outside the network.", "",
              "| network | parameters | dtype | batch | NFE | images/s | outside the network | finite |",
              "|---|---:|---|---:|---:|---:|---:|---|"]
    lines += [f"| {r['case']} | | {r['dtype']} | {r['batch']} | {r['error']} | | | |" if "error" in r else
              f"| {r['case']} | {r['parameters'] / 1e6:.2f}M | {r['dtype']} | {r['batch']} | {r['nfe']} "
              f"| {r['images_per_second']:.1f} | {100 * r['share_outside_network']:.2f}% | {r['finite']} |"
              for r in result["networks"]]
    lines += ["", "## Solver overhead", ""]
    lines += [bench_markdown(result["overhead"]) if result["overhead"] else "not run", ""]
    for title, notes in (("Errors", result["errors"]), ("Skipped", result["skipped"])):
        lines += [f"## {title}", ""] + [f"- {s}" for s in notes] + [""] if notes else []
    return "\n".join(lines)


def run(device: str, quick: bool, budget: float, out: Path, argv: Sequence[str],
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the three parts, writing ``gpu_check.json`` and ``gpu_check.md`` into ``out`` after each."""
    import torch

    from pndmkit.methods import METHODS

    start = time.monotonic()
    deadline = start + budget
    cuda = torch.device(device).type == "cuda"
    skipped: list[str] = []
    diffusers = _version("diffusers")
    drivers = DRIVERS if diffusers else ("sample",)
    if not diffusers:
        skipped.append("the PNDMKitScheduler loop and the overhead tables 'shared' and 'bound': diffusers is not "
                       "installed")
    how = ("CUDA: torch.cuda.set_sync_debug_mode('warn'), every synchronising operation recorded with its line"
           if cuda else "CPU: torch.cuda.set_sync_debug_mode does not apply (CUDA only); a dispatch mode recorded the "
           "operations that would wait for a GPU (_local_scalar_dense, equal, nonzero) instead")
    result: dict[str, Any] = {
        "argv": list(argv), "quick": quick, "budget_s": budget, "elapsed_s": 0.0,
        "machine": {"device": device, "card": torch.cuda.get_device_name(device) if cuda else None,
                    "cuda": torch.version.cuda, "torch": torch.__version__, "diffusers": diffusers,
                    "python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count()},
        "sync": {"how": how, "steps": list(SYNC_STEPS), "rows": []},
        "networks": [], "share_goal": SHARE_GOAL, "overhead": None, "errors": [],
        "skipped": skipped}

    def save() -> None:
        result["elapsed_s"] = round(time.monotonic() - start, 1)
        out.mkdir(parents=True, exist_ok=True)
        (out / FILES[0]).write_text(json.dumps(result, indent=2) + "\n")
        (out / FILES[1]).write_text(markdown(result))

    log(f"host synchronisation ({how})")
    fixed = [name for name, spec in METHODS.items() if not spec.adaptive]
    result["sync"]["rows"] = sync_check(torch, device, fixed, drivers, deadline, skipped)
    save()
    log("networks")
    result["networks"] = network_rows(torch, device, quick, deadline, skipped, log)
    save()
    log("solver overhead")
    result["overhead"] = overhead(device, quick, TABLES if diffusers else ("methods",), deadline, skipped,
                                  result["errors"], log)
    save()
    return result


def summary(result: dict[str, Any]) -> str:
    """A few lines: the card, the verdicts, the network numbers, the overhead ratios, what was skipped."""
    m, rows = result["machine"], result["sync"]["rows"]
    bad = [r for r in rows if not r["passed"]]
    lines = [f"{m['card'] or 'CPU'} ({m['device']}), torch {m['torch']}, {result['elapsed_s']:.0f} s."
             + (QUICK if result["quick"] else ""),
             f"host synchronisation: {len(rows) - len(bad)}/{len(rows)} runs pass ({result['sync']['how']})"]
    lines += [f"  FAIL {r['method']} ({r['driver']}): {r.get('error') or r['first_offending']}" for r in bad]
    for r in result["networks"]:
        lines.append(f"  {r['case']:>13} {r['dtype']:>8} batch {r['batch']:>3}: " + (
            r["error"] if "error" in r else f"{r['images_per_second']:9.1f} img/s, "
            f"{100 * r['share_outside_network']:.2f}% outside the network, finite {r['finite']}"))
    shared = (result["overhead"] or {}).get("shared") or []
    if shared:
        lines.append(f"overhead: pndmkit.sample / diffusers at most {max(r['sample_ratio'] for r in shared):.2f}, "
                     f"scheduler / diffusers at most {max(r['scheduler_ratio'] for r in shared):.2f}")
    lines += [f"error: {s}" for s in result["errors"]] + [f"skipped: {s}" for s in result["skipped"]]
    return "\n".join(lines)


def _device(text: str) -> str:
    if text == "cpu" or text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")


def main(argv: Sequence[str] | None = None) -> int:
    from pndmkit.commands.args import positive_float, writable_folder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=writable_folder, default=str(RESULTS / "gpu_check"), metavar="DIR",
                        help="folder gpu_check.json and gpu_check.md are written to (default: "
                             "analysis/results/gpu_check)")
    parser.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    parser.add_argument("--device", type=_device, default="cuda", help="cpu, cuda or cuda:N (default: cuda)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: every code path in seconds")
    parser.add_argument("--budget", type=positive_float, default=480.0, metavar="SECONDS",
                        help="start nothing new after this many seconds (default: 480)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    there = [name for name in FILES if (out / name).exists()]
    if there and not args.overwrite:
        parser.exit(2, f"gpu_check: {out / there[0]} exists; pass --overwrite to replace it or --out another folder\n")
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.exit(2, f"gpu_check: --device {args.device}: CUDA is not available here (torch {torch.__version__}); "
                       "--device cpu --quick runs the same code paths on the CPU\n")
    result = run(args.device, args.quick, args.budget, out, ["python", "-m", "analysis.gpu_check",
                                                              *(sys.argv[1:] if argv is None else argv)])
    print(summary(result))
    print(f"wrote {out / FILES[0]} and {out / FILES[1]}")
    return 1 if failed(result) else 0


def failed(result: dict[str, Any]) -> bool:
    """Whether a method synchronised inside a step, a sample was not finite or a part failed."""
    return (any(not r["passed"] for r in result["sync"]["rows"]) or bool(result["errors"])
            or not all(r.get("finite") for r in result["networks"]))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
