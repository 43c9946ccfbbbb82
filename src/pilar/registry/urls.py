"""Staff web UI of the registry: persons (search, register, record page and its small forms)
and employers."""

from django.urls import path

from pilar.registry import views

app_name = "registry"

person = "persons/<int:person_id>/"

urlpatterns = [
    path("statistics/", views.statistics, name="statistics"),
    path("persons/", views.person_search, name="person_search"),
    path("persons/new/", views.person_register, name="person_register"),
    path(person, views.person_detail, name="person_detail"),
    path(f"{person}edit/", views.person_edit, name="person_edit"),
    path(f"{person}export/", views.person_export, name="person_export"),
    path(f"{person}identifiers/add/", views.identifier_add, name="identifier_add"),
    path(
        f"{person}identifiers/<int:identifier_id>/deactivate/",
        views.identifier_deactivate,
        name="identifier_deactivate",
    ),
    path(f"{person}addresses/add/", views.address_add, name="address_add"),
    path(f"{person}contacts/add/", views.contact_add, name="contact_add"),
    path(f"{person}contacts/<int:contact_id>/remove/", views.contact_remove, name="contact_remove"),
    path(f"{person}family/add/", views.family_tie_add, name="family_tie_add"),
    path(f"{person}family/<int:tie_id>/end/", views.family_tie_end, name="family_tie_end"),
    path(f"{person}employments/add/", views.employment_add, name="employment_add"),
    path(
        f"{person}employments/<int:employment_id>/end/",
        views.employment_end,
        name="employment_end",
    ),
    path(
        f"{person}employments/<int:employment_id>/salary/",
        views.salary_change,
        name="salary_change",
    ),
    path(f"{person}enrolments/add/", views.enrolment_add, name="enrolment_add"),
    path(
        f"{person}enrolments/<int:enrolment_id>/status/",
        views.enrolment_status,
        name="enrolment_status",
    ),
    path("employers/", views.employer_list, name="employer_list"),
    path("employers/new/", views.employer_register, name="employer_register"),
    path("employers/<int:employer_id>/", views.employer_detail, name="employer_detail"),
    path("employers/<int:employer_id>/edit/", views.employer_edit, name="employer_edit"),
]
