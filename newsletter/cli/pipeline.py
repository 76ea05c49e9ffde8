"""CLI commands: pipeline."""

COMMANDS: list = []
