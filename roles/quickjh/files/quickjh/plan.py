"""What to do to bring the accounts and the hub to quickjh_users: decisions only, no side effects (unit-tested
against made-up accounts and homes), and the report line the role shows of what was done."""

from __future__ import annotations

from dataclasses import dataclass, field

from quickjh.accounts import HOME_ROOT, NO_PASSWORD, Account, Home, own_groups
from quickjh.passwords import crypt, password_differs
from quickjh.rules import ADMIN_GROUP, group_problem


class PlanError(Exception):
    """The list asks for something that would hurt: nothing is changed."""


@dataclass
class Change:
    name: str
    action: str  # create | update | remove
    what: list[str]
    uid: int | None = None
    shell: str = "/bin/bash"
    groups: set[str] = field(default_factory=set)
    password: str | None = None
    password_hash: str | None = None
    fix_home: bool = False
    archive_home: bool = False


def free_uid(taken: set[int], uid_min: int, uid_max: int) -> int:
    for uid in range(uid_min, uid_max + 1):
        if uid not in taken:
            return uid
    raise PlanError(f"no free UID left between {uid_min} and {uid_max}")


def choose_uid(user: dict, accounts: dict[str, Account], homes: dict[str, Home], uid_min: int, uid_max: int) -> int:
    """A UID nobody else's files or account hold: the owner of an existing home keeps it."""
    name = user["name"]
    owners = {a.uid: a.name for a in accounts.values()}
    for home_name, home in homes.items():
        owners.setdefault(home.uid, home_name)
    wanted = user.get("uid")
    if wanted is None and name in homes and homes[name].uid >= uid_min:
        wanted = homes[name].uid
        if owners.get(wanted, name) != name and wanted in {a.uid for a in accounts.values()}:
            raise PlanError(
                f"user '{name}': /home/{name} belongs to UID {wanted}, which is user "
                f"'{owners[wanted]}'; move that home aside or give '{name}' a uid"
            )
    if wanted is not None:
        if owners.get(wanted, name) != name:
            raise PlanError(f"user '{name}': uid {wanted} is already used by '{owners[wanted]}'")
        return wanted
    return free_uid(set(owners), uid_min, uid_max)


def plan(
    users: list[dict],
    accounts: dict[str, Account],
    homes: dict[str, Home],
    uid_range_: tuple[int, int] = (1000, 60000),
    verify=crypt,
) -> list[Change]:
    """What to do to bring the accounts to the list; no side effects."""
    changes: list[Change] = []
    accounts = dict(accounts)
    for user in users:
        name = user["name"]
        account = accounts.get(name)
        if user.get("state", "present") == "absent":
            archive = bool(user.get("remove_home")) and name in homes
            if account or archive:
                what = (["removed"] if account else []) + (["home archived"] if archive else [])
                changes.append(Change(name, "remove", what, archive_home=archive))
            continue
        groups = set(user.get("groups") or []) | ({ADMIN_GROUP} if user.get("admin") else set())
        own = own_groups(accounts, uid_range_[0])
        for problem in filter(None, (group_problem(group, own) for group in user.get("groups") or [])):
            raise PlanError(f"user '{name}' {problem}")
        shell = user.get("shell") or "/bin/bash"
        change = Change(name, "update", [], shell=shell, groups=groups)
        if account is None:
            change.action, change.what = "create", ["created"]
            change.uid = choose_uid(user, accounts, homes, *uid_range_)
            change.password, change.password_hash = user.get("password"), user.get("password_hash")
            accounts[name] = Account(name, change.uid, change.uid, f"{HOME_ROOT}/{name}", shell)
            if user.get("locked"):
                change.what.append("locked")
            changes.append(change)
            continue
        if account.uid < uid_range_[0]:
            raise PlanError(f"user '{name}' is a system account of the image (uid {account.uid}): pick another name")
        if user.get("uid") is not None and user["uid"] != account.uid:
            raise PlanError(
                f"user '{name}' has uid {account.uid}; the list asks for {user['uid']}: "
                "changing a UID would orphan the user's files, so quickjh does not do it"
            )
        if (ADMIN_GROUP in account.groups) != bool(user.get("admin")):
            change.what.append("admin" if user.get("admin") else "not admin")
        if account.groups - {ADMIN_GROUP} != groups - {ADMIN_GROUP}:
            change.what.append("groups")
        if account.expired != bool(user.get("locked")):
            change.what.append("locked" if user.get("locked") else "unlocked")
        if account.shell != shell:
            change.what.append("shell")
        never_set = account.hash in NO_PASSWORD  # made, then the run was killed before its passwords were set
        if (user.get("update_password", "on_create") == "always" or never_set) and password_differs(
            user, account, verify
        ):
            change.what.append("password")
            change.password, change.password_hash = user.get("password"), user.get("password_hash")
        home = homes.get(name)
        if home is None or home.uid != account.uid or home.mode != 0o700 or not home.notebook:
            change.what.append("home")
            change.fix_home = True
        if change.what:
            changes.append(change)
    return changes


