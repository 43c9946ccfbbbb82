"""Staff accounts and offices: the one way they are created and changed, whatever the channel
(the staff UI for administrators, ``pilar staff`` and ``pilar office`` on the command line).

Contract shared by all services here: keyword-only arguments, an ``actor`` first, which must
hold ``user.manage``; each runs in its own transaction; on bad input an ``ApplicationError`` is
raised (``ValidationFailed`` with every field error at once, ``Conflict`` when the account is not
in a state the change applies to) and nothing is written. Every change writes an audit event
about the account (entity type ``user``) or the office (``office``) with the changed fields
before and after. Passwords never enter the audit trail: the event only says one was set.

An administrator cannot lock themselves out: they cannot remove their own administrator role
or deactivate their own account, so the institution always keeps someone who can fix mistakes
through the web UI. The command line acts as the system and is the way back in if every
administrator account is lost.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth import password_validation
from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.audit import audit_record, created, diff
from pilar.core.errors import Conflict, FieldError, FieldErrors, NotFound, ValidationFailed
from pilar.core.models import ApiToken, Office, RoleAssignment, User
from pilar.core.regions import STATES
from pilar.core.roles import Perm, Role

# The columns' lengths (AbstractUser and Office); longer input is an error, never truncated.
USERNAME_MAX_LENGTH = 150
NAME_MAX_LENGTH = 150
EMAIL_MAX_LENGTH = 254
OFFICE_NAME_MAX_LENGTH = 200
# The audit event's note holds the reason for a deactivation.
REASON_MAX_LENGTH = 300
# Office codes are printed on forms and typed in commands: capitals, digits and hyphens only.
OFFICE_CODE_SHAPE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,19}$")

# What ``staff_update`` may change. The username is the account's identity in the audit trail
# and in every login record, so it is fixed at creation.
STAFF_UPDATE_FIELDS = ("first_name", "last_name", "email", "office_code")

PASSWORD_NOTE = "password set"  # noqa: S105 — the audit note for a password change, not a secret

USERNAME_TAKEN = _("This username is already taken.")
OFFICE_CODE_TAKEN = _("An office with this code already exists.")

_username_validator = UnicodeUsernameValidator()


# --- access and entry checks ------------------------------------------------------------------


def _in_scope(actor: Actor, office: Office | None) -> bool:
    """Whether the actor manages staff of this office. Administrators have national scope by
    default (PILAR_NATIONAL_SCOPE_ROLES); an institution that gives them a region limits them
    to the staff and offices of that region."""
    if actor.national_scope:
        return True
    return office is not None and actor.sees_region(office.region)


def _user_for_write(actor: Actor, user_id: int) -> User:
    """The account, locked for the rest of the transaction, if the actor may manage it.

    The row lock serialises concurrent changes to one account (two administrators editing its
    roles at once would otherwise both pass the role checks). An account outside the actor's
    scope is reported as not found, so its existence cannot be probed."""
    actor.require(Perm.USER_MANAGE)
    # No select_related here: PostgreSQL refuses FOR UPDATE on the nullable side of the outer
    # join to the office.
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None or not _in_scope(actor, user.office):
        raise NotFound(extra={"entity": "user", "id": user_id})
    return user


def _is_self(actor: Actor, user: User) -> bool:
    return actor.user is not None and actor.user.pk == user.pk


def _clean_text(
    errors: FieldErrors, name: str, value: str | None, *, max_length: int, required: bool
) -> str:
    text = (value or "").strip()
    if required and not text:
        errors.add(name, "required", _("This field is required."))
    elif len(text) > max_length:
        errors.add(
            name,
            "too_long",
            _("At most %(max)d characters.") % {"max": max_length},
        )
    return text


def _clean_username(errors: FieldErrors, username: str | None) -> str:
    value = User.normalize_username(
        _clean_text(errors, "username", username, max_length=USERNAME_MAX_LENGTH, required=True)
    )
    if "username" in errors.errors:
        return value
    try:
        _username_validator(value)
    except DjangoValidationError:
        errors.add(
            "username",
            "staff.username_invalid",
            _("Use only letters, digits and the characters . @ + - _ in a username."),
        )
        return value
    # Case-insensitive: "ana.perez" and "Ana.Perez" would be told apart by the login form but
    # not by the people reading the audit trail.
    if User.objects.filter(username__iexact=value).exists():
        errors.add("username", "staff.username_taken", USERNAME_TAKEN)
    return value


def _clean_email(errors: FieldErrors, email: str | None) -> str:
    value = _clean_text(errors, "email", email, max_length=EMAIL_MAX_LENGTH, required=False)
    if value and "email" not in errors.errors:
        try:
            validate_email(value)
        except DjangoValidationError:
            errors.add("email", "staff.email_invalid", _("The email address is not valid."))
            return value
        value = BaseUserManager.normalize_email(value)
    return value


def _clean_office(errors: FieldErrors, actor: Actor, code: str | None) -> Office | None:
    value = (code or "").strip().upper()
    if not value:
        errors.add("office_code", "required", _("Choose the staff member's office."))
        return None
    office = Office.objects.filter(code=value).first()
    # An office outside the actor's scope is as unknown as one that does not exist.
    if office is None or not _in_scope(actor, office):
        errors.add("office_code", "staff.office_unknown", _("There is no office with this code."))
        return None
    return office


def _clean_roles(errors: FieldErrors, roles: Iterable[str], *, require_one: bool) -> list[str]:
    wanted = sorted({str(role).strip() for role in roles})
    unknown = [role for role in wanted if role not in Role.values]
    if unknown:
        errors.add(
            "roles",
            "staff.role_unknown",
            _("Unknown role: %(roles)s.") % {"roles": ", ".join(unknown)},
        )
    if require_one and not wanted:
        errors.add("roles", "staff.role_required", _("Choose at least one role."))
    return [role for role in wanted if role in Role.values]


def _check_password(errors: FieldErrors, password: str | None, user: User) -> None:
    """Django's password validators (length, common passwords, all digits, similarity to the
    username, names and email of ``user``), each failure as its own field error."""
    if not password:
        errors.add("password", "required", _("Enter a password."))
        return
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as error:
        for item, message in zip(error.error_list, error.messages, strict=True):
            errors.add("password", f"password.{item.code or 'invalid'}", message)


def _revoke_tokens(actor: Actor, tokens: QuerySet[ApiToken], *, note: str) -> int:
    """Revoke those of ``tokens`` not revoked yet (expired ones too, so the list reads plainly),
    with one audit event each, so every token's own trail shows why it stopped working."""
    token_ids = list(tokens.filter(revoked_at__isnull=True).values_list("pk", flat=True))
    if not token_ids:
        return 0
    ApiToken.objects.filter(pk__in=token_ids).update(revoked_at=timezone.now())
    for token_id in token_ids:
        audit_record(
            actor=actor,
            action="token.revoke",
            entity_type="api_token",
            entity_id=token_id,
            note=note,
        )
    return len(token_ids)


