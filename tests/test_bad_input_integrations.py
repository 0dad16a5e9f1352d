"""Bad input to the diffusers scheduler and the k-diffusion-style samplers: each case names the parameter and its
value (one row per case: the call, the error type, a pattern that must appear in the message)."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from pndmkit import DDIMTransfer, Integrator, METHODS, MethodSpec, register_method, unregister_method  # noqa: E402
from pndmkit.adams import LinearMultistep  # noqa: E402
from pndmkit.methods import get_method  # noqa: E402
from pndmkit.schedules import DiscreteVP  # noqa: E402
from pndmkit.integrations import k_diffusion as K  # noqa: E402
from pndmkit.integrations.diffusers import PNDMKitScheduler, TrainingRangeWarning  # noqa: E402


_DDIM = __import__("diffusers").DDIMScheduler()


def _sched(**kw):
    return PNDMKitScheduler(**kw)


def _stepped(n=10):
    s = PNDMKitScheduler()
    s.set_timesteps(n)
    return s


def _batch_changed(method, keep=None):
    """Four evaluations on a batch of 2, then a batch of 3 (or the first ``keep`` samples)."""
    s = PNDMKitScheduler(method=method, set_alpha_to_one=False, steps_offset=1)
    s.set_timesteps(10)
    x = torch.ones(2, 2)
    for i, t in enumerate(s.timesteps):
        if i == 4:
            x = torch.cat([x, x[:1]]) if keep is None else x[:keep]
        x = s.step(0.1 * x, t, x).prev_sample


def _den(x, sigma):
    return np.full_like(x, 0.5)


SIGMAS = np.append(np.geomspace(80.0, 0.002, 8), 0.0)
Y = 0.5 + 80.0 * np.random.default_rng(0).standard_normal((4, 3))
ONES, ZEROS = torch.ones(2, 2), torch.zeros(2, 2)

CASES = [
    # the noise table
    ("T zero", lambda: _sched(num_train_timesteps=0), ValueError, r"num_train_timesteps must be an integer >= 2.*got 0"),
    ("T fractional", lambda: _sched(num_train_timesteps=1000.7), ValueError,
     r"num_train_timesteps must be an integer >= 2.*got 1000.7"),
    ("T bool", lambda: _sched(num_train_timesteps=True), ValueError, r"num_train_timesteps .*got True"),
    ("betas string", lambda: _sched(trained_betas="abc"), ValueError, r"trained_betas must be a 1-D sequence.*'abc'"),
    ("betas zero", lambda: _sched(trained_betas=[0.0] * 1000), ValueError, r"trained_betas: betas must .*betas\[0\]=0.0"),
    ("betas 2-D", lambda: _sched(trained_betas=[[0.01] * 10] * 100), ValueError, r"trained_betas .*shape \(100, 10\)"),
    ("from_config T", lambda: PNDMKitScheduler.from_config({"num_train_timesteps": -3}, method="ddim"), ValueError,
     r"num_train_timesteps must be an integer >= 2.*got -3"),
    ("from_config methd", lambda: PNDMKitScheduler.from_config(_DDIM.config, methd="unipc-3"), TypeError,
     r"^PNDMKitScheduler.from_config\(\) got an unexpected keyword argument 'methd'; did you mean 'method'\?$"),
    ("from_config field", lambda: PNDMKitScheduler.from_config(_DDIM.config, method="ddim", clip_sampel=False),
     TypeError, r"unexpected keyword argument 'clip_sampel'; did you mean 'clip_sample'\?"),
    # set_timesteps
    ("steps 2.5", lambda: _sched().set_timesteps(2.5), ValueError, r"num_inference_steps must be an integer >= 1, got float 2.5"),
    ("steps string", lambda: _sched().set_timesteps("10"), ValueError, r"num_inference_steps must be .*got str '10'"),
    ("steps bool", lambda: _sched().set_timesteps(True), ValueError, r"num_inference_steps must be .*got bool True"),
    ("timesteps increasing", lambda: _sched().set_timesteps(timesteps=[500, 900]), ValueError,
     r"timesteps must be strictly decreasing .*timesteps\[1\]=900.0 >= timesteps\[0\]=500.0"),
    ("timesteps above the table", lambda: _sched().set_timesteps(timesteps=[2000, 10]), ValueError,
     r"timesteps\[0\]=2000.0 lies outside \(-1, 999\]"),
    ("timesteps fractional above", lambda: _sched().set_timesteps(timesteps=[999.5, 500.25]), ValueError,
     r"timesteps\[0\]=999.5 lies outside \(-1, 999\]"),
    ("timesteps nan", lambda: _sched().set_timesteps(timesteps=[999, float("nan")]), ValueError,
     r"timesteps\[1\]=nan must be finite"),
    ("timesteps at the end", lambda: _sched().set_timesteps(timesteps=[999, 500, -1]), ValueError,
     r"timesteps\[2\]=-1.0 lies outside \(-1, 999\] \(above t=-1, where the last step ends\)"),
    ("timesteps string", lambda: _sched().set_timesteps(timesteps="abc"), ValueError, r"timesteps must be a sequence .*'abc'"),
    # add_noise
    ("add_noise past the table", lambda: _sched().add_noise(ONES, ZEROS, torch.tensor([5000, 5000])), ValueError,
     r"timesteps\[0\]=5000 lies outside the noise table .*\[-1, 999\].*does not extrapolate"),
    ("add_noise negative", lambda: _sched().add_noise(ONES, ZEROS, torch.tensor([-5, -5])), ValueError,
     r"timesteps\[0\]=-5 lies outside the noise table"),
    ("add_noise batch", lambda: _sched().add_noise(ONES, ZEROS, torch.tensor([10, 20, 30])), ValueError,
     r"timesteps has 3 entries for a batch of 2 samples"),
    ("add_noise noise shape", lambda: _sched().add_noise(ONES, torch.zeros(2, 3), torch.tensor([10, 20])), ValueError,
     r"noise of shape \(2, 3\) must have the shape of original_samples, \(2, 2\)"),
    ("add_noise flow", lambda: PNDMKitScheduler.from_config(
        __import__("diffusers").FlowMatchEulerDiscreteScheduler().config, method="euler").add_noise(
        ONES, ZEROS, torch.tensor([1500.0, 10.0])), ValueError, r"timesteps\[0\]=1500.0 lies outside .*\[0, 1000\]"),
    # step
    ("step 2 timesteps", lambda: (lambda s: s.step(torch.zeros(1, 2), s.timesteps[:2], torch.ones(1, 2)))(_stepped()),
     ValueError, r"timestep must be one number .*shape \(2,\)"),
    ("step numpy output", lambda: (lambda s: s.step(np.zeros((1, 2)), s.timesteps[0], torch.ones(1, 2)))(_stepped()),
     TypeError, r"model_output must be a torch.Tensor, got ndarray"),
    ("step numpy sample", lambda: (lambda s: s.step(torch.zeros(1, 2), s.timesteps[0], np.ones((1, 2))))(_stepped()),
     TypeError, r"sample must be a torch.Tensor, got ndarray"),
    ("step string timestep", lambda: (lambda s: s.step(torch.zeros(1, 2), "900", torch.ones(1, 2)))(_stepped()),
     TypeError, r"timestep must be a number .*'900'"),
    ("step output shape", lambda: (lambda s: s.step(torch.zeros(3, 2), s.timesteps[0], torch.ones(2, 2)))(_stepped()),
     ValueError, r"^model_output of shape \(3, 2\) must have the shape of sample, \(2, 2\)"),
    ("step batch grows", lambda: _batch_changed("ipndm"), ValueError,
     r"^step got a sample of shape \(3, 2\) at evaluation 5 of 10, but this sampling loop runs samples of shape "
     r"\(2, 2\): the batch size and sample shape cannot change in the middle of a loop; call set_timesteps"),
    ("step batch shrinks", lambda: _batch_changed("prk", keep=1), ValueError,
     r"^step got a sample of shape \(1, 2\) at evaluation 5 of 40, but this sampling loop runs samples of shape "
     r"\(2, 2\)"),
    # k-diffusion-style samplers
    ("kd list x", lambda: K.sample(_den, Y.tolist(), SIGMAS, disable=True), TypeError,
     r"x must be a torch.Tensor or numpy.ndarray .*got list"),
    ("kd extra_args list", lambda: K.sample(_den, Y, SIGMAS, extra_args=[1, 2], disable=True), TypeError,
     r"extra_args must be a dict .*got list \[1, 2\]"),
    ("kd callback int", lambda: K.sample(_den, Y, SIGMAS, callback=5, disable=True), TypeError,
     r"callback must be callable .*got int 5"),
    ("kd sampler pf", lambda: K.sampler("pf"), ValueError, r"method='pf' is adaptive.*pndmkit.sample"),
    # method=None: the TypeError of pndmkit.sample at every entry point (an AttributeError or "unknown method None")
    ("from_config method None", lambda: PNDMKitScheduler.from_config(_DDIM.config, method=None), TypeError,
     r"^method must be a method name \(pndmkit.METHODS\), a MethodSpec or an Integrator, got NoneType None$"),
    ("scheduler method None", lambda: _sched(method=None), TypeError,
     r"^method must be a method name \(pndmkit.METHODS\), a MethodSpec or an Integrator, got NoneType None$"),
    ("scheduler method estimator", lambda: _sched(method=LinearMultistep(2)), TypeError,
     r"^method must be .* got LinearMultistep .*; an estimator needs a transfer map: method=Integrator\("),
    ("scheduler method adaptive", lambda: _sched(method=get_method("pf").build(DiscreteVP.linear())), TypeError,
     r"^method must be .* got AdaptiveIntegrator .*; an adaptive method chooses its own steps, which this entry "
     r"point lays out itself: give a fixed-step method \(pndmkit.sample runs adaptive ones\)$"),
    ("kd method None", lambda: K.sample(_den, Y, SIGMAS, method=None, disable=True), TypeError,
     r"^method must be a method name \(pndmkit.METHODS\), a MethodSpec or an Integrator, got NoneType None$"),
    ("kd sampler None", lambda: K.sampler(None), TypeError,
     r"^method must be a method name \(pndmkit.METHODS\) or a MethodSpec, got NoneType None$"),
    ("kd sampler_name None", lambda: K.sampler_name(None), TypeError,
     r"^method must be a method name \(pndmkit.METHODS\) or a MethodSpec, got NoneType None$"),
    # a batch of sigma rows: flatten() would join them into one sequence of 18 levels
    ("kd sigmas rows", lambda: K.sample_euler(_den, Y, np.stack([SIGMAS, SIGMAS]), disable=True), TypeError,
     r"^sigmas must be a 1-D sequence of numbers, got ndarray of shape \(2, 9\); sigmas is one sequence of noise "
     r"levels shared by the whole batch .*; a batch of sigma rows is not supported: call the sampler once per row"),
    ("kd sigmas column", lambda: K.sample_euler(_den, Y, SIGMAS[:, None], disable=True), TypeError,
     r"^sigmas must be a 1-D sequence of numbers, got ndarray of shape \(9, 1\); it holds one sequence of levels: "
     r"pass sigmas.flatten\(\)$"),
    ("kd sample_pf", lambda: K.sample_pf, AttributeError, r"sample_pf.*method='pf' is adaptive"),
]


@pytest.mark.parametrize(("name", "call", "error", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(name, call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_good_input_next_to_the_bad_still_works():
    # keywords that are fields of a source's config override it, whichever source they belong to
    s = PNDMKitScheduler.from_config(_DDIM.config, method="unipc-3", clip_sample=False, solver_order=2)
    assert (s.integrator.name, s.config.clip_sample, s.config.solver_order, s.translation.clip) == ("unipc-3", False, 2,
                                                                                                    None)
    s = _sched(num_train_timesteps=1000.0)  # an integral float (JSON) is an integer
    assert s.schedule.num_train_timesteps == 1000
    noisy = s.add_noise(ONES, ZEROS, torch.tensor([10, 20]))  # one timestep per sample
    abar = s.schedule.abar(np.array([10.0, 20.0]))
    np.testing.assert_allclose(noisy[:, 0].numpy(), np.sqrt(abar), rtol=1e-6)
    np.testing.assert_allclose(s.add_noise(ONES, ZEROS, 10).numpy(), np.sqrt(s.schedule.abar(10.0)), rtol=1e-6)
    s.set_timesteps(np.int64(5))
    assert s.num_inference_steps == 5
    s.set_timesteps(timesteps=[999, 500.5, 0])
    assert s.grid.tolist() == [999.0, 500.5, 0.0, -1.0]


def test_a_method_spec_saves_only_when_it_is_the_registered_one(tmp_path):
    fake = MethodSpec("ddim", lambda sc: Integrator(LinearMultistep(4, ramp=True), DDIMTransfer(sc), "ddim"), 2)
    with pytest.raises(TypeError, match=r"MethodSpec named 'ddim' that is not the registered method .*the registered "
                                        r"'ddim'.*under another name"):
        PNDMKitScheduler(method=fake).save_config(tmp_path / "a")
    unregistered = MethodSpec("my-unregistered", fake.build.build, 2)
    with pytest.raises(TypeError, match=r"MethodSpec named 'my-unregistered' .*would build nothing"):
        PNDMKitScheduler(method=unregistered).save_config(tmp_path / "b")
    PNDMKitScheduler(method=METHODS["ipndm"]).save_config(tmp_path / "c")  # the registered spec itself
    assert PNDMKitScheduler.from_pretrained(tmp_path / "c").config.method == "ipndm"
    register_method(unregistered)
    try:  # once registered, the same spec saves and reloads as itself
        PNDMKitScheduler(method=unregistered).save_config(tmp_path / "d")
        back = PNDMKitScheduler.from_pretrained(tmp_path / "d")
        assert back.config.method == "my-unregistered" and back.integrator.name == "my-unregistered"
    finally:
        unregister_method("my-unregistered")


def test_a_saved_config_of_a_plugin_method_says_how_to_load_it(tmp_path):
    """A config names the method that ran; a user's method exists only where its module was imported, so a new
    process that reloads the config was told only "unknown method"."""
    spec = MethodSpec("my-plugin-ddim", lambda sc: Integrator(LinearMultistep(1), DDIMTransfer(sc)), 1)
    register_method(spec)
    try:
        PNDMKitScheduler(method="my-plugin-ddim").save_config(tmp_path)
    finally:
        unregister_method("my-plugin-ddim")  # as in a new process that has not imported the plugin
    with pytest.raises(ValueError, match=r"^unknown method 'my-plugin-ddim'; if a module of your own registers it "
                                         r"\(pndmkit.register_method\), import that module before building the "
                                         r"scheduler from this config: .*PNDMKIT_PLUGINS.*; known methods: ddim, "):
        PNDMKitScheduler.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"^unknown method 'res_multistep': 'res_multistep' names ComfyUI's") as info:
        PNDMKitScheduler(method="res_multistep")  # a reserved name keeps its own answer
    assert "PNDMKIT_PLUGINS" not in str(info.value)


def test_a_generated_article_fits_the_class_name():
    """Messages that name a class chosen at run time said "a EDMEulerScheduler config"."""
    from pndmkit._checks import with_article

    assert [with_article(n) for n in ("EDMEulerScheduler", "LMSDiscreteScheduler", "DDIMScheduler",
                                      "UniPCMultistepScheduler", "EulerDiscreteScheduler", "Integrator", "ndarray",
                                      "Tensor", "UNet2DModel")] == [
        "an EDMEulerScheduler", "an LMSDiscreteScheduler", "a DDIMScheduler", "a UniPCMultistepScheduler",
        "an EulerDiscreteScheduler", "an Integrator", "an ndarray", "a Tensor", "a UNet2DModel"]
    diffusers = __import__("diffusers")
    with pytest.raises(ValueError, match=r"^timesteps= cannot be honoured for an EDMEulerScheduler config: "):
        PNDMKitScheduler.from_config(diffusers.EDMEulerScheduler().config, method="euler").set_timesteps(
            1, timesteps=[5.0])


def test_stages_outside_the_training_indices_warn_and_are_documented():
    s = PNDMKitScheduler(method="f-pndm")  # 2 steps are all Runge-Kutta: stages at -0.5 and -1 (abar = 1)
    with pytest.warns(TrainingRangeWarning, match=r"timesteps \[-0.5, -1.0\], outside its training indices 0..999"):
        s.set_timesteps(2)
    assert s.timesteps.tolist() == [500.0, 250.0, 250.0, 0.0, 0.0, -0.5, -0.5, -1.0]
    for method, kw in (("f-pndm", {}), ("ddim", {}), ("prk", {"set_alpha_to_one": False, "steps_offset": 1})):
        quiet = PNDMKitScheduler(method=method, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("error", TrainingRangeWarning)
            quiet.set_timesteps(10 if method == "f-pndm" else 2)
        assert float(quiet.timesteps.min()) >= 0.0
    assert "TrainingRangeWarning" in PNDMKitScheduler.set_timesteps.__doc__


@pytest.mark.parametrize("tol", [-1.0, float("nan"), True, "0.3"])
def test_check_order_names_a_bad_tolerance_before_it_runs(tol):
    import pndmkit.testing as PT

    with pytest.raises(ValueError, match=rf"tol must be a finite number >= 0 .*got {tol!r}"):
        PT.check_order("ddim", steps=(100, 200), tol=tol)


def test_from_config_hands_unknown_keywords_back_where_asked_as_diffusers_does():
    """With return_unused_kwargs=True an unknown keyword is handed back in ``unused`` (DDIMScheduler's contract),
    not refused; without it the misspelling is refused naming the closest field."""
    diffusers = pytest.importorskip("diffusers")
    theirs, their_unused = diffusers.DDIMScheduler.from_config(_DDIM.config, return_unused_kwargs=True, foo=1)
    ours, unused = PNDMKitScheduler.from_config(_DDIM.config, return_unused_kwargs=True, foo=1, method="ipndm")
    assert their_unused == {"foo": 1} and unused == {"foo": 1}
    assert isinstance(ours, PNDMKitScheduler) and ours.config.method == "ipndm" and "foo" not in ours.config
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'methd'; did you mean 'method'\?"):
        PNDMKitScheduler.from_config(_DDIM.config, methd="ipndm")


@pytest.mark.parametrize("loading", [dict(variant=None), dict(low_cpu_mem_usage=True),
                                     dict(variant=None, low_cpu_mem_usage=True, local_files_only=True)])
def test_from_pretrained_takes_diffusers_loading_keywords(tmp_path, loading):
    """A pipeline's from_pretrained passes its loading keywords to every component; those diffusers' load_config
    does not read reach from_config as leftovers, which diffusers' schedulers leave unused."""
    diffusers = pytest.importorskip("diffusers")
    PNDMKitScheduler.from_config(_DDIM.config, method="ipndm", steps_offset=1).save_pretrained(tmp_path / "scheduler")
    back = PNDMKitScheduler.from_pretrained(tmp_path, subfolder="scheduler", **loading)
    assert back.config.method == "ipndm" and back.config.steps_offset == 1 and back.config.source == "DDIMScheduler"
    _, unused = PNDMKitScheduler.from_pretrained(tmp_path, subfolder="scheduler", return_unused_kwargs=True, **loading)
    _, their_unused = diffusers.DDIMScheduler.from_pretrained(tmp_path, subfolder="scheduler",
                                                              return_unused_kwargs=True, **loading)
    left = {key for key in loading if key in their_unused}
    assert left and {key: unused[key] for key in left} == {key: their_unused[key] for key in left}


def test_from_pretrained_refuses_a_misspelt_override_but_not_a_loading_keyword(tmp_path):
    """from_pretrained(d, methd=...) loaded the saved method and dropped the misspelling silently; it is refused
    naming the closest field, while diffusers' loading keywords still pass (and return_unused_kwargs=True hands an
    unknown keyword back, as diffusers' schedulers do)."""
    PNDMKitScheduler.from_config(_DDIM.config, method="ipndm").save_pretrained(tmp_path)
    with pytest.raises(TypeError, match=r"from_pretrained\(\) got an unexpected keyword argument 'methd'; did you "
                                        r"mean 'method'\?"):
        PNDMKitScheduler.from_pretrained(tmp_path, methd="unipc-3")
    assert PNDMKitScheduler.from_pretrained(tmp_path, method="unipc-3", variant=None).config.method == "unipc-3"
    _, unused = PNDMKitScheduler.from_pretrained(tmp_path, return_unused_kwargs=True, methd="unipc-3")
    assert unused.get("methd") == "unipc-3"


def test_a_source_class_missing_from_the_installed_diffusers_adds_no_field(monkeypatch):
    """The known fields of from_config come from config.init_fields, which reads a class an older diffusers lacks
    as no fields rather than raising."""
    from pndmkit.integrations.diffusers import config, scheduler

    assert config.init_fields("NoSuchScheduler") == frozenset()
    assert "clip_sample" in config.init_fields("DDIMScheduler") and "self" not in config.init_fields("DDIMScheduler")
    monkeypatch.setattr(scheduler, "SOURCES", scheduler.SOURCES + ("NoSuchScheduler",))
    assert PNDMKitScheduler.from_config(_DDIM.config, method="ipndm").config.method == "ipndm"
    with pytest.raises(TypeError, match=r"did you mean 'method'\?"):
        PNDMKitScheduler.from_config(_DDIM.config, methd="ipndm")
