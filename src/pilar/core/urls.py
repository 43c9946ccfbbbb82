"""Staff web UI of the core app: sign-in, home, audit trail, access log, API tokens, staff
accounts and offices."""

from django.urls import path

from pilar.core import views

app_name = "core"

member = "staff/<int:user_id>/"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("audit/", views.audit, name="audit"),
    path("access-log/", views.access_log, name="access_log"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke_view, name="token_revoke"),
    path("staff/", views.staff_list, name="staff_list"),
    path("staff/new/", views.staff_create, name="staff_create"),
    path(member, views.staff_detail, name="staff_detail"),
    path(member + "edit/", views.staff_edit, name="staff_edit"),
    path(member + "roles/", views.staff_roles, name="staff_roles"),
    path(member + "password/", views.staff_password, name="staff_password"),
    path(member + "unlock/", views.staff_unlock, name="staff_unlock"),
    path(member + "deactivate/", views.staff_deactivate, name="staff_deactivate"),
    path(member + "reactivate/", views.staff_reactivate, name="staff_reactivate"),
    path("offices/", views.offices, name="offices"),
]
