"""``pilar token``: API tokens from the command line.

    pilar token create --user registrar --role registrar [--name "Nightly import"] [--days 30]
    pilar token list [--user registrar]
    pilar token revoke --prefix 3f9a0c1b2d4e

The token is printed once, at creation; only a hash is stored. Every issue and revocation is
audited as done by the command line.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from pilar.core.actor import Actor
from pilar.core.auth import token_issue, token_revoke
from pilar.core.errors import ValidationFailed
from pilar.core.models import ApiToken, User
from pilar.core.roles import Role

MAX_DAYS = 3650


def cli_actor() -> Actor:
    return Actor.system("cli", roles=frozenset({Role.ADMINISTRATOR.value}))


class Command(BaseCommand):
    help = "Create, list and revoke API tokens."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="{create,list,revoke}"
        )
        create = actions.add_parser("create", help="Create a token and print it once.")
        create.add_argument("--user", required=True, help="Username of the token's owner.")
        create.add_argument(
            "--role", required=True, help=f"One of the owner's roles: {', '.join(Role.values)}."
        )
        create.add_argument("--name", default="", help="What the token is for.")
        create.add_argument(
            "--days",
            type=int,
            default=None,
            help="Lifetime in days (default PILAR_API_TOKEN_DAYS).",
        )
        listing = actions.add_parser("list", help="List tokens (never their secrets).")
        listing.add_argument("--user", default=None, help="Only this user's tokens.")
        revoke = actions.add_parser("revoke", help="Revoke a token by its prefix.")
        revoke.add_argument("--prefix", required=True, help="The token's prefix (see list).")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            self._create(options)
        elif action == "list":
            self._list(options)
        else:
            self._revoke(options)

    @staticmethod
    def _user(username: str) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"Unknown user {username!r}.")
        return user

    def _create(self, options: dict[str, Any]) -> None:
        user = self._user(options["user"])
        role = options["role"]
        if role not in Role.values:
            raise CommandError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
        days = options["days"]
        if days is not None and not 1 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between 1 and {MAX_DAYS}.")
        if not user.is_active:
            raise CommandError(f"User {user.username!r} is inactive.")
        held = user.role_codes()
        if role not in held:
            raise CommandError(
                f"User {user.username!r} does not hold the role {role!r} "
                f"(holds: {', '.join(sorted(held)) or 'no roles'})."
            )
        name = options["name"] or f"{role} token for {user.username}"
        try:
            token, secret = token_issue(
                actor=cli_actor(), user=user, role=role, name=name, days=days
            )
        except ValidationFailed as error:
            messages = "; ".join(
                str(e.message) for errors in error.field_errors.values() for e in errors
            )
            raise CommandError(
                f"{messages} ({user.username!r} holds: "
                f"{', '.join(sorted(user.role_codes())) or 'no roles'})"
            ) from error
        self.stdout.write(secret)
        self.stderr.write(
            f"Token {token.prefix} for {user.username} as {role}, expires "
            f"{token.expires_at:%Y-%m-%d}. It is shown only now: store it safely. "
            f"Use it as 'Authorization: Bearer <token>'."
        )

    def _list(self, options: dict[str, Any]) -> None:
        tokens = ApiToken.objects.select_related("user").order_by("-created_at")
        if options["user"]:
            tokens = tokens.filter(user=self._user(options["user"]))
        now = timezone.now()
        rows = [("PREFIX", "USER", "ROLE", "STATUS", "EXPIRES", "LAST USED", "NAME")]
        for token in tokens:
            if token.revoked_at is not None:
                status = "revoked"
            elif token.expires_at <= now:
                status = "expired"
            else:
                status = "active"
            rows.append(
                (
                    token.prefix,
                    token.user.username,
                    token.role,
                    status,
                    f"{token.expires_at:%Y-%m-%d}",
                    f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never",
                    token.name,
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[-1]]))
        if len(rows) == 1:
            self.stdout.write("(no tokens)")

    def _revoke(self, options: dict[str, Any]) -> None:
        token = ApiToken.objects.select_related("user").filter(prefix=options["prefix"]).first()
        if token is None:
            raise CommandError(f"No token with prefix {options['prefix']!r}.")
        if token.revoked_at is not None:
            raise CommandError(
                f"Token {token.prefix} was already revoked on {token.revoked_at:%Y-%m-%d}."
            )
        token_revoke(actor=cli_actor(), token=token)
        self.stdout.write(f"Token {token.prefix} of {token.user.username} revoked.")
