"""Synthetic employers: legal names, company RFCs, IMSS registration numbers, sectors weighted as
the employers registered with IMSS are, and a heavy-tailed size distribution (a few large
employers hire a large share of all workers, as in the real register)."""

from __future__ import annotations

import bisect
import datetime
import itertools
import math
import random
from dataclasses import dataclass, field

from stdnum import luhn

from pilar.core.identifiers import rfc_check_digit
from pilar.core.text import fold
from pilar.registry.models import Sector
from pilar.registry.seeding import geography, names

# sector: (share of employers in %, relative average size, salary level relative to the mean).
SECTOR_PROFILES: dict[str, tuple[float, float, float]] = {
    Sector.AGRICULTURE: (4.0, 1.0, 0.70),
    Sector.MINING: (0.4, 2.0, 1.50),
    Sector.UTILITIES: (0.3, 3.0, 1.60),
    Sector.CONSTRUCTION: (10.0, 1.0, 0.90),
    Sector.MANUFACTURING: (11.0, 3.0, 1.05),
    Sector.WHOLESALE: (8.0, 1.0, 1.00),
    Sector.RETAIL: (18.0, 1.0, 0.80),
    Sector.TRANSPORT: (5.0, 1.2, 1.00),
    Sector.INFORMATION: (1.0, 1.5, 1.40),
    Sector.FINANCE: (1.5, 2.0, 1.60),
    Sector.REAL_ESTATE: (1.5, 0.6, 1.00),
    Sector.PROFESSIONAL: (9.0, 0.7, 1.30),
    Sector.ADMINISTRATIVE: (5.0, 3.0, 0.85),
    Sector.EDUCATION: (3.0, 1.5, 1.20),
    Sector.HEALTH: (4.0, 1.2, 1.15),
    Sector.RECREATION: (1.0, 0.8, 0.85),
    Sector.HOSPITALITY: (9.0, 0.8, 0.75),
    Sector.OTHER_SERVICES: (9.0, 0.5, 0.80),
    Sector.GOVERNMENT: (0.8, 4.0, 1.30),
}
# Plain string keys: the generator handles sector codes as the strings stored in the database.
SECTOR_PROFILES = {str(code): profile for code, profile in SECTOR_PROFILES.items()}
if set(SECTOR_PROFILES) != {str(code) for code, _label in Sector.choices}:
    raise RuntimeError("Every sector needs a seeding profile")  # pragma: no cover
_SECTOR_CODES = [str(code) for code in SECTOR_PROFILES]
_SECTOR_CUMULATIVE = list(itertools.accumulate(p[0] for p in SECTOR_PROFILES.values()))

