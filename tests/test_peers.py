"""Parity with diffusers schedulers, the official PNDM indexing, and the head-to-head command.

The model is the exact eps of a small 2-D Gaussian mixture written here (independent of
``pndmkit.problems``). diffusers keeps its tables in float32; the parity tests run pndmkit on a
:class:`DiscreteVP` whose float64 table equals diffusers' float32 ``alphas_cumprod`` exactly, so the only
remaining difference is diffusers' float32 coefficient arithmetic (about 1e-7 relative). Against the
float64 ``DiscreteVP.linear()`` the float32 cumulative product drifts by up to 4e-7 relative in ``abar``,
which moves the end points by a few 1e-6 (tested with a looser tolerance).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import pndmkit  # noqa: E402
from pndmkit import DiscreteVP  # noqa: E402
from pndmkit.studies.peers import make_scheduler, peer_sample, run_scheduler, time_of_level  # noqa: E402
from pndmkit.schedules import CosineVP, LinearVP  # noqa: E402
from pndmkit.transfers import DDIMTransfer  # noqa: E402

pytestmark = pytest.mark.peers

# --- the ground truth: a two-component mixture in 2-D, eps in closed form --------------------------------
W = np.array([0.4, 0.6])
MU = np.array([[-0.5, 0.2], [0.5, -0.1]])
VAR = np.array([0.04, 0.09])  # isotropic component variances


def eps_at(x: np.ndarray, abar: float) -> np.ndarray:
    """eps = -sqrt(1 - abar) * grad log p_t for p_t = sum_k w_k N(sqrt(abar) mu_k, (abar var_k + 1 - abar) I)."""
    c = abar * VAR + 1.0 - abar  # (K,)
    diff = x[:, None, :] - math.sqrt(abar) * MU[None]  # (n, K, d)
    logp = np.log(W) - 0.5 * np.sum(diff**2, axis=-1) / c - 0.5 * x.shape[1] * np.log(c)
    r = np.exp(logp - logp.max(axis=1, keepdims=True))
    r /= r.sum(axis=1, keepdims=True)
    return math.sqrt(1.0 - abar) * np.einsum("nk,nkd->nd", r / c, diff)


def model_for(schedule):
    return lambda x, t: eps_at(x, float(schedule.abar(t)))


@pytest.fixture(scope="module")
def matched():
    """DiscreteVP whose float64 table is diffusers' float32 linear table, exactly."""
    ac = diffusers.PNDMScheduler().alphas_cumprod.double().numpy()
    sched = DiscreteVP(1.0 - ac / np.concatenate([[1.0], ac[:-1]]))
    assert np.array_equal(sched.alphas_cumprod, ac)
    return sched


@pytest.fixture(scope="module")
def x_T():
    return np.random.default_rng(5).standard_normal((16, 2))


#: float32 coefficient arithmetic of diffusers, relative to the largest entry of the result
F32 = 3e-6


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


PNDM_CONFIG = {"steps_offset": 1, "set_alpha_to_one": False}


# --- PNDMScheduler: PRK warm-up (f-pndm) and skip_prk_steps (plms) -------------------------------------
PNDM_CASES = [("f-pndm", "pndm", n, nfe) for n, nfe in [(4, 13), (5, 14), (10, 19), (50, 59)]] + [
    ("plms", "pndm-plms", n, nfe) for n, nfe in [(2, 3), (3, 4), (5, 6), (10, 11), (50, 51)]]


@pytest.mark.parametrize("method, peer, steps, nfe", PNDM_CASES)
def test_pndm_methods_reproduce_pndm_scheduler(matched, x_T, method, peer, steps, nfe):
    """f-pndm is PNDMScheduler with PRK warm-up, plms is PNDMScheduler(skip_prk_steps=True)."""
    run = peer_sample(model_for(matched), x_T, schedule=matched, peer=peer, steps=steps, **PNDM_CONFIG)
    ours = pndmkit.sample(model_for(matched), x_T, schedule=matched, method=method, steps=steps,
                          convention="diffusers-pndm")
    assert run.nfe == ours.nfe == nfe
    assert rel(ours.x, run.x) < F32


