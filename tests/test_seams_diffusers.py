"""The seams between pndmkit and diffusers: a naive swap is the source's sampler, or a refusal by name.

For every scheduler config family pndmkit reads, ``PNDMKitScheduler.from_config(src.config, method=m)`` keeps
the source's timesteps, end point and start scale, and for the methods both have its output equals the
source's own to float32 precision. Every test proves which implementation ran on each side: the pipeline's
scheduler object is checked, pndmkit's run must have told every evaluation, and diffusers' ``step`` is counted.
Tiny random networks, built offline.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
diffusers = pytest.importorskip("diffusers")

import pndmkit  # noqa: E402
from pndmkit.integrations.diffusers import (PNDMKitScheduler, SOURCES, ConventionWarning, network_model,  # noqa: E402
                                            schedule_from_config, translate)

pytestmark = [pytest.mark.peers, pytest.mark.torch, pytest.mark.usefixtures("inference")]


def noise(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def counted(sched):
    """Count the calls of this scheduler object's own ``step`` (proof that it ran)."""
    sched.steps = 0
    inner = sched.step

    def step(*args, **kwargs):
        sched.steps += 1
        return inner(*args, **kwargs)

    sched.step = step
    return sched


# -- every config family, in a loop a pipeline would run -----------------------------------------------------
W = noise((16, 16), 9) * 0.2


def net(x, t):
    """A smooth stand-in network that depends on its timestep."""
    return torch.tanh(x @ W.to(x.dtype)) * (1 + 1e-3 * float(t)) + 0.1 * x


def pipeline_loop(sched, steps, x_T, **kwargs):
    sched.set_timesteps(steps, **kwargs)
    x = x_T * getattr(sched, "init_noise_sigma", 1.0)
    calls = 0
    for t in sched.timesteps:
        x_in = sched.scale_model_input(x, t) if hasattr(sched, "scale_model_input") else x
        x = sched.step(net(x_in, t), t, x).prev_sample
        calls += 1
    return x, calls


# (source class, its config, pndmkit method, relative tolerance)
FAMILIES = [
    ("DDIMScheduler", dict(clip_sample=False), "ddim", 1e-6),
    ("DDIMScheduler", dict(clip_sample=False, timestep_spacing="trailing", set_alpha_to_one=False), "ddim", 1e-6),
    ("PNDMScheduler", dict(skip_prk_steps=True, steps_offset=1), "plms", 1e-6),
    ("PNDMScheduler", dict(steps_offset=1), "f-pndm", 1e-6),
    ("DPMSolverMultistepScheduler", dict(), "dpm-solver++-2m", 1e-6),
    ("DPMSolverMultistepScheduler", dict(solver_order=3), "dpm-solver++-3m", 1e-6),
    ("DPMSolverMultistepScheduler", dict(use_karras_sigmas=True), "dpm-solver++-2m", 2e-6),
    ("DPMSolverMultistepScheduler", dict(use_lu_lambdas=True), "dpm-solver++-2m", 2e-6),
    ("DPMSolverMultistepScheduler", dict(use_exponential_sigmas=True), "dpm-solver++-2m", 2e-6),
    ("DPMSolverMultistepScheduler", dict(use_beta_sigmas=True), "dpm-solver++-2m", 2e-6),
    ("DPMSolverMultistepScheduler", dict(final_sigmas_type="sigma_min"), "dpm-solver++-2m", 1e-6),
    ("DPMSolverMultistepScheduler", dict(prediction_type="v_prediction", timestep_spacing="trailing"),
     "dpm-solver++-2m", 1e-6),
    ("DPMSolverSinglestepScheduler", dict(solver_order=1), "ddim", 1e-6),
    ("UniPCMultistepScheduler", dict(), "unipc-2", 1e-6),
    ("UniPCMultistepScheduler", dict(solver_order=3), "unipc-3", 1e-6),
    ("UniPCMultistepScheduler", dict(use_karras_sigmas=True), "unipc-2", 2e-6),
    # bh1 ends at sigma_min: to sigma = 0 diffusers' bh1 is NaN (tests/test_exponential.py)
    ("UniPCMultistepScheduler", dict(solver_type="bh1", final_sigmas_type="sigma_min"), "unipc-2", 1e-6),
    ("UniPCMultistepScheduler", dict(solver_type="bh1", solver_order=3, final_sigmas_type="sigma_min"), "unipc-3",
     1e-6),
    ("DPMSolverMultistepScheduler", dict(solver_type="heun"), "dpm-solver++-2m", 1e-6),
    ("DPMSolverMultistepScheduler", dict(solver_type="heun", algorithm_type="dpmsolver",
                                         final_sigmas_type="sigma_min"), "dpm-solver-2m", 1e-6),
    ("EDMDPMSolverMultistepScheduler", dict(solver_type="heun"), "dpm-solver++-2m", 3e-6),
    ("DEISMultistepScheduler", dict(solver_order=3), "deis-3", 1e-6),
    ("EulerDiscreteScheduler", dict(), "ddim", 1e-6),
    ("EulerDiscreteScheduler", dict(timestep_spacing="leading", steps_offset=1), "ddim", 1e-6),
    ("EulerDiscreteScheduler", dict(use_karras_sigmas=True), "ddim", 1e-6),
    ("LMSDiscreteScheduler", dict(), "ipndm-v", 1e-6),
    ("EDMEulerScheduler", dict(), "ddim", 2e-6),
    ("EDMEulerScheduler", dict(prediction_type="v_prediction", sigma_schedule="exponential"), "ddim", 2e-6),
    ("EDMDPMSolverMultistepScheduler", dict(), "dpm-solver++-2m", 3e-6),
    ("FlowMatchEulerDiscreteScheduler", dict(shift=3.0), "euler", 5e-7),
    ("FlowMatchEulerDiscreteScheduler", dict(shift=3.0), "ddim", 5e-7),
    ("FlowMatchEulerDiscreteScheduler", dict(use_dynamic_shifting=True), "ddim", 5e-7),
    ("DPMSolverMultistepScheduler", dict(use_flow_sigmas=True, flow_shift=3.0, prediction_type="flow_prediction"),
     "dpm-solver++-2m", 1e-6),
    ("UniPCMultistepScheduler", dict(use_flow_sigmas=True, flow_shift=3.0, prediction_type="flow_prediction"),
     "unipc-2", 1e-6),
]


@pytest.mark.parametrize("steps", [5, 10])
@pytest.mark.parametrize("source, config, method, tol", FAMILIES,
                         ids=[f"{s}-{m}-{'-'.join(f'{k}={v}' for k, v in c.items())}" for s, c, m, _ in FAMILIES])
def test_naive_swap_is_the_source_sampler(source, config, method, tol, steps):
    theirs = counted(getattr(diffusers, source)(**config))
    ours = PNDMKitScheduler.from_config(theirs.config, method=method)
    assert ours.config.source == source and ours.translation.source == source
    kwargs = {"mu": 0.8} if config.get("use_dynamic_shifting") else {}
    x_T = noise((4, 16), 1)
    a, calls_theirs = pipeline_loop(theirs, steps, x_T, **kwargs)
    b, calls_ours = pipeline_loop(ours, steps, x_T, **kwargs)
    assert theirs.steps == calls_theirs and ours.run.done and ours.nfe == calls_ours
    if method not in ("f-pndm", "plms"):  # PNDM lists its PRK stages and PLMS's repeat in its own way (same values)
        assert ours.timesteps.double().tolist() == theirs.timesteps.double().tolist()
    assert ours.init_noise_sigma == pytest.approx(float(getattr(theirs, "init_noise_sigma", 1.0)), rel=1e-6)
    if hasattr(theirs, "sigmas") and source not in ("PNDMScheduler", "DDIMScheduler"):
        np.testing.assert_allclose(ours.sigmas.double().numpy(), theirs.sigmas.double().numpy(), rtol=2e-6,
                                   atol=1e-12)  # the same levels, the same end
    assert rel(b, a) < tol


@pytest.mark.parametrize("source, config, method, built, default", [
    ("UniPCMultistepScheduler", dict(solver_type="bh1", solver_order=3, final_sigmas_type="sigma_min"), "unipc-3",
     "UniPC(order=3, variant='bh1'", "bh2"),
    ("DPMSolverMultistepScheduler", dict(solver_type="heun"), "dpm-solver++-2m",
     "ExponentialMultistep(order=2, weights='exact'", "midpoint"),
])
def test_solver_type_chooses_the_variant_the_source_runs(source, config, method, built, default):
    """solver_type picks UniPC's B(h) and DPM-Solver-2M's second-order step: the swap builds that variant, and the
    default variant on the same config is far from the source (so the parity of the swap is not vacuous)."""
    theirs = counted(getattr(diffusers, source)(**config))
    ours = PNDMKitScheduler.from_config(theirs.config, method=method)
    assert repr(ours.integrator.estimator).startswith(built) and ours.integrator.name == method
    default = PNDMKitScheduler.from_config({**theirs.config, "solver_type": default}, method=method)
    assert repr(default.integrator.estimator) == repr(pndmkit.get_method(method).build(default.schedule).estimator)
    x_T = noise((4, 16), 1)
    a, calls_theirs = pipeline_loop(theirs, 10, x_T)
    b, calls_ours = pipeline_loop(ours, 10, x_T)
    c, _ = pipeline_loop(default, 10, x_T)
    assert theirs.steps == calls_theirs == 10 == ours.nfe
    assert rel(b, a) < 1e-6 < 1e-2 < rel(c, a)


def test_solver_types_pndmkit_does_not_have_are_refused_by_name():
    config = diffusers.DPMSolverMultistepScheduler(solver_type="heun", solver_order=3).config
    with pytest.raises(ValueError, match=r"^solver_type='heun' cannot be honoured by 'dpm-solver\+\+-3m': .*pass "
                                         r"solver_type='midpoint', or method='dpm-solver\+\+-2m'"):
        PNDMKitScheduler.from_config(config, method="dpm-solver++-3m")
    PNDMKitScheduler.from_config(config, method="deis-3")  # a method the field does not choose: as registered
    unipc = diffusers.UniPCMultistepScheduler(solver_type="bh1").config
    built = dataclasses.replace(pndmkit.get_method("unipc-2").build(schedule_from_config(unipc)),
                                name="unipc-2-mine")  # bh2, passed built (not the registered unipc-2)
    with pytest.raises(ValueError, match=r"^method is an Integrator with UniPC\(order=2, variant='bh2'.*"
                                         r"solver_type='bh1' chooses UniPC\(order=2, variant='bh1'"):
        PNDMKitScheduler.from_config(unipc, method=built)


# -- every variant field of a method both have: followed (parity), or refused by name ----------------------------
from pndmkit.estimators import Final, Single  # noqa: E402
from pndmkit.exponential import ExponentialMultistep, UniPC  # noqa: E402
from pndmkit.integrations.diffusers.config import BETA_SCHEDULES  # noqa: E402
from pndmkit.integrations.diffusers.scheduler import VARIANT_FIELDS  # noqa: E402
from pndmkit.transfers import DataTransfer, DDIMTransfer  # noqa: E402

LOWER, SIGMA_MIN = dict(lower_order_final=False), dict(final_sigmas_type="sigma_min")
# (source, config, field set away from its default, pndmkit method, the estimator and transfer the swap must build,
#  steps where the field changes the source's result, relative tolerance)
HONOURED = [
    ("DPMSolverMultistepScheduler", dict(solver_order=3, **LOWER), "lower_order_final", "dpm-solver++-3m",
     ExponentialMultistep(3, "dpm-solver", False), DataTransfer, 8, 1e-6),
    ("DPMSolverMultistepScheduler", dict(**LOWER, **SIGMA_MIN), "lower_order_final", "dpm-solver++-2m",
     ExponentialMultistep(2, "dpm-solver", False), DataTransfer, 8, 1e-6),
    ("DPMSolverMultistepScheduler", dict(algorithm_type="dpmsolver", **LOWER, **SIGMA_MIN), "lower_order_final",
     "dpm-solver-2m", ExponentialMultistep(2, "dpm-solver", False), DDIMTransfer, 8, 1e-6),
    ("DPMSolverMultistepScheduler", dict(solver_type="heun", **LOWER, **SIGMA_MIN), "lower_order_final",
     "dpm-solver++-2m", ExponentialMultistep(2, "exact", False), DataTransfer, 8, 2e-6),
    ("DPMSolverMultistepScheduler", dict(euler_at_final=True, **SIGMA_MIN), "euler_at_final", "dpm-solver++-2m",
     Final(ExponentialMultistep(2, "dpm-solver"), (Single(),)), DataTransfer, 20, 1e-6),
    ("DPMSolverMultistepScheduler", dict(solver_order=3, euler_at_final=True, **SIGMA_MIN), "euler_at_final",
     "dpm-solver++-3m", Final(ExponentialMultistep(3, "dpm-solver"), (Single(),)), DataTransfer, 20, 1e-6),
    ("EDMDPMSolverMultistepScheduler", dict(solver_order=3, **LOWER), "lower_order_final", "dpm-solver++-3m",
     ExponentialMultistep(3, "dpm-solver", False), DataTransfer, 8, 3e-6),
    ("DEISMultistepScheduler", dict(solver_order=3, **LOWER), "lower_order_final", "deis-3",
     ExponentialMultistep(3, "exact", False), DDIMTransfer, 8, 1e-6),
    ("UniPCMultistepScheduler", dict(**LOWER, **SIGMA_MIN), "lower_order_final", "unipc-2",
     UniPC(2, "bh2", False), DataTransfer, 8, 1e-6),
    ("UniPCMultistepScheduler", dict(solver_order=3, **LOWER, **SIGMA_MIN), "lower_order_final", "unipc-3",
     UniPC(3, "bh2", False), DataTransfer, 8, 5e-6),
    ("UniPCMultistepScheduler", dict(predict_x0=False, **SIGMA_MIN), "predict_x0", "unipc-2",
     UniPC(2, "bh2"), DDIMTransfer, 8, 1e-6),
    ("UniPCMultistepScheduler", dict(solver_order=3, predict_x0=False, solver_type="bh1", **SIGMA_MIN), "predict_x0",
     "unipc-3", UniPC(3, "bh1"), DDIMTransfer, 8, 1e-6),
    # EDM grids end at sigma = 0, where the last step is first order anyway: followed, but it changes nothing there
    ("EDMDPMSolverMultistepScheduler", dict(solver_order=3, euler_at_final=True), "euler_at_final",
     "dpm-solver++-3m", Final(ExponentialMultistep(3, "dpm-solver"), (Single(),)), DataTransfer, 20, 3e-6),
]
#: HONOURED cases whose field changes nothing on the grids pndmkit runs
UNCHANGED = {("EDMDPMSolverMultistepScheduler", "euler_at_final")}


@pytest.mark.parametrize("source, config, field, method, built, transfer, steps, tol", HONOURED,
                         ids=[f"{s}-{m}-{'-'.join(f'{k}={v}' for k, v in c.items())}"
                              for s, c, _, m, *_ in HONOURED])
def test_variant_fields_are_followed(source, config, field, method, built, transfer, steps, tol):
    """The swap builds the variant the source runs (its estimator and transfer) and equals the source; the same
    config with the field at its default gives the registered method, far from the source here (the field
    matters at these steps, so the parity is not vacuous)."""
    theirs = counted(getattr(diffusers, source)(**config))
    assert theirs.config[field] == config[field]  # diffusers kept the field (it runs that variant)
    ours = PNDMKitScheduler.from_config(theirs.config, method=method)
    assert repr(ours.integrator.estimator) == repr(built) and type(ours.integrator.transfer) is transfer
    assert ours.integrator.name == method
    default = inspect.signature(getattr(diffusers, source).__init__).parameters[field].default
    plain = PNDMKitScheduler.from_config({**theirs.config, field: default}, method=method)
    assert (repr(plain.integrator.estimator), type(plain.integrator.transfer)) != (repr(built), transfer)
    if not set(config) - {field} & set(VARIANT_FIELDS[source]):  # no other variant field: the registered method
        assert repr(plain.integrator) == repr(pndmkit.get_method(method).build(plain.schedule))
    x_T = noise((4, 16), 1)
    a, calls_theirs = pipeline_loop(theirs, steps, x_T)
    b, calls_ours = pipeline_loop(ours, steps, x_T)
    c, _ = pipeline_loop(plain, steps, x_T)
    assert theirs.steps == calls_theirs == steps == ours.nfe == calls_ours
    assert rel(b, a) < tol
    if (source, field) in UNCHANGED:
        assert rel(c, a) < tol
    else:
        assert 1e-4 < rel(c, a)


