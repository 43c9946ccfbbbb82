"""Running a federation of Pilar nodes on one machine: the node layout, their processes, and
the setup that makes them a federation (docs/federation.md, "Running a federation locally").

Every node is a separate ``pilar`` process with its own database, variable directory and keys;
this module never touches a node's database from Python: it drives each node through its real
command line (``run_pilar``) and its HTTP server (``start_node``), exactly as an operator would.
``pilar federation demo`` and the multi-node tests both use it.

Decisions the contract leaves open, taken here:

- **Persons who moved.** The institute a person left (A) runs ``pilar federation
  export-movers``: it registers ``count`` synthetic persons with their working years at A (a
  deterministic career from ``--seed``) and writes a JSON file holding each person's identity
  and both parts of the career. The institute the person moved to (B) runs ``pilar federation
  import-movers FILE``: it registers the same persons (same CURP, names, birth data) with the
  later part of the career. Both go through the registry services, audited as the system actor
  ``federation-seed``. Careers end before 1997, so the claims are under the 1973 law and the
  own weeks at B (≈400) fall short of the 500 weeks the old-age pension needs: only the
  totalisation with A's ≈300 weeks makes the person entitled.
- **The demo agreement file** for totalisation claims is
  ``docs/examples/agreement-mx-imss-issstecali.yaml``: the documentation's example agreement
  with the ``member:`` of each institution (MX-IMSS counts weeks, MX-ISSSTECALI months).
- **Accounts**: every node gets the accounts of ``pilar demo`` (one per role, same passwords).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from pilar.exchange.purposes import service_fields

HOST = "127.0.0.1"

# The demo's agreements grant every field each service can grant (purposes.SERVICES).
PERIOD_FIELDS = service_fields("insurance-periods")
PERSON_FIELDS = service_fields("person-search")
EVENT_FIELDS = service_fields("events")
INSTITUTE_SERVICES = ("person-search", "insurance-periods", "events")
HUB_SERVICES = ("trust", "index", "periods-gather", "insurance-periods")
AGREEMENT_VALID_FROM = "2026-01-01"
# The totalisation agreement of the demo (its institutions name MX-IMSS and MX-ISSSTECALI as
# their members); found by name like every example agreement (benefits.totalisation).
DEMO_AGREEMENT_NAME = "agreement-mx-imss-issstecali"


@dataclass(frozen=True)
class NodeSpec:
    """One node: member code, role, display name, loopback port, database, variable directory."""

    code: str
    role: str
    name: str
    port: int
    database_url: str
    var_dir: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def keys_dir(self) -> Path:
        return self.var_dir / "keys"

    @property
    def log_path(self) -> Path:
        return self.var_dir / "serve.log"


def sqlite_url(var_dir: Path) -> str:
    return f"sqlite:///{var_dir / 'pilar.sqlite3'}"


def demo_specs(base: Path, *, ports: Sequence[int] = (8100, 8101, 8102, 8103)) -> list[NodeSpec]:
    """The demo's four nodes, each with an SQLite database under ``base/<code>/``."""
    layout = (
        ("MX-HUB", "hub", "Concentrador nacional de seguridad social"),
        ("MX-IMSS", "institute", "Instituto Mexicano del Seguro Social"),
        (
            "MX-ISSSTECALI",
            "institute",
            "Instituto de Seguridad y Servicios Sociales de los Trabajadores del Gobierno y "
            "Municipios del Estado de Baja California",
        ),
        ("MX-AUDITOR", "auditor", "Auditoría de la federación"),
    )
    specs = []
    for (code, role, name), port in zip(layout, ports, strict=True):
        var_dir = base / code
        specs.append(NodeSpec(code, role, name, port, sqlite_url(var_dir), var_dir))
    return specs


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


def pilar_command() -> list[str]:
    """The ``pilar`` console script of this interpreter's environment (``python -m pilar.cli``
    when it is not installed as a script)."""
    script = Path(sys.executable).with_name("pilar")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "pilar.cli"]


