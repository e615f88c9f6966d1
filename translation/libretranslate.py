"""LibreTranslate backend: send a pair's translations to LibreTranslate servers, fail over to
the local models when none answers.

    client = LibreTranslateClient(["http://lt1:5000", "http://lt2:5000"], api_key=None)
    engine = RemoteFirstEngine.from_models_dir(models_dir, config, client=client)
    t = await engine.translate("Inite KE-3 rive Kenscoff a 14:30", "en", source="ht")
    t.route  # Route.REMOTE when a server translated every segment

Where it plugs in: the engine still does everything around the model call — cleaning,
language detection, finding protected spans and masking them as `[1]`, `[2]`…, segmenting,
checking that every placeholder came back (else translating around it, `span_repaired`),
unmasking, quality flags. Only the segment call itself (`SegmentTranslation`, see
`translation.chain`) goes to a server: the servers see masked segments, never the spans.

The server API, as LibreTranslate 1.9.6 answers it (`tests/support/fake_libretranslate.py`
reproduces it, `tests/integration/test_libretranslate_real.py` checks the real server):
- `POST /translate` JSON `{"q": [segments], "source", "target", "format": "text",
  "api_key"?}` → 200 `{"translatedText": [texts]}`; errors are `{"error": "..."}`: 400
  "`xx` is not supported" / "… is not available as a target language from …" (the server
  lacks the pair), 400 "Please contact the server operator to get an API key" and 403
  "Invalid API key" (auth), 400 "Invalid request: request (n) exceeds text limit (m)"
  (`--batch-limit` / `--char-limit`), 429 "Slowdown: …" without Retry-After (each `q` item
  costs one), 500 "Cannot translate text: …".
- `GET /languages` → `[{"code", "name", "targets": [codes]}]`; `GET /frontend/settings` →
  `{"charLimit", …}`.

Routing and fail-over (per-server state in `translation.lt_servers`): only servers listing
the pair in `/languages` (cached, refreshed with backoff) and not cooling down (after a
failure, an auth failure, or for that pair) are tried, round-robin. Segments go in `q` lists
within the server's limits, at most `max_in_flight` requests per server at once, paced by
segments when a per-minute budget is set. A 5xx or connection error is retried once on the
same server; a pair the server lacks, an auth failure, a 429, or a malformed answer moves on
to the next server. A request that times out (its timeout grows with its segments, up to a
hard ceiling) is abandoned for good: never sent to another server, its segments translated
once by the local models. A request every server would refuse (another 400) goes local at
once. Whatever no server translated, the local route (direct, multilingual or pivot on
CTranslate2) translates; with no local route, the pair is missing as before.

A multilingual package inside LibreTranslate answers with its language tag ("Swh Latn …",
Argos ignores the target prefix): the tag is cut out and `Flag.LANGUAGE_TAG` set
(`translation.tags`).

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
import re
import time
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

from translation.chain import CachedTranslation, Hypothesis, SegmentTranslation
from translation.engine import Engine, EngineConfig
from translation.errors import TranslationError
from translation.lt_servers import LANGUAGES_BACKOFF_MAX_S, ServerState
from translation.tags import strip_leaked_tags
from translation.types import Flag, Route, Translation

if TYPE_CHECKING:
    import httpx

    from translation.routing import Plan

log = logging.getLogger(__name__)

REMOTE_CONFIDENCE = 0.6
_REMOTE_LOG_PROB = math.log(REMOTE_CONFIDENCE)
_RETRY_PAUSE_S = 0.2
# LibreTranslate counts its limits per minute and sends no Retry-After with its 429.
_RATE_LIMIT_COOLDOWN_S = 60.0
_LIMIT_RE = re.compile(r"request \((\d+)\) exceeds text limit \((\d+)\)")


class RemoteUnavailable(TranslationError):
    """No LibreTranslate server translated (all of) the segments; the local models take over.

    `partial` holds what servers did translate (None where they did not), so only the rest is
    translated locally."""

    def __init__(self, reason: str, partial: Sequence[str | None] = ()) -> None:
        super().__init__(reason)
        self.partial = list(partial)


class _ServerFailed(Exception):
    """One server's answer was unusable; `cooldown` seconds before it is asked again."""

    def __init__(self, reason: str, *, cooldown: float | None = None, retry: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.cooldown = cooldown
        self.retry = retry  # worth one more try on the same server


class _PairMissing(Exception):
    """The server does not translate this pair (400 "not supported" / "not available")."""


class _AuthFailed(Exception):
    """The server wants a (valid) API key: 403, or 400 "… to get an API key"."""


class _Busy(Exception):
    """The server has no free slot or pace budget soon enough; nothing was sent."""


class _Abandoned(Exception):
    """A request was sent and not answered in time; it is given up for good."""


class _LimitExceeded(Exception):
    """400 "request (n) exceeds text limit (m)": the server's real limit, learnt."""


class _Refused(Exception):
    """The request itself was refused (400 other than the above): no server will take it."""


@dataclasses.dataclass(frozen=True)
class ClientLimits:
    """How hard Daraja may push each server (defaults for what a server does not publish)."""

    max_in_flight: int = 2  # requests at once per server
    per_minute: float = 0.0  # segments per minute per server (0: not paced)
    batch_limit: int = 16  # most segments in one request (LibreTranslate's --batch-limit)
    char_limit: int | None = None  # most characters in one segment, unless /frontend/settings
    timeout_per_segment_s: float = 1.0  # added to the base timeout for each segment sent
    timeout_max_s: float = 120.0  # hard ceiling for one request, however many segments
    auth_cooldown_s: float = 900.0  # after a refused or missing API key
    languages_ttl_s: float = 600.0  # how long a `/languages` answer is trusted
    queue_wait_s: float = 30.0  # longest wait for a free slot or pace budget (nothing sent yet)


class LibreTranslateClient:
    """Async client for one or more LibreTranslate servers, with routing and fail-over."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        cooldown_s: float = 30.0,
        unsupported_ttl_s: float = 600.0,
        limits: ClientLimits | None = None,
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
        self.limits = limits or ClientLimits()
        self.clock = clock
        self.servers = {
            url: ServerState(
                url,
                max_in_flight=max(1, self.limits.max_in_flight),
                per_minute=self.limits.per_minute,
                batch_limit=self.limits.batch_limit,
                char_limit=self.limits.char_limit,
                clock=clock,
            )
            for url in self.urls
        }
        self.stats = {url: state.stats for url, state in self.servers.items()}
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._next = 0

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s),
                transport=self._transport,
                # One connection per request in flight, so the per-server cap is the real one.
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
            )
        return self._http

    async def close(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def request_timeout(self, segments: int) -> float:
        """Seconds one request of `segments` segments may take before it is abandoned."""
        scaled = self.timeout_s + self.limits.timeout_per_segment_s * max(0, segments - 1)
        return min(scaled, max(self.limits.timeout_max_s, self.timeout_s))

    # ---- which servers ---------------------------------------------------------------------

    async def refresh(self, *, force: bool = False) -> None:
        """Ask `/languages` (and `/frontend/settings`) of the servers whose list is stale."""
        due = [s for s in self.servers.values() if s.up() and (force or s.languages_due())]
        if due:
            await asyncio.gather(*(self._refresh_one(s, force) for s in due))

    async def _refresh_one(self, server: ServerState, force: bool) -> None:
        import httpx

        async with server.languages_lock:
            if not force and not server.languages_due():
                return  # another message refreshed it meanwhile
            try:
                pairs = _pairs_of(await self._languages(server.url))
            except (RemoteUnavailable, httpx.HTTPError, ValueError) as exc:
                pause = server.languages_failed()
                # One warning when it starts failing, then one per longest pause (5 min).
                loud = server.languages_failures == 1 or pause >= LANGUAGES_BACKOFF_MAX_S
                log.log(
                    logging.WARNING if loud else logging.DEBUG,
                    "LibreTranslate %s: /languages failed (%s); asked again in %.0fs",
                    server.host,
                    type(exc).__name__,
                    pause,
                )
                return
            server.languages_ok(pairs, self.limits.languages_ttl_s)
            limit = await self._char_limit(server.url)
            if limit is not None:
                server.char_limit = limit

    async def _char_limit(self, url: str) -> int | None:
        """`charLimit` of `/frontend/settings` (None when absent, unlimited or unreadable)."""
        import httpx

        try:
            response = await self._client().get(f"{url}/frontend/settings", timeout=5.0)
            data = response.json() if response.status_code == 200 else None
        except (ValueError, httpx.HTTPError):
            return None
        value = data.get("charLimit") if isinstance(data, dict) else None
        return value if isinstance(value, int) and value > 0 else None

    async def candidates(self, source: str, target: str) -> list[ServerState]:
        """Servers to try for a pair: up, listing it, not cooling down for it; round-robin."""
        await self.refresh()
        able = [
            s
            for s in self.servers.values()
            if s.up() and s.pairs is not None and s.serves(source, target)
        ]
        if not able:
            return []
        start = self._next % len(able)
        self._next += 1
        return able[start:] + able[:start]

    # ---- translating -----------------------------------------------------------------------

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """Translate on the servers that serve the pair; RemoteUnavailable (with what was
        translated, if anything) when they cannot translate every text."""
        out: list[str | None] = [None] * len(texts)
        servers = await self.candidates(source, target)
        if not servers:
            raise RemoteUnavailable(f"no LibreTranslate server available for {source}→{target}")
        reasons: list[str] = []
        for server in servers:
            todo = [(i, texts[i]) for i, t in enumerate(out) if t is None]
            if not todo:
                break
            try:
                await self._on_server(server, todo, out, source, target)
            except _PairMissing:
                server.pair_missing(source, target, self.unsupported_ttl_s)
                log.info("LibreTranslate %s does not serve %s→%s", server.host, source, target)
                reasons.append(f"{server.host}: pair not served")
            except _AuthFailed as exc:
                self._auth_failed(server, str(exc))
                reasons.append(f"{server.host}: API key refused")
            except _Busy:
                reasons.append(f"{server.host}: busy")
            except _Abandoned as exc:
                # Sent and unanswered: the server may still be translating it. Never send the
                # same segments elsewhere (that would translate them twice); the local models
                # take the rest, and this server rests.
                self._mark_down(server, _ServerFailed(str(exc)), source, target)
                reasons.append(f"{server.host}: {exc}")
                break
            except _Refused as exc:
                reasons.append(f"{server.host} refused the request: {exc}")
                break
            except _ServerFailed as exc:
                self._mark_down(server, exc, source, target)
                reasons.append(f"{server.host}: {exc.reason}")
        if any(t is None for t in out):
            raise RemoteUnavailable("; ".join(reasons) or "no server answered", out)
        return [t for t in out if t is not None]

    async def _on_server(
        self,
        server: ServerState,
        todo: list[tuple[int, str]],
        out: list[str | None],
        source: str,
        target: str,
    ) -> None:
        """Send `todo` to one server in requests within its limits, filling `out`."""
        relearnt = False
        while True:
            chunks, _too_long = server.chunks([(i, t) for i, t in todo if out[i] is None])
            try:
                for chunk in chunks:
                    texts = await self._send(server, [t for _, t in chunk], source, target)
                    for (i, _), text in zip(chunk, texts, strict=True):
                        out[i] = text
                server.pair_ok(source, target)
                return  # texts over the character limit stay for the next server or local
            except _LimitExceeded:
                if relearnt:
                    raise _ServerFailed("refuses requests within its stated limits") from None
                relearnt = True

    async def _send(
        self, server: ServerState, texts: list[str], source: str, target: str
    ) -> list[str]:
        """One request, within the server's in-flight cap and pace; one retry on a 5xx or a
        connection error (nothing was translated then)."""
        patience = self.limits.queue_wait_s
        try:
            await asyncio.wait_for(server.slots.acquire(), timeout=patience)
        except TimeoutError:
            raise _Busy() from None
        try:
            if not server.up() or not server.serves(source, target):
                # It failed (or lost the pair) while this request waited for a slot.
                raise _Busy()
            wait = server.pacer.reserve(len(texts), max_wait_s=patience)
            if wait is None:
                raise _Busy()
            if wait > 0:
                await asyncio.sleep(wait)
            for attempt in (1, 2):
                try:
                    return await self._post(server, texts, source, target)
                except _ServerFailed as exc:
                    if exc.retry and attempt == 1:
                        await asyncio.sleep(_RETRY_PAUSE_S)
                        continue
                    raise
            raise AssertionError("unreachable")
        finally:
            server.slots.release()

    def _mark_down(
        self, server: ServerState, exc: _ServerFailed, source: str, target: str
    ) -> None:
        stats = server.stats
        stats.failures += 1
        pause = max(self.cooldown_s, exc.cooldown or 0.0)
        was_up = stats.down_until <= self.clock()
        stats.down_until = self.clock() + pause
        server.pair_failed(source, target, self.cooldown_s)
        if was_up:
            log.warning(
                "LibreTranslate %s failed (%s); not used for %.0fs", server.host, exc.reason, pause
            )

    def _auth_failed(self, server: ServerState, reason: str) -> None:
        was_up = server.auth_down_until <= self.clock()
        server.auth_down_until = self.clock() + self.limits.auth_cooldown_s
        server.stats.failures += 1
        if was_up:
            # The key is never logged: only whether one was sent.
            log.warning(
                "LibreTranslate %s refused the request for its API key (%s; a key was %s); "
                "not used for %.0fs: check DARAJA_LIBRETRANSLATE_API_KEY",
                server.host,
                reason,
                "sent" if self.api_key else "not set",
                self.limits.auth_cooldown_s,
            )

    async def _post(
        self, server: ServerState, texts: Sequence[str], source: str, target: str
    ) -> list[str]:
        import httpx

        body: dict[str, Any] = {"q": list(texts), "source": source, "target": target}
        body["format"] = "text"
        if self.api_key:
            body["api_key"] = self.api_key  # in the body: URLs end up in access logs
        stats = server.stats
        stats.requests += 1
        stats.segments_sent += len(texts)
        limit = self.request_timeout(len(texts))
        timeout = httpx.Timeout(limit, connect=min(limit, 5.0))
        try:
            # The hard ceiling holds even if a server trickles bytes to defeat read timeouts.
            async with asyncio.timeout(limit + 1.0):
                response = await self._client().post(
                    f"{server.url}/translate", json=body, timeout=timeout
                )
        except (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ConnectError):
            stats.requests -= 1  # never reached the server
            stats.segments_sent -= len(texts)
            raise _ServerFailed("cannot connect", retry=True) from None
        except (httpx.TimeoutException, TimeoutError):
            stats.timeouts += 1
            raise _Abandoned(f"no answer within {limit:g}s") from None
        except httpx.HTTPError as exc:
            raise _ServerFailed(type(exc).__name__, retry=True) from None
        return self._answer(server, response, texts, source, target)

    def _answer(
        self,
        server: ServerState,
        response: httpx.Response,
        texts: Sequence[str],
        source: str,
        target: str,
    ) -> list[str]:
        """The texts of a 200, else the exception saying what the server's answer means."""
        status = response.status_code
        error = _error_text(response)
        if status == 200:
            translated = _translated(response, len(texts))
            if translated is None:
                raise _ServerFailed("malformed answer")
            server.stats.ok += 1
            return translated
        if status == 403 or (status == 400 and "to get an API key" in error):
            raise _AuthFailed(f"{status}: {error[:80]}")
        if status == 400:
            unknown = error in (f"{source} is not supported", f"{target} is not supported")
            if unknown or "is not available as a target language" in error:
                raise _PairMissing(error)
            match = _LIMIT_RE.search(error)
            if match is not None:
                size, limit = int(match.group(1)), int(match.group(2))
                if size == len(texts) and limit < len(texts):
                    server.batch_limit = max(1, limit)
                else:
                    server.char_limit = max(1, limit)
                log.info("LibreTranslate %s: limit learnt from a 400 (%d)", server.host, limit)
                raise _LimitExceeded()
            raise _Refused(error[:200] or "bad request")
        if status == 429:
            server.pacer.exhaust()
            after = _retry_after(response)
            raise _ServerFailed(
                "rate limited (429)",
                cooldown=after if after is not None else _RATE_LIMIT_COOLDOWN_S,
            )
        if status >= 500:
            raise _ServerFailed(f"server error {status}", retry=True)
        raise _ServerFailed(f"unexpected status {status}")

    async def _languages(self, url: str) -> list[dict[str, Any]]:
        response = await self._client().get(f"{url}/languages", timeout=5.0)
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, list):
            raise RemoteUnavailable("malformed /languages answer")
        return data

    async def languages(self, url: str | None = None) -> list[dict[str, Any]]:
        """`GET /languages` of one server (the first by default)."""
        return await self._languages((url or self.urls[0]).rstrip("/"))

    async def pairs(self, url: str | None = None) -> set[tuple[str, str]]:
        """The (source, target) pairs a server announces."""
        return set(_pairs_of(await self.languages(url)))


