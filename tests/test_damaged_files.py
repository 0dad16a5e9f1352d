"""Files pndmkit reads back, damaged: one line naming the file and what is wrong, before any long work.

The damaged files are made here from a tiny network (the ``tiny`` UNet preset) in pytest's ``tmp_path``;
nothing damaged is shipped. Each checkpoint case is tried through the API (:func:`load_checkpoint`, the study
loader) and on every command that reads checkpoints (``sample``, ``order --model``, ``grid optimize --model``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pndmkit.errors import BadFileError, UsageError  # noqa: E402
from pndmkit.nn.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from pndmkit.nn.unet import UNet  # noqa: E402
from pndmkit.schedules import DiscreteVP  # noqa: E402

torch.set_num_threads(1)




@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A valid tiny checkpoint: its stem."""
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "good", UNet.preset("tiny").eval(),
                           schedule=DiscreteVP.linear())


def _copy(good: Path, folder: Path, name: str) -> Path:
    stem = folder / name
    for ext in (".json", ".safetensors"):
        stem.with_suffix(ext).write_bytes(good.with_suffix(ext).read_bytes())
    return stem


def _edit(stem: Path, change) -> None:
    p = stem.with_suffix(".json")
    d = json.loads(p.read_text())
    change(d)
    p.write_text(json.dumps(d))


def _weights(stem: Path, change) -> None:
    from safetensors.torch import load_file, save_file

    sd = load_file(str(stem.with_suffix(".safetensors")))
    change(sd)
    save_file(sd, str(stem.with_suffix(".safetensors")))


def _nan_first(sd):
    k = sorted(sd)[0]
    sd[k] = torch.full_like(sd[k], float("nan"))


