"""The sampling hot path: the plan a run computes at its start changes no result, a step never waits for the
device, a sampling function compiles with torch.compile, and the README's benchmark tables are the results file."""

import json
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import pndmkit
from pndmkit import METHODS, GradientEstimator, Integrator
from pndmkit.grids import make_grid
from pndmkit.methods import BUILTIN
from pndmkit.schedules import DiscreteVP, LinearVP
from pndmkit.testing import gaussian_eps

ROOT = Path(__file__).resolve().parents[1]
FIXED = [name for name, spec in METHODS.items() if not spec.adaptive]


class Unplanned(GradientEstimator):
    """``inner`` with no plan: every step computes its weights and stage times itself."""

    def __init__(self, inner):
        self.inner = inner

    def init(self, x, t, phi, times):
        return self.inner.init(x, t, phi, times)

    def observe(self, state, t, e):
        return self.inner.observe(state, t, e)

    def step(self, x, t, t_next, phi, state):
        return (yield from self.inner.step(x, t, t_next, phi, state))

    def order(self, phi):
        return self.inner.order(phi)


def _unplanned(integrator):
    return Integrator(Unplanned(integrator.estimator), integrator.transfer, integrator.name)


# grids: a continuous schedule; DiscreteVP's default (ends at abar = 1, where lambda is infinite) with few steps
# (the lowered final steps of the exponential family) and with many; a leading grid ending at abar_0
CASES = [(LinearVP(), 9), (DiscreteVP.linear(), 6), (DiscreteVP.linear(), 17), (DiscreteVP.linear(), "leading")]


@pytest.mark.parametrize("name", FIXED)
@pytest.mark.parametrize("sched, steps", CASES, ids=lambda c: repr(c))
def test_a_planned_run_equals_the_run_without_a_plan(name, sched, steps):
    integrator = METHODS[name].build(sched)
    if steps == "leading":
        grid = make_grid(sched, 12, "leading", final_alpha="first", offset=1)
    else:
        grid = make_grid(sched, steps)
    model = gaussian_eps(sched)
    x = np.array([0.4, -1.2, 2.5])
    planned_run = integrator.start(x, grid)
    assert planned_run.plan is not None and planned_run.plan.coefficients is not None
    planned = integrator.solve(model, x, grid)
    plain = _unplanned(integrator).solve(model, x, grid)
    assert plain.run.plan.estimator is None and planned.nfe == plain.nfe
    np.testing.assert_allclose(planned.x, plain.x, rtol=2e-15, atol=1e-15)


def test_a_planned_unipc_run_from_an_infinite_log_snr_equals_the_run_without_a_plan():
    """From t = 1 of flow matching (alpha = 0, lambda = -inf) the first steps fall back to order 1, so a later
    predictor has more nodes than the corrector it follows: the fused step must still combine every gradient."""
    sched = pndmkit.schedules.FlowMatching(t_max=1.0)
    integrator, grid = METHODS["unipc-3"].build(sched), np.linspace(1.0, 0.05, 9)
    orders = [entry[3] for entry in integrator.start(np.ones(3), grid, prediction="flow").plan.estimator]
    assert any(k > p + 1 for p, k in zip(orders, orders[1:])), orders  # a predictor beyond the corrector's nodes
    results = []
    for kit in (integrator, _unplanned(integrator)):
        run = kit.start(np.array([0.4, -1.2, 2.5]), grid, prediction="flow")
        while not run.done:
            x, t = run.ask()
            run = run.tell(np.sin(3 * x) + t)
        results.append(run.solution().x)
    np.testing.assert_allclose(results[0], results[1], rtol=2e-15, atol=1e-15)


@pytest.mark.parametrize("name", ["ipndm-v", "f-pndm-s", "pec-s", "unipc-3", "dpm-solver++-3m", "deis-3",
                                  "pece-x0"])
