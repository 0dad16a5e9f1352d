"""Convergence on networks (pndmkit.studies.real) and `pndmkit order --model`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pndmkit.errors import UsageError
from pndmkit.problems import get_problem
from pndmkit.schedules import DiscreteVP, LinearVP
from pndmkit.studies import convergence, real

torch = pytest.importorskip("torch")


def _gmm_model(problem, schedule):
    """An exact mixture eps seen as an opaque network (no fingerprint: not cached)."""
    return lambda x, t: problem.eps(x, t, schedule)


def test_mixture_through_the_network_path_matches_the_exact_study():
    gm, sched = get_problem("gmm2d"), LinearVP()
    exact = convergence.make_study(gm, sched, batch=3, seed=1)
    study = real.model_study(_gmm_model(gm, sched), sched, exact.x_T, rtol=1e-10, scale=gm.min_std)
    # same ODE, same noises: the DOP853 reference in float64 agrees with the exact one to its stated error
    assert study.reference_error < 1e-8
    assert np.max(np.abs(study.reference - exact.reference)) < 10 * study.reference_error + 1e-11
    for method in ("ddim", "f-pndm"):
        a = real.sweep(study, method, [10, 20, 40])
        b = convergence.sweep(exact, method, [10, 20, 40])
        assert a.nfe == b.nfe
        np.testing.assert_allclose(a.errors, b.errors, rtol=1e-6)
        assert a.measured_order == pytest.approx(b.measured_order, abs=0.02)


@pytest.mark.parametrize("name", ["edm", "ve", "flow", "linear-vp"])
def test_a_network_reference_off_vp_is_the_exact_flow_of_the_schedule_s_state(name):
    """Off VP a state is scale(t) times the VP state: the reference solve once carried the schedule's state as if
    it were VP's and called the network there (rk4 errors flat at 0.226 on flow matching, 10.3 on EDM). The default
    noises are pure noise of the schedule at its start (scale(t_start) times unit noise), as make_study draws them."""
    from pndmkit.schedules import get_schedule

    gm, sched = get_problem("gmm2d"), get_schedule(name)
    exact = convergence.make_study(gm, sched, batch=3, seed=1)
    study = real.model_study(_gmm_model(gm, sched), sched, exact.x_T, t_end=exact.t_end, rtol=1e-10,
                             scale=gm.min_std)
    assert study.reference_error < 1e-7
    np.testing.assert_allclose(study.reference, exact.reference, rtol=0, atol=10 * study.reference_error + 1e-10)
    drawn = real.model_study(_gmm_model(gm, sched), sched, shape=(2,), batch=3, seed=1, t_end=exact.t_end,
                             rtol=1e-8, scale=gm.min_std)
    from pndmkit.noise import per_sample_noise

    unit = per_sample_noise(range(3), (2,), 1).astype(np.float64)  # pure noise of the schedule, as make_study scales
    np.testing.assert_array_equal(drawn.x_T, unit * float(sched.scale(sched.t_start)))
    # the convergence study through the network path measures the method's order, as on the exact problem
    a = real.sweep(study, "rk4", [40, 80, 160])
    b = convergence.sweep(exact, "rk4", [40, 80, 160])
    np.testing.assert_allclose(a.errors, b.errors, rtol=1e-4, atol=1e-9)


def test_steps_for_nfe_follows_each_methods_nfe_formula():
    assert real.steps_for_nfe("ddim", 7) == 7
    assert real.steps_for_nfe("pie", 7) == 3          # 2N
    assert real.steps_for_nfe("f-pndm", 12) == 3      # 4N while N <= 3 (PRK warm-up), then N + 9
    assert real.steps_for_nfe("f-pndm", 13) == 4 and real.steps_for_nfe("f-pndm", 11) == 2
    assert real.steps_for_nfe("f-pndm", 3) is None
    assert real.steps_for_nfe("s-pndm", 6) == 5       # N + 1
    with pytest.raises(UsageError, match="adaptive"):
        real.steps_for_nfe("pf", 10)


def test_errors_at_nfe_on_a_mixture_uses_the_largest_affordable_steps():
    study = convergence.make_study("gmm1d", "ddpm-linear", t_start=999, batch=2)
    out = real.errors_at_nfe(study, ["ddim", "f-pndm"], [5, 10, 20])
    assert out["f-pndm"][5]["steps"] == 1 and out["f-pndm"][10]["nfe"] == 8 and out["f-pndm"][20]["nfe"] == 20
    assert [out["ddim"][k]["steps"] for k in (5, 10, 20)] == [5, 10, 20]
    assert out["ddim"][5]["error"] > out["ddim"][10]["error"] > out["ddim"][20]["error"]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from pndmkit.nn.checkpoint import save_checkpoint
    from pndmkit.nn.unet import UNet

    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "tiny", UNet.preset("tiny"), schedule=DiscreteVP.linear())


def test_network_study_is_cached_and_resumed(tiny_checkpoint, tmp_path, monkeypatch):
    kw = dict(batch=1, t_start=40.0, cache=tmp_path, rtol=1e-7)
    first = real.model_study(tiny_checkpoint, **kw)
    assert first.reference_nfe > 0 and first.reference.shape == (1, 1, 8, 8) and first.key
    r1 = real.sweep(first, "ddim", [2, 4])
    second = real.model_study(tiny_checkpoint, **kw)
    assert second.reference_nfe == 0 and second.key == first.key
    np.testing.assert_array_equal(second.reference, first.reference)
    assert second.reference_error == first.reference_error

    def refuse(*args, **kwargs):
        raise AssertionError("a cached sweep was recomputed")

    monkeypatch.setattr(convergence, "sweep", refuse)
    assert real.sweep(second, "ddim", [2, 4]).errors == r1.errors
    other = real.model_study(tiny_checkpoint, **{**kw, "seed": 1})  # other noises
    assert other.key != first.key


def test_network_errors_are_float64_and_shrink_with_steps(tiny_checkpoint):
    study = real.model_study(tiny_checkpoint, batch=2, t_start=40.0)
    assert study.x_T.dtype == np.float64 and study.pixel_scale == 127.5
    res = real.sweep(study, "ddim", [2, 4, 8])
    assert res.errors[0] > res.errors[1] > res.errors[2]
    ok, smallest = real.check_reference(study, {"ddim": res})
    assert ok and smallest == min(res.errors) and study.reference_error < 0.01 * smallest


@pytest.mark.parametrize("kwargs, param", [
    (dict(model="no-such-model"), "model"),
    (dict(model=lambda x, t: x), "schedule"),
    (dict(model=lambda x, t: x, schedule=LinearVP()), "shape"),
    (dict(model="digits", grid="leading"), "grid"),
    (dict(model="digits", rtol=-1.0), "rtol"),
    (dict(model="digits", batch=0), "batch"),
    (dict(model=3), "model"),
])
def test_bad_input_names_the_parameter(kwargs, param):
    with pytest.raises(UsageError) as info:
        real.model_study(**kwargs)
    assert param in info.value.params


def test_cli_order_model_json(tiny_checkpoint, tmp_path, capsys):
    from pndmkit.cli import main

    argv = ["order", "--model", str(tiny_checkpoint), "--methods", "ddim,pie", "--steps", "2,4", "--batch", "1",
            "--t-start", "40", "--json", "--cache", str(tmp_path)]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["problem"] == "tiny" and out["reference_ok"] is True and out["pixel_scale"] == 127.5
    ddim = out["methods"]["ddim"]
    assert ddim["nfe"] == [2, 4]
    np.testing.assert_allclose(ddim["errors_pixel"], np.array(ddim["errors"]) * 127.5)
    assert any(tmp_path.rglob("reference.npz"))


def test_cli_order_model_refuses_problem_options(tiny_checkpoint, capsys):
    from pndmkit.cli import main

    with pytest.raises(SystemExit) as info:
        main(["order", "--model", str(tiny_checkpoint), "--problem", "gmm1d"])
    assert info.value.code == 2
    assert "--problem" in capsys.readouterr().err


@pytest.mark.slow
def test_shipped_digits_model_orders(tmp_path):
    """The shipped network: DDIM first order, F-PNDM beyond first order, reference far below the errors."""
    study = real.model_study("digits", batch=1, t_start=500.0, cache=tmp_path, rtol=1e-8)
    res = real.run_model_study(study, ["ddim", "f-pndm"], [10, 20, 40])
    assert res["ddim"].measured_order == pytest.approx(1.0, abs=0.2)
    assert res["f-pndm"].errors[-1] < res["ddim"].errors[-1]
    assert real.check_reference(study, res)[0]


# -- Gaussian-mixture surrogates ----------------------------------------------------------------------
def test_fit_reproduces_scikit_learn_and_gives_exact_eps():
    from sklearn.mixture import GaussianMixture as EM

    from pndmkit.problems import GaussianMixture

    rng = np.random.default_rng(0)
    data = np.concatenate([rng.normal([-0.5, 0.2], 0.1, (300, 2)), rng.normal([0.6, -0.3], [0.2, 0.1], (200, 2))])
    gm = GaussianMixture.fit(data, 2, "full", reg_covar=1e-4, seed=3)
    em = EM(2, covariance_type="full", reg_covar=1e-4, random_state=3).fit(data)
    np.testing.assert_allclose(gm.means, em.means_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(gm.covs, em.covariances_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(gm.log_prob(data[:5], None), em.score_samples(data[:5]), rtol=1e-10)
    tied = GaussianMixture.fit(data, 2, "tied", reg_covar=1e-4)
    np.testing.assert_array_equal(tied.covs[0], tied.covs[1])
    assert GaussianMixture.fit(data, 3, "spherical").n_components == 3
    images = rng.normal(size=(50, 1, 4, 4))  # trailing axes are flattened
    assert GaussianMixture.fit(images, 1, "diag").dim == 16


@pytest.mark.parametrize("kwargs, match, error", [
    (dict(n_components=0), "n_components", ValueError), (dict(n_components=2, covariance="banded"), "covariance",
                                                         ValueError),
    (dict(n_components=2, reg_covar=0.0), "reg_covar", ValueError),
    (dict(n_components=2.5), "n_components must be an integer", TypeError),  # a type error, as for steps=2.5
])
def test_fit_bad_input(kwargs, match, error):
    from pndmkit.problems import GaussianMixture

    with pytest.raises(error, match=match):
        GaussianMixture.fit(np.zeros((10, 2)) + np.arange(10)[:, None], **kwargs)


def test_digits_gmm_is_fitted_on_the_networks_images():
    from pndmkit.nn.data import load_digits_images
    from pndmkit.problems import get_problem
    from pndmkit.problems.builtin import digits_images

    x, _ = load_digits_images()
    np.testing.assert_allclose(digits_images(16), x[:, 0].double().numpy(), rtol=0, atol=1e-6)
    gm = get_problem("digits-gmm")
    assert (gm.dim, gm.n_components) == (256, 10)
    assert gm.min_std == pytest.approx(1e-3 ** 0.5, rel=1e-6)
    np.testing.assert_allclose(gm.mean(), digits_images(16).reshape(-1, 256).mean(axis=0), atol=1e-6)


def test_mixture_study_shares_the_noises_and_rank_correlation():
    gm, sched = get_problem("gmm2d"), LinearVP()
    net = real.model_study(_gmm_model(gm, sched), sched, np.random.default_rng(0).standard_normal((3, 2)),
                           rtol=1e-10, scale=gm.min_std)
    mix = real.mixture_study("gmm2d", net)
    np.testing.assert_array_equal(mix.x_T, net.x_T)
    assert np.max(np.abs(mix.reference - net.reference)) < 1e-8
    names, nfes = ["ddim", "pie", "prk", "ipndm"], [8, 16]
    a, b = real.errors_at_nfe(net, names, nfes), real.errors_at_nfe(mix, names, nfes)
    rc = real.rank_correlation(a, b)
    assert rc["by_nfe"][8]["rho"] == 1.0 and rc["pooled"]["n"] == 8 and rc["pooled"]["rho"] == 1.0
    flipped = {n: {k: {**v, "error": 1 / v["error"]} for k, v in d.items()} for n, d in b.items()}
    assert real.rank_correlation(a, flipped)["pooled"]["rho"] == -1.0


@pytest.mark.parametrize("method, nfe, steps", [("ipndm", 200, 200), ("ipndm", 1000, 1000), ("f-pndm", 300, 291)])
def test_steps_for_nfe_of_a_built_integrator_on_a_ddpm_table_is_the_largest_fitting_count(method, nfe, steps):
    # the table's default leading grid refuses step counts such as 600 of 1000 (it would start at t = 599);
    # the count is structural, so it must not make the integrator's nfe(N) fail or stop increasing there
    from pndmkit.methods import get_method, steps_for_nfe
    from pndmkit.schedules import DiscreteVP

    integrator = get_method(method).build(DiscreteVP.linear())
    assert integrator.nfe(600) == get_method(method).nfe(600)
    assert steps_for_nfe(integrator.nfe, nfe) == steps == steps_for_nfe(method, nfe)
    with pytest.raises(ValueError, match="steps"):
        integrator.nfe(0)


class _Shrink(torch.nn.Module):
    """A one-weight "network", eps = w x: weights to hash (so its studies are cached) and a reference solved in
    milliseconds."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.3, dtype=torch.float64))

    def forward(self, x, t):
        return self.w * x


