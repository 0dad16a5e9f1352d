"""Benchmark of device sampling with real UNets: images per second and share of time outside the network.

``python -m analysis.bench_nn [--quick]`` (``make bench`` calls :func:`main`). For each case it samples one
batch with ``pndmkit.sample`` and times (a) the whole call and (b) the network's forward passes (a timing
wrapper around the network; on CUDA it synchronises around each forward *for the measurement only*).
"Outside" is the sampler's own work: the per-step Python, coefficients and ``a*x + b*e`` arithmetic.

Cases: the shipped ``digits`` model (batch 256, f-pndm and ddim, 50 steps; batch 4, f-pndm) and the ``ddpm-cifar10``
preset (randomly initialised, 35.7M parameters) at a small batch on CPU; where CUDA is available, the
CIFAR-10 preset at batch 128 and 256 in float32 and bfloat16. Results go to
``analysis/results/bench_nn.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Sequence

RESULTS = Path(__file__).resolve().parent / "results" / "bench_nn.json"
#: the CUDA cases: the ``ddpm-cifar10`` preset, f-pndm at 50 steps, in (network dtype, batch)
DEVICE_CASES = (("float32", 128), ("float32", 256), ("bfloat16", 128), ("bfloat16", 256))


class _TimedNet:
    def __init__(self, net: Any, sync: bool) -> None:
        self.net, self.sync, self.seconds, self.calls = net, sync, 0.0, 0

    def __call__(self, x: Any, t: Any) -> Any:
        import torch

        if self.sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = self.net(x, t)
        if self.sync:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out


def bench_case(net: Any, schedule: Any, *, name: str, method: str, steps: int, batch: int, device: str,
               dtype: str = "float32", repeats: int = 1) -> dict[str, Any]:
    """Time one sampling run (after a warm-up call of the network) and return a result row."""
    import torch

    import pndmkit
    from pndmkit.nn.adapters import NetworkModel
    from pndmkit.nn.generate import DTYPES, initial_noise

    torch_dtype = DTYPES[dtype]
    net = net.to(device=device, dtype=torch_dtype).eval()
    cfg = net.config
    x_T = initial_noise(range(batch), (cfg.in_channels, cfg.image_size, cfg.image_size), seed=0).to(device)
    sync = torch.device(device).type == "cuda"
    timed = _TimedNet(net, sync)
    model = NetworkModel(timed, schedule, dtype=torch_dtype)
    with torch.no_grad():
        net(x_T.to(torch_dtype), torch.zeros(batch, device=device))  # warm-up: kernels, allocator
    pndmkit.sample(model, x_T[:1], schedule=schedule, method=method, steps=steps)  # and cached coefficients
    best = None
    for _ in range(repeats):
        timed.seconds, timed.calls = 0.0, 0
        if sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        sol = pndmkit.sample(model, x_T, schedule=schedule, method=method, steps=steps)
        x = sol.x.to("cpu")
        total = time.perf_counter() - t0
        row = {"case": name, "method": method, "steps": steps, "nfe": sol.nfe, "batch": batch, "device": device,
               "dtype": dtype, "seconds": round(total, 4), "images_per_second": round(batch / total, 2),
               "network_seconds": round(timed.seconds, 4),
               "share_outside_network": round(max(0.0, 1.0 - timed.seconds / total), 4),
               "finite": bool(torch.isfinite(x).all())}
        if best is None or row["seconds"] < best["seconds"]:
            best = row
    return best


def run(quick: bool = False, threads: int | None = None) -> dict[str, Any]:
    import torch

    from pndmkit.nn.checkpoint import load_checkpoint
    from pndmkit.nn.unet import UNet
    from pndmkit.schedules import DiscreteVP

    if threads:
        torch.set_num_threads(threads)
    rows = []
    ck = load_checkpoint("digits")
    for method in ("f-pndm", "ddim"):
        rows.append(bench_case(ck.net, ck.schedule, name="digits", method=method, steps=50,
                               batch=64 if quick else 256, device="cpu"))
    # a small batch, where the sampler's own per-step work weighs most
    rows.append(bench_case(ck.net, ck.schedule, name="digits", method="f-pndm", steps=50, batch=4, device="cpu"))
    torch.manual_seed(0)
    cifar = UNet.preset("ddpm-cifar10")
    sched = DiscreteVP.linear()
    rows.append(bench_case(cifar, sched, name="ddpm-cifar10", method="f-pndm", steps=5, batch=2 if quick else 4,
                           device="cpu"))
    if torch.cuda.is_available():
        for dtype, batch in DEVICE_CASES:
            rows.append(bench_case(cifar, sched, name="ddpm-cifar10", method="f-pndm", steps=50, batch=batch,
                                   device="cuda", dtype=dtype, repeats=2))
    return {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                        "torch": torch.__version__, "threads": torch.get_num_threads(),
                        "cpu_count": os.cpu_count(),
                        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
            "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    from pndmkit.commands.args import positive_int

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", default=str(RESULTS), metavar="FILE.json",
                        help="JSON file path the results are written to (default: analysis/results/bench_nn.json)")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, threads=args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for r in result["rows"]:
        print(f"{r['case']:>13} {r['method']:>7} x{r['steps']:<3} nfe {r['nfe']:>3} batch {r['batch']:>4} "
              f"{r['device']} {r['dtype']:>8}: {r['images_per_second']:>9.2f} img/s, "
              f"{100 * r['share_outside_network']:.1f}% outside the network")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
