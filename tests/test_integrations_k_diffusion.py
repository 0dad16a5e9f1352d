"""k-diffusion-style samplers: k-diffusion's conventions, and the same numbers as pndmkit.sample."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pndmkit
from pndmkit.integrations import k_diffusion as kd
from pndmkit.methods import BUILTIN, METHODS

FIXED = [name for name, spec in METHODS.items() if not spec.adaptive]
MU, VAR = np.array([0.7, -1.5, 0.2]), np.array([0.3, 1.0, 0.05])  # data ~ N(MU, diag(VAR))


def eps_vp(x, t):
    """Exact eps of the Gaussian data on SigmaVP (time = sigma): x = a x0 + b noise, a^2 = 1 / (1 + t^2)."""
    a, b = 1 / math.sqrt(1 + t * t), t / math.sqrt(1 + t * t)
    return b * (x - a * MU) / (a * a * VAR + b * b)


def denoiser(x, sigma, shift=0.0):
    """The same data in k-diffusion's variables: D(y, sigma) = y - sigma eps (one sigma per batch row)."""
    s = float(sigma[0])
    assert np.all(sigma == s) and sigma.shape == (x.shape[0],)
    return x - s * eps_vp(x / math.sqrt(1 + s * s), s) + shift


def karras(n, sigma_min=0.05, sigma_max=10.0, rho=7.0):
    ramp = np.linspace(0, 1, n)
    s = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return np.append(s, 0.0)


def euler_from_its_definition(model, x, sigmas):
    """k-diffusion's sample_euler without churn: d = (x - D(x, sigma)) / sigma; x += d (sigma' - sigma)."""
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * np.ones(x.shape[0]))
        d = (x - denoised) / sigmas[i]
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


@pytest.fixture
def y_start():
    return np.random.default_rng(0).standard_normal((4, 3)) * 10.0 + MU


def test_ddim_is_k_diffusion_euler(y_start):
    sigmas = karras(12)
    seen = []
    out = kd.sample(denoiser, y_start, sigmas, method="ddim", disable=True, callback=seen.append)
    np.testing.assert_allclose(out, euler_from_its_definition(denoiser, y_start, sigmas), rtol=1e-12, atol=1e-12)
    assert [c["i"] for c in seen] == list(range(12))
    assert set(seen[0]) == {"x", "i", "sigma", "sigma_hat", "denoised"}
    np.testing.assert_allclose(seen[0]["x"], y_start, rtol=1e-15)
    np.testing.assert_allclose(seen[3]["denoised"], denoiser(seen[3]["x"], np.full(4, sigmas[3])), rtol=1e-15)
    assert seen[3]["sigma"] == seen[3]["sigma_hat"] == sigmas[3]


@pytest.mark.parametrize("name", FIXED)
def test_every_method_equals_sample_on_the_vp_problem(name, y_start):
    sigmas = np.geomspace(10.0, 0.05, 9)
    out = kd.sample(denoiser, y_start, sigmas, method=name, disable=True)
    schedule = kd.SigmaVP(sigmas[0])
    sol = pndmkit.sample(eps_vp, y_start / math.sqrt(1 + sigmas[0] ** 2), schedule=schedule, method=name,
                         grid=sigmas)
    np.testing.assert_allclose(out, sol.x * math.sqrt(1 + sigmas[-1] ** 2), rtol=1e-12, atol=1e-12)
    named = getattr(kd, kd.sampler_name(name))
    assert named.__name__ == kd.sampler_name(name)
    np.testing.assert_array_equal(named(denoiser, y_start, sigmas, disable=True), out)


def test_sigma_vp_is_the_noise_to_signal_ratio():
    sched = kd.SigmaVP(80.0)
    t = np.array([0.0, 0.01, 1.0, 14.6, 80.0])
    np.testing.assert_allclose(sched.s(t), t, rtol=1e-15, atol=0)
    np.testing.assert_allclose(sched.abar(t), 1 / (1 + t**2), rtol=1e-15)
    np.testing.assert_allclose(sched.t_from_log_abar(sched.log_abar(t)), t, rtol=1e-14, atol=1e-15)


def test_extra_args_and_refusals(y_start):
    sigmas = karras(6)
    shifted = kd.sample(denoiser, y_start, sigmas, method="ipndm", extra_args={"shift": 0.25}, disable=True)
    plain = kd.sample(lambda x, s: denoiser(x, s, 0.25), y_start, sigmas, method="ipndm", disable=True)
    np.testing.assert_array_equal(shifted, plain)
    with pytest.raises(ValueError, match=r"sigmas\[1\]=2.0"):
        kd.sample(denoiser, y_start, [1.0, 2.0, 0.0], disable=True)
    with pytest.raises(ValueError, match="adaptive"):
        kd.sample(denoiser, y_start, sigmas, method="pf", disable=True)
    with pytest.raises(AttributeError, match="sample_pf"):
        kd.sample_pf  # noqa: B018
    assert "sample_f_pndm_s" in dir(kd)


# -- orders through k-diffusion's signature -------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("ddim", 1), ("ipndm-v", 2), ("prk-s", 4), ("f-pndm-s", 4), ("pec-s", 4),
    ("prk", 4),  # stages at the t-midpoint: in k-diffusion's variables t *is* sigma = s, so PRK is s-consistent
])
def test_a_mixture_denoiser_gives_the_registry_orders(name, expected):
    """The registry study (gmm2d, t-uniform cosine-VP grid from t = 0.9 to s = 0.1) in k-diffusion's variables:
    an exact denoiser D(y, sigma) = y - sigma eps, the same noise levels as sigmas, the error against the exact
    trajectory (in y). Declared orders hold for methods whose stages and weights live in s; t-placed ones gain
    order because SigmaVP's time is sigma itself."""
    from pndmkit.problems import get_problem, reference_trajectory
    from pndmkit.schedules import EDM, CosineVP
    from pndmkit.studies.convergence import fit_order

    from pndmkit.integrations import k_diffusion as K

    gm = get_problem("gmm2d")
    cosine = CosineVP()
    t0, t1 = 0.9, float(cosine.t_from_s(0.1))

    def denoiser(y, sigma):  # sigma comes batched, one per sample, as in k-diffusion
        s = float(np.asarray(sigma).reshape(-1)[0])
        return y - s * gm.eps_at_levels(y, 1.0, s * s)

    y_T = float(cosine.s(t0)) * np.random.default_rng(0).standard_normal((4, 2))
    exact = reference_trajectory(gm, y_T, EDM(), t_start=float(cosine.s(t0)), t_end=0.1)
    steps, errors = [100, 200, 400, 800], []  # the registry study's step counts
    for n in steps:
        sigmas = np.asarray(cosine.s(np.linspace(t0, t1, n + 1)), dtype=np.float64)
        y = K.sample(denoiser, y_T, sigmas, method=name, disable=True)
        errors.append(float(np.sqrt(np.mean((y - exact) ** 2))))
    order = fit_order(steps, errors, floor=1e-11)[0]
    assert order is not None and abs(order - expected) <= 0.3, (name, order, errors)



