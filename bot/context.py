"""The typed bot context: services as attributes instead of string lookups in `bot_data`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ExtBot

if TYPE_CHECKING:
    from bot.i18n import I18n
    from bot.services.audit_access import AuditAccess
    from bot.services.enrollment import EnrollmentService
    from bot.services.flash import FlashService
    from bot.services.relay import RelayService
    from bot.services.revocation import RevocationService
    from bot.services.status import StatusService
    from bot.services.translator import Translator
    from bot.services.voice import VoiceService
    from bot.settings import Settings
    from storage.audit import AuditChain
    from storage.db import Database


@dataclass
class Services:
    """Everything a handler may call, built once by the composition root."""

    settings: Settings
    db: Database
    audit: AuditChain
    i18n: I18n
    enrollment: EnrollmentService
    translator: Translator
    relay: RelayService
    audit_access: AuditAccess
    extra: dict[str, Any]
    # SITREPs, the board and FLASH messages (None where a caller builds no status).
    status: StatusService | None = None
    flash: FlashService | None = None
    # Revoked people, chats, codes and retired units (None where a caller builds none).
    revocation: RevocationService | None = None
    # Voice notes' transcription queue (None where a caller builds none).
    voice: VoiceService | None = None


class DarajaContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """CallbackContext with Daraja's services."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)

    @property
    def services(self) -> Services:
        """The deployment's services."""
        services: Services = self.application.bot_data["services"]
        return services
