"""The rules engine: scheme packages as data, evaluated one case at a time or in bulk.

Pure Python (no Django): see ``docs/rules-language.md`` for the language and this API::

    package = load_package("imss_1973")              # newest version, cached
    result = package.evaluate(inputs, on=date)        # Decimal, with an explanation tree
    render_text(result, "es")                         # plain language
    frame = package.evaluate_bulk(frame, on="fecha")  # Polars columns plus `_error`
"""

from pilar.rules.errors import (
    ConflictError,
    CycleError,
    DivisionByZeroError,
    FormulaTypeError,
    InputTypeError,
    MissingInputError,
    MissingReferenceError,
    NoValueError,
    PackageIntegrityError,
    PackageNotFoundError,
    RulesError,
    SchemeFileError,
    TableOverlapError,
    UnknownNameError,
)
from pilar.rules.explanation import BenefitInfo, Node, Result, UnmetCondition
from pilar.rules.package import (
    SCHEMES_DIR,
    Package,
    available_packages,
    load_package,
    package_hash,
    publish,
)
from pilar.rules.parameters import ParameterValue
from pilar.rules.render import render_text

__all__ = [
    "SCHEMES_DIR",
    "BenefitInfo",
    "ConflictError",
    "CycleError",
    "DivisionByZeroError",
    "FormulaTypeError",
    "InputTypeError",
    "MissingInputError",
    "MissingReferenceError",
    "NoValueError",
    "Node",
    "Package",
    "PackageIntegrityError",
    "PackageNotFoundError",
    "ParameterValue",
    "Result",
    "RulesError",
    "SchemeFileError",
    "TableOverlapError",
    "UnknownNameError",
    "UnmetCondition",
    "available_packages",
    "load_package",
    "package_hash",
    "publish",
    "render_text",
]
