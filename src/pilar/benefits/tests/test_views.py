"""The benefits staff screens through Django's test client: the claims queue and its marks, entering
a claim (fields generated from the kind's inputs, the inputs preview, errors in the summary),
adjudication, maker–checker through the buttons, the plain-language explanation of grants and
denials in both languages, the letter, the award page, the person page's section, and who may do
what.

The first part tests the explanation presenter on a hand-built engine result, without a database:
what the claim page says must not depend on what the shipped packages happen to contain.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any, cast

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from pilar.benefits import services
from pilar.benefits.forms import declared_value
from pilar.benefits.models import Award, Claim, Decision
from pilar.benefits.templatetags.benefits import explain, format_value, formula_in_words
from pilar.core.actor import Actor
from pilar.core.models import User
from pilar.core.roles import Role
from pilar.core.tests.factories import staff
from pilar.registry.models import Employment, Person
from pilar.registry.tests.factories import EmploymentFactory, person_with_curp
from pilar.rules.explanation import BenefitInfo, Node, Result

# --- the explanation presenter (no database) ----------------------------------------------------

WEEKS = Node(
    name="semanas_cotizadas",
    kind="input",
    type="number",
    value=Decimal(430),
    unit="weeks",
    label={"es": "Semanas cotizadas", "en": "Weeks of contribution"},
)
MINIMUM_WEEKS = Node(
    name="semanas_minimas",
    kind="parameter",
    type="number",
    value=Decimal(500),
    unit="weeks",
    label={"es": "Semanas de cotización mínimas", "en": "Minimum weeks of contribution"},
    reference="LSS 1973 art. 138 fr. II",
    parameter={
        "valid_from": datetime.date(1973, 4, 1),
        "valid_until": None,
        "recorded": datetime.date(1973, 3, 12),
        "source": "DOF 12-03-1973",
        "needs_verification": True,
    },
)
AGE = Node(
    name="edad",
    kind="input",
    type="number",
    value=Decimal(66),
    unit="years",
    label={"es": "Edad", "en": "Age"},
)
ELIGIBLE = Node(
    name="elegible_vejez",
    kind="conditions",
    type="bool",
    value=False,
    reference="LSS 1973 art. 138",
    label={"es": "Tiene derecho a la pensión de vejez", "en": "Entitled to the old-age pension"},
    conditions=(
        {
            "test": "semanas_cotizadas >= semanas_minimas",
            "holds": False,
            "left": Decimal(430),
            "operator": ">=",
            "right": Decimal(500),
            "reference": "LSS 1973 art. 138 fr. II",
            "label": {"es": "Tener 500 semanas cotizadas", "en": "Have 500 weeks of contribution"},
            "type": "number",
            "left_name": "semanas_cotizadas",
            "right_name": "semanas_minimas",
        },
        {
            "test": "edad >= 65",
            "holds": True,
            "left": Decimal(66),
            "operator": ">=",
            "right": Decimal(65),
            "reference": "LSS 1973 art. 138 fr. I",
            "label": {"es": "Tener 65 años cumplidos", "en": "Be 65 or older"},
            "type": "number",
            "left_name": "edad",
            "right_name": None,
        },
    ),
    children=(WEEKS, MINIMUM_WEEKS, AGE),
)
PENSION = Node(
    name="pension_vejez",
    kind="formula",
    type="number",
    value=Decimal("8123.456"),
    unit="pesos per month",
    label={"es": "Pensión mensual", "en": "Monthly pension"},
    reference="LSS 1973 art. 167",
    formula="round(pension_anual / 12, 2)",
    children=(
        Node(
            name="pension_anual",
            kind="input",
            type="number",
            value=Decimal("97481.47"),
            unit="pesos per year",
            label={"es": "Pensión anual", "en": "Annual pension"},
        ),
    ),
)


def result(*, eligible: bool) -> dict[str, Any]:
    conditions = ELIGIBLE
    if eligible:
        conditions = Node(**{**ELIGIBLE.__dict__, "value": True, "conditions": ()})
    values: dict[str, Any] = {"elegible_vejez": eligible}
    explanation: tuple[Node, ...] = (conditions,)
    if eligible:
        values["pension_vejez"] = PENSION.value
        explanation = (conditions, PENSION)
    return Result(
        package="imss_1973",
        version="1.0.0",
        content_hash="ab" * 32,
        on=datetime.date(2026, 3, 1),
        known_at=datetime.date(2026, 3, 1),
        values=values,
        explanation=explanation,
        benefits={
            "vejez": BenefitInfo(
                name="vejez",
                label={"es": "Pensión de vejez", "en": "Old-age pension"},
                eligible="elegible_vejez",
                amount="pension_vejez",
                frequency="monthly",
            )
        },
    ).to_dict()


def test_a_denial_says_why_not_with_the_threshold_and_the_article() -> None:
    with translation.override("es"):
        explanation = explain(result(eligible=False), "vejez")
    assert explanation.eligible is False
    assert [unmet.sentence for unmet in explanation.why_not] == [
        "Semanas cotizadas: 430 semanas; se requieren 500 semanas"
    ]
    assert explanation.why_not[0].reference == "LSS 1973 art. 138 fr. II"
    # The condition that holds is listed in the steps as met, not as a reason.
    conditions = explanation.steps[0].conditions
    assert [(c.holds, c.label) for c in conditions] == [
        (False, "Tener 500 semanas cotizadas"),
        (True, "Tener 65 años cumplidos"),
    ]


def test_the_explanation_follows_the_request_language() -> None:
    with translation.override("en"):
        explanation = explain(result(eligible=False), "vejez")
    assert explanation.why_not[0].sentence == (
        "Weeks of contribution: 430 weeks; 500 weeks required"
    )
    assert explanation.steps[0].label == "Entitled to the old-age pension"


def test_a_grant_starts_with_the_amount_and_marks_unverified_parameters() -> None:
    with translation.override("es"):
        explanation = explain(result(eligible=True), "vejez")
    assert explanation.why_not == ()
    assert explanation.amount == "$ 8,123.46"
    assert [step.name for step in explanation.steps] == ["pension_vejez", "elegible_vejez"]
    amount_step = explanation.steps[0]
    assert amount_step.value == "$ 8,123.46 mensuales"
    assert amount_step.formula_words == "redondeo de (Pensión anual ÷ 12, 2)"
    assert amount_step.reference == "LSS 1973 art. 167"
    parameter = next(s for s in explanation.steps[1].children if s.name == "semanas_minimas")
    assert parameter.needs_verification
    assert parameter.parameter is not None
    assert parameter.parameter.valid_from == datetime.date(1973, 4, 1)
    assert parameter.parameter.source == "DOF 12-03-1973"
    assert explanation.unverified == 1


def test_an_unreadable_stored_result_is_reported_not_raised() -> None:
    explanation = explain({"values": {}}, "vejez")
    assert explanation.error
    assert explanation.steps == ()


@pytest.mark.parametrize(
    ("value", "type_name", "unit", "spanish"),
    [
        (Decimal("0.8"), "number", "fraction", "80 %"),
        ("1234.5", "number", "pesos", "$ 1,234.50"),
        (Decimal("6400"), "number", "pesos per two months", "$ 6,400.00 bimestrales"),
        (
            Decimal("12.3456789"),
            "number",
            "times the minimum wage",
            "12.3457 veces el salario mínimo",
        ),
        (True, "bool", None, "Sí"),
        ("2021-07-01", "date", None, "1 Jul 2021"),
        (None, "number", None, "—"),
    ],
)
def test_values_read_as_people_write_them(
    value: Any, type_name: str, unit: Any, spanish: str
) -> None:
    with translation.override("es"):
        assert format_value(value, type_name, unit).lower() == spanish.lower()


def test_formulas_in_words_use_the_labels_of_their_names() -> None:
    labels = {"cuantia_basica": "Cuantía básica", "tabla_167.incremento_anual": "Incremento anual"}
    with translation.override("es"):
        words = formula_in_words(
            "if edad >= 65 and not tiene_empleo then (cuantia_basica + "
            "tabla_167.incremento_anual) * 365 else 0",
            labels,
        )
    assert words == (
        "si edad ≥ 65 y no tiene_empleo entonces (Cuantía básica + Incremento anual) × 365 "
        "en otro caso 0"
    )


def test_declared_numbers_are_stored_exactly() -> None:
    assert declared_value(Decimal("1.000")) == 1
    assert declared_value(Decimal("2.50")) == "2.5"
    assert declared_value(datetime.date(2026, 1, 2)) == "2026-01-02"
    assert declared_value(True) is True


# --- the screens --------------------------------------------------------------------------------

BIENESTAR = "bienestar:pension_bienestar"
BIENESTAR_FACTS = {
    "reside_en_mexico": True,
    "mexicano_o_residente_25": True,
    "municipio_indigena": False,
}
VEJEZ = "imss_1973:vejez"


def officer(username: str, region: str = "JC") -> User:
    return staff(Role.BENEFITS_OFFICER, username=username, region=region)


def signed_in(user: User, language: str = "es") -> Client:
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def htmx(client: Client, url: str) -> Any:
    return client.get(url, headers={"HX-Request": "true"})


def person_aged(years: int, **fields: Any) -> tuple[Person, str]:
    """A person in Jalisco who is ``years`` old today (born on 1 January), with a CURP."""
    birth = datetime.date(timezone.localdate().year - years, 1, 1)
    return person_with_curp(birth_date=birth, **fields)


def enter(
    user: User,
    person: Person,
    kind: str = BIENESTAR,
    declared: dict[str, Any] | None = None,
) -> Claim:
    package, benefit = kind.split(":")
    return services.claim_create(
        actor=Actor.for_user(user, channel="ui"),
        person_id=person.pk,
        package=package,
        benefit=benefit,
        claim_date=timezone.localdate(),
        declared=BIENESTAR_FACTS if declared is None else declared,
    )


def adjudicated(user: User, person: Person, **kwargs: Any) -> Decision:
    claim = enter(user, person, **kwargs)
    return services.claim_adjudicate(actor=Actor.for_user(user, channel="ui"), claim_id=claim.pk)


def claim_url(claim_id: int) -> str:
    return reverse("benefits:claim_detail", args=[claim_id])


def new_claim_url(person: Person, kind: str = BIENESTAR) -> str:
    return f"{reverse('benefits:claim_new')}?person={person.pk}&kind={kind}"


def text_of(response: Any) -> str:
    """The page's text with tags and runs of whitespace removed, for assertions on sentences."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())).strip()