# -- names that are identifiers, and a live table of them ---------------------------------------------------
def test_every_sampler_name_is_an_identifier_and_in_the_table():
    names = {kd.sampler_name(name): name for name in FIXED}
    assert len(names) == len(FIXED) and all(n.isidentifier() for n in names)
    assert kd.sampler_name("dpm-solver++-2m") == "sample_dpm_solver_pp_2m"
    assert kd.sampler_name("dpm-solver++-3m") == "sample_dpm_solver_pp_3m"
    assert kd.sampler_name("f-pndm-s") == "sample_f_pndm_s" and kd.sampler_name("ipndm-x0") == "sample_ipndm_x0"
    assert sorted(kd.SAMPLERS) == sorted(names) and len(kd.SAMPLERS) == len(FIXED)
    assert set(names) <= set(dir(kd)) and "sample_pf" not in kd.SAMPLERS
    for attr, name in names.items():
        f = getattr(kd, attr)
        assert f.__name__ == attr and kd.SAMPLERS[attr].__name__ == attr and repr(name) in f.__doc__


def test_the_identifier_runs_the_method_and_the_old_spelling_still_resolves(y_start):
    sigmas = karras(8)
    out = kd.sample(denoiser, y_start, sigmas, method="dpm-solver++-2m", disable=True)
    from pndmkit.integrations.k_diffusion import sample_dpm_solver_pp_2m  # an import statement reaches it

    np.testing.assert_array_equal(sample_dpm_solver_pp_2m(denoiser, y_start, sigmas, disable=True), out)
    np.testing.assert_array_equal(getattr(kd, "sample_dpm_solver++_2m")(denoiser, y_start, sigmas, disable=True), out)
    assert "sample_dpm_solver++_2m" not in dir(kd)


def test_methods_registered_later_get_a_sampler_and_name_clashes_are_refused(y_start):
    from pndmkit.methods import MethodSpec, register_method, unregister_method

    ddim = METHODS["ddim"]
    register_method(MethodSpec("my++-euler", ddim.build, ddim.order, reference="a copy of ddim"))
    try:
        assert "sample_my_pp_euler" in dir(kd) and "sample_my_pp_euler" in kd.SAMPLERS
        np.testing.assert_array_equal(kd.sample_my_pp_euler(denoiser, y_start, karras(5), disable=True),
                                      kd.sample_ddim(denoiser, y_start, karras(5), disable=True))
        with pytest.raises(ValueError, match="'my\\+\\+-euler' is registered and both become the Python name "
                                             "'my_pp_euler'"):
            register_method(MethodSpec("my-pp-euler", ddim.build, ddim.order))  # the registry keeps names unique
        assert "my-pp-euler" not in METHODS and kd.sampler("my++-euler").__name__ == "sample_my_pp_euler"
    finally:
        unregister_method("my++-euler")
    assert "sample_my_pp_euler" not in dir(kd) and "sample_my_pp_euler" not in kd.SAMPLERS
    with pytest.raises(AttributeError, match="has no attribute 'sample_my_pp_euler'"):
        kd.sample_my_pp_euler  # noqa: B018


# -- every method takes sigmas ending at 0 --------------------------------------------------------------------
def exact_end(y, sigma_0):
    """The Gaussian data's probability-flow ODE is linear: y(0) = MU + (y - MU) sqrt(VAR / (VAR + sigma_0^2))."""
    return MU + (y - MU) * np.sqrt(VAR / (VAR + sigma_0**2))


DATA_STEP = {"prk", "prk-s", "rk4"}    # a stage at the step's end after interior stages: the data step D(x, sigma)
PREDICTOR = {"pec-s", "pec-s-ramp", "pece-s", "pie"}  # a request at 0 right after the start: the method's own predictor


def counted(calls):
    def model(x, sigma):
        calls.append(float(sigma[0]))
        return denoiser(x, sigma)
    return model


@pytest.mark.parametrize("name", FIXED)
def test_every_method_takes_sigmas_ending_at_zero(name, y_start):
    sigmas, calls = karras(12), []
    out = kd.sample(counted(calls), y_start, sigmas, method=name, disable=True)
    assert 0.0 not in calls  # the denoiser is never asked for sigma = 0
    error = float(np.abs(out - exact_end(y_start, sigmas[0])).max())
    assert error < (0.25 if name in ("euler", "ddim") else 0.07), error
    head_calls = []
    head = kd.sample(counted(head_calls), y_start, sigmas[:-1], method=name, disable=True)
    if name in DATA_STEP:  # the run on sigmas[:-1], then one denoiser call there: x = D(x, sigmas[-2])
        np.testing.assert_array_equal(out, denoiser(head, np.full(4, sigmas[-2])))
        assert len(calls) == len(head_calls) + 1
    elif name in PREDICTOR:  # the same run to the last step's start and one evaluation there (pec-s: none)
        assert len(calls) == len(head_calls) + (0 if name in ("pec-s", "pec-s-ramp") else 1)
    elif name in BUILTIN:  # the method's own last step: what pndmkit.sample does with the same grid on SigmaVP
        sol = pndmkit.sample(eps_vp, y_start / math.sqrt(1 + sigmas[0] ** 2), schedule=kd.SigmaVP(sigmas[0]),
                             method=name, grid=sigmas)
        np.testing.assert_allclose(out, sol.x, rtol=1e-12, atol=1e-12)
        assert len(calls) == sol.nfe


def heun_from_its_definition(model, x, sigmas):
    """k-diffusion's sample_heun without churn (Karras et al. 2022, Algorithm 1): Heun steps, and an Euler step
    where sigma_next = 0."""
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        d = (x - model(x, s * np.ones(x.shape[0]))) / s
        if s_next == 0:
            x = x + d * (s_next - s)
        else:
            x_2 = x + d * (s_next - s)
            d_2 = (x_2 - model(x_2, s_next * np.ones(x.shape[0]))) / s_next
            x = x + (d + d_2) / 2 * (s_next - s)
    return x


def test_pie_is_k_diffusion_heun_with_its_euler_step_to_zero(y_start):
    sigmas, seen = karras(10), []
    out = kd.sample_pie(denoiser, y_start, sigmas, disable=True, callback=seen.append)
    np.testing.assert_allclose(out, heun_from_its_definition(denoiser, y_start, sigmas), rtol=1e-12, atol=1e-12)
    assert [c["i"] for c in seen] == list(range(10))  # one callback per step, as k-diffusion's Heun


