"""Fitted solvers in the head-to-head: iPNDM's grid and step weights fitted on calibration noises, run through the
same harness on the case's samples and reported apart with the optimised grids (``optimized_solvers``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pndmkit.schedules import LinearVP


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
