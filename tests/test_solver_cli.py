"""Fitted solvers kept and used: ``FittedSolver``, ``save_solver`` / ``load_solver``, ``pndmkit grid fit --out FILE``
and ``pndmkit sample --solver FILE``.

Every fit here is gmm1d at NFE 3 on a few noises (about a second); ``--no-fallback`` keeps the fitted weights, so
the runs compared below are those of a table that is not iPNDM's (each test checks that it is not).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest

import pndmkit
from pndmkit.adams import adams_bashforth_table
from pndmkit.errors import BadFileError, UsageError
from pndmkit.problems import get_problem
from pndmkit.schedules import DiscreteVP, LinearVP, schedule_key
from pndmkit.studies.solver_opt import (FITTED_NAME, SOLVER_FORMAT, FittedSolver, load_solver, optimize_solver,
                                        save_solver)

FIT = dict(calibration=4, heldout=4, maxfev=30, grid_maxfev=8)
FIT_ARGS = ["--problem", "gmm1d", "--nfe", "3", "--calibration", "4", "--heldout", "4", "--maxfev", "30",
            "--grid-maxfev", "8"]


@pytest.fixture(scope="module")
def fitted():
    """The in-process fit the command line's must equal (fitted weights kept)."""
    return optimize_solver("gmm1d", 3, fallback=False, **FIT)