def test_a_run_started_from_another_state_ignores_the_plan_where_it_does_not_apply(name):
    """A run continued from a history (a scheduler following an edited sample) has steps the plan did not
    foresee: they compute their weights as without a plan, so the result is the uninterrupted run's."""
    sched = DiscreteVP.linear()
    integrator = METHODS[name].build(sched)
    grid, model, x = make_grid(sched, 12), gaussian_eps(sched), np.array([0.4, -1.2, 2.5])
    whole = integrator.solve(model, x, grid)
    run = integrator.start(x, grid)
    while run.index < 5:
        run = run.tell(model(*run.ask()))
    for kit in (integrator, _unplanned(integrator)):
        resumed = kit.start(run.x, run.times[run.index:], estimator_state=run.state)
        while not resumed.done:
            resumed = resumed.tell(model(*resumed.ask()))
        np.testing.assert_allclose(resumed.x, whole.x, rtol=2e-15, atol=1e-15)


def test_a_plan_is_immutable_and_pickles():
    sched = DiscreteVP.linear()
    run = METHODS["unipc-3"].build(sched).start(np.ones(2), make_grid(sched, 10))
    plan = run.plan
    with pytest.raises(AttributeError):
        plan.estimator = ()
    leaves = [plan.coefficients, plan.estimator]
    while leaves:
        leaf = leaves.pop()
        assert not isinstance(leaf, (list, dict, set, np.ndarray)), type(leaf)
        if isinstance(leaf, tuple):
            leaves.extend(leaf)
    assert pickle.loads(pickle.dumps(run)).plan == plan


def test_an_estimator_plan_of_the_wrong_length_is_refused():
    class Short(Unplanned):
        def plan(self, times, phi):
            return ((),)

    sched = LinearVP()
    with pytest.raises(TypeError, match=r"plan must return None or a tuple of one entry per step \(4\)"):
        Integrator(Short(pndmkit.Single()), pndmkit.DDIMTransfer(sched)).start(np.ones(1), make_grid(sched, 4))


# --- the plan's batched computations are the scalar formulas' floats ------------------------------------------
def _random_steps(rng, steps, k):
    """``steps`` rows of ``k`` distinct nodes (newest first, the first at the step's start), the start and end."""
    start = rng.uniform(-3, 3, steps)
    h = rng.uniform(0.05, 1.5, steps) * rng.choice([-1.0, 1.0], steps)
    gaps = np.cumsum(rng.uniform(0.5, 2.0, (steps, k - 1)), axis=1)
    nodes = np.concatenate([start[:, None], start[:, None] - h[:, None] * gaps], axis=1)
    return nodes, start, start + h


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6])
def test_batched_lagrange_weights_are_the_scalar_floats(k):
    from pndmkit.theory.multistep import lagrange_weights_float, lagrange_weights_float_many

    nodes, u, u_next = _random_steps(np.random.default_rng(k), 23, k)
    many = lagrange_weights_float_many(nodes, u, u_next)
    for i in range(len(u)):
        assert many[i].tolist() == lagrange_weights_float(nodes[i].tolist(), float(u[i]), float(u_next[i])).tolist()


@pytest.mark.parametrize("module", ["pndmkit.variables", "pndmkit.theory.multistep"])
def test_the_cached_index_table_of_the_batched_weights_is_read_only(module):
    import importlib

    others = importlib.import_module(module)._others
    table = others(4)
    assert table.tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]
    assert others(4) is table and not table.flags.writeable  # shared across calls, so no caller may write it
    with pytest.raises(ValueError, match="read-only"):
        table[0, 0] = 0
    assert others(4).tolist()[0] == [1, 2, 3]


def test_batched_lagrange_weights_refuse_a_bad_row_as_the_scalar_version():
    from pndmkit.theory.multistep import lagrange_weights_float_many

    with pytest.raises(ValueError, match=r"nodes must be distinct and finite, got \[0.5, 0.5\]"):
        lagrange_weights_float_many(np.array([[0.0, 1.0], [0.5, 0.5]]), np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match=r"the step \[u, u_next\] = \[1.0, 1.0\] must be finite and non-empty"):
        lagrange_weights_float_many(np.array([[1.0, 0.0]]), np.ones(1), np.ones(1))


@pytest.mark.parametrize("k", [2, 3, 4, 5])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_batched_lambda_weights_are_the_scalar_floats(k, sign):
    from pndmkit.variables import lambda_weights, lambda_weights_many

    lams, lam, lam_next = _random_steps(np.random.default_rng(10 * k + int(sign > 0)), 23, k)
    many = lambda_weights_many(lams, lam, lam_next, sign)
    for i in range(len(lam)):
        assert tuple(many[i].tolist()) == lambda_weights(lams[i].tolist(), float(lam[i]), float(lam_next[i]), sign)


