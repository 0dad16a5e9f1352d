"""Torch backend of pndmkit: a DDPM UNet, model adapters, checkpoints, training, sampling, Frechet distance.

Importing :mod:`pndmkit` never imports this package (nor torch); ``import pndmkit.nn`` does.
Submodules are loaded on first use of a name.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "UNet": "unet", "UNetConfig": "unet", "PRESETS": "unet", "count_parameters": "unet",
    "NetworkModel": "adapters", "from_diffusers": "adapters", "eps_coefficients": "adapters",
    "Checkpoint": "checkpoint", "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
    "load_digits_images": "data",
    "TrainConfig": "train",
    "frechet_distance": "frechet", "feature_statistics": "frechet", "DigitsClassifier": "classifier",
    "digits_fid": "frechet", "load_feature_network": "frechet",
    "SampleConfig": "generate", "sample_to_dir": "generate", "initial_noise": "generate",
    "sample_seed": "generate", "read_samples": "generate",
}
__all__ = sorted(_EXPORTS) + ["missing_torch", "config_from_args"]


def missing_torch(command: str) -> str | None:
    """A message naming the missing extra if torch (or safetensors) cannot be imported, else None."""
    for module in ("torch", "safetensors"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            return f"pndmkit {command} needs the torch extra (pip install 'pndmkit[torch]'): {exc}"
    return None


def config_from_args(cls: type, args: Any, **extra: Any) -> Any:
    """Build the dataclass ``cls`` from the parsed arguments that share its field names (plus ``extra``)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in vars(args).items() if k in names}
    return cls(**{**values, **extra})


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"pndmkit.nn.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pndmkit.nn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
