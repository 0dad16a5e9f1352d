"""Bad input on the command line: one line on stderr naming the option, exit status 2, nothing written.

Every case runs ``pndmkit.cli.main`` in-process; two run the real entry points in a subprocess. ``{out}``
in a case stands for a fresh folder that must still not exist afterwards.
"""

from __future__ import annotations

import argparse
import json
import re
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pndmkit.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent

# (argv, text the one line must contain: the option and, where it matters, the allowed values)
CASES = [
    # top level and methods
    ([], "a COMMAND is required: methods, order"),
    (["smaple"], "invalid choice: 'smaple'"),
    (["methods", "--jsn"], "unrecognized arguments: --jsn (did you mean --json?)"),
    (["methods", "--js"], "unrecognized arguments: --js"),  # no prefix abbreviations
    (["methods", "extra"], "unrecognized arguments: extra"),
    # order
    (["order", "--methods", "f-pndmm"], "--methods: unknown method(s) ['f-pndmm']; known: ddim"),
    (["order", "--methods", ""], "--methods: the list of methods is empty (got ''); give comma-separated names"),
    (["order", "--methods", " , "], "--methods: the list of methods is empty (got ' , ')"),
    (["order", "--methods", "ddim,,ipndm"], "--methods: entry 2 of 'ddim,,ipndm' is empty; give comma-separated "
                                            "method names without empty entries"),
    (["order", "--methods", "ddim,"], "--methods: entry 2 of 'ddim,' is empty"),
    (["order", "--methods", "ddim,ipndm,ddim"], "--methods: method(s) ['ddim'] named more than once in "
                                                "'ddim,ipndm,ddim'; name each once"),
    (["order", "--steps", "5,,10"], "--steps: entry 2 of '5,,10' is empty; give comma-separated step counts "
                                    "without empty entries"),
    (["order", "--steps", "5"], "--steps:"),
    (["order", "--t-start", "abc"], "--t-start: expected a finite number, got 'abc'"),
    (["order", "--problem", "gmm3d"], "--problem: invalid choice: 'gmm3d' (choose from"),
    (["order", "--schedule", "vp"], "--schedule: invalid choice: 'vp'"),
    (["order", "--grid", "lineer"], "--grid: invalid choice: 'lineer'"),
    (["order", "--meth", "ddim"], "unrecognized arguments: --meth ddim (did you mean --methods?)"),
    (["order", "--batch", "x"], "--batch: expected an integer >= 1, got 'x'"),
    # every message names its option, in the "--option: value: allowed" form
    (["order", "--t-start", "2"], "--t-start: t_start=2.0 lies outside the domain [0.0, 1.0] of LinearVP"),
    (["order", "--t-end", "-1"], "--t-end: t_end=-1.0 lies outside the domain [0.0, 1.0] of LinearVP"),
    (["order", "--t-start", "0.5", "--t-end", "0.6"], "--t-start/--t-end: t_start=0.5 must be larger than t_end=0.6"),
    (["order", "--t-start", "nan"], "--t-start: expected a finite number, got 'nan'"),
    (["order", "--batch", "0"], "--batch: expected an integer >= 1, got '0'"),
    (["order", "--seed", "-1"], "--seed: expected an integer >= 0, got '-1'"),
    (["order", "--steps", "25,100000000"], "--steps: step counts must be at most 100000, got 100000000"),
    (["order", "--methods", "ddim", "--steps", "25,50", "--plot", "{out}.xyz"],
     "o.xyz' has no image extension matplotlib writes; use one of ."),
    (["order", "--methods", "ddim", "--steps", "25,50", "--plot", "{out}/x.png"], "--plot: the folder of '"),
    (["order", "--cache", "{out}"], "--cache: --cache DIR holds the network study's references; it needs --model"),
    # coefficients
    (["coefficients"], "a KIND is required: adams-bashforth, adams-moulton, bdf, lmm, variable, tableau"),
    (["coefficients", "adams-bashforth", "0"], "k: K must be an integer in [1, 30], got '0'"),
    (["coefficients", "adams-bashforth", "1000"], "k: K must be an integer in [1, 30], got '1000'"),
    (["coefficients", "bdf", "31"], "k: K must be an integer in [1, 30], got '31'"),
    (["coefficients", "local-error", "17"], "k: K must be an integer in [1, 16], got '17'"),
    (["coefficients", "lmm", "--alpha=-1,1", "--beta", "1"],
     "--alpha/--beta: alpha and beta must have the same length"),
    (["coefficients", "lmm", f"--alpha={','.join(['1'] * 32)}", "--beta", "1"],
     "--alpha: at most 31 coefficients (k <= 30), got 32"),
    (["coefficients", "variable", "--nodes", ",".join(map(str, range(1, 32))), "--step", "0,1"],
     "--nodes: at most 30 nodes, got 31"),
    (["coefficients", "variable", "--nodes", "1/2,7/10", "--step", "1/2,1/4", "--variable", "s"],
     "--schedule/--variable: --variable s needs --schedule (linear-vp,"),
    (["coefficients", "tableau", "foo"], "unknown tableau 'foo'; known: euler"),
    (["coefficients", "variable", "--nodes", "1,1", "--step", "0,1"], "nodes must be distinct"),
    (["coefficients", "bogus"], "invalid choice: 'bogus'"),
    (["coefficients", "lmm", "--alpha", "x", "--beta", "1,1"], "--alpha: "),
    # compare
    (["compare", "--nfe", "x"], "--nfe: expected an integer in [1, 100000], got 'x'"),
    (["compare", "--nfe", "0"], "--nfe: expected an integer in [1, 100000], got '0'"),
    (["compare", "--nfe", "100001"], "--nfe: expected an integer in [1, 100000], got '100001'"),
    (["compare", "--quick", "--peers", "dpmsolver"], "--peers: unknown peer 'dpmsolver' in peers; known: ddim,"),
    (["compare", "--quick", "--seed", "-1"], "--seed: expected an integer >= 0, got '-1'"),
    (["compare", "--quick", "--peers", "--methods", "f-pndm", "--nfe", "3"],
     "--nfe/--methods: no solver runs within nfes=[3] on discrete-linear: the fewest model calls of a run are "
     "f-pndm 4"),
    (["compare", "--methods", "foo"], "--methods: unknown or adaptive method 'foo'; fixed-step methods: ddim"),
    (["compare", "--methods", "pf"], "--methods: unknown or adaptive method 'pf'"),
    (["compare", "--quick", "--optimized-grids", "dpm-solver++-3m-nolof"],
     "--optimized-grids: 'dpm-solver++-3m-nolof' is a compare variant (run by --methods), not a registered method; "
     "grids are optimised for registered fixed-step methods: ddim,"),
    (["compare", "--quick", "--optimized-grids", "pf"], "--optimized-grids: unknown or adaptive method 'pf'; grids"),
    (["compare", "--problem", "gmm3d"], "--problem: unknown problem 'gmm3d'; built-in problems: gmm1d"),
    (["compare", "--schedule", "foo"], "--schedule: invalid choice: 'foo'"),
    (["compare", "--n", "x"], "--n: expected an integer >= 1, got 'x'"),
    (["compare", "--quik"], "unrecognized arguments: --quik (did you mean --quick?)"),
    # sample: the example first
    (["sample", "--out", "{out}", "--method", "f-pndmm", "--num-samples", "4"],
     "--method: unknown method 'f-pndmm'; known methods: ddim"),
    (["sample", "--out", "{out}", "--checkpoint", "nope"], "--checkpoint: checkpoint 'nope' not found"),
    (["sample", "--out", "{out}", "--grid", "lineer"], "--grid: unknown grid kind 'lineer'; known: uniform"),
    (["sample", "--out", "{out}", "--device", "cdua"], "--device: unknown device 'cdua'; e.g. cpu, cuda"),
    (["sample", "--out", "{out}", "--device", "cuda:99"], "--device: device 'cuda:99'"),
    (["sample", "--out", "{out}", "--steps", "0"], "--steps: expected an integer >= 1, got '0'"),
    (["sample", "--out", "{out}", "--steps", "x"], "--steps: expected an integer >= 1, got 'x'"),
    (["sample", "--out", "{out}", "--num-samples", "0"], "--num-samples: expected an integer >= 1"),
    (["sample", "--out", "{out}", "--batch-size", "-1"], "--batch-size: expected an integer >= 1"),
    (["sample", "--out", "{out}", "--shard-size", "0"], "--shard-size: expected an integer >= 1"),
    (["sample", "--out", "{out}", "--seed", "-1"], "--seed: expected an integer >= 0"),
    (["sample", "--out", "{out}", "--threads", "0"], "--threads: expected an integer >= 1"),
    (["sample", "--out", "{out}", "--dtype", "float8"], "--dtype: invalid choice: 'float8' (choose from"),
    (["sample", "--out", "{out}", "--convention", "ddpm"], "--convention: invalid choice: 'ddpm'"),
    (["sample", "--out", "{out}", "--stpes", "3"], "unrecognized arguments: --stpes 3 (did you mean --steps?)"),
    (["sample", "--out", "{out}", "--step", "3"], "unrecognized arguments: --step 3 (did you mean --steps?)"),
    (["sample", "--method", "ddim"], "the following arguments are required: --out"),
    (["sample", "--out", "{out}", "--method", "ddim", "--grid", "trailing", "--steps", "1001"],
     "--steps: steps=1001 exceeds the 1000 training"),
    (["sample", "--out", "{out}", "--checkpoint", "digits_classifier"],
     "--checkpoint: checkpoint '"),
    # train
    (["train", "--out", "{out}", "--preset", "ddpm-cifar10"],
     "--preset: preset 'ddpm-cifar10' has 3 input and 3 output channels; the digits are 1-channel"),
    (["train", "--out", "{out}", "--preset", "foo"], "--preset: unknown preset 'foo'; known: ddpm-cifar10"),
    (["train", "--out", "{out}", "--lr", "nan"], "--lr: expected a finite number > 0, got 'nan'"),
    (["train", "--out", "{out}", "--lr", "0"], "--lr: expected a finite number > 0"),
    (["train", "--out", "{out}", "--loss", "l3"], "--loss: invalid choice: 'l3' (choose from 'l2', 'l1')"),
    (["train", "--out", "{out}", "--ema-decay", "1"], "--ema-decay: expected a number in [0, 1)"),
    (["train", "--out", "{out}", "--dropout", "1.5"], "--dropout: expected a number in [0, 1)"),
    (["train", "--out", "{out}", "--batch-size", "1000000000"], "--batch-size: batch_size=1000000000 needs about"),
    (["train", "--out", "{out}", "--device", "cdua"], "--device: unknown device 'cdua'"),
    (["train", "--out", "{out}", "--max-minutes", "0"], "--max-minutes: expected a finite number > 0"),
    (["train", "--out", "{out}", "--warmup", "-1"], "--warmup: expected an integer >= 0"),
    (["train", "--out", "{out}", "--steps", "0"], "--steps: expected an integer >= 1"),
    (["train", "--out", "{out}", "--checkpoint-every", "0"], "--checkpoint-every: expected an integer >= 1"),
    (["train", "--out", "{out}", "--grad-clip", "-1"], "--grad-clip: expected a finite number >= 0"),
    (["train", "--out", "{out}", "--pres", "tiny"], "unrecognized arguments: --pres tiny (did you mean --preset?)"),
    (["train", "--out", "{out}", "--name", ""], "--name: name='' must be a plain file name (no folder"),
    (["train", "--out", "{out}", "--name", "a/b"], "--name: name='a/b' must be a plain file name"),
    (["train", "--out", "{out}", "--name", "..", "--classifier"], "--name: name='..' must be a plain file name"),
    # grid optimize: every message starts "pndmkit grid optimize: error:" (see the test below)
    (["grid"], "an ACTION is required: optimize, fit (see pndmkit grid --help)"),
    (["grid", "fit", "--nfe", "3", "--problem", "gmm2d"], "the following arguments are required: --out"),
    (["grid", "fit", "--nfe", "0", "--problem", "gmm2d", "--out", "{out}/s.json"],
     "--nfe: expected an integer in [1, 100000], got '0'"),
    (["grid", "fit", "--nfe", "3", "--problem", "gmm2d", "--out", "{out}/s.json", "--cache", "{out}"],
     "--cache: --cache DIR holds a network's references; it needs --model"),
    (["grid", "fit", "--nfe", "3", "--model", "nonexistent", "--out", "{out}/s.json"],
     "--model: checkpoint 'nonexistent' not found"),
    (["grid", "fit", "--nfe", "3", "--problem", "gmm2d", "--out", "{out}/s.json", "--out", "{out}/t.json"],
     "--out: given twice ("),
    (["sample", "--out", "{out}", "--solver", "{out}.json", "--method", "ipndm"],
     "o.json and --method cannot be given together: the fitted solver's grid and step weights make the run"),
    (["sample", "--out", "{out}", "--solver", "{out}.json"], "o.json not found"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "5"],
     "--problem/--model: give exactly one of --problem NAME or --model"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "0", "--problem", "gmm2d"],
     "--nfe: expected an integer in [1, 100000], got '0'"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "5", "--problem", "gmm2d", "--seed", "-1"],
     "--seed: expected an integer >= 0, got '-1'"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "5", "--problem", "gmm2d", "--cache", "{out}"],
     "--cache: --cache DIR holds a network's references; it needs --model"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "5", "--problem", "gmm2d", "--degree", "0"],
     "--degree: expected an integer >= 1, 'free' or 'auto', got '0'"),
    (["grid", "optimize", "--method", "ipndm", "--nfe", "2", "--problem", "gmm2d", "--degree", "3"],
     "--degree: degree=3 is more than a grid of 2 steps can use: its 1 interior time takes a polynomial of degree 1 "
     "(degree 1, or None, 'free' at the command line, moves every step)"),
    (["grid", "optimize", "--method", "ipndm", "--nfe", "6", "--problem", "gmm2d", "--degree", "99"],
     "--degree: degree=99 is more than a grid of 6 steps can use: its 5 interior times take a polynomial of degree "
     "1 to 5 (degree 5, or None, 'free' at the command line, moves every step)"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "5", "--problem", "gmm2d", "--start", "999,a"],
     "--start: expected a grid kind or numbers separated by commas or spaces, got '999,a'"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "5", "--model", "nonexistent"],
     "--model: checkpoint 'nonexistent' not found"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "5", "--model", "gmm2d"],
     "--model: 'gmm2d' is a built-in problem, not a network; use --problem gmm2d"),
    # one step with the first time fixed leaves nothing to search (the default, a free first time, searches it)
    (["grid", "optimize", "--method", "f-pndm", "--nfe", "6", "--problem", "gmm2d", "--first-time", "fixed"],
     "--nfe: --nfe 6 buys f-pndm one step, using only 4 of the 6 evaluations; one step's grid is its two end times, "
     "with no interior time to optimise: give --nfe 8 or more (two steps), or --first-time free (the first time is "
     "then searched)"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "1", "--model", "digits", "--first-time", "fixed"],
     "--nfe: --nfe 1 buys ddim one step; one step's grid"),
    (["audit", "/nonexistent/folder"], "target: /nonexistent/folder: no such file or folder"),
    (["audit", "{out}/a/b"], "/a/b: no such file or folder"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "5", "--problem", "gmm2d", "--start", "lineer"],
     "--start: start must be one of the grid kinds ['karras', 'logsnr', 'quadratic', 's-uniform', 'uniform'] or a sequence of times, got 'lineer'"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "2", "--problem", "gmm2d", "--start", "999,10"],
     "--start: start must be a decreasing grid of 3 finite times"),
    # a name k-diffusion or ComfyUI gives an algorithm pndmkit lacks: every method option says so, as get_method does
    (["order", "--methods", "ddim,res_multistep"],
     "--methods: unknown method(s) ['res_multistep']: 'res_multistep' names ComfyUI's sampler 'res_multistep' "
     "(sample_res_multistep), an algorithm pndmkit does not implement"),
    (["order", "--methods", "res_multistep,dpm_2"], "the nearest is sample_dpmpp_2m; 'dpm_2' names k-diffusion's "
                                                   "sampler 'dpm_2' (sample_dpm_2)"),
    (["compare", "--methods", "res-multistep"],
     "--methods: unknown or adaptive method 'res-multistep': 'res-multistep' names ComfyUI's sampler"),
    (["compare", "--optimized-grids", "DPM_2"],
     "--optimized-grids: unknown or adaptive method 'DPM_2': 'DPM_2' names k-diffusion's sampler 'dpm_2'"),
    (["grid", "optimize", "--method", "euler-ancestral", "--nfe", "5", "--problem", "gmm2d"],
     "--method: unknown method 'euler-ancestral': 'euler-ancestral' names k-diffusion's sampler 'euler_ancestral'"),
    # advice names the option, not the Python parameter pndmkit.sample's message names (t_start, steps)
    (["sample", "--out", "{out}", "--grid", "999,500,-1", "--t-start", "900"],
     "--t-start/--grid: t_start=900.0 contradicts the explicit grid, which runs from 999.0 to -1.0; leave --t-start "
     "out\n"),
    (["sample", "--out", "{out}", "--grid", "999,500,-1", "--steps", "5"],
     "--steps/--grid: steps=5 but grid has 3 times (2 steps): give as many steps as the times make, or leave --steps "
     "out\n"),
    (["sample", "--out", "{out}", "--convention", "official-pndm", "--grid", "999,500,-1"],
     "--grid/--convention: --convention official-pndm generates its own grid and cannot be combined with explicit "
     "--grid times; give the times without --convention (the network is then told t itself, where official-pndm "
     "tells it t - 1: pndmkit sample has no option for that shift)\n"),
    # an option that takes a value, given twice: refused, not the last one kept in silence
    (["sample", "--out", "{out}", "--steps", "10", "--steps", "20"],
     "--steps: given twice ('10', then '20'); give it once"),
    (["order", "--max-minutes", "1", "--max-minutes", "2"], "--max-minutes: given twice ('1.0', then '2.0'); give it once"),
    (["order", "--methods", "ddim", "--methods=ipndm"], "--methods: given twice ('ddim', then 'ipndm'); give it once"),
    (["order", "--steps", "5,10", "--steps", "5,20"], "--steps: given twice ('5,10', then '5,20'); give it once"),
    (["train", "--out", "{out}", "--out", "{out}"], "--out: given twice ("),
    (["compare", "--nfe", "5", "--nfe", "5"], "--nfe: given twice ('5', then '5'); give it once"),
    (["grid", "optimize", "--method", "ddim", "--nfe", "5", "--problem", "gmm2d", "--method", "ipndm"],
     "--method: given twice ('ddim', then 'ipndm'); give it once"),
    (["coefficients", "lmm", "--alpha=-1,1", "--beta", "1,1", "--alpha=1,-1"],
     "--alpha: given twice ('-1,1', then '1,-1'); give it once"),
]
TORCH_COMMANDS = ("sample", "train")




