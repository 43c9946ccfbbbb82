"""``pilar rules``: scheme packages from the command line.

    pilar rules list                      # every package version, published or draft
    pilar rules check                     # load every package and its test files
    pilar rules test [package ...]        # run the test cases (every version)
    pilar rules publish imss_1973 1.0.0   # run its cases, then record its hash
    pilar rules explain --person CURP --package imss_1973 --benefit vejez --on 2026-11-22
    pilar rules totalise --agreement-file docs/examples/agreement-imss-and-state.yaml \
        --period mx_imss=420 --period mx_state=180 --input mx_imss.edad=66 ... --on 2026-03-01

``check`` and ``test`` print each problem as ``file:line: message`` and exit with status 1 when
there is one, so they can gate a commit or a CI job. ``publish`` refuses a package whose cases
fail, and refuses (``package_integrity``) to record a new hash for a version already published
with other files: a change to the law is a new version folder. ``--schemes-dir`` points every
action at another folder of packages (a package under development, or a copy in tests), except
``totalise``, whose agreement files name packages of the shipped folder.

``totalise`` computes, for periods held with several institutions under an agreement (EU Reg.
883/2004, MERCOSUR, the Ibero-American convention, or any agreement file), each institution's
independent, theoretical and pro-rata benefit and its award, with the article of every step. It
reads no person from the registry and writes nothing.

The command line speaks English like Pilar's other commands; the messages of the rules engine
and the packages' titles come in the language of ``--language`` (default English).
"""

from __future__ import annotations

import datetime
import json
from argparse import ArgumentParser, ArgumentTypeError
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast

from django.core.management.base import BaseCommand, CommandError, no_translations

from pilar.core.errors import ApplicationError, ValidationFailed
from pilar.rules import (
    MissingInputError,
    Package,
    RulesError,
    available_packages,
    load_package,
    publish,
)
from pilar.rules.loader import label_text
from pilar.rules.package import SCHEMES_DIR, read_register
from pilar.rules.parameters import coerce_value
from pilar.rules.testing import PackageReport, display_path, load_cases, run_packages
from pilar.rules.totalisation import (
    AGREEMENTS_DIR,
    Agreement,
    PackageScheme,
    Periods,
    TotalisationError,
    TotalisationResult,
    load_agreement,
    schemes_from_agreement,
    totalise,
)
from pilar.rules.totalisation_render import render_totalisation