# (source, config, method, the refusal's start)
REFUSED_VARIANTS = [
    ("UniPCMultistepScheduler", dict(disable_corrector=[0]), "unipc-2",
     r"disable_corrector=\[0\] cannot be honoured by 'unipc-2': .*pass disable_corrector=\[\]$"),
    ("UniPCMultistepScheduler", dict(solver_p=diffusers.DDIMScheduler()), "unipc-3",
     r"solver_p=DDIMScheduler cannot be honoured by 'unipc-3': .*pass solver_p=None$"),
    ("UniPCMultistepScheduler", dict(predict_x0=False, use_flow_sigmas=True, prediction_type="flow_prediction"),
     "unipc-2", r"predict_x0=False cannot be honoured by 'unipc-2' on a flow-matching config: .*pass "
                r"predict_x0=True$"),
    ("DPMSolverMultistepScheduler", dict(solver_order=3, solver_type="heun"), "dpm-solver++-3m",
     r"solver_type='heun' cannot be honoured by 'dpm-solver\+\+-3m': .*pass solver_type='midpoint'"),
]


@pytest.mark.parametrize("source, config, method, message", REFUSED_VARIANTS,
                         ids=[f"{s}-{next(iter(c))}" for s, c, *_ in REFUSED_VARIANTS])
def test_variants_pndmkit_does_not_have_are_refused_by_name(source, config, method, message):
    cfg = {**getattr(diffusers, source)().config, **config}
    with pytest.raises(ValueError, match="^" + message):
        PNDMKitScheduler.from_config(cfg, method=method)
    # a method the field does not choose runs as registered
    assert PNDMKitScheduler.from_config(cfg, method="ddim").integrator.name == "ddim"


@pytest.mark.parametrize("source, field, method", [
    ("DPMSolverMultistepScheduler", "lower_order_final", "dpm-solver++-2m"),
    ("DPMSolverMultistepScheduler", "euler_at_final", "dpm-solver++-2m"),
    ("EDMDPMSolverMultistepScheduler", "lower_order_final", "dpm-solver++-2m"),
    ("UniPCMultistepScheduler", "lower_order_final", "unipc-2"),
    ("UniPCMultistepScheduler", "predict_x0", "unipc-2"),
    ("DEISMultistepScheduler", "lower_order_final", "deis-3"),
])
def test_a_variant_flag_that_is_not_a_bool_is_refused_naming_source_and_field(source, field, method):
    cfg = {**getattr(diffusers, source)().config, field: "no"}
    with pytest.raises(TypeError, match=rf"^{source}'s {field} must be True or False, got 'no'$"):
        PNDMKitScheduler.from_config(cfg, method=method)
    assert PNDMKitScheduler.from_config(cfg, method="ddim").integrator.name == "ddim"  # a field it does not read

@pytest.mark.parametrize("source, config, method, estimator, fields", [
    ("DPMSolverMultistepScheduler", dict(solver_order=3, **LOWER), "dpm-solver++-3m", None, "lower_order_final="),
    ("DPMSolverMultistepScheduler", dict(euler_at_final=True, **SIGMA_MIN), "dpm-solver++-2m", None,
     "euler_at_final="),
    ("DEISMultistepScheduler", dict(solver_order=3, **LOWER), "deis-3", None, "lower_order_final="),
    ("UniPCMultistepScheduler", dict(predict_x0=False, **SIGMA_MIN), "unipc-2", None, "predict_x0="),
    ("UniPCMultistepScheduler", dict(), "unipc-2", UniPC(2, "bh2", corrector=False), "disable_corrector="),
])
def test_hand_built_methods_that_contradict_a_variant_field_are_refused(source, config, method, estimator, fields):
    """An Integrator (or an unregistered MethodSpec) that is not the registered method of its name runs as built: a
    variant field that chooses another variant is refused, naming the field; the variant the config chooses, built
    by hand, runs. The registered method's own build passed as an Integrator is the method by name: the field
    chooses its variant, and the config records the name."""
    cfg = getattr(diffusers, source)(**config).config
    schedule = schedule_from_config(cfg)
    registered = pndmkit.get_method(method)
    mine = dataclasses.replace(registered.build(schedule), name=method + "-mine")
    if estimator is not None:
        mine = dataclasses.replace(mine, estimator=estimator)
    spec = dataclasses.replace(registered, name=method + "-mine",
                               build=lambda s, mine=mine: dataclasses.replace(mine, transfer=type(mine.transfer)(s)))
    for given, what in ((mine, "an Integrator"), (spec, "a MethodSpec .* that builds an Integrator")):
        with pytest.raises(ValueError, match=rf"^method is {what} with .* but the config's {fields}.* chooses .*: "
                                             rf"build it with that, or pass {fields} to match yours$"):
            PNDMKitScheduler.from_config(cfg, method=given)
    chosen = PNDMKitScheduler.from_config(cfg, method=method).integrator
    assert PNDMKitScheduler.from_config(cfg, method=chosen).integrator is chosen
    if estimator is None:  # the registered build, passed built: the field chooses as for the name
        as_name = PNDMKitScheduler.from_config(cfg, method=registered.build(schedule))
        assert repr(as_name.integrator) == repr(chosen) != repr(registered.build(schedule))
        assert as_name.config.method == method


#: every ``__init__`` field of every source (the installed diffusers), as the audit of the variant fields sorted
#: it: a variant of a method pndmkit has too (VARIANT_FIELDS: followed or refused, tested above), or a field that
#: only chooses the source's own method, or one that sets the noise table, the grid or the network's convention
#: (followed by the source's own set_timesteps and the translation, tested by test_naive_swap_is_the_source_sampler
#: and the config tests; refused ones are in config.REFUSED)
OWN_METHOD_FIELDS = {"solver_order", "algorithm_type", "skip_prk_steps", "solver_type"}
#: ... and per source (DPM-Solver singlestep's lower_order_final lowers the steps of a method pndmkit does not have)
OWN_METHOD_FIELDS_OF = {"DPMSolverSinglestepScheduler": {"lower_order_final"}}
TABLE_FIELDS = {"variance_type", 
    "num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "prediction_type",
    "clip_sample", "clip_sample_range", "thresholding", "dynamic_thresholding_ratio", "sample_max_value",
    "timestep_spacing", "steps_offset", "rescale_betas_zero_snr", "set_alpha_to_one", "use_karras_sigmas",
    "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas", "use_flow_sigmas", "flow_shift",
    "final_sigmas_type", "lambda_min_clipped", "use_dynamic_shifting", "time_shift_type", "sigma_min", "sigma_max",
    "shift_terminal", "interpolation_type", "timestep_type", "sigma_data", "sigma_schedule", "rho", "shift",
    "base_shift", "max_shift", "base_image_seq_len", "max_image_seq_len", "invert_sigmas", "stochastic_sampling"}


@pytest.mark.parametrize("source", SOURCES)
def test_every_source_field_is_sorted_and_every_variant_field_is_tested(source):
    """A field diffusers adds to a source fails here until it is sorted; a field added to VARIANT_FIELDS fails
    until a parity or refusal case above covers it."""
    fields = set(inspect.signature(getattr(diffusers, source).__init__).parameters) - {"self"}
    variant = set(VARIANT_FIELDS.get(source, ()))
    assert variant <= fields
    sorted_out = OWN_METHOD_FIELDS | OWN_METHOD_FIELDS_OF.get(source, set()) | TABLE_FIELDS
    assert fields - variant <= sorted_out, sorted(fields - variant - sorted_out)
    tested = {(s, f) for s, _, f, *_ in HONOURED} | {(s, k) for s, c, *_ in REFUSED_VARIANTS for k in c
                                                     if k in VARIANT_FIELDS.get(s, ())}
    tested |= {(s, k) for s, c, *_ in FAMILIES for k in c if k in VARIANT_FIELDS.get(s, ())}  # solver_type
    assert {(source, f) for f in variant} <= tested, sorted(variant - {f for s, f in tested if s == source})


def test_euler_ancestral_config_runs_its_ode_part():
    """EulerAncestral's config swapped: the deterministic part, diffusers' Euler on the same config."""
    config = diffusers.EulerAncestralDiscreteScheduler().config
    ours = PNDMKitScheduler.from_config(config, method="ddim")
    euler = counted(diffusers.EulerDiscreteScheduler.from_config(config))
    a, _ = pipeline_loop(euler, 10, noise((4, 16), 2))
    b, _ = pipeline_loop(ours, 10, noise((4, 16), 2))
    assert ours.config.source == "EulerAncestralDiscreteScheduler" and euler.steps == 10 == ours.nfe
    assert rel(b, a) < 1e-6


@pytest.mark.parametrize("config", [dict(), dict(timestep_spacing="trailing"), dict(prediction_type="v_prediction"),
                                    dict(timestep_spacing="trailing", prediction_type="v_prediction")])
def test_heun_config_with_pie(config):
    """Heun is pie with its last step, to sigma = 0, by one Euler step: the swap takes it so (2 N - 1 evaluations,
    none at sigma = 0). pie's second stage there was 1.4e-3 (trailing: a long last step) and 4e-4 (v_prediction)
    from the source; a pie passed built still takes it, with a ConventionWarning naming the fix."""
    theirs = counted(diffusers.HeunDiscreteScheduler(**config))
    ours = PNDMKitScheduler.from_config(theirs.config, method="pie")
    with warnings.catch_warnings():
        warnings.simplefilter("error", pndmkit.integrations.diffusers.TrainingRangeWarning)  # nothing at t = -1
        b, calls_ours = pipeline_loop(ours, 10, noise((4, 16), 3))
    a, calls_theirs = pipeline_loop(theirs, 10, noise((4, 16), 3))
    assert (calls_theirs, calls_ours, ours.nfe, theirs.steps, ours.order, theirs.order) == (19, 19, 19, 19, 2, 2)
    assert ours.timesteps.double().tolist() == theirs.timesteps.double().tolist()
    assert ours.init_noise_sigma == pytest.approx(float(theirs.init_noise_sigma), rel=1e-6)
    assert rel(b, a) < 1e-6
    built = PNDMKitScheduler.from_config(theirs.config, method=dataclasses.replace(
        pndmkit.get_method("pie").build(ours.schedule), name="pie-mine"))  # not the registered pie
    with pytest.warns(ConventionWarning, match=r"^HeunDiscreteScheduler takes its last step, to sigma = 0, by one "
                                               r"Euler step .*: pass method='pie' by name$"):
        c, calls_built = pipeline_loop(built, 10, noise((4, 16), 3))
    assert calls_built == 20 and rel(c, a) > (1e-4 if config else 1e-6)


@pytest.mark.parametrize("config, method", [(dict(skip_prk_steps=True, steps_offset=1), "plms"),
                                            (dict(steps_offset=1), "f-pndm")])
def test_pndm_v_prediction_converts_before_combining_and_says_so(config, method):
    """PNDMScheduler combines v outputs and converts the sum to eps once; pndmkit converts each v at its own (x, t),
    so the swap on a v config is PNDMScheduler on the eps of the same network (1e-6), 0.18 from PNDMScheduler on
    its v at 10 steps, and says so once per set_timesteps (a ConventionWarning naming the field)."""
    theirs_v = counted(diffusers.PNDMScheduler(**config, prediction_type="v_prediction"))
    theirs_eps = counted(diffusers.PNDMScheduler(**config))
    abar = theirs_eps.alphas_cumprod.double()

    def eps_of_v(x, t):
        a = abar[int(t)].to(x.dtype)
        return a.sqrt() * net(x, t) + (1 - a).sqrt() * x

    def run(sched, model):
        sched.set_timesteps(10)
        x = noise((4, 16), 1)
        for t in sched.timesteps:
            x = sched.step(model(x, t), t, x).prev_sample
        return x

    ours = PNDMKitScheduler.from_config(theirs_v.config, method=method)
    for _ in range(2):  # once per set_timesteps
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            b = run(ours, net)
        said = [str(w.message) for w in seen if issubclass(w.category, ConventionWarning)]
        assert len(said) == 1 and said[0].startswith("PNDMScheduler with prediction_type='v_prediction' combines the "
                                                     "v outputs of its evaluations")
        assert f"{method!r} converts each v to eps" in said[0] and "0.2 at 8 to 10" in said[0]
    a, c = run(theirs_v, net), run(theirs_eps, eps_of_v)
    assert theirs_v.steps == theirs_eps.steps == ours.nfe and ours.run.done
    assert rel(b, c) < 1e-6 and rel(b, a) > 0.1
    eps = PNDMKitScheduler.from_config(theirs_eps.config, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConventionWarning)  # eps: nothing to say
        run(eps, eps_of_v)


def ddim_clipped(x, steps, use_clipped_model_output):
    """DDIM's clipped step in float64, written out: x0 clipped to [-1, 1], eps re-derived from it only with
    ``use_clipped_model_output``."""
    table = diffusers.DDIMScheduler()
    table.set_timesteps(steps)
    abar = table.alphas_cumprod.double()
    x = x.double()
    for t in table.timesteps.tolist():
        a, t_prev = abar[t], t - 1000 // steps
        a_prev = abar[t_prev] if t_prev >= 0 else torch.tensor(1.0, dtype=torch.float64)
        eps = net(x.float(), t).double() * 3
        x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
        if use_clipped_model_output:
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x


@pytest.mark.parametrize("use_clipped_model_output", [None, False, True])
def test_clip_sample_is_honoured_as_ddim_steps_it(use_clipped_model_output):
    """DDIM's default step pairs the clipped x0 with the unclipped eps; use_clipped_model_output=True re-derives eps
    from the clipped x0. method='ddim' on a DDIM config follows the keyword, as DDIMScheduler.step does."""
    theirs = counted(diffusers.DDIMScheduler())  # clip_sample=True, the default
    ours = PNDMKitScheduler.from_config(theirs.config, method="ddim")
    assert ours.translation.clip == 1.0 and ours.translation.told_prediction == "x0"
    kwargs = {} if use_clipped_model_output is None else dict(use_clipped_model_output=use_clipped_model_output)
    theirs.set_timesteps(10)
    x = y = start = noise((4, 16), 4) * 3
    for t in theirs.timesteps:
        x = theirs.step(net(x, t) * 3, t, x, **kwargs).prev_sample
    ours.set_timesteps(10)
    for t in ours.timesteps:
        y = ours.step(net(y, t) * 3, t, y, **kwargs).prev_sample
    assert theirs.steps == 10 == ours.nfe and ours.run.done
    exact = ddim_clipped(start, 10, use_clipped_model_output)
    other = ddim_clipped(start, 10, not use_clipped_model_output)
    # both round x0 = x / sqrt(abar) - ... in float32, with 1 / sqrt(abar) = 60 at the first step
    assert float((x.double() - exact).abs().max()) < 2e-5 and float((y.double() - exact).abs().max()) < 2e-5
    assert float((y - x).abs().max()) < 2e-5 < 0.1 < float((exact - other).abs().max())


def test_use_clipped_model_output_false_is_refused_where_no_ddim_step_takes_it():
    ours = PNDMKitScheduler.from_config(diffusers.DDIMScheduler().config, method="ipndm")
    ours.set_timesteps(10)
    x = noise((4, 16), 4)
    t = ours.timesteps[0]
    with pytest.raises(ValueError, match=r"^use_clipped_model_output=False cannot be honoured by 'ipndm' on a "
                                         r"DDIMScheduler config.*only method='ddim'.*use_clipped_model_output=True"):
        ours.step(net(x, t), t, x, use_clipped_model_output=False)
    with pytest.raises(ValueError, match=r"^use_clipped_model_output must be True, False or None, got 'yes'"):
        ours.step(net(x, t), t, x, use_clipped_model_output="yes")
    assert ours.run is None  # refused before the run started
    ours.step(net(x, t), t, x, use_clipped_model_output=True)  # the clipped x0 told: what ipndm runs by default
    assert ours.nfe == 1


def test_ddim_strides_that_skip_its_timesteps_are_said():
    """DDIM steps to t - T // N: with linspace and 7 steps that is not the next timestep, and the swap says so."""
    theirs = diffusers.DDIMScheduler(clip_sample=False, timestep_spacing="linspace")
    ours = PNDMKitScheduler.from_config(theirs.config, method="ddim")
    with pytest.warns(ConventionWarning, match=r"t - 1000//7 = t - 142.*\(999 -> 857, then 832\).*'leading'"):
        ours.set_timesteps(7)
    assert ours.timesteps.tolist() == [999, 832, 666, 500, 333, 166, 0]  # the source's own timesteps, all the same
    with pytest.warns(ConventionWarning, match=r"\(999 -> 899, then 888\)"):
        ours.set_timesteps(10)  # linspace gaps are 111, the stride 1000 // 10
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConventionWarning)  # no warning where the stride is the gap
        for spacing, steps in (("trailing", 10), ("leading", 7)):
            config = diffusers.DDIMScheduler(clip_sample=False, timestep_spacing=spacing).config
            PNDMKitScheduler.from_config(config, method="ddim").set_timesteps(steps)


