"""``pndmkit sample``: generate images from a checkpoint with any method (needs the ``torch`` extra).

Runs on one process or under ``torchrun --nproc_per_node N -m pndmkit sample ...`` (every rank takes its
share of the shards). Output: ``OUT/shard-*.npz`` + ``OUT/shard-*.png``, ``OUT/run.json``, ``OUT/summary.json``,
and the lock ``OUT/.pndmkit-sample.lock`` that keeps a second run out of the folder while one runs.
"""

from __future__ import annotations

import argparse

from pndmkit._io import json_text
from pndmkit.methods import DEFAULT_METHOD


def register(subparsers: argparse._SubParsersAction) -> None:
    from pndmkit.commands.args import finite_float, grid_or_times, positive_int, nonnegative_int

    p = subparsers.add_parser(
        "sample", help="generate images from a UNet checkpoint (sharded, resumable, multi-process)",
        description="Sample images with any pndmkit method. Sample i starts from noise seeded by (seed, i), so "
                    "results do not depend on batch size or process count. Every option is checked before "
                    "anything is written. Shards are written atomically; --resume continues an interrupted run "
                    "without losing or repeating samples, and refuses when the checkpoint files (SHA-256) or any "
                    "setting that determines the samples changed. A non-finite sample stops the run (exit 1).")
    from pndmkit.commands.network import NETWORK_HELP, add_network_options

    p.add_argument("--checkpoint", default="digits", metavar="digits|PATH|ORG/NAME",
                   help=NETWORK_HELP + " (a pndmkit checkpoint path: stem, .json or .safetensors)")
    add_network_options(p, study=False)
    p.add_argument("--method", default=None, help=f"a name from `pndmkit methods` (default: {DEFAULT_METHOD})")
    p.add_argument("--solver", default=None, metavar="FILE",
                   help="a fitted solver's file (pndmkit grid fit --out FILE): its grid and step weights make the "
                        "run, from the noise at its first time; it holds for the schedule it was fitted on, which "
                        "must be the checkpoint's, and cannot be combined with --method, --steps, --grid, "
                        "--convention or --t-start")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="number of steps N (default: 50; the adaptive pf chooses its own steps and controls each "
                        "sample's step size on its own: it ignores --steps, with a warning, and records none)")
    p.add_argument("--grid", type=grid_or_times, default=None, metavar="KIND|T0,T1,...",
                   help="grid kind (default: the schedule's, or the --convention's), or explicit times T0,T1,... (commas or "
                        "spaces, one argument) in the schedule's units (decreasing, finite, inside its domain; as many steps as --steps, "
                        "which they define when it is not given; e.g. the times of a grid optimised by pndmkit grid "
                        "optimize or compare --optimized-grids); pf integrates between the end times only: it "
                        "ignores a grid kind, with a warning, and records none")
    p.add_argument("--convention", default=None, choices=("ddim", "diffusers-pndm", "official-pndm"),
                   help="timestep convention for discrete schedules (default: none, i.e. ddim's grid)")
    p.add_argument("--t-start", type=finite_float, default=None,
                   help="start time in the schedule's units, inside its domain and above its end (default: the "
                        "schedule's start, t = 1 on a flow-matching folder); the start noise is scaled to the "
                        "spread of x_t there (prior_scale: 1 at every default start)")
    p.add_argument("--num-samples", type=positive_int, default=64, help="number of samples")
    p.add_argument("--batch-size", type=positive_int, default=64, help="samples per network call")
    p.add_argument("--shard-size", type=positive_int, default=None,
                   help="samples per output shard (default: --batch-size, so an interrupt loses at most one batch; "
                        "with --resume: the run's)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="noise seed (sample i uses seed (SEED, i))")
    p.add_argument("--out", required=True,
                   help="output folder; one run at a time: a run holds the lock OUT/.pndmkit-sample.lock (rank 0 "
                        "for all ranks under torchrun), and a second run into a folder in use is refused at once, "
                        "changing nothing; the operating system releases the lock when its run ends, even by a "
                        "crash or a kill, so it never goes stale (the file stays, empty)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps, ...")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="network dtype; the sampler state stays float32")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in OUT: regenerate each shard that is missing, damaged or holds "
                        "a non-finite sample, rewrite a missing PNG from its shard, and warn about (but leave) "
                        "shard files the run does not describe (no run.json there: say so and start afresh, unless "
                        "OUT holds sample output that no run.json describes, which is refused, as without --resume)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run, resume_hint=resume_hint)


def resume_hint(args: argparse.Namespace, argv: list[str]) -> str:
    """The command that continues this run: the same arguments with ``--resume``."""
    import shlex

    return shlex.join(["pndmkit", *argv, *([] if args.resume else ["--resume"])])


#: the options a fitted solver (``--solver``) sets itself: argparse destination -> option
SET_BY_SOLVER = {"method": "--method", "steps": "--steps", "grid": "--grid", "convention": "--convention",
                 "t_start": "--t-start"}


def _load_solver(args: argparse.Namespace):
    """``--solver FILE``, read and checked (:func:`pndmkit.studies.solver_opt.load_solver`); an option the solver
    sets itself is refused, naming both."""
    from pndmkit.errors import UsageError, blame
    from pndmkit.studies.solver_file import load_solver

    for dest, option in SET_BY_SOLVER.items():
        if getattr(args, dest) is not None:
            raise UsageError(("solver", dest), f"--solver {args.solver} and {option} cannot be given together: the "
                                               "fitted solver's grid and step weights make the run (fitted for one "
                                               f"step count, grid and start); drop {option}")
    if not args.solver.strip():  # load_solver would name its Python parameter, path
        raise UsageError("solver", f"give a fitted solver's file (pndmkit grid fit --out FILE), got "
                                   f"{args.solver!r}")
    with blame("solver"):
        return load_solver(args.solver)


def run(args: argparse.Namespace) -> int:
    import sys

    from pndmkit.errors import UsageError
    from pndmkit.nn import config_from_args, missing_torch
    from pndmkit.sampling import CONVENTIONS

    if args.convention is not None and isinstance(args.grid, list):
        # pndmkit.sample's refusal advises model_time_offset=, a parameter this command has no option for
        shift = CONVENTIONS[args.convention]["model_time_offset"]
        raise UsageError(("grid", "convention"), f"--convention {args.convention} generates its own grid and cannot be "
                         "combined with explicit --grid times; give the times without --convention" + (
                             "" if not shift else f" (the network is then told t itself, where {args.convention} "
                             f"tells it t - {shift}: pndmkit sample has no option for that shift)"))
    solver = _load_solver(args) if args.solver is not None else None  # before torch: a bad file costs nothing
    if missing_torch("sample"):
        print(missing_torch("sample"), file=sys.stderr)
        return 1
    import torch

    from pndmkit.nn.generate import SampleConfig, sample_to_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    from pndmkit.integrations.diffusers.pretrained import open_network

    def opener(name: str):
        return open_network(name, scheduler_config=args.scheduler_config, param="checkpoint",
                            grid_options="--grid, --convention")

    from pndmkit.sampling import StartAtRestError

    try:
        summary = sample_to_dir(config_from_args(SampleConfig, args, progress=not args.no_progress, solver=solver),
                                opener=opener)
    except UsageError as exc:
        if isinstance(exc.__cause__, StartAtRestError):  # suggest the option this command has
            raise UsageError(exc.params, exc.__cause__.advising("--t-start {}")) from exc.__cause__
        raise
    if summary["rank"] == 0:
        print(json_text(summary))
    return 0
