"""The import graph is layered: every module imports only its own layer and the layers below it.

The layers, lowest first (``docs/architecture.md``)::

    foundation < theory < core < problems < nn < integrations < studies < testing, cli/commands
               < analysis < paper_figures

Every import of every module is read from its source with :mod:`ast`, wherever it stands (module level,
inside a function, under ``TYPE_CHECKING``), together with ``importlib.import_module("...")`` calls on string
literals, so a lazy import cannot hide an arrow that runs back up. The same graph must have no cycle at all.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pndmkit", "analysis", "paper_figures")

#: layer of each module, by the longest matching dotted prefix
LAYERS = [
    ("foundation", ("pndmkit._backend", "pndmkit._checks", "pndmkit._rationals", "pndmkit.errors", "pndmkit._io",
                    "pndmkit.noise")),
    ("theory", ("pndmkit.theory",)),
    ("core", ("pndmkit", "pndmkit.schedules", "pndmkit.grids", "pndmkit.models", "pndmkit.transfers",
              "pndmkit.tableaus", "pndmkit.variables", "pndmkit.estimators", "pndmkit.runge_kutta", "pndmkit.adams",
              "pndmkit.exponential", "pndmkit.run", "pndmkit.stability", "pndmkit.integrator", "pndmkit.adaptive",
              "pndmkit.methods", "pndmkit.sampling")),
    ("problems", ("pndmkit.problems",)),
    ("nn", ("pndmkit.nn",)),
    ("integrations", ("pndmkit.integrations",)),
    ("studies", ("pndmkit.studies",)),
    ("front", ("pndmkit.testing", "pndmkit.cli", "pndmkit.commands", "pndmkit.__main__")),
    ("analysis", ("analysis",)),
    ("paper_figures", ("paper_figures",)),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}
#: the only core modules that may read the method registry
REGISTRY_READERS = {"pndmkit.methods", "pndmkit.sampling", "pndmkit"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "conftest.py":
                continue
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def layer_of(module: str) -> str:
    """The layer of a project module (by its longest listed prefix)."""
    best, length = None, -1
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = name, len(prefix)
    if best is None:
        raise AssertionError(f"module {module} has no layer: add it to LAYERS and docs/architecture.md")
    return best


def _resolve(name: str) -> str | None:
    """The project module an import names (a name inside a module resolves to that module)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _is_import_module(node: ast.Call) -> bool:
    return getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"


def imports_of(module: str) -> list[tuple[str, int, list[str]]]:
    """``(target module, line, names imported)`` for every project import in ``module``'s source."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name)
                if target:
                    out.append((target, node.lineno, []))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = full if full in MODULES else _resolve(base)
                if target:
                    out.append((target, node.lineno, [] if full in MODULES else [alias.name]))
        elif isinstance(node, ast.Call) and _is_import_module(node) and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                target = _resolve(arg.value)
                if target:
                    out.append((target, node.lineno, []))
            elif (isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant)
                  and str(arg.values[0].value).endswith(".")):
                # f"pkg.{name}": any module under pkg may be loaded, so each is an arrow
                prefix = str(arg.values[0].value)
                out.extend((m, node.lineno, []) for m in MODULES if m.startswith(prefix) and not m.endswith("__main__"))
            # a name in a variable (a user's plugin module, an optional third-party package) is not the
            # project's: nothing to check
    return [(t, line, names) for t, line, names in out if t != module]


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_no_import_runs_back_up_a_layer():
    bad = []
    for module in MODULES:
        for target, line, _ in imports_of(module):
            if RANK[layer_of(target)] > RANK[layer_of(module)]:
                bad.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {module} ({layer_of(module)}) imports "
                           f"{target} ({layer_of(target)})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_only_methods_and_sampling_read_the_registry_inside_the_core():
    bad = [f"{MODULES[m].relative_to(ROOT)}:{line}" for m in MODULES if layer_of(m) == "core"
           and m not in REGISTRY_READERS for target, line, _ in imports_of(m) if target == "pndmkit.methods"]
    assert not bad, "core modules reading the registry: " + ", ".join(bad)


def test_no_import_cycles_lazy_ones_included():
    graph = {m: sorted({t for t, _, _ in imports_of(m) if t in MODULES}) for m in MODULES}
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_private_name_is_imported_across_modules():
    bad = []
    for module in MODULES:
        for target, line, names in imports_of(module):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            owner, _, leaf = target.rpartition(".")
            if leaf.startswith("_") and not leaf.startswith("__") and not (module == owner or module.startswith(owner + ".")):
                private.append(target)  # a private module is for the package that holds it
            if private:
                bad.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {', '.join(private)} from {target}")
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def test_the_layer_checker_sees_lazy_and_type_checking_imports(tmp_path, monkeypatch):
    """The checker itself: an import inside a function or under TYPE_CHECKING is an arrow like any other."""
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pndmkit.integrator import Integrator\n"
              "def f():\n    from pndmkit.studies import grid_opt\n    import importlib\n"
              "    importlib.import_module('pndmkit.nn.unet')\n")
    fake = ROOT / "pndmkit" / "_layer_probe.py"
    monkeypatch.setitem(MODULES, "pndmkit._layer_probe", fake)
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source if self == fake else Path.read_bytes(self)
                        .decode())
    targets = {t for t, _, _ in imports_of("pndmkit._layer_probe")}
    assert {"pndmkit.integrator", "pndmkit.studies.grid_opt", "pndmkit.nn.unet"} <= targets


def test_import_pndmkit_loads_neither_torch_sympy_nor_scipy_integrate():
    code = ("import sys, pndmkit; heavy = [m for m in ('torch', 'sympy', 'scipy.integrate', 'matplotlib') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("package", PACKAGES + ("tests",))
def test_no_tracker_numbers_in_code(package):
    """Code says what it does and why; issue numbers of a tracker mean nothing to a reader of the code."""
    import re

    pattern = re.compile(r"\bissues?\s*#?\d+\b" + r"|\(issue" + ": ", re.IGNORECASE)
    bad = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / package).rglob("*.py"))
           for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not bad, "tracker references: " + ", ".join(bad)
