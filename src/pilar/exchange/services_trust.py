"""The trust list on the hub (members, publication) and on every member (fetch, take).

The hub's staff register members with their keys (``member_register``, ``member_update``) and
publish the list (``trust_list_publish``): built from the hub's ``Member``/``MemberKey`` rows
and its active agreements, serial = previous + 1, signed with the hub's key, kept as a
``TrustListVersion`` and served at ``GET /exchange/v1/trust-list``. Members fetch it and take it
(``trust_list_fetch``, ``trust_list_take``): verified against ``PILAR_HUB_KEYS`` or a hub key of
the list they trust, never older than the current one, then imported in one transaction.

Decisions where docs/federation.md is silent:

- A list lives ``TRUST_LIST_LIFETIME`` (one day) after it is issued; ``trust_list_refresh_due``
  (the scheduler's duty) makes a member fetch when its list reaches its next update, and makes
  the hub publish again when its newest list is past half its life (so a fetch never finds an
  expired list).
- The hub's own member row mirrors the hub's ``NodeKey`` rows when it publishes (created from
  the settings if staff never registered it): the active and retiring keys are listed, a
  retired key keeps its end of validity. The first list after a hub rotation is signed with
  the old key (the members only trust keys they were given), the next ones with the new key.
- Fetching the list that is already current is not an error (the scheduler does it all the
  time); the same serial with other content is (the hub would be equivocating).
- ``member_register`` refuses an existing code (``Conflict``); keys are added with
  ``member_update(add_vkeys=…)`` or by the member's own ``key-announce``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from pilar.core.actor import Actor
from pilar.core.audit import audit_record, created, diff, snapshot
from pilar.core.errors import ApplicationError, Conflict, FieldErrors, NotFound, PermissionDenied
from pilar.core.roles import Perm
from pilar.exchange import envelope, node, trustlist
from pilar.exchange.keys import SigningKey, VerifyKey, parse_vkey
from pilar.exchange.models import (
    Agreement,
    AgreementStatus,
    KeyStatus,
    Member,
    MemberKey,
    MemberRole,
    NodeKey,
    TrustListVersion,
)
from pilar.exchange.purposes import SERVICES
from pilar.exchange.reasons import Refusal, lazy_detail

TRUST_LIST_LIFETIME = dt.timedelta(days=1)
MEMBER_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,39}$")
MEMBER_FIELDS = ("code", "name", "role", "country", "endpoint", "services", "active")
# Service codes a member may announce: the contract's services plus the hub's relay action.
MEMBER_SERVICES = frozenset(SERVICES) | {"periods-gather"}
HUB_DEFAULT_SERVICES = ["index", "insurance-periods", "periods-gather", "trust"]


class NotTheHub(PermissionDenied):
    code = "exchange.not_hub"
    title = gettext_lazy("Only the hub registers members and publishes the trust list.")


class HubDoesNotTake(Conflict):
    code = "exchange.hub_does_not_take"
    title = gettext_lazy("The hub publishes the trust list; it does not take one.")


class HubUnreachable(ApplicationError):
    code = "exchange.hub_unreachable"
    status = 502
    title = gettext_lazy("The hub could not be reached to fetch the trust list.")


def _require_hub(actor: Actor) -> None:
    actor.require(Perm.EXCHANGE_MANAGE)
    if settings.PILAR_NODE_ROLE != MemberRole.HUB:
        raise NotTheHub()


# --------------------------------------------------------------------------------------------
# Members (hub)
# --------------------------------------------------------------------------------------------


def _as_list(value: Iterable[str] | str | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return [str(item).strip() for item in value if str(item).strip()]


def _parse_keys(code: str, vkeys: list[str], errors: FieldErrors) -> list[VerifyKey]:
    keys: list[VerifyKey] = []
    for text in vkeys:
        try:
            key = parse_vkey(text)
        except ValueError as error:
            errors.add("vkeys", "invalid", _("Not a valid vkey: %(error)s") % {"error": error})
            continue
        if key.name != code:
            errors.add(
                "vkeys",
                "other_member",
                _("The key %(key_id)s is named %(name)s, not %(code)s.")
                % {"key_id": key.key_id, "name": key.name, "code": code},
            )
            continue
        keys.append(key)
    return keys


def _check_member_values(values: dict[str, Any], errors: FieldErrors) -> None:
    if not MEMBER_CODE.match(values["code"]):
        errors.add(
            "code",
            "invalid",
            _("A member code is 2–40 capital letters, digits and hyphens, such as MX-IMSS."),
        )
    if not values["name"].strip():
        errors.add("name", "required", _("Give the member's name."))
    if values["role"] not in MemberRole.values:
        errors.add("role", "invalid", _("The role is institute, hub or auditor."))
    if not re.fullmatch(r"[A-Z]{2}", values["country"]):
        errors.add("country", "invalid", _("The country is a two-letter ISO code, such as MX."))
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", values["endpoint"]):
        errors.add("endpoint", "invalid", _("The endpoint is an http:// or https:// address."))
    unknown = sorted(set(values["services"]) - MEMBER_SERVICES)
    if unknown:
        errors.add(
            "services",
            "unknown",
            _("Unknown services: %(services)s.") % {"services": ", ".join(unknown)},
        )


def _whole_second(moment: dt.datetime) -> dt.datetime:
    # Signatures carry whole seconds (``created``): a key valid from 10:00:00.7 must verify a
    # message its holder signed at 10:00:00.9, whose ``created`` reads 10:00:00.
    return moment.replace(microsecond=0)


def _add_keys(member: Member, keys: list[VerifyKey], valid_from: dt.datetime) -> list[str]:
    existing = set(member.keys.values_list("key_id", flat=True))
    added = []
    for key in keys:
        if key.key_id in existing:
            continue
        MemberKey.objects.create(
            member=member,
            key_id=key.key_id,
            public_key=key.public_b64,
            valid_from=_whole_second(valid_from),
        )
        existing.add(key.key_id)
        added.append(key.key_id)
    return added


@transaction.atomic(durable=True)
def member_register(
    *,
    actor: Actor,
    code: str,
    name: str,
    role: str,
    endpoint: str,
    services: Iterable[str] | str,
    vkeys: Iterable[str] | str,
    country: str = "MX",
) -> Member:
    """Register a member of the federation with its public keys (hub only). Audited
    ``exchange.member.register``; takes effect for the others with the next trust list."""
    _require_hub(actor)
    values: dict[str, Any] = {
        "code": (code or "").strip(),
        "name": (name or "").strip(),
        "role": (role or "").strip(),
        "country": (country or "").strip().upper(),
        "endpoint": (endpoint or "").strip().rstrip("/"),
        "services": sorted(set(_as_list(services))),
        "active": True,
    }
    errors = FieldErrors()
    _check_member_values(values, errors)
    key_texts = _as_list(vkeys)
    if not key_texts:
        errors.add("vkeys", "required", _("Give at least one public key (vkey) of the member."))
    keys = _parse_keys(str(values["code"]), key_texts, errors)
    errors.raise_if_any()
    if Member.objects.filter(code=values["code"]).exists():
        raise Conflict(_("A member with the code %(code)s exists.") % {"code": values["code"]})
    now = timezone.now()
    member = Member.objects.create(**values, updated_at=now)
    added = _add_keys(member, keys, now)
    audit_record(
        actor=actor,
        action="exchange.member.register",
        entity_type="exchange.member",
        entity_id=member.code,
        changes={**created(values), "keys": [None, added]},
    )
    return member


@transaction.atomic(durable=True)
def member_update(
    *,
    actor: Actor,
    code: str,
    name: str | None = None,
    role: str | None = None,
    endpoint: str | None = None,
    services: Iterable[str] | str | None = None,
    country: str | None = None,
    active: bool | None = None,
    add_vkeys: Iterable[str] | str | None = None,
    end_keys: Iterable[str] | None = None,
    keys_valid_until: dt.datetime | None = None,
) -> Member:
    """Change a member (hub only): its data, new keys, or the end of validity of old keys
    (``end_keys`` are key ids, ended at ``keys_valid_until`` or now). Audited with the diff."""
    _require_hub(actor)
    member = Member.objects.select_for_update().filter(code=code).first()
    if member is None:
        raise NotFound(_("There is no member %(code)s.") % {"code": code})
    before = snapshot(member, MEMBER_FIELDS)
    if name is not None:
        member.name = name.strip()
    if role is not None:
        member.role = role.strip()
    if endpoint is not None:
        member.endpoint = endpoint.strip().rstrip("/")
    if services is not None:
        member.services = sorted(set(_as_list(services)))
    if country is not None:
        member.country = country.strip().upper()
    if active is not None:
        member.active = active
    errors = FieldErrors()
    _check_member_values(
        {
            "code": member.code,
            "name": member.name,
            "role": member.role,
            "country": member.country,
            "endpoint": member.endpoint,
            "services": member.services,
        },
        errors,
    )
    keys = _parse_keys(member.code, _as_list(add_vkeys), errors)
    ended = list(end_keys or [])
    unknown = sorted(set(ended) - set(member.keys.values_list("key_id", flat=True)))
    if unknown:
        errors.add(
            "end_keys",
            "unknown",
            _("The member has no key %(keys)s.") % {"keys": ", ".join(unknown)},
        )
    errors.raise_if_any()
    now = timezone.now()
    member.updated_at = now
    member.save()
    added = _add_keys(member, keys, now)
    until = keys_valid_until or now
    if ended:
        member.keys.filter(key_id__in=ended).update(valid_until=until)
    changes: dict[str, Any] = diff(before, snapshot(member, MEMBER_FIELDS))
    if added:
        changes["keys_added"] = [None, added]
    if ended:
        changes["keys_ended"] = [None, {"keys": ended, "valid_until": until.isoformat()}]
    audit_record(
        actor=actor,
        action="exchange.member.update",
        entity_type="exchange.member",
        entity_id=member.code,
        changes=changes,
    )
    return member


@transaction.atomic
def member_key_announce(
    *, actor: Actor, member_code: str, vkey: str, valid_from: str, proof: str
) -> MemberKey:
    """The hub's side of a member's ``key-announce`` (the envelope, signed with the member's
    current key, has already been verified by messaging): add the new key to the member, after
    checking the new key's own proof of possession. Audited ``exchange.member.key_announce``.
    Raises ``Refusal("rjct.search_criteria.invalid")`` naming what is wrong."""
    member = Member.objects.select_for_update().filter(code=member_code, active=True).first()
    if member is None:
        raise Refusal("rjct.sender.unknown", sender=member_code)
    try:
        key = parse_vkey(vkey)
    except ValueError as error:
        raise Refusal("rjct.search_criteria.invalid", detail=str(error)) from error
    if key.name != member.code:
        raise Refusal(
            "rjct.search_criteria.invalid",
            detail=lazy_detail(gettext_lazy("the new key is not named after the member.")),
        )
    if not node.check_announce_proof(key, member=member.code, valid_from=valid_from, proof=proof):
        raise Refusal(
            "rjct.search_criteria.invalid",
            detail=lazy_detail(gettext_lazy("the new key's proof of possession does not verify.")),
        )
    start = _whole_second(trustlist.parse_moment(valid_from, "valid_from"))
    row = member.keys.filter(key_id=key.key_id).first()
    if row is None:
        row = MemberKey.objects.create(
            member=member, key_id=key.key_id, public_key=key.public_b64, valid_from=start
        )
        audit_record(
            actor=actor,
            action="exchange.member.key_announce",
            entity_type="exchange.member",
            entity_id=member.code,
            changes={"keys_added": [None, [key.key_id]]},
        )
    return row


# --------------------------------------------------------------------------------------------
# Publication (hub)
# --------------------------------------------------------------------------------------------


def _hub_member() -> Member:
    """The hub's own member row, its keys mirroring the hub's ``NodeKey`` rows."""
    code = settings.PILAR_NODE_CODE
    member, _created = Member.objects.get_or_create(
        code=code,
        defaults={
            "name": code,
            "role": MemberRole.HUB,
            "endpoint": settings.PILAR_NODE_URL.rstrip("/"),
            "services": HUB_DEFAULT_SERVICES,
        },
    )
    for row in NodeKey.objects.all():
        until = row.retired_at if row.status == KeyStatus.RETIRED else None
        key = member.keys.filter(key_id=row.key_id).first()
        if key is None:
            if row.status == KeyStatus.RETIRED:
                continue
            MemberKey.objects.create(
                member=member,
                key_id=row.key_id,
                public_key=row.public_key,
                valid_from=_whole_second(row.created_at),
            )
        elif key.valid_until != until and until is not None:
            key.valid_until = until
            key.save(update_fields=["valid_until"])
    return member


def _publish_key(previous: TrustListVersion | None) -> SigningKey:
    """The hub key that signs the next list: one the members already trust. The active key
    once a list has published it; until then the retiring key that the previous list had."""
    active = node.signing_key()
    if previous is None:
        return active
    text = envelope.canonical(previous.document).decode("utf-8")
    code = settings.PILAR_NODE_CODE
    if f"{code}+{active.key_id}+" in text:
        return active
    for row in NodeKey.objects.filter(status=KeyStatus.RETIRING).order_by("-created_at"):
        if f"{code}+{row.key_id}+" in text:
            return node.load_node_key(row)
    return active


def _members_data() -> list[dict[str, Any]]:
    data = []
    for member in Member.objects.filter(active=True).prefetch_related("keys").order_by("code"):
        data.append(
            {
                "code": member.code,
                "name": member.name,
                "role": member.role,
                "country": member.country,
                "endpoint": member.endpoint,
                "services": list(member.services),
                "keys": [
                    {
                        "vkey": VerifyKey.from_public_b64(member.code, key.public_key).vkey,
                        "valid_from": key.valid_from,
                        "valid_until": key.valid_until,
                    }
                    for key in member.keys.all()
                ],
            }
        )
    return data


def _agreements_data(today: dt.date) -> list[dict[str, Any]]:
    rows = Agreement.objects.filter(status=AgreementStatus.ACTIVE, imported=False).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gte=today)
    )
    return [
        {
            "code": row.code,
            "consumer": row.consumer,
            "provider": row.provider,
            "service": row.service,
            "purposes": list(row.purposes),
            "fields": list(row.fields),
            "valid_from": row.valid_from,
            "valid_until": row.valid_until,
            "legal_basis": row.legal_basis,
        }
        for row in rows.order_by("code")
    ]


def _publish(actor: Actor) -> TrustListVersion:
    previous = TrustListVersion.objects.select_for_update().order_by("-serial").first()
    _hub_member()
    now = timezone.now()
    serial = (previous.serial if previous else 0) + 1
    next_update = now + TRUST_LIST_LIFETIME
    message = trustlist.build_message(
        serial=serial,
        issued_at=now,
        next_update=next_update,
        hub=settings.PILAR_NODE_CODE,
        members=_members_data(),
        agreements=_agreements_data(timezone.localdate(now)),
    )
    key = _publish_key(previous)
    document = trustlist.sign_trust_list(message, key, serial, next_update, now=now)
    version = TrustListVersion.objects.create(
        serial=serial,
        issued_at=now,
        next_update=next_update,
        hub=settings.PILAR_NODE_CODE,
        key_id=key.key_id,
        document=document,
        sha256=envelope.envelope_hash(document),
        fetched_at=now,
    )
    audit_record(
        actor=actor,
        action="trust_list.publish",
        entity_type="exchange.trust_list",
        entity_id=serial,
        changes={
            "serial": [previous.serial if previous else None, serial],
            "members": [None, len(message["members"])],
            "agreements": [None, len(message["agreements"])],
            "key_id": [None, key.key_id],
        },
    )
    return version


def trust_list_publish(*, actor: Actor) -> TrustListVersion:
    """Sign and keep the next trust list (hub only). Audited ``trust_list.publish``."""
    _require_hub(actor)
    with transaction.atomic(durable=True):
        version = _publish(actor)
    node.reset_signing_key_cache()
    _clear_messaging_cache()
    return version


def trust_list_publish_within(*, actor: Actor) -> TrustListVersion:
    """``trust_list_publish`` inside the caller's transaction (the ``key-announce`` handler)."""
    _require_hub(actor)
    version = _publish(actor)
    transaction.on_commit(node.reset_signing_key_cache)
    transaction.on_commit(_clear_messaging_cache)
    return version


