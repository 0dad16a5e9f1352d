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

from pndmkit.cli import main  # noqa: E402
from pndmkit.errors import BadFileError, UsageError  # noqa: E402
from pndmkit.nn.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from pndmkit.nn.unet import UNet  # noqa: E402
from pndmkit.schedules import DiscreteVP  # noqa: E402

torch.set_num_threads(1)


def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


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
    raise AssertionError(kind)


KINDS = ["truncated", "emptyweights", "garbage", "weightsdir", "nanweights", "missingtensor", "unexpectedtensor",
         "wrongpreset", "badjson", "emptyjson", "listjson", "nonetwork", "badclass", "badformat", "badprediction",
         "badtimescale", "zerotimescale", "zeroimage", "badschedule", "dirjson"]


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
def test_every_command_refuses_a_damaged_checkpoint_in_one_line(command, kind, good, tmp_path, capsys):
    stem = _copy(good, tmp_path, kind)
    path, phrase = _damage(kind, stem)
    out = tmp_path / "o"
    code, stdout, err = _run([a.replace("{out}", str(out)) for a in COMMANDS[command]] + [str(stem)], capsys)
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
