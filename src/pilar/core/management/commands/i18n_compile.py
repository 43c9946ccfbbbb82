"""``pilar i18n_compile``: compile every .po catalogue under ``pilar/locale`` into .mo.

Uses polib (pure Python), so a fresh machine needs no GNU gettext; the .po files are the source
of truth and the .mo files are build output, not committed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polib
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Compile the translation catalogues (.po → .mo)."
    # Compiling catalogues needs no database or URLs; it runs before anything else is set up.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        compiled = 0
        for po_path in sorted(Path(settings.PACKAGE_DIR, "locale").rglob("*.po")):
            mo_path = po_path.with_suffix(".mo")
            if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
                continue
            catalogue = polib.pofile(str(po_path))
            catalogue.save_as_mofile(str(mo_path))
            compiled += 1
        self.stdout.write(f"{compiled} catalogue(s) compiled")
