"""Staff UI: exchange monitor, agreements, trust list, transparency log, auditor, and the
person page's federation actions (included by ``exchange.urls`` under the ``exchange:``
namespace)."""

from __future__ import annotations

from django.urls import URLPattern, path

from pilar.exchange import views_staff as views

message = "messages/<int:message_pk>/"
agreement = "agreements/<int:agreement_pk>/"
person = "persons/<int:person_id>/"

urlpatterns: list[URLPattern] = [
    path("", views.monitor_list, name="monitor"),
    path(message, views.message_detail, name="message_detail"),
    path(f"{message}retry/", views.message_retry, name="message_retry"),
    path("agreements/", views.agreement_list, name="agreement_list"),
    path("agreements/new/", views.agreement_create, name="agreement_create"),
    path(agreement, views.agreement_detail, name="agreement_detail"),
    path(f"{agreement}edit/", views.agreement_edit, name="agreement_edit"),
    path(f"{agreement}end/", views.agreement_end, name="agreement_end"),
    path("trust/", views.trust, name="trust"),
    path("trust/fetch/", views.trust_fetch, name="trust_fetch"),
    path("trust/publish/", views.trust_publish, name="trust_publish"),
    path("trust/keys/rotate/", views.key_rotate, name="key_rotate"),
    path("log/", views.log_page, name="log"),
    path("log/verify/", views.log_verify, name="log_verify"),
    path("auditor/", views.auditor, name="auditor"),
    path("auditor/round/", views.auditor_round, name="auditor_round"),
    path(f"{person}institutions/", views.person_institutions, name="person_institutions"),
    path(f"{person}periods/", views.person_periods_fetch, name="person_periods_fetch"),
    path("events/<int:event_pk>/acknowledge/", views.event_acknowledge, name="event_acknowledge"),
]
