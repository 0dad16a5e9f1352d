"""Studies that write tables (CSV/JSON) under ``analysis/results/``; ``python -m analysis.bench`` is ``make bench``."""

from pathlib import Path as _Path

#: the source tree's root (the folder holding ``analysis/``)
ROOT = _Path(__file__).resolve().parent.parent


def portable(config: dict) -> dict:
    """``config`` with every string that is an absolute path inside the source tree made relative to its root.

    Results files echo their command's options; machine-specific absolute paths would make them differ between
    checkouts of the same commit.
    """
    def shown(v):
        if isinstance(v, str) and _Path(v).is_absolute():
            try:
                return str(_Path(v).resolve().relative_to(ROOT))
            except ValueError:
                return v
        return v

    return {k: shown(v) for k, v in config.items()}
