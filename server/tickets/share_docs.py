"""The OpenAPI document of the driver share links and the phone's view of a ticket."""

from __future__ import annotations

from server.openapi import NULLABLE_S, ApiDocs, I, S, obj, path_param
from server.tickets import phone_views

SHARE_LINK = obj(
    id=I,
    ticket_id=I,
    created_at=S,
    expires_at={**S, "description": "the end of the itinerary's gate window: the link dies then"},
    revoked_at=NULLABLE_S,
    open_count={**I, "description": "how many times the link was opened (each open is in the audit log)"},
    last_opened_at=NULLABLE_S,
)
NEW_SHARE_LINK = {
    **SHARE_LINK,
    "properties": {
        **SHARE_LINK["properties"],
        "url": {**S, "description": "the link to send to the driver; shown only in this answer"},
    },
    "required": [*SHARE_LINK["required"], "url"],
}


def document_routes(docs: ApiDocs) -> None:
    """Document the phone's ticket and the share links: create, list, revoke."""
    phone_views.document_routes(docs)
    ticket = [path_param("ticket_id")]
    docs.add(
        "/api/v1/tickets/{ticket_id}/share-links",
        "post",
        "Create a link that opens only this ticket without signing in, until its itinerary's gate window closes "
        "(prints the ticket if it was not). 409 `used`, `expired` (window over) or `too_many_links`",
        tag="tickets",
        status=201,
        errors=(404, 409),
        response=NEW_SHARE_LINK,
        params=ticket,
    )
    docs.add(
        "/api/v1/tickets/{ticket_id}/share-links",
        "get",
        "The ticket's share links, newest first",
        tag="tickets",
        errors=(404,),
        response=obj(links={"type": "array", "items": SHARE_LINK}),
        params=ticket,
    )
    docs.add(
        "/api/v1/tickets/{ticket_id}/share-links/{link_id}",
        "delete",
        "Revoke a share link: it no longer opens the ticket (revoking it again changes nothing)",
        tag="tickets",
        errors=(404,),
        response=SHARE_LINK,
        params=[*ticket, path_param("link_id")],
    )
