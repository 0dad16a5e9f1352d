"""Where pndmkit meets other conventions in its core: models that already return eps, and the start scale."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

import pndmkit
from pndmkit.models import as_eps, converted_from, guided
from pndmkit.schedules import EDM, VE, CosineVP, DiscreteVP, FlowMatching, LinearVP

# -- a model that already returns eps is not converted a second time -----------------------------------------
FM = FlowMatching(shift=3.0)
MEANS = np.array([[2.0, -1.0], [-1.5, 0.5]])  # class k ~ N(MEANS[k], 0.2 I)


def flow_class(x, t, label):
    """Exact flow velocity u = eps - x0 of class ``label`` on flow matching (label -1: the 50/50 mixture)."""
    a, s = 1.0 - t, t
    var = a * a * 0.2 + s * s
    diff = x[:, None, :] - a * MEANS[None]
    logp = -0.5 * (diff**2).sum(-1) / var
    w = np.exp(logp - logp.max(1, keepdims=True))
    w = np.where(label[:, None] < 0, w, np.eye(2)[np.maximum(label, 0)])
    w = w / w.sum(1, keepdims=True)
    eps = s * (w[..., None] * diff).sum(1) / var
    return eps - (x - s * eps) / a


X = np.random.default_rng(0).standard_normal((6, 2))
COND, UNCOND = {"label": np.array([0, 1, 0, 1, 0, 1])}, {"label": np.full(6, -1)}


def test_a_guided_flow_model_is_refused_a_second_conversion():
    g = guided(flow_class, 3.0, UNCOND, schedule=FM, prediction="flow")
    assert converted_from(g) == "flow"
    kw = dict(schedule=FM, method="ddim", steps=12, model_kwargs=COND)
    with pytest.raises(ValueError) as info:
        pndmkit.sample(g, X, prediction="flow", **kw)
    assert str(info.value) == (
        "prediction='flow' would convert the model's output a second time: the model, guided(...), already "
        "returns eps (it converts its network's 'flow' prediction itself); leave prediction='eps' (the default) "
        "and give the network's prediction to the wrapper only")
    right = pndmkit.sample(g, X, **kw).x  # prediction='eps': the guided model's own output
    # the same guidance written by hand in eps form: both halves converted at (x, t), then combined
    def by_hand(x, t, label):
        c_x, c_u = 1.0, 1.0 - t  # flow matching: eps = x + (1 - t) u
        e_u, e_c = c_x * x + c_u * flow_class(x, t, UNCOND["label"]), c_x * x + c_u * flow_class(x, t, label)
        return e_u + 3.0 * (e_c - e_u)
    np.testing.assert_allclose(right, pndmkit.sample(by_hand, X, **kw).x, rtol=1e-13, atol=1e-13)
    # what the refusal prevents: converting eps as if it were a velocity changes the result by tens of percent
    hidden = lambda x, t: g(x, t, **COND)  # noqa: E731  (a plain lambda hides the mark)
    twice = pndmkit.sample(hidden, X, schedule=FM, method="ddim", steps=12, prediction="flow").x
    assert np.linalg.norm(twice - right) / np.linalg.norm(right) > 0.3


@pytest.mark.parametrize("prediction", ["x0", "score", "flow"])
def test_every_pndmkit_wrapper_that_returns_eps_is_marked(prediction):
    sched = LinearVP()
    plain = lambda x, t: 0.5 * x  # noqa: E731
    wrapped = as_eps(plain, sched, prediction)
    assert converted_from(wrapped) == prediction and converted_from(plain) is None
    assert converted_from(guided(plain, 1.0, {}, schedule=sched, prediction=prediction)) == prediction
    assert converted_from(guided(plain, 2.0, {})) == "eps"  # returns eps too: a prediction would convert twice
    with pytest.raises(ValueError, match=rf"prediction='v' would convert the model's output a second time: the "
                                         rf"model, as_eps\(\.\.\.\), already returns eps \(it converts its "
                                         rf"network's '{prediction}' prediction itself\)"):
        pndmkit.sample(wrapped, X, schedule=sched, steps=4, prediction="v")
    with pytest.raises(ValueError, match=r"prediction='x0' .* guided\(\.\.\.\), already returns eps \(it converts "
                                         r"its network's 'eps' prediction itself\)"):
        pndmkit.sample(guided(plain, 2.0, {}), X, schedule=sched, steps=4, prediction="x0")
    # the wrapper with the default prediction: exactly the plain model with its own prediction
    np.testing.assert_array_equal(pndmkit.sample(wrapped, X, schedule=sched, steps=4).x,
                                  pndmkit.sample(plain, X, schedule=sched, steps=4, prediction=prediction).x)


def test_a_network_model_is_marked_and_refused_a_second_conversion():
    torch = pytest.importorskip("torch")
    from pndmkit.nn import NetworkModel

    sched = DiscreteVP.linear(T=20)
    net = lambda x, t: 0.1 * x  # noqa: E731
    model = NetworkModel(net, sched, prediction="v")
    assert converted_from(model) == "v"
    x = torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"prediction='v' would convert .* the model, a NetworkModel, already "
                                         r"returns eps \(it converts its network's 'v' prediction itself\)"):
        pndmkit.sample(model, x, schedule=sched, steps=4, prediction="v")
    expected = pndmkit.sample(lambda x, t: net(x, None), x, schedule=sched, steps=4, prediction="v").x
    torch.testing.assert_close(pndmkit.sample(model, x, schedule=sched, steps=4).x, expected, rtol=1e-6, atol=1e-6)


# -- the start scale -------------------------------------------------------------------------------------------
def test_prior_scale_is_the_std_of_x_t_for_unit_data():
    for sched in (LinearVP(), CosineVP(), DiscreteVP.linear(), DiscreteVP.cosine(T=20)):
        for t in (sched.t_start, 0.5 * (sched.t_start + sched.t_end), sched.t_end):
            assert sched.prior_scale(t) == 1.0  # exactly: alpha^2 + sigma^2 = 1
        a2 = float(sched.abar(sched.t_start))
        assert sched.prior_scale(data_std=0.5) == pytest.approx(math.sqrt(a2 * 0.25 + 1 - a2), rel=1e-15)
    assert EDM().prior_scale() == math.sqrt(80.0**2 + 1) == 80.00624975587844  # diffusers' EDM init_noise_sigma
    assert EDM().prior_scale(3.0, data_std=0.5) == math.sqrt(9.25)
    assert VE().prior_scale() == math.hypot(1.0, float(VE().sigma(1.0))) == pytest.approx(math.hypot(1, 50), rel=1e-15)
    assert VE().prior_scale(0.0) == math.hypot(1.0, 0.01)
    assert FlowMatching().prior_scale() == math.hypot(0.001, 0.999)  # t_max = 0.999
    assert FlowMatching(shift=3.0).prior_scale(0.5) == math.hypot(0.5, 0.5)
    with pytest.raises(ValueError, match=r"^t=81.0 lies outside the domain \[0.0, 80.0\] of EDM"):
        EDM().prior_scale(81.0)
    with pytest.raises(ValueError, match=r"^data_std must be > 0, got 0.0$"):
        EDM().prior_scale(data_std=0.0)
    with pytest.raises(TypeError, match=r"^t must be a real number"):
        EDM().prior_scale("80")


def test_prior_scale_is_the_marginal_std_measured():
    """Data of std 0.4 pushed forward to t: the sample std of x_t is prior_scale(t, data_std=0.4)."""
    rng = np.random.default_rng(1)
    x0, z = 0.4 * rng.standard_normal(200_000), rng.standard_normal(200_000)
    for sched, t in ((EDM(), 7.0), (VE(), 0.6), (FlowMatching(), 0.3), (LinearVP(), 0.2)):
        x_t = float(sched.alpha(t)) * x0 + float(sched.sigma(t)) * z
        assert float(np.std(x_t)) == pytest.approx(sched.prior_scale(t, data_std=0.4), rel=0.01)


DATA_STD = 0.39  # Gaussian data N(0, DATA_STD^2): eps(x, t) = sigma x / (alpha^2 d^2 + sigma^2), linear in x


def gaussian_eps(sched):
    def eps(x, t):
        a, s = float(sched.alpha(t)), float(sched.sigma(t))
        return s * x / (a * a * DATA_STD**2 + s * s)
    return eps


@pytest.mark.parametrize("sched", [EDM(), VE()], ids=["EDM", "VE"])
def test_unit_noise_on_a_variance_exploding_schedule_warns_and_would_collapse(sched):
    z = np.random.default_rng(2).standard_normal((256, 4))
    kw = dict(schedule=sched, method="ipndm", steps=40)
    scale = sched.prior_scale()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right start is silent
        good = pndmkit.sample(gaussian_eps(sched), scale * z, **kw).x
    with pytest.warns(pndmkit.PriorScaleWarning) as record:
        bad = pndmkit.sample(gaussian_eps(sched), z, **kw).x
    assert len(record) == 1 and record[0].filename == __file__  # at the caller's line
    rms, sigma = math.sqrt(float(np.mean(z**2))), float(sched.sigma(sched.t_start))
    assert str(record[0].message) == (
        f"x_T has root mean square {rms:.4g} at t={sched.t_start:g} of {sched!r}, "
        f"{sigma / rms:.3g} times below sigma(t) = {sigma:.6g}, the least root mean square x_t has there (a start "
        f"from noise has {scale:.6g}); pass x_T in the schedule's own variable x_t = alpha x0 + sigma eps: unit "
        f"noise times schedule.prior_scale(t) = {scale:.6g} (pndmkit never rescales it)")
    assert issubclass(pndmkit.PriorScaleWarning, UserWarning)
    # the method is linear in x for this model: unit noise gives the right samples divided by prior_scale
    np.testing.assert_allclose(bad, good / scale, rtol=1e-10, atol=1e-15)
    assert float(np.std(good)) == pytest.approx(DATA_STD, rel=0.1)
    assert float(np.std(bad)) < DATA_STD / 40


def test_the_start_scale_check_bounds():
    from pndmkit.sampling import START_SCALE_FACTOR, check_start_scale

    assert START_SCALE_FACTOR == 4.0
    z = np.random.default_rng(4).standard_normal(4096)
    z /= math.sqrt(float(np.mean(z**2)))  # root mean square exactly 1 (to rounding)
    sched = LinearVP()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for t, x in ((1.0, z), (1.0, 3.9 * z), (1.0, 0.26 * z),   # sigma(1) = 0.999978: bound 0.2499945
                     (0.01, 0.05 * z), (0.01, 3.9 * z)):          # near the data (sigma 0.0446): data-sized starts
            assert check_start_scale(x, sched, t) == pytest.approx(float(np.sqrt(np.mean(x**2))), rel=1e-12)
        # a start of 6 unit entries, with the wider low factor of its size (5.62): silent
        assert check_start_scale(np.full(6, 0.18), sched, 1.0) == pytest.approx(0.18)
        pndmkit.sample(lambda x, t: 0.1 * x, np.ones((2, 3)), schedule=sched, steps=3)  # the README's 6 entries
        # mid-trajectory from data: x_t at t = 0.05 of data with rms 2 is allowed (sigma(0.05) / 4 < 2 < 4)
        pndmkit.sample(lambda x, t: 0.1 * x, 2.0 * z, schedule=DiscreteVP.linear(), steps=5, t_start=50)
    with pytest.warns(pndmkit.PriorScaleWarning, match=r"^x_T has root mean square 0.24 at t=1 of "
                                                        r"LinearVP\(.*\), 4.17 times below sigma\(t\) = 0.999978, "):
        check_start_scale(0.24 * z, sched, 1.0)
    with pytest.warns(pndmkit.PriorScaleWarning, match=r"^x_T has root mean square 4.1 at t=0.01 "
                                                        r"of LinearVP\(.*\), 4.1 times above the root mean square 1 of "
                                                        r"x_t there for unit-variance data; pass x_T"):
        check_start_scale(4.1 * z, sched, 0.01)
    with pytest.warns(pndmkit.PriorScaleWarning, match=r"^x_T has root mean square 0 at t=1 of "
                                                        r"LinearVP\(.*\), infinitely far below sigma\(t\) = 0.999978, "):
        check_start_scale(np.zeros((4, 4)), sched, 1.0)  # zeros are no start of x_t
    with pytest.warns(pndmkit.PriorScaleWarning, match=r"; my advice$"):
        check_start_scale(z, EDM(), 80.0, name="x", fix="my advice")


def test_a_small_start_is_measured_with_the_factor_of_its_size():
    """Starts of fewer than 8 entries were not measured at all: unit noise of 6 entries on EDM ran 80 times too
    small in silence. Each size now warns below sigma / F_n, where unit noise of n entries falls as rarely as 8
    entries fall below sigma / 4 (a chi-square quantile), so that noise of the right scale stays silent."""
    scipy_stats = pytest.importorskip("scipy.stats")
    from pndmkit.integrations import k_diffusion as kd
    from pndmkit.sampling import START_SCALE_FACTOR, check_start_scale, start_scale_low_factor

    chance = scipy_stats.chi2.cdf(8 / START_SCALE_FACTOR**2, 8)  # 1.3e-4
    for n in range(1, 8):
        factor = start_scale_low_factor(n)
        assert scipy_stats.chi2.cdf(n / factor**2, n) == pytest.approx(chance, rel=1e-9), n
        assert factor > start_scale_low_factor(n + 1)
    assert [start_scale_low_factor(n) for n in (8, 9, 4096)] == [START_SCALE_FACTOR] * 3
    assert round(start_scale_low_factor(6), 2) == 5.62 and round(start_scale_low_factor(2), 1) == 86.6
    z = np.random.default_rng(0).standard_normal((2, 3))
    with pytest.warns(pndmkit.PriorScaleWarning, match=r"^x_T has root mean square .* at t=80 of EDM\(.*\), "
                                                        r"[0-9.]+ times below sigma\(t\) = 80"):
        pndmkit.sample(lambda x, t: 0 * x, z, schedule=EDM(), steps=3, prediction="x0")
    torch = pytest.importorskip("torch")
    with pytest.warns(pndmkit.PriorScaleWarning, match=r"^x has root mean square .* times below sigmas\[0\] = 80"):
        kd.sample_euler(lambda x, s: 0 * x, torch.from_numpy(z), torch.tensor([80.0, 1.0, 0.0]), disable=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pndmkit.sample(lambda x, t: 0 * x, 80 * z, schedule=EDM(), steps=3, prediction="x0")  # the right scale
        kd.sample_euler(lambda x, s: 0 * x, 80 * torch.from_numpy(z), torch.tensor([80.0, 1.0, 0.0]), disable=True)
        # below sigma / 4 but above sigma / 5.62: a scale 6 entries cannot tell from chance
        assert check_start_scale(np.full(6, 0.2), LinearVP(), 1.0) == pytest.approx(0.2)
        # two entries of RMS 1 on EDM are above 80 / 86.6: measured, and silent (unit noise falls below about half
        # the time, then it warns: below)
        assert check_start_scale(np.ones(2), EDM(), 80.0) == pytest.approx(1.0)
    with pytest.warns(pndmkit.PriorScaleWarning):
        check_start_scale(np.full(2, 0.9), EDM(), 80.0)
    # how often two unit normals warn on EDM: P(chi2_2 < 2 (80 / 86.6)^2) = 1 - exp(-(80 / 86.6)^2), about 0.57
    rms = np.sqrt(np.mean(np.random.default_rng(1).standard_normal((4000, 2)) ** 2, axis=1))
    assert abs(np.mean(rms < 80.0 / start_scale_low_factor(2)) - (1 - np.exp(-(80.0 / 86.6) ** 2))) < 0.03
    with pytest.warns(pndmkit.PriorScaleWarning, match=r"infinitely far below"):
        check_start_scale(np.zeros(7), LinearVP(), 1.0)  # measured from one entry up
    with pytest.warns(pndmkit.PriorScaleWarning, match=r"4.5 times above"):
        check_start_scale(np.array([4.5]), LinearVP(), 1.0)  # the upper bound is 4 prior_scale for every size
    with pytest.raises(ValueError, match=r"^size must be an integer >= 1, got 0$"):
        start_scale_low_factor(0)


def test_a_generated_grid_that_starts_at_the_data_end_warns():
    """One default step of a DDPM table is diffusers' leading [0, -1]: x_T came back almost unchanged, without a
    word. Every generated grid that starts in the lowest tenth of the table warns with the grid and the fix;
    explicit times, other grids and the diffusers scheduler (which reproduces diffusers) do not."""
    d = DiscreteVP.linear()
    z = np.random.default_rng(0).standard_normal((4, 4))
    eps = lambda x, t: 0.1 * x  # noqa: E731
    for kw, grid, source in (({}, [0.0, -1.0], "the default grid of a DiscreteVP is diffusers' 'leading' spacing"),
                             ({"grid": "leading"}, [0.0, -1.0], "grid 'leading' is diffusers' spacing"),
                             ({"convention": "diffusers-pndm"}, [1.0, 0.0],
                              "convention='diffusers-pndm' lays out diffusers' 'leading' grid")):
        with pytest.warns(pndmkit.GridStartWarning) as caught:
            sol = pndmkit.sample(eps, z, schedule=d, method="ddim", steps=1, **kw)
        assert len(caught) == 1 and caught[0].filename == __file__  # the caller's line
        message = str(caught[0].message)
        assert message.startswith(f"the generated grid with steps=1 is {grid}: it starts at t={grid[0]:g}, where "
                                  f"abar = 0.999"), message
        assert source in message and "pass grid='trailing' (--grid trailing) or 'linspace', which start at t=999" \
            in message
        assert sol.times.tolist() == grid and np.abs(sol.x - z).max() < 3e-3  # the noise, nearly unchanged
    with warnings.catch_warnings():
        warnings.simplefilter("error", pndmkit.GridStartWarning)
        far = pndmkit.sample(eps, z, schedule=d, method="ddim", steps=1, grid="trailing")
        assert far.times.tolist() == [999.0, -1.0] and np.abs(far.x - z).max() > 100
        pndmkit.sample(eps, z, schedule=d, method="ddim", grid=[0.0, -1.0])  # explicit: the caller's choice
        pndmkit.sample(eps, z, schedule=d, method="ddim", steps=2)  # [500, 0, -1]
        pndmkit.sample(eps, 0.1 * z, schedule=d, method="ddim", steps=1, t_start=50)  # mid-trajectory, asked for
        pndmkit.sample(eps, z, schedule=LinearVP(), method="ddim", steps=1)
        torch = pytest.importorskip("torch")
        from pndmkit.integrations.diffusers import PNDMKitScheduler

        sched = PNDMKitScheduler(method="ddim")  # diffusers' one-step grid, reproduced in silence
        sched.set_timesteps(1)
        x = torch.from_numpy(z)
        for t in sched.timesteps:
            x = sched.step(0.1 * x, t, x).prev_sample
        assert sched.grid.tolist() == [0.0, -1.0]


def test_the_start_scale_of_a_torch_start():
    torch = pytest.importorskip("torch")
    from pndmkit.sampling import check_start_scale

    z = torch.randn(4, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float16)
    # summed in float32 (no float64 tensor on the start's device): float64's measure to float32 rounding
    assert check_start_scale(z, EDM(), 1.0) == pytest.approx(float(z.double().square().mean().sqrt()), rel=1e-6)
    assert check_start_scale(torch.empty(4, 64, device="meta"), EDM(), 80.0) is None
    with pytest.warns(pndmkit.PriorScaleWarning, match=r"^x_T has root mean square"):
        pndmkit.sample(lambda x, t: 0 * x, z.float(), schedule=EDM(), steps=2, prediction="x0")


def _float64_rms(x):
    """The root mean square of a torch tensor in numpy float64, summed by chunks (no float64 copy of all of it)."""
    flat = x.detach().reshape(-1).float().numpy()
    chunks = range(0, flat.size, 1 << 22)
    return math.sqrt(math.fsum(float(np.sum(np.square(flat[i:i + (1 << 22)], dtype=np.float64))) for i in chunks)
                     / flat.size)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_a_torch_start_is_measured_with_no_float64_tensor_and_one_synchronisation(dtype):
    """Apple's MPS has no float64: a float32, float16 or bfloat16 start of 2**20 entries is measured by float32
    reductions (no float64 tensor made), with one device synchronisation, to 1e-6 of numpy's float64 measure,
    and a run from such a start makes no float64 tensor either. A float64 start is still summed in float64 (the
    mode sees that tensor, so it would see one made from a float32 start)."""
    torch = pytest.importorskip("torch")
    from torch.utils._python_dispatch import TorchDispatchMode

    from pndmkit.sampling import _start_rms, check_start

    class Seen(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.dtypes, self.syncs = set(), 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.syncs += func is torch.ops.aten._local_scalar_dense.default
            for a in torch.utils._pytree.tree_leaves((args, kwargs, out)):
                if isinstance(a, torch.Tensor):
                    self.dtypes.add(a.dtype)
            return out

    x = torch.randn(16, 4, 128, 128, generator=torch.Generator().manual_seed(1)).to(getattr(torch, dtype))
    mode = Seen()
    with mode:
        rms = check_start(x)
    assert torch.float32 in mode.dtypes and torch.float64 not in mode.dtypes, mode.dtypes
    assert mode.syncs == 1
    assert rms == pytest.approx(_float64_rms(x), rel=1e-6)
    mode = Seen()
    with mode, pytest.warns(pndmkit.PriorScaleWarning, match=r"^x_T has root mean square 0.97"):
        out = pndmkit.sample(lambda x, t: 0.1 * x, x[:2, :3, :8, :8], schedule=EDM(), steps=2, prediction="x0",
                             method="ddim")  # unit noise on EDM: the start warns, measured in float32
    assert out.x.dtype == x.dtype and torch.float64 not in mode.dtypes, mode.dtypes
    mode = Seen()
    with mode:
        assert _start_rms(x.double()) == pytest.approx(_float64_rms(x), rel=1e-14)
    assert torch.float64 in mode.dtypes and mode.syncs == 1


@pytest.mark.parametrize("size", [1 << 20, (1 << 26) + 12345])
def test_a_large_float32_start_is_measured_as_numpy_measures_it_in_float64(size):
    """One float32 reduction of all entries is not pairwise on the CPU and drifts with size (for unit normals
    -1e-5 at 2**20 entries, -5e-3 at 2**26, -1.4e-2 at 2**27 with torch 2.13); summed by blocks, the measure stays
    within 1e-6 of numpy's float64 measure, here with a short last block and a transposed (non-contiguous) view."""
    torch = pytest.importorskip("torch")
    from pndmkit.sampling import _start_rms

    x = torch.randn(size, generator=torch.Generator().manual_seed(2))
    assert _start_rms(x) == pytest.approx(_float64_rms(x), rel=1e-6)
    grid = x[:size - size % 1024].view(-1, 1024)
    assert _start_rms(grid.T) == pytest.approx(_float64_rms(grid), rel=1e-6)


