"""Report writers of the studies: text tables, JSON objects, CSV/Markdown files and plots.

The commands (``pndmkit order``, ``pndmkit compare``), ``analysis/`` and ``paper_figures/`` format results
with these functions; the studies themselves (:mod:`pndmkit.studies.convergence`,
:mod:`pndmkit.studies.compare`) compute and return plain data.

* :func:`order_table`, :func:`order_json`, :func:`order_plot` -- a convergence study.
* :func:`write_compare_results`, :func:`compare_summary`, :func:`compare_markdown`, :func:`optimized_summary`
  -- a head-to-head.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from pndmkit._io import atomic_path, write_json, write_text
from pndmkit.studies.convergence import MethodResult, Study
from pndmkit.studies.monitor import duration

__all__ = ["methods_markdown_table", "order_table", "order_json", "order_plot", "write_compare_results",
           "COMPARE_FILES", "compare_result_paths", "compare_summary",
           "compare_markdown", "optimized_summary", "auto_summary", "auto_case_table", "BEST_FIELDS", "RUN_FIELDS"]


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def order_table(study: Study, results: dict[str, MethodResult], steps: Sequence[int]) -> str:
    """The plain-text report: fixed-step methods in one table, adaptive ones below it."""
    head = (f"problem {study.problem_name} (d={study.problem.dim}), schedule {study.schedule_name}, "
            f"grid {study.grid}, t {study.t_start:g} -> {study.t_end:.4g}, batch {len(study.x_T)}, "
            f"error = RMS of x_N - x_ref (reference error {study.reference_error:.1e})")
    cols = ["method", "declared", "measured", "fit N"] + [f"err@{n}" for n in steps] + ["NFE"]
    rows = []
    for r in results.values():
        if r.adaptive:
            continue
        fit = f"{r.fit_range[0]}-{r.fit_range[1]}" if r.fit_range else "-"
        nfe = f"{r.nfe[0]}..{r.nfe[-1]}"
        rows.append([r.name, _fmt(r.declared_order, "d"), _fmt(r.measured_order), fit]
                    + [f"{e:.2e}" for e in r.errors] + [nfe])
    width = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(cols)]
    lines = [head, "", "  ".join(c.ljust(w) for c, w in zip(cols, width))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, width)) for row in rows]
    notes = [f"  {r.name}: {r.note}" for r in results.values() if r.note]
    adaptive = [r for r in results.values() if r.adaptive]
    for r in adaptive:
        lines += ["", f"{r.name} (adaptive; error per NFE, slope {_fmt(r.nfe_slope)}):"]
        tols = r.tolerances or [None] * len(r.nfe)
        lines += [f"  tol {_fmt(t, '.0e')}: NFE {k}, error {e:.2e}" for t, k, e in zip(tols, r.nfe, r.errors)]
    if notes:
        lines += ["", "notes:"] + notes
    return "\n".join(lines)


def order_json(study: Study, results: dict[str, MethodResult]) -> dict[str, Any]:
    """One JSON-ready object; ``methods`` maps each name to its :meth:`MethodResult.to_dict`."""
    return {
        "problem": study.problem_name, "dim": study.problem.dim, "schedule": study.schedule_name,
        "grid": study.grid, "t_start": study.t_start, "t_end": study.t_end, "batch": len(study.x_T),
        "error": "RMS over batch and dimensions of the end point minus the exact PF-ODE end point",
        "reference_error": study.reference_error,
        "methods": {name: r.to_dict() for name, r in results.items()},
    }


def order_plot(study: Study, results: dict[str, MethodResult], path: str) -> None:
    """Log-log plot of error against NFE, with reference slopes NFE^-1, ^-2, ^-4."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    colors = plt.get_cmap("tab20").colors
    for i, r in enumerate(results.values()):
        # dashed: the s-consistent variants; dotted: adaptive
        style = "--" if r.name.endswith("-s") or r.name in ("ipndm-v",) else ":" if r.adaptive else "-"
        label = f"{r.name} ({_fmt(r.measured_order)})" if r.measured_order is not None else r.name
        ax.loglog(r.nfe, r.errors, style, color=colors[i % len(colors)], marker="os^vD"[i % 5], ms=3, label=label)
    nfe = np.array([min(min(r.nfe) for r in results.values()), max(max(r.nfe) for r in results.values())], float)
    top = max(max(r.errors) for r in results.values())
    for p in (1, 2, 4):
        ax.loglog(nfe, top * (nfe / nfe[0]) ** -p, color="0.7", lw=0.8)
        ax.annotate(f"NFE$^{{-{p}}}$", (nfe[1], top * (nfe[1] / nfe[0]) ** -p), color="0.5", fontsize=8)
    ax.set_xlabel("NFE")
    ax.set_ylabel("RMS error vs exact PF-ODE end point")
    ax.set_title(f"{study.problem_name}, {study.schedule_name}, {study.grid} grid, t_end={study.t_end:.3g}")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:  # the temporary name keeps the suffix, which picks the format
        fig.savefig(tmp, dpi=150)
    plt.close(fig)



