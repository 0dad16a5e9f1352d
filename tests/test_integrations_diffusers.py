"""PNDMKitScheduler in real diffusers pipelines (small configs, random weights, no hub).

For every registered fixed-step method, a pipeline with the scheduler gives what ``pndmkit.sample`` gives
on the same network, schedule, grid and noise, calling the network exactly NFE times at the scheduler's
timesteps (batched in two halves under guidance). ``f-pndm`` and ``plms`` reproduce diffusers' own
``PNDMScheduler`` (both PRK modes), ``ddim`` its ``DDIMScheduler``.
"""

from __future__ import annotations

import ast
import os
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
diffusers = pytest.importorskip("diffusers")

import pndmkit  # noqa: E402
from pndmkit.integrations.diffusers import PNDMKitScheduler, schedule_from_config  # noqa: E402
from pndmkit.methods import METHODS  # noqa: E402
from pndmkit.models import guided  # noqa: E402

pytestmark = [pytest.mark.peers, pytest.mark.torch, pytest.mark.usefixtures("inference")]

FIXED = [name for name, spec in METHODS.items() if not spec.adaptive]


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                 layers_per_block=1, norm_num_groups=4, down_block_types=("DownBlock2D",) * 2,
                                 up_block_types=("UpBlock2D",) * 2).eval()


