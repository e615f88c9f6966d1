"""Voice notes: transcribe off the event loop, then relay the transcript as its own message.

The voice note itself is relayed unchanged by the relay, at once. Here a bounded queue feeds
one worker thread (its own CTranslate2 thread budget, so transcription and translation do not
fight over the cores); each transcript (or the reason there is none) is relayed through the
normal path as a `transcript` message that replies to the voice note, so partner groups see it
under their copy of the note, translated, and the sender sees it under the original.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from bot.services.relay import Inbound, RelayResult, RelayService
from storage.models import split_languages
from translation.speech import Transcriber, Transcript

log = logging.getLogger(__name__)

TRANSCRIPT_KIND = "transcript"


@dataclass(frozen=True)
class VoiceJob:
    """One voice note waiting for its transcript."""

    chat_id: int
    message_id: int
    author_id: int | None
    author_name: str
    file_id: str
    languages: tuple[str, ...]  # the language to force first, then the chat's others
    duration: float | None = None
    update_id: int | None = None


class VoiceService:
    """The transcription queue and its worker."""

    def __init__(
        self,
        relay: RelayService,
        transcriber: Transcriber | None,
        fetch: Callable[[str], Awaitable[bytes]] | None = None,
        *,
        queue_size: int = 16,
        max_seconds: float = 600.0,
    ) -> None:
        self.relay = relay
        self.transcriber = transcriber
        self.fetch = fetch
        self.max_seconds = max_seconds
        self.queue: asyncio.Queue[VoiceJob] = asyncio.Queue(maxsize=max(1, queue_size))
        # One thread: the worker's CPU use is its model's `cpu_threads`, never more. It runs at
        # a lower scheduling priority, and loads the model there (CTranslate2's threads
        # inherit it): text traffic keeps the cores it needs, transcripts take what is left.
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="voice", initializer=lower_priority
        )
        self._answers: set[asyncio.Task[RelayResult]] = set()

    def submit(self, job: VoiceJob) -> bool:
        """Queue a voice note (never blocks the handler); a full queue or no model answers at
        once with the reason, so nothing waits unseen."""
        if self.transcriber is None or not self.transcriber.supports(job.languages):
            self._answer_soon(job, Transcript("no_model"))
            return False
        if job.duration is not None and job.duration > self.max_seconds:
            self._answer_soon(job, Transcript("too_long", duration=job.duration))
            return False
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            self._answer_soon(job, Transcript("busy"))
            return False
        return True

    def _answer_soon(self, job: VoiceJob, transcript: Transcript) -> None:
        task = asyncio.get_running_loop().create_task(self._publish(job, transcript))
        self._answers.add(task)  # held: the loop keeps only a weak reference to a task
        task.add_done_callback(self._answers.discard)
        task.add_done_callback(_log_failure)

    async def resume(self, *, within: timedelta = timedelta(days=1)) -> int:
        """Queue again the voice notes of the last day whose transcript (or reason for none)
        was never relayed: the process stopped in between. Returns how many."""
        from storage.models import utcnow

        since = utcnow() - within
        async with self.relay.storage(read_only=True) as uow:
            rows = await uow.messages.untranscribed_voice(since)
        count = 0
        for message, chat_id, languages, author_language in rows:
            media = message.media or {}
            if not media.get("file_id"):
                continue
            self.submit(
                VoiceJob(
                    chat_id=chat_id,
                    message_id=message.telegram_message_id,
                    author_id=message.author_user_id,
                    author_name=message.author_name,
                    file_id=str(media["file_id"]),
                    languages=job_languages(split_languages(languages), author_language),
                    duration=media.get("duration"),
                )
            )
            count += 1
        if count:
            log.info("%d voice notes queued again for transcription", count)
        return count

    async def run(self) -> None:
        """Work the queue until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            job = await self.queue.get()
            try:
                transcript = await self._transcribe(job, loop)
                await self._publish(job, transcript)
            except Exception:
                log.exception("voice note %s in chat %s failed", job.message_id, job.chat_id)
            finally:
                self.queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued voice note has its transcript (or reason) relayed."""
        await self.queue.join()
        if self._answers:
            await asyncio.gather(*self._answers, return_exceptions=True)

    def close(self) -> None:
        """Stop the worker thread (after the task is cancelled)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _transcribe(self, job: VoiceJob, loop: asyncio.AbstractEventLoop) -> Transcript:
        assert self.transcriber is not None
        if self.fetch is None:
            return Transcript("no_model")
        try:
            audio = await self.fetch(job.file_id)
        except Exception as exc:  # noqa: BLE001 - Telegram refuses big files, links drop
            log.info("voice note could not be downloaded: %s", type(exc).__name__)
            return Transcript("corrupt")
        transcriber = self.transcriber
        return await loop.run_in_executor(
            self._executor,
            lambda: transcriber.transcribe(
                bytes(audio), languages=job.languages, duration_hint=job.duration
            ),
        )

    async def _publish(self, job: VoiceJob, transcript: Transcript) -> RelayResult:
        """Relay the transcript (or the reason for none) as a reply to the voice note."""
        log.info(
            "voice note %s in chat %s: %s (%s, %s)",
            job.message_id,
            job.chat_id,
            transcript.status,
            transcript.language,
            transcript.model,
        )
        inbound = Inbound(
            chat_id=job.chat_id,
            # Its own row in the message map, beside the note's: a negative id, which
            # Telegram never gives a message.
            message_id=-job.message_id,
            author_id=job.author_id,
            author_name=job.author_name,
            kind=TRANSCRIPT_KIND,
            text=transcript.text,
            media={"transcript": transcript.scores(), "heard": " ".join(transcript.segments)},
            reply_to_message_id=job.message_id,
            update_id=None,
            language=transcript.language or (job.languages[0] if job.languages else None),
        )
        return await self.relay.receive(inbound)


# How much lower than the relay a transcription thread runs (Linux nice, per thread): at 10 a
# busy relay gets about nine tenths of a contended core.
VOICE_NICE = 10


def lower_priority() -> None:
    """Lower the calling thread's CPU priority (Linux: nice is per thread; threads it
    starts inherit it). Elsewhere, or when refused, nothing changes."""
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + VOICE_NICE))
    except (AttributeError, OSError):
        pass


def job_languages(chat_languages: Sequence[str], author_language: str | None) -> tuple[str, ...]:
    """The languages a note may be in: the sender's first when the chat has it, else the
    chat's own order (a one-language chat forces its language)."""
    langs = [lang for lang in chat_languages if lang]
    if author_language in langs:
        langs.remove(author_language)
        langs.insert(0, author_language)
    return tuple(langs)


def _log_failure(task: asyncio.Task[RelayResult]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("voice status could not be relayed: %s", type(task.exception()).__name__)
