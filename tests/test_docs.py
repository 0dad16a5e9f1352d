"""Documentation stays true: public names are documented and the README's method table is the registry's."""

import importlib
import inspect
from pathlib import Path

import pytest

from pndmkit import METHODS

ROOT = Path(__file__).resolve().parents[1]
CORE = ["pndmkit", "pndmkit.schedules", "pndmkit.grids", "pndmkit.transfers", "pndmkit.tableaus",
        "pndmkit.estimators", "pndmkit.integrator", "pndmkit.methods", "pndmkit.models", "pndmkit.sampling",
        "pndmkit.adaptive", "pndmkit.run", "pndmkit.variables", "pndmkit.testing", "pndmkit.theory", "pndmkit.theory.multistep",
        "pndmkit.theory.butcher", "pndmkit.theory.local_error",
        "pndmkit.testing.strategies"]


@pytest.mark.parametrize("module_name", CORE)
def test_every_public_name_has_a_docstring(module_name):
    module = importlib.import_module(module_name)
    assert module.__doc__ and module.__doc__.strip()
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__ and obj.__doc__.strip(), f"{module_name}.{name} has no docstring"
            for meth_name, meth in vars(obj).items() if inspect.isclass(obj) else []:
                if inspect.isfunction(meth) and not meth_name.startswith("_"):
                    doc = inspect.getdoc(getattr(obj, meth_name))
                    assert doc, f"{module_name}.{name}.{meth_name} has no docstring"


def test_package_ships_py_typed():
    assert (ROOT / "pndmkit" / "py.typed").exists()


def test_protocol_notes_example_runs_and_registers_a_method():
    """docs/protocol.md's 20-line corrector example is real code: it runs and its method samples."""
    import numpy as np

    import pndmkit

    text = (ROOT / "docs" / "protocol.md").read_text()
    code = text.split("## Example", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 22
    try:
        exec(compile(code, "docs/protocol.md", "exec"), {})
        sol = pndmkit.sample(lambda x, t: 0.1 * x, np.ones(2), schedule=pndmkit.LinearVP(), method="pec-trapezoid",
                             steps=5)
        assert sol.nfe == 6 and pndmkit.METHODS["pec-trapezoid"].order == 2
    finally:
        if "pec-trapezoid" in pndmkit.METHODS:
            pndmkit.unregister_method("pec-trapezoid")


def test_theory_notes_flow_order_example_prints_the_table_shown_below_it(capsys):
    """docs/theory.md's advice to measure flow-matching orders on grid="uniform" rests on the numbers its block
    prints: the block runs, and prints the text block that follows it, line for line."""
    text = (ROOT / "docs" / "theory.md").read_text()
    part = text.split('**Measuring orders on flow matching: use `grid="uniform"`.**', 1)[1]
    code = part.split("```python", 1)[1].split("```", 1)[0]
    shown = part.split("```text", 1)[1].split("```", 1)[0].strip().splitlines()
    exec(compile(code, str(ROOT / "docs" / "theory.md"), "exec"), {})
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed == shown
    assert [line.split()[:2] for line in shown] == [["shifted", "rk4"], ["shifted", "fon"], ["uniform", "rk4"],
                                                    ["uniform", "fon"]]
    uniform_orders = [float(v) for line in shown[2:] for v in line.split("orders")[1].split()[1:]]
    assert all(3.9 < v < 4.6 for v in uniform_orders)  # order 4 from 20 steps on, on the uniform grid


def test_readme_shows_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text


NUMPYDOC_SECTIONS = [
    ("pndmkit.integrations.diffusers", "scheduler_class", ("Parameters", "Returns")),
    ("pndmkit.integrations.diffusers.config", "init_fields", ("Parameters", "Returns")),
    ("pndmkit.integrations.diffusers.config", "zero_length_fix", ("Parameters", "Returns")),
    ("pndmkit.schedules", "s_from_log_abar", ("Parameters", "Returns")),
    ("pndmkit.studies.compare", "compare_methods", ("Returns",)),
    ("pndmkit.studies.compare", "optimized_solver_bases", ("Parameters", "Returns")),
    ("pndmkit.studies.solver_file", "fitted_name", ("Parameters", "Returns", "Raises")),
    ("pndmkit.studies.solver_file", "check_base", ("Parameters", "Returns", "Raises")),
    ("pndmkit.studies.solver_file", "fitted_integrator", ("Parameters", "Returns", "Raises")),
    ("pndmkit.studies.solver_file", "FittedSolver", ("Parameters", "Raises")),
    ("pndmkit.studies.solver_file", "load_solver", ("Parameters", "Returns", "Raises")),
    ("pndmkit.studies.solver_opt", "optimize_solver", ("Parameters", "Returns", "Raises")),
    ("pndmkit.studies.reports", "compare_result_paths", ("Parameters", "Returns")),
    ("pndmkit.methods", "MethodRegistry.__init__", ("Parameters",)),
    ("pndmkit.methods", "MethodRegistry.__getitem__", ("Parameters", "Returns", "Raises")),
    ("pndmkit.methods", "MethodRegistry.__iter__", ("Returns",)),
    ("pndmkit.methods", "MethodRegistry.__len__", ("Returns",)),
    ("pndmkit.methods", "MethodRegistry.__setitem__", ("Parameters", "Raises")),
    ("pndmkit.methods", "MethodRegistry.__delitem__", ("Parameters", "Raises")),
]


@pytest.mark.parametrize("module_name, name, sections", NUMPYDOC_SECTIONS,
                         ids=[f"{m}.{n}" for m, n, _ in NUMPYDOC_SECTIONS])
def test_public_names_have_their_numpydoc_sections(module_name, name, sections):
    if module_name.startswith("pndmkit.integrations.diffusers"):
        pytest.importorskip("diffusers")
    obj = importlib.import_module(module_name)
    for part in name.split("."):
        obj = getattr(obj, part)
    doc = inspect.getdoc(obj) or ""
    for section in sections:
        assert f"\n{section}\n{'-' * len(section)}\n" in doc, f"{module_name}.{name} has no {section} section"
