"""The contribution of one worker line for one month, split by branch into employer and worker
shares. Pure functions: no Django, no database. The caller passes a snapshot of the parameters in
force (``parameters.parameter_snapshot(on=first day of the period)``), which keeps this module
ready to move into the ``rules`` package and to be vectorised for bulk statements.

What is implemented (LSS = Ley del Seguro Social; percentages are parameters, not constants):

- Base (LSS art. 28): the declared daily SBC, raised to the minimum wage (floor) and lowered to
  ``sbc_cap_uma`` × UMA (cap, 25 UMA). The same capped base serves the INFONAVIT contribution
  (Ley del INFONAVIT art. 29 fr. II).
- Sickness and maternity, in kind (art. 106): a fixed fee (cuota fija) of 20.40% of one UMA per
  day, employer only, whatever the salary; plus, on the part of the base above 3 UMA (excedente),
  1.10% employer and 0.40% worker.
- Sickness and maternity, cash benefits (art. 107) and pensioners' medical expenses (art. 25):
  a percentage of the base, employer and worker.
- Disability and life (art. 147); work risks (arts. 71–74, employer only, the employer's own
  premium when given, else the parameter's default); childcare and social benefits (art. 211,
  employer only); retirement (art. 168 fr. I, employer only); old age and cesantía (art. 168
  fr. II: employer rate by SBC band from 2023 under the 2020 reform, worker 1.125%); housing
  (Ley del INFONAVIT art. 29 fr. II, employer only).
- A worker on the minimum wage does not pay: the employer pays the worker's share too (art. 36).

Days (art. 31; NEEDS VERIFICATION against the LSS and the SUA's rules):

- ``days`` is the days the worker was employed in the month; absence and incapacity days are
  part of it.
- Incapacity days (the worker receives an IMSS subsidy) are paid to no IMSS branch, nor to
  retirement and old age; housing (INFONAVIT) IS paid for them — our reading of INFONAVIT
  practice; the brief that started this slice assumed the opposite, so check it.
- Unpaid absences (at most 7 in a month, art. 31 fr. I) are still paid to sickness and maternity
  (all four parts) and to no other branch.

Not implemented: the government's shares and the cuota social; the bimonthly grouping of
retirement, old age and housing (the sum of the two months' results); the northern border zone
minimum wage; SBC band rounding beyond a plain comparison (an SBC of 1.505 UMA is "above 1.50").

Each share is rounded to centavos, half up, per branch and line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENTAVO = Decimal("0.01")
HUNDRED = Decimal(100)
MAX_ABSENCE_DAYS = 7

MINIMUM_WAGE = "minimum_wage_daily"
UMA = "uma_daily"
CAP_UMA = "sbc_cap_uma"
EXCESS_THRESHOLD_UMA = "sickness_maternity.excess_threshold_uma"

# The employer's old-age and cesantía rate from 2023, by SBC band (2020 reform). Each band is
# the suffix of its parameter code and the upper limit of the band in UMA (None: no limit). The
# first band is the minimum wage itself, whatever it is worth in UMA.
CESANTIA_BANDS: tuple[tuple[str, Decimal | None], ...] = (
    ("up_to_1_00_minimum_wage", None),
    ("1_01_to_1_50_uma", Decimal("1.50")),
    ("1_51_to_2_00_uma", Decimal("2.00")),
    ("2_01_to_2_50_uma", Decimal("2.50")),
    ("2_51_to_3_00_uma", Decimal("3.00")),
    ("3_01_to_3_50_uma", Decimal("3.50")),
    ("3_51_to_4_00_uma", Decimal("4.00")),
    ("4_01_uma_and_above", None),
)
CESANTIA_EMPLOYER = "rate.old_age_cesantia.employer"


class Branch:
    """Branch codes, in the order a statement shows them."""

    SICKNESS_IN_KIND_FIXED = "sickness_maternity.in_kind_fixed"
    SICKNESS_IN_KIND_EXCESS = "sickness_maternity.in_kind_excess"
    SICKNESS_CASH = "sickness_maternity.cash"
    SICKNESS_PENSIONERS = "sickness_maternity.pensioners"
    DISABILITY_LIFE = "disability_life"
    WORK_RISKS = "work_risks"
    CHILDCARE = "childcare"
    RETIREMENT = "retirement"
    OLD_AGE_CESANTIA = "old_age_cesantia"
    HOUSING = "housing"


class MissingParameter(KeyError):
    """The snapshot lacks a parameter the calculation needs (none was in force)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class InvalidLine(ValueError):
    """The line's days or salary cannot be computed; validation should have caught it."""


@dataclass(frozen=True)
class WorkerLine:
    daily_base_salary: Decimal  # SBC as declared
    days: int  # days employed in the month, including absence and incapacity days
    absence_days: int = 0
    incapacity_days: int = 0
    # The employer's work-risk premium in percent; None uses the parameter's default.
    work_risk_rate: Decimal | None = None


@dataclass(frozen=True)
class BranchShare:
    branch: str
    employer: Decimal
    worker: Decimal

    @property
    def total(self) -> Decimal:
        return self.employer + self.worker


@dataclass(frozen=True)
class LineContribution:
    base: Decimal  # the daily base after floor and cap
    floor_applied: bool
    cap_applied: bool
    worker_share_paid_by_employer: bool
    shares: tuple[BranchShare, ...]

    def share(self, branch: str) -> BranchShare:
        for share in self.shares:
            if share.branch == branch:
                return share
        raise KeyError(branch)

    @property
    def employer_total(self) -> Decimal:
        return sum((s.employer for s in self.shares), Decimal(0))

    @property
    def worker_total(self) -> Decimal:
        return sum((s.worker for s in self.shares), Decimal(0))


