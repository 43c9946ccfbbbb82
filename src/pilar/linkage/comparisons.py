"""The comparisons of the person model and their levels, written once and rendered twice: as
Splink comparison levels (SQL for DuckDB or Spark) and as Python predicates over two feature
dicts.

Why one definition for both: the batch runs score pairs in SQL through Splink, while the point
of entry and the review screen score one pair in Python (``linkage.scoring``). If the two
disagreed, a clerk would see a different weight from the one the batch run stored. Every level
is therefore an expression tree (``Cond``) that knows how to print itself as SQL for a dialect
and how to evaluate itself in Python with SQL's three-valued logic (a comparison with a null is
unknown, and ``CASE WHEN unknown`` does not take the branch). ``tests/test_comparisons.py``
checks on thousands of generated pairs that Splink's ``gamma_<comparison>`` equals
``Comparison.gamma(left, right)``.

The string functions are implemented here in pure Python with DuckDB's definitions:
``jaro_winkler_similarity`` (winkler boost of 0.1 per common prefix character, at most four,
applied only when the Jaro similarity exceeds 0.7), ``levenshtein`` and ``damerau_levenshtein``
(unrestricted: transpositions of letters that are not adjacent after other edits count, as in
DuckDB) — to the last bit, because a similarity one bit off can fall on the other side of 0.92
(DuckDB computes the Winkler boost with a fused multiply-add, emulated here). Spark runs the
same SQL with the similarity UDFs of Splink's jar (``damerau_levenshtein``), registered by
``SparkAPI`` — except Jaro-Winkler: the jar's counts half an odd number of out-of-order matches
as a fraction where DuckDB rounds down, so Spark calls ``pilar_jaro_winkler``, which
``engine.SparkEngine`` registers as a vectorised Python function (this module's
``jaro_winkler``) or, when asked for speed over agreement, as the jar's class.

Where the levels depart from docs/linkage.md, and why:
the surnames' exact level is adjusted by the frequency of the *pair* of surnames
(``surnames_sorted``), not of the paternal one alone — the level agrees on both, and Splink's
adjustment log2(u_level / tf) with a paternal surname's frequency (about 0.01) against the
level's u (about 3e-5) would take some eight bits off every such pair; the CURP's "close"
level applies only when one side has no CURP (two real CURPs that differ are a conflict, and
scoring them "close" counted a typo twice: precision 0.9966 → 1.0 at weight 0); two levels are
added — a given name one typing slip apart (short names fall below Jaro-Winkler 0.92 with one
typo) and one side with one surname only that is *similar* to one of the other's; sex and the
surnames have a null level (a list may lack them).

Public API:

- ``Comparison`` (``name``, ``levels``, ``gammas``, ``gamma(left, right)``,
  ``level_index(left, right)``, ``level_for_gamma(gamma)``, ``splink_dict(dialect, ...)``),
  ``Level`` (``key``, ``label``, ``is_null``, ``tf_column``).
- ``PERSON_COMPARISONS``: the seven comparisons of docs/linkage.md, in order;
  ``IDENTIFIER_COMPARISONS``; ``columns_used(comparisons)``.
- The expression builders (``L``, ``R``, ``eq``, ``same``, ``is_null``, ``either_null``,
  ``both``, ``either``, ``coalesce``, ``jaro_winkler_at_least``, ``levenshtein_at_most``,
  ``damerau_levenshtein_at_most``, ``days_apart_at_most``, ``tokens_overlap``), used by
  ``linkage.febrl`` for FEBRL's own comparisons.
- ``jaro_winkler``, ``jaro``, ``levenshtein``, ``damerau_levenshtein``: the string metrics.
"""

from __future__ import annotations

import datetime
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

Dialect = Literal["duckdb", "spark"]
DIALECTS: tuple[Dialect, ...] = ("duckdb", "spark")

# The Jaro-Winkler threshold of docs/linkage.md: one typo in a name of six letters or more,
# or two in a long name, stays above it; different names of the same length rarely reach it.
JARO_WINKLER_THRESHOLD = 0.92

Features = Mapping[str, Any]

