"""``pilar exchange``: keys, vkey, members, trust list publish/show/take, precise errors."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from pilar.core.models import AuditEvent
from pilar.exchange import node
from pilar.exchange.keys import SigningKey, parse_vkey
from pilar.exchange.models import KeyStatus, Member, NodeKey, TrustListVersion

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("exchange", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def hub(settings: Any, tmp_path) -> Any:
    settings.PILAR_NODE_CODE = "MX-HUB"
    settings.PILAR_NODE_ROLE = "hub"
    settings.PILAR_HUB_CODE = "MX-HUB"
    settings.PILAR_KEYS_DIR = tmp_path / "keys"
    node.reset_signing_key_cache()
    yield settings
    node.reset_signing_key_cache()


def test_keys_init_is_idempotent_and_vkey_prints_the_public_key(hub: Any) -> None:
    assert "created" in run("keys", "init")
    assert "exists" in run("keys", "init")
    assert NodeKey.objects.count() == 1
    vkey = run("vkey").strip()
    parsed = parse_vkey(vkey)
    assert parsed.name == "MX-HUB"
    assert parsed.key_id == NodeKey.objects.get().key_id
    assert AuditEvent.objects.filter(action="exchange.key.init").count() == 1


def test_keys_rotate_show_and_retire(hub: Any) -> None:
    run("keys", "init")
    first = NodeKey.objects.get().key_id
    run("keys", "rotate", "--no-announce")
    assert NodeKey.objects.get(key_id=first).status == KeyStatus.RETIRING
    shown = run("keys", "show")
    assert first in shown
    assert "retiring" in shown
    assert "active" in shown
    run("keys", "retire", first)
    assert NodeKey.objects.get(key_id=first).status == KeyStatus.RETIRED
    with pytest.raises(CommandError, match="Only a retiring key"):
        run("keys", "retire", first)


def test_keys_show_and_vkey_without_a_key(hub: Any) -> None:
    with pytest.raises(CommandError, match="keys init"):
        run("keys", "show")
    with pytest.raises(CommandError, match="keys init"):
        run("vkey")


def test_member_add_publish_show_and_take(hub: Any, tmp_path) -> None:
    run("keys", "init")
    hub_vkey = run("vkey").strip()
    imss = SigningKey.generate("MX-IMSS")
    run(
        "member",
        "add",
        "--code",
        "MX-IMSS",
        "--name",
        "IMSS",
        "--role",
        "institute",
        "--endpoint",
        "http://127.0.0.1:8101",
        "--services",
        "person-search,insurance-periods",
        "--vkey",
        imss.vkey,
    )
    assert Member.objects.get(code="MX-IMSS").services == ["insurance-periods", "person-search"]
    assert "Trust list 1 published" in run("trust", "publish")
    shown = run("trust", "show")
    assert "Trust list 1 from MX-HUB" in shown
    assert "MX-IMSS" in shown
    document = json.loads(run("trust", "show", "--json"))
    path = tmp_path / "list.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError, match="does not take"):
        run("trust", "take", str(path))

    # The same database as the member MX-IMSS now.
    TrustListVersion.objects.all().delete()
    Member.objects.all().delete()
    hub.PILAR_NODE_CODE = "MX-IMSS"
    hub.PILAR_NODE_ROLE = "institute"
    hub.PILAR_HUB_KEYS = [hub_vkey]
    assert "Trust list 1 from MX-HUB is current" in run("trust", "take", str(path))
    assert set(Member.objects.values_list("code", flat=True)) == {"MX-HUB", "MX-IMSS"}


def test_bad_input_is_explained_and_writes_nothing(hub: Any, tmp_path) -> None:
    run("keys", "init")
    with pytest.raises(CommandError) as caught:
        run(
            "member",
            "add",
            "--code",
            "MX-IMSS",
            "--name",
            "IMSS",
            "--role",
            "institute",
            "--endpoint",
            "http://x",
            "--vkey",
            SigningKey.generate("MX-OTHER").vkey,
        )
    assert "named MX-OTHER, not MX-IMSS" in str(caught.value)
    with pytest.raises(CommandError) as caught:
        run("--language", "es", "keys", "retire", "00000000")
    assert "Solo se puede dar de baja" in str(caught.value)
    assert not Member.objects.exists()
    with pytest.raises(CommandError, match="Cannot read"):
        run("trust", "take", str(tmp_path / "missing.json"))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(CommandError, match="is not JSON"):
        run("trust", "take", str(garbage))
    hub.PILAR_NODE_ROLE = "institute"
    garbage.write_text(json.dumps({"hello": 1}))
    with pytest.raises(CommandError, match=r"rjct\.trust_list\.invalid"):
        run("trust", "take", str(garbage))
    hub.PILAR_HUB_URL = ""
    with pytest.raises(CommandError, match="PILAR_HUB_URL"):
        run("trust", "fetch")
    assert not TrustListVersion.objects.exists()


def test_agreement_add_on_the_hub(hub: Any) -> None:
    run("keys", "init")
    imss = SigningKey.generate("MX-IMSS").vkey
    run(
        "member", "add", "--code", "MX-IMSS", "--name", "IMSS", "--role", "institute",
        "--endpoint", "http://x", "--vkey", imss,
    )  # fmt: skip
    out = run(
        "agreement",
        "add",
        "--code",
        "AG-0001",
        "--consumer",
        "MX-IMSS",
        "--service",
        "insurance-periods",
        "--purposes",
        "totalisation",
        "--fields",
        "period.from,period.to",
        "--valid-from",
        "2026-01-01",
    )
    assert "AG-0001 created" in out
    with pytest.raises(CommandError):
        run(
            "agreement",
            "add",
            "--code",
            "AG-0002",
            "--consumer",
            "MX-IMSS",
            "--service",
            "teleport",
            "--purposes",
            "fun",
            "--valid-from",
            "someday",
        )
