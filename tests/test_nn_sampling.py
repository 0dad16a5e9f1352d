"""pndmkit.nn.generate and ``pndmkit sample``: per-sample seeds, shards, resume, two processes (CPU, gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny tensors: more threads only contend on the shared 2-core machines

from pndmkit.nn import generate  # noqa: E402
from pndmkit.nn.checkpoint import save_checkpoint  # noqa: E402
from pndmkit.nn.data import to_uint8  # noqa: E402
from pndmkit.nn.generate import SampleConfig, initial_noise, read_samples, sample_seed, sample_to_dir  # noqa: E402
from pndmkit.nn.unet import UNet  # noqa: E402
from pndmkit.schedules import DiscreteVP  # noqa: E402

pytestmark = pytest.mark.torch
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    stem = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(stem, UNet.preset("tiny"), schedule=DiscreteVP.linear())
    return str(stem)


def _cfg(ckpt, out, **kw):
    base = dict(checkpoint=ckpt, out=str(out), method="f-pndm", steps=8, num_samples=7, batch_size=7,
                shard_size=3, seed=5, progress=False)
    base.update(kw)
    return SampleConfig(**base)


def test_sample_seed_and_noise_are_per_sample():
    assert sample_seed(0, 1) != sample_seed(1, 0) and sample_seed(3, 4) == sample_seed(3, 4)
    a = initial_noise(range(5), (1, 2, 2), seed=9)
    b = initial_noise([3, 4], (1, 2, 2), seed=9)
    assert torch.equal(a[3:], b)
    assert not torch.equal(a[0], a[1])


def test_results_do_not_depend_on_batch_size(ckpt, tmp_path):
    runs = {}
    for bs in (7, 2, 1):
        sample_to_dir(_cfg(ckpt, tmp_path / f"b{bs}", batch_size=bs))
        idx, runs[bs] = read_samples(tmp_path / f"b{bs}", expect=7)
    np.testing.assert_allclose(runs[2], runs[7], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(runs[1], runs[7], rtol=1e-5, atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "b7").iterdir()) == [
        generate.LOCK_FILE, "run.json", "shard-00000.npz", "shard-00000.png", "shard-00001.npz", "shard-00001.png",
        "shard-00002.npz", "shard-00002.png", "summary.json"]
    with np.load(tmp_path / "b7" / "shard-00002.npz") as z:
        assert z["indices"].tolist() == [6] and z["images"].shape == (1, 8, 8, 1) and z["images"].dtype == np.uint8


def _crash_on_call(monkeypatch, n):
    """Make the n-th sampling call on torch tensors (the dry run uses numpy) raise KeyboardInterrupt."""
    import pndmkit

    real, calls = pndmkit.sample, {"n": 0}

    def crashing(model, x, *args, **kwargs):
        if isinstance(x, torch.Tensor):
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt("simulated crash")
        return real(model, x, *args, **kwargs)

    monkeypatch.setattr(pndmkit, "sample", crashing)
    return calls


def test_resume_after_a_crash_loses_and_duplicates_nothing(ckpt, tmp_path, monkeypatch):
    from pndmkit.errors import UsageError

    sample_to_dir(_cfg(ckpt, tmp_path / "ref", batch_size=2))
    _, ref = read_samples(tmp_path / "ref", expect=7)

    calls = _crash_on_call(monkeypatch, 4)  # shard 0 (2 batches) done, shard 1 half done
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        sample_to_dir(_cfg(ckpt, out, batch_size=2))
    assert sorted(p.name for p in out.glob("shard-*.npz")) == ["shard-00000.npz"]
    assert not list(out.glob(".*tmp*"))
    before = (out / "shard-00000.npz").stat().st_mtime_ns
    with pytest.raises(UsageError, match="--resume") as info:
        sample_to_dir(_cfg(ckpt, out, batch_size=2))
    assert info.value.params == ("out", "resume")
    with pytest.raises(UsageError, match="steps=8 in run.json, 9 now") as info:
        sample_to_dir(_cfg(ckpt, out, batch_size=2, steps=9, resume=True))
    assert info.value.params == ("resume", "steps")

    calls["n"] = -100
    summary = sample_to_dir(_cfg(ckpt, out, batch_size=3, resume=True))  # batch size may change
    assert summary["generated"] == 4  # shards 1 and 2 only
    assert (out / "shard-00000.npz").stat().st_mtime_ns == before
    idx, x = read_samples(out, expect=7)
    np.testing.assert_allclose(x, ref, rtol=1e-5, atol=1e-5)


def test_summary_after_a_resume_describes_the_whole_run(ckpt, tmp_path, monkeypatch):
    """After a resume, summary.json showed the last sitting only ("generated_by_rank0": 8, "seconds_rank0" of
    those 8, for a 64-sample run) with nothing saying so. The run's NFE and sampling time now cover every shard,
    the interrupted sitting's too (each shard records its own), and the last sitting's numbers are under
    this_sitting."""
    _crash_on_call(monkeypatch, 3)  # shards 0 and 1 (one batch each) done, then an interrupt
    out = tmp_path / "run"
    kw = dict(num_samples=5, batch_size=2, shard_size=2, steps=3, method="ddim")
    with pytest.raises(KeyboardInterrupt):
        sample_to_dir(_cfg(ckpt, out, **kw))
    assert not (out / "summary.json").exists()  # the interrupted sitting wrote none
    recorded = []
    for k in (0, 1):
        with np.load(out / f"shard-0000{k}.npz") as z:
            assert float(z["nfe_per_sample"]) == 3 and float(z["seconds"]) > 0
            recorded.append(float(z["seconds"]))
    monkeypatch.undo()
    resumed = sample_to_dir(_cfg(ckpt, out, resume=True, **kw))
    summary = json.loads((out / "summary.json").read_text())
    assert resumed["generated"] == 1 and summary == {k: v for k, v in resumed.items()
                                                     if k not in ("generated", "rank", "seconds")}
    assert summary["this_sitting"] == {"resumed": True, "world_size": 1, "generated_by_rank0": 1,
                                       "seconds_rank0": resumed["seconds"]}
    assert summary["num_samples"] == 5 and summary["shards"] == 3 and summary["nfe_per_sample"] == 3
    with np.load(out / "shard-00002.npz") as z:
        recorded.append(float(z["seconds"]))
    assert summary["sampling_seconds"] == round(sum(recorded), 3)
    assert summary["sampling_seconds"] > summary["this_sitting"]["seconds_rank0"]  # the first sitting's counted
    assert "generated_by_rank0" not in summary and "seconds_rank0" not in summary  # no unlabelled sitting numbers


def test_adaptive_run_summary_averages_the_nfe_over_every_sample_of_the_run(ckpt, tmp_path):
    """With per-sample step-size control, nfe_per_sample is the mean over the run's samples, whichever sitting
    made them; a shard written without its own record (an older pndmkit) leaves the sampling time unknown."""
    out = tmp_path / "pf"
    kw = dict(num_samples=3, batch_size=3, shard_size=1, method="pf", steps=None)
    first = sample_to_dir(_cfg(ckpt, out, **kw))
    nfes = []
    for k in range(3):
        with np.load(out / f"shard-0000{k}.npz") as z:
            nfes.append(float(z["nfe_per_sample"]))
    assert first["nfe_per_sample"] == round(sum(nfes) / 3, 1)
    (out / "shard-00001.npz").unlink()
    old = dict(np.load(out / "shard-00002.npz"))
    np.savez(out / "shard-00002.npz", **{k: v for k, v in old.items() if k not in ("seconds", "nfe_per_sample")})
    again = sample_to_dir(_cfg(ckpt, out, resume=True, **kw))
    assert again["this_sitting"]["generated_by_rank0"] == 1 and again["sampling_seconds"] is None
    assert again["nfe_per_sample"] is None  # shard 2's evaluations are not recorded: no mean over the run


def test_resuming_a_finished_run_keeps_its_summary(ckpt, tmp_path):
    """A resume with every shard done generated nothing and rewrote summary.json with nfe_per_sample null,
    generated_by_rank0 0 and seconds_rank0 0.0, losing the run's record."""
    out = tmp_path / "run"
    first = sample_to_dir(_cfg(ckpt, out, num_samples=4, batch_size=4, shard_size=2, steps=3, method="ddim"))
    assert first["nfe_per_sample"] == 3 and first["this_sitting"]["generated_by_rank0"] == 4
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    logs = []
    again = sample_to_dir(_cfg(ckpt, out, num_samples=4, batch_size=4, shard_size=2, steps=3, method="ddim",
                               resume=True), log=logs.append)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    assert logs[-1] == f"nothing to do: all 2 shards of the run in {out} are done; summary.json left as it is"
    assert again["generated"] == 0 and again["nfe_per_sample"] == 3 and again["this_sitting"]["generated_by_rank0"] == 4
    # a finished run whose summary.json is missing gets one written again
    (out / "summary.json").unlink()
    sample_to_dir(_cfg(ckpt, out, num_samples=4, batch_size=4, shard_size=2, steps=3, method="ddim", resume=True))
    assert (out / "summary.json").is_file()


