"""``pndmkit train``: train a DDPM UNet on scikit-learn's digits (needs the ``torch`` extra)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import asdict


#: options that belong to one sitting, not to the run: a ``--resume`` without them takes their defaults, not the
#: saved run's values (every other option left out of a ``--resume`` takes the saved run's value)
SITTING = ("out", "max_minutes", "threads", "device")


def register(subparsers: argparse._SubParsersAction) -> None:
    from pndmkit.commands.args import (StoreOnce, fraction, nonnegative_float, nonnegative_int, positive_float,
                                       positive_int)

    class StoreGiven(StoreOnce):
        """:class:`StoreOnce` that also records, in ``namespace.given``, which options the command line gave."""

        def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
            super().__call__(parser, namespace, values, option_string)
            namespace.given = {*getattr(namespace, "given", ()), self.dest}

    p = subparsers.add_parser(
        "train", help="train a DDPM (or flow-matching) UNet on the bundled digits data set",
        description="DDPM training (L2/L1 loss, AdamW, warm-up, gradient clipping, EMA) on sklearn's 8x8 "
                    "digits upsampled to 16x16. Writes OUT/NAME.safetensors + OUT/NAME.json (EMA weights) "
                    "and OUT/train_state.pt for --resume (also on Ctrl-C). Settings are checked before the model "
                    "is built: the preset must take one-channel images and the batch must fit in free memory. "
                    "A fresh run refuses an OUT that already holds NAME.safetensors or NAME.json (it never "
                    "overwrites a checkpoint). --resume refuses settings that shape the training differently from the saved run "
                    "(only --steps, --max-minutes, --threads, --device, --checkpoint-every, --name may change); "
                    "an option left out of --resume means the saved run's value (its --steps, --name, ...), "
                    "not the default, except --max-minutes, --threads and --device, which are this sitting's.")
    p.register("action", None, StoreGiven)  # every option that takes a value records that it was given
    p.add_argument("--out", default="runs/digits",
                   help="output folder; one run at a time: a run holds the lock OUT/.pndmkit-train.lock while it "
                        "writes there, and a second run into a folder in use is refused at once, changing nothing "
                        "(the operating system releases the lock when its run ends, even by a crash or a kill)")
    p.add_argument("--name", default="digits", help="checkpoint name inside OUT, a plain file name without folder")
    p.add_argument("--preset", default="digits",
                   help="UNet preset: digits or tiny (ddpm-cifar10 is for 3-channel 32x32 images, not the digits)")
    p.add_argument("--steps", type=positive_int, default=4000, help="optimiser steps")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per optimiser step")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="peak learning rate")
    p.add_argument("--warmup", type=nonnegative_int, default=100, help="linear learning-rate warm-up steps")
    p.add_argument("--weight-decay", type=nonnegative_float, default=0.0, help="AdamW weight decay")
    p.add_argument("--grad-clip", type=nonnegative_float, default=1.0, help="max gradient norm (0: off)")
    p.add_argument("--ema-decay", type=fraction, default=0.999, help="EMA decay of the saved weights")
    p.add_argument("--loss", choices=("l2", "l1"), default="l2", help="regression loss on the target")
    p.add_argument("--objective", choices=("eps", "flow"), default="eps",
                   help="eps: DDPM noise prediction on the linear schedule, T = 1000; flow: flow matching, "
                        "x_t = (1 - t) x0 + t eps with t ~ U(0, 1), target u = eps - x0, network time 1000 t "
                        "(the checkpoint records FlowMatching and prediction 'flow')")
    p.add_argument("--dropout", type=fraction, default=None, help="override the preset's dropout (default: the "
                   "preset's)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the weights and of the batches")
    p.add_argument("--checkpoint-every", type=positive_int, default=500, help="save every this many steps")
    p.add_argument("--max-minutes", type=positive_float, default=None,
                   help="stop (and save) after this much training time (default: no limit)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps, ...")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/train_state.pt with its settings (an option given changes only "
                        "what may change; none there: say so and start afresh; a run already at its steps: "
                        "train nothing and leave its checkpoint as it is)")
    p.add_argument("--classifier", action="store_true",
                   help="instead train the digits classifier whose features define digits-FID "
                        "(uses --out, --name, --seed; 30 epochs)")
    p.set_defaults(func=run, resume_hint=resume_hint)


def resume_hint(args: argparse.Namespace, argv: list[str]) -> str:
    """The command that continues this training run: the same arguments with ``--resume``."""
    import shlex

    return shlex.join(["pndmkit", *argv, *([] if args.resume else ["--resume"])])


def run(args: argparse.Namespace) -> int:
    import sys

    from pndmkit.nn import config_from_args, missing_torch

    if missing_torch("train"):
        print(missing_torch("train"), file=sys.stderr)
        return 1
    if args.classifier:
        return _train_classifier(args)
    from pndmkit.nn.train import TrainConfig, Trainer, saved_config

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    cfg = config_from_args(TrainConfig, args)
    saved = saved_config(args.out) if args.resume else None
    if saved is not None:  # an option left out means the run's own value, not the default
        given = {*getattr(args, "given", ()), *SITTING}
        taken = {k: v for k, v in asdict(saved).items() if k not in given}
        shown = [f"{k}={v!r}" for k, v in taken.items() if v != getattr(cfg, k)]
        cfg = dataclasses.replace(cfg, **taken)
        if shown:
            log(f"the run's own settings for the options not given: {', '.join(shown)}")
    trainer = Trainer(cfg, log=log, resume=args.resume)
    stem = trainer.run()
    print(json.dumps({"checkpoint": str(stem), "steps": trainer.step, "seconds": round(trainer.elapsed, 1)}))
    return 0


def _train_classifier(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import torch

    from pndmkit.nn.checkpoint import save_checkpoint
    from pndmkit.nn.classifier import train_classifier
    from pndmkit.nn.train import check_name, check_no_checkpoint, locked_out

    check_name(args.name)
    check_no_checkpoint(args.out, args.name)
    if args.threads:
        torch.set_num_threads(args.threads)
    with locked_out(args.out):  # as a training run holds it: one run at a time writes into OUT
        check_no_checkpoint(args.out, args.name)  # again: another run may have saved it meanwhile
        net, info = train_classifier(seed=args.seed)
        info["command"] = " ".join(["pndmkit", *sys.argv[1:]])
        stem = save_checkpoint(Path(args.out) / args.name, net, schedule=None, prediction="logits", meta=info)
    print(json.dumps({"checkpoint": str(stem), **info}))
    return 0