def test_pndmkit_configs_keep_pndmkit_grids():
    """A config without a source (PNDMKitScheduler's own) still takes pndmkit's grid kinds."""
    sched = PNDMKitScheduler(method="ddim", timestep_spacing="logsnr")
    sched.set_timesteps(5)
    assert sched.translation.source is None and len(sched.grid) == 6


# -- the scheduler's interface -------------------------------------------------------------------------
def test_round_trip_keeps_every_field_and_compatibles():
    ddim = diffusers.DDIMScheduler(clip_sample=False, thresholding=False, timestep_spacing="trailing")
    ours = PNDMKitScheduler.from_config(ddim.config, method="ddim")
    back = diffusers.DDIMScheduler.from_config(ours.config)
    assert back.config.clip_sample is False and back.config.timestep_spacing == "trailing"
    assert set(SOURCES) <= {cls.__name__ for cls in ours.compatibles}
    flow = PNDMKitScheduler.from_config(diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0).config, method="euler")
    assert diffusers.FlowMatchEulerDiscreteScheduler.from_config(flow.config).config.shift == 3.0


def test_set_timesteps_takes_what_diffusers_takes():
    flux = diffusers.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    ours = PNDMKitScheduler.from_config(flux.config, method="euler")
    sigmas = np.linspace(1.0, 1 / 6, 6)
    flux.set_timesteps(sigmas=sigmas, mu=0.9)
    ours.set_timesteps(sigmas=sigmas, mu=0.9, device="cpu")
    assert torch.equal(ours.timesteps, flux.timesteps) and torch.equal(ours.sigmas, flux.sigmas)
    euler = diffusers.EulerDiscreteScheduler()
    ours = PNDMKitScheduler.from_config(euler.config, method="ddim")
    ours.set_timesteps(sigmas=[14.6, 5.0, 1.0, 0.1])
    euler.set_timesteps(sigmas=[14.6, 5.0, 1.0, 0.1])
    assert ours.timesteps.double().tolist() == euler.timesteps.double().tolist()
    ddim = PNDMKitScheduler.from_config(diffusers.DDIMScheduler(clip_sample=False, set_alpha_to_one=False).config)
    ddim.set_timesteps(timesteps=[901, 701, 501, 301, 101])  # DDIM's set_timesteps takes neither: pndmkit does
    assert ddim.timesteps.tolist() == [901, 701, 501, 301, 101] and ddim.grid[-1] == 0.0  # DDIM's end, abar_0
    ddim.set_timesteps(sigmas=[10.0, 1.0, 0.1, 0.0])
    np.testing.assert_allclose(ddim.schedule.s(ddim.grid[:-1]), [10.0, 1.0, 0.1], rtol=1e-9)
    with pytest.raises(ValueError, match=r"timesteps must be strictly decreasing .*timesteps\[1\]=600.0 >= "):
        ddim.set_timesteps(timesteps=[500, 600])
    with pytest.raises(ValueError, match=r"timesteps\[1\]=0.0 lies outside \(0, 999\] \(above t=0, where the last"):
        ddim.set_timesteps(timesteps=[500, 0])
    with pytest.raises(ValueError, match="mu= cannot be honoured for a DDIMScheduler config"):
        ddim.set_timesteps(5, mu=0.5)
    with pytest.raises(ValueError, match="mu= cannot be honoured"):
        PNDMKitScheduler(method="ddim").set_timesteps(5, mu=0.5)
    native = PNDMKitScheduler(method="ddim")
    native.set_timesteps(sigmas=[10.0, 1.0, 0.1])  # Euler's reading: two steps, the last one ending at 0.1
    np.testing.assert_allclose(native.schedule.s(native.grid), [10.0, 1.0, 0.1], rtol=1e-9)


# -- custom timesteps and sigmas: one rule on every VP config ------------------------------------------------
VP_SOURCES = [name for name in SOURCES if translate(getattr(diffusers, name)().config).family == "vp"]


def _takes(name, keyword):
    """Whether the source's own set_timesteps takes ``keyword`` on a VP table (UniPC's sigmas are flow sigmas)."""
    if name is None:  # pndmkit's own config
        return False
    takes = keyword in inspect.signature(getattr(diffusers, name).set_timesteps).parameters
    return takes and not (name == "UniPCMultistepScheduler" and keyword == "sigmas")


def _vp(name, **fields):
    if name is None:
        return PNDMKitScheduler(method="ddim", **fields)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PNDMKitScheduler.from_config(getattr(diffusers, name)(**fields).config, method="ddim")


def _end(source):
    """Where the config's own grids end (10 steps, 'trailing' spacing, whose last step starts above t = 0)."""
    fields = inspect.signature(getattr(diffusers, source or "DDIMScheduler").__init__).parameters
    return _set(_vp(source, **({"timestep_spacing": "trailing"} if "timestep_spacing" in fields else {})), 10).grid[-1]


