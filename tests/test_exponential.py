"""The exponential-integrator family (pndmkit/exponential.py): identities, orders, and parity with diffusers.

Parity runs pndmkit on a :class:`DiscreteVP` whose float64 table is the reference scheduler's float32
``alphas_cumprod``, with the scheduler's own timesteps (and its final level: ``abar = 1`` for
``final_sigmas_type="zero"``, ``abar_0`` otherwise) as an explicit grid. Two precisions of the reference:

* float64 levels (``scheduler.sigmas`` as float64, torch's default dtype float64): what remains is the
  reference's own float32 arithmetic, about 1e-7 of the result; DPMSolverMultistepScheduler also casts the
  sample to float32 every step, which the eps-form transfer amplifies by ``sqrt(abar_end / abar_start)``
  (158 on a linear schedule from t = 999), so the tolerance carries that factor for eps-form methods;
* stock float32 levels, the default a user gets, checked at a few 1e-6.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

import pndmkit
from pndmkit import DiscreteVP
from pndmkit.adams import LinearMultistep
from pndmkit.estimators import Final
from pndmkit.exponential import ExponentialMultistep, UniPC, deis_multistep, dpm_solver_multistep
from pndmkit.integrator import Integrator
from pndmkit.problems import get_problem
from pndmkit.schedules import CosineVP, LinearVP
from pndmkit.testing import check_order, gaussian_eps
from pndmkit.transfers import DataTransfer, DDIMTransfer, LinearTransfer

GMM = get_problem("gmm2d")  # exact eps of a 2-D Gaussian mixture

NEW = ["dpm-solver++-2m", "dpm-solver++-3m", "dpm-solver-2m", "unipc-2", "unipc-3", "deis-3", "ipndm-x0",
       "f-pndm-x0", "pece-x0"]


def model_for(schedule):
    return lambda x, t: GMM.eps(x, t, schedule)


@pytest.fixture(scope="module")
def x_T():
    return np.random.default_rng(5).standard_normal((16, 2))


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# --- orders and identities (no peers needed) --------------------------------------------------------------
@pytest.mark.parametrize("name", NEW)
def test_declared_order_is_measured(name):
    """Within 0.3 on the registry study; the ramped multistep peers are second order (module docstring)."""
    check_order(name)


def test_unipc_predictor_bh2_is_dpm_solver_pp_2m():
    """UniP-2 with B(h) = e^-H - 1 fixes rho = 1/2: e = m_0 + (m_0 - m_1) / (2 r), DPM-Solver++(2M)."""
    sched = CosineVP()
    grid = np.linspace(0.9, 0.05, 9)
    x = np.array([0.3, -1.2, 2.0])
    model = gaussian_eps(sched)
    unip = Integrator(UniPC(2, corrector=False, lower_order_final=False), DataTransfer(sched))
    dpm = Integrator(ExponentialMultistep(2, lower_order_final=False), DataTransfer(sched))
    np.testing.assert_allclose(unip.solve(model, x, grid).x, dpm.solve(model, x, grid).x, rtol=1e-13, atol=1e-13)


def test_deis_is_adams_exact_in_lambda_with_the_ddim_transfer():
    """Without the final-step rule (20 steps >= 15) DEIS is LinearMultistep(3, exact weights in lambda)."""
    sched = LinearVP()
    grid = np.linspace(0.95, 0.01, 21)
    x = np.array([0.3, -1.2, 2.0])
    model = gaussian_eps(sched)
    deis = Integrator(deis_multistep(3), DDIMTransfer(sched)).solve(model, x, grid).x
    lm = Integrator(LinearMultistep(3, weights="exact", variable="lambda"), DDIMTransfer(sched)).solve(model, x, grid).x
    np.testing.assert_allclose(deis, lm, rtol=1e-13, atol=1e-13)


def _one_step_gradient(estimator, phi, past, t, t_next, g):
    """The gradient a multistep estimator returns for one step, after ``past`` start gradients were observed."""
    state = estimator.init(None, past[0], phi, np.linspace(past[0], -1.0, 40))  # a long grid: no final lowering
    for tk in past:
        state = estimator.observe(state, tk, g(tk))
    gen = estimator.step(np.zeros(1), t, t_next, phi, state)
    next(gen)
    try:
        gen.send(g(t))
    except StopIteration as stop:
        return float(stop.value.e.evaluate()[0])
    raise AssertionError("the step asked for more than one evaluation")


@pytest.mark.parametrize("degree", [1, 2])
def test_dpm_solver_3m_weights_half_the_second_difference(degree):
    """For a gradient exactly (lambda - lambda_0)^degree, the du-mean over the step is what exact weights give.
    DPM-Solver(++) 3M (diffusers, and the dpm-solver code it comes from) is exact for degree 1 but gives about
    half the mean for degree 2: it weights D2 = h^2 p''/2 by phi_3 ~ h/6 where the exact weight is ~ h/3, so
    its local error is O(h^3) and 3M is second order like 2M."""
    sched = CosineVP()
    phi = DataTransfer(sched)
    t, t_next = 0.5, 0.5 - 0.002
    past = [t + 0.004, t + 0.002]  # oldest first, as observed
    lam0 = float(sched.lam(t))

    def g(tk):
        return np.array([(float(sched.lam(tk)) - lam0) ** degree])

    u0, u1 = phi.coordinate(t), phi.coordinate(t_next)
    lam1 = float(sched.lam(t_next))
    quad = np.polynomial.legendre.leggauss(20)
    lq = lam0 + (lam1 - lam0) * 0.5 * (quad[0] + 1)
    mean = float(np.sum(0.5 * quad[1] * (lq - lam0) ** degree * np.exp(lq)) * (lam1 - lam0) / (u1 - u0))
    exact = _one_step_gradient(ExponentialMultistep(3, "exact", few_steps=None), phi, past, t, t_next, g)
    dpm = _one_step_gradient(ExponentialMultistep(3, "dpm-solver", few_steps=None), phi, past, t, t_next, g)
    assert exact == pytest.approx(mean, rel=1e-9)
    if degree == 1:
        assert dpm == pytest.approx(mean, rel=1e-9)
    else:
        assert dpm / mean == pytest.approx(0.5, abs=0.01)


def test_grid_integrator_lowers_the_final_steps_only_on_short_grids():
    """lower_order_final: on 10 steps ending at a finite level the last step of 3M is first order, so a run
    differs from one without the rule; on 20 steps (>= 15) the two are identical."""
    sched = CosineVP()
    x = np.array([0.3, -1.2, 2.0])
    model = gaussian_eps(sched)
    for steps, same in ((10, False), (20, True)):
        grid = np.linspace(0.9, 0.05, steps + 1)
        a = Integrator(dpm_solver_multistep(3, True), DataTransfer(sched)).solve(model, x, grid).x
        b = Integrator(dpm_solver_multistep(3, False), DataTransfer(sched)).solve(model, x, grid).x
        assert np.array_equal(a, b) == same


def test_zero_length_final_counts_one_more_step():
    """zero_length_final: the grid stands for one with a step of length zero after it, which the lowering counts.
    3M then takes the grid's last step at order 2 (as the one before the last) below 14 steps, as a 3M body whose
    last step a 2M final takes, and nothing is lowered from 14 steps on (14 + 1 is not below 15)."""
    sched = CosineVP()
    x = np.array([0.3, -1.2, 2.0])
    model = gaussian_eps(sched)
    for steps in (6, 10, 13, 14, 20):
        grid = np.linspace(0.9, 0.05, steps + 1)
        a = Integrator(ExponentialMultistep(3, zero_length_final=True), DataTransfer(sched)).solve(model, x, grid).x
        full = ExponentialMultistep(3, lower_order_final=False)
        last2 = Final(full, (ExponentialMultistep(2, lower_order_final=False),))
        b = Integrator(last2 if steps < 14 else full, DataTransfer(sched)).solve(model, x, grid).x
        np.testing.assert_allclose(a, b, rtol=1e-13)
        plain = Integrator(ExponentialMultistep(3), DataTransfer(sched)).solve(model, x, grid).x
        assert np.array_equal(a, plain) == (steps >= 15)


def test_unipc_zero_length_final_corrects_the_last_step_from_an_evaluation_at_its_end():
    """UniPC with zero_length_final evaluates once more, at the grid's end (the zero-length step's evaluation),
    and corrects the last step with it: one evaluation more than N, and a run that differs from the uncorrected."""
    sched = CosineVP()
    x = np.array([0.3, -1.2, 2.0])
    model = gaussian_eps(sched)
    grid = np.linspace(0.9, 0.05, 9)
    ours = Integrator(UniPC(2, zero_length_final=True), DataTransfer(sched))
    walk = ours.dry_run(grid, "eps")
    assert list(walk.times) == [*grid[:-1], grid[-1]]
    sol = ours.solve(model, x, grid)
    plain = Integrator(UniPC(2), DataTransfer(sched)).solve(model, x, grid)
    assert sol.nfe == 9 == plain.nfe + 1 and not np.allclose(sol.x, plain.x, rtol=1e-6)
    assert repr(UniPC(2, zero_length_final=True)).endswith("zero_length_final=True)")


# --- the last step corrected from the zero-length step's evaluation, against UniPC's formulas -------------
def _unipc_update(form, variant, lam_s, lam_t, alpha_t, sigma_t, m0, nodes, fixed_half):
    """The gradient part of one UniPC update from ``lambda_s`` to ``lambda_t``, written out from Zhao et al. 2023
    (arXiv 2302.04867): the exact exponential-integrator term of the base gradient ``m0`` plus
    ``-B(h) sum_m rho_m D_m / r_m`` (times ``alpha_t`` for the x0 form, ``sigma_t`` for the eps form),
    ``D_m = m_m - m0``, ``r_m = (lambda_m - lambda_s) / h``, ``h = lambda_t - lambda_s``; ``B = -h`` (bh1) or
    ``e^-h - 1`` (bh2) for x0, ``h`` or ``e^h - 1`` for eps. ``rho`` solves the order conditions: the
    correction's weight on ``h^k f^(k) / k!`` equals the exact one, ``I_k`` (x0) or ``-I_k`` (eps), the weight
    of ``tau^k``, ``tau = (lambda - lambda_s) / h``, in the exact solution (here by quadrature), for
    k = 1..len(nodes); or rho = 1/2 where UniPC fixes it (one node)."""
    from scipy.integrate import quad

    h = lam_t - lam_s
    if form == "x0":  # x_t = (sigma_t/sigma_s) x_s + sigma_t int e^lam x0 dlam
        kernel = lambda tau: h * math.exp(-h * (1.0 - tau))  # noqa: E731
        B = -h if variant == "bh1" else math.expm1(-h)
        scale, sign = alpha_t, 1.0
    else:  # x_t = (alpha_t/alpha_s) x_s - alpha_t int e^-lam eps dlam
        kernel = lambda tau: h * math.exp(h * (1.0 - tau))  # noqa: E731
        B = h if variant == "bh1" else math.expm1(h)
        scale, sign = sigma_t, -1.0
    I = [quad(lambda tau, k=k: kernel(tau) * tau ** k, 0.0, 1.0, epsabs=0.0, epsrel=1e-13)[0]
         for k in range(len(nodes) + 1)]
    base = sign * scale * I[0] * m0
    if not nodes:
        return base
    r = np.array([(lam_m - lam_s) / h for lam_m, _ in nodes])
    if fixed_half:
        rho = np.array([0.5])
    else:
        R = np.array([r ** (k - 1) for k in range(1, len(nodes) + 1)])
        rho = np.linalg.solve(R, np.array(I[1:]) / (-sign * B))
    return base - scale * B * sum(rho_m * (m - m0) / r_m for rho_m, r_m, (_, m) in zip(rho, r, nodes))


@pytest.mark.parametrize("form", ["x0", "eps"])
@pytest.mark.parametrize("variant", ["bh1", "bh2"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_unipc_zero_length_final_correction_is_unic_written_out(order, variant, form):
    """The last step's correction, recomputed by hand from the evaluations the run made (float64, 1e-12). Its
    predictor UniP-k (k = min(order, 2): the zero-length step counts as the last) moved the corrected sample
    ``x^c`` at ``t_{N-1}`` to ``x_N``, where the extra evaluation ``m_N`` is made; UniC-k replaces the
    predictor's gradient part by its own on ``m_{N-1}, m_N`` and ``m_{N-2}`` (k = 2), so the result is
    ``x_N - P + C`` with ``P, C`` the two gradient parts. UniC-1 fixes ``rho = 1/2`` (B(h) matters), UniC-2
    solves for ``rho`` (it does not); UniP-2 fixes ``rho = 1/2``."""
    sched = CosineVP()
    eps_model = gaussian_eps(sched)
    calls = []

    def model(x, t):
        e = eps_model(x, t)
        calls.append((np.array(x, dtype=np.float64), float(t), np.array(e, dtype=np.float64)))
        return e

    transfer = DataTransfer(sched) if form == "x0" else DDIMTransfer(sched)
    grid = np.linspace(0.9, 0.2, 5)
    x = np.array([0.3, -1.2, 2.0])
    out = Integrator(UniPC(order, variant, zero_length_final=True), transfer).solve(model, x, grid).x
    assert len(calls) == len(grid) and [t for _, t, _ in calls] == pytest.approx(list(grid), abs=0)

    def m(i):  # the gradient the transfer integrates, at the i-th evaluation
        xi, ti, ei = calls[i]
        return (xi - sched.sigma(ti) * ei) / sched.alpha(ti) if form == "x0" else ei

    lam = [float(sched.lam(t)) for t in grid]
    alpha_t, sigma_t = float(sched.alpha(grid[-1])), float(sched.sigma(grid[-1]))
    k = min(order, 2)
    older = [(lam[-3], m(-3))] if k == 2 else []
    args = (form, variant, lam[-2], lam[-1], alpha_t, sigma_t, m(-2))
    predictor = _unipc_update(*args, older, fixed_half=(k == 2))
    corrector = _unipc_update(*args, [(lam[-1], m(-1))] + older, fixed_half=(k == 1))
    x_N = calls[-1][0]
    by_hand = x_N - predictor + corrector
    np.testing.assert_allclose(out, by_hand, rtol=1e-12, atol=0)
    assert np.max(np.abs(out - x_N)) > 1e-6 * np.max(np.abs(x_N))  # the correction is not negligible here


# the study (t_start) and step counts of each measurement below: from t = 0.9 the x0 form of UniPC(3) hides the
# third-order error of its first step (Euler corrected by UniC-1, a single O(h^3) local error) because the x0
# estimate barely moves in lambda at that noise level: measured 4.2 (errors ~ h^4 there), 3.0 from t = 0.3 and
# in the eps form from t = 0.9. The 3M bodies with exact weights (third order) measure 2.4-2.6 on N = 100-800
# until their first-order ramp step's O(h^2) dominates: 2.1 on N = 400-3200. 3M with the default few_steps is
# not lowered on these grids (as dpm-solver++-3m): 1.87, its errors' ratios 3.0, 3.5, 3.8 rising to 4.
_ZLF_FAST, _ZLF_FINE = (100, 200, 400, 800), (400, 800, 1600, 3200)
ZERO_LENGTH_FINAL_ORDERS = [
    # (estimator, transfer, declared order, study t_start, step counts)
    (ExponentialMultistep(3, zero_length_final=True), DataTransfer, 2, 0.9, _ZLF_FAST),  # few_steps: not lowered
    (ExponentialMultistep(3, zero_length_final=True, few_steps=None), DataTransfer, 2, 0.9, _ZLF_FAST),
    (ExponentialMultistep(3, zero_length_final=True, few_steps=None), DDIMTransfer, 2, 0.9, _ZLF_FINE),
    (ExponentialMultistep(3, "exact", zero_length_final=True, few_steps=None), DataTransfer, 2, 0.9, _ZLF_FINE),
    (UniPC(1, "bh1", zero_length_final=True), DataTransfer, 2, 0.9, _ZLF_FAST),
    (UniPC(1, "bh2", zero_length_final=True), DataTransfer, 2, 0.9, _ZLF_FAST),
    (UniPC(2, "bh1", zero_length_final=True), DataTransfer, 3, 0.9, _ZLF_FAST),
    (UniPC(2, "bh2", zero_length_final=True), DataTransfer, 3, 0.9, _ZLF_FAST),
    (UniPC(2, "bh2", zero_length_final=True), DDIMTransfer, 3, 0.9, _ZLF_FAST),
    (UniPC(2, corrector=False, zero_length_final=True), DataTransfer, 2, 0.9, _ZLF_FAST),
    (UniPC(3, zero_length_final=True), DataTransfer, 3, 0.3, _ZLF_FAST),
    (UniPC(3, zero_length_final=True), DDIMTransfer, 3, 0.9, _ZLF_FAST),
    (UniPC(3, lower_order_final=False, zero_length_final=True), DataTransfer, 3, 0.3, _ZLF_FINE),
]


@pytest.fixture(scope="module")
def zlf_studies():
    from pndmkit.studies.convergence import make_study

    return {t: make_study("gmm2d", "cosine-vp", t_start=t, batch=4) for t in (0.9, 0.3)}


@pytest.mark.parametrize("estimator, transfer, declared, t_start, steps", ZERO_LENGTH_FINAL_ORDERS,
                         ids=[f"{e!r}-{t.__name__}" for e, t, *_ in ZERO_LENGTH_FINAL_ORDERS])
def test_zero_length_final_declared_order_is_measured(zlf_studies, estimator, transfer, declared, t_start, steps):
    """zero_length_final's orders, reported and measured (within 0.3, gmm2d on cosine VP as the registry's
    study). With the zero-length step counted, UniPC's last predictor is of order min(p, 2) and corrected, so
    UniPC(2) is third order (second without the correction; UniPC(2) without zero_length_final, its last step
    first order and uncorrected, is second order); UniPC(3) stays third order through its first step. The
    multistep bodies are second order from their ramp, however their last steps are lowered."""
    from pndmkit import MethodSpec

    sched = CosineVP()
    assert estimator.order(transfer(sched)) == declared
    spec = MethodSpec("zlf-order", lambda s: Integrator(estimator, transfer(s), "zlf-order"), declared)
    check_order(spec, zlf_studies[t_start], steps, 0.3)


def test_zero_length_final_raises_unipc_2_from_second_to_third_order():
    sched = CosineVP()
    assert (UniPC(2).order(DataTransfer(sched)), UniPC(2, zero_length_final=True).order(DataTransfer(sched))) == (2, 3)


@pytest.mark.parametrize("make, match", [
    (lambda: ExponentialMultistep(4), r"order must be 1, 2 or 3 \(an integer\), got 4"),
    (lambda: ExponentialMultistep(2, weights="heun"), "weights must be one of"),
    (lambda: ExponentialMultistep(2, few_steps=0), "few_steps must be None"),
    (lambda: UniPC(2, variant="bh3"), "variant must be one of"),
])
def test_bad_options_name_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("make, match", [
    (lambda: UniPC(2, lower_order_final="yes"), "lower_order_final must be True or False, got 'yes'"),
    (lambda: UniPC(2, corrector=1), "corrector must be True or False, got 1"),
    (lambda: ExponentialMultistep(2, lower_order_final=None), "lower_order_final must be True or False, got None"),
])
def test_flags_of_the_wrong_type_are_type_errors_like_every_other_flag(make, match):
    with pytest.raises(TypeError, match=match):
        make()


def test_numpy_bool_flags_are_accepted():
    assert UniPC(2, corrector=np.bool_(False)).corrector is False


@pytest.mark.parametrize("order", [2.0, 3.0, True, np.bool_(True), "2", 4])
def test_order_must_be_the_integer_1_2_or_3(order):
    for cls in (UniPC, ExponentialMultistep):
        with pytest.raises(ValueError, match="order must be 1, 2 or 3"):
            cls(order)


def test_numpy_integer_options_are_plain_ints():
    est = ExponentialMultistep(np.int64(3), few_steps=np.int64(15))
    assert type(est.formula_order) is int and est.formula_order == 3 and type(est.few_steps) is int and est.few_steps == 15
    assert type(UniPC(np.int32(2)).formula_order) is int


@pytest.mark.parametrize("estimator", [ExponentialMultistep(2), UniPC(2)])
def test_classical_transfer_is_refused(estimator):
    sched = LinearVP()
    with pytest.raises(ValueError, match="coordinate is exponential in lambda.*LinearTransfer"):
        Integrator(estimator, LinearTransfer(sched)).solve(gaussian_eps(sched), np.ones(2), [1.0, 0.5, 0.1])


# --- parity with diffusers ------------------------------------------------------------------------------
STEPS = [1, 2, 3, 5, 10, 20, 50]
KINDS = ["linear", "scaled_linear"]

DPM = "DPMSolverMultistepScheduler"
UNIPC = "UniPCMultistepScheduler"
DEIS = "DEISMultistepScheduler"


def _dpm(order, lof, algorithm="dpmsolver++"):
    cfg = {"algorithm_type": algorithm, "solver_order": order, "lower_order_final": lof}
    return cfg if algorithm == "dpmsolver++" else {**cfg, "final_sigmas_type": "sigma_min"}


def _unipc(order, variant):  # bh1 needs a finite last level (see test_unipc_bh1_to_abar_one_is_nan_in_diffusers)
    cfg = {"solver_order": order, "solver_type": variant}
    return cfg if variant == "bh2" else {**cfg, "final_sigmas_type": "sigma_min"}


# (case id, pndmkit method: registry name or (estimator factory, transfer class), reference class, its config)
PARITY = [
    ("dpm-solver++-2m", "dpm-solver++-2m", DPM, _dpm(2, True)),
    ("dpm-solver++-2m-nolof", (lambda: dpm_solver_multistep(2, False), DataTransfer), DPM, _dpm(2, False)),
    ("dpm-solver++-3m", "dpm-solver++-3m", DPM, _dpm(3, True)),
    ("dpm-solver++-3m-nolof", "dpm-solver++-3m-nolof", DPM, _dpm(3, False)),  # compare's variant (VARIANTS)
    ("dpm-solver-2m", "dpm-solver-2m", DPM, _dpm(2, True, "dpmsolver")),
    ("dpm-solver-2m-nolof", (lambda: dpm_solver_multistep(2, False), DDIMTransfer), DPM, _dpm(2, False, "dpmsolver")),
    ("dpm-solver++-2m-heun", (lambda: ExponentialMultistep(2, "exact"), DataTransfer), DPM,
     {**_dpm(2, True), "solver_type": "heun"}),
    ("unipc-2", "unipc-2", UNIPC, _unipc(2, "bh2")),
    ("unipc-3", "unipc-3", UNIPC, _unipc(3, "bh2")),
    ("unipc-2-bh1", (lambda: UniPC(2, "bh1"), DataTransfer), UNIPC, _unipc(2, "bh1")),
    ("unipc-3-bh1", (lambda: UniPC(3, "bh1"), DataTransfer), UNIPC, _unipc(3, "bh1")),
    ("deis-3", "deis-3", DEIS, {"solver_order": 3}),
]


@pytest.fixture(scope="module")
def diffusers():
    pytest.importorskip("torch")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return pytest.importorskip("diffusers")


def reference(diffusers, cls, config, kind, steps, x, float64_levels):
    """Run the reference scheduler; return (its run, the matched schedule, its grid for pndmkit)."""
    import torch

    from pndmkit.studies.peers import run_scheduler

    old = torch.get_default_dtype()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = getattr(diffusers, cls)(beta_schedule=kind, **config)
        ac = scheduler.alphas_cumprod.double().numpy()
        sched = DiscreteVP(1.0 - ac / np.concatenate([[1.0], ac[:-1]]))
        scheduler.set_timesteps(steps)
        if float64_levels:
            scheduler.sigmas = scheduler.sigmas.double()
            torch.set_default_dtype(torch.float64)  # UniPC builds part of its system in the default dtype
        try:
            run = run_scheduler(scheduler, lambda x_, t, s: GMM.eps(x_, t, sched), x)
        finally:
            torch.set_default_dtype(old)
    final = -1.0 if float(scheduler.sigmas[-1]) == 0.0 else 0.0  # abar = 1 or abar_0
    return run, sched, [float(t) for t in scheduler.timesteps] + [final]


def spec(name):
    """A registered method, else the head-to-head's variant of that name (pndmkit.studies.compare.VARIANTS)."""
    from pndmkit.studies.compare import VARIANTS

    return pndmkit.METHODS[name] if name in pndmkit.METHODS else VARIANTS[name]


