"""Registration and change services: entry filters, duplicate warning, permissions, region scope,
audit events and versioning. Runs on the real database (SQLite or PostgreSQL)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.utils import translation

from pilar.core.actor import Actor
from pilar.core.errors import NotFound, PermissionDenied, ValidationFailed
from pilar.core.identifiers import CURP, NSS, curp_complete, curp_stem
from pilar.core.models import AuditEvent
from pilar.core.roles import Role
from pilar.core.tests.factories import actor
from pilar.linkage.models import MatchKey
from pilar.registry import services
from pilar.registry.models import (
    Address,
    Contact,
    Employment,
    EmploymentSalary,
    FamilyTie,
    Identifier,
    Person,
)
from pilar.registry.services import PossibleDuplicate, StaleVersion
from pilar.registry.tests.factories import (
    EmployerFactory,
    PersonFactory,
    ProgrammeFactory,
    person_with_curp,
    valid_nss,
)
from pilar.registry.validation import (
    AddressData,
    ContactData,
    EmployerData,
    IdentifierData,
    PersonData,
)

pytestmark = pytest.mark.django_db


def _data(**overrides: object) -> PersonData:
    values: dict[str, object] = {
        "given_names": "José Luis",
        "paternal_surname": "Núñez",
        "maternal_surname": "Peña",
        "sex": "M",
        "birth_date": datetime.date(1975, 3, 9),
        "birth_state": "JC",
        "region": "JC",
    }
    values.update(overrides)
    return PersonData(**values)  # type: ignore[arg-type]


def _curp(data: PersonData, homonymy: int = 0) -> str:
    assert data.birth_date is not None
    stem = curp_stem(
        given_names=data.given_names,
        paternal_surname=data.paternal_surname,
        maternal_surname=data.maternal_surname,
        birth_date=data.birth_date,
        sex=data.sex,
        birth_state=data.birth_state,
    )
    return curp_complete(stem, data.birth_date, homonymy)


def _codes(error: ValidationFailed) -> dict[str, set[str]]:
    return {name: {e.code for e in errors} for name, errors in error.field_errors.items()}


@pytest.fixture
def registrar() -> Actor:
    return actor(Role.REGISTRAR, region="JC")


class TestPersonRegister:
    def test_registers_person_with_identifiers_address_contact_and_audits(
        self, registrar: Actor
    ) -> None:
        data = _data()
        curp = _curp(data)
        nss = valid_nss()
        person = services.person_register(
            actor=registrar,
            data=data,
            identifiers=[IdentifierData(CURP, curp.lower()), IdentifierData(NSS, nss)],
            address=AddressData(
                street="Av. Hidalgo 12", municipality="Zapopan", state="JC", postal_code="45100"
            ),
            contacts=[ContactData(kind="mobile", value="33 1234 5678", is_preferred=True)],
        )
        assert person.normalized_name == "NUNEZ PENA JOSE LUIS"
        assert set(person.identifiers.values_list("scheme", "value")) == {(CURP, curp), (NSS, nss)}
        assert Address.objects.get(person=person).postal_code == "45100"
        assert Contact.objects.get(person=person).value == "3312345678"
        event = AuditEvent.objects.get(action="person.register")
        assert event.person_id == person.pk
        assert event.actor_label == registrar.label
        assert event.channel == "ui"
        assert event.changes["given_names"] == [None, "José Luis"]
        assert event.changes["identifier.CURP"] == [None, curp]

    def test_collects_every_field_error_and_writes_nothing(self, registrar: Actor) -> None:
        data = _data(
            given_names="",
            paternal_surname="",
            maternal_surname="",
            sex="Q",
            birth_date=datetime.date(2999, 1, 1),
            birth_state="ZZ",
            region="JC",
        )
        with pytest.raises(ValidationFailed) as caught:
            services.person_register(
                actor=registrar, data=data, identifiers=[IdentifierData(CURP, "NOT-A-CURP")]
            )
        codes = _codes(caught.value)
        assert codes["given_names"] == {"required"}
        assert codes["paternal_surname"] == {"person.surname_required"}
        assert codes["sex"] == {"invalid_choice"}
        assert codes["birth_date"] == {"date.in_future"}
        assert codes["birth_state"] == {"invalid_choice"}
        assert codes["identifiers[0]"] == {"curp.invalid_length"}
        assert Person.objects.count() == 0
        assert AuditEvent.objects.count() == 0

    @pytest.mark.parametrize(
        ("mutate", "code"),
        [
            (lambda c: c[:-1] + str((int(c[-1]) + 1) % 10), "curp.invalid_check_digit"),
            (lambda c: "1234" + c[4:], "curp.invalid_format"),
        ],
    )
    def test_rejects_malformed_curp(
        self, registrar: Actor, mutate: Callable[[str], str], code: str
    ) -> None:
        data = _data()
        with pytest.raises(ValidationFailed) as caught:
            services.person_register(
                actor=registrar, data=data, identifiers=[IdentifierData(CURP, mutate(_curp(data)))]
            )
        assert code in _codes(caught.value)["identifiers[0]"]

    def test_curp_must_agree_with_birth_date_sex_and_state(self, registrar: Actor) -> None:
        curp = _curp(_data())
        data = _data(birth_date=datetime.date(1975, 3, 10), sex="F", birth_state="DF")
        with pytest.raises(ValidationFailed) as caught:
            services.person_register(
                actor=registrar, data=data, identifiers=[IdentifierData(CURP, curp)]
            )
        assert _codes(caught.value)["identifiers[0]"] == {
            "curp.birth_date_mismatch",
            "curp.sex_mismatch",
            "curp.birth_state_mismatch",
        }

    def test_death_must_follow_birth(self, registrar: Actor) -> None:
        with pytest.raises(ValidationFailed) as caught:
            services.person_register(
                actor=registrar, data=_data(death_date=datetime.date(1970, 1, 1))
            )
        assert _codes(caught.value) == {"death_date": {"person.death_before_birth"}}

    def test_same_identifier_never_registered_twice(self, registrar: Actor) -> None:
        existing, curp = person_with_curp()
        data = _data(
            given_names="Otra",
            birth_date=existing.birth_date,
            sex=existing.sex,
            birth_state=existing.birth_state,
        )
        with pytest.raises(ValidationFailed) as caught:
            services.person_register(
                actor=registrar, data=data, identifiers=[IdentifierData(CURP, curp)]
            )
        assert "identifier.already_registered" in _codes(caught.value)["identifiers[0]"]
        assert Person.objects.count() == 1

    def test_inactive_identifier_can_be_reused(self, registrar: Actor) -> None:
        data = _data()
        old = PersonFactory.create(
            given_names="José Luis",
            paternal_surname="Núñez",
            maternal_surname="Peña",
            sex="M",
            birth_date=data.birth_date,
            birth_state="JC",
        )
        Identifier.objects.create(person=old, scheme=CURP, value=_curp(data), is_active=False)
        person = services.person_register(
            actor=registrar,
            data=data,
            identifiers=[IdentifierData(CURP, _curp(data))],
            acknowledge_possible_duplicate=True,
        )
        assert person.identifiers.get().is_active

    def test_possible_duplicate_warns_then_registers_when_acknowledged(
        self, registrar: Actor
    ) -> None:
        existing = PersonFactory.create(
            given_names="José Luis",
            paternal_surname="Nuñez",
            maternal_surname="PEÑA",
            sex="M",
            birth_date=datetime.date(1975, 3, 9),
        )
        # Different accents and case: the normalised names still match.
        with pytest.raises(PossibleDuplicate) as caught:
            services.person_register(actor=registrar, data=_data())
        assert [c["id"] for c in caught.value.extra["candidates"]] == [existing.pk]
        assert Person.objects.count() == 1
        person = services.person_register(
            actor=registrar, data=_data(), acknowledge_possible_duplicate=True
        )
        note = AuditEvent.objects.get(person_id=person.pk).note
        assert str(existing.pk) in note

    def test_needs_register_permission(self) -> None:
        with pytest.raises(PermissionDenied):
            services.person_register(actor=actor(Role.AUDITOR), data=_data())
        assert Person.objects.count() == 0

    def test_regional_staff_register_only_in_their_region(self, registrar: Actor) -> None:
        with pytest.raises(PermissionDenied):
            services.person_register(actor=registrar, data=_data(region="NL"))
        person = services.person_register(actor=registrar, data=_data(region=""))
        assert person.region == "JC"

    def test_national_scope_role_registers_anywhere(self) -> None:
        steward = actor(Role.DATA_STEWARD, region="DF")
        assert services.person_register(actor=steward, data=_data(region="NL")).region == "NL"

    def test_born_abroad_needs_consistent_birth_place(self, registrar: Actor) -> None:
        with pytest.raises(ValidationFailed) as caught:
            services.person_register(actor=registrar, data=_data(birth_country="GT"))
        assert _codes(caught.value) == {"birth_state": {"person.birth_place_inconsistent"}}
        person = services.person_register(
            actor=registrar, data=_data(birth_country="GT", birth_state="", nationality="GT")
        )
        assert person.birth_state == "NE"

    def test_oversized_and_invalid_names(self, registrar: Actor) -> None:
        with pytest.raises(ValidationFailed) as caught:
            services.person_register(
                actor=registrar, data=_data(given_names="A" * 101, paternal_surname="=HYPERLINK(1)")
            )
        assert _codes(caught.value) == {
            "given_names": {"too_long"},
            "paternal_surname": {"name.invalid_characters"},
        }


class TestLinkageAtEntry:
    """The duplicate check is record linkage: not only identical normalised names."""

    def test_a_nickname_and_swapped_surnames_are_caught_with_the_evidence(
        self, registrar: Actor
    ) -> None:
        existing = services.person_register(
            actor=registrar, data=_data(), identifiers=[IdentifierData(CURP, _curp(_data()))]
        )
        typed = _data(given_names="Pepe Luis", paternal_surname="Pena", maternal_surname="Nunez")

        with pytest.raises(PossibleDuplicate) as caught:
            services.person_register(actor=registrar, data=typed)

        (candidate,) = caught.value.extra["candidates"]
        assert candidate["id"] == existing.pk
        assert candidate["name"] == "José Luis Núñez Peña"
        assert candidate["match_weight"] > 0
        assert 0 < candidate["match_probability"] <= 1
        assert candidate["identifier_conflict"] is False
        assert {"surnames", "birth_date"} <= set(candidate["agreeing"])
        assert Person.objects.count() == 1

        person = services.person_register(
            actor=registrar, data=typed, acknowledge_possible_duplicate=True
        )
        assert f"{existing.pk} (" in AuditEvent.objects.get(person_id=person.pk).note
        assert person.match_key.features["given_canon"] == "JOSE LUIS"

    def test_a_different_person_with_common_surnames_registers_without_warning(
        self, registrar: Actor
    ) -> None:
        services.person_register(actor=registrar, data=_data())
        other = _data(given_names="Ana Sofía", sex="F", birth_date=datetime.date(1975, 8, 30))

        assert services.person_register(actor=registrar, data=other).pk

    def test_an_update_that_makes_a_record_look_like_another_warns(self, registrar: Actor) -> None:
        existing = services.person_register(actor=registrar, data=_data())
        other = services.person_register(
            actor=registrar,
            data=_data(given_names="Ana Sofía", sex="F", birth_date=datetime.date(1991, 6, 15)),
        )
        changes = {"given_names": "José Luis", "sex": "M", "birth_date": datetime.date(1975, 3, 9)}

        with pytest.raises(PossibleDuplicate) as caught:
            services.person_update(actor=registrar, person_id=other.pk, changes=changes)
        assert [c["id"] for c in caught.value.extra["candidates"]] == [existing.pk]
        other.refresh_from_db()
        assert other.given_names == "Ana Sofía"
        # A change that leaves names and birth date alone does not ask again.
        services.person_update(actor=registrar, person_id=existing.pk, changes={"region": "JC"})

        updated = services.person_update(
            actor=registrar,
            person_id=other.pk,
            changes=changes,
            acknowledge_possible_duplicate=True,
        )
        assert updated.match_key.given_std == "JOSE LUIS"
        event = AuditEvent.objects.get(action="person.update", person_id=other.pk)
        assert str(existing.pk) in event.note


def _row(row: int, **overrides: object) -> services.PersonRow:
    data = _data(**overrides)
    return services.PersonRow(row=row, data=data)


class TestBatchRegistration:
    def test_registers_every_row_in_one_go(self, registrar: Actor) -> None:
        rows = [
            _row(2),
            _row(3, given_names="Ana Sofía", sex="F", birth_date=datetime.date(1990, 2, 1)),
            services.PersonRow(
                row=4,
                data=_data(given_names="Rosa", paternal_surname="Ortega", sex="F"),
                identifiers=[IdentifierData(NSS, valid_nss())],
                address=AddressData(
                    street="Av. Hidalgo 12", municipality="Zapopan", state="JC", postal_code="45100"
                ),
            ),
        ]

        persons = services.person_register_batch(actor=registrar, rows=rows)

        assert [p.given_names for p in persons] == ["José Luis", "Ana Sofía", "Rosa"]
        assert Person.objects.count() == 3
        assert persons[2].identifiers.get().scheme == NSS
        assert persons[2].addresses.get().postal_code == "45100"
        notes = set(AuditEvent.objects.values_list("note", flat=True))
        assert notes == {"bulk row 2", "bulk row 3", "bulk row 4"}
        assert {key.person_id for key in MatchKey.objects.all()} == {p.pk for p in persons}

    def test_one_invalid_row_writes_nothing_and_every_problem_is_reported(
        self, registrar: Actor
    ) -> None:
        existing = services.person_register(actor=registrar, data=_data())
        rows = [
            _row(2, given_names="Ana Sofía", sex="F", birth_date=datetime.date(1991, 6, 15)),
            _row(3, given_names="", birth_date=datetime.date(2999, 1, 1)),
            _row(4, given_names="Pepe Luis"),
            _row(5, region="NL", given_names="Rosa", sex="F", birth_date=datetime.date(1960, 1, 1)),
        ]

        with pytest.raises(services.BatchInvalid) as caught:
            services.person_register_batch(actor=registrar, rows=rows)

        reports = {report.row: report for report in caught.value.reports}
        assert set(reports) == {3, 4, 5}
        assert set(reports[3].errors) == {"given_names", "birth_date"}
        assert [c.person_id for c in reports[4].candidates] == [existing.pk]
        assert set(reports[5].errors) == {"region"}
        document = caught.value.extra["rows"]
        assert [item["row"] for item in document] == [3, 4, 5]
        assert document[0]["errors"][0]["field"] == "given_names"
        assert Person.objects.count() == 1
        assert AuditEvent.objects.filter(action="person.register").count() == 1

    def test_candidates_block_until_their_rows_are_acknowledged(self, registrar: Actor) -> None:
        existing = services.person_register(actor=registrar, data=_data())
        rows = [
            _row(2, given_names="Pepe Luis"),
            _row(3, given_names="Ana Sofía", sex="F", birth_date=datetime.date(1990, 2, 1)),
            # The same person as row 3, typed again further down the list.
            _row(4, given_names="Ana Sofia", sex="F", birth_date=datetime.date(1990, 1, 2)),
        ]

        with pytest.raises(services.BatchPossibleDuplicates) as caught:
            services.person_register_batch(actor=registrar, rows=rows, acknowledge={2})
        reports = {report.row: report for report in caught.value.reports}
        assert set(reports) == {2, 4}
        assert reports[2].acknowledged
        assert not reports[2].blocked
        assert [c.person_id for c in reports[2].candidates] == [existing.pk]
        assert [item["row"] for item in reports[4].batch_candidates] == [3]
        assert "birth_date" in reports[4].batch_candidates[0]["agreeing"]
        assert Person.objects.count() == 1

        persons = services.person_register_batch(actor=registrar, rows=rows, acknowledge={2, 4})

        assert len(persons) == 3
        notes = AuditEvent.objects.filter(action="person.register").values_list("note", flat=True)
        assert any(f"{existing.pk} (" in note and "bulk row 2" in note for note in notes)
        assert any("same person as row 3" in note for note in notes)

    def test_an_identifier_on_two_rows_is_an_error(self, registrar: Actor) -> None:
        nss = valid_nss()
        rows = [
            services.PersonRow(row=1, data=_data(), identifiers=[IdentifierData(NSS, nss)]),
            services.PersonRow(
                row=2,
                data=_data(given_names="Rosa", paternal_surname="Ortega", sex="F"),
                identifiers=[IdentifierData(NSS, nss)],
            ),
        ]

        with pytest.raises(services.BatchInvalid) as caught, translation.override("en"):
            services.person_register_batch(actor=registrar, rows=rows)

        (report,) = caught.value.reports
        assert report.row == 2
        assert _codes(ValidationFailed(report.errors)) == {
            "identifiers[0]": {"identifier.repeated_in_batch"}
        }
        assert str(report.errors["identifiers[0]"][0].message) == "This NSS is also on row 1."
        assert not Person.objects.exists()

    def test_bad_batches_are_refused(self, registrar: Actor) -> None:
        with pytest.raises(ValidationFailed) as caught:
            services.person_register_batch(actor=registrar, rows=[])
        assert _codes(caught.value) == {"rows": {"required"}}

        with pytest.raises(ValidationFailed) as caught:
            services.person_register_batch(actor=registrar, rows=[_row(1)], acknowledge={1, 9})
        assert _codes(caught.value) == {"acknowledge": {"batch.unknown_rows"}}

        with pytest.raises(services.BatchInvalid) as invalid:
            services.person_register_batch(
                actor=registrar, rows=[_row(1), _row(1, given_names="Rosa", sex="F")]
            )
        assert set(invalid.value.reports[0].errors) == {"row"}

        with pytest.raises(PermissionDenied):
            services.person_register_batch(actor=actor(Role.AUDITOR), rows=[_row(1)])
        assert not Person.objects.exists()


class TestPersonUpdate:
    def test_changes_fields_bumps_version_and_records_before_after(self, registrar: Actor) -> None:
        person = PersonFactory.create()
        updated = services.person_update(
            actor=registrar,
            person_id=person.pk,
            changes={"maternal_surname": "Gómez"},
            expected_version=1,
        )
        assert updated.version == 2
        assert updated.normalized_name == "HERNANDEZ GOMEZ MARIA GUADALUPE"
        event = AuditEvent.objects.get(action="person.update")
        assert event.changes == {"maternal_surname": ["López", "Gómez"]}

    def test_stale_version_is_refused(self, registrar: Actor) -> None:
        person = PersonFactory.create()
        services.person_update(
            actor=registrar,
            person_id=person.pk,
            changes={"maternal_surname": "Gómez"},
            expected_version=1,
        )
        with pytest.raises(StaleVersion):
            services.person_update(
                actor=registrar,
                person_id=person.pk,
                changes={"maternal_surname": "Ruiz"},
                expected_version=1,
            )
        person.refresh_from_db()
        assert person.maternal_surname == "Gómez"

    def test_unknown_field_is_an_error(self, registrar: Actor) -> None:
        person = PersonFactory.create()
        with pytest.raises(ValidationFailed) as caught:
            services.person_update(actor=registrar, person_id=person.pk, changes={"salary": 1})
        assert _codes(caught.value) == {"salary": {"field.unknown"}}

    def test_change_contradicting_curp_is_refused(self, registrar: Actor) -> None:
        person, _curp_value = person_with_curp()
        with pytest.raises(ValidationFailed) as caught:
            services.person_update(
                actor=registrar,
                person_id=person.pk,
                changes={"birth_date": datetime.date(1981, 1, 1)},
            )
        assert "curp.birth_date_mismatch" in _codes(caught.value)["identifiers"]

    def test_another_region_is_not_found(self) -> None:
        person = PersonFactory.create(region="NL")
        with pytest.raises(NotFound):
            services.person_update(
                actor=actor(Role.REGISTRAR, region="JC"),
                person_id=person.pk,
                changes={"given_names": "Ana"},
            )

    def test_recording_death(self, registrar: Actor) -> None:
        person = PersonFactory.create()
        updated = services.person_update(
            actor=registrar, person_id=person.pk, changes={"death_date": datetime.date(2020, 4, 2)}
        )
        assert updated.is_deceased

    def test_no_change_writes_no_event(self, registrar: Actor) -> None:
        person = PersonFactory.create()
        services.person_update(
            actor=registrar, person_id=person.pk, changes={"given_names": person.given_names}
        )
        assert not AuditEvent.objects.exists()


class TestIdentifiersAddressesContacts:
    def test_add_and_deactivate_identifier(self, registrar: Actor) -> None:
        person = PersonFactory.create()
        nss = valid_nss()
        identifier = services.identifier_add(
            actor=registrar, person_id=person.pk, data=IdentifierData(NSS, nss)
        )
        with pytest.raises(ValidationFailed):
            services.identifier_add(
                actor=registrar, person_id=person.pk, data=IdentifierData(NSS, valid_nss())
            )
        with pytest.raises(ValidationFailed):
            services.identifier_deactivate(actor=registrar, identifier_id=identifier.pk, reason=" ")
        services.identifier_deactivate(
            actor=registrar, identifier_id=identifier.pk, reason="Número duplicado del IMSS"
        )
        identifier.refresh_from_db()
        assert not identifier.is_active
        assert AuditEvent.objects.filter(person_id=person.pk).count() == 2

    def test_nss_check_digit(self, registrar: Actor) -> None:
        person = PersonFactory.create()
        nss = valid_nss()
        wrong = nss[:-1] + str((int(nss[-1]) + 1) % 10)
        with pytest.raises(ValidationFailed) as caught:
            services.identifier_add(
                actor=registrar, person_id=person.pk, data=IdentifierData(NSS, wrong)
            )
        assert _codes(caught.value) == {"identifiers[0]": {"nss.invalid_check_digit"}}

    def test_foreign_identifier_needs_country(self, registrar: Actor) -> None:
        person = PersonFactory.create()
        with pytest.raises(ValidationFailed) as caught:
            services.identifier_add(
                actor=registrar, person_id=person.pk, data=IdentifierData("PASSPORT", "X1234567")
            )
        assert _codes(caught.value) == {"identifiers[0]": {"identifier.issuing_country_required"}}
        added = services.identifier_add(
            actor=registrar,
            person_id=person.pk,
            data=IdentifierData("PASSPORT", "x1234567", issuing_country="gt"),
        )
        assert (added.value, added.issuing_country) == ("X1234567", "GT")

    def test_new_address_closes_previous_one(self, registrar: Actor) -> None:
        person = PersonFactory.create()
        first = services.address_add(
            actor=registrar,
            person_id=person.pk,
            data=AddressData(
                street="Calle 1",
                municipality="Tonalá",
                state="JC",
                postal_code="45400",
                valid_from=datetime.date(2010, 1, 1),
            ),
        )
        services.address_add(
            actor=registrar,
            person_id=person.pk,
            data=AddressData(
                street="Calle 2",
                municipality="Zapopan",
                state="JC",
                postal_code="45100",
                valid_from=datetime.date(2020, 6, 1),
            ),
        )
        first.refresh_from_db()
        assert first.valid_to == datetime.date(2020, 5, 31)

    def test_bad_postal_code_and_email(self, registrar: Actor) -> None:
        person = PersonFactory.create()
        with pytest.raises(ValidationFailed) as caught:
            services.address_add(
                actor=registrar,
                person_id=person.pk,
                data=AddressData(street="x", municipality="y", state="JC", postal_code="4510"),
            )
        assert _codes(caught.value) == {"postal_code": {"postal_code.invalid"}}
        with pytest.raises(ValidationFailed):
            services.contact_add(
                actor=registrar,
                person_id=person.pk,
                data=ContactData(kind="email", value="not-an-email"),
            )
        assert not Address.objects.exists()
        assert not Contact.objects.exists()


class TestFamilyTies:
    def test_parent_tie_is_stored_once_as_child_tie(self, registrar: Actor) -> None:
        parent = PersonFactory.create(birth_date=datetime.date(1960, 1, 1))
        child = PersonFactory.create(given_names="Luis", birth_date=datetime.date(1990, 1, 1))
        tie = services.family_tie_create(
            actor=registrar, person_id=child.pk, relative_id=parent.pk, relation="parent"
        )
        assert (tie.person_id, tie.relative_id, tie.relation) == (parent.pk, child.pk, "child")
        # Both persons' histories show the tie.
        assert (
            AuditEvent.objects.filter(
                action="family_tie.create", person_id__in=[parent.pk, child.pk]
            ).count()
            == 2
        )

    def test_child_must_be_younger(self, registrar: Actor) -> None:
        older = PersonFactory.create(birth_date=datetime.date(1950, 1, 1))
        younger = PersonFactory.create(given_names="Luis", birth_date=datetime.date(1990, 1, 1))
        with pytest.raises(ValidationFailed) as caught:
            services.family_tie_create(
                actor=registrar, person_id=younger.pk, relative_id=older.pk, relation="child"
            )
        assert "tie.child_not_younger" in _codes(caught.value)["relative_id"]
        assert not FamilyTie.objects.exists()

    def test_one_open_union_at_a_time(self, registrar: Actor) -> None:
        a = PersonFactory.create()
        b = PersonFactory.create(given_names="Pedro", sex="M")
        c = PersonFactory.create(given_names="Juan", sex="M")
        tie = services.family_tie_create(
            actor=registrar,
            person_id=a.pk,
            relative_id=b.pk,
            relation="spouse",
            start_date=datetime.date(2005, 5, 5),
        )
        with pytest.raises(ValidationFailed) as caught:
            services.family_tie_create(
                actor=registrar, person_id=a.pk, relative_id=c.pk, relation="partner"
            )
        assert "tie.union_exists" in _codes(caught.value)["relative_id"]
        services.family_tie_end(actor=registrar, tie_id=tie.pk, end_date=datetime.date(2015, 1, 1))
        services.family_tie_create(
            actor=registrar, person_id=a.pk, relative_id=c.pk, relation="partner"
        )
        assert FamilyTie.objects.count() == 2

    def test_self_tie_refused(self, registrar: Actor) -> None:
        a = PersonFactory.create()
        with pytest.raises(ValidationFailed):
            services.family_tie_create(
                actor=registrar, person_id=a.pk, relative_id=a.pk, relation="spouse"
            )


class TestEmployersAndEmployments:
    def _employer_data(self, **overrides: object) -> EmployerData:
        values: dict[str, object] = {
            "rfc": "CAF850101A16",
            "registration_number": "Y5412345108",
            "legal_name": "Cafetería La Perla S.A. de C.V.",
            "sector": "72",
            "street": "Av. Vallarta 1500",
            "municipality": "Guadalajara",
            "state": "JC",
            "postal_code": "44130",
        }
        values.update(overrides)
        return EmployerData(**values)  # type: ignore[arg-type]

    def test_register_employer_and_refuse_duplicate_rfc(self, registrar: Actor) -> None:
        employer = services.employer_register(actor=registrar, data=self._employer_data())
        assert employer.normalized_name == "CAFETERIA LA PERLA S A DE C V"
        with pytest.raises(ValidationFailed) as caught:
            services.employer_register(
                actor=registrar, data=self._employer_data(registration_number="Y5412345109")
            )
        assert _codes(caught.value) == {"rfc": {"employer.rfc_taken"}}

    def test_employer_rfc_check_digit(self, registrar: Actor) -> None:
        with pytest.raises(ValidationFailed) as caught:
            services.employer_register(
                actor=registrar, data=self._employer_data(rfc="CAF850101A17")
            )
        assert _codes(caught.value) == {"rfc": {"rfc.invalid_check_digit"}}

    def test_employer_update_audits_diff(self, registrar: Actor) -> None:
        employer = services.employer_register(actor=registrar, data=self._employer_data())
        services.employer_update(
            actor=registrar,
            employer_id=employer.pk,
            changes={"status": "suspended"},
            expected_version=1,
        )
        event = AuditEvent.objects.get(action="employer.update")
        assert event.changes == {"status": ["active", "suspended"]}

    def test_employment_with_salary_history(self, registrar: Actor) -> None:
        person = PersonFactory.create()
        employer = EmployerFactory.create()
        employment = services.employment_create(
            actor=registrar,
            person_id=person.pk,
            employer_id=employer.pk,
            start_date=datetime.date(2010, 2, 1),
            daily_salary=Decimal("250.50"),
        )
        services.employment_salary_change(
            actor=registrar,
            employment_id=employment.pk,
            effective_from=datetime.date(2015, 1, 1),
            daily_salary=Decimal("410.00"),
        )
        services.employment_end(
            actor=registrar, employment_id=employment.pk, end_date=datetime.date(2019, 12, 31)
        )
        salaries = EmploymentSalary.objects.filter(employment=employment)
        assert [s.daily_salary for s in salaries] == [Decimal("410.00"), Decimal("250.50")]
        assert Employment.objects.get().end_date == datetime.date(2019, 12, 31)
        assert list(
            AuditEvent.objects.filter(person_id=person.pk)
            .values_list("action", flat=True)
            .order_by("id")
        ) == ["employment.create", "employment.salary_change", "employment.end"]

    def test_employment_filters(self, registrar: Actor) -> None:
        person = PersonFactory.create(birth_date=datetime.date(2000, 1, 1))
        employer = EmployerFactory.create()
        with pytest.raises(ValidationFailed) as caught:
            services.employment_create(
                actor=registrar,
                person_id=person.pk,
                employer_id=employer.pk,
                start_date=datetime.date(2010, 1, 1),
                daily_salary=Decimal("-1"),
            )
        assert _codes(caught.value) == {
            "start_date": {"employment.under_age"},
            "daily_salary": {"salary.out_of_range"},
        }
        services.employment_create(
            actor=registrar,
            person_id=person.pk,
            employer_id=employer.pk,
            start_date=datetime.date(2020, 1, 1),
        )
        with pytest.raises(ValidationFailed) as caught:
            services.employment_create(
                actor=registrar,
                person_id=person.pk,
                employer_id=employer.pk,
                start_date=datetime.date(2021, 1, 1),
            )
        assert _codes(caught.value) == {"start_date": {"employment.overlaps"}}

    def test_enrolment(self, registrar: Actor) -> None:
        person = PersonFactory.create(birth_date=datetime.date(1950, 1, 1))
        ProgrammeFactory.create()
        enrolment = services.enrolment_create(
            actor=registrar,
            person_id=person.pk,
            programme_code="PENSION_BIENESTAR",
            start_date=datetime.date(2019, 1, 1),
        )
        with pytest.raises(ValidationFailed):
            services.enrolment_create(
                actor=registrar,
                person_id=person.pk,
                programme_code="PENSION_BIENESTAR",
                start_date=datetime.date(2019, 1, 1),
            )
        services.enrolment_set_status(
            actor=registrar, enrolment_id=enrolment.pk, status="ended", on=datetime.date(2024, 1, 1)
        )
        enrolment.refresh_from_db()
        assert (enrolment.status, enrolment.end_date) == ("ended", datetime.date(2024, 1, 1))


class TestReadsAreLogged:
    def test_history_read_is_logged_unless_the_page_logged_the_record(
        self, registrar: Actor
    ) -> None:
        from pilar.core.models import AccessLogEntry
        from pilar.registry import selectors

        person = PersonFactory.create()
        selectors.person_history(actor=registrar, person_id=person.pk, purpose="aclaración")
        entry = AccessLogEntry.objects.get()
        assert (entry.person_id, entry.action, entry.purpose) == (
            person.pk,
            "history",
            "aclaración",
        )
        selectors.person_record(actor=registrar, person_id=person.pk)
        selectors.person_history(actor=registrar, person_id=person.pk, already_logged=True)
        assert list(AccessLogEntry.objects.order_by("id").values_list("action", flat=True)) == [
            "history",
            "view",
        ]
