"""Staff UI of benefits: claims, decisions, awards, what-if previews and recalculation runs."""

from django.urls import path

app_name = "benefits"

urlpatterns: list = []
