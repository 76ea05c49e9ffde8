"""Importing content files: good files go in, bad ones are named, re-imports never duplicate."""

import json
import shutil

from jeudis_cli import FIXTURES, REPO, run

from newsletter.content import parse_content
from newsletter.errors import ContentError


def items(home):
    return json.loads(run(home, "item", "list", "--json").stdout)


def test_import_good_files(tmp_path):
    result = run(tmp_path, "import", str(FIXTURES / "content" / "good"))
    assert result.exit_code == 0, result.output
    assert "3 added" in result.stdout
    by_kind = {i["kind"]: i for i in items(tmp_path)}
    assert by_kind["news"]["title"] == "Les études IMPACT : le « jouer collectif » plébiscité"
    assert by_kind["news"]["available_until"] == "2026-12-31"
    assert by_kind["news"]["priority"] == 1
    assert by_kind["news"]["body"].startswith("Un *premier* paragraphe")
    assert by_kind["example"]["pinned_week"] == "2026-W49"
    assert by_kind["tool"]["image_alt"] == "Couverture du kit « jouer collectif »"
    assert {i["status"] for i in items(tmp_path)} == {"queued"}


def test_reimport_is_idempotent_and_updates_changed_files(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(FIXTURES / "content" / "good", content)
    home = tmp_path / "home"
    assert run(home, "import", str(content)).exit_code == 0
    again = run(home, "import", str(content))
    assert "0 added, 0 updated, 3 unchanged" in again.stdout
    tool = content / "tool_plain.md"
    tool.write_text(tool.read_text().replace("Un outil pour", "Un outil révisé pour"))
    third = run(home, "import", str(content))
    assert "0 added, 1 updated, 2 unchanged" in third.stdout
    rows = items(home)
    assert len(rows) == 3
    tool_bodies = [r["body"] for r in rows if r["kind"] == "tool"]
    assert tool_bodies == ["Un outil révisé pour se questionner."]


def test_bad_files_are_named_and_good_ones_still_import(tmp_path):
    result = run(tmp_path / "home", "import", str(FIXTURES / "content" / "mixed"))
    assert result.exit_code == 2
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 6
    assert all(line.startswith("error: ") for line in errors)
    joined = "\n".join(errors)
    assert "bad_missing_title.md: title: is missing" in joined
    assert "bad_date.md:5: until: '2026-13-45' is not a date" in joined
    assert "bad_javascript_url.md:4: url: 'javascript:alert(1)' is not an http(s) URL" in joined
    assert "bad_kind.md:2: kind: 'event' is not one of news, example, tool" in joined
    assert "bad_not_utf8.md: is not UTF-8 text" in joined
    assert "bad_yaml.md:" in joined and "not valid YAML" in joined
    assert "Traceback" not in result.output
    assert "3 added" in result.stdout
    assert len(items(tmp_path / "home")) == 3


def test_reimport_does_not_rewrite_used_or_dropped_items(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(FIXTURES / "content" / "good", content)
    home = tmp_path / "home"
    run(home, "import", str(content))
    tool_id = next(i["id"] for i in items(home) if i["kind"] == "tool")
    assert run(home, "item", "drop", str(tool_id)).exit_code == 0
    tool = content / "tool_plain.md"
    tool.write_text(tool.read_text().replace("Un outil", "Un autre outil"))
    result = run(home, "import", str(content))
    assert "1 already used or dropped" in result.stdout
    dropped = next(i for i in items(home) if i["id"] == tool_id)
    assert dropped["status"] == "dropped" and dropped["body"] == "Un outil pour se questionner."


def test_image_without_alt_is_refused():
    text = (
        "---\nkind: tool\ntitle: T\nurl: https://a.example/\nimage: https://a.example/i.png\n---\n"
    )
    try:
        parse_content(text, "x.md")
    except ContentError as exc:
        assert exc.field == "image_alt" and "text alternative" in exc.reason
    else:
        raise AssertionError("an image without alt text was accepted")


def test_sample_content_imports_cleanly(tmp_path):
    result = run(tmp_path, "import", str(REPO / "content"))
    assert result.exit_code == 0, result.stderr
    kinds = [i["kind"] for i in items(tmp_path)]
    assert min(kinds.count(k) for k in ("news", "example", "tool")) >= 8


def test_import_of_a_missing_folder_is_bad_input(tmp_path):
    result = run(tmp_path, "import", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert "nope: no such file or directory" in result.stderr


def test_a_sub_folder_or_one_file_is_the_same_item_as_through_the_root(tmp_path):
    """Tried as: `jeudis import content/` then `content/news` would add 10 copies."""
    content = tmp_path / "content"
    shutil.copytree(REPO / "content", content)
    home = tmp_path / "home"
    assert run(home, "import", str(content)).exit_code == 0
    before = {i["id"]: i["title"] for i in items(home)}
    assert run(home, "import", str(content / "news")).exit_code == 0
    one = content / "news" / "droit-d-alliance.md"
    result = run(home, "import", str(one))
    assert "0 added, 0 updated, 1 unchanged" in result.stdout
    assert {i["id"]: i["title"] for i in items(home)} == before

    one.write_text(one.read_text(encoding="utf-8").replace('title: "', 'title: "Mis à jour : ', 1))
    updated = run(home, "import", str(one))
    assert "0 added, 1 updated" in updated.stdout
    after = {i["id"]: i["title"] for i in items(home)}
    assert after.keys() == before.keys()
    assert sum(title.startswith("Mis à jour : ") for title in after.values()) == 1


def test_without_a_marker_the_content_dir_setting_is_the_root(tmp_path):
    content = tmp_path / "mine"
    shutil.copytree(FIXTURES / "content" / "good", content / "sub")
    home = tmp_path / "home"
    env = {"JEUDIS_CONTENT_DIR": str(content)}
    assert "3 added" in run(home, "import", str(content / "sub"), env=env).stdout
    again = run(home, "import", str(content), env=env)
    assert "0 added, 0 updated, 3 unchanged" in again.stdout
    assert len(items(home)) == 3
