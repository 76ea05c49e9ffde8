"""The `jeudis` command: one group per noun, verbs for the pipeline.

Command modules are loaded on demand (click's "lazy group" pattern): `jeudis --help` lists the
table below without importing a command, and `jeudis item list` imports only the list (the
other item commands wait in their own module), so the database, templates and web stacks load
only for the commands that use them.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field

import click

from newsletter.config import Settings, load_settings
from newsletter.errors import JeudisError
from newsletter.weeks import Clock, system_clock

# Adding a command is one line: its name, where it lives ("module:attribute"), its one-line help.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("pipeline:init", "Create or upgrade the instance in $JEUDIS_HOME."),
    "import": ("pipeline:import_", "Import Markdown content files (a folder or one file)."),
    "item": ("items:item", "The queue: add, list, show, edit, drop, approve, reject."),
    "issue": ("issues:issue", "A week's issue before its build: its subject."),
    "plan": ("pipeline:plan_", "The editorial calendar of the coming Thursdays."),
    "preview": ("pipeline:preview", "Render a coming issue without consuming anything."),
    "build": ("pipeline:build", "Pick, record, render and publish an issue; write its outbox."),
    "send": ("delivery:send", "Deliver the outbox to the SMTP relay (resumable)."),
    "outbox": ("delivery:outbox", "The outbox ledger: export an issue's messages (.eml, Maildir)."),
    "subscriber": (
        "subscribers:subscriber",
        "The readers: add, import, list, remove, invite, export, forget.",
    ),
    "feed": ("feeds:feed", "RSS/Atom sources of proposed news: add, list, remove, fetch."),
    "serve": ("web:serve", "The editors' desk, the archive, the unsubscribe pages."),
    "desk-password": ("desk:desk_password", "Print the hash of a desk password."),
    "publish": ("publish:publish", "Write the whole public archive site."),
    "demo": ("demo:demo", "Sample content and readers, then this week's issue."),
    "inbound": ("returns:inbound", "Turn returning mail (bounces, complaints) into reader states."),
    "stats": ("returns:stats", "Per issue: sent, bounces, complaints, unsubscribes, rates."),
    "check": ("returns:check", "Deliverability doctor (no network): links, DKIM, DMARC, DNS."),
    "editor": ("editors:editor", "The desk's accounts: add, list, remove, password."),
    "log": ("editors:log_command", "Who changed what and when, newest first."),
    "scheduler": (
        "scheduler:scheduler",
        "Run the Thursday job, feed fetches and sending until stopped.",
    ),
}


@dataclass
class App:
    """What every command gets: the settings (loaded once, on first use) and the clock."""

    clock: Clock = system_clock
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings


def _database_error(exc: Exception) -> bool:
    # SQLAlchemy is loaded only by the commands that use the database; if it is not loaded,
    # the exception cannot be one of its errors (and importing it here would cost 0.2 s).
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.DBAPIError)


class LazyGroup(click.Group):
    """A group whose commands are imported on first use from `lazy`: name -> "module:attribute"
    (a module of this package)."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.lazy, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy:
            return self.commands.get(cmd_name)
        module, _, attribute = self.lazy[cmd_name].partition(":")
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
        self.add_command(command, cmd_name)
        return command


class JeudisGroup(LazyGroup):
    """Loads commands on demand; turns the errors users can cause into one line and a code."""

    def __init__(self, *args, **kwargs):
        super().__init__(
            *args, lazy={name: where for name, (where, _) in COMMANDS.items()}, **kwargs
        )

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "jeudis"
            message = " ".join(exc.format_message().split())  # click's choice lists span lines
            click.echo(f"error: {message} (see `{where} --help`)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except JeudisError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            # Whoever read our output went away (`jeudis item list --json | head`): stop
            # quietly with 1, as Rich does for its own output; stdout points at /dev/null so
            # the exit's flush cannot fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except OSError as exc:
            click.echo(f"error: {exc.filename or ''}: {exc.strerror or exc}", err=True)
            sys.exit(1)
        except Exception as exc:
            if not _database_error(exc):
                raise
            # The database failed under a command: its first line is the one to show.
            reason = str(exc.orig or exc).strip().splitlines() or [type(exc.orig).__name__]
            click.echo(f"error: database: {reason[0]}", err=True)
            sys.exit(1)


pass_app = click.make_pass_decorator(App, ensure=True)


@click.group(
    "jeudis",
    cls=JeudisGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="jeudis-odd17")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Les Jeudis de l'ODD 17: queue, plan, build and send the weekly flash-info.

    Everything an instance writes lives under $JEUDIS_HOME (default ./var).
    """
    ctx.ensure_object(App)