# Words that start a company name, by sector.
_NAME_PREFIXES: dict[str, tuple[str, ...]] = {
    Sector.AGRICULTURE: ("Agropecuaria", "Productos Agrícolas", "Invernaderos", "Granjas"),
    Sector.MINING: ("Minera", "Minerales", "Extracciones"),
    Sector.UTILITIES: ("Energía", "Gas Natural", "Servicios Hidráulicos"),
    Sector.CONSTRUCTION: ("Constructora", "Edificaciones", "Obras y Proyectos", "Urbanizadora"),
    Sector.MANUFACTURING: (
        "Industrias",
        "Manufacturas",
        "Alimentos",
        "Textiles",
        "Plásticos",
        "Autopartes",
        "Metalúrgica",
        "Muebles",
    ),
    Sector.WHOLESALE: ("Distribuidora", "Comercializadora", "Abastecedora"),
    Sector.RETAIL: (
        "Tiendas",
        "Comercial",
        "Abarrotes",
        "Farmacias",
        "Ferretería",
        "Mueblería",
        "Papelería",
    ),
    Sector.TRANSPORT: ("Transportes", "Autotransportes", "Fletes y Mudanzas", "Logística"),
    Sector.INFORMATION: ("Comunicaciones", "Sistemas", "Editorial", "Radio y Televisión"),
    Sector.FINANCE: ("Financiera", "Caja Popular", "Servicios Financieros", "Seguros"),
    Sector.REAL_ESTATE: ("Inmobiliaria", "Arrendadora", "Bienes Raíces"),
    Sector.PROFESSIONAL: ("Consultores", "Despacho", "Ingeniería", "Asesores", "Laboratorios"),
    Sector.ADMINISTRATIVE: (
        "Servicios de Personal",
        "Limpieza Integral",
        "Seguridad Privada",
        "Servicios Administrativos",
    ),
    Sector.EDUCATION: ("Colegio", "Instituto", "Centro Escolar", "Universidad"),
    Sector.HEALTH: ("Clínica", "Hospital", "Centro Médico", "Laboratorio Clínico"),
    Sector.RECREATION: ("Eventos", "Club Deportivo", "Espectáculos"),
    Sector.HOSPITALITY: ("Restaurantes", "Hoteles", "Cafetería", "Taquería", "Hotel"),
    Sector.OTHER_SERVICES: ("Servicios", "Talleres", "Lavandería", "Servicio Automotriz"),
    Sector.GOVERNMENT: (),
}
_NAME_PREFIXES = {str(code): prefixes for code, prefixes in _NAME_PREFIXES.items()}
_BRANDS = (
    "Azteca",
    "Maya",
    "Olmeca",
    "Quetzal",
    "Jaguar",
    "Águila",
    "del Sol",
    "Luna",
    "Estrella",
    "Nova",
    "Alfa",
    "Delta",
    "Omega",
    "Fénix",
    "Cóndor",
    "del Bajío",
    "del Norte",
    "del Pacífico",
    "del Golfo",
    "de Occidente",
    "del Centro",
    "del Sureste",
    "Mexicana",
    "Nacional",
    "Integral",
    "Moderna",
    "Continental",
    "Tres Hermanos",
    "Santa Fe",
    "San Ángel",
    "La Esperanza",
    "El Progreso",
    "Unión",
    "Monarca",
    "Huasteca",
    "Sierra Madre",
    "Anáhuac",
)
_GOVERNMENT_FORMS = (
    "Municipio de {m}",
    "Organismo Operador de Agua Potable de {m}",
    "Sistema para el Desarrollo Integral de la Familia de {m}",
    "Instituto Municipal de {m}",
)
_SUFFIXES = (
    ("S.A. de C.V.",) * 12
    + ("S. de R.L. de C.V.",) * 5
    + (
        "S.A.P.I. de C.V.",
        "S.C.",
        "S.A.",
    )
)
_RFC_SKIPPED_WORDS = frozenset("DE DEL LA LAS LOS EL Y E SA CV RL SAPI SC A C S R L V PARA".split())
_HOMOCLAVE_FIRST = "123456789ABCDEFGHIJKLMNOPQRSTUV"
_HOMOCLAVE_SECOND = "123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_REGISTRATION_LEADERS = "ABCDEFGHJKLMNPRSTUVWXYZ123456789"

# Registration dates: (first year, last year, share) — many employers are young, some very old.
_REGISTRATION_PERIODS = (
    (1944, 1969, 8),
    (1970, 1989, 15),
    (1990, 2004, 22),
    (2005, 2016, 30),
    (2017, 2100, 25),
)
# Larger employers concentrate in the big metropolitan areas.
_EMPLOYER_STATE_BONUS = {"DF": 2.0, "NL": 1.5, "JC": 1.2, "MC": 1.1}

ORDINAL_1960 = datetime.date(1960, 1, 1).toordinal()


@dataclass
class SyntheticEmployer:
    rfc: str
    registration_number: str
    legal_name: str
    trade_name: str
    sector: str
    street: str
    municipality: str
    state: str
    postal_code: str
    registered_on: int  # date ordinal
    size_weight: float
    salary_level: float
    normalized_name: str = field(default="")


def company_rfc_letters(legal_name: str) -> str:
    """Three letters from a company name, close to the SAT rule: the initials of the first three
    significant words, or more letters of the first word when there are fewer words."""
    words = [w for w in fold(legal_name).split(" ") if w and w not in _RFC_SKIPPED_WORDS]
    words = [w for w in words if w.isalpha()] or ["XXX"]
    if len(words) >= 3:
        letters = words[0][0] + words[1][0] + words[2][0]
    elif len(words) == 2:
        letters = words[0][:2] + words[1][0]
    else:
        letters = words[0][:3]
    return (letters + "XXX")[:3]


