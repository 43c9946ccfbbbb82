"""REST API of record linkage: the review queue and merges, runs and the cross-programme check,
point-of-entry candidates. Each area has its own module; this one puts them under one tag."""

from __future__ import annotations

from ninja import Router

from pilar.linkage import api_entry, api_review, api_runs

router = Router(tags=["linkage"])
router.add_router("", api_review.router)
router.add_router("", api_runs.router)
router.add_router("", api_entry.router)
