"""The README's audit table: every diffusers scheduler that runs on a VP schedule, and pndmkit's own methods.

Each row is :func:`pndmkit.studies.audit.audit` of one target (the scheduler with the options named in the row,
on its own default table and timesteps; a pndmkit method on the linear VP schedule, ``t``-uniform grids).
``declared`` is what the scheduler's documentation or paper claims (listed below with its source); the audit
never reads it: every other column is measured.

Run: ``python -m analysis.audit_table`` writes ``analysis/results/audit.json`` and ``audit.md`` (a few minutes on
two cores); ``python -m analysis.audit_table --markdown`` prints the table of the shipped JSON (what
``tests/test_audit.py`` compares with the README).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from analysis.tables import RESULTS, write_json


#: (target, config, declared order, where the claim comes from)
DIFFUSERS = [
    ("diffusers:DDIMScheduler", {"clip_sample": False}, 1, "DDIM (Song et al. 2021): first-order ODE solver"),
    ("diffusers:PNDMScheduler", {}, 2, "PNDM paper (Liu et al. 2022): second-order convergence"),
    ("diffusers:PNDMScheduler", {"skip_prk_steps": True}, 2, "PLMS, PNDM paper"),
    ("diffusers:DPMSolverMultistepScheduler", {"solver_order": 1}, 1, "solver_order"),
    ("diffusers:DPMSolverMultistepScheduler", {"solver_order": 2}, 2, "solver_order"),
    ("diffusers:DPMSolverMultistepScheduler", {"solver_order": 3}, 3, "solver_order"),
    ("diffusers:DPMSolverSinglestepScheduler", {"solver_order": 2}, 2, "solver_order"),
    ("diffusers:DPMSolverSinglestepScheduler", {"solver_order": 3}, 3, "solver_order"),
    ("diffusers:UniPCMultistepScheduler", {"solver_order": 1}, 2, "UniPC paper: UniC raises order p to p + 1"),
    ("diffusers:UniPCMultistepScheduler", {"solver_order": 2}, 3, "UniPC paper: UniC raises order p to p + 1"),
    ("diffusers:UniPCMultistepScheduler", {"solver_order": 3}, 4, "UniPC paper: UniC raises order p to p + 1"),
    ("diffusers:DEISMultistepScheduler", {"solver_order": 2}, 2, "solver_order"),
    ("diffusers:DEISMultistepScheduler", {"solver_order": 3}, 3, "solver_order"),
    ("diffusers:LMSDiscreteScheduler", {}, 4, "step(order=4), linear multistep in sigma"),
    ("diffusers:HeunDiscreteScheduler", {}, 2, "Heun's method (Karras et al. 2022)"),
    ("diffusers:EulerDiscreteScheduler", {}, 1, "Euler's method"),
]


def targets() -> list[tuple[str, dict, Any, str]]:
    """Every row: the diffusers schedulers above, then pndmkit's fixed-step methods (declared: the registry)."""
    from pndmkit.methods import METHODS

    own = [(name, {}, spec.order, "pndmkit registry") for name, spec in METHODS.items() if not spec.adaptive]
    return DIFFUSERS + own


def row(target: str, config: dict, declared: Any, source: str) -> dict:
    """One audit, reduced to the table's columns plus the full report."""
    from pndmkit.studies.audit import audit

    rep = audit(target, **config)
    return {"target": rep.target, "declared": declared, "declared_source": source, "report": rep.to_dict()}


def _f(v: Any, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def _broken(w: dict) -> str:
    if not w["describes_order"]:
        return "n/a: stages or a corrector"
    if w["implied_order"] is None:
        return "none up to q=5"
    parts = []
    for q in w["limiting"]:
        rate = w["conditions"][str(q)]["rate"]
        parts.append(f"q={q} " + ("fails" if not rate else f"O(h^{rate:g})"))
    return f"{', '.join(parts)} ({w['form']}): {w['implied_order']:g}"


def _notes(rep: dict) -> str:
    notes = []
    if not rep["weights"]["linear"]:
        notes.append("clips x0")
    c = rep["consistency"]
    approx = "" if c["measurable"] else " (approx.)"
    if c["level_mismatch"] > (1e-5 if rep["kind"] == "diffusers" else 1e-9):
        notes.append(f"model told a level {c['level_mismatch']:.0e} off{approx}")
    end, reached = c["end_level"], c["end_reached"]
    if abs(reached - end) > 1e-5 * max(1.0, end):
        notes.append(f"reaches s={reached:.3g}, not its last level {end:.3g}{approx}")
    if c["interval"] == "data" and c["end_level"] > 0:
        notes.append(f"ends at s={c['end_level']:.2g}, not abar = 1")
    if rep["intervals"]["data"]["order"] is None:
        notes.append("refuses to end at abar = 1")
    if not rep["point_mass"]["exact"]:
        notes.append(f"point mass error {rep['point_mass']['error']:.0e}")
    return "; ".join(notes)


def markdown_table(data: dict) -> str:
    """The README's table from ``audit.json``."""
    lines = ["| target | declared | measured | finest local | to abar = 1 | model calls | point mass | "
             "weights: limiting conditions (form): implied order | other findings |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        rep = r["report"]
        sm, da = rep["intervals"]["smooth"], rep["intervals"]["data"]
        exact = "exact" if rep["point_mass"]["exact"] else "no"
        lines.append(f"| {r['target']} | {r['declared']} | {_f(sm['order'])} | {_f(sm['finest_local_order'])} | "
                     f"{_f(da['order'])} | {rep['calls_per_step']} | {exact} | {_broken(rep['weights'])} | "
                     f"{_notes(rep)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.audit_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print the table of the shipped JSON and stop")
    parser.add_argument("--out", type=Path, default=RESULTS / "audit.json", metavar="FILE.json",
                        help="JSON file path to write (and FILE.md beside it; default: analysis/results/audit.json)")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_table(json.loads(args.out.read_text())))
        return 0
    rows, began = [], time.perf_counter()
    for target, config, declared, source in targets():
        t0 = time.perf_counter()
        rows.append(row(target, config, declared, source))
        print(f"{rows[-1]['target']:45s} {time.perf_counter() - t0:5.1f} s", file=sys.stderr, flush=True)
    import diffusers

    data = {"source": "pndmkit.studies.audit.audit, analysis/audit_table.py", "diffusers": diffusers.__version__,
            "seconds": round(time.perf_counter() - began, 1), "rows": rows}
    write_json(args.out, data)
    args.out.with_suffix(".md").write_text(markdown_table(data) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
