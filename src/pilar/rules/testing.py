"""Test cases of scheme packages: their format, and a runner that reports every case.

A scheme package keeps its test cases in ``<name>/<version>/tests/*.yaml``, outside the content
hash (correcting a test never changes a published package). The runner is pure Python, like the
rest of ``pilar.rules``: ``pilar rules test`` and the pytest suite both call it.

The format
==========

Each file is a YAML list of cases. A case is a mapping with these keys (any other key is an
error naming the file and line):

``name`` (text, required)
    What the case shows, in a sentence. Unique within the package's tests.
``reference`` (text, optional)
    The article the case exercises ("LSS 1973 art. 167"). Shipped packages give one for every
    case (``tests/test_schemes.py`` checks it).
``on`` (date, required)
    The evaluation date D (the claim date), ``2026-03-01``.
``known_at`` (date, optional)
    The record date K: the law as known on that day. Default: ``on``.
``inputs`` (mapping, required; may be empty)
    Input name → value. Numbers may be written as YAML numbers or as quoted decimal text
    (``"512.30"``); a YAML float is read through its decimal text, never as a binary fraction.
    Booleans are ``true``/``false`` only (see below).
``expect`` (mapping)
    Output name → expected value: any variable of the package, or ``table.output``. Each is
    requested from the engine and compared exactly: a number as a ``Decimal`` (``"12345.67"``
    equals ``12345.670``; write amounts as quoted text and show their arithmetic in a YAML
    comment), a bool as a bool, a date as a date (or ISO text), text as text.
``expect_unmet`` (list or mapping, optional; only with ``expect``)
    The conditions of a denial that do not hold, exactly (no more, no fewer). As a list, it
    concerns the one output that ``expect`` expects to be ``false`` (there must be exactly
    one); as a mapping, ``variable → list`` for any number of them. Each entry names one unmet
    condition of that ``conditions`` variable, either by its test as written
    (``"edad >= edad_vejez"``, spaces ignored) or by the first name its test reads
    (``edad``, ``semanas_cotizadas``, ``tiene_empleo_vigente`` for ``not tiene_empleo_vigente``).
    An entry matches one condition only; two unmet conditions that start with the same name
    must then be told apart by their tests.
``expect_error`` (mapping, optional; instead of ``expect``)
    The evaluation must raise a ``RulesError`` with ``code`` (required: ``missing_input``,
    ``no_value``, ``conflict``, …). With ``missing`` (a list of input names), the error must name
    exactly those missing inputs; with ``reference``, the error's article must be exactly that.
    The engine is asked for its default outputs (every benefit's eligibility and amount).

Exactly one of ``expect`` and ``expect_error`` is required.

``on`` is a boolean in YAML 1.1 (as are ``yes``, ``no`` and ``off``); test files are read with
YAML 1.2 booleans (only ``true`` and ``false``) so that the key ``on`` stays a key. Dates are
written ``2026-03-01`` and read by the runner (a wrong one is an error naming its line); a date
input or expected date may be written the same way.

Example::

    - name: Vejez con 1,200 semanas y salario de 2 salarios mínimos
      reference: "LSS 1973 art. 167"
      on: 2026-03-01
      inputs: {edad: 66, semanas_cotizadas: 1200, salario_promedio_diario: "630.08", ...}
      expect: {elegible_vejez: true, pension_vejez: "12345.67"}

    - name: Cesantía a los 59 años, 499 semanas y con empleo
      on: 2026-03-01
      inputs: {edad: 59, semanas_cotizadas: 499, tiene_empleo_vigente: true, ...}
      expect: {elegible_cesantia: false}
      expect_unmet: [edad, semanas_cotizadas, tiene_empleo_vigente]

    - name: Sin salario promedio no se decide
      on: 2026-03-01
      inputs: {edad: 66, semanas_cotizadas: 1200}
      expect_error: {code: missing_input, missing: [salario_promedio_diario, conyuge]}
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

import yaml

from pilar.rules.errors import (
    MissingInputError,
    PackageNotFoundError,
    RulesError,
    SchemeFileError,
)
from pilar.rules.package import Package, available_packages, load_package

CASE_KEYS = frozenset(
    {"name", "reference", "on", "known_at", "inputs", "expect", "expect_unmet", "expect_error"}
)
ERROR_KEYS = frozenset({"code", "missing", "reference"})
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Words of the expression language that are not names, and the built-in functions: the first
# *name* a condition's test reads skips them (``not tiene_empleo_vigente`` → the input).
_KEYWORDS = frozenset({"if", "then", "else", "and", "or", "not", "true", "false"})
_NAME = re.compile(
    r"'[^']*'|\"[^\"]*\"|([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)(\s*\()?"
)


class _CaseLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans, so that ``on:`` is a key and not ``True``,
    and with dates left as text: PyYAML turns ``2020-13-01`` into a bare ``ValueError`` with no
    line, while the runner parses dates itself and names the line of a wrong one."""


_CaseLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CaseLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


# --- the cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """One expected value and the line it is written on."""

    value: Any
    line: int


@dataclass(frozen=True)
class ExpectedError:
    code: str
    missing: tuple[str, ...] | None
    reference: str | None
    line: int


@dataclass(frozen=True)
class SchemeCase:
    """One test case as written in a package's ``tests/*.yaml``."""

    name: str
    path: Path
    line: int
    on: datetime.date
    known_at: datetime.date | None
    inputs: Mapping[str, Any]
    expect: Mapping[str, Expected]
    expect_unmet: Mapping[str, tuple[str, ...]]
    expect_unmet_line: int | None
    expect_error: ExpectedError | None
    reference: str | None = None

    @property
    def location(self) -> str:
        return f"{display_path(self.path)}:{self.line}"


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter in reports)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_cases(tests_dir: Path) -> list[SchemeCase]:
    """Every case of every ``*.yaml`` file in ``tests_dir``, in file and then written order.

    Raises ``SchemeFileError`` (``yaml_error`` or ``schema_error``) naming the file and line of
    the first malformed case, or of a case name used twice.
    """
    cases: list[SchemeCase] = []
    seen: dict[str, SchemeCase] = {}
    for path in sorted(tests_dir.glob("*.yaml")):
        for case in _load_file(path):
            earlier = seen.get(case.name)
            if earlier is not None:
                _fail(
                    path,
                    case.line,
                    f"the case name {case.name!r} is already used at {earlier.location}",
                )
            seen[case.name] = case
            cases.append(case)
    return cases


def _fail(path: Path, line: int | None, problem: str) -> NoReturn:
    location = display_path(path) if line is None else f"{display_path(path)}:{line}"
    raise SchemeFileError({"problem": problem}, location=location)


def _load_file(path: Path) -> list[SchemeCase]:
    loader = _CaseLoader(path.read_text(encoding="utf-8"))
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        location = display_path(path) + (f":{mark.line + 1}" if mark is not None else "")
        raise SchemeFileError({"problem": str(error)}, location=location, yaml=True) from error
    finally:
        loader.dispose()
    if root is None:
        return []
    if not isinstance(root, yaml.SequenceNode) or not isinstance(data, list):
        _fail(path, root.start_mark.line + 1, "a test file is a list of cases")
    return [_case(path, node, item) for node, item in zip(root.value, data, strict=True)]