def test_resume_names_a_damaged_shard_and_regenerates_it(ckpt, tmp_path, capsys):
    """A shard cut short (a copy interrupted, a full disk) is regenerated on --resume, and the run says so on
    stderr in one line naming the file; the intact shard is left as it is."""
    out = tmp_path / "run"
    kw = dict(num_samples=4, batch_size=4, shard_size=2, steps=3, method="ddim")
    sample_to_dir(_cfg(ckpt, out, **kw))
    _, ref = read_samples(out, expect=4)
    damaged, intact = out / "shard-00000.npz", out / "shard-00001.npz"
    damaged.write_bytes(damaged.read_bytes()[:100])
    kept = intact.stat().st_mtime_ns
    capsys.readouterr()
    summary = sample_to_dir(_cfg(ckpt, out, resume=True, **kw))
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if str(damaged) in line]
    assert len(said) == 1 and said[0].startswith(f"{damaged} is damaged (") and \
        said[0].endswith(": regenerating shard 0"), err
    assert str(intact) not in err and intact.stat().st_mtime_ns == kept
    assert summary["generated"] == 2
    _, x = read_samples(out, expect=4)
    np.testing.assert_array_equal(x, ref)


def test_resume_refuses_a_changed_checkpoint(ckpt, tmp_path):
    """Overwrite the weights, delete a shard, resume: refused, naming the file whose hash changed."""
    from pndmkit.errors import UsageError

    stem = tmp_path / "model"
    torch.manual_seed(0)
    save_checkpoint(stem, UNet.preset("tiny"), schedule=DiscreteVP.linear())
    out = tmp_path / "run"
    sample_to_dir(_cfg(str(stem), out, method="ddim", steps=2))
    run = __import__("json").loads((out / "run.json").read_text())
    assert run["checkpoint_sha256"]["safetensors"] == generate.file_sha256(stem.with_suffix(".safetensors"))
    assert len(run["times"]) == 3 and run["shard_size"] == 3
    torch.manual_seed(1)
    save_checkpoint(stem, UNet.preset("tiny"), schedule=DiscreteVP.linear())
    (out / "shard-00001.npz").unlink()
    with pytest.raises(UsageError, match=r"the checkpoint's safetensors file changed \(sha256") as info:
        sample_to_dir(_cfg(str(stem), out, method="ddim", steps=2, resume=True))
    assert info.value.params == ("resume", "checkpoint") and "json file" not in str(info.value)
    assert not (out / "shard-00001.npz").exists()