def _set(sched, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched.set_timesteps(*args, **kwargs)
    return sched


def test_every_vp_source_is_covered():
    assert set(VP_SOURCES) == {"DDPMScheduler", "DDIMScheduler", "PNDMScheduler", "DPMSolverMultistepScheduler",
                               "DPMSolverSinglestepScheduler", "UniPCMultistepScheduler", "DEISMultistepScheduler",
                               "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler",
                               "LMSDiscreteScheduler"}
    assert [n for n in VP_SOURCES if _takes(n, "timesteps")] == ["DDPMScheduler", "DPMSolverMultistepScheduler",
                                                                 "DPMSolverSinglestepScheduler",
                                                                 "EulerDiscreteScheduler", "HeunDiscreteScheduler"]
    assert [n for n in VP_SOURCES if _takes(n, "sigmas")] == ["EulerDiscreteScheduler"]


@pytest.mark.parametrize("source", VP_SOURCES + [None])
def test_custom_timesteps_are_training_indices_on_every_vp_config(source):
    given = [901, 501, 101]
    ours = _set(_vp(source), timesteps=given)
    assert ours.timesteps.tolist() == given and ours.grid[:-1].tolist() == given
    assert ours.grid[-1] == _end(source)
    if _takes(source, "timesteps"):  # the source lays them out: its timesteps are these
        theirs = getattr(diffusers, source)()
        theirs.set_timesteps(timesteps=given)
        assert sorted(set(theirs.timesteps.tolist()), reverse=True) == given
    same = _set(_vp(source), 3, timesteps=given)  # num_inference_steps that agrees is accepted
    assert same.timesteps.tolist() == given and np.array_equal(same.grid, ours.grid)
    with pytest.raises(ValueError, match=r"num_inference_steps=10 contradicts timesteps=\[901, 501, 101\], which "
                                         r"give 3 steps; pass timesteps alone or num_inference_steps=3 with it"):
        _vp(source).set_timesteps(10, timesteps=given)
    with pytest.raises(ValueError, match="pass timesteps or sigmas, not both"):
        _vp(source).set_timesteps(timesteps=given, sigmas=[10.0, 1.0, 0.0])


@pytest.mark.parametrize("source", VP_SOURCES + [None])
def test_fractional_timesteps_reach_the_network_as_given_or_are_refused_by_name(source):
    given = [901.0, 500.5, 101.25]
    if source in ("DDPMScheduler", "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler"):
        theirs = getattr(diffusers, source)()
        theirs.set_timesteps(timesteps=given)  # the source casts them to integers
        assert theirs.timesteps.tolist()[:3] == [901, 500, 101]
        with pytest.raises(ValueError, match=rf"timesteps\[1\]=500.5 cannot be honoured for a {source} config: its "
                                             r"set_timesteps makes it 500 \(it takes integer timesteps\); pass "
                                             r"integers"):
            _vp(source).set_timesteps(timesteps=given)
        return
    ours = _set(_vp(source), timesteps=given)
    assert ours.timesteps.dtype == torch.float32 and ours.timesteps.tolist() == given
    seen = []
    x = noise((2, 16))
    for t in ours.timesteps:  # what a pipeline's loop hands the network
        seen.append(float(t))
        x = ours.step(net(x, t), t, x).prev_sample
    assert seen == given and ours.run.done


TABLE = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule")


def _euler_timesteps(sigmas, config):
    """Euler's map from a noise level to a timestep, recomputed in float64: linear in log sigma between the
    table's integer indices (an independent computation, not pndmkit's)."""
    assert config["beta_schedule"] == "linear"
    abar = np.cumprod(1.0 - np.linspace(config["beta_start"], config["beta_end"], config["num_train_timesteps"]))
    log_sigma = np.log(np.sqrt((1.0 - abar) / abar))  # increasing in the index
    return np.interp(np.log(sigmas), log_sigma, np.arange(abar.size, dtype=np.float64))


@pytest.mark.parametrize("source", VP_SOURCES + [None])
def test_custom_sigmas_read_as_euler_reads_them_on_every_vp_config(source):
    sigmas = [10.0, 1.0, 0.1]
    ours = _set(_vp(source), sigmas=sigmas)
    # N + 1 levels: the first N start the steps, the last is where the last step ends
    assert ours.num_inference_steps == 2 and len(ours.timesteps) == 2
    np.testing.assert_allclose(ours.schedule.s(ours.grid), sigmas, rtol=1e-7)  # Euler: float32 levels
    np.testing.assert_allclose(ours.sigmas.double().numpy(), sigmas, rtol=1e-6)
    expected = _euler_timesteps(sigmas[:-1], ours.config)
    np.testing.assert_allclose(ours.timesteps.double().numpy(), expected, rtol=2e-6)  # fractional, as given
    euler = diffusers.EulerDiscreteScheduler(**{key: ours.config[key] for key in TABLE})
    euler.set_timesteps(sigmas=sigmas)  # diffusers' own sigma scheduler on the same table
    assert len(euler.timesteps) == 2 and euler.sigmas[-1] == np.float32(0.1)
    np.testing.assert_allclose(ours.timesteps.double().numpy(), euler.timesteps.double().numpy(), rtol=1e-5)
    to_zero = _set(_vp(source), sigmas=sigmas + [0.0])  # a last level 0 ends at the config's own end point
    assert to_zero.num_inference_steps == 3 and to_zero.grid[-1] == _end(source)
    np.testing.assert_allclose(to_zero.grid[:-1], ours.grid, rtol=0, atol=1e-9)
    same = _set(_vp(source), 2, sigmas=sigmas)
    assert np.array_equal(same.grid, ours.grid)
    with pytest.raises(ValueError, match=r"num_inference_steps=3 contradicts sigmas=\[10.0, 1.0, 0.1\], which give 2 "
                                         r"steps; pass sigmas alone or num_inference_steps=2 with it"):
        _vp(source).set_timesteps(3, sigmas=sigmas)


@pytest.mark.parametrize("beta_schedule", BETA_SCHEDULES)
@pytest.mark.parametrize("source", VP_SOURCES + [None])
def test_eulers_own_sigmas_are_read_on_every_vp_config_and_table(source, beta_schedule):
    """EulerDiscreteScheduler's sigmas on the same table are float32 levels of a float32 table: its top one lies
    above pndmkit's float64 s(t_max) (6.6e-6 relative on squaredcos_cap_v2) and is read as the top; each gives
    Euler's own integer timestep. On a DEIS config the end point is the float32 level s(0) itself, Euler's
    sigmas[-2]: that last step has length zero, left out and counted as DEIS's own grids' (its timestep named)."""
    ours = _vp(source, beta_schedule=beta_schedule)
    euler = diffusers.EulerDiscreteScheduler(**{key: ours.config[key] for key in TABLE})
    euler.set_timesteps(10)
    given = euler.sigmas.double().numpy()
    if beta_schedule != "linear":  # float32 levels above pndmkit's top, which an exact bound refused
        assert given[0] > float(ours.schedule.s(ours.schedule.t_max))
    _set(ours, sigmas=euler.sigmas)
    zero = source == "DEISMultistepScheduler"
    assert ours.num_inference_steps == 10 - zero and ours.grid[0] == ours.schedule.t_max
    np.testing.assert_allclose(ours.sigmas[:-1].double().numpy(), given[:10 - zero], rtol=1e-5, atol=0)
    np.testing.assert_allclose(ours.schedule.s(ours.grid[:-1]), given[:10 - zero], rtol=1e-5, atol=0)
    fields = inspect.signature(getattr(diffusers, source or "DDIMScheduler").__init__).parameters
    own = _set(_vp(source, beta_schedule=beta_schedule, **({"timestep_spacing": "trailing"} if "timestep_spacing" in
                                                           fields else {})), 10)
    assert ours.grid[-1] == own.grid[-1]  # a last sigma 0: the config's own end point
    if source is None:  # pndmkit's own config interpolates its float64 table: 6e-5 from Euler's (2e-4 at t = 0)
        np.testing.assert_allclose(ours.timesteps.numpy(), euler.timesteps.numpy(), rtol=0, atol=1e-3)
    else:  # the source's float32 table, as Euler interpolates it: Euler's own timesteps
        assert ours.timesteps.tolist() == euler.timesteps.tolist()[:10 - zero]
    assert ours._source_steps == 10  # the zero-length step counted, as the pipeline counts it
    if zero:  # the grid ends where the zero-length step starts, Euler's sigmas[-2]
        assert float(ours.schedule.s(ours.grid[-1])) == pytest.approx(float(euler.sigmas[-2]), rel=1e-7)
    same = _set(_vp(source, beta_schedule=beta_schedule), 10, sigmas=euler.sigmas)  # the source's count: 10
    assert np.array_equal(same.grid, ours.grid)


def test_the_float32_level_tolerance_has_its_own_name_apart_from_the_reference_ode_tolerance():
    """Two tolerances once shared the name LEVEL_RTOL: diffusers' float32 level matching (3e-5) and the compare
    study's reference ODE tolerance (1e-10). The float32 one is FLOAT32_LEVEL_RTOL, the bound within which a swapped
    scheduler reads another scheduler's top sigma as its own top."""
    from pndmkit.integrations.diffusers import config
    from pndmkit.studies import compare

    assert config.FLOAT32_LEVEL_RTOL == 3e-5 and "FLOAT32_LEVEL_RTOL" in config.__all__
    assert not hasattr(config, "LEVEL_RTOL") and compare.LEVEL_RTOL == 1e-10
    top = float(_vp(None).schedule.s(_vp(None).schedule.t_max))
    inside = _set(_vp(None), sigmas=[top * (1 + 0.9 * config.FLOAT32_LEVEL_RTOL), 1.0, 0.0])
    assert inside.grid[0] == inside.schedule.t_max
    with pytest.raises(ValueError, match=r"a float32 level within 3e-05 of the top is read as the top"):
        _set(_vp(None), sigmas=[top * (1 + 1.1 * config.FLOAT32_LEVEL_RTOL), 1.0, 0.0])

@pytest.mark.parametrize("sigmas, message", [
    ([10.0], r"sigmas must be a 1-D sequence of at least two noise levels \(the start of each step, then where the "
             r"last one ends, 0 for the config's end point\), got \[10.0\]"),
    ([10.0, 10.0, 0.0], r"sigmas must be strictly decreasing \(from noise to data\); sigmas\[1\]=10.0 >= "
                        r"sigmas\[0\]=10.0"),
    ([1e6, 1.0, 0.0], r"sigmas\[0\]=1000000.0 lies outside \(0, 157.4\d*\], the noise levels "
                      r"sqrt\(\(1 - abar\) / abar\) of DiscreteVP"),
    ([10.0, 0.0, 0.0], r"sigmas\[1\]=0.0 lies outside .*only the last sigma, where the last step ends, may be 0"),
    ([10.0, float("nan")], r"sigmas\[1\]=nan must be finite"),
    ("abc", r"sigmas must be a sequence of numbers, got 'abc'"),
])
@pytest.mark.parametrize("source", ["DDIMScheduler", None])
def test_bad_custom_sigmas_are_refused_by_name(source, sigmas, message):
    with pytest.raises(ValueError, match=message):
        _vp(source).set_timesteps(sigmas=sigmas)


@pytest.mark.parametrize("source", ["DDIMScheduler", "DDPMScheduler", "LMSDiscreteScheduler", None])
def test_set_timesteps_without_steps_or_a_grid_says_what_to_pass(source):
    """A source config answered set_timesteps(None) in its own raw words (DDPM: "'>' not supported between
    instances of 'NoneType' and 'int'"; DDIM: "missing 1 required positional argument"): every config now names
    num_inference_steps and what to pass."""
    for call in (lambda s: s.set_timesteps(), lambda s: s.set_timesteps(num_inference_steps=None)):
        with pytest.raises(ValueError, match=r"^num_inference_steps=None with no custom timesteps or sigmas gives no "
                                             r"grid: pass num_inference_steps, timesteps or sigmas$"):
            call(_vp(source))


TOO_FEW_STEP_STARTS = r"timesteps must be a 1-D sequence of at least one step start, got \[\]$"
TOO_FEW_LEVELS = (r"sigmas must be a 1-D sequence of at least two noise levels \(the start of each step, then where "
                  r"the last one ends, 0 for the config's end point\), got \[%s\]$")
TOO_FEW_APPENDED = (r"sigmas must be a 1-D sequence of at least one noise level \(the start of each step; the source "
                    r"appends where the last one ends\), got \[\]$")


@pytest.mark.parametrize("source, options, method", [
    ("DDPMScheduler", {}, "ddim"),  # DDPM's own set_timesteps indexed the empty list: a bare IndexError
    ("DDPMScheduler", dict(clip_sample=False), "ddim"),
    ("DDIMScheduler", {}, "ddim"),
    ("DPMSolverMultistepScheduler", {}, "dpm-solver++-2m"),
    ("EulerDiscreteScheduler", {}, "ddim"),  # Euler's own took the maximum of no sigmas: a RuntimeError
    ("HeunDiscreteScheduler", {}, "pie"),
    ("UniPCMultistepScheduler", {}, "unipc-2"),
])
def test_custom_grids_without_a_step_are_refused_by_name_on_every_vp_config(source, options, method):
    """timesteps=[] , sigmas=[] and a single sigma make no step: one ValueError naming the argument and the count
    allowed on every VP config, before the source's set_timesteps reads them; the scheduler is left as it was. A
    single step start is one step."""
    config = getattr(diffusers, source)(**options).config
    ours = PNDMKitScheduler.from_config(config, method=method)
    for kwargs, message in ((dict(timesteps=[]), TOO_FEW_STEP_STARTS), (dict(sigmas=[]), TOO_FEW_LEVELS % ""),
                            (dict(sigmas=[10.0]), TOO_FEW_LEVELS % "10.0"),
                            (dict(timesteps=torch.tensor([])), r"timesteps must be .* got tensor\(\[\]\)$")):
        with pytest.raises(ValueError, match="^" + message):
            ours.set_timesteps(**kwargs)
        assert ours.timesteps is None
    ours.set_timesteps(timesteps=[500])
    assert ours.timesteps.tolist() == [500.0] * ours.order and ours.num_inference_steps == 1


@pytest.mark.parametrize("source", ["FlowMatchEulerDiscreteScheduler", "EDMEulerScheduler"])
def test_custom_sigmas_without_a_step_are_refused_where_the_source_appends_the_end(source):
    """Flow-matching and EDM sources take only the step starts as sigmas (they append the end): none is refused
    by name, one is one step, as the source lays it out (EDMEulerScheduler's own set_timesteps fails on a list, so
    the swap hands it a tensor)."""
    config = getattr(diffusers, source)().config
    ours = PNDMKitScheduler.from_config(config, method="euler" if source.startswith("Flow") else "ddim")
    with pytest.raises(ValueError, match="^" + TOO_FEW_APPENDED):
        ours.set_timesteps(sigmas=[])
    for sigmas in ([0.5], [0.9, 0.4] if source.startswith("Flow") else [0.2, 0.6]):  # EDM's: its ramp, 0 at the top
        theirs = getattr(diffusers, source)()
        theirs.set_timesteps(sigmas=torch.tensor(sigmas, dtype=torch.float64) if source.startswith("EDM") else sigmas)
        ours.set_timesteps(sigmas=sigmas)
        assert ours.num_inference_steps == len(sigmas)
        np.testing.assert_allclose(ours.timesteps.double().numpy(), theirs.timesteps.double().numpy(), rtol=1e-6)


def test_a_last_step_that_would_start_at_the_end_point_is_refused():
    sched = _vp("DDIMScheduler", set_alpha_to_one=False)  # ends at abar_0, t = 0, s(0) = 0.01
    with pytest.raises(ValueError, match=r"the last step starts at t=-0.49999999999999994 but the config's end point "
                                         r"is t=0.0; the last step start must lie above it \(sigmas\[-2\] > "
                                         r"0.010000500037502575\)"):
        sched.set_timesteps(sigmas=[10.0, float(sched.schedule.s(-0.5)), 0.0])


def test_pipelines_retrieve_timesteps_passes_custom_grids_through():
    """A pipeline's retrieve_timesteps hands timesteps= / sigmas= to a scheduler whose set_timesteps names them:
    PNDMKitScheduler names both, so on a DDIM config (whose own set_timesteps names neither) they run."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import retrieve_timesteps

    with pytest.raises(ValueError, match="does not support custom timestep"):
        retrieve_timesteps(diffusers.DDIMScheduler(), timesteps=[901, 501, 101])
    ours = _vp("DDIMScheduler")
    timesteps, n = retrieve_timesteps(ours, timesteps=[901, 501, 101])
    assert timesteps.tolist() == [901, 501, 101] and n == 3
    timesteps, n = retrieve_timesteps(ours, sigmas=[10.0, 1.0, 0.1, 0.0])
    euler = diffusers.EulerDiscreteScheduler(**{key: ours.config[key] for key in TABLE})
    euler.set_timesteps(sigmas=[10.0, 1.0, 0.1, 0.0])
    assert n == 3 and np.allclose(timesteps.double().numpy(), euler.timesteps.double().numpy(), rtol=1e-6, atol=0)
    # Euler's float32 table: 8e-6 from the same interpolation on the float64 table at sigma = 0.1
    assert np.allclose(timesteps.double().numpy(), _euler_timesteps([10.0, 1.0, 0.1], ours.config), rtol=1e-5)
    # the network's timestep (Euler's, linear in log sigma) and pndmkit's time of sigma = 0.1 are 4e-3 apart
    assert 3.5e-3 < float(timesteps[2]) - ours.grid[2] < 4.5e-3
    timesteps, n = retrieve_timesteps(ours, sigmas=[10.0, 1.0, 0.1])
    assert n == 2 and np.round(timesteps.double().numpy(), 2).tolist() == [673.67, 258.09]  # the README's numbers
    edm = PNDMKitScheduler.from_config(diffusers.EDMDPMSolverMultistepScheduler().config, method="ddim")
    with pytest.raises(ValueError, match=r"sigmas= cannot be honoured for an EDMDPMSolverMultistepScheduler config: "
                                         r"its set_timesteps takes \['num_inference_steps'\]"):
        retrieve_timesteps(edm, sigmas=[10.0, 1.0, 0.1])


def test_no_host_read_of_device_timesteps():
    """step reads a timestep only on the CPU: a device tensor (here 'meta', which cannot be read) passes."""
    sched = PNDMKitScheduler.from_config(diffusers.DPMSolverMultistepScheduler().config, method="dpm-solver++-2m")
    sched.set_timesteps(4)
    sched.set_begin_index(0)
    x = noise((2, 16))
    for t in sched.timesteps:
        x = sched.step(net(x, t), torch.empty((), device="meta"), x).prev_sample
    assert sched.run.done and sched.nfe == 4


def test_order_is_evaluations_per_step():
    for method, order in (("ddim", 1), ("pie", 2), ("prk", 4), ("prk-s", 4), ("f-pndm", 1), ("plms", 1)):
        sched = PNDMKitScheduler.from_config(diffusers.DDIMScheduler(clip_sample=False).config, method=method)
        sched.set_timesteps(10)
        assert sched.order == order, method


# -- refusals, by name -------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, config, message", [
    ("DDIMScheduler", dict(thresholding=True), "thresholding=True cannot be honoured"),
    ("DDIMScheduler", dict(rescale_betas_zero_snr=True), "rescale_betas_zero_snr=True cannot be honoured"),
    ("DDIMScheduler", dict(timestep_spacing="middle", clip_sample=False), "timestep_spacing='middle'"),
    ("DPMSolverMultistepScheduler", dict(thresholding=True), "thresholding=True"),
    ("FlowMatchEulerDiscreteScheduler", dict(invert_sigmas=True), "invert_sigmas=True cannot be honoured"),
    ("FlowMatchEulerDiscreteScheduler", dict(stochastic_sampling=True), "stochastic_sampling=True"),
    ("EulerDiscreteScheduler", dict(timestep_type="continuous"), "timestep_type='continuous'"),
    ("DPMSolverMultistepScheduler", dict(use_flow_sigmas=True, prediction_type="epsilon"),
     "prediction_type='epsilon' cannot be honoured with flow sigmas"),
])
def test_refusals_name_the_field(source, config, message):
    with pytest.raises(ValueError, match=message):
        PNDMKitScheduler.from_config(getattr(diffusers, source)(**config).config, method="ddim")


def test_refusals_at_set_timesteps_and_for_methods():
    pndm = PNDMKitScheduler.from_config(diffusers.PNDMScheduler().config, method="plms")  # steps_offset=0
    with pytest.raises(ValueError, match="steps_offset=0, set_alpha_to_one=False.*step of length zero"):
        pndm.set_timesteps(1)  # its only step has length zero (at 10 steps the last is left out: it runs)
    flow = PNDMKitScheduler.from_config(diffusers.FlowMatchEulerDiscreteScheduler().config, method="plms")
    with pytest.raises(ValueError, match="cannot start at t=1.0, where alpha = 0"):
        flow.set_timesteps(10)
    with pytest.raises(ValueError, match="EDM"):
        network_model(lambda x, t: x, diffusers.EDMEulerScheduler().config)
    with pytest.raises(ValueError, match="use_dynamic_shifting"):  # the source's own refusal, named
        PNDMKitScheduler.from_config(diffusers.FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True).config,
                                     method="euler").set_timesteps(10)


def test_translate_reads_families_and_the_network_loader_uses_it():
    tr = translate(diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0).config)
    assert (tr.source, tr.family, tr.prediction, tr.schedule.t_max) == ("FlowMatchEulerDiscreteScheduler", "flow",
                                                                        "flow", 1.0)
    tr = translate(diffusers.EDMEulerScheduler().config)
    assert (tr.family, tr.told_prediction, repr(tr.schedule)) == ("edm", "x0", "EDM(sigma_min=0.002, sigma_max=80.0)")
    model = network_model(lambda x, t: x, diffusers.FlowMatchEulerDiscreteScheduler().config)
    assert model.prediction == "flow" and model.network_time(0.5) == 500.0
    config = diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0).config  # an Integrator built on the config's schedule
    integrator = pndmkit.get_method("euler").build(schedule_from_config(config))
    assert PNDMKitScheduler.from_config(config, method=integrator).config.method == "euler"


@pytest.mark.parametrize("source, config, method", [
    ("UniPCMultistepScheduler", dict(solver_order=2), "unipc-2"),
    ("DPMSolverMultistepScheduler", dict(), "dpm-solver++-2m"),
    ("DEISMultistepScheduler", dict(solver_order=3), "deis-3"),
])
def test_an_integrator_built_on_a_flow_sigmas_config_is_accepted(source, config, method):
    """use_flow_sigmas=True makes a UniPC, DPM-Solver or DEIS config flow matching, which only the source's fields
    say: an Integrator built on schedule_from_config of it runs (the same sample as the method by name), and one
    built on another schedule is refused, naming both."""
    theirs = counted(getattr(diffusers, source)(**config, **FLOW))
    schedule = schedule_from_config(theirs.config)
    assert isinstance(schedule, pndmkit.schedules.FlowMatching)
    integrator = pndmkit.get_method(method).build(schedule)
    ours = PNDMKitScheduler.from_config(theirs.config, method=integrator)
    assert ours.integrator is integrator and ours.config.method == method and repr(ours.schedule) == repr(schedule)
    named = PNDMKitScheduler.from_config(theirs.config, method=method)
    x_T = noise((4, 16), 1)
    with warnings.catch_warnings():  # the registered build is the method by name: no warning, on DEIS's
        warnings.simplefilter("error", ConventionWarning)  # zero-length last step (its flow sigmas) neither
        b, calls_ours = pipeline_loop(ours, 8, x_T)
    c, _ = pipeline_loop(named, 8, x_T)
    assert torch.equal(b, c) and repr(ours.integrator) == repr(named.integrator)
    if source != "DEISMultistepScheduler":  # DEIS is compared with its source in float64 (the zero-length tests)
        a, calls_theirs = pipeline_loop(theirs, 8, x_T)
        assert theirs.steps == calls_theirs == calls_ours == ours.nfe and ours.run.done
        assert rel(b, a) < 1e-6
    wrong = pndmkit.get_method(method).build(schedule_from_config(diffusers.DDIMScheduler().config))
    with pytest.raises(ValueError, match=r"^method is an Integrator built on DiscreteVP.linear\(T=1000\), but the "
                                         r"config describes FlowMatching\(shift=3.0, t_max=1.0\): build it on "
                                         r"pndmkit.integrations.diffusers.schedule_from_config\(config\)$"):
        PNDMKitScheduler.from_config(theirs.config, method=wrong)


# -- pipelines --------------------------------------------------------------------------------------------
class Calls(list):
    """Records the timestep of every forward call of a module while active."""

    def __init__(self, module):
        super().__init__()
        self.handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        t = args[1] if len(args) > 1 else kwargs["timestep"]
        self.append(float(t.reshape(-1)[0]) if isinstance(t, torch.Tensor) else float(t))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                 layers_per_block=1, norm_num_groups=4, down_block_types=("DownBlock2D",) * 2,
                                 up_block_types=("UpBlock2D",) * 2).eval()


@pytest.mark.parametrize("use_clipped_model_output, atol", [(True, 2e-6), (None, 5e-5)])
def test_ddim_pipeline_default_config_clips_like_ddim(unet, use_clipped_model_output, atol):
    """DDIMScheduler's default config (clip_sample=True) swapped naively: DDIM's clipped step, with the pipeline's
    use_clipped_model_output (None, its default, pairs the clipped x0 with the unclipped eps)."""
    pipe = diffusers.DDIMPipeline(unet, diffusers.DDIMScheduler())
    pipe.set_progress_bar_config(disable=True)
    theirs = counted(pipe.scheduler)
    run = lambda: pipe(batch_size=2, num_inference_steps=8, generator=torch.Generator().manual_seed(1),  # noqa: E731
                       output_type="np", use_clipped_model_output=use_clipped_model_output).images
    with Calls(unet) as calls_theirs:
        out_theirs = run()
    ours = pipe.scheduler = PNDMKitScheduler.from_config(theirs.config, method="ddim")
    with Calls(unet) as calls_ours:
        out_ours = run()
    assert type(theirs) is diffusers.DDIMScheduler and theirs.steps == len(calls_theirs) == 8
    assert ours.run.done and ours.nfe == len(calls_ours) == 8 and calls_ours == calls_theirs
    np.testing.assert_allclose(out_ours, out_theirs, rtol=0, atol=atol)  # images in [0, 1]


def test_ddpm_pipeline_default_config(unet):
    """DDPMScheduler's default config (clip_sample=True): pndmkit's deterministic method on DDPM's own grid."""
    theirs = diffusers.DDPMScheduler()
    ours = PNDMKitScheduler.from_config(theirs.config, method="dpm-solver++-2m")
    pipe = diffusers.DDPMPipeline(unet, ours)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.scheduler is ours
    with Calls(unet) as calls:
        pipe(batch_size=1, num_inference_steps=5, output_type="np")
    theirs.set_timesteps(5)
    assert calls == theirs.timesteps.double().tolist() == [800, 600, 400, 200, 0] and ours.nfe == 5
    assert ours.grid[-1] == -1.0  # DDPM ends at abar = 1


@pytest.mark.parametrize("use_clipped_model_output", [None, False, True])
def test_ddim_on_a_clipping_ddpm_config_is_ddim_from_config(unet, use_clipped_model_output):
    """DDPMScheduler's default config (clip_sample=True, what DDPM checkpoints ship) with method='ddim': the DDIM
    that DDIMScheduler.from_config of that config runs, in both of its conventions. DDIMPipeline turns the DDPM
    scheduler it is given into that DDIMScheduler; the swap is then put in its place."""
    ddpm = diffusers.DDPMScheduler(variance_type="fixed_large")
    pipe = diffusers.DDIMPipeline(unet, ddpm)
    pipe.set_progress_bar_config(disable=True)
    theirs = counted(pipe.scheduler)
    assert type(theirs) is diffusers.DDIMScheduler and theirs.config.clip_sample is True

    def run(**kwargs):
        return pipe(batch_size=2, num_inference_steps=10, generator=torch.Generator().manual_seed(1),
                    output_type="np", **kwargs).images

    kwargs = {} if use_clipped_model_output is None else dict(use_clipped_model_output=use_clipped_model_output)
    with Calls(unet) as calls_theirs:
        out_theirs = run(**kwargs)
    ours = pipe.scheduler = PNDMKitScheduler.from_config(ddpm.config, method="ddim")
    assert ours.translation.source == "DDPMScheduler" and ours.translation.clip == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConventionWarning)  # the convention is DDIM's: nothing to say
        with Calls(unet) as calls_ours:
            out_ours = run(**kwargs)
    assert pipe.scheduler is ours and ours.run.done and ours.nfe == len(calls_ours) == 10
    assert theirs.steps == len(calls_theirs) == 10 and calls_ours == calls_theirs
    np.testing.assert_allclose(out_ours, out_theirs, rtol=0, atol=5e-5)  # images in [0, 1]
    other = run(use_clipped_model_output=not use_clipped_model_output)  # the other convention: far off
    assert float(np.abs(other - out_theirs).max()) > 0.1


