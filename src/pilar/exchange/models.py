"""Federation data: keys and the trust list, agreements, the message archive (which is also the
outbox and the exchange monitor's source), the transparency log, the auditor's view of the
members' logs, the hub's person index, event subscriptions, and the documents received.

Models hold data and invariants only; every write goes through the services (audited). No
personal data is stored in a log leaf; the message archive keeps the signed envelopes as the
evidence of each exchange (docs/federation.md, "What is kept where").
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# --------------------------------------------------------------------------------------------
# Node identity and the trust list
# --------------------------------------------------------------------------------------------


class KeyStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    # Still published and accepted for verification, no longer used to sign.
    RETIRING = "retiring", _("Retiring")
    RETIRED = "retired", _("Retired")


class NodeKey(models.Model):
    """One of this node's Ed25519 signing keys. The private half is a file in
    ``PILAR_KEYS_DIR`` named ``<key_id>.key``; the database holds only the public half."""

    key_id = models.CharField(_("key id"), max_length=8, unique=True)
    public_key = models.CharField(_("public key"), max_length=64)
    status = models.CharField(
        _("status"), max_length=10, choices=KeyStatus.choices, default=KeyStatus.ACTIVE
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    retired_at = models.DateTimeField(_("retired at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class TrustListVersion(models.Model):
    """A trust list as signed by the hub: kept verbatim (``document`` is the signed envelope),
    one row per serial. The current one is the highest serial that verified."""

    serial = models.PositiveBigIntegerField(_("serial"), unique=True)
    issued_at = models.DateTimeField(_("issued at"))
    next_update = models.DateTimeField(_("next update"))
    hub = models.CharField(_("hub"), max_length=40)
    key_id = models.CharField(_("signed with key"), max_length=8)
    document = models.JSONField(_("signed document"))
    sha256 = models.CharField(max_length=64)
    fetched_at = models.DateTimeField(_("fetched at"), default=timezone.now)

    class Meta:
        ordering = ["-serial"]


class MemberRole(models.TextChoices):
    INSTITUTE = "institute", _("Institute")
    HUB = "hub", _("Hub")
    AUDITOR = "auditor", _("Auditor")


class Member(models.Model):
    """A member of the federation as the current trust list describes it (on the hub: as the
    hub's staff registered it). Imported rows are replaced when a newer trust list is taken."""

    code = models.CharField(_("member code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    role = models.CharField(_("role"), max_length=10, choices=MemberRole.choices)
    country = models.CharField(_("country"), max_length=2, default="MX")
    endpoint = models.URLField(_("endpoint"), max_length=300)
    # Service codes the member answers (``person-search``, ``insurance-periods``, ``events``,
    # and on the hub ``index``, ``periods-gather``, ``trust``).
    services = models.JSONField(_("services"), default=list)
    active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class MemberKey(models.Model):
    """A member's published Ed25519 public key. Rotation publishes the new key beside the old
    one; a message verifies with any key of its sender valid at the message's creation time."""

    member = models.ForeignKey(Member, related_name="keys", on_delete=models.CASCADE)
    key_id = models.CharField(_("key id"), max_length=8)
    public_key = models.CharField(_("public key"), max_length=64)
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "key_id"], name="exchange_member_key_once")
        ]


# --------------------------------------------------------------------------------------------
# Agreements
# --------------------------------------------------------------------------------------------


class AgreementStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ACTIVE = "active", _("Active")
    ENDED = "ended", _("Ended")


