r"""Every translation between a diffusers scheduler config and pndmkit, in one place.

diffusers describes a sampler by a scheduler config (``scheduler.config``, ``scheduler_config.json``): the
training noise table or flow/EDM parameters, what the network predicts, and the rules by which
``set_timesteps`` lays out the grid. pndmkit describes it by a :class:`~pndmkit.schedules.NoiseSchedule`, a
``prediction`` and a grid of times in the schedule's units. :func:`translate` reads a config once into a
:class:`Translation`; :meth:`Translation.layout` then asks *the source scheduler itself* (the diffusers
class that made the config, :func:`scheduler_class`) to lay out its grid for the arguments a pipeline passes, and
reads its timesteps, noise levels, end point and start scale (``init_noise_sigma``). So a swapped-in
:class:`~pndmkit.integrations.diffusers.PNDMKitScheduler` follows every grid field the source honours
(``timestep_spacing``, ``steps_offset``, ``set_alpha_to_one``, ``final_sigmas_type``, ``use_karras_sigmas``,
``use_exponential_sigmas``, ``use_beta_sigmas``, ``use_lu_lambdas``, ``shift``, ``use_dynamic_shifting`` with
``mu``, ``shift_terminal``, ...) by construction, not by a second implementation of those rules.

Three families, chosen by the source class and its fields:

=============  ===================================================  =============================================
family         schedule and time units                              network timestep / pipeline sample
=============  ===================================================  =============================================
``"vp"``       :class:`~pndmkit.schedules.DiscreteVP` of the betas  the training index (the source's own timestep
               (``t`` = training index, ``t = -1`` is abar = 1)     at grid points, e.g. Karras levels at rounded
                                                                    indices); sample ``x`` (DDPM, DDIM, PNDM,
                                                                    DPM-Solver, UniPC, DEIS) or ``x / alpha``
                                                                    (Euler, Heun, LMS: ``init_noise_sigma`` > 1)
``"flow"``     :class:`~pndmkit.schedules.FlowMatching` with        ``num_train_timesteps * sigma``; sample ``x``
               ``t_max = 1`` (``t`` = flow sigma)                   (FlowMatchEuler, ``use_flow_sigmas``)
``"edm"``      :class:`~pndmkit.schedules.EDM` (``t`` = sigma)      ``log(sigma) / 4``; the network sees ``c_in x``
                                                                    and its output ``F`` becomes
                                                                    ``x0 = c_skip x + c_out F`` (Karras et al.
                                                                    2022, arXiv 2206.00364, Table 1)
=============  ===================================================  =============================================

A field that would change the result and that pndmkit cannot honour is refused by :func:`translate` with a
message naming it (:data:`REFUSED`). ``clip_sample`` is honoured: the ``x0`` estimate of every evaluation is
clipped to ``clip_sample_range`` and told as the model's prediction, before the method combines anything (the
clipped denoiser DDPM's posterior uses, and DDIM's step with ``use_clipped_model_output=True``). DDIM's default
step pairs the clipped ``x0`` with the unclipped ``eps``, which no prediction of a multistep method expresses;
``method='ddim'``, one DDIM step per evaluation with nothing kept between steps, takes it exactly, on every
config (on a ``DDPMScheduler`` config it steps as ``DDIMScheduler.from_config`` of that config does) (:meth:`PNDMKitScheduler.step <pndmkit.integrations.diffusers.PNDMKitScheduler.step>`, its
``use_clipped_model_output``). Fields that only choose the *source's* own method (``solver_order``,
``skip_prk_steps``, ``algorithm_type``, ...) play no part: the method is pndmkit's, the one passed. Where that
method is the source's counterpart of another order or algorithm than the config's ``solver_order`` (and DPM-Solver's
``algorithm_type``) choose, ``from_config`` says so once with a :class:`ConventionWarning` naming the field, its
value, the method that runs and the registered method that reproduces the config, or that pndmkit has none
(``OWN_METHOD_FIELDS`` of :mod:`pndmkit.integrations.diffusers.scheduler`; where the config holds one of them, as
every diffusers scheduler's config does, the source's defaults filling the other): ``deis-3`` on
``DEISMultistepScheduler()``, whose default ``solver_order=2`` runs DEIS-2M, which pndmkit does not have;
``dpm-solver++-2m`` on ``solver_order=3`` (pass ``dpm-solver++-3m``) or on
``algorithm_type='dpmsolver'`` (pass ``dpm-solver-2m``); ``unipc-3`` on ``solver_order=2`` (pass ``unipc-2``);
``solver_order=1`` of DPM-Solver and DEIS is a DDIM step (pass ``ddim``). A method of another family (``ipndm`` on a
DPM-Solver config) runs with no word. The fields that choose the
*variant* of a method both have (``VARIANT_FIELDS`` of :mod:`pndmkit.integrations.diffusers.scheduler`) are followed
where the method is the source's counterpart, or refused by name where pndmkit has no such variant:

* ``DPMSolverMultistepScheduler`` and ``EDMDPMSolverMultistepScheduler`` with ``dpm-solver++-2m/3m`` (and
  ``dpm-solver-2m``): followed, ``solver_type="heun"`` (2M only; refused by name with 3M), ``lower_order_final``
  (``False``: no lowered last steps below 15 steps) and ``euler_at_final`` (a first-order last step on every grid);
* ``UniPCMultistepScheduler`` with ``unipc-2/3``: followed, ``solver_type`` (``B(h)``), ``lower_order_final`` and
  ``predict_x0=False`` (UniPC on ``eps``, through the DDIM transfer; refused on flow matching, as the source refuses
  it); refused by name, a non-empty ``disable_corrector`` and a ``solver_p``;
* ``DEISMultistepScheduler`` with ``deis-3``: followed, ``lower_order_final`` (``deis-3`` is the source's
  ``solver_order=3``; its default ``solver_order=2``, DEIS-2M, has no pndmkit counterpart).

Three conventions of a source's grid are followed where the method is the source's counterpart:

* A last step of length zero. The sigma grids of DPM-Solver multistep and UniPC with
  ``final_sigmas_type='sigma_min'`` (Karras, exponential, beta, Lu or flow sigmas), and DEIS's always, end at
  ``sigma_min`` twice. :meth:`Translation.layout` leaves that step out of the grid and names the source's timestep
  there (:attr:`Layout.zero_length_final`). The source still counts it: its ``lower_order_final`` lowers that step,
  so its last real step runs at order 2 (DPM-Solver++(3M): the one before at order 3), and its threshold of 15 steps
  counts it. DPM-Solver and DEIS take it at first order, the identity, so pndmkit calls the network once less; UniPC
  evaluates there and corrects its last real step with UniC, which pndmkit does too. The counterpart is built with
  ``zero_length_final=True`` (:class:`~pndmkit.exponential.ExponentialMultistep`,
  :class:`~pndmkit.exponential.UniPC`), and DPM-Solver's ``euler_at_final`` chooses nothing there (it lowers the
  zero-length step). A method passed built runs as built with a :class:`ConventionWarning` that names the fix,
  ``final_sigmas_type='zero'``. From 15 steps on ``DPMSolverMultistepScheduler(solver_order=3)`` takes that step at
  order 3, whose formula divides by its length: its sample is NaN; the swap returns the sample it had before.
  The timestep grids of ``DDIMScheduler`` and ``PNDMScheduler`` whose last step starts at ``t = 0`` and ends at
  ``abar_0`` (``set_alpha_to_one=False``, ``PNDMScheduler``'s default, with ``'leading'`` spacing and
  ``steps_offset=0``, ``'linspace'``, or ``'trailing'`` above ``2 T / 3`` steps) end with such a step too: DDIM's
  and PLMS's update with ``alpha_prev = alpha_t`` returns the sample unchanged, though the source calls the network
  there. :meth:`Translation.layout` leaves it out the same way (one network call fewer, the same sample); with
  ``clip_sample=True`` DDIM's step there clips the ``x0`` estimate, which the scheduler says with a
  :class:`ConventionWarning`. Only a grid whose one step has length zero is refused.
* ``PNDMScheduler``'s PRK stages. With a stride ``T // N`` it offsets its midpoint stages by ``T // N // 2``
  rounded down (the first at ``t - 62``, the second at ``t_next + 62`` for 8 steps of 1000, both evaluated at
  timestep ``t_next + 62``); ``f-pndm``'s PRK warm-up takes them there on such a config
  (:class:`~pndmkit.integrations.diffusers.scheduler.SourcePRK`). pndmkit's own ``f-pndm`` keeps the paper's
  midpoint ``(t + t_next) / 2``, as the official code does; the two differ where the stride is odd (8, 9, 12 steps).
* ``HeunDiscreteScheduler``'s last step. Its grid ends at ``sigma = 0`` (``t = -1``), and it takes that step by
  one Euler step, ``2 N - 1`` evaluations in all; ``pie`` takes it so on such a config (``Final`` with a
  :class:`~pndmkit.estimators.Single` last step), where its own second stage would evaluate the network at
  ``sigma = 0``, outside the training indices. Its second stage there was 1.4e-3 from the source at 10 steps with
  ``timestep_spacing='trailing'`` (a long last step) and 4e-4 with ``prediction_type='v_prediction'``; now 2e-7. A
  ``pie`` passed built runs as built with a :class:`ConventionWarning` naming the fix, ``method='pie'`` by name.

DEIS with ``prediction_type='sample'`` is 5e-5 from the source at 20 steps in float32 and 6e-14 in float64 on the
same noise levels: its conversion of ``x0`` to ``eps`` divides float32 rounding by ``sigma`` (about 0.01 at the
last steps).

Where the source's counterpart still differs from the source by design, ``set_timesteps`` says so by name with a
:class:`ConventionWarning`: ``PNDMScheduler`` with ``prediction_type='v_prediction'`` (it combines v outputs and
converts the sum to eps once, a first-order error; pndmkit converts each v at its own ``(x, t)``: 0.4 of the
sample's norm at 5 steps, 0.08 at 20, on smooth test networks), and DDIM, DDPM or PNDM with a ``timestep_spacing``
whose steps are not ``T // N`` apart (``'linspace'``; ``'trailing'`` where ``N`` does not divide ``T``: the source
moves each sample to ``t - T // N`` and evaluates the next one elsewhere; pndmkit integrates the timesteps it lists).

Where the source itself is inconsistent, the swap does not follow it, and says so where a pipeline would not
notice. On an image-to-image slice (``set_begin_index`` past 0) ``LMSDiscreteScheduler`` takes the order of its
formula from the step index counted from ``set_timesteps``, not from the derivatives it holds since the slice began,
so its first steps there are not consistent steps: the swap runs its method from the slice's start as a fresh run
(``ipndm-v``, LMS in ``s``, equals ``LMSDiscreteScheduler.step`` given ``order=min(len(derivatives) + 1, 4)``) and
says so with a :class:`ConventionWarning` (``PNDMScheduler`` on a slice, which counts its calls rather than the
timesteps it is given, is said in the refusal of the methods whose warm-up needs the whole grid).
``UniPCMultistepScheduler`` with ``solver_type='bh1'`` or ``predict_x0=False`` returns NaN at a last step to
``sigma = 0`` (an infinite log-SNR step ``h`` enters ``B(h) = h`` and the eps form's ``expm1(h)``); the swap's
sample there is finite, and equal to the source's on every step before.

A method passed built (an ``Integrator``, or a ``MethodSpec`` not registered under its name) is used as built, and
a variant field that chooses another variant is refused naming the field. Every other field of these sources
(``solver_order``, ``algorithm_type``, DEIS's ``solver_type``, DPM-Solver singlestep's ``lower_order_final``, ...)
chooses the source's own method (told where it differs from the method passed, above), or sets its grid, table or
network convention (above). Every field stays in the
config, so a config survives a round trip through pndmkit.

The other direction, a pndmkit schedule as a diffusers table, is :func:`table_from_schedule`;
:func:`scheduler_levels` reads the noise level a configured diffusers scheduler assumes at each of its
model calls (the head-to-head of :mod:`pndmkit.studies.peers` uses both).
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Optional

import numpy as np

from pndmkit._checks import with_article
from pndmkit.exponential import counted_steps
from pndmkit.schedules import EDM, DiscreteVP, FlowMatching, NoiseSchedule

__all__ = ["Translation", "Layout", "translate", "infer_source", "schedule_from_config", "table_from_schedule",
           "scheduler_levels", "SOURCES", "FLOW_SOURCES", "EDM_SOURCES", "SAMPLE_OVER_ALPHA", "BETA_SCHEDULES",
           "PREDICTION_TYPES", "REFUSED", "ConventionWarning", "refuse_foreign", "scheduler_class", "TrainingRangeWarning",
           "train_timesteps", "trained_betas", "check_timesteps", "custom_layout", "init_fields",
           "FLOAT32_LEVEL_RTOL", "zero_length_fix", "GRID_FIELDS", "grid_fields_set", "refuse_dynamic_shifting"]

#: relative tolerance on another scheduler's noise levels: diffusers' tables are float32 cumulative products of
#: up to 1000 betas (the top level of ``squaredcos_cap_v2`` is 6.6e-6 above pndmkit's float64 one). Not the
#: reference ODE tolerance :data:`pndmkit.studies.compare.LEVEL_RTOL`
FLOAT32_LEVEL_RTOL = 3e-5
#: diffusers ``beta_schedule`` names pndmkit reads (DiscreteVP ``.linear`` / ``.quad`` / ``.cosine``)
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
#: diffusers ``prediction_type`` -> pndmkit's prediction name
PREDICTION_TYPES = {"epsilon": "eps", "v_prediction": "v", "sample": "x0", "flow_prediction": "flow"}
#: diffusers schedulers whose configs are read (their own ``set_timesteps`` lays out the grid)
SOURCES = ("DDPMScheduler", "DDIMScheduler", "PNDMScheduler", "DPMSolverMultistepScheduler",
           "DPMSolverSinglestepScheduler", "UniPCMultistepScheduler", "DEISMultistepScheduler",
           "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler",
           "LMSDiscreteScheduler", "EDMEulerScheduler",
           "EDMDPMSolverMultistepScheduler", "FlowMatchEulerDiscreteScheduler")
#: sources of the flow family
FLOW_SOURCES = ("FlowMatchEulerDiscreteScheduler",)
#: sources of the EDM family
EDM_SOURCES = ("EDMEulerScheduler", "EDMDPMSolverMultistepScheduler")
#: VP sources whose pipeline sample is ``x / alpha`` (sigma schedulers: ``scale_model_input`` divides by
#: ``sqrt(sigma^2 + 1)``)
SAMPLE_OVER_ALPHA = ("EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler",
                     "LMSDiscreteScheduler")
#: config fields refused at any value but the harmless one, and why
REFUSED = {
    "thresholding": (False, "dynamic thresholding rescales each x0 estimate by a per-sample percentile; "
                            "pndmkit's methods do not"),
    "rescale_betas_zero_snr": (False, "a zero terminal SNR gives abar = 0 at the last training index, where the "
                                      "noise-to-signal ratio is infinite; pndmkit's discrete schedules need "
                                      "abar > 0"),
    "invert_sigmas": (False, "inverted flow sigmas run from data to noise"),
    "stochastic_sampling": (False, "stochastic flow sampling re-noises every step; pndmkit's methods are "
                                   "deterministic"),
    "timestep_type": ("discrete", "continuous timesteps feed the network log(sigma) / 4 on a VP table, "
                                  "which pndmkit does not"),
}

_SPACINGS = ("leading", "linspace", "trailing")


class ConventionWarning(UserWarning):
    """A source convention pndmkit does not reproduce, on a swap it still runs (the message says what differs)."""


class TrainingRangeWarning(UserWarning):
    """The network is evaluated at timesteps outside its training indices ``0 .. num_train_timesteps - 1`` (the
    stages of a last step that ends at ``abar = 1``, ``t = -1``); the message says which and how to avoid them."""


def _numbers(values: Any, name: str) -> np.ndarray:
    """``values`` (a sequence, array or tensor) as a float64 array; refused naming ``name`` where not numbers."""
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}")
    raw = values.detach().cpu().numpy() if hasattr(values, "detach") else values
    try:
        return np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D sequence of numbers, got {values!r}") from None


def _check_length(arr: np.ndarray, values: Any, name: str, levels_appended: bool = False) -> None:
    """Refuse custom ``timesteps`` or ``sigmas`` (``arr``, read from ``values`` by :func:`_numbers`) that are not 1-D
    or too short to make one step: ``timesteps`` are the step starts (at least one); ``sigmas`` are the step
    starts and then where the last step ends (at least two), or only the step starts where the source appends the
    end itself (``levels_appended``: flow-matching and EDM configs; at least one)."""
    if name == "timesteps" or levels_appended:
        if arr.ndim != 1 or arr.size == 0:
            what = "step start" if name == "timesteps" else \
                "noise level (the start of each step; the source appends where the last one ends)"
            raise ValueError(f"{name} must be a 1-D sequence of at least one {what}, got {values!r}")
    elif arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"sigmas must be a 1-D sequence of at least two noise levels (the start of each step, then "
                         f"where the last one ends, 0 for the config's end point), got {values!r}")


def check_timesteps(values: Any, name: str, schedule: NoiseSchedule, end: Optional[float] = None) -> list:
    """Custom step start times as floats: finite, strictly decreasing, in the schedule's domain and above
    ``end`` (where the last step ends).

    Raises
    ------
    ValueError
        The message names ``name`` (``timesteps`` or ``sigmas``), the entry and what is allowed.
    """
    arr = _numbers(values, name)
    _check_length(arr, values, name, levels_appended=True)
    out = [float(v) for v in arr]
    lo, hi = (schedule.t_min, schedule.t_max) if end is None else (end, schedule.t_max)
    for i, v in enumerate(out):
        if not math.isfinite(v):
            raise ValueError(f"{name}[{i}]={v!r} must be finite")
        inside = (lo < v <= hi) if end is not None else (lo <= v <= hi)
        if not inside:
            where = f"({lo:g}, {hi:g}] (above t={lo:g}, where the last step ends)" if end is not None \
                else f"[{lo:g}, {hi:g}]"
            raise ValueError(f"{name}[{i}]={v!r} lies outside {where}, the step starts {schedule!r} allows")
        if i and not v < out[i - 1]:
            raise ValueError(f"{name} must be strictly decreasing (from noise to data); {name}[{i}]={v!r} >= "
                             f"{name}[{i - 1}]={out[i - 1]!r}")
    return out


def _check_vp_sigmas(levels: np.ndarray, schedule: NoiseSchedule) -> float:
    """Refuse custom VP ``sigmas`` (float64, 1-D) that are not finite, not strictly decreasing, or outside
    ``(0, s(t_max)]`` (only the last, where the last step ends, may be 0); the message names ``sigmas[i]`` and
    the allowed range. Returns ``s(t_max)``, the table's largest level."""
    top = float(schedule.s(schedule.t_max))
    for i, v in enumerate(levels.tolist()):
        if not math.isfinite(v):
            raise ValueError(f"sigmas[{i}]={v!r} must be finite")
        if i and not v < levels[i - 1]:
            raise ValueError(f"sigmas must be strictly decreasing (from noise to data); sigmas[{i}]={v!r} >= "
                             f"sigmas[{i - 1}]={float(levels[i - 1])!r}")
        if v < 0 or v > top * (1.0 + FLOAT32_LEVEL_RTOL) or (v == 0 and i < levels.size - 1):
            raise ValueError(f"sigmas[{i}]={v!r} lies outside (0, {top!r}], the noise levels sqrt((1 - abar) / abar) "
                             f"of {schedule!r} (only the last sigma, where the last step ends, may be 0; a float32 "
                             f"level within {FLOAT32_LEVEL_RTOL:g} of the top is read as the top)")
    return top


