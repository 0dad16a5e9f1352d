"""The README's convergence table is what ``make demo`` (``pndmkit order``) prints, digit for digit.

Every row of the table under "Convergence orders (`make demo`)" and the ``pf`` line below it are rebuilt
from ``pndmkit order --json`` (the same study ``make demo`` runs: about 12 CPU-seconds), so a number in the
README that the code no longer prints fails here.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from pathlib import Path

import pytest

from pndmkit.cli import main
from pndmkit.methods import BUILTIN, get_method

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def short(value: float) -> str:
    """The README's two-digit form: 3.7e-2."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


@pytest.fixture(scope="module")
def demo() -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["order", "--json", "--methods", ",".join(BUILTIN)]) == 0
    return json.loads(out.getvalue())


def _section() -> str:
    start = README.index("## Convergence orders (`make demo`)")
    return README[start:README.index("\n## ", start + 10)]


def test_every_row_of_the_demo_table_is_what_pndmkit_order_prints(demo):
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| ([a-z0-9+.-]+) \| .*\|$", _section(), re.M)
            if m.group(1) != "method"}
    fixed = [name for name in BUILTIN if not get_method(name).adaptive]
    assert sorted(rows) == sorted(fixed)
    for name in fixed:
        r = demo["methods"][name]
        steps = r["steps"]
        err = dict(zip(steps, r["errors"]))
        expected = (f"| {name} | {r['declared_order']} | {r['measured_order']:.2f} | {r['fit_range'][0]}-"
                    f"{r['fit_range'][1]} | {short(err[25])} | {short(err[100])} | {short(err[800])} | "
                    f"{get_method(name).nfe_formula()} |")
        assert rows[name] == expected


def test_the_pf_line_is_what_pndmkit_order_prints(demo):
    pf = demo["methods"]["pf"]
    by_nfe = dict(zip(pf["nfe"], pf["errors"]))
    line = re.search(r"`pf` \(adaptive RK45\) is reported per NFE: (.*)\.", _section()).group(1)
    for error, nfe in re.findall(r"([0-9.]+e-?\d+) at (\d+)", line):
        assert short(by_nfe[int(nfe)]) == error


def _flow_rows() -> dict:
    start = README.index("python -m analysis.flow_gradients")
    table = README[start:README.index("\n\n", README.index("| method | gradient |", start))]
    return {(m.group(1), m.group(2)): m.group(0) for m in re.finditer(r"^\| ([A-Za-z-]+) \| ([^|]+?) \| .*\|$",
                                                                         table, re.M) if m.group(1) != "method"}


def _readme_form(value: float) -> str:
    """The flow table's form: two digits, no exponent for numbers in [1, 10)."""
    text = short(value)
    return text[:-2] if text.endswith("e0") else text


def test_the_flow_gradients_table_shows_the_nfe_each_run_used():
    """The table once said 'NFE ~10' over runs of 5, 8, 9 and 10 evaluations: each cell now gives its NFE,
    which the registry's count of that many steps confirms for the eps and u rows."""
    from analysis import flow_gradients as fg

    rows = _flow_rows()
    for (method, gradient), row in rows.items():
        cells = [c.strip() for c in row.strip("|").split("|")][3:]
        used = [int(re.fullmatch(r"\S+ \((\d+)\)", c).group(1)) for c in cells]
        assert all(u <= n for u, n in zip(used, fg.NFES)) and used == sorted(used), row
        if gradient != "x0 in e^lambda":  # the data transfer's runs skip evaluations (see the table)
            s = fg.spec(method, gradient)
            assert used == [s.nfe(fg.steps_for(s, n)) for n in fg.NFES], row
    assert {r.split("|")[4].strip() for r in rows.values()} >= {"5.7 (8)", "2.5e-1 (5)", "1.4e-1 (9)"}


