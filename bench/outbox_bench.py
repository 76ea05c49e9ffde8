"""Outbox benchmark: how fast and how lean `write_issue_outbox` is, against two yardsticks.

    python bench/outbox_bench.py                      # 10,000 and 100,000 subscribers
    python bench/outbox_bench.py --sizes 1000,20000   # other sizes

For each size, in a fresh temporary JEUDIS_HOME with a real SQLite database (subscribers are
bulk-inserted first, not timed), separate subprocesses measure:

- build: `write_issue_outbox` wall time, messages per second, ru_maxrss growth during it;
- memory: the same build again from scratch under tracemalloc (its own process, so the peaks
  of different sizes do not mix; tracemalloc slows Python down, so it is not timed);
- plain write: the same number of files with the same bytes (1,000 of the built messages,
  read back and cycled) written with the same temp-file-then-os.replace pattern and no other
  work: ratio (a) = build time / plain write time, the cost of everything but the disk;
- naive: per recipient, Jinja (email + text templates) -> MJML compile -> EmailMessage ->
  bytes -> file, on a sample of recipients, extrapolated to the size: ratio (b) = naive / ours.

Prints a Markdown table (and the machine) ready for docs/delivery.md and the README.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from newsletter.config import load_settings  # noqa: E402
from newsletter.db import instance_secret, open_session  # noqa: E402
from newsletter.message import (  # noqa: E402
    message_id_for,
    sender_domain,
    unsubscribe_mailto,
    unsubscribe_url,
)
from newsletter.models import ContentItem, Delivery, Issue, Subscriber  # noqa: E402
from newsletter.outbox import message_date, write_issue_outbox  # noqa: E402
from newsletter.pick import Selection  # noqa: E402
from newsletter.queue import ItemFields  # noqa: E402
from newsletter.render import (  # noqa: E402
    BRAND,
    EMAIL_TEMPLATE,
    MOTTO,
    SECTIONS,
    TEXT_TEMPLATE,
    IssueInfo,
    _compile,
    french_date,
    issue_preheader,
    issue_subject,
    render,
    section_view,
    template_environment,
)
from newsletter.tokens import sign  # noqa: E402

THURSDAY = date(2026, 11, 26)
NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
FIRST = ["Zoé", "Jean", "Hélène", "Marc", "Agnès", "Loïc", "Inès", "Paul", "Françoise", "Yann"]
LAST = ["Lefèvre", "Dupont", "Çelik", "Martin", "Bérard", "Nguyen", "Moreau", "Ménard"]


@dataclass(frozen=True)
class Item(ItemFields):
    """An item as render() reads it: the editor's fields and, from a feed, its source."""

    source_name: str | None = None


def selection() -> Selection:
    """A realistic heavy week: long French bodies with links, lists, quotes and images."""
    paragraph = (
        "Dans le cadre de cette démarche, les acteurs du territoire ont engagé une "
        "co-construction associant associations, entreprises et collectivités. "
        "[Le rapport complet](https://www.lerameau.fr/publications/rapport-2026?source=jeudis) "
        "détaille les **enseignements** et les *conditions de réussite* de ces alliances."
    )
    points = "\n".join(f"- Enseignement n°{n} : une gouvernance partagée" for n in range(1, 9))
    body = "\n\n".join([paragraph] * 6 + [points, "> « Agir ensemble. »"] + [paragraph] * 3)
    chosen = {
        kind: Item(
            kind=kind,
            title=f"Une alliance exemplaire entre associations et entreprises ({kind})",
            url=f"https://www.lerameau.fr/{kind}/alliance-exemplaire-2026",
            summary="Un résumé qui présente l'essentiel et donne envie de lire la suite.",
            body=body,
            image_url=f"https://images.example.org/{kind}/illustration.jpg",
            image_alt=f"Illustration : {kind}",
            source_name="Le RAMEAU",
        )
        for kind in ("news", "example", "tool")
    }
    return Selection(thursday=THURSDAY, chosen=chosen)


def settings_for(home: Path):
    return load_settings(
        {"JEUDIS_HOME": str(home), "JEUDIS_BASE_URL": "https://jeudis.example.org"}
    )


def info() -> IssueInfo:
    return IssueInfo(48, "2026-W48", THURSDAY, "https://jeudis.example.org/archive/2026-W48/")


# ------------------------------------------------------------------ subprocess steps


