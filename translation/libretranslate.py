"""LibreTranslate backend: send a pair's translations to LibreTranslate servers, fail over to
the local models (issue 10).

    client = LibreTranslateClient(["http://lt1:5000", "http://lt2:5000"], api_key=None)
    engine = RemoteFirstEngine.from_models_dir(models_dir, config, client=client)
    t = await engine.translate("Inite KE-3 rive Kenscoff a 14:30", "en", source="ht")
    t.route  # Route.REMOTE when a server translated every segment

Where it plugs in: the engine still does everything around the model call — cleaning,
language detection, finding protected spans and masking them as `[1]`, `[2]`…, segmenting,
checking that every placeholder came back (else translating around it, `span_repaired`),
unmasking, quality flags. Only the segment call itself (`SegmentTranslation`, see
`translation.chain`) goes to a server: the servers see masked segments, never the spans.

The server API (LibreTranslate's documented HTTP API):
- `POST /translate` JSON `{"q": [segments], "source", "target", "format": "text",
  "api_key"?}` → 200 `{"translatedText": [texts]}`; errors are `{"error": "..."}` with
  400 (bad request; `"<code> is not supported"` for a language), 403 (API key), 429 (rate
  limit), 500 (translation failed).
- `GET /languages` → `[{"code", "name", "targets": [codes]}]` (used by `pairs()`).

Fail-over, in order: the servers are tried one after another (round-robin start, so load
spreads); a connection error or 5xx is retried once on the same server after a short pause; a
timeout, 429, 403 or malformed answer moves on at once. A server that failed is skipped for
`cooldown_s` (429: its Retry-After when longer), so later messages do not wait for it again. A
server that says it does not support a pair is not asked for that pair again for
`unsupported_ttl_s`. When no server answers, the local route (direct, multilingual or pivot on
CTranslate2) translates the segments; with no local route, the pair is missing as before.

Scores: LibreTranslate returns no probabilities, so a remotely translated segment carries a
fixed neutral confidence (`REMOTE_CONFIDENCE`, above the low-confidence threshold): the other
quality flags (length ratio, repeats, untranslated, spans) still decide, and the result's
`score` is None (unknown), its `route` `libretranslate`, its `models` the server used.

The engine's start-up self-test always checks the *local* models (known sentences must come
back exactly from the installed packages, not from a server).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from translation.chain import CachedTranslation, Hypothesis, SegmentTranslation
from translation.engine import Engine, EngineConfig
from translation.errors import TranslationError
from translation.types import Route, Translation

if TYPE_CHECKING:
    import httpx

    from translation.routing import Plan

log = logging.getLogger(__name__)

REMOTE_CONFIDENCE = 0.6
_REMOTE_LOG_PROB = math.log(REMOTE_CONFIDENCE)
_RETRY_PAUSE_S = 0.2


class RemoteUnavailable(TranslationError):
    """No LibreTranslate server translated the segments (the local models take over)."""


class _ServerFailed(Exception):
    """One server's answer was unusable; `cooldown` seconds before it is asked again."""

    def __init__(self, reason: str, *, cooldown: float | None = None, retry: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.cooldown = cooldown
        self.retry = retry  # worth one more try on the same server


class _Unsupported(Exception):
    """The server does not translate this pair."""


class _Refused(Exception):
    """The request itself was refused (400 other than a language): no server will take it."""


@dataclasses.dataclass
class ServerStats:
    """What one server did (tests and logs)."""

    requests: int = 0
    ok: int = 0
    failures: int = 0
    down_until: float = 0.0


class LibreTranslateClient:
    """Async client for one or more LibreTranslate servers, with retries and fail-over."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        cooldown_s: float = 30.0,
        unsupported_ttl_s: float = 600.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("at least one LibreTranslate URL is needed")
        self.urls = [u.rstrip("/") for u in urls]
        self.api_key = api_key or None
        self.timeout_s = timeout_s
        self.cooldown_s = cooldown_s
        self.unsupported_ttl_s = unsupported_ttl_s
        self.clock = clock
        self.stats = {url: ServerStats() for url in self.urls}
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._next = 0
        self._unsupported: dict[tuple[str, str, str], float] = {}

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s), transport=self._transport
            )
        return self._http

    async def close(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _order(self, source: str, target: str) -> list[str]:
        """Servers to try: available ones from the round-robin start, skipping cooled down
        servers and those that said they do not serve the pair."""
        now = self.clock()
        n = len(self.urls)
        start = self._next % n
        self._next += 1
        rotated = self.urls[start:] + self.urls[:start]
        return [
            url
            for url in rotated
            if self.stats[url].down_until <= now
            and self._unsupported.get((url, source, target), 0.0) <= now
        ]

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """Translate a batch on the first server that can; RemoteUnavailable when none can."""
        servers = self._order(source, target)
        if not servers:
            raise RemoteUnavailable(f"no LibreTranslate server available for {source}→{target}")
        reasons: list[str] = []
        for url in servers:
            for attempt in (1, 2):
                try:
                    return await self._post(url, texts, source, target)
                except _Unsupported:
                    self._unsupported[(url, source, target)] = (
                        self.clock() + self.unsupported_ttl_s
                    )
                    log.info("LibreTranslate %s does not serve %s→%s", _host(url), source, target)
                    reasons.append(f"{_host(url)}: pair not served")
                    break
                except _Refused as exc:
                    raise RemoteUnavailable(f"{_host(url)} refused the request: {exc}") from None
                except _ServerFailed as exc:
                    if exc.retry and attempt == 1:
                        await asyncio.sleep(_RETRY_PAUSE_S)
                        continue
                    self._mark_down(url, exc)
                    reasons.append(f"{_host(url)}: {exc.reason}")
                    break
        raise RemoteUnavailable("; ".join(reasons) or "no server answered")

    def _mark_down(self, url: str, exc: _ServerFailed) -> None:
        stats = self.stats[url]
        stats.failures += 1
        pause = max(self.cooldown_s, exc.cooldown or 0.0)
        was_up = stats.down_until <= self.clock()
        stats.down_until = self.clock() + pause
        if was_up:
            log.warning(
                "LibreTranslate %s failed (%s); not used for %.0fs", _host(url), exc.reason, pause
            )

    async def _post(self, url: str, texts: Sequence[str], source: str, target: str) -> list[str]:
        import httpx

        body: dict[str, Any] = {"q": list(texts), "source": source, "target": target}
        body["format"] = "text"
        if self.api_key:
            body["api_key"] = self.api_key  # in the body: URLs end up in access logs
        stats = self.stats[url]
        stats.requests += 1
        try:
            response = await self._client().post(f"{url}/translate", json=body)
        except httpx.TimeoutException:
            raise _ServerFailed(f"no answer within {self.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise _ServerFailed(type(exc).__name__, retry=True) from None
        status = response.status_code
        error = _error_text(response)
        if status == 200:
            translated = _translated(response, len(texts))
            if translated is None:
                raise _ServerFailed("malformed answer")
            stats.ok += 1
            return translated
        if status == 400:
            if error.endswith("is not supported"):
                raise _Unsupported(error)
            raise _Refused(error[:200] or "bad request")
        if status == 403:
            # A wrong or missing key does not heal in seconds: wait longer before asking again.
            raise _ServerFailed(f"API key refused (403 {error[:80]})", cooldown=300.0)
        if status == 429:
            raise _ServerFailed("rate limited (429)", cooldown=_retry_after(response))
        if status >= 500:
            raise _ServerFailed(f"server error {status}", retry=True)
        raise _ServerFailed(f"unexpected status {status}")

    async def languages(self, url: str | None = None) -> list[dict[str, Any]]:
        """`GET /languages` of one server (the first by default)."""
        response = await self._client().get(f"{(url or self.urls[0]).rstrip('/')}/languages")
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, list):
            raise RemoteUnavailable("malformed /languages answer")
        return data

    async def pairs(self, url: str | None = None) -> set[tuple[str, str]]:
        """The (source, target) pairs a server announces."""
        return {
            (str(lang["code"]), str(target))
            for lang in await self.languages(url)
            for target in lang.get("targets", ())
            if target != lang.get("code")
        }


def _host(url: str) -> str:
    """A server's host:port for logs (never a path or query that could hold a key)."""
    return urlsplit(url).netloc or url


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def _translated(response: httpx.Response, count: int) -> list[str] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    out = data.get("translatedText") if isinstance(data, dict) else None
    if count == 1 and isinstance(out, str):
        out = [out]
    if not isinstance(out, list) or len(out) != count or not all(isinstance(t, str) for t in out):
        return None
    return out


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(float(value), 3600.0)
    except ValueError:
        return None


# -- the engine side ---------------------------------------------------------------------------

# Which backend served each segment call of the translation in progress ("remote"/"local").
_SERVED: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "daraja_lt_served", default=None
)
# Set while the self-test runs: it checks the installed models, never a server.
_LOCAL_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "daraja_lt_local_only", default=False
)


