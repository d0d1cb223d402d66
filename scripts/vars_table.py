#!/usr/bin/env python3
"""The variables table of docs/variables.md, made from roles/quickjh/meta/argument_specs.yml so the two never drift.

scripts/vars_table.py           print it
scripts/vars_table.py --write   put it into docs/variables.md between its markers
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "roles/quickjh/meta/argument_specs.yml"
DOC = ROOT / "docs/variables.md"
BEGIN, END = "<!-- vars-table: made by scripts/vars_table.py --write -->\n", "<!-- /vars-table -->\n"


def table(specs_path: Path = SPECS) -> str:
    options = yaml.safe_load(specs_path.read_text())["argument_specs"]["main"]["options"]
    rows = ["| Variable | Default | Description |", "| --- | --- | --- |"]
    for name, spec in options.items():
        default = json.dumps(spec.get("default")) if "default" in spec else "(required)"
        description = spec["description"]
        if isinstance(description, list):
            description = " ".join(description)
        keys = spec.get("options")
        if keys:
            description += " Keys: " + "; ".join(
                f"`{key}` ({sub.get('type', 'str')}{', required' if sub.get('required') else ''}"
                f"{', default ' + json.dumps(sub['default']) if 'default' in sub else ''}): {sub['description']}"
                for key, sub in keys.items()
            )
        rows.append(f"| `{name}` | `{default}` | {description} |")
    return "\n".join(rows) + "\n"


def write(doc: Path = DOC) -> None:
    text = doc.read_text()
    head, rest = text.split(BEGIN, 1)
    doc.write_text(head + BEGIN + table() + END + rest.split(END, 1)[1])


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        sys.stdout.write(table())