# The Jaro-Winkler function Spark SQL calls; ``engine.SparkEngine`` registers it. Splink's jar
# has a ``jaro_winkler`` too, but it counts half transpositions as a fraction (OROZCO/OROOZCO:
# 0.908 against DuckDB's 0.928), which moves pairs across the 0.92 threshold.
SPARK_JARO_WINKLER = "pilar_jaro_winkler"


# --- string metrics (DuckDB's definitions) ---------------------------------------------------


def jaro(first: str, second: str) -> float:
    """Jaro similarity as DuckDB's ``jaro_similarity``: characters match within a window of
    ``max(len) // 2 - 1``; half the out-of-order matches are transpositions."""
    if not first and not second:
        return 0.0
    length_first, length_second = len(first), len(second)
    if not length_first or not length_second:
        return 0.0
    window = max(max(length_first, length_second) // 2 - 1, 0)
    matched_second = [False] * length_second
    first_matches: list[str] = []
    for index, char in enumerate(first):
        low = max(0, index - window)
        high = min(index + window + 1, length_second)
        for other in range(low, high):
            if not matched_second[other] and second[other] == char:
                matched_second[other] = True
                first_matches.append(char)
                break
    matches = len(first_matches)
    if not matches:
        return 0.0
    second_matches = [char for index, char in enumerate(second) if matched_second[index]]
    transpositions = sum(a != b for a, b in zip(first_matches, second_matches, strict=True)) // 2
    return (
        matches / length_first + matches / length_second + (matches - transpositions) / matches
    ) / 3.0


def _fused_multiply_add(a: float, b: float, c: float) -> float:
    """``a * b + c`` rounded once, as the fused multiply-add instruction DuckDB's compiled code
    uses (Python 3.11 has no ``math.fma``)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def jaro_winkler(first: str, second: str) -> float:
    """Jaro-Winkler similarity as DuckDB's ``jaro_winkler_similarity``, to the last bit: DuckDB
    computes the Winkler boost ``sim + prefix * 0.1 * (1 - sim)`` with one fused multiply-add,
    and a value that differs in the last bit can fall on the other side of 0.92."""
    similarity = jaro(first, second)
    if similarity > 0.7:
        prefix = 0
        for a, b in zip(first[:4], second[:4], strict=False):
            if a != b:
                break
            prefix += 1
        if prefix:
            similarity = _fused_multiply_add(prefix * 0.1, 1.0 - similarity, similarity)
    return similarity


def levenshtein(first: str, second: str) -> int:
    """Insertions, deletions and substitutions, as DuckDB's ``levenshtein``."""
    if len(first) < len(second):
        first, second = second, first
    previous = list(range(len(second) + 1))
    for i, char in enumerate(first, start=1):
        current = [i]
        for j, other in enumerate(second, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other))
            )
        previous = current
    return previous[-1]


def damerau_levenshtein(first: str, second: str) -> int:
    """Unrestricted Damerau-Levenshtein distance (Lowrance–Wagner), as DuckDB's
    ``damerau_levenshtein``: ``CA`` → ``ABC`` is 2, where the restricted variant says 3."""
    infinity = len(first) + len(second)
    last_row_of: dict[str, int] = {}
    width = len(second) + 2
    table = [[infinity] * width for _ in range(len(first) + 2)]
    for i in range(len(first) + 1):
        table[i + 1][0] = infinity
        table[i + 1][1] = i
    for j in range(len(second) + 1):
        table[0][j + 1] = infinity
        table[1][j + 1] = j
    for i in range(1, len(first) + 1):
        last_match_column = 0
        for j in range(1, len(second) + 1):
            k = last_row_of.get(second[j - 1], 0)
            m = last_match_column
            cost = 0 if first[i - 1] == second[j - 1] else 1
            if cost == 0:
                last_match_column = j
            table[i + 1][j + 1] = min(
                table[i][j] + cost,
                table[i + 1][j] + 1,
                table[i][j + 1] + 1,
                table[k][m] + (i - k - 1) + 1 + (j - m - 1),
            )
        last_row_of[first[i - 1]] = i
    return table[len(first) + 1][len(second) + 1]


def _iso_date(value: Any) -> datetime.date | None:
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        return None


# --- expressions -----------------------------------------------------------------------------


