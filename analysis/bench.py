"""Solver overhead per model evaluation, without the model: pndmkit against diffusers' schedulers.

``make bench`` runs ``python -m analysis.bench``: this benchmark, then ``analysis.bench_nn.main()`` (the
network benchmark) when that module exists.

The model returns a new tensor (zeros) on each call, as a network does, made before the timed loop
(:class:`FreshOutputs`), so what is timed is the sampler's own work: the weights, the combinations, the
transfer, the bookkeeping, the argument checks. (A model that returns one buffer it writes into every call
costs pndmkit a copy per kept output, which keeps the result exact: ``Run.tell``; a pipeline's scheduler loop,
whose ``noise_pred`` the pipeline holds, pays that copy here too.) Torch float32 on the CPU,
one thread (the machine is shared; every side gets the same), interleaved repeats, best of ``repeats``
(three times as many at shapes below 2**16 entries).
Three tables:

1. **Methods with a diffusers counterpart**, at each shape of :data:`SHAPES`, 20 steps: the time per model
   evaluation of ``pndmkit.sample`` (a whole call: checks, grid, run) and of a ``PNDMKitScheduler`` loop
   (``set_timesteps`` and one ``step`` per evaluation, as a pipeline drives it), each divided by the time per
   step of the diffusers scheduler's own loop (``set_timesteps`` and ``step``; one evaluation per step).
   The pndmkit side runs on the grid of a ``PNDMKitScheduler`` with the diffusers scheduler's spacing
   (``leading`` for DDIM/PNDM, ``linspace`` otherwise) and ``set_alpha_to_one`` as diffusers' default.
2. **Every built-in fixed-step method**: ``pndmkit.sample``'s time per evaluation at :data:`SMALL_SHAPE`
   (where the overhead is the sampling time of a small latent on a GPU), its ratio to ``ipndm``'s, the
   time of the plan of a fresh integrator on the grid (``pndmkit.run.make_plan``: step weights and stage
   times, which ``sample`` computes on its first call with a method, schedule and grid and then reuses), and
   the **first call**: ``pndmkit.sample`` on a schedule object never sampled with before (so every cache keyed
   on the schedule or its transfers misses: plan included), per evaluation, and its ratio to ``ipndm``'s
   first call.
3. **The memory-bandwidth bound** of one AB4 step (``plms``), the traffic of a fused kernel: read the new
   eps, the three past ones and ``x``, write ``x_next`` -- six arrays -- divided by the copy bandwidth
   measured at the size of that working set (``dst.copy_(src)``, counting read + write).

Writes ``analysis/results/bench.json`` and ``analysis/results/bench.md`` (the README quotes the latter).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import json
import os
import platform
import pstats
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from analysis.tables import RESULTS

SHAPES = ((1, 3, 32, 32), (64, 3, 32, 32), (256, 3, 64, 64))
#: the shape of the per-method table (a small latent: the overhead is everything)
SMALL_SHAPE = (1, 4, 8, 8)
STEPS = 20
#: arrays a fused AB4 step reads and writes: 4 eps + x read, x_next written
ARRAYS_PER_STEP = 6
#: pndmkit method -> (diffusers scheduler, its options, the spacing it uses by default)
SHARED = {
    "ddim": ("DDIMScheduler", {}, "leading"),
    "plms": ("PNDMScheduler", {"skip_prk_steps": True}, "leading"),
    "dpm-solver++-2m": ("DPMSolverMultistepScheduler", {"solver_order": 2}, "linspace"),
    "dpm-solver++-3m": ("DPMSolverMultistepScheduler", {"solver_order": 3}, "linspace"),
    "unipc-2": ("UniPCMultistepScheduler", {"solver_order": 2}, "linspace"),
    "unipc-3": ("UniPCMultistepScheduler", {"solver_order": 3}, "linspace"),
    "deis-3": ("DEISMultistepScheduler", {"solver_order": 3}, "linspace"),
}
#: goals: pndmkit.sample and the scheduler loop against diffusers; other methods against ipndm; plms against
#: the bandwidth bound at the largest shape
GOALS = {"sample": 0.6, "scheduler": 1.0, "vs_ipndm": 1.5, "bound": 2.0}


def copy_bandwidth(torch: Any, numel: int = 16 * 2**20, repeats: int = 7, device: str = "cpu") -> float:
    """Bytes per second of ``dst.copy_(src)`` (read + write) on float32 tensors of ``numel`` entries on ``device``.

    Best of ``repeats`` timings of a loop long enough (about 64 MiB moved) to time small, cache-resident
    sizes too.
    """
    src = torch.rand(numel, device=device)
    dst = torch.empty_like(src)
    loops = max(1, (16 * 2**20) // numel)

    def copies() -> None:
        for _ in range(loops):
            dst.copy_(src)
        synchronize(torch, device)

    copies()
    best = min(_timed(copies) for _ in range(repeats))
    return 2 * numel * 4 * loops / best


def synchronize(torch: Any, device: str) -> None:
    """Wait for the work queued on ``device`` (CUDA's kernels run asynchronously); nothing to wait for on the CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any]) -> float:
    """Seconds of one call of ``fn``; its ``prepare`` (where it has one) runs first, untimed."""
    prepare = getattr(fn, "prepare", None)
    if prepare is not None:
        prepare()
    tic = time.perf_counter()
    fn()
    return time.perf_counter() - tic


class FreshOutputs:
    """A model that costs nothing and returns a new tensor of zeros on each call, as a network returns a new
    output: the tensors are made beforehand (:meth:`refill`, untimed), and each call hands one over, keeping no
    reference to it (so the sampler may keep it without a copy). Past the pool, a call makes one (untimed loops
    only: the first call, which counts the evaluations)."""

    def __init__(self, torch: Any, shape: Sequence[int], device: str = "cpu") -> None:
        self.zeros = torch.zeros(shape, device=device)
        self.pool: list = []

    def refill(self, n: int) -> None:
        self.pool = [self.zeros.clone() for _ in range(n)]

    def __call__(self, x: Any = None, t: Any = None) -> Any:
        return self.pool.pop() if self.pool else self.zeros.clone()


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for k in shape:
        n *= k
    return n


def _kit_scheduler(method: str, spacing: str, set_alpha_to_one: bool) -> Any:
    from pndmkit.integrations.diffusers import PNDMKitScheduler

    return PNDMKitScheduler(method=method, timestep_spacing=spacing, set_alpha_to_one=set_alpha_to_one,
                            steps_offset=1 if spacing == "leading" else 0)


def sample_loop(torch: Any, method: str, shape: Sequence[int], grid: Any,
                device: str = "cpu") -> tuple[Callable[[], Any], int]:
    """``pndmkit.sample`` on ``grid`` with a model returning zeros, tensors on ``device``; the loop (which waits
    for the device before it returns) and its number of evaluations."""
    import pndmkit
    import pndmkit.grids

    schedule = pndmkit.DiscreteVP.linear()
    model, x = FreshOutputs(torch, shape, device), torch.randn(shape, device=device)

    def loop() -> Any:
        solution = pndmkit.sample(model, x, schedule=schedule, method=method, grid=grid)
        synchronize(torch, device)
        return solution

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nfe = loop().nfe
    loop.prepare = lambda: model.refill(nfe)  # type: ignore[attr-defined]
    return loop, nfe


def scheduler_loop(torch: Any, scheduler: Any, shape: Sequence[int], steps: int,
                   device: str = "cpu") -> tuple[Callable[[], Any], int]:
    """A pipeline's loop over a diffusers-style ``scheduler``: ``set_timesteps`` (timesteps on ``device``, where
    the tensors are), one ``step`` per evaluation; the loop waits for the device before it returns."""
    model, x = FreshOutputs(torch, shape, device), torch.randn(shape, device=device)

    def loop() -> Any:
        scheduler.set_timesteps(steps, device=device)
        sample = x
        for t in scheduler.timesteps:
            noise_pred = model(sample, t)  # held, as a pipeline holds it
            sample = scheduler.step(noise_pred, t, sample).prev_sample
        synchronize(torch, device)
        return sample

    loop()
    nfe = len(scheduler.timesteps)
    loop.prepare = lambda: model.refill(nfe)  # type: ignore[attr-defined]
    return loop, nfe


def shared_row(torch: Any, method: str, shape: Sequence[int], steps: int, repeats: int,
               between: Callable[[], None] | None = None, device: str = "cpu") -> dict[str, Any]:
    """Time per evaluation of the three loops of ``method`` at ``shape`` (interleaved, best of ``repeats``)."""
    from pndmkit.studies.peers import import_diffusers

    cls, options, spacing = SHARED[method]
    peer_cls = getattr(import_diffusers(), cls)
    peer = peer_cls(**options)
    kit = _kit_scheduler(method, spacing, bool(peer.config.get("set_alpha_to_one", True)))
    kit.set_timesteps(steps)
    loops = {"sample": sample_loop(torch, method, shape, [float(t) for t in kit.grid], device),
             "scheduler": scheduler_loop(torch, kit, shape, steps, device),
             "diffusers": scheduler_loop(torch, peer, shape, steps, device)}
    best = {name: float("inf") for name in loops}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats):  # interleaved, so that load changes hit every side alike
            for name, (loop, nfe) in loops.items():
                best[name] = min(best[name], _timed(loop) / nfe)
            if between is not None:
                between()
    return {"method": method, "shape": list(shape), "steps": steps, "diffusers_class": cls,
            "nfe": {name: nfe for name, (_, nfe) in loops.items()},
            "sample_us": best["sample"] * 1e6, "scheduler_us": best["scheduler"] * 1e6,
            "diffusers_us": best["diffusers"] * 1e6, "sample_ratio": best["sample"] / best["diffusers"],
            "scheduler_ratio": best["scheduler"] / best["diffusers"]}