@pytest.fixture(scope="module")
def sd_parts():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, norm_num_groups=4, attention_head_dim=4).eval()
    vae = diffusers.AutoencoderKL(block_out_channels=(8, 16), latent_channels=4, norm_num_groups=4, layers_per_block=1,
                                  down_block_types=("DownEncoderBlock2D",) * 2,
                                  up_block_types=("UpDecoderBlock2D",) * 2).eval()
    text = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=64,
        max_position_embeddings=8, bos_token_id=0, eos_token_id=1, pad_token_id=1)).eval()
    return unet, vae, text


SD = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1)
EMBEDS = dict(prompt_embeds=noise((1, 4, 16), 3), negative_prompt_embeds=noise((1, 4, 16), 4))


def run_sd(parts, sched, cls=None, **kwargs):
    unet, vae, text = parts
    cls = cls or diffusers.StableDiffusionPipeline
    pipe = cls(vae=vae, text_encoder=text, tokenizer=None, unet=unet, scheduler=sched, safety_checker=None,
               feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.scheduler is sched
    with Calls(unet) as calls:
        out = pipe(**EMBEDS, guidance_scale=7.5, output_type="latent", generator=torch.Generator().manual_seed(5),
                   **kwargs).images
    return out, calls


@pytest.mark.parametrize("source, config, method", [
    ("DPMSolverMultistepScheduler", SD, "dpm-solver++-2m"),
    ("UniPCMultistepScheduler", dict(SD, solver_order=3), "unipc-3"),
    ("EulerDiscreteScheduler", dict(SD, timestep_spacing="leading"), "ddim"),
    ("PNDMScheduler", dict(SD, skip_prk_steps=True, set_alpha_to_one=False), "plms"),
])
def test_stable_diffusion_naive_swap(sd_parts, source, config, method):
    theirs = counted(getattr(diffusers, source)(**config))
    out_theirs, calls_theirs = run_sd(sd_parts, theirs, num_inference_steps=6, height=16, width=16)
    ours = PNDMKitScheduler.from_config(theirs.config, method=method)
    out_ours, calls_ours = run_sd(sd_parts, ours, num_inference_steps=6, height=16, width=16)
    assert theirs.steps == len(calls_theirs) and ours.nfe == len(calls_ours) and ours.run.done
    assert calls_ours == calls_theirs
    assert rel(out_ours, out_theirs) < 2e-6


@pytest.mark.parametrize("source, method, ok", [
    ("DDIMScheduler", "ddim", True), ("DPMSolverMultistepScheduler", "dpm-solver++-2m", True),
    ("EulerDiscreteScheduler", "ddim", True), ("UniPCMultistepScheduler", "unipc-2", True),
    ("DDIMScheduler", "pie", True), ("DDIMScheduler", "prk", True), ("DDIMScheduler", "plms", False),
    ("DDIMScheduler", "f-pndm", False),
])
def test_image_to_image_keeps_the_strength_or_refuses_naming_it(sd_parts, source, method, ok):
    theirs = counted(getattr(diffusers, source)(**SD, clip_sample=False) if source == "DDIMScheduler"
                     else getattr(diffusers, source)(**SD))
    image = noise((1, 3, 16, 16), 6).clamp(-1, 1) / 2 + 0.5
    kwargs = dict(image=image, strength=0.6, num_inference_steps=10)
    cls = diffusers.StableDiffusionImg2ImgPipeline
    ours = PNDMKitScheduler.from_config(theirs.config, method=method)
    if not ok:
        with pytest.raises(ValueError, match=r"image-to-image running the last 6 of 10 steps \(the strength asked "
                                             r"keeps 6; begin_index=.*cannot be honoured"):
            run_sd(sd_parts, ours, cls, **kwargs)
        return
    out_ours, calls_ours = run_sd(sd_parts, ours, cls, **kwargs)
    out_theirs, calls_theirs = run_sd(sd_parts, theirs, cls, **kwargs)
    assert ours.nfe == len(calls_ours) == 6 * ours.order and theirs.steps == len(calls_theirs) == 6
    assert calls_ours[0] == calls_theirs[0]  # the strength asked: the same first noise level
    if method in ("ddim", "dpm-solver++-2m", "unipc-2"):  # the same method: the same sampler
        assert calls_ours == calls_theirs and rel(out_ours, out_theirs) < 2e-6


@pytest.mark.parametrize("method", ["ddim", "ipndm", "plms", "prk", "dpm-solver++-2m", "unipc-3"])
def test_image_to_image_strength_that_keeps_no_step_is_refused_naming_it(sd_parts, method):
    """strength 0.05 of 10 steps keeps int(10 * 0.05) = 0 steps: refused before any network call, naming strength
    and the range that runs (diffusers' own DDIM returns an empty batch there); 0.1 runs the last step."""
    image = noise((1, 3, 16, 16), 6).clamp(-1, 1) / 2 + 0.5
    cls = diffusers.StableDiffusionImg2ImgPipeline
    theirs = counted(diffusers.DDIMScheduler(**SD))
    empty, calls_theirs = run_sd(sd_parts, theirs, cls, image=image, strength=0.05, num_inference_steps=10)
    assert empty.shape[0] == 0 and calls_theirs == [] and theirs.steps == 0
    ours = PNDMKitScheduler.from_config(theirs.config, method=method, clip_sample=False)
    with pytest.raises(ValueError, match=r"starts image-to-image after the last of the 10 steps: the strength asked runs "
                                         r"no step .*none for strength < 1/10\); pass strength in \[0.1, 1\], or "
                                         r"more num_inference_steps$"):
        run_sd(sd_parts, ours, cls, image=image, strength=0.05, num_inference_steps=10)
    assert ours.run is None
    if method in ("ddim", "ipndm", "dpm-solver++-2m", "unipc-3"):  # one step: the last, first order in each
        out, calls_ours = run_sd(sd_parts, ours, cls, image=image, strength=0.1, num_inference_steps=10)
        ddim = counted(diffusers.DDIMScheduler(**SD, clip_sample=False))
        out_theirs, calls_theirs = run_sd(sd_parts, ddim, cls, image=image, strength=0.1, num_inference_steps=10)
        assert calls_ours == calls_theirs == [1.0] and ours.nfe == 1 == ddim.steps and ours.run.done
        assert rel(out, out_theirs) < 2e-6


def test_image_to_image_strength_on_a_zero_length_grid_counts_the_source_steps(sd_parts):
    """DPM-Solver with Karras sigmas and final_sigmas_type='sigma_min': of 10 steps the last has length zero, so
    pndmkit takes 9, but the pipeline counts 10 (t_start = 10 - int(10 * strength)). strength 0.15 keeps only the
    zero-length step: refused, naming 0.2 (not 1/9, which int(10 * strength) also rounds to one step); 0.2 runs the
    last real step, as the source (whose zero-length step is the identity) does."""
    image = noise((1, 3, 16, 16), 6).clamp(-1, 1) / 2 + 0.5
    cls = diffusers.StableDiffusionImg2ImgPipeline
    theirs = counted(diffusers.DPMSolverMultistepScheduler(**SD, **KARRAS, **SIGMA_MIN))
    ours = PNDMKitScheduler.from_config(theirs.config, method="dpm-solver++-2m")
    with pytest.raises(ValueError, match=r"begin_index=9 \(t_start 9 \* order 1\) starts image-to-image after the last "
                                         r"of the 10 steps, the last of length zero, which pndmkit leaves out \(its "
                                         r"num_inference_steps is 9\): .*none for strength < 2/10\); pass strength in "
                                         r"\[0.2, 1\], or more num_inference_steps$"):
        run_sd(sd_parts, ours, cls, image=image, strength=0.15, num_inference_steps=10)
    assert ours.num_inference_steps == 9 and len(ours.timesteps) == 9 and ours.run is None
    with pytest.raises(ValueError, match=r"begin_index=10 \(t_start 10 \* order 1\) .*pass strength in \[0.2, 1\]"):
        run_sd(sd_parts, ours, cls, image=image, strength=0.05, num_inference_steps=10)  # t_start past pndmkit's 9
    out, calls_ours = run_sd(sd_parts, ours, cls, image=image, strength=0.2, num_inference_steps=10)
    out_theirs, calls_theirs = run_sd(sd_parts, theirs, cls, image=image, strength=0.2, num_inference_steps=10)
    last, zero = theirs.timesteps[-2:].tolist()
    assert calls_ours == [last] and calls_theirs == [last, zero]  # the source's second: its zero-length step
    assert ours.run.done and rel(out, out_theirs) < 2e-6

def image_to_image_loop(sched, steps, strength, x0, z):
    """What Stable Diffusion's image-to-image pipeline does with a scheduler: the last ``int(steps * strength)``
    steps, from ``x0`` noised to the first of them."""
    sched.set_timesteps(steps)
    begin = (steps - int(steps * strength)) * sched.order
    sched.set_begin_index(begin)
    timesteps = sched.timesteps[begin:]
    x = sched.add_noise(x0, z, timesteps[:1])
    for t in timesteps:
        x = sched.step(net(sched.scale_model_input(x, t), t), t, x).prev_sample
    return x, len(timesteps)


def lms_image_to_image(sched, steps, strength, x0, z, consistent=False):
    """image_to_image_loop on an ``LMSDiscreteScheduler``; with ``consistent`` each step is given the order of the
    derivatives it holds since begin_index (``order=min(len(derivatives) + 1, 4)``) rather than the order its step
    index implies."""
    sched.set_timesteps(steps)
    begin = steps - int(steps * strength)
    sched.set_begin_index(begin)
    timesteps = sched.timesteps[begin:]
    x = sched.add_noise(x0, z, timesteps[:1])
    for t in timesteps:
        kwargs = dict(order=min(len(sched.derivatives) + 1, 4)) if consistent else {}
        x = sched.step(net(sched.scale_model_input(x, t), t), t, x, **kwargs).prev_sample
    return x


@pytest.mark.parametrize("steps, strength", [(10, 0.5), (20, 0.3)])
def test_lms_image_to_image_says_where_lms_itself_is_inconsistent(steps, strength):
    """On an image-to-image slice LMSDiscreteScheduler takes the order of its formula from its step index, not from
    the derivatives it holds since begin_index, so its first steps are not consistent steps. The swap's ipndm-v
    (LMS in s) is LMSDiscreteScheduler given the order of the derivatives it holds (1e-6 here), several percent
    from the source's own run, and says so with a ConventionWarning; at strength 1 both agree and nothing is
    said."""
    x0, z = noise((2, 16), 1), noise((2, 16), 2)
    config = diffusers.LMSDiscreteScheduler().config
    ours = PNDMKitScheduler.from_config(config, method="ipndm-v")
    with pytest.warns(ConventionWarning, match=rf"^image-to-image from begin_index={steps - int(steps * strength)} on "
                                               r"an LMSDiscreteScheduler config: diffusers' LMSDiscreteScheduler gives "
                                               r"no reference to match there: its step takes the order .* from the "
                                               r"step index") as said:
        out_ours = image_to_image_loop(ours, steps, strength, x0, z)[0]
    assert len([w for w in said if w.category is ConventionWarning]) == 1
    theirs, fixed = counted(diffusers.LMSDiscreteScheduler()), counted(diffusers.LMSDiscreteScheduler())
    out_theirs = lms_image_to_image(theirs, steps, strength, x0, z)
    out_fixed = lms_image_to_image(fixed, steps, strength, x0, z, consistent=True)
    assert ours.run.done and ours.nfe == theirs.steps == fixed.steps == int(steps * strength)
    assert rel(out_ours, out_fixed) < 1e-6 < 1e-2 < rel(out_ours, out_theirs)
    ours, theirs = PNDMKitScheduler.from_config(config, method="ipndm-v"), counted(diffusers.LMSDiscreteScheduler())
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConventionWarning)  # begin_index 0: the source's own run, nothing to say
        out_ours = image_to_image_loop(ours, steps, 1.0, x0, z)[0]
    assert theirs.steps == 0 and rel(out_ours, lms_image_to_image(theirs, steps, 1.0, x0, z)) < 1e-6
    assert theirs.steps == steps


@pytest.mark.parametrize("options, method", [(dict(solver_type="bh1"), "unipc-2"),
                                             (dict(solver_type="bh1", solver_order=3), "unipc-3"),
                                             (dict(predict_x0=False), "unipc-2")])
def test_unipc_last_step_to_sigma_zero_is_finite_where_the_source_returns_nan(options, method):
    """UniPC's last step to sigma = 0 (final_sigmas_type='zero') has an infinite log-SNR step h; with B(h) = h (bh1)
    or on eps (predict_x0=False) diffusers' UniPCMultistepScheduler returns NaN there. The swap equals it on every
    step before and returns a finite sample."""
    x_T = noise((2, 16), 7)
    theirs = counted(diffusers.UniPCMultistepScheduler(**options))
    ours = PNDMKitScheduler.from_config(theirs.config, method=method)
    samples = {}
    for name, sched in (("theirs", theirs), ("ours", ours)):
        sched.set_timesteps(6)
        x, samples[name] = x_T, []
        for t in sched.timesteps:
            x = sched.step(net(x, t), t, x).prev_sample
            samples[name].append(x)
    assert theirs.steps == ours.nfe == 6 and ours.run.done
    for a, b in zip(samples["ours"][:-1], samples["theirs"][:-1]):
        assert rel(a, b) < 1e-6
    assert torch.isnan(samples["theirs"][-1]).all() and torch.isfinite(samples["ours"][-1]).all()


def pndm_image_to_image_by_hand(sched, steps, strength, x0, z):
    """Stable Diffusion's image-to-image loop written out for a scheduler without ``set_begin_index``
    (``PNDMScheduler``): set_timesteps, keep ``timesteps[t_start * order:]`` with ``t_start = steps -
    int(steps * strength)``, noise ``x0`` to the first kept timestep, step. Returns the sample, the kept timesteps and
    the (from, to) timesteps of every step the scheduler took."""
    sched.set_timesteps(steps)
    t_start = steps - min(int(steps * strength), steps)
    timesteps = sched.timesteps[t_start * sched.order:]
    moves, inner = [], sched._get_prev_sample

    def spy(sample, timestep, prev_timestep, model_output):
        moves.append((int(timestep), int(prev_timestep)))
        return inner(sample, timestep, prev_timestep, model_output)

    sched._get_prev_sample = spy
    x = sched.add_noise(x0, z, timesteps[:1])
    for t in timesteps:
        x = sched.step(net(sched.scale_model_input(x, t), t), t, x).prev_sample
    return x, timesteps.tolist(), moves