class Expr(ABC):
    """A value: a column of one side of the pair, or a function of values. ``value`` returns
    None for SQL NULL."""

    @abstractmethod
    def sql(self, dialect: Dialect) -> str: ...

    @abstractmethod
    def value(self, left: Features, right: Features) -> Any: ...


@dataclass(frozen=True)
class Column(Expr):
    name: str
    side: Literal["l", "r"]

    def sql(self, dialect: Dialect) -> str:
        return f"{self.name}_{self.side}"

    def value(self, left: Features, right: Features) -> Any:
        # Kept as given: an "" compares as a value, as it would in SQL (features never make
        # one; absent values are null).
        return (left if self.side == "l" else right).get(self.name)


def L(name: str) -> Column:
    return Column(name, "l")


def R(name: str) -> Column:
    return Column(name, "r")


@dataclass(frozen=True)
class Substring(Expr):
    """SQL ``substr(expr, start, length)`` with a 1-based start."""

    inner: Expr
    start: int
    length: int

    def sql(self, dialect: Dialect) -> str:
        return f"substr({self.inner.sql(dialect)}, {self.start}, {self.length})"

    def value(self, left: Features, right: Features) -> Any:
        text = self.inner.value(left, right)
        if text is None:
            return None
        return str(text)[self.start - 1 : self.start - 1 + self.length]


@dataclass(frozen=True)
class Digits(Expr):
    """An ISO date without its dashes (``YYYYMMDD``), so one-edit date errors are string
    edits."""

    inner: Expr

    def sql(self, dialect: Dialect) -> str:
        return f"replace({self.inner.sql(dialect)}, '-', '')"

    def value(self, left: Features, right: Features) -> Any:
        text = self.inner.value(left, right)
        return None if text is None else str(text).replace("-", "")


@dataclass(frozen=True)
class Coalesce(Expr):
    items: tuple[Expr, ...]

    def sql(self, dialect: Dialect) -> str:
        return "coalesce(" + ", ".join(item.sql(dialect) for item in self.items) + ")"

    def value(self, left: Features, right: Features) -> Any:
        for item in self.items:
            found = item.value(left, right)
            if found is not None:
                return found
        return None


def coalesce(*items: Expr) -> Coalesce:
    return Coalesce(tuple(items))


# --- conditions (three-valued: True, False, None = unknown) ----------------------------------


class Cond(ABC):
    @abstractmethod
    def sql(self, dialect: Dialect) -> str: ...

    @abstractmethod
    def holds(self, left: Features, right: Features) -> bool | None: ...


@dataclass(frozen=True)
class Equal(Cond):
    first: Expr
    second: Expr

    def sql(self, dialect: Dialect) -> str:
        return f"{self.first.sql(dialect)} = {self.second.sql(dialect)}"

    def holds(self, left: Features, right: Features) -> bool | None:
        a, b = self.first.value(left, right), self.second.value(left, right)
        if a is None or b is None:
            return None
        return bool(a == b)


@dataclass(frozen=True)
class IsNull(Cond):
    inner: Expr

    def sql(self, dialect: Dialect) -> str:
        return f"{self.inner.sql(dialect)} is null"

    def holds(self, left: Features, right: Features) -> bool | None:
        return self.inner.value(left, right) is None


@dataclass(frozen=True)
class And(Cond):
    items: tuple[Cond, ...]

    def sql(self, dialect: Dialect) -> str:
        return "(" + " and ".join(item.sql(dialect) for item in self.items) + ")"

    def holds(self, left: Features, right: Features) -> bool | None:
        unknown = False
        for item in self.items:
            result = item.holds(left, right)
            if result is False:
                return False
            if result is None:
                unknown = True
        return None if unknown else True


@dataclass(frozen=True)
class Or(Cond):
    items: tuple[Cond, ...]

    def sql(self, dialect: Dialect) -> str:
        return "(" + " or ".join(item.sql(dialect) for item in self.items) + ")"

    def holds(self, left: Features, right: Features) -> bool | None:
        unknown = False
        for item in self.items:
            result = item.holds(left, right)
            if result is True:
                return True
            if result is None:
                unknown = True
        return None if unknown else False


def both(*items: Cond) -> And:
    return And(tuple(items))


def either(*items: Cond) -> Or:
    return Or(tuple(items))