@pytest.mark.parametrize("sizes", [(2, 3), (3, 4), (2, 3, 4, 5), (4, 4)])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_lambda_weights_of_every_size_in_one_batch_are_the_scalar_floats(sizes, sign):
    """Rows with different numbers of nodes, padded with nan to the widest: each row's weights are its own scalar
    floats (its padding's factors skipped), and the entries past its nodes are nan."""
    from pndmkit.variables import lambda_weights, lambda_weights_many

    rng = np.random.default_rng(sum(sizes) + int(sign > 0))
    k, counts, lams, lam, lam_next = max(sizes), [], [], [], []
    for size in sizes:
        nodes, start, end = _random_steps(rng, 7, size)
        counts += [size] * len(start)
        lams.append(np.pad(nodes, ((0, 0), (0, k - size)), constant_values=np.nan))
        lam.append(start)
        lam_next.append(end)
    many = lambda_weights_many(np.concatenate(lams), np.concatenate(lam), np.concatenate(lam_next), sign, counts)
    rows = np.concatenate(lams)
    for i, count in enumerate(counts):
        scalar = lambda_weights(rows[i, :count].tolist(), float(np.concatenate(lam)[i]),
                                float(np.concatenate(lam_next)[i]), sign)
        assert tuple(many[i, :count].tolist()) == scalar
        assert np.isnan(many[i, count:]).all()


@pytest.mark.parametrize("variable, transfer", [("native", "DDIMTransfer"), ("native", "DataTransfer"),
                                                ("lambda", "DDIMTransfer"), ("lambda", "DataTransfer"),
                                                ("t", "DDIMTransfer"), ("t", "DataTransfer"), ("t", "LinearTransfer")])
def test_a_grids_weights_computed_together_are_the_weights_one_by_one(variable, transfer):
    from pndmkit.variables import grid_weights, grid_weights_many

    sched = LinearVP()
    phi = getattr(pndmkit.transfers, transfer)(sched)
    grid = [float(t) for t in make_grid(sched, 12)]
    requests = [(grid[max(0, i - k + 1): i + 1][::-1], grid[i], grid[i + 1]) for i in range(len(grid) - 1)
                for k in (1, 2, 3, 4)] + [([grid[i + 1], grid[i], grid[i - 1]], grid[i], grid[i + 1])
                                           for i in range(1, len(grid) - 1)]
    one = grid_weights(variable, phi, grid)
    assert grid_weights_many(variable, phi, grid)(requests) == [one(*request) for request in requests]


@pytest.mark.parametrize("transfer", ["DDIMTransfer", "DataTransfer", "LinearTransfer"])
@pytest.mark.parametrize("sched", [DiscreteVP.linear(), LinearVP(), pndmkit.schedules.EDM()], ids=repr)
def test_a_grids_transfer_coefficients_computed_together_are_the_coefficients_one_by_one(transfer, sched):
    from pndmkit.transfers import planned_coefficients, planned_coefficients_many

    phi = getattr(pndmkit.transfers, transfer)(sched)
    grid = [float(t) for t in make_grid(sched, 9)]
    if transfer == "DataTransfer" and isinstance(sched, DiscreteVP):
        grid = grid[:-1] + [0.5, -1.0]  # a time between the table's entries, and abar = 1 at the end
    starts, ends = grid[:-1] + grid[:3], grid[1:] + [grid[0]] * 3  # stages: pairs that are not steps
    assert planned_coefficients_many(phi, starts, ends) == [planned_coefficients(phi, a, b)
                                                            for a, b in zip(starts, ends)]


