"""The desk's preview of a coming issue (exactly the email, plus its text part) and test sends.

The preview is `preview_issue`'s render with the unsubscribe mark replaced by a harmless
sample link, as `jeudis preview` writes it. A test send goes through the outbox
(`queue_single`, purpose "test") and the same sender as the Thursday run.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import date

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from newsletter.audit import record
from newsletter.build import calendar, preview_issue
from newsletter.db import open_session
from newsletter.delivery import RelayError, queue_single, send_outbox
from newsletter.delivery.message import compose, personalize, sender_domain
from newsletter.errors import JeudisError, QueueDryError
from newsletter.models import Delivery
from newsletter.render import IssueInfo, RenderedIssue, as_preview, french_date, preview_link
from newsletter.subjects import set_subject
from newsletter.subscribers import InvalidAddress, normalise_email
from newsletter.web import auth
from newsletter.web.desk import KIND_LABELS, Desk, desk_of, flash
from newsletter.weeks import thursdays, upcoming_thursday, week_key

PICKER_WEEKS = 12
_SEND_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# The iframe's document: the email's own markup, and nothing may run in it.
EMAIL_CSP = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; font-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


@dataclass(frozen=True)
class Preview:
    thursday: date
    info: IssueInfo | None = None
    rendered: RenderedIssue | None = None  # as rendered: the unsubscribe mark in place
    html: str = ""  # as shown: the mark replaced by a sample link
    text: str = ""
    problem: str | None = None  # in French, for the editor
    detail: str | None = None  # the service's own words


def sample_link(desk: Desk) -> str:
    """What stands for the reader's unsubscribe link in a preview or a test."""
    return preview_link(desk.settings)


def chosen_thursday(request: Request, desk: Desk) -> date:
    """The Thursday of the week asked for (`?date=`), which must not be past."""
    first = upcoming_thursday(desk.today())
    raw = request.query_params.get("date", "")
    if not raw:
        return first
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise HTTPException(400, f"Date invalide : « {raw} » (attendu : AAAA-MM-JJ).") from None
    thursday = date.fromisocalendar(*day.isocalendar()[:2], 4)
    if thursday < first:
        raise HTTPException(
            400, "Ce jeudi est passé : ses numéros se lisent dans les archives publiques."
        )
    return thursday


