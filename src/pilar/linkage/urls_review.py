"""Staff UI of record linkage: review (included by `linkage.urls`)."""

from __future__ import annotations

from django.urls import URLPattern, path

from pilar.linkage import views_review as views

pair = "pairs/<int:pair_id>/"
merge = "merges/<int:merge_id>/"

urlpatterns: list[URLPattern] = [
    path("review/", views.review_queue, name="review_queue"),
    path(pair, views.pair_detail, name="pair_detail"),
    path(f"{pair}decide/", views.pair_decide, name="pair_decide"),
    path(f"{pair}reopen/", views.pair_reopen, name="pair_reopen"),
    path(f"{pair}merge/", views.pair_merge, name="pair_merge"),
    path("merges/", views.merge_list, name="merge_list"),
    path(merge, views.merge_detail, name="merge_detail"),
    path(f"{merge}unmerge/", views.merge_unmerge, name="merge_unmerge"),
]
