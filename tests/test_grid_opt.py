"""Optimised grids (pndmkit.studies.grid_opt.optimize, pndmkit.studies.grid_opt) and `pndmkit grid optimize`."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

import pndmkit
import pndmkit.studies.grid_opt
from pndmkit.errors import UsageError
from pndmkit.grids import make_grid
from pndmkit.schedules import DiscreteVP, get_schedule
from pndmkit.studies import grid_opt, targets
from pndmkit.studies.targets import StudyTarget, reference_blocks


@pytest.mark.parametrize("method, nfe, steps", [("ddim", 5, 5), ("pie", 7, 3), ("f-pndm", 12, 3), ("plms", 6, 5)])
def test_grid_is_decreasing_with_fixed_ends_and_nfe_consistent_length(method, nfe, steps):
    res = pndmkit.studies.grid_opt.optimize(method, "gmm1d", nfe, calibration=2, heldout=2, maxfev=30)
    sched = DiscreteVP.linear()
    assert res.steps == steps and res.grid.size == steps + 1
    assert res.grid[0] == sched.t_start and res.grid[-1] == sched.t_end and np.all(np.diff(res.grid) < 0)
    assert res.evaluations <= 30


@pytest.mark.parametrize("method", [n for n, s in pndmkit.METHODS.items() if not s.adaptive])
def test_every_registered_method_gets_a_grid_no_worse_on_calibration(method):
    spec = pndmkit.METHODS[method]
    nfe = max(spec.nfe(3), 6)
    res = grid_opt.optimize(method, "gmm1d", nfe, calibration=3, heldout=2, maxfev=12)
    assert res.grid.size == res.steps + 1 and spec.nfe(res.steps) <= nfe < spec.nfe(res.steps + 1)
    start = grid_opt.evaluate(method, "gmm1d", res.start_grid, calibration=0, heldout=3)["error"]
    assert res.calibration_error <= start  # the search keeps its start when nothing is better


def test_grid_family_contains_its_start_and_every_grid_at_full_degree():
    g = make_grid(DiscreteVP.linear(), 7, "karras")
    fam = grid_opt.GridFamily(g, 3)
    assert fam.size == 3
    np.testing.assert_allclose(fam.grid(np.zeros(3)), g, rtol=0, atol=1e-9)
    rng = np.random.default_rng(0)
    for theta in rng.uniform(-5, 5, (20, 3)):  # every parameter vector is a valid grid with the same ends
        h = fam.grid(theta)
        assert h[0] == g[0] and h[-1] == g[-1] and np.all(np.diff(h) < 0)
    np.testing.assert_allclose(fam.theta(fam.grid([0.4, -0.2, 0.1])), [0.4, -0.2, 0.1], atol=1e-12)
    other = make_grid(DiscreteVP.linear(), 7, "uniform")  # degree steps - 1 reaches any grid exactly
    full = grid_opt.GridFamily(g, 6)
    np.testing.assert_allclose(full.grid(full.theta(other)), other, rtol=0, atol=1e-9)
    assert np.max(np.abs(fam.grid(fam.theta(other)) - other)) > 1.0  # degree 3 does not


def test_a_degree_at_the_free_count_frees_every_step_and_says_so():
    capped = grid_opt.optimize("ipndm", "gmm1d", 4, calibration=2, heldout=2, degree=3, maxfev=5)
    free = grid_opt.optimize("ipndm", "gmm1d", 4, calibration=2, heldout=2, degree=None, maxfev=5)
    assert capped.degree == free.degree == 3 and np.array_equal(capped.grid, free.grid)
    assert "3 grid parameters (every step free)" in capped.report()
    assert "(every step free)" not in grid_opt.optimize("ipndm", "gmm1d", 4, calibration=2, heldout=2, degree=2,
                                                        maxfev=5).report()



@pytest.mark.parametrize("steps, degree, times", [
    (4, 4, "3 interior times take a polynomial of degree 1 to 3 (degree 3"),
    (4, 6, "3 interior times take a polynomial of degree 1 to 3 (degree 3"),
    (4, 99, "3 interior times take a polynomial of degree 1 to 3 (degree 3"),
    # a number is never lowered: 2 and 3 on 2 steps were lowered to 1 while 4 was refused
    (2, 2, "1 interior time takes a polynomial of degree 1 (degree 1"),
    (2, 3, "1 interior time takes a polynomial of degree 1 (degree 1"),
])
def test_a_degree_above_what_the_grid_can_use_is_refused_by_name(steps, degree, times):
    """degree=99 on ipndm at NFE 4 (4 steps, 3 interior times) was accepted and silently lowered to 3."""
    with pytest.raises(UsageError, match="^" + re.escape(
            f"degree={degree} is more than a grid of {steps} steps can use: its {times}, or None, 'free' at the "
            "command line, moves every step)") + "$") as info:
        grid_opt.optimize("ipndm", "gmm1d", steps, calibration=2, heldout=2, degree=degree, maxfev=5)
    assert info.value.params == ("degree",)
    assert grid_opt.check_degree(None, 4) == grid_opt.check_degree(3, 4) == 3
    # only the default, "auto", is lowered on grids with fewer steps
    assert grid_opt.optimize("ipndm", "gmm1d", 2, calibration=2, heldout=2, maxfev=5).degree == 1
    assert grid_opt.check_degree("auto", 2) == 1 and grid_opt.check_degree("auto", 9) == grid_opt.DEFAULT_DEGREE
    assert grid_opt.check_degree(2, 6) == 2


def test_a_one_step_grid_takes_no_degree():
    """One step has no interior time: a number is refused by name (it read 'degree 1 to 0'); the default and
    None give no parameters, and the run is handed back marked."""
    for degree in (1, 3, 4):
        with pytest.raises(UsageError, match=rf"^degree={degree} has nothing to move: a grid of 1 step is its two "
                                             r"end times, with no interior time to optimise \(leave degree at "
                                             r"'auto': optimize then searches the first time alone with "
                                             r"first_time='free' and hands the run back marked with 'fixed'; or "
                                             r"give a budget of 2 steps or more\)$") as info:
            grid_opt.check_degree(degree, 1)
        assert info.value.params == ("degree",)
    assert grid_opt.check_degree("auto", 1) == grid_opt.check_degree(None, 1) == 0
    with pytest.warns(grid_opt.GridFallbackWarning, match="one step leaves no interior time"):
        one = grid_opt.optimize("ddim", "gmm1d", 1, calibration=2, heldout=2, maxfev=5, first_time="fixed")
    assert one.degree == 0 and one.evaluations == 0 and one.fell_back
    # with the first time free, it is the one parameter: searched, below 999 only where that helps in sample
    late = grid_opt.optimize("ddim", "gmm1d", 1, calibration=64, heldout=64, maxfev=40, fallback=False)
    assert late.degree == 0 and late.evaluations > 1 and late.first_time == "free"
    assert late.grid[-1] == one.grid[-1] and late.grid[0] <= 999.0
    fixed_error = grid_opt.rms_error(StudyTarget.resolve("gmm1d").study(0, 64), pndmkit.get_method("ddim"),
                                     np.array([999.0, one.grid[-1]]))
    assert late.calibration_error <= fixed_error


@pytest.mark.parametrize("degree", [0, -1, 2.0, True, "Auto", "free"])
def test_a_degree_of_another_kind_is_refused_by_name(degree):
    with pytest.raises(UsageError, match=r"^degree must be an integer >= 1, None \(every step free\) or 'auto' "
                                         rf"\(3, lowered on shorter grids\), got {re.escape(repr(degree))}$"):
        grid_opt.check_degree(degree, 6)


def test_degree_and_start_options():
    free = grid_opt.optimize("ipndm", "gmm2d", 6, calibration=8, heldout=16, degree=None)
    smooth = grid_opt.optimize("ipndm", "gmm2d", 6, calibration=8, heldout=16, degree=2)
    assert free.degree == 5 and smooth.degree == 2 and smooth.evaluations < free.evaluations
    # measured: 82% (free, 500 runs) and 81% (degree 2, 68 runs) smaller held-out errors than quadratic
    assert free.reduction > 0.6 and smooth.reduction > 0.6
    assert np.array_equal(smooth.start_grid, make_grid(DiscreteVP.linear(), 6, "quadratic"))
    again = grid_opt.optimize("ipndm", "gmm2d", 6, calibration=8, heldout=16, degree=2, start=smooth.grid,
                              maxfev=20)
    assert again.calibration_error <= smooth.calibration_error and np.array_equal(again.start_grid, smooth.grid)
    assert grid_opt.optimize("ipndm", "gmm2d", 6, calibration=2, heldout=2, start="karras", maxfev=5).start_grid[1] \
        == make_grid(DiscreteVP.linear(), 6, "karras")[1]


def test_optimised_grid_beats_the_best_builtin_grid_on_held_out_noises():
    res = grid_opt.optimize("ipndm", "gmm2d", 6, calibration=8, heldout=16)
    # never worse than its start on the calibration noises; on held-out noises 82% smaller (measured)
    assert res.reduction > 0.3 and res.heldout_error < min(res.builtin_errors.values())
    assert set(res.builtin_errors) == set(grid_opt.BUILTIN_KINDS) and res.reference_error < 1e-10
    same = grid_opt.evaluate("ipndm", "gmm2d", res.grid, calibration=8, heldout=16, t_start=res.t_start)
    assert same["error"] == res.heldout_error and same["builtin_errors"] == res.builtin_errors
    best = make_grid(DiscreteVP.linear(), 6, res.baseline_kind)
    assert grid_opt.evaluate("ipndm", "gmm2d", best, calibration=8, heldout=16)["reduction"] == 0.0
    d = res.to_dict()
    assert d["reduction"] == res.reduction and len(d["grid"]) == 7 and "held-out" in res.report()
    # the interval is over the same held-out samples as the cut, and the same one evaluate() gives
    low, high = res.heldout_interval
    assert low < res.reduction < high and same["reduction_interval"] == res.heldout_interval
    assert d["heldout_interval"] == [low, high] and "paired bootstrap" in res.report()


def test_reduction_interval_is_paired_and_exact_where_the_cut_is_the_same_in_every_sample():
    rng = np.random.default_rng(3)
    base = rng.chisquare(2, size=50)  # heavy-ish tailed per-sample squared errors
    # the same 4x smaller squared error in every sample: a cut of exactly 50% in every paired resample
    assert grid_opt.reduction_interval(0.25 * base, base) == pytest.approx((0.5, 0.5), abs=1e-12)
    assert grid_opt.reduction_interval(base, base) == pytest.approx((0.0, 0.0), abs=1e-12)
    # a cut that varies over samples: an interval around the point estimate, narrower at a lower level
    mixed = base * rng.uniform(0.1, 1.0, size=50)
    point = 1 - np.sqrt(mixed.mean() / base.mean())
    lo95, hi95 = grid_opt.reduction_interval(mixed, base)
    lo50, hi50 = grid_opt.reduction_interval(mixed, base, level=0.5)
    assert lo95 < lo50 < point < hi50 < hi95
    assert grid_opt.reduction_interval(mixed, base) == (lo95, hi95)  # fixed seed: the same numbers every call
    # too few samples, or resamples with a zero baseline (an unbounded cut): no interval (NaN; None in JSON)
    n = grid_opt.INTERVAL_MIN_SAMPLES
    assert all(np.isnan(grid_opt.reduction_interval(base[:n - 1], base[:n - 1])))
    assert not any(np.isnan(grid_opt.reduction_interval(base[:n], 0.5 * base[:n])))
    assert all(np.isnan(grid_opt.reduction_interval(base[:n], np.zeros(n))))
    assert all(np.isnan(grid_opt.reduction_interval(np.ones(n), np.r_[np.zeros(n - 1), 1.0])))
    one = grid_opt.optimize("ipndm", "gmm1d", 6, calibration=4, heldout=1, maxfev=10)
    assert one.to_dict()["heldout_interval"] == [None, None] and one == one and "bootstrap" not in one.report()
    assert f"no interval of the cut: 1 held-out sample (an interval needs at least {n}" in one.report()
    assert json.loads(json.dumps(one.to_dict()))["heldout_interval"] == [None, None]
    assert one.to_dict()["interval_level"] == 0.95


@pytest.mark.parametrize("errors, baseline, level, params, shown", [
    ([1.0, 2.0], [1.0, 2.0, 3.0], 0.95, ("errors", "baseline"), "got 2 and 3 values"),
    ([[1.0, 2.0]], [1.0, 2.0], 0.95, ("errors",), "shape (1, 2)"),
    ([1.0, 2.0], [1.0, np.nan], 0.95, ("baseline",), "nan at index 1"),
    ([1.0, -2.0], [1.0, 2.0], 0.95, ("errors",), "-2.0 at index 1"),
    ([1.0, np.inf], [1.0, 2.0], 0.95, ("errors",), "inf at index 1"),
    (["a", "b"], [1.0, 2.0], 0.95, ("errors",), "'a'"),
    ([True, False], [1.0, 2.0], 0.95, ("errors",), "bool"),
    ([1.0, 2.0], [1j, 2.0], 0.95, ("baseline",), "complex"),
    ([[1.0], [1.0, 2.0]], [1.0, 2.0], 0.95, ("errors",), "per-sample squared errors"),
    ([1.0, 2.0], [1.0, 2.0], 1.5, ("level",), "1.5"),
    ([1.0, 2.0], [1.0, 2.0], "high", ("level",), "high"),
])
def test_reduction_interval_bad_input_names_the_parameter_and_the_value(errors, baseline, level, params, shown):
    with pytest.raises(UsageError) as info:
        grid_opt.reduction_interval(errors, baseline, level=level)
    assert info.value.params == params and shown in str(info.value)


@pytest.mark.parametrize("args, kwargs, param", [
    (("ddim", "gmm1d", 0), {}, "nfe"),
    (("f-pndm", "gmm1d", 3), {}, "nfe"),
    (("pf", "gmm1d", 10), {}, "method"),
    (("ddim", "gmm1d", 5), {"calibration": 0}, "calibration"),
    (("ddim", "gmm1d", 5), {"degree": 0}, "degree"),
    (("ddim", "gmm1d", 5), {"degree": True}, "degree"),
    (("ddim", "gmm1d", 5), {"start": "nope"}, "start"),
    (("ddim", "gmm1d", 5), {"start": [999.0, 500.0, -1.0]}, "start"),
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
                 "--heldout", "3", "--maxfev", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "ddim" and out["steps"] == 4 and len(out["grid"]) == 5 and out["evaluations"] <= 20
    assert (out["problem"], out["calibration"], out["heldout"], out["seed"]) == ("gmm1d", 2, 3, 0)
    with pytest.raises(SystemExit) as info:
        main(["grid", "optimize", "--method", "ddim", "--nfe", "4"])
    assert info.value.code == 2 and "--problem" in capsys.readouterr().err


@pytest.mark.slow
def test_digits_network_grid_optimisation_runs_on_held_out_noises(tmp_path):
    pytest.importorskip("torch")
    # from t = 100 to abar = 1: the converged reference of the whole interval costs ~12,000 network calls
    res = grid_opt.optimize("ipndm", "digits", 5, t_start=100.0, calibration=2, heldout=2, maxfev=40, cache=tmp_path)
    assert res.grid.size == 6 and res.grid[0] <= 100.0 and res.grid[-1] == -1.0 and res.t_start == 100.0
    assert res.heldout_error > 0 and res.reference_error < 0.01 * res.heldout_error
    assert res.calibration_error <= grid_opt.evaluate("ipndm", "digits", res.start_grid, calibration=0, heldout=2,
                                                      cache=tmp_path)["error"]


@pytest.mark.parametrize("kwargs, param", [
    ({"maxfev": 0}, "maxfev"), ({"maxfev": True}, "maxfev"), ({"maxfev": 2.5}, "maxfev"), ({"maxfev": "8"}, "maxfev"),
    ({"calibration": True}, "calibration"), ({"heldout": 0}, "heldout"), ({"heldout": 10**9}, "heldout"),
    ({"seed": -1}, "seed"), ({"seed": float("nan")}, "seed"), ({"seed": None}, "seed"),
    ({"t_start": True}, "t_start"), ({"t_start": "999"}, "t_start"), ({"t_end": 999.0}, "t_end"),
    ({"kinds": "karras"}, "kinds"), ({"kinds": None}, "kinds"), ({"kinds": ["foo"]}, "kinds"),
    ({"schedule": "linear"}, "schedule"), ({"start": {}}, "start"), ({"start": ["999", "0", "-1"]}, "start"),
    ({"progress": "yes"}, "progress"), ({"cache": "/tmp"}, "cache"), ({"shape": (2,)}, "shape"),
])
def test_bad_keyword_arguments_name_the_parameter(kwargs, param):
    with pytest.raises(UsageError) as info:
        grid_opt.optimize("ipndm", "gmm2d", 6, **kwargs)
    assert param in info.value.params


@pytest.mark.parametrize("args, param", [(("ipndm", "gmm2d", True), "nfe"), (("ipndm", "gmm2d", 10**6), "nfe"),
                                         ((1, "gmm2d", 6), "method"), (("nope", "gmm2d", 6), "method")])
def test_bad_positional_arguments_name_the_parameter(args, param):
    with pytest.raises(UsageError) as info:
        grid_opt.optimize(*args)
    assert param in info.value.params


def test_a_run_with_zero_calibration_error_is_kept_not_a_crash():
    res = grid_opt.optimize("ipndm", "gmm2d", 6, calibration=1, heldout=2, maxfev=20)  # log(0) crashed here
    assert res.grid.size == 7 and np.isfinite(res.heldout_error)
    one = grid_opt.optimize("ddim", "gmm1d", 1, calibration=1, heldout=1, first_time="fixed")
    assert "(1 step), 0 grid parameters, 0 calibration runs" in one.report()
    # with the first time free, one noise of a 1-d problem is met exactly by some first time (error ~1e-16)
    late = grid_opt.optimize("ddim", "gmm1d", 1, calibration=1, heldout=1)
    assert "(1 step), 0 grid parameters and the first time" in late.report() and late.calibration_error < 1e-12


def test_a_one_step_budget_says_what_it_uses_and_that_nothing_was_optimised():
    """f-pndm at NFE 6 runs one four-evaluation step: the report once said 'NFE 6 (1 step)' and gave a
    '+0.0% to +0.0%' interval as if a search had found no gain."""
    with pytest.warns(grid_opt.GridFallbackWarning, match="one step leaves no interior time"):
        res = grid_opt.optimize("f-pndm", "gmm2d", 6, calibration=4, heldout=4, first_time="fixed")
    lines = res.report().splitlines()
    assert lines[0].startswith("f-pndm at NFE 6 (1 step, 4 evaluations used), 0 grid parameters")
    assert lines[2] == "schedule DiscreteVP.linear(T=1000): times from 999 (the noise) to -1"
    assert lines[4] == ("no interval of the cut: one step leaves no interior time to optimise (every grid is the "
                        "two end times; a second step needs NFE 8)")
    assert "+0.0%" not in res.report() and res.grid.tolist() == [999.0, -1.0]
    two = grid_opt.optimize("f-pndm", "gmm2d", 9, calibration=4, heldout=4, maxfev=4)
    assert two.report().startswith("f-pndm at NFE 9 (2 steps, 8 evaluations used)")


def test_blocks_cut_noise_ranges_at_multiples_of_the_block_size():
    assert reference_blocks(0, 96) == [(0, 32), (32, 32), (64, 32)]
    assert reference_blocks(30, 5) == [(30, 2), (32, 3)]
    assert reference_blocks(5, 3, size=4) == [(5, 3)]
    assert reference_blocks(3, 6, size=4) == [(3, 1), (4, 4), (8, 1)]


def test_network_references_are_cached_per_block_and_shared_between_ranges(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr(targets, "REFERENCE_BLOCK", 2)

    def study(first, n):
        return StudyTarget.resolve("digits", t_start=10.0, cache=tmp_path).study(first, n)

    whole = study(0, 5)  # blocks 0-1, 2-3, 4
    assert len(list(tmp_path.iterdir())) == 3 and whole.reference_nfe > 0
    np.testing.assert_array_equal(whole.x_T, StudyTarget.resolve("digits").noises(0, 5))
    again = study(2, 4)  # block 2-3 is read back; 4-5 is a new block (a partial block is keyed by its noises)
    assert len(list(tmp_path.iterdir())) == 4
    np.testing.assert_array_equal(again.reference[:2], whole.reference[2:4])
    assert np.max(np.abs(again.reference[2] - whole.reference[4])) <= 10 * whole.reference_error
    # a part of a cached block is read from it: nothing new is solved or stored
    part = study(1, 2)
    assert len(list(tmp_path.iterdir())) == 4 and part.reference_nfe == 0
    np.testing.assert_array_equal(part.reference, whole.reference[1:3])
    np.testing.assert_array_equal(part.x_T, whole.x_T[1:3])
    # one solve of the same noises agrees with the blocks to within the references' own error estimate
    one = StudyTarget.resolve("digits", t_start=10.0).study(0, 5)
    assert np.max(np.abs(one.reference - whole.reference)) <= 10 * max(one.reference_error, whole.reference_error)


def test_optimized_grid_is_immutable_comparable_and_hashable():
    import copy

    res = grid_opt.optimize("ipndm", "gmm1d", 6, calibration=4, heldout=4, maxfev=30)
    twin = copy.deepcopy(res)
    assert res == twin and hash(res) == hash(twin) and len({res, twin}) == 1
    with pytest.raises(ValueError, match="read-only"):
        res.grid[1] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        res.start_grid[1] = 0.0
    from dataclasses import replace

    assert res != replace(res, seed=res.seed + 1)


@pytest.mark.parametrize("cache", [42, "", b"dir"])
def test_a_network_cache_that_is_not_a_folder_path_names_cache(cache):
    pytest.importorskip("torch")
    with pytest.raises(UsageError, match="cache must be a folder path") as info:
        grid_opt.optimize("ipndm", "digits", 5, cache=cache)
    assert info.value.params == ("cache",)


@pytest.mark.parametrize("call, params, shown", [
    (lambda: grid_opt.evaluate("ipndm", "gmm2d", [5000.0, -1.0]), ("grid",), "grid[0]=5000.0 lies outside"),
    (lambda: grid_opt.evaluate("ipndm", "gmm2d", [999.0, -7.0]), ("grid",), "grid[-1]=-7.0 lies outside"),
    (lambda: grid_opt.evaluate("ipndm", "gmm2d", ["999", "500", "-1"]), ("grid",), "'999'"),
    (lambda: grid_opt.evaluate("ipndm", "gmm2d", [True, False]), ("grid",), "True"),
    (lambda: grid_opt.optimize("ipndm", "gmm2d", 5, t_start=2000.0), ("t_start",), "t_start=2000.0 lies outside"),
    (lambda: grid_opt.optimize("ipndm", "gmm2d", 5, t_end=-5.0), ("t_end",), "t_end=-5.0 lies outside"),
    (lambda: grid_opt.optimize("ipndm", None, 6), ("problem_or_model",), "NoneType"),
    (lambda: grid_opt.optimize("ipndm", "gmm2d", 5, start=[999, "a", -1]), ("start",), "'a'"),
])
def test_times_outside_the_schedule_and_non_numbers_name_the_parameter(call, params, shown):
    with pytest.raises(UsageError) as info:
        call()
    assert info.value.params == params and shown in str(info.value)


def test_a_study_target_is_frozen_and_draws_the_per_sample_noises():
    import dataclasses

    from pndmkit.noise import per_sample_noise

    target = StudyTarget.resolve("gmm2d", seed=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        target.seed = 4
    sched = DiscreteVP.linear()
    assert (target.t_start, target.t_end, target.shape, target.cache) == (sched.t_start, sched.t_end, (2,), None)
    study = target.study(2, 3)
    np.testing.assert_array_equal(study.x_T, per_sample_noise(range(2, 5), (2,), 3).astype(np.float64))
    np.testing.assert_array_equal(target.study(3, 1).x_T, study.x_T[1:2])  # noise i is the same in any range
    with pytest.raises(UsageError) as info:
        StudyTarget.resolve("gmm2d", t_start=10.0, t_end=20.0)
    assert info.value.params == ("t_start", "t_end")


def _mixture_8d() -> "object":
    """An 8-dimensional four-mode mixture, reproducible: the built-in gmm32d family at d = 8, K = 4 (its seed)."""
    from pndmkit.problems.builtin import gmm32d

    return gmm32d(dim=8, n_components=4)


def test_defaults_follow_the_cost_of_a_problem_and_cut_the_held_out_error():
    res = grid_opt.optimize("ipndm", _mixture_8d(), 6)
    assert (res.calibration, res.heldout) == (2048, 2048) and res.first_time == "free" and res.t_start == 999.0
    # measured: 1.307e-2 against quadratic's 1.893e-2 (30.9% smaller, interval 28.2% to 33.5%), first time 782.7
    # (782.7352 when the free search started from the start grid, 782.7305 from the fixed search's best grid)
    assert not res.fell_back and res.fallback_reason == "" and np.array_equal(res.grid, res.searched_grid)
    assert res.baseline_kind == "quadratic" and 0.29 < res.reduction == res.gain < 0.33
    assert res.heldout_interval[0] > 0.26 and "FELL BACK" not in res.report()
    assert 700 < res.grid[0] < 850 and ("first time 782.7305, below the noise's time 999: the noise itself is the "
                                        "state there (scale 1 on this schedule)") in res.report()
    # evaluate() defaults to the same noises; the late first time needs the noise's time
    assert grid_opt.evaluate("ipndm", _mixture_8d(), res.grid, t_start=res.t_start)["error"] == res.heldout_error
    assert grid_opt.evaluate("ipndm", _mixture_8d(), res.grid)["error"] != res.heldout_error  # reference from 782.7


def test_a_grid_whose_held_out_interval_shows_no_gain_falls_back_to_the_best_builtin_grid_and_says_so():
    with pytest.warns(grid_opt.GridFallbackWarning, match="handing back the quadratic grid"):
        res = grid_opt.optimize("ipndm", _mixture_8d(), 6, calibration=8, heldout=16, first_time="fixed")
    # 8 calibration noises: the searched grid is 48.5% worse on held-out noises (interval -82% to -20%)
    assert res.heldout_error > res.baseline_error and res.heldout_interval[1] < 0
    assert res.fell_back and res.gain == 0.0 and res.reduction < 0 and "does not lie above 0" in res.fallback_reason
    assert np.array_equal(res.grid, make_grid(DiscreteVP.linear(), 6, "quadratic"))
    assert not np.array_equal(res.grid, res.searched_grid)
    assert grid_opt.evaluate("ipndm", _mixture_8d(), res.grid, calibration=8, heldout=16)["reduction"] == 0.0
    same = grid_opt.evaluate("ipndm", _mixture_8d(), res.searched_grid, calibration=8, heldout=16)
    assert same["error"] == res.heldout_error
    d = res.to_dict()
    assert d["fell_back"] is True and d["gain"] == 0.0 and d["searched_grid"] == [float(t) for t in res.searched_grid]
    assert "FELL BACK to the best built-in grid (quadratic)" in res.report()
    # without an interval (fewer than 8 held-out noises) no gain is shown either; fallback=False keeps the search
    with pytest.warns(grid_opt.GridFallbackWarning):
        few = grid_opt.optimize("ipndm", "gmm1d", 4, calibration=4, heldout=3, maxfev=20)
    assert few.fell_back and "no interval" in few.fallback_reason
    kept = grid_opt.optimize("ipndm", "gmm1d", 4, calibration=4, heldout=3, maxfev=20, fallback=False)
    assert not kept.fell_back and np.array_equal(kept.grid, few.searched_grid)
    with pytest.raises(UsageError) as info:
        grid_opt.optimize("ipndm", "gmm1d", 4, fallback="yes")
    assert info.value.params == ("fallback",)


def test_cli_grid_optimize_says_when_it_falls_back(capsys):
    from pndmkit.cli import main

    args = ["grid", "optimize", "--method", "ipndm", "--nfe", "4", "--problem", "gmm1d", "--calibration", "4",
            "--heldout", "3", "--maxfev", "20"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "FELL BACK to the best built-in grid" in captured.out and "no interval" in captured.out
    assert "GridFallbackWarning" not in captured.err  # said once, in the report
    assert main(args + ["--no-fallback"]) == 0
    assert "FELL BACK" not in capsys.readouterr().out


def test_network_defaults_are_the_cached_noises_split_in_two_halves_of_whole_blocks(tmp_path):
    pytest.importorskip("torch")
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "analysis" / "results" / "real_cache"
    # the shipped cache holds noises 0-287 (9 blocks of 32) of the digits UNet, seed 0, whole interval
    assert grid_opt.default_noises(StudyTarget.resolve("digits", cache=shipped)) == (128, 160)
    # another interval or seed, no cache, an empty cache: one block each (nothing read, nothing solved here)
    assert grid_opt.default_noises(StudyTarget.resolve("digits", t_start=100.0, cache=shipped)) == (32, 32)
    assert grid_opt.default_noises(StudyTarget.resolve("digits", seed=1, cache=shipped)) == (32, 32)
    assert grid_opt.default_noises(StudyTarget.resolve("digits", cache=tmp_path)) == grid_opt.NETWORK_NOISES
    assert grid_opt.default_noises(StudyTarget.resolve("digits")) == (32, 32)
    # a problem: 2048 noises each up to 8 dimensions, halved as the dimension doubles, at least 256
    assert grid_opt.default_noises(StudyTarget.resolve("gmm2d")) == (2048, 2048) == (grid_opt.PROBLEM_NOISE_RANGE[1],) * 2
    assert grid_opt.default_noises(StudyTarget.resolve(_mixture_8d())) == (2048, 2048)
    assert grid_opt.default_noises(StudyTarget.resolve("gmm32d")) == (512, 512)
    assert grid_opt.default_noises(StudyTarget.resolve("digits-gmm")) == (256, 256) == (grid_opt.PROBLEM_NOISE_RANGE[0],) * 2


@pytest.mark.parametrize("problem, nfe, calibration, heldout", [
    ("gmm1d", 4, 2, 8), ("gmm1d", 6, 4, 16), ("gmm2d", 5, 2, 16), ("gmm2d", 6, 8, 16), ("gmm2d", 8, 3, 8)])
def test_with_the_fallback_the_grid_handed_back_is_never_worse_than_the_baseline_on_its_held_out_noises(
        problem, nfe, calibration, heldout):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", grid_opt.GridFallbackWarning)
        res = grid_opt.optimize("ipndm", problem, nfe, calibration=calibration, heldout=heldout, maxfev=40)
    judged = grid_opt.evaluate("ipndm", problem, res.grid, calibration=calibration, heldout=heldout,
                               t_start=res.t_start)
    assert judged["baseline_kind"] == res.baseline_kind and judged["baseline_error"] == res.baseline_error
    assert judged["error"] <= res.baseline_error
    if res.fell_back:  # the best built-in grid itself, so no cut and no loss
        assert judged["error"] == res.baseline_error and res.gain == 0.0
    else:  # handed back only where the interval shows a gain
        assert res.heldout_interval[0] > 0 and judged["error"] == res.heldout_error < res.baseline_error


def test_optimize_is_reproducible_given_a_seed_and_the_seed_picks_the_noises():
    first = grid_opt.optimize("ipndm", "gmm2d", 6, calibration=8, heldout=8, maxfev=40)
    again = grid_opt.optimize("ipndm", "gmm2d", 6, calibration=8, heldout=8, maxfev=40)
    assert first == again and first.grid.tobytes() == again.grid.tobytes()
    other = grid_opt.optimize("ipndm", "gmm2d", 6, calibration=8, heldout=8, maxfev=40, seed=1)
    assert other.seed == 1 and other.calibration_error != first.calibration_error
    assert other.builtin_errors != first.builtin_errors  # other held-out noises too


def test_a_problems_reference_is_solved_once_for_many_optimisations_and_results_are_unchanged(monkeypatch):
    """Optimisations of several methods and NFEs on the same calibration noises share one reference solve of
    those noises (and one of the held-out ones): counted at the solver, and every result equals the result of
    the same optimisation with the memory emptied before it (the reference solved afresh)."""
    from pndmkit.problems import GaussianMixture

    calls = []
    solve = GaussianMixture.reference

    def counted(self, x_T, *args, **kwargs):
        calls.append((len(x_T), kwargs["rtol"]))
        return solve(self, x_T, *args, **kwargs)

    monkeypatch.setattr(GaussianMixture, "reference", counted)
    jobs = [("ipndm", 5), ("ipndm", 8), ("ddim", 6), ("unipc-3", 6)]

    def run(method, nfe):
        return grid_opt.optimize(method, "gmm2d", nfe, calibration=24, heldout=12, maxfev=20, fallback=False)

    fresh = []
    for job in jobs:
        targets.clear_problem_references()
        fresh.append(run(*job))
    # each optimisation from an empty memory solves both noise sets at both tolerances
    assert calls == [(24, 1e-12), (24, 1e-13), (12, 1e-12), (12, 1e-13)] * len(jobs)
    calls.clear()
    targets.clear_problem_references()
    shared = [run(*job) for job in jobs]
    assert calls == [(24, 1e-12), (24, 1e-13), (12, 1e-12), (12, 1e-13)]  # once, for all four optimisations
    assert shared == fresh and all(a.grid.tobytes() == b.grid.tobytes() for a, b in zip(shared, fresh))
    # another interval, other noises or another mixture is another solve
    calls.clear()
    grid_opt.optimize("ipndm", "gmm2d", 5, calibration=24, heldout=12, maxfev=20, seed=1, fallback=False)
    grid_opt.optimize("ipndm", "gmm2d", 5, t_end=0.5, calibration=24, heldout=12, maxfev=20, fallback=False)
    gm = pndmkit.problems.get_problem("gmm2d")
    other = GaussianMixture(gm.weights, gm.means + 1e-9, gm.covs)
    grid_opt.optimize("ipndm", other, 5, calibration=24, heldout=12, maxfev=20, fallback=False)
    assert len(calls) == 12


def test_a_problem_reference_read_back_is_a_copy_and_the_memory_is_bounded(monkeypatch):
    gm = pndmkit.problems.get_problem("gmm2d")
    target = StudyTarget.resolve(gm)
    targets.clear_problem_references()
    a = target.study(0, 8)
    a.reference[:] = 0.0  # a caller that writes into its study does not change the next one
    b = target.study(0, 8)
    assert np.all(b.reference != 0.0)
    np.testing.assert_array_equal(b.reference, StudyTarget.resolve("gmm2d").study(0, 8).reference)
    # the memory keeps at most PROBLEM_REFERENCE_BYTES: past it the least recently used entry goes
    monkeypatch.setattr(targets, "PROBLEM_REFERENCE_BYTES", 2 * b.reference.nbytes)
    targets.clear_problem_references()
    for first in (0, 8, 16):
        target.study(first, 8)
    assert len(targets._PROBLEM_REFERENCES) == 2


def test_a_problem_reference_larger_than_the_cap_is_solved_and_returned_but_not_kept(monkeypatch):
    gm = pndmkit.problems.get_problem("gmm2d")
    sched = get_schedule("linear-vp")
    x_T = np.random.default_rng(0).standard_normal((8, 2))
    targets.clear_problem_references()
    kept, kept_err = targets.problem_reference(gm, x_T, sched, sched.t_start, sched.t_end)
    assert len(targets._PROBLEM_REFERENCES) == 1
    # a cap below one result's size: the result is still solved and returned, equal bit for bit, but the
    # memory neither keeps it nor drops what it held to make room for it
    monkeypatch.setattr(targets, "PROBLEM_REFERENCE_BYTES", kept.nbytes - 1)
    calls = []
    solve = type(gm).reference

    def counted(self, *args, **kwargs):
        calls.append(kwargs["rtol"])
        return solve(self, *args, **kwargs)

    monkeypatch.setattr(type(gm), "reference", counted)
    y_T = x_T + 1.0
    for _ in range(2):  # not kept: each call solves it again
        big, big_err = targets.problem_reference(gm, y_T, sched, sched.t_start, sched.t_end)
    assert calls == [1e-12, 1e-13, 1e-12, 1e-13]
    assert len(targets._PROBLEM_REFERENCES) == 1  # only the entry kept under the old cap
    first, _ = targets.problem_reference(gm, x_T, sched, sched.t_start, sched.t_end)
    assert first.tobytes() == kept.tobytes() and len(calls) == 4  # still read back, not solved
    targets.clear_problem_references()
    monkeypatch.setattr(targets, "PROBLEM_REFERENCE_BYTES", 2**30)
    again, again_err = targets.problem_reference(gm, y_T, sched, sched.t_start, sched.t_end)
    assert big.tobytes() == again.tobytes() and big_err == again_err
    assert big.shape == (8, 2) and big.dtype == np.float64


@pytest.mark.parametrize("schedule", ["edm", "ve"])
def test_a_study_target_off_vp_starts_from_the_family_s_pure_noise(schedule):
    """Off VP the start is scale(t_start) times unit noise (80.006 on EDM), as make_study draws it: unit noise
    started every optimisation run 50-80 times too small, with a PriorScaleWarning from pndmkit's own call and
    errors that meant nothing (9e-8 held out)."""
    import warnings

    from pndmkit.noise import per_sample_noise
    from pndmkit.sampling import PriorScaleWarning
    from pndmkit.schedules import get_schedule
    from pndmkit.studies.targets import StudyTarget

    sched = get_schedule(schedule)
    target = StudyTarget.resolve("gmm2d", schedule=sched)
    unit = per_sample_noise(range(3, 7), (2,), 0).astype(np.float64)
    np.testing.assert_array_equal(target.noises(3, 4), unit * float(sched.scale(sched.t_start)))
    assert float(sched.scale(sched.t_start)) > 50
    with warnings.catch_warnings():
        warnings.simplefilter("error", PriorScaleWarning)
        result = grid_opt.optimize("ipndm", "gmm2d", 6, schedule=sched, calibration=16, heldout=16)
    assert result.heldout_error > 1e-4  # a real few-step error at the family's scale, not the 9e-8 of tiny starts


def test_a_grid_kind_named_twice_is_refused():
    """The CLI refuses a value named twice in its list options; optimize's kinds= ran both silently."""
    from pndmkit.errors import UsageError

    with pytest.raises(UsageError, match=r"^kinds names \['uniform'\] more than once in \['uniform', 'quadratic', "
                                         r"'uniform'\]; name each grid kind once$"):
        grid_opt.optimize("ipndm", "gmm2d", 6, kinds=["uniform", "quadratic", "uniform"], calibration=8, heldout=8)


