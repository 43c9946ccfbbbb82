"""Shared pytest configuration: the suite runs against the database DATABASE_URL names
(SQLite by default, PostgreSQL in CI's second pass); there is no mock database."""

from __future__ import annotations

import os
from typing import Any

import pytest

# Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls from a
# thread with a running loop unless told this is deliberate. Browser tests only.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_report_header() -> list[str]:
    """Say which database this run uses, so a CI log shows both passes really happened."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    engine = str(database["ENGINE"]).rsplit(".", 1)[-1]
    if engine == "sqlite3":
        return ["pilar database: sqlite3 (a test database of its own)"]
    return [f"pilar database: {engine} on {database.get('HOST')} (a test database of its own)"]


@pytest.fixture(autouse=True)
def _files_in_a_temporary_folder(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Declaration files and demo files a test writes go to a temporary folder, not var/."""
    folder = tmp_path_factory.mktemp("var")
    settings.VAR_DIR = folder
    settings.PILAR_DECLARATION_DIR = folder / "declarations"