BEST_FIELDS = ("problem", "schedule", "nfe_target", "side", "method", "option", "steps", "nfe", "error", "sw",
               "nll", "s_start", "s_end")
#: the columns ``compare.csv`` appends to :data:`BEST_FIELDS`: the summaries of each row's NFE (the same on every
#: row of that ``nfe_target``), each ratio with the ends of its 95% paired bootstrap interval (empty where the
#: summary has none): ``ratio`` of ``by_nfe`` (best pndmkit / best peer with its own options), ``vs_builtin`` and
#: ``vs_peer`` of ``by_nfe_optimized`` (best optimised grid / best built-in pndmkit grid, / best peer)
SUMMARY_FIELDS = ("ratio", "ratio_interval_lo", "ratio_interval_hi", "vs_builtin", "vs_builtin_interval_lo",
                  "vs_builtin_interval_hi", "vs_peer", "vs_peer_interval_lo", "vs_peer_interval_hi")
#: the columns of ``compare_runs.csv``: every run of every case, the built-in grids' and the peers' first, then
#: the optimised grids' and fitted solvers' (``option`` ``optimized``), whose ``times`` (the grid, space-separated,
#: full float precision: paste into ``pndmkit sample --grid`` after replacing the spaces by commas) and
#: ``first_time`` (``fixed`` or ``free``) are empty on the other rows; ``weights`` is a fitted solver's weight
#: table (method ``ipndm-fitted`` or ``ipndm-x0-fitted``, not a registered method:
#: :func:`pndmkit.studies.solver_opt.fitted_integrator` with its base runs it), its rows joined by ``;``, each
#: row's weights space-separated at full float precision, empty on the other rows
RUN_FIELDS = ("problem", "schedule", "nfe_target", "side", "method", "option", "steps", "nfe", "error", "s_start",
              "s_end", "seconds", "times", "first_time", "weights")


def _run_row(row: dict) -> dict:
    """A run as a ``compare_runs.csv`` row: an optimised run's grid as one space-separated cell, a fitted solver's
    weight table as one cell (rows joined by ``;``)."""
    out = dict(row)
    if "times" in row:
        out["times"] = " ".join(repr(float(t)) for t in row["times"])
    if "weights" in row:
        out["weights"] = ";".join(" ".join(repr(float(w)) for w in r) for r in row["weights"])
    return out


def _summary_columns(result: dict, target: Any) -> dict:
    """:data:`SUMMARY_FIELDS` of NFE ``target``: ``by_nfe``'s ratio and ``by_nfe_optimized``'s ratios, each with
    its interval's ends (absent keys: empty cells)."""
    out: dict[str, Any] = {}
    for key, names in (("by_nfe", ("ratio",)), ("by_nfe_optimized", ("vs_builtin", "vs_peer"))):
        entry = result.get(key, {}).get(str(target), {})
        for name in names:
            if name in entry:
                out[name] = entry[name]
            interval = entry.get(f"{name}_interval")
            if interval:
                out[f"{name}_interval_lo"], out[f"{name}_interval_hi"] = interval
    return out


