"""The desk's item form (add, edit) and the review of proposed news (approve, reject).

Fields are checked here first so that each one gets its own message in French, beside it;
`newsletter.queue.validate` (through add_item / edit_item) stays the final authority.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import date
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from newsletter.audit import entries, record
from newsletter.db import open_session
from newsletter.errors import ConflictError, InputError, NotFoundError
from newsletter.items_table import KINDS
from newsletter.models import ContentItem
from newsletter.queue import (
    SUMMARY_MAX,
    TITLE_MAX,
    ItemFields,
    add_item,
    approve_item,
    check_url,
    edit_item,
    fields_of,
    reject_item,
)
from newsletter.web import auth
from newsletter.web.desk import KIND_LABELS, desk_of, flash
from newsletter.weeks import parse_week_key

FIELDS = (
    "kind",
    "title",
    "url",
    "summary",
    "body",
    "image_url",
    "image_alt",
    "available_from",
    "available_until",
    "pinned_week",
    "priority",
)
# The field names in queue.validate's messages ("until: ...") and the form's names.
_ERROR_FIELDS = {"image": "image_url", "from": "available_from", "until": "available_until"}
_ERROR_FIELDS |= {"week": "pinned_week", **{name: name for name in FIELDS}}
_URL_HELP = "Indiquez une adresse web complète, qui commence par https:// (ou http://)."


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _date(value: str, errors: dict[str, str], name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[name] = "Date invalide : choisissez un jour dans le calendrier (AAAA-MM-JJ)."
        return None


def read_item_form(form: FormData) -> tuple[ItemFields | None, dict[str, str], dict[str, str]]:
    """(fields or None, errors by field in French, what was typed to refill the form)."""
    typed = {name: _text(form, name) for name in FIELDS}
    typed["body"] = form.get("body") if isinstance(form.get("body"), str) else ""
    errors: dict[str, str] = {}
    if typed["kind"] not in KINDS:
        errors["kind"] = "Choisissez un type : actualité, exemple inspirant ou outil."
    title = " ".join(typed["title"].split())
    if not title:
        errors["title"] = "Le titre est obligatoire."
    elif len(title) > TITLE_MAX:
        errors["title"] = f"Le titre fait {len(title)} caractères : {TITLE_MAX} au plus."
    for name in ("url", "image_url"):
        if typed[name] or name == "url":
            try:
                check_url(typed[name], name)
            except InputError:
                errors[name] = (
                    "L'adresse est obligatoire." if not typed[name] and name == "url" else _URL_HELP
                )
    summary = " ".join(typed["summary"].split())
    if len(summary) > SUMMARY_MAX:
        errors["summary"] = f"Le résumé fait {len(summary)} caractères : {SUMMARY_MAX} au plus."
    if typed["image_url"] and not typed["image_alt"]:
        errors["image_alt"] = (
            "Une image doit avoir un texte alternatif : décrivez-la en quelques mots."
        )
    start = _date(typed["available_from"], errors, "available_from")
    end = _date(typed["available_until"], errors, "available_until")
    if start and end and start > end:
        errors["available_until"] = "La fin de la période précède son début."
    week = None
    if typed["pinned_week"]:
        try:
            week = parse_week_key(typed["pinned_week"])
        except InputError:
            errors["pinned_week"] = "Semaine invalide : écrivez-la comme 2026-W48."
    priority = 0
    if typed["priority"]:
        if re.fullmatch(r"[+-]?\d{1,6}", typed["priority"]):
            priority = int(typed["priority"])
        else:
            errors["priority"] = "La priorité doit être un nombre entier (0 par défaut)."
    if errors:
        return None, errors, typed
    fields = ItemFields(
        kind=typed["kind"],
        title=title,
        url=typed["url"],
        summary=summary,
        body=typed["body"],
        image_url=typed["image_url"] or None,
        image_alt=typed["image_alt"] or None,
        available_from=start,
        available_until=end,
        pinned_week=week,
        priority=priority,
    )
    return fields, errors, typed


def service_error(exc: InputError) -> dict[str, str]:
    """A refusal from the queue service, put beside the field it names."""
    name, _, reason = str(exc).partition(": ")
    field = _ERROR_FIELDS.get(name)
    if field is None:
        return {"form": f"Enregistrement refusé : {exc}"}
    return {field: f"Valeur refusée ({reason})."}


def _typed_from(row: ContentItem) -> dict[str, str]:
    values = asdict(fields_of(row))
    return {name: "" if values[name] is None else str(values[name]) for name in FIELDS}


def _form_page(
    request: Request,
    typed: dict[str, str],
    errors: dict[str, str],
    item: ContentItem | None = None,
) -> Response:
    desk = desk_of(request)
    history = []
    if item is not None:
        with open_session(desk.settings) as session:
            history = entries(session, target=f"item:{item.id}", limit=100)
    context: dict[str, Any] = {
        "item": item,
        "history": history,
        "values": typed,
        "errors": errors,
        "kinds": KINDS,
        "title_max": TITLE_MAX,
        "summary_max": SUMMARY_MAX,
        "locked": item is not None and item.status not in ("queued", "proposed"),
    }
    return desk.page(request, "item_form.html", context, status=422 if errors else 200)


async def new_item(request: Request) -> Response:
    desk = desk_of(request)
    if request.method == "GET":
        kind = request.query_params.get("kind", "news")
        typed = dict.fromkeys(FIELDS, "") | {"kind": kind if kind in KINDS else "news"}
        return _form_page(request, typed, {})
    form = await auth.checked_form(request)
    fields, errors, typed = read_item_form(form)
    if fields is None:
        return _form_page(request, typed, errors)

    who = auth.actor(request)

    def save() -> ContentItem:
        with open_session(desk.settings) as session:
            row = add_item(session, fields, desk.clock, source="desk")
            record(session, who, "item.add", f"item:{row.id}", row.title, clock=desk.clock)
            return row

    try:
        row = await run_in_threadpool(save)
    except InputError as exc:
        return _form_page(request, typed, service_error(exc))
    desk.live.bump()
    flash(request, f"« {row.title} » est dans la file ({KIND_LABELS[row.kind].lower()}).")
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/?added={row.id}#item-{row.id}", status_code=303)


def _load(request: Request) -> ContentItem:
    desk = desk_of(request)
    with open_session(desk.settings) as session:
        row = session.get(ContentItem, request.path_params["item_id"])
    if row is None:
        raise HTTPException(404, "Cet élément n'existe pas (ou plus).")
    return row


async def item_page(request: Request) -> Response:
    desk = desk_of(request)
    row = await run_in_threadpool(_load, request)
    if request.method == "GET":
        return _form_page(request, _typed_from(row), {}, row)
    form = await auth.checked_form(request)
    fields, errors, typed = read_item_form(form)
    if fields is None:
        return _form_page(request, typed, errors, row)

    who = auth.actor(request)

    def save() -> ContentItem:
        with open_session(desk.settings) as session:
            saved = edit_item(session, row.id, asdict(fields), desk.clock)
            record(session, who, "item.edit", f"item:{row.id}", saved.title, clock=desk.clock)
            return saved

    try:
        saved = await run_in_threadpool(save)
    except ConflictError:
        message = "Cet élément a déjà été envoyé ou retiré : il ne peut plus être modifié."
        return _form_page(request, typed, {"form": message}, row)
    except InputError as exc:
        return _form_page(request, typed, service_error(exc), row)
    desk.live.bump()
    flash(request, f"« {saved.title} » est enregistré.")
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/#item-{saved.id}", status_code=303)


async def review_item(request: Request) -> Response:
    """Approve (queue) or reject a proposed news item."""
    desk = desk_of(request)
    form = await auth.checked_form(request)
    action = form.get("action")
    if action not in ("approve", "reject"):
        raise HTTPException(400, "Action inconnue : approuver ou rejeter.")
    item_id = request.path_params["item_id"]
    who = auth.actor(request)

    def apply() -> ContentItem:
        with open_session(desk.settings) as session:
            review = approve_item if action == "approve" else reject_item
            row = review(session, item_id, desk.clock)
            record(session, who, f"item.{action}", f"item:{row.id}", row.title, clock=desk.clock)
            return row

    try:
        row = await run_in_threadpool(apply)
    except NotFoundError:
        raise HTTPException(404, "Cet élément n'existe pas (ou plus).") from None
    except ConflictError:
        flash(request, "Cet élément n’est plus proposé : il ne peut plus être revu.", "error")
    else:
        desk.live.bump()
        verb = "approuvée : elle est dans la file" if action == "approve" else "rejetée"
        flash(request, f"Actualité « {row.title} » {verb}.")
    root = request.scope.get("root_path", "")
    back = _text(form, "back")
    return RedirectResponse(
        f"{root}{back if back.startswith('/') and not back.startswith('//') else '/queue'}",
        status_code=303,
    )


ROUTES = [
    Route("/items/new", new_item, methods=["GET", "POST"], name="new_item"),
    Route("/items/{item_id:int}", item_page, methods=["GET", "POST"], name="item"),
    Route("/items/{item_id:int}/review", review_item, methods=["POST"], name="review_item"),
]
