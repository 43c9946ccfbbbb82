"""Staff accounts, offices, roles, API tokens, and the two append-only trails: audit events
(every write) and the access log (every read of a person's record)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.core.regions import STATE_CHOICES
from pilar.core.roles import Role


class Office(models.Model):
    """A service office of the institution. Its region scopes what its staff see."""

    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=200)
    region = models.CharField(_("region"), max_length=2, choices=STATE_CHOICES)

    class Meta:
        ordering = ["code"]
        verbose_name = _("office")
        verbose_name_plural = _("offices")

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class User(AbstractUser):
    """A staff member. Roles are held in ``RoleAssignment``; the office sets the region."""

    office = models.ForeignKey(
        Office, verbose_name=_("office"), null=True, blank=True, on_delete=models.PROTECT
    )
    failed_login_count = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[UserManager[User]] = UserManager()  # type: ignore[assignment]

    def role_codes(self) -> frozenset[str]:
        cached: frozenset[str] | None = getattr(self, "_role_codes", None)
        if cached is None:
            cached = frozenset(self.role_assignments.values_list("role", flat=True))
            self._role_codes = cached
        return cached

    def display_name(self) -> str:
        return self.get_full_name() or self.username

    def is_locked(self, now: Any = None) -> bool:
        """Locked out after repeated failed sign-ins (see ``LockoutModelBackend``)."""
        return self.locked_until is not None and self.locked_until > (now or timezone.now())


class RoleAssignment(models.Model):
    user = models.ForeignKey(User, related_name="role_assignments", on_delete=models.CASCADE)
    role = models.CharField(_("role"), max_length=30, choices=Role.choices)
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "role"], name="core_role_once_per_user")
        ]


class ApiToken(models.Model):
    """A bearer token for an API client. Only a SHA-256 hash of the secret is stored; the token
    is shown once at creation. Tokens carry one role and expire."""

    user = models.ForeignKey(User, related_name="api_tokens", on_delete=models.CASCADE)
    name = models.CharField(_("name"), max_length=100)
    role = models.CharField(_("role"), max_length=30, choices=Role.choices)
    prefix = models.CharField(max_length=12, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def is_usable(self, now: Any = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now


class AppendOnlyQuerySet(models.QuerySet):
    """Audit rows are never changed or deleted by the application. The database backs this up
    with triggers (see the core migrations)."""

    def update(self, **kwargs: Any) -> int:
        raise TypeError(f"{self.model.__name__} rows are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError(f"{self.model.__name__} rows are append-only")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError(f"{type(self).__name__} rows are append-only")


class Channel(models.TextChoices):
    UI = "ui", _("Staff web UI")
    API = "api", _("REST API")
    CLI = "cli", _("Command line")
    BULK = "bulk", _("Bulk job")
    EXPORT = "export", _("Export")
    PORTAL = "portal", _("Employer portal")


class AuditEvent(AppendOnlyModel):
    """One write: who, when, through which channel, what changed (field: [before, after])."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=150)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    action = models.CharField(max_length=60, db_index=True)
    entity_type = models.CharField(max_length=40)
    entity_id = models.CharField(max_length=40)
    # The person a change concerns, so a person's change history is one indexed query.
    person_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    changes = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["entity_type", "entity_id"], name="core_audit_entity")]


class AccessLogEntry(AppendOnlyModel):
    """One read of a person's record: who, when, through which channel and for what purpose."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=150)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    person_id = models.BigIntegerField(db_index=True)
    action = models.CharField(max_length=30)
    purpose = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at", "-id"]


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class Job(models.Model):
    """A background job on the database queue (see ``pilar.core.jobs``). Jobs take ids, not
    objects, and their functions are idempotent: a job whose worker died is run again once its
    lease has expired."""

    name = models.CharField(max_length=100)
    arguments = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    # A running job holds a lease; a worker that stops renewing it (crash, kill) loses the job
    # to the next worker once the lease has passed.
    leased_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "id"], name="core_job_queue")]
