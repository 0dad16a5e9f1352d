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

Every fixed-step method of :data:`pndmkit.METHODS` (methods registered later included) has a sampler whose
name is a Python identifier, :func:`sampler_name`: ``sample_f_pndm``, ``sample_prk_s``,
``sample_dpm_solver_pp_2m`` for ``dpm-solver++-2m``; :data:`SAMPLERS` maps these names to the samplers, one
name per method, for code that looks samplers up by name, and the module exposes them as attributes.

k-diffusion's own names mean k-diffusion's algorithms here, so that code written for ``import k_diffusion.sampling
as K`` runs the same method with this module in its place (:data:`K_DIFFUSION_EQUIVALENTS`): ``sample_euler``
(Karras et al. 2022, Algorithm 2 with Euler steps) is pndmkit's ``ddim``, ``sample_heun`` (Algorithm 2) is ``pie``,
``sample_lms`` (linear multistep in ``sigma``, ``order=4``) is ``ipndm-v`` (``order=1`` is ``ddim``; other orders
are refused by name) and ``sample_dpmpp_2m`` is ``dpm-solver++-2m`` without its lowered last step
(``lower_order_final=False``: k-diffusion takes a first-order step only first and to ``sigma = 0``; the registered
method also lowers the last step of fewer than 15, as diffusers does, which is the same step on sigmas ending at 0
but not on sigmas ending above 0). These equivalences hold on any strictly decreasing sigmas, ending at 0 or above
it (a split schedule's second half, as ComfyUI's ``SplitSigmas`` gives, included):
``tests/test_integrations_k_diffusion.py`` checks each to 1e-12. k-diffusion's other samplers have no deterministic
equivalent here (:data:`K_DIFFUSION_WITHOUT_EQUIVALENT`: ancestral and SDE samplers add noise; ``sample_dpm_2``,
``sample_dpm_fast`` and ``sample_dpm_adaptive`` are single-step solvers pndmkit does not have): those names are not
defined, and reading one raises ``AttributeError`` naming the nearest sampler here. A pndmkit method whose
``sample_<identifier>`` would be one of k-diffusion's names gets the suffix ``_pndmkit`` instead: pndmkit's
``euler`` (classical Euler on the VP sample ``x``, not k-diffusion's Euler on ``x / alpha``) is
``sample_euler_pndmkit``.

ComfyUI ships its own copy of k-diffusion's module (``comfy/k_diffusion/sampling.py``) with more samplers, some named
as pndmkit's methods; there too a name means ComfyUI's algorithm, checked against its definition on Karras sigmas
(:data:`COMFYUI_EQUIVALENTS`). ComfyUI's ``sample_ipndm`` (``max_order=4``; ``max_order=1`` is ``ddim``, others are
refused by name) is AB1-AB4 with fixed weights and a data step ``x = D(x, sigma)`` to ``sigma = 0``: pndmkit's
``ipndm-lof1`` on sigmas ending at 0 and ``ipndm`` otherwise, so pndmkit's ``ipndm`` is ``sample_ipndm_pndmkit``.
ComfyUI's ``sample_ipndm_v`` uses order-4 weights that are not Adams-Bashforth's ((57, -65, 43, -11)/24 on
uniform steps) and ``sample_deis`` interpolates in the time of a fitted VP schedule with a numerical integral: neither
has an equivalent here (:data:`COMFYUI_WITHOUT_EQUIVALENT`), reading one raises ``AttributeError`` naming the nearest
sampler, and pndmkit's ``ipndm-v`` is ``sample_ipndm_v_pndmkit`` (also k-diffusion's ``sample_lms``; ComfyUI's
``sample_lms`` differs from k-diffusion's on its last step to 0, a data step, and ``sample_lms`` here is
k-diffusion's). ComfyUI's ``sample_euler``, ``sample_heun`` and ``sample_dpmpp_2m`` are k-diffusion's. Its other
names (noise-adding, CFG++ and samplers pndmkit does not have, such as ``sample_res_multistep``) are in
:data:`COMFYUI_WITHOUT_EQUIVALENT` too: not defined, and reading one raises ``AttributeError`` saying why.

Every name of k-diffusion or ComfyUI without an equivalent here is reserved for their algorithm
(:data:`pndmkit.methods.RESERVED_NAMES`, in every spelling with the same :func:`pndmkit.methods.identifier`:
``res_multistep``, ``res-multistep``): :func:`pndmkit.register_method` refuses it, so no later method can run another
algorithm under that name here, and ``sample(..., method="res_multistep")``, :func:`sampler` and
:func:`pndmkit.methods.get_method` say that pndmkit does not implement it.

Sigmas ending at 0 are taken by every method without evaluating the denoiser at ``sigma = 0``, where ``eps``
cannot be recovered from it: a method that evaluates at step starts takes its own last step, a
predictor-corrector its predictor, and a step with a stage at the end (``pie``, ``prk``, ``rk4``, a
Runge-Kutta warm-up) the first-order data step ``x = D(x, sigma)``, as k-diffusion's Heun does (:func:`sample`,
Notes). k-diffusion's keywords ``s_churn``, ``s_tmin``, ``s_tmax``, ``s_noise``, ``eta`` and
``noise_sampler`` are accepted where they add no noise (every method here is deterministic) and refused by
name otherwise; like k-diffusion's samplers these run under ``torch.no_grad()``.

