"""Optimised grids (pndmkit.grids.optimize, pndmkit.studies.grid_opt) and `pndmkit grid optimize`."""

from __future__ import annotations

import json

import numpy as np
import pytest

import pndmkit.grids
from pndmkit.errors import UsageError
from pndmkit.grids import make_grid
from pndmkit.schedules import DiscreteVP
from pndmkit.studies import grid_opt


@pytest.mark.parametrize("method, nfe, steps", [("ddim", 5, 5), ("pie", 7, 3), ("f-pndm", 12, 3), ("plms", 6, 5)])
def test_grid_is_decreasing_with_fixed_ends_and_nfe_consistent_length(method, nfe, steps):
    res = pndmkit.grids.optimize(method, "gmm1d", nfe, calibration=2, heldout=2, maxfev=30)
    sched = DiscreteVP.linear()
    assert res.steps == steps and res.grid.size == steps + 1
    assert res.grid[0] == sched.t_start and res.grid[-1] == sched.t_end and np.all(np.diff(res.grid) < 0)
    assert res.evaluations <= 30


def test_parametrisation_round_trips_every_decreasing_grid():
    g = make_grid(DiscreteVP.linear(), 7, "karras")
    np.testing.assert_allclose(grid_opt._grid_of(grid_opt._theta_of(g), g[0], g[-1]), g, rtol=0, atol=1e-9)
    rng = np.random.default_rng(0)
    for theta in rng.uniform(-5, 5, (20, 3)):  # every moderate parameter vector is a valid grid
        g = grid_opt._grid_of(theta, 10.0, 0.0)
        assert g[0] == 10.0 and g[-1] == 0.0 and np.all(np.diff(g) < 0)


def test_optimised_grid_beats_the_best_builtin_grid_on_held_out_noises():
    res = grid_opt.optimize("ipndm", "gmm2d", 6, calibration=8, heldout=16)
    # never worse than its start on the calibration noises; on held-out noises 82% smaller (measured)
    assert res.reduction > 0.3 and res.heldout_error < min(res.builtin_errors.values())
    assert set(res.builtin_errors) == set(grid_opt.BUILTIN_KINDS) and res.reference_error < 1e-10
    same = grid_opt.evaluate("ipndm", "gmm2d", res.grid, calibration=8, heldout=16)
    assert same["error"] == res.heldout_error and same["builtin_errors"] == res.builtin_errors
    best = make_grid(DiscreteVP.linear(), 6, res.baseline_kind)
    assert grid_opt.evaluate("ipndm", "gmm2d", best, calibration=8, heldout=16)["reduction"] == 0.0
    d = res.to_dict()
    assert d["reduction"] == res.reduction and len(d["grid"]) == 7 and "held-out" in res.report()


@pytest.mark.parametrize("args, kwargs, param", [
    (("ddim", "gmm1d", 0), {}, "nfe"),
    (("f-pndm", "gmm1d", 3), {}, "nfe"),
    (("pf", "gmm1d", 10), {}, "method"),
    (("ddim", "gmm1d", 5), {"calibration": 0}, "calibration"),
    (("ddim", "gmm1d", 5), {"kinds": ("karras",)}, None),
])
def test_bad_input_names_the_parameter(args, kwargs, param):
    if param is None:  # a karras grid of 5 steps exists: no error
        assert grid_opt.optimize(*args, calibration=1, heldout=1, maxfev=5, **kwargs).baseline_kind == "karras"
        return
    with pytest.raises(UsageError) as info:
        grid_opt.optimize(*args, **kwargs)
    assert param in info.value.params


def test_cli_grid_optimize_json(capsys):
    from pndmkit.cli import main

    assert main(["grid", "optimize", "--method", "ddim", "--nfe", "4", "--problem", "gmm1d", "--calibration", "2",
                 "--heldout", "3", "--maxfev", "20", "--json"]) in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "ddim" and out["steps"] == 4 and len(out["grid"]) == 5 and out["evaluations"] <= 20
    with pytest.raises(SystemExit) as info:
        main(["grid", "optimize", "--method", "ddim", "--nfe", "4"])
    assert info.value.code == 2 and "--problem" in capsys.readouterr().err


@pytest.mark.slow
def test_digits_network_grid_optimisation_runs_on_held_out_noises(tmp_path):
    pytest.importorskip("torch")
    res = grid_opt.optimize("ipndm", "digits", 5, calibration=2, heldout=2, maxfev=40, cache=tmp_path)
    assert res.grid.size == 6 and res.heldout_error > 0 and res.reference_error < 0.01 * res.heldout_error
