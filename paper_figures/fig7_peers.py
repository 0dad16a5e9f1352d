"""Head-to-head with the peers (diffusers schedulers) at equal NFE, from ``pndmkit compare``'s results."""

from __future__ import annotations

from paper_figures._common import DEFAULT_RESULTS, Config, Outcome, figure, markdown_table, read_json, save

NAME = "fig7_peers"
TABLE = "table_peers"
SOURCE = "compare.json"


def make(cfg: Config) -> Outcome:
    candidates = [cfg.results / SOURCE, DEFAULT_RESULTS / SOURCE]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return Outcome(NAME, skipped=f"no {SOURCE} yet: run `pndmkit compare --json > analysis/results/{SOURCE}` "
                                     "(issue 5) and rerun")
    data = read_json(path)
    by_nfe = sorted(data["by_nfe"].items(), key=lambda kv: float(kv[0]))
    nfe = [float(k) for k, _ in by_nfe]
    ours = [v["best_pndmkit"]["error"] for _, v in by_nfe]
    peer = [v["best_peer"]["error"] for _, v in by_nfe]
    fig, axes = figure(1, 2, width=3.8, height=3.0)
    ax = axes[0, 0]
    ax.plot(nfe, ours, marker="o", color="#ff7f0e", label="best pndmkit method")
    ax.plot(nfe, peer, marker="s", color="#1f77b4", label="best diffusers scheduler")
    for x, a, b, (_, v) in zip(nfe, ours, peer, by_nfe):
        ax.annotate(v["best_pndmkit"]["method"], (x, a), fontsize=5, xytext=(2, -7), textcoords="offset points")
        ax.annotate(v["best_peer"]["method"], (x, b), fontsize=5, xytext=(2, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("NFE")
    ax.set_ylabel("error (as reported by pndmkit compare)")
    ax.legend()
    ax = axes[0, 1]
    ax.plot(nfe, [v["ratio"] for _, v in by_nfe], marker="o", color="k")
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("NFE")
    ax.set_ylabel("ratio of errors (as reported)")
    extra = {k: v for k, v in data.items() if k != "by_nfe" and isinstance(v, (str, int, float))}
    caption = (
        "Head-to-head at equal NFE with the peers (diffusers schedulers: DDIM, PNDM in both modes, IPNDM, "
        "DPM-Solver++ 2M/3M, UniPC, DEIS, Heun, LMS), on Gaussian-mixture ground truth, from `pndmkit compare` "
        "(issue 5). Left: error of the best pndmkit method and of the best peer at each NFE (names at the points); "
        "right: the ratio reported by compare. " + (f"Settings: {extra}." if extra else ""))
    files = save(fig, cfg, NAME, caption, [path])
    body = [[k, v["best_pndmkit"]["method"], v["best_pndmkit"]["error"], v["best_peer"]["method"],
             v["best_peer"]["error"], v["ratio"]] for k, v in by_nfe]
    (cfg.out / f"{TABLE}.md").write_text(markdown_table(["NFE", "best pndmkit", "error", "best peer", "error",
                                                         "ratio"], body))
    return Outcome(NAME, files + [cfg.out / f"{TABLE}.md"])
