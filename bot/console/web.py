"""The console's aiohttp application: the route table, the session guard and the headers.

Every route is declared once in `ROUTES` with the roles that may open it; `None` marks the
only public ones (the login link's page, its form, the style sheet). The guard refuses any
other request without a live session (401), with the wrong role (403, audited) or, for a
POST, without the session's form token (403). Nothing changes state on a GET except the audit
event every page view writes. Every response carries a strict Content-Security-Policy: the
console has no script at all, and loads nothing from anywhere but itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from aiohttp import web

from bot.console.sessions import ConsoleAuth, Viewer, csrf_for, csrf_matches
from bot.domain import Role
from bot.i18n import I18n
from bot.rendering.formatting import format_datetime

if TYPE_CHECKING:
    from bot.console.queries import ConsoleQueries
    from bot.services.revocation import RevocationService
    from bot.services.status import StatusService
    from storage.audit import AuditChain
    from storage.db import Database

HERE = Path(__file__).parent
COOKIE = "daraja_console"
CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The login link carries its token: never hand the address to another site. (Not
    # `no-referrer`: browsers then send `Origin: null` on our own forms, which login checks.)
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
DEPS: web.AppKey[ConsoleDeps] = web.AppKey("deps")
VIEWER: web.RequestKey[Viewer] = web.RequestKey("viewer", Viewer)
TOKEN: web.RequestKey[str] = web.RequestKey("session_token", str)
FORM: web.RequestKey[Any] = web.RequestKey("form", object)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AUDITOR = frozenset({Role.AUDITOR})
COMMANDER = frozenset({Role.COMMANDER})
ADMIN = frozenset({Role.ADMIN})
EVERY_ROLE = AUDITOR | COMMANDER | ADMIN
HOME = {
    Role.AUDITOR: "/console/log",
    Role.COMMANDER: "/console/board",
    Role.ADMIN: "/console/people",
}


@dataclass
class ConsoleDeps:
    """What the pages read through (built by `bot.console.server.build_deps`)."""

    auth: ConsoleAuth
    queries: ConsoleQueries
    i18n: I18n
    db: Database
    chain: AuditChain
    status: StatusService | None = None
    revocation: RevocationService | None = None
    models_dir: Path | None = None
    timezone: str = "America/Port-au-Prince"
    default_language: str = "en"
    secure_cookie: bool = False
    clock: Callable[[], datetime] = field(default=datetime.now)
    templates: jinja2.Environment = field(init=False)

    def __post_init__(self) -> None:
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )


@dataclass(frozen=True)
class Route:
    """One console route: who may open it (None: public) and the audit name of the page."""

    method: str
    path: str
    handler: Handler
    roles: frozenset[Role] | None
    page: str


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    """A page in the viewer's language (or the deployment's before login)."""
    deps = request.app[DEPS]
    viewer = request.get(VIEWER)
    asked = context.pop("lang", None)
    lang = viewer.language if viewer else asked or deps.default_language

    def t(key: str, **params: Any) -> str:
        return deps.i18n.t(key, lang, **params)

    def when(value: datetime | None) -> str:
        return format_datetime(value, lang, deps.timezone) if value is not None else "-"

    token = request.get(TOKEN)
    html = deps.templates.get_template(template).render(
        t=t,
        when=when,
        lang=lang,
        viewer=viewer,
        csrf=csrf_for(token) if token else "",
        nav=_nav(viewer),
        path=request.path,
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def refuse(
    request: web.Request, status: int, key: str, *, lang: str | None = None
) -> web.Response:
    """A refusal page that shows nothing of the operation."""
    deps = request.app[DEPS]
    return render(
        request,
        "refused.html",
        status=status,
        message_key=key,
        lang=lang or deps.default_language,
    )


def _nav(viewer: Viewer | None) -> list[tuple[str, str]]:
    if viewer is None:
        return []
    items = {
        Role.AUDITOR: [
            ("/console/log", "console.nav_log"),
            ("/console/verify", "console.nav_verify"),
        ],
        Role.COMMANDER: [
            ("/console/board", "console.nav_board"),
            ("/console/flash", "console.nav_flash"),
        ],
        Role.ADMIN: [
            ("/console/people", "console.nav_people"),
            ("/console/codes", "console.nav_codes"),
            ("/console/models", "console.nav_models"),
        ],
    }
    return items[viewer.role]


def guarded(route: Route) -> Handler:
    """The route's handler behind the session, role and form-token checks."""
    roles = route.roles

    async def handle(request: web.Request) -> web.StreamResponse:
        if roles is None:
            return await route.handler(request)
        deps = request.app[DEPS]
        token = request.cookies.get(COOKIE)
        viewer = await deps.auth.viewer(token)
        if viewer is None or token is None:
            return refuse(request, 401, "console.need_login")
        request[VIEWER] = viewer
        request[TOKEN] = token
        params = _audited_params(request)
        if viewer.role not in roles:
            await deps.auth.record_view(viewer, route.page, params, outcome="refused")
            return refuse(request, 403, "console.not_for_role", lang=viewer.language)
        if request.method == "POST":
            form = await request.post()
            sent = form.get("csrf")
            if not csrf_matches(token, sent if isinstance(sent, str) else None):
                await deps.auth.record_view(viewer, route.page, params, outcome="refused")
                return refuse(request, 403, "console.bad_form", lang=viewer.language)
            request[FORM] = form
        await deps.auth.record_view(viewer, route.page, params)
        return await route.handler(request)

    return handle


def _audited_params(request: web.Request) -> dict[str, str]:
    # What was asked (filters, ids), bounded; never what the page then shows.
    params = {k: v[:64] for k, v in list(request.query.items())[:12]}
    params.update({k: v[:32] for k, v in request.match_info.items()})
    return params


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Strict headers on every answer, errors included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


def build_app(deps: ConsoleDeps, routes: list[Route] | None = None) -> web.Application:
    """The console application over its dependencies."""
    from bot.console.pages import ROUTES

    app = web.Application(middlewares=[security_headers], client_max_size=64 * 1024)
    app[DEPS] = deps
    for route in routes if routes is not None else ROUTES:
        app.router.add_route(route.method, route.path, guarded(route), name=route.page)
    return app
