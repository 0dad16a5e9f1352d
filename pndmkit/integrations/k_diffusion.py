r"""pndmkit's methods with k-diffusion's sampler signature (k-diffusion itself is not needed).

k-diffusion, ComfyUI and many research repositories call samplers as ``sample(model, x, sigmas,
extra_args=None, callback=None, disable=None)``: ``model(x, sigma, **extra_args)`` is a *denoiser* (it returns
the ``x0`` estimate), ``x`` is the variance-exploding sample ``y = x_vp / sqrt(abar)`` whose noise level is
``sigma`` = pndmkit's noise-to-signal ratio ``s``, and ``sigmas`` is a decreasing grid of noise levels, often
ending at 0. In those variables the probability-flow ODE is ``dy/dsigma = (y - D(y, sigma)) / sigma``, the
same ODE ``dy/ds = eps`` that every pndmkit method integrates (docs/theory.md).

:func:`sample` runs any fixed-step method there: the method runs on :class:`SigmaVP`, the VP schedule whose
time *is* ``sigma`` (``abar = 1 / (1 + sigma^2)``), so stages placed at the ``t``-midpoint sit at the
``sigma``-midpoint and the DDIM transfer is k-diffusion's Euler step ``y + (sigma' - sigma) (y - D) / sigma``.
The denoiser's output is converted to ``eps`` at each evaluation, before any combination.

``sample_<name>`` (``sample_f_pndm``, ``sample_prk_s``, ...) exists for every fixed-step method in
:data:`pndmkit.METHODS`, methods registered later included, for code that looks samplers up by name.

A method that evaluates the model at the end of a step (``pie``, ``prk``, ``rk4``, ``pece-s``, ...) would
evaluate the denoiser at ``sigma = 0`` on grids ending there, where ``eps`` cannot be recovered from it; it is
refused with a message (pass ``sigmas[:-1]`` and take the last step yourself, or a method that evaluates at
step starts only: ``ddim``, ``ipndm``, ``ipndm-v``, and ``plms`` / ``s-pndm`` / ``f-pndm`` once their warm-up
is over before the last step).

Examples
--------
>>> import numpy as np
>>> denoiser = lambda x, sigma: np.full_like(x, 0.5)    # exact when all data sit at 0.5
>>> y = 0.5 + 10.0 * np.array([[0.3, -1.2]])              # x0 + sigma * noise at sigma = 10
>>> sample(denoiser, y, [10.0, 5.0, 1.0, 0.0], method="ipndm", disable=True).round(12).tolist()
[[0.5, 0.5]]
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Union

import numpy as np
from numpy.typing import ArrayLike

from pndmkit import schedules as _schedules
from pndmkit.adaptive import AdaptiveIntegrator
from pndmkit.integrator import Integrator
from pndmkit.methods import DEFAULT_METHOD, METHODS, MethodSpec, get_method

__all__ = ["SigmaVP", "sample", "sampler"]

Denoiser = Callable[..., Any]
_Base = getattr(_schedules, "VPSchedule", _schedules.NoiseSchedule)


def _arr(t: ArrayLike) -> Any:
    return np.asarray(t, dtype=np.float64)


def _out(v: Any) -> Any:
    return float(v) if np.ndim(v) == 0 else v


class SigmaVP(_Base):  # type: ignore[misc, valid-type]
    r"""The VP schedule whose time is k-diffusion's ``sigma``: ``abar(t) = 1 / (1 + t^2)``, so ``s(t) = t``.

    Parameters
    ----------
    sigma_max : float
        End of the domain ``[0, sigma_max]`` (and default start).

    Examples
    --------
    >>> sched = SigmaVP(80.0)
    >>> round(float(sched.s(3.0)), 12), round(float(sched.abar(1.0)), 12)
    (3.0, 0.5)
    """

    continuous = True

    def __init__(self, sigma_max: float = 80.0) -> None:
        sigma_max = float(sigma_max)
        if not (math.isfinite(sigma_max) and sigma_max > 0):
            raise ValueError(f"sigma_max must be a finite number > 0, got {sigma_max!r}")
        self.sigma_max = sigma_max
        self.t_min, self.t_max, self.t_start, self.t_end = 0.0, sigma_max, sigma_max, 0.0

    def __repr__(self) -> str:
        return f"SigmaVP(sigma_max={self.sigma_max})"

    def log_abar(self, t: ArrayLike) -> Any:
        return _out(-np.log1p(_arr(t) ** 2))

    def dlog_abar(self, t: ArrayLike) -> Any:
        t = _arr(t)
        return _out(-2.0 * t / (1.0 + t**2))

    def t_from_log_abar(self, log_abar: ArrayLike) -> Any:
        return _out(np.sqrt(np.expm1(-_arr(log_abar))))

    # the (alpha, sigma) description, for schedule APIs that ask for it
    def alpha(self, t: ArrayLike) -> Any:
        return _out(1.0 / np.sqrt(1.0 + _arr(t) ** 2))

    def sigma(self, t: ArrayLike) -> Any:
        t = _arr(t)
        return _out(t / np.sqrt(1.0 + t**2))

    def dalpha(self, t: ArrayLike) -> Any:
        t = _arr(t)
        return _out(-t * (1.0 + t**2) ** -1.5)

    def dsigma(self, t: ArrayLike) -> Any:
        return _out((1.0 + _arr(t) ** 2) ** -1.5)

    def t_from_s(self, s: ArrayLike) -> Any:
        return _out(_arr(s) + 0.0)


def _sigmas(sigmas: Any) -> list[float]:
    values = sigmas.tolist() if hasattr(sigmas, "tolist") else list(sigmas)
    try:
        out = [float(s) for s in values]
    except (TypeError, ValueError):
        raise TypeError(f"sigmas must be a 1-D sequence of numbers, got {type(sigmas).__name__}") from None
    if len(out) < 2:
        raise ValueError(f"sigmas must hold at least 2 noise levels, got {len(out)}")
    for i, (a, b) in enumerate(zip(out, out[1:])):
        if not (math.isfinite(a) and b < a and b >= 0):
            raise ValueError(f"sigmas must be finite, >= 0 and strictly decreasing; sigmas[{i}]={a!r}, "
                             f"sigmas[{i + 1}]={b!r}")
    return out


def _integrator(method: Union[str, MethodSpec, Integrator], sigma_max: float) -> Integrator:
    if isinstance(method, Integrator):
        schedule = method.transfer.schedule
        if not isinstance(schedule, SigmaVP) or schedule.sigma_max < sigma_max:
            raise ValueError(f"method is an Integrator on {schedule!r}; build it on SigmaVP(sigma_max) with "
                             f"sigma_max >= sigmas[0] = {sigma_max}")
        return method
    spec = method if isinstance(method, MethodSpec) else get_method(method)
    built = spec.build(SigmaVP(sigma_max))
    if isinstance(built, AdaptiveIntegrator):
        raise ValueError(f"method={spec.name!r} is adaptive: it chooses its own steps, not the given sigmas")
    return built


def _batch_sigma(x: Any, sigma: float) -> Any:
    """``sigma`` as k-diffusion passes it: one value per batch element (``sigma * x.new_ones([batch])``)."""
    if hasattr(x, "new_ones"):
        return x.new_ones([x.shape[0]]) * sigma
    return np.full(x.shape[0], sigma, dtype=x.dtype)


def _progress(total: int, disable: Optional[bool]) -> Any:
    if disable:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with the torch extra
        return None
    return tqdm(total=total)


def sample(model: Denoiser, x: Any, sigmas: Any, method: Union[str, MethodSpec, Integrator] = DEFAULT_METHOD,
           extra_args: Optional[dict] = None, callback: Optional[Callable[[dict], Any]] = None,
           disable: Optional[bool] = None) -> Any:
    """Sample with a pndmkit method in k-diffusion's conventions.

    Parameters
    ----------
    model : callable
        Denoiser ``model(x, sigma, **extra_args)`` returning the ``x0`` estimate; ``sigma`` has one entry
        per batch element (the first axis of ``x``).
    x : torch.Tensor or numpy.ndarray
        Sample at ``sigmas[0]`` in k-diffusion's scaling (``x0 + sigma * noise``).
    sigmas : sequence of float or tensor
        Noise levels, strictly decreasing, ``>= 0`` (the last may be 0).
    method : str, MethodSpec or Integrator
        A fixed-step method of :data:`pndmkit.METHODS`, or an Integrator built on :class:`SigmaVP`.
    extra_args : dict, optional
        Keyword arguments of every model call (conditioning).
    callback : callable, optional
        Called as k-diffusion does, ``callback({"x", "i", "sigma", "sigma_hat", "denoised"})``, at the
        evaluation at the start of step ``i`` (every step of a method that evaluates there).
    disable : bool, optional
        Turn the progress bar off.

    Returns
    -------
    array
        The sample at ``sigmas[-1]`` in k-diffusion's scaling.

    Raises
    ------
    TypeError, ValueError
        Bad ``sigmas``, an adaptive or unknown method, or a method that would evaluate at ``sigma = 0``.
    """
    levels = _sigmas(sigmas)
    integrator = _integrator(method, levels[0])
    extra = dict(extra_args or {})
    scale = lambda s: math.sqrt(1.0 + s * s)  # noqa: E731  (y = x_vp * sqrt(1 + sigma^2))
    run = integrator.start(x / scale(levels[0]), levels, prediction="x0")
    bar = _progress(len(levels) - 1, disable)
    while not run.done:
        x_vp, s = run.ask()
        if s == 0.0:
            raise ValueError(f"{integrator.name or 'the method'} evaluates the denoiser at sigma = 0 (the end of a "
                             f"step), where eps cannot be recovered from an x0 estimate; pass sigmas[:-1] or a "
                             f"method that evaluates only at step starts")
        y = x_vp * scale(s)
        denoised = model(y, _batch_sigma(y, s), **extra)
        at_start, index = not run.told and s == run.t, run.index
        run = run.tell(denoised)
        if callback is not None and at_start:
            callback({"x": y, "i": index, "sigma": levels[index], "sigma_hat": levels[index], "denoised": denoised})
        if bar is not None and run.index != index:
            bar.update(run.index - index)
    if bar is not None:
        bar.close()
    return run.solution().x * scale(levels[-1])


def sampler(method: Union[str, MethodSpec]) -> Callable[..., Any]:
    """``sample`` with ``method`` fixed: ``sampler("f-pndm")(model, x, sigmas, extra_args, callback, disable)``."""
    spec = method if isinstance(method, MethodSpec) else get_method(method)

    def run(model: Denoiser, x: Any, sigmas: Any, extra_args: Optional[dict] = None,
            callback: Optional[Callable[[dict], Any]] = None, disable: Optional[bool] = None) -> Any:
        return sample(model, x, sigmas, method=spec, extra_args=extra_args, callback=callback, disable=disable)

    run.__name__ = run.__qualname__ = "sample_" + spec.name.replace("-", "_")
    run.__doc__ = f"k-diffusion-style sampler of pndmkit's {spec.name!r} (see :func:`sample`)."
    return run


def _by_function_name(attr: str) -> Optional[str]:
    if not attr.startswith("sample_"):
        return None
    suffix = attr[len("sample_"):]
    return next((name for name, spec in METHODS.items()
                 if name.replace("-", "_") == suffix and not spec.adaptive), None)


def __getattr__(attr: str) -> Any:
    """``sample_<name>`` for every fixed-step registered method (hyphens written as underscores)."""
    name = _by_function_name(attr)
    if name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
    return sampler(name)


def __dir__() -> list[str]:
    named = ["sample_" + name.replace("-", "_") for name, spec in METHODS.items() if not spec.adaptive]
    return sorted(set(globals()) | set(named))
