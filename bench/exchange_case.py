"""The Django side of the exchange benchmark, run in its own processes (``python -m
bench.exchange_case MODE …``) with the environment of the node it plays. Prints one JSON line.

Modes:

- ``load``: this process is the consumer node; ``--threads`` threads each send signed ``search``
  requests (person verification by CURP) to ``--receiver`` through ``messaging.send`` for
  ``--seconds`` and count the exchanges completed: signed, archived and logged at both ends,
  the signed response verified and bound to its request.
- ``latency``: one thread alternates a signed exchange and the same lookup through the
  receiver's staff REST API (``GET /api/v1/persons/by-identifier/CURP/{curp}``, token
  authenticated, no exchange layer) and reports both latencies per pair.
- ``log``: this node's own transparency log: ``--threads`` threads append leaves, each in its
  own committed transaction (durable), while the integrator runs as in ``pilar serve``; then
  the integration lag of every leaf (commit → first signed checkpoint covering it), and the
  time to verify an inclusion proof plus the checkpoint's signature, and to fetch a proof.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilar.settings")
    import django

    django.setup()


def _search_message(curp: str) -> dict[str, Any]:
    import datetime
    import uuid

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "transaction_id": uuid.uuid4().hex,
        "search_request": [
            {
                "reference_id": uuid.uuid4().hex,
                "timestamp": now,
                "search_criteria": {
                    "query_type": "idtype-value",
                    "query": {"type": "CURP", "value": curp},
                },
            }
        ],
    }


def _actor() -> Any:
    from pilar.core.actor import Actor

    return Actor.system("bench", channel="exchange", roles=frozenset({"registrar"}))


def _one_exchange(receiver: str, curp: str) -> tuple[bool, float]:
    from pilar.exchange import messaging

    started = time.perf_counter()
    row = messaging.send(
        actor=_actor(),
        receiver=receiver,
        action="search",
        purpose="verification",
        message=_search_message(curp),
    )
    elapsed = (time.perf_counter() - started) * 1000
    records: list[Any] = []
    if row.status == "answered" and row.response:
        items = row.response["message"].get("search_response", [])
        records = items[0]["data"]["reg_records"] if items else []
    return row.status == "answered" and len(records) == 1, elapsed


def load(arguments: argparse.Namespace) -> dict[str, Any]:
    from django.db import close_old_connections

    curps = Path(arguments.curps).read_text().split()
    deadline = time.monotonic() + arguments.warmup + arguments.seconds
    measure_from = time.monotonic() + arguments.warmup
    completed = 0
    failed = 0
    errors: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        nonlocal completed, failed
        chooser = random.Random(seed)
        try:
            while time.monotonic() < deadline:
                ok, elapsed = _one_exchange(arguments.receiver, chooser.choice(curps))
                if time.monotonic() < measure_from:
                    continue
                with lock:
                    if ok:
                        completed += 1
                        latencies.append(elapsed)
                    else:
                        failed += 1
        except Exception as error:  # reported, and the benchmark fails on it
            with lock:
                errors.append(f"{type(error).__name__}: {error}")
        finally:
            close_old_connections()

    threads = [
        threading.Thread(target=worker, args=(os.getpid() * 100 + i,))
        for i in range(arguments.threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "completed": completed,
        "failed": failed,
        "errors": errors[:5],
        "seconds": arguments.seconds,
        "latencies_ms": latencies,
    }


def latency(arguments: argparse.Namespace) -> dict[str, Any]:
    import httpx

    curps = Path(arguments.curps).read_text().split()
    chooser = random.Random(7)
    client = httpx.Client(
        base_url=arguments.direct_url,
        headers={"Authorization": f"Bearer {arguments.token}"},
        timeout=30.0,
    )
    signed: list[float] = []
    direct: list[float] = []
    failures = 0
    for number in range(arguments.warmup + arguments.requests):
        curp = chooser.choice(curps)
        ok, elapsed = _one_exchange(arguments.receiver, curp)
        started = time.perf_counter()
        answer = client.get(f"/api/v1/persons/by-identifier/CURP/{curp}")
        direct_ms = (time.perf_counter() - started) * 1000
        if not ok or answer.status_code != 200:
            failures += 1
            continue
        if number >= arguments.warmup:
            signed.append(elapsed)
            direct.append(direct_ms)
    return {"signed_ms": signed, "direct_ms": direct, "failures": failures}


def log(arguments: argparse.Namespace) -> dict[str, Any]:
    from django.db import close_old_connections, transaction

    from pilar.exchange import envelope as envelopes
    from pilar.exchange import log as exchange_log
    from pilar.exchange import node
    from pilar.exchange.keys import VerifyKey
    from pilar.exchange.models import LogCheckpoint, LogEntry
    from pilar.exchange.translog import merkle, note

    node.node_keys_init()
    key = node.signing_key()
    code = node.this_node().code
    stop = threading.Event()

    def integrator() -> None:
        while not stop.is_set():
            exchange_log.log_integrate()
            stop.wait(0.25)
        close_old_connections()

    appended = 0
    lock = threading.Lock()
    deadline = time.monotonic() + arguments.seconds

    def appender(number: int) -> None:
        nonlocal appended
        body = envelopes.sign(
            envelopes.build_request(
                action="search",
                sender_id=code,
                receiver_id="MX-PEER",
                purpose="verification",
                message={"transaction_id": str(number)},
            ),
            key,
        )
        count = 0
        while time.monotonic() < deadline:
            # One leaf per committed transaction: the log's own cost (the message row written
            # beside it in a real exchange is the exchange's, measured by ``load``).
            with transaction.atomic():
                exchange_log.log_append(event="request-sent", envelope=body, row=None)
            count += 1
        with lock:
            appended += count
        close_old_connections()

    runner = threading.Thread(target=integrator)
    runner.start()
    started = time.monotonic()
    threads = [threading.Thread(target=appender, args=(i,)) for i in range(arguments.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    time.sleep(1.0)
    stop.set()
    runner.join()
    exchange_log.log_integrate()

    # Lag: from a leaf's commit (its created_at, set in the appending transaction) to the first
    # checkpoint whose size covers it.
    checkpoints = list(LogCheckpoint.objects.order_by("size").values_list("size", "created_at"))
    lags: list[float] = []
    position = 0
    sequenced = LogEntry.objects.filter(index__isnull=False).order_by("index")
    for index, created in sequenced.values_list("index", "created_at"):
        assert index is not None
        while position < len(checkpoints) and checkpoints[position][0] <= index:
            position += 1
        if position == len(checkpoints):
            raise RuntimeError(f"leaf {index} is in no checkpoint")
        lags.append((checkpoints[position][1] - created).total_seconds() * 1000)

    latest = exchange_log.log_checkpoint_latest()
    if latest is None:
        raise RuntimeError("no checkpoint was signed")
    # What an auditor holds: this node's public key; what it is given: the signed checkpoint
    # and the proof. It verifies the note's signature, reads the root, checks the path.
    verifier = VerifyKey.from_public(code, key.public)
    size = latest.size
    chooser = random.Random(3)
    verify_times: list[float] = []
    fetch_times: list[float] = []
    for index in [chooser.randrange(size) for _ in range(arguments.proofs)]:
        started_fetch = time.perf_counter()
        proof = exchange_log.log_inclusion_proof(index, size)
        fetch_times.append((time.perf_counter() - started_fetch) * 1000)
        started_verify = time.perf_counter()
        opened = note.open_note(latest.note, [verifier])
        checkpoint = note.parse_checkpoint(opened.text)
        merkle.verify_inclusion(index, size, proof.leaf_hash, proof.proof, checkpoint.root)
        verify_times.append((time.perf_counter() - started_verify) * 1000)
    return {
        "appended": appended,
        "seconds": elapsed,
        "appends_per_s": appended / elapsed,
        "integration_lag_p99_ms": sorted(lags)[int(0.99 * (len(lags) - 1))],
        "integration_lag_max_ms": max(lags),
        "proof_verify_ms": statistics.median(verify_times),
        "proof_fetch_ms": statistics.median(fetch_times),
        "tree_size": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    modes = parser.add_subparsers(dest="mode", required=True)
    load_parser = modes.add_parser("load")
    load_parser.add_argument("--receiver", required=True)
    load_parser.add_argument("--curps", required=True)
    load_parser.add_argument("--seconds", type=float, default=20)
    load_parser.add_argument("--warmup", type=float, default=3)
    load_parser.add_argument("--threads", type=int, default=4)
    latency_parser = modes.add_parser("latency")
    latency_parser.add_argument("--receiver", required=True)
    latency_parser.add_argument("--curps", required=True)
    latency_parser.add_argument("--requests", type=int, default=500)
    latency_parser.add_argument("--warmup", type=int, default=30)
    latency_parser.add_argument("--direct-url", required=True)
    latency_parser.add_argument("--token", required=True)
    log_parser = modes.add_parser("log")
    log_parser.add_argument("--seconds", type=float, default=10)
    log_parser.add_argument("--threads", type=int, default=4)
    log_parser.add_argument("--proofs", type=int, default=1000)
    arguments = parser.parse_args()
    _setup()
    result = {"load": load, "latency": latency, "log": log}[arguments.mode](arguments)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