def _lines(node: yaml.Node) -> dict[str, int]:
    """Key → line of a mapping node's entries."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(key.value): key.start_mark.line + 1 for key, _ in node.value}


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return value_node
    return None


def _date(path: Path, line: int, key: str, value: Any) -> datetime.date:
    # Only the plain form: Python 3.11's fromisoformat also takes 20260301 and week dates.
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    _fail(path, line, f"{key} must be a date written 2026-03-01, got {value!r}")


def _case(path: Path, node: yaml.Node, item: Any) -> SchemeCase:
    line = node.start_mark.line + 1
    if not isinstance(item, dict):
        _fail(path, line, "a case is a mapping with name, on, inputs and expect or expect_error")
    lines = _lines(node)
    unknown = sorted(str(key) for key in item if key not in CASE_KEYS)
    if unknown:
        _fail(
            path,
            lines.get(unknown[0], line),
            f"unknown key {unknown[0]!r} in a case; allowed: {', '.join(sorted(CASE_KEYS))}",
        )
    for required in ("name", "on", "inputs"):
        if required not in item:
            _fail(path, line, f"the case has no {required!r}")
    name = item["name"]
    if not isinstance(name, str) or not name.strip():
        _fail(path, lines["name"], "name must be a non-empty text")
    reference = item.get("reference")
    if reference is not None and not isinstance(reference, str):
        _fail(path, lines["reference"], "reference must be a text")
    on = _date(path, lines["on"], "on", item["on"])
    known_at = (
        _date(path, lines["known_at"], "known_at", item["known_at"])
        if item.get("known_at") is not None
        else None
    )
    inputs = item["inputs"] if item["inputs"] is not None else {}
    if not isinstance(inputs, dict) or not all(isinstance(key, str) for key in inputs):
        _fail(path, lines["inputs"], "inputs must be a mapping of input names to values")

    has_expect, has_error = "expect" in item, "expect_error" in item
    if has_expect == has_error:
        _fail(path, line, "a case has exactly one of expect and expect_error")
    expect: dict[str, Expected] = {}
    expected_error: ExpectedError | None = None
    if has_expect:
        expect = _expectations(path, lines["expect"], _child(node, "expect"), item["expect"])
    else:
        expected_error = _expected_error(path, lines["expect_error"], item["expect_error"])

    unmet: dict[str, tuple[str, ...]] = {}
    unmet_line = lines.get("expect_unmet")
    if "expect_unmet" in item:
        assert unmet_line is not None
        if not has_expect:
            _fail(path, unmet_line, "expect_unmet goes with expect, not with expect_error")
        unmet = _expected_unmet(path, unmet_line, item["expect_unmet"], expect)
    return SchemeCase(
        name=name.strip(),
        path=path,
        line=line,
        on=on,
        known_at=known_at,
        inputs=inputs,
        expect=expect,
        expect_unmet=unmet,
        expect_unmet_line=unmet_line,
        expect_error=expected_error,
        reference=reference,
    )


def _expectations(
    path: Path, line: int, node: yaml.Node | None, expect: Any
) -> dict[str, Expected]:
    if not isinstance(expect, dict) or not expect:
        _fail(path, line, "expect must be a non-empty mapping of output names to values")
    lines = _lines(node) if node is not None else {}
    expectations: dict[str, Expected] = {}
    for name, value in expect.items():
        if not isinstance(name, str):
            _fail(path, line, f"an output name must be a text, got {name!r}")
        if value is None:
            _fail(path, lines.get(name, line), f"no expected value for {name}")
        expectations[name] = Expected(value=value, line=lines.get(name, line))
    return expectations


def _expected_error(path: Path, line: int, spec: Any) -> ExpectedError:
    if not isinstance(spec, dict) or not isinstance(spec.get("code"), str):
        _fail(path, line, "expect_error is a mapping with at least a code, e.g. {code: no_value}")
    unknown = sorted(str(key) for key in spec if key not in ERROR_KEYS)
    if unknown:
        _fail(
            path,
            line,
            f"unknown key {unknown[0]!r} in expect_error; allowed: {', '.join(sorted(ERROR_KEYS))}",
        )
    missing = spec.get("missing")
    if missing is not None and (
        not isinstance(missing, list) or not all(isinstance(name, str) for name in missing)
    ):
        _fail(path, line, "expect_error.missing is a list of input names")
    reference = spec.get("reference")
    if reference is not None and not isinstance(reference, str):
        _fail(path, line, "expect_error.reference is a text")
    return ExpectedError(
        code=spec["code"],
        missing=tuple(missing) if missing is not None else None,
        reference=reference,
        line=line,
    )


def _expected_unmet(
    path: Path, line: int, spec: Any, expect: Mapping[str, Expected]
) -> dict[str, tuple[str, ...]]:
    def entries(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
            _fail(path, line, "each expect_unmet is a list of condition names or tests")
        return tuple(value)

    if isinstance(spec, dict):
        return {str(variable): entries(value) for variable, value in spec.items()}
    denied = [name for name, expected in expect.items() if expected.value is False]
    if len(denied) != 1:
        _fail(
            path,
            line,
            "a list expect_unmet needs exactly one output expected false in expect "
            f"(found {len(denied)}); write it as a mapping variable → list instead",
        )
    return {denied[0]: entries(spec)}


# --- running them ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputCheck:
    """One comparison of a case: an output's value, a denial's unmet conditions, or an error.

    ``name`` is the output, ``unmet:<variable>`` for unmet conditions, or ``error``; expected
    and actual are shown as text.
    """

    name: str
    expected: str
    actual: str
    passed: bool
    line: int


@dataclass(frozen=True)
class CaseOutcome:
    """The outcome of one case: passed when every check passed and nothing unexpected raised."""

    case: SchemeCase
    checks: tuple[OutputCheck, ...]
    problem: str | None = None

    @property
    def passed(self) -> bool:
        return self.problem is None and all(check.passed for check in self.checks)

    @property
    def failed_checks(self) -> list[OutputCheck]:
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.case.name,
            "location": self.case.location,
            "passed": self.passed,
            "problem": self.problem,
            "checks": [
                {
                    "name": check.name,
                    "location": f"{display_path(self.case.path)}:{check.line}",
                    "expected": check.expected,
                    "actual": check.actual,
                    "passed": check.passed,
                }
                for check in self.checks
            ],
        }


@dataclass(frozen=True)
class PackageReport:
    """Every case of one package version; ``error`` when the package or a case file is broken."""

    package: str
    version: str
    outcomes: tuple[CaseOutcome, ...] = ()
    error: RulesError | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(outcome.passed for outcome in self.outcomes)

    @property
    def failures(self) -> list[CaseOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "version": self.version,
            "passed": self.passed,
            "error": self.error.to_dict() if self.error is not None else None,
            "cases": [outcome.to_dict() for outcome in self.outcomes],
        }


@dataclass
class _Checks:
    case: SchemeCase
    checks: list[OutputCheck] = field(default_factory=list)

    def add(self, name: str, expected: str, actual: str, passed: bool, line: int) -> None:
        self.checks.append(OutputCheck(name, expected, actual, passed, line))


def format_value(value: Any) -> str:
    """A value as a case file would write it: ``true``, ``12345.67``, ``2026-03-01``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, float | str):
        # A YAML float goes through its shortest decimal text: 0.1 is 0.1, not
        # 0.1000000000000000055511151231257827.
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            return None
    return None


