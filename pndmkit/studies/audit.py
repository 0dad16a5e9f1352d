r"""Audit a sampler somebody else wrote: its order, cost, exactness and schedule, measured, never read off it.

:func:`audit` takes a sampler as users have it and measures it against exact ground truth (the Gaussian
mixtures of :mod:`pndmkit.problems`, whose ``eps`` and probability-flow trajectories are known to near machine
precision). Targets:

* a **k-diffusion-style sampler** ``sampler(model, x, sigmas, extra_args=None, callback=None, disable=None)``
  whose ``model(x, sigma)`` returns the denoised ``x0``; its variables are ``sigma`` and ``x = x0 + sigma *
  noise``;
* a **diffusers scheduler**: a class, an instance, or ``"diffusers:ClassName"`` (``config`` keywords such as
  ``solver_order=3`` go to its constructor); it runs on its own table (``alphas_cumprod``) and its own
  timesteps, driven as a pipeline drives it (``scale_model_input``, one model call per ``step``), on samples
  shaped as images ``(batch, d, 1, 1)`` (``thresholding=True`` needs the channel and pixel axes);
* the scheduler a **diffusers folder** ships (a ``save_pretrained`` pipeline or model folder, a
  ``scheduler_config.json``, or a hub id in the local Hugging Face cache), on its saved config;
* a **pndmkit method** (registry name, :class:`~pndmkit.methods.MethodSpec` or
  :class:`~pndmkit.integrator.Integrator`) on a VP schedule and a grid uniform in its time ``t``.

One ODE for all of them
-----------------------
With ``y = x / alpha`` and ``s = sigma / alpha`` (for a VP schedule ``s = sqrt((1 - abar) / abar)``; for
k-diffusion ``s`` *is* ``sigma`` and ``y`` its ``x``), every schedule's probability-flow ODE is
``dy/ds = eps(y, s)`` (``docs/theory.md``, "One ODE for every model family"), so one reference solver
(:func:`pndmkit.problems.solve_pf_ode`) serves every target: each model call is answered with the exact ``eps``
(or ``x0 = y - s eps``) at the noise level the target *tells* the model (the ``sigma`` it passes; the table
level of the diffusers timestep it passes; ``s(t)`` of a pndmkit time), and each end point is compared with the
exact trajectory at the level the schedule says the run ends at.

What is measured, and why
-------------------------
Orders (:attr:`AuditReport.order`, :attr:`AuditReport.intervals`)
    RMS end point error against the exact trajectory for several step counts, and the least-squares slope
    on the asymptotic range :func:`pndmkit.studies.convergence.fit_order` picks. Two intervals: a *smooth*
    one ending where ``s = 0.1`` (``abar ~ 0.99``; a diffusers run, whose evenly spaced timesteps reach 0.1 only
    near their end, is read at its first node at or below ``s = 0.5``),
    and one ending where ``abar = 1`` (``sigma = 0``), shown apart: near ``abar = 1`` every VP schedule has
    ``s ~ sqrt(c t)``, a branch point that reduces the order of methods whose weights are uniform in ``t``.
Model calls per step
    Counted by the model wrapper at every step count and fitted exactly as ``a N + b``.
Exactness for data at one point
    For data at ``mu`` the exact ``eps = (x - alpha mu) / sigma`` is constant along every trajectory
    (``y = mu + s z``), so every pseudo method and every exponential integrator, whose weights sum to one,
    lands exactly on ``mu + s_end z``; the relative error is reported.
Consistency with the schedule
    A probe whose ``eps`` is the constant ``z`` (the point mass at 0 seen along its own trajectory) moves the
    sample exactly along ``y = s z`` for any method exact for a point mass, so the level the sample *is at*
    can be read off the sample itself at each call and at the end (approximately, for a method that is not).
    The report compares it with the level the model is told (does the sampler evaluate the model where its
    sample is?) and with the last level of the schedule (does it end where it was asked to?), and counts calls
    at levels that are not on the schedule.
Recovered weights (:attr:`AuditReport.weights`)
    The sample after each step is linear in the model outputs. With ``y_0 = 0`` and an ``eps`` that does not
    depend on ``y`` but only on the level, ``eps(s) = (L_0(s), ..., L_{M-1}(s))`` -- the Lagrange basis
    polynomials of the ``M`` levels the target evaluates at, so ``eps`` at its ``m``-th level is the unit
    vector ``e_m`` -- the increment of step ``n`` *is* the row of weights the target gave each evaluation,
    ``y_{n+1} - y_n = h_n sum_m W[n, m] e_m`` (``h_n = s_{n+1} - s_n``), recovered from one run. A step is
    exact for polynomial gradients of degree ``q`` in ``s`` iff the order condition
    ``sum_m W[n, m] theta_m^q = 1 / (q + 1)``, ``theta_m = (s_m - s_n) / h_n`` holds; the report gives each
    residual on the steady steps of a grid of ``N`` and ``2N`` steps, its rate ``O(h^r)``, the order they
    imply (``min_q (q + r_q)``) and the first condition broken. For a linear multistep sampler the weights
    of a middle step are shown next to the exact variable-step Adams weights on the same nodes
    (:func:`pndmkit.theory.multistep.lagrange_weights_float`). A method that is Adams in another variable
    satisfies these conditions only up to ``O(h^r)``, so two more forms are tried (:data:`FORMS`): ``eps``
    polynomial in ``lambda = -log s``, and ``x0`` polynomial in ``lambda`` integrated against
    ``du``, ``u = 1/s`` (``d(y/s)/du = x0``: DPM-Solver++, UniPC); the form in which a step uses the fewest
    evaluations is reported. k-diffusion samplers are read on a Karras-spaced sigma grid, where weights that
    are right only for uniform steps break ``q = 1``, and shown on a uniform one too.

Nothing here reads a target's ``order`` attribute, its declared NFE or its own description of itself.

Cost (``cost_seconds`` in the report), on the 2-core machine: 17-20 s for a k-diffusion sampler (its sweep
goes to 4096 steps), 1-10 s for a diffusers scheduler, 1-8 s for a pndmkit method; ``quick=True`` uses fewer
step counts.

Examples
--------
>>> report = audit("ddim", quick=True)
>>> round(report.order), report.calls_per_step, report.point_mass["exact"]
(1, 'N', True)
"""

from __future__ import annotations

import importlib
import contextlib
import inspect
import math
import numbers
import os
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
from numpy.typing import NDArray

from pndmkit._checks import with_article
from pndmkit.errors import UsageError
from pndmkit.sampling import PriorScaleWarning
from pndmkit.schedules import NoiseSchedule, VPSchedule, levels_from_s, same_schedule

__all__ = ["audit", "resolve_target", "AuditReport", "karras_sigmas", "FORMS", "S_SMOOTH", "DEFAULT_STEPS",
           "QUICK_STEPS", "WEIGHT_STEPS"]

#: noise-to-signal ratio where the smooth interval ends (abar ~ 0.99)
S_SMOOTH = 0.1
#: step counts of the order sweeps by target kind
DEFAULT_STEPS = {"k-diffusion": (16, 32, 64, 128, 256, 512, 1024, 2048, 4096), "diffusers": (10, 20, 40, 80, 160),
                 "pndmkit": (10, 20, 40, 80, 160, 320)}
QUICK_STEPS = {"k-diffusion": (16, 32, 64), "diffusers": (10, 20, 40), "pndmkit": (10, 20, 40)}
#: step counts a diffusers scheduler is swept over: those of them on which its timesteps are evenly spaced are
#: used (a rounded ``linspace`` of 1000 timesteps is uneven for most counts, and an uneven grid is not smooth)
DIFFUSERS_CANDIDATES = (9, 10, 20, 25, 27, 28, 37, 38, 40, 50, 100, 111, 112, 125, 200, 250, 333, 334, 500)
#: a diffusers run is read at its first node at or below this level for the smooth interval (abar ~ 0.8):
#: its evenly spaced timesteps reach s = 0.1 only one step before its end at a few step counts
DIFFUSERS_STOP = 0.5
#: steps of the weight-recovery grid (and twice as many, for the rates)
WEIGHT_STEPS = 40
#: sigma range of the k-diffusion order sweeps (Karras et al. 2022, rho = 7)
SIGMA_MAX, RHO = 80.0, 7.0
#: sigma range of the k-diffusion weight-recovery grids (Karras-spaced for the conditions; uniform for display)
WEIGHT_SIGMAS = (2.0, 1.0)

EpsFn = Callable[[NDArray[np.float64], float], NDArray[np.float64]]