class Agreement(models.Model):
    """Which member (``consumer``) may call which service of which member (``provider``, or
    ``*`` for every member offering it), for which purposes, receiving which fields, and when.
    Anything not covered by an active agreement in force is refused (deny by default).

    The hub's staff write agreements; the hub publishes the active ones in the trust list, and
    every node enforces them from there (``imported`` rows are replaced on each new list)."""

    code = models.CharField(_("code"), max_length=40, unique=True)
    consumer = models.CharField(_("consumer"), max_length=40)
    provider = models.CharField(_("provider"), max_length=40)
    service = models.CharField(_("service"), max_length=40)
    purposes = models.JSONField(_("purposes"), default=list)
    fields = models.JSONField(_("fields"), default=list)
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=AgreementStatus.choices, default=AgreementStatus.DRAFT
    )
    # The legal instrument (convenio) the agreement implements.
    legal_basis = models.CharField(_("legal basis"), max_length=300, blank=True)
    imported = models.BooleanField(_("from the trust list"), default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["code"]
        indexes = [models.Index(fields=["consumer", "service"])]

    def __str__(self) -> str:
        return self.code


# --------------------------------------------------------------------------------------------
# Messages: the archive of every envelope sent and received, the outbox, the monitor
# --------------------------------------------------------------------------------------------


class Direction(models.TextChoices):
    OUT = "out", _("Sent")
    IN = "in", _("Received")


class MessageStatus(models.TextChoices):
    # Outgoing: signed and kept, not yet answered (being delivered, or waiting for a retry).
    QUEUED = "queued", _("Queued")
    # Answered with status ``succ`` (both directions).
    ANSWERED = "answered", _("Answered")
    # Refused with a reason code: by the peer (outgoing) or by this node (incoming).
    REFUSED = "refused", _("Refused")
    # Outgoing, given up after the last attempt; staff may retry it by hand.
    FAILED = "failed", _("Failed")


class ExchangeMessage(models.Model):
    """One exchange as seen from this node: the signed request envelope and, once there is one,
    the signed response envelope, kept as the evidence the log leaves refer to.

    Outgoing rows are the outbox: a message is signed and stored before the first attempt and
    retried with the same ``message_id`` until answered, so a request is never lost. Incoming
    rows are unique per (sender, message_id): the same id again with the same signature is a
    replay and refused; with a new signature and the same content it is the sender's retry."""

    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    message_id = models.CharField(_("message id"), max_length=64)
    sender = models.CharField(_("sender"), max_length=40)
    receiver = models.CharField(_("receiver"), max_length=40)
    action = models.CharField(_("action"), max_length=40)
    purpose = models.CharField(_("purpose"), max_length=40, blank=True)
    # A hub relaying a request names the member it acts for.
    on_behalf_of = models.CharField(_("on behalf of"), max_length=40, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=MessageStatus.choices)
    reason_code = models.CharField(_("reason code"), max_length=60, blank=True)
    reason_message = models.TextField(_("reason"), blank=True)
    # sha256 of the canonical request envelope (hex): what the response is bound to.
    request_hash = models.CharField(max_length=64, blank=True)
    envelope = models.JSONField(_("request envelope"), null=True, blank=True)
    response = models.JSONField(_("response envelope"), null=True, blank=True)
    # The local person the exchange concerns, when there is one (person page, access log).
    person = models.ForeignKey(
        "registry.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The staff member whose action sent it (outgoing), for the monitor and the audit.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A hub's relayed sub-requests point at the member's request they serve.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    # Name of the registered function that applies the answer (outgoing), so an answer that
    # arrives on a later retry is applied exactly like one that arrived at once.
    on_answer = models.CharField(max_length=60, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # While one process makes an attempt: until when it may take (no other process sends the
    # message meanwhile; an attempt that died with its process is made again after it).
    attempt_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    duration_ms = models.FloatField(_("duration (ms)"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["direction", "sender", "message_id"], name="exchange_message_once"
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["person", "created_at"]),
        ]


# --------------------------------------------------------------------------------------------
# Transparency log (RFC 9162) of this node
# --------------------------------------------------------------------------------------------


class LogEntry(models.Model):
    """A leaf of this node's log. Appended (``index`` null) in the transaction of the exchange
    it records, then sequenced: the integrator gives it the next index and stores the hashes of
    the subtrees it completes. ``data`` is the leaf's canonical JSON (no personal data: salted
    digests, signatures, codes); ``salt`` is kept beside it, outside the leaf, so this node can
    later prove which envelope a leaf stands for."""

    index = models.PositiveBigIntegerField(null=True, blank=True, unique=True)
    event = models.CharField(max_length=30)
    data = models.TextField()
    salt = models.CharField(max_length=64)
    leaf_hash = models.CharField(max_length=64)
    message = models.ForeignKey(
        ExchangeMessage, null=True, blank=True, on_delete=models.PROTECT, related_name="log_entries"
    )
    created_at = models.DateTimeField(default=timezone.now)


class LogHash(models.Model):
    """A stored hash of the tree (the tlog "stored hash index" layout: for each leaf, the leaf
    hash and the hashes of the complete subtrees it closes), so any proof is O(log n) reads."""

    index = models.PositiveBigIntegerField(primary_key=True)
    hash = models.BinaryField()


class LogCheckpoint(models.Model):
    """A checkpoint this node signed: tree size, root hash and the signed note (C2SP
    tlog-checkpoint) as served to auditors."""

    size = models.PositiveBigIntegerField(unique=True)
    root_hash = models.CharField(max_length=64)
    note = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-size"]


class LogCosignature(models.Model):
    """An auditor's cosignature (C2SP tlog-cosignature) on one of this node's checkpoints."""

    checkpoint = models.ForeignKey(
        LogCheckpoint, related_name="cosignatures", on_delete=models.CASCADE
    )
    witness = models.CharField(max_length=40)
    key_id = models.CharField(max_length=8)
    timestamp = models.PositiveBigIntegerField()
    line = models.TextField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["checkpoint", "witness", "key_id"], name="exchange_cosignature_once"
            )
        ]


# --------------------------------------------------------------------------------------------
# Auditor: its view of each member's log
# --------------------------------------------------------------------------------------------


class WitnessedLog(models.Model):
    """The newest checkpoint of a member's log that this auditor checked and cosigned."""

    member = models.CharField(max_length=40, unique=True)
    size = models.PositiveBigIntegerField(default=0)
    root_hash = models.CharField(max_length=64, blank=True)
    note = models.TextField(blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    cosigned_at = models.DateTimeField(null=True, blank=True)


class AlertKind(models.TextChoices):
    INCONSISTENT = "inconsistent", _("Inconsistent log (consistency proof failed)")
    ROLLBACK = "rollback", _("Log shrank")
    BAD_SIGNATURE = "bad_signature", _("Checkpoint signature invalid")
    UNREACHABLE = "unreachable", _("Log unreachable")


class WitnessAlert(models.Model):
    member = models.CharField(max_length=40)
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    detail = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]


# --------------------------------------------------------------------------------------------
# Hub: the federated person index
# --------------------------------------------------------------------------------------------


class FederatedPerson(models.Model):
    """A person known to the federation, under a random pseudonymous id (never derived from
    the CURP or any other personal datum)."""

    fed_id = models.CharField(_("federation id"), max_length=40, unique=True)
    created_at = models.DateTimeField(default=timezone.now)


class IndexKey(models.Model):
    """How the hub finds a federated person by identifier without storing it: a keyed hash
    (HMAC-SHA-256 with the hub's index secret) of the normalised identifier."""

    person = models.ForeignKey(FederatedPerson, related_name="keys", on_delete=models.CASCADE)
    kind = models.CharField(max_length=10)
    digest = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "digest"], name="exchange_index_key_once")
        ]