def test_default_shard_is_one_batch_and_resume_keeps_the_runs_shard_size(ckpt, tmp_path, monkeypatch):
    out = tmp_path / "run"
    _crash_on_call(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        sample_to_dir(_cfg(ckpt, out, batch_size=2, shard_size=None))
    assert sorted(p.name for p in out.glob("shard-*.npz")) == ["shard-00000.npz", "shard-00001.npz"]
    (out / ".shard-00002.npz.x1y2.tmp.npz").write_bytes(b"killed mid-write")  # as SIGKILL leaves it
    monkeypatch.undo()
    logs = []
    summary = sample_to_dir(_cfg(ckpt, out, batch_size=3, shard_size=None, resume=True), log=logs.append)
    assert summary["shard_size"] == 2 and summary["shards"] == 4 and summary["generated"] == 3
    assert not list(out.glob(".*tmp*")) and any("removed .shard-00002.npz.x1y2.tmp.npz" in m for m in logs)


@pytest.mark.parametrize("bad, param", [
    ({"method": "f-pndmm"}, "method"), ({"checkpoint": "nope"}, "checkpoint"), ({"grid": "lineer"}, "grid"),
    ({"device": "cdua"}, "device"), ({"steps": 0}, "steps"), ({"convention": "ddpm"}, "convention"),
    ({"dtype": "float8"}, "dtype"), ({"num_samples": -1}, "num_samples"), ({"shard_size": 0}, "shard_size"),
    ({"grid": "trailing", "steps": 1001, "method": "ddim"}, "steps"), ({"grid": [999.0, 1000.0, -1.0]}, "grid"),
    ({"grid": [999.0, True]}, "grid"), ({"grid": [999.0]}, "grid"), ({"grid": [999.0, 500.0, -1.0], "steps": 3}, "grid"),
    ({"grid": [1200.0, 500.0, -1.0]}, "grid")])
def test_bad_options_write_nothing(ckpt, tmp_path, bad, param):
    from pndmkit.errors import UsageError

    out = tmp_path / "o"
    with pytest.raises(UsageError) as info:
        sample_to_dir(_cfg(ckpt, out, **bad))
    assert param in info.value.params and param.replace("_", " ") in str(info.value).replace("_", " ")
    assert not out.exists()


def test_non_finite_weights_are_refused_before_writing(tmp_path):
    from pndmkit.errors import UsageError

    net = UNet.preset("tiny")
    with torch.no_grad():
        net.conv_in.weight[0, 0, 0, 0] = float("nan")
    save_checkpoint(tmp_path / "nan", net, schedule=DiscreteVP.linear())
    with pytest.raises(UsageError, match="non-finite weights \\(first: 'conv_in.weight'\\)"):
        sample_to_dir(_cfg(str(tmp_path / "nan"), tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_a_non_finite_sample_is_never_written(ckpt, tmp_path, monkeypatch):
    import pndmkit

    real = pndmkit.sample

    def poisoned(model, x, *args, **kwargs):
        sol = real(model, x, *args, **kwargs)
        if isinstance(x, torch.Tensor) and x.shape[0] == 3 and abs(float(x[0, 0, 0, 0]) - float(
                initial_noise([3], (1, 8, 8), 5)[0, 0, 0, 0])) < 1e-7:  # the batch of samples 3..5
            sol.x[1, 0, 2, 2] = float("inf")
        return sol

    monkeypatch.setattr(pndmkit, "sample", poisoned)
    out = tmp_path / "o"
    with pytest.raises(FloatingPointError, match=r"sample 4 is not finite .* shard 1 was not written"):
        sample_to_dir(_cfg(ckpt, out, batch_size=3))
    assert sorted(p.name for p in out.glob("shard-*")) == ["shard-00000.npz", "shard-00000.png"]
    assert (out / "run.json").is_file()  # its finished shard is a run to resume


@pytest.mark.parametrize("stop", ["error after the first image", "interrupt in the first batch"])
def test_a_fresh_run_stopped_before_its_first_shard_leaves_nothing(ckpt, tmp_path, monkeypatch, stop):
    """Any exception (not only a non-finite sample) that stops a fresh run before its first shard is written
    takes back its run.json, the image of the shard it did not finish, the lock file and the folder it made, so
    the same command runs again without --resume; after a written shard run.json stays (a run to resume)."""
    if stop.startswith("error"):
        real = generate._save_shard_png

        def png_then_fail(*args, **kwargs):
            real(*args, **kwargs)
            raise RuntimeError("value cannot be converted to type float without overflow")

        monkeypatch.setattr(generate, "_save_shard_png", png_then_fail)
        expected = RuntimeError
    else:
        _crash_on_call(monkeypatch, 1)
        expected = KeyboardInterrupt
    out = tmp_path / "o"
    with pytest.raises(expected):
        sample_to_dir(_cfg(ckpt, out, num_samples=2, batch_size=2, shard_size=2, steps=3, method="ddim"))
    assert not out.exists()
    monkeypatch.undo()
    summary = sample_to_dir(_cfg(ckpt, out, num_samples=2, batch_size=2, shard_size=2, steps=3, method="ddim"))
    assert summary["generated"] == 2 and not summary["this_sitting"]["resumed"]


def test_a_run_stopped_after_its_first_shard_keeps_run_json(ckpt, tmp_path, monkeypatch):
    _crash_on_call(monkeypatch, 2)
    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt):
        sample_to_dir(_cfg(ckpt, out, num_samples=4, batch_size=2, shard_size=2, steps=3, method="ddim"))
    assert sorted(p.name for p in out.iterdir()) == [generate.LOCK_FILE, "run.json", "shard-00000.npz",
                                                      "shard-00000.png"]


def test_sample_cli_writes_shards_and_png(ckpt, tmp_path, capsys):
    from pndmkit.cli import main

    out = tmp_path / "cli"
    assert main(["sample", "--checkpoint", ckpt + ".json", "--out", str(out), "--method", "ddim", "--steps", "3",
                 "--num-samples", "5", "--batch-size", "4", "--dtype", "bfloat16", "--no-progress"]) == 0
    assert '"nfe_per_sample": 3' in capsys.readouterr().out
    idx, x = read_samples(out, expect=5)
    assert x.shape == (5, 1, 8, 8) and x.dtype == np.float32 and np.isfinite(x).all()
    assert (out / "shard-00000.png").read_bytes()[:4] == b"\x89PNG"


def test_official_pndm_samples_a_v_checkpoint_converting_at_the_samples_level(tmp_path):
    """``pndmkit sample --convention official-pndm`` with a v-prediction checkpoint (refused before): the CLI's
    NetworkModel tells the network t - 1 and converts v at abar(t), as pndmkit.sample does for the bare network
    told t - 1 with prediction='v'."""
    from pndmkit import sample
    from pndmkit.cli import main

    torch.manual_seed(1)
    net = UNet.preset("tiny").eval()
    stem = save_checkpoint(tmp_path / "v", net, schedule=DiscreteVP.linear(), prediction="v")
    out = tmp_path / "run"
    assert main(["sample", "--checkpoint", str(stem) + ".json", "--out", str(out), "--method", "f-pndm",
                 "--steps", "6", "--convention", "official-pndm", "--num-samples", "3", "--no-progress"]) == 0
    _, x = read_samples(out, expect=3)
    told = []

    def bare(x, t):  # the network unwrapped: pndmkit.sample shifts its time and converts its v output
        told.append(t)
        with torch.no_grad():
            return net(x, torch.full((x.shape[0],), float(t), dtype=torch.float32))

    ref = sample(bare, initial_noise(range(3), (1, 8, 8), seed=0), schedule=DiscreteVP.linear(), method="f-pndm",
                 steps=6, convention="official-pndm", prediction="v")
    assert told[0] == float(ref.times[0]) - 1.0  # the network is told t - 1
    np.testing.assert_allclose(x, ref.x.numpy(), rtol=0, atol=1e-5)
    assert np.abs(x - ref.x.numpy()).max() < 1e-3 * np.abs(x).max()


def _torchrun_sample(ckpt, out, *args):
    """``(command, environment)`` of ``pndmkit sample`` on two gloo processes of torchrun (skips without it)."""
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to the interpreter")
    env = {**os.environ, "PNDMKIT_BACKEND": "gloo", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "pndmkit", "sample", "--checkpoint", ckpt,
            "--out", str(out), *args, "--seed", "5", "--no-progress"], env


def test_torchrun_two_processes_with_gloo_match_one_process(ckpt, tmp_path):
    out = tmp_path / "dist"
    cmd, env = _torchrun_sample(ckpt, out, "--method", "f-pndm", "--steps", "8", "--num-samples", "7",
                                "--batch-size", "2", "--shard-size", "3")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '"world_size": 2' in proc.stdout
    sample_to_dir(_cfg(ckpt, tmp_path / "single"))
    _, one = read_samples(tmp_path / "single", expect=7)
    _, two = read_samples(out, expect=7)
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-5)


def test_torchrun_resume_regenerates_another_rank_s_shard_whose_images_are_not_its_x(ckpt, tmp_path):
    """Rank 1's shard with images that are not those of its x and no PNG is regenerated by rank 1; rank 0, which
    decides for every rank whether the run was finished, must not keep the old summary as 'nothing to do'."""
    out = tmp_path / "dist"
    cmd, env = _torchrun_sample(ckpt, out, "--method", "ddim", "--steps", "3", "--num-samples", "4", "--batch-size",
                                "2", "--shard-size", "2")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, ref = read_samples(out, expect=4)
    assert json.loads((out / "summary.json").read_text())["this_sitting"]["generated_by_rank0"] == 2  # shard 0
    shard = out / "shard-00001.npz"  # rank 1's
    z = dict(np.load(shard))
    z["images"] = z["images"] ^ np.uint8(1)
    np.savez(shard, **z)
    (out / "shard-00001.png").unlink()
    proc = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = proc.stdout + proc.stderr
    assert "nothing to do" not in said and f"{shard} is damaged (its images are not those of its samples x)" in said
    # rewritten by this sitting, where rank 0 made nothing (kept, it would still say the first sitting's 2); the
    # run's totals are every shard's, whichever rank and sitting made it
    summary = json.loads((out / "summary.json").read_text())
    assert summary["this_sitting"] == {**summary["this_sitting"], "generated_by_rank0": 0, "resumed": True,
                                       "world_size": 2}
    assert summary["nfe_per_sample"] == 3 and summary["sampling_seconds"] > 0
    with np.load(shard) as fixed:
        np.testing.assert_array_equal(fixed["images"], to_uint8(torch.from_numpy(fixed["x"])))
    np.testing.assert_array_equal(read_samples(out, expect=4)[1], ref)


def test_read_samples_detects_gaps(ckpt, tmp_path):
    sample_to_dir(_cfg(ckpt, tmp_path / "g", method="ddim", steps=2))
    (tmp_path / "g" / "shard-00001.npz").unlink()
    with pytest.raises(ValueError, match="not exactly"):
        read_samples(tmp_path / "g", expect=7)


def test_image_grid_layout():
    imgs = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2, 1)
    grid = generate.image_grid(imgs, ncols=3)
    assert grid.shape == (2 * 3 + 1, 3 * 3 + 1, 1)
    assert grid[1:3, 1:3, 0].tolist() == imgs[0, :, :, 0].tolist()


