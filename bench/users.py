#!/usr/bin/env python3
"""Benchmark of the users sync: for 10, 100 and 500 users, time the first sync (all created), a no-op run of the
whole playbook, and a run where one password changed; beside them, the bare way in the same container: a shell
loop of useradd and each user's ~/notebook, then one chpasswd, as an admin would type it. Runs on this machine's
Docker under bench-only names (container quickjh-bench, port 18100, its own volumes and folders) and removes them
at the end.

  .venv/bin/python bench/users.py [COUNTS...]      (default: 10 100 500; needs `make deploy`'s set-up)
"""

from __future__ import annotations

import subprocess
import sys
import time

from benchhub import NAMES, clean, playbook, users

BARE = """for i in $(seq -w 1 {count}); do
  useradd --create-home --shell /bin/bash bare$i
  install -d -o bare$i -g bare$i /home/bare$i/notebook
done
for i in $(seq -w 1 {count}); do echo bare$i:bare-pw-$i; done | chpasswd
"""


def bare_loop(count: int) -> float:
    """The bare loop's time in the bench container; its users are removed after."""
    started = time.monotonic()
    container = NAMES["quickjh_container_name"]
    subprocess.run(["docker", "exec", container, "bash", "-ec", BARE.format(count=count)], check=True)
    took = time.monotonic() - started
    subprocess.run(
        ["docker", "exec", container, "bash", "-c", f"for i in $(seq -w 1 {count}); do userdel -r bare$i; done"],
        check=True,
        capture_output=True,
    )
    return took


def main(counts: list[int]) -> None:
    print(
        "| users | first sync: playbook (sync task) | bare loop | no-op playbook "
        "| one password changed: playbook (sync task) |"
    )
    print("| ---: | --- | --- | --- | --- |")
    try:
        playbook([])  # image and container, so the rows time the users alone
        for count in counts:
            clean()
            playbook([])
            listed = users(count)
            first = playbook(listed)
            bare = bare_loop(count)
            noop = playbook(listed)
            listed[0] = dict(listed[0], password="bench-pw-changed", update_password="always")
            one = playbook(listed)
            print(
                f"| {count} | {first[0]:.1f} s ({first[1]:.1f} s) | {bare:.1f} s | {noop[0]:.1f} s, {noop[2]} "
                f"| {one[0]:.1f} s ({one[1]:.1f} s), {one[2]} |",
                flush=True,
            )
    finally:
        clean(image=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10, 100, 500])
