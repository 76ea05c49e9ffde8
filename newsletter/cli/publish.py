"""CLI commands: publish (the public archive site; filled in by its own issue)."""

COMMANDS: list = []
