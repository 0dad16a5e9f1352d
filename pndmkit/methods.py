r"""The method registry: every sampler of the paper and its peers as a short composition.

``METHODS[name]`` is a :class:`MethodSpec`: how to build the integrator for a schedule, the declared
global order of convergence (on a ``t``-uniform grid, float64, against the exact probability-flow
trajectory) and the number of model evaluations for ``N`` steps. One registry-driven test measures both
for every entry.

Why the paper's pseudo methods are second order: ``phi`` integrates exactly in ``s`` (noise-to-signal
ratio), while PRK places its stages at the ``t``-midpoint and PLMS uses weights uniform in ``t``; the
mismatch leaves a local error ``~ s'' eps' h^3``. The ``-s`` variants place stages at the ``s``-midpoint
and use Adams-Bashforth weights exact on the actual ``s`` nodes, and recover fourth order.

Two few-step variants come from the head-to-head (``analysis/levers.py``, README "Parity and head-to-head with
diffusers"): ``ipndm-lof1`` / ``ipndm-lof2`` take iPNDM's last step at lower order (DDIM, AB2), as DPM-Solver's
``lower_order_final`` does (:class:`~pndmkit.estimators.Final`), and ``pec-s-ramp`` warms the s-exact
Adams PEC pair up by its own lower-order pairs (one evaluation a step) instead of pseudo RK4 (four a step), whose
stage errors the eps-form transfer amplifies at few steps. Each is third order or less.

Examples
--------
>>> METHODS["f-pndm"].nfe(50), METHODS["plms"].nfe(50), METHODS["s-pndm"].nfe(50)
(59, 51, 51)
>>> METHODS["f-pndm"].nfe(2)   # fewer steps than the warm-up: PRK throughout
8
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any, Callable, Optional, Union

from pndmkit._checks import check_bool, check_int, with_article
from pndmkit.adams import AdamsPC, LinearMultistep
from pndmkit.adaptive import AdaptiveIntegrator
from pndmkit.estimators import Final, GradientEstimator, Single, Warmup
from pndmkit.exponential import UniPC, deis_multistep, dpm_solver_multistep
from pndmkit.integrator import Integrator
from pndmkit.runge_kutta import RungeKutta
from pndmkit.schedules import DiscreteVP, LinearVP, NoiseSchedule
from pndmkit.tableaus import HEUN, RK4
from pndmkit.transfers import DataTransfer, DDIMTransfer, LinearTransfer

__all__ = ["MethodSpec", "MethodRegistry", "METHODS", "BUILTIN", "DEFAULT_METHOD", "KINDS", "get_method", "register_method",
           "unregister_method", "steps_for_nfe", "identifier", "RESERVED_NAMES", "reserved_name",
           "unknown_method_reason", "check_method_type"]

Built = Union[Integrator, AdaptiveIntegrator]
_NAME = re.compile(r"[a-z0-9][a-z0-9+._-]*")


def identifier(name: str) -> str:
    """The Python identifier a method name becomes where names must be identifiers (k-diffusion-style
    ``sample_<identifier>`` functions): ``+`` becomes ``_p`` (``++``: ``_pp``), every other character outside
    ``[a-z0-9]`` becomes ``_``, and runs of ``_`` collapse to one.

    :func:`register_method` refuses a name whose identifier is another registered method's.

    >>> identifier("dpm-solver++-2m"), identifier("f-pndm-s")
    ('dpm_solver_pp_2m', 'f_pndm_s')
    """
    spelled = re.sub(r"\++", lambda m: "_" + "p" * len(m.group()) + "_", name)
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]", "_", spelled)).strip("_")


_SECOND_ORDER = "the deterministic second-order samplers here are sample_heun (pndmkit's 'pie') and sample_dpmpp_2m"
_NOISE = "every sampler here is deterministic"
_CFG_PP = ("is CFG++ (Chung et al. 2024): its step uses the unconditional denoiser's output apart from the guided "
           "one, which a sampler here, given one denoiser, does not see")

#: names that k-diffusion (``k_diffusion.sampling.sample_<name>``) and ComfyUI (its sampler list: the
#: ``sample_<name>`` functions of ``comfy/k_diffusion/sampling.py`` in the ComfyUI repository) give to algorithms
#: pndmkit does not implement -> (whose name it is, why pndmkit has no equivalent and the nearest sampler of
#: :mod:`pndmkit.integrations.k_diffusion`). The names are reserved for those algorithms, in every spelling with
#: their :func:`identifier` (``"res_multistep"``, ``"res-multistep"``): :func:`register_method` refuses them, so
#: that code written for k-diffusion or ComfyUI never runs another algorithm under their name, :func:`get_method`
#: says that pndmkit does not implement the algorithm, and the k-diffusion integration does not define
#: ``sample_<name>`` (reading it raises ``AttributeError`` with the reason). A built-in method whose identifier is
#: one of them keeps its registry name and gets another sampler name (``ipndm-v``: ``sample_ipndm_v_pndmkit``).
#: ComfyUI's samplers that are k-diffusion's are listed as k-diffusion's.
RESERVED_NAMES: Mapping[str, tuple[str, str]] = {
    "euler_ancestral": ("k-diffusion", "k-diffusion's Euler ancestral sampler adds noise after every step (eta); "
                                       f"{_NOISE}: its noise-free counterpart is sample_euler"),
    "dpm_2": ("k-diffusion", "k-diffusion's DPM-2 takes a midpoint step with a stage between the sigmas, a method "
                             f"pndmkit does not have; {_SECOND_ORDER}"),
    "dpm_2_ancestral": ("k-diffusion", "k-diffusion's DPM-2 ancestral sampler adds noise after every step; "
                                       f"{_NOISE}, and {_SECOND_ORDER}"),
    "dpm_fast": ("k-diffusion", "k-diffusion's DPM-Solver (single-step, orders 1-3, its own signature with n, "
                                "sigma_min and sigma_max) has no equivalent here; the multistep DPM-Solvers here are "
                                "sample_dpm_solver_2m and sample_dpmpp_2m"),
    "dpm_adaptive": ("k-diffusion", "k-diffusion's adaptive DPM-Solver chooses its own steps; pndmkit's adaptive "
                                    "methods run with pndmkit.sample(model, x, schedule=..., method=...), not over "
                                    "given sigmas"),
    "dpmpp_2s_ancestral": ("k-diffusion", "k-diffusion's DPM-Solver++(2S) ancestral sampler adds noise after every "
                                          f"step; {_NOISE}, and {_SECOND_ORDER}"),
    "dpmpp_sde": ("k-diffusion", f"k-diffusion's DPM-Solver++ SDE sampler adds noise; {_NOISE}: the nearest is "
                                 f"sample_dpmpp_2m"),
    "dpmpp_2m_sde": ("k-diffusion", f"k-diffusion's DPM-Solver++(2M) SDE sampler adds noise; {_NOISE}: the nearest "
                                    f"is sample_dpmpp_2m"),
    "dpmpp_3m_sde": ("k-diffusion", f"k-diffusion's DPM-Solver++(3M) SDE sampler adds noise; {_NOISE}: the nearest "
                                    f"are sample_dpmpp_2m and sample_dpm_solver_pp_3m (pndmkit's 'dpm-solver++-3m')"),
    "ipndm_v": ("ComfyUI", "ComfyUI's iPNDM_v uses order-4 weights that are (57, -65, 43, -11)/24 on uniform steps, "
                           "not Adams-Bashforth's (55, -59, 37, -9)/24, order-3 weights that are the variable-step "
                           "ones only on uniform steps, and the data step to sigma = 0; pndmkit's 'ipndm-v' "
                           "(variable-step Adams-Bashforth weights, exact on any sigmas) is sample_ipndm_v_pndmkit, "
                           "and k-diffusion's sample_lms is the same method"),
    "deis": ("ComfyUI", "ComfyUI's DEIS (deis_mode='tab') interpolates d in the time of a VP schedule fitted to sigmas "
                        "in [0.002, 80] and integrates the interpolant with a 10000-point Riemann sum, a method "
                        "pndmkit does not have; pndmkit's DEIS, 'deis-3' (Lagrange in log sigma, integrated "
                        "exactly), is sample_deis_3"),
    "res_multistep": ("ComfyUI", "ComfyUI's RES multistep sampler (second order, exponential-integrator weights in "
                                 "phi functions on the data prediction; Zhang et al., arXiv 2308.02157) is a method "
                                 "pndmkit does not have; the nearest is sample_dpmpp_2m"),
    "heunpp2": ("ComfyUI", "ComfyUI's Heun++ takes a third evaluation away from the end of the sigmas and blends the "
                           "three slopes with sigma-dependent weights, a method pndmkit does not have; "
                           f"{_SECOND_ORDER}"),
    "gradient_estimation": ("ComfyUI", "ComfyUI's gradient-estimation sampler (Euler steps plus (ge_gamma - 1) times "
                                       "the change of the slope since the last step; Permenter and Yuan 2024) is a "
                                       "method pndmkit does not have; with ge_gamma=1 it is sample_euler"),
    "exp_heun_2_x0": ("ComfyUI", "ComfyUI's exponential Heun (single-step, second order, two evaluations a step on "
                                 "the data prediction in log-SNR time) is a method pndmkit does not have; "
                                 f"{_SECOND_ORDER}"),
    **{name: ("ComfyUI", f"ComfyUI's {what} adds noise; {_NOISE}: the nearest is {nearest}") for name, what, nearest in (
        ("euler_ancestral_RF", "Euler ancestral sampler for rectified-flow models", "sample_euler"),
        ("dpm_2_ancestral_RF", "DPM-2 ancestral sampler for rectified-flow models", "sample_heun"),
        ("dpmpp_2s_ancestral_RF", "DPM-Solver++(2S) ancestral sampler for rectified-flow models", "sample_dpmpp_2m"),
        ("dpmpp_sde_gpu", "DPM-Solver++ SDE sampler (noise drawn on the GPU)", "sample_dpmpp_2m"),
        ("dpmpp_2m_sde_gpu", "DPM-Solver++(2M) SDE sampler (noise drawn on the GPU)", "sample_dpmpp_2m"),
        ("dpmpp_2m_sde_heun", "DPM-Solver++(2M) SDE sampler with Heun's solver type", "sample_dpmpp_2m"),
        ("dpmpp_2m_sde_heun_gpu", "DPM-Solver++(2M) SDE sampler with Heun's solver type (noise drawn on the GPU)",
         "sample_dpmpp_2m"),
        ("dpmpp_3m_sde_gpu", "DPM-Solver++(3M) SDE sampler (noise drawn on the GPU)", "sample_dpm_solver_pp_3m"),
        ("ddpm", "DDPM sampler (ancestral sampling, fresh noise at every step)", "sample_euler"),
        ("lcm", "LCM sampler (the denoised sample, noised afresh at every step)", "sample_euler"),
        ("res_multistep_ancestral", "RES multistep ancestral sampler", "sample_dpmpp_2m"),
        ("er_sde", "ER-SDE solver (extended reverse-time SDE)", "sample_dpmpp_2m"),
        ("seeds_2", "SEEDS-2 (stochastic exponential derivative-free solver)", "sample_dpmpp_2m"),
        ("seeds_3", "SEEDS-3 (stochastic exponential derivative-free solver)", "sample_dpm_solver_pp_3m"),
        ("exp_heun_2_x0_sde", "stochastic exponential Heun sampler", "sample_dpmpp_2m"),
        ("sa_solver", "SA-Solver (stochastic Adams)", "sample_ipndm_v_pndmkit"),
        ("sa_solver_pece", "SA-Solver in PECE mode (stochastic Adams predictor-corrector)", "sample_pece_s"),
        ("ar_video", "autoregressive video sampler (blocks of frames denoised with a causal video model's "
                     "key-value cache and noised afresh between steps)", "sample_euler"),
    )},
    **{name: ("ComfyUI", f"ComfyUI's {name} {_CFG_PP}; the nearest is {nearest} with a guided denoiser")
       for name, nearest in (
           ("euler_cfg_pp", "sample_euler"), ("euler_ancestral_cfg_pp", "sample_euler"),
           ("dpmpp_2s_ancestral_cfg_pp", "sample_dpmpp_2m"), ("dpmpp_2s_ancestral_RF_cfg_pp", "sample_dpmpp_2m"),
           ("dpmpp_2m_cfg_pp", "sample_dpmpp_2m"), ("res_multistep_cfg_pp", "sample_dpmpp_2m"),
           ("res_multistep_ancestral_cfg_pp", "sample_dpmpp_2m"), ("gradient_estimation_cfg_pp", "sample_euler"))},
}

#: identifier of each reserved name (lower case: ComfyUI's ``euler_ancestral_RF``) -> the name
_RESERVED_BY_IDENTIFIER = {identifier(name.lower()): name for name in RESERVED_NAMES}


def reserved_name(name: str) -> Optional[str]:
    """The :data:`RESERVED_NAMES` entry that ``name`` spells (the same :func:`identifier`, any case), or ``None``.

    Parameters
    ----------
    name : str
        A method name as a user writes it (``"res-multistep"``); anything else is no reserved name.

    Returns
    -------
    str or None
        The reserved name, as k-diffusion or ComfyUI spells it (``"res_multistep"``, ``"euler_ancestral_RF"``).

    Examples
    --------
    >>> reserved_name("res-multistep"), reserved_name("res_multistep"), reserved_name("ipndm")
    ('res_multistep', 'res_multistep', None)
    """
    return _RESERVED_BY_IDENTIFIER.get(identifier(name.lower())) if isinstance(name, str) else None


def _not_implemented(name: str, reserved: str) -> str:
    """Why a lookup of ``name``, which spells the reserved name ``reserved``, finds no method."""
    whose, why = RESERVED_NAMES[reserved]
    return (f"{name!r} names {whose}'s sampler {reserved!r} (sample_{reserved}), an algorithm pndmkit does not "
            f"implement: {why}")


def unknown_method_reason(name: str) -> str:
    """The clause an "unknown method" message adds for ``name``: ``""``, or, where ``name`` spells a name of
    :data:`RESERVED_NAMES`, ``": 'res-multistep' names ComfyUI's sampler ..."`` (whose name it is, that pndmkit
    does not implement that algorithm, and the nearest sampler here). The CLI's method options use it, so that
    every entry point answers a reserved name as :func:`get_method` does.

    >>> unknown_method_reason("no-such-method")
    ''
    >>> unknown_method_reason("res-multistep").startswith(": 'res-multistep' names ComfyUI's sampler")
    True
    """
    reserved = reserved_name(name) if isinstance(name, str) else None
    return f": {_not_implemented(name, reserved)}" if reserved is not None else ""


@dataclass(frozen=True)
class _NamedBuild:
    """A spec's ``build`` as every caller gets it: the user's function, checked to build on the schedule it is
    given, and its integrator named by the registry name (so saved configs, run metadata and ``Solution.method``
    carry the name that rebuilds it)."""

    build: Callable[[NoiseSchedule], Any]
    name: str

    def __call__(self, schedule: NoiseSchedule) -> Any:
        try:
            built = self.build(schedule)
        except Exception as exc:
            raise ValueError(f"the build of method {self.name!r} failed on {schedule!r}: "
                             f"{type(exc).__name__}: {exc}") from exc
        if isinstance(built, Integrator):
            used = built.transfer.schedule
        elif isinstance(built, AdaptiveIntegrator):
            used = built.schedule
        else:
            return built  # register_method names the wrong type
        if used is not schedule:
            other = (f"another object equal to it in print, {used!r}" if repr(used) == repr(schedule) else
                     f"{used!r}")
            raise ValueError(f"the build of method {self.name!r} ignores the schedule it is given: asked for "
                             f"{schedule!r}, it built on {other} (build(schedule) must use that very object, not "
                             f"one it makes)")
        return built if built.name == self.name else dataclasses.replace(built, name=self.name)

#: the kinds of method: pseudo (a transfer that keeps samples on the noise-level manifold), classical
#: (the linear transfer ``x + h f``), adaptive (the method chooses its steps)
KINDS = ("pseudo", "classical", "adaptive")


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Attributes
    ----------
    name : str
        Registry key.
    build : callable
        ``build(schedule)`` returns the integrator (:class:`~pndmkit.integrator.Integrator` or
        :class:`~pndmkit.adaptive.AdaptiveIntegrator`) on that very schedule. The spec keeps it wrapped: a
        build that fails, or builds on another schedule, raises ``ValueError`` naming the method and the
        schedule, and the integrator it returns carries the spec's ``name`` (a build reused under a new name
        is renamed), so the name travels with what it builds.
    order : int or None
        Declared global order (``t``-uniform grid, against the exact probability-flow trajectory); ``None``
        for adaptive methods. :func:`register_method` checks it against the order the objects report.
    gradient, transfer : str
        One-line descriptions of the gradient and transfer parts (defaults: the objects' ``repr``).
    reference : str
        Where the method comes from.
    """

    name: str
    build: Callable[[NoiseSchedule], Built]
    order: Optional[int]
    gradient: str = ""
    transfer: str = ""
    reference: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.build, _NamedBuild):  # a spec copied under another name (dataclasses.replace)
            object.__setattr__(self, "build", self.build.build)
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(f"spec.name must be lower-case letters, digits and + . _ - (starting with a letter or "
                             f"digit: the CLI's --methods splits on commas), got {self.name!r}")
        if not callable(self.build):
            raise TypeError(f"spec.build must be callable as build(schedule) -> Integrator, got "
                            f"{type(self.build).__name__}")
        object.__setattr__(self, "build", _NamedBuild(self.build, self.name))
        if self.order is not None and (isinstance(self.order, bool) or not isinstance(self.order, int)
                                       or self.order < 1):
            raise ValueError(f"spec.order must be a positive integer or None (adaptive), got {self.order!r}")
        for name in ("gradient", "transfer", "reference"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"spec.{name} must be a str, got {type(getattr(self, name)).__name__}")

    @cached_property
    def _probe(self) -> Built:
        return self.build(LinearVP())

    @property
    def kind(self) -> str:
        """``"pseudo"``, ``"classical"`` or ``"adaptive"``, as the built objects report it."""
        return self._probe.kind

    @property
    def adaptive(self) -> bool:
        """Whether the step sequence is chosen by the method (NFE not known in advance)."""
        return self.kind == "adaptive"

    def reported_order(self) -> Optional[int]:
        """The order the built integrator reports (``None`` for adaptive methods)."""
        return None if self.adaptive else self._probe.order()  # type: ignore[union-attr]

    def nfe(self, steps: int) -> Optional[int]:
        """Model evaluations of a run of ``steps`` steps on a continuous VP schedule (``None`` if adaptive),
        derived from the protocol (:meth:`pndmkit.integrator.Integrator.nfe`)."""
        if self.adaptive:
            return None
        return self._probe.nfe(steps)  # type: ignore[union-attr]

    def nfe_formula(self) -> str:
        """The NFE as a formula in ``N`` for ``N`` at least the warm-up length."""
        if self.adaptive:
            return "adaptive"
        n1, n2 = self.nfe(10), self.nfe(11)
        per, const = n2 - n1, n1 - 10 * (n2 - n1)  # type: ignore[operator]
        head = "N" if per == 1 else f"{per}N"
        return head if const == 0 else f"{head} + {const}" if const > 0 else f"{head} - {-const}"

    def describe(self) -> dict[str, Any]:
        """One row of ``pndmkit methods``: name, kind, gradient, transfer, NFE formula, order, reference."""
        probe = self._probe
        gradient = self.gradient or _shown(getattr(probe, "estimator", probe))
        transfer = self.transfer or _shown(getattr(probe, "transfer", ""))
        return {"name": self.name, "kind": self.kind, "gradient": gradient, "transfer": transfer,
                "nfe": self.nfe_formula(), "order": self.order, "reference": self.reference}


