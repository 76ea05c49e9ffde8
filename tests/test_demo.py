"""The README's main job, as a user runs it: `jeudis demo` in a folder, twice."""

import email
import email.policy
import os
import subprocess
import sys

import pytest


def demo(cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JEUDIS_")}
    return subprocess.run(
        [sys.executable, "-m", "newsletter", "demo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def open_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()


@pytest.mark.sqlite_only("the README's demo runs on the embedded SQLite default, always")
def test_demo_builds_this_weeks_issue_in_var_and_is_idempotent(tmp_path):
    first = demo(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "3 message(s) written to the outbox" in first.stdout
    lines = dict(line.split(":", 1) for line in first.stdout.splitlines() if ":" in line)
    # The web copy is announced with its address; it goes public at the send time.
    assert "/archive/20" in lines["web copy"] and "(public from " in lines["web copy"]
    raw = open_bytes(lines["message"].strip())
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/alternative"
    second = demo(tmp_path)
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    assert "3 already there" in second.stdout
    # Nothing is written outside JEUDIS_HOME (./var by default).
    assert [p.name for p in tmp_path.iterdir()] == ["var"]
    instance = {p.name for p in (tmp_path / "var").iterdir()}
    assert {"jeudis.db", "outbox"} <= instance
    assert "secret.key" not in instance  # the secret lives in the database
