"""Checkpoints: weights in ``<stem>.safetensors`` and everything else in ``<stem>.json``.

The JSON holds the network class and configuration, the noise schedule
(:func:`pndmkit.schedules.schedule_to_dict`), the prediction type, the time
convention (``time_offset``, ``time_scale``) and free-form metadata (training command, steps, data).
``load_checkpoint("digits")`` loads the model shipped in ``pndmkit/data``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pndmkit._io import atomic_path, write_json
from pndmkit.schedules import NoiseSchedule, schedule_from_dict, schedule_to_dict

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "resolve_checkpoint", "DATA_DIR"]

#: folder of the shipped checkpoints
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
FORMAT = "pndmkit-checkpoint"


def _build_network(cls_name: str, config: dict[str, Any]) -> torch.nn.Module:
    if cls_name == "UNet":
        from pndmkit.nn.unet import UNet, UNetConfig

        return UNet(UNetConfig.from_dict(config))
    if cls_name == "DigitsClassifier":
        from pndmkit.nn.classifier import DigitsClassifier

        return DigitsClassifier(**config)
    raise ValueError(f"unknown network class {cls_name!r}; allowed: UNet, DigitsClassifier")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the network (eval mode, CPU, float32) and how to use it."""

    net: torch.nn.Module
    schedule: NoiseSchedule | None
    prediction: str = "eps"
    time_offset: float = 0.0
    time_scale: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    #: the files that determine the network (name -> path), hashed into a sampling run's ``run.json``;
    #: ``None``: ``<stem>.json`` and ``<stem>.safetensors`` of ``path``
    files: dict[str, Path] | None = None

    @property
    def shape(self) -> tuple[int, int, int] | None:
        """Shape ``(C, H, W)`` of one sample, from the network's config (pndmkit ``image_size`` or diffusers
        ``sample_size``); ``None`` when the config does not say."""
        cfg = getattr(self.net, "config", None)
        size = getattr(cfg, "image_size", None) or getattr(cfg, "sample_size", None)
        channels = getattr(cfg, "in_channels", None)
        if size is None or channels is None:
            return None
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        return int(channels), int(h), int(w)

    def content_files(self) -> dict[str, Path]:
        """:attr:`files`, or a pndmkit checkpoint's two files (``{"json": ..., "safetensors": ...}``)."""
        if self.files is not None:
            return dict(self.files)
        if self.path is None:
            return {}
        return {s: self.path.with_suffix("." + s) for s in ("json", "safetensors")}

    def model(self, **kwargs: Any):
        """The network as a pndmkit model ``model(x, t) -> eps`` (see :class:`pndmkit.nn.NetworkModel`)."""
        from pndmkit.nn.adapters import NetworkModel

        if self.schedule is None:
            raise ValueError("this checkpoint has no noise schedule: it is not a diffusion model")
        opts = {"prediction": self.prediction, "time_offset": self.time_offset, "time_scale": self.time_scale}
        opts.update(kwargs)
        return NetworkModel(self.net, self.schedule, **opts)


def resolve_checkpoint(path_or_name: str | os.PathLike[str]) -> Path:
    """Return the checkpoint stem (path without suffix) for a path, a stem or a shipped name."""
    p = Path(path_or_name)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    if p.with_suffix(".json").is_file():
        return p
    shipped = DATA_DIR / str(path_or_name)
    if shipped.with_suffix(".json").is_file():
        return shipped
    names = sorted(q.stem for q in DATA_DIR.glob("*.json"))
    raise FileNotFoundError(
        f"checkpoint {str(path_or_name)!r} not found: expected {p}.json and {p}.safetensors, "
        f"or a shipped name among {names}")


def save_checkpoint(path: str | os.PathLike[str], net: torch.nn.Module, *, schedule: NoiseSchedule | None,
                    prediction: str = "eps", time_offset: float = 0.0, time_scale: float = 1.0,
                    meta: dict[str, Any] | None = None, state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``<path>.safetensors`` and ``<path>.json`` atomically; return the stem.

    ``state_dict`` overrides the weights taken from ``net`` (e.g. EMA weights); they are stored in float32.
    """
    stem = Path(path)
    if stem.suffix in (".json", ".safetensors"):
        stem = stem.with_suffix("")
    config = net.config.to_dict() if hasattr(net.config, "to_dict") else dict(net.config)
    sd = state_dict if state_dict is not None else net.state_dict()
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in sd.items()}
    with atomic_path(stem.with_suffix(".safetensors")) as tmp:
        save_file(tensors, str(tmp))
    write_json(stem.with_suffix(".json"), {
        "format": FORMAT, "version": 1,
        "network": {"class": type(net).__name__, "config": config},
        "schedule": schedule_to_dict(schedule) if schedule is not None else None,
        "prediction": prediction, "time_offset": time_offset, "time_scale": time_scale,
        "meta": meta or {},
    })
    return stem


def load_checkpoint(path_or_name: str | os.PathLike[str]) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`, by path or shipped name (``"digits"``)."""
    stem = resolve_checkpoint(path_or_name)
    info = json.loads(stem.with_suffix(".json").read_text())
    if info.get("format") != FORMAT:
        raise ValueError(f"{stem}.json is not a pndmkit checkpoint (format={info.get('format')!r})")
    net = _build_network(info["network"]["class"], info["network"]["config"])
    net.load_state_dict(load_file(str(stem.with_suffix(".safetensors"))))
    net.eval()
    sched = info.get("schedule")
    return Checkpoint(net=net, schedule=schedule_from_dict(sched) if sched else None,
                      prediction=info.get("prediction", "eps"), time_offset=float(info.get("time_offset", 0.0)),
                      time_scale=float(info.get("time_scale", 1.0)), meta=info.get("meta", {}), path=stem)
