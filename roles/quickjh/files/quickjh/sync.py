"""One sync of quickjh_users: check the list again against the container, plan, lock and end who goes, tell the
hub, apply, set up the shared folders, save the accounts; answer the report the role shows."""

from __future__ import annotations

import datetime
import json
import sqlite3
import time
import urllib.error
from urllib.parse import urlsplit

from quickjh.accountlock import kept_from_users
from quickjh.accounts import group_ids, own_groups, read_accounts, read_homes, uid_range
from quickjh.apply import apply, lock, share
from quickjh.ending import admins_were_root, end_user
from quickjh.front import certificates
from quickjh.hubapi import access, end_shares, health, remove_from_hub, set_hub_admin, set_hub_groups, token
from quickjh.hubdb import forget_admin, hub_groups, hub_users
from quickjh.otp import enrolment, keep_secrets
from quickjh.persistence import keep_listed, save
from quickjh.plan import PlanError, plan, plan_groups, plan_hub, report
from quickjh.rules import PRIVILEGED_GROUPS, group_problem, shared_problems, user_problems
from quickjh.settings import state_dir


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


def watchdog_restarts() -> list[str]:
    """What the hub's watch (quickjh-start) noted since the last run: each line once, then kept aside."""
    log = state_dir() / "watchdog.log"
    try:
        lines = log.read_text().splitlines()
    except FileNotFoundError:
        return []
    with (state_dir() / "watchdog.log.reported").open("a") as kept:
        kept.write("".join(f"{line}\n" for line in lines))
    log.unlink()
    return lines


def certificate_line(found: dict, hub: str) -> str:
    """What the report says of a certificate the hub serves: until when, and a warning when it is due or missing,
    or its last renewal failed: which check failed and what to do."""
    problem = found.get("problem")
    why = ""
    if problem:
        at = datetime.datetime.fromtimestamp(problem["at"], datetime.UTC)
        why = f"{problem['check']} ({at:%Y-%m-%d %H:%M} UTC): {problem['todo']}"
    if found.get("missing"):
        return (
            f". WARNING: no certificate for {found['name']} yet: {why or 'the hub keeps asking its ACME CA'} (docker "
            f"logs {hub} says more; browsers refuse {found['name']} until then)"
        )
    line = f". Certificate {found['name']}: until {found['not_after'][:16].replace('T', ' ')} UTC"
    if found["due"]:
        line += f", due and not renewed: WARNING ({found['renewed by']} renews it; docker logs {hub})"
    if why:
        line += f". WARNING: its last renewal failed, the hub serves it meanwhile and tries again: {why}"
    return line


def operations_lines(settings: dict, now: datetime.datetime | None = None) -> str:
    """What the report says of the disk (quickjh-usage's last sample) and of the scheduled backups."""
    from quickjh.schedule import due, read_status

    now = now or datetime.datetime.now(datetime.UTC)
    out = ""
    try:
        usage = json.loads((state_dir() / "usage" / "now.json").read_text())
    except (OSError, ValueError):
        usage = {}
    for name, fs in usage.get("disk", {}).items():
        if fs.get("warn"):
            out += (
                f". WARNING: {name} ({fs['path']}) is {fs['percent']}% full; biggest homes: "
                f"{', '.join(usage.get('biggest_homes', []))}"
            )
    schedule = settings.get("backup", {}).get("schedule", [])
    if schedule:
        status = read_status()
        # two scheduled times without a success: the one before the latest due time
        expected = due(schedule, due(schedule, now) - datetime.timedelta(seconds=1))
        if status.get("error"):
            out += f". WARNING: the last scheduled backup failed: {status['error']}"
        elif status.get("last_success"):
            out += f". Last scheduled backup: {status['last_success']} ({status.get('archive', '')})"
            if status["last_success"] < expected.strftime("%Y-%m-%dT%H:%M:%SZ"):
                out += ": WARNING, older than two scheduled times"
        else:  # just scheduled (the next runs warn once two scheduled times pass without one)
            out += ". No scheduled backup has run yet"
    return out


def answering_hub_users(wait: float = 60) -> dict[str, bool]:
    """The hub's users, once it answers: a hub (re)started just now may still be opening its port."""
    deadline = time.monotonic() + wait
    while True:
        try:
            health()
            return hub_users()
        except (OSError, urllib.error.URLError, sqlite3.Error) as err:
            if time.monotonic() > deadline:
                raise PlanError(f"the hub does not answer ({err}); is the hub running?") from err
            time.sleep(1)


