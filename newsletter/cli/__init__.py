"""The `jeudis` command: one group per noun, verbs for the pipeline."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import click
import sqlalchemy.exc

from newsletter.config import Settings, load_settings
from newsletter.errors import JeudisError
from newsletter.weeks import Clock, system_clock


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


class JeudisGroup(click.Group):
    """Turns the errors users can cause into one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except JeudisError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except sqlalchemy.exc.DBAPIError as exc:  # the database failed under a command
            reason = str(exc.orig or exc).strip().splitlines() or [type(exc.orig).__name__]
            click.echo(f"error: database: {reason[0]}", err=True)
            sys.exit(1)
        except OSError as exc:
            click.echo(f"error: {exc.filename or ''}: {exc.strerror or exc}", err=True)
            sys.exit(1)


pass_app = click.make_pass_decorator(App, ensure=True)


@click.group(cls=JeudisGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jeudis-odd17")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Les Jeudis de l'ODD 17: queue, plan, build and send the weekly flash-info.

    Everything an instance writes lives under $JEUDIS_HOME (default ./var).
    """
    ctx.ensure_object(App)


def _register() -> None:
    from newsletter.cli import (
        delivery,
        demo,
        desk,
        editors,
        feeds,
        issues,
        items,
        pipeline,
        publish,
        returns,
        scheduler,
        subscribers,
        web,
    )

    for module in (
        items,
        issues,
        pipeline,
        subscribers,
        feeds,
        delivery,
        web,
        desk,
        publish,
        demo,
        editors,
        returns,
        scheduler,
    ):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