@pytest.fixture(scope="module")
def solver_file(tmp_path_factory):
    """A solver file written by ``pndmkit grid fit`` (the same fit as :func:`fitted`)."""
    from pndmkit.cli import main

    path = tmp_path_factory.mktemp("fit") / "solver.json"
    assert main(["grid", "fit", *FIT_ARGS, "--no-fallback", "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, one_thread):
    """A tiny UNet checkpoint on gmm1d's schedule (DiscreteVP.linear), untrained: what matters is that both
    sides run the same network."""
    torch = pytest.importorskip("torch")
    from pndmkit.nn.checkpoint import save_checkpoint
    from pndmkit.nn.unet import UNet

    torch.manual_seed(0)
    stem = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(stem, UNet.preset("tiny"), schedule=DiscreteVP.linear())
    return str(stem)


def _model(schedule):
    problem = get_problem("gmm1d")
    return lambda x, t: problem.eps(x, t, schedule)


def test_grid_fit_writes_the_solver_the_api_fits_and_reports_it(fitted, tmp_path, run_cli):
    out = tmp_path / "deeper" / "s.json"
    code, stdout, err = run_cli(["grid", "fit", *FIT_ARGS, "--no-fallback", "--out", str(out)])
    assert code == 0, err
    loaded = load_solver(out)
    assert loaded == fitted.fitted and loaded.to_dict() == fitted.fitted.to_dict()
    assert loaded.weights != adams_bashforth_table(3) and not loaded.fell_back  # the fitted table, not iPNDM's
    assert (loaded.nfe, loaded.steps, loaded.problem, loaded.calibration, loaded.heldout, loaded.seed) == \
        (3, 3, "gmm1d", 4, 4, 0)
    assert loaded.heldout_error == fitted.heldout_error and loaded.calibration_error == fitted.calibration_error
    data = json.loads(out.read_text())
    assert data["format"] == SOLVER_FORMAT and data["schedule"] == "DiscreteVP.linear(T=1000)"
    assert data["schedule_spec"] == {"kind": "discrete", "name": "linear", "T": 1000, "beta_start": 0.0001,
                                     "beta_end": 0.02}
    lines = stdout.splitlines()
    assert lines[0].startswith("fitted solver at NFE 3 (3 steps, 30 calibration runs on 4 noises; held out on 4)")
    assert "  grid: " + " ".join(f"{t:.7g}" for t in fitted.grid) in lines
    assert any(line.startswith("  started from the grid search: ipndm at NFE 3") for line in lines)
    assert lines[-1].startswith(f"wrote {out}; sample with it: pndmkit sample --solver {out}")
    assert sorted(p.name for p in out.parent.iterdir()) == ["s.json"]  # no temporary left


def test_grid_fit_json_prints_the_fit_and_writes_the_file_first(fitted, tmp_path, run_cli):
    out = tmp_path / "s.json"
    code, stdout, err = run_cli(["grid", "fit", *FIT_ARGS, "--no-fallback", "--out", str(out), "--json"])
    assert code == 0 and f"wrote {out}" in err
    printed = json.loads(stdout)
    assert printed == json.loads(json.dumps(fitted.to_dict())) and load_solver(out) == fitted.fitted


def _strict_json(text):
    """``json.loads`` that refuses NaN and Infinity, which strict JSON has not."""
    def refuse(constant):
        raise ValueError(f"{constant} is no strict JSON")

    return json.loads(text, parse_constant=refuse)


def test_grid_fit_json_on_a_fallback_is_strict_json_and_says_which_solver_each_error_is(tmp_path, run_cli):
    """4 held-out noises give no interval (nan), so the fit falls back: null intervals, the handed-back table
    (iPNDM's) apart from the searched one, and the errors of each."""
    out = tmp_path / "s.json"
    code, stdout, err = run_cli(["grid", "fit", *FIT_ARGS, "--out", str(out), "--json"])
    assert code == 0, err
    printed = _strict_json(stdout)
    assert printed["fell_back"] and printed["heldout_interval"] == [None, None]
    assert printed["builtin_interval"] == [None, None]
    assert printed["weights"] == [list(r) for r in adams_bashforth_table(3)]
    assert printed["searched_weights"] != printed["weights"] and len(printed["searched_grid"]) == 4
    saved = _strict_json(out.read_text())
    assert saved["weights"] == printed["weights"] and saved["grid"] == printed["grid"]
    assert (saved["calibration_error"], saved["heldout_error"]) == (printed["handed_back_calibration_error"],
                                                                    printed["handed_back_heldout_error"])
    assert printed["handed_back_heldout_error"] == printed["baseline_error"] != printed["heldout_error"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        api = optimize_solver("gmm1d", 3, **FIT)
    assert printed["searched_weights"] == [list(r) for r in api.searched_weights]
    assert printed["heldout_error"] == api.heldout_error  # the searched fit's, not the handed-back solver's


def test_a_loaded_solver_samples_as_the_fit_did_bit_for_bit(fitted, solver_file):
    loaded = load_solver(solver_file)
    schedule = loaded.noise_schedule
    model = _model(schedule)
    x_T = np.random.default_rng(3).standard_normal((6, 1))
    here, there = fitted.sample(model, x_T), loaded.sample(model, x_T)
    assert np.array_equal(here.x, there.x) and here.nfe == there.nfe == 3
    assert np.array_equal(here.times, fitted.grid) and np.array_equal(there.times, loaded.grid)
    # the fitted weights ran: iPNDM on the same grid from the same state ends elsewhere
    ipndm = pndmkit.sample(model, x_T, schedule=schedule, method="ipndm", grid=loaded.grid)
    assert not np.allclose(ipndm.x, there.x)
    assert fitted.integrator().estimator.weights == loaded.integrator().estimator.weights == fitted.weights


def test_optimized_solver_hands_its_sampling_to_its_fitted_solver(fitted, monkeypatch):
    seen = []
    real = FittedSolver.sample

    def spy(self, model, x_T, **kwargs):
        seen.append(self)
        return real(self, model, x_T, **kwargs)

    monkeypatch.setattr(FittedSolver, "sample", spy)
    fitted.sample(_model(fitted.fitted.noise_schedule), np.ones((1, 1)))
    assert seen == [fitted.fitted]


def test_a_fallback_records_the_errors_of_the_solver_it_hands_back():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = optimize_solver("gmm1d", 3, **FIT)  # 4 held-out noises: no interval, so it falls back
    solver = res.fitted
    assert res.fell_back and solver.fell_back and solver.weights == adams_bashforth_table(3)
    assert np.array_equal(solver.grid, res.grid_result.grid)
    assert solver.heldout_error == res.baseline_error and solver.calibration_error == res.baseline_calibration_error
    assert math.isfinite(solver.calibration_error) and solver.calibration_error != res.calibration_error


def test_a_stop_ends_both_searches_and_the_solver_handed_back_is_still_measured():
    """``stop_early`` (Ctrl-C, ``--max-minutes``) stops the grid search at its first run, and the weight search then
    runs only its start; what is handed back is the start, its error measured."""
    import warnings

    calls = []

    def stop():
        calls.append(1)
        raise KeyboardInterrupt("time is up")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = optimize_solver("gmm1d", 3, stop_early=stop, fallback=False, **FIT)
    assert res.grid_result.stopped.startswith("time is up after 0 of at most 8 runs")
    assert res.stopped == f"the grid search was stopped ({res.grid_result.stopped}), so the weights were not searched"
    assert res.evaluations == 1 and len(calls) == 1  # the start is always run once, without asking stop_early
    assert math.isfinite(res.calibration_error) and res.weights == adams_bashforth_table(3)
    assert math.isfinite(res.fitted.calibration_error)


@pytest.mark.parametrize("which, base", [("solver_file", "ipndm"), ("solver_file_x0", "ipndm-x0")])
def test_sample_solver_writes_what_the_loaded_solver_samples(which, base, ckpt, tmp_path, request):
    """``sample --solver FILE`` runs the file's weights on the file's base (it reads the base from the file)."""
    torch = pytest.importorskip("torch")
    from pndmkit.cli import main
    from pndmkit.nn.checkpoint import load_checkpoint
    from pndmkit.nn.generate import initial_noise, read_samples

    solver_file = request.getfixturevalue(which)
    out = tmp_path / "o"
    assert main(["sample", "--checkpoint", ckpt + ".json", "--solver", str(solver_file), "--num-samples", "2",
                 "--seed", "2", "--out", str(out), "--no-progress"]) == 0
    _, x = read_samples(out, expect=2)
    solver = load_solver(solver_file)
    assert solver.base == base
    net = load_checkpoint(ckpt)
    with torch.no_grad():
        expected = solver.sample(net.model(), initial_noise(range(2), net.shape, 2)).x
    assert np.array_equal(x, expected.numpy())
    run = json.loads((out / "run.json").read_text())
    assert run["method"] == base + "-fitted" and run["steps"] == 3 and run["solver"] == solver.to_dict()
    assert run["solver"]["base"] == base and run["times"] == run["grid"] == [float(t) for t in solver.grid]
    # the fitted weights ran, not the base method's on the same grid
    with torch.no_grad():
        plain = pndmkit.sample(net.model(), initial_noise(range(2), net.shape, 2), schedule=net.schedule,
                               method=base, grid=solver.grid).x
    assert not np.allclose(x, plain.numpy())


def test_sample_config_takes_the_solver_s_settings_and_refuses_others(solver_file):
    pytest.importorskip("torch")
    from pndmkit.nn.generate import SampleConfig

    solver = load_solver(solver_file)
    cfg = SampleConfig(solver=solver, steps=3)  # what the solver sets, given alike, is no conflict
    assert (cfg.method, cfg.steps, cfg.grid) == (FITTED_NAME, 3, [float(t) for t in solver.grid])
    assert SampleConfig().method == pndmkit.methods.DEFAULT_METHOD
    for kwargs in ({"steps": 4}, {"method": "ipndm"}, {"grid": "quadratic"}, {"t_start": 999.0},
                   {"convention": "ddim"}):
        with pytest.raises(UsageError) as info:
            SampleConfig(solver=solver, **kwargs)
        assert info.value.params == ("solver", *kwargs), info.value
    with pytest.raises(UsageError) as info:
        SampleConfig(solver=str(solver_file))
    assert info.value.params == ("solver",) and "must be a fitted solver" in str(info.value)


def test_sample_solver_resume_refuses_another_solver(solver_file, ckpt, tmp_path, usage_error):
    from pndmkit.cli import main

    out = tmp_path / "o"
    common = ["sample", "--checkpoint", ckpt + ".json", "--num-samples", "2", "--out", str(out), "--no-progress"]
    assert main([*common, "--solver", str(solver_file)]) == 0
    other = load_solver(solver_file)
    other_file = save_solver(FittedSolver(grid=other.grid, weights=adams_bashforth_table(3), t_start=other.t_start,
                                          schedule=other.schedule, noise_schedule=other.noise_schedule),
                             tmp_path / "other.json")
    err = usage_error([*common, "--solver", str(other_file), "--resume"])
    assert err.startswith("pndmkit sample: error: --resume/--solver: cannot resume") and "weights" in err, err
    assert main([*common, "--solver", str(solver_file), "--resume"]) == 0


def _damage(data: dict, edit: str) -> str:
    if edit == "cut short":
        return json.dumps(data)[:-40]
    data = json.loads(json.dumps(data))
    if edit == "row length":
        data["weights"][1] = [1.0, 2.0, 3.0]
    elif edit == "nan weight":
        data["weights"][2][0] = float("nan")
    elif edit == "huge weight":  # finite in float64, beyond float32's range
        data["weights"][1][0] = 1e39
    elif edit == "missing field":
        del data["grid"]
    elif edit == "not decreasing":
        data["grid"][1], data["grid"][2] = data["grid"][2], data["grid"][1]
    elif edit == "grid length":
        data["grid"] = data["grid"][:2] + data["grid"][3:]
    elif edit == "grid below the domain":
        data["grid"][-1] = -50.0
    elif edit == "t_start above the domain":
        data["t_start"] = 5000.0
    elif edit == "no version":
        del data["version"]
    elif edit == "unknown field":
        data["step"] = 4  # a misspelt field
    elif edit == "format":
        data["format"] = "pndmkit-checkpoint"
    elif edit == "schedule spec":
        data["schedule_spec"] = {"kind": "linear-vp", "beta_min": 0.1, "beta_max": 20.0}
    elif edit == "nfe":
        data["nfe"] = 4
    elif edit == "unknown base":
        data["base"] = "ipndm-v"
    elif edit == "no base":
        del data["base"]
    elif edit == "version 3":
        data["version"] = 3
    elif edit == "float version":
        data["version"] = 2.0
    elif edit == "float steps":
        data["steps"] = 3.0
    elif edit == "float nfe":
        data["nfe"] = 3.0
    elif edit == "string in the grid":
        data["grid"][1] = str(data["grid"][1])
    elif edit == "bool in the grid":
        data["grid"][-1] = False
    elif edit == "string t_start":
        data["t_start"] = str(data["t_start"])
    elif edit == "bool error":
        data["heldout_error"] = True
    elif edit == "string weight":
        data["weights"][1][0] = "1.2"
    elif edit == "bool weight":
        data["weights"][1][0] = True
    elif edit == "duplicate key":  # json.dumps cannot write one: the last "grid" would win unseen
        return json.dumps(data).replace('"grid": ', '"grid": [999.0, 0.0], "grid": ', 1)
    elif edit == "infinity":
        data["heldout_error"] = float("inf")
    elif edit == "long integer":
        return json.dumps(data).replace('"seed": 0', '"seed": ' + "9" * 5000, 1)
    elif edit == "huge float":
        return json.dumps(data).replace('"seed": 0', '"seed": 1e999', 1)
    elif edit == "base in version 1":  # a version 1 reader knows no base, so a version 1 file may not hold one
        data["version"] = 1
    return json.dumps(data)


DAMAGES = [
    ("cut short", "is not valid JSON (line"),
    ("row length", "has a bad field 'weights': weights[1] must hold 1 to 2 weights"),
    ("nan weight", "holds NaN, which is not JSON (RFC 8259 has no NaN or Infinity; pndmkit writes null); restore "
                   "the file"),
    ("infinity", "holds Infinity, which is not JSON"),
    ("duplicate key", "holds the key 'grid' twice in one object"),
    ("long integer", "holds an integer of 5000 digits, out of range (at most 4300 digits are read"),
    ("huge float", "holds the number 1e999, out of range (beyond a float's largest"),
    ("float version", "has field 'version' 2.0; this pndmkit reads versions 1 and 2 (JSON integers)"),
    ("float steps", "has a bad field 'steps': 3.0, but weights has 3 rows, so steps must be the integer 3"),
    ("float nfe", "has a bad field 'nfe': nfe must be an integer, got float 3.0"),
    ("string in the grid", "has a bad field 'grid': grid[1] must be a number (a time), got str '"),
    ("bool in the grid", "has a bad field 'grid': grid[3] must be a number (a time), got bool False"),
    ("string t_start", "has a bad field 't_start': t_start must be a real number, got str '"),
    ("bool error", "has a bad field 'heldout_error': heldout_error must be a finite number >= 0, or nan (not "
                   "measured), got True"),
    ("string weight", "has a bad field 'weights': weights[1][0]"),
    ("bool weight", "has a bad field 'weights': weights[1][0]"),
    ("huge weight", "has a bad field 'weights': weights[1][0]=1e+39 exceeds 1e+06 in magnitude"),
    ("missing field", "has no field 'grid'"),
    ("not decreasing", "has a bad field 'grid': grid must be strictly decreasing"),
    ("grid length", "has a bad field 'grid': grid has 3 times (2 steps) but weights has 3 rows"),
    ("grid below the domain", "has a bad field 'grid': grid[3]=-50.0 lies outside the domain [-1.0, 999.0] of "
                              "DiscreteVP.linear(T=1000)"),
    ("t_start above the domain", "has a bad field 't_start': t_start=5000.0 lies outside the domain [-1.0, 999.0]"),
    ("no version", "has no field 'version' (this pndmkit reads versions 1 and 2)"),
    ("unknown field", "has unknown field 'step' (a version 2 solver file holds only format, version, nfe, steps, "),
    ("unknown base", "has a bad field 'base': base must be one of 'ipndm', 'ipndm-x0' (the methods a fitted solver "
                     "is built on), got 'ipndm-v'"),
    ("no base", "has no field 'base'"),
    ("version 3", "has field 'version' 3; this pndmkit reads versions 1 and 2"),
    ("base in version 1", "has unknown field 'base' (a version 1 solver file holds only format, version, nfe, steps, "
                          "grid, weights, t_start, schedule, schedule_spec, calibration_error, heldout_error, "
                          "fell_back, problem, calibration, heldout, seed)"),
    ("format", "is not a pndmkit solver file (field 'format' is 'pndmkit-checkpoint'"),
    ("schedule spec", "has a bad field 'schedule_spec': it describes LinearVP(beta_min=0.1, beta_max=20.0), but "
                      "field 'schedule' names DiscreteVP.linear(T=1000)"),
    ("nfe", "has a bad field 'nfe': nfe=4 but weights has 3 rows"),
]


@pytest.mark.parametrize("edit, expected", DAMAGES)
def test_a_damaged_solver_file_is_named_with_its_field(solver_file, tmp_path, usage_error, edit, expected):
    bad = tmp_path / "bad.json"
    bad.write_text(_damage(json.loads(solver_file.read_text()), edit))
    with pytest.raises(BadFileError) as info:
        load_solver(bad)
    assert str(info.value).startswith(f"solver file {bad} ") and expected in str(info.value), info.value
    assert info.value.path == str(bad)
    err = usage_error(["sample", "--solver", str(bad), "--out", str(tmp_path / "o"), "--no-progress"])
    assert err.startswith(f"pndmkit sample: error: --solver: solver file {bad} ") and expected in err, err
    assert not (tmp_path / "o").exists()


def _deep(path: Path) -> str:
    path.write_text("[" * 100_000 + "]" * 100_000)  # valid JSON, beyond Python's recursion limit
    return "nests its values too deep for Python's JSON reader: not a solver file"


def _big(path: Path) -> str:
    with open(path, "wb") as f:  # a sparse file: 16 MiB + 1 byte of nothing, refused before it is read
        f.truncate(16 * 2**20 + 1)
    return f"is {16 * 2**20 + 1} bytes, above the {16 * 2**20}-byte limit (16 MiB; a solver file holds a few KB)"


def _fifo(path: Path) -> str:
    os.mkfifo(path)  # reading it would wait for a writer for ever
    return "is not a regular file (a FIFO)"


@pytest.mark.parametrize("make", [_deep, _big, _fifo])
def test_a_file_that_is_no_solver_file_is_refused_in_one_line(make, tmp_path, usage_error):
    bad = tmp_path / "bad.json"
    expected = make(bad)
    with pytest.raises(BadFileError) as info:
        load_solver(bad)
    assert str(info.value) == (f"solver file {bad} {expected}; restore the file or fit the solver again (pndmkit "
                               "grid fit --out FILE)"), info.value
    err = usage_error(["sample", "--solver", str(bad), "--out", str(tmp_path / "o"), "--no-progress"])
    assert err.startswith(f"pndmkit sample: error: --solver: solver file {bad} {expected}; "), err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_a_device_is_not_a_regular_solver_file():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    with pytest.raises(BadFileError, match=r"^solver file /dev/zero is not a regular file \(a character device\); "):
        load_solver("/dev/zero")


@pytest.mark.parametrize("path", [None, 3, ""])
def test_load_solver_names_a_path_that_is_not_one(path):
    with pytest.raises(UsageError) as info:
        load_solver(path)
    assert info.value.params == ("path",) and f"got {path!r}" in str(info.value)


def test_the_solver_file_holds_exactly_its_documented_fields(solver_file):
    from pndmkit.studies.solver_file import SOLVER_FIELDS

    assert sorted(json.loads(solver_file.read_text())) == sorted(SOLVER_FIELDS)


def test_a_missing_or_folder_solver_file_is_named(tmp_path, usage_error):
    err = usage_error(["sample", "--solver", str(tmp_path / "none.json"), "--out", str(tmp_path / "o")])
    assert f"--solver: solver file {tmp_path / 'none.json'} not found" in err
    err = usage_error(["sample", "--solver", str(tmp_path), "--out", str(tmp_path / "o")])
    assert f"--solver: solver file {tmp_path} is not a file" in err


@pytest.mark.parametrize("extra, option", [
    (["--method", "ipndm"], "--method"), (["--steps", "3"], "--steps"), (["--grid", "999,500,-1"], "--grid"),
    (["--grid", "quadratic"], "--grid"), (["--convention", "ddim"], "--convention"), (["--t-start", "500"], "--t-start"),
])
def test_sample_solver_refuses_options_the_solver_sets(solver_file, tmp_path, usage_error, extra, option):
    err = usage_error(["sample", "--solver", str(solver_file), *extra, "--out", str(tmp_path / "o")])
    assert err.startswith(f"pndmkit sample: error: --solver/{option}: --solver {solver_file} and {option} cannot be "
                          "given together"), err
    assert not (tmp_path / "o").exists()


def test_sample_solver_refuses_a_checkpoint_of_another_schedule(solver_file, tmp_path, usage_error):
    pytest.importorskip("torch")
    from pndmkit.nn.checkpoint import save_checkpoint
    from pndmkit.nn.unet import UNet

    stem = save_checkpoint(tmp_path / "vp", UNet.preset("tiny"), schedule=LinearVP())
    err = usage_error(["sample", "--solver", str(solver_file), "--checkpoint", str(stem) + ".json", "--out",
                       str(tmp_path / "o"), "--no-progress"])
    assert "--solver/--checkpoint: the solver was fitted on DiscreteVP.linear(T=1000), but checkpoint" in err
    assert "has the schedule LinearVP(beta_min=0.1, beta_max=20.0)" in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, expected", [
    (["--nfe", "0"], "--nfe: expected an integer in [1, 100000], got '0'"),
    (["--nfe", "3", "--maxfev", "0"], "--maxfev: expected an integer >= 1, got '0'"),
    (["--nfe", "3", "--grid-maxfev", "0"], "--grid-maxfev: expected an integer >= 1, got '0'"),
    (["--nfe", "3", "--maxfev", "99999999"], "--maxfev: maxfev must be at most"),
    (["--nfe", "3", "--grid-maxfev", "99999999"], "--grid-maxfev: grid_maxfev must be at most"),
    (["--nfe", "3", "--calibration", "0"], "--calibration: expected an integer >= 1, got '0'"),
    (["--nfe", "3", "--cache", "x"], "--cache: --cache DIR holds a network's references; it needs --model"),
    (["--nfe", "3", "--device", "cpu"], "--device: --device applies to a network; it needs --model"),
    (["--nfe", "3", "--method", "ddim"], "unrecognized arguments: --method ddim"),
])
def test_grid_fit_bad_options_are_named_and_write_nothing(tmp_path, usage_error, args, expected):
    out = tmp_path / "s.json"
    err = usage_error(["grid", "fit", "--problem", "gmm1d", *args, "--out", str(out)])
    assert expected in err and not out.exists(), err


def test_grid_fit_one_step_with_the_first_time_fixed_fits_its_weight(tmp_path, run_cli):
    """One step from the noise's time: no grid to move, but the step's weight is fitted, as the API does."""
    out = tmp_path / "one.json"
    kw = dict(first_time="fixed", calibration=8, heldout=8)
    code, stdout, err = run_cli(["grid", "fit", "--problem", "gmm1d", "--nfe", "1", "--first-time", "fixed",
                                 "--calibration", "8", "--heldout", "8", "--out", str(out)])
    assert code == 0, err
    api = optimize_solver("gmm1d", 1, **kw)
    loaded = load_solver(out)
    assert loaded == api.fitted and not loaded.fell_back and loaded.weights != ((1.0,),)
    assert loaded.grid.tolist() == [999.0, -1.0] and api.grid_result.evaluations == 0
    assert loaded.heldout_error < 0.5 * api.baseline_error  # the one weight cuts the error (0.503 -> 0.059)
    assert stdout.startswith("fitted solver at NFE 1 (1 step, ")


def test_grid_fit_out_is_checked_before_the_fit(tmp_path, usage_error, monkeypatch):
    import pndmkit.studies.solver_opt as solver_opt

    def no_fit(*args, **kwargs):
        raise AssertionError("the fit ran")

    monkeypatch.setattr(solver_opt, "optimize_solver", no_fit)
    common = ["grid", "fit", "--problem", "gmm1d", "--nfe", "3"]
    err = usage_error([*common, "--out", str(tmp_path)])
    assert f"--out: {str(tmp_path)!r} is a folder; give the solver file's name" in err
    taken = tmp_path / "taken.json"
    taken.write_text("keep me")
    err = usage_error([*common, "--out", str(taken)])
    assert f"--out: {str(taken)!r} already exists; pass --overwrite to replace it" in err
    assert taken.read_text() == "keep me"
    file_in_the_way = tmp_path / "file"
    file_in_the_way.write_text("")
    err = usage_error([*common, "--out", str(file_in_the_way / "s.json")])
    assert f"--out: {str(file_in_the_way)!r} exists and is not a folder" in err
    # a trailing slash names a folder, missing (nothing is made) or a file's name
    err = usage_error([*common, "--out", f"{tmp_path / 'newdir3'}/"])
    assert f"--out: '{tmp_path / 'newdir3'}/' names a folder (it ends in '/'); give the solver file's name" in err
    assert not (tmp_path / "newdir3").exists()
    err = usage_error([*common, "--out", f"{taken}/", "--overwrite"])
    assert f"--out: '{taken}/' names a folder" in err and taken.read_text() == "keep me"
    # a FIFO (or a device) is never replaced, --overwrite or not
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    err = usage_error([*common, "--out", str(fifo), "--overwrite"])
    assert f"--out: {str(fifo)!r} is a FIFO, not a regular file" in err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    err = usage_error([*common, "--out", "/dev/null", "--overwrite"])
    assert "--out: '/dev/null' is a character device, not a regular file" in err
    err = usage_error(["grid", "fit", "--problem", "gmm1d", "--nfe", "3"])
    assert "the following arguments are required: --out" in err
    err = usage_error(["grid", "fit", "--nfe", "3", "--model", "gmm2d", "--out", str(tmp_path / "m.json")])
    assert "--model: 'gmm2d' is a built-in problem, not a network; use --problem gmm2d" in err
    err = usage_error(["grid", "fit", "--nfe", "3", "--out", str(tmp_path / "m.json")])
    assert "--problem/--model: give exactly one of --problem NAME or --model" in err


def test_grid_fit_out_makes_missing_folders_as_every_out_does_and_says_so(fitted, tmp_path, run_cli):
    """The rule of pndmkit's --out options (compare's and sample's --out DIR make their missing folders): grid fit's
    --out FILE makes the folders on its path, checked writable before the fit, and its --help says so."""
    code, stdout, _ = run_cli(["grid", "fit", "--help"])
    assert code == 0
    assert ("the solver file to write (JSON, written atomically; missing folders on its path are created, as "
            "compare's and sample's --out DIR are;") in " ".join(stdout.split())
    out = tmp_path / "a" / "b" / "s.json"
    code, _, err = run_cli(["grid", "fit", *FIT_ARGS, "--no-fallback", "--out", str(out)])
    assert code == 0, err
    assert load_solver(out) == fitted.fitted and sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b"]


def test_grid_fit_overwrite_replaces_the_file(fitted, tmp_path, run_cli):
    out = tmp_path / "s.json"
    out.write_text("old")
    code, _, err = run_cli(["grid", "fit", *FIT_ARGS, "--no-fallback", "--out", str(out), "--overwrite"])
    assert code == 0, err
    assert load_solver(out) == fitted.fitted


def _fail_writes(monkeypatch, code):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_grid_fit_that_cannot_write_out_keeps_the_fit(fitted, tmp_path, run_cli, monkeypatch, json_flag):
    """A full disk after the fit: one line naming --out, the path and the reason (exit 2), the report printed,
    and the solver file's text after it on stdout, which load_solver reads back as the fit."""
    out = tmp_path / "a.json"
    import pndmkit.studies.solver_opt as solver_opt
    original = solver_opt.save_solver

    def save_on_a_full_disk(*args, **kwargs):  # the fit ran with real writes; from here they fail
        _fail_writes(monkeypatch, errno.ENOSPC)
        return original(*args, **kwargs)

    monkeypatch.setattr(solver_opt, "save_solver", save_on_a_full_disk)
    code, stdout, err = run_cli(["grid", "fit", *FIT_ARGS, "--no-fallback", "--out", str(out), *json_flag])
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"pndmkit grid fit: error: --out: cannot write {out}: No space left on device; the fit "
                          "is not lost")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    text = stdout[stdout.rindex("\n{\n") + 1:]
    (tmp_path / "kept.json").write_text(text)
    assert load_solver(tmp_path / "kept.json") == fitted.fitted
    if json_flag:
        assert json.loads(stdout[:stdout.rindex("\n{\n")])["heldout_error"] == fitted.heldout_error
    else:
        assert stdout.startswith("fitted solver at NFE 3")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
