"""REST API of the federation for staff tools (under ``/api/v1/exchange/``): the monitor,
agreements, trust list, log, and a person's records at other institutions. The node-to-node
exchange itself is not this API: it is the signed-envelope endpoint under ``/exchange/v1/``."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["exchange"])
