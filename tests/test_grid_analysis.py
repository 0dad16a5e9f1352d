"""The grid studies of analysis/ (global search bound, rechecks) and the README's digits table against their JSON."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis import grid_bound  # noqa: E402
from pndmkit.methods import get_method  # noqa: E402
from pndmkit.studies import grid_opt  # noqa: E402
from pndmkit.studies.targets import StudyTarget  # noqa: E402

RESULTS = ROOT / "analysis" / "results"


def test_global_search_on_a_mixture_keeps_the_ends_and_never_ends_above_its_start():
    cal = StudyTarget.resolve("gmm2d").study(0, 6)
    held = StudyTarget.resolve("gmm2d").study(6, 8)
    saved = []
    row = grid_bound.search(cal, held, "ipndm", 5, popsize=2, generations=2, bound=1.0, polish=5, seed=0,
                            save=saved.append)
    g = np.asarray(row["grid"])
    assert g.size == 6 and g[0] == cal.t_start and g[-1] == cal.t_end and np.all(np.diff(g) < 0)
    # the search starts from (and keeps) the best built-in grid on the calibration noises
    assert row["calibration_error"] <= min(row["calibration_builtin"].values())
    assert row["calibration_reduction"] == pytest.approx(
        1 - row["calibration_error"] / row["calibration_builtin"][row["start_kind"]])
    # the reported errors are those of the reported grid
    spec = get_method("ipndm")
    assert grid_opt.rms_error(cal, spec, g) == pytest.approx(row["calibration_error"], rel=1e-12)
    assert grid_opt.rms_error(held, spec, g) == pytest.approx(row["heldout_error"], rel=1e-12)
    # one save per generation, then the final one
    assert len(saved) == 3 and saved[-1]["stage"].endswith("Nelder-Mead") and saved[-1] == row
    assert "free_start" not in row["settings"]  # the default keeps the first time (and its rows) as they were


def test_free_start_family_moves_only_the_first_time_within_its_bounds():
    cal = StudyTarget.resolve("gmm2d").study(0, 6)
    family = grid_opt.GridFamily(grid_opt.builtin_grids(cal, 5, ["quadratic"])["quadratic"], 4)
    free = grid_opt.FreeFirstTime(family, 999.0)
    assert free.size == family.size + 1 == 5
    theta = np.array([0.3, -0.2, 0.1, 0.05])
    g = family.grid(theta)
    assert np.array_equal(free.grid(np.append(theta, 0.0)), g)  # f = 0: the family grid, first time t_start
    moved = free.grid(np.append(theta, 0.25))
    assert np.array_equal(moved[1:], g[1:]) and moved[0] == g[0] - 0.25 * (g[0] - g[1])
    assert np.array_equal(free.grid(np.append(theta, -3.0)), g)  # clipped: never above t_start
    assert free.grid(np.append(theta, 7.0))[0] == g[1]  # clipped to f = 1: a repeated time, which the search rejects


def test_global_search_with_a_free_start_moves_the_first_time_below_the_start_and_keeps_the_end():
    cal = StudyTarget.resolve("gmm2d").study(0, 6)
    held = StudyTarget.resolve("gmm2d").study(6, 8)
    row = grid_bound.search(cal, held, "ipndm", 5, popsize=2, generations=2, bound=1.0, polish=5, seed=0,
                            save=lambda r: None, free_start=True)
    g = np.asarray(row["grid"])
    assert row["settings"]["free_start"] is True
    assert g.size == 6 and g[-1] == cal.t_end and np.all(np.diff(g) < 0)
    assert g[1] < g[0] < cal.t_start - 100  # searched: this seeded search starts the grid near t = 640
    # its errors are those of the grid run from the noise taken as the state at g[0], against the flow from t_start
    spec = get_method("ipndm")
    assert grid_opt.rms_error(cal, spec, g) == pytest.approx(row["calibration_error"], rel=1e-12)
    assert grid_opt.rms_error(held, spec, g) == pytest.approx(row["heldout_error"], rel=1e-12)
    assert row["calibration_error"] <= min(row["calibration_builtin"].values())


def _row(readme: str, nfe: int) -> str:
    found = [line for line in readme.splitlines() if re.match(rf"\| {nfe} \| unipc-2", line)]
    assert len(found) == 1, f"one README row for NFE {nfe} in the digits grid table, got {found}"
    return found[0]


def test_readme_digits_grid_table_is_the_json():
    readme = (ROOT / "README.md").read_text()
    direct = json.loads((RESULTS / "grid_opt_digits.json").read_text())["by_nfe"]
    for nfe, row in direct.items():
        line = _row(readme, int(nfe))
        d, t = row["direct"], row["transfer"]
        low, high = d["heldout_interval"]
        for text in (f"{row['baseline_error']:.4f}", f"{d['heldout_error']:.4f} (-{100 * d['reduction']:.0f}%)",
                     f"{100 * low:.0f} to {100 * high:.0f}%", f"| {100 * d['median_reduction']:.0f}% |",
                     f"+{-100 * t['reduction']:.0f}%"):
            assert text in line, (nfe, text, line)


def test_readme_recheck_table_is_the_json():
    readme = (ROOT / "README.md").read_text()
    direct = json.loads((RESULTS / "grid_opt_digits.json").read_text())["by_nfe"]
    for nfe, row in direct.items():
        found = [line for line in readme.splitlines() if line.startswith(f"| {nfe} | 96-287 |")]
        assert len(found) == 1, found
        d, t = row["recheck"]["192"]["direct"], row["recheck"]["192"]["transfer"]
        low, high = d["reduction_interval"]
        for text in (f"| {d['baseline_kind']} | {d['baseline_error']:.4f} |",
                     f"{d['error']:.4f} (-{100 * d['reduction']:.0f}%)", f"{100 * low:.0f} to {100 * high:.0f}%",
                     f"{t['error']:.3f} (+{-100 * t['reduction']:.0f}%)"):
            assert text in found[0], (nfe, text, found[0])


def test_readme_cuts_on_the_new_noises_alone_follow_from_the_two_tables():
    """The squared error over 96-287 is the mean of those over 96-191 and 192-287 (96 noises each)."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    cuts, ref = [], 0.0
    for row in json.loads((RESULTS / "grid_opt_digits.json").read_text())["by_nfe"].values():
        first, both = row["direct"], row["recheck"]["192"]["direct"]
        new = lambda a, b: np.sqrt(2 * b ** 2 - a ** 2)  # noqa: E731
        base = min(new(first["builtin_errors"][k], both["builtin_errors"][k]) for k in both["builtin_errors"])
        cuts.append(f"{100 * (1 - new(first['heldout_error'], both['error']) / base):.0f}")
        ref = max(ref, both["reference_error"])
    assert f"about {' / '.join(cuts)}% at NFE 5 / 6 / 8 / 10" in readme
    assert f"reference error <= {ref:.1e}".replace("e-06", "e-6") in readme