def _damage(kind: str, stem: Path) -> tuple[Path, str]:
    """Damage ``stem`` one way; return the file at fault and a phrase its message must hold."""
    js, st = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    if kind == "truncated":
        st.write_bytes(st.read_bytes()[: st.stat().st_size // 2])
        return st, "is not a readable safetensors file"
    if kind == "emptyweights":
        st.write_bytes(b"")
        return st, "is empty"
    if kind == "garbage":
        st.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        return st, "is not a readable safetensors file"
    if kind == "weightsdir":
        st.unlink()
        st.mkdir()
        return st, "is not a file"
    if kind == "nanweights":
        _weights(stem, _nan_first)
        return st, "non-finite weights (first: "
    if kind == "missingtensor":
        _weights(stem, lambda sd: sd.pop(sorted(sd)[-1]))
        return st, "missing tensor"
    if kind == "unexpectedtensor":
        _weights(stem, lambda sd: sd.update(extra=torch.zeros(2)))
        return st, "unexpected tensor 'extra'"
    if kind == "wrongpreset":
        _edit(stem, lambda d: d["network"]["config"].update(ch=16))
        return st, "in the weights but"
    if kind == "badjson":
        js.write_text(js.read_text()[:40])
        return js, "is not valid JSON"
    if kind == "emptyjson":
        js.write_text("")
        return js, "is empty"
    if kind == "listjson":
        js.write_text("[]")
        return js, "holds a JSON list"
    if kind == "nonetwork":
        _edit(stem, lambda d: d.pop("network"))
        return js, "has no valid 'network' entry"
    if kind == "badclass":
        _edit(stem, lambda d: d["network"].update({"class": "ResNet"}))
        return js, "describes no valid network (unknown network class 'ResNet'"
    if kind == "badformat":
        _edit(stem, lambda d: d.update(format="other"))
        return js, "is not a pndmkit checkpoint (format='other'"
    if kind == "badprediction":
        _edit(stem, lambda d: d.update(prediction="epsilon"))
        return js, "prediction='epsilon'; a diffusion model's must be one of eps, x0, v, score, flow (diffusers'"
    if kind == "badtimescale":
        _edit(stem, lambda d: d.update(time_scale="abc"))
        return js, "time_scale='abc'; it must be a finite number > 0"
    if kind == "zerotimescale":
        _edit(stem, lambda d: d.update(time_scale=0))
        return js, "time_scale=0; it must be a finite number > 0"
    if kind == "zeroimage":
        _edit(stem, lambda d: d["network"]["config"].update(image_size=0))
        return js, "image_size must be an integer >= 1, got 0"
    if kind == "badschedule":
        _edit(stem, lambda d: d.update(schedule={"kind": "discrete", "name": "linear", "T": 1000,
                                                 "beta_start": 0.5, "beta_end": 0.02}))
        return js, "has an invalid schedule"
    if kind == "dirjson":
        js.unlink()
        js.mkdir()
        return js, "is not a file (a folder?)"
    if kind == "fifojson":  # reading it would wait for a writer for ever
        js.unlink()
        os.mkfifo(js)
        return js, "is not a regular file (a FIFO)"
    if kind == "nanjson":  # the shared reader takes strict JSON only
        _edit(stem, lambda d: d.update(time_scale=float("nan")))
        return js, "holds NaN, which is not JSON"
    raise AssertionError(kind)


KINDS = ["truncated", "emptyweights", "garbage", "weightsdir", "nanweights", "missingtensor", "unexpectedtensor",
         "wrongpreset", "badjson", "emptyjson", "listjson", "nonetwork", "badclass", "badformat", "badprediction",
         "badtimescale", "zerotimescale", "zeroimage", "badschedule", "dirjson", "fifojson", "nanjson"]


@pytest.mark.parametrize("kind", KINDS)
def test_load_checkpoint_names_the_damaged_file(kind, good, tmp_path):
    stem = _copy(good, tmp_path, kind)
    path, phrase = _damage(kind, stem)
    with pytest.raises(BadFileError) as info:
        load_checkpoint(stem)
    message = str(info.value)
    assert info.value.path == str(path) and str(path) in message and phrase in message, message
    assert "\n" not in message


@pytest.mark.parametrize("kind", ["truncated", "nanweights", "listjson", "wrongpreset", "badprediction"])
def test_study_loaders_name_the_damaged_file(kind, good, tmp_path):
    from pndmkit.studies.grid_opt import optimize
    from pndmkit.studies.real import load_model, model_study

    stem = _copy(good, tmp_path, kind)
    path, phrase = _damage(kind, stem)
    for call in (lambda: load_model(str(stem)), lambda: model_study(str(stem), batch=1),
                 lambda: optimize("ddim", str(stem), 3, calibration=1, heldout=1, maxfev=1)):
        with pytest.raises(UsageError) as info:
            call()
        assert str(path) in str(info.value) and phrase in str(info.value)
        assert "built-in problems" not in str(info.value)  # a damaged file is no misspelt problem name


COMMANDS = {
    "sample": ["sample", "--no-progress", "--method", "ddim", "--steps", "2", "--num-samples", "2", "--out", "{out}",
               "--checkpoint"],
    "order": ["order", "--methods", "ddim", "--steps", "2,4", "--cache", "none", "--batch", "1", "--model"],
    "grid": ["grid", "optimize", "--method", "ddim", "--nfe", "3", "--maxfev", "1", "--calibration", "1",
             "--heldout", "1", "--model"],
}
OPTION = {"sample": "--checkpoint", "order": "--model", "grid": "--model"}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("kind", KINDS)
def test_every_command_refuses_a_damaged_checkpoint_in_one_line(command, kind, good, tmp_path, run_cli):
    stem = _copy(good, tmp_path, kind)
    path, phrase = _damage(kind, stem)
    out = tmp_path / "o"
    code, stdout, err = run_cli([a.replace("{out}", str(out)) for a in COMMANDS[command]] + [str(stem)])
    prog = "pndmkit grid optimize" if command == "grid" else f"pndmkit {command}"
    assert code == 2 and stdout == "" and err.count("\n") == 1, err
    assert err.startswith(f"{prog}: error: {OPTION[command]}: ") and str(path) in err and phrase in err, err
    assert not out.exists()


def test_a_good_checkpoint_still_loads_bit_for_bit(good):
    ck = load_checkpoint(good)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3.0, 700.0])
    torch.manual_seed(0)
    ref = UNet.preset("tiny").eval()
    torch.testing.assert_close(ck.net(x, t), ref(x, t), rtol=0, atol=0)


