"""An editor's own subject: `jeudis issue subject W "…"` and the desk's preview form."""

from __future__ import annotations

import email
import email.policy

from jeudis_cli import REPO, run
from sqlmodel import select
from test_web_desk import desk_server  # noqa: F401  (the fixture)

from newsletter.audit import entries
from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.models import IssueSubject
from newsletter.typography import NBSP

CHOSEN = "Notre sélection : trois alliances qui changent la donne"
SHOWN = CHOSEN.replace(" :", f"{NBSP}:")


def instance(home):
    assert run(home, "import", str(REPO / "content")).exit_code == 0
    assert run(home, "subscriber", "add", "lecteur@example.org").exit_code == 0
    return load_settings({"JEUDIS_HOME": str(home)})


def test_subject_set_before_the_build_goes_out_with_the_issue(tmp_path):
    settings = instance(tmp_path)
    for _ in range(2):  # pressing twice stores one subject
        result = run(tmp_path, "issue", "subject", "2026-w48", CHOSEN)
        assert result.exit_code == 0, result.output
        assert result.stdout == f"2026-W48: {SHOWN}\n"
    with open_session(settings) as session:
        assert len(session.exec(select(IssueSubject)).all()) == 1
        logged = [e for e in entries(session) if e.action == "issue.subject"]
    assert [(e.target, e.detail) for e in logged] == [("issue:2026-W48", SHOWN)]  # once
    assert logged[0].actor.startswith("cli:")
    assert run(tmp_path, "issue", "subject", "2026-W48").stdout == f"{SHOWN}\n"
    preview = run(tmp_path, "preview", "--date", "2026-11-26")
    assert preview.stdout.splitlines()[0].endswith(f": {SHOWN}")

    assert run(tmp_path, "build").exit_code == 0
    assert run(tmp_path, "outbox", "export", str(tmp_path / "out")).exit_code == 0
    (path,) = (tmp_path / "out").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == SHOWN

    # Built: its messages are written, the subject is history.
    late = run(tmp_path, "issue", "subject", "2026-W48", "Trop tard")
    assert late.exit_code == 2
    assert late.stderr.count("\n") == 1 and "already built" in late.stderr


def test_clear_and_bad_input_are_one_line_and_exit_2(tmp_path):
    instance(tmp_path)
    assert run(tmp_path, "issue", "subject", "2026-W49", CHOSEN).exit_code == 0
    cleared = run(tmp_path, "issue", "subject", "2026-W49", "--clear")
    assert cleared.exit_code == 0 and "cleared" in cleared.stdout
    assert "headline" in run(tmp_path, "issue", "subject", "2026-W49").stdout
    for args, word in (
        (("2026-W49", "x" * 61), "at most 60"),
        (("2026-W54", "Un objet"), "week"),
        (("semaine", "Un objet"), "week"),
    ):
        result = run(tmp_path, "issue", "subject", *args)
        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1 and word in result.stderr, result.stderr


def test_desk_preview_form_sets_the_subject(desk_server):  # noqa: F811
    settings, desk = desk_server(content=REPO / "content")
    doc = desk.doc("/preview?date=2026-12-10")
    form = {
        name: doc.xpath(f'string(//form[@id="subject-form"]//*[@name="{name}"]/@value)')
        for name in ("csrf_token", "date")
    }
    page = desk.follow(desk.http.post("/preview/subject", data={**form, "subject": CHOSEN}))
    assert page.xpath('string(//*[@id="subject"])') == SHOWN
    assert page.xpath('string(//input[@id="f-subject"]/@value)') == SHOWN
    assert run(settings.home, "issue", "subject", "2026-W50").stdout == f"{SHOWN}\n"
    # Emptied: the headline is the subject again.
    page = desk.follow(desk.http.post("/preview/subject", data={**form, "subject": ""}))
    assert page.xpath('string(//*[@id="subject"])') != SHOWN
