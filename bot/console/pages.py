"""The console's pages: login, the auditor's log, message, export and chain check, the
commander's board, map and FLASH timelines, and the admin's people, codes and models."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.console.queries import STATES, VERDICTS, LogFilter
from bot.console.sessions import digest
from bot.console.web import (
    ADMIN,
    AUDITOR,
    COMMANDER,
    COOKIE,
    DEPS,
    EVERY_ROLE,
    FORM,
    HERE,
    HOME,
    SECURITY_HEADERS,
    TOKEN,
    VIEWER,
    Route,
    refuse,
    render,
)
from bot.domain import LANGUAGES, SIDES
from bot.errors import AccessDenied, DarajaError
from bot.services.enrollment import Caller
from storage.models import utcnow

EXPORT_FORMATS = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


# --- login ---


async def login_page(request: web.Request) -> web.StreamResponse:
    """The link's page: a button that spends the link (a GET never does, so a link preview
    or a prefetch cannot use it up)."""
    from storage.uow import Storage

    deps = request.app[DEPS]
    token = request.query.get("t", "")
    if not token or len(token) > 128:
        return refuse(request, 403, "console.link_unknown")
    async with Storage(deps.db)() as uow:
        link = await uow.console.link(digest(token))
    if link is None:
        return refuse(request, 403, "console.link_unknown")
    if link.used_at is not None:
        return refuse(request, 403, "console.link_used", lang=link.language)
    if link.expires_at <= utcnow():
        return refuse(request, 403, "console.link_expired", lang=link.language)
    return render(request, "login.html", token=token, lang=link.language)


async def login(request: web.Request) -> web.StreamResponse:
    """Spend a link and open a session (HttpOnly, SameSite=Strict cookie)."""
    deps = request.app[DEPS]
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return refuse(request, 403, "console.bad_form")
    form = await request.post()
    token = form.get("t")
    if not isinstance(token, str) or not token or len(token) > 128:
        return refuse(request, 403, "console.link_unknown")
    try:
        session_token, viewer = await deps.auth.login(token)
    except AccessDenied as exc:
        language = exc.params.get("language")
        return refuse(request, 403, exc.key, lang=language if isinstance(language, str) else None)
    response = web.Response(status=303, headers={"Location": HOME[viewer.role]})
    response.set_cookie(
        COOKIE,
        session_token,
        max_age=int(deps.auth.session_ttl.total_seconds()),
        path="/console",
        httponly=True,
        samesite="Strict",
        secure=deps.secure_cookie,
    )
    return response


async def home(request: web.Request) -> web.StreamResponse:
    """The viewer's first page."""
    raise web.HTTPSeeOther(HOME[request[VIEWER].role])


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session and forget the cookie."""
    deps = request.app[DEPS]
    await deps.auth.logout(request[TOKEN], request[VIEWER])
    response = render(request, "signed_out.html")
    response.del_cookie(COOKIE, path="/console")
    return response


async def stylesheet(request: web.Request) -> web.StreamResponse:
    """The console's only asset, served from the package."""
    css = (HERE / "static" / "console.css").read_text(encoding="utf-8")
    return web.Response(text=css, content_type="text/css", charset="utf-8")


# --- auditor ---


def _filters(request: web.Request) -> tuple[LogFilter, list[str]]:
    """The log's filters from the query string; unknown choices are dropped with a note."""
    from bot.domain.audit_dates import parse_range

    q = request.query
    errors: list[str] = []

    def choice(name: str, allowed: tuple[str, ...]) -> str | None:
        value = q.get(name, "").strip()
        if not value:
            return None
        if value not in allowed:
            errors.append("console.bad_filter")
            return None
        return value

    since = until = None
    try:
        span = parse_range(
            q.get("since", "").strip() or None, q.get("until", "").strip() or None, now=utcnow()
        )
        since, until = span.since, span.until
    except DarajaError:
        errors.append("console.bad_time")
    before_text = q.get("before", "")
    text = " ".join(q.get("text", "").split())[:200] or None
    if text is not None and len(text) < 2:
        errors.append("console.short_search")
        text = None
    filt = LogFilter(
        unit=q.get("unit", "").strip()[:32] or None,
        side=choice("side", SIDES),
        language=choice("language", LANGUAGES),
        since=since,
        until=until,
        verdict=choice("verdict", VERDICTS),
        state=choice("state", STATES),
        text=text,
        before=int(before_text) if before_text.isdigit() else None,
    )
    return filt, sorted(set(errors))


