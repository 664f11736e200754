"""Members this till does not hold: asked of the hub while the customer waits.

A terminal of a chain holds its store's scope (ledger.hubsync). A card from outside it,
or a member held only from the old protocol's days (stale), is looked up at the hub
within a short timeout before a sale, a quote or a lookup is answered. When the hub
does not answer: an unknown card is refused with an answer that says so (enrol the
member here, or try again); a stale member is served from what the till holds.
"""

from __future__ import annotations

import asyncio
import logging

from sync.errors import HubRefused, HubUnreachable
from terminal_agent.api.problems import ApiProblem
from terminal_agent.runtime import Runtime

log = logging.getLogger("terminal_agent.remote")


async def ensure_member(rt: Runtime, card_or_mobile: str) -> None:
    if rt.hub is None:
        return
    holding = await asyncio.to_thread(rt.ledger.holding, card_or_mobile)
    if holding in ("held", "refused"):
        return
    try:
        await asyncio.to_thread(rt.hub.lookup, card_or_mobile)
    except HubUnreachable as exc:
        if holding == "unknown":
            raise ApiProblem(404, "unknown_offline",
                             "this card or mobile is not known at this store, and the hub cannot be reached to look "
                             "it up: enrol the member here, or try again when the hub answers") from None
        log.warning("member held from before, not confirmed by the hub (%s): served from the till", exc)
    except HubRefused as exc:
        if exc.status != 404:
            log.warning("the hub refused a lookup: %s", exc)
        # unknown to the chain too: the ledger answers as it would (unknown card, mobile)
