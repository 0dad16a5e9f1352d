"""Documentation stays true: public names are documented and the README's method table is the registry's."""

import importlib
import inspect
import re
from pathlib import Path

import pytest

from pndmkit import METHODS

ROOT = Path(__file__).resolve().parents[1]
CORE = ["pndmkit", "pndmkit.schedules", "pndmkit.grids", "pndmkit.transfers", "pndmkit.tableaus",
        "pndmkit.estimators", "pndmkit.integrator", "pndmkit.methods", "pndmkit.models", "pndmkit.sampling",
        "pndmkit.adaptive", "pndmkit.theory", "pndmkit.theory.multistep",
        "pndmkit.theory.butcher", "pndmkit.theory.local_error"]


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


def test_readme_method_table_is_the_registry():
    text = (ROOT / "README.md").read_text()
    rows = {}
    table = text.split("## Methods", 1)[1].split("\n## ", 1)[0]
    for line in table.splitlines():
        m = re.match(r"\| `([a-z0-9-]+)` \|(.*)\|$", line)
        if m:
            cells = [c.strip() for c in m.group(2).split("|")]
            rows[m.group(1)] = cells
    assert set(rows) == set(METHODS)
    for name, spec in METHODS.items():
        _, _, nfe, order, _ = rows[name]
        assert nfe == spec.nfe_formula(), name
        assert order == (str(spec.order) if spec.order is not None else "-"), name


def test_readme_shows_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
