"""Roles and what each may do.

Permissions are checked in services and selectors (never only in views), so the UI, the API and
the CLI enforce the same rules. A staff member may hold several roles; an API token is scoped to
exactly one of its owner's roles and carries only that role's permissions.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    REGISTRAR = "registrar", _("Registrar")
    BENEFITS_OFFICER = "benefits_officer", _("Benefits officer")
    CASE_WORKER = "case_worker", _("Case worker")
    DATA_STEWARD = "data_steward", _("Data steward")
    AUDITOR = "auditor", _("Auditor")
    ANALYST = "analyst", _("Analyst")
    ADMINISTRATOR = "administrator", _("Administrator")
    COLLECTIONS_OFFICER = "collections_officer", _("Collections officer")


class Perm:
    PERSON_VIEW = "person.view"
    PERSON_REGISTER = "person.register"
    PERSON_UPDATE = "person.update"
    FAMILY_MANAGE = "family.manage"
    EMPLOYER_VIEW = "employer.view"
    EMPLOYER_REGISTER = "employer.register"
    EMPLOYER_UPDATE = "employer.update"
    EMPLOYMENT_MANAGE = "employment.manage"
    ENROLMENT_MANAGE = "enrolment.manage"
    AUDIT_VIEW = "audit.view"
    ACCESS_LOG_VIEW = "access_log.view"
    STATISTICS_VIEW = "statistics.view"
    USER_MANAGE = "user.manage"
    TOKEN_MANAGE = "token.manage"  # noqa: S105 — a permission name, not a secret
    PARAMETER_MANAGE = "parameter.manage"
    DECLARATION_VIEW = "declaration.view"
    # Submitting and confirming a declaration: the employer in the portal, or collections staff
    # on the employer's behalf (a file brought to the counter).
    DECLARATION_SUBMIT = "declaration.submit"
    ACCOUNT_VIEW = "account.view"
    PAYMENT_RECORD = "payment.record"
    # Benefits: a claim is entered, adjudicated by the rules engine, and the decision approved
    # or returned by a second officer (maker–checker) before an award exists.
    CLAIM_VIEW = "claim.view"
    CLAIM_ENTER = "claim.enter"
    CLAIM_ADJUDICATE = "claim.adjudicate"
    DECISION_APPROVE = "decision.approve"
    AWARD_VIEW = "award.view"
    # Previewing a parameter change on all awards and running a recalculation.
    RECALCULATION_RUN = "recalculation.run"
    # Record linkage: seeing runs, clusters and the review queue; deciding pairs; merging and
    # unmerging records; starting runs and training models; the cross-programme check.
    LINKAGE_VIEW = "linkage.view"
    LINKAGE_REVIEW = "linkage.review"
    PERSON_MERGE = "person.merge"
    LINKAGE_RUN = "linkage.run"
    # Federation: seeing the exchange monitor, agreements, trust list and transparency log;
    # asking another institution for a person's data (always with a stated purpose); managing
    # agreements (on the hub), the trust list, this node's keys and failed messages.
    EXCHANGE_VIEW = "exchange.view"
    EXCHANGE_REQUEST = "exchange.request"
    EXCHANGE_MANAGE = "exchange.manage"


_REGISTRY_WRITE = {
    Perm.PERSON_VIEW,
    Perm.PERSON_REGISTER,
    Perm.PERSON_UPDATE,
    Perm.FAMILY_MANAGE,
    Perm.EMPLOYER_VIEW,
    Perm.EMPLOYER_REGISTER,
    Perm.EMPLOYER_UPDATE,
    Perm.EMPLOYMENT_MANAGE,
    Perm.ENROLMENT_MANAGE,
}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    # Registrars enrol persons and employers and keep their master data current.
    # They may verify a person with another institution (a stated purpose, logged at both ends).
    Role.REGISTRAR: frozenset(
        _REGISTRY_WRITE | {Perm.STATISTICS_VIEW, Perm.DECLARATION_VIEW, Perm.EXCHANGE_REQUEST}
    ),
    # Benefits officers read the registry to decide claims; they do not edit master data.
    # They enter and adjudicate claims; a decision needs a second officer's approval, which the
    # services enforce (never the officer who made it).
    Role.BENEFITS_OFFICER: frozenset(
        {
            Perm.PERSON_VIEW,
            Perm.EMPLOYER_VIEW,
            Perm.ENROLMENT_MANAGE,
            Perm.CLAIM_VIEW,
            Perm.CLAIM_ENTER,
            Perm.CLAIM_ADJUDICATE,
            Perm.DECISION_APPROVE,
            Perm.AWARD_VIEW,
            Perm.RECALCULATION_RUN,
            # A totalisation claim needs the periods the person has with other institutions.
            Perm.EXCHANGE_REQUEST,
        }
    ),
    # Case workers handle appeals and complaints: read access plus family ties, which cases
    # about dependants and survivors often correct.
    Role.CASE_WORKER: frozenset({Perm.PERSON_VIEW, Perm.EMPLOYER_VIEW, Perm.FAMILY_MANAGE}),
    # Data stewards correct master data (rectification) across the country. They also keep the
    # effective-dated parameters (minimum wage, UMA, rates) current: these are reference data
    # published in the DOF, and stewards own reference data and its sources.
    Role.DATA_STEWARD: frozenset(
        _REGISTRY_WRITE
        | {
            Perm.STATISTICS_VIEW,
            Perm.ACCESS_LOG_VIEW,
            Perm.PARAMETER_MANAGE,
            Perm.DECLARATION_VIEW,
            # Stewards own the one-person-one-record rule: they run linkage, review the pairs
            # the model is unsure of, and merge or unmerge records.
            Perm.LINKAGE_VIEW,
            Perm.LINKAGE_REVIEW,
            Perm.PERSON_MERGE,
            Perm.LINKAGE_RUN,
        }
    ),
    # Auditors read everything, including who changed and who read what; they change nothing.
    Role.AUDITOR: frozenset(
        {
            Perm.PERSON_VIEW,
            Perm.EMPLOYER_VIEW,
            Perm.AUDIT_VIEW,
            Perm.ACCESS_LOG_VIEW,
            Perm.STATISTICS_VIEW,
            Perm.DECLARATION_VIEW,
            Perm.ACCOUNT_VIEW,
            Perm.CLAIM_VIEW,
            Perm.AWARD_VIEW,
            Perm.LINKAGE_VIEW,
            # What was exchanged with whom, the log and its auditors' cosignatures.
            Perm.EXCHANGE_VIEW,
        }
    ),
    # Analysts work with aggregates and employer data, never with individual person records.
    Role.ANALYST: frozenset(
        {Perm.EMPLOYER_VIEW, Perm.STATISTICS_VIEW, Perm.DECLARATION_VIEW, Perm.ACCOUNT_VIEW}
    ),
    # Administrators manage accounts and API tokens. Separation of duties: they cannot edit
    # person records. They may set parameters because loading the new year's published values
    # is node configuration, and a node without a data steward must still be able to do it; the
    # change is audited like any other.
    Role.ADMINISTRATOR: frozenset(
        {
            Perm.USER_MANAGE,
            Perm.TOKEN_MANAGE,
            Perm.STATISTICS_VIEW,
            Perm.EMPLOYER_VIEW,
            Perm.PARAMETER_MANAGE,
            # Federation membership is node configuration: keys, trust list, agreements (on the
            # hub) and retrying failed messages. No person data is read through it.
            Perm.EXCHANGE_VIEW,
            Perm.EXCHANGE_MANAGE,
        }
    ),
    # Collections officers run the contribution side: declarations (including files brought to
    # the counter), the employers' accounts, payments and bank files, arrears and non-filers.
    # They read employers, not person records.
    Role.COLLECTIONS_OFFICER: frozenset(
        {
            Perm.EMPLOYER_VIEW,
            Perm.DECLARATION_VIEW,
            Perm.DECLARATION_SUBMIT,
            Perm.ACCOUNT_VIEW,
            Perm.PAYMENT_RECORD,
            Perm.STATISTICS_VIEW,
        }
    ),
}

# What an employer's own portal account may do, always limited to that employer.
EMPLOYER_PORTAL_PERMISSIONS = frozenset(
    {Perm.DECLARATION_VIEW, Perm.DECLARATION_SUBMIT, Perm.ACCOUNT_VIEW}
)


def permissions_for(roles: frozenset[str] | set[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)