# -- reference caches ---------------------------------------------------------------------------------
@pytest.fixture
def fake_solves(monkeypatch):
    """No real reference solve: ``reference_solution`` returns ``x_T / 2`` with error 1e-12; counts its calls."""
    import pndmkit.studies.real as real

    calls = []

    def fake(problem, schedule, x_T, t_start, t_end, **kwargs):
        calls.append(len(x_T))
        return np.asarray(x_T) / 2, 1e-12, 7

    monkeypatch.setattr(real, "reference_solution", fake)
    return calls


def _damage_reference(kind: str, path: Path) -> str:
    """Damage the cached ``reference.npz`` at ``path`` one way; return a phrase its message must hold."""
    with np.load(path) as z:
        items = {k: z[k] for k in z.files}
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return "cannot be read as a cached reference"
    if kind == "empty":
        path.write_bytes(b"")
        return "is empty"
    if kind == "folder":
        path.unlink()
        path.mkdir()
        return "is not a file (a folder?)"
    if kind == "wrongshape":
        items["reference"] = items["reference"][..., :4, :4]
        np.savez(path, **items)
        return "holds a reference of shape (1, 1, 4, 4) (float64); the study's noises have shape (1, 1, 8, 8)"
    if kind == "nanref":
        items["reference"] = np.full_like(items["reference"], np.nan)
        np.savez(path, **items)
        return "holds 64 non-finite reference values"
    if kind == "negerr":
        items["error"] = np.array(-1.0)
        np.savez(path, **items)
        return "records the reference error -1.0; it must be a finite number >= 0"
    if kind == "nanerr":
        items["error"] = np.array(np.nan)
        np.savez(path, **items)
        return "records the reference error nan"
    if kind == "nokey":
        items.pop("error")
        np.savez(path, **items)
        return "cannot be read as a cached reference (KeyError"
    raise AssertionError(kind)


REFERENCE_DAMAGES = ["truncated", "empty", "folder", "wrongshape", "nanref", "negerr", "nanerr", "nokey"]


@pytest.mark.parametrize("kind", REFERENCE_DAMAGES)
def test_a_damaged_cached_reference_is_refused_or_rebuilt(kind, good, tmp_path, fake_solves):
    from pndmkit.studies.real import DamagedCacheWarning, model_study

    cache = tmp_path / "cache"
    first = model_study(str(good), batch=1, cache=cache)
    path = Path(first.cache) / "reference.npz"
    assert fake_solves == [1] and path.is_file()
    phrase = _damage_reference(kind, path)
    with pytest.raises(UsageError) as info:
        model_study(str(good), batch=1, cache=cache)
    message = str(info.value)
    assert info.value.params == ("cache",) and str(path) in message and phrase in message, message
    assert "--rebuild-cache" in message and "\n" not in message and fake_solves == [1]  # nothing solved
    with pytest.warns(DamagedCacheWarning, match=f"cache entry {path} .*computed again"):
        again = model_study(str(good), batch=1, cache=cache, rebuild_cache=True)
    assert fake_solves == [1, 1] and path.is_file()  # solved once more, and written back whole
    np.testing.assert_array_equal(again.reference, first.reference)
    assert again.reference_error == 1e-12
    assert model_study(str(good), batch=1, cache=cache).reference_nfe == 0  # read back as it is now


