"""Models without restart: the running bot picks up `daraja models install/remove`.

Every DARAJA_MODELS_CHECK_SECONDS, and at once on SIGHUP, the watcher compares a cheap
fingerprint of the models directory (each package directory's name, inode and modification
times: one listing and a few stats) with the last one. On a change the engine re-reads its
packages (translations already under way finish on the models they started with), the
self-test runs for the new list, and the change is logged and audited (`models.reloaded`).
A bot that started without any model gets its engine built the first time one appears.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.context import Services
from storage.uow import Storage

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int, int], ...]


def fingerprint(root: Path) -> Fingerprint:
    """What the models directory holds, cheaply (in-flight `.staging-*`/`.trash-*` ignored)."""
    try:
        entries = list(os.scandir(root))
    except OSError:
        return ()
    found: list[tuple[str, int, int, int]] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            meta = os.stat(os.path.join(entry.path, "metadata.json")).st_mtime_ns
        except OSError:
            continue
        found.append((entry.name, st.st_ino, st.st_mtime_ns, meta))
    return tuple(sorted(found))


def set_translator(services: Services, translator: Any) -> None:
    """Hand a new translator to every service that translates."""
    services.translator = translator
    services.relay.translator = translator
    for service in (services.status, services.flash):
        if service is not None:
            service.translator = translator


class ModelWatcher:
    """Reloads the translation engine when the models directory changes (or on SIGHUP)."""

    def __init__(
        self,
        services: Services,
        *,
        interval: float,
        build: Callable[[], Any] | None = None,
    ) -> None:
        self.services = services
        self.root = services.settings.models_dir
        self.interval = interval
        self._build = build
        self._seen = fingerprint(self.root)
        self._wake = asyncio.Event()
        self.reloads = 0

    def request(self) -> None:
        """Check now (the SIGHUP handler)."""
        self._wake.set()

    def install_signal(self) -> None:
        """Make SIGHUP ask for a check (where the platform has it)."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, self.request)

    async def run(self) -> None:
        """Check every `interval` seconds (never, with 0) and whenever asked."""
        while True:
            timeout = self.interval if self.interval > 0 else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            forced = self._wake.is_set()
            self._wake.clear()
            try:
                await self.check(force=forced)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("models: reload failed; the previous models stay in use")

    async def check(self, *, force: bool = False) -> bool:
        """Reload if the directory changed (or `force`); True when a reload happened."""
        now = await asyncio.to_thread(fingerprint, self.root)
        if now == self._seen and not force:
            return False
        self._seen = now
        translator: Any = self.services.translator
        engine = getattr(translator, "engine", None)
        if engine is None:
            translator = await asyncio.to_thread(self._build_translator)
            if translator is None:
                return False
            set_translator(self.services, translator)
            engine = translator.engine
        added, removed = await engine.reload()
        router = await engine.router()
        packages = sorted(p.package_id for p in router.packages)
        self.reloads += 1
        log.info(
            "models reloaded from %s: %d package(s) (added: %s; removed: %s)",
            self.root,
            len(packages),
            ", ".join(added) or "none",
            ", ".join(removed) or "none",
        )
        await self._audit(packages, added, removed)
        from bot.engines.translator import self_test

        await self_test(translator)
        return True

    def _build_translator(self) -> Any:
        if self._build is not None:
            return self._build()
        from bot.engines.translator import build_translator

        return build_translator(self.services.settings)

    async def _audit(self, packages: list[str], added: list[str], removed: list[str]) -> None:
        services = self.services
        async with Storage(services.db, services.audit)() as uow:
            await uow.audit(
                component="models",
                event_type="models.reloaded",
                actor="bot",
                payload={"packages": packages, "added": added, "removed": removed},
            )
