"""Staff UI of record linkage under /linkage/: runs, the review queue and pairs, merges,
cross-programme checks."""

from __future__ import annotations

from pilar.linkage import urls_entry, urls_review, urls_runs

app_name = "linkage"

urlpatterns = [*urls_review.urlpatterns, *urls_runs.urlpatterns, *urls_entry.urlpatterns]
