"""The database edge on both engines: one-line errors, broken SQLite files, file modes, the
instance secret shared by every machine on one database, reconnects after a restart."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from engines import ENGINE
from jeudis_cli import REPO, run
from smtp_server import free_port

from newsletter import subscribers, tokens
from newsletter.config import load_settings
from newsletter.db import alembic_config, forget_engines, instance_secret, make_engine, open_session
from newsletter.web import create_app

ADDRESS = "camille@example.org"


def jeudis(home: Path, *args: str, env: dict | None = None, python: list[str] | None = None):
    """The real `jeudis` in a child process (what an operator types)."""
    environ = {"PATH": os.environ["PATH"], "JEUDIS_HOME": str(home), **(env or {})}
    command_line = python or [sys.executable, "-m", "newsletter"]
    return subprocess.run(
        [*command_line, *args], env=environ, cwd=REPO, capture_output=True, text=True, timeout=120
    )


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# ---------------------------------------------------------------- bad database_url: exit 2


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("jeudis.db", "error: database_url: 'jeudis.db'… is not a database URL"),
        ("mysql://root@127.0.0.1/jeudis", "error: database_url: mysql is not supported"),
        (
            "postgresql+pg8000://postgres@127.0.0.1/jeudis",
            "error: database_url: no driver for postgresql+pg8000",
        ),
    ],
)
def test_a_bad_database_url_is_one_line_and_exit_2(tmp_path, url, message):
    result = run(tmp_path, "item", "list", env={"JEUDIS_DATABASE_URL": url})
    assert result.exit_code == 2
    assert one_line(result.stderr).startswith(message)


def test_a_missing_postgresql_driver_names_the_extra_to_install(tmp_path):
    # A real process where psycopg cannot be imported, as on a machine without the extra.
    no_psycopg = [
        sys.executable,
        "-c",
        "import sys; sys.modules['psycopg'] = None; from newsletter.cli import main; main()",
    ]
    url = "postgresql://postgres@127.0.0.1:5432/jeudis"
    result = jeudis(tmp_path, "init", env={"JEUDIS_DATABASE_URL": url}, python=no_psycopg)
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert line.startswith("error: database_url: no driver for postgresql+psycopg")
    assert line.endswith("pip install 'jeudis-odd17[postgres]'")


def test_an_unreachable_database_is_one_line_naming_host_and_port(tmp_path):
    pytest.importorskip("psycopg", reason="psycopg not installed: pip install -e '.[postgres]'")
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/jeudis"
    result = jeudis(tmp_path, "item", "list", env={"JEUDIS_DATABASE_URL": url})
    assert result.returncode == 1
    assert one_line(result.stderr).startswith(
        f"error: database 127.0.0.1:{port}/jeudis is unreachable: "
    )


# ---------------------------------------------------------------- broken SQLite files: exit 2


def corrupt_header(path: Path) -> None:
    path.write_bytes(b"these are not the pages you are looking for\n" * 100)


def corrupt_pages(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # page 1 after the header: the schema
    path.write_bytes(bytes(data))


@pytest.mark.sqlite_only("the database is a SQLite file in JEUDIS_HOME")
@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda path: path.write_bytes(b""), "the file is empty"),
        (corrupt_header, "no SQLite header"),
        (corrupt_pages, ""),
    ],
    ids=["zero-byte", "not-sqlite", "corrupt-pages"],
)
def test_a_broken_sqlite_file_is_one_line_and_never_a_new_instance(tmp_path, damage, reason):
    home = tmp_path / "var"
    assert run(home, "init").exit_code == 0
    forget_engines()  # as a new process would: nothing of the instance kept open
    db = home / "jeudis.db"
    damage(db)
    before = db.read_bytes()
    expected = f"error: database {db} is not a SQLite database (or is corrupt): {reason}"
    for args in (("init",), ("subscriber", "add", ADDRESS)):
        result = run(home, *args)
        assert result.exit_code == 2, result.output
        assert one_line(result.stderr).startswith(expected)
    result = jeudis(home, "item", "list")  # and in a process of its own
    assert result.returncode == 2
    assert one_line(result.stderr).startswith(expected)
    assert db.read_bytes() == before  # nothing written over it


@pytest.mark.sqlite_only("the database is a SQLite file in JEUDIS_HOME")
def test_instance_files_are_for_their_owner_only(tmp_path):
    home = tmp_path / "var"
    assert run(home, "init").exit_code == 0
    assert run(home, "subscriber", "add", ADDRESS).exit_code == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    files = [p for p in home.iterdir() if p.name.startswith("jeudis.db")]
    assert {p.name for p in files} >= {"jeudis.db"}
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o600 for p in files}
    assert not (home / "secret.key").exists()  # the secret lives in the database


# ---------------------------------------------------------------- the secret: one per database


def shared_database(tmp_path: Path, postgres_databases) -> str:
    """One database two instance folders point at: a PostgreSQL database, or a SQLite file."""
    if postgres_databases is not None:
        return postgres_databases.create()
    return f"sqlite:///{tmp_path / 'shared.db'}"


def test_two_machines_on_one_database_verify_each_others_links(
    tmp_path, clock, live_app, postgres_databases
):
    url = shared_database(tmp_path, postgres_databases)
    homes = [tmp_path / "machine-a", tmp_path / "machine-b"]
    for home in homes:
        assert run(home, "init", env={"JEUDIS_DATABASE_URL": url}).exit_code == 0
    a, b = (load_settings({"JEUDIS_HOME": str(h), "JEUDIS_DATABASE_URL": url}) for h in homes)
    with open_session(a) as session:
        reader = subscribers.add(session, clock, ADDRESS).subscriber
    link = subscribers.unsubscribe_url(a, reader)  # signed on machine A
    forget_engines()  # machine B is another process: nothing cached from A
    with httpx.Client(base_url=live_app(create_app(b, clock)), timeout=10) as client:
        response = client.post("/" + link.split("/", 3)[3])  # answered by machine B
    assert response.status_code == 200, response.text
    with open_session(a) as session:
        assert subscribers.find(session, ADDRESS).status == "unsubscribed"
    assert not any((h / "secret.key").exists() for h in homes)


def test_an_upgraded_instance_keeps_its_secret_key_and_old_links_verify(tmp_path, clock):
    home = tmp_path / "var"
    settings = load_settings({"JEUDIS_HOME": str(home)})
    engine = make_engine(settings)
    command.upgrade(alembic_config(engine, home), "0001")  # the schema before this change
    old_key = os.urandom(32)
    (home / "secret.key").write_text(old_key.hex())
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO subscriber (email, name, status, created_at, status_changed_at) "
                "VALUES (:email, '', 'active', :now, :now)"
            ),
            {"email": ADDRESS, "now": datetime(2026, 11, 1, 9, 0)},
        )
    engine.dispose()
    old_link_token = tokens.sign(old_key, "unsubscribe", 1, ADDRESS)

    assert jeudis(home, "init").returncode == 0  # the upgrade
    assert instance_secret(settings) == old_key
    with open_session(settings) as session:
        assert subscribers.unsubscribe(session, settings, clock, old_link_token).id == 1


def test_a_fresh_instance_gets_its_own_secret(tmp_path):
    one, two = (load_settings({"JEUDIS_HOME": str(tmp_path / name)}) for name in ("one", "two"))
    assert len(instance_secret(one)) == 32
    assert instance_secret(one) != instance_secret(two)
    forget_engines({one.db_url})
    assert instance_secret(one) == instance_secret(one)  # read back, not made again


def test_the_secret_setting_wins_over_the_database(tmp_path, clock):
    secret = os.urandom(32).hex()
    one, two = (
        load_settings({"JEUDIS_HOME": str(tmp_path / name), "JEUDIS_SECRET": secret})
        for name in ("one", "two")
    )
    assert instance_secret(one) == instance_secret(two) == bytes.fromhex(secret)
    result = jeudis(tmp_path / "three", "item", "list", env={"JEUDIS_SECRET": "tooshort"})
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        "error: JEUDIS_SECRET: secret: must be at least 64 hexadecimal characters"
    )


# ---------------------------------------------------------------- restarts, races


@pytest.mark.postgres_only("terminates the server processes of a PostgreSQL database")
def test_the_desk_answers_after_the_database_dropped_its_connections(
    home, clock, live_app, postgres
):
    settings = home.settings
    with httpx.Client(base_url=live_app(create_app(settings, clock)), timeout=10) as client:
        assert client.get("/desk/").status_code == 200
        assert postgres.terminate_connections(settings.db_url) >= 1  # as a restart does
        response = client.get("/desk/")
    assert response.status_code == 200, response.text


def test_three_machines_initialising_one_new_database_at_once(tmp_path, postgres_databases):
    url = shared_database(tmp_path, postgres_databases)
    env = {"PATH": os.environ["PATH"], "JEUDIS_DATABASE_URL": url}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "newsletter", "init"],
            env={**env, "JEUDIS_HOME": str(tmp_path / name)},
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b", "c")
    ]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM instance_secret")).scalar() == 1
    engine.dispose()


def test_the_engine_under_test_is_the_one_asked_for(home):
    assert home.settings.db_url.startswith(
        {"sqlite": "sqlite:", "postgresql": "postgresql"}[ENGINE]
    )
