"""Master data: persons and their identifiers, addresses, contacts and family ties; employers;
employments (working periods) with their salary history; programme enrolments.

Models hold data and invariants only; every write goes through ``services`` so it is validated
and audited. Normalised name columns are maintained by the services for search and the
possible-duplicate check.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.core.identifiers import SCHEME_CHOICES
from pilar.core.regions import BIRTH_STATE_CHOICES, STATE_CHOICES


class Sex(models.TextChoices):
    FEMALE = "F", _("Female")
    MALE = "M", _("Male")
    NON_BINARY = "X", _("Non-binary")


class RecordStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    INACTIVE = "inactive", _("Inactive")
    # Merged into another record of the same person (record linkage); kept, never deleted.
    MERGED = "merged", _("Merged")


class Person(models.Model):
    given_names = models.CharField(_("given names"), max_length=100)
    paternal_surname = models.CharField(_("paternal surname"), max_length=100, blank=True)
    maternal_surname = models.CharField(_("maternal surname"), max_length=100, blank=True)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices)
    birth_date = models.DateField(_("birth date"))
    birth_state = models.CharField(
        _("birth state"), max_length=2, blank=True, choices=BIRTH_STATE_CHOICES
    )
    birth_country = models.CharField(_("birth country"), max_length=2, default="MX")
    nationality = models.CharField(_("nationality"), max_length=2, default="MX")
    death_date = models.DateField(_("death date"), null=True, blank=True)
    # The state whose offices administer the person; scopes which staff may see the record.
    region = models.CharField(_("region"), max_length=2, choices=STATE_CHOICES)
    status = models.CharField(
        _("status"), max_length=10, choices=RecordStatus.choices, default=RecordStatus.ACTIVE
    )
    # 'PATERNAL MATERNAL GIVEN' folded to ASCII upper case: the sort key, the name-search column
    # (trigram-indexed on PostgreSQL) and, with the birth date, the duplicate-check key.
    normalized_name = models.CharField(max_length=310, editable=False)
    # The golden record this one was merged into (status ``merged``); cleared by an unmerge.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_records"
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("person")
        verbose_name_plural = _("persons")
        indexes = [
            models.Index(fields=["normalized_name", "birth_date"], name="registry_person_name_dob"),
            models.Index(fields=["region", "normalized_name"], name="registry_person_region_name"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(death_date__isnull=True) | Q(death_date__gte=F("birth_date")),
                name="registry_person_death_after_birth",
            ),
            models.CheckConstraint(
                condition=~Q(paternal_surname="", maternal_surname=""),
                name="registry_person_has_a_surname",
            ),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return " ".join(
            p for p in (self.given_names, self.paternal_surname, self.maternal_surname) if p
        )

    @property
    def is_deceased(self) -> bool:
        return self.death_date is not None


class Identifier(models.Model):
    """One identifier of a person. A value is unique per scheme and issuing country among active
    identifiers; deactivated ones stay for history (a replaced CURP, a merged record)."""

    person = models.ForeignKey(Person, related_name="identifiers", on_delete=models.PROTECT)
    scheme = models.CharField(_("type"), max_length=10, choices=SCHEME_CHOICES)
    value = models.CharField(_("value"), max_length=30)
    issuing_country = models.CharField(_("issuing country"), max_length=2, default="MX")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scheme", "issuing_country", "value"],
                condition=Q(is_active=True),
                name="registry_identifier_unique_active",
            )
        ]
        indexes = [models.Index(fields=["value"], name="registry_identifier_value")]

    def __str__(self) -> str:
        return f"{self.scheme} {self.value}"


class AddressKind(models.TextChoices):
    HOME = "home", _("Home")
    POSTAL = "postal", _("Postal")
    WORK = "work", _("Work")


class Address(models.Model):
    person = models.ForeignKey(Person, related_name="addresses", on_delete=models.PROTECT)
    kind = models.CharField(
        _("kind"), max_length=10, choices=AddressKind.choices, default=AddressKind.HOME
    )
    street = models.CharField(_("street and number"), max_length=200)
    neighbourhood = models.CharField(_("neighbourhood (colonia)"), max_length=120, blank=True)
    municipality = models.CharField(_("municipality"), max_length=120)
    state = models.CharField(_("state"), max_length=2, choices=STATE_CHOICES)
    postal_code = models.CharField(_("postal code"), max_length=5)
    country = models.CharField(_("country"), max_length=2, default="MX")
    valid_from = models.DateField(_("valid from"), default=timezone.localdate)
    valid_to = models.DateField(_("valid to"), null=True, blank=True)

    class Meta:
        ordering = ["-valid_from", "-id"]


class ContactKind(models.TextChoices):
    MOBILE = "mobile", _("Mobile phone")
    PHONE = "phone", _("Landline")
    EMAIL = "email", _("Email")


class Contact(models.Model):
    person = models.ForeignKey(Person, related_name="contacts", on_delete=models.PROTECT)
    kind = models.CharField(_("kind"), max_length=10, choices=ContactKind.choices)
    value = models.CharField(_("value"), max_length=200)
    is_preferred = models.BooleanField(_("preferred"), default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-is_preferred", "kind", "id"]


class Relation(models.TextChoices):
    SPOUSE = "spouse", _("Spouse")
    PARTNER = "partner", _("Partner (concubinato)")
    CHILD = "child", _("Child")
    PARENT = "parent", _("Parent")


# A tie is stored once, from one side; the other side reads it inverted.
INVERSE_RELATION: dict[str, str] = {
    Relation.SPOUSE.value: Relation.SPOUSE.value,
    Relation.PARTNER.value: Relation.PARTNER.value,
    Relation.CHILD.value: Relation.PARENT.value,
    Relation.PARENT.value: Relation.CHILD.value,
}


class FamilyTie(models.Model):
    """``relative`` is the ``relation`` of ``person``: (Ana, Luis, child) means Luis is Ana's
    child. Dates bound the tie (a marriage, a partnership); parent–child ties usually have none.
    """

    person = models.ForeignKey(Person, related_name="ties", on_delete=models.PROTECT)
    relative = models.ForeignKey(Person, related_name="inverse_ties", on_delete=models.PROTECT)
    relation = models.CharField(_("relation"), max_length=10, choices=Relation.choices)
    start_date = models.DateField(_("from"), null=True, blank=True)
    end_date = models.DateField(_("to"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(person=F("relative")), name="registry_tie_not_self"
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True)
                | Q(start_date__isnull=True)
                | Q(end_date__gte=F("start_date")),
                name="registry_tie_dates_ordered",
            ),
        ]


class Sector(models.TextChoices):
    """Economic sectors, SCIAN (the North American classification used in Mexico) level 1."""

    AGRICULTURE = "11", _("Agriculture, forestry, fishing and hunting")
    MINING = "21", _("Mining")
    UTILITIES = "22", _("Electricity, water and gas")
    CONSTRUCTION = "23", _("Construction")
    MANUFACTURING = "31", _("Manufacturing")
    WHOLESALE = "43", _("Wholesale trade")
    RETAIL = "46", _("Retail trade")
    TRANSPORT = "48", _("Transport, postal and warehousing")
    INFORMATION = "51", _("Information and media")
    FINANCE = "52", _("Finance and insurance")
    REAL_ESTATE = "53", _("Real estate and rental")
    PROFESSIONAL = "54", _("Professional, scientific and technical services")
    ADMINISTRATIVE = "56", _("Business support and waste management")
    EDUCATION = "61", _("Education")
    HEALTH = "62", _("Health care and social assistance")
    RECREATION = "71", _("Arts, entertainment and recreation")
    HOSPITALITY = "72", _("Accommodation and food services")
    OTHER_SERVICES = "81", _("Other services")
    GOVERNMENT = "93", _("Government")


class EmployerStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    CLOSED = "closed", _("Closed")


class Employer(models.Model):
    rfc = models.CharField(_("RFC"), max_length=13, unique=True)
    registration_number = models.CharField(
        _("employer registration number"), max_length=11, unique=True
    )
    legal_name = models.CharField(_("legal name"), max_length=250)
    trade_name = models.CharField(_("trade name"), max_length=250, blank=True)
    sector = models.CharField(_("sector"), max_length=2, choices=Sector.choices)
    street = models.CharField(_("street and number"), max_length=200)
    municipality = models.CharField(_("municipality"), max_length=120)
    state = models.CharField(_("state"), max_length=2, choices=STATE_CHOICES)
    postal_code = models.CharField(_("postal code"), max_length=5)
    status = models.CharField(
        _("status"), max_length=10, choices=EmployerStatus.choices, default=EmployerStatus.ACTIVE
    )
    registered_on = models.DateField(_("registered on"), default=timezone.localdate)
    normalized_name = models.CharField(max_length=250, editable=False, db_index=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("employer")
        verbose_name_plural = _("employers")

    def __str__(self) -> str:
        return self.legal_name


class Employment(models.Model):
    """A working period of a person with an employer (alta to baja)."""

    person = models.ForeignKey(Person, related_name="employments", on_delete=models.PROTECT)
    employer = models.ForeignKey(Employer, related_name="employments", on_delete=models.PROTECT)
    start_date = models.DateField(_("start date"))
    end_date = models.DateField(_("end date"), null=True, blank=True)
    job_title = models.CharField(_("job title"), max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-start_date", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="registry_employment_dates_ordered",
            )
        ]
        indexes = [
            models.Index(fields=["employer", "end_date"], name="registry_employment_employer")
        ]


class EmploymentSalary(models.Model):
    """The daily base salary (SBC) of an employment from a date on: the hire salary and every
    salary change (modificación de salario). Contribution records come with declarations."""

    employment = models.ForeignKey(Employment, related_name="salaries", on_delete=models.PROTECT)
    effective_from = models.DateField(_("effective from"))
    daily_salary = models.DecimalField(
        _("daily base salary (SBC)"), max_digits=12, decimal_places=2
    )

    class Meta:
        ordering = ["-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["employment", "effective_from"], name="registry_salary_once_per_day"
            ),
            models.CheckConstraint(
                condition=Q(daily_salary__gt=0), name="registry_salary_positive"
            ),
        ]


class Programme(models.Model):
    code = models.CharField(_("code"), max_length=30, unique=True)
    name_es = models.CharField(_("name (Spanish)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def name(self, language: str | None) -> str:
        return self.name_en if (language or "").startswith("en") else self.name_es


class EnrolmentStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    ENDED = "ended", _("Ended")


class Enrolment(models.Model):
    person = models.ForeignKey(Person, related_name="enrolments", on_delete=models.PROTECT)
    programme = models.ForeignKey(Programme, related_name="enrolments", on_delete=models.PROTECT)
    start_date = models.DateField(_("start date"))
    end_date = models.DateField(_("end date"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=EnrolmentStatus.choices, default=EnrolmentStatus.ACTIVE
    )

    class Meta:
        ordering = ["-start_date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="registry_enrolment_dates_ordered",
            )
        ]
