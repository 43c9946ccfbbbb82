"""Spanish names for record linkage: folding, particles, married forms, nicknames, phonetic key.

Pure Python (no Django): the benchmark runs it on FEBRL and Spark without a database.

Everything works on *folded* text (``pilar.core.text.fold``: upper-case ASCII, no accents or
punctuation, single spaces), so "Núñez", "NUNEZ" and "nuñez" are one value.

Surnames (``surname_parts``)
    Particles (DE, DEL, LA, LOS, LAS, Y, MC, MAC, VAN, VON, DA, DAS, DOS) are removed as whole
    words: "de la Cruz" and "Cruz" agree, "del Río" and "Rio" agree. A surname made of particles
    only ("De") is kept as written rather than lost.

    A married woman's form "López de García" is cut at its *trailing* " DE X", X going to
    ``married_surname``. "DE" is also the start of real surnames ("de la Rosa", "Montes de Oca",
    "Ponce de León"), so the cut is made only when all of this holds:

    * the field ends in "DE X" with X one word that is not a particle ("... DE LA ROSA" ends in
      "DE LA ROSA" and is never cut);
    * at least one non-particle word comes before that "DE" (a field "de León" is a surname);
    * the field is not a known compound surname (``COMPOUND_SURNAMES``: PONCE DE LEON, MONTES
      DE OCA, …), and
    * X is a known surname (``KNOWN_SURNAMES``, the frequent Mexican surnames), **or** two or more
      non-particle words come before "DE" (the field already holds a full surname, for
      example "Cruz Torres de Xochihua").

    So "López de García" → LOPEZ + GARCIA, "Pérez de la Rosa" → PEREZ ROSA, "Montes de Oca" →
    MONTES OCA, "Ponce de León" → PONCE LEON, "Cruz de Ocampo" (Ocampo unknown) → CRUZ OCAMPO.

Given names
    ``given_canon`` maps each word through ``NICKNAMES`` (PEPE → JOSE, LUPITA → GUADALUPE,
    CHEMA → JOSE MARIA); a few nicknames depend on sex (ALE is Alejandra or Alejandro). BETO
    stands for Alberto and for Roberto; it maps to ROBERTO, by far the more frequent of the two
    in Mexico (``AMBIGUOUS_NICKNAMES`` lists such cases for callers who want every reading).
    Generic endearments (NENA, GÜERO, CHATO) name no one in particular and are not mapped.

    ``given_main`` follows RENAPO's rule for the CURP: the first given name, or the second when
    the first is MARIA, MA, JOSE or J and another follows; particles ("del" in "María del
    Carmen") are skipped.

Phonetic key (``spanish_phonetic``), applied to each word and joined without spaces:

    1. Fold; X at the start of a word before a vowel other than O, and MEX at the start,
       sound as J (XIMENEZ, XAVIER, MEXIA); any other X is KS (ALEXIS), XO at the start is S
       (XOCHITL). PH is F, W is U.
    2. H is silent and dropped, except in CH (kept as the code C, a sound of its own).
    3. LL, and Y before a vowel, are Y; any other Y is the vowel I (SYLVIA = SILVIA, GARAY =
       GARAI, YBARRA = IBARRA).
    4. V is B; N before B, V or P is M (CONBENTO = CONVENTO = COMBENTO).
    5. Z, and C before E or I, are S; QU before E or I, K, Q, and any other C are K.
    6. GUE/GUI (the U silent), GE, GI, JE and JI are all J + vowel: Spanish speakers write
       "Gerrero" for "Guerrero" as often as "Jeronimo" for "Gerónimo". G before A, O, U or a
       consonant stays G (GUADALUPE keeps its U, which is sounded); J elsewhere is J.
    7. Ñ is N (folding does this).
    8. Double letters collapse (RR → R, SS → S, CC → KS).
    9. Vowels are kept: Spanish names differ by vowels more than English ones do.

    Colliding: Vásquez/Vázquez/Basquez, Jiménez/Giménez/Ximénez, Yáñez/Llanes, Cervantes/
    Serbantes, Quiroz/Kiroz/Quiros, Hernández/Ernandez, Guerrero/Gerrero. Not colliding:
    Hernández/Fernández, Vázquez/Velázquez (see the tests for the full list).
"""

from __future__ import annotations

import functools
import re

from pilar.core.text import fold

PARTICLES = frozenset("DE DEL LA LOS LAS Y MC MAC VAN VON DA DAS DOS".split())
# Given names CURP skips when another given name follows (RENAPO's instructivo; "MA." folds
# to MA, "J." to J).
SKIPPED_FIRST_GIVEN = frozenset({"MARIA", "MA", "JOSE", "J"})

