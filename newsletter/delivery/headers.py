"""Address headers: a display name as atoms and RFC 2047 encoded-words, folded under 78.

Pure. Plain words stay readable; only runs of words that need it are Q-encoded, and control
characters are flattened so a name can never inject a header.
"""

from __future__ import annotations

import re
from email.utils import formataddr

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def display_name(name: str) -> str:
    """The name with control characters and runs of spaces flattened."""
    return " ".join(CONTROL.sub(" ", name).split())


# RFC 2047 "Q" encoding for a phrase: only these stand for themselves (section 5, rule 3).
_Q_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q = [chr(b) if b in _Q_PLAIN else "_" if b == 0x20 else f"={b:02X}" for b in range(256)]
_Q_MAX = 60  # payload per encoded-word: with "=?utf-8?q?" and "?=" a word is at most 72
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")


def _q(text: str) -> str:
    return "".join(map(_Q.__getitem__, text.encode("utf-8")))


def _q_words(run: str) -> list[str]:
    """A run of words as encoded-words; a split falls after a space where it can, and never
    inside a character (the space stays inside the first word: whitespace between two
    encoded-words is not text, RFC 2047 section 6.2)."""
    words, current = [], ""
    for token in run.split(" "):
        piece = _q(token) if not current else "_" + _q(token)
        if current and len(current) + len(piece) > _Q_MAX:
            words.append(current + "_")
            current, piece = "", _q(token)
        if len(piece) > _Q_MAX:  # one giant token: cut between characters
            for char in token:
                part = _q(char)
                if len(current) + len(part) > _Q_MAX:
                    words.append(current)
                    current = ""
                current += part
            continue
        current += piece
    words.append(current)
    return [f"=?utf-8?q?{word}?=" for word in words]


def _phrase(name: str) -> list[str]:
    """A display name as atoms and encoded-words: plain words stay readable."""
    out: list[str] = []
    run: list[str] = []
    for token in name.split(" "):
        if _ATOM.fullmatch(token) and "=?" not in token:
            if run:
                out += _q_words(" ".join(run))
                run = []
            out.append(token)
        else:
            run.append(token)
    if run:
        out += _q_words(" ".join(run))
    return out


def to_header(name: str, email: str) -> bytes:
    """`To:` with the display name quoted or RFC 2047-encoded, folded with CRLF under 78."""
    if CONTROL.search(email) or " " in email or "@" not in email:
        raise ValueError(f"recipient: {email!r} is not a usable address")
    name = display_name(name)
    if not name:
        return f"To: {email}\r\n".encode()
    # The address stays as is (a non-ASCII address needs SMTPUTF8 from the relay anyway).
    if name.isascii() and len(name) + len(email) < 60:
        return f"To: {formataddr((name, email))}\r\n".encode()
    lines, line = [], "To:"
    for word in [*_phrase(name), f"<{email}>"]:
        if len(line) + 1 + len(word) > 78 and line != "To:":
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode()
