"""The hub's configuration from the settings file (quickjh.hubconfig and each mode's spawner module), checked on a
traitlets Config as JupyterHub would load it, without a running hub: every mode and every option that changes a
setting."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
from traitlets.config import Config

from quickjh import hubconfig
from quickjh.spawners import docker as docker_mode
from quickjh.spawners import local as local_mode
from quickjh.spawners import swarm as swarm_mode

SETTINGS = {
    "hub": "quickjh",
    "base_url": "/",
    "https": True,
    "proxy_listen": "0.0.0.0:443",
    "front": {
        "acme": False,
        "names": [],
        "directory": "",
        "email": "",
        "ca_bundle": "",
        "renew_interval": "10m",
        "http": False,
        "public_port": 8000,
    },
    "subdomain_host": "",
    "spawner": "local",
    "default_url": "/lab",
    "min_password_length": 8,
    "cull": {"timeout": 3600, "every": 300},
    "shared_folders": {},
    "environment": {},
    "limits": {"memory": 0, "cpus": 0.0, "processes": 512},
    "log": {"max_size": "10m", "max_files": 5},
    "extra_config": "",
    "collaboration": False,
    "auth": {
        "kind": "pam",
        "otp": False,
        "public_url": "https://hub.example.org/",
        "allowed_groups": [],
        "admin_groups": [],
        "refresh_seconds": 300,
        "client_id": "",
        "github_url": "https://github.com",
        "gitlab_url": "https://gitlab.com",
        "oidc": {
            "name": "Example",
            "authorize_url": "https://id.example.org/authorize",
            "token_url": "https://id.example.org/token",
            "userinfo_url": "https://id.example.org/userinfo",
            "logout_url": "",
            "scopes": ["openid", "profile", "email"],
            "username_claim": "preferred_username",
            "groups_claim": "groups",
        },
        "ldap": {
            "url": "ldap://ldap.example.org",
            "starttls": True,
            "ca_bundle": "",
            "bind_dn_template": "uid={username},ou=people,dc=example,dc=org",
            "search_dn": "",
        },
    },
    "secrets": {"oauth_client_secret": "s3cret", "ldap_search_password": ""},
    "docker": {"network": "quickjh-users", "home_volume": "quickjh_home", "profiles": {}},
    "swarm": {"nodes": {}, "homes_nfs": {}},
}


def settings(**changes) -> dict:
    out = copy.deepcopy(SETTINGS)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


@pytest.fixture
def state(tmp_path) -> Path:
    return tmp_path


def configured(state: Path, **changes) -> Config:
    c = Config()
    hubconfig.configure(c, settings(**changes), state)
    return c


def test_https_by_default_under_the_base_url_with_the_roles_certificate(state):
    c = configured(state)
    assert c.JupyterHub.bind_url == "https://0.0.0.0:443/"
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:81"  # both below 1024: root's alone
    assert (c.JupyterHub.ssl_cert, c.JupyterHub.ssl_key) == ("/etc/quickjh/tls/hub.crt", "/etc/quickjh/tls/hub.key")
    c = configured(state, https=False, proxy_listen="0.0.0.0:80", base_url="/jupyter/")
    assert c.JupyterHub.bind_url == "http://0.0.0.0:80/jupyter/"
    assert "ssl_cert" not in c.JupyterHub and "ssl_key" not in c.JupyterHub
    assert "subdomain_host" not in c.JupyterHub  # users' servers share the hub's origin unless asked
    c = configured(state, subdomain_host="https://hub.example.org:8000")
    assert c.JupyterHub.subdomain_host == "https://hub.example.org:8000"


def test_state_on_the_state_volume(state):
    c = configured(state)
    assert c.JupyterHub.cookie_secret_file == f"{state}/jupyterhub_cookie_secret"
    assert c.JupyterHub.db_url == f"sqlite:///{state}/jupyterhub.sqlite"
    assert c.ConfigurableHTTPProxy.pid_file == f"{state}/jupyterhub-proxy.pid"


def test_linux_accounts_log_in_and_are_asked_again_every_minute(state):
    c = configured(state)
    assert c.JupyterHub.authenticator_class == "quickjh.auth.QuickjhAuthenticator"
    assert (c.Authenticator.auth_refresh_age, c.Authenticator.refresh_pre_spawn) == (60, True)
    assert c.Authenticator.delete_invalid_users and c.Authenticator.auth_refresh_strict
    assert c.PAMAuthenticator.admin_groups == {"sudo"}
    assert c.QuickjhAuthenticator.min_password_length == 8
    assert configured(state, min_password_length=12).QuickjhAuthenticator.min_password_length == 12


def test_the_sync_is_an_admin_service_and_the_culler_follows_the_timeout(state):
    c = configured(state)
    assert c.JupyterHub.services[0] == {"name": "quickjh-sync"}  # no standing token: each run makes its own
    culler = c.JupyterHub.services[1]
    assert culler["command"] == [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600", "--cull-every=300"]
    assert c.JupyterHub.last_activity_interval == 300
    assert c.Spawner.environment["JUPYTERHUB_ACTIVITY_INTERVAL"] == "300"
    assert {"name": "admin", "services": ["quickjh-sync"]} in c.JupyterHub.load_roles
    c = configured(state, cull={"timeout": 60, "every": 10})
    assert c.JupyterHub.last_activity_interval == 10 and "--timeout=60" in c.JupyterHub.services[1]["command"]
    c = configured(state, cull={"timeout": 0})
    assert [s["name"] for s in c.JupyterHub.services] == ["quickjh-sync", "usage"]
    assert "last_activity_interval" not in c.JupyterHub
    assert "JUPYTERHUB_ACTIVITY_INTERVAL" not in c.Spawner.environment


def test_users_servers_open_the_default_page_in_notebook_with_the_proxy_and_memory_limit(state):
    c = configured(state)
    assert (c.Spawner.default_url, c.Spawner.notebook_dir) == ("/lab", "~/notebook")
    assert c.Spawner.environment == {"JUPYTER_PREFER_ENV_PATH": "0", "JUPYTERHUB_ACTIVITY_INTERVAL": "300"}
    assert "mem_limit" not in c.Spawner
    c = configured(
        state, default_url="/tree", environment={"https_proxy": "http://proxy:3128"}, limits={"memory": 600 * 2**20}
    )
    assert c.Spawner.default_url == "/tree" and c.Spawner.environment["https_proxy"] == "http://proxy:3128"
    assert c.Spawner.mem_limit == 600 * 2**20
    assert "QUICKJH_STATE" in c.Spawner.env_keep


def test_sharing_only_with_collaboration_and_a_servers_token_shares_that_server_alone(state):
    c = configured(state)
    assert "extra_user_scopes" not in c.JupyterHub and "args" not in c.Spawner
    c = configured(state, collaboration=True)
    assert "shares!user" in c.JupyterHub.extra_user_scopes
    # a visitor's token for alice's server must not let alice share the visitor's servers
    assert "shares!server" in c.Spawner.oauth_client_allowed_scopes
    assert "shares!user" not in c.Spawner.oauth_client_allowed_scopes
    assert "--ServerApp.jpserver_extensions=quickjh.sharewatch=True" in c.Spawner.args


def test_local_mode_starts_servers_through_the_launcher_with_the_process_limit(state):
    c = configured(state)
    assert c.JupyterHub.spawner_class == "quickjh.spawners.local.QuickjhLocalSpawner"
    assert c.QuickjhLocalSpawner.max_processes == 512
    assert "quickjh-adduser" in c.JupyterHub.template_vars["quickjh_add_user"]
    assert "cleanup_servers" not in c.JupyterHub  # local servers are the hub's children: they stop with it


def test_docker_mode_gives_each_user_a_limited_container_of_the_hubs_image(state, monkeypatch):
    monkeypatch.setenv("QUICKJH_IMAGE", "quickjh:abc123")
    c = configured(
        state,
        spawner="docker",
        hub="hub1",
        limits={"memory": 600 * 2**20, "cpus": 0.5, "processes": 256},
        log={"max_size": "1m", "max_files": 2},
    )
    assert c.JupyterHub.spawner_class == "quickjh.spawners.docker.QuickjhDockerSpawner"
    assert c.DockerSpawner.image == "quickjh:abc123" and c.DockerSpawner.pull_policy == "never"
    assert c.DockerSpawner.name_template == "hub1-{raw_username}"
    assert c.DockerSpawner.network_name == "quickjh-users" and c.JupyterHub.hub_connect_ip == "hub1"
    assert c.DockerSpawner.extra_create_kwargs["labels"] == {"quickjh.hub": "hub1", "quickjh.user": "{raw_username}"}
    assert c.DockerSpawner.extra_create_kwargs["entrypoint"][:4] == [
        "/usr/bin/tini",
        "--",
        "/usr/local/sbin/quickjh-launch",
        "--account-from-env",
    ]
    host = c.DockerSpawner.extra_host_config
    assert host["cap_drop"] == ["ALL"] and host["security_opt"] == ["no-new-privileges"]
    assert host["pids_limit"] == 256 and host["memswap_limit"] == 600 * 2**20
    assert host["log_config"]["config"] == {"max-size": "1m", "max-file": "2"}
    assert c.DockerSpawner.cpu_limit == 0.5 and c.Spawner.mem_limit == 600 * 2**20
    assert c.JupyterHub.cleanup_servers is False  # users' containers outlive a hub restart
    assert "docker exec -it hub1 quickjh-adduser" in c.JupyterHub.template_vars["quickjh_add_user"]
    assert "allowed_images" not in c.DockerSpawner
    c = configured(state, spawner="docker", limits={"processes": 0}, docker={"profiles": {"R": "quickjh-profile-r:1"}})
    assert "pids_limit" not in c.DockerSpawner.extra_host_config and "cpu_limit" not in c.DockerSpawner
    assert c.DockerSpawner.allowed_images == {"Default": "quickjh:abc123", "R": "quickjh-profile-r:1"}


def test_swarm_mode_makes_each_user_a_service_started_as_in_docker_mode(state, monkeypatch):
    monkeypatch.setenv("QUICKJH_IMAGE", "quickjh:abc123")
    c = configured(
        state,
        spawner="swarm",
        hub="hub1",
        limits={"memory": 600 * 2**20, "cpus": 0.5, "processes": 256},
        log={"max_size": "1m", "max_files": 2},
        swarm={"nodes": {"ann": "node2"}, "homes_nfs": {}},
    )
    assert c.JupyterHub.spawner_class == "quickjh.spawners.swarm.QuickjhSwarmSpawner"
    spec = c.QuickjhSwarmSpawner
    assert spec.extra_container_spec["command"] == docker_mode.ENTRYPOINT  # the launcher, as in docker mode
    assert spec.extra_container_spec["cap_drop"] == ["ALL"] and spec.processes == 256
    assert spec.extra_endpoint_spec == {"mode": "dnsrr"} and spec.nodes_given == {"ann": "node2"}
    assert spec.extra_task_spec["log_driver"]["Options"] == {"max-size": "1m", "max-file": "2"}
    assert c.DockerSpawner.image == "quickjh:abc123" and c.JupyterHub.cleanup_servers is False


def test_a_new_users_home_goes_where_the_list_says_else_to_the_node_with_fewest_homes():
    nodes = ["hub", "n1", "n2"]
    assert swarm_mode.choose_node("ann", {}, {}, nodes) == "hub"  # a tie: the first by name
    assert swarm_mode.choose_node("cy", {}, {"ann": "hub", "bob": "n1"}, nodes) == "n2"
    assert swarm_mode.choose_node("cy", {"cy": "n1"}, {"ann": "hub", "bob": "n1"}, nodes) == "n1"
    assert swarm_mode.choose_node("bob", {}, {"bob": "gone"}, nodes) == "gone"  # a home stays where it is
    with pytest.raises(ValueError, match="bob's home is on node n1, while the users list says node n2"):
        swarm_mode.choose_node("bob", {"bob": "n2"}, {"bob": "n1"}, nodes)
    with pytest.raises(ValueError, match="nowhere, is not a node"):
        swarm_mode.choose_node("cy", {"cy": "nowhere"}, {}, nodes)


def test_a_home_is_a_volume_of_its_own_or_the_users_folder_of_the_nfs_export():
    mount = swarm_mode.home_mount("hub1", "ann", {})
    assert (mount["Type"], mount["Source"], mount["Target"]) == ("volume", "hub1_home_ann", "/home/ann")
    assert mount["VolumeOptions"]["Labels"] == {"quickjh.hub": "hub1", "quickjh.user": "ann"}
    nfs = swarm_mode.home_mount("hub1", "ann", {"server": "nfs.example.org", "export": "/homes"})
    assert nfs["VolumeOptions"]["DriverConfig"] == {
        "Name": "local",
        "Options": {"type": "nfs", "o": "addr=nfs.example.org,rw,nfsvers=4", "device": ":/homes/ann"},
    }


def test_a_sites_own_lines_apply_after_quickjhs_config_then_its_extra_files(state, tmp_path, monkeypatch):
    """jupyterhub_config.py as JupyterHub loads it: the settings, quickjh_hub_extra_config, then the folder."""
    import json

    from traitlets.config.loader import PyFileConfigLoader

    from quickjh import settings as settings_module

    etc = tmp_path / "etc"
    (etc / "jupyterhub_config.d").mkdir(parents=True)
    extra = "c.JupyterHub.shutdown_on_logout = True\nc.Spawner.default_url = '/tree'\n"
    (etc / "settings.json").write_text(json.dumps(dict(SETTINGS, extra_config=extra)))
    (etc / "jupyterhub_config.d" / "50-site.py").write_text("c.Spawner.default_url = '/lab/tree/README.md'\n")
    monkeypatch.setattr(settings_module, "SETTINGS", etc / "settings.json")
    monkeypatch.setenv("QUICKJH_STATE", str(state))
    files = Path(__file__).resolve().parents[1] / "roles/quickjh/files"
    c = PyFileConfigLoader("jupyterhub_config.py", str(files)).load_config()
    assert c.JupyterHub.shutdown_on_logout is True
    assert c.Spawner.default_url == "/lab/tree/README.md"  # the site's lines win, the folder's last
    assert c.JupyterHub.authenticator_class == "quickjh.auth.QuickjhAuthenticator"


def test_every_spawner_mode_of_the_role_is_a_module_with_configure():
    import yaml

    specs = yaml.safe_load((Path(__file__).resolve().parents[1] / "roles/quickjh/meta/argument_specs.yml").read_text())
    modes = specs["argument_specs"]["main"]["options"]["quickjh_spawner"]["choices"]
    assert {"local": local_mode, "docker": docker_mode, "swarm": swarm_mode}.keys() == set(modes)
    for module in (local_mode, docker_mode, swarm_mode):
        assert callable(module.configure)
    from quickjh import usage

    assert usage.SAMPLERS.keys() == set(modes)  # the usage page samples every mode, each its own way


def test_the_usage_page_is_a_service_on_a_port_only_root_may_take_and_metrics_have_a_read_only_token(state):
    c = configured(state)
    usage = next(s for s in c.JupyterHub.services if s["name"] == "usage")
    assert usage["url"] == "http://127.0.0.1:82" and "oauth_roles" not in usage  # admins only, as every service
    assert "prometheus" not in [s["name"] for s in c.JupyterHub.services]
    c = configured(state, secrets=dict(SETTINGS["secrets"], metrics_token="t" * 40))
    assert {"name": "prometheus", "api_token": "t" * 40} in c.JupyterHub.services
    assert {"name": "metrics", "scopes": ["read:metrics"], "services": ["prometheus"]} in c.JupyterHub.load_roles
    assert c.JupyterHub.template_vars["quickjh_usage_url"] == "/services/usage/"
