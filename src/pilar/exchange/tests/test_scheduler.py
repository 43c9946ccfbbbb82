"""The federation's clock: every duty names a function that exists, and on a node that is in no
federation yet (no keys, no hub) each duty runs and does nothing, without an error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilar.exchange import scheduler
from pilar.exchange.models import LogCheckpoint, TrustListVersion


def test_every_duty_names_a_function() -> None:
    for duty in scheduler.duties():
        assert callable(scheduler._resolve(duty.target)), duty.name


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["institute", "auditor"])
def test_a_standalone_node_runs_its_duties_quietly(
    settings: Any, tmp_path: Path, role: str
) -> None:
    settings.PILAR_NODE_ROLE = role
    settings.PILAR_HUB_URL = ""
    settings.PILAR_KEYS_DIR = tmp_path / "keys"
    outcomes = scheduler.run_once()
    expected = {d.name for d in scheduler.duties() if role in d.roles}
    assert outcomes == dict.fromkeys(expected, "ok")
    # Nothing to integrate, nothing to fetch: nothing written.
    assert not LogCheckpoint.objects.exists()
    assert not TrustListVersion.objects.exists()
