"""The README's integration snippets run as written (copied verbatim from README.md)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def block(heading: str) -> str:
    """The first python block of the README section ``heading``."""
    text = README.read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def blocks(heading: str) -> list[str]:
    """Every python block of the README section ``heading``."""
    text = README.read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def run(code: str) -> str:
    """Run a README block; what it prints. A warning it raises fails the test (the README shows none), but for
    the deprecation warnings of other packages, which Python does not show outside ``__main__``."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(code, str(README), "exec"), {})
    ours = (README.parent / "pndmkit", README)  # not README.parent: a venv inside the checkout is another package's
    shown = [w for w in caught if not (issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))
                                       and not any(Path(w.filename).resolve().is_relative_to(p) for p in ours))]
    assert not shown, [f"{w.filename}:{w.lineno} {w.category.__name__}: {w.message}" for w in shown]
    return out.getvalue()


@pytest.mark.peers
@pytest.mark.torch
def test_diffusers_section_runs():
    pytest.importorskip("torch")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pytest.importorskip("diffusers")
    swap, image_to_image, flow = blocks("Use a pndmkit method in a diffusers pipeline")
    assert run(swap).split() == ["19", "19", "True", "True"]
    assert run(image_to_image).split() == ["2", "12"]
    assert run(flow).split() == ["1000.0", "5"]


def test_k_diffusion_section_runs():
    assert run(block("k-diffusion-style samplers")).strip() == "True"
