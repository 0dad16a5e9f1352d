"""Options the network commands share (``order --model``, ``grid optimize --model``, ``sample --checkpoint``):
where the network comes from, where it runs, how long a study may take."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from pndmkit.commands.args import positive_float
from pndmkit.errors import UsageError

__all__ = ["add_cache_options", "add_network_options", "default_device", "default_cache", "open_model",
           "refuse_without_model", "resolve_cache", "NETWORK_HELP"]

#: what ``--model`` / ``--checkpoint`` accept
NETWORK_HELP = ("a pndmkit checkpoint (shipped name or path), a diffusers folder (DDPMPipeline.save_pretrained, or a "
                "UNet2DModel folder with its scheduler config) or a hub id in the local Hugging Face cache")


def default_device() -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_cache() -> str:
    """Folder of cached network references: ``$PNDMKIT_CACHE``, else ``~/.cache/pndmkit/real``."""
    return os.environ.get("PNDMKIT_CACHE") or str(Path.home() / ".cache" / "pndmkit" / "real")


def add_network_options(p: argparse.ArgumentParser, *, study: bool = True, model_only: bool = False) -> None:
    """``--scheduler-config`` and, for a study, ``--device`` (default cuda when there is one) and ``--max-minutes``;
    ``model_only``: the command runs a network only with ``--model``, and the help says so."""
    p.add_argument("--scheduler-config", default=None, metavar="FILE",
                   help=("--model only: " if model_only else "") + "a diffusers UNet folder's scheduler_config.json "
                        "(default: the one beside the network)")
    if study:
        p.add_argument("--device", default=None, metavar="DEVICE",
                       help="where the network runs: cpu, cuda, cuda:1, ... (default: cuda when there is one); the "
                            "study itself stays in float64 on the CPU")
        p.add_argument("--max-minutes", type=positive_float, default=None, metavar="M",
                       help="stop after about M minutes with what is finished, reference solves included (checked "
                            "before each network evaluation; finished blocks stay cached, an unfinished one is not "
                            "kept; Ctrl-C does the same); exit status 1 when the references were not finished and "
                            "there is nothing to report (default: no limit)")


def add_cache_options(p: argparse.ArgumentParser, *, holds: str = "cached references", note: str = "") -> None:
    """``--cache`` and ``--rebuild-cache`` of a command that studies a network with ``--model``: ``holds`` says what
    the folder keeps, ``note`` is added to the default (e.g. where shipped entries are)."""
    p.add_argument("--cache", default=None, metavar="DIR",
                   help=f"--model only: folder of {holds} (default: $PNDMKIT_CACHE, else ~/.cache/pndmkit/real{note}); "
                        "'none' caches nothing")
    p.add_argument("--rebuild-cache", action="store_true",
                   help="--model only: remove a damaged cache entry (named on stderr) and compute it again, instead "
                        "of stopping with an error")


def refuse_without_model(args: argparse.Namespace, options: Sequence[str], what: str,
                         messages: Optional[Mapping[str, str]] = None) -> None:
    """Without ``--model``, refuse the first of ``options`` (argparse destinations, checked in order) that was given.

    An option counts as given unless its value is None or False (a flag left off). The error is a
    :class:`~pndmkit.errors.UsageError` naming the option: ``messages[option]`` where there is one, else
    ``"--option applies to <what>; it needs --model"``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line; ``args.model`` and each of ``options`` are read.
    options : sequence of str
        argparse destinations (``"rebuild_cache"`` for ``--rebuild-cache``), checked in this order.
    what : str
        What those options apply to, for the default message (e.g. ``"a network"``).
    messages : mapping of str to str, optional
        Messages of their own, keyed by destination, used instead of the default one.

    Returns
    -------
    None
        When ``args.model`` is given or none of ``options`` was.

    Raises
    ------
    UsageError
        The first of ``options`` given without ``--model``, named as its destination.
    AttributeError
        ``args`` has no attribute of that name (a programming error: a destination the parser lacks).
    """
    if args.model is not None:
        return
    for name in options:
        value = getattr(args, name)
        if value is None or value is False:
            continue
        text = (messages or {}).get(name) or f"--{name.replace('_', '-')} applies to {what}; it needs --model"
        raise UsageError(name, text)


def resolve_cache(args: argparse.Namespace) -> Optional[str]:
    """The reference cache folder of a ``--model`` run: ``--cache``, else :func:`default_cache`; None for ``none``
    (caches nothing), where ``--rebuild-cache`` is a :class:`~pndmkit.errors.UsageError` naming it.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line; ``args.cache`` (a path, ``"none"`` in any case, or None for the default) and
        ``args.rebuild_cache`` (a flag) are read.

    Returns
    -------
    str or None
        The cache folder as given (not checked, not created: :func:`pndmkit.studies.real.check_cache` does
        that), or None for ``--cache none``.

    Raises
    ------
    UsageError
        ``--cache none`` together with ``--rebuild-cache`` (named ``rebuild_cache``).
    """
    cache = default_cache() if args.cache is None else args.cache
    if cache.lower() != "none":
        return cache
    if args.rebuild_cache:
        raise UsageError("rebuild_cache", "--rebuild-cache recomputes damaged cache entries; --cache none caches "
                                          "nothing: drop one of them")
    return None


def open_model(args: argparse.Namespace, option: str = "model", *, grid_options: Optional[str]) -> Any:
    """The network of ``args.<option>`` (:func:`pndmkit.integrations.diffusers.pretrained.open_network`) on
    ``args.device`` (default :func:`default_device`), as a :class:`pndmkit.nn.Checkpoint`; ``grid_options`` are the
    command's options that choose its grid (``None``: it has none), which the notice on a diffusers config's unused
    grid fields names."""
    from pndmkit.integrations.diffusers.pretrained import open_network

    device = getattr(args, "device", None) or default_device()
    return open_network(getattr(args, option), scheduler_config=args.scheduler_config, device=device, param=option,
                        grid_options=grid_options)
