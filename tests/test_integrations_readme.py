"""The README's integration snippets run as written (copied verbatim from README.md)."""

from __future__ import annotations

import contextlib
import io
import os
import re
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
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {})
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
