"""user2 attacks user1 across containers (quickjh_spawner docker): user1's files, kernel and server stay out of
reach, and nobody's container has the Docker socket."""

from __future__ import annotations

import pytest

from hubfixtures import server_answers_without_login


@pytest.fixture(scope="module")
def victim(login):
    user1 = login("user1")
    user1.run("open('secret.txt', 'w').write('user1 only')")
    return user1


def test_another_users_files_are_not_in_the_container(victim, login):
    printed = login("user2").run(
        "import glob, os\n"
        "print(os.path.exists('/home/user1'), glob.glob('/home/*/notebook/secret.txt'),"
        " glob.glob('/var/lib/docker/volumes/*'))"
    )
    assert printed.strip() == "False [] []"


def test_another_users_server_answers_no_without_their_login(victim, login, settings):
    name = f"{settings['quickjh_container_name']}-user1"
    printed = server_answers_without_login(login("user2"), name, "user1")
    answers = [line.split() for line in printed.splitlines()]
    assert len(answers) == 3 and all(
        code in ("302", "403", "404") and leaked == "False" for _, code, leaked in answers
    ), printed


def test_another_users_kernel_is_out_of_reach(victim, login):
    """user1's kernel runs in user1's container: from user2's, no process of it and no socket of it is there."""
    with victim.kernel() as execute:
        execute("print('running')")
        printed = login("user2").run(
            "import glob, os\n"
            "owners = {os.stat(f'/proc/{p}').st_uid for p in os.listdir('/proc') if p.isdigit()}\n"
            "print(sorted(owners - {0, os.getuid()}), glob.glob('/run/user/*') == [f'/run/user/{os.getuid()}'])"
        )
    assert printed.strip() == "[] True", printed


def test_no_user_gets_the_docker_socket_or_root(login):
    printed = login("user2").terminal(
        "ls -l /var/run/docker.sock; command -v docker; id -u; grep -h CapEff /proc/self/status"
    )
    assert "No such file" in printed and "CapEff:\t0000000000000000" in printed, printed