class RemoteTranslation:
    """A `SegmentTranslation` on LibreTranslate servers for one pair."""

    def __init__(self, client: LibreTranslateClient, source: str, target: str) -> None:
        self.client = client
        self.source = source
        self.target = target

    @property
    def models(self) -> tuple[str, ...]:
        """Reported as the backend's name (which server answered is in the logs)."""
        return ("libretranslate",)

    @property
    def key(self) -> Hashable:
        """Cache identity: the servers and the pair."""
        return ("libretranslate", tuple(self.client.urls), self.source, self.target)

    async def translate_segments(
        self, segments: Sequence[str], bounds: Sequence[str] | None = None
    ) -> list[Hypothesis]:
        """One request for all segments; a fixed neutral confidence (no log-probs remotely;
        a server has no length bound to honour)."""
        texts = await self.client.translate(segments, self.source, self.target)
        return [Hypothesis(text, _REMOTE_LOG_PROB, max(1, len(text.split()))) for text in texts]


class FailoverTranslation:
    """Remote first; when no server can, the local route translates the same segments."""

    def __init__(self, remote: SegmentTranslation, local: SegmentTranslation) -> None:
        self.remote = remote
        self.local = local
        self.source = local.source
        self.target = local.target

    @property
    def models(self) -> tuple[str, ...]:
        """Both, remote first."""
        return (*self.remote.models, *self.local.models)

    @property
    def key(self) -> Hashable:
        """Both identities."""
        return (self.remote.key, self.local.key)

    async def translate_segments(
        self, segments: Sequence[str], bounds: Sequence[str] | None = None
    ) -> list[Hypothesis]:
        """Remote, else local (the reason is logged by the client)."""
        served = _SERVED.get()
        try:
            result = await self.remote.translate_segments(segments, bounds)
        except RemoteUnavailable as exc:
            log.debug("falling back to local models for %s→%s: %s", self.source, self.target, exc)
            if served is not None:
                served.append("local")
            return await self.local.translate_segments(segments, bounds)
        if served is not None:
            served.append("remote")
        return result