def dpmpp_2m_from_its_definition(model, x, sigmas):
    """DPM-Solver++(2M) (Lu et al. 2022, arXiv 2211.01095, Algorithm 2) in k-diffusion's variables, with
    lambda = -log(sigma): first order on the first step and on a step to sigma = 0, as k-diffusion's
    sample_dpmpp_2m takes them."""
    old = None
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, s * np.ones(x.shape[0]))
        if s_next == 0:
            x = denoised
        else:
            h = math.log(s) - math.log(s_next)
            if old is None:
                d = denoised
            else:
                r = (math.log(sigmas[i - 1]) - math.log(s)) / h
                d = (1 + 1 / (2 * r)) * denoised - old / (2 * r)
            x = (s_next / s) * x - math.expm1(-h) * d
        old = denoised
    return x


def lms_from_its_definition(model, x, sigmas, order=4):
    """Linear multistep in sigma (k-diffusion's sample_lms): d = (x - D) / sigma at each step start, the step
    the integral over [sigma_i, sigma_{i+1}] of the Lagrange interpolant of the last min(i + 1, order) d's
    (integrated exactly here)."""
    ds = []
    for i in range(len(sigmas) - 1):
        ds.append((x - model(x, sigmas[i] * np.ones(x.shape[0]))) / sigmas[i])
        k = min(i + 1, order)
        nodes = [sigmas[i - j] for j in range(k)]
        for j in range(k):
            others = [nodes[m] for m in range(k) if m != j]
            basis = np.polynomial.Polynomial.fromroots(others) if others else np.polynomial.Polynomial([1.0])
            basis = basis / np.prod([nodes[j] - o for o in others])
            integral = basis.integ()
            x = x + (integral(sigmas[i + 1]) - integral(sigmas[i])) * ds[-1 - j]
    return x


