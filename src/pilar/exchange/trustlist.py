"""The trust list: which members make up the federation, with their keys, endpoints, services
and the agreements in force (pure: no database; docs/federation.md, "Trust list").

The hub signs it as an envelope with ``action: "trust-list"``, ``receiver_id: "*"`` and a
lifetime up to its ``next_update``. A node takes it only if it verifies with a trust anchor
(``PILAR_HUB_KEYS``) or a hub key of the list it already trusts, and its serial is higher than
the current one (rollback protection).

Decisions where the contract is silent: the list's envelope has purpose ``key-management``;
the hub named in the message must be the envelope's sender and a member of the list with the
``hub`` role; a key's vkey must carry the member's own code as its name; member codes and
agreement codes are unique within a list; times are RFC 3339, agreement dates ISO dates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from pilar.exchange import envelope
from pilar.exchange.keys import SigningKey, VerifyKey, parse_vkey
from pilar.exchange.reasons import Refusal, lazy_detail, lazy_message

ACTION = "trust-list"
RECEIVER = "*"
PURPOSE = "key-management"
ROLES = ("institute", "hub", "auditor")


@dataclass(frozen=True)
class TrustedKey:
    key: VerifyKey
    valid_from: dt.datetime
    valid_until: dt.datetime | None

    def covers(self, moment: dt.datetime) -> bool:
        return self.valid_from <= moment and (
            self.valid_until is None or moment <= self.valid_until
        )


@dataclass(frozen=True)
class TrustedMember:
    code: str
    name: str
    role: str
    country: str
    endpoint: str
    services: tuple[str, ...]
    keys: tuple[TrustedKey, ...]


@dataclass(frozen=True)
class TrustedAgreement:
    code: str
    consumer: str
    provider: str
    service: str
    purposes: tuple[str, ...]
    fields: tuple[str, ...]
    valid_from: dt.date
    valid_until: dt.date | None
    legal_basis: str


@dataclass(frozen=True)
class TrustList:
    serial: int
    issued_at: dt.datetime
    next_update: dt.datetime
    hub: str
    key_id: str
    members: tuple[TrustedMember, ...]
    agreements: tuple[TrustedAgreement, ...]
    document: dict[str, Any] = field(repr=False, compare=False)
    sha256: str = ""

    @property
    def keys(self) -> list[tuple[str, TrustedKey]]:
        """Every member's keys as ``(member code, key)``."""
        return [(member.code, key) for member in self.members for key in member.keys]

    def hub_keys(self) -> list[VerifyKey]:
        """The hub's keys in this list: anchors for taking the next list."""
        return [
            key.key for member in self.members if member.code == self.hub for key in member.keys
        ]


def _stamp(value: dt.datetime) -> str:
    return envelope.rfc3339(value)


def build_message(
    *,
    serial: int,
    issued_at: dt.datetime,
    next_update: dt.datetime,
    hub: str,
    members: list[dict[str, Any]],
    agreements: list[dict[str, Any]],
) -> dict[str, Any]:
    """The list's message from plain data. Members: ``code, name, role, country, endpoint,
    services, keys: [{vkey, valid_from, valid_until}]`` (datetimes or RFC 3339 strings);
    agreements: ``code, consumer, provider, service, purposes, fields, valid_from,
    valid_until, legal_basis`` (dates or ISO strings). Lists are sorted so the same data
    always gives the same document."""

    def moment(value: Any) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return _stamp(value)

    def day(value: Any) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return value.isoformat()

    return {
        "serial": serial,
        "issued_at": _stamp(issued_at),
        "next_update": _stamp(next_update),
        "hub": hub,
        "members": [
            {
                "code": member["code"],
                "name": member["name"],
                "role": member["role"],
                "country": member.get("country", "MX"),
                "endpoint": member["endpoint"],
                "services": sorted(member.get("services", [])),
                "keys": [
                    {
                        "vkey": key["vkey"],
                        "valid_from": moment(key["valid_from"]),
                        "valid_until": moment(key.get("valid_until")),
                    }
                    for key in sorted(member.get("keys", []), key=lambda item: item["vkey"])
                ],
            }
            for member in sorted(members, key=lambda item: item["code"])
        ],
        "agreements": [
            {
                "code": agreement["code"],
                "consumer": agreement["consumer"],
                "provider": agreement["provider"],
                "service": agreement["service"],
                "purposes": list(agreement.get("purposes", [])),
                "fields": list(agreement.get("fields", [])),
                "valid_from": day(agreement["valid_from"]),
                "valid_until": day(agreement.get("valid_until")),
                "legal_basis": agreement.get("legal_basis", ""),
            }
            for agreement in sorted(agreements, key=lambda item: item["code"])
        ],
    }