def custom_layout(schedule: NoiseSchedule, end: float, timesteps: Any = None, sigmas: Any = None,
                  table: Any = None) -> "Layout":
    """The grid of custom ``timesteps`` or ``sigmas`` on a VP schedule, as pndmkit reads them wherever the config's
    own ``set_timesteps`` takes no such argument (DDIM, PNDM, ... and pndmkit's own configs).

    ``timesteps`` are the ``N`` step starts in training indices, the network's timesteps as given (a fractional
    one is passed to the network as is, as ``EulerDiscreteScheduler`` passes its own); the last step ends at
    ``end``. ``sigmas`` are the ``N + 1`` noise levels ``sigma = sqrt((1 - abar) / abar)`` of the grid, as
    ``EulerDiscreteScheduler.set_timesteps(sigmas=...)`` reads them on the same table (pndmkit's ``s``): the
    first ``N`` start the steps, at ``t = schedule.t_from_s(sigma)``, and the last is where the last step ends
    (``0``: at ``end``, the config's own end point; a positive level: at its time). The network's timestep at
    a level is Euler's, linear in ``log sigma`` between the table's integer indices (fractional, given to the
    network as is); pndmkit's time there interpolates the table as the schedule does, 4e-3 apart at
    ``sigma = 0.1`` on the default linear table (as on an ``EulerDiscreteScheduler`` config).

    Another scheduler's sigmas on the same table are float32 levels of a float32 table: a level within
    :data:`FLOAT32_LEVEL_RTOL` (relative, above or below) of ``s(t_max)`` is read as ``s(t_max)``, and
    ``sigmas[-2]`` within it of the end point's level, with a last sigma ``0``, starts a last step of length zero,
    which the grid leaves out (:attr:`Layout.zero_length_final`: its network timestep), as the sigma grids of DEIS,
    DPM-Solver and UniPC that end at ``sigma_min`` twice.

    Parameters
    ----------
    schedule : NoiseSchedule
        A VP schedule (time in training indices for :class:`~pndmkit.schedules.DiscreteVP`).
    end : float
        The config's end point in the schedule's time (``-1``: ``abar = 1``; ``0``: ``abar_0``).
    timesteps, sigmas : sequence of float, optional
        Exactly one of them.
    table : sequence of float, optional
        The source's own noise levels at the training indices ``0 .. T-1`` (its float32 table), from which the
        network's timestep of each sigma is interpolated as ``EulerDiscreteScheduler`` does (so its own sigmas
        give its own integer timesteps); default: the schedule's float64 levels.

    Returns
    -------
    Layout
        ``grid``: ``N + 1`` strictly decreasing times (float64), the last one where the last step ends;
        ``timesteps``: the network's timestep at each of the first ``N``; start scale 1 (``N`` real steps; with
        a last step of length zero, ``N - 1`` of them and ``zero_length_final``).

    Raises
    ------
    ValueError
        Both or neither given; an entry that is not finite, not decreasing, outside the schedule (a sigma above
        ``s(t_max)``, the table's largest; a negative one; a timestep outside ``(end, t_max]``), fewer than two
        sigmas, or a zero sigma before the last; the message names ``timesteps[i]`` or ``sigmas[i]``.
    """
    if timesteps is not None and sigmas is not None:
        raise ValueError("pass timesteps or sigmas, not both (sigmas are the noise levels of the step times)")
    if timesteps is None and sigmas is None:
        raise ValueError("pass timesteps or sigmas")
    if timesteps is not None:
        starts = check_timesteps(timesteps, "timesteps", schedule, end)
        return Layout(np.asarray(starts + [end], dtype=np.float64), starts, all(t.is_integer() for t in starts), 1.0)
    levels = _numbers(sigmas, "sigmas")
    _check_length(levels, sigmas, "sigmas")
    levels = np.array(levels, dtype=np.float64)
    top = _check_vp_sigmas(levels, schedule)
    given, levels = levels, np.where(np.abs(levels - top) <= FLOAT32_LEVEL_RTOL * top, top, levels)  # float32 roundings
    last = float(levels[-1])
    bottom = float(schedule.s(end)) if end > schedule.t_min else 0.0
    zero_final = (levels.size >= 3 and last == 0.0 and bottom > 0.0 and
                  abs(float(levels[-2]) - bottom) <= FLOAT32_LEVEL_RTOL * bottom)
    times = [float(schedule.t_from_s(v)) for v in levels[:-1].tolist()]
    if zero_final:  # sigmas[-2] is the end point's level: the last step has length zero
        times[-1] = end
    grid = np.asarray(times + [end if last == 0.0 else float(schedule.t_from_s(last))], dtype=np.float64)
    steps = times
    if isinstance(schedule, DiscreteVP):  # the network's timestep: linear in log sigma between table indices
        index = np.arange(schedule.num_train_timesteps, dtype=np.float64)
        ref = np.asarray(schedule.s(index) if table is None else table, dtype=np.float64)
        steps = np.interp(np.log(given[:-1]), np.log(ref), index).tolist()
    zero_step = None
    if zero_final:
        grid, steps, zero_step = grid[:-1], steps[:-1], float(steps[-1])
    if not np.all(np.diff(grid) < 0):
        raise ValueError(f"sigmas={levels.tolist()!r}: the last step starts at t={float(grid[-2])!r} but the "
                         f"config's end point is t={end!r}; the last step start must lie above it (sigmas[-2] > "
                         f"{bottom!r})")
    return Layout(grid, [float(t) for t in steps], False, 1.0, zero_step)


