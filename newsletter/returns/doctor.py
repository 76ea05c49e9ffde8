"""`jeudis check`: what in the settings would hurt delivery, and the DNS records to publish.

No network: it reads the settings and the DKIM key, never DNS. Alignment is DMARC's relaxed
mode simplified to "the same domain or one a subdomain of the other" (no public suffix list).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from newsletter.config import Settings

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Finding:
    """One check: `ok`, `warn` (worth fixing) or `fail` (hurts delivery)."""

    level: str
    topic: str
    text: str


@dataclass(frozen=True)
class Checkup:
    findings: list[Finding]
    records: list[str]  # zone-file lines to publish

    @property
    def failed(self) -> bool:
        return any(f.level == "fail" for f in self.findings)


def domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2].lower().rstrip(".")


def aligned(one: str, other: str) -> bool:
    """DMARC relaxed alignment, simplified: the same domain, or one inside the other."""
    return bool(one and other) and (
        one == other or one.endswith("." + other) or other.endswith("." + one)
    )


def _valid_domain(name: str) -> bool:
    labels = name.lower().rstrip(".").split(".")
    return len(labels) >= 2 and all(_LABEL.match(label) for label in labels)


def _check_base_url(settings: Settings) -> Finding:
    if urlsplit(settings.base_url).scheme == "https":
        return Finding("ok", "base_url", f"{settings.base_url} is HTTPS")
    return Finding(
        "fail",
        "base_url",
        f"{settings.base_url} is not HTTPS: Gmail and Yahoo ignore a one-click "
        "unsubscribe (RFC 8058) that is not HTTPS",
    )


def dkim_record(key_pem: bytes) -> str:
    """The TXT value publishing the public half of a PEM private key (RSA or Ed25519)."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def _txt(name: str, value: str) -> str:
    """A zone-file TXT line; long values split in 255-character strings."""
    chunks = " ".join('"' + value[i : i + 255] + '"' for i in range(0, len(value), 255))
    return f"{name}. IN TXT ( {chunks} )"


def _check_dkim(settings: Settings) -> tuple[list[Finding], str | None]:
    """The DKIM findings and, when the key reads, its TXT record line."""
    if not settings.dkim_key_file:
        return [
            Finding("fail", "dkim", "no dkim_key_file: bulk mail without DKIM is refused")
        ], None
    path, found = Path(settings.dkim_key_file), []
    selector, domain = settings.dkim_selector.lower(), settings.dkim_domain.lower()
    if not _LABEL.match(selector or "-"):
        found.append(Finding("fail", "dkim", f"dkim_selector: {selector!r} is not a DNS label"))
    if not _valid_domain(domain):
        found.append(Finding("fail", "dkim", f"dkim_domain: {domain!r} is not a domain"))
    try:
        pem = path.read_bytes()
        record = dkim_record(pem)
        key = serialization.load_pem_private_key(pem, password=None)
    except OSError as exc:
        return [*found, Finding("fail", "dkim", f"dkim_key_file: {path}: {exc.strerror}")], None
    except (ValueError, TypeError) as exc:
        reason = f"not a PEM private key without passphrase ({exc})"
        return [*found, Finding("fail", "dkim", f"dkim_key_file: {path}: {reason}")], None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 1024:
        found.append(Finding("fail", "dkim", f"{path}: RSA {key.key_size} bits (min. 1024)"))
    elif isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        found.append(Finding("warn", "dkim", f"{path}: RSA {key.key_size} bits (2048 advised)"))
    found += _check_published(path, selector, record)
    if any(f.level == "fail" for f in found):
        return found, None
    ok = Finding("ok", "dkim", f"{path} signs as d={domain}, s={selector}")
    return [ok], _txt(f"{selector}._domainkey.{domain}", record)


def _published_key(text: str) -> str:
    """The p= of a zone-file TXT record (its quoted strings joined)."""
    quoted = re.findall(r'"([^"]*)"', text)
    value = "".join(quoted) if quoted else text
    found = re.search(r"\bp=([A-Za-z0-9+/=\s]*)", value)
    return "".join(found.group(1).split()) if found else ""


def _check_published(path: Path, selector: str, record: str) -> list[Finding]:
    """Compare with the record opendkim-genkey wrote next to the key (SELECTOR.txt), if any."""
    published = path.with_name(f"{selector}.txt")
    if not published.is_file():
        return []
    text = published.read_text(errors="replace")
    if _published_key(text) != _published_key(record):
        reason = "its public key is not the one of dkim_key_file: DKIM would fail"
        return [Finding("fail", "dkim", f"{published}: {reason}")]
    if not text.lower().lstrip().startswith(f"{selector}._domainkey"):
        return [Finding("fail", "dkim", f"{published}: not a record for selector {selector}")]
    return [Finding("ok", "dkim", f"{published} matches the key")]


def _check_alignment(settings: Settings) -> list[Finding]:
    from_domain = domain_of(settings.from_address)
    dkim_domain = settings.dkim_domain.lower()
    bounce_domain = domain_of(settings.bounce_address)
    dkim_ok = aligned(from_domain, dkim_domain)
    spf_ok = aligned(from_domain, bounce_domain)
    found = [
        Finding(
            "ok" if dkim_ok else "warn",
            "alignment",
            f"DKIM d={dkim_domain or '(none)'} {'is' if dkim_ok else 'is not'} "
            f"aligned with From {from_domain}",
        ),
        Finding(
            "ok" if spf_ok else "warn",
            "alignment",
            f"return path {bounce_domain} {'is' if spf_ok else 'is not'} "
            f"aligned with From {from_domain}",
        ),
    ]
    if not (dkim_ok or spf_ok):
        found.append(
            Finding("fail", "alignment", f"DMARC fails: nothing aligns with From {from_domain}")
        )
    return found


def _check_inbound(settings: Settings) -> Finding:
    if settings.inbound_maildir or settings.inbound_imap_url:
        return Finding("ok", "inbound", "returning mail is read by the scheduler")
    return Finding(
        "warn",
        "inbound",
        f"nothing reads {settings.bounce_address} and {settings.unsubscribe_mailto}: set "
        "inbound_maildir or inbound_imap_url, or pipe them to `jeudis inbound`",
    )


def checkup(settings: Settings) -> Checkup:
    """Every finding, and the records to publish (DKIM, SPF, DMARC)."""
    dkim_findings, dkim_line = _check_dkim(settings)
    findings = [_check_base_url(settings), *dkim_findings, *_check_alignment(settings)]
    findings.append(_check_inbound(settings))
    from_domain = domain_of(settings.from_address)
    bounce_domain = domain_of(settings.bounce_address)
    relay = urlsplit(settings.smtp_url).hostname or ""
    spf_source = "mx" if relay in ("", "127.0.0.1", "localhost", "::1") else f"mx a:{relay}"
    records = [dkim_line] if dkim_line else []
    records += [
        _txt(bounce_domain, f"v=spf1 {spf_source} ~all"),
        _txt(
            f"_dmarc.{from_domain}",
            f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{from_domain}; adkim=r; aspf=r",
        ),
    ]
    return Checkup(findings, records)