@pytest.mark.parametrize("argv, expected", CASES, ids=[" ".join(a) or "(none)" for a, _ in CASES])
def test_bad_input_is_one_line_naming_the_option(argv, expected, tmp_path, run_cli):
    if argv and argv[0] in TORCH_COMMANDS:
        pytest.importorskip("torch")
    out = tmp_path / "o"
    code, _, err = run_cli([a.replace("{out}", str(out)) for a in argv])
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    command = " ".join(a for a in argv[:1] if not a.startswith("-") and a != "smaple")
    assert err.startswith(f"pndmkit{' ' + command if command else ''}") and ": error: " in err, err
    if argv[:2] in (["grid", "optimize"], ["grid", "fit"]):  # one prefix, whichever part found the error
        assert err.startswith(f"pndmkit grid {argv[1]}: error: "), err
    assert expected in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written, in {out} or beside it (train --name '' wrote o.json)


def test_every_sub_command_is_covered():
    covered = {argv[0] for argv, _ in CASES if argv}
    assert covered >= {"methods", "order", "coefficients", "compare", "sample", "train", "grid"}
    assert len(CASES) >= 40


def _all_parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _all_parsers(child)


def test_no_abbreviations_and_every_value_option_says_its_default():
    missing = []
    for parser in _all_parsers(build_parser()):
        assert parser.allow_abbrev is False, parser.prog
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.option_strings and action.nargs != 0 and not action.required and action.help is not None:
                text = formatter._expand_help(action)
                if "default" not in text.lower():
                    missing.append(f"{parser.prog} {action.option_strings[0]}: {text}")
    assert missing == []
    sample = next(p for p in _all_parsers(build_parser()) if p.prog.endswith(" sample"))
    text = sample.format_help()
    assert "default: --batch-size, so an interrupt loses at most one batch" in " ".join(text.split())


