"""Factories for staff, offices and actors. Tests build what they need; no fixture files."""

from __future__ import annotations

import factory

from pilar.core.actor import Actor
from pilar.core.models import Office, RoleAssignment, User

TEST_PASSWORD = "correct-horse-battery-staple"


class OfficeFactory(factory.django.DjangoModelFactory[Office]):
    class Meta:
        model = Office
        django_get_or_create = ("code",)

    code = "JAL-01"
    name = "Oficina Guadalajara"
    region = "JC"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    first_name = "Ana"
    last_name = "Pérez"
    office = factory.SubFactory(OfficeFactory)
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    # factory_boy passes the built object as the first argument.
    @factory.post_generation
    def roles(obj: User, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        for role in extracted or []:
            RoleAssignment.objects.create(user=obj, role=role)
        if create:
            obj.save()


def staff(*roles: str, region: str = "JC", **kwargs: object) -> User:
    """A staff member holding ``roles`` in an office of ``region``."""
    office = OfficeFactory.create(code=f"{region}-01", name=f"Oficina {region}", region=region)
    return UserFactory.create(office=office, roles=list(roles), **kwargs)


def actor(*roles: str, region: str = "JC", channel: str = "ui") -> Actor:
    return Actor.for_user(staff(*roles, region=region), channel=channel)
