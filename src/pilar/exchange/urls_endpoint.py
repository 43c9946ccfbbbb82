"""Node-to-node endpoints : signed-envelope services and the trust list."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
