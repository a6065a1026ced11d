"""The design notes that code cites are in the repository (docs/), and nothing cites a file that is not."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITING = sorted(p for d in ("analytics", "dashboard", "tests", "benchmarks") for p in (ROOT / d).rglob("*.py"))


def test_every_cited_doc_exists_and_design_md_is_not_cited():
    cited = {m for p in CITING for m in re.findall(r"docs/[\w-]+\.md", p.read_text(encoding="utf-8"))}
    assert {"docs/import-format.md", "docs/outcome-definitions.md", "docs/privacy.md"} <= cited
    assert [c for c in cited if not (ROOT / c).is_file()] == []
    assert [str(p.relative_to(ROOT)) for p in CITING if p != Path(__file__) and "DESIGN.md" in p.read_text()] == []


def test_architecture_names_every_room_of_analytics():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rooms = sorted(p.name for p in (ROOT / "analytics").iterdir() if (p / "__init__.py").is_file())
    assert rooms and [r for r in rooms if f"`{r}/`" not in text] == []
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    assert [r for r in rooms if f"  {r}/ " not in layout] == [] and "settings.py" in layout and "docs/" in layout
