"""The client's address behind a reverse proxy: ``X-Forwarded-For``, believed from trusted proxies only.

Behind HAProxy every connection comes from the balancer, so without this the per-address limits (sign-in,
texted codes, share links), the audit log and the metrics allow-list would all see one address: twenty wrong
passwords from anyone would lock everyone out. ``security.trusted_proxies`` names the proxies; a request
whose connection comes from one of them gets, as ``request.remote``, the right-most address of its
``X-Forwarded-For`` chain that is not itself a trusted proxy (what the proxy nearest to us saw; anything to its
left was written by the client and may be forged). Any other connection keeps its own address, whatever it
sends, so a node can still be reached directly (health checks, the monitoring system).

aiohttp-remotes' ``XForwardedStrict`` refuses requests that do not come through a trusted proxy, which would
shut that direct access, and its relaxed variant believes anyone: hence this one function and middleware.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from server.config import Network, in_networks, parse_address


def forwarded_client(peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[Network]) -> str | None:
    """The client's address when ``peer`` is a trusted proxy and ``forwarded_for`` (the header's values) names
    one; None when the peer's own address stands."""
    if not proxies or not in_networks(parse_address(peer), proxies):
        return None
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    client = None
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            break  # a hop no proxy of ours wrote: what lies left of it cannot be believed
        client = address
        if not in_networks(address, proxies):
            break
    return str(client) if client is not None else None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def client_behind_proxy(proxies: Sequence[Network]) -> Middleware:
    """The first middleware: every later one, and every handler, sees the client's address."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if "X-Forwarded-For" in request.headers:
            client = forwarded_client(request.remote, request.headers.getall("X-Forwarded-For"), proxies)
            if client is not None:
                request = request.clone(remote=client)
        return await handler(request)

    return middleware