# --------------------------------------------------------------------------------------------
# Taking a list (members)
# --------------------------------------------------------------------------------------------


def trust_list_current() -> TrustListVersion | None:
    """The list this node trusts now (on the hub: the newest it published)."""
    return TrustListVersion.objects.order_by("-serial").first()


def _anchors(current: TrustListVersion | None) -> list[VerifyKey]:
    anchors = list(node.this_node().hub_keys)
    if current is not None:
        now = timezone.now()
        rows = MemberKey.objects.filter(
            member__code=current.hub, member__role=MemberRole.HUB, valid_from__lte=now
        ).filter(Q(valid_until__isnull=True) | Q(valid_until__gte=now))
        for code, public in rows.values_list("member__code", "public_key"):
            anchors.append(VerifyKey.from_public_b64(code, public))
    return anchors


def _clear_messaging_cache() -> None:
    try:
        from pilar.exchange.messaging import trust_cache_clear
    except ImportError:  # messaging not installed in this build: nothing is cached
        return
    trust_cache_clear()


def _import(trusted: trustlist.TrustList) -> None:
    Member.objects.all().delete()  # their keys go with them (cascade)
    now = timezone.now()
    for item in trusted.members:
        member = Member.objects.create(
            code=item.code,
            name=item.name,
            role=item.role,
            country=item.country,
            endpoint=item.endpoint,
            services=list(item.services),
            active=True,
            updated_at=now,
        )
        MemberKey.objects.bulk_create(
            MemberKey(
                member=member,
                key_id=key.key.key_id,
                public_key=key.key.public_b64,
                valid_from=key.valid_from,
                valid_until=key.valid_until,
            )
            for key in item.keys
        )
    Agreement.objects.filter(imported=True).delete()
    for agreement in trusted.agreements:
        Agreement.objects.update_or_create(
            code=agreement.code,
            defaults={
                "consumer": agreement.consumer,
                "provider": agreement.provider,
                "service": agreement.service,
                "purposes": list(agreement.purposes),
                "fields": list(agreement.fields),
                "valid_from": agreement.valid_from,
                "valid_until": agreement.valid_until,
                "legal_basis": agreement.legal_basis,
                "status": AgreementStatus.ACTIVE,
                "imported": True,
                "updated_at": now,
            },
        )


