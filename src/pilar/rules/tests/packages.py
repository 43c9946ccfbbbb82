"""Test packages built from the fixtures: a copy with one edit, in a temporary folder.

The on-disk fixtures cover each kind of error once; these copies cover the many smaller
variations (one key changed, one line added) without a folder per variation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def package_copy(
    destination: Path,
    *,
    source: str = "minimal",
    name: str | None = None,
    version: str = "1.0.0",
    replace: dict[str, list[tuple[str, str]]] | None = None,
    append: dict[str, str] | None = None,
) -> Path:
    """Copy fixture ``source`` to ``destination/<name>/<version>`` and edit it; return the folder.

    ``replace`` maps a file name to ``(old, new)`` pairs, each of which must occur in the file
    (so a fixture edit that stops matching fails loudly instead of testing nothing);
    ``append`` adds text at the end of a file (creating it).
    """
    name = name or source
    folder = destination / name / version
    shutil.copytree(FIXTURES / source / "1.0.0", folder)
    package_file = folder / "package.yaml"
    text = package_file.read_text(encoding="utf-8")
    text = text.replace(f"name: {source}\n", f"name: {name}\n").replace(
        "version: 1.0.0\n", f"version: {version}\n"
    )
    package_file.write_text(text, encoding="utf-8")
    for file_name, pairs in (replace or {}).items():
        path = folder / file_name
        content = path.read_text(encoding="utf-8")
        for old, new in pairs:
            assert old in content, f"{old!r} not in {file_name}"
            content = content.replace(old, new, 1)
        path.write_text(content, encoding="utf-8")
    for file_name, extra in (append or {}).items():
        path = folder / file_name
        existing = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(existing + extra, encoding="utf-8")
    return folder