@pytest.mark.parametrize("method", ["ddim", "f-pndm", "ipndm-v", "fon"])
def test_sampling_loop_never_reads_device_data(method, monkeypatch):
    """On the ``meta`` device any host read of tensor data (``.item()``, ``bool(t)``, ``.cpu()``) raises, so
    a run that completes there makes no host-device synchronisation in the loop, the network included. The
    one read allowed is the end-of-run finiteness check of the final sample, counted here."""
    import pndmkit
    import pndmkit.run
    from pndmkit.nn.adapters import NetworkModel

    checks = []
    monkeypatch.setattr(pndmkit.run, "all_finite", lambda x: checks.append(x.device.type) or True)
    with torch.device("meta"):
        net = UNet.preset("tiny").eval()
        x_T = torch.empty(4, 1, 8, 8)
    model = NetworkModel(net, DiscreteVP.linear())
    sol = pndmkit.sample(model, x_T, schedule=model.schedule, method=method, steps=5)
    assert sol.x.device.type == "meta" and sol.nfe == model.nfe
    assert checks == ["meta"]


@pytest.mark.slow
def test_compile_flag_gives_the_same_samples(ckpt, tmp_path):
    sample_to_dir(_cfg(ckpt, tmp_path / "eager", method="ddim", steps=4))
    sample_to_dir(_cfg(ckpt, tmp_path / "compiled", method="ddim", steps=4, compile=True))
    _, eager = read_samples(tmp_path / "eager", expect=7)
    _, compiled = read_samples(tmp_path / "compiled", expect=7)
    np.testing.assert_allclose(compiled, eager, rtol=1e-4, atol=1e-4)


