"""Unit tests of the project's Python helpers (no Docker needed): `make unit`."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


def load_users_program():
    """roles/quickjh/files/quickjh-users.py, the program the image runs, imported as a module."""
    path = ROOT / "roles/quickjh/files/quickjh-users.py"
    loader = importlib.machinery.SourceFileLoader("quickjh_users", str(path))
    spec = importlib.util.spec_from_loader("quickjh_users", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["quickjh_users"] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module