def _get(config: Any, key: str, default: Any = None) -> Any:
    if hasattr(config, "get"):
        return config.get(key, default)
    return getattr(config, key, default)


def schedule_from_config(config: Any) -> NoiseSchedule:
    """The noise schedule a diffusers scheduler config describes (the ``schedule`` of :func:`translate`).

    Parameters
    ----------
    config : mapping
        ``pipe.scheduler.config`` or any mapping with its fields; missing fields take diffusers' defaults
        (``num_train_timesteps`` 1000, linear betas 1e-4 to 0.02).

    Returns
    -------
    NoiseSchedule
        :class:`~pndmkit.schedules.DiscreteVP` for DDPM-style configs, :class:`~pndmkit.schedules.FlowMatching`
        (``t_max = 1``) for flow-matching ones, :class:`~pndmkit.schedules.EDM` for EDM ones.

        A flow-matching schedule's time is the flow sigma, the network's own time (it receives
        ``num_train_timesteps`` times it), whatever the shift: ``shift`` (or ``flow_shift``) moves the sampling
        times only, and is kept as the schedule's ``shift``, which its default grid ``"shifted"`` applies. With
        ``use_dynamic_shifting=True`` the shift is not in the config: diffusers' pipelines compute ``mu`` from the
        image size and pass it to ``set_timesteps`` (the shift is then ``exp(mu)`` with
        ``time_shift_type='exponential'``, ``mu`` with ``'linear'``), so the schedule returned has ``shift=1``:
        the same process, with an unshifted default grid. :class:`PNDMKitScheduler` lays out the shifted grid
        from ``set_timesteps(..., mu=...)`` as the source does; elsewhere give the grid yourself (a
        ``FlowMatching(shift=exp(mu), t_max=1.0)`` schedule's default grid, say). ``open_network`` and
        ``network_model`` refuse such a config (:func:`refuse_dynamic_shifting`), as they have no ``mu`` to pass.

    Raises
    ------
    ValueError
        An unknown ``beta_schedule``, ``trained_betas`` whose length is not ``num_train_timesteps``, a ``shift``
        or ``flow_shift`` that is not a finite number > 0, or the config of a scheduler class with no noise table
        to read (``IPNDMScheduler``, ``ScoreSdeVeScheduler``, ...; see :func:`translate`).
    """
    _refuse_tableless(config)
    return _schedule(config, _family(config))


