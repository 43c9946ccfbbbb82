"""Mexico's federal entities with their CURP codes, and the country list Pilar accepts.

The CURP code ``NE`` (nacido en el extranjero) marks a person born abroad. Regions scope what
staff see: a staff member's office belongs to one entity.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# CURP entity code → name. Names are proper nouns and are not translated.
STATES: dict[str, str] = {
    "AS": "Aguascalientes",
    "BC": "Baja California",
    "BS": "Baja California Sur",
    "CC": "Campeche",
    "CL": "Coahuila",
    "CM": "Colima",
    "CS": "Chiapas",
    "CH": "Chihuahua",
    "DF": "Ciudad de México",
    "DG": "Durango",
    "GT": "Guanajuato",
    "GR": "Guerrero",
    "HG": "Hidalgo",
    "JC": "Jalisco",
    "MC": "Estado de México",
    "MN": "Michoacán",
    "MS": "Morelos",
    "NT": "Nayarit",
    "NL": "Nuevo León",
    "OC": "Oaxaca",
    "PL": "Puebla",
    "QT": "Querétaro",
    "QR": "Quintana Roo",
    "SP": "San Luis Potosí",
    "SL": "Sinaloa",
    "SR": "Sonora",
    "TC": "Tabasco",
    "TS": "Tamaulipas",
    "TL": "Tlaxcala",
    "VZ": "Veracruz",
    "YN": "Yucatán",
    "ZS": "Zacatecas",
}
BORN_ABROAD = "NE"

STATE_CHOICES = [(code, name) for code, name in sorted(STATES.items(), key=lambda item: item[1])]
BIRTH_STATE_CHOICES = [*STATE_CHOICES, (BORN_ABROAD, _("Born abroad"))]

# ISO 3166-1 alpha-2 codes of the countries most often seen in Mexican social security records.
# Any other valid two-letter code is accepted too; these get readable names in forms.
COUNTRIES: dict[str, str] = {
    "MX": "México",
    "US": "Estados Unidos / United States",
    "GT": "Guatemala",
    "HN": "Honduras",
    "SV": "El Salvador",
    "NI": "Nicaragua",
    "CR": "Costa Rica",
    "PA": "Panamá",
    "CU": "Cuba",
    "VE": "Venezuela",
    "CO": "Colombia",
    "EC": "Ecuador",
    "PE": "Perú",
    "BO": "Bolivia",
    "CL": "Chile",
    "AR": "Argentina",
    "UY": "Uruguay",
    "PY": "Paraguay",
    "BR": "Brasil",
    "ES": "España",
    "PT": "Portugal",
    "CA": "Canadá / Canada",
    "FR": "Francia / France",
    "DE": "Alemania / Germany",
    "IT": "Italia / Italy",
    "CN": "China",
    "KR": "Corea del Sur / South Korea",
    "JP": "Japón / Japan",
}
COUNTRY_CHOICES = sorted(COUNTRIES.items(), key=lambda item: item[1])


def is_country_code(value: str) -> bool:
    return len(value) == 2 and value.isascii() and value.isalpha() and value.isupper()