# -- the first time: searched below t_start by default --------------------------------------------------------
def test_a_late_first_time_starts_from_the_noise_at_that_time_s_scale():
    """On VP the noise is the state at any first time (the same array); on EDM pure noise of that time, the noise
    times scale(first) / scale(t_start); a grid above the noise's time is refused."""
    vp, edm = DiscreteVP.linear(), get_schedule("edm")
    x = np.arange(6.0).reshape(3, 2)
    assert grid_opt.noise_at(vp, x, 999.0, 700.0) is x
    t_low = float(edm.t_start) / 2
    np.testing.assert_allclose(grid_opt.noise_at(edm, x, edm.t_start, t_low),
                               x * float(edm.scale(t_low)) / float(edm.scale(edm.t_start)), rtol=1e-15)
    assert float(edm.scale(t_low)) / float(edm.scale(edm.t_start)) < 0.9
    study = StudyTarget.resolve("gmm2d").study(0, 4)
    spec = pndmkit.get_method("ipndm")
    late = make_grid(vp, 6, "quadratic", t_start=800.0)
    # the state at 800 is the noise itself, the reference the flow from 999: the error of the late start counts
    plain = pndmkit.sample(lambda x, t: study.problem.eps(x, t, vp), study.x_T, schedule=vp, method="ipndm",
                           grid=late).x
    expected = np.mean((plain - study.reference) ** 2, axis=1)
    np.testing.assert_array_equal(grid_opt.sample_errors(study, spec, late), expected)
    with pytest.raises(ValueError, match=r"first time 1000 is above the noise's time t_start=999"):
        grid_opt.sample_errors(study, spec, np.r_[1000.0, late[1:]])


