"""A real outbox message through SpamAssassin (offline rules): no spam signs, score <= 0."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from jeudis_cli import REPO, run
from render_helpers import long_items, render_items
from render_helpers import settings as render_settings
from test_ledger import make_issue
from test_message import realistic_issue
from test_web_desk import desk_server, send_test  # noqa: F401  (desk_server: the fixture)

from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.delivery import export_outbox, write_issue_outbox
from newsletter.models import Subscriber
from newsletter.render import RenderedIssue

pytestmark = [
    pytest.mark.spamassassin,
    pytest.mark.skipif(shutil.which("spamassassin") is None, reason="spamassassin not installed"),
]

NOW = datetime(2026, 11, 26, 6, 55, tzinfo=UTC)
# Rule families a correctly built newsletter must never trigger, whatever its score.
FORBIDDEN = re.compile(
    r"^(MISSING_\w+|MIME_HTML_ONLY\w*|MIME_HTML_MOSTLY|MIME_QP_LONG_LINE|MPART_ALT_DIFF\w*|"
    r"INVALID_\w+|HEADER_FROM_DIFFERENT_DOMAINS|\w*_NO_TEXT|MSGID_\w+|DATE_IN_\w+|"
    r"TO_NO_BRKTS\w*|FROM_EXCESS_\w+|SUBJ_\w+|HTML_FONT_LOW_CONTRAST|FONT_INVIS\w*)$"
)


def outbox_message(tmp_path: Path, rendered: RenderedIssue) -> bytes:
    env = {"JEUDIS_HOME": str(tmp_path), "JEUDIS_BASE_URL": "https://jeudis.example.org"}
    settings = load_settings(env)
    with open_session(settings) as session:
        issue = make_issue(session)
        assert issue.thursday == date(2026, 11, 26)
        session.add(
            Subscriber(
                email="zoe@example.org",
                name="Zoé Lefèvre-Dupont",
                created_at=NOW,
                status_changed_at=NOW,
            )
        )
        session.commit()
        write_issue_outbox(session, settings, issue, rendered, lambda: NOW)
        report = export_outbox(session, settings, lambda: NOW, tmp_path / "export")
    (path,) = report.directory.glob("*.eml")
    return path.read_bytes()


def spamassassin(tmp_path: Path, message: bytes) -> tuple[float, dict[str, float]]:
    """Score and fired rules from `spamassassin -L -t` (local tests only, no network)."""
    prefs = tmp_path / "user_prefs"
    prefs.touch()
    result = subprocess.run(
        [
            "spamassassin",
            "-L",
            "-t",
            "--prefspath",
            str(prefs),
            "--cf",
            "use_bayes 0",
            "--cf",
            "bayes_auto_learn 0",
        ],  # fmt: skip
        input=message,
        capture_output=True,
        timeout=120,
        check=True,
    )
    report = result.stdout.decode("utf-8", "replace")
    score = float(re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)[1])
    table = report[report.index("Content analysis details") :]
    rules = {
        name: float(points)
        for points, name in re.findall(r"^\s*(-?\d+\.\d+)\s+([A-Z][A-Z0-9_]+)\s", table, re.M)
    }
    return score, rules


def test_hand_written_issue_scores_zero_or_less(tmp_path):
    score, rules = spamassassin(tmp_path, outbox_message(tmp_path, realistic_issue()))
    assert not [rule for rule in rules if FORBIDDEN.match(rule)], rules
    assert score <= 0, rules


def test_rendered_issue_scores_zero_or_less(tmp_path):
    rendered = render_items(long_items(), settings=render_settings())
    score, rules = spamassassin(tmp_path, outbox_message(tmp_path, rendered))
    assert not [rule for rule in rules if FORBIDDEN.match(rule)], rules
    assert score <= 0, rules


# ---- every kind of message, as the relay receives it ------------------------------------------


def relayed(home: Path, smtp_server, *commands: tuple[str, ...]) -> list[bytes]:
    """Run `jeudis` commands then `jeudis send` against a real SMTP server; what arrived."""
    env = {"JEUDIS_SMTP_URL": smtp_server.url, "JEUDIS_BASE_URL": "https://jeudis.example.org"}
    for args in (*commands, ("send", "--now", "--rate", "0")):
        result = run(home, *args, env=env)
        assert result.exit_code == 0, result.output
    return [received.data for received in smtp_server.handler.messages]


def assert_clean(tmp_path: Path, message: bytes) -> None:
    score, rules = spamassassin(tmp_path, message)
    print(f"spamassassin: {score} {rules}")  # shown with -s, for the README's figures
    assert not [rule for rule in rules if FORBIDDEN.match(rule)], rules
    assert score <= 0, rules


def test_sent_issue_scores_zero_or_less(tmp_path, smtp_server):
    home = tmp_path / "home"
    (message,) = relayed(
        home,
        smtp_server,
        ("import", str(REPO / "content")),
        ("subscriber", "add", "zoe@example.org", "--name", "Zoé Lefèvre-Dupont"),
        ("build",),
    )
    assert_clean(tmp_path, message)


def test_sent_confirmation_scores_zero_or_less(tmp_path, smtp_server):
    home = tmp_path / "home"
    (message,) = relayed(home, smtp_server, ("subscriber", "invite", "zoe@example.org"))
    assert_clean(tmp_path, message)


def test_sent_test_copy_scores_zero_or_less(tmp_path, smtp_server, desk_server):  # noqa: F811
    _settings, desk = desk_server(content=REPO / "content", JEUDIS_SMTP_URL=smtp_server.url)
    send_test(desk, "editrice@example.org")
    (received,) = smtp_server.handler.messages
    assert_clean(tmp_path, received.data)
