"""The errors that turn one person into two records: what clerks and forms really get wrong.

Each duplicate carries one or more of these, listed by code in the ground-truth file so record
linkage can be evaluated per kind of error. How many, which ones and how often the duplicate
lacks a CURP is the run's *noise level* (``NOISE_LEVELS``):

* ``low``: mostly one error (nine duplicates in ten), nearly always lost accents or a typo;
  one duplicate in ten without a CURP, one worker in ten with a second NSS.
* ``high`` (the default): one to three errors (60 / 30 / 10 %) drawn from every kind, surname
  swaps, a missing maternal surname, particles, nicknames, typos and day/month swaps included;
  three duplicates in ten without a CURP, three workers in ten with a second NSS.
"""

from __future__ import annotations

import datetime
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from pilar.core.text import fold
from pilar.registry.seeding.names import NICKNAMES

ACCENTS_LOST = "accents_lost"
SURNAMES_SWAPPED = "surnames_swapped"
MATERNAL_MISSING = "maternal_missing"
TYPO = "typo"
NICKNAME = "nickname"
GIVEN_NAME_DROPPED = "given_name_dropped"
BIRTH_DAY_WRONG = "birth_day_wrong"
DAY_MONTH_SWAPPED = "day_month_swapped"
PARTICLES = "particles"
# Not errors of the names but of the record, added by the population generator.
CURP_MISSING = "curp_missing"
SECOND_NSS = "second_nss"


@dataclass(frozen=True)
class Noise:
    """A noise level: the relative frequency of each error, the chance of each number of errors
    per duplicate (one, two, three, …), and the share of duplicates without a CURP and of
    workers given a second NSS."""

    name: str
    error_weights: tuple[tuple[str, int], ...]
    error_counts: tuple[float, ...]
    curp_missing: float
    second_nss: float

    @property
    def errors(self) -> list[str]:
        return [code for code, _weight in self.error_weights]

    @property
    def weights(self) -> list[int]:
        return [weight for _code, weight in self.error_weights]


LOW = Noise(
    name="low",
    error_weights=(
        (ACCENTS_LOST, 50),
        (TYPO, 35),
        (MATERNAL_MISSING, 3),
        (NICKNAME, 3),
        (GIVEN_NAME_DROPPED, 3),
        (BIRTH_DAY_WRONG, 4),
        (DAY_MONTH_SWAPPED, 2),
    ),
    error_counts=(0.9, 0.1),
    curp_missing=0.10,
    second_nss=0.10,
)
HIGH = Noise(
    name="high",
    error_weights=(
        (ACCENTS_LOST, 30),
        (TYPO, 22),
        (SURNAMES_SWAPPED, 8),
        (MATERNAL_MISSING, 10),
        (PARTICLES, 8),
        (NICKNAME, 8),
        (GIVEN_NAME_DROPPED, 8),
        (BIRTH_DAY_WRONG, 9),
        (DAY_MONTH_SWAPPED, 5),
    ),
    error_counts=(0.6, 0.3, 0.1),
    curp_missing=0.30,
    second_nss=0.30,
)
NOISE_LEVELS: dict[str, Noise] = {noise.name: noise for noise in (LOW, HIGH)}
DEFAULT_NOISE = HIGH.name

# Surnames also written with a particle: "Cruz" and "de la Cruz" are the same family's name
# on different papers.
_WITH_PARTICLE = {
    "Cruz": "de la Cruz",
    "Rosa": "de la Rosa",
    "Torre": "de la Torre",
    "Fuente": "de la Fuente",
    "Garza": "de la Garza",
    "Vega": "de la Vega",
    "Río": "del Río",
    "Valle": "del Valle",
    "Castillo": "del Castillo",
    "Ángel": "del Ángel",
    "León": "de León",
    "Anda": "de Anda",
    "Jesús": "de Jesús",
}
_LEADING_PARTICLES = frozenset({"DE", "DEL", "LA", "LAS", "LOS"})

# Keys next to each other on a Spanish keyboard: most typos hit a neighbour.
_NEIGHBOURS = {
    "a": "sqz",
    "b": "vn",
    "c": "xv",
    "d": "sf",
    "e": "wr",
    "f": "dg",
    "g": "fh",
    "h": "gj",
    "i": "uo",
    "j": "hk",
    "k": "jl",
    "l": "kñ",
    "m": "n",
    "n": "bm",
    "o": "ip",
    "p": "o",
    "q": "wa",
    "r": "et",
    "s": "ad",
    "t": "ry",
    "u": "yi",
    "v": "cb",
    "w": "qe",
    "x": "zc",
    "y": "tu",
    "z": "xa",
}


