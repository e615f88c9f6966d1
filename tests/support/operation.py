"""A joint operation set up through the real enrollment service (shared by tests)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.enrollment import Caller, EnrollmentService

ADMIN = Caller(user_id=1000, display_name="Admin", is_admin=True)

# chat id, unit code, side, languages
GROUPS = (
    (-1001, "PNH-UDMO-2", "PNH", "ht"),
    (-1002, "PNH-CMD", "PNH", "fr"),
    (-1003, "KE-3", "MSS", "en"),
    (-1004, "KE-SW-1", "MSS", "sw"),
)


@dataclass(frozen=True)
class Operation:
    """Ids of what was enrolled."""

    name: str
    chats: dict[str, int]  # unit code -> Telegram chat id


async def enroll_operation(
    service: EnrollmentService,
    *,
    name: str = "Kenscoff",
    groups: tuple[tuple[int, str, str, str], ...] = GROUPS,
    mixed: tuple[int, str, str] | None = None,
) -> Operation:
    """Create an operation with one group per unit (and optionally one mixed group)."""
    await service.create_operation(ADMIN, name, default_language="fr")
    chats: dict[str, int] = {}
    for chat_id, unit, side, lang in groups:
        await service.add_unit(ADMIN, name, unit, name=unit, side=side, language=lang)
        code = await service.issue_code(ADMIN, name, kind="chat", unit=unit, languages=lang)
        await service.enroll_chat(
            ADMIN,
            code.code,
            chat_id=chat_id,
            chat_title=unit,
            chat_type="supergroup",
            caller_is_chat_admin=True,
        )
        chats[unit] = chat_id
    if mixed is not None:
        chat_id, unit, langs = mixed
        await service.add_unit(ADMIN, name, unit, name=unit, side="MSS", language=langs[:2])
        code = await service.issue_code(ADMIN, name, kind="chat", unit=unit, languages=langs)
        await service.enroll_chat(
            ADMIN,
            code.code,
            chat_id=chat_id,
            chat_title=unit,
            chat_type="supergroup",
            caller_is_chat_admin=True,
        )
        chats[unit] = chat_id
    return Operation(name=name, chats=chats)
