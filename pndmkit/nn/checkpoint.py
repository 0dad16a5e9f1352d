"""Checkpoints: weights in ``<stem>.safetensors`` and everything else in ``<stem>.json``.

The JSON holds the network class and configuration, the noise schedule
(:func:`pndmkit.schedules.schedule_to_dict`), the prediction type, the time
convention (``time_offset``, ``time_scale``) and free-form metadata (training command, steps, data).
``load_checkpoint("digits")`` loads the model shipped in ``pndmkit/data``.

Loading checks the two files before anything runs on them, and a damaged or inconsistent checkpoint raises
:class:`pndmkit.errors.BadFileError` with one line naming the file and what is wrong: a JSON file that is not
valid JSON, not an object, not of this format or without ``network``; a network configuration, schedule,
``prediction``, ``time_offset`` or ``time_scale`` that is not valid; a weights file that is empty, truncated
or not safetensors; weights that do not fit the configuration (a missing, unexpected or differently shaped
tensor); and non-finite weights. Every command and study loads checkpoints here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pndmkit._io import atomic_path, not_regular_file, read_json_object, write_json
from pndmkit.errors import BadFileError
from pndmkit.models import PREDICTIONS
from pndmkit.schedules import NoiseSchedule, schedule_from_dict, schedule_to_dict

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "resolve_checkpoint", "check_finite_weights",
           "DATA_DIR"]

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
    if p.with_suffix(".json").exists():  # a folder, a FIFO, a device
        raise BadFileError(p.with_suffix(".json"), f"checkpoint file {p.with_suffix('.json')} "
                                                   f"{not_regular_file(p.with_suffix('.json'))}: a checkpoint is "
                                                   f"{p}.json and {p}.safetensors")
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


def _damaged(path: Path, what: str, fix: str = "restore the file or save the checkpoint again") -> BadFileError:
    return BadFileError(path, f"checkpoint file {path} {what}; {fix}")


def _read_info(path: Path) -> dict[str, Any]:
    """The checkpoint's JSON object, checked field by field (types and allowed values)."""
    info = read_json_object(path, "checkpoint file", "restore the file or save the checkpoint again")
    if info.get("format") != FORMAT:
        raise _damaged(path, f"is not a pndmkit checkpoint (format={info.get('format')!r}, expected {FORMAT!r})",
                       "pass a checkpoint written by pndmkit (save_checkpoint, pndmkit train)")
    network = info.get("network")
    if not isinstance(network, dict) or not isinstance(network.get("class"), str) \
            or not isinstance(network.get("config"), dict):
        raise _damaged(path, "has no valid 'network' entry ({'class': ..., 'config': {...}})")
    for key in ("time_offset", "time_scale"):
        value = info.get(key, 0.0 if key == "time_offset" else 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (key == "time_scale" and value <= 0):
            allowed = "a finite number > 0" if key == "time_scale" else "a finite number"
            raise _damaged(path, f"has {key}={value!r}; it must be {allowed}")
    if info.get("schedule") is not None and info.get("prediction", "eps") not in PREDICTIONS:
        hint = " (diffusers' 'epsilon' is 'eps' here)" if info.get("prediction") == "epsilon" else ""
        raise _damaged(path, f"has prediction={info.get('prediction')!r}; a diffusion model's must be one of "
                             f"{', '.join(PREDICTIONS)}{hint}")
    if not isinstance(info.get("meta", {}), dict):
        raise _damaged(path, f"has meta={info.get('meta')!r}; it must be an object")
    return info


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path``, refused by name when missing, empty or damaged."""
    if not path.exists():
        raise FileNotFoundError(f"checkpoint file {path} not found: a checkpoint needs its weights next to its "
                                f"JSON file")
    if not path.is_file():
        raise _damaged(path, "is not a file (a folder?)")
    if path.stat().st_size == 0:
        raise _damaged(path, "is empty")
    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own SafetensorError (no public base class)
        raise _damaged(path, f"is not a readable safetensors file ({exc}), e.g. truncated or overwritten") from None


def _check_weights(net: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, config_path: Path) -> None:
    """The weights fit the network the JSON file describes, tensor by tensor, and are finite."""
    want = net.state_dict()
    missing = sorted(set(want) - set(state))
    unexpected = sorted(set(state) - set(want))
    shapes = [k for k in sorted(set(want) & set(state)) if tuple(want[k].shape) != tuple(state[k].shape)]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
            problems.append(f"{label} tensor {keys[0]!r}{more}")
    if shapes:
        k = shapes[0]
        more = f" ({len(shapes) - 1} more tensors differ)" if len(shapes) > 1 else ""
        problems.append(f"{k!r} has shape {tuple(state[k].shape)} in the weights but {tuple(want[k].shape)} in the "
                        f"network the JSON file describes{more}")
    if problems:
        raise BadFileError(path, f"checkpoint file {path} does not fit the network of {config_path}: "
                                 f"{'; '.join(problems)}; the two files come from different checkpoints: "
                                 f"use the pair saved together")
    check_finite_weights(state, path)


def check_finite_weights(state: dict[str, torch.Tensor], path: str | os.PathLike[str]) -> None:
    """Refuse weights that hold NaN or inf, naming the first such tensor.

    The one check of a network's weights when it is opened: :func:`load_checkpoint` runs it on a pndmkit
    checkpoint, :func:`pndmkit.integrations.diffusers.pretrained.open_network` on a diffusers network's
    ``state_dict()``, so such a network is refused before any work rather than found out by its samples.

    Parameters
    ----------
    state : dict of str to torch.Tensor
        The weights by name (a ``state_dict``); tensors that are not floating point are not checked.
    path : str or path
        The weights file, named in the message.

    Raises
    ------
    pndmkit.errors.BadFileError
        One line: ``checkpoint file PATH holds non-finite weights (first: 'NAME'); the network cannot be used
        ...``.
    """
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())), None)
    if bad is not None:
        raise _damaged(Path(path), f"holds non-finite weights (first: {bad!r})",
                       "the network cannot be used (e.g. a training run that diverged): use another checkpoint")


def load_checkpoint(path_or_name: str | os.PathLike[str]) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`, by path or shipped name (``"digits"``).

    Raises
    ------
    FileNotFoundError
        No checkpoint of that name or path, or its ``.safetensors`` file is missing.
    pndmkit.errors.BadFileError
        A damaged or inconsistent checkpoint (see the module docstring): one line naming the file.
    """
    stem = resolve_checkpoint(path_or_name)
    config_path = stem.with_suffix(".json")
    info = _read_info(config_path)
    try:
        net = _build_network(info["network"]["class"], info["network"]["config"])
    except (TypeError, ValueError) as exc:
        raise _damaged(config_path, f"describes no valid network ({exc})") from None
    sched = info.get("schedule")
    try:
        schedule = schedule_from_dict(sched) if sched else None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise _damaged(config_path, f"has an invalid schedule {sched!r} ({exc})") from None
    weights = stem.with_suffix(".safetensors")
    state = _read_weights(weights)
    _check_weights(net, state, weights, config_path)
    net.load_state_dict(state)
    net.eval()
    return Checkpoint(net=net, schedule=schedule, prediction=info.get("prediction", "eps"),
                      time_offset=float(info.get("time_offset", 0.0)), time_scale=float(info.get("time_scale", 1.0)),
                      meta=info.get("meta", {}), path=stem)
