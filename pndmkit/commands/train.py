"""``pndmkit train``: train a DDPM UNet on scikit-learn's digits (needs the ``torch`` extra)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a DDPM UNet on the bundled digits data set",
        description="DDPM training (L2/L1 loss, AdamW, warm-up, gradient clipping, EMA) on sklearn's 8x8 "
                    "digits upsampled to 16x16. Writes OUT/NAME.safetensors + OUT/NAME.json (EMA weights) "
                    "and OUT/train_state.pt for --resume.")
    p.add_argument("--out", default="runs/digits", help="output folder (default: %(default)s)")
    p.add_argument("--name", default="digits", help="checkpoint name inside OUT (default: %(default)s)")
    p.add_argument("--preset", default="digits", help="UNet preset: digits, tiny, ddpm-cifar10 (default: %(default)s)")
    p.add_argument("--steps", type=int, default=4000, help="optimiser steps (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100, help="linear learning-rate warm-up steps")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (0: off)")
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--loss", choices=("l2", "l1"), default="l2")
    p.add_argument("--dropout", type=float, default=None, help="override the preset's dropout")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this much training time")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    p.add_argument("--classifier", action="store_true",
                   help="instead train the digits classifier whose features define digits-FID "
                        "(uses --out, --name, --seed; 30 epochs)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pndmkit.nn import config_from_args, missing_torch

    if missing_torch("train"):
        print(missing_torch("train"))
        return 1
    if args.classifier:
        return _train_classifier(args)
    from pndmkit.nn.train import TrainConfig, _Trainer

    trainer = _Trainer(config_from_args(TrainConfig, args), log=lambda msg: print(msg, flush=True))
    stem = trainer.run(resume=args.resume)
    print(json.dumps({"checkpoint": str(stem), "steps": trainer.step, "seconds": round(trainer.elapsed, 1)}))
    return 0


def _train_classifier(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import torch

    from pndmkit.nn.checkpoint import save_checkpoint
    from pndmkit.nn.frechet import train_classifier

    if args.threads:
        torch.set_num_threads(args.threads)
    net, info = train_classifier(seed=args.seed)
    info["command"] = " ".join(["pndmkit", *sys.argv[1:]])
    stem = save_checkpoint(Path(args.out) / args.name, net, schedule=None, prediction="logits", meta=info)
    print(json.dumps({"checkpoint": str(stem), **info}))
    return 0
