"""Staff UI of award recalculation: what-if previews, applying a published version, the runs.
Mounted at ``/benefits/recalculation/`` (``pilar/urls.py``)."""

from django.urls import path

from pilar.benefits import recalculation_views as views

app_name = "recalculation"

urlpatterns = [
    path("", views.run_list, name="run_list"),
    path("preview/", views.preview_new, name="preview_new"),
    path("apply/", views.apply_new, name="apply_new"),
    path("<int:run_id>/", views.run_detail, name="run_detail"),
    path("<int:run_id>/progress/", views.run_progress, name="run_progress"),
]