@pytest.mark.parametrize("where", ["mkstemp", "replace"])
def test_save_solver_that_cannot_write_names_the_path_and_leaves_nothing(fitted, tmp_path, monkeypatch, code, where):
    from pndmkit.errors import WriteError

    path = tmp_path / "s.json"
    path.write_text("earlier")
    if where == "mkstemp":
        _fail_writes(monkeypatch, code)
    else:
        def refuse(src, dst):
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(WriteError) as info:
        save_solver(fitted, path)
    assert isinstance(info.value, OSError) and info.value.errno == code and info.value.filename == str(path)
    assert str(info.value) == f"cannot write {path}: {os.strerror(code)}"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"] and path.read_text() == "earlier"


def test_save_solver_refuses_what_is_no_regular_file_path(fitted, tmp_path):
    for bad in (None, "", 3):
        with pytest.raises(UsageError) as info:
            save_solver(fitted, bad)
        assert info.value.params == ("path",)
        assert str(info.value) == f"path must be the solver file's path (a non-empty str or os.PathLike), got {bad!r}"
    with pytest.raises(UsageError) as info:
        save_solver(fitted, f"{tmp_path / 'new'}/")
    assert info.value.params == ("path",) and "names a folder (it ends in '/')" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError) as info:
        save_solver(fitted, fifo)
    assert str(info.value) == f"path={str(fifo)!r} is a FIFO, not a regular file; give a file name"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_sample_solver_empty_names_the_option(tmp_path, usage_error):
    err = usage_error(["sample", "--solver", "", "--checkpoint", "x", "--out", str(tmp_path / "sx")])
    assert "pndmkit sample: error: --solver: give a fitted solver's file (pndmkit grid fit --out FILE), got ''" in err


