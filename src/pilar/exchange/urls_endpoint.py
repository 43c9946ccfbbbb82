"""Node-to-node endpoints: signed-envelope services and the trust list."""

from django.urls import path

from pilar.exchange import views_endpoint, views_trust_endpoint

urlpatterns = [
    path("sync/<str:action>", views_endpoint.sync, name="sync"),
    path("trust-list", views_trust_endpoint.trust_list_document, name="trust_list"),
]