def method_costs(torch: Any, shape: Sequence[int], steps: int, repeats: int,
                 device: str = "cpu") -> list[dict[str, Any]]:
    """``pndmkit.sample``'s time per evaluation for every registered fixed-step method at ``shape`` on ``device``."""
    import pndmkit
    import pndmkit.grids

    import numpy as np

    from pndmkit.methods import BUILTIN, METHODS
    from pndmkit.run import make_plan

    schedule = pndmkit.DiscreteVP.linear()
    grid = [float(t) for t in pndmkit.grids.make_grid(schedule, steps)]
    times = np.asarray(grid)
    names = [name for name in BUILTIN if not METHODS[name].adaptive]
    loops = {name: sample_loop(torch, name, shape, grid, device) for name in names}
    best = {name: float("inf") for name in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats):
            for name, (loop, nfe) in loops.items():
                best[name] = min(best[name], _timed(loop) / nfe)
    plan = {name: min(_timed(lambda: make_plan(METHODS[name].build(schedule), times)) for _ in range(repeats))
            for name in names}  # a fresh integrator: nothing cached
    first = first_calls(torch, names, shape, grid, repeats, device)
    base, first_base = best["ipndm"], first["ipndm"]
    return [{"method": name, "shape": list(shape), "steps": steps, "nfe": loops[name][1], "us": best[name] * 1e6,
             "vs_ipndm": best[name] / base, "plan_us": plan[name] * 1e6, "first_us": first[name] * 1e6,
             "first_vs_ipndm": first[name] / first_base, "shared": name in SHARED} for name in names]