@pytest.mark.django_db
class TestWhoMayDoWhat:
    def test_staff_without_claim_view_get_no_link_and_a_403(self) -> None:
        client = signed_in(staff(Role.REGISTRAR))
        assert "Prestaciones" not in client.get(reverse("core:home")).content.decode()
        assert client.get(reverse("benefits:claim_queue")).status_code == 403
        assert client.get(reverse("benefits:claim_new")).status_code == 403

    def test_officers_find_the_queue_in_the_navigation(self) -> None:
        home = signed_in(officer("ana")).get(reverse("core:home"))
        navigation = home.content.decode().split('aria-label="Principal"')[1].split("</nav>")[0]
        assert reverse("benefits:claim_queue") in navigation
        assert "Prestaciones" in navigation

    def test_auditors_read_claims_but_cannot_act_on_them(self) -> None:
        maker = officer("ana")
        person, _curp = person_aged(70)
        decision = adjudicated(maker, person)
        other, _curp = person_aged(71, given_names="Luz")
        entered = enter(maker, other)
        client = signed_in(staff(Role.AUDITOR))
        page = client.get(claim_url(decision.claim_id))
        assert page.status_code == 200
        assert "Aprobar" not in page.content.decode()
        # An entered claim's inputs preview is for officers; auditors still read the claim.
        entered_page = client.get(claim_url(entered.pk))
        assert entered_page.status_code == 200
        assert "Dictaminar" not in entered_page.content.decode()
        assert "Reside en México" in entered_page.content.decode()
        assert client.get(reverse("benefits:claim_new")).status_code == 403
        refused = client.post(reverse("benefits:decision_approve", args=[decision.pk]))
        assert refused.status_code == 403
        decision.refresh_from_db()
        assert decision.status == "pending"

    def test_a_claim_of_another_region_is_not_found(self) -> None:
        person, _curp = person_aged(70)
        claim = enter(officer("ana"), person)
        elsewhere = signed_in(officer("luis", region="NL"))
        assert elsewhere.get(claim_url(claim.pk)).status_code == 404
        adjudicate = reverse("benefits:claim_adjudicate", args=[claim.pk])
        assert elsewhere.post(adjudicate).status_code == 404
        claim.refresh_from_db()
        assert claim.status == "entered"