def test_free_first_time_family_round_trips_a_late_start():
    g = make_grid(DiscreteVP.linear(), 5, "quadratic")
    family = grid_opt.GridFamily(g, 3)
    free = grid_opt.FreeFirstTime(family, 999.0)
    late = g.copy()
    late[0] = 900.0
    f = free.fraction(late)
    assert f == pytest.approx((999.0 - 900.0) / (999.0 - g[1]))
    np.testing.assert_allclose(free.grid(np.append(np.zeros(3), f)), late, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="the family must start at t_top=800"):
        grid_opt.FreeFirstTime(family, 800.0)


def test_the_free_first_time_never_ends_worse_on_calibration_than_the_fixed_one():
    """The free family holds every grid of the fixed one, yet searched from the start grid the free search stalled
    above the fixed search's calibration error (EDM, iPNDM at NFE 6, 16 calibration noises: 1.71e-2 against
    1.16e-2, the first time at 30.13 and a first step 2e-4 long). It now runs the fixed search first, with the budget a fixed search
    takes by default, and searches the first time from that search's best grid."""
    kwargs = dict(schedule=get_schedule("edm"), calibration=16, heldout=8, fallback=False)
    fixed = grid_opt.optimize("ipndm", "gmm2d", 6, first_time="fixed", **kwargs)
    free = grid_opt.optimize("ipndm", "gmm2d", 6, **kwargs)
    assert free.calibration_error <= fixed.calibration_error
    # the fixed phase is the fixed search itself, run for run; the free phase spends the rest of the 400 runs
    assert free.fixed_calibration_error == fixed.calibration_error == fixed.fixed_calibration_error
    assert free.fixed_evaluations == fixed.evaluations == fixed.fixed_evaluations <= 300 < free.evaluations <= 400
    assert fixed.first_time_won == "fixed" and fixed.searched_grid[0] == 80.0
    won = free.first_time_won
    assert won == ("free" if free.searched_grid[0] < 80.0 else "fixed")
    line = next(ln for ln in free.report().splitlines() if ln.startswith("first time searched: "))
    assert f"({free.fixed_evaluations} of the {free.evaluations} runs with it at 80, " in line
    assert (f"{free.fixed_calibration_error:.3e} with the best grid from 80" in line) == (won == "free")
    assert "first time searched" not in fixed.report()
    d = free.to_dict()
    assert (d["first_time_won"], d["fixed_calibration_error"], d["fixed_evaluations"]) == (
        won, free.fixed_calibration_error, free.fixed_evaluations)
    # maxfev stays the whole budget: a quarter of it (one share in four parameters) is the free phase's
    capped = grid_opt.optimize("ipndm", "gmm2d", 6, maxfev=40, **kwargs)
    assert capped.evaluations <= 40 and capped.fixed_evaluations <= 30


