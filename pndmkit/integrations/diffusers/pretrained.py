r"""A network as users have it: a pndmkit checkpoint, a diffusers folder, or a hub id in the local cache.

:func:`open_network` is the one resolver behind ``pndmkit order --model``, ``pndmkit grid optimize --model``,
``pndmkit sample --checkpoint``, ``pndmkit audit`` and :func:`pndmkit.studies.real.load_model`. It takes

* a pndmkit checkpoint (a shipped name such as ``"digits"``, or a path to ``<stem>.json`` / ``<stem>.safetensors``);
* a folder written by a diffusers pipeline's ``save_pretrained`` (``model_index.json``, its UNet in ``unet/``,
  its scheduler config in ``scheduler/scheduler_config.json``), or a folder with those two sub-folders alone;
* a folder written by ``UNet2DModel.save_pretrained`` / ``UNet2DConditionModel.save_pretrained``
  (``config.json`` and the weights), with its scheduler config in ``scheduler/scheduler_config.json`` or
  ``scheduler_config.json`` inside it, in ``../scheduler/`` (the ``unet/`` folder of a pipeline), or given by
  ``scheduler_config=``;
* a hub id (``"org/name"``) whose snapshot is in the local Hugging Face cache (``$HF_HOME/hub``); nothing is
  downloaded, whatever ``HF_HUB_OFFLINE`` says.

The schedule and the prediction type come from the scheduler config through
:func:`pndmkit.integrations.diffusers.network_model` (:func:`~pndmkit.integrations.diffusers.translate`, the one
reader of those configs). A network that needs conditioning is given it once, fixed for every call: a class
label for a class-conditional ``UNet2DModel`` (``num_class_embeds``), prompt embeddings (a tensor or a
``.pt`` / ``.safetensors`` / ``.npy`` file of shape ``(L, D)`` or ``(1, L, D)``) for a ``UNet2DConditionModel``
(:class:`Conditioned`).

A folder that cannot be used raises :class:`~pndmkit.errors.UsageError` with one line naming the path and what
is missing or wrong, before the network runs: among them a scheduler config of a class pndmkit does not read
(:func:`~pndmkit.integrations.diffusers.config.refuse_foreign`, the check
:meth:`PNDMKitScheduler.from_config <pndmkit.integrations.diffusers.PNDMKitScheduler.from_config>` makes: an
``IPNDMScheduler`` or ``ScoreSdeVeScheduler`` config holds no noise table, an ``LCMScheduler`` one belongs to a
distilled sampler), and weights that hold NaN or inf (:func:`pndmkit.nn.checkpoint.check_finite_weights`, the
check a pndmkit checkpoint gets).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from pndmkit._checks import with_article
from pndmkit.errors import BadFileError, UsageError
from pndmkit.integrations.diffusers.config import (ConventionWarning, grid_fields_set, refuse_dynamic_shifting,
                                                   refuse_foreign, translate)

__all__ = ["open_network", "locate", "Located", "Conditioned", "load_embeddings", "read_scheduler_config",
           "UNET_CLASSES", "WEIGHT_FILES", "API_GRID_OPTIONS"]

#: what chooses pndmkit's grid when :func:`open_network` is called from Python, as its notice on a config's unused
#: grid fields names it (commands name their own options instead)
API_GRID_OPTIONS = "grid= of pndmkit.sample and the studies"

#: diffusers network classes :func:`open_network` loads
UNET_CLASSES = ("UNet2DModel", "UNet2DConditionModel")
#: weight files of a diffusers model folder, in the order diffusers prefers them
WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json",
                "diffusion_pytorch_model.bin", "diffusion_pytorch_model.bin.index.json")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class Located:
    """Where a diffusers network's parts are (:func:`locate`); nothing is loaded.

    Attributes
    ----------
    name : str
        What reports call it: the hub id, or the folder's name.
    folder : Path
        The folder given (a hub id's snapshot folder).
    unet : Path or None
        The network's folder (``config.json`` and weights); ``None`` when only a scheduler config was asked for.
    unet_class : str or None
        Its ``_class_name`` (one of :data:`UNET_CLASSES`).
    scheduler_config : Path
        The scheduler config file.
    """

    name: str
    folder: Path
    unet: Optional[Path]
    unet_class: Optional[str]
    scheduler_config: Path


def _read_json(path: Path, param: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(param, f"{path} is not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(param, f"{path} is not a JSON object")
    return data


def read_scheduler_config(path: str | os.PathLike, param: str = "scheduler_config") -> dict:
    """The scheduler config in ``path`` (a ``scheduler_config.json``, or a folder holding one), checked by
    :func:`~pndmkit.integrations.diffusers.translate`.

    Raises
    ------
    UsageError
        Naming ``param``: no such file, not JSON, or a field pndmkit cannot honour (the message names the file).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "scheduler_config.json"
    if not p.is_file():
        raise UsageError(param, f"{p}: no such scheduler config file")
    config = _read_json(p, param)
    try:
        translate({**config, "clip_sample": False})
    except ValueError as exc:
        raise UsageError(param, f"{p}: {exc}") from None
    return config


def _hub_snapshot(repo_id: str, param: str) -> Path:
    """The local snapshot folder of ``repo_id`` (its ``refs/main``) in the Hugging Face cache; no download."""
    try:
        from huggingface_hub import constants, snapshot_download
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers
        raise UsageError(param, f"{repo_id!r} is no folder here, and huggingface_hub is not installed to look it "
                                f"up in the local Hugging Face cache") from None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - any lookup failure is "not in the cache", in one line
        raise UsageError(param, f"{repo_id!r} is no folder here and no snapshot of the hub id {repo_id!r} is in the "
                                f"local Hugging Face cache {constants.HF_HUB_CACHE} (models--"
                                f"{repo_id.replace('/', '--')}/snapshots/<revision> with refs/main; nothing is "
                                f"downloaded: {type(exc).__name__})") from None


def _scheduler_beside(unet: Path, folder: Path) -> Optional[Path]:
    for candidate in (unet / "scheduler" / "scheduler_config.json", unet / "scheduler_config.json",
                      folder / "scheduler" / "scheduler_config.json", unet.parent / "scheduler" /
                      "scheduler_config.json"):
        if candidate.is_file():
            return candidate
    return None


def locate(source: str | os.PathLike, *, scheduler_config: Optional[str | os.PathLike] = None,
           need_unet: bool = True, param: str = "model") -> Located:
    """Find a diffusers network's folder and scheduler config (see the module documentation); load nothing.

    Parameters
    ----------
    source : str or path
        A pipeline folder, a model folder, a hub id in the local cache, or (``need_unet=False``) a scheduler
        folder or ``scheduler_config.json``.
    scheduler_config : path, optional
        The scheduler config file (or its folder), overriding the one found beside the network.
    need_unet : bool
        Whether the network is needed (``False``: only the scheduler config, as :func:`pndmkit.studies.audit`).
    param : str
        The parameter errors name.

    Raises
    ------
    UsageError
        Naming ``param`` (or ``scheduler_config``): one line with the path and what is missing.
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    name = path.name or text
    if not path.exists():
        if not _HUB_ID.match(text):
            raise UsageError(param, f"{text}: no such file or folder (and not a hub id org/name)")
        path, name = _hub_snapshot(text, param), text
    if path.is_file():
        if not need_unet and path.name.endswith(".json"):
            return Located(name, path.parent, None, None, Path(read_scheduler_config(path, param) and path))
        raise UsageError(param, f"{path} is a file; expected a diffusers folder (model_index.json or config.json)")
    unet, unet_class = None, None
    if (path / "model_index.json").is_file():
        index = _read_json(path / "model_index.json", param)
        parts = {key: value[1] for key, value in index.items()
                 if isinstance(value, list) and len(value) == 2 and isinstance(value[1], str)}
        names = [key for key, cls in parts.items() if cls in UNET_CLASSES]
        if need_unet and not names:
            raise UsageError(param, f"{path}/model_index.json names no {' or '.join(UNET_CLASSES)} component "
                                    f"(components: {parts or 'none'})")
        if names:
            key = "unet" if "unet" in names else names[0]
            unet, unet_class = path / key, parts[key]
            if not (unet / "config.json").is_file():
                raise UsageError(param, f"{unet}/config.json is missing (model_index.json names {key!r} "
                                        f"{with_article(unet_class)})")
    elif (path / "config.json").is_file() or (path / "unet" / "config.json").is_file():
        unet = path if (path / "config.json").is_file() else path / "unet"  # a pipeline folder without its index
        config = _read_json(unet / "config.json", param)
        unet_class = config.get("_class_name")
        if unet_class not in UNET_CLASSES:
            what = with_article(unet_class) if unet_class else "a model without _class_name"
            raise UsageError(param, f"{unet}/config.json describes {what}; "
                                    f"expected one of {', '.join(UNET_CLASSES)}")
    elif need_unet or not (path / "scheduler_config.json").is_file():
        raise UsageError(param, f"{path} is not a diffusers model folder: it has no model_index.json (a pipeline) "
                                f"and no config.json (a UNet2DModel)")
    if unet is not None and need_unet and not any((unet / w).is_file() for w in WEIGHT_FILES):
        raise UsageError(param, f"{unet} has no weights: expected {WEIGHT_FILES[0]} (or {WEIGHT_FILES[2]})")
    if scheduler_config is not None:
        found = Path(scheduler_config)
        found = found / "scheduler_config.json" if found.is_dir() else found
        if not found.is_file():
            raise UsageError("scheduler_config", f"{found}: no such scheduler config file")
    else:
        found = _scheduler_beside(unet, path) if unet is not None else path / "scheduler_config.json"
        if found is None or not found.is_file():
            raise UsageError(param, f"{unet or path} has no scheduler config: expected {path}/scheduler/"
                                    f"scheduler_config.json or {unet or path}/scheduler_config.json (or give one: "
                                    f"--scheduler-config FILE, scheduler_config=FILE)")
    return Located(name, path, unet, unet_class, found)


def _is_pndmkit_checkpoint(text: str, param: str) -> bool:
    """Whether ``text`` names a pndmkit checkpoint; a name that is nothing at all is refused here, with what
    pndmkit looked for."""
    from pndmkit.nn.checkpoint import resolve_checkpoint

    from pndmkit.errors import BadFileError

    try:
        resolve_checkpoint(text)
    except BadFileError as exc:  # it is a pndmkit checkpoint, damaged (a folder named X.json, say)
        raise UsageError(param, f"{text}: {exc}") from exc
    except FileNotFoundError as exc:
        if not Path(text).expanduser().exists() and not _HUB_ID.match(text):
            raise UsageError(param, f"{exc}; or a diffusers folder, or a hub id org/name in the local Hugging Face "
                                    f"cache") from None
        return False
    return True


def load_embeddings(source: Any, param: str = "prompt_embeds") -> Any:
    """Prompt embeddings as a float32 tensor ``(1, L, D)``.

    Parameters
    ----------
    source : tensor, array or path
        ``(L, D)`` or ``(1, L, D)`` values, or a ``.pt`` / ``.pth`` file (a tensor, or a dict holding one tensor or
        ``prompt_embeds``), a ``.safetensors`` file (its ``prompt_embeds`` or only tensor), or a ``.npy`` file.

    Raises
    ------
    UsageError
        Naming ``param``: a missing file, an unknown suffix, no tensor or several without ``prompt_embeds``,
        another shape, or non-finite values.
    """
    import numpy as np

    value = source
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if not p.is_file():
            raise UsageError(param, f"{p}: no such embeddings file")
        suffix = p.suffix.lower()
        try:
            if suffix in (".pt", ".pth"):
                value = torch.load(p, map_location="cpu", weights_only=True)
            elif suffix == ".safetensors":
                from safetensors.torch import load_file

                value = load_file(str(p))
            elif suffix == ".npy":
                value = np.load(p, allow_pickle=False)
            else:
                raise UsageError(param, f"{p}: unknown embeddings file type {suffix!r}; use .pt, .safetensors or .npy")
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - an unreadable file, in one line
            raise UsageError(param, f"{p} is not a readable {suffix} file: {type(exc).__name__}: {exc}") from None
        if isinstance(value, dict):
            tensors = {k: v for k, v in value.items() if isinstance(v, torch.Tensor)}
            if "prompt_embeds" in tensors:
                value = tensors["prompt_embeds"]
            elif len(tensors) == 1:
                value = next(iter(tensors.values()))
            else:
                raise UsageError(param, f"{p} holds {sorted(tensors) or 'no tensors'}; expected one tensor or "
                                        f"'prompt_embeds'")
    tensor = value.detach().cpu() if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    if tensor.ndim == 2:
        tensor = tensor[None]
    if tensor.ndim != 3 or tensor.shape[0] != 1 or not tensor.is_floating_point():
        raise UsageError(param, f"prompt embeddings must be floating point of shape (L, D) or (1, L, D) (one fixed "
                                f"prompt), got {tuple(value.shape)} {value.dtype}")
    if not bool(torch.isfinite(tensor).all()):
        raise UsageError(param, "prompt embeddings hold NaN or inf values")
    return tensor.float()


class Conditioned(torch.nn.Module):
    """A diffusers network with fixed conditioning, called as ``net(x, t_batch)`` and returning a tensor.

    Parameters
    ----------
    unet : torch.nn.Module
        A class-conditional ``UNet2DModel`` or a ``UNet2DConditionModel``.
    class_label : int, optional
        The class of every sample (the network's ``class_labels``).
    prompt_embeds : torch.Tensor, optional
        ``(1, L, D)`` embeddings given to every sample (the network's ``encoder_hidden_states``).

    The conditioning is held in buffers: it moves with ``.to(device)``, the embeddings take the network's
    dtype under ``.double()``, and it is part of ``state_dict()`` (so of a study's cache key).
    """

    def __init__(self, unet: torch.nn.Module, *, class_label: Optional[int] = None,
                 prompt_embeds: Optional[torch.Tensor] = None) -> None:
        super().__init__()
        self.unet = unet
        self.register_buffer("class_label", None if class_label is None else
                             torch.tensor([int(class_label)], dtype=torch.long))
        self.register_buffer("prompt_embeds", prompt_embeds)

    @property
    def config(self) -> Any:
        """The network's diffusers config."""
        return self.unet.config

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network's output ``(B, C, H, W)`` at ``x`` and timesteps ``t`` ``(B,)``, with the conditioning."""
        kwargs: dict[str, Any] = {}
        n = x.shape[0]
        if self.class_label is not None:
            kwargs["class_labels"] = self.class_label.expand(n)
        if self.prompt_embeds is not None:
            kwargs["encoder_hidden_states"] = self.prompt_embeds.to(x.dtype).expand(n, -1, -1)
        return self.unet(x, t, **kwargs).sample


def _conditioning(unet: Any, located: Located, class_label: Any, prompt_embeds: Any, param: str
                  ) -> tuple[Any, dict]:
    """Wrap ``unet`` with its fixed conditioning (or refuse, naming what is missing or not wanted)."""
    cfg = unet.config
    where = located.unet
    files: dict = {}
    if located.unet_class == "UNet2DConditionModel":
        if class_label is not None and getattr(cfg, "class_embed_type", None) is None \
                and getattr(cfg, "num_class_embeds", None) is None:
            raise UsageError("class_label", f"{where} is a UNet2DConditionModel without class embeddings; it takes "
                                            f"prompt_embeds, not class_label")
        if prompt_embeds is None:
            raise UsageError(param, f"{where} is a UNet2DConditionModel: it needs prompt "
                                                         f"embeddings (prompt_embeds= a (L, {cfg.cross_attention_dim}) "
                                                         f"tensor or a .pt/.safetensors/.npy file); the command line "
                                                         f"runs unconditional networks only")
        if isinstance(prompt_embeds, (str, os.PathLike)):
            files["prompt_embeds"] = Path(prompt_embeds)
        embeds = load_embeddings(prompt_embeds)
        if embeds.shape[-1] != cfg.cross_attention_dim:
            raise UsageError("prompt_embeds", f"prompt embeddings have width {embeds.shape[-1]} but {where} has "
                                              f"cross_attention_dim={cfg.cross_attention_dim}")
        return Conditioned(unet, prompt_embeds=embeds, class_label=class_label), files
    classes = getattr(cfg, "num_class_embeds", None)
    conditional = classes is not None or getattr(cfg, "class_embed_type", None) is not None
    if prompt_embeds is not None:
        raise UsageError("prompt_embeds", f"{where} is {with_article(located.unet_class)}; it takes no prompt "
                                          f"embeddings")
    if not conditional:
        if class_label is not None:
            raise UsageError("class_label", f"{where} is an unconditional {located.unet_class}; it takes no "
                                            f"class_label (got {class_label!r})")
        return unet, files
    if class_label is None:
        raise UsageError(param, f"{where} is a class-conditional {located.unet_class} "
                                                   f"(num_class_embeds={classes}): it needs class_label= an integer "
                                                   f"in [0, {classes}); the command line runs unconditional "
                                                   f"networks only")
    if isinstance(class_label, bool) or not isinstance(class_label, int) or not (
            0 <= class_label < (classes if classes is not None else 2 ** 31)):
        raise UsageError("class_label", f"class_label must be an integer in [0, {classes}), got {class_label!r}")
    return Conditioned(unet, class_label=class_label), files


def open_network(source: Any, *, scheduler_config: Optional[str | os.PathLike] = None,
                 class_label: Optional[int] = None, prompt_embeds: Any = None, device: Any = None,
                 param: str = "model", grid_options: Optional[str] = API_GRID_OPTIONS) -> Any:
    """Load a network as users have it into a :class:`pndmkit.nn.Checkpoint` (see the module documentation).

    Parameters
    ----------
    source : str, path or Checkpoint
        A pndmkit checkpoint name or path, a diffusers pipeline or model folder, or a hub id in the local
        Hugging Face cache; a :class:`~pndmkit.nn.Checkpoint` is returned as it is (moved to ``device``).
    scheduler_config : path, optional
        A diffusers folder's scheduler config file, overriding the one beside the network.
    class_label : int, optional
        Class of every sample, for a class-conditional ``UNet2DModel``.
    prompt_embeds : tensor, array or path, optional
        Prompt embeddings for a ``UNet2DConditionModel`` (:func:`load_embeddings`).
    device : str or torch.device, optional
        Where the network runs (the models of :class:`pndmkit.nn.NetworkModel` move their inputs there).
    param : str
        The parameter errors name.
    grid_options : str, optional
        What chooses pndmkit's grid where the network is used, named by the notice (a :class:`ConventionWarning`)
        that a diffusers config's grid fields are not used: the options of the command that opens it (``"--grid"``
        for ``pndmkit order``), by default :data:`API_GRID_OPTIONS`; ``None`` names none.

    Returns
    -------
    pndmkit.nn.Checkpoint
        The network (eval mode, its saved dtype) with its schedule, prediction and time convention; for a
        diffusers folder ``files`` lists the files that determine it and ``meta["name"]`` the name reports use.

    Raises
    ------
    UsageError
        Naming ``param`` (or ``scheduler_config``, ``class_label``, ``prompt_embeds``): one line with the path and
        what is missing or wrong.
    """
    from pndmkit.nn.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint

    if isinstance(source, Checkpoint):
        ckpt = source
    elif not isinstance(source, (str, os.PathLike)):
        raise UsageError(param, f"{param} must be a checkpoint name or path, a diffusers folder or a hub id, got "
                                f"{type(source).__name__}")
    elif not Path(os.fspath(source)).is_dir() and _is_pndmkit_checkpoint(os.fspath(source), param):
        for option, value in (("scheduler_config", scheduler_config), ("class_label", class_label),
                              ("prompt_embeds", prompt_embeds)):
            if value is not None:
                raise UsageError(option, f"{option} applies to diffusers networks; {os.fspath(source)!r} is a pndmkit "
                                         f"checkpoint with its own schedule")
        try:
            ckpt = load_checkpoint(resolve_checkpoint(os.fspath(source)))
        except (FileNotFoundError, ValueError, KeyError, RuntimeError) as exc:  # the cause says what kind (BadFileError)
            raise UsageError(param, f"{os.fspath(source)}: {exc}") from exc
    else:
        ckpt = _open_diffusers(source, scheduler_config, class_label, prompt_embeds, param, grid_options)
    if device is not None:
        try:
            dev = torch.device(device)
            if dev.type == "cuda" and not torch.cuda.is_available():
                raise RuntimeError("CUDA is not available here (torch.cuda.is_available() is False); use cpu")
            ckpt.net.to(dev)
        except (RuntimeError, AssertionError, TypeError, ValueError) as exc:
            raise UsageError("device", f"device {str(device)!r} is not usable here: {str(exc).splitlines()[0]}") \
                from None
    return ckpt


def _open_diffusers(source: Any, scheduler_config: Any, class_label: Any, prompt_embeds: Any, param: str,
                    grid_options: Optional[str]) -> Any:
    from pndmkit.integrations.diffusers.network import network_model
    from pndmkit.nn.checkpoint import Checkpoint, check_finite_weights

    located = locate(source, scheduler_config=scheduler_config, param=param)
    config_param = "scheduler_config" if scheduler_config is not None else param
    config = read_scheduler_config(located.scheduler_config, config_param)
    try:
        refuse_foreign(config)  # the check PNDMKitScheduler.from_config makes: a class pndmkit does not read
    except ValueError as exc:
        raise UsageError(config_param, f"{located.scheduler_config}: {exc}; give the config of one of those "
                                       f"(--scheduler-config FILE, scheduler_config=FILE)") from None
    try:
        refuse_dynamic_shifting(config, str(located.scheduler_config))  # as network_model refuses it in memory
    except ValueError as exc:
        raise UsageError(config_param, str(exc)) from None
    unread = grid_fields_set(config)
    if unread:
        fields = ", ".join(f"{key}={value!r}" for key, value in unread.items())
        chosen = f" ({grid_options})" if grid_options else ""
        warnings.warn(f"{located.scheduler_config} sets grid fields not used here ({fields}): only the "
                      f"schedule and prediction type are read, and pndmkit samples its own grid{chosen}; for the "
                      f"source's grid use PNDMKitScheduler.from_config(config, method=...) in the diffusers pipeline",
                      ConventionWarning, stacklevel=3)
    if config.get("clip_sample", False):
        warnings.warn(f"{located.scheduler_config} sets clip_sample=True: pndmkit's methods integrate the network's "
                      f"probability-flow ODE without clipping its x0 estimates", ConventionWarning, stacklevel=3)
    import diffusers

    cls = getattr(diffusers, located.unet_class)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from diffusers.utils import logging as diffusers_logging

            level = diffusers_logging.get_verbosity()
            diffusers_logging.set_verbosity_error()
            try:
                unet = cls.from_pretrained(str(located.unet), local_files_only=True)
            finally:
                diffusers_logging.set_verbosity(level)
    except Exception as exc:  # noqa: BLE001 - diffusers' refusal of a folder, in one line
        raise UsageError(param, f"{located.unet}: diffusers cannot load this {located.unet_class}: "
                                f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
    unet.eval()
    weights = next(located.unet / w for w in WEIGHT_FILES if (located.unet / w).is_file())
    try:
        check_finite_weights(unet.state_dict(), weights)
    except BadFileError as exc:
        raise UsageError(param, f"{os.fspath(source)}: {exc}") from exc
    net, extra = _conditioning(unet, located, class_label, prompt_embeds, param)
    try:
        model = network_model(net, {**config, "clip_sample": False})
    except ValueError as exc:
        raise UsageError(config_param, f"{located.scheduler_config}: {exc}") from None
    files = {"config.json": located.unet / "config.json", weights.name: weights,
             "scheduler_config.json": located.scheduler_config, **extra}
    meta = {"name": located.name, "source": "diffusers", "network": located.unet_class,
            "scheduler": config.get("_class_name"), "scheduler_config": str(located.scheduler_config)}
    if class_label is not None:
        meta["class_label"] = int(class_label)
    return Checkpoint(net=net, schedule=model.schedule, prediction=model.prediction, time_offset=model.time_offset,
                      time_scale=model.time_scale, meta=meta, path=located.folder, files=files)
