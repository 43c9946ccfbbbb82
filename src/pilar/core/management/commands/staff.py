"""``pilar staff``: staff accounts from the command line.

    pilar staff create --username ana.perez --office JAL-01 --role registrar [--role auditor]
                       [--first-name Ana] [--last-name Pérez] [--email ana@example.org]
                       [--password-stdin]
    pilar staff roles --username ana.perez --role registrar [--role auditor]
    pilar staff unlock --username ana.perez
    pilar staff deactivate --username ana.perez --reason "Left the institution"
    pilar staff reactivate --username ana.perez
    pilar staff password --username ana.perez [--password-stdin]
    pilar staff list [--office JAL-01] [--role registrar] [--inactive]

Without ``--password-stdin`` a strong password is generated and printed once, alone on standard
output (so a script can capture it); everything else goes to standard error. The command acts
as the system with the administrator role, so it is also the way back in when no administrator
can sign in. Every change goes through the same services as the web UI and is audited as done
by the command line.
"""

from __future__ import annotations

import secrets
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError, no_translations

from pilar.core import selectors, services
from pilar.core.actor import Actor
from pilar.core.errors import ApplicationError, ValidationFailed
from pilar.core.models import User
from pilar.core.roles import Role

# 18 random bytes: 24 URL-safe characters, 144 bits; far beyond the validators' minimum.
GENERATED_PASSWORD_BYTES = 18


def cli_actor() -> Actor:
    return Actor.system("cli", roles=frozenset({Role.ADMINISTRATOR.value}))


def error_text(error: ApplicationError) -> str:
    """A domain error as one line: every field error with its field, or the message."""
    if isinstance(error, ValidationFailed):
        return "; ".join(
            f"{name}: {field_error.message}"
            for name, field_errors in error.field_errors.items()
            for field_error in field_errors
        )
    return str(error.message)