def _forbid_sampling(monkeypatch):
    """Make any sampling call on torch tensors fail: what follows must not sample (the dry run uses numpy)."""
    import pndmkit

    real = pndmkit.sample

    def refusing(model, x, *args, **kwargs):
        if isinstance(x, torch.Tensor):
            raise AssertionError("sampled")
        return real(model, x, *args, **kwargs)

    monkeypatch.setattr(pndmkit, "sample", refusing)


def test_resume_regenerates_a_shard_holding_a_non_finite_sample(ckpt, tmp_path, capsys):
    """A shard edited to hold a NaN opened fine, so a resume said "nothing to do", though a run never writes a
    non-finite sample: it is named and regenerated as a damaged shard is, bit-identical to the fresh run."""
    out = tmp_path / "run"
    kw = dict(num_samples=4, batch_size=4, shard_size=2, steps=3, method="ddim")
    sample_to_dir(_cfg(ckpt, out, **kw))
    _, ref = read_samples(out, expect=4)
    edited, intact = out / "shard-00001.npz", out / "shard-00000.npz"
    z = dict(np.load(edited))
    z["x"][1, 0, 0, 0] = np.nan
    np.savez(edited, **z)
    kept = intact.stat().st_mtime_ns
    capsys.readouterr()
    summary = sample_to_dir(_cfg(ckpt, out, resume=True, **kw))
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if str(edited) in line]
    assert said == [f"{edited} holds non-finite samples (1 of its 2, first: sample 3), which a run never writes: "
                    "regenerating shard 1"], err
    assert "nothing to do" not in err and str(intact) not in err and intact.stat().st_mtime_ns == kept
    assert summary["generated"] == 2
    _, x = read_samples(out, expect=4)
    np.testing.assert_array_equal(x, ref)


@pytest.mark.parametrize("edit, phrase", [
    ("images", "is damaged (its images are not those of its samples x)"),
    ("noimages", "is damaged (no images array)"),
    ("shape", "is damaged (x has shape (2, 1, 4, 4) and dtype float32; (2, 1, 8, 8) float32 expected)")])
def test_resume_regenerates_a_shard_whose_arrays_do_not_fit(ckpt, tmp_path, edit, phrase):
    """The check that finds other indices also finds arrays that are not this run's samples (their images are
    what a PNG is rewritten from, so they are checked against x before a PNG is rewritten)."""
    out = tmp_path / "run"
    kw = dict(num_samples=4, batch_size=4, shard_size=2, steps=3, method="ddim")
    sample_to_dir(_cfg(ckpt, out, **kw))
    _, ref = read_samples(out, expect=4)
    shard = out / "shard-00000.npz"
    z = dict(np.load(shard))
    if edit == "images":  # checked where the PNG is rewritten from them: its PNG is gone
        z["images"] = z["images"] ^ np.uint8(1)
        (out / "shard-00000.png").unlink()
    elif edit == "noimages":
        del z["images"]
    else:
        z["x"] = np.ascontiguousarray(z["x"][:, :, :4, :4])
    np.savez(shard, **z)
    logs = []
    summary = sample_to_dir(_cfg(ckpt, out, resume=True, **kw), log=logs.append)
    assert f"{shard} {phrase}: regenerating shard 0" in logs, logs
    assert summary["generated"] == 2
    np.testing.assert_array_equal(read_samples(out, expect=4)[1], ref)


