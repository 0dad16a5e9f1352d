r"""Head-to-head: pndmkit's methods against diffusers' schedulers at equal NFE, on exact ground truth.

For each *case* (a built-in Gaussian-mixture problem and a schedule) every solver -- each pndmkit method
and each peer of :data:`pndmkit.studies.peers.PEERS` -- runs at every target NFE with the largest step count whose
model calls do not exceed it, once per grid option; the best option per (solver, NFE) is kept and
reported. Comparison is always at equal NFE, never at equal steps.

Fair ground rules (every solver gets the same treatment):

* **Same ODE, one reference.** All solvers integrate ``dy/ds = eps`` with ``y = x / sqrt(abar)``,
  ``s = sqrt((1 - abar) / abar)``. One DOP853 reference trajectory per case starts from exact samples
  ``x_T`` of ``p`` at the top level (the schedule's own start, its last training step, or a peer's
  first level where float32 rounding puts that higher) and is read (dense output) at every level a run
  starts or ends at. The top level is the schedule's, whichever solvers run: it never sinks to the start
  of a grid that starts low. A run whose grid starts at the top (up to the float32 rounding of a peer's
  table, :data:`TOP_TOLERANCE`) starts *on* the trajectory at its own first level; a grid that starts
  lower (``leading`` spacing: 800 of 1000 for 5 steps, 0 for one step) is given ``x_T`` itself at its
  first timestep, as in practice, so starting late costs what it costs in use; its rows say so
  (``starts_at_top`` false). Every end point is compared with the trajectory at the run's own last level.
* **The scheduler's own levels.** A peer's model call returns the exact eps at the noise level the
  scheduler itself assumes for that call (its float32 ``alphas_cumprod`` / ``sigmas`` entry), never at a
  level interpolated from the timestep: peers are not penalised for interpolating timesteps.
* **Error.** ``error`` is the RMS over samples and dimensions of ``y_end - y_ref(s_end)``; ``sw`` is the
  sliced Wasserstein-2 distance of ``y_end`` to ``p_0`` (with its finite-sample floor, the distance of
  the exact reference end points, reported as ``sw_floor``); ``nll`` the average ``-log p_0(y_end)``.
* **Grids.** pndmkit methods try every kind of :data:`pndmkit.grids.GRID_KINDS` the schedule has (the
  integer spacings ``leading / trailing / leading-multistep`` on discrete schedules, the last the ``leading``
  timesteps of the peers' multistep schedulers; ``uniform / quadratic / logsnr / karras /
  s-uniform``; ``linspace`` only as ``uniform``), made by :func:`pndmkit.grids.make_grid` itself, so a
  Karras or log-SNR grid ending at ``abar = 1`` stops at the same lowest positive level as everywhere
  else (the first table index, ``s = S_FLOOR`` on continuous schedules); peers try their
  ``timestep_spacing`` and ``use_karras_sigmas`` / ``use_lu_lambdas`` options. Pseudo methods end where
  ``abar = 1`` (``s = 0``), as the peers do; classical methods on the continuous linear VP stop at
  ``t = 1e-3`` (their right-hand side in ``t`` is singular at ``abar = 1``); DEIS stops at ``abar_0``.

The summary :func:`by_nfe` takes, for every NFE, the best pndmkit method and the best peer; with several
cases a solver's error is the geometric mean over cases of its per-case (best-option) errors. Three
summaries: ``by_nfe`` (peers with their own options), ``by_nfe_shared_grids`` (pndmkit restricted to the
grids diffusers offers: its spacings, uniform in ``t``, Karras and log-SNR) and
``by_nfe_peers_on_pndmkit_grids`` (adds peers run on pndmkit's grids: ``ipndm-pndmkit-grid``, IPNDMScheduler
given the quadratic or s-uniform grid through ``trained_betas``, which is pndmkit's ``ipndm`` on that grid,
and ``dpm-2m/3m-pndmkit-grid``, DPM-Solver++ given the quadratic grid's rounded timesteps).
Each ratio of a summary comes with a 95% paired bootstrap interval over samples
(:func:`pndmkit.studies.statistics.ratio_interval`): the best solver of each side (and its grid option) is the one
chosen on all the samples and stays fixed; the samples of each case are resampled, for both sides jointly, and
the ratio recomputed (with several cases, each case's samples on their own). It says how far the ratio may move
on other samples of the same law, not how likely another choice of the best solver would be.

**Optimised grids** (``optimized_grids``, opt-in): for each case and NFE, :func:`pndmkit.studies.grid_opt.optimize` fits
the grid of each chosen method (default :data:`OPTIMIZED_DEFAULT`) on its own calibration noises (N(0, I),
per-sample seeds, disjoint from the case's samples), with the end points of the method's built-in grids and
at most ``optimize_maxfev`` runs; the grid then runs through this harness on the case's samples, which serve
as held-out noises, against the same reference. Its rows (option ``"optimized"``) are kept in the case's
``optimized`` list, never in ``best`` / ``runs``, so they enter none of the three summaries above;
:func:`by_nfe_optimized` sets them against the best built-in pndmkit grid and the best peer.

**Fitted solvers** (``optimized_solvers``, opt-in): for each case, NFE and base method (``ipndm`` by default, or
``ipndm-x0``: :data:`pndmkit.studies.solver_opt.BASE_METHODS`), :func:`pndmkit.studies.solver_opt.optimize_solver`
fits the base's grid *and* a weight per step and past gradient (:class:`pndmkit.adams.TabulatedMultistep`) on the
same calibration noises as the optimised grids, by least squares. The result is a sampler for one step count and
its grid, not a method with an order: its row (method :data:`FITTED_METHOD`, ``ipndm-fitted``, or
``ipndm-x0-fitted``: :data:`FITTED_METHODS`; option ``"optimized"``) runs through this harness on the case's
samples, is kept in the case's ``optimized`` list with the optimised grids, enters :func:`by_nfe_optimized`
(against its base method's own built-in grids in its per-method entry) and nothing else: no built-in summary, no
automatic choice, no entry of :func:`optimized_grids` (its times and weights are in :func:`fitted_solvers`).

**Automatic choice** (``auto``, opt-in): for each case and NFE one pndmkit (method, grid) is chosen among every
pndmkit run of the case at that NFE -- each method on each built-in grid, and the optimised grids when they run;
never a fitted solver -- from calibration noises alone: ``auto_calibration`` start samples of the same law as the
case's, from a random stream of their own (:func:`auto_calibration_samples`), each candidate run on them against a
reference trajectory of their own. The case's samples are drawn after the choice is made and never reach it. Each
rule of :data:`AUTO_RULES` makes its own choice (:func:`auto_choice`); the chosen run's error on the case's samples
is its row in the case's ``auto`` list, and :func:`by_nfe_auto` scores each rule as :func:`by_nfe` scores (geometric
mean over the cases) against the best peer. The option adds rows and summaries of its own and changes no other.

**On a network** (:func:`compare_model`, ``pndmkit compare --model``): the same solvers, grids and summaries on
one case, a network from noises whose converged reference is cached (:mod:`pndmkit.studies.real`), every
solver driving the network itself; the reference is carried to a peer's own start and end levels by short
converged solves, and a peer's call tells the network the time of the level its scheduler assumes.

Examples
--------
>>> cfg = CompareConfig.quick()
>>> cfg.nfes, cfg.problems
((5, 10), ('gmm2d',))
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from pndmkit.errors import UsageError
from pndmkit.grids import DISCRETE_SPACINGS, GRID_KINDS, make_grid
from pndmkit.exponential import dpm_solver_multistep
from pndmkit.integrator import Integrator
from pndmkit.methods import METHODS, MethodSpec, steps_for_nfe
from pndmkit.schedules import SCHEDULE_ALIASES, DiscreteVP, NoiseSchedule, get_schedule
from pndmkit.schedules import SCHEDULES as CATALOGUE
from pndmkit.stability import StabilityWarning
from pndmkit.studies.solver_file import BASE_METHOD, BASE_METHODS, FITTED_NAME, fitted_name
from pndmkit.transfers import DataTransfer

__all__ = ["CompareConfig", "compare_spec", "SCHEDULES", "SAMPLE_ERRORS", "GRID_LEVELS", "GRID_RTOL",
           "OPTIMIZED_DEFAULT", "AUTO_RULES", "AUTO_TAIL", "AUTO_STREAM", "MODEL_NOISES",
           "compare", "compare_model", "by_nfe", "by_nfe_optimized", "by_nfe_auto", "case_best_peer", "is_parity", "auto_choice",
           "auto_calibration_samples", "optimized_methods", "pndmkit_methods", "VARIANTS", "compare_methods",
           "why_no_run", "left_out", "skipped_summary", "optimized_left_out", "optimized_grids",
           "OPTIMIZED_GRID_FIELDS", "ONE_STEP_REASON", "DEFAULT_LEFT_OUT_REASON", "FITTED_METHOD", "FITTED_BASE",
           "FITTED_METHODS", "FITTED_SOLVER_FIELDS", "fitted_solvers", "optimized_solver_bases"]

#: schedules of the head-to-head by name: two entries of the catalogue (pndmkit.schedules.SCHEDULES); the DDPM
#: table keeps the name its saved results use, discrete-linear (an alias of ddpm-linear)
SCHEDULES: dict[str, Callable[[], NoiseSchedule]] = {
    name: CATALOGUE[SCHEDULE_ALIASES.get(name, name)] for name in ("discrete-linear", "linear-vp")}

NFES = (5, 6, 8, 10, 15, 20, 50)

#: a run whose first level is within this relative distance of the top level starts on the reference
#: trajectory at its own level (float32 tables move the top level by up to 7e-4 relative)
TOP_TOLERANCE = 1e-3

#: key under which a row carries the per-sample mean squared errors of its end points (over the sample's
#: dimensions, in ``y``) while the summaries' intervals are computed; the result returned holds none of them
SAMPLE_ERRORS = "sample_errors"

#: key under which a row carries its run's grid as noise levels ``s = sigma / alpha``, first to last (a pndmkit
#: run's grid times, a peer's levels at its model calls and its end level) while the summaries mark their parity
#: checks (:func:`is_parity`); the result returned holds none of them, only each summary's ``parity`` flag.
#: Levels, not option names: pndmkit names its grid ``"quadratic to t=0"`` where the peer handed it names it
#: ``"grid=quadratic"``
GRID_LEVELS = "grid_levels"

#: relative tolerance of :func:`is_parity` on grid levels: one grid on pndmkit's float64 schedule and on a
#: peer's float32 table differs by up to 4e-4 at the top level (152.17 against 152.22 on ``linear-vp``); two
#: different grid kinds differ by far more
GRID_RTOL = 1e-3

#: DOP853 tolerance of the reference trajectory (errors reported are above 1e-7)
REFERENCE_TOL = 1e-10

#: pndmkit grid options diffusers also offers (its spacings are uniform in t; Karras sigmas; log-SNR uniform
#: ``use_lu_lambdas`` of DPM-Solver)
SHARED_GRIDS = tuple(name for name, kind in GRID_KINDS.items() if kind.in_diffusers)

#: methods whose grids ``optimized_grids=True`` optimises: the pndmkit methods that are best on built-in
#: grids at NFE 5-10 (ipndm by the geometric mean over the cases; unipc-3 and dpm-solver++-3m in single
#: cases, and on diffusers' grid families above). A fixed set, not each case's winner, so that every
#: method has a row in every case and its geometric mean over the cases is defined.
OPTIMIZED_DEFAULT = ("ipndm", "unipc-3", "dpm-solver++-3m")

#: the method name of the rows of a fitted solver on the default base (``optimized_solvers=True``): not a registered
#: method, and never looked up as one; :func:`pndmkit.studies.solver_opt.fitted_integrator` names its runs so
FITTED_METHOD = FITTED_NAME

#: the registered method whose grid and weights a fitted solver starts from by default
#: (:data:`pndmkit.studies.solver_opt.BASE_METHOD`), and whose built-in grids its per-method ratio in
#: :func:`by_nfe_optimized` is against
FITTED_BASE = BASE_METHOD

#: the method name of each fitted solver's rows, with the base it is built on (whose built-in grids its
#: per-method ratio in :func:`by_nfe_optimized` is against): ``{"ipndm-fitted": "ipndm", "ipndm-x0-fitted":
#: "ipndm-x0"}``
FITTED_METHODS = {fitted_name(base): base for base in BASE_METHODS}

#: rules of the automatic choice (:func:`auto_choice`), each reported: ``rms``, the smallest RMS error on the
#: calibration noises; ``interval``, the best built-in grid by that RMS unless an optimised grid's 95% paired
#: bootstrap interval of the cut against it lies above 0 (the fallback rule of
#: :func:`pndmkit.studies.grid_opt.optimize`, on noises the grid was not fitted on); ``tail``, the smallest RMS
#: over the worst :data:`AUTO_TAIL` of the calibration noises (a guard against a grid that is better on typical
#: noises but sends more of the rare ones near a mode boundary to the other mode)
AUTO_RULES = ("rms", "interval", "tail")

#: fraction of the calibration noises, the worst ones, whose RMS error the ``tail`` rule minimises
AUTO_TAIL = 0.01

#: second entry of the seed sequence ``[seed, AUTO_STREAM]`` of the automatic choice's calibration noises: a
#: stream independent of the case's own samples (``numpy.random.default_rng(seed)``) and of the grid
#: optimiser's per-sample noises
AUTO_STREAM = 0x6175746F  # "auto"


def pndmkit_methods() -> list[str]:
    """Every registered method with a fixed NFE (the adaptive ``pf`` is left out)."""
    return [name for name, spec in METHODS.items() if not spec.adaptive]


def _dpm_3m_nolof(schedule: NoiseSchedule) -> Integrator:
    return Integrator(dpm_solver_multistep(3, lower_order_final=False), DataTransfer(schedule),
                      "dpm-solver++-3m-nolof")


#: method variants the head-to-head runs when ``methods`` names them, besides the registry's fixed-step methods
#: (not registered, so not in :data:`pndmkit.methods.METHODS` nor run by default): a peer's configuration that a
#: registered method does not cover. ``dpm-solver++-3m-nolof`` is ``DPMSolverMultistepScheduler(solver_order=3,
#: lower_order_final=False)``, the best peer on the digits UNet at NFE 5-6 (its ``leading`` timesteps: pndmkit's
#: grid ``leading-multistep``), where the registered
#: ``dpm-solver++-3m`` lowers its last two steps (as diffusers' default ``lower_order_final=True`` does below 15
#: steps); ``tests/test_exponential.py`` checks it against the scheduler step for step.
VARIANTS: dict[str, MethodSpec] = {spec.name: spec for spec in (
    MethodSpec("dpm-solver++-3m-nolof", _dpm_3m_nolof, 2,
               "x0 multistep in lambda: DPM-Solver++(3M) as diffusers computes it, ramp 1, 2, 3, no lower-order "
               "final steps", "phi (data, exact Euler in e^lambda)",
               "Lu et al. 2022 (DPM-Solver++), arXiv 2211.01095; diffusers DPMSolverMultistepScheduler("
               "solver_order=3, lower_order_final=False)"),
)}


def _once(name: str, values: Any) -> None:
    """Refuse a list option of :class:`CompareConfig` that names a value more than once (it would run, and report,
    that value twice), naming the option and the values."""
    values = list(values)
    twice = [v for i, v in enumerate(values) if values.count(v) > 1 and values.index(v) == i]
    if twice:
        raise UsageError(name, f"{name} names {', '.join(map(repr, twice))} more than once; name each once")


def compare_methods() -> list[str]:
    """Every method the ``methods`` field of :class:`CompareConfig` (``pndmkit compare --methods``) may name.

    Returns
    -------
    list of str
        :func:`pndmkit_methods` (the registered fixed-step methods, in registration order), then the
        :data:`VARIANTS` that are not registered under the same name. Only the first part may be named by
        ``optimized_grids``.
    """
    return pndmkit_methods() + [name for name in VARIANTS if name not in METHODS]


def compare_spec(name: str) -> MethodSpec:
    """The registered method ``name``, else the compare variant of that name (:data:`VARIANTS`); ``KeyError`` for
    neither."""
    return METHODS[name] if name in METHODS else VARIANTS[name]


@dataclass(frozen=True)
class CompareConfig:
    """What :func:`compare` runs.

    Attributes
    ----------
    problems : tuple of str
        Built-in problems (:data:`pndmkit.problems.PROBLEMS`).
    schedules : tuple of str
        Keys of :data:`SCHEDULES`.
    nfes : tuple of int
        Target model-call budgets.
    n : int, optional
        Samples per case (default: 1000 in low dimension, 256 from 8 dimensions up, where one exact eps
        evaluation of the batch costs a few milliseconds).
    seed : int
        Seed of the start samples.
    methods, peers : tuple of str, optional
        pndmkit methods and peers (default: all; ``methods`` may also name a :data:`VARIANTS` entry, which runs
        only when named).
    grids : bool
        Try every grid option (``False``: pndmkit's default grid and each peer's first option only).
    optimized_grids : bool or tuple of str
        Also run grids optimised by :func:`pndmkit.studies.grid_opt.optimize` for each case and NFE, reported apart
        (:func:`by_nfe_optimized`): ``True`` for :data:`OPTIMIZED_DEFAULT` (those of ``methods`` that run,
        else every one of ``methods``), or the fixed-step methods to optimise, each one of ``methods``;
        ``False`` or ``()``: none.
    optimized_solvers : bool or tuple of str
        Also fit a solver for each case and NFE (:func:`pndmkit.studies.solver_opt.optimize_solver`: the base
        method's grid and a weight table with one row per step, fitted on the calibration noises; not a method with
        an order), reported apart with the optimised grids (:func:`by_nfe_optimized`, :func:`fitted_solvers`):
        ``True`` for one on :data:`FITTED_BASE` (``ipndm``), rows named :data:`FITTED_METHOD`; or the bases to fit
        on, each of :data:`pndmkit.studies.solver_opt.BASE_METHODS` (``("ipndm", "ipndm-x0")``), rows named by base
        (:data:`FITTED_METHODS`); ``False`` or ``()``: none (:func:`optimized_solver_bases`). Each base must be
        among ``methods`` where they are given: its built-in grids are what its fitted solver is set against.
    optimize_maxfev : int
        Bound on each grid optimisation's sampling runs on the calibration noises (Nelder-Mead's ``maxfev``); for
        a fitted solver, the bound of the grid search it starts from (``grid_maxfev``). At most
        :data:`pndmkit.studies.grid_opt.MAX_NOISES` (1000000), as the searches take.
    optimize_solver_maxfev : int, optional
        Bound on each fitted solver's weight search (runs on the calibration noises, the Jacobian's included;
        ``maxfev`` of :func:`~pndmkit.studies.solver_opt.optimize_solver`), at most
        :data:`~pndmkit.studies.grid_opt.MAX_NOISES`. Default ``None``: its own default
        (:func:`~pndmkit.studies.solver_opt.default_maxfev`), ``40 * (P + 1)`` runs and at least 200, where ``P``
        counts the grid family's parameters (``min(3, steps - 1)``), the first time where
        ``optimize_first_time="free"``, and the table's weights (``min(i + 1, 4)`` in row ``i``): at NFE 5 720
        runs with the first time fixed (the default here) and 760 with it free; at NFE 50 7920 and 7960.
    optimize_calibration : int
        Calibration noises of each optimisation (grid or fitted solver): N(0, I) draws with per-sample seeds,
        disjoint from the case's own samples, which then serve as held-out noises.
    optimize_first_time : {"fixed", "free"}
        ``first_time`` of each optimisation (grid or fitted solver). ``"fixed"`` (the default here, unlike
        :func:`optimize`'s) keeps the built-in grids' first time, so every row of a case starts from the same state
        at the same time; ``"free"`` searches it too, the case's noise then taken as the state at the grid's first
        time (:func:`pndmkit.studies.grid_opt.noise_at`).
    auto : bool
        Also choose, per case and NFE, one pndmkit (method, grid) by each rule of :data:`AUTO_RULES` from
        calibration noises alone, and report the choices apart (:func:`by_nfe_auto`).
    auto_calibration : int
        Calibration noises of the automatic choice (:func:`auto_calibration_samples`), at least
        :data:`pndmkit.studies.statistics.INTERVAL_MIN_SAMPLES` (the ``interval`` rule's bootstrap needs them).
        The default, 8192, is sized for the rare samples that a coarse step at high noise sends to the other
        mode: on ``gmm32d`` (DDPM linear schedule, NFE 20) the optimised grids do so for 6-7 of 8192 calibration
        noises and the quadratic grid for 4, about one in 1200 to 2000: 1024 noises hold one of them or none,
        and which grid they rank first is luck (there, 1024 rank an optimised ``ipndm`` grid first, 8192 the
        quadratic grid). With the default the ``interval`` rule's choice is at most 0.49x the best peer's error
        in each built-in mixture case at NFE 5-50 (``analysis/results/compare_auto.md``). Every candidate runs
        on them: on ``gmm32d`` that costs about as much as 32 cases of 256 samples; a costly problem
        (``digits-gmm``) takes fewer.
    candidates : tuple of (side, method, option, nfe), optional
        Run only these of the planned built-in runs (default ``None``: every one): ``side`` ``"pndmkit"`` or
        ``"peer"``, ``method`` one of ``methods`` / ``peers`` (or of all, where those are not given), ``option``
        the grid option as the rows name it (``"leading"``, ``"logsnr"``, ``"timestep_spacing=leading"``,
        ``"use_karras_sigmas=True"``, ...) and ``nfe`` one of ``nfes``. For a costly re-run of the runs that led
        before, on more samples; each must match a planned run (else a :class:`UsageError` naming
        ``candidates``, with the options that method has). Optimised and given grids are not filtered.
    """

    problems: tuple = ("gmm2d", "gmm32d")
    schedules: tuple = ("discrete-linear", "linear-vp")
    nfes: tuple = NFES
    n: Optional[int] = None
    seed: int = 0
    methods: Optional[tuple] = None
    peers: Optional[tuple] = None
    grids: bool = True
    optimized_grids: Any = False
    optimized_solvers: Any = False
    optimize_maxfev: int = 400
    optimize_solver_maxfev: Optional[int] = None
    optimize_calibration: int = 128
    optimize_first_time: str = "fixed"
    auto: bool = False
    auto_calibration: int = 8192
    candidates: Optional[tuple] = None

    def __post_init__(self) -> None:
        from pndmkit.problems import PROBLEMS
        from pndmkit.studies.peers import PEERS

        for name, what, known in (("problems", "problem", PROBLEMS), ("schedules", "schedule", SCHEDULES),
                                  ("methods", "fixed-step method", compare_methods()), ("peers", "peer", PEERS)):
            given = getattr(self, name)
            if given is not None and not given and name in ("problems", "schedules"):
                raise UsageError(name, f"{name} must name at least one {what}; known: {', '.join(known)}")
            unknown = [v for v in (given or ()) if v not in known]
            if unknown:
                raise UsageError(name, f"unknown {what} {unknown[0]!r} in {name}; known: {', '.join(known)}")
            _once(name, given or ())
        self._check_optimized_grids()
        self._check_optimized_solvers()
        self._check_candidates()
        from pndmkit.studies.grid_opt import MAX_NOISES

        for name, low in (("nfes", 1), ("n", 1), ("seed", 0), ("optimize_maxfev", 1), ("optimize_calibration", 1),
                          ("optimize_solver_maxfev", 1)):
            values = getattr(self, name)
            for v in values if name == "nfes" else (() if values is None else (values,)):
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                    raise UsageError(name, f"{name} must be {'integers' if name == 'nfes' else 'an integer'} "
                                           f">= {low}, got {v!r}")
                if name in ("optimize_maxfev", "optimize_solver_maxfev") and v > MAX_NOISES:
                    # the searches' own bound, checked here before any run is planned
                    raise UsageError(name, f"{name} must be at most {MAX_NOISES}, got {v!r}")
        _once("nfes", self.nfes)  # a repeated NFE would run and report its row twice

        if self.optimize_first_time not in ("fixed", "free"):
            raise UsageError("optimize_first_time", f"optimize_first_time must be 'fixed' or 'free', got "
                                                    f"{self.optimize_first_time!r}")
        if self.optimize_calibration > MAX_NOISES:  # checked here, before any run is planned
            raise UsageError("optimize_calibration", f"optimize_calibration must be at most {MAX_NOISES}, got "
                                                     f"{self.optimize_calibration}")
        from pndmkit.studies.statistics import INTERVAL_MIN_SAMPLES

        if not isinstance(self.auto, (bool, np.bool_)):
            raise UsageError("auto", f"auto must be True or False, got {self.auto!r}")
        cal = self.auto_calibration
        if (isinstance(cal, bool) or not isinstance(cal, (int, np.integer)) or not
                INTERVAL_MIN_SAMPLES <= cal <= MAX_NOISES):
            raise UsageError("auto_calibration", f"auto_calibration must be an integer from {INTERVAL_MIN_SAMPLES} "
                                                 f"(the interval rule's bootstrap) to {MAX_NOISES}, got {cal!r}")

    def _check_candidates(self) -> None:
        """The shape of ``candidates`` (whether each names a planned run is checked when the runs are planned)."""
        from pndmkit.studies.peers import PEERS

        if self.candidates is None:
            return
        if not isinstance(self.candidates, (tuple, list)) or not self.candidates:
            raise UsageError("candidates", f"candidates must be None or a non-empty tuple of (side, method, option, "
                                           f"nfe), got {self.candidates!r}")
        for c in self.candidates:
            ok = isinstance(c, (tuple, list)) and len(c) == 4 and c[0] in ("pndmkit", "peer") and \
                isinstance(c[2], str) and not isinstance(c[3], bool) and isinstance(c[3], (int, np.integer))
            if not ok:
                raise UsageError("candidates", f"each candidate must be (side, method, option, nfe) with side "
                                               f"'pndmkit' or 'peer', got {c!r}")
            side, method, _, nfe = c
            known = (self.methods or compare_methods()) if side == "pndmkit" else (self.peers or tuple(PEERS))
            if method not in known:
                raise UsageError("candidates", f"candidate {tuple(c)!r}: {method!r} is not among the "
                                               f"{'methods' if side == 'pndmkit' else 'peers'} that run: "
                                               f"{', '.join(known)}")
            if nfe not in self.nfes:
                raise UsageError("candidates", f"candidate {tuple(c)!r}: NFE {nfe} is not among nfes "
                                               f"({', '.join(map(str, self.nfes))})")

    def _check_optimized_grids(self) -> None:
        given = self.optimized_grids
        if isinstance(given, bool):
            return
        if not isinstance(given, (tuple, list)) or not all(isinstance(v, str) for v in given):
            raise UsageError("optimized_grids", f"optimized_grids must be True, False or a tuple of fixed-step "
                                                f"methods, got {given!r}")
        _once("optimized_grids", given)
        for v in given:
            if v not in METHODS or METHODS[v].adaptive:
                what = (f"unknown method {v!r}" if v not in METHODS
                        else f"method {v!r} is adaptive (no grid to optimise)")
                raise UsageError("optimized_grids", f"{what} in optimized_grids; fixed-step methods: "
                                                    f"{', '.join(pndmkit_methods())}")
            if self.methods is not None and v not in self.methods:
                raise UsageError(("optimized_grids", "methods"),
                                 f"optimized_grids names {v!r}, which is not among methods "
                                 f"({', '.join(self.methods)}): an optimised grid is reported against the same "
                                 f"method's built-in grids, so add it to methods")

    def _check_optimized_solvers(self) -> None:
        given = self.optimized_solvers
        if not isinstance(given, (bool, np.bool_)):
            if not isinstance(given, (tuple, list)) or not all(isinstance(v, str) for v in given):
                raise UsageError("optimized_solvers", f"optimized_solvers must be True, False or a tuple of base "
                                                      f"methods ({', '.join(BASE_METHODS)}), got {given!r}")
            _once("optimized_solvers", given)
            for v in given:
                if v not in BASE_METHODS:
                    raise UsageError("optimized_solvers", f"unknown base {v!r} in optimized_solvers; a fitted solver "
                                                          f"is built on one of {', '.join(BASE_METHODS)}")
        for base in optimized_solver_bases(self):
            if self.methods is not None and base not in self.methods:
                raise UsageError(("optimized_solvers", "methods"),
                                 f"optimized_solvers fits {base}'s grid and step weights, which is not among "
                                 f"methods ({', '.join(self.methods)}): a fitted solver is reported against "
                                 f"{base}'s built-in grids, so add {base} to methods")

    @classmethod
    def quick(cls) -> "CompareConfig":
        """A few-second configuration for tests: one problem, one schedule, two NFEs, a few solvers."""
        return cls(problems=("gmm2d",), schedules=("discrete-linear",), nfes=(5, 10), n=64,
                   methods=("ddim", "plms", "ipndm", "ipndm-v", "f-pndm-s"),
                   peers=("ddim", "pndm-plms", "dpm-2m", "unipc"), grids=False)


def _first_valid(nfe_of: Callable[[int], int], hi: int) -> Optional[int]:
    """The smallest step count ``<= hi`` that ``nfe_of`` accepts (a peer may refuse small ones), or ``None``."""
    for n in range(1, hi + 1):
        try:
            nfe_of(n)
            return n
        except ValueError:
            continue
    return None


def why_no_run(nfe_of: Callable[[int], int], target: int) -> str:
    """Why no step count of a solver fits NFE ``target`` (where :func:`pndmkit.methods.steps_for_nfe` gives None).

    ``nfe_of(N)`` is the solver's cost of ``N`` steps (a peer's raises ``ValueError`` for the step counts its
    scheduler refuses). The reason names the fewest evaluations a run costs, whether its first steps cost more
    than later ones (a warm-up), and the first refusal's message; it does not depend on ``target`` beyond that,
    so that one reason can name several NFEs.

    >>> from pndmkit.methods import get_method
    >>> why_no_run(get_method("f-pndm").nfe, 3)
    'one step costs 4 evaluations (its first steps are warm-up steps of 4 evaluations each; later steps cost 1)'
    >>> why_no_run(get_method("pie").nfe, 1)
    'one step costs 2 evaluations'
    """
    refused: Optional[tuple[int, ValueError]] = None
    for n in range(1, max(target, 100) + 1):
        try:
            cost = nfe_of(n)
        except ValueError as exc:
            refused = refused or (n, exc)
            continue
        if refused is not None:
            return (f"its scheduler refuses N={refused[0]}..{n - 1} steps ({type(refused[1]).__name__}: "
                    f"{str(refused[1]).strip()}) and {n} steps cost {cost} evaluations")
        why = f"one step costs {cost} evaluations"
        try:
            later = nfe_of(n + 21) - nfe_of(n + 20)
        except ValueError:
            later = None
        if later is not None and cost > later:
            why += f" (its first steps are warm-up steps of {cost} evaluations each; later steps cost {later})"
        return why
    assert refused is not None
    return (f"its scheduler refused every step count from {refused[0]} to {max(target, 100)} "
            f"({type(refused[1]).__name__}: {str(refused[1]).strip()})")


def _skip(skipped: Optional[list], side: str, method: str, option: str, target: int,
          nfe_of: Callable[[int], int]) -> None:
    """Record in ``skipped`` (when it is a list) that ``method`` has no run at NFE ``target``, and why."""
    if skipped is not None:
        skipped.append({"side": side, "method": method, "option": option, "nfe_target": target,
                        "reason": why_no_run(nfe_of, target)})


def left_out(skips: Sequence[dict], rows: Sequence[dict]) -> list[dict]:
    """The solvers of a case with no finite-error run at an NFE, and why.

    Parameters
    ----------
    skips : sequence of dict
        What the planning left out: ``side``, ``method``, ``option``, ``nfe_target`` and ``reason`` (no step
        count fits the NFE, :func:`why_no_run`).
    rows : sequence of dict
        The case's built-in runs (``case["runs"]``); a row whose ``error`` is not finite is a run that was refused
        or broke down (its ``failure`` says how, where it raised).

    Returns
    -------
    list of dict
        ``side``, ``method``, ``nfe_target`` and ``reason`` (the reasons of its options, each once, joined by
        ``; ``) for each (side, method, NFE) with no option that ran to a finite error; sorted by NFE, side and
        method.
    """
    ran = {(r["side"], r["method"], r["nfe_target"]) for r in rows if math.isfinite(r["error"])}
    reasons: dict[tuple[str, str, int], list[str]] = {}
    for skip in skips:
        reasons.setdefault((skip["side"], skip["method"], skip["nfe_target"]), []).append(skip["reason"])
    for r in rows:
        if not math.isfinite(r["error"]):
            reasons.setdefault((r["side"], r["method"], r["nfe_target"]), []).append(
                f"N={r['steps']} [{r['option']}] " + r.get("failure", "ended at a non-finite point (it blew up)"))
    return [{"side": side, "method": method, "nfe_target": target, "reason": "; ".join(dict.fromkeys(why))}
            for (side, method, target), why in sorted(reasons.items(), key=lambda kv: (kv[0][2], *kv[0][:2]))
            if (side, method, target) not in ran]


def skipped_summary(cases: Sequence[dict], key: str = "skipped") -> list[dict]:
    """The cases' ``skipped`` entries (:func:`left_out`; or those under ``key``, such as ``"optimized_skipped"``)
    merged: one per side, method, NFE and reason, with the ``cases`` (``"problem/schedule"``) it holds in; sorted
    by NFE, side and method."""
    merged: dict[tuple, list[str]] = {}
    for case in cases:
        for e in case.get(key, ()):
            entry = (e["nfe_target"], e["side"], e["method"], e["reason"])  # not `key`: the parameter
            merged.setdefault(entry, []).append(f"{case['problem']}/{case['schedule']}")
    return [{"side": side, "method": method, "nfe_target": target, "reason": reason, "cases": where}
            for (target, side, method, reason), where in sorted(merged.items())]


# ------------------------------------------------------------------------------------------------------
# planning: which runs, with which grids, starting and ending at which levels
@dataclass
class _Run:
    side: str  # "pndmkit" or "peer"
    method: str
    option: str
    target: int
    steps: int
    nfe: int
    s_start: float
    s_end: float
    launch: Callable[[np.ndarray], tuple[np.ndarray, int]] = field(repr=False)
    optimized: bool = False  # an optimised grid: reported apart, never in the built-in summaries
    fitted: bool = False  # a fitted solver (optimized too): not a registered method, never an automatic choice
    extra: dict = field(default_factory=dict)  # fields added to its row
    grid_levels: tuple = ()  # the levels s of its grid, first to last (its row's GRID_LEVELS; is_parity)


def _s(schedule: NoiseSchedule, t: float) -> float:
    return float(schedule.s(t)) + 0.0  # no -0.0 in the tables


def _t_end(schedule: NoiseSchedule, method: str) -> Optional[float]:
    """Where a pndmkit method's grid ends: ``t = 0`` (``abar = 1``) for a pseudo method on a continuous
    schedule, else the schedule's own end (None; a DiscreteVP's ends at ``abar = 1`` already)."""
    if isinstance(schedule, DiscreteVP) or compare_spec(method).kind == "classical":
        return None
    return 0.0


def _launcher(problem: Any, schedule: NoiseSchedule, integrator: Any, times: np.ndarray,
              t_noise: Optional[float] = None) -> Callable[[np.ndarray], tuple[np.ndarray, int]]:
    """Run ``integrator`` on ``times`` from the case's noise ``x``; with ``t_noise`` (the time ``x`` was drawn at,
    above ``times[0]``) ``x`` is taken as the state at ``times[0]`` at that time's scale
    (:func:`pndmkit.studies.grid_opt.noise_at`: ``x`` itself on a VP schedule), as :func:`optimize` judged it."""
    from pndmkit.studies.grid_opt import noise_at

    def launch(x: np.ndarray) -> tuple[np.ndarray, int]:
        if t_noise is not None and times[0] < t_noise:
            x = noise_at(schedule, x, t_noise, float(times[0]))
        sol = integrator.solve(lambda x, t: problem.eps(x, t, schedule), x, times)
        return sol.x, sol.nfe

    return launch


def _pndmkit_grids(schedule: NoiseSchedule, method: str, all_grids: bool) -> list[tuple[str, dict]]:
    discrete = isinstance(schedule, DiscreteVP)
    t_end = _t_end(schedule, method)
    end = {} if t_end is None else {"t_end": t_end}
    kinds = [name for name, kind in GRID_KINDS.items() if kind.same_as is None and (discrete or not kind.discrete_only)]
    default = "discrete" if discrete else "continuous"
    kinds.sort(key=lambda name: GRID_KINDS[name].default_for != default)  # the default grid first
    if not all_grids:
        kinds = kinds[:1]
    return [(k, {} if k in DISCRETE_SPACINGS else end) for k in kinds]


def _plan_pndmkit(problem: Any, schedule: NoiseSchedule, cfg: CompareConfig, skipped: Optional[list] = None
                  ) -> list[_Run]:
    """Every pndmkit method, grid and NFE of ``cfg``; a method that fits no NFE is recorded in ``skipped``."""
    runs = []
    methods = cfg.methods or tuple(pndmkit_methods())
    for name in methods:
        spec = compare_spec(name)
        integrator = spec.build(schedule)
        nfe_of = integrator.nfe
        for target in cfg.nfes:
            steps = steps_for_nfe(nfe_of, target)
            if steps is None:
                _skip(skipped, "pndmkit", name, "", target, nfe_of)
                continue
            for kind, opts in _pndmkit_grids(schedule, name, cfg.grids):
                times = make_grid(schedule, steps, kind, **opts)
                label = kind + ("" if "t_end" not in opts else f" to t={opts['t_end']:g}")
                runs.append(_Run("pndmkit", name, label, target, steps, nfe_of(steps), _s(schedule, times[0]),
                                 _s(schedule, times[-1]), _launcher(problem, schedule, integrator, times),
                                 grid_levels=tuple(_s(schedule, t) for t in times)))
    return runs


def _candidate_skips(skips: list[dict], cfg: CompareConfig) -> list[dict]:
    """The entries of ``skips`` whose solver ``cfg.candidates`` names (all of them without it)."""
    if cfg.candidates is None:
        return skips
    named = {(side, method) for side, method, _, _ in cfg.candidates}
    return [s for s in skips if (s["side"], s["method"]) in named]


def _only_candidates(runs: list[_Run], cfg: CompareConfig) -> list[_Run]:
    """The built-in runs of ``runs`` that ``cfg.candidates`` names (all of them without it), and every optimised
    or given grid; a candidate that names no planned run is a :class:`UsageError` naming ``candidates``."""
    if cfg.candidates is None:
        return runs
    wanted = {(side, method, option, int(nfe)) for side, method, option, nfe in cfg.candidates}
    planned = {(r.side, r.method, r.option, r.target) for r in runs if not r.optimized}
    for c in sorted(wanted - planned):
        options = sorted({r.option for r in runs if (r.side, r.method) == c[:2] and not r.optimized})
        raise UsageError("candidates", f"candidate {c!r} names no planned run: the options of {c[0]} {c[1]!r} are "
                                       f"{', '.join(options) or 'none'} (and it must fit NFE {c[3]})")
    return [r for r in runs if r.optimized or (r.side, r.method, r.option, r.target) in wanted]


def optimized_methods(cfg: CompareConfig) -> tuple[str, ...]:
    """The methods whose grids :func:`compare` optimises under ``cfg`` (none when the option is off).

    >>> optimized_methods(CompareConfig(optimized_grids=True))
    ('ipndm', 'unipc-3', 'dpm-solver++-3m')
    >>> quick = CompareConfig.quick()
    >>> optimized_methods(quick), optimized_methods(replace(quick, optimized_grids=True))
    ((), ('ipndm',))
    """
    given = cfg.optimized_grids
    if given is True:
        ran = tuple(m for m in cfg.methods or pndmkit_methods() if m in METHODS)  # the optimiser takes the registry's
        return tuple(m for m in OPTIMIZED_DEFAULT if m in ran) or ran
    return tuple(given or ())


def optimized_solver_bases(cfg: CompareConfig) -> tuple[str, ...]:
    """The base methods :func:`compare` fits a solver on under ``cfg`` (none when ``optimized_solvers`` is off).

    Parameters
    ----------
    cfg : CompareConfig

    Returns
    -------
    tuple of str
        ``(FITTED_BASE,)`` for ``optimized_solvers=True``, the bases it names in their order for a tuple, ``()``
        for ``False``.

    Examples
    --------
    >>> optimized_solver_bases(CompareConfig(optimized_solvers=True))
    ('ipndm',)
    >>> optimized_solver_bases(CompareConfig(optimized_solvers=("ipndm-x0", "ipndm")))
    ('ipndm-x0', 'ipndm')
    """
    given = cfg.optimized_solvers
    if isinstance(given, (bool, np.bool_)):
        return (FITTED_BASE,) if given else ()
    return tuple(given)


def optimized_left_out(cfg: CompareConfig) -> tuple[str, ...]:
    """The methods of :data:`OPTIMIZED_DEFAULT` that ``optimized_grids=True`` leaves out under ``cfg``: those not
    among ``cfg.methods`` (a grid is optimised only for a method that runs, to be reported against its built-in
    grids). Empty when ``optimized_grids`` names its methods, is off, or none of the default set runs (every
    method of ``cfg.methods`` is then optimised instead).

    >>> optimized_left_out(CompareConfig(optimized_grids=True, methods=("ddim", "ipndm")))
    ('unipc-3', 'dpm-solver++-3m')
    """
    if cfg.optimized_grids is not True:
        return ()
    chosen = optimized_methods(cfg)
    if not any(m in chosen for m in OPTIMIZED_DEFAULT):
        return ()
    return tuple(m for m in OPTIMIZED_DEFAULT if m not in chosen)


#: why :func:`compare` optimises no grid for a method of :data:`OPTIMIZED_DEFAULT` (:func:`optimized_left_out`)
DEFAULT_LEFT_OUT_REASON = ("in the default set of optimized_grids (--optimized-grids with no names) but not among "
                           "methods (--methods): grids are optimised only for methods that run")

#: why :func:`compare` optimises no grid for a (method, NFE) whose step count is one with the first time fixed
ONE_STEP_REASON = ("one step with the first time fixed (optimize_first_time 'fixed'): its grid is the two end "
                   "times, nothing to optimise; 'free' (--optimize-first-time free) searches its first time")


def _plan_optimized(problem: Any, schedule: NoiseSchedule, cfg: CompareConfig, log: Callable[[str], None],
                    skipped: Optional[list] = None, results: Optional[dict] = None) -> list[_Run]:
    """Optimise the grid of each method of :func:`optimized_methods` at each NFE on calibration noises.

    The grid keeps the end points of the method's built-in grids (the schedule's top; ``abar = 1``, or
    ``t_end`` for a classical method on a continuous schedule), so its run is scored against the same
    reference levels as theirs; with ``cfg.optimize_first_time == "free"`` its first time is searched below the
    top, the case's noise taken as the state there. A (method, NFE) with nothing to search is not optimised and
    is recorded in ``skipped`` (when it is a list) with the reason: no step count fits the NFE
    (:func:`why_no_run`), or one step with the first time fixed (:data:`ONE_STEP_REASON`). Each search's
    :class:`~pndmkit.studies.grid_opt.OptimizedGrid` goes into ``results`` (when it is a dict) under ``(method,
    NFE)``, for :func:`_plan_fitted` to start from.
    """
    from pndmkit.studies.grid_opt import optimize

    methods = optimized_methods(cfg)
    if not methods:
        return []
    log(f"  optimising the grids of {', '.join(methods)}: at most {cfg.optimize_maxfev} runs on "
        f"{cfg.optimize_calibration} calibration noises per method and NFE, first time {cfg.optimize_first_time}")
    if optimized_left_out(cfg):
        log(f"  not optimising {', '.join(optimized_left_out(cfg))}: {DEFAULT_LEFT_OUT_REASON}")
    runs = []
    for name in methods:
        integrator = METHODS[name].build(schedule)
        for target in cfg.nfes:
            steps = steps_for_nfe(integrator.nfe, target)
            if steps is None:
                _skip(skipped, "pndmkit", name, "optimized", target, integrator.nfe)
                continue
            if steps == 1 and cfg.optimize_first_time == "fixed":
                log(f"    {name} NFE {target} (1 step): not optimised: {ONE_STEP_REASON}")
                if skipped is not None:
                    skipped.append({"side": "pndmkit", "method": name, "option": "optimized", "nfe_target": target,
                                    "reason": ONE_STEP_REASON})
                continue
            tic = time.perf_counter()
            res = optimize(name, problem, target, schedule=schedule, t_end=_t_end(schedule, name),
                           calibration=cfg.optimize_calibration, heldout=1, seed=cfg.seed, maxfev=cfg.optimize_maxfev,
                           fallback=False,  # judged here, on the case's own (held-out) samples
                           first_time=cfg.optimize_first_time)
            seconds = time.perf_counter() - tic
            if results is not None:
                results[(name, target)] = res
            log(f"    {name} NFE {target} ({res.steps} step{'' if res.steps == 1 else 's'}): {res.evaluations} "
                f"calibration runs in {seconds:.1f} s, "
                f"calibration error {res.calibration_error:.2e}")
            runs.append(_optimized_run(problem, schedule, name, target, res, integrator, seconds,
                                       grid_parameters=getattr(res, "degree", None)))
    return runs


def _optimized_run(problem: Any, schedule: NoiseSchedule, name: str, target: int, res: Any, integrator: Any,
                   seconds: float, fitted: bool = False, **extra: Any) -> _Run:
    """The run, reported apart (option ``"optimized"``), of ``integrator`` on the grid of ``res`` (an
    :class:`~pndmkit.studies.grid_opt.OptimizedGrid` or :class:`~pndmkit.studies.solver_opt.OptimizedSolver`:
    its ``grid``, ``steps``, ``t_start``, ``evaluations``, ``first_time`` and ``calibration_error``) from the
    case's noise drawn at ``res.t_start``; its row's fields are those and ``extra``."""
    times = np.asarray(res.grid, dtype=np.float64)
    return _Run("pndmkit", name, "optimized", target, res.steps, integrator.nfe(res.steps), _s(schedule, times[0]),
                _s(schedule, times[-1]), _launcher(problem, schedule, integrator, times, t_noise=res.t_start),
                optimized=True, fitted=fitted,
                extra={"times": [float(t) for t in times], "evaluations": res.evaluations,
                       "first_time": res.first_time, "noise_time": float(res.t_start), "optimize_seconds": seconds,
                       "calibration_error": res.calibration_error, **extra})


def _plan_fitted(problem: Any, schedule: NoiseSchedule, cfg: CompareConfig, log: Callable[[str], None],
                 grid_results: Optional[dict] = None) -> list[_Run]:
    """Fit a solver (:func:`pndmkit.studies.solver_opt.optimize_solver`: the base method's grid and a weight table)
    for each base of :func:`optimized_solver_bases` and each NFE of ``cfg`` on the optimised grids' calibration
    noises; its rows are named by base (:data:`FITTED_METHODS`).

    Its grid ends where the base's built-in grids end and, with the first time fixed, starts at the top, so its
    run is scored against the same reference levels as theirs; with ``"free"`` the case's noise is taken as the
    state at its first time. The search is judged here, on the case's own samples (``fallback`` off, one held-out
    noise of its own, whose interval is then undefined and unused). Where ``grid_results``
    (:func:`_plan_optimized`'s) holds the base's optimised grid at an NFE, searched with the same noises and
    options, the fit starts from it (``grid_result=``) instead of running that search again.
    """
    bases = optimized_solver_bases(cfg)
    if not bases:
        return []
    from pndmkit.studies.solver_opt import default_maxfev, fitted_integrator, optimize_solver

    budget = (f"at most {cfg.optimize_solver_maxfev} runs" if cfg.optimize_solver_maxfev is not None else
              "at most " + ", ".join(f"{default_maxfev(n, cfg.optimize_first_time)} runs at NFE {n}" for n in cfg.nfes)
              + " (40 x (P + 1) for P parameters, at least 200)")
    runs = []
    for base in bases:
        name = fitted_name(base)
        log(f"  fitting {base}'s grid and step weights ({name}): its grid search at most "
            f"{cfg.optimize_maxfev} runs, then the weight search, {budget}, on {cfg.optimize_calibration} calibration "
            f"noises per NFE, first time {cfg.optimize_first_time}")
        for target in cfg.nfes:
            searched = (grid_results or {}).get((base, target))
            tic = time.perf_counter()
            res = optimize_solver(problem, target, schedule=schedule, t_end=_t_end(schedule, base),
                                  calibration=cfg.optimize_calibration, heldout=1, seed=cfg.seed,
                                  first_time=cfg.optimize_first_time, fallback=False,
                                  grid_maxfev=None if searched else cfg.optimize_maxfev,
                                  maxfev=cfg.optimize_solver_maxfev, grid_result=searched, base=base)
            seconds = time.perf_counter() - tic
            grid_runs = res.grid_result.evaluations
            log(f"    {name} NFE {target} ({res.steps} step{'' if res.steps == 1 else 's'}): {grid_runs} grid "
                + (f"(the optimised {base} grid's search) " if searched else "")
                + f"and {res.evaluations} weight calibration runs in {seconds:.1f} s, calibration error "
                f"{res.calibration_error:.2e}")
            runs.append(_optimized_run(problem, schedule, name, target, res,
                                       fitted_integrator(res.weights, schedule, base=base), seconds, fitted=True,
                                       base=base, weights=[list(r) for r in res.weights],
                                       grid_evaluations=grid_runs))
    return runs


#: the fields of each entry of :func:`optimized_grids`, in this order
OPTIMIZED_GRID_FIELDS = ("problem", "schedule", "method", "nfe_target", "steps", "nfe", "first_time", "noise_time",
                         "times", "error", "calibration_error")


def optimized_grids(cases: Sequence[dict]) -> list[dict]:
    """Every optimised grid of ``cases`` (:func:`compare`'s), in a form to run again: one entry per case, method and
    NFE with the fields of :data:`OPTIMIZED_GRID_FIELDS`.

    ``times`` is the grid (decreasing, in the units of the schedule named by ``schedule``,
    :func:`pndmkit.schedules.get_schedule`: training indices on a DiscreteVP); ``first_time`` is the option the
    search ran with (``optimize_first_time``): ``"fixed"`` kept the first time at the schedule's top, ``"free"``
    searched it, which may have kept the top too (the first time kept is ``times[0]``); ``noise_time`` is the time
    the case's noise is drawn at (the top), which a grid starting below it takes as its state at ``times[0]``
    (:func:`pndmkit.studies.grid_opt.noise_at`: the noise itself on a VP schedule). ``error`` is the run's error on
    the case's samples (as in ``case["optimized"]``): ``pndmkit.sample(..., method=method, grid=times)`` from
    those samples gives it again. The fitted solvers' rows (:data:`FITTED_METHODS`, not registered methods) are
    not here: :func:`fitted_solvers` holds them.
    """
    return [{"problem": case["problem"], "schedule": case["schedule"],
             **{k: row.get(k) for k in OPTIMIZED_GRID_FIELDS[2:]}}
            for case in cases for row in case.get("optimized", ())
            if row.get("times") is not None and row["method"] not in FITTED_METHODS]


#: the fields of each entry of :func:`fitted_solvers`, in this order
FITTED_SOLVER_FIELDS = ("problem", "schedule", "method", "base", "nfe_target", "steps", "nfe", "first_time",
                        "noise_time", "times", "weights", "error", "calibration_error", "evaluations",
                        "grid_evaluations")


def fitted_solvers(cases: Sequence[dict]) -> list[dict]:
    """Every fitted solver of ``cases`` (:func:`compare`'s, with ``optimized_solvers``), in a form to run again: one
    entry per case and NFE with the fields of :data:`FITTED_SOLVER_FIELDS`.

    ``times`` is the grid, ``noise_time`` the time the case's noise is drawn at and ``first_time`` the option the
    fit ran with (the first time kept is ``times[0]``), as in :func:`optimized_grids`;
    ``weights`` is the table, one row per step (row ``i`` weighs the gradients of steps ``i, i - 1, ...``,
    :class:`pndmkit.adams.TabulatedMultistep`). ``method`` (:data:`FITTED_METHODS`: ``ipndm-fitted``,
    ``ipndm-x0-fitted``) is a label, not a registered method, and ``base`` the method it is built on: the sampler
    is :func:`pndmkit.studies.solver_opt.fitted_integrator` of ``weights`` with that ``base`` on the schedule
    named by ``schedule`` (:func:`pndmkit.schedules.get_schedule`), run on ``times`` from the case's samples
    (taken as the state at ``times[0]``, :func:`pndmkit.studies.grid_opt.noise_at`, where it is below
    ``noise_time``); that gives ``error`` again. ``evaluations`` and ``grid_evaluations`` are the calibration runs
    of its weight search and of the grid search it started from.
    """
    return [{"problem": case["problem"], "schedule": case["schedule"],
             **{k: row.get(k) for k in FITTED_SOLVER_FIELDS[2:]}}
            for case in cases for row in case.get("optimized", ()) if row["method"] in FITTED_METHODS]


def _option_label(opts: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in opts.items()) or "default"


def _plan_peers(problem: Any, schedule: NoiseSchedule, cfg: CompareConfig,
                model: Optional[Callable[[Any, float], Any]] = None, peer_times: str = "level",
                skipped: Optional[list] = None) -> list[_Run]:
    """Every peer, option and NFE of ``cfg`` (an option that fits no NFE is recorded in ``skipped``). The model is the problem's exact eps at the scheduler's own level
    or, given ``model(x, t)`` (a network), that model told the time of the scheduler's own level
    (``peer_times="level"``) or driven by :func:`pndmkit.studies.peers.peer_sample`, which tells it the
    scheduler's integer timestep where there is one (``"timestep"``)."""
    from pndmkit.studies.peers import PEERS, call_levels, make_scheduler, peer_sample, run_scheduler, time_of_level

    from pndmkit.schedules import levels_from_s

    def level_model(x, timestep, s):
        return problem.eps_at_levels(x, *levels_from_s(s))

    runs = []
    for name in cfg.peers or tuple(PEERS):
        spec = PEERS[name]
        if cfg.grids:
            options = spec.options
        elif spec.builtin:
            options = spec.options[:1]
        else:  # a peer given pndmkit's grid takes the one grid pndmkit itself runs without grid options
            options = ({next(iter(spec.options[0])): _pndmkit_grids(schedule, "ipndm", False)[0][0]},)
        for opts in options:
            built: dict[int, Any] = {}  # steps -> scheduler, built once (set_timesteps done, never stepped)

            def nfe_of(n, opts=opts, spec=spec, built=built):
                if n not in built:
                    built[n] = make_scheduler(spec, schedule, n, **opts)
                return len(built[n].timesteps)

            for target in cfg.nfes:
                steps = steps_for_nfe(nfe_of, target)
                if steps is None:
                    _skip(skipped, "peer", name, _option_label(opts), target, nfe_of)
                    continue
                levels, s_end = call_levels(built[steps])

                def launch(x, spec=spec, steps=steps, opts=opts):
                    sched = make_scheduler(spec, schedule, steps, **opts)
                    if model is not None and peer_times == "timestep":
                        out = peer_sample(model, x, schedule=schedule, peer=spec, steps=steps, scheduler=sched)
                    elif model is not None:
                        out = run_scheduler(sched, lambda x, timestep, s: model(x, time_of_level(schedule, s)), x,
                                            prediction=spec.prediction)
                    else:
                        out = run_scheduler(sched, level_model, x, prediction=spec.prediction)
                    return out.x, out.nfe

                runs.append(_Run("peer", name, _option_label(opts), target, steps, nfe_of(steps), levels[0], s_end,
                                 launch, grid_levels=(*levels, s_end)))
    return runs


# ------------------------------------------------------------------------------------------------------
def _reference(problem: Any, x_start: np.ndarray, s_start: float, s_points: np.ndarray) -> dict[float, np.ndarray]:
    from pndmkit.schedules import levels_from_s
    from pndmkit.problems.reference import solve_pf_ode

    pts = np.unique(s_points)
    xs = solve_pf_ode(lambda x, s: problem.eps_at_levels(x, *levels_from_s(s)), x_start, s_start, float(pts.min()),
                      scale=float(problem.min_std), s_eval=pts, rtol=REFERENCE_TOL, atol=REFERENCE_TOL)
    return {float(s): x for s, x in zip(pts, xs)}


def _draw_starts(problem: Any, n: int, s_max: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` exact samples of the marginal at level ``s_max``: ``sqrt(abar) x_0 + sqrt(1 - abar) z``."""
    abar, om = 1.0 / (1.0 + s_max**2), s_max**2 / (1.0 + s_max**2)
    return math.sqrt(abar) * problem.sample(n, rng=rng) + math.sqrt(om) * rng.standard_normal((n, problem.dim))


def _case_samples(problem: Any, n: int, s_max: float, seed: int) -> np.ndarray:
    """The case's own start samples (``numpy.random.default_rng(seed)``): every row is scored on them, and they
    are held out from the automatic choice."""
    return _draw_starts(problem, n, s_max, np.random.default_rng(seed))


def auto_calibration_samples(problem: Any, n: int, s_max: float, seed: int) -> np.ndarray:
    """Calibration start samples of the automatic choice: ``n`` exact samples of ``problem`` at level ``s_max``.

    Parameters
    ----------
    problem : GaussianMixture or str
        A built-in problem (:data:`pndmkit.problems.PROBLEMS`), or its name.
    n : int
        Number of samples, >= 1.
    s_max : float
        The level ``s = sqrt((1 - abar) / abar)`` they are drawn at (the case's top level), finite and >= 0.
    seed : int
        The case's seed, >= 0; the samples come from the stream ``SeedSequence([seed, AUTO_STREAM])``,
        independent of the case's own samples (``default_rng(seed)``).

    Returns
    -------
    ndarray, shape (n, problem.dim), float64
        ``sqrt(abar) x_0 + sqrt(1 - abar) z`` with ``x_0 ~ p_0`` and ``z ~ N(0, I)``: the law of the case's samples.

    Raises
    ------
    UsageError
        Naming ``problem`` (an unknown name, or no ``sample`` method), ``n``, ``s_max`` or ``seed``.
    """
    from pndmkit.problems import PROBLEMS, get_problem

    if isinstance(problem, str):
        if problem not in PROBLEMS:
            raise UsageError("problem", f"unknown problem {problem!r}; built-in problems: {', '.join(PROBLEMS)}")
        problem = get_problem(problem)
    elif not (hasattr(problem, "sample") and hasattr(problem, "dim")):
        raise UsageError("problem", f"problem must be a built-in problem or its name, got {type(problem).__name__}")
    for name, value in (("n", n), ("seed", seed)):
        low = 1 if name == "n" else 0
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise UsageError(name, f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(s_max, bool) or not isinstance(s_max, (int, float, np.floating, np.integer)) \
            or not (math.isfinite(s_max) and s_max >= 0):
        raise UsageError("s_max", f"s_max must be a finite number >= 0 (a level s), got {s_max!r}")
    return _draw_starts(problem, n, s_max, np.random.default_rng(np.random.SeedSequence([int(seed), AUTO_STREAM])))


def _per_sample_errors(x_end: np.ndarray, ref: np.ndarray, s: float) -> np.ndarray:
    """Mean over dimensions of the squared end-point error in ``y = x sqrt(1 + s^2)``, per sample."""
    d = (x_end - ref) * math.sqrt(1.0 + s * s)
    return np.mean(d * d, axis=1)


def auto_choice(errors: dict, rule: str, optimized: Iterable = ()) -> Optional[Any]:
    """The candidate a rule of :data:`AUTO_RULES` chooses from per-sample calibration errors.

    Parameters
    ----------
    errors : dict
        Candidate label -> per-sample mean squared end-point errors on the calibration noises (1-D, float64,
        the same noises in the same order for every candidate). A candidate with a non-finite error is never
        chosen.
    rule : str
        ``"rms"``: the smallest RMS error. ``"interval"``: the built-in candidate (not in ``optimized``) with
        the smallest RMS error, unless optimised candidates show a gain over it -- the lower end of the 95%
        paired bootstrap interval of their cut (:func:`pndmkit.studies.statistics.reduction_interval`) above 0
        --, then the one of those with the smallest RMS error. ``"tail"``: the smallest RMS error over the
        worst ``ceil(AUTO_TAIL * n)`` samples of each candidate.
    optimized : iterable
        The labels of the candidates on optimised grids.

    Returns
    -------
    label or None
        The chosen label (ties: the first in ``errors``' order); None where no candidate has finite errors.

    Raises
    ------
    UsageError
        Naming ``rule`` (not one of :data:`AUTO_RULES`) or ``errors`` (not 1-D arrays of one length).
    """
    if rule not in AUTO_RULES:
        raise UsageError("rule", f"rule must be one of {', '.join(AUTO_RULES)}, got {rule!r}")
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in errors.items()}
    if len({a.shape for a in arrays.values()}) > 1 or any(a.ndim != 1 or a.size == 0 for a in arrays.values()):
        raise UsageError("errors", f"errors must map each candidate to a non-empty 1-D array of per-sample errors, "
                                   f"all of one length; got shapes {sorted({a.shape for a in arrays.values()})}")
    finite = {k: a for k, a in arrays.items() if np.all(np.isfinite(a))}
    if not finite:
        return None

    def rms(k: Any) -> float:
        return float(np.sqrt(np.mean(finite[k])))

    if rule == "rms":
        return min(finite, key=rms)
    if rule == "tail":
        worst = max(1, math.ceil(AUTO_TAIL * next(iter(finite.values())).size))
        return min(finite, key=lambda k: float(np.sqrt(np.mean(np.sort(finite[k])[-worst:]))))
    from pndmkit.studies.statistics import reduction_interval

    opt = set(optimized)
    builtin = [k for k in finite if k not in opt]
    if not builtin:
        return min(finite, key=rms)
    base = min(builtin, key=rms)
    shown = [k for k in finite if k in opt and rms(k) < rms(base)
             and reduction_interval(finite[k], finite[base])[0] > 0.0]
    return min(shown, key=rms) if shown else base


def _auto_choose(problem: Any, runs: Sequence[_Run], on_top: Sequence[bool], s_max: float, cfg: CompareConfig,
                 log: Callable[[str], None]) -> tuple[dict[tuple[str, int], int], dict[int, dict]]:
    """Run every pndmkit run on calibration noises of its own and let each rule choose per NFE.

    Reads nothing of the case's samples (they are drawn after this returns). Returns ``(rule, target) -> index
    of the chosen run`` and ``index -> {"calibration_error", "calibration_tail"}`` for every candidate.
    """
    tic = time.perf_counter()
    x_cal = auto_calibration_samples(problem, cfg.auto_calibration, s_max, cfg.seed)
    picked = [i for i, r in enumerate(runs) if r.side == "pndmkit" and not r.fitted]  # no fitted solver
    points = [runs[i].s_start for i in picked if on_top[i]] + [runs[i].s_end for i in picked]
    ref = _reference(problem, x_cal, s_max, np.array(points))
    errors: dict[int, np.ndarray] = {}
    for i in picked:
        r = runs[i]
        try:
            with np.errstate(all="ignore"):
                x_end, _ = r.launch(ref[r.s_start].copy() if on_top[i] else x_cal.copy())
            errors[i] = _per_sample_errors(x_end, ref[r.s_end], r.s_end)
        except (ValueError, FloatingPointError, RuntimeError):
            errors[i] = np.full(cfg.auto_calibration, math.inf)
    worst = max(1, math.ceil(AUTO_TAIL * cfg.auto_calibration))
    scores = {i: {"calibration_error": float(np.sqrt(np.mean(e))),
                  "calibration_tail": float(np.sqrt(np.mean(np.sort(e)[-worst:])))} for i, e in errors.items()}
    for i, sc in scores.items():
        for k, v in sc.items():
            sc[k] = v if math.isfinite(v) else math.inf
    chosen = {}
    for target in cfg.nfes:
        cands = {i: errors[i] for i in picked if runs[i].target == target}
        for rule in AUTO_RULES:
            pick = auto_choice(cands, rule, optimized=[i for i in cands if runs[i].optimized])
            if pick is not None:
                chosen[(rule, target)] = pick
    log(f"  automatic choice: {len(picked)} pndmkit runs on {cfg.auto_calibration} calibration noises in "
        f"{time.perf_counter() - tic:.1f} s")
    return chosen, scores


def _y(x: np.ndarray, s: float) -> np.ndarray:
    """``y = x / sqrt(abar) = x sqrt(1 + s^2)``: the variable every error is measured in."""
    return x * math.sqrt(1.0 + s * s)


def _score_runs(runs: Sequence[_Run], on_top: Sequence[bool], start_of: Callable[[_Run, bool], np.ndarray],
                ref: dict[float, np.ndarray], log: Callable[[str], None]) -> tuple:
    """Launch every run from ``start_of(run, on_top)`` and score its end point against ``ref[run.s_end]`` (RMS in
    ``y``; each finite row also carries its per-sample mean squared errors under :data:`SAMPLE_ERRORS` and its
    grid levels under :data:`GRID_LEVELS` until :func:`_drop_scratch`); return ``(best, best_shared_grids,
    outputs, rows, optimized_rows, rows_of_run)``, the first three keyed by (side, method, NFE), the last by the
    run's index in ``runs``."""
    best: dict[tuple[str, str, int], dict] = {}
    shared: dict[tuple[str, str, int], dict] = {}  # best over the grid options diffusers also has
    outputs: dict[tuple[str, str, int], np.ndarray] = {}
    all_rows, optimized = [], []  # built-in runs; optimised grids (reported apart)
    rows_of_run: dict[int, dict] = {}
    for index, (r, top) in enumerate(zip(runs, on_top)):
        t0 = time.perf_counter()
        try:
            with np.errstate(all="ignore"):
                x_end, nfe = r.launch(start_of(r, top))
            diff = _y(x_end, r.s_end) - _y(ref[r.s_end], r.s_end)
            err = float(np.sqrt(np.mean(diff ** 2)))
            per_sample = np.mean(diff.reshape(len(diff), -1) ** 2, axis=1)
        except (ValueError, FloatingPointError, RuntimeError) as exc:  # a solver that refuses or breaks down
            x_end, nfe, err, per_sample = None, r.nfe, math.inf, None
            failure = f"{type(exc).__name__}: {exc}"
            log(f"  {r.side} {r.method} [{r.option}] N={r.steps}: {failure}")
        if not math.isfinite(err):
            err = math.inf
        row = {"side": r.side, "method": r.method, "option": r.option, "nfe_target": r.target, "steps": r.steps,
               "nfe": nfe, "error": err, "s_start": r.s_start, "s_end": r.s_end, "starts_at_top": top,
               "seconds": time.perf_counter() - t0}
        if x_end is None:  # what it raised, for the reports' list of solvers left out
            row["failure"] = failure
        if r.grid_levels:  # for the summaries' parity checks; dropped from the result
            row[GRID_LEVELS] = [float(s) for s in r.grid_levels]
        if per_sample is not None and math.isfinite(err):  # for the summaries' intervals; dropped from the result
            row[SAMPLE_ERRORS] = per_sample
        rows_of_run[index] = row
        key = (r.side, r.method, r.target)
        if r.optimized:
            row.update(r.extra)
            optimized.append(row)
            if x_end is not None:
                outputs[("optimized", r.method, r.target)] = _y(x_end, r.s_end)
            continue
        row.update(r.extra)
        all_rows.append(row)
        if x_end is not None and (key not in best or err < best[key]["error"]):
            best[key] = row
            outputs[key] = _y(x_end, r.s_end)
        if x_end is not None and (r.side == "peer" or r.option.split(" ")[0] in SHARED_GRIDS):
            if key not in shared or err < shared[key]["error"]:
                shared[key] = row
    return best, shared, outputs, all_rows, optimized, rows_of_run


def _case(problem_name: str, schedule_name: str, cfg: CompareConfig, log: Callable[[str], None]) -> dict:
    from pndmkit.problems import get_problem, nll
    from pndmkit.problems.metrics import SlicedWasserstein

    problem = get_problem(problem_name)
    schedule = get_schedule(schedule_name)
    n = cfg.n or (1000 if problem.dim < 8 else 256)
    tic = time.perf_counter()
    skips: list[dict] = []
    runs = _plan_pndmkit(problem, schedule, cfg, skips)
    if cfg.peers is None or cfg.peers:
        runs += _plan_peers(problem, schedule, cfg, skipped=skips)
    runs = _only_candidates(runs, cfg)
    if not runs:
        fewest = []
        for m in cfg.methods or pndmkit_methods():
            nfe_of = compare_spec(m).build(schedule).nfe
            n = _first_valid(nfe_of, 1000)
            fewest.append(f"{m} {nfe_of(n) if n is not None else 'none'}")
        raise UsageError(("nfes", "methods", "peers"),
                         f"no solver runs within nfes={list(cfg.nfes)} on {schedule_name}: the fewest model calls "
                         f"of a run are {', '.join(fewest)}; give larger nfes or other methods")
    optimizing = bool(optimized_methods(cfg) or optimized_solver_bases(cfg))
    if optimizing:
        log(f"{problem_name} / {schedule_name}: {len(runs)} built-in runs planned")
    t_opt = time.perf_counter()
    opt_skips: list[dict] = []
    # before the reference, at the built-in levels; a fitted solver starts from its base's optimised grid where that
    # was searched here (the same noises and options), not from a second search
    searched: dict = {}  # (method, NFE) -> OptimizedGrid
    runs += _plan_optimized(problem, schedule, cfg, log, opt_skips, searched)
    runs += _plan_fitted(problem, schedule, cfg, log, searched)
    t_opt = time.perf_counter() - t_opt
    # the top level is the schedule's (a peer's float32 table may put its own a little higher), never the
    # start of whichever grids happen to run: a late-starting grid is measured against the same trajectory
    s_max = max(_s(schedule, schedule.t_start), *(r.s_start for r in runs))
    on_top = [r.s_start >= s_max * (1.0 - TOP_TOLERANCE) for r in runs]
    # the automatic choice is made first, from calibration noises of its own: the case's samples do not exist yet
    t_auto = time.perf_counter()
    if cfg.auto and not optimizing:
        log(f"{problem_name} / {schedule_name}: {len(runs)} runs planned")
    chosen, scores = _auto_choose(problem, runs, on_top, s_max, cfg, log) if cfg.auto else ({}, {})
    t_auto = time.perf_counter() - t_auto
    x_max = _case_samples(problem, n, s_max, cfg.seed)
    points = [r.s_start for r, top in zip(runs, on_top) if top] + [r.s_end for r in runs]
    ref = _reference(problem, x_max, s_max, np.array(points))
    if optimizing:
        done = " and ".join(what for what, on in (("grids optimised", optimized_methods(cfg)),
                                                  ("solvers fitted", optimized_solver_bases(cfg))) if on)
        log(f"  {done} in {t_opt:.1f} s; reference in {time.perf_counter() - tic - t_opt - t_auto:.1f} s")
    elif cfg.auto:
        log(f"  reference in {time.perf_counter() - tic - t_auto:.1f} s")
    else:
        log(f"{problem_name} / {schedule_name}: {len(runs)} runs planned, reference in "
            f"{time.perf_counter() - tic:.1f} s")

    best, shared, outputs, all_rows, optimized, rows_of_run = _score_runs(
        runs, on_top, lambda r, top: ref[r.s_start].copy() if top else x_max.copy(), ref, log)
    sw = SlicedWasserstein(problem, n, seed=cfg.seed + 1)
    s_zero = min(ref)
    floor = sw(_y(ref[s_zero], s_zero))
    scored = [*((key, row) for key, row in best.items()),
              *((("optimized", row["method"], row["nfe_target"]), row) for row in optimized)]
    for key, row in scored:
        out = outputs.get(key)
        row["sw"] = None if out is None else sw(out)
        row["nll"] = None if out is None else nll(problem, out)
    log(f"  done in {time.perf_counter() - tic:.1f} s")

    def order(rows: Iterable[dict]) -> list[dict]:
        return sorted(rows, key=lambda r: (r["nfe_target"], r["side"], r["error"]))

    case = {"problem": problem_name, "schedule": schedule_name, "n": n, "sw_floor": floor,
            "best": order(best.values()), "best_shared_grids": order(shared.values()), "runs": all_rows,
            "skipped": left_out(_candidate_skips(skips, cfg), all_rows)}
    if optimizing:
        case["optimized"] = order(optimized)
        case["optimized_skipped"] = left_out(opt_skips, optimized)
        case["optimize_seconds"] = sum(r["optimize_seconds"] for r in optimized)
    if cfg.auto:
        auto = []
        for (rule, target), index in chosen.items():
            row = rows_of_run[index]
            auto.append({"rule": rule, **{k: row[k] for k in ("side", "method", "option", "nfe_target", "steps",
                                                              "nfe", "error", "s_start", "s_end", "starts_at_top")},
                         "optimized": runs[index].optimized, **scores[index],
                         **({SAMPLE_ERRORS: row[SAMPLE_ERRORS]} if SAMPLE_ERRORS in row else {})})
        case["auto"] = sorted(auto, key=lambda r: (r["nfe_target"], AUTO_RULES.index(r["rule"])))
        case["auto_calibration"] = cfg.auto_calibration
        case["auto_seconds"] = t_auto
    return case


def by_nfe(cases: Sequence[dict], nfes: Iterable[int], key: str = "best", builtin_only: bool = True
           ) -> dict[str, dict]:
    """For each target NFE the best pndmkit method and the best peer, and the ratio of their errors.

    A solver's error is the geometric mean over the cases of its best-option error (it must have run in
    every case). Every NFE where either side ran has an entry: ``best_pndmkit`` and ``best_peer`` where that
    side ran, ``ratio`` only where both did (where no peer ran at all, ``peers=()``, each NFE has
    ``best_pndmkit`` only). Where ``ratio`` is, ``ratio_interval`` is its 95% paired bootstrap interval over
    samples (:func:`pndmkit.studies.statistics.ratio_interval`): the two solvers (and their grid options) fixed as
    chosen on all the samples, each case's samples resampled jointly for both; ``None`` where the rows carry no
    per-sample errors (results read back from a file) or a
    case has fewer than :data:`pndmkit.studies.statistics.INTERVAL_MIN_SAMPLES` samples.
    ``key="best_shared_grids"`` restricts pndmkit to the grids diffusers also offers;
    ``builtin_only`` leaves out peers run on a grid of pndmkit (IPNDM through ``trained_betas``). Where the best
    peer is the best pndmkit method itself on the same grid in every case (``ipndm-pndmkit-grid`` against
    ``ipndm``: :attr:`pndmkit.studies.peers.PeerSpec.reproduces`), the entry has ``parity: True``: its ratio
    checks that the two implementations agree (1 up to rounding) and compares no two methods.
    """
    from pndmkit.studies.peers import PEERS

    custom = {name for name, spec in PEERS.items() if not spec.builtin} if builtin_only else set()
    out = {}
    for target in nfes:
        entry: dict[str, Any] = {}
        for side, label in (("pndmkit", "best_pndmkit"), ("peer", "best_peer")):
            scored = _scored(cases, key, side, target, custom)
            if scored:
                entry[label] = min(scored.values(), key=lambda e: e["error"])
        if "best_pndmkit" in entry and "best_peer" in entry:
            entry["ratio"] = entry["best_pndmkit"]["error"] / entry["best_peer"]["error"]
            entry["ratio_interval"] = _interval(cases, target, (key, "pndmkit", entry["best_pndmkit"]["method"]),
                                                (key, "peer", entry["best_peer"]["method"]))
            ours, peer = ({**entry[label], GRID_LEVELS: _case_levels(cases, key, side, entry[label]["method"], target)}
                          for side, label in (("pndmkit", "best_pndmkit"), ("peer", "best_peer")))
            if is_parity(ours, peer):
                entry["parity"] = True
        if entry:  # one side alone: its best solver, no ratio
            out[str(target)] = entry
    return out


def is_parity(ours: dict, peer: dict) -> bool:
    """Whether a summary's best pndmkit solver and best peer are one method on one grid: the peer
    reproduces that pndmkit method (:attr:`pndmkit.studies.peers.PeerSpec.reproduces`) and ran, in every case,
    the grid pndmkit's best run used: the same number of levels, each equal to :data:`GRID_RTOL` (relative).
    The grids themselves are compared, not their option names (``"quadratic to t=0"`` and ``"grid=quadratic"``
    name one grid on ``linear-vp``).

    Parameters
    ----------
    ours, peer : dict
        Summary entries of :func:`by_nfe` (``best_pndmkit``, ``best_peer``): ``method``, and :data:`GRID_LEVELS`
        (one list of levels per case, or None for a case whose row has none), which :func:`by_nfe` adds from
        the case rows while those still carry them; entries without levels (a summary made from results read
        back from a file) are no parity.

    Returns
    -------
    bool
    """
    from pndmkit.studies.peers import PEERS

    spec = PEERS.get(peer["method"])
    if spec is None or spec.reproduces != ours["method"]:
        return False
    a, b = ours.get(GRID_LEVELS), peer.get(GRID_LEVELS)
    if not a or not b or len(a) != len(b):
        return False
    return all(x is not None and y is not None and len(x) == len(y)
               and np.allclose(x, y, rtol=GRID_RTOL, atol=0.0) for x, y in zip(a, b))


def _scored(cases: Sequence[dict], key: str, side: str, target: int, leave_out: Iterable[str] = ()
            ) -> dict[str, dict]:
    """Each solver of ``side`` that ran at NFE ``target`` in every case with a finite error: its geometric-mean
    error over the cases, the most NFE it used and its grid option per case (keyed by method; sorted by name)."""
    per: dict[str, list] = {}
    for case in cases:
        for row in case[key]:
            if row["side"] == side and row["nfe_target"] == target and row["method"] not in leave_out:
                per.setdefault(row["method"], []).append(row)
    out = {}
    for method, rows in sorted(per.items()):
        if len(rows) != len(cases) or not all(math.isfinite(r["error"]) and r["error"] > 0 for r in rows):
            continue
        g = math.exp(sum(math.log(r["error"]) for r in rows) / len(rows))
        out[method] = {"method": method, "error": g, "nfe": max(r["nfe"] for r in rows),
                       "options": [r["option"] for r in rows]}
    return out


def _case_levels(cases: Sequence[dict], key: str, side: str, method: str, target: int) -> list:
    """The grid levels (:data:`GRID_LEVELS`) of ``(side, method)``'s row of ``case[key]`` at NFE ``target`` in each
    case, None where a case has no such row or the row no levels (rows read back from a file)."""
    return [(_case_row(case, key, side, method, target) or {}).get(GRID_LEVELS) for case in cases]


def _case_row(case: dict, key: str, side: str, method: str, target: int) -> Optional[dict]:
    """The row of ``case[key]`` of ``(side, method)`` at NFE ``target`` with the smallest error (its best option)."""
    return min((r for r in case.get(key, ()) if r["side"] == side and r["method"] == method
                and r["nfe_target"] == target), key=lambda r: r["error"], default=None)


def _interval(cases: Sequence[dict], target: int, judged: Any, baseline: Any) -> Optional[list[float]]:
    """95% paired bootstrap interval over samples of the ratio of ``judged``'s error to ``baseline``'s at NFE
    ``target``, each ``(key, side, method)`` (its best option in each case, as chosen on all the samples) or a list
    of rows, one per case: :func:`pndmkit.studies.statistics.ratio_interval` of their per-sample errors (the
    geometric mean over the cases of the per-case RMS ratios, each case's samples resampled jointly for both).
    ``[low, high]``, or None where a row or its per-sample errors are missing or the interval is undefined."""
    from pndmkit.studies.statistics import ratio_interval

    def rows(which: Any) -> list:
        if isinstance(which, tuple):
            return [_case_row(case, *which, target) for case in cases]
        return list(which)

    a, b = rows(judged), rows(baseline)
    if len(a) != len(cases) or len(b) != len(cases) or \
            any(r is None or SAMPLE_ERRORS not in r for r in (*a, *b)):
        return None
    low, high = ratio_interval([(x[SAMPLE_ERRORS], y[SAMPLE_ERRORS]) for x, y in zip(a, b)])
    return None if math.isnan(low) else [low, high]


def _drop_scratch(cases: Sequence[dict], keep: bool = False) -> None:
    """Remove the grid levels (:data:`GRID_LEVELS`) and per-sample errors (:data:`SAMPLE_ERRORS`) from every row
    of ``cases``, once the summaries are made, so that the result stays small and JSON-serialisable; ``keep``:
    turn the per-sample errors into lists of floats instead."""
    for case in cases:
        for value in case.values():
            if isinstance(value, list):
                for row in value:
                    if isinstance(row, dict):
                        row.pop(GRID_LEVELS, None)
                    if isinstance(row, dict) and SAMPLE_ERRORS in row:
                        errors = row.pop(SAMPLE_ERRORS)
                        if keep:
                            row[SAMPLE_ERRORS] = [float(e) for e in errors]


def by_nfe_optimized(cases: Sequence[dict], nfes: Iterable[int]) -> dict[str, dict]:
    """For each target NFE: the best optimised grid (or fitted solver) against the best built-in pndmkit grid and
    the best peer.

    Scored as :func:`by_nfe` scores (geometric mean over the cases). Each NFE has ``best_optimized`` (over
    the methods whose grid was optimised and the fitted solvers, :data:`FITTED_METHODS`, where they ran),
    ``best_builtin`` (every pndmkit method on every built-in grid,
    i.e. :func:`by_nfe`'s ``best_pndmkit``), ``best_peer`` (peers with their own options; absent without
    peers), the ratios ``vs_builtin`` and ``vs_peer`` of the optimised error to theirs with their 95% paired
    bootstrap intervals over samples ``vs_builtin_interval`` and ``vs_peer_interval`` (as :func:`by_nfe`'s
    ``ratio_interval``), and ``methods``: per optimised method its optimised and best built-in error, their ratio
    (what optimising buys that method) and its ``ratio_interval``; ``builtin_method`` names the method whose
    built-in grids that is: the method itself, and for a fitted solver its base (:data:`FITTED_METHODS`: what
    fitting the grid and weights buys over that method on its best built-in grid).
    """
    from pndmkit.studies.peers import PEERS

    custom = {name for name, spec in PEERS.items() if not spec.builtin}
    out = {}
    for target in nfes:
        opt = _scored(cases, "optimized", "pndmkit", target)
        if not opt:
            continue
        builtin = _scored(cases, "best", "pndmkit", target)
        peers = _scored(cases, "best", "peer", target, custom)
        entry: dict[str, Any] = {"best_optimized": min(opt.values(), key=lambda e: e["error"])}
        best_opt = ("optimized", "pndmkit", entry["best_optimized"]["method"])
        for label, scored, side in (("builtin", builtin, "pndmkit"), ("peer", peers, "peer")):
            if scored:
                entry[f"best_{label}"] = min(scored.values(), key=lambda e: e["error"])
                entry[f"vs_{label}"] = entry["best_optimized"]["error"] / entry[f"best_{label}"]["error"]
                entry[f"vs_{label}_interval"] = _interval(cases, target, best_opt,
                                                          ("best", side, entry[f"best_{label}"]["method"]))
        base = {m: FITTED_METHODS.get(m, m) for m in opt}  # a fitted solver: against its base
        entry["methods"] = {m: {"optimized": e["error"], "builtin_method": base[m],
                                "builtin": builtin[base[m]]["error"], "builtin_options": builtin[base[m]]["options"],
                                "ratio": e["error"] / builtin[base[m]]["error"],
                                "ratio_interval": _interval(cases, target, ("optimized", "pndmkit", m),
                                                            ("best", "pndmkit", base[m]))}
                            for m, e in opt.items() if base[m] in builtin}
        out[str(target)] = entry
    return out


def case_best_peer(case: dict, target: int) -> Optional[dict]:
    """The row of ``case["best"]`` of the peer with its own options (peers run on a pndmkit grid left out) that
    has the smallest finite error at NFE ``target``; None where no such peer ran.

    Parameters
    ----------
    case : dict
        One entry of the ``"cases"`` of :func:`compare` or :func:`compare_model`: its ``"best"`` rows (each
        with ``"side"``, ``"method"``, ``"nfe_target"`` and ``"error"``) are read, nothing is changed.
    target : int
        The target number of network evaluations (NFE), compared with each row's ``"nfe_target"``.

    Returns
    -------
    dict or None
        That row itself (not a copy): ``"side"`` is ``"peer"``, ``"error"`` the finite RMS error of its end
        points in ``y = x sqrt(1 + s^2)`` against the reference; None when no peer with its own options has a
        finite error at ``target`` in this case.

    Raises
    ------
    KeyError
        ``case`` has no ``"best"`` rows, or a row lacks one of the keys above.
    """
    from pndmkit.studies.peers import PEERS

    custom = {name for name, spec in PEERS.items() if not spec.builtin}
    return min((r for r in case["best"] if r["side"] == "peer" and r["nfe_target"] == target
                and r["method"] not in custom and math.isfinite(r["error"])), key=lambda r: r["error"], default=None)


def by_nfe_auto(cases: Sequence[dict], nfes: Iterable[int]) -> dict[str, dict]:
    """For each target NFE: what each rule of :data:`AUTO_RULES` chose, scored on the cases' own samples.

    Scored as :func:`by_nfe` scores. Each NFE has ``best_builtin`` and ``best_peer`` (:func:`by_nfe`'s
    ``best_pndmkit`` and ``best_peer``; the latter absent without peers) and ``rules``: per rule (where it chose
    in every case, with a finite error) ``error`` (the geometric mean over the cases of its chosen runs'
    errors), ``vs_builtin`` and ``vs_peer`` (that error over theirs) with their 95% paired bootstrap intervals
    over samples ``vs_builtin_interval`` and ``vs_peer_interval`` (as :func:`by_nfe`'s ``ratio_interval``) and
    ``cases``: per case the chosen
    ``method``, ``option`` and ``optimized``, its ``error``, ``calibration_error``, the case's best peer
    (``peer`` and ``peer_error``, the smallest error of a peer with its own options in that case) and
    ``vs_peer``.
    """
    from pndmkit.studies.peers import PEERS

    custom = {name for name, spec in PEERS.items() if not spec.builtin}
    out = {}
    for target in nfes:
        if not all(any(r["nfe_target"] == target for r in case.get("auto", ())) for case in cases):
            continue
        entry: dict[str, Any] = {}
        for side, label in (("pndmkit", "best_builtin"), ("peer", "best_peer")):
            scored = _scored(cases, "best", side, target, custom if side == "peer" else ())
            if scored:
                entry[label] = min(scored.values(), key=lambda e: e["error"])
        entry["rules"] = {}
        for rule in AUTO_RULES:
            rows = [next((r for r in case["auto"] if r["rule"] == rule and r["nfe_target"] == target), None)
                    for case in cases]
            if any(r is None or not (math.isfinite(r["error"]) and r["error"] > 0) for r in rows):
                continue
            g = math.exp(sum(math.log(r["error"]) for r in rows) / len(rows))
            per_case = []
            for case, row in zip(cases, rows):
                peer = case_best_peer(case, target)
                per_case.append({"case": f"{case['problem']}/{case['schedule']}",
                                 **{k: row[k] for k in ("method", "option", "optimized", "nfe", "error",
                                                        "calibration_error")},
                                 "peer": None if peer is None else peer["method"],
                                 "peer_error": None if peer is None else peer["error"],
                                 "vs_peer": None if peer is None else row["error"] / peer["error"]})
            e: dict[str, Any] = {"error": g}
            for label, side in (("builtin", "pndmkit"), ("peer", "peer")):
                if f"best_{label}" in entry:
                    e[f"vs_{label}"] = g / entry[f"best_{label}"]["error"]
                    e[f"vs_{label}_interval"] = _interval(cases, target, rows,
                                                          ("best", side, entry[f"best_{label}"]["method"]))
            e["cases"] = per_case
            entry["rules"][rule] = e
        out[str(target)] = entry
    return out


def _one_blas_thread() -> Any:
    """Limit BLAS to one thread when threadpoolctl is there: small matrix products, shared machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1)


def compare(cfg: CompareConfig = CompareConfig(), log: Callable[[str], None] = lambda s: None) -> dict:
    """Run the head-to-head; return ``{"config", "by_nfe", ..., "cases"}`` (JSON-serialisable); writes no files.

    A run that raised or blew up keeps its ``error`` as ``inf`` here; :func:`pndmkit._io.json_text` (which
    ``compare.json`` and ``pndmkit compare --json`` are written with) makes it ``null``, as strict JSON needs.

    With ``cfg.optimized_grids`` the result also has ``by_nfe_optimized``, ``optimized_skipped`` and
    ``optimized_grids`` (:func:`optimized_grids`), and each case ``optimized`` (its rows) and
    ``optimize_seconds`` (time spent optimising). With ``cfg.optimized_solvers`` it has those too (the fitted
    solvers' rows, methods :data:`FITTED_METHODS`, in each case's ``optimized``) and ``fitted_solvers``
    (:func:`fitted_solvers`). With ``cfg.auto`` it has ``by_nfe_auto`` and each
    case ``auto`` (per rule and NFE the chosen run's row on the case's samples, with ``optimized``,
    ``calibration_error`` and ``calibration_tail``), ``auto_calibration`` and ``auto_seconds``.

    ``skipped`` (:func:`skipped_summary`) names each solver with no finite-error run at an NFE, why and in which
    cases, and each case has its own ``skipped`` (:func:`left_out`); a run that raised has a ``failure`` field.

    Needs diffusers (and torch) unless ``cfg.peers`` is empty (pndmkit's methods alone).
    """
    torch_threads = None
    if cfg.peers is None or cfg.peers:
        import torch

        from pndmkit.studies.peers import import_diffusers

        import_diffusers()
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small batches: threads cost more than they give, and the machine is shared
    try:
        # the study runs every method on every grid, few-step blow-ups included: it reports their errors,
        # so the StabilityWarning each such run draws (pndmkit/stability.py) would only flood the log
        with _one_blas_thread(), warnings.catch_warnings():
            warnings.simplefilter("ignore", StabilityWarning)
            cases = [_case(p, s, cfg, log) for p in cfg.problems for s in cfg.schedules]
    finally:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
    config = asdict(cfg)
    result = {"config": config, "by_nfe": by_nfe(cases, cfg.nfes),
              "by_nfe_shared_grids": by_nfe(cases, cfg.nfes, "best_shared_grids"),
              "by_nfe_peers_on_pndmkit_grids": by_nfe(cases, cfg.nfes, builtin_only=False),
              "skipped": skipped_summary(cases)}
    if optimized_methods(cfg) or optimized_solver_bases(cfg):
        result["by_nfe_optimized"] = by_nfe_optimized(cases, cfg.nfes)
        where = [f"{c['problem']}/{c['schedule']}" for c in cases]
        result["optimized_skipped"] = skipped_summary(cases, "optimized_skipped") + [
            {"side": "pndmkit", "method": m, "nfe_target": t, "reason": DEFAULT_LEFT_OUT_REASON, "cases": where}
            for m in optimized_left_out(cfg) for t in cfg.nfes]
        result["optimized_grids"] = optimized_grids(cases)
        if optimized_solver_bases(cfg):
            result["fitted_solvers"] = fitted_solvers(cases)
    if cfg.auto:
        result["by_nfe_auto"] = by_nfe_auto(cases, cfg.nfes)
    _drop_scratch(cases)
    return {**result, "cases": cases}


def with_options(cfg: CompareConfig, **changes: Any) -> CompareConfig:
    """``cfg`` with the given fields replaced, ignoring those that are None."""
    return replace(cfg, **{k: v for k, v in changes.items() if v is not None})


# ------------------------------------------------------------------------------------------------------
# the head-to-head on a network
#: noises of a network head-to-head by default: one reference block (:data:`pndmkit.studies.targets.REFERENCE_BLOCK`)
MODEL_NOISES = 32

#: DOP853 tolerance of the short solves that carry a network's reference to a run's own start or end level
LEVEL_RTOL = 1e-10


class _CountedNetwork:
    """The network as the harness calls it: ``model(x, t)`` and ``eps(x, t, schedule)`` on float64 numpy arrays,
    every call counted (``calls``) with the times it was given (``times``)."""

    def __init__(self, problem: Any) -> None:
        self.problem, self.calls, self.times = problem, 0, []

    def __call__(self, x: Any, t: float) -> np.ndarray:
        self.calls += 1
        self.times.append(float(t))
        return self.problem.eps_numpy(np.array(x, dtype=np.float64), float(t))  # a writable copy for torch

    def eps(self, x: Any, t: float, schedule: NoiseSchedule) -> np.ndarray:
        return self(x, t)


def _carry(problem: Any, schedule: NoiseSchedule, x: np.ndarray, s_from: float, s_to: float
           ) -> tuple[np.ndarray, float, int]:
    """``x`` at level ``s_from`` carried along the network's ODE to ``s_to`` (a short interval): DOP853 at
    :data:`LEVEL_RTOL` and at half of it (:func:`pndmkit.studies.real.schedule_flow`: ``x`` is a state of
    ``schedule``, scaled to and from the VP state off VP); returns the tighter end point, the largest change
    between the two and the network evaluations spent. The network is told
    :func:`~pndmkit.studies.peers.time_of_level` of each level."""
    from pndmkit.studies.peers import time_of_level
    from pndmkit.studies.real import schedule_flow

    return schedule_flow(problem, schedule, x, s_from, s_to, lambda s: time_of_level(schedule, s), rtol=LEVEL_RTOL,
                         scale=0.1)


def compare_model(model: Any = "digits", cfg: CompareConfig = CompareConfig(), *, first: int = 0,
                  cache: Any = None, rebuild_cache: bool = False, schedule: Optional[NoiseSchedule] = None,
                  shape: Optional[Sequence[int]] = None, given_grids: Optional[dict] = None,
                  peer_times: str = "level", sample_errors: bool = False,
                  log: Callable[[str], None] = lambda s: None) -> dict:
    r"""The head-to-head on a network: pndmkit's methods and diffusers' schedulers, equal NFE, same noises.

    Every pndmkit method of ``cfg`` on every grid kind (as :func:`compare` plans them) and every peer of
    :data:`pndmkit.studies.peers.PEERS` in ``cfg`` with each of its options, driving the same network
    (:func:`pndmkit.studies.peers.run_scheduler`, the diffusers scheduler's own ``step``), start from the same noises ``x_T`` and are scored, as on the
    mixtures, by the RMS over samples and pixels of their end point in ``y = x / sqrt(abar)`` against the
    converged reference of the network's probability-flow ODE (:func:`pndmkit.studies.real.model_study`, DOP853
    in float64 at ``rtol = 1e-8``, cached per block of 32 noises): on the whole interval, from the schedule's
    first time (``t = 999`` on the DDPM table) to its last (``abar = 1``, where ``y = x``). Ground rules:

    * **Same noises, same start.** Noise ``i`` is ``pndmkit.noise.per_sample_noise`` noise ``first + i`` with
      seed ``cfg.seed``, the noises whose references ``analysis/results/real_cache`` holds (0-287, seed 0, for
      the shipped ``digits``). A run whose grid starts at the top level (a peer's float32 top within
      :data:`TOP_TOLERANCE` of it) starts on the reference trajectory at its own first level: ``x_T`` carried
      there by a short converged solve. A grid that starts lower (``leading``) is given ``x_T`` itself at its
      first timestep, as in practice.
    * **Each run's own end level.** A run that ends elsewhere than the reference (DEIS at ``abar_0``,
      ``s = 0.01``) is compared with the reference carried there from its end point by a short converged
      solve (DOP853 at :data:`LEVEL_RTOL`, its error estimated at half of it, reported in
      ``reference_points``).
    * **What the network is told.** pndmkit's runs tell the network the grid time ``t`` of each evaluation
      (non-integer on the continuous grid kinds), the reference tells it ``t_from_s(s)``, and by default
      (``peer_times="level"``) a peer's call tells it the time whose level is the one the scheduler assumes
      for that call (its float32 ``alphas_cumprod`` or ``sigmas`` entry), as on the mixtures, where a peer gets
      the exact eps at its own level: so every solver integrates the same ODE and no peer is charged for how
      it turns levels into timesteps. In use diffusers passes the UNet its ``timesteps`` entry instead, which
      DPM-Solver, UniPC and DEIS round to an integer on Karras and Lu-lambda grids (up to half a training step
      from the level they then assume) and the sigma schedulers interpolate in log-sigma (up to 0.02 steps):
      ``peer_times="timestep"`` runs that (:func:`pndmkit.studies.peers.peer_sample`: the integer timestep as
      the table's time, else ``t_from_s`` of the level). The network runs in float64 on float64 samples; the
      peers' tables stay float32, as in diffusers.

    Parameters
    ----------
    model : str, path, Checkpoint, NetworkModel or callable
        The network, as :func:`pndmkit.studies.real.load_model` accepts it (default: the shipped ``"digits"``
        UNet); not a built-in Gaussian-mixture problem (for those, :func:`compare`).
    cfg : CompareConfig
        ``methods``, ``peers``, ``nfes``, ``grids`` and ``seed`` as in :func:`compare`; ``n`` is the number of
        noises (default :data:`MODEL_NOISES`); ``problems`` and ``schedules`` are not used (the network has its
        own schedule). ``optimized_grids`` and ``optimized_solvers`` are refused: optimising a grid on a network
        costs CPU-hours (``python -m analysis.grid_opt``), and a fitted solver starts with that search.
    first : int
        Index of the first noise.
    cache : path, optional
        Folder of cached references (:func:`pndmkit.studies.real.model_study`); an uncached block of 32 noises
        costs 17-28 CPU-minutes on the digits UNet (about 12,000-12,500 evaluations of the batch; the upper
        end measured on a loaded machine), and ``log`` says so (with the timed cost of one evaluation) before it
        is solved. A folder that does not exist is created, as by every ``--cache`` user
        (:func:`pndmkit.studies.real.check_cache`), and ``log`` says so. ``None``: solve, keep nothing.
    rebuild_cache : bool
        Solve a damaged cached reference again instead of refusing it.
    schedule : NoiseSchedule, optional
        The network's schedule (required for a bare callable ``model(x, t)``; default: the checkpoint's).
    shape : sequence of int, optional
        Shape of one sample (default: the checkpoint's).
    peer_times : {"level", "timestep"}
        What a peer's call tells the network (above): the time of the scheduler's own level, or its timestep.
    given_grids : dict, optional
        ``{method: {nfe: times}}``: grids of pndmkit methods for this network (e.g. fitted by
        :func:`pndmkit.studies.grid_opt.optimize` on other noises), each a decreasing sequence of times from the
        schedule's first to its last. They run through the same harness on the same noises and are reported
        apart, as :func:`compare`'s optimised grids are: rows with option ``"optimized"`` in the case's
        ``optimized`` list, summarised by ``by_nfe_optimized`` (:func:`by_nfe_optimized`), in none of the other
        summaries. Each key must be one of ``cfg.nfes``, and each grid must have the step count the method's
        built-in grids have at that NFE (:func:`pndmkit.methods.steps_for_nfe`), so that it runs at equal NFE.
    log : callable
        Receives progress lines.
    sample_errors : bool
        Keep, in every row with a finite error, its per-sample mean squared errors (over pixels, in ``y``; in the
        order of the noises) as the list ``sample_errors``, from which any ratio's interval can be recomputed
        (:func:`pndmkit.studies.statistics.ratio_interval`); default: left out, the summaries' intervals only.

    Returns
    -------
    dict
        JSON-serialisable: ``config`` (``cfg`` without ``problems`` and ``schedules``, which a network run does
        not use, plus ``model``, ``first``, ``n``, ``cache``, ``peer_times``), ``by_nfe``,
        ``by_nfe_shared_grids``, ``by_nfe_peers_on_pndmkit_grids`` and ``skipped`` (as :func:`compare`'s, over the
        one case)
        and ``cases``: one case with ``problem`` (the network's name), ``schedule``, ``n``, ``first``,
        ``reference_error`` (the cached reference's), ``reference_points`` (the short solves), ``best``,
        ``best_shared_grids``, ``runs`` and, with ``given_grids``, ``optimized``; then also ``by_nfe_optimized``. Every row has ``model_calls``, the network evaluations the run made,
        counted at the network (equal to its ``nfe``). No ``sw`` / ``nll``: a network has no density.

    Raises
    ------
    TypeError
        ``cfg`` is not a :class:`CompareConfig`.
    UsageError
        Naming ``model`` (not a network), ``first`` (not an integer >= 0), ``optimized_grids``,
        ``optimized_solvers``, ``auto``,
        ``peer_times``, ``given_grids`` (an unknown or adaptive method, a key not in ``cfg.nfes``, a grid that is
        not decreasing from the schedule's first time to its last, or whose step count is not the one its
        method runs at its key's NFE), ``cache``, ``shape`` (samples the network does not take), or
        ``nfes`` / ``methods`` / ``peers`` when no solver fits the budgets.
    """
    from pndmkit.studies.monitor import duration
    from pndmkit.studies.targets import REFERENCE_BLOCK, REFERENCE_RTOL, StudyTarget, is_problem, reference_blocks

    if not isinstance(cfg, CompareConfig):
        raise TypeError(f"cfg must be a CompareConfig (e.g. CompareConfig(n=2)), got {type(cfg).__name__} {cfg!r}")
    if is_problem(model):
        raise UsageError("model", f"model {model!r} is a built-in Gaussian-mixture problem, not a network; run "
                                  f"compare(CompareConfig(problems=({model!r},))) (pndmkit compare --problem) for it")
    if isinstance(first, bool) or not isinstance(first, (int, np.integer)) or first < 0:
        raise UsageError("first", f"first must be an integer >= 0 (the index of the first noise), got {first!r}")
    if optimized_methods(cfg):
        raise UsageError("optimized_grids", "optimized_grids is not run on a network: optimising a grid there costs "
                                            "CPU-hours (python -m analysis.grid_opt); leave it off")
    if optimized_solver_bases(cfg):
        raise UsageError("optimized_solvers", "optimized_solvers is not run on a network: fitting a solver there "
                                              "starts with a grid search that costs CPU-hours; leave it off")
    if cfg.auto:
        raise UsageError("auto", "auto is not run on a network: its calibration noises would each need a converged "
                                 "reference (17-28 CPU-minutes per 32 on the digits UNet); leave it off")
    n = MODEL_NOISES if cfg.n is None else int(cfg.n)
    tic = time.perf_counter()
    given = _check_given_grids(given_grids, cfg.nfes)
    if peer_times not in ("level", "timestep"):
        raise UsageError("peer_times", f"peer_times must be 'level' or 'timestep', got {peer_times!r}")
    new_cache = cache is not None and isinstance(cache, (str, os.PathLike)) and bool(os.fspath(cache)) \
        and not os.path.exists(cache)
    try:
        target = StudyTarget.resolve(model, schedule, shape=shape, cache=cache, seed=cfg.seed,
                                     rebuild_cache=rebuild_cache)
    except UsageError as exc:
        if "problem_or_model" in exc.params:
            raise UsageError(("model",) + tuple(p for p in exc.params if p != "problem_or_model"),
                             str(exc).split("; or one of the built-in problems")[0]) from exc
        if "t_start" in exc.params:  # a network whose schedule starts at alpha = 0 (flow matching from t = 1)
            raise UsageError("model", f"{str(exc).split('; ', 1)[0]}; compare runs every sampler over the "
                                      f"network's whole schedule and has no t_start: measure the methods from "
                                      f"just below with pndmkit order --model ... --t-start (e.g. 0.999 on flow "
                                      f"matching; pndmkit.studies.real.model_study(..., t_start=0.999))") from exc
        raise
    if new_cache:  # created as every --cache user creates it (pndmkit.studies.real.check_cache): said here
        log(f"created the cache folder {os.fspath(cache)} (it did not exist): references solved here are kept there")
    schedule = target.schedule
    for method, by in given.items():  # the given grids' times, checked before any reference is solved
        for key, grid in by.items():
            _given_times(schedule, method, key, grid)
    pieces = reference_blocks(first, n)
    uncached = [not target.is_cached(i, k) for i, k in pieces]
    each = None  # seconds of one network evaluation of one noise, once timed
    probed = 0
    if any(uncached) or shape is not None:  # one evaluation up front: the shape checked, a solve's cost timed
        x_probe = target.noises(first, min(n, REFERENCE_BLOCK))
        each = _probe_network(target, x_probe, shape) / len(x_probe)
        probed = 1 + PROBE_TIMINGS  # the warm-up call and the timed ones
    blocks = []
    for (i, k), solve in zip(pieces, uncached):
        if solve:  # said before the solve: it costs minutes
            where = "no cache (cache=None)" if target.cache is None else f"not in the cache {target.cache}"
            log(f"reference of noises {i}-{i + k - 1}: {where}: solving it now (2 DOP853 solves at rtol "
                f"{REFERENCE_RTOL:g}; DOP853 chooses how many network evaluations, about "
                f"{REFERENCE_BLOCK_EVALUATIONS} for a block of 32 digits noises): about {duration(1000 * each * k)} "
                f"per 1000 evaluations of {k} noises ({1000 * each * k:.1f} ms each, timed on one thread)")
        t0 = time.perf_counter()
        blocks.append(target.study(i, k))
        how = "cached" if not blocks[-1].reference_nfe else \
            f"solved ({blocks[-1].reference_nfe} evaluations, {time.perf_counter() - t0:.0f} s)"
        log(f"reference of noises {i}-{i + k - 1}: {how}")
    x_T = np.concatenate([b.x_T for b in blocks])
    x_ref = np.concatenate([b.reference for b in blocks])
    ref_error = max(b.reference_error for b in blocks)
    name = blocks[0].problem_name
    net = _CountedNetwork(blocks[0].problem)
    torch_threads = None
    if cfg.peers is None or cfg.peers:
        import torch

        from pndmkit.studies.peers import import_diffusers

        import_diffusers()
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the machine is shared; the study's cost is stated in single-thread time
    try:
        with _one_blas_thread(), warnings.catch_warnings():
            warnings.simplefilter("ignore", StabilityWarning)
            case = _model_case(net, name, schedule, x_T, x_ref, ref_error, first, cfg, given, peer_times, log,
                               seconds_per_noise=each)
            case["timing_evaluations"] += probed
    finally:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
    log(f"done in {time.perf_counter() - tic:.0f} s")
    # the mixtures' fields a network run does not use are left out (the network has its own schedule)
    config = {**{k: v for k, v in asdict(cfg).items() if k not in ("problems", "schedules")}, "n": n, "model": name if not isinstance(model, (str, os.PathLike)) else os.fspath(model),
              "first": first, "cache": None if cache is None else os.fspath(cache), "peer_times": peer_times}
    if given:
        config["given_grids"] = {m: {str(k): list(v) for k, v in by.items()} for m, by in given.items()}
    result = {"config": config, "by_nfe": by_nfe([case], cfg.nfes),
              "by_nfe_shared_grids": by_nfe([case], cfg.nfes, "best_shared_grids"),
              "by_nfe_peers_on_pndmkit_grids": by_nfe([case], cfg.nfes, builtin_only=False),
              "skipped": skipped_summary([case])}
    if given:
        result["by_nfe_optimized"] = by_nfe_optimized([case], cfg.nfes)
    _drop_scratch([case], keep=bool(sample_errors))
    return {**result, "cases": [case]}


#: network evaluations of the two DOP853 solves of one shipped reference block (32 digits noises; the shipped
#: blocks took 12076 to about 12000): the order of a solve's cost, said before one starts
REFERENCE_BLOCK_EVALUATIONS = 12000


#: timed network evaluations of the cost said before a reference solve (after one warm-up call)
PROBE_TIMINGS = 2


def _probe_network(target: Any, x: np.ndarray, shape: Optional[Sequence[int]]) -> float:
    """Seconds of one network evaluation of ``x`` at the top time on one thread: the fastest of
    :data:`PROBE_TIMINGS` calls after a first one that warms the network up
    (:meth:`pndmkit.studies.monitor.StudyMonitor.time_evaluation`); every output is checked, and a network that
    refuses samples of the given ``shape`` is a :class:`UsageError` naming ``shape``."""
    from pndmkit.studies.monitor import StudyMonitor
    from pndmkit.studies.real import NetworkProblem, load_model

    loaded = load_model(target.source, target.schedule, shape=target.shape)
    network = NetworkProblem(loaded.model, x.shape[1:], loaded.name)

    def checked(x: np.ndarray, t: float) -> np.ndarray:
        try:
            out = network.eps_numpy(x, t)
        except (ValueError, RuntimeError) as exc:
            if shape is None:
                raise
            raise UsageError("shape", f"shape={tuple(shape)!r} is not a sample shape the network takes: "
                                      f"{exc}") from exc
        if tuple(np.shape(out)) != x.shape:
            raise UsageError("shape", f"the network returns eps of shape {tuple(np.shape(out))} for samples of shape "
                                      f"{x.shape} (shape={None if shape is None else tuple(shape)!r})")
        return out

    threads = None
    try:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # single-thread time, as the study states its cost: threads on a shared machine
    except ModuleNotFoundError:  # pragma: no cover - a numpy network
        pass
    try:
        return StudyMonitor(log=lambda line: None).time_evaluation(checked, x, float(target.schedule.t_start),
                                                                   repeats=PROBE_TIMINGS)
    finally:
        if threads is not None:
            torch.set_num_threads(threads)


def _check_given_grids(given: Any, nfes: Sequence[int]) -> dict[str, dict[int, tuple[float, ...]]]:
    """``given_grids`` of :func:`compare_model` as ``{method: {nfe: times}}``; its shape, keys and step counts
    checked here (before any reference is solved), its times against the schedule when the runs are planned.

    Each key must be one of ``nfes`` and each grid must have the step count every built-in run of its method
    has at that NFE (:func:`pndmkit.methods.steps_for_nfe`), so that it is compared at equal NFE."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise UsageError("given_grids", f"given_grids must be a dict {{method: {{nfe: times}}}}, got "
                                        f"{type(given).__name__}")
    out: dict[str, dict[int, tuple[float, ...]]] = {}
    for method, by in given.items():
        if method not in compare_methods():
            raise UsageError("given_grids", f"given_grids names {method!r}, which is not a fixed-step method; known: "
                                            f"{', '.join(compare_methods())}")
        if not isinstance(by, dict):
            raise UsageError("given_grids", f"given_grids[{method!r}] must map NFE to times, got {by!r}")
        out[method] = {}
        for nfe, times in by.items():
            try:
                key, grid = int(nfe), tuple(float(t) for t in times)
            except (TypeError, ValueError) as exc:
                raise UsageError("given_grids", f"given_grids[{method!r}][{nfe!r}] must be times under an integer "
                                                f"NFE: {exc}") from exc
            where = f"given_grids[{method!r}][{nfe!r}]"
            if key not in nfes:
                raise UsageError("given_grids", f"{where}: NFE {key} is not among the NFEs that run (nfes: "
                                                f"{', '.join(map(str, nfes))}); key each grid by one of them")
            steps = len(grid) - 1
            want = steps_for_nfe(compare_spec(method), key)
            if steps >= 1 and want is not None and steps != want:
                cost = compare_spec(method).nfe(steps) if steps >= 1 else 0
                raise UsageError("given_grids", f"{where} has {steps} steps, whose run costs {method} {cost} model "
                                                f"calls, not the NFE {key} of its key: at NFE {key} {method} runs "
                                                f"{want} steps ({compare_spec(method).nfe(want)} model calls); give a grid "
                                                f"of {want + 1} times")
            out[method][key] = grid
    return out


def _given_times(schedule: NoiseSchedule, method: str, target: int, grid: Sequence[float]) -> np.ndarray:
    """A given grid's times, refused (naming ``given_grids``) unless they decrease from the schedule's first time
    to its last."""
    times = np.asarray(grid, dtype=np.float64)
    if times.size < 2 or not np.all(np.diff(times) < 0) or times[0] != schedule.t_start \
            or times[-1] != schedule.t_end:
        raise UsageError("given_grids", f"given_grids[{method!r}][{target}] must decrease from the schedule's first "
                                        f"time {schedule.t_start:g} to its last {schedule.t_end:g}, got "
                                        f"{times[0]:g} .. {times[-1]:g} ({times.size} times)")
    return times


def _plan_given(net: Any, schedule: NoiseSchedule, given: dict[str, dict[int, tuple]], nfes: Sequence[int]
                ) -> list[_Run]:
    """The runs of ``given_grids`` at the NFEs of ``nfes``, reported apart (option ``"optimized"``)."""
    runs = []
    for method, by in given.items():
        integrator = compare_spec(method).build(schedule)
        for target, grid in sorted(by.items()):
            if target not in nfes:
                continue
            times = _given_times(schedule, method, target, grid)
            where = f"given_grids[{method!r}][{target}]"
            steps = times.size - 1
            nfe = integrator.nfe(steps)
            if nfe > target:
                raise UsageError("given_grids", f"{where} has {steps} steps, which cost {method} {nfe} model calls, "
                                                f"more than {target}")
            runs.append(_Run("pndmkit", method, "optimized", target, steps, nfe, _s(schedule, times[0]),
                             _s(schedule, times[-1]), _launcher(net, schedule, integrator, times), optimized=True,
                             extra={"times": [float(t) for t in times]}))
    return runs


def _model_case(net: _CountedNetwork, name: str, schedule: NoiseSchedule, x_T: np.ndarray, x_ref: np.ndarray,
                ref_error: float, first: int, cfg: CompareConfig, given: dict, peer_times: str,
                log: Callable[[str], None], seconds_per_noise: Optional[float] = None) -> dict:
    """Plan, carry the reference to every level a run starts or ends at, run and score (:func:`compare_model`).
    The cost said up front uses ``seconds_per_noise`` (the network timed already), else one timed evaluation."""
    skips: list[dict] = []
    runs = _plan_pndmkit(net, schedule, cfg, skips) + _plan_given(net, schedule, given, cfg.nfes)
    if cfg.peers is None or cfg.peers:
        runs += _plan_peers(net, schedule, cfg, model=net, peer_times=peer_times, skipped=skips)
    runs = _only_candidates(runs, cfg)
    if not runs:
        raise UsageError(("nfes", "methods", "peers"), f"no solver runs within nfes={list(cfg.nfes)}; give larger "
                                                       f"nfes or other methods")
    done, started = [0], time.perf_counter()
    for r in runs:  # count the network's evaluations of each run where they happen
        def launch(x, inner=r.launch, extra=r.extra):
            before = net.calls
            try:
                return inner(x)
            finally:
                extra["model_calls"] = net.calls - before
                done[0] += 1
                if done[0] % 100 == 0:
                    log(f"  {done[0]} of {len(runs)} runs in {time.perf_counter() - started:.0f} s")

        r.launch = launch
    s_top, s_bottom = _s(schedule, schedule.t_start), _s(schedule, schedule.t_end)
    on_top = [r.s_start >= s_top * (1.0 - TOP_TOLERANCE) for r in runs]
    ref = {s_top: x_T, s_bottom: x_ref}
    points = []
    wanted = sorted({(r.s_start, s_top) for r, top in zip(runs, on_top) if top} |
                    {(r.s_end, s_bottom) for r in runs})
    for level, anchor in wanted:
        if level in ref:
            continue
        t0 = time.perf_counter()
        ref[level], err, nfe = _carry(net.problem, schedule, ref[anchor], anchor, level)
        points.append({"s": level, "from_s": anchor, "error": err, "nfe": nfe, "seconds": time.perf_counter() - t0})
        log(f"reference carried from s = {anchor:.12g} to {level:.12g} (abar {1 / (1 + anchor * anchor):.12g} to "
            f"{1 / (1 + level * level):.12g}): {nfe} evaluations, change at half the tolerance {err:.1e}")
    cost = sum(r.nfe for r in runs)
    if seconds_per_noise is None:
        t0 = time.perf_counter()
        net.problem.eps_numpy(x_T.copy(), float(schedule.t_start))  # one timed evaluation: the cost, said up front
        each = time.perf_counter() - t0
    else:
        each = seconds_per_noise * len(x_T)
    log(f"{name}: {len(runs)} runs planned, {cost} network evaluations of {len(x_T)} noises at {1000 * each:.0f} ms "
        f"each (timed): about {cost * each / 60:.0f} minutes")
    best, shared, _, all_rows, optimized, _ = _score_runs(
        runs, on_top, lambda r, top: ref[r.s_start].copy() if top else x_T.copy(), ref, log)

    def order(rows: Iterable[dict]) -> list[dict]:
        return sorted(rows, key=lambda r: (r["nfe_target"], r["side"], r["error"]))

    case = {"problem": name, "schedule": repr(schedule), "n": len(x_T), "first": first, "sw_floor": None,
            "reference_error": ref_error, "reference_points": points,
            "timing_evaluations": int(seconds_per_noise is None),
            "best": order(best.values()),
            "best_shared_grids": order(shared.values()), "runs": all_rows,
            "skipped": left_out(_candidate_skips(skips, cfg), all_rows)}
    if given:
        case["optimized"] = order(optimized)
    return case
