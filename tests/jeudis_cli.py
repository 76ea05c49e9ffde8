"""Run the real `jeudis` command in-process against a JEUDIS_HOME, with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner, Result

from newsletter.cli import App, main
from newsletter.config import load_settings

# Monday 2026-11-23 10:00 Paris: the upcoming Thursday is 2026-11-26 (2026-W48).
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).parent.parent


def run(
    home: Path,
    *args: str,
    now: datetime = MONDAY,
    env: dict | None = None,
    input: str | None = None,
) -> Result:
    """`jeudis ARGS` with JEUDIS_HOME=home and the clock stopped at `now` (stdin: `input`)."""
    environ = {"JEUDIS_HOME": str(home), **(env or {})}
    app = App(clock=lambda: now, _settings=load_settings(environ))
    return CliRunner().invoke(
        main, list(args), obj=app, env=environ, catch_exceptions=False, input=input
    )
