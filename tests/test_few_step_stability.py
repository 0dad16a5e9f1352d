"""Why the fourth-order ``-s`` methods lose at NFE 8: two warm-up steps, each stage amplified by the eps-form transfer.

Numbers quoted in README.md ("Why the fourth-order `-s` methods blow up at NFE 8-10"): gmm2d, DDPM linear
schedule, 256 standard-normal start samples (seed 0), RMS error in ``x`` against the exact trajectory.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pndmkit.grids import make_grid
from pndmkit.methods import get_method, steps_for_nfe
from pndmkit.problems import get_problem
from pndmkit.sampling import sample
from pndmkit.schedules import DiscreteVP
from pndmkit.stability import StabilityWarning


def _error(method: str, kind: str, nfe: int) -> tuple[float, int, list[str]]:
    gm, sch = get_problem("gmm2d"), DiscreteVP.linear()
    x = np.random.default_rng(0).standard_normal((256, 2))
    ref = gm.reference(x, sch, sch.t_start, sch.t_end, rtol=1e-12, atol=1e-12)
    spec = get_method(method)
    steps = steps_for_nfe(spec, nfe)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sol = sample(lambda y, t: gm.eps(y, t, sch), x, schedule=sch, method=spec, grid=make_grid(sch, steps, kind))
    said = [str(w.message) for w in caught if issubclass(w.category, StabilityWarning)]
    return float(np.sqrt(np.mean((np.asarray(sol.x) - ref) ** 2))), steps, said


@pytest.mark.parametrize("kind, blown, bounded", [("quadratic", 1.17, 0.159), ("logsnr", 26.0, 0.373)])
def test_fourth_order_s_methods_at_nfe_8_take_two_warmup_steps_that_the_eps_transfer_amplifies(kind, blown, bounded):
    for method in ("f-pndm-s", "pec-s"):
        err, steps, said = _error(method, kind, 8)
        assert steps == 2 and err == pytest.approx(blown, rel=0.02)
        assert said and "step 1" in said[0] and "amplified up to" in said[0]
    err, steps, said = _error("f-pndm-x0", kind, 8)  # same estimator, data-prediction transfer: bounded, no warning
    assert steps == 2 and err == pytest.approx(bounded, rel=0.02) and not said
    err, steps, said = _error("ipndm", kind, 8)  # one evaluation a step: 8 steps
    assert steps == 8 and err < 0.025 and not said
