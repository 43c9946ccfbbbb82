"""Every user-facing string has a Spanish translation.

Strings are found the way xgettext would find them: gettext calls with a literal in Python code
(through the AST, so implicit concatenation is handled) and translate/blocktranslate tags in
templates. A new message without a Spanish msgstr in one of the catalogues fails this test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import polib
import pytest
from django.utils import translation

PACKAGE = Path(__file__).resolve().parents[2]
GETTEXT_NAMES = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy"}
CONTEXT_NAMES = {"pgettext", "pgettext_lazy", "npgettext", "npgettext_lazy"}
_TRANSLATE_TAG = re.compile(r"""{%\s*(?:translate|trans)\s+(["'])(.+?)\1""", re.S)
_BLOCK_TAG = re.compile(
    r"{%\s*blocktrans(?:late)?\b([^%]*)%}(.*?){%\s*(?:plural|endblocktrans(?:late)?)\s*%}", re.S
)
_VARIABLE = re.compile(r"{{\s*([\w.]+)[^}]*}}")


def _python_messages() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if "tests" in path.parts or "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in GETTEXT_NAMES
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


def _template_messages() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        found.update(match.group(2) for match in _TRANSLATE_TAG.finditer(text))
        for options, body in _BLOCK_TAG.findall(text):
            message = _VARIABLE.sub(lambda m: f"%({m.group(1)})s", body)
            if "trimmed" in options:
                message = " ".join(
                    line.strip() for line in message.strip().splitlines() if line.strip()
                )
            found.add(message)
    return found


def _translated() -> set[str]:
    done: set[str] = set()
    for po_path in (PACKAGE / "locale").rglob("*.po"):
        for entry in polib.pofile(str(po_path)):
            translated = (
                entry.msgstr or all(entry.msgstr_plural.values())
                if (entry.msgstr or entry.msgstr_plural)
                else False
            )
            if translated and "fuzzy" not in entry.flags:
                done.add(entry.msgid)
    return done


def test_every_message_has_a_spanish_translation() -> None:
    messages = (_python_messages() | _template_messages()) - {""}
    missing = sorted(messages - _translated())
    assert not missing, "Untranslated messages:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("message", "spanish"),
    [
        ("This field is required.", "Este campo es obligatorio."),
        (
            "The CURP check digit (last character) is wrong.",
            "El dígito verificador de la CURP (último carácter) es incorrecto.",
        ),
    ],
)
def test_compiled_catalogues_are_used(message: str, spanish: str) -> None:
    with translation.override("es"):
        assert translation.gettext(message) == spanish
    with translation.override("en"):
        assert translation.gettext(message) == message