@dataclass(frozen=True)
class Metric(Cond):
    """``metric(first, second) <op> threshold`` for a string metric or a distance in days."""

    metric: Literal["jaro_winkler", "levenshtein", "damerau_levenshtein", "days"]
    first: Expr
    second: Expr
    threshold: float

    def _function_sql(self, dialect: Dialect) -> str:
        a, b = self.first.sql(dialect), self.second.sql(dialect)
        if self.metric == "jaro_winkler":
            name = "jaro_winkler_similarity" if dialect == "duckdb" else SPARK_JARO_WINKLER
            return f"{name}({a}, {b})"
        if self.metric == "levenshtein":
            return f"levenshtein({a}, {b})"
        if self.metric == "damerau_levenshtein":
            return f"damerau_levenshtein({a}, {b})"
        if dialect == "duckdb":
            return f"abs(date_diff('day', try_cast({a} as date), try_cast({b} as date)))"
        return f"abs(datediff(try_cast({a} as date), try_cast({b} as date)))"

    def sql(self, dialect: Dialect) -> str:
        operator = ">=" if self.metric == "jaro_winkler" else "<="
        return f"{self._function_sql(dialect)} {operator} {self.threshold}"

    def holds(self, left: Features, right: Features) -> bool | None:
        a, b = self.first.value(left, right), self.second.value(left, right)
        if a is None or b is None:
            return None
        if self.metric == "jaro_winkler":
            return jaro_winkler(str(a), str(b)) >= self.threshold
        if self.metric == "levenshtein":
            return levenshtein(str(a), str(b)) <= self.threshold
        if self.metric == "damerau_levenshtein":
            return damerau_levenshtein(str(a), str(b)) <= self.threshold
        first_date, second_date = _iso_date(a), _iso_date(b)
        if first_date is None or second_date is None:
            return None
        return abs((first_date - second_date).days) <= self.threshold


@dataclass(frozen=True)
class TokensOverlap(Cond):
    """The two space-separated values share a word."""

    first: Expr
    second: Expr

    def sql(self, dialect: Dialect) -> str:
        a, b = self.first.sql(dialect), self.second.sql(dialect)
        if dialect == "duckdb":
            return f"list_has_any(string_split({a}, ' '), string_split({b}, ' '))"
        return f"arrays_overlap(split({a}, ' '), split({b}, ' '))"

    def holds(self, left: Features, right: Features) -> bool | None:
        a, b = self.first.value(left, right), self.second.value(left, right)
        if a is None or b is None:
            return None
        return bool(set(str(a).split(" ")) & set(str(b).split(" ")))


def eq(first: Expr, second: Expr) -> Equal:
    return Equal(first, second)


def same(column: str) -> Equal:
    """Both sides have the same value in ``column``."""
    return Equal(L(column), R(column))


def is_null(inner: Expr) -> IsNull:
    return IsNull(inner)


def either_null(column: str) -> Or:
    return either(IsNull(L(column)), IsNull(R(column)))


def jaro_winkler_at_least(
    first: Expr, second: Expr, threshold: float = JARO_WINKLER_THRESHOLD
) -> Metric:
    return Metric("jaro_winkler", first, second, threshold)


def levenshtein_at_most(first: Expr, second: Expr, distance: int) -> Metric:
    return Metric("levenshtein", first, second, distance)


def damerau_levenshtein_at_most(first: Expr, second: Expr, distance: int) -> Metric:
    return Metric("damerau_levenshtein", first, second, distance)


def days_apart_at_most(first: Expr, second: Expr, days: int) -> Metric:
    return Metric("days", first, second, days)


def tokens_overlap(first: Expr, second: Expr) -> TokensOverlap:
    return TokensOverlap(first, second)


# --- levels and comparisons ------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """One level of a comparison. ``condition`` None is the "else" level. ``key`` is stable
    (the review screen translates it); ``label`` is English, for Splink's charts."""

    key: str
    label: str
    condition: Cond | None
    is_null: bool = False
    # Term-frequency adjustment: this level's weight becomes log2(m / tf(value)) using the
    # frequency of the value in ``tf_column`` (see linkage.model for where the table comes from).
    tf_column: str | None = None


