"""Studies that write tables (CSV/JSON) under ``analysis/results/``; ``python -m analysis.bench`` is ``make bench``."""
