"""`jeudis item …` on a real SQLite file: the editors' queue, and bad input on every command."""

import json
import os
import subprocess
import sys

import click
import pytest
from jeudis_cli import run

from newsletter.config import load_settings
from newsletter.db import open_session
from newsletter.items_table import json_ready
from newsletter.queue import list_items


def add(home, *extra, kind="news", title="Une actualité", url="https://www.lerameau.fr/a"):
    return run(home, "item", "add", "--kind", kind, "--title", title, "--url", url, *extra)


def listing(home, *args):
    return json.loads(run(home, "item", "list", "--json", *args).stdout)


def test_add_list_show_edit_drop(tmp_path):
    body = tmp_path / "corps.md"
    body.write_text("Un **corps** en Markdown.", encoding="utf-8")
    result = add(
        tmp_path,
        "--summary",
        "Résumé.",
        "--body-file",
        str(body),
        "--from",
        "2026-11-01",
        "--until",
        "2026-12-31",
        "--week",
        "2026-w49",
        "--priority",
        "2",
    )
    assert result.exit_code == 0, result.output
    [item] = listing(tmp_path)
    assert item["body"] == "Un **corps** en Markdown."
    assert item["pinned_week"] == "2026-W49"
    assert item["available_from"] == "2026-11-01" and item["priority"] == 2
    assert item["status"] == "queued" and item["queued_at"]

    shown = run(tmp_path, "item", "show", str(item["id"]))
    assert "Une actualité" in shown.stdout and "Un **corps**" in shown.stdout

    assert run(tmp_path, "item", "edit", str(item["id"]), "--title", "Nouveau titre").exit_code == 0
    assert listing(tmp_path)[0]["title"] == "Nouveau titre"
    assert listing(tmp_path)[0]["summary"] == "Résumé."

    assert run(tmp_path, "item", "drop", str(item["id"])).exit_code == 0
    assert listing(tmp_path, "--status", "queued") == []
    assert listing(tmp_path, "--status", "dropped")[0]["id"] == item["id"]


def test_list_show_and_the_desk_read_items_alike(tmp_path):
    """`item list` reads the table without the ORM; `item show` and the desk's queue use it."""
    window = ["--from", "2026-11-01", "--until", "2026-12-31", "--week", "2026-W49"]
    image = ["--image", "https://a.example/i.png", "--image-alt", "Une image"]
    assert add(tmp_path, "--summary", "Résumé.", *window, *image, "--priority", "2").exit_code == 0
    assert add(tmp_path, kind="tool", title="Un outil").exit_code == 0
    listed = listing(tmp_path)
    shown = [
        json.loads(run(tmp_path, "item", "show", str(i["id"]), "--json").stdout) for i in listed
    ]
    assert [list(item) for item in shown] == [list(item) for item in listed]  # the same order
    assert shown == listed
    assert listed[0]["available_until"] == "2026-12-31"
    assert listed[0]["created_at"].endswith("+00:00")
    with open_session(load_settings({"JEUDIS_HOME": str(tmp_path)})) as session:
        assert [json_ready(row._asdict()) for row in list_items(session)] == listed


