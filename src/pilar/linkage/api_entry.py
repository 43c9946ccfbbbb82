"""REST API of record linkage: entry (aggregated by `linkage.api`)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["linkage"])