def infer_source(config: Any) -> Optional[str]:
    """The diffusers scheduler class a config belongs to (one of :data:`SOURCES`, or None).

    A PNDMKitScheduler config (it has ``method``) names it in ``source``; any other config is read by
    :func:`scheduler_class`, and None is returned where that class is not one of :data:`SOURCES` (or none is
    recognised).
    """
    if _get(config, "method", None) is not None:
        name = _get(config, "source", None)
        return name if name in SOURCES else None
    name = scheduler_class(config)
    return name if name in SOURCES else None


def scheduler_class(config: Any) -> Optional[str]:
    """The diffusers scheduler class that made ``config``, among every scheduler class diffusers has (None where
    none is recognised).

    A saved config names its class in ``_class_name``, and so does the in-memory config of a scheduler loaded by
    ``from_pretrained`` (diffusers keeps the field). An in-memory config of a scheduler built in code
    (``DDIMScheduler().config``) does not: it is recognised by its fields. diffusers registers every constructor
    argument of a scheduler in its config and lists those left at their defaults in ``_use_default_values``; the
    class is the one with the most fields among those whose fields are all in the config and include every field
    left at its default (a config passed through ``from_config`` of another scheduler keeps that one's fields
    too). Classes with the same fields are told apart by those defaults where they differ
    (``KDPM2DiscreteScheduler().config`` has KDPM2's ``beta_start=0.00085`` among them, not
    ``LMSDiscreteScheduler``'s ``0.0001``).

    Two limits, where nothing in the config tells classes apart: classes with the same fields and no telling
    default read as the first of them in :data:`SOURCES` (a ``KDPM2DiscreteScheduler`` built with its betas
    given, as ``LMSDiscreteScheduler``; ``DDIMParallelScheduler`` and ``DDPMParallelScheduler``, the same
    samplers, as ``DDIMScheduler`` and ``DDPMScheduler``), and a plain mapping without the marks of a diffusers
    config (``_use_default_values``, diffusers' ``FrozenDict``) is matched against :data:`SOURCES` only, so that
    a few fields written by hand are not taken for another scheduler's config.

    Recognising a config by its fields reads every scheduler class, so the first such call in a process imports
    every diffusers scheduler module (remembered after). That costs about what diffusers' own first ``from_config``
    costs, which imports the compatible classes of the scheduler it builds: most of it is ``scipy.stats``, which
    several of diffusers' scheduler modules import.

    Parameters
    ----------
    config : mapping
        A scheduler config: ``scheduler.config`` (diffusers' ``FrozenDict``), the contents of
        ``scheduler_config.json``, or a plain ``dict``.

    Returns
    -------
    str or None
        The class name (``"DDIMScheduler"``, ...), not necessarily one of :data:`SOURCES`; ``None`` where no
        class fits (or ``config`` is not a mapping). Nothing is raised: :func:`translate` refuses the classes
        pndmkit does not read.
    """
    names = _recognised(config)
    return names[0] if names else None


def _recognised(config: Any) -> tuple:
    """The classes :func:`scheduler_class` cannot tell apart (its answer first; empty where none fits)."""
    name = _get(config, "_class_name", None)
    if isinstance(name, str):
        return (name,)
    if not hasattr(config, "keys"):
        return ()
    present = {key for key in config.keys() if not key.startswith("_")}
    defaults = _get(config, "_use_default_values", None)
    marked = defaults is not None or type(config).__name__ == "FrozenDict"
    defaults = set(defaults or ())
    classes = _scheduler_fields()
    fitting = [name for name, fields in classes.items()
               if (marked or name in SOURCES) and fields and defaults <= set(fields) <= present]
    if not fitting:
        return ()
    size = max(len(classes[name]) for name in fitting)
    tied = [name for name in fitting if len(classes[name]) == size]  # SOURCES first: a tie reads as the source
    told = [name for name in tied if all(_same(config[key], classes[name][key]) for key in defaults)]
    return tuple(told or tied)


def _refuse_class(config: Any) -> None:
    """Refuse the config of a scheduler class outside :data:`SOURCES` (:func:`scheduler_class`), naming it."""
    names = _recognised(config)
    if not names or names[0] in SOURCES or names[0] == "PNDMKitScheduler":
        return
    which = names[0] if len(names) == 1 else f"{' or '.join(names)} (the same fields)"
    raise ValueError(f"{which} configs cannot be honoured: pndmkit reads the configs of {', '.join(SOURCES)}")


def _refuse_tableless(config: Any) -> None:
    """Refuse the config of a scheduler class outside :data:`SOURCES` that has no noise table to read.

    Such a class (``IPNDMScheduler``, ``ScoreSdeVeScheduler``, ``FlowMatchHeunDiscreteScheduler``, ...) has no
    ``beta_schedule`` among its fields: every field :func:`translate` reads for the schedule (``beta_schedule``,
    ``beta_start``, ``beta_end``) would be diffusers' DDPM default filled in, not the network's. A class with
    a table (``LCMScheduler``, ``KDPM2DiscreteScheduler``, ...) is read for it. A PNDMKitScheduler config (it
    has ``method``) is not foreign.
    """
    if _get(config, "method", None) is not None:
        return
    names = _recognised(config)
    if not names or names[0] in SOURCES or names[0] == "PNDMKitScheduler":
        return
    fields = _scheduler_fields().get(names[0])
    if fields is None:  # a class the installed diffusers lacks (saved by another version): its saved fields
        fields = {key: None for key in config.keys() if not key.startswith("_")} if hasattr(config, "keys") else {}
    if "beta_schedule" in fields:
        return
    which = names[0] if len(names) == 1 else f"{' or '.join(names)} (the same fields)"
    raise ValueError(f"{which} configs hold no noise table (no beta_schedule, beta_start or beta_end), so the "
                     f"network's schedule cannot be read from them (diffusers' DDPM defaults would fill it in): "
                     f"pndmkit reads the configs of {', '.join(SOURCES)}, and the noise table and prediction type "
                     f"of other schedulers with a beta_schedule")


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays
        return False


@lru_cache(maxsize=1)
def _scheduler_fields() -> dict:
    """Every diffusers scheduler class that imports here, by name (:data:`SOURCES` first), with its constructor
    fields and their defaults (``{name: {field: default}}``)."""
    try:
        import diffusers
        from diffusers.schedulers.scheduling_utils import SchedulerMixin
    except ImportError:  # pragma: no cover - without diffusers no config is a diffusers one
        return {}
    out: dict = {}
    for name in list(SOURCES) + sorted(dir(diffusers)):
        if not name.endswith("Scheduler") or name in out:
            continue
        try:
            cls = getattr(diffusers, name)
        except (ImportError, AttributeError, RuntimeError):  # pragma: no cover - a module that fails to import
            continue
        if isinstance(cls, type) and issubclass(cls, SchedulerMixin) and type(cls).__name__ != "DummyObject":
            out[name] = {key: p.default for key, p in inspect.signature(cls.__init__).parameters.items()
                         if key not in ("self", "kwargs")}
    return out


@lru_cache(maxsize=None)
def init_fields(name: str) -> frozenset:
    """The config fields of the diffusers scheduler class ``name``: its constructor's parameters.

    Read once per class and remembered: ``from_config`` asks for every source's fields at each call, and
    ``inspect.signature`` is slow.

    Parameters
    ----------
    name : str
        A class name in ``diffusers`` (``"DDIMScheduler"``, ...).

    Returns
    -------
    frozenset of str
        The fields; empty where diffusers is not installed or its installed version has no such class (so that a
        name of :data:`SOURCES` that an older diffusers lacks adds no field and refuses nothing).
    """
    try:
        import diffusers
    except ImportError:  # pragma: no cover - without diffusers no config is a diffusers one
        return frozenset()
    cls = getattr(diffusers, name, None)
    if cls is None:  # pragma: no cover - an older diffusers
        return frozenset()
    return frozenset(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}


_source = infer_source


def refuse_foreign(cfg: dict, own: frozenset = frozenset()) -> None:
    """Refuse the config of a diffusers scheduler pndmkit does not read (LCM, TCD, ...), by class or by fields.

    ``own`` are the reader's own config fields (a PNDMKitScheduler config is not foreign).

    Raises
    ------
    ValueError
        A class outside :data:`SOURCES` (by ``_class_name`` or recognised by :func:`scheduler_class`), or fields no
        source has (naming them).
    """
    if cfg.get("method", None) is not None:
        return  # a PNDMKitScheduler config
    _refuse_class(cfg)
    known = frozenset().union(*(init_fields(source) for source in SOURCES))
    if not known:
        return  # no diffusers installed: nothing to compare with
    foreign = sorted(key for key in cfg if not key.startswith("_") and key not in known and key not in own)
    if foreign:
        raise ValueError(f"config fields {foreign} belong to a scheduler pndmkit does not read (an LCM or TCD "
                         f"scheduler, say): it reads the configs of {', '.join(SOURCES)}")