def test_list_filters_by_kind(tmp_path):
    add(tmp_path, kind="news")
    add(tmp_path, kind="tool")
    assert [i["kind"] for i in listing(tmp_path, "--kind", "tool")] == ["tool"]
    table = run(tmp_path, "item", "list")
    assert "2 item(s)" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "javascript:alert(1)"], "url: 'javascript:alert(1)' is not an http(s) URL"),
        (["--url", "pas une url"], "url: 'pas une url' is not an http(s) URL"),
        (["--title", "   "], "title: is empty"),
        (["--from", "2026-02-30"], "--from: '2026-02-30' is not a date"),
        (["--from", "2026-12-01", "--until", "2026-11-01"], "is before from"),
        (["--week", "2026-W54"], "week: '2026-W54' does not exist"),
        (["--week", "next week"], "is not an ISO week"),
        (["--image", "https://a.example/i.png"], "image_alt: an image needs a text alternative"),
        (["--image", "data:image/png;base64,AA", "--image-alt", "x"], "image: 'data:image/png"),
        (["--body-file", "/nonexistent/body.md"], "--body-file: /nonexistent/body.md: no such"),
    ],
)
def test_add_refuses_bad_input_with_one_line(tmp_path, args, message):
    base = {"--kind": "news", "--title": "Titre", "--url": "https://www.lerameau.fr/"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    flat = [part for pair in base.items() for part in pair]
    result = run(tmp_path, "item", "add", *flat)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert listing(tmp_path) == []


def test_usage_errors_exit_2(tmp_path):
    assert (
        run(
            tmp_path,
            "item",
            "add",
            "--kind",
            "event",
            "--title",
            "T",
            "--url",
            "https://a.example/",
        ).exit_code
        == 2
    )
    assert run(tmp_path, "item", "add", "--title", "T").exit_code == 2
    assert run(tmp_path, "item", "list", "--status", "lost").exit_code == 2
    assert run(tmp_path, "item", "show", "abc").exit_code == 2


@pytest.mark.parametrize("verb", ["show", "edit", "drop"])
def test_unknown_id_is_bad_input(tmp_path, verb):
    extra = ["--title", "T"] if verb == "edit" else []
    result = run(tmp_path, "item", verb, "999", *extra)
    assert result.exit_code == 2
    assert "no item with id 999" in result.stderr


def test_edit_without_changes_is_refused(tmp_path):
    add(tmp_path)
    result = run(tmp_path, "item", "edit", "1")
    assert result.exit_code == 2 and "nothing to change" in result.stderr


def test_edit_keeps_the_item_whole_on_bad_input(tmp_path):
    add(tmp_path, "--summary", "Avant.")
    result = run(tmp_path, "item", "edit", "1", "--summary", "Après.", "--url", "ftp://x")
    assert result.exit_code == 2
    assert listing(tmp_path)[0]["summary"] == "Avant."


def test_every_command_answers_help(tmp_path):
    from newsletter.cli import main

    def walk(command, path):
        """Every command, the lazily loaded ones too (list_commands/get_command load them)."""
        yield path
        if isinstance(command, click.Group):
            context = click.Context(command)
            for name in command.list_commands(context):
                yield from walk(command.get_command(context, name), [*path, name])

    paths = list(walk(main, []))
    assert ["item", "show"] in paths and ["subscriber", "import"] in paths
    for path in paths:
        result = run(tmp_path, *path, "--help")
        assert result.exit_code == 0, path
        assert "Usage:" in result.stdout


@pytest.mark.parametrize("taken_out", ["drop", "reject"])
def test_approve_acts_on_proposed_items_only(tmp_path, taken_out):
    """Tried as: `jeudis item approve` on a dropped item would queue it again."""
    assert add(tmp_path).exit_code == 0
    [item] = listing(tmp_path)
    again = run(tmp_path, "item", "approve", str(item["id"]))  # a queued item: no change
    assert again.exit_code == 0
    assert run(tmp_path, "item", taken_out, str(item["id"])).exit_code == 0
    status = listing(tmp_path)[0]["status"]
    result = run(tmp_path, "item", "approve", str(item["id"]))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: item {item['id']}: it is {status}, only a proposed item can be approved"
    ]
    assert listing(tmp_path)[0]["status"] == status


@pytest.mark.parametrize("options", [[], ["--json"]])
def test_a_reader_that_goes_away_stops_the_list_quietly(tmp_path, options):
    """Tried as: `jeudis item list | head -5` printed « error: : Broken pipe »."""
    for n in range(5):
        url = f"https://www.lerameau.fr/{n}"
        assert add(tmp_path, title=f"Une actualité {n}", url=url).exit_code == 0
    env = {**os.environ, "JEUDIS_HOME": str(tmp_path)}
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line is written
    process = subprocess.run(
        [sys.executable, "-m", "newsletter", "item", "list", *options],
        stdout=write, stderr=subprocess.PIPE, env=env, text=True, timeout=60,
    )  # fmt: skip
    os.close(write)
    assert (process.returncode, process.stderr) == (1, "")