def _office_code(user: User) -> str | None:
    return user.office.code if user.office_id and user.office else None


# --- offices ----------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def office_create(*, actor: Actor, code: str, name: str, region: str) -> Office:
    """A new office. The code is stored in capitals; the region is a state code (``JC``)."""
    actor.require(Perm.USER_MANAGE)
    errors = FieldErrors()
    code_value = (code or "").strip().upper()
    if not code_value:
        errors.add("code", "required", _("This field is required."))
    elif not OFFICE_CODE_SHAPE.match(code_value):
        errors.add(
            "code",
            "office.code_invalid",
            _("Use 1 to 20 capital letters, digits and hyphens, for example JAL-02."),
        )
    elif Office.objects.filter(code__iexact=code_value).exists():
        errors.add("code", "office.code_taken", OFFICE_CODE_TAKEN)
    name_value = _clean_text(errors, "name", name, max_length=OFFICE_NAME_MAX_LENGTH, required=True)
    region_value = (region or "").strip().upper()
    if region_value not in STATES:
        errors.add("region", "office.region_unknown", _("Choose a state."))
    elif not actor.sees_region(region_value):
        errors.add(
            "region",
            "office.region_out_of_scope",
            _("You can create offices only in your own region."),
        )
    errors.raise_if_any()
    try:
        # A savepoint, so a concurrent create of the same code becomes a field error rather
        # than a broken transaction.
        with transaction.atomic():
            office = Office.objects.create(code=code_value, name=name_value, region=region_value)
    except IntegrityError as error:
        raise ValidationFailed.single("code", "office.code_taken", OFFICE_CODE_TAKEN) from error
    audit_record(
        actor=actor,
        action="office.create",
        entity_type="office",
        entity_id=office.pk,
        changes=created({"code": code_value, "name": name_value, "region": region_value}),
    )
    return office