def test_save_solver_round_trips_exactly_and_refuses_what_it_cannot_write(fitted, tmp_path):
    path = save_solver(fitted, tmp_path / "a" / "s.json")
    back = load_solver(path)
    assert back == fitted.fitted and hash(back) == hash(fitted.fitted)
    assert np.array_equal(back.grid, fitted.grid) and back.weights == fitted.weights  # every bit of every float
    assert schedule_key(back.noise_schedule) == schedule_key(fitted.fitted.noise_schedule) == back.schedule
    with pytest.raises(UsageError) as info:
        save_solver(fitted, path, overwrite=False)
    assert info.value.params == ("path",) and "already exists" in str(info.value)
    with pytest.raises(UsageError) as info:
        save_solver(fitted, tmp_path)
    assert info.value.params == ("path",) and "is a folder" in str(info.value)
    keyless = dataclasses.replace(back, noise_schedule=None)
    with pytest.raises(UsageError) as info:
        save_solver(keyless, tmp_path / "k.json")
    assert info.value.params == ("solver",) and "noise_schedule=" in str(info.value)
    with pytest.raises(UsageError) as info:
        keyless.integrator()
    assert info.value.params == ("schedule",)
    assert keyless == back  # equal fields; the schedule object is no field of the comparison
    with pytest.raises(UsageError) as info:
        save_solver("s.json", tmp_path / "x.json")
    assert info.value.params == ("solver",)


