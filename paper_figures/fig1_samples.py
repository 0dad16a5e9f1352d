"""Figure 1: where the samplers differ. Digits from the same noises at NFE 5-10, each image's error against the
converged sample of the same probability-flow ODE (analogue of the paper's Figure 1)."""

from __future__ import annotations

import math

import numpy as np

from paper_figures._common import LABEL, Config, Outcome, figure, save, study

NAME = "fig1_samples"


def tile(images: np.ndarray) -> np.ndarray:
    """k images (k, h, w) side by side in one row, 1-pixel white gaps."""
    k, h, w = images.shape
    out = np.ones((h, k * (w + 1) - 1), dtype=np.float32)
    for i, img in enumerate(images):
        out[:, i * (w + 1):i * (w + 1) + w] = img
    return out


def error_label(errors: np.ndarray) -> str:
    """Per-image errors (grey levels) as one line under a tile: 2 significant digits, >999 as e.g. 9e3."""
    def one(e: float) -> str:
        if not math.isfinite(e):
            return "nan"
        return f"{e:.2g}" if e < 1000 else f"{e:.0e}".replace("e+0", "e")

    return " ".join(one(float(e)) for e in errors)


def _show(ax, images: np.ndarray) -> None:
    ax.imshow(np.clip(np.nan_to_num(tile(images), nan=1.0), -1, 1), cmap="gray", vmin=-1, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def make(cfg: Config) -> Outcome:
    from analysis import shipped_digits, sample_grid

    try:
        path = study(cfg, "sample_grid.npz", sample_grid)
    except shipped_digits.Unavailable as exc:
        return Outcome(NAME, skipped=str(exc))
    data = np.load(path)
    if "errors" not in data:
        return Outcome(NAME, skipped=f"{path.name} is from an older version; rerun with --recompute")
    images, errors, methods, nfes = data["images"], data["errors"], list(data["methods"]), list(data["nfes"])
    steps, nfe = data["steps"], data["nfe"]
    k = images.shape[2]
    fig, axes = figure(len(methods) + 1, len(nfes), width=0.42 * k + 0.1, height=0.8)
    for j in range(len(nfes)):  # the converged sample above every column, to compare against
        _show(axes[0, j], data["reference"])
        axes[0, j].set_title(f"NFE budget {nfes[j]}\n\nconverged sample", fontsize=6, pad=2)
    axes[0, 0].set_ylabel("reference", fontsize=7)
    for i, method in enumerate(methods):
        for j, budget in enumerate(nfes):
            ax = axes[i + 1, j]
            if steps[i, j] == 0:
                ax.axis("off")
                continue
            _show(ax, images[i, j])
            ax.set_xlabel(error_label(errors[i, j]), fontsize=5.5, labelpad=1)
            ax.set_title(f"{steps[i, j]} step{'' if steps[i, j] == 1 else 's'}, NFE {nfe[i, j]}", fontsize=5.5, pad=2)
            if j == 0:
                ax.set_ylabel(LABEL.get(method, method).replace("(", "\n("), fontsize=7)
    median = {m: np.nanmedian(errors[i], axis=1) for i, m in enumerate(methods)}
    best = [methods[int(np.nanargmin([median[m][j] for m in methods]))] for j in range(len(nfes))]
    caption = (
        f"Samples of the shipped digits model ({data['model']}) from the same {k} initial noises in every cell, "
        f"at NFE budgets {', '.join(map(str, nfes))} (each method at the largest step count that fits the "
        "budget), with the RMS error of each image against the converged sample of the same probability-flow "
        "ODE under the tile, in 8-bit grey levels (0-255). Top row: the converged sample (DOP853 with the network in "
        f"float64, its error {float(data['reference_error']):.1e} grey levels by a second solve at half the "
        "tolerance). All runs share the interval t = 999 to s = 0.1 (where the convergence study of fig2's right "
        "panel ends, so the images still carry 10 % noise) and the grid uniform in t. Lowest median error per "
        "budget: " + ", ".join(f"NFE {b}: {LABEL.get(m, m)} ({median[m][j]:.2g})" for j, (b, m) in
        enumerate(zip(nfes, best))) + ". F-PNDM's Runge-Kutta warm-up "
        "takes 4 evaluations per step, so below NFE 13 it runs 1-2 steps over most of the interval and "
        "diverges. Analogue of PNDM Figure 1, at the budgets where samplers differ.")
    return Outcome(NAME, save(fig, cfg, NAME, caption, [path]), notes={"best_at_nfe": dict(zip(map(int, nfes), best))})