@pytest.mark.django_db
class TestQueue:
    def test_decisions_awaiting_me_are_marked_and_filterable(self) -> None:
        maker, checker = officer("ana"), officer("beto")
        first, _curp = person_aged(70, given_names="Rosa")
        second, _curp = person_aged(71, given_names="Luz")
        decided = adjudicated(maker, first).claim
        entered = enter(maker, second)
        queue = reverse("benefits:claim_queue")

        as_checker = signed_in(checker, "en").get(queue)
        rows = {row.claim.pk: row for row in as_checker.context["rows"]}
        assert rows[decided.pk].awaiting_me
        assert not rows[entered.pk].awaiting_me
        assert "Awaits your approval" in as_checker.content.decode()

        as_maker = signed_in(maker, "en").get(queue)
        rows = {row.claim.pk: row for row in as_maker.context["rows"]}
        assert not rows[decided.pk].awaiting_me
        assert rows[decided.pk].awaiting_other
        assert "Awaits your approval" not in as_maker.content.decode()

        mine = signed_in(checker, "en").get(queue, {"mine": "on"})
        assert [row.claim.pk for row in mine.context["rows"]] == [decided.pk]
        assert signed_in(maker, "en").get(queue, {"mine": "on"}).context["rows"] == []

    def test_filters_by_status_and_kind(self) -> None:
        user = officer("ana")
        person, _curp = person_aged(70)
        claim = enter(user, person)
        client = signed_in(user, "en")
        queue = reverse("benefits:claim_queue")
        by_status = client.get(queue, {"status": "entered"})
        assert [row.claim.pk for row in by_status.context["rows"]] == [claim.pk]
        assert client.get(queue, {"status": "granted"}).context["rows"] == []
        assert [r.claim.pk for r in client.get(queue, {"kind": BIENESTAR}).context["rows"]] == [
            claim.pk
        ]
        assert client.get(queue, {"kind": VEJEZ}).context["rows"] == []
        invalid = client.get(queue, {"status": "nonsense"})
        assert invalid.status_code == 422
        assert "error-summary" in invalid.content.decode()