@dataclass
class DuplicateRecord:
    given: str
    paternal: str
    maternal: str
    birth: int
    errors: list[str] = field(default_factory=list)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize(
        "NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    )


def _typo(rng: random.Random, word: str) -> str:
    """One keyboard slip: a neighbouring key, a dropped, doubled or transposed letter."""
    if len(word) < 3:
        return word + word[-1:]
    position = 1 + int(rng.random() * (len(word) - 1))
    char = word[position]
    if not char.isalpha():
        return word[:position] + word[position - 1] + word[position:]
    kind = rng.random()
    if kind < 0.4:
        replacement = rng.choice(_NEIGHBOURS.get(char.lower(), "e"))
        typed = word[:position] + replacement + word[position + 1 :]
    elif kind < 0.65:
        typed = word[:position] + word[position + 1 :]
    elif kind < 0.85 or position == len(word) - 1:
        typed = word[:position] + char + word[position:]
    else:
        typed = word[:position] + word[position + 1] + char + word[position + 2 :]
    return typed if typed != word else word[:position] + char + word[position:]


def _particles(rng: random.Random, record: DuplicateRecord) -> bool:
    """A surname's particle dropped ("de la Cruz" → "Cruz"), added ("Cruz" → "de la Cruz") or
    written differently ("del Río" → "Del Rio"); or, when neither surname has one, "y"
    between the surnames ("García y López"), as older papers write them."""
    choices: list[tuple[str, str]] = []
    for field_name in ("paternal", "maternal"):
        value: str = getattr(record, field_name)
        words = value.split(" ")
        if len(words) > 1 and fold(words[0]) in _LEADING_PARTICLES:
            choices += [(field_name, "drop"), (field_name, "recase")]
        elif value in _WITH_PARTICLE:
            choices.append((field_name, "add"))
    if not choices:
        if not record.paternal or not record.maternal or record.maternal.startswith("y "):
            return False
        record.maternal = "y " + record.maternal
        return True
    field_name, change = choices[int(rng.random() * len(choices))]
    value = getattr(record, field_name)
    if change == "add":
        changed = _WITH_PARTICLE[value]
    elif change == "drop":
        words = value.split(" ")
        while len(words) > 1 and fold(words[0]) in _LEADING_PARTICLES:
            words = words[1:]
        changed = " ".join(words)
    else:
        words = value.split(" ")
        changed = " ".join(
            word.capitalize() if fold(word) in _LEADING_PARTICLES else _strip_accents(word)
            for word in words
        )
    if changed == value:
        return False
    setattr(record, field_name, changed)
    return True


def _apply(
    rng: random.Random, record: DuplicateRecord, error: str, date: Callable[[int], datetime.date]
) -> bool:
    """Apply one error; False when it does not apply to this record."""
    if error == ACCENTS_LOST:
        # Accents dropped, as on keyboards and forms without them; often typed in capitals too.
        plain = (
            _strip_accents(record.given),
            _strip_accents(record.paternal),
            _strip_accents(record.maternal),
        )
        if plain == (record.given, record.paternal, record.maternal):
            return False
        if rng.random() < 0.4:
            plain = (plain[0].upper(), plain[1].upper(), plain[2].upper())
        record.given, record.paternal, record.maternal = plain
        return True
    if error == SURNAMES_SWAPPED:
        if not record.maternal or fold(record.maternal) == fold(record.paternal):
            return False
        record.paternal, record.maternal = record.maternal, record.paternal
        return True
    if error == MATERNAL_MISSING:
        if not record.maternal or not record.paternal:
            return False
        record.maternal = ""
        return True
    if error == PARTICLES:
        return _particles(rng, record)
    if error == TYPO:
        draw = rng.random()
        if draw < 0.4:
            record.given = _typo(rng, record.given)
        elif draw < 0.75 or not record.maternal:
            record.paternal = _typo(rng, record.paternal) if record.paternal else record.paternal
        else:
            record.maternal = _typo(rng, record.maternal)
        return True
    if error == NICKNAME:
        nicknames = NICKNAMES.get(record.given)
        if not nicknames:
            return False
        record.given = rng.choice(nicknames)
        return True
    if error == GIVEN_NAME_DROPPED:
        words = record.given.split(" ")
        if len(words) < 2:
            return False
        # People called María Guadalupe are "Guadalupe" on some papers and "María" on others.
        record.given = words[-1] if rng.random() < 0.7 else words[0]
        return True
    birth = date(record.birth)
    if error == BIRTH_DAY_WRONG:
        shift = rng.choice((-3, -2, -1, 1, 1, 2, 3, 10))
        record.birth = record.birth + shift
        return True
    if error == DAY_MONTH_SWAPPED:
        if birth.day > 12 or birth.day == birth.month:
            return False
        record.birth = birth.replace(month=birth.day, day=birth.month).toordinal()
        return True
    raise ValueError(error)  # pragma: no cover


def make_duplicate(
    rng: random.Random,
    *,
    original_given: str,
    original_paternal: str,
    original_maternal: str,
    original_birth: int,
    date: Callable[[int], datetime.date],
    noise: Noise = HIGH,
) -> DuplicateRecord:
    """A second record of a person with the errors of a ``noise`` level; always differs from
    the original in name or birth date."""
    record = DuplicateRecord(original_given, original_paternal, original_maternal, original_birth)
    draw = rng.random()
    wanted = len(noise.error_counts)
    for count, share in enumerate(noise.error_counts, start=1):
        if draw < share:
            wanted = count
            break
        draw -= share
    errors, weights = noise.errors, noise.weights
    for _attempt in range(12):
        if len(record.errors) >= wanted:
            break
        error = rng.choices(errors, weights=weights)[0]
        if error in record.errors:
            continue
        if _apply(rng, record, error, date):
            record.errors.append(error)
    original = (original_given, original_paternal, original_maternal, original_birth)
    if (record.given, record.paternal, record.maternal, record.birth) == original:
        # Every error drawn turned out not to apply (or to cancel out): a typo always changes.
        record.given = _typo(rng, record.given)
        if record.given == original_given:
            record.given += "a"
        record.errors.append(TYPO)
    return record
