"""Head-to-head with the peers (diffusers schedulers) at equal NFE, from ``pndmkit compare``'s results."""

from __future__ import annotations

from pathlib import Path

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


def make(cfg: Config) -> Outcome:
    try:
        path = source(cfg)
    except ImportError as exc:
        return Outcome(NAME, skipped=f"pndmkit compare cannot run here ({exc}); needs diffusers (peers extra)")
    data = read_json(path)
    cases = data.get("cases", [])
    by_nfe = sorted(data["by_nfe"].items(), key=lambda kv: float(kv[0]))
    ncols = 3 if len(cases) > 2 else len(cases) + 1
    nrows = -(-(len(cases) + 1) // ncols)
    fig, axes = figure(nrows, ncols, width=3.3, height=2.8)
    panels = list(axes.ravel())
    for ax, case in zip(panels, cases):
        for side, names in (("pndmkit", OURS), ("peer", PEERS)):
            for method in names:
                pts = sorted((r["nfe_target"], r["error"]) for r in case["best"]
                             if r["side"] == side and r["method"] == method and 0 < r["error"] < float("inf"))
                if not pts:
                    continue
                kw = style(method) if side == "pndmkit" else {"color": PEER_COLOURS[method], "marker": "s",
                                                              "ls": "--", "label": f"{method} (diffusers)"}
                ax.plot(*zip(*pts), ms=2.5, lw=0.9, **kw)
        log_axes(ax, "NFE", "RMS error vs exact flow (in y)")
        ax.set_title(f"{case['problem']}, {case['schedule']}", fontsize=8)
    if cases:
        panels[0].legend(fontsize=5, ncol=2)
    ax = panels[len(cases)]
    nfe = [float(k) for k, _ in by_nfe]
    ratios = [v["ratio"] for _, v in by_nfe]
    ax.plot(nfe, ratios, marker="o", color="k")
    for x, (_, v) in zip(nfe, by_nfe):  # vertical labels: neighbouring NFE (5, 6; 15, 20) sit close together
        ax.annotate(f"{v['best_pndmkit']['method']} / {v['best_peer']['method']}", (x, v["ratio"]), fontsize=5,
                    rotation=90, ha="center", va="bottom", xytext=(0, 4), textcoords="offset points")
    ax.axhline(1.0, color="0.5", lw=0.8)
    log_axes(ax, "NFE", "best pndmkit error / best peer error")
    if ratios:
        ax.set_ylim(0.8 * min(ratios), max(1.3, 3.0 * max(ratios)))  # room above the points for the labels
    plain_log_y(ax)
    ax.set_title("summary over all solvers (by_nfe)", fontsize=8)
    for ax in panels[len(cases) + 1:]:
        ax.set_visible(False)
    caption = (
        "Head-to-head at equal NFE (never equal steps) with the peers, diffusers' schedulers, on Gaussian-mixture "
        "ground truth, from `pndmkit compare` (the module docstring of pndmkit/studies/compare.py gives the ground "
        "rules). One panel per case: error at each solver's best grid option against NFE for the main pndmkit "
        "methods (solid) and the main diffusers schedulers (dashed, squares); compare.json and compare.md hold "
        "every solver. Last panel: ratio of the best pndmkit method's error to the best peer's at each NFE "
        "(below 1: pndmkit is more accurate), each point labelled 'best pndmkit method / best peer'; with "
        "several cases a solver's error is the geometric mean over cases.")
    files = save(fig, cfg, NAME, caption, [path])
    body = [[k, v["best_pndmkit"]["method"], v["best_pndmkit"]["error"], v["best_peer"]["method"],
             v["best_peer"]["error"], v["ratio"]] for k, v in by_nfe]
    (cfg.out / f"{TABLE}.md").write_text(markdown_table(["NFE", "best pndmkit", "error", "best peer", "error",
                                                         "ratio"], body))
    return Outcome(NAME, files + [cfg.out / f"{TABLE}.md"])
