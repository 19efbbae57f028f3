"""The README's Python blocks run, so the documentation cannot drift from the API.

Every fenced ``python`` block of ``README.md`` runs in a fresh folder holding the bundled
sample as ``scene.progs`` (the name the README uses), blocks in order, sharing one
namespace, as a reader would paste them.
"""

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md"]


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", markdown, flags=re.S | re.M)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_python_blocks_run(document, tmp_path, monkeypatch, capsys):
    blocks = python_blocks(document.read_text())
    assert blocks, f"{document.name} has no python blocks"
    shutil.copy(ROOT / "examples" / "plant.progs", tmp_path / "scene.progs")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{document.name} python block {i + 1}", "exec"), namespace)
    assert "level ready" in capsys.readouterr().out


def test_readme_numbers_of_the_sample():
    """The quickstart paragraph's LoD anchors are what inspect reports for the sample."""
    from progs_codec import inspect

    info = inspect(ROOT / "examples" / "plant.progs")
    text = " ".join(ROOT.joinpath("README.md").read_text().split())
    lod_anchors = ", ".join(f"{lv.lod_anchors:,}" for lv in info.levels[:-1])
    assert f"({lod_anchors} and {info.levels[-1].lod_anchors:,} LoD anchors" in text
