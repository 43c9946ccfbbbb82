"""Spanish name normalisation: folding, particles, married forms, nicknames, RENAPO's main given
name and the phonetic key."""

from __future__ import annotations

import pytest

from pilar.linkage import names
from pilar.registry.seeding.names import NICKNAMES as SEEDER_NICKNAMES


def test_fold_name_removes_accents_case_punctuation_and_spacing() -> None:
    assert names.fold_name("  María   de la Cruz-Núñez ") == "MARIA DE LA CRUZ NUNEZ"
    assert names.fold_name("O'Higgins") == "OHIGGINS"
    assert names.fold_name(None) == ""
    assert names.fold_name("") == ""


@pytest.mark.parametrize(
    ("written", "standard"),
    [
        ("de la Cruz", "CRUZ"),
        ("Cruz", "CRUZ"),
        ("del Río", "RIO"),
        ("Del Rio", "RIO"),
        ("De Los Santos", "SANTOS"),
        ("de las Casas", "CASAS"),
        ("Mc Donald", "DONALD"),
        ("Van der Berg", "DER BERG"),
        ("da Silva", "SILVA"),
        ("dos Santos", "SANTOS"),
        ("la O", "O"),
        # A field of particles only is kept rather than lost.
        ("De", "DE"),
        ("", ""),
    ],
)
def test_particles_are_removed_from_surnames(written: str, standard: str) -> None:
    assert names.surname_std(written) == standard


@pytest.mark.parametrize(
    ("written", "standard", "married"),
    [
        # A married woman's form: known surname after a trailing DE.
        ("López de García", "LOPEZ", "GARCIA"),
        ("de la Cruz de García", "CRUZ", "GARCIA"),
        ("Torres de Hernández", "TORRES", "HERNANDEZ"),
        # Two surnames before DE: the field holds a full name, the rest is married, known or not.
        ("Cruz Torres de Xochihua", "CRUZ TORRES", "XOCHIHUA"),
        # Real surnames with a particle: never cut.
        ("Pérez de la Rosa", "PEREZ ROSA", ""),
        ("de la Rosa", "ROSA", ""),
        ("Montes de Oca", "MONTES OCA", ""),
        ("Ponce de León", "PONCE LEON", ""),
        ("de León", "LEON", ""),
        # One word before DE and an unknown surname after it: a compound surname.
        ("Cruz de Ocampo", "CRUZ OCAMPO", ""),
        # "DE LA X" at the end is a surname with a particle, not a married form.
        ("López de la Garza", "LOPEZ GARZA", ""),
    ],
)
def test_married_de_form_is_cut_only_when_the_heuristic_holds(
    written: str, standard: str, married: str
) -> None:
    assert names.surname_parts(written) == (standard, married)


@pytest.mark.parametrize(
    ("nickname", "sex", "canonical"),
    [
        ("Pepe", "M", "JOSE"),
        ("Chepe", "M", "JOSE"),
        ("Paco", "M", "FRANCISCO"),
        ("Pancho", "M", "FRANCISCO"),
        ("Lupe", "F", "GUADALUPE"),
        ("Lupita", "F", "GUADALUPE"),
        ("Chucho", "M", "JESUS"),
        ("Chuy", "M", "JESUS"),
        ("Memo", "M", "GUILLERMO"),
        ("Nacho", "M", "IGNACIO"),
        ("Lalo", "M", "EDUARDO"),
        ("Beto", "M", "ROBERTO"),
        ("Toño", "M", "ANTONIO"),
        ("Quique", "M", "ENRIQUE"),
        ("Rafa", "M", "RAFAEL"),
        ("Alex", "M", "ALEJANDRO"),
        ("Alex", "F", "ALEJANDRA"),
        ("Manolo", "M", "MANUEL"),
        ("Chalo", "M", "GONZALO"),
        ("Chava", "M", "SALVADOR"),
        ("Chayo", "F", "ROSARIO"),
        ("Charo", "F", "ROSARIO"),
        ("Conchita", "F", "CONCEPCION"),
        ("Concha", "F", "CONCEPCION"),
        ("Chela", "F", "GRACIELA"),
        ("Lola", "F", "DOLORES"),
        ("Mago", "F", "MARGARITA"),
        ("Chema", "M", "JOSE MARIA"),
        ("Joseluis", "M", "JOSE LUIS"),
        ("Pepe Luis", "M", "JOSE LUIS"),
        ("Pili", "F", "PILAR"),
        ("Maru", "F", "MARIA EUGENIA"),
        ("Chente", "M", "VICENTE"),
        ("Goyo", "M", "GREGORIO"),
        ("Poncho", "M", "ALFONSO"),
        ("Tere", "F", "TERESA"),
        ("Vero", "F", "VERONICA"),
        ("Paty", "F", "PATRICIA"),
        ("Meche", "F", "MERCEDES"),
        ("Chole", "F", "SOLEDAD"),
        ("Ale", "F", "ALEJANDRA"),
        ("Ale", "M", "ALEJANDRO"),
        ("Gaby", "M", "GABRIEL"),
        ("María Lupita", "F", "MARIA GUADALUPE"),
        # Not a nickname: unchanged.
        ("Nena", "F", "NENA"),
        ("Mayte", "F", "MAYTE"),
    ],
)
def test_nicknames_map_to_the_canonical_name(nickname: str, sex: str, canonical: str) -> None:
    assert names.given_canon(nickname, sex) == canonical


def test_at_least_forty_real_nicknames() -> None:
    assert len(names.NICKNAMES) + len({key for key, _sex in names.SEXED_NICKNAMES}) >= 40


