"""CLI commands: web (filled in by its own issue)."""

COMMANDS: list = []
