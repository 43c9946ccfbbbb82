"""Mexican given names and surnames with believable frequencies.

The base lists are Faker's ``es_MX`` person provider lists, imported once (calling Faker per row
would be far too slow for millions of persons). Faker draws from them uniformly, while real
Mexican surnames are heavily skewed (about one person in thirty is a Hernández), which matters
for name search and for duplicate detection, so the most frequent surnames and given names get
weights. The weights are approximate shares from published RENAPO/INEGI frequency lists.
"""

from __future__ import annotations

import itertools

from faker.providers.person.es_MX import Provider as _FakerPerson

from pilar.core.text import clean_name, fold

# Faker's lists carry a few misspellings and fragments; these are the corrections.
_CORRECTIONS = {
    "José Manuél": "José Manuel",
    "Rafaél": "Rafael",
    "Óliver": "Oliver",
    "de la Crúz": "de la Cruz",
    "Alvarez": "Álvarez",
    "Alvaro": "Álvaro",
    "Cristobal": "Cristóbal",
    "Elias": "Elías",
    "Felix": "Félix",
    "Barbara": "Bárbara",
}
_DROPPED = frozenset({"Jos", "Esparta", "Sessa", "Aldonza"})

# Share of all persons (in percent) carrying the most frequent surnames.
# fmt: off
_FREQUENT_SURNAMES: dict[str, float] = {
    "Hernández": 3.2, "García": 2.1, "Martínez": 1.9, "López": 1.8, "González": 1.7,
    "Pérez": 1.3, "Rodríguez": 1.2, "Sánchez": 1.2, "Ramírez": 1.1, "Cruz": 0.9,
    "Flores": 0.85, "Gómez": 0.85, "Morales": 0.65, "Vázquez": 0.65, "Reyes": 0.65,
    "Jiménez": 0.6, "Torres": 0.55, "Díaz": 0.55, "Gutiérrez": 0.55, "Ruiz": 0.5,
    "Mendoza": 0.5, "Aguilar": 0.5, "Ortiz": 0.45, "Moreno": 0.45, "Castillo": 0.45,
    "Romero": 0.45, "Álvarez": 0.45, "Méndez": 0.4, "Chávez": 0.4, "Rivera": 0.4,
    "Juárez": 0.4, "Ramos": 0.4, "Domínguez": 0.35, "Herrera": 0.35, "Medina": 0.35,
    "Castro": 0.35, "Vargas": 0.3, "Guzmán": 0.3, "Velázquez": 0.3, "Muñoz": 0.3, "Rojas": 0.3,
    "Contreras": 0.3, "Salazar": 0.3, "Luna": 0.3, "Ortega": 0.3, "Santiago": 0.3,
    "Guerrero": 0.3, "Estrada": 0.25, "Bautista": 0.25, "Cortés": 0.25, "Soto": 0.25,
    "Alvarado": 0.25, "Espinoza": 0.25, "Lara": 0.25, "Ávila": 0.25, "Ríos": 0.25,
    "Cervantes": 0.2, "Silva": 0.2, "Delgado": 0.2, "Vega": 0.2, "Núñez": 0.2, "Peña": 0.2,
    "Ibarra": 0.2, "Acosta": 0.2, "Campos": 0.2,
}
# fmt: on
# Every other surname of the list gets this share: together the long tail holds about two thirds
# of all surnames, as in the real distribution.
_TAIL_SURNAME_SHARE = 0.11

# fmt: off
_FREQUENT_FEMALE: dict[str, float] = {
    "María Guadalupe": 3.0, "Guadalupe": 1.6, "María": 1.5, "Juana": 1.0, "Margarita": 1.0,
    "Verónica": 1.0, "Leticia": 0.9, "Rosa María": 0.9, "Patricia": 0.9, "Elizabeth": 0.8,
    "Gabriela": 0.8, "Alejandra": 0.8, "Adriana": 0.8, "Silvia": 0.7, "Araceli": 0.7,
    "Martha": 0.7, "Teresa": 0.6, "María del Carmen": 0.6, "Yolanda": 0.6, "Claudia": 0.6,
    "Ana María": 0.5, "Rosa": 0.5, "Laura": 0.5, "Alicia": 0.5, "Josefina": 0.5,
}
# fmt: on
# fmt: off
_FREQUENT_MALE: dict[str, float] = {
    "José Luis": 2.4, "Juan": 2.0, "José": 1.8, "Miguel Ángel": 1.5, "Francisco": 1.4,
    "Jesús": 1.3, "Antonio": 1.2, "Alejandro": 1.1, "Pedro": 1.0, "Manuel": 1.0,
    "Juan Carlos": 0.9, "Ricardo": 0.8, "Fernando": 0.8, "Roberto": 0.8, "Carlos": 0.8,
    "Javier": 0.7, "Jorge": 0.7, "Francisco Javier": 0.6, "Sergio": 0.6, "Eduardo": 0.6,
    "Luis": 0.6, "Martín": 0.6, "Arturo": 0.5, "Raúl": 0.5, "Rafael": 0.5,
}
# fmt: on
_TAIL_GIVEN_SHARE = 0.3

