"""Figure 1 of the paper: digits from the shipped model, methods x steps, the same initial noise in every cell."""

from __future__ import annotations

import numpy as np

from paper_figures._common import LABEL, Config, Outcome, figure, save, study

NAME = "fig1_samples"


def tile(images: np.ndarray) -> np.ndarray:
    """k images (k, 16, 16) side by side in one row (or a 2 x 2 square for k = 4), 1-pixel white gaps."""
    k, h, w = images.shape
    cols = 2 if k == 4 else k
    rows = -(-k // cols)
    out = np.ones((rows * (h + 1) - 1, cols * (w + 1) - 1), dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = img
    return out


def make(cfg: Config) -> Outcome:
    from analysis import _digits, sample_grid

    try:
        path = study(cfg, "sample_grid.npz", sample_grid)
    except _digits.Unavailable as exc:
        return Outcome(NAME, skipped=str(exc))
    data = np.load(path)
    images, methods, steps, nfe = data["images"], list(data["methods"]), list(data["steps"]), data["nfe"]
    fig, axes = figure(len(methods), len(steps), width=1.05, height=1.1)
    for i, method in enumerate(methods):
        for j, n in enumerate(steps):
            ax = axes[i, j]
            ax.imshow(np.nan_to_num(tile(images[i, j]), nan=1.0), cmap="gray", vmin=-1, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(f"{n} steps\nNFE {nfe[i, j]}" if i == 0 else f"NFE {nfe[i, j]}", fontsize=6, pad=2)
            if j == 0:
                ax.set_ylabel(LABEL.get(method, method), fontsize=7)
    caption = (f"Samples of the shipped digits model ({data['model']}) with the same {images.shape[2]} initial "
               f"noises in every cell: rows {', '.join(LABEL.get(m, m) for m in methods)}; columns "
               f"{', '.join(map(str, steps))} steps (DDIM's convention: leading spacing, final abar = 1); NFE in "
               "each title. FON is the classical fourth-order method (RK4 warm-up, then AB4) with the linear "
               "transfer; the others use the DDIM transfer phi. Analogue of PNDM Figure 1.")
    return Outcome(NAME, save(fig, cfg, NAME, caption, [path]))