@pytest.mark.parametrize("kind", ["truncated", "folder", "negerr", "nanref"])
def test_grid_optimize_refuses_a_damaged_cached_block(kind, good, tmp_path, fake_solves):
    from pndmkit.studies.grid_opt import evaluate, optimize
    from pndmkit.studies.real import DamagedCacheWarning

    cache = tmp_path / "cache"
    args = dict(calibration=1, heldout=1, maxfev=1, cache=cache)
    grid = optimize("ddim", str(good), 3, **args).grid
    solved = len(fake_solves)
    paths = sorted(cache.glob("*/reference.npz"))  # the calibration noise's and the held-out noise's
    assert len(paths) == 2
    phrase = [_damage_reference(kind, path) for path in paths][0]
    for call in (lambda: optimize("ddim", str(good), 3, **args),
                 lambda: evaluate("ddim", str(good), grid, calibration=1, heldout=1, cache=cache)):
        with pytest.raises(UsageError) as info:
            call()
        assert info.value.params == ("cache",) and phrase in str(info.value)
        assert sum(str(p) in str(info.value) for p in paths) == 1
    assert len(fake_solves) == solved
    with pytest.warns(DamagedCacheWarning) as caught:
        res = optimize("ddim", str(good), 3, rebuild_cache=True, **args)
    assert sorted(str(p) for p in paths if any(str(p) in str(w.message) for w in caught)) == [str(p) for p in paths]
    assert len(fake_solves) == solved + 2 and res.reference_error == 1e-12


def _damage_sweeps(kind: str, path: Path) -> str:
    table = json.loads(path.read_text())
    if kind == "truncated":
        path.write_text(path.read_text()[:50])
        return "is not valid JSON (line"
    if kind == "empty":
        path.write_text("")
        return "is empty"
    if kind == "list":
        path.write_text("[]")
        return "holds a JSON list, not an object of sweeps"
    if kind == "folder":
        path.unlink()
        path.mkdir()
        return "is not a file (a folder?)"
    tag = next(iter(table))
    if kind == "fake":  # plausible numbers that are not what was measured
        table[tag]["errors"] = [1e-30 for _ in table[tag]["errors"]]
        path.write_text(json.dumps(table))
        return f"[{tag!r}] records order"
    if kind == "negative":
        table[tag]["errors"][0] = -1.0
        path.write_text(json.dumps(table))
        return f"[{tag!r}] records a negative error"
    if kind == "fields":
        table[tag].pop("errors")
        path.write_text(json.dumps(table))
        return f"[{tag!r}] is not a sweep result"
    raise AssertionError(kind)


SWEEP_DAMAGES = ["truncated", "empty", "list", "folder", "fake", "negative", "fields"]


@pytest.mark.parametrize("kind", SWEEP_DAMAGES)
def test_a_damaged_cached_sweep_is_refused_or_rebuilt(kind, good, tmp_path, fake_solves):
    from pndmkit.studies.real import DamagedCacheWarning, model_study, sweep

    study = model_study(str(good), batch=1, cache=tmp_path / "cache")
    measured = sweep(study, "ddim", [2, 4, 8])
    path = Path(study.cache) / "sweeps.json"
    phrase = _damage_sweeps(kind, path)
    with pytest.raises(UsageError) as info:
        sweep(study, "ddim", [2, 4, 8])
    assert info.value.params == ("cache",) and str(path) in str(info.value) and phrase in str(info.value), \
        str(info.value)
    rebuilt = model_study(str(good), batch=1, cache=tmp_path / "cache", rebuild_cache=True)
    with pytest.warns(DamagedCacheWarning, match=str(path)):
        again = sweep(rebuilt, "ddim", [2, 4, 8])
    assert again.errors == measured.errors and again.measured_order == measured.measured_order
    assert sweep(study, "ddim", [2, 4, 8]).errors == measured.errors  # written back whole


def _error_line(err):
    """The one error line of a network study's stderr (its cost and progress lines, prefixed '[... s]', come
    first: they are printed before any long work)."""
    lines = [line for line in err.splitlines() if not line.startswith("[")]
    assert len(lines) == 1, err
    return lines[0]


