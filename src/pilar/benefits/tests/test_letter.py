"""The decision letter: a real A4 PDF in Spanish or English with the claimant, the outcome and
amount (or each unmet condition with its article), the package version and hash, the appeal
rights and the two officers. The text is read back from WeasyPrint's laid-out document (pypdf
is not a dependency)."""

from __future__ import annotations

import pytest

from pilar.benefits import services
from pilar.benefits.letter import (
    decision_letter_document,
    decision_letter_pdf,
    document_text,
    format_number,
)
from pilar.benefits.models import Decision
from pilar.benefits.tests.careers import CLAIM_DATE, long_career, officer, short_career
from pilar.core.errors import NotFound
from pilar.core.identifiers import CURP, NSS
from pilar.core.models import AccessLogEntry

pytestmark = pytest.mark.django_db


def decide(person_builder: object, *, approve: bool = True) -> tuple[Decision, object, object]:
    maker, checker = officer(), officer()
    person = person_builder()  # type: ignore[operator]
    claim = services.claim_create(
        actor=maker,
        person_id=person.pk,
        package="imss_1973",
        benefit="vejez",
        claim_date=CLAIM_DATE,
        declared={"padres_dependientes": 0},
    )
    decision = services.claim_adjudicate(actor=maker, claim_id=claim.pk)
    if approve:
        services.decision_approve(actor=checker, decision_id=decision.pk)
    decision.refresh_from_db()
    return decision, maker, checker


def test_a_granted_letter_is_a_pdf_with_the_amount_the_claimant_and_both_officers() -> None:
    decision, maker, checker = decide(long_career)
    pdf = decision_letter_pdf(actor=checker, decision_id=decision.pk, language="es")  # type: ignore[arg-type]
    assert pdf.startswith(b"%PDF")

    document = decision_letter_document(actor=checker, decision_id=decision.pk, language="es")  # type: ignore[arg-type]
    text = document_text(document)
    person = decision.claim.person
    assert person.full_name in text
    for scheme in (CURP, NSS):
        assert person.identifiers.get(scheme=scheme).value in text
    assert format_number(decision.amount, "pesos") in text
    assert "se otorga" in text
    assert "mensual" in text
    assert decision.package_version in text
    assert decision.package_hash in text.replace(" ", "")
    assert "recurso de inconformidad" in text
    assert "15 días hábiles" in text
    assert maker.user.get_full_name() in text  # type: ignore[attr-defined]
    assert "Aprobado por" in text
    assert "BORRADOR" not in text
    # A4: 210 × 297 mm, in CSS pixels (96 per inch).
    assert round(document.pages[0].width / 96 * 25.4) == 210
    assert round(document.pages[0].height / 96 * 25.4) == 297


def test_a_denial_letter_gives_each_unmet_condition_with_the_threshold_and_article() -> None:
    decision, _maker, checker = decide(short_career)
    text = document_text(
        decision_letter_document(actor=checker, decision_id=decision.pk, language="es")  # type: ignore[arg-type]
    )
    assert "se niega" in text
    assert "Lo suyo: 399 semanas. Se requiere: al menos 500 semanas." in text
    assert "LSS 1973 art. 138" in text


def test_the_letter_in_english_and_a_draft_before_approval() -> None:
    decision, maker, _checker = decide(long_career, approve=False)
    text = document_text(
        decision_letter_document(actor=maker, decision_id=decision.pk, language="en")  # type: ignore[arg-type]
    )
    assert "is granted" in text
    assert "Draft: this decision awaits the approval of a second officer" in text
    assert "Awaiting approval" in text
    assert "15 business days" in text


def test_reading_the_letter_is_logged_and_needs_access() -> None:
    decision, maker, _checker = decide(long_career, approve=False)
    before = AccessLogEntry.objects.filter(person_id=decision.claim.person_id).count()
    decision_letter_pdf(actor=maker, decision_id=decision.pk, language="es")  # type: ignore[arg-type]
    entries = AccessLogEntry.objects.filter(person_id=decision.claim.person_id)
    assert entries.count() == before + 1
    assert entries.order_by("-id").first().purpose == "decision letter"  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        decision_letter_pdf(actor=officer(region="NL"), decision_id=decision.pk, language="es")


def test_numbers_are_written_for_the_reader() -> None:
    assert format_number("11275.966", "pesos") == "$11,275.97"
    assert format_number("0.8", "fraction") == "80 %"
    assert format_number("1616", "weeks") == "1,616"
