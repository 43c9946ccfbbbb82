"""The hub's handler of ``key-announce``: a member tells the hub of its new key.

The envelope was signed with the member's current (old) key and verified by messaging before
the handler runs; no agreement is needed (``service=None``), the rule is that a member
announces only its own key, with the new key's proof of possession. The hub adds the key
(audited) and publishes the next trust list in the same transaction, so the answer tells the
member which serial carries its key.

Kept apart from ``services_trust`` so that a problem importing messaging never breaks the
trust list's services.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from pilar.core.actor import Actor
from pilar.core.roles import Role
from pilar.exchange import services_trust
from pilar.exchange.messaging import Answer, Inbound, handler
from pilar.exchange.reasons import Refusal, lazy_detail


@handler("key-announce", service=None)
def handle_key_announce(request: Inbound) -> Answer:
    if settings.PILAR_NODE_ROLE != "hub":
        raise Refusal("rjct.action.not_supported", action="key-announce")
    message = request.message
    fields = ("member", "vkey", "valid_from", "proof")
    missing = [name for name in fields if not isinstance(message.get(name), str)]
    if missing:
        raise Refusal(
            "rjct.search_criteria.invalid",
            detail=lazy_detail(_("missing or not text: %(fields)s."), fields=", ".join(missing)),
        )
    if message["member"] != request.sender or request.on_behalf_of:
        raise Refusal(
            "rjct.search_criteria.invalid",
            detail=lazy_detail(_("a member announces only its own keys.")),
        )
    actor = Actor.system(
        f"exchange:{request.sender}",
        channel="exchange",
        roles=frozenset({Role.ADMINISTRATOR.value}),
    )
    key = services_trust.member_key_announce(
        actor=actor,
        member_code=request.sender,
        vkey=message["vkey"],
        valid_from=message["valid_from"],
        proof=message["proof"],
    )
    version = services_trust.trust_list_publish_within(actor=actor)
    return Answer(message={"key_id": key.key_id, "trust_list_serial": version.serial})
