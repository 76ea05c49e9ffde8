"""Delivery benchmark: the ledger build and the sender, against plain yardsticks.

    python bench/delivery_bench.py                       # everything below
    python bench/delivery_bench.py --part send --messages 2000
    python bench/delivery_bench.py --part build --sizes 20000,100000

- send: `send_outbox` to a loopback aiosmtpd sink (its own process) against a raw smtplib
  loop sending the same bytes (the messages `send` made, exported first; with DKIM, already
  signed) to the same sink over the same number of connections, without a rate limit.
  Ratio = send / raw, at 1 and 4 connections, without and with DKIM; runs alternate, best of
  --repeat each.
- build: `write_issue_outbox` (the ledger write: the issue's message once, one row per
  reader) for synthetic lists, on SQLite and on PostgreSQL (--pg-url, a throw-away database
  created and dropped), subscribers bulk-inserted first (not timed), best of --repeat.

Prints Markdown tables and the machine, for docs/delivery.md and the README.
"""

from __future__ import annotations

import argparse
import os
import platform
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from newsletter import db  # noqa: E402
from newsletter.config import load_settings  # noqa: E402
from newsletter.db import instance_secret, open_session  # noqa: E402
from newsletter.delivery import send_outbox, write_issue_outbox  # noqa: E402
from newsletter.delivery.claims import ClaimFilter, claim, release  # noqa: E402
from newsletter.delivery.send import _Run, envelope_sender, make_message  # noqa: E402
from newsletter.delivery.signing import dkim_signer  # noqa: E402
from newsletter.models import ContentItem, Delivery, Issue, IssueMessage, Subscriber  # noqa: E402
from newsletter.pick import Selection  # noqa: E402
from newsletter.render import IssueInfo, render  # noqa: E402

THURSDAY = date(2026, 11, 26)
NOW = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
FIRST = ["Zoé", "Jean", "Hélène", "Marc", "Agnès", "Loïc", "Inès", "Paul", "Françoise", "Yann"]
LAST = ["Lefèvre", "Dupont", "Çelik", "Martin", "Bérard", "Nguyen", "Moreau", "Ménard"]
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:55432/postgres"


def clock() -> datetime:
    return NOW


# ------------------------------------------------------------------ an instance


def instance(home: Path, size: int, database_url: str = "", **env: str):
    """Settings for a fresh instance with one issue and `size` active subscribers."""
    values = {"JEUDIS_HOME": str(home), "JEUDIS_BASE_URL": "https://jeudis.example.org", **env}
    if database_url:
        values["JEUDIS_DATABASE_URL"] = database_url
    settings = load_settings(values)
    with open_session(settings) as session:
        ids = []
        for kind in ("news", "example", "tool"):
            item = ContentItem(kind=kind, title=f"Une alliance exemplaire ({kind})",
                               url="https://www.lerameau.fr/", summary="Un résumé. " * 20,
                               body="Un paragraphe de texte. " * 200, status="used",
                               created_at=NOW, updated_at=NOW)  # fmt: skip
            session.add(item)
            session.flush()
            ids.append(item)
        session.add(Issue(week_key="2026-W48", number=48, thursday=THURSDAY, news_id=ids[0].id,
                          example_id=ids[1].id, tool_id=ids[2].id, built_at=NOW))  # fmt: skip
        rows = [
            {"email": f"lecteur.{n}@exemple-{n % 97}.fr",
             "name": f"{FIRST[n % len(FIRST)]} {LAST[n % len(LAST)]}" if n % 5 else "",
             "status": "active", "created_at": NOW, "status_changed_at": NOW}
            for n in range(size)
        ]  # fmt: skip
        for start in range(0, size, 20_000):
            session.execute(sa.insert(Subscriber), rows[start : start + 20_000])
        session.commit()
    return settings


def rendered(settings):
    with open_session(settings) as session:
        items = {i.kind: i for i in session.exec(sa.select(ContentItem)).scalars()}
    info = IssueInfo(48, "2026-W48", THURSDAY, "https://jeudis.example.org/archive/2026-W48/")
    return render(info, Selection(thursday=THURSDAY, chosen=items), settings)


def build(settings) -> tuple[float, int]:
    """Wall time of one ledger build from nothing: the rows and message deleted first and,
    on PostgreSQL, vacuumed away, so each build starts on an empty table as a real one does
    (dead rows left by the previous build slowed the next one by up to a third)."""
    page = rendered(settings)
    with open_session(settings) as session:
        session.execute(sa.delete(Delivery))
        session.execute(sa.delete(IssueMessage))
        session.commit()
        bind = session.get_bind()
        if bind.dialect.name == "postgresql":
            with bind.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "VACUUM ANALYZE delivery"
                )
        issue = session.exec(sa.select(Issue)).scalars().one()
        start = time.perf_counter()
        report = write_issue_outbox(session, settings, issue, page, clock)
        return time.perf_counter() - start, report.written


# ------------------------------------------------------------------ the sink


