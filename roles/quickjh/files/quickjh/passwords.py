"""Password hashes as PAM makes and checks them: libxcrypt through its thread-safe calls (loaded at first use: the
controller imports the rules beside this module and may have no libcrypt)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from concurrent.futures import ThreadPoolExecutor

from quickjh.accounts import Account


@functools.cache
def libcrypt() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt_rn.restype = ctypes.c_char_p
    lib.crypt_rn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    lib.crypt_gensalt_rn.restype = ctypes.c_char_p
    lib.crypt_gensalt_rn.argtypes = [
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
    ]
    return lib


def crypt(password: str, setting: str) -> str:
    """crypt(3): the hash PAM compares with at login ("" when the setting is not one libcrypt knows)."""
    data = ctypes.create_string_buffer(32768)  # struct crypt_data
    result = libcrypt().crypt_rn(password.encode(), setting.encode(), data, len(data))
    return result.decode() if result else ""


def new_hash(password: str) -> str:
    """A new hash of password with a random salt, by libcrypt's default method and cost (yescrypt here: what
    passwd and chpasswd make)."""
    setting = ctypes.create_string_buffer(128)
    if not libcrypt().crypt_gensalt_rn(None, 0, None, 0, setting, len(setting)):
        raise OSError("crypt_gensalt found no hashing method")
    hashed = crypt(password, setting.value.decode())
    if not hashed.startswith("$"):
        raise OSError(f"crypt failed with setting {setting.value.decode()!r}")
    return hashed


def hash_all(passwords: dict[str, str]) -> dict[str, str]:
    """New hashes of these passwords, by name, up to 4 at once on the cores there are (ctypes lets go of the GIL
    while libcrypt works): about 25 ms of CPU each. The passwords never leave this process."""
    if not passwords:
        return {}
    # Each yescrypt hash holds 16 MiB while it runs: a few at once, whatever the host's count of cores.
    with ThreadPoolExecutor(min(len(passwords), len(os.sched_getaffinity(0)), 4)) as pool:
        return dict(zip(passwords, pool.map(new_hash, passwords.values()), strict=True))


def password_differs(user: dict, account: Account, verify=crypt) -> bool:
    if user.get("password_hash"):
        return user["password_hash"] != account.hash
    if user.get("password") is not None:
        return not account.hash.startswith("$") or verify(user["password"], account.hash) != account.hash
    return False
