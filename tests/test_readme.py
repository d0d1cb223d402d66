"""The documentation: the variables table is made from the specs, and every link between README.md and docs/ leads
to a file and a heading that exist."""

from __future__ import annotations

import re

from conftest import ROOT
from vars_table import table

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (code blocks left out): lower case, punctuation dropped,
    spaces made dashes."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, re.M):
        found.add(re.sub(r"[^\w\- ]", "", heading.lower().replace("`", "")).replace(" ", "-"))
    return found


def test_variables_table_matches_argument_specs():
    """docs/variables.md's table is `scripts/vars_table.py`'s output: regenerate it when a variable changes."""
    assert table() in (ROOT / "docs/variables.md").read_text()


def test_every_internal_link_leads_to_a_file_and_a_heading():
    broken = []
    for doc in DOCS:
        for target in LINK.findall(doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            where = (doc.parent / path).resolve() if path else doc
            if not where.exists():
                broken.append(f"{doc.name}: {target} (no such file)")
            elif anchor and where.suffix == ".md" and anchor not in anchors(where):
                broken.append(f"{doc.name}: {target} (no such heading)")
    assert not broken, broken
