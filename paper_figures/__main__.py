"""``python -m paper_figures``: make every figure and table (see the package docstring)."""

from paper_figures import main

raise SystemExit(main())
