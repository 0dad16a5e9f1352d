"""The sampler audit (pndmkit/studies/audit.py, ``pndmkit audit``) finds what is wrong with samplers it did not write.

The worked example is a k-diffusion-style "variable-step iPNDM" written here from the mathematics (Adams-Bashforth
weights of the Lagrange interpolant of the past ``eps = (x - D) / sigma`` in ``sigma``, lower orders for the
first three steps), once correct and once with the order-4 weights that equal (57, -65, 43, -11)/24 on a uniform
grid instead of (55, -59, 37, -9)/24.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from pndmkit.errors import UsageError
from pndmkit.studies.audit import audit

ROOT = Path(__file__).resolve().parents[1]
BUG = np.array([1.0, -3.0, 3.0, -1.0]) / 12  # (57, -65, 43, -11)/24 - (55, -59, 37, -9)/24


def _adams_weights(nodes, a, b):
    """Weights of the interpolant through ``nodes`` averaged over [a, b]: the moment conditions, solved."""
    theta = (np.asarray(nodes, dtype=float) - a) / (b - a)
    k = len(theta)
    return np.linalg.solve(np.vander(theta, k, increasing=True).T, 1.0 / np.arange(1, k + 1))


def _ipndm(bug):
    def sample(model, x, sigmas, extra_args=None, callback=None, disable=None):
        extra_args = extra_args or {}
        ones = x.new_ones([x.shape[0]]) if hasattr(x, "new_ones") else np.ones(x.shape[0])
        history = []
        for i in range(len(sigmas) - 1):
            s, s_next = float(sigmas[i]), float(sigmas[i + 1])
            history = (history + [(x - model(x, s * ones, **extra_args)) / s])[-4:]
            w = _adams_weights([float(sigmas[i - j]) for j in range(len(history))], s, s_next)
            if bug and len(history) == 4:
                w = w + BUG
            x = x + (s_next - s) * sum(float(wj) * history[-1 - j] for j, wj in enumerate(w))
        return x
    return sample


sample_ipndm_v = _ipndm(False)
sample_ipndm_v_buggy = _ipndm(True)
FINE = (512, 1024, 2048, 4096)  # the defect's O(h^3) term overtakes the O(h^4) one only past N ~ 1000 on gmm2d


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def buggy(torch):
    return audit(sample_ipndm_v_buggy, steps=FINE)


@pytest.fixture(scope="module")
def correct(torch):
    return audit(sample_ipndm_v, steps=FINE)


def test_the_buggy_ipndm_is_third_order_and_its_weights_are_recovered(buggy):
    assert buggy.kind == "k-diffusion" and buggy.calls_per_step == "N"
    assert 2.8 <= buggy.order <= 3.3, buggy.intervals["smooth"]
    w = buggy.weights
    assert w["form"] == "eps-s" and w["multistep"]
    uniform = w["uniform"]
    np.testing.assert_allclose(np.array(uniform["recovered"]) * 24, [57, -65, 43, -11], atol=1e-9)
    np.testing.assert_allclose(np.array(uniform["exact"]) * 24, [55, -59, 37, -9], atol=1e-9)
    np.testing.assert_allclose(np.array(w["recovered"]) - w["exact"], BUG, atol=1e-9)  # Karras-spaced grid
    # sum w (-j)^3 = 3/4 instead of 1/4: cubic gradients are integrated wrong, the weights imply order 3
    assert w["first_broken_outright"] == 3 and w["implied_order"] == 3 and 3 in w["limiting"]
    assert "q=3 does not hold" in buggy.verdict and "the weights imply order 3, as measured (3." in buggy.verdict


def test_the_correct_ipndm_is_fourth_order(correct, buggy):
    assert correct.order >= 3.6 and correct.order_to_data >= 3.7, correct.intervals
    assert correct.order - buggy.order > 0.5
    w = correct.weights
    np.testing.assert_allclose(w["recovered"], w["exact"], atol=1e-12)
    np.testing.assert_allclose(np.array(w["uniform"]["recovered"]) * 24, [55, -59, 37, -9], atol=1e-9)
    assert w["first_broken"] == 4 and w["implied_order"] == 4
    assert correct.point_mass["exact"] and correct.consistency["ok"]


def test_weights_on_a_non_uniform_grid_are_the_exact_variable_step_ones():
    """pndmkit's f-pndm-s integrates the interpolant exactly on the s nodes: its recovered weights equal
    lagrange_weights_float on every grid, and its conditions hold up to q = 3 (the t-uniform f-pndm breaks q = 1)."""
    good, plms = audit("f-pndm-s", quick=True), audit("f-pndm", quick=True)
    assert good.weights["multistep"] and len(good.weights["recovered"]) == 4
    np.testing.assert_allclose(good.weights["recovered"], good.weights["exact"], rtol=1e-9)
    assert good.weights["first_broken"] == 4 and good.weights["implied_order"] == 4
    np.testing.assert_allclose(np.array(plms.weights["recovered"]) * 24, [55, -59, 37, -9], atol=1e-9)
    assert plms.weights["first_broken"] == 1 and plms.weights["conditions"][1]["rate"] == 1.0
    assert plms.weights["implied_order"] == 2
    assert plms.calls_per_step == "N + 9" and good.calls_per_step == "N + 9"


@pytest.fixture(scope="module")
def diffusers():
    pytest.importorskip("torch")
    return pytest.importorskip("diffusers")


def test_dpm_solver_3m_is_second_order(diffusers):
    """diffusers' DPM-Solver++(3M) weights its second difference by half what it needs (tests/test_exponential.py):
    the audit recovers weights that break the q = 2 condition outright, and the order between the finest step
    counts is 2, not 3."""
    rep = audit("diffusers:DPMSolverMultistepScheduler", solver_order=3, timestep_spacing="trailing")
    w = rep.weights
    assert w["form"] == "x0-lambda" and w["first_broken_outright"] == 2 and w["implied_order"] == 2
    assert len(w["recovered"]) == 3 and abs(sum(w["recovered"]) - 1) < 1e-5
    assert abs(rep.intervals["smooth"]["finest_local_order"] - 2.0) < 0.25, rep.intervals["smooth"]
    assert rep.order < 2.6 and rep.calls_per_step == "N" and rep.point_mass["exact"]


def test_ddim_is_first_order_exact_and_consistent_but_clips_by_default(diffusers):
    rep = audit("diffusers:DDIMScheduler", quick=True)
    assert round(rep.order) == 1 and rep.calls_per_step == "N" and rep.point_mass["exact"]
    assert rep.consistency["ok"] and rep.weights["recovered"] == pytest.approx([1.0], abs=1e-9)
    assert rep.weights["linear"] is False and "clipped" in rep.verdict  # clip_sample=True is DDIM's default
    assert audit(diffusers.DDIMScheduler(clip_sample=False), quick=True).weights["linear"] is True


@pytest.mark.parametrize("target, config, like", [
    ("diffusers:DPMSolverMultistepScheduler", {"thresholding": True}, {}),
    ("diffusers:DDIMScheduler", {"thresholding": True, "clip_sample": False}, {"clip_sample": True}),
])
def test_thresholding_is_audited_as_a_clip_of_large_x0(target, config, like, diffusers):
    """Dynamic thresholding takes a percentile of each sample's |x0| over its channels and pixels, so the audit's
    samples reach the scheduler as images (batch, d, 1, 1). It leaves small x0 alone (the threshold is at least 1):
    the weights and orders are those of the scheduler without it, and the verdict says the large drive is cut,
    as it says for clip_sample=True."""
    rep = audit(target, quick=True, **config)
    ref = audit(target, quick=True, **like)
    assert rep.weights["linear"] is False and "clipped or thresholded" in rep.verdict
    assert rep.weights["recovered"] == pytest.approx(ref.weights["recovered"], abs=1e-9)
    assert rep.order == pytest.approx(ref.order, abs=1e-6) and rep.point_mass["exact"] and rep.calls_per_step == "N"
    if like:  # DDIM's clip_sample=True: the same report, thresholding named the same way
        assert rep.verdict == ref.verdict
    else:  # without thresholding DPM-Solver++ is linear: the only new line of the verdict is the cut
        assert ref.weights["linear"] is True
        assert rep.verdict == "not linear in the model output (a large x0 is clipped or thresholded): weights are " \
                              "for small outputs only; " + ref.verdict


def test_cli_audits_a_thresholding_scheduler(capsys, diffusers):
    from pndmkit.cli import main

    assert main(["audit", "diffusers:DPMSolverMultistepScheduler", "--quick", "--config", "thresholding=True",
                 "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["weights"]["linear"] is False and report["target"].endswith("thresholding=True")


def test_heun_costs_two_calls_per_step_less_one_and_ddim_linspace_tells_the_model_the_wrong_level(diffusers):
    heun = audit("diffusers:HeunDiscreteScheduler", quick=True)
    assert heun.calls_per_step == "2N - 1" and heun.weights["recovered"] == pytest.approx([0.5, 0.5], abs=1e-6)
    # linspace timesteps are not T // N apart, but DDIM steps to t - T // N: the next call is told another level
    lin = audit("diffusers:DDIMScheduler", clip_sample=False, timestep_spacing="linspace", quick=True)
    assert lin.consistency["level_mismatch"] > 1e-3 and not lin.consistency["ok"]
    assert "off the sample's" in lin.verdict


@pytest.mark.parametrize("target, config", [
    ("diffusers:DPMSolverMultistepScheduler", {"prediction_type": "sample"}),
    ("diffusers:EulerDiscreteScheduler", {"prediction_type": "v_prediction"}),
])
def test_a_scheduler_predicting_x0_or_v_is_given_the_exact_eps_converted(target, config, diffusers):
    """The probe's exact eps is converted to the scheduler's prediction type: the same scheduler measures the
    same whatever it predicts (up to float32 rounding inside its steps)."""
    rep = audit(target, quick=True, **config)
    ref = audit(target, quick=True)
    # Euler's v step rounds the sample to float32 (its last-step weights at drives 1e-3 and 10 differ by 2e-4):
    # not clipping, so the verdict is the same, and so are the weights
    assert rep.weights["linear"] and rep.verdict == ref.verdict
    assert rep.weights["recovered"] == pytest.approx(ref.weights["recovered"], abs=1e-4)
    assert rep.weights["first_broken"] == ref.weights["first_broken"] and rep.calls_per_step == ref.calls_per_step
    assert rep.weights["implied_order"] == ref.weights["implied_order"] >= 1
    assert rep.order == pytest.approx(ref.order, abs=1e-3)
    for name in ("smooth", "data"):
        assert rep.intervals[name]["errors"] == pytest.approx(ref.intervals[name]["errors"], rel=1e-3, abs=1e-6)
    assert rep.consistency["ok"] == ref.consistency["ok"] and np.isfinite(rep.consistency["end_level"])


def test_pndmkit_methods_and_integrators_are_audited_in_their_own_time(diffusers):
    import pndmkit

    rep = audit(pndmkit.get_method("ipndm").build(pndmkit.LinearVP()), quick=True)
    assert rep.kind == "pndmkit" and rep.variable == "t" and rep.point_mass["exact"] and rep.consistency["ok"]
    assert rep.consistency["offgrid_calls"] == 0
    json.dumps(rep.to_dict())  # JSON-ready


@pytest.mark.parametrize("target, config, match", [
    ("nosuchmodule_xyz:f", {}, "cannot import module 'nosuchmodule_xyz'"),
    ("os:nosuchfunction", {}, "module 'os' has no attribute 'nosuchfunction'"),
    ("os:sep", {}, "is a str, not a callable sampler"),
    ("os:getcwd", {}, "does not take k-diffusion's arguments"),
    ("f-pndmm", {}, "unknown target 'f-pndmm'"),
    ("pf", {}, "adaptive"),
    ("ddim", {"solver_order": 3}, "takes no configuration keywords"),
    ("diffusers:NoSuchScheduler", {}, "diffusers has no scheduler class 'NoSuchScheduler'"),
    ("diffusers:DDIMScheduler", {"solver_order": 3}, "config solver_order=3: DDIMScheduler has no such option"),
    ("diffusers:DDIMScheduler", {"beta_schedule": "nope"}, "config beta_schedule='nope': DDIMScheduler refused it"),
    ("diffusers:DPMSolverMultistepScheduler", {"solver_order": "abc"},
     "^config solver_order='abc': DPMSolverMultistepScheduler takes an integer for solver_order \\(default 2\\)$"),
    ("diffusers:DPMSolverMultistepScheduler", {"algorithm_type": "nope"},
     "^config algorithm_type='nope': DPMSolverMultistepScheduler takes one of 'dpmsolver', 'dpmsolver\\+\\+', "
     "'sde-dpmsolver', 'sde-dpmsolver\\+\\+' for algorithm_type \\(default 'dpmsolver\\+\\+'\\)$"),
    ("diffusers:ScoreSdeVeScheduler", {}, "^diffusers' ScoreSdeVeScheduler has no step\\(\\) \\(it steps by "
                                          "step_correct, step_pred\\); the audit runs schedulers as a pipeline does"),
    ("diffusers:FlowMatchEulerDiscreteScheduler", {}, "FlowMatchEulerDiscreteScheduler has no VP table .*, and "
                                                      "FlowMatchEulerDiscreteScheduler, a flow-matching scheduler, "
                                                      "has none \\(its levels are flow sigmas\\)"),
    ("diffusers:EDMEulerScheduler", {}, "EDMEulerScheduler has no VP table .*, and EDMEulerScheduler, an EDM "
                                        "scheduler, has none"),
    ("diffusers:CMStochasticIterativeScheduler", {}, "has no VP table .*, and CMStochasticIterativeScheduler has "
                                                     "none: its levels are sigmas from sigma_min to sigma_max"),
    ("diffusers:DDPMScheduler", {}, "DDPMScheduler is stochastic: two runs from the same start"),
    ("diffusers:EulerAncestralDiscreteScheduler", {}, "EulerAncestralDiscreteScheduler is stochastic"),
])
def test_bad_targets_are_usage_errors_naming_them(target, config, match, diffusers):
    with pytest.raises(UsageError, match=match) as info:
        audit(target, quick=True, **config)
    assert info.value.params[0] in ("target", "config")


@pytest.mark.parametrize("argv, expected", [
    (["audit", "nosuchmodule_xyz:f"], "pndmkit audit: error: target: cannot import module 'nosuchmodule_xyz'"),
    (["audit", "diffusers:DDIMScheduler", "--config", "foo=1"], "--config: config foo=1: DDIMScheduler has no such"),
    (["audit", "diffusers:DDIMScheduler", "--config", "foo"], "--config: --config 'foo' must be KEY=VALUE"),
    (["audit", "diffusers:DPMSolverMultistepScheduler", "--config", "solver_order=abc"],
     "--config: config solver_order='abc': DPMSolverMultistepScheduler takes an integer for solver_order (default 2)"),
    (["audit", "ddim", "--quik"], "unrecognized arguments: --quik (did you mean --quick?)"),
    (["audit", "os:sep"], "target: target 'os:sep' is a str, not a callable sampler"),
    (["audit", "diffusers:DPMSolverMultistepScheduler", "--quick", "--config", "num_train_timesteps=10"],
     "--config: DPMSolverMultistepScheduler with config num_train_timesteps=10 fails on the audit's runs (20 steps, "
     "a batch of samples shaped (batch, d, 1, 1)): IndexError: index 21 is out of bounds"),
    (["audit", "diffusers:DDIMScheduler", "--quick", "--config", "clip_sample=maybe"],
     "--config: config clip_sample='maybe': DDIMScheduler takes true or false for clip_sample (default True)"),
    (["audit", "diffusers:DDIMScheduler", "--quick", "--config", "clip_sample=0"],
     "--config: config clip_sample=0: DDIMScheduler takes true or false for clip_sample (default True)"),
    (["audit", "diffusers:PNDMScheduler", "--quick", "--config", "num_train_timesteps=10"],
     "target: PNDMScheduler num_train_timesteps=10: no finite step weight could be recovered from its runs"),
    (["audit", "diffusers:DPMSolverMultistepScheduler", "--config", "solver_order=3", "--config", "solver_order=2"],
     "--config: --config 'solver_order=2': solver_order is already set (solver_order=3); give each option once"),
    (["audit", "diffusers:DPMSolverMultistepScheduler", "--config", "prediction_type=flow_prediction"],
     "--config: config prediction_type='flow_prediction': the audit drives DPMSolverMultistepScheduler with the "
     "exact eps converted to its prediction type, and can convert to epsilon, sample, v_prediction only"),
    (["audit", "diffusers:DDIMScheduler", "--config", "prediction_type=flow_prediction"],  # DDIM's own type refuses
     "--config: config prediction_type='flow_prediction': DDIMScheduler takes one of 'epsilon', 'sample', "
     "'v_prediction' for prediction_type (default 'epsilon')"),
])
def test_cli_bad_input_is_one_line(argv, expected, usage_error, diffusers):
    err = usage_error(argv)
    assert expected in err, err


def test_cli_json_audits_a_module_function(tmp_path, monkeypatch, capsys, torch):
    (tmp_path / "my_samplers.py").write_text(
        "def sample_euler(model, x, sigmas, extra_args=None, callback=None, disable=None):\n"
        "    for i in range(len(sigmas) - 1):\n"
        "        d = (x - model(x, sigmas[i] * x.new_ones([x.shape[0]]))) / sigmas[i]\n"
        "        x = x + (sigmas[i + 1] - sigmas[i]) * d\n"
        "    return x\n")
    monkeypatch.chdir(tmp_path)
    from pndmkit.cli import main

    assert main(["audit", "my_samplers:sample_euler", "--quick", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "k-diffusion" and out["calls_per_step"] == "N" and round(out["order"]) == 1
    assert out["weights"]["recovered"] == pytest.approx([1.0], abs=1e-12) and out["point_mass"]["exact"]


def test_readme_audit_table_is_the_shipped_json():
    """The README's audit table is ``python -m analysis.audit_table --markdown`` of the shipped JSON (the JSON is
    made by ``python -m analysis.audit_table``, a few minutes); on failure paste the printed table."""
    from analysis.audit_table import markdown_table

    data = json.loads((ROOT / "analysis" / "results" / "audit.json").read_text())
    table = markdown_table(data)
    readme = (ROOT / "README.md").read_text()
    if table not in readme:
        print(table)
    assert table in readme
    names = [row["target"] for row in data["rows"]]
    for needed in ("DDIMScheduler", "PNDMScheduler", "DPMSolverMultistepScheduler solver_order=3",
                   "DPMSolverSinglestepScheduler", "UniPCMultistepScheduler solver_order=1", "DEISMultistepScheduler",
                   "LMSDiscreteScheduler", "HeunDiscreteScheduler", "EulerDiscreteScheduler", "f-pndm", "ipndm"):
        assert any(n.startswith(needed) for n in names), needed


def _euler(skip_last=False, told_next=False):
    def sample(model, x, sigmas, extra_args=None, callback=None, disable=None):
        n = len(sigmas) - 1 - (1 if skip_last else 0)
        for i in range(n):
            told = sigmas[i + 1] if told_next and i > 0 else sigmas[i]
            d = (x - model(x, told * x.new_ones([x.shape[0]]))) / told
            x = x + (sigmas[i + 1] - sigmas[i]) * d
        return x
    return sample


def test_schedule_consistency_catches_a_sampler_that_stops_early_or_tells_the_model_the_wrong_sigma(torch):
    ok = audit(_euler(), quick=True)
    assert ok.consistency["ok"] and ok.consistency["level_mismatch"] < 1e-12
    short = audit(_euler(skip_last=True), quick=True)
    c = short.consistency
    # the Karras grid to 0 has sigma_{N-1} = 80 / N^7: the sampler stops at 8e-6 instead of 0
    assert not c["ok"] and c["end_level"] == 0.0 and c["end_reached"] == pytest.approx(80 / 10**7, rel=1e-6)
    assert "not at the schedule's last level" in short.verdict
    wrong = audit(_euler(told_next=True), quick=True)
    assert wrong.consistency["level_mismatch"] > 1e-2 and "off the sample's" in wrong.verdict


@pytest.mark.parametrize("options, param, match", [
    ({"problem": "gmm3d"}, "problem", "unknown problem 'gmm3d'; choose one of"),
    ({"steps": [5]}, "steps", "steps must be at least two increasing integers >= 1, got \\[5\\]"),
    ({"steps": [10, 5]}, "steps", "got \\[10, 5\\]"),
    ({"batch": 0}, "batch", "batch must be an integer >= 1, got 0"),
])
def test_bad_options_name_the_parameter(options, param, match):
    with pytest.raises(UsageError, match=match) as info:
        audit("ddim", **options)
    assert info.value.params == (param,)


def sample_euler_textbook(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """k-diffusion's Euler written out: d = (x - denoised) / sigma, x += d (sigma_next - sigma)."""
    extra_args = extra_args or {}
    ones = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        d = (x - model(x, sigmas[i] * ones, **extra_args)) / sigmas[i]
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