def test_the_flow_gradients_script_names_its_methods_as_the_registry_allows():
    from analysis import flow_gradients as fg
    from pndmkit.methods import register_method, unregister_method

    assert fg.name("PRK", "eps in s") == "prk.eps-s"  # a name the registry and the command line accept
    rows = _flow_rows()
    assert set(rows) == {(m, g) for m in fg.ESTIMATORS for g in fg.GRADIENTS}  # every printed row, no other
    for method, gradient in rows:
        spec = fg.spec(method, gradient)  # a MethodSpec refuses names like "PRK/eps in s"
        register_method(spec)  # a name the registry and the command line take
        try:
            assert spec.build(fg.FlowMatching()).name == spec.name  # the integrator carries the registered name
        finally:
            unregister_method(spec.name)


@pytest.mark.slow
def test_the_flow_gradients_table_is_what_the_script_prints():
    from analysis import flow_gradients as fg

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.warns(Warning):  # the eps-form warm-ups warn at few steps
        fg.main()
    printed = {}
    for line in out.getvalue().splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        errors = [f"{_readme_form(float(c.split()[0]))} {c.split()[1]}" for c in cells[3:]]  # "5.7 (8)": the NFE run
        printed[(cells[0], cells[1])] = f"| {cells[0]} | {cells[1]} | {cells[2]} | " + " | ".join(errors) + " |"
    assert printed == _flow_rows()


RESULTS = Path(__file__).resolve().parent.parent / "analysis" / "results"


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_costs_the_readme_quotes_are_the_ones_the_results_files_record():
    flat = " ".join(README.split())
    audit = _json(RESULTS / "audit.json")
    assert f"41 audits, {round(audit['seconds'])} s)" in flat and len(audit["rows"]) == 41
    assert f"`python -m analysis.audit_table`, {round(audit['seconds'])} s on the 2-core machine" in flat
    bound = _json(RESULTS / "grid_bound_digits.json")["by_nfe"]
    minutes = sum(v["seconds"] for v in bound.values()) / 60
    assert f"`python -m analysis.grid_bound`, about {5 * round(minutes / 5)} CPU-minutes" in flat
    opt = _json(RESULTS / "grid_opt_digits.json")["by_nfe"]
    minutes = sum(part["seconds"] for v in opt.values() for part in v.values()
                  if isinstance(part, dict) and "seconds" in part) / 60
    assert f"`python -m analysis.grid_opt`: about {round(minutes)} CPU-minutes" in flat
    seconds = _json(RESULTS.parent.parent / "paper_figures" / "out" / "summary.json")["seconds"]
    assert f"it took {int(seconds // 60)} min {int(seconds % 60)} s on 2 otherwise idle" in flat


def test_the_real_orders_cost_with_the_shipped_cache_is_the_cached_path():
    """The README's "10 CPU-seconds with the shipped cache" holds only if the cache holds the reference and a
    sweep of every method the study runs (else it solves them: well over an hour)."""
    flat = " ".join(README.split())
    assert "`python -m analysis.real_orders`: 10 CPU-seconds on the 2-core machine with the references and sweeps" in flat
    shipped = json.loads((RESULTS / "real_orders.json").read_text())
    steps = shipped["config"]["steps"]
    caches = [d for d in (RESULTS / "real_cache").iterdir() if (d / "sweeps.json").is_file()]
    assert len(caches) == 1 and (caches[0] / "reference.npz").is_file()
    swept = set(json.loads((caches[0] / "sweeps.json").read_text()))
    fixed = [name for name in BUILTIN if not get_method(name).adaptive]
    assert {f"{name}|{steps}" for name in fixed} <= swept
    assert set(shipped["network"]["orders"]) == set(fixed)


def _at_most(value: float) -> str:
    """A bound in the README's one-digit form, rounded up: 8.6e-08 -> 9e-8, 2.7e-06 -> 3e-6."""
    mantissa, exponent = f"{value:.1e}".split("e")
    digit, exponent = math.ceil(float(mantissa)), int(exponent)
    if digit == 10:
        digit, exponent = 1, exponent + 1
    return f"{digit}e{exponent}"


def _rows(data: dict, nfe: int, scan: bool) -> list[dict]:
    """The rows of one NFE: the tuned start grids (``starts t0..t_last (scan)``) or the built-in grids."""
    return [r for r in data["rows"] if r["nfe"] == nfe and r["grid"].endswith("(scan)") == scan]