def _shown(part: Any) -> str:
    """How ``pndmkit methods`` shows a method's part: its ``repr``, or its class name where the ``repr`` is
    Python's default (``<module.Class object at 0x...>``, a user's estimator without one), which says nothing
    stable."""
    text = repr(part)
    return type(part).__name__ if text.startswith("<") and " object at 0x" in text else text


@dataclass(frozen=True)
class _Builder:
    """``build(schedule)`` of a registry entry: one estimator (immutable, so shared by every build) composed with
    the transfer of the method's kind on the schedule it is given."""

    transfer: Callable[[NoiseSchedule], Any]
    estimator: GradientEstimator
    name: str
    data_form: str = ""

    def __call__(self, schedule: NoiseSchedule) -> Integrator:
        return Integrator(self.estimator, self.transfer(schedule), self.name, self.data_form)


def _pseudo(name: str, estimator: GradientEstimator, *, data_form: str = "") -> _Builder:
    """A pseudo method: ``estimator`` through the DDIM transfer (eps form). ``data_form`` names the registered
    method with the same estimator on the data-prediction transfer (the stability warning's remedy)."""
    return _Builder(DDIMTransfer, estimator, name, data_form)


def _data(name: str, estimator: GradientEstimator) -> _Builder:
    """A pseudo method on the data-prediction transfer (x0 form, exact Euler in ``e^lambda``)."""
    return _Builder(DataTransfer, estimator, name)


