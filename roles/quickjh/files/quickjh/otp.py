"""quickjh_otp: each user's TOTP secret (RFC 6238: 30 s, 6 digits, SHA-1, as every authenticator app) in pam_oath's
users file on the state volume (a folder only root reads; PAM service jupyterhub checks the code after the password
and refuses one used before). The sync makes a secret for each listed user who has none, and hands the new ones to
the role (credentials/HOST/NAME.otp: an otpauth:// URI, and NAME-otp.svg: its QR code); removed users' lines go."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from quickjh.settings import state_dir


def users_file() -> Path:
    return state_dir() / "otp" / "users.oath"


@contextlib.contextmanager
def locked_file(path: Path, wait: float = 10, stale: float = 60):
    """pam_oath's own lock while the file is read and written, so that a login's rewrite is never lost: liboath
    (2.6.12) makes PATH.lock exclusively and removes it after, and refuses every code while one is there. A lock
    left older than `stale` seconds (a writer killed while holding it; liboath holds it for milliseconds) is
    removed."""
    path.parent.mkdir(mode=0o700, exist_ok=True)
    lock = Path(f"{path}.lock")
    deadline = time.monotonic() + wait
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
            break
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - lock.lstat().st_mtime > stale:
                    lock.unlink()
                    continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"{lock} is held") from None
            time.sleep(0.05)
    try:
        yield
    finally:
        lock.unlink()


def keep_secrets(wanted: list[str], path: Path | None = None) -> dict[str, str]:
    """A secret for each wanted name without one (hex), and no line for a name not wanted; returns the new ones."""
    path = path or users_file()
    made: dict[str, str] = {}
    with locked_file(path):
        lines = path.read_text().splitlines() if path.exists() else []
        kept = [line for line in lines if len(line.split()) > 1 and line.split()[1] in wanted]
        have = {line.split()[1] for line in kept}
        for name in wanted:
            if name not in have:
                made[name] = secrets.token_hex(20)
                kept.append(f"HOTP/T30/6\t{name}\t-\t{made[name]}")
        if kept != lines:
            with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as new:
                new.write("".join(f"{line}\n" for line in kept))
            os.chmod(new.name, 0o600)
            os.replace(new.name, path)
    return made


def enrolment(name: str, secret_hex: str, hub: str) -> dict[str, str]:
    """What a person needs to add the secret to their app: the otpauth:// URI and its QR code (SVG)."""
    import segno  # the image's venv has it (the lock file); only the sync needs it

    label = quote(f"{hub}:{name}")
    secret = base64.b32encode(bytes.fromhex(secret_hex)).decode().rstrip("=")
    uri = f"otpauth://totp/{label}?secret={secret}&issuer={quote(hub)}&algorithm=SHA1&digits=6&period=30"
    return {"uri": uri, "svg": segno.make(uri, error="m").svg_inline(scale=4)}
