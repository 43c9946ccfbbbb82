"""``pilar seed``: write a synthetic, deterministic population into the configured database.

    pilar seed --persons 10000 --employers 300 --seed 2026
    pilar seed --persons 1000000 --employers 10000 --seed 1 --duplicates-share 0.05
    pilar seed --persons 100000 --employers 3000 --seed 1 --noise low

Appends safely to a database that already holds persons (new ids, identifiers kept unique).
"""

from __future__ import annotations

import datetime
from argparse import ArgumentParser, ArgumentTypeError
from fractions import Fraction
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from pilar.registry.seeding import SeedArgumentError, SeedOptions, seed_run
from pilar.registry.seeding.errors import DEFAULT_NOISE, NOISE_LEVELS


def _share(text: str) -> Fraction:
    try:
        # Kept exact (a fraction, not a float) so the number of duplicates is exactly
        # floor(persons × share).
        return Fraction(text.strip())
    except (ValueError, ZeroDivisionError) as error:
        raise ArgumentTypeError(f"not a number: {text!r}") from error


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError as error:
        raise ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from error


class Command(BaseCommand):
    help = (
        "Generate a synthetic, deterministic Mexican population (persons, families, identifiers, "
        "employers, employment histories, enrolments, duplicates with ground truth)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--persons",
            type=int,
            required=True,
            help="Person records to create, duplicates included.",
        )
        parser.add_argument("--employers", type=int, required=True, help="Employers to create.")
        parser.add_argument(
            "--seed",
            type=int,
            required=True,
            help="Random seed: the same arguments give the same data.",
        )
        parser.add_argument(
            "--duplicates-share",
            type=_share,
            default=Fraction(3, 100),
            help="Share of person records that are duplicates (0–0.5, default 0.03).",
        )
        parser.add_argument(
            "--ground-truth",
            type=Path,
            default=None,
            help="CSV listing the duplicates (default var/seed/ground_truth_<seed>.csv).",
        )
        parser.add_argument(
            "--as-of",
            type=_date,
            default=None,
            help="The day the population is generated for (default today); "
            "part of what makes a run reproducible.",
        )
        parser.add_argument(
            "--noise",
            choices=sorted(NOISE_LEVELS),
            default=DEFAULT_NOISE,
            help="How damaged the duplicates are: low (mostly one error, lost accents and "
            "typos, 10%% without CURP) or high (one to three errors of every kind, 30%% "
            "without CURP; the default).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Generating processes (default: from the run size and cores).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        seed_options = SeedOptions(
            persons=options["persons"],
            employers=options["employers"],
            seed=options["seed"],
            duplicates_share=options["duplicates_share"],
            as_of=options["as_of"] or timezone.localdate(),
            ground_truth=options["ground_truth"],
            workers=options["workers"],
            noise=options["noise"],
        )
        verbose = options["verbosity"] >= 1
        try:
            summary = seed_run(
                seed_options,
                progress=self.stdout.write if verbose else None,
                detail=self.stdout.write if options["verbosity"] >= 2 else None,
            )
        except SeedArgumentError as error:
            raise CommandError(str(error)) from error
        if not verbose:
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded in {summary.seconds:.1f} s with {summary.workers} process(es):"
            )
        )
        width = max(len(name) for name in summary.counts)
        for name, count in summary.counts.items():
            self.stdout.write(f"  {name:<{width}}  {count:>12,}")
        self.stdout.write(
            f"  duplicates: {summary.duplicates:,}, {summary.noise} noise "
            f"(ground truth: {summary.ground_truth})"
        )
        if summary.identifiers_changed or summary.identifiers_dropped:
            self.stdout.write(
                f"  identifiers re-issued to stay unique: {summary.identifiers_changed:,}; "
                f"left without one: {summary.identifiers_dropped:,}"
            )
