r"""The method registry: every sampler of the paper and its peers as a short composition.

``METHODS[name]`` is a :class:`MethodSpec`: how to build the integrator for a schedule, the declared
global order of convergence (on a ``t``-uniform grid, float64, against the exact probability-flow
trajectory) and the number of model evaluations for ``N`` steps. One registry-driven test measures both
for every entry.

Why the paper's pseudo methods are second order: ``phi`` integrates exactly in ``s`` (noise-to-signal
ratio), while PRK places its stages at the ``t``-midpoint and PLMS uses weights uniform in ``t``; the
mismatch leaves a local error ``~ s'' eps' h^3``. The ``-s`` variants place stages at the ``s``-midpoint
and use Adams-Bashforth weights exact on the actual ``s`` nodes, and recover fourth order.

Examples
--------
>>> METHODS["f-pndm"].nfe(50), METHODS["plms"].nfe(50), METHODS["s-pndm"].nfe(50)
(59, 51, 51)
>>> METHODS["f-pndm"].nfe(2)   # fewer steps than the warm-up: PRK throughout
8
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from pndmkit.adaptive import AdaptiveIntegrator
from pndmkit.estimators import GradientEstimator, LinearMultistep, RungeKutta, Single
from pndmkit.integrator import Integrator
from pndmkit.schedules import NoiseSchedule
from pndmkit.tableaus import HEUN, RK4
from pndmkit.transfers import DDIMTransfer, LinearTransfer

__all__ = ["MethodSpec", "METHODS", "get_method"]

Built = Union[Integrator, AdaptiveIntegrator]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Attributes
    ----------
    name : str
        Registry key.
    build : callable
        ``build(schedule)`` returns the integrator.
    order : int or None
        Declared global order (``None`` for adaptive methods).
    gradient, transfer : str
        One-line descriptions of the gradient and transfer parts.
    reference : str
        Where the method comes from.
    adaptive : bool
        Whether the step sequence is chosen by the method (NFE not known in advance).
    """

    name: str
    build: Callable[[NoiseSchedule], Built]
    order: int | None
    gradient: str
    transfer: str
    reference: str
    adaptive: bool = False

    def nfe(self, steps: int) -> int | None:
        """Model evaluations of a run of ``steps`` steps (``None`` for adaptive methods)."""
        if self.adaptive:
            return None
        from pndmkit.schedules import LinearVP

        return self.build(LinearVP()).nfe(steps)  # type: ignore[union-attr]

    def nfe_formula(self) -> str:
        """The NFE as a formula in ``N`` for ``N`` at least the warm-up length."""
        if self.adaptive:
            return "adaptive"
        n1, n2 = self.nfe(10), self.nfe(11)
        per, const = n2 - n1, n1 - 10 * (n2 - n1)  # type: ignore[operator]
        head = "N" if per == 1 else f"{per}N"
        return head if const == 0 else f"{head} + {const}" if const > 0 else f"{head} - {-const}"


def _pseudo(estimator: Callable[[], GradientEstimator], name: str) -> Callable[[NoiseSchedule], Integrator]:
    return lambda schedule: Integrator(estimator(), DDIMTransfer(schedule), name)


def _classical(estimator: Callable[[], GradientEstimator], name: str) -> Callable[[NoiseSchedule], Integrator]:
    return lambda schedule: Integrator(estimator(), LinearTransfer(schedule), name)


PIE = lambda: RungeKutta(HEUN)  # noqa: E731  (pseudo improved Euler = pseudo Heun)
PRK = lambda: RungeKutta(RK4)  # noqa: E731
PRK_S = lambda: RungeKutta(RK4, stage_variable="native")  # noqa: E731
PAPER = "Liu et al. 2022 (PNDM), arXiv 2202.09778"

_SPECS = [
    MethodSpec("ddim", _pseudo(Single, "ddim"), 1, "e' = eps(x, t)", "phi (DDIM)",
               "Song et al. 2021 (DDIM); PNDM eq. 9"),
    MethodSpec("pie", _pseudo(PIE, "pie"), 2, "pseudo improved Euler: (e1 + e2)/2, e2 at phi(x, e1, t, t')",
               "phi (DDIM)", PAPER + ", eq. 11"),
    MethodSpec("prk", _pseudo(PRK, "prk"), 2, "pseudo RK4, stages at the t-midpoint", "phi (DDIM)",
               PAPER + ", eq. 12"),
    MethodSpec("plms", _pseudo(lambda: LinearMultistep(4, warmup=PIE(), warmup_steps=1, ramp=True), "plms"), 2,
               "PIE, then AB2, AB3, AB4 (t-uniform weights)", "phi (DDIM)",
               "CompVis latent diffusion PLMS; diffusers PNDMScheduler(skip_prk_steps=True)"),
    MethodSpec("s-pndm", _pseudo(lambda: LinearMultistep(2, warmup=PIE(), warmup_steps=1, ramp=False), "s-pndm"),
               2, "PIE, then AB2 (3 e_0 - e_1)/2", "phi (DDIM)", PAPER + ", S-PNDM"),
    MethodSpec("f-pndm", _pseudo(lambda: LinearMultistep(4, warmup=PRK(), warmup_steps=3, ramp=False), "f-pndm"),
               2, "PRK for 3 steps, then AB4 (55, -59, 37, -9)/24", "phi (DDIM)", PAPER + ", eq. 13 (PNDM)"),
    MethodSpec("fon", _classical(lambda: LinearMultistep(4, warmup=RungeKutta(RK4), warmup_steps=3, ramp=False),
                                 "fon"), 4,
               "RK4 for 3 steps, then AB4, on f(x, t)", "linear x + h f", PAPER + ", FON baseline"),
    MethodSpec("pf", lambda schedule: AdaptiveIntegrator(schedule), None, "adaptive RK45 (rtol = atol = 1e-5)",
               "probability-flow ODE", "Song et al. 2021 (score SDE)", adaptive=True),
    MethodSpec("ipndm", _pseudo(lambda: LinearMultistep(4, ramp=True), "ipndm"), 2,
               "AB1, AB2, AB3, then AB4, fixed weights, no extra evaluations", "phi (DDIM)",
               "Zhang & Chen 2023 (DEIS), iPNDM"),
    MethodSpec("ipndm-v", _pseudo(lambda: LinearMultistep(4, weights="variable", ramp=True), "ipndm-v"), 2,
               "AB1 .. AB4 with weights exact on the s nodes", "phi (DDIM)", "Zhang & Chen 2023 (DEIS), iPNDM_v"),
    MethodSpec("euler", _classical(Single, "euler"), 1, "f(x, t)", "linear x + h f", "classical Euler"),
    MethodSpec("rk4", _classical(lambda: RungeKutta(RK4), "rk4"), 4, "classical RK4 on f(x, t)", "linear x + h f", "classical RK4"),
    MethodSpec("prk-s", _pseudo(PRK_S, "prk-s"), 4, "pseudo RK4, stages at the s-midpoint", "phi (DDIM)",
               "pndmkit: s-consistent PRK (the paper's future work)"),
    MethodSpec("f-pndm-s", _pseudo(lambda: LinearMultistep(4, weights="variable", warmup=PRK_S(), warmup_steps=3,
                                                           ramp=False), "f-pndm-s"), 4,
               "PRK-s for 3 steps, then AB4 exact on the s nodes", "phi (DDIM)",
               "pndmkit: s-consistent F-PNDM (the paper's future work)"),
]

#: every registered method by name
METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in _SPECS}


def get_method(name: str) -> MethodSpec:
    """Look up a method; unknown names raise ``ValueError`` listing the known ones."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}") from None