# Surnames that really are "X DE Y": never read as a married form.
COMPOUND_SURNAMES = frozenset(
    {
        "PONCE DE LEON",
        "MONTES DE OCA",
        "FERNANDEZ DE CORDOBA",
        "FERNANDEZ DE LARA",
        "GARCIA DE LEON",
        "PEREZ DE LEON",
        "RUIZ DE ALARCON",
        "DIAZ DE LEON",
        "SAENZ DE MIERA",
        "LOPEZ DE LARA",
        "GOMEZ DE LA TORRE",
        "NUNEZ DE CACERES",
        "SUAREZ DE MENDOZA",
        "VELEZ DE GUEVARA",
    }
)

# Frequent Mexican surnames (RENAPO/INEGI frequency lists, folded). Only used to decide whether
# a trailing "DE X" is a married name, so a frequent surname is what matters.
# fmt: off
KNOWN_SURNAMES = frozenset(
    """
    HERNANDEZ GARCIA MARTINEZ LOPEZ GONZALEZ PEREZ RODRIGUEZ SANCHEZ RAMIREZ CRUZ FLORES GOMEZ
    MORALES VAZQUEZ REYES JIMENEZ TORRES DIAZ GUTIERREZ RUIZ MENDOZA AGUILAR ORTIZ MORENO
    CASTILLO ROMERO ALVAREZ MENDEZ CHAVEZ RIVERA JUAREZ RAMOS DOMINGUEZ HERRERA MEDINA CASTRO
    VARGAS GUZMAN VELAZQUEZ MUNOZ ROJAS CONTRERAS SALAZAR LUNA ORTEGA SANTIAGO GUERRERO ESTRADA
    BAUTISTA CORTES SOTO ALVARADO ESPINOZA LARA AVILA RIOS CERVANTES SILVA DELGADO VEGA NUNEZ
    PENA IBARRA ACOSTA CAMPOS LEON VALDEZ SANDOVAL CARRILLO DOMINGUEZ NAVARRO SOLIS MEJIA
    FUENTES ROSALES GALLEGOS MIRANDA CABRERA MOLINA ESPINOSA VALENCIA ROSAS GUERRA TREJO
    PACHECO SERRANO RANGEL CARDENAS ROBLES MARQUEZ FIGUEROA VELASCO CAMACHO OROZCO ZAVALA
    ARELLANO CORONA PADILLA LUGO MALDONADO OSORIO ZAMORA VILLA BECERRA MARIN PARRA BARRERA
    NAVA ESCOBAR CORTEZ RUBIO SALINAS OCHOA MEZA TAPIA ARIAS BENITEZ VILLANUEVA GALLARDO
    PINEDA MONTES ACEVEDO FRANCO CORDOVA ESCOBEDO CARRASCO ZUNIGA ROSARIO BRAVO LUNA DURAN
    AGUIRRE BELTRAN ESQUIVEL QUINTERO SOLANO LEYVA TOVAR PONCE ANDRADE HUERTA SOSA VALDEZ
    ARROYO VILLEGAS MONTOYA CALDERON QUIROZ MACIAS NOLASCO OLVERA GODINEZ JACOBO VERA GIL
    MERCADO AVALOS BARRIOS SERNA LEAL PALACIOS CUEVAS CISNEROS SALAS ZARATE TELLEZ VALLE
    ALONSO VENEGAS DE ANDA HIDALGO MUNIZ LIMA LOZANO OLIVARES SALGADO CASTANEDA CERDA
    CHAVARRIA FERNANDEZ
    """.split()
)
# fmt: on

