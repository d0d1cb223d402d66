"""The remote scenario's tests use the fixtures shared by every scenario (molecule/shared); the users' passwords
are the ones the role generated for each host into credentials/HOST/NAME."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))

pytest_plugins = ["hubfixtures"]
CREDENTIALS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "credentials"


@pytest.fixture(scope="module")
def passwords(settings) -> dict[str, str]:
    folder = CREDENTIALS / settings["inventory_hostname"]
    return {user["name"]: (folder / user["name"]).read_text().split()[0] for user in settings["quickjh_users"]}
