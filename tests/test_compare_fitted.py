"""Fitted solvers in the head-to-head: iPNDM's grid and step weights fitted on calibration noises, run through the
same harness on the case's samples and reported apart with the optimised grids (``optimized_solvers``)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from pndmkit.errors import UsageError
from pndmkit.schedules import LinearVP
from pndmkit.studies import compare as cmp


def test_a_fitted_solver_judged_elsewhere_starts_on_the_searched_grid_even_with_one_heldout_noise():
    """compare judges a fitted solver on the case's own samples and gives optimize_solver one held-out noise: with
    fallback=False the grid search it starts from keeps its searched grid (it fell back to the built-in grid for
    want of an interval on one noise, and the fit then started there: on linear-vp at NFE 4 from a calibration
    error of 0.090 instead of the searched grid's 0.015)."""
    from pndmkit.studies.solver_opt import optimize_solver

    res = optimize_solver("gmm1d", 4, schedule=LinearVP(), t_end=0.0, calibration=8, heldout=1, first_time="fixed",
                          fallback=False, grid_maxfev=20, maxfev=1)
    grid = res.grid_result
    assert not grid.fell_back and not res.fell_back and res.evaluations == 1
    np.testing.assert_array_equal(grid.grid, grid.searched_grid)
    np.testing.assert_allclose(res.grid, grid.grid, rtol=1e-9, atol=0.0)  # one run: the start itself
    assert res.calibration_error == pytest.approx(grid.calibration_error, rel=1e-9)
    assert all(math.isnan(v) for v in (*res.heldout_interval, *res.builtin_interval))  # one noise: no interval


# -- the fitted solver's rows in the head-to-head ----------------------------------------------------------------
FIT = cmp.CompareConfig(problems=("gmm1d",), schedules=("discrete-linear", "linear-vp"), nfes=(3, 4), n=32,
                        methods=("ddim", "ipndm"), peers=(), grids=True, optimized_grids=("ipndm",),
                        optimized_solvers=True, optimize_maxfev=20, optimize_calibration=8, auto=True,
                        auto_calibration=32)


@pytest.fixture(scope="module")
def fitted_result():
    return cmp.compare(FIT)


@pytest.fixture(scope="module")
def plain_result():
    return cmp.compare(cmp.with_options(FIT, optimized_solvers=False))


def _timeless(rows):
    return [{k: v for k, v in r.items() if k not in ("seconds", "optimize_seconds")} for r in rows]


def _fitted_rows(case):
    return [r for r in case["optimized"] if r["method"] == cmp.FITTED_METHOD]


def test_the_fitted_solver_is_no_registered_method_and_starts_from_ipndm():
    from pndmkit.methods import METHODS
    from pndmkit.studies.solver_opt import BASE_METHOD

    assert cmp.FITTED_METHOD not in METHODS and cmp.FITTED_METHOD not in cmp.compare_methods()
    assert cmp.FITTED_BASE == BASE_METHOD == "ipndm"


def test_fitted_rows_stay_out_of_the_builtin_summaries_the_grids_and_the_automatic_choice(fitted_result, plain_result):
    """optimized_solvers adds the fitted rows and changes nothing else: every built-in row and summary, every
    optimised grid, every automatic choice and its table is what the same comparison gives without it."""
    from pndmkit.studies.reports import auto_case_table

    assert "fitted_solvers" not in plain_result
    for key in ("by_nfe", "by_nfe_shared_grids", "by_nfe_peers_on_pndmkit_grids", "by_nfe_auto", "skipped",
                "optimized_grids", "optimized_skipped"):
        assert fitted_result[key] == plain_result[key], key
    assert auto_case_table(fitted_result) == auto_case_table(plain_result)
    for with_fit, without in zip(fitted_result["cases"], plain_result["cases"]):
        for key in ("best", "best_shared_grids", "runs", "auto"):
            assert _timeless(with_fit[key]) == _timeless(without[key]), key
        assert _timeless(r for r in with_fit["optimized"] if r["method"] != cmp.FITTED_METHOD) == \
            _timeless(without["optimized"])
        assert [(r["nfe_target"], r["option"]) for r in _fitted_rows(with_fit)] == [(3, "optimized"), (4, "optimized")]
        assert cmp.FITTED_METHOD not in {r["method"] for key in ("best", "best_shared_grids", "runs", "auto")
                                         for r in with_fit[key]}
    assert all(g["method"] == "ipndm" for g in fitted_result["optimized_grids"])


def _rerun_error(case, row, seed):
    """The error of the fitted integrator of ``row``'s weights (on its base) on its times, from ``case``'s own
    samples, against the case's reference; and its NFE."""
    from pndmkit.problems import get_problem
    from pndmkit.studies.solver_opt import fitted_integrator

    problem = get_problem(case["problem"])
    schedule = cmp.SCHEDULES[case["schedule"]]()
    s_max = cmp._s(schedule, schedule.t_start)
    x = cmp._case_samples(problem, case["n"], s_max, seed)
    ref = cmp._reference(problem, x, s_max, np.array([row["s_start"], row["s_end"]]))
    sol = fitted_integrator(row["weights"], schedule, base=row["base"]).solve(
        lambda x, t: problem.eps(x, t, schedule), ref[row["s_start"]].copy(), np.array(row["times"]))
    diff = cmp._y(sol.x, row["s_end"]) - cmp._y(ref[row["s_end"]], row["s_end"])
    return float(np.sqrt(np.mean(diff ** 2))), sol.nfe


def test_the_fitted_row_is_scored_against_the_case_reference_and_reruns_to_the_same_error(fitted_result):
    """Its row keeps ipndm's reference levels, costs its NFE, and records what runs it again: the fitted integrator
    of its weights on its times, from the case's own samples, gives its error to 1e-12."""
    saved = {(s["schedule"], s["nfe_target"]): s for s in fitted_result["fitted_solvers"]}
    assert len(saved) == 4
    for case in fitted_result["cases"]:
        schedule = cmp.SCHEDULES[case["schedule"]]()
        builtin = {r["nfe_target"]: r for r in case["best"] if r["method"] == "ipndm"}
        for row in _fitted_rows(case):
            ref_row = builtin[row["nfe_target"]]
            assert (row["s_start"], row["s_end"], row["starts_at_top"]) == (ref_row["s_start"], ref_row["s_end"], True)
            times, weights = np.array(row["times"]), row["weights"]
            assert row["steps"] == row["nfe"] == row["nfe_target"] == len(weights) == times.size - 1
            assert [len(w) for w in weights] == [min(i + 1, 4) for i in range(row["steps"])]
            assert times[0] == schedule.t_start == row["noise_time"] and row["first_time"] == "fixed"
            assert 1 <= row["grid_evaluations"] <= FIT.optimize_maxfev and row["evaluations"] >= 1
            assert row["optimize_seconds"] > 0 and row["calibration_error"] > 0 and row["base"] == "ipndm"
            error, nfe = _rerun_error(case, row, FIT.seed)
            assert nfe == row["nfe"] and error == pytest.approx(row["error"], rel=1e-12, abs=0.0)
            entry = saved[(case["schedule"], row["nfe_target"])]
            assert {k: entry[k] for k in cmp.FITTED_SOLVER_FIELDS[2:]} == {k: row[k] for k in
                                                                            cmp.FITTED_SOLVER_FIELDS[2:]}


def test_the_fitted_solver_enters_the_optimised_summary_against_ipndms_builtin_grids(fitted_result):
    """by_nfe_optimized scores it as it scores the optimised grids: geometric mean over the cases, best of the
    optimised rows, its per-method ratio against ipndm's best built-in grid, with paired intervals."""
    for target, entry in fitted_result["by_nfe_optimized"].items():
        errors = [r["error"] for c in fitted_result["cases"] for r in _fitted_rows(c) if r["nfe_target"] == int(target)]
        mine = entry["methods"][cmp.FITTED_METHOD]
        assert mine["optimized"] == pytest.approx(float(np.exp(np.mean(np.log(errors)))), rel=1e-12)
        assert mine["builtin_method"] == "ipndm" and entry["methods"]["ipndm"]["builtin_method"] == "ipndm"
        assert mine["builtin"] == entry["methods"]["ipndm"]["builtin"]
        assert mine["ratio"] == mine["optimized"] / mine["builtin"]
        assert mine["ratio_interval"][0] <= mine["ratio"] <= mine["ratio_interval"][1]
        assert entry["best_optimized"]["error"] == min(v["optimized"] for v in entry["methods"].values())
        assert entry["best_builtin"] == fitted_result["by_nfe"][target]["best_pndmkit"]
        assert entry["vs_builtin_interval"][0] <= entry["vs_builtin"] <= entry["vs_builtin_interval"][1]
    # measured: the fitted solver is the best optimised row at NFE 3 here (0.3 of ipndm's best built-in grid)
    assert fitted_result["by_nfe_optimized"]["3"]["best_optimized"]["method"] == cmp.FITTED_METHOD


# -- fitted solvers on either base ------------------------------------------------------------------------------
BOTH = cmp.with_options(FIT, schedules=("discrete-linear",), nfes=(3,), methods=("ddim", "ipndm", "ipndm-x0"),
                        optimized_grids=("ipndm-x0",), optimized_solvers=("ipndm", "ipndm-x0"), auto=False)


@pytest.fixture(scope="module")
def both_result():
    logged = []
    return cmp.compare(BOTH, log=logged.append), logged


def test_a_fitted_solver_per_base_is_named_by_it_and_set_against_its_own_base(both_result):
    """optimized_solvers=("ipndm", "ipndm-x0"): one fitted row per base, named by base, each rerunning to its error
    on its own base's transfer and set against its base's own best built-in grid; ipndm-x0's fit starts from the
    optimised ipndm-x0 grid's search, run once for both."""
    from pndmkit.studies.reports import compare_markdown, optimized_summary

    result, logged = both_result
    assert cmp.FITTED_METHODS == {"ipndm-fitted": "ipndm", "ipndm-x0-fitted": "ipndm-x0"}
    assert cmp.optimized_solver_bases(BOTH) == ("ipndm", "ipndm-x0")
    (case,) = result["cases"]
    fitted = {r["method"]: r for r in case["optimized"] if r["method"] in cmp.FITTED_METHODS}
    assert sorted(fitted) == ["ipndm-fitted", "ipndm-x0-fitted"]
    assert fitted["ipndm-fitted"]["weights"] != fitted["ipndm-x0-fitted"]["weights"]
    entry = result["by_nfe_optimized"]["3"]["methods"]
    for name, base in cmp.FITTED_METHODS.items():
        row = fitted[name]
        assert row["base"] == base and entry[name]["builtin_method"] == base
        builtin = [r for r in case["best"] if r["method"] == base and r["nfe_target"] == 3]
        # (one case: the geometric means over the cases are its errors, to rounding)
        assert entry[name]["builtin"] == pytest.approx(builtin[0]["error"], rel=1e-12)
        assert entry[name]["optimized"] == pytest.approx(row["error"], rel=1e-12)
        error, nfe = _rerun_error(case, row, BOTH.seed)
        assert nfe == 3 and error == pytest.approx(row["error"], rel=1e-12, abs=0.0)
        # on the other base the same weights give another error: the base ran
        other, _ = _rerun_error(case, {**row, "base": "ipndm" if base == "ipndm-x0" else "ipndm-x0"}, BOTH.seed)
        assert other != pytest.approx(row["error"], rel=1e-6)
    assert [(e["method"], e["base"]) for e in result["fitted_solvers"]] == [("ipndm-fitted", "ipndm"),
                                                                          ("ipndm-x0-fitted", "ipndm-x0")]
    grid_row = next(r for r in case["optimized"] if r["method"] == "ipndm-x0")
    assert fitted["ipndm-x0-fitted"]["grid_evaluations"] == grid_row["evaluations"]
    text = "\n".join(logged)
    assert "    ipndm-x0-fitted NFE 3 (3 steps): 20 grid (the optimised ipndm-x0 grid's search) and " in text
    assert "  fitting ipndm-x0's grid and step weights (ipndm-x0-fitted): " in text
    summary = optimized_summary(result)
    assert "ipndm-fitted (vs ipndm) " in summary and "ipndm-x0-fitted (vs ipndm-x0) " in summary
    assert "ipndm-x0-fitted: the same fit on iPNDM's data-prediction form" in summary
    md = compare_markdown(result)
    assert ("The fitted solvers ipndm-fitted and ipndm-x0-fitted are not methods with an order: each is its base "
            "method's grid and per-step weights") in md
    assert "the optimised ipndm-x0 grids' own, run once for both" in md
    assert "each is set against its base method's own best built-in grid" in md
    times = fitted["ipndm-x0-fitted"]["times"]
    assert f"| gmm1d/discrete-linear | ipndm-x0-fitted | 3 | fixed | {', '.join(f'{t:.6g}' for t in times)} | " in md


def test_the_command_line_takes_base_names(tmp_path, capsys):
    from pndmkit.cli import main

    out = tmp_path / "o"
    argv = ["compare", "--problem", "gmm1d", "--schedule", "linear-vp", "--nfe", "3", "--n", "16", "--methods",
            "ddim", "ipndm-x0", "--no-grids", "--peers", "--optimized-solvers", "ipndm-x0", "--optimize-maxfev", "20",
            "--optimize-calibration", "8", "--optimize-solver-maxfev", "5"]
    assert main([*argv, "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines.index("fitted solvers (apart from the table above; error / error ratios as above):")
    assert lines[head + 2].split()[:3] == ["3", "ipndm-x0-fitted", "(3)"]
    saved = json.loads((out / "compare.json").read_text())
    assert saved["config"]["optimized_solvers"] == ["ipndm-x0"]
    (fitted,) = saved["fitted_solvers"]
    assert (fitted["method"], fitted["base"], fitted["evaluations"]) == ("ipndm-x0-fitted", "ipndm-x0", 5)
    with (out / "compare_runs.csv").open(newline="") as fh:
        assert [r["method"] for r in csv.DictReader(fh) if r["option"] == "optimized"] == ["ipndm-x0-fitted"]


@pytest.mark.parametrize("argv, expected", [
    (["--optimized-solvers", "ipndm-v"],
     "--optimized-solvers: unknown base 'ipndm-v'; a fitted solver is built on one of ipndm, ipndm-x0"),
    (["--optimized-solvers", "ipndm", "ipndm"], "--optimized-solvers: optimized_solvers names 'ipndm' more than once"),
    (["--methods", "ddim", "ipndm", "--optimized-solvers", "ipndm-x0"],
     "--optimized-solvers/--methods: optimized_solvers fits ipndm-x0's grid and step weights, which is not among "
     "methods (ddim, ipndm)"),
])
def test_bad_base_names_are_one_usage_line(argv, expected, usage_error):
    err = usage_error(["compare", "--quick", "--peers", *argv])
    assert err.startswith(f"pndmkit compare: error: {expected}"), err


def test_ipndms_grid_search_runs_once_for_its_optimised_grid_and_the_fitted_solver(monkeypatch):
    """With ipndm among optimized_grids the fitted solver starts from that search (grid_result=) instead of running
    it again on the same noises: one search per case and NFE, not two, and every row is what the two searches
    gave, bit for bit."""
    from pndmkit.studies import grid_opt, solver_opt

    cfg = cmp.with_options(FIT, schedules=("linear-vp",), auto=False, optimize_first_time="free")
    searches = []
    search = grid_opt.optimize

    def counted(method, problem, nfe, **kwargs):
        searches.append((method, nfe))
        return search(method, problem, nfe, **kwargs)

    monkeypatch.setattr(grid_opt, "optimize", counted)  # compare's optimised grids
    monkeypatch.setattr(solver_opt, "optimize", counted)  # optimize_solver's own search
    logged = []
    once = cmp.compare(cfg, log=logged.append)
    assert searches == [("ipndm", 3), ("ipndm", 4)]
    assert "    ipndm-fitted NFE 3 (3 steps): 20 grid (the optimised ipndm grid's search) and " in "\n".join(logged)
    searches.clear()
    plan = cmp._plan_fitted
    monkeypatch.setattr(cmp, "_plan_fitted", lambda *args: plan(*args[:4]))  # no grid results: a search of its own
    twice = cmp.compare(cfg)
    assert searches == [("ipndm", 3), ("ipndm", 4), ("ipndm", 3), ("ipndm", 4)]
    (case_once,), (case_twice,) = once["cases"], twice["cases"]
    assert _timeless(case_once["optimized"]) == _timeless(case_twice["optimized"])  # every float equal
    assert once["fitted_solvers"] == twice["fitted_solvers"] and once["optimized_grids"] == twice["optimized_grids"]
    assert [r["grid_evaluations"] for r in _fitted_rows(case_once)] == [20, 20]
    assert any(r["times"][0] < r["noise_time"] for r in _fitted_rows(case_once))  # a free first time moved
    from pndmkit.studies.reports import compare_markdown

    assert ("(40 of the grid searches, the optimised ipndm grids' own, run once for both, "
            in compare_markdown(once))


def test_fitted_and_grid_rows_report_first_time_alike_in_every_file(tmp_path):
    """first_time is, on an optimised grid's row and a fitted solver's alike, the option the search ran with, in
    compare.json, compare_runs.csv and compare.md; the first time kept is times[0] (measured here: with "free",
    both kept the top at NFE 3 and moved below it at NFE 4)."""
    from pndmkit.studies.reports import write_compare_results

    cfg = cmp.with_options(FIT, problems=("gmm2d",), schedules=("linear-vp",), auto=False, grids=False,
                           optimize_first_time="free", optimize_maxfev=30, optimize_calibration=16)
    write_compare_results(cmp.compare(cfg), tmp_path)
    saved = json.loads((tmp_path / "compare.json").read_text())
    (case,) = saved["cases"]
    kept = {(r["method"], r["nfe_target"]): (r["first_time"], r["times"][0] < r["noise_time"])
            for r in case["optimized"]}
    assert kept == {("ipndm", 3): ("free", False), (cmp.FITTED_METHOD, 3): ("free", False),
                    ("ipndm", 4): ("free", True), (cmp.FITTED_METHOD, 4): ("free", True)}
    listed = [(e["method"], e["nfe_target"], e["first_time"])
              for e in saved["optimized_grids"] + saved["fitted_solvers"]]
    assert listed == [("ipndm", 3, "free"), ("ipndm", 4, "free"), (cmp.FITTED_METHOD, 3, "free"),
                      (cmp.FITTED_METHOD, 4, "free")]
    with (tmp_path / "compare_runs.csv").open(newline="") as fh:
        assert {(r["method"], r["first_time"]) for r in csv.DictReader(fh) if r["option"] == "optimized"} == {
            ("ipndm", "free"), (cmp.FITTED_METHOD, "free")}
    md = (tmp_path / "compare.md").read_text()
    for entry in saved["optimized_grids"]:
        assert f"| gmm2d/linear-vp | ipndm | {entry['nfe_target']} | free | {entry['times'][0]:.6g}, " in md
    for entry in saved["fitted_solvers"]:
        assert f"| gmm2d/linear-vp | ipndm-fitted | {entry['nfe_target']} | free | {entry['times'][0]:.6g}, " in md


def test_fitted_solvers_run_alone_and_the_report_says_what_they_are():
    from pndmkit.studies.reports import compare_markdown, optimized_summary

    cfg = cmp.with_options(FIT, schedules=("discrete-linear",), nfes=(3,), optimized_grids=False, auto=False)
    logged = []
    result = cmp.compare(cfg, log=logged.append)
    assert result["optimized_grids"] == [] and [f["method"] for f in result["fitted_solvers"]] == ["ipndm-fitted"]
    assert set(result["by_nfe_optimized"]["3"]["methods"]) == {cmp.FITTED_METHOD}
    (row,) = result["cases"][0]["optimized"]
    assert any(line.startswith("    ipndm-fitted NFE 3 (3 steps): ") for line in logged)
    assert "  solvers fitted in " in "\n".join(logged)
    text = optimized_summary(result)
    assert "ipndm-fitted (vs ipndm) " in text and "not a method with an order" in text
    md = compare_markdown(result)
    assert "## Fitted solvers (reported apart: never in the tables above)" in md
    assert "pndmkit.studies.grid_opt.optimize per case" not in md  # no grid was optimised
    runs = row["evaluations"] + row["grid_evaluations"]
    assert (f"{runs} calibration runs in all ({row['grid_evaluations']} of the grid searches, "
            f"{row['evaluations']} of the weight searches;") in md
    assert "not a method with an order: it is iPNDM's grid and per-step weights" in md
    times = ", ".join(f"{t:.6g}" for t in row["times"])
    assert f"| gmm1d/discrete-linear | ipndm-fitted | 3 | fixed | {times} | " in md


def test_bad_input_is_refused_naming_the_option():
    for changes, params, message in [
        ({"optimized_solvers": "yes"}, ("optimized_solvers",),
         "optimized_solvers must be True, False or a tuple of base methods \\(ipndm, ipndm-x0\\), got 'yes'"),
        ({"optimized_solvers": True, "methods": ("ddim",)}, ("optimized_solvers", "methods"),
         "optimized_solvers fits ipndm's grid and step weights, which is not among methods \\(ddim\\)"),
        ({"optimized_solvers": ("ipndm-x0",), "methods": ("ddim", "ipndm")}, ("optimized_solvers", "methods"),
         "optimized_solvers fits ipndm-x0's grid and step weights, which is not among methods \\(ddim, ipndm\\): "
         "a fitted solver is reported against ipndm-x0's built-in grids, so add ipndm-x0 to methods"),
        ({"optimized_solvers": ("ipndm-v",)}, ("optimized_solvers",),
         "unknown base 'ipndm-v' in optimized_solvers; a fitted solver is built on one of ipndm, ipndm-x0"),
        ({"optimized_solvers": ("ipndm", "ipndm")}, ("optimized_solvers",),
         "optimized_solvers names 'ipndm' more than once"),
        ({"optimized_solvers": ("ipndm", 3)}, ("optimized_solvers",), "must be True, False or a tuple of base"),
    ]:
        with pytest.raises(UsageError, match=message) as info:
            cmp.CompareConfig(**changes)
        assert info.value.params == params
    # (a network head-to-head refuses the option: tests/test_compare_model.py)


def test_the_command_line_round_trips_the_option_and_writes_the_fitted_solvers(tmp_path, capsys):
    from pndmkit.cli import main

    out = tmp_path / "o"
    argv = ["compare", "--problem", "gmm1d", "--schedule", "linear-vp", "--nfe", "3", "--n", "16", "--methods",
            "ddim", "ipndm", "--no-grids", "--peers", "--optimized-solvers", "--optimize-maxfev", "20",
            "--optimize-calibration", "8"]
    assert main([*argv, "--out", str(out)]) == 0
    text = capsys.readouterr()
    lines = text.out.splitlines()
    head = lines.index("fitted solvers (apart from the table above; error / error ratios as above):")
    assert lines[head + 2].split()[:3] == ["3", "ipndm-fitted", "(3)"]
    def refuse(constant):
        raise AssertionError(f"{constant} in compare.json: no strict JSON")

    saved = json.loads((out / "compare.json").read_text(), parse_constant=refuse)
    assert saved["config"]["optimized_solvers"] is True and saved["config"]["optimized_grids"] is False
    assert (saved["config"]["optimize_maxfev"], saved["config"]["optimize_calibration"]) == (20, 8)
    (fitted,) = saved["fitted_solvers"]
    (row,) = saved["cases"][0]["optimized"]
    assert fitted["weights"] == row["weights"] and fitted["times"] == row["times"]
    with (out / "compare_runs.csv").open(newline="") as fh:
        (opt,) = [r for r in csv.DictReader(fh) if r["option"] == "optimized"]
    assert opt["method"] == "ipndm-fitted" and [float(t) for t in opt["times"].split()] == row["times"]
    assert [[float(w) for w in r.split()] for r in opt["weights"].split(";")] == row["weights"]  # bit for bit
    assert main([*argv, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["fitted_solvers"] == saved["fitted_solvers"] and printed["optimized_grids"] == []


def test_solver_maxfev_bounds_the_weight_search_and_is_refused_alone(tmp_path, capsys):
    from pndmkit.cli import main

    argv = ["compare", "--problem", "gmm1d", "--schedule", "linear-vp", "--nfe", "3", "--n", "16", "--methods",
            "ddim", "ipndm", "--no-grids", "--peers", "--optimize-maxfev", "20", "--optimize-calibration", "8"]
    assert main([*argv, "--optimized-solvers", "--optimize-solver-maxfev", "7", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["config"]["optimize_solver_maxfev"] == 7
    (fitted,) = printed["fitted_solvers"]
    assert fitted["evaluations"] == 7
    for extra in ([], ["--optimized-grids"]):
        with pytest.raises(SystemExit) as info:
            main([*argv, *extra, "--optimize-solver-maxfev", "7"])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert "--optimize-solver-maxfev tunes --optimized-solvers, which is not given" in err
    with pytest.raises(UsageError, match="optimize_solver_maxfev must be an integer >= 1"):
        cmp.CompareConfig(optimized_solvers=True, optimize_solver_maxfev=0)


def test_budgets_above_the_searches_bound_are_refused_up_front(usage_error, monkeypatch):
    """The searches take at most grid_opt.MAX_NOISES runs: a larger budget is refused by CompareConfig, naming its
    field, and by the command line naming the option, before any fit starts."""
    from pndmkit.studies import solver_opt
    from pndmkit.studies.grid_opt import MAX_NOISES

    def no_fit(*args, **kwargs):
        raise AssertionError("a fit started")

    monkeypatch.setattr(solver_opt, "optimize_solver", no_fit)
    for name in ("optimize_maxfev", "optimize_solver_maxfev"):
        assert getattr(cmp.CompareConfig(optimized_solvers=True, **{name: MAX_NOISES}), name) == MAX_NOISES
        with pytest.raises(UsageError) as info:
            cmp.CompareConfig(optimized_solvers=True, **{name: MAX_NOISES + 1})
        assert info.value.params == (name,) and f"{name} must be at most {MAX_NOISES}, got {MAX_NOISES + 1}" in str(
            info.value)
    argv = ["compare", "--problem", "gmm1d", "--schedule", "linear-vp", "--nfe", "3", "--n", "16", "--methods",
            "ddim", "ipndm", "--no-grids", "--peers", "--optimized-solvers"]
    err = usage_error([*argv, "--optimize-solver-maxfev", "1000001"])
    assert err.startswith("pndmkit compare: error: --optimize-solver-maxfev: optimize_solver_maxfev must be at most "
                          "1000000, got 1000001"), err
    err = usage_error([*argv, "--optimize-maxfev", "2000000"])
    assert err.startswith("pndmkit compare: error: --optimize-maxfev: optimize_maxfev must be at most 1000000"), err



@pytest.mark.parametrize("solver_maxfev, budget", [
    (None, "at most 360 runs at NFE 3, 720 runs at NFE 5 (40 x (P + 1) for P parameters, at least 200)"),
    (7, "at most 7 runs")])
def test_the_plan_line_states_the_weight_search_s_budget(monkeypatch, solver_maxfev, budget):
    """The weight search's bound in the log: the one given, else its default (default_maxfev) at each NFE."""
    from pndmkit.studies import solver_opt

    class Planned(Exception):
        pass

    def no_fit(*args, **kwargs):
        raise Planned

    monkeypatch.setattr(solver_opt, "optimize_solver", no_fit)
    assert [solver_opt.default_maxfev(n, "fixed") for n in (3, 5)] == [360, 720]
    cfg = cmp.CompareConfig(problems=("gmm1d",), schedules=("linear-vp",), nfes=(3, 5), methods=("ipndm",),
                            optimized_solvers=True, optimize_maxfev=5, optimize_calibration=8,
                            optimize_solver_maxfev=solver_maxfev)
    lines = []
    with pytest.raises(Planned):
        cmp._plan_fitted("gmm1d", LinearVP(), cfg, lines.append)
    assert lines == [f"  fitting ipndm's grid and step weights (ipndm-fitted): its grid search at most 5 runs, then "
                     f"the weight search, {budget}, on 8 calibration noises per NFE, first time fixed"]