def test_readme_global_search_numbers_are_the_json():
    readme = " ".join((ROOT / "README.md").read_text().split())
    bound = json.loads((RESULTS / "grid_bound_digits.json").read_text())["by_nfe"]
    for nfe, row in bound.items():
        assert row["stage"].endswith("Nelder-Mead"), f"NFE {nfe}: the search did not finish ({row['stage']})"
        text = (f"NFE {nfe}: {100 * row['calibration_reduction']:.0f}% in sample, "
                f"{100 * row['heldout_reduction']:.0f}% held-out")
        assert text in readme, text


def test_readme_noise_count_table_is_the_json():
    readme = (ROOT / "README.md").read_text()
    data = json.loads((RESULTS / "grid_opt_defaults.json").read_text())
    assert [(r["calibration"], r["heldout"], r["first_time"]) for r in data["rows"] if r["default"]] == [
        (2048, 2048, "free"), (2048, 2048, "fixed")]
    for r in data["rows"]:
        low, high = r["heldout_interval"]
        assert (r["first"] == 999.0) == (r["first_time"] == "fixed") and r["first"] <= 999.0
        label = f"{r['calibration']} / {r['heldout']}{' (the default)' if r['default'] and r['first_time'] == 'free' else ''} | {r['first_time']}"
        line = (f"| {r['heldout_error']:.2e} | {r['baseline_error']:.2e} | {100 * r['reduction']:.0f}% | "
                f"{100 * low:.0f}% to {100 * high:.0f}% | "
                f"{'the ' + r['baseline_kind'] + ' grid' if r['fell_back'] else 'the searched grid'} |")
        found = [ln for ln in readme.splitlines() if ln.startswith(f"| {label} ") and ln.endswith(line)]
        assert len(found) == 1, f"one README row for {label} noises ending {line!r}"
        assert r["fell_back"] == (low <= 0)  # the rule: the interval must lie above 0
    seeds = data["other_seeds"]
    assert (f"seeds 1 and 2 of `gmm32d(8, 4)`: {100 * seeds['1']['reduction']:.0f}% and "
            f"{100 * seeds['2']['reduction']:.0f}% on 1024 / 1024") in " ".join(readme.split())


