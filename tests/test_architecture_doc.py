"""docs/architecture.md's path of an element call names files that exist (it must match the
code: a module renamed or moved without the doc fails here)."""

import re
from pathlib import Path

from elements.framework.registry import all_elements

ROOT = Path(__file__).resolve().parent.parent


def test_every_file_on_the_path_of_an_element_call_exists():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    section = doc.split("## The path of an element call", 1)[1].split("```")[1]
    named = set(re.findall(r"[a-z_<>]+(?:/[a-z_<>*]+)+\.py", section))
    assert len(named) >= 15, named
    for path in sorted(named):
        paths = (
            [path.replace("<key>", e.key) for e in all_elements()] if "<key>" in path else [path]
        )
        for concrete in paths:
            assert list(ROOT.glob(concrete)), f"docs/architecture.md names {concrete}"
