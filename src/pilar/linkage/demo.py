"""Demo record linkage: after the demo's registry is seeded (about 10,000 persons, 3% of them
second records of someone already registered), train a model on it and deduplicate it, so the
review queue has pairs for a data steward to decide in ``make demo``; and write a small outside
list (registry persons typed again with errors, plus strangers and unreadable rows) to try the
list linkage with.

Everything goes through the services and the run job, exactly as a steward's clicks would, only
executed here rather than by a worker. Runs once: a node that already has a model and a
finished deduplication is left as it is, so running the demo twice adds nothing.
"""

from __future__ import annotations

import csv
import io
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from pilar.core.actor import Actor
from pilar.core.models import User
from pilar.linkage import services, sources, tasks
from pilar.linkage.models import LinkageModel, LinkageRun, RunKind, RunStatus

DEMO_LIST_NAME = "beneficiarios_demo.csv"
DEMO_LIST_ROWS = 40
DEMO_SEED = 2026


@dataclass
class DemoLinkage:
    model: LinkageModel | None = None
    run: LinkageRun | None = None
    auto_linked: int = 0
    for_review: int = 0
    clusters: int = 0
    seconds: float = 0.0
    list_file: Path | None = None
    skipped: list[str] = field(default_factory=list)


def _typed_again(rng: random.Random, text: str) -> str:
    """The name as a clerk might type it again: without accents, in capitals, or with a
    dropped letter."""
    plain = text.translate(str.maketrans("áéíóúÁÉÍÓÚüÜ", "aeiouAEIOUuU"))
    draw = rng.random()
    if draw < 0.4:
        return plain.upper()
    if draw < 0.6 and len(plain) > 4:
        position = rng.randrange(1, len(plain) - 1)
        return plain[:position] + plain[position + 1 :]
    return plain


def demo_list(*, rows: int = DEMO_LIST_ROWS, seed: int = DEMO_SEED) -> bytes:
    """An outside beneficiary list: registry persons typed again (accents lost, capitals, a
    dropped letter, day and month swapped, no CURP), two persons the registry does not know,
    and two rows that cannot be read (no names; 31 February)."""
    rng = random.Random(seed)
    persons = sources.registry_persons()
    if persons.height == 0:
        return b""
    chosen = persons.sample(n=min(rows, persons.height), seed=seed).iter_rows(named=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "folio",
            "nombre",
            "apellido_paterno",
            "apellido_materno",
            "fecha_nacimiento",
            "sexo",
            "curp",
        ]
    )
    for number, person in enumerate(chosen, start=1):
        birth = person["birth_date"]
        written = birth.strftime("%d/%m/%Y")
        if rng.random() < 0.15 and birth.day <= 12 and birth.day != birth.month:
            written = f"{birth.month:02d}/{birth.day:02d}/{birth.year}"
        writer.writerow(
            [
                f"B-{number:04d}",
                _typed_again(rng, person["given_names"] or ""),
                _typed_again(rng, person["paternal_surname"] or ""),
                person["maternal_surname"] or "",
                written,
                {"F": "M", "M": "H"}.get(person["sex"] or "", "X"),
                person["curp"] if rng.random() < 0.5 and person["curp"] else "",
            ]
        )
    writer.writerow(["B-9001", "Perla Xóchitl", "Quintanilla", "Ybarra", "03/09/1961", "M", ""])
    writer.writerow(["B-9002", "Wenceslao", "Zúñiga", "Olvera", "21/11/1949", "H", ""])
    writer.writerow(["B-9003", "", "Ramírez", "Soto", "14/07/1970", "H", ""])
    writer.writerow(["B-9004", "Irma", "Cárdenas", "Luna", "31/02/1968", "M", ""])
    return buffer.getvalue().encode("utf-8")


def demo_linkage(*, steward: User) -> DemoLinkage:
    """Train (when the node has no model), deduplicate (when no deduplication has finished) and
    write the demo list under ``VAR_DIR/linkage/demo/``."""
    with tasks.quiet_splink():
        return _demo_linkage(steward)


def _demo_linkage(steward: User) -> DemoLinkage:
    summary = DemoLinkage()
    started = time.monotonic()
    actor = Actor.for_user(steward, channel="cli")
    # The seeder writes persons in bulk, without match keys: build them so the registration
    # form's duplicate warning finds the seeded persons (an interrupted build continues).
    from pilar.linkage.entry import rebuild_match_keys

    rebuild_match_keys(only_stale=True)
    model = services.active_model()
    if model is None:
        run = services.start_training(actor=actor, enqueue=False)
        trained = tasks.run_execute(run.pk)
        if trained.status != RunStatus.DONE or trained.model is None:
            summary.skipped.append(f"training: {trained.error}")
            summary.seconds = time.monotonic() - started
            return summary
        model = trained.model
        if not model.is_active:
            model = services.activate_model(actor=actor, model_id=model.pk)
    summary.model = model
    earlier = (
        LinkageRun.objects.filter(kind=RunKind.DEDUPE, status=RunStatus.DONE)
        .order_by("-id")
        .first()
    )
    if earlier is None:
        run = services.start_dedupe(actor=actor, enqueue=False)
        earlier = tasks.run_execute(run.pk)
        if earlier.status != RunStatus.DONE:
            summary.skipped.append(f"deduplication: {earlier.error}")
    summary.run = earlier
    summary.auto_linked = earlier.auto_linked
    summary.for_review = earlier.for_review
    summary.clusters = earlier.clusters
    folder = Path(settings.VAR_DIR) / "linkage" / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / DEMO_LIST_NAME
    data = demo_list()
    if data:
        target.write_bytes(data)
        summary.list_file = target
    summary.seconds = time.monotonic() - started
    return summary
