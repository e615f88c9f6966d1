"""Retention in the running bot: purge what its periods allow at start, then every hour.

The rules live in `storage.retention`; this module turns settings into a policy and runs it
on a timer (the process that receives updates does it; delivery-only workers do not).
"""

from __future__ import annotations

import asyncio
import logging

from bot.settings import Settings
from storage.audit import AuditChain
from storage.db import Database
from storage.models import utcnow
from storage.retention import Purged, RetentionPolicy, apply_retention

log = logging.getLogger(__name__)

INTERVAL_S = 3600.0


def policy_from(settings: Settings) -> RetentionPolicy:
    """The retention periods the settings ask for."""
    message = settings.message_retention_days
    translation = settings.translation_retention_days
    return RetentionPolicy(
        inbox_days=settings.inbox_retention_days or None,
        message_days=message,
        translation_days=translation,
    )


def describe(purged: Purged) -> str:
    """One line saying what a purge removed (ids and counts, never content)."""
    if not purged.count:
        return f"{purged.kind}: nothing older than {purged.retention_days} days"
    with_translations = (
        f" with {purged.translations} translations" if purged.kind == "messages" else ""
    )
    anchor = f"; last audit event {purged.anchors[-1]}" if purged.anchors else ""
    return (
        f"{purged.kind}: {purged.count} older than {purged.retention_days} days "
        f"(ids {purged.first_id}..{purged.last_id}){with_translations}{anchor}"
    )


async def retention_loop(
    db: Database, chain: AuditChain, policy: RetentionPolicy, *, interval: float = INTERVAL_S
) -> None:
    """Apply the policy now and every `interval` seconds until cancelled."""
    while True:
        try:
            for purged in await apply_retention(db, chain, policy, utcnow()):
                if purged.count:
                    log.info("retention purged %s", describe(purged))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - retried at the next tick
            log.warning("retention purge failed (%s); retrying in an hour", type(exc).__name__)
        await asyncio.sleep(interval)
