"""Schemas of the federation's staff REST API (``exchange.api``): what the monitor, agreements,
trust list, log and a person's records at other institutions look like over HTTP."""

from __future__ import annotations

import datetime
from typing import Any

from ninja import Field, Schema

from pilar.core.api import InputSchema
from pilar.exchange.models import AgreementStatus, Direction, MessageStatus
from pilar.exchange.purposes import PURPOSES, SERVICES


def _enum(values: Any) -> dict[str, Any]:
    return {"enum": sorted(values)}


class MessageSummaryOut(Schema):
    id: int
    message_id: str
    direction: str = Field(json_schema_extra=_enum(Direction.values))
    sender: str = Field(examples=["MX-IMSS"])
    receiver: str = Field(examples=["MX-HUB"])
    action: str = Field(examples=["periods-gather"])
    purpose: str = Field(examples=["totalisation"])
    on_behalf_of: str = ""
    status: str = Field(json_schema_extra=_enum(MessageStatus.values))
    reason_code: str = ""
    reason_message: str = ""
    person_id: int | None = None
    attempts: int
    next_attempt_at: datetime.datetime | None = None
    duration_ms: float | None = None
    created_at: datetime.datetime
    answered_at: datetime.datetime | None = None


class LogLeafOut(Schema):
    index: int | None = Field(description="Null until the integrator sequences the leaf.")
    event: str = Field(examples=["request-sent"])
    leaf_hash: str
    leaf: dict[str, Any] = Field(description="The leaf's canonical JSON (no personal data).")
    checkpoint_size: int | None = Field(
        None, description="The checkpoint the inclusion proof was checked against."
    )
    verified: bool | None = Field(
        None, description="The inclusion proof verified; null when no checkpoint covers it yet."
    )
    problem: str = ""


class MessageDetailOut(MessageSummaryOut):
    reason_text: str = Field("", description="The reason code's message in the request language.")
    last_error: str = ""
    requested_by: str | None = None
    parent_id: int | None = None
    envelope: dict[str, Any] | None = Field(None, description="The signed request envelope.")
    response: dict[str, Any] | None = Field(None, description="The signed response envelope.")
    leaves: list[LogLeafOut]


class AgreementOut(Schema):
    id: int
    code: str = Field(examples=["AG-0001"])
    consumer: str
    provider: str = Field(description="A member code, or * for every member.")
    service: str = Field(json_schema_extra=_enum(SERVICES))
    purposes: list[str]
    fields: list[str]
    valid_from: datetime.date
    valid_until: datetime.date | None = None
    status: str = Field(json_schema_extra=_enum(AgreementStatus.values))
    legal_basis: str = ""
    imported: bool = Field(description="Received with the trust list (not written here).")
    version: int


class AgreementIn(InputSchema):
    code: str = Field(max_length=40, examples=["AG-0001"])
    consumer: str = Field(max_length=40)
    provider: str = Field(max_length=40, description="A member code, or * for every member.")
    service: str = Field(max_length=40, json_schema_extra=_enum(SERVICES))
    purposes: list[str] = Field(max_length=len(PURPOSES))
    fields: list[str] = Field(default_factory=list, max_length=50)
    valid_from: datetime.date
    valid_until: datetime.date | None = None
    status: str = Field(
        AgreementStatus.ACTIVE,
        json_schema_extra=_enum([AgreementStatus.DRAFT, AgreementStatus.ACTIVE]),
    )
    legal_basis: str = Field("", max_length=300)


class AgreementPatchIn(InputSchema):
    """The changed terms only, with the version read (optimistic concurrency). Giving
    ``valid_until`` with ``end: true`` ends the agreement."""

    version: int = Field(ge=1, description="The agreement's version when it was read.")
    consumer: str | None = Field(None, max_length=40)
    provider: str | None = Field(None, max_length=40)
    service: str | None = Field(None, max_length=40)
    purposes: list[str] | None = Field(None, max_length=len(PURPOSES))
    fields: list[str] | None = Field(None, max_length=50)
    valid_from: datetime.date | None = None
    valid_until: datetime.date | None = None
    status: str | None = Field(None, max_length=10)
    legal_basis: str | None = Field(None, max_length=300)
    end: bool = Field(False, description="End the agreement on valid_until (its last day).")


class MemberKeyOut(Schema):
    key_id: str
    public_key: str
    valid_from: datetime.datetime
    valid_until: datetime.datetime | None = None


class MemberOut(Schema):
    code: str
    name: str
    role: str
    country: str
    endpoint: str
    services: list[str]
    active: bool
    keys: list[MemberKeyOut]


class NodeKeyOut(Schema):
    key_id: str
    public_key: str
    status: str
    created_at: datetime.datetime
    retired_at: datetime.datetime | None = None


class TrustListOut(Schema):
    node: str = Field(examples=["MX-IMSS"])
    role: str
    serial: int | None = Field(description="Null before any trust list is held.")
    issued_at: datetime.datetime | None = None
    next_update: datetime.datetime | None = None
    hub: str = ""
    members: list[MemberOut]
    node_keys: list[NodeKeyOut]


class CosignatureOut(Schema):
    witness: str
    key_id: str
    timestamp: int
    received_at: datetime.datetime


class CheckpointOut(Schema):
    origin: str = Field(examples=["pilar.exchange/MX-IMSS"])
    size: int
    root_hash: str
    note: str = Field(description="The C2SP signed note (tlog-checkpoint).")
    created_at: datetime.datetime
    cosignatures: list[CosignatureOut]


class InstitutionOut(Schema):
    code: str
    name: str = ""
    holds_periods: bool = False


class InstitutionsOut(Schema):
    fed_id: str = ""
    members: list[InstitutionOut]


class PeriodsFetchIn(InputSchema):
    purpose: str = Field(max_length=40, json_schema_extra=_enum(PURPOSES))


class MemberOutcomeOut(Schema):
    member: str
    status: str = Field(json_schema_extra=_enum(["stored", "refused", "invalid", "unavailable"]))
    reason_code: str = ""
    reason_message: str = ""
    foreign_periods_id: int | None = None


class PeriodsFetchOut(Schema):
    fed_id: str = ""
    message_id: str = Field(description="The envelope's message id of the gather request.")
    results: list[MemberOutcomeOut] = Field(
        description="Per member: stored (verified and kept), refused, invalid (an answer that "
        "did not verify) or unavailable (fetch again later)."
    )


class ForeignPeriodsOut(Schema):
    id: int
    member: str
    institution: str
    purpose: str
    received_at: datetime.datetime
    as_of: str = ""
    periods: list[dict[str, Any]]
    total_days: Any = None
    total_weeks: Any = None
    message_id: int
