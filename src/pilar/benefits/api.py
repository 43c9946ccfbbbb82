"""REST API of benefits: claims, adjudication, maker–checker decisions, awards, under /api/v1/."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["benefits"])