def test_readme_per_case_compare_ratios_are_the_json():
    readme = (ROOT / "README.md").read_text()
    data = json.loads((RESULTS / "compare_optimized.json").read_text())
    for case in data["cases"]:
        nfes = sorted({r["nfe_target"] for r in case["best"]})
        built, opt = [], []
        for nfe in nfes:
            mine = min(r["error"] for r in case["best"] if r["nfe_target"] == nfe and r["side"] == "pndmkit")
            peer = min(r["error"] for r in case["best"] if r["nfe_target"] == nfe and r["side"] != "pndmkit"
                       and "pndmkit-grid" not in r["method"])
            built.append(mine / peer)
            opt.append(min(r["error"] for r in case["optimized"] if r["nfe_target"] == nfe) / peer)
        for label, values in (("built-in", built), ("optimised", opt)):
            row = f"| {case['problem']}, {case['schedule']} | {label} | " + " | ".join(f"{v:.2f}" for v in values)
            assert row + " |" in readme, row


def test_readme_digits_gmm_compare_ratios_are_the_json():
    readme = " ".join((ROOT / "README.md").read_text().split())
    data = json.loads((RESULTS / "compare_digits_gmm" / "compare.json").read_text())
    assert data["config"]["problems"] == ["digits-gmm"]
    ratios = " / ".join(f"{data['by_nfe'][k]['ratio']:.2f}" for k in ("5", "6", "8", "10", "15", "20", "50"))
    assert f"NFE 5 / 6 / 8 / 10 / 15 / 20 / 50 is {ratios}" in readme


def test_ceiling_study_judges_as_evaluate_does_and_its_blocks_are_the_cuts_of_each_block():
    from analysis import grid_opt_ceiling
    from pndmkit.problems.builtin import gmm32d

    mixture = gmm32d(dim=8, n_components=4)
    target = StudyTarget.resolve(mixture)
    grid = np.array([999.0, 590.0, 312.0, 147.0, 57.0, 13.0, -1.0])
    both = grid_opt_ceiling.judge(target.study(16, 512), grid)
    same = grid_opt.evaluate("ipndm", mixture, grid, calibration=16, heldout=512)
    assert both["samples"] == 512 and both["baseline_kind"] == same["baseline_kind"] == "quadratic"
    for key, other in (("error", "error"), ("baseline_error", "baseline_error"), ("reduction", "reduction")):
        assert both[key] == pytest.approx(same[other], rel=1e-12)
    assert both["reduction_interval"] == pytest.approx(list(same["reduction_interval"]), rel=1e-12)
    halves = grid_opt_ceiling.blocks(target.study(16, 512), grid)
    assert len(halves) == 2
    for i, cut in enumerate(halves):
        assert cut == pytest.approx(grid_opt_ceiling.judge(target.study(16 + 256 * i, 256), grid)["reduction"],
                                    rel=1e-12)