Examples
--------
>>> import numpy as np
>>> denoiser = lambda x, sigma: np.full_like(x, 0.5)    # exact when all data sit at 0.5
>>> y = 0.5 + 10.0 * np.array([[0.3, -1.2]])              # x0 + sigma * noise at sigma = 10
>>> sample(denoiser, y, [10.0, 5.0, 1.0, 0.0], method="ipndm", disable=True).round(12).tolist()
[[0.5, 0.5]]
"""

from __future__ import annotations

import contextlib
import inspect
import math
import warnings
from collections.abc import Mapping
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np
from numpy.typing import ArrayLike

from pndmkit import schedules as _schedules
from pndmkit._backend import all_finite, match_dtype
from pndmkit._checks import reject_unknown, with_article
from pndmkit.adaptive import AdaptiveIntegrator
from pndmkit.exponential import dpm_solver_multistep
from pndmkit.integrator import Integrator
from pndmkit.methods import (DEFAULT_METHOD, METHODS, RESERVED_NAMES, MethodSpec, check_method_type, get_method,
                             identifier)
from pndmkit.models import converted_from
from pndmkit.sampling import START_SCALE_FACTOR, PriorScaleWarning, check_start, start_scale_low_factor
from pndmkit.transfers import DataTransfer

__all__ = ["SigmaVP", "sample", "sampler", "sampler_name", "SAMPLERS", "NOISE_KEYWORDS", "K_DIFFUSION_EQUIVALENTS",
           "K_DIFFUSION_WITHOUT_EQUIVALENT", "LMS_ORDERS", "COMFYUI_EQUIVALENTS", "COMFYUI_WITHOUT_EQUIVALENT",
           "IPNDM_MAX_ORDERS", "CLASH_SUFFIX"]

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

    def ode_coefficients(self, t: float) -> tuple[float, float]:
        """``(alpha'/alpha, alpha s') = (-t / (1 + t^2), 1 / sqrt(1 + t^2))``: the probability-flow ODE in
        ``t = sigma`` is regular at ``sigma = 0`` (``s' = 1``), where the VP form ``abar' / sqrt(1 - abar)`` is
        0/0, so classical methods (``euler``, ``fon``) take steps to ``sigma = 0``."""
        t = float(t)
        return -t / (1.0 + t * t), 1.0 / math.sqrt(1.0 + t * t)


def _sigmas(sigmas: Any) -> list[float]:
    shape = getattr(sigmas, "shape", None)
    if shape is not None and len(shape) != 1:
        rows = [int(n) for n in shape if int(n) > 1]
        if len(shape) == 0:
            advice = ""
        elif len(rows) <= 1:  # (1, N) or (N, 1): one sequence with extra axes
            advice = "; it holds one sequence of levels: pass sigmas.flatten()"
        else:  # (2, 11): a row of levels per sample, which flatten() would join into one sequence
            advice = ("; sigmas is one sequence of noise levels shared by the whole batch (each step calls the model "
                      "at one sigma for every sample, as k-diffusion does); a batch of sigma rows is not supported: "
                      "call the sampler once per row, with sigmas[i] and the samples that row is for")
        raise TypeError(f"sigmas must be a 1-D sequence of numbers, got {type(sigmas).__name__} of shape "
                        f"{tuple(shape)}{advice}")
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
    check_method_type(method, (Integrator,))
    if isinstance(method, Integrator):
        schedule = method.transfer.schedule
        if not isinstance(schedule, SigmaVP) or schedule.sigma_max < sigma_max:
            raise ValueError(f"method is an Integrator on {schedule!r}; build it on SigmaVP(sigma_max) with "
                             f"sigma_max >= sigmas[0] = {sigma_max}")
        return method
    spec = method if isinstance(method, MethodSpec) else get_method(method)
    built = spec.build(SigmaVP(sigma_max))
    if isinstance(built, AdaptiveIntegrator):
        raise ValueError(_adaptive_message(spec.name))
    return built


def _adaptive_message(name: str) -> str:
    return (f"method={name!r} is adaptive: it chooses its own steps, so it has no k-diffusion-style sampler over "
            f"given sigmas; run it with pndmkit.sample(model, x, schedule=..., method={name!r})")


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


#: k-diffusion's keywords of stochastic sampling and the values at which they add no noise: churn
#: (``s_churn``, applied between ``s_tmin`` and ``s_tmax``, scaled by ``s_noise``) and ancestral noise
#: (``eta``, drawn by ``noise_sampler``, scaled by ``s_noise``)
NOISE_KEYWORDS = {"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": math.inf, "s_noise": 1.0, "eta": 0.0,
                  "noise_sampler": None}
_KEYWORDS = ("model", "x", "sigmas", "method", "extra_args", "callback", "disable", *NOISE_KEYWORDS)


def _option_number(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not hasattr(value, "__float__") or np.ndim(value) != 0:
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    out = float(value)
    if math.isnan(out):
        raise ValueError(f"{name} must be a number, got nan")
    return out


def _check_noise_keywords(method: str, options: dict[str, Any]) -> None:
    """Accept k-diffusion's noise keywords where they add no noise; refuse them by name otherwise."""
    reject_unknown("sample", {k: v for k, v in options.items() if k not in NOISE_KEYWORDS}, _KEYWORDS)
    values = {name: _option_number(options[name], name) for name in ("s_churn", "s_tmin", "s_tmax", "s_noise", "eta")
              if name in options}
    for name, what in (("s_churn", "churn (noise added before each step, Karras et al. 2022, Algorithm 2)"),
                       ("eta", "ancestral noise (eta > 0 re-noises after each step)")):
        if values.get(name, 0.0) != 0.0:
            raise ValueError(f"{name}={options[name]!r} asks for {what}; pndmkit's {method!r} is a deterministic "
                             f"sampler of the probability-flow ODE: pass {name}=0 (the default) or use a stochastic "
                             f"sampler")
    sampler_ = options.get("noise_sampler")
    if sampler_ is not None and not callable(sampler_):
        raise TypeError(f"noise_sampler must be callable as noise_sampler(sigma, sigma_next) or None, got "
                        f"{type(sampler_).__name__}")


def _no_grad(x: Any) -> Any:
    if hasattr(x, "new_ones"):  # a torch tensor: torch is imported
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def sample(model: Denoiser, x: Any, sigmas: Any, method: Union[str, MethodSpec, Integrator] = DEFAULT_METHOD,
           extra_args: Optional[dict] = None, callback: Optional[Callable[[dict], Any]] = None,
           disable: Optional[bool] = None, **options: Any) -> Any:
    """Sample with a pndmkit method in k-diffusion's conventions.

    Parameters
    ----------
    model : callable
        Denoiser ``model(x, sigma, **extra_args)`` returning the ``x0`` estimate; ``sigma`` has one entry
        per batch element (the first axis of ``x``).
    x : torch.Tensor or numpy.ndarray
        Sample at ``sigmas[0]``, shape ``(batch, ...)`` (at least one axis: the batch one ``sigma`` follows),
        floating dtype, finite entries (checked as :func:`pndmkit.sample` checks ``x_T``), in k-diffusion's scaling: ``x0 + sigma * noise``, so a start from noise is
        ``noise * sigmas[0]`` (k-diffusion's ``torch.randn(...) * sigmas[0]``), not unit noise. A start whose
        root mean square is below ``sigmas[0] / 4`` (with fewer than 8 entries further below:
        :func:`pndmkit.sampling.start_scale_low_factor`) or above ``4 sqrt(1 + sigmas[0]^2)`` warns
        (:class:`pndmkit.PriorScaleWarning`, naming the line that called the sampler).
    sigmas : sequence of float or tensor
        Noise levels, strictly decreasing, ``>= 0`` (the last may be 0, as k-diffusion's ``get_sigmas_*`` give):
        one 1-D sequence shared by the whole batch (a 2-D batch of rows is refused).
    method : str, MethodSpec or Integrator
        A fixed-step method of :data:`pndmkit.METHODS`, or an Integrator built on :class:`SigmaVP`.
    extra_args : dict, optional
        Keyword arguments of every model call (conditioning).
    callback : callable, optional
        Called as k-diffusion does, ``callback({"x", "i", "sigma", "sigma_hat", "denoised"})``, at the
        evaluation at the start of step ``i`` (every step of a method that evaluates there), after the method has
        taken ``denoised``: writing into ``denoised`` or ``x`` changes nothing (as in k-diffusion's ``sample_euler``,
        ``sample_heun`` or ``sample_lms``, which take their derivative first). The denoiser may return one
        preallocated buffer every call.
    disable : bool, optional
        Turn the progress bar off.
    s_churn, s_tmin, s_tmax, s_noise, eta, noise_sampler : optional
        k-diffusion's noise keywords (:data:`NOISE_KEYWORDS`). Every pndmkit method is deterministic: they are
        accepted where they add no noise (``s_churn = 0`` and ``eta = 0``, the defaults; then ``s_tmin``,
        ``s_tmax``, ``s_noise`` and ``noise_sampler`` change nothing, as in k-diffusion) and refused by name
        otherwise.

    Returns
    -------
    array
        The sample at ``sigmas[-1]`` in k-diffusion's scaling, in ``x``'s dtype, without an autograd graph:
        like k-diffusion's samplers this one runs under ``torch.no_grad()`` (to differentiate through a
        sampler use :func:`pndmkit.sample` or ``Integrator.start``, which follow torch's grad mode).

    Raises
    ------
    TypeError, ValueError
        Bad ``sigmas``; an ``x`` that is not a floating array or tensor with a batch axis, or has a NaN or
        infinite entry; an adaptive or unknown method, a ``method`` of another type (``None``: the ``TypeError`` of
        :func:`pndmkit.sample`), a model that returns ``eps`` instead of ``x0`` (a
        :func:`pndmkit.models.guided` model), ``s_churn`` or ``eta`` other than 0, an unknown keyword; a denoiser
        output that is not an array shaped like ``x`` (``ValueError`` naming the denoiser, the sigma it was called
        at, the shape returned and the shape expected).
    FloatingPointError
        The sample at ``sigmas[-1]`` has a NaN or infinite entry (a denoiser that returned one), checked once at
        the end of the run as :func:`pndmkit.sample` checks it, with no per-step synchronisation; the sample is
        the exception's ``x`` attribute.

    Notes
    -----
    On sigmas ending at 0 every method takes its last step to 0 without evaluating the denoiser there (where
    ``eps = (x - D) / sigma`` is 0/0): a method that evaluates only at step starts (``ddim``, ``ipndm``, the
    multistep methods after their warm-up) takes its own last step; a predictor-corrector (``pec-s``,
    ``pece-s``) takes its predictor (order ``p - 1``) and skips the corrector; a method with a stage at the
    step's end (``pie``, ``prk``, ``prk-s``, ``rk4``, a Runge-Kutta warm-up) takes the first-order data step
    ``x = D(x, sigma)`` from its evaluation at the step's start, as k-diffusion's Heun and DPM-Solver samplers
    do, with no evaluation wasted (for ``pie`` that is its own Euler predictor).
    """
    levels = _sigmas(sigmas)
    integrator = _integrator(method, levels[0])
    _check_noise_keywords(integrator.name or "the method", options)
    if converted_from(model) is not None:
        raise ValueError(f"model returns eps (it converts its network's {converted_from(model)!r} prediction); "
                         f"k-diffusion-style samplers take a denoiser model(x, sigma) that returns x0")
    if not (hasattr(x, "shape") and hasattr(x, "dtype")) or isinstance(x, np.generic):
        raise TypeError(f"x must be a torch.Tensor or numpy.ndarray (the sample at sigmas[0]), got "
                        f"{type(x).__name__}: convert it first (torch.as_tensor(x) or numpy.asarray(x))")
    if len(x.shape) == 0:
        raise ValueError("x must have a batch axis first, shape (batch, ...), as k-diffusion's samplers take it "
                         "(model(x, sigma) gets one sigma per batch element), got a 0-d array; pass x[None]")
    # pndmkit.sample's checks of x_T: floating dtype, finite entries; the scale measured with the same device sync
    measured_rms = check_start(x, "x")
    if extra_args is not None and not isinstance(extra_args, Mapping):
        raise TypeError(f"extra_args must be a dict of keyword arguments of every model call, got "
                        f"{type(extra_args).__name__} {extra_args!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(dict) or None, got {type(callback).__name__} "
                        f"{callback!r}")
    extra = dict(extra_args or {})
    _check_scale(measured_rms, levels[0], int(x.numel()) if hasattr(x, "numel") else int(np.size(x)))
    with _no_grad(x):
        return _drive(integrator, model, x, levels, extra, callback, disable)


def _check_scale(rms: Optional[float], sigma: float, size: int) -> None:
    """Warn (:class:`pndmkit.PriorScaleWarning`) when ``x``, of root mean square ``rms`` over ``size`` entries, is
    not a sample ``x0 + sigma * noise`` at ``sigma = sigmas[0]``: below ``sigma / F_n`` (the least such a sample
    has whatever the data; ``F_n =`` :func:`pndmkit.sampling.start_scale_low_factor` of the size, 4 from 8 entries
    up) or above ``F sqrt(1 + sigma^2)`` (its root mean square for unit-variance data, times ``F``),
    ``F =`` :data:`pndmkit.sampling.START_SCALE_FACTOR`; the bounds of :func:`pndmkit.sampling.check_start_scale`
    in k-diffusion's variables. The warning names the caller of :func:`sample` or of a sampler."""
    if rms is None:
        return
    scale, factor = math.sqrt(1.0 + sigma * sigma), START_SCALE_FACTOR
    low = start_scale_low_factor(size)
    if sigma / low <= rms <= factor * scale:
        return
    if rms < sigma / low:
        times = f"{sigma / rms:.3g} times" if rms > 0 else "infinitely far"
        what = (f"{times} below sigmas[0] = {sigma:.6g}, the least root mean square a start x = x0 + sigmas[0] * "
                f"noise has (a start from noise has about {scale:.6g})")
    else:
        what = (f"{rms / scale:.3g} times above {scale:.6g}, the root mean square of x = x0 + sigmas[0] * noise for "
                f"unit-variance data")
    level, frame = 1, inspect.currentframe()
    while frame is not None and frame.f_globals.get("__name__") == __name__:  # the first frame outside this module
        level, frame = level + 1, frame.f_back
    warnings.warn(f"x has root mean square {rms:.4g}, {what}; k-diffusion's samplers take x = x0 + sigma * noise: "
                  f"start from noise with x = noise * sigmas[0]", PriorScaleWarning, stacklevel=level)


def _check_denoised(model: Denoiser, denoised: Any, y: Any, sigma: float) -> None:
    """Refuse a denoiser output that is not an array shaped like the sample ``y`` it was called on at ``sigma``,
    naming the denoiser, that sigma (k-diffusion's noise level, not pndmkit's time), the shape returned and the
    shape expected. The output's array type, device, dtype and finiteness are checked where the method takes it."""
    expected = tuple(y.shape)
    array = hasattr(denoised, "shape") and hasattr(denoised, "dtype")
    if array and tuple(denoised.shape) == expected:
        return
    name = getattr(model, "__qualname__", None) or type(model).__name__
    got = f"{type(denoised).__name__} of shape {tuple(denoised.shape)}" if array else \
        f"{with_article(type(denoised).__name__)}, not an array"
    raise ValueError(f"denoiser {name!r} called at sigma={sigma!r} returned {got}; expected shape {expected}, the "
                     f"shape of x (model(x, sigma) returns the x0 estimate, shaped like x)")


def _drive(integrator: Integrator, model: Denoiser, x: Any, levels: list[float], extra: dict,
           callback: Optional[Callable[[dict], Any]], disable: Optional[bool]) -> Any:
    scale = lambda s: math.sqrt(1.0 + s * s)  # noqa: E731  (y = x_vp * sqrt(1 + sigma^2))
    last = len(levels) - 2  # index of the last step
    run = integrator.start(x / scale(levels[0]), levels, prediction="x0", check_x=False)  # x checked by sample
    bar = _progress(len(levels) - 1, disable)

    def evaluate(x_vp: Any, s: float) -> tuple[Any, Any]:
        y = x_vp * scale(s)
        denoised = model(y, _batch_sigma(y, s), **extra)
        _check_denoised(model, denoised, y, s)
        return y, denoised

    def call_back(y: Any, index: int, denoised: Any) -> None:
        """k-diffusion's callback at a step's start, once the run has taken ``denoised`` (its gradient is a new
        array): a callback that writes into ``denoised`` changes nothing, as in k-diffusion's samplers that take
        their derivative before the callback (``sample_euler``, ``sample_lms``, ...)."""
        callback({"x": y, "i": index, "sigma": levels[index], "sigma_hat": levels[index], "denoised": denoised})

    def end_without_zero(start: Any, denoised: Any) -> Any:
        """The end of the last step without an evaluation at sigma = 0, or ``None`` if the step makes none.

        ``start`` was just asked at the step's start and ``denoised`` is the denoiser there. If the method's next
        request is at 0, its point is the method's own estimate of the end from that evaluation and the history
        (a predictor-corrector's predictor; Heun's Euler step): take it. If interior stages come first (a
        Runge-Kutta step), take the data step ``D`` instead of spending them. Probing tells ``denoised`` again at
        the stages: the times a fixed-step method asks for do not depend on the values, and runs are immutable.
        """
        branch, first = start.tell(denoised), True
        while not branch.done:
            point, s = branch.ask()
            if s == 0.0:
                return point if first else denoised
            branch, first = branch.tell(denoised), False
        return None

    result = None
    while not run.done:
        x_vp, s = run.ask()
        index, at_start = run.index, not run.told and s == run.t
        if s == 0.0:  # the last step of sigmas ending at 0 reached an evaluation at 0 before any in the step
            result = x_vp  # the end point predicted from the history (a predictor-corrector's predictor)
            break
        y, denoised = evaluate(x_vp, s)
        if levels[-1] == 0.0 and index == last and at_start:
            result = end_without_zero(run, denoised)
            if result is not None:
                if callback is not None:
                    call_back(y, index, denoised)
                break
        run = run.tell(denoised)
        if callback is not None and at_start:
            call_back(y, index, denoised)
        if bar is not None and run.index != index:
            bar.update(run.index - index)
    if bar is not None:
        if result is not None:
            bar.update(1)
        bar.close()
    if result is None:  # Run.solution checks the end once for NaN and inf, as pndmkit.sample does; so does this
        try:
            return run.solution().x * scale(levels[-1])
        except FloatingPointError as exc:
            raise _not_finite(integrator, levels, exc.run.x * scale(levels[-1])) from None  # type: ignore[attr-defined]
    if not all_finite(result):
        raise _not_finite(integrator, levels, result)
    return match_dtype(result, x)


def _not_finite(integrator: Integrator, levels: list[float], y: Any) -> FloatingPointError:
    """The error of a run whose end ``y`` has a NaN or infinite entry from a finite start; ``y`` travels as its
    ``x`` attribute."""
    err = FloatingPointError(
        f"the sample at sigmas[-1] = {levels[-1]:g} of pndmkit's {integrator.name or 'method'!r} is not finite "
        f"(NaN or inf) although x was: the denoiser returned a NaN or infinite x0 at some sigma (or the steps "
        f"overflowed); check model(x, sigma) on these sigmas")
    err.x = y  # type: ignore[attr-defined]
    return err


#: k-diffusion's sampler names (``k_diffusion.sampling``) that mean the same algorithm here -> the pndmkit
#: method that is it (``tests/test_integrations_k_diffusion.py`` checks each against the algorithm written from
#: its definition, to 1e-12, on sigmas ending at 0 and above 0): Euler and Heun steps of Karras et al. (2022),
#: Algorithm 2, without churn; the linear multistep method in sigma (order 4); DPM-Solver++(2M) (Lu et al. 2022,
#: arXiv 2211.01095, Algorithm 2), which ``sample_dpmpp_2m`` runs with ``lower_order_final=False`` (the registered
#: ``dpm-solver++-2m`` is the same numbers on sigmas ending at 0 and on 15 steps or more)
K_DIFFUSION_EQUIVALENTS: Mapping[str, str] = {"sample_euler": "ddim", "sample_heun": "pie", "sample_lms": "ipndm-v",
                                              "sample_dpmpp_2m": "dpm-solver++-2m"}

#: k-diffusion's ``sample_lms(order=...)`` values that have an equivalent here -> the pndmkit method
LMS_ORDERS: Mapping[int, str] = {1: "ddim", 4: "ipndm-v"}

#: k-diffusion's other sampler names -> why this module does not define them, and the nearest sampler here (the
#: k-diffusion entries of :data:`pndmkit.methods.RESERVED_NAMES`, which reserves these names for k-diffusion's
#: algorithms: no registered method can take them)
K_DIFFUSION_WITHOUT_EQUIVALENT: Mapping[str, str] = {f"sample_{name}": why for name, (whose, why) in
                                                     RESERVED_NAMES.items() if whose == "k-diffusion"}

#: ComfyUI's sampler names (``comfy/k_diffusion/sampling.py`` in the ComfyUI repository, its copy of
#: k-diffusion's module with more samplers) that are not k-diffusion's and mean the same algorithm here -> (the
#: pndmkit method on sigmas ending at 0, the one on sigmas ending above 0); ``tests/test_integrations_k_diffusion.py``
#: checks each against the algorithm written from its definition, to 1e-12. ComfyUI's iPNDM (``max_order=4``: AB1,
#: AB2, AB3, then AB4 with the fixed weights (55, -59, 37, -9)/24 on ``d = (x - D) / sigma``) takes the data step
#: ``x = D(x, sigma)`` to ``sigma = 0``: that is the DDIM last step of pndmkit's ``ipndm-lof1``. ComfyUI's copies of
#: k-diffusion's ``sample_euler``, ``sample_heun`` and ``sample_dpmpp_2m`` are k-diffusion's algorithms; its
#: ``sample_lms`` also takes the data step to ``sigma = 0``, which k-diffusion's (the one ``sample_lms`` means here)
#: does not
COMFYUI_EQUIVALENTS: Mapping[str, tuple[str, str]] = {"sample_ipndm": ("ipndm-lof1", "ipndm")}

#: ComfyUI's ``sample_ipndm(max_order=...)`` values that have an equivalent here -> (the method on sigmas ending at 0,
#: the one on sigmas ending above 0)
IPNDM_MAX_ORDERS: Mapping[int, tuple[str, str]] = {1: ("ddim", "ddim"), 4: ("ipndm-lof1", "ipndm")}

#: ComfyUI's other sampler names (not k-diffusion's; noise-adding, CFG++, and methods pndmkit does not have, some
#: named as pndmkit's methods but another algorithm) -> why this module does not define them, and the nearest sampler
#: here (the ComfyUI entries of :data:`pndmkit.methods.RESERVED_NAMES`, which reserves these names for ComfyUI's
#: algorithms: no registered method can take them)
COMFYUI_WITHOUT_EQUIVALENT: Mapping[str, str] = {f"sample_{name}": why for name, (whose, why) in RESERVED_NAMES.items()
                                                 if whose == "ComfyUI"}

#: the suffix of a method's sampler name where ``sample_<identifier>`` is one of k-diffusion's or ComfyUI's names
#: that mean another algorithm here
CLASH_SUFFIX = "_pndmkit"


_FOREIGN_NAMES = frozenset(K_DIFFUSION_EQUIVALENTS) | frozenset(K_DIFFUSION_WITHOUT_EQUIVALENT) \
    | frozenset(COMFYUI_EQUIVALENTS) | frozenset(COMFYUI_WITHOUT_EQUIVALENT)


def sampler_name(method: Union[str, MethodSpec]) -> str:
    """The Python identifier of ``method``'s sampler: ``sample_`` + :func:`pndmkit.methods.identifier` of its
    name (``"dpm-solver++-2m"`` -> ``"sample_dpm_solver_pp_2m"``, ``"f-pndm-s"`` -> ``"sample_f_pndm_s"``), with
    :data:`CLASH_SUFFIX` appended where that is one of k-diffusion's or ComfyUI's sampler names, which mean their
    algorithms here or are refused (:data:`K_DIFFUSION_EQUIVALENTS`, :data:`COMFYUI_EQUIVALENTS`):
    ``"euler"`` -> ``"sample_euler_pndmkit"``, ``"ipndm"`` -> ``"sample_ipndm_pndmkit"``. The registry refuses two
    names with one identifier, so every sampler name is one method's."""
    check_method_type(method, ())
    name = method.name if isinstance(method, MethodSpec) else method
    out = "sample_" + identifier(name)
    if out in _FOREIGN_NAMES:
        out += CLASH_SUFFIX
    return out


def _alias_methods(attr: str) -> tuple[str, str]:
    """(method on sigmas ending at 0, method on sigmas ending above 0) of k-diffusion's or ComfyUI's name ``attr``."""
    if attr in K_DIFFUSION_EQUIVALENTS:
        return K_DIFFUSION_EQUIVALENTS[attr], K_DIFFUSION_EQUIVALENTS[attr]
    return COMFYUI_EQUIVALENTS[attr]


#: the keyword of an alias that picks among equivalents: (keyword, default, value -> (method on sigmas ending at 0,
#: method otherwise), the refusal of an integer without an equivalent, the values allowed)
_ALIAS_OPTIONS: dict[str, tuple[str, int, Mapping[int, tuple[str, str]], str, str]] = {
    "sample_lms": ("order", 4, {k: (v, v) for k, v in LMS_ORDERS.items()},
                   "k-diffusion's sample_lms of order {value!r} has no equivalent here",
                   "orders: 4 (pndmkit's 'ipndm-v', the default) and 1 (pndmkit's 'ddim')"),
    "sample_ipndm": ("max_order", 4, IPNDM_MAX_ORDERS,
                     "ComfyUI's sample_ipndm of max_order {value!r} has no equivalent here",
                     "max_orders: 4 (pndmkit's 'ipndm-lof1' on sigmas ending at 0, 'ipndm' otherwise; the default) "
                     "and 1 (pndmkit's 'ddim')"),
}


def _k_diffusion_dpmpp_2m(sigma_max: float) -> Integrator:
    """k-diffusion's DPM-Solver++(2M) on :class:`SigmaVP`: pndmkit's ``dpm-solver++-2m`` estimator without the lowered
    last step (``lower_order_final=False``). k-diffusion takes a first-order step only first and to ``sigma = 0``
    (where ``lambda`` is infinite, which every exponential multistep step takes at first order); the registered
    ``dpm-solver++-2m`` also lowers the last step of a grid of fewer than 15 steps, as diffusers does, which on
    sigmas ending at 0 is that same step to 0 and on sigmas ending above 0 is not."""
    return Integrator(dpm_solver_multistep(2, lower_order_final=False), DataTransfer(SigmaVP(sigma_max)),
                      "dpm-solver++-2m (lower_order_final=False)")


#: aliases that run an unregistered variant of their equivalent method: alias -> the builder on SigmaVP(sigmas[0])
_ALIAS_VARIANTS: dict[str, Callable[[float], Integrator]] = {"sample_dpmpp_2m": _k_diffusion_dpmpp_2m}


def _alias(attr: str) -> Callable[..., Any]:
    """k-diffusion's or ComfyUI's sampler ``attr`` (a key of :data:`K_DIFFUSION_EQUIVALENTS` or
    :data:`COMFYUI_EQUIVALENTS`) as its equivalent here."""
    at_zero, above_zero = _alias_methods(attr)
    option = _ALIAS_OPTIONS.get(attr)
    keywords = [k for k in _KEYWORDS if k != "method"] + ([option[0]] if option else [])

    def run(model: Denoiser, x: Any, sigmas: Any, extra_args: Optional[dict] = None,
            callback: Optional[Callable[[dict], Any]] = None, disable: Optional[bool] = None,
            **options: Any) -> Any:
        reject_unknown(attr, {k: v for k, v in options.items() if k not in NOISE_KEYWORDS and
                              (option is None or k != option[0])}, keywords)
        methods = (at_zero, above_zero)
        if option is not None:
            keyword, default, table, message, allowed = option
            value = options.pop(keyword, default)
            if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{keyword} must be an integer, got {type(value).__name__} {value!r}; {allowed}")
            if int(value) not in table:
                raise ValueError(f"{keyword}={value!r}: {message.format(value=value)}; {allowed}")
            methods = table[int(value)]
        levels = _sigmas(sigmas)
        method: Union[str, Integrator] = methods[0] if levels[-1] == 0.0 else methods[1]
        if attr in _ALIAS_VARIANTS:
            method = _ALIAS_VARIANTS[attr](levels[0])
        return sample(model, x, sigmas, method=method, extra_args=extra_args, callback=callback, disable=disable,
                      **options)

    run.__name__ = run.__qualname__ = attr
    if attr in _ALIAS_VARIANTS:
        run.__doc__ = (f"k-diffusion's {attr}, as pndmkit's {at_zero!r} without its lowered last step "
                       f"(lower_order_final=False; the same algorithm on any sigmas; see "
                       f":data:`K_DIFFUSION_EQUIVALENTS` and :func:`sample`).")
    elif at_zero == above_zero:
        run.__doc__ = (f"k-diffusion's {attr}, as pndmkit's {at_zero!r} (the same algorithm; see "
                       f":data:`K_DIFFUSION_EQUIVALENTS` and :func:`sample`).")
    else:
        run.__doc__ = (f"ComfyUI's {attr}, as pndmkit's {at_zero!r} on sigmas ending at 0 and {above_zero!r} on "
                       f"sigmas ending above 0 (the same algorithm; see :data:`COMFYUI_EQUIVALENTS` and "
                       f":func:`sample`).")
    return run


def sampler(method: Union[str, MethodSpec]) -> Callable[..., Any]:
    """``sample`` with ``method`` fixed: ``sampler("f-pndm")(model, x, sigmas, extra_args, callback, disable)``,
    named :func:`sampler_name` of the method (k-diffusion's noise keywords pass through to :func:`sample`)."""
    check_method_type(method, ())
    spec = method if isinstance(method, MethodSpec) else get_method(method)
    if spec.adaptive:
        raise ValueError(_adaptive_message(spec.name))

    def run(model: Denoiser, x: Any, sigmas: Any, extra_args: Optional[dict] = None,
            callback: Optional[Callable[[dict], Any]] = None, disable: Optional[bool] = None, **options: Any) -> Any:
        reject_unknown(run.__name__, {k: v for k, v in options.items() if k not in NOISE_KEYWORDS},
                       [k for k in _KEYWORDS if k != "method"])  # named as the sampler called, not sample
        return sample(model, x, sigmas, method=spec, extra_args=extra_args, callback=callback, disable=disable,
                      **options)

    run.__name__ = run.__qualname__ = sampler_name(spec)
    run.__doc__ = f"k-diffusion-style sampler of pndmkit's {spec.name!r} (see :func:`sample`)."
    return run


class _Samplers(Mapping):
    """The fixed-step methods of :data:`pndmkit.METHODS` by sampler name, read live (methods registered later
    included): ``SAMPLERS["sample_dpm_solver_pp_2m"]`` is ``sampler("dpm-solver++-2m")``."""

    def _names(self) -> dict[str, list[str]]:
        names: dict[str, list[str]] = {}
        for name, spec in METHODS.items():
            if not spec.adaptive:
                names.setdefault(sampler_name(name), []).append(name)
        return names

    def __getitem__(self, key: str) -> Callable[..., Any]:
        methods = self._names().get(key)
        if methods is None:
            raise KeyError(key)
        if len(methods) > 1:
            raise KeyError(f"{key} is the sampler name of several methods, {methods}; use sampler(name)")
        return sampler(methods[0])

    def __contains__(self, key: object) -> bool:
        return key in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names()))

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return f"SAMPLERS({', '.join(self)})"