def ours(method, sched, x, grid):
    if isinstance(method, str):
        return spec(method).build(sched).solve(model_for(sched), x, grid)
    make, transfer = method
    return Integrator(make(), transfer(sched)).solve(model_for(sched), x, grid)


def amplification(method, sched, grid, x_T, x_end):
    """How much the reference's float32 rounding (its sample cast, its lambda and exp(h)) grows in the result,
    relative to its size: 1 for the data transfer (coefficient sigma'/sigma <= 1); for the eps-form transfer
    sqrt(abar_end / abar_start) times the size of the start relative to the end (the x coefficient
    alpha'/alpha multiplies terms of the start's size that cancel down to the end's)."""
    transfer = spec(method).build(sched).transfer if isinstance(method, str) else method[1](sched)
    if isinstance(transfer, DataTransfer):
        return 1.0
    growth = math.sqrt(float(sched.abar(grid[-1])) / float(sched.abar(grid[0])))
    return growth * float(np.max(np.abs(x_T)) / np.max(np.abs(x_end)))


@pytest.mark.peers
@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case, method, cls, config", PARITY, ids=[p[0] for p in PARITY])
def test_parity_with_float64_levels(diffusers, x_T, case, method, cls, config, kind, steps):
    run, sched, grid = reference(diffusers, cls, config, kind, steps, x_T, float64_levels=True)
    sol = ours(method, sched, x_T, grid)
    assert sol.nfe == run.nfe == steps
    assert rel(sol.x, run.x) < 1e-6 * amplification(method, sched, grid, x_T, run.x)


