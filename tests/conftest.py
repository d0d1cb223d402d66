"""Unit tests of the project's Python (no Docker needed): `make unit`. pyproject.toml puts the role's package
(roles/quickjh/files), its filter plugins, scripts/ and molecule/shared/ on the path, so each test imports by name."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
