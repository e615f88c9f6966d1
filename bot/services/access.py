"""Access policy: who may run which command where, and quiet refusal of unenrolled chats.

An unenrolled group gets one short refusal and nothing else: no relay and no data beyond the
audited refusals (`EnrollmentService.refuse_unenrolled`). Commands check the caller's role;
roles do not nest except that admins may do everything.
"""

from __future__ import annotations

from bot.domain import Role

# Commands anyone may use, enrolled or not.
# `/backtranslate` checks the group's Telegram admins itself, like `/enroll`.
OPEN_COMMANDS = frozenset({"start", "help", "join", "lang", "whoami", "enroll", "backtranslate"})

# Which roles may run a command (admins may run everything).
COMMAND_ROLES: dict[str, frozenset[Role]] = {
    "newop": frozenset({Role.ADMIN}),
    "addunit": frozenset({Role.ADMIN}),
    "code": frozenset({Role.ADMIN}),
    "revoke": frozenset({Role.ADMIN}),
    "status": frozenset({Role.COMMANDER, Role.ADMIN}),
    "flash": frozenset({Role.COMMANDER, Role.ADMIN}),
    "acks": frozenset({Role.COMMANDER, Role.ADMIN}),
    "where": frozenset({Role.COMMANDER, Role.ADMIN}),
    "who": frozenset({Role.COMMANDER, Role.ADMIN}),
    "report": frozenset({Role.OFFICER, Role.COMMANDER, Role.ADMIN}),
    "sitrep": frozenset({Role.OFFICER, Role.COMMANDER, Role.ADMIN}),
    "how": frozenset({Role.OFFICER, Role.COMMANDER, Role.AUDITOR, Role.ADMIN}),
    "log": frozenset({Role.AUDITOR, Role.ADMIN}),
    "search": frozenset({Role.AUDITOR, Role.ADMIN}),
    "console": frozenset({Role.AUDITOR, Role.COMMANDER, Role.ADMIN}),
}

# Commands whose output is sensitive and must stay in a private chat.
PRIVATE_ONLY = frozenset(
    {"newop", "addunit", "code", "revoke", "join", "log", "search", "where", "who", "console"}
)


def may_run(command: str, role: Role | None) -> bool:
    """Whether a role may run a command."""
    if command in OPEN_COMMANDS:
        return True
    if role is Role.ADMIN:
        return True
    allowed = COMMAND_ROLES.get(command)
    return role is not None and allowed is not None and role in allowed