def first_calls(torch: Any, names: Sequence[str], shape: Sequence[int], grid: Sequence[float],
                repeats: int, device: str = "cpu") -> dict[str, float]:
    """Seconds per evaluation of a first call of ``pndmkit.sample`` with each method (best of ``repeats``,
    interleaved): each call gets a schedule object built beforehand and never sampled with, so the integrator,
    its plan and every cache keyed on the schedule or its transfers are computed in the call, as on the first
    call of a program (its imports excepted)."""
    import pndmkit

    model, x = FreshOutputs(torch, shape, device), torch.randn(shape, device=device)
    fresh = [pndmkit.DiscreteVP.linear() for _ in range(repeats * len(names))]
    best = {name: float("inf") for name in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats):
            for name in names:
                schedule = fresh.pop()
                model.refill(4 * len(grid))  # more than any method's evaluations on the grid
                tic = time.perf_counter()
                sol = pndmkit.sample(model, x, schedule=schedule, method=name, grid=grid)
                synchronize(torch, device)
                best[name] = min(best[name], (time.perf_counter() - tic) / sol.nfe)
    return best


def bound_row(torch: Any, shape: Sequence[int], steps: int, repeats: int, dram: float,
              device: str = "cpu") -> dict[str, Any]:
    """``plms`` through ``pndmkit.sample`` and the diffusers PNDM loop against the bandwidth bound at ``shape``."""
    numel = _numel(shape)
    # the bound uses the copy bandwidth at the size of the step's working set (6 arrays): small shapes stay in
    # cache, where the DRAM figure would overstate the bound; measured between the loops' repeats, so that the
    # machine's load moves both alike
    bandwidths = [dram]

    def between() -> None:
        bandwidths.append(copy_bandwidth(torch, numel * ARRAYS_PER_STEP // 2, repeats=3, device=device))

    row = shared_row(torch, "plms", shape, steps, repeats, between=between, device=device)
    shape_bw = max(bandwidths)
    bound = ARRAYS_PER_STEP * numel * 4 / shape_bw
    return {"shape": list(shape), "steps": steps, "bound_us": bound * 1e6, "copy_bandwidth_GBps": shape_bw / 1e9,
            "sample_us": row["sample_us"], "diffusers_us": row["diffusers_us"],
            "sample_over_bound": row["sample_us"] * 1e-6 / bound,
            "diffusers_over_bound": row["diffusers_us"] * 1e-6 / bound}


def _repeats(repeats: int, shape: Sequence[int]) -> int:
    """More repeats where a loop is short (the minimum of a few loops of a millisecond is still noisy on a
    shared machine): 3x below 2**16 entries."""
    return 3 * repeats if _numel(shape) < 2**16 else repeats


def profile_sample(torch: Any, method: str, shape: Sequence[int], top: int = 12, device: str = "cpu") -> str:
    """cProfile of ``pndmkit.sample`` with ``method`` at ``shape`` (own time), as text."""
    import pndmkit
    import pndmkit.grids

    loop, _ = sample_loop(torch, method, shape, [float(t) for t in
                                                 pndmkit.grids.make_grid(pndmkit.DiscreteVP.linear(), STEPS)], device)
    prof = cProfile.Profile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prof.enable()
        for _ in range(20):
            loop()
        prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


#: the three tables, in the order they run (``--tables`` picks some)
TABLES = ("shared", "methods", "bound")


def run(repeats: int = 5, threads: int = 1, shapes: Sequence[Sequence[int]] = SHAPES,
        methods: Sequence[str] = tuple(SHARED), log: Callable[[str], None] = print,
        tables: Sequence[str] = TABLES, device: str = "cpu", profile: bool = True) -> dict[str, Any]:
    """The tables named in ``tables``, tensors on ``device`` (``"cpu"``, as ``make bench`` runs them, or a CUDA
    device: the copy bandwidth and the bound are then the device's), and with ``profile`` a profile of
    ``unipc-3`` at :data:`SMALL_SHAPE`."""
    import torch

    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        dram = copy_bandwidth(torch, device=device)
        shared = []
        for shape in shapes if "shared" in tables else ():
            for method in methods:
                row = shared_row(torch, method, shape, STEPS, _repeats(repeats, shape), device=device)
                shared.append(row)
                log(f"{method:>16} {str(tuple(shape)):>18}: sample {row['sample_us']:9.1f} us, scheduler "
                    f"{row['scheduler_us']:9.1f} us, diffusers {row['diffusers_us']:9.1f} us per evaluation; "
                    f"ratios {row['sample_ratio']:.2f}, {row['scheduler_ratio']:.2f}")
        costs = (method_costs(torch, SMALL_SHAPE, STEPS, _repeats(repeats, SMALL_SHAPE), device)
                 if "methods" in tables else [])
        for row in costs:
            log(f"{row['method']:>16} {str(SMALL_SHAPE)}: {row['us']:8.1f} us per evaluation, "
                f"{row['vs_ipndm']:.2f}x ipndm; first call {row['first_us']:8.1f} us per evaluation, "
                f"{row['first_vs_ipndm']:.2f}x ipndm's")
        bounds = ([bound_row(torch, shape, STEPS, _repeats(repeats, shape), dram, device) for shape in shapes]
                  if "bound" in tables else [])
        for row in bounds:
            log(f"plms {str(tuple(row['shape'])):>18}: sample {row['sample_us']:9.1f} us, bound {row['bound_us']:8.1f} "
                f"us ({row['sample_over_bound']:.2f}x)")
        result = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                              "torch": torch.__version__, "diffusers": _version("diffusers"), "threads": threads,
                              "cpu_count": os.cpu_count(), "copy_bandwidth_GBps": dram / 1e9,
                              "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
                              "device": device,
                              "cuda": torch.cuda.get_device_name(device) if device.startswith("cuda") else None},
                  "repeats": repeats, "steps": STEPS, "goals": GOALS, "tables": list(tables), "shared": shared,
                  "methods": costs,
                  "arrays_per_step_bound": ARRAYS_PER_STEP, "bound": bounds}
        if profile:
            result["profile_small_shape"] = profile_sample(torch, "unipc-3", SMALL_SHAPE, device=device)
    finally:
        torch.set_num_threads(old_threads)
    return result


