"""The README's editor's week, run as written: every `jeudis` line of its shell block."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime

from jeudis_cli import REPO, run

FRIDAY = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # the day the week was tried on
THURSDAY_0805 = datetime(2026, 12, 3, 7, 5, tzinfo=UTC)  # 08:05 in Paris


def editors_week() -> list[str]:
    """The command lines of the README's "An editor's week" block, continuations joined."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## An editor's week\n\n```sh\n(.*?)```", readme, re.DOTALL)
    assert block, "README.md: no shell block under '## An editor's week'"
    text = block[1].replace("\\\n", " ")
    return [line.split("  #")[0].strip() for line in text.splitlines() if line.strip()]


def test_the_week_starts_by_putting_jeudis_on_path():
    first = editors_week()[0]
    assert first.startswith((". .venv/bin/activate", "source .venv/bin/activate", "export PATH="))


def test_the_editors_week_runs_as_written(tmp_path, monkeypatch, smtp_server):
    """Tried as: the README's week built n°1 for nobody, and its item never went out."""
    # The block's paths are relative to the clone (content/) or new (out/): run it in a
    # folder of its own that sees the clone's content.
    (tmp_path / "content").symlink_to(REPO / "content")
    monkeypatch.chdir(tmp_path)
    env = {"JEUDIS_SMTP_URL": smtp_server.url}
    outputs: dict[str, str] = {}
    commands = [shlex.split(line) for line in editors_week()]
    for args in commands:
        if args[0] != "jeudis":
            continue
        result = run(tmp_path / "var", *args[1:], now=FRIDAY, env=env)
        assert result.exit_code == 0, f"{shlex.join(args)}: {result.output}"
        outputs[args[1]] = result.output
    assert {"init", "import", "item", "plan", "subscriber", "build", "send"} <= outputs.keys()
    # The item it adds goes out within the weeks `plan` shows, and nothing is left to expire.
    added = next(args for args in commands if args[:3] == ["jeudis", "item", "add"])
    title = added[added.index("--title") + 1]
    assert title[:40] in outputs["plan"]
    assert "will never go out" not in outputs["plan"]
    # Readers come before the build: the issue goes to them.
    verbs = [args[1] for args in commands if args[0] == "jeudis"]
    assert verbs.index("subscriber") < verbs.index("build")
    # Sending waits for the time; on Thursday at 08:00 the reader gets n°1.
    thursday = run(tmp_path / "var", "send", now=THURSDAY_0805, env=env)
    assert thursday.exit_code == 0, thursday.output
    assert len(smtp_server.handler.messages) == 1
