"""Job titles by sector and earning level, so that a bank's well-paid employee is not a
dishwasher and a restaurant's low-paid one is not an actuary."""

from __future__ import annotations

import random

from pilar.registry.models import Sector

_GENERAL = (
    ("Auxiliar general", "Intendente", "Ayudante general", "Vigilante", "Mensajero"),
    ("Auxiliar administrativo", "Capturista", "Recepcionista", "Almacenista", "Chofer"),
    ("Supervisor", "Jefe de área", "Contador", "Coordinador administrativo", "Analista"),
    ("Gerente", "Director de área", "Contralor", "Gerente de recursos humanos"),
)

_BY_SECTOR: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    Sector.AGRICULTURE: (
        ("Jornalero agrícola", "Cortador", "Empacador", "Peón"),
        ("Tractorista", "Encargado de invernadero", "Operador de riego"),
        ("Técnico agrónomo", "Supervisor de campo", "Ingeniero agrónomo"),
        ("Gerente de producción agrícola",),
    ),
    Sector.MINING: (
        ("Ayudante de mina", "Barretero"),
        ("Operador de maquinaria pesada", "Perforista", "Mecánico"),
        ("Ingeniero de minas", "Geólogo", "Supervisor de seguridad"),
        ("Superintendente de mina",),
    ),
    Sector.UTILITIES: (
        ("Ayudante de linieros", "Lecturista"),
        ("Liniero", "Electricista", "Fontanero"),
        ("Ingeniero eléctrico", "Técnico de subestación"),
        ("Jefe de distribución",),
    ),
    Sector.CONSTRUCTION: (
        ("Peón de obra", "Ayudante de albañil", "Cargador"),
        ("Albañil", "Electricista", "Soldador", "Plomero", "Carpintero de obra", "Fierrero"),
        ("Maestro de obras", "Residente de obra", "Ingeniero civil", "Arquitecto"),
        ("Gerente de proyectos",),
    ),
    Sector.MANUFACTURING: (
        ("Operador de producción", "Obrero general", "Empacador", "Costurera"),
        (
            "Operador de máquina",
            "Técnico de mantenimiento",
            "Inspector de calidad",
            "Montacarguista",
        ),
        ("Ingeniero de procesos", "Supervisor de producción", "Ingeniero de calidad"),
        ("Gerente de planta",),
    ),
    Sector.WHOLESALE: (
        ("Cargador", "Ayudante de reparto", "Auxiliar de almacén"),
        ("Chofer repartidor", "Vendedor", "Almacenista"),
        ("Agente de ventas", "Jefe de almacén", "Comprador"),
        ("Gerente comercial",),
    ),
    Sector.RETAIL: (
        ("Cajera", "Despachador", "Acomodador", "Vendedor de piso"),
        ("Vendedor", "Encargado de tienda", "Auxiliar de farmacia"),
        ("Gerente de tienda", "Jefe de departamento", "Subgerente"),
        ("Gerente regional",),
    ),
    Sector.TRANSPORT: (
        ("Ayudante de chofer", "Cargador", "Mozo de andén"),
        ("Chofer", "Operador de tractocamión", "Mecánico", "Despachador de carga"),
        ("Jefe de tráfico", "Coordinador de logística"),
        ("Gerente de operaciones",),
    ),
    Sector.INFORMATION: (
        ("Auxiliar de producción", "Repartidor"),
        ("Técnico en telecomunicaciones", "Editor", "Diseñador gráfico"),
        ("Programador", "Analista de sistemas", "Productor", "Periodista"),
        ("Gerente de tecnología", "Director editorial"),
    ),
    Sector.FINANCE: (
        ("Auxiliar de sucursal", "Promotor"),
        ("Cajero bancario", "Ejecutivo de cuenta", "Analista de crédito"),
        ("Actuario", "Analista financiero", "Gerente de sucursal"),
        ("Director de riesgos", "Director financiero"),
    ),
    Sector.REAL_ESTATE: (
        ("Auxiliar de mantenimiento", "Conserje"),
        ("Asesor inmobiliario", "Administrador de condominio"),
        ("Valuador", "Gerente de ventas"),
        ("Director comercial",),
    ),
    Sector.PROFESSIONAL: (
        ("Auxiliar de oficina", "Mensajero"),
        ("Auxiliar contable", "Dibujante", "Técnico de laboratorio"),
        ("Contador público", "Abogado", "Ingeniero de proyectos", "Consultor"),
        ("Socio director",),
    ),
    Sector.ADMINISTRATIVE: (
        ("Personal de limpieza", "Guardia de seguridad", "Jardinero"),
        ("Supervisor de limpieza", "Operador de centro de llamadas", "Jefe de turno"),
        ("Coordinador de personal", "Reclutador"),
        ("Gerente de servicios",),
    ),
    Sector.EDUCATION: (
        ("Intendente escolar", "Auxiliar de cocina"),
        ("Asistente educativo", "Secretaria escolar", "Prefecto"),
        ("Profesor", "Profesora de primaria", "Docente", "Coordinador académico"),
        ("Director escolar", "Rector"),
    ),
    Sector.HEALTH: (
        ("Camillero", "Auxiliar de enfermería", "Personal de intendencia"),
        ("Enfermera general", "Técnico radiólogo", "Químico laboratorista"),
        ("Médico general", "Enfermera especialista", "Nutrióloga", "Médico especialista"),
        ("Director médico",),
    ),
    Sector.RECREATION: (
        ("Taquillero", "Ayudante de eventos"),
        ("Instructor deportivo", "Técnico de sonido"),
        ("Coordinador de eventos", "Entrenador"),
        ("Gerente general",),
    ),
    Sector.HOSPITALITY: (
        ("Lavaloza", "Mesero", "Camarista", "Ayudante de cocina"),
        ("Cocinero", "Cantinero", "Recepcionista de hotel", "Capitán de meseros"),
        ("Chef", "Gerente de restaurante", "Ama de llaves"),
        ("Gerente de hotel",),
    ),
    Sector.OTHER_SERVICES: (
        ("Ayudante de taller", "Lavador de autos", "Planchadora"),
        ("Mecánico automotriz", "Estilista", "Hojalatero"),
        ("Jefe de taller", "Encargado de sucursal"),
        ("Gerente",),
    ),
    Sector.GOVERNMENT: (
        ("Auxiliar de servicios", "Barrendero", "Policía auxiliar"),
        ("Auxiliar administrativo", "Policía municipal", "Operador de pipa"),
        ("Jefe de departamento", "Coordinador de programas", "Ingeniero municipal"),
        ("Director de área", "Tesorero municipal"),
    ),
}
_TITLES = {str(sector): titles for sector, titles in _BY_SECTOR.items()}


def job_title(rng: random.Random, sector: str, level: float) -> str:
    """A title for a job paying ``level`` times the reference wage."""
    tier = 0 if level < 1.6 else 1 if level < 3.0 else 2 if level < 7.0 else 3
    titles = _TITLES.get(sector)
    if titles is None or rng.random() < 0.2:
        return rng.choice(_GENERAL[tier])
    return rng.choice(titles[tier])