def plan_hub(users: list[dict], known: dict[str, bool], group_admins: frozenset[str] = frozenset()) -> dict[str, str]:
    """What the hub must be told: 'remove' for absent users it knows, 'admin'/'not admin' where its flag is off
    (group_admins: admins by quickjh_admin_groups, as the provider said at their last login or refresh)."""
    todo = {}
    for user in users:
        name = user["name"]
        if name not in known:
            continue
        if user.get("state", "present") == "absent":
            todo[name] = "remove"
        elif known[name] != (bool(user.get("admin")) or name in group_admins):
            todo[name] = "not admin" if known[name] else "admin"
    return todo


def plan_groups(users: list[dict], known: dict[str, set[str]]) -> dict[str, set[str] | None]:
    """The hub's groups as the list gives them (a server shared with a group reaches its members): each group of the
    list with its present members where the hub's differ; a group the list no longer has goes (None)."""
    want: dict[str, set[str]] = {}
    for user in users:
        if user.get("state", "present") == "present":
            for group in user.get("groups") or []:
                want.setdefault(group, set()).add(user["name"])
    todo: dict[str, set[str] | None] = {name: None for name in known if name not in want}
    todo.update({name: members for name, members in want.items() if known.get(name) != members})
    return todo


HUB_LABELS = {"remove": "removed from the hub", "admin": "hub admin", "not admin": "hub not admin (server stopped)"}


def report(
    changes: list[Change],
    users: list[dict],
    hub_todo: dict[str, str] | None = None,
    failed: dict[str, str] | None = None,
    shared: list[str] | None = None,
    lock_holders: list[str] | None = None,
    groups: dict[str, set[str] | None] | None = None,
) -> dict:
    """Per user what changed, in the accounts and then in the hub; a user the hub alone changed counts as updated;
    then the shared folders set up, and users whose own passwd held the account files' lock (it was ended). Users
    whose change failed are named last, with what an admin must fix."""
    by_action = {"create": "created", "update": "updated", "remove": "removed"}
    out: dict = {"created": [], "updated": [], "removed": [], "unchanged": [], "users": {}}
    for c in changes:
        out[by_action[c.action]].append(c.name)
        out["users"][c.name] = c.what
    for name, action in (hub_todo or {}).items():
        if name not in out["users"]:
            out["updated"].append(name)
        out["users"].setdefault(name, []).append(HUB_LABELS[action])
    out["unchanged"] = [u["name"] for u in users if u["name"] not in out["users"]]
    out["changed"] = bool(out["users"] or shared or groups)
    out["msg"] = (
        "".join(f"{name}: {', '.join(what)}; " for name, what in out["users"].items())
        + "".join(f"shared folder {name}: set up; " for name in shared or [])
        + "".join(
            f"hub group {name}: {'removed' if members is None else ', '.join(sorted(members)) or 'no one'}; "
            for name, members in sorted((groups or {}).items())
        )
        + "".join(f"{name}: their own passwd held the account files' lock, ended; " for name in lock_holders or [])
        + f"unchanged: {len(out['unchanged'])}"
    )
    if failed:
        out["failed"] = True
        out["msg"] += ". NOT DONE, an admin must fix: " + "; ".join(f"{name}: {why}" for name, why in failed.items())
    return out


# --- The hub's own view: admin flags and removed users (JupyterHub does not revoke admin by itself) ----------------
