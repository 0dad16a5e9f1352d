"""The head-to-head without diffusers: grids from the registry in pndmkit/grids.py, the command's promises."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pndmkit.grids import DISCRETE_SPACINGS, GRID_KINDS, GRIDS, S_FLOOR, make_grid
from pndmkit.schedules import DiscreteVP, LinearVP
from pndmkit.studies import compare as cmp


def test_registry_describes_every_grid_kind_once():
    assert tuple(GRID_KINDS) == GRIDS
    assert {k for k, g in GRID_KINDS.items() if g.discrete_only} == set(DISCRETE_SPACINGS) - {"linspace"}
    assert [k for k, g in GRID_KINDS.items() if g.default_for] == ["uniform", "leading"]
    assert all(g.same_as in (None, *GRIDS) for g in GRID_KINDS.values())


@pytest.mark.parametrize("schedule, expected", [
    (DiscreteVP.linear(), ["leading", "uniform", "quadratic", "logsnr", "karras", "s-uniform", "trailing"]),
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
    assert set(cmp.SHARED_GRIDS) == {"leading", "linspace", "trailing", "uniform", "karras", "logsnr"}
    np.testing.assert_array_equal(make_grid(DiscreteVP.linear(), 4, "karras")[-2:], [0.0, -1.0])  # first index


# -- the command line (issue 11: promises in --help hold) ---------------------------------------------------
TINY = ["compare", "--problem", "gmm2d", "--schedule", "discrete-linear", "--nfe", "5", "10", "--n", "16",
        "--methods", "ddim", "ipndm", "--no-grids"]


def test_peers_with_no_names_runs_pndmkit_alone_and_reports_a_table(capsys):
    from pndmkit.cli import main

    assert main([*TINY, "--peers"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["NFE", "best", "pndmkit"]
    rows = [line.split() for line in lines[1:]]
    assert [r[0] for r in rows] == ["5", "10"]
    for r in rows:
        assert r[1] in ("ddim", "ipndm") and float(r[3]) > 0 and r[4:] == ["-", "-", "-"]  # no peer, no ratio
    assert float(rows[1][3]) < float(rows[0][3])  # more NFE, smaller error


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
    assert sorted(p.name for p in out.iterdir()) == ["compare.csv", "compare.json", "compare.md", "compare_runs.csv"]
    assert not any((tmp_path / "analysis" / "results").iterdir())
    saved = json.loads((out / "compare.json").read_text())
    assert set(saved["by_nfe"]) == {"5", "10"}
    assert "| 5 | " in (out / "compare.md").read_text()
    capsys.readouterr()


# -- the top level is the schedule's (issue 11) -------------------------------------------------------------
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
