"""The federation with real processes: four Pilar nodes (hub, two institutes, auditor), each
with its own database, talking over loopback HTTP (docs/federation.md).

The scenarios of the issue: a person who moved from institute A (MX-ISSSTECALI) to B (MX-IMSS)
claims a pension at B, which fetches A's periods through the hub and decides a totalised
award; tampering with a stored log entry is named by ``pilar audit verify``; a replayed message
is refused; a member without the agreement is refused; the hub stopped mid-exchange is a clear
error, the message is retried and nothing is lost. The auditor cosigns the institutes' logs.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from functools import partial
from typing import Any

import httpx
import pytest

from pilar.exchange.federation import DEMO_AGREEMENT_NAME, FederationInfo

from .conftest import (
    AUDITOR,
    DESTINATION,
    HUB,
    SOURCE,
    NodeDatabase,
    log_integrated,
    wait_for,
)

pytestmark = pytest.mark.multinode

TIMEOUT = 30


def _json_line(text: str) -> dict[str, Any]:
    """The last line of a command's output that is a JSON object."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON in the output:\n{text}")


def _search_message(curp: str) -> dict[str, Any]:
    return {
        "transaction_id": "T-1",
        "search_request": [
            {
                "reference_id": "R-1",
                "timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "search_criteria": {
                    "query_type": "idtype-value",
                    "query": {"type": "CURP", "value": curp},
                    "fields": ["curp", "given_names", "birth_date"],
                },
            }
        ],
    }


def _signed(federation: FederationInfo, sender: str, receiver: str, **kwargs: Any) -> dict:
    """A request envelope signed by ``sender``'s own key, through its command line."""
    result = federation.run(
        sender,
        "federation",
        "sign",
        "--to",
        receiver,
        "--action",
        kwargs.get("action", "search"),
        "--purpose",
        kwargs.get("purpose", "verification"),
        "--message",
        json.dumps(kwargs["message"]),
    )
    return _json_line(result.stdout)


def _post(federation: FederationInfo, receiver: str, envelope: dict) -> httpx.Response:
    action = envelope["header"]["action"]
    return httpx.post(
        f"{federation.specs[receiver].url}/exchange/v1/sync/{action}",
        content=json.dumps(envelope).encode(),
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )


def _career_weeks(career: dict[str, Any]) -> int:
    from pilar.contributions import weeks as weeks_rules

    start = datetime.date.fromisoformat(career["start"])
    end = datetime.date.fromisoformat(career["end"])
    return weeks_rules.weeks((end - start).days + 1)


def _token(federation: FederationInfo, code: str, user: str) -> str:
    result = federation.run(code, "token", "create", "--user", user, "--role", user)
    return result.stdout.strip().splitlines()[-1]


def _expected_award(
    federation: FederationInfo, decision: dict[str, Any], own_weeks: int, foreign: dict
) -> Decimal:
    """``totalise`` run here, directly: B's own weeks from the person's career at B, A's from
    the document A signed, and the person's other inputs as the decision recorded them."""
    from pilar.benefits.inputs import engine_value, input_specs
    from pilar.benefits.totalisation import agreement_files, statement_quantity
    from pilar.rules import load_package
    from pilar.rules.totalisation import (
        PackageScheme,
        Periods,
        load_agreement,
        schemes_from_agreement,
        totalise,
    )

    agreement = load_agreement(path=agreement_files()[DEMO_AGREEMENT_NAME])
    own = next(i for i in agreement.institutions.values() if i.member == DESTINATION)
    other = next(i for i in agreement.institutions.values() if i.member == SOURCE)
    package = load_package(decision["package"]["name"])
    assert own.scheme is not None
    settings = own.scheme.settings
    specs = input_specs(package)
    inputs = {
        name: engine_value(specs[name].type, item["value"])
        for name, item in decision["inputs"].items()
        if name in specs and name != settings["periods_input"]
    }
    scheme = PackageScheme(
        package,  # type: ignore[arg-type]  # what benefits.totalisation passes too
        benefit="vejez",
        periods_input=settings["periods_input"],
        inputs=inputs,
        required_periods=settings["required_periods"],
        maximum_period=settings["maximum_period"],
        unit=own.unit,
    )
    result = totalise(
        agreement,
        {
            own.id: Periods(Decimal(own_weeks), own.unit),
            other.id: Periods(statement_quantity(foreign["totals"], other.unit), other.unit),
        },
        {**schemes_from_agreement(agreement, institutions=[other.id]), own.id: scheme},
        on=datetime.date.fromisoformat(decision["evaluation_date"]),
    )
    return result[own.id].award