def _classical(name: str, estimator: GradientEstimator) -> _Builder:
    """A classical method: ``estimator`` through the linear transfer ``x + h f``."""
    return _Builder(LinearTransfer, estimator, name)


def _ddim_transfer(schedule: NoiseSchedule) -> Any:
    """DDIM's transfer: the DDIM transfer, but on flow matching its data form (:class:`~pndmkit.transfers.DataTransfer`,
    the same map), which stays exact near and at ``t = 1`` where ``alpha`` vanishes."""
    return DataTransfer(schedule) if schedule.family == "flow" else DDIMTransfer(schedule)


def _adaptive(schedule: NoiseSchedule) -> AdaptiveIntegrator:
    """PF: the probability-flow ODE by scipy's RK45 at the score-SDE tolerances."""
    return AdaptiveIntegrator(schedule)


PIE = RungeKutta(HEUN)  # pseudo improved Euler = pseudo Heun
PRK = RungeKutta(RK4)
PRK_S = RungeKutta(RK4, variable="native")
PAPER = "Liu et al. 2022 (PNDM), arXiv 2202.09778"
DATA = "phi (data, exact Euler in e^lambda)"

_SPECS = [
    MethodSpec("ddim", _Builder(_ddim_transfer, Single(), "ddim"), 1, "e' = eps(x, t)", "phi (DDIM)",
               "Song et al. 2021 (DDIM); PNDM eq. 9"),
    MethodSpec("pie", _pseudo("pie", PIE), 2, "pseudo improved Euler: (e1 + e2)/2, e2 at phi(x, e1, t, t')",
               "phi (DDIM)", PAPER + ", eq. 11"),
    MethodSpec("prk", _pseudo("prk", PRK), 2, "pseudo RK4, stages at the t-midpoint", "phi (DDIM)",
               PAPER + ", eq. 12"),
    MethodSpec("plms", _pseudo("plms", LinearMultistep(4, warmup=PIE, warmup_steps=1, ramp=True)), 2,
               "PIE, then AB2, AB3, AB4 (t-uniform weights)", "phi (DDIM)",
               "CompVis latent diffusion PLMS; diffusers PNDMScheduler(skip_prk_steps=True)"),
    MethodSpec("s-pndm", _pseudo("s-pndm", LinearMultistep(2, warmup=PIE, warmup_steps=1, ramp=False)),
               2, "PIE, then AB2 (3 e_0 - e_1)/2", "phi (DDIM)", PAPER + ", S-PNDM"),
    MethodSpec("f-pndm", _pseudo("f-pndm", Warmup(PRK, 3, LinearMultistep(4, ramp=False)), data_form="f-pndm-x0"),
               2, "PRK for 3 steps, then AB4 (55, -59, 37, -9)/24", "phi (DDIM)",
               PAPER + ", Algorithm 2 (eq. 12, then eq. 13)"),
    MethodSpec("fon", _classical("fon", Warmup(RungeKutta(RK4), 3, LinearMultistep(4, ramp=False))), 4,
               "RK4 for 3 steps, then AB4, on f(x, t)", "linear x + h f", PAPER + ", FON baseline"),
    MethodSpec("fon-official", _classical("fon-official", Warmup(RungeKutta(RK4, derivative="base"), 3,
                                                                 LinearMultistep(4, ramp=False))), 2,
               "RK4 with every stage's derivative at the step's base point for 3 steps, then AB4, on f(x, t)",
               "linear x + h f", PAPER + ", FON as the official code's gen_fon computes it"),
    MethodSpec("pf", _adaptive, None, "adaptive RK45 (rtol = atol = 1e-5)", "probability-flow ODE",
               "Song et al. 2021 (score SDE)"),
    MethodSpec("ipndm", _pseudo("ipndm", LinearMultistep(4, ramp=True), data_form="ipndm-x0"), 2,
               "AB1, AB2, AB3, then AB4, fixed weights, no extra evaluations", "phi (DDIM)",
               "Zhang & Chen 2023 (DEIS), iPNDM"),
    MethodSpec("ipndm-v", _pseudo("ipndm-v", LinearMultistep(4, weights="exact", ramp=True)), 2,
               "AB1 .. AB4 with weights exact on the s nodes", "phi (DDIM)", "Zhang & Chen 2023 (DEIS), iPNDM_v"),
    MethodSpec("euler", _classical("euler", Single()), 1, "f(x, t)", "linear x + h f", "classical Euler"),
    MethodSpec("rk4", _classical("rk4", RungeKutta(RK4)), 4, "classical RK4 on f(x, t)", "linear x + h f",
               "classical RK4"),
    MethodSpec("prk-s", _pseudo("prk-s", PRK_S), 4, "pseudo RK4, stages at the s-midpoint", "phi (DDIM)",
               "pndmkit: s-consistent PRK"),
    MethodSpec("f-pndm-s", _pseudo("f-pndm-s", Warmup(PRK_S, 3, LinearMultistep(4, weights="exact", ramp=False))),
               4, "PRK-s for 3 steps, then AB4 exact on the s nodes", "phi (DDIM)", "pndmkit: s-consistent F-PNDM"),
    MethodSpec("pece-s", _pseudo("pece-s", Warmup(PRK_S, 2, AdamsPC(4, "PECE", ramp=False))), 4,
               "PRK-s for 2 steps, then AB3 predictor + AM4 corrector exact on the s nodes, PECE",
               "phi (DDIM)", "pndmkit: s-exact Adams-Bashforth-Moulton, PECE mode"),
    MethodSpec("pec-s", _pseudo("pec-s", Warmup(PRK_S, 2, AdamsPC(4, "PEC", ramp=False))), 4,
               "PRK-s for 2 steps, then AB3 + AM4 exact on the s nodes, PEC (next step reuses the predicted-point "
               "evaluation)", "phi (DDIM)", "pndmkit: s-exact Adams-Bashforth-Moulton, PEC mode"),
    # Lower-order final steps and a warm-up without RK stages: the few-step levers of analysis/levers.py, kept
    # where they beat every other method on the mixtures of the head-to-head (README)
    MethodSpec("ipndm-lof1", _pseudo("ipndm-lof1", Final(LinearMultistep(4, ramp=True), (Single(),))), 2,
               "iPNDM (AB1 .. AB4, fixed weights), its last step first order (DDIM)", "phi (DDIM)",
               "Zhang & Chen 2023 (DEIS), iPNDM; last step lowered as DPM-Solver's lower_order_final "
               "(Lu et al. 2022, arXiv 2211.01095)"),
    MethodSpec("ipndm-lof2", _pseudo("ipndm-lof2", Final(LinearMultistep(4, ramp=True), (LinearMultistep(2),))), 2,
               "iPNDM (AB1 .. AB4, fixed weights), its last step AB2 (3 e_0 - e_1)/2", "phi (DDIM)",
               "Zhang & Chen 2023 (DEIS), iPNDM; last step lowered as DPM-Solver's lower_order_final "
               "(Lu et al. 2022, arXiv 2211.01095)"),
    MethodSpec("pec-s-ramp", _pseudo("pec-s-ramp", AdamsPC(4, "PEC", ramp=True)), 3,
               "AB1 + AM2, AB2 + AM3, then AB3 + AM4 exact on the s nodes, PEC (no RK warm-up)", "phi (DDIM)",
               "pndmkit: s-exact Adams-Bashforth-Moulton, PEC mode, ramped (Hairer, Norsett, Wanner I, "
               "sec. III.1)"),
    # The exponential-integrator family and the data-prediction forms (pndmkit/exponential.py). Ramped
    # multistep methods start with one first-order step, whose O(h^2) local error caps the global order at 2
    # whatever the formula's order; UniPC's uncorrected last step does the same.
    MethodSpec("dpm-solver++-2m", _data("dpm-solver++-2m", dpm_solver_multistep(2)), 2,
               "x0 multistep in lambda: DPM-Solver++(2M) (midpoint), first-order start and final steps", DATA,
               "Lu et al. 2022 (DPM-Solver++), arXiv 2211.01095, Alg. 2"),
    MethodSpec("dpm-solver++-3m", _data("dpm-solver++-3m", dpm_solver_multistep(3)), 2,
               "x0 multistep in lambda: DPM-Solver++(3M) as diffusers computes it, ramp 1, 2, 3", DATA,
               "Lu et al. 2022 (DPM-Solver++), arXiv 2211.01095"),
    MethodSpec("dpm-solver-2m", _pseudo("dpm-solver-2m", dpm_solver_multistep(2)), 2,
               "eps multistep in lambda: DPM-Solver-2M (midpoint)", "phi (DDIM)",
               "Lu et al. 2022 (DPM-Solver), arXiv 2206.00927; diffusers DPMSolverMultistepScheduler"),
    MethodSpec("unipc-2", _data("unipc-2", UniPC(2, "bh2")), 2,
               "UniP-2 predictor + UniC-2 corrector on x0 (B(h) = bh2), the corrector reusing the next evaluation",
               DATA, "Zhao et al. 2023 (UniPC), arXiv 2302.04867"),
    MethodSpec("unipc-3", _data("unipc-3", UniPC(3, "bh2")), 2,
               "UniP-3 predictor + UniC-3 corrector on x0 (B(h) = bh2), the corrector reusing the next evaluation",
               DATA, "Zhao et al. 2023 (UniPC), arXiv 2302.04867"),
    MethodSpec("deis-3", _pseudo("deis-3", deis_multistep(3)), 2,
               "eps multistep, Lagrange in log s integrated exactly in s (DEIS logrho), ramp 1, 2, 3",
               "phi (DDIM)", "Zhang & Chen 2023 (DEIS), arXiv 2204.13902; diffusers DEISMultistepScheduler"),
    MethodSpec("ipndm-x0", _data("ipndm-x0", LinearMultistep(4, ramp=True)), 2,
               "AB1, AB2, AB3, then AB4 on x0, fixed weights", DATA,
               "iPNDM (Zhang & Chen 2023) with the data-prediction transfer"),
    MethodSpec("f-pndm-x0", _data("f-pndm-x0", Warmup(PRK, 3, LinearMultistep(4, ramp=False))), 2,
               "PRK for 3 steps, then AB4 (55, -59, 37, -9)/24 on x0", DATA,
               PAPER + ", Algorithm 2 with the data-prediction transfer"),
    MethodSpec("pece-x0", _data("pece-x0", Warmup(PRK_S, 2, AdamsPC(4, "PECE", variable="t", ramp=False))), 4,
               "PRK with stages at the e^lambda midpoint for 2 steps, then AB3 + AM4 on x0 with weights exact for "
               "polynomials in t (integrated against e^lambda), PECE", DATA,
               "pndmkit: Adams-Bashforth-Moulton with the data-prediction transfer"),
]

