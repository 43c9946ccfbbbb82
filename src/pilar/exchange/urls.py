"""URLs of the exchange app: the node-to-node endpoints (``/exchange/v1/…``, signed
envelopes or public log data, no session) and the staff UI (``/exchange/…``)."""

from django.urls import include, path

app_name = "exchange"

urlpatterns = [
    path("v1/log/", include("pilar.exchange.urls_log")),
    path("v1/", include("pilar.exchange.urls_endpoint")),
    path("", include("pilar.exchange.urls_staff")),
]