def _scan_ends(row: dict) -> tuple[int, int]:
    t0, t_last = re.fullmatch(r"starts (\d+)\.\.(\d+) \(scan\)", row["grid"]).groups()
    return int(t0), int(t_last)


def _ratio(row: dict, digits: int = 2) -> str:
    low, high = row["to_peer"]["interval"]
    return f"{row['to_peer']['ratio']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def test_the_digits_unet_leading_multistep_numbers_are_the_results_files():
    """The README's paragraph on pndmkit's ``leading-multistep`` grid on the digits UNet (160 noises) is
    analysis/results/compare_digits_160/leading_multistep.json (and the finer scan, leading_multistep_refined.json):
    the parity with the best peer, the other methods' ratios on that grid, ipndm-v at NFE 8 and the tuned starts."""
    flat = " ".join(README.split())
    folder = RESULTS / "compare_digits_160"
    data, refined = _json(folder / "leading_multistep.json"), _json(folder / "leading_multistep_refined.json")
    nolof = "dpm-solver++-3m-nolof"

    # dpm-solver++-3m-nolof on leading-multistep is the best peer (DPMSolverMultistep, leading) at NFE 5 and 6
    assert sorted(data["parity"]) == ["5", "6"]
    assert all(data["shipped"][n]["peer"] == "dpm-3m-nolof, timestep_spacing=leading" for n in data["parity"])
    relative = max(p["relative"] for p in data["parity"].values())
    per_noise = max(p["max_per_noise"] for p in data["parity"].values())
    assert (f"RMS errors equal to {_at_most(relative)} relative at NFE 5 and 6, every noise's to "
            f"{_at_most(per_noise)}") in flat
    on_grid = {n: {r["method"]: r for r in _rows(data, n, scan=False)} for n in (5, 6, 8)}
    assert all(r["grid"] == "leading-multistep" for rows in on_grid.values() for r in rows.values())
    for n in (5, 6):
        best = min(on_grid[n].values(), key=lambda r: r["error"])
        assert best["method"] == nolof and f"{best['to_peer']['ratio']:.3f}" == "1.000"  # no other beats it

    # the other methods on that grid at NFE 5-6, named in the order of their ratios at NFE 5
    others = sorted((m for m in on_grid[5] if m not in (nolof, "ipndm")), key=lambda m: on_grid[5][m]["error"])
    ratios = [on_grid[n][m]["to_peer"]["ratio"] for n in (5, 6) for m in others]
    ipndm = [on_grid[n]["ipndm"]["to_peer"]["ratio"] for n in (5, 6)]
    assert (f"({', '.join(f'`{m}`' for m in others)}: {min(ratios):.2f}-{max(ratios):.2f} times the peer; "
            f"`ipndm` {min(ipndm):.1f}-{max(ipndm):.1f})") in flat

    # at NFE 8 the best on leading-multistep is ipndm-v, against the best peer (DEIS)
    best8 = min(on_grid[8].values(), key=lambda r: r["error"])
    assert best8["method"] == "ipndm-v" and data["shipped"]["8"]["peer"].startswith("deis, ")
    assert f"at NFE 8 `ipndm-v` on it is {_ratio(best8)} times the best peer (DEIS)" in flat

    # tuned equal spacings: the best of the scan at NFE 5 and 6, and the finer scan keeps t_last and the ratios
    best = {n: min(_rows(data, n, scan=True), key=lambda r: r["error"]) for n in (5, 6)}
    cells = [f"{_ratio(best[n])} (`{best[n]['method']}`, {_scan_ends(best[n])[0]} to {_scan_ends(best[n])[1]}) "
             f"at NFE {n}" for n in (5, 6)]
    assert f"give {cells[0]} and {cells[1]}" in flat
    assert "keeps `t_last = 100` and these ratios to 0.01" in flat
    for n in (5, 6):
        finer = min(_rows(refined, n, scan=True), key=lambda r: r["error"])
        assert _scan_ends(finer)[1] == _scan_ends(best[n])[1] == 100
        assert abs(round(finer["to_peer"]["ratio"], 2) - round(best[n]["to_peer"]["ratio"], 2)) <= 0.01