class Command(BaseCommand):
    help = "List, check, test and publish scheme rule packages; explain and totalise."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--schemes-dir",
            type=Path,
            default=None,
            help=f"The folder of scheme packages (default: {display_path(SCHEMES_DIR)}).",
        )
        parser.add_argument(
            "--language",
            choices=("en", "es"),
            default="en",
            help="Language of the rules engine's messages and of package titles.",
        )
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="{list,check,test,publish,explain,totalise}"
        )
        actions.add_parser("list", help="List every package version and whether it is published.")
        actions.add_parser(
            "check", help="Load every package and its test files; print each error with file:line."
        )
        test = actions.add_parser(
            "test", help="Run the test cases of every package, or of the packages named."
        )
        test.add_argument("packages", nargs="*", metavar="package")
        test.add_argument(
            "--failures-only", action="store_true", help="Print only the cases that fail."
        )
        publish_parser = actions.add_parser(
            "publish",
            help="Run a version's cases, then record its content hash in published.yaml.",
        )
        publish_parser.add_argument("name")
        publish_parser.add_argument("version")
        explain = actions.add_parser(
            "explain",
            help=(
                "Explain one person's result under a package on a date, from the registry and "
                "the work history (nothing is written but the access-log entry)."
            ),
        )
        explain.add_argument("--person", required=True, help="Person id, CURP or NSS.")
        explain.add_argument("--package", required=True)
        explain.add_argument(
            "--benefit", default=None, help="A benefit of the package (default: its first)."
        )
        explain.add_argument(
            "--on", type=_date_argument, default=None, help="Claim date (default: today)."
        )
        explain.add_argument(
            "--known-at",
            type=_date_argument,
            default=None,
            help="The law as known on this date (default: the claim date).",
        )
        explain.add_argument(
            "--declare",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="A fact the claim form would ask for, e.g. --declare padres_dependientes=1.",
        )
        explain.add_argument(
            "--purpose", default="pilar rules explain", help="Recorded in the access log."
        )
        explain.add_argument("--json", action="store_true", help="Print the result as JSON.")
        self._add_totalise_arguments(actions)

    def _add_totalise_arguments(self, actions: Any) -> None:
        totalise_parser = actions.add_parser(
            "totalise",
            help=(
                "Totalise periods held with several institutions under an agreement: each "
                "institution's independent, theoretical and pro-rata benefit and award."
            ),
        )
        agreement = totalise_parser.add_mutually_exclusive_group(required=True)
        shipped = ", ".join(sorted(path.stem for path in AGREEMENTS_DIR.glob("*.yaml")))
        agreement.add_argument(
            "--agreement",
            metavar="NAME",
            help=f"An agreement of {display_path(AGREEMENTS_DIR)}: {shipped}.",
        )
        agreement.add_argument(
            "--agreement-file",
            type=Path,
            metavar="PATH",
            help="An agreement file elsewhere, e.g. docs/examples/agreement-imss-and-state.yaml.",
        )
        totalise_parser.add_argument(
            "--period",
            action="append",
            required=True,
            metavar="INSTITUTION=QUANTITY",
            help=(
                "Periods held with an institution, in the institution's own unit (the agreement "
                "file says which), e.g. --period mx_imss=420. Once per institution."
            ),
        )
        totalise_parser.add_argument(
            "--input",
            action="append",
            default=[],
            metavar="INSTITUTION.NAME=VALUE",
            help=(
                "An input of the person for an institution whose scheme is a rules package, "
                "e.g. --input mx_imss.edad=66 or --input mx_imss.conyuge=yes."
            ),
        )
        totalise_parser.add_argument(
            "--on", type=_date_argument, required=True, metavar="YYYY-MM-DD", help="Claim date."
        )
        totalise_parser.add_argument(
            "--order",
            type=_order_argument,
            default=None,
            metavar="A,B,...",
            help=(
                "Institutions in the order the person was insured with them, first to last "
                "(needed only when each holds less than the minimum payable period)."
            ),
        )
        totalise_parser.add_argument(
            "--json", action="store_true", help="Print the result as JSON."
        )

    # Messages are English like the rest of the command line, whatever LANGUAGE_CODE says.
    @no_translations
    def handle(self, *args: Any, **options: Any) -> None:
        self.schemes_dir: Path = options["schemes_dir"] or SCHEMES_DIR
        self.language: str = options["language"]
        handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "list": self._list,
            "check": self._check,
            "test": self._test,
            "publish": self._publish,
            "explain": self._explain,
            "totalise": self._totalise,
        }
        handlers[options["action"]](options)

    def _error_text(self, error: RulesError) -> str:
        return error.message(self.language)

    # --- list -----------------------------------------------------------------------------------

    def _list(self, options: dict[str, Any]) -> None:
        refs = available_packages(schemes_dir=self.schemes_dir)
        if not refs:
            self.stdout.write(f"(no packages in {display_path(self.schemes_dir)})")
            return
        register = self._register()
        width = max(len(f"{ref.name} {ref.version}") for ref in refs)
        for ref in refs:
            published = register.get(ref.name, {}).get(ref.version)
            try:
                package = load_package(ref.name, ref.version, schemes_dir=self.schemes_dir)
            except RulesError as error:
                status = "modified" if error.code == "package_integrity" else "broken"
                summary = f"{status:<9}  {self._error_text(error)}"
            else:
                status = "published" if published else "draft"
                benefits = ", ".join(package.benefits) or "-"
                title = label_text(package.title, self.language)
                summary = f"{status:<9}  {package.content_hash[:12]}  {title} [{benefits}]"
            self.stdout.write(f"{ref.name + ' ' + ref.version:<{width}}  {summary}")

    def _register(self) -> dict[str, dict[str, str]]:
        try:
            return read_register(self.schemes_dir)
        except RulesError as error:
            raise CommandError(self._error_text(error)) from error

    # --- check ----------------------------------------------------------------------------------

    def _check(self, options: dict[str, Any]) -> None:
        self._register()
        refs = available_packages(schemes_dir=self.schemes_dir)
        errors = 0
        for ref in refs:
            try:
                package = load_package(ref.name, ref.version, schemes_dir=self.schemes_dir)
                cases = load_cases(Path(package.path) / "tests")
            except RulesError as error:
                errors += 1
                self.stdout.write(f"{ref.name} {ref.version}: {self._error_text(error)}")
                continue
            self.stdout.write(
                f"{ref.name} {ref.version}: ok ({len(package.variables)} variables, "
                f"{len(package.parameters)} parameters, {len(package.tables)} tables, "
                f"{len(cases)} test cases)"
            )
        if errors:
            raise CommandError(f"{errors} of {len(refs)} package(s) have errors.")
        self.stdout.write(f"{len(refs)} package(s) checked, no errors.")

    # --- test -----------------------------------------------------------------------------------

    def _test(self, options: dict[str, Any]) -> None:
        names = options["packages"] or None
        reports = run_packages(names, schemes_dir=self.schemes_dir)
        if not reports:
            self.stdout.write(f"(no packages in {display_path(self.schemes_dir)})")
            return
        for report in reports:
            self._print_report(report, failures_only=options["failures_only"])
        cases = sum(len(report.outcomes) for report in reports)
        failed = sum(len(report.failures) for report in reports)
        broken = sum(1 for report in reports if report.error is not None)
        if failed or broken:
            problems = [f"{failed} of {cases} case(s) failed"] if failed else []
            if broken:
                problems.append(f"{broken} package(s) could not be tested")
            raise CommandError("; ".join(problems) + ".")
        self.stdout.write(f"{cases} case(s) passed in {len(reports)} package version(s).")

    def _print_report(self, report: PackageReport, *, failures_only: bool) -> None:
        heading = f"{report.package} {report.version}".strip()
        if report.error is not None:
            self.stdout.write(f"{heading}: ERROR {self._error_text(report.error)}")
            return
        self.stdout.write(
            f"{heading}: {len(report.outcomes) - len(report.failures)} passed, "
            f"{len(report.failures)} failed"
        )
        for outcome in report.outcomes:
            if outcome.passed:
                if not failures_only:
                    self.stdout.write(f"  PASS  {outcome.case.location}  {outcome.case.name}")
                continue
            self.stdout.write(f"  FAIL  {outcome.case.location}  {outcome.case.name}")
            if outcome.problem is not None:
                self.stdout.write(f"        {outcome.problem}")
            for check in outcome.failed_checks:
                self.stdout.write(
                    f"        {display_path(outcome.case.path)}:{check.line}: {check.name}: "
                    f"expected {check.expected}, got {check.actual}"
                )

    # --- publish --------------------------------------------------------------------------------

    def _publish(self, options: dict[str, Any]) -> None:
        name, version = options["name"], options["version"]
        try:
            package = load_package(name, version, schemes_dir=self.schemes_dir)
        except RulesError as error:
            raise CommandError(self._error_text(error)) from error
        report = next(
            (
                report
                for report in run_packages([name], schemes_dir=self.schemes_dir)
                if report.version == version
            ),
            None,
        )
        assert report is not None  # the package loaded, so its version is among the reports
        if not report.outcomes and report.error is None:
            raise CommandError(
                f"{name} {version} has no test cases; write them in "
                f"{display_path(Path(package.path) / 'tests')} before publishing."
            )
        if not report.passed:
            self._print_report(report, failures_only=True)
            raise CommandError(f"{name} {version} is not published: its test cases fail.")
        already = self._register().get(name, {}).get(version)
        try:
            content_hash = publish(name, version, schemes_dir=self.schemes_dir)
        except RulesError as error:
            raise CommandError(self._error_text(error)) from error
        if already == content_hash:
            self.stdout.write(f"{name} {version} was already published as {content_hash}.")
        else:
            self.stdout.write(
                f"Published {name} {version} ({len(report.outcomes)} case(s) passed): "
                f"{content_hash}"
            )

    # --- explain --------------------------------------------------------------------------------

    def _explain(self, options: dict[str, Any]) -> None:
        from pilar.benefits.explain import ExplainRequest, explain_person

        declared: dict[str, Any] = {}
        for item in options["declare"]:
            name, equals, value = item.partition("=")
            if not equals or not name.strip():
                raise CommandError(f"--declare takes NAME=VALUE, not {item!r}.")
            declared[name.strip()] = _declared_value(value.strip())
        try:
            explained = explain_person(
                ExplainRequest(
                    person=options["person"],
                    package=options["package"],
                    benefit=options["benefit"],
                    on=options["on"],
                    known_at=options["known_at"],
                    declared=declared,
                    purpose=options["purpose"],
                    language=self.language,
                )
            )
        except ApplicationError as error:
            raise CommandError(_application_error_text(error)) from error
        except RulesError as error:
            raise CommandError(self._error_text(error)) from error
        if options["json"]:
            self.stdout.write(json.dumps(explained.to_dict(), ensure_ascii=False, indent=2))
        else:
            self.stdout.write(explained.text)

    # --- totalise -------------------------------------------------------------------------------

    def _totalise(self, options: dict[str, Any]) -> None:
        if options["schemes_dir"] is not None:
            # The agreement file names its packages, and schemes_from_agreement loads them from
            # the shipped folder: accepting the option would compute with other packages than
            # the ones it points at, silently.
            raise CommandError(
                "--schemes-dir does not apply to totalise: agreement files name packages of "
                f"{display_path(SCHEMES_DIR)}."
            )
        quantities = _period_arguments(options["period"])
        raw_inputs = _input_arguments(options["input"])
        try:
            agreement = load_agreement(options["agreement"], path=options["agreement_file"])
            result = _run_totalisation(
                agreement, quantities, raw_inputs, on=options["on"], order=options["order"]
            )
        except _InstitutionInputsMissing as missing:
            raise CommandError(
                f"{missing.institution}: {self._error_text(missing.error)} "
                f"(--input {missing.institution}.NAME=VALUE)"
            ) from missing.error
        except RulesError as error:
            raise CommandError(self._error_text(error)) from error
        if options["json"]:
            self.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        else:
            self.stdout.write(render_totalisation(result, self.language))