@dataclass(frozen=True)
class Comparison:
    """An ordered list of levels, strongest first; the first that holds applies. ``columns``
    are the feature columns shown side by side in the breakdown (not all the columns the levels
    read: ``columns_used`` has those)."""

    name: str
    description: str
    levels: tuple[Level, ...]
    columns: tuple[str, ...]
    gammas: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.levels[-1].condition is not None:
            raise ValueError(f"comparison {self.name}: the last level must be 'else'")
        # Splink's numbering: the null level is -1, the others count down to 0 for "else".
        counter = sum(not level.is_null for level in self.levels) - 1
        gammas: list[int] = []
        for level in self.levels:
            if level.is_null:
                gammas.append(-1)
            else:
                gammas.append(counter)
                counter -= 1
        object.__setattr__(self, "gammas", tuple(gammas))

    @property
    def gamma_column(self) -> str:
        return f"gamma_{self.name}"

    def level_index(self, left: Features, right: Features) -> int:
        """Index into ``levels`` of the first level whose condition holds."""
        for index, level in enumerate(self.levels):
            if level.condition is None or level.condition.holds(left, right) is True:
                return index
        raise AssertionError("unreachable: the last level is 'else'")  # pragma: no cover

    def gamma(self, left: Features, right: Features) -> int:
        """Splink's comparison vector value for this pair."""
        return self.gammas[self.level_index(left, right)]

    def level_for_gamma(self, gamma: int) -> Level:
        return self.levels[self.gammas.index(gamma)]

    @property
    def tf_columns(self) -> tuple[str, ...]:
        return tuple(level.tf_column for level in self.levels if level.tf_column)

    def splink_dict(
        self,
        dialect: Dialect,
        *,
        parameters: Mapping[int, tuple[float | None, float | None]] | None = None,
        tf_minimum_u_value: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """This comparison as a Splink settings dict for ``dialect``; ``parameters`` maps a
        gamma to its (m, u) when the model is trained. A level's term-frequency adjustment is
        on only when ``tf_minimum_u_value`` has its column (the model has the table)."""
        levels: list[dict[str, Any]] = []
        for level, gamma in zip(self.levels, self.gammas, strict=True):
            entry: dict[str, Any] = {
                "sql_condition": "ELSE"
                if level.condition is None
                else level.condition.sql(dialect),
                "label_for_charts": level.label,
            }
            if level.is_null:
                entry["is_null_level"] = True
            if level.tf_column and tf_minimum_u_value and level.tf_column in tf_minimum_u_value:
                entry["tf_adjustment_column"] = level.tf_column
                entry["tf_adjustment_weight"] = 1.0
                entry["tf_minimum_u_value"] = tf_minimum_u_value[level.tf_column]
                # The exact level may compare several columns (both surnames) while the
                # frequency is of one column: the base is this level's own u.
                entry["disable_tf_exact_match_detection"] = True
            if parameters is not None and not level.is_null and gamma in parameters:
                m, u = parameters[gamma]
                if m is not None:
                    entry["m_probability"] = m
                if u is not None:
                    entry["u_probability"] = u
            levels.append(entry)
        return {
            "output_column_name": self.name,
            "comparison_description": self.description,
            "comparison_levels": levels,
        }


def comparison(name: str, description: str, columns: Sequence[str], *levels: Level) -> Comparison:
    return Comparison(
        name=name, description=description, levels=tuple(levels), columns=tuple(columns)
    )


def null_level(condition: Cond) -> Level:
    return Level("null", "Missing on either side", condition, is_null=True)


ELSE = Level("else", "All other comparisons", None)


# --- the person model's comparisons (docs/linkage.md) ----------------------------------------


def _surnames() -> Comparison:
    paternal_l, paternal_r = L("paternal_std"), R("paternal_std")
    maternal_l, maternal_r = L("maternal_std"), R("maternal_std")
    phon_p_l, phon_p_r = L("paternal_phon"), R("paternal_phon")
    phon_m_l, phon_m_r = L("maternal_phon"), R("maternal_phon")
    # A side "has one surname only" when exactly one of the two is present; the one it has
    # may sit in either position (features move a lone maternal surname as RENAPO does, but a
    # list may not).
    only_l = either(is_null(maternal_l), is_null(paternal_l))
    only_r = either(is_null(maternal_r), is_null(paternal_r))
    lone_l = coalesce(paternal_l, maternal_l)
    lone_r = coalesce(paternal_r, maternal_r)
    jw = jaro_winkler_at_least
    return comparison(
        "surnames",
        "Paternal and maternal surnames, allowing swap and absence",
        ("paternal_std", "maternal_std"),
        null_level(
            either(
                both(is_null(paternal_l), is_null(maternal_l)),
                both(is_null(paternal_r), is_null(maternal_r)),
            )
        ),
        Level(
            "exact",
            "Both surnames equal",
            both(
                eq(paternal_l, paternal_r),
                either(eq(maternal_l, maternal_r), both(is_null(maternal_l), is_null(maternal_r))),
            ),
            # The frequency of the pair of surnames, not of the paternal one alone: the level
            # agrees on both, and GARCÍA HERNÁNDEZ is far more common than GARCÍA IBARGÜENGOITIA.
            tf_column="surnames_sorted",
        ),
        Level(
            "swapped",
            "Surnames swapped",
            both(eq(paternal_l, maternal_r), eq(maternal_l, paternal_r)),
        ),
        Level(
            "one_missing",
            "One side has one surname only and it equals one of the other's",
            either(
                both(only_l, either(eq(lone_l, paternal_r), eq(lone_l, maternal_r))),
                both(only_r, either(eq(lone_r, paternal_l), eq(lone_r, maternal_l))),
            ),
        ),
        Level(
            "one_missing_similar",
            "One side has one surname only and it is similar to one of the other's",
            either(
                both(only_l, either(jw(lone_l, paternal_r), jw(lone_l, maternal_r))),
                both(only_r, either(jw(lone_r, paternal_l), jw(lone_r, maternal_l))),
            ),
        ),
        Level(
            "jaro_winkler_both",
            "Both surnames similar (Jaro-Winkler ≥ 0.92), straight or swapped",
            either(
                both(jw(paternal_l, paternal_r), jw(maternal_l, maternal_r)),
                both(jw(paternal_l, maternal_r), jw(maternal_l, paternal_r)),
            ),
        ),
        Level(
            "paternal_only",
            "Paternal surname equal, maternal different",
            eq(paternal_l, paternal_r),
        ),
        Level(
            "phonetic_both",
            "Both surnames sound alike, straight or swapped",
            either(
                both(eq(phon_p_l, phon_p_r), eq(phon_m_l, phon_m_r)),
                both(eq(phon_p_l, phon_m_r), eq(phon_m_l, phon_p_r)),
            ),
        ),
        Level(
            "jaro_winkler_one",
            "One surname similar (Jaro-Winkler ≥ 0.92) in either position",
            either(
                jw(paternal_l, paternal_r),
                jw(paternal_l, maternal_r),
                jw(maternal_l, paternal_r),
                jw(maternal_l, maternal_r),
            ),
        ),
        ELSE,
    )


def _given() -> Comparison:
    return comparison(
        "given",
        "Given names",
        ("given_std",),
        null_level(either_null("given_std")),
        Level("exact", "Given names equal", same("given_std"), tf_column="given_std"),
        Level("canonical", "Equal after nicknames (Pepe = José)", same("given_canon")),
        Level("main", "Main given name equal (RENAPO's rule)", same("given_main")),
        Level(
            "token",
            "A given name of one is a given name of the other",
            tokens_overlap(L("given_canon"), R("given_canon")),
        ),
        Level(
            "jaro_winkler",
            "Main given name similar (Jaro-Winkler ≥ 0.92)",
            jaro_winkler_at_least(L("given_main"), R("given_main")),
        ),
        Level("phonetic", "Main given name sounds alike", same("given_phon")),
        # Short names lose Jaro-Winkler to one typo (CARLOS/CAELOS is 0.91); one edit apart
        # they still weigh something, less than a sound-alike (MARIO/MARIA is one edit too).
        Level(
            "one_edit",
            "Main given name one typing slip apart",
            damerau_levenshtein_at_most(L("given_main"), R("given_main"), 1),
        ),
        ELSE,
    )


def _birth_date() -> Comparison:
    date_l, date_r = L("birth_date"), R("birth_date")
    return comparison(
        "birth_date",
        "Birth date",
        ("birth_date",),
        null_level(either_null("birth_date")),
        Level("exact", "Same date", eq(date_l, date_r)),
        Level("swapped", "Day and month swapped", eq(L("birth_date_swapped"), date_r)),
        Level(
            "one_edit",
            "One digit wrong or two adjacent digits swapped",
            damerau_levenshtein_at_most(Digits(date_l), Digits(date_r), 1),
        ),
        Level(
            "close",
            "Same year and month, or within 10 days",
            either(
                eq(Substring(date_l, 1, 7), Substring(date_r, 1, 7)),
                days_apart_at_most(date_l, date_r, 10),
            ),
        ),
        Level("year", "Same year", eq(Substring(date_l, 1, 4), Substring(date_r, 1, 4))),
        ELSE,
    )


def _curp() -> Comparison:
    return comparison(
        "curp",
        "CURP, or the CURP stem derived from the person's data",
        ("curp",),
        # Two records without a CURP: their derived stems only repeat what names and birth
        # date already say, so the comparison is skipped rather than counted twice.
        null_level(
            either(
                both(is_null(L("curp")), is_null(R("curp"))),
                both(is_null(L("curp")), is_null(L("derived_stem"))),
                both(is_null(R("curp")), is_null(R("derived_stem"))),
            )
        ),
        Level("exact", "Same CURP", same("curp")),
        Level("stem", "Same CURP stem (positions 17–18 differ)", same("curp_stem")),
        Level(
            "derived_stem",
            "One's CURP stem equals the stem derived from the other's data",
            either(
                eq(L("curp_stem"), R("stem_or_curp")),
                eq(R("curp_stem"), L("stem_or_curp")),
            ),
        ),
        # Only when one side has no CURP: two real CURPs that differ are an identifier
        # conflict however close they are, and a CURP stem repeats what names and birth date
        # already say — scoring "close" for two CURPs counted the same typo twice and linked
        # cousins born the same week (measured on the seeded registry: precision 0.9966 →
        # 1.0 at weight 0, recall unchanged).
        Level(
            "close",
            "No CURP on one side; the stems differ in one or two characters",
            both(
                either(is_null(L("curp")), is_null(R("curp"))),
                levenshtein_at_most(L("stem_or_curp"), R("stem_or_curp"), 2),
            ),
        ),
        Level("else", "Different CURP", None),
    )


def _nss() -> Comparison:
    return comparison(
        "nss",
        "NSS (social security number)",
        ("nss",),
        null_level(either_null("nss")),
        Level("exact", "Same NSS", same("nss")),
        Level("else", "Different NSS", None),
    )


def _sex() -> Comparison:
    # Registry records always have a sex; an external list may not, hence the null level.
    return comparison(
        "sex",
        "Sex",
        ("sex",),
        null_level(either_null("sex")),
        Level("exact", "Same sex", same("sex")),
        ELSE,
    )


def _birth_state() -> Comparison:
    return comparison(
        "birth_state",
        "Birth state",
        ("birth_state",),
        null_level(either_null("birth_state")),
        Level("exact", "Same birth state", same("birth_state")),
        ELSE,
    )


PERSON_COMPARISONS: tuple[Comparison, ...] = (
    _given(),
    _surnames(),
    _birth_date(),
    _curp(),
    _nss(),
    _sex(),
    _birth_state(),
)

# The comparisons whose "else" level, with both sides present, is an identifier conflict.
IDENTIFIER_COMPARISONS = ("curp", "nss")


def columns_used(comparisons: Sequence[Comparison]) -> tuple[str, ...]:
    """Every feature column the comparisons read, for selecting and validating frames."""
    names: list[str] = []

    def visit(node: object) -> None:
        if isinstance(node, Column):
            if node.name not in names:
                names.append(node.name)
            return
        for value in getattr(node, "__dict__", {}).values():
            if isinstance(value, tuple):
                for item in value:
                    visit(item)
            elif isinstance(value, (Expr, Cond)):
                visit(value)

    for item in comparisons:
        for level in item.levels:
            if level.condition is not None:
                visit(level.condition)
            if level.tf_column and level.tf_column not in names:
                names.append(level.tf_column)
    return tuple(names)
