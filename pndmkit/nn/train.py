r"""DDPM training (Ho et al. 2020, algorithm 1) on the digits data set.

Each step draws a batch ``x0``, indices ``i ~ U{0..T-1}`` and ``eps ~ N(0, I)``, forms
``x_i = sqrt(abar_i) x0 + sqrt(1 - abar_i) eps`` and regresses the network output on ``eps`` with an L2
(or L1) loss. AdamW with linear warm-up, gradient-norm clipping and an exponential moving average (EMA)
of the weights, whose decay ramps up as ``min(decay, (1 + k) / (10 + k))`` so that short runs are not
dominated by the initial weights. The EMA weights are what is saved as the model.

Every ``checkpoint_every`` steps the run writes, atomically, ``<out>/<name>.safetensors`` + ``.json``
(the EMA model) and ``<out>/train_state.pt`` (weights, EMA, optimiser, step, random state), from which
``resume=True`` continues exactly.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from pndmkit.nn._io import atomic_path, progress_bar
from pndmkit.nn.checkpoint import save_checkpoint
from pndmkit.nn.data import load_digits_images
from pndmkit.nn.unet import UNet, UNetConfig, count_parameters
from pndmkit.schedules import DiscreteVP

__all__ = ["TrainConfig", "train", "resume"]


@dataclass
class TrainConfig:
    """Settings of :func:`train` (all JSON-serialisable; stored in the checkpoint's metadata)."""

    out: str = "runs/digits"
    name: str = "digits"
    preset: str = "digits"
    steps: int = 4000
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    loss: str = "l2"
    dropout: float | None = None
    T: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    seed: int = 0
    checkpoint_every: int = 500
    max_minutes: float | None = None
    threads: int | None = None
    device: str = "cpu"
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.loss not in ("l2", "l1"):
            raise ValueError(f"loss must be 'l2' or 'l1', got {self.loss!r}")
        for name in ("steps", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def train(cfg: TrainConfig, *, log: Callable[[str], None] | None = None) -> Path:
    """Train (or with ``resume`` continue) a UNet on digits; return the saved checkpoint stem."""
    return _Trainer(cfg, log or (lambda msg: print(msg, file=sys.stderr))).run(resume=False)


class _Trainer:
    def __init__(self, cfg: TrainConfig, log: Callable[[str], None]) -> None:
        self.cfg, self.log = cfg, log
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device(cfg.device)
        self.out = Path(cfg.out)
        self.schedule = DiscreteVP.linear(cfg.T, cfg.beta_start, cfg.beta_end)
        overrides = dict(cfg.overrides)
        if cfg.dropout is not None:
            overrides["dropout"] = cfg.dropout
        torch.manual_seed(cfg.seed)
        self.net = UNet.preset(cfg.preset, **overrides).to(self.device)
        self.ema = copy.deepcopy(self.net).eval().requires_grad_(False)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.x, _ = load_digits_images(self.net.config.image_size)
        self.x = self.x.to(self.device)
        self.sqrt_abar = torch.tensor(np.sqrt(self.schedule.alphas_cumprod), dtype=torch.float32, device=self.device)
        self.sqrt_1m_abar = torch.tensor(np.sqrt(-np.expm1(np.log(self.schedule.alphas_cumprod))),
                                         dtype=torch.float32, device=self.device)
        self.gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        self.step = 0
        self.elapsed = 0.0
        self.losses: list[float] = []

    # -- state ------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                "step": self.step, "gen": self.gen.get_state(), "elapsed": self.elapsed,
                "losses": self.losses, "config": asdict(self.cfg)}

    def load_state(self, path: Path) -> None:
        st = torch.load(path, map_location=self.device, weights_only=False)
        self.net.load_state_dict(st["net"])
        self.ema.load_state_dict(st["ema"])
        self.opt.load_state_dict(st["opt"])
        self.step, self.elapsed, self.losses = int(st["step"]), float(st["elapsed"]), list(st["losses"])
        self.gen.set_state(st["gen"])

    def save(self) -> Path:
        with atomic_path(self.out / "train_state.pt") as tmp:
            torch.save(self.state(), tmp)
        cfg = self.cfg
        recent = self.losses[-100:]
        meta = {"trained_steps": self.step, "train_seconds": round(self.elapsed, 1),
                "final_loss_mean_last_100": float(np.mean(recent)) if recent else None,
                "data": "sklearn.datasets.load_digits, bilinear 8x8 -> "
                        f"{self.net.config.image_size}x{self.net.config.image_size}, scaled to [-1, 1]",
                "parameters": count_parameters(self.net), "train_config": asdict(cfg),
                "command": " ".join(["pndmkit", *sys.argv[1:]]) if sys.argv and "pndmkit" in sys.argv[0] else None}
        return save_checkpoint(self.out / cfg.name, self.ema, schedule=self.schedule, prediction="eps", meta=meta)

    # -- loop -------------------------------------------------------------------------------------
    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg, n = self.cfg, self.x.shape[0]
        idx = torch.randint(0, n, (cfg.batch_size,), generator=self.gen)
        i = torch.randint(0, cfg.T, (cfg.batch_size,), generator=self.gen)
        eps = torch.randn((cfg.batch_size, *self.x.shape[1:]), generator=self.gen)
        return self.x[idx.to(self.device)], i.to(self.device), eps.to(self.device)

    def train_step(self) -> float:
        cfg = self.cfg
        x0, i, eps = self.batch()
        xt = self.sqrt_abar[i, None, None, None] * x0 + self.sqrt_1m_abar[i, None, None, None] * eps
        pred = self.net(xt, i.to(torch.float32))
        loss = F.mse_loss(pred, eps) if cfg.loss == "l2" else F.l1_loss(pred, eps)
        lr = cfg.lr * min(1.0, (self.step + 1) / max(cfg.warmup, 1))
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
        self.opt.step()
        decay = min(cfg.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for pe, p in zip(self.ema.parameters(), self.net.parameters()):
                pe.lerp_(p, 1.0 - decay)
            for be, b in zip(self.ema.buffers(), self.net.buffers()):
                be.copy_(b)
        self.step += 1
        return float(loss.detach())

    def run(self, resume: bool) -> Path:
        cfg = self.cfg
        state_path = self.out / "train_state.pt"
        if resume and state_path.is_file():
            self.load_state(state_path)
            self.log(f"resumed from {state_path} at step {self.step}")
        elif not resume and state_path.exists():
            raise FileExistsError(f"{state_path} exists: pass --resume to continue it or choose another --out")
        self.log(f"training {cfg.preset} UNet ({count_parameters(self.net):,} parameters) for {cfg.steps} steps "
                 f"on {self.x.shape[0]} digits, batch {cfg.batch_size}, {torch.get_num_threads()} threads")
        bar = progress_bar(cfg.steps, initial=self.step, desc="train")
        self.net.train()
        t_run = time.perf_counter()
        base = self.elapsed
        stem = None
        while self.step < cfg.steps:
            self.losses.append(self.train_step())
            self.elapsed = base + time.perf_counter() - t_run
            bar.update(1)
            if self.step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(self.losses[-50:]):.4f}", refresh=False)
            out_of_time = cfg.max_minutes is not None and self.elapsed > 60 * cfg.max_minutes
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps or out_of_time:
                stem = self.save()
                self.log(f"step {self.step}: loss {np.mean(self.losses[-100:]):.4f}, "
                         f"{self.elapsed:.0f} s, saved {stem}")
            if out_of_time:
                self.log(f"stopping at step {self.step}: max_minutes={cfg.max_minutes} reached")
                break
        bar.close()
        return stem if stem is not None else self.save()


def resume(cfg: TrainConfig, *, log: Callable[[str], None] | None = None) -> Path:
    """Continue the run in ``cfg.out`` from its ``train_state.pt`` (start fresh if there is none)."""
    return _Trainer(cfg, log or (lambda msg: print(msg, file=sys.stderr))).run(resume=True)