def test_block_norms_of_block_norms_reach_every_entry(monkeypatch):
    """With blocks of 16 entries, 1000 entries take three levels (1000 -> 63 -> 4 -> 1 norms), each with a short
    last block: every entry counts once (entry k is k + 1, so a lost or repeated block changes the sum)."""
    torch = pytest.importorskip("torch")
    from pndmkit import sampling

    monkeypatch.setattr(sampling, "_START_NORM_BLOCK", 16)
    for n in (1, 16, 17, 1000):
        x = torch.arange(1, n + 1, dtype=torch.float32)
        assert sampling._start_rms(x) == pytest.approx(math.sqrt((n + 1) * (2 * n + 1) / 6), rel=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_a_torch_start_whose_float32_squares_overflow_or_underflow_is_measured_scaled(dtype):
    """Squares of float32 (or bfloat16) entries above about 1.8e19 overflow the float32 sum, and below about 1e-19
    underflow: such a start is measured again as max|x| * rms(x / max|x|), finite and within 1e-6 of numpy's
    float64 measure (float16 entries, at most 65504, neither overflow nor reach the floor). Zeros measure 0; a NaN
    or an infinite entry, also among overflowing ones, is refused by check_start with its message."""
    torch = pytest.importorskip("torch")
    from pndmkit.sampling import check_start

    z = torch.randn(4, 1024, generator=torch.Generator().manual_seed(3))
    scales = (1e20, 3e37, 1e-25, 1e-40) if dtype != "float16" else (6e3, 1e-5)
    for scale in scales:
        x = (scale * z.double()).to(getattr(torch, dtype))
        assert 0 < check_start(x) < math.inf
        assert check_start(x) == pytest.approx(_float64_rms(x), rel=1e-6)
    assert check_start(torch.zeros(4, 1024, dtype=getattr(torch, dtype))) == 0.0
    for bad, shown in ((float("nan"), "nan"), (float("inf"), "inf"), (-float("inf"), "-inf")):
        x = (scales[0] * z).to(getattr(torch, dtype))
        x[2, 5] = bad
        with pytest.raises(ValueError, match=rf"^x_T must be finite; 1 of 4096 entries are NaN or infinite \(the "
                                             rf"first at index \(2, 5\), {shown}\)$"):
            check_start(x)


def test_the_readme_start_scale_example_runs_silently():
    import contextlib
    import io
    import re
    from pathlib import Path

    readme = Path(__file__).resolve().parents[1] / "README.md"
    section = readme.read_text().split("\n## Beyond VP: EDM, VE and flow matching\n", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "prior_scale" in code
    out = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        warnings.simplefilter("error")
        exec(compile(code, str(readme), "exec"), {})
    assert out.getvalue().split() == ["80.006", "0.39"]
    # the same code with unit noise: the warning, and samples 80 times too small
    with pytest.warns(pndmkit.PriorScaleWarning), contextlib.redirect_stdout(out):
        exec(compile(code.replace("schedule.prior_scale() * z", "z"), str(readme), "exec"), {})
    assert out.getvalue().split()[-1] == "0.0"


# -- the final denoising step --------------------------------------------------------------------------------
def test_denoise_takes_the_data_estimate_at_the_last_time_with_one_more_evaluation():
    from pndmkit import sample
    from pndmkit.schedules import DiscreteVP, LinearVP, VE

    # Gaussian data N(0, v I): eps(x, t) = sigma x / (alpha^2 v + sigma^2) exactly, so x0 = E[x0 | x_t] is known
    v = 0.25
    x_T = np.random.default_rng(0).standard_normal((64, 2))
    for schedule in (LinearVP(), VE()):
        def eps(x, t, schedule=schedule):
            a, s = float(schedule.alpha(t)), float(schedule.sigma(t))
            return s * x / (a * a * v + s * s)

        plain = sample(eps, x_T * schedule.prior_scale(), schedule=schedule, method="ddim", steps=10)
        clean = sample(eps, x_T * schedule.prior_scale(), schedule=schedule, method="ddim", steps=10, denoise=True)
        t = plain.times[-1]
        a, s = float(schedule.alpha(t)), float(schedule.sigma(t))
        assert clean.nfe == plain.nfe + 1 and s > 0
        np.testing.assert_allclose(clean.x, (plain.x - s * eps(plain.x, t)) / a, rtol=1e-14)
        np.testing.assert_allclose(clean.x, plain.x * a * v / (a * a * v + s * s), rtol=1e-12)  # Tweedie
    ddim = DiscreteVP.linear()  # its default grid ends at abar = 1: nothing left to remove, no evaluation
    base = sample(lambda x, t: 0.1 * x, x_T, schedule=ddim, steps=5)
    again = sample(lambda x, t: 0.1 * x, x_T, schedule=ddim, steps=5, denoise=True)
    assert again.nfe == base.nfe and np.array_equal(again.x, base.x)
    with pytest.raises(TypeError, match="denoise must be True or False"):
        sample(lambda x, t: 0.1 * x, x_T, schedule=ddim, steps=5, denoise="yes")


def test_pf_per_sample_gives_each_sample_independently_of_its_batch():
    import dataclasses

    from pndmkit import sample
    from pndmkit.methods import get_method
    from pndmkit.problems import get_problem
    from pndmkit.schedules import LinearVP

    schedule = LinearVP()
    problem = get_problem("gmm2d")
    model = lambda x, t: problem.eps(x, t, schedule)  # noqa: E731
    pf = dataclasses.replace(get_method("pf").build(schedule), per_sample=True)
    x_T = np.random.default_rng(3).standard_normal((6, 2))
    whole = sample(model, x_T, schedule=schedule, method=pf)
    first_three = sample(model, x_T[:3], schedule=schedule, method=pf)
    alone = sample(model, x_T[4:5], schedule=schedule, method=pf)
    assert np.array_equal(whole.x[:3], first_three.x) and np.array_equal(whole.x[4:5], alone.x)
    shared = sample(model, x_T, schedule=schedule, method="pf")  # one step-size control for the batch
    assert 0 < np.abs(shared.x[:3] - sample(model, x_T[:3], schedule=schedule, method="pf").x).max() < 1e-3


def test_pf_says_it_ignores_steps_and_method_must_be_a_name_spec_or_integrator():
    from pndmkit import sample
    from pndmkit.schedules import DiscreteVP

    from pndmkit.sampling import IgnoredStepsWarning

    with pytest.warns(IgnoredStepsWarning, match=r"steps=10 is ignored by the adaptive method 'pf': it chooses its own"):
        warned = sample(lambda x, t: 0.1 * x, np.ones(2), schedule=DiscreteVP.linear(), method="pf", steps=10)
    assert warned.nfe == sample(lambda x, t: 0.1 * x, np.ones(2), schedule=DiscreteVP.linear(), method="pf").nfe
    with pytest.raises(TypeError, match=r"method must be a method name .*got int 3"):
        sample(lambda x, t: 0.1 * x, np.ones(2), schedule=DiscreteVP.linear(), method=3)


@pytest.mark.parametrize("steps, error, match", [
    (0, ValueError, r"steps must be an integer >= 1, got 0"),
    (-1, ValueError, r"steps must be an integer >= 1, got -1"),
    ("x", TypeError, r"steps must be an integer, got str 'x'"),
    (5.5, TypeError, r"steps must be an integer, got float 5.5"),
    (True, TypeError, r"steps must be an integer, got bool True"),
])
def test_pf_refuses_a_bad_steps_before_ignoring_it(steps, error, match):
    """A bad steps is a user error whatever the method, as --steps is on the command line; no model call."""
    from pndmkit import sample

    def model(x, t):
        raise AssertionError("called")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # raised, not warned
        with pytest.raises(error, match=match):
            sample(model, np.ones(2), schedule=DiscreteVP.linear(), method="pf", steps=steps)


@pytest.mark.parametrize("schedule, options, said", [
    (DiscreteVP.linear(), {"grid": "quadratic"}, "grid='quadratic' is"),
    (LinearVP(), {"grid": "karras", "rho": 7}, "grid='karras', rho=7 are"),
    (LinearVP(), {"grid": "karras", "rho": 3.0}, "grid='karras', rho=3.0 are"),
    (DiscreteVP.linear(), {"grid": "leading", "offset": 1}, "grid='leading', offset=1 are"),
])
def test_pf_says_it_ignores_grid_options_and_runs_as_without_them(schedule, options, said):
    """The adaptive method uses only the end times: a grid kind, rho or offset is ignored with a warning, and the
    run is the one without them."""
    from pndmkit import sample
    from pndmkit.sampling import IgnoredGridWarning, adaptive_end_times

    model = lambda x, t: 0.1 * x  # noqa: E731
    with pytest.warns(IgnoredGridWarning, match=re.escape(said) + r" ignored by the adaptive method 'pf': it "
                                                 r"integrates from the grid's first to its last time"):
        warned = sample(model, np.ones(2), schedule=schedule, method="pf", **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = sample(model, np.ones(2), schedule=schedule, method="pf")
    assert np.array_equal(warned.x, plain.x) and warned.nfe == plain.nfe
    ends = adaptive_end_times(schedule)
    assert ends.tolist() == ([999.0, -1.0] if isinstance(schedule, DiscreteVP) else [1.0, 1e-3])
    assert plain.times[0] == ends[0] and abs(plain.times[-1] - ends[1]) < 1e-9


@pytest.mark.parametrize("options", [{"grid": "quadratic", "rho": 7}, {"rho": 7}, {"grid": "uniform", "offset": 1}])
def test_pf_refuses_grid_options_that_contradict_each_other_as_every_method_does(options):
    from pndmkit import sample

    model = lambda x, t: 0.1 * x  # noqa: E731
    with pytest.raises(ValueError) as fixed:
        sample(model, np.ones(2), schedule=DiscreteVP.linear(), method="ipndm", **options)
    with pytest.raises(ValueError) as adaptive:
        sample(model, np.ones(2), schedule=DiscreteVP.linear(), method="pf", **options)
    assert str(adaptive.value) == str(fixed.value)


def test_pf_checks_the_grid_options_it_ignores():
    from pndmkit import sample

    with pytest.raises(ValueError, match=r"grid kind must be one of .*got 'quadratik'"):
        sample(lambda x, t: 0.1 * x, np.ones(2), schedule=LinearVP(), method="pf", grid="quadratik")
    with pytest.raises(ValueError, match=r"rho must be > 0, got -1"):
        sample(lambda x, t: 0.1 * x, np.ones(2), schedule=LinearVP(), method="pf", rho=-1)
    with pytest.raises(TypeError, match=r"offset must be an integer, got float 1.5"):
        sample(lambda x, t: 0.1 * x, np.ones(2), schedule=DiscreteVP.linear(), method="pf", offset=1.5)


def test_pf_with_a_convention_takes_its_end_and_network_time_not_its_spacing():
    """diffusers-pndm ends at abar_0 (t = 0); its leading spacing would start at 981 for 50 steps, a step count
    pf does not use: pf integrates from T - 1."""
    from pndmkit import sample

    seen = []
    sol = sample(lambda x, t: seen.append(t) or 0.1 * x, np.ones(2), schedule=DiscreteVP.linear(), method="pf",
                 convention="official-pndm")
    assert sol.times[0] == 999.0 and sol.times[-1] == 0.0 and seen[0] == 998.0  # network time t - 1


def test_a_wrapper_that_converts_with_another_schedule_is_refused():
    from pndmkit import sample

    net = lambda x, t, c: 0.2 * x + c  # noqa: E731  (a flow-matching velocity network)
    g = guided(net, 3.0, {"c": np.zeros(2)}, schedule=FlowMatching(), prediction="flow")
    with pytest.raises(ValueError, match=r"converts its network's 'flow' prediction to eps with FlowMatching\(.*\), "
                                         r"but it is sampled on schedule=DiscreteVP.linear\(T=1000\)"):
        sample(g, np.ones(2), schedule=DiscreteVP.linear(), method="ddim", steps=5, model_kwargs={"c": np.ones(2)})
    ok = sample(g, np.ones(2) * 0.5, schedule=FlowMatching(), method="ddim", steps=5, model_kwargs={"c": np.ones(2)})
    assert ok.nfe == 5


def test_an_adaptive_method_says_it_ignores_explicit_interior_times_and_steps():
    """pf ran explicit times [999, 500, -1] and steps=2 as [999, -1] in silence (a grid kind warned); an
    optimisation result given as grid= answered with a 1202-character TypeError of its repr."""
    import warnings

    import pndmkit
    from pndmkit.sampling import IgnoredGridWarning, IgnoredStepsWarning
    from pndmkit.schedules import DiscreteVP

    sched = DiscreteVP.linear()
    x = np.random.default_rng(0).standard_normal((2, 3))
    model = lambda x, t: 0.1 * x  # noqa: E731
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        a = pndmkit.sample(model, x, schedule=sched, method="pf", grid=[999.0, 500.0, 200.0, -1.0], steps=3)
    kinds = {type(w.message) for w in seen}
    assert kinds == {IgnoredGridWarning, IgnoredStepsWarning}
    assert any("the 2 interior times of grid are ignored by the adaptive method 'pf'" in str(w.message) for w in seen)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the two end times alone: nothing ignored, nothing said
        b = pndmkit.sample(model, x, schedule=sched, method="pf", grid=[999.0, -1.0])
    np.testing.assert_array_equal(a.x, b.x)

    class Result:
        grid = [999.0, -1.0]

        def __repr__(self):
            return "Result(" + "x" * 2000 + ")"

    with pytest.raises(TypeError) as info:
        pndmkit.sample(model, x, schedule=sched, grid=Result())
    assert len(str(info.value)) < 350 and str(info.value).endswith("pass its times, grid=result.grid")