def test_the_reference_cache_keeps_beta_tables_apart(tmp_path):
    """The cache key held repr(schedule), which left the betas out: the same network on Stable Diffusion's linear
    table, same interval, read the DDPM table's reference back (reference_nfe 0, 8e-2 off on a UNet)."""
    from pndmkit.nn.adapters import NetworkModel
    from pndmkit.schedules import schedule_key

    net = _Shrink()
    ddpm, sd = DiscreteVP.linear(), DiscreteVP.linear(beta_start=0.00085, beta_end=0.012)
    kw = dict(shape=(3,), batch=2, t_start=500.0, t_end=-1.0, rtol=1e-6, cache=tmp_path)
    a = real.model_study(NetworkModel(net, ddpm), ddpm, **kw)
    b = real.model_study(NetworkModel(net, sd), sd, **kw)
    assert a.reference_nfe > 0 and b.reference_nfe > 0 and a.key and b.key and a.key != b.key
    fresh = real.model_study(NetworkModel(net, sd), sd, **{**kw, "cache": None})
    np.testing.assert_array_equal(b.reference, fresh.reference)
    assert np.max(np.abs(a.reference - b.reference)) > 1e-2  # the two tables' flows differ: a mix-up would show
    # each is found again under its own key, and the entry names the schedule exactly
    again = real.model_study(NetworkModel(net, sd), sd, **kw)
    assert again.reference_nfe == 0 and again.key == b.key
    np.testing.assert_array_equal(again.reference, b.reference)
    info = json.loads(str(np.load(tmp_path / b.key / "reference.npz")["info"]))
    assert info["schedule"] == schedule_key(sd) == "DiscreteVP.linear(T=1000, beta_start=0.00085, beta_end=0.012)"
    # a custom table of the same length is another entry too
    custom = DiscreteVP(ddpm.betas * 1.01)
    c = real.model_study(NetworkModel(net, custom), custom, **kw)
    assert c.reference_nfe > 0 and c.key not in (a.key, b.key)