def test_a_start_grid_may_start_late_only_with_a_free_first_time():
    g = make_grid(DiscreteVP.linear(), 6, "quadratic")
    late = g.copy()
    late[0] = 850.0
    res = grid_opt.optimize("ipndm", "gmm2d", 6, calibration=16, heldout=16, start=late, maxfev=30, fallback=False)
    assert np.array_equal(res.start_grid, late) and res.grid[0] <= 999.0 and res.first_time == "free"
    start_error = grid_opt.rms_error(StudyTarget.resolve("gmm2d").study(0, 16), pndmkit.get_method("ipndm"), late)
    assert res.calibration_error <= start_error
    with pytest.raises(UsageError, match=r"^start must be a decreasing grid of 7 times from 999 \(first_time="
                                         r"'fixed'\) to -1 \(ipndm at NFE 6 takes 6 steps\), got \[850"):
        grid_opt.optimize("ipndm", "gmm2d", 6, calibration=16, heldout=16, start=late, first_time="fixed")
    with pytest.raises(UsageError) as info:
        grid_opt.optimize("ipndm", "gmm2d", 6, first_time="late")
    assert info.value.params == ("first_time",) and "'free', 'fixed'" in str(info.value)


def test_evaluate_takes_the_noise_s_time_for_a_late_grid():
    res = grid_opt.optimize("ipndm", "gmm2d", 6, calibration=32, heldout=32, maxfev=60, fallback=False)
    assert res.grid[0] < 999.0  # measured: about 860 on gmm2d
    again = grid_opt.evaluate("ipndm", "gmm2d", res.grid, calibration=32, heldout=32, t_start=999.0)
    assert again["error"] == res.heldout_error and again["baseline_error"] == res.baseline_error
    with pytest.raises(UsageError) as info:
        grid_opt.evaluate("ipndm", "gmm2d", res.grid, t_start=float(res.grid[0]) - 1.0)
    assert info.value.params == ("t_start",) and "below the grid's first time" in str(info.value)


