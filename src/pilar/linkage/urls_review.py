"""Staff UI of record linkage: review (included by `linkage.urls`)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