def test_a_custom_schedule_is_not_cached(tmp_path):
    """A CustomSchedule is known by its function objects, which no later run shares: nothing is written."""
    from pndmkit.nn.adapters import NetworkModel
    from pndmkit.schedules import CustomSchedule

    sched = CustomSchedule(np.cos, np.sin, 0.0, 1.5)
    study = real.model_study(NetworkModel(_Shrink(), sched), sched, shape=(3,), batch=1, t_start=1.4, t_end=0.1,
                             rtol=1e-6, cache=tmp_path)
    assert study.key == "" and study.cache is None and study.reference_nfe > 0 and not list(tmp_path.iterdir())


def test_the_shipped_cache_is_still_found_under_the_default_schedule_s_key():
    """The default DDPM table keeps the key the shipped references were written with: one block of the digits
    UNet's noises is read back without solving anything."""
    from pathlib import Path

    from pndmkit.schedules import schedule_key
    from pndmkit.studies.targets import REFERENCE_BLOCK, REFERENCE_RTOL, StudyTarget

    shipped = Path(__file__).resolve().parents[1] / "analysis" / "results" / "real_cache"
    target = StudyTarget.resolve("digits", cache=shipped)
    assert schedule_key(target.schedule) == "DiscreteVP.linear(T=1000)"
    study = real.cached_model_study("digits", target.schedule, target.noises(0, REFERENCE_BLOCK),
                                    t_start=target.t_start, t_end=target.t_end, rtol=REFERENCE_RTOL, cache=shipped)
    assert study is not None and study.reference_nfe == 0 and study.reference.shape == (REFERENCE_BLOCK, 1, 16, 16)
    assert (shipped / study.key / "reference.npz").is_file()
    info = json.loads(str(np.load(shipped / study.key / "reference.npz")["info"]))
    assert info["schedule"] == schedule_key(target.schedule) and info["batch"] == REFERENCE_BLOCK


