"""The sampling hot path: the plan a run computes at its start changes no result, a step never waits for the
device, a sampling function compiles with torch.compile, and the README's benchmark tables are the results file."""

import json
import pickle
import re
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
    none in a step; ``check_finite=True`` adds one per evaluation."""
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
