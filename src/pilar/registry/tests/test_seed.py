"""``pilar seed``: valid identifiers, believable families and careers, duplicates with ground
truth, determinism, safe appends, one audit event, and refusal of bad arguments."""

from __future__ import annotations

import csv
import datetime
import hashlib
import itertools
import random
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from pilar.core.identifiers import (
    CURP,
    NSS,
    RFC,
    curp_birth_date,
    curp_sex,
    curp_state,
    curp_stem,
    validate_employer_registration,
    validate_identifier,
    validate_rfc,
)
from pilar.core.models import AuditEvent
from pilar.core.text import fold, normalized_full_name
from pilar.registry.models import (
    Address,
    Contact,
    Employer,
    Employment,
    EmploymentSalary,
    Enrolment,
    FamilyTie,
    Identifier,
    Person,
    Programme,
)
from pilar.registry.seeding import SeedArgumentError, SeedOptions, errors, seed_run, wages
from pilar.registry.seeding.employers import generate_employers
from pilar.registry.seeding.errors import NOISE_LEVELS
from pilar.registry.seeding.population import CHUNK_SIZE, ChunkGenerator

AS_OF = datetime.date(2026, 1, 15)
YEAR_DAYS = 365.2425

pytestmark = pytest.mark.django_db


def _seed(tmp_path: Path, **overrides: object) -> Path:
    values: dict[str, object] = {
        "persons": 300,
        "employers": 20,
        "seed": 7,
        "duplicates_share": Fraction(1, 10),
        "as_of": AS_OF,
        "ground_truth": tmp_path / "truth.csv",
        "workers": 1,
    }
    values.update(overrides)
    seed_run(SeedOptions(**values))  # type: ignore[arg-type]
    return Path(str(values["ground_truth"]))


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    return _seed(tmp_path)