def test_a_mover_claims_a_totalised_pension_with_the_periods_of_the_other_institute(
    federation: FederationInfo, node_db: Any
) -> None:
    mover = federation.movers[0]
    fetched = federation.run(
        DESTINATION,
        "federation",
        "fetch-periods",
        "--curp",
        mover["curp"],
        "--purpose",
        "totalisation",
    )
    answer = _json_line(fetched.stdout)
    documents = [item for item in answer["documents"] if item["member"] == SOURCE]
    assert len(documents) == 1, answer
    document = documents[0]["document"]
    assert document["type"] == "P5000"
    assert document["institution"]["code"] == SOURCE
    # A's document states exactly the weeks the person worked at A (and nothing of B's).
    weeks_at_source = _career_weeks(mover["before"])
    assert int(document["totals"]["weeks"]) == weeks_at_source
    # B keeps A's signed response as the evidence, verified with A's key.
    stored = node_db(DESTINATION).query(
        "SELECT member, signed_response FROM exchange_foreignperiods WHERE person_id = %s",
        [answer["person_id"]],
    )
    assert [row[0] for row in stored] == [SOURCE]
    signed = stored[0][1] if isinstance(stored[0][1], dict) else json.loads(stored[0][1])
    assert signed["header"]["sender_id"] == SOURCE
    assert signed["signature"]

    # A totalisation claim at B, through B's REST API, decided with A's periods.
    token = _token(federation, DESTINATION, "benefits_officer")
    api = httpx.Client(
        base_url=f"{federation.specs[DESTINATION].url}/api/v1",
        headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
        timeout=TIMEOUT,
    )
    kinds = {f"{k['package']}:{k['benefit']}": k for k in api.get("/claim-kinds").json()}
    kind = kinds["imss_1973:vejez"]
    declared: dict[str, Any] = {}
    for spec in kind["inputs"]:  # the facts the claimant declares (as pilar demo does)
        if spec["type"] == "bool":
            declared[spec["name"]] = spec["name"] in {"conyuge"}
        elif spec["type"] == "number":
            declared[spec["name"]] = 0
    created = api.post(
        "/claims",
        json={
            "person_id": answer["person_id"],
            "package": "imss_1973",
            "benefit": "vejez",
            "claim_date": datetime.date.today().isoformat(),
            "declared": declared,
            "agreement": DEMO_AGREEMENT_NAME,
        },
    )
    assert created.status_code == 201, created.text
    decided = api.post(f"/claims/{created.json()['id']}/adjudicate")
    assert decided.status_code == 201, decided.text
    decision = decided.json()
    assert decision["outcome"] == "granted", decision
    # Own weeks (~400) fall short of the 500 the 1973 law asks; with A's they do not.
    weeks_at_destination = _career_weeks(mover["after"])
    assert weeks_at_destination < 500 <= weeks_at_destination + weeks_at_source
    expected = _expected_award(federation, decision, weeks_at_destination, document)
    assert Decimal(str(decision["amount"])) == expected.quantize(Decimal("0.01"))
    foreign = [
        item for item in decision["inputs"].values() if item.get("source") == "foreign_periods"
    ]
    assert [item["detail"]["message_id"] for item in foreign] == [documents[0]["message_id"]]


