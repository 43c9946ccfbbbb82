"""Generated data for the engine's tests: feature records aimed at the comparisons' level
boundaries, and a small seeded population of persons with known duplicates.

Factories, not fixture files: every test builds what it needs from a seed.
"""

from __future__ import annotations

import datetime
import functools
import random
from typing import Any

import polars as pl

from pilar.core.identifiers import curp_complete, curp_stem, nss_check_digit
from pilar.linkage.comparisons import jaro_winkler
from pilar.linkage.features import person_features

GIVEN_FEMALE = (
    "María Guadalupe", "Guadalupe", "Juana", "Margarita", "María", "Verónica", "Leticia",
    "Rosa María", "Francisca", "Elizabeth", "Patricia", "Alejandra", "Adriana", "Martha",
    "Gabriela", "Silvia", "María Elena", "Josefina", "Claudia", "Carmen", "Ana", "Lucía",
    "Marisol", "Noelia", "Sara", "Miriam", "Teresa", "Elsa", "Dolores", "Concepción",
)  # fmt: skip
GIVEN_MALE = (
    "José", "Juan", "José Luis", "Miguel Ángel", "Francisco", "Jesús", "Antonio", "Pedro",
    "Alejandro", "Manuel", "Ricardo", "Fernando", "Roberto", "Jorge", "Carlos", "Raúl",
    "Saúl", "Mario", "Dario", "Luis", "Javier", "Hugo", "Samuel", "Leonel", "Eduardo",
    "Guillermo", "Ignacio", "Enrique", "Rafael", "Salvador",
)  # fmt: skip
NICKNAMES = {
    "José": "Pepe", "Francisco": "Paco", "Guadalupe": "Lupita", "Jesús": "Chucho",
    "Guillermo": "Memo", "Ignacio": "Nacho", "Eduardo": "Lalo", "Enrique": "Quique",
    "Concepción": "Conchita", "Dolores": "Lola", "Salvador": "Chava",
}  # fmt: skip
SURNAMES = (
    "Hernández", "García", "Martínez", "López", "González", "Pérez", "Rodríguez", "Sánchez",
    "Ramírez", "Cruz", "Flores", "Gómez", "Morales", "Vázquez", "Vásquez", "Jiménez",
    "Reyes", "Díaz", "Torres", "Gutiérrez", "Ruiz", "Mendoza", "Aguilar", "Ortiz", "Moreno",
    "Castillo", "Romero", "Álvarez", "Méndez", "Chávez", "Rivera", "Juárez", "Ramos",
    "Domínguez", "Herrera", "Medina", "Castro", "Vargas", "Guzmán", "Velázquez", "de la Cruz",
    "del Río", "Quiroz", "Quiros", "Yáñez", "Llanes", "Cervantes", "Serbantes", "Fernández",
)  # fmt: skip
STATES = ("DF", "MC", "JC", "NL", "PL", "VZ", "GT", "OC", "CS", "MN", "NE")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def typo(rng: random.Random, word: str) -> str:
    """One slip: a substitution, a deletion, a doubled or a transposed letter (never the first
    letter, as clerks rarely miss it)."""
    if len(word) < 3:
        return word + "A"
    position = rng.randrange(1, len(word) - 1)
    kind = rng.random()
    if kind < 0.35:
        return word[:position] + rng.choice(_LETTERS) + word[position + 1 :]
    if kind < 0.6:
        return word[:position] + word[position + 1 :]
    if kind < 0.8:
        return word[:position] + word[position] + word[position:]
    return word[:position] + word[position + 1] + word[position] + word[position + 2 :]


def _nss(rng: random.Random) -> str:
    body = "".join(str(rng.randrange(10)) for _ in range(10))
    return body + nss_check_digit(body)


def _curp(record: dict[str, Any], homonymy: int = 0) -> str:
    stem = curp_stem(
        given_names=record["given_names"],
        paternal_surname=record["paternal_surname"] or "",
        maternal_surname=record["maternal_surname"] or "",
        birth_date=record["birth_date"],
        sex=record["sex"],
        birth_state=record["birth_state"] or "NE",
    )
    return curp_complete(stem, record["birth_date"], homonymy)


