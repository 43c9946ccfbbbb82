"""Staff UI of record linkage: runs (included by `linkage.urls`)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