def refuse_dynamic_shifting(config: Any, subject: str) -> None:
    """Refuse a flow-matching config with ``use_dynamic_shifting=True`` where no ``mu`` can be given: a network
    wrapped or opened alone (:func:`~pndmkit.integrations.diffusers.network_model`, ``open_network``).

    Its time shift depends on the image size: diffusers' pipelines compute ``mu`` from it and pass it to
    ``set_timesteps`` (:class:`~pndmkit.integrations.diffusers.PNDMKitScheduler` takes it there too), while
    :func:`schedule_from_config` reads such a config with shift 1; a model wrapped from it would sample unshifted.

    Parameters
    ----------
    config : mapping
        A diffusers scheduler config.
    subject : str
        What the message calls the config: its file, or the parameter it was given as.

    Raises
    ------
    ValueError
        ``use_dynamic_shifting`` is set, naming the field and the way out: a copy of the config with a fixed shift.
    """
    if _get(config, "use_dynamic_shifting", False):
        raise ValueError(f"{subject} sets use_dynamic_shifting=true: its flow time shift depends on the image size (a "
                         f"pipeline computes mu from it and passes it to set_timesteps), which a network wrapped or "
                         f"opened alone cannot know; save a copy with use_dynamic_shifting=false and the shift you want (exp(mu) for "
                         f"time_shift_type='exponential', mu for 'linear') and pass it as the scheduler config "
                         f"(--scheduler-config FILE, scheduler_config=FILE or a mapping)")


def _family(config: Any) -> str:
    source = _source(config)
    if source in FLOW_SOURCES or _get(config, "use_flow_sigmas", False):
        return "flow"
    if source in EDM_SOURCES:
        return "edm"
    return "vp"


def _schedule(config: Any, family: str) -> NoiseSchedule:
    if family == "flow":
        shift = _flow_shift(config)
        return FlowMatching(shift=1.0 if _get(config, "use_dynamic_shifting", False) else shift, t_max=1.0)
    if family == "edm":
        return EDM(float(_get(config, "sigma_min", 0.002)), float(_get(config, "sigma_max", 80.0)))
    T = train_timesteps(config)
    betas = _get(config, "trained_betas", None)
    if betas is not None:
        betas = trained_betas(betas)
        if betas.shape != (T,):
            raise ValueError(f"trained_betas has {betas.size} values but num_train_timesteps={T}; they must agree")
        try:
            return DiscreteVP(betas)
        except ValueError as exc:
            raise ValueError(f"trained_betas: {exc}") from None
    kind = _get(config, "beta_schedule", "linear")
    start, end = float(_get(config, "beta_start", 0.0001)), float(_get(config, "beta_end", 0.02))
    if kind == "linear":
        return DiscreteVP.linear(T, start, end)
    if kind == "scaled_linear":
        return DiscreteVP.quad(T, start, end)
    if kind == "squaredcos_cap_v2":
        return DiscreteVP.cosine(T)
    raise ValueError(f"beta_schedule={kind!r} cannot be honoured: pndmkit reads {BETA_SCHEDULES} or trained_betas")


def _flow_shift(config: Any) -> float:
    """The config's flow time shift: ``shift`` (FlowMatchEulerDiscreteScheduler), else ``flow_shift`` (the
    ``use_flow_sigmas`` schedulers), else 1; each one set must be a finite number > 0 (a shift of 0 would be
    read as none by a truthiness test, so it is refused by name)."""
    for name in ("shift", "flow_shift"):
        value = _get(config, name, None)
        if value is None:
            continue
        ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer, float, np.floating)) \
            and math.isfinite(float(value)) and float(value) > 0
        if not ok:
            raise ValueError(f"{name} must be a finite number > 0 (the flow-matching time shift, "
                             f"t -> shift t / (1 + (shift - 1) t); 1: none), got {value!r}")
    shift = _get(config, "shift", None)
    shift = _get(config, "flow_shift", None) if shift is None else shift
    return 1.0 if shift is None else float(shift)


#: config fields that place the source's sampling grid (its timesteps or sigmas), not the noise schedule
GRID_FIELDS = ("timestep_spacing", "steps_offset", "set_alpha_to_one", "final_sigmas_type", "use_karras_sigmas",
               "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas", "lambda_min_clipped",
               "shift_terminal", "interpolation_type", "sigma_schedule", "rho")


def grid_fields_set(config: Any) -> dict:
    """The fields of :data:`GRID_FIELDS` that ``config`` sets to something other than its scheduler class's default.

    They place the source scheduler's sampling grid, which :class:`PNDMKitScheduler` lays out as the source does
    and which a model built on :func:`schedule_from_config` alone (``open_network``, ``pndmkit sample
    --checkpoint``) does not use: it samples on the grid it is given (pndmkit's default for the schedule).

    Parameters
    ----------
    config : mapping
        A diffusers scheduler config (``_class_name`` or its fields name the class, :func:`scheduler_class`).

    Returns
    -------
    dict
        ``{field: value}`` in the order of :data:`GRID_FIELDS`; empty where the class is not recognised or
        diffusers is not installed.
    """
    defaults = _scheduler_fields().get(scheduler_class(config) or "", {})
    out = {}
    for key in GRID_FIELDS:
        if key in defaults and hasattr(config, "get") and key in config and not _same(config[key], defaults[key]):
            out[key] = config[key]
    return out


def train_timesteps(config: Any) -> int:
    """The config's ``num_train_timesteps`` (default 1000) as an ``int``.

    Raises
    ------
    ValueError
        Not an integer >= 2 (bools and fractional numbers are refused; ``1000.0`` reads as 1000).
    """
    value = _get(config, "num_train_timesteps", 1000)
    if value is None:
        return 1000
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer, float, np.floating)) and \
        math.isfinite(float(value)) and float(value).is_integer() and float(value) >= 2
    if not ok:
        raise ValueError(f"num_train_timesteps must be an integer >= 2 (the training steps of the noise table), "
                         f"got {value!r}")
    return int(value)


def trained_betas(values: Any) -> np.ndarray:
    """``trained_betas`` as a 1-D float64 array.

    Raises
    ------
    ValueError
        Not a 1-D sequence of real numbers (the message names ``trained_betas``).
    """
    if isinstance(values, (str, bytes)):
        raise ValueError(f"trained_betas must be a 1-D sequence of betas in (0, 1), got {values!r}")
    try:
        betas = np.asarray(values.tolist() if hasattr(values, "tolist") else values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"trained_betas must be a 1-D sequence of betas in (0, 1): {exc}") from None
    if betas.ndim != 1:
        raise ValueError(f"trained_betas must be a 1-D sequence of betas in (0, 1), got shape {betas.shape}")
    return betas


@dataclass(frozen=True)
class Layout:
    """One ``set_timesteps``: the grid in pndmkit's time and what the pipeline sees at its points.

    Attributes
    ----------
    grid : numpy.ndarray
        ``N + 1`` decreasing times in the schedule's units (float64); the last one is the end point.
    timesteps : list of float
        The source scheduler's timestep at each of the first ``N`` grid points (what the network receives).
    integral : bool
        Whether the source gives ``int64`` timesteps.
    init_noise_sigma : float
        The source's start scale: the pipeline's initial latents are ``init_noise_sigma`` times unit noise.
    zero_length_final : float or None
        Where the source's noise levels end with the last one twice (``sigma_min`` as the last step's start and
        end: the sigma grids of DPM-Solver and UniPC with ``final_sigmas_type='sigma_min'``, DEIS's always), or its
        timesteps with a last step from ``t = 0`` to ``abar_0`` (DDIM and PNDM with ``set_alpha_to_one=False``),
        the source's timestep of that step of length zero, which ``grid`` leaves out; ``None`` where there is
        none. The source still evaluates the network there and counts the step (module documentation).
    repeated : tuple of (float, float)
        The ``(timestep, level)`` pairs the source lists again right after the same level (a step of length zero
        inside a sigma grid, or a two-stage source's second visit of a point), which ``grid`` lists once.
    """

    grid: np.ndarray
    timesteps: list
    integral: bool
    init_noise_sigma: float
    zero_length_final: Optional[float] = None
    repeated: tuple = ()

    @property
    def steps(self) -> int:
        """The steps ``N`` as the source counts them (a last step of length zero included)."""
        return counted_steps(len(self.grid) - 1, self.zero_length_final is not None)

    def agree(self, num_inference_steps: Optional[int], name: str, values: Any) -> "Layout":
        """This layout of custom ``values`` (``name``: ``timesteps`` or ``sigmas``), where ``num_inference_steps``
        is ``None`` or the number of steps they give.

        Raises
        ------
        ValueError
            ``num_inference_steps`` contradicts the steps of ``values`` (the message names both).
        """
        if num_inference_steps is not None and num_inference_steps != self.steps:
            raise ValueError(f"num_inference_steps={num_inference_steps} contradicts {name}={values!r}, which give "
                             f"{self.steps} steps; pass {name} alone or num_inference_steps={self.steps} with it")
        return self


