"""Password hashes: scrypt, stored as `scrypt$N$r$p$salt$hash` (base64); nothing else kept."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

from newsletter.errors import InputError, SettingsError

SCHEME = "scrypt"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
PASSWORD_MIN = 10


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash` (base64): an editor's password, or `desk_password_hash`."""
    if len(password) < PASSWORD_MIN:
        raise InputError(f"password: at least {PASSWORD_MIN} characters")
    salt = salt or secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join([SCHEME, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)])


def verify_password(password: str, encoded: str) -> bool:
    """True if `password` matches the stored hash (constant-time comparison)."""
    _scheme, n, r, p, salt, digest = parse_hash(encoded)
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), digest)


def parse_hash(
    encoded: str, what: str = "desk_password_hash"
) -> tuple[str, int, int, int, bytes, bytes]:
    """The parts of a stored hash, or a SettingsError naming `what`."""
    parts = encoded.strip().split("$")
    try:
        if len(parts) != 6 or parts[0] != SCHEME:
            raise ValueError
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
        if n < 2 or n & (n - 1) or not salt or len(digest) < 16:
            raise ValueError
    except ValueError:
        raise SettingsError(f"{what}: not a hash made by `jeudis desk-password`") from None
    return parts[0], n, r, p, salt, digest


@functools.cache
def dummy_hash() -> str:
    """Verified when the account does not exist, so that a wrong name costs as long as a
    wrong password (the answer's timing must not tell which names exist)."""
    return hash_password("not a password of anyone", salt=b"jeudis-dummy-salt")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=32)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValueError(text) from None
