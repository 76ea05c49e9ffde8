"""The short French pages sent when a request is refused (wrong host, too big, too fast).

They are rendered from templates/web/refused.html without any request state, so the
outermost middleware can send them before a route, a session or a form is touched.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from newsletter.config import Settings

REFUSALS = {
    400: ("Requête refusée", "Ce site ne répond pas sous ce nom."),
    403: (
        "Requête refusée",
        "Ce formulaire ne vient pas de ce site\u00a0: rechargez la page puis recommencez.",
    ),
    408: ("Délai dépassé", "La requête est arrivée trop lentement. Réessayez."),
    413: (
        "Envoi trop volumineux",
        "Les données envoyées dépassent la taille permise. Raccourcissez-les puis réessayez.",
    ),
    429: (
        "Trop de demandes",
        "Trop de demandes sont venues de votre connexion. Réessayez un peu plus tard.",
    ),
}
CSP = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'"


@lru_cache(maxsize=8)
def _environment(templates_dir: Path) -> Environment:
    loader = FileSystemLoader(str(Path(templates_dir) / "web"))
    return Environment(loader=loader, autoescape=select_autoescape(default=True))


def refusal_page(settings: Settings, status: int) -> HTMLResponse:
    """The French page for a refused request (never cached, closes the connection)."""
    title, message = REFUSALS[status]
    contact = settings.reply_to or settings.unsubscribe_mailto
    html = (
        _environment(settings.templates_dir)
        .get_template("refused.html")
        .render(title=title, message=message, contact=contact)
    )
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-store"}
    if status in (408, 413):
        headers["Connection"] = "close"  # the rest of the body is not worth reading
    return HTMLResponse(html, status_code=status, headers=headers)
