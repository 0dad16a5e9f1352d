"""docs/theory.md is the project's own theory reference: every citation of it names a section it has."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITATION = re.compile(r'docs/theory\.md`{0,2}\s*[(,]?\s*\(?\s*"([^"]+)"')


def _sections() -> set[str]:
    return {line[3:].strip() for line in (ROOT / "docs" / "theory.md").read_text().splitlines()
            if line.startswith("## ")}


def _citations() -> list[tuple[str, str]]:
    found = []
    for folder in ("pndmkit", "tests", "analysis", "paper_figures"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for match in CITATION.finditer(path.read_text()):
                found.append((str(path.relative_to(ROOT)), " ".join(match.group(1).split())))
    found += [("README.md", " ".join(m.group(1).split())) for m in CITATION.finditer((ROOT / "README.md").read_text())]
    return found


def test_every_citation_names_an_existing_section():
    sections, citations = _sections(), _citations()
    assert len(citations) >= 8  # the package, its tests and analysis cite it
    missing = [(where, name) for where, name in citations if name not in sections]
    assert not missing, f"sections cited but absent from docs/theory.md: {missing}"


def test_the_private_engineering_notes_are_never_cited():
    private = "MATH" + ".md"  # a notes file outside the package, which users do not have
    for folder in ("pndmkit", "tests", "analysis", "paper_figures", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md"):
                assert private not in path.read_text(), path
    assert private not in (ROOT / "README.md").read_text()
