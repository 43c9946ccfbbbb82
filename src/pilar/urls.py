"""URL map: the staff web UI at the root, the REST API under /api/ (docs at /api/docs)."""

from django.urls import include, path

from pilar.api import api

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", api.urls),
    path("", include("pilar.registry.urls")),
    path("", include("pilar.core.urls")),
]