@pytest.mark.parametrize("steps", [10, 20])
def test_plms_image_to_image_on_a_zero_length_pndm_config_is_refused_where_pndm_itself_is_inconsistent(steps):
    """The default PNDMScheduler config (skip_prk_steps, 'leading', set_alpha_to_one=False) ends with a step of
    length zero. At strength 1 the swap's plms is PNDMScheduler's loop (1e-6). Below 1 the pipeline's slice drops the
    warm-up's repeated timestep and PNDMScheduler, whose step counts calls, steps its third sample from the timestep
    after the one it reached: no solution of the ODE from the noised image (0.16 to 0.46 from the converged one here,
    where PLMS run consistently from the same start is 10 or more times closer). pndmkit's plms cannot run on that
    slice (its warm-up needs the repeated timestep) and refuses, counting the steps as the pipeline does and saying
    that PNDMScheduler gives no reference there."""
    x0, z = noise((2, 16), 1), noise((2, 16), 2)
    theirs = counted(diffusers.PNDMScheduler(skip_prk_steps=True))
    whole, kept, moves = pndm_image_to_image_by_hand(theirs, steps, 1.0, x0, z)
    ours = PNDMKitScheduler.from_config(theirs.config, method="plms")
    out_ours, kept_ours = image_to_image_loop(ours, steps, 1.0, x0, z)
    assert theirs.steps == len(kept) == steps + 1 and kept_ours == ours.nfe == steps and ours.run.done
    assert [to for _, to in moves[1:-1]] == [start for start, _ in moves[2:]]  # an unbroken chain of steps
    assert rel(out_ours, whole) < 1e-6
    jump = 1000 // steps
    for strength in (0.3, 0.5, 0.8):
        theirs = counted(diffusers.PNDMScheduler(skip_prk_steps=True))
        out_theirs, kept, moves = pndm_image_to_image_by_hand(theirs, steps, strength, x0, z)
        start, n = kept[0], int(steps * strength)
        assert theirs.steps == len(kept) == n + 1 and kept[-1] == 0  # the zero-length step's evaluation included
        assert moves[:3] == [(start, start - jump), (start, start - jump), (start - 2 * jump, start - 3 * jump)]
        # against the converged ODE solution from the same noised start, and PLMS run consistently from it
        x_start = theirs.add_noise(x0, z, torch.tensor([start]))
        model = lambda x, t: net(x, t)  # noqa: E731
        exact = pndmkit.sample(model, x_start, schedule=ours.schedule, method="rk4",
                               grid=np.linspace(start, 0.0, 401)).x
        plms = pndmkit.sample(model, x_start, schedule=ours.schedule, method="plms",
                              grid=np.arange(start, -1, -jump, dtype=float)).x
        assert rel(out_theirs, exact) > 0.15 and rel(out_theirs, exact) > 8 * rel(plms, exact)  # 11 to 150
        ours = PNDMKitScheduler.from_config(theirs.config, method="plms")
        with pytest.raises(ValueError) as info:
            image_to_image_loop(ours, steps, strength, x0, z)
        t_start = steps - n
        assert str(info.value).startswith(
            f"image-to-image running the last {n} of {steps} steps, the last of length zero, which pndmkit leaves out "
            f"(the strength asked keeps {n}; begin_index={t_start} = t_start {t_start} * order 1) cannot be honoured "
            f"by 'plms': begin_index={t_start}: started afresh at t={start}")
        assert str(info.value).endswith(
            "or strength=1; diffusers' PNDMScheduler gives no reference to match there: its step counts its calls, not "
            "the timesteps it is passed, so on the pipeline's slice it steps samples from other timesteps than theirs "
            "(in PLMS mode from its third call: the slice lacks the warm-up's repeated timestep)")
        assert ours.run is None and ours.num_inference_steps == steps - 1


@pytest.mark.parametrize("steps, strength", [(10, 0.5), (20, 0.8)])
def test_heun_image_to_image(steps, strength):
    """Heun's order 2 slices its timesteps at the start of a step, its last (Euler) step of one evaluation
    included: the swap's order is 2 too, and runs the same evaluations."""
    x0, z = noise((2, 16), 1), noise((2, 16), 2)
    theirs = counted(diffusers.HeunDiscreteScheduler(timestep_spacing="trailing"))
    out_theirs, kept = image_to_image_loop(theirs, steps, strength, x0, z)
    ours = PNDMKitScheduler.from_config(theirs.config, method="pie")
    out_ours, kept_ours = image_to_image_loop(ours, steps, strength, x0, z)
    assert ours.order == theirs.order == 2 and ours.run.done
    assert theirs.steps == kept == kept_ours == ours.nfe == 2 * int(steps * strength) - 1
    assert rel(out_ours, out_theirs) < 1e-6


@pytest.mark.parametrize("source, config, method", [
    ("DPMSolverMultistepScheduler", dict(solver_order=3), "dpm-solver++-3m"),
    ("DEISMultistepScheduler", dict(solver_order=3), "deis-3"),
    ("UniPCMultistepScheduler", dict(solver_order=3), "unipc-3"),
    ("DPMSolverMultistepScheduler", dict(solver_order=2), "dpm-solver++-2m"),
])
@pytest.mark.parametrize("steps, strength", [(20, 0.5), (25, 0.3), (20, 0.8), (10, 0.5)])
def test_image_to_image_lowers_the_last_steps_as_the_source_counts_them(source, config, method, steps, strength):
    """DPM-Solver and DEIS lower their last two steps on grids of fewer than 15 steps, counting the whole grid
    (``len(timesteps)``) also where image-to-image runs only its last steps; their warm-up starts at the first step
    run. The swap runs the same orders: 20 steps at strength 0.5 keep 10, and neither side lowers them."""
    x0, z = noise((2, 16), 1), noise((2, 16), 2)
    theirs = counted(getattr(diffusers, source)(**config))
    out_theirs, kept = image_to_image_loop(theirs, steps, strength, x0, z)
    ours = PNDMKitScheduler.from_config(theirs.config, method=method)
    out_ours, kept_ours = image_to_image_loop(ours, steps, strength, x0, z)
    assert theirs.steps == kept == kept_ours == ours.nfe == int(steps * strength) and ours.run.done
    # DEISMultistepScheduler computes its weights from float32 alphas: 3e-6 at 25 steps, in float64 samples too
    assert rel(out_ours, out_theirs) < (1e-5 if method == "deis-3" else 2e-6)
    lowered = ours.run.integrator.estimator.lower_order_final
    assert lowered == (steps < 15 or method.startswith("unipc"))  # UniPC caps by the steps left alone
    if not lowered and kept < 15 and method != "dpm-solver++-2m":  # a fresh run on the slice alone lowers: 1e-3 off
        begin = steps - kept
        fresh = pndmkit.sample(net, ours.add_noise(x0, z, ours.timesteps[begin:begin + 1]), schedule=ours.schedule,
                               method=ours.integrator, grid=ours.grid[begin:])
        assert fresh.nfe == kept and ours.integrator.estimator.lower_order_final
        assert rel(fresh.x, out_theirs) > 1e-3


@pytest.fixture(scope="module")
def sd3_parts():
    torch.manual_seed(0)
    transformer = diffusers.SD3Transformer2DModel(
        sample_size=8, patch_size=1, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=8, out_channels=4,
        pos_embed_max_size=16).eval()
    vae = diffusers.AutoencoderKL(block_out_channels=(8, 16), latent_channels=4, norm_num_groups=4, layers_per_block=1,
                                  down_block_types=("DownEncoderBlock2D",) * 2,
                                  up_block_types=("UpDecoderBlock2D",) * 2, shift_factor=0.0,
                                  scaling_factor=1.0).eval()
    return transformer, vae


def run_sd3(parts, sched, cls=None, **kwargs):
    transformer, vae = parts
    cls = cls or diffusers.StableDiffusion3Pipeline
    pipe = cls(transformer=transformer, scheduler=sched, vae=vae, text_encoder=None, tokenizer=None,
               text_encoder_2=None, tokenizer_2=None, text_encoder_3=None, tokenizer_3=None)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.scheduler is sched
    g = lambda shape, seed: noise(shape, seed)  # noqa: E731
    with Calls(transformer) as calls:
        out = pipe(prompt_embeds=g((1, 4, 16), 7), pooled_prompt_embeds=g((1, 8), 8),
                   negative_prompt_embeds=g((1, 4, 16), 9), negative_pooled_prompt_embeds=g((1, 8), 10),
                   guidance_scale=3.0, height=16, width=16, output_type="latent",
                   generator=torch.Generator().manual_seed(11), **kwargs).images
    return out, calls


@pytest.mark.parametrize("config", [dict(shift=3.0), dict(use_dynamic_shifting=True, base_image_seq_len=16,
                                                          max_image_seq_len=256)])
@pytest.mark.parametrize("method", ["euler", "ddim"])
def test_stable_diffusion_3_flow_matching(sd3_parts, config, method):
    theirs = counted(diffusers.FlowMatchEulerDiscreteScheduler(**config))
    out_theirs, calls_theirs = run_sd3(sd3_parts, theirs, num_inference_steps=5)
    ours = PNDMKitScheduler.from_config(theirs.config, method=method)
    out_ours, calls_ours = run_sd3(sd3_parts, ours, num_inference_steps=5)
    assert theirs.steps == len(calls_theirs) == 5 and ours.nfe == len(calls_ours) == 5 and ours.run.done
    assert calls_ours == calls_theirs and calls_ours[0] == 1000.0  # from sigma = 1
    assert rel(out_ours, out_theirs) < 5e-7


def test_stable_diffusion_3_image_to_image(sd3_parts):
    theirs = counted(diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0))
    kwargs = dict(image=noise((1, 3, 16, 16), 12).clamp(-1, 1) / 2 + 0.5, strength=0.6, num_inference_steps=10)
    cls = diffusers.StableDiffusion3Img2ImgPipeline
    out_theirs, calls_theirs = run_sd3(sd3_parts, theirs, cls, **kwargs)
    ours = PNDMKitScheduler.from_config(theirs.config, method="euler")
    out_ours, calls_ours = run_sd3(sd3_parts, ours, cls, **kwargs)
    assert theirs.steps == len(calls_theirs) == 6 == ours.nfe == len(calls_ours)
    assert calls_ours == calls_theirs
    assert rel(out_ours, out_theirs) < 5e-7


@pytest.mark.parametrize("source", ["LCMScheduler", "TCDScheduler"])
def test_configs_of_schedulers_pndmkit_does_not_read_are_refused_by_their_fields(source):
    import diffusers

    from pndmkit.integrations.diffusers import PNDMKitScheduler

    config = getattr(diffusers, source)().config
    with pytest.raises(ValueError, match=r"^LCMScheduler or TCDScheduler \(the same fields\) configs cannot be "
                                         r"honoured: pndmkit reads the configs of DDPMScheduler, DDIMScheduler"):
        PNDMKitScheduler.from_config(config, method="ddim")
    # a plain mapping of the same fields (no marks of a diffusers config): refused by the fields no source has
    plain = {key: value for key, value in config.items() if not key.startswith("_")}
    with pytest.raises(ValueError, match=r"config fields \['original_inference_steps', 'timestep_scaling'\] belong to "
                                         r"a scheduler pndmkit does not read"):
        PNDMKitScheduler.from_config(plain, method="ddim")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy 2 on KDPM2's own constructor
@pytest.mark.parametrize("source, named", [
    ("IPNDMScheduler", "IPNDMScheduler"),
    ("KDPM2DiscreteScheduler", "KDPM2AncestralDiscreteScheduler or KDPM2DiscreteScheduler"),
    ("DDIMInverseScheduler", "DDIMInverseScheduler"),
    ("DPMSolverMultistepInverseScheduler", "DPMSolverMultistepInverseScheduler"),
    ("SASolverScheduler", "SASolverScheduler"),
])
def test_in_memory_configs_of_schedulers_pndmkit_does_not_read_are_refused_by_class(source, named):
    """An in-memory config carries no _class_name: its class is recognised by its fields and the defaults it lists
    (IPNDM's config would otherwise lay out a DDPM grid; KDPM2 takes exactly LMS's fields, with its own defaults)."""
    from pndmkit.integrations.diffusers import scheduler_class

    config = getattr(diffusers, source)().config
    assert "_class_name" not in config and scheduler_class(config) in named.split(" or ")
    with pytest.raises(ValueError, match=rf"^{named}( \(the same fields\))? configs cannot be honoured: pndmkit "
                                         rf"reads the configs of DDPMScheduler, .*, FlowMatchEulerDiscreteScheduler$"):
        PNDMKitScheduler.from_config(config, method="ipndm")


@pytest.mark.parametrize("source", SOURCES)
def test_in_memory_configs_of_the_sources_are_recognised(source):
    """Every source's own config, and a DDIM config made from it (which keeps its non-default fields), reads as
    the class that made it; LMS's config is not KDPM2's, whose fields are the same."""
    from pndmkit.integrations.diffusers import scheduler_class

    config = getattr(diffusers, source)().config
    assert scheduler_class(config) == source and scheduler_class(dict(config)) == source
    assert PNDMKitScheduler.from_config(config, method="ddim", clip_sample=False).config.source == source
    if source not in ("EDMEulerScheduler", "EDMDPMSolverMultistepScheduler", "FlowMatchEulerDiscreteScheduler"):
        made = getattr(diffusers, source)(beta_schedule="scaled_linear", num_train_timesteps=500)
        chained = diffusers.DDIMScheduler.from_config(made.config).config
        assert chained.num_train_timesteps == 500 and scheduler_class(chained) == "DDIMScheduler"


def test_the_sde_variant_of_dpm_solver_is_refused_by_name():
    import diffusers

    from pndmkit.integrations.diffusers import PNDMKitScheduler

    config = diffusers.DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++").config
    with pytest.raises(ValueError, match=r"algorithm_type='sde-dpmsolver\+\+' cannot be honoured: the SDE variant adds"):
        PNDMKitScheduler.from_config(config, method="dpm-solver++-2m")


def test_a_trailing_grid_that_ends_in_a_zero_length_step_runs_without_it():
    """'trailing' spacing from N > 2 T / 3 steps on starts its last step at t=0, where set_alpha_to_one=False ends
    it: a step of length zero, which the swap leaves out as it does on 'leading' grids (once refused)."""
    config = diffusers.DDIMScheduler(clip_sample=False, timestep_spacing="trailing", set_alpha_to_one=False).config
    sched = PNDMKitScheduler.from_config(config, method="ipndm")
    theirs = diffusers.DDIMScheduler.from_config(config)
    for steps in (1000, 667):
        sched.set_timesteps(steps)
        theirs.set_timesteps(steps)
        assert theirs.timesteps[-1] == 0 and sched.timesteps.tolist() == theirs.timesteps.tolist()[:-1]
        assert sched.grid[-1] == 0.0 < sched.grid[-2] and sched.num_inference_steps == steps - 1
    sched.set_timesteps(666)  # no step of length zero
    assert sched.grid[-1] == 0.0 and sched.grid[-2] == 1.0 and sched.num_inference_steps == 666


# -- a source grid whose last step has length zero (sigma_min twice) ----------------------------------------------
def samples(sched, steps, x_T, dtype=torch.float32, levels=None):
    """Every sample of a pipeline loop (the start first); ``levels``: the source's sigmas replaced after
    ``set_timesteps`` (a float64 run on given noise levels)."""
    sched.set_timesteps(steps)
    if levels is not None:
        sched.sigmas = torch.as_tensor(levels, dtype=torch.float64)
    x = (x_T * getattr(sched, "init_noise_sigma", 1.0)).to(dtype)
    out = [x]
    for t in sched.timesteps:
        x = sched.step(net(sched.scale_model_input(x, t), t), t, x).prev_sample
        out.append(x)
    return out


KARRAS, EXPONENTIAL, BETA, LU = (dict(use_karras_sigmas=True), dict(use_exponential_sigmas=True),
                                 dict(use_beta_sigmas=True), dict(use_lu_lambdas=True))
FLOW = dict(use_flow_sigmas=True, flow_shift=3.0, prediction_type="flow_prediction")
# (source, config, method, whether its zero-length step corrects the last step, relative tolerance): every sigma
# kind each source has, ending at sigma_min twice
ZERO_LENGTH = [("DPMSolverMultistepScheduler", dict(**kind, **SIGMA_MIN, **more), method, False, tol)
               for more, method in ((dict(), "dpm-solver++-2m"), (dict(solver_order=3), "dpm-solver++-3m"),
                                    (dict(algorithm_type="dpmsolver"), "dpm-solver-2m"))
               for kind, tol in ((KARRAS, 2e-6), (EXPONENTIAL, 2e-6), (BETA, 5e-6), (LU, 2e-6))] + [
    ("UniPCMultistepScheduler", dict(**kind, **SIGMA_MIN, **more), method, True, tol)
    for more, method in ((dict(), "unipc-2"), (dict(solver_order=3), "unipc-3"))
    for kind, tol in ((KARRAS, 2e-6), (EXPONENTIAL, 2e-6), (BETA, 1e-5), (FLOW, 2e-6))] + [
    # DEIS ends its sigma grids at sigma_min twice whatever the config; float32 rounding of its third-order weights
    # (differences of antiderivatives) moves it by up to 1e-3 from pndmkit on beta sigmas, so DEIS runs in float64
    # on the source's own noise levels (below)
    ("DEISMultistepScheduler", dict(solver_order=3, **kind), "deis-3", False, 1e-6)
    for kind in (KARRAS, EXPONENTIAL, BETA, FLOW)] + [
    # another beta schedule, every sigma kind
    (source, dict(beta_schedule="scaled_linear", **kind, **SIGMA_MIN), method, corrects, 1e-5)
    for source, method, corrects, kinds in (
        ("DPMSolverMultistepScheduler", "dpm-solver++-2m", False, (KARRAS, EXPONENTIAL, BETA, LU)),
        ("UniPCMultistepScheduler", "unipc-2", True, (KARRAS, EXPONENTIAL, BETA)))
    for kind in kinds] + [
    ("DEISMultistepScheduler", dict(beta_schedule="scaled_linear", solver_order=3, **KARRAS), "deis-3", False, 1e-6),
    # squaredcos_cap_v2's Lu lambdas end at sigma_min only to float32 rounding (sigmas[-2] 1.4e-9 below sigmas[-1]).
    # Its Karras, exponential and beta sigmas repeat a timestep (998, 998 at 5 steps), on which diffusers' own
    # DPM-Solver and UniPC look up the wrong step index and fail (IndexError): no parity to check there
    ("DPMSolverMultistepScheduler", dict(beta_schedule="squaredcos_cap_v2", **LU, **SIGMA_MIN), "dpm-solver++-2m",
     False, 1e-5)]


