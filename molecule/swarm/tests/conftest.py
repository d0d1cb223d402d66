"""The swarm scenario's tests use the fixtures shared by every scenario (molecule/shared)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

pytest_plugins = ["hubfixtures"]
