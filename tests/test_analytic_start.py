"""The analytic start of ``analysis/analytic_start``: a Gaussian law's flow carried from ``t = 999`` is the closed form.

For data ``N(mu, C)`` under a VP schedule the probability-flow ODE keeps, in the eigenbasis of ``C`` (eigenvalues
``lam``), each coordinate of ``x - sqrt(abar) mu`` divided by ``sqrt(abar lam + 1 - abar)`` constant, so
``x(t1) = sqrt(abar1) mu + U diag(sqrt((abar1 lam + 1 - abar1) / (abar0 lam + 1 - abar0))) U^T (x(t0) - sqrt(abar0) mu)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from pndmkit.problems import GaussianMixture
from pndmkit.schedules import DiscreteVP


def closed_form(mu, cov, x, abar0, abar1):
    lam, U = np.linalg.eigh(cov)
    w = np.sqrt((abar1 * lam + 1 - abar1) / (abar0 * lam + 1 - abar0))
    return np.sqrt(abar1) * mu + ((x - np.sqrt(abar0) * mu) @ U * w) @ U.T


@pytest.mark.parametrize("t1", [800.0, 600.0, 100.0])
def test_a_gaussian_start_is_the_closed_form_flow(t1):
    from analysis.analytic_start import carry

    rng = np.random.default_rng(3)
    d = 6
    a = rng.standard_normal((d, d)) * 0.3
    mu, cov = rng.standard_normal(d) * 0.5, a @ a.T + 0.01 * np.eye(d)
    law = GaussianMixture([1.0], mu[None], cov[None])
    schedule = DiscreteVP.linear()
    x_T = rng.standard_normal((5, 1, d))  # a channel axis, as images have: carry keeps the shape
    got = carry(law, x_T, schedule, t1)
    want = closed_form(mu, cov, x_T.reshape(5, d), float(schedule.abar(999.0)), float(schedule.abar(t1)))
    assert got.shape == x_T.shape
    np.testing.assert_allclose(got.reshape(5, d), want, rtol=0, atol=1e-7)
    assert np.max(np.abs(got.reshape(5, d) - x_T.reshape(5, d))) > 1e-2  # it moved: not the identity start


def test_the_identity_start_and_a_start_at_the_top_leave_x_T():
    from analysis.analytic_start import carry

    x_T = np.random.default_rng(0).standard_normal((2, 3))
    schedule = DiscreteVP.linear()
    assert carry(None, x_T, schedule, 600.0) is x_T
    assert carry(GaussianMixture([1.0], np.zeros((1, 3)), np.eye(3)[None]), x_T, schedule, 999.0) is x_T