def test_tampering_with_a_log_entry_is_named_by_audit_verify(
    federation: FederationInfo, node_db: Any
) -> None:
    database: NodeDatabase = node_db(SOURCE)
    wait_for(lambda: log_integrated(database), what=f"{SOURCE}'s log to be integrated")
    clean = federation.run(SOURCE, "audit", "verify", check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    index, data = database.query(
        'SELECT "index", data FROM exchange_logentry WHERE "index" IS NOT NULL '
        'ORDER BY "index" DESC LIMIT 1'
    )[0]
    tampered = data.replace('"status":"', '"status":"x', 1)
    if tampered == data:
        tampered = data.replace('"v":1', '"v":2', 1)
    assert tampered != data
    database.query('UPDATE exchange_logentry SET data = %s WHERE "index" = %s', [tampered, index])
    try:
        failed = federation.run(SOURCE, "audit", "verify", check=False)
        output = failed.stdout + failed.stderr
        assert failed.returncode == 1, output
        assert f"leaf {index}" in output.lower() or f"index {index}" in output.lower(), output
    finally:
        database.query('UPDATE exchange_logentry SET data = %s WHERE "index" = %s', [data, index])
    again = federation.run(SOURCE, "audit", "verify", check=False)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_replayed_message_is_refused(federation: FederationInfo, node_db: Any) -> None:
    mover = federation.movers[0]
    envelope = _signed(federation, DESTINATION, SOURCE, message=_search_message(mover["curp"]))
    first = _post(federation, SOURCE, envelope)
    assert first.status_code == 200, first.text
    assert first.json()["header"]["status"] == "succ"
    records = first.json()["message"]["search_response"][0]["data"]["reg_records"]
    assert [record["curp"] for record in records] == [mover["curp"]]

    replay = _post(federation, SOURCE, envelope)
    assert replay.status_code == 409, replay.text
    header = replay.json()["header"]
    assert header["status"] == "rjct"
    assert header["status_reason_code"] == "rjct.message_id.duplicate"
    # Answered once: the replay did not become a second exchange.
    rows = node_db(SOURCE).query(
        "SELECT status FROM exchange_exchangemessage "
        "WHERE direction = 'in' AND sender = %s AND message_id = %s",
        [DESTINATION, envelope["header"]["message_id"]],
    )
    assert rows == [("answered",)]


def test_a_member_without_the_agreement_is_refused(
    federation: FederationInfo, node_db: Any
) -> None:
    database: NodeDatabase = node_db(SOURCE)
    accesses = database.scalar("SELECT COUNT(*) FROM core_accesslogentry")
    mover = federation.movers[0]
    envelope = _signed(federation, AUDITOR, SOURCE, message=_search_message(mover["curp"]))
    refused = _post(federation, SOURCE, envelope)
    assert refused.status_code == 403, refused.text
    header = refused.json()["header"]
    assert header["status_reason_code"] == "rjct.agreement.missing"
    # The reason names who asked for what, in the receiver's language.
    reason = header["status_reason_message"]
    assert AUDITOR in reason, reason
    assert "person-search" in reason, reason
    assert (
        refused.json()["message"] in ({}, None)
        or "search_response" not in refused.json()["message"]
    )
    # Nothing written at A but the refusal: the message row (refused), no read of a person.
    rows = database.query(
        "SELECT status, reason_code FROM exchange_exchangemessage "
        "WHERE direction = 'in' AND sender = %s",
        [AUDITOR],
    )
    assert rows == [("refused", "rjct.agreement.missing")]
    assert database.scalar("SELECT COUNT(*) FROM core_accesslogentry") == accesses


def test_the_hub_stopped_mid_exchange_is_a_clear_error_and_nothing_is_lost(
    federation: FederationInfo, node_db: Any
) -> None:
    destination: NodeDatabase = node_db(DESTINATION)
    hub: NodeDatabase = node_db(HUB)
    mover = federation.movers[1]
    federation.stop(HUB)
    try:
        failed = federation.run(
            DESTINATION,
            "federation",
            "fetch-periods",
            "--curp",
            mover["curp"],
            "--purpose",
            "totalisation",
            check=False,
        )
    finally:
        federation.start(HUB)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output
    error = _json_line(failed.stdout)
    message_id = error.get("message_id")
    assert message_id, output
    assert message_id in output, output
    assert HUB in output, output
    rows = destination.query(
        "SELECT status, attempts FROM exchange_exchangemessage "
        "WHERE direction = 'out' AND message_id = %s AND action = 'periods-gather'",
        [message_id],
    )
    # Kept in B's outbox (the embedded scheduler may already have retried it since).
    assert len(rows) == 1, rows
    assert rows[0][0] in ("queued", "answered"), rows

    delivered = federation.run(DESTINATION, "federation", "deliver", "--all")
    assert "still queued" in delivered.stdout
    wait_for(
        lambda: (
            destination.scalar(
                "SELECT status FROM exchange_exchangemessage "
                "WHERE direction = 'out' AND message_id = %s",
                [message_id],
            )
            == "answered"
        ),
        timeout=TIMEOUT,
        what=f"message {message_id} to be answered after the hub is back",
    )
    # The same message id end to end; the hub holds it once; A's document is stored at B.
    assert hub.query(
        "SELECT COUNT(*) FROM exchange_exchangemessage "
        "WHERE direction = 'in' AND sender = %s AND message_id = %s",
        [DESTINATION, message_id],
    ) == [(1,)]
    stored = destination.query(
        "SELECT f.member FROM exchange_foreignperiods f "
        "JOIN exchange_exchangemessage m ON m.id = f.message_id "
        "WHERE m.message_id = %s",
        [message_id],
    )
    assert stored == [(SOURCE,)]


def test_the_auditor_cosigns_the_institutes_logs(federation: FederationInfo, node_db: Any) -> None:
    for code in (SOURCE, DESTINATION):
        database: NodeDatabase = node_db(code)
        wait_for(partial(log_integrated, database), what=f"{code}'s log")
    federation.run(AUDITOR, "federation", "audit-round")
    for code in (SOURCE, DESTINATION):
        database = node_db(code)
        cosigned = database.query(
            "SELECT c.size FROM exchange_logcosignature s "
            "JOIN exchange_logcheckpoint c ON c.id = s.checkpoint_id "
            "WHERE s.witness = %s ORDER BY c.size DESC",
            [AUDITOR],
        )
        assert cosigned, f"{AUDITOR} cosigned no checkpoint of {code}"
    verified = federation.run(SOURCE, "audit", "verify", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "cosign" in (verified.stdout + verified.stderr).lower()


def test_a_rotated_key_is_announced_published_and_accepted(
    federation: FederationInfo, node_db: Any
) -> None:
    """Key rotation across processes: A rotates; the announcement (signed with A's old key)
    reaches the hub, which adds the new key and publishes a trust list; B takes it; once A stops
    using the old key, B verifies A's messages with the new one. Last in this module: the
    other scenarios run with the keys the federation was set up with."""
    source, hub = node_db(SOURCE), node_db(HUB)
    [(old_key,)] = source.query("SELECT key_id FROM exchange_nodekey WHERE status = 'active'")
    serial_before = hub.scalar("SELECT MAX(serial) FROM exchange_trustlistversion")

    rotated = federation.run(SOURCE, "exchange", "keys", "rotate")
    [(new_key,)] = source.query("SELECT key_id FROM exchange_nodekey WHERE status = 'active'")
    assert new_key != old_key, rotated.stdout
    # The hub took the announcement: A's new key is in a newer trust list.
    assert hub.scalar("SELECT MAX(serial) FROM exchange_trustlistversion") > serial_before
    assert hub.query(
        "SELECT k.key_id FROM exchange_memberkey k JOIN exchange_member m ON m.id = k.member_id "
        "WHERE m.code = %s ORDER BY k.key_id",
        [SOURCE],
    ) == sorted([(old_key,), (new_key,)])
    announced = hub.query(
        "SELECT envelope FROM exchange_exchangemessage "
        "WHERE direction = 'in' AND sender = %s AND action = 'key-announce'",
        [SOURCE],
    )
    assert len(announced) == 1
    announcement = announced[0][0]
    if isinstance(announcement, str):
        announcement = json.loads(announcement)
    assert f"|{old_key}|" in announcement["signature"], "announced with the old key"

    for code in (SOURCE, DESTINATION):
        federation.run(code, "exchange", "trust", "fetch")
    # A stops accepting (and signing with) its old key: its messages now carry the new key.
    federation.run(SOURCE, "exchange", "keys", "retire", old_key)
    mover = federation.movers[2]
    envelope = _signed(federation, SOURCE, DESTINATION, message=_search_message(mover["curp"]))
    assert f"|{new_key}|" in envelope["signature"]
    answer = _post(federation, DESTINATION, envelope)
    assert answer.status_code == 200, answer.text
    assert answer.json()["header"]["status"] == "succ"
    # And A's log still verifies, with the checkpoints signed by both keys.
    verified = federation.run(SOURCE, "audit", "verify", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
