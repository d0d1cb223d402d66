#!/usr/bin/python
"""Ansible module quickjh_file: a file with this content and mode, written in one module run."""

from __future__ import annotations

DOCUMENTATION = r"""
module: quickjh_file
short_description: A file with this content and mode, in one module run
description:
  - Writes content to dest (a new file beside it, then renamed over it: a reader never finds half of it) with mode,
    unless it already holds that content with that mode. ansible.builtin.copy with content costs two module runs
    (its stat, then the copy; about 2 s here for the hub's settings), this one. The folder must exist; dest is
    replaced, not followed, where it is a link. Supports check mode and diff mode (give the task diff false and
    no_log true for a secret's content).
options:
  dest:
    description: The file.
    type: path
    required: true
  content:
    description: What it holds.
    type: str
    required: true
  mode:
    description: Its mode (octal string).
    type: str
    default: "0600"
"""

RETURN = r"""
dest: {description: The file., type: str, returned: always}
"""

import os
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule


def current(dest: str) -> tuple[str | None, int | None]:
    """dest's text and mode, (None, None) where it is not a regular file (or is a link) or cannot be read as text."""
    try:
        st = os.lstat(dest)
        if not stat.S_ISREG(st.st_mode):
            return None, None
        with open(dest, encoding="utf-8") as found:
            return found.read(), stat.S_IMODE(st.st_mode)
    except (OSError, UnicodeDecodeError):
        return None, None


def write(dest: str, content: str, mode: int) -> None:
    """content into a new file beside dest, with mode from the start, then renamed over dest."""
    fd, path = tempfile.mkstemp(dir=os.path.dirname(dest) or ".", prefix=f".{os.path.basename(dest)}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(path, dest)
    except BaseException:
        if os.path.exists(path):
            os.unlink(path)
        raise


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "content": {"type": "str", "required": True},
            "mode": {"type": "str", "default": "0600"},
        },
        supports_check_mode=True,
    )
    dest, content = module.params["dest"], module.params["content"]
    try:
        mode = int(module.params["mode"], 8)
    except ValueError:
        module.fail_json(msg=f"mode: {module.params['mode']} is not an octal mode such as 0600", dest=dest)
    text, had = current(dest)
    changed = text != content or had != mode
    result = {"changed": changed, "dest": dest}
    if changed and module._diff:
        result["diff"] = {
            "before_header": dest,
            "after_header": dest,
            "before": "" if text is None else text,
            "after": content,
        }
    if changed and not module.check_mode:
        try:
            write(dest, content, mode)
        except OSError as error:
            module.fail_json(msg=f"{dest} could not be written: {error}", dest=dest)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