def trust_list_take(*, actor: Actor, document: Any) -> TrustListVersion:
    """Verify a signed trust list and make it this node's: members, keys and agreements are
    replaced in one transaction, audited ``trust_list.take``. Raises
    ``Refusal("rjct.trust_list.invalid")`` (nothing changes) when it does not verify or is not
    newer than the current list; the current list itself again is returned as it is."""
    actor.require(Perm.EXCHANGE_MANAGE)
    if settings.PILAR_NODE_ROLE == MemberRole.HUB:
        raise HubDoesNotTake()
    with transaction.atomic(durable=True):
        current = TrustListVersion.objects.select_for_update().order_by("-serial").first()
        if current is not None and isinstance(document, dict):
            try:
                same = envelope.envelope_hash(document) == current.sha256
            except (ValueError, TypeError):
                same = False
            if same:
                return current
        trusted = trustlist.verify_trust_list(
            document, _anchors(current), current.serial if current else None, timezone.now()
        )
        hub_code = settings.PILAR_HUB_CODE
        if hub_code and trusted.hub != hub_code:
            raise Refusal(
                "rjct.trust_list.invalid",
                detail=lazy_detail(
                    gettext_lazy("it is published by %(hub)s, not by this node's hub %(mine)s."),
                    hub=trusted.hub,
                    mine=hub_code,
                ),
            )
        _import(trusted)
        version = TrustListVersion.objects.create(
            serial=trusted.serial,
            issued_at=trusted.issued_at,
            next_update=trusted.next_update,
            hub=trusted.hub,
            key_id=trusted.key_id,
            document=document,
            sha256=trusted.sha256,
            fetched_at=timezone.now(),
        )
        audit_record(
            actor=actor,
            action="trust_list.take",
            entity_type="exchange.trust_list",
            entity_id=trusted.serial,
            changes={
                "serial": [current.serial if current else None, trusted.serial],
                "members": [None, len(trusted.members)],
                "agreements": [None, len(trusted.agreements)],
            },
        )
        transaction.on_commit(node.reset_signing_key_cache)
        transaction.on_commit(_clear_messaging_cache)
    return version


