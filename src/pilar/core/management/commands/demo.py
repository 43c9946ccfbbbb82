"""``pilar demo``: a ready-to-try Pilar node in one command (what ``make demo`` runs).

Migrates the database, creates two offices and one demo account per role, seeds a synthetic
population if the registry is empty, prints how to log in and what to try, then serves.
Re-running it is safe: accounts get their demo password back and are unlocked; the population
is seeded only once.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.models import Office, RoleAssignment, User
from pilar.core.roles import Role

DEMO_SEED = 2026
DEMO_EMPLOYERS = 300
CENTRAL_OFFICE = ("CDMX-01", "Oficina central — Ciudad de México", "DF")
REGIONAL_OFFICE = ("JAL-01", "Oficina regional — Guadalajara, Jalisco", "JC")
# Front-line roles work in the regional office and see Jalisco's persons only; the others have
# national scope (PILAR_NATIONAL_SCOPE_ROLES) and sit in the central office.
REGIONAL_ROLES = frozenset({Role.REGISTRAR, Role.CASE_WORKER, Role.BENEFITS_OFFICER})

ROLE_SUMMARIES: dict[str, str] = {
    Role.REGISTRAR: "registers persons and employers and keeps their data current (Jalisco)",
    Role.BENEFITS_OFFICER: (
        "enters and adjudicates claims; approves another officer's decisions (Jalisco)"
    ),
    Role.CASE_WORKER: "reads the registry, corrects family ties for appeals (Jalisco)",
    Role.DATA_STEWARD: "corrects master data nationwide, sees who read what",
    Role.AUDITOR: "reads everything incl. the audit trail and access log; changes nothing",
    Role.ANALYST: "statistics and employers only; no individual person records",
    Role.ADMINISTRATOR: "manages accounts and API tokens; cannot edit person records",
    Role.COLLECTIONS_OFFICER: "declarations, employer accounts, payments, arrears, non-filers",
}


SECOND_BENEFITS_OFFICER = "benefits_checker"


def demo_password(username: str) -> str:
    return f"demo-{username}-2026"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str
    office: str


def demo_accounts_ensure() -> list[DemoAccount]:
    """Create or reset the demo offices and accounts (one per role), in one transaction with
    one audit event."""
    accounts: list[DemoAccount] = []
    with transaction.atomic():
        offices: dict[str, Office] = {}
        for code, name, region in (CENTRAL_OFFICE, REGIONAL_OFFICE):
            office, _created = Office.objects.update_or_create(
                code=code, defaults={"name": name, "region": region}
            )
            offices[code] = office
        # Maker–checker needs two benefits officers: the second approves the first's decisions.
        logins = [(role, role.value) for role in Role]
        logins.append((Role.BENEFITS_OFFICER, SECOND_BENEFITS_OFFICER))
        for role, username in logins:
            office = offices[REGIONAL_OFFICE[0] if role in REGIONAL_ROLES else CENTRAL_OFFICE[0]]
            user = User.objects.filter(username=username).first() or User(username=username)
            user.first_name = "Demo"
            user.last_name = str(role.label)
            user.email = f"{username}@demo.pilar.invalid"
            user.office = office
            user.is_active = True
            user.failed_login_count = 0
            user.locked_until = None
            user.set_password(demo_password(username))
            user.save()
            # A demo account holds exactly its role, whatever was changed since the last run.
            RoleAssignment.objects.filter(user=user).exclude(role=role.value).delete()
            RoleAssignment.objects.get_or_create(user=user, role=role.value)
            accounts.append(
                DemoAccount(user.username, demo_password(username), role.value, office.code)
            )
        audit_record(
            actor=Actor.system("demo", roles=frozenset({Role.ADMINISTRATOR.value})),
            action="demo.accounts_reset",
            entity_type="user",
            entity_id="demo",
            changes={"accounts": [[None, account.username] for account in accounts]},
            note="Demo offices and accounts created or reset by pilar demo",
        )
    return accounts


class Command(BaseCommand):
    help = "Set up a demo node (migrate, accounts, synthetic data) and serve it."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--persons",
            type=int,
            default=10_000,
            help="Persons to seed when the registry is empty (default 10000).",
        )
        parser.add_argument(
            "--no-serve", action="store_true", help="Set up and print the banner, but do not serve."
        )
        parser.add_argument("--host", default="127.0.0.1", help="Address to serve on.")
        parser.add_argument("--port", type=int, default=8000, help="Port to serve on.")

    def handle(self, *args: Any, **options: Any) -> None:
        from pilar.registry.models import Person
        from pilar.registry.seeding import SeedArgumentError, SeedOptions, seed_run

        if options["persons"] <= 0:
            raise CommandError("--persons must be a positive number.")
        started = time.monotonic()
        self.stdout.write("Preparing the database …")
        call_command("migrate", interactive=False, verbosity=0)
        accounts = demo_accounts_ensure()
        if Person.objects.exists():
            self.stdout.write("The registry already holds persons; not seeding again.")
        else:
            self.stdout.write(f"Seeding {options['persons']:,} synthetic persons …")
            try:
                summary = seed_run(
                    SeedOptions(
                        persons=options["persons"],
                        employers=DEMO_EMPLOYERS,
                        seed=DEMO_SEED,
                        duplicates_share=Fraction(3, 100),
                        as_of=timezone.localdate(),
                    )
                )
            except SeedArgumentError as error:
                raise CommandError(str(error)) from error
            self.stdout.write(
                f"Seeded {summary.counts['person']:,} persons and "
                f"{summary.counts['employer']:,} employers "
                f"in {summary.seconds:.1f} s."
            )
        from pilar.contributions.demo import DEMO_EMPLOYER_PASSWORD, demo_contributions

        self.stdout.write("Posting contribution declarations through the pipeline …")
        contributions = demo_contributions()
        self.stdout.write(
            f"Posted {contributions.declarations} declaration(s), "
            f"{contributions.records:,} contribution records."
        )
        from pilar.benefits.demo import demo_benefits

        self.stdout.write("Deciding demo pension claims through the rules engine …")
        benefits = demo_benefits(
            maker=User.objects.get(username=Role.BENEFITS_OFFICER.value),
            checker=User.objects.get(username=SECOND_BENEFITS_OFFICER),
            region=REGIONAL_OFFICE[2],
        )
        self.stdout.write(
            f"Entered {benefits.claims} claim(s): {benefits.awards} award(s), "
            f"{benefits.denied} denial(s), {benefits.pending} awaiting a second officer."
        )
        from pilar.linkage.demo import demo_linkage

        self.stdout.write("Training a record-linkage model and deduplicating the registry …")
        linkage = demo_linkage(steward=User.objects.get(username=Role.DATA_STEWARD.value))
        self.stdout.write(
            f"Linkage model {linkage.model or '—'}: {linkage.auto_linked} pair(s) linked "
            f"automatically, {linkage.for_review} awaiting review ({linkage.seconds:.0f} s)."
            + (f" Skipped: {'; '.join(linkage.skipped)}" if linkage.skipped else "")
        )
        portal_lines: list[str] = []
        if contributions.portal_employer is not None:
            employer = contributions.portal_employer
            portal_lines = [
                "",
                f"  Employer portal: http://{options['host']}:{options['port']}/portal/",
                f"    RFC {employer.rfc}  password {DEMO_EMPLOYER_PASSWORD}",
                f"    ({employer.legal_name})",
                f"    Upload {contributions.file_with_errors} to read a validation report,",
                f"    then {contributions.ready_file} to confirm and post it.",
            ]
        portal_lines += [
            "",
            f"  Record linkage (log in as data_steward): http://{options['host']}:"
            f"{options['port']}/linkage/runs/",
            "    Review the pairs the deduplication found, merge one, then unmerge it.",
            "    Models: m/u per comparison, thresholds, export at /linkage/models/.",
            f"    Link a list: upload {linkage.list_file or 'a CSV'} at /linkage/runs/link/.",
            "    Cross-programme check: PENSION_BIENESTAR × IMSS_LEY73 at /linkage/cross/.",
        ]
        self.stdout.write(
            self._banner(
                accounts,
                host=options["host"],
                port=options["port"],
                seconds=time.monotonic() - started,
                extra=portal_lines,
            )
        )
        if not options["no_serve"]:
            call_command("serve", host=options["host"], port=options["port"])

    @staticmethod
    def _banner(
        accounts: list[DemoAccount],
        *,
        host: str,
        port: int,
        seconds: float,
        extra: list[str] | None = None,
    ) -> str:
        url = f"http://{host}:{port}"
        width = max(len(account.username) for account in accounts)
        lines = [
            "",
            "=" * 78,
            f"  Pilar demo ready in {seconds:.0f} s — open {url}",
            "=" * 78,
            "",
            "  Accounts (username / password — what the role can do):",
        ]
        for account in accounts:
            lines.append(f"    {account.username:<{width}}  {account.password}  ({account.office})")
            lines.append(f"      {ROLE_SUMMARIES.get(account.role, '')}")
        lines += extra or []
        lines += [
            "",
            "  Things to try:",
            '    • Log in as registrar and search for "garcia" (accents and case do not matter).',
            "    • Open a person: identifiers, family, employment history, who has looked at it.",
            "    • Register a person with an invalid CURP and read the error.",
            "    • Export the record from the person page (a purpose is required and logged).",
            "    • Log in as auditor: the audit trail at /audit/, the access log at /access-log/.",
            "    • Log in as analyst: counts at /statistics/, but no person records.",
            "    • Log in as administrator: staff accounts and roles at /staff/.",
            "    • Log in as collections_officer: declarations at /declarations/, employer",
            "      accounts, payments and bank files, arrears and non-filers at /accounts/.",
            "    • A person's page shows the work history and weeks of contribution.",
            f"    • API documentation at {url}/api/docs",
            "    • An API token: .venv/bin/pilar token create --user registrar --role registrar",
            "",
            "  Data is synthetic (seed 2026); duplicates and their ground truth are in var/seed/.",
            "=" * 78,
            "",
        ]
        return "\n".join(lines)