def karras_sigmas(n: int, sigma_max: float = SIGMA_MAX, sigma_min: float = 0.0,
                  rho: float = RHO) -> NDArray[np.float64]:
    r"""``n + 1`` decreasing noise levels ``(sigma_max^(1/rho) + i/n (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``.

    The grid of Karras et al. (2022), eq. 5, without an appended 0: with ``sigma_min = 0`` it ends at 0 itself,
    so its last steps shrink with ``n`` (appending 0 to a grid ending at ``sigma_min > 0`` would keep a last
    step of fixed size ``sigma_min``, which no order study can refine).

    >>> karras_sigmas(2, 8.0, 0.0, 3.0).tolist()
    [8.0, 1.0, 0.0]
    """
    i = np.arange(n + 1) / n
    return (sigma_max ** (1 / rho) + i * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho


# -- conversions ------------------------------------------------------------------------------------
def _np(v: Any) -> NDArray[np.float64]:
    if hasattr(v, "detach"):
        return v.detach().cpu().double().numpy()
    return np.asarray(v, dtype=np.float64)


def _alpha(s: float) -> float:
    return 1.0 / math.sqrt(1.0 + s * s)


def _s_of_abar(abar: float) -> float:
    return math.sqrt(max(1.0 - abar, 0.0) / abar) if abar > 0 else math.inf


@dataclass
class _Call:
    level: float           # the level the model is told (s)
    state: NDArray         # the sample as the target holds it (y for "y" targets, VP x for "x" targets)
    offgrid: bool = False  # the told level is not on the schedule


@dataclass
class _Trace:
    calls: list
    end_state: NDArray
    end_level: float            # the last level of the schedule given
    state_kind: str             # "y" (k-diffusion, sigma schedulers) or "x" (VP sample)
    start_level: float
    stop_state: Optional[NDArray] = None  # diffusers: the sample at the first node with s <= stop
    stop_level: Optional[float] = None


def _to_y(state: NDArray, level: float, kind: str) -> NDArray:
    return state if kind == "y" else state / _alpha(level)


def _from_x(x_vp: NDArray, level: float, kind: str) -> NDArray:
    return x_vp if kind == "x" else x_vp / _alpha(level)


#: The diffusers ``prediction_type`` values the audit gives a scheduler (the exact eps, converted).
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


def _eps_as(prediction: str, e: NDArray, x_vp: NDArray, s: float) -> NDArray:
    """The exact ``eps`` at the VP sample ``x_vp`` (level ``s = sigma/alpha``) as a ``prediction`` output:
    ``x0 = (x - sigma eps) / alpha`` for ``"sample"``, ``v = alpha eps - sigma x0`` for ``"v_prediction"``
    (Salimans and Ho 2022, section 4), with ``alpha = 1/sqrt(1 + s^2)``, ``sigma = s alpha``."""
    if prediction == "epsilon":
        return e
    alpha = _alpha(s)
    sigma = s * alpha
    x0 = (x_vp - sigma * e) / alpha
    return x0 if prediction == "sample" else alpha * e - sigma * x0


# -- runners: one per kind of target -----------------------------------------------------------------
class _KDiffusion:
    kind, variable, state_kind = "k-diffusion", "sigma", "y"

    def __init__(self, sampler: Callable, name: str) -> None:
        self.sampler, self.name = sampler, name
        try:
            import torch  # k-diffusion samplers use torch operations on x and sigmas
            self.torch = torch
        except ImportError:  # pragma: no cover - torch comes with the torch extra
            self.torch = None

    def grid(self, n: int, interval: str) -> NDArray[np.float64]:
        if interval == "weights":  # smooth but not uniform: weights fixed for uniform steps show here
            return karras_sigmas(n, WEIGHT_SIGMAS[0], WEIGHT_SIGMAS[1], RHO)
        if interval == "weights-uniform":
            return np.linspace(WEIGHT_SIGMAS[0], WEIGHT_SIGMAS[1], n + 1)
        return karras_sigmas(n, SIGMA_MAX, S_SMOOTH if interval == "smooth" else 0.0)

    def _wrap(self, a: NDArray) -> Any:
        return self.torch.from_numpy(np.array(a, dtype=np.float64)) if self.torch is not None else np.array(a)

    def run(self, eps: EpsFn, x_vp: NDArray, n: int, interval: str) -> _Trace:
        sigmas = self.grid(n, interval)
        on_grid = set(sigmas.tolist())
        calls: list[_Call] = []

        def model(x: Any, sigma: Any, **_: Any) -> Any:
            values = _np(sigma).reshape(-1)
            if values.size == 0 or not np.all(values == values[0]):
                raise UsageError("target", f"the sampler passed the model different sigmas for the batch elements "
                                           f"({values[:4].tolist()}); the audit needs one level per call")
            s, y = float(values[0]), _np(x)
            calls.append(_Call(s, y.copy(), s not in on_grid))
            denoised = y - s * eps(y * _alpha(s), s)
            if hasattr(x, "new_tensor"):
                return self.torch.from_numpy(denoised).to(dtype=x.dtype, device=x.device)
            return denoised

        start = x_vp / _alpha(sigmas[0])
        where = f"on {n} steps, sigmas {sigmas[0]:.4g} to {sigmas[-1]:.4g}"
        try:
            with warnings.catch_warnings():  # the audit's own probe starts (zeros, unit vectors): not a user's scale
                warnings.simplefilter("ignore", PriorScaleWarning)
                out = self.sampler(model, self._wrap(start), self._wrap(sigmas), extra_args={}, callback=None,
                                   disable=True)
        except UsageError:
            raise
        except Exception as exc:  # the user's own code failed: one line here, its traceback as the cause
            raise UsageError("target", f"sampler {self.name} raised {type(exc).__name__}: "
                                       f"{' '.join(str(exc).split())} ({where}, x of shape {start.shape}); "
                                       f"its traceback: run with PNDMKIT_TRACEBACK=1 (the command line) or read "
                                       f"this error's __cause__") from exc
        if not calls:
            raise UsageError("target", f"sampler {self.name} made 0 model calls ({where}): the audit measures a "
                                       f"sampler through its calls of model(x, sigma)")
        shape = getattr(out, "shape", None)
        if shape is None or tuple(shape) != start.shape:
            got = f"shape {tuple(shape)}" if shape is not None else f"{with_article(type(out).__name__)}, not an array"
            raise UsageError("target", f"sampler {self.name} returned {got} for x of shape {start.shape} "
                                       f"({where}): a sampler returns the sample at sigmas[-1], shaped as x")
        return _Trace(calls, _np(out), float(sigmas[-1]), "y", float(sigmas[0]))


class _Scheduler:
    kind, variable = "diffusers", "timestep"

    def __init__(self, cls: type, config: dict, name: str) -> None:
        self.cls, self.config, self.name = cls, dict(config), name
        self.given: tuple = tuple(config)  # the options the user set (the rest are a saved config's)
        self.state_kind = "x"

    def make(self, n: int) -> Any:
        import torch

        from diffusers.utils import logging as diffusers_logging

        level = diffusers_logging.get_verbosity()
        diffusers_logging.set_verbosity_error()  # its notes on adjusted options would repeat for every run
        try:
            with warnings.catch_warnings(), self.failing(n):
                warnings.simplefilter("ignore")
                sch = self.cls(**self.config)
                sch.set_timesteps(n)
        finally:
            diffusers_logging.set_verbosity(level)
        for key, value in list(vars(sch).items()):  # the float32 tables, at their float32 values, in float64
            if isinstance(value, torch.Tensor) and value.dtype == torch.float32:
                setattr(sch, key, value.double())
        return sch

    @contextlib.contextmanager
    def failing(self, n: int) -> Iterator[None]:
        """Turns an error the scheduler itself raises (building, ``set_timesteps``, ``scale_model_input``,
        ``step``) under the user's configuration into one ``UsageError`` naming the scheduler, the options given,
        the step count and the error."""
        try:
            yield
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - the scheduler's own failure, whatever its type, in one line
            given = {k: v for k, v in self.config.items() if k in self.given}
            shown = ", ".join(f"{k}={v!r}" for k, v in given.items()) or "its defaults"
            raise UsageError("config", f"{self.cls.__name__} with config {shown} fails on the audit's runs "
                                       f"({n} steps, a batch of samples shaped (batch, d, 1, 1)): "
                                       f"{type(exc).__name__}: "
                                       f"{' '.join(str(exc).split())}") from None

    def prediction(self, sch: Any) -> str:
        """The scheduler's ``prediction_type`` (``"epsilon"`` when it has none); one the audit cannot give
        from the exact ``eps`` is refused by name."""
        kind = getattr(sch.config, "prediction_type", None) or "epsilon"
        if kind not in PREDICTION_TYPES:
            raise UsageError("config", f"config prediction_type={kind!r}: the audit drives {self.cls.__name__} "
                                       f"with the exact eps converted to its prediction type, and can convert to "
                                       f"{', '.join(PREDICTION_TYPES)} only")
        return kind

    def regular_steps(self, candidates: Sequence[int], most: int = 6) -> list[int]:
        """Step counts whose timesteps (after the first third, past any warm-up half steps) are evenly spaced,
        spread geometrically (ratio >= 1.8), at most ``most``."""
        good = []
        for n in candidates:
            ts = [float(_np(t)) for t in self.make(n).timesteps]
            nodes = [t for i, t in enumerate(ts) if i == 0 or t != ts[i - 1]]
            d = -np.diff(nodes[len(nodes) // 3:])
            if len(d) and np.all(d > 0) and d.max() - d.min() <= 1e-6 * d.mean():
                good.append(n)
        picked: list[int] = []
        for n in good:
            if not picked or n >= 1.8 * picked[-1]:
                picked.append(n)
        return picked[:most]

    def run(self, eps: EpsFn, x_vp: NDArray, n: int, interval: str, stop: Optional[float] = DIFFUSERS_STOP) -> _Trace:
        """One sampling loop as a pipeline runs it, from ``x_vp`` (shape ``(batch, d)``), the model answered by
        ``eps``. The scheduler sees the samples as images, ``(batch, d, 1, 1)``: its per-sample operations
        (``thresholding``'s percentile of each sample's ``|x0|``, over its ``d`` entries) need the channel and
        pixel axes an image has, and every elementwise one gives the same numbers on either shape."""
        import torch

        image = (x_vp.shape[0], -1, 1, 1)

        sch = self.make(n)
        table = np.sqrt(np.maximum(1.0 - _np(sch.alphas_cumprod), 0.0) / _np(sch.alphas_cumprod))
        steps = [float(_np(t)) for t in sch.timesteps]

        def told(t: float) -> float:
            return float(table[int(t)]) if t == int(t) else float(np.interp(t, np.arange(len(table)), table))

        levels = [told(t) for t in steps]
        stop_index = None
        if stop is not None:
            first = next((i for i, s in enumerate(levels) if s <= stop), None)
            if first is not None:
                stop_index = first
                while stop_index + 1 < len(steps) and steps[stop_index + 1] == steps[first]:
                    stop_index += 1
        old = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)  # schedulers that build part of a step in the default dtype
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ones = torch.ones(1, dtype=torch.float64)
                with self.failing(n):
                    c0 = float(sch.scale_model_input(ones, sch.timesteps[0]))
                kind = "x" if abs(c0 - 1.0) < 1e-12 else "y"
                self.state_kind = kind
                prediction = self.prediction(sch)
                sample = torch.from_numpy(_from_x(x_vp, levels[0], kind).copy()).reshape(image)
                calls, stop_state = [], None
                for i, t in enumerate(sch.timesteps):
                    with self.failing(n):
                        x_in = sch.scale_model_input(sample, t)
                    state = _np(sample).reshape(x_vp.shape)
                    if i == stop_index:
                        stop_state = state.copy()
                    calls.append(_Call(levels[i], state.copy()))
                    x_vp_now = _np(x_in).reshape(x_vp.shape) if kind == "y" else state
                    e = np.asarray(eps(x_vp_now, levels[i]), dtype=np.float64)
                    out = torch.from_numpy(_eps_as(prediction, e, x_vp_now, levels[i])).reshape(image)
                    with self.failing(n):
                        sample = sch.step(out, t, sample).prev_sample
        finally:
            torch.set_default_dtype(old)
        end = self.declared_end(sch)
        return _Trace(calls, _np(sample).reshape(x_vp.shape), end, kind, levels[0], stop_state,
                      levels[stop_index] if stop_index is not None else None)

    @staticmethod
    def declared_end(sch: Any) -> float:
        """The last level of the scheduler's schedule: its last ``sigmas`` entry or its ``final_alpha_cumprod``."""
        if getattr(sch, "sigmas", None) is not None:
            return float(_np(sch.sigmas).reshape(-1)[-1])
        final = getattr(sch, "final_alpha_cumprod", None)
        if final is not None:
            return _s_of_abar(float(_np(final)))
        return math.nan


class _Method:
    kind, variable, state_kind = "pndmkit", "t", "x"

    def __init__(self, integrator: Any, schedule: NoiseSchedule, name: str) -> None:
        self.integrator, self.schedule, self.name = integrator, schedule, name

    def grid(self, n: int, interval: str) -> NDArray[np.float64]:
        from pndmkit.grids import make_grid

        sched = self.schedule
        t_end = float(sched.t_from_s(S_SMOOTH)) if interval in ("smooth", "weights") else float(sched.t_min)
        return np.asarray(make_grid(sched, n, "uniform", t_start=sched.t_start, t_end=t_end), dtype=np.float64)

    def run(self, eps: EpsFn, x_vp: NDArray, n: int, interval: str) -> _Trace:
        grid = self.grid(n, interval)
        on_grid = set(grid.tolist())
        sched = self.schedule
        calls: list[_Call] = []

        def model(x: Any, t: float) -> Any:
            s = float(sched.s(t))
            xs = _np(x)
            calls.append(_Call(s, xs.copy(), float(t) not in on_grid))
            return eps(xs, s)

        sol = self.integrator.solve(model, np.array(x_vp), grid)
        return _Trace(calls, _np(sol.x), float(sched.s(grid[-1])), "x", float(sched.s(grid[0])))


# -- resolving the target ------------------------------------------------------------------------------
def _diffusers_class(name: str) -> type:
    from pndmkit.studies.peers import import_diffusers

    diffusers = import_diffusers()
    cls = getattr(diffusers, name, None)
    if isinstance(cls, type) and hasattr(cls, "set_timesteps") and not hasattr(cls, "step"):
        steps = sorted(n for n in dir(cls) if n.startswith("step_"))
        raise UsageError("target", f"diffusers' {name} has no step() (it steps by {', '.join(steps) or 'other means'}); "
                                   f"the audit runs schedulers as a pipeline does, one step() per model call")
    if not (isinstance(cls, type) and hasattr(cls, "set_timesteps") and hasattr(cls, "step")):
        known = sorted(n for n in dir(diffusers) if n.endswith("Scheduler") and isinstance(getattr(diffusers, n, None),
                                                                                            type))
        raise UsageError("target", f"diffusers has no scheduler class {name!r}; schedulers: {', '.join(known)}")
    return cls


def _check_sampler(fn: Any, text: str) -> None:
    if not callable(fn):
        raise UsageError("target", f"target {text!r} is {with_article(type(fn).__name__)}, not a callable sampler "
                                   f"sampler(model, x, sigmas, extra_args=None, callback=None, disable=None)")
    try:
        inspect.signature(fn).bind(None, None, None, extra_args=None, callback=None, disable=True)
    except TypeError as exc:
        raise UsageError("target", f"target {text!r} does not take k-diffusion's arguments (model, x, sigmas, "
                                   f"extra_args=None, callback=None, disable=None): {exc}") from None
    except ValueError:  # builtins without a signature: tried when run
        pass


def resolve_target(target: Any, schedule: Optional[NoiseSchedule] = None, **config: Any) -> Any:
    """The runner of ``target`` (see :func:`audit` for what a target may be); bad input raises ``UsageError``.

    Strings: ``"diffusers:ClassName"``, ``"module:function"`` (imported; the current folder is searched first,
    as ``python -m`` does) or a pndmkit method name.
    """
    from pndmkit.integrator import Integrator
    from pndmkit.methods import METHODS, MethodSpec

    if isinstance(target, str):
        text = target.strip()
        if ":" in text:
            module, _, attr = text.partition(":")
            if not module or not attr:
                raise UsageError("target", f"target {text!r} must be MODULE:FUNCTION, diffusers:ClassName or a "
                                           f"method name")
            if module == "diffusers":
                return resolve_target(_diffusers_class(attr), schedule, **config)
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            try:
                mod = importlib.import_module(module)
            except ImportError as exc:
                raise UsageError("target", f"cannot import module {module!r} of target {text!r}: {exc}") from None
            fn = mod
            for part in attr.split("."):
                if not hasattr(fn, part):
                    raise UsageError("target", f"module {module!r} has no attribute {attr!r} (target {text!r})")
                fn = getattr(fn, part)
            return resolve_target(fn, schedule, **config) if isinstance(fn, type) else _sampler_runner(fn, text, config)
        if text in METHODS:
            return resolve_target(METHODS[text], schedule, **config)
        if os.path.exists(text) or "/" in text or os.sep in text:  # a folder, a hub id, or a missing path
            return _folder_runner(text, schedule, config)  # says which: no such file or folder, no cached id
        raise UsageError("target", f"unknown target {text!r}: give MODULE:FUNCTION (a k-diffusion-style sampler), "
                                   f"diffusers:ClassName, a method name ({', '.join(METHODS)}), or a diffusers "
                                   f"folder or cached hub id (a path or org/name)")
    if isinstance(target, (MethodSpec, Integrator)):
        _no_config(config, "a pndmkit method")
        from pndmkit.schedules import LinearVP

        sched = schedule if schedule is not None else (target.transfer.schedule if isinstance(target, Integrator)
                                                      else LinearVP())
        if not isinstance(sched, VPSchedule):
            raise UsageError("schedule", f"schedule must be a VP schedule, got {sched!r}")
        if isinstance(target, MethodSpec):
            if target.adaptive:
                raise UsageError("target", f"method {target.name!r} is adaptive: it chooses its own steps, so it has "
                                           f"no order in the number of steps to audit")
            return _Method(target.build(sched), sched, target.name)
        if schedule is not None and not same_schedule(schedule, target.transfer.schedule):
            raise UsageError("schedule", f"the Integrator runs on its own schedule {target.transfer.schedule!r}; "
                                         f"leave schedule out")
        return _Method(target, sched, target.name or repr(target))
    if hasattr(target, "set_timesteps") and hasattr(target, "step"):
        if schedule is not None:
            raise UsageError("schedule", "a diffusers scheduler runs on its own table; schedule applies to pndmkit "
                                         "methods only")
        if isinstance(target, type):
            cls, base = target, {}
        else:
            cls, base = type(target), {k: v for k, v in dict(target.config).items() if not k.startswith("_")}
        return _scheduler_runner(cls, {**base, **config}, given=tuple(config))
    return _sampler_runner(target, getattr(target, "__name__", repr(target)), config)


def _folder_runner(text: str, schedule: Optional[NoiseSchedule], config: dict) -> "_Scheduler":
    """The scheduler a diffusers folder (or cached hub id, or ``scheduler_config.json``) ships, on its saved config
    (read by :func:`pndmkit.integrations.diffusers.pretrained.locate`); ``config`` overrides fields. It is driven
    with the exact ``eps``, so its ``prediction_type`` is set to ``"epsilon"`` (the network's prediction type is
    no part of the sampler's numerics)."""
    from pndmkit.integrations.diffusers.pretrained import locate, read_scheduler_config

    if schedule is not None:
        raise UsageError("schedule", "a diffusers scheduler runs on its own table; schedule applies to pndmkit "
                                     "methods only")
    located = locate(text, need_unet=False, param="target")
    saved = read_scheduler_config(located.scheduler_config, "target")
    cls = _diffusers_class(str(saved.get("_class_name")))
    if cls.__name__ in ("DDPMScheduler", "EulerAncestralDiscreteScheduler"):
        raise UsageError("target", f"{located.scheduler_config} names {cls.__name__}, which adds fresh noise at every "
                                   f"step; the audit measures deterministic samplers: audit the one you run on this "
                                   f"network (e.g. diffusers:DDIMScheduler with --config options)")
    fields = set(inspect.signature(cls.__init__).parameters)
    base = {k: v for k, v in saved.items() if k in fields and k != "self"}
    if "prediction_type" in fields:  # a flow-matching scheduler has none (nor a VP table: refused below)
        base["prediction_type"] = "epsilon"
    name = f"{cls.__name__} of {located.name}" + "".join(f" {k}={v}" for k, v in config.items())
    return _scheduler_runner(cls, {**base, **config}, given=tuple(config), name=name)


def _no_config(config: dict, what: str) -> None:
    if config:
        key = next(iter(config))
        raise UsageError("config", f"config {key}={config[key]!r}: {what} takes no configuration keywords (they are "
                                   f"a diffusers scheduler's)")


def _sampler_runner(fn: Any, text: str, config: dict) -> _KDiffusion:
    _check_sampler(fn, text)
    _no_config(config, "a k-diffusion-style sampler")
    return _KDiffusion(fn, text)


def _annotated_kind(annotation: Any) -> Optional[tuple[Callable[[Any], bool], str]]:
    """``(accepts(value), what it takes)`` for a scheduler option annotated ``int``, ``float``, ``bool``, ``str``
    or a ``Literal`` (optionally with ``None``); ``None`` for any other annotation (nothing is said about it)."""
    import types
    import typing

    args = typing.get_args(annotation)
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            return None
        annotation = rest[0]
    if typing.get_origin(annotation) is typing.Literal:
        values = [*typing.get_args(annotation), *([None] if optional else [])]
        return (lambda v: v in values), "one of " + ", ".join(repr(v) for v in values)
    simple = {int: (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)), "an integer"),
              float: (lambda v: isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)), "a number"),
              bool: (lambda v: isinstance(v, (bool, np.bool_)), "true or false"),
              str: (lambda v: isinstance(v, str), "a string")}
    if annotation not in simple:
        return None
    accepts, what = simple[annotation]
    if optional:
        return (lambda v: v is None or accepts(v)), what + " or none"
    return accepts, what


