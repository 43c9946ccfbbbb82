"""Pagination shared by selectors, the UI and the API.

Counting every match of a broad name search over millions of rows costs more than the page
itself, so counts are capped: past ``count_cap`` the total is reported as "more than".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from pilar.core.errors import ValidationFailed

T = TypeVar("T")
U = TypeVar("U")

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    number: int
    page_size: int
    total: int
    total_is_exact: bool

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        """The same page with each item converted (a model row into the view a caller shows)."""
        return Page(
            items=[convert(item) for item in self.items],
            number=self.number,
            page_size=self.page_size,
            total=self.total,
            total_is_exact=self.total_is_exact,
        )

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number * self.page_size < self.total

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def check_page_arguments(page: int, page_size: int) -> None:
    if page < 1:
        raise ValidationFailed.single("page", "page.invalid", _("Pages are numbered from 1."))
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationFailed.single(
            "page_size",
            "page_size.invalid",
            _("The page size must be between 1 and %(max)d.") % {"max": MAX_PAGE_SIZE},
        )


def paginate(queryset: QuerySet, *, page: int, page_size: int, count_cap: int = 10_000) -> Page:
    check_page_arguments(page, page_size)
    total = queryset[: count_cap + 1].count()
    exact = total <= count_cap
    if not exact:
        total = count_cap
    offset = (page - 1) * page_size
    items = list(queryset[offset : offset + page_size])
    return Page(items=items, number=page, page_size=page_size, total=total, total_is_exact=exact)