class MethodRegistry(Mapping):
    """The registered methods by name, read-only: :func:`register_method` adds one (after checking it) and
    :func:`unregister_method` removes one; ``METHODS[name] = ...`` and ``del METHODS[name]`` raise ``TypeError``.

    A read-only mapping (``[]``, ``get``, ``in``, ``items``, iteration in registration order), so that every
    entry is a :class:`MethodSpec` that :func:`register_method` has checked.
    """

    def __init__(self, specs: Any) -> None:
        """Hold ``specs`` by name.

        Parameters
        ----------
        specs : iterable of MethodSpec
            The methods, in registration order (a later spec of the same name replaces an earlier one; nothing
            is checked here: :func:`register_method` checks what it adds).
        """
        self._specs: dict[str, MethodSpec] = {spec.name: spec for spec in specs}

    def __getitem__(self, name: str) -> MethodSpec:
        """The spec registered as ``name``.

        Parameters
        ----------
        name : str
            A method name (``"ipndm"``, ...).

        Returns
        -------
        MethodSpec

        Raises
        ------
        KeyError
            ``name`` is not registered (as in any mapping; :func:`get_method` raises ``ValueError`` listing the
            known names instead).
        """
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        """The registered names, in registration order (built-in methods first).

        Returns
        -------
        iterator of str
        """
        return iter(self._specs)

    def __len__(self) -> int:
        """The number of registered methods.

        Returns
        -------
        int
        """
        return len(self._specs)

    def __repr__(self) -> str:
        return f"MethodRegistry({', '.join(self._specs)})"

    def __setitem__(self, name: Any, value: Any) -> None:
        """Refused: the registry is changed only through :func:`register_method`, which checks the method.

        Parameters
        ----------
        name, value : Any
            The key and value of ``METHODS[name] = value``.

        Raises
        ------
        TypeError
            Always, naming ``name`` and the function to call instead.
        """
        raise TypeError(f"METHODS is read-only: METHODS[{name!r}] = ({with_article(type(value).__name__)}) is refused; "
                        f"register a method with pndmkit.register_method(MethodSpec(name, build, order)), which "
                        f"checks it first")

    def __delitem__(self, name: Any) -> None:
        """Refused: a method is removed only through :func:`unregister_method`.

        Parameters
        ----------
        name : Any
            The key of ``del METHODS[name]``.

        Raises
        ------
        TypeError
            Always, naming ``name`` and the function to call instead.
        """
        raise TypeError(f"METHODS is read-only: del METHODS[{name!r}] is refused; remove a registered method with "
                        f"pndmkit.unregister_method({name!r})")


