"""Paper figures: the quick run makes every figure and table; the pieces that decide what a figure says.

``python -m paper_figures --quick`` (the tests marked slow): every figure and table is produced, non-empty,
with the expected layout. Figures that need the shipped digits model or ``pndmkit compare``'s results may
skip, but only with the reason that they are missing; every other figure must be produced. The fast tests pin
the registry-driven layout of fig4, the overlap note, the claim's verdict (and that its JSON says what its text
says), the bootstrap intervals on cases with a known answer and the 1 - cos column of fig6.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")
slow = pytest.mark.slow  # the quick run: ~40-90 s on 2 shared cores (digits sampling and the compare quick run)

from analysis import gradient_change, quality_intervals, quality_mixture, quality_nfe  # noqa: E402
from analysis.tables import read_csv, write_csv  # noqa: E402
from paper_figures import FIGURES, fig1_samples, fig2_quality_digits, fig4_orders, main  # noqa: E402

#: figures that may skip, and the words their skip reason must contain
MAY_SKIP = {"fig1_samples": "digits", "fig2_quality_digits": "digits", "fig7_peers": "compare"}
#: extra files (besides NAME.png/.pdf/.txt) written by some figures
EXTRA = {"fig2_quality_digits": ["table_digits_fid.md", "claim_pndm_vs_ddim.json"],
         "fig3_quality_mixture": ["table_mixture_quality.md"], "fig4_orders": ["table_orders.md"],
         "fig5_manifold": ["fig5_norms.png", "fig5_norms.pdf", "fig5_norms.txt"], "fig7_peers": ["table_peers.md"]}


def read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("figs")
    rc = main(["--quick", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    return out, summary["figures"], rc


@slow
def test_every_figure_is_made_or_skipped_for_a_stated_reason(quick_run):
    out, outcomes, rc = quick_run
    assert rc == 0
    assert set(outcomes) == set(FIGURES)
    for name, outcome in outcomes.items():
        if outcome["skipped"]:
            assert name in MAY_SKIP and MAY_SKIP[name] in outcome["skipped"], (name, outcome["skipped"])
            continue
        for fname in [f"{name}.png", f"{name}.pdf", f"{name}.txt"] + EXTRA.get(name, []):
            path = out / fname
            assert path.is_file() and path.stat().st_size > 0, path
        caption = (out / f"{name}.txt").read_text()
        assert "Made by: python -m paper_figures --quick --out" in caption


@slow
def test_png_files_are_images(quick_run):
    out, outcomes, _ = quick_run
    for name, outcome in outcomes.items():
        if not outcome["skipped"]:
            assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"


@slow
def test_quick_results_never_touch_the_committed_tables(quick_run):
    out, _, _ = quick_run
    assert (out / "results" / "quality_mixture.csv").is_file()


@slow
def test_mixture_quality_table(quick_run):
    import pndmkit

    out, _, _ = quick_run
    rows = read_rows(out / "results" / "quality_mixture.csv")
    assert list(rows[0]) == quality_mixture.COLUMNS
    size = quality_mixture.SIZES[True]
    for schedule in ("linear", "cosine"):
        for method in size["methods"]:
            got = [r for r in rows if r["schedule"] == schedule and r["method"] == method]
            nfe_of = pndmkit.METHODS[method].nfe
            expected = 1 if method == "pf" else sum(nfe_of(n) <= size["max_nfe"] for n in size["steps"])
            assert len(got) == expected, (schedule, method)
            if method != "fon":  # FON may diverge at very few steps; the others must give finite distances
                assert all(math.isfinite(float(r["sw"])) for r in got)
    assert [r["method"] for r in rows].count("exact") == 1


@slow
def test_orders_json(quick_run):
    out, _, _ = quick_run
    data = json.loads((out / "results" / "orders.json").read_text())
    import pndmkit

    assert set(data["methods"]) == set(pndmkit.METHODS)
    for name, r in data["methods"].items():
        assert len(r["steps"]) == len(r["nfe"]) == len(r["errors"]) >= 2, name
        assert r["declared_order"] == pndmkit.METHODS[name].order


@slow
def test_gradient_change_and_manifold_tables(quick_run):
    out, _, _ = quick_run
    rows = read_rows(out / "results" / "gradient_change.csv")
    assert list(rows[0]) == gradient_change.COLUMNS
    steps = gradient_change.SIZES[True]["steps"][0]
    mixture = [r for r in rows if r["source"] == "gmm32d"]
    assert len(mixture) == steps - 1  # one eps per grid time but the last (t = -1)
    assert all(-1.0 - 1e-9 <= float(r["cosine_median"]) <= 1.0 + 1e-9 for r in rows)
    assert all(0.0 <= float(r["cos_gap_q10"]) <= float(r["cos_gap_median"]) <= float(r["cos_gap_q90"]) <= 2.0
               for r in rows)
    data = json.loads((out / "results" / "manifold.json").read_text())
    case = data["cases"]["gmm2d"]
    assert set(case["methods"]) == {"euler", "fon", "ddim", "f-pndm", "exact"}
    for r in case["methods"].values():
        assert len(r["norm_rms"]) == len(case["times"]) == len(r["points"])


@slow
def test_digits_table_when_available(quick_run):
    out, outcomes, _ = quick_run
    if outcomes["fig2_quality_digits"]["skipped"]:
        pytest.skip(outcomes["fig2_quality_digits"]["skipped"])
    rows = read_rows(out / "results" / "quality_nfe.csv")
    assert list(rows[0]) == quality_nfe.COLUMNS
    size = quality_nfe.SIZES[True]
    for method in size["methods"]:
        assert sorted(int(r["nfe_budget"]) for r in rows if r["method"] == method and r["nfe_budget"]) == size["nfes"]
    verdict = json.loads((out / "claim_pndm_vs_ddim.json").read_text())
    assert verdict["verdict"] == quality_nfe.decide(verdict["difference"]["low"], verdict["difference"]["high"])


# -- fig4: the method list comes from the registry ------------------------------------------------------
def fake_orders(names, base=1e-2):
    """An orders.json whose methods have distinct, order-2 error curves (factor 3 apart)."""
    steps = [25, 50, 100, 200]
    return {"problem": "p", "schedule": "s", "grid": "uniform", "source": "test", "methods": {
        name: {"declared_order": 2, "measured_order": 2.0, "steps": steps, "nfe": steps,
               "errors": [base * 3.0 ** k * (25 / n) ** 2 for n in steps]} for k, name in enumerate(names)}}


def legend_texts(fig):
    return [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes]


def test_fig4_panels_follow_kind_order_and_transfer():
    from types import SimpleNamespace as Spec

    phi, data = "phi (DDIM)", "phi (data, exact Euler in e^lambda)"
    registry = {"ddim": Spec(kind="pseudo", order=1, transfer=phi), "f-pndm": Spec(kind="pseudo", order=2, transfer=phi),
                "new-pseudo4": Spec(kind="pseudo", order=4, transfer=phi),
                "new-classical": Spec(kind="classical", order=1, transfer="linear x + h f"),
                "new-adaptive": Spec(kind="adaptive", order=None, transfer="probability-flow ODE"),
                "new-x0-2": Spec(kind="pseudo", order=2, transfer=data),
                "new-x0-4": Spec(kind="pseudo", order=4, transfer=data)}
    left, middle, right = fig4_orders.panels(registry).values()
    assert left == ["ddim", "f-pndm", "new-adaptive"]
    assert middle == ["new-pseudo4", "new-classical", "ddim", "f-pndm"]  # DDIM, F-PNDM repeated for scale
    assert right == ["new-x0-2", "new-x0-4", "ddim", "f-pndm"]  # the data-prediction form, whatever its order
    registry.pop("new-x0-2"), registry.pop("new-x0-4")
    assert fig4_orders.panels(registry)[fig4_orders.RIGHT] == ["ddim", "f-pndm"]


def test_fig4_every_registered_method_is_in_exactly_one_panel_besides_the_references():
    import pndmkit

    layout = fig4_orders.panels()
    placed = [n for names in layout.values() for n in names]
    extra = {n: placed.count(n) - 1 for n in set(placed) if placed.count(n) > 1}
    assert set(placed) == set(pndmkit.METHODS)
    assert extra == {n: len(layout) - 1 for n in fig4_orders.REFERENCES}
    right = layout[fig4_orders.RIGHT]
    assert {"dpm-solver++-2m", "unipc-3", "ipndm-x0", "pece-x0"} <= set(right)  # the data-prediction form
    assert "dpm-solver-2m" in layout[fig4_orders.LEFT] and "dpm-solver-2m" not in right  # eps form, phi


def test_fig4_kind_without_the_kind_field():
    from types import SimpleNamespace as Spec

    assert fig4_orders.kind(Spec(adaptive=True, transfer="probability-flow ODE")) == "adaptive"
    assert fig4_orders.kind(Spec(adaptive=False, transfer="phi (DDIM)")) == "pseudo"
    assert fig4_orders.kind(Spec(adaptive=False, transfer="linear x + h f")) == "classical"


def test_fig4_draws_a_newly_registered_method(request):
    import dataclasses

    import pndmkit

    pndmkit.register_method(dataclasses.replace(pndmkit.METHODS["prk-s"], name="throwaway"))  # pseudo, order 4
    request.addfinalizer(lambda: pndmkit.unregister_method("throwaway"))
    fig, missing = fig4_orders.draw(fake_orders(list(pndmkit.METHODS)))
    left, middle, right = legend_texts(fig)
    assert [t for t in middle if t.startswith("throwaway: ")] == ["throwaway: 2.00 (declared 2)"]
    assert not any(t.startswith("throwaway") for t in left + right)
    assert missing == []
    fig, missing = fig4_orders.draw(fake_orders([n for n in pndmkit.METHODS if n != "throwaway"]))
    assert missing == ["throwaway"]  # registered, no data: named (the caption asks for --recompute)


def test_fig4_says_when_one_curve_hides_another():
    data = fake_orders(["plms", "f-pndm", "ddim"])
    m = data["methods"]
    m["f-pndm"]["errors"] = [e * (1 + 1e-4) for e in m["plms"]["errors"]]  # the same values
    m["ddim"]["errors"] = [e * 1.1 for e in m["plms"]["errors"]]  # 10 % apart: hidden at the figure's scale
    covered = fig4_orders.overlaps(m, ["plms", "f-pndm", "ddim"])
    assert set(covered) == {"f-pndm", "ddim"}
    assert covered["f-pndm"][0] == "plms" and covered["f-pndm"][1] == pytest.approx(1e-4)
    assert covered["ddim"][0] == "plms" and covered["ddim"][1] == pytest.approx(0.1)
    assert fig4_orders.overlaps(fake_orders(["a", "b"])["methods"], ["a", "b"]) == {}  # factor 3 apart


# -- the abstract's claim: one of three outcomes, and the JSON's fields say what its text says ----------
@pytest.mark.parametrize("low, high, expected", [
    (-2.0, -0.1, "reproduced"), (-2.0, -1e-12, "reproduced"), (-0.1, 0.3, "indistinguishable"),
    (0.0, 0.3, "indistinguishable"), (-0.3, 0.0, "indistinguishable"), (0.1, 2.0, "not reproduced")])
def test_claim_decision(low, high, expected):
    assert quality_nfe.decide(low, high) == expected


@pytest.mark.parametrize("low, high", [(math.nan, 1.0), (0.0, math.inf), (1.0, -1.0)])
def test_claim_decision_refuses_a_broken_interval(low, high):
    with pytest.raises(ValueError, match="interval"):
        quality_nfe.decide(low, high)


def synthetic_claim(value, low, high):
    side = {"method": "f-pndm", "steps": 50, "nfe": 59, "value": 7.5, "low": 7.0, "high": 8.0, "sd": 0.25}
    return {"pndm": side, "ddim": {**side, "method": "ddim", "steps": 1000, "nfe": 1000, "value": 7.5 - value},
            "difference": {"value": value, "low": low, "high": high, "sd": 0.1}, "n_samples": 1000, "level": 0.95}


@pytest.mark.parametrize("value, low, high, expected", [
    (-0.5, -0.7, -0.3, "reproduced"), (0.05, -0.15, 0.25, "indistinguishable"), (0.5, 0.3, 0.7, "not reproduced")])
def test_claim_json_and_text_say_the_same(tmp_path, value, low, high, expected):
    import re

    got = quality_nfe.verdict(synthetic_claim(value, low, high))
    back = json.loads((tmp_path / "c.json").write_text(json.dumps(got)) and (tmp_path / "c.json").read_text())
    assert back["verdict"] == expected and back["verdict"] in quality_nfe.VERDICTS
    assert re.findall(r'verdict: "([^"]+)"', back["text"]) == [expected]
    assert f"interval [{low:+.3f}, {high:+.3f}]" in back["text"] and f"difference {value:+.3f}" in back["text"]
    assert back["claim"] == ("50-step PNDM (f-pndm) gives higher quality (lower digits-FID) than 1000-step DDIM "
                             "(ddim) (PNDM abstract)") and back["text"].startswith(back["claim"])
    others = [v for v in quality_nfe.VERDICTS if v != expected]
    assert not any(f'"{v}"' in back["text"] for v in others)


def test_study_sizes_from_the_environment():
    from pndmkit.errors import UsageError

    size = quality_nfe.sizes(environ={"PNDMKIT_FID_SAMPLES": "2000", "PNDMKIT_FID_METHODS": "ddim, unipc-3",
                                      "PNDMKIT_FID_NFES": "10,5"})
    assert (size["n"], size["methods"], size["nfes"]) == (2000, ["ddim", "unipc-3"], [5, 10])
    assert quality_nfe.sizes(quick=True, environ={"PNDMKIT_FID_SAMPLES": "x"}) == quality_nfe.SIZES[True]
    for var, bad in (("PNDMKIT_FID_SAMPLES", "5"), ("PNDMKIT_FID_METHODS", "ddim,pf"), ("PNDMKIT_FID_NFES", "0")):
        with pytest.raises(UsageError, match=var):
            quality_nfe.sizes(environ={var: bad})


def test_the_docstrings_every_method_command_runs_and_is_accepted():
    """The docstring suggested `pndmkit methods --names`, an option that does not exist."""
    import re
    import subprocess
    import sys

    import pndmkit

    command = re.search(r"PNDMKIT_FID_METHODS=\$\((.*?)\)``", " ".join(quality_nfe.__doc__.split())).group(1)
    assert command.startswith("python -c ")
    proc = subprocess.run(["bash", "-c", sys.executable + command[len("python"):]], capture_output=True, text=True,
                          check=True)
    size = quality_nfe.sizes(environ={"PNDMKIT_FID_METHODS": proc.stdout.strip()})
    fixed = [n for n, m in pndmkit.METHODS.items() if not m.adaptive]  # here with the tests' own methods too
    assert size["methods"] == [n for n in fixed if n in size["methods"]] and len(size["methods"]) > 20
    assert {"ddim", "f-pndm", "unipc-3"} <= set(size["methods"]) and "pf" not in size["methods"]


def test_study_plan_shares_runs_between_budgets():
    runs = quality_nfe.plan({"methods": ["ddim", "f-pndm"], "nfes": [5, 6, 8, 20], "claim": ("f-pndm", 50, "ddim", 1000)})
    # F-PNDM's 1-step run costs 4 evaluations (fits 5 and 6), 2 steps 8, 11 steps 20 = 11 + 9
    assert runs == {("ddim", 5): [5], ("ddim", 6): [6], ("ddim", 8): [8], ("ddim", 20): [20], ("f-pndm", 1): [5, 6],
                    ("f-pndm", 2): [8], ("f-pndm", 11): [20], ("f-pndm", 50): [], ("ddim", 1000): []}


# -- intervals: known answers ------------------------------------------------------------------------------
def test_bootstrap_interval_of_a_mean_matches_the_normal_theory():
    x = np.random.default_rng(3).normal(2.0, 1.5, size=2000)
    draws = quality_intervals.bootstrap(lambda i: x[i].mean(axis=-1), quality_intervals.resamples_of(len(x), 2000))
    got = quality_intervals.normal_interval(float(x.mean()), draws)
    half = 1.959964 * x.std(ddof=1) / math.sqrt(len(x))  # the exact standard error of a mean, z at 95 %
    assert got["value"] == pytest.approx(x.mean())
    assert got["high"] - got["value"] == pytest.approx(half, rel=0.06)
    assert got["value"] - got["low"] == pytest.approx(half, rel=0.06)


def test_batched_frechet_distance_is_the_library_distance():
    from pndmkit.nn.frechet import feature_statistics, frechet_distance

    rng = np.random.default_rng(0)
    data, f = rng.normal(size=(300, 5)), rng.normal(0.3, 1.2, size=(200, 5))
    ref = quality_intervals.FrechetReference.from_features(data)
    idx = quality_intervals.resamples_of(len(f), 4)
    expected = [frechet_distance(*feature_statistics(f[i]), *feature_statistics(data)) for i in idx]
    assert ref.distance(f, idx) == pytest.approx(expected, rel=1e-10)
    assert float(ref.distance(f)) == pytest.approx(frechet_distance(*feature_statistics(f), *feature_statistics(data)))
    assert math.isnan(float(ref.distance(np.full_like(f, np.nan))))


def test_paired_difference_of_a_set_with_itself_and_with_a_shifted_copy():
    rng = np.random.default_rng(1)
    data, f = rng.normal(size=(400, 3)), rng.normal(size=(300, 3))
    ref = quality_intervals.FrechetReference.from_features(data)
    idx = quality_intervals.resamples_of(len(f), 200)
    shifted = f + np.array([0.5, 0.0, 0.0])
    draws = quality_intervals.fid_draws(ref, {"a": f, "b": f, "c": shifted}, idx)
    same = quality_intervals.difference_interval(ref, f, f, draws["a"], draws["b"])
    assert (same["value"], same["low"], same["high"], same["fraction_a_le_b"]) == (0.0, 0.0, 0.0, 1.0)
    # a shift by 0.5 along one axis adds 0.5^2 + 2 * 0.5 * (mean_f - mean_data)[0] to the distance, exactly
    moved = quality_intervals.difference_interval(ref, shifted, f, draws["c"], draws["a"])
    assert moved["value"] == pytest.approx(0.25 + (f.mean(0) - data.mean(0))[0], rel=1e-9)
    assert moved["low"] < moved["value"] < moved["high"]
    with pytest.raises(ValueError, match="same number of samples"):
        quality_intervals.difference_interval(ref, f, f[:10], draws["a"], draws["b"][:10])


def test_committed_fig1_reference_is_converged():
    from paper_figures._common import DEFAULT_RESULTS

    path = DEFAULT_RESULTS / "sample_grid.npz"
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    data = np.load(path)
    errors = data["errors"][np.isfinite(data["errors"])]
    assert float(data["reference_error"]) < 0.01 * float(errors.min())  # below 1 % of the smallest error shown


# -- fig1 / fig2 pieces ---------------------------------------------------------------------------------
def test_fig1_error_labels():
    assert fig1_samples.error_label(np.array([2.345, 12.0, 9323.9, np.nan])) == "2.3 12 9e3 nan"
    assert fig1_samples.tile(np.zeros((3, 2, 2))).shape == (2, 8)


def test_fig2_table_marks_the_best_and_the_methods_not_separated_from_it():
    def row(method, fid, to_best, low):
        return {"method": method, "nfe_budget": 5, "steps": 5, "nfe": 5, "fid": fid, "fid_low": fid - 1,
                "fid_high": fid + 1, "to_converged": fid - 7, "to_converged_low": fid - 8, "to_converged_high": fid - 6,
                "to_best": to_best, "to_best_low": low, "to_best_high": to_best + 1}

    rows = [{"method": "data", "nfe_budget": math.nan, "fid": 3.0}, row("ddim", 9.0, 0.0, math.nan),
            row("unipc-3", 9.5, 0.5, -0.2), row("ipndm", 20.0, 11.0, 10.0)]
    text = fig2_quality_digits.tables(rows)
    assert "| DDIM | **9.00 [8.00, 10.00] (5)** |" in text
    assert "| UniPC-3 | = 9.50 [8.50, 10.50] (5) |" in text
    assert "| iPNDM | 20.00 [19.00, 21.00] (5) |" in text
    assert "| DDIM | 2.00 [1.00, 3.00] |" in text


@slow
def test_fig1_and_fig2_quick_runs_make_their_files(tmp_path):
    rc = main(["--quick", "--only", "fig1_samples,fig2_quality_digits", "--out", str(tmp_path)])
    assert rc == 0
    summary_files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    if "fig1_samples.png" not in summary_files:
        pytest.skip("the digits model is not available here")
    for name in ("fig1_samples", "fig2_quality_digits"):
        for ext in ("png", "pdf", "txt"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 0
    data = np.load(tmp_path / "results" / "sample_grid.npz")
    assert data["errors"].shape == data["images"].shape[:3] and np.all(np.isfinite(data["errors"]))
    assert 0 < float(data["reference_error"]) < float(np.min(data["errors"]))  # quick: a loose reference (rtol 1e-3)
    claim = json.loads((tmp_path / "claim_pndm_vs_ddim.json").read_text())
    assert claim["verdict"] == quality_nfe.decide(claim["difference"]["low"], claim["difference"]["high"])
    assert f'verdict: "{claim["verdict"]}"' in claim["text"]


# -- fig6: 1 - cos is stored, not recomputed from a rounded cosine ---------------------------------------
def test_cos_gap_survives_the_table(tmp_path):
    theta = 1e-6  # 1 - cos = theta^2 / 2 = 5e-13, below the resolution of a stored cosine
    a = np.array([[1.0, 0.0]] * 3)
    b = np.array([[math.cos(theta), math.sin(theta)]] * 3)
    (row,) = gradient_change.change_rows("test", 2, [1.0, 0.0], [b, a])
    assert row["cos_gap_median"] == pytest.approx(0.5 * theta ** 2, rel=1e-9)
    (back,) = read_csv(write_csv(tmp_path / "t.csv", [row], gradient_change.COLUMNS))
    assert back["cosine_median"] == 1.0  # what fig6 used to plot from: 1 - cos = 0, off the log axis
    assert back["cos_gap_median"] == pytest.approx(0.5 * theta ** 2, rel=1e-5)


def test_fig4_main_draws_one_png_of_an_orders_json(tmp_path, capsys):
    import pndmkit

    data = tmp_path / "orders.json"
    names = list(pndmkit.METHODS)
    data.write_text(json.dumps(fake_orders(names[1:])))
    assert fig4_orders.main([str(tmp_path / "docs" / "orders.png"), "--data", str(data)]) == 0
    assert (tmp_path / "docs" / "orders.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"not in {data} (rerun python -m analysis.orders): {names[0]}" in capsys.readouterr().out
    prog = "python -m paper_figures.fig4_orders: error: "
    for argv, said in (([str(tmp_path / "x.png"), "--data", str(tmp_path / "missing.json")],
                        f"--data: no file {tmp_path / 'missing.json'}; make it with python -m analysis.orders"),
                       ([], "the following arguments are required: png"),
                       ([str(tmp_path / "x.png"), "--dat", str(data)],
                        f"unrecognized arguments: --dat {data} (did you mean --data?)"),
                       ([str(tmp_path / "x.png"), "--data", str(data), "--data", str(data)],
                        f"--data: given twice ({str(data)!r}, then {str(data)!r}); give it once")):
        with pytest.raises(SystemExit) as stop:  # one line, as python -m paper_figures says it: no usage block
            fig4_orders.main(argv)
        assert stop.value.code == 2 and capsys.readouterr() == ("", f"{prog}{said}\n")
    assert not (tmp_path / "x.png").exists()


# -- a user's methods (PNDMKIT_PLUGINS), loaded as the pndmkit command loads them -------------------------
def test_paper_figures_draws_a_method_registered_by_a_plugin(tmp_path, monkeypatch, request):
    """`pndmkit order` knew a PNDMKIT_PLUGINS method, `python -m paper_figures` did not: fig4 (every registered
    method) left its curve out of an orders.json made with it. Now the plugin is loaded first and the method is
    drawn, in the panel of its kind."""
    import sys

    import pndmkit

    (tmp_path / "figplugin.py").write_text(
        "import dataclasses\nimport pndmkit\n"
        "pndmkit.register_method(dataclasses.replace(pndmkit.METHODS['prk-s'], name='test-user-prk'))\n")
    monkeypatch.setenv("PNDMKIT_PLUGINS", "figplugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    request.addfinalizer(lambda: (sys.modules.pop("figplugin", None), pndmkit.METHODS.get("test-user-prk") and
                                  pndmkit.unregister_method("test-user-prk")))
    assert "test-user-prk" not in pndmkit.METHODS
    results = tmp_path / "results"
    results.mkdir()
    (results / "orders.json").write_text(json.dumps(fake_orders(list(pndmkit.METHODS) + ["test-user-prk"])))
    real, figures = fig4_orders.draw, []
    monkeypatch.setattr(fig4_orders, "draw", lambda data: figures.append(real(data)) or figures[-1])
    assert main(["--only", "fig4_orders", "--results", str(results), "--out", str(tmp_path / "out")]) == 0
    (fig, missing), = figures
    left, middle, right = legend_texts(fig)
    assert [t for t in middle if t.startswith("test-user-prk: ")] == ["test-user-prk: 2.00 (declared 2)"]
    assert missing == [] and (tmp_path / "out" / "fig4_orders.png").is_file()


@pytest.mark.parametrize("plugins, detail", [
    ("no_such_figure_plugin", "PNDMKIT_PLUGINS: cannot import 'no_such_figure_plugin' (No module named "
                              "'no_such_figure_plugin')"),
    ("badfigplugin", "PNDMKIT_PLUGINS: module 'badfigplugin' failed while registering its methods: ValueError: "
                     "spec.order=3 for 'bad-heun', but its integrator reports order 2")])
def test_a_failing_plugin_is_one_line_and_exit_2_as_on_the_command_line(tmp_path, monkeypatch, capsys, plugins,
                                                                        detail):
    import sys

    from pndmkit.cli import main as pndmkit_main

    (tmp_path / "badfigplugin.py").write_text("from pndmkit import METHODS, MethodSpec, register_method\n"
                                              "register_method(MethodSpec('bad-heun', METHODS['pie'].build, 3))\n")
    monkeypatch.setenv("PNDMKIT_PLUGINS", plugins)
    monkeypatch.syspath_prepend(str(tmp_path))
    for prog, run in (("pndmkit", lambda: pndmkit_main(["methods"])),
                      ("python -m paper_figures", lambda: main(["--only", "fig4_orders", "--out", str(tmp_path),
                                                                "--results", str(tmp_path)])),
                      ("python -m paper_figures.fig4_orders", lambda: fig4_orders.main([str(tmp_path / "o.png")]))):
        sys.modules.pop("badfigplugin", None)  # a failed import leaves nothing behind; imported again each time
        with pytest.raises(SystemExit) as stop:
            run()
        assert stop.value.code == 2 and capsys.readouterr() == ("", f"{prog}: error: {detail}\n")
    assert not list(tmp_path.glob("*.png")) and "bad-heun" not in __import__("pndmkit").METHODS  # nothing made


# -- the command line: bad input is one line and exit 2, as with pndmkit ---------------------------------
KNOWN = ", ".join(FIGURES)


def _refused(argv, monkeypatch, capsys):
    """The one line ``python -m paper_figures ARGV`` prints, having refused ARGV (exit 2) before any figure."""
    import paper_figures

    monkeypatch.setattr(paper_figures, "make_all", lambda *a, **k: pytest.fail("a figure was started"))
    with pytest.raises(SystemExit) as stop:
        main(argv)
    printed, err = capsys.readouterr()
    assert stop.value.code == 2 and printed == "" and err.count("\n") == 1 and "Traceback" not in err, err
    return err.removeprefix("python -m paper_figures: error: ").rstrip("\n")


@pytest.mark.parametrize("argv, said", [
    (["--only", "fig9"], f"--only: unknown figure name 'fig9'; known: {KNOWN}"),
    (["--only", "fig4"], f"--only: unknown figure name 'fig4' (did you mean 'fig4_orders'?); known: {KNOWN}"),
    (["--only", ""], f"--only: the list of figure names is empty (got ''); give one or more, comma-separated, among: "
                     f"{KNOWN}"),
    (["--only", "fig4_orders,"], "--only: entry 2 of 'fig4_orders,' is empty; give comma-separated figure names "
                                 "without empty entries"),
    (["--only", "fig4_orders,fig4_orders"], "--only: 'fig4_orders' named more than once in 'fig4_orders,fig4_orders'; "
                                            "name each once"),
    (["--threads", "-3"], "--threads: expected an integer >= 1, got '-3'"),
    (["--threads", "0"], "--threads: expected an integer >= 1, got '0'"),
    (["--thread", "2"], "unrecognized arguments: --thread 2 (did you mean --threads?)"),
    (["--out", "/proc/foo"], "--out: cannot write into /proc (to create /proc/foo in it): No such file or directory; "
                             "choose a writable folder for --out"),
    (["--results", "/proc/foo"], "--results: cannot write into /proc (to create /proc/foo in it): No such file or "
                                 "directory; choose a writable folder for --results"),
    (["--threads", "1", "--threads", "2"], "--threads: given twice ('1', then '2'); give it once"),
    (["--only", "fig4_orders", "--only", "fig1_samples"],
     "--only: given twice ('fig4_orders', then 'fig1_samples'); give it once"),
    (["--out", "{file}"], "--out: '{file}' exists and is not a folder"),
    (["--out", "{file}/sub"], "--out: cannot create '{file}/sub': {file} is a file, not a folder"),
    (["--results", "{file}"], "--results: '{file}' exists and is not a folder"),
])
def test_paper_figures_refuses_bad_input_in_one_line_before_any_work(argv, said, tmp_path, monkeypatch, capsys):
    """`--only fig9` and `--threads -3` ended in tracebacks (exit 1), an --out or --results that cannot be written
    made every figure fail, and `--only ""`, a repeated name, `--threads 0` and the abbreviation `--thread` were
    taken: each is now refused in one line naming the option, the value and what is allowed (exit 2), and nothing
    is written."""
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    argv = [a.replace("{file}", str(afile)) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    assert _refused(argv, monkeypatch, capsys) == said.replace("{file}", str(afile))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no --out folder made


def test_paper_figures_refuses_an_out_folder_another_run_is_using(tmp_path, monkeypatch, capsys, hold_lock):
    """Two runs into one --out wrote the same files at once: the second is refused (one line, exit 2), writing
    nothing."""
    from paper_figures import LOCK_FILE

    out = tmp_path / "out"
    holder = hold_lock(out, LOCK_FILE)
    lock = out / LOCK_FILE
    assert _refused(["--only", "fig4_orders", "--out", str(out)], monkeypatch, capsys) == (
        f"--out: {out} is in use by another paper_figures run: a process holds its lock {lock} (`fuser {lock}` names "
        "it); wait for that run to end or use another out folder. The operating system releases the lock when the "
        "process holding it ends, even by a crash or a kill, so it is never stale: the file needs no deleting")
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]
    holder.communicate("")


def test_only_says_what_became_of_index_and_summary(tmp_path, monkeypatch, capsys):
    """`--only` in a fresh --out said "index.md and summary.json left unchanged" where neither existed: it says
    they were not written, and "left unchanged" only of those that exist, which keep their bytes."""
    import paper_figures

    made = []
    monkeypatch.setattr(paper_figures, "make_all", lambda cfg, only: made.append(only) or {})
    out = tmp_path / "out"
    assert main(["--only", "fig4_orders", "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == ("--only: index.md and summary.json not written (a full run "
                                                        "writes them)")
    assert not out.exists()  # the stand-in figures wrote nothing, so the run leaves no folder (nor lock file)
    out.mkdir()
    (out / "summary.json").write_text("{}\n")
    assert main(["--only", "fig4_orders,fig6_gradient_change", "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "--only: summary.json left unchanged (a full run rewrites it)"
    (out / "index.md").write_text("# mine\n")
    assert main(["--only", "fig4_orders", "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == ("--only: index.md and summary.json left unchanged (a full "
                                                        "run rewrites them)")
    assert (out / "summary.json").read_text() == "{}\n" and (out / "index.md").read_text() == "# mine\n"
    assert made == [["fig4_orders"], ["fig4_orders", "fig6_gradient_change"], ["fig4_orders"]]


# -- fig7: the strongest other compositions come from the results ---------------------------------------
def test_fig7_strongest_others_are_the_per_nfe_winners_outside_the_drawn_methods():
    from paper_figures import fig7_peers

    def row(method, nfe, error, side="pndmkit"):
        return {"side": side, "method": method, "nfe_target": nfe, "nfe": nfe, "error": error, "option": "o"}

    # geometric means over the two cases: at NFE 5 a = 2e-2, b = sqrt(1e-2 * 9e-2) = 3e-2 (a wins although b
    # wins case 1); at NFE 10 b = 1e-3, a = 4e-3; c is best of all but drawn; d ran in one case only
    cases = [{"best": [row("a", 5, 2e-2), row("b", 5, 1e-2), row("c", 5, 1e-4), row("d", 5, 1e-5),
                       row("a", 10, 4e-3), row("b", 10, 1e-3), row("peer-x", 10, 1e-9, "peer")]},
             {"best": [row("a", 5, 2e-2), row("b", 5, 9e-2), row("c", 5, 1e-4),
                       row("a", 10, 4e-3), row("b", 10, 1e-3), row("c", 10, float("inf"))]}]
    data = {"config": {"nfes": [5, 10]}, "cases": cases}
    assert fig7_peers.strongest_others(data, drawn=["c"]) == ["a", "b"]
    assert fig7_peers.strongest_others(data, drawn=["c", "a"]) == ["b"]
    assert fig7_peers.strongest_others(data, drawn=["a", "b", "c"]) == []