def test_order_model_names_a_damaged_cache_entry_and_rebuilds_it_when_asked(good, tmp_path, fake_solves, run_cli):
    cache = tmp_path / "cache"
    argv = ["order", "--methods", "ddim", "--steps", "2,4", "--batch", "1", "--model", str(good), "--cache", str(cache)]
    code, first, _ = run_cli(argv)
    assert code == 0
    ref = sorted(cache.glob("*/reference.npz"))[0]
    _damage_reference("truncated", ref)
    code, out, err = run_cli(argv)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"pndmkit order: error: --cache: cache entry {ref} cannot be read") and "--rebuild-cache" in err
    code, out, err = run_cli(argv + ["--rebuild-cache"])
    assert code == 0 and out == first
    assert f"pndmkit order: warning: DamagedCacheWarning: cache entry {ref} cannot be read" in err
    sweeps = ref.parent / "sweeps.json"
    _damage_sweeps("fake", sweeps)
    code, out, err = run_cli(argv)
    err = _error_line(err)  # after the study's cost lines, one error line
    assert code == 2 and err.startswith(f"pndmkit order: error: --cache: cache entry {sweeps} ['ddim|[2, 4]'] "
                                        "records order")
    code, out, err = run_cli(argv + ["--rebuild-cache"])
    assert code == 0 and out == first


def test_grid_optimize_names_a_damaged_cache_entry(good, tmp_path, fake_solves, run_cli):
    cache = tmp_path / "cache"
    argv = ["grid", "optimize", "--method", "ddim", "--nfe", "3", "--maxfev", "1", "--calibration", "1",
            "--heldout", "1", "--model", str(good), "--cache", str(cache)]
    code, first, _ = run_cli(argv)
    assert code == 0
    ref = sorted(cache.glob("*/reference.npz"))[0]
    _damage_reference("negerr", ref)
    code, out, err = run_cli(argv)
    assert code == 2 and out == "" and err.count("error:") == 1
    assert _error_line(err).startswith(f"pndmkit grid optimize: error: --cache: cache entry {ref} records the "
                                       f"reference error -1.0")
    code, out, err = run_cli(argv + ["--rebuild-cache"])
    assert code == 0 and out == first and "DamagedCacheWarning" in err


@pytest.mark.parametrize("argv, expected", [
    (["order", "--rebuild-cache"], "pndmkit order: error: --rebuild-cache: --rebuild-cache recomputes damaged "
                                   "entries of a network study's cache; it needs --model"),
    (["order", "--model", "digits", "--cache", "none", "--rebuild-cache"],
     "--rebuild-cache: --rebuild-cache recomputes damaged cache entries; --cache none caches nothing"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "3", "--model", "digits", "--cache", "none", "--rebuild-cache"],
     "--rebuild-cache: --rebuild-cache recomputes damaged entries of the reference cache of a --model"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "3", "--problem", "gmm2d", "--rebuild-cache"],
     "it needs --model and a cache other than 'none'"),
])
def test_rebuild_cache_without_a_cache_is_refused(argv, expected, run_cli):
    code, _, err = run_cli(argv)
    assert code == 2 and expected in err and err.count("\n") == 1, err


# -- run folders and training state ----------------------------------------------------------------------
SAMPLE = ["sample", "--no-progress", "--method", "ddim", "--steps", "2", "--num-samples", "4", "--batch-size", "2",
          "--threads", "1"]


def _sample_run(good, out, run_cli, *extra):
    return run_cli([*SAMPLE, "--checkpoint", str(good), "--out", str(out), *extra])


def test_sample_refuses_a_run_json_that_is_a_folder(good, tmp_path, run_cli):
    out = tmp_path / "o"
    (out / "run.json").mkdir(parents=True)
    code, _, err = _sample_run(good, out, run_cli)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"pndmkit sample: error: --out: {out / 'run.json'} is not a file (a folder?)")
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]


