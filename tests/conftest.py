"""Unit tests of the project's Python helpers (no Docker needed): `make unit`."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "roles/quickjh/files")]  # files/: quickjh_nofollow


def load_program(name: str):
    """roles/quickjh/files/NAME.py, a program the image runs, imported as a module."""
    return load_plugin(f"files/{name}.py")


def load_plugin(relative: str):
    """A Python file of the role (e.g. filter_plugins/quickjh_checks.py), imported as a module."""
    path = ROOT / "roles/quickjh" / relative
    module_name = path.stem.replace("-", "_")
    loader = importlib.machinery.SourceFileLoader(module_name, str(path))
    spec = importlib.util.spec_from_loader(module_name, loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module