def test_the_digits_unet_analytic_start_numbers_are_the_results_file():
    """The README's paragraph on the analytic start (the data's Gaussian flow from t = 999 to t1) is
    analysis/results/compare_digits_160/analytic_start.json: the floors of each start, the held-out ratios of the
    start chosen on calibration noises, and that the Gaussian start's interval holds the identity start's ratio."""
    flat = " ".join(README.split())
    data = _json(RESULTS / "compare_digits_160" / "analytic_start.json")
    floor = {(f["start"], f["t1"]): f["error"] for f in data["floors"]}
    assert f"whose own error is {short(floor[('identity', 999)])}" in flat
    assert (f"is {short(floor[('gaussian', 800)])} against {short(floor[('identity', 800)])} at `t1 = 800`, and "
            f"{short(floor[('gaussian', 600)])} against {short(floor[('identity', 600)])} at `t1 = 600`") in flat
    assert abs(floor[("digits-gmm", 800)] / floor[("gaussian", 800)] - 1) < 0.05  # the mixture is no better
    rows = {r["start"]: r for r in data["rows"] if r["nfe"] == 5}
    assert rows["gaussian"]["method"] == rows["identity"]["method"] == "unipc-3"
    assert (rows["gaussian"]["t1"], rows["gaussian"]["t_last"]) == (800, 100)
    assert (f"the Gaussian start reads {_ratio(rows['gaussian'], 2)} of the best peer at NFE 5 on the 160 held-out "
            f"noises, the same grid from `x_T` itself {_ratio(rows['identity'], 2)}") in flat
    low, high = rows["gaussian"]["to_peer"]["interval"]
    assert low < rows["identity"]["to_peer"]["ratio"] < high  # "the gain is within the interval"


def test_the_digits_unet_free_grid_numbers_are_the_results_file():
    """The README's paragraph on refining the start scan's grids with a searched first time is
    analysis/results/compare_digits_160/free_grid.json: each search starts from the scan's grid and never ends worse
    on the calibration noises; the pick per NFE is by calibration error; the quoted ratios are those rows'."""
    flat = " ".join(README.split())
    data = _json(RESULTS / "compare_digits_160" / "free_grid.json")
    scan = {(s["method"], s["nfe"]): s["grid"] for s in _json(RESULTS / "compare_digits_160" /
                                                              "leading_multistep.json")["scan"]}
    cuts = []
    for r in data["rows"]:
        assert r["start_grid"] == scan[(r["method"], r["nfe"])] and r["grid"][0] <= 999.0 and r["grid"][-1] == -1.0
        assert r["calibration_error"] <= r["calibration_error_start"]
        cuts.append(1 - r["calibration_error"] / r["calibration_error_start"])
    assert f"cuts the calibration error by {100 * min(cuts):.0f}-{100 * max(cuts):.0f}%" in flat
    for nfe, label in ((5, "NFE 5"), (6, "at NFE 6")):  # "0.86 [...] of the best peer at NFE 5", "0.88 [...] at NFE 6"
        rows = [r for r in data["rows"] if r["nfe"] == nfe]
        pick = min(rows, key=lambda r: r["calibration_error"])
        assert pick["method"] == "unipc-3"
        assert f"{_ratio(pick['searched'], 2)} {'of the best peer at' if nfe == 5 else ''} {label}".replace(
            "  ", " ") in flat, nfe
        assert f"({pick['grid'][0]:.0f})" in flat or f"(first time {pick['grid'][0]:.0f})" in flat
    picks = {r["nfe"]: r for r in data["rows"] if r["method"] == "unipc-3"}
    assert (f"against {picks[5]['scan']['to_peer']['ratio']:.2f} and {picks[6]['scan']['to_peer']['ratio']:.2f} "
            f"for `unipc-3`'s scan grids") in flat
    other = next(r for r in data["rows"] if r["method"] == "ipndm-v" and r["nfe"] == 6)
    assert f"`ipndm-v` at NFE 6 reads {_ratio(other['searched'], 2)}" in flat
    assert other["calibration_error"] > picks[6]["calibration_error"]  # "it has the larger calibration error"
    assert picks[5]["searched"]["to_peer"]["interval"][1] < 1.0  # "a lead established at NFE 5"