class IndexEntry(models.Model):
    """A member holds a record of the federated person, under the member's own reference."""

    person = models.ForeignKey(FederatedPerson, related_name="entries", on_delete=models.CASCADE)
    member = models.CharField(max_length=40)
    member_ref = models.CharField(max_length=64)
    holds_periods = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "member_ref"], name="exchange_index_once")
        ]


# --------------------------------------------------------------------------------------------
# Institute side: federation ids, subscriptions, events and documents received
# --------------------------------------------------------------------------------------------


class FederationLink(models.Model):
    """The federation id the hub gave one of this node's persons."""

    person = models.OneToOneField(
        "registry.Person", related_name="federation_link", on_delete=models.PROTECT
    )
    fed_id = models.CharField(_("federation id"), max_length=40, unique=True)
    enrolled_at = models.DateTimeField(default=timezone.now)
    # Whether the hub was told this node holds insurance periods for the person.
    holds_periods = models.BooleanField(default=False)


class SubscriptionRole(models.TextChoices):
    # This node notifies the peer (it received the subscribe request).
    PROVIDER = "provider", _("We notify")
    # This node is notified by the peer (it sent the subscribe request).
    SUBSCRIBER = "subscriber", _("We are notified")


class Subscription(models.Model):
    """An event subscription (DCI subscribe/notify): which events about which federated
    persons the subscriber is told of."""

    role = models.CharField(max_length=10, choices=SubscriptionRole.choices)
    peer = models.CharField(_("member"), max_length=40)
    code = models.CharField(_("subscription code"), max_length=64)
    event_types = models.JSONField(_("events"), default=list)
    fed_id = models.CharField(_("federation id"), max_length=40)
    purpose = models.CharField(_("purpose"), max_length=40)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["role", "peer", "code"], name="exchange_subscription_once"
            )
        ]
        indexes = [models.Index(fields=["fed_id", "active"])]


class ReceivedEvent(models.Model):
    """An event a peer notified: shown on the person's page for staff to act on (a reported
    death is a fact to verify, not a change made by the exchange)."""

    sender = models.CharField(_("from"), max_length=40)
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(_("event"), max_length=30)
    fed_id = models.CharField(max_length=40)
    person = models.ForeignKey(
        "registry.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    event_date = models.DateField(_("date"), null=True, blank=True)
    data = models.JSONField(default=dict)
    message = models.ForeignKey(ExchangeMessage, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField(default=timezone.now)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sender", "event_id"], name="exchange_event_once")
        ]


class EventCursor(models.Model):
    """How far the event dispatcher has read the audit trail (one row per event source)."""

    name = models.CharField(max_length=40, unique=True)
    last_audit_id = models.PositiveBigIntegerField(default=0)


class ForeignPeriods(models.Model):
    """An insurance-periods document (P5000-shaped) another member sent for one of this node's
    persons, as received and verified: the member's signed response is kept with it. A newer
    document from the same member supersedes the older one."""

    person = models.ForeignKey("registry.Person", related_name="+", on_delete=models.PROTECT)
    member = models.CharField(_("institution"), max_length=40)
    document = models.JSONField(_("document"))
    signed_response = models.JSONField()
    message = models.ForeignKey(ExchangeMessage, on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(_("purpose"), max_length=40)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["member", "-received_at"]
        indexes = [models.Index(fields=["person", "superseded_at"])]