def test_cli_grid_optimize_first_time(capsys):
    from pndmkit.cli import main

    base = ["grid", "optimize", "--method", "ddim", "--problem", "gmm1d", "--calibration", "8", "--heldout", "8",
            "--maxfev", "20", "--json", "--no-fallback"]
    assert main(base + ["--nfe", "4"]) == 0
    free = json.loads(capsys.readouterr().out)
    assert free["first_time"] == "free" and free["t_start"] == 999.0 and free["grid"][0] <= 999.0
    assert main(base + ["--nfe", "4", "--first-time", "fixed"]) == 0
    fixed = json.loads(capsys.readouterr().out)
    assert fixed["first_time"] == "fixed" and fixed["grid"][0] == 999.0
    # one step: nothing to search with the first time fixed, the first time alone with it free
    with pytest.raises(SystemExit):
        main(base + ["--nfe", "1", "--first-time", "fixed"])
    assert "or --first-time free (the first time is then searched)" in capsys.readouterr().err
    assert main(base + ["--nfe", "1"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["steps"] == 1 and one["evaluations"] > 1 and one["degree"] == 0


def test_a_late_first_time_off_vp_is_judged_alike_on_a_network_and_on_the_problem():
    """A network's study judged a late first time from the unscaled noise (0.079 against 0.0061 on flow
    matching); now both paths start from noise_at's state, and the report names the factor and the call."""
    pytest.importorskip("torch")
    import torch
    from dataclasses import replace

    from pndmkit.schedules import get_schedule

    sched = get_schedule("flow")
    gm = pndmkit.problems.get_problem("gmm2d")
    net = StudyTarget.resolve(lambda x, t: torch.as_tensor(gm.eps(x.numpy(), float(t), sched)), sched,
                              shape=(2,)).study(0, 16)
    problem = StudyTarget.resolve("gmm2d", sched).study(0, 16)
    net = replace(net, reference=problem.reference)  # the same reference: only the start is compared
    grid = np.array([0.8, 0.6, 0.4, 0.25, 0.12, 0.04, 0.0])
    spec = pndmkit.get_method("ipndm")
    np.testing.assert_allclose(grid_opt.sample_errors(net, spec, grid), grid_opt.sample_errors(problem, spec, grid),
                               rtol=1e-8)
    res = grid_opt.OptimizedGrid(method="ipndm", nfe=6, steps=6, grid=grid, calibration_error=0.0, heldout_error=0.0,
                                 baseline_kind="quadratic", baseline_error=1.0, first_time="free",
                                 t_start=sched.t_start, schedule=repr(sched),
                                 start_scale=float(sched.scale(0.8) / sched.scale(sched.t_start)))
    line = res.late_start()
    assert line.startswith(f"first time 0.8, below the noise's time {sched.t_start:.7g}: the state there is the noise "
                           f"times {res.start_scale:.6g} = scale(0.8) / scale(0.999)")
    assert "grid_opt.noise_at(schedule, x_T, 0.999, 0.8)" in line and line in res.report()
    assert f"schedule {sched!r}: times from 0.999 (the noise) to 0" in res.report()


def test_evaluate_takes_the_optimised_grid_itself_and_a_one_step_free_search_reports_its_interval():
    res = grid_opt.optimize("f-pndm", "gmm2d", 6, calibration=64, heldout=64)
    assert res.steps == 1 and res.first_time == "free" and res.grid[0] < 999.0 and not res.fell_back
    lines = res.report().splitlines()
    assert lines[0].startswith("f-pndm at NFE 6 (1 step, 4 evaluations used), 0 grid parameters and the first time")
    assert "one step leaves no interior time" not in res.report() and "95% interval of the cut" in res.report()
    assert res.schedule == "DiscreteVP.linear(T=1000)" and res.start_scale == 1.0
    assert "the noise itself is the state there (scale 1 on this schedule)" in res.report()
    again = grid_opt.evaluate("f-pndm", "gmm2d", res)  # its grid, noises and noise time
    assert again["error"] == res.heldout_error and again["baseline_error"] == res.baseline_error
    assert tuple(again["reduction_interval"]) == res.heldout_interval
    with pytest.raises(UsageError) as info:
        grid_opt.evaluate("ipndm", "gmm2d", res)
    assert info.value.params == ("method", "grid") and "optimised for 'f-pndm'" in str(info.value)
    d = res.to_dict()
    assert (d["schedule"], d["start_scale"], d["t_start"], d["first_time"]) == (res.schedule, 1.0, 999.0, "free")


def test_a_result_describes_the_grid_it_hands_back_and_is_judged_on_its_own_schedule():
    """After a fallback the report and start_scale described the discarded late grid (following them with the
    handed-back grid cost 9x); evaluate(res) read EDM times as DDPM timesteps (a -519% verdict); noise_at took a
    first time above t_start."""
    from pndmkit.schedules import get_schedule

    flow, edm = get_schedule("flow"), get_schedule("edm")
    with pytest.warns(grid_opt.GridFallbackWarning):
        fell = grid_opt.optimize("ipndm", "gmm2d", 6, schedule=flow, calibration=128, heldout=128)
    assert fell.fell_back and fell.searched_grid[0] < fell.t_start == fell.grid[0]  # measured: searched 0.835
    assert fell.start_scale == 1.0 and "the state there is the noise times" not in fell.report()
    res = grid_opt.optimize("ipndm", "gmm2d", 6, schedule=edm, calibration=64, heldout=64)
    with pytest.raises(UsageError) as info:
        grid_opt.evaluate("ipndm", "gmm2d", res)
    assert info.value.params == ("schedule",) and "grid was optimised on EDM(" in str(info.value)
    assert grid_opt.evaluate("ipndm", "gmm2d", res, schedule=edm)["error"] == res.heldout_error
    with pytest.raises(ValueError, match=r"^first=20\.0 must be at or below t_start=10\.0"):
        grid_opt.noise_at(edm, np.ones(2), 10.0, 20.0)


def test_the_report_prints_times_that_paste_back_as_the_same_grid():
    """The report printed 4 significant digits: on EDM a searched grid read 'grid: 9.587 9.587 1.874 ...', which
    --grid and pndmkit.sample refuse as not decreasing; 7 digits keep every searched time apart here."""
    res = grid_opt.optimize("ipndm", "gmm2d", 6, calibration=16, heldout=16, maxfev=30, fallback=False)
    line = next(ln for ln in res.report().splitlines() if ln.startswith("grid: "))
    pasted = np.array([float(v) for v in line[len("grid: "):].split()])
    np.testing.assert_allclose(pasted, res.grid, rtol=1e-6, atol=0)
    assert np.all(np.diff(pasted) < 0)


def test_a_result_optimised_on_other_betas_is_refused_on_the_default_table_and_judged_on_its_own():
    """The recorded schedule was its repr, which left the betas out: a grid optimised on Stable Diffusion's linear
    table recorded 'DiscreteVP.linear(T=1000)' and evaluate(res) judged it on the DDPM table without a word
    (error 0.00835 against 0.00567 on its own table)."""
    from pndmkit.schedules import DiscreteVP, schedule_key

    sd = DiscreteVP.linear(beta_start=0.00085, beta_end=0.012)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", grid_opt.GridFallbackWarning)
        res = grid_opt.optimize("ipndm", "gmm2d", 5, schedule=sd, calibration=16, heldout=16, maxfev=20)
    assert res.schedule == schedule_key(sd) == "DiscreteVP.linear(T=1000, beta_start=0.00085, beta_end=0.012)"
    assert f"schedule {res.schedule}: times from 999" in res.report()
    for judged_on in (None, DiscreteVP.linear()):  # the target's default table, or the default table given
        with pytest.raises(UsageError) as info:
            grid_opt.evaluate("ipndm", "gmm2d", res, schedule=judged_on)
        assert info.value.params == ("schedule",)
        assert str(info.value).startswith("grid was optimised on DiscreteVP.linear(T=1000, beta_start=0.00085, "
                                          "beta_end=0.012), and this evaluation runs on DiscreteVP.linear(T=1000): ")
    # an equal table built again is the same schedule, and the numbers are the optimisation's held-out ones
    again = grid_opt.evaluate("ipndm", "gmm2d", res, schedule=DiscreteVP.linear(beta_start=0.00085, beta_end=0.012))
    assert again["error"] == res.heldout_error and again["baseline_error"] == res.baseline_error