def _pairs_of(languages: list[dict[str, Any]]) -> frozenset[tuple[str, str]]:
    try:
        return frozenset(
            (str(lang["code"]), str(target))
            for lang in languages
            for target in lang.get("targets", ())
            if target != lang.get("code")
        )
    except (KeyError, TypeError, AttributeError):
        raise RemoteUnavailable("malformed /languages answer") from None


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
        """Requests within the servers' limits; a fixed neutral confidence (no log-probs
        remotely; a server has no length bound to honour)."""
        texts = await self.client.translate(segments, self.source, self.target)
        return [_hypothesis(text) for text in texts]


def _hypothesis(text: str) -> Hypothesis:
    return Hypothesis(text, _REMOTE_LOG_PROB, max(1, len(text.split())))


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
        """Remote, else local for the segments no server translated (the reason is logged by
        the client): each segment is translated once, by one side."""
        served = _SERVED.get()
        try:
            result = await self.remote.translate_segments(segments, bounds)
        except RemoteUnavailable as exc:
            log.debug("falling back to local models for %s→%s: %s", self.source, self.target, exc)
            partial = exc.partial if len(exc.partial) == len(segments) else [None] * len(segments)
            missing = [i for i, text in enumerate(partial) if text is None]
            local = await self.local.translate_segments(
                [segments[i] for i in missing],
                None if bounds is None else [bounds[i] for i in missing],
            )
            out: list[Hypothesis | None] = [
                None if text is None else _hypothesis(text) for text in partial
            ]
            for i, hyp in zip(missing, local, strict=True):
                out[i] = hyp
            if served is not None:
                served.append("local")
                if len(missing) < len(segments):
                    served.append("remote")
            return [h for h in out if h is not None]
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
        if "remote" in served:
            # Argos ignores a multilingual package's target prefix: the model may write the
            # language tag itself ("Swh Latn …"). Cut it out and warn the reader.
            prepared = args[1] if len(args) > 1 else kwargs.get("prep")
            source_text = str(getattr(prepared, "text", ""))
            text, leaked = strip_leaked_tags(result.text, source_text)
            if leaked:
                result = dataclasses.replace(
                    result, text=text, flags=(*result.flags, Flag.LANGUAGE_TAG)
                )
        if served and all(s == "remote" for s in served):
            # Every segment came from a server: say so, and no model probability exists.
            return dataclasses.replace(
                result, route=Route.REMOTE, models=("libretranslate",), score=None
            )
        return result

    async def _round_trip(self, *args: Any, **kwargs: Any) -> Any:
        # The back-translation (quality estimation) is not the reader's translation: where it
        # was served must not change the route or the tag check of the translation itself
        # (a pair served remotely whose reverse only the local models have is still remote).
        token = _SERVED.set([])
        try:
            return await super()._round_trip(*args, **kwargs)
        finally:
            _SERVED.reset(token)

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