@pytest.mark.parametrize("n", [5, 20])
def test_dpm_solver_pp_2m_and_ipndm_v_are_k_diffusions_dpmpp_2m_and_lms(n, y_start):
    sigmas = karras(n)
    np.testing.assert_allclose(kd.sample_dpm_solver_pp_2m(denoiser, y_start, sigmas, disable=True),
                               dpmpp_2m_from_its_definition(denoiser, y_start, sigmas), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(kd.sample_ipndm_v_pndmkit(denoiser, y_start, sigmas, disable=True),
                               lms_from_its_definition(denoiser, y_start, sigmas), rtol=1e-12, atol=1e-12)


def test_a_predictor_corrector_ends_on_its_predictor_of_higher_order_than_the_data_step(y_start):
    """Karras sigmas down to 0.05, then 0: the data step D(x, 0.05) has an error floor of about 4e-3 whatever the
    step count; the third-order predictor of pec-s / pece-s is 50 times better at 48 steps."""
    sigmas = karras(48)
    exact = exact_end(y_start, sigmas[0])
    for name in ("pec-s", "pece-s"):
        out = kd.sample(denoiser, y_start, sigmas, method=name, disable=True)
        data = denoiser(kd.sample(denoiser, y_start, sigmas[:-1], method=name, disable=True), np.full(4, sigmas[-2]))
        assert float(np.abs(out - exact).max()) < 1e-4 < 3e-3 < float(np.abs(data - exact).max())


def test_a_runge_kutta_warm_up_on_the_last_step_takes_the_data_step(y_start):
    sigmas, calls = karras(2), []  # two steps: f-pndm-x0 is still in its PRK warm-up at the last one
    out = kd.sample(counted(calls), y_start, sigmas, method="f-pndm-x0", disable=True)
    head = kd.sample(denoiser, y_start, sigmas[:-1], method="f-pndm-x0", disable=True)
    np.testing.assert_array_equal(out, denoiser(head, np.full(4, sigmas[-2])))
    assert len(calls) == 5 and 0.0 not in calls


# -- k-diffusion's keywords -------------------------------------------------------------------------------------
def test_the_noise_keywords_are_accepted_where_they_add_no_noise(y_start):
    sigmas = karras(6)
    plain = kd.sample_ddim(denoiser, y_start, sigmas, disable=True)

    def never(sigma, sigma_next):
        raise AssertionError("no noise is drawn")

    same = kd.sample_ddim(denoiser, y_start, sigmas, extra_args=None, callback=None, disable=True, s_churn=0.0,
                          s_tmin=0.0, s_tmax=float("inf"), s_noise=1.003, eta=0.0, noise_sampler=never)
    np.testing.assert_array_equal(same, plain)
    assert kd.NOISE_KEYWORDS == {"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": math.inf, "s_noise": 1.0, "eta": 0.0,
                                 "noise_sampler": None}


@pytest.mark.parametrize("kwargs, error, message", [
    ({"s_churn": 40.0}, ValueError,
     "s_churn=40.0 asks for churn (noise added before each step, Karras et al. 2022, Algorithm 2); pndmkit's "
     "'ipndm' is a deterministic sampler of the probability-flow ODE: pass s_churn=0 (the default) or use a "
     "stochastic sampler"),
    ({"eta": 1.0}, ValueError,
     "eta=1.0 asks for ancestral noise (eta > 0 re-noises after each step); pndmkit's 'ipndm' is a deterministic "
     "sampler of the probability-flow ODE: pass eta=0 (the default) or use a stochastic sampler"),
    ({"s_noise": "1"}, TypeError, "s_noise must be a real number, got str '1'"),
    ({"s_tmax": float("nan")}, ValueError, "s_tmax must be a number, got nan"),
    ({"noise_sampler": 3}, TypeError, "noise_sampler must be callable as noise_sampler(sigma, sigma_next) or None, "
                                      "got int"),
    ({"s_chrun": 0.0}, TypeError,  # named as the sampler called
     "sample_ipndm_pndmkit() got an unexpected keyword argument 's_chrun'; did you mean 's_churn'?"),
    ({"decorate_sigma_hat": abs}, TypeError,
     "sample_ipndm_pndmkit() got an unexpected keyword argument 'decorate_sigma_hat'"),
])
def test_the_noise_keywords_are_refused_by_name(kwargs, error, message, y_start):
    with pytest.raises(error) as info:
        kd.sample_ipndm_pndmkit(denoiser, y_start, karras(4), disable=True, **kwargs)
    assert str(info.value) == message


def test_a_model_that_returns_eps_is_refused(y_start):
    from pndmkit.models import guided

    g = guided(lambda x, sigma: x, 2.0, {})
    with pytest.raises(ValueError, match=r"^model returns eps \(it converts its network's 'eps' prediction\); "
                                         r"k-diffusion-style samplers take a denoiser model\(x, sigma\) that "
                                         r"returns x0$"):
        kd.sample(g, y_start, karras(4), disable=True)


def test_unit_noise_warns_with_k_diffusions_fix():
    z = np.random.default_rng(5).standard_normal((8, 4))
    with pytest.warns(pndmkit.PriorScaleWarning) as record:
        kd.sample(denoiser_any, z, karras(4, sigma_max=80.0), disable=True)
    assert len(record) == 1 and record[0].filename == __file__
    message = str(record[0].message)
    rms = float(np.sqrt(np.mean(z**2)))
    assert message == (f"x has root mean square {rms:.4g}, {80 / rms:.3g} times below sigmas[0] = 80, the least root "
                       f"mean square a start x = x0 + sigmas[0] * noise has (a start from noise has about "
                       f"{math.sqrt(1 + 80**2):.6g}); k-diffusion's samplers take x = x0 + sigma * noise: start from "
                       f"noise with x = noise * sigmas[0]")
    assert "EDM" not in message and "t=" not in message  # nothing the k-diffusion user did not set up
    with pytest.warns(pndmkit.PriorScaleWarning, match=r"5 times above 80.0062, the root mean square of x = x0 \+ "
                                                        r"sigmas\[0\] \* noise for unit-variance data") as record:
        kd.sample_euler(denoiser_any, 5 * 80.00624975587844 * np.ones((8, 4)), karras(4, sigma_max=80.0),
                        disable=True)  # an alias names its caller's line too
    assert len(record) == 1 and record[0].filename == __file__


def denoiser_any(x, sigma):
    return np.zeros_like(x)


# -- torch: no autograd graph, dtype kept -----------------------------------------------------------------------
def test_no_autograd_graph_is_kept_and_the_dtype_is_kept():
    torch = pytest.importorskip("torch")

    weight = torch.nn.Parameter(torch.tensor(0.3, dtype=torch.float64))
    seen = []

    def net(x, sigma):
        return weight * x / (1 + sigma[:, None] ** 2)

    x = 10.0 * torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for name in ("ipndm", "prk", "pec-s"):
        out = kd.sample(net, x, karras(6), method=name, disable=True, callback=seen.append)
        assert not out.requires_grad and out.grad_fn is None and out.dtype == torch.float64, name
    assert seen and not any(c["denoised"].requires_grad for c in seen)
    # pndmkit.sample follows torch's grad mode (to differentiate through a sampler)
    sol = pndmkit.sample(lambda x, t: weight * x, x / 10.0, schedule=kd.SigmaVP(10.0), steps=3, grid="uniform")
    assert sol.x.requires_grad
    half = kd.sample(lambda x, s: (0.3 * x).float(), x.half(), karras(6), method="prk", disable=True)
    assert half.dtype == torch.float16  # the data step returns the model output in x's dtype


def _kd_bad_starts():
    torch = pytest.importorskip("torch")
    return [
        (np.array(80.0), ValueError, r"x must have a batch axis first.*got a 0-d array"),
        (torch.tensor(80.0), ValueError, r"x must have a batch axis first.*got a 0-d array"),
        (torch.randint(-80, 80, (4, 3)), TypeError, r"x must have a floating dtype, got int64"),
        (np.arange(12).reshape(4, 3), TypeError, r"x must have a floating dtype, got int64"),
        (np.full((4, 3), np.nan), ValueError, r"x must be finite; 12 of 12 entries are NaN"),
    ]


def test_a_bad_start_is_refused_as_pndmkit_sample_refuses_it():
    """A 0-d, integer or NaN x gets one message naming x and what is allowed (a 0-d one once blamed its type,
    "got float64", or raised IndexError; an integer one ran on), before the denoiser is ever called."""
    calls = []

    def never(x, sigma):
        calls.append(sigma)
        return x

    for x, error, message in _kd_bad_starts():
        with pytest.raises(error, match=message):
            kd.sample(never, x, np.array([80.0, 1.0, 0.0]), method="ipndm", disable=True)
    assert calls == []
    out = kd.sample(denoiser, np.array([[80.0, 0.0, -80.0]]), np.array([80.0, 1.0, 0.0]), method="ipndm",
                    disable=True)  # the same start with its batch axis runs
    assert out.shape == (1, 3) and np.isfinite(out).all()
    # with every datum at 0 the flow is x = sigma * noise, eps is constant and the run ends at 0 to rounding
    at_zero = kd.sample(denoiser_any, np.array([[80.0, 0.0, -80.0]]), np.array([80.0, 1.0, 0.0]), method="ipndm",
                        disable=True)
    np.testing.assert_allclose(at_zero, np.zeros((1, 3)), rtol=0, atol=1e-12)


def test_a_sampler_names_itself_when_it_refuses_an_unknown_keyword():
    """sample_ddim(..., foo=1) said 'sample() got an unexpected keyword argument'; it names sample_ddim now, with
    the closest keyword it takes."""
    from pndmkit.integrations.k_diffusion import SAMPLERS

    run = SAMPLERS["sample_ddim"]
    with pytest.raises(TypeError, match=r"^sample_ddim\(\) got an unexpected keyword argument 'callbak'; did you "
                                        r"mean 'callback'\?"):
        run(lambda x, sigma: 0 * x, np.ones((1, 2)), np.array([80.0, 1.0, 0.0]), callbak=None)


# -- k-diffusion's names mean k-diffusion's algorithms --------------------------------------------------------
#: every sampler of ``k_diffusion.sampling`` (k-diffusion 0.1.1)
K_DIFFUSION_SAMPLERS = ("sample_euler", "sample_euler_ancestral", "sample_heun", "sample_dpm_2",
                        "sample_dpm_2_ancestral", "sample_lms", "sample_dpm_fast", "sample_dpm_adaptive",
                        "sample_dpmpp_2s_ancestral", "sample_dpmpp_sde", "sample_dpmpp_2m", "sample_dpmpp_2m_sde",
                        "sample_dpmpp_3m_sde")
#: k-diffusion's algorithms, each written above from its definition
DEFINITIONS = {"sample_euler": euler_from_its_definition, "sample_heun": heun_from_its_definition,
               "sample_lms": lms_from_its_definition, "sample_dpmpp_2m": dpmpp_2m_from_its_definition}


@pytest.mark.parametrize("n", [5, 20])
def test_every_k_diffusion_name_defined_here_means_k_diffusions_algorithm(n, y_start):
    defined = [name for name in K_DIFFUSION_SAMPLERS if hasattr(kd, name)]
    assert sorted(defined) == sorted(DEFINITIONS) == sorted(kd.K_DIFFUSION_EQUIVALENTS)
    sigmas = karras(n)
    for name in defined:
        f = getattr(kd, name)
        assert f.__name__ == name and name in dir(kd) and repr(kd.K_DIFFUSION_EQUIVALENTS[name]) in f.__doc__
        np.testing.assert_allclose(f(denoiser, y_start, sigmas, disable=True),
                                   DEFINITIONS[name](denoiser, y_start, sigmas), rtol=1e-12, atol=1e-12)
        method = kd.K_DIFFUSION_EQUIVALENTS[name]  # the equivalent pndmkit sampler runs the same numbers
        np.testing.assert_array_equal(f(denoiser, y_start, sigmas, disable=True),
                                      kd.SAMPLERS[kd.sampler_name(method)](denoiser, y_start, sigmas, disable=True))
    from pndmkit.integrations.k_diffusion import sample_euler  # an import statement reaches the alias too

    assert sample_euler.__name__ == "sample_euler"


def start_at(sigma, seed=0):
    """A start x = x0 + sigma * noise of the test's data at sigma."""
    rng = np.random.default_rng(seed)
    return MU + np.sqrt(VAR) * rng.standard_normal((4, 3)) + sigma * rng.standard_normal((4, 3))


def sigmas_not_ending_at_zero(n):
    """Karras sigmas ending at sigma_min (``get_sigmas_karras(n, ...)[:-1]``), the first half of a split of 2n
    Karras steps (ending above 0), and its second half (ComfyUI's ``SplitSigmas``), which ends at 0 and starts
    low."""
    full = karras(2 * n)
    return {"sigma_min": karras(n)[:-1], "first half": full[: n + 1], "second half": full[n:]}


@pytest.mark.parametrize("n", [3, 5, 12])
def test_every_k_diffusion_name_means_k_diffusions_algorithm_on_sigmas_not_ending_at_zero(n):
    """k-diffusion's algorithms do not depend on the sigmas ending at 0 (they step at first order to 0 only), so
    neither may the samplers of their names: ComfyUI's split schedules start low or end above 0."""
    for kind, sigmas in sigmas_not_ending_at_zero(n).items():
        x = start_at(sigmas[0])
        for name, definition in DEFINITIONS.items():
            np.testing.assert_allclose(getattr(kd, name)(denoiser, x, sigmas, disable=True),
                                       definition(denoiser, x, sigmas), rtol=1e-12, atol=1e-12,
                                       err_msg=f"{name} {kind}")
        np.testing.assert_allclose(kd.sample_ipndm(denoiser, x, sigmas, disable=True),  # ComfyUI's, to the same
                                   comfyui_ipndm_from_its_definition(denoiser, x, sigmas), rtol=1e-12, atol=1e-12,
                                   err_msg=f"sample_ipndm {kind}")


def test_sample_dpmpp_2m_does_not_lower_its_last_step_above_zero():
    """The registered dpm-solver++-2m lowers the last of fewer than 15 steps to first order, as diffusers does;
    k-diffusion does not, and on 5 Karras sigmas ending at sigma_min the two are this far apart on the test's data
    (on sigmas ending at 0 the lowered step is the first-order step to 0 of both: the same numbers)."""
    sigmas = karras(5)[:-1]
    x = start_at(sigmas[0])
    ours = kd.sample_dpmpp_2m(denoiser, x, sigmas, disable=True)
    lowered = kd.sample_dpm_solver_pp_2m(denoiser, x, sigmas, disable=True)
    assert np.abs(ours - lowered).max() == pytest.approx(0.239, abs=0.001)
    np.testing.assert_allclose(ours, dpmpp_2m_from_its_definition(denoiser, x, sigmas), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(kd.sample_dpmpp_2m(denoiser, x, karras(5), disable=True),
                                  kd.sample_dpm_solver_pp_2m(denoiser, x, karras(5), disable=True))
    assert "lower_order_final=False" in kd.sample_dpmpp_2m.__doc__


def test_a_denoiser_that_returns_nan_raises_at_the_end(y_start):
    """k-diffusion returns the NaNs silently; pndmkit.sample raises FloatingPointError at the end, and so do these
    samplers (one check of the end, on sigmas ending at 0, where the last step is the data step, and above 0)."""
    calls = []

    def nan_at_one(x, sigma):
        calls.append(float(sigma[0]))
        out = denoiser(x, sigma)
        return out * np.nan if len(calls) == 2 else out

    for sigmas, run in ((karras(6), kd.sample_heun), (karras(6)[:-1], kd.sample_heun), (karras(6), kd.sample_dpmpp_2m),
                        (karras(6)[:-1], kd.sample_lms)):
        calls.clear()
        with pytest.raises(FloatingPointError) as info:
            run(nan_at_one, y_start, sigmas, disable=True)
        assert str(info.value).startswith(f"the sample at sigmas[-1] = {sigmas[-1]:g} of pndmkit's ")
        assert str(info.value).endswith(" is not finite (NaN or inf) although x was: the denoiser returned a NaN or "
                                        "infinite x0 at some sigma (or the steps overflowed); check model(x, sigma) "
                                        "on these sigmas")
        assert info.value.x.shape == y_start.shape and np.isnan(info.value.x).all()
        assert len(calls) > 2  # the run went on to its end: no check per step


def test_a_wrong_shape_denoiser_output_names_the_denoiser_the_sigma_and_both_shapes(y_start):
    """The refusal speaks k-diffusion's language: the denoiser, the sigma it was called at (its third call here, at a
    Runge-Kutta stage of prk's first step, a sigma of no grid point), the shape it returned and the one expected."""
    calls = []

    def drops_a_column(x, sigma):
        calls.append(float(sigma[0]))
        return denoiser(x, sigma)[:, :2] if len(calls) == 3 else denoiser(x, sigma)

    sigmas = karras(6)
    with pytest.raises(ValueError) as info:
        kd.sample(drops_a_column, y_start, sigmas, method="prk", disable=True)
    assert calls[2] not in sigmas.tolist()
    assert str(info.value) == (
        f"denoiser 'test_a_wrong_shape_denoiser_output_names_the_denoiser_the_sigma_and_both_shapes.<locals>."
        f"drops_a_column' called at sigma={calls[2]!r} returned ndarray of shape (4, 2); expected shape (4, 3), the "
        f"shape of x (model(x, sigma) returns the x0 estimate, shaped like x)")
    assert "t=" not in str(info.value)

    class Denoiser:  # a callable object (an nn.Module, say) is named by its class
        def __call__(self, x, sigma):
            return (x,)

    with pytest.raises(ValueError) as info:
        kd.sample_euler(Denoiser(), y_start, sigmas, disable=True)
    assert str(info.value).startswith(f"denoiser 'Denoiser' called at sigma={float(sigmas[0])!r} returned a tuple, "
                                      f"not an array; expected shape (4, 3), the shape of x")


def test_sigmas_of_more_than_one_axis_are_refused_with_their_shape(y_start):
    """flatten() is the fix only where the extra axes have length 1: it joins a batch of sigma rows into one
    sequence twice as long, which no k-diffusion sampler means."""
    with pytest.raises(TypeError) as info:
        kd.sample_euler(denoiser, y_start, karras(3)[None], disable=True)
    assert str(info.value) == ("sigmas must be a 1-D sequence of numbers, got ndarray of shape (1, 4); it holds one "
                               "sequence of levels: pass sigmas.flatten()")
    with pytest.raises(TypeError) as info:
        kd.sample_euler(denoiser, y_start, np.stack([karras(10)] * 2), disable=True)
    assert str(info.value) == (
        "sigmas must be a 1-D sequence of numbers, got ndarray of shape (2, 11); sigmas is one sequence of noise "
        "levels shared by the whole batch (each step calls the model at one sigma for every sample, as k-diffusion "
        "does); a batch of sigma rows is not supported: call the sampler once per row, with sigmas[i] and the "
        "samples that row is for")
    with pytest.raises(TypeError, match=r"^sigmas must be a 1-D sequence of numbers, got ndarray of shape \(\)$"):
        kd.sample_euler(denoiser, y_start, np.array(3.0), disable=True)


def test_pndmkits_euler_has_its_own_name_and_is_not_k_diffusions(y_start):
    """pndmkit's ``euler`` steps the VP sample x, k-diffusion's Euler steps y = x / alpha: on these data at 10
    Karras steps they differ by 0.38, so they must not share a name."""
    assert kd.sampler_name("euler") == "sample_euler_pndmkit" == kd.sampler("euler").__name__
    assert not set(K_DIFFUSION_SAMPLERS) & set(kd.SAMPLERS)  # every name in the table means one pndmkit method
    assert len(kd.SAMPLERS) == len(FIXED) and len({kd.sampler_name(n) for n in FIXED}) == len(FIXED)
    sigmas = karras(10)
    ours = kd.sample_euler_pndmkit(denoiser, y_start, sigmas, disable=True)
    np.testing.assert_array_equal(ours, kd.sample(denoiser, y_start, sigmas, method="euler", disable=True))
    theirs = kd.sample_euler(denoiser, y_start, sigmas, disable=True)
    assert np.abs(ours - theirs).max() == pytest.approx(0.38, abs=0.005)


def assert_refuses_other_values(run, keyword, message, y_start, sigmas):
    """``run`` refuses an integer value of ``keyword`` without an equivalent with one message that lists the allowed
    ones, a value that is not an integer saying that ``keyword`` must be one (with the allowed values), and a misspelt
    ``keyword`` naming both spellings."""
    import re

    allowed = message.split("; ", 1)[1]
    for value in (2, 3, 5, np.int64(2)):
        with pytest.raises(ValueError) as info:
            run(denoiser, y_start, sigmas, disable=True, **{keyword: value})
        assert str(info.value) == f"{keyword}={value!r}: " + message.format(value=value)
    for value in ("4", True, 4.0, None):
        with pytest.raises(TypeError) as info:
            run(denoiser, y_start, sigmas, disable=True, **{keyword: value})
        assert str(info.value) == f"{keyword} must be an integer, got {type(value).__name__} {value!r}; {allowed}"
    with pytest.raises(TypeError, match=re.escape(f"{run.__name__}() got an unexpected keyword argument "
                                                  f"'{keyword[:-2]}'; did you mean '{keyword}'")):
        run(denoiser, y_start, sigmas, disable=True, **{keyword[:-2]: 4})


def test_sample_lms_takes_the_orders_that_have_an_equivalent(y_start):
    sigmas = karras(12)
    np.testing.assert_allclose(kd.sample_lms(denoiser, y_start, sigmas, disable=True, order=1),
                               lms_from_its_definition(denoiser, y_start, sigmas, order=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(kd.sample_lms(denoiser, y_start, sigmas, disable=True, order=np.int64(4)),
                                  kd.sample_ipndm_v_pndmkit(denoiser, y_start, sigmas, disable=True))
    assert_refuses_other_values(kd.sample_lms, "order", "k-diffusion's sample_lms of order {value!r} has no "
                                "equivalent here; orders: 4 (pndmkit's 'ipndm-v', the default) and 1 (pndmkit's "
                                "'ddim')", y_start, sigmas)
    with pytest.raises(TypeError, match="sample_heun\\(\\) got an unexpected keyword argument 'churn'"):
        kd.sample_heun(denoiser, y_start, sigmas, disable=True, churn=1.0)
    with pytest.raises(ValueError, match="s_churn=0.5 asks for churn"):  # k-diffusion's keywords, as before
        kd.sample_euler(denoiser, y_start, sigmas, disable=True, s_churn=0.5)


@pytest.mark.parametrize("name", [n for n in K_DIFFUSION_SAMPLERS if n not in DEFINITIONS])
def test_k_diffusion_names_without_an_equivalent_are_undefined_and_name_the_nearest(name):
    import re

    assert not hasattr(kd, name) and name not in dir(kd) and name not in kd.SAMPLERS
    assert set(kd.K_DIFFUSION_WITHOUT_EQUIVALENT) == set(K_DIFFUSION_SAMPLERS) - set(DEFINITIONS)
    with pytest.raises(AttributeError, match=f"has no attribute '{name}': pndmkit does not implement that "
                                             f"algorithm; k-diffusion's") as info:
        getattr(kd, name)
    nearest = set(re.findall(r"sample_\w+", str(info.value))) - {name}
    assert all(hasattr(kd, n) for n in nearest), nearest  # what the message points to exists


def test_a_method_registered_under_a_k_diffusion_name_gets_the_suffix(y_start):
    from pndmkit.methods import MethodSpec, register_method, unregister_method

    euler = METHODS["euler"]
    register_method(MethodSpec("heun", euler.build, euler.order, reference="a plugin's method named heun"))
    try:
        assert kd.sampler_name("heun") == "sample_heun_pndmkit" and "sample_heun_pndmkit" in kd.SAMPLERS
        np.testing.assert_array_equal(kd.sample_heun_pndmkit(denoiser, y_start, karras(5), disable=True),
                                      kd.sample_euler_pndmkit(denoiser, y_start, karras(5), disable=True))
        np.testing.assert_allclose(kd.sample_heun(denoiser, y_start, karras(5), disable=True),  # still k-diffusion's
                                   heun_from_its_definition(denoiser, y_start, karras(5)), rtol=1e-12, atol=1e-12)
    finally:
        unregister_method("heun")


# -- ComfyUI's names mean ComfyUI's algorithms -----------------------------------------------------------------
#: every sampler of ComfyUI's copy of k-diffusion's module (comfy/k_diffusion/sampling.py, ComfyUI repository,
#: commit 02159d814dee609acc27994c1bf25fc5b40e2aaa)
COMFYUI_SAMPLERS = (
    "sample_euler", "sample_euler_ancestral", "sample_euler_ancestral_RF", "sample_heun", "sample_dpm_2",
    "sample_dpm_2_ancestral", "sample_dpm_2_ancestral_RF", "sample_lms", "sample_dpm_fast", "sample_dpm_adaptive",
    "sample_dpmpp_2s_ancestral", "sample_dpmpp_2s_ancestral_RF", "sample_dpmpp_sde", "sample_dpmpp_2m",
    "sample_dpmpp_2m_sde", "sample_dpmpp_2m_sde_heun", "sample_dpmpp_3m_sde", "sample_dpmpp_3m_sde_gpu",
    "sample_dpmpp_2m_sde_heun_gpu", "sample_dpmpp_2m_sde_gpu", "sample_dpmpp_sde_gpu", "sample_ddpm", "sample_lcm",
    "sample_heunpp2", "sample_ipndm", "sample_ipndm_v", "sample_deis", "sample_euler_ancestral_cfg_pp",
    "sample_euler_cfg_pp", "sample_dpmpp_2s_ancestral_cfg_pp", "sample_dpmpp_2s_ancestral_RF_cfg_pp",
    "sample_dpmpp_2m_cfg_pp", "sample_res_multistep", "sample_res_multistep_cfg_pp", "sample_res_multistep_ancestral",
    "sample_res_multistep_ancestral_cfg_pp", "sample_gradient_estimation", "sample_gradient_estimation_cfg_pp",
    "sample_er_sde", "sample_seeds_2", "sample_exp_heun_2_x0", "sample_exp_heun_2_x0_sde", "sample_seeds_3",
    "sample_sa_solver", "sample_sa_solver_pece", "sample_ar_video")

#: Adams-Bashforth weights on uniform steps, newest gradient first
AB = {1: [1.0], 2: [3 / 2, -1 / 2], 3: [23 / 12, -16 / 12, 5 / 12], 4: [55 / 24, -59 / 24, 37 / 24, -9 / 24]}


def comfyui_ipndm_from_its_definition(model, x, sigmas, max_order=4, weights=AB):
    """ComfyUI's sample_ipndm: d = (x - D) / sigma at each step start; the step (sigma' - sigma) times the fixed
    Adams-Bashforth combination of the last min(i + 1, max_order) d's, newest first (AB1, AB2, AB3, then AB4), and
    the data step x = D where sigma' = 0."""
    ds = []
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * np.ones(x.shape[0]))
        ds = ([(x - denoised) / sigmas[i]] + ds)[:max_order]
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            x = x + (sigmas[i + 1] - sigmas[i]) * sum(w * d for w, d in zip(weights[len(ds)], ds))
    return x


@pytest.mark.parametrize("n", [5, 20])
def test_every_comfyui_name_defined_here_means_comfyuis_algorithm(n, y_start):
    defined = [name for name in COMFYUI_SAMPLERS if hasattr(kd, name)]
    assert sorted(defined) == sorted([*kd.K_DIFFUSION_EQUIVALENTS, *kd.COMFYUI_EQUIVALENTS])
    assert not set(COMFYUI_SAMPLERS) & set(kd.SAMPLERS)  # pndmkit's own samplers keep names ComfyUI does not use
    for sigmas in (karras(n), karras(n)[:-1]):  # ending at 0 (ComfyUI's schedulers) and above 0
        seen = []
        out = kd.sample_ipndm(denoiser, y_start, sigmas, disable=True, callback=seen.append)
        np.testing.assert_allclose(out, comfyui_ipndm_from_its_definition(denoiser, y_start, sigmas),
                                   rtol=1e-12, atol=1e-12)
        assert [c["i"] for c in seen] == list(range(len(sigmas) - 1))  # one callback per step, as ComfyUI's
        at_zero, above_zero = kd.COMFYUI_EQUIVALENTS["sample_ipndm"]
        method = at_zero if sigmas[-1] == 0 else above_zero
        np.testing.assert_array_equal(out, kd.SAMPLERS[kd.sampler_name(method)](denoiser, y_start, sigmas,
                                                                                 disable=True))
    assert kd.sample_ipndm.__name__ == "sample_ipndm" and "'ipndm-lof1'" in kd.sample_ipndm.__doc__


def test_comfyuis_ipndm_is_not_pndmkits_on_sigmas_ending_at_zero(y_start):
    """ComfyUI's data step to 0 against iPNDM's AB4 step to 0: 0.014 apart at 5 Karras steps on these data, so
    pndmkit's ipndm has its own name."""
    sigmas = karras(5)
    assert kd.sampler_name("ipndm") == "sample_ipndm_pndmkit" == kd.sampler("ipndm").__name__
    ours = kd.sample_ipndm_pndmkit(denoiser, y_start, sigmas, disable=True)
    np.testing.assert_array_equal(ours, kd.sample(denoiser, y_start, sigmas, method="ipndm", disable=True))
    theirs = kd.sample_ipndm(denoiser, y_start, sigmas, disable=True)
    assert np.abs(ours - theirs).max() == pytest.approx(0.0137, abs=0.0005)
    np.testing.assert_array_equal(kd.sample_ipndm(denoiser, y_start, sigmas[:-1], disable=True),
                                  kd.sample_ipndm_pndmkit(denoiser, y_start, sigmas[:-1], disable=True))


def test_sample_ipndm_takes_the_max_orders_that_have_an_equivalent(y_start):
    sigmas = karras(12)
    np.testing.assert_allclose(kd.sample_ipndm(denoiser, y_start, sigmas, disable=True, max_order=1),
                               comfyui_ipndm_from_its_definition(denoiser, y_start, sigmas, max_order=1),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(kd.sample_ipndm(denoiser, y_start, sigmas, disable=True, max_order=np.int64(4)),
                                  kd.sample_ipndm(denoiser, y_start, sigmas, disable=True))
    assert_refuses_other_values(kd.sample_ipndm, "max_order", "ComfyUI's sample_ipndm of max_order {value!r} has no "
                                "equivalent here; max_orders: 4 (pndmkit's 'ipndm-lof1' on sigmas ending at 0, "
                                "'ipndm' otherwise; the default) and 1 (pndmkit's 'ddim')", y_start, sigmas)
    with pytest.raises(ValueError, match="eta=1.0 asks for ancestral noise"):  # k-diffusion's keywords, as before
        kd.sample_ipndm(denoiser, y_start, sigmas, disable=True, eta=1.0)


def test_comfyuis_ipndm_v_has_other_weights_than_pndmkits_ipndm_v(y_start):
    """ComfyUI's sample_ipndm_v takes AB1-AB3 and then, on uniform steps, the weights (57, -65, 43, -11)/24 (not
    AB4's): on 20 uniform steps ending above 0, where pndmkit's ipndm and ipndm-v coincide, it is 1.8e-3 away from
    them. So the name is refused and pndmkit's ipndm-v is sample_ipndm_v_pndmkit."""
    sigmas = np.linspace(10.0, 0.5, 21)
    comfyui = comfyui_ipndm_from_its_definition(denoiser, y_start, sigmas,
                                                weights={**AB, 4: [57 / 24, -65 / 24, 43 / 24, -11 / 24]})
    ours = kd.sample_ipndm_v_pndmkit(denoiser, y_start, sigmas, disable=True)
    np.testing.assert_allclose(ours, comfyui_ipndm_from_its_definition(denoiser, y_start, sigmas),
                               rtol=1e-12, atol=1e-12)
    assert np.abs(ours - comfyui).max() == pytest.approx(1.75e-3, abs=5e-5)
    assert kd.sampler_name("ipndm-v") == "sample_ipndm_v_pndmkit"


def test_comfyuis_lms_takes_a_data_step_to_zero_and_sample_lms_stays_k_diffusions(y_start):
    """ComfyUI's sample_lms is k-diffusion's with x = D(x, sigma) where sigma' = 0; sample_lms here is
    k-diffusion's (its own step to 0), 2.6e-3 away at 5 Karras steps, and equals ComfyUI's on sigmas ending above 0."""
    sigmas = karras(5)
    head = lms_from_its_definition(denoiser, y_start, sigmas[:-1])
    comfyui = denoiser(head, np.full(4, sigmas[-2]))
    ours = kd.sample_lms(denoiser, y_start, sigmas, disable=True)
    np.testing.assert_allclose(ours, lms_from_its_definition(denoiser, y_start, sigmas), rtol=1e-12, atol=1e-12)
    assert np.abs(ours - comfyui).max() == pytest.approx(2.6e-3, abs=1e-4)
    np.testing.assert_allclose(kd.sample_lms(denoiser, y_start, sigmas[:-1], disable=True), head, rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("name", ["sample_ipndm_v", "sample_dpm_2"])
def test_only_attribute_access_carries_the_explanation_as_the_readme_says(name):
    """The README promised an AttributeError naming the nearest sampler for these names; ``from ... import`` gets
    Python's own ImportError, without it. The README now says which access carries the explanation."""
    import importlib
    import pathlib

    with pytest.raises(AttributeError, match=f"has no attribute '{name}': .*sample_"):
        getattr(kd, name)
    with pytest.raises(ImportError, match=f"^cannot import name '{name}' from 'pndmkit.integrations.k_diffusion'") \
            as info:
        exec(f"from pndmkit.integrations.k_diffusion import {name}", {})
    assert "nearest" not in str(info.value) and "sample_" + name[7:] + "_pndmkit" not in str(info.value)
    assert importlib.import_module("pndmkit.integrations.k_diffusion") is kd
    readme = " ".join((pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert f"reading one as an attribute (`K.{name}`) raises `AttributeError` naming the nearest sampler" in readme
    assert f"`K.sample_ipndm_v` raises `AttributeError` naming the nearest sampler, `from ... import` Python's " \
           f"`ImportError`" in readme


COMFYUI_WITHOUT = sorted(set(COMFYUI_SAMPLERS) - set(K_DIFFUSION_SAMPLERS) - set(kd.COMFYUI_EQUIVALENTS))


@pytest.mark.parametrize("name", COMFYUI_WITHOUT)
def test_comfyui_names_without_an_equivalent_are_undefined_and_name_the_nearest(name):
    import re

    assert set(kd.COMFYUI_WITHOUT_EQUIVALENT) == set(COMFYUI_WITHOUT)  # every name ComfyUI offers, sample_res_multistep...
    assert not hasattr(kd, name) and name not in dir(kd) and name not in kd.SAMPLERS
    with pytest.raises(AttributeError, match=f"has no attribute '{name}': pndmkit does not implement that algorithm; "
                                             f"ComfyUI's") as info:
        getattr(kd, name)
    nearest = set(re.findall(r"sample_\w+", str(info.value))) - {name}
    assert nearest and all(hasattr(kd, n) for n in nearest), nearest


# -- the names of k-diffusion's and ComfyUI's algorithms without an equivalent are reserved ---------------------
@pytest.mark.parametrize("name", ["res_multistep", "res-multistep", "res.multistep", "dpm-2", "deis", "lcm",
                                  "euler-ancestral-rf", "dpmpp-2m-cfg-pp"])
def test_a_reserved_name_cannot_be_registered_and_asking_for_it_says_pndmkit_lacks_it(name, y_start):
    """Registering a method under a name of k-diffusion's or ComfyUI's sampler that pndmkit does not implement (any
    spelling with its identifier) would make ``sample_<name>`` here run another algorithm than the one code written for
    ComfyUI asks for: it is refused, and every lookup says that pndmkit does not implement the algorithm."""
    from pndmkit.methods import RESERVED_NAMES, MethodSpec, get_method, register_method, reserved_name

    reserved = reserved_name(name)
    whose, why = RESERVED_NAMES[reserved]
    sampler_attr = f"sample_{reserved}"
    assert sampler_attr in (kd.K_DIFFUSION_WITHOUT_EQUIVALENT if whose == "k-diffusion" else
                            kd.COMFYUI_WITHOUT_EQUIVALENT)
    said = (f"{name!r} names {whose}'s sampler {reserved!r} ({sampler_attr}), an algorithm pndmkit does not implement: "
            f"{why}")
    ddim = METHODS["ddim"]
    with pytest.raises(ValueError) as info:
        register_method(MethodSpec(name, ddim.build, ddim.order, reference="another algorithm"))
    assert str(info.value) == (f"method name {name!r} is reserved: {said}. Registered, another algorithm would run "
                               f"under the name that code written for {whose} uses for this one; choose another name")
    assert name not in METHODS and sampler_attr not in kd.SAMPLERS and not hasattr(kd, sampler_attr)
    for ask in (lambda: get_method(name), lambda: kd.sampler(name),
                lambda: kd.sample(denoiser, y_start, karras(4), method=name, disable=True)):
        with pytest.raises(ValueError) as info:
            ask()
        assert str(info.value) == f"unknown method {name!r}: {said}; known methods: {', '.join(METHODS)}"
    with pytest.raises(AttributeError, match=f"^module 'pndmkit.integrations.k_diffusion' has no attribute "
                                             f"'{sampler_attr}': pndmkit does not implement that algorithm; "):
        getattr(kd, sampler_attr)


def test_reserved_names_are_exactly_the_names_without_an_equivalent_and_taken_by_no_new_method():
    """One table: k-diffusion's and ComfyUI's names without an equivalent here are the reserved names; each reason
    points to samplers that exist; a built-in method whose identifier is reserved (ipndm-v) keeps its registry name
    and its sampler takes the suffix, and a name that has an equivalent (heun) stays registrable, suffixed."""
    import re

    from pndmkit.methods import RESERVED_NAMES, get_method, identifier, reserved_name

    assert {f"sample_{n}" for n in RESERVED_NAMES} == set(kd.K_DIFFUSION_WITHOUT_EQUIVALENT) | \
        set(kd.COMFYUI_WITHOUT_EQUIVALENT) == (set(K_DIFFUSION_SAMPLERS) | set(COMFYUI_SAMPLERS)) - \
        set(kd.K_DIFFUSION_EQUIVALENTS) - set(kd.COMFYUI_EQUIVALENTS)
    for name, (whose, why) in RESERVED_NAMES.items():
        assert whose in ("k-diffusion", "ComfyUI") and why.startswith(f"{whose}'s ")
        assert all(hasattr(kd, n) for n in re.findall(r"sample_\w+", why)), (name, why)
    assert [n for n in BUILTIN if reserved_name(n)] == ["ipndm-v"]  # a built-in spelling of ComfyUI's ipndm_v:
    assert get_method("ipndm-v") is METHODS["ipndm-v"] and kd.sampler_name("ipndm-v") == "sample_ipndm_v_pndmkit"
    assert identifier("ipndm-v") == "ipndm_v"
    assert reserved_name("heun") is None and reserved_name("ipndm") is None and reserved_name("lms") is None
