"""Generated cases for any package: random inputs aimed at the package's own boundaries.

Uniform random inputs rarely land on a table's interval bound or a legal age, where single and
bulk evaluation could disagree; so numbers are drawn partly from the package's constants
(parameter values, table bounds, formula literals), those constants nudged by a centavo or a
unit, and products of two of them (a salary of 1.25 minimum wages), and dates partly as
"exactly N years before the evaluation date", plus or minus a day.
"""

from __future__ import annotations

import datetime
import random
from decimal import Decimal
from typing import Any

from pilar.rules.expressions import Literal, walk
from pilar.rules.package import Package
from pilar.rules.tables import Interval, TextSet

FIRST_DAY = datetime.date(1930, 1, 1)
LAST_DAY = datetime.date(2035, 12, 31)


class Constants:
    """The numbers, dates and texts a package mentions."""

    def __init__(self, package: Package) -> None:
        numbers: set[Decimal] = {Decimal(0), Decimal(1)}
        bounds: set[Decimal] = set()
        scales: set[Decimal] = set()
        dates: set[datetime.date] = set()
        texts: set[str] = {"otro"}
        for parameter in package.parameters.values():
            for entry in parameter.entries:
                dates.add(entry.valid_from)
                dates.add(entry.known_from)
                _collect(entry.value, numbers, dates, texts)
                if isinstance(entry.value, Decimal) and entry.value > 1:
                    scales.add(entry.value)
        for table in package.tables.values():
            for row in table.rows:
                for cell in row.cells.values():
                    if isinstance(cell, Interval):
                        for bound in (cell.low, cell.high):
                            if bound is not None:
                                _collect(bound, numbers, dates, texts)
                                if isinstance(bound, Decimal):
                                    bounds.add(bound)
                    elif isinstance(cell, TextSet):
                        texts.update(cell.values)
        for variable in package.variables.values():
            if variable.default is not None:
                _collect(variable.default, numbers, dates, texts)
            for expression in variable.expressions():
                for node in walk(expression.root):
                    if isinstance(node, Literal):
                        _collect(node.value, numbers, dates, texts)
        self.numbers = sorted(numbers)
        self.dates = sorted(dates)
        self.texts = sorted(texts)
        self.small_numbers = [n for n in self.numbers if abs(n) <= 200] or [Decimal(0)]
        # A table bound times a parameter (1.25 minimum wages): a salary that lands exactly
        # on a row's edge once divided by the parameter.
        self.bounds = sorted(bounds) or [Decimal(1)]
        self.scales = sorted(scales) or [Decimal(1)]


def _collect(value: Any, numbers: set[Decimal], dates: set[datetime.date], texts: set[str]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, Decimal):
        numbers.add(value)
    elif isinstance(value, datetime.date):
        dates.add(value)
    elif isinstance(value, str):
        texts.add(value)


def _random_date(rng: random.Random) -> datetime.date:
    span = (LAST_DAY - FIRST_DAY).days
    return FIRST_DAY + datetime.timedelta(days=rng.randrange(span))


def _years_before(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)


class CaseGenerator:
    def __init__(self, package: Package, seed: int) -> None:
        self.package = package
        self.constants = Constants(package)
        self.rng = random.Random(seed)

    def evaluation_date(self) -> datetime.date:
        rng = self.rng
        if self.constants.dates and rng.random() < 0.4:
            base = rng.choice(self.constants.dates)
            return base + datetime.timedelta(days=rng.choice((-1, 0, 0, 1, 30, 365)))
        return datetime.date(1995, 1, 1) + datetime.timedelta(days=rng.randrange(40 * 365))

    def number(self) -> Decimal:
        rng = self.rng
        numbers = self.constants.numbers
        choice = rng.random()
        if choice < 0.3:
            return Decimal(rng.randrange(0, 3000))
        if choice < 0.5:
            return Decimal(rng.randrange(0, 300_000)) / 100
        if choice < 0.65:
            return rng.choice(self.constants.bounds) * rng.choice(self.constants.scales)
        if choice < 0.8:
            nudge = rng.choice(
                (Decimal(0), Decimal("0.01"), Decimal("-0.01"), Decimal(1), Decimal(-1))
            )
            return rng.choice(numbers) + nudge
        # A product such as 1.25 minimum wages lands exactly on a table bound, where float
        # noise would decide the row without the tolerance; nudged, just either side of it.
        product = rng.choice(numbers) * rng.choice(numbers)
        if rng.random() < 0.5:
            return product
        nudge = rng.choice((Decimal("0.01"), Decimal("-0.01")))
        return product.quantize(Decimal("0.01")) + nudge

    def date(self, on: datetime.date) -> datetime.date:
        rng = self.rng
        choice = rng.random()
        if choice < 0.4:
            years = int(rng.choice(self.constants.small_numbers))
            return _years_before(on, years) + datetime.timedelta(days=rng.choice((-1, 0, 1)))
        if choice < 0.6 and self.constants.dates:
            return rng.choice(self.constants.dates) + datetime.timedelta(
                days=rng.choice((-1, 0, 1))
            )
        return _random_date(rng)

    def case(self) -> tuple[dict[str, Any], datetime.date]:
        """Inputs for every input variable (optional ones sometimes left out) and a date."""
        rng = self.rng
        on = self.evaluation_date()
        inputs: dict[str, Any] = {}
        for name, variable in self.package.inputs.items():
            if variable.optional and rng.random() < 0.3:
                inputs[name] = None
                continue
            if variable.type == "number":
                inputs[name] = self.number()
            elif variable.type == "date":
                inputs[name] = self.date(on)
            elif variable.type == "bool":
                inputs[name] = rng.random() < 0.5
            else:
                inputs[name] = rng.choice(self.constants.texts)
        return inputs, on
