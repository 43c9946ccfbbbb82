"""Errors of the rules engine: a stable code, its parameters, where, and which article.

``pilar.rules`` runs without Django (in tests, the CLI and bulk jobs), so it cannot use gettext;
its messages are a small built-in table in Spanish and English. The benefits app maps a
``RulesError`` to its own ``ApplicationError`` by ``code`` and shows ``message(language)``.
Codes are part of the contract (``docs/rules-language.md``): never rename one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

Params = Mapping[str, Any]


def _pick(label: Any, language: str) -> str:
    """A label's text in ``language`` (falling back to the other one), or the value as text."""
    if isinstance(label, Mapping):
        return str(label.get(language) or label.get("es") or label.get("en") or "")
    return str(label)


def _missing_inputs(params: Params, language: str) -> str:
    items = params.get("inputs") or []
    listed = "; ".join(f"{_pick(item.get('label'), language)} ({item['name']})" for item in items)
    if language == "en":
        return f"Missing required inputs: {listed}."
    return f"Faltan datos obligatorios: {listed}."


def _input_type(params: Params, language: str) -> str:
    name = params.get("name")
    label = _pick(params.get("label") or name, language)
    expected = params.get("expected")
    got = params.get("got")
    if language == "en":
        return f"Input {label} ({name}) must be of type {expected}, got {got!r}."
    tipos = {"number": "número", "bool": "sí/no", "date": "fecha", "text": "texto"}
    tipo = tipos.get(str(expected), expected)
    return f"El dato {label} ({name}) debe ser de tipo {tipo}; se recibió {got!r}."


# Each message is a ``str.format`` template over the error's params, or a function for the
# few that need to pick labels in the reader's language.
_MESSAGES: dict[str, dict[str, str | Callable[[Params, str], str]]] = {
    "yaml_error": {
        "es": "YAML mal formado: {problem}",
        "en": "Malformed YAML: {problem}",
    },
    "schema_error": {
        "es": "Estructura inválida: {problem}",
        "en": "Invalid structure: {problem}",
    },
    "package_not_found": {
        "es": "No existe el paquete de reglas {name} {version}.",
        "en": "There is no rules package {name} {version}.",
    },
    "unknown_name": {
        "es": "Nombre desconocido: {name}{context}",
        "en": "Unknown name: {name}{context}",
    },
    "type_error": {
        "es": "Error de tipos en «{expression}»: {problem}",
        "en": "Type error in “{expression}”: {problem}",
    },
    "syntax_error": {
        "es": "Error de sintaxis en «{expression}» (columna {column}): {problem}",
        "en": "Syntax error in “{expression}” (column {column}): {problem}",
    },
    "cycle": {
        "es": "Dependencia circular entre variables: {cycle}",
        "en": "Circular dependency between variables: {cycle}",
    },
    "table_overlap": {
        "es": "Las filas {first_row} (línea {first_line}) y {second_row} (línea {second_line}) "
        "de la tabla {table} se traslapan; con la política unique solo una puede aplicar.",
        "en": "Rows {first_row} (line {first_line}) and {second_row} (line {second_line}) of "
        "table {table} overlap; with the unique hit policy only one may apply.",
    },
    "missing_reference": {
        "es": "Falta la referencia legal (artículo) de {what}.",
        "en": "Missing legal reference (article) for {what}.",
    },
    "package_integrity": {
        "es": "El paquete publicado {name} {version} fue modificado: su huella es {actual}, "
        "la publicada es {expected}. Una versión publicada no cambia; cree una versión nueva.",
        "en": "Published package {name} {version} was modified: its hash is {actual}, the "
        "published one is {expected}. A published version never changes; create a new version.",
    },
    "conflict": {
        "es": "Conflicto en {variable}: aplican a la vez los casos {references}.",
        "en": "Conflict in {variable}: cases {references} apply at the same time.",
    },
    "no_value": {
        "es": "Sin valor para {name} en {date}.",
        "en": "No value for {name} on {date}.",
    },
    "division_by_zero": {
        "es": "División entre cero al calcular {name}: «{expression}».",
        "en": "Division by zero computing {name}: “{expression}”.",
    },
    "missing_input": {"es": _missing_inputs, "en": _missing_inputs},
    "input_type": {"es": _input_type, "en": _input_type},
}