@dataclass(frozen=True)
class Translation:
    """A diffusers scheduler config read into pndmkit's terms (build with :func:`translate`).

    Attributes
    ----------
    source : str or None
        The diffusers class whose ``set_timesteps`` lays out the grid (None: pndmkit's own grid rules).
    family : {"vp", "flow", "edm"}
        See the module documentation.
    schedule : NoiseSchedule
        The noise schedule (time units: training index, flow sigma, or EDM sigma).
    prediction : str
        What the network output is, as the config says (``eps``, ``v``, ``x0``, ``flow``); EDM outputs are
        preconditioned (:meth:`denoised`) and told as ``x0``.
    sample_over_alpha : bool
        The pipeline's sample is ``x / alpha`` (sigma schedulers) rather than ``x``.
    clip : float or None
        ``clip_sample_range`` when ``clip_sample`` is set: each evaluation's ``x0`` estimate is clipped to it.
    config : dict
        The config read (source fields included).
    """

    source: Optional[str]
    family: str
    schedule: NoiseSchedule
    prediction: str
    sample_over_alpha: bool = False
    clip: Optional[float] = None
    config: dict = field(default_factory=dict, repr=False)

    # -- the grid ---------------------------------------------------------------------------------------
    def source_scheduler(self) -> Any:
        """A fresh instance of the source diffusers scheduler on this config (``None`` without a source)."""
        if self.source is None:
            return None
        import diffusers

        cls = getattr(diffusers, self.source)
        keys = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
        return cls(**{key: value for key, value in self.config.items() if key in keys})

    def layout(self, num_inference_steps: Optional[int] = None, timesteps: Any = None, sigmas: Any = None,
               mu: Optional[float] = None, *, end_advice: Optional[Callable[[], Optional[str]]] = None) -> Layout:
        """The source's ``set_timesteps(...)`` read into pndmkit's grid (see the module documentation).

        Parameters
        ----------
        num_inference_steps, timesteps, sigmas, mu
            As the source's ``set_timesteps`` takes them (``None``: not given). On a VP config custom
            ``timesteps`` or ``sigmas`` that the source's ``set_timesteps`` does not take are read by
            :func:`custom_layout`; ``num_inference_steps`` may come with either where it is the number of steps they
            give (the source counts them; :meth:`Layout.agree`).
        end_advice : callable, optional
            Called only to refuse a last step of length zero: the change that ends the last step at
            ``abar = 1`` instead and runs (e.g. ``"set_alpha_to_one=True with clip_sample=False"`` for a
            method the clipped ``x0`` cannot serve there), or ``None`` where none does. Default:
            ``"set_alpha_to_one=True"``.

        Raises
        ------
        ValueError
            The source refuses the arguments (its message, prefixed by what was asked), or (flow and EDM
            configs) takes no ``sigmas``, ``timesteps`` or ``mu`` where they were given; ``timesteps`` with
            ``sigmas``; ``num_inference_steps`` that contradicts them; custom ``timesteps`` the source changes
            (DDPM and DPM-Solver cast them to integers); custom ``timesteps`` or ``sigmas`` too few for one step
            (none; one sigma on a VP config) or not 1-D; a custom entry that is not finite, or on a flow-matching
            config a sigma outside ``(0, 1]`` or sigmas that do not decrease (named as given, ``timesteps[i]`` or
            ``sigmas[i]``, before the source casts or shifts them); a flow-matching grid whose levels are not
            finite (a ``shift`` too small for the source's float32 arithmetic: the message names it); a grid whose
            only step has length zero (the message names the fields that lengthen it).
        """
        self._check_custom(timesteps, sigmas)
        src = self.source_scheduler()
        accepted = set(inspect.signature(src.set_timesteps).parameters)
        if self.source == "UniPCMultistepScheduler" and self.family == "vp":
            accepted.discard("sigmas")  # UniPC takes sigmas only as flow sigmas (use_flow_sigmas=True)
        custom = timesteps if timesteps is not None else sigmas
        if timesteps is not None and sigmas is not None:
            raise ValueError("pass timesteps or sigmas, not both (sigmas are the noise levels of the step times)")
        if custom is not None and num_inference_steps is not None:
            name = "timesteps" if timesteps is not None else "sigmas"
            return self.layout(None, timesteps, sigmas, mu, end_advice=end_advice).agree(num_inference_steps, name,
                                                                                        custom)
        if self.family == "vp" and custom is not None and num_inference_steps is None and mu is None and (
                ("timesteps" if timesteps is not None else "sigmas") not in accepted):
            return self._custom_layout(timesteps, sigmas)
        kwargs: dict[str, Any] = {}
        for name, value in (("num_inference_steps", num_inference_steps), ("timesteps", timesteps),
                            ("sigmas", sigmas), ("mu", mu)):
            if value is None:
                continue
            if name not in accepted:
                raise ValueError(f"{name}= cannot be honoured for {with_article(self.source)} config: its "
                                 f"set_timesteps takes {sorted(accepted - {'self', 'device'})}")
            kwargs[name] = value.tolist() if name in ("timesteps", "sigmas") and hasattr(value, "tolist") else value
        if self.family == "edm" and "sigmas" in kwargs:  # the EDM schedulers call sigmas.to(...): a list fails there
            import torch

            kwargs["sigmas"] = torch.as_tensor(kwargs["sigmas"], dtype=torch.float64)
        if self.source == "PNDMScheduler":  # its step times are DDIM's; its timesteps add its own PRK stages
            import diffusers

            keys = set(inspect.signature(diffusers.DDIMScheduler.__init__).parameters)
            src = diffusers.DDIMScheduler(**{k: v for k, v in self.config.items() if k in keys and k != "self"})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                src.set_timesteps(**kwargs)
        except (ValueError, AssertionError, TypeError) as exc:
            raise ValueError(f"set_timesteps({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) on "
                             f"{with_article(self.source)} config: {exc or type(exc).__name__}") from exc
        ts = src.timesteps.detach().cpu()
        integral, zero_final, repeated = not ts.dtype.is_floating_point, None, ()
        steps = [float(v) for v in ts.double().tolist()]
        if self.family == "vp" and custom is None:
            self._check_training_range(src, kwargs, steps)
        init = getattr(src, "init_noise_sigma", 1.0)
        init = float(init.item() if hasattr(init, "item") else init)
        if getattr(src, "sigmas", None) is not None and self.source not in ("DDIMScheduler", "PNDMScheduler",
                                                                           "DDPMScheduler"):
            levels = [float(v) for v in src.sigmas.detach().cpu().double().tolist()]
            if len(levels) >= 3 and len(steps) == len(levels) - 1 and levels[-3] > levels[-2] > 0 and \
                    abs(levels[-1] - levels[-2]) <= FLOAT32_LEVEL_RTOL * levels[-2]:
                # a last step of length zero (sigma_min twice), evaluated by the source; the two may differ by
                # float32 rounding either way (Lu lambdas of squaredcos_cap_v2 end 1.4e-9 below sigma_min)
                zero_final = steps[-1]
                levels[-1] = levels[-2]
            repeated = tuple((steps[i], levels[i]) for i in range(1, len(steps)) if levels[i] == levels[i - 1])
            steps, levels = _dedupe(steps, levels)
            grid = [self._time_of_level(s, tau) for s, tau in zip(levels, steps + [None])]
        else:
            final = getattr(src, "final_alpha_cumprod", None)
            end = -1.0 if final is None or float(final) >= 1.0 else 0.0
            if timesteps is None:
                self._warn_if_inconsistent(steps)
            if len(steps) >= 2 and end == 0.0 and steps[-1] == end:
                # the last step starts at t = 0 and ends at abar_0 (t = 0): length zero, the identity in DDIM's and
                # PLMS's update (alpha_prev = alpha_t), though the source still calls the network there
                zero_final, steps = steps[-1], steps[:-1]
            grid = steps + [end]
        if timesteps is not None:
            self._check_kept(timesteps, steps)
        grid_arr = np.asarray(grid, dtype=np.float64)
        if self.family == "flow" and not (np.all(np.isfinite(grid_arr)) and np.all(grid_arr <= 1.0 + 1e-6)):
            shift = self.config.get("shift", self.config.get("flow_shift"))
            raise ValueError(f"the {self.source} grid for {kwargs} with shift={shift!r} has noise levels that are not "
                             f"finite or lie above 1 ({_shown(grid_arr)}): the source's own float32 shift of its "
                             f"sigmas, shift * s / (1 + (shift - 1) * s), degenerates for so small a shift (every "
                             f"sigma below 1 shrinks towards 0); pass a larger shift (1.0 leaves the sigmas as they "
                             f"are)")
        if not np.all(np.diff(grid_arr) < 0):
            fields = ", ".join(f"{key}={self.config[key]!r}" for key in ("timestep_spacing", "steps_offset",
                                                                          "set_alpha_to_one", "final_sigmas_type")
                               if key in self.config)
            shown = _shown(grid_arr)
            raise ValueError(f"the {self.source} grid for {kwargs} with {fields} is not strictly decreasing in "
                             f"pndmkit's time ({shown}): a step of length zero (e.g. from t=0 to the "
                             f"end abar_0) cannot be integrated; {self._grid_fix(grid_arr, end_advice)}")
        return Layout(grid_arr, steps, integral, init, zero_final, repeated)

    def _check_training_range(self, src: Any, kwargs: dict, steps: list) -> None:
        """Refuse a source grid whose timesteps lie beyond the training indices ``0 .. T - 1``: ``'leading'``
        spacing adds ``steps_offset`` to ``arange(N) * (T // N)``, which reaches ``T`` at the top step counts
        (``N = T`` for DDIM, DDPM, PNDM, Euler, Heun, LMS; ``N = T - 1`` for DPM-Solver, UniPC, DEIS, whose
        ``'leading'`` layout divides by ``N + 1``). The message names ``steps_offset``, the timestep and the
        largest ``num_inference_steps`` (found by laying out smaller counts with the source) that fits."""
        T = train_timesteps(self.config)
        bad = max(steps, default=0.0)
        if bad <= T - 1:
            return
        n = kwargs.get("num_inference_steps")
        fit = None
        if isinstance(n, int):
            trial = type(src).from_config(src.config)
            for m in range(n - 1, 0, -1):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        trial.set_timesteps(**dict(kwargs, num_inference_steps=m))
                except (ValueError, AssertionError, TypeError):
                    continue
                if float(trial.timesteps.max()) <= T - 1:
                    fit = m
                    break
        spacing = self.config.get("timestep_spacing", "leading")
        offset = self.config.get("steps_offset", 0)
        fixes = ([f"num_inference_steps <= {fit}"] if fit is not None else []) + (["steps_offset=0"] if offset
                                                                                  else [])
        raise ValueError(f"{self.source} with timestep_spacing={spacing!r}, steps_offset={offset!r} lays out "
                         f"timestep {bad:g} for num_inference_steps={n!r}, beyond the training indices "
                         f"0..{T - 1}; pass {' or '.join(fixes) or 'fewer num_inference_steps'}")

    def _check_custom(self, timesteps: Any, sigmas: Any) -> None:
        """Refuse, before the source reads them, custom entries it would cast or shift out of recognition or
        fail on: too few of them for one step, or not 1-D (DDPM's ``set_timesteps`` indexes an empty list, Euler's
        takes the maximum of no sigmas); one that is not finite (DDPM and DPM-Solver cast ``nan`` to an
        ``int64``), on a VP config sigmas that do not decrease or lie outside ``(0, s(t_max)]`` (a source that reads
        them itself, as Euler's, would otherwise fail on pndmkit's times), and on a flow-matching config a sigma
        outside ``(0, 1]`` or sigmas that do not decrease (the source shifts them first, and a message on the shifted
        times would name values the user never gave). The
        message names ``timesteps``, ``timesteps[i]``, ``sigmas`` or ``sigmas[i]`` and what is allowed."""
        for name, values in (("timesteps", timesteps), ("sigmas", sigmas)):
            if values is None:
                continue
            arr = _numbers(values, name)
            _check_length(arr, values, name, levels_appended=self.family in ("flow", "edm"))
            for i, v in enumerate(arr.tolist()):
                if not math.isfinite(v):
                    raise ValueError(f"{name}[{i}]={v!r} must be finite")
            if name == "sigmas" and self.family == "vp":  # a source that reads them itself (Euler) would fail later,
                _check_vp_sigmas(arr, self.schedule)        # in pndmkit's time, on values the user never gave
            if name != "sigmas" or self.family != "flow":
                continue
            for i, v in enumerate(arr.tolist()):
                if not 0.0 < v <= 1.0:
                    raise ValueError(f"sigmas[{i}]={v!r} lies outside (0, 1], the noise levels of a flow-matching "
                                     f"config (1: pure noise; the source shifts them by shift="
                                     f"{self.config.get('shift', self.config.get('flow_shift'))!r} and appends the "
                                     f"final 0 itself)")
                if i and not v < arr[i - 1]:
                    raise ValueError(f"sigmas must be strictly decreasing (from noise to data); sigmas[{i}]={v!r} >= "
                                     f"sigmas[{i - 1}]={float(arr[i - 1])!r}")

    def _grid_fix(self, grid: np.ndarray, end_advice: Optional[Callable[[], Optional[str]]] = None) -> str:
        """What to pass when the source's grid has no step of positive length: its only step starts at ``t = 0``
        (``'leading'`` spacing with ``steps_offset=0``, or ``'linspace'``, at one step) and ends at ``abar_0``
        (``t = 0``, ``set_alpha_to_one=False``); a last step of length zero after others is left out
        (:attr:`Layout.zero_length_final`)."""
        cfg = self.config
        if grid.size >= 2 and grid[-1] == 0.0 and grid[-2] <= 0.0 and not cfg.get("set_alpha_to_one", True):
            alternative = "set_alpha_to_one=True" if end_advice is None else end_advice()
            return f"pass {zero_length_fix(cfg.get('timestep_spacing', 'leading'), alternative)[1]}"
        return "change one of those fields"

    def _custom_layout(self, timesteps: Any, sigmas: Any) -> Layout:
        """Custom ``timesteps`` or ``sigmas`` on a VP source whose ``set_timesteps`` does not take them (DDIM, PNDM,
        DEIS, LMS, ...): read by :func:`custom_layout`, the last step ending where the source's grids end."""
        src = self.source_scheduler()
        final = getattr(src, "final_alpha_cumprod", None)
        if final is not None or self.source == "DDPMScheduler":
            end = -1.0 if final is None or float(final) >= 1.0 else 0.0
        else:  # a sigma scheduler: where its own grids end
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                src.set_timesteps(10)
            end = self._time_of_level(float(src.sigmas[-1]), None)
        table = None
        if getattr(src, "alphas_cumprod", None) is not None:  # the source's float32 table (as Euler reads sigmas)
            abar = src.alphas_cumprod.detach().cpu()
            table = (((1 - abar) / abar) ** 0.5).double().numpy()
        return custom_layout(self.schedule, end, timesteps, sigmas, table)

    def _check_kept(self, timesteps: Any, steps: list) -> None:
        """Refuse custom ``timesteps`` that the source changed (DDPM and DPM-Solver cast them to ``int64``): the
        network would not be evaluated at the timesteps asked."""
        given = check_timesteps(timesteps, "timesteps", self.schedule)
        for i, (v, w) in enumerate(zip(given, steps)):
            if abs(v - w) > 1e-6 * max(1.0, abs(v)):
                raise ValueError(f"timesteps[{i}]={v!r} cannot be honoured for {with_article(self.source)} config: its "
                                 f"set_timesteps makes it {w:g} (it takes integer timesteps); pass integers")

    def _warn_if_inconsistent(self, steps: list) -> None:
        """DDPM, DDIM and PNDM move a sample from ``t`` to ``t - T // N`` whatever the next timestep is; where the
        two differ their samples are not the integration of their own timesteps, which pndmkit runs."""
        T, n = int(self.config.get("num_train_timesteps", 1000)), len(steps)
        stride = T // n
        gaps = [a - b for a, b in zip(steps[:-1], steps[1:])]
        bad = next((i for i, g in enumerate(gaps) if g != stride), None)
        if bad is None:
            return
        t = steps[bad]
        warnings.warn(f"{self.source} with timestep_spacing={self.config.get('timestep_spacing')!r} and {n} steps moves "
                      f"each sample from t to t - {T}//{n} = t - {stride}, but evaluates the next one at another "
                      f"timestep ({t:g} -> {t - stride:g}, then {steps[bad + 1]:g}); pndmkit integrates the timesteps "
                      f"themselves ({t:g} -> {steps[bad + 1]:g}), so its samples differ from {self.source}'s. For the "
                      f"same sampler use timestep_spacing='leading' (or 'trailing' with a step count that "
                      f"divides num_train_timesteps={T})", ConventionWarning, stacklevel=4)

    def _time_of_level(self, level: float, timestep: Optional[float]) -> float:
        """pndmkit time of a source noise level (flow/EDM: the sigma; VP: ``s``, snapped to the timestep's
        integer index where the table gives that level)."""
        if self.family in ("flow", "edm"):
            return level
        sched = self.schedule
        if level == 0.0:
            return -1.0
        if timestep is not None and float(timestep).is_integer():
            t = float(timestep)
            if abs(float(sched.s(t)) - level) <= 1e-5 * level:
                return t
        top = float(sched.s(sched.t_max))
        if abs(level - top) <= FLOAT32_LEVEL_RTOL * top:  # the float32 table's top (6.6e-6 above on squaredcos_cap_v2)
            return float(sched.t_max)
        t = float(sched.t_from_s(level))
        nearest = round(t)
        if abs(float(sched.s(nearest)) - level) <= 1e-5 * level and sched.t_min <= nearest <= sched.t_max:
            return float(nearest)
        return t

    # -- the network's side ----------------------------------------------------------------------------
    def network_time(self, t: float) -> float:
        """The timestep the network receives at pndmkit time ``t`` off the grid points (stages)."""
        if self.family == "flow":
            return float(self.config.get("num_train_timesteps", 1000)) * t
        if self.family == "edm":
            return 0.25 * math.log(t)
        return t

    def sample_scale(self, t: float) -> float:
        """Pipeline sample = ``sample_scale(t) * x`` (``1 / alpha(t)`` for sigma schedulers, else 1)."""
        return 1.0 / float(self.schedule.alpha(t)) if self.sample_over_alpha else 1.0

    def input_scale(self, t: float) -> float:
        """Network input = ``input_scale(t) * x`` (EDM's ``c_in``, else 1)."""
        if self.family == "edm":
            return 1.0 / math.sqrt(t * t + self.sigma_data ** 2)
        return 1.0

    @property
    def sigma_data(self) -> float:
        """EDM's ``sigma_data`` (0.5 by default)."""
        return float(self.config.get("sigma_data", 0.5))

    def denoised_coefficients(self, t: float) -> tuple[float, float]:
        """EDM: ``(c_skip, c_out)`` with ``x0 = c_skip x + c_out F`` at sigma ``t`` (Karras et al. 2022, Table 1;
        ``c_out`` changes sign for ``v_prediction``)."""
        sd2 = self.sigma_data ** 2
        c_out = t * self.sigma_data / math.sqrt(t * t + sd2)
        return sd2 / (t * t + sd2), (-c_out if self.config.get("prediction_type") == "v_prediction" else c_out)

    @property
    def told_prediction(self) -> str:
        """What the scheduler tells pndmkit: ``x0`` for EDM (preconditioned) and clipped outputs, else
        :attr:`prediction`."""
        return "x0" if self.family == "edm" or self.clip is not None else self.prediction