def _drive(scheduler, matched, x_T, steps):
    """``scheduler`` (diffusers' or pndmkit's) driven as a pipeline drives it, on the exact mixture eps at each
    integer timestep it lists; returns ``(x, calls)``."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler.set_timesteps(steps)
        x, calls = torch.from_numpy(x_T.copy()), 0
        for t in scheduler.timesteps:
            assert float(t) == int(t)
            eps = eps_at(x.numpy(), float(matched.alphas_cumprod[int(t)]))
            x, calls = scheduler.step(torch.from_numpy(eps), int(t), x).prev_sample, calls + 1
    return x.numpy(), calls


@pytest.mark.parametrize("offset", [0, 1, 2])
@pytest.mark.parametrize("method, skip_prk", [("f-pndm", False), ("plms", True)])
def test_which_pndm_scheduler_steps_offset_each_path_reproduces(matched, x_T, method, skip_prk, offset):
    """``convention="diffusers-pndm"`` is ``PNDMScheduler(steps_offset=1)``; diffusers' default is
    ``steps_offset=0``, whose grid ends with a step of length zero (t = 0 to abar_0: a call that changes nothing),
    so it takes N - 1 real steps, which no convention lays out. The scheduler swap reproduces every offset (one
    call fewer at 0: the zero-length step is left out); so do the grid options, or the source's times."""
    from pndmkit.integrations.diffusers import PNDMKitScheduler

    model = model_for(matched)
    assert diffusers.PNDMScheduler().config.steps_offset == 0  # diffusers' default
    for steps in (4, 10, 50):
        theirs = diffusers.PNDMScheduler(steps_offset=offset, set_alpha_to_one=False, skip_prk_steps=skip_prk)
        x_theirs, calls = _drive(theirs, matched, x_T, steps)
        ours = PNDMKitScheduler.from_config(theirs.config, method=method)
        x_swap, swap_calls = _drive(ours, matched, x_T, steps)
        assert type(theirs) is diffusers.PNDMScheduler and ours.run.done and ours.nfe == swap_calls
        assert swap_calls == calls - (offset == 0) and rel(x_swap, x_theirs) < 1e-5
        conv = pndmkit.sample(model, x_T, schedule=matched, method=method, steps=steps, convention="diffusers-pndm")
        if offset == 1:
            assert conv.nfe == calls and rel(conv.x, x_theirs) < F32
        else:
            assert rel(conv.x, x_theirs) > 1e-3
        if offset:
            explicit = pndmkit.sample(model, x_T, schedule=matched, method=method, steps=steps, grid="leading",
                                      offset=offset, final_alpha="first")
        else:  # the source's N timesteps, the last step of length zero left out
            explicit = pndmkit.sample(model, x_T, schedule=matched, method=method,
                                      grid=np.arange(steps - 1, -1, -1) * float(1000 // steps))
        assert explicit.nfe == calls - (offset == 0) and rel(explicit.x, x_theirs) < F32


def test_the_readme_parity_numbers_for_steps_offset_are_measured(matched, x_T):
    """The README's parity paragraph names the offset the convention reproduces and quotes, for diffusers'
    default offset 0, how far the convention is off and how close the scheduler swap is: measured here."""
    from pathlib import Path

    from pndmkit.integrations.diffusers import PNDMKitScheduler

    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    model, conv, swap = model_for(matched), {}, []
    for method, skip_prk in (("f-pndm", False), ("plms", True)):
        for offset in (0, 1, 2):
            for steps in (4, 5, 10, 20, 50):
                theirs = diffusers.PNDMScheduler(steps_offset=offset, set_alpha_to_one=False, skip_prk_steps=skip_prk)
                x_theirs, _ = _drive(theirs, matched, x_T, steps)
                x_swap, _ = _drive(PNDMKitScheduler.from_config(theirs.config, method=method), matched, x_T, steps)
                swap.append(rel(x_swap, x_theirs))
                if offset == 0:
                    conv[method, steps] = rel(pndmkit.sample(model, x_T, schedule=matched, method=method, steps=steps,
                                                             convention="diffusers-pndm").x, x_theirs)

    def pct(*values):
        low, high = (f"{100 * v:.2g}" for v in (min(values), max(values)))
        return f"{low}%" if low == high else f"{low}-{high}%"

    few = pct(*(conv[m, n] for m in ("f-pndm", "plms") for n in (4, 5)))
    assert "`f-pndm` with `convention=\"diffusers-pndm\"` reproduces `PNDMScheduler(steps_offset=1, " in readme
    assert (f"off by {few} at 4-5 steps, {pct(conv['f-pndm', 10], conv['plms', 10])} at 10 and "
            f"{pct(conv['f-pndm', 50], conv['plms', 50])} at 50, for `f-pndm` and `plms`") in readme
    # a bound, not the figure: float32 rounding's exact size moves with the diffusers and numpy versions
    assert max(swap) < 1e-5 and "within 1e-5 of it for k = 0, 1, 2" in readme, max(swap)


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_pndm_scheduler_refuses_fewer_steps_than_its_warm_up(matched, x_T, steps):
    """diffusers' PRK mode fails in set_timesteps for N < 4; pndmkit runs PRK on every step (4N calls)."""
    with pytest.raises(ValueError, match="broadcast"):
        make_scheduler("pndm", matched, steps, **PNDM_CONFIG)
    kw = dict(schedule=matched, steps=steps, convention="diffusers-pndm")
    ours = pndmkit.sample(model_for(matched), x_T, method="f-pndm", **kw)
    prk = pndmkit.sample(model_for(matched), x_T, method="prk", **kw)
    assert ours.nfe == 4 * steps
    np.testing.assert_array_equal(ours.x, prk.x)


def test_pndm_scheduler_prk_stages_when_the_step_is_odd(matched, x_T):
    """With T // N odd (N = 8: h = 125) diffusers' PRK moves the sample to t - 62 for the second stage but
    calls the model at t - 63 (its timestep list holds t_next + h // 2), then takes the third stage at
    t - 63. pndmkit's f-pndm uses the exact midpoint t - 62.5 and differs by much more than float32; an
    oracle with diffusers' stage times reproduces it."""
    model = model_for(matched)
    peer = peer_sample(model, x_T, schedule=matched, peer="pndm", steps=8, **PNDM_CONFIG)
    ours = pndmkit.sample(model, x_T, schedule=matched, method="f-pndm", steps=8, convention="diffusers-pndm")
    assert peer.timesteps[:4] == [876.0, 813.0, 813.0, 751.0]
    assert peer.nfe == ours.nfe == 17
    assert rel(ours.x, peer.x) > 1e-4
    phi = DDIMTransfer(matched)
    oracle = pndm_oracle(model, x_T, ours.times, phi, lambda t, t_next: (t - 62, t - 63, t - 63, t - 63))
    assert rel(oracle, peer.x) < F32


def test_plms_with_one_step(matched, x_T):
    """With N = 1 diffusers' timestep list has one entry: a single DDIM step (1 call); pndmkit's plms keeps
    its definition (PIE warm-up, 2 calls, N + 1 for every N)."""
    model = model_for(matched)
    peer = peer_sample(model, x_T, schedule=matched, peer="pndm-plms", steps=1, **PNDM_CONFIG)
    kw = dict(schedule=matched, steps=1, convention="diffusers-pndm")
    ddim = pndmkit.sample(model, x_T, method="ddim", **kw)
    plms = pndmkit.sample(model, x_T, method="plms", **kw)
    assert (peer.nfe, ddim.nfe, plms.nfe) == (1, 1, 2)
    assert rel(ddim.x, peer.x) < F32


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 10, 50])
def test_pndm_parity_on_the_float64_linear_schedule(x_T, steps):
    """Against pndmkit's own float64 table the float32 cumulative product costs a few 1e-6."""
    sched = DiscreteVP.linear()
    plms = peer_sample(model_for(sched), x_T, schedule=sched, peer="pndm-plms", steps=max(steps, 2), **PNDM_CONFIG)
    ours = pndmkit.sample(model_for(sched), x_T, schedule=sched, method="plms", steps=max(steps, 2),
                          convention="diffusers-pndm")
    assert rel(ours.x, plms.x) < 2e-5
    ddim = peer_sample(model_for(sched), x_T, schedule=sched, peer="ddim", steps=steps)
    ours = pndmkit.sample(model_for(sched), x_T, schedule=sched, method="ddim", steps=steps)
    assert rel(ours.x, ddim.x) < 2e-5