@pytest.mark.parametrize("sched", [DiscreteVP.linear(), LinearVP(), pndmkit.schedules.EDM()], ids=repr)
def test_a_grids_gradient_coefficients_computed_together_are_the_coefficients_one_by_one(sched):
    from pndmkit.transfers import planned_gradients_many

    phi = pndmkit.transfers.DataTransfer(sched)
    grid = [float(t) for t in make_grid(sched, 9)]
    if isinstance(sched, DiscreteVP):
        grid = grid[:-1] + [0.5, -1.0]  # a time between the table's entries, and abar = 1 at the end
    assert planned_gradients_many(phi, grid) == tuple(phi.gradient_coefficients(t) for t in grid)
    assert planned_gradients_many(pndmkit.transfers.DDIMTransfer(sched), grid) is None  # its gradient is eps


@pytest.mark.parametrize("transfer", ["DDIMTransfer", "DataTransfer"])
@pytest.mark.parametrize("sched", [DiscreteVP.linear(), LinearVP(), pndmkit.schedules.EDM()], ids=repr)
def test_a_grids_infinite_times_are_those_of_both_coordinates(transfer, sched):
    import math

    from pndmkit.variables import infinite_times

    phi = getattr(pndmkit.transfers, transfer)(sched)
    grid = [float(t) for t in make_grid(sched, 9)]  # DiscreteVP and EDM end at s = 0: lambda is infinite
    both = {t for t in grid if not (math.isfinite(float(sched.lam(t))) and math.isfinite(phi.coordinate(t)))}
    assert infinite_times("lambda", phi, grid) == both
    assert (grid[-1] in both) == (not isinstance(sched, LinearVP))  # LinearVP ends at t = 1e-3


def test_a_discrete_schedule_on_training_timesteps_reads_its_table():
    sched = DiscreteVP.linear()
    t = np.array([999.0, 500.0, 0.0, -1.0])
    assert sched.log_abar(t).tolist() == [sched.log_abar(float(u)) for u in t]
    assert sched.log_abar(t).tolist() == np.log(np.concatenate([[1.0], sched.alphas_cumprod]))[[1000, 501, 1, 0]].tolist()
    mixed = np.array([999.0, 500.5, -1.0])
    assert sched.log_abar(mixed).tolist() == [sched.log_abar(float(u)) for u in mixed]
    assert sched.log_abar(t[None, :]).shape == (1, 4)


# --- no host synchronisation inside a step -------------------------------------------------------------------
def _count_syncs(torch, fn):
    from torch.utils._python_dispatch import TorchDispatchMode

    class Syncs(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.equal.default) or \
                    "nonzero" in str(func):
                self.count += 1
            return func(*args, **(kwargs or {}))

    mode = Syncs()
    with mode:
        fn()
    return mode.count


@pytest.mark.parametrize("name", FIXED)
def test_sample_synchronises_with_the_device_only_at_the_ends_of_a_run(name):
    """``.item()``/``float(tensor)`` (``aten._local_scalar_dense``), ``equal`` and ``nonzero`` wait for a GPU.
    pndmkit.sample has two per run whatever the number of steps (the finiteness of ``x_T`` and of the result),
    none in a step; ``check_finite=True`` adds one per evaluation. (This ``x_T`` has 6 entries, measured against
    the schedule's scale by the reduction that checks its finiteness; a larger one costs no more: see the next
    test.)"""
    torch = pytest.importorskip("torch")
    sched = DiscreteVP.linear()
    x = torch.randn(2, 3, dtype=torch.float32)

    def model(x, t):
        return 0.1 * x

    counts = {}
    for steps in (4, 9):
        counts[steps] = _count_syncs(torch, lambda: pndmkit.sample(model, x, schedule=sched, method=name, steps=steps))
    assert counts == {4: 2, 9: 2}, counts
    nfe = METHODS[name].build(sched).nfe(9)
    checked = _count_syncs(torch, lambda: pndmkit.sample(model, x, schedule=sched, method=name, steps=9,
                                                         check_finite=True))
    assert checked == 2 + nfe


