"""A fake LibreTranslate server on loopback that answers what the real 1.9.6 answers.

The texts and statuses are those of `libretranslate/app.py` 1.9.6 (checked against the real
server run offline with the fixture packages):
- `POST /translate` → `{"translatedText": str | [str]}`; `q` may be a string or a list;
- 400 "`<code>` is not supported" (a language it does not have at all) and 400
  "`<Target>` (`<tcode>`) is not available as a target language from `<Source>` (`<scode>`)"
  (both languages known, no package between them);
- 400 "Please contact the server operator to get an API key" (`--require-api-key-secret`,
  no key sent) and 403 "Invalid API key" (a key it does not know);
- 400 "Invalid request: request (n) exceeds text limit (m)" for `--batch-limit` (n = len(q))
  and for `--char-limit` (n = the longest text's length);
- 429 "Slowdown: `<limit>`" with no Retry-After header, each item of `q` costing one against a
  per-minute `--req-limit`;
- 500 "Cannot translate text: …";
- `GET /languages` → `[{"code", "name", "targets"}]`, `GET /frontend/settings` with
  `charLimit` (-1: none);
- its post-processing (`improve_translation_formatting`): the source's final punctuation is
  forced onto the output, an all-lower-case or all-upper-case source gives an output in the
  same case.

It translates one request at a time per `threads`, `seconds_per_segment` each segment, as the
real server does (it does not batch across requests); its "translation" maps a few Kreyòl
words to English and keeps everything else (placeholders included), so results are exact.
`leak_tag` makes it answer like a multilingual package Argos cannot drive ("Swh Latn …").
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

WORDS = {"Inite": "Unit", "rive": "arrived", "a": "at", "nan": "in", "Nou": "We", "bezwen": "need"}
NAMES = {"ht": "Haitian Creole", "en": "English", "fr": "French", "sw": "Swahili"}
SUPPORTED = {"ht": ["en"], "en": ["ht", "fr"], "fr": ["en"]}
MISSING_KEY = "Please contact the server operator to get an API key"
_PUNCTUATION = "!?.,;。"


def post_process(source: str, translation: str) -> str:
    """LibreTranslate's `improve_translation_formatting` (punctuation and case parts)."""
    source = source.strip()
    if not source:
        return ""
    if not translation:
        return source
    if source[-1] in _PUNCTUATION:
        if translation[-1] != source[-1]:
            if translation[-1] in _PUNCTUATION:
                translation = translation[:-1]
            translation += source[-1]
    elif translation[-1] in _PUNCTUATION:
        translation = translation[:-1]
    if source.islower():
        return translation.lower()
    if source.isupper():
        return translation.upper()
    return translation


@dataclass
class FakeLibreTranslate:
    """LibreTranslate's HTTP answers on loopback; `script` queues behaviours per request."""

    supported: dict[str, list[str]] = field(default_factory=lambda: dict(SUPPORTED))
    require_key: str | None = None
    batch_limit: int = -1
    char_limit: int = -1
    req_limit_per_min: int = 0  # 0: no limit
    threads: int = 1
    seconds_per_segment: float = 0.0
    leak_tag: str | None = None
    script: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    answered: list[list[str]] = field(default_factory=list)  # q of each request it translated
    languages_calls: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None
    _spent: list[tuple[float, int]] = field(default_factory=list)
    _workers: asyncio.Semaphore | None = None

    async def start(self) -> FakeLibreTranslate:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_post("/translate", self._translate)
        app.router.add_get("/languages", self._languages)
        app.router.add_get("/frontend/settings", self._settings)
        self._workers = asyncio.Semaphore(self.threads)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    def segments_requested(self) -> list[str]:
        """Every segment received, once per request that carried it."""
        return [t for body in self.requests for t in _texts(body.get("q"))]

    async def _languages(self, request: web.Request) -> web.Response:
        self.languages_calls += 1
        return web.json_response(
            [{"code": c, "name": NAMES[c], "targets": t} for c, t in self.supported.items()]
        )

    async def _settings(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"charLimit": self.char_limit, "apiKeys": self.require_key is not None}
        )

    def _error(self, status: int, text: str) -> web.Response:
        return web.json_response({"error": text}, status=status)

    async def _translate(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, "Invalid JSON format")
        if not isinstance(body, dict):
            return self._error(400, "Invalid JSON format")
        self.requests.append(body)
        action = self.script.pop(0) if self.script else "ok"
        if self.require_key is not None:
            key = body.get("api_key")
            if not key:
                return self._error(400, MISSING_KEY)
            if key != self.require_key:
                return self._error(403, "Invalid API key")
        q = body.get("q")
        texts = _texts(q)
        if self.req_limit_per_min:
            now = time.monotonic()
            self._spent = [(t, c) for t, c in self._spent if now - t < 60]
            if sum(c for _, c in self._spent) + max(1, len(texts)) > self.req_limit_per_min:
                return self._error(429, f"Slowdown: {self.req_limit_per_min} per 1 minute")
            self._spent.append((now, max(1, len(texts))))
        if action == "429":
            return self._error(429, f"Slowdown: {self.req_limit_per_min or 30} per 1 minute")
        if action == "500":
            return self._error(500, "Cannot translate text: boom")
        if action == "bad_format":
            return self._error(400, "xml format is not supported")
        if action == "malformed":
            return web.json_response({"translatedText": ["only one"] * 7})
        if not q:
            return self._error(400, "Invalid request: missing q parameter")
        if isinstance(q, list) and self.batch_limit != -1 and len(q) > self.batch_limit:
            return self._error(
                400, f"Invalid request: request ({len(q)}) exceeds text limit ({self.batch_limit})"
            )
        for text in texts:
            if self.char_limit != -1 and len(text) > self.char_limit:
                return self._error(
                    400,
                    f"Invalid request: request ({len(text)}) exceeds text limit "
                    f"({self.char_limit})",
                )
        source, target = str(body.get("source")), str(body.get("target"))
        for code in (source, target):
            if code not in self.supported:
                return self._error(400, f"{code} is not supported")
        if target not in self.supported[source]:
            return self._error(
                400,
                f"{NAMES.get(target, target)} ({target}) is not available as a target language "
                f"from {NAMES.get(source, source)} ({source})",
            )
        assert self._workers is not None
        async with self._workers:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                delay = 2.0 if action == "slow" else self.seconds_per_segment * len(texts)
                if delay:
                    await asyncio.sleep(delay)
            finally:
                self.in_flight -= 1
        out = [post_process(t, self._render(t, action, target)) for t in texts]
        self.answered.append(texts)
        return web.json_response({"translatedText": out if isinstance(q, list) else out[0]})

    def _render(self, text: str, action: str, target: str) -> str:
        if action == "drop_placeholders":
            text = re.sub(r"\[\d+\]\s*", "", text)
        words = " ".join(WORDS.get(w, w) for w in text.split(" "))
        if self.leak_tag is not None:
            # What LibreTranslate makes of a tag the model wrote: "swh_Latn" -> "Swh Latn".
            tag = self.leak_tag.replace("_", " ")
            words = f"{tag[:1].upper()}{tag[1:]} {words}"
        return words


def _texts(q: Any) -> list[str]:
    if isinstance(q, str):
        return [q]
    if isinstance(q, list):
        return [str(t) for t in q]
    return []
