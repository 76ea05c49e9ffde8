"""The pick: a pure function of (candidates, Thursday), and the calendar built from it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol

from newsletter.items_table import KINDS
from newsletter.weeks import thursday_of, week_key

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Candidate(Protocol):
    id: int | None
    kind: str
    status: str
    available_from: date | None
    available_until: date | None
    pinned_week: str | None
    priority: int
    queued_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Selection:
    """One item per kind for a Thursday; `missing` names the kinds with nothing to give."""

    thursday: date
    chosen: dict[str, Candidate] = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.missing

    def __getitem__(self, kind: str) -> Candidate:
        return self.chosen[kind]


def allowed_on(item: Candidate, thursday: date) -> bool:
    """Queued, inside its window, and not pinned to another week."""
    if item.status != "queued":
        return False
    if item.available_from and thursday < item.available_from:
        return False
    if item.available_until and thursday > item.available_until:
        return False
    return item.pinned_week in (None, week_key(thursday))


def _rank(item: Candidate, week: str) -> tuple:
    # Pinned to this week first, then higher priority, then the oldest queued; among items
    # queued together (an import), the one whose window closes first, then the id.
    queued = item.queued_at or item.created_at or _EPOCH
    closes = item.available_until or date.max
    return (item.pinned_week != week, -item.priority, queued, closes, item.id or 0)


def pick(candidates: Iterable[Candidate], thursday: date) -> Selection:
    """Choose the week's news, example and tool among the candidates allowed on `thursday`."""
    week = week_key(thursday)
    best: dict[str, Candidate] = {}
    for item in candidates:
        if item.kind not in KINDS or not allowed_on(item, thursday):
            continue
        current = best.get(item.kind)
        if current is None or _rank(item, week) < _rank(current, week):
            best[item.kind] = item
    missing = tuple(kind for kind in KINDS if kind not in best)
    return Selection(thursday=thursday, chosen=best, missing=missing)


@dataclass(frozen=True)
class Calendar:
    """What each coming Thursday would get, and how many weeks each kind lasts."""

    weeks: list[Selection]
    runway: dict[str, int]  # consecutive weeks from the first one that each kind can fill
    dry_since: dict[str, date | None]  # first Thursday a kind cannot fill, if any in range


def plan(candidates: Sequence[Candidate], coming: Sequence[date]) -> Calendar:
    """Simulate the coming Thursdays in order, each pick consuming what it chose."""
    pool = list(candidates)
    used: set[int] = set()
    weeks: list[Selection] = []
    runway = dict.fromkeys(KINDS, 0)
    dry_since: dict[str, date | None] = dict.fromkeys(KINDS, None)
    for thursday in coming:
        selection = pick((c for c in pool if id(c) not in used), thursday)
        weeks.append(selection)
        for kind in KINDS:
            if kind in selection.chosen:
                used.add(id(selection.chosen[kind]))
                if dry_since[kind] is None:
                    runway[kind] += 1
            elif dry_since[kind] is None:
                dry_since[kind] = thursday
    return Calendar(weeks=weeks, runway=runway, dry_since=dry_since)


def closes_on(item: Candidate) -> date | None:
    """The last Thursday an item may go out, if its window or its pin ever closes."""
    pinned = thursday_of(item.pinned_week) if item.pinned_week else None
    dates = [d for d in (item.available_until, pinned) if d is not None]
    return min(dates, default=None)


def never_out(candidates: Iterable[Candidate], simulated: Calendar) -> list[Candidate]:
    """Queued items that the simulated Thursdays never pick although their window closes
    within them: their turn would come too late, so they will never go out."""
    if not simulated.weeks:
        return []
    last = simulated.weeks[-1].thursday
    picked = {id(item) for week in simulated.weeks for item in week.chosen.values()}
    return [
        item
        for item in candidates
        if item.status == "queued"
        and id(item) not in picked
        and (closes := closes_on(item)) is not None
        and closes <= last
    ]
