"""Refresh the domain catalogue (core and registry models, services, selectors).

`python tools/domain_es.py` (needs GNU xgettext) re-extracts the domain strings and rewrites
src/pilar/locale/domain/es/LC_MESSAGES/django.po, keeping every translation already in that
file and taking new ones from the ES table below; it lists strings that still lack Spanish.
Obsolete entries are dropped. The test suite fails on any untranslated string either way.
"""

ES = {
    "The request could not be processed.": "No se pudo procesar la solicitud.",
    "Some fields are not valid.": "Algunos campos no son válidos.",
    "You do not have permission to do this.": "No tiene permiso para realizar esta acción.",
    "The record does not exist or is outside your area.": "El registro no existe o está fuera de su ámbito.",
    "The request conflicts with the current state of the record.": "La solicitud contradice el estado actual del registro.",
    "CURP": "CURP",
    "NSS (IMSS social security number)": "NSS (número de seguridad social del IMSS)",
    "RFC (federal taxpayer registry)": "RFC (Registro Federal de Contribuyentes)",
    "Passport": "Pasaporte",
    "Foreign identifier": "Identificador extranjero",
    "A CURP has exactly 18 characters.": "La CURP tiene exactamente 18 caracteres.",
    "A CURP is 4 letters, 6 digits (birth date), H or M, 5 letters, a letter or digit and a check digit.": "La CURP se compone de 4 letras, 6 dígitos (fecha de nacimiento), H o M, 5 letras, una letra o dígito y un dígito verificador.",
    "The CURP check digit (last character) is wrong.": "El dígito verificador de la CURP (último carácter) es incorrecto.",
    "The CURP contains an impossible birth date, sex or state code.": "La CURP contiene una fecha de nacimiento, un sexo o una clave de entidad imposibles.",
    "An RFC has 13 characters for a person or 12 for a company.": "El RFC tiene 13 caracteres para una persona física o 12 para una persona moral.",
    "The RFC format is not valid.": "El formato del RFC no es válido.",
    "The RFC check digit (last character) is wrong.": "El dígito verificador del RFC (último carácter) es incorrecto.",
    "The RFC contains an impossible date or homoclave.": "El RFC contiene una fecha o una homoclave imposibles.",
    "A company RFC has 12 characters.": "El RFC de una persona moral tiene 12 caracteres.",
    "A person's RFC has 13 characters.": "El RFC de una persona física tiene 13 caracteres.",
    "An NSS contains digits only.": "El NSS solo contiene dígitos.",
    "An NSS has exactly 11 digits.": "El NSS tiene exactamente 11 dígitos.",
    "The NSS check digit (last digit) is wrong.": "El dígito verificador del NSS (último dígito) es incorrecto.",
    "An employer registration number has exactly 11 characters.": "El registro patronal tiene exactamente 11 caracteres.",
    "An employer registration number is a letter or digit followed by ten digits.": "El registro patronal es una letra o un dígito seguido de diez dígitos.",
    "A document number has between 3 and 30 characters.": "El número de documento tiene entre 3 y 30 caracteres.",
    "A document number contains letters and digits only.": "El número de documento solo contiene letras y dígitos.",
    "Unknown identifier type.": "Tipo de identificador desconocido.",
    "The identifier value is required.": "El valor del identificador es obligatorio.",
    "Give the issuing country as a two-letter ISO code, for example US.": "Indique el país emisor con su clave ISO de dos letras, por ejemplo US.",
    "Born abroad": "Nacido en el extranjero",
    "Registrar": "Registrador",
    "Benefits officer": "Dictaminador de prestaciones",
    "Case worker": "Gestor de casos",
    "Data steward": "Custodio de datos",
    "Auditor": "Auditor",
    "Analyst": "Analista",
    "Administrator": "Administrador",
    "code": "clave",
    "name": "nombre",
    "region": "región",
    "office": "oficina",
    "offices": "oficinas",
    "role": "rol",
    "Staff web UI": "Interfaz web del personal",
    "REST API": "API REST",
    "Command line": "Línea de comandos",
    "Bulk job": "Proceso masivo",
    "Export": "Exportación",
    "The user does not hold this role.": "El usuario no tiene este rol.",
    "Pages are numbered from 1.": "Las páginas se numeran a partir de 1.",
    "The page size must be between 1 and %(max)d.": "El tamaño de página debe estar entre 1 y %(max)d.",
    "The end date cannot be before the start date.": "La fecha final no puede ser anterior a la fecha inicial.",
    "Unknown channel.": "Canal desconocido.",
    "Core": "Núcleo",
    "Female": "Mujer",
    "Male": "Hombre",
    "Non-binary": "No binario",
    "Active": "Activo",
    "Inactive": "Inactivo",
    "given names": "nombre(s)",
    "paternal surname": "primer apellido",
    "maternal surname": "segundo apellido",
    "sex": "sexo",
    "birth date": "fecha de nacimiento",
    "birth state": "entidad de nacimiento",
    "birth country": "país de nacimiento",
    "nationality": "nacionalidad",
    "death date": "fecha de defunción",
    "status": "estado",
    "person": "persona",
    "persons": "personas",
    "type": "tipo",
    "value": "valor",
    "issuing country": "país emisor",
    "Home": "Domicilio particular",
    "Postal": "Postal",
    "Work": "Trabajo",
    "kind": "tipo",
    "street and number": "calle y número",
    "neighbourhood (colonia)": "colonia",
    "municipality": "municipio o alcaldía",
    "state": "entidad federativa",
    "postal code": "código postal",
    "country": "país",
    "valid from": "vigente desde",
    "valid to": "vigente hasta",
    "Mobile phone": "Teléfono celular",
    "Landline": "Teléfono fijo",
    "Email": "Correo electrónico",
    "preferred": "preferido",
    "Spouse": "Cónyuge",
    "Partner (concubinato)": "Concubina o concubinario",
    "Child": "Hija o hijo",
    "Parent": "Madre o padre",
    "relation": "parentesco",
    "from": "desde",
    "to": "hasta",
    "Agriculture, forestry, fishing and hunting": "Agricultura, cría y explotación de animales, aprovechamiento forestal, pesca y caza",
    "Mining": "Minería",
    "Electricity, water and gas": "Energía eléctrica, agua y gas",
    "Construction": "Construcción",
    "Manufacturing": "Industrias manufactureras",
    "Wholesale trade": "Comercio al por mayor",
    "Retail trade": "Comercio al por menor",
    "Transport, postal and warehousing": "Transportes, correos y almacenamiento",
    "Information and media": "Información en medios masivos",
    "Finance and insurance": "Servicios financieros y de seguros",
    "Real estate and rental": "Servicios inmobiliarios y de alquiler",
    "Professional, scientific and technical services": "Servicios profesionales, científicos y técnicos",
    "Business support and waste management": "Servicios de apoyo a los negocios y manejo de residuos",
    "Education": "Servicios educativos",
    "Health care and social assistance": "Servicios de salud y de asistencia social",
    "Arts, entertainment and recreation": "Servicios de esparcimiento, culturales y deportivos",
    "Accommodation and food services": "Servicios de alojamiento y de preparación de alimentos",
    "Other services": "Otros servicios",
    "Government": "Actividades gubernamentales",
    "Suspended": "Suspendido",
    "Closed": "Dado de baja",
    "RFC": "RFC",
    "employer registration number": "registro patronal",
    "legal name": "razón social",
    "trade name": "nombre comercial",
    "sector": "sector",
    "registered on": "fecha de registro",
    "employer": "patrón",
    "employers": "patrones",
    "start date": "fecha de inicio",
    "end date": "fecha de término",
    "job title": "puesto",
    "effective from": "vigente desde",
    "daily base salary (SBC)": "salario base de cotización diario (SBC)",
    "name (Spanish)": "nombre (español)",
    "name (English)": "nombre (inglés)",
    "Ended": "Concluido",
    "This field is required.": "Este campo es obligatorio.",
    "At most %(max)d characters.": "Como máximo %(max)d caracteres.",
    "Names contain letters, spaces, apostrophes, hyphens and dots only.": "Los nombres solo contienen letras, espacios, apóstrofos, guiones y puntos.",
    "Give a two-letter ISO 3166 country code, for example MX.": "Indique la clave ISO 3166 de dos letras del país, por ejemplo MX.",
    "Give at least one surname (paternal or maternal).": "Indique al menos un apellido (primero o segundo).",
    "Choose female, male or non-binary.": "Elija mujer, hombre o no binario.",
    "The birth date cannot be in the future.": "La fecha de nacimiento no puede ser futura.",
    "The birth date cannot be before 1 January 1900.": "La fecha de nacimiento no puede ser anterior al 1 de enero de 1900.",
    "Choose a state of Mexico or born abroad.": "Elija una entidad federativa o «nacido en el extranjero».",
    "A person born in Mexico needs a Mexican state of birth.": "Una persona nacida en México necesita una entidad federativa de nacimiento.",
    "A person born abroad has 'born abroad' as state of birth.": "Una persona nacida fuera de México tiene «nacido en el extranjero» como entidad de nacimiento.",
    "The death date cannot be in the future.": "La fecha de defunción no puede ser futura.",
    "The death date cannot be before the birth date.": "La fecha de defunción no puede ser anterior a la fecha de nacimiento.",
    "Choose the state that administers the record.": "Elija la entidad que administra el registro.",
    "The CURP's birth date (characters 5–10) does not match the birth date.": "La fecha de nacimiento de la CURP (caracteres 5 a 10) no coincide con la fecha de nacimiento.",
    "The CURP's sex (character 11) does not match the person's sex.": "El sexo de la CURP (carácter 11) no coincide con el sexo de la persona.",
    "The CURP's state of birth (characters 12–13) does not match the state of birth.": "La entidad de nacimiento de la CURP (caracteres 12 y 13) no coincide con la entidad de nacimiento.",
    "Choose a state of Mexico.": "Elija una entidad federativa.",
    "A Mexican postal code has five digits.": "El código postal tiene cinco dígitos.",
    "Choose home, postal or work.": "Elija particular, postal o trabajo.",
    "The date cannot be in the future.": "La fecha no puede ser futura.",
    "Choose mobile phone, landline or email.": "Elija teléfono celular, teléfono fijo o correo electrónico.",
    "Enter a valid email address.": "Escriba un correo electrónico válido.",
    "A phone number has 10 digits, or 10 to 15 with the country code.": "El teléfono tiene 10 dígitos, o de 10 a 15 con la clave del país.",
    "Choose an economic sector.": "Elija un sector económico.",
    "Choose active, suspended or closed.": "Elija activo, suspendido o dado de baja.",
    "The daily salary must be greater than 0 and less than 1,000,000.": "El salario diario debe ser mayor que 0 y menor que 1,000,000.",
    "Choose spouse, partner, child or parent.": "Elija cónyuge, concubino, hijo o padre.",
    "A person with the same names and birth date is already registered.": "Ya está registrada una persona con el mismo nombre y fecha de nacimiento.",
    "Someone else changed this record after you opened it. Reload it and try again.": "Otra persona modificó este registro después de que usted lo abrió. Vuelva a cargarlo e inténtelo de nuevo.",
    "A person has one identifier of each type.": "Una persona tiene un solo identificador de cada tipo.",
    "This %(scheme)s is already registered to another person.": "Esta clave %(scheme)s ya está registrada a otra persona.",
    "You can only register persons in your office's region.": "Solo puede registrar personas en la región de su oficina.",
    "One of these identifiers was registered to another person a moment ago.": "Uno de estos identificadores acaba de registrarse a otra persona.",
    "Unknown field.": "Campo desconocido.",
    "You can only move a record to a region you administer.": "Solo puede trasladar un registro a una región que usted administre.",
    "The person already has an active identifier of this type; deactivate it first.": "La persona ya tiene un identificador vigente de este tipo; desactívelo primero.",
    "Say why the identifier is deactivated.": "Indique por qué se desactiva el identificador.",
    "The person already has this contact.": "La persona ya tiene este dato de contacto.",
    "A person cannot be their own relative.": "Una persona no puede ser su propio familiar.",
    "A child must be born after their parent.": "Un hijo debe haber nacido después que su madre o padre.",
    "The tie cannot start before both persons were born.": "El vínculo no puede empezar antes del nacimiento de ambas personas.",
    "These two persons already have an open family tie.": "Estas dos personas ya tienen un vínculo familiar vigente.",
    "%(name)s already has an open marriage or partnership; end it first.": "%(name)s ya tiene un matrimonio o concubinato vigente; termínelo primero.",
    "This family tie has already ended.": "Este vínculo familiar ya terminó.",
    "An employer with this RFC is already registered.": "Ya está registrado un patrón con este RFC.",
    "An employer with this registration number is already registered.": "Ya está registrado un patrón con este registro patronal.",
    "There is no such employer.": "No existe ese patrón.",
    "An open working period needs an active employer.": "Un periodo laboral vigente requiere un patrón activo.",
    "The person was under the minimum working age (15) on this date.": "En esa fecha la persona no tenía la edad mínima para trabajar (15 años).",
    "The working period cannot start after the person's death.": "El periodo laboral no puede empezar después de la defunción de la persona.",
    "The person already has a working period with this employer in these dates.": "La persona ya tiene un periodo laboral con este patrón en esas fechas.",
    "This working period has already ended.": "Este periodo laboral ya terminó.",
    "The date must fall within the working period.": "La fecha debe estar dentro del periodo laboral.",
    "There is already a salary from this date.": "Ya hay un salario registrado a partir de esta fecha.",
    "There is no such active programme.": "No existe ese programa vigente.",
    "The enrolment cannot start before the person's birth.": "La inscripción no puede empezar antes del nacimiento de la persona.",
    "The person is already enrolled in this programme.": "La persona ya está inscrita en este programa.",
    "Choose active, suspended or ended.": "Elija activa, suspendida o concluida.",
    "This enrolment has ended.": "Esta inscripción ya concluyó.",
    "Type an identifier or at least %(min)d letters of a name.": "Escriba un identificador o al menos %(min)d letras de un nombre.",
    "Registry": "Padrón",
}