# Nickname → canonical given name(s), folded. Every word of a given name is looked up alone,
# so "Pepe Luis" becomes JOSE LUIS. Names that people are registered under in their own right
# (MAYTE, PILAR, LUZ) are not nicknames here, only their short forms are.
# fmt: off
NICKNAMES: dict[str, str] = {
    # José, Francisco, Jesús and the other frequent men's names.
    "PEPE": "JOSE", "CHEPE": "JOSE", "PEPITO": "JOSE", "JOSELUIS": "JOSE LUIS",
    "CHEMA": "JOSE MARIA", "JOSEMARIA": "JOSE MARIA", "JUANJO": "JUAN JOSE",
    "JUANCHO": "JUAN", "JUANITO": "JUAN", "JUANCARLOS": "JUAN CARLOS",
    "PACO": "FRANCISCO", "PANCHO": "FRANCISCO", "PAQUITO": "FRANCISCO", "FRANK": "FRANCISCO",
    "CHUCHO": "JESUS", "CHUY": "JESUS",
    "MEMO": "GUILLERMO", "NACHO": "IGNACIO", "LALO": "EDUARDO",
    "BETO": "ROBERTO", "TONO": "ANTONIO", "TONIO": "ANTONIO", "QUIQUE": "ENRIQUE",
    "RAFA": "RAFAEL", "MANOLO": "MANUEL", "MANU": "MANUEL", "CHALO": "GONZALO",
    "CHAVA": "SALVADOR", "CHENTE": "VICENTE", "LENCHO": "LORENZO", "GOYO": "GREGORIO",
    "NANDO": "FERNANDO", "JAVI": "JAVIER", "MONCHO": "RAMON", "PONCHO": "ALFONSO",
    "RIGO": "RIGOBERTO", "LUCHO": "LUIS", "PATO": "PATRICIO", "CHECO": "SERGIO",
    "NICO": "NICOLAS", "TAVO": "GUSTAVO", "SANTI": "SANTIAGO", "RODO": "RODOLFO",
    "MIKE": "MIGUEL", "MIGUELITO": "MIGUEL", "TOMY": "TOMAS", "BENY": "BENJAMIN",
    "CHUCK": "CARLOS", "CARLITOS": "CARLOS", "PEDRITO": "PEDRO", "CHAGO": "SANTIAGO",
    "ARMANDITO": "ARMANDO", "TEMO": "CUAUHTEMOC",
    # Women's names.
    "LUPE": "GUADALUPE", "LUPITA": "GUADALUPE", "LUPILLO": "GUADALUPE",
    "CHAYO": "ROSARIO", "CHARO": "ROSARIO",
    "CONCHITA": "CONCEPCION", "CONCHA": "CONCEPCION", "CONCHIS": "CONCEPCION",
    "CHELA": "GRACIELA", "LOLA": "DOLORES", "LOLITA": "DOLORES", "MAGO": "MARGARITA",
    "PILI": "PILAR", "MARU": "MARIA EUGENIA", "COCO": "SOCORRO", "CUCA": "REFUGIO",
    "MECHE": "MERCEDES", "CHOLE": "SOLEDAD", "CHEPINA": "JOSEFINA", "FINA": "JOSEFINA",
    "PATY": "PATRICIA", "PATI": "PATRICIA", "LIZ": "ELIZABETH", "TERE": "TERESA",
    "VERO": "VERONICA", "LETY": "LETICIA", "LETI": "LETICIA", "MALENA": "MAGDALENA",
    "MARISA": "MARIA LUISA", "MARILU": "MARIA DE LOURDES", "LULU": "LOURDES",
    "CHABELA": "ISABEL", "LICHA": "ALICIA", "SUSY": "SUSANA", "SUSI": "SUSANA",
    "CATY": "CATALINA", "CHELO": "CONSUELO", "ROSY": "ROSA", "ROCHI": "ROCIO",
    "ANITA": "ANA", "JUANITA": "JUANA", "MARTITA": "MARTHA", "CLAU": "CLAUDIA",
    "ADRI": "ADRIANA", "NORMITA": "NORMA", "YOLA": "YOLANDA", "NATY": "NATALIA",
    "VICKY": "VICTORIA", "LAU": "LAURA", "MONY": "MONICA",
    "XIME": "XIMENA", "VALE": "VALENTINA", "CHIO": "ROCIO",
}
# fmt: on
# Nicknames whose name depends on sex: (nickname, sex) → name; the unisex reading above is the
# fallback when sex is unknown.
SEXED_NICKNAMES: dict[tuple[str, str], str] = {
    ("ALE", "F"): "ALEJANDRA",
    ("ALE", "M"): "ALEJANDRO",
    ("ALEX", "F"): "ALEJANDRA",
    ("ALEX", "M"): "ALEJANDRO",
    ("ELI", "F"): "ELIZABETH",
    ("ELI", "M"): "ELIAS",
    ("GABY", "F"): "GABRIELA",
    ("GABY", "M"): "GABRIEL",
    ("DANY", "F"): "DANIELA",
    ("DANY", "M"): "DANIEL",
    ("DANI", "F"): "DANIELA",
    ("DANI", "M"): "DANIEL",
    ("FER", "F"): "FERNANDA",
    ("FER", "M"): "FERNANDO",
    ("PAU", "F"): "PAULINA",
    ("PAU", "M"): "PAULO",
}
_UNISEX_FALLBACK = {"ALE": "ALEJANDRO", "ALEX": "ALEJANDRO", "ELI": "ELIZABETH"}
_UNISEX_FALLBACK |= {"GABY": "GABRIELA", "DANY": "DANIEL", "DANI": "DANIEL", "FER": "FERNANDO"}
_UNISEX_FALLBACK |= {"PAU": "PAULINA"}
# Nicknames with more than one reading; ``NICKNAMES`` holds the chosen one.
AMBIGUOUS_NICKNAMES: dict[str, tuple[str, ...]] = {
    "BETO": ("ROBERTO", "ALBERTO"),
    "PACO": ("FRANCISCO", "FRANCISCO JAVIER"),
    "LUPE": ("GUADALUPE", "MARIA GUADALUPE", "JOSE GUADALUPE"),
    "ALE": ("ALEJANDRA", "ALEJANDRO"),
    "ALEX": ("ALEJANDRO", "ALEJANDRA", "ALEXANDER"),
}


