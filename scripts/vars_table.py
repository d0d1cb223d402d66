#!/usr/bin/env python3
"""Print the README's variables table from roles/quickjh/meta/argument_specs.yml, so the two never drift."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

SPECS = Path(__file__).resolve().parent.parent / "roles/quickjh/meta/argument_specs.yml"


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
                for key, sub in keys.items())
        rows.append(f"| `{name}` | `{default}` | {description} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