def test_every_option_that_takes_a_value_refuses_a_repeat_and_flags_may_repeat(run_cli):
    """argparse kept the last of `--steps 10 --steps 20` in silence. Every option of every sub-command that takes
    a value is now the parser's once-only action (a repeatable option says so: action="append"), so an option
    added later gets the refusal too; a flag given twice means what it means once."""
    from pndmkit.commands.args import StoreOnce

    unguarded = [f"{parser.prog} {action.option_strings[0]}" for parser in _all_parsers(build_parser())
                 for action in parser._actions
                 if action.option_strings and action.nargs != 0
                 and not isinstance(action, (StoreOnce, argparse._AppendAction, argparse._HelpAction))]
    assert unguarded == []
    assert run_cli(["methods", "--json", "--json"]) == run_cli(["methods", "--json"])
    assert run_cli(["methods", "--json"])[0] == 0
    # the record of what was given starts afresh with each parse: the same parser parses twice
    parser = build_parser()
    assert parser.parse_args(["order", "--steps", "5,10"]).steps == [5, 10]
    assert parser.parse_args(["order", "--steps", "5,20"]).steps == [5, 20]


def test_a_bug_keeps_its_traceback_and_a_user_error_does_not(monkeypatch, run_cli):
    from pndmkit.commands import methods

    monkeypatch.setattr(methods, "rows", lambda: max([]))  # ValueError from a bug: names no option
    with pytest.raises(ValueError, match="empty"):
        main(["methods", "--json"])
    monkeypatch.setattr(methods, "rows", lambda: [][1])
    with pytest.raises(IndexError):
        main(["methods"])

    def user_error():
        raise ValueError("json output is not available for this table")  # names the given option's dest

    monkeypatch.setattr(methods, "rows", user_error)
    code, _, err = run_cli(["methods", "--json"])
    assert code == 2 and err == "pndmkit methods: error: --json: json output is not available for this table\n"
    with pytest.raises(ValueError, match="json output"):  # the same message without --json given: a bug
        main(["methods"])
    monkeypatch.setenv("PNDMKIT_TRACEBACK", "1")
    with pytest.raises(ValueError, match="json output"):
        main(["methods", "--json"])