@pytest.mark.parametrize("steps", [5, 8, 20])
@pytest.mark.parametrize("source, config, method, corrects, tol", ZERO_LENGTH,
                         ids=[f"{s}-{m}-{'-'.join(f'{k}={v}' for k, v in c.items())}" for s, c, m, *_ in ZERO_LENGTH])
def test_a_zero_length_last_step_is_counted_as_the_source_counts_it(source, config, method, corrects, tol, steps):
    """The source's sigmas end at sigma_min twice: its last step has length zero. pndmkit leaves that step out but
    counts it as the source does (its order caps and its threshold of 15 steps), so its real steps run at the
    source's orders: the last one at order 2 (3M: the one before at order 3). The source's zero-length step is the
    identity for DPM-Solver and DEIS (pndmkit calls the network once less); for UniPC its evaluation corrects the
    last real step, which pndmkit does from an evaluation there. From 15 steps on, DPM-Solver++(3M) takes the
    zero-length step at order 3, whose formula divides by its length: diffusers' sample is NaN, and pndmkit returns
    the sample the source had before it. The method as pndmkit counts alone (passed built: a warning), which lowers
    the last real step, is far from the source (so the parity is not vacuous)."""
    theirs = counted(getattr(diffusers, source)(**config))
    ours = PNDMKitScheduler.from_config(theirs.config, method=method)
    theirs.set_timesteps(steps)
    last, before = float(theirs.sigmas[-1]), float(theirs.sigmas[-2])
    assert abs(last - before) <= 2.5e-7 * before  # the source's last step has length zero (to float32 rounding)
    exact = last == before  # not on squaredcos_cap_v2's Lu lambdas: sigma_min is 1.4e-9 above sigmas[-2]
    x_T = noise((4, 16), 1)
    wide = source == "DEISMultistepScheduler"
    if wide:  # float64 on both sides, on the source's own levels
        theirs.set_timesteps(steps)
        a = samples(theirs, steps, x_T.double(), torch.float64, theirs.sigmas.double())
        b = samples(ours, steps, x_T.double(), torch.float64)
    else:
        a, b = samples(theirs, steps, x_T), samples(ours, steps, x_T)
    assert theirs.steps == len(a) - 1 == steps and ours.run.done
    assert len(ours.grid) == steps  # steps - 1 steps: the zero-length one is left out
    estimator = ours.integrator.estimator
    assert type(estimator) is (UniPC if corrects else ExponentialMultistep) and estimator.zero_length_final
    assert ours.integrator.name == method and ours._configured.estimator.zero_length_final is False
    if corrects:  # UniPC: the source's last evaluation corrects the last step; pndmkit evaluates there too
        assert ours.nfe == steps and ours.timesteps.tolist() == theirs.timesteps.tolist()
        assert not torch.equal(a[-1], a[-2])
    elif method == "dpm-solver++-3m" and steps >= 15:  # diffusers: third order on a zero-length step, NaN
        assert torch.isnan(a.pop()).all() and torch.isfinite(a[-1]).all()
    else:  # the source's zero-length step changes nothing; pndmkit does not take it
        assert ours.nfe == steps - 1 and ours.timesteps.tolist() == theirs.timesteps[:-1].tolist()
        # where sigma_min lies 1.4e-9 above sigmas[-2], diffusers takes that step back toward noise (a first-order
        # step of h = -2e-7): nearly, not exactly, the identity
        assert torch.equal(a[-1], a[-2]) if exact else 0 < rel(a[-1], a[-2]) < 1e-6
    assert rel(b[-1], a[-1]) < tol
    with pytest.warns(ConventionWarning, match=r"ends with a step of length zero"):
        own = dataclasses.replace(pndmkit.get_method(method), name=f"{method}-own")  # passed built: as built
        plain = PNDMKitScheduler.from_config(theirs.config, method=own)
        plain.set_timesteps(steps)
    assert repr(plain.integrator.estimator) == repr(ours._configured.estimator)  # as built: pndmkit's own count
    if steps == 5:  # where the count matters for every sigma kind (at 20 steps it may not)
        with pytest.warns(ConventionWarning):
            c = samples(plain, steps, x_T.double() if wide else x_T, torch.float64 if wide else torch.float32)
        assert rel(c[-1], a[-1]) > 10 * tol


def test_zero_length_fix_runs_for_a_method_passed_built():
    """A method passed built (not the registered one of its name) runs as built on a zero-length grid, with a
    warning naming the field and its fix; the fix (final_sigmas_type='zero') gives a grid without that step, where
    it is the source's sampler."""
    config = dict(solver_order=3, **KARRAS)
    built = dataclasses.replace(
        pndmkit.get_method("unipc-3").build(schedule_from_config(diffusers.UniPCMultistepScheduler().config)),
        name="unipc-3-mine")
    with pytest.warns(ConventionWarning, match=r"UniPCMultistepScheduler grid ends with a step of length zero "
                                               r"\(final_sigmas_type='sigma_min'\).*pass final_sigmas_type='zero'$"):
        PNDMKitScheduler.from_config(diffusers.UniPCMultistepScheduler(**config, **SIGMA_MIN).config,
                                     method=built).set_timesteps(8)
    theirs = counted(diffusers.UniPCMultistepScheduler(**config, final_sigmas_type="zero"))
    ours = PNDMKitScheduler.from_config(theirs.config, method=built)
    x_T = noise((4, 16), 1)
    a, b = samples(theirs, 8, x_T), samples(ours, 8, x_T)
    assert theirs.steps == ours.nfe == 8 and ours.integrator is built and rel(b[-1], a[-1]) < 2e-6


@pytest.mark.parametrize("source, config, method", [
    ("UniPCMultistepScheduler", dict(solver_order=3, **KARRAS, **SIGMA_MIN), "unipc-3"),
    ("DPMSolverMultistepScheduler", dict(lower_order_final=False), "dpm-solver++-2m"),
])
def test_a_registered_build_passed_as_an_integrator_is_the_method_by_name(source, config, method):
    """The registered method's own build passed as an Integrator is that method by name in every respect: the
    config's variant fields and the source's zero-length last step choose its variant as they do for the name (no
    warning, no refusal), the config records the name, and a config round trip gives the same samples. An
    Integrator that is not the registered build (here renamed) runs as built and its config is refused on reload,
    naming the remedy, rather than rebuilt as something else; passed again it gives the same samples."""
    cfg = getattr(diffusers, source)(**config).config
    schedule = schedule_from_config(cfg)
    built = pndmkit.get_method(method).build(schedule)
    named = PNDMKitScheduler.from_config(cfg, method=method)
    x_T = noise((4, 16), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConventionWarning)
        ours = PNDMKitScheduler.from_config(cfg, method=built)
        a = samples(ours, 6, x_T)
        back = PNDMKitScheduler.from_config(ours.config)
        b = samples(back, 6, x_T)
    n = samples(named, 6, x_T)
    assert ours.config.method == back.config.method == method
    assert repr(ours.integrator) == repr(back.integrator) == repr(named.integrator) != repr(built)
    assert torch.equal(a[-1], b[-1]) and torch.equal(a[-1], n[-1])
    mine = dataclasses.replace(built, name=f"{method}-mine")  # hand-built: runs as built
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConventionWarning)  # UniPC's zero-length step: said, tested above
        hand = PNDMKitScheduler.from_config(cfg, method=mine) if source.startswith("UniPC") else None
    if hand is not None:
        assert hand.config.method == f"integrator:{method}-mine"
        with pytest.raises(ValueError, match=r"is the config of a hand-built Integrator, which a config cannot "
                                             r"restore: pass method= the Integrator again"):
            PNDMKitScheduler.from_config(hand.config)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConventionWarning)
            c = samples(hand, 6, x_T)
            d = samples(PNDMKitScheduler.from_config(hand.config, method=mine), 6, x_T)
        assert hand.integrator is mine and torch.equal(c[-1], d[-1]) and not torch.equal(c[-1], a[-1])
    else:  # lower_order_final=False contradicts it: refused, naming the field
        with pytest.raises(ValueError, match=r"^method is an Integrator with .* lower_order_final=False chooses"):
            PNDMKitScheduler.from_config(cfg, method=mine)


@pytest.mark.parametrize("steps", [6, 7, 8])
def test_image_to_image_counts_the_whole_grid_as_each_estimator_counts_it(steps):
    """A run on the last steps of a grid lowers its last steps as the run on the whole grid does. An estimator with
    zero_length_final counts the source's step of length zero, which the grid leaves out (counted_steps: 7 steps
    taken reach a threshold of 8); a Final, which has no such flag, counts the steps taken, as its own run on the
    whole grid counts them (counting the zero-length step there would drop its finals at strength < 1 where
    strength 1 takes them)."""
    from pndmkit.exponential import counted_steps
    from pndmkit.integrations.diffusers.scheduler import _counted_on_whole_grid

    assert (counted_steps(steps, True), counted_steps(steps, False)) == (steps + 1, steps)
    counting = ExponentialMultistep(2, "dpm-solver", True, 8, zero_length_final=True)
    assert _counted_on_whole_grid(counting, steps).lower_order_final == (steps + 1 < 8)
    final = Final(ExponentialMultistep(2, "dpm-solver", False), (Single(),), few_steps=8)
    assert isinstance(_counted_on_whole_grid(final, steps), Final) == (steps < 8)
    # through the scheduler: a Final passed built on a grid that ends with a zero-length step (7 steps taken of 8)
    cfg = diffusers.DPMSolverMultistepScheduler(**KARRAS, **SIGMA_MIN).config
    built = dataclasses.replace(pndmkit.get_method("dpm-solver++-2m").build(schedule_from_config(cfg)),
                                estimator=final, name="final-mine")
    sched = PNDMKitScheduler.from_config(cfg, method=built)
    sched.set_timesteps(8)
    assert len(sched.grid) - 1 == 7 and sched.order == 1
    sched.set_begin_index(3)
    x = noise((2, 3))
    sched.step(torch.zeros_like(x), sched.timesteps[3], x)
    assert repr(sched.run.integrator.estimator) == repr(final)  # lowered, as strength 1 on these 7 steps


# -- PNDMScheduler's PRK stages ---------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [5, 8, 9, 10, 12])
def test_f_pndm_follows_pndm_schedulers_prk_stages(steps):
    """PNDMScheduler offsets its PRK midpoint stages by T // N // 2 training steps: with an odd stride T // N
    (8, 9, 12 steps of 1000) its first midpoint stage lies at t - 62 for 8 steps and its second at t_next + 62,
    both evaluated at timestep t_next + 62 (its prk_timesteps). The swap takes f-pndm's warm-up there (SourcePRK)
    and lists the source's timesteps; the paper's midpoint (t + t_next) / 2, which pndmkit's own f-pndm keeps, is
    3e-4 or more from the source at odd strides."""
    from pndmkit.integrations.diffusers.scheduler import SourcePRK

    theirs = counted(diffusers.PNDMScheduler(steps_offset=1))
    ours = PNDMKitScheduler.from_config(theirs.config, method="f-pndm")
    x_T = noise((4, 16), 1)
    a, b = samples(theirs, steps, x_T), samples(ours, steps, x_T)
    half = 1000 // steps // 2
    assert repr(ours.integrator.estimator.first) == repr(SourcePRK(half)) and ours.integrator.name == "f-pndm"
    assert theirs.steps == len(a) - 1 == ours.nfe and ours.run.done
    assert ours.timesteps.dtype == torch.int64 and ours.timesteps.tolist() == theirs.timesteps.tolist()
    assert rel(b[-1], a[-1]) < 1e-6
    paper = PNDMKitScheduler.from_config(theirs.config, method=dataclasses.replace(
        pndmkit.get_method("f-pndm").build(ours.schedule), name="f-pndm-paper"))  # not the registered f-pndm
    c = samples(paper, steps, x_T)
    t, t_next = paper.grid[:2]
    assert paper._times[1:3] == [(t + t_next) / 2] * 2  # the method passed built: the paper's midpoints
    if (1000 // steps) % 2:
        assert rel(c[-1], a[-1]) > 1e-5
    else:
        assert rel(c[-1], a[-1]) < 1e-6


# -- a last step from t = 0 to abar_0: length zero, the source's identity ------------------------------------------
ZERO_LAST = [("PNDMScheduler", dict(skip_prk_steps=True), "plms"), ("PNDMScheduler", dict(), "f-pndm"),
             ("DDIMScheduler", dict(set_alpha_to_one=False, clip_sample=False), "ddim"),
             ("DDIMScheduler", dict(set_alpha_to_one=False, clip_sample=False, timestep_spacing="trailing"), "ddim")]


@pytest.mark.parametrize("steps", [5, 10, 20])
@pytest.mark.parametrize("source, config, method", ZERO_LAST, ids=[f"{s}-{m}-{len(c)}" for s, c, m in ZERO_LAST])
def test_a_last_step_from_t0_to_abar0_is_left_out_as_the_sources_identity(source, config, method, steps):
    """PNDMScheduler's default config and DDIMScheduler(set_alpha_to_one=False) ('leading' spacing, steps_offset=0)
    start their last step at t=0 and end it at abar_0, t=0 again: DDIM's and PLMS's update with alpha_prev =
    alpha_t returns the sample unchanged, though the source calls the network there. The swap leaves that step
    out: one network call fewer, the same sample (f-pndm with the source's PRK stride, T // N counting the step).
    'trailing' spacing (no such step) is the control: the same calls on both sides."""
    theirs = counted(getattr(diffusers, source)(**config))
    ours = PNDMKitScheduler.from_config(theirs.config, method=method)
    x_T = noise((4, 16), 1)
    a, b = samples(theirs, steps, x_T), samples(ours, steps, x_T)
    zero = config.get("timestep_spacing", "leading") == "leading"
    assert theirs.steps == len(a) - 1 and ours.nfe == len(b) - 1 and ours.run.done
    assert theirs.steps == ours.nfe + zero
    if zero:
        assert theirs.timesteps[-1] == 0 and ours.grid[-2] > ours.grid[-1] == 0.0 and ours.num_inference_steps == \
            steps - 1
        torch.testing.assert_close(a[-1], a[-2], rtol=1e-6, atol=1e-6)  # the source's last step: the identity
    if method == "ddim":
        assert ours.timesteps.tolist() == theirs.timesteps.tolist()[:len(ours.timesteps)]
    assert rel(b[-1], a[-1]) < 1e-6


def test_ddim_pipeline_with_a_zero_length_last_step(unet):
    """DDIMPipeline with DDIMScheduler(set_alpha_to_one=False, clip_sample=False) at 10 steps: the swap calls the
    network at the source's first 9 timesteps, not at its last (t=0, a step of length zero), and gives its images."""
    pipe = diffusers.DDIMPipeline(unet, diffusers.DDIMScheduler(set_alpha_to_one=False, clip_sample=False))
    pipe.set_progress_bar_config(disable=True)
    theirs = counted(pipe.scheduler)
    run = lambda: pipe(batch_size=2, num_inference_steps=10, generator=torch.Generator().manual_seed(1),  # noqa: E731
                       output_type="np").images
    with Calls(unet) as calls_theirs:
        out_theirs = run()
    ours = pipe.scheduler = PNDMKitScheduler.from_config(theirs.config, method="ddim")
    with Calls(unet) as calls_ours:
        out_ours = run()
    assert theirs.steps == len(calls_theirs) == 10 and calls_theirs[-1] == 0
    assert ours.run.done and ours.nfe == len(calls_ours) == 9 and calls_ours == calls_theirs[:-1]
    np.testing.assert_allclose(out_ours, out_theirs, rtol=0, atol=2e-6)


def test_a_zero_length_last_step_with_clip_sample_is_said():
    """With clip_sample=True DDIM's step from t=0 to abar_0 clips the x0 estimate (not the identity): the swap
    leaves it out and says so, naming the fields that avoid it."""
    config = diffusers.DDIMScheduler(set_alpha_to_one=False).config
    ours = PNDMKitScheduler.from_config(config, method="ddim")
    with pytest.warns(ConventionWarning, match=r"last step goes from t=0 to abar_0 .*clips the x0 estimate to "
                                               r"\[-1, 1\].*pass clip_sample=False, or steps_offset=1"):
        ours.set_timesteps(10)
    assert len(ours.timesteps) == 9
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConventionWarning)
        PNDMKitScheduler.from_config({**config, "clip_sample": False}, method="ddim").set_timesteps(10)