def test_readme_ceiling_table_is_the_json_and_the_in_sample_search_bounds_every_grid_judged_there():
    readme = " ".join((ROOT / "README.md").read_text().split())
    data = json.loads((RESULTS / "grid_opt_ceiling.json").read_text())
    ceiling, bound, defaults = data["ceiling"], data["in_sample_on_heldout"], data["defaults"]
    fixed, free_bound = data["defaults_fixed"], data["free_start"]["in_sample_on_heldout"]
    assert data["fit"] == [0, 4096] and data["heldout"] == [4096, 8192] and data["third"] == [8192, 12288]
    assert ceiling["stage"].endswith("Nelder-Mead") and bound["stage"].endswith("Nelder-Mead")
    assert (defaults["first_time"], fixed["first_time"]) == ("free", "fixed")
    assert defaults["searched_grid"][0] < 999.0 == fixed["searched_grid"][0]
    assert (defaults["calibration"], defaults["heldout"]) == (fixed["calibration"], fixed["heldout"]) == (2048, 2048)
    # the search fitted on the held-out noises is the best grid seen there, hence a bound on the others: with the
    # first time at 999 on the fixed-first-time grids, with it free on every grid
    assert ceiling["judged"]["reduction"] == pytest.approx(ceiling["heldout_reduction"], rel=1e-12)
    assert bound["calibration_reduction"] >= max(ceiling["judged"]["reduction"], fixed["judged"]["reduction"])
    assert free_bound["calibration_reduction"] >= max(bound["calibration_reduction"], defaults["judged"]["reduction"])
    assert bound["calibration_reduction"] < 0.30  # so the README's "30% lies above the ceiling" (first time fixed)
    assert defaults["judged"]["reduction"] > 0.30 and defaults["reported"]["reduction"] > 0.30  # "met by the defaults"
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    interval = lambda r: f"{pct(r[0])} to {pct(r[1])}"  # noqa: E731
    rows = [
        f"| noises 0-4095 | {pct(ceiling['judged']['reduction'])} on 4096-8191 | "
        f"{interval(ceiling['judged']['reduction_interval'])} |",
        f"| noises 4096-8191 | {pct(bound['calibration_reduction'])} there (in sample), "
        f"{pct(bound['judged_third']['reduction'])} on 8192-12287 | "
        f"{interval(bound['judged_third']['reduction_interval'])} (8192-12287) |",
        *(f"| noises 0-2047 | {pct(d['reported']['reduction'])} on 2048-4095 (reported), "
          f"{pct(d['judged']['reduction'])} on 4096-8191 | {interval(d['judged']['reduction_interval'])} "
          f"(4096-8191) |" for d in (defaults, fixed))]
    for row in rows:
        assert row in readme, row
    assert (f"fitted in sample the search cuts {pct(ceiling['calibration_reduction'])} on noises 0-4095 and "
            f"{pct(bound['calibration_reduction'])} on 4096-8191") in readme
    assert (f"report {pct(defaults['reported']['reduction'])} ({interval(defaults['reported']['reduction_interval'])})"
            f" on their own 2048 held-out noises") in readme
    assert f"with the first time fixed they report {pct(fixed['reported']['reduction'])} where 4096 noises show " \
           f"{pct(fixed['judged']['reduction'])}" in readme
    assert f"The defaults reach {100 * defaults['judged']['reduction']:.1f} of those " \
           f"{100 * free_bound['calibration_reduction']:.1f} points" in readme
    assert f"{defaults['searched_grid'][0]:.0f} in the defaults'" in readme
    for name in ("defaults", "defaults_fixed", "ceiling"):
        v = data["blocks_of_256"][name]
        assert len(v) == 16
        assert f"{100 * min(v):.0f}% to {100 * max(v):.0f}% (median {100 * np.median(v):.0f}%)" in readme, name
    assert (f"`python -m analysis.grid_opt_ceiling --free-start`, about {round(data['cpu_seconds'] / 60)} CPU-minutes "
            f"and {round(data['free_start']['cpu_seconds'] / 60)} more for the free first time") in readme
    kinds = [ceiling["start_kind"], bound["start_kind"], ceiling["judged"]["baseline_kind"],
             bound["judged_third"]["baseline_kind"]] + [
        d[k] if k == "start_kind" else d[k]["baseline_kind"] for d in (defaults, fixed)
        for k in ("start_kind", "reported", "judged")]
    assert set(kinds) == {"quadratic"}
    held = ceiling["heldout_builtin"]
    second = sorted(held.values())[1]
    assert f"logsnr, errs {second / held['quadratic']:.1f} times as much" in readme and \
        min(held, key=lambda k: held[k] if k != "quadratic" else np.inf) == "logsnr"


