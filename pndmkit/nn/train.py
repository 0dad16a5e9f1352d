r"""DDPM training (Ho et al. 2020, algorithm 1) on the digits data set.

Each step draws a batch ``x0``, indices ``i ~ U{0..T-1}`` and ``eps ~ N(0, I)``, forms
``x_i = sqrt(abar_i) x0 + sqrt(1 - abar_i) eps`` and regresses the network output on ``eps`` with an L2
(or L1) loss. AdamW with linear warm-up, gradient-norm clipping and an exponential moving average (EMA)
of the weights, whose decay ramps up as ``min(decay, (1 + k) / (10 + k))`` so that short runs are not
dominated by the initial weights. The EMA weights are what is saved as the model.

``objective="flow"`` trains a flow-matching (rectified-flow) velocity network instead (Lipman et al. 2023,
Liu et al. 2023): ``t ~ U(0, 1)``, ``x_t = (1 - t) x0 + t eps`` and the target is the velocity
``u = dx_t/dt = eps - x0``. The network receives ``FLOW_TIME_SCALE * t`` (the range ``[0, 1000)`` of the eps
model's training index, as diffusers' flow schedulers feed it) and the checkpoint records the schedule
:class:`~pndmkit.schedules.FlowMatching`, ``prediction="flow"`` and ``time_scale = FLOW_TIME_SCALE``, so that
:func:`pndmkit.nn.load_checkpoint` and ``pndmkit sample --checkpoint`` sample it without further options
(``T``, ``beta_start`` and ``beta_end`` do not apply to it).

Every ``checkpoint_every`` steps (and on an interrupt) the run writes, atomically,
``<out>/<name>.safetensors`` + ``.json`` (the EMA model) and ``<out>/train_state.pt`` (weights, EMA,
optimiser, step, random state, settings), from which ``resume=True`` continues exactly.

Before anything is built or written the settings are checked (:class:`~pndmkit.errors.UsageError`
naming the field): the preset must fit the one-channel digits, the device must exist, and the memory
estimate of :func:`pndmkit.nn._checks.memory_estimate` must fit in the free memory. Resuming with a
setting that shapes the training (:data:`RESUMABLE` lists the ones that may change: the step budget,
time limit, threads, device, checkpoint interval and name) is refused rather than recorded, because the
saved model's metadata describes one run with one set of settings; continue with other settings by
starting a new run from the saved weights instead. Each sitting (start step and command) is recorded.
Resuming a run already at (or past) ``steps`` trains nothing and leaves its checkpoint untouched (it is
written only if it is missing, e.g. under a new ``name``), so that samples resumed from that checkpoint stay
valid; ``resume=True`` with no ``train_state.pt`` in ``out`` says so and starts a fresh run. A fresh run
refuses an ``out`` that already holds ``<name>.safetensors`` or ``<name>.json`` (:func:`check_no_checkpoint`):
it never overwrites a checkpoint it did not write. One run at a time trains into an ``out``: a run holds the lock
``<out>/.pndmkit-train.lock`` (:func:`locked_out`) while it writes there, and a second is refused at once.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from pndmkit.errors import UsageError, blame
from pndmkit.nn._checks import available_bytes, check_device, gib, memory_estimate
from pndmkit._io import atomic_path, check_writable_folder, locked_folder, progress_bar, remove_stale_temporaries
from pndmkit.nn.checkpoint import save_checkpoint
from pndmkit.nn.data import load_digits_images
from pndmkit.nn.unet import PRESETS, UNet, UNetConfig, count_parameters
from pndmkit.schedules import DiscreteVP, FlowMatching

__all__ = ["TrainConfig", "Trainer", "train", "resume", "saved_config", "check_name", "check_no_checkpoint", "RESUMABLE", "OBJECTIVES",
           "FLOW_TIME_SCALE", "LOCK_FILE", "locked_out"]

#: the lock a training run holds on its ``out`` folder while it writes there (:func:`locked_out`)
LOCK_FILE = ".pndmkit-train.lock"

#: settings that may differ when a run is resumed (all others must match the saved run)
RESUMABLE = ("out", "name", "steps", "max_minutes", "threads", "device", "checkpoint_every")
#: channels of the digits images
DATA_CHANNELS = 1
#: training objectives: DDPM noise prediction on the discrete linear schedule, or flow-matching velocity
OBJECTIVES = ("eps", "flow")
#: the flow model's network time is ``FLOW_TIME_SCALE * t`` for ``t`` in [0, 1)
FLOW_TIME_SCALE = 1000.0


def check_name(name: Any) -> str:
    """Return ``name`` if it is a plain file stem (the checkpoint's name inside ``out``), else raise.

    Raises
    ------
    UsageError
        ``name`` empty, not a string, ``.`` or ``..``, starting with a dot, or holding a path separator or a
        NUL character: it would write outside ``out``, into a sub-folder, or a hidden file.
    """
    seps = {"/", "\\", "\0"}
    if not isinstance(name, str) or not name or name in (".", "..") or name.startswith(".") or seps & set(name):
        raise UsageError("name", f"name={name!r} must be a plain file name (no folder, no leading dot), e.g. "
                                 "'digits'; put the folder in out")
    return name


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
    objective: str = "eps"
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
        check_name(self.name)
        if self.loss not in ("l2", "l1"):
            raise UsageError("loss", f"loss must be 'l2' or 'l1', got {self.loss!r}")
        if self.objective not in OBJECTIVES:
            raise UsageError("objective", f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        ddpm = [f.name for f in dataclasses.fields(self) if f.name in ("T", "beta_start", "beta_end")
                and getattr(self, f.name) != f.default]
        if self.objective == "flow" and ddpm:
            raise UsageError(("objective", *ddpm), f"{', '.join(ddpm)} set the DDPM schedule of objective='eps'; "
                                                   "objective='flow' trains on FlowMatching: leave them unset")
        for name, low in (("steps", 1), ("batch_size", 1), ("checkpoint_every", 1), ("warmup", 0), ("seed", 0),
                          ("T", 2), ("threads", 1)):
            value = getattr(self, name)
            if value is None and name == "threads":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise UsageError(name, f"{name} must be an integer >= {low}, got {value!r}")
        ranges = {"lr": (0, math.inf, False), "weight_decay": (0, math.inf, True), "grad_clip": (0, math.inf, True),
                  "ema_decay": (0, 1, True), "dropout": (0, 1, True), "max_minutes": (0, math.inf, False),
                  "beta_start": (0, 1, False), "beta_end": (0, 1, False)}
        for name, (low, high, closed) in ranges.items():
            value = getattr(self, name)
            if value is None and name in ("dropout", "max_minutes"):
                continue
            ok = isinstance(value, (int, float)) and math.isfinite(value) and (low <= value if closed else low < value)
            if not (ok and value < high):
                interval = f"{'[' if closed else '('}{low}, {high})"
                raise UsageError(name, f"{name} must be a number in {interval}, got {value!r}")
        if not self.beta_start < self.beta_end:
            raise UsageError(("beta_start", "beta_end"), f"need beta_start < beta_end, got {self.beta_start}, "
                                                         f"{self.beta_end}")
        self.unet_config()

    def unet_config(self) -> UNetConfig:
        """The network's configuration (preset, overrides, dropout), checked against the digits data."""
        if self.preset not in PRESETS:
            raise UsageError("preset", f"unknown preset {self.preset!r}; known: {', '.join(PRESETS)}")
        overrides = dict(self.overrides)
        if self.dropout is not None:
            overrides["dropout"] = self.dropout
        with blame("preset", "overrides"):
            config = dataclasses.replace(PRESETS[self.preset], **overrides)
        if config.in_channels != DATA_CHANNELS or config.out_channels != DATA_CHANNELS:
            usable = [k for k, v in PRESETS.items() if v.in_channels == v.out_channels == DATA_CHANNELS]
            raise UsageError("preset", f"preset {self.preset!r} has {config.in_channels} input and "
                                       f"{config.out_channels} output channels; the digits are {DATA_CHANNELS}-channel "
                                       f"images: use one of {', '.join(usable)}")
        return config

    def shaping(self) -> dict[str, Any]:
        """The settings that shape the training (all but :data:`RESUMABLE`)."""
        return {k: v for k, v in asdict(self).items() if k not in RESUMABLE}


def train(cfg: TrainConfig, *, log: Callable[[str], None] | None = None) -> Path:
    """Train a UNet on digits in a fresh ``cfg.out``; return the saved checkpoint stem."""
    return Trainer(cfg, log or (lambda msg: print(msg, file=sys.stderr))).run()


#: what a ``train_state.pt`` holds (:meth:`Trainer.state`)
_STATE_KEYS = ("net", "ema", "opt", "step", "gen", "elapsed", "losses", "config")


def _read_state(path: Path) -> dict[str, Any]:
    """The training state saved in ``path``; a damaged file is a :class:`UsageError` about ``out`` naming it."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - unpickling garbage raises anything (ValueError, EOFError, ...)
        detail = " ".join(str(exc).split())[:120]
        raise UsageError("out", f"{path} cannot be read as a training state ({type(exc).__name__}: {detail}), e.g. "
                                f"truncated; delete it to start afresh or train in another out") from None
    missing = [k for k in _STATE_KEYS if k not in state] if isinstance(state, dict) else list(_STATE_KEYS)
    if missing or not isinstance(state["config"], dict):
        raise UsageError("out", f"{path} is not a pndmkit training state (missing {', '.join(missing) or 'config'}); "
                                f"delete it to start afresh or train in another out")
    return state


def _check_same_run(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    """Refuse to resume with settings that shape the training differently (see the module docstring)."""
    old = {"objective": "eps", **{k: v for k, v in saved.items() if k not in RESUMABLE}}  # runs before objectives
    new = cfg.shaping()
    changed = [k for k in new if old.get(k) != new[k]]
    if changed:
        what = "; ".join(f"{k}={old.get(k)!r} in the run, {new[k]!r} now" for k in changed)
        raise UsageError(("resume", *changed), f"cannot resume {path}: {what}; resume with the run's settings "
                                               f"(only {', '.join(RESUMABLE[1:])} may change) or train in another out")


def check_no_checkpoint(out: str | Path, name: str) -> None:
    """Refuse to start a run whose checkpoint ``<out>/<name>.safetensors`` or ``.json`` already exists.

    A fresh run (no ``train_state.pt`` to resume in ``out``) would overwrite it on its first save, losing a
    finished model; checked before anything is built.

    Raises
    ------
    UsageError
        About ``out`` and ``name``, naming the file that exists.
    """
    stem = Path(out) / name
    for ext in (".safetensors", ".json"):
        path = stem.with_name(stem.name + ext)
        if path.exists():
            raise UsageError(("out", "name"), f"{path} exists and {Path(out)} holds no train_state.pt to resume: "
                                              "choose another out or name; an existing checkpoint is never "
                                              "overwritten")


def locked_out(out: str | Path):
    """Hold the lock ``<out>/.pndmkit-train.lock`` (:data:`LOCK_FILE`) while a training run writes into ``out``: a
    context manager, :func:`pndmkit._io.locked_folder` as ``pndmkit sample`` and ``pndmkit compare`` use it (a
    :class:`filelock.FileLock`, released by the operating system when its holder ends, however it ends, so it
    never goes stale). Two runs into one folder would save over each other's ``train_state.pt`` and checkpoint.

    Raises
    ------
    UsageError
        About ``out``, naming the folder and the lock file: another process holds the lock.
    """
    return locked_folder(out, LOCK_FILE, what="training run")


def _stamp(path: Path) -> tuple[int, int] | None:
    """What tells whether ``path`` changed: its modification time and size (``None``: it does not exist)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def _check_memory(config: UNetConfig, batch_size: int, device: torch.device) -> None:
    need, have = memory_estimate(config, batch_size, training=True), available_bytes(device)
    if have is not None and need > have:
        per_sample = memory_estimate(config, 2, training=True) - memory_estimate(config, 1, training=True)
        fits = max(0, (have - memory_estimate(config, 0, training=True)) // max(per_sample, 1))
        raise UsageError("batch_size", f"batch_size={batch_size} needs about {gib(need)} on {device} (estimate), "
                                       f"{gib(have)} is free: use at most about {fits}")


class Trainer:
    """One training run of :class:`TrainConfig`: the network, its optimiser and EMA weights, and the loop.

    :func:`train` and :func:`resume` build one and call :meth:`run`; ``pndmkit train`` builds it itself to
    report the steps and seconds afterwards.

    Parameters
    ----------
    cfg : TrainConfig
        What to train (checked here: bad values raise :class:`~pndmkit.errors.UsageError` naming the field).
    log : callable
        Receives one line per report.
    resume : bool
        Continue the run saved in ``cfg.out`` (``train_state.pt``); its settings must match ``cfg``.
    """

    def __init__(self, cfg: TrainConfig, log: Callable[[str], None], *, resume: bool = False) -> None:
        self.cfg, self.log, self.resume = cfg, log, resume
        self.device = check_device(cfg.device)
        self.out = Path(cfg.out)
        check_writable_folder(self.out, "out")  # before the training, not when it is saved
        state_path = self.out / "train_state.pt"
        self.saved: dict[str, Any] | None = None
        if state_path.exists() and not state_path.is_file():
            raise UsageError("out", f"{state_path} is not a file (a folder?); remove it or train in another out")
        self.fresh_resume = resume and not state_path.is_file()
        if resume and state_path.is_file():
            self.saved = _read_state(state_path)
            _check_same_run(self.saved["config"], cfg, state_path)
        elif not resume and state_path.exists():
            with locked_out(self.out):  # a run still training there: say so (--resume cannot go on before it ends)
                pass
            raise UsageError(("out", "resume"), f"{state_path} exists: pass --resume (resume=True) to continue it "
                                                "or choose another out folder")
        if self.saved is None:  # a fresh run must not overwrite a checkpoint it did not write
            check_no_checkpoint(self.out, cfg.name)
        self._state_stamp = _stamp(state_path)  # what run() finds again under the lock, or refuses
        config = cfg.unet_config()
        _check_memory(config, cfg.batch_size, self.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.flow = cfg.objective == "flow"
        self.schedule = FlowMatching() if self.flow else DiscreteVP.linear(cfg.T, cfg.beta_start, cfg.beta_end)
        torch.manual_seed(cfg.seed)
        self.net = UNet(config).to(self.device)
        self.ema = copy.deepcopy(self.net).eval().requires_grad_(False)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.x, _ = load_digits_images(self.net.config.image_size)
        self.x = self.x.to(self.device)
        if not self.flow:
            abar = self.schedule.alphas_cumprod
            self.sqrt_abar = torch.tensor(np.sqrt(abar), dtype=torch.float32, device=self.device)
            self.sqrt_1m_abar = torch.tensor(np.sqrt(-np.expm1(np.log(abar))), dtype=torch.float32, device=self.device)
        self.gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        self.step = 0
        self.elapsed = 0.0
        self.losses: list[float] = []
        self.sittings: list[dict[str, Any]] = []
        if self.saved is not None:  # a state that does not fit the network is refused now, not after a sitting
            try:
                self.load_state(self.saved)
            except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
                raise UsageError("out", f"{state_path} is damaged: it does not restore this run "
                                        f"({' '.join(str(exc).split())[:200]}); delete it to start afresh or train "
                                        f"in another out") from None

    # -- state ------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything a resume needs: weights, EMA weights, optimiser, step, generator, losses, settings."""
        return {"net": self.net.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                "step": self.step, "gen": self.gen.get_state(), "elapsed": self.elapsed,
                "losses": self.losses, "config": asdict(self.cfg), "sittings": self.sittings}

    def load_state(self, st: dict[str, Any]) -> None:
        """Restore a :meth:`state` (the run continues exactly where it was saved)."""
        self.net.load_state_dict(st["net"])
        self.ema.load_state_dict(st["ema"])
        self.opt.load_state_dict(st["opt"])
        self.step, self.elapsed, self.losses = int(st["step"]), float(st["elapsed"]), list(st["losses"])
        self.gen.set_state(st["gen"])
        self.sittings = list(st.get("sittings", []))

    def save(self) -> Path:
        """Write ``train_state.pt`` and the EMA checkpoint ``<out>/<name>``, atomically; return its stem."""
        with atomic_path(self.out / "train_state.pt") as tmp:
            torch.save(self.state(), tmp)
        cfg = self.cfg
        recent = self.losses[-100:]
        meta = {"trained_steps": self.step, "train_seconds": round(self.elapsed, 1),
                "final_loss_mean_last_100": float(np.mean(recent)) if recent else None,
                "data": "sklearn.datasets.load_digits, bilinear 8x8 -> "
                        f"{self.net.config.image_size}x{self.net.config.image_size}, scaled to [-1, 1]",
                "parameters": count_parameters(self.net), "train_config": asdict(cfg), "sittings": self.sittings,
                "command": _command()}
        if self.flow:
            return save_checkpoint(self.out / cfg.name, self.ema, schedule=self.schedule, prediction="flow",
                                   time_scale=FLOW_TIME_SCALE, meta=meta)
        return save_checkpoint(self.out / cfg.name, self.ema, schedule=self.schedule, prediction="eps", meta=meta)

    # -- loop -------------------------------------------------------------------------------------
    def batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images ``x0``, times (training indices, or flow times in [0, 1)) and noise, from the one generator."""
        cfg, n = self.cfg, self.x.shape[0]
        idx = torch.randint(0, n, (cfg.batch_size,), generator=self.gen)
        if self.flow:
            i = torch.rand((cfg.batch_size,), generator=self.gen)
        else:
            i = torch.randint(0, cfg.T, (cfg.batch_size,), generator=self.gen)
        eps = torch.randn((cfg.batch_size, *self.x.shape[1:]), generator=self.gen)
        return self.x[idx.to(self.device)], i.to(self.device), eps.to(self.device)

    def train_step(self) -> float:
        """One optimiser step (learning-rate warm-up, gradient clipping, EMA update); return the batch loss."""
        cfg = self.cfg
        pred, target = self.prediction_and_target(*self.batch())
        loss = F.mse_loss(pred, target) if cfg.loss == "l2" else F.l1_loss(pred, target)
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

    def prediction_and_target(self, x0: torch.Tensor, i: torch.Tensor, eps: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(network output, regression target)`` of the objective on one batch from :meth:`batch`."""
        if self.flow:
            t = i[:, None, None, None]
            xt = (1.0 - t) * x0 + t * eps
            return self.net(xt, FLOW_TIME_SCALE * i), eps - x0
        xt = self.sqrt_abar[i, None, None, None] * x0 + self.sqrt_1m_abar[i, None, None, None] * eps
        return self.net(xt, i.to(torch.float32)), eps

    def run(self) -> Path:
        """Train up to ``cfg.steps`` (saving on an interrupt, then re-raising it); return the checkpoint stem.

        The run holds the lock of ``cfg.out`` (:func:`locked_out`) from its first look at the folder to its last
        save: a second run into the same folder is refused at once (:class:`~pndmkit.errors.UsageError` about
        ``out``), writing nothing, and so is a run whose folder another run changed since this one checked it
        (a ``train_state.pt`` written meanwhile, or a checkpoint it would overwrite)."""
        with locked_out(self.out):
            state_path = self.out / "train_state.pt"
            if _stamp(state_path) != self._state_stamp:
                raise UsageError("out", f"another run wrote {state_path} while this one was checking its settings; "
                                        "run the command again" + ("" if self.resume else
                                                                   " (with --resume to continue that run)"))
            if self.saved is None:
                check_no_checkpoint(self.out, self.cfg.name)
            return self._run()

    def _run(self) -> Path:
        cfg = self.cfg
        for p in remove_stale_temporaries(self.out):
            self.log(f"removed {p.name}, left by an interrupted write")
        if self.fresh_resume:
            self.log(f"no previous run to resume in {self.out} (no train_state.pt): starting a fresh one")
        if self.saved is not None:
            self.load_state(self.saved)
            self.saved = None
            self.log(f"resumed from {self.out / 'train_state.pt'} at step {self.step}")
            if self.step >= cfg.steps:
                return self._nothing_to_train()
        self.sittings.append({"start_step": self.step, "command": _command()})
        self.log(f"training {cfg.preset} UNet ({count_parameters(self.net):,} parameters) for {cfg.steps} steps "
                 f"on {self.x.shape[0]} digits, batch {cfg.batch_size}, {torch.get_num_threads()} threads")
        bar = progress_bar(cfg.steps, initial=self.step, desc="train")
        self.net.train()
        t_run = time.perf_counter()
        base = self.elapsed
        stem, saved_step = None, self.step
        try:
            while self.step < cfg.steps:
                self.losses.append(self.train_step())
                self.elapsed = base + time.perf_counter() - t_run
                bar.update(1)
                if self.step % 50 == 0:
                    bar.set_postfix(loss=f"{np.mean(self.losses[-50:]):.4f}", refresh=False)
                out_of_time = cfg.max_minutes is not None and self.elapsed > 60 * cfg.max_minutes
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps or out_of_time:
                    stem, saved_step = self.save(), self.step
                    self.log(f"step {self.step}: loss {np.mean(self.losses[-100:]):.4f}, "
                             f"{self.elapsed:.0f} s, saved {stem}")
                if out_of_time:
                    self.log(f"stopping at step {self.step}: max_minutes={cfg.max_minutes} reached")
                    break
        except KeyboardInterrupt:
            if self.step > saved_step:
                self.log(f"interrupted: saved step {self.step} to {self.save()}")
            raise
        finally:
            bar.close()
        return stem if stem is not None else self.save()

    def _nothing_to_train(self) -> Path:
        """A resumed run already at ``steps``: keep its checkpoint as it is (write it only if missing)."""
        stem = self.out / self.cfg.name
        if all(stem.with_name(stem.name + ext).is_file() for ext in (".safetensors", ".json")):
            self.log(f"the run is already at step {self.step} (steps={self.cfg.steps}): nothing to train, "
                     f"{stem} left as it is; give a larger steps to train on")
            return stem
        self.log(f"the run is already at step {self.step} (steps={self.cfg.steps}): nothing to train; "
                 f"writing the missing checkpoint {stem}")
        return self.save()


def saved_config(out: str | Path) -> TrainConfig | None:
    """The settings of the run saved in ``<out>/train_state.pt`` (``None``: no such file), with ``out`` as given.

    To resume a run with its own settings, changing only some (:data:`RESUMABLE`)::

        resume(dataclasses.replace(saved_config("runs/digits"), steps=8000))

    Raises
    ------
    UsageError
        About ``out``: the file cannot be read as a training state (or its settings as a :class:`TrainConfig`).
    """
    path = Path(out) / "train_state.pt"
    if not path.is_file():
        return None
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    saved = {k: v for k, v in _read_state(path)["config"].items() if k in names}
    with blame("out"):
        return TrainConfig(**{**saved, "out": str(out)})


def resume(cfg: TrainConfig, *, log: Callable[[str], None] | None = None) -> Path:
    """Continue the run in ``cfg.out`` from its ``train_state.pt`` (start fresh if there is none)."""
    return Trainer(cfg, log or (lambda msg: print(msg, file=sys.stderr)), resume=True).run()


def _command() -> str | None:
    """The ``pndmkit`` command line of this process, if it is one."""
    return " ".join(["pndmkit", *sys.argv[1:]]) if sys.argv and "pndmkit" in sys.argv[0] else None
