"""URL map: the staff web UI at the root, the REST API under /api/ (docs at /api/docs)."""

from django.urls import include, path

from pilar.api import api
from pilar.exchange import views_trust_endpoint

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", api.urls),
    path("portal/", include("pilar.portal.urls")),
    path("", include("pilar.registry.urls")),
    path("", include("pilar.contributions.urls")),
    path("", include("pilar.contributions.account_urls")),
    path("benefits/recalculation/", include("pilar.benefits.recalculation_urls")),
    path("benefits/", include("pilar.benefits.urls")),
    path("linkage/", include("pilar.linkage.urls")),
    path("exchange/", include("pilar.exchange.urls")),
    # A node's public signing keys as a JWKS (DCI jwks_core_api): for partners' gateways.
    path(".well-known/jwks.json", views_trust_endpoint.jwks, name="jwks"),
    path("", include("pilar.core.urls")),
]

# 403 and 404 use Django's default handlers, which render 403.html and 404.html with the
# request (layout, language). The default 500 handler renders without the request, so Pilar's
# own renders the layout and falls back to a plain page if that fails too.
handler500 = "pilar.core.views.server_error"
