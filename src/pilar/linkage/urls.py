"""Staff UI of record linkage: runs, the review queue, pairs, merges, cross-programme checks."""

from django.urls import path  # noqa: F401 — the views helper fills urlpatterns

app_name = "linkage"

urlpatterns: list = []
