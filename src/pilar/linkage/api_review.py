"""REST API of record linkage: review (aggregated by `linkage.api`)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["linkage"])