class _InstitutionInputsMissing(Exception):
    """Required inputs of an institution's package scheme that no ``--input`` gave."""

    def __init__(self, institution: str, error: MissingInputError) -> None:
        super().__init__(institution)
        self.institution = institution
        self.error = error


def _run_totalisation(
    agreement: Agreement,
    quantities: dict[str, Decimal],
    raw_inputs: dict[str, dict[str, str]],
    *,
    on: datetime.date,
    order: list[str] | None,
) -> TotalisationResult:
    """Check every argument against the agreement and its packages, then totalise.

    Everything is checked before anything is computed, each problem naming the institution:
    an unknown institution, one holding periods without a scheme in the agreement file, an
    input for an institution without periods or with a linear scheme, an input its package does
    not have or of the wrong type, and a required input left out.
    """
    periods: dict[str, Periods] = {}
    for institution_id, quantity in quantities.items():
        institution = agreement.institution(institution_id)
        if institution.scheme is None:
            raise TotalisationError(
                "missing_scheme",
                {"institution": institution_id},
                location=f"{display_path(agreement.path)}:{institution.line}",
            )
        periods[institution_id] = Periods(quantity, institution.unit)
    person_inputs: dict[str, dict[str, Any]] = {}
    for institution_id, given in raw_inputs.items():
        institution = agreement.institution(institution_id)
        first = f"--input {institution_id}.{next(iter(given))}"
        if institution_id not in periods:
            raise CommandError(
                f"{first}: {institution_id} holds no periods (no --period {institution_id}=…)."
            )
        declaration = institution.scheme
        assert declaration is not None  # checked with its periods above
        if declaration.kind != "package":
            raise CommandError(
                f"{first}: the scheme of {institution_id} in the agreement file is "
                f"{declaration.kind}, which takes no inputs."
            )
        package = load_package(declaration.settings["name"], declaration.settings["version"])
        person_inputs[institution_id] = _package_inputs(
            institution_id, package, declaration.settings["periods_input"], given
        )
    schemes = schemes_from_agreement(
        agreement, person_inputs=person_inputs, institutions=list(periods)
    )
    for institution_id, scheme in schemes.items():
        if isinstance(scheme, PackageScheme):
            _check_required_inputs(institution_id, scheme)
    return totalise(agreement, periods, schemes, on=on, order=order)