def zero_length_fix(spacing: str, alternative: Optional[str] = None) -> tuple[dict, str]:
    """The config change that lengthens a last step of length zero: one that starts at ``t = 0``, where
    ``set_alpha_to_one=False`` ends it (``'leading'`` spacing with ``steps_offset=0``, or ``'linspace'``).

    Parameters
    ----------
    spacing : str
        The config's ``timestep_spacing``.
    alternative : str, optional
        Another change that runs (``"set_alpha_to_one=True"``, ...), offered after it in the text.

    Returns
    -------
    changes : dict
        The config fields to set: ``{"steps_offset": 1}`` for ``'leading'`` spacing, none for ``'trailing'``
        (fewer steps is the change), else ``{"timestep_spacing": "trailing"}``.
    text : str
        The advice, to follow "pass" in a message: the change, why it works and the alternative.
    """
    if spacing == "trailing":  # its last step starts at round(T / N) - 1: t = 0 for N > 2 T / 3
        changes = {}
        text = ("at most 2/3 of num_train_timesteps as num_inference_steps ('trailing' spacing starts the last step "
                "at t = round(T / N) - 1, which is t=0 for more steps, where set_alpha_to_one=False ends it)")
    elif spacing == "leading":
        changes = {"steps_offset": 1}
        text = ("steps_offset=1 ('leading' spacing with steps_offset=0 starts the last step at t=0, where "
                "set_alpha_to_one=False ends it; steps_offset=1 starts it at t=1)")
    else:
        changes = {"timestep_spacing": "trailing"}
        text = (f"timestep_spacing='trailing' ({spacing!r} spacing ignores steps_offset and starts the last step at "
                f"t=0, where set_alpha_to_one=False ends it; 'trailing' starts it above t=0)")
    if alternative:
        text += f", or {alternative} (the last step then ends at abar = 1, t=-1)"
    return changes, text