def test_a_numpy_model_runs_a_network_study_on_numpy_arrays():
    """model_study called every model with torch tensors where torch was installed, so a numpy model
    (``x.astype``) failed with an AttributeError in the reference solve; it now falls back to numpy arrays for the
    reference and the sweeps, and gives the errors of the same model written for tensors."""
    import numpy as np
    import torch

    from pndmkit.schedules import DiscreteVP
    from pndmkit.studies.real import model_study, sweep

    def numpy_eps(x, t):
        return 0.5 * np.tanh(x.astype(np.float64)) * (1.0 + t / 1000.0)

    def torch_eps(x, t):
        return 0.5 * torch.tanh(x.double()) * (1.0 + t / 1000.0)

    sched = DiscreteVP.linear()
    studies = [model_study(eps, sched, batch=2, shape=(3,), rtol=1e-6) for eps in (numpy_eps, torch_eps)]
    assert [s.problem.array for s in studies] == ["numpy", "torch"]
    np.testing.assert_allclose(studies[0].reference, studies[1].reference, rtol=1e-9, atol=1e-12)
    numpy_run, torch_run = (sweep(s, "ipndm", [5, 10]) for s in studies)
    np.testing.assert_allclose(numpy_run.errors, torch_run.errors, rtol=1e-9)

    class Broken(torch.nn.Module):  # a torch module's own error is not taken for a numpy model
        def forward(self, x, t):
            return x.no_such_method()

    with pytest.raises(AttributeError, match="no_such_method"):
        model_study(Broken(), sched, batch=2, shape=(3,), rtol=1e-6)
