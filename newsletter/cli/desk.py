"""`jeudis desk-password`: the hash of the editors' desk password, for jeudis.toml."""

from __future__ import annotations

import sys

import click

from newsletter.errors import InputError
from newsletter.web.auth import PASSWORD_MIN, hash_password


@click.command("desk-password")
@click.option(
    "--stdin", "from_stdin", is_flag=True, help="Read the password from the first line of stdin."
)
def desk_password(from_stdin: bool) -> None:
    """Print a `desk_password_hash` line for jeudis.toml (before named accounts).

    Prefer `jeudis editor add`: while no account exists, this password opens the `admin`
    account, which is moved into the database at its first login.
    """
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            f"Desk password (at least {PASSWORD_MIN} characters)",
            hide_input=True,
            confirmation_prompt=True,
            err=True,
        )
    if not password:
        raise InputError("password: is empty")
    click.echo(f'desk_password_hash = "{hash_password(password)}"')
