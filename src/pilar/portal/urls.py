"""The employer portal, mounted at /portal/. The declaration URLs have the staff UI's names
(``contributions.urls``) so the shared declaration templates work in both."""

from django.urls import path

from pilar.portal import views

app_name = "portal"

declaration = "declarations/<int:declaration_id>/"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("workers/", views.workers, name="workers"),
    path("account/", views.account, name="account"),
    path("declarations/", views.declaration_list, name="declaration_list"),
    path("declarations/upload/", views.declaration_upload, name="declaration_upload"),
    path(declaration, views.declaration_detail, name="declaration_detail"),
    path(f"{declaration}progress/", views.declaration_progress, name="declaration_progress"),
    path(f"{declaration}confirm/", views.declaration_confirm, name="declaration_confirm"),
    path(f"{declaration}withdraw/", views.declaration_withdraw, name="declaration_withdraw"),
    path(
        f"{declaration}report/<str:file_format>/",
        views.declaration_report,
        name="declaration_report",
    ),
    path("file-format/", views.file_format, name="file_format"),
    path(
        "file-format/template/<str:language>/<str:file_format>/",
        views.template_download,
        name="template_download",
    ),
]