G, W = [999.0, 500.0, 100.0, -1.0], [[1.0], [1.5, -0.5], [1.9, -1.3, 0.4]]


@pytest.mark.parametrize("kwargs, params, shown", [
    ({"weights": W[:2]}, ("grid", "weights"), "grid has 4 times (3 steps) but weights has 2 rows"),
    ({"weights": [[1.0], [1.0, 2.0, 3.0], [1.0]]}, ("weights",), "weights[1] must hold 1 to 2 weights"),
    ({"weights": [[1.0], [1.0, math.inf], [1.0]]}, ("weights",), "weights[1][1] must be a finite number"),
    ({"weights": [[1.0], [1.0, -2e6], [1.0]]}, ("weights",), "weights[1][1]=-2000000.0 exceeds 1e+06"),
    ({"grid": [999.0, 100.0, 500.0, -1.0]}, ("grid",), "grid must be strictly decreasing"),
    ({"t_start": 500.0}, ("t_start", "grid"), "grid[0]=999.0 lies above t_start=500.0"),
    ({"schedule": ""}, ("schedule",), "schedule must be a schedule's key"),
    ({"nfe": 4}, ("nfe", "weights"), "nfe=4 but weights has 3 rows"),
    ({"heldout_error": -1.0}, ("heldout_error",), "heldout_error must be a finite number >= 0, or nan"),
    ({"fell_back": "no"}, ("fell_back",), "fell_back must be"),
    ({"seed": -1}, ("seed",), "seed must be an integer >= 0"),
    ({"noise_schedule": LinearVP()}, ("noise_schedule", "schedule"), "noise_schedule is LinearVP"),
    ({"grid": [999.0, 500.0, 100.0, -50.0], "noise_schedule": DiscreteVP.linear()}, ("grid",),
     "grid[3]=-50.0 lies outside the domain [-1.0, 999.0] of DiscreteVP.linear(T=1000)"),
    ({"grid": [2000.0, 500.0, 100.0, -1.0], "t_start": 2000.0, "noise_schedule": DiscreteVP.linear()},
     ("t_start",), "t_start=2000.0 lies outside the domain"),
])
def test_fitted_solver_fields_are_checked_by_name(kwargs, params, shown):
    base = dict(grid=G, weights=W, t_start=999.0, schedule="DiscreteVP.linear(T=1000)")
    with pytest.raises(UsageError) as info:
        FittedSolver(**{**base, **kwargs})
    assert info.value.params == params and shown in str(info.value), info.value