def test_the_verdict_on_a_correct_euler_says_its_order_is_what_it_should_be(torch):
    """A correct first-order sampler does not meet the q = 1 order condition, which is what order 1 means: the
    verdict says that the weights imply order 1, that the measured order agrees, that the condition that does not
    hold is what fixes the order (a defect only where a higher order is due), and that nothing else was found."""
    rep = audit(sample_euler_textbook, quick=True)
    assert rep.weights["implied_order"] == 1 and rep.point_mass["exact"] and rep.weights["describes_order"]
    assert re.fullmatch(
        r"the weights imply order 1, as measured \(1\.0\d\) \(order conditions for eps polynomial in s, integrated "
        r"in s: q=1 does not hold; order 1 needs every q < 1 to hold, and the first q that does not limits it: what "
        r"a method of order 1 shows, a defect only where the sampler should have a higher order\); nothing else "
        r"found: consistent, exact for a point mass", rep.verdict), rep.verdict
    assert "fails" not in rep.summary()


def test_the_summary_says_what_was_measured():
    text = audit("pie", quick=True).summary()
    for part in ("order on the smooth interval", "order to abar = 1", "model calls: 2N", "data at one point: exact",
                 "schedule: ends at", "weights imply order 2", "verdict:"):
        assert part in text, text


