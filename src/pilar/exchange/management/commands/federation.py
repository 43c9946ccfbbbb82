"""``pilar federation``: running a federation of nodes locally, and the node-level tools it uses.

    pilar federation demo [--base var/federation] [--reset] [--persons 2000] [--movers 5]
    pilar federation accounts                   # the demo accounts of `pilar demo` on this node
    pilar federation export-movers --count 5 --seed 7 --out movers.json
    pilar federation import-movers movers.json
    pilar federation enrol                      # enrol this node's persons in the hub's index
    pilar federation fetch-periods --curp X --purpose totalisation     # prints JSON
    pilar federation sign --to MX-IMSS --action search --purpose verification --message '{…}'
    pilar federation send --to MX-IMSS --action search --purpose verification --message '{…}'
    pilar federation deliver [--all]            # deliver the queued outgoing messages now
    pilar federation audit-round                # (auditor) check and cosign every member's log

``demo`` is what ``make demo-federation`` runs: four nodes under ``var/federation/`` (hub,
two institutes, auditor), each with its own SQLite database, keys and port (8100–8103), set up
through their own command lines (``pilar.exchange.federation``), started, and kept running in
the foreground until Ctrl+C. The other subcommands act on the node the environment configures
(``PILAR_NODE_CODE``, ``DATABASE_URL``, …) and print JSON where a script reads the answer.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from pilar.core.actor import Actor
from pilar.core.errors import ApplicationError
from pilar.core.roles import Role

DEMO_PORTS = (8100, 8101, 8102, 8103)


def _actor(role: Role) -> Actor:
    return Actor.system("federation-cli", roles=frozenset({role.value}))


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {key: _jsonable(item) for key, item in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "pk") and hasattr(value, "_meta"):
        return {"model": value._meta.label, "pk": value.pk}
    return str(value)


def _error_document(error: ApplicationError) -> dict[str, Any]:
    return {
        "error": error.code,
        "message": str(error.message),
        **{key: _jsonable(item) for key, item in (error.extra or {}).items()},
    }


def _message_json(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"--message is not JSON: {error}") from error
    if not isinstance(message, dict):
        raise CommandError("--message must be a JSON object.")
    return message


class Command(BaseCommand):
    help = "Run a local federation (demo) and the node-level tools it uses."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        demo = actions.add_parser("demo", help="Set up and run a four-node federation.")
        demo.add_argument(
            "--base",
            type=Path,
            default=None,
            help="Directory of the nodes (default var/federation).",
        )
        demo.add_argument("--reset", action="store_true", help="Delete the nodes and start anew.")
        demo.add_argument("--persons", type=int, default=2000, help="Persons seeded per institute.")
        demo.add_argument(
            "--movers", type=int, default=5, help="Persons who moved between the institutes."
        )
        demo.add_argument(
            "--no-serve",
            action="store_true",
            help="Set up and print what to try, then stop the nodes.",
        )

        actions.add_parser("accounts", help="Create or reset the demo accounts on this node.")

        node_init = actions.add_parser(
            "node-init",
            help="Migrate, create the first key and the demo accounts, seed; print the vkey.",
        )
        node_init.add_argument("--persons", type=int, default=0, help="Persons to seed (0: none).")
        node_init.add_argument("--seed", type=int, default=2026)

        hub_init = actions.add_parser(
            "hub-init",
            help="(hub) Run the pilar exchange member/agreement commands of a plan file, publish.",
        )
        hub_init.add_argument("plan", type=Path)

        join = actions.add_parser(
            "join", help="Fetch the hub's trust list; with --enrol also enrol the persons."
        )
        join.add_argument("--enrol", action="store_true")
        join.add_argument(
            "--trust-file",
            type=Path,
            default=None,
            help="Take the trust list from this file (offline) instead of fetching it.",
        )

        export = actions.add_parser(
            "export-movers",
            help="Register persons with their first working years here and write them to a file.",
        )
        export.add_argument("--count", type=int, default=5)
        export.add_argument("--seed", type=int, default=7)
        export.add_argument("--out", type=Path, required=True)

        imported = actions.add_parser(
            "import-movers",
            help="Register the persons of an export-movers file with their later working years.",
        )
        imported.add_argument("file", type=Path)

        actions.add_parser("enrol", help="Enrol this node's persons in the hub's index.")

        fetch = actions.add_parser(
            "fetch-periods", help="Fetch a person's insurance periods from the other members."
        )
        fetch.add_argument("--curp", required=True)
        fetch.add_argument("--purpose", required=True)

        for name, text in (
            ("sign", "Print a signed request envelope (not sent)."),
            ("send", "Send a request and print the answer."),
        ):
            sub = actions.add_parser(name, help=text)
            sub.add_argument("--to", required=True, help="The receiver's member code.")
            sub.add_argument("--action", dest="exchange_action", required=True)
            sub.add_argument("--purpose", required=True)
            sub.add_argument("--message", required=True, help="The message, a JSON object.")

        deliver = actions.add_parser("deliver", help="Deliver queued outgoing messages now.")
        deliver.add_argument(
            "--all",
            action="store_true",
            help="Every queued message, also those whose next attempt is later.",
        )
        actions.add_parser("audit-round", help="(auditor) Check and cosign the members' logs.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"].replace("-", "_")
        getattr(self, f"_{action}")(options)

    # --- node-level tools ------------------------------------------------------------------

    def _accounts(self, options: dict[str, Any]) -> None:
        from pilar.core.management.commands.demo import demo_accounts_ensure

        accounts = demo_accounts_ensure()
        self.stdout.write(f"{len(accounts)} demo account(s) ready.")

    def _node_init(self, options: dict[str, Any]) -> None:
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        call_command("exchange", "keys", "init", stdout=self.stderr)
        self._accounts(options)
        if options["persons"] > 0:
            call_command(
                "seed",
                persons=options["persons"],
                employers=max(10, options["persons"] // 30),
                seed=options["seed"],
                verbosity=0,
            )
        # Last line: the vkey, for the caller to register this node on the hub.
        call_command("exchange", "vkey", stdout=self.stdout)

    def _hub_init(self, options: dict[str, Any]) -> None:
        from django.core.management import call_command

        try:
            plan = json.loads(options["plan"].read_text(encoding="utf-8"))
            commands = [*plan["members"], *plan["agreements"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CommandError(f"{options['plan']}: not a hub plan ({error}).") from error
        # Through the hub's own command line (one process for all of them).
        for args in commands:
            call_command("exchange", *[str(arg) for arg in args], stdout=self.stdout)
        call_command("exchange", "trust", "publish", stdout=self.stdout)

    def _join(self, options: dict[str, Any]) -> None:
        from django.core.management import call_command

        if options["trust_file"] is not None:
            call_command(
                "exchange", "trust", "take", str(options["trust_file"]), stdout=self.stdout
            )
        else:
            call_command("exchange", "trust", "fetch", stdout=self.stdout)
        if options["enrol"]:
            self._enrol(options)

    def _export_movers(self, options: dict[str, Any]) -> None:
        from django.conf import settings

        from pilar.exchange.federation import movers_plan, movers_register

        if not 1 <= options["count"] <= 1000:
            raise CommandError("--count must be between 1 and 1000.")
        plan = movers_plan(options["count"], options["seed"])
        try:
            registered = movers_register(persons=plan, part="before", with_nss=False)
        except ApplicationError as error:
            raise CommandError(json.dumps(_error_document(error), ensure_ascii=False)) from error
        options["out"].parent.mkdir(parents=True, exist_ok=True)
        options["out"].write_text(
            json.dumps({"source": settings.PILAR_NODE_CODE, "persons": plan}, indent=2),
            encoding="utf-8",
        )
        self.stdout.write(
            f"{registered} person(s) registered with their first working years; "
            f"{len(plan)} written to {options['out']}."
        )

    def _import_movers(self, options: dict[str, Any]) -> None:
        from pilar.exchange.federation import movers_register

        try:
            data = json.loads(options["file"].read_text(encoding="utf-8"))
            persons = data["persons"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CommandError(
                f"{options['file']}: not an export-movers file ({error})."
            ) from error
        try:
            registered = movers_register(persons=persons, part="after", with_nss=True)
        except ApplicationError as error:
            raise CommandError(json.dumps(_error_document(error), ensure_ascii=False)) from error
        self.stdout.write(
            f"{registered} person(s) registered with their later working years "
            f"(moved from {data.get('source', '?')})."
        )

    def _enrol(self, options: dict[str, Any]) -> None:
        from pilar.exchange.client import persons_enrol

        try:
            count = persons_enrol(actor=_actor(Role.ADMINISTRATOR))
        except ApplicationError as error:
            raise CommandError(json.dumps(_error_document(error), ensure_ascii=False)) from error
        self.stdout.write(f"{count} person(s) sent to the hub's index.")

    def _fetch_periods(self, options: dict[str, Any]) -> None:
        from pilar.core.identifiers import CURP
        from pilar.exchange.client import person_periods_fetch
        from pilar.exchange.models import ForeignPeriods
        from pilar.registry.models import Identifier

        identifier = (
            Identifier.objects.filter(scheme=CURP, value=options["curp"].strip().upper())
            .select_related("person")
            .first()
        )
        if identifier is None:
            raise CommandError(f"No person with CURP {options['curp']!r} on this node.")
        person_id = identifier.person_id
        try:
            outcome = person_periods_fetch(
                actor=_actor(Role.BENEFITS_OFFICER),
                person_id=person_id,
                purpose=options["purpose"],
            )
        except ApplicationError as error:
            self.stdout.write(json.dumps(_error_document(error), ensure_ascii=False))
            raise CommandError(str(error.message)) from error
        documents = [
            {
                "member": row.member,
                "message_id": row.message.message_id,
                "purpose": row.purpose,
                "document": row.document,
            }
            for row in ForeignPeriods.objects.filter(
                person_id=person_id, superseded_at__isnull=True
            ).select_related("message")
        ]
        self.stdout.write(
            json.dumps(
                {"person_id": person_id, "outcome": _jsonable(outcome), "documents": documents},
                ensure_ascii=False,
            )
        )

    def _sign(self, options: dict[str, Any]) -> None:
        from django.conf import settings

        from pilar.exchange.envelope import build_request, sign
        from pilar.exchange.node import signing_key

        envelope = build_request(
            action=options["exchange_action"],
            sender_id=settings.PILAR_NODE_CODE,
            receiver_id=options["to"],
            purpose=options["purpose"],
            message=_message_json(options["message"]),
        )
        signed = sign(envelope, signing_key(), ttl=settings.PILAR_EXCHANGE_TTL_SECONDS)
        self.stdout.write(json.dumps(signed, ensure_ascii=False))

    def _send(self, options: dict[str, Any]) -> None:
        from pilar.exchange.messaging import send

        try:
            row = send(
                actor=_actor(Role.REGISTRAR),
                receiver=options["to"],
                action=options["exchange_action"],
                purpose=options["purpose"],
                message=_message_json(options["message"]),
            )
        except ApplicationError as error:
            self.stdout.write(json.dumps(_error_document(error), ensure_ascii=False))
            raise CommandError(str(error.message)) from error
        row.refresh_from_db()
        self.stdout.write(
            json.dumps(
                {
                    "message_id": row.message_id,
                    "status": row.status,
                    "reason_code": row.reason_code,
                    "reason_message": row.reason_message,
                    "response": row.response,
                },
                ensure_ascii=False,
            )
        )

    def _deliver(self, options: dict[str, Any]) -> None:
        from django.utils import timezone

        from pilar.exchange.models import Direction, ExchangeMessage, MessageStatus
        from pilar.exchange.tasks import deliver_due

        if options["all"]:
            # Make every queued message due now: an operator who knows the peer is back.
            ExchangeMessage.objects.filter(
                direction=Direction.OUT, status=MessageStatus.QUEUED
            ).update(next_attempt_at=timezone.now())
        outcome = deliver_due()
        queued = ExchangeMessage.objects.filter(
            direction=Direction.OUT, status=MessageStatus.QUEUED
        ).count()
        self.stdout.write(f"Delivered: {outcome!s}; still queued: {queued}.")

    def _audit_round(self, options: dict[str, Any]) -> None:
        from pilar.exchange.auditor import audit_round

        results = audit_round()
        self.stdout.write(json.dumps(_jsonable(results), ensure_ascii=False))

    # --- the demo ---------------------------------------------------------------------------

    def _demo(self, options: dict[str, Any]) -> None:
        from django.conf import settings

        from pilar.exchange.federation import (
            FederationInfo,
            PilarCommandFailed,
            demo_specs,
            remove_tree,
            setup_federation,
            write_env_files,
        )

        base = (options["base"] or Path(settings.VAR_DIR) / "federation").resolve()
        if options["reset"]:
            remove_tree(base)
        state = base / "federation.json"
        started = time.monotonic()
        info: FederationInfo | None = None
        try:
            if state.exists():
                info = FederationInfo.from_json(state.read_text(encoding="utf-8"))
                self.stdout.write(f"Federation already set up in {base}; starting its nodes …")
                for code in info.specs:
                    info.start(code)
            else:
                info = setup_federation(
                    demo_specs(base, ports=DEMO_PORTS),
                    persons=options["persons"],
                    movers=options["movers"],
                    progress=self.stdout.write,
                )
                state.write_text(info.to_json(), encoding="utf-8")
            write_env_files(info)
            self.stdout.write(self._banner(info, base, time.monotonic() - started))
            if not options["no_serve"]:
                self._wait(info)
        except PilarCommandFailed as error:
            raise CommandError(str(error)) from error
        finally:
            # Stopped before saying so: a closed output must not leave the nodes running.
            if info is not None:
                info.stop_all()

    def _wait(self, info: Any) -> None:
        """Stay in the foreground until Ctrl+C or SIGTERM, or until a node exits."""
        stopping = {"now": False}

        def stop(*_: Any) -> None:
            stopping["now"] = True

        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping["now"]:
                for code, process in info.processes.items():
                    if process.poll() is not None:
                        self.stderr.write(
                            f"{code} exited with status {process.returncode}; see "
                            f"{info.specs[code].log_path}"
                        )
                        return
                time.sleep(0.5)
        except KeyboardInterrupt:
            return

    @staticmethod
    def _banner(info: Any, base: Path, seconds: float) -> str:
        from pilar.core.management.commands.demo import (
            ROLE_SUMMARIES,
            SECOND_BENEFITS_OFFICER,
            demo_password,
        )
        from pilar.exchange.federation import DEMO_AGREEMENT_NAME

        source = info.specs.get(info.source)
        destination = info.specs.get(info.destination)
        lines = [
            "",
            "=" * 78,
            f"  Pilar federation ready in {seconds:.0f} s — nodes under {base}",
            "=" * 78,
            "",
        ]
        for spec in info.specs.values():
            lines.append(f"  {spec.code:<14} {spec.role:<10} {spec.url}   ({spec.name[:40]})")
        lines += ["", "  Accounts on every node (username / password):"]
        usernames = [*ROLE_SUMMARIES, SECOND_BENEFITS_OFFICER]
        width = max(len(name) for name in usernames)
        for username in usernames:
            lines.append(f"    {username:<{width}}  {demo_password(username)}")
        if info.movers and source and destination:
            lines += [
                "",
                f"  Persons who moved from {source.code} to {destination.code} (CURP, name):",
            ]
            for mover in info.movers:
                lines.append(
                    f"    {mover['curp']}  {mover['given_names']} {mover['paternal_surname']} "
                    f"{mover['maternal_surname']}"
                )
            first = info.movers[0]["curp"]
            lines += [
                "",
                "  Things to try:",
                f"    • Log in to {destination.url} as benefits_officer and search {first}.",
                "    • On the person's page, “Other institutions” asks the hub who else holds",
                "      records of this person (a purpose is required and logged at both ends).",
                "    • “Fetch insurance periods” with the purpose totalisation: the hub gathers",
                f"      the periods document of {source.code}, signed by it; it is kept here.",
                "    • Enter a claim imss_1973 / vejez with the totalisation agreement "
                f"{DEMO_AGREEMENT_NAME}",
                "      and adjudicate it: own weeks fall short of 500, the totalised ones do not;",
                "      the decision explains the theoretical and the pro-rata amount.",
                "    • The exchange monitor at /exchange/: messages, signatures, log proofs.",
            ]
            if _auditor(info):
                auditor_url = info.specs[_auditor(info)].url
                lines.append(
                    f"    • The auditor's view (log in as auditor): {auditor_url}/exchange/auditor/"
                )
            lines.append("    • Verify a node's transparency log and archive:")
            for code in (destination.code, source.code, info.hub_code):
                lines.append(
                    f"        (. {info.specs[code].var_dir / 'env.sh'} && .venv/bin/pilar audit "
                    "verify)"
                )
            lines += [
                "    • Fetch the periods from the command line, as the node:",
                f"        (. {destination.var_dir / 'env.sh'} && .venv/bin/pilar federation "
                f"fetch-periods --curp {first} --purpose totalisation)",
            ]
        lines += ["", "  Ctrl+C stops the four nodes.", "=" * 78, ""]
        return "\n".join(lines)


def _auditor(info: Any) -> str:
    for code, spec in info.specs.items():
        if spec.role == "auditor":
            return str(code)
    return ""
