"""Staff UI of record linkage: runs, models and cross-programme checks (included by
`linkage.urls`)."""

from __future__ import annotations

from django.urls import URLPattern, path

from pilar.linkage import views_runs as views

urlpatterns: list[URLPattern] = [
    path("runs/", views.run_list, name="run_list"),
    path("runs/dedupe/", views.run_dedupe_new, name="run_dedupe_new"),
    path("runs/link/", views.run_link_new, name="run_link_new"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<int:run_id>/progress/", views.run_progress, name="run_progress"),
    path(
        "runs/<int:run_id>/results.<str:file_format>",
        views.run_download,
        name="run_download",
    ),
    path("models/", views.model_list, name="model_list"),
    path("models/train/", views.model_train, name="model_train"),
    path("models/import/", views.model_import, name="model_import"),
    path("models/<int:model_id>/", views.model_detail, name="model_detail"),
    path("models/<int:model_id>/thresholds/", views.model_thresholds, name="model_thresholds"),
    path("models/<int:model_id>/activate/", views.model_activate, name="model_activate"),
    path("models/<int:model_id>/export/", views.model_export, name="model_export"),
    path("cross/", views.cross_list, name="cross_list"),
    path("cross/programmes/", views.cross_new, name="cross_new"),
    path("cross/lists/", views.cross_lists_new, name="cross_lists_new"),
]
