"""Content files: Markdown with a YAML front matter, imported into the queue idempotently."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import yaml
from sqlmodel import Session, select

from newsletter.errors import ContentError, InputError
from newsletter.models import ContentItem
from newsletter.queue import ItemFields, validate
from newsletter.weeks import Clock

# Front matter keys and the ItemFields attribute each one fills.
KEYS = {
    "kind": "kind",
    "title": "title",
    "url": "url",
    "summary": "summary",
    "image": "image_url",
    "image_alt": "image_alt",
    "from": "available_from",
    "until": "available_until",
    "week": "pinned_week",
    "priority": "priority",
}
REQUIRED = ("kind", "title", "url")
ROOT_MARKER = ".jeudis-content"  # marks the top of a content folder (see content_root)
_FIELD_OF_ERROR = re.compile(r"^(\w+): ")


class _Loader(yaml.SafeLoader):
    """Safe YAML that leaves dates as text, so a bad date is reported, not raised."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # used/dropped items: history, not rewritten
    errors: list[ContentError] = field(default_factory=list)


def _line_of(front: str, key: str) -> int | None:
    for number, line in enumerate(front.splitlines(), start=2):  # line 1 is the opening ---
        if re.match(rf"^{re.escape(key)}\s*:", line):
            return number
    return None


def _split(text: str, path: str) -> tuple[str, str]:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ContentError(path, None, "does not start with a front matter block (---)", line=1)
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :])
    raise ContentError(path, None, "front matter block is never closed (---)", line=1)


def _as_date(value, path: str, key: str, front: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ContentError(
            path, key, f"{value!r} is not a date like 2026-11-26", _line_of(front, key)
        ) from None


def parse_content(text: str, path: str) -> ItemFields:
    """The validated fields of one content file's text; ContentError names the field and line."""
    front, body = _split(text, path)
    try:
        meta = yaml.load(front, Loader=_Loader) or {}  # noqa: S506 (safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark else None
        raise ContentError(
            path,
            None,
            f"front matter is not valid YAML ({exc.problem})"
            if hasattr(exc, "problem")
            else "front matter is not valid YAML",
            line,
        ) from None
    if not isinstance(meta, dict):
        raise ContentError(path, None, "front matter must be a mapping of keys to values", 2)
    for key in meta:
        if key not in KEYS:
            raise ContentError(
                path,
                str(key),
                f"unknown key (expected one of {', '.join(KEYS)})",
                _line_of(front, str(key)),
            )
    for key in REQUIRED:
        if meta.get(key) in (None, ""):
            raise ContentError(path, key, "is missing")
    values = {KEYS[k]: v for k, v in meta.items()}
    for key in ("from", "until"):
        values[KEYS[key]] = _as_date(meta.get(key), path, key, front)
    priority = meta.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise ContentError(
            path, "priority", f"{priority!r} is not an integer", _line_of(front, "priority")
        )
    for attr in ("kind", "title", "url", "summary", "image_url", "image_alt", "pinned_week"):
        if values.get(attr) is not None:
            values[attr] = str(values[attr])
    try:
        return validate(replace(ItemFields(kind="", title="", url=""), **values, body=body))
    except InputError as exc:
        message = str(exc)
        match = _FIELD_OF_ERROR.match(message)
        attr = match[1] if match else None
        key = next((k for k, a in KEYS.items() if attr in (a, k)), attr)
        reason = message[match.end() :] if match else message
        raise ContentError(path, key, reason, _line_of(front, key) if key else None) from None


def content_files(root: Path) -> list[Path]:
    """The Markdown files under a folder (or the one file given), in a stable order."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InputError(f"{root}: no such file or directory")
    return sorted(p for p in root.rglob("*.md") if p.is_file() and not p.name.startswith("."))


def content_root(path: Path, content_dir: Path | None = None) -> Path:
    """The folder a content file's identity is taken from, whatever was imported (the root,
    a sub-folder or one file): the nearest folder at or above `path` that holds a
    `.jeudis-content` marker, else `content_dir` (the setting) when `path` is inside it,
    else the folder given (a file's own folder)."""
    start = path.resolve()
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        if (candidate / ROOT_MARKER).is_file():
            return candidate
    if content_dir is not None and folder.is_relative_to(content_dir.resolve()):
        return content_dir.resolve()
    return folder


def source_key_of(path: Path, root: Path) -> str:
    """A content file's identity in the queue: its path under its content root."""
    return "file:" + path.resolve().relative_to(root.resolve()).as_posix()


def import_content(
    session: Session, path: Path, clock: Clock, content_dir: Path | None = None
) -> ImportReport:
    """Import every file under `path` (a folder or one file): new files are queued, changed
    ones updated, bad ones reported; good files go in even when others are bad, all in one
    transaction. A file is the same item whichever folder above it was imported."""
    report = ImportReport()
    parsed: list[tuple[str, str, ItemFields]] = []
    root = content_root(path, content_dir)
    for file in content_files(path):
        shown = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            report.errors.append(ContentError(shown, None, f"is not UTF-8 text (byte {exc.start})"))
            continue
        try:
            parsed.append((shown, source_key_of(file, root), parse_content(text, shown)))
        except ContentError as exc:
            report.errors.append(exc)
    now = clock()
    for shown, key, item in parsed:
        row = session.exec(select(ContentItem).where(ContentItem.source_key == key)).first()
        if row is None:
            row = ContentItem(
                kind=item.kind,
                title=item.title,
                url=item.url,
                source="import",
                source_key=key,
                created_at=now,
                updated_at=now,
                queued_at=now,
            )
            report.added.append(shown)
        elif row.status not in ("queued", "proposed"):
            report.kept.append(shown)
            continue
        elif row.content_hash == item.digest():
            report.unchanged.append(shown)
            continue
        else:
            row.updated_at = now
            report.updated.append(shown)
        for attr, value in vars(item).items():
            setattr(row, attr, value)
        row.content_hash = item.digest()
        session.add(row)
    session.commit()
    return report