def _scheduler_runner(cls: type, config: dict, given: Optional[tuple] = None, name: Optional[str] = None
                      ) -> _Scheduler:
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        unknown = [k for k in config if k not in params]
        if unknown:
            allowed = [k for k in params if k != "self"]
            raise UsageError("config", f"config {unknown[0]}={config[unknown[0]]!r}: {cls.__name__} has no such "
                                       f"option; options: {', '.join(allowed)}")
    for key, value in config.items():  # a value not of its option's annotated type, before the scheduler sees it:
        # diffusers accepts many silently ('maybe' for a bool option is truthy)
        wanted = _annotated_kind(params[key].annotation) if key in params else None
        if value is None and key in params and params[key].default is None:
            continue  # the option's own default (a saved config writes it out, whatever the annotation says)
        if wanted is not None and not wanted[0](value):
            raise UsageError("config", f"config {key}={value!r}: {cls.__name__} takes {wanted[1]} for {key} "
                                       f"(default {params[key].default!r})")
    runner = _Scheduler(cls, config, name or cls.__name__ + "".join(f" {k}={v}" for k, v in config.items()))
    if given is not None:
        runner.given = given
    try:
        runner.make(10)
    except Exception as exc:  # noqa: BLE001 - the scheduler's own refusal of a value, in one line
        shown = ", ".join(f"{k}={v!r}" for k, v in config.items()) or "its defaults"
        raise UsageError("config", f"config {shown}: {cls.__name__} refused it: {type(exc).__name__}: "
                                   f"{' '.join(str(exc).split())}") from None
    sch = runner.make(10)
    runner.prediction(sch)  # before any run: one the audit cannot give is refused by name
    if not hasattr(sch, "alphas_cumprod"):
        raise UsageError("target", f"{runner.name} has no VP table (alphas_cumprod): the audit runs diffusers "
                                   f"schedulers on a variance-preserving schedule's exact ground truth, and "
                                   f"{_why_no_table(cls, sch)}; audit it as a k-diffusion-style sampler "
                                   f"(MODULE:FUNCTION) in sigma instead")
    if _is_stochastic(runner):
        raise UsageError("target", f"{runner.name} is stochastic: two runs from the same start with the same model "
                                   f"and different random seeds differ (its step adds noise); the audit measures "
                                   f"deterministic samplers (ODE solvers), e.g. its deterministic counterpart")
    return runner