class _Default(dict[str, Any]):
    """Leaves unknown placeholders visible instead of failing while reporting another error."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class RulesError(Exception):
    """Base of every error the engine raises, at load or at evaluation.

    ``location`` is ``"path/to/file.yaml:line"`` for load errors (None otherwise); ``reference``
    is the legal article the error concerns, when there is one.
    """

    code: ClassVar[str] = "rules_error"

    def __init__(
        self,
        code: str | None = None,
        params: Params | None = None,
        location: str | None = None,
        reference: str | None = None,
    ) -> None:
        self.code = code or type(self).code  # type: ignore[misc]
        self.params: dict[str, Any] = dict(params or {})
        self.location = location
        self.reference = reference
        super().__init__(self.message("en"))

    def message(self, language: str = "es") -> str:
        """The error in plain Spanish (``es``) or English (``en``), with location and article."""
        language = "en" if language.startswith("en") else "es"
        template = _MESSAGES.get(self.code, {}).get(language)
        if template is None:
            text = f"{self.code}: {self.params}"
        elif callable(template):
            text = template(self.params, language)
        else:
            text = template.format_map(_Default(self.params))
        if self.reference:
            text = f"{text} ({self.reference})"
        if self.location:
            text = f"{self.location}: {text}"
        return text

    @property
    def row_error(self) -> str:
        """The error as bulk mode writes it in ``_error``: ``"<code>:<name>"``."""
        return f"{self.code}:{self.params.get('name', '')}"

    def to_dict(self) -> dict[str, Any]:
        """The error as JSON-able data (for job records and API problems)."""
        return {
            "code": self.code,
            "params": {k: _jsonable(v) for k, v in self.params.items()},
            "location": self.location,
            "reference": self.reference,
            "message": {"es": self.message("es"), "en": self.message("en")},
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


class _CodedError(RulesError):
    """A subclass bound to one code: raised as ``UnknownNameError(params, location=...)``."""

    def __init__(
        self,
        params: Params | None = None,
        location: str | None = None,
        reference: str | None = None,
    ) -> None:
        super().__init__(type(self).code, params, location, reference)


class SchemeFileError(_CodedError):
    """A package file is malformed YAML (``yaml_error``) or has unknown/missing keys."""

    code = "schema_error"

    def __init__(
        self,
        params: Params | None = None,
        location: str | None = None,
        reference: str | None = None,
        *,
        yaml: bool = False,
    ) -> None:
        RulesError.__init__(
            self, "yaml_error" if yaml else "schema_error", params, location, reference
        )


class PackageNotFoundError(_CodedError):
    code = "package_not_found"


class UnknownNameError(_CodedError):
    code = "unknown_name"


class FormulaTypeError(_CodedError):
    """A formula mixes types, or cannot be parsed (``syntax_error``)."""

    code = "type_error"

    def __init__(
        self,
        params: Params | None = None,
        location: str | None = None,
        reference: str | None = None,
        *,
        syntax: bool = False,
    ) -> None:
        RulesError.__init__(
            self, "syntax_error" if syntax else "type_error", params, location, reference
        )


class CycleError(_CodedError):
    code = "cycle"


class TableOverlapError(_CodedError):
    code = "table_overlap"


class MissingReferenceError(_CodedError):
    code = "missing_reference"


class PackageIntegrityError(_CodedError):
    code = "package_integrity"


class ConflictError(_CodedError):
    code = "conflict"


class NoValueError(_CodedError):
    code = "no_value"


class DivisionByZeroError(_CodedError):
    """A formula divided by zero (an evaluation error, like ``no_value``; not in the spec's list,
    which names no arithmetic errors, but a case must fail precisely rather than with a Python
    ``decimal`` exception or, in bulk, an infinity)."""

    code = "division_by_zero"


class MissingInputError(_CodedError):
    """Every missing required input at once, each with its label: ``params["inputs"]``."""

    code = "missing_input"

    @property
    def missing(self) -> list[str]:
        return [item["name"] for item in self.params.get("inputs", [])]


class InputTypeError(_CodedError):
    code = "input_type"
