"""The bare hub the seed recipe (../shared/seed) builds by hand, from quickjh's base image and JupyterHub version:
JupyterHub, JupyterLab and Notebook from pip, PAM logins, LocalProcessSpawner in ~/notebook, plain HTTP, nothing
else. bench/load.py measures it in the same run as quickjh, so the two compare on the same machine."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = yaml.safe_load((ROOT / "roles/quickjh/defaults/main.yml").read_text())
NAME, PORT = "quickjh-bench-bare", 18101
URL = f"http://127.0.0.1:{PORT}"
DOCKERFILE = f"""FROM {DEFAULTS["quickjh_base_image"]}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      ca-certificates node-configurable-http-proxy python3 python3-venv && rm -rf /var/lib/apt/lists/*
COPY host-ca.crt /etc/host-ca.crt
RUN python3 -m venv /opt/jupyterhub && PIP_CERT=/etc/host-ca.crt /opt/jupyterhub/bin/pip install --no-cache-dir \\
      "jupyterhub=={DEFAULTS["quickjh_jupyterhub_version"]}" jupyterlab notebook
ENV PATH=/opt/jupyterhub/bin:$PATH
COPY jupyterhub_config.py /etc/jupyterhub/jupyterhub_config.py
WORKDIR /srv/jupyterhub
CMD ["jupyterhub", "--config", "/etc/jupyterhub/jupyterhub_config.py"]
"""
CONFIG = """c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://0.0.0.0:8000"
c.Authenticator.allow_all = True
c.Spawner.notebook_dir = "~/notebook"
c.Spawner.default_url = "/lab"
"""
USERS = """set -e
while IFS=: read -r name password; do
  useradd --create-home --shell /bin/bash "$name"
  mkdir /home/$name/notebook && chmod 700 /home/$name && chown -R $name: /home/$name
  echo "$name:$password" | chpasswd
done
"""


def start(passwords: dict[str, str], ca_bundle: str = "/etc/ssl/certs/ca-certificates.crt") -> None:
    """Build the bare image, run it and add the users as the recipe says (useradd, notebook folder, chpasswd)."""
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "Dockerfile").write_text(DOCKERFILE)
        (Path(context) / "jupyterhub_config.py").write_text(CONFIG)
        shutil.copy(ca_bundle, Path(context) / "host-ca.crt")
        subprocess.run(["docker", "build", "-q", "-t", NAME, context], check=True, stdout=subprocess.DEVNULL)
    stop()
    subprocess.run(
        ["docker", "run", "-d", "--name", NAME, "-p", f"127.0.0.1:{PORT}:8000", NAME],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        ["docker", "exec", "-i", NAME, "bash", "-c", USERS],
        check=True,
        input="".join(f"{n}:{p}\n" for n, p in passwords.items()),
        text=True,
    )


def stop(image: bool = False) -> None:
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True, check=False)
    if image:
        subprocess.run(["docker", "rmi", "-f", NAME], capture_output=True, check=False)
