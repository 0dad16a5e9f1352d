"""Head-to-head with the peers (diffusers schedulers) at equal NFE, from ``pndmkit compare``'s results."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from paper_figures._common import DEFAULT_RESULTS, Config, Outcome, figure, log_axes, markdown_table, plain_log_y, \
    read_json, save, style, write_json

NAME = "fig7_peers"
TABLE = "table_peers"
SOURCE = "compare.json"
#: solvers drawn in the per-case panels (the summary panel covers every solver compare ran)
OURS = ["ddim", "plms", "f-pndm", "ipndm", "f-pndm-s"]
PEER_COLOURS = {"ddim": "#08306b", "pndm-plms": "#6a51a3", "dpm-2m": "#e6550d", "dpm-3m": "#a63603",
                "unipc": "#31a354", "deis": "#636363"}
PEERS = list(PEER_COLOURS)
#: the summary panel's lines: compare.json key, colour, marker, where its labels go, legend text
SUMMARIES = (("by_nfe", "k", "o", "below", "every pndmkit grid (by_nfe)"),
             ("by_nfe_shared_grids", "#d95f02", "^", "above", "diffusers' grids only (by_nfe_shared_grids)"))
#: the head-to-head goals: 0.5 on every grid, 1.0 on diffusers' grids
GOALS = ((1.0, "-", None), (0.5, ":", "goal 0.5 (every grid)"))


def source(cfg: Config) -> Path:
    """compare.json from the results folder (or analysis/results), else computed with :func:`pndmkit.studies.compare.compare`."""
    for path in (cfg.results / SOURCE, DEFAULT_RESULTS / SOURCE):
        if path.is_file() and not cfg.recompute:
            cfg.log(f"  reading {path}")
            return path
    from pndmkit.studies.compare import CompareConfig, compare

    path = cfg.results / SOURCE
    cfg.log(f"  computing {path} with pndmkit.studies.compare ({'quick' if cfg.quick else 'default'} configuration)")
    return write_json(path, compare(CompareConfig.quick() if cfg.quick else CompareConfig(), log=cfg.log))


def strongest_others(data: Mapping[str, Any], drawn: Sequence[str] = OURS, key: str = "best") -> list[str]:
    """The pndmkit methods outside ``drawn`` that are best among those at some NFE, in order of first win.

    Scored as :func:`pndmkit.studies.compare.by_nfe` scores (geometric mean over the cases of each method's
    best-option error), on ``compare.json``'s rows of key ``key`` without the methods in ``drawn``: the
    strongest of the other compositions (DPM-Solver++, UniPC, DEIS, ...), read from the results, not named here.
    """
    from pndmkit.studies.compare import by_nfe

    cases = [{key: [r for r in case[key] if r["side"] == "pndmkit" and r["method"] not in drawn]}
             for case in data.get("cases", [])]
    winners = [v["best_pndmkit"]["method"] for _, v in sorted(by_nfe(cases, data["config"]["nfes"], key).items(),
                                                              key=lambda kv: float(kv[0]))]
    return list(dict.fromkeys(winners))


def _summary(ax: Any, data: Mapping[str, Any]) -> None:
    """Ratio of the best pndmkit error to the best peer's per NFE: every grid, and diffusers' grids only."""
    top, low = [], []
    for key, colour, marker, where, label in SUMMARIES:
        rows = sorted(data.get(key, {}).items(), key=lambda kv: float(kv[0]))
        if not rows:
            continue
        nfe, ratios = [float(k) for k, _ in rows], [v["ratio"] for _, v in rows]
        (low if where == "below" else top).extend(ratios)
        ax.plot(nfe, ratios, marker=marker, color=colour, ms=4, label=label)
        for x, (_, v) in zip(nfe, rows):  # vertical labels: neighbouring NFE (5, 6; 15, 20) sit close together
            ax.annotate(f"{v['best_pndmkit']['method']} / {v['best_peer']['method']}", (x, v["ratio"]), fontsize=5,
                        rotation=90, ha="center", va="top" if where == "below" else "bottom", color=colour,
                        xytext=(0, -4 if where == "below" else 4), textcoords="offset points")
    for goal, ls, label in GOALS:
        ax.axhline(goal, color="0.5", lw=0.8, ls=ls, label=label)
    log_axes(ax, "NFE", "best pndmkit error / best peer error")
    if top or low:  # room below and above the points for the labels
        ax.set_ylim(min(low + top) / 2.6, max(1.3, 2.6 * max(top + low)))
    plain_log_y(ax)
    ax.set_title("summary: best pndmkit / best peer (geometric mean over cases)", fontsize=7)


def make(cfg: Config) -> Outcome:
    try:
        path = source(cfg)
    except ImportError as exc:
        return Outcome(NAME, skipped=f"pndmkit compare cannot run here ({exc}); needs diffusers (peers extra)")
    data = read_json(path)
    cases = data.get("cases", [])
    others = strongest_others(data)
    ncols = 3 if len(cases) > 2 else len(cases) + 2
    nrows = -(-(len(cases) + 2) // ncols)
    fig, axes = figure(nrows, ncols, width=3.6, height=3.0)
    panels = list(axes.ravel())
    handles: dict[str, Any] = {}
    for ax, case in zip(panels, cases):
        for side, names, ls in (("pndmkit", OURS, "-"), ("pndmkit", others, "-."), ("peer", PEERS, "--")):
            for method in names:
                pts = sorted((r["nfe_target"], r["error"]) for r in case["best"]
                             if r["side"] == side and r["method"] == method and 0 < r["error"] < float("inf"))
                if not pts:
                    continue
                kw = {**style(method), "ls": ls} if side == "pndmkit" else {
                    "color": PEER_COLOURS[method], "marker": "s", "ls": ls, "label": f"{method} (diffusers)"}
                (line,) = ax.plot(*zip(*pts), ms=2.5, lw=0.9, **kw)
                handles.setdefault(kw["label"], line)
        log_axes(ax, "NFE", "RMS error vs exact flow (in y)")
        ax.set_title(f"{case['problem']}, {case['schedule']}", fontsize=8)
    _summary(panels[len(cases)], data)
    summary = panels[len(cases)].get_legend_handles_labels()
    if len(panels) > len(cases) + 1:  # the legends get a panel of their own, clear of every data point
        legend = panels[len(cases) + 1]
        legend.axis("off")
        if handles:
            legend.add_artist(legend.legend(
                list(handles.values()), list(handles), fontsize=6, ncol=2, loc="upper center",
                title="case panels -- solid: pndmkit's main methods; dash-dot: strongest\nother pndmkit "
                      "compositions; dashed, squares: diffusers", title_fontsize=6))
        legend.legend(*summary, fontsize=6, loc="lower center", title="summary panel", title_fontsize=6)
    else:
        panels[len(cases)].legend(fontsize=5, loc="upper right")
    for ax in panels[len(cases) + 2:]:
        ax.set_visible(False)
    caption = (
        "Head-to-head at equal NFE (never equal steps) with the peers, diffusers' schedulers, on Gaussian-mixture "
        "ground truth, from `pndmkit compare` (the module docstring of pndmkit/studies/compare.py gives the ground "
        "rules). One panel per case: error at each solver's best grid option against NFE for the paper's main "
        "pndmkit methods (solid), the strongest other pndmkit compositions (dash-dot: each is the best of the "
        f"methods outside the solid ones at some NFE, scored like the summary: {', '.join(others) or 'none'}) and "
        "the main diffusers schedulers (dashed, squares); compare.json and compare.md hold every solver. Summary "
        "panel: ratio of the best pndmkit method's error to the best peer's at each NFE (below 1: pndmkit is more "
        "accurate), each point labelled 'best pndmkit method / best peer'; black: pndmkit on every grid it offers "
        "(by_nfe), orange: pndmkit restricted to the grids diffusers offers (by_nfe_shared_grids); dotted line: "
        "the 0.5 goal of the first. With several cases a solver's error is the geometric mean over cases.")
    files = save(fig, cfg, NAME, caption, [path])
    shared = data.get("by_nfe_shared_grids", {})
    body = []
    for k, v in sorted(data["by_nfe"].items(), key=lambda kv: float(kv[0])):
        w = shared.get(k, {})
        body.append([k, v["best_pndmkit"]["method"], v["best_pndmkit"]["error"], v["best_peer"]["method"],
                     v["best_peer"]["error"], v["ratio"], w.get("best_pndmkit", {}).get("method", "-"),
                     w.get("best_pndmkit", {}).get("error", float("nan")), w.get("ratio", float("nan"))])
    (cfg.out / f"{TABLE}.md").write_text(markdown_table(
        ["NFE", "best pndmkit", "error", "best peer", "error", "ratio", "best pndmkit on diffusers' grids", "error",
         "ratio (diffusers' grids)"], body))
    return Outcome(NAME, files + [cfg.out / f"{TABLE}.md"], notes={"others": others})
