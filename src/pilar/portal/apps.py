from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "pilar.portal"
    label = "portal"
    verbose_name = "Self-service portals"
