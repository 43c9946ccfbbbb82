"""Transparency log endpoints: checkpoint, proofs, leaves, cosignatures."""

from django.urls import path

from pilar.exchange import views_log

urlpatterns = [
    path("checkpoint", views_log.checkpoint, name="log-checkpoint"),
    path("proof/inclusion", views_log.inclusion, name="log-inclusion"),
    path("proof/consistency", views_log.consistency, name="log-consistency"),
    path("leaves", views_log.leaves, name="log-leaves"),
    path("cosignature", views_log.cosignature, name="log-cosignature"),
]