#: sampler name -> k-diffusion-style sampler, for code that looks samplers up by name
SAMPLERS: Mapping[str, Callable[..., Any]] = _Samplers()


def __getattr__(attr: str) -> Any:
    """``sample_<name>`` (:func:`sampler_name`) for every fixed-step registered method, and k-diffusion's and
    ComfyUI's names of :data:`K_DIFFUSION_EQUIVALENTS` and :data:`COMFYUI_EQUIVALENTS`; their names without an
    equivalent (:data:`K_DIFFUSION_WITHOUT_EQUIVALENT`, :data:`COMFYUI_WITHOUT_EQUIVALENT`) raise
    ``AttributeError`` naming the nearest sampler here."""
    if attr in K_DIFFUSION_EQUIVALENTS or attr in COMFYUI_EQUIVALENTS:
        return _alias(attr)
    without = {**K_DIFFUSION_WITHOUT_EQUIVALENT, **COMFYUI_WITHOUT_EQUIVALENT}
    if attr in without:
        raise AttributeError(f"module {__name__!r} has no attribute {attr!r}: pndmkit does not implement that "
                             f"algorithm; {without[attr]}")
    if attr.startswith("sample_"):
        try:
            return SAMPLERS[attr]
        except KeyError as exc:
            if exc.args and str(exc.args[0]) != attr:
                raise AttributeError(exc.args[0]) from None
        # the spelling of earlier versions, hyphens only ("sample_dpm_solver++_2m"), reached through getattr
        old = next((name for name, spec in METHODS.items()
                    if "sample_" + name.replace("-", "_") == attr and not spec.adaptive), None)
        if old is not None:
            return sampler(old)
        adaptive = next((name for name, spec in METHODS.items() if sampler_name(name) == attr and spec.adaptive),
                        None)
        if adaptive is not None:
            raise AttributeError(f"module {__name__!r} has no attribute {attr!r}: {_adaptive_message(adaptive)}")
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SAMPLERS) | set(K_DIFFUSION_EQUIVALENTS) | set(COMFYUI_EQUIVALENTS))
