"""``pndmkit sample``: generate images from a checkpoint with any method (needs the ``torch`` extra).

Runs on one process or under ``torchrun --nproc_per_node N -m pndmkit sample ...`` (every rank takes its
share of the shards). Output: ``OUT/shard-*.npz`` + ``OUT/shard-*.png``, ``OUT/run.json``, ``OUT/summary.json``.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sample", help="generate images from a UNet checkpoint (sharded, resumable, multi-process)",
        description="Sample images with any pndmkit method. Sample i starts from noise seeded by (seed, i), so "
                    "results do not depend on batch size or process count. Shards are written atomically; "
                    "--resume continues an interrupted run without losing or repeating samples.")
    p.add_argument("--checkpoint", default="digits", help="checkpoint path (stem, .json or .safetensors) or a "
                   "shipped name (default: %(default)s)")
    p.add_argument("--method", default="f-pndm", help="a name from `pndmkit methods` (default: %(default)s)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--grid", default=None, help="grid kind (default: the schedule's)")
    p.add_argument("--convention", default=None, choices=("ddim", "diffusers-pndm", "official-pndm"),
                   help="timestep convention for discrete schedules")
    p.add_argument("--num-samples", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--shard-size", type=int, default=1000, help="samples per output shard")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps, ...")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="network dtype; the sampler state stays float32")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in OUT")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pndmkit.nn import config_from_args, missing_torch

    if missing_torch("sample"):
        print(missing_torch("sample"))
        return 1
    import torch

    from pndmkit.nn.generate import SampleConfig, sample_to_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    summary = sample_to_dir(config_from_args(SampleConfig, args, progress=not args.no_progress))
    if summary["rank"] == 0:
        print(json.dumps(summary))
    return 0