@pytest.mark.parametrize("name", ["ddim", "ipndm", "unipc-3"])
def test_sample_of_a_realistic_x_T_synchronises_twice_and_checks_it_as_before(name):
    """``x_T`` is also measured against the schedule's scale (:func:`pndmkit.sampling.check_start`):
    one reduction gives both its finiteness and its root mean square, so a run still synchronises twice (x_T, the
    result), not three times. The checks answer as the separate ones did: the same NaN/inf message, the same
    PriorScaleWarning at the same root mean square, and float64 entries whose squares overflow pass as finite,
    measured at their true root mean square (scaled by the largest entry), with no overflow warning."""
    torch = pytest.importorskip("torch")
    from pndmkit.sampling import (START_SCALE_MIN_SIZE, PriorScaleWarning, check_start, check_start_scale,
                                  resolve_grid)

    sched = DiscreteVP.linear()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float32)
    assert x.numel() >= START_SCALE_MIN_SIZE

    def model(x, t):
        return 0.1 * x

    counts = {steps: _count_syncs(torch, lambda: pndmkit.sample(model, x, schedule=sched, method=name, steps=steps))
              for steps in (4, 9)}
    assert counts == {4: 2, 9: 2}, counts
    nfe = METHODS[name].build(sched).nfe(9)
    assert _count_syncs(torch, lambda: pndmkit.sample(model, x, schedule=sched, method=name, steps=9,
                                                      check_finite=True)) == 2 + nfe
    bad = x.clone()
    bad[0, 1, 2, 3] = float("nan")
    bad[1, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"^x_T must be finite; 2 of 96 entries are NaN or infinite \(the first at "
                                         r"index \(0, 1, 2, 3\), nan\)$"):
        pndmkit.sample(model, bad, schedule=sched, method=name, steps=4)
    big = 50 * x  # warns, at the root mean square check_start_scale measures on its own
    with pytest.warns(PriorScaleWarning) as caught:
        pndmkit.sample(model, big, schedule=sched, method=name, steps=4)
    with pytest.warns(PriorScaleWarning) as alone:  # measured by itself, at the run's first time
        rms = check_start_scale(big, sched, float(resolve_grid(sched, 4, None)[0]))
    # a float32 start is summed in float32 (no float64 tensor on its device): the float64 norm to its rounding
    assert rms == pytest.approx(float(torch.linalg.vector_norm(big, dtype=torch.float64)) / 96 ** 0.5, rel=1e-6)
    assert len(caught) == 1 and str(caught[0].message) == str(alone[0].message)
    assert f"root mean square {rms:.4g} at" in str(caught[0].message)
    huge = torch.full((2, 8), 1e200, dtype=torch.float64)  # finite, but the float64 sum of squares overflows
    huge[0, 0] = 4e200  # true root mean square: 1e200 * sqrt((16 + 15) / 16)
    with warnings.catch_warnings(record=True) as caught:  # the true root mean square, and no overflow warning
        warnings.simplefilter("always")
        out = pndmkit.sample(lambda x, t: 0 * x, huge, schedule=sched, method=name, steps=3)
    assert [w.category for w in caught] == [PriorScaleWarning]
    true_rms = 1e200 * (31 / 16) ** 0.5
    message = str(caught[0].message)  # prior_scale is 1 on a VP schedule
    assert message.startswith(f"x_T has root mean square {true_rms:.4g} at t=") and "1.392e+200 at" in message
    assert f", {true_rms:.3g} times above the root mean square 1 of x_t" in message
    assert torch.isfinite(out.x).all()
    for start in (huge, huge.numpy()):  # torch and numpy measure it alike, to rounding
        assert check_start(start) == pytest.approx(true_rms, rel=1e-15)
        bad = start.clone() if start is huge else start.copy()
        bad[1, 2] = float("nan")  # a NaN among overflowing squares: the same message as before
        with pytest.raises(ValueError, match=r"^x_T must be finite; 1 of 16 entries are NaN or infinite \(the first "
                                             r"at index \(1, 2\), nan\)$"):
            check_start(bad)


def test_start_checks_its_x_with_one_synchronisation_and_a_step_with_none():
    """Integrator.start refuses a NaN or infinite x (as sample refuses x_T) at the cost of one device sync; the
    told outputs are not checked (only with check_finite), so the steps stay free of syncs."""
    torch = pytest.importorskip("torch")
    integrator = METHODS["ipndm"].build(DiscreteVP.linear())
    grid = make_grid(DiscreteVP.linear(), 6)
    x = torch.randn(2, 3)
    runs = []
    assert _count_syncs(torch, lambda: runs.append(integrator.start(x, grid))) == 1
    run = runs[0]

    def steps():
        nonlocal run
        while run.request is not None:
            run = run.tell(torch.full_like(x, float("nan")) if run.index == 2 else 0.1 * run.ask()[0])

    assert _count_syncs(torch, steps) == 0  # a NaN output passes unchecked (check_finite=False) ...
    with pytest.raises(FloatingPointError):  # ... and the final sample says so
        run.solution()
    with pytest.raises(ValueError, match=r"x must be finite; 1 of 6 entries"):
        integrator.start(torch.where(torch.arange(6).reshape(2, 3) == 4, float("inf"), x), grid)


