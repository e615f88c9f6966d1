"""Settings that run, but leave a deployment weaker than it looks: said at start and in health.

Without `DARAJA_AUDIT_HMAC_KEY` the audit chain is plain SHA-256, which anyone with write access
to the database can recompute: a forged event then verifies, even against an anchored head.
"""

from __future__ import annotations

import logging

from bot.settings import Settings

log = logging.getLogger("daraja")

NO_AUDIT_KEY = (
    "DARAJA_AUDIT_HMAC_KEY is not set: the audit log is chained with plain SHA-256, so "
    "whoever can write to the database can forge events that still verify (even with "
    "--expect-head). Set a long random key before the first message is logged "
    "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
)
CONTENT_LOGGED = (
    "DARAJA_LOG_CONTENT is on: message texts and enrollment codes are written to the logs; "
    "turn it off once the debugging is done"
)


def setting_warnings(settings: Settings) -> list[str]:
    """What is weak about these settings, one sentence each (empty when nothing is)."""
    warnings: list[str] = []
    if settings.audit_hmac_key is None and settings.mode in ("polling", "webhook"):
        warnings.append(NO_AUDIT_KEY)
    if settings.log_content:
        warnings.append(CONTENT_LOGGED)
    return warnings


def warn_at_start(settings: Settings) -> None:
    """Log each weakness as a WARNING when the bot starts (framed so it is not missed)."""
    for text in setting_warnings(settings):
        log.warning("!!! %s !!!", text)