def test_resume_names_a_file_no_run_describes_and_leaves_it(ckpt, tmp_path, monkeypatch):
    """A stray shard-00007.npz beside a run of 3 shards was passed over without a word (and read_samples reads
    it): the resume names it in a warning and leaves it, and every other file, as it is."""
    out = tmp_path / "run"
    sample_to_dir(_cfg(ckpt, out))  # 7 samples in shards of 3: shards 0-2
    (out / "shard-00007.npz").write_bytes((out / "shard-00000.npz").read_bytes())
    (out / "shard-7.png").write_bytes(b"not a run's")
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    _forbid_sampling(monkeypatch)
    logs = []
    sample_to_dir(_cfg(ckpt, out, resume=True), log=logs.append)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    warned = [m for m in logs if m.startswith("warning:")]
    assert warned == [f"warning: {out} holds shard-00007.npz and shard-7.png, which the run in run.json does not "
                      "describe (its shards are shard-00000 to shard-00002): left as they are; read_samples reads "
                      "every shard-*.npz in a folder, so move them away before reading the samples"], logs
    assert logs[-1] == f"nothing to do: all 3 shards of the run in {out} are done; summary.json left as it is"


def test_resume_rewrites_missing_or_cut_images_from_their_shards_without_sampling(ckpt, tmp_path, monkeypatch):
    """A deleted shard-00000.png got "nothing to do": the image beside a shard is derived from the shard's
    images, so a resume rewrites it from there (no sampling), byte for byte what the fresh run wrote."""
    out = tmp_path / "run"
    sample_to_dir(_cfg(ckpt, out))
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "shard-00000.png").unlink()
    (out / "shard-00002.png").write_bytes(files["shard-00002.png"][:-20])  # cut short
    intact = (out / "shard-00001.png").stat().st_mtime_ns
    _forbid_sampling(monkeypatch)
    logs = []
    summary = sample_to_dir(_cfg(ckpt, out, resume=True), log=logs.append)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    assert (out / "shard-00001.png").stat().st_mtime_ns == intact
    assert [m for m in logs if ".png" in m] == [
        f"{out / 'shard-00000.png'} is missing: rewrote it from shard-00000.npz",
        f"{out / 'shard-00002.png'} is cut short (no PNG end): rewrote it from shard-00002.npz"]
    assert logs[-1] == (f"nothing to sample: all 3 shards of the run in {out} are done (2 images rewritten from "
                        "their shards); summary.json left as it is")
    assert summary["generated"] == 0


