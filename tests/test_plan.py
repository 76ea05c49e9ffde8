"""`jeudis plan`: the editorial calendar from today's queue, and the runway per kind."""

import functools
import json
import threading
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from jeudis_cli import FIXTURES, MONDAY, REPO, run

FRIDAY = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
on_friday = functools.partial(run, now=FRIDAY)


def plan(home, *args, now=MONDAY):
    result = run(home, "plan", "--json", *args, now=now)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_sample_content_covers_two_months(tmp_path):
    run(tmp_path, "import", str(REPO / "content"))
    view = plan(tmp_path, "--weeks", "9")
    assert [w["thursday"] for w in view["weeks"]][:2] == ["2026-11-26", "2026-12-03"]
    assert all(not w["missing"] for w in view["weeks"])
    assert view["runway"] == {"news": 9, "example": 9, "tool": 9}
    assert [w["number"] for w in view["weeks"]] == list(range(1, 10))
    picked = [item["id"] for w in view["weeks"] for item in w["items"].values()]
    assert len(picked) == len(set(picked)) == 27
    # Pins land on their week.
    by_week = {w["week"]: w for w in view["weeks"]}
    assert "21 mesures" in by_week["2026-W51"]["items"]["news"]["title"]


def test_runway_and_dry_weeks_show_in_advance(tmp_path):
    run(tmp_path, "import", str(FIXTURES / "content" / "good"))
    view = plan(tmp_path, "--weeks", "4")
    # One news (window until 2026-12-31), one example pinned to W49, one tool.
    assert view["runway"] == {"news": 1, "example": 0, "tool": 1}
    assert view["dry_since"] == {
        "news": "2026-12-03",
        "example": "2026-11-26",
        "tool": "2026-12-03",
    }
    assert view["weeks"][1]["items"]["example"]["title"].startswith("Un écosystème")
    text = run(tmp_path, "plan", "--weeks", "4").stdout
    assert "example  0 week(s), 1 queued, runs dry on 2026-11-26" in text
    assert "— dry —" in text


def test_built_weeks_show_their_recorded_items(tmp_path):
    run(tmp_path, "import", str(REPO / "content"))
    before = plan(tmp_path)
    assert run(tmp_path, "build").exit_code == 0
    after = plan(tmp_path)
    assert after["weeks"][0]["built"] is True
    assert after["weeks"][0]["items"] == before["weeks"][0]["items"]
    assert after["weeks"][1]["items"] == before["weeks"][1]["items"]
    assert after["queued"]["news"] == before["queued"]["news"] - 1


@pytest.fixture
def feed_site():
    """The fixture feeds, served as static files on 127.0.0.1."""
    handler = functools.partial(QuietHandler, directory=str(FIXTURES / "feeds"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_proposed_news_count_apart_until_approved(tmp_path, feed_site):
    run(tmp_path, "import", str(FIXTURES / "content" / "good"))
    assert run(tmp_path, "feed", "add", f"{feed_site}/rss2_cdata_entities_fr.xml").exit_code == 0
    fetched = run(tmp_path, "feed", "fetch")
    assert fetched.exit_code == 0, fetched.output
    proposed = json.loads(run(tmp_path, "item", "list", "--status", "proposed", "--json").stdout)
    assert proposed and {p["kind"] for p in proposed} == {"news"}
    view = plan(tmp_path, "--weeks", "4")
    assert view["proposed"]["news"] == len(proposed)
    assert view["queued"]["news"] == 1 and view["runway"]["news"] == 1
    assert (
        f"(+{len(proposed)} proposed, waiting for approval)"
        in run(tmp_path, "plan", "--weeks", "4").stdout
    )

    assert run(tmp_path, "item", "approve", str(proposed[0]["id"])).exit_code == 0
    assert run(tmp_path, "item", "reject", str(proposed[1]["id"])).exit_code == 0
    view = plan(tmp_path, "--weeks", "4")
    assert view["queued"]["news"] == 2 and view["runway"]["news"] == 2
    assert view["proposed"]["news"] == len(proposed) - 2
    # A rejected entry stays hidden when the feed is fetched again.
    run(tmp_path, "feed", "fetch")
    rejected = json.loads(run(tmp_path, "item", "list", "--status", "rejected", "--json").stdout)
    assert [r["id"] for r in rejected] == [proposed[1]["id"]]


def test_items_whose_window_closes_before_their_turn_are_flagged(tmp_path):
    """Tried as: the README's item (`--until 2026-12-31`), added on Friday 2026-11-27 after the
    sample content, never appears in plan before it expires, and nothing says so."""
    on_friday(tmp_path, "import", str(REPO / "content"))
    late = ["--kind", "news", "--title", "Le baromètre", "--url", "https://www.lerameau.fr/"]
    added = run(
        tmp_path, "item", "add", *late, "--until", "2026-12-31", now=FRIDAY.replace(hour=10)
    )
    assert added.exit_code == 0
    queue = json.loads(on_friday(tmp_path, "item", "list", "--json").stdout)
    item = max(queue, key=lambda i: i["id"])
    view = plan(tmp_path, now=FRIDAY)
    picked = {chosen["id"] for w in view["weeks"] for chosen in w["items"].values()}
    assert item["title"] == "Le baromètre" and item["id"] not in picked
    assert view["never"] == [
        {"id": item["id"], "kind": "news", "title": "Le baromètre", "closes": "2026-12-31"}
    ]
    text = on_friday(tmp_path, "plan").stdout
    assert "will never go out" in text
    assert f"#{item['id']} Le baromètre (closes 2026-12-31)" in text

    def edit(*args):
        assert on_friday(tmp_path, "item", "edit", str(item["id"]), *args).exit_code == 0

    edit("--until", "2027-12-31")  # its turn comes in February, well before it closes
    assert plan(tmp_path, now=FRIDAY)["never"] == []
    edit("--until", "2026-12-31", "--priority", "1")  # or it goes out first (after pins)
    view = plan(tmp_path, now=FRIDAY)
    assert view["never"] == []
    [turn] = [w["thursday"] for w in view["weeks"] if w["items"]["news"]["id"] == item["id"]]
    assert turn <= "2026-12-31"
    assert "will never go out" not in on_friday(tmp_path, "plan").stdout