@pytest.mark.peers
@pytest.mark.parametrize("steps", [5, 10, 20])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case, method, cls, config", [p for p in PARITY if p[2] != DEIS],
                         ids=[p[0] for p in PARITY if p[2] != DEIS])
def test_parity_with_stock_float32_levels(diffusers, x_T, case, method, cls, config, kind, steps):
    run, sched, grid = reference(diffusers, cls, config, kind, steps, x_T, float64_levels=False)
    sol = ours(method, sched, x_T, grid)
    assert sol.nfe == run.nfe == steps
    assert rel(sol.x, run.x) < 5e-6 * amplification(method, sched, grid, x_T, run.x)


@pytest.mark.peers
@pytest.mark.parametrize("steps", [3, 5, 6, 10])
@pytest.mark.parametrize("spacing", ["leading", "linspace"])
def test_compare_variant_nolof_is_the_scheduler_step_for_step(diffusers, x_T, spacing, steps):
    """The head-to-head's ``dpm-solver++-3m-nolof`` is ``DPMSolverMultistepScheduler(solver_order=3,
    lower_order_final=False)``: every state the network is given (the start and each step's result, i.e. the
    model inputs in order) agrees with the scheduler's to 1e-6, on the scheduler's own grid; the registered
    ``dpm-solver++-3m``, which lowers its last two steps below 15 steps, does not reach the same end point."""
    from pndmkit.studies.compare import VARIANTS
    from pndmkit.studies.peers import run_scheduler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = diffusers.DPMSolverMultistepScheduler(beta_schedule="linear", timestep_spacing=spacing,
                                                          **_dpm(3, False))
        ac = scheduler.alphas_cumprod.double().numpy()
        sched = DiscreteVP(1.0 - ac / np.concatenate([[1.0], ac[:-1]]))
        scheduler.set_timesteps(steps)
        scheduler.sigmas = scheduler.sigmas.double()
        theirs = []

        def their_model(x, t, s):
            theirs.append(np.array(x, dtype=np.float64))
            return GMM.eps(x, t, sched)

        run = run_scheduler(scheduler, their_model, x_T.copy())
    grid = [float(t) for t in scheduler.timesteps] + [-1.0]
    mine = []

    def my_model(x, t):
        mine.append(np.array(x, dtype=np.float64))
        return GMM.eps(x, t, sched)

    sol = VARIANTS["dpm-solver++-3m-nolof"].build(sched).solve(my_model, x_T.copy(), grid)
    assert sol.nfe == run.nfe == len(mine) == len(theirs) == steps
    for k, (a, b) in enumerate(zip(mine, theirs)):
        assert rel(a, b) < 1e-6, (k, rel(a, b))
    assert rel(sol.x, run.x) < 1e-6
    lowered = ours("dpm-solver++-3m", sched, x_T.copy(), grid)
    # the step to abar = 1 is first order in both (diffusers' final_sigmas_type="zero"); from 4 steps on the one
    # before it is third order here and second order in the registered method: another end point
    assert (rel(lowered.x, run.x) > 1e-4) == (steps >= 4)


