"""Fixtures for the browser tests: the system Chromium driven by Playwright against pytest-django's
live server.

Playwright's own browser downloads are not used: the tests run the Chromium the operating system
provides (``PILAR_CHROMIUM``, else ``/usr/bin/chromium``, else ``chromium`` on PATH). Without one
the tests are skipped, except in CI (``PILAR_REQUIRE_BROWSER=1``), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def find_chromium() -> str | None:
    configured = os.environ.get("PILAR_CHROMIUM")
    candidates = (
        [configured] if configured else ["/usr/bin/chromium", shutil.which("chromium") or ""]
    )
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        reason = (
            "no system Chromium: set PILAR_CHROMIUM or install it (apt-get install chromium); "
            "browser tests skipped"
        )
        if os.environ.get("PILAR_REQUIRE_BROWSER") == "1":
            pytest.fail(reason.replace("skipped", "required (PILAR_REQUIRE_BROWSER=1)"))
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _reference_data_restored() -> None:
    """Put back the reference data the migrations seed (minimum wages, UMA, rates). A
    transactional test empties every table when it ends, data migrations' rows included, so
    the browser test that runs next would find a node without its published parameters."""
    import importlib

    from django.apps import apps

    from pilar.contributions.models import Parameter

    if Parameter.objects.exists():
        return
    for migration in ("0003_seed_parameters", "0005_rates_before_2023_and_surcharges"):
        module = importlib.import_module(f"pilar.contributions.migrations.{migration}")
        module.seed(apps, None)


@pytest.fixture
def page(browser: Any, live_server: Any, transactional_db: None) -> Iterator[Any]:
    """A fresh browser tab (own cookies) in Mexican Spanish, pointed at the live server. Any
    Content Security Policy violation on any page fails the test: the UI must not need one."""
    _reference_data_restored()
    context = browser.new_context(
        base_url=live_server.url, locale="es-MX", viewport={"width": 1366, "height": 900}
    )
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    violations: list[str] = []
    tab.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield tab
    context.close()
    assert not violations, violations