def step_setup(home: Path, size: int) -> dict:
    """Database with one issue and `size` active subscribers; the rendered issue pickled."""
    settings = settings_for(home)
    with open_session(settings) as session:
        ids = []
        for kind in ("news", "example", "tool"):
            item = ContentItem(kind=kind, title=kind, url="https://www.lerameau.fr/",
                               status="used", created_at=NOW, updated_at=NOW)  # fmt: skip
            session.add(item)
            session.flush()
            ids.append(item.id)
        session.add(Issue(week_key="2026-W48", number=48, thursday=THURSDAY, news_id=ids[0],
                          example_id=ids[1], tool_id=ids[2], built_at=NOW))  # fmt: skip
        rows = [
            {
                "email": f"lecteur.{n}@exemple-{n % 97}.fr",
                "name": f"{FIRST[n % len(FIRST)]} {LAST[n % len(LAST)]}" if n % 5 else "",
                "status": "active",
                "created_at": NOW,
                "status_changed_at": NOW,
            }
            for n in range(size)
        ]
        for start in range(0, size, 20_000):
            session.execute(sa.insert(Subscriber), rows[start : start + 20_000])
        session.commit()
    rendered = render(info(), selection(), settings)
    (home / "rendered.pickle").write_bytes(pickle.dumps(rendered))
    return {"html_bytes": len(rendered.html.encode()), "text_bytes": len(rendered.text.encode())}


def _load(home: Path):
    settings = settings_for(home)
    rendered = pickle.loads((home / "rendered.pickle").read_bytes())
    return settings, rendered


def _reset(home: Path) -> None:
    """Back to "nothing built" (not timed), disk flushed so each phase starts level."""
    settings = settings_for(home)
    with open_session(settings) as session:
        session.execute(sa.delete(Delivery))
        session.commit()
    shutil.rmtree(settings.outbox_dir, ignore_errors=True)
    os.sync()


def _build(home: Path) -> int:
    settings, rendered = _load(home)
    with open_session(settings) as session:
        issue = session.scalars(sa.select(Issue)).one()
        return write_issue_outbox(session, settings, issue, rendered, lambda: NOW).written


def step_reset(home: Path) -> dict:
    _reset(home)
    return {}


def step_build(home: Path) -> dict:
    settings, _ = _load(home)
    with open_session(settings):
        pass  # migrations and imports done before the clock starts
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    written = _build(home)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "written": written,
        "seconds": seconds,
        "cpu_seconds": _cpu(after) - _cpu(before),
        "rss_delta_kib": after.ru_maxrss - before.ru_maxrss,
    }


def _cpu(usage) -> float:
    return usage.ru_utime + usage.ru_stime


def step_memory(home: Path) -> dict:
    _reset(home)
    tracemalloc.start()
    written = _build(home)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"written": written, "tracemalloc_peak": peak}


def step_plain(home: Path, size: int) -> dict:
    """The same bytes to the same disk with nothing else: temp file, write, os.replace."""
    settings, _ = _load(home)
    built = sorted((settings.outbox_dir / "2026-W48").glob("*.eml"))[:1000]
    blobs = [path.read_bytes() for path in built]
    target = home / "plain"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    os.sync()
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    for n in range(size):
        data = blobs[n % len(blobs)]
        tmp = os.path.join(target, f".{n}.eml.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, data)
        os.close(fd)
        os.replace(tmp, os.path.join(target, f"{n}.eml"))
    fd = os.open(target, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    seconds = time.perf_counter() - start
    cpu = _cpu(resource.getrusage(resource.RUSAGE_SELF)) - _cpu(before)
    shutil.rmtree(target)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "message_bytes": sum(map(len, blobs)) // len(blobs),
    }


def step_naive(home: Path, sample: int) -> dict:
    """Per recipient: Jinja -> MJML -> text -> EmailMessage -> file (what we avoid)."""
    settings, _ = _load(home)
    chosen = selection().chosen
    sections = [section_view(spec, chosen[spec.kind]) for spec in SECTIONS]
    base = settings.base_url.rstrip("/")
    context = {
        "brand": BRAND,
        "motto": MOTTO,
        "number": 48,
        "date_text": french_date(THURSDAY),
        "subject": issue_subject(48, sections[0].title),
        "preheader": issue_preheader(sections),
        "sections": sections,
        "web_url": info().web_url,
        "archive_url": f"{base}/archive/",
        "subscribe_url": f"{base}/subscribe",
    }
    env = template_environment(Path(settings.templates_dir))
    secret = instance_secret(settings)
    domain = sender_domain(settings)
    target = home / "naive"
    target.mkdir(exist_ok=True)
    with open_session(settings) as session:
        rows = session.execute(
            sa.select(Subscriber.id, Subscriber.email, Subscriber.name).limit(sample)
        ).all()
    issue = Issue(week_key="2026-W48", number=48, thursday=THURSDAY, news_id=0, example_id=0,
                  tool_id=0, built_at=NOW)  # fmt: skip
    date_header = format_datetime(message_date(settings, issue))
    start = time.perf_counter()
    for subscriber_id, email, name in rows:
        token = sign(secret, "unsubscribe", subscriber_id, email)
        url = unsubscribe_url(settings, token)
        values = dict(context, unsubscribe_url=url)
        html = _compile(env.get_template(EMAIL_TEMPLATE).render(values, public=False))
        text = env.get_template(TEXT_TEMPLATE).render(values)
        msg = EmailMessage()
        msg["From"] = settings.from_address
        msg["To"] = f"{name} <{email}>" if name else email
        msg["Subject"] = context["subject"]
        msg["Date"] = date_header
        msg["Message-ID"] = message_id_for("2026-W48", subscriber_id, domain, secret=secret)
        msg["List-Id"] = f"Les Jeudis de l'ODD 17 <{settings.list_id}>"
        msg["List-Unsubscribe"] = f"<{url}>, <{unsubscribe_mailto(settings, token)}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(text, cte="quoted-printable")
        msg.add_alternative(html, subtype="html", cte="quoted-printable")
        tmp = target / f".{subscriber_id}.eml.tmp"
        tmp.write_bytes(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))
        os.replace(tmp, target / f"{subscriber_id}.eml")
    seconds = time.perf_counter() - start
    shutil.rmtree(target)
    return {"sample": len(rows), "seconds": seconds, "per_message": seconds / len(rows)}


