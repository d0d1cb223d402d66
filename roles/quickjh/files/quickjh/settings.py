"""The deployment's settings, one JSON file the role renders from its variables (mode 600, root's): the hub's
config applies them, and the accounts program and the per-user start read what they need of them."""

from __future__ import annotations

import json
import os
from pathlib import Path

SETTINGS = Path(os.environ.get("QUICKJH_SETTINGS", "/etc/quickjh/settings.json"))


def load(path: Path | None = None) -> dict:
    """The settings, with the secrets of secrets.json beside them (what --diff may not show) under "secrets"."""
    path = path or SETTINGS
    out = json.loads(path.read_text())
    secrets = path.with_name("secrets.json")
    out["secrets"] = json.loads(secrets.read_text()) if secrets.exists() else {}
    return out


def extra_config() -> list[Path]:
    """A site's own config files, beside the settings in jupyterhub_config.d/, in name order."""
    return sorted((SETTINGS.parent / "jupyterhub_config.d").glob("*.py"))


def state_dir() -> Path:
    """The state volume's mount point: the image's ENV sets it (sudoers keeps it for `sudo quickjh-adduser`)."""
    return Path(os.environ["QUICKJH_STATE"])