@pytest.mark.parametrize("field, value, phrase", [
    ("shard_size", "abc", "shard_size='abc' (an integer >= 1 expected)"),
    ("shard_size", 0, "shard_size=0"),
    ("checkpoint_sha256", None, "checkpoint_sha256=None"),
    ("times", "x", "times='x'"),
])
def test_sample_resume_refuses_a_damaged_run_json(field, value, phrase, good, tmp_path, run_cli):
    out = tmp_path / "o"
    assert _sample_run(good, out, run_cli)[0] == 0
    run = out / "run.json"
    d = json.loads(run.read_text())
    d[field] = value
    run.write_text(json.dumps(d))
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, _, err = _sample_run(good, out, run_cli, "--resume")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"pndmkit sample: error: --out: {run} is damaged: {phrase}") and "Traceback" not in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.parametrize("text, kind", [("[1, 2]", "list"), ("3", "int"), ('"run"', "str")])
def test_sample_resume_names_a_run_json_that_is_not_an_object(text, kind, good, tmp_path, run_cli):
    """run.json holding [1, 2] was reported as written by an older pndmkit without checkpoint hashes."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "run.json").write_text(text)
    code, _, err = _sample_run(good, out, run_cli, "--resume")
    assert code == 2 and err.count("\n") == 1, err
    assert err == (f"pndmkit sample: error: --out: {out / 'run.json'} is not a pndmkit run record (a JSON object "
                   f"expected, got {kind}); restore the file or use another out folder\n")
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]


def test_sample_refuses_a_shard_path_that_is_a_folder_before_sampling(good, tmp_path, run_cli, monkeypatch):
    import pndmkit.nn.generate as generate

    out = tmp_path / "o"
    assert _sample_run(good, out, run_cli)[0] == 0
    (out / "shard-00000.npz").unlink()
    (out / "shard-00000.npz").mkdir()
    monkeypatch.setattr(generate, "initial_noise", lambda *a: pytest.fail("sampled before checking the shards"))
    code, _, err = _sample_run(good, out, run_cli, "--resume")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"pndmkit sample: error: --out: {out / 'shard-00000.npz'} is not a file (a folder?), so "
                          "shard 0 cannot be written there")


@pytest.fixture
def immutable(tmp_path):
    """A folder nobody may write into, root included (``chattr +i``); skipped where that is not possible."""
    import shutil
    import subprocess

    folder = tmp_path / "ro"
    folder.mkdir()
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        yield folder
    finally:
        subprocess.run([chattr, "-i", str(folder)], capture_output=True)


def _unwritable(kind: str, tmp_path: Path, request) -> tuple[Path, str]:
    """An output folder that cannot be made: under a plain file, or inside an immutable folder."""
    if kind == "file":
        (tmp_path / "afile").write_text("x")
        return tmp_path / "afile" / "o", f"{tmp_path / 'afile'} is a file, not a folder"
    folder = request.getfixturevalue("immutable")
    return folder / "o", f"cannot write into {folder} (to create {folder / 'o'} in it): Operation not permitted"


@pytest.mark.parametrize("kind", ["file", "immutable"])
def test_train_refuses_an_unwritable_out_before_training(kind, tmp_path, run_cli, monkeypatch, request):
    from pndmkit.nn.train import Trainer

    out, phrase = _unwritable(kind, tmp_path, request)
    monkeypatch.setattr(Trainer, "train_step", lambda self: pytest.fail("trained before checking --out"))
    code, _, err = run_cli(["train", "--preset", "tiny", "--steps", "3", "--batch-size", "4", "--threads", "1",
                         "--out", str(out)])
    assert code == 2 and err.count("\n") == 1 and err.startswith("pndmkit train: error: --out: ") and phrase in err, err


@pytest.mark.parametrize("kind", ["file", "immutable"])
def test_compare_refuses_an_unwritable_out_before_comparing(kind, tmp_path, run_cli, monkeypatch, request):
    import pndmkit.commands.compare as command

    out, phrase = _unwritable(kind, tmp_path, request)
    monkeypatch.setattr(command, "compare", lambda *a, **k: pytest.fail("compared before checking --out"))
    code, _, err = run_cli(["compare", "--quick", "--out", str(out)])
    assert code == 2 and err.count("\n") == 1 and err.startswith("pndmkit compare: error: --out: ") and phrase in err


@pytest.mark.parametrize("kind", ["file", "immutable"])
def test_sample_refuses_an_unwritable_out_before_loading(kind, good, tmp_path, run_cli, monkeypatch, request):
    import pndmkit.nn.checkpoint as checkpoint

    out, phrase = _unwritable(kind, tmp_path, request)
    monkeypatch.setattr(checkpoint, "load_checkpoint", lambda *a: pytest.fail("loaded before checking --out"))
    code, _, err = _sample_run(good, out, run_cli)
    assert code == 2 and err.count("\n") == 1 and err.startswith("pndmkit sample: error: --out: ") and phrase in err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-step tiny training run: its out folder (copied by each test that damages it)."""
    from pndmkit.nn.train import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("train") / "r"
    Trainer(TrainConfig(out=str(out), preset="tiny", steps=1, batch_size=4), log=lambda m: None).run()
    return out


