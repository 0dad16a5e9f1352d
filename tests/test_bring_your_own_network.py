"""Networks as users have them: diffusers folders, cached hub ids, fixed conditioning, and the commands on them.

Every network here is a tiny random diffusers model saved to a temporary folder (offline); reference solves are
kept cheap with the studies' own knobs (a short interval, a loose tolerance, one or two noises).
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from pndmkit.errors import UsageError  # noqa: E402
from pndmkit.integrations.diffusers import ConventionWarning, PNDMKitScheduler, translate  # noqa: E402
from pndmkit.integrations.diffusers.pretrained import Conditioned, load_embeddings, open_network  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_thread")]

UNET = dict(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1,
            norm_num_groups=4, down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A DDIM pipeline folder, a bare UNet2DModel folder with its scheduler inside, a class-conditional UNet and a
    UNet2DConditionModel (each with a scheduler config), and a folder of embeddings files."""
    root = tmp_path_factory.mktemp("networks")
    torch.manual_seed(0)
    ddim = diffusers.DDIMScheduler(clip_sample=False)
    diffusers.DDPMPipeline(unet=diffusers.UNet2DModel(**UNET), scheduler=ddim).save_pretrained(root / "pipe")
    torch.manual_seed(1)
    diffusers.UNet2DModel(**UNET).save_pretrained(root / "unet")
    diffusers.DDPMScheduler(prediction_type="v_prediction").save_pretrained(root / "unet" / "scheduler")
    torch.manual_seed(2)
    diffusers.UNet2DModel(**UNET, num_class_embeds=3).save_pretrained(root / "classes")
    ddim.save_pretrained(root / "classes")  # scheduler_config.json beside config.json
    torch.manual_seed(3)
    diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1,
        norm_num_groups=4, cross_attention_dim=16, attention_head_dim=2,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")).save_pretrained(root / "text" / "unet")
    ddim.save_pretrained(root / "text" / "scheduler")
    embeds = torch.randn(5, 16, generator=torch.Generator().manual_seed(4))
    torch.save(embeds, root / "embeds.pt")
    from safetensors.torch import save_file

    save_file({"prompt_embeds": embeds[None].contiguous()}, str(root / "embeds.safetensors"))
    np.save(root / "embeds.npy", embeds.numpy())
    return root


