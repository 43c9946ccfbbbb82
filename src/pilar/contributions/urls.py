"""Staff web UI of contributions: the declarations queue, a declaration's page, uploads on an
employer's behalf. The employer portal has the same declaration URL names (``portal.urls``)."""

from django.urls import path

from pilar.contributions import views

app_name = "contributions"

declaration = "declarations/<int:declaration_id>/"

urlpatterns = [
    path("declarations/", views.declaration_queue, name="declaration_queue"),
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
]
