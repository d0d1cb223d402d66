"""The hub's configuration, applied from the settings file through one small function per concern (jupyterhub_config.py
calls configure). Each takes JupyterHub's config object and the settings and only sets values, so each is tested
against a traitlets Config without a running hub. The spawner of each quickjh_spawner is a module of its own,
quickjh.spawners.NAME, chosen by name; it sets what only that mode needs."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

PROXY_API = "http://127.0.0.1:81"  # the proxy's API: a port below 1024, root's alone in the hub's container
TLS = Path("/etc/quickjh/tls")  # the role's certificate and key (the config folder, mounted read-only)
TEMPLATES = "/usr/local/share/quickjh/templates"
# What users' servers keep of the hub's environment (the image's ENV); QUICKJH_STATE lets `sudo quickjh-adduser`
# find the state volume.
ENV_KEEP = ["PATH", "LANG", "LC_ALL", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "QUICKJH_STATE"]


def configure(c, settings: dict, state: Path) -> None:
    """Everything, in order (state: the state volume's mount point)."""
    set_address(c, settings)
    set_state(c, state)
    set_login(c, settings, state)
    set_services(c, settings)
    set_servers(c, settings)
    set_sharing(c, settings)
    set_spawner(c, settings)
    set_usage(c, settings)
    c.JupyterHub.template_vars = {
        **c.JupyterHub.template_vars,
        "quickjh_login": settings["auth"]["kind"],
        "quickjh_usage_url": f"{settings['base_url']}services/usage/",
    }


def set_address(c, settings: dict) -> None:
    """Listen on all of the container's interfaces (Docker publishes the port), under quickjh_base_url; HTTPS with
    the role's certificate unless quickjh_tls is off."""
    scheme = "https" if settings["https"] else "http"
    # Where the proxy listens in the container (a port below 1024, root's alone): on every interface, which Docker
    # publishes as quickjh_port, or (acme) on loopback behind the TLS front.
    c.JupyterHub.bind_url = f"{scheme}://{settings['proxy_listen']}{settings['base_url']}"
    c.ConfigurableHTTPProxy.api_url = PROXY_API
    c.ConfigurableHTTPProxy.check_running_interval = 2  # a proxy ended to take a new certificate is back within 2 s
    if settings["subdomain_host"]:  # each user's server at NAME.HOST, an origin of its own
        c.JupyterHub.subdomain_host = settings["subdomain_host"]
    if settings["https"]:
        c.JupyterHub.ssl_cert = str(TLS / "hub.crt")
        c.JupyterHub.ssl_key = str(TLS / "hub.key")


def set_state(c, state: Path) -> None:
    """Logins (the cookie secret) and the database on the state volume: they survive restarts and re-creation.
    The proxy's pid file there too (quickjh-start removes one left by a killed container)."""
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
    c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")
    c.JupyterHub.template_paths = [TEMPLATES]  # JupyterHub's pages, with a word on adding users on the admin page


def set_login(c, settings: dict, state: Path) -> None:
    """The login kind of quickjh_auth: the module quickjh.logins.NAME sets its authenticator and what only it needs."""
    importlib.import_module(f"quickjh.logins.{settings['auth']['kind']}").configure(c, settings, state)


def set_services(c, settings: dict) -> None:
    """quickjh-sync, the accounts program's way in (admin: only an admin may change another user's admin flag;
    it has no token here: each run makes its own in the database, quickjh.hubdb), and the idle culler when
    quickjh_cull_idle_timeout is set."""
    c.JupyterHub.services = [{"name": "quickjh-sync"}]
    c.JupyterHub.load_roles = [{"name": "admin", "services": ["quickjh-sync"]}]
    timeout, every = settings["cull"]["timeout"], settings["cull"]["every"]
    if timeout > 0:
        c.JupyterHub.services.append(
            {
                "name": "idle-culler",
                "command": [
                    sys.executable,
                    "-m",
                    "jupyterhub_idle_culler",
                    f"--timeout={timeout}",
                    f"--cull-every={every}",
                ],
            }
        )
        c.JupyterHub.load_roles.append(
            {
                "name": "idle-culler",
                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
                "services": ["idle-culler"],
            }
        )
        # Servers and the proxy report activity often enough for that timeout.
        c.JupyterHub.last_activity_interval = activity_interval(timeout)


def activity_interval(cull_timeout: int) -> int:
    """How often activity is reported: a sixth of the idle timeout, between 10 s and 5 minutes."""
    return max(10, min(300, cull_timeout // 6))


def set_servers(c, settings: dict) -> None:
    """What every user's server gets, in every mode: the page it opens, ~/notebook, its environment, its limits."""
    c.Spawner.default_url = settings["default_url"]
    c.Spawner.notebook_dir = "~/notebook"
    c.Spawner.env_keep = list(ENV_KEEP)
    # Config and kernelspecs of the shared, root-owned venv are read, users' own (~/.local) ones win.
    env = {"JUPYTER_PREFER_ENV_PATH": "0", **settings["environment"]}
    if settings["limits"]["memory"]:  # each mode's spawner enforces it; MEM_LIMIT shows it in the status bar
        c.Spawner.mem_limit = settings["limits"]["memory"]
    if settings["cull"]["timeout"] > 0:
        env["JUPYTERHUB_ACTIVITY_INTERVAL"] = str(activity_interval(settings["cull"]["timeout"]))
    c.Spawner.environment = env


# With quickjh_collaboration: what every user may do to share their own server (share with users and groups of the
# list, whose names the share dialog lists), and what a browser's token for a server may carry (shares!server: that
# server's own shares, never the visitor's). A visitor's access is asked of the hub again every few seconds.
SHARING_SCOPES = ["shares!user", "read:users:name", "read:groups:name", "list:users", "list:groups"]
SHARE_DIALOG_SCOPES = ["read:users:name", "shares!server", "list:users", "list:groups"]
SHARING_SERVER_ARGS = ["--ServerApp.jpserver_extensions=quickjh.sharewatch=True", "--HubOAuth.cache_max_age=5"]


def set_sharing(c, settings: dict) -> None:
    """quickjh_collaboration: sharing one's server (JupyterHub's shares) and editing together (jupyter-collaboration,
    in the image); revoked visitors lose their open websockets too (quickjh.sharewatch). Arguments, not a config
    file: a server's owner cannot turn the watch off for their visitors from ~/.jupyter."""
    if not settings["collaboration"]:
        return
    c.JupyterHub.extra_user_scopes = list(SHARING_SCOPES)
    c.Spawner.oauth_client_allowed_scopes = list(SHARE_DIALOG_SCOPES)
    c.Spawner.args = [*SHARING_SERVER_ARGS]


USAGE_URL = "http://127.0.0.1:82"  # a port below 1024: root's alone in the hub's container


def set_usage(c, settings: dict) -> None:
    """The admins' usage page, a service the hub starts (/services/usage/: only the admin role may open a service
    by default), and with quickjh_metrics_token a Prometheus scraper's token that reads /hub/metrics and nothing
    else; each user's figures join the hub's own there (quickjh.usage.Gauges)."""
    c.JupyterHub.services.append(
        {
            "name": "usage",
            "url": USAGE_URL,
            "command": ["/usr/local/sbin/quickjh-usage", "serve"],
            "environment": {"QUICKJH_STATE": os.environ.get("QUICKJH_STATE", "")},
            "oauth_no_confirm": True,
            "display": True,
        }
    )
    token = settings["secrets"].get("metrics_token", "")
    if token:
        c.JupyterHub.services.append({"name": "prometheus", "api_token": token})
        c.JupyterHub.load_roles.append({"name": "metrics", "scopes": ["read:metrics"], "services": ["prometheus"]})
    from quickjh.usage import register_gauges

    register_gauges()


def set_spawner(c, settings: dict) -> None:
    """The spawner of quickjh_spawner: the module quickjh.spawners.NAME sets its class and what only it needs."""
    importlib.import_module(f"quickjh.spawners.{settings['spawner']}").configure(c, settings)
