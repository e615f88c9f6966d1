"""Settings: names, defaults, and one clear line for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"


def test_defaults_need_no_token_and_use_sqlite(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.telegram_token is None
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert settings.admin_ids == []


def test_fixed_names_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARAJA_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("DARAJA_TELEGRAM_API_URL", "http://127.0.0.1:8081/")
    monkeypatch.setenv("DARAJA_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1/d")
    monkeypatch.setenv("DARAJA_MODELS_DIR", "/srv/models")
    monkeypatch.setenv("DARAJA_ADMIN_IDS", " 11, 22 ,33")
    settings = load_settings()
    assert settings.require_token() == TOKEN
    assert settings.telegram_api_url == "http://127.0.0.1:8081"
    assert settings.admin_ids == [11, 22, 33]
    assert settings.models_dir == Path("/srv/models")
    assert not settings.is_sqlite


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DARAJA_ADMIN_IDS=7\nDARAJA_DEFAULT_LANGUAGE=ht\n")
    settings = load_settings()
    assert settings.admin_ids == [7]
    assert settings.default_language == "ht"


def test_token_never_appears_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DARAJA_TELEGRAM_TOKEN", TOKEN)
    settings = load_settings()
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DARAJA_ADMIN_IDS", "12,abc", "DARAJA_ADMIN_IDS: 'abc' is not a Telegram user id"),
        ("DARAJA_TELEGRAM_TOKEN", "changeme", "DARAJA_TELEGRAM_TOKEN: is a placeholder"),
        ("DARAJA_TELEGRAM_TOKEN", "not a token", "DARAJA_TELEGRAM_TOKEN: does not look like"),
        ("DARAJA_DATABASE_URL", "mysql://x", "DARAJA_DATABASE_URL: must start with"),
        ("DARAJA_DATABASE_URL", "sqlite+aiosqlite://", "DARAJA_DATABASE_URL: is an in-memory"),
        (
            "DARAJA_DATABASE_URL",
            "sqlite+aiosqlite:///:memory:",
            "DARAJA_DATABASE_URL: is an in-memory",
        ),
        ("DARAJA_TELEGRAM_API_URL", "ftp://x", "DARAJA_TELEGRAM_API_URL: 'ftp://x' is not"),
        ("DARAJA_TIMEZONE", "Mars/Olympus", "DARAJA_TIMEZONE: 'Mars/Olympus' is not a known"),
        ("DARAJA_DEFAULT_LANGUAGE", "es", "DARAJA_DEFAULT_LANGUAGE: Input should be"),
        ("DARAJA_WEBHOOK_PORT", "99999", "DARAJA_WEBHOOK_PORT: Input should be less than"),
    ],
)
def test_bad_values_give_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_missing_token_says_how_to_fix() -> None:
    with pytest.raises(ConfigError, match="BotFather"):
        load_settings().require_token()
