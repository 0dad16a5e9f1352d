"""Shared style, configuration and file handling of the paper figures.

Every figure script exposes ``NAME`` (the file stem it writes) and ``make(cfg) -> Outcome``. A figure reads
its table from ``cfg.results`` (written by a study in ``analysis/``) and asks that study to compute it when
the file is missing or ``--recompute`` is given, then writes ``<NAME>.png``, ``<NAME>.pdf`` and a caption
``<NAME>.txt`` that ends with the command that made it.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from analysis.tables import read_csv, read_json, write_json  # noqa: F401  (re-exported)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "paper_figures" / "out"
DEFAULT_RESULTS = ROOT / "analysis" / "results"
DPI = 110

#: one colour and marker per method, the same in every figure
STYLE: dict[str, tuple[str, str]] = {
    "ddim": ("#1f77b4", "o"), "fon": ("#d62728", "v"), "pf": ("#7f7f7f", "*"), "s-pndm": ("#2ca02c", "s"),
    "f-pndm": ("#ff7f0e", "D"), "prk": ("#8c564b", "^"), "pie": ("#bcbd22", "<"), "plms": ("#e377c2", ">"),
    "prk-s": ("#9467bd", "P"), "f-pndm-s": ("#17becf", "X"), "ipndm": ("#aec7e8", "h"),
    "ipndm-v": ("#98df8a", "H"), "euler": ("#ff9896", "1"), "rk4": ("#c49c94", "2"),
    "pece-s": ("#393b79", "p"), "pec-s": ("#8c6d31", "d"), "fon-official": ("#843c39", "^"),
    "dpm-solver++-2m": ("#ad494a", "s"), "dpm-solver++-3m": ("#5254a3", "^"), "dpm-solver-2m": ("#7b4173", "d"),
    "unipc-2": ("#00a087", "o"), "unipc-3": ("#637939", "v"), "deis-3": ("#000000", "x"),
    "ipndm-x0": ("#6baed6", "h"), "f-pndm-x0": ("#bd9e39", "D"), "pece-x0": ("#a55194", "p"),
    "exact": ("#e7298a", ""),
}
#: colours and markers for methods without an entry in STYLE (registered later), picked from the name
FALLBACK_COLOURS = ("#637939", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363")
FALLBACK_MARKERS = ("o", "s", "^", "v", "D", "<", ">", "h", "p", "*")
#: the paper's names for display
LABEL = {"ddim": "DDIM", "fon": "FON", "pf": "PF", "s-pndm": "S-PNDM", "f-pndm": "F-PNDM", "prk": "PRK",
         "pie": "PIE", "plms": "PLMS", "prk-s": "PRK-s", "f-pndm-s": "F-PNDM-s", "ipndm": "iPNDM",
         "ipndm-v": "iPNDM-v", "euler": "Euler", "rk4": "RK4", "pece-s": "PECE-s", "pec-s": "PEC-s",
         "fon-official": "FON (official)", "dpm-solver++-2m": "DPM-Solver++(2M)", "dpm-solver++-3m": "DPM-Solver++(3M)",
         "dpm-solver-2m": "DPM-Solver(2M)", "unipc-2": "UniPC-2", "unipc-3": "UniPC-3", "deis-3": "DEIS-3",
         "ipndm-x0": "iPNDM-x0", "f-pndm-x0": "F-PNDM-x0", "pece-x0": "PECE-x0"}


def style(method: str) -> dict[str, Any]:
    """Matplotlib keyword arguments (colour, marker, label) of a method.

    A method without an entry in :data:`STYLE` (one registered later) gets a colour and a marker chosen from
    its name, the same in every figure and every run.
    """
    if method in STYLE:
        colour, marker = STYLE[method]
    else:
        code = zlib.crc32(method.encode())
        colour = FALLBACK_COLOURS[code % len(FALLBACK_COLOURS)]
        marker = FALLBACK_MARKERS[(code // len(FALLBACK_COLOURS)) % len(FALLBACK_MARKERS)]
    return {"color": colour, "marker": marker, "label": LABEL.get(method, method)}


@dataclass
class Config:
    """Where to write, how big to compute, and the command line to cite in captions."""

    out: Path = DEFAULT_OUT
    results: Path = DEFAULT_RESULTS
    quick: bool = False
    recompute: bool = False
    threads: int | None = None
    command: str = "python -m paper_figures"
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr, flush=True))


@dataclass
class Outcome:
    """What a figure script did: the files it wrote, or why it skipped."""

    name: str
    files: list[Path] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


def command_line(argv: Sequence[str] | None) -> str:
    """The command that regenerates the outputs, as a user would type it."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python -m paper_figures", *map(shlex.quote, args)])


def results_path(cfg: Config, filename: str) -> Path:
    cfg.results.mkdir(parents=True, exist_ok=True)
    return cfg.results / filename