@pytest.mark.parametrize("kind, phrase", [
    ("garbage", "cannot be read as a training state"),
    ("truncated", "cannot be read as a training state"),
    ("empty", "cannot be read as a training state"),
    ("notastate", "is not a pndmkit training state (missing net, ema"),
    ("wrongweights", "is damaged: it does not restore this run"),
    ("folder", "is not a file (a folder?)"),
])
def test_train_resume_refuses_a_damaged_state_before_training(kind, phrase, trained, tmp_path, run_cli, monkeypatch):
    import shutil

    from pndmkit.nn.train import Trainer

    out = tmp_path / "r"
    shutil.copytree(trained, out)
    state = out / "train_state.pt"
    if kind == "garbage":
        state.write_text("garbage\n")
    elif kind == "truncated":
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    elif kind == "empty":
        state.write_bytes(b"")
    elif kind == "notastate":
        torch.save([1, 2], state)
    elif kind == "wrongweights":
        st = torch.load(state, weights_only=False)
        st["net"].pop(sorted(st["net"])[0])
        torch.save(st, state)
    else:
        state.unlink()
        state.mkdir()
    monkeypatch.setattr(Trainer, "train_step", lambda self: pytest.fail("trained before checking the state"))
    code, _, err = run_cli(["train", "--preset", "tiny", "--steps", "3", "--batch-size", "4", "--threads", "1",
                         "--out", str(out), "--resume"])
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"pndmkit train: error: --out: {state} ") and phrase in err, err


# -- pf on the command line: batch-independent, its options recorded ----------------------------------------
PF = ["sample", "--no-progress", "--method", "pf", "--threads", "1"]


@pytest.fixture(scope="module")
def smooth(tmp_path_factory):
    """A tiny network whose output layer is scaled down: a smooth ODE that RK45 crosses in a few dozen steps."""
    torch.manual_seed(1)
    net = UNet.preset("tiny").eval()
    with torch.no_grad():
        net.conv_out.weight.mul_(0.05)
        net.conv_out.bias.mul_(0.05)
    return save_checkpoint(tmp_path_factory.mktemp("smooth") / "m", net, schedule=DiscreteVP.linear())


def test_sample_pf_does_not_depend_on_the_batch_size(smooth, tmp_path, run_cli):
    from pndmkit.nn.generate import read_samples

    runs = {}
    for batch in (1, 2):
        out = tmp_path / f"b{batch}"
        code, stdout, err = run_cli([*PF, "--num-samples", "2", "--batch-size", str(batch), "--checkpoint", str(smooth),
                                  "--out", str(out)])
        assert code == 0, err
        runs[batch] = read_samples(out, expect=2)[1]
        summary = json.loads(stdout)
        assert summary["steps"] is None and summary["nfe_per_sample"] > 6
        run = json.loads((out / "run.json").read_text())
        assert run["steps"] is None and run["method_options"] == {
            "rtol": 1e-5, "atol": 1e-5, "solver": "RK45", "variable": "auto", "name": "pf", "per_sample": True}
    np.testing.assert_array_equal(runs[1], runs[2])  # bit for bit: every sample has its own step-size control
    assert np.abs(runs[1]).max() > 0