@pytest.mark.parametrize("method", ["ddim", "unipc-3", "prk"])
def test_the_diffusers_scheduler_loop_never_synchronises(method):
    """The steps of a PNDMKitScheduler loop (step per timestep, as a pipeline calls it) synchronise once, for the
    finiteness of the final sample at the last step: the latent is not checked for NaN at the loop's start
    (Integrator.start with check_x=False), as diffusers' schedulers do not check it, and no step in between
    reads the device. Timesteps are passed as Python numbers (a CPU tensor timestep is read, at no device cost, and
    would count here); set_timesteps reads the CPU table only and is left out."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    import diffusers

    from pndmkit.integrations.diffusers import PNDMKitScheduler

    sched = PNDMKitScheduler.from_config(diffusers.DDIMScheduler(clip_sample=False).config, method=method)
    x0 = torch.randn(2, 3, 4, 4)

    def loop():
        x = x0
        for t in sched.timesteps.tolist():
            x = sched.step(0.1 * x, t, x).prev_sample
        return x

    for count in (False, True):  # the first loop warms plans and caches
        sched.set_timesteps(6)
        syncs = _count_syncs(torch, loop) if count else loop()
    assert syncs == 1 and sched.run.done


# --- torch.compile -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("driver, name", [("sample", "unipc-3"), ("ask/tell", "f-pndm-s")])
def test_a_function_that_samples_compiles_and_equals_eager(driver, name):
    """The host-side set-up (grid, checks, plan) runs outside the graph; the trace breaks around it."""
    torch = pytest.importorskip("torch")
    sched = DiscreteVP.linear()
    integrator = METHODS[name].build(sched)
    grid = make_grid(sched, 5)

    def model(x, t):
        return torch.tanh(x) * (t / 1000.0)

    def by_sample(x):
        return pndmkit.sample(model, x, schedule=sched, method=name, steps=5).x

    def by_ask_tell(x):
        run = integrator.start(x, grid)
        while not run.done:
            run = run.tell(model(*run.ask()))
        return run.solution().x

    fn = by_sample if driver == "sample" else by_ask_tell
    x = torch.randn(2, 3, dtype=torch.float64)
    torch._dynamo.reset()
    compiled = torch.compile(fn, backend="eager")
    torch.testing.assert_close(compiled(x), fn(x), rtol=1e-15, atol=1e-15)


# --- the benchmark's tables -------------------------------------------------------------------------------------
def _tables(text):
    """Markdown tables (runs of lines starting with '|') of ``text``."""
    return [block.strip() for block in re.split(r"\n\s*\n", text) if block.strip().startswith("|")]


def test_the_readme_benchmark_tables_are_the_results_file():
    bench = (ROOT / "analysis" / "results" / "bench.md").read_text()
    readme = (ROOT / "README.md").read_text()
    tables = _tables(bench)
    assert len(tables) == 3
    for table in tables:
        assert table in readme, table.splitlines()[:3]
    result = json.loads((ROOT / "analysis" / "results" / "bench.json").read_text())
    shared = {row["method"] for row in result["shared"]}
    assert shared == {"ddim", "plms", "dpm-solver++-2m", "dpm-solver++-3m", "unipc-2", "unipc-3", "deis-3"}
    assert [row["method"] for row in result["methods"]] == [name for name in BUILTIN if not METHODS[name].adaptive]
    for row in result["shared"]:
        assert f"| {row['method']} | {tuple(row['shape'])} | {row['sample_us']:.1f} |" in readme


def test_a_stability_warning_points_at_the_callers_line_through_the_graph_wrapper():
    """Once torch.compile's machinery is imported, Integrator.start runs through torch.compiler.disable's
    wrapper; the warning still names the line that called pndmkit.sample."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torch._dynamo")  # what torch.compile imports first
    with pytest.warns(pndmkit.StabilityWarning) as record:
        pndmkit.sample(lambda x, t: 0.1 * x, torch.ones(2), schedule=DiscreteVP.cosine(), method="f-pndm", steps=50,
                       grid="trailing")
    assert len(record) == 1 and record[0].filename == __file__