def test_fixed_adams_weights_on_a_karras_grid_are_second_order(torch):
    """pndmkit's k-diffusion-style ``sample_ipndm_pndmkit`` is iPNDM with the classical AB4 weights, made for
    uniform steps: on a uniform sigma grid they are the exact ones, on the Karras-spaced grid they break q = 1 by
    O(h), so the weights imply order 2, and the order between the finest step counts is about 2 (not 4)."""
    rep = audit("pndmkit.integrations.k_diffusion:sample_ipndm_pndmkit", steps=(32, 64, 128, 256))
    w = rep.weights
    np.testing.assert_allclose(np.array(w["uniform"]["recovered"]) * 24, [55, -59, 37, -9], atol=1e-9)
    np.testing.assert_allclose(w["uniform"]["recovered"], w["uniform"]["exact"], atol=1e-12)
    assert w["first_broken"] == 1 and w["conditions"][1]["rate"] == 1.0 and w["implied_order"] == 2
    assert abs(rep.intervals["smooth"]["finest_local_order"] - 2.0) < 0.3, rep.intervals["smooth"]


def test_config_values_of_numpy_types_are_taken_like_python_ones(diffusers):
    """The annotated-type check runs before the scheduler sees the config: numpy integers and floats pass it."""
    rep = audit("diffusers:DPMSolverMultistepScheduler", quick=True, solver_order=np.int64(2))
    assert rep.weights["linear"] and rep.target == "DPMSolverMultistepScheduler solver_order=2" and rep.order > 1.9