def company_rfc(letters: str, founded: datetime.date, homoclave: str) -> str:
    body = f"{letters}{founded:%y%m%d}{homoclave}"
    return body + rfc_check_digit(body)


def random_homoclave(rng: random.Random) -> str:
    return rng.choice(_HOMOCLAVE_FIRST) + rng.choice(_HOMOCLAVE_SECOND)


def next_homoclave(homoclave: str, step: int) -> str:
    """The ``step``-th homoclave after ``homoclave`` in a fixed order, to resolve collisions."""
    size = len(_HOMOCLAVE_SECOND)
    index = _HOMOCLAVE_FIRST.index(homoclave[0]) * size + _HOMOCLAVE_SECOND.index(homoclave[1])
    index = (index + step) % (len(_HOMOCLAVE_FIRST) * size)
    return _HOMOCLAVE_FIRST[index // size] + _HOMOCLAVE_SECOND[index % size]


def registration_number(state_index: int, subdelegation: int, serial: int) -> str:
    """IMSS employer registration: a letter or digit, subdelegation (2), serial (5), modality
    (2, ``10`` ordinary), check digit. The real check-digit algorithm is not public, so a Luhn
    digit stands in; validation only checks the format."""
    digits = f"{subdelegation % 100:02d}{serial % 100000:05d}10"
    leader = _REGISTRATION_LEADERS[state_index % len(_REGISTRATION_LEADERS)]
    return leader + digits + luhn.calc_check_digit(digits)


def next_registration_number(registration: str, step: int) -> str:
    """The same registration with the ``step``-th next serial, to resolve a collision."""
    serial = (int(registration[3:8]) + step) % 100000
    digits = f"{registration[1:3]}{serial:05d}{registration[8:10]}"
    return registration[0] + digits + luhn.calc_check_digit(digits)


def _pick(rng: random.Random, cumulative: list[float]) -> int:
    return bisect.bisect_right(cumulative, rng.random() * cumulative[-1])


def _registration_date(rng: random.Random, as_of: datetime.date) -> datetime.date:
    period = _pick(rng, list(itertools.accumulate(p[2] for p in _REGISTRATION_PERIODS)))
    first, last, _share = _REGISTRATION_PERIODS[period]
    start = datetime.date(first, 1, 1).toordinal()
    end = min(datetime.date(min(last, as_of.year), 12, 31).toordinal(), as_of.toordinal())
    if end < start:
        start = end - 365
    return datetime.date.fromordinal(rng.randint(start, end))


def _legal_name(rng: random.Random, sector: str, state: str) -> tuple[str, str]:
    """(legal name, trade name)."""
    if sector == Sector.GOVERNMENT:
        municipality = rng.choice(geography.MUNICIPALITIES[state])
        name = rng.choice(_GOVERNMENT_FORMS).format(m=municipality)
        return name, ""
    prefix = rng.choice(_NAME_PREFIXES[sector])
    surnames = names.SURNAMES
    style = rng.random()
    if style < 0.35:
        core = surnames[_pick(rng, names.SURNAME_CUMULATIVE)]
    elif style < 0.55:
        core = (
            f"{surnames[_pick(rng, names.SURNAME_CUMULATIVE)]} y "
            f"{surnames[_pick(rng, names.SURNAME_CUMULATIVE)]}"
        )
    elif style < 0.65:
        core = f"{surnames[_pick(rng, names.SURNAME_CUMULATIVE)]} e Hijos"
    else:
        core = rng.choice(_BRANDS)
    trade = f"{prefix} {core}"
    suffix = rng.choice(_SUFFIXES)
    if sector == Sector.PROFESSIONAL and rng.random() < 0.4:
        suffix = "S.C."
    if sector in (Sector.EDUCATION, Sector.HEALTH) and rng.random() < 0.2:
        suffix = "A.C."
    if rng.random() < 0.15:
        # Group holdings: "Grupo Constructora Hernández, S.A. de C.V."
        return f"Grupo {trade}, {suffix}", trade
    return f"{trade}, {suffix}" if rng.random() < 0.5 else f"{trade} {suffix}", (
        trade if rng.random() < 0.7 else ""
    )


def generate_employers(*, seed: int, count: int, as_of: datetime.date) -> list[SyntheticEmployer]:
    """``count`` employers, the same ones for the same seed and date. Uniqueness of RFC and
    registration number against the database is settled by the caller."""
    rng = random.Random(f"pilar-seed:{seed}:employers")
    state_weights = [
        population * _EMPLOYER_STATE_BONUS.get(code, 1.0)
        for code, population in geography.STATE_POPULATION.items()
    ]
    state_cumulative = list(itertools.accumulate(state_weights))
    serials: dict[str, int] = {}
    employers: list[SyntheticEmployer] = []
    for _index in range(count):
        sector = _SECTOR_CODES[_pick(rng, _SECTOR_CUMULATIVE)]
        _share, size_factor, salary_level = SECTOR_PROFILES[sector]
        state_index = _pick(rng, state_cumulative)
        state = geography.STATE_CODES[state_index]
        legal_name, trade_name = _legal_name(rng, sector, state)
        registered = _registration_date(rng, as_of)
        founded = datetime.date.fromordinal(
            max(registered.toordinal() - rng.randint(0, 730), datetime.date(1930, 1, 1).toordinal())
        )
        rfc = company_rfc(company_rfc_letters(legal_name), founded, random_homoclave(rng))
        serial = serials.get(state, rng.randint(100, 5000)) + rng.randint(1, 40)
        serials[state] = serial
        registration = registration_number(state_index, state_index * 3 + rng.randint(1, 3), serial)
        # Pareto-distributed size (shape just above 1: a heavy tail), larger for old employers.
        pareto = (1.0 - rng.random()) ** (-1.0 / 1.1)
        age_years = max(0.0, (as_of - registered).days / 365.25)
        size_weight = min(pareto, 5000.0) * size_factor * (1.0 + age_years / 25.0)
        prefix_low, prefix_high = geography.POSTAL_PREFIXES[state]
        postal_code = f"{rng.randint(prefix_low, prefix_high):02d}{rng.randint(0, 999):03d}"
        street = (
            f"{rng.choice(geography.STREET_KINDS)} {rng.choice(geography.STREET_NAMES)} "
            f"{rng.randint(1, 4999)}"
        )
        employers.append(
            SyntheticEmployer(
                rfc=rfc,
                registration_number=registration,
                legal_name=legal_name,
                trade_name=trade_name,
                sector=sector,
                street=street,
                municipality=rng.choice(geography.MUNICIPALITIES[state]),
                state=state,
                postal_code=postal_code,
                registered_on=registered.toordinal(),
                size_weight=size_weight,
                salary_level=salary_level * math.exp(rng.gauss(0.0, 0.15)),
                normalized_name=fold(legal_name),
            )
        )
    return employers


@dataclass
class EmployerChooser:
    """Picks an employer for a job starting on a given day: one already registered that day,
    in the person's state most of the time, with probability proportional to its size."""

    employers: list[SyntheticEmployer]
    # Per state and nationally ("" key): employer indexes sorted by registration date, their
    # registration ordinals, and cumulative size weights in that order.
    _indexes: dict[str, list[int]] = field(default_factory=dict)
    _registered: dict[str, list[int]] = field(default_factory=dict)
    _cumulative: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        order = sorted(
            range(len(self.employers)), key=lambda i: (self.employers[i].registered_on, i)
        )
        groups: dict[str, list[int]] = {"": order}
        for index in order:
            groups.setdefault(self.employers[index].state, []).append(index)
        for key, indexes in groups.items():
            self._indexes[key] = indexes
            self._registered[key] = [self.employers[i].registered_on for i in indexes]
            self._cumulative[key] = list(
                itertools.accumulate(self.employers[i].size_weight for i in indexes)
            )
        self.earliest = self._registered[""][0] if order else ORDINAL_1960

    def choose(self, rng: random.Random, state: str, day: int, local_share: float = 0.85) -> int:
        """An employer index, or -1 when no employer was registered by ``day``."""
        key = state if rng.random() < local_share and state in self._indexes else ""
        available = bisect.bisect_right(self._registered[key], day)
        if available == 0 and key:
            key = ""
            available = bisect.bisect_right(self._registered[key], day)
        if available == 0:
            return -1
        cumulative = self._cumulative[key]
        position = bisect.bisect_right(
            cumulative, rng.random() * cumulative[available - 1], 0, available - 1
        )
        return self._indexes[key][position]