def test_usage_error_params_map_to_options(monkeypatch, run_cli):
    from pndmkit.commands import methods
    from pndmkit.errors import UsageError

    def refuse(params, message):
        def rows():
            raise UsageError(params, message)
        return rows

    monkeypatch.setattr(methods, "rows", refuse(("json", "markdown"), "json=False then, True now"))
    code, _, err = run_cli(["methods"])  # UsageError: a user error whether or not the option was given
    assert code == 2 and err == "pndmkit methods: error: --json: json=False then, True now\n"
    monkeypatch.setattr(methods, "rows", refuse(("json", "markdown"), "these two cannot be combined"))
    code, _, err = run_cli(["methods"])  # no parameter named in the message: all of them
    assert code == 2 and err == "pndmkit methods: error: --json/--markdown: these two cannot be combined\n"
    monkeypatch.setattr(methods, "rows", refuse(("out_dir",), "out_dir is not a folder"))
    code, _, err = run_cli(["methods"])  # a parameter that is no option of this command: as named
    assert code == 2 and err == "pndmkit methods: error: out_dir: out_dir is not a folder\n"


# -- torch sub-commands: interrupts, resume, non-finite samples ---------------------------------------
@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from pndmkit.nn.checkpoint import save_checkpoint
    from pndmkit.nn.unet import UNet
    from pndmkit.schedules import DiscreteVP

    torch.set_num_threads(1)
    torch.manual_seed(0)
    stem = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(stem, UNet.preset("tiny"), schedule=DiscreteVP.linear())
    return str(stem)


