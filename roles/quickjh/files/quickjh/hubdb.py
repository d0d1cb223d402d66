"""The hub's database, as the accounts program (root, inside the hub's container) touches it directly: who the hub
knows and its groups, read with sqlite3 alone (read-only: a sync with nothing to tell the hub needs no token, and no
ORM, whose imports take a second); through JupyterHub's own ORM, the quickjh-sync service's token, made for one run
(valid ten minutes; the next run removes it), so no standing admin token exists to be copied, and what an admin who
is taken away leaves behind.

Rows are only ever added after the newest: the hub's own ORM session keeps the objects it has loaded (JupyterHub
turns off their expiry), and SQLite hands the id of a deleted newest row to the next one; a token inserted under
an id the hub still holds an older object for would be refused (403)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from quickjh.settings import state_dir

SERVICE = "quickjh-sync"


def database() -> Path:
    """The hub's live database on the state volume (the hub's config names the same file in its db_url)."""
    return state_dir() / "jupyterhub.sqlite"


def read(*queries: str, db: Path | None = None) -> list[list[tuple]]:
    """The rows of each query, read from the hub's database (db: another one) opened read-only (the hub writes it
    meanwhile), in one transaction: one snapshot."""
    db = db or database()
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as connection:
        connection.execute("BEGIN")
        return [connection.execute(query).fetchall() for query in queries]


def hub_users() -> dict[str, bool]:
    """Every user the hub knows, with its admin flag."""
    (rows,) = read("SELECT name, admin FROM users")
    return {name: bool(admin) for name, admin in rows}


def hub_groups() -> dict[str, set[str]]:
    """Every group the hub knows, with its members."""
    names, members = read(
        "SELECT name FROM groups",
        "SELECT g.name, u.name FROM user_group_map m "
        "JOIN groups g ON g.id = m.group_id JOIN users u ON u.id = m.user_id",
    )
    groups: dict[str, set[str]] = {name: set() for (name,) in names}
    for group, user in members:
        groups.setdefault(group, set()).add(user)
    return groups


def session():
    from jupyterhub import orm  # the hub's venv has it; the controller, which imports the rules, need not

    return orm, orm.new_session_factory(f"sqlite:///{database()}")()


@contextlib.contextmanager
def run_token() -> Iterator[str]:
    """A token of quickjh-sync (the admin role) for this run, valid ten minutes; then every older token of the
    service goes (the last run's, or a copy someone kept)."""
    orm, db = session()
    try:
        service = orm.Service.find(db, SERVICE)
        if service is None:
            raise OSError(f"the hub has no service {SERVICE} yet: is it running?")
        token = service.new_api_token(note=f"{SERVICE}: one run", expires_in=600)
        new = orm.APIToken.find(db, token)
        for old in [t for t in service.api_tokens if t.id != new.id]:
            db.delete(old)
        db.commit()
        yield token
    finally:
        db.close()


def forget_admin(names: list[str], everything: bool) -> None:
    """What admins taken away leave in the hub: the tokens they made for others before quickjh refused that (JupyterHub
    notes "by user NAME"); with everything (local mode, where they were root in the container and could have read or
    written the database), every API token and session of everyone."""
    orm, db = session()
    try:
        tokens = [t for t in db.query(orm.APIToken) if not (t.service and t.service.name == SERVICE)]
        if not everything:
            tokens = [t for t in tokens if any((t.note or "").endswith(f" by user {name}") for name in names)]
        for token in tokens:
            db.delete(token)
        db.commit()
    finally:
        db.close()


def drop_shares(db: Path) -> int:
    """Every share and share code, before the hub starts (quickjh_collaboration off: no share outlives it); how many
    went."""
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(db)) as connection, connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return sum(connection.execute(f"DELETE FROM {t}").rowcount for t in ("shares", "share_codes") if t in tables)  # noqa: S608 (the two names above)
