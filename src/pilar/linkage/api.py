"""REST API of record linkage: runs, the review queue, merges, point-of-entry candidates and
the cross-programme check."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["linkage"])