def _interrupt_on(monkeypatch, n, exc):
    import pndmkit
    import torch

    real, calls = pndmkit.sample, {"n": 0}

    def sample(model, x, *args, **kwargs):
        if isinstance(x, torch.Tensor):
            calls["n"] += 1
            if calls["n"] == n:
                exc()
        return real(model, x, *args, **kwargs)

    monkeypatch.setattr(pndmkit, "sample", sample)


@pytest.mark.parametrize("how, code, word", [
    (lambda: (_ for _ in ()).throw(KeyboardInterrupt()), 130, "interrupted"),
    (lambda: signal.raise_signal(signal.SIGTERM), 143, "terminated")])
def test_interrupt_prints_the_resume_command_and_it_works(ckpt, tmp_path, monkeypatch, capsys, how, code, word):
    from pndmkit.nn.generate import read_samples

    out = tmp_path / "run"
    argv = ["sample", "--checkpoint", ckpt, "--out", str(out), "--method", "ddim", "--steps", "3",
            "--num-samples", "5", "--batch-size", "2", "--no-progress"]
    _interrupt_on(monkeypatch, 2, how)
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    prefix = f"pndmkit sample: {word}; resume with: "
    assert err.startswith(prefix)
    resume = shlex.split(err[len(prefix):])
    assert resume == ["pndmkit", *argv, "--resume"]
    assert sorted(p.name for p in out.glob("shard-*.npz")) == ["shard-00000.npz"]
    monkeypatch.undo()
    assert main(resume[1:]) == 0
    idx, x = read_samples(out, expect=5)
    assert idx.tolist() == [0, 1, 2, 3, 4]


def test_resume_with_other_weights_is_one_line(ckpt, tmp_path, run_cli):
    import torch

    from pndmkit.nn.checkpoint import save_checkpoint
    from pndmkit.nn.unet import UNet
    from pndmkit.schedules import DiscreteVP

    stem = tmp_path / "m"
    torch.manual_seed(0)
    save_checkpoint(stem, UNet.preset("tiny"), schedule=DiscreteVP.linear())
    argv = ["sample", "--checkpoint", str(stem), "--out", str(tmp_path / "o"), "--method", "ddim", "--steps", "2",
            "--num-samples", "3", "--batch-size", "2", "--no-progress"]
    assert main(argv) == 0
    code, _, err = run_cli(argv)  # same command again, without --resume
    assert code == 2 and err.startswith("pndmkit sample: error: --out/--resume: ") and err.count("\n") == 1
    torch.manual_seed(1)
    save_checkpoint(stem, UNet.preset("tiny"), schedule=DiscreteVP.linear())
    code, _, err = run_cli(argv + ["--resume"])
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("pndmkit sample: error: --resume/--checkpoint: cannot resume")
    assert "the checkpoint's safetensors file changed" in err


def test_train_resume_at_its_steps_keeps_the_checkpoint_so_samples_resume(tmp_path, capsys):
    """`train --resume` on a finished run keeps digits.json as it is: rewriting it made `sample --resume` from
    it refuse the checkpoint ("the checkpoint's json file changed")."""
    pytest.importorskip("torch")
    run = tmp_path / "run"
    train = ["train", "--out", str(run), "--preset", "tiny", "--steps", "2", "--batch-size", "4", "--threads", "1"]
    assert main(train) == 0
    sample = ["sample", "--checkpoint", str(run / "digits"), "--out", str(tmp_path / "s"), "--method", "ddim",
              "--steps", "2", "--num-samples", "3", "--batch-size", "2", "--shard-size", "2", "--no-progress"]
    assert main(sample) == 0
    (tmp_path / "s" / "shard-00001.npz").unlink()  # an interrupted sampling run
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(train + ["--resume"]) == 0
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert "the run is already at step 2 (steps=2): nothing to train" in capsys.readouterr().err
    assert main(sample + ["--resume"]) == 0
    assert sorted(p.name for p in (tmp_path / "s").glob("shard-*.npz")) == ["shard-00000.npz", "shard-00001.npz"]


