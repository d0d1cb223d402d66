"""The rules of quickjh_users and quickjh_shared_folders: pure functions, standard library only.

They run twice: on the controller before anything is touched (the role's filter plugin imports this module), and in
the hub's container before a sync, where the container's own login.defs and groups are known.
"""

from __future__ import annotations

import re

ADMIN_GROUP = "sudo"
UID_RANGE = (1000, 60000)  # login.defs' UID_MIN and UID_MAX when it sets none (Debian's values)
NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a newline in a password would be a second line for chpasswd
MAX_PASSWORD_BYTES = 512  # libxcrypt's CRYPT_MAX_PASSPHRASE_SIZE
CRYPT_HASH = re.compile(r"\$(y|gy|7|2[abxy]|6|5)\$[./A-Za-z0-9$=,]{8,}")
# Names a listed user may not take: the accounts and groups of the image (Debian's base) and the hub's own groups.
# fmt: off
RESERVED = frozenset({
    "_apt", "adm", "audio", "backup", "bin", "cdrom", "daemon", "dialout", "dip", "disk", "fax", "floppy", "games",
    "irc", "jupyterhub", "jupyterhub-users", "kmem", "list", "lp", "mail", "man", "messagebus", "news", "nobody",
    "services",  # with quickjh_subdomain_host, services.HOST is the hub's services' origin
    "nogroup", "operator", "plugdev", "proxy", "root", "sasl", "shadow", "src", "staff", "sudo", "sync", "sys",
    "systemd-network", "systemd-timesync", "tape", "tty", "users", "utmp", "uucp", "video", "voice", "www-data"
})
# Groups that carry power (reading disks, logs or shadow, running Docker, sudo, ...): the list cannot hand them out;
# `admin: true` is the one way to sudo. A listed group must be the team's own (not the image's, not a user's).
PRIVILEGED_GROUPS = RESERVED | {
    "admin", "wheel", "docker", "lxd", "systemd-journal", "_ssh", "crontab", "input", "kvm", "render", "netdev",
    "bluetooth", "sgx"
}
# fmt: on
NAME_RULE = "lower case letters, digits, _ or -, starting with a letter or _, at most 32 characters"


# The yes/no keys of a quickjh_users entry: read as truth values everywhere, so only true or false will do.
FLAGS = ("admin", "locked", "remove_home")


def is_human_uid(uid: int, uid_range: tuple[int, int] = UID_RANGE) -> bool:
    """Whether uid is a person's (UID_MIN..UID_MAX), not a system account's."""
    return uid_range[0] <= uid <= uid_range[1]


def user_problems(
    users: list[dict],
    uid_range: tuple[int, int] = UID_RANGE,
    min_password_length: int = 8,
    allow_weak_passwords: bool = False,
    passwords_required: bool = True,
) -> list[str]:
    """Every rule of the list, one message per broken rule naming the entry (the types are argument_specs' job)."""
    names = [str(u["name"]) for u in users]
    uids = [u["uid"] for u in users if u.get("uid") is not None]
    out = []
    for user in users:
        name, uid = str(user["name"]), user.get("uid")
        password, hash_ = (None if user.get(key) is None else str(user[key]) for key in ("password", "password_hash"))
        who = f"user {name!r}"
        if not NAME.fullmatch(name):
            out.append(f"{who} is not a valid Linux user name ({NAME_RULE})")
        elif name in RESERVED:
            out.append(f"{who} is a name the image uses for itself: pick another")
        if names.count(name) > 1:
            out.append(f"{who} is listed more than once")
        if password is not None and hash_ is not None:
            out.append(f"{who} needs exactly one of password and password_hash")
        elif user.get("state", "present") == "present" and password is None and hash_ is None and passwords_required:
            out.append(f"{who} needs exactly one of password and password_hash (quickjh_auth pam logs in with it)")
        out += [
            f"{who} has a {key} with a control character (a newline, a tab, ...)"
            for key, value in (("password", password), ("password_hash", hash_))
            if value is not None and CONTROL.search(value)
        ]
        if password is not None and not CONTROL.search(password):
            problem = password_problem(name, password, min_password_length, allow_weak_passwords)
            if problem:
                out.append(f"{who} has {problem}")
        if hash_ is not None and not CRYPT_HASH.fullmatch(hash_):
            out.append(
                f"{who} has a password_hash that is not a crypt(3) hash (yescrypt $y$, bcrypt $2b$, "
                "SHA-512 $6$, SHA-256 $5$, scrypt $7$): make one with mkpasswd"
            )
        if uid is not None and not is_human_uid(uid, uid_range):
            out.append(
                f"{who} has uid {uid}, outside {uid_range[0]}-{uid_range[1]} (the system accounts are below "
                f"{uid_range[0]})"
            )
        elif uid is not None and uids.count(uid) > 1:
            out.append(f"{who} has uid {uid}, which another listed user has too")
        out += [
            f"{who} has {key}: {user[key]!r}, which is not true or false (a quoted 'false' would count as true): "
            f"write {key}: true or {key}: false, without quotes"
            for key in FLAGS
            if user.get(key) is not None and not isinstance(user[key], bool)
        ]
        problems = (group_problem(group, names) for group in user.get("groups") or [])
        out += [f"{who} {problem}" for problem in problems if problem]
    return out


def password_problem(name: str, password: str, min_length: int = 8, allow_weak: bool = False) -> str | None:
    """What is wrong with this password for this user, if anything ("a password ..."): the list's rule and the hub's
    password page's."""
    if CONTROL.search(password):
        return "a password with a control character (a newline, a tab, ...)"
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return f"a password longer than {MAX_PASSWORD_BYTES} bytes (libcrypt hashes no longer one)"
    if allow_weak:
        return None
    if password == name:
        return "a password equal to the user name"
    if len(password) < min_length:
        return f"a password shorter than {min_length} characters (quickjh_min_password_length)"
    return None


def group_problem(group: object, names: list[str] | set[str]) -> str | None:
    """What is wrong with handing out this group (to a listed user, or to a shared folder), if anything; names:
    the users whose own groups these are (the listed ones, or the container's human accounts)."""
    group = str(group)
    if not NAME.fullmatch(group):
        return f"has an invalid group name {group!r}"
    if group in PRIVILEGED_GROUPS:
        return (
            f"has group {group!r}, a group of the image that carries rights: list only the team's own groups "
            "(admin: true is the way to sudo)"
        )
    if group in names:
        return f"has group {group!r}, the own group of a user: it would open that user's files"
    return None


def shared_problems(folders: list[dict], users: list[dict]) -> list[str]:
    """The rules of quickjh_shared_folders: a folder name (it becomes ~/notebook/NAME), once each; a team's group."""
    names = [str(f["name"]) for f in folders]
    out = []
    for folder in folders:
        name, who = str(folder["name"]), f"shared folder {str(folder['name'])!r}"
        if not NAME.fullmatch(name):
            out.append(f"{who} is not a valid folder name ({NAME_RULE})")
        if names.count(name) > 1:
            out.append(f"{who} is listed more than once")
        problem = group_problem(folder["group"], [str(u["name"]) for u in users])
        if problem:
            out.append(f"{who} {problem}")
    return out
