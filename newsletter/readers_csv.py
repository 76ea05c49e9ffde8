"""Reading a CSV of readers: the usual spreadsheet export, whatever its delimiter, BOM or
header names (« Courriel », « Prénom », « E-mail »…), into (line, address, name) rows."""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from newsletter.errors import InputError

EMAIL_HEADERS = {
    "email",
    "e-mail",
    "courriel",
    "adresse",
    "mail",
    "adresse email",
    "adresse e-mail",
    "adresse mail",
    "adresse courriel",
    "email address",
}
NAME_HEADERS = {"name", "nom", "prenom nom", "nom complet", "full name"}
FIRST_NAME_HEADERS = {"prenom", "first name"}


@dataclass(frozen=True)
class BadRow:
    line: int
    address: str
    reason: str

    def describe(self, path: Path | str) -> str:
        if not self.address:
            return f"{path}:{self.line}: email: missing"
        return f"{path}:{self.line}: email: {self.address!r} is not a valid address ({self.reason})"


def _fold(header: str) -> str:
    """A header compared without case, accents, underscores or extra spaces."""
    text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode()
    return " ".join(text.lower().replace("_", " ").split())


def read_rows(path: Path) -> tuple[list[tuple[int, str, str]], str]:
    """(line, address, name) rows of a CSV file; InputError for a file that cannot be read."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
            "save the file as UTF-8 CSV"
        ) from None
    if not text.strip():
        raise InputError(f"{path}: empty file (expected a header row with an email column)")
    header_line = text.lstrip("\r\n").splitlines()[0]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [_fold(cell) for cell in next(reader)]
        while not any(header):
            header = [_fold(cell) for cell in next(reader)]
    except StopIteration:
        raise InputError(f"{path}: empty file (expected a header row)") from None
    email_col = next((i for i, h in enumerate(header) if h in EMAIL_HEADERS), None)
    if email_col is None:
        raise InputError(
            f"{path}:{reader.line_num}: no address column (expected one named "
            "email, e-mail, courriel, adresse or mail)"
        )
    name_col = next((i for i, h in enumerate(header) if h in NAME_HEADERS), None)
    first_col = next((i for i, h in enumerate(header) if h in FIRST_NAME_HEADERS), None)
    rows = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue

            def cell(i: int | None, cells=cells) -> str:
                return cells[i].strip() if i is not None and i < len(cells) else ""

            name = " ".join(part for part in (cell(first_col), cell(name_col)) if part)
            rows.append((reader.line_num, cell(email_col), name))
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
    return rows, delimiter
