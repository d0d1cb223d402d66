#!/usr/bin/env python3
"""Benchmark of the users sync: for 10, 100 and 500 users, time the first sync (all created), a no-op run of the
whole playbook, and a run where one password changed. Runs on this machine's Docker under bench-only names
(container quickjh-bench, port 18100, its own volumes and folders) and removes them at the end.

  .venv/bin/python bench/users.py [COUNTS...]      (default: 10 100 500; needs `make deploy`'s set-up)
"""
from __future__ import annotations

import sys

from benchhub import clean, playbook, users


def main(counts: list[int]) -> None:
    print("| users | first sync: playbook (sync task) | no-op playbook | one password changed: playbook (sync task) |")
    print("| ---: | --- | --- | --- |")
    try:
        playbook([])  # image and container, so the rows time the users alone
        for count in counts:
            clean()
            playbook([])
            listed = users(count)
            first = playbook(listed)
            noop = playbook(listed)
            listed[0] = dict(listed[0], password="bench-pw-changed", update_password="always")
            one = playbook(listed)
            print(f"| {count} | {first[0]:.1f} s ({first[1]:.1f} s) | {noop[0]:.1f} s, {noop[2]} "
                  f"| {one[0]:.1f} s ({one[1]:.1f} s), {one[2]} |", flush=True)
    finally:
        clean(image=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10, 100, 500])