def test_readme_free_start_ceiling_is_the_json_and_moves_only_the_first_time_below_999():
    readme = " ".join((ROOT / "README.md").read_text().split())
    data = json.loads((RESULTS / "grid_opt_ceiling.json").read_text())
    free = data["free_start"]
    ceiling, bound = free["ceiling"], free["in_sample_on_heldout"]
    for row in (ceiling, bound):
        g = np.asarray(row["grid"])
        assert row["settings"]["free_start"] is True and row["stage"].endswith("Nelder-Mead")
        assert g[1] < g[0] < 999.0 and g[-1] == -1.0 and np.all(np.diff(g) < 0)
        assert row["start_kind"] == "quadratic"
    assert {ceiling["judged"]["baseline_kind"], bound["judged_third"]["baseline_kind"]} == {"quadratic"}
    # the baselines are the built-in grids from 999, as for the fixed first time
    assert ceiling["heldout_builtin"] == data["ceiling"]["heldout_builtin"]
    assert ceiling["judged"]["reduction"] == pytest.approx(ceiling["heldout_reduction"], rel=1e-12)
    assert bound["calibration_reduction"] >= ceiling["judged"]["reduction"]  # the in-sample bound holds
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    interval = lambda r: f"{pct(r[0])} to {pct(r[1])}"  # noqa: E731
    cut, low = ceiling["judged"]["reduction"], ceiling["judged"]["reduction_interval"][0]
    gain = cut - data["ceiling"]["judged"]["reduction"]
    assert low < 0.30 < cut  # so the README's "past 30%" with the interval's lower end below it
    for text in (
            f"| global search, every step and the first time free | noises 0-4095 | {pct(cut)} on 4096-8191 | "
            f"{interval(ceiling['judged']['reduction_interval'])} |",
            f"| noises 4096-8191 | {pct(bound['calibration_reduction'])} there (in sample), "
            f"{pct(bound['judged_third']['reduction'])} on 8192-12287 | "
            f"{interval(bound['judged_third']['reduction_interval'])} (8192-12287) |",
            f"and {pct(bound['calibration_reduction'])} with it free",
            f"(t = {ceiling['grid'][0]:.0f} and {bound['grid'][0]:.0f} in the two free searches",
            f"is worth about {100 * gain:.0f} points"):
        assert text in readme, text


def test_first_time_panel_never_ends_free_above_fixed_on_calibration_and_the_readme_quotes_it():
    """analysis/results/grid_opt_first_time.json: on every case the free first time's calibration error is at most
    the fixed one's (the free search starts from the fixed search's best grid, whose error it records), and the
    README's summary of the panel is its numbers."""
    data = json.loads((RESULTS / "grid_opt_first_time.json").read_text())
    rows, s = data["rows"], data["summary"]
    assert len(rows) == s["rows"] == 48 and data["noises"] == [128, 128]
    for r in rows:
        fixed, free = r["fixed"], r["free"]
        assert free["calibration_error"] <= fixed["calibration_error"] == free["fixed_calibration_error"]
        assert free["fixed_evaluations"] == fixed["evaluations"] <= free["evaluations"] <= 400
        assert free["first_time_won"] == ("free" if free["first"] < free["t_start"] else "fixed")
    assert s["free_worse_calibration"] == 0
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert (f"now in {s['free_worse_calibration']} and {s['free_worse_heldout']} ({s['free_worse_heldout_5pct']}), "
            f"and its held-out error is {s['geomean_heldout_ratio']:.3f} of the fixed search's") in readme
    edm = next(r for r in rows if (r["schedule"], r["problem"], r["method"], r["nfe"]) == ("edm", "gmm2d", "unipc-2", 6))
    short = lambda v: f"{v:.1e}".replace("e-0", "e-")  # noqa: E731  (4.6e-3 as the README writes it)
    assert (f"with the first time fixed; {short(edm['free']['heldout_error'])} now" in readme
            and f"against {short(edm['fixed']['heldout_error'])} with the first time fixed" in readme)