#: every registered method by name (built-in ones first; :func:`register_method` adds more), read-only
METHODS: MethodRegistry = MethodRegistry(_SPECS)
#: names of the methods pndmkit ships (the README's methods table lists exactly these)
BUILTIN: tuple[str, ...] = tuple(METHODS)
#: the method used when none is named (``pndmkit.sample``, ``pndmkit sample``, the integrations): iPNDM, N
#: evaluations for N steps, evaluations only on the trajectory, so no stage error is amplified by the eps-form
#: transfer; the stability sweep (``tests/test_stability.py``) and ``pndmkit compare`` chose it (README)
DEFAULT_METHOD = "ipndm"


def get_method(name: str) -> MethodSpec:
    """Look up a method; unknown names raise ``ValueError`` listing the known ones.

    A name of :data:`RESERVED_NAMES` (in any spelling with its :func:`identifier`, ``"res-multistep"`` included) that
    no method is registered under raises ``ValueError`` saying that pndmkit does not implement that algorithm, whose
    name it is, and the nearest sampler here.
    """
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}{unknown_method_reason(name)}; known methods: "
                         f"{', '.join(METHODS)}") from None


def check_method_type(method: Any, built: tuple[type, ...] = (Integrator, AdaptiveIntegrator)) -> None:
    """Refuse a ``method=`` argument of the wrong type (``None``, an estimator, a number) with the one
    ``TypeError`` every entry point gives, before anything reads it.

    Parameters
    ----------
    method : object
        The argument: a name in :data:`METHODS` or a :class:`MethodSpec` pass, and an instance of ``built``.
    built : tuple of type
        The built methods the entry point takes (``Integrator`` and ``AdaptiveIntegrator`` for
        :func:`pndmkit.sample`, ``Integrator`` for the diffusers scheduler, none for a sampler factory).

    Raises
    ------
    TypeError
        ``method`` is none of those; the message names ``method``, its type and value, and what is allowed (for a
        gradient estimator, how to make it a method).
    """
    if isinstance(method, (str, MethodSpec)) or (built and isinstance(method, built)):
        return
    allowed = "a method name (pndmkit.METHODS), a MethodSpec or an Integrator" if built else \
        "a method name (pndmkit.METHODS) or a MethodSpec"
    hint = (f"; an estimator needs a transfer map: method=Integrator({method!r}, DDIMTransfer(schedule))"
            if built and isinstance(method, GradientEstimator) else
            "; an adaptive method chooses its own steps, which this entry point lays out itself: give a fixed-step "
            "method (pndmkit.sample runs adaptive ones)" if isinstance(method, AdaptiveIntegrator) else "")
    raise TypeError(f"method must be {allowed}, got {type(method).__name__} {method!r}{hint}")


