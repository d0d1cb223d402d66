"""The hub's database, as the accounts program (root, inside the hub's container) touches it directly, through
JupyterHub's own ORM: the quickjh-sync service's token, made for one run and gone after it (so no standing admin
token exists to be copied), and what an admin who is taken away leaves behind."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from quickjh.settings import state_dir

SERVICE = "quickjh-sync"


def session():
    from jupyterhub import orm  # the hub's venv has it; the controller, which imports the rules, need not

    return orm, orm.new_session_factory(f"sqlite:///{state_dir()}/jupyterhub.sqlite")()


@contextlib.contextmanager
def run_token() -> Iterator[str]:
    """A token of quickjh-sync (the admin role) for this run: every other token of the service goes first, this one
    goes after (and expires within the hour if the run is killed)."""
    orm, db = session()
    try:
        service = orm.Service.find(db, SERVICE)
        if service is None:
            raise OSError(f"the hub has no service {SERVICE} yet: is it running?")
        for token in list(service.api_tokens):
            db.delete(token)
        db.commit()
        token = service.new_api_token(note=f"{SERVICE}: one run", expires_in=3600)
        try:
            yield token
        finally:
            found = orm.APIToken.find(db, token)
            if found is not None:
                db.delete(found)
                db.commit()
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
