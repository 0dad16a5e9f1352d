"""The analysis scripts' command lines: a bad option is one argparse line (exit 2, before any work), and --help
says each default once and what --out is."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _work_started(*args, **kwargs):
    raise AssertionError("the script started its work instead of refusing the option")


def _main_error(module: str, argv: list[str], capsys, monkeypatch) -> str:
    """The usage error of ``module``'s main(argv); its work (minutes, and it overwrites shipped results) is stubbed
    out so that a regression fails at once."""
    import torch

    mod = importlib.import_module(module)
    monkeypatch.setattr(torch, "set_num_threads", _work_started)
    for name in ("run", "StudyTarget", "gmm32d"):
        if hasattr(mod, name):
            monkeypatch.setattr(mod, name, _work_started)
    main = mod.main
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("module, argv, said", [
    ("analysis.bench", ["--threads", "0"], "--threads: expected an integer >= 1, got '0'"),
    ("analysis.bench", ["--threads", "two"], "--threads: expected an integer >= 1, got 'two'"),
    ("analysis.bench", ["--repeats", "0"], "--repeats: expected an integer >= 1, got '0'"),
    ("analysis.bench_nn", ["--threads", "0"], "--threads: expected an integer >= 1, got '0'"),
    ("analysis.grid_bound", ["--threads", "-1"], "--threads: expected an integer >= 1, got '-1'"),
    ("analysis.grid_opt", ["--heldout", "0"], "--heldout: expected an integer >= 1, got '0'"),
    ("analysis.grid_opt_ceiling", ["--bound", "0"], "--bound: expected a finite number > 0, got '0'"),
    ("analysis.bench", ["--out", __file__], f"--out: {__file__!r} exists and is not a folder"),
    ("analysis.unet_free_grid", ["--maxfev", "0"], "--maxfev: expected an integer >= 1, got '0'"),
    ("analysis.unet_fitted", ["--grid-maxfev", "0"], "--grid-maxfev: expected an integer >= 1, got '0'"),
    ("analysis.unet_fitted_per_noise", ["analysis/results/compare_digits_160/fitted.json",
                                        "analysis/results/compare_digits_160/fitted_nfe8.json"],
     "analysis/results/compare_digits_160/fitted_nfe8.json: no row for --nfe 5 (it has [8])"),
    ("analysis.unet_fitted_per_noise", ["no/such.json", "no/such.json"], "no/such.json: not a report of "
                                                                          "analysis.unet_fitted ([Errno 2] No such "
                                                                          "file or directory: 'no/such.json')"),
    ("analysis.unet_fitted", ["--base", "ipndm-v"], "--base: invalid choice: 'ipndm-v' (choose from 'ipndm', "
                                                    "'ipndm-x0')"),
    ("analysis.unet_fitted", ["--nfe", "7"], "--nfe 7: no row in compare_digits_160 to judge it against (NFE "
                                             "[5, 6, 8, 10, 15, 20, 50] have one)"),
])
def test_a_bad_option_is_one_usage_line(module, argv, said, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [module])
    err = _main_error(module, argv, capsys, monkeypatch)
    assert "Traceback" not in err and err.strip().splitlines()[-1].endswith(said)


def test_unet_fitted_continues_only_fits_on_its_base(tmp_path, capsys, monkeypatch):
    """--continue-from a report whose fits are on another base (one written before --base: ipndm) is refused
    before any work: its weights hold for that base's transfer only."""
    import analysis.unet_fitted as mod

    monkeypatch.setattr(sys, "argv", ["analysis.unet_fitted"])
    monkeypatch.setattr(mod, "Runner", _work_started)
    earlier = tmp_path / "fitted.json"
    earlier.write_text(json.dumps({"rows": [{"nfe": 5, "grid": [999.0, -1.0], "weights": [[1.0]]}]}))
    err = _main_error("analysis.unet_fitted", ["--nfe", "5", "--base", "ipndm-x0", "--continue-from", str(earlier)],
                      capsys, monkeypatch)
    assert err.strip().splitlines()[-1].endswith(f"--continue-from {earlier}: its fits are built on ipndm, not "
                                                 "--base ipndm-x0; give --base ipndm or start afresh"), err


@pytest.mark.parametrize("module", ["analysis.grid_bound", "analysis.grid_opt", "analysis.grid_opt_ceiling",
                                    "analysis.grid_opt_defaults", "analysis.bench", "analysis.bench_nn",
                                    "analysis.real_orders", "analysis.audit_table", "analysis.gpu_check"])