# --- DDIMScheduler ------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [1, 2, 3, 5, 10, 50])
@pytest.mark.parametrize("convention, config", [("ddim", {}), ("diffusers-pndm", PNDM_CONFIG)])
def test_ddim_reproduces_ddim_scheduler(matched, x_T, steps, convention, config):
    peer = peer_sample(model_for(matched), x_T, schedule=matched, peer="ddim", steps=steps, **config)
    ours = pndmkit.sample(model_for(matched), x_T, schedule=matched, method="ddim", steps=steps,
                          convention=convention)
    assert peer.nfe == ours.nfe == steps
    assert rel(ours.x, peer.x) < F32
    assert peer.s_end == (0.0 if convention == "ddim" else pytest.approx(float(matched.s(0)), rel=1e-6))


def test_ddim_scheduler_linspace_steps_to_levels_it_never_evaluates(matched, x_T):
    """DDIMScheduler steps from t to t - T // N whatever the spacing: with linspace (999, 749, 500, 250, 0 for
    N = 5) it moves the sample to 799 and then calls the model at 749, treating the sample as if it were
    there. An oracle with that indexing reproduces it; pndmkit's linspace grid (consistent) differs."""
    model = model_for(matched)
    peer = peer_sample(model, x_T, schedule=matched, peer="ddim", steps=5, timestep_spacing="linspace")
    assert peer.timesteps == [999.0, 749.0, 500.0, 250.0, 0.0]
    phi, x = DDIMTransfer(matched), x_T
    for t in peer.timesteps:
        x = phi(x, model(x, t), t, max(t - 200, -1.0))
    assert rel(x, peer.x) < F32
    ours = pndmkit.sample(model, x_T, schedule=matched, method="ddim", steps=5, grid="linspace")
    assert rel(ours.x, peer.x) > 1e-3


