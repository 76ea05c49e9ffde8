"""`jeudis log`: each change made from the command line or by the scheduler, with its author."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime

from jeudis_cli import REPO, run

from newsletter.schedule import run_weekly


def log(home) -> list[tuple[str, str, str]]:
    result = run(home.path, "log", "--json", "--limit", "1000", env=home.env)
    assert result.exit_code == 0, result.output
    return [(e["actor"], e["action"], e["target"]) for e in reversed(json.loads(result.stdout))]


def cli(home, *args, input=None):
    result = run(home.path, *args, env=home.env, input=input)
    assert result.exit_code == 0, result.output
    return result


def test_every_cli_change_is_logged_as_the_os_user(home, tmp_path, smtp_server):
    home = home.with_env(JEUDIS_SMTP_URL=smtp_server.url)
    me = f"cli:{getpass.getuser()}"
    cli(home, "import", str(REPO / "content"))
    cli(home, "item", "add", "--kind", "tool", "--title", "Outil", "--url", "https://example.org/o")
    cli(home, "item", "edit", "1", "--priority", "3")
    cli(home, "item", "drop", "1")
    cli(home, "subscriber", "add", "lea@example.org")
    csv = tmp_path / "liste.csv"
    csv.write_text("email\nmax@example.org\n", encoding="utf-8")
    cli(home, "subscriber", "import", str(csv))
    cli(home, "subscriber", "invite", "eve@example.org")
    cli(home, "subscriber", "remove", "max@example.org")
    cli(home, "feed", "add", "https://example.org/flux.xml")
    cli(home, "feed", "remove", "1")
    cli(home, "editor", "add", "alice", "--password-stdin", input="un long mot de passe")
    cli(home, "editor", "password", "alice", "--password-stdin", input="un autre mot de passe")
    cli(home, "editor", "remove", "alice")
    cli(home, "issue", "subject", "2026-W49", "Un objet choisi")
    cli(home, "build", "--date", "2026-11-26")
    cli(home, "build", "--date", "2026-11-26")  # nothing done the second time: nothing logged
    cli(home, "send")
    entries = log(home)
    assert {actor for actor, _, _ in entries} == {me}
    tools = [e[2] for e in entries if e[1] == "item.add"]
    assert [(action, target) for _, action, target in entries] == [
        ("item.import", "file:content"),
        ("item.add", tools[0]),
        ("item.edit", "item:1"),
        ("item.drop", "item:1"),
        ("subscriber.add", "subscriber:1"),
        ("subscriber.import", "file:liste.csv"),
        ("subscriber.invite", "subscriber:3"),
        ("subscriber.remove", "subscriber:2"),
        ("feed.add", "feed:1"),
        ("feed.remove", "feed:1"),
        ("editor.add", "editor:alice"),
        ("editor.password", "editor:alice"),
        ("editor.remove", "editor:alice"),
        ("issue.subject", "issue:2026-W49"),
        ("issue.build", "issue:2026-W48"),
        ("outbox.send", "outbox"),
    ]
    text = cli(home, "log", "--target", "item:1").stdout.splitlines()
    assert [line.split("\t")[2] for line in text] == ["item.drop", "item.edit"]


def test_the_schedulers_build_is_logged_once(home):
    cli(home, "import", str(REPO / "content"))
    cli(home, "subscriber", "add", "lea@example.org")
    friday = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    assert run_weekly(home.settings, lambda: friday).created
    assert run_weekly(home.settings, lambda: friday).already_complete
    assert [e for e in log(home) if e[1] == "issue.build"] == [
        ("scheduler", "issue.build", "issue:2026-W48")
    ]
