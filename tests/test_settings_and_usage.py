"""Settings from jeudis.toml and JEUDIS_*; bad usage and bad input on the pipeline verbs."""

import subprocess
import sys

import pytest
from jeudis_cli import run

from newsletter.cli import COMMANDS
from newsletter.config import load_settings
from newsletter.errors import SettingsError


def test_file_then_environment(tmp_path):
    (tmp_path / "jeudis.toml").write_text(
        'send_time = "07:30"\nsend_rate = 4\nbase_url = "https://jeudis.example.org"\n'
        "send_after_build = true\n",
        encoding="utf-8",
    )
    settings = load_settings({"JEUDIS_HOME": str(tmp_path), "JEUDIS_SEND_RATE": "2.5"})
    assert settings.send_time == "07:30"
    assert settings.send_rate == 2.5
    assert settings.send_after_build is True
    assert settings.base_url == "https://jeudis.example.org"


@pytest.mark.sqlite_only("the default database is a SQLite file in JEUDIS_HOME")
def test_the_default_database_is_a_file_in_home(tmp_path):
    settings = load_settings({"JEUDIS_HOME": str(tmp_path)})
    assert settings.db_url == f"sqlite:///{tmp_path.as_posix()}/jeudis.db"


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ('sned_time = "08:00"\n', {}, "sned_time: unknown setting"),
        ('send_time = "8h"\n', {}, "send_time: '8h' is not HH:MM"),
        ("send_rate = [1]\n", {}, "send_rate"),
        ("", {"JEUDIS_SEND_AFTER_BUILD": "maybe"}, "JEUDIS_SEND_AFTER_BUILD: send_after_build"),
        ("", {"JEUDIS_TIMEZONE": "Europe/Lutece"}, "timezone: 'Europe/Lutece' is not a known"),
        ("", {"JEUDIS_BASE_URL": "jeudis.example.org"}, "base_url:"),
        ("send_time = \n", {}, "jeudis.toml"),
        ('send_day = "jeudi"\n', {}, "jeudis.toml: send_day: 'jeudi' is not one of mon, tue"),
        ('feed_fetch_time = "6h"\n', {}, "jeudis.toml: feed_fetch_time: '6h' is not HH:MM"),
        ("send_rate = 0\n", {}, "jeudis.toml: send_rate: 0.0 must be above 0"),
        ("", {"JEUDIS_WEB_PORT": "70000"}, "JEUDIS_WEB_PORT: web_port: 70000 is not a port"),
        ("", {"JEUDIS_FIRST_ISSUE_NUMBER": "-1"}, "JEUDIS_FIRST_ISSUE_NUMBER: first_issue_number"),
        ('smtp_url = "http://u:secret@relay"\n', {}, "jeudis.toml: smtp_url: must start with"),
    ],
)
def test_bad_settings_are_named(tmp_path, toml, env, message):
    (tmp_path / "jeudis.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_settings({"JEUDIS_HOME": str(tmp_path), **env})


def jeudis_process(home, *args: str) -> subprocess.CompletedProcess:
    """The real `jeudis` in its own process (settings loaded as a user's run loads them)."""
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        capture_output=True,
        text=True,
        env={"JEUDIS_HOME": str(home), "PATH": "/usr/bin"},
    )


@pytest.mark.parametrize(
    ("toml", "line"),
    [
        ('timezone = "Mars/Olympus"\n', "timezone: 'Mars/Olympus' is not a known time zone"),
        (
            'send_day = "jeudi"\n',
            "send_day: 'jeudi' is not one of mon, tue, wed, thu, fri, sat, sun",
        ),
    ],
)
def test_bad_settings_exit_2_naming_file_and_setting(tmp_path, toml, line):
    (tmp_path / "jeudis.toml").write_text(toml, encoding="utf-8")
    for args in (["init"], ["plan"]):
        result = jeudis_process(tmp_path, *args)
        assert result.returncode == 2
        assert result.stderr.strip() == f"error: {tmp_path / 'jeudis.toml'}: {line}"
    assert not (tmp_path / "jeudis.db").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["item", "add", "--title", "x"], "jeudis item add --help"),
        (["plan", "--weeks", "beaucoup"], "jeudis plan --help"),
        (["bogus"], "jeudis --help"),
        (["item", "list", "--status", "lost"], "jeudis item list --help"),
    ],
)
def test_usage_errors_are_one_line_with_where_to_find_help(tmp_path, args, hint):
    result = jeudis_process(tmp_path, *args)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert lines[0].endswith(f"(see `{hint}`)")


def test_help_lists_every_command_without_loading_the_heavy_parts(tmp_path):
    """`jeudis --help` must start fast: no database, template or web stack behind it."""
    probe = (
        "import sys\n"
        "from newsletter.cli import COMMANDS, main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('sqlalchemy', 'sqlmodel', 'alembic', 'jinja2', 'mjml', 'feedparser',\n"
        "         'starlette', 'httpx', 'rich', 'pydantic')\n"
        "print(' '.join(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    loaded, listed = result.stdout.splitlines()[-1], result.stdout
    assert loaded == ""
    for name in COMMANDS:
        assert f"  {name} " in listed


def test_every_listed_command_loads_and_answers_help(tmp_path):
    for name in COMMANDS:
        result = run(tmp_path, name, "--help")
        assert result.exit_code == 0, (name, result.output)
        assert f"Usage: jeudis {name}" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "--date", "jeudi"], "--date: 'jeudi' is not a date"),
        (["preview", "--date", "2026-02-30"], "--date: '2026-02-30' is not a date"),
        (["plan", "--weeks", "0"], "Invalid value for '--weeks'"),
        (["plan", "--weeks", "beaucoup"], "Invalid value for '--weeks'"),
        (["build", "--unknown"], "No such option"),
    ],
)
def test_pipeline_verbs_refuse_bad_input(tmp_path, args, message):
    result = run(tmp_path, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_preview_of_an_empty_queue_is_a_runtime_failure(tmp_path):
    result = run(tmp_path, "preview")
    assert result.exit_code == 1
    assert "no news for 2026-11-26 (2026-W48)" in result.stderr


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = subprocess.run(
        [sys.executable, "-m", "newsletter", "item", "list"],
        capture_output=True,
        text=True,
        env={
            "JEUDIS_HOME": str(tmp_path),
            "PATH": "/usr/bin",
            "JEUDIS_DATABASE_URL": f"sqlite:///{blocker}/jeudis.db",
        },
    )
    assert result.returncode == 1
    assert result.stderr == f"error: database {blocker}/jeudis.db: Not a directory\n"
