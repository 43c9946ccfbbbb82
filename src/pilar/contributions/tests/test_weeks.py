"""Weeks of contribution from contribution records' spans (pure: no database)."""

from __future__ import annotations

import datetime

from pilar.contributions.weeks import Span, counted_days, weeks


def d(month: int, day: int, year: int = 2025) -> datetime.date:
    return datetime.date(year, month, day)


def test_a_full_month_counts_its_days() -> None:
    assert counted_days([Span(d(1, 1), d(1, 31), 31)]) == 31


def test_two_employers_in_the_same_month_count_the_days_once() -> None:
    spans = [Span(d(1, 1), d(1, 31), 31), Span(d(1, 16), d(1, 31), 16)]
    assert counted_days(spans) == 31


def test_partly_overlapping_spans_count_their_union() -> None:
    # A hire on the 10th at the second employer; the first ended on the 20th (20 days).
    spans = [Span(d(3, 1), d(3, 31), 20), Span(d(3, 10), d(3, 31), 22)]
    assert counted_days(spans) == 31


def test_absence_days_do_not_count() -> None:
    span = Span(d(1, 1), d(1, 31), 31, absence_days=3)
    assert span.counted() == (d(1, 1), d(1, 28))
    assert counted_days([span]) == 28


def test_absences_are_laid_from_the_start_so_an_overlap_may_still_cover_them() -> None:
    # The second job's days fill the days the first job's absences left uncounted.
    spans = [Span(d(1, 1), d(1, 31), 31, absence_days=10), Span(d(1, 20), d(1, 31), 12)]
    assert counted_days(spans) == 31


def test_zero_days_and_all_absent_count_nothing() -> None:
    assert Span(d(1, 1), d(1, 31), 0).counted() is None
    assert Span(d(1, 1), d(1, 31), 5, absence_days=5).counted() is None
    assert counted_days([Span(d(1, 1), d(1, 31), 0)]) == 0
    assert counted_days([]) == 0


def test_declared_days_beyond_the_span_are_capped_at_the_span() -> None:
    assert counted_days([Span(d(2, 1), d(2, 28), 31)]) == 28


def test_adjacent_months_add_up() -> None:
    spans = [Span(d(1, 1), d(1, 31), 31), Span(d(2, 1), d(2, 28), 28)]
    assert counted_days(spans) == 59
    assert weeks(59) == 8


def test_the_order_of_the_records_does_not_matter() -> None:
    spans = [
        Span(d(2, 1), d(2, 28), 28),
        Span(d(1, 16), d(1, 31), 16),
        Span(d(1, 1), d(1, 31), 31),
        Span(d(12, 1, 2024), d(12, 31, 2024), 31),
    ]
    assert counted_days(spans) == counted_days(reversed(spans)) == 90


def test_weeks_are_whole_weeks_of_counted_days() -> None:
    assert weeks(0) == 0
    assert weeks(6) == 0
    assert weeks(7) == 1
    assert weeks(1_560 * 7 + 6) == 1_560