# The files whose gettext strings belong to the domain catalogue.
DOMAIN_SOURCES = [
    "core/errors.py", "core/identifiers.py", "core/regions.py", "core/roles.py",
    "core/models.py", "core/auth.py", "core/pagination.py", "core/selectors.py", "core/apps.py",
    "core/services.py",
    "registry/models.py", "registry/validation.py", "registry/services.py",
    "registry/selectors.py", "registry/apps.py",
]


def main() -> None:
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import polib

    package = Path(__file__).resolve().parent.parent / "src" / "pilar"
    with tempfile.TemporaryDirectory() as scratch:
        pot = Path(scratch) / "domain.pot"
        subprocess.run(
            ["xgettext", "--language=Python", "--keyword=_", "--keyword=gettext_lazy",
             "--keyword=gettext", "--from-code=UTF-8", "--no-location", "-o", str(pot),
             *DOMAIN_SOURCES],
            cwd=package, check=True,
        )
        template = polib.pofile(str(pot))
    target = package / "locale" / "domain" / "es" / "LC_MESSAGES" / "django.po"
    known = {e.msgid: e.msgstr for e in polib.pofile(str(target)) if e.msgstr}
    known.update(ES)
    catalogue = polib.POFile()
    catalogue.metadata = {
        "Project-Id-Version": "pilar", "Language": "es", "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=UTF-8", "Content-Transfer-Encoding": "8bit",
        "Plural-Forms": "nplurals=2; plural=(n != 1);",
    }
    missing = []
    for entry in template:
        translation = known.get(entry.msgid)
        if translation is None:
            missing.append(entry.msgid)
            continue
        catalogue.append(polib.POEntry(msgid=entry.msgid, msgstr=translation,
                                       flags=[f for f in entry.flags if f != "fuzzy"]))
    catalogue.save(str(target))
    print(f"{len(catalogue)} messages written to {target}")
    if missing:
        print("Missing Spanish for:", *missing, sep="\n  ", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