def person(rng: random.Random, unique_id: int) -> dict[str, Any]:
    """A raw person record (the input columns of ``person_features``)."""
    sex = rng.choice("FM")
    record: dict[str, Any] = {
        "unique_id": unique_id,
        "given_names": rng.choice(GIVEN_FEMALE if sex == "F" else GIVEN_MALE),
        "paternal_surname": rng.choice(SURNAMES),
        "maternal_surname": rng.choice(SURNAMES) if rng.random() < 0.95 else None,
        "sex": sex,
        "birth_date": datetime.date(1940, 1, 1) + datetime.timedelta(days=rng.randrange(30_000)),
        "birth_state": rng.choice(STATES),
        "nss": _nss(rng) if rng.random() < 0.4 else None,
    }
    record["curp"] = _curp(record) if rng.random() < 0.9 else None
    return record


def duplicate(rng: random.Random, original: dict[str, Any], unique_id: int) -> dict[str, Any]:
    """A second record of the same person with one to three clerical errors; its CURP is the
    one the mistyped data yields (or none), its NSS the same, another or none."""
    record = dict(original, unique_id=unique_id)
    for _ in range(rng.choice((1, 1, 2, 3))):
        error = rng.choice(
            (
                "typo_given", "typo_paternal", "typo_maternal", "swap", "maternal_missing",
                "nickname", "day", "day_month", "accents", "given_dropped",
            )
        )  # fmt: skip
        birth: datetime.date = record["birth_date"]
        if error == "typo_given":
            record["given_names"] = typo(rng, record["given_names"])
        elif error == "typo_paternal" and record["paternal_surname"]:
            record["paternal_surname"] = typo(rng, record["paternal_surname"])
        elif error == "typo_maternal" and record["maternal_surname"]:
            record["maternal_surname"] = typo(rng, record["maternal_surname"])
        elif error == "swap" and record["maternal_surname"]:
            record["paternal_surname"], record["maternal_surname"] = (
                record["maternal_surname"],
                record["paternal_surname"],
            )
        elif error == "maternal_missing":
            record["maternal_surname"] = None
        elif error == "nickname" and record["given_names"] in NICKNAMES:
            record["given_names"] = NICKNAMES[record["given_names"]]
        elif error == "day":
            record["birth_date"] = birth + datetime.timedelta(days=rng.choice((-3, -1, 1, 2, 10)))
        elif error == "day_month" and birth.day <= 12 and birth.day != birth.month:
            record["birth_date"] = birth.replace(day=birth.month, month=birth.day)
        elif error == "accents":
            record["given_names"] = record["given_names"].upper()
        elif error == "given_dropped" and " " in record["given_names"]:
            record["given_names"] = record["given_names"].split(" ")[-1]
    draw = rng.random()
    record["curp"] = None if draw < 0.3 else _curp(record, homonymy=rng.choice((0, 1)))
    draw = rng.random()
    if draw < 0.3:
        record["nss"] = None
    elif draw < 0.5:
        record["nss"] = _nss(rng)
    return record


def population(
    persons: int, duplicates: int, *, seed: int = 7
) -> tuple[pl.DataFrame, set[tuple[int, int]]]:
    """Feature frame of ``persons`` originals and ``duplicates`` second records, and the true
    pairs (smaller id first)."""
    rng = random.Random(seed)
    records = [person(rng, index + 1) for index in range(persons)]
    truth: set[tuple[int, int]] = set()
    for offset in range(duplicates):
        original = records[rng.randrange(persons)]
        copy = duplicate(rng, original, persons + offset + 1)
        records.append(copy)
        truth.add((original["unique_id"], copy["unique_id"]))
    # Several duplicates of one original are duplicates of one another too.
    by_original: dict[int, list[int]] = {}
    for first, second in truth:
        by_original.setdefault(first, [first]).append(second)
    for members in by_original.values():
        truth.update(
            (a, b) for index, a in enumerate(members) for b in members[index + 1 :] if a < b
        )
    return person_features(pl.DataFrame(records)), truth


