"""``python -m paper_figures --quick``: every figure and table is produced, non-empty, with the expected layout.

Figures that need the shipped digits model or ``pndmkit compare``'s results may skip, but only with the
reason that they are missing; every other figure must be produced.
"""

from __future__ import annotations

import csv
import json
import math

import pytest

pytest.importorskip("matplotlib")
pytestmark = pytest.mark.slow  # ~40-90 s on 2 shared cores (digits sampling and the compare quick run)

from analysis import gradient_change, quality_mixture, quality_vs_steps  # noqa: E402
from paper_figures import FIGURES, main  # noqa: E402

#: figures that may skip, and the words their skip reason must contain
MAY_SKIP = {"fig1_samples": "digits", "fig2_quality_digits": "digits", "fig7_peers": "compare"}
#: extra files (besides NAME.png/.pdf/.txt) written by some figures
EXTRA = {"fig2_quality_digits": ["table1_digits_fid.md", "claim_pndm_vs_ddim.json"],
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


def test_png_files_are_images(quick_run):
    out, outcomes, _ = quick_run
    for name, outcome in outcomes.items():
        if not outcome["skipped"]:
            assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"


def test_quick_results_never_touch_the_committed_tables(quick_run):
    out, _, _ = quick_run
    assert (out / "results" / "quality_mixture.csv").is_file()


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


def test_orders_json(quick_run):
    out, _, _ = quick_run
    data = json.loads((out / "results" / "orders.json").read_text())
    import pndmkit

    assert set(data["methods"]) == set(pndmkit.METHODS)
    for name, r in data["methods"].items():
        assert len(r["steps"]) == len(r["nfe"]) == len(r["errors"]) >= 2, name
        assert r["declared_order"] == pndmkit.METHODS[name].order


def test_gradient_change_and_manifold_tables(quick_run):
    out, _, _ = quick_run
    rows = read_rows(out / "results" / "gradient_change.csv")
    assert list(rows[0]) == gradient_change.COLUMNS
    steps = gradient_change.SIZES[True]["steps"][0]
    mixture = [r for r in rows if r["source"] == "gmm32d"]
    assert len(mixture) == steps - 1  # one eps per grid time but the last (t = -1)
    assert all(-1.0 - 1e-9 <= float(r["cosine_median"]) <= 1.0 + 1e-9 for r in rows)
    data = json.loads((out / "results" / "manifold.json").read_text())
    case = data["cases"]["gmm2d"]
    assert set(case["methods"]) == {"euler", "fon", "ddim", "f-pndm", "exact"}
    for r in case["methods"].values():
        assert len(r["norm_rms"]) == len(case["times"]) == len(r["points"])


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
    assert verdict["holds"] in (True, False)
