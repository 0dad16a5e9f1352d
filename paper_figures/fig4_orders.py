"""Convergence orders: end-point error against NFE on a log-log plot, fitted slopes for every method.

``python -m paper_figures --only fig4_orders`` makes the figure with its caption and table;
``python -m paper_figures.fig4_orders PNG [--data FILE]`` draws the same figure alone into one PNG (the
README's ``docs/orders.png``, from ``analysis/results/orders.json``, the default study of ``pndmkit order``).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from paper_figures._common import DEFAULT_RESULTS, DPI, LABEL, Config, Outcome, figure, log_axes, markdown_table, read_json, save, study, style

NAME = "fig4_orders"
TABLE = "table_orders"
#: drawn in the second and third panels too, so that every panel shows the paper's first- and second-order methods
REFERENCES = ("ddim", "f-pndm")
#: two methods whose errors differ by less than this (relative, at every common step count) draw one line
SAME = 0.01
#: two methods closer than this at every common step count hide each other at the figure's scale
CLOSE = 0.15
LEFT = "eps form: pseudo methods of declared order <= 2,\nand adaptive methods"
MIDDLE = "classical methods, and eps-form pseudo methods\nof declared order >= 3"
RIGHT = "data-prediction form, x0 advanced exactly in e^lambda\n(DPM-Solver++, UniPC, -x0 forms)"


def kind(spec: Any) -> str:
    """``"pseudo"``, ``"classical"`` or ``"adaptive"`` for a registry entry.

    Uses ``spec.kind`` where the registry has it; otherwise an adaptive entry is ``"adaptive"``, one whose
    transfer is the DDIM map phi ``"pseudo"``, the others ``"classical"``.
    """
    value = getattr(spec, "kind", None)
    if value is not None:
        return str(value)
    if spec.adaptive:
        return "adaptive"
    return "pseudo" if str(spec.transfer).startswith("phi") else "classical"


def data_form(spec: Any) -> bool:
    """Whether a registry entry steps through the data-prediction transfer (its ``transfer`` says ``data``).

    Those methods (DPM-Solver++, UniPC and the ``-x0`` forms of the paper's methods) combine ``x0`` predictions
    and advance them exactly in ``e^lambda``; the others combine ``eps`` (through phi, or classically).
    """
    return "data" in str(getattr(spec, "transfer", ""))


def panels(registry: Mapping[str, Any] | None = None) -> dict[str, list[str]]:
    """Panel title -> method names, in registry order, from the registry alone.

    Left: eps-form pseudo methods of declared order at most 2 (DDIM, the paper's pseudo methods, iPNDM,
    DPM-Solver-2M, DEIS) and adaptive methods (drawn by their slope against NFE); middle: classical methods
    and eps-form pseudo methods of declared order 3 or more; right: every method of the data-prediction form
    (:func:`data_form`). :data:`REFERENCES` are repeated in the middle and right panels. A newly registered
    method lands in one of them without any edit here.
    """
    if registry is None:
        import pndmkit

        registry = pndmkit.METHODS
    left, middle, right = [], [], []
    for name, spec in registry.items():
        order = getattr(spec, "order", None)
        if data_form(spec):
            right.append(name)
        elif kind(spec) == "classical" or (order is not None and order >= 3):
            middle.append(name)
        else:
            left.append(name)
    refs = [n for n in REFERENCES if n in registry]
    return {LEFT: left, MIDDLE: middle + [n for n in refs if n not in middle],
            RIGHT: right + [n for n in refs if n not in right]}


def overlaps(results: Mapping[str, Any], names: Sequence[str]) -> dict[str, tuple[str, float]]:
    """For each method drawn on top of an earlier one in ``names``: (that method, largest relative difference).

    Two methods overlap when they share at least two step counts and their errors differ by less than
    :data:`CLOSE` (relative) at every one of them.
    """
    out: dict[str, tuple[str, float]] = {}
    for k, name in enumerate(names):
        mine = _errors_by_steps(results.get(name))
        for other in names[:k]:
            theirs = _errors_by_steps(results.get(other))
            common = sorted(set(mine) & set(theirs))
            if len(common) < 2:
                continue
            worst = max(abs(mine[s] - theirs[s]) / max(abs(theirs[s]), 1e-300) for s in common)
            if worst < CLOSE:
                out[name] = (other, worst)
                break
    return out


def _errors_by_steps(entry: Mapping[str, Any] | None) -> dict[int, float]:
    if not entry:
        return {}
    return {int(s): float(e) for s, e in zip(entry.get("steps", []), entry.get("errors", []))
            if s is not None and e is not None and math.isfinite(float(e)) and float(e) > 0}


def nfe_slope(entry: dict) -> float:
    """-slope of log error against log NFE over the points used for the order (all points for adaptive)."""
    if entry.get("nfe_slope") is not None:
        return float(entry["nfe_slope"])
    nfe, err = np.array(entry["nfe"], dtype=float), np.array(entry["errors"], dtype=float)
    ok = np.isfinite(err) & (err > 0)
    if ok.sum() < 2:
        return math.nan
    k = 3 if entry.get("measured_order") is not None else ok.sum()
    x, y = np.log(nfe[ok][-k:]), np.log(err[ok][-k:])
    return float(-np.polyfit(x, y, 1)[0])


def draw(data: Mapping[str, Any], registry: Mapping[str, Any] | None = None) -> tuple[Any, list[str]]:
    """The figure of an ``orders.json`` (its ``methods`` part), and the registered methods it has no data for.

    Methods come from the registry (:func:`panels`); a method whose errors lie on top of an earlier one's in
    its panel (:func:`overlaps`) is drawn with larger open markers and a dashed line, and its legend entry
    names the method it covers.
    """
    results = data["methods"]
    layout = panels(registry)
    fig, axes = figure(1, len(layout), width=4.3, height=5.0, sharex=True, sharey=True)
    for ax, (title, names) in zip(axes[0], layout.items()):
        names = [n for n in names if n in results]
        covered = overlaps(results, names)
        for name in names:
            r = results[name]
            measured = r.get("measured_order")
            kw = style(name)
            kw["label"] = f"{kw['label']}: " + (f"{measured:.2f} (declared {r['declared_order']})"
                                                if measured is not None and not _nan(measured)
                                                else f"slope vs NFE {nfe_slope(r):.2f}")
            if name in covered:
                other, worst = covered[name]
                what = "same errors as" if worst < SAME else "errors within {:.0f} % of".format(100 * CLOSE)
                kw["label"] += f"; {what} {LABEL.get(other, other)}"
                kw.update(markerfacecolor="none", markersize=7, ls="--", markeredgewidth=1.0)
            pts = [(n, e) for n, e in zip(r["nfe"], r["errors"]) if e is not None and not _nan(e) and e > 0]
            if pts:
                ax.plot(*zip(*pts), **kw)
        log_axes(ax, "NFE", "end-point error")
        ax.set_title(title, fontsize=8)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.15),  # below the axes: never over data
                  title="measured order (declared order)", title_fontsize=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tight_layout warns when it cannot satisfy every constraint
        fig.tight_layout()  # legends below the axes: laid out here, so that the figure is right on its own too
    registered = {n for names in layout.values() for n in names}
    missing = [n for n in registered if n not in results]
    return fig, sorted(missing)


def make(cfg: Config) -> Outcome:
    from analysis import orders

    path = study(cfg, "orders.json", orders)
    data = read_json(path)
    results = data["methods"]
    fig, missing = draw(data)
    caption = (
        f"Error of the end point against the exact probability-flow trajectory versus NFE, on the built-in "
        f"problem {data['problem']} with schedule {data['schedule']} and a {data['grid']} grid "
        + (f"from t = {data['t_start']:.4g} to t = {data['t_end']:.4g} " if "t_end" in data else "")
        + f"(source: {data['source']}). Every registered method (pndmkit.METHODS) is drawn, on one shared error "
        "axis: left, the pseudo methods in eps form (transfer phi) of declared order at most 2, among them "
        "DPM-Solver-2M and DEIS, and the adaptive ones; middle, the classical methods and the eps-form pseudo "
        "methods of higher declared order; right, the methods of the data-prediction form (x0 combined, advanced "
        "exactly in e^lambda: DPM-Solver++, UniPC and the -x0 forms of the paper's methods). DDIM and F-PNDM are "
        "repeated in the middle and right panels for scale. Legend: order fitted against steps on the "
        "asymptotic range, and the declared order of the registry; an adaptive method is reported by its slope "
        "against NFE. A method whose errors lie on top of an earlier one's in its panel is drawn with open "
        "markers and a dashed line, and its legend entry says so (PLMS, F-PNDM and iPNDM share their AB4 phase "
        "and differ only in the warm-up and hence NFE; so do iPNDM-x0 and F-PNDM-x0). The paper's pseudo "
        "methods (PRK, PLMS, S-/F-PNDM) are second order, as the paper states: phi integrates exactly in "
        "s = sqrt((1 - abar)/abar) while their stages and weights are uniform in t; placing the stages at the "
        "s-midpoint (PRK-s) and using Adams-Bashforth weights exact on the s nodes (F-PNDM-s, iPNDM-v) gives "
        "fourth order."
        + (f" Registered but not in {path.name} (rerun with --recompute): {', '.join(missing)}." if missing else ""))
    files = save(fig, cfg, NAME, caption, [path])
    body = [[LABEL.get(n, n), r["declared_order"] if r["declared_order"] is not None else "adaptive",
             r["measured_order"] if r.get("measured_order") is not None else float("nan"), nfe_slope(r),
             ", ".join(f"{e:.2g}" for e in r["errors"] if e is not None), ", ".join(map(str, r["nfe"]))]
            for n, r in results.items()]
    (cfg.out / f"{TABLE}.md").write_text(markdown_table(["method", "declared order", "measured order",
                                                         "slope vs NFE", "errors", "NFE"], body))
    return Outcome(NAME, files + [cfg.out / f"{TABLE}.md"],
                   notes={"orders": {n: r.get("measured_order") for n, r in results.items()}})


def _nan(v: float) -> bool:
    return isinstance(v, float) and math.isnan(v)


def main(argv: Sequence[str] | None = None) -> int:
    """Draw the figure of an ``orders.json`` into one PNG (no caption, no table); exit status 0, or 2.

    A user's methods are loaded first from ``PNDMKIT_PLUGINS``, as ``pndmkit`` and ``python -m paper_figures``
    load them (a failing plugin: one line, exit 2), so an ``orders.json`` made with them draws them. Bad input (no
    PNG, a missing ``--data`` file, an unknown, abbreviated or repeated option) is one line on stderr, ``python -m
    paper_figures.fig4_orders: error: ...``, and ``SystemExit(2)``, as with ``python -m paper_figures``."""
    from pndmkit.commands.args import CommandParser, parse_command_line, usage_exit
    from pndmkit.commands.plugins import load_plugins_or_exit

    prog = "python -m paper_figures.fig4_orders"
    load_plugins_or_exit(prog)
    parser = CommandParser(prog=prog, description="Draw fig4 (error against NFE, every registered method) into a PNG.")
    parser.add_argument("png", type=Path, help="output file, e.g. docs/orders.png")
    parser.add_argument("--data", type=Path, default=DEFAULT_RESULTS / "orders.json",
                        help="an orders.json (default: analysis/results/orders.json)")
    args = parse_command_line(parser, argv)
    if not args.data.is_file():
        raise usage_exit(prog, f"--data: no file {args.data}; make it with python -m analysis.orders")
    import matplotlib.pyplot as plt

    fig, missing = draw(read_json(args.data))
    args.png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.png, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    if missing:
        print(f"registered but not in {args.data} (rerun python -m analysis.orders): {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
