r"""Any pndmkit method as a diffusers scheduler: :class:`PNDMKitScheduler`.

Swap the sampler of any pipeline whose scheduler config is a DDPM-style one (``DDPMScheduler``,
``DDIMScheduler``, ``PNDMScheduler``, ... configs)::

    pipe.scheduler = PNDMKitScheduler.from_config(pipe.scheduler.config, method="f-pndm-s")

The scheduler is a thin driver of pndmkit's ask/tell protocol (docs/protocol.md): ``set_timesteps`` lays
out the grid and lists every model evaluation of the method on it (Runge-Kutta stages included, so
``len(scheduler.timesteps)`` is the method's NFE), and each ``step(model_output, timestep, sample)`` tells
the output to an immutable :class:`~pndmkit.run.Run` and returns the point of the next evaluation (or, after
the last one, the final sample). All sampler state lives in that run: ``set_timesteps`` starts over, and two
schedulers made from one config share nothing.

How the config is read
----------------------
=========================  ==============================================================================
config field               pndmkit
=========================  ==============================================================================
``beta_schedule``          ``linear`` / ``scaled_linear`` / ``squaredcos_cap_v2``: :class:`DiscreteVP`
                           ``.linear`` / ``.quad`` / ``.cosine`` (tables in float64; diffusers' own tables
                           are float32, so its schedulers sit about 1e-6 away)
``trained_betas``          ``DiscreteVP(trained_betas)`` (its length must be ``num_train_timesteps``)
``prediction_type``        ``epsilon`` / ``v_prediction`` / ``sample`` -> ``eps`` / ``v`` / ``x0``, converted
                           to ``eps`` at each evaluation, before any combination across stages or steps
``timestep_spacing``       grid kind of :func:`pndmkit.grids.make_grid`: ``leading`` / ``linspace`` /
                           ``trailing`` as in diffusers, or a pndmkit kind (``karras``, ``logsnr``, ...)
``steps_offset``           ``offset`` of a ``leading`` grid (diffusers ignores it for other spacings; so do we)
``set_alpha_to_one``       last time ``t = -1`` (``abar = 1``) if true, ``t = 0`` (``abar_0``) if false;
                           configs without it (``DDPMScheduler``) end at ``abar = 1``, as DDPM does
=========================  ==============================================================================

A config field that would change the result and that pndmkit cannot honour (``clip_sample``,
``thresholding``, ``rescale_betas_zero_snr``, Karras/exponential/beta sigmas of sigma schedulers, ...) is
refused with a message naming the field; override it in ``from_config(config, method=..., field=value)``.
Fields that only choose the *replaced* scheduler's own method (``variance_type``, ``skip_prk_steps``,
``solver_order``, ...) are dropped, as diffusers drops them when it converts between its schedulers.

Timesteps given to the network
------------------------------
``scheduler.timesteps`` holds the evaluation times in the training-index units of the config. They are
``int64`` when every evaluation falls on a training index (DDIM-like methods on ``leading`` grids, PRK
midpoints of an even stride), as diffusers' own schedulers give; otherwise (PRK midpoints of an odd stride,
stages placed in ``s``, Karras grids) they are ``float32`` with the fractional index. diffusers' UNets embed
the timestep in float32 either way, so an integer timestep and its float are the same input to them; the
noise level of each evaluation is read from pndmkit's smooth extension of the table (exact at every index).

Image-to-image
--------------
:meth:`PNDMKitScheduler.add_noise` noises a clean sample to any timestep, and
:meth:`~PNDMKitScheduler.set_begin_index` (or a first ``step`` at a later timestep) starts the method at the
grid time where that evaluation begins a step. The method then starts afresh there (a multistep method warms
up again), so a pipeline that slices ``scheduler.timesteps`` itself works where the fresh run's evaluations
are the remaining ones: methods with the same evaluations in every step (``ddim``, ``pie``, ``prk``,
``prk-s``, ``ipndm``, ``ipndm-v``, ``euler``, ``rk4``). Others are refused there with a message.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional, Union

import numpy as np

try:
    import torch
    from diffusers.configuration_utils import ConfigMixin, register_to_config
    from diffusers.schedulers.scheduling_utils import SchedulerMixin, SchedulerOutput
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("pndmkit.integrations.diffusers needs diffusers and torch: "
                      "pip install 'pndmkit[peers,torch]'") from exc

from pndmkit.adaptive import AdaptiveIntegrator
from pndmkit.grids import GRIDS, make_grid
from pndmkit.integrator import Integrator
from pndmkit.methods import DEFAULT_METHOD, MethodSpec, get_method
from pndmkit.run import Run
from pndmkit.schedules import DiscreteVP

__all__ = ["PNDMKitScheduler", "schedule_from_config", "evaluation_times", "BETA_SCHEDULES", "PREDICTION_TYPES",
           "UNHONOURED"]

#: diffusers ``beta_schedule`` -> the DiscreteVP constructor with the same table
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
#: diffusers ``prediction_type`` -> pndmkit's prediction name
PREDICTION_TYPES = {"epsilon": "eps", "v_prediction": "v", "sample": "x0"}
#: config fields pndmkit cannot honour at any value but the one given here, and why
UNHONOURED = {
    "clip_sample": (False, "clips the x0 estimate of DDPM/DDIM; pndmkit's methods integrate the probability-flow "
                           "ODE unclipped"),
    "thresholding": (False, "dynamic thresholding of the x0 estimate is not part of pndmkit's methods"),
    "rescale_betas_zero_snr": (False, "a zero terminal SNR gives abar = 0 at the last training index, where the "
                                      "ODE's noise-to-signal ratio is infinite; pndmkit's schedules need abar > 0"),
    "use_karras_sigmas": (False, "a Karras grid is timestep_spacing='karras' here"),
    "use_exponential_sigmas": (False, "exponential sigma grids are not offered; use timestep_spacing='logsnr'"),
    "use_beta_sigmas": (False, "beta-distributed sigma grids are not offered"),
    "use_lu_lambdas": (False, "a grid uniform in log-SNR is timestep_spacing='logsnr' here"),
    "use_dynamic_shifting": (False, "resolution-dependent time shifts are for flow-matching models"),
}

_MARKER = "integrator:"


def schedule_from_config(config: Any) -> DiscreteVP:
    """The :class:`~pndmkit.schedules.DiscreteVP` a DDPM-style scheduler config describes.

    Parameters
    ----------
    config : mapping
        A diffusers scheduler config (``pipe.scheduler.config``) or any mapping with its fields
        (``num_train_timesteps``, ``beta_start``, ``beta_end``, ``beta_schedule``, ``trained_betas``); missing
        fields take diffusers' defaults.

    Raises
    ------
    ValueError
        An unknown ``beta_schedule``, or ``trained_betas`` whose length is not ``num_train_timesteps``.
    """
    get = config.get if hasattr(config, "get") else lambda key, default=None: getattr(config, key, default)
    T = int(get("num_train_timesteps", 1000))
    betas = get("trained_betas", None)
    if betas is not None:
        betas = np.asarray(betas, dtype=np.float64)
        if betas.shape != (T,):
            raise ValueError(f"trained_betas has {betas.size} values but num_train_timesteps={T}; they must agree")
        return DiscreteVP(betas)
    kind = get("beta_schedule", "linear")
    start, end = float(get("beta_start", 0.0001)), float(get("beta_end", 0.02))
    if kind == "linear":
        return DiscreteVP.linear(T, start, end)
    if kind == "scaled_linear":
        return DiscreteVP.quad(T, start, end)
    if kind == "squaredcos_cap_v2":
        return DiscreteVP.cosine(T)
    raise ValueError(f"beta_schedule={kind!r} cannot be honoured: pndmkit reads {BETA_SCHEDULES} or trained_betas")


def evaluation_times(integrator: Integrator, grid: Any) -> tuple[list[float], dict[int, int]]:
    """Every model evaluation time of ``integrator`` on ``grid``, by a dry run of the ask/tell protocol.

    Returns
    -------
    times : list of float
        The evaluation times in order (their number is the NFE).
    starts : dict
        ``{k: j}`` for each evaluation ``k`` that is the first of grid step ``j`` and lies at ``grid[j]``.

    The dry run is done once per integrator and grid (the 32 most recent are kept): a pipeline calls
    ``set_timesteps`` before every batch.
    """
    grid = np.asarray(grid, dtype=np.float64)
    try:
        hash(integrator)
    except TypeError:  # an unhashable integrator: no cache
        times, starts = _dry_run(integrator, grid)
    else:
        times, starts = _cached_dry_run(integrator, grid.tobytes())
    return list(times), dict(starts)


@lru_cache(maxsize=32)
def _cached_dry_run(integrator: Integrator, grid: bytes) -> tuple[tuple[float, ...], tuple[tuple[int, int], ...]]:
    times, starts = _dry_run(integrator, np.frombuffer(grid, dtype=np.float64))
    return tuple(times), tuple(starts.items())


def _dry_run(integrator: Integrator, grid: Any) -> tuple[list[float], dict[int, int]]:
    run = integrator.start(np.zeros(1), grid)
    zero = np.zeros(1)
    times: list[float] = []
    starts: dict[int, int] = {}
    while not run.done:
        t = run.ask()[1]
        if not run.told and t == run.t:
            starts[len(times)] = run.index
        times.append(t)
        run = run.tell(zero)
    return times, starts


def _integrator(method: Any, schedule: DiscreteVP) -> Integrator:
    if isinstance(method, str) and method.startswith(_MARKER):
        raise ValueError(f"method={method!r} is the config of a hand-built Integrator, which a config cannot "
                         f"restore: pass method= the Integrator again, or register it (pndmkit.register_method) "
                         f"and pass its name")
    if isinstance(method, Integrator):
        theirs = method.transfer.schedule
        if not (isinstance(theirs, DiscreteVP) and np.array_equal(theirs.betas, schedule.betas)):
            raise ValueError(f"method is an Integrator built on {theirs!r}, but the config describes {schedule!r}: "
                             f"build it on pndmkit.integrations.diffusers.schedule_from_config(config)")
        return method
    spec = method if isinstance(method, MethodSpec) else get_method(method)
    built = spec.build(schedule)
    if isinstance(built, AdaptiveIntegrator):
        raise ValueError(f"method={spec.name!r} is adaptive (it chooses its own steps), so it has no timesteps to "
                         f"give a pipeline; choose a fixed-step method")
    return built


def _check_config(config: dict) -> None:
    """Refuse the fields of :data:`UNHONOURED` at a value other than the harmless one, naming the field."""
    for field, (ok, why) in UNHONOURED.items():
        value = config.get(field, ok)
        if value is not None and value != ok:
            raise ValueError(f"{field}={value!r} cannot be honoured: {why}. Override it: "
                             f"PNDMKitScheduler.from_config(config, method=..., {field}={ok!r})")


class PNDMKitScheduler(SchedulerMixin, ConfigMixin):
    """A pndmkit method as a diffusers scheduler (see the module documentation for the config mapping).

    Parameters
    ----------
    method : str, MethodSpec or Integrator
        A name in :data:`pndmkit.METHODS` (any fixed-step one, hand-built registered methods included) or an
        :class:`~pndmkit.integrator.Integrator` built on :func:`schedule_from_config` of the same config.
    num_train_timesteps, beta_start, beta_end, beta_schedule, trained_betas
        The training noise schedule, as in diffusers.
    prediction_type : {"epsilon", "v_prediction", "sample"}
        What the network predicts.
    timestep_spacing : str
        ``"leading"``, ``"linspace"``, ``"trailing"`` or another grid kind of :data:`pndmkit.grids.GRIDS`.
    steps_offset : int
        Offset of ``leading`` grids.
    set_alpha_to_one : bool
        End at ``abar = 1`` (``t = -1``) rather than at ``abar_0`` (``t = 0``).

    Attributes
    ----------
    schedule : DiscreteVP
        The schedule of the config.
    integrator : Integrator
        The method.
    grid : numpy.ndarray or None
        The step times of the last :meth:`set_timesteps` (``N + 1`` of them).
    timesteps : torch.Tensor or None
        Every model evaluation time in order (``len`` = NFE).
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
    _compatibles: list[str] = []

    @register_to_config
    def __init__(self, method: Union[str, MethodSpec, Integrator] = DEFAULT_METHOD, num_train_timesteps: int = 1000,
                 beta_start: float = 0.0001, beta_end: float = 0.02, beta_schedule: str = "linear",
                 trained_betas: Optional[Any] = None, prediction_type: str = "epsilon",
                 timestep_spacing: str = "leading", steps_offset: int = 0, set_alpha_to_one: bool = True) -> None:
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type={prediction_type!r} cannot be honoured: pndmkit reads "
                             f"{tuple(PREDICTION_TYPES)}")
        if timestep_spacing not in GRIDS:
            raise ValueError(f"timestep_spacing={timestep_spacing!r} cannot be honoured: pndmkit reads {GRIDS}")
        if isinstance(steps_offset, bool) or not isinstance(steps_offset, (int, np.integer)) or steps_offset < 0:
            raise ValueError(f"steps_offset must be an integer >= 0, got {steps_offset!r}")
        if not isinstance(set_alpha_to_one, (bool, np.bool_)):
            raise ValueError(f"set_alpha_to_one must be True or False, got {set_alpha_to_one!r}")
        if trained_betas is not None:
            self.register_to_config(trained_betas=np.asarray(trained_betas, dtype=np.float64).tolist())
        self.schedule = schedule_from_config(self.config)
        self.integrator = _integrator(method, self.schedule)
        if not isinstance(method, str):  # a config is JSON: keep a registered name, mark anything else
            name = method.name
            registered = isinstance(method, MethodSpec) or (
                name in _registry() and repr(_registry()[name].build(self.schedule)) == repr(method))
            self.register_to_config(method=name if registered else f"{_MARKER}{name or 'unnamed'}")
        self.init_noise_sigma = 1.0
        self.num_inference_steps: Optional[int] = None
        self.grid: Optional[np.ndarray] = None
        self.timesteps: Optional[torch.Tensor] = None
        self._times: list[float] = []
        self._starts: dict[int, int] = {}
        self._begin_index: Optional[int] = None
        self._reset()

    def _reset(self) -> None:
        self._run: Optional[Run] = None
        self._last: Any = None  # the tensor the last step returned (the pipeline passes it back)
        self._nfe_before = 0  # evaluations of runs replaced by a restart (a pipeline that edited the sample)

    # -- configuration --------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Any = None, return_unused_kwargs: bool = False, **kwargs: Any) -> Any:
        """Build from any DDPM-style scheduler config; ``kwargs`` (``method=...``, overrides) win over it.

        Raises
        ------
        ValueError
            A field of :data:`UNHONOURED` at a value that changes the result, an unknown ``beta_schedule``
            or ``prediction_type``, or a bad ``method``.
        """
        if isinstance(config, dict):
            _check_config({**config, **kwargs})
            # checked and harmless: drop them, so that diffusers does not warn that they are ignored
            config = {key: value for key, value in config.items() if key not in UNHONOURED}
        else:
            _check_config(kwargs)
        for field in UNHONOURED:
            kwargs.pop(field, None)
        return super().from_config(config, return_unused_kwargs=return_unused_kwargs, **kwargs)

    def save_config(self, save_directory: Any, push_to_hub: bool = False, **kwargs: Any) -> None:
        """Write ``scheduler_config.json``; a hand-built, unregistered Integrator cannot be saved.

        Raises
        ------
        TypeError
            ``method`` is not a registered name.
        """
        if str(self.config.method).startswith(_MARKER):
            raise TypeError(f"method {self.config.method!r} is a hand-built Integrator, which a JSON config cannot "
                            f"hold: register it with pndmkit.register_method and pass its name")
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

    # -- the diffusers scheduler interface ------------------------------------------------------------
    def set_timesteps(self, num_inference_steps: Optional[int] = None, device: Any = None,
                      timesteps: Optional[Any] = None) -> None:
        """Lay out the grid and list every evaluation of the method on it; forget any previous loop.

        Parameters
        ----------
        num_inference_steps : int
            Steps ``N`` of the grid (``config.timestep_spacing``, ``steps_offset``, ``set_alpha_to_one``).
        device : str or torch.device, optional
            Where :attr:`timesteps` live.
        timesteps : sequence of int or float, optional
            Custom step start times, decreasing, as diffusers takes them (each step ends at the next; the last
            ends at ``t = -1`` or ``0`` by ``set_alpha_to_one``); then leave ``num_inference_steps`` unset.

        Raises
        ------
        ValueError
            Both or neither of ``num_inference_steps`` and ``timesteps``, or a grid the config cannot give
            (the message names the config fields).
        """
        cfg = self.config
        end = -1.0 if cfg.set_alpha_to_one else 0.0
        if (num_inference_steps is None) == (timesteps is None):
            raise ValueError("pass exactly one of num_inference_steps and timesteps")
        if timesteps is not None:
            starts = [float(t) for t in (timesteps.tolist() if hasattr(timesteps, "tolist") else timesteps)]
            if not starts or starts[-1] <= end:
                raise ValueError(f"timesteps must end above t={end:g}, where the last step ends "
                                 f"(set_alpha_to_one={cfg.set_alpha_to_one}); got {starts}")
            grid = np.array(starts + [end])
        else:
            kind = cfg.timestep_spacing
            offset = int(cfg.steps_offset) if kind == "leading" else None
            try:
                grid = make_grid(self.schedule, int(num_inference_steps), kind, offset=offset,
                                 final_alpha="one" if cfg.set_alpha_to_one else "first")
            except ValueError as exc:
                raise ValueError(f"num_inference_steps={num_inference_steps} with timestep_spacing={kind!r}, "
                                 f"steps_offset={cfg.steps_offset}, set_alpha_to_one={cfg.set_alpha_to_one}: "
                                 f"{exc}") from exc
        times, starts_at = evaluation_times(self.integrator, grid)
        self.grid = np.asarray(self.integrator.start(np.zeros(1), grid).times)
        self.num_inference_steps = len(self.grid) - 1
        self._times, self._starts = times, starts_at
        integral = all(float(t).is_integer() for t in times)
        values = torch.tensor(times, dtype=torch.int64 if integral else torch.float32)
        self.timesteps = values.to(device) if device is not None else values
        self._begin_index = None
        self._reset()

    def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
        """The network's input: the sample itself (variance-preserving coordinates)."""
        return sample

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Start the next loop at evaluation ``begin_index`` of :attr:`timesteps` (image-to-image strength).

        Raises
        ------
        ValueError
            ``begin_index`` is not the first evaluation of a grid step, or the method started there (afresh,
            warm-up included) would evaluate at other times than ``timesteps[begin_index:]``.
        """
        self._require_timesteps()
        self._starting_step(int(begin_index))
        self._begin_index = int(begin_index)

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: Any) -> torch.Tensor:
        """``sqrt(abar(t)) x0 + sqrt(1 - abar(t)) noise`` at each sample's timestep (``abar`` in float64)."""
        t = torch.as_tensor(timesteps).reshape(-1).tolist()
        abar = np.asarray(self.schedule.abar(np.asarray(t, dtype=np.float64)), dtype=np.float64).reshape(-1)
        shape = (-1,) + (1,) * (original_samples.ndim - 1)
        a = torch.tensor(np.sqrt(abar), dtype=original_samples.dtype, device=original_samples.device).reshape(shape)
        s = torch.tensor(np.sqrt(1.0 - abar), dtype=original_samples.dtype,
                         device=original_samples.device).reshape(shape)
        return a * original_samples + s * noise.to(original_samples.dtype)

    def step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, return_dict: bool = True,
             eta: float = 0.0, generator: Any = None, **unused: Any) -> Union[SchedulerOutput, tuple]:
        """Tell the model output at ``timestep``; return the point of the next evaluation (or the final sample).

        Parameters
        ----------
        model_output : torch.Tensor
            The network's prediction (``config.prediction_type``) at ``(sample, timestep)``.
        timestep : int, float or torch.Tensor
            The current element of :attr:`timesteps`.
        sample : torch.Tensor
            The point the scheduler returned last (or the initial noise). A pipeline that changed it between
            steps (inpainting) is followed where the change falls at the start of a step.
        return_dict : bool
            Return a ``SchedulerOutput`` rather than a tuple.
        eta : float
            Must be 0: the methods are deterministic (accepted because DDIM pipelines pass it).
        generator, **unused
            Ignored (pipelines pass them to stochastic schedulers).

        Raises
        ------
        RuntimeError
            :meth:`set_timesteps` was not called, or the loop is over.
        ValueError
            ``eta`` is not 0, ``timestep`` is not the evaluation the method asks for, or the sample was
            changed in the middle of a step.
        """
        if eta not in (None, 0, 0.0):
            raise ValueError(f"eta={eta} cannot be honoured: pndmkit's methods are deterministic (eta = 0)")
        self._require_timesteps()
        if self._run is None:
            self._start(timestep, sample)
        elif self._run.done:
            raise RuntimeError("the sampling loop is over: call set_timesteps before the next one")
        elif sample is not self._last:
            self._follow(sample)
        run = self._run
        t = run.ask()[1]
        given = float(timestep.item() if hasattr(timestep, "item") else timestep)
        if abs(given - t) > 1e-4 * max(1.0, abs(t)):
            raise ValueError(f"step got timestep={given:g}, but evaluation {self.nfe + 1} of {run.integrator.name!r} "
                             f"is at t={t:g}: pass the scheduler's timesteps in order, after set_timesteps")
        run = self._run = run.tell(model_output)
        prev = run.solution().x if run.done else _cast_like(run.ask()[0], sample)
        self._last = prev
        return SchedulerOutput(prev_sample=prev) if return_dict else (prev,)

    # -- internals ------------------------------------------------------------------------------------
    def _require_timesteps(self) -> None:
        if self.timesteps is None:
            raise RuntimeError("call set_timesteps(num_inference_steps) before sampling")

    def _starting_step(self, k: int) -> int:
        """The grid step at which evaluation ``k`` starts a fresh run whose evaluations are ``times[k:]``."""
        if not 0 <= k < len(self._times):
            raise ValueError(f"begin_index={k} must lie in [0, {len(self._times)}), the evaluations of this loop")
        if k not in self._starts:
            raise ValueError(f"begin_index={k} (t={self._times[k]:g}) falls inside a step of "
                             f"{self.integrator.name!r}; steps start at the evaluations {sorted(self._starts)}")
        j = self._starts[k]
        if k and evaluation_times(self.integrator, self.grid[j:])[0] != self._times[k:]:
            raise ValueError(f"begin_index={k}: {self.integrator.name!r} started afresh at t={self.grid[j]:g} (warm-up "
                             f"included) evaluates at other times than timesteps[{k}:], which the pipeline "
                             f"runs; use a method with the same evaluations in every step (ddim, pie, prk, ipndm, ...)")
        return j

    def _start(self, timestep: Any, sample: torch.Tensor) -> None:
        k = self._begin_index
        if k is None:  # a pipeline without set_begin_index: the first timestep says where it starts
            given = float(timestep.item() if hasattr(timestep, "item") else timestep)
            k = next((i for i in sorted(self._starts) if abs(self._times[i] - given) <= 1e-4 * max(1.0, abs(given))),
                     0)
        j = self._starting_step(k)
        prediction = PREDICTION_TYPES[self.config.prediction_type]
        self._run = self.integrator.start(sample, self.grid[j:], prediction=prediction)

    def _follow(self, sample: torch.Tensor) -> None:
        """The pipeline passed a sample other than the one returned: restart the current step from it."""
        run = self._run
        x_asked, t_asked = run.ask()
        if torch.equal(_cast_like(x_asked, sample), sample):
            return
        if run.told or t_asked != run.t:
            raise ValueError(f"the sample was changed in the middle of a step of {run.integrator.name!r} (evaluation "
                             f"at t={t_asked:g}); a changed sample can be followed only at the start of a step")
        self._nfe_before += run.nfe
        self._run = self.integrator.start(sample, run.times[run.index:], prediction=run.prediction,
                                          estimator_state=run.state)


def _registry() -> dict:
    from pndmkit.methods import METHODS

    return METHODS


def _cast_like(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == like.dtype else x.to(like.dtype)