def _version(name: str) -> str | None:
    try:
        return importlib.import_module(name).__version__
    except ImportError:
        return None


def _shape(shape: Sequence[int]) -> str:
    return str(tuple(shape))


def markdown(result: dict[str, Any]) -> str:
    """The tables of ``bench.md`` (the README quotes each verbatim); a run of some tables (``--tables``) has
    only those."""
    m, goals = result["machine"], result["goals"]
    load = m.get("load_average")
    where = f"{m['cuda']} (CUDA)" if m.get("cuda") else "CPU"
    lines = [f"Solver overhead per model evaluation without the model (torch {m['torch']} {where} float32, "
             f"{m['threads']} thread, diffusers {m['diffusers']}, {result['steps']} steps, best of {result['repeats']} "
             f"interleaved repeats ({_repeats(result['repeats'], SMALL_SHAPE)} below 2**16 entries), "
             f"{'DRAM' if where == 'CPU' else 'device'} copy bandwidth {m['copy_bandwidth_GBps']:.1f} GB/s"
             + (f", load average {load[0]:.1f} on {m['cpu_count']} cores" if load else "") + ")."]
    if result["shared"]:
        lines += ["", f"Methods with a diffusers counterpart (goals: `pndmkit.sample` <= {goals['sample']}x and the "
                  f"`PNDMKitScheduler` loop <= {goals['scheduler']}x diffusers' time per step):", "",
                  "| method | shape | `pndmkit.sample` (us/eval) | `PNDMKitScheduler` loop (us/eval) | diffusers (us/step) "
                  "| sample / diffusers | scheduler / diffusers |",
                  "|---|---|---:|---:|---:|---:|---:|"]
    for r in result["shared"]:
        lines.append(f"| {r['method']} | {_shape(r['shape'])} | {r['sample_us']:.1f} | {r['scheduler_us']:.1f} "
                     f"| {r['diffusers_us']:.1f} ({r['diffusers_class']}) | {r['sample_ratio']:.2f} "
                     f"| {r['scheduler_ratio']:.2f} |")
    if result["methods"]:
        lines += ["", f"Every built-in fixed-step method through `pndmkit.sample` at {_shape(SMALL_SHAPE)}, repeated "
                  f"calls and the first call on a new schedule object, plan included (goals: both within "
                  f"{goals['vs_ipndm']}x of `ipndm`'s, per evaluation):", "",
                  "| method | NFE | us/eval | / ipndm | plan (us, once per method, schedule and grid) "
                  "| first call (us/eval) | first / ipndm's first |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["methods"]:
        lines.append(f"| {r['method']} | {r['nfe']} | {r['us']:.1f} | {r['vs_ipndm']:.2f} | {r['plan_us']:.0f} "
                     f"| {r['first_us']:.1f} | {r['first_vs_ipndm']:.2f} |")
    if result["bound"]:
        lines += ["", f"Bandwidth bound of one AB4 step (`plms`; goal at the largest shape: within {goals['bound']}x):",
                  "", "| shape | `pndmkit.sample` (us/eval) | diffusers (us/step) | bound (us) | copy GB/s at that size "
                  "| sample / bound | diffusers / bound |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["bound"]:
        lines.append(f"| {_shape(r['shape'])} | {r['sample_us']:.1f} | {r['diffusers_us']:.1f} | {r['bound_us']:.1f} "
                     f"| {r['copy_bandwidth_GBps']:.1f} | {r['sample_over_bound']:.2f} "
                     f"| {r['diffusers_over_bound']:.2f} |")
    if result["bound"]:
        lines += ["", f"Bound: {result['arrays_per_step_bound']} arrays read or written per AB4 step (4 eps, x, x_next) "
                  "divided by the copy bandwidth measured at the size of that working set."]
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from pndmkit.commands.args import positive_int, writable_folder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, default=5,
                        help="timed repeats of each case, best kept (default: 5)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--out", type=writable_folder, default=str(RESULTS), metavar="DIR",
                        help="folder bench.json, bench.md and bench_nn.json are written to (default: analysis/results)")
    parser.add_argument("--no-nn", action="store_true", help="skip analysis.bench_nn")
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES), metavar="TABLE",
                        help=f"which of the three tables to run ({', '.join(TABLES)}; default all); the results "
                             "file holds only those, so write a partial run elsewhere with --out")
    args = parser.parse_args(argv)
    result = run(repeats=args.repeats, threads=args.threads, tables=args.tables)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "bench.md").write_text(markdown(result))
    print(f"wrote {out / 'bench.json'} and {out / 'bench.md'}")
    if args.no_nn:
        return 0
    try:
        bench_nn = importlib.import_module("analysis.bench_nn")
    except ModuleNotFoundError as exc:
        if exc.name != "analysis.bench_nn":
            raise
        return 0
    if hasattr(bench_nn, "main"):  # its results beside this run's (a run into --out DIR never writes the shipped file)
        return int(bench_nn.main(["--out", str(out / "bench_nn.json")]) or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
