"""Staff UI: exchange monitor, agreements, trust list, transparency log, auditor."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
