"""Record linkage: trained models, runs, scored pairs and their review, merges, and the indexed
match keys that the point-of-entry check reads.

Models hold data and invariants only; every write goes through ``services`` (audited).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class LinkageModel(models.Model):
    """A trained Fellegi–Sunter model, saved and versioned. ``definition`` is the model file
    (Pilar's envelope around Splink's JSON: see ``linkage.model``); a version is never edited,
    retraining makes the next version."""

    name = models.CharField(_("name"), max_length=40, default="persons")
    version = models.PositiveIntegerField(_("version"))
    definition = models.JSONField()
    # The feature code version and Splink version the model was trained with; a model whose
    # feature version differs from the running code's is refused at load.
    feature_version = models.PositiveIntegerField()
    splink_version = models.CharField(max_length=20)
    sha256 = models.CharField(max_length=64)
    # Match weight (log2 Bayes factor) thresholds: at or above ``auto_link_weight`` a pair with
    # no identifier conflict is linked without review; between the two it goes to review.
    auto_link_weight = models.FloatField(_("auto-link threshold"), default=12.0)
    review_weight = models.FloatField(_("review threshold"), default=3.0)
    # What the model was trained on, its m/u summary and any accuracy figures measured.
    summary = models.JSONField(default=dict)
    is_active = models.BooleanField(default=False)
    trained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="linkage_model_version"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(is_active=True), name="linkage_model_one_active"
            ),
            models.CheckConstraint(
                condition=Q(auto_link_weight__gt=models.F("review_weight")),
                name="linkage_model_thresholds_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class RunKind(models.TextChoices):
    DEDUPE = "dedupe", _("Registry deduplication")
    LINK = "link", _("External list linkage")
    CROSS_PROGRAMME = "cross_programme", _("Cross-programme check")
    TRAIN = "train", _("Model training")


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class LinkageRun(models.Model):
    """One batch job. A run's pairs are written in one transaction at its end, so a failed or
    interrupted run leaves nothing behind but its own row with the error."""

    kind = models.CharField(_("kind"), max_length=20, choices=RunKind.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED
    )
    model = models.ForeignKey(
        LinkageModel, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    backend = models.CharField(max_length=10, default="duckdb")
    # What the run reads: for a list linkage the stored file (content-addressed under
    # var/linkage/), for a cross-programme check the two programmes or lists.
    parameters = models.JSONField(default=dict)
    source_name = models.CharField(max_length=200, blank=True)
    source_sha256 = models.CharField(max_length=64, blank=True)
    records = models.PositiveIntegerField(default=0)
    # Blocking analysis: pairs generated per blocking rule (and cumulatively); pair
    # completeness when the truth is known.
    blocking = models.JSONField(default=dict)
    pairs_scored = models.BigIntegerField(default=0)
    auto_linked = models.PositiveIntegerField(default=0)
    for_review = models.PositiveIntegerField(default=0)
    clusters = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    job = models.ForeignKey(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class PairStatus(models.TextChoices):
    AUTO_LINKED = "auto_linked", _("Linked automatically")
    PENDING = "pending", _("Awaiting review")
    SAME = "same", _("Same person")
    DIFFERENT = "different", _("Different persons")
    SKIPPED = "skipped", _("Skipped")


class MatchPair(models.Model):
    """A scored pair: two registry records, or (list linkage) one row of an external list and a
    registry record. ``breakdown`` holds each comparison's level, values and partial weight as
    computed by ``linkage.scoring`` so the reviewer sees exactly why the model scored it."""

    run = models.ForeignKey(LinkageRun, on_delete=models.CASCADE, related_name="pairs")
    left_person = models.ForeignKey(
        "registry.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # For an external list: the row number and the row as read (after validation).
    left_row = models.PositiveIntegerField(null=True, blank=True)
    left_record = models.JSONField(default=dict, blank=True)
    right_person = models.ForeignKey("registry.Person", on_delete=models.PROTECT, related_name="+")
    match_weight = models.FloatField()
    match_probability = models.FloatField()
    breakdown = models.JSONField(default=list)
    # A CURP or NSS present on both sides that disagrees: never linked without review.
    identifier_conflict = models.BooleanField(default=False)
    cluster = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=12, choices=PairStatus.choices)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-match_weight", "id"]
        indexes = [models.Index(fields=["status", "-match_weight"], name="linkage_pair_queue")]
        constraints = [
            models.CheckConstraint(
                condition=Q(left_person__isnull=False) | Q(left_row__isnull=False),
                name="linkage_pair_has_left",
            ),
        ]


class Merge(models.Model):
    """Two records of one person made one. The merged record stays (status ``merged``, pointing
    at the golden record); its dependent rows are moved and listed in ``moved`` so an unmerge
    puts every one of them back."""

    golden = models.ForeignKey("registry.Person", on_delete=models.PROTECT, related_name="+")
    merged = models.ForeignKey("registry.Person", on_delete=models.PROTECT, related_name="+")
    pair = models.ForeignKey(
        MatchPair, null=True, blank=True, on_delete=models.SET_NULL, related_name="merges"
    )
    reason = models.CharField(_("reason"), max_length=300)
    # {"app_label.Model.field": [ids]} of the rows moved from the merged to the golden record.
    moved = models.JSONField(default=dict)
    # The golden record's fields before the merge (a steward may take values from the merged
    # record) and the merged record's fields, so an unmerge restores both exactly.
    golden_before = models.JSONField(default=dict)
    merged_before = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    unmerged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    unmerged_at = models.DateTimeField(null=True, blank=True)
    unmerge_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(golden=models.F("merged")), name="linkage_merge_two_records"
            ),
            # A record is merged into at most one golden record at a time.
            models.UniqueConstraint(
                fields=["merged"],
                condition=Q(unmerged_at__isnull=True),
                name="linkage_merge_once",
            ),
        ]


class MatchKey(models.Model):
    """The features of one registry person, stored with indexes so the point-of-entry check
    finds candidates by blocking key in the database (milliseconds at a million persons) and
    scores them with the active model's weights. Kept current by the registry services."""

    person = models.OneToOneField(
        "registry.Person", primary_key=True, on_delete=models.CASCADE, related_name="match_key"
    )
    feature_version = models.PositiveIntegerField()
    derived_stem = models.CharField(max_length=16)
    curp = models.CharField(max_length=18, blank=True)
    nss = models.CharField(max_length=11, blank=True)
    given_std = models.CharField(max_length=100)
    given_main = models.CharField(max_length=50)
    given_phon = models.CharField(max_length=30)
    paternal_std = models.CharField(max_length=100, blank=True)
    maternal_std = models.CharField(max_length=100, blank=True)
    paternal_phon = models.CharField(max_length=30, blank=True)
    maternal_phon = models.CharField(max_length=30, blank=True)
    surnames_sorted = models.CharField(max_length=201)
    birth_date = models.DateField()
    sex = models.CharField(max_length=1)
    birth_state = models.CharField(max_length=2, blank=True)
    # Every feature column as JSON, so the scorer gets exactly what Splink saw.
    features = models.JSONField()

    class Meta:
        indexes = [
            models.Index(fields=["derived_stem"], name="linkage_key_stem"),
            models.Index(fields=["curp"], name="linkage_key_curp"),
            models.Index(fields=["nss"], name="linkage_key_nss"),
            models.Index(fields=["birth_date", "paternal_phon"], name="linkage_key_dob_pat"),
            models.Index(fields=["birth_date", "given_phon"], name="linkage_key_dob_given"),
            models.Index(fields=["surnames_sorted", "given_phon"], name="linkage_key_names"),
        ]
