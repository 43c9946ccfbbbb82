"""Scheme packages: finding, hashing, integrity-checking, loading and caching them.

Loading does all the checking once: the shape of every file, every name, the type of every
formula, condition, case and table input, cycles between variables, overlapping table rows and
legal references. A loaded ``Package`` is immutable in use and cached by its folder and content
hash, so editing a package's files (in development) loads it afresh, while an unchanged package
is parsed once per process.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pilar.rules.errors import (
    CycleError,
    FormulaTypeError,
    PackageIntegrityError,
    PackageNotFoundError,
    SchemeFileError,
    UnknownNameError,
)
from pilar.rules.explanation import BenefitInfo, Label, Result, TypeName
from pilar.rules.expressions import BUILTIN_NAMES, Name, NameKind
from pilar.rules.loader import (
    PackageSpec,
    Variable,
    YamlMap,
    read_package_yaml,
    read_variables,
    read_yaml,
)
from pilar.rules.parameters import Parameter, ParameterValue, read_parameters
from pilar.rules.tables import Table, read_tables

if TYPE_CHECKING:
    import polars as pl

SCHEMES_DIR = Path(__file__).resolve().parent / "schemes"
REGISTER = "published.yaml"
DEFINITION_FILES = ("package.yaml", "parameters.yaml", "variables.yaml", "tables.yaml")

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z.-]+)?$"
)


class PackageRef(NamedTuple):
    name: str
    version: str


def version_key(version: str) -> tuple[Any, ...] | None:
    """A sort key giving semantic-version order (1.10.0 after 1.9.0, 2.0.0-rc.1 before 2.0.0)."""
    match = _SEMVER.match(version)
    if match is None:
        return None
    major, minor, patch, prerelease = match.groups()
    if prerelease is None:
        release: tuple[Any, ...] = (1,)
    else:
        # Numeric identifiers sort numerically and before alphanumeric ones (semver §11).
        release = (
            0,
            tuple(
                (0, int(part), "") if part.isdigit() else (1, 0, part)
                for part in prerelease.split(".")
            ),
        )
    return (int(major), int(minor), int(patch), *release)


# --------------------------------------------------------------------------------------------
# Hashing and the publication register


def package_hash(path: str | Path) -> str:
    """SHA-256 over the package's definition files (every ``*.yaml`` outside ``tests/``).

    Each file contributes ``relative/path\\0<bytes>\\0``, in sorted path order, so renaming,
    adding or removing a file changes the hash as much as editing one.
    """
    root = Path(path)
    files = sorted(
        (file.relative_to(root).as_posix(), file)
        for file in root.rglob("*.yaml")
        if file.is_file() and file.relative_to(root).parts[0] != "tests"
    )
    digest = hashlib.sha256()
    for relative, file in files:
        digest.update(relative.encode("utf-8") + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def read_register(schemes_dir: Path) -> dict[str, dict[str, str]]:
    """``published.yaml``: package name → version → sha256 (empty when there is none)."""
    path = schemes_dir / REGISTER
    if not path.exists():
        return {}
    document = read_yaml(path, REGISTER, allow_empty=True)
    register: dict[str, dict[str, str]] = {}
    for name, versions in document.items():
        if not isinstance(versions, YamlMap):
            raise SchemeFileError(
                {"problem": f"{name}: expected a mapping of version to sha256"},
                location=document.where(name),
            )
        register[name] = {}
        for version, digest in versions.items():
            if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise SchemeFileError(
                    {"problem": f"{name} {version}: {digest!r} is not a sha256 hex digest"},
                    location=versions.where(version),
                )
            register[name][str(version)] = digest
    return register


def _write_register(schemes_dir: Path, register: Mapping[str, Mapping[str, str]]) -> None:
    lines = [
        "# The publication register: package → version → SHA-256 of its definition files.",
        "# A version listed here is immutable: loading it refuses files that no longer match.",
        "# Written by pilar.rules.publish; do not edit by hand.",
    ]
    for name in sorted(register):
        lines.append(f"{name}:")
        for version in sorted(register[name], key=lambda v: version_key(v) or (v,)):
            # Both quoted: a version such as 1.0 would read back as a number, and so would a
            # digest that happened to be all decimal digits.
            lines.append(f'  "{version}": "{register[name][version]}"')
    text = "\n".join(lines) + "\n"
    # Written to a temporary file and renamed, so a crash never leaves half a register.
    handle, temporary = tempfile.mkstemp(dir=schemes_dir, prefix=".published-", suffix=".yaml")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, schemes_dir / REGISTER)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def publish(name: str, version: str, *, schemes_dir: str | Path | None = None) -> str:
    """Record the package's content hash in ``published.yaml``, making the version immutable.

    The package must load cleanly first. Publishing an already published version is a no-op
    when its files are unchanged and a ``package_integrity`` error when they changed. Returns
    the hash.
    """
    directory = Path(schemes_dir) if schemes_dir is not None else SCHEMES_DIR
    package = load_package(name, version, schemes_dir=directory)
    register = read_register(directory)
    published = register.get(name, {}).get(version)
    if published == package.content_hash:
        return published
    register.setdefault(name, {})[version] = package.content_hash
    _write_register(directory, register)
    return package.content_hash


# --------------------------------------------------------------------------------------------
# Finding packages


def available_packages(*, schemes_dir: str | Path | None = None) -> list[PackageRef]:
    """Every ``(name, version)`` folder with a ``package.yaml``, oldest version first."""
    directory = Path(schemes_dir) if schemes_dir is not None else SCHEMES_DIR
    found: list[PackageRef] = []
    if not directory.is_dir():
        return found
    for package_dir in sorted(directory.iterdir()):
        if not package_dir.is_dir() or package_dir.name.startswith((".", "_")):
            continue
        versions = [
            version_dir.name
            for version_dir in package_dir.iterdir()
            if (version_dir / "package.yaml").is_file() and version_key(version_dir.name)
        ]
        versions.sort(key=lambda v: version_key(v) or ())
        found.extend(PackageRef(package_dir.name, version) for version in versions)
    return found


def _newest_version(name: str, directory: Path) -> str:
    versions = [
        ref.version for ref in available_packages(schemes_dir=directory) if ref.name == name
    ]
    if not versions:
        raise PackageNotFoundError({"name": name, "version": ""})
    return versions[-1]


_cache: dict[tuple[str, str], Package] = {}
_cache_lock = threading.Lock()


def load_package(
    name: str | None = None,
    version: str | None = None,
    *,
    path: str | Path | None = None,
    schemes_dir: str | Path | None = None,
) -> Package:
    """Load (or take from the cache) a package by name and version, or from its folder.

    Without ``version``, the newest in semantic-version order. A version listed in the
    publication register is refused (``package_integrity``) when its files changed.
    """
    directory = Path(schemes_dir) if schemes_dir is not None else SCHEMES_DIR
    expected: PackageRef | None = None
    if path is not None:
        folder = Path(path).resolve()
        register_dir = folder.parent.parent
    else:
        if name is None:
            raise TypeError("load_package needs a package name or path=")
        if version is None:
            version = _newest_version(name, directory)
        folder = (directory / name / version).resolve()
        register_dir = directory
        expected = PackageRef(name, version)
    if not (folder / "package.yaml").is_file():
        raise PackageNotFoundError({"name": name or str(path), "version": version or ""})
    content_hash = package_hash(folder)
    display = f"{folder.parent.name}/{folder.name}"
    key = (str(folder), content_hash)
    cached = _cache.get(key)
    if cached is not None:
        # The register is read again: a version published (or a hash recorded by hand) since
        # the package was cached is held to it like a fresh load.
        _check_integrity(register_dir, cached.name, cached.version, content_hash, display)
        return cached
    spec = read_package_yaml(read_yaml(folder / "package.yaml", f"{display}/package.yaml"))
    if expected is not None and (spec.name, spec.version) != expected:
        raise SchemeFileError(
            {
                "problem": f"package.yaml says {spec.name} {spec.version} but its folder is "
                f"{expected.name}/{expected.version}"
            },
            location=spec.location,
        )
    _check_integrity(register_dir, spec.name, spec.version, content_hash, display)
    package = _build(spec, folder, display, content_hash)
    with _cache_lock:
        _cache[key] = package
    return package


def _check_integrity(
    register_dir: Path, name: str, version: str, content_hash: str, display: str
) -> None:
    published = read_register(register_dir).get(name, {}).get(version)
    if published is not None and published != content_hash:
        raise PackageIntegrityError(
            {"name": name, "version": version, "expected": published, "actual": content_hash},
            location=f"{display}/package.yaml",
        )


def clear_cache() -> None:
    """Forget every loaded package (tests that rewrite a package in place use this)."""
    with _cache_lock:
        _cache.clear()


# --------------------------------------------------------------------------------------------
# Building a package: resolve names, type-check, detect cycles


def _build(spec: PackageSpec, folder: Path, display: str, content_hash: str) -> Package:
    def read(file_name: str) -> YamlMap | None:
        file = folder / file_name
        return read_yaml(file, f"{display}/{file_name}") if file.is_file() else None

    for unexpected in sorted(folder.glob("*.yaml")):
        if unexpected.name not in DEFINITION_FILES:
            raise SchemeFileError(
                {
                    "problem": f"unknown file {unexpected.name}; "
                    f"a package has {', '.join(DEFINITION_FILES)}"
                },
                location=f"{display}/{unexpected.name}:1",
            )
    parameters_document = read("parameters.yaml")
    variables_document = read("variables.yaml")
    tables_document = read("tables.yaml")
    if variables_document is None:
        raise SchemeFileError(
            {"problem": "a package needs variables.yaml"}, location=f"{display}/package.yaml:1"
        )
    parameters = read_parameters(parameters_document) if parameters_document is not None else []
    variables = read_variables(
        variables_document, first_entity=spec.entities[0], entities=spec.entities
    )
    tables = read_tables(tables_document) if tables_document is not None else []

    namespace: dict[str, str] = {}
    for kind, items in (("parameter", parameters), ("variable", variables), ("table", tables)):
        for item in items:
            if item.name in BUILTIN_NAMES:
                raise SchemeFileError(
                    {"problem": f"{item.name} is a built-in name"}, location=item.location
                )
            if item.name in namespace:
                raise SchemeFileError(
                    {
                        "problem": f"{kind} {item.name}: "
                        f"the name is already a {namespace[item.name]}"
                    },
                    location=item.location,
                )
            namespace[item.name] = kind
    return Package(
        spec=spec,
        path=folder,
        content_hash=content_hash,
        parameters={p.name: p for p in parameters},
        variables={v.name: v for v in variables},
        tables={t.name: t for t in tables},
    )


class Package:
    """A loaded, type-checked scheme package (see ``docs/rules-language.md``)."""

    def __init__(
        self,
        *,
        spec: PackageSpec,
        path: Path,
        content_hash: str,
        parameters: dict[str, Parameter],
        variables: dict[str, Variable],
        tables: dict[str, Table],
    ) -> None:
        self.name = spec.name
        self.version = spec.version
        self.title: Label = spec.title
        self.description: str | Label | None = spec.description
        self.entities = spec.entities
        self.path = path
        self.content_hash = content_hash
        self.parameters = parameters
        self.variables = variables
        self.tables = tables
        self._resolve_and_check()
        self.benefits: dict[str, BenefitInfo] = self._check_benefits(spec)
        self._required_inputs: dict[str, tuple[str, ...]] = {}

    def __repr__(self) -> str:
        return f"<Package {self.name} {self.version} {self.content_hash[:12]}>"

    @property
    def inputs(self) -> dict[str, Variable]:
        """The variables a caller supplies, in declared order."""
        return {name: v for name, v in self.variables.items() if v.input}

    @property
    def ref(self) -> PackageRef:
        return PackageRef(self.name, self.version)

    # ---- load-time checks

    def _resolve(self, node: Name) -> tuple[NameKind, TypeName] | None:
        if node.table is not None:
            table = self.tables.get(node.table)
            if table is None or node.output not in table.outputs:
                return None
            return "table", table.outputs[str(node.output)].type
        variable = self.variables.get(node.name)
        if variable is not None:
            return "variable", variable.type
        parameter = self.parameters.get(node.name)
        if parameter is not None:
            return "parameter", parameter.type
        builtin = BUILTIN_NAMES.get(node.name)
        if builtin is not None:
            return "builtin", builtin
        return None

    def _resolve_and_check(self) -> None:
        for table in self.tables.values():
            input_types: dict[str, TypeName] = {}
            for input_name in table.inputs:
                variable = self.variables.get(input_name)
                if variable is None:
                    raise UnknownNameError(
                        {
                            "name": input_name,
                            "context": f" (input of table {table.name}; tables read variables)",
                        },
                        location=table.location,
                    )
                input_types[input_name] = variable.type
            table.compile(input_types)
        for variable in self.variables.values():
            what = f"variable {variable.name}"
            if variable.formula is not None:
                variable.formula.check(self._resolve, variable.type, f"the formula of {what}")
            for condition in variable.conditions:
                condition.test.check(self._resolve, "bool", "a condition")
            for case in variable.cases:
                if case.when is not None:
                    case.when.check(self._resolve, "bool", "a case's when")
                case.value.check(self._resolve, variable.type, f"a case value of {what}")
            names: dict[str, None] = {}
            for expression in variable.expressions():
                for name in expression.names():
                    names.setdefault(name, None)
            variable.dependencies = tuple(names)
        self._refuse_cycles()

    def graph_dependencies(self, name: str) -> list[str]:
        """The variables and tables ``name`` (a variable or a table) needs computed first."""
        if name in self.tables:
            return list(self.tables[name].inputs)
        found: dict[str, None] = {}
        for dependency in self.variables[name].dependencies:
            if "." in dependency:
                found.setdefault(dependency.split(".", 1)[0], None)
            elif dependency in self.variables:
                found.setdefault(dependency, None)
        return list(found)

    def _refuse_cycles(self) -> None:
        done: set[str] = set()
        stack: list[str] = []
        on_stack: set[str] = set()

        def visit(node: str) -> None:
            if node in done:
                return
            if node in on_stack:
                cycle = [*stack[stack.index(node) :], node]
                first = self.variables.get(cycle[0]) or self.tables.get(cycle[0])
                raise CycleError(
                    {"cycle": " → ".join(cycle)},
                    location=first.location if first is not None else None,
                )
            stack.append(node)
            on_stack.add(node)
            for dependency in self.graph_dependencies(node):
                visit(dependency)
            stack.pop()
            on_stack.discard(node)
            done.add(node)

        for name in [*self.variables, *self.tables]:
            visit(name)

    def _check_benefits(self, spec: PackageSpec) -> dict[str, BenefitInfo]:
        benefits = {}
        for benefit in spec.benefits:
            for role, variable_name, expected in (
                ("eligible", benefit.eligible, "bool"),
                ("amount", benefit.amount, "number"),
            ):
                if variable_name is None:
                    continue
                variable = self.variables.get(variable_name)
                if variable is None:
                    raise UnknownNameError(
                        {"name": variable_name, "context": f" ({role} of benefit {benefit.name})"},
                        location=benefit.location,
                    )
                if variable.type != expected:
                    raise FormulaTypeError(
                        {
                            "expression": variable_name,
                            "column": 1,
                            "problem": f"the {role} of benefit {benefit.name} must be a "
                            f"{expected} variable; {variable_name} is {variable.type}",
                        },
                        location=benefit.location,
                    )
            benefits[benefit.name] = BenefitInfo(
                name=benefit.name,
                label=benefit.label,
                eligible=benefit.eligible,
                amount=benefit.amount,
                frequency=benefit.frequency,
            )
        return benefits

    # ---- what evaluation needs

    def default_outputs(self) -> list[str]:
        """Every benefit's eligibility and amount, in declared order."""
        outputs: dict[str, None] = {}
        for benefit in self.benefits.values():
            outputs.setdefault(benefit.eligible, None)
            if benefit.amount is not None:
                outputs.setdefault(benefit.amount, None)
        return list(outputs)

    def check_outputs(self, outputs: Sequence[str] | None) -> list[str]:
        if outputs is None:
            chosen = self.default_outputs()
            if not chosen:
                raise SchemeFileError(
                    {"problem": f"package {self.name} declares no benefits; name the outputs"}
                )
            return chosen
        if isinstance(outputs, str):
            raise TypeError("outputs is a list of variable names")
        for output in outputs:
            if output not in self.variables:
                raise UnknownNameError({"name": output, "context": " (output)"})
        return list(dict.fromkeys(outputs))

    def amount_gates(self, outputs: Sequence[str]) -> dict[str, str]:
        """Amounts evaluated only when their benefit's eligibility holds: amount → eligible.

        An amount is meaningless for a person who is not eligible, and its formula may well
        have no value for them (an age-factor table that starts at 60, say); so when a
        benefit's eligibility and amount are both asked for, the amount is computed only for
        the eligible, and left out (single case) or null (bulk) for the rest.
        """
        gates: dict[str, str] = {}
        requested = set(outputs)
        for benefit in self.benefits.values():
            if (
                benefit.amount is not None
                and benefit.amount in requested
                and benefit.eligible in requested
                and benefit.amount != benefit.eligible
            ):
                gates.setdefault(benefit.amount, benefit.eligible)
        return gates

    def evaluation_order(self, outputs: Sequence[str]) -> list[str]:
        """Outputs in the order they are evaluated: gated amounts after every other output."""
        gates = self.amount_gates(outputs)
        return [o for o in outputs if o not in gates] + [o for o in outputs if o in gates]

    def required_inputs(self, outputs: Iterable[str]) -> list[str]:
        """Every input any of ``outputs`` may read, in any branch, in declared order."""
        needed: set[str] = set()
        for output in outputs:
            cached = self._required_inputs.get(output)
            if cached is None:
                cached = self._inputs_of(output)
                self._required_inputs[output] = cached
            needed.update(cached)
        return [name for name in self.variables if name in needed]

    def _inputs_of(self, output: str) -> tuple[str, ...]:
        seen: set[str] = set()
        pending = [output]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            pending.extend(self.graph_dependencies(current))
        return tuple(name for name in seen if name in self.variables and self.variables[name].input)

    # ---- evaluation

    def evaluate(
        self,
        inputs: Mapping[str, object],
        *,
        on: datetime.date,
        known_at: datetime.date | None = None,
        outputs: Sequence[str] | None = None,
        overrides: Mapping[str, Iterable[ParameterValue]] | None = None,
    ) -> Result:
        """One case, in ``Decimal``, with a full explanation (see ``evaluation.evaluate``)."""
        from pilar.rules.evaluation import evaluate

        return evaluate(
            self, inputs, on=on, known_at=known_at, outputs=outputs, overrides=overrides
        )

    def evaluate_bulk(
        self,
        inputs: pl.DataFrame,
        *,
        on: datetime.date | str,
        known_at: datetime.date | str | None = None,
        outputs: Sequence[str] | None = None,
        overrides: Mapping[str, Iterable[ParameterValue]] | None = None,
        chunk_size: int = 1_000_000,
    ) -> pl.DataFrame:
        """Many cases as Polars columns (see ``bulk.evaluate_bulk``)."""
        from pilar.rules.bulk import evaluate_bulk

        return evaluate_bulk(
            self,
            inputs,
            on=on,
            known_at=known_at,
            outputs=outputs,
            overrides=overrides,
            chunk_size=chunk_size,
        )
