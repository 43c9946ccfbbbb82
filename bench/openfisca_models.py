"""The reference models for the rules benchmark, written the way OpenFisca's own country packages
are written: a person entity, variables with vectorised formulas, dated parameters.

Bench-only: ``openfisca-core`` is installed by ``pip install -e '.[bench]'`` (``make bench``
does it) and is never imported by Pilar itself. The two models compute exactly what the Pilar
scheme packages compute, so the benchmark compares like with like:

- the toy formula of the issue (``bench/schemes/toy_pension``): eligible at age >= 65 with
  >= 15 years; pension = max(minimum, rate x average salary x years / 40);
- the IMSS Ley 1973 old-age pension (``src/pilar/rules/schemes/imss_1973``, benefit ``vejez``):
  the art. 167 table by salary group (two single-amount scales, right-closed brackets like the
  package's ``(a, b]`` rows), yearly increments beyond 500 weeks with the 13/26-week remainder
  rule (a ``select``), the art. 164 family allowances (a ``select`` over the exceptions), and the
  art. 168 minimum pension, rounded to the centavo.

The Ley 1973 parameters are not copied by hand: ``ley73_parameters`` reads them from the Pilar
package (the same figures, with the same dates), so the two engines cannot drift apart when a
figure is corrected. OpenFisca has no record time: each ``from`` date takes the entry recorded
last, which is the package's own view "as known today".

OpenFisca computes ``float`` variables in float32; Pilar's bulk mode in float64. The benchmark
reports the largest difference between the two engines' amounts.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np
from openfisca_core.entities import build_entity
from openfisca_core.model_api import ETERNITY, MONTH, Variable, max_, not_, round_, select, where
from openfisca_core.parameters import ParameterNode
from openfisca_core.simulations import SimulationBuilder
from openfisca_core.taxbenefitsystems import TaxBenefitSystem

Person = build_entity(key="person", plural="persons", label="Person", is_person=True)


def _input(name: str, value_type: type, label: str) -> type[Variable]:
    """An input variable: supplied by the caller, constant over time (ETERNITY) like the
    claim-date facts Pilar stores with an award."""
    return type(
        name,
        (Variable,),
        {
            "value_type": value_type,
            "entity": Person,
            "definition_period": ETERNITY,
            "label": label,
        },
    )


# --- the toy formula -------------------------------------------------------------------------
# Variables are classes named in snake case, as in OpenFisca's own country packages: the class
# name is the variable's name in simulations and in the parameters' formulas.

TOY_INPUTS = (
    _input("age", float, "Age in years"),
    _input("years", float, "Years of contribution"),
    _input("average_salary", float, "Average salary"),
)


class toy_eligible(Variable):
    value_type = bool
    entity = Person
    definition_period = MONTH
    label = "Eligible: age >= 65 and >= 15 years of contribution"

    def formula(person, period, parameters):
        p = parameters(period).toy
        return (person("age", period) >= p.minimum_age) * (
            person("years", period) >= p.minimum_years
        )


class toy_pension(Variable):
    value_type = float
    entity = Person
    definition_period = MONTH
    label = "max(minimum, rate x average salary x years / 40)"

    def formula(person, period, parameters):
        p = parameters(period).toy
        amount = max_(
            p.minimum_pension,
            p.rate * person("average_salary", period) * person("years", period) / 40,
        )
        return where(person("toy_eligible", period), amount, 0)


TOY_PARAMETERS: dict[str, Any] = {
    "toy": {
        "minimum_age": {"values": {"2000-01-01": 65}},
        "minimum_years": {"values": {"2000-01-01": 15}},
        "minimum_pension": {"values": {"2000-01-01": 3000.0}},
        "rate": {"values": {"2000-01-01": 0.9}},
    }
}


# --- IMSS, Ley del Seguro Social de 1973: old-age pension --------------------------------------

LEY73_INPUTS = (
    _input("edad", float, "Age in whole years at the claim date"),
    _input("semanas_cotizadas", float, "Recognised weeks of contribution"),
    _input("salario_promedio_diario", float, "Average daily SBC of the last 250 weeks"),
    _input("conyuge", bool, "Has a dependent spouse or partner"),
    _input("hijos_dependientes", float, "Dependent children"),
    _input("padres_dependientes", float, "Dependent parents (0 to 2)"),
    _input("cotizo_antes_1997", bool, "Insured before 1 July 1997"),
)


class elegible_vejez(Variable):
    value_type = bool
    entity = Person
    definition_period = MONTH
    label = "Entitled to the old-age pension"
    reference = "LSS 1973 art. 138"

    def formula(person, period, parameters):
        p = parameters(period).imss_1973
        return (
            person("cotizo_antes_1997", period)
            * (person("edad", period) >= p.edad_vejez)
            * (person("semanas_cotizadas", period) >= p.semanas_minimas)
        )


class salario_veces_sm(Variable):
    value_type = float
    entity = Person
    definition_period = MONTH
    label = "Average salary in times the general minimum wage"
    reference = "LSS 1973 art. 167"

    def formula(person, period, parameters):
        p = parameters(period).imss_1973
        return person("salario_promedio_diario", period) / p.salario_minimo_diario


class numero_incrementos(Variable):
    value_type = float
    entity = Person
    definition_period = MONTH
    label = "Yearly increments: one per 52 weeks beyond the first 500, and a share for the rest"
    reference = "LSS 1973 art. 167"

    def formula(person, period, parameters):
        p = parameters(period).imss_1973
        excedentes = max_(person("semanas_cotizadas", period) - p.semanas_minimas, 0)
        completos = np.floor(excedentes / p.semanas_por_incremento)
        residuales = excedentes - completos * p.semanas_por_incremento
        fraccion = select(
            [residuales > p.semanas_incremento_completo, residuales >= p.semanas_medio_incremento],
            [1, 0.5],
            default=0,
        )
        return completos + fraccion


class porcentaje_pension(Variable):
    value_type = float
    entity = Person
    definition_period = MONTH
    label = "Basic amount plus yearly increments (fraction of the average salary)"
    reference = "LSS 1973 art. 167"

    def formula(person, period, parameters):
        tabla = parameters(period).imss_1973.tabla_167
        veces = person("salario_veces_sm", period)
        # right=True: a bracket runs from above its threshold up to the next one included,
        # the package's "(1, 1.25]".
        return tabla.cuantia_basica.calc(veces, right=True) + person(
            "numero_incrementos", period
        ) * tabla.incremento_anual.calc(veces, right=True)


class porcentaje_asignaciones(Variable):
    value_type = float
    entity = Person
    definition_period = MONTH
    label = "Family allowances and assistance (fraction of the pension)"
    reference = "LSS 1973 art. 164"

    def formula(person, period, parameters):
        p = parameters(period).imss_1973
        conyuge = person("conyuge", period)
        hijos = person("hijos_dependientes", period)
        padres = person("padres_dependientes", period)
        sin_conyuge_ni_hijos = not_(conyuge) * (hijos == 0)
        general = where(conyuge, p.asignacion_conyuge, 0) + hijos * p.asignacion_hijo
        return select(
            [
                sin_conyuge_ni_hijos * (padres == 0),
                sin_conyuge_ni_hijos * (padres == 1),
                sin_conyuge_ni_hijos * (padres == 2),
            ],
            [
                p.ayuda_asistencial_sin_familiares,
                p.asignacion_ascendiente + p.ayuda_asistencial_un_ascendiente,
                2 * p.asignacion_ascendiente,
            ],
            default=general,
        )


class pension_vejez(Variable):
    value_type = float
    entity = Person
    definition_period = MONTH
    label = "Monthly old-age pension"
    reference = "LSS 1973 art. 167, 164 y 168"

    def formula(person, period, parameters):
        p = parameters(period).imss_1973
        anual = (
            person("porcentaje_pension", period)
            * person("salario_promedio_diario", period)
            * 365
            * (1 + person("porcentaje_asignaciones", period))
        )
        minima = p.salario_minimo_diario * p.dias_mes_pension_minima
        return where(person("elegible_vejez", period), round_(max_(anual / 12, minima), 2), 0)


LEY73_VARIABLES = (
    elegible_vejez,
    salario_veces_sm,
    numero_incrementos,
    porcentaje_pension,
    porcentaje_asignaciones,
    pension_vejez,
)
# The scalar parameters the formulas above read, by their names in the Pilar package.
LEY73_SCALARS = (
    "edad_vejez",
    "semanas_minimas",
    "semanas_por_incremento",
    "semanas_medio_incremento",
    "semanas_incremento_completo",
    "asignacion_conyuge",
    "asignacion_hijo",
    "asignacion_ascendiente",
    "ayuda_asistencial_sin_familiares",
    "ayuda_asistencial_un_ascendiente",
    "dias_mes_pension_minima",
    "salario_minimo_diario",
)


def _number(value: Any) -> float:
    return float(Decimal(value)) if isinstance(value, Decimal | str) else float(value)


def ley73_parameters(package: Any) -> dict[str, Any]:
    """The ``imss_1973`` parameter tree for OpenFisca, read from the Pilar package: each scalar
    parameter with its dated values, and the art. 167 table as two single-amount scales."""
    tree: dict[str, Any] = {}
    for name in LEY73_SCALARS:
        latest: dict[datetime.date, Any] = {}
        recorded: dict[datetime.date, datetime.date] = {}
        for entry in package.parameters[name].entries:
            # A correction (same `from`, recorded later) replaces the entry it corrects.
            if entry.valid_from not in recorded or entry.known_from >= recorded[entry.valid_from]:
                latest[entry.valid_from] = entry.value
                recorded[entry.valid_from] = entry.known_from
        tree[name] = {
            "values": {day.isoformat(): _number(value) for day, value in sorted(latest.items())}
        }
    table = package.tables["tabla_167"]
    since = "1973-04-01"
    brackets: dict[str, list[dict[str, Any]]] = {"cuantia_basica": [], "incremento_anual": []}
    for row in table.rows:
        threshold = _lower_bound(row.when["salario_veces_sm"])
        for output, scale in brackets.items():
            scale.append(
                {
                    "threshold": {"values": {since: threshold}},
                    "amount": {"values": {since: _number(row.then[output])}},
                }
            )
    tree["tabla_167"] = {
        output: {"metadata": {"type": "single_amount"}, "brackets": scale}
        for output, scale in brackets.items()
    }
    return {"imss_1973": tree}


def _lower_bound(cell: Any) -> float:
    """The threshold of a row of the art. 167 table: the open lower end of ``"(a, b]"`` or
    ``"> a"``. Any other cell would mean the table is not the right-closed ladder the scale
    models, which must not pass silently."""
    text = str(cell).strip()
    if text.startswith("(") and text.endswith("]"):
        return float(text[1:].split(",")[0])
    if text.startswith(">") and not text.startswith(">="):
        return float(text[1:])
    raise ValueError(f"tabla_167: cell {text!r} is not a right-closed interval")


def build_system(ley73_package: Any) -> TaxBenefitSystem:
    """Both models in one tax and benefit system."""
    system = TaxBenefitSystem([Person])
    for variable in (*TOY_INPUTS, toy_eligible, toy_pension, *LEY73_INPUTS, *LEY73_VARIABLES):
        system.add_variable(variable)
    system.parameters = ParameterNode(
        "", data={**TOY_PARAMETERS, **ley73_parameters(ley73_package)}
    )
    return system


def compute(
    system: TaxBenefitSystem, variable: str, inputs: Mapping[str, np.ndarray], period: str
) -> np.ndarray:
    """From input arrays to the output array: a fresh simulation of ``len`` persons, every input
    set, ``variable`` calculated for ``period`` (a month, ``"2026-06"``)."""
    count = len(next(iter(inputs.values())))
    simulation = SimulationBuilder().build_default_simulation(system, count)
    for name, values in inputs.items():
        simulation.set_input(name, period, values)
    result: np.ndarray = simulation.calculate(variable, period)
    return result