def cached(cfg: Config, filename: str, compute: Callable[[Path], Any]) -> Path:
    """Path of a result table, computed by ``compute(path)`` when missing (or with ``--recompute``)."""
    path = results_path(cfg, filename)
    if cfg.recompute or not path.is_file():
        cfg.log(f"  computing {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        compute(path)
    else:
        cfg.log(f"  reading {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


# -- figures -----------------------------------------------------------------------------------------
def figure(nrows: int = 1, ncols: int = 1, *, width: float = 4.0, height: float = 3.2, **kw: Any):
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "legend.fontsize": 7, "lines.markersize": 4,
                         "axes.grid": True, "grid.alpha": 0.3, "figure.dpi": DPI})
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)


def save(fig: Any, cfg: Config, name: str, caption: str, sources: Sequence[Path] = ()) -> list[Path]:
    """Write ``name``.png/.pdf and the caption ``name``.txt (caption, data files, command)."""
    import matplotlib.pyplot as plt

    cfg.out.mkdir(parents=True, exist_ok=True)
    png, pdf, txt = (cfg.out / f"{name}.{ext}" for ext in ("png", "pdf", "txt"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tight_layout warns when it cannot satisfy every constraint
        fig.tight_layout()
    fig.savefig(png, dpi=DPI, bbox_inches="tight")
    fig.savefig(pdf, bbox_inches="tight")
    plt.close(fig)
    lines = [caption.strip(), ""]
    if sources:
        lines.append("Data: " + ", ".join(_rel(p) for p in sources))
    lines.append(f"Made by: {cfg.command}" + ("" if f"--only" in cfg.command else f"  (figure {name})"))
    lines.append(f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}" + ("  [--quick: small sizes, "
                 "not for reading numbers off]" if cfg.quick else ""))
    txt.write_text("\n".join(lines) + "\n")
    return [png, pdf, txt]


def _rel(p: Path) -> str:
    p = Path(p).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def study(cfg: Config, filename: str, module: Any) -> Path:
    """The table of ``analysis.<module>``, computed by its ``run`` when missing (or with ``--recompute``)."""
    return cached(cfg, filename, lambda path: module.run(path, quick=cfg.quick, log=cfg.log))


def plot_curves(ax: Any, rows: Sequence[dict[str, Any]], x: str, y: str, methods: Sequence[str], *,
                dashed: str | None = None, split: str = "schedule", solid: str | None = None,
                positive: bool = True) -> None:
    """One line per method (``rows`` filtered by ``split == solid``), and dashed with open markers for ``dashed``.

    Points with a non-finite value (or, for log axes, ``positive``, a value <= 0) are left out.
    """
    for method in methods:
        for value, ls in ((solid, "-"), (dashed, "--")):
            if value is None:
                continue
            pts = sorted((r[x], r[y]) for r in rows if r["method"] == method and r.get(split) == value
                         and _ok(r.get(x)) and _ok(r.get(y), positive))
            if not pts:
                continue
            kw = style(method)
            if ls == "--":
                kw.update(label=None, markerfacecolor="none")
            xs, ys = zip(*pts)
            ax.plot(xs, ys, ls=ls, **kw)


def line_style_keys(solid: str, dashed: str) -> list[Any]:
    """Legend entries explaining :func:`plot_curves`' line styles (solid; dashed with open markers)."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], color="k", marker="o", ls="-", label=f"solid: {solid}"),
            Line2D([], [], color="k", marker="o", ls="--", markerfacecolor="none", label=f"dashed: {dashed}")]


def _ok(v: Any, positive: bool = True) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and (v > 0 or not positive)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table (floats with 4 significant digits, NaN as a dash)."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "-" if not math.isfinite(v) else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def log_axes(ax: Any, xlabel: str, ylabel: str, *, logy: bool = True) -> None:
    """Log x (plain numbers as tick labels: steps and NFE read better than 10^1), log or linear y, labels."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.set_yscale("log" if logy else "linear")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def plain_log_y(ax: Any) -> None:
    """Plain numbers (20, 30, 50, 0.5) as the tick labels of a log y axis spanning about one decade.

    Matplotlib labels such an axis with minor ticks like ``3 x 10^1``, which read badly; here ticks whose
    leading digit is 1, 2, 3, 4, 5, 6 or 8 are labelled, the others (7, 9) left blank so that labels never crowd.
    """
    from matplotlib.ticker import FuncFormatter

    def label(v: float, _pos: Any) -> str:
        if v <= 0:
            return ""
        lead = round(v / 10 ** math.floor(math.log10(v) + 1e-9), 6)
        return f"{v:g}" if lead in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0) else ""

    ax.yaxis.set_major_formatter(FuncFormatter(label))
    ax.yaxis.set_minor_formatter(FuncFormatter(label))