def register_method(spec: MethodSpec, *, replace: bool = False) -> MethodSpec:
    """Add a method to :data:`METHODS`, so that it appears everywhere the registry is read.

    ``pndmkit methods``, ``pndmkit order``, ``pndmkit compare``, the registry-driven checks of
    :mod:`pndmkit.testing` and the convergence figure read :data:`METHODS`; nothing else needs editing.
    The spec is checked first: it builds on a continuous and a discrete schedule, its kind is one of
    :data:`KINDS`, and its declared order equals the order its objects report.

    Parameters
    ----------
    spec : MethodSpec
        The method.
    replace : bool
        Allow replacing a registered method of the same name (built-in methods cannot be replaced).

    Returns
    -------
    MethodSpec
        ``spec``.

    Raises
    ------
    TypeError
        ``spec`` is not a MethodSpec, its build does not return an integrator, or ``replace`` is not a bool.
    ValueError
        A bad or taken name (a built-in one, one whose Python identifier another method has, or one reserved for
        an algorithm of k-diffusion or ComfyUI that pndmkit does not implement, :data:`RESERVED_NAMES`), a build that
        fails or ignores the schedule it is given, an unknown kind, or a declared order that differs from the
        reported one.
    """
    if not isinstance(spec, MethodSpec):
        raise TypeError(f"spec must be a MethodSpec, got {type(spec).__name__}")
    replace = check_bool(replace, "replace")
    if spec.name in BUILTIN:
        raise ValueError(f"method {spec.name!r} is already registered and built in: built-in methods cannot be "
                         f"replaced; register yours under another name")
    if spec.name in METHODS and not replace:
        raise ValueError(f"method {spec.name!r} is already registered; pass replace=True to replace it")
    reserved = reserved_name(spec.name)
    if reserved is not None:
        raise ValueError(f"method name {spec.name!r} is reserved: {_not_implemented(spec.name, reserved)}. "
                         f"Registered, another algorithm would run under the name that code written for "
                         f"{RESERVED_NAMES[reserved][0]} uses for this one; choose another name")
    twin = next((n for n in METHODS if n != spec.name and identifier(n) == identifier(spec.name)), None)
    if twin is not None:
        raise ValueError(f"method name {spec.name!r} is taken: {twin!r} is registered and both become the Python "
                         f"name {identifier(spec.name)!r} (k-diffusion-style samplers); choose another name")
    for schedule in (LinearVP(), DiscreteVP.linear()):
        built = spec.build(schedule)  # raises ValueError naming the method and the schedule if the build fails
        if not isinstance(built, (Integrator, AdaptiveIntegrator)):
            raise TypeError(f"spec.build must return an Integrator or AdaptiveIntegrator, got {type(built).__name__}")
    if spec.kind not in KINDS:
        raise ValueError(f"the kind of {spec.name!r} must be one of {KINDS}, got {spec.kind!r}")
    reported = spec.reported_order()
    if spec.order != reported:
        raise ValueError(f"spec.order={spec.order!r} for {spec.name!r}, but its integrator reports order {reported!r}")
    METHODS._specs[spec.name] = spec
    return spec


