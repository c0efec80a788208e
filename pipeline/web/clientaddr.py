"""Who is the client: X-Forwarded-For and -Proto believed only from configured proxies.

uvicorn runs with ``proxy_headers=False``; this middleware is the one place that reads
forwarded headers. From a peer in ``[web] trusted_proxies`` the client is the right-most
address of X-Forwarded-For that is not itself a trusted proxy, and the scheme is
X-Forwarded-Proto; from any other peer both headers are ignored, so rotating
X-Forwarded-For changes nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(items: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(i, strict=False) for i in items)


def is_trusted(host: str | None, networks: Sequence[Network]) -> bool:
    if not host or not networks:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(addr in n for n in networks)


def forwarded_client(peer: str | None, forwarded_for: str | None, networks: Sequence[Network]) -> str | None:
    """The client address for a request from ``peer`` carrying ``forwarded_for``."""
    if not is_trusted(peer, networks) or not forwarded_for:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed chain: believe only the peer
        if not is_trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


class ForwardedMiddleware:
    def __init__(self, app: ASGIApp, *, trusted: Sequence[str]) -> None:
        self.app = app
        self.networks = parse_networks(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.networks:
            client = scope.get("client")
            peer = client[0] if client else None
            if is_trusted(peer, self.networks):
                headers = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
                host = forwarded_client(peer, headers.get(b"x-forwarded-for"), self.networks)
                scope = dict(scope, client=(host, 0))
                proto = headers.get(b"x-forwarded-proto", "").split(",")[0].strip().lower()
                if proto in ("http", "https"):
                    scope["scheme"] = proto
        await self.app(scope, receive, send)
