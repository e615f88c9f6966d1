"""Daraja's domain errors, one small tree (cf. httpx `_exceptions.py`).

    DarajaError                 base of everything Daraja raises on purpose
    ├── ConfigError             a setting is missing or invalid (CLI exit status 2)
    ├── StorageError            the database refused or is not migrated
    ├── AccessDenied            the caller's role or chat may not do this
    ├── EnrollmentError         a code is unknown, expired, used, or the target is enrolled
    │   └── TooManyAttempts     too many wrong codes: locked out for a while
    ├── UserInputError          a command's arguments are malformed
    └── NotFound                a named operation, unit, chat or person does not exist

Every error carries a catalog key (`key`) and parameters so handlers can tell a person what
went wrong in that person's language; `str(error)` is the English text for logs and the CLI.
Translation errors live in `translation.errors` (that package imports nothing from `bot`).
"""

from __future__ import annotations

from typing import Any


class DarajaError(Exception):
    """Base class: a message for operators plus a catalog key for people."""

    key: str = "error.internal"

    def __init__(self, message: str, *, key: str | None = None, **params: Any) -> None:
        super().__init__(message)
        if key is not None:
            self.key = key
        self.params: dict[str, Any] = params


class ConfigError(DarajaError):
    """A setting is missing or invalid."""

    key = "error.config"


class StorageError(DarajaError):
    """The database is unreachable, refuses a write, or is not migrated."""

    key = "error.storage"


class AccessDenied(DarajaError):
    """The caller may not do this here."""

    key = "error.access_denied"


class EnrollmentError(DarajaError):
    """An enrollment code or enrollment request is not acceptable."""

    key = "error.enrollment"


class TooManyAttempts(EnrollmentError):
    """Too many wrong codes from one person or group: refused unchecked until `minutes` pass.

    `notify` is False for the attempts of a lockout that are not answered (one answer a minute
    at most, so a flood of guesses does not become a flood of replies)."""

    key = "code.locked"

    def __init__(self, message: str, *, notify: bool = True, **params: Any) -> None:
        super().__init__(message, **params)
        self.notify = notify


class UserInputError(DarajaError):
    """Malformed command arguments."""

    key = "error.bad_input"


class NotFound(DarajaError):
    """A named thing does not exist."""

    key = "error.not_found"