@pytest.mark.peers
@pytest.mark.parametrize("kind", KINDS)
def test_deis_float32_coefficients_lose_digits_as_steps_shrink(diffusers, x_T, kind):
    """DEISMultistepScheduler integrates its Lagrange basis as a difference of two antiderivative values
    (each ~ rho log rho) in float32; at 50 steps the difference is small and loses about 3 digits, so the
    stock scheduler is 1e-5..1e-4 away from its own formula in float64, which pndmkit matches to 1e-6."""
    stock, sched, grid = reference(diffusers, DEIS, {"solver_order": 3}, kind, 50, x_T, float64_levels=False)
    exact, _, _ = reference(diffusers, DEIS, {"solver_order": 3}, kind, 50, x_T, float64_levels=True)
    sol = ours("deis-3", sched, x_T, grid)
    assert rel(sol.x, exact.x) < 1e-6
    assert rel(stock.x, exact.x) > 1e-5


@pytest.mark.peers
@pytest.mark.parametrize("order", [2, 3])
def test_unipc_bh1_to_abar_one_is_nan_in_diffusers(diffusers, x_T, order):
    """With final_sigmas_type="zero" the last step has h = inf; bh1's B(h) = -h times an empty correction
    (0) is NaN in UniPCMultistepScheduler. pndmkit takes that step at order 1 (the data transfer's Euler
    step, x' = x0 estimate), finite, and equal to bh2's last step."""
    run, sched, grid = reference(diffusers, UNIPC, {"solver_order": order, "solver_type": "bh1"}, "linear", 10, x_T,
                                 float64_levels=False)
    assert grid[-1] == -1.0 and np.all(np.isnan(run.x))
    sol = ours((lambda: UniPC(order, "bh1"), DataTransfer), sched, x_T, grid)
    assert np.all(np.isfinite(sol.x))


@pytest.mark.peers
def test_dpm_solver_noise_form_cannot_end_at_abar_one_in_diffusers(diffusers, x_T):
    """algorithm_type="dpmsolver" refuses final_sigmas_type="zero"; pndmkit's dpm-solver-2m ends there with
    an Euler (DDIM) last step, like the data form."""
    with pytest.raises(ValueError, match="final_sigmas_type"):
        diffusers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver", final_sigmas_type="zero")
    sched = DiscreteVP.linear()
    def both(grid):
        return [pndmkit.METHODS[n].build(sched).solve(model_for(sched), x_T, grid).x
                for n in ("dpm-solver-2m", "dpm-solver++-2m")]

    three, four = both([999.0, 666.0, 333.0, -1.0]), both([999.0, 750.0, 500.0, 250.0, -1.0])
    assert np.all(np.isfinite(three[0])) and np.all(np.isfinite(four[0]))
    # after a DDIM step, d_1 - d_0 = s_1 (eps_0 - eps_1): the second step of the two forms coincides, so with
    # Euler first and last steps (3 steps) the runs agree; a third multistep step tells them apart
    assert rel(three[0], three[1]) < 1e-12
    assert rel(four[0], four[1]) > 1e-4
