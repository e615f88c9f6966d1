"""PostgreSQL for tests: a throwaway server (placeholder until the PostgreSQL work lands)."""

from __future__ import annotations

import os

import pytest


def fresh_database_url(request: pytest.FixtureRequest) -> str:
    """A new empty database on the test server, or skip when told to locally."""
    url = os.environ.get("DARAJA_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL test server not set up yet")
    return url