def trust_list_url() -> str:
    return f"{settings.PILAR_HUB_URL.rstrip('/')}/exchange/v1/trust-list"


def trust_list_fetch(*, actor: Actor, client: httpx.Client | None = None) -> TrustListVersion:
    """GET the hub's newest list and take it. ``HubUnreachable`` names the address and the
    problem when the hub does not answer with a list; ``client`` is for tests."""
    actor.require(Perm.EXCHANGE_MANAGE)
    if settings.PILAR_NODE_ROLE == MemberRole.HUB:
        raise HubDoesNotTake()
    if not settings.PILAR_HUB_URL:
        raise HubUnreachable(_("PILAR_HUB_URL is not set: this node does not know its hub."))
    url = trust_list_url()
    timeout = float(settings.PILAR_EXCHANGE_TIMEOUT_SECONDS)
    try:
        if client is not None:
            response = client.get(url, timeout=timeout)
        else:
            with httpx.Client(timeout=timeout) as own_client:
                response = own_client.get(url)
    except httpx.HTTPError as error:
        raise HubUnreachable(
            _("The hub at %(url)s did not answer: %(error)s") % {"url": url, "error": error}
        ) from error
    if response.status_code != 200:
        raise HubUnreachable(
            _("The hub at %(url)s answered HTTP %(status)s instead of a trust list.")
            % {"url": url, "status": response.status_code}
        )
    try:
        document = response.json()
    except ValueError as error:
        raise Refusal(
            "rjct.trust_list.invalid",
            detail=lazy_detail(gettext_lazy("the hub's answer is not JSON.")),
        ) from error
    return trust_list_take(actor=actor, document=document)


def trust_list_refresh_due() -> TrustListVersion | None:
    """The scheduler's duty. A member fetches when it has no list or its list reached its next
    update; the hub publishes again when its newest list is past half its life."""
    actor = node.SYSTEM_ACTOR
    current = trust_list_current()
    now = timezone.now()
    if settings.PILAR_NODE_ROLE == MemberRole.HUB:
        if current is not None and now < current.next_update - TRUST_LIST_LIFETIME / 2:
            return None
        if not NodeKey.objects.filter(status=KeyStatus.ACTIVE).exists():
            return None
        return trust_list_publish(actor=actor)
    if current is not None and now < current.next_update:
        return None
    if not settings.PILAR_HUB_URL:
        return None
    return trust_list_fetch(actor=actor)
