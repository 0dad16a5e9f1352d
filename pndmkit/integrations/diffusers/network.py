"""A diffusers network and its scheduler config as a pndmkit model (the config read by :func:`translate`)."""

from __future__ import annotations

from typing import Any

from pndmkit._checks import with_article
from pndmkit.integrations.diffusers.config import refuse_dynamic_shifting, translate

__all__ = ["network_model"]


def network_model(net: Any, scheduler_config: Any, *, time_offset: float = 0.0, dtype: Any = None) -> Any:
    """Wrap a diffusers network (``UNet2DModel`` or any ``net(x, t_batch)`` returning ``.sample``) as a pndmkit
    model ``model(x, t) -> eps`` on the schedule its scheduler config describes.

    Parameters
    ----------
    net : torch.nn.Module
        Called as ``net(x, t_batch)``.
    scheduler_config : mapping
        ``pipe.scheduler.config`` (or any mapping with its fields): gives the schedule
        (:func:`pndmkit.integrations.diffusers.schedule_from_config`) and the prediction (``prediction_type``).
    time_offset : float
        The network receives ``(t - time_offset)`` times the config's time scale (1 on DDPM tables,
        ``num_train_timesteps`` on flow matching, where ``t`` is the flow sigma).
    dtype : torch.dtype, optional
        Dtype of the network input (default: of the network's first parameter).

    Returns
    -------
    pndmkit.nn.NetworkModel
        With ``.schedule`` and ``.prediction`` of the config.

    Raises
    ------
    ValueError
        A config field that cannot be honoured (:func:`translate`); a flow-matching config with
        ``use_dynamic_shifting=True``, whose shift comes from the image size (``mu``), as ``open_network`` refuses it
        (:func:`~pndmkit.integrations.diffusers.config.refuse_dynamic_shifting`); or an EDM config, whose networks
        take preconditioned inputs (use :class:`~pndmkit.integrations.diffusers.PNDMKitScheduler` there).

    Examples
    --------
    >>> import torch
    >>> model = network_model(lambda x, t: x * 0, {"prediction_type": "v_prediction"})
    >>> model.prediction, model.schedule.num_train_timesteps
    ('v', 1000)
    """
    from pndmkit.nn.adapters import NetworkModel

    config = dict(scheduler_config or {})
    refuse_dynamic_shifting(config, "scheduler_config")  # its shift is mu's, which no caller passes here
    tr = translate(config)
    if tr.family == "edm":
        raise ValueError(f"{with_article(tr.source)} config preconditions the network's input and output (EDM), which "
                         f"a plain model(x, t) -> eps wrapper does not: use PNDMKitScheduler.from_config(config, method=...)")
    if tr.clip is not None:
        raise ValueError("clip_sample=True cannot be honoured by a model wrapper (the clipping is the scheduler's): "
                         "pass the config with clip_sample=False, or use PNDMKitScheduler")
    scale = float(tr.config.get("num_train_timesteps", 1000)) if tr.family == "flow" else 1.0
    return NetworkModel(net, tr.schedule, prediction=tr.prediction, time_offset=time_offset, time_scale=scale,
                        dtype=dtype)
