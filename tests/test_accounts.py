"""The accounts program: its decisions (what to create, update, remove; which UID), the login rule, hashes, shared
folders, and the saved accounts' round trip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quickjh import accounts, apply
from quickjh.accounts import Account, Home, login_problem, read_accounts, read_table
from quickjh.passwords import crypt, hash_all
from quickjh.persistence import restore, snapshot, write_table
from quickjh.plan import Change, PlanError, plan, plan_groups, plan_hub, report


def never(password: str, setting: str) -> str:
    raise AssertionError("crypt must not be called")


def fake_crypt(password: str, setting: str) -> str:
    """A stand-in crypt(3): the "hash" of a password is $x$ and the password."""
    return "$x$" + password


def account(name, uid, groups=(), hash_="pw", shell="/bin/bash"):
    return Account(name, uid, uid, f"/home/{name}", shell, hash_, set(groups))


def home(uid, mode=0o700, notebook=True):
    return Home(uid, mode, notebook)


def test_new_user_is_created_with_the_first_free_uid():
    accounts = {"admin": account("admin", 1000)}
    changes = plan([{"name": "user1", "password": "pw"}], accounts, {"admin": home(1000)}, verify=never)
    assert [(c.name, c.action, c.uid, c.groups) for c in changes] == [("user1", "create", 1001, set())]


def test_existing_home_gives_its_uid_back():
    changes = plan([{"name": "user1", "password": "pw"}], {}, {"user1": home(1007)}, verify=never)
    assert changes[0].uid == 1007


def test_uid_of_a_home_left_by_a_removed_user_is_not_reused():
    # ghost's account is gone, its home (UID 1000) is kept: a new user must not get its files.
    changes = plan([{"name": "new", "password": "pw"}], {}, {"ghost": home(1000)}, verify=never)
    assert changes[0].uid == 1001


def test_explicit_uid_in_use_is_an_error():
    with pytest.raises(PlanError, match="uid 1000 is already used by 'admin'"):
        plan([{"name": "x", "password": "pw", "uid": 1000}], {"admin": account("admin", 1000)}, {})


def test_unchanged_user_needs_nothing_and_no_crypt_when_on_create():
    accounts = {"user1": account("user1", 1001)}
    users = [{"name": "user1", "password": "new-password"}]
    assert plan(users, accounts, {"user1": home(1001)}, verify=never) == []


@pytest.mark.parametrize("never_set", ["!", "", "*"])
def test_an_account_whose_password_was_never_set_gets_it_even_on_create(never_set):
    # useradd made it, then the run was killed before chpasswd: the next run must finish the account.
    accounts = {"user1": account("user1", 1001, hash_=never_set)}
    changes = plan([{"name": "user1", "password": "pw"}], accounts, {"user1": home(1001)}, verify=never)
    assert [(c.what, c.password) for c in changes] == [(["password"], "pw")]


def test_a_locked_account_keeps_its_password_on_create():
    accounts = {"user1": account("user1", 1001, hash_="!$x$old")}
    assert plan([{"name": "user1", "password": "pw"}], accounts, {"user1": home(1001)}, verify=never) == []


def test_password_policy_always_compares_with_crypt():
    accounts = {"user1": account("user1", 1001, hash_="$x$old")}
    users = [{"name": "user1", "password": "new", "update_password": "always"}]
    assert plan(users, accounts, {"user1": home(1001)}, verify=fake_crypt)[0].what == ["password"]
    users[0]["password"] = "old"
    assert plan(users, accounts, {"user1": home(1001)}, verify=fake_crypt) == []


def test_promote_and_demote_change_sudo_membership():
    accounts = {"user1": account("user1", 1001)}
    promote = plan([{"name": "user1", "password": "pw", "admin": True}], accounts, {"user1": home(1001)})
    assert promote[0].what == ["admin"] and promote[0].groups == {"sudo"}
    accounts["user1"].groups.add("sudo")
    demote = plan([{"name": "user1", "password": "pw"}], accounts, {"user1": home(1001)})
    assert demote[0].what == ["not admin"] and demote[0].groups == set()


def test_home_with_wrong_mode_or_no_notebook_is_fixed():
    accounts = {"user1": account("user1", 1001)}
    for bad in (home(1001, mode=0o755), home(1001, notebook=False), home(0)):
        assert plan([{"name": "user1", "password": "pw"}], accounts, {"user1": bad})[0].what == ["home"]


def test_absent_user_is_removed_and_home_archived_only_when_asked():
    accounts = {"gone": account("gone", 1002)}
    keep = plan([{"name": "gone", "state": "absent"}], accounts, {"gone": home(1002)})
    assert (keep[0].action, keep[0].what, keep[0].archive_home) == ("remove", ["removed"], False)
    drop = plan([{"name": "gone", "state": "absent", "remove_home": True}], accounts, {"gone": home(1002)})
    assert drop[0].what == ["removed", "home archived"] and drop[0].archive_home


def test_report_lists_each_user_once():
    changes = [Change("a", "create", ["created"]), Change("b", "update", ["password"])]
    out = report(changes, [{"name": "a"}, {"name": "b"}, {"name": "c"}])
    assert out == {
        "changed": True,
        "created": ["a"],
        "updated": ["b"],
        "removed": [],
        "unchanged": ["c"],
        "users": {"a": ["created"], "b": ["password"]},
        "msg": "a: created; b: password; unchanged: 1",
    }


def test_report_adds_what_the_hub_was_told():
    changes = [Change("a", "update", ["admin"])]
    out = report(changes, [{"name": "a"}, {"name": "b"}, {"name": "c"}], {"a": "admin", "b": "remove"})
    assert out["users"] == {"a": ["admin", "hub admin"], "b": ["removed from the hub"]}
    assert (out["updated"], out["unchanged"], out["changed"]) == (["a", "b"], ["c"], True)
    assert out["msg"] == "a: admin, hub admin; b: removed from the hub; unchanged: 1"


def test_report_line_when_nothing_changed_has_no_leading_separator():
    assert report([], [{"name": "a"}, {"name": "b"}])["msg"] == "unchanged: 2"


def write_etc(etc: Path, passwd: str, shadow: str, group: str, gshadow: str) -> None:
    for name, text in (("passwd", passwd), ("shadow", shadow), ("group", group), ("gshadow", gshadow)):
        (etc / name).write_text(text)


def test_saved_accounts_come_back_in_a_fresh_etc(tmp_path, monkeypatch):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    image_passwd = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n"
    image_group = "root:x:0:\nsudo:x:27:\n"
    write_etc(
        old,
        image_passwd + "ann:x:1000:1000::/home/ann:/bin/bash\n",
        "root:*::::::\nann:$y$hash:1::::::\n",
        "root:x:0:\nsudo:x:27:ann\njupyterhub-users:x:999:ann\nann:x:1000:\n",
        "root:*::\nsudo:*::ann\njupyterhub-users:!::ann\nann:!::\n",
    )
    # The older image had a group jupyterhub-users (its login rule); this one has not: that membership is dropped.
    write_etc(new, image_passwd, "root:*::::::\n", image_group, "root:*::\nsudo:*::\n")
    saved = snapshot(old)
    assert saved["passwd"] == ["ann:x:1000:1000::/home/ann:/bin/bash"]
    assert saved["members"] == {"sudo": ["ann"], "jupyterhub-users": ["ann"]}
    monkeypatch.setattr(accounts, "ETC", new)
    monkeypatch.setenv("QUICKJH_STATE", str(tmp_path))
    (tmp_path / "accounts.json").write_text(__import__("json").dumps(saved))
    (tmp_path / "admins.json").write_text('["ann"]')  # the last sync's listed admins
    assert restore() == (1, [])
    back = read_accounts(new)
    assert back["ann"].uid == 1000 and back["ann"].hash == "$y$hash"
    assert back["ann"].groups == {"sudo"}
    assert snapshot(new) == dict(saved, members={"sudo": ["ann"]})


def test_a_restore_makes_sudoers_only_of_the_admins_quickjh_users_names(tmp_path, monkeypatch):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    write_etc(
        old,
        "ann:x:1000:1000::/home/ann:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/bash\n",
        "ann:$y$a:1::::::\nbob:$y$b:1::::::\n",
        "sudo:x:27:ann,bob\nann:x:1000:\nbob:x:1001:\n",
        "sudo:*::ann,bob\nann:!::\nbob:!::\n",
    )
    write_etc(
        new, "root:x:0:0:root:/root:/bin/bash\n", "root:*::::::\n", "root:x:0:\nsudo:x:27:\n", "root:*::\nsudo:*::\n"
    )
    monkeypatch.setattr(accounts, "ETC", new)
    monkeypatch.setenv("QUICKJH_STATE", str(tmp_path))
    (tmp_path / "accounts.json").write_text(__import__("json").dumps(snapshot(old)))
    (tmp_path / "admins.json").write_text('["ann"]')  # bob was made a sudoer in a terminal, or was demoted
    assert restore() == (2, ["bob"])
    back = read_accounts(new)
    assert back["ann"].groups == {"sudo"} and back["bob"].groups == set()
    (tmp_path / "admins.json").unlink()  # saved by a version before admins.json: nobody, until the next sync
    write_etc(
        new, "root:x:0:0:root:/root:/bin/bash\n", "root:*::::::\n", "root:x:0:\nsudo:x:27:\n", "root:*::\nsudo:*::\n"
    )
    assert restore() == (2, ["ann", "bob"])


def test_system_account_name_is_refused():
    with pytest.raises(PlanError, match="system account"):
        plan([{"name": "games", "password": "pw"}], {"games": account("games", 5)}, {})


def test_hub_is_told_about_admin_flags_and_removals_of_users_it_knows():
    users = [
        {"name": "a", "admin": True},
        {"name": "b"},
        {"name": "c", "state": "absent"},
        {"name": "d", "admin": True},
        {"name": "never-logged-in", "state": "absent"},
    ]
    known = {"a": False, "b": True, "c": False, "d": True}
    assert plan_hub(users, known) == {"a": "admin", "b": "not admin", "c": "remove"}


def test_the_hubs_groups_follow_the_list_and_a_group_it_no_longer_has_goes():
    users = [
        {"name": "a", "groups": ["analysts", "data"]},
        {"name": "b", "groups": ["analysts"]},
        {"name": "c", "groups": ["analysts"], "state": "absent"},
    ]
    known = {"analysts": {"a", "c"}, "data": {"a"}, "old": {"b"}}
    todo = plan_groups(users, known)
    assert todo == {"analysts": {"a", "b"}, "old": None}
    assert plan_groups(users, {"analysts": {"a", "b"}, "data": {"a"}}) == {}
    said = report([], users, groups=todo)
    assert said["changed"] and "hub group analysts: a, b; hub group old: removed; " in said["msg"]


def test_a_saved_row_that_is_not_a_human_account_never_comes_back(tmp_path, monkeypatch):
    image_passwd = "root:x:0:0:root:/root:/bin/bash\n"
    write_etc(tmp_path, image_passwd, "root:*::::::\n", "root:x:0:\nsudo:x:27:\n", "root:*::\nsudo:*::\n")
    saved = {
        "passwd": [
            "evil:x:0:0::/root:/bin/bash",
            "root:x:1000:1000::/home/root:/bin/bash",
            "ann:x:1001:1001::/home/ann:/bin/bash",
            "gid0:x:1002:0::/home/gid0:/bin/bash",
        ],
        "shadow": ["evil:$6$x:1::::::", "root:$6$known:1::::::", "ann:$y$hash:1::::::"],
        "group": ["ann:x:1001:", "wheel2:x:0:ann"],
        "gshadow": ["ann:!::"],
        "members": {"sudo": ["ann", "evil"]},
    }
    monkeypatch.setattr(accounts, "ETC", tmp_path)
    monkeypatch.setenv("QUICKJH_STATE", str(tmp_path))
    (tmp_path / "accounts.json").write_text(__import__("json").dumps(saved))
    (tmp_path / "admins.json").write_text('["ann", "evil"]')
    assert restore() == (1, [])
    back = read_accounts(tmp_path)
    assert sorted(back) == ["ann", "root"] and back["root"].uid == 0 and back["root"].hash == "*"
    assert back["ann"].groups == {"sudo"}
    assert "wheel2" not in (tmp_path / "group").read_text()


def test_a_group_named_after_an_account_outside_the_list_is_refused():
    accounts = {"termuser": account("termuser", 1005)}
    with pytest.raises(PlanError, match="user 'peek' has group 'termuser', the own group of a user"):
        plan([{"name": "peek", "password": "pw", "groups": ["termuser"]}], accounts, {}, verify=never)


def test_bytes_a_user_put_into_passwd_with_chfn_are_read_and_written_back_as_they_were(tmp_path):
    (tmp_path / "passwd").write_bytes(b"ann:x:1000:1000:Ann,\xff\xfe,,:/home/ann:/bin/bash\n")
    assert read_accounts(tmp_path)["ann"].uid == 1000
    write_table(tmp_path / "passwd", read_table(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_bytes() == b"ann:x:1000:1000:Ann,\xff\xfe,,:/home/ann:/bin/bash\n"


def test_new_hashes_are_salted_yescrypt_that_crypt_verifies():
    hashes = hash_all({"ann": "pw-of-ann", "bob": "pw-of-ann"})
    assert list(hashes) == ["ann", "bob"]
    assert all(h.startswith("$y$") for h in hashes.values())
    assert hashes["ann"] != hashes["bob"]  # same password, another salt
    assert crypt("pw-of-ann", hashes["ann"]) == hashes["ann"]
    assert crypt("pw-of-bob", hashes["ann"]) != hashes["ann"]
    assert crypt("pw", "not a setting") == ""


def test_login_is_for_human_accounts_with_a_usable_password_however_made(tmp_path):
    write_etc(
        tmp_path,
        "root:x:0:0::/root:/bin/bash\nsvc:x:999:999::/srv:/bin/bash\n"
        + "".join(
            f"{n}:x:{1000 + i}:{1000 + i}::/home/{n}:/bin/bash\n"
            for i, n in enumerate(("ann", "locked", "never", "empty", "star", "nohash"))
        ),
        "root:$y$root:1::::::\nsvc:$y$svc:1::::::\nann:$y$ann:1::::::\nlocked:!$y$ann:1::::::\n"
        "never:!:1::::::\nempty::1::::::\nstar:*:1::::::\n",
        "",
        "",
    )
    homes = tmp_path / "home"
    homes.mkdir()
    assert login_problem("ann", tmp_path, homes) is None
    assert "has no account" in login_problem("ghost", tmp_path, homes)
    for name in ("root", "svc"):
        assert "is a system account" in login_problem(name, tmp_path, homes)
    for name in ("locked", "never", "empty", "star", "nohash"):
        assert "has no password or a locked one" in login_problem(name, tmp_path, homes), name
    # useradd gave ann the UID of a removed user's kept home: ann would own it
    (homes / "ann").mkdir()
    (homes / "gone").mkdir()
    os.chown(homes / "gone", 1000, 1000)
    assert "which owns" in login_problem("ann", tmp_path, homes) and "gone" in login_problem("ann", tmp_path, homes)


def test_a_shared_folder_gets_its_group_setgid_and_group_rights_on_what_is_made_in_it(tmp_path, monkeypatch):
    etc, shared = tmp_path / "etc", tmp_path / "shared"
    etc.mkdir(), shared.mkdir()
    write_etc(etc, "", "", "root:x:0:\nanalysts:x:1500:\n", "")
    (shared / "data").mkdir(mode=0o755)
    monkeypatch.setattr(accounts, "ETC", etc)
    monkeypatch.setattr(apply, "SHARED_ROOT", shared)
    folders = [{"name": "data", "group": "analysts"}]
    assert apply.share(folders, check=True) == ["data"] and (shared / "data").stat().st_mode & 0o7777 == 0o755
    assert apply.share(folders) == ["data"]
    st = (shared / "data").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 1500, 0o2770)
    assert apply.share(folders) == [] and apply.share(folders, check=True) == []  # once is enough
    old = os.umask(0o022)
    try:  # a user's usual umask: what they make still opens to the group, and belongs to it
        (shared / "data/notes.txt").write_text("shared")
        (shared / "data/sub").mkdir()
    finally:
        os.umask(old)
    made = [(shared / "data" / name).stat() for name in ("notes.txt", "sub")]
    assert [(m.st_gid, m.st_mode & 0o7777) for m in made] == [(1500, 0o660), (1500, 0o2770)]


def test_a_link_in_place_of_a_shared_folder_is_refused_and_not_followed(tmp_path, monkeypatch):
    etc, shared, target = tmp_path / "etc", tmp_path / "shared", tmp_path / "secret"
    etc.mkdir(), shared.mkdir(), target.mkdir(mode=0o700)
    write_etc(etc, "", "", "analysts:x:1500:\n", "")
    (shared / "data").symlink_to(target)
    monkeypatch.setattr(accounts, "ETC", etc)
    monkeypatch.setattr(apply, "SHARED_ROOT", shared)
    with pytest.raises(OSError):
        apply.share([{"name": "data", "group": "analysts"}])
    assert target.stat().st_mode & 0o7777 == 0o700 and target.stat().st_gid == 0


def test_a_shared_folder_whose_volume_refuses_is_named_and_the_others_set_up(tmp_path, monkeypatch):
    etc, shared = tmp_path / "etc", tmp_path / "shared"
    etc.mkdir(), shared.mkdir()
    write_etc(etc, "", "", "analysts:x:1500:\n", "")
    (shared / "data").mkdir()
    (shared / "nfs").mkdir()
    monkeypatch.setattr(accounts, "ETC", etc)
    monkeypatch.setattr(apply, "SHARED_ROOT", shared)
    real = os.setxattr

    def no_acls_on_nfs(fd, *args):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("/nfs"):
            raise OSError(95, "Operation not supported")
        return real(fd, *args)

    monkeypatch.setattr(os, "setxattr", no_acls_on_nfs)
    failed: dict[str, str] = {}
    folders = [{"name": "nfs", "group": "analysts"}, {"name": "data", "group": "analysts"}]
    assert apply.share(folders, failed=failed) == ["nfs", "data"]
    assert failed == {"shared folder nfs": "Operation not supported: its volume must let root chown and set ACLs"}
    assert (shared / "data").stat().st_mode & 0o7777 == 0o2770


def test_report_names_the_shared_folders_set_up():
    out = report([], [{"name": "a"}], shared=["data"])
    assert out["changed"] and out["msg"] == "shared folder data: set up; unchanged: 1"