def test_sample_cli_resume_regenerates_a_non_finite_shard(ckpt, tmp_path, capsys):
    """The command as the report ran it: a NaN put into a shard is regenerated by ``pndmkit sample --resume``."""
    from pndmkit.cli import main

    out = tmp_path / "cli"
    argv = ["sample", "--checkpoint", ckpt, "--out", str(out), "--method", "ddim", "--steps", "3",
            "--num-samples", "5", "--batch-size", "2", "--no-progress"]
    assert main(argv) == 0
    _, ref = read_samples(out, expect=5)
    shard = out / "shard-00000.npz"
    z = dict(np.load(shard))
    z["x"][0, 0, 0, 0] = np.nan
    np.savez(shard, **z)
    capsys.readouterr()
    assert main(argv + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert f"{shard} holds non-finite samples (1 of its 2, first: sample 0)" in err and "nothing to do" not in err
    np.testing.assert_array_equal(read_samples(out, expect=5)[1], ref)


# -- one run at a time per folder -------------------------------------------------------------------
def _in_use(out):
    lock = out / generate.LOCK_FILE
    return (f"pndmkit sample: error: --out: {out} is in use by another sampling run: a process holds its lock {lock} "
            f"(`fuser {lock}` names it); wait for that run to end or use another out folder. The operating system "
            "releases the lock when the process holding it ends, even by a crash or a kill, so it is never stale: "
            "the file needs no deleting\n")


def _snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_sample_cli_refuses_a_folder_another_run_is_using_and_runs_once_it_is_released(ckpt, tmp_path, capsys,
                                                                                        hold_lock):
    """Two runs started into one folder wrote the same shards: the second is refused at once (one line, exit 2),
    before it writes anything there; once the first ends, the same command runs."""
    from pndmkit.cli import main

    out = tmp_path / "o"
    argv = ["sample", "--checkpoint", ckpt, "--out", str(out), "--method", "ddim", "--steps", "2",
            "--num-samples", "3", "--no-progress"]
    holder = hold_lock(out, generate.LOCK_FILE)
    try:
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2 and capsys.readouterr().err == _in_use(out)
        assert sorted(p.name for p in out.iterdir()) == [generate.LOCK_FILE]  # no run.json, no shard
    finally:
        holder.communicate("")  # the first run ends
    assert main(argv) == 0
    assert read_samples(out, expect=3)[1].shape == (3, 1, 8, 8)


def test_resume_into_a_folder_in_use_changes_nothing_and_a_killed_holder_leaves_no_stale_lock(ckpt, tmp_path,
                                                                                                capsys, hold_lock):
    """A rerun with --resume while the first run still writes is refused and changes nothing; the lock of a run
    killed with SIGKILL is released by the operating system, and its lock file is no sample output to the resume
    (no warning, no refusal, never read as a shard)."""
    from pndmkit.cli import main

    out = tmp_path / "o"
    argv = ["sample", "--checkpoint", ckpt, "--out", str(out), "--method", "ddim", "--steps", "2",
            "--num-samples", "4", "--batch-size", "2", "--no-progress"]
    assert main(argv) == 0
    _, ref = read_samples(out, expect=4)
    (out / "shard-00001.npz").unlink()  # what an interrupted run leaves to do
    before = _snapshot(out)
    holder = hold_lock(out, generate.LOCK_FILE)
    try:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main(argv + ["--resume"])
        assert info.value.code == 2 and capsys.readouterr().err == _in_use(out)
        # without --resume too: the refusal names the lock, not advice (--resume) that cannot work while it is held
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2 and capsys.readouterr().err == _in_use(out)
        assert _snapshot(out) == before
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
    assert holder.returncode == -9 and (out / generate.LOCK_FILE).is_file()
    assert main(argv + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "lock" not in err and "rank 0/1: 1 shards to do, 1 done" in err
    np.testing.assert_array_equal(read_samples(out, expect=4)[1], ref)


def test_the_run_holds_the_lock_from_its_scan_to_its_last_write(ckpt, tmp_path, monkeypatch):
    """While it samples (and so while it writes shards) the folder's lock is taken: another taker is refused."""
    from filelock import FileLock, Timeout

    import pndmkit

    real, taken = pndmkit.sample, []

    def probing(model, x, *args, **kwargs):
        if isinstance(x, torch.Tensor):
            try:
                FileLock(tmp_path / "o" / generate.LOCK_FILE).acquire(timeout=0)
                taken.append(True)
            except Timeout:
                taken.append(False)
        return real(model, x, *args, **kwargs)

    monkeypatch.setattr(pndmkit, "sample", probing)
    sample_to_dir(_cfg(ckpt, tmp_path / "o", method="ddim", steps=2))
    assert taken == [False, False, False]  # one batch per shard of 3 of the 7 samples
    after = FileLock(tmp_path / "o" / generate.LOCK_FILE)
    after.acquire(timeout=0)  # released when the run returned
    assert after.is_locked


def test_a_run_json_written_while_the_options_were_checked_is_refused(ckpt, tmp_path, monkeypatch):
    """A run that saw no run.json, then (under the lock) finds one another run wrote meanwhile, does not start a
    fresh run over it."""
    from pndmkit.errors import UsageError

    other = tmp_path / "other"
    sample_to_dir(_cfg(ckpt, other, method="ddim", steps=2))
    out = tmp_path / "o"
    real = generate._prepare

    def racing(*args, **kwargs):
        plan = real(*args, **kwargs)
        out.mkdir()
        (out / "run.json").write_bytes((other / "run.json").read_bytes())  # the other run got there first
        return plan

    monkeypatch.setattr(generate, "_prepare", racing)
    with pytest.raises(UsageError, match=r"another run wrote .*run.json while this one was checking its options; "
                                         r"run the command again \(with --resume to continue that run\)"):
        sample_to_dir(_cfg(ckpt, out, method="ddim", steps=2))
    assert sorted(p.name for p in out.iterdir()) == [generate.LOCK_FILE, "run.json"]


def test_torchrun_run_into_a_folder_in_use_is_refused_by_rank_0_and_writes_nothing(ckpt, tmp_path, hold_lock):
    """Under torchrun only rank 0 takes the lock (the ranks of one run share it: the other torchrun tests here run
    two ranks into one folder); refused, rank 0 stops before the barrier behind which any rank writes, and the
    run ends (torchrun stops the other rank) instead of waiting there."""
    out = tmp_path / "dist"
    cmd, env = _torchrun_sample(ckpt, out, "--method", "ddim", "--steps", "2", "--num-samples", "4",
                                "--batch-size", "2")
    holder = hold_lock(out, generate.LOCK_FILE)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    finally:
        holder.communicate("")
    assert proc.returncode != 0 and _in_use(out).strip() in proc.stderr, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [generate.LOCK_FILE]


def test_sample_cli_takes_explicit_grid_times_and_resume_checks_them(ckpt, tmp_path, capsys):
    """--grid T0,T1,...: the times a grid kind gives, passed explicitly, give the same samples bit for bit (so the
    explicit times are what the sampler ran); they define the step count, run.json records them, a resume with
    them goes on and one with other times is refused naming the grid."""
    from pndmkit.cli import main

    common = ["sample", "--checkpoint", ckpt + ".json", "--method", "ipndm", "--num-samples", "4", "--batch-size",
              "2", "--no-progress"]
    kind = tmp_path / "kind"
    assert main([*common, "--out", str(kind), "--grid", "quadratic", "--steps", "4"]) == 0
    times = json.loads((kind / "run.json").read_text())["times"]
    assert len(times) == 5
    given = tmp_path / "given"
    text = ",".join(repr(t) for t in times)
    assert main([*common, "--out", str(given), "--grid", text]) == 0  # no --steps: the times give 4
    run = json.loads((given / "run.json").read_text())
    assert run["grid"] == times and run["times"] == times and run["steps"] == 4
    assert np.array_equal(read_samples(given, expect=4)[1], read_samples(kind, expect=4)[1])
    other = tmp_path / "other"
    assert main([*common, "--out", str(other), "--grid", "999,500,100,20,-1"]) == 0
    assert not np.array_equal(read_samples(other, expect=4)[1], read_samples(kind, expect=4)[1])
    capsys.readouterr()
    (given / "shard-00001.npz").unlink()
    assert main([*common, "--out", str(given), "--grid", text, "--steps", "4", "--resume"]) == 0
    assert np.array_equal(read_samples(given, expect=4)[1], read_samples(kind, expect=4)[1])
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([*common, "--out", str(given), "--grid", "999,500,100,20,-1", "--resume"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "cannot resume" in err, err
    assert err.startswith("pndmkit sample: error: --resume/--grid: ") and "in run.json, [999.0, 500.0, 100.0, 20.0, -1.0] now" in err


def test_sample_cli_takes_the_grid_line_grid_optimize_prints(ckpt, tmp_path, capsys):
    """`grid optimize` prints its grid space-separated (`grid: 840.5406 470.8021 ... -1`); pasted as one argument
    `--grid "840.5406 470.8021 ... -1"` it was refused as an unknown grid kind. It is now those times, as the same
    times comma-separated are (run.json records them; the samples are the same bit for bit)."""
    from pndmkit.cli import main

    assert main(["grid", "optimize", "--method", "ipndm", "--nfe", "4", "--problem", "gmm2d", "--calibration", "32",
                 "--heldout", "32", "--maxfev", "30"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("grid: "))
    pasted = line.removeprefix("grid: ")
    times = [float(v) for v in pasted.split()]
    assert " " in pasted and "," not in pasted and len(times) == 5 and times[-1] == -1
    common = ["sample", "--checkpoint", ckpt + ".json", "--method", "ipndm", "--num-samples", "2", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "spaces"), "--grid", pasted]) == 0
    assert main([*common, "--out", str(tmp_path / "commas"), "--grid", ",".join(pasted.split())]) == 0
    for name in ("spaces", "commas"):
        run = json.loads((tmp_path / name / "run.json").read_text())
        assert run["grid"] == times and run["steps"] == 4
    np.testing.assert_array_equal(read_samples(tmp_path / "spaces", expect=2)[1],
                                  read_samples(tmp_path / "commas", expect=2)[1])


@pytest.mark.parametrize("grid, extra, expected", [
    ("999,a,-1", [], "--grid: expected a grid kind or numbers separated by commas or spaces, got '999,a,-1'"),
    ("999 a -1", [], "--grid: expected a grid kind or numbers separated by commas or spaces, got '999 a -1'"),
    ("500,999,-1", [], "--grid: grid must be a grid kind or at least two finite, strictly decreasing times in the "
                       "schedule's units (first = start), got 500, 999, -1"),
    ("999,nan,-1", [], "--grid: grid must be a grid kind or at least two finite, strictly decreasing times"),
    ("999,", [], "--grid: expected a grid kind or numbers separated by commas or spaces, got '999,'"),
    ("999,500,-1", ["--steps", "5"], "--steps/--grid: steps=5 but grid has 3 times (2 steps)"),
    ("5000,500,-1", [], "--grid: grid[0]=5000.0 lies outside the domain [-1.0, 999.0] of DiscreteVP.linear(T=1000)"),
    ("lineer", [], "--grid: unknown grid kind 'lineer'; known: "),
])
def test_sample_cli_refuses_bad_explicit_grids_in_one_line(ckpt, tmp_path, usage_error, grid, extra, expected):
    err = usage_error(["sample", "--checkpoint", ckpt + ".json", "--out", str(tmp_path / "o"), "--method", "ipndm",
                       "--num-samples", "2", "--no-progress", "--grid", grid, *extra])
    assert expected in err and not (tmp_path / "o").exists(), err


def test_sample_config_checks_explicit_times_with_check_grid(monkeypatch):
    """SampleConfig repeated check_grid's rules (two or more finite, strictly decreasing times) in its own code;
    it now calls check_grid without a schedule (the domain is checked where the schedule is known), keeping its
    message."""
    import pndmkit.grids
    from pndmkit.errors import UsageError

    seen, real = [], pndmkit.grids.check_grid
    monkeypatch.setattr(pndmkit.grids, "check_grid", lambda schedule, grid: seen.append((schedule, list(grid))) or
                        real(schedule, grid))
    assert _cfg("digits", "unused", steps=None, grid=[5000, 500, -1]).grid == [5000.0, 500.0, -1.0]  # outside any table: checked later
    assert seen == [(None, [5000.0, 500.0, -1.0])]
    for bad, shown in (([999, 999, -1], "999, 999, -1"), ([999, float("nan")], "999, nan"), ([999], "999"),
                       ([999, True], "999, 1"), ([999, "5"], "999, 5")):
        with pytest.raises(UsageError, match="^grid must be a grid kind or at least two finite, strictly decreasing "
                                             rf"times in the schedule's units \(first = start\), got {shown}$"):
            _cfg("digits", "unused", steps=None, grid=bad)


def test_explicit_times_starting_late_draw_the_noise_at_their_first_time_off_vp(tmp_path):
    """`--grid 0.8,0.5,0` on a flow-matching checkpoint started from unit noise, 1.21x too large at t = 0.8 (pure
    noise there is 0.82 of it); now explicit times that start below the schedule's start draw the noise there, as
    --t-start does: the two runs are the same samples. On VP the scale is 1, so nothing changes there."""
    from pndmkit.schedules import FlowMatching

    torch.manual_seed(0)
    stem = tmp_path / "flow"
    save_checkpoint(stem, UNet.preset("tiny"), schedule=FlowMatching(), prediction="flow")
    common = dict(checkpoint=str(stem), method="ddim", steps=None, num_samples=2, batch_size=2, shard_size=2,
                  seed=3, progress=False, grid=[0.8, 0.5, 0.0])
    sample_to_dir(SampleConfig(out=str(tmp_path / "times"), **common))
    sample_to_dir(SampleConfig(out=str(tmp_path / "t_start"), t_start=0.8, **common))
    _, a = read_samples(tmp_path / "times", expect=2)
    _, b = read_samples(tmp_path / "t_start", expect=2)
    np.testing.assert_array_equal(a, b)
    assert abs(float(FlowMatching().prior_scale(0.8)) - 0.8246) < 1e-4  # the factor the noise was 1.21x off by