# --- IPNDMScheduler -------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [1, 2, 3, 5, 10, 50])
@pytest.mark.parametrize("grid", ["leading", "trailing"])
def test_ipndm_reproduces_ipndm_scheduler_on_a_given_grid(matched, x_T, steps, grid):
    """IPNDMScheduler's ``trained_betas`` are the VP sigmas sqrt(1 - abar) of the N + 1 grid points; given
    those of a pndmkit grid (and a v-model: it reads the output as v) it is pndmkit's ipndm."""
    peer = peer_sample(model_for(matched), x_T, schedule=matched, peer="ipndm", steps=steps, grid=grid)
    ours = pndmkit.sample(model_for(matched), x_T, schedule=matched, method="ipndm", steps=steps, grid=grid)
    assert peer.nfe == ours.nfe == steps
    # IPNDM stores sigma = sqrt(1 - abar) in float32 and derives alpha = sqrt(1 - sigma^2): near the noise end
    # (abar about 4e-5) alpha loses about 3 digits, a few 1e-5 on the result when the grid starts at t = 999
    assert rel(ours.x, peer.x) < 5e-5


@pytest.mark.parametrize("schedule", [DiscreteVP.quad(), DiscreteVP.linear(T=500)], ids=repr)
@pytest.mark.parametrize("grid", ["linspace", "trailing"])
def test_ipndm_top_level_rounded_above_the_table_is_its_top_time(x_T, schedule, grid):
    """IPNDM keeps the grid's sigma in float32: on these tables the top one rounds up, so its level lies above
    s(T - 1) and t_from_s refuses it. The model is told T - 1, and the run is pndmkit's ipndm on that grid."""
    told = []

    def model(x, t):
        schedule.check_time(t)
        told.append(t)
        return eps_at(x, float(schedule.abar(t)))

    top = make_scheduler("ipndm", schedule, 5, grid=grid)
    assert float(top.betas[0]) / float(top.alphas[0]) > float(schedule.s(schedule.t_max))  # the case itself
    peer = peer_sample(model, x_T, schedule=schedule, peer="ipndm", steps=5, grid=grid)
    assert told[0] == schedule.t_max
    ours = pndmkit.sample(model, x_T, schedule=schedule, method="ipndm", steps=5, grid=grid)
    assert rel(ours.x, peer.x) < 5e-5


@pytest.mark.parametrize("schedule", [DiscreteVP.linear(), LinearVP(), CosineVP()], ids=repr)
def test_time_of_level_clips_to_the_schedule_and_inverts_inside(schedule):
    s_hi, s_lo = float(schedule.s(schedule.t_max)), float(schedule.s(schedule.t_min))
    for s in (s_hi, s_hi * (1 + 1e-6), math.inf):
        assert time_of_level(schedule, s) == schedule.t_max
    for s in (s_lo, 0.0):
        assert time_of_level(schedule, s) == schedule.t_min
    # below t_end but inside the domain (the continuous schedules end sampling above t_min): inverted, not clipped
    for t in (0.5 * (schedule.t_min + schedule.t_end) if schedule.t_end > schedule.t_min else schedule.t_min + 0.5,
              0.5 * (schedule.t_end + schedule.t_start)):
        assert time_of_level(schedule, float(schedule.s(t))) == pytest.approx(t, rel=1e-9)