class Calls(list):
    """Records (batch, timestep) of every forward call of a module while active."""

    def __init__(self, module):
        super().__init__()
        self.handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        x = args[0] if args else kwargs["sample"]
        t = args[1] if len(args) > 1 else kwargs["timestep"]
        self.append((x.shape[0], float(t), x.clone()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def noise(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def eps_of(unet):
    return lambda x, t: unet(x, torch.tensor(t)).sample


def images(x):
    """What DDPM/DDIM/PNDM pipelines return for a final sample with output_type='np'."""
    return (x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()


def assert_float32_close(a, b):
    scale = float(b.abs().max())
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6 * max(scale, 1.0))


# -- unconditional pipelines ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", FIXED)
def test_ddpm_pipeline_equals_sample(unet, name):
    config = diffusers.DDPMScheduler(clip_sample=False).config
    sched = PNDMKitScheduler.from_config(config, method=name)
    pipe = diffusers.DDPMPipeline(unet, sched)
    assert pipe.scheduler is sched
    pipe.set_progress_bar_config(disable=True)
    with Calls(unet) as calls:
        out = pipe(batch_size=2, num_inference_steps=5, generator=torch.Generator().manual_seed(0),
                   output_type="np").images
    assert sched.grid.tolist() == [800, 600, 400, 200, 0, -1]  # leading, no offset, DDPM ends at abar = 1
    sol = pndmkit.sample(eps_of(unet), noise((2, 1, 8, 8)), schedule=sched.schedule, method=name, grid=sched.grid)
    nfe = METHODS[name].build(sched.schedule).nfe(sched.grid)
    assert len(calls) == len(sched.timesteps) == sched.nfe == sol.nfe == nfe
    assert [t for _, t, _ in calls] == sched.timesteps.tolist()
    assert_float32_close(sched.run.solution().x, sol.x)
    np.testing.assert_allclose(out, images(sol.x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["ddim", "f-pndm-s"])
def test_ddim_pipeline_equals_sample_and_ddim_scheduler(unet, name):
    pipe = diffusers.DDIMPipeline(unet, diffusers.DDIMScheduler(clip_sample=False))
    pipe.set_progress_bar_config(disable=True)
    run = lambda: pipe(batch_size=2, num_inference_steps=10, generator=torch.Generator().manual_seed(1),  # noqa: E731
                       output_type="np", eta=0.0).images
    assert type(pipe.scheduler) is diffusers.DDIMScheduler
    theirs = run()
    pipe.scheduler = PNDMKitScheduler.from_config(pipe.scheduler.config, method=name)
    ours = run()
    assert pipe.scheduler.run.done and pipe.scheduler.nfe == METHODS[name].nfe(10)  # pndmkit's run told them all
    sol = pndmkit.sample(eps_of(unet), noise((2, 1, 8, 8), 1), schedule=pipe.scheduler.schedule, method=name,
                         grid=pipe.scheduler.grid)
    assert_float32_close(pipe.scheduler.run.solution().x, sol.x)
    if name == "ddim":  # the same method: equal up to diffusers' float32 tables
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-5)
    else:
        assert np.abs(ours - theirs).max() > 1e-3  # a different method gives a different sample
    with pytest.raises(ValueError, match="eta=0.5"):
        pipe(batch_size=1, num_inference_steps=10, eta=0.5)


@pytest.mark.parametrize("name, skip_prk", [("f-pndm", False), ("plms", True)])
def test_pipeline_reproduces_diffusers_pndm(unet, name, skip_prk):
    theirs_sched = diffusers.PNDMScheduler(steps_offset=1, set_alpha_to_one=False, skip_prk_steps=skip_prk)
    ours_sched = PNDMKitScheduler.from_config(theirs_sched.config, method=name)
    runs = {}
    for label, sched in (("theirs", theirs_sched), ("ours", ours_sched)):
        pipe = diffusers.PNDMPipeline(unet, theirs_sched)
        pipe.scheduler = sched  # PNDMPipeline.__init__ rebuilds any scheduler it is given as a PNDMScheduler
        assert pipe.scheduler is sched
        pipe.set_progress_bar_config(disable=True)
        with Calls(unet) as calls:
            out = pipe(batch_size=2, num_inference_steps=10, generator=torch.Generator().manual_seed(2),
                       output_type="np").images
        runs[label] = (calls, out)
    (c_theirs, out_theirs), (c_ours, out_ours) = runs["theirs"], runs["ours"]
    # each side ran its own scheduler: pndmkit's run told every evaluation, diffusers' counted its own steps
    assert type(theirs_sched) is diffusers.PNDMScheduler and theirs_sched.counter == len(c_theirs)
    assert ours_sched.run.done and ours_sched.nfe == len(c_ours)
    assert len(c_ours) == len(c_theirs) == METHODS[name].nfe(10)  # 19 with PRK, 11 with PIE
    assert [t for _, t, _ in c_ours] == [t for _, t, _ in c_theirs]
    for (_, _, x_ours), (_, _, x_theirs) in zip(c_ours, c_theirs):
        torch.testing.assert_close(x_ours, x_theirs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out_ours, out_theirs, rtol=0, atol=2e-5)


# -- text to image under guidance ------------------------------------------------------------------------
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
    embeds = noise((1, 4, 16), 3), noise((1, 4, 16), 4)  # prompt, negative prompt
    return unet, vae, text, embeds


def sd_pipe(parts, sched):
    unet, vae, text, _ = parts
    pipe = diffusers.StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=None, unet=unet, scheduler=sched,
                                             safety_checker=None, feature_extractor=None,
                                             requires_safety_checker=False)
    assert pipe.scheduler is sched  # the pipeline runs the scheduler it was given
    pipe.set_progress_bar_config(disable=True)
    return pipe


SD_CONFIG = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1,
                 set_alpha_to_one=False)


@pytest.mark.parametrize("scale", [1.0, 7.5])
@pytest.mark.parametrize("name", FIXED)
def test_stable_diffusion_equals_guided_sample(sd_parts, name, scale, prediction="epsilon"):
    unet, _, _, (prompt, negative) = sd_parts
    sched = PNDMKitScheduler(method=name, prediction_type=prediction, **SD_CONFIG)
    latents = noise((1, 4, 8, 8), 5)
    with Calls(unet) as calls:
        out = sd_pipe(sd_parts, sched)(prompt_embeds=prompt, negative_prompt_embeds=negative, guidance_scale=scale,
                                       num_inference_steps=5, latents=latents, height=16, width=16,
                                       output_type="latent").images
    assert sched.grid.tolist() == [801, 601, 401, 201, 1, 0]

    def net(x, t, encoder_hidden_states):
        return unet(x, torch.tensor(t), encoder_hidden_states=encoder_hidden_states).sample

    kind = {"epsilon": "eps", "v_prediction": "v"}[prediction]
    model = guided(net, scale, {"encoder_hidden_states": negative}, schedule=sched.schedule, prediction=kind)
    sol = pndmkit.sample(model, latents, schedule=sched.schedule, method=name, grid=sched.grid,
                         model_kwargs={"encoder_hidden_states": prompt})
    assert len(calls) == sol.nfe == len(sched.timesteps) == sched.nfe and sched.run.done  # pndmkit's run told them
    assert {batch for batch, _, _ in calls} == {2 if scale > 1 else 1}
    assert_float32_close(out, sol.x)


def test_stable_diffusion_v_prediction(sd_parts):
    test_stable_diffusion_equals_guided_sample(sd_parts, "f-pndm-s", 7.5, prediction="v_prediction")


# -- config mapping and refusals ---------------------------------------------------------------------------
@pytest.mark.parametrize("beta_schedule", ["linear", "scaled_linear", "squaredcos_cap_v2"])
def test_schedule_equals_diffusers_table(beta_schedule):
    theirs = diffusers.DDPMScheduler(beta_schedule=beta_schedule, beta_start=0.00085, beta_end=0.012)
    ours = schedule_from_config(theirs.config)
    np.testing.assert_allclose(ours.betas, theirs.betas.double().numpy(), rtol=1e-6)  # theirs are float32
    trained = PNDMKitScheduler(trained_betas=ours.betas)
    assert np.array_equal(trained.schedule.alphas_cumprod, ours.alphas_cumprod)


@pytest.mark.parametrize("config, field", [
    (dict(clip_sample=False, rescale_betas_zero_snr=True), "rescale_betas_zero_snr"),
    (dict(clip_sample=False, thresholding=True), "thresholding"),
    (dict(clip_sample=False, beta_schedule="sigmoid"), "beta_schedule"),
    (dict(clip_sample=False, prediction_type="flow"), "prediction_type"),
    (dict(clip_sample=False, timestep_spacing="middle"), "timestep_spacing"),
])
def test_unhonourable_config_is_refused_by_field(config, field):
    base = {key: value for key, value in diffusers.DDPMScheduler().config.items() if not key.startswith("_")}
    with pytest.raises(ValueError, match=field):
        PNDMKitScheduler.from_config({**base, **config}, method="ddim")
    assert PNDMKitScheduler.from_config({**base, **config}, method="ddim", **{field: base[field]}).config.method \
        == "ddim"  # the message's override works


@pytest.mark.parametrize("offset", [0, 1])
def test_leading_multistep_spacing_takes_steps_offset_as_the_multistep_schedulers_do(offset):
    """A config of pndmkit's own with ``timestep_spacing="leading-multistep"`` lays out
    ``DPMSolverMultistepScheduler``'s ``"leading"`` timesteps, ``steps_offset`` included (not dropped)."""
    ours = PNDMKitScheduler(method="dpm-solver++-3m", timestep_spacing="leading-multistep", steps_offset=offset)
    theirs = diffusers.DPMSolverMultistepScheduler(timestep_spacing="leading", steps_offset=offset)
    for steps in (5, 6, 20):
        ours.set_timesteps(steps)
        theirs.set_timesteps(steps)
        assert ours.timesteps.tolist() == theirs.timesteps.tolist() == [k * (1000 // (steps + 1)) + offset
                                                                         for k in range(steps, 0, -1)]


def test_zero_length_last_step_names_the_fields():
    sched = PNDMKitScheduler(steps_offset=0, set_alpha_to_one=False)
    with pytest.raises(ValueError, match="steps_offset=0.*set_alpha_to_one=False"):
        sched.set_timesteps(10)


def test_adaptive_method_and_foreign_integrator_are_refused():
    with pytest.raises(ValueError, match="adaptive"):
        PNDMKitScheduler(method="pf")
    with pytest.raises(ValueError, match="schedule_from_config"):
        PNDMKitScheduler(method=METHODS["ddim"].build(pndmkit.LinearVP()))


def test_hand_built_integrator_runs_and_cannot_be_saved(tmp_path):
    config = dict(PNDMKitScheduler(**SD_CONFIG).config)
    integrator = pndmkit.Integrator(pndmkit.RungeKutta(pndmkit.tableaus.HEUN, variable="native"),
                                    pndmkit.DDIMTransfer(schedule_from_config(config)), "pie-s")
    sched = PNDMKitScheduler.from_config(config, method=integrator)
    sched.set_timesteps(4)
    assert len(sched.timesteps) == integrator.nfe(sched.grid) == 8
    with pytest.raises(TypeError, match="register_method"):
        sched.save_pretrained(tmp_path)


def test_save_and_load_round_trip(tmp_path):
    sched = PNDMKitScheduler(method="f-pndm-s", prediction_type="v_prediction", **SD_CONFIG)
    sched.save_pretrained(tmp_path)
    back = PNDMKitScheduler.from_pretrained(tmp_path)
    assert back.config.method == "f-pndm-s" and back.config.prediction_type == "v_prediction"
    for s in (sched, back):
        s.set_timesteps(7)
    assert torch.equal(sched.timesteps, back.timesteps)


# -- the stepping contract ---------------------------------------------------------------------------------
def loop(sched, x, model, start=0):
    for t in sched.timesteps[start:]:
        x = sched.step(model(x, float(t)), t, x).prev_sample
    return x


def toy(x, t):
    return torch.tanh(x) * (1 + 1e-3 * t)


def test_runs_share_nothing():
    config = PNDMKitScheduler(method="f-pndm", **SD_CONFIG).config
    a, b = PNDMKitScheduler.from_config(config), PNDMKitScheduler.from_config(config)
    x = noise((2, 3))
    alone = (a.set_timesteps(10), loop(a, x, toy))[1]
    a.set_timesteps(10)  # again: a fresh loop
    b.set_timesteps(10)
    xa, xb = x, 2 * x
    for t in a.timesteps:  # interleaved loops of two schedulers of one config
        xa = a.step(toy(xa, float(t)), t, xa).prev_sample
        xb = b.step(toy(xb, float(t)), t, xb).prev_sample
    assert torch.equal(xa, alone)
    assert torch.equal(xb, (b.set_timesteps(10), loop(b, 2 * x, toy))[1])


def test_timesteps_are_integers_on_training_indices_and_fractional_otherwise():
    sched = PNDMKitScheduler(method="f-pndm", **SD_CONFIG)
    sched.set_timesteps(10)
    assert sched.timesteps.dtype == torch.int64 and sched.timesteps[:4].tolist() == [901, 851, 851, 801]
    sched = PNDMKitScheduler(method="prk-s", **SD_CONFIG)
    sched.set_timesteps(10)
    assert sched.timesteps.dtype == torch.float32
    assert not float(sched.timesteps[1]).is_integer() and 801 < float(sched.timesteps[1]) < 901


def test_step_refuses_misuse():
    sched = PNDMKitScheduler(method="prk", **SD_CONFIG)
    x = noise((1, 3))
    with pytest.raises(RuntimeError, match="set_timesteps"):
        sched.step(x, 901, x)
    sched.set_timesteps(5)
    out = sched.step(toy(x, 801), 801, x).prev_sample
    with pytest.raises(ValueError, match="timestep=700.*t=701"):
        sched.step(toy(out, 700), 700, out)
    with pytest.raises(ValueError, match="middle of a step"):
        sched.step(toy(out, 701), 701, out + 1)
    sched.set_timesteps(1)
    y = loop(sched, x, toy)
    with pytest.raises(RuntimeError, match="over"):
        sched.step(y, 0, y)


def test_changed_sample_at_a_step_start_is_followed():
    """An inpainting-style pipeline edits the sample between steps: each step starts from the edited one."""
    sched = PNDMKitScheduler(method="ipndm", **SD_CONFIG)
    sched.set_timesteps(6)
    x = noise((1, 4))
    edit = lambda x: torch.cat([torch.zeros(1, 1), x[:, 1:]], dim=1)  # noqa: E731
    for t in sched.timesteps:
        x = sched.step(toy(x, float(t)), t, x).prev_sample
        x = edit(x)
    assert sched.nfe == 6
    # the same by hand: ipndm's history is kept across the edits, each step restarts from the edited sample
    integrator = METHODS["ipndm"].build(sched.schedule)
    run, y = integrator.start(noise((1, 4)), sched.grid), None
    while not run.done:
        x_eval, t_eval = run.ask()
        run = run.tell(toy(x_eval, t_eval))
        if not run.done:
            y = edit(run.x)
            run = integrator.start(y, run.times[run.index:], estimator_state=run.state)
    torch.testing.assert_close(x[:, 1:], run.solution().x[:, 1:], rtol=0, atol=0)


def test_add_noise_and_begin_index():
    sched = PNDMKitScheduler(method="ddim", **SD_CONFIG)
    theirs = diffusers.DDIMScheduler(**SD_CONFIG, clip_sample=False)
    x0, z = noise((2, 3), 1), noise((2, 3), 2)
    t = torch.tensor([601, 201])
    torch.testing.assert_close(sched.add_noise(x0, z, t), theirs.add_noise(x0, z, t), rtol=1e-5, atol=1e-6)
    sched.set_timesteps(10)
    sched.set_begin_index(4)  # strength 0.6 of 10 steps: start at the fifth step
    x = sched.add_noise(x0, z, sched.timesteps[4:5])
    ours = loop(sched, x, toy, start=4)
    sol = pndmkit.sample(toy, x, schedule=sched.schedule, method="ddim", grid=sched.grid[4:])
    assert sched.nfe == sol.nfe == 6
    torch.testing.assert_close(ours, sol.x, rtol=0, atol=0)
    fpndm = PNDMKitScheduler(method="f-pndm", **SD_CONFIG)
    fpndm.set_timesteps(10)
    with pytest.raises(ValueError, match="begin_index=1.*inside a step"):
        fpndm.set_begin_index(1)
    with pytest.raises(ValueError, match="begin_index=15.*warm-up"):
        fpndm.set_begin_index(15)


def test_begin_index_lowers_final_steps_by_the_whole_grid():
    """A few_steps threshold counts the steps set_timesteps laid out, not those image-to-image keeps: 20 steps at
    strength 0.5 run the last 10 with the body alone (20 >= 15), as a fresh run of the body on them; 10 steps
    keep the finals, as a fresh run of the whole method on the last 5."""
    from pndmkit.adams import LinearMultistep
    from pndmkit.estimators import Final, Single
    from pndmkit.transfers import DDIMTransfer

    schedule = schedule_from_config(SD_CONFIG)
    body = LinearMultistep(4)
    lowered = pndmkit.Integrator(Final(body, (Single(), LinearMultistep(2)), few_steps=15), DDIMTransfer(schedule))
    plain = pndmkit.Integrator(body, DDIMTransfer(schedule))
    x0, z = noise((2, 3), 1), noise((2, 3), 2)
    for steps, begin, expected in ((20, 10, plain), (10, 5, lowered)):
        sched = PNDMKitScheduler(method=lowered, **SD_CONFIG)
        sched.set_timesteps(steps)
        sched.set_begin_index(begin)
        x = sched.add_noise(x0, z, sched.timesteps[begin:begin + 1])
        ours = loop(sched, x, toy, start=begin)
        sol = pndmkit.sample(toy, x, schedule=schedule, method=expected, grid=sched.grid[begin:])
        other = pndmkit.sample(toy, x, schedule=schedule, method=plain if expected is lowered else lowered,
                               grid=sched.grid[begin:])
        assert sched.nfe == sol.nfe == steps - begin and sched.run.done
        torch.testing.assert_close(ours, sol.x, rtol=0, atol=0)
        assert float((other.x - sol.x).abs().max()) > 1e-4  # the other choice is another sample


@pytest.mark.parametrize("source, overrides, fixes", [
    ("DDIMScheduler", {"set_alpha_to_one": False}, ("steps_offset=1", "set_alpha_to_one=True")),
    ("PNDMScheduler", {}, ("steps_offset=1", "set_alpha_to_one=True")),  # set_alpha_to_one=False by default
    ("DDIMScheduler", {"set_alpha_to_one": False, "timestep_spacing": "linspace"},
     ("timestep_spacing='trailing'", "set_alpha_to_one=True")),
])
def test_a_grid_whose_only_step_has_length_zero_is_refused_with_the_values_that_work(source, overrides, fixes):
    """One step that starts at t=0 (leading spacing with steps_offset=0, or linspace) and ends there
    (set_alpha_to_one=False) leaves no step to take: refused naming the values that lengthen it; each of them then
    works. (With more steps that last step of length zero is left out, as the source's identity step.)"""
    config = getattr(diffusers, source)().config
    with pytest.raises(ValueError, match="not strictly decreasing") as err:
        PNDMKitScheduler.from_config(config, method="ipndm", **overrides).set_timesteps(1)
    text = str(err.value)
    for fix in fixes:
        assert f"pass {fix}" in text or f"or {fix}" in text, (fix, text)
        key, value = fix.split("=")
        ok = PNDMKitScheduler.from_config(config, method="ipndm", **{**overrides, key: ast.literal_eval(value)})
        ok.set_timesteps(1)
        assert len(ok.timesteps) == 1 and np.all(np.diff(ok.grid) < 0)


@pytest.mark.parametrize("steps_offset", [0, 1])
def test_a_linspace_ddpm_grid_ending_at_abar_0_is_refused_with_advice_that_works(steps_offset):
    """DDPM has no set_alpha_to_one field; pndmkit honours it, and on 'linspace' spacing (which ignores
    steps_offset) the refusal names timestep_spacing='trailing', which then runs."""
    config = {**diffusers.DDPMScheduler(clip_sample=False).config, "set_alpha_to_one": False,
              "timestep_spacing": "linspace", "steps_offset": steps_offset}
    with pytest.raises(ValueError, match=r"pass timestep_spacing='trailing' \('linspace' spacing ignores "
                                         r"steps_offset.*or set_alpha_to_one=True"):
        PNDMKitScheduler.from_config(config, method="ipndm").set_timesteps(10)
    for fix in ({"timestep_spacing": "trailing"}, {"set_alpha_to_one": True}):
        ok = PNDMKitScheduler.from_config({**config, **fix}, method="ipndm")
        ok.set_timesteps(10)
        assert len(ok.timesteps) == 10 and np.all(np.diff(ok.grid) < 0)


@pytest.mark.parametrize("source", ["DDIMScheduler", "DDPMScheduler"])
@pytest.mark.parametrize("method, steps", [("pie", 10), ("prk", 10), ("rk4", 10), ("pec-s", 10), ("pec-s-ramp", 10),
                                           ("pece-s", 10), ("f-pndm", 2)])
def test_clip_sample_is_refused_by_name_where_the_method_evaluates_at_abar_one(source, method, steps):
    import warnings

    config = getattr(diffusers, source)().config  # clip_sample=True by default
    sched = PNDMKitScheduler.from_config(config, method=method)
    with pytest.raises(ValueError) as err:
        sched.set_timesteps(steps)
    text = str(err.value)
    # leading spacing, steps_offset=0 by default: DDIM's own grid then ends with a step of length zero, which the
    # swap leaves out as the source's identity; pndmkit's end at abar_0 for DDPM needs steps_offset=1
    alpha = ("set_alpha_to_one=False (the last step ends at t=0)" if source == "DDIMScheduler" else
             "set_alpha_to_one=False with steps_offset=1")
    for part in ("clip_sample=True", f"method={method!r}", "clip_sample=False", "ipndm", "t=-1", alpha):
        assert part in text, (part, text)
    assert "x0-prediction model" not in text  # the user's model predicts eps: the message says why x0 arises
    # each advice works: without clipping, or with the last step ending at t = 0, the run goes through
    for fix in ({"clip_sample": False}, {"set_alpha_to_one": False, "steps_offset": 1}, {"set_alpha_to_one": False}):
        if "steps_offset" not in fix and source == "DDPMScheduler":
            continue
        ok = PNDMKitScheduler.from_config(config, method=method, **fix)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok.set_timesteps(steps)
        x = torch.ones(1, 2)
        calls = 0
        for t in ok.timesteps:
            calls += 1
            x = ok.step(0.1 * x, t, x).prev_sample
        assert calls == ok.nfe and torch.isfinite(x).all()


@pytest.mark.parametrize("source", ["DDPMScheduler", "DPMSolverMultistepScheduler"])
def test_set_alpha_to_one_false_ends_the_grid_at_t_zero_for_configs_without_the_field(source):
    import warnings

    from pndmkit.integrations.diffusers import TrainingRangeWarning

    # a 'leading' grid needs steps_offset=1 to end at t = 0, as the warning says
    config = getattr(diffusers, source)(clip_sample=False, steps_offset=1).config if source == "DDPMScheduler" \
        else getattr(diffusers, source)().config
    default = PNDMKitScheduler.from_config(config, method="pie")
    with pytest.warns(TrainingRangeWarning, match="set_alpha_to_one=False"):
        default.set_timesteps(10)
    assert default.grid[-1] == -1.0
    honoured = PNDMKitScheduler.from_config(config, method="pie", set_alpha_to_one=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingRangeWarning)  # the warning's advice silences it
        honoured.set_timesteps(10)
    assert honoured.grid[-1] == 0.0 and np.array_equal(honoured.grid[:-1], default.grid[:-1])
    assert min(float(t) for t in honoured.timesteps) >= 0.0


@pytest.mark.parametrize("source, overrides, method, walked", [
    ("DDIMScheduler", {"clip_sample": True, "set_alpha_to_one": False, "steps_offset": 1}, "pie", "eps"),  # x0-told
    ("DDIMScheduler", {"prediction_type": "v_prediction"}, "f-pndm", "eps"),
    ("FlowMatchEulerDiscreteScheduler", {}, "dpm-solver++-2m", "flow"),  # from t = 1, where eps says nothing of x0
])
def test_set_timesteps_walks_the_protocol_once(monkeypatch, source, overrides, method, walked):
    """The refusal of evaluations without eps and the list of timesteps share one dry run (the eps walk, or
    the told prediction's from alpha = 0), which a second set_timesteps of the same grid does not repeat."""
    import warnings

    import pndmkit.integrator as integrator_module

    walks = []
    real = integrator_module._walk
    monkeypatch.setattr(integrator_module, "_walk", lambda *a: walks.append(a[2]) or real(*a))
    integrator_module._cached_walk.cache_clear()
    sched = PNDMKitScheduler.from_config(getattr(diffusers, source)(**overrides).config, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched.set_timesteps(10)
        first = sched.timesteps.tolist()
        sched.set_timesteps(10)
    assert walks == [walked] and sched.timesteps.tolist() == first
    assert len(first) == (sched.integrator.nfe(sched.grid) if walked == "eps" else 10)  # one evaluation a step


def _advised(message):
    """The changes a refusal advises, in its order: the ``field=value`` alternatives after "pass" (one joined to the
    next by "with" is one change), then each method of a "(a, b, ...)" list, as dicts of config changes."""
    import re

    text = message[message.lower().index("pass "):]
    methods = [{"method": name} for group in re.findall(r"\(((?:[\w+.-]+, )+)\.\.\.\)", text)
               for name in group.split(", ") if name]
    while "(" in text:  # drop the notes in parentheses (they name the current fields)
        text = re.sub(r"\([^()]*\)", "", text)
    changes = []
    for part in re.split(r",? or |, |; ", text):
        pairs = re.findall(r"(\w+)=('[^']*'|True|False|\d+)", part)
        if pairs:
            changes.append({key: ast.literal_eval(value) for key, value in pairs})
    return changes + methods


@pytest.mark.parametrize("source, config, method, steps, advised", [
    # the loop that was: set_alpha_to_one=True alone led to the clip_sample refusal of pie at abar = 1
    ("DDPMScheduler", dict(clip_sample=True, set_alpha_to_one=False, timestep_spacing="linspace"), "pie", 10,
     [{"timestep_spacing": "trailing"}, {"set_alpha_to_one": True, "clip_sample": False}]),
    # DDIM's linspace grid ending at abar_0 ends with a step of length zero, left out: no second change needed
    ("DDIMScheduler", dict(clip_sample=True, timestep_spacing="linspace"), "pie", 10,
     [{"clip_sample": False}, {"set_alpha_to_one": False}, {"method": "ipndm"}, {"method": "plms"},
      {"method": "ddim"}]),
    # an x0-predicting network: clip_sample=False would leave pie at abar = 1, so it is not advised
    ("DDIMScheduler", dict(prediction_type="sample"), "pie", 10,
     [{"set_alpha_to_one": False}, {"method": "ipndm"}, {"method": "plms"}, {"method": "ddim"}]),
    # plms's one step is a Runge-Kutta step that evaluates at its end: plms is not among the methods advised
    ("DDIMScheduler", dict(), "plms", 1,
     [{"clip_sample": False}, {"set_alpha_to_one": False, "steps_offset": 1}, {"method": "ipndm"},
      {"method": "ddim"}, {"method": "dpm-solver++-2m"}]),
    ("DDPMScheduler", dict(timestep_spacing="linspace", set_alpha_to_one=False), "prk", 10,
     [{"timestep_spacing": "trailing"}, {"set_alpha_to_one": True, "clip_sample": False}]),
    ("DPMSolverMultistepScheduler", dict(prediction_type="sample"), "pie", 10,
     [{"set_alpha_to_one": False}, {"final_sigmas_type": "sigma_min"}, {"method": "ipndm"}, {"method": "plms"},
      {"method": "ddim"}]),
    (None, dict(prediction_type="sample", set_alpha_to_one=False, timestep_spacing="linspace"), "pie", 10,
     [{"timestep_spacing": "trailing"}, {"set_alpha_to_one": True, "method": "ipndm"}]),
])
def test_every_advice_of_a_refusal_runs_when_followed(source, config, method, steps, advised):
    """Each change a set_timesteps refusal advises, applied alone, gives a scheduler whose whole loop runs: no
    advice leads to another refusal (it names the second change where one is needed)."""
    import warnings

    def scheduler(changes):
        changes = dict(changes)
        name = changes.pop("method", method)
        if source is None:
            return PNDMKitScheduler(method=name, **{**config, **changes})
        return PNDMKitScheduler.from_config({**getattr(diffusers, source)().config, **config, **changes}, method=name)

    with pytest.raises(ValueError) as err:
        scheduler({}).set_timesteps(steps)
    assert _advised(str(err.value)) == advised, str(err.value)
    for changes in advised:
        ok = scheduler(changes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok.set_timesteps(steps)
        x = torch.ones(1, 2)
        for t in ok.timesteps:
            x = ok.step(0.1 * x, t, x).prev_sample
        assert ok.run.done and ok.nfe == len(ok.timesteps) and torch.isfinite(x).all(), changes


@pytest.mark.parametrize("variance_type", ["learned", "learned_range"])
def test_a_learned_variance_output_is_read_by_its_prediction_half_as_diffusers_does(variance_type):
    """A DDPM config with a learned variance (IF-style networks output 2C channels: the prediction, then the
    variance) is stepped on the first C channels, the half DDPMScheduler.step takes as its prediction: a DDIM
    run matches DDIMScheduler told that half, and the first step matches the DDIM update of the x0 DDPMScheduler
    derives from the 2C output."""
    config = diffusers.DDPMScheduler(variance_type=variance_type, clip_sample=False).config
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    variance = 1e3 * torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)  # wrong half: a loud mismatch

    def eps(x, t):
        return 0.1 * x + 1e-3 * float(t)

    ours = PNDMKitScheduler.from_config(config, method="ddim")
    theirs = diffusers.DDIMScheduler.from_config(config)  # same table and spacing; ends at abar = 1 like DDPM
    ours.set_timesteps(10)
    theirs.set_timesteps(10)
    assert ours.timesteps.tolist() == theirs.timesteps.tolist()
    x, y = x0.clone(), x0.clone()
    for i, t in enumerate(ours.timesteps):
        if i == 0:  # the x0 DDPMScheduler derives from the 2C output, carried one DDIM step
            ddpm = diffusers.DDPMScheduler.from_config(config)
            ddpm.set_timesteps(10)
            e = eps(x, t)
            x0_hat = ddpm.step(torch.cat([e, variance], dim=1), t, x, generator=gen).pred_original_sample
            a_next = float(ddpm.alphas_cumprod[int(t) - 100])
            first = a_next ** 0.5 * x0_hat + (1 - a_next) ** 0.5 * e
        x = ours.step(torch.cat([eps(x, t), variance], dim=1), t, x).prev_sample
        if i == 0:
            torch.testing.assert_close(x, first, rtol=1e-5, atol=1e-6)  # diffusers keeps its table in float32
        y = theirs.step(eps(y, t), t, y).prev_sample
    torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


def test_a_doubled_output_without_a_learned_variance_is_refused_naming_variance_type():
    sched = PNDMKitScheduler.from_config(diffusers.DDPMScheduler(clip_sample=False).config, method="ddim")
    sched.set_timesteps(10)
    x = torch.ones(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"^model_output of shape \(2, 6, 4, 4\) must have the shape of sample, "
                                         r"\(2, 3, 4, 4\) .*variance_type='fixed_small'.*'learned' or 'learned_range'"):
        sched.step(torch.ones(2, 6, 4, 4), sched.timesteps[0], x)
    learned = PNDMKitScheduler.from_config(diffusers.DDPMScheduler(clip_sample=False, variance_type="learned_range")
                                           .config, method="ddim")
    learned.set_timesteps(10)
    with pytest.raises(ValueError, match=r"shape \(2, 5, 4, 4\) must have the shape of sample, \(2, 3, 4, 4\) .*, "
                                         r"or \(2, 6, 4, 4\) \(the prediction and its learned variance, with "
                                         r"variance_type='learned_range'\)"):
        learned.step(torch.ones(2, 5, 4, 4), learned.timesteps[0], x)


@pytest.mark.parametrize("case", ["native leading", "DDPM linspace", "clip_sample leading", "clip_sample linspace"])
def test_every_zero_length_last_step_refusal_gives_the_one_advice(case):
    """The advice that lengthens a last step starting at t=0 has one wording, config.zero_length_fix, wherever
    it is given: the native grid, the DDPM end that pndmkit moves to abar_0, and the change a clip_sample refusal
    proposes (a source's own grid with such a step, DDIM's or PNDM's, leaves the step out and runs)."""
    from pndmkit.integrations.diffusers.config import zero_length_fix

    spacing = case.split()[-1]
    if case == "native leading":
        make = lambda: PNDMKitScheduler(method="ipndm", steps_offset=0, set_alpha_to_one=False)  # noqa: E731
    elif case.startswith("clip_sample"):
        config = diffusers.DDPMScheduler(timestep_spacing=spacing).config  # clip_sample=True by default
        make = lambda: PNDMKitScheduler.from_config(config, method="pie")  # noqa: E731
    else:
        source = getattr(diffusers, case.split()[0] + "Scheduler")
        config = {**source(clip_sample=False, timestep_spacing=spacing).config, "set_alpha_to_one": False}
        make = lambda: PNDMKitScheduler.from_config(config, method="ipndm")  # noqa: E731
    with pytest.raises(ValueError) as err:
        make().set_timesteps(10)
    text = str(err.value)
    if case.startswith("clip_sample"):
        expected = f"set_alpha_to_one=False with {zero_length_fix(spacing)[1]}"
    else:
        expected = f"pass {zero_length_fix(spacing, 'set_alpha_to_one=True')[1]}"
    assert expected in text, (expected, text)


@pytest.mark.parametrize("begin_index", [2.5, 2.0, True, "2"])
def test_set_begin_index_refuses_a_non_integer_by_name(begin_index):
    """set_begin_index(2.5) was floored to 2: a non-integer (a bool too) is refused naming begin_index; an integer
    of any integral type (numpy's included) is taken."""
    import re

    sched = PNDMKitScheduler.from_config(diffusers.DPMSolverMultistepScheduler().config, method="dpm-solver++-2m")
    sched.set_timesteps(10)
    with pytest.raises(ValueError, match=rf"^begin_index must be an integer \(an index into timesteps\), got "
                                         rf"{type(begin_index).__name__} {re.escape(repr(begin_index))}$"):
        sched.set_begin_index(begin_index)
    assert sched.begin_index is None
    sched.set_begin_index(np.int64(2))
    assert sched.begin_index == 2 and type(sched.begin_index) is int


@pytest.mark.parametrize("source, steps, most", [("DPMSolverMultistepScheduler", 2000, 999),
                                                 ("DPMSolverMultistepScheduler", 1000, 999),
                                                 ("UniPCMultistepScheduler", 2000, 999)])
def test_more_steps_than_distinct_timesteps_are_refused_with_the_range(source, steps, most):
    """DPMSolverMultistepScheduler at 2000 steps of 1000 lists each timestep twice (1000 distinct): the swap took
    1000 steps silently, where 2000 evaluations were asked. Refused naming the count and the range that runs; its
    top runs with as many evaluations as steps."""
    config = getattr(diffusers, source)().config
    theirs = getattr(diffusers, source)()
    theirs.set_timesteps(steps)
    distinct = len(torch.unique(theirs.timesteps))
    assert distinct < steps
    values, counts = torch.unique(theirs.timesteps, return_counts=True)
    twice = sorted(values[counts > 1].tolist(), reverse=True)
    named = f"timestep {twice[0]}" if len(twice) == 1 else f"timesteps {', '.join(map(str, twice[:4]))}, ..."
    sched = PNDMKitScheduler.from_config(config, method="ddim")
    with pytest.raises(ValueError, match=rf"^num_inference_steps={steps} cannot be honoured on a {source} config "
                                         rf"\(num_train_timesteps=1000\): its grid lists {re.escape(named)}.* "
                                         rf"twice, where the source steps by length zero .*nothing is lost.*: "
                                         rf"{distinct} distinct, .* not the {steps} asked; pass num_inference_steps "
                                         rf"in \[1, {most}\]$"):
        sched.set_timesteps(steps)
    assert sched.timesteps is None
    sched.set_timesteps(most)
    assert len(sched.timesteps) == most and len(torch.unique(sched.timesteps)) == most


@pytest.mark.parametrize("source, kwargs, message", [
    # NaN was cast to int64 first: "t=-9.223372036854776e+18 lies outside ..."
    ("DPMSolverMultistepScheduler", dict(timesteps=[900, float("nan"), 100]), r"timesteps[1]=nan must be finite"),
    ("DDIMScheduler", dict(timesteps=[900, float("nan"), 100]), r"timesteps[1]=nan must be finite"),
    ("EulerDiscreteScheduler", dict(sigmas=[10.0, float("inf"), 0.1, 0.0]), r"sigmas[1]=inf must be finite"),
    # Euler's source read them and pndmkit's time failed on its output: "log abar=... is outside", "s must be >= 0"
    ("EulerDiscreteScheduler", dict(sigmas=[1e6, 0.0]),
     "sigmas[0]=1000000.0 lies outside (0, 157.4072808104075], the noise levels sqrt((1 - abar) / abar)"),
    ("EulerDiscreteScheduler", dict(sigmas=[-1.0, 0.0]), "sigmas[0]=-1.0 lies outside (0, 157.4072808104075]"),
    ("EulerDiscreteScheduler", dict(sigmas=[0.1, 1.0]),
     "sigmas must be strictly decreasing (from noise to data); sigmas[1]=1.0 >= sigmas[0]=0.1"),
    # the shifted time was named: "t=1.125 lies outside [0,1]"
    ("FlowMatchEulerDiscreteScheduler", dict(sigmas=[1.5, 0.5, 0.1]),
     "sigmas[0]=1.5 lies outside (0, 1], the noise levels of a flow-matching config"),
    # the VP grid message (timestep_spacing, steps_offset, abar_0) was given
    ("FlowMatchEulerDiscreteScheduler", dict(sigmas=[0.1, 0.5, 0.9]),
     "sigmas must be strictly decreasing (from noise to data); sigmas[1]=0.5 >= sigmas[0]=0.1"),
])
def test_bad_custom_entries_are_named_as_given(source, kwargs, message):
    config = getattr(diffusers, source)(**({"shift": 3.0} if source.startswith("Flow") else {})).config
    sched = PNDMKitScheduler.from_config(config, method="euler" if source.startswith("Flow") else "ddim")
    with pytest.raises(ValueError) as err:
        sched.set_timesteps(**kwargs)
    assert str(err.value).startswith(message), str(err.value)
    assert "steps_offset" not in str(err.value) and "e+18" not in str(err.value)


def test_a_flow_shift_that_is_zero_or_degenerate_is_named():
    """shift=0.0 was read as 1 for pndmkit's schedule while the source's grid was NaN, and shift=1e-9 (valid, but
    the source's float32 shift of its sigmas gives NaN) got the VP grid message: now 'shift must be > 0' and a
    message naming the shift and the NaN levels."""
    flow = diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0).config
    with pytest.raises(ValueError, match=r"^shift must be a finite number > 0 \(the flow-matching time shift, "
                                         r".*\), got 0.0$"):
        PNDMKitScheduler.from_config(flow, method="euler", shift=0.0)
    sched = PNDMKitScheduler.from_config(flow, method="euler", shift=1e-9)
    with pytest.raises(ValueError, match=r"with shift=1e-09 has noise levels that are not finite or lie above 1 "
                                         r"\(\[nan, .*pass a larger shift") as err:
        sched.set_timesteps(10)
    assert "steps_offset" not in str(err.value) and "abar_0" not in str(err.value)
    # shift=1e-3: the float32 shift puts the first level at 1.013, which was named as a time outside [0, 1] of
    # pndmkit's schedule; now the same message, naming the shift
    theirs = diffusers.FlowMatchEulerDiscreteScheduler(shift=1e-3)
    theirs.set_timesteps(10)
    assert float(theirs.sigmas[0]) > 1.0 + 1e-6
    sched = PNDMKitScheduler.from_config(flow, method="euler", shift=1e-3)
    with pytest.raises(ValueError, match=r"with shift=0.001 has noise levels that are not finite or lie above 1 "
                                         r"\(\[1.01.*float32 shift.*pass a larger shift") as err:
        sched.set_timesteps(10)
    assert "outside the domain" not in str(err.value)
    PNDMKitScheduler.from_config(flow, method="euler", shift=1.0).set_timesteps(10)  # the advised shift runs
