"""Staff web UI of employers' accounts: the account of an employer, bank files of payments,
the non-filers report and the open registration requests."""

from django.urls import path

from pilar.contributions import account_views as views

app_name = "accounts"

employer = "accounts/employers/<int:employer_id>/"

urlpatterns = [
    path("accounts/", views.account_index, name="index"),
    path(employer, views.employer_account, name="employer_account"),
    path(f"{employer}payments/", views.payment_record, name="payment_record"),
    path(f"{employer}portal-account/", views.portal_account_set, name="portal_account"),
    path("accounts/bank-imports/", views.bank_imports, name="bank_imports"),
    path(
        "accounts/bank-imports/<int:import_id>/",
        views.bank_import_detail,
        name="bank_import_detail",
    ),
    path("accounts/non-filers/", views.non_filers, name="non_filers"),
    path("accounts/non-filers/csv/", views.non_filers_csv, name="non_filers_csv"),
    path(
        "accounts/registration-requests/",
        views.registration_requests,
        name="registration_requests",
    ),
]
