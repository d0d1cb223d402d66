"""quickjh_collaboration in docker mode: a shared server is its owner's container, so the visitor's code runs as the
owner with the owner's home alone; an admin taken away keeps no share they received (test_sharing.py of the team
scenario has the rest, in local mode)."""

from __future__ import annotations

from hubfixtures import converge_users


def test_a_visitors_code_runs_in_the_owners_container_as_the_owner(login):
    owner, visitor = login("user1"), login("user2")
    own_host = visitor.run("import socket; print(socket.gethostname())").strip()
    assert owner.hub_api("POST", "/shares/user1/", json={"user": "user2"}).status_code == 200
    try:
        assert visitor.open_server("user1").ok
        printed = visitor.run(
            "import getpass, os, socket; print(getpass.getuser(), socket.gethostname(), os.listdir('/home'))"
        )
        name, host, homes = printed.split(maxsplit=2)
        assert (name, homes.strip()) == ("user1", "['user1']") and host != own_host
    finally:
        owner.hub_api("DELETE", "/shares/user1/")


def test_an_admin_taken_away_keeps_no_share_they_received(base_users, login):
    owner = login("user1")
    assert owner.hub_api("POST", "/shares/user1/", json={"user": "admin"}).status_code == 200
    assert login("admin", start=False).open_server("user1").ok
    try:
        said = " ".join(converge_users([dict(u, admin=False) for u in base_users]).stdout.split())
        assert "admin: not admin, hub not admin" in said
        assert login("admin", start=False).open_server("user1").status_code == 403
        assert owner.hub_api("GET", "/shares/user1/").json()["items"] == []
    finally:
        converge_users(base_users)
        owner.hub_api("DELETE", "/shares/user1/")