def _package_inputs(
    institution_id: str, package: Package, periods_input: str, given: dict[str, str]
) -> dict[str, Any]:
    """The ``--input`` texts of one institution as its package's values, each by its type.

    A bool takes yes/no (sí, true, false), a number its decimal text (a ``Decimal``, never a
    float), a date its ISO form; ``coerce_value`` refuses anything else with the input's label.
    """
    known = [name for name in package.inputs if name != periods_input]
    values: dict[str, Any] = {}
    for name, text in given.items():
        if name == periods_input:
            raise TotalisationError("periods_input_given", {"name": name})
        variable = package.inputs.get(name)
        if variable is None:
            raise CommandError(
                f"--input {institution_id}.{name}: package {package.name} {package.version} "
                f"has no input {name} (its inputs: {', '.join(known)})."
            )
        raw: Any = _declared_value(text) if variable.type == "bool" else text
        values[name] = coerce_value(raw, variable.type, name, variable.label)
    return values


def _check_required_inputs(institution_id: str, scheme: PackageScheme) -> None:
    package = cast(Package, scheme.package)
    outputs = [scheme.eligible_variable]
    if scheme.amount_variable is not None:
        outputs.append(scheme.amount_variable)
    missing = [
        {"name": name, "label": dict(package.variables[name].label)}
        for name in package.required_inputs(outputs)
        if name != scheme.periods_input
        and name not in scheme.inputs
        and not package.variables[name].optional
    ]
    if missing:
        raise _InstitutionInputsMissing(institution_id, MissingInputError({"inputs": missing}))