# -- a user's sampler that fails, calls no model, returns the wrong shape or NaN -------------------------------
BROKEN_SAMPLERS = '''
def _euler(model, x, sigmas):
    for i in range(len(sigmas) - 1):
        d = (x - model(x, sigmas[i] * x.new_ones([x.shape[0]]))) / sigmas[i]
        x = x + (sigmas[i + 1] - sigmas[i]) * d
    return x

def sample_nan(model, x, sigmas, extra_args=None, callback=None, disable=None):
    return x * float("nan")

def sample_first_row(model, x, sigmas, extra_args=None, callback=None, disable=None):
    return _euler(model, x, sigmas)[:1]

def sample_boom(model, x, sigmas, extra_args=None, callback=None, disable=None):
    raise RuntimeError("boom")

def sample_euler_nan(model, x, sigmas, extra_args=None, callback=None, disable=None):
    return _euler(model, x, sigmas) * float("nan")

def sample_euler_nan_at_zero(model, x, sigmas, extra_args=None, callback=None, disable=None):
    return _euler(model, x, sigmas) * (float("nan") if float(sigmas[-1]) == 0 else 1.0)
'''


@pytest.fixture
def broken(tmp_path, monkeypatch):
    (tmp_path / "broken_samplers.py").write_text(BROKEN_SAMPLERS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(__import__("sys").modules, "broken_samplers", raising=False)
    return "broken_samplers"


@pytest.mark.parametrize("name, expected", [
    ("sample_nan", "target: sampler broken_samplers:sample_nan made 0 model calls (on 16 steps, sigmas 80 to 0.1): "
                   "the audit measures a sampler through its calls of model(x, sigma)"),
    ("sample_first_row", "target: sampler broken_samplers:sample_first_row returned shape (1, 2) for x of shape "
                         "(8, 2) (on 16 steps, sigmas 80 to 0.1): a sampler returns the sample at sigmas[-1], "
                         "shaped as x"),
    ("sample_boom", "target: sampler broken_samplers:sample_boom raised RuntimeError: boom (on 16 steps, sigmas 80 "
                    "to 0.1, x of shape (8, 2)); its traceback: run with PNDMKIT_TRACEBACK=1"),
])
def test_cli_a_sampler_that_fails_calls_no_model_or_returns_another_shape_is_one_line(name, expected, broken,
                                                                                       usage_error, torch):
    err = usage_error(["audit", f"{broken}:{name}", "--quick"])
    assert expected in err, err


def test_the_exception_a_sampler_raises_is_kept_as_the_cause_with_its_traceback(broken, torch):
    with pytest.raises(UsageError, match="sampler broken_samplers:sample_boom raised RuntimeError: boom") as info:
        audit(f"{broken}:sample_boom", quick=True)
    cause = info.value.__cause__
    assert isinstance(cause, RuntimeError) and str(cause) == "boom" and info.value.params == ("target",)
    frames = [f.name for f in __import__("traceback").extract_tb(cause.__traceback__)]
    assert frames[-1] == "sample_boom"  # the user's own frame, for debugging


def test_a_sampler_returning_nan_gets_no_report_and_no_verdict(broken, capsys, torch):
    with pytest.raises(FloatingPointError, match="sample_euler_nan: its output is not finite \\(NaN or inf "
                                                 "entries\\) at N=16, 32, 64 steps on the smooth interval"):
        audit(f"{broken}:sample_euler_nan", quick=True)
    from pndmkit.cli import main

    with pytest.raises(SystemExit) as info:  # the command line's exit status of a run with non-finite values
        main(["audit", f"{broken}:sample_euler_nan", "--quick"])
    captured = capsys.readouterr()
    assert info.value.code == 1 and captured.out == "" and captured.err.count("\n") == 1, captured
    assert "no verdict" in captured.err and "round-off floor" not in captured.err


def test_a_sampler_returning_nan_only_at_sigma_zero_is_a_finding_on_that_interval(broken, torch):
    rep = audit(f"{broken}:sample_euler_nan_at_zero", quick=True)
    data = rep.intervals["data"]
    assert data["note"].startswith("output not finite (NaN or inf) at N=16, 32, 64") and data["order"] is None
    assert round(rep.order) == 1 and rep.intervals["smooth"]["note"] == ""


def test_auditing_a_k_diffusion_sampler_warns_nothing_about_its_zero_probes(torch):
    """The audit probes a k-diffusion-style sampler from zero starts (to recover its weights): pndmkit's own
    samplers measure a start's scale, and those probes are not a user's start, so no PriorScaleWarning reaches
    the report (it said 'x has root mean square 0, infinitely far below sigmas[0] = 80' twice)."""
    import warnings

    from pndmkit.sampling import PriorScaleWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = audit("pndmkit.integrations.k_diffusion:sample_dpmpp_2m", quick=True)
    assert not [w for w in caught if issubclass(w.category, PriorScaleWarning)], [str(w.message) for w in caught]
    assert rep.order > 1.5  # the audit ran: DPM-Solver++(2M) measured near its order 2
