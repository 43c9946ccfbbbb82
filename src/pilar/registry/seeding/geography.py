"""Where synthetic persons live and work: state populations, migration, municipalities, postal
code ranges, telephone area codes, streets and neighbourhoods. Approximate, from the 2020 census
and public catalogues; good enough to look right, not to do statistics with."""

from __future__ import annotations

import itertools

# Population of each federal entity (CURP codes), millions, 2020 census.
# fmt: off
STATE_POPULATION: dict[str, float] = {
    "AS": 1.43, "BC": 3.77, "BS": 0.80, "CC": 0.93, "CL": 3.15, "CM": 0.73, "CS": 5.54,
    "CH": 3.74, "DF": 9.21, "DG": 1.83, "GT": 6.17, "GR": 3.54, "HG": 3.08, "JC": 8.35,
    "MC": 16.99, "MN": 4.75, "MS": 1.97, "NT": 1.24, "NL": 5.78, "OC": 4.13, "PL": 6.58,
    "QT": 2.37, "QR": 1.86, "SP": 2.82, "SL": 3.03, "SR": 2.94, "TC": 2.40, "TS": 3.53,
    "TL": 1.34, "VZ": 8.06, "YN": 2.32, "ZS": 1.62,
}
# fmt: on
STATE_CODES: list[str] = list(STATE_POPULATION)
STATE_CUMULATIVE: list[float] = list(itertools.accumulate(STATE_POPULATION.values()))

# Where people born elsewhere have moved to (internal migration), relative weights.
# fmt: off
MIGRATION_DESTINATIONS: dict[str, float] = {
    "MC": 30, "DF": 10, "NL": 9, "BC": 9, "JC": 7, "QR": 6, "QT": 5, "CH": 5, "TS": 4, "GT": 3,
    "SR": 3, "CL": 3, "AS": 2, "BS": 2, "PL": 2, "HG": 2, "MS": 2, "YN": 2,
}
# fmt: on
MIGRATION_CODES: list[str] = list(MIGRATION_DESTINATIONS)
MIGRATION_CUMULATIVE: list[float] = list(itertools.accumulate(MIGRATION_DESTINATIONS.values()))

# Countries of birth of the persons born abroad, relative weights: mostly the United States
# (children of Mexican migrants), then Central and South America.
# fmt: off
BIRTH_COUNTRIES: dict[str, float] = {
    "US": 70, "GT": 8, "HN": 5, "SV": 3, "CO": 3, "VE": 3, "CU": 2, "AR": 1.5, "ES": 1.5,
    "NI": 1, "PE": 1, "CA": 1,
}
# fmt: on
BIRTH_COUNTRY_CODES: list[str] = list(BIRTH_COUNTRIES)
BIRTH_COUNTRY_CUMULATIVE: list[float] = list(itertools.accumulate(BIRTH_COUNTRIES.values()))

# First two digits of the state's postal codes (inclusive ranges).
# fmt: off
POSTAL_PREFIXES: dict[str, tuple[int, int]] = {
    "AS": (20, 20), "BC": (21, 22), "BS": (23, 23), "CC": (24, 24), "CL": (25, 27),
    "CM": (28, 28), "CS": (29, 30), "CH": (31, 33), "DF": (1, 16), "DG": (34, 35),
    "GT": (36, 38), "GR": (39, 41), "HG": (42, 43), "JC": (44, 49), "MC": (50, 57),
    "MN": (58, 61), "MS": (62, 62), "NT": (63, 63), "NL": (64, 67), "OC": (68, 71),
    "PL": (72, 75), "QT": (76, 76), "QR": (77, 77), "SP": (78, 79), "SL": (80, 82),
    "SR": (83, 85), "TC": (86, 86), "TS": (87, 89), "TL": (90, 90), "VZ": (91, 96),
    "YN": (97, 97), "ZS": (98, 99),
}
# fmt: on

# Telephone area codes of the state's main cities (all Mexican numbers have ten digits).
AREA_CODES: dict[str, tuple[str, ...]] = {
    "AS": ("449",),
    "BC": ("664", "686", "646"),
    "BS": ("612", "624"),
    "CC": ("981", "938"),
    "CL": ("844", "871", "866"),
    "CM": ("312", "314"),
    "CS": ("961", "962", "967"),
    "CH": ("614", "656", "627"),
    "DF": ("55",),
    "DG": ("618", "871"),
    "GT": ("477", "462", "461", "473"),
    "GR": ("744", "747", "733"),
    "HG": ("771", "775"),
    "JC": ("33", "322", "341"),
    "MC": ("55", "722", "595"),
    "MN": ("443", "351", "452"),
    "MS": ("777", "735"),
    "NT": ("311",),
    "NL": ("81",),
    "OC": ("951", "971", "954"),
    "PL": ("222", "238", "233"),
    "QT": ("442", "427"),
    "QR": ("998", "983", "984"),
    "SP": ("444", "481"),
    "SL": ("667", "669", "668"),
    "SR": ("662", "644", "631"),
    "TC": ("993", "917"),
    "TS": ("899", "833", "834", "868"),
    "TL": ("246", "241"),
    "VZ": ("229", "228", "921", "271", "782"),
    "YN": ("999", "997"),
    "ZS": ("492", "493"),
}