def sync(request: dict, settings: dict) -> dict:
    users, folders = request.get("users", []), request.get("shared", [])
    problems = container_problems(users, folders, request.get("policy", {}))
    if problems:
        raise PlanError("; ".join(problems))
    accounts = read_accounts()
    changes = plan(users, accounts, read_homes(), uid_range())
    with access():
        known = answering_hub_users()
        # The hub's groups: with pam and sharing, the list's (a server shared with a group reaches its members);
        # with a provider, the provider's (each login and refresh sets them), whose admin groups make admins.
        auth = settings.get("auth", {"kind": "pam"})
        mirror = settings.get("collaboration") and auth["kind"] == "pam"
        hub_has = hub_groups() if mirror or auth["kind"] != "pam" else {}
        admins_by_group = frozenset(
            name for group in auth.get("admin_groups", []) for name in hub_has.get(group, ()) if auth["kind"] != "pam"
        )
        hub_todo = plan_hub(users, known, admins_by_group)
        groups = plan_groups(users, hub_has) if mirror else {}
        if request.get("check"):
            return with_certificates(
                report(changes, users, hub_todo, {}, share(folders, check=True), groups=groups), settings
            )
        return run(users, folders, settings, changes, accounts, hub_todo, known, (groups, hub_has))


def with_certificates(out: dict, settings: dict) -> dict:
    """The report, with what it says of the certificates the hub serves."""
    out["certificates"] = certificates(settings)
    out["msg"] += "".join(certificate_line(c, settings["hub"]) for c in out["certificates"])
    return out


def run(users, folders, settings, changes, accounts, hub_todo, known, groups) -> dict:
    """The changes, in an order that leaves no one rights they should lose: who goes is locked and ended before the
    hub is told; a user who loses a group or sudo has everything ended that holds it."""

    def end(name: str, uid: int) -> None:
        end_user(name, uid, settings)

    going = [c.name for c in changes if c.action == "remove" and "removed" in c.what]
    taken = [name for name, action in hub_todo.items() if action in ("remove", "not admin") and known[name]]
    if going or hub_todo or groups[0]:
        token()  # the run's token, before anything changes: a hub that refuses one stops the run here, not half-way
    with kept_from_users() as lock_holders:  # no user's own passwd holds the account files' lock meanwhile
        failed = lock(going)
        for name in going:  # before the hub is told: a server its user stopped (SIGSTOP) would hold the hub's stop
            if name not in failed:
                end(name, accounts[name].uid)
        remove_from_hub([name for name, action in hub_todo.items() if action == "remove" and name not in failed])
        try:
            failed = apply(changes, failed, end)
            set_hub_admin({name: action == "admin" for name, action in hub_todo.items() if action != "remove"})
            for name in taken:  # an admin no more: no share they hold or received stays (removal ends them too)
                if settings.get("collaboration") and hub_todo[name] == "not admin":
                    end_shares(name)
            admins = {u["name"] for u in users if u.get("admin")}
            set_hub_groups(*groups, set(known), admins)
            shared = share(folders, failed=failed)
        finally:
            keep_listed(users)
            save()
    out = report(changes, users, hub_todo, failed, shared, sorted(lock_holders), groups[0])
    if settings.get("auth", {}).get("otp"):  # a one-time code secret for each present user without one
        made = keep_secrets([u["name"] for u in users if u.get("state", "present") == "present"])
        issuer = urlsplit(settings["auth"]["public_url"]).hostname or settings["hub"]
        out["otp"] = {name: enrolment(name, secret, issuer) for name, secret in made.items()}
        out["msg"] += "".join(f". {name}: one-time code secret made" for name in made)
        out["changed"] = out["changed"] or bool(made)
    for line in watchdog_restarts():
        out["msg"] += f". WARNING: {line} (docker logs {settings['hub']} says more)"
    if taken:
        renew = admins_were_root(settings)
        forget_admin(taken, everything=renew)
        if renew:  # the role makes the container anew: a new cookie secret, nothing left in its filesystem
            (state_dir() / "jupyterhub_cookie_secret").unlink(missing_ok=True)
            out.update(renew=True, changed=True)
            out["msg"] += (
                f". The hub is made anew: {', '.join(taken)} had root in its container as an admin (every session "
                "and API token ends; everyone logs in again)"
            )
    out["msg"] += operations_lines(settings)  # last, as what they read can fail no step that takes rights away
    return with_certificates(out, settings)
