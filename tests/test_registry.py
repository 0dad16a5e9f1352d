"""Registry-driven conformance: every method in ``pndmkit.METHODS`` (built-in, and the two registered by
``conftest.py`` from ``tests/external_methods.py``) passes the checks of ``pndmkit.testing``."""

import json

import numpy as np
import pytest

import pndmkit
from pndmkit import METHODS, MethodSpec, register_method, unregister_method
from pndmkit import testing as conformance
from pndmkit.methods import BUILTIN, KINDS
from pndmkit.studies.reports import methods_markdown_table as markdown_table

FIXED = [name for name, spec in METHODS.items() if not spec.adaptive]


def test_external_methods_are_registered():
    assert {"test-pec-trapezoid", "test-ab3-s"} <= set(METHODS) - set(BUILTIN)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_kind_and_declared_order_are_what_the_objects_report(name):
    spec = METHODS[name]
    assert spec.kind in KINDS
    assert spec.order == spec.reported_order()


@pytest.mark.parametrize("name", FIXED)
def test_nfe(name):
    conformance.check_nfe(name)


@pytest.mark.parametrize("name", FIXED)
def test_ask_tell_and_pickle(name):
    conformance.check_ask_tell(name)


@pytest.mark.parametrize("name", FIXED)
def test_prediction_types(name):
    conformance.check_predictions(name)


@pytest.mark.parametrize("name", FIXED)
def test_numpy_torch(name):
    pytest.importorskip("torch")
    conformance.check_torch(name)


@pytest.mark.parametrize("name", [n for n in FIXED if METHODS[n].kind == "pseudo"])
def test_point_mass_exactness(name):
    conformance.check_point_mass(name)


def test_point_mass_check_catches_a_classical_method():
    """The exactness check is a real test: a classical method with its kind mislabelled fails it."""
    with pytest.raises(AssertionError):
        _pretend_pseudo("euler")


def _pretend_pseudo(name):
    spec = METHODS[name]
    fake = MethodSpec("test-fake-pseudo", lambda sched: _relabel(spec.build(sched)), spec.order)
    METHODS._specs[fake.name] = fake  # bypass register_method's kind check on purpose
    try:
        conformance.check_point_mass(fake.name)
    finally:
        del METHODS._specs[fake.name]


def _relabel(integrator):
    class Pseudo(type(integrator.transfer)):
        kind = "pseudo"
    transfer = Pseudo(integrator.transfer.schedule)
    return pndmkit.Integrator(integrator.estimator, transfer, "fake")


