"""Shared pytest configuration: the suite runs against the database DATABASE_URL names
(SQLite by default, PostgreSQL in CI's second pass); there is no mock database."""

from __future__ import annotations

import os

# Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls from a
# thread with a running loop unless told this is deliberate. Browser tests only.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
