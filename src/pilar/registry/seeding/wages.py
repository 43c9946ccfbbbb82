"""Wage figures the seeder needs to make salaries believable, by calendar year.

The figures are approximate and must be checked against the Diario Oficial de la Federación (DOF)
before anything but synthetic data relies on them; later issues move them into the parameter
store, where scheme rules read them with their legal source and validity dates. Amounts are daily
pesos of today's currency: the 1993 redenomination divided old pesos by 1,000, so earlier figures
are the old amounts divided by 1,000 (and look tiny).
"""

from __future__ import annotations

# General minimum wage (salario mínimo general, zone A / Mexico City), daily pesos. Where a year
# had several increases (the 1980s) the value is the highest rate in force that year, so a salary
# at or above it is at or above every rate of that year.
# fmt: off
MINIMUM_WAGE: dict[int, float] = {
    1960: 0.0145, 1961: 0.0145, 1962: 0.0175, 1963: 0.0175, 1964: 0.0215, 1965: 0.0215,
    1966: 0.025, 1967: 0.025, 1968: 0.02825, 1969: 0.02825, 1970: 0.032, 1971: 0.032,
    1972: 0.038, 1973: 0.044, 1974: 0.052, 1975: 0.0634, 1976: 0.0967, 1977: 0.1064,
    1978: 0.120, 1979: 0.138, 1980: 0.163, 1981: 0.210, 1982: 0.364, 1983: 0.523, 1984: 0.816,
    1985: 1.250, 1986: 2.480, 1987: 6.470, 1988: 8.000, 1989: 9.160, 1990: 11.900,
    1991: 13.330, 1992: 13.330, 1993: 14.27, 1994: 15.27, 1995: 20.15, 1996: 26.45,
    1997: 26.45, 1998: 34.45, 1999: 34.45, 2000: 37.90, 2001: 40.35, 2002: 42.15, 2003: 43.65,
    2004: 45.24, 2005: 46.80, 2006: 48.67, 2007: 50.57, 2008: 52.59, 2009: 54.80, 2010: 57.46,
    2011: 59.82, 2012: 62.33, 2013: 64.76, 2014: 67.29, 2015: 70.10, 2016: 73.04, 2017: 80.04,
    2018: 88.36, 2019: 102.68, 2020: 123.22, 2021: 141.70, 2022: 172.87, 2023: 207.44,
    2024: 248.93, 2025: 278.80, 2026: 315.04,
}
# fmt: on

# Unidad de Medida y Actualización (UMA), daily pesos, which replaced the minimum wage as the
# reference for caps and fines in 2016. The contribution base (SBC) is capped at 25 UMA; before
# the UMA the cap was 25 minimum wages.
# fmt: off
UMA: dict[int, float] = {
    2016: 73.04, 2017: 75.49, 2018: 80.60, 2019: 84.49, 2020: 86.88, 2021: 89.62, 2022: 96.22,
    2023: 103.74, 2024: 108.57, 2025: 113.14, 2026: 117.31,
}
# fmt: on

FIRST_YEAR = min(MINIMUM_WAGE)
LAST_YEAR = max(MINIMUM_WAGE)
SALARY_CAP_MULTIPLE = 25

# Since 2019 the minimum wage has risen far faster than wages in general (it more than doubled
# in real terms), so from then on the seeder lets ordinary salaries follow a general wage index
# instead, growing about 9% a year in nominal terms (roughly what IMSS's average contribution
# base did), and the minimum wage acts as the floor.
_WAGE_INDEX_FROM = 2018
_WAGE_INDEX_GROWTH = 1.09


def _clamp(year: int) -> int:
    return min(max(year, FIRST_YEAR), LAST_YEAR)


def minimum_wage(year: int) -> float:
    """The general daily minimum wage of ``year`` (clamped to the table's years)."""
    return MINIMUM_WAGE[_clamp(year)]


def minimum_wage_cents(year: int) -> int:
    """The minimum wage in whole cents, rounded up, so a salary of at least this many cents is
    never below the minimum wage of its year."""
    return _ceil_cents(minimum_wage(year))


def reference_wage(year: int) -> float:
    """What a salary of multiple 1.0 is worth in ``year``: the minimum wage until 2018, then a
    general wage index (see above)."""
    year = _clamp(year)
    if year <= _WAGE_INDEX_FROM:
        return MINIMUM_WAGE[year]
    return MINIMUM_WAGE[_WAGE_INDEX_FROM] * _WAGE_INDEX_GROWTH ** (year - _WAGE_INDEX_FROM)


def salary_cap(year: int) -> float:
    """The highest daily contribution base of ``year``: 25 UMA, or 25 minimum wages before 2016."""
    year = _clamp(year)
    base = UMA.get(year, MINIMUM_WAGE[year])
    return SALARY_CAP_MULTIPLE * base


def _ceil_cents(amount: float) -> int:
    cents = int(amount * 100)
    return cents if cents >= amount * 100 - 1e-9 else cents + 1


# Precomputed per year, because the career simulation asks for these millions of times.
MINIMUM_CENTS_BY_YEAR: dict[int, int] = {
    year: minimum_wage_cents(year) for year in range(FIRST_YEAR - 100, LAST_YEAR + 100)
}
REFERENCE_BY_YEAR: dict[int, float] = {
    year: reference_wage(year) for year in range(FIRST_YEAR - 100, LAST_YEAR + 100)
}
CAP_CENTS_BY_YEAR: dict[int, int] = {
    year: int(salary_cap(year) * 100) for year in range(FIRST_YEAR - 100, LAST_YEAR + 100)
}