def _why_no_table(cls: type, sch: Any) -> str:
    """Why a diffusers scheduler without ``alphas_cumprod`` has no VP training table, from what it keeps."""
    name = cls.__name__
    if "Flow" in name:
        return f"{name}, a flow-matching scheduler, has none (its levels are flow sigmas)"
    if "EDM" in name:
        return f"{name}, an EDM scheduler, has none (its levels are EDM sigmas)"
    if hasattr(sch.config, "sigma_min") and hasattr(sch.config, "sigma_max"):
        return f"{name} has none: its levels are sigmas from sigma_min to sigma_max"
    if hasattr(sch, "betas") and hasattr(sch, "alphas"):  # IPNDMScheduler
        return (f"{name} has none: set_timesteps makes the noise levels of each run (betas, alphas) from its "
                f"number of steps alone, so they are no table of the network's training")
    return f"{name} keeps none"


def _is_stochastic(runner: "_Scheduler") -> bool:
    """Whether two runs of 5 steps from the same start differ when only torch's random seed differs."""
    import torch

    finals = []
    for seed in (0, 1):
        sch = runner.make(5)
        sample = torch.ones(1, 2, 1, 1, dtype=torch.float32)  # an image, as the audit's runs give it
        torch.manual_seed(seed)
        with warnings.catch_warnings(), runner.failing(5):
            warnings.simplefilter("ignore")
            for t in sch.timesteps:
                x_in = sch.scale_model_input(sample, t)
                sample = sch.step(0.1 * x_in, t, sample).prev_sample
        finals.append(sample)
    return not torch.equal(finals[0], finals[1])


