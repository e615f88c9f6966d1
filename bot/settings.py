"""Daraja's settings: every knob comes from `DARAJA_*` environment variables or `.env`.

Nothing else in the code reads the environment. `load_settings()` turns a validation failure
into one line that names the setting and the problem (the CLI exits with status 2 on it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.domain import LanguageCode
from bot.errors import ConfigError

TELEGRAM_API_URL = "https://api.telegram.org"
_TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,100}$")
# Telegram's secret_token alphabet, at least 16 characters (fewer is guessable).
_WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{16,256}")
# Placeholder values that must never reach production (cf. mautrix `forbidden_defaults`).
_FORBIDDEN_TOKENS = {"changeme", "your-token-here", "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"}


class Settings(BaseSettings):
    """All settings of one Daraja deployment."""

    model_config = SettingsConfigDict(
        env_prefix="DARAJA_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    telegram_token: SecretStr | None = Field(
        default=None, description="Bot token from BotFather (secret, never logged)."
    )
    telegram_api_url: str = Field(
        default=TELEGRAM_API_URL,
        description="Bot API root: Telegram's, a self-hosted Bot API server, or the sandbox.",
    )
    telegram_retry_max_seconds: float = Field(
        default=60,
        gt=0,
        le=3600,
        description="Longest wait between attempts to reach the Bot API while it is unreachable "
        "(at start and while polling); waits start at 1 s and double.",
    )
    database_url: str = Field(
        default="sqlite+aiosqlite:///./data/daraja.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://…",
    )
    models_dir: Path = Field(
        default=Path("./data/models"), description="Directory of installed translation models."
    )
    models_check_seconds: float = Field(
        default=10,
        ge=0,
        le=3600,
        description="How often the running bot looks for models installed or removed (0: only "
        "on SIGHUP).",
    )
    admin_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Comma-separated Telegram user ids of admins."
    )
    mode: Literal["polling", "webhook", "worker"] = Field(
        default="polling",
        description="How updates arrive: long polling, webhook, or worker (delivers only: an "
        "extra process sharing the outbox of a PostgreSQL deployment).",
    )
    outbox_lease_seconds: float = Field(
        default=90,
        ge=5,
        le=3600,
        description="A copy in flight longer than this (its worker died) is sent again.",
    )
    inbox_concurrency: int = Field(
        default=2,
        ge=1,
        le=256,
        description="Updates of different chats handled at once (one at a time per chat). More "
        "lets the translator batch more messages together (raise it for large, slow models); "
        "fewer keeps each message's own handling short when a burst arrives (the rest wait, "
        "stored, in the inbox).",
    )
    outbox_concurrency: int = Field(
        default=32,
        ge=1,
        le=256,
        description="Copies in flight at once (never more than one per chat).",
    )
    webhook_url: str | None = Field(
        default=None, description="Public HTTPS URL Telegram posts updates to (webhook mode)."
    )
    webhook_listen: str = Field(default="127.0.0.1", description="Webhook listen address.")
    webhook_port: int = Field(default=8443, ge=1, le=65535, description="Webhook listen port.")
    webhook_secret: SecretStr | None = Field(
        default=None, description="Secret token Telegram sends in X-Telegram-Bot-Api-Secret-Token."
    )
    poll_timeout: int = Field(
        default=25, ge=0, le=50, description="getUpdates long-poll timeout (seconds)."
    )
    rate_global_per_s: float = Field(
        default=30, ge=0, description="Most messages per second overall (0: no limit)."
    )
    rate_chat_per_s: float = Field(
        default=1, ge=0, description="Most messages per second into one chat (0: no limit)."
    )
    rate_group_per_min: float = Field(
        default=20, ge=0, description="Most messages per minute into one group (0: no limit)."
    )
    code_max_failures: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Wrong /join or /enroll codes one person may send (a group: twice as many) "
        "before a lockout.",
    )
    code_lockout_min: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="Minutes of the first lockout (each further one doubles, up to a day).",
    )
    refusal_audit_window_min: int = Field(
        default=10,
        ge=1,
        le=24 * 60,
        description="Refused attempts of one person in one chat after the first are audited as "
        "one event (with their count) per this many minutes.",
    )
    default_language: LanguageCode = Field(
        default="en", description="Language used when neither person nor operation has one."
    )
    timezone: str = Field(
        default="America/Port-au-Prince", description="Default time zone for new operations."
    )
    flash_remind_min: int = Field(
        default=5,
        ge=1,
        le=24 * 60,
        description="Minutes before unacknowledged FLASH units are reminded.",
    )
    flash_escalate_min: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="Minutes before unacknowledged FLASH units are escalated to the sender.",
    )
    status_check_seconds: float = Field(
        default=30,
        ge=1,
        le=3600,
        description="How often staleness and FLASH reminders are checked.",
    )
    translation_threads: int = Field(
        default=0, ge=0, le=256, description="CTranslate2 intra-op threads (0: all cores)."
    )
    translation_inter_threads: int = Field(
        default=1, ge=1, le=64, description="CTranslate2 parallel batches per model."
    )
    translation_compute_type: str = Field(
        default="int8", description="CTranslate2 compute type (int8, int8_float32, float32…)."
    )
    translation_batch_size: int = Field(
        default=32, ge=1, le=1024, description="Most segments in one inference batch."
    )
    translation_batch_wait_ms: float = Field(
        default=5.0, ge=0, le=1000, description="How long a batch waits for company (ms)."
    )
    translation_beam_size: int = Field(default=2, ge=1, le=16, description="Beam size.")
    translation_cache_size: int = Field(
        default=4096, ge=0, le=1_000_000, description="Entries in the translation LRU cache."
    )
    translation_quality_estimation: bool = Field(
        default=True,
        description="Check every translation (back-translation, negations and numbers, output "
        "language) and warn readers of doubtful copies; off halves model work but only the "
        "simple checks remain.",
    )
    qe_lexicon_dir: Path | None = Field(
        default=None,
        description="Directory of extra critical-word lists (en.tsv, fr.tsv...: negations, "
        "number words, directions) added to the bundled ones; see translation/lexicons/.",
    )
    voice_models_dir: Path = Field(
        default=Path("./data/voice-models"),
        description="Directory of installed Whisper models for voice notes (daraja[voice]).",
    )
    voice_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="CPU threads transcription may use; translation keeps the other cores.",
    )
    voice_beam_size: int = Field(
        default=1, ge=1, le=2, description="Whisper beam size for voice notes (1 or 2)."
    )
    voice_queue_size: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="Voice notes waiting for transcription at most (beyond: no transcript).",
    )
    voice_min_logprob: float = Field(
        default=-0.6,
        ge=-5,
        le=0,
        description="A transcript is shown only above this mean log-probability (Whisper's).",
    )
    voice_max_seconds: float = Field(
        default=600,
        ge=1,
        le=7200,
        description="Longest voice note transcribed (seconds); longer ones are relayed as sound.",
    )
    libretranslate_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated LibreTranslate servers (optional)."
    )
    libretranslate_api_key: SecretStr | None = Field(
        default=None, description="API key for the LibreTranslate servers."
    )
    audit_hmac_key: SecretStr | None = Field(
        default=None, description="Key for the audit hash chain (HMAC); unset: plain SHA-256."
    )
    audit_retention_days: int | None = Field(
        default=None, ge=1, description="Days of audit events to keep (unset: forever)."
    )
    inbox_retention_days: int = Field(
        default=7,
        ge=0,
        description="Days a processed update's raw JSON (texts, /join codes) stays in the "
        "inbox (0: forever).",
    )
    message_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Days a message's body (text, media) is kept after its last edit; then it "
        "is emptied, its metadata kept (unset: forever).",
    )
    translation_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Days a translation's text is kept (unset: forever; never longer than "
        "its original's).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level."
    )
    log_json: bool = Field(default=False, description="Write logs as JSON lines.")
    log_content: bool = Field(
        default=False,
        description="Let message texts and enrollment codes into the logs (debugging only: "
        "logs then hold police traffic). Off: libraries' log arguments are reduced to their "
        "shape and codes masked, at every level.",
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Serve Prometheus metrics on this port."
    )
    # Where /metrics and /healthz listen (0.0.0.0 in a container scraped from outside).
    metrics_listen: str = Field(
        default="127.0.0.1", description="Address the metrics and /healthz server listens on."
    )
    # The web console: off unless a port is set; local only unless a proxy publishes it.
    console_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve the web console on this port (the bot process; `/console` links).",
    )
    console_listen: str = Field(
        default="127.0.0.1", description="Address the web console listens on."
    )
    console_url: str | None = Field(
        default=None,
        description="Console address people open (behind a proxy); unset: http://LISTEN:PORT.",
    )
    console_link_minutes: int = Field(
        default=5, ge=1, le=60, description="Minutes a `/console` login link stays valid."
    )
    console_session_minutes: int = Field(
        default=60, ge=5, le=1440, description="Minutes a console session lasts."
    )
    # How long one LibreTranslate request may take before the next server is tried.
    libretranslate_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds one LibreTranslate request of one segment may take (then it is "
        "abandoned for good and the local models translate it).",
    )
    # A LibreTranslate server translates each request on its own: bound what Daraja asks of it.
    libretranslate_timeout_per_segment: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="Seconds added to DARAJA_LIBRETRANSLATE_TIMEOUT for each further segment "
        "of a request.",
    )
    libretranslate_timeout_max: float = Field(
        default=120.0, gt=0, le=3600, description="Longest any LibreTranslate request may take."
    )
    libretranslate_in_flight: int = Field(
        default=2,
        ge=1,
        le=256,
        description="Requests in flight at once per LibreTranslate server (about its threads).",
    )
    libretranslate_queue_wait: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="Seconds a request may wait for a free slot on a server (or for its pace) "
        "before the local models translate it instead (nothing was sent).",
    )
    libretranslate_segments_per_min: float = Field(
        default=0,
        ge=0,
        description="Segments per minute sent to each server, as its --req-limit counts them "
        "(each item of q costs one; 0: not paced).",
    )
    libretranslate_batch_limit: int = Field(
        default=16,
        ge=1,
        le=10_000,
        description="Most segments in one LibreTranslate request (its --batch-limit).",
    )
    libretranslate_char_limit: int = Field(
        default=0,
        ge=0,
        description="Most characters in one segment sent to LibreTranslate, when a server's "
        "/frontend/settings gives none (0: no limit).",
    )
    libretranslate_auth_cooldown: float = Field(
        default=900.0,
        gt=0,
        le=86_400,
        description="Seconds a server that refused the API key is left alone.",
    )

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            items = [p.strip() for p in value.split(",") if p.strip()]
            out: list[int] = []
            for item in items:
                if not re.fullmatch(r"\d{1,20}", item):
                    raise ValueError(
                        f"{item!r} is not a Telegram user id (expected comma-separated numbers)"
                    )
                out.append(int(item))
            return out
        return value

    @field_validator("libretranslate_urls", mode="before")
    @classmethod
    def _parse_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("telegram_api_url", "webhook_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, value: str) -> str:
        if not (
            value.startswith("sqlite+aiosqlite://") or value.startswith("postgresql+asyncpg://")
        ):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                f"(got {value.split(':', 1)[0]!r})"
            )
        if value.startswith("sqlite") and value.rstrip("/").split("///", 1)[-1] in (
            "sqlite+aiosqlite:",
            ":memory:",
        ):
            raise ValueError(
                "is an in-memory SQLite database, which loses the log at exit: give a file "
                "path, e.g. sqlite+aiosqlite:///data/daraja.db"
            )
        return value

    @field_validator("telegram_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        raw = value.get_secret_value().strip()
        if raw.lower() in _FORBIDDEN_TOKENS:
            raise ValueError("is a placeholder; put the token BotFather gave you")
        if not _TOKEN_RE.match(raw):
            raise ValueError("does not look like a bot token (expected <digits>:<secret>)")
        return SecretStr(raw)

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone") from None
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram accepts 1-256 characters A-Z a-z 0-9 _ -; fewer than 16 is
        # guessable, so it is refused here rather than at setWebhook time.
        if value is None or value.get_secret_value() == "":
            return None
        if not _WEBHOOK_SECRET_RE.fullmatch(value.get_secret_value()):
            raise ValueError(
                "must be 16-256 characters of A-Z, a-z, 0-9, _ and - "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return value

    @model_validator(mode="after")
    def _check_webhook(self) -> Settings:
        if self.mode == "webhook" and not self.webhook_url:
            raise ValueError("DARAJA_MODE=webhook needs DARAJA_WEBHOOK_URL")
        # Without the secret anyone who finds the URL could inject updates.
        if self.mode == "webhook" and self.webhook_secret is None:
            raise ValueError("DARAJA_MODE=webhook needs DARAJA_WEBHOOK_SECRET")
        return self

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redactor (never log these)."""
        from storage.urls import url_password

        values = [
            s.get_secret_value()
            for s in (
                self.telegram_token,
                self.webhook_secret,
                self.libretranslate_api_key,
                self.audit_hmac_key,
            )
            if s is not None
        ]
        password = url_password(self.database_url)
        if password:
            values.append(password)
        return values

    def require_token(self) -> str:
        """Return the bot token or raise ConfigError saying how to set it."""
        if self.telegram_token is None:
            raise ConfigError(
                "DARAJA_TELEGRAM_TOKEN: not set; put the token from BotFather in the environment "
                "or .env (or run `daraja demo` for the offline sandbox)"
            )
        return self.telegram_token.get_secret_value()

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite."""
        return self.database_url.startswith("sqlite")


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the first bad setting and what is wrong with it."""
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ())]
    name = f"DARAJA_{loc[0].upper()}" if loc else "settings"
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    return f"{name}: {msg}"


def load_settings(**overrides: Any) -> Settings:
    """Load settings from the environment and `.env`; raise ConfigError on bad values."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