@pytest.mark.django_db
class TestNewClaim:
    def test_a_curp_leads_straight_to_the_claimant(self) -> None:
        person, curp = person_aged(70)
        response = signed_in(officer("ana")).get(reverse("benefits:claim_new"), {"q": curp})
        assert response.status_code == 302
        assert response["Location"].endswith(f"?person={person.pk}")

    def test_the_declared_facts_are_fields_generated_from_the_kind(self) -> None:
        person, _curp = person_aged(70)
        client = signed_in(officer("ana"))
        spanish = client.get(new_claim_url(person)).content.decode()
        assert re.search(r'<input type="checkbox" name="fact_reside_en_mexico"', spanish)
        assert "Reside en México" in spanish
        english = signed_in(officer("beto"), "en").get(new_claim_url(person)).content.decode()
        assert "Lives in Mexico" in english
        vejez = client.get(new_claim_url(person, VEJEZ)).content.decode()
        assert re.search(r'<input type="number" name="fact_padres_dependientes"', vejez)

    def test_choosing_the_kind_with_htmx_returns_the_claim_form(self) -> None:
        person, _curp = person_aged(70)
        response = htmx(signed_in(officer("ana")), new_claim_url(person))
        html = response.content.decode()
        assert response.status_code == 200
        assert 'id="claim-form-area"' in html
        assert "<html" not in html

    def test_the_inputs_are_previewed_before_the_claim_is_saved(self) -> None:
        person, _curp = person_aged(70)
        client = signed_in(officer("ana"))
        fields = {
            "claim_date": timezone.localdate().isoformat(),
            "fact_reside_en_mexico": "on",
            "fact_mexicano_o_residente_25": "on",
        }
        preview = client.post(new_claim_url(person), {**fields, "action": "preview"})
        assert preview.status_code == 200
        text = text_of(preview)
        assert "Datos que usaría el dictamen" in text
        assert "Padrón" in text  # the age comes from the registry
        assert "Declarado en la solicitud" in text
        assert "Guardar la solicitud" in text
        assert not Claim.objects.exists()

        digest = preview.context["form"].data["previewed"]
        saved = client.post(
            new_claim_url(person), {**fields, "action": "save", "previewed": digest}
        )
        claim = Claim.objects.get()
        assert saved.status_code == 302
        assert saved["Location"] == claim_url(claim.pk)
        assert claim.declared == {
            "reside_en_mexico": True,
            "mexicano_o_residente_25": True,
            "municipio_indigena": False,
        }

    def test_saving_values_that_were_not_previewed_previews_them_first(self) -> None:
        person, _curp = person_aged(70)
        client = signed_in(officer("ana"), "en")
        response = client.post(
            new_claim_url(person),
            {
                "claim_date": timezone.localdate().isoformat(),
                "fact_reside_en_mexico": "on",
                "action": "save",
                "previewed": "stale",
            },
        )
        assert response.status_code == 200
        assert "The claim changed after its preview" in text_of(response)
        assert response.context["preview"] is not None
        assert not Claim.objects.exists()

    def test_refusals_are_form_errors_in_the_summary(self) -> None:
        person, _curp = person_aged(70)
        client = signed_in(officer("ana"), "en")
        tomorrow = timezone.localdate() + datetime.timedelta(days=1)
        response = client.post(
            new_claim_url(person), {"claim_date": tomorrow.isoformat(), "action": "preview"}
        )
        assert response.status_code == 422
        summary = response.content.decode().split('class="error-summary"')[1].split("</div>")[0]
        assert "The date cannot be in the future." in summary
        assert 'href="#id_claim_date"' in summary
        assert not Claim.objects.exists()

    def test_a_number_fact_is_required_unless_optional(self) -> None:
        person, _curp = person_aged(70)
        response = signed_in(officer("ana"), "en").post(
            new_claim_url(person, VEJEZ),
            {"claim_date": timezone.localdate().isoformat(), "action": "preview"},
        )
        assert response.status_code == 422
        assert "fact_padres_dependientes" in response.context["form"].errors
        assert "fact_hijos_estudiantes" not in response.context["form"].errors

    def test_an_unknown_kind_is_an_error_not_a_crash(self) -> None:
        person, _curp = person_aged(70)
        response = signed_in(officer("ana"), "en").get(new_claim_url(person, "nope:nothing"))
        assert response.status_code == 422
        assert "error-summary" in response.content.decode()


