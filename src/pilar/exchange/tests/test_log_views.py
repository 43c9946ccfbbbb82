"""The log's public endpoints: what a verifier or an auditor reads, and precise 400/403 on
bad input (never a server error)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from pilar.exchange import log
from pilar.exchange.keys import SigningKey
from pilar.exchange.models import LogCosignature
from pilar.exchange.tests.log_support import add_member, sent_exchange, setup_node
from pilar.exchange.translog import merkle, note

pytestmark = pytest.mark.django_db


@pytest.fixture
def node_key(settings: Any, tmp_path: Path) -> SigningKey:
    return setup_node(settings, tmp_path)


@pytest.fixture
def filled(node_key: SigningKey) -> SigningKey:
    peer = add_member("MX-PEER")
    for _ in range(3):
        sent_exchange(node_key, peer)
    log.log_integrate()
    return node_key


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def test_an_empty_log_has_no_checkpoint(node_key: SigningKey, client: Client) -> None:
    response = client.get("/exchange/v1/log/checkpoint")
    assert response.status_code == 404
    assert response.json()["error"] == "exchange.log.empty"


def test_checkpoint_inclusion_and_leaves_verify_together(
    filled: SigningKey, client: Client
) -> None:
    response = client.get("/exchange/v1/log/checkpoint")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    opened = note.open_note(response.content.decode(), [filled.verify_key])
    checkpoint = note.parse_checkpoint(opened.text)
    assert checkpoint.size == 6

    leaves = client.get("/exchange/v1/log/leaves?start=0&end=6").json()
    assert [leaf["index"] for leaf in leaves] == list(range(6))
    for leaf in leaves:
        # Anyone can recompute the leaf hash from the served data…
        leaf_hash = merkle.leaf_hash(leaf["data"].encode())
        assert b64(leaf["leaf_hash"]) == leaf_hash
        # …and check it is in the signed tree.
        proof = client.get(f"/exchange/v1/log/proof/inclusion?index={leaf['index']}&size=6").json()
        merkle.verify_inclusion(
            leaf["index"], 6, leaf_hash, [b64(item) for item in proof["proof"]], checkpoint.root
        )
    consistency = client.get("/exchange/v1/log/proof/consistency?first=2&second=6").json()
    assert consistency["second_root"] == base64.b64encode(checkpoint.root).decode()


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/exchange/v1/log/proof/inclusion?index=abc&size=6", "index.invalid"),
        ("/exchange/v1/log/proof/inclusion?index=-1&size=6", "index.invalid"),
        ("/exchange/v1/log/proof/inclusion?size=6", "index.invalid"),
        ("/exchange/v1/log/proof/inclusion?index=6&size=6", "index.out_of_range"),
        ("/exchange/v1/log/proof/inclusion?index=0&size=7", "size.out_of_range"),
        ("/exchange/v1/log/proof/inclusion?index=0&size=99999999999999999999999", "size.invalid"),
        ("/exchange/v1/log/proof/consistency?first=5&second=3", "first.out_of_range"),
        ("/exchange/v1/log/proof/consistency?first=x", "first.invalid"),
        ("/exchange/v1/log/leaves?start=0&end=2000", "end.too_many"),
        ("/exchange/v1/log/leaves?start=3&end=3", "start.out_of_range"),
        ("/exchange/v1/log/leaves?start=0&end=7", "end.out_of_range"),
        ("/exchange/v1/log/leaves?start=½&end=7", "start.invalid"),
    ],
)
def test_bad_parameters_answer_400_with_a_precise_message(
    filled: SigningKey, client: Client, url: str, code: str
) -> None:
    response = client.get(url)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == code
    assert body["message"]


def test_cosignature_endpoint_accepts_an_auditors_and_refuses_others(
    filled: SigningKey, client: Client
) -> None:
    auditor = add_member("MX-AUDITOR", role="auditor")
    checkpoint = log.log_checkpoint_latest()
    assert checkpoint is not None
    body, _signatures = note.split_note(checkpoint.note)
    url = "/exchange/v1/log/cosignature"

    def post(payload: Any) -> Any:
        return client.post(url, data=json.dumps(payload), content_type="application/json")

    # Not JSON, missing fields, a garbage line, an unknown checkpoint: 400, nothing stored.
    assert client.post(url, data="{", content_type="application/json").status_code == 400
    assert post({"size": 6}).json()["error"] == "cosignature.invalid"
    assert post({"size": 6, "cosignature": "— MX-AUDITOR !!"}).status_code == 400
    unknown = post({"size": 5, "cosignature": note.cosign(body, auditor, 1)})
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "size.unknown_checkpoint"
    # Signed by a key that is not an auditor's of the trust list, or not on this checkpoint.
    stranger = SigningKey.generate("MX-AUDITOR")
    assert post({"size": 6, "cosignature": note.cosign(body, stranger, 1)}).status_code == 403
    other_body = note.format_checkpoint("pilar.exchange/MX-LOGTEST", 6, bytes(32))
    refused = post({"size": 6, "cosignature": note.cosign(other_body, auditor, 1)})
    assert refused.status_code == 403
    assert refused.json()["error"] == "exchange.log.cosignature_invalid"
    assert not LogCosignature.objects.exists()

    accepted = post({"size": 6, "cosignature": note.cosign(body, auditor, 1_800_000_000)})
    assert accepted.status_code == 201
    assert accepted.json()["witness"] == "MX-AUDITOR"
    # The same witness again for the same checkpoint is kept once.
    assert (
        post({"size": 6, "cosignature": note.cosign(body, auditor, 1_800_000_001)}).status_code
        == 201
    )
    assert LogCosignature.objects.count() == 1
    served = client.get("/exchange/v1/log/checkpoint").content.decode()
    assert served.count("— MX-AUDITOR ") == 1
    assert client.get(url).status_code == 405