def render_preview(desk: Desk, thursday: date) -> Preview:
    """The issue of `thursday` as it stands now, or what keeps it from being composed."""
    try:
        with open_session(desk.settings) as session:
            info, _selection, rendered = preview_issue(
                session, desk.settings, thursday, desk.today()
            )
    except QueueDryError as exc:
        with open_session(desk.settings) as session:
            first = upcoming_thursday(desk.today())
            view = calendar(session, desk.settings, first, (thursday - first).days // 7 + 1)
        missing = [KIND_LABELS[k].lower() for k in view.weeks[-1].selection.missing]
        text = " et ".join(missing) or "élément"
        return Preview(
            thursday,
            problem=f"Ce numéro ne peut pas encore être composé : il manque {text}. "
            "Ajoutez un élément ou approuvez une actualité proposée.",
            detail=str(exc),
        )
    except Exception as exc:  # a template being edited: show it, keep the desk up
        return Preview(
            thursday,
            problem="Le rendu du courriel a échoué (modèle en cours de modification ?).",
            detail=f"{type(exc).__name__}: {exc}",
        )
    shown = as_preview(rendered, desk.settings)
    return Preview(thursday, info, rendered, html=shown.html, text=shown.text)


def _picker(desk: Desk, selected: date) -> list[dict]:
    days = thursdays(desk.today(), PICKER_WEEKS)
    if selected not in days:
        days.append(selected)
    return [
        {
            "iso": d.isoformat(),
            "label": f"{french_date(d)} ({week_key(d)})",
            "selected": d == selected,
        }
        for d in days
    ]


async def preview_page(request: Request) -> Response:
    desk = desk_of(request)
    thursday = chosen_thursday(request, desk)
    preview = await run_in_threadpool(render_preview, desk, thursday)
    return desk.page(
        request,
        "preview.html",
        {
            "preview": preview,
            "date_text": french_date(thursday),
            "week": week_key(thursday),
            "thursdays": _picker(desk, thursday),
            "first_thursday": upcoming_thursday(desk.today()).isoformat(),
            "send_key": secrets.token_urlsafe(18),
            "test_address": request.session.get("test_address", ""),
        },
    )


async def preview_email(request: Request) -> Response:
    desk = desk_of(request)
    preview = await run_in_threadpool(render_preview, desk, chosen_thursday(request, desk))
    if preview.rendered is None:
        body = desk.templates.get_template("preview_problem.html").render(preview=preview)
        return HTMLResponse(body, status_code=409, headers={"Content-Security-Policy": EMAIL_CSP})
    return HTMLResponse(preview.html, headers={"Content-Security-Policy": EMAIL_CSP})


async def preview_text(request: Request) -> Response:
    desk = desk_of(request)
    preview = await run_in_threadpool(render_preview, desk, chosen_thursday(request, desk))
    if preview.rendered is None:
        return PlainTextResponse(f"{preview.problem}\n{preview.detail}\n", status_code=409)
    return PlainTextResponse(preview.text)


# ---- test send ----------------------------------------------------------------------------


def test_message(desk: Desk, preview: Preview, address: str, key: str) -> tuple[str, bytes]:
    """(Message-ID, bytes) of a test copy: « [Test] » subject, sample unsubscribe link."""
    assert preview.info is not None and preview.rendered is not None
    settings = desk.settings
    rendered = replace(preview.rendered, subject=f"[Test] {preview.rendered.subject}")
    template = compose(rendered, settings=settings, issue_week=preview.info.week_key)
    # The key comes from the form: pressing « Envoyer » twice queues one message, not two.
    message_id = f"<test.{preview.info.week_key}.{key}@{sender_domain(settings)}>"
    data = personalize(
        template,
        recipient_email=address,
        recipient_name="",
        message_id=message_id,
        unsubscribe_url=sample_link(desk),
        unsubscribe_mailto=f"mailto:{settings.unsubscribe_mailto}",
        date=desk.clock().astimezone(settings.tz),  # dropped by the ledger, stamped when sent
    )
    return message_id, data


def send_one(desk: Desk, delivery_id: int) -> str:
    """Hand one queued message to the relay through `send_outbox`, and nothing else (a test
    must not take the week's issue along). Returns sent, skipped, bounced, deferred or
    already (sent before); RelayError if the relay cannot be used."""
    with open_session(desk.settings) as session:
        report = send_outbox(
            session, desk.settings, desk.clock, rate=0, sleep=desk.retry_sleep, only=[delivery_id]
        )
    for outcome in ("sent", "skipped", "bounced", "failed", "deferred"):
        if getattr(report, outcome):
            return outcome
    return "already"


def _send_test(desk: Desk, thursday: date, address: str, key: str) -> tuple[str, str]:
    """(kind, French message) for the flash after a test send."""
    preview = render_preview(desk, thursday)
    if preview.rendered is None:
        return "error", f"Pas d'envoi : {preview.problem}"
    message_id, data = test_message(desk, preview, address, key)
    with open_session(desk.settings) as session:
        delivery = queue_single(
            session, desk.settings, "test", address, None, data, message_id, clock=desk.clock
        )
    try:
        outcome = send_one(desk, delivery.id)
    except RelayError as exc:
        return "error", (
            f"Le relais SMTP n'a pas pu être joint ou a refusé la connexion ({exc}). "
            "Le test reste dans la boîte d'envoi : `jeudis send` le réessaiera."
        )
    except JeudisError as exc:
        return "error", f"Envoi impossible pour l'instant ({exc}). Réessayez dans un instant."
    with open_session(desk.settings) as session:
        error = (session.get(Delivery, delivery.id) or delivery).last_error
    return {
        "sent": ("ok", f"Test envoyé à {address}."),
        "already": ("ok", f"Ce test a déjà été envoyé à {address}."),
        "deferred": (
            "error",
            f"Le relais SMTP a refusé le test pour l'instant ({error}). Il reste dans la "
            "boîte d'envoi : `jeudis send` le réessaiera.",
        ),
        "bounced": ("error", f"Le relais SMTP a refusé le test définitivement ({error})."),
        "failed": ("error", f"Le test n'a pas pu être préparé ({error})."),
        "skipped": ("error", f"Le test n'a pas été envoyé ({error})."),
    }[outcome]


async def test_send(request: Request) -> Response:
    desk = desk_of(request)
    form = await auth.checked_form(request)
    auth.require_admin(request)
    root = request.scope.get("root_path", "")
    raw_date = form.get("date")
    try:
        thursday = date.fromisoformat(raw_date if isinstance(raw_date, str) else "")
    except ValueError:
        raise HTTPException(400, "Date invalide.") from None
    back = f"{root}/preview?date={thursday.isoformat()}"
    key = form.get("send_key")
    if not (isinstance(key, str) and _SEND_KEY.match(key)):
        raise HTTPException(400, "Formulaire incomplet : rechargez la page.")
    typed = form.get("address")
    typed = typed.strip() if isinstance(typed, str) else ""
    try:
        address = normalise_email(typed)
    except InvalidAddress:
        flash(request, f"Adresse invalide : « {typed} ». Exemple : prenom.nom@exemple.fr", "error")
        return RedirectResponse(back + "#test-send", status_code=303)
    request.session["test_address"] = address
    kind, text = await run_in_threadpool(_send_test, desk, thursday, address, key)
    who = auth.actor(request)

    def log() -> None:
        with open_session(desk.settings) as session:
            detail = f"to {address}: {text}"
            record(
                session,
                who,
                "issue.test-send",
                f"issue:{week_key(thursday)}",
                detail,
                clock=desk.clock,
            )

    await run_in_threadpool(log)
    flash(request, text, kind)
    return RedirectResponse(back + "#test-send", status_code=303)


def _save_subject(desk: Desk, thursday: date, text: str, who: str) -> tuple[str, str]:
    """(kind, French message) for the flash after the subject form."""
    try:
        with open_session(desk.settings) as session:
            shown = set_subject(session, week_key(thursday), text, desk.clock, who)
    except JeudisError as exc:
        return "error", f"Objet non modifié : {exc}"
    if shown is None:
        return "ok", "Objet effacé : le titre de l’actualité sert d’objet."
    return "ok", f"Objet enregistré : « {shown} »."


async def subject_form(request: Request) -> Response:
    desk = desk_of(request)
    form = await auth.checked_form(request)
    raw_date = form.get("date")
    try:
        thursday = date.fromisoformat(raw_date if isinstance(raw_date, str) else "")
    except ValueError:
        raise HTTPException(400, "Date invalide.") from None
    text = form.get("subject")
    kind, message = await run_in_threadpool(
        _save_subject, desk, thursday, text if isinstance(text, str) else "", auth.actor(request)
    )
    flash(request, message, kind)
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/preview?date={thursday.isoformat()}", status_code=303)


ROUTES = [
    Route("/preview", preview_page, name="preview"),
    Route("/preview/email.html", preview_email, name="preview_email"),
    Route("/preview/email.txt", preview_text, name="preview_text"),
    Route("/preview/test", test_send, methods=["POST"], name="test_send"),
    Route("/preview/subject", subject_form, methods=["POST"], name="subject_form"),
]
