"""One seeding run: validate, generate chunks (in worker processes when there are many), keep
identifiers unique, write everything in one transaction, audit it, write the ground truth.

Chunks are generated in parallel but claimed and written in chunk order, and each chunk depends
only on (seed, chunk index), so the data is the same whatever the number of processes.

Worker protocol (see ``_parallel_chunks``): worker *k* generates chunks k, k+W, k+2W, …; for
each it sends the chunk's identifiers and row counts to the coordinator, waits for the chunk's
first ids and identifier changes, renders the rows and sends them back. The coordinator hands
out first ids strictly in chunk order, and at most ``_LOOKAHEAD`` chunks ahead of what it has
written, which bounds memory.
"""

from __future__ import annotations

import csv
import datetime
import multiprocessing
import os
import queue
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pilar.core.actor import Actor
from pilar.core.audit import audit_record
from pilar.registry.models import Programme
from pilar.registry.seeding import loader
from pilar.registry.seeding.employers import (
    SyntheticEmployer,
    generate_employers,
    next_registration_number,
)
from pilar.registry.seeding.errors import DEFAULT_NOISE, NOISE_LEVELS
from pilar.registry.seeding.population import (
    PROGRAMMES,
    ChunkDraft,
    ChunkGenerator,
    chunk_count,
)
from pilar.registry.seeding.render import (
    COLUMNS,
    POSTGRESQL,
    Bases,
    RenderedChunk,
    chunk_counts,
    render,
)
from pilar.registry.seeding.uniqueness import IdentifierLedger, rfc_alternatives

MAX_DUPLICATES_SHARE = Fraction(1, 2)
# Chunks rendered ahead of the writer; each is a few megabytes.
_LOOKAHEAD = 6
_WORKER_WAIT_SECONDS = 600.0
# Persons from which a PostgreSQL load sets indexes aside (see loader.set_aside_indexes).
_BULK_THRESHOLD = 50_000


class SeedArgumentError(ValueError):
    """An invalid seeding parameter; nothing has been written."""


@dataclass(frozen=True)
class SeedOptions:
    persons: int
    employers: int
    seed: int
    duplicates_share: Fraction = Fraction(3, 100)
    as_of: datetime.date = field(default_factory=timezone.localdate)
    ground_truth: Path | None = None
    # None: decide from the size of the run and the machine.
    workers: int | None = None
    # How damaged the duplicates are: a key of ``errors.NOISE_LEVELS``.
    noise: str = DEFAULT_NOISE

    def ground_truth_path(self) -> Path:
        if self.ground_truth is not None:
            return self.ground_truth
        return Path(settings.VAR_DIR) / "seed" / f"ground_truth_{self.seed}.csv"


@dataclass
class SeedSummary:
    counts: dict[str, int]
    duplicates: int
    seconds: float
    workers: int
    ground_truth: Path
    identifiers_changed: int
    identifiers_dropped: int
    noise: str = DEFAULT_NOISE


def validate_options(options: SeedOptions) -> None:
    if options.persons <= 0:
        raise SeedArgumentError("--persons must be a positive number of persons.")
    if options.employers <= 0:
        raise SeedArgumentError("--employers must be a positive number of employers.")
    if not 0 <= options.duplicates_share <= MAX_DUPLICATES_SHARE:
        raise SeedArgumentError("--duplicates-share must be between 0 and 0.5.")
    if not 1990 <= options.as_of.year <= 2100:
        raise SeedArgumentError("--as-of must be a date between 1990 and 2100.")
    if options.workers is not None and not 1 <= options.workers <= 64:
        raise SeedArgumentError("--workers must be between 1 and 64.")
    if options.noise not in NOISE_LEVELS:
        raise SeedArgumentError(f"--noise must be one of: {', '.join(NOISE_LEVELS)}.")
    if options.ground_truth is not None and options.ground_truth.is_dir():
        raise SeedArgumentError("--ground-truth must be a file path, not a directory.")


