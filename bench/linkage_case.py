"""One synthetic case of the linkage benchmark, run in its own process (``python -m
bench.linkage_case``) so its memory high-water mark is its own and Django is configured for its
own database. Prints one JSON line of figures.

Phases, each timed: read the registry (``sources.registry_persons``), compute the features,
train the model unsupervised, analyse blocking against the seeder's ground truth (pairs and pair
completeness), predict, cluster at the model's auto-link weight, evaluate against the ground
truth. With ``--entry N`` it then rebuilds the match keys and times ``entry.find_candidates`` for
N would-be registrations, each a fresh erroneous copy of a random registered person (the seeder's
own error model), and reports the p95 latency and how often the person was among the candidates.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any


def _peak_rss_mb() -> float:
    match = re.search(r"^VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def _truth_pairs(path: Path) -> set[tuple[int, int]]:
    """All pairs within the true clusters: a person seeded with two duplicates gives three."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            a, b = int(row["duplicate_person_id"]), int(row["original_person_id"])
            parent.setdefault(a, a)
            parent.setdefault(b, b)
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    clusters: dict[int, list[int]] = {}
    for member in parent:
        clusters.setdefault(find(member), []).append(member)
    pairs: set[tuple[int, int]] = set()
    for members in clusters.values():
        members.sort()
        for i, left in enumerate(members):
            for right in members[i + 1 :]:
                pairs.add((left, right))
    return pairs


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--truth", type=Path, required=True)
    parser.add_argument("--entry", type=int, default=0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--max-pairs", type=float, default=5e6)
    options = parser.parse_args(arguments)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilar.settings")
    import django

    django.setup()

    from pilar.linkage import engine as engines
    from pilar.linkage import evaluation, features, sources

    figures: dict[str, Any] = {}
    started = time.perf_counter()
    raw = sources.registry_persons()
    figures["read_s"] = time.perf_counter() - started
    figures["records"] = raw.height

    mark = time.perf_counter()
    frame = features.person_features(raw)
    figures["features_s"] = time.perf_counter() - mark

    engine = engines.engine_for("duckdb")
    mark = time.perf_counter()
    model = engine.train(frame, seed=options.seed, max_pairs=options.max_pairs)
    figures["train_s"] = time.perf_counter() - mark

    truth = _truth_pairs(options.truth)
    figures["true_pairs"] = len(truth)
    mark = time.perf_counter()
    counts = engine.blocking_analysis(frame, truth_pairs=truth)
    figures["blocking_s"] = time.perf_counter() - mark
    last = counts[-1]
    figures["pairs_generated"] = float(last.cumulative_pairs)
    completeness = last.pair_completeness
    figures["pair_completeness"] = float(completeness) if completeness is not None else 0.0

    thresholds = model.thresholds
    # The decision threshold is fixed beforehand, never read off the truth: match probability
    # 0.99 (as for FEBRL). The product's auto-link threshold is reported beside it.
    decision_weight = math.log2(0.99 / 0.01)
    mark = time.perf_counter()
    pairs = engine.predict_dedupe(
        frame, model, min_weight=min(thresholds["review_weight"], decision_weight)
    )
    figures["predict_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    clusters = engine.cluster(pairs, threshold_weight=decision_weight)
    figures["cluster_s"] = time.perf_counter() - mark
    figures["dedupe_s"] = time.perf_counter() - started
    figures["peak_rss_mb"] = _peak_rss_mb()
    figures["pairs_scored"] = float(pairs.height)

    scores = evaluation.pair_metrics(evaluation.pairs_from_clusters(clusters), truth)
    figures.update(precision=scores.precision, recall=scores.recall, f1=scores.f1)
    auto = engine.cluster(pairs, threshold_weight=thresholds["auto_link_weight"])
    auto_scores = evaluation.pair_metrics(evaluation.pairs_from_clusters(auto), truth)
    figures.update(
        auto_precision=auto_scores.precision,
        auto_recall=auto_scores.recall,
        auto_f1=auto_scores.f1,
        auto_link_weight=thresholds["auto_link_weight"],
        review_weight=thresholds["review_weight"],
    )
    if options.entry:
        figures.update(_entry(options.entry, options.seed))
    print(json.dumps(figures, default=str))
    return 0


def _entry(count: int, seed: int) -> dict[str, float]:
    """Rebuild the match keys, then time the point-of-entry check on erroneous copies."""
    from pilar.linkage import entry
    from pilar.registry.models import Person
    from pilar.registry.seeding.errors import make_duplicate

    figures: dict[str, float] = {}
    mark = time.perf_counter()
    entry.rebuild_match_keys()
    figures["keys_rebuild_s"] = time.perf_counter() - mark

    rng = random.Random(seed)
    highest = Person.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    latencies: list[float] = []
    found = 0
    queries = 0
    while queries < count:
        person = Person.objects.filter(pk=rng.randint(1, highest)).first()
        if person is None or person.status != "active":
            continue
        duplicate = make_duplicate(
            rng,
            original_given=person.given_names,
            original_paternal=person.paternal_surname,
            original_maternal=person.maternal_surname,
            original_birth=person.birth_date.toordinal(),
            date=datetime.date.fromordinal,
        )
        record = {
            "given_names": duplicate.given,
            "paternal_surname": duplicate.paternal,
            "maternal_surname": duplicate.maternal,
            "sex": person.sex,
            "birth_date": datetime.date.fromordinal(duplicate.birth),
            "birth_state": person.birth_state,
            "curp": None,
            "nss": None,
        }
        mark = time.perf_counter()
        candidates = entry.find_candidates(record)
        latencies.append((time.perf_counter() - mark) * 1000)
        found += any(candidate.person_id == person.pk for candidate in candidates)
        queries += 1
    latencies.sort()
    rank = max(1, -(-len(latencies) * 95 // 100))
    figures["entry_candidates_p95_ms"] = latencies[rank - 1]
    figures["entry_candidates_median_ms"] = latencies[len(latencies) // 2]
    figures["entry_found_share"] = found / count
    return figures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
