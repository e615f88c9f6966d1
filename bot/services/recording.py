"""The engine's translations as storage records them. Recording a message's translations and
its outbox rows is the relay repository's (`uow.relay.record_copies`, storage/relay_rows.py):
one code path for officers' messages, SITREPs and FLASH orders, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping

from storage.relay_rows import Target, TranslationRecord
from translation.types import Translation

__all__ = ["Target", "records_of"]


def records_of(translations: Mapping[str, Translation]) -> dict[str, TranslationRecord]:
    """The engine's translations as storage keeps them (route and flags as their names)."""
    return {
        lang: TranslationRecord(
            text=tr.text,
            route=tr.route.value,
            models=list(tr.models),
            score=tr.score,
            flags=[str(f) for f in tr.flags],
        )
        for lang, tr in translations.items()
    }
