r"""pndmkit and diffusers: any pndmkit method as a diffusers scheduler, and every translation between the two.

Swap the sampler of a pipeline (the config keeps the source scheduler's grid, end point and start scale)::

    pipe.scheduler = PNDMKitScheduler.from_config(pipe.scheduler.config, method="dpm-solver++-2m")

* :mod:`pndmkit.integrations.diffusers.config`: a diffusers scheduler config read into pndmkit's terms
  (:func:`translate`, :func:`schedule_from_config`) and back (:func:`table_from_schedule`);
* :mod:`pndmkit.integrations.diffusers.scheduler`: :class:`PNDMKitScheduler`;
* :func:`network_model`: a diffusers network with its scheduler config as a pndmkit model;
* :mod:`pndmkit.integrations.diffusers.pretrained`: a network as users have it (a ``save_pretrained`` folder or a
  cached hub id, with fixed conditioning where it needs some) as a :class:`pndmkit.nn.Checkpoint`
  (:func:`open_network`; imports torch, so it loads on first use).
"""

from __future__ import annotations

from pndmkit.integrations.diffusers.config import (BETA_SCHEDULES, PREDICTION_TYPES, REFUSED, SOURCES,
                                                   ConventionWarning, Layout, TrainingRangeWarning,
                                                   Translation, scheduler_class, scheduler_levels,
                                                   schedule_from_config, table_from_schedule, translate)
from pndmkit.integrations.diffusers.network import network_model
from pndmkit.integrations.diffusers.scheduler import PNDMKitScheduler, evaluation_times

__all__ = ["PNDMKitScheduler", "schedule_from_config", "translate", "Translation", "Layout", "network_model",
           "table_from_schedule", "scheduler_levels", "evaluation_times", "BETA_SCHEDULES", "PREDICTION_TYPES",
           "REFUSED", "SOURCES", "ConventionWarning", "TrainingRangeWarning", "scheduler_class"]

_PRETRAINED = ("open_network", "locate", "Located", "Conditioned", "load_embeddings", "read_scheduler_config")
__all__ += list(_PRETRAINED)


def __getattr__(name: str):
    if name in _PRETRAINED:  # torch is imported by that module: only on first use
        from pndmkit.integrations.diffusers import pretrained

        return getattr(pretrained, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
