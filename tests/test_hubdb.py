"""The hub's database as the accounts program touches it (quickjh.hubdb), on a database JupyterHub's own ORM made:
the sync's token lives for one run only, and an admin taken away leaves no token behind."""

from __future__ import annotations

import pytest
from jupyterhub import orm

from quickjh import hubdb


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("QUICKJH_STATE", str(tmp_path))
    session = orm.new_session_factory(f"sqlite:///{tmp_path}/jupyterhub.sqlite")()
    session.add(orm.OAuthClient(identifier="jupyterhub"))  # the hub makes it at its first start
    session.add(orm.Service(name="quickjh-sync"))
    for name in ("adam", "alice"):
        session.add(orm.User(name=name))
    session.commit()
    yield session
    session.close()


def tokens(db, owner) -> list[str]:
    db.expire_all()
    return sorted(t.note for t in db.query(orm.APIToken) if (t.user or t.service).name == owner)


def test_the_syncs_token_is_made_for_one_run_and_every_older_one_goes_never_reusing_an_id(db):
    kept_copy = orm.Service.find(db, "quickjh-sync").new_api_token(note="a copy someone kept")
    with hubdb.run_token() as first:
        found = orm.APIToken.find(db, first)
        assert found is not None and found.service.name == "quickjh-sync"
        assert 500 < (found.expires_at - found.created).total_seconds() <= 600  # ten minutes at most
        assert orm.APIToken.find(db, kept_copy) is None
        first_id = found.id
    with hubdb.run_token() as second:
        db.expire_all()
        assert orm.APIToken.find(db, first) is None and orm.APIToken.find(db, second).id > first_id
    assert tokens(db, "quickjh-sync") == ["quickjh-sync: one run"]


def test_who_the_hub_knows_and_its_groups_are_read_without_a_token(db):
    orm.User.find(db, "adam").admin = True
    team = orm.Group(name="team")
    team.users = [orm.User.find(db, "alice"), orm.User.find(db, "adam")]
    db.add_all([team, orm.Group(name="empty")])
    db.commit()
    assert hubdb.hub_users() == {"adam": True, "alice": False}
    assert hubdb.hub_groups() == {"team": {"adam", "alice"}, "empty": set()}
    assert tokens(db, "quickjh-sync") == []


def test_an_admin_taken_away_leaves_no_token_made_for_others(db):
    alice = orm.User.find(db, "alice")
    alice.new_api_token(note="Requested via api by user adam")  # an admin made it for alice, before quickjh refused
    alice.new_api_token(note="Requested via api")  # alice's own
    hubdb.forget_admin(["adam"], everything=False)
    assert tokens(db, "alice") == ["Requested via api"]
    hubdb.forget_admin(["adam"], everything=True)  # local mode: adam was root in the container
    assert tokens(db, "alice") == []


def test_with_collaboration_off_no_share_outlives_it(tmp_path):
    import sqlite3

    db = tmp_path / "jupyterhub.sqlite"
    assert hubdb.drop_shares(db) == 0  # a first start: no database yet
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE shares (id INTEGER PRIMARY KEY)")
        connection.execute("CREATE TABLE share_codes (id INTEGER PRIMARY KEY)")
        connection.executemany("INSERT INTO shares VALUES (?)", [(1,), (2,)])
        connection.execute("INSERT INTO share_codes VALUES (1)")
    assert hubdb.drop_shares(db) == 3
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM shares").fetchone() == (0,)
