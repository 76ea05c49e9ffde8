"""CLI commands: feeds (filled in by its own issue)."""

COMMANDS: list = []
