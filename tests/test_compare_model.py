"""The head-to-head on a network (``compare_model``, ``pndmkit compare --model``): which code ran on each side,
equal model calls, each run scored at its own levels against a reference that is right."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from pndmkit.errors import UsageError  # noqa: E402
from pndmkit.schedules import DiscreteVP  # noqa: E402
from pndmkit.studies.compare import CompareConfig, compare_model  # noqa: E402

CACHE = Path(__file__).resolve().parent.parent / "analysis" / "results" / "real_cache"
SCHEDULE = DiscreteVP.linear()
C = 0.5  # standard deviation of the Gaussian data of the analytic "network"


def gaussian_eps(x, t):
    """Exact eps of N(0, C^2 I) data at time t (works on torch tensors and numpy arrays)."""
    abar = float(SCHEDULE.abar(t))
    return x * (math.sqrt(1.0 - abar) / (abar * C * C + 1.0 - abar))


def gaussian_end(x_T, s):
    """The exact flow of N(0, C^2 I) data: y(s) = y_top sqrt(C^2 + s^2) / sqrt(C^2 + s_top^2), returned as x."""
    s_top = float(SCHEDULE.s(SCHEDULE.t_start))
    y_top = x_T * math.sqrt(1.0 + s_top * s_top)
    return y_top * math.sqrt((C * C + s * s) / (C * C + s_top * s_top)) / math.sqrt(1.0 + s * s)


def _rows(result):
    return result["cases"][0]["runs"]


def test_each_row_is_that_solver_run_directly_and_scored_at_its_own_end_level():
    """On a Gaussian, whose flow is known in closed form, every row's error is the error of the same solver run
    outside the harness (pndmkit's integrator, or the diffusers scheduler through peer_sample) from the same
    noise, against the exact flow at the run's own end level: DEIS ends at abar_0 (s = 0.01), and is scored there."""
    from pndmkit.methods import METHODS
    from pndmkit.grids import make_grid
    from pndmkit.noise import per_sample_noise
    from pndmkit.studies.peers import make_scheduler, run_scheduler

    cfg = CompareConfig(nfes=(8,), n=3, methods=("unipc-3",), peers=("deis", "dpm-3m"), grids=True)
    result = compare_model(gaussian_eps, cfg, schedule=SCHEDULE, shape=(2,))
    x_T = per_sample_noise(range(3), (2,), 0).astype(np.float64)
    rows = {(r["side"], r["method"], r["option"]): r for r in _rows(result)}
    checked = {"uniform": ("pndmkit", "unipc-3", "uniform"),
               "trailing": ("peer", "deis", "timestep_spacing=trailing"),
               "karras": ("peer", "dpm-3m", "use_karras_sigmas=True")}
    for key in checked.values():
        row = rows[key]
        assert row["starts_at_top"]
        if key[0] == "pndmkit":
            times = make_grid(SCHEDULE, row["steps"], key[2])
            sol = METHODS[key[1]].build(SCHEDULE).solve(gaussian_eps, x_T.copy(), times)
            x_end, s_end = sol.x, float(SCHEDULE.s(times[-1]))
        else:
            opt = dict([key[2].split("=")])
            opt = {k: (v == "True") if v in ("True", "False") else v for k, v in opt.items()}
            sched = make_scheduler(key[1], SCHEDULE, row["steps"], **opt)
            # the network is told the time of the level the scheduler assumes (the default peer_times="level")
            out = run_scheduler(sched, lambda x, timestep, s: gaussian_eps(x, float(SCHEDULE.t_from_s(s))),
                                x_T.copy())
            x_end, s_end = out.x, out.s_end
        assert s_end == pytest.approx(row["s_end"], abs=0)
        y = math.sqrt(1.0 + s_end * s_end)
        direct = float(np.sqrt(np.mean((y * (x_end - gaussian_end(x_T, s_end))) ** 2)))
        # the harness starts a peer on the flow at its float32 top level, not at t = 999: a 5e-8 shift
        assert row["error"] == pytest.approx(direct, rel=1e-5), key
    assert rows[checked["trailing"]]["s_end"] == pytest.approx(0.0100013, rel=1e-5)  # DEIS: scored at abar_0
    assert result["config"]["peer_times"] == "level"


def test_peer_times_timestep_tells_the_network_what_a_pipeline_would():
    """With peer_times="timestep" a peer's row is peer_sample's run (the scheduler's integer timestep as the
    table's time): on a Karras grid DPM-Solver rounds its timesteps, so the two conventions differ there and
    agree on DDIM's integer table levels (to the float32 rounding of the table)."""
    from pndmkit.noise import per_sample_noise
    from pndmkit.studies.peers import peer_sample

    x_T = per_sample_noise(range(2), (2,), 0).astype(np.float64)
    cfg = CompareConfig(nfes=(6,), n=2, methods=("ddim",), peers=("dpm-2m", "ddim"), grids=True)
    both = {how: {(r["method"], r["option"]): r["error"] for r in _rows(
        compare_model(gaussian_eps, cfg, schedule=SCHEDULE, shape=(2,), peer_times=how)) if r["side"] == "peer"}
        for how in ("level", "timestep")}
    karras = ("dpm-2m", "use_karras_sigmas=True")
    out = peer_sample(gaussian_eps, x_T.copy(), schedule=SCHEDULE, peer="dpm-2m", steps=6, use_karras_sigmas=True)
    direct = float(np.sqrt(np.mean((out.x - gaussian_end(x_T, 0.0)) ** 2)))
    assert both["timestep"][karras] == pytest.approx(direct, rel=1e-5)
    assert abs(both["timestep"][karras] / both["level"][karras] - 1) > 1e-3
    trailing = ("ddim", "timestep_spacing=trailing")
    assert both["timestep"][trailing] == pytest.approx(both["level"][trailing], rel=1e-4)


def test_a_converging_run_goes_to_the_reference_with_its_order():
    """No floor from the harness (a start or end level off the reference's would leave one): unipc-3 on the
    quadratic grid falls at third order or better from NFE 50 to 100, to 3e-5, against a reference whose own
    error is below 1e-8."""
    cfg = CompareConfig(nfes=(50, 100), n=2, methods=("unipc-3",), peers=(), grids=True)
    result = compare_model(gaussian_eps, cfg, schedule=SCHEDULE, shape=(2,))
    rows = {r["nfe_target"]: r for r in result["cases"][0]["runs"] if r["option"] == "quadratic"}
    assert rows[100]["error"] < 3e-5 and rows[50]["error"] / rows[100]["error"] > 2 ** 3
    assert result["cases"][0]["reference_error"] < 1e-8


def test_the_network_is_timed_once_and_every_call_is_accounted_for():
    """A network that is probed (its shape given) is timed there, on a warm-up call and PROBE_TIMINGS timed ones,
    and not timed again before the runs: every call is a run's, the reference's or one of those."""
    import re

    from pndmkit.studies.compare import PROBE_TIMINGS

    calls, lines = [0], []

    def counted(x, t):
        calls[0] += 1
        return gaussian_eps(x, t)

    cfg = CompareConfig(nfes=(6,), n=2, methods=("ddim",), peers=(), grids=False)
    case = compare_model(counted, cfg, schedule=SCHEDULE, shape=(2,), log=lines.append)["cases"][0]
    solved = [int(m.group(1)) for m in (re.search(r"solved \((\d+) evaluations", line) for line in lines) if m]
    assert len(solved) == 1 and solved[0] > 0
    carried = sum(p["nfe"] for p in case["reference_points"])
    assert case["timing_evaluations"] == 1 + PROBE_TIMINGS
    assert calls[0] == sum(r["model_calls"] for r in case["runs"]) + carried + solved[0] + 1 + PROBE_TIMINGS


@pytest.fixture(scope="module")
def digits_run():
    """The shipped digits UNet on one cached noise: every network forward and every diffusers step counted."""
    from pndmkit.integrations.diffusers.pretrained import open_network

    ckpt = open_network("digits", device="cpu")
    forwards = [0]
    ckpt.net.register_forward_hook(lambda *a: forwards.__setitem__(0, forwards[0] + 1))
    steps = {"DDIMScheduler": 0, "DEISMultistepScheduler": 0}
    originals = {name: getattr(diffusers, name).step for name in steps}

    def counting(name):
        def step(self, *args, **kwargs):
            steps[name] += 1
            return originals[name](self, *args, **kwargs)
        return step

    mp = pytest.MonkeyPatch()
    for name in steps:
        mp.setattr(getattr(diffusers, name), "step", counting(name))
    try:
        cfg = CompareConfig(nfes=(5, 6), n=1, methods=("ipndm", "ddim"), peers=("ddim", "deis", "ipndm"),
                            grids=False)
        result = compare_model(ckpt, cfg, first=3, cache=CACHE)
    finally:
        mp.undo()
    return result, forwards[0], steps


def test_the_peers_are_diffusers_schedulers_driving_the_network(digits_run):
    result, forwards, steps = digits_run
    rows = _rows(result)
    for name, peer in (("DDIMScheduler", "ddim"), ("DEISMultistepScheduler", "deis")):
        assert steps[name] == sum(r["nfe"] for r in rows if r["side"] == "peer" and r["method"] == peer) > 0
    # every network forward is a run's evaluation or one of the short solves that carry the reference
    carried = sum(p["nfe"] for p in result["cases"][0]["reference_points"])
    timing = result["cases"][0]["timing_evaluations"]  # the one evaluation that times the study's cost
    assert forwards == sum(r["model_calls"] for r in rows) + carried + timing
    assert result["cases"][0]["reference_error"] < 1e-5  # read from the shipped cache, not solved


def test_every_run_told_the_network_each_evaluation_at_equal_nfe(digits_run):
    result, _, _ = digits_run
    rows = _rows(result)
    assert {r["side"] for r in rows} == {"pndmkit", "peer"}
    for r in rows:
        assert r["model_calls"] == r["nfe"] <= r["nfe_target"], r
    for target in ("5", "6"):
        entry = result["by_nfe"][target]
        assert entry["best_pndmkit"]["nfe"] == entry["best_peer"]["nfe"] == int(target)
        assert entry["ratio"] == pytest.approx(entry["best_pndmkit"]["error"] / entry["best_peer"]["error"])


def test_the_same_method_on_the_same_grid_agrees_across_the_two_sides(digits_run):
    """pndmkit's ipndm and diffusers' IPNDMScheduler on the same leading grid, on the network: one result (float32
    tables apart), so both sides tell the network the same times."""
    result, _, _ = digits_run
    rows = {(r["side"], r["method"], r["nfe_target"]): r for r in _rows(result)}
    for target in (5, 6):
        ours, theirs = rows[("pndmkit", "ipndm", target)], rows[("peer", "ipndm", target)]
        assert (ours["option"], theirs["option"]) == ("leading", "grid=leading")
        assert ours["error"] == pytest.approx(theirs["error"], rel=1e-4)


@pytest.mark.parametrize("kwargs, param, text", [
    ({"model": "gmm2d"}, "model", "is a built-in Gaussian-mixture problem, not a network"),
    ({"model": "no-such-network"}, "model", "checkpoint 'no-such-network' not found"),
    ({"first": -1}, "first", "first must be an integer >= 0"),
    ({"first": 1.5}, "first", "first must be an integer >= 0"),
    ({"cfg": CompareConfig(optimized_grids=True)}, "optimized_grids", "not run on a network"),
    ({"cfg": CompareConfig(optimized_solvers=True)}, "optimized_solvers", "not run on a network"),
    ({"cfg": CompareConfig(auto=True)}, "auto", "auto is not run on a network"),
    ({"peer_times": "int"}, "peer_times", "peer_times must be 'level' or 'timestep', got 'int'"),
    ({"cache": 3}, "cache", "cache must be a folder path"),
])
def test_bad_input_names_the_parameter(kwargs, param, text):
    with pytest.raises(UsageError) as info:
        compare_model(**{"model": "digits", **kwargs})
    assert info.value.params[0] == param and text in str(info.value), str(info.value)


def test_bad_budgets_are_refused_before_anything_runs():
    with pytest.raises(UsageError) as info:
        compare_model("digits", CompareConfig(nfes=(0,)))
    assert info.value.params == ("nfes",)


@pytest.mark.parametrize("argv, expected", [
    (["--cache", "x"], "--cache: --cache applies to a network head-to-head; it needs --model"),
    (["--first-noise", "2"], "--first-noise: --first-noise applies to a network head-to-head; it needs --model"),
    (["--peer-times", "level"], "--peer-times: --peer-times applies to a network head-to-head; it needs --model"),
    (["--model", "digits", "--problem", "gmm2d"], "--problem: --problem chooses a Gaussian-mixture case"),
    (["--model", "digits", "--optimized-grids"], "--optimized-grids: --optimized-grids is not run with --model"),
    (["--model", "digits", "--optimized-solvers"],
     "--optimized-solvers: --optimized-solvers is not run with --model"),
    (["--model", "digits", "--auto"], "--auto: auto is not run on a network"),
    (["--model", "digits", "--first-noise", "-1"], "--first-noise: expected an integer >= 0"),
    (["--model", "nosuch"], "--model: checkpoint 'nosuch' not found"),
    (["--model", "digits", "--nfe", "0"], "--nfe: expected an integer in [1, "),
])
def test_bad_command_line_is_one_line(argv, expected, usage_error):
    err = usage_error(["compare", *argv])
    assert err.startswith("pndmkit compare: error: ") and expected in err, err


def test_command_writes_the_network_table(tmp_path, capsys):
    from pndmkit.cli import main

    out = tmp_path / "o"
    assert main(["compare", "--model", "digits", "--first-noise", "5", "--n", "1", "--nfe", "5", "--methods", "ddim",
                 "--peers", "ddim", "--no-grids", "--cache", str(CACHE), "--out", str(out)]) == 0
    text = capsys.readouterr()
    assert "reference of noises 5-5: cached" in text.err and " ms each (timed): about " in text.err
    assert "solving it now" not in text.err  # cached: nothing to announce
    row = text.out.strip().splitlines()[1].split()  # NFE, method (NFE) grid error, peer (NFE) option error, ratio
    assert row[:4] == ["5", "ddim", "(5)", "leading"] and row[5:8] == ["ddim", "(5)", "timestep_spacing=leading"]
    saved = json.loads((out / "compare.json").read_text())
    assert saved["config"]["model"] == "digits" and saved["config"]["first"] == 5
    assert "problems" not in saved["config"] and "schedules" not in saved["config"]  # the mixtures' fields
    md = (out / "compare.md").read_text()
    assert md.startswith("# pndmkit compare --model digits") and "noises 5-5 (seed 0)" in md
    assert "(--peer-times level)" in md and "Peers may also take pndmkit's quadratic grid" not in md


def test_given_grids_run_apart_and_equal_the_same_builtin_grid():
    """A given grid runs through the same harness, reported apart: given the quadratic grid itself, its row
    equals the built-in quadratic row, and it enters none of the built-in summaries."""
    from pndmkit.grids import make_grid

    grid = [float(t) for t in make_grid(SCHEDULE, 6, "quadratic")]
    cfg = CompareConfig(nfes=(6,), n=2, methods=("ipndm",), peers=(), grids=True)
    result = compare_model(gaussian_eps, cfg, schedule=SCHEDULE, shape=(2,), given_grids={"ipndm": {6: grid}})
    case = result["cases"][0]
    (opt,) = case["optimized"]
    builtin = next(r for r in case["runs"] if r["option"] == "quadratic")
    assert opt["option"] == "optimized" and opt["error"] == builtin["error"] and opt["model_calls"] == 6
    assert all(r["option"] != "optimized" for r in case["runs"] + case["best"])
    entry = result["by_nfe_optimized"]["6"]
    assert entry["methods"]["ipndm"]["ratio"] == pytest.approx(builtin["error"] / entry["best_builtin"]["error"])
    assert result["config"]["given_grids"] == {"ipndm": {"6": grid}}


@pytest.mark.parametrize("given, text", [
    ({"pf": {5: [999.0, -1.0]}}, "given_grids names 'pf', which is not a fixed-step method"),
    ({"ipndm": [999.0, -1.0]}, "given_grids['ipndm'] must map NFE to times"),
    ({"ipndm": {5: [999.0, 800.0, 600.0, 400.0, 200.0, 0.0]}},
     "must decrease from the schedule's first time 999 to its last -1"),
    ({"ipndm": {5: [999.0, 600.0, 700.0, 500.0, 300.0, -1.0]}}, "must decrease from the schedule's first time"),
    ({"ipndm": {2: [999.0, 600.0, 300.0, -1.0]}}, "given_grids['ipndm'][2] has 3 steps, whose run costs ipndm 3 "
                                                  "model calls, not the NFE 2 of its key: at NFE 2 ipndm runs 2 steps"),
    # fewer steps than the key's NFE buys: it would be reported as if at equal NFE
    ({"ddim": {5: [999.0, 500.0, -1.0]}}, "given_grids['ddim'][5] has 2 steps, whose run costs ddim 2 model calls, "
                                          "not the NFE 5 of its key: at NFE 5 ddim runs 5 steps (5 model calls); give "
                                          "a grid of 6 times"),
    # a key that is not among nfes is refused, not dropped
    ({"ipndm": {9: [999.0, -1.0]}}, "given_grids['ipndm'][9]: NFE 9 is not among the NFEs that run (nfes: 2, 5)"),
])
def test_bad_given_grids_are_named(given, text):
    cfg = CompareConfig(nfes=(2, 5), n=1, methods=("ddim",), peers=(), grids=False)
    with pytest.raises(UsageError) as info:
        compare_model(gaussian_eps, cfg, schedule=SCHEDULE, shape=(2,), given_grids=given)
    assert info.value.params == ("given_grids",) and text in str(info.value), str(info.value)


def test_a_reference_to_solve_is_announced_before_it_is_solved(tmp_path):
    """An uncached block says what it will solve and its timed cost before the solve, not only after it; a cache
    folder that does not exist is created, as every --cache user creates it, and the log says so."""
    lines = []
    cache = tmp_path / "new" / "cache"
    cfg = CompareConfig(nfes=(5,), n=2, methods=("ddim",), peers=(), grids=False)
    compare_model(gaussian_eps, cfg, schedule=SCHEDULE, shape=(2,), cache=cache, log=lines.append)
    assert cache.is_dir()
    assert lines[0] == f"created the cache folder {cache} (it did not exist): references solved here are kept there"
    ahead = next(i for i, line in enumerate(lines) if line.startswith("reference of noises 0-1: not in the cache "))
    done = next(i for i, line in enumerate(lines) if line.startswith("reference of noises 0-1: solved ("))
    assert ahead < done and "solving it now" in lines[ahead] and "ms each, timed on one thread)" in lines[ahead], lines[ahead]
    lines.clear()
    compare_model(gaussian_eps, cfg, schedule=SCHEDULE, shape=(2,), log=lines.append)  # cache=None: also said
    assert any(line.startswith("reference of noises 0-1: no cache (cache=None): solving it now") for line in lines)
    assert not any(line.startswith("created the cache folder") for line in lines)


def test_carried_levels_are_printed_apart():
    """A peer's float32 top level lies a few 1e-8 relative off t = 999's: the carry's log line shows two levels
    that differ (enough digits, and abar), where 6 digits printed 157.407 twice."""
    lines = []
    cfg = CompareConfig(nfes=(5,), n=1, methods=("ddim",), peers=("ddim", "deis"), grids=True)
    compare_model(gaussian_eps, cfg, schedule=SCHEDULE, shape=(2,), log=lines.append)
    carried = [line for line in lines if line.startswith("reference carried from s = ")]
    assert any(line.startswith("reference carried from s = 157.4") for line in carried), carried
    for line in carried:
        head = line.split(":")[0]
        a, b = head[len("reference carried from s = "):].split(" (abar ")[0].split(" to ")
        assert a != b and float(a) != float(b), line
        abar_a, abar_b = head.split(" (abar ")[1].rstrip(")").split(" to ")
        assert abar_a != abar_b, line


def test_cfg_and_shape_errors_name_them():
    with pytest.raises(TypeError, match=r"cfg must be a CompareConfig .* got dict"):
        compare_model("digits", {"n": 2})
    cfg = CompareConfig(nfes=(5,), n=1, methods=("ddim",), peers=(), grids=False)
    with pytest.raises(UsageError) as info:
        compare_model("digits", cfg, shape=(3, 5))
    assert info.value.params == ("shape",) and "shape=(3, 5) is not a sample shape the network takes" in str(info.value)


@pytest.mark.parametrize("argv, expected", [
    (["--scheduler-config", "/nope.json"], "--scheduler-config: --scheduler-config applies to a network head-to-head; "
                                           "it needs --model"),
    (["--peers", "ipndm", "--auto", "--auto-calibration", "1"], "--auto-calibration: expected an integer in [8, "),
])
def test_network_only_and_range_options_are_refused(argv, expected, usage_error):
    err = usage_error(["compare", "--quick", *argv])
    assert err.startswith("pndmkit compare: error: ") and expected in err, err


def test_help_says_which_options_are_model_only_and_their_limits(capsys):
    from pndmkit.cli import main

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--scheduler-config FILE --model only:" in text
    assert "--auto-calibration N --auto: calibration noises of the choice, from 8" in text


def test_network_ratios_have_intervals_and_rows_keep_their_sample_errors_where_asked():
    """Eight cached digits noises, ddim against DDIMScheduler on the same leading grid: the interval holds the
    ratio (about 1: the same method, float32 tables on one side); with ``sample_errors`` each row keeps its
    per-sample errors, whose RMS is its error, and from which the interval is recomputed."""
    from pndmkit.studies.statistics import ratio_interval

    cfg = CompareConfig(nfes=(5,), n=8, methods=("ddim",), peers=("ddim",), grids=False)
    result = compare_model("digits", cfg, first=40, cache=CACHE, sample_errors=True)
    entry = result["by_nfe"]["5"]
    low, high = entry["ratio_interval"]
    assert low <= entry["ratio"] <= high and abs(entry["ratio"] - 1) < 1e-4 and high - low < 1e-4
    rows = {r["side"]: r for r in result["cases"][0]["best"]}
    for row in rows.values():
        assert len(row["sample_errors"]) == 8
        assert row["error"] == pytest.approx(math.sqrt(np.mean(row["sample_errors"])), rel=1e-12)
    assert list(ratio_interval([(rows["pndmkit"]["sample_errors"], rows["peer"]["sample_errors"])])) == [low, high]
    json.dumps(result)  # lists of floats: serialisable
    plain = compare_model("digits", cfg, first=40, cache=CACHE)
    assert "sample_errors" not in json.dumps(plain) and plain["by_nfe"]["5"]["ratio_interval"] == [low, high]


RESULTS = Path(__file__).resolve().parent.parent / "analysis" / "results"


def _e(value):
    """The README's form of an error: 6.42e-2."""
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def readme_160_lines(data):
    """The rows of the README's table of the 160-noise head-to-head, from its compare.json."""
    from analysis.compare_digits_160 import heldout_ratios, per_noise

    nfes = list(data["by_nfe"])
    by, opt, held, spread = data["by_nfe"], data.get("by_nfe_optimized", {}), heldout_ratios(data), per_noise(data)

    def row(label, cells):
        return f"| {label} | " + " | ".join(cells) + " |"

    def iv(interval):
        return f"[{interval[0]:.2f}, {interval[1]:.2f}]"

    return [
        "| NFE | " + " | ".join(nfes) + " |",
        row("best pndmkit", [_e(by[n]["best_pndmkit"]["error"]) for n in nfes]),
        row("its method, grid", [f"{by[n]['best_pndmkit']['method']}, {by[n]['best_pndmkit']['options'][0]}"
                                 for n in nfes]),
        row("best peer", [_e(by[n]["best_peer"]["error"]) for n in nfes]),
        row("its scheduler, option", [f"{by[n]['best_peer']['method']}, {by[n]['best_peer']['options'][0]}"
                                      for n in nfes]),
        row("ratio (goal: at most 0.5)", [f"{by[n]['ratio']:.2f}" for n in nfes]),
        row("95% interval", [iv(by[n]["ratio_interval"]) for n in nfes]),
        row("ratio on noises 144-287 alone, 95% interval",
            [f"{held[n]['ratio']:.2f} {iv(held[n]['ratio_interval'])}" for n in nfes]),
        row("`dpm-solver++-3m-nolof`, pndmkit's leading grid / best peer",
            [f"{held_all[n]['nolof']:.2f} {iv(held_all[n]['nolof_interval'])}"
             for held_all in [heldout_ratios(data, skip=0)] for n in nfes]),
        row("optimised `unipc-2` grid / best peer",
            [f"{opt[n]['vs_peer']:.2f} {iv(opt[n]['vs_peer_interval'])}" if n in opt else "-" for n in nfes]),
        row("per noise: median ratio; pndmkit smaller on",
            [f"{spread[n]['median_ratio']:.2f}; {100 * spread[n]['pndmkit_smaller']:.0f}%" for n in nfes]),
        row("share of the squared error on the 5 worst noises: pndmkit / peer",
            [f"{100 * spread[n]['worst5_pndmkit']:.0f}% / {100 * spread[n]['worst5_peer']:.0f}%" for n in nfes]),
    ]


def test_readme_160_noise_table_is_the_json():
    """The README's 160-noise head-to-head rows are analysis/results/compare_digits_160/compare.json: the
    summaries with their intervals, and the ratios on noises 144-287 alone recomputed from its per-sample errors."""
    data = json.loads((RESULTS / "compare_digits_160" / "compare.json").read_text())
    assert (data["config"]["first"], data["config"]["n"]) == (128, 160) and list(data["by_nfe"]) == [
        "5", "6", "8", "10", "15", "20", "50"]
    readme = (RESULTS.parent.parent / "README.md").read_text()
    for line in readme_160_lines(data):
        assert line in readme, line