@pytest.mark.parametrize("schedule", [DiscreteVP.linear(), LinearVP(), CosineVP()], ids=repr)
def test_time_of_level_refuses_nan_naming_s(schedule):
    # NaN passes both clips (every comparison is False): it is refused instead of reaching t_from_s
    for s in (math.nan, np.float32("nan")):
        with pytest.raises(ValueError, match=r"^s must be .*got s=nan"):
            time_of_level(schedule, s)


@pytest.mark.parametrize("steps", [1, 2, 5, 10])
def test_ipndm_native_schedule_starts_at_pure_noise(x_T, steps):
    """IPNDM's own schedule starts at abar = 0 exactly (s = inf), where pndmkit's phi is undefined; there
    diffusers sets x0 = (x - eps) / max(alpha, 1e-8) = 0, so its first step ignores the model and lands
    on sigma_1 * x_T. From that state on it is pndmkit's ipndm on the cosine schedule abar = cos^2(pi t / 2)."""
    cosine = CosineVP(s0=0.0, t_max=1.0 - 1e-9)
    sched = make_scheduler("ipndm", cosine, steps)
    sigma = sched.betas.double().numpy()
    alpha = sched.alphas.double().numpy()
    assert sigma[0] == 1.0 and alpha[0] == 0.0
    np.testing.assert_allclose(sched.timesteps.double().numpy(), np.arctan2(sigma, alpha)[:-1] * 2 / np.pi)
    run = run_scheduler(sched, lambda x, t, s: eps_at(x, 1.0 / (1.0 + s * s)) if math.isfinite(s) else x, x_T,
                        prediction="v")
    if steps == 1:
        np.testing.assert_array_equal(run.x, 0.0)
        return
    times = np.arctan2(sigma, alpha) * 2 / np.pi
    x1 = sigma[1] * x_T
    integrator = pndmkit.METHODS["ipndm"].build(cosine)
    start = integrator.start(x1, times[1:], estimator_state=((1.0, x_T),))  # the first step's eps (= x_T) known
    ours = integrator.solve(model_for(cosine), run=start)
    assert ours.nfe + 1 == run.nfe == steps
    assert rel(ours.x, run.x) < 1e-6


# --- official PNDM indexing -----------------------------------------------------------------------------
def pndm_oracle(net, x, grid, phi, stages):
    """F-PNDM written from docs/theory.md ("Pseudo numerical methods: gradient part + transfer"): PRK for three
    steps, then AB4 on the first evaluation of each step.

    ``stages(t, t_next)`` gives the PRK stage times as (transfer of stage 2, model of stage 2, transfer of
    stage 3, model of stage 3); the paper puts all four at the midpoint.
    """
    history = []
    for t, t_next in zip(grid[:-1], grid[1:]):
        e1 = net(x, t)
        if len(history) < 3:
            to2, at2, to3, at3 = stages(t, t_next)
            e2 = net(phi(x, e1, t, to2), at2)
            e3 = net(phi(x, e2, t, to3), at3)
            e4 = net(phi(x, e3, t, t_next), t_next)
            e = (e1 + 2 * e2 + 2 * e3 + e4) / 6
        else:
            e = (55 * e1 - 59 * history[-1] + 37 * history[-2] - 9 * history[-3]) / 24
        history.append(e1)
        x = phi(x, e, t, t_next)
    return x


def official_pndm_oracle(net, x, steps, abar):
    """The official loop's indexing: network at index t, abar read at t + 1 of the unpadded table, the
    sequence 0, skip, 2 skip, ... and a last step to index -1, i.e. abar_0."""

    def phi(x, e, t, t_next):  # eq. 9 with abar at t + 1
        a, a_next = abar[int(t) + 1], abar[int(t_next) + 1]
        return math.sqrt(a_next / a) * x - (a_next - a) / (
            math.sqrt(a) * (math.sqrt((1 - a_next) * a) + math.sqrt((1 - a) * a_next))) * e

    skip = len(abar) // steps
    grid = list(range(0, len(abar), skip))[::-1] + [-1]

    def midpoint(t, t_next):
        return ((t + t_next) / 2,) * 4

    return pndm_oracle(net, x, grid, phi, midpoint)


