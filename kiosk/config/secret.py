"""The client secret: read from a mode-0600 file into a value whose text form is masked."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from kiosk.errors import ConfigError

MASK = "********"
MAX_SECRET_BYTES = 4096


class Secret:
    """A secret value whose text form is always masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def absent(path: Path) -> bool:
    """True when nothing (not even a dangling link) is at *path*; a bad name is not absent."""
    try:
        return not path.exists() and not path.is_symlink()
    except OSError:  # e.g. a name too long: a mistake to report, not a file still to come
        return False


def read_secret_file(path: Path) -> Secret:
    """Read a secret file that only its owner can read. Raises ConfigError."""
    where = f"backend.client_secret_file: {path}"
    try:
        if path.is_symlink():
            raise ConfigError([f"{where}: is a symlink; put the secret in a plain file"])
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError([f"{where}: file not found"]) from None
    except PermissionError:
        raise ConfigError([f"{where}: cannot be read by this user; check its owner"]) from None
    except OSError as exc:  # a file as a parent directory, a symlink loop, a name too long
        raise ConfigError([f"{where}: cannot be read ({exc.strerror})"]) from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError([f"{where}: not a regular file"])
    if st.st_mode & 0o077:
        raise ConfigError(
            [
                f"{where}: readable by group or others (mode {st.st_mode & 0o777:o}); "
                f"run chmod 600 {path}"
            ]
        )
    try:
        raw = _read_regular(path, MAX_SECRET_BYTES + 1)
        if len(raw) > MAX_SECRET_BYTES:
            raise ConfigError([f"{where}: over {MAX_SECRET_BYTES} bytes; a secret is one line"])
        text = raw.decode("utf-8").strip()
    except PermissionError:
        raise ConfigError([f"{where}: cannot be read by this user; check its owner"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{where}: cannot be read ({exc})"]) from None
    if not text:
        raise ConfigError([f"{where}: file is empty"])
    return Secret(text)


def _read_regular(path: Path, limit: int) -> bytes:
    """At most *limit* bytes of *path*, refusing anything that became a link, FIFO or device
    since it was checked (opened without following links and without blocking)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file any more")
        return f.read(limit)
