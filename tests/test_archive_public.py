"""The archive goes public at each issue's send time, and any machine serves it from the
database: real uvicorn servers on 127.0.0.1, a fake clock, two JEUDIS_HOME folders."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime

import feedparser
import lxml.html
from jeudis_cli import MONDAY, REPO, run

from newsletter.config import load_settings
from newsletter.web import create_app

BEFORE = datetime(2026, 11, 26, 6, 59, tzinfo=UTC)  # Thursday 07:59 Paris
AT_EIGHT = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # Thursday 08:00 Paris
PAGE = "/archive/2026-W48/"


def get(base: str, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def issue_links(index: bytes) -> list[str]:
    doc = lxml.html.fromstring(index)
    return [href for href in doc.xpath("//ol[@class='issues']//h3/a/@href")]


def two_homes(tmp_path):
    """One instance built on Monday, and a second folder on the same database."""
    first, second = tmp_path / "a", tmp_path / "b"
    assert run(first, "import", str(REPO / "content")).exit_code == 0
    assert run(first, "subscriber", "add", "lea@example.org").exit_code == 0
    assert run(first, "build", now=MONDAY).exit_code == 0
    settings = load_settings({"JEUDIS_HOME": str(first)})
    other_env = {"JEUDIS_HOME": str(second), "JEUDIS_DATABASE_URL": settings.db_url}
    return settings, load_settings(other_env), other_env


def test_an_issue_built_on_monday_is_public_at_thursday_8am_on_every_machine(
    tmp_path, live_app, clock
):
    settings, other, _ = two_homes(tmp_path)
    servers = [live_app(create_app(s, clock)) for s in (settings, other)]
    for now in (MONDAY, BEFORE):
        clock.now = now
        for base in servers:
            status, index = get(base, "/archive/")
            assert status == 200 and issue_links(index) == []
            status, feed = get(base, "/archive/feed.atom")
            assert status == 200 and feedparser.parse(feed).entries == []
            assert get(base, PAGE)[0] == 404
    clock.now = AT_EIGHT
    answers = []
    for base in servers:
        index, feed, page = (get(base, p) for p in ("/archive/", "/archive/feed.atom", PAGE))
        assert index[0] == feed[0] == page[0] == 200
        assert [link.rstrip("/").split("/")[-1] for link in issue_links(index[1])] == ["2026-W48"]
        entries = feedparser.parse(feed[1]).entries
        assert [e.link for e in entries] == [f"{settings.base_url}{PAGE}"]
        assert "n°\u00a01" in lxml.html.fromstring(page[1]).text_content()
        answers.append((index[1], feed[1], page[1]))
    assert answers[0] == answers[1]  # the same archive from either machine
    assert get(servers[0], "/archive/2026-W48")[0] == 200  # redirected to the page
    status, door = get(servers[1], "/")  # a machine that never published: the archive's door
    assert status == 200 and b"url=archive/" in door
    assert get(servers[0], "/archive/2026-W47/")[0] == 404


def test_publish_from_another_machine_writes_only_what_is_public(tmp_path):
    _, _, other_env = two_homes(tmp_path)
    out = tmp_path / "public"
    stale = out / "archive" / "2026-W48" / "index.html"  # as an older version published it
    stale.parent.mkdir(parents=True)
    stale.write_text("<html>n°1, six days early</html>")
    early = run(tmp_path / "b", "publish", "--out", str(out), now=BEFORE, env=other_env)
    assert early.exit_code == 0, early.output
    assert "published 0 issue page(s)" in early.stdout
    assert not (out / "archive" / "2026-W48").exists()
    assert feedparser.parse((out / "archive" / "feed.atom").read_bytes()).entries == []
    on_time = run(tmp_path / "b", "publish", "--out", str(out), now=AT_EIGHT, env=other_env)
    assert "published 1 issue page(s)" in on_time.stdout
    assert (out / "archive" / "2026-W48" / "index.html").exists()
    assert len(feedparser.parse((out / "archive" / "feed.atom").read_bytes()).entries) == 1
