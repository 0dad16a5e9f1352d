"""Paper figures: the quick run makes every figure and table; the pieces that decide what a figure says.

``python -m paper_figures --quick`` (the tests marked slow): every figure and table is produced, non-empty,
with the expected layout. Figures that need the shipped digits model or ``pndmkit compare``'s results may
skip, but only with the reason that they are missing; every other figure must be produced. The fast tests pin
the registry-driven layout of fig4, the overlap note, the claim's verdict and the 1 - cos column of fig6.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")
slow = pytest.mark.slow  # the quick run: ~40-90 s on 2 shared cores (digits sampling and the compare quick run)

from analysis import claim_draws, gradient_change, quality_mixture, quality_vs_steps  # noqa: E402
from analysis._tables import read_csv, write_csv  # noqa: E402
from paper_figures import FIGURES, fig4_orders, main  # noqa: E402

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
    rows = read_rows(out / "results" / "quality_vs_steps.csv")
    assert list(rows[0]) == quality_vs_steps.COLUMNS
    plan = quality_vs_steps.SIZES[True]["plan"]
    for schedule, per_method in plan.items():
        for method, steps in per_method.items():
            got = sorted(int(r["steps"] or 0) for r in rows if r["schedule"] == schedule and r["method"] == method)
            assert got == sorted(steps), (schedule, method)
    assert all(math.isfinite(float(r["fid"])) for r in rows if r["method"] != "fon")
    verdict = json.loads((out / "claim_pndm_vs_ddim.json").read_text())
    assert verdict["verdict"] in quality_vs_steps.VERDICTS and "holds" not in verdict
    assert verdict["pndm"]["draws"] == 1 + len(claim_draws.SEEDS[True]["pndm"])


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


# -- the abstract's claim: a verdict, never "holds" for an indistinguishable result --------------------
@pytest.mark.parametrize("difference, noise, expected", [
    (-0.5, 0.1, "higher"), (-0.2, 0.1, "higher"), (-0.19, 0.1, "indistinguishable"),
    (0.19, 0.1, "indistinguishable"), (0.2, 0.1, "lower"), (math.nan, 0.1, "not computed"),
    (0.0, math.nan, "not computed")])
def test_claim_decision(difference, noise, expected):
    assert quality_vs_steps.decide(difference, noise) == expected


def claim_tables(pndm_fids, ddim_fids, n=128):
    """Seed-0 rows of the main study and per-seed rows of the draws study for the full-size claim."""
    pndm, pndm_steps, ddim, ddim_steps = quality_vs_steps.SIZES[False]["claim"]
    table = [{"schedule": "", "method": "data", "steps": 0, "fid": 35.0, "fid_std": 5.0, "n_samples": n},
             {"schedule": "linear", "method": pndm, "steps": pndm_steps, "fid": pndm_fids[0], "n_samples": n},
             {"schedule": "linear", "method": ddim, "steps": ddim_steps, "fid": ddim_fids[0], "n_samples": n}]
    draws = [{"seed": k, "method": m, "steps": st, "fid": f, "n_samples": n}
             for m, st, fids in ((pndm, pndm_steps, pndm_fids), (ddim, ddim_steps, ddim_fids))
             for k, f in enumerate(fids) if k > 0]
    draws.append({"seed": 9, "method": pndm, "steps": pndm_steps, "fid": 1.0, "n_samples": n // 2})  # ignored
    return table, draws


def test_claim_over_draws_summary_and_verdict():
    table, draws = claim_tables([30.0, 40.0, 50.0], [30.5, 40.5, 49.5])
    summary = claim_draws.summary(table, draws)
    assert summary["pndm"]["fid_by_seed"] == {0: 30.0, 1: 40.0, 2: 50.0}
    assert summary["pndm"]["mean"] == pytest.approx(40.0) and summary["pndm"]["sd"] == pytest.approx(10.0)
    assert summary["difference"]["by_seed"] == {0: -0.5, 1: -0.5, 2: 0.5}
    assert summary["difference"]["mean"] == pytest.approx(-1 / 6)
    verdict = quality_vs_steps.verdict(table, draws=summary)
    assert verdict["verdict"] == "indistinguishable" and "holds" not in verdict
    assert verdict["noise"] == pytest.approx(summary["difference"]["sd"] / math.sqrt(3))
    assert verdict["pndm"]["mean"] == pytest.approx(40.0) and verdict["pndm"]["fid"] == 30.0


def test_claim_verdict_higher_when_every_draw_agrees():
    table, draws = claim_tables([30.0, 40.0, 50.0], [31.0, 41.2, 50.9])
    verdict = quality_vs_steps.verdict(table, draws=claim_draws.summary(table, draws))
    assert verdict["verdict"] == "higher"
    boot = {"bootstrap_std": 2.0, "fraction_a_le_b": 0.6, "resamples": 200}
    assert quality_vs_steps.verdict(table, boot=boot)["verdict"] == "indistinguishable"  # one draw: -1 +- 2


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
    with pytest.raises(SystemExit) as stop:
        fig4_orders.main([str(tmp_path / "x.png"), "--data", str(tmp_path / "missing.json")])
    assert stop.value.code == 2 and "--data: no file" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


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