# --- staff accounts ---------------------------------------------------------------------------


@transaction.atomic(durable=True)
def staff_create(
    *,
    actor: Actor,
    username: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    office_code: str,
    roles: Iterable[str],
    password: str,
) -> User:
    """A new, active staff account in ``office_code`` holding ``roles`` (at least one).

    The password must pass the configured password validators; it is stored hashed and never
    recorded anywhere else."""
    actor.require(Perm.USER_MANAGE)
    errors = FieldErrors()
    username_value = _clean_username(errors, username)
    first = _clean_text(
        errors, "first_name", first_name, max_length=NAME_MAX_LENGTH, required=False
    )
    last = _clean_text(errors, "last_name", last_name, max_length=NAME_MAX_LENGTH, required=False)
    email_value = _clean_email(errors, email)
    office = _clean_office(errors, actor, office_code)
    role_codes = _clean_roles(errors, roles, require_one=True)
    # The similarity validator compares the password with these attributes of the account.
    candidate = User(username=username_value, first_name=first, last_name=last, email=email_value)
    _check_password(errors, password, candidate)
    errors.raise_if_any()
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                username=username_value,
                password=password,
                first_name=first,
                last_name=last,
                email=email_value,
                office=office,
            )
    except IntegrityError as error:
        raise ValidationFailed.single("username", "staff.username_taken", USERNAME_TAKEN) from error
    RoleAssignment.objects.bulk_create(RoleAssignment(user=user, role=role) for role in role_codes)
    audit_record(
        actor=actor,
        action="staff.create",
        entity_type="user",
        entity_id=user.pk,
        changes=created(
            {
                "username": username_value,
                "first_name": first,
                "last_name": last,
                "email": email_value,
                "office": office.code if office else None,
                "roles": role_codes,
            }
        ),
        note=PASSWORD_NOTE,
    )
    return user


@transaction.atomic(durable=True)
def staff_update(*, actor: Actor, user_id: int, changes: Mapping[str, Any]) -> User:
    """Change any of the account's names, email and office (``office_code``); fields not in
    ``changes`` keep their values. Nothing changed means no write and no audit event."""
    user = _user_for_write(actor, user_id)
    unknown = sorted(set(changes) - set(STAFF_UPDATE_FIELDS))
    if unknown:
        raise ValidationFailed(
            {name: [FieldError("field.unknown", _("Unknown field."))] for name in unknown}
        )
    errors = FieldErrors()
    first = _clean_text(
        errors,
        "first_name",
        changes.get("first_name", user.first_name),
        max_length=NAME_MAX_LENGTH,
        required=False,
    )
    last = _clean_text(
        errors,
        "last_name",
        changes.get("last_name", user.last_name),
        max_length=NAME_MAX_LENGTH,
        required=False,
    )
    email_value = _clean_email(errors, changes.get("email", user.email))
    office = user.office
    if "office_code" in changes:
        office = _clean_office(errors, actor, changes["office_code"])
    errors.raise_if_any()
    before = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "office": _office_code(user),
    }
    after = {
        "first_name": first,
        "last_name": last,
        "email": email_value,
        "office": office.code if office else None,
    }
    field_changes = diff(before, after)
    if not field_changes:
        return user
    user.first_name, user.last_name, user.email, user.office = first, last, email_value, office
    user.save(update_fields=["first_name", "last_name", "email", "office"])
    audit_record(
        actor=actor,
        action="staff.update",
        entity_type="user",
        entity_id=user.pk,
        changes=field_changes,
    )
    return user