def test_help_says_each_default_once_and_what_out_is(module, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    options = re.split(r"\n  (?=-)", text.split("options:", 1)[1])
    for option in options:
        assert option.count("(default") <= 1, option
    out = next(o for o in options if o.startswith("--out"))
    assert out.startswith(("--out FILE.json", "--out DIR")) and ("JSON file path" in out or "folder" in out), out


def test_a_results_file_is_rewritten_only_where_a_number_moved(tmp_path):
    """Re-running python -m analysis.real_orders rewrote the shipped JSON with last-digit float differences,
    leaving the checkout dirty; it now keeps a file whose numbers all agree within REWRITE_RTOL."""
    from analysis.real_orders import REWRITE_RTOL
    from analysis.tables import same_numbers, write_json_if_changed

    path = tmp_path / "r.json"
    doc = {"a": [1.0, 0.1 + 0.2, float("nan")], "b": {"n": 3, "s": "x", "ok": True}}
    assert write_json_if_changed(path, doc, rtol=REWRITE_RTOL) and not list(tmp_path.glob("*.tmp"))
    text = path.read_text()
    nudged = {"a": [1.0 + 2e-16, 0.3, float("nan")], "b": {"n": 3, "s": "x", "ok": True}}
    assert not write_json_if_changed(path, nudged, rtol=REWRITE_RTOL) and path.read_text() == text
    moved = {"a": [1.0 + 1e-6, 0.3, float("nan")], "b": {"n": 3, "s": "x", "ok": True}}
    assert write_json_if_changed(path, moved, rtol=REWRITE_RTOL) and json.loads(path.read_text())["a"][0] == 1.0 + 1e-6
    for other in ({"a": [1.0, 0.3], "b": {}}, {"a": [1.0, 0.3, 0.0], "b": {"n": 3, "s": "y", "ok": True}},
                  {"a": [1.0, 0.3, float("nan")], "b": {"n": 3, "s": "x", "ok": 1}}):
        assert not same_numbers(json.loads(path.read_text()), other, REWRITE_RTOL)
    # the shipped results file, its own document written back: a copy, so that a broken function cannot dirty
    # the checkout (the copy keeps the file's bytes and mtime)
    shipped = tmp_path / "real_orders.json"
    shutil.copy2(ROOT / "analysis" / "results" / "real_orders.json", shipped)
    before = (shipped.read_bytes(), shipped.stat().st_mtime_ns)
    assert not write_json_if_changed(shipped, json.loads(before[0]), rtol=REWRITE_RTOL)
    assert (shipped.read_bytes(), shipped.stat().st_mtime_ns) == before


def test_bench_into_out_writes_the_network_benchmark_there_too(tmp_path, monkeypatch):
    """`python -m analysis.bench --out DIR` ran analysis.bench_nn with its default output, so a trial run into a
    scratch folder overwrote the shipped analysis/results/bench_nn.json; the network results now go to DIR."""
    bench = importlib.import_module("analysis.bench")
    bench_nn = importlib.import_module("analysis.bench_nn")
    monkeypatch.setattr(bench, "run", lambda **kwargs: {"stub": True})
    monkeypatch.setattr(bench, "markdown", lambda result: "stub\n")
    told = []
    monkeypatch.setattr(bench_nn, "main", lambda argv: told.append(list(argv)) or 0)
    shipped = (ROOT / "analysis" / "results" / "bench_nn.json").read_bytes()
    assert bench.main(["--out", str(tmp_path)]) == 0
    assert told == [["--out", str(tmp_path / "bench_nn.json")]]
    assert json.loads((tmp_path / "bench.json").read_text()) == {"stub": True}
    assert (ROOT / "analysis" / "results" / "bench_nn.json").read_bytes() == shipped


class _Parsed(Exception):
    """Raised in place of a script's work: the parser it built and what it parsed."""

    def __init__(self, parser, args):
        super().__init__()
        self.parser, self.parsed = parser, args


@pytest.mark.parametrize("module, out, cache", [
    ("analysis.analytic_start", "compare_digits_160/analytic_start", True),
    ("analysis.compare_digits", "compare_digits", True),
    ("analysis.compare_digits_160", "compare_digits_160", True),
    ("analysis.compare_digits_leading_multistep", "compare_digits_160/leading_multistep", True),
    ("analysis.grid_bound", "grid_bound_digits.json", True),
    ("analysis.grid_opt", "grid_opt_digits.json", True),
    ("analysis.real_orders", "real_orders.json", True),
    ("analysis.unet_free_grid", "compare_digits_160/free_grid", True),
    ("analysis.unet_fitted", "compare_digits_160/fitted", True),
    ("analysis.grid_opt_ceiling", "grid_opt_ceiling.json", False),
    ("analysis.grid_opt_defaults", "grid_opt_defaults.json", False),
    ("analysis.levers", "levers", False),
])
def test_cache_and_out_are_one_definition_shared_by_every_script(module, out, cache, monkeypatch):
    """Each script spelled --cache and --out itself (some --cache without help or metavar): they are now the one
    helper analysis.tables.add_cache_and_out, the same default cache, option text and help in every script, each
    default said once."""
    import argparse

    from analysis.tables import REAL_CACHE, RESULTS

    def parsed(self, args=None, namespace=None):
        raise _Parsed(self, real(self, args, namespace))

    real = argparse.ArgumentParser.parse_args
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parsed)
    with pytest.raises(_Parsed) as caught:
        importlib.import_module(module).main([])
    parser, args = caught.value.parser, caught.value.parsed
    assert args.out == str(RESULTS / out)
    actions = {a.dest: a for a in parser._actions}
    assert (args.cache == str(REAL_CACHE)) if cache else "cache" not in actions
    if cache:
        assert (actions["cache"].metavar, actions["cache"].help.split(" (default")[0]) == (
            "DIR", "reference cache; references solved here are added to it")
    for dest in ("cache", "out")[not cache:]:
        text = parser._get_formatter()._expand_help(actions[dest])
        assert text.count("(default") == 1, text
