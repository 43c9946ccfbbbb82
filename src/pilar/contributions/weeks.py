"""Weeks of contribution (semanas cotizadas) from contribution records. Pure: no Django.

Each record covers a span of its month (``covered_from`` to ``covered_to``: from the later of
the month's first day and the hire date). The days it counts are its declared days less the
unpaid absence days (LSS art. 31: no contributions to the pension branches for them), laid from
the start of the span. Incapacity days count: the insured person receives a subsidy and the
period counts toward pension weeks (our reading of LSS art. 58 fr. I; NEEDS VERIFICATION).

Two employers in the same month cover the same calendar days at most once: the counted days of
a person are the size of the union of all their records' counted intervals. Weeks are those
days divided by seven, whole weeks as IMSS reports them.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

DAYS_PER_WEEK = 7


@dataclass(frozen=True)
class Span:
    covered_from: datetime.date
    covered_to: datetime.date
    days: int
    absence_days: int = 0

    def counted(self) -> tuple[datetime.date, datetime.date] | None:
        """The interval of days this record counts toward weeks, or None."""
        count = min(self.days - self.absence_days, (self.covered_to - self.covered_from).days + 1)
        if count <= 0:
            return None
        return self.covered_from, self.covered_from + datetime.timedelta(days=count - 1)


def counted_days(spans: Iterable[Span]) -> int:
    """The number of distinct calendar days the spans count (overlaps once)."""
    intervals = sorted(i for i in (s.counted() for s in spans) if i is not None)
    total = 0
    current_start: datetime.date | None = None
    current_end: datetime.date | None = None
    for start, end in intervals:
        if current_end is None or current_start is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += (current_end - current_start).days + 1
            current_start, current_end = start, end
        elif end > current_end:
            current_end = end
    if current_end is not None and current_start is not None:
        total += (current_end - current_start).days + 1
    return total


def weeks(days: int) -> int:
    return days // DAYS_PER_WEEK