def _write_csv(path: Path, fields: tuple, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


#: The files :func:`write_compare_results` writes into its folder, in this order.
COMPARE_FILES = ("compare.json", "compare.csv", "compare_runs.csv", "compare.md")


def compare_result_paths(out: Path) -> list[Path]:
    """The paths :func:`write_compare_results` writes under ``out`` (:data:`COMPARE_FILES`).

    Parameters
    ----------
    out : str or pathlib.Path
        The results folder (it need not exist; nothing is read or written).

    Returns
    -------
    list of pathlib.Path
        ``out / name`` for each name of :data:`COMPARE_FILES`, in that order (``compare.json`` first).
    """
    return [Path(out) / name for name in COMPARE_FILES]


def write_compare_results(result: dict, out: Path) -> list[Path]:
    """Write ``compare.json``, ``compare.csv``, ``compare_runs.csv`` and ``compare.md`` under ``out``; return their paths.

    ``compare.csv`` holds the best rows of every case (:data:`BEST_FIELDS`) followed by the summaries of the
    row's NFE with their 95% intervals (:data:`SUMMARY_FIELDS`, as ``compare.json`` and ``compare.md`` carry them).
    ``compare_runs.csv`` holds every run (:data:`RUN_FIELDS`): those of the built-in grids and the peers, then
    the optimised grids' and fitted solvers' with their times (and a fitted solver's weights).

    ``compare.json`` is strict JSON (RFC 8259, :func:`pndmkit._io.write_json`): a number that is not finite, such
    as the ``error`` of a run that raised or blew up (``inf`` in ``result``; an optimised grid or fitted solver
    whose run on the case's samples failed), is written as ``null``.

    Each file is written atomically (a temporary file, then a rename), and existing ones are replaced: a
    caller that must not replace an earlier run's files checks :func:`compare_result_paths` first, as
    ``pndmkit compare`` does without ``--overwrite``.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = compare_result_paths(out)
    slim = {**result, "cases": [{k: v for k, v in c.items() if k != "runs"} for c in result["cases"]]}
    # every run is in compare_runs.csv, optimised ones too; strict JSON: a failed run's inf error is null
    write_json(paths[0], slim, indent=1, sort_keys=False)
    tag = [{"problem": c["problem"], "schedule": c["schedule"]} for c in result["cases"]]
    _write_csv(paths[1], BEST_FIELDS + SUMMARY_FIELDS, [{**t, **r, **_summary_columns(result, r["nfe_target"])}
                                                        for t, c in zip(tag, result["cases"]) for r in c["best"]])
    _write_csv(paths[2], RUN_FIELDS, [{**t, **_run_row(r)} for t, c in zip(tag, result["cases"])
                                      for r in [*c["runs"], *c.get("optimized", [])]])
    write_text(paths[3], compare_markdown(result) + "\n")
    return paths


def _interval(value: Any, spec: str = ".2f") -> str:
    """A 95% interval ``[low, high]`` as ``[0.81, 0.93]``; ``-`` where there is none."""
    return "-" if not value else f"[{value[0]:{spec}}, {value[1]:{spec}}]"


def _with_interval(ratio: Any, interval: Any, spec: str = ".2f") -> str:
    """A ratio and its 95% interval in one cell: ``0.87 [0.81, 0.93]`` (the ratio alone where there is none)."""
    return _fmt(ratio, spec) if ratio is None or not interval else f"{ratio:{spec}} {_interval(interval, spec)}"


#: said under a table with a row marked ``parity check`` (a summary entry with ``parity``, :func:`pndmkit.studies.compare.is_parity`)
PARITY_NOTE = ("parity check: the best peer at that NFE is the best pndmkit method itself on the same grid, run "
               "through diffusers (ipndm-pndmkit-grid is ipndm handed pndmkit's grid); its ratio checks that the two "
               "implementations agree, and compares no two methods")


#: what the intervals of the head-to-head's tables are, said under each table that has them
INTERVAL_NOTE = ("95% interval: paired bootstrap over samples of the ratio, the best solver of each side (and its "
                 "grid option) fixed as chosen on all the samples, the samples resampled jointly for both sides "
                 "(each case's on their own)")


def _solver(row: dict | None) -> str:
    return "-" if row is None else f"{row['method']} ({row['nfe']})"


def _once(labels: list[str], sep: str) -> str:
    """Per-case labels joined by ``sep``, or the label once when every case has the same one."""
    return labels[0] if len(set(labels)) == 1 else sep.join(labels)


def _grid(row: dict | None) -> str:
    """The grid option of a summary entry: one per case, joined by ``/``, once if all agree (``-`` where none)."""
    if row is None or not row.get("options"):
        return "-"
    return _once(list(row["options"]), "/")


def _text_table(cols: list[str], rows: list[list[str]]) -> str:
    width = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, width)).rstrip() for r in [cols, *rows])


def skipped_lines(result: dict, key: str = "by_nfe") -> list[str]:
    """Lines naming each solver left out of the summary ``key`` at an NFE and why (``result["skipped"]``,
    :func:`pndmkit.studies.compare.skipped_summary`): one line per solver and reason, its NFEs joined, and the
    cases where not all. ``by_nfe`` and ``by_nfe_shared_grids`` leave out the peers run on pndmkit's grids;
    ``by_nfe_peers_on_pndmkit_grids`` names only those (the others are said under ``by_nfe``);
    ``by_nfe_optimized`` names the methods and NFEs whose grid was not optimised (``result["optimized_skipped"]``:
    no step count fits, one step with the first time fixed, or a method of the default set that did not run). None
    for a result without the field (read back from an older file)."""
    from pndmkit.studies.peers import PEERS

    custom = {name for name, spec in PEERS.items() if not spec.builtin}
    mine = key == "by_nfe_peers_on_pndmkit_grids"
    optimized = key == "by_nfe_optimized"
    grouped: dict[tuple, list[str]] = {}
    cases = len(result.get("cases", ())) or 1
    for e in result.get("optimized_skipped" if optimized else "skipped", ()):
        if not optimized and (e["side"] == "peer" and e["method"] in custom) != mine:
            continue
        where = "" if len(e["cases"]) >= cases else f" (on {', '.join(e['cases'])})"
        grouped.setdefault((e["side"], e["method"], e["reason"], where), []).append(str(e["nfe_target"]))
    if not grouped:
        return []
    head = ("left out (no optimised grid at that NFE, so not in the table):" if optimized else
            "left out (no run at that NFE, so not in the table):")
    return [head] + [
        f"  {side} {method} at NFE {', '.join(nfes)}{where}: {reason}"
        for (side, method, reason, where), nfes in grouped.items()]


def compare_summary(result: dict, key: str = "by_nfe") -> str:
    """The by-NFE table as text, with the grid option of each best run (one per case, joined by ``/``).

    Every NFE where a solver ran has a row; a side with no run at that NFE reads ``-`` (without peers,
    ``--peers`` with no names, the peer columns do), and a line below the table says why. Below it each solver
    left out at an NFE is named with the reason (:func:`skipped_lines`: fewer evaluations than its first step
    costs, a warm-up that costs more, a scheduler that refused the step counts, a run that raised or blew up).
    A summary with no row at all says so in one line instead of the table.
    """
    summary = result[key]
    cases = len(result.get("cases", ())) or 1
    grid = "grid" if cases == 1 else f"grid (per case, {cases} cases)"
    cols = ["NFE", "best pndmkit", grid, "error", "best peer", "option", "error", "ratio", "95% interval"]
    rows = []
    for nfe, row in summary.items():
        p, q = row.get("best_pndmkit"), row.get("best_peer")
        rows.append([nfe, _solver(p), _grid(p), "-" if p is None else f"{p['error']:.2e}", _solver(q), _grid(q),
                     "-" if q is None else f"{q['error']:.2e}", f"{row['ratio']:.3f}" if "ratio" in row else "-",
                     _interval(row.get("ratio_interval"), ".3f") + ("  parity check" if row.get("parity") else "")])
    if not rows:
        return "no solver ran at any NFE of the run: no row to report"
    lines = [_text_table(cols, rows)]
    if any(row.get("ratio_interval") for row in summary.values()):
        lines.append(INTERVAL_NOTE)
    if any(row.get("parity") for row in summary.values()):
        lines.append(PARITY_NOTE)
    peers_ran = any(r["side"] == "peer" for c in result.get("cases", ()) for r in c.get("best", ()))
    if any("best_peer" not in row for row in summary.values()):
        if not peers_ran:
            pass  # pndmkit alone (peers=()): asked for, nothing to explain
        elif key == "by_nfe_peers_on_pndmkit_grids":
            lines.append("-: no peer ran at that NFE")
        else:
            lines.append("-: no peer with its own options ran at that NFE (peers run on pndmkit's grids, such as "
                         "ipndm-pndmkit-grid, are left out of this table)")
    if any("best_pndmkit" not in row for row in summary.values()):
        lines.append("-: no pndmkit method fits that NFE")
    lines += skipped_lines(result, key)
    return "\n".join(lines)


#: said under an optimised table that holds a fitted solver on ipndm (``optimized_solvers``, ``pndmkit compare
#: --optimized-solvers``)
FITTED_NOTE = ("ipndm-fitted: iPNDM's grid and per-step weights fitted together on the calibration noises "
               "(pndmkit.studies.solver_opt.optimize_solver), a sampler for that one step count and grid, not a method "
               "with an order; in the per-method column it is set against ipndm's own best built-in grid")

#: what is said under an optimised table for each fitted solver it holds, by row name
#: (:data:`pndmkit.studies.compare.FITTED_METHODS`)
FITTED_NOTES = {
    "ipndm-fitted": FITTED_NOTE,
    "ipndm-x0-fitted": ("ipndm-x0-fitted: the same fit on iPNDM's data-prediction form (base ipndm-x0: the weights "
                        "weigh past x0 predictions, through the data-prediction transfer); in the per-method column "
                        "it is set against ipndm-x0's own best built-in grid")}


def _fitted_names(result: dict) -> list[str]:
    """The fitted solvers (:data:`pndmkit.studies.compare.FITTED_METHODS`) among ``result``'s optimised rows, in
    the order of that table."""
    from pndmkit.studies.compare import FITTED_METHODS

    ran = {r["method"] for c in result.get("cases", ()) for r in c.get("optimized", ())}
    return [name for name in FITTED_METHODS if name in ran]


def optimized_summary(result: dict, markdown: bool = False) -> str:
    """``by_nfe_optimized`` as a text (or Markdown) table: the best optimised grid (or fitted solver), the best
    built-in pndmkit grid, the best peer, the ratios (each with its 95% interval in brackets where the result has
    one), and per optimised method its optimised / own best built-in error (a fitted solver's against the
    built-in grids of the method it was fitted from, ``ipndm-fitted (vs ipndm)``, and its :data:`FITTED_NOTES`
    under the text table). The text table names the grid option of the best
    built-in run and of the best peer in brackets (one per case). Where the run searched no grid options (``grids``
    off, as ``--quick`` and ``--no-grids`` run) the built-in column says it holds the default grid only. The text
    table is followed by the methods and NFEs left out of it and why (:func:`skipped_lines`)."""
    builtin = "best built-in" if result.get("config", {}).get("grids", True) else "best built-in (default grid only)"
    cols = ["NFE", "best optimised", "error", builtin, "error", "best peer", "error", "opt/built-in",
            "opt/peer", "per method: optimised / own built-in"]
    rows = []
    for nfe, row in result.get("by_nfe_optimized", {}).items():
        cells = [nfe]
        for label in ("optimized", "builtin", "peer"):
            best = row.get(f"best_{label}")
            name = _solver(best) if markdown or best is None or label == "optimized" else \
                f"{_solver(best)} [{_grid(best)}]"
            cells += [name, "-" if best is None else f"{best['error']:.2e}"]
        cells += [_with_interval(row.get("vs_builtin"), row.get("vs_builtin_interval")),
                  _with_interval(row.get("vs_peer"), row.get("vs_peer_interval"))]
        cells.append(", ".join(
            f"{m}{'' if v.get('builtin_method', m) == m else ' (vs ' + v['builtin_method'] + ')'} "
            f"{_with_interval(v['ratio'], v.get('ratio_interval'))}" for m, v in row["methods"].items()))
        rows.append(cells)
    if markdown:
        return "\n".join(["| " + " | ".join(cols) + " |", "|---:|---|---:|---|---:|---|---:|---:|---:|---|"]
                         + ["| " + " | ".join(r) + " |" for r in rows])
    return "\n".join([_text_table(cols, rows), *(FITTED_NOTES[name] for name in _fitted_names(result)),
                      *skipped_lines(result, "by_nfe_optimized")])


def auto_summary(result: dict, markdown: bool = False) -> str:
    """``by_nfe_auto`` as a text (or Markdown) table: per NFE the best peer, the best built-in pndmkit run and,
    per rule of the automatic choice, its error (geometric mean over the cases) and its ratio to the best peer
    (with its 95% interval in brackets where the result has one).
    The text table also names the grid option of the best peer and best built-in run in brackets, and what each
    rule picked: ``method [grid]`` per case (joined by ``;``; ``[optimized]``: an optimised grid)."""
    from pndmkit.studies.compare import AUTO_RULES

    summary = result.get("by_nfe_auto", {})
    rules = [r for r in AUTO_RULES if any(r in e["rules"] for e in summary.values())]
    cols = ["NFE", "best peer", "error", "best built-in", "error", "built-in/peer"]
    for rule in rules:
        cols += [f"auto {rule}", f"{rule}/peer"] + ([] if markdown else [f"{rule} picked"])
    rows = []
    for nfe, entry in summary.items():
        cells = [nfe]
        for label in ("peer", "builtin"):
            best = entry.get(f"best_{label}")
            name = _solver(best) if markdown or best is None else f"{_solver(best)} [{_grid(best)}]"
            cells += [name, "-" if best is None else f"{best['error']:.2e}"]
        peer, built = entry.get("best_peer"), entry.get("best_builtin")
        cells.append(_fmt(None if peer is None or built is None else built["error"] / peer["error"]))
        # (the built-in/peer ratio is by_nfe's; its interval is in by_nfe's table)
        for rule in rules:
            e = entry["rules"].get(rule)
            cells += ["-" if e is None else f"{e['error']:.2e}",
                      _fmt(None) if e is None else _with_interval(e.get("vs_peer"), e.get("vs_peer_interval"))]
            if not markdown:
                cells.append("-" if e is None else _once(
                    [f"{c['method']} [{c['option']}]" for c in e["cases"]], "; "))
        rows.append(cells)
    if markdown:
        return "\n".join(["| " + " | ".join(cols) + " |", "|" + "|".join("---:" if i == 0 or "/" in c or c == "error"
                                                                        or c.startswith("auto") else "---"
                                                                        for i, c in enumerate(cols)) + "|"]
                         + ["| " + " | ".join(r) + " |" for r in rows])
    return _text_table(cols, rows)


def auto_case_table(result: dict) -> str:
    """Markdown: per case, the ratio to the case's best peer at each NFE of the best built-in pndmkit run, the
    best optimised grid (where they ran; both picked on the case's own samples) and each rule's choice (picked
    on calibration noises alone)."""
    from pndmkit.studies.compare import AUTO_RULES, FITTED_METHODS, case_best_peer

    nfes = [int(n) for n in result.get("by_nfe_auto", {})]
    out = ["| case | pndmkit | " + " | ".join(map(str, nfes)) + " |", "|---|---|" + "---:|" * len(nfes)]
    for case in result["cases"]:
        name = f"{case['problem']}/{case['schedule']}"
        # the case's best peer with its own options, as by_nfe_auto scores
        peer = {t: None if (best := case_best_peer(case, t)) is None else best["error"] for t in nfes}
        lines = []
        for label, key in (("best built-in (picked on these samples)", "best"),
                           ("best optimised (picked on these samples)", "optimized")):
            if key not in case or not any(r["method"] not in FITTED_METHODS for r in case[key]):
                continue
            cells = []
            for t in nfes:  # (a fitted solver is not a grid, and no rule may choose it: left out)
                err = min((r["error"] for r in case[key] if r["side"] == "pndmkit" and r["nfe_target"] == t
                           and r["method"] not in FITTED_METHODS), default=None)
                cells.append("-" if err is None or not peer.get(t) else f"{err / peer[t]:.2f}")
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
        for rule in AUTO_RULES:
            cells = []
            for t in nfes:
                row = next((r for r in case.get("auto", ()) if r["rule"] == rule and r["nfe_target"] == t), None)
                cells.append("-" if row is None or not peer.get(t) else
                             f"{row['error'] / peer[t]:.2f}" + (" (opt)" if row["optimized"] else ""))
            lines.append(f"| {name} | auto, {rule} | " + " | ".join(cells) + " |")
        out += lines
    return "\n".join(out)


#: whose grid and weights a fitted solver on each base is, and what they weigh, in words (:func:`_fitted_how`)
_WHOSE = {"ipndm": ("iPNDM's", ""),
          "ipndm-x0": ("ipndm-x0's", ", weighing past x0 predictions through the data-prediction transfer")}


def _fitted_how(cfg: dict, fitted: list[dict], shared: Iterable[str] = ()) -> str:
    """How the fitted solvers of a compare result (their rows ``fitted``) were made, in words, with their
    calibration runs and time; ``shared``: the methods whose grids were optimised too (a fit on such a base started
    from that search, run once for both, whose time is the optimised grids')."""
    from pndmkit.studies.compare import FITTED_METHODS

    grid_runs = sum(r.get("grid_evaluations") or 0 for r in fitted)
    weight_runs = sum(r.get("evaluations") or 0 for r in fitted)
    spent = sum(r.get("optimize_seconds") or 0.0 for r in fitted)
    ran = {r["method"] for r in fitted}
    names = [name for name in FITTED_METHODS if name in ran]
    bases = [FITTED_METHODS[name] for name in names]
    if len(names) == 1:
        owner, note = _WHOSE[bases[0]]
        what = (f"The fitted solver {names[0]} is not a method with an order: it is {owner} grid and per-step weights "
                f"(one row per step, weighing the gradients of that step and the ones before it{note})")
        search, against = f"{owner} grid search", f"it is set against {bases[0]}'s own"
    else:
        what = (f"The fitted solvers {', '.join(names[:-1])} and {names[-1]} are not methods with an order: each is "
                "its base method's grid and per-step weights (one row per step, weighing the gradients of that step "
                "and the ones before it; " + "; ".join(
                    f"{name}: {_WHOSE[base][0]}{_WHOSE[base][1]}" for name, base in zip(names, bases)) + ")")
        search, against = "its base method's grid search", "each is set against its base method's own"
    shared = [base for base in bases if base in set(shared)]
    return (what + " fitted together by "
            f"least squares on {cfg['optimize_calibration']} calibration noises per case and NFE "
            f"(pndmkit.studies.solver_opt.optimize_solver: {search}, at most {cfg['optimize_maxfev']} "
            f"runs, then the grid and weights from there), {grid_runs + weight_runs} calibration runs in all "
            f"({grid_runs} of the grid searches"
            + (f", the optimised {' and '.join(shared)} grids' own, run once for both" if shared else "")
            + f", {weight_runs} of the weight searches; {duration(spent)}"
            + (" besides those searches" if shared else "") + "); scored "
            f"on the case's own samples, as every row above. In the per-method column {against} "
            f"best built-in grid. Each one's times and weights are in compare.json (fitted_solvers) and listed "
            f"below.")


def compare_markdown(result: dict) -> str:
    """Summary tables for the README: by NFE (all grids, shared grids) and the best per case."""
    network = any("reference_error" in c for c in result["cases"])  # compare_model: a network's one case
    if network:
        c = result["cases"][0]
        cmd = result["config"].get("model")
        out = ["# pndmkit compare --model " + str(cmd), "",
               f"Error: RMS over samples and pixels of y = x / sqrt(abar) at the end (= x at abar = 1) against the "
               f"converged float64 reference of the network's ODE from the same noises: {c['problem']} on "
               f"{c['schedule']}, noises {c['first']}-{c['first'] + c['n'] - 1} (seed {result['config']['seed']}), "
               f"reference error {c['reference_error']:.1e}; every run's network evaluations were counted at the "
               f"network and equal its NFE. A peer's call told the network "
               + ("its scheduler's timesteps entry (--peer-times timestep)"
                  if result["config"].get("peer_times") == "timestep" else
                  "the time of the level its scheduler assumes (--peer-times level)") + ".", ""]
    else:
        out = ["# pndmkit compare", "",
               "Error: RMS of y = x / sqrt(abar) at the end against the exact trajectory; geometric mean over the "
               "cases " + ", ".join(f"{c['problem']}/{c['schedule']} (n={c['n']})" for c in result["cases"]) + ".",
               ""]
    from pndmkit.studies.peers import PEERS

    custom = {name for name, spec in PEERS.items() if not spec.builtin}
    on_pndmkit_grids = any(r["side"] == "peer" and r["method"] in custom for c in result["cases"] for r in c["best"])
    for key, title in (("by_nfe", "Every pndmkit grid; peers with their own options"),
                       ("by_nfe_shared_grids",
                        "pndmkit restricted to grid families diffusers offers (spacings, Karras, log-SNR)"),
                       ("by_nfe_peers_on_pndmkit_grids", "Peers may also take pndmkit's quadratic grid "
                                                         "(IPNDM via trained_betas, DPM-Solver++ via timesteps=)")):
        if key == "by_nfe_peers_on_pndmkit_grids" and not on_pndmkit_grids:
            continue  # no peer ran on a pndmkit grid: the table would repeat the first one
        out += [f"## {title}", "",
                "| NFE | best pndmkit (NFE) | error | best peer (NFE) | error | ratio | 95% interval |",
                "|---:|---|---:|---|---:|---:|---:|"]
        for nfe, row in result.get(key, {}).items():
            p, q = row.get("best_pndmkit"), row.get("best_peer")
            ours = "- | -" if p is None else f"{_solver(p)} | {p['error']:.2e}"
            peer = "- | -" if q is None else f"{_solver(q)} | {q['error']:.2e}"
            ratio = f"{row['ratio']:.2f}" if "ratio" in row else "-"
            parity = " (parity check)" if row.get("parity") else ""
            out.append(f"| {nfe} | {ours} | {peer} | {ratio}{parity} | {_interval(row.get('ratio_interval'))} |")
        if any(row.get("ratio_interval") for row in result.get(key, {}).values()):
            out += ["", INTERVAL_NOTE + "."]
        if any(row.get("parity") for row in result.get(key, {}).values()):
            out += ["", PARITY_NOTE[0].upper() + PARITY_NOTE[1:] + "."]
        out.append("")
    if "by_nfe_optimized" in result:
        from pndmkit.studies.compare import FITTED_METHODS

        cfg = result["config"]
        spent = sum(c.get("optimize_seconds", 0.0) for c in result["cases"])
        fitted = [r for c in result["cases"] for r in c.get("optimized", ()) if r["method"] in FITTED_METHODS]
        grids_ran = network or any(r["method"] not in FITTED_METHODS for c in result["cases"]
                                   for r in c.get("optimized", ())) or bool(cfg.get("optimized_grids"))
        grid_spent = spent - sum(r.get("optimize_seconds", 0.0) for r in fitted) if fitted else spent
        how = ("Grids given to compare_model (given_grids: " + ", ".join(
            f"{m} at NFE {', '.join(by)}" for m, by in cfg.get("given_grids", {}).items()) + "), fitted elsewhere; "
               "scored on this run's noises, as every row above.") if network else " ".join(filter(None, (
            f"pndmkit.studies.grid_opt.optimize per case and NFE, at most {cfg['optimize_maxfev']} runs on "
            f"{cfg['optimize_calibration']} calibration noises each ({duration(grid_spent)} in all); scored on the "
            "case's own samples, as every row above. Each optimised grid's times are in compare.json "
            "(optimized_grids) and listed below." if grids_ran else "",
            _fitted_how(cfg, fitted, shared={r["method"] for c in result["cases"] for r in c.get("optimized", ())})
            if fitted else ""))) + (
                "" if cfg.get("grids", True) else (
                " Built-in: the default grid only (the run searched no grid options: --quick or --no-grids)."))
        title = " and ".join(what for what, on in (("optimised grids", grids_ran), ("fitted solvers", fitted)) if on)
        out += [f"## {title[0].upper() + title[1:]} (reported apart: never in the tables above)", "", how, "",
                optimized_summary(result, markdown=True), "",
                *(["Left out:", "", *(f"- {line.strip()}" for line in skipped_lines(result, "by_nfe_optimized")[1:]),
                   ""] if skipped_lines(result, "by_nfe_optimized") else []),
                *([INTERVAL_NOTE + " (in brackets).", ""] if any(
                    e.get("vs_peer_interval") or e.get("vs_builtin_interval")
                    for e in result["by_nfe_optimized"].values()) else []),
                f"Per case (the best {'optimised grid or fitted solver' if fitted else 'optimised grid'} and the "
                f"best built-in pndmkit grid of that case):", "",
                "| case | NFE | optimised | error | SW | built-in | grid | error | SW | ratio |",
                "|---|---:|---|---:|---:|---|---|---:|---:|---:|"]
        for case in result["cases"]:
            for target in cfg["nfes"]:
                pick = [min((r for r in case[key] if r["side"] == "pndmkit" and r["nfe_target"] == target),
                            key=lambda r: r["error"], default=None) for key in ("optimized", "best")]
                if None in pick:
                    continue
                o, b = pick
                out.append(f"| {case['problem']}/{case['schedule']} | {target} | {o['method']} | {o['error']:.2e} | "
                           f"{_fmt(o.get('sw'), '.4f')} | {b['method']} | {b['option']} | {b['error']:.2e} | "
                           f"{_fmt(b.get('sw'), '.4f')} | {o['error'] / b['error']:.2f} |")
        out.append("")
        if result.get("optimized_grids"):
            out += ["The optimised grids (times in the schedule's units, first to last; first time fixed: the "
                    "schedule's top, free: searched below it, the noise taken as the state there):", "",
                    "| case | method | NFE | first time | times |", "|---|---|---:|---|---|"]
            out += [f"| {g['problem']}/{g['schedule']} | {g['method']} | {g['nfe_target']} | {g['first_time']} | "
                    f"{', '.join(f'{t:.6g}' for t in g['times'])} |" for g in result["optimized_grids"]]
            out.append("")
        if result.get("fitted_solvers"):
            out += ["The fitted solvers (times as above; weights: one row per step, separated by ';', row i weighing "
                    "the gradients of steps i, i - 1, ...; full precision in compare.json, fitted_solvers):", "",
                    "| case | solver | NFE | first time | times | weights |", "|---|---|---:|---|---|---|"]
            out += [f"| {f['problem']}/{f['schedule']} | {f['method']} | {f['nfe_target']} | {f['first_time']} | "
                    f"{', '.join(f'{t:.6g}' for t in f['times'])} | "
                    f"{'; '.join(' '.join(f'{w:.4g}' for w in row) for row in f['weights'])} |"
                    for f in result["fitted_solvers"]]
            out.append("")
    if "by_nfe_auto" in result:
        from pndmkit.studies.compare import AUTO_TAIL

        cfg = result["config"]
        spent = sum(c.get("auto_seconds", 0.0) for c in result["cases"])
        out += ["## Automatic choice of method and grid (reported apart: never in the tables above)", "",
                f"Per case and NFE, every pndmkit run (each method on each built-in grid"
                f"{', and the optimised grids' if 'by_nfe_optimized' in result else ''}) ran on "
                f"{cfg['auto_calibration']} calibration noises of their own ({spent:.0f} s in all), and each rule "
                f"chose one from them alone: rms, the smallest RMS error; interval, the best built-in grid unless an "
                f"optimised grid's 95% paired bootstrap interval of the cut lies above 0; tail, the smallest RMS "
                f"over the worst {100 * AUTO_TAIL:g}% of the calibration noises. The chosen run is scored on the "
                f"case's own samples, as every row above.", "", auto_summary(result, markdown=True), "",
                *([INTERVAL_NOTE + " (in brackets; the rule's choice fixed as made on calibration noises).", ""]
                  if any(r.get("vs_peer_interval") for e in result["by_nfe_auto"].values()
                         for r in e["rules"].values()) else []),
                "Per case, error / the case's best peer (goal: at most 0.5; (opt): an optimised grid was chosen):",
                "", auto_case_table(result), ""]
    for case in result["cases"]:
        floor = "" if case.get("sw_floor") is None else f", SW floor {case['sw_floor']:.4f}"
        out += [f"## {case['problem']} / {case['schedule']} (n = {case['n']}{floor})", "",
                "| NFE | side | method | grid option | steps | NFE used | error | SW | s_end |",
                "|---:|---|---|---|---:|---:|---:|---:|---:|"]
        for target in result["config"]["nfes"]:
            rows = [r for r in case["best"] if r["nfe_target"] == target]
            for side in ("pndmkit", "peer"):
                for r in sorted((r for r in rows if r["side"] == side), key=lambda r: r["error"])[:3]:
                    out.append(f"| {target} | {side} | {r['method']} | {r['option']} | {r['steps']} | {r['nfe']} "
                               f"| {r['error']:.2e} | {_fmt(r.get('sw'), '.4f')} | {r['s_end']:.3g} |")
        out.append("")
    return "\n".join(out)


def methods_markdown_table(names: Optional[list[str]] = None) -> str:
    """The methods table of the README (``pndmkit methods --markdown``) for ``names`` (default: built-in).

    Columns: name, kind, gradient part, transfer, NFE for ``N`` steps, declared order, reference; each row is
    :meth:`pndmkit.methods.MethodSpec.describe` of a registered method.
    """
    from pndmkit.methods import BUILTIN, get_method

    lines = ["| name | kind | gradient part | transfer | NFE for N steps | order | reference |",
             "|---|---|---|---|---|---|---|"]
    for name in names if names is not None else list(BUILTIN):
        r = get_method(name).describe()
        lines.append(f"| `{r['name']}` | {r['kind']} | {r['gradient']} | {r['transfer']} | {r['nfe']} "
                     f"| {r['order'] if r['order'] is not None else '-'} | {r['reference']} |")
    return "\n".join(lines)