# A few municipalities (alcaldías in Mexico City) of each state, the most populous first.
MUNICIPALITIES: dict[str, tuple[str, ...]] = {
    "AS": ("Aguascalientes", "Jesús María", "Calvillo", "Rincón de Romos"),
    "BC": ("Tijuana", "Mexicali", "Ensenada", "Tecate", "Playas de Rosarito"),
    "BS": ("La Paz", "Los Cabos", "Comondú", "Mulegé"),
    "CC": ("Campeche", "Carmen", "Champotón", "Escárcega"),
    "CL": ("Saltillo", "Torreón", "Monclova", "Piedras Negras", "Acuña"),
    "CM": ("Colima", "Manzanillo", "Villa de Álvarez", "Tecomán"),
    "CS": ("Tuxtla Gutiérrez", "Tapachula", "San Cristóbal de las Casas", "Comitán de Domínguez"),
    "CH": ("Juárez", "Chihuahua", "Cuauhtémoc", "Delicias", "Hidalgo del Parral"),
    "DF": (
        "Iztapalapa",
        "Gustavo A. Madero",
        "Álvaro Obregón",
        "Tlalpan",
        "Coyoacán",
        "Cuauhtémoc",
        "Venustiano Carranza",
        "Benito Juárez",
        "Azcapotzalco",
        "Iztacalco",
        "Xochimilco",
        "Miguel Hidalgo",
        "Tláhuac",
        "La Magdalena Contreras",
    ),
    "DG": ("Durango", "Gómez Palacio", "Lerdo", "Pueblo Nuevo"),
    "GT": ("León", "Irapuato", "Celaya", "Salamanca", "Guanajuato", "Silao de la Victoria"),
    "GR": (
        "Acapulco de Juárez",
        "Chilpancingo de los Bravo",
        "Iguala de la Independencia",
        "Zihuatanejo de Azueta",
        "Chilapa de Álvarez",
    ),
    "HG": (
        "Pachuca de Soto",
        "Tulancingo de Bravo",
        "Mineral de la Reforma",
        "Tizayuca",
        "Huejutla de Reyes",
    ),
    "JC": (
        "Zapopan",
        "Guadalajara",
        "Tlaquepaque",
        "Tonalá",
        "Tlajomulco de Zúñiga",
        "Puerto Vallarta",
        "Lagos de Moreno",
    ),
    "MC": (
        "Ecatepec de Morelos",
        "Nezahualcóyotl",
        "Toluca",
        "Naucalpan de Juárez",
        "Chimalhuacán",
        "Tlalnepantla de Baz",
        "Cuautitlán Izcalli",
        "Atizapán de Zaragoza",
        "Ixtapaluca",
        "Tecámac",
        "Valle de Chalco Solidaridad",
        "Nicolás Romero",
    ),
    "MN": ("Morelia", "Uruapan", "Zamora", "Lázaro Cárdenas", "Apatzingán"),
    "MS": ("Cuernavaca", "Jiutepec", "Cuautla", "Temixco", "Yautepec"),
    "NT": ("Tepic", "Bahía de Banderas", "Santiago Ixcuintla", "Compostela"),
    "NL": (
        "Monterrey",
        "Guadalupe",
        "Apodaca",
        "San Nicolás de los Garza",
        "General Escobedo",
        "Juárez",
        "Santa Catarina",
        "San Pedro Garza García",
    ),
    "OC": (
        "Oaxaca de Juárez",
        "San Juan Bautista Tuxtepec",
        "Juchitán de Zaragoza",
        "Salina Cruz",
        "Santa Cruz Xoxocotlán",
    ),
    "PL": (
        "Puebla",
        "Tehuacán",
        "San Martín Texmelucan",
        "Atlixco",
        "San Pedro Cholula",
        "San Andrés Cholula",
    ),
    "QT": ("Querétaro", "San Juan del Río", "Corregidora", "El Marqués"),
    "QR": ("Benito Juárez", "Othón P. Blanco", "Solidaridad", "Cozumel"),
    "SP": ("San Luis Potosí", "Soledad de Graciano Sánchez", "Ciudad Valles", "Matehuala"),
    "SL": ("Culiacán", "Mazatlán", "Ahome", "Guasave", "Navolato"),
    "SR": ("Hermosillo", "Cajeme", "Nogales", "San Luis Río Colorado", "Navojoa"),
    "TC": ("Centro", "Cárdenas", "Comalcalco", "Huimanguillo", "Macuspana"),
    "TS": ("Reynosa", "Matamoros", "Nuevo Laredo", "Victoria", "Tampico", "Altamira"),
    "TL": ("Tlaxcala", "Apizaco", "Huamantla", "Chiautempan"),
    "VZ": (
        "Veracruz",
        "Xalapa",
        "Coatzacoalcos",
        "Córdoba",
        "Poza Rica de Hidalgo",
        "Boca del Río",
        "Orizaba",
        "Minatitlán",
    ),
    "YN": ("Mérida", "Kanasín", "Valladolid", "Tizimín", "Progreso"),
    "ZS": ("Zacatecas", "Guadalupe", "Fresnillo", "Jerez", "Río Grande"),
}

