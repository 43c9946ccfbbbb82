"""Keeping generated identifiers unique: within the run and against what the database holds.

Chunks are generated independently, so two chunks can produce the same CURP (same name letters,
birth date, sex and state), the same random NSS serial or the same RFC homoclave. The run's
coordinator claims each chunk's identifiers in chunk order and changes the ones already taken
the way the issuing authority would: the CURP's homonymy character, the NSS serial, the RFC's
homoclave. Because claims happen in chunk order, the outcome does not depend on how many
processes generated the chunks.
"""

from __future__ import annotations

from collections.abc import Iterable

from pilar.core.identifiers import (
    CURP,
    NSS,
    RFC,
    curp_birth_date,
    curp_complete,
    nss_check_digit,
    rfc_check_digit,
)
from pilar.registry.seeding.employers import next_homoclave

_DIGITS = "0123456789"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def curp_alternatives(value: str) -> Iterable[str]:
    """The same CURP with each other homonymy character (digits before 2000, letters after)."""
    alphabet = _DIGITS if value[16].isdigit() else _LETTERS
    start = alphabet.index(value[16])
    birth_date = curp_birth_date(value)
    for step in range(1, len(alphabet)):
        yield curp_complete(value[:16], birth_date, (start + step) % len(alphabet))


def nss_alternatives(value: str) -> Iterable[str]:
    """The same subdelegation and years with the following serial numbers."""
    prefix, serial = value[:6], int(value[6:10])
    for step in range(1, 10000):
        body = f"{prefix}{(serial + step) % 10000:04d}"
        yield body + nss_check_digit(body)


def rfc_alternatives(value: str) -> Iterable[str]:
    """The same letters and date with the following homoclaves (persons and companies)."""
    head, homoclave = value[:-3], value[-3:-1]
    for step in range(1, 31 * 35):
        body = head + next_homoclave(homoclave, step)
        yield body + rfc_check_digit(body)


_ALTERNATIVES = {CURP: curp_alternatives, NSS: nss_alternatives, RFC: rfc_alternatives}


class IdentifierLedger:
    """The identifier values taken so far, per scheme (Mexican schemes only)."""

    def __init__(self) -> None:
        self.taken: dict[str, set[str]] = {CURP: set(), NSS: set(), RFC: set()}
        self.changed = 0
        self.dropped = 0

    def add_existing(self, scheme: str, values: Iterable[str]) -> None:
        self.taken[scheme].update(values)

    def claim(self, scheme: str, value: str) -> str | None:
        """``value`` if free, else the first free alternative, or None if every alternative is
        taken too (then the record goes without this identifier, as some real ones do)."""
        taken = self.taken[scheme]
        if value not in taken:
            taken.add(value)
            return value
        for alternative in _ALTERNATIVES[scheme](value):
            if alternative not in taken:
                taken.add(alternative)
                self.changed += 1
                return alternative
        self.dropped += 1
        return None

    def claim_all(self, identifiers: list[tuple[int, str, str]]) -> dict[int, str | None]:
        """Claim a chunk's identifiers in order; returns the changes by position."""
        changes: dict[int, str | None] = {}
        for position, (_person, scheme, value) in enumerate(identifiers):
            claimed = self.claim(scheme, value)
            if claimed != value:
                changes[position] = claimed
        return changes
