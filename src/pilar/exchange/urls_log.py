"""Transparency log endpoints: checkpoint, proofs, leaves, cosignatures."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