@pytest.mark.parametrize("spacing, offset", [("linspace", 1), ("linspace", 0), ("trailing", 1)])
def test_a_zero_length_clip_warning_offers_only_fixes_that_apply(spacing, offset):
    """'linspace' and 'trailing' spacings ignore steps_offset: the warning offered steps_offset=1 there (and with
    steps_offset=1 already set); it now offers clip_sample=False or set_alpha_to_one=True, and both silence it."""
    config = diffusers.DDIMScheduler(set_alpha_to_one=False, timestep_spacing=spacing, steps_offset=offset).config
    steps = 10 if spacing == "linspace" else 1000  # 'trailing' starts its last step at t=0 above 2/3 T steps
    ours = PNDMKitScheduler.from_config(config, method="ddim")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ours.set_timesteps(steps)
    said = [str(w.message) for w in seen if "last step goes from t=0" in str(w.message)]
    assert len(said) == 1, said
    assert said[0].endswith(f"pass clip_sample=False, or set_alpha_to_one=True (the last step then ends at abar = 1, "
                            f"t=-1; timestep_spacing={spacing!r} ignores steps_offset)"), said[0]
    assert "steps_offset=1" not in said[0].split("; pass ")[-1]
    for change in ({"clip_sample": False}, {"set_alpha_to_one": True}):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            PNDMKitScheduler.from_config({**config, **change}, method="ddim").set_timesteps(steps)
        assert not [w for w in seen if "last step goes from t=0" in str(w.message)], change


@pytest.mark.parametrize("source, kwargs, fix", [
    ("DEISMultistepScheduler", dict(use_karras_sigmas=True), None),
    ("UniPCMultistepScheduler", dict(use_karras_sigmas=True, final_sigmas_type="sigma_min"), "final_sigmas_type"),
])
def test_a_one_step_grid_of_length_zero_is_refused_by_its_length(source, kwargs, fix):
    """At one step these grids go from their first level to the same level ([157.4, 157.4]): the refusal said
    '0 distinct, and pndmkit would take 0 steps, not the 1 asked'; it now names the zero length and the changes,
    which run."""
    config = getattr(diffusers, source)(**kwargs).config
    theirs = getattr(diffusers, source)(**kwargs)
    theirs.set_timesteps(1)
    assert len(theirs.sigmas) == 2 and float(theirs.sigmas[0]) == float(theirs.sigmas[1])
    ours = PNDMKitScheduler.from_config(config, method="ddim")
    advice = "num_inference_steps >= 2" + (", or final_sigmas_type='zero' (the step then ends at sigma = 0)"
                                           if fix else "")
    with pytest.raises(ValueError, match=rf"^num_inference_steps=1 cannot be honoured on a {source} config with "
                                         rf"use_karras_sigmas=True.*: its only step goes from "
                                         rf"sigma={float(theirs.sigmas[0]):.6g} to the same level .*length zero, "
                                         rf"which cannot be integrated; pass {re.escape(advice)}$") as err:
        ours.set_timesteps(1)
    assert "distinct" not in str(err.value) and ours.timesteps is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.set_timesteps(2)  # the advised count runs: a step of nonzero length
        assert len(ours.timesteps) >= 1 and np.all(np.diff(ours.grid) < 0)
        if fix:
            zero = PNDMKitScheduler.from_config({**config, "final_sigmas_type": "zero"}, method="ddim")
            zero.set_timesteps(1)
            assert len(zero.timesteps) == 1 and zero.grid[-1] < zero.grid[0]


@pytest.mark.parametrize("kwargs, method, message", [
    (dict(), "dpm-solver++-2m", r"^DPMSolverSinglestepScheduler's solver_order=2 \(algorithm_type='dpmsolver\+\+'\) "
     r"runs singlestep DPM-Solver steps of order 2, and pndmkit has no singlestep DPM-Solver of that order; "
     r"method='dpm-solver\+\+-2m' runs the multistep DPM-Solver\+\+\(2M\) instead"),
    (dict(solver_order=3), "dpm-solver++-3m", r"solver_order=3 .*no singlestep DPM-Solver of that order"),
    (dict(solver_order=1), "dpm-solver++-2m", r"solver_order=1 runs first-order steps \(DDIM's\).*pass "
     r"method='ddim'"),
])
def test_a_multistep_dpm_solver_on_a_singlestep_config_is_said(kwargs, method, message):
    """DPMSolverSinglestepScheduler was not among the own-method sources: dpm-solver++-2m on its default config
    (singlestep order 2) ran without a word. Its orders >= 2 are singlestep methods pndmkit does not have, said;
    order 1 is a DDIM step, which ddim runs without a warning."""
    config = diffusers.DPMSolverSinglestepScheduler(**kwargs).config
    with pytest.warns(ConventionWarning, match=message):
        PNDMKitScheduler.from_config(config, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConventionWarning)
        PNDMKitScheduler.from_config(diffusers.DPMSolverSinglestepScheduler(solver_order=1).config, method="ddim")
        PNDMKitScheduler.from_config(config, method="ipndm")  # another family: the method is pndmkit's


@pytest.mark.parametrize("strength", [0.6, 0.1])
def test_image_to_image_on_a_zero_length_last_step(strength):
    """Image-to-image on DDIMScheduler(set_alpha_to_one=False): the pipeline's t_start counts the source's 20 steps;
    the swap starts at the same timestep and ends at the same sample, one network call fewer."""
    theirs = diffusers.DDIMScheduler(set_alpha_to_one=False, clip_sample=False)
    ours = PNDMKitScheduler.from_config(theirs.config, method="ddim")
    x0, z = noise((4, 16), 2), noise((4, 16), 3)
    b, calls = image_to_image_loop(ours, 20, strength, x0, z)
    theirs.set_timesteps(20)
    timesteps = theirs.timesteps[20 - int(20 * strength):]
    x = theirs.add_noise(x0, z, timesteps[:1])
    for t in timesteps:
        x = theirs.step(net(x, t), t, x).prev_sample
    assert calls == len(timesteps) - 1 == ours.nfe and ours.run.done
    assert rel(b, x) < 1e-6


def test_a_set_timesteps_that_fails_leaves_the_scheduler_as_it_was():
    """set_timesteps builds the method's variant for the grid (here SourcePRK with T // N // 2, which changes with
    N), its evaluations and timesteps before it assigns any of them: a call that fails, here on its
    ConventionWarning raised as an error, leaves the method, grid, timesteps and loop of the last call; the next
    valid call lays out what a fresh scheduler does."""
    config = diffusers.PNDMScheduler(steps_offset=1, prediction_type="v_prediction").config
    sched = PNDMKitScheduler.from_config(config, method="f-pndm")
    x = noise((2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConventionWarning)
        sched.set_timesteps(10)
        sched.step(torch.zeros_like(x), sched.timesteps[0], x)
    before = (repr(sched.integrator), sched.grid.copy(), sched.timesteps.clone(), sched.sigmas.clone(), sched.order,
              sched.num_inference_steps, sched.run, sched.step_index, sched.init_noise_sigma)
    assert repr(sched.integrator.estimator.first) == "SourcePRK(half=50)"
    with warnings.catch_warnings(), pytest.raises(ConventionWarning, match="^PNDMScheduler with prediction_type"):
        warnings.simplefilter("error", ConventionWarning)
        sched.set_timesteps(20)  # SourcePRK(half=25) on 20 steps, had it run
    after = (repr(sched.integrator), sched.grid, sched.timesteps, sched.sigmas, sched.order,
             sched.num_inference_steps, sched.run, sched.step_index, sched.init_noise_sigma)
    for old, new in zip(before, after):
        assert (torch.equal(old, new) if isinstance(old, torch.Tensor) else np.array_equal(old, new)
                if isinstance(old, np.ndarray) else old is new or old == new)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConventionWarning)
        sched.set_timesteps(20)
        fresh = PNDMKitScheduler.from_config(config, method="f-pndm")
        fresh.set_timesteps(20)
    assert repr(sched.integrator) == repr(fresh.integrator) and "SourcePRK(half=25)" in repr(sched.integrator)
    assert torch.equal(sched.timesteps, fresh.timesteps) and sched.run is None


# -- DEIS with prediction_type='sample' ---------------------------------------------------------------------------
def test_deis_sample_prediction_is_the_source_in_float64():
    """DEIS on x0 outputs converts them to eps, (x - alpha x0) / sigma, whose float32 rounding grows by 1 / sigma at
    the last steps (sigma about 0.01): 5e-5 apart at 20 steps in float32. In float64 on the same noise levels the two
    are one sampler."""
    theirs = counted(diffusers.DEISMultistepScheduler(solver_order=3, prediction_type="sample"))
    ours = PNDMKitScheduler.from_config(theirs.config, method="deis-3")
    assert ours.translation.prediction == "x0"
    assert repr(ours.integrator.estimator) == repr(ExponentialMultistep(3, "exact"))
    x_T = noise((4, 16), 1).double()
    ours.set_timesteps(20)
    levels = [float(ours.schedule.s(t)) for t in ours.grid]  # pndmkit's levels (the table's at integer timesteps)
    a = samples(theirs, 20, x_T, torch.float64, levels)
    b = samples(ours, 20, x_T, torch.float64)
    assert theirs.steps == 20 == ours.nfe and ours.run.done and a[-1].dtype == b[-1].dtype == torch.float64
    assert rel(b[-1], a[-1]) < 1e-11


# -- the source classes' fields, read once ------------------------------------------------------------------------
def test_the_source_fields_are_read_once_per_class():
    """from_config asks for every source's config fields at each call; each class's are read from diffusers once
    (its constructor's parameters) and remembered, so a second call reads none again."""
    from pndmkit.integrations.diffusers import config

    cfg = diffusers.DDIMScheduler(clip_sample=False).config
    PNDMKitScheduler.from_config(cfg)
    misses = config.init_fields.cache_info().misses
    hits = config.init_fields.cache_info().hits
    PNDMKitScheduler.from_config(cfg, method="ipndm")
    assert config.init_fields.cache_info().misses == misses and config.init_fields.cache_info().hits > hits
    for name in SOURCES:
        own = frozenset(inspect.signature(getattr(diffusers, name).__init__).parameters) - {"self", "kwargs"}
        assert config.init_fields(name) == own and config.init_fields(name) is config.init_fields(name)


# -- a method of the source's own family, of another order or algorithm than the config's: said, with the fix ------
OWN_METHOD = [  # (source, config, method run, expected message, the registered method that reproduces the source)
    ("DEISMultistepScheduler", dict(), "deis-3",
     r"^DEISMultistepScheduler's solver_order=2 runs DEIS-2M, which pndmkit does not have; method='deis-3' runs "
     r"DEIS-3M instead \(the method is pndmkit's: the config's solver_order chooses only the source's own\)$", None),
    ("DPMSolverMultistepScheduler", dict(solver_order=3), "dpm-solver++-2m",
     r"^DPMSolverMultistepScheduler's solver_order=3 runs DPM-Solver\+\+\(3M\); method='dpm-solver\+\+-2m' runs "
     r"DPM-Solver\+\+\(2M\) instead: pass method='dpm-solver\+\+-3m' to reproduce it$", "dpm-solver++-3m"),
    ("DPMSolverMultistepScheduler", dict(algorithm_type="dpmsolver", final_sigmas_type="sigma_min"),
     "dpm-solver++-2m",
     r"^DPMSolverMultistepScheduler's algorithm_type='dpmsolver' runs DPM-Solver\(2M\); method='dpm-solver\+\+-2m' "
     r"runs DPM-Solver\+\+\(2M\) instead: pass method='dpm-solver-2m' to reproduce it$", "dpm-solver-2m"),
    ("UniPCMultistepScheduler", dict(solver_order=2), "unipc-3",
     r"^UniPCMultistepScheduler's solver_order=2 runs UniPC-2; method='unipc-3' runs UniPC-3 instead: pass "
     r"method='unipc-2' to reproduce it$", "unipc-2"),
    ("DPMSolverMultistepScheduler", dict(solver_order=1), "dpm-solver++-2m",
     r"^DPMSolverMultistepScheduler's solver_order=1 runs first-order steps \(DDIM's\); method='dpm-solver\+\+-2m' "
     r"runs DPM-Solver\+\+\(2M\) instead: pass method='ddim' to reproduce it$", "ddim"),
]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # diffusers deprecates algorithm_type='dpmsolver'
@pytest.mark.parametrize("source,config,method,message,fix", OWN_METHOD)
def test_a_method_of_the_sources_family_but_not_its_order_or_algorithm_is_said_once(source, config, method,
                                                                                      message, fix):
    """solver_order / algorithm_type choose only the source's own method, which pndmkit does not follow (the
    method passed runs); where the method passed is the source's counterpart of another order or algorithm, one
    ConventionWarning at from_config names the field, its value, the method that runs and the one that reproduces
    the config. The method that runs is not the source's (its samples differ), and the one named reproduces it."""
    theirs = counted(getattr(diffusers, source)(**config))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ours = PNDMKitScheduler.from_config(theirs.config, method=method)
        ours.set_timesteps(10)
    said = [str(w.message) for w in seen if issubclass(w.category, ConventionWarning)]
    assert len(said) == 1 and re.match(message, said[0]), said
    x_T = noise((4, 16), 1)
    a, calls = pipeline_loop(theirs, 10, x_T)
    b, _ = pipeline_loop(ours, 10, x_T)
    assert theirs.steps == calls == 10 and ours.integrator.name == method
    assert rel(b, a) > 1e-3
    if fix is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConventionWarning)
            fixed = PNDMKitScheduler.from_config(theirs.config, method=fix)
            c, _ = pipeline_loop(fixed, 10, x_T)
        assert rel(c, a) < 2e-5


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("source,config,method", [
    ("DPMSolverMultistepScheduler", dict(), "dpm-solver++-2m"),  # defaults and the default counterpart
    ("DPMSolverMultistepScheduler", dict(solver_order=3), "dpm-solver++-3m"),
    ("DPMSolverMultistepScheduler", dict(solver_type="heun"), "dpm-solver++-2m"),
    ("DPMSolverMultistepScheduler", dict(algorithm_type="dpmsolver", final_sigmas_type="sigma_min"), "dpm-solver-2m"),
    ("DPMSolverMultistepScheduler", dict(solver_order=3), "ipndm"),  # another family: the method is pndmkit's
    ("DPMSolverMultistepScheduler", dict(solver_order=3), "deis-3"),
    ("UniPCMultistepScheduler", dict(), "unipc-2"),
    ("UniPCMultistepScheduler", dict(solver_order=3), "unipc-3"),
    ("UniPCMultistepScheduler", dict(solver_order=3), "dpm-solver++-3m"),
    ("DEISMultistepScheduler", dict(solver_order=3), "deis-3"),
    ("DEISMultistepScheduler", dict(), "f-pndm"),
])
def test_a_method_matching_the_configs_order_and_algorithm_or_of_another_family_is_not_told(source, config,
                                                                                             method, recwarn):
    """No word where the method is what the config's solver_order / algorithm_type run, or of another family."""
    cfg = getattr(diffusers, source)(**config).config
    PNDMKitScheduler.from_config(cfg, method=method).set_timesteps(10)
    said = [str(w.message) for w in recwarn if issubclass(w.category, ConventionWarning)]
    assert not [text for text in said if "solver_order" in text or "algorithm_type" in text], said


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("source,top", [("DDIMScheduler", 1000), ("EulerDiscreteScheduler", 1000),
                                        ("DPMSolverMultistepScheduler", 999)])
def test_leading_steps_offset_beyond_the_training_indices_is_refused_naming_the_fit(source, top):
    """'leading' spacing with steps_offset=1 lays out timestep T at the top step count (N = T, or T - 1 where the
    source divides by N + 1): refused in one line naming steps_offset, the timestep and the largest count that
    fits, which lays out (its top timestep is T - 1) and so does steps_offset=0 at the refused count."""
    cfg = getattr(diffusers, source)(timestep_spacing="leading", steps_offset=1).config
    with pytest.raises(ValueError, match=re.escape(
            f"{source} with timestep_spacing='leading', steps_offset=1 lays out timestep 1000 for "
            f"num_inference_steps={top}, beyond the training indices 0..999; pass num_inference_steps <= "
            f"{top - 1} or steps_offset=0")):
        PNDMKitScheduler.from_config(cfg, method="ddim").set_timesteps(top)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert max(translate(cfg).layout(top - 1).timesteps) == 999.0
        zero = getattr(diffusers, source)(timestep_spacing="leading", steps_offset=0).config
        assert max(translate(zero).layout(top).timesteps) == 999.0
