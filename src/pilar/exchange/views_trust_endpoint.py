"""Public endpoints of this node's keys and (on the hub) the trust list. What they serve is
public by design (signed member data, public keys), so they need no session.

- ``GET /exchange/v1/trust-list``: the newest signed trust list this node holds, verbatim (on
  the hub the newest published; on a member the one it took, which lets members pass a list
  along). 404 with a JSON body when there is none.
- ``GET /.well-known/jwks.json``: this node's active and retiring public keys as a JWKS (DCI
  JWKS API, RFC 7517; Ed25519 as RFC 8037 ``OKP``), ``kid`` = ``<code>|<key id>|ed25519`` as in
  the envelopes' ``kidId``.
"""

from __future__ import annotations

import base64

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from pilar.exchange.models import KeyStatus, NodeKey, TrustListVersion

# A trust list changes only when the hub publishes; a short cache spares the hub the members'
# polling without delaying a new list noticeably.
TRUST_LIST_MAX_AGE = 30


@require_GET
def trust_list_document(request: HttpRequest) -> JsonResponse:
    version = TrustListVersion.objects.order_by("-serial").only("document").first()
    if version is None:
        return JsonResponse(
            {
                "errors": [
                    {
                        "code": "trust_list.none",
                        "message": _("No trust list has been published yet."),
                    }
                ]
            },
            status=404,
        )
    response = JsonResponse(version.document)
    response["Cache-Control"] = f"public, max-age={TRUST_LIST_MAX_AGE}"
    return response


def _base64url(standard_b64: str) -> str:
    raw = base64.b64decode(standard_b64)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    code = settings.PILAR_NODE_CODE
    keys = [
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _base64url(row.public_key),
            "kid": f"{code}|{row.key_id}|ed25519",
            "use": "sig",
            "alg": "EdDSA",
        }
        for row in NodeKey.objects.filter(
            status__in=[KeyStatus.ACTIVE, KeyStatus.RETIRING]
        ).order_by("-created_at")
    ]
    return JsonResponse({"keys": keys})