def _default_workers(chunks: int) -> int:
    # One generating process per core, at most four. The coordinator mostly waits and the
    # database server's COPY work interleaves with generation; on a two-core machine two
    # workers beat one worker plus an idle core for the server. Small runs stay in process:
    # starting workers costs more than it saves.
    if chunks < 4 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min((os.cpu_count() or 1), 4, chunks))


def seed_run(
    options: SeedOptions,
    *,
    progress: Callable[[str], None] | None = None,
    detail: Callable[[str], None] | None = None,
) -> SeedSummary:
    """Generate and write a synthetic population (see ``pilar.registry.seeding``).

    ``progress`` hears about each stage and every few chunks; ``detail`` about each index
    rebuilt after a bulk load. Raises ``SeedArgumentError`` for invalid options, before
    writing anything; any other failure rolls the whole run back."""
    validate_options(options)
    report = progress or (lambda _message: None)
    started = time.monotonic()
    chunks = chunk_count(options.persons)
    workers = options.workers or _default_workers(chunks)
    if "fork" not in multiprocessing.get_all_start_methods():
        workers = 1
    employers = generate_employers(seed=options.seed, count=options.employers, as_of=options.as_of)
    generator = ChunkGenerator(
        seed=options.seed,
        as_of=options.as_of,
        total_persons=options.persons,
        duplicates_share=options.duplicates_share,
        employers=employers,
        noise=NOISE_LEVELS[options.noise],
    )
    dialect = loader.dialect()
    totals = dict.fromkeys([*COLUMNS, "employer"], 0)
    ground_truth: list[str] = []
    ledger = IdentifierLedger()
    # Workers are forked before the transaction starts; they never touch the database (the
    # coordinator alone reads and writes), and leave with os._exit, so the inherited connection
    # is never used or closed by them.
    chunk_source = (
        _parallel_chunks(generator, chunks=chunks, workers=workers, dialect=dialect)
        if workers > 1
        else None
    )
    try:
        with transaction.atomic():
            loader.lock_tables()
            ids = loader.next_ids()
            for scheme, values in loader.existing_identifiers().items():
                ledger.add_existing(scheme, values)
            programme_ids, programmes_created = _programmes()
            # Every row of the run carries the same creation time: the run is one event.
            stamp = loader.timestamp_text(timezone.now())
            totals["employer"] = _write_employers(
                employers, first_id=ids["employer"], timestamp=stamp
            )
            report(f"{len(employers):,} employers written ({time.monotonic() - started:.1f} s)")
            aside = None
            # The highest person id stands in for the number of persons already there.
            if _bulk_load(options.persons, existing_persons=ids["person"] - 1, dialect=dialect):
                aside = loader.set_aside_indexes()
                report(
                    f"{len(aside.indexes)} indexes and {len(aside.constraints)} constraints "
                    f"set aside for the bulk load"
                )
            cursors = {key: ids[key] for key in COLUMNS}

            def claim(
                draft_index: int, identifiers: list[tuple[int, str, str]], sizes: dict[str, int]
            ) -> tuple[Bases, dict[int, str | None]]:
                changes = ledger.claim_all(identifiers)
                bases = Bases(
                    ids=dict(cursors),
                    employer_base=ids["employer"],
                    programme_ids=programme_ids,
                    timestamp=stamp,
                )
                dropped = sum(1 for value in changes.values() if value is None)
                for key in COLUMNS:
                    cursors[key] += sizes[key] - (dropped if key == "identifier" else 0)
                return bases, changes

            if chunk_source is None:
                rendered_chunks: Iterator[RenderedChunk] = _serial_chunks(
                    generator, chunks=chunks, dialect=dialect, claim=claim
                )
            else:
                rendered_chunks = chunk_source.run(claim)
            step = max(1, chunks // 20)
            for rendered in rendered_chunks:
                loader.write_chunk_tables(rendered.tables)
                for key, count in rendered.counts.items():
                    totals[key] += count
                ground_truth.extend(rendered.ground_truth)
                if (rendered.index + 1) % step == 0 or rendered.index + 1 == chunks:
                    report(
                        f"chunk {rendered.index + 1}/{chunks}: {totals['person']:,} persons "
                        f"({time.monotonic() - started:.1f} s)"
                    )
            if aside is not None:
                load_done = time.monotonic()
                loader.restore_indexes(aside, progress=detail)
                report(f"indexes and constraints rebuilt in {time.monotonic() - load_done:.1f} s")
            loader.reset_sequences()
            # One audit event for the whole run: per-row events for synthetic bulk data would
            # only bury the audit trail (the run's parameters reproduce every row).
            audit_record(
                actor=Actor.system("seed", roles=frozenset({"registrar"})),
                action="seed.run",
                entity_type="seed",
                entity_id=options.seed,
                changes={
                    "parameters": {
                        "persons": options.persons,
                        "employers": options.employers,
                        "seed": options.seed,
                        "duplicates_share": float(options.duplicates_share),
                        "as_of": options.as_of.isoformat(),
                        "noise": options.noise,
                    },
                    "counts": dict(totals),
                    "duplicates": len(ground_truth),
                    "programmes_created": programmes_created,
                },
                note=f"Synthetic data: {options.persons:,} persons, {options.employers:,} "
                f"employers, seed {options.seed}",
            )
    finally:
        if chunk_source is not None:
            chunk_source.stop()
    if options.persons >= 100_000:
        loader.analyze()
    path = options.ground_truth_path()
    _write_ground_truth(path, ground_truth)
    return SeedSummary(
        counts=totals,
        duplicates=len(ground_truth),
        seconds=time.monotonic() - started,
        workers=workers,
        ground_truth=path,
        identifiers_changed=ledger.changed,
        identifiers_dropped=ledger.dropped,
        noise=options.noise,
    )


def _bulk_load(persons: int, *, existing_persons: int, dialect: str) -> bool:
    """Whether to set indexes aside: on PostgreSQL, for loads large in absolute terms and at
    least as large as what the tables already hold (rebuilding indexes over existing rows
    costs time too)."""
    return dialect == POSTGRESQL and persons >= _BULK_THRESHOLD and persons >= existing_persons


def _programmes() -> tuple[dict[str, int], list[str]]:
    """The ids of the programmes enrolments refer to, creating the missing ones; returns the
    codes created too (they go into the run's audit event)."""
    ids: dict[str, int] = {}
    created: list[str] = []
    for code, (name_es, name_en) in PROGRAMMES.items():
        programme, was_created = Programme.objects.get_or_create(
            code=code, defaults={"name_es": name_es, "name_en": name_en}
        )
        ids[code] = programme.pk
        if was_created:
            created.append(code)
    return ids, created


def _write_employers(employers: list[SyntheticEmployer], *, first_id: int, timestamp: str) -> int:
    """Write the employers, changing an RFC or registration number already in the database."""
    taken_rfcs, taken_registrations = loader.existing_employer_keys()
    rows: list[tuple[Any, ...]] = []
    for offset, employer in enumerate(employers):
        rfc: str | None = employer.rfc
        if rfc in taken_rfcs:
            rfc = next((v for v in rfc_alternatives(employer.rfc) if v not in taken_rfcs), None)
        registration: str | None = employer.registration_number
        if registration in taken_registrations:
            registration = next(
                (
                    candidate
                    for step in range(1, 100_000)
                    if (candidate := next_registration_number(employer.registration_number, step))
                    not in taken_registrations
                ),
                None,
            )
        if rfc is None or registration is None:
            raise RuntimeError(f"no free RFC or registration number left for {employer.rfc}")
        taken_rfcs.add(rfc)
        taken_registrations.add(registration)
        rows.append(
            (
                first_id + offset,
                rfc,
                registration,
                employer.legal_name,
                employer.trade_name,
                employer.sector,
                employer.street,
                employer.municipality,
                employer.state,
                employer.postal_code,
                "active",
                datetime.date.fromordinal(employer.registered_on).isoformat(),
                employer.normalized_name,
                1,
                timestamp,
                timestamp,
            )
        )
    data: Any = loader.copy_text(rows) if loader.dialect() == POSTGRESQL else rows
    loader.write_rows("employer", loader.EMPLOYER_COLUMNS, data)
    return len(rows)


def _write_ground_truth(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["duplicate_person_id", "original_person_id", "errors"])
        for line in lines:
            writer.writerow(line.split(",", 2))
    temporary.replace(path)


# --- chunk sources ------------------------------------------------------------------------------

ClaimFunction = Callable[
    [int, list[tuple[int, str, str]], dict[str, int]], tuple[Bases, dict[int, str | None]]
]


def _serial_chunks(
    generator: ChunkGenerator, *, chunks: int, dialect: str, claim: ClaimFunction
) -> Iterator[RenderedChunk]:
    for index in range(chunks):
        draft = generator.generate(index)
        bases, changes = claim(index, draft.identifiers, chunk_counts(draft, {}))
        yield render(draft, bases=bases, identifier_changes=changes, dialect=dialect)


def _worker_main(
    generator: ChunkGenerator,
    worker: int,
    workers: int,
    chunks: int,
    dialect: str,
    inbox: Any,
    outbox: Any,
) -> None:
    try:
        for index in range(worker, chunks, workers):
            draft: ChunkDraft = generator.generate(index)
            outbox.put(("draft", index, draft.identifiers, chunk_counts(draft, {})))
            message = inbox.get()
            if message is None:
                return
            _kind, bases, changes = message
            outbox.put(
                (
                    "rendered",
                    index,
                    render(draft, bases=bases, identifier_changes=changes, dialect=dialect),
                )
            )
    except BaseException:
        outbox.put(("error", worker, traceback.format_exc()))


class _ParallelChunks:
    def __init__(
        self, generator: ChunkGenerator, *, chunks: int, workers: int, dialect: str
    ) -> None:
        context = multiprocessing.get_context("fork")
        self.chunks = chunks
        self.workers = workers
        self.outbox: Any = context.Queue()
        self.inboxes: list[Any] = [context.Queue() for _ in range(workers)]
        self.processes = [
            context.Process(
                target=_worker_main,
                args=(
                    generator,
                    worker,
                    workers,
                    chunks,
                    dialect,
                    self.inboxes[worker],
                    self.outbox,
                ),
                daemon=True,
                name=f"pilar-seed-{worker}",
            )
            for worker in range(workers)
        ]
        for process in self.processes:
            process.start()

    def _receive(self) -> tuple[Any, ...]:
        waited = 0.0
        while True:
            try:
                message: tuple[Any, ...] = self.outbox.get(timeout=1.0)
            except queue.Empty:
                waited += 1.0
                dead = [p.name for p in self.processes if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"seeding worker(s) died: {', '.join(dead)}") from None
                if waited > _WORKER_WAIT_SECONDS:
                    raise RuntimeError("seeding workers stopped answering") from None
                continue
            if message[0] == "error":
                raise RuntimeError(f"seeding worker {message[1]} failed:\n{message[2]}")
            return message

    def run(self, claim: ClaimFunction) -> Iterator[RenderedChunk]:
        drafts: dict[int, tuple[list[tuple[int, str, str]], dict[str, int]]] = {}
        rendered: dict[int, RenderedChunk] = {}
        next_claim = 0
        next_write = 0
        while next_write < self.chunks:
            while next_claim in drafts and next_claim < next_write + _LOOKAHEAD:
                identifiers, sizes = drafts.pop(next_claim)
                bases, changes = claim(next_claim, identifiers, sizes)
                self.inboxes[next_claim % self.workers].put(("go", bases, changes))
                next_claim += 1
            if next_write in rendered:
                yield rendered.pop(next_write)
                next_write += 1
                continue
            message = self._receive()
            if message[0] == "draft":
                drafts[message[1]] = (message[2], message[3])
            else:
                rendered[message[1]] = message[2]

    def stop(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for channel in (self.outbox, *self.inboxes):
            channel.close()
            channel.cancel_join_thread()


def _parallel_chunks(
    generator: ChunkGenerator, *, chunks: int, workers: int, dialect: str
) -> _ParallelChunks:
    return _ParallelChunks(generator, chunks=chunks, workers=workers, dialect=dialect)
