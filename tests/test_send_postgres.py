"""Two instances on one PostgreSQL database: build and send from both at once, 5 times over.

Two JEUDIS_HOME folders (no shared file), one database; two real `jeudis send` processes
claim rows with SELECT ... FOR UPDATE SKIP LOCKED against one aiosmtpd sink: every reader
gets exactly one copy and every row ends `sent`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime

import pytest
from jeudis_cli import REPO, run
from smtp_server import SmtpServer
from sqlmodel import select
from test_build_concurrency import race

from newsletter import subscribers
from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.models import Delivery, Issue

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
READERS = [f"lecteur{n:03d}@example.org" for n in range(120)]


def two_instances(tmp_path, url):
    homes = [tmp_path / "a", tmp_path / "b"]
    for home in homes:
        home.mkdir()
    env = [{"JEUDIS_HOME": str(h), "JEUDIS_DATABASE_URL": url} for h in homes]
    assert run(homes[0], "import", str(REPO / "content"), env=env[0]).exit_code == 0
    settings = [load_settings(e) for e in env]
    with open_session(settings[0]) as session:
        for address in READERS:
            subscribers.add(session, lambda: MONDAY, address)
    return homes, env, settings


def send_from_both(env, server) -> list[subprocess.CompletedProcess]:
    command = [sys.executable, "-m", "newsletter", "send", "--now", "--rate", "0"]
    processes = [
        subprocess.Popen(command, env={**os.environ, **e, "JEUDIS_SMTP_URL": server.url},
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for e in env
    ]  # fmt: skip
    return [(p, *p.communicate(timeout=300)) for p in processes]


def assert_one_copy_each(settings, server):
    with open_session(settings) as session:
        rows = session.exec(select(Delivery).where(Delivery.purpose == "issue")).all()
    assert sorted(r.recipient for r in rows) == sorted(READERS)  # one row per reader
    assert {r.status for r in rows} == {"sent"}
    counts = Counter(server.handler.message_ids())
    assert set(counts) == {r.message_id for r in rows}
    assert set(counts.values()) == {1}  # nobody got two copies


@pytest.mark.postgres_only("many senders at once need row locks (SQLite runs one at a time)")
@pytest.mark.parametrize("attempt", range(5))
def test_two_instances_build_and_send_at_once_each_reader_one_copy(postgres, tmp_path, attempt):
    homes, env, settings = two_instances(tmp_path, postgres.create())
    errors = race(settings, (date(2026, 11, 26), date(2026, 11, 26)), lambda: MONDAY)
    assert errors == []
    with open_session(settings[1]) as session:
        assert len(session.exec(select(Issue)).all()) == 1
    with SmtpServer() as server:
        results = send_from_both(env, server)
        for process, _out, err in results:
            assert process.returncode == 0, err
        sent = [int(out.split(",")[0].removeprefix("sent: ")) for _, out, _ in results]
        assert sum(sent) == len(READERS)
        assert_one_copy_each(settings[0], server)


@pytest.mark.postgres_only("a build on one machine and the send on another share the database")
def test_built_on_one_instance_sent_from_the_other(postgres, tmp_path):
    homes, env, settings = two_instances(tmp_path, postgres.create())
    assert race(settings[:1], (date(2026, 11, 26),), lambda: MONDAY) == []
    with SmtpServer() as server:
        result = subprocess.run(
            [sys.executable, "-m", "newsletter", "send", "--now", "--rate", "0"],
            env={**os.environ, **env[1], "JEUDIS_SMTP_URL": server.url},
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert_one_copy_each(settings[1], server)
    assert not list(homes[0].rglob("*.eml")) and not list(homes[1].rglob("*.eml"))
