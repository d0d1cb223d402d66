"""A shared folder (quickjh_shared_folders: data for the group analysts): admin and user1 are members, user2 is not.

Members find it in JupyterLab's file browser as ~/notebook/data and share what they write there; the non-member
cannot read it, and cannot get in by making the link themselves.
"""

from __future__ import annotations


def test_members_share_files_in_the_folder_and_a_non_member_cannot_read_it(login, settings):
    user1, admin, user2 = login("user1"), login("admin"), login("user2")
    listing = {item["name"]: item["type"] for item in user1.server_api("GET", "/contents").json()["content"]}
    assert listing.get("data") == "directory", listing  # the file browser's view of ~/notebook
    saved = user1.server_api(
        "PUT", "/contents/data/plan.txt", json={"type": "file", "format": "text", "content": "from user1\n"}
    )
    assert saved.status_code in (200, 201), saved.text  # as JupyterLab saves a file
    printed = admin.run("p = 'data/plan.txt'\nopen(p, 'a').write('and admin\\n')\nprint(open(p).read())")
    assert printed == "from user1\nand admin\n\n", printed
    printed = admin.terminal("mkdir -p ~/notebook/data/results && stat -c '%G %a %n' ~/notebook/data/*")
    assert "analysts 660 /home/admin/notebook/data/plan.txt" in printed, printed  # group-writable, whatever umask
    assert "analysts 2770 /home/admin/notebook/data/results" in printed, printed
    assert user1.run("open('data/results/r.csv', 'w').write('1,2'); print('ok')").strip() == "ok"

    assert user2.server_api("GET", "/contents/data").status_code == 404  # no link in a non-member's notebook
    printed = user2.terminal(
        "ln -s /srv/shared/data ~/notebook/data; cat ~/notebook/data/plan.txt; ls /srv/shared/data"
    )
    assert "Permission denied" in printed and "from user1" not in printed, printed
    assert printed.endswith("[exit 2]"), printed
