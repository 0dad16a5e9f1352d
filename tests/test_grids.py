"""Timestep grids and the index conventions of the peers."""

import numpy as np
import pytest

from pndmkit.grids import GRIDS, make_grid
from pndmkit.schedules import CosineVP, DiscreteVP, LinearVP


def test_leading_spacing_of_50_steps_starts_at_980():
    g = make_grid(DiscreteVP.linear(), 50, "leading")
    assert g[0] == 980 and g[-2] == 0 and g[-1] == -1 and len(g) == 51


def test_diffusers_pndm_convention_grid():
    """steps_offset=1, set_alpha_to_one=False: 981, 961, ..., 1, then abar_0."""
    g = make_grid(DiscreteVP.linear(), 50, "leading", offset=1, final_alpha="first")
    assert g[0] == 981 and g[-2] == 1 and g[-1] == 0


def test_zero_length_final_step_is_dropped():
    g = make_grid(DiscreteVP.linear(), 10, "leading", final_alpha="first")
    assert g[-1] == 0 and len(g) == 10  # 900..0: the step 0 -> 0 would be a no-op costing an evaluation


def test_trailing_and_linspace_spacings():
    d = DiscreteVP.linear()
    np.testing.assert_array_equal(make_grid(d, 4, "trailing"), [999, 749, 499, 249, -1])
    np.testing.assert_array_equal(make_grid(d, 4, "linspace"), [999, 666, 333, 0, -1])


def test_continuous_grids_are_uniform_in_their_variable():
    s = LinearVP()
    np.testing.assert_allclose(np.diff(make_grid(s, 8, "uniform")), -(1 - 1e-3) / 8)
    np.testing.assert_allclose(np.diff(s.lam(make_grid(s, 8, "logsnr"))), (s.lam(1e-3) - s.lam(1.0)) / 8, rtol=1e-9)
    np.testing.assert_allclose(np.diff(s.s(make_grid(s, 8, "s-uniform"))), (s.s(1e-3) - s.s(1.0)) / 8, rtol=1e-9)
    k = s.s(make_grid(s, 8, "karras")) ** (1 / 7)
    np.testing.assert_allclose(np.diff(k), np.diff(k)[0], rtol=1e-9)
    q = make_grid(s, 4, "quadratic")
    np.testing.assert_allclose(q, 1e-3 + (1 - 1e-3) * np.array([1, 0.5625, 0.25, 0.0625, 0]))


@pytest.mark.parametrize("kind", [k for k in GRIDS if k not in ("leading", "trailing")])
@pytest.mark.parametrize("sched", [LinearVP(), CosineVP(), DiscreteVP.linear()], ids=repr)
def test_every_grid_is_decreasing_with_exact_ends(kind, sched):
    g = make_grid(sched, 7, kind, t_start=sched.t_start)
    assert len(g) == 8 and np.all(np.diff(g) < 0)
    assert g[0] == sched.t_start and g[-1] == sched.t_end


@pytest.mark.parametrize("kind", ["logsnr", "karras"])
@pytest.mark.parametrize("steps", [1, 2, 20, 50, 200])
def test_logsnr_and_karras_reach_abar_one_through_the_lowest_level(kind, steps):
    """No wasted steps piled up at s = 0: the last step goes from the first table index to t = -1."""
    d = DiscreteVP.linear()
    g = make_grid(d, steps, kind, t_start=999.0)
    assert len(g) == steps + 1 and np.all(np.diff(g) < 0) and g[-1] == -1
    if steps > 1:
        assert g[-2] == 0.0
        assert np.all(np.diff(g[:-1]) < -1e-3)
    lin = make_grid(LinearVP(), 10, kind, t_start=1.0, t_end=0.0)
    assert lin[-1] == 0.0 and LinearVP().s(lin[-2]) == pytest.approx(0.002)


def test_grid_errors_name_the_parameter():
    s = LinearVP()
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        make_grid(s, 0)
    with pytest.raises(ValueError, match="unknown grid kind 'bogus'"):
        make_grid(s, 3, "bogus")
    with pytest.raises(ValueError, match="needs a DiscreteVP"):
        make_grid(s, 3, "leading")
    with pytest.raises(ValueError, match="t_start=0.1 must be larger than t_end=0.5"):
        make_grid(s, 3, t_start=0.1, t_end=0.5)
    with pytest.raises(ValueError, match="applies to 'leading' spacing only"):
        make_grid(DiscreteVP.linear(), 3, "trailing", offset=1)