def test_cli_lists_and_orders_external_methods(capsys):
    from pndmkit.cli import main

    assert main(["methods", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["methods"]}
    assert rows["test-ab3-s"]["nfe"] == "N + 2" and rows["test-ab3-s"]["order"] == 3
    assert rows["test-pec-trapezoid"]["nfe"] == "N + 1" and rows["test-pec-trapezoid"]["kind"] == "pseudo"
    assert main(["order", "--json", "--methods", "test-ab3-s,test-pec-trapezoid", "--steps", "25,50,100",
                 "--batch", "2"]) == 0
    out = json.loads(capsys.readouterr().out)["methods"]
    assert out["test-ab3-s"]["nfe"] == [27, 52, 102] and out["test-pec-trapezoid"]["declared_order"] == 2


def test_compare_plans_external_methods():
    from pndmkit.studies.compare import pndmkit_methods

    assert {"test-ab3-s", "test-pec-trapezoid", "pece-s", "pec-s"} <= set(pndmkit_methods())


def test_readme_methods_table_is_the_registry():
    """The README's table is `pndmkit methods --markdown`; on failure paste the printed table."""
    from pathlib import Path

    table = markdown_table()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    if table not in readme:
        print(table)
    assert table in readme


def test_register_method_refuses_what_it_cannot_honour():
    spec = METHODS["test-ab3-s"]
    with pytest.raises(ValueError, match="already registered"):
        register_method(spec)
    with pytest.raises(ValueError, match="already registered"):
        register_method(MethodSpec("ddim", spec.build, 3), replace=True)
    with pytest.raises(ValueError, match="reports order 3"):
        register_method(MethodSpec("test-wrong-order", spec.build, 4))
    with pytest.raises(TypeError, match="MethodSpec"):
        register_method("ddim")
    with pytest.raises(TypeError, match="must return an Integrator"):
        register_method(MethodSpec("test-bad-build", lambda sched: object(), 1))
    with pytest.raises(ValueError, match="name"):
        register_method(MethodSpec("has space", spec.build, 3))
    with pytest.raises(ValueError, match="built-in"):
        unregister_method("ddim")
    assert "test-wrong-order" not in METHODS


def test_the_registry_is_read_only_so_every_entry_is_a_checked_spec():
    """METHODS["foo"] = 1 once went in, and sample(method="foo") then failed with AttributeError on 'build'."""
    from pndmkit import sample
    from pndmkit.schedules import LinearVP

    before = dict(METHODS)
    for value in (1, METHODS["ddim"]):
        with pytest.raises(TypeError, match=r"METHODS is read-only: METHODS\['foo'\] = .*register_method"):
            METHODS["foo"] = value
    with pytest.raises(TypeError, match=r"del METHODS\['ddim'\] is refused.*unregister_method\('ddim'\)"):
        del METHODS["ddim"]
    for name in ("pop", "update", "setdefault", "clear"):
        assert not hasattr(METHODS, name)
    assert dict(METHODS) == before and "foo" not in METHODS and METHODS.get("foo") is None
    with pytest.raises(ValueError, match=r"unknown method 'foo'"):
        sample(lambda x, t: 0.1 * x, np.ones(2), schedule=LinearVP(), method="foo")


def test_register_then_unregister_round_trip():
    spec = MethodSpec("test-ddim-copy", METHODS["ddim"].build, 1, reference="test")
    register_method(spec)
    try:
        assert pndmkit.sample(lambda x, t: 0 * x, np.ones(2), schedule=pndmkit.LinearVP(), method="test-ddim-copy",
                              steps=3).nfe == 3
    finally:
        assert unregister_method("test-ddim-copy") is spec
    assert "test-ddim-copy" not in METHODS


@pytest.mark.parametrize("name", ["a,b", "--steps", "DDIM", "", "has space"])
def test_method_names_the_cli_can_address(name):
    with pytest.raises(ValueError, match="spec.name must be lower-case"):
        MethodSpec(name, METHODS["ddim"].build, 1)


def test_a_spec_checks_its_fields():
    with pytest.raises(TypeError, match="spec.build must be callable"):
        MethodSpec("test-x", 3, 1)
    with pytest.raises(ValueError, match="spec.order must be a positive integer or None"):
        MethodSpec("test-x", METHODS["ddim"].build, 0)


def test_plugins_bring_user_methods_to_a_new_pndmkit_process(tmp_path):
    """A fresh `pndmkit` process knows a user's methods through PNDMKIT_PLUGINS (tests/external_methods.py
    registers nothing itself, so a two-line plugin module does it, as a user would)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "myplugin.py").write_text("import pndmkit\nfrom external_methods import EXTERNAL\n"
                                          "for spec in EXTERNAL:\n    pndmkit.register_method(spec)\n")
    tests = Path(__file__).resolve().parent
    env = dict(os.environ, PNDMKIT_PLUGINS="myplugin", PYTHONPATH=os.pathsep.join([str(tmp_path), str(tests)]))
    out = subprocess.run([sys.executable, "-m", "pndmkit", "methods", "--json"], capture_output=True, text=True,
                         env=env, check=True, cwd=tmp_path).stdout
    names = {row["name"] for row in json.loads(out)["methods"]}
    assert {"test-ab3-s", "test-pec-trapezoid"} <= names
    bad = subprocess.run([sys.executable, "-m", "pndmkit", "methods"], capture_output=True, text=True,
                         env=dict(env, PNDMKIT_PLUGINS="no_such_plugin_module"), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "PNDMKIT_PLUGINS: cannot import 'no_such_plugin_module'" in bad.stderr


def _ddim_on(schedule, name="ddim"):
    from pndmkit import DDIMTransfer, Integrator, Single

    return Integrator(Single(), DDIMTransfer(schedule), name)


def test_a_build_that_ignores_its_schedule_is_refused_by_name():
    from pndmkit.schedules import LinearVP

    spec = MethodSpec("test-ignores-schedule", lambda sched: _ddim_on(LinearVP(), "test-ignores-schedule"), 1)
    # the two schedules print alike, so the message says it is another object (it read "asked for LinearVP(...),
    # it built on LinearVP(...)", which names no difference)
    with pytest.raises(ValueError, match="'test-ignores-schedule' ignores the schedule it is given: asked for "
                                         r"LinearVP\(.*\), it built on another object equal to it in print, "
                                         r"LinearVP\(.*\) \(build\(schedule\) must use"):
        register_method(spec)
    assert "test-ignores-schedule" not in METHODS


def test_a_failing_build_is_named_with_the_schedule_it_failed_on():
    spec = MethodSpec("test-disc-fail", lambda s: _ddim_on(s) if s.continuous else 1 / 0, 1)
    with pytest.raises(ValueError, match=r"the build of method 'test-disc-fail' failed on DiscreteVP.linear\(T=1000\): "
                                         "ZeroDivisionError"):
        register_method(spec)


def test_replace_must_be_a_bool_and_names_travel_with_the_build():
    import numpy as np

    from pndmkit import sample
    from pndmkit.schedules import LinearVP

    spec = MethodSpec("test-named-other", lambda s: _ddim_on(s, "ddim"), 1)
    register_method(spec)
    try:
        with pytest.raises(TypeError, match="replace must be True or False"):
            register_method(MethodSpec("test-named-other", spec.build, 1, reference="second"), replace="no")
        assert METHODS["test-named-other"].reference == ""
        sol = sample(lambda x, t: 0.1 * x, np.ones(2), schedule=LinearVP(), method="test-named-other", steps=3)
        assert sol.method == "test-named-other"  # the registry name, not the name the build chose
    finally:
        unregister_method("test-named-other")


def test_names_that_become_the_same_python_identifier_are_refused():
    from pndmkit.methods import identifier

    assert identifier("f-pndm_s") == identifier("f-pndm-s") == "f_pndm_s"
    with pytest.raises(ValueError, match="'f-pndm-s' is registered and both become the Python name 'f_pndm_s'"):
        register_method(MethodSpec("f-pndm_s", METHODS["ddim"].build, 1))
    assert "f-pndm_s" not in METHODS


def test_a_plugin_that_fails_while_registering_is_named(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "badplug.py").write_text("from pndmkit import METHODS, MethodSpec, register_method\n"
                                         "register_method(MethodSpec('bad-heun', METHODS['pie'].build, 3))\n")
    env = dict(os.environ, PNDMKIT_PLUGINS="myok,badplug", PYTHONPATH=str(tmp_path))
    (tmp_path / "myok.py").write_text("")
    bad = subprocess.run([sys.executable, "-m", "pndmkit", "methods"], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert ("PNDMKIT_PLUGINS: module 'badplug' failed while registering its methods: ValueError: spec.order=3 for "
            "'bad-heun', but its integrator reports order 2") in bad.stderr


def test_a_user_estimator_without_a_repr_is_listed_by_its_class_name():
    """`pndmkit methods` showed a plugin's gradient part as '<module.Class object at 0x7f...>': the part without a
    repr of its own is listed by its class name, and parts with one keep it."""
    from pndmkit import DDIMTransfer, Integrator
    from pndmkit.estimators import GradientEstimator, Step

    class PlainEuler(GradientEstimator):  # no __repr__, as a user's first estimator often has
        def step(self, x, t, t_next, phi, state):
            e = yield x, t
            return Step(state, e=e)

        def order(self, phi):
            return 1

    spec = register_method(MethodSpec("test-plain-euler", lambda sched: Integrator(PlainEuler(), DDIMTransfer(sched)),
                                      1))
    try:
        row = spec.describe()
        assert row["gradient"] == "PlainEuler" and row["transfer"].startswith("DDIMTransfer(")
    finally:
        unregister_method("test-plain-euler")