def test_the_per_evaluation_array_checks_answer_as_before_for_every_kind_of_array():
    """``is_torch`` remembers tensor types (it is asked at every evaluation); ``version_counter`` reads the
    counter without asking first whether the tensor is an inference tensor, and ``read_only`` uses setflags."""
    torch = pytest.importorskip("torch")
    from pndmkit._backend import is_torch, read_only, version_counter

    class TorchLike:  # a module named like torch's, without tensor attributes
        __module__ = "torch.fake"

    for _ in range(2):  # the second round answers from the remembered types
        assert is_torch(torch.ones(1)) and is_torch(torch.nn.Parameter(torch.ones(1)))
        assert not is_torch(np.ones(1)) and not is_torch(np.ma.ones(1)) and not is_torch(TorchLike())
    t = torch.ones(2)
    assert version_counter(t) == 0 and version_counter(t.add_(1)) == 1 and version_counter(np.ones(1)) is None
    with torch.inference_mode():
        assert version_counter(torch.ones(2)) is None
    a = np.ones(2)
    view = read_only(a)
    assert not view.flags.writeable and a.flags.writeable and view.base is a and read_only(view) is view


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_a_combination_of_two_arrays_is_the_general_sums_floats(kind):
    """``lincomb`` of two plain arrays (every transfer step and data prediction) takes a short path: its result is
    the general path's (reached here through a third, zero-weighted array) bit for bit, zero weights skipped."""
    from pndmkit._backend import LinComb, lincomb

    rng = np.random.default_rng(3)
    x, e = rng.standard_normal((2, 5, 7))
    if kind == "torch":
        torch = pytest.importorskip("torch")
        x, e = torch.from_numpy(x).float(), torch.from_numpy(e).float()
    for w in [(0.9137, -0.4217), (1.0, 1e-8), (0.0, 2.5), (-1.5, 0.0), (0.0, 0.0)]:
        short, general = lincomb(w, (x, e)), lincomb((*w, 0.0), (x, e, x))
        assert type(short) is type(general) and short.dtype == general.dtype
        assert np.array_equal(np.asarray(short), np.asarray(general))
        assert np.array_equal(np.asarray(lincomb(w, (x, LinComb((1.0,), (e,))))), np.asarray(general))


@pytest.mark.parametrize("name", ["unipc-3", "dpm-solver++-3m", "pec-s-ramp", "ipndm-v", "deis-3"])
def test_a_plan_evaluates_log_abar_once_on_its_grid(name):
    """The transfer's coefficients, the x0 coefficients and the coordinates of a plan (lambda; s or 1/s) all read
    log abar on the grid: one schedule call on the grid's array (a new schedule object: a new evaluation), the
    same floats as the schedule's own lam and s."""
    from pndmkit.run import make_plan
    from pndmkit.schedules import grid_log_abar, lam_from_log_abar, s_from_log_abar

    class Counted(DiscreteVP):
        calls = 0

        def log_abar(self, t):
            if np.ndim(t):
                Counted.calls += 1
            return super().log_abar(t)

    sched = Counted(DiscreteVP.linear().betas)
    grid = make_grid(sched, 12)
    make_plan(METHODS[name].build(sched), grid)
    assert Counted.calls == 1
    make_plan(METHODS[name].build(Counted(sched.betas)), grid)
    assert Counted.calls == 2
    values = grid_log_abar(sched, grid)
    assert values == tuple(sched.log_abar(np.asarray(grid)).tolist()) and Counted.calls == 3
    assert lam_from_log_abar(np.asarray(values)).tolist() == sched.lam(np.asarray(grid)).tolist()
    assert s_from_log_abar(np.asarray(values)).tolist() == sched.s(np.asarray(grid)).tolist()