def sign_trust_list(
    message: dict[str, Any],
    key: SigningKey,
    serial: int,
    next_update: dt.datetime,
    *,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The signed list: an envelope from the hub to everyone, living until ``next_update``."""
    now = now or dt.datetime.now(dt.UTC)
    if message.get("serial") != serial:
        raise ValueError("The message's serial differs from the serial being signed.")
    ttl = int((next_update - now).total_seconds())
    if ttl < 1:
        raise ValueError("A trust list's next update must be in the future.")
    request = envelope.build_request(
        action=ACTION,
        sender_id=message["hub"],
        receiver_id=RECEIVER,
        purpose=PURPOSE,
        message=message,
        now=now,
        total_count=len(message.get("members", [])),
    )
    return envelope.sign(request, key, ttl=ttl, now=now)


def _invalid(template: str | Promise, **params: Any) -> Refusal:
    return Refusal("rjct.trust_list.invalid", detail=lazy_detail(template, **params))


def parse_moment(value: Any, where: str) -> dt.datetime:
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    raise _invalid(_("%(where)s is not an RFC 3339 time with a time zone."), where=where)


def _day(value: Any, where: str) -> dt.date:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _invalid(_("%(where)s is not a date (YYYY-MM-DD)."), where=where)


def _text(item: dict[str, Any], name: str, where: str, *, empty: bool = False) -> str:
    value = item.get(name)
    if not isinstance(value, str) or (not value and not empty):
        raise _invalid(_("%(where)s has no valid %(field)s."), where=where, field=name)
    return value


def _texts(item: dict[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = item.get(name, [])
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise _invalid(_("%(where)s has no valid %(field)s."), where=where, field=name)
    return tuple(value)


def _member(item: Any, index: int) -> TrustedMember:
    where = f"members[{index}]"
    if not isinstance(item, dict):
        raise _invalid(_("%(where)s is not an object."), where=where)
    code = _text(item, "code", where)
    where = f"member {code}"
    role = _text(item, "role", where)
    if role not in ROLES:
        raise _invalid(_("%(where)s has the unknown role %(role)s."), where=where, role=role)
    country = _text(item, "country", where)
    if len(country) != 2:
        raise _invalid(_("%(where)s has no valid %(field)s."), where=where, field="country")
    endpoint = _text(item, "endpoint", where)
    if not endpoint.startswith(("http://", "https://")):
        raise _invalid(_("%(where)s has no valid %(field)s."), where=where, field="endpoint")
    raw_keys = item.get("keys")
    if not isinstance(raw_keys, list):
        raise _invalid(_("%(where)s has no valid %(field)s."), where=where, field="keys")
    keys: list[TrustedKey] = []
    for key_index, raw in enumerate(raw_keys):
        key_where = f"{where}, keys[{key_index}]"
        if not isinstance(raw, dict):
            raise _invalid(_("%(where)s is not an object."), where=key_where)
        try:
            key = parse_vkey(_text(raw, "vkey", key_where))
        except ValueError as error:
            raise _invalid(
                _("%(where)s has an invalid vkey: %(error)s"), where=key_where, error=str(error)
            ) from error
        if key.name != code:
            raise _invalid(
                _("%(where)s is a key of %(name)s, not of the member."),
                where=key_where,
                name=key.name,
            )
        valid_until = raw.get("valid_until")
        keys.append(
            TrustedKey(
                key=key,
                valid_from=parse_moment(raw.get("valid_from"), f"{key_where}.valid_from"),
                valid_until=None
                if valid_until is None
                else parse_moment(valid_until, f"{key_where}.valid_until"),
            )
        )
    return TrustedMember(
        code=code,
        name=_text(item, "name", where),
        role=role,
        country=country,
        endpoint=endpoint,
        services=_texts(item, "services", where),
        keys=tuple(keys),
    )


def _agreement(item: Any, index: int) -> TrustedAgreement:
    where = f"agreements[{index}]"
    if not isinstance(item, dict):
        raise _invalid(_("%(where)s is not an object."), where=where)
    code = _text(item, "code", where)
    where = f"agreement {code}"
    valid_until = item.get("valid_until")
    return TrustedAgreement(
        code=code,
        consumer=_text(item, "consumer", where),
        provider=_text(item, "provider", where),
        service=_text(item, "service", where),
        purposes=_texts(item, "purposes", where),
        fields=_texts(item, "fields", where),
        valid_from=_day(item.get("valid_from"), f"{where}.valid_from"),
        valid_until=None if valid_until is None else _day(valid_until, f"{where}.valid_until"),
        legal_basis=_text(item, "legal_basis", where, empty=True),
    )


def verify_trust_list(
    document: Any,
    anchors: list[VerifyKey],
    current_serial: int | None,
    now: dt.datetime | None = None,
) -> TrustList:
    """Check a signed trust list and return its content, or raise
    ``Refusal("rjct.trust_list.invalid")`` naming why: not an envelope, not a trust list, not
    signed by an anchor, altered, expired, not newer than ``current_serial`` (rollback), or a
    malformed member, key or agreement."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        header, message, _signature = envelope.check_shape(document)
    except Refusal as refusal:
        raise _invalid(
            _("it is not a signed envelope (%(reason)s)."), reason=lazy_message(refusal)
        ) from refusal
    if header["action"] != ACTION or header["receiver_id"] != RECEIVER:
        raise _invalid(_("the envelope is not a trust list."))

    def resolve(sender: str, key_id: str, created: dt.datetime) -> VerifyKey | None:
        for anchor in anchors:
            if anchor.name == sender and anchor.key_id == key_id:
                return anchor
        return None

    try:
        params = envelope.verify(document, resolve_key=resolve, now=now, max_ttl=None)
    except Refusal as refusal:
        if refusal.code == "rjct.key.unknown":
            raise _invalid(
                _("it is signed by %(kid)s, which is not a trusted hub key."),
                kid=f"{refusal.params.get('sender')}|{refusal.params.get('key_id')}",
            ) from refusal
        if refusal.code == "rjct.message_ts.invalid":
            raise _invalid(
                _("it has expired or is not yet valid (%(reason)s)."), reason=lazy_message(refusal)
            ) from refusal
        raise _invalid(
            _("its signature does not verify (%(reason)s)."), reason=lazy_message(refusal)
        ) from refusal

    serial = message.get("serial")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 1:
        raise _invalid(_("the serial is not a positive whole number."))
    if current_serial is not None and serial <= current_serial:
        raise _invalid(
            _("its serial %(serial)s is not newer than the current %(current)s (rollback)."),
            serial=serial,
            current=current_serial,
        )
    hub = message.get("hub")
    if hub != header["sender_id"]:
        raise _invalid(_("the hub named in the list is not its signer."))
    issued_at = parse_moment(message.get("issued_at"), "issued_at")
    next_update = parse_moment(message.get("next_update"), "next_update")
    if next_update <= issued_at:
        raise _invalid(_("its next update is not after its issue time."))
    if now > next_update:
        raise _invalid(_("it has expired or is not yet valid (%(reason)s)."), reason="next_update")
    raw_members = message.get("members")
    raw_agreements = message.get("agreements")
    if not isinstance(raw_members, list) or not isinstance(raw_agreements, list):
        raise _invalid(_("members and agreements must be lists."))
    members = tuple(_member(item, index) for index, item in enumerate(raw_members))
    agreements = tuple(_agreement(item, index) for index, item in enumerate(raw_agreements))
    codes = [member.code for member in members]
    if len(set(codes)) != len(codes):
        raise _invalid(_("a member code appears twice."))
    agreement_codes = [agreement.code for agreement in agreements]
    if len(set(agreement_codes)) != len(agreement_codes):
        raise _invalid(_("an agreement code appears twice."))
    if not any(member.code == hub and member.role == "hub" for member in members):
        raise _invalid(_("the hub is not a member of its own list."))
    return TrustList(
        serial=serial,
        issued_at=issued_at,
        next_update=next_update,
        hub=str(hub),
        key_id=params.key_id,
        members=members,
        agreements=agreements,
        document=document,
        sha256=params.envelope_hash,
    )
