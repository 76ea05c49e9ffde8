"""CLI commands: items."""

COMMANDS: list = []