@transaction.atomic(durable=True)
def staff_set_roles(*, actor: Actor, user_id: int, roles: Iterable[str]) -> User:
    """Give the account exactly ``roles`` (possibly none).

    API tokens scoped to a withdrawn role are revoked in the same transaction. The API refuses
    such a token anyway (see ``ApiTokenAuth``), but revoking it means granting the role again
    later does not silently bring an old token back to life, and the token list shows the
    truth."""
    user = _user_for_write(actor, user_id)
    errors = FieldErrors()
    wanted = _clean_roles(errors, roles, require_one=False)
    if _is_self(actor, user) and Role.ADMINISTRATOR.value not in wanted:
        errors.add(
            "roles",
            "staff.own_administrator_role",
            _("You cannot remove your own administrator role. Ask another administrator."),
        )
    errors.raise_if_any()
    held = sorted(RoleAssignment.objects.filter(user=user).values_list("role", flat=True))
    withdrawn = sorted(set(held) - set(wanted))
    granted = sorted(set(wanted) - set(held))
    if not withdrawn and not granted:
        return user
    RoleAssignment.objects.filter(user=user, role__in=withdrawn).delete()
    RoleAssignment.objects.bulk_create(RoleAssignment(user=user, role=role) for role in granted)
    audit_record(
        actor=actor,
        action="staff.roles_set",
        entity_type="user",
        entity_id=user.pk,
        changes={"roles": [held, wanted]},
    )
    _revoke_tokens(
        actor, ApiToken.objects.filter(user=user, role__in=withdrawn), note="role withdrawn"
    )
    return user


@transaction.atomic(durable=True)
def staff_unlock(*, actor: Actor, user_id: int) -> User:
    """End a lockout after failed sign-ins and reset the failure count, so the staff member can
    sign in at once instead of waiting PILAR_LOCKOUT_MINUTES."""
    user = _user_for_write(actor, user_id)
    if not user.is_locked() and not user.failed_login_count:
        raise Conflict(_("The account is not locked."), code="staff.not_locked")
    changes = diff(
        {"locked_until": user.locked_until, "failed_login_count": user.failed_login_count},
        {"locked_until": None, "failed_login_count": 0},
    )
    user.locked_until = None
    user.failed_login_count = 0
    user.save(update_fields=["locked_until", "failed_login_count"])
    audit_record(
        actor=actor, action="staff.unlock", entity_type="user", entity_id=user.pk, changes=changes
    )
    return user


@transaction.atomic(durable=True)
def staff_deactivate(*, actor: Actor, user_id: int, reason: str) -> User:
    """Disable the account: it can no longer sign in, its open sessions end at their next
    request (Django refuses inactive users), and all its API tokens are revoked in the same
    transaction. The account and its history stay; ``staff_reactivate`` undoes this except for
    the tokens, which must be issued again."""
    user = _user_for_write(actor, user_id)
    if _is_self(actor, user):
        raise Conflict(
            _("You cannot deactivate your own account. Ask another administrator."),
            code="staff.own_account",
        )
    if not user.is_active:
        raise Conflict(_("The account is already deactivated."), code="staff.already_inactive")
    errors = FieldErrors()
    reason_value = _clean_text(
        errors, "reason", reason, max_length=REASON_MAX_LENGTH, required=True
    )
    errors.raise_if_any()
    user.is_active = False
    user.save(update_fields=["is_active"])
    audit_record(
        actor=actor,
        action="staff.deactivate",
        entity_type="user",
        entity_id=user.pk,
        changes={"is_active": [True, False]},
        note=reason_value,
    )
    _revoke_tokens(actor, ApiToken.objects.filter(user=user), note="account deactivated")
    return user


@transaction.atomic(durable=True)
def staff_reactivate(*, actor: Actor, user_id: int) -> User:
    """Enable a deactivated account again. Its old API tokens stay revoked."""
    user = _user_for_write(actor, user_id)
    if user.is_active:
        raise Conflict(_("The account is already active."), code="staff.already_active")
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit_record(
        actor=actor,
        action="staff.reactivate",
        entity_type="user",
        entity_id=user.pk,
        changes={"is_active": [False, True]},
    )
    return user


@transaction.atomic(durable=True)
def staff_set_password(*, actor: Actor, user_id: int, password: str) -> User:
    """Set a new password (it must pass the password validators). Django ties sessions to the
    password hash, so the staff member's open sessions end; the caller keeps its own session
    when an administrator sets their own password."""
    user = _user_for_write(actor, user_id)
    errors = FieldErrors()
    _check_password(errors, password, user)
    errors.raise_if_any()
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(
        actor=actor,
        action="staff.password_set",
        entity_type="user",
        entity_id=user.pk,
        note=PASSWORD_NOTE,
    )
    return user