@pytest.mark.parametrize("steps", [5, 10, 50])
def test_official_pndm_convention_matches_the_official_formulas(x_T, steps):
    sched = DiscreteVP.linear()
    abar = sched.alphas_cumprod

    def net(x, t):  # the network the official loop assumes: index t means abar at t + 1
        return eps_at(x, float(abar[int(t) + 1]))

    ours = pndmkit.sample(net, x_T, schedule=sched, method="f-pndm", steps=steps, convention="official-pndm")
    np.testing.assert_allclose(ours.x, official_pndm_oracle(net, x_T, steps, abar), rtol=1e-12, atol=1e-12)
    assert ours.times[-1] == 0.0 and sched.abar(ours.times[-1]) == abar[0]


def test_official_pndm_convention_cannot_take_every_training_step(x_T):
    """1000 steps would read abar at index 1000, past the table (the official code overflows)."""
    with pytest.raises(ValueError, match="past the last training index"):
        pndmkit.sample(lambda x, t: 0 * x, x_T, schedule=DiscreteVP.linear(), method="ddim", steps=1000,
                       convention="official-pndm")


# --- v-prediction: convert before combining -------------------------------------------------------------
def v_model_for(schedule):
    def v(x, t):
        a = float(schedule.abar(t))
        e = eps_at(x, a)
        x0 = (x - math.sqrt(1 - a) * e) / math.sqrt(a)
        return math.sqrt(a) * e - math.sqrt(1 - a) * x0

    return v


@pytest.mark.parametrize("method, peer", [("f-pndm", "pndm"), ("plms", "pndm-plms")])
def test_v_prediction_is_converted_before_combining(matched, x_T, method, peer):
    """pndmkit turns every v evaluation into eps at its own (x, t), so a v-model gives the eps-model's
    samples; diffusers' PNDMScheduler combines the v's of different stages and steps and converts the
    combination with the current sample and abar, an O(h) error in every gradient (first order overall)."""
    kw = dict(schedule=matched, method=method, convention="diffusers-pndm")
    gap = {}
    for steps in (20, 80):
        eps_run = pndmkit.sample(model_for(matched), x_T, steps=steps, **kw)
        v_run = pndmkit.sample(v_model_for(matched), x_T, steps=steps, prediction="v", **kw)
        np.testing.assert_allclose(v_run.x, eps_run.x, rtol=0, atol=1e-12)
        d_eps = peer_sample(model_for(matched), x_T, schedule=matched, peer=peer, steps=steps, **PNDM_CONFIG)
        d_v = peer_sample(v_model_for(matched), x_T, schedule=matched, peer=peer, steps=steps,
                          prediction_type="v_prediction", **PNDM_CONFIG)
        assert rel(eps_run.x, d_eps.x) < F32
        gap[steps] = float(np.sqrt(np.mean((d_v.x - d_eps.x) ** 2)))
    assert gap[20] > 1e-2
    assert 2.5 < gap[20] / gap[80] < 6  # shrinks like 1/N: first order


@pytest.mark.parametrize("peer", ["pndm-plms", "heun"])
def test_peer_sample_keeps_the_array_type(matched, x_T, peer):
    """numpy in, numpy out; torch in, torch out (VP and sigma schedulers alike), same numbers."""
    def model(x, t):
        e = eps_at(np.asarray(x), float(matched.abar(t)))
        return torch.from_numpy(e) if isinstance(x, torch.Tensor) else e

    a = peer_sample(model, x_T, schedule=matched, peer=peer, steps=6)
    b = peer_sample(model, torch.from_numpy(x_T), schedule=matched, peer=peer, steps=6)
    assert isinstance(a.x, np.ndarray) and isinstance(b.x, torch.Tensor) and b.x.dtype == torch.float64
    np.testing.assert_array_equal(a.x, b.x.numpy())