class Command(BaseCommand):
    help = "Create staff accounts, change their roles, unlock, deactivate, list."
    # Tests hand the password over through this instead of the process's standard input.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(
            dest="action",
            required=True,
            metavar="{create,roles,unlock,deactivate,reactivate,password,list}",
        )
        role_help = f"A role to hold (repeat for several): {', '.join(Role.values)}."

        create = actions.add_parser("create", help="Create an account.")
        create.add_argument("--username", required=True)
        create.add_argument("--office", required=True, help="The office's code, e.g. JAL-01.")
        create.add_argument("--role", action="append", required=True, help=role_help)
        create.add_argument("--first-name", default="")
        create.add_argument("--last-name", default="")
        create.add_argument("--email", default="")
        create.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from the first line of standard input; "
            "otherwise one is generated and printed once.",
        )

        roles = actions.add_parser("roles", help="Set exactly these roles.")
        roles.add_argument("--username", required=True)
        roles.add_argument("--role", action="append", required=True, help=role_help)

        unlock = actions.add_parser("unlock", help="End a lockout after failed sign-ins.")
        unlock.add_argument("--username", required=True)

        deactivate = actions.add_parser(
            "deactivate", help="Disable sign-in and revoke every API token of the account."
        )
        deactivate.add_argument("--username", required=True)
        deactivate.add_argument("--reason", required=True, help="Recorded in the audit trail.")

        reactivate = actions.add_parser("reactivate", help="Enable a deactivated account.")
        reactivate.add_argument("--username", required=True)

        password = actions.add_parser("password", help="Set a new password.")
        password.add_argument("--username", required=True)
        password.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from standard input; otherwise one is generated.",
        )

        listing = actions.add_parser("list", help="List accounts.")
        listing.add_argument("--office", default="", help="Only this office's staff.")
        listing.add_argument("--role", default="", help="Only holders of this role.")
        listing.add_argument(
            "--inactive", action="store_true", help="Deactivated accounts instead of active ones."
        )

    # Messages are English like the rest of the command line, whatever LANGUAGE_CODE says.
    @no_translations
    def handle(self, *args: Any, **options: Any) -> None:
        handlers = {
            "create": self._create,
            "roles": self._roles,
            "unlock": self._unlock,
            "deactivate": self._deactivate,
            "reactivate": self._reactivate,
            "password": self._set_password,
            "list": self._list,
        }
        try:
            handlers[options["action"]](options)
        except ApplicationError as error:
            raise CommandError(error_text(error)) from error

    @staticmethod
    def _user_id(username: str) -> int:
        user_id = User.objects.filter(username=username).values_list("pk", flat=True).first()
        if user_id is None:
            raise CommandError(f"Unknown user {username!r}.")
        return user_id

    def _password(self, options: dict[str, Any]) -> tuple[str, bool]:
        """The password to set, and whether it was generated (and must then be printed)."""
        if not options["password_stdin"]:
            return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES), True
        stream = options.get("stdin") or sys.stdin
        password = stream.readline().rstrip("\r\n")
        if not password:
            raise CommandError("No password on standard input.")
        return password, False

    def _create(self, options: dict[str, Any]) -> None:
        password, generated = self._password(options)
        user = services.staff_create(
            actor=cli_actor(),
            username=options["username"],
            first_name=options["first_name"],
            last_name=options["last_name"],
            email=options["email"],
            office_code=options["office"],
            roles=options["role"],
            password=password,
        )
        office = user.office.code if user.office else "-"
        summary = (
            f"Created {user.username} in {office} "
            f"with roles {', '.join(sorted(user.role_codes()))}."
        )
        self._report(summary, password if generated else None)

    def _roles(self, options: dict[str, Any]) -> None:
        user = services.staff_set_roles(
            actor=cli_actor(), user_id=self._user_id(options["username"]), roles=options["role"]
        )
        user.refresh_from_db()
        held = ", ".join(sorted(user.role_codes())) or "no roles"
        self.stdout.write(f"{user.username} now holds: {held}.")

    def _unlock(self, options: dict[str, Any]) -> None:
        user = services.staff_unlock(actor=cli_actor(), user_id=self._user_id(options["username"]))
        self.stdout.write(f"{user.username} unlocked.")

    def _deactivate(self, options: dict[str, Any]) -> None:
        user = services.staff_deactivate(
            actor=cli_actor(),
            user_id=self._user_id(options["username"]),
            reason=options["reason"],
        )
        self.stdout.write(f"{user.username} deactivated; its API tokens are revoked.")

    def _reactivate(self, options: dict[str, Any]) -> None:
        user = services.staff_reactivate(
            actor=cli_actor(), user_id=self._user_id(options["username"])
        )
        self.stdout.write(f"{user.username} reactivated. Its old API tokens stay revoked.")

    def _set_password(self, options: dict[str, Any]) -> None:
        password, generated = self._password(options)
        user = services.staff_set_password(
            actor=cli_actor(), user_id=self._user_id(options["username"]), password=password
        )
        self._report(f"New password set for {user.username}.", password if generated else None)

    def _report(self, summary: str, generated_password: str | None) -> None:
        if generated_password is None:
            self.stdout.write(summary)
            return
        self.stdout.write(generated_password)
        self.stderr.write(f"{summary} The password above is shown only now: hand it over safely.")

    def _list(self, options: dict[str, Any]) -> None:
        rows = [("USERNAME", "OFFICE", "STATUS", "LAST SIGN-IN", "ROLES", "NAME")]
        page_number = 1
        while True:
            page = selectors.staff_list(
                actor=cli_actor(),
                office=options["office"],
                role=options["role"],
                active=not options["inactive"],
                page=page_number,
                page_size=100,
            )
            for user in page.items:
                status = "active" if user.is_active else "inactive"
                if user.is_locked():
                    status += ", locked"
                rows.append(
                    (
                        user.username,
                        user.office.code if user.office else "-",
                        status,
                        f"{user.last_login:%Y-%m-%d %H:%M}" if user.last_login else "never",
                        ",".join(a.role for a in user.role_assignments.all()) or "-",
                        user.get_full_name(),
                    )
                )
            if not page.has_next:
                break
            page_number += 1
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[-1]]).rstrip())
        if len(rows) == 1:
            self.stdout.write("(no accounts)")
