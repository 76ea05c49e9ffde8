"""The desk's journal (the audit log, for everyone) and readers' data (for admins only):
the right of access (a JSON download) and the right to erasure, as `jeudis subscriber
export|forget` do it.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from newsletter import accounts, privacy
from newsletter.audit import entries, record
from newsletter.db import open_session
from newsletter.subscribers import InvalidAddress, normalise_email
from newsletter.web import auth, guard
from newsletter.web.desk import desk_of, flash

JOURNAL_ROWS = 200


async def journal_page(request: Request) -> Response:
    desk = desk_of(request)

    def load():
        with open_session(desk.settings) as session:
            return entries(session, limit=JOURNAL_ROWS)

    history = await run_in_threadpool(load)
    return desk.page(request, "journal.html", {"history": history, "show_target": True})


def _address(request: Request, raw: object) -> str | None:
    typed = raw.strip() if isinstance(raw, str) else ""
    if not typed:
        return None
    try:
        return normalise_email(typed)
    except InvalidAddress:
        flash(request, f"Adresse invalide : « {typed[:320]} ».", "error")
        return None


async def readers_page(request: Request) -> Response:
    auth.require_admin(request)
    desk = desk_of(request)
    address = _address(request, request.query_params.get("email"))
    data = None
    if address:

        def load():
            with open_session(desk.settings) as session:
                return privacy.export_reader(session, address)

        data = await run_in_threadpool(load)
    return desk.page(
        request,
        "readers.html",
        {
            "address": address or "",
            "data": data,
            "consent_labels": CONSENT_LABELS,
            "status_labels_readers": READER_STATUSES,
        },
    )


READER_STATUSES = {
    "active": "inscrit",
    "pending": "en attente de confirmation",
    "unsubscribed": "désinscrit",
    "bounced": "adresse en erreur",
}
CONSENT_LABELS = {
    "form": "formulaire d’inscription, confirmé par courriel",
    "invitation": "invitation d’un éditeur, confirmée par courriel",
    "import": "import d’une liste par un éditeur",
    "cli": "ajout par un éditeur",
}


async def export_reader(request: Request) -> Response:
    auth.require_admin(request)
    desk = desk_of(request)
    address = _address(request, request.query_params.get("email"))
    if not address:
        return RedirectResponse(str(request.url_for("readers")), status_code=303)
    who = auth.actor(request)

    def load():
        with open_session(desk.settings) as session:
            data = privacy.export_reader(session, address)
            target = f"subscriber:{data['subscriber']['id']}" if data["subscriber"] else ""
            record(session, who, "subscriber.export", target, clock=desk.clock)
            return data

    data = await run_in_threadpool(load)
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="lecteur.json"'},
    )


async def forget_reader(request: Request) -> Response:
    form = await auth.checked_form(request)
    auth.require_admin(request)
    desk = desk_of(request)
    address = _address(request, form.get("email"))
    back = str(request.url_for("readers"))
    if not address:
        return RedirectResponse(back, status_code=303)
    if form.get("confirm") != address:
        flash(request, "Recopiez l’adresse pour confirmer l’effacement.", "error")
        return RedirectResponse(f"{back}?email={address}", status_code=303)
    who = auth.actor(request)

    def forget():
        with open_session(desk.settings) as session:
            return privacy.forget_reader(session, desk.settings, desk.clock, who, address)

    done = await run_in_threadpool(forget)
    flash(
        request,
        f"Données de {address} effacées ({done.deliveries} envoi(s) anonymisé(s)) ; "
        "l’adresse ne sera plus importée."
        if not done.already
        else f"{address} avait déjà été effacée.",
    )
    return RedirectResponse(back, status_code=303)


async def account_page(request: Request) -> Response:
    """The signed-in editor's own password: the current one, then the new one twice."""
    desk = desk_of(request)
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = await auth.checked_form(request)
        errors, status = await _change_password(request, form)
        if not errors:
            flash(request, "Mot de passe changé ; vos autres sessions sont fermées.")
            return RedirectResponse(str(request.url_for("account")), status_code=303)
    else:
        status = 200
    context = {"errors": errors, "password_min": accounts.PASSWORD_MIN}
    return desk.page(request, "account.html", context, status=status)


async def _change_password(request: Request, form) -> tuple[dict[str, str], int]:
    """(errors by field in French, status): nothing changes unless there is no error."""
    desk = desk_of(request)
    current, new, again = (str(form.get(k) or "")[:1024] for k in ("current", "new", "again"))
    if not auth.is_editor(request):
        return {"form": "Aucun compte n’est ouvert : connectez-vous d’abord."}, 403
    if len(new) < accounts.PASSWORD_MIN:
        return {"new": f"Au moins {accounts.PASSWORD_MIN} caractères."}, 422
    if new != again:
        return {"again": "Les deux saisies du nouveau mot de passe diffèrent."}, 422
    name, token = auth.actor(request), request.session.get("sid")
    client = guard.Gate(desk.settings).client_address(request.scope) or "unknown"

    def change() -> None:
        with open_session(desk.settings) as session:
            accounts.change_own_password(session, desk.clock, name, current, new, token, client)

    try:
        await run_in_threadpool(change)
    except accounts.Throttled as exc:
        return {"current": accounts.french_message(exc)}, 429
    except accounts.BadCredentials:
        return {"current": "Ce n’est pas votre mot de passe actuel."}, 401
    return {}, 200


ROUTES = [
    Route("/account", account_page, methods=["GET", "POST"], name="account"),
    Route("/journal", journal_page, name="journal"),
    Route("/readers", readers_page, name="readers"),
    Route("/readers/export", export_reader, name="export_reader"),
    Route("/readers/forget", forget_reader, methods=["POST"], name="forget_reader"),
]
