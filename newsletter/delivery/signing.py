"""DKIM signing of the final bytes: dkimpy's canonicalization, OpenSSL's RSA.

dkimpy computes RSA in pure Python (about 30 ms a message here); the `cryptography` package
does the same PKCS#1 v1.5 signature in OpenSSL in about 1 ms. Canonicalization and header
selection are dkimpy's own, and the tests verify every signature with `dkim.verify`.
`c=relaxed/simple` (dkimpy's default): our bodies are quoted-printable with CRLF, which
relaxed body canonicalization would not change, so the body is hashed as it is.
List-Unsubscribe and List-Unsubscribe-Post are signed, as RFC 8058 section 4 asks.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from dkim.canonicalization import Relaxed, Simple

from newsletter.config import Settings
from newsletter.errors import SettingsError

SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post", b"feedback-id", b"mime-version",
    b"content-type",
)  # fmt: skip
HEADER = b"DKIM-Signature"


def dkim_signer(settings: Settings) -> Callable[[bytes], bytes] | None:
    """A function adding a DKIM-Signature, or None when DKIM is not configured."""
    wanted = {
        "dkim_key_file": settings.dkim_key_file,
        "dkim_selector": settings.dkim_selector,
        "dkim_domain": settings.dkim_domain,
    }
    if not any(wanted.values()):
        return None
    missing = [name for name, value in wanted.items() if not value]
    if missing:
        raise SettingsError(f"{missing[0]}: required when any dkim_* setting is set")
    key = _private_key(Path(settings.dkim_key_file))
    domain, selector = settings.dkim_domain.encode(), settings.dkim_selector.encode()

    def sign(data: bytes) -> bytes:
        return signature(data, key, domain, selector) + data

    return sign


def _private_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise SettingsError(f"dkim_key_file: {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"dkim_key_file: {path}: not a PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SettingsError(f"dkim_key_file: {path}: not an RSA key")
    return key


def signature(data: bytes, key: rsa.RSAPrivateKey, domain: bytes, selector: bytes) -> bytes:
    """The `DKIM-Signature:` header line (folded, CRLF-ended) for a CRLF message."""
    # dkimpy's rfc822_parse splits the whole message into lines (1.3 ms for an issue of 64 KB,
    # more than the RSA signature): give it the header section only.
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise ValueError("DKIM: the message has no blank line after its header")
    headers, _ = dkim.rfc822_parse(data[: end + 4])
    body = data[end + 4 :]
    present = {name.lower() for name, _ in headers}
    include = [name for name in SIGNED_HEADERS if name in present]
    body_hash = base64.b64encode(hashlib.sha256(Simple.canonicalize_body(body)).digest())
    fields = [
        (b"v", b"1"), (b"a", b"rsa-sha256"), (b"c", b"relaxed/simple"), (b"d", domain),
        (b"s", selector), (b"h", b" : ".join(include)), (b"bh", body_hash), (b"b", b""),
    ]  # fmt: skip
    # h= is joined with spaces, as dkimpy does, so folding never cuts a header name.
    unsigned = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(HEADER))
    hasher = hashlib.sha256()
    canonical = Relaxed.canonicalize_headers(headers)  # hash_headers wants them canonical
    dkim.hash_headers(hasher, Relaxed, canonical, include, (HEADER, b" " + unsigned), dict(fields))
    signed = key.sign(hasher.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    fields[-1] = (b"b", base64.b64encode(signed))
    value = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(HEADER))
    return HEADER + b": " + value + b"\r\n"