# Names that became frequent for children born from 2000 on; the oldest cohorts do not get them.
# fmt: off
MODERN_FEMALE = (
    "Sofía", "Valentina", "Regina", "Camila", "Ximena", "María José", "Valeria", "Renata",
    "Victoria", "Isabella", "Fernanda", "Natalia", "Romina", "Andrea", "Montserrat",
)
# fmt: on
# fmt: off
MODERN_MALE = (
    "Santiago", "Mateo", "Sebastián", "Leonardo", "Emiliano", "Diego", "Daniel", "Alexander",
    "Iker", "Gael", "Ángel", "Matías", "Rodrigo", "Emilio", "Dylan",
)
# fmt: on

# Second given names for the many compound names (José Luis, María Guadalupe).
COMPOUND_FIRST_FEMALE = ("María", "María", "María", "Ana", "Rosa", "Martha")
COMPOUND_FIRST_MALE = ("José", "José", "Juan", "Juan", "Luis", "Miguel", "Jesús")

# Nicknames clerks write down instead of the registered given name (a classic duplicate source).
NICKNAMES: dict[str, tuple[str, ...]] = {
    "José": ("Pepe", "Chepe"),
    "José Luis": ("Pepe Luis", "Joseluis"),
    "José María": ("Chema",),
    "Francisco": ("Paco", "Pancho"),
    "Francisco Javier": ("Paco",),
    "Guillermo": ("Memo",),
    "Jesús": ("Chucho", "Chuy"),
    "Ignacio": ("Nacho",),
    "Eduardo": ("Lalo",),
    "Alberto": ("Beto",),
    "Roberto": ("Beto",),
    "Antonio": ("Toño",),
    "Enrique": ("Quique",),
    "Rafael": ("Rafa",),
    "Alejandro": ("Alex",),
    "Manuel": ("Manolo",),
    "Gonzalo": ("Chalo",),
    "Salvador": ("Chava",),
    "Rosario": ("Chayo",),
    "Guadalupe": ("Lupe", "Lupita"),
    "María Guadalupe": ("Lupita", "Lupe"),
    "Concepción": ("Conchita", "Concha"),
    "Graciela": ("Chela",),
    "Dolores": ("Lola",),
    "Margarita": ("Mago",),
    "Socorro": ("Coco",),
    "Refugio": ("Cuca",),
    "Mercedes": ("Meche",),
    "Soledad": ("Chole",),
    "Josefina": ("Chepina",),
    "Alejandra": ("Ale",),
    "Patricia": ("Paty",),
    "Elizabeth": ("Liz", "Eli"),
}


def _clean_list(names: tuple[str, ...] | list[str]) -> list[str]:
    cleaned: list[str] = []
    seen: set[str] = set()
    for raw in names:
        name = _CORRECTIONS.get(clean_name(raw), clean_name(raw))
        if name in _DROPPED or len(name) < 3:
            continue
        key = fold(name)
        if key not in seen:
            seen.add(key)
            cleaned.append(name)
    return cleaned


def _weighted(
    base: list[str], frequent: dict[str, float], tail_share: float
) -> tuple[list[str], list[float]]:
    """Names with cumulative weights: the frequent ones at their share, the others at the tail
    share. A frequent name missing from Faker's list is added."""
    folded_frequent = {fold(name): name for name in frequent}
    names: list[str] = list(frequent)
    weights: list[float] = list(frequent.values())
    for name in base:
        if fold(name) not in folded_frequent:
            names.append(name)
            weights.append(tail_share)
    return names, list(itertools.accumulate(weights))


SURNAMES, SURNAME_CUMULATIVE = _weighted(
    _clean_list(_FakerPerson.last_names), _FREQUENT_SURNAMES, _TAIL_SURNAME_SHARE
)
FEMALE_NAMES, FEMALE_CUMULATIVE = _weighted(
    _clean_list(_FakerPerson.first_names_female), _FREQUENT_FEMALE, _TAIL_GIVEN_SHARE
)
MALE_NAMES, MALE_CUMULATIVE = _weighted(
    _clean_list(_FakerPerson.first_names_male), _FREQUENT_MALE, _TAIL_GIVEN_SHARE
)