@pytest.mark.django_db
class TestMakerChecker:
    def test_a_grant_is_explained_and_approved_by_a_second_officer(self) -> None:
        maker, checker = officer("ana"), officer("beto")
        person, _curp = person_aged(70)
        claim = enter(maker, person)
        as_maker = signed_in(maker)

        adjudicate = reverse("benefits:claim_adjudicate", args=[claim.pk])
        done = as_maker.post(adjudicate, {"version": claim.version})
        assert done.status_code == 302
        decision = Decision.objects.get(claim=claim)
        assert decision.outcome == "granted"

        page = as_maker.get(claim_url(claim.pk))
        text = text_of(page)
        assert "En espera de otro servidor público" in text
        assert "Cómo se decidió, paso a paso" in text
        assert "Monto bimestral" in text  # the package's own label, in Spanish
        assert "por verificar contra el DOF" in text
        assert f'action="{reverse("benefits:decision_approve", args=[decision.pk])}"' not in (
            page.content.decode()
        )

        # The maker pressing "approve" anyway hears why, and nothing changes.
        refused = signed_in(maker, "en").post(
            reverse("benefits:decision_approve", args=[decision.pk]), follow=True
        )
        assert refused.status_code == 200
        assert "Another officer must check this decision" in text_of(refused)
        decision.refresh_from_db()
        assert decision.status == "pending"

        as_checker = signed_in(checker)
        checker_page = as_checker.get(claim_url(claim.pk)).content.decode()
        assert f'action="{reverse("benefits:decision_approve", args=[decision.pk])}"' in (
            checker_page
        )
        claim.refresh_from_db()
        approved = as_checker.post(
            reverse("benefits:decision_approve", args=[decision.pk]),
            {"version": claim.version},
            follow=True,
        )
        award = Award.objects.get(claim=claim)
        assert reverse("benefits:award_detail", args=[award.pk]) in approved.content.decode()

        award_page = as_checker.get(reverse("benefits:award_detail", args=[award.pk]))
        award_text = text_of(award_page)
        assert "Historial de cálculos" in award_text
        assert award.package_version in award_text
        assert f"$ {award.amount:,.2f}" in award_text

        person_page = as_checker.get(reverse("registry:person_detail", args=[person.pk]))
        section = person_page.content.decode().split('id="benefits"')[1].split("</section>")[0]
        assert reverse("benefits:award_detail", args=[award.pk]) in section
        assert reverse("benefits:claim_detail", args=[claim.pk]) in section

    def test_a_denial_says_why_not(self) -> None:
        maker = officer("ana")
        person, _curp = person_aged(60)
        decision = adjudicated(maker, person)
        assert decision.outcome == "denied"
        spanish = text_of(signed_in(maker).get(claim_url(decision.claim_id)))
        assert "Por qué no procede" in spanish
        assert re.search(r"60 años; se requieren 6[58] años", spanish)
        assert "Constitución art. 4" in spanish
        english = text_of(signed_in(maker, "en").get(claim_url(decision.claim_id)))
        assert "Why not" in english
        assert re.search(r"60 years; 6[58] years required", english)

    def test_a_return_needs_a_reason_and_sends_the_claim_back(self) -> None:
        maker, checker = officer("ana"), officer("beto")
        person, _curp = person_aged(70)
        decision = adjudicated(maker, person)
        client = signed_in(checker, "en")
        field = f"return-{decision.pk}-reason"
        url = reverse("benefits:decision_return", args=[decision.pk])

        without = client.post(url, {field: "  "})
        assert without.status_code == 422
        assert "error-summary" in without.content.decode()
        decision.refresh_from_db()
        assert decision.status == "pending"

        client.post(url, {field: "The declared residence needs a proof."})
        decision.refresh_from_db()
        assert decision.status == "returned"
        page = text_of(client.get(claim_url(decision.claim_id)))
        assert "The last decision was returned" in page
        assert "The declared residence needs a proof." in page

    def test_missing_data_refuses_adjudication_with_the_list(self) -> None:
        maker = officer("ana")
        person, _curp = person_aged(70)
        employment = cast(
            Employment,
            EmploymentFactory(
                person=person,
                start_date=datetime.date(1980, 1, 1),
                end_date=datetime.date(2005, 12, 31),
            ),
        )
        assert not employment.salaries.exists()  # no salary: no average salary
        claim = enter(maker, person, kind=VEJEZ, declared={"padres_dependientes": 0})
        client = signed_in(maker, "en")
        before = text_of(client.get(claim_url(claim.pk)))
        assert "Missing data" in before

        response = client.post(reverse("benefits:claim_adjudicate", args=[claim.pk]), follow=True)
        assert response.status_code == 200
        assert "some data are missing" in text_of(response)
        claim.refresh_from_db()
        assert claim.status == "entered"
        assert not Decision.objects.exists()

    def test_the_letter_is_a_pdf(self) -> None:
        maker = officer("ana")
        person, _curp = person_aged(70)
        decision = adjudicated(maker, person)
        response = signed_in(maker).get(reverse("benefits:decision_letter", args=[decision.pk]))
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert response.content.startswith(b"%PDF")


