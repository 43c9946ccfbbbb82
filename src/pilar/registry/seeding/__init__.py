"""Synthetic data for demos, tests and benchmarks: ``pilar seed``.

A realistic, deterministic Mexican population — households with two-surname names, valid CURP,
NSS and RFC, addresses and contacts, employers, decades of employment with salary histories,
programme enrolments, deaths — plus a controlled share of duplicate records with the errors
clerks make, and a ground-truth file listing them. The same arguments (including ``as_of``)
give the same data, whatever the number of processes used.

Modules: ``names``, ``geography``, ``wages``, ``jobs``, ``employers`` (reference data and
employers), ``population`` (chunk generation), ``errors`` (duplicate errors), ``uniqueness``
(identifiers unique across chunks and against the database), ``render`` and ``loader``
(set-based writes), ``runner`` (a whole run).
"""

from pilar.registry.seeding.runner import (
    SeedArgumentError,
    SeedOptions,
    SeedSummary,
    seed_run,
    validate_options,
)

__all__ = ["SeedArgumentError", "SeedOptions", "SeedSummary", "seed_run", "validate_options"]