def _get(parameters: Mapping[str, Decimal], code: str) -> Decimal:
    try:
        return Decimal(parameters[code])
    except KeyError:
        raise MissingParameter(code) from None


def _amount(base: Decimal, percent: Decimal, days: int) -> Decimal:
    return (base * percent / HUNDRED * days).quantize(CENTAVO, rounding=ROUND_HALF_UP)


def cesantia_employer_rate(
    base: Decimal, *, minimum_wage: Decimal, uma: Decimal, parameters: Mapping[str, Decimal]
) -> Decimal:
    """The employer's old-age and cesantía rate for a daily base: the band's rate where the
    banded parameters are in force (2023 on), else the single rate (before 2023)."""
    banded_code = f"{CESANTIA_EMPLOYER}.{CESANTIA_BANDS[0][0]}"
    if banded_code not in parameters:
        return _get(parameters, CESANTIA_EMPLOYER)
    if base <= minimum_wage:
        return _get(parameters, banded_code)
    multiple = base / uma
    for suffix, upper in CESANTIA_BANDS[1:]:
        if upper is None or multiple <= upper:
            return _get(parameters, f"{CESANTIA_EMPLOYER}.{suffix}")
    raise AssertionError("the last band has no upper limit")  # pragma: no cover


def line_contribution(
    line: WorkerLine, *, parameters: Mapping[str, Decimal], period_days: int
) -> LineContribution:
    """The contribution of one worker for one month of ``period_days`` days (see the module
    docstring for the rules). Raises ``InvalidLine`` or ``MissingParameter``."""
    if not 0 <= line.days <= period_days:
        raise InvalidLine(f"days must be between 0 and {period_days}")
    if line.absence_days < 0 or line.incapacity_days < 0:
        raise InvalidLine("absence and incapacity days cannot be negative")
    if line.absence_days + line.incapacity_days > line.days:
        raise InvalidLine("absence and incapacity days cannot exceed the days employed")
    if line.absence_days > MAX_ABSENCE_DAYS:
        raise InvalidLine(f"at most {MAX_ABSENCE_DAYS} absence days a month (LSS art. 31)")
    if line.daily_base_salary <= 0:
        raise InvalidLine("the daily base salary must be positive")

    minimum_wage = _get(parameters, MINIMUM_WAGE)
    uma = _get(parameters, UMA)
    cap = _get(parameters, CAP_UMA) * uma
    base = min(max(line.daily_base_salary, minimum_wage), cap).quantize(
        CENTAVO, rounding=ROUND_HALF_UP
    )
    floor_applied = line.daily_base_salary < minimum_wage
    cap_applied = line.daily_base_salary > cap

    # Days each group of branches is paid for (module docstring, "Days").
    sickness_days = line.days - line.incapacity_days
    other_days = line.days - line.incapacity_days - line.absence_days
    housing_days = line.days - line.absence_days

    def rate(code: str) -> Decimal:
        return _get(parameters, f"rate.{code}")

    excess = max(base - _get(parameters, EXCESS_THRESHOLD_UMA) * uma, Decimal(0))
    work_risk_rate = (
        line.work_risk_rate if line.work_risk_rate is not None else rate("work_risks.employer")
    )
    cesantia_rate = cesantia_employer_rate(
        base, minimum_wage=minimum_wage, uma=uma, parameters=parameters
    )
    zero = Decimal("0.00")
    shares = [
        # Art. 106 fr. I: a percentage of one UMA, not of the salary.
        BranchShare(
            Branch.SICKNESS_IN_KIND_FIXED,
            _amount(uma, rate("sickness_maternity.in_kind_fixed.employer"), sickness_days),
            zero,
        ),
        # Art. 106 fr. II: only the part of the base above 3 UMA.
        BranchShare(
            Branch.SICKNESS_IN_KIND_EXCESS,
            _amount(excess, rate("sickness_maternity.in_kind_excess.employer"), sickness_days),
            _amount(excess, rate("sickness_maternity.in_kind_excess.worker"), sickness_days),
        ),
        BranchShare(
            Branch.SICKNESS_CASH,
            _amount(base, rate("sickness_maternity.cash.employer"), sickness_days),
            _amount(base, rate("sickness_maternity.cash.worker"), sickness_days),
        ),
        BranchShare(
            Branch.SICKNESS_PENSIONERS,
            _amount(base, rate("sickness_maternity.pensioners.employer"), sickness_days),
            _amount(base, rate("sickness_maternity.pensioners.worker"), sickness_days),
        ),
        BranchShare(
            Branch.DISABILITY_LIFE,
            _amount(base, rate("disability_life.employer"), other_days),
            _amount(base, rate("disability_life.worker"), other_days),
        ),
        BranchShare(Branch.WORK_RISKS, _amount(base, work_risk_rate, other_days), zero),
        BranchShare(Branch.CHILDCARE, _amount(base, rate("childcare.employer"), other_days), zero),
        BranchShare(
            Branch.RETIREMENT, _amount(base, rate("retirement.employer"), other_days), zero
        ),
        BranchShare(
            Branch.OLD_AGE_CESANTIA,
            _amount(base, cesantia_rate, other_days),
            _amount(base, rate("old_age_cesantia.worker"), other_days),
        ),
        BranchShare(Branch.HOUSING, _amount(base, rate("housing.employer"), housing_days), zero),
    ]
    # Art. 36: the employer pays the worker's share for a worker earning the minimum wage.
    paid_by_employer = base <= minimum_wage
    if paid_by_employer:
        shares = [BranchShare(s.branch, s.employer + s.worker, zero) for s in shares]
    return LineContribution(
        base=base,
        floor_applied=floor_applied,
        cap_applied=cap_applied,
        worker_share_paid_by_employer=paid_by_employer,
        shares=tuple(shares),
    )