def node_env(
    spec: NodeSpec, hub_spec: NodeSpec | None, hub_vkeys: Iterable[str] = ()
) -> dict[str, str]:
    """The environment of a node's processes. Pilar settings inherited from the calling process
    are dropped: a node is configured by its spec alone (a test run's DATABASE_URL must never
    leak into a node)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PILAR_", "DATABASE_URL", "DJANGO_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "pilar.settings",
            "PILAR_ENV": "demo",
            "PILAR_NODE_CODE": spec.code,
            "PILAR_NODE_ROLE": spec.role,
            "PILAR_NODE_URL": spec.url,
            "PILAR_INSTITUTION_NAME": spec.name,
            "PILAR_VAR_DIR": str(spec.var_dir),
            "PILAR_KEYS_DIR": str(spec.keys_dir),
            "DATABASE_URL": spec.database_url,
            "PILAR_EMBEDDED_WORKER": "1",
        }
    )
    if hub_spec is not None:
        env["PILAR_HUB_CODE"] = hub_spec.code
        env["PILAR_HUB_URL"] = hub_spec.url
    vkeys = ",".join(hub_vkeys)
    if vkeys:
        env["PILAR_HUB_KEYS"] = vkeys
    return env


class PilarCommandFailed(RuntimeError):
    def __init__(self, spec: NodeSpec, args: Sequence[str], result: subprocess.CompletedProcess):
        self.spec = spec
        self.args_run = list(args)
        self.result = result
        super().__init__(
            f"pilar {' '.join(args)} on {spec.code} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )


def run_pilar(
    spec: NodeSpec,
    *args: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: str | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run ``pilar <args>`` as ``spec``'s node, output captured. Raises ``PilarCommandFailed``
    (with both outputs) when ``check`` and the command fails."""
    # The command is this environment's own pilar script with arguments built here.
    result = subprocess.run(  # noqa: S603
        [*pilar_command(), *args],
        env=dict(env) if env is not None else node_env(spec, None),
        cwd=spec.var_dir,
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise PilarCommandFailed(spec, args, result)
    return result


def start_node(spec: NodeSpec, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``pilar serve`` for the node in a process group of its own (gunicorn's master and
    worker), its output appended to ``var_dir/serve.log``."""
    spec.var_dir.mkdir(parents=True, exist_ok=True)
    with spec.log_path.open("ab") as log:
        return subprocess.Popen(  # noqa: S603
            [*pilar_command(), "serve", "--host", HOST, "--port", str(spec.port)],
            env=dict(env) if env is not None else node_env(spec, None),
            cwd=spec.var_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_ready(
    url: str, timeout: float = 30, *, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Wait until the node answers HTTP at ``url`` (any answer below 500). Raises
    ``TimeoutError``, or ``RuntimeError`` at once when ``process`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the node at {url} exited with status {process.returncode}")
        try:
            answer = httpx.get(f"{url}/login/", timeout=2, follow_redirects=False)
            if answer.status_code < 500:
                return
            last_error = f"HTTP {answer.status_code}"
        except httpx.HTTPError as error:
            last_error = str(error) or type(error).__name__
        time.sleep(0.1)
    raise TimeoutError(f"the node at {url} did not answer within {timeout:.0f} s ({last_error})")


def stop_node(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Stop a node started by ``start_node``: SIGTERM to its process group (gunicorn stops its
    workers gracefully), SIGKILL if it is still there after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


# --------------------------------------------------------------------------------------------
# Setting up a federation
# --------------------------------------------------------------------------------------------


@dataclass
class FederationInfo:
    """What ``setup_federation`` made: the nodes, the hub's trust anchor, the movers' CURPs
    (exported by ``source``, imported by ``destination``) and the processes running."""

    specs: dict[str, NodeSpec]
    hub_code: str
    hub_vkeys: list[str]
    vkeys: dict[str, str] = field(default_factory=dict)
    source: str = ""
    destination: str = ""
    movers: list[dict[str, Any]] = field(default_factory=list)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def hub(self) -> NodeSpec:
        return self.specs[self.hub_code]

    def env(self, code: str) -> dict[str, str]:
        return node_env(self.specs[code], self.hub, self.hub_vkeys)

    def run(
        self, code: str, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_pilar(self.specs[code], *args, env=self.env(code), check=check, input=input)

    def start(self, code: str, timeout: float = 60) -> subprocess.Popen[bytes]:
        process = self.processes.get(code)
        if process is not None and process.poll() is None:
            return process
        process = start_node(self.specs[code], self.env(code))
        self.processes[code] = process
        try:
            wait_ready(self.specs[code].url, timeout, process=process)
        except (TimeoutError, RuntimeError) as error:
            log = self.specs[code].log_path
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            raise RuntimeError(f"{code}: {error}\n{tail}") from error
        return process

    def stop(self, code: str) -> None:
        process = self.processes.pop(code, None)
        if process is not None:
            stop_node(process)

    def stop_all(self) -> None:
        for code in list(self.processes):
            self.stop(code)

    def to_json(self) -> str:
        return json.dumps(
            {
                "specs": [
                    {**asdict(spec), "var_dir": str(spec.var_dir)} for spec in self.specs.values()
                ],
                "hub_code": self.hub_code,
                "hub_vkeys": self.hub_vkeys,
                "vkeys": self.vkeys,
                "source": self.source,
                "destination": self.destination,
                "movers": self.movers,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> FederationInfo:
        data = json.loads(text)
        specs = {
            item["code"]: NodeSpec(**{**item, "var_dir": Path(item["var_dir"])})
            for item in data["specs"]
        }
        return cls(
            specs=specs,
            hub_code=data["hub_code"],
            hub_vkeys=data["hub_vkeys"],
            vkeys=data["vkeys"],
            source=data["source"],
            destination=data["destination"],
            movers=data["movers"],
        )


def _parallel(function: Callable[[NodeSpec], Any], specs: Iterable[NodeSpec]) -> list[Any]:
    """Run ``function`` for every node at once (each is a subprocess: threads suffice); the
    first failure is raised after all have finished."""
    specs = list(specs)
    with ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
        futures = [pool.submit(function, spec) for spec in specs]
        return [future.result() for future in futures]


def demo_agreements(specs: Sequence[NodeSpec]) -> list[list[str]]:
    """``pilar exchange agreement add`` arguments for the demo's agreements: every institute may
    ask for insurance periods (totalisation and the like), verify identities, subscribe to
    events and use the index. The auditor has none: it reads logs, not persons (deny by
    default shows on it)."""
    institutes = [spec.code for spec in specs if spec.role == "institute"]
    hub = [spec.code for spec in specs if spec.role == "hub"]
    grants = (
        (
            "insurance-periods",
            ("totalisation", "survivor-claim", "periods-update"),
            PERIOD_FIELDS,
        ),
        ("person-search", ("verification", "death-check", "survivor-claim"), PERSON_FIELDS),
        ("events", ("death-check", "periods-update"), EVENT_FIELDS),
        (
            "index",
            ("indexing", "totalisation", "verification", "survivor-claim", "death-check"),
            (),
        ),
    )
    commands: list[list[str]] = []
    number = 0
    for consumer in institutes:
        for service, purposes, fields in grants:
            number += 1
            commands.append(
                _agreement_args(f"AG-{number:04d}", consumer, service, purposes, fields)
            )
    # The hub relays periods requests on behalf of a member (periods-gather): the member checks
    # the caller's own agreement in the relayed origin, and the hub's relay agreement here.
    for consumer in hub:
        number += 1
        commands.append(
            _agreement_args(
                f"AG-{number:04d}",
                consumer,
                "insurance-periods",
                ("totalisation", "survivor-claim", "periods-update"),
                PERIOD_FIELDS,
            )
        )
    return commands


def _agreement_args(
    code: str, consumer: str, service: str, purposes: Sequence[str], fields: Sequence[str]
) -> list[str]:
    args = [
        "exchange",
        "agreement",
        "add",
        "--code",
        code,
        "--consumer",
        consumer,
        "--provider",
        "*",
        "--service",
        service,
        "--purposes",
        ",".join(purposes),
        "--valid-from",
        AGREEMENT_VALID_FROM,
    ]
    if fields:
        args += ["--fields", ",".join(fields)]
    return args


def member_services(spec: NodeSpec) -> tuple[str, ...]:
    if spec.role == "institute":
        return INSTITUTE_SERVICES
    if spec.role == "hub":
        return HUB_SERVICES
    return ()


def setup_federation(
    specs: Sequence[NodeSpec],
    *,
    seed: bool = True,
    persons: int = 2000,
    movers: int = 5,
    source: str = "MX-ISSSTECALI",
    destination: str = "MX-IMSS",
    progress: Callable[[str], None] = lambda text: None,
    start: bool = True,
) -> FederationInfo:
    """Make ``specs`` a federation, through each node's command line: migrate and create keys
    (all nodes at once), accounts and (``seed``) a synthetic population on the institutes,
    movers from ``source`` to ``destination``; on the hub register every member and the demo
    agreements and publish the trust list; start the hub, let every other node fetch the list,
    enrol the institutes' persons in the hub's index; start the other nodes (``start``).

    The processes started are in the returned ``FederationInfo``; the caller stops them."""
    by_code = {spec.code: spec for spec in specs}
    hubs = [spec for spec in specs if spec.role == "hub"]
    if len(hubs) != 1:
        raise ValueError("a federation needs exactly one hub")
    hub = hubs[0]
    for spec in specs:
        spec.var_dir.mkdir(parents=True, exist_ok=True)

    def prepare(spec: NodeSpec) -> str:
        # One process per node (each start of ``pilar`` costs seconds of CPU): migrate, the
        # first key, the demo accounts, the synthetic population; prints the node's vkey.
        args = ["federation", "node-init"]
        if spec.role == "institute" and seed:
            args += [
                "--persons",
                str(persons),
                "--seed",
                str(2026 + sorted(by_code).index(spec.code)),
            ]
        output = run_pilar(spec, *args, env=node_env(spec, hub)).stdout
        return output.strip().splitlines()[-1]

    progress("Migrating the databases and creating the keys of every node …")
    _migrate_once(specs, hub)
    vkeys = dict(zip(by_code, _parallel(prepare, specs), strict=True))
    info = FederationInfo(
        specs=dict(by_code), hub_code=hub.code, hub_vkeys=[vkeys[hub.code]], vkeys=vkeys
    )

    if movers and source in by_code and destination in by_code:
        progress(f"Registering {movers} persons who moved from {source} to {destination} …")
        movers_file = by_code[source].var_dir / "movers.json"
        info.run(
            source,
            "federation",
            "export-movers",
            "--count",
            str(movers),
            "--seed",
            "7",
            "--out",
            str(movers_file),
        )
        info.run(destination, "federation", "import-movers", str(movers_file))
        info.source, info.destination = source, destination
        info.movers = json.loads(movers_file.read_text(encoding="utf-8"))["persons"]

    progress("Registering the members and agreements on the hub, publishing the trust list …")
    plan = hub.var_dir / "hub-plan.json"
    plan.write_text(json.dumps(hub_plan(specs, vkeys), indent=2), encoding="utf-8")
    info.run(hub.code, "federation", "hub-init", str(plan))

    progress("Starting the hub; every node fetches the trust list …")
    try:
        info.start(hub.code)
        others = [spec for spec in specs if spec.code != hub.code]
        # An institute fetches the list and enrols its persons in the hub's index (one
        # process each).
        _parallel(
            lambda spec: info.run(
                spec.code,
                "federation",
                "join",
                *(["--enrol"] if spec.role == "institute" else []),
            ),
            others,
        )
        if start:
            progress("Starting the other nodes …")
            _parallel(lambda spec: info.start(spec.code), others)
    except BaseException:
        # A failed setup leaves no node running behind the caller's back.
        info.stop_all()
        raise
    return info


def _migrate_once(specs: Sequence[NodeSpec], hub: NodeSpec) -> None:
    """When every node is a new SQLite file, migrate one and copy it to the others: the schema
    and reference data are the same on every node, and migrating costs far more than copying."""
    prefix = "sqlite:///"
    if not all(spec.database_url.startswith(prefix) for spec in specs):
        return
    files = [Path(spec.database_url.removeprefix(prefix)) for spec in specs]
    if any(path.exists() for path in files):
        return
    run_pilar(specs[0], "migrate", "--noinput", env=node_env(specs[0], hub))
    for path in files[1:]:
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal"):
            source = Path(str(files[0]) + suffix)
            if source.exists():
                shutil.copyfile(source, str(path) + suffix)


def hub_plan(specs: Sequence[NodeSpec], vkeys: Mapping[str, str]) -> dict[str, list[list[str]]]:
    """The ``pilar exchange`` commands the hub runs (``pilar federation hub-init``): register
    every member with its key, create the demo agreements."""
    members = []
    for spec in specs:
        args = [
            "member",
            "add",
            "--code",
            spec.code,
            "--name",
            spec.name,
            "--role",
            spec.role,
            "--endpoint",
            spec.url,
            "--vkey",
            vkeys[spec.code],
        ]
        services = member_services(spec)
        if services:
            args += ["--services", ",".join(services)]
        members.append(args)
    return {"members": members, "agreements": [args[1:] for args in demo_agreements(specs)]}


# --------------------------------------------------------------------------------------------
# Persons who moved from one institute to another (run inside a node: registry services)
# --------------------------------------------------------------------------------------------

_GIVEN = {
    "F": ("María Elena", "Guadalupe", "Rosa María", "Patricia", "Leticia", "Margarita"),
    "M": ("José Luis", "Juan Carlos", "Francisco", "Miguel Ángel", "Roberto", "Arturo"),
}
_SURNAMES = (
    "Hernández",
    "García",
    "Martínez",
    "López",
    "Ramírez",
    "Flores",
    "Castañeda",
    "Villaseñor",
    "Orozco",
    "Zepeda",
    "Cárdenas",
    "Ibarra",
)
MOVERS_REGION = "JC"  # the demo's regional office (Jalisco), so its officers see the movers


def _nss(rng: random.Random) -> str:
    from pilar.core.identifiers import nss_check_digit

    body = "".join(str(rng.randint(0, 9)) for _ in range(10))
    return body + nss_check_digit(body)


def _career(
    rng: random.Random, start: datetime.date, weeks: int, salary: Decimal
) -> dict[str, Any]:
    """A working period of about ``weeks`` weeks from ``start`` with a raise every few years."""
    end = start + datetime.timedelta(days=weeks * 7 - 1)
    salaries = [[start.isoformat(), str(salary)]]
    day = start
    while True:
        day = day + datetime.timedelta(days=rng.randint(600, 1100))
        if day > end:
            break
        salary = (salary * Decimal(rng.randint(106, 118)) / 100).quantize(Decimal("0.01"))
        salaries.append([day.isoformat(), str(salary)])
    return {"start": start.isoformat(), "end": end.isoformat(), "salaries": salaries}


def movers_plan(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` synthetic persons born 1955–1960 with a career in two parts: about 300 weeks at
    the first institute from their early twenties, then, after a short gap, about 400 weeks at
    the second, ending before July 1997 (deterministic for ``seed``)."""
    from pilar.core.identifiers import curp_complete, curp_stem

    rng = random.Random(seed)
    plan: list[dict[str, Any]] = []
    curps: set[str] = set()
    while len(plan) < count:
        sex = rng.choice("FM")
        birth = datetime.date(rng.randint(1955, 1960), rng.randint(1, 12), rng.randint(1, 28))
        given = rng.choice(_GIVEN[sex])
        paternal, maternal = rng.sample(_SURNAMES, 2)
        curp = curp_complete(
            curp_stem(
                given_names=given,
                paternal_surname=paternal,
                maternal_surname=maternal,
                birth_date=birth,
                sex=sex,
                birth_state=MOVERS_REGION,
            ),
            birth,
        )
        if curp in curps:
            continue
        curps.add(curp)
        first_start = datetime.date(birth.year + rng.randint(21, 24), rng.randint(1, 12), 1)
        before = _career(rng, first_start, rng.randint(280, 320), Decimal(rng.randint(90, 160)))
        second_start = datetime.date.fromisoformat(before["end"]) + datetime.timedelta(
            days=rng.randint(20, 150)
        )
        after = _career(rng, second_start, rng.randint(380, 430), Decimal(rng.randint(150, 260)))
        plan.append(
            {
                "curp": curp,
                "nss": _nss(rng),
                "given_names": given,
                "paternal_surname": paternal,
                "maternal_surname": maternal,
                "sex": sex,
                "birth_date": birth.isoformat(),
                "birth_state": MOVERS_REGION,
                "region": MOVERS_REGION,
                "before": before,
                "after": after,
            }
        )
    return plan


_EMPLOYERS = {
    "before": (
        "GAB970101AA",
        "B0212345675",
        "Gobierno del Estado de Baja California",
        "93",
    ),
    "after": ("MPA800101AA", "A0298765432", "Manufacturas del Pacífico", "31"),
}


def _employer_for(actor: Any, part: str) -> int:
    """The employer of one part of the movers' careers at this node (registered once)."""
    from pilar.core.identifiers import rfc_check_digit
    from pilar.registry.models import Employer
    from pilar.registry.services import employer_register
    from pilar.registry.validation import EmployerData

    letters, registration, legal_name, sector = _EMPLOYERS[part]
    rfc = letters + rfc_check_digit(letters)
    existing = Employer.objects.filter(rfc=rfc).first()
    if existing is not None:
        return existing.pk
    employer = employer_register(
        actor=actor,
        data=EmployerData(
            rfc=rfc,
            registration_number=registration,
            legal_name=legal_name,
            sector=sector,
            street="Calzada Independencia 100",
            municipality="Guadalajara",
            state="JC",
            postal_code="44100",
            registered_on=datetime.date(1975, 1, 1),
        ),
    )
    return employer.pk


def movers_register(*, persons: Sequence[Mapping[str, Any]], part: str, with_nss: bool) -> int:
    """Register ``persons`` (a ``movers_plan``) at this node with the ``part`` (``before`` or
    ``after``) of their careers, through the registry services as the system actor
    ``federation-seed``. A person already registered here (same CURP) is left as is, so running
    it twice adds nothing. Returns how many were registered."""
    from pilar.core.actor import Actor
    from pilar.core.identifiers import CURP, NSS
    from pilar.core.roles import Role
    from pilar.registry.models import Identifier
    from pilar.registry.services import (
        employment_create,
        employment_salary_change,
        person_register,
    )
    from pilar.registry.validation import IdentifierData, PersonData

    actor = Actor.system("federation-seed", roles=frozenset({Role.REGISTRAR.value}))
    employer_id = _employer_for(actor, part)
    registered = 0
    for item in persons:
        if Identifier.objects.filter(scheme=CURP, value=item["curp"]).exists():
            continue
        identifiers = [IdentifierData(scheme=CURP, value=item["curp"])]
        if with_nss:
            identifiers.append(IdentifierData(scheme=NSS, value=item["nss"]))
        person = person_register(
            actor=actor,
            data=PersonData(
                given_names=item["given_names"],
                paternal_surname=item["paternal_surname"],
                maternal_surname=item["maternal_surname"],
                sex=item["sex"],
                birth_date=datetime.date.fromisoformat(item["birth_date"]),
                birth_state=item["birth_state"],
                region=item["region"],
            ),
            identifiers=identifiers,
            # Synthetic persons: someone alike may exist in the seeded population; registering
            # them anyway is what the seeder does too (and the note says why).
            acknowledge_possible_duplicate=True,
        )
        career = item[part]
        salaries = career["salaries"]
        employment = employment_create(
            actor=actor,
            person_id=person.pk,
            employer_id=employer_id,
            start_date=datetime.date.fromisoformat(career["start"]),
            end_date=datetime.date.fromisoformat(career["end"]),
            daily_salary=Decimal(salaries[0][1]),
        )
        for effective_from, daily_salary in salaries[1:]:
            employment_salary_change(
                actor=actor,
                employment_id=employment.pk,
                effective_from=datetime.date.fromisoformat(effective_from),
                daily_salary=Decimal(daily_salary),
            )
        registered += 1
    return registered


def write_env_files(info: FederationInfo) -> None:
    """``<node>/env.sh``: the node's settings as shell exports, so an operator can run any
    ``pilar`` command as that node: ``(. var/federation/MX-IMSS/env.sh && pilar audit verify)``."""
    for code, spec in info.specs.items():
        env = info.env(code)
        lines = [
            f"export {key}={shlex.quote(value)}"
            for key, value in sorted(env.items())
            if key.startswith(("PILAR_", "DJANGO_")) or key == "DATABASE_URL"
        ]
        (spec.var_dir / "env.sh").write_text("\n".join(lines) + "\n", encoding="utf-8")


def remove_tree(path: Path) -> None:
    """Delete a federation directory made by ``setup_federation`` (``--reset``)."""
    if path.exists():
        shutil.rmtree(path)


__all__ = [
    "FederationInfo",
    "NodeSpec",
    "PilarCommandFailed",
    "demo_specs",
    "movers_plan",
    "movers_register",
    "node_env",
    "run_pilar",
    "setup_federation",
    "start_node",
    "stop_node",
    "wait_ready",
    "write_env_files",
]