def fold_name(text: str | None) -> str:
    """A name folded for matching ("" for None): 'María  de la Cruz' → 'MARIA DE LA CRUZ'."""
    if not text:
        return ""
    return fold(text)


def _words(folded: str) -> list[str]:
    return [word for word in folded.split(" ") if word]


@functools.lru_cache(maxsize=131072)
def surname_parts(text: str | None) -> tuple[str, str]:
    """(surname without particles, married surname) of one surname field, folded; "" when
    absent. See the module docstring for when a trailing "DE X" is a married form."""
    words = _words(fold_name(text))
    married = ""
    if len(words) >= 3 and words[-2] == "DE" and words[-1] not in PARTICLES:
        before = [word for word in words[:-2] if word not in PARTICLES]
        compound = " ".join(words) in COMPOUND_SURNAMES
        if before and not compound and (words[-1] in KNOWN_SURNAMES or len(before) >= 2):
            married = words[-1]
            words = words[:-2]
    kept = [word for word in words if word not in PARTICLES] or words
    return " ".join(kept), married


def surname_std(text: str | None) -> str:
    return surname_parts(text)[0]


def given_std(text: str | None) -> str:
    return fold_name(text)


@functools.lru_cache(maxsize=131072)
def given_canon(text: str | None, sex: str | None = None) -> str:
    """Each word of the folded given names through the nickname map."""
    canonical: list[str] = []
    for word in _words(fold_name(text)):
        sexed = SEXED_NICKNAMES.get((word, sex or ""))
        if sexed is None:
            sexed = _UNISEX_FALLBACK.get(word) or NICKNAMES.get(word, word)
        canonical.append(sexed)
    return " ".join(canonical)


def given_main(canonical: str) -> str:
    """The significant given name of a canonical given-names string (RENAPO's rule)."""
    words = [word for word in _words(canonical) if word not in PARTICLES] or _words(canonical)
    if len(words) > 1 and words[0] in SKIPPED_FIRST_GIVEN:
        return words[1]
    return words[0] if words else ""


# --- phonetic key ------------------------------------------------------------------------------

_VOWELS = frozenset("AEIOU")
_FRONT = frozenset("EI")
_NOT_LETTER = re.compile(r"[^A-Z]")


def _phonetic_word(word: str) -> str:
    word = _NOT_LETTER.sub("", word)
    if not word:
        return ""
    # Step 1: X and foreign spellings.
    if word.startswith("MEX"):
        word = "MEJ" + word[3:]
    elif word.startswith("XO"):
        word = "S" + word[1:]
    elif word.startswith("X") and len(word) > 1 and word[1] in _VOWELS:
        word = "J" + word[1:]
    word = word.replace("PH", "F").replace("X", "KS").replace("W", "U")
    out: list[str] = []
    length = len(word)
    index = 0
    while index < length:
        char = word[index]
        following = word[index + 1] if index + 1 < length else ""
        after = word[index + 2] if index + 2 < length else ""
        if char == "C":
            if following == "H":
                out.append("C")
                index += 2
                continue
            out.append("S" if following in _FRONT and following else "K")
        elif char == "H":
            # Silent (CH is handled with C).
            pass
        elif char == "L" and following == "L":
            out.append("Y")
            index += 2
            continue
        elif char == "Y":
            # A consonant before a vowel (YOLANDA), the vowel I elsewhere (SYLVIA, GARAY).
            out.append("Y" if following in _VOWELS and following else "I")
        elif char == "V":
            out.append("B")
        elif char == "N" and following in ("B", "V", "P"):
            out.append("M")
        elif char == "Z":
            out.append("S")
        elif char == "Q":
            out.append("K")
            if following == "U" and after in _FRONT:
                index += 2
                continue
        elif char == "G":
            if following == "U" and after in _FRONT:
                out.append("J")
                index += 2
                continue
            out.append("J" if following in _FRONT and following else "G")
        else:
            out.append(char)
        index += 1
    collapsed: list[str] = []
    for code in out:
        if not collapsed or collapsed[-1] != code:
            collapsed.append(code)
    return "".join(collapsed)


@functools.lru_cache(maxsize=131072)
def spanish_phonetic(text: str | None) -> str:
    """The Spanish phonetic key of a name ("" when there is nothing to key); see the module
    docstring for the rules."""
    return "".join(_phonetic_word(word) for word in _words(fold_name(text)))
