r"""Any pndmkit method as a diffusers scheduler: :class:`PNDMKitScheduler`.

The scheduler is a thin driver of pndmkit's ask/tell protocol (docs/protocol.md): ``set_timesteps`` lays
out the grid and lists every model evaluation of the method on it (Runge-Kutta stages included, so
``len(scheduler.timesteps)`` is the method's NFE), and each ``step(model_output, timestep, sample)`` tells
the output to an immutable :class:`~pndmkit.run.Run` and returns the point of the next evaluation (or, after
the last one, the final sample). All sampler state lives in that run: ``set_timesteps`` starts over, and two
schedulers made from one config share nothing.

The config is read by :mod:`pndmkit.integrations.diffusers.config`: a config from one of its ``SOURCES``
(its ``_class_name``, or the class recognised by its fields) keeps that source's grid, end point, start scale and network timesteps; a config of
pndmkit's own (no source) uses :func:`pndmkit.grids.make_grid` with ``timestep_spacing`` as the grid kind
(``leading`` / ``linspace`` / ``trailing`` as in DDIM, or a pndmkit kind such as ``karras``, ``logsnr``),
``steps_offset`` for ``leading`` and ``leading-multistep``, and the last step to ``t = -1`` (``abar = 1``) if ``set_alpha_to_one`` else
to ``t = 0``.

The pipeline sees the source's conventions: ``timesteps`` are the source's network timesteps at the grid
points (stages in between get the family's map: the training index, ``1000 sigma`` for flow matching,
``log(sigma) / 4`` for EDM), ``init_noise_sigma`` is the source's, ``scale_model_input`` divides a sigma
scheduler's sample by ``sqrt(s^2 + 1)`` (EDM: ``c_in``), and ``step`` returns the sample in the source's
coordinates. DDPM, DDIM and PNDM move a sample to ``t - T // N`` even where that is not their next timestep;
pndmkit integrates the timesteps themselves and says so there (a ``ConventionWarning``).

Image-to-image
--------------
Pipelines slice ``scheduler.timesteps[t_start * scheduler.order:]`` and call ``set_begin_index`` with that
index. ``order`` is the number of evaluations of every step when the method has the same number in each, the last
step allowed fewer (``pie`` 2, also on a ``HeunDiscreteScheduler`` config, whose last step is one Euler step;
``prk`` / ``prk-s`` / ``rk4`` 4; single-evaluation methods 1), so the slice starts at grid step
``t_start`` at the strength asked. A method whose fresh start there would evaluate at other times than the
slice (warm-ups of ``f-pndm``, ``plms``, ...) is refused by ``set_begin_index`` with a message naming the
strength, and so is a strength that keeps no step (``begin_index`` past the last step). The run from there warms
up from its first step, as diffusers' multistep schedulers do (their ``lower_order_nums`` counts from the first
``step``), and lowers its last steps by the whole grid, as DPM-Solver and DEIS count ``len(timesteps)``: a
``few_steps`` threshold of 15 that the ``N`` steps of ``set_timesteps`` reach lowers nothing, however few steps the
strength keeps (20 steps at strength 0.5 run their last 10 at full order; a fresh pndmkit run on those 10 alone
would lower its last two, 3e-3 to 1e-2 from the source for ``dpm-solver++-3m`` and ``deis-3``). UniPC caps its
order by the steps left, the same on the slice.

Host synchronisation
--------------------
``step`` keeps its own evaluation counter: it reads a tensor timestep only when it lives on the CPU (to check
it against the evaluation asked, at no device cost); only the first ``step`` of a loop without
``set_begin_index`` reads its timestep to find where the loop starts, as diffusers' schedulers do. The latent
is not checked for NaN/inf (that would be a device synchronisation per loop), as diffusers' schedulers do not:
``Integrator.start(..., check_x=False)``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import warnings
from typing import Any, Optional, Union

import numpy as np

try:
    import torch
    from diffusers.configuration_utils import ConfigMixin, register_to_config
    from diffusers.schedulers.scheduling_utils import SchedulerMixin, SchedulerOutput
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("pndmkit.integrations.diffusers needs diffusers and torch: "
                      "pip install 'pndmkit[peers,torch]'") from exc

from pndmkit._checks import check_bool, reject_unknown, with_article
from pndmkit.adaptive import AdaptiveIntegrator
from pndmkit.estimators import Final, Single, Warmup
from pndmkit.exponential import VARIANTS, ExponentialMultistep, UniPC, counted_steps
from pndmkit.grids import GRID_KINDS, GRIDS, make_grid
from pndmkit.integrations.diffusers.config import (PREDICTION_TYPES, SOURCES, ConventionWarning, Layout,
                                                   TrainingRangeWarning,
                                                   Translation, custom_layout, infer_source, init_fields,
                                                   refuse_foreign, train_timesteps, trained_betas, translate,
                                                   zero_length_fix)
from pndmkit.integrator import Integrator
from pndmkit.methods import DEFAULT_METHOD, MethodSpec, check_method_type, get_method, reserved_name
from pndmkit.sampling import planned_undefined_eps_times
from pndmkit.run import Run
from pndmkit.runge_kutta import RungeKutta
from pndmkit.schedules import NoiseSchedule, same_schedule
from pndmkit.stability import warn_if_unstable
from pndmkit.tableaus import RK4
from pndmkit.transfers import DataTransfer, DDIMTransfer

__all__ = ["PNDMKitScheduler", "evaluation_times", "VARIANT_FIELDS", "OWN_METHOD_FIELDS", "SourcePRK"]

_MARKER = "integrator:"
#: the advice of a refusal where no change that was tried runs
_NOTHING_RUNS = "no change of the config or of the method that was tried runs"


def evaluation_times(integrator: Integrator, grid: Any, prediction: str = "eps") -> tuple[list[float], dict[int, int]]:
    """Every model evaluation time of ``integrator`` on ``grid`` and the evaluations that start its steps, by a
    dry run of the ask/tell protocol (:meth:`pndmkit.Integrator.dry_run`, which walks each integrator and grid
    once: a pipeline calls ``set_timesteps`` before every batch).

    Parameters
    ----------
    integrator : Integrator
        A fixed-step method.
    grid : sequence of float
        The step boundaries, decreasing, in the schedule's time ``t``.
    prediction : str
        What the run is told (pndmkit's names: ``"eps"``, ``"x0"``, ``"v"``, ``"flow"``); a flow-matching grid
        from ``t = 1`` runs only on ``flow`` (or ``x0``) outputs.

    Returns
    -------
    times : list of float
        The evaluation times in order (their number is the NFE).
    starts : dict
        ``{k: j}`` for each evaluation ``k`` that is the first of grid step ``j`` and lies at ``grid[j]``.

    Raises
    ------
    ValueError
        As :meth:`pndmkit.Integrator.dry_run`: a bad grid or prediction, or an evaluation where ``prediction``
        gives no ``eps``.
    """
    walk = integrator.dry_run(grid, prediction)
    return list(walk.times), dict(walk.starts)


def _integrator(method: Any, schedule: NoiseSchedule) -> Integrator:
    if isinstance(method, str) and method.startswith(_MARKER):
        raise ValueError(f"method={method!r} is the config of a hand-built Integrator, which a config cannot "
                         f"restore: pass method= the Integrator again, or register it (pndmkit.register_method) "
                         f"and pass its name")
    if isinstance(method, Integrator):
        theirs = method.transfer.schedule
        if not same_schedule(theirs, schedule):
            raise ValueError(f"method is an Integrator built on {theirs!r}, but the config describes {schedule!r}: "
                             f"build it on pndmkit.integrations.diffusers.schedule_from_config(config)")
        return method
    if isinstance(method, str) and method not in _registry() and reserved_name(method) is None:
        # a saved config names the method that ran; a user's method is registered by the process that imports its
        # module, not by the one that reloads the config
        raise ValueError(f"unknown method {method!r}; if a module of your own registers it "
                         f"(pndmkit.register_method), import that module before building the scheduler from this "
                         f"config: a registered method lives only in the process that registered it (the pndmkit "
                         f"command imports the modules named in PNDMKIT_PLUGINS and the pndmkit.methods entry "
                         f"points); known methods: "
                         f"{', '.join(_registry())}")
    spec = method if isinstance(method, MethodSpec) else get_method(method)
    built = spec.build(schedule)
    if isinstance(built, AdaptiveIntegrator):
        raise ValueError(f"method={spec.name!r} is adaptive (it chooses its own steps), so it has no timesteps to "
                         f"give a pipeline; choose a fixed-step method")
    return built


#: sources whose variant fields (``solver_type``, ``lower_order_final``, ``euler_at_final``) choose the variant of
#: DPM-Solver(++) multistep, which pndmkit has too
_DPM_SOURCES = ("DPMSolverMultistepScheduler", "EDMDPMSolverMultistepScheduler")
#: DPM-Solver's singlestep source: its order 1 is a DDIM step, its higher orders singlestep methods pndmkit lacks
_SINGLESTEP = "DPMSolverSinglestepScheduler"
#: the config fields that choose the variant of a method a source and pndmkit both have, by source (read by
#: :func:`_config_variant`; every other field of a source chooses its grid, its network convention, or its own method)
VARIANT_FIELDS = {
    "DPMSolverMultistepScheduler": ("solver_type", "lower_order_final", "euler_at_final"),
    "EDMDPMSolverMultistepScheduler": ("solver_type", "lower_order_final", "euler_at_final"),
    "UniPCMultistepScheduler": ("solver_type", "lower_order_final", "predict_x0", "disable_corrector", "solver_p"),
    "DEISMultistepScheduler": ("lower_order_final",),
}


def _flag(config: Any, key: str, default: bool, source: Optional[str]) -> bool:
    """The config's ``key`` as a bool; ``default`` (the method's own setting) where the config lacks it.
    ``TypeError`` naming ``source`` (the config's scheduler class) and ``key`` for a value not ``True`` or
    ``False``."""
    return check_bool(config.get(key, default), f"{source or 'the config'}'s {key}")


def _exponential_body(estimator: Any) -> tuple[Optional[ExponentialMultistep], bool]:
    """``(multistep, euler_at_final)``: an :class:`ExponentialMultistep`, or one whose last step a first-order step
    takes (``Final(multistep, (Single(),))``, DPM-Solver's ``euler_at_final``); ``(None, False)`` for anything else."""
    if isinstance(estimator, ExponentialMultistep):
        return estimator, False
    if (isinstance(estimator, Final) and isinstance(estimator.body, ExponentialMultistep) and
            len(estimator.finals) == 1 and type(estimator.finals[0]) is Single and estimator.few_steps is None):
        return estimator.body, True
    return None, False


def _config_variant(integrator: Integrator, hand_built: Optional[str], translation: Translation,
                    zero_length_final: bool = False) -> Integrator:
    """The variant of ``integrator`` that the config's variant fields (:data:`VARIANT_FIELDS`) choose, where the
    source has the method too; every other method (for which those fields only choose the source's own method) is
    returned unchanged.

    * ``UniPCMultistepScheduler`` with :class:`~pndmkit.exponential.UniPC`: ``solver_type`` is ``B(h)``
      (``"bh1"``, ``"bh2"``), ``lower_order_final`` the estimator's, ``predict_x0`` the transfer
      (:class:`~pndmkit.transfers.DataTransfer` for ``True``, :class:`~pndmkit.transfers.DDIMTransfer`, UniPC on
      ``eps``, for ``False``; refused on a flow-matching config, as the source refuses it); a non-empty
      ``disable_corrector`` (UniC skipped after the steps listed) and a ``solver_p`` (another scheduler as
      predictor) are refused.
    * ``DPMSolverMultistepScheduler`` / ``EDMDPMSolverMultistepScheduler`` with DPM-Solver(++) multistep
      (:class:`~pndmkit.exponential.ExponentialMultistep`, ``"dpm-solver"`` weights): ``solver_type="heun"``
      takes 2M's second-order step with ``"exact"`` weights, ``lower_order_final`` is the estimator's (last two
      steps lowered below 15 steps), and ``euler_at_final=True`` takes the last step at first order on every grid
      (:class:`~pndmkit.estimators.Final` with :class:`~pndmkit.estimators.Single`).
    * ``DEISMultistepScheduler`` with DEIS multistep (``"exact"`` weights on the DDIM transfer):
      ``lower_order_final``.

    With ``zero_length_final`` (the source's grid ends with a step of length zero, which pndmkit's grid leaves
    out: :attr:`~pndmkit.integrations.diffusers.config.Layout.zero_length_final`) the estimator counts that step
    as the source does (``zero_length_final=True`` of :class:`~pndmkit.exponential.ExponentialMultistep` and
    :class:`~pndmkit.exponential.UniPC`: the order caps and the threshold of 15 steps count it, and UniPC corrects
    the last step from an evaluation at its end), and ``euler_at_final`` chooses nothing: DPM-Solver takes that
    zero-length step, the identity, at first order.

    Parameters
    ----------
    integrator : Integrator
        The method as built (or as passed).
    hand_built : str or None
        What the caller passed where it built the method itself (``"an Integrator"``, ``"a MethodSpec ..."``);
        it is then used as built, and a variant field that contradicts it is refused rather than followed.
        ``None`` for a registered method, whose variant the config chooses.
    translation : Translation
        The config read.
    zero_length_final : bool
        The grid stands for the source's grid with a last step of length zero (above).

    Raises
    ------
    ValueError
        A variant pndmkit does not have (``solver_type="heun"`` with DPM-Solver++(3M), a non-empty
        ``disable_corrector``, a ``solver_p``, ``predict_x0=False`` on flow matching), a variant field that is not
        a bool, or a hand-built ``integrator`` that is another variant than the config chooses (the message names
        the fields and both estimators).
    """
    config, source = translation.config, translation.source
    estimator, transfer = integrator.estimator, integrator.transfer
    name = integrator.name or "the method"
    solver_type = config.get("solver_type", None)
    if isinstance(estimator, UniPC) and source == "UniPCMultistepScheduler":
        solver_p, skipped = config.get("solver_p", None), config.get("disable_corrector", None)
        if solver_p is not None:
            raise ValueError(f"solver_p={type(solver_p).__name__} cannot be honoured by {name!r}: {source} then "
                             f"predicts with that scheduler's step and corrects with UniC, pndmkit's UniPC predicts "
                             f"with UniP; pass solver_p=None")
        if skipped:
            raise ValueError(f"disable_corrector={skipped!r} cannot be honoured by {name!r}: {source} skips UniC "
                             f"after the steps listed, pndmkit's UniPC corrects after every step; pass "
                             f"disable_corrector=[]")
        predict_x0 = _flag(config, "predict_x0", isinstance(transfer, DataTransfer), source)
        if not predict_x0 and translation.family == "flow":
            raise ValueError(f"predict_x0=False cannot be honoured by {name!r} on a flow-matching config: {source} "
                             f"takes flow_prediction only with predict_x0=True (UniPC on x0); pass predict_x0=True")
        wanted = UniPC(estimator.formula_order, solver_type if solver_type in VARIANTS else estimator.variant,
                       _flag(config, "lower_order_final", estimator.lower_order_final, source), corrector=True,
                       zero_length_final=zero_length_final)
        kind = DataTransfer if predict_x0 else DDIMTransfer
        lowered = wanted.lower_order_final
        chosen = [("solver_type", solver_type, wanted.variant != estimator.variant),
                  ("lower_order_final", lowered, lowered != estimator.lower_order_final),
                  ("predict_x0", predict_x0, type(transfer) is not kind),
                  ("disable_corrector", [], not estimator.corrector)]
    else:
        body, at_final = _exponential_body(estimator)
        if body is None:
            return integrator
        if source in _DPM_SOURCES and (body.weights == "dpm-solver" or
                                       (solver_type == "heun" and body.formula_order == 2)):
            if solver_type == "heun" and body.formula_order != 2:
                raise ValueError(f"solver_type='heun' cannot be honoured by {name!r}: {source}'s heun variant changes "
                                 f"the second-order step of its order ramp, which pndmkit's {body.formula_order}M "
                                 f"takes as 'midpoint'; pass solver_type='midpoint', or method='dpm-solver++-2m' "
                                 f"(its heun variant runs)")
            weights = "exact" if solver_type == "heun" else "dpm-solver"
            euler = _flag(config, "euler_at_final", at_final, source)
        elif (source == "DEISMultistepScheduler" and body.weights == "exact" and not at_final and
              isinstance(transfer, DDIMTransfer)):
            weights, euler = "exact", False
        else:
            return integrator
        lowered = _flag(config, "lower_order_final", body.lower_order_final, source)
        inner = ExponentialMultistep(body.formula_order, weights, lowered, body.few_steps, zero_length_final)
        wanted = Final(inner, (Single(),)) if euler and not zero_length_final else inner
        kind = type(transfer)
        chosen = [("solver_type", solver_type, weights != body.weights),
                  ("lower_order_final", lowered, lowered != body.lower_order_final),
                  ("euler_at_final", euler, euler != at_final)]
    if repr(wanted) == repr(estimator) and type(transfer) is kind:
        return integrator
    if hand_built:
        differ = [(key, value) for key, value, differs in chosen if differs]
        fields = " and ".join(f"{key}={value!r}" for key, value in differ)
        raise ValueError(f"method is {hand_built} with {estimator!r} on {type(transfer).__name__}, but the config's "
                         f"{fields} {'chooses' if len(differ) == 1 else 'choose'} {wanted!r} on {kind.__name__}: "
                         f"build it with that, or pass {' and '.join(key + '=' for key, _ in differ)} to match yours")
    if type(transfer) is not kind:
        transfer = kind(transfer.schedule)
    return dataclasses.replace(integrator, estimator=wanted, transfer=transfer)


#: the fields by which a source chooses its *own* method within the family pndmkit has counterparts of, by source
#: (read by :func:`_own_method_note`): not followed, since the method is the one passed, but told where they differ
OWN_METHOD_FIELDS = {
    "DPMSolverMultistepScheduler": ("solver_order", "algorithm_type"),
    "EDMDPMSolverMultistepScheduler": ("solver_order", "algorithm_type"),
    "DPMSolverSinglestepScheduler": ("solver_order", "algorithm_type"),
    "UniPCMultistepScheduler": ("solver_order",),
    "DEISMultistepScheduler": ("solver_order",),
}
#: the registered pndmkit method that runs what a source's own method fields choose, by family and
#: ``(order, algorithm)`` (``None`` where pndmkit has none); order 1 is a DDIM step in each family but UniPC's,
#: whose corrector still runs
_OWN_METHODS = {
    "dpm": {(1, "dpmsolver++"): "ddim", (1, "dpmsolver"): "ddim", (2, "dpmsolver++"): "dpm-solver++-2m",
            (3, "dpmsolver++"): "dpm-solver++-3m", (2, "dpmsolver"): "dpm-solver-2m"},
    "unipc": {(2, None): "unipc-2", (3, None): "unipc-3"},
    "deis": {(1, None): "ddim", (3, None): "deis-3"},
}


def _own_method_name(family: str, order: int, algorithm: Optional[str]) -> str:
    """The name of a source's own multistep method, for messages (``DPM-Solver++(3M)``, ``UniPC-2``, ``DEIS-2M``)."""
    if family == "dpm":
        return f"DPM-Solver{'++' if algorithm == 'dpmsolver++' else ''}({order}M)"
    return f"UniPC-{order}" if family == "unipc" else f"DEIS-{order}M"


def _own_method_note(integrator: Integrator, translation: Translation) -> Optional[str]:
    """What a :class:`ConventionWarning` tells where ``integrator`` is of the source's own family but another
    order or algorithm than the config's own method fields (:data:`OWN_METHOD_FIELDS`: ``solver_order``, and
    ``algorithm_type`` of DPM-Solver) choose; ``None`` where they agree, where the method is of another family
    (``ipndm`` on a DPM-Solver config: the method is pndmkit's), and where the config holds none of those fields
    (a scheduler's own config holds them all; the source's defaults fill any one missing).

    The families: DPM-Solver(++) multistep (:class:`~pndmkit.exponential.ExponentialMultistep` with
    ``"dpm-solver"`` weights, DPM-Solver++ on :class:`~pndmkit.transfers.DataTransfer`, DPM-Solver on
    :class:`~pndmkit.transfers.DDIMTransfer`) on ``DPMSolverMultistepScheduler`` and
    ``EDMDPMSolverMultistepScheduler``; :class:`~pndmkit.exponential.UniPC` on ``UniPCMultistepScheduler``; DEIS
    multistep (``"exact"`` weights on the DDIM transfer) on ``DEISMultistepScheduler``; the DPM-Solver multistep
    methods on ``DPMSolverSinglestepScheduler`` too, whose ``solver_order=1`` is a DDIM step (pass ``ddim``) and
    whose higher orders are singlestep methods pndmkit does not have (said at every order, its own included). The
    message names the fields, their values, the method that runs and the registered method that reproduces the
    config (or says that pndmkit has none: DEIS-2M, DEIS's default, DPM-Solver(3M) on ``eps``, and the singlestep
    DPM-Solvers of order >= 2).

    Parameters
    ----------
    integrator : Integrator
        The method as built from the name (or as passed), before the config's variant fields.
    translation : Translation
        The config read.
    """
    source, config = translation.source, translation.config
    fields = OWN_METHOD_FIELDS.get(source, ())
    if not any(key in config for key in fields):
        return None
    estimator, transfer = integrator.estimator, integrator.transfer
    body, _ = _exponential_body(estimator)
    if isinstance(estimator, UniPC) and source == "UniPCMultistepScheduler":
        family, order, algorithm = "unipc", estimator.formula_order, None
    elif body is not None and body.weights == "dpm-solver" and (source in _DPM_SOURCES or source == _SINGLESTEP):
        family, order = "dpm", body.formula_order
        algorithm = "dpmsolver++" if isinstance(transfer, DataTransfer) else "dpmsolver"
    elif (body is not None and body is estimator and body.weights == "exact" and isinstance(transfer, DDIMTransfer)
          and source == "DEISMultistepScheduler"):
        family, order, algorithm = "deis", body.formula_order, None
    else:
        return None
    import diffusers

    defaults = inspect.signature(getattr(diffusers, source).__init__).parameters
    value = {key: config.get(key, defaults[key].default) for key in fields}
    theirs = (value["solver_order"], value.get("algorithm_type"))
    if source == _SINGLESTEP and theirs[0] >= 2:  # singlestep steps of order >= 2: pndmkit has none
        return (f"{source}'s solver_order={theirs[0]!r} (algorithm_type={theirs[1]!r}) runs singlestep "
                f"DPM-Solver steps of order {theirs[0]}, and pndmkit has no singlestep DPM-Solver of that order; "
                f"method={integrator.name or 'the method'!r} runs the multistep "
                f"{_own_method_name(family, order, algorithm)} instead (the method is pndmkit's: the config's "
                f"solver_order and algorithm_type choose only the source's own; solver_order=1, a DDIM step, is "
                f"method='ddim')")
    if theirs == (order, algorithm):
        return None
    differ = [key for key, ran in zip(fields, (order, algorithm)) if value[key] != ran]
    named = " and ".join(f"{key}={value[key]!r}" for key in differ)
    verb = "runs" if len(differ) == 1 else "run"
    runs = ("first-order steps (DDIM's)" if theirs[0] == 1 and family != "unipc"
            else _own_method_name(family, *theirs))
    ours = f"method={integrator.name or 'the method'!r} runs {_own_method_name(family, order, algorithm)}"
    fix = _OWN_METHODS[family].get(theirs)
    if fix is None:
        chooses = "chooses" if len(differ) == 1 else "choose"
        return (f"{source}'s {named} {verb} {runs}, which pndmkit does not have; {ours} instead (the method is "
                f"pndmkit's: the config's {' and '.join(differ)} {chooses} only the source's own)")
    return f"{source}'s {named} {verb} {runs}; {ours} instead: pass method={fix!r} to reproduce it"


class SourcePRK(RungeKutta):
    """PNDM's pseudo RK4 (PRK) with its midpoint stages where diffusers' ``PNDMScheduler`` puts them.

    The paper's PRK (Liu et al. 2022, arXiv 2202.09778, eq. 12) and the official code (``gen_order_4`` of
    ``runner/method.py`` in github.com/luping-liu/PNDM) take both midpoint stages of a step ``t -> t_next`` at
    ``(t + t_next) / 2``, as pndmkit's ``prk`` and ``f-pndm`` do. ``PNDMScheduler`` offsets them by
    ``half = num_train_timesteps // N // 2`` training steps, rounded down: the first midpoint stage is moved to
    ``t - half`` and the second to ``t_next + half``, and the network is told ``t_next + half`` for both (its
    ``prk_timesteps``). Where the stride ``t - t_next`` is ``2 * half`` (``'leading'`` spacing with an even
    ``num_train_timesteps // N``: 5, 6, 7 or 10 steps of 1000) both are the midpoint; with an odd stride (8, 9 or
    12 steps) the first stage lies half a training step after it and the second half a step before.

    Parameters
    ----------
    half : int
        ``num_train_timesteps // N // 2`` (>= 1), in training steps.
    """

    def __init__(self, half: int) -> None:
        super().__init__(RK4)
        self.half = int(half)

    def __repr__(self) -> str:
        return f"SourcePRK(half={self.half})"

    def stage_times(self, t: float, t_next: float, phi: Any) -> list[float]:
        """``[t, t - half, t_next + half, t_next]``."""
        return [t, t - self.half, t_next + self.half, t_next]

    def network_times(self, grid: Any) -> dict:
        """``{t - half: t_next + half}`` for each step of ``grid``: the timestep ``PNDMScheduler`` tells the network
        at its first midpoint stage."""
        return {float(t) - self.half: float(t_next) + self.half for t, t_next in zip(grid[:-1], grid[1:])}


def _source_prk(estimator: Any, half: int) -> Any:
    """``estimator`` with the PRK warm-up of F-PNDM (``PNDMScheduler``'s method) replaced by :class:`SourcePRK`;
    ``None`` for any other estimator (``prk`` alone, which ``PNDMScheduler`` does not have, keeps the paper's
    midpoints)."""
    if isinstance(estimator, Warmup) and repr(estimator.first) == repr(RungeKutta(RK4)):
        return Warmup(SourcePRK(half), estimator.steps, estimator.then)
    return None


def _counted_on_whole_grid(estimator: Any, steps: int) -> Any:
    """``estimator`` for a run on the last steps of a grid of ``steps`` steps (image-to-image), whose lowering of
    its last steps counts the whole grid, as diffusers' ``DPMSolverMultistepScheduler`` and
    ``DEISMultistepScheduler`` count ``len(timesteps)``: a ``few_steps`` threshold the whole grid reaches lowers
    nothing, however few steps the run keeps. The order caps of a lowered run count the steps left, the same on
    the slice as on the whole grid, so nothing else changes (UniPC, which has no threshold, is returned as it is).

    Each estimator counts the whole grid as it counts a grid of its own (:func:`~pndmkit.exponential.counted_steps`):
    one with ``zero_length_final`` counts the source's step of length zero, which the grid leaves out; a
    :class:`~pndmkit.estimators.Final`, which has no such flag, counts the steps taken, as its run on the whole grid
    (strength 1) counts them, so that a strength below 1 lowers the same last steps as strength 1.

    Parameters
    ----------
    estimator : GradientEstimator
        The method's estimator as configured for the whole grid.
    steps : int
        Steps of the whole grid that ``set_timesteps`` laid out (taken: a step of length zero is not among them).

    Returns
    -------
    GradientEstimator
        ``estimator`` itself, or a copy with ``lower_order_final=False`` (an
        :class:`~pndmkit.exponential.ExponentialMultistep`) or without its final estimators (a
        :class:`~pndmkit.estimators.Final` with a ``few_steps`` threshold) where the whole grid reaches the threshold.
    """
    whole = counted_steps(steps, getattr(estimator, "zero_length_final", False))
    if isinstance(estimator, ExponentialMultistep):
        if estimator.lower_order_final and estimator.few_steps is not None and whole >= estimator.few_steps:
            return ExponentialMultistep(estimator.formula_order, estimator.weights, False, estimator.few_steps,
                                        estimator.zero_length_final)
        return estimator
    if isinstance(estimator, Final):
        body = _counted_on_whole_grid(estimator.body, steps)
        if estimator.few_steps is not None and whole >= estimator.few_steps:
            return body
        return estimator if body is estimator.body else Final(body, estimator.finals, estimator.few_steps)
    return estimator


def _init_keys() -> set:
    return set(inspect.signature(PNDMKitScheduler.__init__).parameters) - {"self"}


def _unknown_keywords(kwargs: dict, also: frozenset = frozenset()) -> tuple[dict, list]:
    """The keywords of ``kwargs`` that are neither PNDMKitScheduler's fields, nor any source's config fields, nor
    in ``also`` (private ``_...`` keys pass), and the sorted known names a "did you mean" is chosen from."""
    known = _init_keys() | set().union(*(init_fields(name) for name in SOURCES)) | also
    return ({key: value for key, value in kwargs.items() if not key.startswith("_") and key not in known},
            sorted(known))


#: ``variance_type`` values of a network that outputs its variance after its prediction (``2 C`` channels)
_LEARNED_VARIANCE = ("learned", "learned_range")


#: keywords diffusers' ``from_pretrained`` accepts for loading (not config fields): a pipeline may pass them to
#: every component, so :meth:`PNDMKitScheduler.from_pretrained` accepts them and refuses any other unknown keyword
LOADING_KEYWORDS = frozenset({
    "cache_dir", "force_download", "resume_download", "proxies", "token", "use_auth_token", "local_files_only",
    "revision", "user_agent", "variant", "low_cpu_mem_usage", "torch_dtype", "use_safetensors", "device_map",
    "output_loading_info", "return_commit_hash", "dduf_entries", "trust_remote_code", "mirror"})


class PNDMKitScheduler(SchedulerMixin, ConfigMixin):
    """A pndmkit method as a diffusers scheduler (see the module documentation).

    Parameters
    ----------
    method : str, MethodSpec or Integrator
        A name in :data:`pndmkit.METHODS` (any fixed-step one, hand-built registered methods included) or an
        :class:`~pndmkit.integrator.Integrator` built on :func:`schedule_from_config` of the same config. A
        registered method that is the source's counterpart runs the variant the config's :data:`VARIANT_FIELDS`
        choose (``lower_order_final=False`` on a DPM-Solver config gives ``dpm-solver++-3m`` without lowered last
        steps). The registered method's own build passed as an Integrator (the same ``repr`` as
        ``get_method(name).build(schedule)``) is that method by name: variants as for the name, the name in the
        config. Any other method passed built runs as built, and is refused where those fields choose another
        variant; its config records it as hand-built (``"integrator:<name>"``), which ``from_config`` refuses
        rather than rebuilds as something else.
    num_train_timesteps, beta_start, beta_end, beta_schedule, trained_betas
        The training noise schedule, as in diffusers.
    prediction_type : {"epsilon", "v_prediction", "sample", "flow_prediction"}
        What the network predicts.
    timestep_spacing : str
        Without a source: ``"leading"``, ``"linspace"``, ``"trailing"`` or another grid kind of
        :data:`pndmkit.grids.GRIDS`; with one, whatever the source takes.
    steps_offset : int
        Offset of ``leading`` and ``leading-multistep`` grids (diffusers' ``steps_offset``).
    set_alpha_to_one : bool
        Without a source: end at ``abar = 1`` (``t = -1``) rather than at ``abar_0`` (``t = 0``).
    source : str, optional
        The diffusers scheduler class whose config this is (one of
        :data:`pndmkit.integrations.diffusers.config.SOURCES`; ``from_config`` sets it from ``_class_name``):
        its own ``set_timesteps`` lays out the grid. Other fields of its config are kept in this config.

    Raises
    ------
    TypeError
        ``method`` is not a name, a MethodSpec or an Integrator (``None`` included, in :meth:`from_config` too): the
        error :func:`pndmkit.sample` gives (:func:`pndmkit.methods.check_method_type`).
    ValueError
        ``num_train_timesteps`` not an integer >= 2, ``trained_betas`` not a 1-D sequence of betas in (0, 1),
        every refusal of :func:`~pndmkit.integrations.diffusers.config.translate` (each names the field), and a
        field of :data:`VARIANT_FIELDS` that chooses a variant pndmkit does not have, or another variant than a
        method passed built (each names the field; :mod:`pndmkit.integrations.diffusers.config` lists them).

    Attributes
    ----------
    translation : Translation
        The config read into pndmkit's terms (schedule, prediction, family).
    schedule : NoiseSchedule
        The schedule of the config.
    integrator : Integrator
        The method.
    grid : numpy.ndarray or None
        The step times of the last :meth:`set_timesteps` (``N + 1`` of them, in the schedule's units).
    timesteps : torch.Tensor or None
        The network timestep of every model evaluation in order (``len`` = NFE).
    order : int
        Evaluations per step when every step has the same number (the last one may have fewer), else 1 (pipelines
        slice by it).
    init_noise_sigma : float
        The start scale: pipelines multiply unit noise by it (the source's own).
    run : Run or None
        The ask/tell run of the current sampling loop (``None`` before its first :meth:`step`).

    Examples
    --------
    >>> import torch
    >>> sched = PNDMKitScheduler(method="f-pndm", steps_offset=1, set_alpha_to_one=False)
    >>> sched.set_timesteps(10)
    >>> len(sched.timesteps), sched.timesteps[:5].tolist()       # 3 PRK steps of 4 evaluations, then AB4
    (19, [901, 851, 851, 801, 801])
    >>> x = torch.ones(1, 2)
    >>> for t in sched.timesteps:
    ...     x = sched.step(0.1 * x, t, x).prev_sample
    >>> sched.run.done, sched.nfe
    (True, 19)
    """

    order = 1
    _compatibles = list(SOURCES)
    #: whether a refusal checks its advice on trial schedulers (off in those trials: no advice is given there)
    _advising = True

    @register_to_config
    def __init__(self, method: Union[str, MethodSpec, Integrator] = DEFAULT_METHOD, num_train_timesteps: int = 1000,
                 beta_start: float = 0.0001, beta_end: float = 0.02, beta_schedule: str = "linear",
                 trained_betas: Optional[Any] = None, prediction_type: str = "epsilon",
                 timestep_spacing: str = "leading", steps_offset: int = 0, set_alpha_to_one: bool = True,
                 source: Optional[str] = None) -> None:
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type={prediction_type!r} cannot be honoured: pndmkit reads "
                             f"{tuple(PREDICTION_TYPES)}")
        if source is not None and source not in SOURCES:
            raise ValueError(f"source={source!r} cannot be honoured: pndmkit reads the configs of {SOURCES}")
        if source is None and timestep_spacing not in GRIDS:
            raise ValueError(f"timestep_spacing={timestep_spacing!r} cannot be honoured: pndmkit reads {GRIDS}")
        if isinstance(steps_offset, bool) or not isinstance(steps_offset, (int, np.integer)) or steps_offset < 0:
            raise ValueError(f"steps_offset must be an integer >= 0, got {steps_offset!r}")
        if not isinstance(set_alpha_to_one, (bool, np.bool_)):
            raise ValueError(f"set_alpha_to_one must be True or False, got {set_alpha_to_one!r}")
        check_method_type(method, (Integrator,))  # None, an estimator, ...: the TypeError pndmkit.sample gives
        train_timesteps({"num_train_timesteps": num_train_timesteps})
        if trained_betas is not None:
            self.register_to_config(trained_betas=_betas(trained_betas).tolist())
        self._method = method
        self._configure()
        self.num_inference_steps: Optional[int] = None
        self.grid: Optional[np.ndarray] = None
        self.timesteps: Optional[torch.Tensor] = None
        self.sigmas: Optional[torch.Tensor] = None
        self._times: list[float] = []
        self._net_times: list[float] = []
        self._starts: dict[int, int] = {}
        self._begin_index: Optional[int] = None
        self._asked: Optional[dict] = None  # the arguments of the last set_timesteps (for trials of advice)
        self._reset()

    def _configure(self) -> None:
        """Read the config (again, once ``from_config`` has added the source's fields) and build the method."""
        self.translation: Translation = translate(dict(self.config))
        self.schedule = self.translation.schedule
        method = self._method
        self._registered = isinstance(method, str) or self._is_registered(method)
        built = _integrator(method, self.schedule)
        self.integrator = _config_variant(built, self._hand_built(), self.translation)
        note = _own_method_note(built, self.translation)
        if note is not None:  # from_config builds twice: first without the source's fields, so this says it once
            warnings.warn(note, ConventionWarning, stacklevel=3)
        self._configured = self.integrator  # the method on grids without a zero-length last step
        if not isinstance(method, str):  # a config is JSON: keep a registered name, mark anything else
            name = method.name
            self.register_to_config(method=name if self._registered else f"{_MARKER}{name or 'unnamed'}")
        src = self.translation.source_scheduler()
        init = 1.0 if src is None else getattr(src, "init_noise_sigma", 1.0)
        self.init_noise_sigma = float(init.item() if hasattr(init, "item") else init)

    def _is_registered(self, method: Union[MethodSpec, Integrator]) -> bool:
        """Whether ``method`` is the method registered under its name: that MethodSpec itself, or an Integrator
        whose ``repr`` is that of the registered build on this config's schedule. Such a method is treated as the
        name in every respect (the config's variant fields choose its variant, the config records the name), so
        a config round trip rebuilds what ran; anything else runs as built and is recorded as hand-built."""
        known = _registry().get(method.name)
        if known is None:
            return False
        if isinstance(method, MethodSpec):  # the registered spec itself, not one that only shares its name
            return known is method or known == method
        return repr(known.build(self.schedule)) == repr(method)

    def _hand_built(self) -> Optional[str]:
        """What the method is where it was passed built and is not the registered method of its name (an
        Integrator, or a MethodSpec), for messages; ``None`` for a registered method (by name, or passed equal to
        the registered one: :meth:`_is_registered`). The config's variant fields check a built method rather than
        choose it."""
        if self._registered:
            return None
        if isinstance(self._method, Integrator):
            return "an Integrator"
        return f"a MethodSpec ({self._method.name!r}, not registered under that name) that builds an Integrator"

    def _reset(self) -> None:
        self._run: Optional[Run] = None
        self._k: Optional[int] = None  # index into timesteps of the next evaluation
        self._last: Any = None  # the tensor the last step returned (the pipeline passes it back)
        self._nfe_before = 0  # evaluations of runs replaced by a restart (a pipeline that edited the sample)

    # -- configuration --------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Any = None, return_unused_kwargs: bool = False, **kwargs: Any) -> Any:
        """Build from any diffusers scheduler config; ``kwargs`` (``method=...``, overrides) win over it.

        The source is the class that made the config when it is one of ``SOURCES``: its ``_class_name``, or, for
        the in-memory config of a scheduler built in code, the class recognised by its fields
        (:func:`~pndmkit.integrations.diffusers.config.scheduler_class`), or the ``source`` field of a
        PNDMKitScheduler config. Every field of the config is kept in the new one, so that
        ``DDIMScheduler.from_config(pndmkit_scheduler.config)`` gets the original settings back.

        Parameters
        ----------
        config : dict, FrozenDict, optional
            A diffusers scheduler config (``scheduler.config``), or a PNDMKitScheduler one.
        return_unused_kwargs : bool
            Return ``(scheduler, unused)``: ``unused`` holds, as in diffusers, the entries nothing read, unknown
            keywords included (diffusers' ``from_pretrained`` passes its loading keywords, ``variant=...``,
            ``low_cpu_mem_usage=...``, on to here this way).
        **kwargs
            ``method=...`` and overrides of config fields.

        Returns
        -------
        PNDMKitScheduler, or (PNDMKitScheduler, dict) with ``return_unused_kwargs=True``

        Raises
        ------
        TypeError
            With ``return_unused_kwargs=False``, a keyword that is neither a field of PNDMKitScheduler nor one of
            any source's config (a misspelt ``methd=``), naming the closest known one.
        ValueError
            The config of a diffusers scheduler pndmkit does not read (``IPNDMScheduler``, ``LCMScheduler``, ...,
            named), a field of ``REFUSED`` at a value that changes the result, an unknown ``beta_schedule`` or
            ``prediction_type``, or a bad ``method``.
        """
        keys = _init_keys()
        unknown, known = _unknown_keywords(kwargs)
        if not return_unused_kwargs:
            reject_unknown(f"{cls.__name__}.from_config", unknown, known)
        kwargs = {key: value for key, value in kwargs.items() if key not in unknown}
        if config is None:
            config = {}
        if not isinstance(config, dict):  # FrozenDict is a dict; anything else diffusers loads itself
            out = super().from_config(config, return_unused_kwargs=return_unused_kwargs, **kwargs)
            return (out[0], {**out[1], **unknown}) if return_unused_kwargs else out
        # every field is the source's own setting, its defaults included (diffusers would otherwise replace the
        # fields it lists as defaults by this class's defaults, e.g. DPM-Solver's linspace spacing by leading)
        refuse_foreign(config, frozenset(keys))  # the config as given: its class is recognised by its marks too
        if "source" not in kwargs and "method" not in config:
            kwargs["source"] = infer_source(config)
        config = {key: value for key, value in config.items() if key != "_use_default_values"}
        extra = {key: kwargs.pop(key) for key in list(kwargs) if key not in keys}
        config.update(extra)
        translate({**config, **kwargs})  # refuse early, naming the field
        # an Integrator is checked against the schedule of the whole config: __init__ sees only its own fields
        # (a UniPC config with use_flow_sigmas=True is a noise table there), so it builds a placeholder first
        built = kwargs.get("method", config.get("method"))
        if isinstance(built, Integrator):
            kwargs["method"] = DEFAULT_METHOD
        model, unused = super().from_config(config, return_unused_kwargs=True, **kwargs)
        if isinstance(built, Integrator):
            model._method = built
        model._configure()  # now with the source's fields, which diffusers registers after __init__
        if not return_unused_kwargs:
            return model
        kept = model.config  # the source's fields, which diffusers reports unused, are kept there
        return model, {**{key: value for key, value in unused.items() if key not in kept}, **unknown}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any = None, subfolder: Optional[str] = None,
                        return_unused_kwargs: bool = False, **kwargs: Any) -> Any:
        """Load ``scheduler_config.json`` from a folder (or the Hub cache), as diffusers' schedulers do.

        Parameters
        ----------
        pretrained_model_name_or_path : str or os.PathLike
            A folder holding ``scheduler_config.json`` (or a pipeline folder, with ``subfolder="scheduler"``), or
            a Hub repository id (read from the local cache: pndmkit runs with ``HF_HUB_OFFLINE=1``).
        subfolder : str, optional
            The folder inside it (``"scheduler"`` for a saved pipeline).
        return_unused_kwargs : bool
            Return ``(scheduler, unused)``, where ``unused`` holds the keywords and config entries nothing read.
        **kwargs
            diffusers' loading keywords (``cache_dir``, ``local_files_only``, ``revision``, ``variant``,
            ``low_cpu_mem_usage``, ...), which a pipeline's ``from_pretrained`` passes to every component, and
            overrides of config fields (``method=...``), as in :meth:`from_config`. A keyword that is neither
            (:data:`LOADING_KEYWORDS` lists the loading ones) is refused, naming the closest known one, unless
            ``return_unused_kwargs=True`` hands it back in ``unused``, as diffusers' schedulers do.

        Returns
        -------
        PNDMKitScheduler, or (PNDMKitScheduler, dict) with ``return_unused_kwargs=True``

        Raises
        ------
        TypeError
            With ``return_unused_kwargs=False``, a keyword that is neither a loading keyword nor a config field
            (a misspelt ``methd=``).
        ValueError
            Every refusal of :meth:`from_config` (a foreign scheduler's config, a field pndmkit cannot honour).
        OSError
            No ``scheduler_config.json`` where it was asked for (diffusers' ``load_config``).
        """
        if not return_unused_kwargs:  # a misspelt override (methd=) is refused as from_config refuses it
            reject_unknown(f"{cls.__name__}.from_pretrained", *_unknown_keywords(kwargs, LOADING_KEYWORDS))
        model, unused = super().from_pretrained(pretrained_model_name_or_path, subfolder=subfolder,
                                                return_unused_kwargs=True, **kwargs)
        return (model, unused) if return_unused_kwargs else model

    def save_config(self, save_directory: Any, push_to_hub: bool = False, **kwargs: Any) -> None:
        """Write ``scheduler_config.json``; a method that is not registered under its name cannot be saved.

        Raises
        ------
        TypeError
            ``method`` is a hand-built Integrator, or a MethodSpec that is not the one registered under its name
            (unregistered, or named like another method): the config would hold a name that rebuilds something
            else, or nothing.
        """
        if str(self.config.method).startswith(_MARKER):
            name = str(self.config.method)[len(_MARKER):]
            what = (f"a MethodSpec named {name!r} that is not the registered method of that name" if
                    isinstance(self._method, MethodSpec) else "a hand-built Integrator")
            taken = name in _registry()
            raise TypeError(f"method is {what}; a JSON config holds only a registered name, and "
                            f"from_pretrained would build {'the registered ' + repr(name) if taken else 'nothing'} "
                            f"from it: register yours with pndmkit.register_method"
                            f"{' under another name' if taken else ''} and pass its name")
        super().save_config(save_directory, push_to_hub=push_to_hub, **kwargs)

    def __len__(self) -> int:
        return int(self.config.num_train_timesteps)

    @property
    def nfe(self) -> int:
        """Model evaluations told in the current sampling loop."""
        return self._nfe_before + (0 if self._run is None else self._run.nfe)

    @property
    def run(self) -> Optional[Run]:
        """The ask/tell run of the current sampling loop (``None`` before its first :meth:`step`)."""
        return self._run

    @property
    def begin_index(self) -> Optional[int]:
        """Index into :attr:`timesteps` of the first evaluation (``None``: decided by the first :meth:`step`)."""
        return self._begin_index

    @property
    def step_index(self) -> Optional[int]:
        """Index into :attr:`timesteps` of the next evaluation (``None`` before the loop starts)."""
        return self._k

    # -- the diffusers scheduler interface ------------------------------------------------------------
    def set_timesteps(self, num_inference_steps: Optional[int] = None, device: Any = None,
                      timesteps: Optional[Any] = None, sigmas: Optional[Any] = None,
                      mu: Optional[float] = None) -> None:
        """Lay out the grid and list every evaluation of the method on it; forget any previous loop.

        Parameters
        ----------
        num_inference_steps : int, optional
            Steps ``N`` of the grid; with ``timesteps`` or ``sigmas`` only where it is the number of steps they
            give (a pipeline's ``retrieve_timesteps`` passes them alone).
        device : str or torch.device, optional
            Where :attr:`timesteps` live.
        timesteps : sequence of int or float, optional
            Custom step starts, decreasing: the ``N`` network timesteps of the steps. A source whose own
            ``set_timesteps`` takes ``timesteps`` (DDPM, DPM-Solver, Euler, Heun, flow matching) lays them out
            as it does, except that timesteps it would change (DDPM and DPM-Solver cast them to integers) are
            refused; on every other VP config (DDIM, PNDM, UniPC, DEIS, LMS, Euler ancestral, pndmkit's own)
            they are training indices, a fractional one given to the network as is, and the last step ends at
            the config's end point (:func:`~pndmkit.integrations.diffusers.config.custom_layout`).
        sigmas : sequence of float, optional
            Custom noise levels. A source whose own ``set_timesteps`` takes ``sigmas`` (Euler, UniPC with flow
            sigmas, EDM Euler, flow matching) reads them as it does; on every other VP config they are read as
            ``EulerDiscreteScheduler`` reads them on the same table: the ``N + 1`` levels
            ``sigma = sqrt((1 - abar) / abar)`` (pndmkit's ``s``) of the grid, the first ``N`` starting the steps
            at ``t = schedule.t_from_s(sigma)``, where the network is given Euler's fractional timestep (linear
            in ``log sigma`` between table indices), and the last one where the last step ends (``0``: the
            config's end point). A flow or EDM config whose source takes no ``timesteps`` (``sigmas``) refuses
            them by name.
        mu : float, optional
            The dynamic time shift of flow-matching configs with ``use_dynamic_shifting``.

        Raises
        ------
        ValueError
            None of ``num_inference_steps``, ``timesteps`` and ``sigmas`` given (on every config, before its source
            is asked); ``num_inference_steps`` not an integer >= 1 (``2.5`` is refused, not truncated), or more than the
            source's grid has distinct timesteps (``DPMSolverMultistepScheduler`` at 2000 of 1000 training steps
            lists each twice, and at 1000 of 1000 lists timestep 500 twice, a step of length zero where the source's
            own sample turns NaN: refused, naming the repeated timesteps and the range that runs, rather than run
            as fewer steps), or 1 where that only step has length zero (``DEISMultistepScheduler`` with
            ``use_karras_sigmas=True``: the message asks for 2 or more, or ``final_sigmas_type='zero'`` where the
            config has it), or given with
            ``timesteps`` or ``sigmas`` but not the number of steps they give; both ``timesteps`` and ``sigmas``;
            custom ``sigmas`` not finite, not strictly decreasing, above the table's largest level or fewer than
            two (the message names ``sigmas[i]``); custom
            ``timesteps`` not finite, not strictly decreasing or outside the schedule's times (the message names
            ``timesteps[i]``); a combination the config's source refuses, or a grid the config cannot give (the
            message names the config fields), or a method that cannot run on that grid; ``clip_sample=True``
            with a method that evaluates at ``abar = 1`` (the clipped ``x0`` gives no ``eps`` there: the
            message names ``clip_sample`` and the method), refused before any step. ``set_alpha_to_one=False``
            ends the last step at ``t = 0`` on every VP config (DDPM's and the sigma schedulers' too), and is
            refused where the last step already starts there (a ``DDIMScheduler`` or ``PNDMScheduler`` grid leaves
            that step of length zero out instead, the source's identity, where it is not the only step). Every
            change a refusal advises is tried first on a
            fresh scheduler with the same arguments, so followed it runs (where one change is not enough, the
            message names the second: ``set_alpha_to_one=True with clip_sample=False``).

        Warns
        -----
        TrainingRangeWarning
            A VP config whose method evaluates the network outside the training indices ``0 .. T - 1`` (found
            from the method's evaluation times, not a list): a method with a stage at the end of a step
            (``pie``, ``prk``, ``rk4``, the correctors ``pec-s``, ``pec-s-ramp``, ``pece-s``, ``f-pndm`` at
            fewer than 4 steps, whose steps are all Runge-Kutta) on a last step that ends at ``t = -1`` (``abar = 1``,
            ``set_alpha_to_one=True``) lists timesteps such as ``-0.5`` and ``-1``. The run is what the method
            defines (its stages lie on the step), but the network is called where it was never trained.
        StabilityWarning
            The method's eps-form transfer would amplify its stage errors on this grid
            (:func:`pndmkit.stability.check_stability`; the message names the step and a stable method).
        """
        if num_inference_steps is None and timesteps is None and sigmas is None:  # the source's own words are raw
            raise ValueError("num_inference_steps=None with no custom timesteps or sigmas gives no grid: pass "
                             "num_inference_steps, timesteps or sigmas")
        if num_inference_steps is not None and (isinstance(num_inference_steps, (bool, np.bool_)) or not isinstance(
                num_inference_steps, numbers.Integral) or num_inference_steps < 1):
            raise ValueError(f"num_inference_steps must be an integer >= 1, got {type(num_inference_steps).__name__} "
                             f"{num_inference_steps!r}")
        if num_inference_steps is not None:
            num_inference_steps = int(num_inference_steps)
        self._asked = dict(num_inference_steps=num_inference_steps, timesteps=timesteps, sigmas=sigmas, mu=mu)
        tr = self.translation
        if tr.source is not None:
            layout = tr.layout(num_inference_steps, timesteps, sigmas, mu,
                               end_advice=self._alpha_to_one_true_advice)
        else:
            layout = self._native_layout(num_inference_steps, timesteps, sigmas, mu)
        custom = timesteps is not None or sigmas is not None  # a custom grid has no source stride (PNDM's PRK)
        if not custom and num_inference_steps is not None and layout.steps != num_inference_steps:
            if layout.steps == 0:
                self._refuse_zero_length_only_step(num_inference_steps, layout)
            self._refuse_repeated_timesteps(num_inference_steps, layout)
        grid = self._honour_alpha_to_one(np.asarray(layout.grid, dtype=np.float64))
        # everything is built into locals first and assigned together at the end: a refusal, or a warning raised
        # as an error, leaves the scheduler as it was
        integrator = self._grid_variant(layout, None if custom else num_inference_steps, grid)
        self._refuse_undefined_eps(integrator, grid)  # on the eps dry run, which the next line reuses
        if tr.source is not None:  # a native layout's Integrator.start has warned already
            warn_if_unstable(integrator, grid)
        times, starts_at = evaluation_times(integrator, grid, tr.told_prediction)
        at = {float(t): j for j, t in enumerate(grid[:-1])}
        told = {} if layout.zero_length_final is None else {float(grid[-1]): layout.zero_length_final}
        for estimator in (integrator.estimator, getattr(integrator.estimator, "first", None)):
            if isinstance(estimator, SourcePRK):
                told.update(estimator.network_times(grid))
        net = [layout.timesteps[at[t]] if t in at else told[t] if t in told else tr.network_time(t) for t in times]
        integral = layout.integral and all(float(v).is_integer() for v in net)
        values = torch.tensor(net, dtype=torch.int64 if integral else torch.float32)
        sigma_levels = torch.tensor([self._level(t) for t in grid], dtype=torch.float32)
        self._warn_outside_training(integrator, grid, times)
        self._warn_v_combined(integrator)
        self._warn_zero_length_clips(layout)
        counts = np.diff(sorted(starts_at) + [len(times)])
        # pipelines slice timesteps[t_start * order:] with t_start < N: a last step of fewer evaluations (Heun's
        # Euler step to sigma = 0) keeps every slice at the start of a step
        order = int(counts[0]) if len(starts_at) == len(grid) - 1 and np.all(
            counts[:-1] == counts[0]) and counts[-1] <= counts[0] else 1
        self.integrator = integrator
        self.grid = np.asarray(grid)
        self.num_inference_steps = len(grid) - 1
        self._source_steps = layout.steps  # as the source and the pipeline count them (a zero-length step included)
        self._times, self._net_times, self._starts = times, net, starts_at
        self.timesteps = values.to(device) if device is not None else values
        self.sigmas = sigma_levels
        self.init_noise_sigma = layout.init_noise_sigma
        self.order = order
        self._begin_index = None
        self._reset()

    def _refuse_zero_length_only_step(self, asked: int, layout: Layout) -> None:
        """The source's grid of ``asked`` steps has no step of nonzero length (``DEISMultistepScheduler`` with
        ``use_karras_sigmas=True`` at one step lists ``sigma_min`` as that step's start and end): refused, naming
        the level and the changes that give a step to integrate."""
        tr = self.translation
        level = self._level(float(layout.grid[0]))
        fields = [f"{key}={self.config[key]!r}" for key in ("use_karras_sigmas", "use_exponential_sigmas",
                                                             "use_beta_sigmas", "use_lu_lambdas", "final_sigmas_type")
                  if self.config.get(key) not in (None, False)]
        fix = "num_inference_steps >= 2"
        if "final_sigmas_type" in self.config and self.config["final_sigmas_type"] != "zero":
            fix += ", or final_sigmas_type='zero' (the step then ends at sigma = 0)"
        raise ValueError(f"num_inference_steps={asked} cannot be honoured on {with_article(tr.source)} config"
                         f"{' with ' + ', '.join(fields) if fields else ''}: its only step goes from sigma="
                         f"{level:.6g} to the same level (the grid ends at the level it starts from): length zero, "
                         f"which cannot be integrated; pass {fix}")

    def _refuse_repeated_timesteps(self, asked: int, layout: Layout) -> None:
        """The source's grid of ``asked`` steps repeats timesteps (more steps than its table has indices:
        ``DPMSolverMultistepScheduler`` at 2000 of 1000 lists each twice; at 1000 of 1000 the default
        ``'linspace'`` spacing of DPM-Solver, UniPC and DEIS rounds two points to timestep 500), which pndmkit would
        run as fewer, distinct steps: refused, the user asked for ``asked`` evaluations. The message names the
        repeated timesteps: the source steps by length zero there (its own sample turns NaN from there), so a step
        count without repeats loses nothing."""
        tr = self.translation
        distinct = layout.steps
        if distinct > asked:  # not a repeat: the source gave more steps than asked
            raise ValueError(f"num_inference_steps={asked} cannot be honoured on {with_article(tr.source)} config: "
                             f"its grid has {distinct} steps, not the {asked} asked")
        top = train_timesteps(tr.config) if tr.family == "vp" else asked - 1
        most = None
        for n in sorted({min(top, asked - 1), distinct, distinct - 1} - {0}, reverse=True):  # longest without repeats
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if tr.layout(n).steps == n:
                        most = n
                        break
            except ValueError:
                continue
        allowed = f"; pass num_inference_steps in [1, {most}]" if most is not None else \
            "; pass fewer num_inference_steps"
        shown = sorted({v for v, _ in layout.repeated}, reverse=True)
        if shown:
            listed = ", ".join(f"{v:g}" for v in shown[:4]) + (f", ... ({len(shown)} in all)" if len(shown) > 4
                                                                 else "")
            where = (f"timestep{'s' if len(shown) > 1 else ''} {listed} twice, where the source steps by length "
                     f"zero (its own sample turns NaN from there), so nothing is lost without "
                     f"{'them' if len(shown) > 1 else 'it'}: ")
        else:
            where = "repeated timesteps: "
        raise ValueError(f"num_inference_steps={asked} cannot be honoured on {with_article(tr.source)} config "
                         f"(num_train_timesteps={train_timesteps(tr.config)}): its grid lists {where}"
                         f"{distinct} distinct, and pndmkit would take {distinct} steps, not the {asked} asked"
                         f"{allowed}")

    def _grid_variant(self, layout: Layout, num_inference_steps: Optional[int], grid: np.ndarray) -> Integrator:
        """The method as it runs on ``layout`` (whose step times are ``grid``): the configured one, or the source's
        counterpart adapted to a convention of the source's grid, a last step of length zero
        (:meth:`_zero_length_variant`), ``HeunDiscreteScheduler``'s Euler step to ``sigma = 0``
        (:meth:`_heun_variant`) or ``PNDMScheduler``'s PRK stages on a grid of ``num_inference_steps``
        (:class:`SourcePRK`; a method passed built runs as built)."""
        tr = self.translation
        if tr.source == "PNDMScheduler" and num_inference_steps is not None and not self._hand_built():
            # the source's stride counts its zero-length last step (leading spacing, steps_offset=0)
            half = train_timesteps(tr.config) // num_inference_steps // 2
            estimator = _source_prk(self._configured.estimator, half) if half >= 1 else None
            if estimator is not None:
                return dataclasses.replace(self._configured, estimator=estimator)
        if layout.zero_length_final is not None:
            return self._zero_length_variant()
        if tr.source == "HeunDiscreteScheduler" and float(grid[-1]) == -1.0:
            return self._heun_variant()
        return self._configured

    def _zero_length_variant(self) -> Integrator:
        """The method on a source grid that ends with a step of length zero (sigma_min twice), which the grid
        leaves out: the source's counterpart counts that step as the source does (:func:`_config_variant`), so
        its real steps run at the source's orders and UniPC's last step is corrected from an evaluation at its end,
        where the source evaluates the network for that step. A method passed built runs as built, with a
        ``ConventionWarning`` where the source's counterpart would count the step."""
        configured = self._configured
        chosen = _config_variant(configured, None, self.translation, zero_length_final=True)
        if repr(chosen.estimator) == repr(configured.estimator):
            return configured
        if self._hand_built():
            tr = self.translation
            field = ("final_sigmas_type='sigma_min'" if "final_sigmas_type" in tr.config else
                     "its sigmas, which end at sigma_min twice")
            fix = ("final_sigmas_type='zero'" if "final_sigmas_type" in tr.config else
                   f"method={configured.name!r} by name")
            warnings.warn(f"the {tr.source} grid ends with a step of length zero ({field}), which pndmkit leaves out "
                          f"and {tr.source} counts in its order of the last steps; the method passed built, "
                          f"{configured.estimator!r}, does not count it (the source's counterpart is "
                          f"{chosen.estimator!r}), so its samples differ from {tr.source}'s: pass {fix}",
                          ConventionWarning, stacklevel=4)
            return configured
        return chosen

    def _heun_variant(self) -> Integrator:
        """``pie`` on a ``HeunDiscreteScheduler`` grid that ends at ``sigma = 0`` (``t = -1``, abar = 1): its last
        step by one Euler (DDIM) step from the evaluation at its start, as the source takes it (its ``timesteps``
        list ``2 N - 1`` evaluations; Heun's second stage would evaluate the network at ``sigma = 0``, where it was
        never trained, and divide by it): ``Final(pie's estimator, (Single(),))``. A method passed built runs as
        built, with a ``ConventionWarning`` where it is ``pie``'s estimator; every other method as configured."""
        configured = self._configured
        pie = get_method("pie").build(self.schedule)
        if repr(configured.estimator) != repr(pie.estimator) or type(configured.transfer) is not type(pie.transfer):
            return configured
        if self._hand_built():
            warnings.warn(f"HeunDiscreteScheduler takes its last step, to sigma = 0, by one Euler step (it never "
                          f"evaluates the network at sigma = 0); the method passed built, {configured.estimator!r}, "
                          f"takes it at second order and evaluates there, so its samples differ from "
                          f"HeunDiscreteScheduler's (1e-3 at 10 steps with timestep_spacing='trailing', whose last "
                          f"step is long): pass method='pie' by name", ConventionWarning, stacklevel=4)
            return configured
        return dataclasses.replace(configured, estimator=Final(configured.estimator, (Single(),)))

    def _honour_alpha_to_one(self, grid: np.ndarray) -> np.ndarray:
        """``set_alpha_to_one=False`` on a VP config whose source ends at ``abar = 1`` (``t = -1``; DDPM and the
        sigma schedulers, which have no such field): the last step ends at ``abar_0`` (``t = 0``) instead, as
        DDIM's own field does."""
        if self.translation.family != "vp" or self.config.set_alpha_to_one or grid[-1] != -1.0:
            return grid
        if grid.size < 2 or grid[-2] <= 0.0:
            raise ValueError(f"set_alpha_to_one=False ends the last step at t=0 (abar_0), but the grid's last step "
                             f"already starts at t={grid[-2]:g}: a step of length zero cannot be integrated; pass "
                             f"{self._zero_length_advice()}")
        grid = grid.copy()
        grid[-1] = 0.0
        return grid

    def _refuse_undefined_eps(self, integrator: Integrator, grid: np.ndarray) -> None:
        """Refuse, before any step, a grid on which the method ``integrator`` evaluates where the told prediction
        gives no ``eps`` (the clipped ``x0`` of ``clip_sample`` at ``abar = 1``). Every change the message advises
        is tried first on a fresh scheduler with the same ``set_timesteps`` arguments: only changes that run are
        named."""
        tr = self.translation
        told = tr.told_prediction
        bad = planned_undefined_eps_times(integrator, grid, told)
        if not bad:
            return
        name = integrator.name or "the method"
        at = ", ".join(f"{t:g}" for t in bad)
        methods = self._methods_that_run(integrator.name)
        others = f"a method that does not evaluate at abar = 1 ({', '.join(methods)}, ...)" if methods else ""
        if tr.clip is not None and tr.family != "edm":
            fixes = [fix for fix in ("clip_sample=False" if self._runs(clip_sample=False) else "",
                                     self._alpha_to_one_false_advice(), others) if fix]
            raise ValueError(f"clip_sample=True with method={name!r}: clip_sample tells the method the clipped x0 "
                             f"estimate, and {name!r} evaluates the network at t={at} (abar = 1, the end of the "
                             f"last step with set_alpha_to_one=True), where an x0 estimate gives no eps. "
                             f"{'Pass ' + _or(fixes) if fixes else _NOTHING_RUNS.capitalize()}")
        earlier = [text for changes, text in self._earlier_ends() if changes and self._runs(**changes)]
        fixes = ([f"end the grid earlier: pass {_or(earlier)}"] if earlier else []) + (
            [f"use a method that does not evaluate at its end ({', '.join(methods)}, ...)"] if methods else [])
        raise ValueError(f"method={name!r} evaluates at t={at}, where the scheduler's {told!r} output gives no eps "
                         f"(the grid ends at t={grid[-1]:g}); "
                         f"{'; or '.join(fixes) or _NOTHING_RUNS}")

    def _runs(self, **changes: Any) -> bool:
        """Whether the scheduler with the config ``changes`` (``method=`` included) accepts the arguments of the
        last :meth:`set_timesteps` (a trial on a fresh scheduler, warnings silenced; ``False`` inside a trial)."""
        if not self._advising or self._asked is None:
            return False
        method = changes.pop("method", self._method)
        config = {key: value for key, value in dict(self.config).items() if not key.startswith("_")}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial = type(self).from_config({**config, **changes, "method": method})
                trial._advising = False
                trial.set_timesteps(**self._asked)
        except Exception:  # noqa: BLE001 - a trial that fails in any way is advice not to give
            return False
        return True

    def _methods_that_run(self, current: str) -> list:
        """Up to three registered methods other than ``current`` with which the last :meth:`set_timesteps` runs
        (tried in turn)."""
        found = []
        for name in ("ipndm", "plms", "ddim", "dpm-solver++-2m", "unipc-3", "euler"):
            if len(found) == 3:
                break
            if name != current and self._runs(method=name):
                found.append(name)
        return found

    def _earlier_ends(self) -> list:
        """Config changes that end the grid before ``sigma = 0``, as ``(changes, text)`` (not yet tried)."""
        ends = []
        if self.translation.family == "vp" and self.config.get("set_alpha_to_one", True):
            ends.append(self._alpha_to_one_false())
        if self.config.get("final_sigmas_type", "zero") == "zero" and self.translation.source is not None and \
                "final_sigmas_type" in inspect.signature(type(self.translation.source_scheduler()).__init__).parameters:
            ends.append(({"final_sigmas_type": "sigma_min"}, "final_sigmas_type='sigma_min'"))
        return ends

    def _alpha_to_one_false(self) -> tuple:
        """``set_alpha_to_one=False`` and what else it needs to run on this config, as ``(changes, text)``: with
        ``'leading'`` spacing and ``steps_offset=0`` (or ``'linspace'``) the last step starts at ``t = 0``,
        where it would end. The first of those that runs (tried by :meth:`_runs`); ``({}, "")`` if none does."""
        spacing = self.config.get("timestep_spacing", "leading")
        candidates = [({"set_alpha_to_one": False}, "set_alpha_to_one=False (the last step ends at t=0)")]
        offset = int(self.config.get("steps_offset", 0))
        if spacing not in ("leading", "trailing") or (spacing == "leading" and offset == 0):
            changes, text = zero_length_fix(spacing)
            candidates.append(({"set_alpha_to_one": False, **changes}, f"set_alpha_to_one=False with {text}"))
        return next(((changes, text) for changes, text in candidates if self._runs(**changes)), ({}, ""))

    def _alpha_to_one_false_advice(self) -> str:
        """The text of :meth:`_alpha_to_one_false` (empty where no such change runs)."""
        return self._alpha_to_one_false()[1]

    def _alpha_to_one_true_advice(self) -> Optional[str]:
        """``set_alpha_to_one=True`` and what else this method needs to run with it (the clipped or predicted
        ``x0`` gives no ``eps`` at ``abar = 1``, where a stage at the end of the last step evaluates), tried by
        :meth:`_runs`; ``None`` where nothing was found."""
        if self._runs(set_alpha_to_one=True):
            return "set_alpha_to_one=True"
        if self.translation.clip is not None and self._runs(set_alpha_to_one=True, clip_sample=False):
            return "set_alpha_to_one=True with clip_sample=False"
        for name in ("ipndm", "plms", "ddim"):
            if self._runs(set_alpha_to_one=True, method=name):
                return f"set_alpha_to_one=True with method={name!r}"
        return None

    def _zero_length_advice(self) -> str:
        """What lengthens a last step that starts at ``t = 0``, where ``set_alpha_to_one=False`` ends it."""
        return zero_length_fix(self.config.get("timestep_spacing", "leading"), self._alpha_to_one_true_advice())[1]

    def _warn_outside_training(self, integrator: Integrator, grid: np.ndarray, times: list) -> None:
        """A VP network is trained at the indices ``0 .. T - 1``; stages of a last step that ends at ``t = -1``
        (``abar = 1``) evaluate it below them (``times``: the evaluations of ``integrator`` on ``grid``)."""
        if self.translation.family != "vp":
            return
        top = float(self.config.num_train_timesteps) - 1.0
        outside = sorted({t for t in times if t < 0.0 or t > top}, reverse=True)
        if outside:
            warnings.warn(f"{integrator.name or 'the method'} evaluates the network at timesteps "
                          f"{[round(t, 6) for t in outside]}, outside its training indices 0..{top:g}: stages of the "
                          f"last step, which ends at t={grid[-1]:g}. The network has never seen them; a method "
                          f"with no stage at the end of a step (ddim, ipndm, plms, f-pndm at >= 4 steps, ...) or "
                          f"set_alpha_to_one=False (the last step ends at t=0; steps_offset=1 for 'leading' "
                          f"spacing) avoids them", TrainingRangeWarning,
                          stacklevel=3)

    def _warn_v_combined(self, integrator: Integrator) -> None:
        """``PNDMScheduler`` with ``prediction_type='v_prediction'`` combines the v outputs of its evaluations (PLMS's
        past steps, PRK's stages) and converts the combination to eps once, at the current sample and timestep;
        pndmkit converts each v to eps at its own ``(x, t)`` before any combination. Said once per
        :meth:`set_timesteps` for a method that combines evaluations (one DDIM step per evaluation combines none)."""
        tr = self.translation
        if tr.source != "PNDMScheduler" or tr.prediction != "v" or _one_ddim_step_per_evaluation(integrator):
            return
        warnings.warn(f"PNDMScheduler with prediction_type='v_prediction' combines the v outputs of its evaluations "
                      f"(PLMS's past steps, PRK's stages) and converts the sum to eps once, with the coefficients of "
                      f"the current sample and timestep; {integrator.name or 'the method'!r} converts each v to "
                      f"eps = sqrt(abar) v + sqrt(1 - abar) x at its own (x, t) before combining, as a multistep or "
                      f"Runge-Kutta combination of one right-hand side needs (the source's way is first order). So "
                      f"its samples differ from PNDMScheduler's, by O(h): on smooth test networks 0.4 of the sample's "
                      f"norm at 5 steps, 0.2 at 8 to 10, 0.08 at 20 (README: 'v-prediction: pndmkit converts before "
                      f"combining'); no config field gives the source's combination", ConventionWarning, stacklevel=3)

    def _warn_zero_length_clips(self, layout: Layout) -> None:
        """A ``DDIMScheduler`` grid whose last step goes from ``t = 0`` to ``abar_0`` (``set_alpha_to_one=False``
        with ``'leading'`` spacing and ``steps_offset=0``, or ``'linspace'``) has length zero, which pndmkit leaves
        out. Without ``clip_sample`` that step is the identity; with it, DDIM's default step there replaces the
        sample by ``sqrt(abar_0) clip(x0) + sqrt(1 - abar_0) eps``, which differs where the ``x0`` estimate lies
        outside the clip range."""
        tr = self.translation
        if layout.zero_length_final is None or tr.family != "vp" or tr.clip is None or tr.source != "DDIMScheduler":
            return
        spacing, offset = self.config.get("timestep_spacing", "leading"), self.config.get("steps_offset", 0)
        if spacing == "leading" and not offset:  # the one grid whose steps_offset lengthens that step
            fix = f"clip_sample=False, or {zero_length_fix(spacing)[1]}"
        else:  # 'linspace' and 'trailing' ignore steps_offset
            fix = (f"clip_sample=False, or set_alpha_to_one=True (the last step then ends at abar = 1, t=-1; "
                   f"timestep_spacing={spacing!r} ignores steps_offset)")
        warnings.warn(f"{tr.source}'s last step goes from t=0 to abar_0 (set_alpha_to_one=False with timestep_spacing="
                      f"{spacing!r}, steps_offset={offset}): "
                      f"length zero, which pndmkit leaves out (one network call fewer). With clip_sample=True the "
                      f"source's step there is not the identity: it clips the x0 estimate to "
                      f"[-{tr.clip:g}, {tr.clip:g}] (unless step() gets use_clipped_model_output=True), so its "
                      f"samples differ where that estimate lies outside; pass {fix}", ConventionWarning, stacklevel=3)

    def _level(self, t: float) -> float:
        """The source's noise level at pndmkit time ``t`` (flow/EDM sigma, else ``s``)."""
        return float(t) if self.translation.family in ("flow", "edm") else float(self.schedule.s(t))

    def _native_layout(self, num_inference_steps: Optional[int], timesteps: Any, sigmas: Any,
                       mu: Optional[float]) -> Layout:
        cfg = self.config
        end = -1.0 if cfg.set_alpha_to_one else 0.0
        if mu is not None:
            raise ValueError("mu= cannot be honoured: it is the dynamic shift of flow-matching configs "
                             "(FlowMatchEulerDiscreteScheduler with use_dynamic_shifting=True)")
        custom = timesteps if timesteps is not None else sigmas
        if custom is not None:
            layout = custom_layout(self.schedule, end, timesteps, sigmas)
            layout.agree(num_inference_steps, "timesteps" if timesteps is not None else "sigmas", custom)
            self._configured.start(np.zeros(1), layout.grid)  # checks the grid for the method (and warns) as below
            return layout
        else:  # (set_timesteps refused num_inference_steps=None without custom times already)
            kind = cfg.timestep_spacing
            offset = int(cfg.steps_offset) if kind in GRID_KINDS and GRID_KINDS[kind].takes_offset else None
            try:
                grid = make_grid(self.schedule, int(num_inference_steps), kind, offset=offset,
                                 final_alpha="one" if cfg.set_alpha_to_one else "first")
            except ValueError as exc:
                asked = (f"num_inference_steps={num_inference_steps} with timestep_spacing={kind!r}, "
                         f"steps_offset={cfg.steps_offset}, set_alpha_to_one={cfg.set_alpha_to_one}")
                if not cfg.set_alpha_to_one and self._starts_last_step_at_zero(int(num_inference_steps), kind, offset):
                    raise ValueError(f"{asked}: the grid's last step already starts at t=0, where set_alpha_to_one="
                                     f"False ends it: a step of length zero cannot be integrated; pass "
                                     f"{self._zero_length_advice()}") from exc
                raise ValueError(f"{asked}: {exc}") from exc
        grid = np.asarray(self._configured.start(np.zeros(1), grid).times)
        return Layout(grid, [float(t) for t in grid[:-1]], True, 1.0)

    def _starts_last_step_at_zero(self, steps: int, kind: str, offset: Optional[int]) -> bool:
        """Whether the native grid of ``steps`` steps ending at ``abar = 1`` has its last step start at ``t = 0``
        (``'leading'`` spacing with ``steps_offset=0``, ``'linspace'``): ``set_alpha_to_one=False`` cannot end
        it there."""
        try:
            grid = make_grid(self.schedule, steps, kind, offset=offset, final_alpha="one")
        except ValueError:
            return False
        return len(grid) >= 2 and float(grid[-2]) <= 0.0

    def _eval_index(self, timestep: Any) -> int:
        """Index of the next evaluation; the first step of a loop without set_begin_index finds it from
        ``timestep`` (one read of it)."""
        if self._k is not None:
            return self._k
        if self._begin_index is not None:
            return self._begin_index
        given = float(timestep.item() if hasattr(timestep, "item") else timestep)
        return next((i for i in sorted(self._starts) if abs(self._net_times[i] - given) <= 1e-4 * max(1.0, abs(given))),
                    0)

    def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
        """The network's input at the current evaluation: the sample itself for VP and flow configs, ``x`` for
        sigma-scheduler configs (their sample is ``x / alpha``), EDM's ``c_in x`` for EDM configs."""
        self._require_timesteps()
        tr = self.translation
        if not tr.sample_over_alpha and tr.family != "edm":
            return sample
        t = self._times[min(self._eval_index(timestep), len(self._times) - 1)]
        return sample * (tr.input_scale(t) / tr.sample_scale(t))

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Start the next loop at evaluation ``begin_index`` of :attr:`timesteps` (image-to-image strength).

        Raises
        ------
        ValueError
            ``begin_index`` not an integer (``2.5`` and ``True`` are refused, not truncated); ``begin_index`` past
            the last step (an image-to-image strength that keeps no step, below
            ``1 / num_inference_steps`` in Stable Diffusion pipelines, ``2 / num_inference_steps`` where the
            source's last step has length zero, which pndmkit leaves out but the pipeline counts: the message names
            ``strength`` and the range that runs; diffusers' own schedulers return an empty batch or fail inside
            the pipeline there), or the
            method started afresh at the grid step of ``begin_index`` would not evaluate at
            ``timesteps[begin_index:]`` (the message names the strength this is).
        """
        self._require_timesteps()
        if isinstance(begin_index, (bool, np.bool_)) or not isinstance(begin_index, numbers.Integral):
            raise ValueError(f"begin_index must be an integer (an index into timesteps), got "
                             f"{type(begin_index).__name__} {begin_index!r}")
        self._starting_step(int(begin_index))
        self._begin_index = int(begin_index)
        self._reset()

    def _times_of(self, timesteps: Any) -> list:
        """pndmkit times of network timesteps (those of this loop, else by the family's map)."""
        values = torch.as_tensor(timesteps).reshape(-1).double().tolist()
        known = {float(v): t for v, t in zip(self._net_times, self._times)}
        tr = self.translation
        out = []
        for v in values:
            if v in known:
                out.append(known[v])
            elif tr.family == "flow":
                out.append(v / float(self.config.num_train_timesteps))
            elif tr.family == "edm":
                out.append(float(np.exp(4.0 * v)))
            else:
                out.append(v)
        return out

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: Any) -> torch.Tensor:
        """``alpha(t) x0 + sigma(t) noise`` at each sample's timestep, in the pipeline's sample coordinates
        (divided by ``alpha`` for sigma-scheduler configs; coefficients in float64).

        ``timesteps`` is one timestep or one per sample (the first axis of ``original_samples``), in the
        network's units (training indices, fractional ones included, for VP configs).

        Raises
        ------
        ValueError
            A timestep outside the config's table (no extrapolation: ``5000`` of a 1000-step table, ``-5``), a
            number of timesteps other than 1 or the batch size, ``noise`` of another shape.
        """
        tr = self.translation
        times = self._times_of(timesteps)
        batch = original_samples.shape[0] if original_samples.ndim else 1
        if len(times) not in (1, batch):
            raise ValueError(f"timesteps has {len(times)} entries for a batch of {batch} samples (original_samples "
                             f"of shape {tuple(original_samples.shape)}): pass one timestep, or one per sample")
        for i, (v, t) in enumerate(zip(torch.as_tensor(timesteps).reshape(-1).tolist(), times)):
            if not (math.isfinite(t) and self.schedule.t_min <= t <= self.schedule.t_max):
                raise ValueError(f"timesteps[{i}]={v!r} lies outside the noise table of this config ({self._table()}); "
                                 f"add_noise does not extrapolate")
        try:
            fits = torch.broadcast_shapes(noise.shape, original_samples.shape) == original_samples.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(f"noise of shape {tuple(noise.shape)} must have the shape of original_samples, "
                             f"{tuple(original_samples.shape)}")
        shape = (-1,) + (1,) * (original_samples.ndim - 1)
        alpha = [float(self.schedule.alpha(t)) * tr.sample_scale(t) for t in times]
        sigma = [float(self.schedule.sigma(t)) * tr.sample_scale(t) for t in times]
        like = dict(dtype=original_samples.dtype, device=original_samples.device)
        a = torch.tensor(alpha, **like).reshape(shape)
        s = torch.tensor(sigma, **like).reshape(shape)
        return a * original_samples + s * noise.to(original_samples.dtype)

    def _table(self) -> str:
        """The timesteps add_noise reads, in the network's units."""
        tr, sched = self.translation, self.schedule
        if tr.family == "flow":
            n = float(self.config.num_train_timesteps)
            return f"timesteps in [{n * sched.t_min:g}, {n * sched.t_max:g}], num_train_timesteps * sigma"
        if tr.family == "edm":
            lo = math.log(sched.t_min) / 4 if sched.t_min > 0 else -math.inf
            return f"timesteps in [{lo:g}, {math.log(sched.t_max) / 4:g}], log(sigma) / 4"
        return f"timesteps in [{sched.t_min:g}, {sched.t_max:g}], training indices"

    def scale_noise(self, sample: torch.Tensor, timestep: Any, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Flow-matching pipelines' name for :meth:`add_noise` (``(1 - t) x0 + t noise``)."""
        return self.add_noise(sample, noise, timestep)

    def step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, return_dict: bool = True,
             eta: float = 0.0, generator: Any = None, use_clipped_model_output: Optional[bool] = None,
             **unused: Any) -> Union[SchedulerOutput, tuple]:
        """Tell the model output at ``timestep``; return the point of the next evaluation (or the final sample).

        Parameters
        ----------
        model_output : torch.Tensor
            The network's prediction (``config.prediction_type``) at the current evaluation, of the shape of
            ``sample``; with ``variance_type="learned"`` or ``"learned_range"`` in the config (a DDPM config of a
            network that also predicts its variance, as DeepFloyd IF's), twice the channels of ``sample`` (dim 1)
            are accepted too: the prediction and the variance, split there as ``DDPMScheduler.step`` splits them.
            The methods are deterministic and use the prediction only.
        timestep : int, float or torch.Tensor
            The current element of :attr:`timesteps`.
        sample : torch.Tensor
            The point the scheduler returned last (or the initial latents). A pipeline that changed it between
            steps (inpainting) is followed where the change falls at the start of a step.
        return_dict : bool
            Return a ``SchedulerOutput`` rather than a tuple.
        eta : float
            Must be 0: the methods are deterministic (accepted because DDIM pipelines pass it).
        use_clipped_model_output : bool, optional
            DDIM's keyword, read where ``clip_sample=True``. With a method whose every step is one DDIM step of
            one evaluation (``ddim``), ``None`` / ``False`` is DDIM's default step, the clipped ``x0`` paired
            with the unclipped ``eps``, and ``True`` derives ``eps`` from the clipped ``x0``, as
            ``DDIMScheduler.step`` does, on every config (on a ``DDPMScheduler`` config ``ddim`` is what
            ``DDIMScheduler.from_config`` of it runs). Every other method is told the clipped ``x0`` as the
            model's prediction, ``eps`` following it (as ``True``); an explicit ``False`` is refused there.
        generator, **unused
            Ignored (pipelines pass them to stochastic schedulers).

        Raises
        ------
        RuntimeError
            :meth:`set_timesteps` was not called, or the loop is over.
        TypeError
            ``model_output`` or ``sample`` is not a tensor, ``timestep`` not a number.
        ValueError
            ``timestep`` has more than one element, ``eta`` is not 0, ``timestep`` (when it is a number or a CPU tensor) is not the evaluation the method
            asks for, or the sample was changed in the middle of a step; ``sample`` of another shape (another
            batch size) than the loop's, ``model_output`` of another shape than ``sample`` (twice its channels
            only with a learned ``variance_type``, named in the message);
            ``use_clipped_model_output`` not a bool
            or ``None``, or ``False`` with ``clip_sample=True`` where the method is not ``ddim``.

        Warns
        -----
        ConventionWarning
            At the first step of an image-to-image loop (``set_begin_index`` past 0) on an
            ``LMSDiscreteScheduler`` config: that source's own step is inconsistent there (it takes its order from
            the step index, not from the derivatives it holds), so its results are no reference to match.
        """
        if eta not in (None, 0, 0.0):
            raise ValueError(f"eta={eta} cannot be honoured: pndmkit's methods are deterministic (eta = 0)")
        self._check_clipped_model_output(use_clipped_model_output)
        self._require_timesteps()
        for name, value in (("model_output", model_output), ("sample", sample)):
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if isinstance(timestep, torch.Tensor) and timestep.numel() != 1:
            raise ValueError(f"timestep must be one number (the current element of scheduler.timesteps), got a "
                             f"tensor of shape {tuple(timestep.shape)}")
        if not isinstance(timestep, (torch.Tensor, numbers.Real)) or isinstance(timestep, bool):
            raise TypeError(f"timestep must be a number or a one-element tensor (the current element of "
                            f"scheduler.timesteps), got {type(timestep).__name__} {timestep!r}")
        model_output = self._prediction_part(model_output, sample)
        tr = self.translation
        if self._run is None:
            self._start(timestep, sample)
        elif self._run.done:
            raise RuntimeError("the sampling loop is over: call set_timesteps before the next one")
        elif sample is not self._last:
            if self._last is not None and sample.shape != self._last.shape:
                raise ValueError(f"step got a sample of shape {tuple(sample.shape)} at evaluation {self.nfe + 1} of "
                                 f"{len(self._times)}, but this sampling loop runs samples of shape "
                                 f"{tuple(self._last.shape)}: the batch size and sample shape cannot change in the "
                                 f"middle of a loop; call set_timesteps to start a new loop with them")
            self._follow(sample)
        run = self._run
        x_eval, t = run.ask()
        k = self._k
        if not isinstance(timestep, torch.Tensor) or timestep.device.type == "cpu":
            given = float(timestep.item() if isinstance(timestep, torch.Tensor) else timestep)
            want = self._net_times[k] if k < len(self._net_times) else t
            if abs(given - want) > 1e-4 * max(1.0, abs(want)):
                raise ValueError(f"step got timestep={given:g}, but evaluation {self.nfe + 1} of "
                                 f"{run.integrator.name!r} is at timestep {want:g} (t={t:g}): pass the scheduler's "
                                 f"timesteps in order, after set_timesteps")
        output = self._told(model_output, x_eval, t, self._ddim_default_step(use_clipped_model_output))
        run = self._run = run.tell(output)
        self._k = k + 1
        if run.done:
            prev = run.solution().x
            t_next = float(run.times[-1])
        else:
            x_next, t_next = run.ask()
            prev = _cast_like(x_next, sample)
        scale = tr.sample_scale(t_next)
        if scale != 1.0:
            prev = prev * scale
        self._last = prev
        return SchedulerOutput(prev_sample=prev) if return_dict else (prev,)

    # -- internals ------------------------------------------------------------------------------------
    def _check_clipped_model_output(self, value: Any) -> None:
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"use_clipped_model_output must be True, False or None, got {value!r}")
        if value is None or value or self.translation.clip is None or self._ddim_default_step(False):
            return
        raise ValueError(f"use_clipped_model_output=False cannot be honoured by {self.integrator.name!r} on a "
                         f"{self.translation.source or 'PNDMKitScheduler'} config: it is DDIMScheduler's default "
                         f"step, the clipped x0 paired with the unclipped eps in one DDIM step, which only "
                         f"method='ddim' takes; with clip_sample=True every other method is told the clipped x0 (eps "
                         f"following it). Pass use_clipped_model_output=True or None, or clip_sample=False")

    def _ddim_default_step(self, use_clipped_model_output: Optional[bool]) -> bool:
        """Whether this evaluation is DDIM's default clipped step: ``clip_sample=True`` (on any config: DDPM's
        too, which ``DDIMScheduler.from_config`` steps the same way), a method of one DDIM step per evaluation,
        ``use_clipped_model_output`` not set."""
        return (not use_clipped_model_output and self.translation.clip is not None and
                _one_ddim_step_per_evaluation(self.integrator))

    def _prediction_part(self, model_output: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """``model_output`` itself, or its first ``C`` channels where a learned ``variance_type`` has the network
        output ``2 C`` (the prediction, then the variance, as ``DDPMScheduler.step`` reads them)."""
        if model_output.shape == sample.shape:
            return model_output
        variance_type = self.config.get("variance_type", None)
        learned = variance_type in _LEARNED_VARIANCE
        if learned and model_output.ndim == sample.ndim >= 2 and model_output.shape[1] == 2 * sample.shape[1] and \
                model_output.shape[:1] + model_output.shape[2:] == sample.shape[:1] + sample.shape[2:]:
            return model_output[:, :sample.shape[1]]
        doubled = list(sample.shape)
        if len(doubled) >= 2:
            doubled[1] *= 2
        allowed = (f", or {tuple(doubled)} (the prediction and its learned variance, with variance_type="
                   f"{variance_type!r})" if learned and len(doubled) >= 2 else
                   f"; variance_type={variance_type!r} (twice the channels, the prediction and a learned variance, "
                   f"are read only with variance_type 'learned' or 'learned_range')")
        raise ValueError(f"model_output of shape {tuple(model_output.shape)} must have the shape of sample, "
                         f"{tuple(sample.shape)} (the network's prediction for each sample){allowed}")

    def _told(self, output: torch.Tensor, x: torch.Tensor, t: float, ddim_default: bool = False) -> torch.Tensor:
        """The model output as the run's prediction: EDM-preconditioned, or with its ``x0`` clipped.

        With ``ddim_default`` (:meth:`_ddim_default_step`) the step to ``t'`` must land where
        ``DDIMScheduler.step`` does by default, ``alpha' x0c + sigma' eps`` with ``x0c`` the clipped ``x0``
        and ``eps`` the unclipped one. A DDIM step told ``x0`` lands on ``alpha' x0 + sigma' (x - alpha x0) /
        sigma``, so it is told ``x0 + (x0c - x0) s / (s - s')`` (``s = sigma / alpha``), which gives exactly that
        (``x0c`` itself at ``s' = 0``); the method keeps nothing between steps, so nothing else reads it.
        """
        tr = self.translation
        output = output.to(x.dtype) if output.dtype != x.dtype else output
        if tr.family == "edm":
            c_skip, c_out = tr.denoised_coefficients(t)
            output = torch.add(x * c_skip, output, alpha=c_out)
        elif tr.clip is not None:  # x0 = (x - sigma eps) / alpha etc., clipped as DDPM/DDIM clip theirs
            from pndmkit.models import eps_coefficients

            alpha, sigma = float(self.schedule.alpha(t)), float(self.schedule.sigma(t))
            e_x, e_o = eps_coefficients(self.schedule, t, tr.prediction)
            eps = output if (e_x, e_o) == (0.0, 1.0) else torch.add(x * e_x, output, alpha=e_o)
            x0 = torch.add(x / alpha, eps, alpha=-sigma / alpha)
            output = x0.clamp(-tr.clip, tr.clip)
            if ddim_default:
                run = self._run
                s, s_next = float(self.schedule.s(t)), float(self.schedule.s(float(run.times[run.index + 1])))
                output = torch.add(x0, output - x0, alpha=s / (s - s_next))
        return output

    def _require_timesteps(self) -> None:
        if self.timesteps is None:
            raise RuntimeError("call set_timesteps(num_inference_steps) before sampling")

    def _starting_step(self, k: int) -> int:
        """The grid step at which evaluation ``k`` starts a fresh run whose evaluations are ``times[k:]``."""
        n = self.num_inference_steps
        whole = getattr(self, "_source_steps", n)  # the pipeline's num_inference_steps, a zero-length step counted
        if k in (n * self.order, whole * self.order):  # what image-to-image pipelines pass when no step is kept
            least = whole - n + 1  # the steps int(whole * strength) must keep for one to run
            lowest = -(-least * 10 ** 6 // whole) / 10 ** 6  # least / whole rounded up: int(whole * lowest) >= least
            zero = "" if whole == n else (f", the last of length zero, which pndmkit leaves out (its "
                                          f"num_inference_steps is {n})")
            raise ValueError(f"begin_index={k} (t_start {k // self.order} * order {self.order}) starts image-to-image "
                             f"after the last of the {whole} steps{zero}: the strength asked runs no step (Stable "
                             f"Diffusion pipelines run int({whole} * strength) of the {whole} steps, none for strength "
                             f"< {least}/{whole}); pass strength in [{lowest:g}, 1], or more num_inference_steps")
        if not 0 <= k < len(self._times):
            raise ValueError(f"begin_index={k} must lie in [0, {len(self._times)}), the evaluations of this loop")
        # the steps the pipeline's strength keeps, counted as it counts them (a zero-length last step included;
        # how it rounds depends on the pipeline)
        kept = whole - k / self.order
        zero = "" if whole == n else ", the last of length zero, which pndmkit leaves out"
        strength = (f"image-to-image running the last {kept:g} of {whole} steps{zero} (the strength asked keeps "
                    f"{kept:g}; begin_index={k} = t_start {k / self.order:g} * order {self.order})")
        # diffusers' PNDMScheduler counts its calls from set_timesteps, not the timesteps it is passed: on a slice it
        # steps samples from other timesteps than theirs, so its own run is no reference to match
        source = ("; diffusers' PNDMScheduler gives no reference to match there: its step counts its calls, not the "
                  "timesteps it is passed, so on the pipeline's slice it steps samples from other timesteps than "
                  "theirs (in PLMS mode from its third call: the slice lacks the warm-up's repeated timestep)"
                  if self.translation.source == "PNDMScheduler" else
                  f"; {_LMS_SLICE}" if self.translation.source == "LMSDiscreteScheduler" else "")
        if k not in self._starts:
            raise ValueError(f"{strength} cannot be honoured by {self.integrator.name!r}: begin_index={k} (t="
                             f"{self._times[k]:g}) falls inside a step; its steps start at the evaluations "
                             f"{sorted(self._starts)}. Use a method with the same evaluations in every step "
                             f"(ddim, pie, prk, ipndm, dpm-solver++-2m, unipc-3, ...) or strength=1{source}")
        j = self._starts[k]
        if k and evaluation_times(self.integrator, self.grid[j:], self.translation.told_prediction)[0] != \
                self._times[k:]:
            raise ValueError(f"{strength} cannot be honoured by {self.integrator.name!r}: begin_index={k}: started "
                             f"afresh at t={self.grid[j]:g} (warm-up included) it evaluates at other times than "
                             f"timesteps[{k}:], which the pipeline runs; use a method with the same evaluations in "
                             f"every step (ddim, pie, prk, ipndm, dpm-solver++-2m, unipc-3, ...) or strength=1"
                             f"{source}")
        return j

    def _start(self, timestep: Any, sample: torch.Tensor) -> None:
        k = self._eval_index(timestep)
        j = self._starting_step(k)
        t0 = float(self.grid[j])
        scale = self.translation.sample_scale(t0)
        x = sample if scale == 1.0 else sample / scale
        self._k = k
        integrator = self.integrator
        if j and self.translation.source == "LMSDiscreteScheduler":
            warnings.warn(f"image-to-image from begin_index={k} on an LMSDiscreteScheduler config: {_LMS_SLICE}. "
                          f"{integrator.name!r} runs from there as a fresh run, its warm-up included (with "
                          f"'ipndm-v', LMS's method, it equals LMSDiscreteScheduler.step given "
                          f"order=min(len(scheduler.derivatives) + 1, 4) to 4e-7; the source's own run is 3e-2 to "
                          f"5e-2 away at 10 and 20 steps, strengths 0.3 to 0.9, on a tiny UNet)",
                          ConventionWarning, stacklevel=3)
        if j:  # image-to-image: the last steps' lowering counts the whole grid, as the sources count it
            estimator = _counted_on_whole_grid(integrator.estimator, self.num_inference_steps)
            if estimator is not integrator.estimator:
                integrator = dataclasses.replace(integrator, estimator=estimator)
        # no NaN check of the latent (a device sync inside the pipeline's loop), as diffusers' schedulers
        self._run = integrator.start(x, self.grid[j:], prediction=self.translation.told_prediction, check_x=False)

    def _follow(self, sample: torch.Tensor) -> None:
        """The pipeline passed a sample other than the one returned: restart the current step from it."""
        run = self._run
        x_asked, t_asked = run.ask()
        scale = self.translation.sample_scale(t_asked)
        if self._last is not None and torch.equal(self._last.to(sample.dtype), sample):
            return
        if run.told or t_asked != run.t:
            raise ValueError(f"the sample was changed in the middle of a step of {run.integrator.name!r} (evaluation "
                             f"at t={t_asked:g}); a changed sample can be followed only at the start of a step")
        self._nfe_before += run.nfe
        x = sample if scale == 1.0 else sample / scale
        self._run = run.integrator.start(x, run.times[run.index:], prediction=run.prediction,
                                         estimator_state=run.state, check_x=False)


# diffusers' LMSDiscreteScheduler on an image-to-image slice: its step takes the order of its formula from the step
# index counted from set_timesteps, min(index + 1, 4), not from the derivatives it has told since begin_index, and
# pairs the newest derivatives with the first coefficients of that formula (weights that do not sum to the step)
_LMS_SLICE = ("diffusers' LMSDiscreteScheduler gives no reference to match there: its step takes the order of its "
              "formula from the step index counted from set_timesteps (min(index + 1, 4)), not from the "
              "derivatives it holds since begin_index, so its first steps there weight the few derivatives it has "
              "by part of a higher-order formula's coefficients (not a consistent step)")


def _one_ddim_step_per_evaluation(integrator: Integrator) -> bool:
    """Whether every step of ``integrator`` is one DDIM step of the evaluation at its start (``ddim``: the
    :class:`~pndmkit.estimators.Single` estimator through the DDIM transfer or its data form, the same map)."""
    return type(integrator.estimator) is Single and type(integrator.transfer) in (DDIMTransfer, DataTransfer)


def _or(fixes: list) -> str:
    """``"a, b, or c"`` (``fixes`` not empty)."""
    return fixes[0] if len(fixes) == 1 else ", ".join(fixes[:-1]) + ", or " + fixes[-1]


def _registry() -> dict:
    from pndmkit.methods import METHODS

    return METHODS


def _betas(values: Any) -> np.ndarray:
    return trained_betas(values)


def _cast_like(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == like.dtype else x.to(like.dtype)

