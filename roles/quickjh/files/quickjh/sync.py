"""One sync of quickjh_users: check the list again against the container, plan, lock and end who goes, tell the
hub, apply, set up the shared folders, save the accounts; answer the report the role shows."""

from __future__ import annotations

import urllib.error

from quickjh.accounts import group_ids, own_groups, read_accounts, read_homes, uid_range
from quickjh.apply import apply, lock, share
from quickjh.ending import end_user
from quickjh.hubapi import hub_users, remove_from_hub, set_hub_admin
from quickjh.persistence import save
from quickjh.plan import PlanError, plan, plan_hub, report
from quickjh.rules import PRIVILEGED_GROUPS, group_problem, shared_problems, user_problems


def container_problems(users: list[dict], folders: list[dict], policy: dict) -> list[str]:
    """The rules again, with what only the container knows: its UID range, its system groups, its users' own
    groups (the controller sees only the list)."""
    low = uid_range()[0]
    problems = user_problems(users, uid_range(), **policy) + shared_problems(folders, users)
    system_groups = {name for name, gid in group_ids().items() if gid < low}
    handed_out = [(f"user {u['name']!r}", group) for u in users for group in u.get("groups") or []] + [
        (f"shared folder {f['name']!r}", f["group"]) for f in folders
    ]
    problems += [
        f"{who} has group {group!r}, a group of the image (packages add some): list only the team's own groups"
        for who, group in handed_out
        if group in system_groups and group not in PRIVILEGED_GROUPS
    ]
    own = own_groups(read_accounts(), low)
    return problems + [
        f"shared folder {f['name']!r} {problem}" for f in folders if (problem := group_problem(f["group"], own))
    ]


def sync(request: dict, settings: dict) -> dict:
    users, folders = request.get("users", []), request.get("shared", [])
    problems = container_problems(users, folders, request.get("policy", {}))
    if problems:
        raise PlanError("; ".join(problems))
    accounts = read_accounts()
    changes = plan(users, accounts, read_homes(), uid_range())
    try:
        hub_todo = plan_hub(users, hub_users())
    except (OSError, urllib.error.URLError) as err:
        raise PlanError(f"the hub's API does not answer ({err}); is the hub running?") from err
    if request.get("check"):
        return report(changes, users, hub_todo, {}, share(folders, check=True))

    def end(name: str, uid: int) -> None:
        end_user(name, uid, settings)

    going = [c.name for c in changes if c.action == "remove" and "removed" in c.what]
    failed = lock(going)
    for name in going:  # before the hub is told: a server its user stopped (SIGSTOP) would hold the hub's stop
        if name not in failed:
            end(name, accounts[name].uid)
    remove_from_hub([name for name, action in hub_todo.items() if action == "remove" and name not in failed])
    try:
        failed = apply(changes, failed, end)
        set_hub_admin({name: action == "admin" for name, action in hub_todo.items() if action != "remove"})
        shared = share(folders, failed=failed)
    finally:
        save()
    return report(changes, users, hub_todo, failed, shared)
