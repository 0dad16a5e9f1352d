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
    assert [(r["calibration"], r["heldout"]) for r in data["rows"] if r["default"]] == [(256, 256)]
    for r in data["rows"]:
        low, high = r["heldout_interval"]
        label = f"{r['calibration']} / {r['heldout']}"
        line = (f"| {r['heldout_error']:.2e} | {r['baseline_error']:.2e} | {100 * r['reduction']:.0f}% | "
                f"{100 * low:.0f}% to {100 * high:.0f}% | "
                f"{'the ' + r['baseline_kind'] + ' grid' if r['fell_back'] else 'the searched grid'} |")
        found = [ln for ln in readme.splitlines() if ln.startswith(f"| {label}") and ln.endswith(line)]
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
