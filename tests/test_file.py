"""The role's file writer (library/quickjh_file.py): content and mode, written whole, links replaced not followed."""

from __future__ import annotations

import os
import stat

import quickjh_file


def test_a_file_is_written_whole_with_its_mode_from_the_start(tmp_path):
    dest = tmp_path / "settings.json"
    quickjh_file.write(str(dest), '{"hub": "quickjh"}\n', 0o600)
    assert dest.read_text() == '{"hub": "quickjh"}\n'
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert quickjh_file.current(str(dest)) == ('{"hub": "quickjh"}\n', 0o600)
    assert os.listdir(tmp_path) == ["settings.json"]  # no file left beside it


def test_a_link_in_its_place_is_replaced_and_what_it_named_is_untouched(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not mine")
    dest = tmp_path / "secrets.json"
    dest.symlink_to(elsewhere)
    assert quickjh_file.current(str(dest)) == (None, None)
    quickjh_file.write(str(dest), "secret\n", 0o600)
    assert not dest.is_symlink() and dest.read_text() == "secret\n"
    assert elsewhere.read_text() == "not mine"


def test_what_is_not_there_or_not_text_is_not_known(tmp_path):
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    assert quickjh_file.current(str(tmp_path / "binary")) == (None, None)
    assert quickjh_file.current(str(tmp_path / "none")) == (None, None)
    assert quickjh_file.current(str(tmp_path)) == (None, None)


def run_module(tmp_path, **args) -> dict:
    """The module as Ansible runs it (its arguments in a file), its JSON answer."""
    import json
    import subprocess
    import sys

    given = tmp_path / "args.json"
    given.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run([sys.executable, quickjh_file.__file__, str(given)], capture_output=True, text=True)
    return json.loads(done.stdout)


def test_check_mode_writes_nothing_and_diff_mode_shows_the_change(tmp_path):
    dest = tmp_path / "config" / "settings.json"
    dest.parent.mkdir()
    dest.write_text("old\n")
    dest.chmod(0o644)
    said = run_module(tmp_path, dest=str(dest), content="new\n", _ansible_check_mode=True, _ansible_diff=True)
    assert said["changed"] and said["diff"]["before"] == "old\n" and said["diff"]["after"] == "new\n"
    assert dest.read_text() == "old\n" and stat.S_IMODE(dest.stat().st_mode) == 0o644
    said = run_module(tmp_path, dest=str(dest), content="new\n")
    assert said["changed"] and "diff" not in said
    assert dest.read_text() == "new\n" and stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert not run_module(tmp_path, dest=str(dest), content="new\n")["changed"]
    assert "0o9" in run_module(tmp_path, dest=str(dest), content="x", mode="0o9")["msg"]
