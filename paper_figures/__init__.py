"""Paper figures and tables of PNDM (Liu et al., ICLR 2022), regenerated on data pndmkit ships.

``python -m paper_figures [--quick] [--out DIR] [--only NAMES]`` (or ``make figures``) makes them all. Each
figure is a module with ``NAME`` and ``make(cfg)``; it reads its table from ``analysis/results/`` (computed by
the matching study in ``analysis/`` when missing) and writes PNG, PDF and a caption ``.txt``. Like the
``pndmkit`` command, it first loads a user's methods from the modules named in ``PNDMKIT_PLUGINS`` (and the
``pndmkit.methods`` entry points), so a figure drawing every registered method draws them too.

========================  =========================================================================
figure                    content
========================  =========================================================================
``fig1_samples``          digits at NFE 5-10, same noise, per-image error vs the converged sample (Fig. 1)
``fig2_quality_digits``   digits-FID at NFE 5-20 with paired intervals; network error vs NFE; the claim
``fig3_quality_mixture``  the same on Gaussian-mixture ground truth, exact distances
``fig4_orders``           convergence orders: error vs NFE, fitted slopes, every method
``fig5_manifold``         classical vs pseudo steps over the density of p_t; ``fig5_norms``
``fig6_gradient_change``  change of eps between consecutive steps
``fig7_peers``            head-to-head with diffusers at equal NFE (from ``pndmkit compare``)
========================  =========================================================================
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path
from typing import Sequence

from paper_figures._common import DEFAULT_OUT, DEFAULT_RESULTS, Config, Outcome, command_line, write_json

__all__ = ["FIGURES", "main", "make_all"]

#: figure name -> module (in paper_figures) that makes it
FIGURES = {
    "fig1_samples": "fig1_samples",
    "fig2_quality_digits": "fig2_quality_digits",
    "fig3_quality_mixture": "fig3_quality_mixture",
    "fig4_orders": "fig4_orders",
    "fig5_manifold": "fig5_manifold",
    "fig6_gradient_change": "fig6_gradient_change",
    "fig7_peers": "fig7_peers",
}


def make_all(cfg: Config, only: Sequence[str] | None = None) -> dict[str, Outcome]:
    """Make the figures named in ``only`` (default: all); a figure that fails is reported, not raised."""
    names = list(FIGURES) if not only else list(only)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; choose from {list(FIGURES)}")
    outcomes = {}
    for name in names:
        cfg.log(f"{name}:")
        t0 = time.perf_counter()
        try:
            outcome = importlib.import_module(f"paper_figures.{FIGURES[name]}").make(cfg)
        except Exception as exc:  # keep going: one broken figure must not hide the others
            import traceback

            traceback.print_exc()
            outcome = Outcome(name, skipped=f"FAILED: {type(exc).__name__}: {exc}")
            outcome.notes["failed"] = True
        outcome.seconds = time.perf_counter() - t0
        status = f"skipped: {outcome.skipped}" if outcome.skipped else f"{len(outcome.files)} files"
        cfg.log(f"  -> {status} ({outcome.seconds:.1f} s)")
        outcomes[name] = outcome
    return outcomes


def write_index(cfg: Config, outcomes: dict[str, Outcome]) -> Path:
    """``OUT/index.md``: every figure with its caption and every table, for browsing on GitHub."""
    parts = [f"# Paper figures\n\nMade by `{cfg.command}`" + (" (quick sizes)" if cfg.quick else "") + ".\n"]
    for name, o in outcomes.items():
        parts.append(f"## {name}\n")
        if o.skipped:
            parts.append(f"Skipped: {o.skipped}\n")
            continue
        for f in o.files:
            if f.suffix == ".png":
                parts.append(f"![{f.stem}]({f.name})\n\n" + (cfg.out / f"{f.stem}.txt").read_text().split("\nData:")[0]
                             + "\n")
            elif f.suffix == ".md":
                parts.append(f.read_text())
    path = cfg.out / "index.md"
    path.write_text("\n".join(parts))
    return path


#: the lock a figures run holds on its output folder (:func:`pndmkit._io.locked_folder`)
LOCK_FILE = ".pndmkit-figures.lock"
PROG = "python -m paper_figures"


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m paper_figures``: pndmkit's (no abbreviated options, defaults in ``--help``, errors
    raised as :class:`pndmkit.commands.args.ArgumentLineError`), each value checked by its type."""
    from pndmkit.commands.args import CommandParser, name_list, positive_int, writable_folder_for

    p = CommandParser(prog=PROG, description=__doc__.strip().splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="small sizes for tests (seconds); results go to OUT/results, never to analysis/results")
    p.add_argument("--out", type=writable_folder_for("--out"), default=None, metavar="OUT",
                   help=f"output folder (default: {DEFAULT_OUT.relative_to(DEFAULT_OUT.parents[1])}, or its subfolder "
                        "quick/ with --quick); one run at a time: a run holds the lock OUT/" + LOCK_FILE + " while it "
                        "writes, and a second run into OUT is refused at once, changing nothing")
    p.add_argument("--only", type=name_list(list(FIGURES), "figure names"), default=None, metavar="NAMES",
                   help=f"comma-separated figure names, each once, among: {', '.join(FIGURES)} (default: all; "
                        "index.md and summary.json are written by a full run only)")
    p.add_argument("--results", type=writable_folder_for("--results"), default=None, metavar="DIR",
                   help="folder of the analysis tables, written where one is missing (default: analysis/results, "
                        "or OUT/results with --quick)")
    p.add_argument("--recompute", action="store_true", help="recompute the tables even when they exist")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads for the digits model (default: torch's)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Make the figures (``python -m paper_figures --help``); return the exit status (1: a figure failed).

    A user's methods are loaded first, as the ``pndmkit`` command loads them (modules named in ``PNDMKIT_PLUGINS``
    and entry points of the group ``pndmkit.methods``: :func:`pndmkit.commands.plugins.load_plugins`), so the
    figures that draw every registered method draw them too. Bad input (a plugin that fails, an unknown or
    repeated figure name, an option given twice, an output folder that cannot be written, ``--threads 0``, an
    abbreviated option) is one
    line on stderr, ``python -m paper_figures: error: --option: ...``, and ``SystemExit(2)``, as with ``pndmkit``,
    before anything is written; so is an output folder another run is writing into (it holds ``OUT/``
    :data:`LOCK_FILE`).
    """
    from pndmkit.commands.args import locked_out_folder, parse_command_line
    from pndmkit.commands.plugins import load_plugins_or_exit

    load_plugins_or_exit(PROG)
    args = parse_command_line(build_parser(), argv)
    out = Path(args.out) if args.out else (DEFAULT_OUT / "quick" if args.quick else DEFAULT_OUT)
    results = Path(args.results) if args.results else (out / "results" if args.quick else DEFAULT_RESULTS)
    cfg = Config(out=out.resolve(), results=results.resolve(), quick=args.quick, recompute=args.recompute,
                 threads=args.threads, command=command_line(argv))
    if args.threads:
        from analysis.tables import set_threads

        set_threads(args.threads)
    with locked_out_folder(PROG, cfg.out, LOCK_FILE, what="paper_figures run"):
        return _make(cfg, args.only)


def _make(cfg: Config, only: Sequence[str] | None) -> int:
    """Make the figures into ``cfg.out`` (held locked by :func:`main`), print the table of outcomes and, after a
    full run, write ``index.md`` and ``summary.json``; return the exit status."""
    t0 = time.perf_counter()
    outcomes = make_all(cfg, only)
    print(f"\n{'figure':24s} {'seconds':>8s}  result")
    for name, o in outcomes.items():
        print(f"{name:24s} {o.seconds:8.1f}  " + (f"skipped: {o.skipped}" if o.skipped else
                                                  ", ".join(str(f.name) for f in o.files)))
    total = time.perf_counter() - t0
    print(f"total {total:.1f} s; outputs in {cfg.out}")
    failed = 1 if any(o.notes.get("failed") for o in outcomes.values()) else 0
    if only:  # index.md and summary.json describe a whole run; a partial run leaves them as they are
        kept = [name for name in ("index.md", "summary.json") if (cfg.out / name).is_file()]
        print(f"--only: {' and '.join(kept)} left unchanged (a full run rewrites {'them' if len(kept) > 1 else 'it'})"
              if kept else "--only: index.md and summary.json not written (a full run writes them)")
        return failed
    write_index(cfg, outcomes)
    write_json(cfg.out / "summary.json", {"command": cfg.command, "quick": cfg.quick, "seconds": round(total, 1),
                                          "figures": {n: {"files": [f.name for f in o.files], "skipped": o.skipped,
                                                          "seconds": round(o.seconds, 1), **o.notes}
                                                      for n, o in outcomes.items()}})
    return failed
