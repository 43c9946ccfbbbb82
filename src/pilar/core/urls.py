"""Staff web UI of the core app: sign-in, home, audit trail, access log, API tokens."""

from django.urls import path

from pilar.core import views

app_name = "core"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("audit/", views.audit, name="audit"),
    path("access-log/", views.access_log, name="access_log"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke_view, name="token_revoke"),
]
