"""Head-to-head with the peers (diffusers schedulers) at equal NFE, from ``pndmkit compare``'s results."""

from __future__ import annotations

from pathlib import Path

from paper_figures._common import DEFAULT_RESULTS, Config, Outcome, figure, log_axes, markdown_table, read_json, save, write_json

NAME = "fig7_peers"
TABLE = "table_peers"
SOURCE = "compare.json"


def source(cfg: Config) -> Path:
    """compare.json from the results folder (or analysis/results), else computed with :func:`pndmkit.compare.compare`."""
    for path in (cfg.results / SOURCE, DEFAULT_RESULTS / SOURCE):
        if path.is_file() and not cfg.recompute:
            cfg.log(f"  reading {path}")
            return path
    from pndmkit.compare import CompareConfig, compare

    path = cfg.results / SOURCE
    cfg.log(f"  computing {path} with pndmkit.compare ({'quick' if cfg.quick else 'default'} configuration)")
    return write_json(path, compare(CompareConfig.quick() if cfg.quick else CompareConfig(), log=cfg.log))


def make(cfg: Config) -> Outcome:
    try:
        path = source(cfg)
    except ImportError as exc:
        return Outcome(NAME, skipped=f"pndmkit compare cannot run here ({exc}); needs diffusers (peers extra)")
    data = read_json(path)
    cases = data.get("cases", [])
    by_nfe = sorted(data["by_nfe"].items(), key=lambda kv: float(kv[0]))
    fig, axes = figure(1, len(cases) + 1, width=3.6, height=3.1)
    for ax, case in zip(axes[0], cases):
        solvers = sorted({(r["side"], r["method"]) for r in case["best"]})
        for side, method in solvers:
            pts = sorted((r["nfe_target"], r["error"]) for r in case["best"]
                         if r["side"] == side and r["method"] == method and 0 < r["error"] < float("inf"))
            if pts:
                ax.plot(*zip(*pts), ls="-" if side == "pndmkit" else "--", marker="o" if side == "pndmkit" else "s",
                        ms=2.5, lw=0.9, label=f"{method}" + ("" if side == "pndmkit" else " (diffusers)"))
        log_axes(ax, "NFE", "RMS error vs exact flow (in y)")
        ax.set_title(f"{case['problem']}, {case['schedule']}", fontsize=8)
    if cases:
        axes[0, 0].legend(fontsize=5, ncol=2)
    ax = axes[0, -1]
    nfe = [float(k) for k, _ in by_nfe]
    ax.plot(nfe, [v["ratio"] for _, v in by_nfe], marker="o", color="k")
    for x, (_, v) in zip(nfe, by_nfe):
        ax.annotate(f"{v['best_pndmkit']['method']} / {v['best_peer']['method']}", (x, v["ratio"]), fontsize=5,
                    rotation=30, xytext=(2, 2), textcoords="offset points")
    ax.axhline(1.0, color="0.5", lw=0.8)
    log_axes(ax, "NFE", "best pndmkit error / best peer error")
    ax.set_title("summary (by_nfe)", fontsize=8)
    caption = (
        "Head-to-head at equal NFE (never equal steps) with the peers, diffusers' schedulers, on Gaussian-mixture "
        "ground truth, from `pndmkit compare` (issue 5; its module docstring gives the ground rules). One panel "
        "per case: each solver's error at its best grid option against NFE (solid: pndmkit methods; dashed: "
        "diffusers). Last panel: ratio of the best pndmkit method's error to the best peer's at each NFE "
        "(below 1: pndmkit is more accurate), annotated with the two winners; with several cases a solver's "
        "error is the geometric mean over cases.")
    files = save(fig, cfg, NAME, caption, [path])
    body = [[k, v["best_pndmkit"]["method"], v["best_pndmkit"]["error"], v["best_peer"]["method"],
             v["best_peer"]["error"], v["ratio"]] for k, v in by_nfe]
    (cfg.out / f"{TABLE}.md").write_text(markdown_table(["NFE", "best pndmkit", "error", "best peer", "error",
                                                         "ratio"], body))
    return Outcome(NAME, files + [cfg.out / f"{TABLE}.md"])
