"""The head-to-head without diffusers: grids from the registry in pndmkit/grids.py, the command's promises."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest

from pndmkit import GradientEstimator, Step
from pndmkit.errors import UsageError
from pndmkit.grids import DISCRETE_SPACINGS, GRID_KINDS, GRIDS, S_FLOOR, make_grid
from pndmkit.schedules import DiscreteVP, LinearVP
from pndmkit.studies import compare as cmp


def test_registry_describes_every_grid_kind_once():
    assert tuple(GRID_KINDS) == GRIDS
    assert {k for k, g in GRID_KINDS.items() if g.discrete_only} == set(DISCRETE_SPACINGS) - {"linspace"}
    assert [k for k, g in GRID_KINDS.items() if g.default_for] == ["uniform", "leading"]
    assert all(g.same_as in (None, *GRIDS) for g in GRID_KINDS.values())


@pytest.mark.parametrize("schedule, expected", [
    (DiscreteVP.linear(), ["leading", "uniform", "quadratic", "logsnr", "karras", "s-uniform", "trailing",
                           "leading-multistep"]),
    (LinearVP(), ["uniform", "quadratic", "logsnr", "karras", "s-uniform"]),
])
def test_compare_tries_the_registry_kinds_default_first(schedule, expected):
    assert [k for k, _ in cmp._pndmkit_grids(schedule, "ddim", True)] == expected
    assert [k for k, _ in cmp._pndmkit_grids(schedule, "ddim", False)] == expected[:1]
    assert make_grid(schedule, 5)[0] == make_grid(schedule, 5, expected[0])[0]  # the first is make_grid's default


def test_compare_floors_karras_and_logsnr_where_grids_does():
    """One rule: a Karras / log-SNR run of the head-to-head ending at abar = 1 stops at s = S_FLOOR (0.002 on
    the continuous linear VP; compare used t = 1e-3, s = 0.0105, before) and then steps to the end."""
    cfg = cmp.CompareConfig(problems=("gmm2d",), schedules=("linear-vp",), nfes=(8,), n=8, methods=("ddim",),
                            peers=(), grids=True)
    from pndmkit.problems import get_problem

    schedule = LinearVP()
    runs = {r.option: r for r in cmp._plan_pndmkit(get_problem("gmm2d"), schedule, cfg)}
    for kind in ("karras", "logsnr"):
        grid = make_grid(schedule, 8, kind, t_end=0.0)
        assert float(schedule.s(grid[-2])) == pytest.approx(S_FLOOR, rel=1e-9)
        assert runs[f"{kind} to t=0"].s_end == 0.0
    assert set(cmp.SHARED_GRIDS) == {"leading", "linspace", "trailing", "uniform", "karras", "logsnr",
                                     "leading-multistep"}
    np.testing.assert_array_equal(make_grid(DiscreteVP.linear(), 4, "karras")[-2:], [0.0, -1.0])  # first index


# -- the command line (promises in --help hold) --------------------------------------------------------------
TINY = ["compare", "--problem", "gmm2d", "--schedule", "discrete-linear", "--nfe", "5", "10", "--n", "16",
        "--methods", "ddim", "ipndm", "--no-grids"]
#: TINY at NFE 5 alone (an option that takes a value may be given once)
TINY_NFE5 = [*TINY[:TINY.index("--nfe") + 1], "5", *TINY[TINY.index("--nfe") + 3:]]


def test_peers_with_no_names_runs_pndmkit_alone_and_reports_a_table(capsys):
    from pndmkit.cli import main

    assert main([*TINY, "--peers"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["NFE", "best", "pndmkit"]
    rows = [line.split() for line in lines[1:]]
    assert [r[0] for r in rows] == ["5", "10"]
    for r in rows:  # method, (NFE), grid option, error; no peer, option, error, ratio, interval
        assert r[1] in ("ddim", "ipndm") and r[3] == "leading" and float(r[4]) > 0 and r[5:] == ["-"] * 5
    assert float(rows[1][4]) < float(rows[0][4])  # more NFE, smaller error


def test_peers_with_no_names_json_has_the_best_pndmkit_method_per_nfe(capsys):
    from pndmkit.cli import main

    assert main([*TINY, "--peers", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["by_nfe"]) == ["5", "10"]
    for row in result["by_nfe"].values():
        assert set(row) == {"best_pndmkit"} and row["best_pndmkit"]["method"] in ("ddim", "ipndm")
    assert result["config"]["peers"] == []


def test_compare_writes_files_only_where_out_says(tmp_path, monkeypatch, capsys):
    from pndmkit.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "analysis" / "results").mkdir(parents=True)  # a results folder in the current directory
    assert main([*TINY, "--peers"]) == 0
    assert not any(tmp_path.rglob("*.*"))  # nothing written anywhere
    out = tmp_path / "mine"
    assert main([*TINY, "--peers", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".pndmkit-compare.lock", "compare.csv", "compare.json",
                                                     "compare.md", "compare_runs.csv"]  # the lock stays, empty
    assert not any((tmp_path / "analysis" / "results").iterdir())
    saved = json.loads((out / "compare.json").read_text())
    assert set(saved["by_nfe"]) == {"5", "10"}
    assert "| 5 | " in (out / "compare.md").read_text()
    capsys.readouterr()


# -- the top level is the schedule's -----------------------------------------------------------------------
def _leading_row(cfg):
    case = cmp.compare(cfg)["cases"][0]
    rows = [r for r in case["runs"] if r["method"] == "ddim" and r["option"] == "leading"]
    assert len(rows) == 1
    return rows[0]


def test_a_grid_that_starts_low_is_measured_from_the_schedules_top_whatever_else_runs():
    """`compare --quick --nfe 1 --peers` reported ddim (1) 2.61e-04: its one leading step [0, -1] was the only
    run, so the case's top level sank to t = 0 and ddim started on the trajectory there, sampling nothing.
    With a run from the top beside it (peers, or the trailing grid) the same run scored 0.68."""
    alone = cmp.CompareConfig(problems=("gmm2d",), schedules=("discrete-linear",), nfes=(1,), n=64,
                              methods=("ddim",), peers=(), grids=False)
    row = _leading_row(alone)
    assert row["s_start"] == pytest.approx(float(DiscreteVP.linear().s(0.0)))
    assert row["starts_at_top"] is False and row["error"] > 0.1
    beside = _leading_row(cmp.with_options(alone, grids=True))  # trailing starts at 999: the same top either way
    assert beside["error"] == pytest.approx(row["error"], rel=1e-9)
    top = [r for r in cmp.compare(cmp.with_options(alone, grids=True))["cases"][0]["runs"] if r["option"] == "trailing"]
    assert top[0]["starts_at_top"] is True


def test_compare_config_refuses_bad_input_naming_the_field():
    from pndmkit.errors import UsageError

    for changes, param, message in [
        ({"peers": ("dpmsolver",)}, "peers", "unknown peer 'dpmsolver' in peers; known: ddim"),
        ({"methods": ("pf",)}, "methods", "unknown fixed-step method 'pf' in methods"),
        ({"seed": -1}, "seed", "seed must be an integer >= 0, got -1"),
        ({"nfes": (5, 0)}, "nfes", "nfes must be integers >= 1, got 0"),
        ({"problems": ()}, "problems", "problems must name at least one problem"),
    ]:
        with pytest.raises(UsageError, match=message) as info:
            cmp.CompareConfig(**changes)
        assert info.value.params == (param,)
    with pytest.raises(UsageError, match=r"no solver runs within nfes=\[3\] on linear-vp: the fewest model calls of "
                                         r"a run are f-pndm 4, prk 4") as info:
        cmp.compare(cmp.CompareConfig(problems=("gmm2d",), schedules=("linear-vp",), nfes=(3,),
                                      methods=("f-pndm", "prk"), peers=()))
    assert info.value.params == ("nfes", "methods", "peers")


# -- optimised grids: run through the same harness, reported apart ------------------------------------------
OPT = cmp.CompareConfig(problems=("gmm2d",), schedules=("discrete-linear", "linear-vp"), nfes=(4, 6), n=64,
                        methods=("ddim", "ipndm", "euler"), peers=(), grids=True,
                        optimized_grids=("ddim", "ipndm", "euler"), optimize_maxfev=60, optimize_calibration=16)


@pytest.fixture(scope="module")
def optimized_result():
    return cmp.compare(OPT)


def test_optimized_rows_stay_out_of_the_builtin_results(optimized_result):
    """The option adds rows of its own and changes nothing else: every built-in row, summary and floor is
    what the same comparison gives without it, to the last bit."""
    plain = cmp.compare(cmp.with_options(OPT, optimized_grids=False))
    assert "by_nfe_optimized" not in plain and "optimized" not in plain["cases"][0]
    for key in ("by_nfe", "by_nfe_shared_grids", "by_nfe_peers_on_pndmkit_grids"):
        assert optimized_result[key] == plain[key]
    def timeless(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    for with_opt, without in zip(optimized_result["cases"], plain["cases"]):
        assert (with_opt["sw_floor"], with_opt["n"]) == (without["sw_floor"], without["n"])
        for key in ("best", "best_shared_grids", "runs"):
            assert timeless(with_opt[key]) == timeless(without[key])
        assert {r["option"] for r in with_opt["optimized"]} == {"optimized"}
        assert "optimized" not in {r["option"] for key in ("best", "best_shared_grids", "runs") for r in with_opt[key]}
        assert len(with_opt["optimized"]) == 3 * 2  # every method at every NFE


def test_compare_runs_csv_holds_every_run_the_optimised_ones_with_their_exact_times(optimized_result, tmp_path):
    """compare_runs.csv said it held every run and left out the optimised grids: now they follow the built-in and
    peer runs, their times in one cell that reads back to the JSON's floats exactly."""
    from pndmkit.studies.reports import RUN_FIELDS, write_compare_results

    write_compare_results(optimized_result, tmp_path)
    with (tmp_path / "compare_runs.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == RUN_FIELDS
    cases = optimized_result["cases"]
    assert len(rows) == sum(len(c["runs"]) + len(c["optimized"]) for c in cases)
    opt = [r for r in rows if r["option"] == "optimized"]
    expected = [(c["schedule"], r) for c in cases for r in c["optimized"]]
    assert len(opt) == len(expected) == 2 * 3 * 2
    for got, (schedule, want) in zip(opt, expected):
        assert got["schedule"] == schedule and (got["method"], int(got["nfe_target"])) == (want["method"],
                                                                                          want["nfe_target"])
        assert [float(t) for t in got["times"].split()] == want["times"]  # bit for bit
        assert float(got["error"]) == want["error"] and got["first_time"] == want["first_time"]
    assert all(r["times"] == r["first_time"] == "" for r in rows if r["option"] != "optimized")


def test_optimized_grid_keeps_the_builtin_end_points_and_costs_the_nfe(optimized_result):
    from pndmkit.methods import METHODS

    for case in optimized_result["cases"]:
        schedule = cmp.SCHEDULES[case["schedule"]]()
        builtin = {(r["method"], r["nfe_target"]): r for r in case["best"]}
        for row in case["optimized"]:
            times = np.array(row["times"])
            ref = builtin[(row["method"], row["nfe_target"])]
            assert times.size == row["steps"] + 1 and row["steps"] == ref["steps"] == row["nfe_target"]
            assert row["nfe"] == METHODS[row["method"]].build(schedule).nfe(row["steps"]) == row["nfe_target"]
            assert np.all(np.diff(times) < 0) and times[0] == schedule.t_start
            end = -1.0 if case["schedule"] == "discrete-linear" else 1e-3 if row["method"] == "euler" else 0.0
            assert times[-1] == end
            assert (row["s_start"], row["s_end"]) == (ref["s_start"], ref["s_end"]) and row["starts_at_top"]
            assert 1 <= row["evaluations"] <= OPT.optimize_maxfev and row["calibration_error"] > 0


def test_optimized_grids_with_a_free_first_time_start_from_the_case_noise_there():
    """optimize_first_time="free": the optimised grid may start below the top, the case's noise taken as the
    state there (on this VP schedule the noise itself); its error is that run's, against the case's reference."""
    from pndmkit.errors import UsageError

    with pytest.raises(UsageError) as info:
        cmp.with_options(OPT, optimize_first_time="late")
    assert info.value.params == ("optimize_first_time",)
    cfg = cmp.with_options(OPT, schedules=("discrete-linear",), methods=("ipndm",), optimized_grids=("ipndm",),
                           nfes=(6,), optimize_first_time="free")
    result = cmp.compare(cfg)
    assert result["config"]["optimize_first_time"] == "free"
    (row,) = result["cases"][0]["optimized"]
    times = np.array(row["times"])
    assert row["first_time"] == "free" and times[0] < 999.0 and times[-1] == -1.0  # measured: about 870
    fixed = cmp.compare(cmp.with_options(cfg, optimize_first_time="fixed"))["cases"][0]["optimized"][0]
    assert fixed["first_time"] == "fixed" and fixed["times"][0] == 999.0
    assert row["s_start"] != fixed["s_start"]


@pytest.mark.parametrize("problem", ["gmm1d", "gmm2d"])
def test_optimized_grid_beats_the_methods_best_builtin_grid_at_small_nfe(problem):
    """Measured (seeds 0-3, both schedules, NFE 4 and 6, 64 samples, 60 runs on 16 calibration noises):
    optimised / best built-in error 0.71-0.77 for ddim, 0.07-0.86 for ipndm (0.08-0.26 at seed 0, run here);
    asserted: below 0.9."""
    cfg = cmp.with_options(OPT, problems=(problem,), schedules=("discrete-linear",), methods=("ddim", "ipndm"),
                           optimized_grids=("ddim", "ipndm"))
    summary = cmp.compare(cfg)["by_nfe_optimized"]
    assert list(summary) == ["4", "6"]
    for entry in summary.values():
        assert set(entry["methods"]) == {"ddim", "ipndm"}
        for m in entry["methods"].values():
            assert m["ratio"] == pytest.approx(m["optimized"] / m["builtin"]) and m["ratio"] < 0.9
        assert entry["vs_builtin"] == pytest.approx(entry["best_optimized"]["error"] / entry["best_builtin"]["error"])
        assert entry["vs_builtin"] < 0.9 and "best_peer" not in entry  # peers=()


def test_the_optimisations_of_a_case_share_one_reference_solve_of_their_calibration_noises(monkeypatch):
    """Every method and NFE of a case is optimised on the same calibration noises: their reference is solved
    once (each tolerance), counted at the solver, and the rows equal those of optimisations that solve it anew."""
    from pndmkit.problems import GaussianMixture
    from pndmkit.studies import targets

    calls = []
    solve = GaussianMixture.reference

    def counted(self, x_T, *args, **kwargs):
        calls.append((len(x_T), kwargs["rtol"]))
        return solve(self, x_T, *args, **kwargs)

    cfg = cmp.with_options(OPT, schedules=("discrete-linear",), methods=("ddim", "ipndm"),
                           optimized_grids=("ddim", "ipndm"), optimize_maxfev=20)
    monkeypatch.setattr(GaussianMixture, "reference", counted)
    targets.clear_problem_references()
    shared = cmp.compare(cfg)["cases"][0]["optimized"]
    assert len(shared) == 4  # two methods at two NFEs
    assert calls == [(16, 1e-12), (16, 1e-13), (1, 1e-12), (1, 1e-13)]  # calibration and held-out noise, once

    def forgetful(*args, **kwargs):
        targets.clear_problem_references()
        return optimize(*args, **kwargs)

    from pndmkit.studies.grid_opt import optimize

    monkeypatch.setattr("pndmkit.studies.grid_opt.optimize", forgetful)
    calls.clear()
    anew = cmp.compare(cfg)["cases"][0]["optimized"]
    assert len(calls) == 4 * 4

    def timeless(rows):
        return [{k: v for k, v in r.items() if k not in ("seconds", "optimize_seconds")} for r in rows]

    assert timeless(anew) == timeless(shared)


def test_optimized_summary_scores_as_by_nfe(optimized_result):
    """best_optimized / best_builtin are geometric means over the cases of the rows, as by_nfe's are."""
    for target, entry in optimized_result["by_nfe_optimized"].items():
        m = entry["best_optimized"]["method"]
        errors = [r["error"] for c in optimized_result["cases"] for r in c["optimized"]
                  if r["method"] == m and r["nfe_target"] == int(target)]
        assert entry["best_optimized"]["error"] == pytest.approx(float(np.exp(np.mean(np.log(errors)))), rel=1e-12)
        assert entry["best_builtin"] == optimized_result["by_nfe"][target]["best_pndmkit"]
        assert min(v["optimized"] for v in entry["methods"].values()) == entry["best_optimized"]["error"]


def test_optimized_grids_default_set_and_bad_input():
    from pndmkit.errors import UsageError

    assert cmp.optimized_methods(cmp.CompareConfig(optimized_grids=True)) == cmp.OPTIMIZED_DEFAULT
    assert cmp.optimized_methods(cmp.with_options(cmp.CompareConfig.quick(), optimized_grids=True)) == ("ipndm",)
    assert cmp.optimized_methods(cmp.CompareConfig(methods=("ddim",), optimized_grids=True)) == ("ddim",)
    assert cmp.optimized_methods(cmp.CompareConfig(optimized_grids=())) == ()
    for changes, params, message in [
        ({"optimized_grids": ("foo",)}, ("optimized_grids",), "unknown method 'foo' in optimized_grids; fixed-step"),
        ({"optimized_grids": ("pf",)}, ("optimized_grids",), "method 'pf' is adaptive"),
        ({"optimized_grids": "ipndm"}, ("optimized_grids",), "must be True, False or a tuple of fixed-step methods"),
        ({"optimized_grids": ("ipndm",), "methods": ("ddim",)}, ("optimized_grids", "methods"),
         "optimized_grids names 'ipndm', which is not among methods"),
        ({"optimize_maxfev": 0}, ("optimize_maxfev",), "optimize_maxfev must be an integer >= 1, got 0"),
        ({"optimized_grids": ("ipndm", "ipndm")}, ("optimized_grids",), "names 'ipndm' more than once"),
        # every list option: a repeated value ran, and reported its row, twice
        ({"nfes": (5, 10, 5)}, ("nfes",), "^nfes names 5 more than once; name each once$"),
        ({"methods": ("ddim", "ipndm", "ddim")}, ("methods",), "^methods names 'ddim' more than once"),
        ({"peers": ("ddim", "ddim")}, ("peers",), "^peers names 'ddim' more than once"),
        ({"schedules": ("linear-vp", "linear-vp")}, ("schedules",), "^schedules names 'linear-vp' more than once"),
    ]:
        with pytest.raises(UsageError, match=message) as info:
            cmp.CompareConfig(**changes)
        assert info.value.params == params


@pytest.mark.parametrize("argv, expected", [
    (["--optimized-grids", "foo"], "--optimized-grids: unknown or adaptive method 'foo'; grids are optimised for registered fixed-step methods: ddim"),
    (["--optimized-grids", "pf"], "--optimized-grids: unknown or adaptive method 'pf'"),
    (["--methods", "ddim", "--optimized-grids", "ipndm"],
     "--optimized-grids/--methods: optimized_grids names 'ipndm', which is not among methods (ddim)"),
    (["--optimized-grids", "ipndm", "ipndm"], "--optimized-grids: optimized_grids names 'ipndm' more than once"),
    (["--nfe", "5", "5"], "--nfe: nfes names 5 more than once; name each once"),
    (["--methods", "ddim", "ddim"], "--methods: methods names 'ddim' more than once"),
    (["--optimize-maxfev", "10"], "--optimize-maxfev: --optimize-maxfev tunes --optimized-grids and "
                                  "--optimized-solvers, neither of which is given"),
    (["--optimize-first-time", "free"],
     "--optimize-first-time: --optimize-first-time tunes --optimized-grids and --optimized-solvers, neither of which "
     "is given"),
    (["--optimized-grids", "--optimize-first-time", "late"],
     "--optimize-first-time: invalid choice: 'late' (choose from 'fixed', 'free')"),
    (["--optimized-grids", "--optimize-calibration", "0"], "--optimize-calibration: expected an integer >= 1"),
    (["--methods", "ddim", "--optimized-solvers"],
     "--optimized-solvers/--methods: optimized_solvers fits ipndm's grid and step weights, which is not among "
     "methods (ddim)"),
    (["--optimized-solvers", "--optimize-maxfev", "0"], "--optimize-maxfev: expected an integer >= 1"),
    (["--auto-calibration", "64"], "--auto-calibration: --auto-calibration tunes --auto, which is not given"),
    (["--auto", "--auto-calibration", "0"], "--auto-calibration: expected an integer in [8, 1000000], got '0'"),
    (["--auto", "--auto-calibration", "4"], "--auto-calibration: expected an integer in [8, 1000000], got '4'"),
    (["--auto", "--auto-calibration", "1"], "--auto-calibration: expected an integer in [8, 1000000], got '1'"),
])
def test_optimized_grids_and_auto_bad_command_line_is_one_line(argv, expected, usage_error):
    err = usage_error(["compare", "--quick", "--peers", *argv])
    assert err.startswith("pndmkit compare: error: ") and expected in err, err


def test_optimized_grids_command_prints_and_writes_its_own_table(tmp_path, capsys):
    from pndmkit.cli import main

    out = tmp_path / "o"
    assert main([*TINY_NFE5, "--peers", "--optimized-grids", "ipndm", "--optimize-maxfev", "30",
                 "--optimize-calibration", "8", "--out", str(out)]) == 0
    text = capsys.readouterr()
    lines = text.out.strip().splitlines()
    head = lines.index("optimised grids (apart from the table above; error / error ratios as above):")
    assert lines[head + 1].split()[:3] == ["NFE", "best", "optimised"]
    row = lines[head + 2].split()
    # the last cell: "ipndm <ratio> [<low>, <high>]", the optimised / own built-in ratio and its interval
    assert row[:3] == ["5", "ipndm", "(5)"] and row[-4] == "ipndm" and float(row[-3]) > 0
    assert float(row[-2].strip("[,")) <= float(row[-3]) <= float(row[-1].strip("]"))
    assert "ipndm NFE 5 (5 steps): " in text.err and "calibration runs in" in text.err  # cost shown
    saved = json.loads((out / "compare.json").read_text())
    assert set(saved["by_nfe_optimized"]) == {"5"} and saved["config"]["optimized_grids"] == ["ipndm"]
    with (out / "compare.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    entry = saved["by_nfe_optimized"]["5"]
    assert rows and entry["vs_builtin_interval"] is not None and "vs_peer" not in entry  # --peers with no names
    for r in rows:
        assert float(r["vs_builtin"]) == entry["vs_builtin"] and r["vs_peer"] == r["vs_peer_interval_lo"] == ""
        assert [float(r["vs_builtin_interval_lo"]), float(r["vs_builtin_interval_hi"])] == entry["vs_builtin_interval"]
    md = (out / "compare.md").read_text()
    assert "## Optimised grids (reported apart" in md and "| gmm2d/discrete-linear | 5 | ipndm | " in md


# -- automatic choice of method and grid: from calibration noises alone, reported apart -----------------------
AUTO = cmp.CompareConfig(problems=("gmm2d",), schedules=("discrete-linear", "linear-vp"), nfes=(4, 6), n=64,
                         methods=("ddim", "ipndm", "unipc-3"), peers=(), grids=True, optimized_grids=("ipndm",),
                         optimize_maxfev=40, optimize_calibration=16, auto=True, auto_calibration=64)


@pytest.fixture(scope="module")
def auto_result():
    return cmp.compare(AUTO)


def _timeless(rows):
    return [{k: v for k, v in r.items() if k not in ("seconds", "optimize_seconds")} for r in rows]


def test_auto_rows_stay_out_of_the_other_results(auto_result):
    """The option adds rows and a summary of its own; every other row, summary and floor is what the same
    comparison gives without it, to the last bit (optimised rows included)."""
    plain = cmp.compare(cmp.with_options(AUTO, auto=False))
    assert "by_nfe_auto" not in plain and "auto" not in plain["cases"][0]
    for key in ("by_nfe", "by_nfe_shared_grids", "by_nfe_peers_on_pndmkit_grids"):
        assert auto_result[key] == plain[key]
    for key in ("best_builtin", "best_peer"):
        for target, entry in auto_result["by_nfe_optimized"].items():
            assert entry.get(key) == plain["by_nfe_optimized"][target].get(key)
    for with_auto, without in zip(auto_result["cases"], plain["cases"]):
        assert (with_auto["sw_floor"], with_auto["n"]) == (without["sw_floor"], without["n"])
        for key in ("best", "best_shared_grids", "runs"):
            assert _timeless(with_auto[key]) == _timeless(without[key])
        assert [r["error"] for r in with_auto["optimized"]] == [r["error"] for r in without["optimized"]]
        assert len(with_auto["auto"]) == len(cmp.AUTO_RULES) * 2  # every rule at every NFE


def test_auto_choice_never_reads_the_cases_samples(auto_result, monkeypatch):
    """Perturbed start samples change every error the case reports and none of the choices: the choice is made
    before the case's samples are drawn, from calibration samples of an independent stream."""
    draw = cmp._case_samples
    monkeypatch.setattr(cmp, "_case_samples", lambda problem, n, s_max, seed: draw(problem, n, s_max, seed + 7) * 1.1)
    moved = cmp.compare(AUTO)
    for before, after in zip(auto_result["cases"], moved["cases"]):
        def pick(row):
            return row["rule"], row["nfe_target"], row["method"], row["option"], row["calibration_error"]

        assert [pick(r) for r in before["auto"]] == [pick(r) for r in after["auto"]]
        assert all(a["error"] != b["error"] for a, b in zip(before["auto"], after["auto"]))
        assert all(a["error"] != b["error"] for a, b in zip(before["runs"], after["runs"]))
    from pndmkit.problems import get_problem

    problem = get_problem("gmm2d")
    cal = cmp.auto_calibration_samples(problem, 64, 100.0, 0)
    assert np.array_equal(cal, cmp.auto_calibration_samples(problem, 64, 100.0, 0))  # reproducible
    assert not np.isin(cal, draw(problem, 1000, 100.0, 0)).any()  # no sample shared with the case's


def test_auto_rows_are_the_chosen_runs_on_the_cases_samples(auto_result):
    """Each choice is one of the case's runs at that NFE (its built-in or optimised row, the same error), and
    the rms rule's choice has the smallest calibration error of them."""
    for case in auto_result["cases"]:
        for row in case["auto"]:
            pool = case["optimized"] if row["optimized"] else case["runs"]
            same = [r for r in pool if (r["method"], r["option"], r["nfe_target"]) ==
                    (row["method"], row["option"], row["nfe_target"])]
            assert len(same) == 1 and same[0]["error"] == row["error"] and same[0]["nfe"] == row["nfe"]
            assert row["calibration_error"] > 0 and row["calibration_tail"] >= row["calibration_error"]
        for target in AUTO.nfes:
            rms = next(r for r in case["auto"] if r["rule"] == "rms" and r["nfe_target"] == target)
            assert rms["calibration_error"] == min(r["calibration_error"] for r in case["auto"]
                                                   if r["nfe_target"] == target)


def test_by_nfe_auto_scores_as_by_nfe(auto_result):
    for target, entry in auto_result["by_nfe_auto"].items():
        assert entry["best_builtin"] == auto_result["by_nfe"][target]["best_pndmkit"] and "best_peer" not in entry
        for rule, e in entry["rules"].items():
            errors = [r["error"] for c in auto_result["cases"] for r in c["auto"]
                      if r["rule"] == rule and r["nfe_target"] == int(target)]
            assert e["error"] == pytest.approx(float(np.exp(np.mean(np.log(errors)))), rel=1e-12)
            assert e["vs_builtin"] == pytest.approx(e["error"] / entry["best_builtin"]["error"], rel=1e-12)
            assert [c["error"] for c in e["cases"]] == errors


def test_auto_choice_rules_on_known_errors():
    """Exact choices on hand-made per-sample errors (mean squared error of 40 samples per candidate)."""
    flat = np.full(40, 1.0)
    typical = np.full(40, 0.25)  # RMS 0.5, tail 0.5
    rare = typical.copy()
    rare[0] = 30.0  # RMS sqrt((39 * 0.25 + 30) / 40) ~ 0.99, worst sample 30: a rare mode switch
    assert cmp.auto_choice({"a": flat, "b": typical}, "rms") == "b"
    assert cmp.auto_choice({"a": flat, "b": rare}, "rms") == "b"  # 0.99 < 1.0
    assert cmp.auto_choice({"a": flat, "b": rare}, "tail") == "a"  # sqrt(30) against 1
    # interval: an optimised candidate replaces the best built-in one only where its gain is shown
    assert cmp.auto_choice({"a": flat, "b": typical}, "interval", optimized=["b"]) == "b"
    assert cmp.auto_choice({"a": flat, "b": rare}, "interval", optimized=["b"]) == "a"  # rms says b: not shown
    assert cmp.auto_choice({"a": flat, "b": typical}, "interval", optimized=["a"]) == "b"  # b is built-in, better
    assert cmp.auto_choice({"a": flat, "b": np.full(40, np.inf)}, "rms") == "a"
    assert cmp.auto_choice({"a": np.full(40, np.nan)}, "tail") is None


def test_auto_bad_input_names_the_parameter():
    from pndmkit.errors import UsageError

    for changes, message in [
        ({"auto": "yes"}, "auto must be True or False, got 'yes'"),
        ({"auto_calibration": 4}, "auto_calibration must be an integer from 8 .* got 4"),
        ({"auto_calibration": True}, "auto_calibration must be an integer from 8"),
        ({"auto_calibration": 2_000_000}, "auto_calibration must be an integer from 8 .* to 1000000, got 2000000"),
    ]:
        with pytest.raises(UsageError, match=message) as info:
            cmp.CompareConfig(**changes)
        assert info.value.params == tuple(changes)
    with pytest.raises(UsageError, match="rule must be one of rms, interval, tail, got 'mean'") as info:
        cmp.auto_choice({"a": np.ones(8)}, "mean")
    assert info.value.params == ("rule",)
    with pytest.raises(UsageError, match="errors must map each candidate to a non-empty 1-D array") as info:
        cmp.auto_choice({"a": np.ones(8), "b": np.ones(9)}, "rms")
    assert info.value.params == ("errors",)


def test_auto_command_prints_and_writes_its_own_table(tmp_path, capsys):
    from pndmkit.cli import main

    out = tmp_path / "a"
    assert main([*TINY_NFE5, "--peers", "--auto", "--auto-calibration", "16", "--out", str(out)]) == 0
    text = capsys.readouterr()
    lines = text.out.strip().splitlines()
    head = lines.index("automatic choice from calibration noises (apart from the tables above; error / error ratios "
                       "as above):")
    assert lines[head + 1].split()[:2] == ["NFE", "best"] and lines[head + 2].split()[0] == "5"
    assert "pndmkit runs on 16 calibration noises in" in text.err
    saved = json.loads((out / "compare.json").read_text())
    assert set(saved["by_nfe_auto"]) == {"5"} and saved["config"]["auto_calibration"] == 16
    assert [r["rule"] for r in saved["cases"][0]["auto"]] == list(cmp.AUTO_RULES)
    md = (out / "compare.md").read_text()
    assert "## Automatic choice of method and grid" in md and "| gmm2d/discrete-linear | auto, tail | " in md


@pytest.mark.parametrize("name, label", [("compare_auto.json", "8192"), ("compare_auto_1024.json", "1024"),
                                         ("compare_auto_digits_gmm.json", "256"),
                                         ("compare_auto_digits_gmm_opt.json", "256"),
                                         ("compare_auto_digits_gmm_opt_more.json", "256"),
                                         ("compare_auto_digits_gmm_opt_8192.json", "8192")])
def test_readme_auto_ratios_are_the_json(name, label):
    """The README's tables of the automatic choice are the saved results: each case's ratio to its best peer
    (recomputed from the rows) and, for the mixtures, the geometric-mean ratio of each rule."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    data = json.loads((root / "analysis" / "results" / name).read_text())
    assert data["config"]["auto"] is True and data["config"]["auto_calibration"] == int(label)
    nfes = ["5", "6", "8", "10", "15", "20", "50"]
    assert list(data["by_nfe_auto"]) == nfes
    for case in data["cases"]:
        for rule in cmp.AUTO_RULES:
            cells = []
            for nfe in nfes:
                row = next(r for r in case["auto"] if r["rule"] == rule and r["nfe_target"] == int(nfe))
                peer = min(r["error"] for r in case["best"] if r["side"] == "peer" and r["nfe_target"] == int(nfe)
                           and "pndmkit-grid" not in r["method"])
                cells.append(f"{row['error'] / peer:.2f}" + ("*" if row["optimized"] else ""))
            line = f"| {case['problem']}, {case['schedule']} | {rule}, {label} | " + " | ".join(cells) + " |"
            assert line in readme, line
    if len(data["cases"]) > 1:
        for rule in cmp.AUTO_RULES:
            line = (f"| auto, {rule}, {label} calibration noises | "
                    + " | ".join(f"{data['by_nfe_auto'][n]['rules'][rule]['vs_peer']:.2f}" for n in nfes) + " |")
            assert line in readme, line
    if name == "compare_auto.json":  # the intervals of `interval` at 8192 the README quotes, each below the goal
        flat = " ".join(readme.split())
        rules = [data["by_nfe_auto"][n]["rules"]["interval"] for n in nfes]
        quoted = ", ".join(f"{r['vs_peer']:.2f} [{r['vs_peer_interval'][0]:.2f}, {r['vs_peer_interval'][1]:.2f}]"
                           for r in rules[:-1])
        last = rules[-1]
        assert (f"at 8192 reads {quoted} and {last['vs_peer']:.2f} [{last['vs_peer_interval'][0]:.2f}, "
                f"{last['vs_peer_interval'][1]:.2f}] at NFE 5-50") in flat
        assert max(r["vs_peer_interval"][1] for r in rules) < 0.5
    if name == "compare_auto_digits_gmm_opt_8192.json":  # the intervals the README quotes for rms and interval
        flat = " ".join(readme.split())
        for rule in ("rms", "interval"):
            rules = [data["by_nfe_auto"][n]["rules"][rule] for n in nfes]
            cells = [f"{r['vs_peer']:.2f} [{r['vs_peer_interval'][0]:.2f}, {r['vs_peer_interval'][1]:.2f}]"
                     for r in rules]
            assert f"{', '.join(cells[:-1])} and {cells[-1]} at NFE 5-50" in flat, cells


def test_peers_on_pndmkit_grids_alone_still_give_every_nfe_row(tmp_path, capsys):
    """With only a peer that runs on pndmkit's grid, the main table used to print its header alone: every NFE
    has a row (the peer side '-', the reason said once), and that peer's own table follows."""
    from pndmkit.cli import main

    out = tmp_path / "o"
    assert main([*TINY, "--peers", "ipndm-pndmkit-grid", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [line.split() for line in lines[1:3]]
    assert [r[0] for r in rows] == ["5", "10"] and all(r[5:] == ["-"] * 5 for r in rows), lines
    assert lines[3].startswith("-: no peer with its own options ran at that NFE")
    on_grid = lines.index("peers also on pndmkit's grids (ipndm-pndmkit-grid):")
    assert [line.split()[0] for line in lines[on_grid + 2:on_grid + 4]] == ["5", "10"]
    assert "ipndm-pndmkit-grid" in lines[on_grid + 2]
    saved = json.loads((out / "compare.json").read_text())
    assert set(saved["by_nfe"]) == {"5", "10"} and all("best_peer" not in e for e in saved["by_nfe"].values())
    assert all(e["best_peer"]["method"] == "ipndm-pndmkit-grid"
               for e in saved["by_nfe_peers_on_pndmkit_grids"].values())
    md = (out / "compare.md").read_text()
    assert "## Peers may also take pndmkit's quadratic grid" in md and "| 5 | ipndm (5) | " in md


def test_a_peer_that_is_pndmkit_s_own_method_on_its_grid_is_marked_a_parity_check(tmp_path, capsys):
    """ipndm against ipndm-pndmkit-grid (IPNDMScheduler handed ipndm's grid) read 1.000 [1.000, 1.000] as if two
    methods were compared: the entry says parity, and the text and markdown tables mark the row and say why."""
    from pndmkit.cli import main
    from pndmkit.studies.reports import PARITY_NOTE

    out = tmp_path / "o"
    assert main([*TINY, "--peers", "ipndm-pndmkit-grid", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    saved = json.loads((out / "compare.json").read_text())
    table = saved["by_nfe_peers_on_pndmkit_grids"]
    assert all(e["best_pndmkit"]["method"] == "ipndm" and e["parity"] is True for e in table.values()), table
    assert all(e["ratio"] == pytest.approx(1.0, abs=1e-3) for e in table.values())
    # the grid levels that decided it are the run's scratch: the file keeps the flag, not the levels
    assert cmp.GRID_LEVELS not in (out / "compare.json").read_text()
    on_grid = lines.index("peers also on pndmkit's grids (ipndm-pndmkit-grid):")
    assert all(line.endswith("]  parity check") for line in lines[on_grid + 2:on_grid + 4]), lines
    assert PARITY_NOTE in lines[on_grid + 4:]
    md = (out / "compare.md").read_text()
    assert "| 5 | ipndm (5) | " in md and " (parity check) | [" in md
    assert "Parity check: the best peer at that NFE is the best pndmkit method itself on the same grid" in md


def test_is_parity_needs_the_reproduced_method_on_the_same_grid_in_every_case():
    quadratic, s_uniform = [152.17, 11.36, 2.54, 0.0], [152.17, 20.1, 4.3, 0.0]
    ours = {"method": "ipndm", "options": ["quadratic", "quadratic to t=0"],
            cmp.GRID_LEVELS: [quadratic, quadratic]}

    def peer(method, *grids):
        return {"method": method, "options": ["grid=quadratic"] * len(grids), cmp.GRID_LEVELS: list(grids)}

    # the names differ ("quadratic to t=0" against "grid=quadratic"): the levels decide, to GRID_RTOL
    float32 = [152.22, 11.359701, 2.542124, 0.0]
    assert cmp.is_parity(ours, peer("ipndm-pndmkit-grid", quadratic, float32))
    assert not cmp.is_parity(ours, peer("ipndm-pndmkit-grid", quadratic, s_uniform))
    assert not cmp.is_parity(ours, peer("ipndm-pndmkit-grid", quadratic, quadratic[:-1]))
    assert not cmp.is_parity(ours, peer("ipndm-pndmkit-grid", quadratic))  # not run in every case
    assert not cmp.is_parity({**ours, "method": "ddim"}, peer("ipndm-pndmkit-grid", quadratic, quadratic))
    assert not cmp.is_parity(ours, peer("ipndm", quadratic, quadratic))  # diffusers' own grids: a comparison
    assert not cmp.is_parity({k: v for k, v in ours.items() if k != cmp.GRID_LEVELS},
                             peer("ipndm-pndmkit-grid", quadratic, quadratic))  # a summary without levels


@pytest.mark.peers
def test_parity_is_marked_in_a_real_compare_on_the_continuous_schedule(tmp_path, capsys, monkeypatch):
    """On linear-vp pndmkit names its grid "quadratic to t=0" and the peer handed it "grid=quadratic": the marking
    compared those names and never fired; the ipndm row read 1.00 [1.00, 1.00] unmarked. The levels compared are
    the runs' own (seen by a spy on is_parity) and are not written to the file."""
    pytest.importorskip("diffusers")
    from pndmkit.cli import main

    compared = []

    def spy(ours, peer):
        compared.append((ours, peer))
        return is_parity(ours, peer)

    is_parity = cmp.is_parity
    monkeypatch.setattr(cmp, "is_parity", spy)
    out = tmp_path / "o"
    assert main(["compare", "--problem", "gmm2d", "--schedule", "discrete-linear", "linear-vp", "--nfe", "6",
                 "--n", "16", "--methods", "ipndm", "--peers", "ipndm-pndmkit-grid", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    entry = json.loads((out / "compare.json").read_text())["by_nfe_peers_on_pndmkit_grids"]["6"]
    assert entry["best_pndmkit"]["options"] == ["quadratic", "quadratic to t=0"]  # the two cases' names differ
    assert entry["best_peer"]["options"] == ["grid=quadratic", "grid=quadratic"]
    assert entry["parity"] is True and entry["ratio"] == pytest.approx(1.0, abs=1e-3)
    ours, peer = next((o, p) for o, p in compared if p["method"] == "ipndm-pndmkit-grid")
    levels = ours[cmp.GRID_LEVELS][1]
    assert len(levels) == 7 and levels[-1] == 0.0  # 6 steps to abar = 1
    np.testing.assert_allclose(peer[cmp.GRID_LEVELS][1], levels, rtol=cmp.GRID_RTOL)
    assert cmp.GRID_LEVELS not in (out / "compare.json").read_text()  # scratch of the run, not kept
    on_grid = lines.index("peers also on pndmkit's grids (ipndm-pndmkit-grid):")
    assert lines[on_grid + 2].endswith("]  parity check"), lines
    assert " (parity check) | [" in (out / "compare.md").read_text()


def test_summaries_name_the_grid_of_each_best_run_and_the_auto_picks(tmp_path, capsys):
    from pndmkit.cli import main

    out = tmp_path / "o"
    assert main([*TINY_NFE5, "--peers", "ddim", "--auto", "--auto-calibration", "16",
                 "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    saved = json.loads((out / "compare.json").read_text())
    best = saved["by_nfe"]["5"]
    row = lines[1].split()
    assert row[3] == best["best_pndmkit"]["options"][0] == "leading"
    assert row[7] == best["best_peer"]["options"][0] == "timestep_spacing=leading"
    head = lines.index("automatic choice from calibration noises (apart from the tables above; error / error ratios "
                       "as above):")
    assert "rms picked" in lines[head + 1]
    for rule in cmp.AUTO_RULES:
        pick = next(r for r in saved["cases"][0]["auto"] if r["rule"] == rule)
        assert f"{pick['method']} [{pick['option']}]" in lines[head + 2]
    md = (out / "compare.md").read_text()
    assert "Peers may also take pndmkit's quadratic grid" not in md  # no peer ran on a pndmkit grid


def test_auto_calibration_samples_takes_a_name_and_names_bad_input():
    from pndmkit.problems import get_problem

    assert np.array_equal(cmp.auto_calibration_samples("gmm2d", 8, 100.0, 0),
                          cmp.auto_calibration_samples(get_problem("gmm2d"), 8, 100.0, 0))
    for kwargs, param, text in [({"problem": "nope"}, "problem", "unknown problem 'nope'; built-in problems: "),
                                ({"problem": 3}, "problem", "problem must be a built-in problem or its name"),
                                ({"seed": -1}, "seed", "seed must be an integer >= 0, got -1"),
                                ({"n": 0}, "n", "n must be an integer >= 1, got 0"),
                                ({"s_max": -1.0}, "s_max", "s_max must be a finite number >= 0 (a level s), got -1.0"),
                                ({"s_max": float("nan")}, "s_max", "s_max must be a finite number >= 0")]:
        args = {"problem": "gmm2d", "n": 8, "s_max": 100.0, "seed": 0, **kwargs}
        with pytest.raises(UsageError) as info:
            cmp.auto_calibration_samples(**args)
        assert info.value.params == (param,) and text in str(info.value), str(info.value)


def test_a_grid_label_shared_by_every_case_is_printed_once():
    from pndmkit.studies import reports

    same = {"options": ["quadratic", "quadratic", "quadratic"]}
    mixed = {"options": ["quadratic", "quadratic to t=0"]}
    assert reports._grid(same) == "quadratic"
    assert reports._grid(mixed) == "quadratic/quadratic to t=0"
    assert reports._grid(None) == reports._grid({"options": []}) == "-"


def test_without_grid_options_a_peer_on_pndmkit_grids_runs_the_grid_pndmkit_runs():
    """--quick/--no-grids hold pndmkit to its default grid; the IPNDM peer given pndmkit's grid must then get that
    grid too, not its first option (quadratic), or the same algorithm looks several times worse. It is pndmkit's
    ipndm on that grid, so the two tie."""
    from pndmkit.studies.peers import PEERS

    cfg = cmp.with_options(cmp.CompareConfig.quick(), methods=("ipndm",), peers=("ipndm-pndmkit-grid",))
    assert not cfg.grids and PEERS["ipndm-pndmkit-grid"].options[0] == {"grid": "quadratic"}
    out = cmp.compare(cfg)
    for nfe, entry in out["by_nfe_peers_on_pndmkit_grids"].items():
        mine, peer = entry["best_pndmkit"], entry["best_peer"]
        assert peer["options"] == [f"grid={mine['options'][0]}"], (nfe, peer["options"], mine["options"])
        assert peer["error"] == pytest.approx(mine["error"], rel=1e-4)


# -- 95% paired bootstrap intervals of the head-to-head's ratios ----------------------------------------------
def test_ratio_interval_is_exact_where_the_ratio_is_the_same_in_every_sample():
    from pndmkit.studies.statistics import INTERVAL_MIN_SAMPLES, ratio_interval, reduction_interval

    rng = np.random.default_rng(4)
    base = rng.chisquare(2, size=40)  # per-sample squared errors
    assert ratio_interval([(base, base)]) == (1.0, 1.0)  # identical errors
    assert ratio_interval([(0.25 * base, base)]) == (0.5, 0.5)  # every error halved
    assert ratio_interval([(9.0 * base, base)]) == pytest.approx((3.0, 3.0), rel=1e-14)
    # two cases, ratios 2 and 1/2 in every sample: the geometric mean is 1 on every resample
    other = rng.chisquare(3, size=25)
    assert ratio_interval([(4 * base, base), (other / 4, other)]) == pytest.approx((1.0, 1.0), rel=1e-14)
    # one case: 1 - the reduction's interval, end for end (the same paired resamples)
    mixed = base * rng.uniform(0.1, 1.5, size=40)
    low, high = ratio_interval([(mixed, base)])
    cut = reduction_interval(mixed, base)
    assert (low, high) == pytest.approx((1 - cut[1], 1 - cut[0]), rel=1e-12)
    assert low < float(np.sqrt(mixed.mean() / base.mean())) < high
    assert ratio_interval([(mixed, base)], level=0.5)[0] > low  # narrower at a lower level
    n = INTERVAL_MIN_SAMPLES
    assert all(np.isnan(ratio_interval([(base, base), (base[:n - 1], base[:n - 1])])))  # a case too small
    assert all(np.isnan(ratio_interval([(base[:n], np.zeros(n))])))  # a zero baseline: unbounded
    for pairs, params, shown in [([], ("pairs",), "non-empty"), ([(base,)], ("pairs",), "pairs"),
                                 ([(base, base[:-1])], ("errors", "baseline"), "got 40 and 39 values"),
                                 ([(base, -base)], ("baseline",), "at index 0")]:
        with pytest.raises(UsageError, match=shown) as info:
            ratio_interval(pairs)
        assert info.value.params == params


def _case(name, rows):
    return {"problem": name, "schedule": "s", "n": 16, "best": rows, "best_shared_grids": rows, "runs": rows}


def _row(side, method, target, sq):
    return {"side": side, "method": method, "option": "o", "nfe_target": target, "nfe": target,
            "error": float(np.sqrt(np.mean(sq))), cmp.SAMPLE_ERRORS: np.asarray(sq)}


def test_by_nfe_interval_is_exact_on_constructed_cases():
    """pndmkit's per-sample errors c times the peer's in every sample of every case: the ratio is c and every
    bootstrap resample gives c; without per-sample errors (results read back) there is no interval."""
    rng = np.random.default_rng(5)
    cases = []
    for name in ("a", "b"):
        sq = rng.chisquare(2, size=16)
        cases.append(_case(name, [_row("pndmkit", "ipndm", 5, 0.36 * sq), _row("pndmkit", "ddim", 5, 4 * sq),
                                  _row("peer", "dpm-3m", 5, sq), _row("peer", "ddim", 5, 9 * sq)]))
    entry = cmp.by_nfe(cases, (5,))["5"]
    assert (entry["best_pndmkit"]["method"], entry["best_peer"]["method"]) == ("ipndm", "dpm-3m")
    assert entry["ratio"] == pytest.approx(0.6, rel=1e-14)
    assert entry["ratio_interval"] == pytest.approx([0.6, 0.6], rel=1e-14)
    for case in cases:
        for row in case["best"]:
            row.pop(cmp.SAMPLE_ERRORS)
    assert cmp.by_nfe(cases, (5,))["5"]["ratio_interval"] is None


def _inside(ratio, interval):
    return interval is not None and interval[0] <= ratio <= interval[1] and interval[0] < interval[1]


def test_every_head_to_head_ratio_has_its_interval_in_the_json_table_and_report(tmp_path, capsys):
    from pndmkit.cli import main

    out = tmp_path / "o"
    assert main([*TINY, "--peers", "ddim", "pndm-plms", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0].split()[-3:] == ["ratio", "95%", "interval"]
    assert printed[3].startswith("95% interval: paired bootstrap over samples of the ratio, the best solver of "
                                 "each side (and its grid option) fixed as chosen on all the samples")
    saved = json.loads((out / "compare.json").read_text())
    assert "sample_errors" not in (out / "compare.json").read_text()  # per-sample errors are not kept
    for key in ("by_nfe", "by_nfe_shared_grids", "by_nfe_peers_on_pndmkit_grids"):
        for nfe, entry in saved[key].items():
            assert _inside(entry["ratio"], entry["ratio_interval"]), (key, nfe)
            low, high = entry["ratio_interval"]
            assert f"{entry['ratio']:.3f}  [{low:.3f}, {high:.3f}]" in "\n".join(printed)
    md = (out / "compare.md").read_text()
    assert "| ratio | 95% interval |" in md
    low, high = saved["by_nfe"]["5"]["ratio_interval"]
    assert f"| {saved['by_nfe']['5']['ratio']:.2f} | [{low:.2f}, {high:.2f}] |" in md
    assert not any("parity" in e for key in ("by_nfe", "by_nfe_peers_on_pndmkit_grids") for e in saved[key].values())
    assert "parity check" not in "\n".join(printed) + md  # two implementations of different methods
    # compare.csv carries the same ratios and intervals, appended after its own columns
    from pndmkit.studies.reports import BEST_FIELDS, SUMMARY_FIELDS

    with (out / "compare.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert tuple(reader.fieldnames) == BEST_FIELDS + SUMMARY_FIELDS and BEST_FIELDS[:3] == ("problem", "schedule",
                                                                                          "nfe_target")
    assert {r["nfe_target"] for r in rows} == {"5", "10"}
    for r in rows:
        entry = saved["by_nfe"][r["nfe_target"]]
        assert float(r["ratio"]) == entry["ratio"]
        assert [float(r["ratio_interval_lo"]), float(r["ratio_interval_hi"])] == entry["ratio_interval"]
        assert all(r[name] == "" for name in SUMMARY_FIELDS[3:])  # no optimised grids in this run


def test_optimised_and_auto_ratios_have_intervals(optimized_result, auto_result):
    for entry in optimized_result["by_nfe_optimized"].values():
        assert _inside(entry["vs_builtin"], entry["vs_builtin_interval"])
        for m in entry["methods"].values():
            assert _inside(m["ratio"], m["ratio_interval"])
    for entry in auto_result["by_nfe_auto"].values():
        for e in entry["rules"].values():
            assert e["vs_builtin"] == 1.0 and e["vs_builtin_interval"] == [1.0, 1.0] or \
                _inside(e["vs_builtin"], e["vs_builtin_interval"])
    for result in (optimized_result, auto_result):
        assert "sample_errors" not in json.dumps(result)


# -- candidates: a re-run restricted to the runs that led ------------------------------------------------------
def test_candidates_restrict_the_runs_and_a_candidate_that_names_no_run_is_refused():
    cfg = cmp.CompareConfig(problems=("gmm2d",), schedules=("discrete-linear",), nfes=(5, 6), n=16,
                            methods=("ddim", "ipndm"), peers=(), candidates=(("pndmkit", "ipndm", "quadratic", 5),
                                                                             ("pndmkit", "ddim", "leading", 6)))
    rows = cmp.compare(cfg)["cases"][0]["runs"]
    assert [(r["method"], r["option"], r["nfe_target"]) for r in rows] == [("ddim", "leading", 6),
                                                                            ("ipndm", "quadratic", 5)]
    full = cmp.compare(dataclasses.replace(cfg, candidates=None))["cases"][0]["runs"]
    assert len(full) == 2 * 2 * 8  # every grid kind of each method at each NFE (leading-multistep the eighth)
    same = {(f["method"], f["option"], f["nfe_target"]): f["error"] for f in full}
    for r in rows:  # the same runs (the reference is read at fewer levels: its last digits may move)
        assert r["error"] == pytest.approx(same[(r["method"], r["option"], r["nfe_target"])], rel=1e-6)
    with pytest.raises(UsageError, match=r"candidate \('pndmkit', 'ipndm', 'lead', 5\) names no planned run: the "
                                         r"options of pndmkit 'ipndm' are karras, leading") as info:
        cmp.compare(cmp.with_options(cfg, candidates=(("pndmkit", "ipndm", "lead", 5),)))
    assert info.value.params == ("candidates",)
    for bad, shown in [((("pndmkit", "plms", "leading", 5),), "'plms' is not among the methods that run"),
                       ((("pndmkit", "ipndm", "leading", 7),), "NFE 7 is not among nfes"),
                       ((("ours", "ipndm", "leading", 5),), "side 'pndmkit' or 'peer'"), ((), "non-empty")]:
        with pytest.raises(UsageError, match=shown) as info:
            cmp.with_options(cfg, candidates=bad)
        assert info.value.params == ("candidates",)


# -- variants: a peer's configuration run by name ------------------------------------------------------------
def test_the_nolof_variant_runs_only_where_named_and_is_not_registered():
    from pndmkit.methods import METHODS

    assert "dpm-solver++-3m-nolof" not in METHODS and "dpm-solver++-3m-nolof" in cmp.compare_methods()
    assert "dpm-solver++-3m-nolof" not in cmp.pndmkit_methods()  # the default methods
    spec = cmp.VARIANTS["dpm-solver++-3m-nolof"]
    built = spec.build(DiscreteVP.linear())
    assert built.name == spec.name and built.estimator.lower_order_final is False and spec.nfe(5) == 5
    cfg = cmp.CompareConfig(problems=("gmm2d",), schedules=("discrete-linear",), nfes=(5,), n=16,
                            methods=("dpm-solver++-3m", "dpm-solver++-3m-nolof"), peers=(), grids=False)
    rows = {r["method"]: r for r in cmp.compare(cfg)["cases"][0]["runs"]}
    assert rows["dpm-solver++-3m-nolof"]["nfe"] == 5 and rows["dpm-solver++-3m-nolof"]["option"] == "leading"
    assert rows["dpm-solver++-3m-nolof"]["error"] != rows["dpm-solver++-3m"]["error"]  # the last steps differ
    with pytest.raises(UsageError, match="unknown method 'dpm-solver\\+\\+-3m-nolof' in optimized_grids"):
        cmp.with_options(cfg, optimized_grids=("dpm-solver++-3m-nolof",))


def test_compare_never_overwrites_an_earlier_run_unless_told(tmp_path, run_cli):
    """A second run into the same --out is refused in one line before it runs, the earlier files keep their
    bytes; --overwrite replaces them (atomically: no temporary file is left), and alone it is refused."""
    out = tmp_path / "mine"
    assert run_cli([*TINY, "--peers", "--out", str(out)])[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "compare.md").write_text("my notes\n")  # an earlier run's file, edited by hand
    code, _, err = run_cli([*TINY[:-1], "--peers", "--out", str(out)])  # a different run: with grids
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "--out" in err and "already holds compare.json, compare.csv, compare_runs.csv, compare.md" in err, err
    assert "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {**before, "compare.md": b"my notes\n"}
    assert run_cli([*TINY, "--peers", "--out", str(out), "--overwrite"])[0] == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    assert (out / "compare.md").read_bytes() == before["compare.md"]
    code, _, err = run_cli([*TINY, "--peers", "--overwrite"])
    assert code == 2 and "--overwrite" in err and "--out" in err and err.count("\n") == 1, err


def test_compare_refuses_an_out_folder_another_run_is_using(tmp_path, run_cli, hold_lock, in_use):
    """Two compare runs started into one --out at once both passed the "already holds" check, and the second
    replaced the first's results: the folder is locked from that check to the last write, and a run that finds it
    locked is refused at once (one line naming --out, the folder and the lock file, exit 2), writing nothing; once
    the lock is released the same command runs, and a run that wrote nothing leaves no lock file behind."""
    from pndmkit.commands.compare import LOCK_FILE

    out = tmp_path / "same"
    argv = ["compare", "--quick", "--nfe", "5", "--peers", "--methods", "ddim", "--no-grids", "--n", "16",
            "--out", str(out)]
    holder = hold_lock(out, LOCK_FILE)
    try:
        code, printed, err = run_cli(argv)
        assert code == 2 and printed == "" and err == in_use("pndmkit compare", out, LOCK_FILE, "compare run")
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing written
    finally:
        holder.communicate("")
    assert run_cli(argv)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([LOCK_FILE, "compare.csv", "compare.json", "compare.md",
                                                            "compare_runs.csv"])
    # a run refused inside the lock (here: by a bad option) leaves neither the folder nor a lock file it made
    fresh = tmp_path / "fresh"
    code, _, err = run_cli(argv[:-1] + [str(fresh), "--optimize-maxfev", "3"])
    assert code == 2 and "--optimize-maxfev" in err and not fresh.exists(), err


def test_readme_head_to_head_ratios_and_intervals_are_the_json():
    """The README's head-to-head table (ratios and their 95% intervals, all grids and diffusers' grid families)
    is analysis/results/compare.json, and each interval holds its ratio."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    data = json.loads((root / "analysis" / "results" / "compare.json").read_text())
    for key, label in (("by_nfe", "ratio (goal: at most 0.5)"),
                       ("by_nfe_shared_grids", "ratio, pndmkit limited to diffusers' grid families (goal: at most 1.0)")):
        rows = data[key]
        assert list(rows) == ["5", "6", "8", "10", "15", "20", "50"]
        for row in rows.values():
            low, high = row["ratio_interval"]
            assert low <= row["ratio"] <= high
        goal = 0.5 if key == "by_nfe" else 1.0  # misses are in bold
        ratios = " | ".join(f"**{r['ratio']:.2f}**" if round(r["ratio"], 2) > goal else f"{r['ratio']:.2f}"
                            for r in rows.values())
        intervals = " | ".join(f"{r['ratio_interval'][0]:.2f}-{r['ratio_interval'][1]:.2f}" for r in rows.values())
        assert f"| {label} | {ratios} |\n| its 95% interval | {intervals} |" in readme, (ratios, intervals)


def test_readme_digits_gmm_auto_intervals_are_the_json():
    """The README's 95% intervals of the digits-gmm automatic choice (rule 'interval') are the saved JSON's."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    data = json.loads((root / "analysis" / "results" / "compare_auto_digits_gmm_opt.json").read_text())
    cells = []
    for row in data["by_nfe_auto"].values():
        rule = row["rules"]["interval"]
        low, high = rule["vs_peer_interval"]
        assert low <= rule["vs_peer"] <= high
        cells.append(f"{low:.2f}-{high:.2f}")
    assert "are " + " / ".join(cells) + " at NFE 5-50" in " ".join((root / "README.md").read_text().split())


def test_solvers_left_out_at_an_nfe_are_named_with_the_reason(capsys):
    """A method that costs more than the NFE in one step (pie: 2 evaluations; f-pndm: a 4-evaluation warm-up step)
    and a peer whose scheduler refuses small step counts (diffusers' PNDMScheduler with its Runge-Kutta steps)
    used to be left out of the table without a word; the table names each with the reason, and --json keeps them
    as ``skipped``. ddim runs at every NFE on both sides and is named nowhere."""
    from pndmkit.cli import main
    from pndmkit.methods import get_method

    argv = ["compare", "--problem", "gmm2d", "--schedule", "discrete-linear", "--nfe", "1", "3", "5", "--n", "16",
            "--methods", "ddim", "pie", "f-pndm", "--peers", "ddim", "pndm", "--no-grids"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    notes = lines[lines.index("left out (no run at that NFE, so not in the table):") + 1:]
    assert notes[0].startswith("  peer pndm at NFE 1, 3, 5: its scheduler refuses N=1..3 steps (ValueError: ")
    assert notes[0].endswith(") and 4 steps cost 13 evaluations")
    assert notes[1:] == ["  pndmkit f-pndm at NFE 1, 3: one step costs 4 evaluations (its first steps are warm-up "
                         "steps of 4 evaluations each; later steps cost 1)",
                         "  pndmkit pie at NFE 1: one step costs 2 evaluations"]
    spec = get_method("f-pndm")  # the warm-up the note names: three steps of 4 evaluations, then 1 each
    assert [spec.nfe(n) for n in (1, 2, 3, 4, 5)] == [4, 8, 12, 13, 14]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    skipped = {(e["side"], e["method"], e["nfe_target"]) for e in out["skipped"]}
    assert skipped == {("peer", "pndm", 1), ("peer", "pndm", 3), ("peer", "pndm", 5), ("pndmkit", "pie", 1),
                       ("pndmkit", "f-pndm", 1), ("pndmkit", "f-pndm", 3)}
    assert all(e["cases"] == ["gmm2d/discrete-linear"] for e in out["skipped"])
    assert out["by_nfe"]["1"]["best_pndmkit"]["method"] == "ddim"  # the existing fields are as they were


def test_skipped_summary_lists_every_case_an_entry_holds_in():
    """Under any ``key`` an entry lists each case it holds in (a loop variable once shadowed ``key``, so only the
    first case was read)."""
    from pndmkit.studies.compare import skipped_summary

    entry = {"side": "pndmkit", "method": "pie", "nfe_target": 1, "reason": "one step costs 2 evaluations"}
    other = {**entry, "method": "f-pndm", "reason": "warm-up"}
    cases = [{"problem": "gmm1d", "schedule": "discrete-linear", "skipped": [entry], "optimized_skipped": [entry]},
             {"problem": "gmm2d", "schedule": "linear-vp", "skipped": [entry, other],
              "optimized_skipped": [entry, other]}]
    for key in ("skipped", "optimized_skipped"):
        assert skipped_summary(cases, key) == [
            {**other, "cases": ["gmm2d/linear-vp"]},
            {**entry, "cases": ["gmm1d/discrete-linear", "gmm2d/linear-vp"]}], key


def test_compare_names_every_case_a_solver_is_left_out_on(capsys):
    """pie at NFE 1 and ipndm's optimised grid at NFE 1 are left out on both cases: the JSON lists both, and the
    text, which names cases only where not all, names none."""
    from pndmkit.cli import main

    argv = ["compare", "--problem", "gmm1d", "gmm2d", "--schedule", "discrete-linear", "--nfe", "1", "--n", "16",
            "--methods", "pie", "ipndm", "--peers", "--no-grids", "--optimized-grids", "ipndm"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    both = ["gmm1d/discrete-linear", "gmm2d/discrete-linear"]
    assert [(e["method"], e["nfe_target"], e["cases"]) for e in out["skipped"]] == [("pie", 1, both)]
    assert [(e["method"], e["nfe_target"], e["cases"]) for e in out["optimized_skipped"]] == [("ipndm", 1, both)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "  pndmkit pie at NFE 1: one step costs 2 evaluations" in text.splitlines()
    assert "  pndmkit ipndm at NFE 1: one step with the first time fixed" in text
    assert "(on " not in text


def test_readme_first_time_free_compare_numbers_are_the_json():
    """The README's paragraphs on the head-to-head with the optimised grids' first time searched quote the saved
    runs (mixtures: best optimised grid / best peer and / best built-in; digits-gmm: rms and interval with
    intervals), and those runs are what they say: first time free, and below the top where it helped."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = " ".join((root / "README.md").read_text().split())
    nfes = ["5", "6", "8", "10", "15", "20", "50"]
    mix = json.loads((root / "analysis" / "results" / "compare_optimized_free.json").read_text())
    assert mix["config"]["optimize_first_time"] == "free" and mix["config"]["auto"] is False
    by = mix["by_nfe_optimized"]
    for key in ("vs_peer", "vs_builtin"):
        assert " / ".join(f"{by[n][key]:.2f}" for n in nfes) in readme, key
    rows = [r for case in mix["cases"] for r in case["optimized"]]
    assert all(r["first_time"] == "free" and r["times"][0] <= cmp.SCHEDULES[case["schedule"]]().t_start
               for case in mix["cases"] for r in case["optimized"])
    assert any(r["times"][0] < 999.0 for r in rows if r["method"] == "ipndm")
    dg = json.loads((root / "analysis" / "results" / "compare_auto_digits_gmm_opt_free.json").read_text())
    assert dg["config"]["optimize_first_time"] == "free" and dg["config"]["auto_calibration"] == 256
    for rule in ("rms", "interval"):
        quoted = ", ".join(
            f"{r['vs_peer']:.2f} [{r['vs_peer_interval'][0]:.2f}, {r['vs_peer_interval'][1]:.2f}]"
            for r in (dg["by_nfe_auto"][n]["rules"][rule] for n in nfes[:-1]))
        last = dg["by_nfe_auto"]["50"]["rules"][rule]
        assert (f"read {quoted} and {last['vs_peer']:.2f} [{last['vs_peer_interval'][0]:.2f}, "
                f"{last['vs_peer_interval'][1]:.2f}] at NFE 5-50") in readme, rule


# -- optimised grids: what is left out, and where their times are saved ---------------------------------------
ONE_STEP = cmp.CompareConfig(problems=("gmm2d",), schedules=("discrete-linear",), nfes=(1, 2, 4), n=32,
                             methods=("ipndm", "prk", "f-pndm"), peers=(), optimized_grids=("ipndm", "prk", "f-pndm"),
                             optimize_maxfev=20, optimize_calibration=8)


def test_a_one_step_grid_with_the_first_time_fixed_is_not_optimised_and_is_named_under_the_table():
    """One step with its first time fixed is the two end times: no optimised row, no credit in the summary; the
    (method, NFE) is named under the optimised table with the reason, as a method that fits no step is."""
    from pndmkit.studies.reports import compare_markdown, optimized_summary

    result = cmp.compare(ONE_STEP)
    rows = result["cases"][0]["optimized"]
    assert sorted((r["method"], r["nfe_target"]) for r in rows) == [("ipndm", 2), ("ipndm", 4)]
    assert set(result["by_nfe_optimized"]) == {"2", "4"}
    assert set(result["by_nfe_optimized"]["4"]["methods"]) == {"ipndm"}
    reasons = {(e["method"], e["nfe_target"]): e["reason"] for e in result["optimized_skipped"]}
    assert {k for k, v in reasons.items() if v == cmp.ONE_STEP_REASON} == {("ipndm", 1), ("prk", 4), ("f-pndm", 4)}
    assert reasons[("prk", 1)] == reasons[("prk", 2)] == "one step costs 4 evaluations"
    text = optimized_summary(result)
    assert "left out (no optimised grid at that NFE, so not in the table):" in text
    assert f"  pndmkit ipndm at NFE 1: {cmp.ONE_STEP_REASON}" in text.splitlines()
    md = compare_markdown(result)
    assert f"- pndmkit prk at NFE 4: {cmp.ONE_STEP_REASON}" in md.splitlines()
    # the time spent is said at a precision that shows it (under a second here, not "0 s")
    spent = result["cases"][0]["optimize_seconds"]
    assert 0 < spent < 10 and f"({spent:.1f} s in all)" in md


def test_a_one_step_grid_with_a_free_first_time_is_optimised(capsys):
    """With the first time free one step has that time to search: it runs, and its progress line says "1 step"."""
    logged = []
    result = cmp.compare(cmp.with_options(ONE_STEP, nfes=(1, 4), optimize_first_time="free"), log=logged.append)
    rows = {(r["method"], r["nfe_target"]): r for r in result["cases"][0]["optimized"]}
    assert set(rows) == {("ipndm", 1), ("ipndm", 4), ("prk", 4), ("f-pndm", 4)}
    for key in (("ipndm", 1), ("prk", 4)):
        assert rows[key]["steps"] == 1 and rows[key]["first_time"] == "free" and rows[key]["evaluations"] >= 1
        assert rows[key]["times"][-1] == -1.0 and rows[key]["times"][0] <= 999.0
    assert [e["method"] for e in result["optimized_skipped"]] == ["f-pndm", "prk"]  # at NFE 1: no step fits
    assert any(line.startswith("    ipndm NFE 1 (1 step): ") for line in logged), logged
    assert not any("(1 steps)" in line for line in logged)


def test_the_default_set_names_the_methods_it_drops_because_they_do_not_run(capsys):
    """--quick runs ipndm of the default set only: the others are named in the log and under the optimised table,
    and the built-in column says it holds the default grid only (--quick searches no grid options)."""
    from pndmkit.cli import main

    assert cmp.optimized_left_out(cmp.with_options(cmp.CompareConfig.quick(), optimized_grids=True)) == (
        "unipc-3", "dpm-solver++-3m")
    assert cmp.optimized_left_out(cmp.CompareConfig(optimized_grids=True)) == ()
    assert cmp.optimized_left_out(cmp.CompareConfig(methods=("ddim",), optimized_grids=True)) == ()  # ddim instead
    assert main(["compare", "--quick", "--peers", "--optimized-grids", "--optimize-maxfev", "20",
                 "--optimize-calibration", "8"]) == 0
    text = capsys.readouterr()
    assert f"  not optimising unipc-3, dpm-solver++-3m: {cmp.DEFAULT_LEFT_OUT_REASON}" in text.err.splitlines()
    lines = text.out.splitlines()
    assert f"  pndmkit unipc-3 at NFE 5, 10: {cmp.DEFAULT_LEFT_OUT_REASON}" in lines
    assert f"  pndmkit dpm-solver++-3m at NFE 5, 10: {cmp.DEFAULT_LEFT_OUT_REASON}" in lines
    head = lines.index("optimised grids (apart from the table above; error / error ratios as above):")
    assert "best built-in (default grid only)" in lines[head + 1]


def test_the_saved_optimised_grids_run_through_pndmkit_sample_give_the_saved_error(tmp_path):
    """compare.json's optimized_grids holds each optimised grid (times, first time, schedule name): run through
    pndmkit.sample from the case's samples, each gives the error the table reports, first time fixed or free."""
    import pndmkit
    from pndmkit.cli import main
    from pndmkit.problems import get_problem
    from pndmkit.schedules import get_schedule

    for first in ("fixed", "free"):
        out = tmp_path / first
        assert main([*TINY, "--peers", "--optimized-grids", "ipndm", "--optimize-maxfev", "30",
                     "--optimize-calibration", "8", "--optimize-first-time", first, "--out", str(out)]) == 0
        saved = json.loads((out / "compare.json").read_text())
        grids = saved["optimized_grids"]
        assert [(g["method"], g["nfe_target"]) for g in grids] == [("ipndm", 5), ("ipndm", 10)]
        assert {g["first_time"] for g in grids} == {first} and all(g["noise_time"] == 999.0 for g in grids)
        case = saved["cases"][0]
        assert [g["error"] for g in grids] == [r["error"] for r in case["optimized"]]
        problem, schedule = get_problem(case["problem"]), get_schedule(grids[0]["schedule"])
        s_max = float(schedule.s(schedule.t_start))
        x = cmp._case_samples(problem, case["n"], s_max, saved["config"]["seed"])  # the noise at the top
        ref = cmp._reference(problem, x, s_max, np.array([0.0]))[0.0]  # every grid ends at abar = 1 here
        for g in grids:
            assert g["schedule"] == "discrete-linear" and g["problem"] == "gmm2d"
            assert (g["times"][0] < 999.0) == (first == "free")  # measured: a free first time moves down
            sol = pndmkit.sample(lambda x, t: problem.eps(x, t, schedule), x, schedule=schedule, method=g["method"],
                                 grid=g["times"])
            assert sol.nfe == g["nfe"]
            assert float(np.sqrt(np.mean((sol.x - ref) ** 2))) == pytest.approx(g["error"], rel=1e-6)
        md = (out / "compare.md").read_text()
        assert f"| gmm2d/discrete-linear | ipndm | 5 | {first} | {', '.join(f'{t:.6g}' for t in grids[0]['times'])} |" in md


def test_json_output_carries_the_optimised_grids_and_what_was_left_out(capsys):
    from pndmkit.cli import main

    assert main(["compare", "--quick", "--peers", "--nfe", "1", "5", "--optimized-grids", "--optimize-maxfev", "20",
                 "--optimize-calibration", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(g["method"], g["nfe_target"], len(g["times"])) for g in out["optimized_grids"]] == [("ipndm", 5, 6)]
    assert {(e["method"], e["nfe_target"]) for e in out["optimized_skipped"]} == {
        ("ipndm", 1), ("unipc-3", 1), ("unipc-3", 5), ("dpm-solver++-3m", 1), ("dpm-solver++-3m", 5)}


class _FailsOnMoreThan8(GradientEstimator):
    """DDIM's step that raises on a batch of more than 8 samples: it runs on 8 calibration noises (a grid is
    optimised for it) and breaks down on a case's 16 samples, as a solver that diverges there would."""

    def step(self, x, t, t_next, phi, state):
        e = yield x, t
        if np.ndim(e) > 1 and len(e) > 8:  # not the dry run that counts evaluations
            raise FloatingPointError("broke down on purpose")
        return Step(state, e=e)

    def order(self, phi):
        return 1


@pytest.fixture
def failing_method():
    """The name of a registered method (:class:`_FailsOnMoreThan8`), unregistered after the test."""
    from pndmkit import DDIMTransfer, Integrator, MethodSpec, register_method, unregister_method

    name = "test-fails-on-16"
    register_method(MethodSpec(name, lambda sched: Integrator(_FailsOnMoreThan8(), DDIMTransfer(sched), name), 1,
                               reference="tests/test_compare.py"))
    try:
        yield name
    finally:
        unregister_method(name)


def test_a_failed_run_is_null_in_compare_json_and_json_output_strict_json(tmp_path, capsys, failing_method):
    """An optimised grid whose run on the case's samples breaks down has an infinite error: compare.json and
    --json write it as null (strict JSON, RFC 8259: no Infinity or NaN), with the failure kept beside it."""
    from pndmkit.cli import main

    def strict(text):
        def refuse(constant):
            raise AssertionError(f"{constant} in the output: not strict JSON")

        return json.loads(text, parse_constant=refuse)

    out = tmp_path / "o"
    argv = ["compare", "--problem", "gmm2d", "--schedule", "linear-vp", "--nfe", "3", "--n", "16", "--methods",
            "ddim", failing_method, "--peers", "--no-grids", "--optimized-grids", "ddim", failing_method,
            "--optimize-maxfev", "10", "--optimize-calibration", "8"]
    assert main([*argv, "--out", str(out), "--json"]) == 0
    printed = strict(capsys.readouterr().out)
    saved = strict((out / "compare.json").read_text())
    rows = {r["method"]: r for r in saved["cases"][0]["optimized"]}
    assert rows[failing_method]["error"] is None and rows[failing_method]["sw"] is None
    assert rows[failing_method]["failure"] == "FloatingPointError: broke down on purpose"
    assert rows["ddim"]["error"] > 0  # a finite error stays a number
    grids = {g["method"]: g for g in saved["optimized_grids"]}
    assert grids[failing_method]["error"] is None and grids[failing_method]["calibration_error"] > 0
    assert printed["optimized_grids"] == saved["optimized_grids"]
    assert [(s["method"], s["reason"]) for s in saved["optimized_skipped"]] == [
        (failing_method, "N=3 [optimized] FloatingPointError: broke down on purpose")]
    result = cmp.compare(cmp.CompareConfig(problems=("gmm2d",), schedules=("linear-vp",), nfes=(3,), n=16,
                                           methods=("ddim", failing_method), peers=(), grids=False,
                                           optimized_grids=(failing_method,), optimize_maxfev=10,
                                           optimize_calibration=8))
    assert result["optimized_grids"][0]["error"] == float("inf")  # in memory, the number itself


def test_readme_digits_gmm_512_sample_rows_are_the_json():
    """The README's digits-gmm rows on 512 samples quote the saved runs (rms = interval at every NFE, with their
    95% intervals), and the runs are what the rows say: 512 samples, 256 calibration noises, the first time
    fixed or free."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    nfes = ["5", "6", "8", "10", "15", "20", "50"]
    for name, first in (("compare_auto_digits_gmm_opt_n512", "fixed"), ("compare_auto_digits_gmm_opt_free_n512", "free")):
        run = json.loads((root / "analysis" / "results" / f"{name}.json").read_text())
        assert (run["config"]["n"], run["config"]["auto_calibration"]) == (512, 256)
        assert run["config"]["optimize_first_time"] == first
        rules = [run["by_nfe_auto"][n]["rules"] for n in nfes]
        assert all(r["rms"]["vs_peer"] == r["interval"]["vs_peer"] for r in rules)
        cells = " | ".join(f"{r['rms']['vs_peer']:.2f} [{r['rms']['vs_peer_interval'][0]:.2f}, "
                           f"{r['rms']['vs_peer_interval'][1]:.2f}]" for r in rules)
        assert f"| digits-gmm, n = 512 | first time {first} | {cells} |" in readme, name


def test_readme_fitted_solver_ratios_are_the_json():
    """The README's fitted-solver rows (best optimised / best peer with its 95% interval, NFE 5-50) are
    analysis/results/compare_digits_gmm_fitted_n512.json, compare_digits_gmm_fitted_cal512_n1024.json and
    compare_fitted.json."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    for name, label in (("compare_digits_gmm_fitted_n512", "digits-gmm, n = 512, fitted solvers"),
                        ("compare_digits_gmm_fitted_cal512_n1024",
                         "digits-gmm, n = 1024, fitted solvers on 512 calibration noises"),
                        ("compare_fitted", "mixtures (gmm2d, gmm32d x 2 schedules), fitted solvers")):
        rows = json.loads((root / "analysis" / "results" / f"{name}.json").read_text())["by_nfe_optimized"]
        assert list(rows) == ["5", "6", "8", "10", "15", "20", "50"]
        cells = []
        for row in rows.values():
            low, high = row["vs_peer_interval"]
            assert low <= row["vs_peer"] <= high
            cells.append(f"{row['vs_peer']:.2f} [{low:.2f}, {high:.2f}]")
        assert f"| {label} | {' | '.join(cells)} |" in readme, cells


def test_compare_that_cannot_write_out_prints_its_report_and_names_out(tmp_path, monkeypatch, run_cli):
    """A read-only filesystem at the end: one line naming --out, the file and the reason (exit 2), the report
    printed all the same, no temporary file left."""
    import errno
    import os
    import tempfile

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = tmp_path / "ro"
    code, stdout, err = run_cli([*TINY, "--peers", "--out", str(out)])
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith(f"pndmkit compare: error: --out: cannot write {out / 'compare.json'}: "
                                                   "Read-only file system; the files of --out are not all written")
    assert "NFE" in stdout  # the report
    assert not out.exists()  # the lock, alone in the folder it made, went with it


def test_compare_out_that_is_a_file_names_the_option_not_the_parameter(tmp_path, run_cli):
    """A file in the way of --out: one line in the command line's words (``--out: 'PATH' exists ...``), not the
    Python parameter's (``out='PATH'``), and nothing run."""
    in_the_way = tmp_path / "results.txt"
    in_the_way.write_text("kept")
    code, stdout, err = run_cli([*TINY, "--peers", "--out", str(in_the_way)])
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == (f"pndmkit compare: error: --out: {str(in_the_way)!r} exists and is not a "
                                            "folder")
    assert stdout == "" and in_the_way.read_text() == "kept"