# -- report ---------------------------------------------------------------------------------------------
@dataclass
class AuditReport:
    """What :func:`audit` measured.

    Attributes
    ----------
    target : str
        The target as given (class name and configuration, ``module:function``, method name).
    kind : {"k-diffusion", "diffusers", "pndmkit"}
    variable : str
        The target's own time variable: ``sigma``, ``timestep`` or ``t``.
    order : float or None
        Measured global order on the smooth interval (ends at ``s = 0.1``).
    order_to_data : float or None
        Measured global order on the interval ending where ``abar = 1`` (``sigma = 0``), or at the last level of a
        diffusers schedule that does not go there (see ``intervals["data"]["end_level"]``).
    intervals : dict
        Per interval (``"smooth"``, ``"data"``): ``steps``, ``nfe``, ``errors`` (RMS of the end point against the
        exact trajectory, in the sample's units: VP ``x``, or ``y = x / alpha`` for k-diffusion and sigma
        schedulers), ``order``, ``fit_range`` (first and last step count of the fit), ``note``,
        ``finest_local_order`` (the slope between the two finest step counts above the round-off floor),
        ``start_level`` and ``end_level`` (``s``; for diffusers the last run's).
    calls_per_step : str
        Counted model calls as a function of the step count ``N`` (``"N"``, ``"2N - 1"``, ``"N + 9"``).
    point_mass : dict
        ``error`` (max relative error of the end point for data at one point, smooth interval, 10 steps) and
        ``exact`` (``error < 1e-9``, or ``< 1e-5`` for diffusers, whose steps may round to float32).
    consistency : dict
        ``end_level`` (the schedule's last level), ``end_reached`` (read off the probe sample),
        ``level_mismatch`` (largest difference, in ``sigma_vp = s / sqrt(1 + s^2)``, between the level a model
        call is told and the level the sample is at), ``offgrid_calls`` (calls at levels not on the schedule,
        k-diffusion and pndmkit), ``interval`` (the grid probed), ``ok``, and ``measurable`` (False when the target
        is not exact for a point mass: the levels read are then approximate).
    weights : dict
        ``form`` (``"eps-s"``, ``"eps-lambda"`` or ``"x0-lambda"``, see :data:`FORMS`) and ``variable`` (in words),
        ``steps`` (grid), ``conditions`` (per degree ``q``: the largest residual on the steady steps for ``N`` and
        ``2N`` steps, and its rate ``r``: ``None`` when it holds, 0 when it fails outright), ``first_broken`` and
        ``first_broken_outright`` (smallest ``q`` whose condition fails, at all / with ``r = 0``), ``limiting``
        (the ``q`` with the smallest ``q + r``), ``implied_order`` (that ``q + r``), ``linear`` (whether a large
        drive gives the same weights: False for a sampler that clips ``x0``), ``describes_order``, and for a step
        in the middle ``nodes`` (its evaluation levels), ``recovered`` and ``exact`` (variable-step weights of the
        form on those levels, when they are nodes of the grid); for a k-diffusion sampler ``uniform`` holds the
        same for a grid uniform in sigma (the conditions are read on a Karras-spaced grid, where weights that are
        right only for uniform steps break ``q = 1``).
    verdict : str
        What limits the order, in words.
    cost_seconds : float
        Wall time of the audit.
    """

    target: str
    kind: str
    variable: str
    order: Optional[float]
    order_to_data: Optional[float]
    intervals: dict
    calls_per_step: str
    point_mass: dict
    consistency: dict
    weights: dict
    verdict: str = ""
    cost_seconds: float = 0.0

    def to_dict(self) -> dict:
        """JSON-ready dictionary (floats, lists, strings)."""
        return _jsonable(dict(self.__dict__))

    def summary(self) -> str:
        """A few lines of text for people (the command line's output)."""
        iv = self.intervals
        lines = [f"audit of {self.target} ({self.kind}, variable {self.variable}); {self.cost_seconds:.1f} s"]
        for name, what in (("smooth", "on the smooth interval"), ("data", "to abar = 1")):
            r = iv[name]
            errs = ", ".join(f"N={n}: {e:.2e}" for n, e in zip(r["steps"], r["errors"]))
            note = "; " + r["note"] if r["note"] else ""
            lines.append(f"order {what}: {_fmt(r['order'])} (fit N={_range(r['fit_range'])}{note}"
                         f"; between the two finest N: {_fmt(r['finest_local_order'])})"
                         f"; end level s={r['end_level']:.3g}; errors {errs}")
        lines.append(f"model calls: {self.calls_per_step} for N steps")
        pm = self.point_mass
        lines.append(f"data at one point: {'exact' if pm['exact'] else 'NOT exact'} (relative error {pm['error']:.1e})")
        c = self.consistency
        lines.append(f"schedule: ends at s={c['end_reached']:.4g} (schedule's last level {c['end_level']:.4g}); "
                     f"model told a level off the sample's by up to {c['level_mismatch']:.1e} (in sigma_vp); "
                     f"{c['offgrid_calls']} calls off the schedule"
                     + ("" if c["measurable"] else " (levels read approximately: not exact for a point mass)"))
        w = self.weights
        conds = "; ".join(f"q={q}: {v['residual']:.1e}" + ("" if v["rate"] is None else f" O(h^{v['rate']:g})")
                          for q, v in w["conditions"].items())
        lines.append(f"order conditions for {w['variable']} (steady steps, N={w['steps']}): {conds}")
        first = f"none up to q={max(w['conditions'])}" if w["first_broken"] is None else f"q={w['first_broken']}"
        lines.append(f"weights imply order {_fmt(w['implied_order'])}; first broken condition: {first}; "
                     f"first broken outright (O(1)): {w['first_broken_outright']}")
        for row, where in ((w, ""), (w.get("uniform"), " on a uniform grid")):
            if row is None or row.get("recovered") is None:
                continue
            lines.append(f"step {row['step']} weights{where} (newest first): "
                         + ", ".join(f"{v:.6g}" for v in row["recovered"]))
            if row.get("exact") is not None:
                lines.append(f"exact variable-step weights{where}: " + ", ".join(f"{v:.6g}" for v in row["exact"]))
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines)


