"""`jeudis check`: a good and a bad configuration; the DKIM record it prints fits the key."""

from __future__ import annotations

import base64
import re

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jeudis_cli import run

GOOD = {
    "JEUDIS_BASE_URL": "https://jeudis.lerameau.example.org",
    "JEUDIS_FROM_ADDRESS": "Les Jeudis <jeudis@lerameau.example.org>",
    "JEUDIS_DKIM_SELECTOR": "jeudis2026",
    "JEUDIS_DKIM_DOMAIN": "lerameau.example.org",
    "JEUDIS_BOUNCE_ADDRESS": "bounces@retours.lerameau.example.org",
    "JEUDIS_INBOUND_MAILDIR": "/var/mail/retours",
}


def _key(tmp_path, name="dkim.pem"):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / name
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key, path


def _record(output: str, name: str) -> str:
    """The TXT value printed for `name`, its quoted strings joined."""
    line = next(line for line in output.splitlines() if line.strip().startswith(name + ". "))
    return "".join(re.findall(r'"([^"]*)"', line))


def test_a_good_configuration_passes_and_its_dkim_record_fits_the_key(home, tmp_path):
    key, path = _key(tmp_path)
    result = run(home.path, "check", env={**GOOD, "JEUDIS_DKIM_KEY_FILE": str(path)})
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output

    record = _record(result.output, "jeudis2026._domainkey.lerameau.example.org")
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert record == f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"

    # And a message signed with the key verifies against the printed record (dkimpy).
    message = b"From: jeudis@lerameau.example.org\r\nTo: a@example.net\r\nSubject: x\r\n\r\nHi\r\n"
    signed = dkim.sign(message, b"jeudis2026", b"lerameau.example.org", path.read_bytes())

    def dns(name, timeout=5):
        assert name == b"jeudis2026._domainkey.lerameau.example.org."
        return record.encode()

    assert dkim.verify(signed + message, dnsfunc=dns)
    spf = _record(result.output, "retours.lerameau.example.org")
    assert spf.startswith("v=spf1 ") and spf.endswith("~all")
    dmarc = _record(result.output, "_dmarc.lerameau.example.org")
    assert "p=none" in dmarc and "rua=mailto:" in dmarc


def test_a_bad_configuration_fails_and_names_each_problem(home, tmp_path):
    env = {
        **GOOD,
        "JEUDIS_BASE_URL": "http://jeudis.lerameau.example.org",
        "JEUDIS_DKIM_KEY_FILE": str(tmp_path / "missing.pem"),
        "JEUDIS_DKIM_DOMAIN": "mailer.example.com",
        "JEUDIS_BOUNCE_ADDRESS": "bounces@esp.example.net",
    }
    result = run(home.path, "check", env=env)
    assert result.exit_code == 1
    fails = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 3, result.output
    assert "base_url" in fails[0] and "not HTTPS" in fails[0]
    assert "missing.pem" in fails[1]
    assert "DMARC fails" in fails[2]


@pytest.mark.parametrize("problem", ["not a key", "published record of another key"])
def test_a_key_that_does_not_fit_fails(home, tmp_path, problem):
    _, path = _key(tmp_path)
    if problem == "not a key":
        path.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    else:
        other, _ = _key(tmp_path, "other.pem")
        der = other.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (tmp_path / "jeudis2026.txt").write_text(
            f'jeudis2026._domainkey IN TXT ( "v=DKIM1; k=rsa; "\n'
            f'  "p={base64.b64encode(der).decode()}" )\n'
        )
    result = run(home.path, "check", env={**GOOD, "JEUDIS_DKIM_KEY_FILE": str(path)})
    assert result.exit_code == 1
    assert "FAIL  dkim:" in result.output
