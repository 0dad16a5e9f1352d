"""The manifold argument: classical vs pseudo steps over the density of p_t, and ||x_t|| / sqrt(d) along the way."""

from __future__ import annotations

import numpy as np

from paper_figures._common import LABEL, Config, Outcome, figure, read_json, save, study, style

NAME = "fig5_manifold"
NAME_NORMS = "fig5_norms"
ROWS = ["euler", "fon", "ddim", "f-pndm", "exact"]


LIM = 1.6


def density(t: float, lim: float = LIM, n: int = 64) -> np.ndarray:
    """log p_t of gmm2d on an n x n mesh of [-lim, lim]^2 (discrete DDPM linear schedule), rows = y."""
    from pndmkit.problems import get_problem
    from pndmkit.schedules import DiscreteVP

    u = np.linspace(-lim, lim, n)
    xx, yy = np.meshgrid(u, u)
    logp = get_problem("gmm2d").log_prob(np.stack([xx.ravel(), yy.ravel()], 1), float(t), DiscreteVP.linear())
    return np.asarray(logp).reshape(n, n)


def background(ax, logp: np.ndarray) -> None:
    """The density as a grey image, clipped 8 nats below its maximum; the densest grey stays light enough for
    coloured points on it to show."""
    top = logp.max()
    ax.imshow(np.maximum(logp, top - 8), extent=(-LIM, LIM, -LIM, LIM), origin="lower", cmap="Greys",
              interpolation="nearest", aspect="auto", vmin=top - 8, vmax=top + 6)


def make(cfg: Config) -> Outcome:
    from analysis import manifold

    path = study(cfg, "manifold.json", manifold)
    data = read_json(path)
    case = data["cases"]["gmm2d"]
    times = case["times"]
    last = len(times) - 1  # columns where classical and pseudo steps differ most, and the end
    cols = sorted({last // 2 - 1, round(0.7 * last), round(0.8 * last), last})
    fig, axes = figure(len(ROWS), len(cols) + 1, width=1.5, height=1.5)
    meshes = {k: density(times[k]) for k in cols}
    for i, method in enumerate(ROWS):
        pts = np.asarray(case["methods"][method]["points"])
        for j, k in enumerate(cols):
            ax = axes[i, j]
            background(ax, meshes[k])
            ax.scatter(pts[k, :, 0], pts[k, :, 1], s=2.5, color=style(method)["color"], alpha=0.7, lw=0)
            if i == 0:
                ax.set_title(f"t = {times[k]:.0f}, step {k}/{len(times) - 1}", fontsize=7)
        ax = axes[i, -1]  # trajectories of a few points over p_0
        background(ax, meshes[cols[-1]])
        for p in range(min(25, pts.shape[1])):
            ax.plot(pts[1:, p, 0], pts[1:, p, 1], lw=0.6, color=style(method)["color"], marker=".", ms=1.5)
        if i == 0:
            ax.set_title("paths from step 1", fontsize=7)
        kind = case["methods"][method]["kind"]
        axes[i, 0].set_ylabel("exact flow" if method == "exact" else f"{LABEL.get(method, method)}\n({kind})",
                              fontsize=7)
        for ax in axes[i]:
            ax.set_xlim(-LIM, LIM)
            ax.set_ylim(-LIM, LIM)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
    caption = (
        f"The 2-D mixture gmm2d sampled in {data['steps']} steps ({data['schedule']}) by classical methods (Euler; "
        "FON = RK4 warm-up + AB4, both with the linear step x + h f(x, t)) and pseudo methods (DDIM; F-PNDM, with "
        "the transfer phi), and the exact probability-flow map, from the same noises. Grey: log p_t at the "
        "column's time from the exact marginal (clipped 8 nats below its maximum); last column: paths of 25 "
        f"points from step 1 over p_0. See {NAME_NORMS} for the norms along the way.")
    files = save(fig, cfg, NAME, caption, [path])
    files += norms(cfg, data, path)
    return Outcome(NAME, files)


def norms(cfg: Config, data: dict, path) -> list:
    cases = data["cases"]
    fig, axes = figure(2, len(cases), width=3.0, height=2.5)
    for j, (name, case) in enumerate(cases.items()):
        steps = np.arange(len(case["times"]))
        expected = np.asarray(case["expected_norm"], dtype=float)
        for method, r in case["methods"].items():
            kw = style(method) if method != "exact" else {"color": "k", "marker": "", "label": "exact flow", "ls": ":"}
            axes[0, j].plot(steps, np.asarray(r["norm_rms"], dtype=float) / expected, **kw)
            if "logp_mean" in r:
                axes[1, j].plot(steps, np.asarray(r["logp_mean"], dtype=float) - np.asarray(case["exact_logp"]), **kw)
        axes[0, j].axhline(1.0, color="0.5", lw=0.8)
        axes[0, j].set_title(f"{name} (d = {case['dim']})", fontsize=8)
        axes[0, j].set_ylabel("RMS ||x_t||/sqrt(d) / exact")
        axes[1, j].set_ylabel("mean log p_t(x_t) - exact")
        for ax in axes[:, j]:
            ax.set_xlabel("step")
        if "exact_logp" not in case:
            axes[1, j].set_visible(False)
    axes[0, 0].legend()
    caption = (
        "Where the samples sit relative to p_t along the way, same runs as fig5_manifold plus the 32-D mixture "
        "gmm32d" + (" and the shipped digits model (d = 256)" if "digits" in cases else "") + ". Top: root mean "
        "square of ||x_t||/sqrt(d) over the samples divided by its exact value under p_t (for the digits: "
        "sqrt(abar E||x_0||^2/d + 1 - abar) from the data's second moment); 1 means the samples have the norm of "
        "p_t. Bottom (mixtures): mean log p_t(x_t) under the exact marginal minus the same for exact samples of "
        "p_t; negative means the points sit in lower-density regions than p_t's own samples, positive that they "
        "crowd its modes. x axis: step index of the leading grid.")
    return save(fig, cfg, NAME_NORMS, caption, [path])