class RemoteFirstEngine(Engine):
    """The engine with LibreTranslate servers in front of the local models.

    Only the segment calls change (`_chain`); detection, spans, segmentation, repair, unmasking
    and flags are the engine's. Pairs are sent remotely only when they also have a local route
    (that is what a server failure falls back to).
    """

    def __init__(self, *args: Any, client: LibreTranslateClient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client

    @classmethod
    def from_models_dir(  # type: ignore[override]
        cls, path: Any, config: EngineConfig | None = None, *, client: LibreTranslateClient
    ) -> RemoteFirstEngine:
        """An engine over a model directory, with the servers in front."""
        from pathlib import Path

        from translation.store import ModelStore

        return cls(ModelStore(Path(path)), config, client=client)

    def _chain(self, plan: Plan) -> SegmentTranslation:
        local = super()._chain(plan)
        if _LOCAL_ONLY.get() or not plan.hops:
            return local
        source, target = plan.hops[0].source, plan.hops[-1].target
        remote = CachedTranslation(RemoteTranslation(self.client, source, target), self._cache)
        return FailoverTranslation(remote, local)

    async def _translate_one(self, *args: Any, **kwargs: Any) -> Translation:
        served: list[str] = []
        token = _SERVED.set(served)
        try:
            result: Translation = await super()._translate_one(*args, **kwargs)
        finally:
            _SERVED.reset(token)
        if served and all(s == "remote" for s in served):
            # Every segment came from a server: say so, and no model probability exists.
            return dataclasses.replace(
                result, route=Route.REMOTE, models=("libretranslate",), score=None
            )
        return result

    async def self_test(self, *args: Any, **kwargs: Any) -> Any:
        """The engine's self-test, on the local models only."""
        token = _LOCAL_ONLY.set(True)
        try:
            return await super().self_test(*args, **kwargs)
        finally:
            _LOCAL_ONLY.reset(token)

    async def close(self) -> None:
        """Close the engine and the servers' connection pool."""
        await super().close()
        await self.client.close()