@pytest.mark.parametrize("extra", [[], ["--resume"], ["--classifier"]])
@pytest.mark.parametrize("keep", [(".safetensors", ".json"), (".json",)])
def test_train_never_overwrites_a_checkpoint_it_did_not_write(ckpt, tmp_path, run_cli, extra, keep):
    """A finished checkpoint copied into a folder without train_state.pt was silently replaced by a fresh run."""
    pytest.importorskip("torch")
    run = tmp_path / "run"
    run.mkdir()
    for ext in keep:
        (run / f"digits{ext}").write_bytes(Path(ckpt + ext).read_bytes())
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    code, out, err = run_cli(["train", "--out", str(run), "--preset", "tiny", "--steps", "1", "--batch-size", "8",
                              "--seed", "5", *extra])
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"pndmkit train: error: --out/--name: {run / ('digits' + keep[0])} exists and {run} "
                          "holds no train_state.pt to resume: choose another out or name"), err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_sample_resume_with_no_run_says_it_starts_afresh(ckpt, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["sample", "--checkpoint", ckpt, "--out", str(out), "--method", "ddim", "--steps", "2",
                 "--num-samples", "2", "--no-progress", "--resume"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"no previous run to resume in {out} (no run.json): starting a fresh one"
    assert (out / "run.json").is_file() and (out / "shard-00000.npz").is_file()




def _sample_argv(ckpt, out, steps="2", method="ddim"):
    return ["sample", "--checkpoint", ckpt, "--out", str(out), "--method", method, "--steps", steps,
            "--num-samples", "3", "--batch-size", "2", "--no-progress"]


@pytest.mark.parametrize("extra", [[], ["--resume"]])
@pytest.mark.parametrize("left", [("run.json", "summary.json"), ("run.json",), ("run.json", "summary.json", "npz")])
def test_sample_refuses_output_that_no_run_json_describes(ckpt, tmp_path, run_cli, extra, left):
    """With run.json (and summary.json) removed, a fresh run with other settings kept the old shards, reported
    "generated": 0 and wrote a run.json describing them as its own; --resume adopted them likewise."""
    out = tmp_path / "o"
    assert run_cli(_sample_argv(ckpt, out, steps="3", method="ipndm"))[0] == 0
    for name in left:
        for path in out.glob(name if name != "npz" else "shard-*.npz"):
            path.unlink()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, stdout, err = run_cli(_sample_argv(ckpt, out) + extra)
    assert code == 2 and stdout == "" and err.count("\n") == 1 and "Traceback" not in err, err
    from pndmkit.nn.generate import LOCK_FILE

    kept = sorted(name for name in before if name != LOCK_FILE)  # the first run's lock file is no sample output
    names = ", ".join(kept[:3]) + (f" and {len(kept) - 3} more" if len(kept) > 3 else "")
    assert err == (f"pndmkit sample: error: --out: {out} holds sample output that no run.json describes ({names}), "
                   f"so {'--resume (resume=True) cannot check it against this run and ' if extra else ''}a fresh "
                   "run would mix it with its own or overwrite it: move those files away or use another out "
                   "folder\n"), err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("record, phrase", [
    ({}, "is not a run record of this pndmkit (format=None, 2 expected; an older pndmkit's has no checkpoint hashes)"),
    ({"format": 2, "shard_size": 0}, "is damaged: shard_size=0 (an integer >= 1 expected)"),
])
def test_sample_words_an_unreadable_run_json_for_the_call_made(ckpt, tmp_path, run_cli, record, phrase):
    """A run.json holding {} without --resume was reported as "--resume: ... cannot be resumed"."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "run.json").write_text(json.dumps(record))
    code, _, err = run_cli(_sample_argv(ckpt, out))
    assert code == 2 and err.count("\n") == 1, err
    assert err == (f"pndmkit sample: error: --out: {out / 'run.json'} {phrase}; {out} holds a run this pndmkit "
                   f"cannot check, and a fresh run does not overwrite it: "
                   f"{'restore the file or ' if record else ''}use another out folder\n"), err
    code, _, err = run_cli(_sample_argv(ckpt, out) + ["--resume"])
    assert code == 2 and err.count("\n") == 1, err
    assert err == (f"pndmkit sample: error: {'--out' if record else '--resume'}: {out / 'run.json'} {phrase}; it "
                   f"cannot be checked, so the run cannot be resumed: {'restore the file or ' if record else ''}use "
                   "another out folder\n"), err
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]

def test_sample_t_start_at_the_grid_s_end_names_t_start(ckpt, tmp_path, run_cli):
    """--t-start -1 (abar = 1) was blamed on --steps ("steps=3 exceeds the 0 training indices 0..-1")."""
    out = tmp_path / "o"
    code, _, err = run_cli(["sample", "--checkpoint", ckpt, "--out", str(out), "--method", "ddim", "--steps", "3",
                            "--num-samples", "2", "--t-start", "-1", "--no-progress"])
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("pndmkit sample: error: --t-start/--grid: t_start=-1 does not lie above the grid's end t=-1 "
                          "(abar = 1, the data), so no step starts there; t_start of grid 'linspace' on "), err
    assert err.endswith(" must be a training index in 0..999\n") and not out.exists()

def test_non_finite_samples_exit_1_with_one_line(tmp_path, run_cli):
    """Finite weights (a checkpoint with non-finite ones is refused up front) whose output, 3e38 everywhere, is
    finite in float32 but overflows DDIM's x0 = (x - sigma eps) / alpha at the top level (alpha about 0.006):
    the run ends with exit 1, one line naming the first sample, no shard written, and no run.json left (a fresh
    run with no sample is no run to resume: the folder it made is gone)."""
    torch = pytest.importorskip("torch")
    from pndmkit.nn.checkpoint import save_checkpoint
    from pndmkit.nn.unet import UNet
    from pndmkit.schedules import DiscreteVP

    net = UNet.preset("tiny")
    with torch.no_grad():
        net.conv_out.weight.zero_()
        net.conv_out.bias.fill_(3e38)
    assert all(bool(p.isfinite().all()) for p in net.state_dict().values())
    save_checkpoint(tmp_path / "m", net, schedule=DiscreteVP.linear())
    out = tmp_path / "o"
    code, _, err = run_cli(["sample", "--checkpoint", str(tmp_path / "m"), "--out", str(out), "--method", "ddim",
                         "--steps", "2", "--num-samples", "3", "--no-progress"])
    assert code == 1, err
    assert err.startswith("pndmkit sample: error: sample 0 is not finite (NaN or inf) after ddim with 2 steps "
                          "(3 of the 3 in its batch); shard 0 was not written")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
    out.mkdir()  # a folder that was there before the run stays, empty
    code, _, err = run_cli(["sample", "--checkpoint", str(tmp_path / "m"), "--out", str(out), "--method", "ddim",
                            "--steps", "2", "--num-samples", "3", "--no-progress"])
    assert code == 1 and out.is_dir() and not list(out.iterdir()), err


# -- the real entry points ------------------------------------------------------------------------------
def _subprocess(cmd, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_python_dash_m_pndmkit_sample_misspelt_method(tmp_path):
    pytest.importorskip("torch")
    proc = _subprocess([sys.executable, "-m", "pndmkit", "sample", "--out", "o", "--method", "f-pndmm",
                        "--num-samples", "4"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("pndmkit sample: error: --method: unknown method 'f-pndmm'")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "o").exists()


def test_warnings_print_as_one_line_naming_the_command(tmp_path):
    """A StabilityWarning printed the library's file, line and source line (``sys.exit(main())``)."""
    proc = _subprocess([sys.executable, "-m", "pndmkit", "grid", "optimize", "--method", "f-pndm", "--nfe", "8",
                        "--problem", "gmm1d", "--calibration", "2", "--heldout", "2", "--maxfev", "5",
                        "--first-time", "fixed"], tmp_path)  # f-pndm's 2 steps from 999 warn; a late start may not
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and all(line.startswith("pndmkit grid optimize: warning: StabilityWarning: f-pndm: step 2")
                         for line in lines), proc.stderr
    assert ".py:" not in proc.stderr and "main()" not in proc.stderr


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`pndmkit methods --json | head` printed a BrokenPipeError traceback: the reader here is gone before the
    command writes, so every write fails, deterministically."""
    read, write = os.pipe()
    os.close(read)
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-m", "pndmkit", "methods", "--json"], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120, cwd=tmp_path, env=env)
    finally:
        os.close(write)
    assert proc.returncode == 1 and proc.stderr == ""


def test_a_closed_pipe_in_process(monkeypatch, capsys):
    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

        def fileno(self):
            raise ValueError("no descriptor")

    with capsys.disabled():
        monkeypatch.setattr(sys, "stdout", Closed())
        assert main(["methods"]) == 1


def test_console_script_order_bad_option(tmp_path):
    script = Path(sys.executable).with_name("pndmkit")
    if not script.exists():
        pytest.skip("the pndmkit console script is not installed next to the interpreter")
    proc = _subprocess([str(script), "order", "--methods", "f-pndmm"], tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("pndmkit order: error: --methods: unknown method(s) ['f-pndmm']")


@pytest.fixture
def no_reference_solve(monkeypatch):
    """Fail the test if a network reference is solved (the checks under test must come first)."""
    pytest.importorskip("torch")
    from pndmkit.studies import real

    def solve(*args, **kwargs):
        raise AssertionError("a reference was solved before the input was checked")

    monkeypatch.setattr(real, "reference_solution", solve)


@pytest.mark.parametrize("make_cache, expected", [
    (lambda tmp: tmp / "afile", "--cache: cache must be a folder, but"),
    (lambda tmp: "", "--cache: cache must be a folder path"),
    (lambda tmp: tmp / "afile" / "sub", "--cache: cannot create the cache folder"),
])
def test_a_bad_cache_is_refused_before_any_reference_is_solved(make_cache, expected, tmp_path, run_cli,
                                                              no_reference_solve):
    (tmp_path / "afile").write_text("not a folder")
    code, _, err = run_cli(["grid", "optimize", "--method", "ipndm", "--nfe", "5", "--model", "digits", "--cache",
                         str(make_cache(tmp_path))])
    assert code == 2 and err.count("\n") == 1 and expected in err, err
    assert (tmp_path / "afile").read_text() == "not a folder"


def test_a_misspelt_start_is_refused_before_any_reference_is_solved(tmp_path, run_cli, no_reference_solve):
    for start, expected in (("qudratic", "--start: start must be one of the grid kinds"),
                            ("999,500,-1", "--start: start must be a decreasing grid of 6 finite times")):
        code, _, err = run_cli(["grid", "optimize", "--method", "ipndm", "--nfe", "5", "--model", "digits", "--cache",
                             str(tmp_path), "--start", start])
        assert code == 2 and expected in err, err


def test_order_refuses_a_file_as_cache_before_solving(tmp_path, run_cli, no_reference_solve):
    (tmp_path / "afile").write_text("keep me")
    code, _, err = run_cli(["order", "--model", "digits", "--cache", str(tmp_path / "afile")])
    assert code == 2 and "--cache: cache must be a folder, but" in err, err
    assert (tmp_path / "afile").read_text() == "keep me"


def _all_help_texts():
    for parser in _all_parsers(build_parser()):
        yield parser.prog, parser.format_help()


def test_help_is_plain_text_with_one_default_per_option():
    for prog, text in _all_help_texts():
        flat = " ".join(text.split())
        assert "``" not in text and ":func:" not in text and ":mod:" not in text, (prog, text)
        # a default said in the help text and again by the formatter: "(gmm2d) (default: None)", "(0) (default: 0)"
        double = re.search(r".{0,60}(\)\s*\(default: None\)|\((\S+)\) \(default: \2\))", flat)
        assert double is None, (prog, double and double.group())
    helps = dict(_all_help_texts())
    order = " ".join(helps["pndmkit order"].split())
    assert "built-in problem (default: gmm2d, unless --model)" in order
    assert "noise schedule (default: linear-vp)" in order
    assert "number of start points x_T (default: 8; with --model 4)" in order
    assert "seed of x_T (default: 0)" in order
    assert " ".join(helps["pndmkit grid"].split()).startswith("usage: pndmkit grid [-h] ACTION ... pndmkit grid optimize: a")


def test_help_points_a_newcomer_at_plugins_and_their_own_network():
    readme = (ROOT / "README.md").read_text()
    sections = set(re.findall(r"^## (.+)$", readme, flags=re.M))
    helps = {prog: " ".join(text.split()) for prog, text in _all_help_texts()}
    top = helps["pndmkit"]
    for needle in ("PNDMKIT_PLUGINS", "pndmkit.register_method", "pndmkit.methods", "docs/protocol.md",
                   "pndmkit.studies.real.model_study", "--model"):
        assert needle in top, needle
    cited = re.findall(r'README\.md, "([^"]+)"(?: and "([^"]+)")?', " ".join(helps.values()))
    named = {name for pair in cited for name in pair if name}
    assert {"Ten lines", "Accuracy on real networks", "Command line"} <= named
    for name in named:  # every README section a help names exists
        assert any(s == name or s.startswith(name + " (") for s in sections), name
    assert (ROOT / "docs" / "protocol.md").is_file()
    assert "PNDMKIT_PLUGINS" in helps["pndmkit methods"] and "PNDMKIT_PLUGINS" in helps["pndmkit order"]
    assert "model_study" in helps["pndmkit order"] and "grid_opt.optimize" in helps["pndmkit grid optimize"]


def test_compare_refuses_too_many_calibration_noises_before_planning(usage_error):
    err = usage_error(["compare", "--quick", "--optimized-grids", "--optimize-calibration", "1000001", "--out",
                       "unused"])
    assert err == ("pndmkit compare: error: --optimize-calibration: optimize_calibration must be at most 1000000, "
                   "got 1000001\n")


def test_order_plot_never_overwrites_a_file_unless_told(tmp_path, run_cli):
    plot = tmp_path / "mine.png"
    plot.write_bytes(b"an earlier figure")
    argv = ["order", "--methods", "ddim", "--steps", "5,10", "--plot", str(plot)]
    code, _, err = run_cli(argv)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "--plot" in err and "already exists" in err and "--overwrite" in err, err
    assert plot.read_bytes() == b"an earlier figure" and list(tmp_path.iterdir()) == [plot]
    assert run_cli([*argv, "--overwrite"])[0] == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and list(tmp_path.iterdir()) == [plot]  # no temporary left


def test_help_says_what_model_takes():
    """--model takes diffusers folders and cached hub ids too; the help once said a pndmkit checkpoint only."""
    from pndmkit.cli import EPILOG

    parser = build_parser()
    optimize = next(p for p in _all_parsers(parser) if p.prog.endswith("grid optimize"))
    for text in (EPILOG, optimize.description):
        flat = " ".join(text.split())
        assert "diffusers folder" in flat and "hub id" in flat and "take a pndmkit checkpoint;" not in flat, flat


@pytest.mark.parametrize("extra", [[], ["--resume"], ["--classifier"], "again"])
def test_train_refuses_an_out_folder_another_run_is_using_and_runs_once_it_is_released(tmp_path, run_cli, hold_lock,
                                                                                       in_use, extra):
    """Two `pndmkit train --out DIR` at once saved over each other's train_state.pt and checkpoint (sample, compare
    and paper_figures lock their folder, train did not): the second is refused at once, in one line naming --out,
    the folder and the lock file, as sample says it, writing nothing; once the first ends, the same command runs.
    The same command without --resume into a run still training names the lock too, not --resume (which cannot go
    on before that run ends)."""
    pytest.importorskip("torch")
    from pndmkit.nn.train import LOCK_FILE

    again, extra = extra == "again", [] if extra == "again" else extra
    out = tmp_path / "run"
    argv = ["train", "--out", str(out), "--preset", "tiny", "--steps", "1", "--batch-size", "4", "--threads", "1",
            *extra]
    if again:
        assert run_cli(argv)[0] == 0
    if extra == ["--resume"]:  # a run to resume, and a second run resuming it while the first still trains
        assert run_cli(argv[:-1])[0] == 0
        argv[argv.index("--steps") + 1] = "2"
    before = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else {}
    holder = hold_lock(out, LOCK_FILE)
    try:
        code, printed, err = run_cli(argv)
        assert code == 2 and printed == "" and err == in_use("pndmkit train", out, LOCK_FILE, "training run"), err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == {**before, LOCK_FILE: b""}  # nothing written
    finally:
        holder.communicate("")  # the first run ends
    if extra != ["--classifier"] and not again:  # (the classifier trains 30 epochs: its lock is what is tested)
        assert run_cli(argv)[0] == 0
        assert (out / "digits.safetensors").is_file() and (out / "train_state.pt").is_file()


def test_a_training_run_holds_its_lock_while_it_writes(tmp_path, monkeypatch):
    """The lock is held from the run's look at the folder to its last save: another taker is refused meanwhile."""
    pytest.importorskip("torch")
    from filelock import FileLock, Timeout

    from pndmkit.nn import train

    real, tried = train.Trainer.save, []

    def save(self):
        try:
            FileLock(self.out / train.LOCK_FILE).acquire(timeout=0)
            tried.append("taken")
        except Timeout:
            tried.append("refused")
        return real(self)

    monkeypatch.setattr(train.Trainer, "save", save)
    assert main(["train", "--out", str(tmp_path), "--preset", "tiny", "--steps", "2", "--batch-size", "4",
                 "--threads", "1", "--checkpoint-every", "1"]) == 0
    assert tried == ["refused", "refused"]


def test_train_refuses_a_state_another_run_wrote_while_it_was_checking(tmp_path, capsys):
    """A train_state.pt that appears between the settings' check and the lock is no run of this one's to overwrite."""
    pytest.importorskip("torch")
    from pndmkit.errors import UsageError
    from pndmkit.nn.train import TrainConfig, Trainer

    trainer = Trainer(TrainConfig(out=str(tmp_path), preset="tiny", steps=1, batch_size=4, threads=1), log=print)
    (tmp_path / "train_state.pt").write_bytes(b"another run's")
    with pytest.raises(UsageError, match=r"another run wrote .*train_state.pt while this one was checking its "
                                         r"settings; run the command again \(with --resume to continue that run\)"):
        trainer.run()
    assert (tmp_path / "train_state.pt").read_bytes() == b"another run's"