async def log_page(request: web.Request) -> web.StreamResponse:
    """The message log: filters, newest first, 50 a page."""
    deps = request.app[DEPS]
    viewer = request[VIEWER]
    filt, errors = _filters(request)
    page = await deps.queries.log(viewer.operation_id, filt)
    params = filt.as_params()
    raw = {k: request.query.get(k, "") for k in ("since", "until")}
    return render(
        request,
        "log.html",
        page=page,
        filt=filt,
        params=params,
        raw=raw,
        errors=errors,
        sides=SIDES,
        languages=LANGUAGES,
        verdicts=VERDICTS,
        states=STATES,
        query_of=_query_of,
    )


def _query_of(params: dict[str, str], **more: Any) -> str:
    from urllib.parse import urlencode

    merged = {**params, **{k: str(v) for k, v in more.items() if v is not None}}
    return urlencode(merged)


async def message_page(request: web.Request) -> web.StreamResponse:
    """One message: the original beside every copy, and its FLASH acknowledgements."""
    deps = request.app[DEPS]
    viewer = request[VIEWER]
    message_id = int(request.match_info["message_id"])
    entry = await deps.queries.message(viewer.operation_id, message_id)
    if entry is None:
        # Another operation's message looks exactly like one that does not exist.
        return refuse(request, 404, "console.not_found", lang=viewer.language)
    flash = await deps.queries.flash_of(viewer.operation_id, message_id)
    return render(request, "message.html", entry=entry, flash=flash, span=_span)


