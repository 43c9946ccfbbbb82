"""``pilar exchange``: this node's keys, the trust list, and (on the hub) members and agreements.

    pilar exchange keys init                 # create this node's first key (idempotent)
    pilar exchange keys rotate [--no-announce]
    pilar exchange keys retire KEY_ID        # stop accepting a retiring key of this node
    pilar exchange keys show
    pilar exchange vkey                      # this node's active public key as a C2SP vkey
    pilar exchange trust publish             # hub: sign and keep the next trust list
    pilar exchange trust fetch               # member: GET the hub's list and take it
    pilar exchange trust take FILE           # member: take a list from a file (offline)
    pilar exchange trust show [--json]
    pilar exchange member add --code MX-IMSS --name "…" --role institute \\
        --endpoint http://127.0.0.1:8101 --services person-search,insurance-periods \\
        --vkey 'MX-IMSS+1a2b3c4d+AT…' [--vkey …] [--country MX]        # hub
    pilar exchange agreement add --code AG-0001 --consumer MX-IMSS --provider '*' \\
        --service insurance-periods --purposes totalisation --fields period.from,period.to \\
        --valid-from 2026-01-01 [--valid-until …] [--legal-basis …] [--draft]   # hub

Everything runs through the services, as the system actor ``pilar exchange`` with the
administrator's role, audited. Bad input prints the reason, exits with status 1 and writes
nothing. The command line speaks English like Pilar's other commands; ``--language es`` gives
the messages in Spanish (put it before the area: ``pilar exchange --language es keys show``).
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from pilar.core.errors import ApplicationError, ValidationFailed
from pilar.exchange import node, services_trust
from pilar.exchange.keys import VerifyKey
from pilar.exchange.models import Member, NodeKey
from pilar.exchange.reasons import Refusal

ACTOR = node.SYSTEM_ACTOR


def _error_text(error: ApplicationError) -> str:
    lines = [str(error.title) if isinstance(error, ValidationFailed) else str(error.message)]
    if isinstance(error, ValidationFailed):
        for field, problems in error.field_errors.items():
            lines.extend(f"  {field}: {problem.message}" for problem in problems)
    detail = error.extra.get("detail") or error.extra.get("reason")
    if detail:
        lines.append(f"  {detail}")
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Keys, trust list, members and agreements of the federation."

    def add_arguments(self, parser: ArgumentParser) -> None:
        assert isinstance(parser, CommandParser)
        parser.add_argument(
            "--language", choices=("en", "es"), default="en", help="Language of the messages."
        )
        area = parser.add_subparsers(dest="area", required=True, parser_class=CommandParser)

        keys = area.add_parser("keys", help="This node's signing keys.")
        keys_action = keys.add_subparsers(dest="action", required=True, parser_class=CommandParser)
        keys_action.add_parser("init", help="Create the first key if there is none.")
        rotate = keys_action.add_parser("rotate", help="New active key; the old one retires.")
        rotate.add_argument(
            "--no-announce", action="store_true", help="Do not send key-announce to the hub."
        )
        retire = keys_action.add_parser("retire", help="Stop accepting a retiring key.")
        retire.add_argument("key_id")
        keys_action.add_parser("show", help="List this node's keys.")

        area.add_parser("vkey", help="Print this node's active public key (C2SP vkey).")

        trust = area.add_parser("trust", help="The trust list.")
        trust_action = trust.add_subparsers(
            dest="action", required=True, parser_class=CommandParser
        )
        trust_action.add_parser("publish", help="Hub: sign and keep the next trust list.")
        trust_action.add_parser("fetch", help="Fetch the hub's newest list and take it.")
        take = trust_action.add_parser("take", help="Take a signed trust list from a file.")
        take.add_argument("file")
        show = trust_action.add_parser("show", help="Show the current trust list.")
        show.add_argument("--json", action="store_true", help="Print the signed document.")

        member = area.add_parser("member", help="Hub: the federation's members.")
        member_action = member.add_subparsers(
            dest="action", required=True, parser_class=CommandParser
        )
        add = member_action.add_parser("add", help="Register a member with its keys.")
        add.add_argument("--code", required=True)
        add.add_argument("--name", required=True)
        add.add_argument("--role", required=True, choices=["institute", "hub", "auditor"])
        add.add_argument("--endpoint", required=True)
        add.add_argument("--services", default="", help="Comma-separated service codes.")
        add.add_argument("--vkey", action="append", default=[], required=True)
        add.add_argument("--country", default="MX")
        member_action.add_parser("list", help="List the members.")

        agreement = area.add_parser("agreement", help="Hub: agreements.")
        agreement_action = agreement.add_subparsers(
            dest="action", required=True, parser_class=CommandParser
        )
        agree = agreement_action.add_parser("add", help="Create an agreement.")
        agree.add_argument("--code", required=True)
        agree.add_argument("--consumer", required=True)
        agree.add_argument("--provider", default="*")
        agree.add_argument("--service", required=True)
        agree.add_argument("--purposes", required=True, help="Comma-separated purpose codes.")
        agree.add_argument("--fields", default="", help="Comma-separated field names.")
        agree.add_argument("--valid-from", required=True)
        agree.add_argument("--valid-until", default=None)
        agree.add_argument("--legal-basis", default="")
        agree.add_argument("--draft", action="store_true", help="Create it as a draft.")

    def handle(self, *args: Any, **options: Any) -> None:
        area, action = options["area"], options.get("action")
        try:
            with translation.override(options["language"]):
                getattr(self, f"_{area}_{action}" if action else f"_{area}")(options)
        except ApplicationError as error:
            with translation.override(options["language"]):
                raise CommandError(_error_text(error)) from error
        except Refusal as refusal:
            message = refusal.message(options["language"])
            raise CommandError(f"{refusal.code}: {message}") from refusal

    # --- keys ---------------------------------------------------------------------------------

    def _keys_init(self, options: dict[str, Any]) -> None:
        before = NodeKey.objects.exists()
        row = node.node_keys_init(actor=ACTOR)
        verb = "exists" if before else "created"
        self.stdout.write(f"Key {row.key_id} {verb}: {node.signing_key().vkey}")

    def _keys_rotate(self, options: dict[str, Any]) -> None:
        row = node.node_key_rotate(actor=ACTOR, announce=not options["no_announce"])
        self.stdout.write(f"Key {row.key_id} is now active; the previous key is retiring.")

    def _keys_retire(self, options: dict[str, Any]) -> None:
        row = node.node_key_retire(actor=ACTOR, key_id=options["key_id"])
        self.stdout.write(f"Key {row.key_id} is retired.")

    def _keys_show(self, options: dict[str, Any]) -> None:
        rows = list(NodeKey.objects.order_by("-created_at"))
        if not rows:
            raise CommandError("This node has no key yet: run `pilar exchange keys init`.")
        code = node.this_node().code
        for row in rows:
            vkey = VerifyKey.from_public_b64(code, row.public_key).vkey
            retired = f" retired {row.retired_at:%Y-%m-%d %H:%M}" if row.retired_at else ""
            self.stdout.write(
                f"{row.key_id}  {row.status:<8}  created {row.created_at:%Y-%m-%d %H:%M}"
                f"{retired}  {vkey}"
            )

    def _vkey(self, options: dict[str, Any]) -> None:
        self.stdout.write(node.signing_key().vkey)

    # --- trust list ---------------------------------------------------------------------------

    def _trust_publish(self, options: dict[str, Any]) -> None:
        version = services_trust.trust_list_publish(actor=ACTOR)
        self.stdout.write(
            f"Trust list {version.serial} published (key {version.key_id}, "
            f"next update {version.next_update:%Y-%m-%d %H:%M} UTC)."
        )

    def _trust_fetch(self, options: dict[str, Any]) -> None:
        version = services_trust.trust_list_fetch(actor=ACTOR)
        self.stdout.write(f"Trust list {version.serial} from {version.hub} is current.")

    def _trust_take(self, options: dict[str, Any]) -> None:
        path = Path(options["file"])
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.") from error
        except ValueError as error:
            raise CommandError(f"{path} is not JSON: {error}.") from error
        version = services_trust.trust_list_take(actor=ACTOR, document=document)
        self.stdout.write(f"Trust list {version.serial} from {version.hub} is current.")

    def _trust_show(self, options: dict[str, Any]) -> None:
        version = services_trust.trust_list_current()
        if version is None:
            raise CommandError("This node has no trust list yet.")
        if options["json"]:
            self.stdout.write(json.dumps(version.document, indent=2, ensure_ascii=False))
            return
        self.stdout.write(
            f"Trust list {version.serial} from {version.hub}, issued "
            f"{version.issued_at:%Y-%m-%d %H:%M}, next update "
            f"{version.next_update:%Y-%m-%d %H:%M} UTC, signed with key {version.key_id}."
        )
        self._members_list(options)

    # --- members and agreements (hub) ---------------------------------------------------------

    def _member_add(self, options: dict[str, Any]) -> None:
        member = services_trust.member_register(
            actor=ACTOR,
            code=options["code"],
            name=options["name"],
            role=options["role"],
            endpoint=options["endpoint"],
            services=options["services"],
            vkeys=options["vkey"],
            country=options["country"],
        )
        self.stdout.write(f"Member {member.code} registered; publish the trust list to share it.")

    def _member_list(self, options: dict[str, Any]) -> None:
        self._members_list(options)

    def _members_list(self, options: dict[str, Any]) -> None:
        for member in Member.objects.prefetch_related("keys").order_by("code"):
            keys = ", ".join(key.key_id for key in member.keys.all())
            state = "" if member.active else " (inactive)"
            self.stdout.write(
                f"{member.code:<16} {member.role:<9} {member.endpoint}  "
                f"[{', '.join(member.services)}]  keys: {keys}{state}"
            )

    def _agreement_add(self, options: dict[str, Any]) -> None:
        from pilar.exchange.services_agreements import agreement_create

        agreement = agreement_create(
            actor=ACTOR,
            code=options["code"],
            consumer=options["consumer"],
            provider=options["provider"],
            service=options["service"],
            purposes=options["purposes"],
            fields=options["fields"],
            valid_from=options["valid_from"],
            valid_until=options["valid_until"],
            legal_basis=options["legal_basis"],
            status="draft" if options["draft"] else "active",
        )
        self.stdout.write(
            f"Agreement {agreement.code} created ({agreement.status}); publish the trust list "
            "to share it."
        )