def values_equal(expected: Any, actual: Any) -> bool:
    """Whether a value written in a case equals the engine's value, by the engine's type."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual is expected
    if isinstance(actual, Decimal | int):
        wanted = _as_decimal(expected)
        return wanted is not None and wanted == Decimal(actual)
    if isinstance(actual, datetime.date):
        if isinstance(expected, str):
            try:
                expected = datetime.date.fromisoformat(expected)
            except ValueError:
                return False
        return isinstance(expected, datetime.date) and expected == actual
    return isinstance(expected, str) and expected == actual


def engine_inputs(package: Package, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Case inputs as the engine takes them: floats and numeric text as ``Decimal``, ISO text
    as a date, each by the type the package declares for the input.

    Text is converted only for inputs declared as numbers or dates, so a text input that
    happens to look like a number ("007") stays text. A value that does not convert is passed
    as written, and the engine refuses it (``input_type``) naming the input.
    """
    converted: dict[str, Any] = {}
    for name, value in inputs.items():
        variable = package.inputs.get(name)
        declared = variable.type if variable is not None else None
        if isinstance(value, float) or (declared == "number" and isinstance(value, str)):
            number = _as_decimal(value)
            converted[name] = number if number is not None else value
        elif declared == "date" and isinstance(value, str):
            try:
                converted[name] = datetime.date.fromisoformat(value)
            except ValueError:
                converted[name] = value
        else:
            converted[name] = value
    return converted


def condition_key(test: str) -> str:
    """The first name a condition's test reads, skipping keywords, functions and strings."""
    for match in _NAME.finditer(test):
        name, call = match.group(1), match.group(2)
        if name is None or call or name in _KEYWORDS:
            continue
        return name
    return _normalise(test)


def _normalise(test: str) -> str:
    return "".join(test.split())


def _match_unmet(entries: Sequence[str], tests: Sequence[str]) -> tuple[bool, list[str]]:
    """Whether the entries name exactly the unmet tests, one each; and the tests' keys."""
    keys = [condition_key(test) for test in tests]
    remaining = list(range(len(tests)))
    # Entries written as a whole test are matched first, so that a bare name does not take the
    # condition a full test was written to name.
    ordered = sorted(entries, key=lambda entry: condition_key(entry) == _normalise(entry))
    for entry in ordered:
        written = _normalise(entry)
        found = next(
            (i for i in remaining if _normalise(tests[i]) == written or keys[i] == written),
            None,
        )
        if found is None:
            return False, keys
        remaining.remove(found)
    return not remaining, keys