async def export(request: web.Request) -> web.StreamResponse:
    """The audit log as CSV or JSONL, streamed: the same export as `daraja audit export`."""
    from bot.services.audit_export import plan_export, run_export

    deps = request.app[DEPS]
    viewer = request[VIEWER]
    fmt = request.query.get("format", "")
    if fmt not in EXPORT_FORMATS:
        return refuse(request, 400, "console.bad_filter", lang=viewer.language)
    operation = await deps.queries.operation_name(viewer.operation_id)
    try:
        plan = await plan_export(
            deps.db,
            operation=operation,
            unit=request.query.get("unit", "").strip() or None,
            since=request.query.get("since", "").strip() or None,
            until=request.query.get("until", "").strip() or None,
            now=utcnow(),
        )
    except DarajaError:
        return refuse(request, 400, "console.bad_filter", lang=viewer.language)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = web.StreamResponse(
        headers={
            **SECURITY_HEADERS,
            "Content-Type": f"{EXPORT_FORMATS[fmt]}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="daraja-audit-{stamp}.{fmt}"',
        }
    )
    await response.prepare(request)
    buffer = io.StringIO()

    async def flush(force: bool = False) -> None:
        if force or buffer.tell() >= 64 * 1024:
            await response.write(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()

    await run_export(deps.db, plan, buffer, "csv" if fmt == "csv" else "jsonl", after_each=flush)
    await flush(force=True)
    await response.write_eof()
    return response


async def verify_page(request: web.Request) -> web.StreamResponse:
    """The chain check's form (the walk itself is a POST: it reads the whole log)."""
    head = await request.app[DEPS].queries.audit_head()
    return render(request, "verify.html", head=head, result=None, anchor="", anchor_error=False)


async def verify(request: web.Request) -> web.StreamResponse:
    """Walk the hash chain (optionally against an anchored head) and show the head."""
    from storage.audit_verify import Anchor, verify_database

    deps = request.app[DEPS]
    anchor_text = str(request[FORM].get("anchor", "")).strip()[:140]
    expect = None
    anchor_error = False
    if anchor_text:
        try:
            expect = Anchor.parse(anchor_text)
        except ValueError:
            anchor_error = True
    result = None if anchor_error else await verify_database(deps.db, deps.chain, expect=expect)
    head = await deps.queries.audit_head()
    return render(
        request,
        "verify.html",
        head=head,
        result=result,
        anchor=anchor_text,
        anchor_error=anchor_error,
    )


# --- commander ---


async def board_page(request: web.Request) -> web.StreamResponse:
    """The status board (stale units marked) and the map of last known positions."""
    from bot.console.map import build_map
    from bot.domain.gazetteer import PLACES
    from bot.rendering.formatting import format_age
    from bot.services.board import URGENT

    deps = request.app[DEPS]
    viewer = request[VIEWER]
    if deps.status is None:
        return refuse(request, 404, "console.not_found", lang=viewer.language)
    try:
        board = await deps.status.board(viewer.user_id)
    except DarajaError:
        return refuse(request, 404, "console.no_operation", lang=viewer.language)
    area = build_map(board.rows, PLACES, URGENT)

    def age(at: datetime) -> str:
        return format_age(board.now - at, viewer.language, deps.i18n)

    return render(
        request,
        "board.html",
        board=board,
        area=area,
        age=age,
        urgent=URGENT,
        renderings=board.renderings,
    )


async def flash_page(request: web.Request) -> web.StreamResponse:
    """FLASH orders, newest first, each with its per-unit acknowledgement timeline."""
    deps = request.app[DEPS]
    flashes = await deps.queries.flashes(request[VIEWER].operation_id)
    return render(request, "flash.html", flashes=flashes, span=_span)


def _span(seconds: float | None) -> str:
    if seconds is None:
        return ""
    total = max(0, round(seconds))
    return str(timedelta(seconds=total))


# --- admin ---


def _admin_caller(request: web.Request) -> Caller:
    viewer = request[VIEWER]
    return Caller(user_id=viewer.user_id, display_name="console", is_admin=True)


async def people_page(request: web.Request) -> web.StreamResponse:
    """Who is enrolled, with role, unit and state."""
    deps = request.app[DEPS]
    if deps.revocation is None:
        return refuse(request, 404, "console.not_found", lang=request[VIEWER].language)
    operation = await deps.queries.operation_name(request[VIEWER].operation_id)
    people = await deps.revocation.people(_admin_caller(request), operation)
    return render(request, "people.html", people=people)


async def codes_page(request: web.Request) -> web.StreamResponse:
    """Enrollment codes and their state (the codes themselves are never stored)."""
    deps = request.app[DEPS]
    if deps.revocation is None:
        return refuse(request, 404, "console.not_found", lang=request[VIEWER].language)
    operation = await deps.queries.operation_name(request[VIEWER].operation_id)
    codes = await deps.revocation.codes(_admin_caller(request), operation)
    return render(request, "codes.html", codes=codes)


async def models_page(request: web.Request) -> web.StreamResponse:
    """The installed translation models."""
    deps = request.app[DEPS]
    packages: list[Any] = []
    if deps.models_dir is not None and deps.models_dir.is_dir():
        from translation.store import ModelStore

        packages = list(ModelStore(deps.models_dir).scan().packages)
    return render(request, "models.html", packages=packages)


ROUTES: list[Route] = [
    Route("GET", "/console/login", login_page, None, "login"),
    Route("POST", "/console/login", login, None, "login.post"),
    Route("GET", "/console/static/console.css", stylesheet, None, "static"),
    Route("GET", "/console", home, EVERY_ROLE, "home"),
    Route("POST", "/console/logout", logout, EVERY_ROLE, "logout"),
    Route("GET", "/console/log", log_page, AUDITOR, "log"),
    Route("GET", r"/console/log/{message_id:\d{1,12}}", message_page, AUDITOR, "message"),
    Route("GET", "/console/export", export, AUDITOR, "export"),
    Route("GET", "/console/verify", verify_page, AUDITOR, "verify"),
    Route("POST", "/console/verify", verify, AUDITOR, "verify.post"),
    Route("GET", "/console/board", board_page, COMMANDER, "board"),
    Route("GET", "/console/flash", flash_page, COMMANDER, "flash"),
    Route("GET", "/console/people", people_page, ADMIN, "people"),
    Route("GET", "/console/codes", codes_page, ADMIN, "codes"),
    Route("GET", "/console/models", models_page, ADMIN, "models"),
]
