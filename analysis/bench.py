"""Solver overhead per step, without the model: pndmkit ``Integrator.solve`` (ask/tell) against diffusers ``PNDMScheduler.step``.

``make bench`` runs ``python -m analysis.bench``: this benchmark, then ``analysis.bench_nn.main()`` (the
network benchmark) when that module exists.

The model returns one preallocated tensor (zeros), so what is timed is the sampler's own work: the
multistep combination, the transfer, the bookkeeping. Both sides run the same algorithm on the same grid
(PLMS: PIE warm-up then AB2, AB3, AB4 -- ``plms`` in pndmkit, ``PNDMScheduler(skip_prk_steps=True)`` in
diffusers; leading spacing, ``steps_offset=1``, final ``abar_0``), torch float32 on the CPU, one thread
(the machine is shared; both sides get the same), interleaved repeats, best of ``repeats``.

The memory-bandwidth bound of one AB4 step is the traffic of a fused kernel: read the new eps, the three
past ones and ``x``, write ``x_next`` -- six arrays -- divided by the copy bandwidth measured here
(``dst.copy_(src)`` on 64 MiB, counting read + write).

Writes ``analysis/results/bench.json`` and ``analysis/results/bench.md``.
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
from pathlib import Path
from typing import Any, Callable, Sequence

RESULTS = Path(__file__).resolve().parent / "results"
SHAPES = ((1, 3, 32, 32), (64, 3, 32, 32), (256, 3, 64, 64))
#: arrays a fused AB4 step reads and writes: 4 eps + x read, x_next written
ARRAYS_PER_STEP = 6


def copy_bandwidth(torch: Any, numel: int = 16 * 2**20, repeats: int = 7) -> float:
    """Bytes per second of ``dst.copy_(src)`` (read + write) on float32 tensors of ``numel`` entries.

    Best of ``repeats`` timings of a loop long enough (about 64 MiB moved) to time small, cache-resident
    sizes too.
    """
    src = torch.rand(numel)
    dst = torch.empty_like(src)
    loops = max(1, (16 * 2**20) // numel)

    def copies() -> None:
        for _ in range(loops):
            dst.copy_(src)

    copies()
    best = min(_timed(copies) for _ in range(repeats))
    return 2 * numel * 4 * loops / best


def _timed(fn: Callable[[], Any]) -> float:
    tic = time.perf_counter()
    fn()
    return time.perf_counter() - tic


def _pndmkit_loop(torch: Any, shape: tuple, steps: int) -> Callable[[], Any]:
    import pndmkit
    from pndmkit.grids import make_grid

    schedule = pndmkit.DiscreteVP.linear()
    integrator = pndmkit.METHODS["plms"].build(schedule)
    grid = [float(t) for t in make_grid(schedule, steps, "leading", final_alpha="first", offset=1)]
    e = torch.zeros(shape)
    x = torch.randn(shape)

    def model(x: Any, t: float) -> Any:
        return e

    def loop() -> Any:
        return integrator.solve(model, x, grid).x

    return loop


def _diffusers_loop(torch: Any, shape: tuple, steps: int) -> Callable[[], Any]:
    from pndmkit.studies.peers import import_diffusers

    scheduler = import_diffusers().PNDMScheduler(skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False)
    e = torch.zeros(shape)
    x = torch.randn(shape)

    def loop() -> Any:
        scheduler.set_timesteps(steps)
        sample = x
        for t in scheduler.timesteps:
            sample = scheduler.step(e, t, sample).prev_sample
        return sample

    return loop


def _steps_for(shape: tuple) -> int:
    numel = 1
    for n in shape:
        numel *= n
    return 50 if numel <= 64 * 3 * 32 * 32 else 20


def profile_pndmkit(torch: Any, shape: tuple, top: int = 12) -> str:
    """cProfile of pndmkit's loop at ``shape`` (cumulative time), as text."""
    loop = _pndmkit_loop(torch, shape, 50)
    loop()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(20):
        loop()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def run(repeats: int = 5, threads: int = 1, log: Callable[[str], None] = print) -> dict[str, Any]:
    import torch

    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        bandwidth = copy_bandwidth(torch)
        rows = []
        for shape in SHAPES:
            numel = 1
            for n in shape:
                numel *= n
            # the bound uses the copy bandwidth at the size of the step's working set (6 arrays): small
            # shapes stay in cache, where the 64 MiB (DRAM) figure would overstate the bound
            shape_bw = max(bandwidth, copy_bandwidth(torch, numel * ARRAYS_PER_STEP // 2))
            steps = _steps_for(shape)
            loops = {"pndmkit": _pndmkit_loop(torch, shape, steps), "diffusers": _diffusers_loop(torch, shape, steps)}
            for loop in loops.values():  # warm up (allocator, first-call caches)
                loop()
            best = {name: float("inf") for name in loops}
            for _ in range(repeats):  # interleaved, so that load changes hit both sides alike
                for name, loop in loops.items():
                    best[name] = min(best[name], _timed(loop) / steps)
            bound = ARRAYS_PER_STEP * numel * 4 / shape_bw
            row = {"shape": list(shape), "steps": steps, "pndmkit_us": best["pndmkit"] * 1e6,
                   "diffusers_us": best["diffusers"] * 1e6, "ratio": best["pndmkit"] / best["diffusers"],
                   "bound_us": bound * 1e6, "copy_bandwidth_GBps": shape_bw / 1e9,
                   "pndmkit_over_bound": best["pndmkit"] / bound,
                   "diffusers_over_bound": best["diffusers"] / bound}
            rows.append(row)
            log(f"{str(tuple(shape)):>18}: pndmkit {row['pndmkit_us']:9.1f} us/step, diffusers "
                f"{row['diffusers_us']:9.1f} us/step, ratio {row['ratio']:.2f}, bound {row['bound_us']:8.1f} us")
        result = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                              "torch": torch.__version__, "diffusers": _version("diffusers"), "threads": threads,
                              "cpu_count": os.cpu_count(), "copy_bandwidth_GBps": bandwidth / 1e9,
                              "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None},
                  "method": "plms (PIE, AB2, AB3, AB4) vs PNDMScheduler(skip_prk_steps=True); model returns a "
                            "preallocated zero tensor; best of %d interleaved repeats" % repeats,
                  "arrays_per_step_bound": ARRAYS_PER_STEP, "rows": rows}
        result["profile_small_shape"] = profile_pndmkit(torch, SHAPES[0])
    finally:
        torch.set_num_threads(old_threads)
    return result


def _version(name: str) -> str | None:
    try:
        return importlib.import_module(name).__version__
    except ImportError:
        return None


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    load = m.get("load_average")
    lines = [f"Solver overhead per step without the model (torch {m['torch']} CPU float32, {m['threads']} thread, "
             f"diffusers {m['diffusers']}, DRAM copy bandwidth {m['copy_bandwidth_GBps']:.1f} GB/s"
             + (f", load average {load[0]:.1f} on {m['cpu_count']} cores" if load else "") + ").", "",
             "| shape | pndmkit (us/step) | diffusers (us/step) | pndmkit / diffusers | bandwidth bound (us) "
             "| copy GB/s at that size | pndmkit / bound | diffusers / bound |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {tuple(r['shape'])} | {r['pndmkit_us']:.1f} | {r['diffusers_us']:.1f} | {r['ratio']:.2f} "
                     f"| {r['bound_us']:.1f} | {r['copy_bandwidth_GBps']:.1f} | {r['pndmkit_over_bound']:.1f} "
                     f"| {r['diffusers_over_bound']:.1f} |")
    lines += ["", f"Bound: {result['arrays_per_step_bound']} arrays read or written per AB4 step (4 eps, x, x_next) "
              "divided by the copy bandwidth measured at the size of that working set.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--no-nn", action="store_true", help="skip analysis.bench_nn")
    args = parser.parse_args(argv)
    result = run(repeats=args.repeats, threads=args.threads)
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
    if hasattr(bench_nn, "main"):
        return int(bench_nn.main([]) or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