def test_sample_pf_ignores_steps_as_the_api_does_and_records_none(smooth, tmp_path, run_cli):
    """One policy for steps with an adaptive method, CLI and API alike: the run goes ahead without them, an
    IgnoredStepsWarning says so, and run.json records steps: null, so the run is the one without --steps
    (resuming it without --steps finds it complete)."""
    out = tmp_path / "o"
    argv = [*PF, "--num-samples", "2", "--batch-size", "2", "--checkpoint", str(smooth), "--out", str(out)]
    code, stdout, err = run_cli([*argv, "--steps", "5"])
    assert code == 0, err
    warned = [line for line in err.splitlines() if "IgnoredStepsWarning" in line]
    assert len(warned) == 1 and warned[0].startswith("pndmkit") and "warning: IgnoredStepsWarning: steps=5 is " \
        "ignored by the adaptive method 'pf': it chooses its own steps" in warned[0] and "(--steps)" in warned[0]
    assert json.loads(stdout)["steps"] is None and json.loads((out / "run.json").read_text())["steps"] is None
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, _, err = run_cli([*argv, "--resume"])
    assert code == 0, err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "summary.json"} == \
        {name: t for name, t in before.items() if name != "summary.json"}


def test_sample_pf_ignores_grid_as_the_api_does_and_records_the_end_times(smooth, tmp_path, run_cli):
    """--grid with pf changes nothing (it integrates between the end times only): an IgnoredGridWarning says so,
    run.json records grid: null, and its times are the two end times, marked as steps chosen per sample (not a
    dry run's steps of a zero model)."""
    from pndmkit.nn.generate import read_samples
    from pndmkit.sampling import adaptive_end_times

    argv = [*PF, "--num-samples", "2", "--batch-size", "2", "--checkpoint", str(smooth)]
    code, stdout, err = run_cli([*argv, "--grid", "quadratic", "--out", str(tmp_path / "g")])
    assert code == 0, err
    warned = [line for line in err.splitlines() if "IgnoredGridWarning" in line]
    assert len(warned) == 1 and "IgnoredGridWarning: grid='quadratic' is ignored by the adaptive method 'pf'" \
        in warned[0] and "(--grid)" in warned[0]
    run = json.loads((tmp_path / "g" / "run.json").read_text())
    schedule = load_checkpoint(smooth).schedule
    assert run["grid"] is None and run["steps_chosen_per_sample"] is True
    assert run["times"] == adaptive_end_times(schedule).tolist() == [schedule.num_train_timesteps - 1.0, -1.0]
    assert json.loads(stdout)["nfe_per_sample"] > 2  # many more steps than the two times recorded
    code, _, err = run_cli([*argv, "--out", str(tmp_path / "p")])
    assert code == 0, err
    np.testing.assert_array_equal(read_samples(tmp_path / "g", expect=2)[1], read_samples(tmp_path / "p", expect=2)[1])
    assert json.loads((tmp_path / "p" / "run.json").read_text()) == run  # the run without --grid, recorded alike


def test_a_pf_run_of_the_batch_wide_step_control_is_not_resumed(good, tmp_path, run_cli, monkeypatch):
    """run.json of a pf run made before per-sample control (steps recorded, no method_options): refused."""
    import pndmkit.nn.generate as generate

    out = tmp_path / "o"
    monkeypatch.setattr(generate, "initial_noise", lambda *a: pytest.fail("sampled"))
    out.mkdir()
    ident = {"format": 2, "checkpoint": str(good.resolve()), "checkpoint_sha256": {
        s: generate.file_sha256(good.with_suffix("." + s)) for s in ("json", "safetensors")}, "method": "pf",
        "steps": 50, "num_samples": 3, "shard_size": 3, "seed": 0, "grid": None, "convention": None,
        "dtype": "float32", "times": []}
    (out / "run.json").write_text(json.dumps(ident))
    code, _, err = run_cli([*PF, "--num-samples", "3", "--checkpoint", str(good), "--out", str(out), "--resume"])
    assert code == 2 and err.count("\n") == 1
    assert "steps=50 in run.json, None now" in err and "method_options=None in run.json" in err
