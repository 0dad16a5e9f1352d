r"""Turn a torch network ``net(x, t_batch)`` into a pndmkit model ``model(x, t) -> eps``.

pndmkit calls a model with a Python float ``t`` in the schedule's units (the training index for a
:class:`~pndmkit.schedules.DiscreteVP`, ``t = -1`` meaning ``abar = 1``). :class:`NetworkModel`

* gives the network the time as a float32 batch tensor, ``(t - time_offset) * time_scale`` (``time_offset = 1``
  reproduces the official PNDM code, which feeds index ``t - 1`` at the noise level of index ``t``;
  ``time_scale = 999`` feeds a network trained on indices from a continuous ``t`` in [0, 1]);
* runs on the network's device: ``x`` moves there and the output back to ``x``'s device;
* runs the network in its own dtype (fp16 / bf16 weights) and returns the state's dtype;
* converts the network's prediction to ``eps`` at every call, before the sampler combines anything
  (``abar`` and its square roots are Python floats computed in float64 on the host: no device sync):

  - ``x0``: ``eps = (x - sqrt(abar) x0) / sqrt(1 - abar)``; where ``1 - abar < min_sigma**2`` (``t = -1``)
    the conversion uses ``1 - abar = min_sigma**2``, since the quotient is 0/0 there;
  - ``v``: ``eps = sqrt(1 - abar) x + sqrt(abar) v``;
  - ``score``: ``eps = -sqrt(1 - abar) score``.

:func:`from_diffusers` wraps a diffusers ``UNet2DModel`` the same way.

>>> import torch
>>> from pndmkit.schedules import DiscreteVP
>>> from pndmkit.nn.unet import UNet
>>> model = NetworkModel(UNet.preset("tiny").eval(), DiscreteVP.linear())
>>> model(torch.zeros(3, 1, 8, 8), 999.0).shape
torch.Size([3, 1, 8, 8])
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

import torch

from pndmkit.models import PREDICTIONS
from pndmkit.models import eps_coefficients as _eps_coefficients
from pndmkit.schedules import NoiseSchedule

__all__ = ["NetworkModel", "from_diffusers", "PREDICTIONS", "eps_coefficients"]

def eps_coefficients(schedule: NoiseSchedule, t: float, prediction: str, min_sigma: float = 1e-3
                     ) -> tuple[float, float]:
    """``(c_x, c_out)`` with ``eps = c_x * x + c_out * out`` for a network predicting ``prediction`` at ``t``:
    :func:`pndmkit.models.eps_coefficients` with ``sigma`` clamped to ``min_sigma`` for ``x0`` networks (finite
    at ``abar = 1``)."""
    return _eps_coefficients(schedule, t, prediction, min_sigma)


class NetworkModel:
    """A pndmkit model (``model(x, t) -> eps``) around ``net(x, t_batch)``.

    Parameters
    ----------
    net : callable
        Torch network taking ``(x, t)`` with ``t`` a float32 tensor of shape ``(B,)``.
    schedule : NoiseSchedule
        The schedule the network was trained with (for the prediction conversion).
    prediction : {"eps", "x0", "v", "score"}
        What the network predicts.
    time_offset, time_scale : float
        The network receives ``(t - time_offset) * time_scale``.
    dtype : torch.dtype, optional
        Dtype of the network input (default: of the network's first parameter, else ``x``'s).
    min_sigma : float
        Floor of ``sqrt(1 - abar)`` in the ``x0`` conversion.
    """

    def __init__(self, net: Callable[..., torch.Tensor], schedule: NoiseSchedule, *, prediction: str = "eps",
                 time_offset: float = 0.0, time_scale: float = 1.0, dtype: torch.dtype | None = None,
                 min_sigma: float = 1e-3) -> None:
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if not callable(net):
            raise TypeError(f"net must be callable as net(x, t), got {type(net).__name__}")
        if not min_sigma > 0:
            raise ValueError(f"min_sigma must be > 0, got {min_sigma}")
        self.net, self.schedule, self.prediction = net, schedule, prediction
        self.time_offset, self.time_scale, self.min_sigma = float(time_offset), float(time_scale), float(min_sigma)
        if dtype is None and isinstance(net, torch.nn.Module):
            param = next(iter(net.parameters()), None)
            dtype = param.dtype if param is not None else None
        self.dtype = dtype
        self.nfe = 0
        self._convert = True

    def __repr__(self) -> str:
        return (f"NetworkModel({type(self.net).__name__}, {self.schedule!r}, prediction={self.prediction!r}, "
                f"time_offset={self.time_offset}, time_scale={self.time_scale}"
                f"{'' if self._convert else ', unconverted'})")

    @property
    def converted_from(self) -> str | None:
        """What the network predicts; the model itself returns ``eps`` (:func:`pndmkit.models.converted_from`),
        so ``pndmkit.sample`` takes it with ``prediction="eps"`` and refuses another prediction. ``None`` for the
        model of :meth:`unconverted`, which converts nothing."""
        return self.prediction if self._convert else None

    def unconverted(self) -> "NetworkModel":
        """The same network returning its own prediction (``self.prediction``) instead of ``eps``.

        :func:`pndmkit.sample` uses it where a run starts at ``alpha = 0`` (flow matching from pure noise,
        ``t = 1``): there ``eps = x`` carries no information on ``x0``, and the run is told the network's flow
        velocity itself. The returned model is a new object with its own ``nfe`` count; its time conventions
        (``time_offset``, ``time_scale``, ``dtype``) are this model's.
        """
        raw = copy.copy(self)
        raw._convert = False
        raw.nfe = 0
        return raw

    @property
    def device(self) -> torch.device | None:
        """Where the network's weights are (``None`` for a network without parameters): each call moves ``x``
        there and the output back to ``x``'s device, so a float64 study on the CPU can run a network on a GPU."""
        if not isinstance(self.net, torch.nn.Module):
            return None
        param = next(iter(self.net.parameters()), None)
        return None if param is None else param.device

    def with_time_offset(self, offset: float) -> "NetworkModel":
        """The same network told ``t - offset`` more, its output still converted at the sampler time ``t``.

        :func:`pndmkit.sample` uses it for ``model_time_offset`` (the official PNDM convention): the network of
        the returned model receives ``(t - time_offset - offset) * time_scale``; the conversion reads
        ``abar(t)``. The returned model is a new object with its own ``nfe`` count.

        Parameters
        ----------
        offset : float
            Added to ``time_offset``; finite.

        Raises
        ------
        ValueError
            A non-finite ``offset``.
        """
        if not math.isfinite(float(offset)):
            raise ValueError(f"offset must be a finite number, got {offset!r}")
        shifted = copy.copy(self)
        shifted.time_offset = self.time_offset + float(offset)
        shifted.nfe = 0
        return shifted

    def network_time(self, t: float) -> float:
        """The time value the network receives for sampler time ``t``."""
        return (float(t) - self.time_offset) * self.time_scale

    def __call__(self, x: torch.Tensor, t: float) -> torch.Tensor:
        device = self.device
        x_in = x.to(device=device or x.device, dtype=self.dtype or x.dtype)
        t_net = torch.full((x.shape[0],), self.network_time(t), dtype=torch.float32, device=x_in.device)
        with torch.no_grad():
            out = self.net(x_in, t_net)
        if not isinstance(out, torch.Tensor):  # diffusers-style output objects
            out = out.sample if hasattr(out, "sample") else out[0]
        out = out.to(device=x.device, dtype=x.dtype)
        self.nfe += 1
        if not self._convert:
            return out
        c_x, c_out = eps_coefficients(self.schedule, t, self.prediction, self.min_sigma)
        if c_x == 0.0:
            return out if c_out == 1.0 else out * c_out
        return torch.add(x * c_x, out, alpha=c_out)


def from_diffusers(unet: Any, schedule: NoiseSchedule, *, prediction: str = "eps", time_offset: float = 0.0,
                   time_scale: float = 1.0, dtype: torch.dtype | None = None) -> NetworkModel:
    """Wrap a diffusers ``UNet2DModel`` (or any network returning ``.sample``) as a pndmkit model on ``schedule``.

    To read the schedule and prediction from a diffusers scheduler config, use
    :func:`pndmkit.integrations.diffusers.network_model` (the one reader of those configs).

    Parameters
    ----------
    unet : diffusers.UNet2DModel
        Called as ``unet(x, t_batch).sample``.
    schedule : NoiseSchedule
        The schedule the network was trained with.
    prediction : {"eps", "x0", "v", "score", "flow"}
        What the network predicts.
    time_offset, time_scale, dtype
        As :class:`NetworkModel`.

    Raises
    ------
    TypeError
        ``schedule`` is not a NoiseSchedule (a scheduler config goes to ``network_model``).
    """
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}; to read a diffusers "
                        f"scheduler config use pndmkit.integrations.diffusers.network_model(unet, config)")
    return NetworkModel(unet, schedule, prediction=prediction, time_offset=time_offset, time_scale=time_scale,
                        dtype=dtype)