@pytest.mark.django_db
def test_the_person_page_shows_no_benefits_to_staff_who_may_not_see_them() -> None:
    person, _curp = person_aged(70)
    enter(officer("ana"), person)
    page = signed_in(staff(Role.REGISTRAR)).get(reverse("registry:person_detail", args=[person.pk]))
    assert page.status_code == 200
    assert 'id="benefits"' not in page.content.decode()


@pytest.mark.django_db
class TestClaimPage:
    def test_the_language_switch_changes_the_package_labels_too(self) -> None:
        maker = officer("ana")
        person, _curp = person_aged(60)
        decision = adjudicated(maker, person)
        client = signed_in(maker)
        url = claim_url(decision.claim_id)
        assert "Tiene derecho a la Pensión para el Bienestar" in text_of(client.get(url))
        switched = client.post(
            reverse("set_language"), {"language": "en", "next": url}, follow=True
        )
        english = text_of(switched)
        assert "Entitled to the wellbeing pension" in english
        assert "Why not" in english
        assert "Tiene derecho" not in english

    def test_a_withdrawal_needs_a_reason(self) -> None:
        user = officer("ana")
        person, _curp = person_aged(70)
        claim = enter(user, person)
        client = signed_in(user, "en")
        url = reverse("benefits:claim_withdraw", args=[claim.pk])
        refused = client.post(url, {"withdraw-reason": ""})
        assert refused.status_code == 422
        assert '<details class="subform" open>' in refused.content.decode()
        claim.refresh_from_db()
        assert claim.status == "entered"
        client.post(url, {"withdraw-reason": "The claimant asked to withdraw it."})
        claim.refresh_from_db()
        assert claim.status == "withdrawn"
        assert "The claimant asked to withdraw it." in text_of(client.get(claim_url(claim.pk)))

    def test_acting_on_a_claim_changed_meanwhile_is_refused_with_a_message(self) -> None:
        maker, checker = officer("ana"), officer("beto")
        person, _curp = person_aged(70)
        decision = adjudicated(maker, person)
        claim = decision.claim
        claim.refresh_from_db()
        response = signed_in(checker, "en").post(
            reverse("benefits:decision_approve", args=[decision.pk]),
            {"version": claim.version - 1},
            follow=True,
        )
        assert response.status_code == 200
        assert "Someone else changed this claim" in text_of(response)
        decision.refresh_from_db()
        assert decision.status == "pending"
        assert not Award.objects.exists()

    def test_kinds_are_grouped_by_the_law_they_come_under(self) -> None:
        person, _curp = person_aged(70)
        page = signed_in(officer("ana")).get(f"{reverse('benefits:claim_new')}?person={person.pk}")
        html = page.content.decode()
        assert re.search(r'<optgroup label="[^"]*1973[^"]*">', html)
        assert '<option value="imss_1973:vejez">Pensión de vejez</option>' in html
        # The blank choice is the step before choosing, not an error.
        blank = signed_in(officer("beto")).get(
            f"{reverse('benefits:claim_new')}?person={person.pk}&kind="
        )
        assert blank.status_code == 200
        assert "error-summary" not in blank.content.decode()