def test_a_solver_made_without_its_schedule_checks_its_times_when_given_one():
    """The key alone says nothing of the domain: the times are checked against the schedule when it is given."""
    keyless = FittedSolver(grid=[999.0, 500.0, 100.0, -50.0], weights=W, t_start=999.0,
                           schedule="DiscreteVP.linear(T=1000)")
    for call in (lambda: keyless.integrator(DiscreteVP.linear()),
                 lambda: keyless.sample(_model(DiscreteVP.linear()), np.zeros((1, 1)), schedule=DiscreteVP.linear())):
        with pytest.raises(UsageError) as info:
            call()
        assert info.value.params == ("grid",) and "grid[3]=-50.0 lies outside the domain" in str(info.value)
    inside = FittedSolver(grid=G, weights=W, t_start=999.0, schedule="DiscreteVP.linear(T=1000)")
    assert inside.integrator(DiscreteVP.linear()).estimator.weights == tuple(map(tuple, W))


def test_fitted_solver_sample_refuses_what_the_solver_sets_and_other_schedules(fitted):
    solver = fitted.fitted
    model = _model(solver.noise_schedule)
    for key, value in (("method", "ipndm"), ("grid", "quadratic"), ("steps", 3), ("t_start", 500.0)):
        with pytest.raises(UsageError) as info:
            solver.sample(model, np.zeros((1, 1)), **{key: value})
        assert info.value.params == (key,) and "cannot be given with a fitted solver" in str(info.value)
    with pytest.raises(UsageError) as info:
        solver.sample(model, np.zeros((1, 1)), schedule=LinearVP())
    assert info.value.params == ("schedule",) and "fitted on DiscreteVP.linear(T=1000), not LinearVP" in str(
        info.value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        solver.nfe = 4
    with pytest.raises(ValueError):
        solver.grid[0] = 1.0  # read-only times: a solver cannot drift from its file


# -- the base method: ipndm (eps form) or ipndm-x0 (data-prediction form) ------------------------------------------
@pytest.fixture(scope="module")
def fitted_x0():
    """The in-process fit on the x0 base (fitted weights kept)."""
    return optimize_solver("gmm1d", 3, fallback=False, base="ipndm-x0", **FIT)


@pytest.fixture(scope="module")
def solver_file_x0(tmp_path_factory):
    """A solver file written by ``pndmkit grid fit --base ipndm-x0`` (the same fit as :func:`fitted_x0`)."""
    from pndmkit.cli import main

    path = tmp_path_factory.mktemp("fit_x0") / "solver.json"
    assert main(["grid", "fit", *FIT_ARGS, "--no-fallback", "--base", "ipndm-x0", "--out", str(path)]) == 0
    return path


def test_grid_fit_base_x0_writes_the_x0_solver_the_api_fits(fitted_x0, solver_file_x0, fitted):
    loaded = load_solver(solver_file_x0)
    assert loaded == fitted_x0.fitted and loaded.to_dict() == fitted_x0.fitted.to_dict()
    assert loaded.base == "ipndm-x0" and loaded.name == "ipndm-x0-fitted" and not loaded.fell_back
    assert fitted_x0.grid_result.method == "ipndm-x0" and loaded.weights != adams_bashforth_table(3)
    assert loaded.weights != fitted.weights  # another fit than the eps form's
    data = json.loads(solver_file_x0.read_text())
    assert (data["version"], data["base"]) == (2, "ipndm-x0")


def test_an_x0_solver_round_trips_and_samples_as_the_fit_did_bit_for_bit(fitted_x0, tmp_path):
    path = save_solver(fitted_x0, tmp_path / "x0.json")
    back = load_solver(path)
    assert back == fitted_x0.fitted and back.base == "ipndm-x0"
    model = _model(back.noise_schedule)
    x_T = np.random.default_rng(4).standard_normal((6, 1))
    here, there = fitted_x0.sample(model, x_T), back.sample(model, x_T)
    assert np.array_equal(here.x, there.x) and there.method == "ipndm-x0-fitted" and there.nfe == 3
    assert back.integrator().transfer.__class__.__name__ == "DataTransfer"
    # the base is part of the solver: the same grid and weights on the eps form are another sampler
    eps_form = dataclasses.replace(back, base="ipndm")
    assert eps_form != back and eps_form.name == FITTED_NAME
    assert not np.allclose(eps_form.sample(model, x_T).x, there.x)


def test_a_version_1_file_loads_as_ipndm(solver_file, tmp_path):
    """A file written before solvers had a base (version 1, no field base) is an ipndm solver: it loads equal to
    the same solver written now and samples the same bits."""
    data = json.loads(solver_file.read_text())
    assert (data["version"], data["base"]) == (2, "ipndm")
    del data["base"]
    data["version"] = 1
    old = tmp_path / "v1.json"
    old.write_text(json.dumps(data))
    loaded, now = load_solver(old), load_solver(solver_file)
    assert loaded.base == "ipndm" and loaded.name == FITTED_NAME and loaded == now
    model = _model(loaded.noise_schedule)
    x_T = np.random.default_rng(5).standard_normal((4, 1))
    assert np.array_equal(loaded.sample(model, x_T).x, now.sample(model, x_T).x)
    saved = json.loads(save_solver(loaded, tmp_path / "again.json").read_text())
    assert (saved["version"], saved["base"]) == (2, "ipndm")  # written again: version 2, base said


def test_a_reader_of_version_1_refuses_an_x0_file(solver_file_x0, tmp_path):
    """The reader of version 1 (pndmkit at 6b0bb2b, before the base) knew no field base: it refuses a version 2 file
    by its version instead of running x0 weights through the eps form."""
    import importlib.util
    import subprocess
    import sys

    try:
        source = subprocess.run(["git", "show", "6b0bb2b:pndmkit/studies/solver_file.py"], capture_output=True,
                                text=True, check=True, cwd=Path(__file__).parent).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the version 1 reader is not in this checkout's history")
    name = "pndmkit.studies._solver_file_v1"
    spec = importlib.util.spec_from_loader(name, loader=None)
    old = importlib.util.module_from_spec(spec)
    sys.modules[name] = old  # dataclasses looks its module up
    try:
        exec(compile(source, "solver_file_v1.py", "exec"), old.__dict__)
        with pytest.raises(BadFileError, match="has field 'version' 2; this pndmkit reads version 1"):
            old.load_solver(solver_file_x0)
        data = json.loads(solver_file_x0.read_text())
        data["version"] = 1  # even told it is version 1, it refuses the field it does not know
        bad = tmp_path / "x0_as_v1.json"
        bad.write_text(json.dumps(data))
        with pytest.raises(BadFileError, match="has unknown field 'base'"):
            old.load_solver(bad)
    finally:
        del sys.modules[name]


def test_a_resume_tells_the_bases_apart_and_takes_a_run_recorded_before_them(solver_file, ckpt, tmp_path,
                                                                               usage_error):
    """run.json's solver records its base: a resume with the same weights on the other base is refused naming
    it; a run recorded before solvers had a base (no field base) was an ipndm one and resumes with it."""
    from pndmkit.cli import main

    out = tmp_path / "o"
    common = ["sample", "--checkpoint", ckpt + ".json", "--num-samples", "2", "--out", str(out), "--no-progress"]
    assert main([*common, "--solver", str(solver_file)]) == 0
    x0 = save_solver(dataclasses.replace(load_solver(solver_file), base="ipndm-x0"), tmp_path / "x0.json")
    err = usage_error([*common, "--solver", str(x0), "--resume"])
    assert err.startswith("pndmkit sample: error: --resume/"), err
    assert "the fitted solver is not run.json's (its base differ)" in err and "method='ipndm-fitted'" in err, err
    run_file = out / "run.json"
    run = json.loads(run_file.read_text())
    del run["solver"]["base"]  # as pndmkit wrote it before the base
    run_file.write_text(json.dumps(run))
    assert main([*common, "--solver", str(solver_file), "--resume"]) == 0


@pytest.mark.parametrize("base", ["ipndm-v", "x0", "IPNDM"])
def test_grid_fit_refuses_an_unknown_base_before_the_fit(base, tmp_path, usage_error):
    out = tmp_path / "s.json"
    err = usage_error(["grid", "fit", *FIT_ARGS, "--base", base, "--out", str(out)])
    assert err.startswith(f"pndmkit grid fit: error: --base: invalid choice: {base!r} (choose from 'ipndm', "
                          "'ipndm-x0')"), err
    assert not out.exists()


def test_fitted_solver_refuses_an_unknown_base_by_name():
    with pytest.raises(UsageError) as info:
        FittedSolver(grid=G, weights=W, t_start=999.0, schedule="DiscreteVP.linear(T=1000)", base="ddim")
    assert info.value.params == ("base",) and "got 'ddim'" in str(info.value) and "'ipndm', 'ipndm-x0'" in str(
        info.value)