def sink_main(port: int) -> None:
    """A loopback aiosmtpd server that accepts everything and keeps nothing."""
    from aiosmtpd.controller import Controller

    class Accept:
        async def handle_DATA(self, server, session, envelope):
            return "250 2.0.0 Ok"

    controller = Controller(Accept(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


class Sink:
    def __init__(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, __file__, "sink", str(self.port)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout.readline().strip() == "ready"

    def close(self):
        self.process.kill()
        self.process.wait()


# ------------------------------------------------------------------ send against raw


def requeue(settings) -> None:
    with open_session(settings) as session:
        session.execute(
            sa.update(Delivery).values(status="queued", attempts=0, sent_at=None,
                                       next_attempt_at=None, claimed_by=None, lease_until=None)
        )  # fmt: skip
        session.commit()


def prepared(settings) -> list[tuple[str, str, bytes]]:
    """(envelope sender, recipient, bytes) for every row, made and signed as `send` does."""
    with open_session(settings) as session:
        run = _Run(settings, clock, session.get_bind(), ClaimFilter(NOW), None, None, None,
                   dkim_signer(settings), None, secret=instance_secret(settings))  # fmt: skip
        rows = claim(session, run.me, ClaimFilter(NOW, take_over=True), 10**9)
        out = [(envelope_sender(run, r), r.recipient, make_message(run, session, r)) for r in rows]
        release(session, run.me)
    return out


def timed_send(settings, connections: int) -> float:
    requeue(settings)
    with open_session(settings) as session:
        start = time.perf_counter()
        report = send_outbox(session, settings, clock, rate=0, connections=connections)
        seconds = time.perf_counter() - start
    assert report.sent and report.ok, report.summary()
    return seconds


def timed_raw(port: int, messages, connections: int) -> float:
    shares = [messages[n::connections] for n in range(connections)]

    def loop(share):
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for sender, recipient, data in share:
                smtp.sendmail(sender, [recipient], data)

    threads = [threading.Thread(target=loop, args=(s,)) for s in shares]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def dkim_env(folder: Path) -> dict[str, str]:
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True)  # fmt: skip
    return {"JEUDIS_DKIM_KEY_FILE": str(key), "JEUDIS_DKIM_SELECTOR": "bench",
            "JEUDIS_DKIM_DOMAIN": "lerameau.example.org"}  # fmt: skip


def part_send(args) -> None:
    print(f"\n## send vs raw smtplib, {args.messages} messages, best of {args.repeat}\n")
    print("| DKIM | connections | send (s) | msg/s | raw smtplib (s) | ratio send/raw |")
    print("|---|---:|---:|---:|---:|---:|")
    sink = Sink()
    try:
        for signed in (False, True):
            with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
                env = {"JEUDIS_SMTP_URL": f"smtp://127.0.0.1:{sink.port}"}
                if signed:
                    env.update(dkim_env(Path(tmp)))
                settings = instance(Path(tmp) / "home", args.messages, **env)
                with open_session(settings) as session:
                    issue = session.exec(sa.select(Issue)).scalars().one()
                    write_issue_outbox(session, settings, issue, rendered(settings), clock)
                messages = prepared(settings)
                for connections in (1, 4):
                    ours, raw = [], []
                    for _ in range(args.repeat):
                        ours.append(timed_send(settings, connections))
                        raw.append(timed_raw(sink.port, messages, connections))
                    best, base = min(ours), min(raw)
                    print(f"| {'yes' if signed else 'no'} | {connections} | {best:.2f} | "
                          f"{args.messages / best:,.0f} | {base:.2f} | {best / base:.2f} |",
                          flush=True)  # fmt: skip
    finally:
        sink.close()


# ------------------------------------------------------------------ the build


def part_build(args) -> None:
    print(f"\n## ledger build (write_issue_outbox), best of {args.repeat}\n")
    print("| engine | readers | build (s) | rows/s |")
    print("|---|---:|---:|---:|")
    admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT") if args.pg_url else None
    for size in args.sizes:
        for engine in ("sqlite", "postgresql") if admin else ("sqlite",):
            with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
                url, name = "", f"jeudis_bench_{uuid.uuid4().hex[:12]}"
                if engine == "postgresql":
                    with admin.connect() as conn:
                        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                    url = sa.make_url(args.pg_url).set(database=name).render_as_string(False)
                try:
                    settings = instance(Path(tmp) / "home", size, url)
                    best = min(build(settings)[0] for _ in range(args.repeat))
                    print(f"| {engine} | {size:,} | {best:.2f} | {size / best:,.0f} |", flush=True)
                finally:
                    if url:
                        for engine_ in list(getattr(db, "_engines", {}).values()):
                            engine_.dispose()
                        getattr(db, "_engines", {}).clear()
                        with admin.connect() as conn:
                            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def main() -> None:
    if sys.argv[1:2] == ["sink"]:
        return sink_main(int(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("send", "build", "all"), default="all")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sizes", type=lambda s: [int(n) for n in s.split(",")],
                        default=[20_000, 100_000])  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-url", default=PG_URL, help="'' to skip PostgreSQL")
    parser.add_argument("--tmpdir", default=None)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if args.part in ("send", "all"):
        part_send(args)
    if args.part in ("build", "all"):
        part_build(args)


if __name__ == "__main__":
    main()