def unregister_method(name: str) -> MethodSpec:
    """Remove a method added by :func:`register_method`; return its spec.

    Raises
    ------
    ValueError
        An unknown or built-in name.
    """
    if name in BUILTIN:
        raise ValueError(f"built-in method {name!r} cannot be unregistered")
    spec = get_method(name)
    del METHODS._specs[name]
    return spec


def steps_for_nfe(method: Any, nfe: int) -> Optional[int]:
    """The largest step count ``N >= 1`` whose run costs at most ``nfe`` model evaluations, or ``None``.

    Parameters
    ----------
    method : str, MethodSpec, Integrator or callable
        A registry name, a spec, a built integrator, or any increasing function ``nfe_of(N) -> int``
        (a peer's cost). Functions that raise ``ValueError`` for some ``N`` (a peer that refuses small step
        counts) treat those ``N`` as not fitting.
    nfe : int
        The budget, >= 1.

    Raises
    ------
    ValueError
        ``nfe`` is not a positive integer, or the method is adaptive (its NFE is not set by a step count).

    Examples
    --------
    >>> steps_for_nfe("ddim", 10), steps_for_nfe("prk", 10), steps_for_nfe("f-pndm", 20), steps_for_nfe("f-pndm", 3)
    (10, 2, 11, None)
    """
    nfe = check_int(nfe, "nfe", 1)
    if isinstance(method, str):
        method = get_method(method)
    if isinstance(method, MethodSpec):
        if method.adaptive:
            raise ValueError(f"method {method.name!r} is adaptive: its NFE is not chosen by a step count")
        nfe_of: Callable[[int], Optional[int]] = method.nfe
    elif isinstance(method, AdaptiveIntegrator):
        raise ValueError("an adaptive integrator's NFE is not chosen by a step count")
    elif isinstance(method, Integrator):
        nfe_of = method.nfe
    elif callable(method):
        nfe_of = method
    else:
        raise TypeError(f"method must be a method name, MethodSpec, Integrator or nfe_of(N) function, got "
                        f"{type(method).__name__}")

    def fits(n: int) -> bool:
        try:
            return nfe_of(n) <= nfe  # type: ignore[operator]
        except ValueError:
            return False

    # NFE increases with N, but small N may be refused: scan up to the first fit, then bisect for the last
    first = next((n for n in range(1, nfe + 1) if fits(n)), None)
    if first is None:
        return None
    lo, hi = first, nfe  # invariant: fits(lo); N > nfe never fits (every step costs at least one evaluation)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
