"""The reference backend's Ed25519 signing key, kept in a PEM file beside its database.

The file is created once with mode 0600 and reused on every start, so tokens
minted before a restart still verify after it (same ``kid``).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from refbackend.errors import BackendError
from refbackend.tokens import kid_for

__all__ = ["SigningKey", "key_path_for", "load_or_create"]

log = logging.getLogger("refbackend")


class SigningKey:
    """A private key and its key id."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self.private = private
        self.public = private.public_key()
        self.kid = kid_for(self.public)

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"


def key_path_for(db: Path) -> Path:
    """Where the key of the database *db* lives: ``<db>.key``."""
    return db.with_name(db.name + ".key")


def load_or_create(path: Path) -> SigningKey:
    """Load the key at *path*, or create it (mode 0600). Raises BackendError if unusable."""
    if path.exists():
        return SigningKey(_load(path))
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        raise BackendError(
            f"cannot write the signing key {path}: {exc.strerror}; "
            "check that its directory exists and is writable"
        ) from exc
    log.info("created signing key %s (kid %s)", path, kid_for(private.public_key()))
    return SigningKey(private)


def _load(path: Path) -> Ed25519PrivateKey:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("signing key %s was readable by others (mode %o); set to 0600", path, mode)
            os.chmod(path, 0o600)
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise BackendError(f"cannot read the signing key {path}: {exc.strerror}") from exc
    except (ValueError, TypeError) as exc:
        raise BackendError(
            f"the signing key {path} is damaged; move it aside to create a new key "
            "(tokens minted with the old key will no longer verify)"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise BackendError(f"the signing key {path} is not an Ed25519 key; move it aside")
    return key
