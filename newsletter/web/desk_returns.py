"""The desk's delivery figures: per issue, what `jeudis stats` says, in French."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter.db import open_session
from newsletter.errors import InputError
from newsletter.returns import IssueStats, issue_stats
from newsletter.returns.stats import BOUNCE_LIMIT, COMPLAINT_LIMIT
from newsletter.typography import typeset
from newsletter.web.desk import desk_of
from newsletter.weeks import parse_week_key


def percent(value: float) -> str:
    """`0,15 %`: French decimal comma, a narrow no-break space before the sign."""
    return f"{value * 100:.2f}".replace(".", ",") + "\u202f%"


def _alerts(row: IssueStats) -> list[str]:
    alerts = []
    if row.complaint_rate > COMPLAINT_LIMIT:
        alerts.append(
            f"Taux de plaintes de {percent(row.complaint_rate)}, au-dessus de 0,1\u202f% : "
            "les messageries commencent à filtrer la lettre."
        )
    if row.bounce_rate > BOUNCE_LIMIT:
        alerts.append(
            f"Taux de rejets de {percent(row.bounce_rate)}, au-dessus de 2\u202f% : "
            "nettoyez la liste des adresses en échec."
        )
    return [typeset(alert) for alert in alerts]


async def _page(request: Request, week: str | None) -> Response:
    desk = desk_of(request)

    def load():
        with open_session(desk.settings) as session:
            return issue_stats(session, week)

    rows = await run_in_threadpool(load)
    if week and not rows:
        raise HTTPException(404)
    context = {
        "rows": [(row, _alerts(row)) for row in reversed(rows)],
        "week": week,
        "percent": percent,
    }
    return desk.page(request, "issues.html", context)


async def issues_page(request: Request) -> Response:
    return await _page(request, None)


async def issue_page(request: Request) -> Response:
    try:
        week = parse_week_key(request.path_params["week"])
    except InputError:
        raise HTTPException(404) from None
    return await _page(request, week)


ROUTES = [
    Route("/issues", issues_page, name="issues"),
    Route("/issues/{week}", issue_page, name="issue"),
]