def run_case(package: Package, case: SchemeCase) -> CaseOutcome:
    """Evaluate one case against a loaded package and compare everything it expects."""
    checks = _Checks(case)
    inputs = engine_inputs(package, case.inputs)
    if case.expect_error is not None:
        return _run_error_case(package, case, inputs, checks)
    outputs = list(case.expect)
    outputs += [name for name in case.expect_unmet if name not in case.expect]
    try:
        result = package.evaluate(inputs, on=case.on, known_at=case.known_at, outputs=outputs)
    except RulesError as error:
        return CaseOutcome(case, tuple(checks.checks), problem=error.message("en"))
    for name, expected in case.expect.items():
        if name not in result.values:
            checks.add(name, format_value(expected.value), "(no value)", False, expected.line)
            continue
        actual = result.values[name]
        checks.add(
            name,
            format_value(expected.value),
            format_value(actual),
            values_equal(expected.value, actual),
            expected.line,
        )
    line = case.expect_unmet_line or case.line
    for variable, entries in case.expect_unmet.items():
        try:
            unmet = result.unmet_conditions(variable)
        except KeyError:
            checks.add(f"unmet:{variable}", ", ".join(entries), "(no such output)", False, line)
            continue
        passed, keys = _match_unmet(entries, [condition.test for condition in unmet])
        checks.add(f"unmet:{variable}", ", ".join(entries), ", ".join(keys), passed, line)
    return CaseOutcome(case, tuple(checks.checks))


def _run_error_case(
    package: Package, case: SchemeCase, inputs: Mapping[str, Any], checks: _Checks
) -> CaseOutcome:
    expected = case.expect_error
    assert expected is not None
    try:
        result = package.evaluate(inputs, on=case.on, known_at=case.known_at)
    except RulesError as error:
        checks.add("error", expected.code, error.code, error.code == expected.code, expected.line)
        if expected.missing is not None:
            actual = error.missing if isinstance(error, MissingInputError) else []
            checks.add(
                "error.missing",
                ", ".join(sorted(expected.missing)),
                ", ".join(sorted(actual)),
                sorted(expected.missing) == sorted(actual),
                expected.line,
            )
        if expected.reference is not None:
            checks.add(
                "error.reference",
                expected.reference,
                error.reference or "(none)",
                error.reference == expected.reference,
                expected.line,
            )
        return CaseOutcome(case, tuple(checks.checks))
    values = ", ".join(f"{name}={format_value(value)}" for name, value in result.values.items())
    checks.add("error", expected.code, f"no error ({values})", False, expected.line)
    return CaseOutcome(case, tuple(checks.checks))


def run_package(package: Package, tests_dir: Path | None = None) -> PackageReport:
    """Run every case of a loaded package (by default the ``tests/`` folder beside its files)."""
    folder = tests_dir or Path(package.path) / "tests"
    try:
        cases = load_cases(folder)
    except RulesError as error:
        return PackageReport(package.name, package.version, error=error)
    return PackageReport(
        package.name, package.version, tuple(run_case(package, case) for case in cases)
    )


def run_packages(
    names: Iterable[str] | None = None, *, schemes_dir: Path | None = None
) -> list[PackageReport]:
    """Load and test every version of every package (or of the packages named).

    Every version is tested, not only the newest: an award keeps the version it was computed
    with, so an old version's cases must keep passing. A package that does not load is a report
    with its ``error`` and no cases; an unknown name is a ``package_not_found`` report, so a
    typo on the command line fails loudly instead of testing nothing.
    """
    shipped = available_packages(schemes_dir=schemes_dir)
    wanted = list(names) if names is not None else sorted({ref.name for ref in shipped})
    reports: list[PackageReport] = []
    for name in wanted:
        versions = [ref.version for ref in shipped if ref.name == name]
        if not versions:
            error = PackageNotFoundError({"name": name, "version": ""})
            reports.append(PackageReport(name, "", error=error))
            continue
        for version in versions:
            try:
                package = load_package(name, version, schemes_dir=schemes_dir)
            except RulesError as error:
                reports.append(PackageReport(name, version, error=error))
                continue
            reports.append(run_package(package))
    return reports