def _fmt(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _range(r: Any) -> str:
    return "n/a" if not r else f"{r[0]}-{r[1]}"


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    return v


# -- measurements ----------------------------------------------------------------------------------------
def _mixture_eps(problem: Any) -> EpsFn:
    def eps(x: NDArray, s: float) -> NDArray:
        return problem.eps_at_levels(x, *levels_from_s(s))
    return eps


def _nfe_formula(steps: Sequence[int], calls: Sequence[int]) -> str:
    n, c = np.asarray(steps), np.asarray(calls)
    if len(n) >= 2:
        a = (c[-1] - c[0]) / (n[-1] - n[0])
        b = c[0] - a * n[0]
        if a == int(a) and b == int(b) and np.all(a * n + b == c):
            a, b = int(a), int(b)
            head = "N" if a == 1 else f"{a}N"
            return head if b == 0 else f"{head} {'+' if b > 0 else '-'} {abs(b)}"
    return ", ".join(f"{k} at N={m}" for m, k in zip(steps, calls))


def _sweep(runner: Any, problem: Any, steps: Sequence[int], x_T: NDArray) -> dict:
    """Both intervals' errors for every step count (a diffusers run gives both: it is read at the smooth stop)."""
    from pndmkit.problems import solve_pf_ode
    from pndmkit.studies.convergence import fit_order

    eps = _mixture_eps(problem)
    scale = float(problem.min_std)
    refs: dict = {}

    def reference(s0: float, ends: Sequence[float]) -> list:
        key = (s0, tuple(ends))
        if key not in refs:
            out = solve_pf_ode(eps, x_T, s0, 0.0 if min(ends) <= 0 else min(ends), scale=scale,
                               s_eval=list(ends), rtol=1e-13, atol=1e-13)
            refs[key] = list(out)
        return refs[key]

    out = {name: {"steps": [], "nfe": [], "errors": [], "start_level": None, "end_level": None}
           for name in ("smooth", "data")}
    failures: dict = {}
    nonfinite: dict = {name: [] for name in out}  # step counts whose end point has a NaN or infinite entry
    for n in steps:
        if runner.kind == "diffusers":
            tr = runner.run(eps, x_T, n, "data")
            runs = [("data", tr, tr.end_state, tr.end_level)]
            if tr.stop_state is not None:
                runs.append(("smooth", tr, tr.stop_state, tr.stop_level))
        else:
            runs = []
            for name in ("smooth", "data"):
                try:
                    tr = runner.run(eps, x_T, n, name)
                except Exception as exc:  # noqa: BLE001 - a target that refuses to end at abar = 1 is a finding
                    if name != "data":
                        raise
                    cause = exc.__cause__ if isinstance(exc, UsageError) and exc.__cause__ is not None else exc
                    failures[n] = f"{type(cause).__name__}: {' '.join(str(cause).split())}"
                    continue
                runs.append((name, tr, tr.end_state, tr.end_level))
        for name, tr, state, level in runs:
            if not np.all(np.isfinite(state)):
                nonfinite[name].append(int(n))
            ref_x = reference(tr.start_level, [level])[0]
            err = float(np.sqrt(np.mean((state - _from_x(ref_x, level, tr.state_kind)) ** 2)))
            r = out[name]
            r["steps"].append(int(n))
            r["nfe"].append(len(tr.calls))
            r["errors"].append(err)
            r["start_level"], r["end_level"] = tr.start_level, level
    if nonfinite["smooth"]:  # a finite start, a finite model and a smooth interval: no sampler may give NaN here
        r = out["smooth"]
        raise FloatingPointError(
            f"{runner.name}: its output is not finite (NaN or inf entries) at N="
            f"{', '.join(str(k) for k in nonfinite['smooth'])} steps on the smooth interval (s from "
            f"{r['start_level']:.4g} to {r['end_level']:.4g}), from a finite start and a finite model: nothing "
            f"can be measured, so the audit gives no report and no verdict")
    # below these the error is round-off: the reference's (1e-13) and the sample's float32 rounding inside some
    # diffusers steps (DPM-Solver casts the sample to float32 every step)
    floor = 5e-7 if runner.kind == "diffusers" else 3e-11
    for r in out.values():
        if len(r["steps"]) >= 2:
            order, idx, note = fit_order(r["steps"], r["errors"], floor)
            r["order"], r["note"] = order, note
            r["fit_range"] = [r["steps"][idx[0]], r["steps"][idx[1]]] if idx else None
            above = [(n, e) for n, e in zip(r["steps"], r["errors"]) if e > floor and math.isfinite(e)]
            r["finest_local_order"] = None
            if len(above) >= 2:
                (n1, e1), (n2, e2) = above[-2], above[-1]
                r["finest_local_order"] = round(math.log(e1 / e2) / math.log(n2 / n1), 2)
        else:
            r["order"], r["fit_range"], r["finest_local_order"] = None, None, None
            r["note"] = "fewer than two runs reach the end of this interval"
    if nonfinite["data"]:  # a finding, as a failure is: the fit uses the finite errors before the first other
        r = out["data"]
        r["note"] = "; ".join(filter(None, [f"output not finite (NaN or inf) at N="
                                            f"{', '.join(str(k) for k in nonfinite['data'])}", r["note"]]))
    if failures:
        n, message = next(iter(failures.items()))
        out["data"]["note"] = f"the run to abar = 1 fails at N={n}: {message}"
        if out["data"]["end_level"] is None:
            out["data"]["end_level"] = 0.0
        r["nfe"] = [int(k) for k in r["nfe"]]
    return out


def _point_mass(runner: Any, n: int = 10) -> dict:
    mu = np.array([[0.7, -0.4]])
    z = np.array([[-1.3, 0.8]])

    def eps(x: NDArray, s: float) -> NDArray:
        if s == 0:
            return np.zeros_like(x)
        a = _alpha(s)
        return (x - a * mu) / (s * a)

    probe = runner.run(eps, _start(runner, n, mu, z), n, "smooth")
    level = probe.stop_level if probe.stop_state is not None else probe.end_level
    state = probe.stop_state if probe.stop_state is not None else probe.end_state
    exact = _from_x(_alpha(level) * (mu + level * z), level, probe.state_kind)
    err = float(np.max(np.abs(state - exact)) / np.max(np.abs(exact)))
    return {"error": err, "exact": bool(err < _tolerance(runner)), "steps": n,
            "end_level": level}


def _start(runner: Any, n: int, mu: NDArray, z: NDArray) -> NDArray:
    """The VP sample ``alpha (mu + s0 z)`` at the level where a run of ``n`` steps starts."""
    s0 = runner.run(lambda x, s: np.zeros_like(x), np.zeros_like(z), n, "smooth").start_level
    return _alpha(s0) * (mu + s0 * z)


def _noise_fraction(s: float) -> float:
    """``sigma_vp = s / sqrt(1 + s^2)``: the level as the noise's share of a VP sample, in [0, 1]."""
    return 1.0 if math.isinf(s) else s / math.sqrt(1.0 + s * s)


def _consistency(runner: Any, n: int = 10) -> dict:
    """Levels read off a probe: ``eps = z`` constant, start ``y = s_0 z`` (the point mass at 0 seen along its own
    trajectory). A sampler exact for a constant ``eps`` keeps ``y = s z`` at the level ``s`` it is at, so the level
    can be read off the sample (``y`` parallel to ``z`` whatever the sampler does; the reading is exact when the
    sampler is exact for a point mass, ``point_mass["exact"]``, and approximate otherwise)."""
    z = np.array([[-1.3, 0.8, 0.45]])
    interval = "data"
    try:
        s0 = runner.run(lambda x, s: np.zeros_like(x), np.zeros_like(z), n, interval).start_level
    except Exception:  # noqa: BLE001 - refuses to end at abar = 1 (reported with the orders): the smooth grid
        interval = "smooth"
        s0 = runner.run(lambda x, s: np.zeros_like(x), np.zeros_like(z), n, interval).start_level
    probe = runner.run(lambda x, s: np.broadcast_to(z, x.shape).copy(), _alpha(s0) * s0 * z, n, interval)

    def read(state: NDArray) -> float:
        c = float(np.sum(state * z) / np.sum(z * z))  # y = s z, or x = sigma_vp z
        if probe.state_kind == "y":
            return c
        return c / math.sqrt(1.0 - c * c) if abs(c) < 1 else math.inf

    mismatch = max((abs(_noise_fraction(read(c.state)) - _noise_fraction(c.level)) for c in probe.calls), default=0.0)
    reached = read(probe.end_state)
    end = probe.end_level
    tol = _tolerance(runner)
    end_ok = math.isfinite(end) and abs(_noise_fraction(reached) - _noise_fraction(end)) <= tol
    return {"end_level": end, "end_reached": reached, "level_mismatch": mismatch,
            "offgrid_calls": sum(c.offgrid for c in probe.calls), "steps": n, "interval": interval,
            "ok": bool(end_ok and mismatch <= tol)}


def _tolerance(runner: Any) -> float:
    """What counts as zero: diffusers steps may round the sample to float32 (DPM-Solver does, every step)."""
    return 1e-5 if runner.kind == "diffusers" else 1e-9


def _groups(calls: list) -> list[list[int]]:
    out: list[list[int]] = []
    for i, c in enumerate(calls):
        if out and calls[out[-1][-1]].level == c.level:
            out[-1].append(i)
        else:
            out.append([i])
    return out


#: the ways a step can be linear in the model's outputs: ``(gradient, variable)``. The gradient is integrated
#: against its own measure: ``eps`` against ``ds`` (``dy/ds = eps``), ``x0`` against ``du`` with
#: ``u = 1/s = e^lambda`` (``d(y/s)/du = x0``, the data-prediction form of DPM-Solver++ and UniPC); the variable
#: is the one its interpolating polynomial lives in (``s``, or the half log-SNR ``lambda = -log s``).
FORMS = {"eps-s": ("eps", "s"), "eps-lambda": ("eps", "lambda"), "x0-lambda": ("x0", "lambda")}


def _form_name(form: str) -> str:
    gradient, variable = FORMS[form]
    return f"{gradient} polynomial in {variable}, integrated in {'s' if gradient == 'eps' else 'u = e^lambda'}"


def _recover(runner: Any, n: int, interval: str, form: str, drive: float = 1e-3) -> tuple:
    """Weights ``W[step, evaluation level]`` recovered from one run, the node levels and the evaluation levels.

    ``drive`` scales the unit gradients (small, so that clipping of ``x0`` at 1, a common default, is not hit).
    """
    dry = runner.run(lambda x, s: np.zeros_like(x), np.zeros((1, 1)), n, interval)
    levels = list(dict.fromkeys(c.level for c in dry.calls))
    index = {s: i for i, s in enumerate(levels)}
    m = len(levels)
    gradient = FORMS[form][0]

    def eps(x: NDArray, s: float) -> NDArray:
        g = np.zeros((1, m))
        g[0, index[s]] = drive
        if gradient == "eps":
            return g
        if s == 0:
            return np.zeros_like(x)
        return (x / _alpha(s) - g) / s  # eps with x0 = g: y = x0 + s eps

    tr = runner.run(eps, np.zeros((1, m)), n, interval)
    groups = _groups(tr.calls)
    node_levels = np.array([tr.calls[g[-1]].level for g in groups] + [tr.end_level])
    states = [_to_y(tr.calls[g[-1]].state, tr.calls[g[-1]].level, tr.state_kind)[0] for g in groups]
    states.append(_to_y(tr.end_state, tr.end_level, tr.state_kind)[0])
    states = np.array(states) / drive
    with np.errstate(divide="ignore", invalid="ignore"):
        if gradient == "eps":
            var, coord = node_levels, states
        else:
            var, coord = 1.0 / node_levels, states / node_levels[:, None]
        W = np.diff(coord, axis=0) / np.diff(var)[:, None]
    return W, node_levels, np.array(levels)


_GL = np.polynomial.legendre.leggauss(24)


def _step_quadrature(a: float, b: float, form: str) -> tuple[NDArray, NDArray]:
    """Points ``theta`` in [0, 1] (the form's variable, scaled to the step ``a -> b``) and the normalised
    measure of the form's gradient there (weights summing to 1)."""
    gradient, variable = FORMS[form]
    theta = 0.5 * (_GL[0] + 1)
    if variable == "s":
        s = a + (b - a) * theta
        ds_dtheta = np.full_like(theta, b - a)
    else:
        la, lb = -math.log(a), -math.log(b)
        s = np.exp(-(la + (lb - la) * theta))
        ds_dtheta = -s * (lb - la)
    density = ds_dtheta if gradient == "eps" else -ds_dtheta / s**2  # du = -ds / s^2
    w = 0.5 * _GL[1] * density
    return theta, w / w.sum()


def _theta(levels: NDArray, a: float, b: float, form: str) -> NDArray:
    if FORMS[form][1] == "s":
        return (levels - a) / (b - a)
    with np.errstate(divide="ignore"):
        return (np.log(a) - np.log(levels)) / (math.log(a) - math.log(b))


def _form_weights(nodes: Sequence[float], a: float, b: float, form: str) -> NDArray:
    """Exact variable-step weights on evaluation levels ``nodes`` for the step ``a -> b`` (levels ``s``): the
    Lagrange basis of the nodes in the form's variable, averaged over the step against the form's measure
    (for ``eps-s`` these are :func:`pndmkit.theory.multistep.lagrange_weights_float`)."""
    from pndmkit.theory.multistep import lagrange_weights_float

    if form == "eps-s":
        return lagrange_weights_float(list(nodes), a, b)
    tq, wq = _step_quadrature(a, b, form)
    th = _theta(np.asarray(nodes, dtype=np.float64), a, b, form)
    basis = np.ones((len(th), tq.size))
    for j in range(len(th)):
        for i in range(len(th)):
            if i != j:
                basis[j] *= (tq - th[i]) / (th[j] - th[i])
    return basis @ wq


def _residuals(W: NDArray, nodes: NDArray, levels: NDArray, q_max: int, form: str, noise: float) -> NDArray:
    """``res[n, q]``: ``sum_m W[n, m] theta_m^q`` minus the exact step mean of ``theta^q`` (order condition ``q``).

    Entries below ``noise`` times the row's largest are round-off, not weights: at a level far from the step
    (``theta`` in the hundreds near ``abar = 0``) ``theta^q`` would blow them up, so they are left out.
    """
    res = np.full((len(W), q_max + 1), np.nan)
    for k, row in enumerate(W):
        a, b = float(nodes[k]), float(nodes[k + 1])
        if not np.all(np.isfinite(row)) or a <= 0 or (b <= 0 and form != "eps-s"):
            continue
        theta = _theta(levels, a, b, form)
        used = np.abs(row) > noise * np.max(np.abs(row))
        tq, wq = _step_quadrature(a, b, form)
        for q in range(q_max + 1):
            res[k, q] = float(np.sum(row[used] * theta[used] ** q)) - float(np.sum(wq * tq**q))
    return res


#: the weight conditions are read on steps between these levels (s), past any warm-up and before any final-step
#: rule: there the step in lambda is small on every grid (near s = 0 a grid uniform in t has lambda-steps that do
#: not shrink, and at s ~ 100 the y-scale makes the recovered weights lose digits)
STEADY_LEVELS = (0.3, 10.0)


def _steady(nodes: NDArray) -> NDArray:
    """Indices of the steady steps of a grid with node levels ``nodes`` (``len(nodes) - 1`` steps)."""
    count = len(nodes) - 1
    rows = np.arange(count // 3, max(count // 3 + 1, count - 2))
    inside = rows[(nodes[rows] <= STEADY_LEVELS[1]) & (nodes[rows + 1] >= STEADY_LEVELS[0])]
    return inside if len(inside) >= 2 else rows


def _analyse(runner: Any, form: str, n: int, q_max: int) -> dict:
    interval = "weights" if runner.kind != "diffusers" else "data"
    tol = 1e3 * _tolerance(runner)
    results = []
    for steps in (n, 2 * n):
        W, nodes, levels = _recover(runner, steps, interval, form)
        res = _residuals(W, nodes, levels, q_max, form, noise=1e-6 if runner.kind == "diffusers" else 1e-11)
        steady = res[_steady(nodes)]
        steady = steady[np.all(np.isfinite(steady), axis=1)]
        worst = np.max(np.abs(steady), axis=0) if len(steady) else np.full(q_max + 1, np.nan)
        results.append((W, nodes, levels, worst))
    conditions, implied, first, outright = {}, math.inf, None, None
    for q in range(q_max + 1):
        a, b = float(results[0][3][q]), float(results[1][3][q])
        if a <= tol and b <= tol:
            rate = None
        else:
            # residuals on smooth grids are analytic in h, so their rates are integers; a rate below 0.7 is an
            # O(1) residual whose value still moves with the grid (not yet asymptotic), not a fractional power
            rate = float(math.floor(math.log2(a / b) + 0.3)) if b > 0 and a > 0 else 0.0
            rate = max(rate, 0.0)
            first = q if first is None else first
            if rate == 0.0 and outright is None:
                outright = q
            implied = min(implied, q + rate)
        conditions[q] = {"residual": a, "residual_2N": b, "rate": rate}
    limiting = [q for q, c in conditions.items() if c["rate"] is not None and q + c["rate"] <= implied + 0.25]
    W, nodes, levels, _ = results[0]
    return {"form": form, "variable": _form_name(form), "steps": n, "conditions": conditions, "first_broken": first,
            "first_broken_outright": outright, "limiting": limiting,
            "implied_order": None if math.isinf(implied) else round(implied, 1),
            **_middle_row(runner, W, nodes, levels, form)}


def _middle_row(runner: Any, W: NDArray, nodes: NDArray, levels: NDArray, form: str) -> dict:
    """A steady step's recovered weights (newest first) and the exact ones on the same levels, when these are
    nodes of the grid (a multistep row)."""
    rows = _steady(nodes)
    k = int(rows[len(rows) // 2])
    row = W[k]
    noise = 1e-6 if runner.kind == "diffusers" else 1e-11
    support = np.nonzero(np.abs(row) > noise * float(np.max(np.abs(row))))[0]
    support = support[np.argsort(levels[support])]  # newest (lowest level on a decreasing grid) first
    node_set = set(nodes[: k + 2].tolist())  # the step's own end too: trapezoid and corrector rules evaluate there
    multistep = all(float(levels[i]) in node_set for i in support)
    exact = None
    if multistep and 0 < len(support) <= 12 and (nodes[k + 1] > 0 or form == "eps-s"):
        exact = _form_weights(levels[support], float(nodes[k]), float(nodes[k + 1]), form).tolist()
    return {"step": k, "step_levels": [float(nodes[k]), float(nodes[k + 1])], "nodes": levels[support].tolist(),
            "recovered": row[support].tolist(), "exact": exact, "multistep": bool(multistep),
            "support": int(len(support))}


def _weights(runner: Any, n: int = WEIGHT_STEPS, q_max: int = 5) -> dict:
    """Both forms; reported is the one in which a step uses the fewest evaluations (a linear multistep method has
    a short memory only in the variables it was built in: in the other form every past evaluation enters), then
    the one exact for the most conditions, then (k-diffusion) the sampler's own variable sigma, then the smaller
    residual of the first broken one."""
    best = None
    for form in FORMS:
        r = _analyse(runner, form, n, q_max)
        q = r["first_broken"]
        own = runner.kind == "k-diffusion" and form == "eps-s"  # sigma is a k-diffusion sampler's own variable
        key = (-r["support"], q_max + 1 if q is None else q, own,
               0.0 if q is None else -r["conditions"][q]["residual"])
        if best is None or key > best[0]:
            best = (key, r)
    out = best[1]
    out["uniform"] = None
    if runner.kind == "k-diffusion":  # the same step on a grid uniform in sigma, where Adams weights are classical
        out["uniform"] = _middle_row(runner, *_recover(runner, n, "weights-uniform", out["form"]), out["form"])
    W1 = _recover(runner, n, "weights" if runner.kind != "diffusers" else "data", out["form"], drive=1e-3)[0]
    W2 = _recover(runner, n, "weights" if runner.kind != "diffusers" else "data", out["form"], drive=10.0)[0]
    fin = np.isfinite(W1) & np.isfinite(W2)
    if not fin.any():
        raise UsageError("target", f"{runner.name}: no finite step weight could be recovered from its runs (every "
                                   f"one is inf or NaN), so there is nothing to audit; with a short training table "
                                   f"(num_train_timesteps) the audit's step counts may not fit it")
    # clipping or thresholding a large x0 changes a weight by O(1); a float32 scheduler's weights recovered from
    # the small drive carry its rounding divided by the drive (2.4e-4 on Euler's v step), which is not a sign of it
    out["linear"] = bool(np.allclose(W1[fin], W2[fin], rtol=1e-2, atol=1e-2 * max(1.0, float(np.max(np.abs(W1[fin]))))))
    return out


def _verdict(rep: AuditReport) -> str:
    parts = []
    w = rep.weights
    order_said = bool(w["describes_order"]) and w["implied_order"] is not None
    if not w["linear"]:
        parts.append("not linear in the model output (a large x0 is clipped or thresholded): weights are for small "
                     "outputs only")
    if not w["describes_order"]:
        parts.append("the node-to-node weights do not describe this sampler (stages off the schedule, or a "
                     "corrector / single-step stages the node states do not show: its measured order exceeds theirs)")
    elif order_said:
        # a method of order p meets the conditions q < p and not q = p: the condition that does not hold is what
        # fixes the order, a finding only where that order is below the one the sampler should have
        p = w["implied_order"]
        conds = ", ".join(f"q={q} " + ("does not hold" if not w["conditions"][q]["rate"] else
                                       f"holds only to O(h^{w['conditions'][q]['rate']:g})") for q in w["limiting"])
        measured = "" if rep.order is None else (f", as measured ({rep.order:.2f})" if abs(rep.order - p) <= 0.5
                                                 else f"; measured {rep.order:.2f}")
        parts.append(f"the weights imply order {p:g}{measured} (order conditions for {w['variable']}: {conds}; "
                     f"order {p:g} needs every q < {p:g} to hold, and the first q that does not limits it: what a "
                     f"method of order {p:g} shows, a defect only where the sampler should have a higher order)")
    o, od = rep.order, rep.order_to_data
    if o is not None and od is not None and od < o - 0.5:
        parts.append(f"order drops from {o:.2f} to {od:.2f} on the interval ending at s="
                     f"{rep.intervals['data']['end_level']:.3g}")
    c = rep.consistency
    tol = 1e-5 if rep.kind == "diffusers" else 1e-9
    approx = "" if c["measurable"] else " (read approximately: not exact for a point mass)"
    if c["level_mismatch"] > tol:
        parts.append(f"the model is told a level up to {c['level_mismatch']:.1e} (in sigma_vp) off the "
                     f"sample's{approx}")
    if math.isfinite(c["end_level"]) and abs(_noise_fraction(c["end_reached"]) - _noise_fraction(c["end_level"])) > tol:
        parts.append(f"ends at s={c['end_reached']:.4g}, not at the schedule's last level {c['end_level']:.4g}{approx}")
    if c["interval"] == "data" and c["end_level"] > 0:
        parts.append(f"its schedule ends at s={c['end_level']:.3g}, not where abar = 1")
    if not rep.point_mass["exact"]:
        parts.append(f"not exact for data at one point (error {rep.point_mass['error']:.1e})")
    if len(parts) == 1 and order_said:  # the order the weights fix is all there is to say
        return parts[0] + "; nothing else found: consistent, exact for a point mass"
    return "; ".join(parts) or "nothing found: consistent, exact for a point mass, order conditions hold"


def audit(target: Any, *, problem: Any = "gmm2d", steps: Optional[Sequence[int]] = None, quick: bool = False,
          schedule: Optional[NoiseSchedule] = None, batch: int = 8, seed: int = 0, **config: Any) -> AuditReport:
    """Measure a sampler's order, cost, exactness and schedule consistency against exact ground truth.

    Parameters
    ----------
    target
        A k-diffusion-style sampler callable ``sampler(model, x, sigmas, extra_args=None, callback=None,
        disable=None)`` (``model(x, sigma)`` returns ``x0``); a diffusers scheduler class or instance, or
        ``"diffusers:ClassName"``; ``"module:function"``; a pndmkit method name, ``MethodSpec`` or ``Integrator``.
    problem : str or GaussianMixture
        The ground truth (a name of :data:`pndmkit.problems.PROBLEMS` or a mixture).
    steps : sequence of int, optional
        Step counts of the order sweeps (default :data:`DEFAULT_STEPS` of the target's kind).
    quick : bool
        Fewer step counts (:data:`QUICK_STEPS`): for tests, orders less reliable.
    schedule : VPSchedule, optional
        pndmkit methods only (default :class:`~pndmkit.schedules.LinearVP`).
    batch, seed : int
        Start points ``x_T`` (VP, standard normal) of the order sweeps.
    **config
        A diffusers scheduler's constructor keywords (``solver_order=3``); refused for other targets.

    Returns
    -------
    AuditReport

    Raises
    ------
    UsageError
        Unknown module, function, class or method; a configuration keyword or value the scheduler refuses, or
        under which it fails on the audit's runs (the message names the scheduler, the options and the error);
        a ``prediction_type`` other than :data:`PREDICTION_TYPES` (a scheduler is given the exact ``eps``
        converted to its prediction type); a target that is not callable or does not take k-diffusion's
        arguments (the message names it). A k-diffusion-style sampler that raises (the message names the sampler,
        its exception and the run; the exception is the ``__cause__``, with the sampler's own traceback), that
        makes no model call, or that returns something not shaped as its ``x``.
    FloatingPointError
        The target's end point has a NaN or infinite entry on the smooth interval (from a finite start, with a
        finite model): there is nothing to measure, so there is no report and no verdict. On the interval
        ending where ``abar = 1`` a non-finite end point is a finding, said in that interval's ``note``.
    """
    from pndmkit.problems import get_problem

    began = time.perf_counter()
    runner = resolve_target(target, schedule, **config)
    if isinstance(problem, str):
        try:
            gm = get_problem(problem)
        except (KeyError, ValueError) as exc:
            raise UsageError("problem", str(exc).strip("'\"")) from None
    else:
        gm = problem
    if not (isinstance(batch, int) and batch >= 1):
        raise UsageError("batch", f"batch must be an integer >= 1, got {batch!r}")
    if steps is None:
        steps = (QUICK_STEPS if quick else DEFAULT_STEPS)[runner.kind]
        if runner.kind == "diffusers" and not quick:
            regular = runner.regular_steps(DIFFUSERS_CANDIDATES)
            steps = regular if len(regular) >= 3 else steps
    steps = [int(n) for n in steps]
    if len(steps) < 2 or any(n < 1 for n in steps) or steps != sorted(set(steps)):
        raise UsageError("steps", f"steps must be at least two increasing integers >= 1, got {steps!r}")
    x_T = np.random.default_rng(seed).standard_normal((batch, gm.dim))
    intervals = _sweep(runner, gm, steps, x_T)
    counted = intervals["data"] if len(intervals["data"]["steps"]) >= 2 else intervals["smooth"]
    calls = _nfe_formula(counted["steps"], counted["nfe"])
    point_mass = _point_mass(runner)
    consistency = _consistency(runner)
    consistency["measurable"] = point_mass["exact"]  # else the levels read are approximate
    weights = _weights(runner)
    finest = intervals["smooth"].get("finest_local_order")
    # a middle step that uses stage levels (off the grid's nodes) is no multistep row, and a measured order above
    # the weights' means stages or a corrector act between the node states the weights are read from
    weights["describes_order"] = bool(weights["multistep"] and not (
        weights["implied_order"] is not None and finest is not None and finest > weights["implied_order"] + 0.7))
    rep = AuditReport(target=getattr(runner, "name", repr(target)), kind=runner.kind, variable=runner.variable,
                      order=intervals["smooth"]["order"], order_to_data=intervals["data"]["order"],
                      intervals=intervals, calls_per_step=calls, point_mass=point_mass,
                      consistency=consistency, weights=weights)
    rep.verdict = _verdict(rep)
    rep.cost_seconds = round(time.perf_counter() - began, 2)
    return rep