# --- feature records aimed at level boundaries -----------------------------------------------


def _names_near_threshold(rng: random.Random, words: list[str]) -> list[tuple[str, str]]:
    """Pairs of words whose Jaro-Winkler similarity lies around 0.92."""
    pairs: list[tuple[str, str]] = []
    candidates = [(a, b) for a in words for b in words if a != b]
    candidates += [(word, typo(rng, word)) for word in words for _ in range(3)]
    candidates += [(word, typo(rng, typo(rng, word))) for word in words for _ in range(3)]
    for first, second in candidates:
        if 0.88 <= jaro_winkler(first, second) <= 0.96:
            pairs.append((first, second))
    return pairs


def boundary_pairs(count: int, *, seed: int = 11) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``count`` pairs of feature records built to sit on the levels' edges: names whose
    Jaro-Winkler is near 0.92, dates one edit apart, swapped or ten days apart, CURP stems one or
    two characters apart, and null sides everywhere."""
    rng = random.Random(seed)
    given = ["MARIA", "MARIO", "CARLOS", "CAELOS", "JUAN", "JUANA", "GUADALUPE", "JOSE", "LUIS"]
    given += [name.upper() for name in ("Leticia", "Noelia", "Miriam", "Marisol", "Raul", "Saul")]
    surnames = ["GARCIA", "GARZA", "HERNANDEZ", "FERNANDEZ", "VASQUEZ", "VAZQUEZ", "RAMOS"]
    surnames += ["RAMIREZ", "QUIROZ", "QUIROS", "CRUZ", "CRUS", "LOPEZ", "LOPES", "MARTINEZ"]
    given_near = _names_near_threshold(rng, given)
    surname_near = _names_near_threshold(rng, surnames)

    def date(base: datetime.date) -> str:
        return base.isoformat()

    def record(
        given_name: str | None,
        paternal: str | None,
        maternal: str | None,
        birth: datetime.date | None,
    ) -> dict[str, Any]:
        swapped = None
        if birth is not None and birth.day <= 12 and birth.day != birth.month:
            swapped = birth.replace(day=birth.month, month=birth.day).isoformat()
        stem = None
        if birth is not None:
            stem = (
                (paternal or "X")[:2]
                + (maternal or "X")[:1]
                + (given_name or "X")[:1]
                + birth.strftime("%y%m%d")
                + rng.choice("HM")
                + rng.choice(("DF", "MC"))
                + "XYZ"
            )
        curp = (
            stem + rng.choice("0A") + str(rng.randrange(10))
            if stem and rng.random() < 0.6
            else None
        )
        present = [value for value in (paternal, maternal) if value]
        return {
            "unique_id": 0,
            "given_std": given_name,
            "given_canon": given_name,
            "given_main": given_name.split(" ")[-1] if given_name else None,
            "given_phon": given_name[:3] if given_name else None,
            "paternal_std": paternal,
            "maternal_std": maternal,
            "paternal_phon": paternal[:3] if paternal else None,
            "maternal_phon": maternal[:3] if maternal else None,
            "surnames_sorted": " ".join(sorted(present)) or None,
            "birth_date": date(birth) if birth else None,
            "birth_year": birth.year if birth else None,
            "birth_date_swapped": swapped,
            "sex": rng.choice(("F", "M", None)) if rng.random() < 0.2 else "F",
            "birth_state": rng.choice(("DF", "MC", None)),
            "curp": curp,
            "curp_stem": curp[:16] if curp else None,
            "derived_stem": stem,
            "stem_or_curp": curp[:16] if curp else stem,
            "nss": rng.choice(("12345678901", "12345678902", None)),
        }

    def mutate_stem(value: str | None, edits: int) -> str | None:
        if value is None:
            return None
        letters = list(value)
        for _ in range(edits):
            position = rng.randrange(len(letters))
            letters[position] = rng.choice(_LETTERS)
        return "".join(letters)

    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    while len(pairs) < count:
        birth = datetime.date(1950, 1, 1) + datetime.timedelta(days=rng.randrange(25_000))
        given_l, given_r = (
            rng.choice(given_near) if rng.random() < 0.5 else (rng.choice(given),) * 2
        )
        if rng.random() < 0.3:
            given_l, given_r = rng.choice(given), rng.choice(given)
        elif rng.random() < 0.1:
            # The same main name, with and without a first MARIA or JOSE.
            given_r = rng.choice(("MARIA ", "JOSE ")) + given_l
        paternal_l: str | None
        paternal_r: str | None
        maternal_l: str | None
        maternal_r: str | None
        paternal_l, paternal_r = (
            rng.choice(surname_near) if rng.random() < 0.4 else (rng.choice(surnames),) * 2
        )
        maternal_l, maternal_r = (
            rng.choice(surname_near) if rng.random() < 0.3 else (rng.choice(surnames),) * 2
        )
        shape = rng.random()
        if shape < 0.15:
            # Surnames swapped on one side.
            paternal_r, maternal_r = maternal_l, paternal_l
        elif shape < 0.3:
            maternal_r = None
        elif shape < 0.35:
            paternal_r, maternal_r = None, paternal_l
        elif shape < 0.38:
            paternal_r, maternal_r = None, None
        birth_r: datetime.date | None = birth
        move = rng.random()
        if move < 0.15 and birth.day <= 12:
            birth_r = birth.replace(day=birth.month, month=birth.day)
        elif move < 0.35:
            birth_r = birth + datetime.timedelta(days=rng.choice((1, 3, 9, 10, 11, 30, 365)))
        elif move < 0.45:
            digits = birth.strftime("%Y%m%d")
            position = rng.randrange(8)
            candidate = digits[:position] + str(rng.randrange(10)) + digits[position + 1 :]
            try:
                birth_r = datetime.datetime.strptime(candidate, "%Y%m%d").date()
            except ValueError:
                birth_r = birth
        elif move < 0.5:
            birth_r = None
        left = record(given_l if rng.random() < 0.95 else None, paternal_l, maternal_l, birth)
        right = record(given_r if rng.random() < 0.95 else None, paternal_r, maternal_r, birth_r)
        # CURP shapes: the same, another homonymy, one or two characters off, or absent.
        curp_shape = rng.random()
        if curp_shape < 0.2 and left["curp"]:
            right["curp"] = left["curp"]
        elif curp_shape < 0.35 and left["curp"]:
            right["curp"] = left["curp"][:16] + "Z9"
        elif curp_shape < 0.55:
            right["curp"] = mutate_stem(left["curp"], rng.choice((1, 2, 3)))
        elif curp_shape < 0.65:
            right["curp"] = None
            right["derived_stem"] = (
                left["curp_stem"] if rng.random() < 0.5 else right["derived_stem"]
            )
        right["curp_stem"] = right["curp"][:16] if right["curp"] else None
        right["stem_or_curp"] = right["curp_stem"] or right["derived_stem"]
        if rng.random() < 0.1:
            right["derived_stem"] = None
            right["stem_or_curp"] = right["curp_stem"]
        pairs.append((left, right))
    return pairs


@functools.cache
def trained_population() -> tuple[pl.DataFrame, set[tuple[int, int]], Any]:
    """A 1,500-record population (1,300 persons, 200 duplicates), its truth and a person model
    trained on it with DuckDB — shared by the engine and scoring tests (training takes
    seconds)."""
    from pilar.linkage.engine import DuckDBEngine

    features, truth = population(1300, 200, seed=7)
    model = DuckDBEngine(memory_limit="1GB").train(features, seed=7, max_pairs=3e5)
    return features, truth, model
