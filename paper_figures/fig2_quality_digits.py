"""Digits-FID at equal NFE with paired bootstrap intervals, the error against the converged solution on the same
network, and the abstract's claim (50-step PNDM against 1000-step DDIM)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from paper_figures._common import DEFAULT_RESULTS, LABEL, Config, Outcome, figure, log_axes, markdown_table, \
    plain_log_y, read_csv, read_json, results_path, save, study, style, write_json

NAME = "fig2_quality_digits"
TABLE = "table_digits_fid"
ORDERS = "real_orders.json"


def cell(value: float, low: float, high: float, digits: int = 2) -> str:
    """``value [low, high]`` (a dash for a missing value)."""
    if not math.isfinite(value):
        return "-"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def budget_rows(rows: list[dict]) -> list[dict]:
    """The table's rows at NFE budgets (not the data floor, not the claim's rows)."""
    return [r for r in rows if r["method"] != "data" and isinstance(r["nfe_budget"], int)]


def tables(rows: list[dict]) -> str:
    """Two markdown tables, methods x NFE budgets: digits-FID, and FID minus the converged samples' FID.

    In the first, the best method at a budget is in bold and methods whose paired gap to it has an interval
    that contains 0 are marked ``=`` (not separated from the best).
    """
    at = budget_rows(rows)
    budgets = sorted({r["nfe_budget"] for r in at})
    methods = list(dict.fromkeys(r["method"] for r in at))
    by = {(r["method"], r["nfe_budget"]): r for r in at}
    head = ["method"] + [f"NFE {b}" for b in budgets]
    fid, gap = [], []
    for m in methods:
        fid_cells, gap_cells = [LABEL.get(m, m)], [LABEL.get(m, m)]
        for b in budgets:
            r = by.get((m, b))
            if r is None:
                fid_cells.append("")
                gap_cells.append("")
                continue
            text = cell(r["fid"], r["fid_low"], r["fid_high"]) + f" ({r['nfe']})"
            if r["to_best"] == 0:
                text = f"**{text}**"
            elif math.isfinite(r["to_best_low"]) and r["to_best_low"] <= 0:
                text = f"= {text}"
            fid_cells.append(text)
            gap_cells.append(cell(r["to_converged"], r["to_converged_low"], r["to_converged_high"]))
        fid.append(fid_cells)
        gap.append(gap_cells)
    return (markdown_table(head, fid) + "\nDigits-FID minus the converged samples' digits-FID (paired; negative: "
            "closer to the data than the converged ODE solution):\n\n" + markdown_table(head, gap))


def _orders(cfg: Config, methods: list[str]) -> Path:
    """``real_orders.json`` (the network's error vs NFE): read where it is, computed only when missing.

    A quick run reads the committed one when its own folder has none (it never writes analysis/results).
    """
    path = results_path(cfg, ORDERS)
    if path.is_file() and not cfg.recompute:
        cfg.log(f"  reading {path}")
        return path
    if cfg.quick and (DEFAULT_RESULTS / ORDERS).is_file():
        cfg.log(f"  reading {DEFAULT_RESULTS / ORDERS} (the committed study)")
        return DEFAULT_RESULTS / ORDERS
    from analysis import real_orders

    cfg.log(f"  computing {path} (methods {', '.join(methods)})")
    args = ["--methods", ",".join(methods), "--out", str(path), "--cache", str(path.parent / "real_cache")]
    if cfg.quick:
        args += ["--batch", "1", "--steps", "5,10", "--nfe", "5,10"]
    real_orders.main(args)
    return path


def draw(rows: list[dict], orders: dict[str, Any], claim: dict[str, Any]) -> Any:
    """The three panels: digits-FID vs NFE, FID minus the converged FID vs NFE, network error vs NFE."""
    at = budget_rows(rows)
    methods = list(dict.fromkeys(r["method"] for r in at))
    floor = next(r for r in rows if r["method"] == "data")
    fig, axes = figure(1, 3, width=3.6, height=3.2)
    a, b, c = axes[0]
    for k, m in enumerate(methods):
        pts = sorted({r["nfe"]: r for r in at if r["method"] == m and math.isfinite(r["fid"])}.values(),
                     key=lambda r: r["nfe"])
        if not pts:
            continue
        shift = 1 + 0.015 * (k - (len(methods) - 1) / 2)  # side by side, so that the bars do not hide each other
        x = [r["nfe"] * shift for r in pts]
        for ax, key in ((a, "fid"), (b, "to_converged")):
            y = [r[key] for r in pts]
            err = [[max(r[key] - r[f"{key}_low"], 0) for r in pts], [max(r[f"{key}_high"] - r[key], 0) for r in pts]]
            ax.errorbar(x, y, yerr=err, capsize=1.5, lw=1, elinewidth=0.8, **style(m))
    conv = claim["ddim"]
    a.axhspan(conv["low"], conv["high"], color="0.85", zorder=0)
    a.axhline(conv["value"], color="0.4", lw=0.8,
              label=f"converged: {LABEL.get(conv['method'], conv['method'])} {conv['steps']} steps")
    a.axhline(floor["fid"], color="0.4", lw=0.8, ls=":", label=f"{floor['n_samples']} real digits")
    log_axes(a, "NFE (model evaluations)", f"digits-FID of {floor['n_samples']} samples")
    plain_log_y(a)
    a.set_title("digits-FID, 95 % intervals")
    b.axhline(0, color="0.4", lw=0.8)
    log_axes(b, "NFE (model evaluations)", "FID minus converged FID (paired)", logy=False)
    b.set_yscale("symlog", linthresh=1.0)
    b.set_title("paired difference to the converged samples")
    net = orders.get("network", {}).get("orders", {})
    for m in methods:
        r = net.get(m)
        if not r:
            continue
        pts = [(k, 127.5 * e) for k, e in zip(r["nfe"], r["errors"]) if e and math.isfinite(e)]
        if pts:
            kw = style(m)
            kw["label"] = f"{kw['label']}: order {r['measured_order']}" if r.get("measured_order") else kw["label"]
            c.plot(*zip(*pts), **kw)
    c.axvspan(5, 20, color="0.93", zorder=0)
    log_axes(c, "NFE (model evaluations)", "RMS error vs converged (grey levels)")
    c.set_title(f"error on the network ({orders.get('config', {}).get('batch', '?')} noises)")
    c.legend(loc="lower left", fontsize=6)
    handles, labels = a.get_legend_handles_labels()
    fig.legend(handles=handles, labels=labels, ncol=4, loc="upper center", bbox_to_anchor=(0.5, 0.0))
    return fig


def make(cfg: Config) -> Outcome:
    from analysis import shipped_digits, quality_nfe

    try:
        path = study(cfg, "quality_nfe.csv", quality_nfe)
    except shipped_digits.Unavailable as exc:
        return Outcome(NAME, skipped=str(exc))
    rows = read_csv(path)
    claim_file = quality_nfe.claim_path(path)
    claim = read_json(claim_file)
    verdict = quality_nfe.verdict(claim)
    methods = list(dict.fromkeys(r["method"] for r in budget_rows(rows)))
    orders_path = _orders(cfg, methods)
    orders = read_json(orders_path)
    fig = draw(rows, orders, claim)
    files = save(fig, cfg, NAME, caption(rows, claim, verdict, orders), [path, claim_file, orders_path])
    floor = next(r for r in rows if r["method"] == "data")
    md = [f"Digits-FID [95 % paired-bootstrap interval] (NFE in brackets) of {claim['n_samples']} samples from the "
          "same noises, each method at the largest step count that fits the NFE budget; bold: best at the budget; "
          "`=`: the paired interval of its gap to the best contains 0. Converged samples "
          f"({LABEL.get(claim['ddim']['method'], claim['ddim']['method'])} {claim['ddim']['steps']} steps): "
          f"{cell(claim['ddim']['value'], claim['ddim']['low'], claim['ddim']['high'])}; real digits "
          f"{floor['fid']:.2f} +- {floor['fid_sd']:.2f} (5 subsets of {floor['n_samples']}).\n",
          tables(rows), f"\nThe abstract's claim: {verdict['text']}\n"]
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / f"{TABLE}.md").write_text("\n".join(md))
    files += [cfg.out / f"{TABLE}.md", write_json(cfg.out / "claim_pndm_vs_ddim.json", verdict)]
    cfg.log(f"  {verdict['text']}")
    return Outcome(NAME, files, notes={"verdict": verdict["verdict"], "claim": verdict["claim"]})


def caption(rows: list[dict], claim: dict, verdict: dict, orders: dict) -> str:
    n = claim["n_samples"]
    best = {}
    for r in budget_rows(rows):
        if r["to_best"] == 0:
            best[r["nfe_budget"]] = LABEL.get(r["method"], r["method"])
    return (
        f"Left: digits-FID of {n} samples of the shipped digits model (a DDPM UNet on the discrete linear "
        "schedule) from the same initial noises, each method at the largest step count that fits the NFE "
        "budget, on the grid uniform in t from t = 999 to abar = 1 (trailing spacing; DDIM's leading convention "
        "starts at t = 800 at 5 steps and costs DPM-Solver++(2M) and UniPC-3 most of their quality at NFE <= 8, "
        "see analysis/quality_nfe.py); lower is better; bars: 95 % normal "
        "bootstrap intervals (every sample set resampled with the same indices). Grey line and band: the "
        "converged samples (1000-step DDIM); dotted: real digits. Middle: the paired difference to the converged "
        "samples' FID with its interval (symmetric-log axis): pairing on the same noises removes most of the "
        "spread of the values, so these intervals are what separates the samplers. Best per budget: "
        + ", ".join(f"NFE {k}: {v}" for k, v in sorted(best.items()))
        + "; the table marks which others are not separated from it. Right: RMS error of the end point against "
        "the converged solution of the same ODE from the same noises (DOP853, network in float64; "
        f"reference error {orders.get('reference_error', float('nan')):.1e}), in grey levels, over NFE on the "
        "uniform-in-t grid from t = 999 to s = 0.1 (analysis/real_orders.py; the legend gives the fitted orders); "
        "shaded: the budgets of the other panels. "
        f"The abstract's claim, {verdict['claim']}: {verdict['text'].split(' -> ', 1)[1]}.")