def _x(batch=2, seed=0):
    return torch.randn(batch, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


# -- the resolver ---------------------------------------------------------------------------------------
def test_pipeline_folder_reads_the_schedule_and_prediction_through_translate(folders):
    ckpt = open_network(folders / "pipe")
    config = json.loads((folders / "pipe" / "scheduler" / "scheduler_config.json").read_text())
    tr = translate(config)
    assert repr(ckpt.schedule) == repr(tr.schedule) and ckpt.prediction == tr.prediction == "eps"
    assert ckpt.shape == (1, 8, 8) and ckpt.meta["name"] == "pipe" and ckpt.meta["scheduler"] == "DDIMScheduler"
    assert sorted(ckpt.content_files()) == ["config.json", "diffusion_pytorch_model.safetensors",
                                            "scheduler_config.json"]
    # the model is the network itself: eps = unet(x, t).sample for an eps network
    unet = diffusers.UNet2DModel.from_pretrained(folders / "pipe" / "unet").double().eval()
    model = ckpt.model(dtype=torch.float64)
    ckpt.net.double()
    x = _x()
    with torch.no_grad():
        expected = unet(x, torch.full((2,), 500.0)).sample
    torch.testing.assert_close(model(x, 500.0), expected, rtol=0, atol=0)


def test_unet_folder_with_its_scheduler_inside_and_an_override(folders, tmp_path):
    ckpt = open_network(folders / "unet")
    assert ckpt.prediction == "v" and ckpt.meta["scheduler"] == "DDPMScheduler"
    other = tmp_path / "eps.json"
    config = json.loads((folders / "unet" / "scheduler" / "scheduler_config.json").read_text())
    other.write_text(json.dumps({**config, "prediction_type": "epsilon", "beta_schedule": "scaled_linear",
                                 "beta_end": 0.012, "beta_start": 0.00085}))
    over = open_network(folders / "unet", scheduler_config=other)
    assert over.prediction == "eps" and repr(over.schedule) == repr(translate(json.loads(other.read_text())).schedule)
    assert over.content_files()["scheduler_config.json"] == other


def test_hub_id_resolves_from_the_local_cache_offline(folders, tmp_path, monkeypatch):
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--someone--tiny-ddim"
    shutil.copytree(folders / "pipe", repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # read at import from HF_HOME
    ckpt = open_network("someone/tiny-ddim")
    assert ckpt.meta["name"] == "someone/tiny-ddim" and ckpt.path == repo / "snapshots" / "0123abcd"
    assert ckpt.prediction == "eps" and ckpt.shape == (1, 8, 8)
    with pytest.raises(UsageError) as info:
        open_network("someone/not-there")
    message = str(info.value)
    assert "someone/not-there" in message and str(tmp_path / "hub") in message and "\n" not in message


def _bad(root: Path, case: str) -> Path:
    path = root / case
    path.mkdir()
    if case == "empty":
        return path
    if case == "vae":
        (path / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL"}))
    if case in ("no-weights", "no-scheduler", "refused"):
        (path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    if case in ("no-scheduler", "refused"):
        (path / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    if case == "refused":
        (path / "scheduler_config.json").write_text(json.dumps({"_class_name": "DDIMScheduler", "thresholding": True}))
    if case == "no-unet":
        (path / "model_index.json").write_text(json.dumps({"_class_name": "X", "vae": ["diffusers", "AutoencoderKL"]}))
    if case == "broken-json":
        (path / "model_index.json").write_text("{not json")
    return path


@pytest.mark.parametrize("case, missing", [
    ("missing", "not found: expected"),
    ("empty", "no model_index.json (a pipeline) and no config.json"),
    ("vae", "describes an AutoencoderKL"),
    ("no-weights", "has no weights: expected diffusion_pytorch_model.safetensors"),
    ("no-scheduler", "has no scheduler config"),
    ("refused", "thresholding=True cannot be honoured"),
    ("no-unet", "names no UNet2DModel or UNet2DConditionModel component"),
    ("broken-json", "is not readable JSON"),
])
def test_bad_folders_are_one_line_naming_the_path_and_what_is_missing(tmp_path, case, missing):
    path = tmp_path / case if case == "missing" else _bad(tmp_path, case)
    with pytest.raises(UsageError) as info:
        open_network(path)
    message = str(info.value)
    assert str(path) in message and missing in message and "\n" not in message
    assert "model" in info.value.params


# -- fixed conditioning ----------------------------------------------------------------------------------
def test_class_conditional_unet_with_a_fixed_label(folders):
    unet = diffusers.UNet2DModel.from_pretrained(folders / "classes").double().eval()
    x = _x()
    models = {}
    for label in (0, 2):
        ckpt = open_network(folders / "classes", class_label=label)
        assert isinstance(ckpt.net, Conditioned) and ckpt.meta["class_label"] == label
        ckpt.net.double()
        models[label] = ckpt.model(dtype=torch.float64)(x, 300.0)
        with torch.no_grad():
            expected = unet(x, torch.full((2,), 300.0), class_labels=torch.full((2,), label)).sample
        torch.testing.assert_close(models[label], expected, rtol=0, atol=0)
    assert not torch.equal(models[0], models[2])  # the label is used
    with pytest.raises(UsageError, match="needs class_label= an integer in \\[0, 3\\)") as info:
        open_network(folders / "classes")
    assert info.value.params == ("model",)
    with pytest.raises(UsageError, match="class_label must be an integer in \\[0, 3\\)"):
        open_network(folders / "classes", class_label=3)
    with pytest.raises(UsageError, match="unconditional UNet2DModel; it takes no class_label"):
        open_network(folders / "pipe", class_label=1)


def test_prompt_embeddings_from_pt_safetensors_and_npy_files_are_the_same_conditioning(folders):
    unet = diffusers.UNet2DConditionModel.from_pretrained(folders / "text" / "unet").double().eval()
    embeds = torch.load(folders / "embeds.pt")
    x = _x()
    with torch.no_grad():
        expected = unet(x, torch.full((2,), 700.0), encoder_hidden_states=embeds[None].double().expand(2, -1, -1)).sample
    for suffix in ("pt", "safetensors", "npy"):
        ckpt = open_network(folders / "text", prompt_embeds=folders / f"embeds.{suffix}")
        ckpt.net.double()
        torch.testing.assert_close(ckpt.model(dtype=torch.float64)(x, 700.0), expected, rtol=0, atol=0)
        assert ckpt.content_files()["prompt_embeds"] == folders / f"embeds.{suffix}"
    with pytest.raises(UsageError, match="needs prompt embeddings"):
        open_network(folders / "text")
    with pytest.raises(UsageError, match="width 8 but .* cross_attention_dim=16"):
        open_network(folders / "text", prompt_embeds=torch.zeros(3, 8))
    with pytest.raises(UsageError, match="shape \\(L, D\\) or \\(1, L, D\\)"):
        load_embeddings(torch.zeros(2, 3, 16))


def test_studies_run_on_a_conditional_network(folders, tmp_path):
    from pndmkit.studies import real

    ckpt = open_network(folders / "text", prompt_embeds=folders / "embeds.npy")
    study = real.model_study(ckpt, batch=1, t_start=40.0, rtol=1e-6, cache=tmp_path)
    assert study.reference.shape == (1, 1, 8, 8) and study.problem_name == "text" and study.reference_nfe > 0
    res = real.sweep(study, "ddim", [2, 4, 8])
    assert res.errors[0] > res.errors[1] > res.errors[2]
    # other conditioning, other cache entry: the embeddings are part of the fingerprint
    other = open_network(folders / "text", prompt_embeds=torch.zeros(1, 5, 16))
    assert real.cached_model_study(other, x_T=study.x_T, t_start=40.0, rtol=1e-6, cache=tmp_path) is None
    assert real.cached_model_study(ckpt, x_T=study.x_T, t_start=40.0, rtol=1e-6, cache=tmp_path) is not None


# -- the commands --------------------------------------------------------------------------------------
def _main(argv):
    from pndmkit.cli import main

    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


def test_order_model_on_a_pipeline_folder_prints_its_cost_and_a_line_per_block(folders, tmp_path, capsys):
    argv = ["order", "--model", folders / "pipe", "--methods", "ddim,pie", "--steps", "2,4", "--batch", "1",
            "--t-start", "40", "--json", "--cache", tmp_path, "--device", "cpu"]
    assert _main(argv) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["problem"] == "pipe" and out["reference_ok"] is True and out["methods"]["ddim"]["nfe"] == [2, 4]
    err = captured.err
    assert re.search(r"pipe on cpu: 1 noises of shape \(1, 8, 8\); one network evaluation of them takes [\d.]+ ms", err)
    assert "reference: 2 DOP853 solves" in err and "sweeps: 2 methods x 2 step counts = 18 network evaluations" in err
    # the time printed before the run is the sweeps'; it said nothing of the reference, which may take far longer
    assert re.search(r"reference: 2 DOP853 solves from the 1 noises, time not estimated \(DOP853 chooses how many "
                     r"network evaluations as it goes; each 1000 take about [\d.]+ (ms|s|min|h)\)", err), err
    assert re.search(r"sweeps: .*, about [\d.]+ (ms|s|min|h) \(cached sweeps cost nothing\); the reference solve "
                     r"comes first and is not in this time", err), err
    assert re.search(r"reference done: \d+ evaluations in [\d.]+ (ms|s|min|h), error estimate", err), err
    assert "ddim: 2 runs, 6 evaluations" in err and "pie: 2 runs, 12 evaluations" in err
    # the same command again: everything cached, and the sweeps' time is all there is
    assert _main(argv) == 0
    err = capsys.readouterr().err
    assert "reference: cached" in err and "not in this time" not in err


@pytest.mark.parametrize("stop", ["budget", "ctrl-c"])
def test_order_model_stops_early_with_the_finished_methods(folders, tmp_path, capsys, monkeypatch, stop):
    from pndmkit.studies import monitor, real

    swept = []
    plain_sweep = real.sweep

    def sweep(*args, **kwargs):
        swept.append(plain_sweep(*args, **kwargs))
        return swept[-1]

    def check(self):  # the reference and the first method run, the second is stopped
        if swept:
            raise monitor.TimeBudgetExceeded("spent") if stop == "budget" else KeyboardInterrupt()

    monkeypatch.setattr(real, "sweep", sweep)
    monkeypatch.setattr(monitor.StudyMonitor, "check", check)
    argv = ["order", "--model", folders / "pipe", "--methods", "ddim,pie", "--steps", "2,4", "--batch", "1",
            "--t-start", "40", "--cache", tmp_path, "--device", "cpu", "--max-minutes", "30"]
    code = _main(argv)
    captured = capsys.readouterr()
    assert code == (0 if stop == "budget" else 130)
    assert "ddim" in captured.out and "pie " not in captured.out  # the table has the finished method only
    why = "--max-minutes is spent" if stop == "budget" else "interrupted"
    assert f"stopped ({why}) after 1 of 2 methods; the report shows the finished ones" in captured.err
    monkeypatch.undo()
    # what was finished is cached: the rerun solves no reference and does not redo ddim's sweep
    assert _main(argv[:-2]) == 0
    assert "reference: cached" in capsys.readouterr().err


def test_order_model_budget_bounds_the_reference_solve(folders, tmp_path, capsys, monkeypatch):
    """A budget spent during the reference solve stops it there (not after it): nothing cached, exit status 1,
    and the message says the reference was not finished and how to go on; a rerun without the budget solves it."""
    from pndmkit.studies import monitor, real

    evaluations = []
    plain_eps = real.NetworkProblem.eps_numpy

    def eps_numpy(self, x, t):
        evaluations.append(t)
        return plain_eps(self, x, t)

    checks = []

    def check(self):  # the budget is spent at the third check: two into the reference solve
        checks.append(len(evaluations))
        if len(checks) >= 3:
            raise monitor.TimeBudgetExceeded("spent")

    monkeypatch.setattr(real.NetworkProblem, "eps_numpy", eps_numpy)
    monkeypatch.setattr(monitor.StudyMonitor, "check", check)
    argv = ["order", "--model", folders / "pipe", "--methods", "ddim,pie", "--steps", "2,4", "--batch", "1",
            "--t-start", "40", "--cache", tmp_path, "--device", "cpu", "--max-minutes", "30"]
    assert _main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err
    # checked before the solve and before each of its evaluations; stopped at the third check, after 1 evaluation
    assert checks == [0, 0, 1] and len(evaluations) == 1
    assert "reference done" not in err and not list(tmp_path.rglob("reference.npz"))
    assert (f"stopped (--max-minutes is spent) before the reference was finished: nothing to report; the reference "
            f"is solved whole or not at all, so none of it was kept (what earlier runs cached in {tmp_path} stays): "
            f"rerun with the same --cache and a larger --max-minutes (or none)") in err, err
    # --cache none: nothing is kept, and the message says so
    checks.clear()
    assert _main(argv[:-6] + ["--cache", "none", "--device", "cpu", "--max-minutes", "30"]) == 1
    assert "--cache none keeps nothing: rerun with a --cache DIR" in capsys.readouterr().err
    monkeypatch.undo()
    assert _main(argv[:-2]) == 0
    assert re.search(r"reference done: \d+ evaluations", capsys.readouterr().err)


def test_order_model_budget_spent_right_after_the_reference(folders, tmp_path, capsys, monkeypatch):
    """The budget spent after the reference and before any method: the message says the reference is finished
    (and cached), not that it is not."""
    from pndmkit.studies import monitor, real

    solved = []
    plain_study = real.model_study

    def model_study(*args, **kwargs):
        study = plain_study(*args, **kwargs)
        solved.append(study)
        return study

    def check(self):
        if solved:
            raise monitor.TimeBudgetExceeded("spent")

    monkeypatch.setattr(real, "model_study", model_study)
    monkeypatch.setattr(monitor.StudyMonitor, "check", check)
    argv = ["order", "--model", folders / "pipe", "--methods", "ddim", "--steps", "2,4", "--batch", "1",
            "--t-start", "40", "--cache", tmp_path, "--device", "cpu", "--max-minutes", "30"]
    assert _main(argv) == 1
    err = capsys.readouterr().err
    assert len(solved) == 1 and len(list(tmp_path.rglob("reference.npz"))) == 1
    assert ("stopped (--max-minutes is spent) after 0 of 1 methods; the reference is finished, no method is: nothing "
            "to report; what is finished stays cached: rerun the same command to go on") in err, err
    assert "reference was not finished" not in err


def test_grid_optimize_model_on_a_unet_folder_with_a_budget(folders, tmp_path, capsys, monkeypatch):
    from pndmkit.studies import monitor, targets

    monkeypatch.setattr(targets, "REFERENCE_RTOL", 1e-4)  # cheap references (the study's own knob)
    scheduler = json.loads((folders / "pipe" / "scheduler" / "scheduler_config.json").read_text())
    (tmp_path / "sched.json").write_text(json.dumps({**scheduler, "num_train_timesteps": 50}))
    from pndmkit.studies import grid_opt

    calls = []
    real_check = monitor.StudyMonitor.check
    plain_optimize = grid_opt.optimize

    def optimize(*args, **kwargs):
        calls.append("search")
        return plain_optimize(*args, **kwargs)

    def check(self):  # the two reference blocks (checked in their solves too) and three search runs, then spent
        if calls:
            calls.append(1)
        if len(calls) > 4:
            raise monitor.TimeBudgetExceeded("the time budget of 1 min is spent")
        real_check(self)

    monkeypatch.setattr(grid_opt, "optimize", optimize)
    monkeypatch.setattr(monitor.StudyMonitor, "check", check)
    argv = ["grid", "optimize", "--model", folders / "unet", "--scheduler-config", tmp_path / "sched.json",
            "--method", "ddim", "--nfe", "3", "--calibration", "1", "--heldout", "1", "--maxfev", "20",
            "--cache", tmp_path / "cache", "--device", "cpu", "--max-minutes", "1", "--json"]
    assert _main(argv) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["evaluations"] == 3 and out["stopped"].startswith("the time budget of 1 min is spent after 3")
    assert out["problem"] == str(folders / "unet") and len(out["grid"]) == 4
    err = captured.err
    assert "references: 2 blocks of noises" in err and "search: at most 20 runs of ddim x 3 steps" in err
    assert re.search(r"reference block 1 of 2 \(noises 0-0\): \d+ evaluations", err)
    assert re.search(r"reference block 2 of 2 \(noises 1-1\): \d+ evaluations", err)
    assert len(list((tmp_path / "cache").rglob("reference.npz"))) == 2


def test_grid_optimize_model_budget_bounds_a_reference_block(folders, tmp_path, capsys, monkeypatch):
    """A budget spent inside the second reference block's solve stops it there: the first block stays cached, the
    second is not written, exit status 1."""
    from pndmkit.studies import monitor, targets

    monkeypatch.setattr(targets, "REFERENCE_RTOL", 1e-4)
    scheduler = json.loads((folders / "pipe" / "scheduler" / "scheduler_config.json").read_text())
    (tmp_path / "sched.json").write_text(json.dumps({**scheduler, "num_train_timesteps": 50}))
    blocks = []
    plain_study = targets.StudyTarget.study

    def study(self, first, n, **kwargs):
        blocks.append(first)
        return plain_study(self, first, n, **kwargs)

    inside = []

    def check(self):  # spent at the second evaluation of the second block's solve
        if len(blocks) == 2:
            inside.append(1)
            if len(inside) > 1:
                raise monitor.TimeBudgetExceeded("spent")

    monkeypatch.setattr(targets.StudyTarget, "study", study)
    monkeypatch.setattr(monitor.StudyMonitor, "check", check)
    argv = ["grid", "optimize", "--model", folders / "unet", "--scheduler-config", tmp_path / "sched.json",
            "--method", "ddim", "--nfe", "3", "--calibration", "1", "--heldout", "1", "--maxfev", "20",
            "--cache", tmp_path / "cache", "--device", "cpu", "--max-minutes", "1"]
    assert _main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and len(list((tmp_path / "cache").rglob("reference.npz"))) == 1
    assert "stopped (--max-minutes is spent) after 1 of 2 reference blocks; the finished ones stay cached" \
        in captured.err


def test_sample_checkpoint_takes_a_diffusers_folder(folders, tmp_path, capsys):
    out = tmp_path / "samples"
    argv = ["sample", "--checkpoint", folders / "pipe", "--steps", "3", "--num-samples", "3", "--batch-size", "2",
            "--out", out, "--no-progress"]
    assert _main(argv) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["checkpoint"] == str((folders / "pipe").resolve())
    assert sorted(run["checkpoint_sha256"]) == ["config.json", "diffusion_pytorch_model.safetensors",
                                                "scheduler_config.json"]
    from pndmkit.nn.generate import read_samples

    indices, x = read_samples(out, expect=3)
    assert indices.tolist() == [0, 1, 2] and np.all(np.isfinite(x))
    capsys.readouterr()
    # a network that needs conditioning is refused in one line, before anything is written
    assert _main(["sample", "--checkpoint", folders / "text", "--out", tmp_path / "no", "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--checkpoint" in err and "needs prompt embeddings" in err
    assert not (tmp_path / "no").exists()


def test_audit_takes_the_scheduler_a_folder_ships(folders, capsys):
    assert _main(["audit", folders / "pipe", "--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["target"] == "DDIMScheduler of pipe" and report["kind"] == "diffusers"
    assert round(report["order"]) == 1 and report["point_mass"]["exact"]
    assert _main(["audit", folders / "unet", "--quick"]) == 2  # its DDPMScheduler adds noise at every step
    assert "adds fresh noise at every step" in capsys.readouterr().err


def test_readme_section_runs():
    from tests.test_integrations_readme import block, run

    assert run(block("Bring your own network")).split() == ["(1,", "8,", "8)", "eps", "True"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where there is no GPU")
def test_cuda_where_there_is_none_is_one_line_naming_device(folders, capsys):
    with pytest.raises(UsageError, match="CUDA is not available here") as info:
        open_network(folders / "pipe", device="cuda")
    assert info.value.params == ("device",)
    assert _main(["order", "--model", folders / "pipe", "--device", "cuda"]) == 2
    assert "--device: device 'cuda' is not usable here" in capsys.readouterr().err


# -- a flow-matching folder (SD3/Flux-style scheduler: sigma = 1, alpha = 0 at the start) ----------------------
@pytest.fixture(scope="module")
def flow_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow") / "fm"
    torch.manual_seed(5)
    diffusers.DDPMPipeline(unet=diffusers.UNet2DModel(**UNET),
                           scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0)).save_pretrained(root)
    return root


def _diffusers_flow_loop(folder, n):
    """diffusers' own FlowMatchEulerDiscreteScheduler on the folder's network from the sample command's noises."""
    from pndmkit.nn.generate import initial_noise

    unet = diffusers.UNet2DModel.from_pretrained(folder / "unet").eval()
    theirs = diffusers.FlowMatchEulerDiscreteScheduler.from_pretrained(folder / "scheduler")
    theirs.set_timesteps(sigmas=list(1 - np.arange(n) / n))  # shifted by the scheduler: pndmkit's default grid
    x = initial_noise(range(2), (1, 8, 8), 0)
    with torch.no_grad():
        for t in theirs.timesteps:
            x = theirs.step(unet(x, t).sample, t, x).prev_sample
    return theirs.sigmas.double().numpy(), x.numpy()


@pytest.mark.parametrize("method", ["ddim", "euler"])
def test_sample_on_a_flow_matching_folder_starts_from_pure_noise(flow_folder, tmp_path, capsys, method):
    out = tmp_path / method
    assert _main(["sample", "--checkpoint", flow_folder, "--method", method, "--steps", "3", "--num-samples", "2",
                  "--out", out, "--no-progress"]) == 0
    from pndmkit.nn.generate import read_samples

    run = json.loads((out / "run.json").read_text())
    sigmas, expected = _diffusers_flow_loop(flow_folder, 3)
    np.testing.assert_allclose(run["times"], sigmas, rtol=0, atol=1e-7)
    assert run["times"][0] == 1.0 and run["method"] == method
    indices, x = read_samples(out, expect=2)
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)  # DDIM on flow matching is Euler in t


def test_sampling_a_diffusers_folder_in_its_own_dtype_logs_no_cast_warning(flow_folder, tmp_path):
    """diffusers' ModelMixin.to logs 'There are modules ... that should be kept in float32: []' whenever it is given
    a dtype, even an unchanged one: the sample command casts only when --dtype differs from the network's. In a
    fresh process, where diffusers' log handler writes to the real stderr."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-m", "pndmkit", "sample", "--checkpoint", str(flow_folder), "--method",
                           "ddim", "--steps", "2", "--num-samples", "1", "--out", str(tmp_path / "o"),
                           "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "should be kept in float32" not in done.stderr, done.stderr


def test_methods_that_cannot_start_at_alpha_0_are_refused_by_the_sample_command(flow_folder, tmp_path, capsys):
    assert _main(["sample", "--checkpoint", flow_folder, "--method", "plms", "--steps", "3", "--out",
                  tmp_path / "no"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "method='plms' with prediction='flow' cannot start at t=1, where alpha = 0 (pure noise)" in err
    assert "Methods that run this grid with prediction='flow': ddim, fon, euler" in err
    # the start it suggests is the option this command has (it named t_start= of pndmkit.sample, which it had not)
    assert err.endswith("start below t=1 (--t-start 0.999, where sigma/alpha = 1000)") and "pndmkit.sample" not in err
    assert "error: --method/--t-start: " in err
    assert not (tmp_path / "no").exists()


def test_the_sample_command_starts_where_t_start_says(flow_folder, tmp_path):
    """--t-start 0.999 runs the method the start at t = 1 refused, on the grid pndmkit.sample makes from there, from
    the command's noise scaled to x_t's spread (prior_scale), and records the start for --resume."""
    out = tmp_path / "later"
    assert _main(["sample", "--checkpoint", flow_folder, "--method", "plms", "--steps", "3", "--num-samples", "2",
                  "--t-start", "0.999", "--out", out, "--no-progress"]) == 0
    import pndmkit
    from pndmkit.grids import make_grid
    from pndmkit.nn.generate import initial_noise, read_samples

    run = json.loads((out / "run.json").read_text())
    ckpt = open_network(flow_folder)
    assert run["t_start"] == 0.999 and run["times"] == make_grid(ckpt.schedule, 3, t_start=0.999).tolist()
    x_T = initial_noise(range(2), (1, 8, 8), 0) * ckpt.schedule.prior_scale(0.999)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", pndmkit.StabilityWarning)  # plms's first step from 0.999: said by the command
        expected = pndmkit.sample(ckpt.model(), x_T, schedule=ckpt.schedule, method="plms", steps=3, t_start=0.999).x
    np.testing.assert_allclose(read_samples(out, expect=2)[1], expected.numpy(), rtol=1e-5, atol=1e-5)
    assert _main(["sample", "--checkpoint", flow_folder, "--method", "plms", "--steps", "3", "--num-samples", "2",
                  "--out", out, "--resume", "--no-progress"]) == 2  # another start is another run


@pytest.mark.parametrize("value, shown", [
    ("2", "--t-start: t_start=2.0 lies outside the domain [0.0, 1.0] of FlowMatching(shift=3.0, t_max=1.0)"),
    ("0", "--t-start: t_start=0.0 must be larger than t_end=0.0 (time runs from noise to data)"),
    ("nan", "--t-start: expected a finite number, got 'nan'"),
])
def test_a_bad_t_start_of_the_sample_command_is_one_line_naming_it(flow_folder, tmp_path, capsys, value, shown):
    assert _main(["sample", "--checkpoint", flow_folder, "--method", "euler", "--steps", "3", "--t-start", value,
                  "--out", tmp_path / "no"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and shown in err, err
    assert not (tmp_path / "no").exists()


def test_sample_to_dir_suggests_the_start_as_its_config_takes_it(flow_folder, tmp_path):
    from pndmkit.nn.generate import SampleConfig, sample_to_dir

    cfg = SampleConfig(checkpoint=str(flow_folder), method="plms", steps=3, out=str(tmp_path / "no"), progress=False)
    with pytest.raises(UsageError, match=r"start below t=1 \(SampleConfig\(t_start=0.999\), where sigma/alpha = "
                                         r"1000\)$") as info:
        sample_to_dir(cfg, opener=open_network)
    assert info.value.params == ("method", "t_start") and "--t-start" not in str(info.value)
    with pytest.raises(UsageError, match=r"^t_start must be a finite number, got inf$"):
        SampleConfig(t_start=float("inf"))


@pytest.mark.parametrize("argv, option, fix", [
    (["order", "--methods", "euler", "--steps", "2,4"], "--t-start", "pass t_start below it, e.g. t_start=0.999"),
    (["grid", "optimize", "--method", "euler", "--nfe", "3", "--calibration", "2", "--heldout", "2"], "--model",
     "grid optimize searches grids from the network's own first time and has no --t-start"),
    (["compare", "--methods", "euler", "--nfe", "3", "--n", "2"], "--model",
     "compare runs every sampler over the network's whole schedule and has no t_start"),
])
def test_studies_of_a_flow_matching_folder_refuse_its_start_in_one_line(flow_folder, capsys, argv, option, fix):
    """The converged reference solves dy/ds = eps in s = sigma/alpha, infinite at t = 1: refused before any solve."""
    where = 2 if argv[0] == "grid" else 1
    assert _main(argv[:where] + ["--model", flow_folder] + argv[where:] + ["--cache", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and "s_start and s_end" not in err
    assert f"error: {option}: the study would start at t=1, where alpha = 0 on FlowMatching(shift=3.0, " \
           f"t_max=1.0) (pure noise)" in err and fix in err


def test_audit_of_a_flow_matching_folder_says_it_has_no_vp_table(flow_folder, capsys):
    assert _main(["audit", flow_folder, "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--config" not in err
    assert "target: FlowMatchEulerDiscreteScheduler of fm has no VP table (alphas_cumprod)" in err


# -- folders pndmkit cannot read: refused in one line, before the network runs --------------------------------
@pytest.fixture(scope="module")
def unread_folders(tmp_path_factory):
    """The same tiny UNet beside a scheduler config of a class pndmkit does not read (a VE SDE, IPNDM: no noise
    table; LCM: a table, but a distilled sampler), and beside a DDIM config with one weight filled with NaN."""
    root = tmp_path_factory.mktemp("unread")
    for name, scheduler in (("ve", diffusers.ScoreSdeVeScheduler()), ("ipndm", diffusers.IPNDMScheduler()),
                            ("lcm", diffusers.LCMScheduler()), ("nan", diffusers.DDIMScheduler(clip_sample=False))):
        torch.manual_seed(6)
        unet = diffusers.UNet2DModel(**UNET)
        if name == "nan":
            with torch.no_grad():
                unet.conv_in.bias.fill_(float("nan"))
        unet.save_pretrained(root / name)
        scheduler.save_pretrained(root / name)
    return root


@pytest.mark.parametrize("name, cls, why", [
    ("ve", "ScoreSdeVeScheduler", "configs hold no noise table (no beta_schedule, beta_start or beta_end)"),
    ("ipndm", "IPNDMScheduler", "configs hold no noise table (no beta_schedule, beta_start or beta_end)"),
    ("lcm", "LCMScheduler", "configs cannot be honoured: pndmkit reads the configs of DDPMScheduler"),
])
def test_a_folder_whose_scheduler_pndmkit_does_not_read_is_refused_by_class(unread_folders, tmp_path, capsys, name,
                                                                            cls, why):
    """They opened with diffusers' DDPM defaults (a VE network sampled as DiscreteVP.linear(T=2000)); now the check
    PNDMKitScheduler.from_config makes refuses them, on every command that opens a network."""
    path = unread_folders / name
    with pytest.raises(UsageError) as info:
        open_network(path)
    message = str(info.value)
    assert message.startswith(f"{path / 'scheduler_config.json'}: {cls} {why}") and "\n" not in message
    assert info.value.params == ("model",)
    with pytest.raises(ValueError, match=rf"^{cls} configs"):  # the same class check as the network's own
        PNDMKitScheduler.from_config(json.loads((path / "scheduler_config.json").read_text()), method="ddim")
    for argv in (["sample", "--checkpoint", path, "--steps", "2", "--num-samples", "1", "--out", tmp_path / "no",
                  "--no-progress"],
                 ["order", "--model", path, "--methods", "ddim", "--steps", "2,4", "--batch", "1", "--cache", "none",
                  "--t-start", "50", "--device", "cpu"]):
        assert _main(argv) == 2
        err = capsys.readouterr().err.strip()
        option = "--checkpoint" if argv[0] == "sample" else "--model"
        assert err.count("\n") == 0 and f"error: {option}: {path / 'scheduler_config.json'}: {cls} {why}" in err
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("config", [diffusers.IPNDMScheduler().config, diffusers.ScoreSdeVeScheduler().config,
                                    {"_class_name": "IPNDMScheduler", "num_train_timesteps": 1000}],
                         ids=["ipndm", "ve", "saved-ipndm"])
def test_translate_refuses_a_config_with_no_noise_table_to_read(config):
    """In memory too: no field of the schedule is in these configs, so there is nothing to read (diffusers' DDPM
    defaults would fill in); the class is recognised as scheduler_class recognises it."""
    from pndmkit.integrations.diffusers import network_model, schedule_from_config

    cls = "ScoreSdeVeScheduler" if "sigma_max" in config else "IPNDMScheduler"
    pattern = rf"^{cls} configs hold no noise table \(no beta_schedule, beta_start or beta_end\)"
    for read in (translate, schedule_from_config, lambda c: network_model(lambda x, t: x, c)):
        with pytest.raises(ValueError, match=pattern):
            read(config)


def test_translate_reads_the_table_of_a_scheduler_that_has_one():
    """A class outside the sources with a DDPM table (LCM: scaled_linear betas from 0.00085 to 0.012) is read for
    its table and prediction, as the translate docstring says; only its grid and network are refused."""
    from pndmkit.schedules import DiscreteVP

    tr = translate(diffusers.LCMScheduler(prediction_type="v_prediction").config)
    assert tr.source is None and tr.prediction == "v"
    np.testing.assert_array_equal(tr.schedule.betas, DiscreteVP.quad(1000, 0.00085, 0.012).betas)


def test_audit_of_a_scheduler_with_no_table_names_why(unread_folders, capsys):
    assert _main(["audit", unread_folders / "ipndm", "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "flow-matching or EDM" not in err
    assert "IPNDMScheduler configs hold no noise table (no beta_schedule, beta_start or beta_end)" in err
    assert _main(["audit", "diffusers:IPNDMScheduler", "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "flow-matching or EDM" not in err
    assert err.endswith("IPNDMScheduler has no VP table (alphas_cumprod): the audit runs diffusers schedulers on a "
                        "variance-preserving schedule's exact ground truth, and IPNDMScheduler has none: "
                        "set_timesteps makes the noise levels of each run (betas, alphas) from its number of steps "
                        "alone, so they are no table of the network's training; audit it as a k-diffusion-style "
                        "sampler (MODULE:FUNCTION) in sigma instead")


def test_nan_weights_in_a_diffusers_folder_are_refused_before_any_work(unread_folders, tmp_path, capsys):
    """They ran the network (sample: exit 1 and a run.json left; order: a scipy traceback from the reference's
    time inversion); now the check a pndmkit checkpoint gets names the file and the first tensor."""
    path = unread_folders / "nan"
    weights = path / "diffusion_pytorch_model.safetensors"
    said = f"checkpoint file {weights} holds non-finite weights (first: 'conv_in.bias')"
    with pytest.raises(UsageError) as info:
        open_network(path)
    assert str(info.value) == f"{path}: {said}; the network cannot be used (e.g. a training run that diverged): " \
                              f"use another checkpoint"
    assert info.value.params == ("model",)
    for argv, option in (
            (["sample", "--checkpoint", path, "--steps", "2", "--num-samples", "1", "--out", tmp_path / "no",
              "--no-progress"], "--checkpoint"),
            (["order", "--model", path, "--methods", "ddim", "--steps", "2,4", "--batch", "1", "--cache", "none",
              "--t-start", "50", "--device", "cpu"], "--model"),
            (["compare", "--model", path, "--methods", "ddim", "--nfe", "3", "--n", "2", "--cache", "none"],
             "--model")):
        assert _main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "Traceback" not in err and f"error: {option}: {path}: {said}" in err, err
    assert not (tmp_path / "no").exists()


# -- scheduler config fields the folder path cannot honour, or does not read ---------------------------------
def _unet_with(root: Path, scheduler) -> Path:
    torch.manual_seed(6)
    diffusers.UNet2DModel(**UNET).save_pretrained(root)
    scheduler.save_config(root)
    return root


def test_a_dynamic_shifting_folder_is_refused_naming_the_field_and_the_way_out(tmp_path, capsys):
    """Its shift depends on the image size (mu, which a pipeline passes to set_timesteps): a network opened alone
    would run unshifted, so it is refused before anything is written, with the config field to change."""
    folder = _unet_with(tmp_path / "flux", diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0,
                                                                                      use_dynamic_shifting=True))
    with pytest.raises(UsageError, match="sets use_dynamic_shifting=true") as info:
        open_network(folder)
    assert info.value.params == ("model",) and "use_dynamic_shifting=false" in str(info.value)
    assert _main(["sample", "--checkpoint", folder, "--method", "euler", "--steps", "3", "--out", tmp_path / "no"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error: --checkpoint: " in err and "sets use_dynamic_shifting=true" in err
    assert "--scheduler-config FILE" in err and not (tmp_path / "no").exists()
    # the way out it names: the same config with a fixed shift, given beside the folder
    fixed = tmp_path / "fixed"
    diffusers.FlowMatchEulerDiscreteScheduler(shift=2.0).save_config(fixed)
    assert repr(open_network(folder, scheduler_config=fixed).schedule) == "FlowMatching(shift=2.0, t_max=1.0)"


def test_network_model_refuses_a_dynamic_shifting_config_as_the_folder_path_does(tmp_path):
    """Wrapped directly, a dynamic-shifting config would run with shift 1 (its shift is mu's, from the image size):
    network_model refuses it with the folder path's message, the same check, only the subject differs."""
    from pndmkit.integrations.diffusers import network_model

    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    with pytest.raises(ValueError) as direct:
        network_model(lambda x, t: x, scheduler.config)
    folder = _unet_with(tmp_path / "flux", scheduler)
    with pytest.raises(UsageError) as opened:
        open_network(folder)
    path = str(folder / "scheduler_config.json")
    assert str(direct.value).startswith("scheduler_config sets use_dynamic_shifting=true: ")
    assert str(opened.value).startswith(f"{path} sets use_dynamic_shifting=true: ")
    assert str(direct.value)[len("scheduler_config"):] == str(opened.value)[len(path):]
    assert "use_dynamic_shifting=false and the shift you want" in str(direct.value)
    fixed = {**scheduler.config, "use_dynamic_shifting": False}  # the way out it names
    assert repr(network_model(lambda x, t: x, fixed).schedule) == "FlowMatching(shift=3.0, t_max=1.0)"


@pytest.mark.parametrize("field, scheduler", [
    ("shift", lambda v: diffusers.FlowMatchEulerDiscreteScheduler(shift=v)),
    ("flow_shift", lambda v: diffusers.UniPCMultistepScheduler(use_flow_sigmas=True, flow_shift=v,
                                                               prediction_type="flow_prediction")),
])
def test_a_shift_of_zero_is_refused_by_name_not_read_as_none(tmp_path, capsys, field, scheduler):
    from pndmkit.integrations.diffusers import schedule_from_config

    assert repr(schedule_from_config(scheduler(2.5).config)) == "FlowMatching(shift=2.5, t_max=1.0)"
    for value in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=f"^{field} must be a finite number > 0 .*, got {value}$"):
            schedule_from_config(scheduler(value).config)
    folder = _unet_with(tmp_path / "zero", scheduler(0.0))
    assert _main(["sample", "--checkpoint", folder, "--method", "euler", "--steps", "3", "--out", tmp_path / "no"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"error: --checkpoint: {folder / 'scheduler_config.json'}: {field} must be " \
                                     f"a finite number > 0" in err and err.endswith("got 0.0")


class _Opened(Exception):
    """Raised where a command goes on with the network it opened: the notice is out, nothing else need run."""


@pytest.mark.parametrize("argv, chosen", [
    (["order", "--methods", "ddim", "--steps", "2,4", "--batch", "1", "--cache", "none", "--device", "cpu"],
     " (--grid)"),
    (["compare", "--methods", "ddim", "--nfe", "3", "--n", "2", "--cache", "none"],
     " (the study's grid options; --no-grids keeps the default grid only, --optimized-grids adds searched ones)"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "3", "--cache", "none", "--device", "cpu"],
     " (--start, the grid the search starts from, and --degree)"),
], ids=["order", "compare", "grid-optimize"])
def test_the_grid_fields_notice_names_the_options_the_command_has(tmp_path, capsys, monkeypatch, argv, chosen):
    """The notice that a folder's grid fields are not used names what chooses pndmkit's grid on that command:
    order has --grid but no --convention, compare its grid options, grid optimize its start grid; from Python, the
    grid= argument. Each command is stopped right after it opened the network."""
    from pndmkit.integrations.diffusers.pretrained import API_GRID_OPTIONS
    from pndmkit.studies import real

    def stop(*args, **kwargs):
        raise _Opened()

    monkeypatch.setattr(real, "load_model", stop)
    folder = _unet_with(tmp_path / "karras", diffusers.DPMSolverMultistepScheduler(use_karras_sigmas=True))
    with pytest.raises(_Opened):
        _main(argv + ["--model", folder])
    notes = [line for line in capsys.readouterr().err.splitlines() if "grid fields not used here" in line]
    command = " ".join(argv[:2] if argv[0] == "grid" else argv[:1])
    assert notes == [f"pndmkit {command}: warning: ConventionWarning: {folder / 'scheduler_config.json'} sets grid "
                     f"fields not used here (use_karras_sigmas=True): only the schedule and prediction type are read, "
                     f"and pndmkit samples its own grid{chosen}; for the source's grid use "
                     f"PNDMKitScheduler.from_config(config, method=...) in the diffusers pipeline"]
    assert "--convention" not in notes[0] and (argv[0] != "compare" or "--grid" not in notes[0].replace("-grids", ""))
    with pytest.warns(ConventionWarning, match=re.escape(f"its own grid ({API_GRID_OPTIONS}); ")):
        open_network(folder)
    assert API_GRID_OPTIONS == "grid= of pndmkit.sample and the studies"


def test_dynamic_shifting_in_memory_is_the_unshifted_process():
    """In memory the schedule of a dynamic-shifting config is the flow with shift 1: its time is the flow sigma
    whatever the shift, and PNDMKitScheduler lays out the shifted grid from set_timesteps(mu=...)."""
    from pndmkit.integrations.diffusers import schedule_from_config

    config = diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True).config
    assert repr(schedule_from_config(config)) == "FlowMatching(shift=1.0, t_max=1.0)"


def test_sample_on_a_folder_says_which_grid_fields_it_does_not_use(tmp_path, capsys):
    """A DPM-Solver config with Karras sigmas: the command samples pndmkit's own grid for the schedule (the run's
    times are make_grid's), and says once on stderr that use_karras_sigmas is not used and how to get it."""
    from pndmkit.grids import make_grid

    folder = _unet_with(tmp_path / "karras", diffusers.DPMSolverMultistepScheduler(use_karras_sigmas=True))
    out = tmp_path / "out"
    assert _main(["sample", "--checkpoint", folder, "--method", "ddim", "--steps", "3", "--num-samples", "1",
                  "--out", out, "--no-progress"]) == 0
    err = capsys.readouterr().err.strip()
    notes = [line for line in err.splitlines() if "grid fields not used here" in line]
    assert len(notes) == 1, err
    assert "ConventionWarning" in notes[0] and "(use_karras_sigmas=True)" in notes[0]
    assert "pndmkit samples its own grid (--grid, --convention); " in notes[0]
    assert "PNDMKitScheduler.from_config" in notes[0]
    assert "timestep_spacing" not in notes[0]  # left at the class's default
    run = json.loads((out / "run.json").read_text())
    with pytest.warns(UserWarning, match="grid fields not used here"):
        schedule = open_network(folder).schedule
    assert run["times"] == make_grid(schedule, 3).tolist()
    # a config with its grid fields at their defaults says nothing
    plain = _unet_with(tmp_path / "plain", diffusers.DPMSolverMultistepScheduler())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        open_network(plain)
