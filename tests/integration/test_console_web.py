"""The web console over aiohttp's test client on a real database: login by one-time link,
sessions, roles, another operation's data, script injection, form tokens, audited views."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.console.pages import ROUTES
from bot.console.queries import ConsoleQueries
from bot.console.sessions import VIEW_EVENT, ConsoleAuth
from bot.console.web import ConsoleDeps, build_app
from bot.i18n import load_i18n
from bot.services.audit_access import AuditAccess
from bot.services.revocation import RevocationService
from bot.services.status import StatusService
from bot.services.translator import NoModelsTranslator
from storage.audit import AuditChain
from storage.db import Database
from storage.models import (
    AuditEvent,
    Chat,
    Delivery,
    Message,
    Operation,
    Person,
    TranslationRow,
    Unit,
)
from storage.status_repo import Flash, FlashAck, Report

AUDITOR_A, AUDITOR_B, COMMANDER_A, OFFICER_A, ADMIN = 7001, 7101, 7002, 7003, 9001
INJECTION = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SECRET_B = "Furcy convoy leaves at 0400"
I18N = load_i18n()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    deps: ConsoleDeps
    clock: Clock
    message_a: int
    message_b: int
    injected: int


@pytest.fixture
async def world(db: Database) -> World:
    chain = AuditChain()
    clock = Clock()
    async with db.transaction() as s:
        op_a = Operation(name="Kenscoff", glossary={})
        op_b = Operation(name="Furcy", glossary={})
        s.add_all([op_a, op_b])
        await s.flush()
        pnh = Unit(operation_id=op_a.id, code="PNH-2", name="UDMO", side="PNH", language="ht")
        ke = Unit(operation_id=op_a.id, code="KE-3", name="Kenya 3", side="MSS", language="en")
        b_unit = Unit(operation_id=op_b.id, code="KE-9", name="Kenya 9", side="MSS", language="en")
        s.add_all([pnh, ke, b_unit])
        await s.flush()
        c_pnh = Chat(
            telegram_chat_id=-1001,
            operation_id=op_a.id,
            unit_id=pnh.id,
            title="UDMO 2",
            languages="ht",
        )
        c_ke = Chat(
            telegram_chat_id=-1002,
            operation_id=op_a.id,
            unit_id=ke.id,
            title="Kenya 3",
            languages="en",
        )
        c_b = Chat(
            telegram_chat_id=-1009,
            operation_id=op_b.id,
            unit_id=b_unit.id,
            title="Kenya 9",
            languages="en",
        )
        s.add_all([c_pnh, c_ke, c_b])
        s.add_all(
            [
                Person(
                    telegram_user_id=AUDITOR_A, role="auditor", operation_id=op_a.id, language="fr"
                ),
                Person(telegram_user_id=AUDITOR_B, role="auditor", operation_id=op_b.id),
                Person(
                    telegram_user_id=COMMANDER_A,
                    role="commander",
                    operation_id=op_a.id,
                    language="sw",
                ),
                Person(telegram_user_id=OFFICER_A, role="officer", operation_id=op_a.id),
            ]
        )
        await s.flush()
        m_a = Message(
            operation_id=op_a.id,
            chat_id=c_pnh.id,
            telegram_message_id=1,
            author_name="Jean",
            text="Nou rive Kenscoff 0700",
            source_language="ht",
        )
        m_x = Message(
            operation_id=op_a.id,
            chat_id=c_ke.id,
            telegram_message_id=2,
            author_name="Otieno",
            text=INJECTION,
            source_language="en",
        )
        m_b = Message(
            operation_id=op_b.id,
            chat_id=c_b.id,
            telegram_message_id=3,
            author_name="Wanjiru",
            text=SECRET_B,
            source_language="en",
        )
        s.add_all([m_a, m_x, m_b])
        await s.flush()
        s.add(
            TranslationRow(
                message_id=m_a.id,
                target_language="en",
                text="We reached Kenscoff 0700",
                route="direct",
                models=["ht-en"],
                score=0.91,
                flags=[],
            )
        )
        s.add(
            TranslationRow(
                message_id=m_x.id,
                target_language="ht",
                text=INJECTION,
                route="direct",
                models=["en-ht"],
                flags=["passthrough"],
            )
        )
        s.add(
            Delivery(
                message_id=m_a.id,
                target_chat_id=c_ke.id,
                target_language="en",
                state="sent",
                attempts=1,
                sent_at=clock.now,
            )
        )
        s.add(
            Delivery(
                message_id=m_x.id,
                target_chat_id=c_pnh.id,
                target_language="ht",
                state="failed",
                attempts=3,
            )
        )
        s.add(
            Report(
                operation_id=op_a.id,
                unit_id=pnh.id,
                chat_id=c_pnh.id,
                status="in_contact",
                place="Kenscoff",
                latitude=18.45,
                longitude=-72.283,
                created_at=clock.now - timedelta(hours=5),
            )
        )
        order = Message(
            operation_id=op_a.id,
            chat_id=c_ke.id,
            telegram_message_id=4,
            author_name="Mwangi",
            text="FLASH: hold all checkpoints",
            source_language="en",
            priority="flash",
        )
        s.add(order)
        await s.flush()
        flash = Flash(
            operation_id=op_a.id,
            message_id=order.id,
            sender_user_id=COMMANDER_A,
            sender_name="Mwangi",
            source_chat_id=COMMANDER_A,
            source_message_id=1,
            expected_units=[pnh.id, ke.id],
            created_at=clock.now - timedelta(minutes=10),
            remind_after=clock.now,
            escalate_after=clock.now,
        )
        s.add(flash)
        await s.flush()
        s.add(
            FlashAck(
                flash_id=flash.id,
                unit_id=pnh.id,
                chat_id=c_pnh.id,
                person_user_id=1,
                person_name="Jean",
                acked_at=clock.now - timedelta(minutes=7),
            )
        )
        for op, marker in ((op_a, "marker-A"), (op_b, "marker-B")):
            await chain.append(
                s,
                component="relay",
                event_type="message.received",
                actor="tg:1",
                operation_id=op.id,
                payload={"note": marker},
            )
        ids = (m_a.id, m_b.id, m_x.id)
    admin_ids = [ADMIN]
    deps = ConsoleDeps(
        auth=ConsoleAuth(db, chain, admin_ids=admin_ids, clock=clock),
        queries=ConsoleQueries(db, AuditAccess(db, chain)),
        i18n=I18N,
        db=db,
        chain=chain,
        status=StatusService(db, chain, NoModelsTranslator(), I18N, admin_ids=admin_ids),
        revocation=RevocationService(db, chain, admin_ids),
    )
    return World(deps, clock, *ids)


@pytest.fixture
async def client(world: World) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(build_app(world.deps))) as c:
        yield c


async def _login(client: TestClient, world: World, user_id: int) -> None:  # type: ignore[type-arg]
    link = await world.deps.auth.issue_link(user_id, telegram_language=None)
    page = await client.get(f"/console/login?t={link.token}")
    assert page.status == 200
    r = await client.post("/console/login", data={"t": link.token}, allow_redirects=False)
    assert r.status == 303, await r.text()


def _path(route_path: str, world: World) -> str:
    return re.sub(r"\{[^}]+\}", str(world.message_a), route_path)


PUBLIC = {"login", "login.post", "static"}


async def test_no_page_is_reachable_without_a_session(client: TestClient, world: World) -> None:  # type: ignore[type-arg]
    app_routes = [
        r
        for r in client.app.router.routes()
        if r.method in ("GET", "POST")  # type: ignore[union-attr]
    ]
    assert len(app_routes) == len(ROUTES)
    assert {r.page for r in ROUTES if r.roles is None} == PUBLIC
    for route in app_routes:
        info = route.resource.get_info()  # type: ignore[union-attr]
        path = info.get("path") or info.get("formatter")
        name = route.resource.name  # type: ignore[union-attr]
        r = await client.request(route.method, _path(path, world), allow_redirects=False)
        body = await r.text()
        assert "Kenscoff 0700" not in body
        assert SECRET_B not in body
        if name in PUBLIC:
            # The public ones hold no data: a link page without a link, a form, a style sheet.
            assert r.status in ((200,) if name == "static" else (403,)), name
        else:
            assert r.status == 401, (route.method, path, r.status)
        assert "script-src 'none'" in r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]


async def test_a_link_opens_one_session_once(client: TestClient, world: World) -> None:  # type: ignore[type-arg]
    link = await world.deps.auth.issue_link(AUDITOR_A, telegram_language=None)
    r = await client.post("/console/login", data={"t": link.token}, allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"] == "/console/log"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/console" in cookie
    page = await client.get("/console/log")
    assert page.status == 200
    assert I18N.t("console.nav_log", "fr") in await page.text()  # the auditor reads French
    # The same link again, even with a session open: refused, and says why.
    again = await client.post("/console/login", data={"t": link.token}, allow_redirects=False)
    assert again.status == 403
    assert I18N.t("console.link_used", "fr") in await again.text()
    page = await client.get(f"/console/login?t={link.token}")
    assert page.status == 403
    async with world.deps.db.transaction() as s:
        from storage.models import ConsoleLink

        stored = (await s.execute(select(ConsoleLink.token_hash))).scalars().all()
    assert link.token not in stored  # only its digest is kept


async def test_an_expired_link_is_refused(client: TestClient, world: World) -> None:  # type: ignore[type-arg]
    link = await world.deps.auth.issue_link(AUDITOR_A, telegram_language=None)
    world.clock.now += timedelta(minutes=6)
    r = await client.post("/console/login", data={"t": link.token}, allow_redirects=False)
    assert r.status == 403
    assert I18N.t("console.link_expired", "fr") in await r.text()
    assert (await client.get("/console/log")).status == 401


async def test_a_session_expires_and_a_revoked_person_is_shut_out(
    client: TestClient,  # type: ignore[type-arg]
    world: World,
) -> None:
    await _login(client, world, AUDITOR_A)
    assert (await client.get("/console/log")).status == 200
    world.clock.now += timedelta(minutes=61)
    assert (await client.get("/console/log")).status == 401
    world.clock.now -= timedelta(minutes=61)
    async with world.deps.db.transaction() as s:
        person = (
            await s.execute(select(Person).where(Person.telegram_user_id == AUDITOR_A))
        ).scalar_one()
        person.revoked_at = world.clock.now
    assert (await client.get("/console/log")).status == 401


async def test_only_console_roles_get_a_link(world: World) -> None:
    from bot.errors import AccessDenied

    with pytest.raises(AccessDenied):
        await world.deps.auth.issue_link(OFFICER_A, telegram_language=None)
    with pytest.raises(AccessDenied):
        await world.deps.auth.issue_link(424242, telegram_language=None)


async def test_another_operations_data_is_not_visible(client: TestClient, world: World) -> None:  # type: ignore[type-arg]
    await _login(client, world, AUDITOR_A)
    log = await (await client.get("/console/log")).text()
    assert "Nou rive Kenscoff 0700" in log
    assert SECRET_B not in log
    assert (await client.get(f"/console/log/{world.message_b}")).status == 404
    found = await (await client.get("/console/log", params={"text": "convoy"})).text()
    assert SECRET_B not in found
    export = await client.get("/console/export", params={"format": "jsonl"})
    assert export.status == 200
    body = await export.text()
    assert "marker-A" in body
    assert "marker-B" not in body
    assert all(json.loads(line)["operation_id"] == 1 for line in body.splitlines())


async def test_script_in_message_text_is_rendered_inert(client: TestClient, world: World) -> None:  # type: ignore[type-arg]
    await _login(client, world, AUDITOR_A)
    for path in ("/console/log", f"/console/log/{world.injected}"):
        r = await client.get(path)
        body = await r.text()
        assert "<script" not in body
        assert "<img" not in body
        assert "&lt;script&gt;" in body
        assert "script-src 'none'" in r.headers["Content-Security-Policy"]


async def test_a_message_shows_its_original_and_every_copy(
    client: TestClient,  # type: ignore[type-arg]
    world: World,
) -> None:
    await _login(client, world, AUDITOR_A)
    body = await (await client.get(f"/console/log/{world.message_a}")).text()
    for part in ("Nou rive Kenscoff 0700", "We reached Kenscoff 0700", "ht-en", "direct"):
        assert part in body
    assert I18N.t("console.state_sent", "fr") in body


async def test_filters_narrow_the_log(client: TestClient, world: World) -> None:  # type: ignore[type-arg]
    await _login(client, world, AUDITOR_A)
    cases = {
        "language=ht": ("Kenscoff 0700", "onerror"),
        "side=MSS": ("onerror", "Kenscoff 0700"),
        "verdict=flagged": ("onerror", "Kenscoff 0700"),
        "verdict=clean": ("Kenscoff 0700", "onerror"),
        "state=sent": ("Kenscoff 0700", "onerror"),
        "state=failed": ("onerror", "Kenscoff 0700"),
        "unit=KE-3": ("onerror", "Kenscoff 0700"),
        "text=reached": ("Kenscoff 0700", "onerror"),
    }
    for query, (present, absent) in cases.items():
        body = await (await client.get(f"/console/log?{query}")).text()
        assert present in body, query
        assert absent not in body, query


async def test_roles_decide_what_is_visible(client: TestClient, world: World) -> None:  # type: ignore[type-arg]
    await _login(client, world, COMMANDER_A)
    assert (await client.get("/console/log")).status == 403
    board = await client.get("/console/board")
    text = await board.text()
    assert board.status == 200
    assert "PNH-2" in text
    assert "<svg" in text
    assert I18N.t("console.stale", "sw") in text  # five hours without a report
    assert (await client.get("/console/flash")).status == 200
    assert (await client.get("/console/people")).status == 403


async def test_an_admin_sees_people_codes_and_models(client: TestClient, world: World) -> None:  # type: ignore[type-arg]
    await _login(client, world, ADMIN)
    people = await client.get("/console/people")
    assert people.status == 200
    assert str(AUDITOR_A) in await people.text()
    assert (await client.get("/console/codes")).status == 200
    assert (await client.get("/console/models")).status == 200
    assert (await client.get("/console/log")).status == 403


async def test_a_post_needs_the_sessions_form_token(client: TestClient, world: World) -> None:  # type: ignore[type-arg]
    await _login(client, world, AUDITOR_A)
    assert (await client.post("/console/verify", data={"anchor": ""})).status == 403
    page = await (await client.get("/console/verify")).text()
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert token is not None
    r = await client.post("/console/verify", data={"csrf": token.group(1), "anchor": ""})
    assert r.status == 200
    assert 'id="verify-result"' in await r.text()
    assert 'class="ok"' in await r.text()


async def test_every_page_view_is_an_audit_event(client: TestClient, world: World) -> None:  # type: ignore[type-arg]
    async def views() -> int:
        async with world.deps.db.transaction() as s:
            count = await s.scalar(select(func.count()).where(AuditEvent.event_type == VIEW_EVENT))
        return int(count or 0)

    await _login(client, world, AUDITOR_A)
    before = await views()
    await client.get("/console/log")
    await client.get(f"/console/log/{world.message_a}")
    await client.get("/console/board")  # refused for an auditor, and audited as such
    assert await views() == before + 3


async def test_flash_orders_show_each_units_acknowledgement(
    client: TestClient,  # type: ignore[type-arg]
    world: World,
) -> None:
    await _login(client, world, COMMANDER_A)
    body = await (await client.get("/console/flash")).text()
    assert "FLASH: hold all checkpoints" in body
    assert I18N.t("console.acks_title", "sw", acked=1, total=2) in body
    assert "0:03:00" in body  # PNH-2 acknowledged three minutes after the order
    assert I18N.t("console.waiting", "sw") in body  # KE-3 has not


async def test_paging_walks_the_whole_log_once(world: World) -> None:
    from bot.console.queries import LogFilter

    async with world.deps.db.transaction() as s:
        chat = (await s.execute(select(Chat).where(Chat.telegram_chat_id == -1001))).scalar_one()
        s.add_all(
            Message(
                operation_id=chat.operation_id,
                chat_id=chat.id,
                telegram_message_id=100 + i,
                text=f"report {i}",
                source_language="ht",
            )
            for i in range(120)
        )
    seen: list[int] = []
    before = None
    while True:
        page = await world.deps.queries.log(1, LogFilter(before=before), limit=50)
        seen.extend(e.message_id for e in page.entries)
        if page.next_before is None:
            break
        before = page.next_before
    assert len(seen) == len(set(seen)) == 123  # 120 reports, two messages and the FLASH
    assert seen == sorted(seen, reverse=True)


async def test_a_login_posted_from_another_site_is_refused(
    client: TestClient,  # type: ignore[type-arg]
    world: World,
) -> None:
    link = await world.deps.auth.issue_link(AUDITOR_A, telegram_language=None)
    r = await client.post(
        "/console/login",
        data={"t": link.token},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert r.status == 403
    assert "Set-Cookie" not in r.headers
    ok = await client.post("/console/login", data={"t": link.token}, allow_redirects=False)
    assert ok.status == 303  # the link was not spent by the refused attempt


async def test_old_links_and_sessions_are_forgotten(client: TestClient, world: World) -> None:  # type: ignore[type-arg]
    from storage.models import ConsoleLink, ConsoleSession

    await _login(client, world, AUDITOR_A)
    await world.deps.auth.issue_link(AUDITOR_A, telegram_language=None)  # never used
    world.clock.now += timedelta(days=2)
    await world.deps.auth.issue_link(AUDITOR_A, telegram_language=None)
    async with world.deps.db.transaction() as s:
        links = (await s.execute(select(func.count()).select_from(ConsoleLink))).scalar()
        sessions = (await s.execute(select(func.count()).select_from(ConsoleSession))).scalar()
    assert (links, sessions) == (1, 0)  # only the new link is left
