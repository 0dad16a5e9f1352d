"""pndmkit.nn: UNet, adapters, checkpoints, training, Frechet distance (CPU, torch)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny tensors: more threads only contend on the shared 2-core machines

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pndmkit  # noqa: E402
from pndmkit.nn.adapters import NetworkModel, eps_coefficients, from_diffusers  # noqa: E402
from pndmkit.nn.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from pndmkit.nn.frechet import digits_features, digits_fid, feature_statistics, frechet_distance, sqrtm_psd  # noqa: E402
from pndmkit.nn.unet import PRESETS, UNet, UNetConfig, count_parameters, timestep_embedding  # noqa: E402
from pndmkit.schedules import DiscreteVP  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return UNet.preset("tiny").eval()


def test_import_pndmkit_does_not_import_torch():
    code = "import sys, pndmkit, pndmkit.cli; pndmkit.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- UNet ----------------------------------------------------------------------------------------
def test_ddpm_cifar10_preset_has_the_ddpm_papers_35_7m_parameters():
    with torch.device("meta"):
        net = UNet.preset("ddpm-cifar10")
        y = net(torch.empty(2, 3, 32, 32), torch.empty(2))
    assert count_parameters(net) == 35_746_307  # DDPM (Ho et al. 2020) CIFAR-10: 35.7M
    assert tuple(y.shape) == (2, 3, 32, 32)
    assert net.config.ch == 128 and net.config.ch_mult == (1, 2, 2, 2) and net.config.attn_resolutions == (16,)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_shapes(name):
    cfg = PRESETS[name]
    with torch.device("meta"):
        net = UNet.preset(name)
        y = net(torch.empty(3, cfg.in_channels, cfg.image_size, cfg.image_size), torch.empty(3))
    assert tuple(y.shape) == (3, cfg.out_channels, cfg.image_size, cfg.image_size)


def test_digits_preset_is_small():
    n = count_parameters(UNet.preset("digits"))
    assert 100_000 < n < 1_000_000  # under 4 MB as float32
    assert 1_000 < count_parameters(UNet.preset("tiny")) < 100_000


def test_unet_config_options_and_errors(tiny):
    net = UNet(UNetConfig(image_size=12, in_channels=2, out_channels=4, ch=8, ch_mult=(1, 2), num_res_blocks=2,
                          attn_resolutions=(12, 6), dropout=0.2, num_groups=4))
    assert net(torch.randn(2, 2, 12, 12), torch.tensor([3.0, 7.5])).shape == (2, 4, 12, 12)
    # attention: 2 + 2 down, 1 middle, 3 + 3 up
    assert sum(isinstance(m, type(net.mid_attn)) for m in net.modules()) == 11
    with pytest.raises(ValueError, match="image_size"):
        UNetConfig(image_size=10, ch_mult=(1, 2, 2))
    with pytest.raises(ValueError, match="num_groups"):
        UNetConfig(ch=12, num_groups=8)
    with pytest.raises(ValueError, match="unknown UNet preset"):
        UNet.preset("nope")
    with pytest.raises(ValueError, match=r"shape \(B, 1, H, W\)"):
        tiny(torch.zeros(1, 3, 8, 8), torch.zeros(1))
    assert UNetConfig.from_dict(PRESETS["digits"].to_dict()) == PRESETS["digits"]


def test_timestep_embedding_is_continuous_in_float_time():
    t = torch.tensor([10.0, 10.0 + 1e-3, 10.5])
    e = timestep_embedding(t, 32)
    assert e.shape == (3, 32)
    assert (e[0] - e[1]).abs().max() < 2e-3 and (e[0] - e[2]).abs().max() > 1e-2


def test_unet_output_depends_on_time_and_is_per_sample(tiny):
    x = torch.randn(4, 1, 8, 8)
    y = tiny(x, torch.tensor([0.0, 100.0, 500.0, 999.0]))
    y0 = tiny(x[:1], torch.tensor([0.0]))
    torch.testing.assert_close(y[:1], y0, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(tiny(x[:1], torch.tensor([500.0])), y0)


# -- adapters ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(pndmkit.METHODS))
def test_every_method_samples_with_the_tiny_unet(name, tiny):
    spec = pndmkit.METHODS[name]
    model = NetworkModel(tiny, DiscreteVP.linear())
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    sol = pndmkit.sample(model, x_T, schedule=model.schedule, method=name, steps=6)
    assert isinstance(sol.x, torch.Tensor) and sol.x.shape == x_T.shape and sol.x.dtype == torch.float32
    assert torch.isfinite(sol.x).all()
    assert sol.nfe == model.nfe
    if not spec.adaptive:  # derived on this grid: a step ending at abar = 1 may need fewer evaluations
        assert sol.nfe == spec.build(model.schedule).nfe(sol.times)


def _derived_nets(eps_net, schedule):
    """x0-, v- and score-predicting networks with exactly the eps of ``eps_net``."""

    def make(prediction):
        def net(x, t_batch):
            t = float(t_batch[0])
            c_x, c_out = eps_coefficients(schedule, t, prediction)
            return (eps_net(x, t_batch) - c_x * x) / c_out  # invert eps = c_x x + c_out out

        return net

    return {p: make(p) for p in ("x0", "v", "score")}


@pytest.mark.parametrize("method", ["ddim", "pie", "f-pndm", "s-pndm"])
def test_prediction_type_adapters_give_identical_samples(method, tiny):
    sched = DiscreteVP.linear()
    net = UNet.preset("tiny").double().eval()
    net.load_state_dict(tiny.state_dict())
    x_T = torch.randn(3, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ref = pndmkit.sample(NetworkModel(net, sched), x_T, schedule=sched, method=method, steps=5).x
    for prediction, derived in _derived_nets(net, sched).items():
        if prediction == "score" and method == "pie":
            continue  # PIE evaluates at t = -1 (abar = 1), where a score is infinite and eps = -0 * score
        model = NetworkModel(derived, sched, prediction=prediction, dtype=torch.float64)
        x = pndmkit.sample(model, x_T, schedule=sched, method=method, steps=5).x
        torch.testing.assert_close(x, ref, rtol=1e-9, atol=1e-9, msg=prediction)


def test_prediction_formulas():
    sched = DiscreteVP.linear()
    t = 400.0
    abar = sched.abar(t)
    a, sigma = math.sqrt(abar), math.sqrt(1 - abar)
    x0, eps = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    x = a * x0 + sigma * eps
    v = a * eps - sigma * x0
    for prediction, out in (("x0", x0), ("v", v), ("eps", eps), ("score", -eps / sigma)):
        c_x, c_out = eps_coefficients(sched, t, prediction)
        torch.testing.assert_close(c_x * x + c_out * out, eps, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="prediction"):
        NetworkModel(lambda x, t: x, sched, prediction="noise")


def test_time_offset_scale_and_dtype():
    seen = []

    def net(x, t):
        seen.append((t.dtype, t.shape, float(t[0]), x.dtype))
        return torch.zeros_like(x)

    model = NetworkModel(net, DiscreteVP.linear(), time_offset=1.0, time_scale=2.0, dtype=torch.bfloat16)
    out = model(torch.ones(4, 3), 10.0)
    assert seen == [(torch.float32, (4,), 18.0, torch.bfloat16)] and out.dtype == torch.float32
    # the core's official-PNDM convention feeds the network t - 1, as NetworkModel(time_offset=1) does
    m0 = NetworkModel(net, DiscreteVP.linear())
    seen.clear()
    pndmkit.sample(m0, torch.ones(1, 3), schedule=DiscreteVP.linear(), method="ddim", steps=2,
                   convention="official-pndm")
    assert [s[2] for s in seen] == [500.0, 0.0]


def test_bfloat16_network_keeps_float32_state(tiny):
    net = UNet.preset("tiny").eval()
    net.load_state_dict(tiny.state_dict())
    net = net.to(torch.bfloat16)
    sched = DiscreteVP.linear()
    x_T = torch.randn(2, 1, 8, 8)
    x16 = pndmkit.sample(NetworkModel(net, sched), x_T, schedule=sched, method="f-pndm", steps=10).x
    x32 = pndmkit.sample(NetworkModel(tiny, sched), x_T, schedule=sched, method="f-pndm", steps=10).x
    assert x16.dtype == torch.float32
    assert (x16 - x32).abs().max() < 0.1 * x32.abs().max()


@pytest.mark.peers
def test_diffusers_unet2dmodel_adapter_matches_diffusers_ddim():
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                 layers_per_block=1, norm_num_groups=4,
                                 down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "UpBlock2D")).eval()
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=True,
                                        steps_offset=0, timestep_spacing="leading")
    from pndmkit.integrations.diffusers import network_model

    model = network_model(unet, scheduler.config)
    assert model.prediction == "eps" and model.schedule.num_train_timesteps == 1000
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    scheduler.set_timesteps(10)
    x = x_T.clone()
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.step(unet(x, t).sample, t, x).prev_sample
    ours = pndmkit.sample(model, x_T, schedule=model.schedule, method="ddim", steps=10, convention="ddim")
    torch.testing.assert_close(ours.x, x, rtol=1e-4, atol=1e-4)
    assert network_model(unet, {"prediction_type": "v_prediction"}).prediction == "v"
    assert from_diffusers(unet, model.schedule, prediction="v").prediction == "v"
    with pytest.raises(TypeError, match="network_model"):
        from_diffusers(unet, dict(scheduler.config))


# -- checkpoints ---------------------------------------------------------------------------------
def test_checkpoint_round_trip(tmp_path, tiny):
    sched = DiscreteVP.linear(T=500, beta_end=0.03)
    stem = save_checkpoint(tmp_path / "m", tiny, schedule=sched, prediction="v", time_offset=1.0,
                           meta={"note": "x"})
    ck = load_checkpoint(str(stem) + ".json")
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3.0, 400.0])
    torch.testing.assert_close(ck.net(x, t), tiny(x, t), rtol=0, atol=0)
    assert np.array_equal(ck.schedule.betas, sched.betas) and ck.prediction == "v" and ck.meta == {"note": "x"}
    model = ck.model()
    assert model.time_offset == 1.0 and model.prediction == "v"
    with pytest.raises(FileNotFoundError, match="digits"):
        load_checkpoint(tmp_path / "missing")


def test_shipped_digits_checkpoint_loads():
    ck = load_checkpoint("digits")
    assert isinstance(ck.net, UNet) and ck.net.config == PRESETS["digits"]
    assert ck.schedule.num_train_timesteps == 1000 and ck.prediction == "eps"
    assert ck.meta["trained_steps"] > 0


# -- training ------------------------------------------------------------------------------------
def test_training_resume_is_exact(tmp_path):
    from pndmkit.errors import UsageError
    from pndmkit.nn.train import TrainConfig, Trainer

    common = dict(preset="tiny", batch_size=8, lr=1e-3, warmup=2, checkpoint_every=2, seed=3)
    a = Trainer(TrainConfig(out=str(tmp_path / "a"), steps=4, **common), log=lambda m: None)
    a.run()
    b1 = Trainer(TrainConfig(out=str(tmp_path / "b"), steps=2, **common), log=lambda m: None)
    b1.run()
    with pytest.raises(UsageError, match="--resume") as info:
        Trainer(TrainConfig(out=str(tmp_path / "b"), steps=4, **common), log=lambda m: None)
    assert info.value.params == ("out", "resume")
    b2 = Trainer(TrainConfig(out=str(tmp_path / "b"), steps=4, **common), log=lambda m: None, resume=True)
    b2.run()
    for (k, va), vb in zip(a.ema.state_dict().items(), b2.ema.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)
    ck = load_checkpoint(tmp_path / "b" / "digits")
    assert ck.meta["trained_steps"] == 4 and ck.net.config == PRESETS["tiny"]
    assert [s["start_step"] for s in ck.meta["sittings"]] == [0, 2]


@pytest.mark.parametrize("change", [{"lr": 2e-3}, {"loss": "l1"}, {"seed": 4}, {"batch_size": 4, "warmup": 3}])
def test_training_resume_refuses_other_settings(tmp_path, change):
    from pndmkit.errors import UsageError
    from pndmkit.nn.train import TrainConfig, Trainer

    common = dict(preset="tiny", batch_size=8, lr=1e-3, warmup=2, checkpoint_every=2, seed=3, out=str(tmp_path))
    Trainer(TrainConfig(steps=2, **common), log=lambda m: None).run()
    before = (tmp_path / "train_state.pt").read_bytes()
    with pytest.raises(UsageError, match="cannot resume") as info:
        Trainer(TrainConfig(steps=4, **{**common, **change}), log=lambda m: None, resume=True)
    assert set(info.value.params) == {"resume", *change}
    for key, value in change.items():
        old = common.get(key, TrainConfig.__dataclass_fields__[key].default)
        assert f"{key}={old!r} in the run, {value!r} now" in str(info.value)
    assert "(only name, steps, max_minutes, threads, device, checkpoint_every may change)" in str(info.value)
    assert (tmp_path / "train_state.pt").read_bytes() == before
    # the settings that may change: the step budget, the device, the checkpoint interval
    Trainer(TrainConfig(steps=3, **{**common, "checkpoint_every": 1}), log=lambda m: None, resume=True).run()
    assert load_checkpoint(tmp_path / "digits").meta["trained_steps"] == 3


def test_resuming_a_finished_run_leaves_its_checkpoint_as_it_is(tmp_path):
    """A resume at (or past) steps must not rewrite NAME.json: a new sitting there made sampling runs resumed
    from that checkpoint refuse it ("the checkpoint's json file changed")."""
    from pndmkit.nn.train import TrainConfig, Trainer

    common = dict(preset="tiny", batch_size=4, checkpoint_every=2, out=str(tmp_path))
    Trainer(TrainConfig(steps=2, **common), log=lambda m: None).run()
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(files) == {"digits.json", "digits.safetensors", "train_state.pt", ".pndmkit-train.lock"}  # (empty)
    for steps in (2, 1):  # at steps, past steps
        logged = []
        trainer = Trainer(TrainConfig(steps=steps, **common), log=logged.append, resume=True)
        assert trainer.run() == tmp_path / "digits" and trainer.step == 2
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
        assert logged[-1] == (f"the run is already at step 2 (steps={steps}): nothing to train, {tmp_path / 'digits'} "
                              "left as it is; give a larger steps to train on")
    # under a name that has no checkpoint yet it is written, the old one still untouched
    Trainer(TrainConfig(steps=2, **{**common, "name": "other"}), log=lambda m: None, resume=True).run()
    assert load_checkpoint(tmp_path / "other").meta["trained_steps"] == 2
    assert (tmp_path / "digits.json").read_bytes() == files["digits.json"]


def test_resume_without_a_run_says_it_starts_afresh(tmp_path):
    from pndmkit.nn.train import TrainConfig, Trainer

    logged = []
    Trainer(TrainConfig(out=str(tmp_path), preset="tiny", steps=1, batch_size=4), log=logged.append,
             resume=True).run()
    assert logged[0] == f"no previous run to resume in {tmp_path} (no train_state.pt): starting a fresh one"
    assert load_checkpoint(tmp_path / "digits").meta["trained_steps"] == 1


@pytest.mark.parametrize("name", ["", "a/b", "../x", ".", "..", ".hidden", "a\\b", "a\0b", 3])
def test_checkpoint_name_is_a_plain_file_stem(name, tmp_path):
    from pndmkit.errors import UsageError
    from pndmkit.nn.train import TrainConfig, check_name

    with pytest.raises(UsageError, match=r"^name=.* must be a plain file name \(no folder, no leading dot\)") as info:
        TrainConfig(out=str(tmp_path / "o"), name=name)
    assert info.value.params == ("name",)
    assert check_name("digits-2.v1") == "digits-2.v1"
    assert list(tmp_path.iterdir()) == []


def test_training_checks_preset_and_memory_before_building(tmp_path, monkeypatch):
    from pndmkit.errors import UsageError
    from pndmkit.nn import train as train_mod
    from pndmkit.nn.train import TrainConfig, Trainer

    with pytest.raises(UsageError, match="3 input and 3 output channels.*use one of tiny, digits") as info:
        TrainConfig(preset="ddpm-cifar10")
    assert info.value.params == ("preset",)
    built = []
    monkeypatch.setattr(train_mod, "UNet", lambda *a, **k: built.append(1))
    monkeypatch.setattr(train_mod, "available_bytes", lambda device: 10 * 2**20)  # 10 MiB free
    with pytest.raises(UsageError, match=r"batch_size=64 needs about .* GiB on cpu \(estimate\), 0.01 GiB is free"):
        Trainer(TrainConfig(out=str(tmp_path), preset="digits"), log=lambda m: None)
    assert built == [] and not tmp_path.joinpath("train_state.pt").exists()


def test_memory_estimate_counts_parameters_and_activations():
    from pndmkit.nn._checks import activation_bytes, memory_estimate

    params, acts = activation_bytes(PRESETS["tiny"])
    assert params == count_parameters(UNet.preset("tiny"))
    assert memory_estimate(PRESETS["tiny"], 3, training=True) == 4 * (5 * params + 3 * acts)
    assert memory_estimate(PRESETS["tiny"], 3, training=False, itemsize=2) == 2 * (params + 3 * acts)
    # the input convolution alone outputs ch x 8 x 8 per sample
    assert acts > PRESETS["tiny"].ch * 8 * 8


def test_training_interrupt_saves_the_last_step(tmp_path, monkeypatch):
    from pndmkit.nn.train import TrainConfig, Trainer

    cfg = TrainConfig(out=str(tmp_path), preset="tiny", steps=10, batch_size=4, checkpoint_every=100)
    trainer = Trainer(cfg, log=lambda m: None)
    real = trainer.train_step
    monkeypatch.setattr(trainer, "train_step", lambda: real() if trainer.step < 3 else (_ for _ in ()).throw(
        KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert torch.load(tmp_path / "train_state.pt", weights_only=False)["step"] == 3
    assert not list(tmp_path.glob(".*tmp*"))


def test_train_and_classifier_cli(tmp_path, capsys):
    from pndmkit.cli import main

    assert main(["train", "--preset", "tiny", "--steps", "2", "--batch-size", "4", "--out", str(tmp_path),
                 "--loss", "l1", "--name", "m"]) == 0
    assert (tmp_path / "m.safetensors").is_file() and (tmp_path / "train_state.pt").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["train", "--preset", "tiny", "--steps", "3", "--batch-size", "4", "--out", str(tmp_path),
              "--loss", "l2", "--name", "m", "--resume"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("pndmkit train: error: --resume/--loss: cannot resume") and "loss='l1' in the run" in err



def test_train_cli_resume_takes_the_runs_own_settings(tmp_path, capsys):
    """An option left out of ``train --resume`` means the saved run's value (its step budget, name, batch
    size...), not the option's default; the settings of one sitting (--device, ...) keep their defaults."""
    from pndmkit.cli import main
    from pndmkit.nn.train import TrainConfig, saved_config

    first = ["train", "--preset", "tiny", "--steps", "2", "--batch-size", "4", "--grad-clip", "0",
             "--checkpoint-every", "1", "--name", "m", "--out", str(tmp_path)]
    assert main(first) == 0
    capsys.readouterr()
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # at the run's own 2 steps (not the default 4000): nothing to train, every file left as it is
    assert main(["train", "--out", str(tmp_path), "--resume"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["steps"] == 2 and json.loads(out)["checkpoint"] == str(tmp_path / "m")
    assert ("the run's own settings for the options not given: name='m', preset='tiny', steps=2, batch_size=4, "
            "grad_clip=0.0, checkpoint_every=1") in err
    assert "already at step 2 (steps=2): nothing to train" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
    # a larger budget given: trains on to it with the run's other settings
    assert main(["train", "--out", str(tmp_path), "--resume", "--steps", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 3
    cfg = saved_config(tmp_path)
    assert (cfg.steps, cfg.batch_size, cfg.grad_clip, cfg.name, cfg.preset) == (3, 4, 0.0, "m", "tiny")
    assert saved_config(tmp_path / "none") is None and TrainConfig().steps == 4000


# -- Frechet distance ----------------------------------------------------------------------------
@given(st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3), st.floats(1e-4, 9), st.floats(1e-4, 9)),
                min_size=1, max_size=6))
def test_frechet_distance_of_commuting_diagonal_gaussians(rows):
    m1, m2, a, b = (np.array(c) for c in zip(*rows))
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    rng = np.random.default_rng(len(rows))
    q, _ = np.linalg.qr(rng.normal(size=(len(rows), len(rows))))  # a shared rotation keeps them commuting
    got = frechet_distance(q @ m1, q @ np.diag(a) @ q.T, q @ m2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-8, abs=1e-8)


def test_frechet_distance_against_scipy_and_properties():
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    c1, c2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    ref = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * np.real(sqrtm(c1 @ c2)))
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(ref, rel=1e-9)
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(frechet_distance(m2, c2, m1, c1), rel=1e-9)
    assert frechet_distance(m1, c1, m1, c1) == pytest.approx(0.0, abs=1e-9)
    # rank-deficient covariances (fewer samples than dimensions) stay finite and non-negative
    f = rng.normal(size=(3, 8))
    mu, cov = feature_statistics(f)
    d = frechet_distance(mu, cov, mu, cov)
    assert np.isfinite(d) and 0 <= d < 1e-6
    s = sqrtm_psd(c1)
    np.testing.assert_allclose(s @ s, c1, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(m1, c1, m2[:3], c2[:3, :3])


def test_one_dimensional_closed_form():
    assert frechet_distance([1.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(4.0 + 1.0)


def test_digits_classifier_and_fid_of_data():
    from pndmkit.nn.data import load_digits_images
    from pndmkit.nn.frechet import load_feature_network

    x, y = load_digits_images()
    net = load_feature_network()
    with torch.no_grad():
        acc = float((net(x).argmax(1) == y).float().mean())
    assert acc > 0.97
    assert digits_features(x[:10]).shape == (10, 64)
    assert digits_fid(x) == pytest.approx(0.0, abs=1e-6)
    half = digits_fid(x[::2])
    noise = digits_fid(torch.rand(900, 1, 16, 16) * 2 - 1)
    assert half < 0.05 * noise


@pytest.mark.slow
def test_shipped_digits_model_f_pndm_beats_ddim_at_50_steps():
    """digits-FID of 500 samples from the same noise; the measured values are in pndmkit/data/README.md."""
    from pndmkit.nn.generate import initial_noise

    ck = load_checkpoint("digits")
    model = ck.model()
    x_T = initial_noise(range(500), (1, 16, 16), seed=0)
    fid = {m: digits_fid(pndmkit.sample(model, x_T, schedule=ck.schedule, method=m, steps=50).x)
           for m in ("ddim", "f-pndm")}
    assert fid["f-pndm"] < fid["ddim"], fid


NN_MODULES = ["pndmkit.nn", "pndmkit.nn.unet", "pndmkit.nn.adapters", "pndmkit.nn.checkpoint", "pndmkit.nn.data",
              "pndmkit.nn.train", "pndmkit.nn.frechet", "pndmkit.nn.generate"]


@pytest.mark.parametrize("module_name", NN_MODULES)
def test_every_public_nn_name_has_a_docstring(module_name):
    import test_docs  # the core's rule, applied to pndmkit.nn

    test_docs.test_every_public_name_has_a_docstring(module_name)


# -- flow-matching objective ---------------------------------------------------------------------
def _flow_trainer(tmp_path, **kw):
    from pndmkit.nn.train import TrainConfig, Trainer

    cfg = dict(out=str(tmp_path), preset="tiny", batch_size=8, lr=2e-3, warmup=1, checkpoint_every=100, seed=1,
               objective="flow")
    return Trainer(TrainConfig(**{**cfg, **kw}), log=lambda m: None)


def test_flow_objective_inputs_and_target(tmp_path):
    """x_t = (1 - t) x0 + t eps, network time 1000 t, target u = eps - x0, t ~ U(0, 1) from the one generator."""
    trainer = _flow_trainer(tmp_path)
    x0, t, eps = trainer.batch()
    assert t.dtype == torch.float32 and t.shape == (8,) and bool(((t >= 0) & (t < 1)).all())
    assert len(set(t.tolist())) == 8  # continuous times, not indices
    seen = {}

    def net(x, t_net):
        seen["x"], seen["t"] = x, t_net
        return torch.zeros_like(x)

    trainer.net = net
    out, target = trainer.prediction_and_target(x0, t, eps)
    tb = t[:, None, None, None]
    torch.testing.assert_close(seen["x"], (1 - tb) * x0 + tb * eps, rtol=0, atol=0)
    torch.testing.assert_close(seen["t"], 1000.0 * t, rtol=0, atol=0)
    torch.testing.assert_close(target, eps - x0, rtol=0, atol=0)


def test_flow_objective_loss_is_finite_and_decreases_on_a_fixed_batch(tmp_path):
    import torch.nn.functional as F

    trainer = _flow_trainer(tmp_path)
    fixed = trainer.batch()
    trainer.batch = lambda: fixed

    def loss():
        with torch.no_grad():
            return float(F.mse_loss(*trainer.prediction_and_target(*fixed)))

    before = loss()
    steps = [trainer.train_step() for _ in range(30)]
    assert all(math.isfinite(v) for v in steps) and steps[0] == pytest.approx(before, rel=1e-6)
    assert loss() < 0.5 * before, (before, loss())


def test_flow_checkpoint_round_trips_schedule_prediction_and_time(tmp_path):
    from pndmkit.schedules import FlowMatching, schedule_from_dict, schedule_to_dict

    stem = _flow_trainer(tmp_path, steps=2).run()
    ck = load_checkpoint(stem)
    assert type(ck.schedule) is FlowMatching and (ck.schedule.shift, ck.schedule.t_max) == (1.0, 0.999)
    assert ck.prediction == "flow" and (ck.time_offset, ck.time_scale) == (0.0, 1000.0)
    assert ck.meta["train_config"]["objective"] == "flow"
    model = ck.model()
    assert model.prediction == "flow" and model.network_time(0.25) == 250.0
    back = schedule_from_dict(schedule_to_dict(FlowMatching(shift=3.0, t_max=0.99, t_end=0.01)))
    assert (back.shift, back.t_max, back.t_end) == (3.0, 0.99, 0.01)


def test_ddim_on_a_flow_checkpoint_is_the_euler_step_in_t(tmp_path):
    """One DDIM step from t to t' with the network's velocity u is x + (t' - t) u (docs/theory.md).

    In float64: in float32 the conversion to eps and back divides by alpha = 1 - t, which amplifies the
    rounding near t = 1 (1e-4 at t = 0.999)."""
    ck = load_checkpoint(_flow_trainer(tmp_path, steps=3).run())
    ck.net.double()
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    for t, t_next in ((0.999, 0.6), (0.5, 0.0), (0.3, 0.25)):
        sol = pndmkit.sample(ck.model(), x, schedule=ck.schedule, method="ddim", grid=[t, t_next])
        with torch.no_grad():
            u = ck.net(x, torch.full((4,), 1000.0 * t, dtype=torch.float64))
        assert sol.nfe == 1
        torch.testing.assert_close(sol.x, x + (t_next - t) * u, rtol=0, atol=1e-6)


def test_flow_objective_is_checked_and_recorded_like_the_other_settings(tmp_path, capsys):
    from pndmkit.cli import main
    from pndmkit.errors import UsageError
    from pndmkit.nn.train import TrainConfig

    with pytest.raises(UsageError, match="objective must be one of eps, flow, got 'v'") as info:
        TrainConfig(objective="v")
    assert info.value.params == ("objective",)
    with pytest.raises(UsageError, match="T, beta_end set the DDPM schedule") as info:
        TrainConfig(objective="flow", T=500, beta_end=0.03)
    assert info.value.params == ("objective", "T", "beta_end")
    with pytest.raises(SystemExit) as info:
        main(["train", "--objective", "velocity", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and err.startswith("pndmkit train: error: --objective")
    # an eps run is not continued as a flow run (the objective shapes the training)
    assert main(["train", "--preset", "tiny", "--steps", "1", "--batch-size", "4", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["train", "--preset", "tiny", "--steps", "2", "--batch-size", "4", "--out", str(tmp_path),
              "--objective", "flow", "--resume"])
    assert "objective='eps' in the run, 'flow' now" in capsys.readouterr().err


def test_shipped_flow_digits_checkpoint_matches_the_eps_model():
    from pndmkit.schedules import FlowMatching

    flow, eps = load_checkpoint("digits_flow"), load_checkpoint("digits")
    assert isinstance(flow.net, UNet) and flow.net.config == eps.net.config == PRESETS["digits"]
    assert type(flow.schedule) is FlowMatching and flow.prediction == "flow" and flow.time_scale == 1000.0
    assert flow.meta["trained_steps"] == eps.meta["trained_steps"] and flow.meta["train_seconds"] <= 12 * 60
    assert flow.meta["train_config"]["threads"] == 1


@pytest.mark.slow
def test_shipped_flow_digits_model_ipndm_beats_ddim_at_10_steps():
    """digits-FID of 500 samples from the same noise; the measured values are in pndmkit/data/README.md."""
    from pndmkit.nn.generate import initial_noise

    ck = load_checkpoint("digits_flow")
    x_T = initial_noise(range(500), (1, 16, 16), seed=0)
    fid = {m: digits_fid(pndmkit.sample(ck.model(), x_T, schedule=ck.schedule, method=m, steps=10).x)
           for m in ("ddim", "ipndm")}
    assert fid["ipndm"] < 0.75 * fid["ddim"], fid
