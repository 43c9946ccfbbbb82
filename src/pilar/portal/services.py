"""Writes of the portal: employer portal accounts."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.core.errors import NotFound, ValidationFailed
from pilar.core.models import User
from pilar.core.roles import Perm
from pilar.portal.models import EmployerUser, employer_username
from pilar.registry.models import Employer


def employer_account_set(*, actor: Actor, employer_id: int, password: str) -> EmployerUser:
    """Create an employer's portal account or give it a new password (and unlock it). Done by
    collections staff when the employer's legal representative asks for access."""
    actor.require(Perm.PAYMENT_RECORD)
    employer = Employer.objects.filter(pk=employer_id).first()
    if employer is None:
        raise NotFound()
    try:
        validate_password(password)
    except ValidationError as invalid:
        raise ValidationFailed.single(
            "password", "password_weak", " ".join(invalid.messages)
        ) from None
    with transaction.atomic():
        account = EmployerUser.objects.select_related("user").filter(employer=employer).first()
        created = account is None
        if account is None:
            user = User(
                username=employer_username(employer.rfc), first_name=employer.legal_name[:150]
            )
        else:
            user = account.user
        user.set_password(password)
        user.is_active = True
        user.failed_login_count = 0
        user.locked_until = None
        user.save()
        if account is None:
            account = EmployerUser.objects.create(user=user, employer=employer)
        audit_record(
            actor=actor,
            action="create" if created else "password_reset",
            entity_type="employer_account",
            entity_id=account.pk,
            changes={"employer": [None, employer.pk]} if created else {},
            note=_("Portal access for the employer") if created else "",
        )
    return account