def _shown(grid: np.ndarray) -> Any:
    """A grid for a message: whole up to 12 points, else its first 3 and last 4."""
    if grid.size <= 12:
        return grid.tolist()
    return f"[{', '.join(map(str, grid[:3].tolist()))}, ..., {', '.join(map(str, grid[-4:].tolist()))}]"


def _dedupe(steps: list, levels: list) -> tuple[list, list]:
    """Drop the repeated (timestep, level) pairs of two-stage sources (Heun, KDPM2 list each inner point twice)."""
    out_steps: list = []
    out_levels: list = []
    for i, s in enumerate(levels):
        if out_levels and s == out_levels[-1]:
            continue
        out_levels.append(s)
        if i < len(steps):
            out_steps.append(steps[i])
    return out_steps[: len(out_levels) - 1], out_levels


def translate(config: Any, **overrides: Any) -> Translation:
    """Read a diffusers scheduler config (``overrides`` win over its fields).

    The source class is the config's ``source`` field (a PNDMKitScheduler config) or the class that made it
    (:func:`scheduler_class`: its ``_class_name``, else recognised by its fields) when that is one of
    :data:`SOURCES`; otherwise pndmkit's own grid rules apply (``source=None``).

    A config of another diffusers scheduler with a DDPM noise table (``LCMScheduler``, ``KDPM2DiscreteScheduler``,
    ...: a ``beta_schedule`` among its fields) is read for that table and its ``prediction_type`` alone, with
    pndmkit's own grid rules: :meth:`PNDMKitScheduler.from_config
    <pndmkit.integrations.diffusers.PNDMKitScheduler.from_config>`, which would lay out its grid, and
    :func:`~pndmkit.integrations.diffusers.pretrained.open_network`, which would sample its network, refuse it
    (:func:`refuse_foreign`). A config of a scheduler class with no such table (``IPNDMScheduler``, which makes
    its noise levels from the step count; ``ScoreSdeVeScheduler``, a variance-exploding SDE; the flow-matching
    classes other than :data:`FLOW_SOURCES`, ...) is refused by class: there is no schedule in it to read, and the
    fields the schedule is read from would be diffusers' DDPM defaults filled in. Its class is recognised as
    :func:`scheduler_class` recognises it (``_class_name``, or the fields and ``_use_default_values`` of an
    in-memory config).

    Raises
    ------
    ValueError
        A field of :data:`REFUSED` at another value than the harmless one, an unknown ``prediction_type`` or
        one the family does not define, a bad schedule (messages name the field), or the config of a scheduler
        class with no noise table (the message names the class).
    """
    _refuse_tableless(config or {})
    cfg = {key: value for key, value in dict(config or {}).items()}
    cfg.update(overrides)
    for key, (ok, why) in REFUSED.items():
        value = cfg.get(key, ok)
        if value is not None and value != ok:
            raise ValueError(f"{key}={value!r} cannot be honoured: {why}. Override it: "
                             f"PNDMKitScheduler.from_config(config, method=..., {key}={ok!r})")
    algorithm = cfg.get("algorithm_type", None)
    if isinstance(algorithm, str) and algorithm.startswith("sde-"):
        raise ValueError(f"algorithm_type={algorithm!r} cannot be honoured: the SDE variant adds noise at every step; "
                         f"pndmkit's methods are deterministic (use algorithm_type='dpmsolver++')")
    source = _source(cfg)
    family = _family(cfg)
    spacing = cfg.get("timestep_spacing", None)
    if source is not None and spacing is not None and spacing not in _SPACINGS:
        raise ValueError(f"timestep_spacing={spacing!r} cannot be honoured for {with_article(source)} config: "
                         f"diffusers lays out {_SPACINGS}; pndmkit's own grid kinds are for PNDMKitScheduler configs without a source")
    kind = cfg.get("prediction_type", "flow_prediction" if family == "flow" else "epsilon")
    if family == "flow" and source in FLOW_SOURCES:
        kind = "flow_prediction"  # FlowMatchEuler has no prediction_type: its networks predict the velocity
    if kind not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type={kind!r} cannot be honoured: pndmkit reads {tuple(PREDICTION_TYPES)}")
    prediction = PREDICTION_TYPES[kind]
    schedule = _schedule(cfg, family)
    if family != "edm" and prediction not in schedule.predictions:
        raise ValueError(f"prediction_type={kind!r} cannot be honoured on {schedule!r}, a {family!r} schedule: it "
                         f"defines {schedule.predictions}")
    if family == "flow" and prediction != "flow":
        raise ValueError(f"prediction_type={kind!r} cannot be honoured with flow sigmas: pndmkit runs flow-matching "
                         f"configs on velocity networks (prediction_type='flow_prediction')")
    if family == "edm" and prediction not in ("eps", "v"):
        raise ValueError(f"prediction_type={kind!r} cannot be honoured for {source}: its preconditioning reads "
                         f"'epsilon' or 'v_prediction'")
    clip = None
    if cfg.get("clip_sample", False):
        clip = float(cfg.get("clip_sample_range", 1.0))
        if not clip > 0:
            raise ValueError(f"clip_sample_range must be > 0 when clip_sample=True, got {clip!r}")
    return Translation(source, family, schedule, prediction, source in SAMPLE_OVER_ALPHA, clip, cfg)


def table_from_schedule(schedule: NoiseSchedule, T: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """``(betas, times)``: the discrete table a diffusers VP scheduler needs (``trained_betas``) for ``schedule``.

    A :class:`~pndmkit.schedules.DiscreteVP` is its own table (``times[i] = i``). A continuous VP schedule is
    sampled at ``times[i] = t_min + (i + 1) / T * (t_max - t_min)``, as DDPM discretises the linear VP SDE:
    index ``T - 1`` is ``t_max`` and, for the linear VP, index 0 is ``t = 1e-3``, its default end.
    """
    if isinstance(schedule, DiscreteVP):
        return np.asarray(schedule.betas, dtype=np.float64), np.arange(schedule.num_train_timesteps, dtype=np.float64)
    times = schedule.t_min + (np.arange(T) + 1.0) / T * (schedule.t_max - schedule.t_min)
    log_abar = np.asarray(schedule.log_abar(times), dtype=np.float64)
    betas = -np.expm1(np.diff(np.concatenate([[0.0], log_abar])))
    return betas, times


def scheduler_levels(scheduler: Any) -> tuple[list[float], float]:
    """The noise-to-signal ratio ``s`` a configured diffusers VP scheduler assumes at each model call, and at
    its end (its own float32 tables read as float64)."""
    name = type(scheduler).__name__
    ts = [float(t) for t in scheduler.timesteps.double().tolist()]
    if name in ("DDIMScheduler", "PNDMScheduler"):
        ac = scheduler.alphas_cumprod.double()

        def s_of(abar: float) -> float:
            return math.sqrt(max(1.0 - abar, 0.0) / abar)

        final = float(scheduler.final_alpha_cumprod)
        return [s_of(float(ac[int(t)])) for t in ts], s_of(final)
    if name == "IPNDMScheduler":
        sig = [float(v) for v in scheduler.betas]
        alp = [float(v) for v in scheduler.alphas]
        levels = [s / a if a > 0 else math.inf for s, a in zip(sig, alp)]
        return levels[: len(ts)], levels[len(ts)]
    sigmas = [float(v) for v in scheduler.sigmas.double().tolist()]
    return sigmas[: len(ts)], sigmas[-1]