# fmt: off
STREET_KINDS = (
    "Calle", "Calle", "Calle", "Calle", "Avenida", "Avenida", "Privada", "Cerrada", "Andador",
    "Boulevard", "Callejón", "Prolongación", "Calzada", "Circuito", "Retorno",
)
# fmt: on
# fmt: off
STREET_NAMES = (
    "Hidalgo", "Juárez", "Morelos", "Benito Juárez", "Miguel Hidalgo", "Independencia",
    "Reforma", "5 de Mayo", "16 de Septiembre", "20 de Noviembre", "Insurgentes", "Madero",
    "Francisco I. Madero", "Emiliano Zapata", "Venustiano Carranza", "Lázaro Cárdenas",
    "Allende", "Guerrero", "Aldama", "Zaragoza", "Matamoros", "Galeana", "Abasolo", "Iturbide",
    "Niños Héroes", "Revolución", "Constitución", "Libertad", "Progreso", "Del Trabajo",
    "Las Flores", "Los Pinos", "Las Palmas", "Los Olivos", "Jacarandas", "Tulipanes",
    "Bugambilias", "Girasoles", "Álamos", "Fresnos", "Sauces", "Cedros", "Nogal", "Roble",
    "Pino Suárez", "Vicente Guerrero", "Josefa Ortiz de Domínguez", "Leona Vicario",
    "Ignacio Zaragoza", "Cuauhtémoc", "Moctezuma", "Netzahualcóyotl", "Xicoténcatl",
    "Sor Juana Inés de la Cruz", "Amado Nervo", "Ramón López Velarde", "Nezahualpilli",
    "Del Río", "Del Lago", "Río Bravo", "Río Lerma", "Río Grijalva", "Mar del Norte",
    "Sierra Madre", "Popocatépetl", "Iztaccíhuatl", "Pico de Orizaba", "De la Paz",
    "Primavera", "Otoño", "Oriente 4", "Poniente 8", "Norte 12", "Sur 20", "Calle 5",
    "Calle 10", "Calle 21", "Calle 60", "Tercera", "Segunda Privada de Hidalgo",
)
# fmt: on
# fmt: off
NEIGHBOURHOODS = (
    "Centro", "Centro", "Del Valle", "Las Flores", "San Miguel", "Guadalupe", "La Joya",
    "Jardines del Sur", "Lomas de San Juan", "Santa Cruz", "El Rosario", "Independencia",
    "Emiliano Zapata", "Benito Juárez", "Revolución", "Moderna", "Reforma", "Las Américas",
    "San José", "Santa María", "Industrial", "Obrera", "Vista Hermosa", "Bellavista",
    "Los Pinos", "El Mirador", "Lázaro Cárdenas", "Buenavista", "Infonavit", "Fovissste",
    "Villas del Sol", "Residencial del Parque", "San Antonio", "La Esperanza", "El Carmen",
    "Nueva Esperanza", "Santa Fe", "Progreso", "Miguel Hidalgo", "Valle Verde", "La Loma",
    "Barrio de San Juan", "Barrio de Santiago", "Ejidal", "Jardines de Guadalupe",
    "Fraccionamiento Las Américas", "Unidad Habitacional Solidaridad", "Ampliación Las Palmas",
    "Pedregal", "Colinas del Sol", "Arboledas", "Los Ángeles", "Tierra y Libertad",
)
# fmt: on
# fmt: off
EMAIL_DOMAINS = (
    "gmail.com", "gmail.com", "gmail.com", "gmail.com", "hotmail.com", "hotmail.com",
    "outlook.com", "yahoo.com.mx", "live.com.mx", "prodigy.net.mx", "icloud.com",
)
# fmt: on
