"""CLI commands: delivery (filled in by its own issue)."""

COMMANDS: list = []