STEPS = {"setup", "reset", "build", "memory", "plain", "naive"}


def run_step(step: str, home: Path, *args: object) -> dict:
    """One step in its own Python process, so memory peaks are that step's alone."""
    command = [sys.executable, __file__, "--step", step, "--home", str(home)]
    command += [str(arg) for arg in args]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# ------------------------------------------------------------------ report


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


def measure(size: int, sample: int, repeat: int, where: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="jeudis-bench-", dir=where) as tmp:
        home = Path(tmp)
        facts = run_step("setup", home, size)
        # The disk of a virtual machine is noisy: alternate the two writers and keep the best
        # run of each, so both meet the same conditions.
        builds, plains = [], []
        for _ in range(repeat):
            run_step("reset", home)  # its own process: deleting rows must not raise our peak
            builds.append(run_step("build", home))
            plains.append(run_step("plain", home, size))
        build = min(builds, key=lambda r: r["seconds"])
        plain = min(plains, key=lambda r: r["seconds"])
        memory = run_step("memory", home)
        naive = run_step("naive", home, min(sample, size))
    assert build["written"] == memory["written"] == size, (build, memory)
    naive_total = naive["per_message"] * size
    return {
        "size": size,
        "seconds": build["seconds"],
        "rate": size / build["seconds"],
        "tracemalloc_mib": memory["tracemalloc_peak"] / 2**20,
        "rss_delta_mib": build["rss_delta_kib"] / 1024,
        "plain_seconds": plain["seconds"],
        "cpu_seconds": build["cpu_seconds"],
        "plain_cpu_seconds": plain["cpu_seconds"],
        "repeat": len(builds),
        "ratio_plain": build["seconds"] / plain["seconds"],
        "naive_sample": naive["sample"],
        "naive_per_message_ms": naive["per_message"] * 1000,
        "naive_seconds": naive_total,
        "ratio_naive": naive_total / build["seconds"],
        "message_kib": plain["message_bytes"] / 1024,
        "html_kib": facts["html_bytes"] / 1024,
    }


def table(results: list[dict]) -> str:
    lines = [
        "| subscribers | build (s) | messages/s | peak tracemalloc | ru_maxrss growth "
        "| plain write (s) | (a) build / plain | naive, extrapolated (s) | (b) naive / build |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['size']:,} | {r['seconds']:.2f} | {r['rate']:,.0f} "
            f"| {r['tracemalloc_mib']:.1f} MiB | {r['rss_delta_mib']:.1f} MiB "
            f"| {r['plain_seconds']:.2f} | {r['ratio_plain']:.2f} "
            f"| {r['naive_seconds']:,.0f} | {r['ratio_naive']:,.0f} |"
        )
    first = results[0]
    notes = [
        "",
        "CPU seconds (user + system), less sensitive to other load than wall time: "
        + ", ".join(
            f"{r['size']:,}: build {r['cpu_seconds']:.2f} s, plain {r['plain_cpu_seconds']:.2f} s"
            for r in results
        )
        + ".",
        f"Machine: {machine()}.",
        f"Message: {first['message_kib']:.0f} KiB on disk (HTML part {first['html_kib']:.0f} KiB "
        f"before encoding). Naive: {first['naive_per_message_ms']:.1f} ms per message, measured "
        f"on {first['naive_sample']} recipients and extrapolated.",
    ]
    if len(results) > 1:
        growth = results[-1]["tracemalloc_mib"] / results[0]["tracemalloc_mib"]
        notes.append(
            f"Peak traced memory at {results[-1]['size']:,} is {growth:.2f}x that at "
            f"{results[0]['size']:,}."
        )
    return "\n".join(lines + notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated list sizes")
    parser.add_argument("--naive-sample", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="best of N build/plain runs")
    parser.add_argument("--tmpdir", help="where the temporary JEUDIS_HOME goes (its disk)")
    parser.add_argument("--json", action="store_true", help="print raw figures as JSON too")
    parser.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.step:
        step = globals()[f"step_{options.step}"]
        print(json.dumps(step(options.home, *(int(a) for a in options.args))))
        return
    results = []
    for size in (int(s.replace("_", "")) for s in options.sizes.split(",")):
        print(f"measuring {size:,} subscribers...", file=sys.stderr)
        results.append(measure(size, options.naive_sample, options.repeat, options.tmpdir))
    if options.json:
        print(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