def _ground_truth(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_identifier_is_valid_and_unique(seeded: Path) -> None:
    identifiers = list(Identifier.objects.all())
    assert identifiers
    for identifier in identifiers:
        valid = validate_identifier(identifier.scheme, identifier.value)
        assert valid.value == identifier.value
        assert identifier.issuing_country == "MX"
    values = Counter((i.scheme, i.value) for i in identifiers if i.is_active)
    assert max(values.values()) == 1
    persons = Person.objects.count()
    with_curp = Identifier.objects.filter(scheme=CURP).values("person").distinct().count()
    assert with_curp >= 0.85 * persons  # nearly everyone; duplicates often lack one
    assert Identifier.objects.filter(scheme=NSS).exists()
    assert Identifier.objects.filter(scheme=RFC).exists()


def test_curp_agrees_with_the_person(seeded: Path) -> None:
    for identifier in Identifier.objects.filter(scheme=CURP).select_related("person"):
        person = identifier.person
        curp = identifier.value
        assert curp_birth_date(curp) == person.birth_date  # positions 5–10
        assert curp_sex(curp) == person.sex  # position 11
        assert curp_state(curp) == person.birth_state  # positions 12–13
        # Positions 1–16 follow from the record's own data, for duplicates too.
        assert curp[:16] == curp_stem(
            given_names=person.given_names,
            paternal_surname=person.paternal_surname,
            maternal_surname=person.maternal_surname,
            birth_date=person.birth_date,
            sex=person.sex,
            birth_state=person.birth_state,
        )


def test_nss_and_rfc_carry_the_birth_year(seeded: Path) -> None:
    for identifier in Identifier.objects.filter(scheme__in=[NSS, RFC]).select_related("person"):
        birth = identifier.person.birth_date
        if identifier.scheme == NSS:
            assert identifier.value[4:6] == f"{birth.year % 100:02d}"
        else:
            validate_rfc(identifier.value, company=False)
            assert identifier.value[4:10] == f"{birth:%y%m%d}"


def test_persons_look_mexican(seeded: Path) -> None:
    persons = list(Person.objects.all())
    assert len(persons) == 300
    for person in persons:
        assert person.normalized_name == normalized_full_name(
            person.given_names, person.paternal_surname, person.maternal_surname
        )
        assert person.version == 1
        assert person.sex in {"F", "M"}
        assert person.paternal_surname or person.maternal_surname
        assert person.death_date is None or person.death_date >= person.birth_date
    two_surnames = sum(1 for p in persons if p.paternal_surname and p.maternal_surname)
    assert two_surnames >= 0.9 * len(persons)
    assert any(" " in p.given_names for p in persons)  # compound given names
    assert any(fold(p.paternal_surname) != p.paternal_surname.upper() for p in persons)  # accents


def test_duplicates_match_the_ground_truth(seeded: Path) -> None:
    rows = _ground_truth(seeded)
    assert len(rows) == 30  # exactly floor(300 × 0.1)
    duplicates = {int(row["duplicate_person_id"]) for row in rows}
    originals = {int(row["original_person_id"]) for row in rows}
    assert not duplicates & originals
    persons = Person.objects.in_bulk(duplicates | originals)
    assert len(persons) == len(duplicates | originals)
    for row in rows:
        duplicate = persons[int(row["duplicate_person_id"])]
        original = persons[int(row["original_person_id"])]
        assert row["errors"]
        assert duplicate.sex == original.sex
        assert (
            duplicate.given_names,
            duplicate.paternal_surname,
            duplicate.maternal_surname,
            duplicate.birth_date,
        ) != (
            original.given_names,
            original.paternal_surname,
            original.maternal_surname,
            original.birth_date,
        )
    without_curp = [row for row in rows if "curp_missing" in row["errors"]]
    assert 0 < len(without_curp) < len(rows)
    for row in without_curp:
        assert not Identifier.objects.filter(
            person_id=row["duplicate_person_id"], scheme=CURP
        ).exists()


def test_family_ties_are_consistent(seeded: Path) -> None:
    ties = list(FamilyTie.objects.select_related("person", "relative"))
    assert any(t.relation == "child" for t in ties)
    assert any(t.relation in {"spouse", "partner"} for t in ties)
    parents_of: dict[int, list[Person]] = {}
    for tie in ties:
        assert tie.person_id != tie.relative_id
        if tie.relation == "child":
            gap_years = (tie.relative.birth_date - tie.person.birth_date).days / YEAR_DAYS
            assert 18 <= gap_years <= 45
            parents_of.setdefault(tie.relative_id, []).append(tie.person)
        else:
            assert tie.relation in {"spouse", "partner"}
            assert tie.start_date is not None
            for partner in (tie.person, tie.relative):
                assert (tie.start_date - partner.birth_date).days / YEAR_DAYS >= 18
            assert tie.end_date is None or tie.end_date >= tie.start_date
    children = Person.objects.in_bulk(list(parents_of))
    for child_id, parents in parents_of.items():
        child = children[child_id]
        if len(parents) == 2:
            mother = next(p for p in parents if p.sex == "F")
            father = next(p for p in parents if p.sex == "M")
            assert child.paternal_surname == father.paternal_surname
            assert child.maternal_surname == mother.paternal_surname
        assert child.region == parents[0].region


def test_careers_are_ordered_and_paid_at_least_the_minimum_wage(seeded: Path) -> None:
    employments = list(Employment.objects.select_related("person", "employer"))
    assert employments
    for employment in employments:
        person = employment.person
        assert employment.end_date is None or employment.end_date >= employment.start_date
        assert employment.start_date >= employment.employer.registered_on
        assert (employment.start_date - person.birth_date).days / YEAR_DAYS >= 16
        if person.death_date is not None:
            assert employment.end_date is not None
            assert employment.end_date <= person.death_date
    for person_id in {e.person_id for e in employments}:
        periods = sorted(
            (e.start_date, e.end_date) for e in employments if e.person_id == person_id
        )
        for (_start, end), (next_start, _next_end) in itertools.pairwise(periods):
            assert end is not None
            assert end < next_start
    salaries = list(EmploymentSalary.objects.select_related("employment"))
    first_salary: dict[int, datetime.date] = {}
    for salary in salaries:
        employment = salary.employment
        assert employment.start_date <= salary.effective_from
        assert salary.effective_from <= (employment.end_date or AS_OF)
        minimum = Decimal(str(wages.minimum_wage(salary.effective_from.year)))
        assert salary.daily_salary >= minimum
        first = first_salary.get(employment.pk)
        if first is None or salary.effective_from < first:
            first_salary[employment.pk] = salary.effective_from
    assert all(first_salary[e.pk] == e.start_date for e in employments)


def test_employers_have_valid_identifiers(seeded: Path) -> None:
    employers = list(Employer.objects.all())
    assert len(employers) == 20
    for employer in employers:
        validate_rfc(employer.rfc, company=True)
        validate_employer_registration(employer.registration_number)
        assert employer.normalized_name == fold(employer.legal_name)
        assert employer.legal_name
    sizes = Counter(Employment.objects.values_list("employer_id", flat=True))
    # Heavy-tailed: the largest employer has far more jobs than the typical one.
    ordered = sorted(sizes.values(), reverse=True)
    assert ordered[0] >= 3 * ordered[len(ordered) // 2]


def test_adults_have_addresses_contacts_and_enrolments(seeded: Path) -> None:
    assert Address.objects.exists()
    assert Contact.objects.filter(kind="mobile").exists()
    for address in Address.objects.all():
        assert len(address.postal_code) == 5
        assert address.postal_code.isdigit()
    assert set(Programme.objects.values_list("code", flat=True)) >= {
        "PENSION_BIENESTAR",
        "IMSS_LEY73",
        "IMSS_LEY97",
    }
    for enrolment in Enrolment.objects.select_related("programme", "person"):
        assert enrolment.end_date is None or enrolment.end_date >= enrolment.start_date
        if enrolment.programme.code == "PENSION_BIENESTAR":
            assert (enrolment.start_date - enrolment.person.birth_date).days / YEAR_DAYS >= 65


def test_one_audit_event_for_the_run(seeded: Path) -> None:
    events = list(AuditEvent.objects.filter(action="seed.run"))
    assert len(events) == 1
    event = events[0]
    assert event.entity_type == "seed"
    assert event.actor_label == "seed"
    assert event.changes["counts"]["person"] == Person.objects.count()
    assert event.changes["parameters"]["seed"] == 7
    assert AuditEvent.objects.count() == 1  # no per-row events


def _digest() -> str:
    """The data of a run, independent of ids and timestamps."""
    first = Person.objects.order_by("id").values_list("id", flat=True).first() or 0
    digest = hashlib.sha256()
    querysets: list[Any] = [
        Person.objects.values_list(
            "id",
            "given_names",
            "paternal_surname",
            "maternal_surname",
            "sex",
            "birth_date",
            "region",
            "death_date",
        ),
        Identifier.objects.values_list("person_id", "scheme", "value"),
        Employment.objects.values_list("person_id", "start_date", "end_date", "job_title"),
    ]
    for queryset in querysets:
        for row in queryset.order_by("id"):
            person_id, *rest = row
            digest.update(repr((person_id - first, *rest)).encode())
    for value in EmploymentSalary.objects.order_by("id").values_list("daily_salary", flat=True):
        digest.update(str(value).encode())
    return digest.hexdigest()


def _flush() -> None:
    for model in (
        EmploymentSalary,
        Employment,
        Enrolment,
        FamilyTie,
        Contact,
        Address,
        Identifier,
        Person,
        Employer,
    ):
        model.objects.all().delete()


def test_same_seed_same_data_whatever_the_processes(tmp_path: Path) -> None:
    size = CHUNK_SIZE + 700  # two chunks, so that two processes share the work
    _seed(tmp_path, persons=size, employers=30, workers=1)
    first = _digest()
    first_truth = _ground_truth(tmp_path / "truth.csv")
    _flush()
    _seed(tmp_path, persons=size, employers=30, workers=2)
    assert _digest() == first
    second_truth = _ground_truth(tmp_path / "truth.csv")
    assert [r["errors"] for r in second_truth] == [r["errors"] for r in first_truth]
    _flush()
    _seed(tmp_path, persons=size, employers=30, workers=1, seed=8)
    assert _digest() != first


def test_generator_is_deterministic_without_a_database() -> None:
    employers = generate_employers(seed=3, count=10, as_of=AS_OF)
    assert generate_employers(seed=3, count=10, as_of=AS_OF) == employers

    def chunk() -> object:
        return ChunkGenerator(
            seed=3,
            as_of=AS_OF,
            total_persons=500,
            duplicates_share=Fraction(3, 100),
            employers=employers,
        ).generate(0)

    assert chunk() == chunk()


def test_population_spans_ages_like_mexico() -> None:
    employers = generate_employers(seed=5, count=200, as_of=AS_OF)
    generator = ChunkGenerator(
        seed=5,
        as_of=AS_OF,
        total_persons=4 * CHUNK_SIZE,
        duplicates_share=Fraction(0),
        employers=employers,
    )
    ages = []
    deceased_old = old = 0
    for index in range(4):
        for person in generator.generate(index).persons:
            age = (AS_OF.toordinal() - person[4]) / YEAR_DAYS
            ages.append(age)
            if age >= 80:
                old += 1
                deceased_old += person[8] is not None
    minors = sum(1 for age in ages if age < 18) / len(ages)
    elderly = sum(1 for age in ages if age >= 65) / len(ages)
    assert 0.2 <= minors <= 0.4
    assert 0.05 <= elderly <= 0.15
    assert min(ages) < 1
    assert max(ages) > 90
    assert deceased_old / old > 0.15


def test_appending_keeps_ids_and_identifiers_unique(tmp_path: Path) -> None:
    _seed(tmp_path)
    _seed(tmp_path)  # the same seed again: every identifier collides and is re-issued
    assert Person.objects.count() == 600
    repeated = (
        Identifier.objects.filter(is_active=True)
        .values("scheme", "issuing_country", "value")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not repeated.exists()
    for identifier in Identifier.objects.all():
        validate_identifier(identifier.scheme, identifier.value)
    assert Employer.objects.count() == 40
    assert AuditEvent.objects.filter(action="seed.run").count() == 2
    # New rows get ids past the seeded ones.
    assert (
        Person.objects.create(
            given_names="Ana",
            paternal_surname="Ruiz",
            sex="F",
            birth_date=datetime.date(1990, 1, 1),
            region="DF",
        ).pk
        > 600
    )


def test_command_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    call_command(
        "seed",
        "--persons",
        "50",
        "--employers",
        "5",
        "--seed",
        "1",
        "--as-of",
        "2026-01-15",
        "--ground-truth",
        str(tmp_path / "g.csv"),
    )
    output = capsys.readouterr().out
    assert "Seeded in" in output
    assert "person" in output
    assert "50" in output
    assert (
        (tmp_path / "g.csv").read_text().startswith("duplicate_person_id,original_person_id,errors")
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--persons", "0", "--employers", "5"], "--persons"),
        (["--persons", "-3", "--employers", "5"], "--persons"),
        (["--persons", "10", "--employers", "0"], "--employers"),
        (["--persons", "10", "--employers", "5", "--duplicates-share", "0.6"], "between 0 and 0.5"),
        (
            ["--persons", "10", "--employers", "5", "--duplicates-share", "-0.1"],
            "between 0 and 0.5",
        ),
    ],
)
def test_bad_arguments_are_refused_and_nothing_is_written(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("seed", *arguments, "--seed", "1", "--ground-truth", str(tmp_path / "g.csv"))
    assert not Person.objects.exists()
    assert not Employer.objects.exists()
    assert not AuditEvent.objects.exists()
    assert not (tmp_path / "g.csv").exists()


def test_invalid_options_raise_before_any_work() -> None:
    with pytest.raises(SeedArgumentError):
        seed_run(SeedOptions(persons=10, employers=1, seed=1, duplicates_share=Fraction(3, 4)))
    assert not Person.objects.exists()


@pytest.mark.parametrize("seed", range(6))
def test_generated_chunks_keep_their_invariants(seed: int) -> None:
    """The same checks as above, without a database, over several seeds (edge cases such as
    a couple whose younger partner has just turned eighteen)."""
    employers = generate_employers(seed=seed, count=30, as_of=AS_OF)
    draft = ChunkGenerator(
        seed=seed,
        as_of=AS_OF,
        total_persons=1500,
        duplicates_share=Fraction(1, 10),
        employers=employers,
    ).generate(0)
    persons = draft.persons
    for person, relative, relation, start, end in draft.ties:
        if relation == "child":
            assert 18 <= (persons[relative][4] - persons[person][4]) / YEAR_DAYS <= 45
        else:
            assert start is not None
            for partner in (person, relative):
                assert (start - persons[partner][4]) / YEAR_DAYS >= 18
            assert end is None or end >= start
    jobs: dict[int, list[tuple[int, int | None]]] = {}
    for person, employer, start, end, _title in draft.employments:
        assert end is None or end >= start
        assert start >= employers[employer].registered_on
        death = persons[person][8]
        assert death is None or (end is not None and end <= death)
        jobs.setdefault(person, []).append((start, end))
    for periods in jobs.values():
        for (_start, end), (next_start, _end) in itertools.pairwise(sorted(periods)):
            assert end is not None
            assert end < next_start
    days = set()
    for employment, effective, cents in draft.salaries:
        year = datetime.date.fromordinal(effective).year
        assert cents >= wages.minimum_wage_cents(year)
        assert (employment, effective) not in days
        days.add((employment, effective))
    for _person, scheme, value in draft.identifiers:
        validate_identifier(scheme, value)


# --- noise levels ------------------------------------------------------------------------------


def _duplicate_errors(noise: str, seed: int = 4) -> list[list[str]]:
    """The error codes of every duplicate of a half-duplicate chunk at a noise level."""
    draft = ChunkGenerator(
        seed=seed,
        as_of=AS_OF,
        total_persons=CHUNK_SIZE,
        duplicates_share=Fraction(1, 2),
        employers=generate_employers(seed=seed, count=20, as_of=AS_OF),
        noise=NOISE_LEVELS[noise],
    ).generate(0)
    return [codes.split(";") for _duplicate, _original, codes in draft.duplicates]


def _name_errors(codes: list[str]) -> list[str]:
    return [code for code in codes if code not in {errors.CURP_MISSING, errors.SECOND_NSS}]


def test_low_noise_is_mostly_one_accent_or_typo_and_few_missing_curps() -> None:
    duplicates = _duplicate_errors("low")
    assert len(duplicates) == CHUNK_SIZE // 2
    counts = Counter(len(_name_errors(codes)) for codes in duplicates)
    assert counts[1] / len(duplicates) >= 0.85
    assert max(counts) <= 2
    kinds = Counter(code for codes in duplicates for code in _name_errors(codes))
    assert (kinds[errors.ACCENTS_LOST] + kinds[errors.TYPO]) / sum(kinds.values()) >= 0.8
    assert kinds[errors.SURNAMES_SWAPPED] == kinds[errors.PARTICLES] == 0
    missing = sum(errors.CURP_MISSING in codes for codes in duplicates) / len(duplicates)
    assert 0.07 <= missing <= 0.13


def test_high_noise_has_every_kind_of_error_and_about_thirty_percent_missing_curps() -> None:
    duplicates = _duplicate_errors("high")
    counts = Counter(len(_name_errors(codes)) for codes in duplicates)
    assert set(counts) == {1, 2, 3}
    assert 0.5 <= counts[1] / len(duplicates) <= 0.7
    kinds = Counter(code for codes in duplicates for code in _name_errors(codes))
    for kind in (
        errors.ACCENTS_LOST,
        errors.SURNAMES_SWAPPED,
        errors.MATERNAL_MISSING,
        errors.PARTICLES,
        errors.NICKNAME,
        errors.TYPO,
        errors.DAY_MONTH_SWAPPED,
    ):
        assert kinds[kind] >= 20, kind
    missing = sum(errors.CURP_MISSING in codes for codes in duplicates) / len(duplicates)
    assert 0.26 <= missing <= 0.34
    low = Counter(len(_name_errors(codes)) for codes in _duplicate_errors("low"))
    assert sum(k * v for k, v in counts.items()) > sum(k * v for k, v in low.items())


def _with_particles(paternal: str, maternal: str, seed: int) -> errors.DuplicateRecord:
    record = errors.DuplicateRecord("Ana", paternal, maternal, 720_000)
    assert errors._particles(random.Random(seed), record)
    return record


def test_particles_are_dropped_added_recased_or_joined_with_y() -> None:
    dropped_or_recased = {
        _with_particles("de la Cruz", "Soto", seed).paternal for seed in range(20)
    }
    assert dropped_or_recased == {"Cruz", "De La Cruz"}
    assert {_with_particles("Ruiz", "del Río", seed).maternal for seed in range(20)} == {
        "Río",
        "Del Rio",
    }
    assert _with_particles("Cruz", "Soto", 1).paternal == "de la Cruz"
    joined = _with_particles("García", "López", 1)
    assert (joined.paternal, joined.maternal) == ("García", "y López")
    alone = errors.DuplicateRecord("Ana", "García", "", 720_000)
    assert not errors._particles(random.Random(1), alone)


def test_particle_duplicates_keep_their_features() -> None:
    """A particle error changes how a surname is written, not the linkage features."""
    from pilar.linkage.names import surname_std

    for seed in range(30):
        for paternal, maternal in (("de la Cruz", "Soto"), ("Ruiz", "del Río"), ("Paz", "Gil")):
            record = _with_particles(paternal, maternal, seed)
            assert {surname_std(record.paternal), surname_std(record.maternal)} == {
                surname_std(paternal),
                surname_std(maternal),
            }


def test_noise_is_recorded_and_the_ground_truth_keeps_its_name(
    tmp_path: Path, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.VAR_DIR = tmp_path
    call_command(
        "seed",
        "--persons",
        "200",
        "--employers",
        "5",
        "--seed",
        "21",
        "--as-of",
        "2026-01-15",
        "--duplicates-share",
        "0.2",
        "--noise",
        "low",
    )
    assert "low noise" in capsys.readouterr().out
    truth = tmp_path / "seed" / "ground_truth_21.csv"
    rows = _ground_truth(truth)
    assert len(rows) == 40
    assert not any(errors.PARTICLES in row["errors"] for row in rows)
    event = AuditEvent.objects.get(action="seed.run")
    assert event.changes["parameters"]["noise"] == "low"


def test_summary_reports_the_default_high_noise(tmp_path: Path) -> None:
    summary = seed_run(
        SeedOptions(
            persons=100,
            employers=5,
            seed=2,
            as_of=AS_OF,
            ground_truth=tmp_path / "truth.csv",
            workers=1,
        )
    )
    assert summary.noise == "high"
    event = AuditEvent.objects.get(action="seed.run")
    assert event.changes["parameters"]["noise"] == "high"


def test_an_unknown_noise_level_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(SeedArgumentError, match="--noise"):
        seed_run(SeedOptions(persons=10, employers=1, seed=1, noise="medium"))
    with pytest.raises(CommandError, match="medium"):
        call_command(
            "seed",
            "--persons",
            "10",
            "--employers",
            "1",
            "--seed",
            "1",
            "--noise",
            "medium",
            "--ground-truth",
            str(tmp_path / "g.csv"),
        )
    assert not Person.objects.exists()
    assert not AuditEvent.objects.exists()
    assert not (tmp_path / "g.csv").exists()
