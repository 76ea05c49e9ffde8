"""The pick is a pure function of (candidates, Thursday): plain values in, plain values out."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from newsletter.pick import never_out, pick, plan

THU = date(2026, 11, 26)  # 2026-W48
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
_ids = iter(range(1, 10_000))


@dataclass
class Item:
    kind: str
    priority: int = 0
    available_from: date | None = None
    available_until: date | None = None
    pinned_week: str | None = None
    status: str = "queued"
    queued_at: datetime = T0
    created_at: datetime = T0
    id: int = field(default_factory=lambda: next(_ids))


def full_set(**news):
    return [Item("news", **news), Item("example"), Item("tool")]


def test_one_item_of_each_kind():
    items = full_set()
    selection = pick(items, THU)
    assert selection.complete
    assert {k: v.kind for k, v in selection.chosen.items()} == {
        "news": "news",
        "example": "example",
        "tool": "tool",
    }


def test_oldest_queued_wins_among_equals():
    newer = Item("tool", queued_at=T0 + timedelta(days=2))
    older = Item("tool", queued_at=T0)
    assert pick([newer, older], THU)["tool"] is older


def test_higher_priority_beats_older():
    old = Item("tool", queued_at=T0)
    urgent = Item("tool", priority=3, queued_at=T0 + timedelta(days=5))
    assert pick([old, urgent], THU)["tool"] is urgent


def test_pinned_to_the_week_beats_priority():
    urgent = Item("news", priority=9)
    pinned = Item("news", pinned_week="2026-W48")
    assert pick([urgent, pinned], THU)["news"] is pinned


def test_pinned_to_another_week_is_not_allowed():
    elsewhere = Item("news", pinned_week="2026-W49")
    selection = pick([elsewhere], THU)
    assert selection.missing == ("news", "example", "tool")
    assert pick([elsewhere], THU + timedelta(weeks=1))["news"] is elsewhere


def test_window_bounds_are_inclusive():
    starts = Item("news", available_from=THU)
    ends = Item("example", available_until=THU)
    assert pick([starts], THU)["news"] is starts
    assert pick([ends], THU)["example"] is ends
    assert pick([starts], THU - timedelta(days=1)).missing[0] == "news"
    assert "example" in pick([ends], THU + timedelta(days=1)).missing


def test_stale_news_and_future_events_are_skipped():
    stale = Item("news", available_until=THU - timedelta(days=1), priority=5)
    later = Item("news", available_from=THU + timedelta(days=1), priority=5)
    fresh = Item("news")
    assert pick([stale, later, fresh], THU)["news"] is fresh


def test_only_queued_items_are_candidates():
    items = [Item("tool", status=s) for s in ("proposed", "used", "rejected", "dropped")]
    assert pick(items, THU).missing == ("news", "example", "tool")


def test_dry_kind_is_named():
    selection = pick([Item("news"), Item("tool")], THU)
    assert not selection.complete
    assert selection.missing == ("example",)


def test_ties_are_stable_by_id():
    first, second = Item("tool"), Item("tool")
    assert pick([second, first], THU)["tool"] is first


def test_plan_uses_each_item_once_and_measures_the_runway():
    items = [Item("news") for _ in range(3)] + [Item("example") for _ in range(5)]
    items += [Item("tool") for _ in range(5)]
    coming = [THU + timedelta(weeks=n) for n in range(5)]
    calendar = plan(items, coming)
    chosen = [w.chosen["news"].id for w in calendar.weeks if "news" in w.chosen]
    assert len(chosen) == len(set(chosen)) == 3
    assert calendar.runway == {"news": 3, "example": 5, "tool": 5}
    assert calendar.dry_since["news"] == THU + timedelta(weeks=3)
    assert calendar.dry_since["tool"] is None


def test_plan_honours_pins_in_later_weeks():
    pinned = Item("example", pinned_week="2026-W50", priority=-1)
    other = Item("example")
    coming = [THU + timedelta(weeks=n) for n in range(3)]
    calendar = plan([pinned, other], coming)
    assert calendar.weeks[0].chosen["example"] is other
    assert "example" in calendar.weeks[1].missing
    assert calendar.weeks[2].chosen["example"] is pinned
    assert calendar.runway["example"] == 1


def test_among_items_queued_together_the_one_closing_first_goes_first():
    open_ended = Item("news")
    closing = Item("news", available_until=THU + timedelta(weeks=2))
    assert pick([open_ended, closing], THU)["news"] is closing
    older = Item("news", queued_at=T0 - timedelta(days=1))
    assert pick([older, closing], THU)["news"] is older


def test_never_out_names_the_items_whose_window_closes_before_their_turn():
    first = Item("news", queued_at=T0)
    second = Item("news", queued_at=T0 + timedelta(hours=1))
    late = Item("news", queued_at=T0 + timedelta(hours=2), available_until=THU + timedelta(weeks=1))
    patient = Item(
        "news", queued_at=T0 + timedelta(hours=3), available_until=THU + timedelta(weeks=9)
    )
    pinned_past = Item("news", pinned_week="2026-W40")
    unbounded = Item("news", queued_at=T0 + timedelta(hours=4))
    candidates = [first, second, late, patient, pinned_past, unbounded]
    coming = [THU + timedelta(weeks=n) for n in range(4)]
    assert never_out(candidates, plan(candidates, coming)) == [late, pinned_past]
    # Given the first place, the late one goes out and nothing is flagged.
    late.priority = 1
    assert never_out(candidates, plan(candidates, coming)) == [pinned_past]