def _period_arguments(items: list[str]) -> dict[str, Decimal]:
    quantities: dict[str, Decimal] = {}
    for item in items:
        institution_id, equals, text = (part.strip() for part in item.partition("="))
        try:
            quantity = Decimal(text) if equals and institution_id else None
        except InvalidOperation:
            quantity = None
        if quantity is None or not quantity.is_finite():
            raise CommandError(
                f"--period takes INSTITUTION=QUANTITY, a number in the institution's own unit "
                f"(e.g. mx_imss=420), not {item!r}."
            )
        if institution_id in quantities:
            raise CommandError(f"--period {institution_id} is given twice.")
        quantities[institution_id] = quantity
    return quantities


def _input_arguments(items: list[str]) -> dict[str, dict[str, str]]:
    inputs: dict[str, dict[str, str]] = {}
    for item in items:
        key, equals, value = item.partition("=")
        institution_id, dot, name = (part.strip() for part in key.partition("."))
        if not (equals and dot and institution_id and name and value.strip()):
            raise CommandError(
                f"--input takes INSTITUTION.NAME=VALUE (e.g. mx_imss.edad=66), not {item!r}."
            )
        given = inputs.setdefault(institution_id, {})
        if name in given:
            raise CommandError(f"--input {institution_id}.{name} is given twice.")
        given[name] = value.strip()
    return inputs


def _order_argument(text: str) -> list[str]:
    order = [part.strip() for part in text.split(",")]
    if not all(order) or len(set(order)) != len(order):
        raise ArgumentTypeError(
            f"expected institution ids separated by commas, each once (A,B,...), not {text!r}"
        )
    return order


_YES = frozenset({"true", "yes", "si", "sí"})
_NO = frozenset({"false", "no"})


def _declared_value(text: str) -> Any:
    """A declared fact as the claim form would send it: yes/no as a bool, anything else as the
    text typed (the benefits app parses and checks it against the package's type)."""
    lowered = text.lower()
    if lowered in _YES:
        return True
    if lowered in _NO:
        return False
    return text


def _date_argument(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _application_error_text(error: ApplicationError) -> str:
    lines = [str(error.title) if isinstance(error, ValidationFailed) else str(error)]
    if isinstance(error, ValidationFailed):
        for field, errors in error.field_errors.items():
            lines.extend(f"  {field}: {item.message}" for item in errors)
    return "\n".join(lines)
