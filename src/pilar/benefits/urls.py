"""Staff UI of benefits: claims, decisions, awards, what-if previews and recalculation runs."""

from django.urls import path

from pilar.benefits import views

app_name = "benefits"

claim = "claims/<int:claim_id>/"
decision = "decisions/<int:decision_id>/"

urlpatterns = [
    path("claims/", views.claim_queue, name="claim_queue"),
    path("claims/new/", views.claim_new, name="claim_new"),
    path(claim, views.claim_detail, name="claim_detail"),
    path(f"{claim}adjudicate/", views.claim_adjudicate, name="claim_adjudicate"),
    path(f"{claim}withdraw/", views.claim_withdraw, name="claim_withdraw"),
    path(f"{decision}approve/", views.decision_approve, name="decision_approve"),
    path(f"{decision}return/", views.decision_return, name="decision_return"),
    path(f"{decision}letter.pdf", views.decision_letter, name="decision_letter"),
    path("awards/<int:award_id>/", views.award_detail, name="award_detail"),
    path(
        "awards/<int:award_id>/calculations/<int:calculation_id>/",
        views.award_calculation,
        name="award_calculation",
    ),
]
