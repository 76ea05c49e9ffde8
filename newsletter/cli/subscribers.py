"""CLI commands: subscribers."""

COMMANDS: list = []
