"""Database URLs as the rest of the code needs them, without parsing them itself."""

from __future__ import annotations


def url_password(url: str) -> str | None:
    """The password a database URL carries, if any (for the log redactor)."""
    from sqlalchemy.engine import make_url

    password = make_url(url).password
    return str(password) if password else None


def public_url(url: str) -> str:
    """The URL with its password masked, fit for a log line or a report."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# The logger SQLAlchemy's echo writes statements to (filtered like the root's handlers).
STATEMENT_LOGGER = "sqlalchemy.engine.Engine"