# --- packaging and the head-to-head command -------------------------------------------------------------
def test_core_does_not_import_diffusers():
    code = ("import sys, pndmkit, pndmkit.studies.peers, pndmkit.studies.compare, pndmkit.studies.reports; "
            "print(any(m.startswith(('diffusers', 'torch')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_compare_quick_json(capsys):
    from pndmkit.cli import main

    assert main(["compare", "--quick", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"by_nfe"}
    assert result["by_nfe"]
    for nfe, row in result["by_nfe"].items():
        assert nfe.isdigit()
        for side in ("best_pndmkit", "best_peer"):
            assert set(row[side]) >= {"method", "error"} and isinstance(row[side]["method"], str)
            assert row[side]["error"] > 0
        assert row["ratio"] == pytest.approx(row["best_pndmkit"]["error"] / row["best_peer"]["error"])


# --- the naive scheduler swap: which spacings give the source's samples ------------------------------------
SWAP_SOURCES = [("DPMSolverMultistepScheduler", "dpm-solver++-2m", {"solver_order": 2}),
                ("UniPCMultistepScheduler", "unipc-2", {"solver_order": 2}),
                ("DEISMultistepScheduler", "deis-3", {"solver_order": 3}),
                ("DDIMScheduler", "ddim", {"clip_sample": False}),
                ("PNDMScheduler", "plms", {"skip_prk_steps": True}), ("PNDMScheduler", "f-pndm", {})]


def _swap(cls, method, steps, **config):
    """``(relative difference, ConventionWarnings of set_timesteps)`` of the naive swap against the source."""
    import warnings

    from pndmkit.integrations.diffusers import ConventionWarning, PNDMKitScheduler

    ac = diffusers.DDIMScheduler().alphas_cumprod.double().numpy()
    matched = DiscreteVP(1.0 - ac / np.concatenate([[1.0], ac[:-1]]))
    x_T = np.random.default_rng(5).standard_normal((16, 2))
    theirs = getattr(diffusers, cls)(**config)
    ours = PNDMKitScheduler.from_config(theirs.config, method=method)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ours.set_timesteps(steps)
    said = [str(w.message) for w in seen if issubclass(w.category, ConventionWarning)]
    x_ours, _ = _drive(ours, matched, x_T, steps)
    x_theirs, _ = _drive(theirs, matched, x_T, steps)
    assert type(theirs).__name__ == cls and ours.run.done
    return rel(x_ours, x_theirs), said


def test_the_naive_swap_reproduces_the_source_where_it_integrates_its_own_timesteps():
    """The README's first paragraph on the swap, measured: the multistep schedulers for every spacing, DDIM and
    PNDM for 'leading' and for 'trailing' at a step count that divides T, give the source's samples; DDIM and
    PNDM with 'linspace', or 'trailing' at 12 of 1000 steps, step to t - T // N while the next call is told
    another timestep, and set_timesteps says so with a ConventionWarning."""
    from pathlib import Path

    same = []
    for cls, method, config in SWAP_SOURCES:
        multistep = cls not in ("DDIMScheduler", "PNDMScheduler")
        for spacing, offset in (("leading", 0), ("leading", 1), ("linspace", 0), ("trailing", 0)):
            for steps in (5, 10, 12, 20):
                consistent = multistep or spacing == "leading" or (spacing == "trailing" and 1000 % steps == 0)
                diff, said = _swap(cls, method, steps, timestep_spacing=spacing, steps_offset=offset, **config)
                if consistent:
                    assert not said, (cls, spacing, steps, said)
                    same.append(diff)
                else:
                    assert diff > 1e-3 and len(said) == 1 and f"timestep_spacing={spacing!r} and {steps} steps moves " \
                        f"each sample from t to t - 1000//{steps}" in said[0], (cls, spacing, steps, diff, said)
    linspace, _ = _swap("DDIMScheduler", "ddim", 5, timestep_spacing="linspace", clip_sample=False)
    trailing, _ = _swap("DDIMScheduler", "ddim", 12, timestep_spacing="trailing", clip_sample=False)
    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    section = readme.split("## Use a pndmkit method in a diffusers pipeline", 1)[1].split("```python", 1)[0]
    # a bound, not the figure: float32 rounding's exact size moves with the diffusers and numpy versions
    assert max(same) < 5e-5 and "(within 5e-5 relative" in section, max(same)
    assert (f"(DDIM: {100 * linspace:.2g}% at 5 steps with `'linspace'`, {100 * trailing:.2g}% at 12 with "
            "`'trailing'`)") in section, (linspace, trailing)