_FEMALE_SEEDER_NAMES = {
    "Rosario",
    "Guadalupe",
    "María Guadalupe",
    "Concepción",
    "Graciela",
    "Dolores",
    "Margarita",
    "Socorro",
    "Refugio",
    "Mercedes",
    "Soledad",
    "Josefina",
    "Alejandra",
    "Patricia",
    "Elizabeth",
}


def test_every_seeder_nickname_agrees_with_its_name() -> None:
    """The seeder writes these nicknames for these names: each must reach the name's canonical
    main given name, share a canonical word with it, or be a documented ambiguous nickname."""
    unmatched = []
    for name, nicknames in SEEDER_NICKNAMES.items():
        sex = "F" if name in _FEMALE_SEEDER_NAMES else "M"
        wanted = names.given_canon(name, sex)
        for nickname in nicknames:
            found = names.given_canon(nickname, sex)
            shares_word = set(found.split()) & set(wanted.split())
            ambiguous = wanted in names.AMBIGUOUS_NICKNAMES.get(names.fold_name(nickname), ())
            if not (shares_word or ambiguous):
                unmatched.append((name, nickname, found))
    assert unmatched == []


def test_beto_is_ambiguous_and_documented() -> None:
    assert set(names.AMBIGUOUS_NICKNAMES["BETO"]) == {"ALBERTO", "ROBERTO"}
    assert names.given_canon("Beto") in names.AMBIGUOUS_NICKNAMES["BETO"]


@pytest.mark.parametrize(
    ("given", "main"),
    [
        ("María Guadalupe", "GUADALUPE"),
        ("Ma. Guadalupe", "GUADALUPE"),
        ("MA GUADALUPE", "GUADALUPE"),
        ("María del Carmen", "CARMEN"),
        ("José Luis", "LUIS"),
        ("J. Jesús", "JESUS"),
        ("J Jesus", "JESUS"),
        ("María", "MARIA"),
        ("José", "JOSE"),
        ("Juan José", "JUAN"),
        ("Ana María", "ANA"),
        # Canonical first: CHEMA is JOSE MARIA, whose main name is MARIA.
        ("Chema", "MARIA"),
        ("Lupita", "GUADALUPE"),
        ("", ""),
    ],
)
def test_given_main_follows_renapo(given: str, main: str) -> None:
    assert names.given_main(names.given_canon(given)) == main


COLLIDING = [
    ("Vásquez", "Vázquez"),
    ("Vázquez", "Basquez"),
    ("Vasquez", "Basquez"),
    ("Jiménez", "Giménez"),
    ("Jiménez", "Ximénez"),
    ("Yáñez", "Llanes"),
    ("Cervantes", "Serbantes"),
    ("Quiroz", "Kiroz"),
    ("Quiroz", "Quiros"),
    ("Hernández", "Ernandez"),
    ("Guerrero", "Gerrero"),
    ("González", "Gonzales"),
    ("Gutiérrez", "Gutierres"),
    ("Álvarez", "Albarez"),
    ("Valdez", "Baldes"),
    ("Chávez", "Chabez"),
    ("Núñez", "Nunes"),
    ("Mejía", "Mexía"),
    ("Javier", "Xavier"),
    ("Zamora", "Samora"),
    ("Cecilia", "Sesilia"),
    ("Silvia", "Sylvia"),
    ("Yolanda", "Llolanda"),
    ("Guillermo", "Gillermo"),
    ("Hugo", "Ugo"),
    ("Humberto", "Umberto"),
    ("Elena", "Helena"),
    ("Enrique", "Henrique"),
    ("Raquel", "Rakel"),
    ("Carmen", "Karmen"),
    ("Ibarra", "Ybarra"),
    ("Ibarra", "Ibara"),
    ("Vega", "Bega"),
    ("Esquivel", "Esquibel"),
    ("Mendoza", "Mendosa"),
    ("Jerónimo", "Gerónimo"),
    ("Alexander", "Alecsander"),
    ("Maricela", "Marisela"),
    ("Xóchitl", "Sochitl"),
    ("Garay", "Garai"),
    ("Convento", "Conbento"),
    ("Villanueva", "Billanueba"),
]


@pytest.mark.parametrize(("one", "other"), COLLIDING)
def test_phonetic_key_collides(one: str, other: str) -> None:
    assert names.spanish_phonetic(one) == names.spanish_phonetic(other)


def test_at_least_thirty_colliding_pairs() -> None:
    assert len(COLLIDING) >= 30


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Hernández", "Fernández"),
        ("Vázquez", "Velázquez"),
        ("García", "Garza"),
        ("López", "Lozano"),
        ("Martínez", "Martín"),
        ("Juan", "Juana"),
        ("Mario", "María"),
        ("Luis", "Luisa"),
        ("Gómez", "Gámez"),
        ("Rosa", "Rosas"),
        ("Ramos", "Ramón"),
        ("García", "Jarcia"),
        ("Chávez", "Sabes"),
    ],
)
def test_phonetic_key_keeps_different_names_apart(one: str, other: str) -> None:
    assert names.spanish_phonetic(one) != names.spanish_phonetic(other)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Hernández", "ERNANDES"),
        ("Chávez", "CABES"),
        ("Guadalupe", "GUADALUPE"),
        ("Guerrero", "JERERO"),
        ("Quiroz", "KIROS"),
        ("Acción", "AKSION"),
        ("Alexis", "ALEKSIS"),
        ("Philips", "FILIPS"),
        ("de la Cruz", "DELAKRUS"),
        ("", ""),
        ("123", ""),
    ],
)
def test_phonetic_key_exact_values(name: str, key: str) -> None:
    assert names.spanish_phonetic(name) == key
