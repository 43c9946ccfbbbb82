"""``pilar rules``: scheme packages from the command line.

    pilar rules list                      # every package version, published or draft
    pilar rules check                     # load every package and its test files
    pilar rules test [package ...]        # run the test cases (every version)
    pilar rules publish imss_1973 1.0.0   # run its cases, then record its hash
    pilar rules explain --person CURP --package imss_1973 --benefit vejez --on 2026-11-22

``check`` and ``test`` print each problem as ``file:line: message`` and exit with status 1 when
there is one, so they can gate a commit or a CI job. ``publish`` refuses a package whose cases
fail, and refuses (``package_integrity``) to record a new hash for a version already published
with other files: a change to the law is a new version folder. ``--schemes-dir`` points every
action at another folder of packages (a package under development, or a copy in tests).

The command line speaks English like Pilar's other commands; the messages of the rules engine
and the packages' titles come in the language of ``--language`` (default English).
"""

from __future__ import annotations

import datetime
import json
from argparse import ArgumentParser, ArgumentTypeError
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, no_translations

from pilar.core.errors import ApplicationError, ValidationFailed
from pilar.rules import RulesError, available_packages, load_package, publish
from pilar.rules.loader import label_text
from pilar.rules.package import SCHEMES_DIR, read_register
from pilar.rules.testing import PackageReport, display_path, load_cases, run_packages


class Command(BaseCommand):
    help = "List, check, test and publish scheme rule packages."

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
            dest="action", required=True, metavar="{list,check,test,publish,explain}"
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
